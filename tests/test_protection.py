"""Fast-failover protection proved in the forwarding simulator: with a trail's link
(or next switch) dead, every protected hop's backup detour delivers the packet to
the right host, under the trail's policy (zones, levels, network-function chain),
and a failover re-plan moves the trail off the detour without a lost packet."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from sdnscent import compiler
from sdnscent.controller import Change, ScentController
from sdnscent.core.protection import ProtectionManager
from sdnscent.flows import Group, GroupDelete, GroupSpec
from sdnscent.labels import LabelAllocator
from sdnscent.pipeline import (
    BACKUP_LABEL_MAX,
    BACKUP_LABEL_MIN,
    PROTECTION_GROUP_MAX,
    PROTECTION_GROUP_MIN,
)
from sdnscent.protection import DetourPlanner, ProtectionTable, check_mode, unprotected
from sdnscent.simulator import Network, Switch, ipv4_packet
from sdnscent.topology import Port
from sdnscent.trails import Trail
from tests.conftest import FakeClock, FatTree, HostSpec
from tests.fabric import link_ports, sim_hosts, sim_links, trails_by_switch
from tests.test_appcontroller import (
    LEAF_SPINE,
    NF_CABLES,
    NF_PORTS,
    PAYROLL,
    ZH,
    installed,
    policy,
    zoned_controller,
)


def run_done(change: Change) -> None:
    for callback in change.done:
        callback()


def tables(ctrl: ScentController) -> dict[int, list]:
    """What each switch gets when it connects: groups first, then its flows."""
    ports = link_ports(ctrl)
    crossing = trails_by_switch(ctrl.store.all())
    prot = ctrl.s.protection
    out = {}
    for dpid in sorted(ctrl.topo.switches):
        trails = crossing.get(dpid, [])
        flows = prot.expected(dpid, compiler.switch_flows(dpid, ports[dpid], trails), trails)
        out[dpid] = [*prot.groups(dpid), *flows]
    return out


def fat_network(ctrl: ScentController, tree: FatTree) -> Network:
    return Network({d: Switch(d, specs) for d, specs in tables(ctrl).items()},
                   sim_links(tree), sim_hosts(tree))


def host_of(hosts: Iterable[HostSpec], mac: str) -> HostSpec:
    return next(h for h in hosts if h.mac == mac)


def packet(src: HostSpec, dst: HostSpec):
    return ipv4_packet(src.ip, dst.ip, eth_src=src.mac, eth_dst=dst.mac, ip_proto=17,
                       src_port=4000, dst_port=5000)


def fat_controller(tree: FatTree, clock: FakeClock, mode: str,
                   pairs: Iterable[tuple[int, int]]) -> ScentController:
    ctrl = tree.controller(clock, protection=mode)
    for s, d in pairs:
        _, change = ctrl.ensure_pair(tree.host(s).mac, tree.host(d).mac)
        run_done(change)
    return ctrl


PAIRS = [(1, 16), (16, 1), (1, 5), (3, 4), (2, 11), (9, 6)]  # other pod, same pod, same edge


# -- every protected hop delivers with its link (or next switch) dead ---------------------------
@pytest.mark.parametrize("mode", ["link", "node"])
def test_every_protected_hop_delivers_with_its_link_dead(fat_tree, clock, mode: str) -> None:
    ctrl = fat_controller(fat_tree, clock, mode, PAIRS)
    net = fat_network(ctrl, fat_tree)
    checked = 0
    for trail in ctrl.store.all():
        src, dst = host_of(fat_tree.hosts, trail.src_mac), host_of(fat_tree.hosts, trail.dst_mac)
        armed = ctrl.s.protection.armed(trail.id)
        assert armed is not None or len(trail.hops) == 1
        if armed is None:
            continue
        assert len(armed.guards) == len(trail.hops) - 1
        assert unprotected(armed.guards) == [], armed.guards  # a fat-tree has a detour everywhere
        sent = packet(src, dst)
        primary = net.send(f"h{src.n}", sent)
        assert primary.delivered_to == (f"h{dst.n}",)
        assert {t.packet.mpls for t in primary.transits} == {(trail.label,)}
        for guard in armed.guards:
            net.fail_link((guard.dpid, guard.port))
            trace = net.send(f"h{src.n}", sent)
            net.fail_link((guard.dpid, guard.port), up=True)
            assert trace.delivered_to == (f"h{dst.n}",), trace.format()
            assert trace.deliveries[0].packet == sent and not trace.drops and not trace.loop
            assert trace.packet_ins == ()
            assert (guard.dpid, guard.detour.first_port) in {t.src for t in trace.transits}
            stacked = {t.packet.mpls for t in trace.transits if len(t.packet.mpls) == 2}
            if guard.detour.transit:  # the backup label rides on top of the trail's own
                assert len(stacked) == 1
                (outer, inner), = stacked
                assert BACKUP_LABEL_MIN <= outer <= BACKUP_LABEL_MAX and inner == trail.label
            checked += 1
    assert checked >= 15


def test_node_protection_survives_the_next_switch_dying(fat_tree, clock) -> None:
    ctrl = fat_controller(fat_tree, clock, "node", PAIRS)
    net = fat_network(ctrl, fat_tree)
    nodes = 0
    for trail in ctrl.store.all():
        armed = ctrl.s.protection.armed(trail.id)
        if armed is None:
            continue
        src, dst = host_of(fat_tree.hosts, trail.src_mac), host_of(fat_tree.hosts, trail.dst_mac)
        for guard in armed.guards:
            nxt = trail.hops[guard.index + 1].dpid
            if guard.kind != "node":
                # only where the next switch is the exit switch (the host hangs off it)
                assert guard.index + 1 == len(trail.hops) - 1, guard
                continue
            assert nxt not in guard.detour.switches
            dead = [(a, pa) for a, pa, b, pb in fat_tree.cables if nxt in (a, b)]
            dead = [(a, pa) if a == nxt else (a, pa) for a, pa in dead]
            for port in dead:
                net.fail_link(port)
            trace = net.send(f"h{src.n}", packet(src, dst))
            for port in dead:
                net.fail_link(port, up=True)
            assert trace.delivered_to == (f"h{dst.n}",), trace.format()
            assert nxt not in {h.dpid for h in trace.hops}
            nodes += 1
    assert nodes >= 8


def test_detours_and_groups_are_shared_between_trails(fat_tree, clock) -> None:
    pairs = [(s, d) for s in range(1, 17) for d in range(1, 17) if s != d]
    ctrl = fat_controller(fat_tree, clock, "link", pairs)
    table = ctrl.s.protection.table
    guards = [g for t in ctrl.store.all() if (a := ctrl.s.protection.armed(t.id))
              for g in a.guards if g.detour is not None]
    labelled = [g for g in guards if g.detour.transit]
    assert len(guards) > 500
    # one backup label per distinct detour, far fewer than the hops they protect
    assert table.detour_count == len({g.detour for g in labelled}) < len(labelled) / 5
    assert table.group_count < len(guards) / 2
    specs = table.specs()
    gids = [s.group_id for s in specs if isinstance(s, GroupSpec)]
    assert len(gids) == len(set(gids)) and all(
        PROTECTION_GROUP_MIN <= g <= PROTECTION_GROUP_MAX for g in gids)
    assert all(len(s.buckets) == 2 and s.kind == "fast_failover" for s in specs
               if isinstance(s, GroupSpec))
    # removing every trail gives every group and backup label back
    change = Change()
    for trail in ctrl.store.all():
        change.merge(ctrl.remove_trail(trail.id, "test"))
    deletes = [op for step in change.steps for ops in step.values() for op in ops
               if isinstance(op, GroupDelete)]
    assert len(deletes) == len(gids)
    assert table.group_count == table.detour_count == 0 and len(table.labels) == 0


def test_protection_none_installs_no_group(fat_tree, clock) -> None:
    ctrl = fat_controller(fat_tree, clock, "none", PAIRS)
    assert all(not isinstance(op, GroupSpec) and not any(isinstance(a, Group) for a in
                                                          getattr(op, "actions", ()))
               for specs in tables(ctrl).values() for op in specs)
    assert ctrl.s.protection.armed(ctrl.store.all()[0].id) is None


def test_bad_mode_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="protection 'links': expected one of link, node, none"):
        check_mode("links")


# -- the install, the failover re-plan and re-arming, step by step ----------------------------
def apply(net: Network, change: Change, probe) -> None:
    """Send a Change step by step, probing delivery before the first and after each."""
    probe()
    for step in change.steps:
        for ops in step.values():
            net.apply(ops)
        probe()


def test_install_sends_groups_before_the_flows_that_use_them(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock, protection="node")
    net = fat_network(ctrl, fat_tree)  # pipeline only
    h1, h16 = fat_tree.host(1), fat_tree.host(16)
    trail, change = ctrl.ensure_trail(h1.mac, h16.mac)
    first = [op for ops in change.steps[0].values() for op in ops]
    assert first and all(isinstance(op, GroupSpec) or op.cookie >> 32 == 0x5CE70005
                         for op in first)
    for step in change.steps:  # the simulator refuses a flow into a missing group
        for ops in step.values():
            net.apply(ops)
    run_done(change)
    assert net.send("h1", packet(h1, h16)).delivered_to == ("h16",)
    assert ctrl.trail_view(trail)["protection"][0]["protection"] == "node"


def test_failover_replan_moves_off_the_detour_without_loss_and_rearms(fat_tree, clock) -> None:
    pairs = [(1, 16), (2, 15), (16, 1), (3, 9)]
    ctrl = fat_controller(fat_tree, clock, "node", pairs)
    net = fat_network(ctrl, fat_tree)
    h1, h16 = fat_tree.host(1), fat_tree.host(16)
    trail = ctrl.trail_for_pair(h1.mac, h16.mac)
    dpid, port = trail.hops[1].dpid, trail.hops[1].out_port  # aggregation -> core
    link = ctrl.topo.link_from(dpid, port)
    net.fail_link((dpid, port))  # carrier lost: the FF group moved traffic to the detour

    def probe() -> None:
        for s, d in pairs:
            src, dst = fat_tree.host(s), fat_tree.host(d)
            trace = net.send(f"h{s}", packet(src, dst))
            assert trace.delivered_to == (f"h{d}",), trace.format()
            assert not trace.drops and not trace.packet_ins

    lost = ctrl.port_status(dpid, Port(port, f"s{dpid}-eth{port}", up=False))
    lost.merge(ctrl.port_status(link.dst, Port(link.dst_port, "", up=False)))
    apply(net, lost, probe)
    run_done(lost)
    cable = {(dpid, port), (link.dst, link.dst_port)}
    for t in ctrl.store.all():
        assert not cable & set(t.links())
        armed = ctrl.s.protection.armed(t.id)
        assert armed is not None
        for guard in armed.guards:  # re-armed: no detour over the dead cable
            assert guard.detour is not None and not cable & set(guard.detour.links())
    # every hop of every trail is protected again: fail each, still delivered
    for t in ctrl.store.all():
        src, dst = host_of(fat_tree.hosts, t.src_mac), host_of(fat_tree.hosts, t.dst_mac)
        for guard in ctrl.s.protection.armed(t.id).guards:
            net.fail_link((guard.dpid, guard.port))
            trace = net.send(f"h{src.n}", packet(src, dst))
            net.fail_link((guard.dpid, guard.port), up=True)
            net.fail_link((dpid, port))
            assert trace.delivered_to == (f"h{dst.n}",), trace.format()
    # nothing is left of what no trail uses: the switches hold exactly the expected tables
    for d, specs in tables(ctrl).items():
        sw = net.switches[d]
        assert sorted(map(repr, sw.flows)) == sorted(
            repr(s) for s in specs if not isinstance(s, GroupSpec)), d
        assert set(sw.groups.values()) == {s for s in specs if isinstance(s, GroupSpec)}, d


# -- policy: zones, levels and the firewall chain ------------------------------------------------
def protected_zoned(clock: FakeClock, cables=LEAF_SPINE) -> ScentController:
    ctrl = zoned_controller(clock, cables, rules=policy(PAYROLL))
    ctrl.s.protection = ProtectionManager(ctrl.s, "node")
    installed(ctrl, [(s, d) for s in ZH for d in ZH if s != d])
    return ctrl


def zoned_protected_network(ctrl: ScentController, cables=LEAF_SPINE) -> Network:
    from sdnscent.simulator import both_ways
    links = both_ways([((a, pa), (b, pb)) for a, pa, b, pb in cables] + list(NF_CABLES))
    return Network({d: Switch(d, specs) for d, specs in tables(ctrl).items()}, links,
                   {(h.dpid, h.port): f"h{h.n}" for h in ZH.values()})


def test_backups_of_restricted_trails_keep_the_level_and_the_firewall(clock) -> None:
    ctrl = protected_zoned(clock)
    rules = ctrl.policy
    net = zoned_protected_network(ctrl)
    payroll = [t for t in ctrl.store.all() if t.app == "payroll"]
    assert len(payroll) == 14
    checked = 0
    for trail in payroll:
        armed = ctrl.s.protection.armed(trail.id)
        src = next(h for h in ZH.values() if h.mac == trail.src_mac)
        dst = next(h for h in ZH.values() if h.mac == trail.dst_mac)
        sent = ipv4_packet(src.ip, dst.ip, eth_src=src.mac, eth_dst=dst.mac, ip_proto=6,
                           src_port=40000, dst_port=443)
        for guard in armed.guards:
            if guard.detour is None:
                continue
            assert all(rules.level_of(f"s{d}") >= 1 for d in guard.detour.switches), guard
            net.fail_link((guard.dpid, guard.port))
            trace = net.send(f"h{src.n}", sent)
            net.fail_link((guard.dpid, guard.port), up=True)
            assert trace.delivered_to == (f"h{dst.n}",), trace.format()
            assert trace.deliveries[0].packet == sent
            crossed = {h.dpid for h in trace.hops}
            assert all(rules.level_of(f"s{d}") >= 1 for d in crossed), trace.format()
            fw = [t for t in trace.transits if t.src in NF_PORTS]
            assert len(fw) == 1 and {fw[0].src, fw[0].dst} == {(4, 2), (4, 3)}, trace.format()
            checked += 1
    assert checked >= 14
    # the default trails may use the dmz spine s2 for their detours
    default = [g for t in ctrl.store.all() if t.app == "default" and len(t.hops) > 1
               for g in ctrl.s.protection.armed(t.id).guards if g.detour is not None]
    assert any(2 in g.detour.switches for g in default)


def test_hop_without_a_compliant_backup_is_unprotected_with_the_reason(clock) -> None:
    two_spines = tuple(c for c in LEAF_SPINE if c[0] in (1, 2))  # s1 (core), s2 (dmz)
    ctrl = protected_zoned(clock, two_spines)
    payroll = [t for t in ctrl.store.all() if t.app == "payroll"]
    for trail in payroll:
        armed = ctrl.s.protection.armed(trail.id)
        spine_hops = [g for g in armed.guards if g.dpid in (3, 4, 5)
                      and ctrl.topo.link_from(g.dpid, g.port).dst == 1]
        assert spine_hops
        for guard in spine_hops:  # the only other spine is the dmz one (level 0)
            assert guard.kind == "none" and "level" in guard.reason, guard
        view = ctrl.trail_view(trail)["protection"]
        assert any(g["protection"] == "none" and "reason" in g for g in view)
    events = [e for e in ctrl.events if e.kind == "unprotected"]
    assert events and all("has no backup" in e.message for e in events)
    # a default trail has no such rule: its hops to a spine are protected through the other
    default = [t for t in ctrl.store.all() if t.app == "default" and {1, 2} & set(t.switches)]
    assert default and all(not unprotected(ctrl.s.protection.armed(t.id).guards)
                           for t in default)


def test_detour_planner_reports_no_detour_on_a_tree() -> None:
    from tests.conftest import build_fat_tree
    tree = build_fat_tree(4)
    topo = tree.topology()
    for a, pa, b, pb in tree.cables:  # keep one aggregation uplink per edge: a tree
        if (a, pa, b, pb) not in tree.cables[::2]:
            topo.remove_link(a, pa)
            topo.remove_link(b, pb)
    planner = DetourPlanner(topo)
    src, dst = tree.host(1), tree.host(3)
    hops = ctrl_hops(topo, src, dst)
    guards = planner.guards(Trail(1, 16, src.mac, dst.mac, src.ip, dst.ip, hops), "node")
    assert guards and all(g.kind == "none" and "no detour" in g.reason for g in guards)


def ctrl_hops(topo, src: HostSpec, dst: HostSpec):
    from sdnscent.planner import Planner
    return Planner(topo).host_hops(topo.hosts[src.mac], topo.hosts[dst.mac])


def test_table_refuses_when_labels_run_out(fat_tree, clock) -> None:
    ctrl = fat_controller(fat_tree, clock, "node", [(1, 16)])
    trail = ctrl.trail_for_pair(fat_tree.host(1).mac, fat_tree.host(16).mac)
    table = ProtectionTable()
    table.labels = LabelAllocator(BACKUP_LABEL_MAX, BACKUP_LABEL_MAX)  # one label left
    guards = ctrl.s.protection.guards(trail)
    armed, ops = table.arm(trail, guards)
    kinds = [g.kind for g in armed.guards]
    assert "none" in kinds and any(k != "none" for k in kinds)
    assert any("in use" in g.reason for g in armed.guards if g.kind == "none")


def test_a_trail_whose_detour_loses_a_link_is_rearmed(fat_tree, clock) -> None:
    ctrl = fat_controller(fat_tree, clock, "link", [(1, 16)])
    trail = ctrl.trail_for_pair(fat_tree.host(1).mac, fat_tree.host(16).mac)
    guard = next(g for g in ctrl.s.protection.armed(trail.id).guards
                 if g.detour is not None and len(g.detour.links()) > 2
                 and not set(g.detour.links()[1:2]) & set(trail.links()))
    dpid, port = guard.detour.links()[1]  # on the detour, not on the trail
    link = ctrl.topo.link_from(dpid, port)
    net = fat_network(ctrl, fat_tree)
    net.fail_link((dpid, port))
    change = ctrl.port_status(dpid, Port(port, f"s{dpid}-eth{port}", up=False))
    change.merge(ctrl.port_status(link.dst, Port(link.dst_port, "", up=False)))
    assert ctrl.trail_for_pair(fat_tree.host(1).mac, fat_tree.host(16).mac) == trail  # unmoved
    for step in change.steps:
        for ops in step.values():
            net.apply(ops)
    run_done(change)
    again = next(g for g in ctrl.s.protection.armed(trail.id).guards if g.index == guard.index)
    cable = {(dpid, port), (link.dst, link.dst_port)}
    assert again.detour is not None and not cable & set(again.detour.links())
    assert any(e.kind == "unprotected" for e in ctrl.events) is False
    net.fail_link((guard.dpid, guard.port))  # the trail's own link now: the new detour works
    h1, h16 = fat_tree.host(1), fat_tree.host(16)
    trace = net.send("h1", packet(h1, h16))
    assert trace.delivered_to == ("h16",), trace.format()
    assert (again.dpid, again.detour.first_port) in {t.src for t in trace.transits}


def test_trails_recovered_after_a_restart_are_armed_once_their_links_are_back(
        fat_tree, clock) -> None:
    first = fat_controller(fat_tree, clock, "node", PAIRS)
    again = ScentController(first.store, clock=clock, protection="node")
    assert again.recover() == len([t for t in first.store.all()])
    changes = Change()
    for dpid in fat_tree.switches:
        changes.merge(again.switch_enter(dpid, fat_tree.ports(dpid), f"s{dpid}"))
    for a, pa, b, pb in fat_tree.cables:
        changes.merge(again.link_seen(a, pa, b, pb))
        changes.merge(again.link_seen(b, pb, a, pa))
    for h in fat_tree.hosts:
        again.learn_host(h.dpid, h.port, h.mac, h.ip)
    net = Network({}, sim_links(fat_tree), sim_hosts(fat_tree))
    for step in changes.steps:  # every switch: delete all groups, then the audit
        for ops in step.values():
            net.apply(ops)
    for trail in again.store.all():
        if len(trail.hops) == 1:
            continue
        armed = again.s.protection.armed(trail.id)
        assert armed is not None and armed.groups, trail
        src, dst = host_of(fat_tree.hosts, trail.src_mac), host_of(fat_tree.hosts, trail.dst_mac)
        guard = armed.guards[0]
        net.fail_link((guard.dpid, guard.port))
        trace = net.send(f"h{src.n}", packet(src, dst))
        net.fail_link((guard.dpid, guard.port), up=True)
        assert trace.delivered_to == (f"h{dst.n}",), trace.format()


def test_the_miss_path_restores_a_protected_hop_into_its_group(fat_tree, clock) -> None:
    ctrl = fat_controller(fat_tree, clock, "node", [(1, 16)])
    trail = ctrl.trail_for_pair(fat_tree.host(1).mac, fat_tree.host(16).mac)
    hop = trail.hops[2]  # the core switch
    [flow] = ctrl.restore_hop(hop.dpid, trail.label).steps[0][hop.dpid]
    assert flow.actions == (Group(ctrl.s.protection.armed(trail.id).group_of[2]),)


def test_an_application_added_by_a_new_policy_gets_detours_under_its_rules(clock) -> None:
    ctrl = protected_zoned(clock)  # payroll detours use the core spines s1 and s6 only
    default = [t for t in ctrl.store.all() if t.app == "default" and len(t.hops) > 1]
    via_dmz = [t for t in default if any(
        g.detour is not None and 2 in g.detour.switches
        for g in ctrl.s.protection.armed(t.id).guards)]
    assert via_dmz
    stricter = policy(PAYROLL + """
      - name: everyone
        endpoints: {prefixes: [10.0.0.0/8]}
        requirements: {avoid: {zones: [dmz]}}
    """)
    ctrl.set_policy(stricter)
    for trail in ctrl.store.all():
        armed = ctrl.s.protection.armed(trail.id)
        if trail.app == "default" or armed is None:
            continue
        assert all(2 not in g.detour.switches for g in armed.guards if g.detour is not None)


def test_rest_lists_each_hops_protection_and_events_name_unprotected_hops(clock) -> None:
    from sdnscent.rest import create_app

    two_spines = tuple(c for c in LEAF_SPINE if c[0] in (1, 2))
    ctrl = protected_zoned(clock, two_spines)
    client = create_app(ctrl).test_client()
    trail = next(t for t in ctrl.store.all() if t.app == "payroll")
    body = client.get(f"/api/v1/trails/{trail.id}").get_json()
    assert [g["hop"] for g in body["protection"]] == [
        i for i, h in enumerate(trail.hops[:-1]) if h.via is None]
    none = [g for g in body["protection"] if g["protection"] == "none"]
    assert none and all("level >= 1" in g["reason"] for g in none)
    events = client.get("/api/v1/events").get_json()["events"]
    assert any(e["kind"] == "unprotected" and e["trail"] == trail.id for e in events)


def test_a_restarted_controller_keeps_protection_on_the_switches_then_replaces_it(
        fat_tree, clock) -> None:
    first = fat_controller(fat_tree, clock, "node", PAIRS)
    net = fat_network(first, fat_tree)
    again = ScentController(first.store, clock=clock, protection="node")
    again.recover()
    audit = Change()
    for dpid in fat_tree.switches:  # each switch reconnects with its table read back
        audit.merge(again.switch_enter(dpid, fat_tree.ports(dpid), f"s{dpid}",
                                       installed=list(net.switches[dpid].flows)))
    ops = [op for step in audit.steps for items in step.values() for op in items]
    assert not [op for op in ops if isinstance(op, GroupDelete)]  # the groups stay
    assert not [op for op in ops if getattr(op, "actions", None) is not None
                or getattr(op, "cookie", 0) >> 32 == 0x5CE70005], ops  # nothing rewritten
    table = again.s.protection.table
    assert table.legacy_groups and table.legacy_labels
    for step in audit.steps:
        for items in step.values():
            net.apply(items)

    def fails_over() -> None:
        for trail in first.store.all():
            if len(trail.hops) == 1:
                continue
            src = host_of(fat_tree.hosts, trail.src_mac)
            dst = host_of(fat_tree.hosts, trail.dst_mac)
            hop = trail.hops[1]
            net.fail_link((hop.dpid, hop.out_port))
            trace = net.send(f"h{src.n}", packet(src, dst))
            net.fail_link((hop.dpid, hop.out_port), up=True)
            assert trace.delivered_to == (f"h{dst.n}",), trace.format()

    fails_over()  # the old groups still protect
    for h in fat_tree.hosts:
        again.learn_host(h.dpid, h.port, h.mac, h.ip)
    for a, pa, b, pb in fat_tree.cables:  # LLDP finds the links again: changes in order
        for change in (again.link_seen(a, pa, b, pb), again.link_seen(b, pb, a, pa)):
            for step in change.steps:
                for items in step.values():
                    net.apply(items)
    assert not table.legacy_groups and not table.legacy_labels
    fails_over()  # the new ones protect, the old ones are gone
    for d, specs in tables(again).items():
        assert set(net.switches[d].groups.values()) == {
            s for s in specs if isinstance(s, GroupSpec)}, d


def test_a_switch_that_reconnects_intact_keeps_its_groups_and_one_that_lost_them_not(
        fat_tree, clock) -> None:
    ctrl = fat_controller(fat_tree, clock, "node", PAIRS)
    net = fat_network(ctrl, fat_tree)
    dpid = ctrl.trail_for_pair(fat_tree.host(1).mac, fat_tree.host(16).mac).hops[1].dpid
    intact = ctrl.switch_enter(dpid, fat_tree.ports(dpid), f"s{dpid}",
                               installed=list(net.switches[dpid].flows))
    assert not [op for step in intact.steps for ops in step.values() for op in ops
                if isinstance(op, (GroupDelete, GroupSpec))]
    wiped = [f for f in net.switches[dpid].flows if not any(
        isinstance(a, Group) for a in f.actions)]  # as after a group delete
    again = ctrl.switch_enter(dpid, fat_tree.ports(dpid), f"s{dpid}", installed=wiped)
    ops = [op for step in again.steps for items in step.values() for op in items]
    assert isinstance(ops[0], GroupDelete) and {op for op in ops if isinstance(op, GroupSpec)} \
        == {s for s in ctrl.s.protection.groups(dpid)}
