"""The trail planner: shortest paths, deterministic spread, cost steering, hop ports."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sdnscent.planner import CostModel, NoPathError, Planner
from sdnscent.topology import Host, Link, Port, Topology, dpid_str

TESTS = Path(__file__).resolve().parent

HOST_A = Host("00:00:00:00:00:0a", "10.0.0.10", 1, 10)
HOST_B = Host("00:00:00:00:00:0b", "10.0.0.11", 4, 10)


def two_routes() -> Topology:
    """s1 to s4 two ways: short via s2 (s1:1 -> s2, s2:2 -> s4), long via s3, s5 (s1:2 ...)."""
    topo = Topology()
    for dpid in range(1, 6):
        topo.add_switch(dpid, {p: Port(p) for p in (1, 2, 10)})
    for a, pa, b, pb in [(1, 1, 2, 1), (2, 2, 4, 1), (1, 2, 3, 1), (3, 2, 5, 1), (5, 2, 4, 2)]:
        topo.add_link(a, pa, b, pb)
        topo.add_link(b, pb, a, pa)
    topo.add_host(HOST_A.mac, HOST_A.ip, HOST_A.dpid, HOST_A.port)
    topo.add_host(HOST_B.mac, HOST_B.ip, HOST_B.dpid, HOST_B.port)
    return topo


def set_latency(topo: Topology, src: int, src_port: int, seconds: float) -> None:
    """Give the link leaving (src, src_port) a latency."""
    topo.set_link_attrs(src, src_port, latency=seconds)


def host(topo: Topology, fat_tree, n: int) -> Host:
    return topo.hosts[fat_tree.host(n).mac]


def test_edge_to_edge_in_another_pod_crosses_5_switches_and_in_the_same_pod_3(fat_tree) -> None:
    topo = fat_tree.topology()
    planner = Planner(topo)
    # s7 and s8 are pod 0's edge switches, s11 is in pod 1.
    assert len(planner.switch_path(7, 11)) == 5
    assert len(planner.switch_path(7, 8)) == 3
    assert planner.switch_path(7, 7) == [7]
    assert len(planner.equal_cost_paths(7, 11)) == 4  # one per core switch
    assert planner.equal_cost_paths(7, 8) == [[7, 5, 8], [7, 6, 8]]


def test_every_host_pair_gets_hops_that_follow_real_links(fat_tree, check_hops) -> None:
    topo = fat_tree.topology()
    planner = Planner(topo)
    for a in fat_tree.hosts:
        for b in fat_tree.hosts:
            if a == b:
                continue
            hops = planner.host_hops(host(topo, fat_tree, a.n), host(topo, fat_tree, b.n))
            check_hops(topo, hops, a, b)
            pod_a, pod_b = (a.dpid - 5) // 4, (b.dpid - 5) // 4
            expect = 1 if a.dpid == b.dpid else 3 if pod_a == pod_b else 5
            assert len(hops) == expect, (a.n, b.n, hops)


def test_hosts_on_one_switch_get_a_single_hop_from_port_to_port(fat_tree) -> None:
    topo = fat_tree.topology()
    hops = Planner(topo).host_hops(host(topo, fat_tree, 1), host(topo, fat_tree, 2))
    assert [(h.dpid, h.in_port, h.out_port) for h in hops] == [(7, 1, 2)]


def test_choice_among_equal_paths_is_the_same_on_every_planner(fat_tree) -> None:
    topo = fat_tree.topology()
    pairs = [(a, b) for a in (1, 2) for b in (5, 6, 16)]
    first = Planner(topo)
    answers = [first.host_hops(host(topo, fat_tree, a), host(topo, fat_tree, b)) for a, b in pairs]
    again = [first.host_hops(host(topo, fat_tree, a), host(topo, fat_tree, b)) for a, b in pairs]
    fresh = Planner(fat_tree.topology())
    other = [fresh.host_hops(host(topo, fat_tree, a), host(topo, fat_tree, b)) for a, b in pairs]
    assert answers == again == other


def test_choice_does_not_depend_on_the_order_links_were_discovered(fat_tree) -> None:
    topo = fat_tree.topology()
    shuffled = Topology()
    for dpid in reversed(fat_tree.switches):
        shuffled.add_switch(dpid, {p.number: p for p in fat_tree.ports(dpid)})
    for a, pa, b, pb in reversed(fat_tree.cables):
        shuffled.add_link(b, pb, a, pa)
        shuffled.add_link(a, pa, b, pb)
    for h in fat_tree.hosts:
        shuffled.add_host(h.mac, h.ip, h.dpid, h.port)
    p1, p2 = Planner(topo), Planner(shuffled)
    for a in (1, 3, 7):
        for b in (5, 10, 16):
            h1, h2 = host(topo, fat_tree, a), host(topo, fat_tree, b)
            assert p1.host_hops(h1, h2) == p2.host_hops(h1, h2)


def test_choice_is_the_same_in_another_process_with_another_hash_seed(fat_tree) -> None:
    topo = fat_tree.topology()
    planner = Planner(topo)
    here = [[h.dpid for h in planner.host_hops(host(topo, fat_tree, a), host(topo, fat_tree, b))]
            for a in (1, 2, 3) for b in (5, 9, 14)]
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(TESTS)!r})\n"
        "from conftest import build_fat_tree\n"
        "from sdnscent.planner import Planner\n"
        "ft = build_fat_tree(4)\n"
        "topo = ft.topology()\n"
        "p = Planner(topo)\n"
        "h = lambda n: topo.hosts[ft.host(n).mac]\n"
        "print(json.dumps([[x.dpid for x in p.host_hops(h(a), h(b))]"
        " for a in (1, 2, 3) for b in (5, 9, 14)]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=60)
    assert json.loads(out.stdout) == here


def test_host_pairs_between_two_edge_switches_spread_over_several_cores(fat_tree) -> None:
    topo = fat_tree.topology()
    planner = Planner(topo)
    shortest = planner.equal_cost_paths(7, 11)
    chosen = set()
    for a in (1, 2):  # on s7
        for b in (5, 6):  # on s11
            path = tuple(h.dpid for h in planner.host_hops(host(topo, fat_tree, a),
                                                           host(topo, fat_tree, b)))
            assert list(path) in shortest
            chosen.add(path)
    assert len(chosen) > 1, chosen


def test_latency_cost_is_counted_per_millisecond() -> None:
    cost = CostModel(hop_weight=1.0, latency_weight=2.0, load_weight=4.0)
    assert cost.link_cost(Link(1, 1, 2, 1, latency=0.005)) == pytest.approx(1 + 2 * 5)
    assert cost.link_cost(Link(1, 1, 2, 1), utilisation=0.5) == pytest.approx(1 + 4 * 0.5)


def test_high_latency_link_is_avoided_even_at_the_price_of_more_hops() -> None:
    topo = two_routes()
    assert Planner(topo).switch_path(1, 4) == [1, 2, 4]
    set_latency(topo, 1, 1, 0.010)  # 10 ms on s1 -> s2
    hops = Planner(topo).host_hops(HOST_A, HOST_B)
    assert [h.dpid for h in hops] == [1, 3, 5, 4]
    assert hops[0].out_port == 2
    # The other direction of that cable is still fast.
    assert Planner(topo).switch_path(4, 1) == [4, 2, 1]


def test_low_latency_does_not_outweigh_an_extra_hop() -> None:
    topo = two_routes()
    set_latency(topo, 1, 1, 0.0005)  # 0.5 ms: cost 1.5 + 1 < 3 hops
    assert Planner(topo).switch_path(1, 4) == [1, 2, 4]


def test_heavily_used_link_is_avoided_and_a_lightly_used_one_is_not() -> None:
    topo = two_routes()
    assert Planner(topo, utilisation={(1, 1): 0.2}).switch_path(1, 4) == [1, 2, 4]
    assert Planner(topo, utilisation={(1, 1): 0.9}).switch_path(1, 4) == [1, 3, 5, 4]
    assert Planner(topo, utilisation={(2, 2): 0.9}).switch_path(1, 4) == [1, 3, 5, 4]


def test_of_parallel_links_the_less_used_one_carries_the_hop() -> None:
    topo = two_routes()
    topo.set_port(1, Port(3))
    topo.set_port(2, Port(3))
    topo.add_link(1, 3, 2, 3)
    planner = Planner(topo, utilisation={(1, 1): 0.3})
    hops = planner.host_hops(HOST_A, HOST_B)
    assert (hops[0].out_port, hops[1].in_port) == (3, 3)


def test_load_below_a_step_leaves_equal_paths_equal() -> None:
    """A flow that ended a few seconds ago leaves a smoothed residue on its links;
    it must not make the other path the only choice of every new trail."""
    topo = two_routes()
    topo.set_port(1, Port(3))
    topo.set_port(2, Port(3))
    topo.add_link(1, 3, 2, 3)
    residue = Planner(topo, utilisation={(1, 1): 0.2})
    assert len(residue.equal_cost_paths(1, 2)) == 1  # the parallel links join the same pair
    assert residue.link_for(1, 2).src_port == 1  # the lower port among equals
    assert Planner(topo, utilisation={(1, 1): 0.3}).link_for(1, 2).src_port == 3
    exact = Planner(topo, CostModel(load_step=0), utilisation={(1, 1): 0.2})
    assert exact.link_for(1, 2).src_port == 3


def test_utilisation_updated_after_planning_steers_the_next_plan() -> None:
    topo = two_routes()
    planner = Planner(topo)
    assert planner.switch_path(1, 4) == [1, 2, 4]
    planner.utilisation = {(1, 1): 0.9}  # new link load measured; topology unchanged
    assert planner.switch_path(1, 4) == [1, 3, 5, 4]


def test_cut_fabric_raises_no_path_naming_both_switches(fat_tree) -> None:
    topo = fat_tree.topology()
    for agg in fat_tree.aggs[1]:  # cut pod 1 off the cores
        for port in (3, 4):
            topo.remove_port(agg, port)
    planner = Planner(topo)
    message = f"no path from switch {dpid_str(7)} to {dpid_str(11)}"
    with pytest.raises(NoPathError, match=re.escape(message)):
        planner.host_hops(host(topo, fat_tree, 1), host(topo, fat_tree, 5))
    # Inside the pod and between the other pods, paths remain.
    assert len(planner.host_hops(host(topo, fat_tree, 5), host(topo, fat_tree, 7))) == 3
    assert len(planner.host_hops(host(topo, fat_tree, 1), host(topo, fat_tree, 9))) == 5


def test_unknown_switch_and_trail_to_itself_raise_no_path(fat_tree) -> None:
    topo = fat_tree.topology()
    planner = Planner(topo)
    with pytest.raises(NoPathError, match=f"unknown switch {dpid_str(99)}"):
        planner.switch_path(99, 99)
    with pytest.raises(NoPathError, match=f"to {dpid_str(99)}"):
        planner.switch_path(7, 99)
    h1 = host(topo, fat_tree, 1)
    with pytest.raises(NoPathError, match="trail from host 10.0.0.1 to itself"):
        planner.host_hops(h1, h1)


def test_a_link_going_away_is_seen_by_the_next_plan(fat_tree) -> None:
    topo = fat_tree.topology()
    planner = Planner(topo)
    assert len(planner.equal_cost_paths(7, 11)) == 4
    topo.remove_port(7, 3)  # s7 -> s5
    paths = planner.equal_cost_paths(7, 11)
    assert len(paths) == 2 and all(p[1] == 6 for p in paths)


def test_request_and_reply_take_mirror_paths_on_a_fat_tree() -> None:
    from tests.conftest import build_fat_tree

    topo = build_fat_tree(4).topology()
    planner = Planner(topo)
    hosts = list(topo.hosts.values())
    for src in hosts:
        for dst in hosts:
            if src.mac < dst.mac:
                there = [h.dpid for h in planner.host_hops(src, dst)]
                back = [h.dpid for h in planner.host_hops(dst, src)]
                assert back == there[::-1], (src.ip, dst.ip, there, back)
