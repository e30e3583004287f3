"""Offline single-path planning equals the controller's; shortest path, hash-based
ECMP and its fluid ideal, Global First Fit, the trail index and Hedera's traffic
patterns."""

import random
from itertools import pairwise

import pytest

from sdnscent.baselines import (
    Fabric,
    TrailIndex,
    controller_single,
    ecmp,
    ecmp_fluid,
    flow_hash,
    flow_tuple,
    global_first_fit,
    min_hop,
    shortest_path,
)
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


def test_ecmp_fluid_splits_equally_over_every_least_cost_path(ft4):
    net, fabric = ft4
    demand = Demand(net.index["h1"], net.index["h16"], 4.0)
    (trail,) = ecmp_fluid(fabric, [demand])
    assert len(trail.paths) == 4 and trail.weights == (0.25,) * 4
    assert len({p[3] for p in trail.paths}) == 4  # through each of the four cores
    loads = arc_loads(net, [trail])
    assert max(loads) == 4.0 and sorted(set(loads)) == [0.0, 1.0, 2.0, 4.0]


def test_ecmp_puts_each_flow_on_the_path_its_5_tuple_hash_picks(ft4):
    net, fabric = ft4
    router = fabric.router()
    hosts = sorted(net.hosts)
    demands = [Demand(s, t, 1.0) for s in hosts for t in hosts if s != t]
    trails = ecmp(fabric, demands)
    for d, trail in zip(demands, trails, strict=True):
        assert trail.weights == (1.0,)  # one flow: one path, whole
        paths = router.least_cost_paths(d.src, d.dst)
        five = flow_tuple(fabric, d, 0)
        assert five == (fabric.hosts[d.src].ip, fabric.hosts[d.dst].ip, 6, 49152, 5001)
        assert trail.paths == (paths[flow_hash(five) % len(paths)],)
    assert ecmp(fabric, demands) == trails  # deterministic
    # hashed ECMP is neither the controller's pick (hash of the MAC pair) nor the fluid split
    single = controller_single(fabric, demands)
    assert sum(a.paths != b.paths for a, b in zip(trails, single, strict=True)) > len(demands) / 2
    reseeded = ecmp(fabric, demands, seed=1)
    assert sum(a.paths != b.paths for a, b in zip(trails, reseeded, strict=True)) > 0


def test_ecmp_hashes_every_flow_of_a_pair_separately(ft4):
    net, fabric = ft4
    d = Demand(net.index["h1"], net.index["h16"], 8.0)
    (trail,) = ecmp(fabric, [d], flows=64)
    assert len(trail.paths) == 4 and sum(trail.weights) == pytest.approx(1.0)
    assert all(w * 64 == round(w * 64) and 0.1 < w < 0.45 for w in trail.weights)
    # two demands of one pair are flows 0 and 1 of the pair, as flows=2 on one demand
    (both,) = ecmp(fabric, [d], flows=2)
    first, second = ecmp(fabric, [d, d])
    assert set(both.paths) == {*first.paths, *second.paths}
    paths = fabric.router().least_cost_paths(d.src, d.dst)
    assert second.paths == (paths[flow_hash(flow_tuple(fabric, d, 1)) % 4],)
    with pytest.raises(ValueError, match="flows must be at least 1"):
        ecmp(fabric, [d], flows=0)


def test_ecmp_keeps_to_the_applications_constraints():
    net = parse_network(fat_tree(4))
    fabric = Fabric(net, dmz_policy({"s1", "s2"}))
    hosts = sorted(net.hosts)
    demands = [Demand(s, t, 1.0, "payroll") for s in hosts for t in hosts if s != t]
    dmz = {net.index["s1"], net.index["s2"]}
    for trail in ecmp(fabric, demands, flows=4):
        assert all(not dmz & set(p) for p in trail.paths)


def test_shortest_path_is_fewest_hops_and_lowest_dpid(ft4):
    net, fabric = ft4
    hosts = sorted(net.hosts)
    demands = [Demand(s, t, 1.0) for s in hosts for t in hosts if s != t]
    for d, trail in zip(demands, min_hop(fabric, demands), strict=True):
        (path,) = trail.paths
        assert len(path) == len(fabric.router().path(d.src, d.dst))
        assert path == min(fabric.router().least_cost_paths(d.src, d.dst),
                           key=lambda p: [fabric.dpid.get(n, 0) for n in p])
    # every pod-to-pod flow crosses core s1: deterministic, no spreading at all
    h1, h16 = net.index["h1"], net.index["h16"]
    assert net.ids[min_hop(fabric, [Demand(h1, h16, 1.0)])[0].paths[0][3]] == "s1"


def test_shortest_path_counts_hops_not_costs():
    # a-b-c is two hops of short links, a-c one long hop: fewest hops is a-c whatever it costs
    data = {"nodes": [{"id": n} for n in "abc"],
            "links": [{"source": "a", "target": "b", "latency": 1e-6},
                      {"source": "b", "target": "c", "latency": 1e-6},
                      {"source": "a", "target": "c", "latency": 0.5}]}
    net = parse_network(data)
    fabric = Fabric(net)
    a, c = net.index["a"], net.index["c"]
    assert min_hop(fabric, [Demand(a, c, 1.0)])[0].paths == ((a, c),)
    assert fabric.router().path(a, c) == (a, net.index["b"], c)  # the controller weighs latency


def test_shortest_path_alias_is_the_controllers_single_path():
    assert shortest_path is controller_single


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
