"""Load-balanced services: a VIP in front of a server pool, as a select group.

The controller's own Changes are applied to a simulated fat-tree (k=4) and the
simulator proves where each flow goes: spread over the pool by weight, each
flow to exactly one member with that member's addresses, replies back to the
client from the VIP.
"""

from __future__ import annotations

from collections import Counter

import pytest

from sdnscent.controller import ARP_REQUEST, Change, ScentController
from sdnscent.flows import GroupDelete, GroupSpec
from sdnscent.policyfile import PolicyError, parse_policy
from sdnscent.simulator import IPPROTO_UDP, Network, ipv4_packet
from sdnscent.topology import Port
from tests.conftest import FakeClock, FatTree, build_fat_tree
from tests.fabric import compile_network

VIP = "10.0.0.100"
SERVICE_MAC = "0e:5c:0a:00:00:64"  # derived from the VIP


def policy_text(service: str) -> str:
    hosts = "\n".join(f"  h{n}: {{kind: host, ip: 10.0.0.{n}}}" for n in range(1, 17))
    return f"nodes:\n{hosts}\nservices:\n{service}"


WEB = """  web:
    vip: 10.0.0.100
    port: udp/8080
    pool: [h2, h5, h9]
    weights: [1, 2, 1]
"""


def apply(net: Network, change: Change) -> None:
    for step in change.steps:
        for ops in step.values():
            net.apply(ops)


@pytest.fixture()
def served() -> tuple[FatTree, ScentController, Network]:
    """h1 has asked for the VIP; the controller's changes are on the switches."""
    tree = build_fat_tree(4)
    ctl = tree.controller(FakeClock())
    ctl.set_policy(parse_policy(policy_text(WEB)))
    net = compile_network(ctl, tree)
    h1 = tree.host(1)
    result, change = ctl.handle_arp(h1.dpid, h1.port, ARP_REQUEST, h1.mac, h1.ip, VIP)
    (reply,) = result.packets
    assert (reply.src_mac, reply.src_ip, reply.dst_mac) == (SERVICE_MAC, VIP, h1.mac)
    assert result.services == [(h1.mac, "web")]
    apply(net, change.merge(ctl.ensure_service(h1.mac, "web")))
    return tree, ctl, net


def to_vip(tree: FatTree, sport: int, dport: int = 8080):
    h1 = tree.host(1)
    return ipv4_packet(h1.ip, VIP, eth_src=h1.mac, eth_dst=SERVICE_MAC, ip_proto=IPPROTO_UDP,
                       src_port=sport, dst_port=dport)


def spread(tree: FatTree, net: Network, flows: int = 3000) -> Counter[str]:
    seen: Counter[str] = Counter()
    for sport in range(20000, 20000 + flows):
        trace = net.send("h1", to_vip(tree, sport))
        assert not trace.loop and not trace.errors, trace.format()
        (delivery,) = trace.deliveries  # exactly one member, once
        member = tree.host(int(delivery.host[1:]))
        pkt = delivery.packet
        assert not pkt.mpls
        assert (pkt.eth_dst, pkt.ipv4_dst) == (member.mac, member.ip)
        assert (pkt.eth_src, pkt.ipv4_src, pkt.udp_src) == (tree.host(1).mac, "10.0.0.1", sport)
        seen[delivery.host] += 1
    return seen


def test_flows_to_the_vip_spread_over_the_pool_by_weight(served) -> None:
    tree, _, net = served
    seen = spread(tree, net)
    assert set(seen) == {"h2", "h5", "h9"}  # h2 shares h1's switch: no label at all
    for host, weight in (("h2", 1), ("h5", 2), ("h9", 1)):
        assert seen[host] / 3000 == pytest.approx(weight / 4, abs=0.04)


def test_one_flow_always_reaches_the_same_member(served) -> None:
    tree, _, net = served
    first = net.send("h1", to_vip(tree, 33333)).delivered_to
    assert all(net.send("h1", to_vip(tree, 33333)).delivered_to == first for _ in range(5))


def test_replies_reach_the_client_from_the_vip(served) -> None:
    tree, _, _net = served
    net = _net
    h1 = tree.host(1)
    for n in (2, 5, 9):
        member = tree.host(n)
        reply = ipv4_packet(member.ip, h1.ip, eth_src=member.mac, eth_dst=h1.mac,
                            ip_proto=IPPROTO_UDP, src_port=8080, dst_port=40000)
        (delivery,) = net.send(f"h{n}", reply).deliveries
        assert delivery.host == "h1"
        assert (delivery.packet.eth_src, delivery.packet.ipv4_src) == (SERVICE_MAC, VIP)
        assert (delivery.packet.eth_dst, delivery.packet.ipv4_dst) == (h1.mac, h1.ip)
        assert delivery.packet.udp_src == 8080 and not delivery.packet.mpls
        other = ipv4_packet(member.ip, h1.ip, eth_src=member.mac, eth_dst=h1.mac,
                            ip_proto=IPPROTO_UDP, src_port=9999, dst_port=40000)
        assert all(d.packet.ipv4_src == member.ip for d in net.send(f"h{n}", other).deliveries)


def test_other_ports_of_the_vip_are_not_balanced(served) -> None:
    tree, _, net = served
    trace = net.send("h1", to_vip(tree, 20000, dport=22))
    assert not trace.deliveries  # to the controller (no trail to a VIP), never a member


def test_a_pool_member_that_goes_away_leaves_the_group(served) -> None:
    tree, ctl, net = served
    h5 = tree.host(5)
    change = ctl.port_status(h5.dpid, Port(h5.port, up=False))
    groups = [op for step in change.steps for ops in step.values() for op in ops
              if isinstance(op, GroupSpec)]
    assert groups and all(op.modify for op in groups)
    apply(net, change)
    seen = spread(tree, net, 1000)
    assert set(seen) == {"h2", "h9"}
    assert seen["h2"] / 1000 == pytest.approx(0.5, abs=0.06)
    # It comes back: learned again, it is a bucket again.
    apply(net, ctl.learn_host(h5.dpid, h5.port, h5.mac, h5.ip))
    assert set(spread(tree, net, 1000)) == {"h2", "h5", "h9"}


def test_reconnected_switch_gets_the_group_before_the_classifier(served) -> None:
    tree, ctl, _ = served
    h1 = tree.host(1)
    change = ctl.switch_enter(h1.dpid, tree.ports(h1.dpid), "again")
    assert GroupDelete(h1.dpid) in change.steps[0][h1.dpid]
    ops = change.steps[1][h1.dpid]
    (group,) = [op for op in ops if isinstance(op, GroupSpec)]
    assert len(group.buckets) == 3 and ops.index(group) == 0
    net = compile_network(ctl, tree)
    apply(net, change)
    assert set(spread(tree, net, 300)) == {"h2", "h5", "h9"}


def test_a_policy_without_the_service_removes_group_and_trails(served) -> None:
    tree, ctl, net = served
    change, _ = ctl.set_policy(parse_policy(policy_text("  {}\n")))
    assert not [t for t in ctl.store.all() if t.app == "web"]  # 3 members x 2 directions gone
    ops = [op for step in change.steps for ops in step.values() for op in ops]
    assert any(isinstance(op, GroupDelete) for op in ops)
    apply(net, change)
    assert not net.send("h1", to_vip(tree, 20000)).deliveries
    assert not ctl.services_view()


def test_a_pool_member_asking_for_its_own_service_gets_no_answer(served) -> None:
    tree, ctl, _ = served
    h5 = tree.host(5)
    result, _ = ctl.handle_arp(h5.dpid, h5.port, ARP_REQUEST, h5.mac, h5.ip, VIP)
    assert not result.packets and not result.services


def test_a_service_without_a_port_balances_every_ipv4_packet() -> None:
    tree = build_fat_tree(4)
    ctl = tree.controller(FakeClock())
    ctl.set_policy(parse_policy(policy_text("  any: {vip: 10.0.0.100, pool: [h7, h8]}\n")))
    net = compile_network(ctl, tree)
    h1 = tree.host(1)
    apply(net, ctl.ensure_service(h1.mac, "any"))
    seen = Counter()
    for sport in range(1000, 1400):
        pkt = ipv4_packet(h1.ip, VIP, eth_src=h1.mac, eth_dst=SERVICE_MAC, src_port=sport,
                          dst_port=443)  # tcp
        seen.update(net.send("h1", pkt).delivered_to)
    assert set(seen) == {"h7", "h8"} and sum(seen.values()) == 400
    reply = ipv4_packet("10.0.0.8", h1.ip, eth_src=tree.host(8).mac, eth_dst=h1.mac,
                        ip_proto=1)
    (delivery,) = net.send("h8", reply).deliveries
    assert delivery.packet.ipv4_src == VIP


@pytest.mark.parametrize(("service", "line", "field", "words"), [
    ("  web: {pool: [h2]}\n", 19, "services.web.vip", "missing"),
    ("  web: {vip: 10.0.0.3, pool: [h2]}\n", 19, "services.web.vip", "already the ip of h3"),
    ("  web: {vip: 10.0.0.100, pool: [h99]}\n", 19, "services.web.pool[0]", "unknown host"),
    ("  web: {vip: 10.0.0.100, pool: []}\n", 19, "services.web.pool", "at least one"),
    ("  web:\n    vip: 10.0.0.100\n    pool: [h2, h3]\n    weights: [1]\n", 22,
     "services.web.weights", "one weight per pool member"),
    ("  web:\n    vip: 10.0.0.100\n    pool: [h2]\n    port: icmp/1\n", 22,
     "services.web.port", "unknown protocol"),
    ("  web: {vip: 10.0.0.100, pool: [h2], mac: 'ff:ff:ff:ff:ff:ff'}\n", 19,
     "services.web.mac", "multicast"),
    ("  web: {vip: 10.0.0.100, pool: [h2], weight: [1]}\n", 19, "services.web.weight",
     "unknown key"),
    ("  web: {vip: 300.0.0.1, pool: [h2]}\n", 19, "services.web.vip", "IPv4 address"),
    ("  a: {vip: 10.0.0.100, pool: [h2]}\n  b: {vip: 10.0.0.100, pool: [h3]}\n", 20,
     "services.b.vip", "already the ip of service a"),
])
def test_bad_services_sections_name_line_and_field(service, line, field, words) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(policy_text(service), "p.yaml")
    problem = info.value.problems[0]
    assert (problem.line, problem.field) == (line, field), str(info.value)
    assert words in problem.message


def test_a_service_may_not_take_an_application_name() -> None:
    text = policy_text("  web: {vip: 10.0.0.100, pool: [h2]}\n") + (
        "applications:\n  - name: web\n    endpoints: {hosts: [h1]}\n")
    with pytest.raises(PolicyError, match=r"p.yaml:19: services.web: 'web' is the name of an "):
        parse_policy(text, "p.yaml")
