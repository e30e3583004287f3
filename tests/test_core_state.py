"""The core's state under faults: the trail index, hosts across a restart, bounded ARP state."""

from __future__ import annotations

import random

from sdnscent.controller import ARP_REQUEST, ScentController
from sdnscent.core.hosts import PENDING_TTL, PROBE_BURST
from sdnscent.store import MemoryStore
from sdnscent.topology import Port
from sdnscent.trails import TrailState
from tests.conftest import FakeClock, FatTree


def run_done(ctrl: ScentController, change) -> None:  # noqa: ANN001
    for callback in change.done:
        callback()


def index_matches_store(ctrl: ScentController) -> None:
    """Every live stored trail is indexed under exactly its links and switches."""
    live = [t for t in ctrl.store.all() if t.state not in (TrailState.REMOVED, TrailState.FAILED)]
    assert sorted(t.id for t in live) == ctrl.index.ids()
    for trail in live:
        for key in trail.links():
            assert trail.id in ctrl.index.on_links([key])
        for dpid in trail.switches:
            assert trail.id in ctrl.index.on_switch(dpid)
    every_link = {k for t in live for k in t.links()}
    for key in every_link:
        assert ctrl.index.on_links([key]) == {t.id for t in live if key in t.links()}


def test_the_index_follows_every_write_through_link_losses_and_removals(
        fat_tree: FatTree, clock: FakeClock) -> None:
    ctrl = fat_tree.controller(clock)
    rng = random.Random(7)
    hosts = list(fat_tree.hosts)
    for _ in range(40):
        a, b = rng.sample(hosts, 2)
        run_done(ctrl, ctrl.ensure_pair(a.mac, b.mac)[1])
    index_matches_store(ctrl)
    for a, pa, _b, _pb in rng.sample(fat_tree.cables, 4):  # losses re-plan through the index
        change = ctrl.port_status(a, Port(pa, f"s{a}-eth{pa}", "02:00:00:00:00:01", up=False))
        run_done(ctrl, change)
        index_matches_store(ctrl)
        assert not ctrl.index.on_links([(a, pa)])  # nothing rides the lost link any more
    for trail in rng.sample(ctrl.store.all(), 5):
        run_done(ctrl, ctrl.remove_trail(trail.id, "test"))
    index_matches_store(ctrl)
    fresh = ScentController(ctrl.store, clock=clock)
    fresh.recover()
    assert fresh.index.ids() == ctrl.index.ids()


def test_after_a_restart_a_link_failure_reroutes_with_hosts_from_the_store(
        fat_tree: FatTree, clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    first = ScentController(store, clock=clock)
    for dpid in fat_tree.switches:
        first.switch_enter(dpid, fat_tree.ports(dpid), f"s{dpid}")
    for a, pa, b, pb in fat_tree.cables:
        first.link_seen(a, pa, b, pb)
        first.link_seen(b, pb, a, pa)
    h1, h16 = fat_tree.host(1), fat_tree.host(16)
    for h in (h1, h16):
        first.learn_host(h.dpid, h.port, h.mac, h.ip)
    trail, change = first.ensure_trail(h1.mac, h16.mac)
    run_done(first, change)
    # kill -9: a new controller on the same store; the hosts stay silent
    second = ScentController(store, clock=clock)
    second.recover()
    for dpid in fat_tree.switches:
        second.switch_enter(dpid, fat_tree.ports(dpid), f"s{dpid}")
    for a, pa, b, pb in fat_tree.cables:
        second.link_seen(a, pa, b, pb)
        second.link_seen(b, pb, a, pa)
    assert {h1.mac, h16.mac} <= set(second.topo.hosts)
    dpid, port = trail.hops[1].dpid, trail.hops[1].out_port  # a transit link of the trail
    change = second.port_status(dpid, Port(port, "x", "02:00:00:00:00:02", up=False))
    moved = second.store.get(trail.id)
    assert moved is not None, [e.message for e in second.events]  # re-routed, not removed
    assert (dpid, port) not in moved.links() and moved.label != trail.label
    assert change.steps


def test_a_host_that_goes_away_is_forgotten_by_the_store(fat_tree: FatTree,
                                                         clock: FakeClock) -> None:
    ctrl = fat_tree.controller(clock, hosts=[1, 2])
    assert {r.mac for r in ctrl.store.hosts()} == {fat_tree.host(1).mac, fat_tree.host(2).mac}
    h1 = fat_tree.host(1)
    ctrl.port_status(h1.dpid, Port(h1.port, "x", "02:00:00:00:00:03", up=False))
    assert {r.mac for r in ctrl.store.hosts()} == {fat_tree.host(2).mac}


def test_arp_waiters_expire_and_probe_rounds_are_rate_limited(fat_tree: FatTree,
                                                              clock: FakeClock) -> None:
    ctrl = fat_tree.controller(clock, hosts=[1])
    h1 = fat_tree.host(1)
    probes = 0
    for n in range(200):  # a scan: ARP for 200 unknown addresses at once
        result, _ = ctrl.handle_arp(h1.dpid, h1.port, ARP_REQUEST, h1.mac, h1.ip,
                                    f"10.9.{n // 250}.{n % 250 + 1}")
        probes += bool(result.packets)
    hosts_mgr = ctrl.s.hosts
    assert probes == PROBE_BURST and hosts_mgr.probes_limited == 200 - PROBE_BURST
    assert len(hosts_mgr.pending_arp) == 200
    clock.advance(PENDING_TTL + 1)
    result, _ = ctrl.handle_arp(h1.dpid, h1.port, ARP_REQUEST, h1.mac, h1.ip, "10.0.0.2")
    assert list(hosts_mgr.pending_arp) == ["10.0.0.2"]  # the scan's waiters are gone
    assert list(hosts_mgr.probed) == ["10.0.0.2"] and result.packets  # the budget refilled


def test_a_failed_trail_is_not_half_restored_by_packets_that_reach_the_controller(
        fat_tree: FatTree, clock: FakeClock) -> None:
    from sdnscent.transactions import Failure

    ctrl = fat_tree.controller(clock, hosts=[1, 16])
    h1, h16 = fat_tree.host(1), fat_tree.host(16)
    trail, change = ctrl.ensure_trail(h1.mac, h16.mac)
    cleanup, verdict = ctrl.step_failed(0, change.steps[0], [
        Failure(trail.hops[1].dpid, 0, "OFPET_FLOW_MOD_FAILED/OFPFMFC_TABLE_FULL")])
    assert list(verdict.trails) == [trail.id] and cleanup.steps
    assert {d for step in cleanup.steps for d in step} == set(trail.switches)  # only there
    run_done(ctrl, change)  # its callbacks run anyway: it stays failed
    assert ctrl.store.get(trail.id).state is TrailState.FAILED
    assert not ctrl.refresh_classifiers(h1.mac, h16.mac)  # a packet-in of the pair
    assert not ctrl.restore_hop(trail.hops[2].dpid, trail.label)  # a label miss
    clock.advance(1.0)
    again = ctrl.retry_failed()  # the back-off is over: installed whole
    assert again.created == [trail.id] and ctrl.store.get(trail.id).state is TrailState.INSTALLING
    run_done(ctrl, again)
    assert ctrl.store.get(trail.id).state is TrailState.ACTIVE
    assert "failure" not in ctrl.trail_view(ctrl.store.get(trail.id))
