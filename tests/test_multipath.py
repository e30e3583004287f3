"""Multipath planning: within 5% of the LP, weights that sum to 1, valid paths,
constraints respected, and better than single paths where splitting helps."""

import pytest
import topohub

from sdnscent.baselines import Fabric, ecmp, ecmp_fluid, global_first_fit, shortest_path
from sdnscent.mcf import min_max_utilization
from sdnscent.multipath import multipath
from sdnscent.netfile import Demand, arc_loads, fat_tree, max_utilization, parse_network
from sdnscent.policy import Application, NodeSpec, Policy, Requirements, Zone
from sdnscent.traffic import PATTERNS, demand_matrix, pattern


def mlu(net, trails):
    return max_utilization(net, arc_loads(net, trails))


def check_trails(net, trails):
    for trail in trails:
        assert sum(trail.weights) == pytest.approx(1.0)
        assert all(w > 0 for w in trail.weights)
        for path in trail.paths:
            assert path[0] == trail.demand.src and path[-1] == trail.demand.dst
            assert len(set(path)) == len(path)
            net.path_arcs(path)  # every hop is a link


@pytest.fixture(scope="module")
def ft4():
    net = parse_network(fat_tree(4))
    return net, [net.ids[i] for i in sorted(net.hosts)]


@pytest.mark.parametrize("name", PATTERNS)
def test_fat_tree_patterns_within_five_percent_of_lp(ft4, name):
    net, hosts = ft4
    matrix = demand_matrix(pattern(name, hosts, 2, 4), 1e9)
    demands = [Demand(net.index[s], net.index[t], r) for s, row in matrix.items()
               for t, r in row.items()]
    fabric = Fabric(net)
    result = multipath(fabric, demands)
    check_trails(net, result.trails)
    lp = min_max_utilization(fabric, demands).value
    assert mlu(net, result.trails) <= lp * 1.05
    assert mlu(net, result.trails) <= mlu(net, shortest_path(fabric, demands)) + 1e-9


def test_splits_a_demand_over_unequal_routes():
    net = parse_network({"nodes": [{"id": n} for n in "sabt"], "links": [
        {"source": "s", "target": "a", "capacity": 10}, {"source": "a", "target": "t",
                                                         "capacity": 10},
        {"source": "s", "target": "b", "capacity": 5}, {"source": "b", "target": "t",
                                                        "capacity": 5}]})
    (trail,) = multipath(Fabric(net), [Demand(0, 3, 12.0)]).trails
    assert mlu(net, [trail]) == pytest.approx(0.8)
    assert dict(zip(trail.paths, trail.weights, strict=True)) == pytest.approx(
        {(0, 1, 3): 2 / 3, (0, 2, 3): 1 / 3})


def test_light_load_stays_on_least_cost_paths():
    net = parse_network({"nodes": [{"id": n} for n in "abc"], "links": [
        {"source": "a", "target": "b", "capacity": 10}, {"source": "b", "target": "c",
                                                         "capacity": 10},
        {"source": "a", "target": "c", "capacity": 10}]})
    (trail,) = multipath(Fabric(net), [Demand(0, 2, 1.0), Demand(1, 2, 1.0)]).trails[:1]
    assert trail.paths == ((0, 2),)


def test_wan_beats_ecmp_and_gff_and_meets_the_lp():
    net = parse_network(topohub.get("sndlib/abilene"))
    fabric = Fabric(net)
    lp = min_max_utilization(fabric, net.demands).value
    demands = [Demand(d.src, d.dst, d.rate * 0.9 / lp) for d in net.demands]
    result = multipath(fabric, demands)
    check_trails(net, result.trails)
    value = mlu(net, result.trails)
    assert value == pytest.approx(0.9, rel=0.05)
    assert value < mlu(net, ecmp(fabric, demands))
    assert value < mlu(net, ecmp_fluid(fabric, demands))
    assert value < mlu(net, global_first_fit(fabric, demands))


def test_avoided_zone_is_never_crossed():
    net = parse_network(fat_tree(4))
    nodes = {"s1": NodeSpec("s1", "switch", zone="dmz"),
             "s2": NodeSpec("s2", "switch", zone="dmz")}
    app = Application("payroll", requirements=Requirements(avoid_zones=frozenset({"dmz"})))
    fabric = Fabric(net, Policy(zones={"dmz": Zone("dmz", 0)}, nodes=nodes,
                                applications=(app,)))
    hosts = sorted(net.hosts)
    demands = [Demand(h, hosts[(n + 8) % 16], 1e9, "payroll") for n, h in enumerate(hosts)]
    trails = multipath(fabric, demands).trails
    check_trails(net, trails)
    banned = {net.index["s1"], net.index["s2"]}
    assert all(not banned & set(p) for t in trails for p in t.paths)
    # half the cores are gone: multipath still meets the LP over the rest
    assert mlu(net, trails) == pytest.approx(min_max_utilization(fabric, demands).value,
                                             rel=0.05)
