"""Tests for the forwarding simulator: lookups, load-time checks, MPLS, groups, networks."""

from __future__ import annotations

import pytest

from sdnscent.flows import (
    ETH_TYPE_ARP,
    ETH_TYPE_IPV4,
    ETH_TYPE_MPLS,
    Bucket,
    FlowDelete,
    FlowSpec,
    Group,
    GroupSpec,
    Output,
    PopMpls,
    PushMpls,
    SetField,
    ToController,
    trail_cookie,
)
from sdnscent.simulator import (
    DROP_BY_FLOW,
    DROP_EMPTY_GROUP,
    DROP_IN_PORT,
    DROP_TABLE_MISS,
    DROP_UNCONNECTED,
    OFPP_IN_PORT,
    ActionError,
    AmbiguousMatchError,
    FlowTableError,
    Network,
    Packet,
    Switch,
    TopologyError,
    both_ways,
    dump_flows,
    hash_fields,
    ipv4_packet,
    pop_mpls,
    push_mpls,
    select_bucket,
    select_distribution,
    set_field,
)

H1_MAC, H2_MAC, H3_MAC = "00:00:00:00:00:01", "00:00:00:00:00:02", "00:00:00:00:00:03"
LABEL = 1000
MPLS = {"eth_type": ETH_TYPE_MPLS}
PICKS = [1, 0, 1, 0, 0, 0, 0, 0, 0, 0]  # select_bucket of 3:1 for tcp_src 1024..1033


def pkt(**kwargs: object) -> Packet:
    """An IPv4 TCP packet h1 -> h2 (10.0.0.1 -> 10.0.0.2), overridable."""
    args: dict = {"eth_src": H1_MAC, "eth_dst": H2_MAC, "src_port": 40000, "dst_port": 80}
    args.update(kwargs)
    return ipv4_packet("10.0.0.1", "10.0.0.2", **args)


def flow(dpid: int, table: int, priority: int, match: dict, actions=(), goto=None) -> FlowSpec:
    return FlowSpec.make(dpid, table, priority, match, list(actions), goto)


# A line s1 - s2 - s3: h1 on s1:1, h2 on s3:1; s1:2 <-> s2:1, s2:2 <-> s3:2.
LINE_LINKS = both_ways({(1, 2): (2, 1), (2, 2): (3, 2)})
LINE_HOSTS = {(1, 1): "h1", (3, 1): "h2"}


def line_flows() -> list[FlowSpec]:
    """The pipeline of docs/pipeline.rst by hand for one trail h1 -> h2 carrying LABEL."""
    to_h2 = {"in_port": 1, "eth_type": ETH_TYPE_IPV4, "ipv4_dst": "10.0.0.2"}
    return [
        # s1 (ingress): classify + push + goto 1; labelled frames from the host port drop.
        flow(1, 0, 200, {"in_port": 1, **MPLS}),
        flow(1, 0, 100, to_h2, [PushMpls(), SetField("mpls_label", LABEL)], goto=1),
        flow(1, 1, 100, {**MPLS, "mpls_label": LABEL}, [Output(2)]),
        flow(1, 1, 0, {}, [ToController()]),
        # s2 (transit): accept labels on link ports, forward on the label.
        flow(2, 0, 500, {"in_port": 1, **MPLS}, goto=1),
        flow(2, 0, 500, {"in_port": 2, **MPLS}, goto=1),
        flow(2, 1, 100, {**MPLS, "mpls_label": LABEL}, [Output(2)]),
        flow(2, 1, 0, {}, [ToController()]),
        # s3 (egress): pop and deliver.
        flow(3, 0, 500, {"in_port": 2, **MPLS}, goto=1),
        flow(3, 1, 100, {**MPLS, "mpls_label": LABEL}, [PopMpls(ETH_TYPE_IPV4), Output(1)]),
        flow(3, 1, 0, {}, [ToController()]),
    ]


def line_network(extra: list | None = None) -> Network:
    return Network.from_specs(line_flows() + (extra or []), LINE_LINKS, LINE_HOSTS)


# Lookup ------------------------------------------------------------------


def test_higher_priority_flow_wins() -> None:
    sw = Switch(1, [
        flow(1, 0, 10, {"eth_type": ETH_TYPE_IPV4}, [Output(2)]),
        flow(1, 0, 20, {"eth_type": ETH_TYPE_IPV4, "ipv4_dst": "10.0.0.2"}, [Output(3)]),
        flow(1, 0, 0, {}, [Output(4)]),
    ])
    assert [e.port for e in sw.process(1, pkt()).outputs] == [3]
    assert [e.port for e in sw.process(1, pkt(eth_dst=H3_MAC)).outputs] == [3]
    other = ipv4_packet("10.0.0.1", "10.0.0.9")
    assert [e.port for e in sw.process(1, other).outputs] == [2]
    arp = Packet(H1_MAC, H2_MAC, ETH_TYPE_ARP)
    assert [e.port for e in sw.process(1, arp).outputs] == [4]


def test_same_priority_flows_matching_one_packet_are_ambiguous() -> None:
    sw = Switch(1, [
        flow(1, 0, 10, {"in_port": 1}, [Output(2)]),
        flow(1, 0, 10, {"eth_type": ETH_TYPE_IPV4}, [Output(3)]),
    ])
    with pytest.raises(AmbiguousMatchError, match="priority 10"):
        sw.process(1, pkt())
    # A packet that only one of them matches is fine.
    assert [e.port for e in sw.process(5, pkt()).outputs] == [3]


def test_conflicting_duplicate_flow_rejected_but_identical_repeat_accepted() -> None:
    a = flow(1, 0, 10, {"in_port": 1}, [Output(2)])
    Switch(1, [a, a])
    with pytest.raises(FlowTableError, match="same table, priority and match"):
        Switch(1, [a, flow(1, 0, 10, {"in_port": 1}, [Output(3)])])


def test_ipv4_prefix_match_and_fields_invisible_under_a_label() -> None:
    sw = Switch(1, [
        flow(1, 0, 10, {"eth_type": ETH_TYPE_IPV4, "ipv4_dst": "10.0.0.0/24"}, [Output(2)]),
    ])
    assert [e.port for e in sw.process(1, pkt()).outputs] == [2]
    labelled = pkt(mpls=(LABEL,))
    assert labelled.ipv4_dst == "10.0.0.2" and labelled.get("ipv4_dst") is None
    assert sw.process(1, labelled).drops[0].reason == DROP_TABLE_MISS


# Load-time checks --------------------------------------------------------


@pytest.mark.parametrize(
    "match",
    [
        {"mpls_label": LABEL},
        {"eth_type": ETH_TYPE_IPV4, "mpls_label": LABEL},
        {"mpls_tc": 3},
        {"ipv4_dst": "10.0.0.2"},
        {"eth_type": ETH_TYPE_MPLS, "ipv4_src": "10.0.0.1"},
        {"eth_type": ETH_TYPE_IPV4, "tcp_dst": 80},
        {"eth_type": ETH_TYPE_IPV4, "ip_proto": 17, "tcp_dst": 80},
        {"ip_proto": 6},
    ],
)
def test_match_without_its_prerequisite_is_rejected_at_load(match: dict) -> None:
    with pytest.raises(FlowTableError, match="prerequisite"):
        Switch(1, [flow(1, 0, 10, match, [Output(2)])])


def test_match_with_prerequisites_loads() -> None:
    Switch(1, [
        flow(1, 1, 10, {"eth_type": ETH_TYPE_MPLS, "mpls_label": LABEL}, [Output(2)]),
        flow(1, 0, 10, {"eth_type": ETH_TYPE_IPV4, "ip_proto": 6, "tcp_dst": 80}, [Output(2)]),
    ])


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        (flow(1, 0, 10, {"vlan_vid": 5}, [Output(2)]), "unknown or unsupported match field"),
        (flow(1, 0, 10, {"in_port": "1"}, [Output(2)]), "in_port"),
        (flow(1, 0, 10, {"eth_dst": "not-a-mac"}, [Output(2)]), "eth_dst"),
        (flow(1, 1, 10, {}, goto=1), "goto_table:1"),
        (flow(1, 1, 10, {}, goto=0), "goto_table:0"),
        (flow(1, 0, 10, {}, [Group(7)]), "group:7 does not exist"),
        (flow(1, 0, 10, {}, [Output(0xFFFFFFFB)]), "not a port"),  # FLOOD
        (flow(1, 0, 10, {}, [SetField("mpls_label", 2**20)]), "mpls_label"),
        (flow(1, 0, 10, {}, [SetField("eth_type", ETH_TYPE_MPLS)]), "set_field on 'eth_type'"),
        (flow(1, 0, 10, {}, [PushMpls(ETH_TYPE_IPV4)]), "not an MPLS ethertype"),
        (flow(2, 0, 10, {}, [Output(2)]), "dpid 0x2"),
        (GroupSpec(1, 1, "fast_failover", (Bucket((Output(2),)),)), "needs a watch_port"),
        (GroupSpec(1, 1, "chained", (Bucket((Output(2),)),)), "type 'chained'"),
        (GroupSpec(1, 1, "indirect", ()), "exactly one bucket"),
        (GroupSpec(1, 1, "select", (Bucket((Output(2),), weight=0),)), "positive weight"),
    ],
)
def test_invalid_flow_or_group_rejected_at_load(spec: FlowSpec | GroupSpec, error: str) -> None:
    with pytest.raises(FlowTableError, match=error):
        Switch(1, [spec])


def test_group_chain_may_be_in_any_order_but_not_a_cycle() -> None:
    g1 = GroupSpec(1, 1, "indirect", (Bucket((Group(2),)),))
    g2 = GroupSpec(1, 2, "indirect", (Bucket((Output(3),)),))
    sw = Switch(1, [flow(1, 0, 1, {}, [Group(1)]), g1, g2])
    assert [e.port for e in sw.process(1, pkt()).outputs] == [3]
    looped = GroupSpec(1, 2, "indirect", (Bucket((Group(1),)),))
    with pytest.raises(FlowTableError, match="cycle: 1 -> 2 -> 1"):
        Switch(1, [g1, looped])


# MPLS --------------------------------------------------------------------


def test_mpls_trail_round_trip_across_three_switch_line() -> None:
    net = line_network()
    sent = pkt()
    trace = net.send("h1", sent)
    assert trace.delivered_to == ("h2",), trace.format()
    hops = [(h.dpid, h.in_port, h.out_port) for h in trace.hops]
    assert hops == [(1, 1, 2), (2, 1, 2), (3, 2, 1)]
    # Labelled on every inter-switch link ...
    assert [(t.src, t.dst) for t in trace.transits] == [((1, 2), (2, 1)), ((2, 2), (3, 2))]
    assert all(t.packet.mpls == (LABEL,) and t.packet.eth_type == ETH_TYPE_MPLS
               for t in trace.transits)
    assert all(t.packet.payload_type == ETH_TYPE_IPV4 for t in trace.transits)
    # ... and delivered exactly as sent: no label, IPv4 again.
    delivered = trace.deliveries[0].packet
    assert delivered.mpls == () and delivered.eth_type == ETH_TYPE_IPV4
    assert delivered == sent
    assert not trace.drops and not trace.packet_ins and not trace.loop


def test_labelled_packet_from_host_port_is_dropped() -> None:
    trace = line_network().send("h1", pkt(mpls=(LABEL,)))
    assert trace.deliveries == () and trace.hops == ()
    assert [(d.dpid, d.reason, d.table) for d in trace.drops] == [(1, DROP_BY_FLOW, 0)]


def test_unknown_label_is_sent_to_the_controller() -> None:
    # A labelled frame arriving on s2's link port with a label s2 has no entry for.
    trace = line_network().send((2, 1), pkt(mpls=(4242,)))
    assert trace.deliveries == ()
    [packet_in] = trace.packet_ins
    assert (packet_in.dpid, packet_in.table, packet_in.in_port) == (2, 1, 1)
    assert packet_in.packet.mpls_label == 4242


def test_push_copies_outer_label_and_pop_uncovers_inner() -> None:
    inner = set_field(push_mpls(pkt()), "mpls_label", 20)
    assert (inner.mpls, inner.payload_type) == ((20,), ETH_TYPE_IPV4)
    outer = set_field(set_field(push_mpls(inner), "mpls_tc", 5), "mpls_label", 30)
    assert outer.mpls == (30, 20) and outer.mpls_tcs == (5, 0) and outer.mpls_tc == 5
    assert push_mpls(inner).mpls == (20, 20)  # OpenFlow copies the outer label
    popped = pop_mpls(outer, ETH_TYPE_MPLS)
    assert popped.mpls == (20,) and popped.eth_type == ETH_TYPE_MPLS
    assert pop_mpls(popped, ETH_TYPE_IPV4) == pkt()


def test_mpls_actions_on_wrong_packet_are_errors() -> None:
    with pytest.raises(ActionError, match="without an MPLS header"):
        set_field(pkt(), "mpls_label", LABEL)
    with pytest.raises(ActionError, match="without MPLS"):
        pop_mpls(pkt(), ETH_TYPE_IPV4)
    with pytest.raises(ActionError, match="payload is 0x0800"):
        pop_mpls(pkt(mpls=(LABEL,)), ETH_TYPE_ARP)
    with pytest.raises(ActionError, match="must be MPLS"):
        pop_mpls(pkt(mpls=(1, 2)), ETH_TYPE_IPV4)
    with pytest.raises(ActionError, match="no visible ipv4_dst"):
        set_field(pkt(mpls=(LABEL,)), "ipv4_dst", "10.0.0.3")


def test_flow_that_sets_label_before_push_fails_with_context() -> None:
    net = Network.from_specs(
        [flow(1, 0, 10, {}, [SetField("mpls_label", LABEL), PushMpls(), Output(2)])],
        hosts={(1, 1): "h1", (1, 2): "h2"},
    )
    with pytest.raises(ActionError, match=r"dpid 0x1 in_port=1 .*set_field:1000->mpls_label"):
        net.send("h1", pkt())


# Groups ------------------------------------------------------------------


def edge_select(weights: tuple[int, ...]) -> Switch:
    """s1 splits IPv4 from port 1 over labels 100+i out of port 2+i, by weight."""
    buckets = tuple(
        Bucket((PushMpls(), SetField("mpls_label", 100 + i), Output(2 + i)), weight=w)
        for i, w in enumerate(weights)
    )
    return Switch(1, [
        GroupSpec(1, 1, "select", buckets),
        flow(1, 0, 10, {"in_port": 1, "eth_type": ETH_TYPE_IPV4}, [Group(1)]),
    ])


def test_select_group_splits_flows_by_bucket_weight() -> None:
    sw = edge_select((3, 1))
    shares = select_distribution(sw.groups[1])
    assert [(s.bucket, s.fraction) for s in shares] == [(0, 0.75), (1, 0.25)]
    counts = {2: 0, 3: 0}
    n = 4000
    for i in range(n):
        [out] = sw.process(1, pkt(src_port=1024 + i)).outputs
        counts[out.port] += 1
        assert out.packet.mpls_label == 100 + out.port - 2
    assert counts[2] / n == pytest.approx(0.75, abs=0.03)


def test_select_group_is_deterministic_for_a_flow() -> None:
    sw = edge_select((3, 1))
    for i in range(50):
        flow_pkt = pkt(src_port=2000 + i)
        picks = {select_bucket(sw.groups[1], flow_pkt) for _ in range(3)}
        picks |= {sw.process(1, flow_pkt).outputs[0].port - 2 for _ in range(3)}
        assert len(picks) == 1
    # Stable across runs and processes (no PYTHONHASHSEED): a fixed flow, a fixed bucket.
    assert [select_bucket(sw.groups[1], pkt(src_port=p)) for p in range(1024, 1034)] == PICKS


def test_select_group_never_picks_zero_weight_bucket() -> None:
    sw = edge_select((1, 0, 1))
    ports = {sw.process(1, pkt(src_port=1024 + i)).outputs[0].port for i in range(300)}
    assert ports == {2, 4}


def test_select_on_labelled_packets_hashes_only_l2() -> None:
    group = GroupSpec(1, 1, "select", (Bucket((Output(2),)), Bucket((Output(3),))))
    labelled = [pkt(src_port=1024 + i, mpls=(LABEL,)) for i in range(100)]
    assert len({hash_fields(p) for p in labelled}) == 1
    assert len({select_bucket(group, p) for p in labelled}) == 1


def test_all_group_sends_an_independent_copy_per_bucket() -> None:
    group = GroupSpec(1, 5, "all", (
        Bucket((SetField("eth_dst", H2_MAC), Output(2))),
        Bucket((Output(3),)),
        Bucket((PushMpls(), SetField("mpls_label", 77), Output(4))),
    ))
    net = Network.from_specs(
        [group, flow(1, 0, 10, {"in_port": 1}, [Group(5), Output(5)])],
        hosts={(1, 1): "h1", (1, 2): "h2", (1, 3): "h3", (1, 4): "h4", (1, 5): "h5"},
    )
    sent = pkt(eth_dst="ff:ff:ff:ff:ff:ff")
    trace = net.send("h1", sent)
    got = {d.host: d.packet for d in trace.deliveries}
    assert trace.delivered_to == ("h2", "h3", "h4", "h5")
    assert got["h2"].eth_dst == H2_MAC
    assert got["h3"] == sent and got["h5"] == sent  # bucket edits do not leak
    assert got["h4"].mpls == (77,)


def test_indirect_group_runs_its_bucket_and_empty_all_group_drops() -> None:
    sw = Switch(1, [
        GroupSpec(1, 1, "indirect", (Bucket((Output(7),)),)),
        GroupSpec(1, 2, "all", ()),
        flow(1, 0, 10, {"in_port": 1}, [Group(1)]),
        flow(1, 0, 10, {"in_port": 2}, [Group(2)]),
    ])
    assert [e.port for e in sw.process(1, pkt()).outputs] == [7]
    assert [d.reason for d in sw.process(2, pkt()).drops] == [DROP_EMPTY_GROUP]


# Drops, packet-ins, in_port ------------------------------------------------


def test_table_miss_drops_in_the_table_that_missed() -> None:
    net = Network.from_specs(
        [flow(1, 0, 10, {"in_port": 1}, goto=1)], hosts={(1, 1): "h1", (1, 2): "h2"}
    )
    trace = net.send("h1", pkt())
    assert [(d.reason, d.table) for d in trace.drops] == [(DROP_TABLE_MISS, 1)]
    trace = net.send("h2", pkt())
    assert [(d.reason, d.table) for d in trace.drops] == [(DROP_TABLE_MISS, 0)]
    assert not trace.packet_ins


def test_packet_in_is_recorded_with_table_and_cookie() -> None:
    cookie = trail_cookie(9)
    spec = FlowSpec.make(1, 0, 10, {"eth_type": ETH_TYPE_ARP}, [ToController()], cookie=cookie)
    trace = Network.from_specs([spec], hosts={(1, 3): "h1"}).send("h1", Packet(
        H1_MAC, "ff:ff:ff:ff:ff:ff", ETH_TYPE_ARP))
    [packet_in] = trace.packet_ins
    assert (packet_in.dpid, packet_in.table, packet_in.in_port, packet_in.cookie) == (
        1, 0, 3, cookie)
    assert not trace.drops and not trace.deliveries


def test_output_to_arrival_port_is_suppressed_unless_in_port_is_used() -> None:
    hosts = {(1, 1): "h1"}
    net = Network.from_specs([flow(1, 0, 10, {}, [Output(1)])], hosts=hosts)
    trace = net.send("h1", pkt())
    assert trace.deliveries == () and [d.reason for d in trace.drops] == [DROP_IN_PORT]
    net = Network.from_specs([flow(1, 0, 10, {}, [Output(OFPP_IN_PORT)])], hosts=hosts)
    assert net.send("h1", pkt()).delivered_to == ("h1",)


def test_in_port_output_of_a_group_bucket_goes_back_out_of_the_arrival_port() -> None:
    """Hosts behind one port (a service member beside its client): a bucket outputs
    IN_PORT; a bucket that names the arrival port is dropped, the others still go."""
    hosts = {(1, 1): "bridge", (1, 2): "h2"}
    group = GroupSpec(1, 1, "all", (Bucket((Output(OFPP_IN_PORT),)), Bucket((Output(1),)),
                                    Bucket((Output(2),))))
    net = Network.from_specs([group, flow(1, 0, 10, {"in_port": 1}, [Group(1)])], hosts=hosts)
    trace = net.send("bridge", pkt())
    assert [(d.host, d.port) for d in trace.deliveries] == [("bridge", 1), ("h2", 2)]
    assert [(d.reason, d.in_port) for d in trace.drops] == [(DROP_IN_PORT, 1)]
    assert [(h.in_port, h.out_port) for h in trace.hops] == [(1, 1), (1, 2)]


def test_output_to_unwired_port_is_a_drop() -> None:
    trace = Network.from_specs([flow(1, 0, 10, {}, [Output(9)])], hosts={(1, 1): "h1"}).send(
        "h1", pkt())
    assert [(d.reason, d.detail) for d in trace.drops] == [
        (DROP_UNCONNECTED, "output:9 has no link or host")]


# Loops and wiring ------------------------------------------------------------


def test_forwarding_loop_is_reported_not_followed_forever() -> None:
    # s1:2 <-> s2:1 and s2:2 <-> s1:3; both switches push everything onwards.
    links = both_ways({(1, 2): (2, 1), (2, 2): (1, 3)})
    flows = [flow(1, 0, 10, {}, [Output(2)]), flow(2, 0, 10, {}, [Output(2)])]
    trace = Network.from_specs(flows, links, {(1, 1): "h1"}).send("h1", pkt())
    assert trace.loop and "re-entered dpid 0x2 port 1" in trace.errors[0]
    assert trace.deliveries == ()


def test_loop_that_changes_the_packet_stops_at_hop_limit() -> None:
    links = both_ways({(1, 2): (2, 1), (2, 2): (1, 3)})
    flows = [
        flow(1, 0, 10, {}, [PushMpls(), Output(2)]),  # one more label every lap
        flow(2, 0, 10, {}, [Output(2)]),
    ]
    net = Network.from_specs(flows, links, {(1, 1): "h1"}, max_hops=20)
    trace = net.send("h1", pkt())
    assert trace.loop and "hop limit 20" in trace.errors[0]
    assert len(trace.hops) == 20


def test_duplicate_copies_are_not_mistaken_for_a_loop() -> None:
    group = GroupSpec(1, 1, "all", (Bucket((Output(2),)), Bucket((Output(2),))))
    flows = [group, flow(1, 0, 10, {"in_port": 1}, [Group(1)]), flow(2, 0, 10, {}, [Output(2)])]
    net = Network.from_specs(flows, both_ways({(1, 2): (2, 1)}), {(1, 1): "h1", (2, 2): "h2"})
    trace = net.send("h1", pkt())
    assert trace.delivered_to == ("h2", "h2") and not trace.loop


@pytest.mark.parametrize(
    ("links", "hosts", "error"),
    [
        ({(1, 2): (2, 1), (2, 1): (3, 1)}, {}, "a port has one peer"),
        ({(1, 2): (2, 1), (3, 1): (2, 1)}, {}, "both link into"),
        ({(1, 2): (1, 2)}, {}, "onto itself"),
        (both_ways({(1, 2): (2, 1)}), {(2, 1): "h1"}, "inter-switch port"),
    ],
)
def test_inconsistent_wiring_is_rejected(links: dict, hosts: dict, error: str) -> None:
    with pytest.raises(TopologyError, match=error):
        Network({}, links, hosts)


# Updates and dumps ---------------------------------------------------------


def test_flow_delete_by_cookie_then_misses_go_to_controller() -> None:
    cookie = trail_cookie(3)
    spec = FlowSpec.make(2, 1, 100, {**MPLS, "mpls_label": LABEL}, [Output(2)], cookie=cookie)
    net = line_network()
    net.apply([spec])  # same key as the hand-written flow: replaced, not duplicated
    assert net.send("h1", pkt()).delivered_to == ("h2",)
    net.apply([FlowDelete(2, cookie, 0xFFFF_FFFF_FFFF_FFFF)])
    trace = net.send("h1", pkt())
    assert trace.deliveries == () and [p.dpid for p in trace.packet_ins] == [2]


def test_dump_lists_flows_in_lookup_order_with_groups() -> None:
    text = dump_flows(line_flows() + [GroupSpec(1, 4, "select", (
        Bucket((Output(2),), weight=3), Bucket((Output(3),)),
    ))])
    lines = text.splitlines()
    assert lines[0] == "dpid=0x1"
    assert lines[1].endswith("table=0, priority=200,eth_type=0x8847,in_port=1 actions=drop")
    assert "push_mpls:0x8847,set_field:1000->mpls_label,goto_table:1" in lines[2]
    assert "pop_mpls:0x0800,output:1" in text and "CONTROLLER:65535" in text
    assert (" group_id=4,type=select,bucket=bucket_id:0,weight:3,actions=output:2,"
            "bucket=bucket_id:1,weight:1,actions=output:3") in lines
    assert line_network().switches[3].dump().startswith("dpid=0x3\n cookie=")


def test_packet_rejects_inconsistent_headers() -> None:
    with pytest.raises(ValueError, match="payload_type"):
        Packet(H1_MAC, H2_MAC, ETH_TYPE_MPLS, mpls=(LABEL,))
    with pytest.raises(ValueError, match="needs at least one MPLS label"):
        Packet(H1_MAC, H2_MAC, ETH_TYPE_MPLS)
    with pytest.raises(ValueError, match="ip_proto"):
        Packet(H1_MAC, H2_MAC, ETH_TYPE_IPV4, ip_proto=17, tcp_dst=80)
    with pytest.raises(ValueError, match="ports need ip_proto"):
        ipv4_packet("10.0.0.1", "10.0.0.2", ip_proto=1, dst_port=7)
