"""The flow-table audit on switch (re)connect, and recovery of a restarted controller."""

from dataclasses import replace

from sdnscent import compiler
from sdnscent.audit import audit_steps, diff_flows
from sdnscent.controller import ScentController
from sdnscent.flows import (
    COOKIE_MASK_ALL,
    PIPELINE_COOKIE,
    FlowDelete,
    FlowSpec,
    Output,
    trail_cookie,
)
from sdnscent.store import MemoryStore


def ops_of(change) -> list:
    """Every operation of a change, in order."""
    return [op for step in change.steps for ops in step.values() for op in ops]


def expected_on(ctrl: ScentController, dpid: int) -> list[FlowSpec]:
    """What switch `dpid` should hold, as the controller sees it now."""
    links = [lk.dst_port for lk in ctrl.topo.links() if lk.dst == dpid]
    trails = [t for t in ctrl.store.all() if dpid in t.switches]
    return compiler.switch_flows(dpid, links, trails)


# the pure diff ------------------------------------------------------------------


def test_unknown_flow_of_ours_is_deleted_strictly() -> None:
    stray = FlowSpec.make(1, 1, 100, {"eth_type": 0x8847, "mpls_label": 99}, [Output(2)],
                          cookie=trail_cookie(42))
    result = diff_flows(compiler.pipeline_flows(1), [*compiler.pipeline_flows(1), stray])
    assert result.adds == []
    assert result.deletes == [FlowDelete(1, trail_cookie(42), COOKIE_MASK_ALL, 1, stray.match,
                                         100, strict=True)]


def test_missing_flows_are_installed_and_correct_ones_get_no_operation() -> None:
    pipeline = compiler.pipeline_flows(1)
    result = diff_flows(pipeline, pipeline[:2])
    assert result.adds == pipeline[2:]
    assert result.kept == pipeline[:2] and result.deletes == []
    untouched = diff_flows(pipeline, list(reversed(pipeline)))
    assert untouched.adds == [] and untouched.deletes == [] and audit_steps(1, untouched) == []


def test_foreign_cookies_are_left_alone() -> None:
    theirs = FlowSpec.make(1, 0, 5, {"in_port": 7}, [Output(8)], cookie=0x1234)
    result = diff_flows(compiler.pipeline_flows(1), [*compiler.pipeline_flows(1), theirs])
    assert result.deletes == [] and result.adds == [] and result.foreign == 1


def test_wrong_actions_under_the_same_key_are_rewritten_in_place() -> None:
    right = compiler.link_port_flow(1, 3)
    wrong = replace(right, goto=None, actions=(Output(1),))
    result = diff_flows([right], [wrong])
    assert result.adds == [right] and result.deletes == []  # an add replaces, no gap


def test_match_strings_compare_case_insensitively() -> None:
    ours = FlowSpec.make(1, 0, 100, {"eth_src": "0A:00:00:00:00:01"}, [Output(1)],
                         cookie=trail_cookie(1))
    read_back = FlowSpec.make(1, 0, 100, {"eth_src": "0a:00:00:00:00:01"}, [Output(1)],
                              cookie=trail_cookie(1))
    result = diff_flows([ours], [read_back])
    assert result.adds == [] and result.deletes == []


def test_steps_put_label_entries_before_classifiers_and_deletes_last() -> None:
    pipeline = compiler.pipeline_flows(1)
    stray = replace(pipeline[0], priority=77)
    steps = audit_steps(1, diff_flows(pipeline, [stray]))
    assert sorted(op.table for op in steps[0][1]) == [1, 2]  # label miss, counter miss
    assert all(op.table == 0 for op in steps[1][1])
    assert all(isinstance(op, FlowDelete) for op in steps[2][1])


# the controller: reconnect and restart ---------------------------------------------


def test_reconnected_switch_with_a_correct_table_gets_no_operation(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    ctrl.ensure_trail(h1.mac, h5.mac)
    for dpid in fat_tree.switches:
        change = ctrl.switch_enter(dpid, fat_tree.ports(dpid), f"s{dpid}",
                                   installed=expected_on(ctrl, dpid))
        assert ops_of(change) == [], dpid


def test_reconnect_installs_missing_and_deletes_unknown_flows(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, _ = ctrl.ensure_trail(h1.mac, h5.mac)
    dpid = trail.ingress.dpid
    classifier = compiler.classifier_flow(trail)
    stale = replace(classifier, cookie=trail_cookie(999),
                    match=tuple(sorted({**classifier.match_dict, "in_port": 2}.items())))
    installed = [f for f in expected_on(ctrl, dpid) if f != classifier] + [stale]
    ops = ops_of(ctrl.switch_enter(dpid, fat_tree.ports(dpid), "s", installed=installed))
    assert ops == [classifier, compiler.delete_exact(stale)]


def test_restarted_controller_recovers_trails_labels_and_ids(fat_tree, clock) -> None:
    store = MemoryStore()
    first = ScentController(store, clock=clock)
    for dpid in fat_tree.switches:
        first.switch_enter(dpid, fat_tree.ports(dpid))
    for a, pa, b, pb in fat_tree.cables:
        first.link_seen(a, pa, b, pb)
        first.link_seen(b, pb, a, pa)
    hosts = [fat_tree.host(n) for n in (1, 5, 9)]
    for h in hosts:
        first.learn_host(h.dpid, h.port, h.mac, h.ip)
    there, _ = first.ensure_trail(hosts[0].mac, hosts[1].mac)
    back, _ = first.ensure_trail(hosts[1].mac, hosts[0].mac)
    tables = {d: expected_on(first, d) for d in fat_tree.switches}

    second = ScentController(store, clock=clock)  # the restart: same store, nothing else
    assert second.recover() == 2
    assert second.trail_for_pair(hosts[0].mac, hosts[1].mac) == there
    assert there.label in second.labels and back.label in second.labels
    # Switches connect before LLDP found any link: nothing correct is touched, the
    # link-port flows wait for LLDP, which then confirms them without a re-install.
    for dpid in fat_tree.switches:
        change = second.switch_enter(dpid, fat_tree.ports(dpid), installed=tables[dpid])
        assert ops_of(change) == [], dpid
    for a, pa, b, pb in fat_tree.cables:
        for src, sp, dst, dp in ((a, pa, b, pb), (b, pb, a, pa)):
            assert not any(isinstance(op, FlowSpec) for op in
                           ops_of(second.link_seen(src, sp, dst, dp)))
    assert second.store.get(there.id) == there  # kept though its hosts are not known yet
    assert not second.expire_links(3.5)
    second.learn_host(hosts[2].dpid, hosts[2].port, hosts[2].mac, hosts[2].ip)
    second.learn_host(hosts[0].dpid, hosts[0].port, hosts[0].mac, hosts[0].ip)
    fresh, _ = second.ensure_trail(hosts[0].mac, hosts[2].mac)
    assert fresh.id > back.id and fresh.label not in (there.label, back.label)
    assert second.store.get(there.id) == there  # its source came back where it was


def test_host_learned_elsewhere_drops_its_recovered_trails(fat_tree, clock) -> None:
    first = fat_tree.controller(clock, hosts=[1, 5])
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, _ = first.ensure_trail(h1.mac, h5.mac)
    second = ScentController(first.store, clock=clock)
    second.recover()
    for dpid in fat_tree.switches:
        second.switch_enter(dpid, fat_tree.ports(dpid))
    other_port = 2 if h1.port == 1 else 1
    change = second.learn_host(h1.dpid, other_port, h1.mac, h1.ip)
    assert second.store.get(trail.id) is None and trail.label not in second.labels
    assert FlowDelete(h1.dpid, trail_cookie(trail.id), COOKIE_MASK_ALL) in ops_of(change)


def test_unconfirmed_link_port_flow_is_deleted_after_the_grace_period(fat_tree, clock) -> None:
    ctrl = ScentController(MemoryStore(), clock=clock, link_port_grace=10.0)
    leftover = compiler.link_port_flow(7, 3)
    change = ctrl.switch_enter(7, fat_tree.ports(7), "s7",
                               installed=[*compiler.pipeline_flows(7), leftover])
    assert ops_of(change) == []
    clock.advance(5)
    assert not ctrl.expire_links(3.5)
    clock.advance(6)
    assert ops_of(ctrl.expire_links(3.5)) == [compiler.link_port_delete(7, 3)]


def test_link_port_flow_on_a_host_port_or_a_down_port_is_deleted_at_once(fat_tree,
                                                                         clock) -> None:
    ctrl = ScentController(MemoryStore(), clock=clock)
    ports = [p if p.number != 4 else replace(p, up=False) for p in fat_tree.ports(7)]
    ctrl.switch_enter(7, ports, "s7")
    ctrl.learn_host(7, 1, "00:00:00:00:00:01", "10.0.0.1")
    installed = [*compiler.pipeline_flows(7), compiler.link_port_flow(7, 1),
                 compiler.link_port_flow(7, 4)]
    ops = ops_of(ctrl.switch_enter(7, ports, "s7", installed=installed))
    assert {op.match for op in ops} == {compiler.link_port_flow(7, p).match for p in (1, 4)}
    assert all(isinstance(op, FlowDelete) and op.cookie == PIPELINE_COOKIE for op in ops)


def test_switch_away_within_the_grace_period_keeps_its_place_and_trails_go_around_it(
        fat_tree, clock) -> None:
    """A switch without its controller keeps its links and hosts for the grace period,
    but trails that only cross it move (it may have lost its table in a restart)."""
    ctrl = fat_tree.controller(clock)
    ctrl.switch_grace = 10.0
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, _ = ctrl.ensure_trail(h1.mac, h5.mac)
    transit = trail.hops[1].dpid
    local, _ = ctrl.ensure_trail(h1.mac, fat_tree.host(2).mac)  # starts and ends on h1's edge
    edge = h1.dpid
    assert ctrl.switch_leave(transit)  # make-before-break around it
    trail = ctrl.store.get(trail.id)
    assert transit not in trail.switches and trail.state.value == "rerouting"
    assert not ctrl.switch_leave(edge) and ctrl.store.get(local.id).hops == local.hops
    ctrl.switch_enter(edge, fat_tree.ports(edge), "s", installed=expected_on(ctrl, edge))
    clock.advance(8)
    for a, pa, b, pb in fat_tree.cables:  # LLDP still crosses every other link
        if transit not in (a, b):
            ctrl.link_seen(a, pa, b, pb)
            ctrl.link_seen(b, pb, a, pa)
    assert not ctrl.expire_links(3.5)  # its own links do not time out while it is away
    assert len(ctrl.topo.links()) == 2 * len(fat_tree.cables)
    change = ctrl.switch_enter(transit, fat_tree.ports(transit), "s",
                               installed=expected_on(ctrl, transit))
    assert ops_of(change) == [] and ctrl.store.get(trail.id) == trail
    assert not ctrl.switch_leave(transit)
    clock.advance(11)
    moved = ctrl.expire_links(100.0)
    assert transit not in ctrl.topo.switches and moved
    assert transit not in ctrl.store.get(trail.id).switches


# the glue's parser: flow stats back into FlowSpecs ---------------------------------


def test_flow_stats_entries_parse_back_into_equal_flow_specs(fat_tree, clock) -> None:
    from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

    from apps import ofmsg

    class Datapath:  # what ofmsg needs of an os-ken datapath
        id = 7
        ofproto = ofproto_v1_3
        ofproto_parser = ofproto_v1_3_parser

    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, _ = ctrl.ensure_trail(h1.mac, h5.mac)
    flows = expected_on(ctrl, 7)
    assert len(flows) > len(compiler.pipeline_flows(7))
    dp = Datapath()
    for spec in flows:
        mod = ofmsg.flow_mod(dp, spec)
        wire = bytearray()
        mod.match.serialize(wire, 0)  # values come back as the switch sends them
        entry = ofproto_v1_3_parser.OFPFlowStats(
            spec.table, 1, 0, spec.priority, 0, 0, 0, spec.cookie, 5, 500,
            ofproto_v1_3_parser.OFPMatch.parser(bytes(wire), 0), mod.instructions)
        assert ofmsg.flow_from_stats(dp, entry) == spec
    assert diff_flows(flows, flows).adds == []


def test_drop_rule_of_a_blocked_application_survives_a_restart_audit() -> None:
    from sdnscent.compiler import pipeline_flows
    from sdnscent.controller import ScentController
    from sdnscent.flows import ETH_TYPE_IPV4, KIND_BLOCK, TABLE_CLASSIFY, FlowSpec, make_cookie
    from sdnscent.store import MemoryStore
    from sdnscent.topology import Port

    ctrl = ScentController(MemoryStore())
    drop = FlowSpec.make(1, TABLE_CLASSIFY, 299, {"in_port": 1, "eth_type": ETH_TYPE_IPV4,
                                                  "eth_src": "00:00:00:00:00:01",
                                                  "eth_dst": "00:00:00:00:00:02"},
                         cookie=make_cookie(KIND_BLOCK, 7))
    change = ctrl.switch_enter(1, [Port(1), Port(2)], "s1",
                               installed=[*pipeline_flows(1), drop])
    ops = [op for step in change.steps for ops in step.values() for op in ops]
    assert not [op for op in ops if getattr(op, "cookie", None) == drop.cookie]
