"""The min max-utilisation MCF LP: values checked by hand, flows decomposed into paths."""

from collections import defaultdict

import pytest

from sdnscent.baselines import Fabric, PlanError
from sdnscent.mcf import min_max_utilization, optimal
from sdnscent.netfile import Demand, arc_loads, fat_tree, max_utilization, parse_network


def net_of(links, directed=False, nodes=None):
    names = nodes or sorted({n for s, t, _ in links for n in (s, t)})
    return parse_network({"directed": directed, "nodes": [{"id": n} for n in names],
                          "links": [{"source": s, "target": t, "capacity": c}
                                    for s, t, c in links]})


def demand(net, src, dst, rate):
    return Demand(net.index[src], net.index[dst], rate)


def test_two_routes_share_a_demand_in_proportion_to_capacity():
    net = net_of([("s", "a", 10), ("a", "t", 10), ("s", "b", 5), ("b", "t", 5)])
    d = [demand(net, "s", "t", 12)]
    result = min_max_utilization(Fabric(net), d)
    assert result.value == pytest.approx(12 / 15)
    (trail,) = optimal(Fabric(net), d, result=result)
    assert sorted(trail.weights) == pytest.approx([5 / 15, 10 / 15])
    assert sum(trail.weights) == pytest.approx(1.0)


def test_opposite_demands_use_both_directions_independently():
    net = net_of([("a", "b", 10)])
    d = [demand(net, "a", "b", 10), demand(net, "b", "a", 5)]
    assert min_max_utilization(Fabric(net), d).value == pytest.approx(1.0)


def test_a_bottleneck_shared_by_two_sources():
    # x and y both reach t only over m -> t (capacity 4); 3 + 3 units: lambda = 1.5
    net = net_of([("x", "m", 10), ("y", "m", 10), ("m", "t", 4)])
    d = [demand(net, "x", "t", 3), demand(net, "y", "t", 3)]
    assert min_max_utilization(Fabric(net), d).value == pytest.approx(1.5)


def test_directed_ring_detour():
    # a -> b direct (capacity 1) or a -> c -> b (capacity 1 each): 3 units, lambda = 1.5
    net = net_of([("a", "b", 1), ("a", "c", 1), ("c", "b", 1)], directed=True)
    assert min_max_utilization(Fabric(net), [demand(net, "a", "b", 3)]).value == \
        pytest.approx(1.5)


def test_optimal_trails_conserve_flow_and_meet_the_lp_value():
    net = parse_network(fat_tree(4))
    hosts = sorted(net.hosts)
    d = [Demand(h, hosts[(n + 5) % 16], 1e9) for n, h in enumerate(hosts)]
    fabric = Fabric(net)
    result = min_max_utilization(fabric, d)
    trails = optimal(fabric, d, result=result)
    assert result.value == pytest.approx(1.0)
    assert max_utilization(net, arc_loads(net, trails)) <= result.value * (1 + 1e-6)
    for trail in trails:
        assert sum(trail.weights) == pytest.approx(1.0)
        net_out = defaultdict(float)
        for path, weight in zip(trail.paths, trail.weights, strict=True):
            assert path[0] == trail.demand.src and path[-1] == trail.demand.dst
            for a in net.path_arcs(path):  # raises KeyError if a hop is not a link
                net_out[net.arcs[a].u] += weight
                net_out[net.arcs[a].v] -= weight
        assert net_out[trail.demand.src] == pytest.approx(1.0)
        assert net_out[trail.demand.dst] == pytest.approx(-1.0)
        assert all(abs(v) < 1e-9 for n, v in net_out.items()
                   if n not in (trail.demand.src, trail.demand.dst))


def test_disconnected_demand_is_an_error():
    net = net_of([("a", "b", 1), ("c", "d", 1)])
    with pytest.raises(PlanError, match="no path"):
        min_max_utilization(Fabric(net), [demand(net, "a", "d", 1)])
