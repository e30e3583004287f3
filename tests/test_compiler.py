"""The flow compiler, end to end: controller -> planner -> compiler -> forwarding simulator.

Every path comes from the real planner and every table from the real compiler
(compiler.switch_flows, or the Changes the controller returns); the simulator
then proves where packets go. Nothing here writes a path by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import networkx as nx
import pytest

from sdnscent import compiler
from sdnscent.controller import Change, ScentController
from sdnscent.flows import (
    COOKIE_MASK_ALL,
    ETH_TYPE_ARP,
    ETH_TYPE_IPV4,
    ETH_TYPE_LLDP,
    ETH_TYPE_MPLS,
    KIND_PIPELINE,
    OFPP_IN_PORT,
    PIPELINE_COOKIE,
    TABLE_CLASSIFY,
    TABLE_FORWARD,
    FlowDelete,
    FlowSpec,
    GroupSpec,
    Output,
    PopMpls,
    PushMpls,
    SetField,
    cookie_trail_id,
    make_cookie,
    trail_cookie,
)
from sdnscent.hosttraffic import EDGE_KINDS, edge_kind
from sdnscent.pipeline import KIND_HOST_TRAFFIC
from sdnscent.simulator import (
    DROP_BY_FLOW,
    DROP_IN_PORT,
    DROP_UNCONNECTED,
    Network,
    Packet,
    Switch,
    Trace,
    ipv4_packet,
    pop_mpls,
)
from sdnscent.store import MemoryStore
from sdnscent.topology import Port
from sdnscent.trails import Hop, Trail, TrailState
from tests.conftest import FakeClock, FatTree, HostSpec, build_fat_tree
from tests.fabric import (
    SimPort,
    attachment,
    compile_network,
    compiled_tables,
    host_name,
    hosts_by_mac,
    layer,
    link_ports,
    sim_hosts,
    sim_links,
)

Op = FlowSpec | FlowDelete | GroupSpec
UNUSED_LABEL = 2**20 - 1  # the allocator hands labels out from 16 upwards


# Helpers ---------------------------------------------------------------------


def all_pair_trails(k: int) -> tuple[FatTree, ScentController, list[Trail]]:
    """A k-ary fat-tree controller with a trail for every ordered host pair."""
    tree = build_fat_tree(k)
    ctl = tree.controller(FakeClock())
    trails = [ctl.ensure_trail(src.mac, dst.mac)[0]
              for src in tree.hosts for dst in tree.hosts if src is not dst]
    return tree, ctl, trails


def packet_for(src: HostSpec, dst: HostSpec) -> Packet:
    """The IPv4/TCP packet `src` sends to `dst` (what a trail's classifier matches)."""
    return ipv4_packet(src.ip, dst.ip, eth_src=src.mac, eth_dst=dst.mac,
                       src_port=40000, dst_port=80)


def hop_tuples(hops: Iterable) -> list[tuple[int, int, int]]:
    return [(h.dpid, h.in_port, h.out_port) for h in hops]


def delivery_problems(trace: Trace, trail: Trail, sent: Packet, dst: HostSpec) -> list[str]:
    """Why `trace` is not `sent` carried by `trail` to `dst` (an empty list: it is).

    Delivered exactly once, to the right host, unlabelled and as sent; the
    switches crossed are exactly the trail's hops; the packet carries the
    trail's label (and only it) on every inter-switch link; no packet-in, drop
    or loop.
    """
    problems = []
    if trace.delivered_to != (host_name(dst),):
        problems.append(f"delivered to {trace.delivered_to}, not ({host_name(dst)},)")
    elif (trace.deliveries[0].dpid, trace.deliveries[0].port) != attachment(dst):
        problems.append(f"delivered at {trace.deliveries[0]}, not at {attachment(dst)}")
    elif trace.deliveries[0].packet != sent:
        problems.append(f"delivered {trace.deliveries[0].packet}, sent {sent}")
    if trace.packet_ins or trace.drops or trace.loop:
        problems.append("packet-in, drop or loop")
    if hop_tuples(trace.hops) != hop_tuples(trail.hops):
        problems.append(f"hops {hop_tuples(trace.hops)} != trail {hop_tuples(trail.hops)}")
    want_links = [((a.dpid, a.out_port), (b.dpid, b.in_port))
                  for a, b in zip(trail.hops, trail.hops[1:], strict=False)]
    if [(t.src, t.dst) for t in trace.transits] != want_links:
        problems.append(f"links {[(t.src, t.dst) for t in trace.transits]} != {want_links}")
    for t in trace.transits:
        p = t.packet
        if (p.mpls, p.eth_type, p.payload_type) != ((trail.label,), ETH_TYPE_MPLS, ETH_TYPE_IPV4):
            problems.append(f"on link {t.src}->{t.dst}: labels {p.mpls}, not ({trail.label},)")
        elif pop_mpls(p, ETH_TYPE_IPV4) != sent:
            problems.append(f"on link {t.src}->{t.dst}: headers changed: {p}")
    if problems:
        problems = [f"trail {trail.id} {trail.src_ip}->{trail.dst_ip} label {trail.label}: "
                    + "; ".join(problems) + "\n" + trace.format()]
    return problems


def send_on(net: Network, trail: Trail, hosts: dict[str, HostSpec]) -> list[str]:
    """Send the trail's packet from its source host; return delivery problems."""
    src, dst = hosts[trail.src_mac], hosts[trail.dst_mac]
    sent = packet_for(src, dst)
    return delivery_problems(net.send(attachment(src), sent), trail, sent, dst)


MAX_REPORTED = 5


def check_every_trail(net: Network, tree: FatTree, trails: list[Trail]) -> None:
    """Send every trail's packet and assert delivery (report the first few failures)."""
    hosts = hosts_by_mac(tree)
    problems: list[str] = []
    checked = 0
    for trail in trails:
        problems += send_on(net, trail, hosts)
        checked += 1
        if len(problems) >= MAX_REPORTED:
            break
    assert not problems, f"{len(problems)}+ trails misdelivered:\n" + "\n".join(
        problems[:MAX_REPORTED])
    assert checked == len(trails)


def agg_to_core(tree: FatTree, trail: Trail) -> SimPort | None:
    """The (dpid, port) where `trail` leaves an aggregation switch for a core switch."""
    for here, there in zip(trail.hops, trail.hops[1:], strict=False):
        if (layer(tree, here.dpid), layer(tree, there.dpid)) == ("aggregation", "core"):
            return (here.dpid, here.out_port)
    return None


def uses_label(flow: FlowSpec, label: int) -> bool:
    """True if the flow matches or sets MPLS label `label`."""
    return flow.match_dict.get("mpls_label") == label or any(
        isinstance(a, SetField) and a.field == "mpls_label" and a.value == label
        for a in flow.actions)


def flows_with_label(net: Network, label: int) -> list[FlowSpec]:
    return [f for sw in net.switches.values() for f in sw.flows if uses_label(f, label)]


def classifier_step(steps: list[dict[int, list[Op]]], trail_id: int) -> int:
    """Index of the one step that installs the trail's table-0 classifier."""
    [index] = [i for i, step in enumerate(steps) for ops in step.values() for op in ops
               if isinstance(op, FlowSpec) and op.table == TABLE_CLASSIFY
               and op.cookie == trail_cookie(trail_id)]
    return index


def apply_step(net: Network, step: dict[int, list[Op]]) -> None:
    """One barrier-separated step: every switch's ops, in order."""
    for dpid in sorted(step):
        net.apply(step[dpid])


def apply_change(net: Network, change: Change) -> None:
    for step in change.steps:
        apply_step(net, step)
    for callback in change.done:
        callback()


def tables_of(net: Network) -> dict[int, set[FlowSpec]]:
    return {dpid: set(sw.flows) for dpid, sw in net.switches.items()}


def compiled_sets(ctl: ScentController) -> dict[int, set[FlowSpec]]:
    return {dpid: set(flows) for dpid, flows in compiled_tables(ctl).items()}


# 1. Every ordered host pair of a fat-tree --------------------------------------


@pytest.mark.parametrize("k", [4, 8])
def test_every_host_pair_of_fat_tree_is_delivered_once_on_its_trail_labelled_on_links(
        k: int) -> None:
    tree, ctl, trails = all_pair_trails(k)
    hosts = k**3 // 4
    assert (len(tree.hosts), len(tree.switches)) == (hosts, 5 * k * k // 4)
    assert len(trails) == hosts * (hosts - 1)  # k=8: 16,256 trails
    assert len({t.label for t in trails}) == len(trails), "two trails share a label"
    # The planner picks shortest paths (as counted on the wiring, not by hand).
    graph = nx.Graph((a, b) for a, _, b, _ in tree.cables)
    dist = dict(nx.all_pairs_shortest_path_length(graph))
    by_mac = hosts_by_mac(tree)
    for t in trails:
        assert len(t.hops) == dist[by_mac[t.src_mac].dpid][by_mac[t.dst_mac].dpid] + 1
    net = compile_network(ctl, tree)  # loading validates every flow (prerequisites, ...)
    check_every_trail(net, tree, trails)


def test_changes_the_controller_returns_build_the_same_tables_as_switch_flows() -> None:
    tree = build_fat_tree(4)
    ctl = ScentController(MemoryStore(), clock=FakeClock())
    changes = [ctl.switch_enter(dpid, tree.ports(dpid), f"s{dpid}") for dpid in tree.switches]
    for a, pa, b, pb in tree.cables:
        changes += [ctl.link_seen(a, pa, b, pb), ctl.link_seen(b, pb, a, pa)]
    changes += [ctl.learn_host(h.dpid, h.port, h.mac, h.ip) for h in tree.hosts]
    changes += [ctl.ensure_trail(src.mac, dst.mac)[1]
                for src in tree.hosts for dst in tree.hosts if src is not dst]
    net = Network({}, sim_links(tree), sim_hosts(tree))
    for change in changes:
        apply_change(net, change)
    assert tables_of(net) == compiled_sets(ctl)
    assert {t.state for t in ctl.store.all()} == {TrailState.ACTIVE}
    check_every_trail(net, tree, ctl.store.all())


# 2. What does not ride a trail --------------------------------------------------


def test_labelled_packet_from_a_host_port_is_dropped_even_with_a_live_label() -> None:
    tree, ctl, trails = all_pair_trails(4)
    net = compile_network(ctl, tree)
    by_mac = hosts_by_mac(tree)
    for src in tree.hosts:
        trail = next(t for t in trails if t.src_mac == src.mac)
        dst = by_mac[trail.dst_mac]
        labelled = ipv4_packet(src.ip, dst.ip, eth_src=src.mac, eth_dst=dst.mac,
                               mpls=(trail.label,))
        trace = net.send(attachment(src), labelled)
        assert not (trace.deliveries or trace.hops or trace.packet_ins or trace.loop)
        assert [(d.dpid, d.in_port, d.reason, d.table, d.cookie) for d in trace.drops] == [
            (src.dpid, src.port, DROP_BY_FLOW, TABLE_CLASSIFY, PIPELINE_COOKIE)], trace.format()


def test_ipv4_between_hosts_without_a_trail_is_a_packet_in_from_table_0() -> None:
    tree = build_fat_tree(4)
    ctl = tree.controller(FakeClock())
    h1, h2, h3, h16 = (tree.host(n) for n in (1, 2, 3, 16))
    assert h1.dpid == h2.dpid != h3.dpid
    trail, _ = ctl.ensure_trail(h1.mac, h3.mac)  # the only trail: h1 -> h3
    net = compile_network(ctl, tree)
    assert send_on(net, trail, hosts_by_mac(tree)) == []
    cases = [
        (h3, packet_for(h3, h1)),  # the reverse direction has no trail
        (h1, packet_for(h1, h16)),  # nor has h1 -> h16 (another pod)
        (h2, packet_for(h1, h3)),  # h1's headers from h2's port (same switch): not h1's trail
    ]
    for at, sent in cases:
        trace = net.send(attachment(at), sent)
        assert not (trace.deliveries or trace.hops or trace.drops or trace.loop)
        assert [(p.dpid, p.table, p.in_port, p.cookie, p.packet) for p in trace.packet_ins] == [
            (at.dpid, TABLE_CLASSIFY, at.port, PIPELINE_COOKIE, sent)], trace.format()


def test_unknown_label_on_any_inter_switch_port_is_a_packet_in_from_table_1() -> None:
    tree, ctl, trails = all_pair_trails(4)
    net = compile_network(ctl, tree)
    assert UNUSED_LABEL not in {t.label for t in trails}
    h1, h16 = tree.host(1), tree.host(16)
    sent = ipv4_packet(h1.ip, h16.ip, eth_src=h1.mac, eth_dst=h16.mac, mpls=(UNUSED_LABEL,))
    assert len(sim_links(tree)) == 2 * len(tree.cables) == 64
    for dpid, port in sim_links(tree).values():  # every port a link enters
        trace = net.send((dpid, port), sent)
        assert not (trace.deliveries or trace.hops or trace.drops or trace.loop)
        assert [(p.dpid, p.table, p.in_port, p.cookie, p.packet) for p in trace.packet_ins] == [
            (dpid, TABLE_FORWARD, port, PIPELINE_COOKIE, sent)], trace.format()


def test_lost_hop_flow_is_a_table_1_miss_that_restore_hop_repairs() -> None:
    tree, ctl, trails = all_pair_trails(4)
    net = compile_network(ctl, tree)
    hosts = hosts_by_mac(tree)
    trail = next(t for t in trails if len(t.hops) == 5)
    core = trail.hops[2]
    net.apply([FlowDelete(core.dpid, trail_cookie(trail.id), COOKIE_MASK_ALL)])
    src, dst = hosts[trail.src_mac], hosts[trail.dst_mac]
    trace = net.send(attachment(src), packet_for(src, dst))
    assert not trace.deliveries and not trace.drops
    assert [(p.dpid, p.table, p.in_port, p.packet.mpls) for p in trace.packet_ins] == [
        (core.dpid, TABLE_FORWARD, core.in_port, (trail.label,))]
    change = ctl.restore_hop(core.dpid, trail.label)
    assert [list(step) for step in change.steps] == [[core.dpid]]
    apply_change(net, change)
    assert send_on(net, trail, hosts) == []
    # A label no trail holds restores nothing: the controller drops that packet.
    assert not ctl.restore_hop(core.dpid, UNUSED_LABEL)


# 3. Make-before-break ---------------------------------------------------------


def _lost_only_at_dead_link(trace: Trace, old: Trail, dead: set[SimPort]) -> list[str]:
    """Problems unless `trace` followed `old` with its label and died at a dead port."""
    hops = hop_tuples(old.hops)
    cut = next(i for i, (dpid, _, out) in enumerate(hops) if (dpid, out) in dead)
    problems = []
    if hop_tuples(trace.hops) != hops[:cut + 1]:
        problems.append(f"hops {hop_tuples(trace.hops)} are not {hops[:cut + 1]}")
    if [(d.dpid, d.reason) for d in trace.drops] != [(hops[cut][0], DROP_UNCONNECTED)]:
        problems.append("not lost at the dead link (only)")
    if trace.deliveries or trace.packet_ins or trace.loop:
        problems.append("delivered, packet-in or loop")
    if any(t.packet.mpls != (old.label,) for t in trace.transits):
        problems.append(f"not labelled {old.label} on every link")
    return [f"trail {old.id}: " + "; ".join(problems) + "\n" + trace.format()] if problems else []


def test_port_down_moves_every_trail_of_the_link_make_before_break() -> None:
    tree, ctl, trails = all_pair_trails(4)
    hosts = hosts_by_mac(tree)
    trail = next(t for t in trails if agg_to_core(tree, t))
    agg, port = agg_to_core(tree, trail)
    links = sim_links(tree)
    dead = {(agg, port), links[(agg, port)]}  # both ends of the cable
    net = compile_network(ctl, tree)
    old = {t.id: t for t in trails if dead & set(t.links())}
    assert trail.id in old and len(old) > 1

    change = ctl.port_status(agg, Port(port, up=False))

    new = {i: ctl.store.get(i) for i in old}
    assert all(t.state == TrailState.REROUTING for t in new.values())
    assert all(new[i].label != old[i].label for i in old)
    assert all(not dead & set(t.links()) for t in new.values()), "a new path uses the dead link"
    touched = {cookie_trail_id(op.cookie) for step in change.steps for ops in step.values()
               for op in ops} - {None}
    assert touched == set(old)  # trails off the dead link are left alone
    flip = {i: classifier_step(change.steps, i) for i in old}
    # The data plane lost the cable when the port went down.
    net = Network(net.switches, {a: b for a, b in links.items() if a not in dead},
                  sim_hosts(tree))
    for state in range(len(change.steps) + 1):  # state s: the first s steps applied
        if state:
            apply_step(net, change.steps[state - 1])
        for i in old:
            src, dst = hosts[old[i].src_mac], hosts[old[i].dst_mac]
            sent = packet_for(src, dst)
            trace = net.send(attachment(src), sent)
            if state <= flip[i]:  # the old label is still pushed: lost to the failure only
                assert _lost_only_at_dead_link(trace, old[i], dead) == [], f"state {state}"
            else:  # from the classifier step on, the whole new path is in place
                assert delivery_problems(trace, new[i], sent, dst) == [], f"state {state}"
    for callback in change.done:
        callback()
    for i, trail in old.items():
        assert flows_with_label(net, trail.label) == [], f"old label {trail.label} left"
        assert trail.label not in ctl.labels and new[i].label in ctl.labels
        assert ctl.store.get(i).state == TrailState.ACTIVE
    # Tables updated step by step == tables compiled from scratch; every pair still works.
    assert tables_of(net) == compiled_sets(ctl)
    check_every_trail(net, tree, ctl.store.all())


def test_load_driven_replan_moves_a_live_trail_without_losing_a_packet() -> None:
    tree, ctl, trails = all_pair_trails(4)
    hosts = hosts_by_mac(tree)
    old = next(t for t in trails if agg_to_core(tree, t))
    hot = agg_to_core(tree, old)
    net = compile_network(ctl, tree)  # every cable stays up: the old path works throughout
    ctl.planner.utilisation = {hot: 1.0}

    change = ctl.replan(old.id, "link is hot")

    new = ctl.store.get(old.id)
    assert hot not in new.links() and new.hops != old.hops and new.label != old.label
    flip = classifier_step(change.steps, old.id)
    assert 0 < flip < len(change.steps) - 1  # new path first, old path last
    for state in range(len(change.steps) + 1):
        if state:
            apply_step(net, change.steps[state - 1])
        expected = old if state <= flip else new  # the label is the old one until the flip
        assert send_on(net, expected, hosts) == [], f"state {state} of {len(change.steps)}"
    for callback in change.done:
        callback()
    assert flows_with_label(net, old.label) == []
    on_switches = {f for sw in net.switches.values() for f in sw.flows
                   if f.cookie == trail_cookie(old.id)}
    assert on_switches == set(compiler.trail_flows(new))
    assert ctl.store.get(old.id).state == TrailState.ACTIVE and old.label not in ctl.labels
    assert tables_of(net) == compiled_sets(ctl)
    check_every_trail(net, tree, ctl.store.all())


def test_reroute_steps_refuse_to_reuse_the_old_label() -> None:
    tree, ctl, trails = all_pair_trails(4)
    old = next(t for t in trails if agg_to_core(tree, t))
    ctl.planner.utilisation = {agg_to_core(tree, old): 1.0}
    hops = ctl.planner.host_hops(ctl.topo.hosts[old.src_mac], ctl.topo.hosts[old.dst_mac])
    assert hops != old.hops
    with pytest.raises(ValueError, match=f"trail {old.id}: reroute needs a new label"):
        compiler.reroute_steps(old, old.evolve(hops=hops))


# 4. The pipeline and a one-switch trail -------------------------------------------


def test_one_hop_trail_is_delivered_locally_without_a_label_by_pipeline_and_link_flows() -> None:
    tree = build_fat_tree(4)
    ctl = tree.controller(FakeClock())
    h1, h2 = tree.host(1), tree.host(2)
    assert h1.dpid == h2.dpid
    dpid = h1.dpid
    there, _ = ctl.ensure_trail(h1.mac, h2.mac)
    back, _ = ctl.ensure_trail(h2.mac, h1.mac)
    ports = link_ports(ctl)[dpid]
    assert sorted(ports) == sorted(p for d, p in sim_links(tree) if d == dpid)
    flows = (compiler.pipeline_flows(dpid) + [compiler.link_port_flow(dpid, p) for p in ports]
             + compiler.trail_flows(there) + compiler.trail_flows(back))
    for trail in (there, back):
        [classifier] = compiler.trail_flows(trail)
        assert classifier.goto is None and not any(
            isinstance(a, PushMpls | PopMpls | SetField) for a in classifier.actions)
        assert compiler.install_steps(trail) == [{dpid: [classifier]}]
    net = Network({dpid: Switch(dpid, flows)}, {}, sim_hosts(tree))
    hosts = hosts_by_mac(tree)
    assert send_on(net, there, hosts) == [] and send_on(net, back, hosts) == []
    # The rest of the pipeline: ARP and LLDP to the controller, other frames dropped.
    for eth_type in (ETH_TYPE_ARP, ETH_TYPE_LLDP):
        trace = net.send(attachment(h1), Packet(h1.mac, "ff:ff:ff:ff:ff:ff", eth_type))
        assert [(p.dpid, p.table) for p in trace.packet_ins] == [(dpid, TABLE_CLASSIFY)]
        assert not trace.deliveries and not trace.drops
    trace = net.send(attachment(h1), Packet(h1.mac, h2.mac, 0x86DD))  # IPv6: asks for a trail
    assert [(p.dpid, p.table) for p in trace.packet_ins] == [(dpid, TABLE_CLASSIFY)]
    trace = net.send(attachment(h1), Packet(h1.mac, h2.mac, 0x88B5))  # local experimental
    assert [(d.reason, d.table, d.cookie) for d in trace.drops] == [
        (DROP_BY_FLOW, TABLE_CLASSIFY, PIPELINE_COOKIE)]
    # Labelled frames are accepted on the link ports only (then table 1 misses here).
    labelled = ipv4_packet(h1.ip, h2.ip, eth_src=h1.mac, eth_dst=h2.mac, mpls=(UNUSED_LABEL,))
    for port in ports:
        trace = net.send((dpid, port), labelled)
        assert [(p.table, p.in_port) for p in trace.packet_ins] == [(TABLE_FORWARD, port)]


def test_link_port_delete_stops_accepting_labels_on_that_port_only() -> None:
    tree = build_fat_tree(4)
    ctl = tree.controller(FakeClock())
    dpid = tree.host(1).dpid
    ports = link_ports(ctl)[dpid]
    switch = Switch(dpid, compiler.switch_flows(dpid, ports, []))
    switch.apply([compiler.link_port_delete(dpid, ports[0])])
    labelled = ipv4_packet("10.0.0.1", "10.0.0.2", mpls=(UNUSED_LABEL,))
    assert [(d.reason, d.table) for d in switch.process(ports[0], labelled).drops] == [
        (DROP_BY_FLOW, TABLE_CLASSIFY)]
    assert [p.table for p in switch.process(ports[1], labelled).packet_ins] == [TABLE_FORWARD]


def test_hosts_behind_one_port_get_a_trail_back_out_of_it_and_a_labelled_one_elsewhere(
        ) -> None:
    """Two hosts behind one edge port (an access switch, a hypervisor): their trail
    outputs to OFPP_IN_PORT, which the simulator delivers back out of the port (a
    plain output to the arrival port is dropped, as on a switch)."""
    tree = build_fat_tree(4)
    ctl = tree.controller(FakeClock())
    h1, far = tree.host(1), tree.host(16)
    guest = HostSpec(99, "00:00:00:00:00:99", "10.0.9.9", h1.dpid, h1.port)
    ctl.learn_host(guest.dpid, guest.port, guest.mac, guest.ip)
    assert [(h.dpid, h.port) for h in (ctl.topo.hosts[h1.mac], ctl.topo.hosts[guest.mac])] \
        == [attachment(h1)] * 2
    pairs = [(h1, guest), (guest, h1), (guest, far), (far, guest)]
    trails = [ctl.ensure_trail(a.mac, b.mac)[0] for a, b in pairs]
    for trail in trails[:2]:
        [classifier] = compiler.trail_flows(trail)
        assert classifier.match_dict["in_port"] == h1.port
        assert classifier.actions == (Output(OFPP_IN_PORT),)
    shared = "bridge"  # the simulator names a port, not the hosts behind it
    net = compile_network(ctl, tree)
    net.hosts[attachment(h1)] = shared
    for (src, dst), trail in zip(pairs, trails, strict=True):
        sent = packet_for(src, dst)
        trace = net.send(attachment(src), sent)
        assert [(d.host, d.dpid, d.port, d.packet) for d in trace.deliveries] == [
            (shared if dst.port == h1.port and dst.dpid == h1.dpid else host_name(dst),
             dst.dpid, dst.port, sent)], trace.format()
        assert not (trace.drops or trace.packet_ins or trace.loop), trace.format()
        assert hop_tuples(trace.hops) == hop_tuples(trail.hops)
        assert len(trace.transits) == len(trail.hops) - 1
    # What the switch would have done with output:<in_port>: drop it.
    [classifier] = compiler.trail_flows(trails[0])
    net.apply([replace(classifier, actions=(Output(h1.port),))])
    trace = net.send(attachment(h1), packet_for(h1, guest))
    assert not trace.deliveries and [d.reason for d in trace.drops] == [DROP_IN_PORT]


def test_a_hop_that_leaves_by_its_arrival_port_outputs_in_port_and_matches_it() -> None:
    trail = Trail(7, 20, "00:00:00:00:00:01", "00:00:00:00:00:02", "10.0.0.1", "10.0.0.2",
                  (Hop(1, 1, 2), Hop(2, 3, 3)))
    exit_flow, _ = compiler.hop_flows(trail)
    assert exit_flow.dpid == 2 and exit_flow.match_dict["in_port"] == 3
    assert exit_flow.actions == (PopMpls(ETH_TYPE_IPV4), Output(OFPP_IN_PORT))
    assert compiler.output(2, 1) == Output(2) and compiler.output(3, 3) == Output(OFPP_IN_PORT)
    local = replace(trail, hops=(Hop(1, 4, 4),), rewrite=(("eth_dst", "00:00:00:00:00:09"),))
    assert compiler.ingress_actions(local) == [SetField("eth_dst", "00:00:00:00:00:09"),
                                              Output(OFPP_IN_PORT)]
    group = compiler.service_group(1, 5, [(local, 1)])  # a service member behind the port
    assert group.buckets[0].actions[-1] == Output(OFPP_IN_PORT)


# 5. Cookies --------------------------------------------------------------------


def test_trail_flows_carry_the_trail_cookie_and_pipeline_flows_the_pipeline_cookie() -> None:
    tree, ctl, trails = all_pair_trails(4)
    for trail in trails:
        flows = compiler.trail_flows(trail)
        assert len(flows) == (1 if len(trail.hops) == 1 else len(trail.hops) + 1)
        assert {f.cookie for f in flows} == {trail_cookie(trail.id)}
        assert {cookie_trail_id(f.cookie) for f in flows} == {trail.id}
        assert {op.cookie for op in compiler.remove_ops(trail)} == {trail_cookie(trail.id)}
    for dpid in tree.switches:
        assert {f.cookie for f in compiler.pipeline_flows(dpid)} == {PIPELINE_COOKIE} | {
            make_cookie(KIND_HOST_TRAFFIC, i) for i in EDGE_KINDS}  # the counted edge drops
        assert {compiler.link_port_flow(dpid, p.number).cookie for p in tree.ports(dpid)} == {
            PIPELINE_COOKIE}
    assert cookie_trail_id(PIPELINE_COOKIE) is None
    # Every flow on every switch is the pipeline's or one of a trail that crosses it.
    by_id = {t.id: t for t in trails}
    for dpid, flows in compiled_tables(ctl).items():
        for flow in flows:
            trail_id = cookie_trail_id(flow.cookie)
            if trail_id is None:
                assert flow.cookie == PIPELINE_COOKIE or edge_kind(flow.cookie) is not None
            else:
                assert dpid in by_id[trail_id].switches
                assert flow in compiler.trail_flows(by_id[trail_id])


@pytest.mark.parametrize("ident", [0, 1, 2**16, 2**32 - 1])
def test_cookie_trail_id_round_trips_and_rejects_other_cookies(ident: int) -> None:
    assert cookie_trail_id(trail_cookie(ident)) == ident
    assert cookie_trail_id(make_cookie(KIND_PIPELINE, ident)) is None
    assert cookie_trail_id(trail_cookie(ident) ^ (1 << 63)) is None  # not our magic


@pytest.mark.parametrize("ident", [-1, 2**32])
def test_trail_cookie_rejects_ids_outside_32_bits(ident: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        trail_cookie(ident)


def test_removing_a_trail_deletes_exactly_its_flows_by_cookie() -> None:
    tree, ctl, trails = all_pair_trails(4)
    net = compile_network(ctl, tree)
    before = tables_of(net)
    gone = next(t for t in trails if len(t.hops) == 5)
    apply_change(net, ctl.remove_trail(gone.id, "test"))
    after = tables_of(net)
    assert {f for d in before for f in before[d] - after[d]} == set(compiler.trail_flows(gone))
    assert all(after[d] <= before[d] for d in before)
    assert gone.label not in ctl.labels
    src, dst = hosts_by_mac(tree)[gone.src_mac], hosts_by_mac(tree)[gone.dst_mac]
    trace = net.send(attachment(src), packet_for(src, dst))
    assert [(p.dpid, p.table) for p in trace.packet_ins] == [(src.dpid, TABLE_CLASSIFY)]
    check_every_trail(net, tree, [t for t in trails if t.id != gone.id])
