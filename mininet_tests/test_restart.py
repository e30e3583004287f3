"""Restart and reconnect without loss: a ping keeps flowing while the controller
is killed (SIGKILL) and a new one takes its ports over, and while a switch drops
its controller connection and gets it back. The new controller rebuilds its
trails from Redis and audits every switch's flow table instead of wiping it.
Tests run in file order on one network (2 spines, 2 leaves, a host per leaf).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mininet_tests.harness import (
    ControllerProcess,
    PingStream,
    ScentNet,
    dump_flows,
    ping,
    running_net,
    wait_for,
)
from tests.redisproc import RedisServer, free_port
from topologies.leafspine import LeafSpineTopo

SWITCHES = ("s1", "s2", "s3", "s4")
INTERVAL = 0.05  # s between pings of the continuous stream


@pytest.fixture(scope="module")
def redis_url(redis_server: RedisServer) -> str:
    """The URL of this module's redis-server (conftest.py)."""
    return redis_server.url


@pytest.fixture(scope="module")
def rnet(redis_url: str) -> Iterator[ScentNet]:
    """The fabric under a controller that keeps its trails in Redis; h1 <-> h2 set up."""
    with running_net(LeafSpineTopo(spines=2, leaves=2, hosts_per_leaf=1),
                     controller_args=["--store", redis_url]) as net:
        h1, h2 = net.host("h1"), net.host("h2")
        wait_for(lambda: ping(h1, h2.IP()), 20, "h1 -> h2 over a trail", interval=0.5)
        yield net


def trails(net: ScentNet) -> list[tuple[Any, ...]]:
    """(id, label, src, dst, hops) of every trail, from REST."""
    out = []
    for item in net.ctl.get("/trails")["trails"]:
        trail = net.ctl.get(f"/trails/{item['id']}")
        hops = tuple((h["dpid"], h["in_port"], h["out_port"]) for h in trail["hops"])
        out.append((trail["id"], trail["label"], trail["src"], trail["dst"], hops))
    return sorted(out)


def tables() -> dict[str, list[str]]:
    """dump-flows of every switch without counters and ages: what the table holds.

    Fast-failover group ids and backup labels are the controller's to choose
    (a restarted one arms the trails afresh, docs/protection.rst): written G and B.
    """
    strip = re.compile(r"\b(duration|n_packets|n_bytes|idle_age|hard_age)=[^,\s]+,?\s*")
    ids = [(re.compile(r"group:\d+"), "group:G"),
           (re.compile(r"mpls_label=(9[89]\d{4}|10[0-4]\d{4})\b"), "mpls_label=B"),
           (re.compile(r"cookie=0x5ce70005[0-9a-f]{8}"), "cookie=0x5ce70005B")]

    def norm(line: str) -> str:
        line = strip.sub("", line)
        for pattern, text in ids:
            line = pattern.sub(text, line)
        return line
    return {sw: sorted(norm(line) for line in dump_flows(sw)) for sw in SWITCHES}


def h1_to_h2(net: ScentNet, seconds: float) -> PingStream:
    """A ping every INTERVAL from h1 to h2 for `seconds`."""
    return PingStream(net.host("h1"), net.host("h2").IP(), seconds, INTERVAL)


def audited(ctl: ControllerProcess, count: int) -> list[dict[str, Any]]:
    """The controller's audit events once there are `count` of them."""
    events = [e for e in ctl.get("/events")["events"] if e["kind"] == "audit"]
    return events if len(events) >= count else []


def test_ping_survives_a_controller_kill_and_restart(rnet: ScentNet, redis_url: str) -> None:
    before_trails, before_tables = trails(rnet), tables()
    assert len(before_trails) == 2
    stream = h1_to_h2(rnet, 12.0)
    time.sleep(2.0)
    old = rnet.ctl
    old.proc.kill()  # SIGKILL: no goodbye to the switches
    old.proc.wait(5)
    killed = time.monotonic()
    new = ControllerProcess(["--store", redis_url], ofp_port=old.ofp_port,
                            api_port=old.api_port)
    rnet.ctl = new
    wait_for(lambda: audited(new, len(SWITCHES)), 30, "every switch reconnected and audited",
             interval=0.1)
    recovered = time.monotonic() - killed
    sent, received = stream.result()
    print(f"controller restart: {sent} pings, {sent - received} lost; switches audited "
          f"{recovered:.1f} s after the kill")
    assert received == sent, f"{sent - received} of {sent} pings lost across the restart"
    assert trails(rnet) == before_trails
    events = audited(new, len(SWITCHES))
    assert all(" 0 installed, 0 deleted" in e["message"] for e in events), events
    wait_for(lambda: len(new.get("/topology")["links"]) == 8, 20, "links rediscovered")
    # nothing duplicated, nothing missing (protection re-armed once the links are back)
    wait_for(lambda: tables() == before_tables, 10, "the tables as before the restart")


def away_events(ctl: ControllerProcess) -> int:
    """How many times the controller saw a switch disconnect."""
    return sum(1 for e in ctl.get("/events")["events"]
               if e["kind"] == "switch" and "disconnected" in e["message"])


def test_ping_survives_a_switch_reconnect(rnet: ScentNet) -> None:
    # The switch is pointed at a port nobody listens on and back: it keeps a
    # controller configured, so Open vSwitch keeps its flows while it is away.
    before_trails, before_tables = trails(rnet), tables()
    audits, aways = len(audited(rnet.ctl, 0)), away_events(rnet.ctl)
    stream = h1_to_h2(rnet, 8.0)
    time.sleep(1.0)
    subprocess.run(["ovs-vsctl", "set-controller", "s3", f"tcp:127.0.0.1:{free_port()}"],
                   check=True)
    wait_for(lambda: away_events(rnet.ctl) > aways, 10, "s3 disconnected")
    subprocess.run(["ovs-vsctl", "set-controller", "s3", f"tcp:127.0.0.1:{rnet.ctl.ofp_port}"],
                   check=True)
    wait_for(lambda: audited(rnet.ctl, audits + 1), 20, "s3 reconnected and audited")
    sent, received = stream.result()
    print(f"switch reconnect: {sent} pings, {sent - received} lost")
    assert received == sent, f"{sent - received} of {sent} pings lost across the reconnect"
    assert " 0 installed, 0 deleted" in audited(rnet.ctl, audits + 1)[-1]["message"]
    assert trails(rnet) == before_trails
    assert tables() == before_tables


def test_switch_that_lost_every_controller_is_refilled_by_the_audit(rnet: ScentNet) -> None:
    # del-controller leaves the bridge with no controller: Open vSwitch flushes its
    # flow table then (and the pings through it are lost until the switch is back);
    # the audit installs everything again, nothing twice.
    before_trails, before_tables = trails(rnet), tables()
    audits = len(audited(rnet.ctl, 0))
    stream = h1_to_h2(rnet, 6.0)
    time.sleep(1.0)
    subprocess.run(["ovs-vsctl", "del-controller", "s3"], check=True)
    away = time.monotonic()
    time.sleep(1.0)
    subprocess.run(["ovs-vsctl", "set-controller", "s3", f"tcp:127.0.0.1:{rnet.ctl.ofp_port}"],
                   check=True)
    wait_for(lambda: audited(rnet.ctl, audits + 1), 20, "s3 reconnected and audited")
    back = time.monotonic() - away
    sent, received = stream.result()
    print(f"del-controller/set-controller: {sent - received} of {sent} pings lost; table "
          f"refilled {back:.1f} s after del-controller")
    assert sent - received <= (back + 0.5) / INTERVAL
    assert trails(rnet) == before_trails
    assert tables() == before_tables
