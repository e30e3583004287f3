"""ScentController: the decisions it returns for switch, link, ARP and trail events."""

import re

import pytest

from sdnscent import compiler
from sdnscent.controller import (
    ARP_REPLY,
    ARP_REQUEST,
    CONTROLLER_MAC,
    ArpPacket,
    Change,
    ScentController,
)
from sdnscent.flows import (
    COOKIE_MASK_ALL,
    ETH_TYPE_MPLS,
    PIPELINE_COOKIE,
    TABLE_CLASSIFY,
    TABLE_FORWARD,
    FlowDelete,
    FlowSpec,
    Output,
    PopMpls,
    SetField,
    trail_cookie,
)
from sdnscent.planner import NoPathError
from sdnscent.store import MemoryStore
from sdnscent.topology import Port, TopologyError
from sdnscent.trails import TrailState


def ops_of(change: Change) -> list:
    """Every operation of a change, in order."""
    return [op for step in change.steps for ops in step.values() for op in ops]


def step_index(change: Change, wanted) -> list[int]:
    """The steps that hold at least one op for which wanted(op) is true."""
    return [i for i, step in enumerate(change.steps)
            if any(wanted(op) for ops in step.values() for op in ops)]


def run_done(change: Change) -> None:
    for callback in change.done:
        callback()


def label_flow(op, label: int) -> bool:
    return (isinstance(op, FlowSpec) and op.table == TABLE_FORWARD
            and op.match_dict.get("mpls_label") == label)


def cut_pod(ctrl: ScentController, fat_tree, pod: int) -> Change:
    """Take down every core-facing port of a pod's aggregation switches."""
    change = Change()
    for agg in fat_tree.aggs[pod]:
        for port in (3, 4):
            change.merge(ctrl.port_status(agg, Port(port, up=False)))
    return change


# switches and links -----------------------------------------------------------


def test_switch_enter_wipes_our_old_flows_then_installs_the_pipeline(fat_tree, clock) -> None:
    ctrl = ScentController(MemoryStore(), clock=clock)
    change = ctrl.switch_enter(7, fat_tree.ports(7), "s7")
    assert len(change.steps) == 2
    assert list(change.steps[0]) == [7] and list(change.steps[1]) == [7]
    (wipe,) = change.steps[0][7]
    assert isinstance(wipe, FlowDelete)
    assert (wipe.table, wipe.match, wipe.strict) == (None, (), False)  # every table
    mine = [PIPELINE_COOKIE, trail_cookie(1), trail_cookie(2**32 - 1)]
    assert all(c & wipe.cookie_mask == wipe.cookie for c in mine)
    assert 0x1234 & wipe.cookie_mask != wipe.cookie  # someone else's flows stay
    assert change.steps[1][7] == compiler.pipeline_flows(7)
    assert ctrl.topo.edge_ports(7) == [1, 2, 3, 4]
    assert ctrl.events[-1].kind == "switch"


def test_link_seen_installs_the_link_port_flow_once(fat_tree, clock) -> None:
    ctrl = ScentController(MemoryStore(), clock=clock)
    for dpid in (5, 7):
        ctrl.switch_enter(dpid, fat_tree.ports(dpid), f"s{dpid}")
    first = ctrl.link_seen(5, 1, 7, 3)
    assert first.steps == [{7: [compiler.link_port_flow(7, 3)]}]
    again = ctrl.link_seen(5, 1, 7, 3)
    assert not again and again.steps == []
    assert ctrl.topo.is_link_port(7, 3) and ctrl.topo.edge_ports(7) == [1, 2, 4]


def test_link_to_an_unknown_switch_or_a_down_port_is_ignored(fat_tree, clock) -> None:
    ctrl = ScentController(MemoryStore(), clock=clock)
    ctrl.switch_enter(7, fat_tree.ports(7), "s7")
    assert not ctrl.link_seen(5, 1, 7, 3)
    ctrl.switch_enter(5, fat_tree.ports(5), "s5")
    ctrl.port_status(7, Port(3, up=False))
    assert not ctrl.link_seen(5, 1, 7, 3)
    assert ctrl.topo.links() == []


def test_host_on_a_port_later_seen_as_a_link_loses_its_trails(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h2, h4, h5 = fat_tree.host(2), fat_tree.host(4), fat_tree.host(5)
    trail, _ = ctrl.ensure_trail(h2.mac, h5.mac)
    change = ctrl.link_seen(h4.dpid, h4.port, h2.dpid, h2.port)  # s8:2 -> s7:2
    assert compiler.link_port_flow(h2.dpid, h2.port) in ops_of(change)
    assert FlowDelete(h2.dpid, trail_cookie(trail.id), COOKIE_MASK_ALL) in ops_of(change)
    assert ctrl.store.get(trail.id) is None
    assert trail.label not in ctrl.labels
    assert h2.mac not in ctrl.topo.hosts and h4.mac not in ctrl.topo.hosts


def test_expire_links_removes_only_links_not_seen_within_the_timeout(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, _ = ctrl.ensure_trail(h1.mac, h5.mac)
    stale = trail.hops[1]  # the trail's aggregation -> core link
    stale_link = ctrl.topo.link_from(stale.dpid, stale.out_port)
    clock.advance(2)
    for a, pa, b, pb in fat_tree.cables:
        for src, sport, dst, dport in ((a, pa, b, pb), (b, pb, a, pa)):
            if (src, sport) != (stale.dpid, stale.out_port):
                ctrl.link_seen(src, sport, dst, dport)
    assert not ctrl.expire_links(3.0)  # 2 s since the stale link was seen: still fresh
    clock.advance(2)
    change = ctrl.expire_links(3.0)
    assert ctrl.topo.link_from(stale.dpid, stale.out_port) is None
    assert len(ctrl.topo.links()) == 2 * len(fat_tree.cables) - 1
    assert compiler.link_port_delete(stale_link.dst, stale_link.dst_port) in ops_of(change)
    moved = ctrl.store.get(trail.id)
    assert moved.label != trail.label
    assert (stale.dpid, stale.out_port) not in moved.links()
    assert any(e.kind == "link" and "timed out" in e.message for e in ctrl.events)
    assert not ctrl.expire_links(3.0)


def test_port_down_on_a_host_port_drops_the_hosts_trails(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, _ = ctrl.ensure_trail(h1.mac, h5.mac)
    back, _ = ctrl.ensure_trail(h5.mac, h1.mac)
    change = ctrl.port_status(h1.dpid, Port(h1.port, up=False))
    assert ctrl.store.all() == []
    assert h1.mac not in ctrl.topo.hosts
    deletes = {(op.dpid, op.cookie) for op in ops_of(change) if isinstance(op, FlowDelete)}
    assert {(d, trail_cookie(trail.id)) for d in trail.switches} <= deletes
    assert {(d, trail_cookie(back.id)) for d in back.switches} <= deletes


def test_reconnected_switch_gets_its_link_port_flows_and_classifiers_back(fat_tree,
                                                                          clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, _ = ctrl.ensure_trail(h1.mac, h5.mac)
    change = ctrl.switch_enter(7, fat_tree.ports(7), "s7")  # the same switch connects again
    for a, pa, b, pb in fat_tree.cables:  # and LLDP sees every link again
        for src, sport, dst, dport in ((a, pa, b, pb), (b, pb, a, pa)):
            change.merge(ctrl.link_seen(src, sport, dst, dport))
    sent = ops_of(change)
    assert compiler.link_port_flow(7, 3) in sent
    assert compiler.link_port_flow(7, 4) in sent
    assert compiler.classifier_flow(ctrl.store.get(trail.id)) in sent


def test_recabled_port_moves_trails_off_the_old_link(clock, check_hops) -> None:
    # A triangle: s1:3 <-> s3:3 direct, and s1:2 <-> s2:1, s2:2 <-> s3:2.
    ctrl = ScentController(MemoryStore(), clock=clock)
    for dpid in (1, 2, 3):
        ctrl.switch_enter(dpid, [Port(p) for p in (1, 2, 3)], f"s{dpid}")
    for a, pa, b, pb in [(1, 3, 3, 3), (1, 2, 2, 1), (2, 2, 3, 2)]:
        ctrl.link_seen(a, pa, b, pb)
        ctrl.link_seen(b, pb, a, pa)
    ctrl.learn_host(1, 1, "00:00:00:00:00:01", "10.0.0.1")
    ctrl.learn_host(3, 1, "00:00:00:00:00:03", "10.0.0.3")
    trail, _ = ctrl.ensure_trail("00:00:00:00:00:01", "00:00:00:00:00:03")
    assert trail.switches == (1, 3)
    ctrl.link_seen(1, 3, 2, 3)  # s1:3 now leads to s2:3
    now = ctrl.store.get(trail.id)
    check_hops(ctrl.topo, now.hops, ctrl.topo.hosts[now.src_mac], ctrl.topo.hosts[now.dst_mac])


# hosts and ARP -----------------------------------------------------------------


def test_arp_for_a_known_host_gets_a_proxy_reply_and_a_trail_pair(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h9 = fat_tree.host(1), fat_tree.host(9)
    result, change = ctrl.handle_arp(h1.dpid, h1.port, ARP_REQUEST, h1.mac, h1.ip, h9.ip)
    assert result.packets == [ArpPacket(h1.dpid, h1.port, ARP_REPLY, CONTROLLER_MAC, h1.mac,
                                        h9.mac, h9.ip, h1.mac, h1.ip)]
    assert result.pairs == [(h1.mac, h9.mac)]
    assert not change


def test_arp_for_an_unknown_host_probes_every_edge_port(fat_tree, clock) -> None:
    """The asker's port too: another host may sit behind it (an access switch)."""
    ctrl = fat_tree.controller(clock, hosts=range(1, 16))  # h16 is not known yet
    h1, h16 = fat_tree.host(1), fat_tree.host(16)
    result, _ = ctrl.handle_arp(h1.dpid, h1.port, ARP_REQUEST, h1.mac, h1.ip, h16.ip)
    assert result.pairs == []
    where = sorted((p.dpid, p.port) for p in result.packets)
    assert where == sorted((h.dpid, h.port) for h in fat_tree.hosts)
    assert not any(ctrl.topo.is_link_port(d, p) for d, p in where)
    for probe in result.packets:
        assert probe.opcode == ARP_REQUEST
        assert (probe.eth_src, probe.src_mac, probe.src_ip) == (CONTROLLER_MAC,) * 2 + ("0.0.0.0",)
        assert probe.eth_dst == "ff:ff:ff:ff:ff:ff"
        assert probe.dst_ip == h16.ip


def test_probes_for_one_address_are_sent_at_most_once_a_second(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock, hosts=range(1, 16))
    h1, h2, h16 = fat_tree.host(1), fat_tree.host(2), fat_tree.host(16)
    first, _ = ctrl.handle_arp(h1.dpid, h1.port, ARP_REQUEST, h1.mac, h1.ip, h16.ip)
    clock.advance(0.5)
    again, _ = ctrl.handle_arp(h2.dpid, h2.port, ARP_REQUEST, h2.mac, h2.ip, h16.ip)
    assert first.packets and again.packets == []
    clock.advance(0.5)
    later, _ = ctrl.handle_arp(h1.dpid, h1.port, ARP_REQUEST, h1.mac, h1.ip, h16.ip)
    assert len(later.packets) == len(first.packets)


def test_the_targets_reply_answers_every_waiting_requester(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock, hosts=range(1, 16))
    h1, h2, h16 = fat_tree.host(1), fat_tree.host(2), fat_tree.host(16)
    ctrl.handle_arp(h1.dpid, h1.port, ARP_REQUEST, h1.mac, h1.ip, h16.ip)
    ctrl.handle_arp(h2.dpid, h2.port, ARP_REQUEST, h2.mac, h2.ip, h16.ip)
    # h16 answers the controller's probe (sent from 0.0.0.0).
    result, _ = ctrl.handle_arp(h16.dpid, h16.port, ARP_REPLY, h16.mac, h16.ip, "0.0.0.0")
    assert len(result.packets) == 2
    assert set(result.packets) == {
        ArpPacket(h.dpid, h.port, ARP_REPLY, CONTROLLER_MAC, h.mac, h16.mac, h16.ip, h.mac, h.ip)
        for h in (h1, h2)
    }
    assert sorted(result.pairs) == sorted([(h1.mac, h16.mac), (h2.mac, h16.mac)])
    assert ctrl.topo.host_by_ip(h16.ip).mac == h16.mac
    # Answered once: a second reply from h16 has no one left to answer.
    result, _ = ctrl.handle_arp(h16.dpid, h16.port, ARP_REPLY, h16.mac, h16.ip, "0.0.0.0")
    assert result.packets == [] and result.pairs == []


def test_arp_arriving_on_an_inter_switch_port_is_ignored(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock, hosts=[1])
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    result, change = ctrl.handle_arp(5, 3, ARP_REQUEST, h5.mac, h5.ip, h1.ip)  # s5:3 -> core
    assert result.packets == [] and result.pairs == [] and not change
    assert h5.mac not in ctrl.topo.hosts


def test_gratuitous_arp_teaches_the_host_and_gets_no_answer(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock, hosts=[])
    h3 = fat_tree.host(3)
    result, _ = ctrl.handle_arp(h3.dpid, h3.port, ARP_REQUEST, h3.mac, h3.ip, h3.ip)
    assert result.packets == [] and result.pairs == []
    assert ctrl.topo.host_by_ip(h3.ip).mac == h3.mac


def test_host_that_moves_loses_its_trails(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock, hosts=[1, 5])
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, _ = ctrl.ensure_trail(h1.mac, h5.mac)
    change = ctrl.learn_host(fat_tree.host(3).dpid, 2, h1.mac, h1.ip)  # h1 now on s8:2
    assert FlowDelete(h1.dpid, trail_cookie(trail.id), COOKIE_MASK_ALL) in ops_of(change)
    assert ctrl.trail_for_pair(h1.mac, h5.mac) is None
    assert trail.label not in ctrl.labels
    assert ctrl.events[-1].kind == "trail-removed"


# trails ---------------------------------------------------------------------------


def test_ensure_trail_installs_label_path_before_classifier_and_activates(fat_tree,
                                                                        clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, change = ctrl.ensure_trail(h1.mac, h5.mac)
    assert trail.label >= 16 and trail.label in ctrl.labels
    assert trail.state is TrailState.INSTALLING and trail.created == clock.now
    assert (trail.src_ip, trail.dst_ip) == (h1.ip, h5.ip)
    assert change.steps == compiler.install_steps(trail)
    assert step_index(change, lambda op: label_flow(op, trail.label)) == [0]
    assert step_index(change, lambda op: op.table == TABLE_CLASSIFY) == [1]
    run_done(change)
    assert ctrl.store.get(trail.id).state is TrailState.ACTIVE


def test_ensure_trail_the_second_time_returns_the_same_trail_and_no_change(fat_tree,
                                                                          clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, _ = ctrl.ensure_trail(h1.mac, h5.mac)
    again, change = ctrl.ensure_trail(h1.mac, h5.mac)
    assert again == trail
    assert not change
    assert len(ctrl.labels) == 1 and len(ctrl.store.all()) == 1
    back, _ = ctrl.ensure_trail(h5.mac, h1.mac)  # the other direction is its own trail
    assert back.id != trail.id and back.label != trail.label


def test_ensure_trail_for_an_unknown_host_raises_naming_it(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock, hosts=[1])
    with pytest.raises(TopologyError, match="unknown host 00:00:00:00:00:05"):
        ctrl.ensure_trail(fat_tree.host(1).mac, fat_tree.host(5).mac)
    assert len(ctrl.labels) == 0


def test_port_down_moves_the_trail_make_before_break(fat_tree, clock, check_hops) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    old, install = ctrl.ensure_trail(h1.mac, h5.mac)
    run_done(install)
    down = old.hops[1]  # the aggregation switch's port towards the core
    change = ctrl.port_status(down.dpid, Port(down.out_port, up=False))
    new = ctrl.store.get(old.id)
    assert new.label != old.label
    assert new.state is TrailState.REROUTING and new.version > old.version
    check_hops(ctrl.topo, new.hops, h1, h5)
    new_path = step_index(change, lambda op: label_flow(op, new.label))
    classifier = step_index(change, lambda op: isinstance(op, FlowSpec)
                            and op.table == TABLE_CLASSIFY and SetField("mpls_label", new.label)
                            in op.actions)
    old_delete = step_index(change, lambda op: isinstance(op, FlowDelete)
                            and dict(op.match).get("mpls_label") == old.label)
    assert len(new_path) == len(classifier) == len(old_delete) == 1
    assert new_path[0] < classifier[0] < old_delete[0]
    # The new label path reaches every hop; the old one is deleted on every live hop.
    assert {op.dpid for op in ops_of(change) if label_flow(op, new.label)} == set(new.switches)
    deleted = {op.dpid for op in ops_of(change) if isinstance(op, FlowDelete)
               and dict(op.match).get("mpls_label") == old.label}
    assert deleted == set(old.switches)
    # The old label stays reserved until the switches confirmed the change.
    assert old.label in ctrl.labels and new.label in ctrl.labels
    run_done(change)
    assert old.label not in ctrl.labels and new.label in ctrl.labels
    assert ctrl.store.get(old.id).state is TrailState.ACTIVE
    assert any(e.kind == "reroute" and e.trail == old.id for e in ctrl.events)


def test_trail_off_a_lost_switch_is_moved_without_ops_for_that_switch(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    old, _ = ctrl.ensure_trail(h1.mac, h5.mac)
    core = old.hops[2].dpid
    change = ctrl.switch_leave(core)
    new = ctrl.store.get(old.id)
    assert core not in new.switches and new.label != old.label
    assert core not in {op.dpid for op in ops_of(change)}


def test_no_path_raises_and_is_recorded_as_a_no_path_event(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    cut_pod(ctrl, fat_tree, 1)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    with pytest.raises(NoPathError, match="no path from switch"):
        ctrl.ensure_trail(h1.mac, h5.mac)
    event = ctrl.events[-1]
    assert event.kind == "no-path"
    assert re.search(rf"{h1.ip}\b.*{h5.ip}\b", event.message), event.message
    assert len(ctrl.labels) == 0 and ctrl.store.all() == []
    assert ctrl.trail_for_pair(h1.mac, h5.mac) is None


def test_trail_left_without_any_path_is_removed_and_its_label_freed(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, _ = ctrl.ensure_trail(h1.mac, h5.mac)
    change = cut_pod(ctrl, fat_tree, 1)  # the first ports down move it, the last removes it
    assert ctrl.store.get(trail.id) is None
    run_done(change)
    assert len(ctrl.labels) == 0
    assert FlowDelete(h1.dpid, trail_cookie(trail.id), COOKIE_MASK_ALL) in ops_of(change)
    removed = [e for e in ctrl.events if e.kind == "trail-removed"]
    assert removed and "no new path" in removed[-1].message


def test_remove_trail_deletes_its_flows_everywhere_and_frees_the_label(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, _ = ctrl.ensure_trail(h1.mac, h5.mac)
    change = ctrl.remove_trail(trail.id, "operator asked")
    assert sorted(ops_of(change), key=lambda op: op.dpid) == [
        FlowDelete(d, trail_cookie(trail.id), COOKIE_MASK_ALL) for d in sorted(trail.switches)]
    assert trail.label not in ctrl.labels and len(ctrl.labels) == 0
    assert ctrl.store.get(trail.id) is None
    assert ctrl.trail_for_pair(h1.mac, h5.mac) is None
    assert ctrl.events[-1].kind == "trail-removed" and "operator asked" in ctrl.events[-1].message
    assert not ctrl.remove_trail(trail.id, "again")
    fresh, _ = ctrl.ensure_trail(h1.mac, h5.mac)
    assert fresh.id != trail.id


def test_restore_hop_returns_the_table_1_flow_of_that_hop(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, _ = ctrl.ensure_trail(h1.mac, h5.mac)
    middle, egress = trail.hops[2], trail.hops[-1]
    match = (("eth_type", ETH_TYPE_MPLS), ("mpls_label", trail.label))
    change = ctrl.restore_hop(middle.dpid, trail.label)
    (flow,) = ops_of(change)
    assert list(change.steps[0]) == [middle.dpid]
    assert (flow.dpid, flow.table, flow.match) == (middle.dpid, TABLE_FORWARD, match)
    assert flow.actions == (Output(middle.out_port),)
    assert flow.cookie == trail_cookie(trail.id)
    (last,) = ops_of(ctrl.restore_hop(egress.dpid, trail.label))
    assert last.actions == (PopMpls(), Output(h5.port))
    assert ctrl.events[-1].kind == "label-miss"


def test_restore_hop_for_an_unknown_label_or_switch_gives_nothing(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, _ = ctrl.ensure_trail(h1.mac, h5.mac)
    off_trail = next(d for d in fat_tree.switches if d not in trail.switches)
    assert not ctrl.restore_hop(trail.hops[1].dpid, trail.label + 1)
    assert not ctrl.restore_hop(off_trail, trail.label)
    assert ctrl.misses_unknown == 2


def test_counters_and_setup_latency_are_stored_with_the_trail(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    trail, _ = ctrl.ensure_trail(fat_tree.host(1).mac, fat_tree.host(5).mac)
    ctrl.update_counters([(trail.id, 10, 980), (999, 1, 1)])
    ctrl.set_setup_latency(trail.id, 12.34567)
    ctrl.set_setup_latency(trail.id, 99.0)  # only the first install counts
    stored = ctrl.store.get(trail.id)
    assert (stored.packets, stored.bytes, stored.setup_ms) == (10, 980, 12.346)


def test_new_owner_of_an_ip_takes_it_and_the_old_owners_trails_are_removed(fat_tree,
                                                                          clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, _ = ctrl.ensure_trail(h1.mac, h5.mac)
    newcomer = "00:00:00:00:aa:01"
    change = ctrl.learn_host(h5.dpid, h5.port, newcomer, h5.ip)
    assert ctrl.store.get(trail.id) is None
    assert ctrl.topo.host_by_ip(h5.ip).mac == newcomer
    assert trail.label not in ctrl.labels
    assert any(isinstance(op, FlowDelete) for op in ops_of(change))


def test_a_change_names_the_trails_it_sets_up_and_only_those(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, change = ctrl.ensure_trail(h1.mac, h5.mac)
    back, change_back = ctrl.ensure_trail(h5.mac, h1.mac)
    assert change.merge(change_back).created == [trail.id, back.id]
    assert ctrl.ensure_pair(h1.mac, h5.mac)[1].created == []
