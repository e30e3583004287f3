"""The topology model: links, edge ports, host learning and moves, input validation."""

import re

import pytest

from sdnscent.topology import (
    DEFAULT_LINK_CAPACITY,
    Host,
    Link,
    Port,
    Topology,
    TopologyError,
    dpid_str,
    normalize_mac,
    parse_dpid,
)

MAC_A = "00:00:00:00:00:01"
MAC_B = "00:00:00:00:00:02"


def two_switches() -> Topology:
    """s1 and s2, four ports each, one cable s1:3 <-> s2:3 (both directions)."""
    topo = Topology()
    for dpid in (1, 2):
        topo.add_switch(dpid, {p: Port(p, speed_bps=10**9) for p in range(1, 5)}, f"s{dpid}")
    topo.add_link(1, 3, 2, 3)
    topo.add_link(2, 3, 1, 3)
    return topo


def test_a_link_direction_is_recorded_once_and_ends_are_link_ports() -> None:
    topo = Topology()
    topo.add_switch(1, {1: Port(1), 2: Port(2)})
    topo.add_switch(2, {1: Port(1), 2: Port(2)})
    link = topo.add_link(1, 2, 2, 1)
    assert link == Link(1, 2, 2, 1, DEFAULT_LINK_CAPACITY)
    assert topo.add_link(1, 2, 2, 1) is None  # seen again: nothing new
    assert topo.links() == [link]
    assert topo.link_from(1, 2) == link
    assert topo.link_from(2, 1) is None  # the reverse direction is not implied
    # Either end of a single direction is an inter-switch port.
    assert topo.is_link_port(1, 2) and topo.is_link_port(2, 1)
    assert not topo.is_link_port(1, 1) and not topo.is_link_port(2, 2)


def test_links_are_listed_sorted_by_source_and_parallel_links_lowest_port_first() -> None:
    topo = two_switches()
    topo.add_link(1, 4, 2, 4)
    assert [(lk.src, lk.src_port) for lk in topo.links()] == [(1, 3), (1, 4), (2, 3)]
    assert [lk.src_port for lk in topo.links_between(1, 2)] == [3, 4]
    assert topo.links_between(2, 1)[0].dst_port == 3


def test_a_recabled_port_replaces_its_old_link_direction() -> None:
    topo = two_switches()
    topo.add_switch(3, {1: Port(1)})
    link = topo.add_link(1, 3, 3, 1)
    assert link is not None and topo.link_from(1, 3) == link
    assert topo.links_between(1, 2) == []


def test_edge_ports_are_up_host_facing_ports_only() -> None:
    topo = two_switches()
    topo.set_port(1, Port(2, up=False))
    topo.set_port(1, Port(0xFFFFFFFE, "br-local"))  # OFPP_LOCAL is never an edge port
    assert topo.edge_ports(1) == [1, 4]
    assert topo.edge_ports(2) == [1, 2, 4]


def test_link_to_itself_or_to_an_unknown_switch_is_refused() -> None:
    topo = two_switches()
    with pytest.raises(TopologyError, match="link from 0000000000000001 to itself"):
        topo.add_link(1, 1, 1, 2)
    with pytest.raises(TopologyError, match="unknown switch 0000000000000009"):
        topo.add_link(1, 1, 9, 1)
    assert len(topo.links()) == 2


def test_link_capacity_prefers_configuration_then_default_then_port_speed() -> None:
    topo = two_switches()
    assert topo.link_capacity(1, 3) == 10**9  # the port speed the switch reports
    topo.set_port(1, Port(4))  # reports no speed
    assert topo.link_capacity(1, 4) == DEFAULT_LINK_CAPACITY
    topo.default_capacity = 5 * 10**8
    assert topo.link_capacity(1, 3) == 5 * 10**8
    topo.capacity_overrides[(1, 3)] = 10**8
    assert topo.link_capacity(1, 3) == 10**8
    assert topo.link_capacity(2, 3) == 5 * 10**8


def test_learned_host_is_found_by_mac_and_ip() -> None:
    topo = two_switches()
    host, old = topo.add_host("00:00:00:00:00:0A", "10.0.0.10", 1, 1)
    assert host == Host("00:00:00:00:00:0a", "10.0.0.10", 1, 1)
    assert old is None
    assert topo.hosts["00:00:00:00:00:0a"] == host
    assert topo.host_by_ip("10.0.0.10") == host
    assert topo.host_by_ip("10.0.0.11") is None


def test_relearning_a_host_in_place_is_not_a_change() -> None:
    topo = two_switches()
    topo.add_host(MAC_A, "10.0.0.1", 1, 1)
    version = topo.version
    assert topo.add_host(MAC_A, "10.0.0.1", 1, 1) == (Host(MAC_A, "10.0.0.1", 1, 1), None)
    assert topo.version == version


def test_host_that_moves_is_reported_with_its_previous_place() -> None:
    topo = two_switches()
    before, _ = topo.add_host(MAC_A, "10.0.0.1", 1, 1)
    after, old = topo.add_host(MAC_A, "10.0.0.1", 2, 2)
    assert old == before
    assert after == Host(MAC_A, "10.0.0.1", 2, 2)
    assert topo.host_by_ip("10.0.0.1") == after
    assert list(topo.hosts) == [MAC_A]


def test_host_that_changes_ip_no_longer_owns_the_old_one() -> None:
    topo = two_switches()
    topo.add_host(MAC_A, "10.0.0.1", 1, 1)
    topo.add_host(MAC_A, "10.0.0.7", 1, 1)
    assert topo.host_by_ip("10.0.0.1") is None
    assert topo.host_by_ip("10.0.0.7").mac == MAC_A


def test_ip_taken_over_by_another_mac_forgets_the_old_owner() -> None:
    topo = two_switches()
    topo.add_host(MAC_A, "10.0.0.1", 1, 1)
    topo.add_host(MAC_B, "10.0.0.1", 2, 1)
    assert topo.host_by_ip("10.0.0.1").mac == MAC_B
    assert MAC_A not in topo.hosts


def test_host_learned_on_a_port_that_turns_out_to_be_a_link_is_dropped() -> None:
    topo = two_switches()
    # A frame relayed from s2 was taken for a host on s1:4 (and its twin on s2:4).
    topo.add_host(MAC_A, "10.0.0.1", 1, 4)
    topo.add_host(MAC_B, "10.0.0.2", 2, 4)
    topo.add_host("00:00:00:00:00:03", "10.0.0.3", 1, 1)
    topo.add_link(1, 4, 2, 4)
    assert sorted(topo.hosts) == ["00:00:00:00:00:03"]
    assert topo.host_by_ip("10.0.0.1") is None and topo.host_by_ip("10.0.0.2") is None


def test_host_cannot_be_learned_on_an_inter_switch_port() -> None:
    topo = two_switches()
    with pytest.raises(TopologyError, match="port 3 of 0000000000000002 is an inter-switch link"):
        topo.add_host(MAC_A, "10.0.0.1", 2, 3)
    assert topo.hosts == {}


@pytest.mark.parametrize("mac", ["00:00:00:00:00", "00:00:00:00:00:0g", "0000.0000.0001", ""])
def test_bad_mac_is_refused_naming_it(mac: str) -> None:
    topo = two_switches()
    with pytest.raises(TopologyError, match=re.escape(f"MAC address {mac!r}")):
        topo.add_host(mac, "10.0.0.1", 1, 1)
    assert topo.hosts == {}


@pytest.mark.parametrize("ip", ["10.0.0.256", "10.0.0", "fe80::1", "host1", ""])
def test_bad_ip_is_refused_naming_it_and_the_host(ip: str) -> None:
    topo = two_switches()
    with pytest.raises(TopologyError, match=re.escape(f"host {MAC_A}: {ip!r} is not an IPv4")):
        topo.add_host(MAC_A, ip, 1, 1)
    assert topo.hosts == {}


def test_host_on_an_unknown_switch_is_refused_naming_the_dpid() -> None:
    topo = two_switches()
    with pytest.raises(TopologyError, match="unknown switch 00000000000000ab"):
        topo.add_host(MAC_A, "10.0.0.1", 0xAB, 1)


def test_normalize_mac_accepts_upper_case_and_dashes() -> None:
    assert normalize_mac("AA-BB-CC-DD-EE-0F") == "aa:bb:cc:dd:ee:0f"


def test_remove_port_drops_both_directions_of_its_cable_and_its_hosts() -> None:
    topo = two_switches()
    topo.add_link(1, 4, 2, 4)
    topo.add_link(2, 4, 1, 4)
    topo.add_host(MAC_A, "10.0.0.1", 1, 1)
    links, hosts = topo.remove_port(2, 3)
    assert sorted((lk.src, lk.src_port) for lk in links) == [(1, 3), (2, 3)]
    assert hosts == []
    assert topo.link_from(1, 3) is None and topo.link_from(2, 3) is None
    assert not topo.is_link_port(1, 3)
    assert [(lk.src, lk.src_port) for lk in topo.links()] == [(1, 4), (2, 4)]
    links, hosts = topo.remove_port(1, 1)
    assert links == [] and hosts == [Host(MAC_A, "10.0.0.1", 1, 1)]
    assert topo.host_by_ip("10.0.0.1") is None


def test_remove_switch_returns_its_links_and_hosts() -> None:
    topo = two_switches()
    topo.add_host(MAC_A, "10.0.0.1", 1, 1)
    topo.add_host(MAC_B, "10.0.0.2", 2, 1)
    links, hosts = topo.remove_switch(1)
    assert sorted((lk.src, lk.src_port) for lk in links) == [(1, 3), (2, 3)]
    assert hosts == [Host(MAC_A, "10.0.0.1", 1, 1)]
    assert topo.links() == [] and list(topo.hosts) == [MAC_B]
    assert 1 not in topo.switches and 1 not in topo.graph
    assert topo.remove_switch(1) == ([], [])


def test_every_topology_change_bumps_the_version() -> None:
    topo = two_switches()
    seen = [topo.version]
    topo.add_host(MAC_A, "10.0.0.1", 1, 1)
    seen.append(topo.version)
    topo.add_link(1, 4, 2, 4)
    seen.append(topo.version)
    topo.remove_link(1, 4)
    seen.append(topo.version)
    topo.remove_port(1, 3)
    seen.append(topo.version)
    assert seen == sorted(set(seen)), seen


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (1, 1),
        ("1", 1),
        ("0x1a", 0x1A),
        ("0X1A", 0x1A),
        ("000000000000001a", 0x1A),
        ("00:00:00:00:00:00:00:1a", 0x1A),
        ("ffffffffffffffff", 2**64 - 1),
    ],
)
def test_parse_dpid_accepts_ints_hex_0x_and_colon_forms(text: str | int, value: int) -> None:
    assert parse_dpid(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("s1", "dpid 's1' is not a hexadecimal number"),
        ("", "dpid '' is not a hexadecimal number"),
        ("0x", "dpid '0x' is not a hexadecimal number"),
        ("1" + "0" * 16, "dpid '10000000000000000' is outside 64 bits"),
        (2**64, f"dpid {2**64} is outside 64 bits"),
        (-1, "dpid -1 is outside 64 bits"),
    ],
)
def test_parse_dpid_refuses_bad_values_naming_them(text: str | int, message: str) -> None:
    with pytest.raises(TopologyError, match=re.escape(message)):
        parse_dpid(text)


def test_dpid_str_is_16_hex_digits_and_round_trips() -> None:
    assert dpid_str(0x1A) == "000000000000001a"
    assert parse_dpid(dpid_str(2**64 - 2)) == 2**64 - 2


def test_pure_python_fat_tree_matches_the_mininet_fat_tree(fat_tree) -> None:
    """The shared fixture wires switches exactly like topologies/fattree.py."""
    pytest.importorskip("mininet")
    from topologies import FatTreeTopo

    mn = FatTreeTopo(4)
    number = {name: int(name[1:]) for name in mn.nodes()}
    expect = set()
    for a, b in mn.links():
        pa, pb = mn.port(a, b)
        if mn.isSwitch(a) and mn.isSwitch(b):
            expect.add(frozenset({(number[a], pa), (number[b], pb)}))
    got = {frozenset({(a, pa), (b, pb)}) for a, pa, b, pb in fat_tree.cables}
    assert got == expect
    hosts = {}
    for a, b in mn.links():
        if not mn.isSwitch(a):
            a, b = b, a
        if mn.isSwitch(a) and not mn.isSwitch(b):
            info = mn.nodeInfo(b)
            hosts[number[b]] = (info["mac"], info["ip"], number[a], mn.port(a, b)[0])
    assert hosts == {h.n: (h.mac, f"{h.ip}/8", h.dpid, h.port) for h in fat_tree.hosts}


def test_configured_link_attributes_replace_reported_ones_and_bad_values_are_refused() -> None:
    topo = Topology()
    for dpid in (1, 2):
        topo.add_switch(dpid, {1: Port(1, speed_bps=10_000_000_000)})
    topo.add_link(1, 1, 2, 1)
    link = topo.set_link_attrs(1, 1, capacity=100_000_000, latency=0.002)
    assert (link.capacity, link.latency) == (100_000_000, 0.002)
    assert topo.link_from(1, 1) == link and topo.link_capacity(1, 1) == 100_000_000
    with pytest.raises(TopologyError, match="capacity"):
        topo.set_link_attrs(1, 1, capacity=0)
    with pytest.raises(TopologyError, match="no link leaves 0000000000000002 port 9"):
        topo.set_link_attrs(2, 9, latency=0.001)
