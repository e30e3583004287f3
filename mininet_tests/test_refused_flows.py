"""A switch that refuses flow mods: its trails fail instead of passing for active.

s2's label table is capped through OVSDB (Flow_Table flow_limit with
overflow_policy=refuse) at what it holds once the fabric is discovered, so every
trail hop sent to it is refused with OFPFMFC_TABLE_FULL. The trails h1 <-> h3,
which cross s2, must show as failed with that reason, leave nothing behind on
s1 and s3, and come back by themselves (retry with back-off) once the cap is
lifted.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from mininet_tests.harness import ScentNet, dump_flows, ping, running_net, wait_for
from topologies.linear import LinearTopo


def vsctl(*args: str) -> str:
    return subprocess.run(["ovs-vsctl", *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def trails_between(net: ScentNet, a: str, b: str) -> list[dict[str, Any]]:
    return [net.ctl.get(f"/trails/{t['id']}") for t in net.ctl.get("/trails")["trails"]
            if {t["src"], t["dst"]} == {a, b}]


@pytest.fixture(scope="module")
def capped(testbed: None) -> Iterator[ScentNet]:
    with running_net(LinearTopo(n=3)) as net:
        held = len(dump_flows("s2"))
        table1 = len([line for line in dump_flows("s2") if "table=1" in line])
        assert held and table1, "s2 holds its pipeline"
        vsctl("--", "--id=@ft", "create", "Flow_Table", f"flow_limit={table1}",
              "overflow_policy=refuse", "--", "set", "Bridge", "s2", "flow_tables:1=@ft")
        yield net


def test_refused_hops_fail_their_trails_which_come_back_when_the_switch_has_room(
        capped: ScentNet) -> None:
    net = capped
    h1, h3 = net.net.get("h1"), net.net.get("h3")
    ping(h1, h3.IP(), count=2)  # asks for the trails; s2 refuses their hops

    def failed() -> list[dict[str, Any]] | None:
        trails = trails_between(net, h1.IP(), h3.IP())
        return trails if len(trails) == 2 and all(t["state"] == "failed"
                                                  for t in trails) else None

    trails = wait_for(failed, 15, "both trails h1 <-> h3 failed")
    for trail in trails:
        assert "OFPFMFC_TABLE_FULL" in trail["failure"]["reason"], trail
        assert "0000000000000002" in trail["failure"]["reason"] or "0x2" in \
            trail["failure"]["reason"], trail
        cookie = f"0x5ce70001{trail['id']:08x}"
        for switch in ("s1", "s2", "s3"):  # nothing of it is left behind
            assert not [f for f in dump_flows(switch) if f"cookie={cookie}" in f], switch
    kinds = [e["kind"] for e in net.ctl.get("/events")["events"]]
    assert "trail-failed" in kinds
    assert not ping(h1, h3.IP(), count=1)
    vsctl("clear", "Bridge", "s2", "flow_tables")  # room again
    wait_for(lambda: ping(h1, h3.IP(), count=1), 40, "h1 -> h3 after the retries",
             interval=1.0)
    for trail in trails_between(net, h1.IP(), h3.IP()):
        assert trail["state"] == "active" and "failure" not in trail, trail
        assert {t["id"] for t in trails} >= {trail["id"]}  # the same trails, retried
    assert net.ctl.get("/audit")["stale"] == 0
