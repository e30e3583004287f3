"""IPv6: hosts learned from IPv6 and Neighbour Discovery, proxy ND and probes, IPv6
trails on the label pipeline (checked in the forwarding simulator), IPv6 prefixes in
the policy, and IPv6 addresses in the REST views."""

from __future__ import annotations

import pytest

from sdnscent import compiler
from sdnscent.controller import CONTROLLER_MAC
from sdnscent.core.neighbours import NdPacket, solicited_node
from sdnscent.flows import (
    ETH_TYPE_IPV4,
    ETH_TYPE_IPV6,
    ICMPV6_NA,
    ICMPV6_NS,
    IPPROTO_ICMPV6,
    PopMpls,
)
from sdnscent.policyfile import PolicyError, parse_policy
from sdnscent.rest import create_app
from sdnscent.simulator import ipv4_packet, ipv6_packet
from tests.fabric import attachment, compile_network, host_name

APP = """\
applications:
  - name: web6
    endpoints: {prefixes: ["fc00::/64"], ports: [tcp/80]}
"""


def v6(n: int) -> str:
    return f"fc00::{n:x}"


def learn6(ctrl, host, address: str | None = None):
    """host sends an IPv6 packet (to nobody known yet): the controller learns it."""
    return ctrl.ipv6_in(host.dpid, host.port, host.mac, "33:33:00:00:00:01",
                        address or v6(host.n), b"", 0.0)


def run(decision) -> None:
    for change in decision.changes:
        for callback in change.done:
            callback()


def test_a_host_is_learned_from_an_ipv6_packet_and_keeps_its_ipv4_address(fat_tree,
                                                                           clock) -> None:
    ctrl = fat_tree.controller(clock, hosts=[1])
    h1, h2 = fat_tree.host(1), fat_tree.host(2)
    learn6(ctrl, h1)
    learn6(ctrl, h1, "fe80::200:ff:fe00:1")
    learn6(ctrl, h2)  # an IPv6-only host
    host = ctrl.topo.hosts[h1.mac]
    assert host.ip == h1.ip and host.ip6 == (v6(1), "fe80::200:ff:fe00:1")
    assert host.address(6) == v6(1)  # the global address before the link-local one
    assert ctrl.topo.host_by_ip("FC00:0:0::1").mac == h1.mac
    assert ctrl.topo.hosts[h2.mac].ip == "" and ctrl.topo.host_by_ip(v6(2)).mac == h2.mac
    # The IPv4 address arriving later is not a move: nothing of h2 is dropped.
    assert not ctrl.learn_host(h2.dpid, h2.port, h2.mac, h2.ip)
    assert ctrl.topo.hosts[h2.mac].ip6 == (v6(2),)


def test_ipv6_and_ipv4_of_one_pair_ride_their_own_labels_end_to_end(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h9 = fat_tree.host(1), fat_tree.host(9)
    for h in (h1, h9):
        learn6(ctrl, h)
    decision = ctrl.ipv6_in(h1.dpid, h1.port, h1.mac, h9.mac, v6(1), b"", 0.0)
    assert decision.resend and len(decision.created) == 1
    six = ctrl.store.get(decision.created[0])
    assert (six.family, six.src_ip, six.dst_ip) == (6, v6(1), v6(9))
    assert six.to_dict()["family"] == "ipv6"
    four, _ = ctrl.ensure_trail(h1.mac, h9.mac)
    assert four.family == 4 and four.label != six.label
    assert ctrl.trail_for_pair(h1.mac, h9.mac) == four
    [classifier] = compiler.classifier_flows(six)
    assert classifier.match_dict["eth_type"] == ETH_TYPE_IPV6
    assert PopMpls(ETH_TYPE_IPV6) in compiler.hop_flows(six)[0].actions
    net = compile_network(ctrl, fat_tree)
    for sent, label in ((ipv6_packet(v6(1), v6(9), eth_src=h1.mac, eth_dst=h9.mac,
                                     dst_port=5201), six.label),
                        (ipv6_packet(v6(1), v6(9), eth_src=h1.mac, eth_dst=h9.mac,
                                     icmpv6_type=128), six.label),  # echo request
                        (ipv4_packet(h1.ip, h9.ip, eth_src=h1.mac, eth_dst=h9.mac,
                                     dst_port=5201), four.label)):
        trace = net.send(attachment(h1), sent)
        assert trace.delivered_to == (host_name(h9),), trace.format()
        assert trace.deliveries[0].packet == sent  # the label is gone, the payload intact
        assert trace.transits and {t.packet.mpls for t in trace.transits} == {(label,)}
        assert {t.packet.payload_type for t in trace.transits} == {sent.eth_type}


def test_an_ipv6_packet_without_a_trail_goes_to_the_controller_and_nd_too(fat_tree,
                                                                          clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h9 = fat_tree.host(1), fat_tree.host(9)
    net = compile_network(ctrl, fat_tree)
    for sent in (ipv6_packet(v6(1), v6(9), eth_src=h1.mac, eth_dst=h9.mac, dst_port=22),
                 ipv6_packet(v6(1), solicited_node(v6(9))[0], eth_src=h1.mac,
                             eth_dst=solicited_node(v6(9))[1], icmpv6_type=ICMPV6_NS)):
        trace = net.send(attachment(h1), sent)
        assert [(p.dpid, p.table) for p in trace.packet_ins] == [(h1.dpid, 0)]
        assert not trace.deliveries and not trace.drops


def test_a_solicitation_for_a_known_host_is_answered_and_the_pair_gets_ipv6_trails(
        fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h9 = fat_tree.host(1), fat_tree.host(9)
    learn6(ctrl, h9)
    decision = ctrl.nd_in(h1.dpid, h1.port, ICMPV6_NS, h1.mac, v6(1), v6(9))
    assert decision.packets == [NdPacket(h1.dpid, h1.port, ICMPV6_NA, CONTROLLER_MAC, h1.mac,
                                         v6(9), v6(1), v6(9), h9.mac, solicited=True)]
    run(decision)
    both = {(t.src_mac, t.dst_mac, t.family) for t in ctrl.store.all()}
    assert both == {(h1.mac, h9.mac, 6), (h9.mac, h1.mac, 6)}
    assert ctrl.topo.hosts[h1.mac].ip6 == (v6(1),)  # the asker is learned too


def test_an_unknown_address_is_probed_boundedly_and_the_advert_answers_every_waiter(
        fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock, hosts=range(1, 16))
    h1, h2, h16 = fat_tree.host(1), fat_tree.host(2), fat_tree.host(16)
    first = ctrl.nd_in(h1.dpid, h1.port, ICMPV6_NS, h1.mac, v6(1), v6(16))
    group, group_mac = solicited_node(v6(16))
    assert (group, group_mac) == ("ff02::1:ff00:10", "33:33:ff:00:00:10")
    assert sorted((p.dpid, p.port) for p in first.packets) == \
        sorted((h.dpid, h.port) for h in fat_tree.hosts)
    assert {(p.kind, p.eth_src, p.eth_dst, p.ip_src, p.ip_dst, p.target, p.lladdr)
            for p in first.packets} == {(ICMPV6_NS, CONTROLLER_MAC, group_mac, "::", group,
                                         v6(16), "")}
    clock.advance(0.5)
    again = ctrl.nd_in(h2.dpid, h2.port, ICMPV6_NS, h2.mac, v6(2), v6(16))
    assert again.packets == []  # probed less than a second ago
    # h16 answers the probe (an unsolicited advert to all-nodes, as for DAD).
    answer = ctrl.nd_in(h16.dpid, h16.port, ICMPV6_NA, h16.mac, v6(16), v6(16))
    assert {(p.dpid, p.port, p.eth_dst, p.ip_dst, p.lladdr) for p in answer.packets} == {
        (h.dpid, h.port, h.mac, v6(h.n), h16.mac) for h in (h1, h2)}
    assert ctrl.topo.host_by_ip(v6(16)).mac == h16.mac
    run(answer)
    assert {(t.src_mac, t.dst_mac) for t in ctrl.store.all()} == {
        (h1.mac, h16.mac), (h16.mac, h1.mac), (h2.mac, h16.mac), (h16.mac, h2.mac)}
    assert ctrl.nd_in(h16.dpid, h16.port, ICMPV6_NA, h16.mac, v6(16), v6(16)).packets == []


def test_probe_rounds_are_rate_limited_over_all_addresses(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock, hosts=[1])
    h1 = fat_tree.host(1)
    rounds = [ctrl.nd_in(h1.dpid, h1.port, ICMPV6_NS, h1.mac, v6(1), f"fc00::1:{i:x}")
              for i in range(40)]
    sent = sum(1 for d in rounds if d.packets)
    assert sent == 20  # the burst; the rest wait for the budget
    assert ctrl.s.neighbours.probes_limited == 20


def test_duplicate_address_detection_is_neither_answered_nor_learned(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock, hosts=[9])
    h1, h9 = fat_tree.host(1), fat_tree.host(9)
    learn6(ctrl, h9)
    decision = ctrl.nd_in(h1.dpid, h1.port, ICMPV6_NS, h1.mac, "::", v6(9))
    assert decision.packets == [] and not decision.changes
    assert h1.mac not in ctrl.topo.hosts


def test_nd_from_an_inter_switch_port_or_the_controller_is_ignored(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock, hosts=[1])
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    assert not ctrl.nd_in(5, 3, ICMPV6_NS, h5.mac, v6(5), v6(1)).packets  # s5:3 -> core
    assert not ctrl.nd_in(h1.dpid, h1.port, ICMPV6_NA, CONTROLLER_MAC, v6(99), v6(99)).packets
    assert h5.mac not in ctrl.topo.hosts and ctrl.topo.host_by_ip(v6(99)) is None


def test_an_application_over_an_ipv6_prefix_gets_ipv6_trails_for_its_port(fat_tree,
                                                                        clock) -> None:
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(parse_policy(APP, "v6.yaml"))
    h1, h9 = fat_tree.host(1), fat_tree.host(9)
    for h in (h1, h9):
        learn6(ctrl, h)
    _, change = ctrl.ensure_pair(h1.mac, h9.mac, family=6)
    trails = {t.app: t for t in ctrl.store.all()}
    assert set(trails) == {"default", "web6"} and {t.family for t in trails.values()} == {6}
    assert ctrl.ensure_pair(h1.mac, h9.mac)[0].family == 4  # IPv4 is covered too: the
    assert {t.app for t in ctrl.store.all() if t.family == 4} == {"default", "web6"}  # hosts
    web = trails["web6"]
    assert {m["eth_type"] for m in compiler.classifier_matches(web)} == {ETH_TYPE_IPV6}
    net = compile_network(ctrl, fat_tree)
    for port, label in ((80, web.label), (22, trails["default"].label)):
        sent = ipv6_packet(v6(1), v6(9), eth_src=h1.mac, eth_dst=h9.mac, dst_port=port)
        trace = net.send(attachment(h1), sent)
        assert trace.delivered_to == (host_name(h9),), trace.format()
        assert {t.packet.mpls for t in trace.transits} == {(label,)}


def test_policy_prefixes_of_both_families_load_and_a_bad_one_is_named() -> None:
    policy = parse_policy(APP.replace('"fc00::/64"', '"fc00::/64", 10.0.0.0/8'), "p.yaml")
    assert [str(p) for p in policy.app("web6").endpoints.prefixes] == ["fc00::/64", "10.0.0.0/8"]
    with pytest.raises(PolicyError) as err:
        parse_policy(APP.replace("fc00::/64", "fc00::zz/64"), "bad.yaml")
    assert "applications[0].endpoints.prefixes[0]" in str(err.value)
    assert "'fc00::zz/64' is not an IPv4 or IPv6 prefix" in str(err.value)


def test_rest_shows_ipv6_addresses_and_filters_trails_by_them(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h9 = fat_tree.host(1), fat_tree.host(9)
    for h in (h1, h9):
        learn6(ctrl, h)
    ctrl.ensure_pair(h1.mac, h9.mac, family=6)
    ctrl.ensure_pair(h1.mac, h9.mac)
    client = create_app(ctrl).test_client()
    hosts = {h["mac"]: h for h in client.get("/api/v1/topology").get_json()["hosts"]}
    assert hosts[h1.mac]["ipv6"] == [v6(1)] and hosts[h1.mac]["ip"] == h1.ip
    found = client.get("/api/v1/trails?src=FC00::1").get_json()["trails"]
    assert [(t["src"], t["dst"], t["family"]) for t in found] == [(v6(1), v6(9), "ipv6")]
    bad = client.get("/api/v1/trails?src=fc00::1::2")
    assert bad.status_code == 400 and "IPv4, IPv6 or MAC" in bad.get_json()["error"]["message"]


def test_the_ipv4_trail_is_unchanged_by_ipv6(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h9 = fat_tree.host(1), fat_tree.host(9)
    four, _ = ctrl.ensure_trail(h1.mac, h9.mac)
    assert four.family == 4 and compiler.classifier_match(four)["eth_type"] == ETH_TYPE_IPV4
    with pytest.raises(ValueError, match="has no IPv6 address"):
        ctrl.ensure_trail(h1.mac, h9.mac, family=6)
    assert IPPROTO_ICMPV6 == 58


def test_the_glue_builds_wire_correct_neighbour_discovery_frames() -> None:
    from scapy.layers.inet6 import (
        ICMPv6ND_NA,
        ICMPv6ND_NS,
        ICMPv6NDOptDstLLAddr,
        ICMPv6NDOptSrcLLAddr,
        IPv6,
    )
    from scapy.layers.l2 import Ether

    from apps import ofmsg

    advert = Ether(ofmsg.nd_frame(NdPacket(1, 1, ICMPV6_NA, CONTROLLER_MAC, "00:00:00:00:00:01",
                                           v6(9), v6(1), v6(9), "00:00:00:00:00:09")))
    na = advert[ICMPv6ND_NA]
    assert (advert.src, advert.dst, advert[IPv6].hlim) == (CONTROLLER_MAC, "00:00:00:00:00:01",
                                                           255)
    assert (na.tgt, na.S, na.O, na.R) == (v6(9), 1, 1, 0)
    assert advert[ICMPv6NDOptDstLLAddr].lladdr == "00:00:00:00:00:09"
    checksum = na.cksum
    del na.cksum
    assert Ether(bytes(advert))[ICMPv6ND_NA].cksum == checksum  # scapy agrees
    group, group_mac = solicited_node(v6(16))
    probe = Ether(ofmsg.nd_frame(NdPacket(1, 1, ICMPV6_NS, CONTROLLER_MAC, group_mac, "::",
                                          group, v6(16))))
    assert (probe.dst, probe[IPv6].src, probe[IPv6].dst) == (group_mac, "::", group)
    assert probe[ICMPv6ND_NS].tgt == v6(16) and ICMPv6NDOptSrcLLAddr not in probe
