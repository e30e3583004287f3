"""Constraint objects and chain routing: pruning, soft costs, reasons, NF chains in order,
and loop-freedom on random graphs (hypothesis) checked against a brute-force search."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import networkx as nx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sdnscent.constraints import (
    AllowedZones,
    AvoidNodes,
    AvoidZones,
    ChainPlanner,
    Constraint,
    ExcludeLinks,
    ExcludeSwitches,
    Leg,
    LoadCost,
    MaxLatency,
    MinBandwidth,
    MinLevel,
    NetworkFunction,
    SecurityCost,
    UtilisationCap,
    app_constraints,
    chain_phrase,
    format_rate,
    layered_graph,
    least_cost_path,
    network_functions,
    node_attrs,
    plan_chain,
    soft_costs,
)
from sdnscent.planner import NoPathError, Planner, stable_hash
from sdnscent.policy import (
    Application,
    Attachment,
    Classification,
    ClassWeights,
    Limits,
    NodeSpec,
    Policy,
    Requirements,
    Zone,
)
from sdnscent.topology import Host, Port, Topology, TopologyError
from sdnscent.trails import Hop
from tests.conftest import FatTree

# -- helpers ---------------------------------------------------------------------------------
HOST_A = Host("00:00:00:00:00:0a", "10.0.0.10", 1, 10)
HOST_B = Host("00:00:00:00:00:0b", "10.0.0.11", 4, 10)


def diamond() -> Topology:
    """s1 -> s4 by s2 (s1:1, s2:2) or by s3 (s1:2, s3:2); the s3 way is 0.5 ms slower.

    Hosts A on s1:10, B on s4:10; every switch has ports 20, 21 free for NFs.
    """
    topo = Topology()
    for dpid in range(1, 5):
        topo.add_switch(dpid, {p: Port(p, speed_bps=10**10) for p in (1, 2, 10, 20, 21)},
                        f"s{dpid}")
    for a, pa, b, pb in [(1, 1, 2, 1), (2, 2, 4, 1), (1, 2, 3, 1), (3, 2, 4, 2)]:
        topo.add_link(a, pa, b, pb)
        topo.add_link(b, pb, a, pa)
    topo.set_link_attrs(1, 2, latency=0.0005)
    topo.add_host(HOST_A.mac, HOST_A.ip, HOST_A.dpid, HOST_A.port)
    topo.add_host(HOST_B.mac, HOST_B.ip, HOST_B.dpid, HOST_B.port)
    return topo


def two_routes() -> Topology:
    """s1 to s4 short via s2 (s1:1, s2:2), long via s3, s5 (s1:2, s3:2, s5:2)."""
    topo = Topology()
    for dpid in range(1, 6):
        topo.add_switch(dpid, {p: Port(p) for p in (1, 2, 10)}, f"s{dpid}")
    for a, pa, b, pb in [(1, 1, 2, 1), (2, 2, 4, 1), (1, 2, 3, 1), (3, 2, 5, 1), (5, 2, 4, 2)]:
        topo.add_link(a, pa, b, pb)
        topo.add_link(b, pb, a, pa)
    topo.add_host(HOST_A.mac, HOST_A.ip, HOST_A.dpid, HOST_A.port)
    topo.add_host(HOST_B.mac, HOST_B.ip, HOST_B.dpid, HOST_B.port)
    return topo


def switches(hops: Sequence[Hop]) -> list[int]:
    return [h.dpid for h in hops]


def vias(hops: Sequence[Hop]) -> list[str]:
    return [h.via for h in hops if h.via is not None]


def check_chain_hops(topo: Topology, hops: Sequence[Hop], src: Host, dst: Host,
                     chain: Sequence[str], nfs: Sequence[NetworkFunction]) -> None:
    """Assert the hops enter at src, leave at dst, follow real links and NF traversals,
    cross the chain's roles in order exactly once each and no (switch, layer) twice."""
    by_name = {nf.name: nf for nf in nfs}
    assert (hops[0].dpid, hops[0].in_port) == (src.dpid, src.port)
    assert (hops[-1].dpid, hops[-1].out_port) == (dst.dpid, dst.port)
    assert hops[-1].via is None
    for here, there in pairwise(hops):
        if here.via is None:
            link = topo.link_from(here.dpid, here.out_port)
            assert link is not None, f"no link leaves {here.dpid}:{here.out_port}"
            assert (link.dst, link.dst_port) == (there.dpid, there.in_port), (here, there)
        else:
            nf = by_name[here.via]
            crossing = ((here.dpid, here.out_port), (there.dpid, there.in_port))
            assert crossing in ((nf.side_a, nf.side_b), (nf.side_b, nf.side_a)), (here, there)
    assert [by_name[v].role for v in vias(hops)] == list(chain)
    layer, seen = 0, set()
    for hop in hops:
        assert (hop.dpid, layer) not in seen, f"switch {hop.dpid} twice in layer {layer}"
        seen.add((hop.dpid, layer))
        layer += hop.via is not None


def host(topo: Topology, tree: FatTree, n: int) -> Host:
    return topo.hosts[tree.host(n).mac]


def add_nf(topo: Topology, name: str, role: str, a: tuple[int, int], b: tuple[int, int],
           zone: str | None = None, level: int = 0) -> NetworkFunction:
    """Give the switches the NF's ports and return the NF."""
    for dpid, port in (a, b):
        topo.set_port(dpid, Port(port, f"s{dpid}-eth{port}", speed_bps=10**10))
    return NetworkFunction(name, role, a, b, zone, level)


# -- legs and formatting ---------------------------------------------------------------------
def test_leg_of_a_link_keys_utilisation_by_the_port_it_leaves() -> None:
    link = diamond().link_from(1, 1)
    assert link is not None
    leg = Leg.of(link)
    assert leg.out_key == (1, 1) and leg.switch_ports() == [(1, 1), (2, 1)]
    assert Leg("fw1", None, 3, 4, 1e9).out_key is None
    assert Leg(3, 4, "fw1", None, 1e9).switch_ports() == [(3, 4)]


def test_rates_and_chains_read_like_english() -> None:
    assert format_rate(10e6) == "10 Mbit/s" and format_rate(1.5e9) == "1.5 Gbit/s"
    assert format_rate(800) == "800 bit/s"
    assert chain_phrase(("firewall", "ids", "load_balancer")) == \
        "that passes a firewall then an ids then a load_balancer"
    assert chain_phrase(()) == ""


def test_hop_json_names_the_network_function_only_when_there_is_one() -> None:
    assert "via" not in Hop(1, 2, 3).to_dict()
    assert Hop(1, 2, 3, "fw1").to_dict()["via"] == "fw1"


# -- every hard constraint prunes -------------------------------------------------------------
def test_without_constraints_the_diamond_goes_by_the_faster_s2() -> None:
    assert switches(plan_chain(diamond(), HOST_A, HOST_B)) == [1, 2, 4]


def test_avoid_nodes_detours_and_names_the_nodes_when_nothing_is_left() -> None:
    topo = diamond()
    assert switches(plan_chain(topo, HOST_A, HOST_B, constraints=[AvoidNodes({2})])) == [1, 3, 4]
    names = {2: "s2", 3: "s3"}
    with pytest.raises(NoPathError) as err:
        plan_chain(topo, HOST_A, HOST_B, constraints=[AvoidNodes({2, 3}, names)])
    assert str(err.value) == "no path from 10.0.0.10 to 10.0.0.11 avoiding s2, s3"


def test_restricted_trail_never_crosses_dmz() -> None:
    topo = diamond()
    attrs = {1: ("core", 2), 2: ("dmz", 0), 3: ("core", 2), 4: ("core", 2)}
    hops = plan_chain(topo, HOST_A, HOST_B, constraints=[AvoidZones({"dmz"}, attrs)])
    assert switches(hops) == [1, 3, 4]
    attrs[3] = ("dmz", 0)
    with pytest.raises(NoPathError, match=r"10.0.0.11 avoiding zone dmz$"):
        plan_chain(topo, HOST_A, HOST_B, constraints=[AvoidZones({"dmz"}, attrs)])
    assert AvoidZones({"dmz", "guest"}, attrs).describe() == "avoiding zones dmz, guest"


def test_allowed_zones_refuse_unzoned_switches_unless_told_otherwise() -> None:
    topo = diamond()
    attrs = {1: ("core", 2), 2: ("dmz", 0), 4: ("core", 2)}  # s3 has no zone
    with pytest.raises(NoPathError, match="only through zone core"):
        plan_chain(topo, HOST_A, HOST_B, constraints=[AllowedZones({"core"}, attrs)])
    lenient = AllowedZones({"core"}, attrs, allow_unzoned=True)
    assert switches(plan_chain(topo, HOST_A, HOST_B, constraints=[lenient])) == [1, 3, 4]
    both = AllowedZones({"core", "dmz"}, attrs)
    assert both.describe() == "only through zones core, dmz"
    assert switches(plan_chain(topo, HOST_A, HOST_B, constraints=[both])) == [1, 2, 4]


def test_min_level_prunes_switches_below_it_and_is_silent_at_zero() -> None:
    topo = diamond()
    attrs = {1: ("core", 2), 2: ("a", 1), 3: ("b", 3), 4: ("core", 2)}
    assert switches(plan_chain(topo, HOST_A, HOST_B, constraints=[MinLevel(2, attrs)])) == \
        [1, 3, 4]
    with pytest.raises(NoPathError, match="through switches of level >= 3"):
        plan_chain(topo, HOST_A, HOST_B, constraints=[MinLevel(3, attrs)])
    assert MinLevel(0, attrs).describe() == ""


def test_utilisation_cap_prunes_links_above_it_and_keeps_those_at_it() -> None:
    topo = diamond()
    cap = UtilisationCap({(2, 2): 0.81}, 0.8)
    assert switches(plan_chain(topo, HOST_A, HOST_B, constraints=[cap])) == [1, 3, 4]
    at_cap = UtilisationCap({(2, 2): 0.8}, 0.8)
    assert switches(plan_chain(topo, HOST_A, HOST_B, constraints=[at_cap])) == [1, 2, 4]
    full = UtilisationCap({(2, 2): 0.9, (3, 2): 0.95}, 0.8)
    with pytest.raises(NoPathError, match="on links at or below 80% utilisation"):
        plan_chain(topo, HOST_A, HOST_B, constraints=[full])
    assert UtilisationCap({(2, 2): 1.5}, 1.0).describe() == ""  # the default limit: inactive
    assert switches(plan_chain(topo, HOST_A, HOST_B,
                               constraints=[UtilisationCap({(2, 2): 1.5}, 1.0)])) == [1, 2, 4]


def test_min_bandwidth_needs_spare_capacity_on_every_link() -> None:
    topo = diamond()
    topo.set_link_attrs(1, 1, capacity=100_000_000)
    util = {(1, 1): 0.95}  # 5 Mbit/s spare on s1 -> s2
    need = MinBandwidth(10_000_000, util)
    assert switches(plan_chain(topo, HOST_A, HOST_B, constraints=[need])) == [1, 3, 4]
    assert switches(plan_chain(topo, HOST_A, HOST_B,
                               constraints=[MinBandwidth(5_000_000, util)])) == [1, 2, 4]
    with pytest.raises(NoPathError, match="with 20 Gbit/s spare on every link"):
        plan_chain(topo, HOST_A, HOST_B, constraints=[MinBandwidth(20e9, util)])


def test_isolated_applications_share_no_cable_in_either_direction() -> None:
    topo = diamond()
    forward = ExcludeLinks({(2, 2)})  # another trail's s2 -> s4
    assert switches(plan_chain(topo, HOST_A, HOST_B, constraints=[forward])) == [1, 3, 4]
    reverse = ExcludeLinks({(4, 1)})  # another trail's s4 -> s2: the same cable
    assert switches(plan_chain(topo, HOST_A, HOST_B, constraints=[reverse])) == [1, 3, 4]
    with pytest.raises(NoPathError, match="sharing no link with isolated applications"):
        plan_chain(topo, HOST_A, HOST_B, constraints=[ExcludeLinks({(1, 1), (3, 2)})])
    assert ExcludeLinks(set()).describe() == ""


def test_switch_isolation_keeps_off_switches_other_trails_use() -> None:
    topo = diamond()
    assert switches(plan_chain(topo, HOST_A, HOST_B,
                               constraints=[ExcludeSwitches({2})])) == [1, 3, 4]
    with pytest.raises(NoPathError) as err:
        plan_chain(topo, HOST_A, HOST_B, constraints=[ExcludeSwitches({4})])
    assert "sharing no switch with isolated applications" in str(err.value)
    assert "the switch of 10.0.0.11 (s4) is excluded" in str(err.value)


def test_max_latency_takes_a_dearer_path_that_is_fast_enough() -> None:
    topo = two_routes()
    topo.set_link_attrs(1, 1, latency=0.002)  # short way: 4 ms in 2 hops
    topo.set_link_attrs(2, 2, latency=0.002)
    for src, port in ((1, 2), (3, 2), (5, 2)):  # long way: 1.5 ms in 3 hops
        topo.set_link_attrs(src, port, latency=0.0005)
    hops_only = ClassWeights("hops", latency=0.0)
    assert switches(plan_chain(topo, HOST_A, HOST_B, weights=hops_only)) == [1, 2, 4]
    fast = plan_chain(topo, HOST_A, HOST_B, constraints=[MaxLatency(0.002)], weights=hops_only)
    assert switches(fast) == [1, 3, 5, 4]
    with pytest.raises(NoPathError) as err:
        plan_chain(topo, HOST_A, HOST_B, constraints=[MaxLatency(0.001)], weights=hops_only)
    assert str(err.value) == ("no path from 10.0.0.10 to 10.0.0.11 within 1 ms: "
                              "the fastest such path takes 1.5 ms")
    assert MaxLatency(0.001).validate(0.001) and not MaxLatency(0.001).validate(0.0011)
    assert not MaxLatency(0.001).allows_link(Leg(1, 1, 2, 1, 1e9, 0.002))


# -- soft costs ---------------------------------------------------------------------------------
def test_load_cost_steers_around_a_busy_link_exactly_like_the_planner() -> None:
    topo = diamond()
    util = {(1, 1): 0.9}
    hops = plan_chain(topo, HOST_A, HOST_B, constraints=[LoadCost(util, 4.0)])
    assert switches(hops) == [1, 3, 4]
    assert hops == Planner(topo, utilisation=util).host_hops(HOST_A, HOST_B)
    assert LoadCost(util, 4.0).cost(Leg(1, 1, 2, 1, 1e9)) == pytest.approx(3.0)  # in steps
    assert LoadCost(util, 4.0, step=0).cost(Leg(1, 1, 2, 1, 1e9)) == pytest.approx(3.6)
    assert LoadCost(util, 4.0).describe() == ""


def test_security_cost_prefers_trusted_switches_by_its_weight() -> None:
    topo = diamond()
    attrs = {1: ("core", 2), 2: ("dmz", 0), 3: ("core", 2), 4: ("core", 2)}
    cost = SecurityCost(attrs, 1.0)
    assert cost.max_level == 2
    assert cost.cost(Leg(1, 1, 2, 1, 1e9)) == 2.0 and cost.cost(Leg(1, 2, 3, 1, 1e9)) == 0.0
    assert cost.cost(Leg(2, 1, "fw9", None, 1e9)) == 2.0  # unknown node: level 0
    assert switches(plan_chain(topo, HOST_A, HOST_B, constraints=[cost])) == [1, 3, 4]
    feeble = SecurityCost(attrs, 0.1)  # 0.2 < the 0.5 ms detour
    assert switches(plan_chain(topo, HOST_A, HOST_B, constraints=[feeble])) == [1, 2, 4]


def test_soft_costs_come_from_the_data_class_weights() -> None:
    weights = ClassWeights("bulk", load=2.0, security=3.0)
    util, attrs = {(1, 1): 0.5}, {1: ("core", 2)}
    costs = soft_costs(weights, util, attrs)
    assert [type(c) for c in costs] == [LoadCost, SecurityCost]
    assert [c.weight for c in costs] == [2.0, 3.0]  # type: ignore[attr-defined]
    assert soft_costs(ClassWeights("x", load=0.0), util, attrs) == []


def test_hop_and_latency_weights_set_the_base_cost() -> None:
    topo = diamond()
    graph = layered_graph(topo, weights=ClassWeights("w", hop=2.0, latency=10.0))
    assert graph.edges[(1, 0), (3, 0)]["cost"] == pytest.approx(2.0 + 10.0 * 0.5)
    assert graph.edges[(1, 0), (2, 0)]["cost"] == 2.0
    zero = layered_graph(topo, weights=ClassWeights("w", hop=0.0, latency=0.0))
    assert all(d["cost"] > 0 for _, _, d in zero.edges(data=True))  # never free: no loops


def test_a_constraint_kind_is_a_class_not_an_edit_of_the_search() -> None:
    class NoOddPorts(Constraint):
        def allows_link(self, leg: Leg) -> bool:
            return leg.src_port is None or leg.src_port % 2 == 0

        def describe(self) -> str:
            return "leaving by even ports"

    topo = diamond()
    assert switches(plan_chain(topo, HOST_A, HOST_B, constraints=[NoOddPorts()])) == [1, 3, 4]
    with pytest.raises(NoPathError, match="leaving by even ports"):
        plan_chain(topo, HOST_B, HOST_A, constraints=[NoOddPorts(), AvoidNodes({3})])


# -- network functions on small graphs ---------------------------------------------------------
def test_reason_lists_every_active_constraint_then_the_chain() -> None:
    topo = diamond()
    fw = add_nf(topo, "fw1", "firewall", (4, 20), (4, 21), "core", 2)
    attrs = {1: ("core", 2), 2: ("dmz", 0), 3: ("edge", 1), 4: ("core", 2), "fw1": ("core", 2)}
    with pytest.raises(NoPathError) as err:
        plan_chain(topo, HOST_A, HOST_B, ("firewall",), [fw],
                   [AvoidZones({"dmz"}, attrs), MinLevel(2, attrs), LoadCost({}, 4.0)])
    assert str(err.value) == ("no path from 10.0.0.10 to 10.0.0.11 avoiding zone dmz "
                              "through switches of level >= 2 that passes a firewall")


def test_a_missing_role_is_named() -> None:
    topo = diamond()
    fw = add_nf(topo, "fw1", "firewall", (4, 20), (4, 21))
    with pytest.raises(NoPathError) as err:
        plan_chain(topo, HOST_A, HOST_B, ("firewall", "load_balancer"), [fw])
    assert str(err.value) == ("no path from 10.0.0.10 to 10.0.0.11 that passes a firewall "
                              "then a load_balancer: no network function has role "
                              "load_balancer")


def test_a_role_whose_every_nf_is_excluded_says_why() -> None:
    topo = diamond()
    fw = add_nf(topo, "fw1", "firewall", (3, 20), (3, 21), "edge", 1)
    attrs = {1: ("core", 2), 2: ("core", 2), 3: ("core", 2), 4: ("core", 2), "fw1": ("edge", 1)}
    with pytest.raises(NoPathError) as err:
        plan_chain(topo, HOST_A, HOST_B, ("firewall",), [fw], [MinLevel(2, attrs)])
    assert str(err.value).endswith(
        "that passes a firewall: every firewall is excluded: fw1 (through switches of level >= 2)")


def test_an_nf_on_an_excluded_switch_is_reported_as_such() -> None:
    topo = diamond()
    fw = add_nf(topo, "fw1", "firewall", (3, 20), (3, 21))
    with pytest.raises(NoPathError) as err:
        plan_chain(topo, HOST_A, HOST_B, ("firewall",), [fw], [AvoidNodes({3}, {3: "s3"})])
    assert str(err.value).endswith("every firewall is excluded: fw1 (attached to s3, which is "
                                   "excluded: avoiding s3)")


def test_nf_with_both_sides_on_one_switch_visits_it_twice_in_two_layers() -> None:
    topo = diamond()
    fw = add_nf(topo, "fw1", "firewall", (1, 20), (1, 21))
    ways = set()
    for key in range(20):  # either way through is as good: the flow key picks
        hops = plan_chain(topo, HOST_A, HOST_B, ("firewall",), [fw], flow_key=(key,))
        check_chain_hops(topo, hops, HOST_A, HOST_B, ("firewall",), [fw])
        assert switches(hops) == [1, 1, 2, 4] and hops[0].via == "fw1"
        ways.add((hops[0].out_port, hops[1].in_port))
    assert ways == {(20, 21), (21, 20)}
    assert plan_chain(topo, HOST_A, HOST_B, ("firewall",), [fw], flow_key=(0,)) in {
        (Hop(1, 10, 20, "fw1"), Hop(1, 21, 1), Hop(2, 1, 2), Hop(4, 1, 10)),
        (Hop(1, 10, 21, "fw1"), Hop(1, 20, 1), Hop(2, 1, 2), Hop(4, 1, 10))}


def test_nf_is_crossed_from_side_b_to_side_a_when_that_is_the_way() -> None:
    topo = diamond()
    fw = add_nf(topo, "fw1", "firewall", (4, 20), (1, 20))  # side a on s4, side b on s1
    hops = plan_chain(topo, HOST_A, HOST_B, ("firewall",), [fw])
    assert hops == (Hop(1, 10, 20, "fw1"), Hop(4, 20, 10))
    back = plan_chain(topo, HOST_B, HOST_A, ("firewall",), [fw])
    assert back == (Hop(4, 10, 20, "fw1"), Hop(1, 20, 10))


def test_nfs_are_never_shortcuts_outside_the_chain() -> None:
    topo = diamond()
    wire = add_nf(topo, "ids1", "ids", (1, 20), (4, 20))  # a one-hop bridge from s1 to s4
    hops = plan_chain(topo, HOST_A, HOST_B, (), [wire])
    assert vias(hops) == [] and switches(hops) == [1, 2, 4]


def test_nf_constraints_apply_to_the_nf_and_its_wires() -> None:
    topo = diamond()
    near = add_nf(topo, "fw1", "firewall", (1, 20), (1, 21), "dmz", 0)
    far = add_nf(topo, "fw2", "firewall", (4, 20), (4, 21), "core", 2)
    attrs = {1: ("core", 2), 2: ("core", 2), 3: ("core", 2), 4: ("core", 2),
             "fw1": ("dmz", 0), "fw2": ("core", 2)}

    def firewall(*constraints: Constraint) -> list[str]:
        return vias(plan_chain(topo, HOST_A, HOST_B, ("firewall",), [near, far], constraints))

    assert firewall(AvoidNodes({"fw2"})) == ["fw1"]
    assert firewall(AvoidZones({"dmz"}, attrs)) == ["fw2"]
    assert firewall(MinLevel(1, attrs)) == ["fw2"]
    # Utilisation is keyed by the port traffic leaves by: fw1 crossed b -> a enters it
    # by port 21, so a busy port 20 alone does not rule fw1 out; both ports do.
    assert firewall(UtilisationCap({(1, 20): 0.99}, 0.5), AvoidNodes({"fw2"})) == ["fw1"]
    assert firewall(UtilisationCap({(1, 20): 0.99, (1, 21): 0.99}, 0.5)) == ["fw2"]
    assert firewall(ExcludeLinks({(1, 21)})) == ["fw2"]  # a wire of fw1, either way


def test_inconsistent_network_functions_are_refused() -> None:
    topo = diamond()
    with pytest.raises(ValueError, match="both sides"):
        NetworkFunction("fw1", "firewall", (1, 20), (1, 20))
    fw = add_nf(topo, "fw1", "firewall", (1, 20), (1, 21))
    with pytest.raises(ValueError, match="two network functions are called fw1"):
        plan_chain(topo, HOST_A, HOST_B, ("firewall",), [fw, fw])
    on_link = NetworkFunction("fw2", "firewall", (1, 1), (1, 21))
    with pytest.raises(TopologyError, match="fw2: side a .s1 port 1. is an inter-switch link"):
        plan_chain(topo, HOST_A, HOST_B, ("firewall",), [on_link])


def test_nf_on_a_switch_that_left_is_reported() -> None:
    topo = diamond()
    gone = NetworkFunction("fw1", "firewall", (9, 1), (9, 2))
    with pytest.raises(NoPathError, match=r"every firewall is excluded: fw1 \(attached to "
                                          r"0000000000000009, not connected\)"):
        plan_chain(topo, HOST_A, HOST_B, ("firewall",), [gone])


def test_trail_to_itself_is_refused() -> None:
    with pytest.raises(NoPathError, match="to itself"):
        plan_chain(diamond(), HOST_A, HOST_A)


# -- policy glue -------------------------------------------------------------------------------
def zoned_policy() -> Policy:
    zones = {"core": Zone("core", 2), "dmz": Zone("dmz", 0)}
    nodes = {
        "s1": NodeSpec("s1", "switch", zone="core"),
        "s2": NodeSpec("s2", "switch", zone="dmz"),
        "s3": NodeSpec("s3", "switch", zone="core", level=3),
        "0000000000000004": NodeSpec("0000000000000004", "switch", zone="core"),
        "fw1": NodeSpec("fw1", "nf", zone="core", role="firewall",
                        attach=(Attachment("s4", 20), Attachment("s4", 21))),
        "fw9": NodeSpec("fw9", "nf", zone="core", role="firewall",
                        attach=(Attachment("s99", 20), Attachment("s4", 21))),
    }
    app = Application("db", classification="restricted", data_class="bulk",
                      requirements=Requirements(max_latency=0.005, min_bandwidth=1e6,
                                                avoid_nodes=frozenset({"s3", "fw7"})))
    return Policy(zones=zones, nodes=nodes,
                  classifications={"restricted": Classification(
                      "restricted", min_level=2, chain=("firewall",))},
                  data_classes={"bulk": ClassWeights("bulk", security=1.0)},
                  applications=(app,), limits=Limits(max_utilization=0.8))


def test_policy_nodes_become_zone_levels_and_network_functions() -> None:
    topo, policy = diamond(), zoned_policy()
    nfs = network_functions(policy, topo)
    assert nfs == [NetworkFunction("fw1", "firewall", (4, 20), (4, 21), "core", 2)]
    attrs = node_attrs(topo, policy, nfs)
    assert attrs == {1: ("core", 2), 2: ("dmz", 0), 3: ("core", 3), 4: ("core", 2),
                     "fw1": ("core", 2)}


def test_app_constraints_follow_the_policy_and_read_as_a_reason() -> None:
    topo, policy = diamond(), zoned_policy()
    app = policy.app("db")
    assert app is not None
    nfs = network_functions(policy, topo)
    attrs = node_attrs(topo, policy, nfs)
    found = app_constraints(app, policy, topo, attrs, utilisation={(1, 1): 0.9},
                            isolated_links=[(2, 2)])
    phrases = [c.describe() for c in found if c.describe()]
    assert phrases == ["avoiding fw7, s3", "through switches of level >= 2",
                       "on links at or below 80% utilisation", "with 1 Mbit/s spare on every link",
                       "sharing no link with isolated applications", "within 5 ms"]
    assert any(isinstance(c, SecurityCost) for c in found)
    avoid = next(c for c in found if isinstance(c, AvoidNodes))
    assert avoid.nodes == {3, "fw7"}
    with pytest.raises(NoPathError) as err:  # s2 is below level 2, s3 avoided
        plan_chain(topo, HOST_A, HOST_B, policy.chain_of(app), nfs, found,
                   policy.weights_of(app))
    assert str(err.value).startswith("no path from 10.0.0.10 to 10.0.0.11 avoiding fw7, s3 ")
    assert str(err.value).endswith("within 5 ms that passes a firewall")


# -- fat-tree: chains in order, equality with the planner ----------------------------------------
def test_without_chain_or_constraints_every_pair_matches_the_planner(fat_tree) -> None:
    topo = fat_tree.topology()
    planner = Planner(topo)
    for a in fat_tree.hosts:
        for b in fat_tree.hosts:
            if a != b:
                src, dst = host(topo, fat_tree, a.n), host(topo, fat_tree, b.n)
                assert plan_chain(topo, src, dst) == planner.host_hops(src, dst), (a.n, b.n)


def test_with_latency_and_load_every_pair_still_matches_the_planner(fat_tree) -> None:
    topo = fat_tree.topology()
    util = {}
    for i, link in enumerate(topo.links()):
        if i % 3 == 0:
            topo.set_link_attrs(link.src, link.src_port, latency=0.0001 * (i % 7))
        if i % 4 == 1:
            util[(link.src, link.src_port)] = (i % 10) / 10
    planner = Planner(topo, utilisation=util)
    for a in fat_tree.hosts:
        for b in fat_tree.hosts:
            if a != b:
                src, dst = host(topo, fat_tree, a.n), host(topo, fat_tree, b.n)
                assert plan_chain(topo, src, dst, constraints=[LoadCost(util, 4.0)]) == \
                    planner.host_hops(src, dst), (a.n, b.n)


def chained_fat_tree(tree: FatTree) -> tuple[Topology, list[NetworkFunction]]:
    """k=4 fat-tree with fw1 on core s1, ids1 bridging s13 and s14 (pod 2 aggregation)
    and lb1 on edge s20 (pod 3), each on new ports 5 and 6."""
    topo = tree.topology()
    nfs = [add_nf(topo, "fw1", "firewall", (1, 5), (1, 6)),
           add_nf(topo, "ids1", "ids", (13, 5), (14, 5)),
           add_nf(topo, "lb1", "load_balancer", (20, 5), (20, 6))]
    return topo, nfs


@pytest.mark.parametrize("chain", [("firewall",), ("ids", "firewall"),
                                   ("firewall", "ids", "load_balancer"),
                                   ("load_balancer", "ids", "firewall")])
def test_chains_of_one_to_three_nfs_are_crossed_in_order(fat_tree, chain) -> None:
    topo, nfs = chained_fat_tree(fat_tree)
    names = {nf.role: nf.name for nf in nfs}
    for a, b in [(1, 5), (1, 2), (16, 3), (9, 10), (13, 1)]:
        src, dst = host(topo, fat_tree, a), host(topo, fat_tree, b)
        hops = plan_chain(topo, src, dst, chain, nfs)
        check_chain_hops(topo, hops, src, dst, chain, nfs)
        assert vias(hops) == [names[r] for r in chain]


def test_order_is_kept_when_the_later_role_is_closer(fat_tree) -> None:
    topo, nfs = chained_fat_tree(fat_tree)
    near_lb = add_nf(topo, "lb2", "load_balancer", (8, 5), (8, 6))  # h3's own edge switch
    src, dst = host(topo, fat_tree, 1), host(topo, fat_tree, 3)  # both in pod 0
    hops = plan_chain(topo, src, dst, ("firewall", "load_balancer"), [*nfs, near_lb])
    assert vias(hops) == ["fw1", "lb2"]
    check_chain_hops(topo, hops, src, dst, ("firewall", "load_balancer"), [*nfs, near_lb])
    assert switches(hops)[:4] == [7, 5, 1, 1]  # up to core s1 (only s5 reaches it) first
    reverse = plan_chain(topo, src, dst, ("load_balancer", "firewall"), [*nfs, near_lb])
    assert vias(reverse) == ["lb2", "fw1"] and reverse[-1].dpid == 8


def test_the_nearest_nf_of_a_role_is_chosen(fat_tree) -> None:
    topo, nfs = chained_fat_tree(fat_tree)
    near = add_nf(topo, "fw2", "firewall", (7, 5), (7, 6))
    src, dst = host(topo, fat_tree, 1), host(topo, fat_tree, 5)
    assert vias(plan_chain(topo, src, dst, ("firewall",), [*nfs, near])) == ["fw2"]
    assert vias(plan_chain(topo, src, dst, ("firewall",), [*nfs, near],
                           [AvoidNodes({"fw2"})])) == ["fw1"]


def test_chain_plans_are_the_same_on_every_call_and_spread_by_flow_key(fat_tree) -> None:
    topo, nfs = chained_fat_tree(fat_tree)
    src, dst = host(topo, fat_tree, 1), host(topo, fat_tree, 5)
    chain = ("firewall", "ids", "load_balancer")
    first = plan_chain(topo, src, dst, chain, nfs)
    assert plan_chain(topo, src, dst, chain, nfs) == first
    assert plan_chain(chained_fat_tree(fat_tree)[0], src, dst, chain, nfs) == first
    spread = {plan_chain(topo, src, dst, chain, nfs, flow_key=(i,)) for i in range(40)}
    assert len(spread) > 1


def test_a_path_never_arrives_at_a_switch_port_twice(fat_tree) -> None:
    """lb2 on h3's own switch s8 first, then fw1 on core s1 (reached only through s5): coming
    back down s5 -> s8 after fw1 must not repeat the way s8 was reached before lb2."""
    topo, nfs = chained_fat_tree(fat_tree)
    lb2 = add_nf(topo, "lb2", "load_balancer", (8, 5), (8, 6))
    src, dst = host(topo, fat_tree, 1), host(topo, fat_tree, 3)
    chain = ("load_balancer", "firewall")
    repeated = 0
    for key in range(16):
        loose = plan_chain(topo, src, dst, chain, [*nfs, lb2], flow_key=(key,),
                           distinct_arrivals=False)
        arrivals = [(h.dpid, h.in_port) for h in loose]
        repeated += len(set(arrivals)) < len(arrivals)
        hops = plan_chain(topo, src, dst, chain, [*nfs, lb2], flow_key=(key,))
        check_chain_hops(topo, hops, src, dst, chain, [*nfs, lb2])
        arrivals = [(h.dpid, h.in_port) for h in hops]
        assert len(set(arrivals)) == len(arrivals), hops
        assert switches(hops)[:3] == [7, 6, 8] and len(hops) == len(loose)  # as short
    assert repeated  # without the rule some flow keys would go down s5 -> s8 twice


def test_when_every_path_repeats_an_arrival_the_reason_says_so() -> None:
    topo = Topology()
    for dpid in (1, 2):
        topo.add_switch(dpid, {p: Port(p) for p in (1, 10, 20, 21)}, f"s{dpid}")
    topo.add_link(1, 1, 2, 1)
    topo.add_link(2, 1, 1, 1)
    src, _ = topo.add_host("00:00:00:00:00:01", "10.0.0.1", 1, 10)
    dst, _ = topo.add_host("00:00:00:00:00:02", "10.0.0.2", 2, 10)
    nfs = [NetworkFunction("fw1", "firewall", (2, 20), (2, 21)),
           NetworkFunction("ids1", "ids", (1, 20), (1, 21))]
    loose = plan_chain(topo, src, dst, ("firewall", "ids"), nfs, distinct_arrivals=False)
    assert switches(loose) == [1, 2, 2, 1, 1, 2]  # s1 -> s2 twice, into s2 port 1 twice
    with pytest.raises(NoPathError) as err:
        plan_chain(topo, src, dst, ("firewall", "ids"), nfs)
    assert str(err.value) == ("no path from 10.0.0.1 to 10.0.0.2 that passes a firewall then "
                              "an ids: every path found arrives at s2 port 1 more than once")


def test_a_chain_planner_builds_its_graph_once_per_topology_version(fat_tree) -> None:
    topo, nfs = chained_fat_tree(fat_tree)
    chain = ("firewall", "load_balancer")
    planner = ChainPlanner(topo, chain, nfs)
    pairs = [(1, 5), (2, 9), (16, 3), (4, 4 + 8)]
    for a, b in pairs:
        src, dst = host(topo, fat_tree, a), host(topo, fat_tree, b)
        assert planner.plan(src, dst) == plan_chain(topo, src, dst, chain, nfs)
    graph = planner.graph
    assert planner.graph is graph
    src, dst = host(topo, fat_tree, 1), host(topo, fat_tree, 5)
    before = planner.plan(src, dst)
    up = before[0].out_port  # cut the first up-link the trail uses
    topo.remove_link(before[0].dpid, up)
    after = planner.plan(src, dst)
    assert planner.graph is not graph
    assert after[0].out_port != up
    check_chain_hops(topo, after, src, dst, chain, nfs)


# -- random graphs (hypothesis) ---------------------------------------------------------------
ROLES = ("firewall", "ids", "load_balancer")


@dataclass
class Scenario:
    topo: Topology
    src: Host
    dst: Host
    nfs: list[NetworkFunction]
    chain: tuple[str, ...]
    constraints: list[Constraint]
    weights: ClassWeights


@st.composite
def scenarios(draw: st.DrawFn, max_switches: int = 20, latency_bounds: bool = True) -> Scenario:
    """A random connected switch graph (4-20 switches, parallel links possible), two hosts,
    a chain of 0-3 roles, mostly one NF per role and up to 2 more, on random switches (both
    sides on one switch or on two), and up to two random constraints."""
    n = draw(st.integers(4, max_switches))
    cables = [(draw(st.integers(1, i - 1)), i) for i in range(2, n + 1)]  # a spanning tree
    extra = draw(st.lists(st.tuples(st.integers(1, n), st.integers(1, n)), max_size=2 * n))
    cables += [(a, b) for a, b in extra if a != b]
    topo = Topology()
    ports = {d: 0 for d in range(1, n + 1)}

    def port(dpid: int) -> int:
        ports[dpid] += 1
        return ports[dpid]

    wires = [(a, port(a), b, port(b)) for a, b in cables]
    chain = tuple(draw(st.lists(st.sampled_from(ROLES), max_size=3)))
    somewhere = st.integers(1, n)
    nf_specs = [(role, draw(somewhere), draw(somewhere)) for role in dict.fromkeys(chain)
                for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2])))]  # mostly one per role
    nf_specs += draw(st.lists(st.tuples(st.sampled_from(ROLES), somewhere, somewhere),
                              max_size=2))
    nf_ports = [(role, (a, port(a)), (b, port(b))) for role, a, b in nf_specs]
    s_src, s_dst = draw(st.integers(1, n)), draw(st.integers(1, n))
    h_src, h_dst = port(s_src), port(s_dst)
    for dpid in range(1, n + 1):
        topo.add_switch(dpid, {p: Port(p, speed_bps=10**9) for p in range(1, ports[dpid] + 1)},
                        f"s{dpid}")
    latency = st.sampled_from([0.0, 0.0005, 0.001, 0.002])
    for a, pa, b, pb in wires:
        topo.add_link(a, pa, b, pb)
        topo.add_link(b, pb, a, pa)
        topo.set_link_attrs(a, pa, latency=draw(latency))
        topo.set_link_attrs(b, pb, latency=draw(latency))
    src, _ = topo.add_host("00:00:00:00:01:01", "10.0.1.1", s_src, h_src)
    dst, _ = topo.add_host("00:00:00:00:01:02", "10.0.1.2", s_dst, h_dst)
    nfs = [NetworkFunction(f"nf{i}", role, a, b, level=draw(st.integers(0, 2)))
           for i, (role, a, b) in enumerate(nf_ports)]
    attrs: dict[int | str, tuple[str | None, int]] = {
        d: (draw(st.sampled_from([None, "core", "core", "core", "dmz"])),
            draw(st.sampled_from([0, 1, 1, 2, 2, 2])))
        for d in range(1, n + 1)}
    attrs.update({nf.name: (None, nf.level) for nf in nfs})
    util = {(lk.src, lk.src_port): draw(st.sampled_from([0.0, 0.3, 0.7, 0.95]))
            for lk in topo.links()}
    menu: list[Constraint] = [
        AvoidNodes(draw(st.sets(st.integers(1, n), max_size=2))),
        AvoidZones({"dmz"}, attrs), MinLevel(1, attrs), UtilisationCap(util, 0.9),
        MinBandwidth(200e6, util), ExcludeLinks(set(draw(st.sets(st.sampled_from(
            [(lk.src, lk.src_port) for lk in topo.links()]), max_size=3)))),
        LoadCost(util, 4.0), SecurityCost(attrs, 0.5)]
    if latency_bounds:
        menu.append(MaxLatency(0.004))
    picked = draw(st.lists(st.sampled_from(range(len(menu))), unique=True, max_size=2))
    weights = ClassWeights("w", hop=draw(st.sampled_from([0.0, 1.0])),
                           latency=draw(st.sampled_from([0.0, 1.0])))
    return Scenario(topo, src, dst, nfs, chain, [menu[i] for i in sorted(picked)], weights)


Edge = tuple[object, object, float, float, "tuple[int, int] | None"]


def brute_edges(s: Scenario) -> list[Edge]:
    """Every (state, state, cost, latency, arrival port) of the layered search space, written
    from the topology, NFs and constraints without layered_graph; parallel links kept."""
    cons, layers = s.constraints, len(s.chain) + 1

    def node_ok(node: int | str) -> bool:
        return all(c.allows_node(node) for c in cons)

    def leg_ok(leg: Leg) -> bool:
        return all(c.allows_link(leg) for c in cons)

    def cost(leg: Leg) -> float:
        base = s.weights.hop + s.weights.latency * leg.latency * 1e3
        return max(base + sum(c.cost(leg) for c in cons), 1e-6)

    edges: list[Edge] = []
    for link in s.topo.links():
        leg = Leg.of(link)
        if node_ok(link.src) and node_ok(link.dst) and leg_ok(leg):
            edges += [((link.src, i), (link.dst, i), cost(leg), link.latency,
                       (link.dst, link.dst_port)) for i in range(layers)]
    for i, role in enumerate(s.chain):
        for nf in s.nfs:
            if nf.role != role or not node_ok(nf.name):
                continue
            for entry, exit_ in ((nf.side_a, nf.side_b), (nf.side_b, nf.side_a)):
                into = Leg(entry[0], entry[1], nf.name, None, 1e9)
                out = Leg(nf.name, None, exit_[0], exit_[1], 1e9)
                if node_ok(entry[0]) and node_ok(exit_[0]) and leg_ok(into) and leg_ok(out):
                    edges.append(((entry[0], i), (nf.name, i, entry), cost(into), 0.0, None))
                    edges.append(((nf.name, i, entry), (exit_[0], i + 1), cost(out), 0.0,
                                  exit_))
    return edges


def brute_force(s: Scenario) -> tuple[float, float]:
    """(least cost, least latency) from (src switch, 0) to (dst switch, len(chain)),
    by Bellman-Ford over brute_edges."""
    edges = brute_edges(s)
    start, goal = (s.src.dpid, 0), (s.dst.dpid, len(s.chain))
    if not all(c.allows_node(s.src.dpid) for c in s.constraints):
        return math.inf, math.inf
    best = []
    for pick in (2, 3):
        dist: dict[object, float] = {start: 0.0}
        for _ in range(len(edges) + 1):
            changed = False
            for edge in edges:
                u, v, w = edge[0], edge[1], edge[pick]
                if u in dist and dist[u] + w < dist.get(v, math.inf) - 1e-12:
                    dist[v] = dist[u] + w
                    changed = True
            if not changed:
                break
        best.append(dist.get(goal, math.inf))
    return best[0], best[1]


def brute_force_distinct(s: Scenario) -> float:
    """Least cost over every path (depth-first, exhaustive) that visits no (switch, layer)
    twice and arrives at no switch port twice; inf if there is none."""
    out: dict[object, list[Edge]] = {}
    for edge in brute_edges(s):
        out.setdefault(edge[0], []).append(edge)
    start, goal = (s.src.dpid, 0), (s.dst.dpid, len(s.chain))
    if not all(c.allows_node(s.src.dpid) for c in s.constraints):
        return math.inf
    best = math.inf

    def walk(node: object, cost: float, seen: set, arrived: set) -> None:
        nonlocal best
        if cost >= best - 1e-12:
            return
        if node == goal:
            best = cost
            return
        for _, nxt, c, _, port in out.get(node, []):
            if nxt in seen or (port is not None and port in arrived):
                continue
            seen.add(nxt)
            if port is not None:
                arrived.add(port)
            walk(nxt, cost + c, seen, arrived)
            seen.discard(nxt)
            if port is not None:
                arrived.discard(port)

    walk(start, 0.0, {start}, set())
    return best


def hops_cost_and_latency(s: Scenario, hops: Sequence[Hop]) -> tuple[float, float]:
    """Cost and latency of a planned path, recomputed leg by leg from the hops."""
    total = latency = 0.0

    def cost(leg: Leg) -> float:
        base = s.weights.hop + s.weights.latency * leg.latency * 1e3
        return max(base + sum(c.cost(leg) for c in s.constraints), 1e-6)

    for here, there in pairwise(hops):
        if here.via is None:
            link = s.topo.link_from(here.dpid, here.out_port)
            assert link is not None
            total += cost(Leg.of(link))
            latency += link.latency
        else:
            total += cost(Leg(here.dpid, here.out_port, here.via, None, 1e9))
            total += cost(Leg(here.via, None, there.dpid, there.in_port, 1e9))
    return total, latency


def check_reason(s: Scenario, err: NoPathError) -> None:
    assert str(err).startswith(f"no path from {s.src.ip} to {s.dst.ip}")
    for c in s.constraints:
        assert c.describe() in str(err)
    assert chain_phrase(s.chain) in str(err)


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(scenarios())
def test_random_graphs_chain_routes_are_loop_free_in_order_and_optimal(s: Scenario) -> None:
    """Layered-graph semantics alone (distinct_arrivals off): brute force agrees on
    existence and on the least cost; with a latency bound, on existence."""
    least_cost, least_latency = brute_force(s)
    bound = next((c.seconds for c in s.constraints if isinstance(c, MaxLatency)), None)
    try:
        hops = plan_chain(s.topo, s.src, s.dst, s.chain, s.nfs, s.constraints, s.weights,
                          distinct_arrivals=False)
        event(f"path through {len(s.chain)} NFs")
    except NoPathError as err:
        event(f"no path, chain of {len(s.chain)}")
        assert least_cost == math.inf or (bound is not None and least_latency > bound + 1e-12), \
            (str(err), least_cost, least_latency)
        check_reason(s, err)
        return
    check_chain_hops(s.topo, hops, s.src, s.dst, s.chain, s.nfs)
    for hop in hops:
        assert all(c.allows_node(hop.dpid) for c in s.constraints)
        if hop.via is not None:
            assert all(c.allows_node(hop.via) for c in s.constraints)
    cost, latency = hops_cost_and_latency(s, hops)
    if bound is None:
        assert cost == pytest.approx(least_cost, rel=1e-9, abs=1e-9)
    else:
        assert latency <= bound + 1e-12


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(scenarios(max_switches=7, latency_bounds=False))
def test_random_graphs_never_arrive_at_a_switch_port_twice(s: Scenario) -> None:
    """The default search: also no repeated arrival port; exhaustive search agrees."""
    best = brute_force_distinct(s)
    try:
        hops = plan_chain(s.topo, s.src, s.dst, s.chain, s.nfs, s.constraints, s.weights)
        event(f"path through {len(s.chain)} NFs")
    except NoPathError as err:
        event(f"no path, chain of {len(s.chain)}")
        assert best == math.inf, (str(err), best)
        check_reason(s, err)
        return
    check_chain_hops(s.topo, hops, s.src, s.dst, s.chain, s.nfs)
    arrivals = [(h.dpid, h.in_port) for h in hops]
    assert len(set(arrivals)) == len(arrivals), hops
    assert hops_cost_and_latency(s, hops)[0] == pytest.approx(best, rel=1e-9, abs=1e-9)


def layered_order(node: tuple) -> tuple:
    return (0, node[0], node[1], "", "") if isinstance(node[0], int) else \
        (1, 0, node[1], node[0], node[2])


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(scenarios(), st.integers(0, 2**32))
def test_random_graphs_pick_the_same_equal_cost_path_as_sorting_them_all(
        s: Scenario, salt: int) -> None:
    cons = [c for c in s.constraints if not isinstance(c, MaxLatency)]
    graph = layered_graph(s.topo, s.chain, s.nfs, cons, s.weights)
    source, target = (s.src.dpid, 0), (s.dst.dpid, len(s.chain))
    key = (salt,)
    picked = least_cost_path(graph, source, target, key)
    if picked is None:
        assert source not in graph or target not in graph or \
            not nx.has_path(graph, source, target)
        return
    every = sorted(nx.all_shortest_paths(graph, source, target, weight="cost"),
                   key=lambda p: [layered_order(n) for n in p])
    assert picked == every[stable_hash(*key) % len(every)]


