"""ScentController with a policy: application trails, NF chains, drop rules, isolation,
policy swaps and trail DAGs, proved by forwarding packets through the simulator.

Two fabrics: the k=4 fat-tree of conftest.py (no network functions), and the zoned
leaf-spine of topologies/nfchain.py rebuilt here in pure Python, where the firewall
fw1 and the load balancer lb1 are modelled as a wire between their two switch ports.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterable

import networkx as nx
import pytest

from sdnscent import dag
from sdnscent.appplan import MAX_APPS_PRIORITY, PRIO_APP_BASE
from sdnscent.compiler import PRIO_TRAIL, classifier_priority
from sdnscent.controller import ARP_REQUEST, Change, ScentController
from sdnscent.flows import (
    ETH_TYPE_IPV4,
    KIND_BLOCK,
    TABLE_CLASSIFY,
    FlowSpec,
    SetField,
    make_cookie,
    trail_cookie,
)
from sdnscent.policy import Policy
from sdnscent.policyfile import parse_policy
from sdnscent.simulator import (
    DROP_BY_FLOW,
    Network,
    Packet,
    Switch,
    Trace,
    both_ways,
    ipv4_packet,
)
from sdnscent.store import MemoryStore
from sdnscent.topology import Port, TopologyError
from sdnscent.trails import Trail
from tests.conftest import FakeClock, FatTree, HostSpec
from tests.fabric import compile_network, compiled_tables, host_name

IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP = 1, 6, 17
APP_PRIORITY = PRIO_APP_BASE + MAX_APPS_PRIORITY  # the first application of a file


# -- helpers ----------------------------------------------------------------------------


def policy(text: str, source: str = "test.yaml") -> Policy:
    """A policy from indented YAML (parse_policy validates it)."""
    return parse_policy(textwrap.dedent(text), source)


def ops_of(change: Change) -> list:
    """Every operation of a change, in order."""
    return [op for step in change.steps for ops in step.values() for op in ops]


def run_done(change: Change) -> None:
    for callback in change.done:
        callback()


def apply_step(net: Network, step: dict) -> None:
    """Send one barrier-separated step of a Change to the simulated switches."""
    for ops in step.values():
        net.apply(ops)


def packet(src: HostSpec, dst: HostSpec, proto: int = IPPROTO_ICMP,
           sport: int | None = None, dport: int | None = None) -> Packet:
    """An IPv4 packet from host src to host dst."""
    return ipv4_packet(src.ip, dst.ip, eth_src=src.mac, eth_dst=dst.mac, ip_proto=proto,
                       src_port=sport, dst_port=dport)


def labels_seen(trace: Trace) -> set[int]:
    """The MPLS labels the packet carried on inter-switch wires."""
    return {t.packet.mpls_label for t in trace.transits if t.packet.mpls}


def cables(trail: Trail, ctrl: ScentController) -> set[frozenset[tuple[int, int]]]:
    """The cables (both ends) a trail's inter-switch hops use."""
    out = set()
    for dpid, port in trail.links():
        link = ctrl.topo.link_from(dpid, port)
        assert link is not None, (dpid, port)
        out.add(frozenset({(dpid, port), (link.dst, link.dst_port)}))
    return out


def block_flows(net: Network, dpid: int) -> list[FlowSpec]:
    """Drop rules (KIND_BLOCK cookies) loaded on a simulated switch."""
    return [f for f in net.switches[dpid].flows
            if f.cookie >> 32 == make_cookie(KIND_BLOCK) >> 32]


# -- the zoned leaf-spine with network functions (topologies/nfchain.py) ----------------
#
#   switch  port -> peer
#   s1      1 s3, 2 s4, 3 s5          (spine, zone core, level 2)
#   s2      1 s3, 2 s4, 3 s5          (spine, zone dmz, level 0)
#   s6      1 s3, 2 s4, 3 s5          (spine, zone core, level 2)
#   s3      1 h1, 2 h2, 3 s1, 4 s2, 5 s6
#   s4      1 h5, 2 fw1, 3 fw1, 4 s1, 5 s2, 6 s6
#   s5      1 h3, 2 h4, 3 lb1, 4 lb1, 5 s1, 6 s2, 7 s6

SPINES = (1, 2, 6)
FIRST_UPLINK = {3: 3, 4: 4, 5: 5}
NF_CABLES = (((4, 2), (4, 3)), ((5, 3), (5, 4)))  # fw1, lb1: bumps in the wire
NF_PORTS = {port for wire in NF_CABLES for port in wire}
LEAF_SPINE = tuple((spine, leaf - 2, leaf, FIRST_UPLINK[leaf] + i)
                   for leaf in (3, 4, 5) for i, spine in enumerate(SPINES))
PORT_COUNT = {1: 3, 2: 3, 6: 3, 3: 5, 4: 6, 5: 7}
ZH = {n: HostSpec(n, f"00:00:00:00:00:{n:02x}", f"10.0.0.{n}", dpid, port)
      for n, dpid, port in ((1, 3, 1), (2, 3, 2), (3, 5, 1), (4, 5, 2), (5, 4, 1))}

ZONED = """
    zones: {dmz: 0, access: 1, core: 2}
    nodes:
      s1: {kind: switch, zone: core}
      s2: {kind: switch, zone: dmz}
      s3: {kind: switch, zone: access}
      s4: {kind: switch, zone: access}
      s5: {kind: switch, zone: access}
      s6: {kind: switch, zone: core}
      h1: {kind: host, zone: access, ip: 10.0.0.1}
      h5: {kind: host, zone: access, ip: 10.0.0.5}
      fw1:
        kind: nf
        role: firewall
        zone: access
        attach: [{switch: s4, port: 2}, {switch: s4, port: 3}]
      lb1:
        kind: nf
        role: load_balancer
        zone: access
        attach: [{switch: s5, port: 3}, {switch: s5, port: 4}]
    classifications:
      restricted: {min_level: 1}   # keeps the built-in chain [firewall]
"""

PAYROLL = ZONED + """
    applications:
      - name: payroll
        endpoints: {hosts: [h1, h5]}
        classification: restricted
"""

LEDGER = ZONED + """
    applications:
      - name: ledger
        endpoints: {hosts: [h1], ports: [tcp/5432]}
        classification: internal     # min_level 1: never the dmz spine s2
"""


def zoned_controller(clock: FakeClock, cables: Iterable[tuple[int, int, int, int]] = LEAF_SPINE,
                     rules: Policy | None = None) -> ScentController:
    """The leaf-spine told through the controller's event methods, policy first."""
    ctrl = ScentController(MemoryStore(), clock=clock)
    if rules is not None:
        ctrl.set_policy(rules)
    for dpid, count in PORT_COUNT.items():
        ctrl.switch_enter(dpid, [Port(p, f"s{dpid}-eth{p}") for p in range(1, count + 1)],
                          f"s{dpid}")
    for a, pa, b, pb in cables:
        ctrl.link_seen(a, pa, b, pb)
        ctrl.link_seen(b, pb, a, pa)
    for h in ZH.values():
        ctrl.learn_host(h.dpid, h.port, h.mac, h.ip)
    return ctrl


def zoned_network(ctrl: ScentController) -> Network:
    """Every cable of the leaf-spine (discovered or not) and each NF as a wire."""
    links = both_ways([((a, pa), (b, pb)) for a, pa, b, pb in LEAF_SPINE] + list(NF_CABLES))
    switches = {d: Switch(d, flows) for d, flows in compiled_tables(ctrl).items()}
    return Network(switches, links, {(h.dpid, h.port): f"h{h.n}" for h in ZH.values()})


def installed(ctrl: ScentController, pairs: Iterable[tuple[int, int]]) -> None:
    """ensure_pair for every (src, dst) pair of ZH hosts; confirm the changes."""
    for s, d in pairs:
        _, change = ctrl.ensure_pair(ZH[s].mac, ZH[d].mac)
        run_done(change)


# -- application classification (fat-tree) ------------------------------------------------

VIDEO = """
    nodes:
      h1: {kind: host, ip: 10.0.0.1}
    applications:
      - name: video
        endpoints: {hosts: [h1], ports: [udp/5001]}
"""


def test_app_with_ports_gets_its_own_trail_classified_above_the_default(fat_tree,
                                                                       clock) -> None:
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(policy(VIDEO))
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    default, change = ctrl.ensure_pair(h1.mac, h5.mac)
    app = ctrl.trail_for_pair(h1.mac, h5.mac, "video")
    assert default is not None and default.app == "default" and default.match == ()
    assert app is not None and app.id != default.id and app.label != default.label
    assert app.match == ((("ip_proto", IPPROTO_UDP), ("udp_dst", 5001)),
                         (("ip_proto", IPPROTO_UDP), ("udp_src", 5001)))
    assert classifier_priority(app) == APP_PRIORITY > classifier_priority(default) == PRIO_TRAIL
    classifiers = [op for op in ops_of(change) if isinstance(op, FlowSpec)
                   and op.table == TABLE_CLASSIFY and op.cookie == trail_cookie(app.id)]
    base = {"in_port": h1.port, "eth_type": ETH_TYPE_IPV4, "eth_src": h1.mac,
            "eth_dst": h5.mac, "ip_proto": IPPROTO_UDP}
    assert sorted((f.match_dict for f in classifiers), key=str) == sorted(
        [{**base, "udp_dst": 5001}, {**base, "udp_src": 5001}], key=str)
    assert {f.priority for f in classifiers} == {APP_PRIORITY}
    assert all(SetField("mpls_label", app.label) in f.actions for f in classifiers)


def test_udp_5001_rides_the_app_label_and_icmp_the_default_label(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(policy(VIDEO))
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    installed_pairs = [(h1, h5), (h5, h1)]
    for src, dst in installed_pairs:
        run_done(ctrl.ensure_pair(src.mac, dst.mac)[1])
    net = compile_network(ctrl, fat_tree)
    for src, dst in installed_pairs:
        app = ctrl.trail_for_pair(src.mac, dst.mac, "video")
        default = ctrl.trail_for_pair(src.mac, dst.mac)
        # Towards the service (dst port 5001) and back from it (src port 5001).
        for sport, dport in ((40000, 5001), (5001, 40000)):
            sent = packet(src, dst, IPPROTO_UDP, sport, dport)
            trace = net.send(host_name(src), sent)
            assert trace.delivered_to == (host_name(dst),), trace.format()
            assert labels_seen(trace) == {app.label}, trace.format()
            assert trace.deliveries[0].packet == sent
        for other in (packet(src, dst), packet(src, dst, IPPROTO_UDP, 40000, 5002),
                      packet(src, dst, IPPROTO_TCP, 40000, 5001)):
            trace = net.send(host_name(src), other)
            assert trace.delivered_to == (host_name(dst),), trace.format()
            assert labels_seen(trace) == {default.label}, trace.format()


def test_pair_outside_the_apps_endpoints_gets_only_a_default_trail(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(policy(VIDEO))
    h2, h5 = fat_tree.host(2), fat_tree.host(5)
    default, _ = ctrl.ensure_pair(h2.mac, h5.mac)
    assert default is not None
    assert [t.app for t in ctrl.store.all()] == ["default"]
    assert ctrl.blocked() == []


def test_app_without_ports_covers_all_ipv4_of_its_hosts(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(policy("""
        applications:
          - name: everything-of-h1
            endpoints: {hosts: [10.0.0.1]}
    """))
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    default, change = ctrl.ensure_pair(h1.mac, h5.mac)
    app = ctrl.trail_for_pair(h1.mac, h5.mac, "everything-of-h1")
    assert app.match == ()
    (classifier,) = [op for op in ops_of(change) if isinstance(op, FlowSpec)
                     and op.cookie == trail_cookie(app.id) and op.table == TABLE_CLASSIFY]
    assert classifier.match_dict == {"in_port": h1.port, "eth_type": ETH_TYPE_IPV4,
                                     "eth_src": h1.mac, "eth_dst": h5.mac}
    assert classifier.priority == APP_PRIORITY
    net = compile_network(ctrl, fat_tree)
    for sent in (packet(h1, h5), packet(h1, h5, IPPROTO_TCP, 40000, 80),
                 packet(h1, h5, IPPROTO_UDP, 53, 53)):
        trace = net.send("h1", sent)
        assert trace.delivered_to == ("h5",) and labels_seen(trace) == {app.label}
    assert default.label != app.label


@pytest.mark.parametrize("first", ["streaming", "catch-all"])
def test_overlapping_apps_the_earlier_one_in_the_file_wins(fat_tree, clock, first: str) -> None:
    apps = {
        "streaming": "  - name: streaming\n    endpoints: {hosts: [10.0.0.1], ports: [udp/5001]}\n",
        "catch-all": "  - name: catch-all\n    endpoints: {hosts: [10.0.0.1]}\n",
    }
    second = next(name for name in apps if name != first)
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(parse_policy("applications:\n" + apps[first] + apps[second]))
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    run_done(ctrl.ensure_pair(h1.mac, h5.mac)[1])
    winner = ctrl.trail_for_pair(h1.mac, h5.mac, first)
    loser = ctrl.trail_for_pair(h1.mac, h5.mac, second)
    assert winner.priority == APP_PRIORITY and loser.priority == APP_PRIORITY - 1
    net = compile_network(ctrl, fat_tree)
    overlap = net.send("h1", packet(h1, h5, IPPROTO_UDP, 40000, 5001))  # both apps match
    assert overlap.delivered_to == ("h5",)
    assert labels_seen(overlap) == {winner.label}, overlap.format()
    only_catch_all = net.send("h1", packet(h1, h5, IPPROTO_TCP, 40000, 80))
    assert labels_seen(only_catch_all) == {ctrl.trail_for_pair(h1.mac, h5.mac,
                                                               "catch-all").label}


def test_dscp_marked_packets_ride_the_dscp_application_trail(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(policy("""
        applications:
          - name: marked
            endpoints: {hosts: [10.0.0.1], dscp: [8]}
    """))
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    ctrl.ensure_pair(h1.mac, h5.mac)
    marked = ctrl.trail_for_pair(h1.mac, h5.mac, "marked")
    assert marked.match == ((("ip_dscp", 8),),)
    net = compile_network(ctrl, fat_tree)
    send = net.send("h1", ipv4_packet(h1.ip, h5.ip, eth_src=h1.mac, eth_dst=h5.mac, dscp=8))
    plain = net.send("h1", ipv4_packet(h1.ip, h5.ip, eth_src=h1.mac, eth_dst=h5.mac))
    assert labels_seen(send) == {marked.label}, send.format()
    assert labels_seen(plain) == {ctrl.trail_for_pair(h1.mac, h5.mac).label}, plain.format()


# -- chains through a network function (zoned leaf-spine) ---------------------------------


@pytest.mark.parametrize(("src", "dst"), [(1, 5), (5, 1), (2, 5), (5, 3)])
def test_restricted_packet_is_unlabelled_into_the_firewall_and_relabelled_after(
        clock, src: int, dst: int) -> None:
    rules = policy(PAYROLL)
    ctrl = zoned_controller(clock, rules=rules)
    installed(ctrl, [(src, dst)])
    trail = ctrl.trail_for_pair(ZH[src].mac, ZH[dst].mac, "payroll")
    assert [h.via for h in trail.hops].count("fw1") == 1
    net = zoned_network(ctrl)
    sent = packet(ZH[src], ZH[dst], IPPROTO_TCP, 40000, 443)
    trace = net.send(f"h{src}", sent)
    assert trace.delivered_to == (f"h{dst}",), trace.format()
    assert trace.deliveries[0].packet == sent
    into_nf = [t for t in trace.transits if t.src in NF_PORTS]
    assert len(into_nf) == 1, trace.format()
    (wire,) = into_nf
    assert {wire.src, wire.dst} == {(4, 2), (4, 3)}  # fw1, not lb1
    assert wire.packet.mpls == () and wire.packet.ipv4_dst == ZH[dst].ip
    relabel = [s for s in trace.steps if (s.dpid, s.in_port) == wire.dst
               and s.table == TABLE_CLASSIFY]
    assert len(relabel) == 1 and SetField("mpls_label", trail.label) in relabel[0].flow.actions
    fabric = [t for t in trace.transits if t.src not in NF_PORTS]
    assert fabric and all(t.packet.mpls == (trail.label,) for t in fabric), trace.format()


def test_restricted_trails_never_cross_a_switch_below_min_level(clock) -> None:
    rules = policy(PAYROLL)
    ctrl = zoned_controller(clock, rules=rules)
    every_pair = [(s, d) for s in ZH for d in ZH if s != d]
    installed(ctrl, every_pair)
    min_level = rules.classification_of(rules.app("payroll")).min_level
    assert min_level == 1
    payroll = [t for t in ctrl.store.all() if t.app == "payroll"]
    assert len(payroll) == 14  # every ordered pair with h1 or h5 in it
    # The dmz spine is a fine path for default traffic: the rule is what keeps it out.
    assert any(2 in t.switches for t in ctrl.store.all() if t.app == "default")
    net = zoned_network(ctrl)
    for trail in payroll:
        assert all(rules.level_of(f"s{d}") >= min_level for d in trail.switches), trail
        src = next(h for h in ZH.values() if h.mac == trail.src_mac)
        dst = next(h for h in ZH.values() if h.mac == trail.dst_mac)
        trace = net.send(f"h{src.n}", packet(src, dst))
        assert trace.delivered_to == (f"h{dst.n}",), trace.format()
        crossed = {h.dpid for h in trace.hops}
        assert all(rules.level_of(f"s{d}") >= min_level for d in crossed), trace.format()
        assert any(t.src in NF_PORTS for t in trace.transits), trace.format()


def test_learn_host_on_an_nf_port_is_ignored(clock) -> None:
    ctrl = zoned_controller(clock, rules=policy(PAYROLL))
    for dpid, port in sorted(NF_PORTS):
        change = ctrl.learn_host(dpid, port, "00:00:00:00:00:77", "10.0.0.77")
        assert not change
        assert "00:00:00:00:00:77" not in ctrl.topo.hosts
        assert ctrl.topo.host_by_ip("10.0.0.77") is None
    # A known host seen on an NF port (a frame coming back out of fw1) does not move.
    assert not ctrl.learn_host(4, 3, ZH[1].mac, ZH[1].ip)
    assert (ctrl.topo.hosts[ZH[1].mac].dpid, ctrl.topo.hosts[ZH[1].mac].port) == (3, 1)


def test_arp_never_learns_from_or_probes_out_of_an_nf_port(clock) -> None:
    ctrl = zoned_controller(clock, rules=policy(PAYROLL))
    result, change = ctrl.handle_arp(4, 2, ARP_REQUEST, "00:00:00:00:00:77", "10.0.0.77",
                                     ZH[1].ip)
    assert result.packets == [] and result.pairs == [] and not change
    h1 = ZH[1]
    result, _ = ctrl.handle_arp(h1.dpid, h1.port, ARP_REQUEST, h1.mac, h1.ip, "10.0.0.99")
    probed = {(p.dpid, p.port) for p in result.packets}
    assert probed == {(h.dpid, h.port) for h in ZH.values()}  # the asker's port too
    assert not probed & NF_PORTS


def test_host_learned_on_a_port_that_a_new_policy_makes_an_nf_port_is_forgotten(
        clock) -> None:
    ctrl = zoned_controller(clock)  # no policy yet: s4 port 2 looks like an edge port
    ghost = ("00:00:00:00:00:77", "10.0.0.77")
    ctrl.learn_host(4, 2, *ghost)
    installed(ctrl, [(1, 5)])
    run_done(ctrl.ensure_trail(ZH[1].mac, ghost[0])[1])
    ctrl.set_policy(policy(PAYROLL))
    assert ghost[0] not in ctrl.topo.hosts
    assert all(ghost[1] not in (t.src_ip, t.dst_ip) for t in ctrl.store.all())


# -- infeasible policy: drop rule, event, later link ---------------------------------------

S3_ONLY_TO_DMZ = tuple(c for c in LEAF_SPINE if not (c[2] == 3 and c[0] in (1, 6)))


def test_infeasible_app_is_dropped_while_the_default_trail_delivers_other_traffic(
        clock) -> None:
    ctrl = zoned_controller(clock, S3_ONLY_TO_DMZ, rules=policy(LEDGER))
    net = zoned_network(ctrl)
    h1, h3 = ZH[1], ZH[3]
    default, change = ctrl.ensure_pair(h1.mac, h3.mac)
    assert default is not None and 2 in default.switches  # only the dmz spine is left
    assert ctrl.trail_for_pair(h1.mac, h3.mac, "ledger") is None
    assert ctrl.blocked() == [("ledger", h1.mac, h3.mac)]
    drops = [op for op in ops_of(change) if isinstance(op, FlowSpec) and not op.actions]
    base = {"in_port": h1.port, "eth_type": ETH_TYPE_IPV4, "eth_src": h1.mac,
            "eth_dst": h3.mac, "ip_proto": IPPROTO_TCP}
    assert sorted((f.match_dict for f in drops), key=str) == sorted(
        [{**base, "tcp_dst": 5432}, {**base, "tcp_src": 5432}], key=str)
    assert all((f.dpid, f.table, f.priority, f.goto) == (h1.dpid, TABLE_CLASSIFY,
                                                         APP_PRIORITY, None) for f in drops)
    assert all(f.cookie >> 32 == make_cookie(KIND_BLOCK) >> 32 for f in drops)
    (event,) = [e for e in ctrl.events if e.kind == "no-path"]
    assert event.message.startswith(f"ledger trail {h1.ip} -> {h3.ip} not installed: "
                                    f"no path from {h1.ip} to {h3.ip}")
    assert "through switches of level >= 1" in event.message
    for step in change.steps:
        apply_step(net, step)
    dropped = net.send("h1", packet(h1, h3, IPPROTO_TCP, 40000, 5432))
    assert dropped.delivered_to == () and dropped.transits == ()
    assert [d.reason for d in dropped.drops] == [DROP_BY_FLOW]
    other = net.send("h1", packet(h1, h3, IPPROTO_TCP, 40000, 80))
    assert other.delivered_to == ("h3",) and labels_seen(other) == {default.label}


def test_link_that_makes_the_app_feasible_replaces_the_drop_rule_with_a_trail(clock) -> None:
    ctrl = zoned_controller(clock, S3_ONLY_TO_DMZ, rules=policy(LEDGER))
    net = zoned_network(ctrl)
    h1, h3 = ZH[1], ZH[3]
    default, change = ctrl.ensure_pair(h1.mac, h3.mac)
    run_done(change)
    for step in change.steps:
        apply_step(net, step)
    assert block_flows(net, h1.dpid)
    ledger = packet(h1, h3, IPPROTO_TCP, 40000, 5432)
    change = ctrl.link_seen(3, 3, 1, 1)  # s3 -> s1 (core) comes up
    change.merge(ctrl.link_seen(1, 1, 3, 3))
    trail = ctrl.trail_for_pair(h1.mac, h3.mac, "ledger")
    assert trail is not None and 1 in trail.switches and 2 not in trail.switches
    assert ctrl.blocked() == []
    for step in change.steps:  # never on the default trail, whatever the step
        apply_step(net, step)
        trace = net.send("h1", ledger)
        assert trace.delivered_to in ((), ("h3",)), trace.format()
        assert default.label not in labels_seen(trace), trace.format()
    run_done(change)
    trace = net.send("h1", ledger)
    assert trace.delivered_to == ("h3",) and labels_seen(trace) == {trail.label}
    assert block_flows(net, h1.dpid) == []


# -- isolation (fat-tree) --------------------------------------------------------------------

ISOLATED = "applications:\n" + "".join(
    f"  - name: {name}\n"
    f"    endpoints: {{hosts: [10.0.0.1], ports: [udp/{port}]}}\n"
    f"    requirements: {{isolation: link}}\n"
    for name, port in (("blue", 5001), ("green", 5002), ("red", 5003)))


def test_link_isolated_apps_get_cable_disjoint_trails_and_a_third_is_blocked(
        fat_tree: FatTree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(parse_policy(ISOLATED))
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    run_done(ctrl.ensure_pair(h1.mac, h5.mac)[1])
    blue = ctrl.trail_for_pair(h1.mac, h5.mac, "blue")
    green = ctrl.trail_for_pair(h1.mac, h5.mac, "green")
    assert blue is not None and green is not None
    assert not cables(blue, ctrl) & cables(green, ctrl)
    # h1's edge switch has two uplinks, both taken: red cannot be placed.
    assert ctrl.trail_for_pair(h1.mac, h5.mac, "red") is None
    assert ctrl.blocked() == [("red", h1.mac, h5.mac)]
    (event,) = [e for e in ctrl.events if e.kind == "no-path"]
    assert event.message.startswith("red trail") and "sharing no link with isolated " \
        "applications" in event.message
    net = compile_network(ctrl, fat_tree)
    for trail, port in ((blue, 5001), (green, 5002)):
        trace = net.send("h1", packet(h1, h5, IPPROTO_UDP, 40000, port))
        assert trace.delivered_to == ("h5",) and labels_seen(trace) == {trail.label}
        wires = {frozenset({t.src, t.dst}) for t in trace.transits}
        assert wires == cables(trail, ctrl)


def test_blocked_app_packets_are_dropped_at_the_ingress(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(parse_policy(ISOLATED))
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    net = compile_network(ctrl, fat_tree)
    _, change = ctrl.ensure_pair(h1.mac, h5.mac)
    for step in change.steps:
        apply_step(net, step)
    trace = net.send("h1", packet(h1, h5, IPPROTO_UDP, 40000, 5003))
    assert trace.delivered_to == () and trace.transits == ()
    assert [(d.dpid, d.reason) for d in trace.drops] == [(h1.dpid, DROP_BY_FLOW)]


# -- set_policy --------------------------------------------------------------------------------

BEFORE = """
    applications:
      - name: video
        endpoints: {hosts: [10.0.0.1], ports: [udp/5001]}
      - name: backup
        endpoints: {hosts: [10.0.0.1], ports: [tcp/873]}
"""


def after_policy(avoid: str) -> str:
    """video must now avoid switch `avoid`; backup is gone; voice is new."""
    return f"""
    nodes:
      {avoid}: {{kind: switch}}
    applications:
      - name: video
        endpoints: {{hosts: [10.0.0.1], ports: [udp/5001]}}
        requirements: {{avoid: {{nodes: [{avoid}]}}}}
      - name: voice
        endpoints: {{hosts: [10.0.0.1], ports: [udp/5060]}}
    """


def test_set_policy_replans_make_before_break_and_removes_dropped_apps(fat_tree,
                                                                        clock) -> None:
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(policy(BEFORE))
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    run_done(ctrl.ensure_pair(h1.mac, h5.mac)[1])
    default = ctrl.trail_for_pair(h1.mac, h5.mac)
    video = ctrl.trail_for_pair(h1.mac, h5.mac, "video")
    backup = ctrl.trail_for_pair(h1.mac, h5.mac, "backup")
    core = video.hops[2].dpid
    assert core in fat_tree.cores
    net = compile_network(ctrl, fat_tree)
    stream = packet(h1, h5, IPPROTO_UDP, 40000, 5001)
    assert labels_seen(net.send("h1", stream)) == {video.label}

    change, summary = ctrl.set_policy(policy(after_policy(f"s{core}")))
    assert summary == {"replanned": 1, "removed": 1, "added": 1, "blocked": 0}
    moved = ctrl.store.get(video.id)
    assert moved.label != video.label and core not in moved.switches
    assert ctrl.store.get(backup.id) is None
    assert ctrl.trail_for_pair(h1.mac, h5.mac, "backup") is None
    voice = ctrl.trail_for_pair(h1.mac, h5.mac, "voice")
    assert voice is not None and voice.priority == APP_PRIORITY - 1
    assert ctrl.store.get(default.id) == default  # untouched: same label, same version
    assert any(e.kind == "policy" and "replanned 1" in e.message for e in ctrl.events)
    for i, step in enumerate(change.steps):  # make-before-break: delivered after every step
        apply_step(net, step)
        trace = net.send("h1", stream)
        assert trace.delivered_to == ("h5",), f"after step {i}:\n{trace.format()}"
        assert labels_seen(trace) <= {video.label, moved.label}
    assert labels_seen(net.send("h1", stream)) == {moved.label}
    assert video.label in ctrl.labels
    run_done(change)
    assert video.label not in ctrl.labels and backup.label not in ctrl.labels
    # The removed app's flows are gone everywhere; its traffic is default traffic now.
    assert not [f for s in net.switches.values() for f in s.flows
                if f.cookie == trail_cookie(backup.id)]
    rsync = net.send("h1", packet(h1, h5, IPPROTO_TCP, 40000, 873))
    assert rsync.delivered_to == ("h5",) and labels_seen(rsync) == {default.label}
    call = net.send("h1", packet(h1, h5, IPPROTO_UDP, 40000, 5060))
    assert labels_seen(call) == {voice.label}
    # What the switches hold is what the controller would compile from scratch.
    fresh = compile_network(ctrl, fat_tree)
    assert {d: set(s.flows) for d, s in net.switches.items()} == \
        {d: set(s.flows) for d, s in fresh.switches.items()}


def test_set_policy_with_the_same_policy_changes_nothing(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    text = after_policy("s1")
    ctrl.set_policy(policy(text))
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    for src, dst in ((h1, h5), (h5, h1)):
        run_done(ctrl.ensure_pair(src.mac, dst.mac)[1])
    trails = ctrl.store.all()
    for again in (ctrl.policy, policy(text)):
        change, summary = ctrl.set_policy(again)
        assert not change and change.steps == []
        assert summary == {"replanned": 0, "removed": 0, "added": 0, "blocked": 0}
        assert ctrl.store.all() == trails
        assert len(ctrl.labels) == len(trails) and all(t.label in ctrl.labels for t in trails)


def test_set_policy_with_the_same_policy_leaves_drop_rules_alone(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(parse_policy(ISOLATED))
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    run_done(ctrl.ensure_pair(h1.mac, h5.mac)[1])
    events = len(ctrl.events)
    change, summary = ctrl.set_policy(parse_policy(ISOLATED))
    assert summary == {"replanned": 0, "removed": 0, "added": 0, "blocked": 1}
    assert ctrl.blocked() == [("red", h1.mac, h5.mac)]
    assert not change, change.steps
    assert [e.kind for e in list(ctrl.events)[events:]] == ["policy"]


def test_set_policy_removes_trails_of_pairs_an_app_no_longer_covers(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(policy(VIDEO))
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    run_done(ctrl.ensure_pair(h1.mac, h5.mac)[1])
    video = ctrl.trail_for_pair(h1.mac, h5.mac, "video")
    change, summary = ctrl.set_policy(policy("""
        applications:
          - name: video
            endpoints: {hosts: [10.0.0.9], ports: [udp/5001]}
    """))
    assert ctrl.trail_for_pair(h1.mac, h5.mac, "video") is None
    assert summary["removed"] == 1
    assert any(getattr(op, "cookie", None) == trail_cookie(video.id) for op in ops_of(change))


# -- trail DAGs --------------------------------------------------------------------------------


def test_app_dag_of_a_chained_app_has_the_firewall_in_every_format(clock) -> None:
    ctrl = zoned_controller(clock, rules=policy(PAYROLL))
    installed(ctrl, [(1, 5), (1, 3)])  # both sent by the endpoint h1: forward
    g = ctrl.app_dag("payroll")
    assert g.graph["trails"] == sorted(t.id for t in ctrl.store.all() if t.app == "payroll")
    assert g.nodes["fw1"]["kind"] == "nf" and g.nodes["fw1"]["role"] == "firewall"
    assert nx.is_directed_acyclic_graph(g)
    for ip in ("10.0.0.5", "10.0.0.3"):
        assert nx.has_path(g, "10.0.0.1", "fw1") and nx.has_path(g, "fw1", ip)
    assert g.has_edge("s4", "fw1") and g.has_edge("fw1", "s4#1")
    for _, _, data in g.edges(data=True):
        assert {"latency", "bandwidth", "security", "trails"} <= set(data)
    data = dag.to_json(g)
    assert {"id": "fw1"}.items() <= next(n for n in data["nodes"] if n["id"] == "fw1").items()
    assert nx.utils.graphs_equal(nx.node_link_graph(data, edges="links"), g)
    dot = dag.to_dot(g)
    assert dot.startswith('digraph "payroll"')
    assert '"fw1" [shape="hexagon"' in dot and '"s4" -> "fw1"' in dot
    back = nx.read_graphml(io.BytesIO(dag.to_graphml(g).encode()))
    assert back.nodes["fw1"]["kind"] == "nf" and set(back.nodes) == set(g.nodes)
    assert set(back.edges) == set(g.edges)


def test_app_dag_splits_forward_and_reverse_trails(clock) -> None:
    ctrl = zoned_controller(clock, rules=policy(PAYROLL))
    installed(ctrl, [(2, 5), (5, 2), (1, 3), (3, 1)])
    ids = {(t.src_ip, t.dst_ip): t.id for t in ctrl.store.all() if t.app == "payroll"}
    forward, reverse = ctrl.app_dag("payroll"), ctrl.app_dag("payroll", reverse=True)
    # The endpoints (h1, h5) send forward; h2 -> h5 and h1 <- h3 are replies to them.
    assert forward.graph["trails"] == sorted([ids["10.0.0.5", "10.0.0.2"],
                                              ids["10.0.0.1", "10.0.0.3"]])
    assert reverse.graph["trails"] == sorted([ids["10.0.0.2", "10.0.0.5"],
                                              ids["10.0.0.3", "10.0.0.1"]])
    assert forward.has_edge("10.0.0.5", "s4") and not forward.has_edge("s4#1", "10.0.0.5")
    assert reverse.has_edge("s4#1", "10.0.0.5") and not reverse.has_edge("10.0.0.5", "s4")
    assert "fw1" in forward and "fw1" in reverse


def test_app_dag_of_trails_through_one_host_both_ways_is_a_cycle(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(policy("""
        applications:
          - name: mesh
            endpoints: {prefixes: [10.0.0.0/24]}
    """))
    hosts = [fat_tree.host(n) for n in (1, 5, 9)]
    for src, dst in zip(hosts, hosts[1:], strict=False):  # 1 -> 5 and 5 -> 9: both forward
        ctrl.ensure_pair(src.mac, dst.mac)
    with pytest.raises(dag.DagCycleError, match="do not form a DAG") as caught:
        ctrl.app_dag("mesh")
    assert "10.0.0.5" in caught.value.cycle
    assert ctrl.app_dag("mesh", reverse=True).number_of_nodes() == 0


def test_a_policy_that_does_not_fit_the_network_changes_nothing(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(policy(VIDEO))
    before, trails = ctrl.policy, ctrl.store.all()
    bad = policy("""
        nodes:
          fw9: {kind: nf, role: firewall, attach: [{switch: s5, port: 3}, {switch: s5, port: 4}]}
    """)  # s5's ports 3 and 4 lead to core switches: not a place for an NF
    with pytest.raises((TopologyError, ValueError)):
        ctrl.set_policy(bad)
    assert ctrl.policy is before and ctrl.store.all() == trails
