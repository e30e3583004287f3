"""Port security (sdnscent.core.edge): bindings, probes, refused claims, moves."""

from __future__ import annotations

import pytest

from sdnscent.controller import ARP_REPLY, ARP_REQUEST
from sdnscent.flows import FlowSpec
from sdnscent.pipeline import KIND_EDGE, PRIO_EDGE_DROP, cookie_kind
from sdnscent.topology import Port


@pytest.fixture
def ctrl(fat_tree, clock):
    ctrl = fat_tree.controller(clock, hosts=[1, 2, 3, 5])
    ctrl.edge.enabled = True
    for n in (1, 2, 3, 5):  # bound where they were learned
        h = fat_tree.host(n)
        ctrl.learn_host(h.dpid, h.port, h.mac, h.ip)
    return ctrl


def drops(change) -> list[FlowSpec]:
    return [op for step in change.steps for ops in step.values() for op in ops
            if isinstance(op, FlowSpec) and cookie_kind(op.cookie) == KIND_EDGE]


def where(ctrl, mac: str) -> tuple[int, int]:
    host = ctrl.topo.hosts[mac]
    return host.dpid, host.port


def test_a_mac_claimed_from_another_port_is_probed_and_refused_if_the_owner_answers(
        ctrl, fat_tree, clock) -> None:
    h1, h3 = fat_tree.host(1), fat_tree.host(3)
    ctrl.ensure_pair(h1.mac, fat_tree.host(5).mac)
    decision = ctrl.ipv4_in(h3.dpid, h3.port, h1.mac, fat_tree.host(5).mac, h1.ip, b"", 0.0)
    assert not decision.changes and not decision.resend  # nothing set up for the claimant
    assert where(ctrl, h1.mac) == (h1.dpid, h1.port)
    _, probes = ctrl.edge_tick()
    assert [(p.dpid, p.port, p.opcode, p.dst_ip) for p in probes] == \
        [(h1.dpid, h1.port, ARP_REQUEST, h1.ip)]  # out of the bound port only
    ctrl.arp_in(h1.dpid, h1.port, ARP_REPLY, h1.mac, h1.ip, "0.0.0.0")  # h1 answers
    change, _ = ctrl.edge_tick()
    [rule] = drops(change)
    assert (rule.dpid, rule.priority, rule.actions, rule.goto) == (h3.dpid, PRIO_EDGE_DROP, (),
                                                                   None)
    assert rule.match_dict == {"in_port": h3.port, "eth_src": h1.mac}
    assert rule.hard_timeout > 0
    assert where(ctrl, h1.mac) == (h1.dpid, h1.port)
    assert ctrl.trail_for_pair(h1.mac, fat_tree.host(5).mac) is not None  # h1 untouched
    assert ctrl.edge.counts["claims_refused"] == 1
    assert ctrl.events[-1].kind == "port-security"
    # the switch's audit keeps the rule
    assert rule in ctrl.edge.flows(h3.dpid)


def test_a_gratuitous_arp_for_anothers_ip_does_not_move_it(ctrl, fat_tree) -> None:
    h1, h2, h3 = fat_tree.host(1), fat_tree.host(2), fat_tree.host(3)
    result, _ = ctrl.handle_arp(h3.dpid, h3.port, ARP_REQUEST, h3.mac, h1.ip, h1.ip)
    assert ctrl.topo.host_by_ip(h1.ip).mac == h1.mac
    ctrl.edge_tick()
    ctrl.arp_in(h1.dpid, h1.port, ARP_REPLY, h1.mac, h1.ip, "0.0.0.0")
    change, _ = ctrl.edge_tick()
    assert sorted(tuple(sorted(r.match_dict)) for r in drops(change)) == [
        ("arp_spa", "eth_type", "in_port"), ("eth_type", "in_port", "ipv4_src")]
    assert all(r.match_dict.get("arp_spa", r.match_dict.get("ipv4_src")) == h1.ip
               for r in drops(change))
    # h2's proxy ARP for h1's address still answers with h1's MAC
    result, _ = ctrl.handle_arp(h2.dpid, h2.port, ARP_REQUEST, h2.mac, h2.ip, h1.ip)
    assert [p.src_mac for p in result.packets] == [h1.mac]
    assert ctrl.topo.hosts[h3.mac].ip == h3.ip  # the claimant keeps its own address


def test_a_host_that_went_silent_at_its_old_port_moves_after_the_probe_timeout(
        ctrl, fat_tree, clock) -> None:
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, _ = ctrl.ensure_trail(h1.mac, h5.mac)
    new = (fat_tree.host(3).dpid, 2)  # a free port of another switch: h1 migrated there
    ctrl.topo.remove_host(fat_tree.host(4).mac)
    ctrl.learn_host(*new, h1.mac, h1.ip)
    assert where(ctrl, h1.mac) == (h1.dpid, h1.port)  # not yet
    ctrl.edge_tick()
    clock.advance(ctrl.edge.probe_timeout + 0.1)
    change, _ = ctrl.edge_tick()
    assert where(ctrl, h1.mac) == new
    assert not drops(change)
    assert ctrl.store.get(trail.id) is None or ctrl.trail_for_pair(h1.mac, h5.mac) is None
    assert ctrl.edge.counts["moves_accepted"] == 1


def test_a_move_from_a_port_that_went_down_is_accepted_at_once(ctrl, fat_tree) -> None:
    h1 = fat_tree.host(1)
    ctrl.port_status(h1.dpid, Port(h1.port, up=False))
    new = (fat_tree.host(5).dpid, 2)
    ctrl.learn_host(*new, h1.mac, h1.ip)
    assert where(ctrl, h1.mac) == new
    assert not ctrl.edge.claims


def test_a_port_carries_at_most_mac_limit_macs(ctrl, fat_tree) -> None:
    h1 = fat_tree.host(1)
    ctrl.edge.mac_limit = 2
    assert not drops(ctrl.learn_host(h1.dpid, h1.port, "00:00:00:00:aa:01", "10.0.9.1"))
    assert where(ctrl, "00:00:00:00:aa:01") == (h1.dpid, h1.port)  # the second: learned
    change = ctrl.learn_host(h1.dpid, h1.port, "00:00:00:00:aa:02", "10.0.9.2")
    [rule] = drops(change)
    assert rule.match_dict == {"in_port": h1.port, "eth_src": "00:00:00:00:aa:02"}
    assert "00:00:00:00:aa:02" not in ctrl.topo.hosts
    assert ctrl.edge.counts["mac_limit"] == 1


def test_no_link_is_taken_on_a_port_where_hosts_were_seen(ctrl, fat_tree) -> None:
    h1, h3 = fat_tree.host(1), fat_tree.host(3)
    links = len(ctrl.topo.links())
    assert not ctrl.link_seen(h3.dpid, h3.port, h1.dpid, h1.port)
    assert len(ctrl.topo.links()) == links and h1.mac in ctrl.topo.hosts
    assert ctrl.edge.faces_hosts(h1.dpid, h1.port)
    ctrl.port_status(h1.dpid, Port(h1.port, up=False))  # recabled: it may become a link
    assert not ctrl.edge.faces_hosts(h1.dpid, h1.port)


def test_port_security_off_keeps_the_old_behaviour(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock, hosts=[1, 3])
    h1, h3 = fat_tree.host(1), fat_tree.host(3)
    ctrl.learn_host(h3.dpid, h3.port, h1.mac, h1.ip)
    assert where(ctrl, h1.mac) == (h3.dpid, h3.port)


def test_hosts_restored_after_a_restart_stay_bound_to_their_port(fat_tree, clock) -> None:
    from sdnscent.controller import ScentController

    first = fat_tree.controller(clock, hosts=[1])
    h1 = fat_tree.host(1)
    again = ScentController(first.store, clock=clock)  # a restart on the same store
    again.edge.enabled = True
    again.s.hosts.load_stored()
    for dpid in fat_tree.switches:
        again.switch_enter(dpid, fat_tree.ports(dpid), f"s{dpid}")
    assert where(again, h1.mac) == (h1.dpid, h1.port)
    assert again.edge.faces_hosts(h1.dpid, h1.port)  # no LLDP out of it, no link on it
    other = fat_tree.host(9)
    again.learn_host(other.dpid, other.port, h1.mac, h1.ip)
    assert where(again, h1.mac) == (h1.dpid, h1.port) and again.edge.claims


def test_edge_counters_reach_prometheus(ctrl, fat_tree) -> None:
    from sdnscent.discovery import Discovery, LldpAuth, unsigned_frame
    from sdnscent.edgemetrics import EdgeCollector
    from sdnscent.metrics import Metrics

    ctrl.edge.discovery = Discovery(LldpAuth(b"s" * 32))
    ctrl.edge.discovery.receive(unsigned_frame(1, 1, "02:00:00:00:00:01"), 2, 1,
                                ctrl.edge.faces_hosts)
    h1 = fat_tree.host(1)
    ctrl.edge.mac_limit = 1
    ctrl.learn_host(h1.dpid, h1.port, "00:00:00:00:aa:01", "10.0.9.1")
    metrics = Metrics()
    metrics.registry.register(EdgeCollector(ctrl))
    text = metrics.render()[0].decode()
    assert 'sdnscent_lldp_frames_total{verdict="unsigned"} 1.0' in text
    assert 'sdnscent_port_security_total{event="mac_limit"} 1.0' in text
    assert "sdnscent_edge_drop_rules 1.0" in text
