"""The resource allocation engine wired into the controller: a hot link's largest
trail moves make-before-break to a path without it, and the hold time keeps it there."""

from __future__ import annotations

import pytest
from fabric import attachment, compile_network
from test_compiler import packet_for

from sdnscent.controller import DRAIN
from sdnscent.flows import TABLE_CLASSIFY, FlowDelete, FlowSpec, SetField
from sdnscent.telemetry import PortCounters
from sdnscent.topology import Port
from sdnscent.trails import TrailState


def ops_of(change) -> list:
    return [op for step in change.steps for ops in step.values() for op in ops]


def run_done(change) -> None:
    for callback in change.done:
        callback()


def load(ctrl, clock, link: tuple[int, int], share: float, trail_id: int,
         seconds: int = 3) -> None:
    """`seconds` of counter polls: `link` at `share` of capacity, all of it `trail_id`'s."""
    capacity = ctrl.topo.link_capacity(*link)
    sent = packets = 0
    for _ in range(seconds + 1):
        ctrl.port_counters(link[0], [PortCounters(link[1], 0, sent)])
        ctrl.update_counters([(trail_id, packets, sent)])
        clock.advance(1.0)
        sent += int(share * capacity / 8)
        packets += 1000


def test_the_trail_on_a_hot_link_moves_off_it_make_before_break(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    old, install = ctrl.ensure_trail(h1.mac, h5.mac)
    run_done(install)
    hot = old.links()[1]  # aggregation -> core
    load(ctrl, clock, hot, 0.95, old.id)
    rate = ctrl.trail_view(ctrl.store.get(old.id))["rate_bps"]  # the trail's usage, measured
    assert rate == pytest.approx(0.95 * ctrl.topo.link_capacity(*hot), rel=0.01)
    change, _ = ctrl.rebalance()
    new = ctrl.store.get(old.id)
    assert new.label != old.label and hot not in new.links()
    assert new.state is TrailState.REROUTING and ctrl.moves == 1
    # new label path, then the classifier, then (after a drain pause) the old path goes
    first = [i for i, step in enumerate(change.steps) for ops in step.values() for op in ops
             if isinstance(op, FlowSpec) and dict(op.match).get("mpls_label") == new.label]
    switch = [i for i, step in enumerate(change.steps) for ops in step.values() for op in ops
              if isinstance(op, FlowSpec) and op.table == TABLE_CLASSIFY
              and SetField("mpls_label", new.label) in op.actions]
    gone = [i for i, step in enumerate(change.steps) for ops in step.values() for op in ops
            if isinstance(op, FlowDelete) and dict(op.match).get("mpls_label") == old.label]
    assert max(first) < min(switch) <= max(switch) < min(gone)
    assert change.pause_before == {min(gone): DRAIN}
    run_done(change)
    # the packet really goes the new way and arrives
    trace = compile_network(ctrl, fat_tree).send(attachment(h1), packet_for(h1, h5))
    assert trace.delivered_to == ("h5",), trace.format()
    assert hot not in {(h.dpid, h.out_port) for h in trace.hops}
    events = [e for e in ctrl.events if e.kind.startswith("dra")]
    assert any(e.kind == "dra-move" and e.trail == old.id for e in events), events
    # still hot a moment later: the moved trail is held, nothing else moves
    load(ctrl, clock, hot, 0.95, old.id, seconds=2)
    again, _ = ctrl.rebalance()
    assert not again and ctrl.store.get(old.id).label == new.label


def test_a_cool_link_moves_nothing(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    old, install = ctrl.ensure_trail(h1.mac, h5.mac)
    run_done(install)
    load(ctrl, clock, old.links()[1], 0.5, old.id)
    change, allocations = ctrl.rebalance()
    assert not change and allocations == [] and ctrl.store.get(old.id).label == old.label


def test_an_elephant_that_fits_nowhere_stays_and_the_smaller_trail_leaves(fat_tree,
                                                                         clock) -> None:
    ctrl = fat_tree.controller(clock)
    trails = []
    for src in range(1, 5):  # pod 0 -> pod 1: many trails over few uplinks
        for dst in range(5, 9):
            trail, change = ctrl.ensure_trail(fat_tree.host(src).mac, fat_tree.host(dst).mac)
            run_done(change)
            trails.append(trail)
    elephant = trails[0]
    hot = elephant.links()[1]
    mouse = next(t for t in trails[1:] if hot in t.links())
    capacity = ctrl.topo.link_capacity(*hot)
    sent = {elephant.id: 0, mouse.id: 0}
    link_sent = 0
    idle = [(lk.src, lk.src_port) for lk in ctrl.topo.links() if (lk.src, lk.src_port) != hot]
    for _ in range(4):  # every link measured: idle but the hot one
        ctrl.port_counters(hot[0], [PortCounters(hot[1], 0, link_sent)])
        for dpid, port in idle:
            ctrl.port_counters(dpid, [PortCounters(port, 0, 0)])
        ctrl.update_counters([(i, n // 100, n) for i, n in sent.items()])
        clock.advance(1.0)
        sent[elephant.id] += int(0.9 * capacity / 8)
        sent[mouse.id] += int(0.08 * capacity / 8)
        link_sent += int(0.98 * capacity / 8)
    change, _ = ctrl.rebalance()
    assert ctrl.store.get(elephant.id).label == elephant.label  # 90 %: it would fill any link
    moved = ctrl.store.get(mouse.id)
    assert moved.label != mouse.label and hot not in moved.links()
    kinds = [(e.kind, e.trail) for e in ctrl.events]
    assert ("dra-stuck", elephant.id) in kinds and ("dra-move", mouse.id) in kinds
    assert ("dra-move", elephant.id) not in kinds


def test_a_pinned_trail_is_never_moved_for_load_but_still_for_a_failure(fat_tree,
                                                                       clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    old, install = ctrl.ensure_trail(h1.mac, h5.mac)
    run_done(install)
    version = ctrl.store.get(old.id).version
    pinned = ctrl.pin_trail(old.id, True)
    assert pinned.extra == {"pinned": "true"} and ctrl.trail_view(pinned)["pinned"] is True
    assert ctrl.store.get(old.id).version == version + 1
    hot = old.links()[1]
    load(ctrl, clock, hot, 0.95, old.id)
    change, _ = ctrl.rebalance()
    assert not change and ctrl.store.get(old.id).label == old.label
    down = old.hops[1]  # a broken path still moves it
    assert ctrl.port_status(down.dpid, Port(down.out_port, up=False))
    assert ctrl.store.get(old.id).label != old.label
    assert ctrl.pin_trail(old.id, False).extra == {} and ctrl.pin_trail(999, True) is None
