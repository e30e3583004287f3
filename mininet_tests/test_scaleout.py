"""Two controllers share one Redis Cluster; every switch connects to both. One is
master (OpenFlow role requests), the other a standby that sees the master's trails
through the store's notifications. Kill the master with SIGKILL: the standby takes
the master role on every switch within a few seconds, serves from the store, and
no trail or ping is lost."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mininet_tests.harness import (
    ControllerProcess,
    PingStream,
    ScentNet,
    ping,
    running_net,
    trail_between,
    wait_for,
)
from tests.redisproc import REDIS_CLI, REDIS_SERVER, RedisClusterNodes, running_cluster
from topologies.leafspine import LeafSpineTopo

SWITCHES = ("s1", "s2", "s3", "s4")
INTERVAL = 0.05


@pytest.fixture(scope="module")
def cluster(testbed: None) -> Iterator[RedisClusterNodes]:
    if REDIS_SERVER is None or REDIS_CLI is None:
        pytest.skip("redis-server is not installed (scripts/setup.sh installs it)")
    with running_cluster("sdnscent-scaleout-") as nodes:
        yield nodes


@pytest.fixture(scope="module")
def pair(cluster: RedisClusterNodes) -> Iterator[tuple[ScentNet, ControllerProcess]]:
    """The fabric under c1 (master) with c2 (standby) connected to every switch too."""
    store = ["--store", cluster.url]
    with running_net(LeafSpineTopo(spines=2, leaves=2, hosts_per_leaf=2),
                     controller_args=[*store, "--controller-id", "c1"]) as net:
        c2 = ControllerProcess([*store, "--controller-id", "c2"])
        try:
            for sw in SWITCHES:
                subprocess.run(["ovs-vsctl", "set-controller", sw,
                                f"tcp:127.0.0.1:{net.ctl.ofp_port}",
                                f"tcp:127.0.0.1:{c2.ofp_port}"], check=True)
            yield net, c2
        finally:
            if net.ctl is not c2:
                assert c2.stop() == 0, c2.logs()


def _ovs_json(*args: str) -> list[list[Any]]:
    text = subprocess.run(["ovs-vsctl", "--format=json", *args], capture_output=True,
                          text=True, check=True).stdout
    return json.loads(text)["data"]


def _uuids(value: list[Any]) -> list[str]:
    """An OVSDB reference or set of references as a list of uuids."""
    if value[0] == "uuid":
        return [value[1]]
    return [ref[1] for ref in value[1]]


def roles() -> dict[tuple[str, str], str]:
    """(switch, controller port) -> the role Open vSwitch gives that connection."""
    controllers = {uuid[1]: (target, role, connected) for uuid, target, role, connected in
                   _ovs_json("--columns=_uuid,target,role,is_connected", "list", "controller")}
    out = {}
    for name, refs in _ovs_json("--columns=name,controller", "list", "bridge"):
        if name not in SWITCHES:
            continue
        for uuid in _uuids(refs):
            target, role, connected = controllers[uuid]
            if connected:
                out[(name, target.rsplit(":", 1)[1])] = role
    return out


def trails(ctl: ControllerProcess) -> list[tuple[Any, ...]]:
    return sorted((t["id"], t["label"], t["src"], t["dst"])
                  for t in ctl.get("/trails")["trails"])


def test_standby_takes_over_when_the_master_dies(
        pair: tuple[ScentNet, ControllerProcess]) -> None:
    net, c2 = pair
    c1 = net.ctl
    h1, h2, h3, h4 = (net.host(n) for n in ("h1", "h2", "h3", "h4"))
    p1, p2 = str(c1.ofp_port), str(c2.ofp_port)
    wait_for(lambda: all(roles().get((sw, p2)) == "slave" for sw in SWITCHES), 15,
             "c2 slave on every switch")
    assert all(roles()[(sw, p1)] == "master" for sw in SWITCHES), roles()
    assert c1.get("/controller")["role"] == "master"
    assert c2.get("/controller")["role"] == "standby"

    assert ping(h1, h3.IP())
    # the standby sees the master's trails through the store's notifications
    wait_for(lambda: trails(c2) == trails(c1), 5, "c2 to see c1's trails")
    before = trails(c1)
    assert len(before) == 2

    stream = PingStream(h1, h3.IP(), 10.0, INTERVAL)
    time.sleep(1.5)
    c1.proc.kill()
    c1.proc.wait(5)
    killed = time.monotonic()
    net.ctl = c2  # the harness stops (and checks) the survivor
    wait_for(lambda: c2.get("/controller")["role"] == "master", 15, "c2 to become master",
             interval=0.1)
    master_s = time.monotonic() - killed
    wait_for(lambda: all(roles().get((sw, p2)) == "master" for sw in SWITCHES), 10,
             "c2 master on every switch", interval=0.1)
    switches_s = time.monotonic() - killed
    sent, received = stream.result()
    print(f"failover: c2 master {master_s:.1f} s after the kill, on every switch after "
          f"{switches_s:.1f} s; {sent - received} of {sent} pings lost")
    assert received == sent, stream.output
    assert trails(c2) == before
    # the new master serves: new pairs get trails, and the old trail still works
    assert wait_for(lambda: ping(h2, h4.IP()), 15, "h2 -> h4 under c2", interval=0.5)
    assert trail_between(net, h2.IP(), h4.IP())["state"] in ("active", "installing")
    assert ping(h1, h3.IP())
    assert [e for e in c2.get("/events")["events"] if e["kind"] == "leader"]
