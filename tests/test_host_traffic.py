"""Host traffic that is not unicast IP: broadcast and multicast dropped at the edge and
counted, ARP/ND/DHCP to the controller, the DHCP relay, and what /metrics shows."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from sdnscent.controller import ARP_REQUEST
from sdnscent.flows import ETH_TYPE_ARP, ETH_TYPE_IPV4, ICMPV6_NS, TABLE_CLASSIFY
from sdnscent.hosttraffic import EDGE_KINDS, HostTrafficCollector, edge_kind
from sdnscent.pipeline import KIND_HOST_TRAFFIC, PIPELINE_COOKIE, make_cookie
from sdnscent.policyfile import PolicyError, parse_policy
from sdnscent.simulator import DROP_BY_FLOW, Packet, ipv4_packet, ipv6_packet
from tests.fabric import attachment, compile_network

DHCP = """\
nodes:
  dhcp1: {kind: host, ip: 10.0.0.16}
host_traffic: {dhcp_server: dhcp1}
"""


def udp4(src: str, dst: str, eth_src: str, eth_dst: str, port: int) -> Packet:
    return ipv4_packet(src, dst, eth_src=eth_src, eth_dst=eth_dst, ip_proto=17,
                       src_port=68 if port == 67 else 5000, dst_port=port)


@pytest.mark.parametrize(("eth_dst", "ident"), [
    ("ff:ff:ff:ff:ff:ff", 1), ("01:00:5e:01:02:03", 2), ("33:33:00:00:00:fb", 3),
    ("01:80:c2:00:00:00", 4), ("03:00:00:00:00:01", 4)])
def test_broadcast_and_multicast_are_dropped_at_the_edge_by_a_counted_flow(
        fat_tree, clock, eth_dst: str, ident: int) -> None:
    ctrl = fat_tree.controller(clock)
    h1 = fat_tree.host(1)
    net = compile_network(ctrl, fat_tree)
    sent = udp4(h1.ip, "10.255.255.255", h1.mac, eth_dst, 9) if ident != 3 else \
        ipv6_packet("fc00::1", "ff02::fb", eth_src=h1.mac, eth_dst=eth_dst, ip_proto=17,
                    dst_port=5353)
    trace = net.send(attachment(h1), sent)
    assert not trace.deliveries and not trace.packet_ins and not trace.transits
    assert [(d.dpid, d.reason, d.table, d.cookie) for d in trace.drops] == [
        (h1.dpid, DROP_BY_FLOW, TABLE_CLASSIFY, make_cookie(KIND_HOST_TRAFFIC, ident))]
    assert edge_kind(trace.drops[0].cookie) == EDGE_KINDS[ident][0]


def test_arp_nd_and_dhcp_broadcasts_reach_the_controller_not_the_edge_drop(fat_tree,
                                                                           clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1 = fat_tree.host(1)
    net = compile_network(ctrl, fat_tree)
    for sent in (Packet(h1.mac, "ff:ff:ff:ff:ff:ff", ETH_TYPE_ARP),
                 ipv6_packet("fc00::1", "ff02::1:ff00:9", eth_src=h1.mac,
                             eth_dst="33:33:ff:00:00:09", icmpv6_type=ICMPV6_NS),
                 udp4("0.0.0.0", "255.255.255.255", h1.mac, "ff:ff:ff:ff:ff:ff", 67),
                 udp4("10.0.0.16", "10.0.0.1", "00:00:00:00:00:10", h1.mac, 68)):
        trace = net.send(attachment(h1), sent)
        assert [(p.dpid, p.cookie) for p in trace.packet_ins] == [(h1.dpid, PIPELINE_COOKIE)]
        assert not trace.drops and not trace.deliveries


def test_the_dhcp_relay_sends_a_request_to_the_server_port_and_the_answer_back(fat_tree,
                                                                            clock) -> None:
    ctrl = fat_tree.controller(clock, hosts=[1, 16])
    ctrl.set_policy(parse_policy(DHCP, "dhcp.yaml"))
    server, client = fat_tree.host(16), fat_tree.host(2)  # the client is not a known host
    relays, _ = ctrl.dhcp_in(client.dpid, client.port, client.mac, "0.0.0.0", True, client.mac)
    assert [(r.dpid, r.port) for r in relays] == [(server.dpid, server.port)]
    relays, _ = ctrl.dhcp_in(server.dpid, server.port, server.mac, server.ip, False,
                             client.mac.upper())
    assert [(r.dpid, r.port) for r in relays] == [(client.dpid, client.port)]
    # A host answering as a DHCP server is dropped, and said so.
    other = fat_tree.host(1)
    relays, _ = ctrl.dhcp_in(other.dpid, other.port, other.mac, other.ip, False, client.mac)
    assert relays == []
    assert any(e.kind == "dhcp" and other.mac in e.message for e in ctrl.events)
    assert ctrl.traffic.answered == {"dhcp-request": 1, "dhcp-reply": 1, "dhcp-rogue": 1}


def test_an_unknown_dhcp_server_is_probed_and_without_one_dhcp_is_dropped(fat_tree,
                                                                        clock) -> None:
    ctrl = fat_tree.controller(clock, hosts=[1])
    client = fat_tree.host(2)
    relays, _ = ctrl.dhcp_in(client.dpid, client.port, client.mac, "0.0.0.0", True, client.mac)
    assert relays == [] and ctrl.traffic.answered == {"dhcp-no-server": 1}
    ctrl.set_policy(parse_policy(DHCP, "dhcp.yaml"))
    relays, decision = ctrl.dhcp_in(client.dpid, client.port, client.mac, "0.0.0.0", True,
                                    client.mac)
    assert relays == []
    assert decision.packets and {(p.opcode, p.dst_ip) for p in decision.packets} == {
        (ARP_REQUEST, "10.0.0.16")}
    assert len(decision.packets) == len(fat_tree.hosts)  # every host port, once


def test_dhcp_from_an_inter_switch_port_is_ignored(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(parse_policy(DHCP, "dhcp.yaml"))
    relays, decision = ctrl.dhcp_in(5, 3, "00:00:00:00:00:05", "0.0.0.0", True,
                                    "00:00:00:00:00:05")
    assert relays == [] and not decision.packets


def test_metrics_show_edge_drops_summed_over_switches_and_answers(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    h1, h9 = fat_tree.host(1), fat_tree.host(9)
    ctrl.edge_stats(1, [(make_cookie(KIND_HOST_TRAFFIC, 1), 5),
                        (make_cookie(KIND_HOST_TRAFFIC, 3), 7)])
    ctrl.edge_stats(2, [(make_cookie(KIND_HOST_TRAFFIC, 1), 2), (PIPELINE_COOKIE, 99)])
    ctrl.edge_stats(1, [(make_cookie(KIND_HOST_TRAFFIC, 1), 6)])  # a later poll of the same flow
    ctrl.arp_in(h1.dpid, h1.port, ARP_REQUEST, h1.mac, h1.ip, h9.ip)
    registry = CollectorRegistry()
    registry.register(HostTrafficCollector(ctrl.traffic, ctrl.lock))
    text = generate_latest(registry).decode()
    assert 'sdnscent_host_traffic_dropped_packets_total{kind="broadcast"} 8.0' in text
    assert 'sdnscent_host_traffic_dropped_packets_total{kind="ipv6-multicast"} 7.0' in text
    assert 'sdnscent_host_traffic_dropped_packets_total{kind="ipv4-multicast"} 0.0' in text
    assert 'sdnscent_host_traffic_answered_total{kind="arp"} 1.0' in text


def test_the_host_traffic_section_names_hosts_or_addresses() -> None:
    policy = parse_policy(DHCP.replace("dhcp1}", "dhcp1, gateway: 10.0.0.254}"), "p.yaml")
    assert (policy.host_traffic.dhcp_server, policy.host_traffic.gateway) == ("dhcp1",
                                                                             "10.0.0.254")
    with pytest.raises(PolicyError) as err:
        parse_policy("host_traffic: {dhcp_server: nosuch, gatway: r1}\n", "bad.yaml")
    assert "host_traffic.gatway: unknown key 'gatway' (did you mean 'gateway'?)" in str(err.value)
    assert "host_traffic.dhcp_server: unknown host 'nosuch'" in str(err.value)
    assert ETH_TYPE_IPV4 == 0x0800


GATEWAY = """\
nodes:
  r1: {kind: host, ip: 10.0.0.16}
host_traffic: {gateway: r1}
applications:
  - name: outside-web
    endpoints: {prefixes: [192.168.1.0/24], ports: [tcp/80]}
"""


def test_the_way_out_goes_by_trails_to_the_gateway_and_policy_applies(fat_tree,
                                                                     clock) -> None:
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(parse_policy(GATEWAY, "gw.yaml"))
    h1, gw = fat_tree.host(1), fat_tree.host(16)
    # A reply from outside, forwarded by the gateway: its source is not the gateway's.
    decision = ctrl.ipv4_in(gw.dpid, gw.port, gw.mac, h1.mac, "192.168.1.1", b"", 0.0)
    assert decision.resend
    assert ctrl.topo.hosts[gw.mac].ip == gw.ip and ctrl.topo.host_by_ip("192.168.1.1") is None
    back = {t.app: t for t in ctrl.store.all() if t.src_mac == gw.mac}
    assert set(back) == {"default", "outside-web"}
    assert {dict(m)["ipv4_src"] for m in back["outside-web"].match} == {
        "192.168.1.0/255.255.255.0"}
    ctrl.ensure_pair(h1.mac, gw.mac)
    out = {t.app: t for t in ctrl.store.all() if t.src_mac == h1.mac}
    assert set(out) == {"default", "outside-web"}
    assert sorted(out["outside-web"].match) == sorted([
        (("ip_proto", 6), ("ipv4_dst", "192.168.1.0/255.255.255.0"), ("tcp_dst", 80)),
        (("ip_proto", 6), ("ipv4_dst", "192.168.1.0/255.255.255.0"), ("tcp_src", 80))])
    net = compile_network(ctrl, fat_tree)
    for dst_ip, port, app in (("192.168.1.1", 80, "outside-web"), ("192.168.1.1", 22, "default"),
                              (gw.ip, 80, "default")):
        sent = ipv4_packet(h1.ip, dst_ip, eth_src=h1.mac, eth_dst=gw.mac, dst_port=port)
        trace = net.send(attachment(h1), sent)
        assert trace.delivered_to == ("h16",), trace.format()
        assert {t.packet.mpls for t in trace.transits} == {(out[app].label,)}, (dst_ip, port)
    reply = ipv4_packet("192.168.1.1", h1.ip, eth_src=gw.mac, eth_dst=h1.mac, src_port=80,
                        dst_port=40000)
    trace = net.send(attachment(gw), reply)
    assert trace.delivered_to == ("h1",)
    assert {t.packet.mpls for t in trace.transits} == {(back["outside-web"].label,)}


def test_without_a_gateway_in_the_policy_no_application_reaches_outside(fat_tree,
                                                                       clock) -> None:
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(parse_policy(GATEWAY.replace("host_traffic: {gateway: r1}\n", ""), "p"))
    h1, gw = fat_tree.host(1), fat_tree.host(16)
    ctrl.ensure_pair(h1.mac, gw.mac)
    assert {t.app for t in ctrl.store.all()} == {"default"}
