"""Offline single-path planning equals the controller's; ECMP, Global First Fit,
the trail index and Hedera's traffic patterns."""

import random
from itertools import pairwise

import pytest

from sdnscent.baselines import Fabric, TrailIndex, ecmp, global_first_fit, shortest_path
from sdnscent.constraints import ChainPlanner, app_constraints
from sdnscent.netfile import Demand, arc_loads, fat_tree, parse_network
from sdnscent.planner import NoPathError, Planner
from sdnscent.policy import Application, NodeSpec, Policy, Requirements, Zone
from sdnscent.traffic import (
    estimate_demands,
    pattern,
    random_bijective,
    stride,
)


@pytest.fixture(scope="module")
def ft4():
    net = parse_network(fat_tree(4))
    return net, Fabric(net)


def dmz_policy(dmz):
    nodes = {name: NodeSpec(name, "switch", zone="dmz") for name in dmz}
    app = Application("payroll", requirements=Requirements(avoid_zones=frozenset({"dmz"})))
    return Policy(zones={"dmz": Zone("dmz", 0)}, nodes=nodes, applications=(app,))


def test_single_path_is_the_controllers_path_for_every_pair(ft4):
    net, fabric = ft4
    planner = Planner(fabric.topo)
    hosts = sorted(net.hosts)
    for src in hosts:
        for dst in hosts:
            if src != dst:
                hops = planner.host_hops(fabric.hosts[src], fabric.hosts[dst])
                expected = (src, *(fabric.node_of[h.dpid] for h in hops), dst)
                assert fabric.router().path(src, dst) == expected


def test_application_trails_follow_chain_planner_and_avoid_zones():
    net = parse_network(fat_tree(4))
    fabric = Fabric(net, dmz_policy({"s1", "s2"}))
    router = fabric.router("payroll")
    profile = fabric.policy.app("payroll")
    chain = ChainPlanner(fabric.topo, (), (), app_constraints(profile, fabric.policy,
                                                              fabric.topo, fabric.attrs))
    dmz = {net.index["s1"], net.index["s2"]}
    for src, dst in [(20, 35), (35, 20), (21, 30), (24, 27)]:
        path = router.path(src, dst)
        hops = chain.plan(fabric.hosts[src], fabric.hosts[dst], router.flow_key(src, dst))
        assert path == (src, *(fabric.node_of[h.dpid] for h in hops), dst)
        assert not dmz & set(path)


def test_no_path_names_the_nodes_and_the_reason():
    net = parse_network(fat_tree(4))
    fabric = Fabric(net, dmz_policy({"s1", "s2", "s3", "s4"}))
    with pytest.raises(NoPathError, match=r"'h1' -> 'h16': no path .* avoiding zone dmz"):
        fabric.router("payroll").path(net.index["h1"], net.index["h16"])


def test_ecmp_splits_equally_over_every_least_cost_path(ft4):
    net, fabric = ft4
    demand = Demand(net.index["h1"], net.index["h16"], 4.0)
    (trail,) = ecmp(fabric, [demand])
    assert len(trail.paths) == 4 and trail.weights == (0.25,) * 4
    assert len({p[3] for p in trail.paths}) == 4  # through each of the four cores
    loads = arc_loads(net, [trail])
    assert max(loads) == 4.0 and sorted(set(loads)) == [0.0, 1.0, 2.0, 4.0]


def test_global_first_fit_moves_a_flow_that_does_not_fit():
    data = {"nodes": [{"id": n} for n in "sabt"],
            "links": [{"source": "s", "target": "a", "capacity": 10},
                      {"source": "a", "target": "t", "capacity": 10},
                      {"source": "s", "target": "b", "capacity": 10},
                      {"source": "b", "target": "t", "capacity": 10}]}
    net = parse_network(data)
    fabric = Fabric(net)
    s, t = net.index["s"], net.index["t"]
    first, second = global_first_fit(fabric, [Demand(s, t, 8.0), Demand(s, t, 8.0)])
    assert first.paths[0] != second.paths[0]
    assert max(arc_loads(net, [first, second])) == 8.0
    hashed = shortest_path(fabric, [Demand(s, t, 8.0)])[0].paths[0]
    assert first.paths[0] == fabric.router().least_cost_paths(s, t)[0]
    # nothing fits: the flow stays on its hashed path
    (big,) = global_first_fit(fabric, [Demand(s, t, 30.0)])
    assert big.paths == (hashed,)


def test_trail_index_names_only_the_trails_on_a_failed_cable(ft4):
    net = parse_network(fat_tree(4))
    fabric = Fabric(net)
    hosts = sorted(net.hosts)
    pairs = [(s, t) for s in hosts for t in hosts if s != t]
    index = TrailIndex()
    paths = [fabric.router().switch_path(s, t) for s, t in pairs]
    for n, path in enumerate(paths):
        index.add(n, path)
    u, v = net.index["s1"], net.index["s5"]
    affected = index.affected(u, v)
    on_cable = [n for n, p in enumerate(paths)
                if {frozenset(c) for c in pairwise(p)} & {frozenset((u, v))}]
    assert affected == on_cable and affected
    fabric.link_down(u, v)
    for n in affected:
        new = fabric.router().switch_path(*pairs[n])
        assert frozenset((u, v)) not in {frozenset(c) for c in pairwise(new)}


def test_hedera_patterns():
    hosts = list(range(16))
    assert stride(hosts, 4)[15] == (15, 3)
    bij = random_bijective(hosts, random.Random(3))
    assert sorted(d for _, d in bij) == hosts and all(s != d for s, d in bij)
    for name in ("staggered(0.2,0.3)", "random", "randbij", "stride8"):
        flows = pattern(name, hosts, 2, 4)
        assert len(flows) == 16 and all(s != d for s, d in flows)
    with pytest.raises(ValueError, match="unknown traffic pattern"):
        pattern("hotspot", hosts, 2, 4)


def test_demand_estimator_is_max_min_fair():
    # three senders into h0; h1 also sends to h5 (its NIC shares between two flows)
    flows = [(1, 0), (2, 0), (3, 0), (1, 5), (4, 6)]
    rates = estimate_demands(flows)
    assert rates == pytest.approx([1 / 3, 1 / 3, 1 / 3, 2 / 3, 1.0])
