"""The resource allocation engine on the wire: two trails share a spine uplink, iperf3
fills it, and within 5 s the engine moves the other trail to the free spine
(make-before-break) while a 1,000 packets/s sequence-numbered UDP stream on it loses
nothing. The elephant, which would fill any link, stays."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mininet_tests.harness import REPO, ScentNet, ping, running_net, trail_between, wait_for
from topologies.leafspine import LeafSpineTopo

CAPACITY = 100_000_000  # bit/s every link counts as (--default-link-capacity)
STREAM_PPS, STREAM_SECONDS, STREAM_SIZE = 1000, 10, 1200  # ~9.6 Mbit/s: 10 % of a link


@pytest.fixture(scope="module")
def fabric(testbed: None) -> Iterator[ScentNet]:
    """2 spines, 2 leaves, 2 hosts per leaf; links count as 100 Mbit/s; polls every 0.5 s."""
    with running_net(LeafSpineTopo(spines=2, leaves=2, hosts_per_leaf=2),
                     controller_args=["--default-link-capacity", str(CAPACITY),
                                      "--stats-interval", "0.5"]) as net:
        yield net


def uplink(trail: dict[str, Any]) -> tuple[str, int]:
    """The (leaf dpid, port) where a trail leaves its first switch."""
    return trail["hops"][0]["dpid"], trail["hops"][0]["out_port"]


def python(host: Any, *args: str) -> Any:
    return host.popen([sys.executable, "-m", "mininet_tests.udpseq", *args], cwd=str(REPO),
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_the_other_trail_moves_off_a_saturated_link_without_loss(fabric: ScentNet) -> None:
    hosts = {n: fabric.host(n) for n in ("h1", "h2", "h3", "h4")}
    pairs = [(s, d) for s in ("h1", "h2") for d in ("h3", "h4")]
    for s, d in pairs:
        assert wait_for(lambda s=s, d=d: ping(hosts[s], hosts[d].IP()), 20, f"{s} -> {d}")
    trails = {p: trail_between(fabric, hosts[p[0]].IP(), hosts[p[1]].IP()) for p in pairs}
    shared = [(a, b) for a in pairs for b in pairs if a < b
              and uplink(trails[a]) == uplink(trails[b])]
    assert shared, trails  # four trails over two uplinks: two share one
    elephant, mouse = shared[0]
    before = trails[mouse]

    ehost, edst = hosts[elephant[0]], hosts[elephant[1]]
    mhost, mdst = hosts[mouse[0]], hosts[mouse[1]]
    count = STREAM_PPS * STREAM_SECONDS
    receiver = python(mdst, "recv", "7000", "--seconds", str(STREAM_SECONDS + 20),
                      "--expect", str(count))
    server = edst.popen(["iperf3", "-s", "-1", "-p", "5201"], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    sender = python(mhost, "send", mdst.IP(), "7000", "--rate", str(STREAM_PPS),
                    "--count", str(count), "--size", str(STREAM_SIZE))
    time.sleep(1.5)
    loaded = time.monotonic()
    client = ehost.popen(["iperf3", "-c", edst.IP(), "-p", "5201", "-u", "-b", "95M", "-l",
                          "1400", "-t", "8"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def moved() -> dict[str, Any] | None:
        now = trail_between(fabric, mhost.IP(), mdst.IP())
        return now if now["label"] != before["label"] and now["state"] == "active" else None

    try:
        after = wait_for(moved, 15, "the mouse trail to move", interval=0.1)
    except Exception:
        links = [(lk["src"], lk["src_port"], lk["utilization"])
                 for lk in fabric.ctl.get("/topology")["links"] if lk["utilization"] > 0.01]
        events = fabric.ctl.get("/events")["events"][-15:]
        raise AssertionError(f"no move; loaded links {links}; last events {events}; "
                             f"trails {fabric.ctl.get('/trails')['trails']}") from None
    move_s = time.monotonic() - loaded
    sender.wait(STREAM_SECONDS + 15)
    result = json.loads(receiver.communicate(timeout=STREAM_SECONDS + 30)[0].decode())
    client.communicate(timeout=30)
    server.wait(10)
    events = [e for e in fabric.ctl.get("/events")["events"] if e["kind"].startswith("dra")]
    print(f"load to completed move: {move_s:.2f} s; stream {result}; events "
          f"{[(e['kind'], e['trail']) for e in events]}")
    assert uplink(after) != uplink(before)  # off the saturated uplink
    assert move_s <= 5.0, f"the move took {move_s:.1f} s"
    assert result["received"] == count and result["lost"] == 0, result
    assert result["duplicates"] == 0, result
    assert any(e["kind"] == "dra-move" and e["trail"] == before["id"] for e in events), events
    assert trail_between(fabric, ehost.IP(), edst.IP())["label"] == trails[elephant]["label"]
