"""Trail leases on the real switch: the ingress flow's idle timeout and the store's
expiry agree; traffic keeps a trail alive; an idle trail leaves every switch and the
store, and its label is free again."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from mininet_tests.harness import ScentNet, dump_flows, ping, running_net, trail_between
from topologies.linear import LinearTopo

LEASE = 3  # s
SWITCHES = ("s1", "s2", "s3")


@pytest.fixture(scope="module")
def line(testbed: None) -> Iterator[ScentNet]:
    """s1 - s2 - s3, one host each, trails idle out after LEASE seconds."""
    with running_net(LinearTopo(3), controller_args=["--trail-lease", str(LEASE)]) as net:
        yield net


def cookie_flows(trail_id: int) -> dict[str, list[str]]:
    """The flows of trail `trail_id` (cookie 0x5ce70001<id>) on each switch."""
    cookie = re.compile(rf"cookie=0x5ce70001{trail_id:08x},")
    return {sw: [f for f in dump_flows(sw) if cookie.search(f)] for sw in SWITCHES}


def trail_ids(net: ScentNet) -> set[int]:
    return {t["id"] for t in net.ctl.get("/trails")["trails"]}


def test_traffic_keeps_a_trail_and_silence_ends_it_on_switch_and_store_together(
        line: ScentNet) -> None:
    h1, h3 = line.host("h1"), line.host("h3")
    assert ping(h1, h3.IP())
    trail = trail_between(line, h1.IP(), h3.IP())
    assert trail["lease"] == LEASE
    ingress = [f for f in cookie_flows(trail["id"])["s1"] if "push_mpls" in f]
    assert ingress and f"idle_timeout={LEASE}" in ingress[0] and "send_flow_rem" in ingress[0]

    # three leases of steady traffic: the trail stays, same id and label
    out = h1.cmd(f"ping -n -i 0.2 -c {LEASE * 15} {h3.IP()}")
    assert f"{LEASE * 15} received" in out, out
    assert trail_between(line, h1.IP(), h3.IP())["label"] == trail["label"]

    # then silence: the switch times the classifier out, the store follows
    quiet = time.monotonic()
    gone_switch = gone_store = None
    while time.monotonic() - quiet < LEASE + 10 and (gone_switch is None or gone_store is None):
        if gone_switch is None and not [f for f in dump_flows("s1") if "push_mpls" in f
                                        and f"{trail['id']:08x}," in f]:
            gone_switch = time.monotonic() - quiet
        if gone_store is None and trail["id"] not in trail_ids(line):
            gone_store = time.monotonic() - quiet
        time.sleep(0.1)
    print(f"lease {LEASE} s: classifier gone after {gone_switch} s, trail gone from the "
          f"store after {gone_store} s of silence")
    assert gone_switch is not None and gone_store is not None
    assert LEASE - 0.5 <= gone_switch <= LEASE + 2
    assert abs(gone_store - gone_switch) <= 2.5  # one counter poll plus the sweep
    assert cookie_flows(trail["id"]) == {sw: [] for sw in SWITCHES}  # the whole path went
    events = [e for e in line.ctl.get("/events")["events"]
              if e["trail"] == trail["id"] and e["kind"] == "trail-removed"]
    assert events and ("idle" in events[-1]["message"] or "lease" in events[-1]["message"])

    # the pair works again: a fresh trail
    assert ping(h1, h3.IP())
    again = trail_between(line, h1.IP(), h3.IP())
    assert again["id"] != trail["id"]
