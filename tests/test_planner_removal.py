"""The planner follows links coming and going without starting over, and answers
exactly as a planner built afresh on the same topology would."""

from __future__ import annotations

import random

import pytest

from sdnscent.planner import CostModel, Planner
from sdnscent.topology import Link, Port, Topology
from tests.conftest import build_fat_tree


def answers(planner: Planner, topo: Topology) -> dict[tuple[int, int], list[list[int]]]:
    """Every switch pair's least-cost paths (the cached planner is asked first)."""
    return {(a, b): planner.equal_cost_paths(a, b)
            for a in sorted(topo.switches) for b in sorted(topo.switches) if a != b}


def links_of(planner: Planner, topo: Topology) -> dict[tuple[int, int], int]:
    """The port link_for picks for every linked switch pair."""
    return {(lk.src, lk.dst): planner.link_for(lk.src, lk.dst).src_port for lk in topo.links()}


def mesh(seed: int) -> Topology:
    """A random connected mesh of 12 switches with some parallel links and latencies."""
    rng = random.Random(seed)
    topo = Topology()
    for dpid in range(1, 13):
        topo.add_switch(dpid, {p: Port(p) for p in range(1, 30)})
    ports = dict.fromkeys(range(1, 13), 1)

    def cable(a: int, b: int, latency: float) -> None:
        pa, pb = ports[a], ports[b]
        ports[a] += 1
        ports[b] += 1
        topo.add_link(a, pa, b, pb)
        topo.add_link(b, pb, a, pa)
        topo.set_link_attrs(a, pa, latency=latency)
        topo.set_link_attrs(b, pb, latency=latency)

    for dpid in range(2, 13):  # a spanning tree, then chords and parallel cables
        cable(dpid, rng.randrange(1, dpid), rng.choice((0.0, 0.001)))
    for _ in range(14):
        a, b = rng.sample(range(1, 13), 2)
        cable(a, b, rng.choice((0.0, 0.0, 0.001, 0.002)))
    return topo


@pytest.mark.parametrize("seed", range(8))
def test_after_links_come_and_go_every_answer_equals_a_fresh_planner(seed: int) -> None:
    topo = mesh(seed)
    planner = Planner(topo)
    rng = random.Random(seed)
    answers(planner, topo)  # warm every cache
    down: list[Link] = []
    for _ in range(12):
        for _ in range(rng.choice((1, 1, 2, 3))):  # some changes come in one batch
            if down and rng.random() < 0.4:  # a link comes back
                link = down.pop(rng.randrange(len(down)))
                topo.add_link(link.src, link.src_port, link.dst, link.dst_port)
                continue
            gone = rng.choice(topo.links())
            if rng.random() < 0.5:  # a cable: both directions
                down += topo.remove_port(gone.src, gone.src_port)[0]
            else:  # one direction (its LLDP timed out)
                topo.remove_link(gone.src, gone.src_port)
                down.append(gone)
        fresh = Planner(topo)
        assert answers(planner, topo) == answers(fresh, topo)
        assert links_of(planner, topo) == links_of(fresh, topo)


def test_a_fat_tree_losing_cables_searches_again_only_where_distances_grew() -> None:
    topo = build_fat_tree(4).topology()  # cores 1-4; pod 0: aggregation 5, 6, edge 7, 8
    planner = Planner(topo)
    answers(planner, topo)
    searches = dict(planner._preds)
    for dpid, port in ((7, 3), (9, 4), (1, 1), (13, 3)):  # three up-links, a core port
        topo.remove_port(dpid, port)
        assert answers(planner, topo) == answers(Planner(topo), topo)
    # edge 7 now reaches aggregation 5 in three hops, core 1 reaches pod 0 through
    # another pod: searched again. Edge switches of the last pod reach everything
    # at the old distance: their searches are the ones made before the failures.
    assert planner._preds[7] is not searches[7] and planner._preds[1] is not searches[1]
    assert planner._preds[19] is searches[19] and planner._preds[20] is searches[20]


def test_a_switch_cut_off_is_searched_again_and_found_unreachable() -> None:
    topo = build_fat_tree(4).topology()
    planner = Planner(topo)
    answers(planner, topo)
    for port in (3, 4):  # edge switch 7 loses both up-links
        topo.remove_port(7, port)
    assert answers(planner, topo) == answers(Planner(topo), topo)
    assert planner.equal_cost_paths(8, 7) == []


def test_a_link_added_back_is_used_again() -> None:
    topo = build_fat_tree(4).topology()
    planner = Planner(topo)
    before = answers(planner, topo)
    link = topo.link_from(7, 3)
    assert link is not None
    topo.remove_port(7, 3)
    assert answers(planner, topo) != before
    topo.add_link(7, 3, link.dst, link.dst_port)
    topo.add_link(link.dst, link.dst_port, 7, 3)
    assert answers(planner, topo) == before


def test_zero_cost_links_make_the_planner_start_over() -> None:
    topo = mesh(1)
    planner = Planner(topo, CostModel(hop_weight=0.0, latency_weight=1.0))
    answers(planner, topo)
    gone = topo.links()[3]
    topo.remove_port(gone.src, gone.src_port)
    fresh = Planner(topo, CostModel(hop_weight=0.0, latency_weight=1.0))
    assert answers(planner, topo) == answers(fresh, topo)


def test_hosts_coming_and_going_leave_the_switch_graph_version_alone() -> None:
    topo = build_fat_tree(4).topology()
    version = topo.graph_version
    host = next(iter(topo.hosts.values()))
    topo.remove_host(host.mac)
    topo.add_host(host.mac, host.ip, host.dpid, host.port)
    assert topo.graph_version == version
    assert topo.link_changes_since(version) == []


def test_the_journal_lists_links_in_order_and_says_none_after_anything_else() -> None:
    topo = build_fat_tree(4).topology()
    start = topo.graph_version
    first = topo.remove_link(7, 3)
    assert first is not None
    assert topo.link_changes_since(start) == [(False, first)]
    back = topo.add_link(7, 3, first.dst, first.dst_port)
    assert topo.link_changes_since(start) == [(False, first), (True, back)]
    topo.set_link_attrs(7, 3, latency=0.001)
    assert topo.link_changes_since(start) is None
    assert topo.link_changes_since(-1) is None


def test_utilisation_within_a_step_keeps_the_searches_and_a_new_step_steers() -> None:
    topo = build_fat_tree(4).topology()
    planner = Planner(topo)
    before = answers(planner, topo)
    searches = dict(planner._preds)
    planner.utilisation = {(7, 3): 0.2, (5, 1): 0.1}  # below a step: costs unchanged
    assert planner._preds == searches and answers(planner, topo) == before
    planner.utilisation = {(7, 3): 0.6}  # two steps on edge 7's link to aggregation 5
    assert planner._preds != searches
    assert all(path[1] == 6 for path in planner.equal_cost_paths(7, 11))
    assert answers(planner, topo) == answers(Planner(topo, utilisation={(7, 3): 0.6}), topo)


def test_parallel_links_coming_back_together_are_followed_from_the_cached_costs() -> None:
    # s1 -> s2 directly over two parallel links (port 2: 0.5 ms), or through s3.
    topo = Topology()
    for dpid in (1, 2, 3):
        topo.add_switch(dpid, {p: Port(p) for p in range(1, 5)})
    for a, pa, b, pb in ((1, 1, 2, 1), (1, 2, 2, 2), (1, 3, 3, 1), (3, 2, 2, 3)):
        topo.add_link(a, pa, b, pb)
        topo.add_link(b, pb, a, pa)
    topo.set_link_attrs(1, 2, latency=0.0005)
    planner = Planner(topo)
    assert planner.equal_cost_paths(1, 2) == [[1, 2]]
    cheap, dear = topo.link_from(1, 1), topo.link_from(1, 2)
    assert cheap is not None and dear is not None
    topo.remove_link(1, 1)
    assert planner.equal_cost_paths(1, 2) == [[1, 2]]  # over port 2 now: 1.5 < 2 hops
    topo.remove_link(1, 2)
    assert planner.equal_cost_paths(1, 2) == [[1, 3, 2]]
    # both come back before the planner is asked again; the dear one has lost its
    # latency (a re-discovered link starts without one), so the two now cost the same
    topo.add_link(1, 1, cheap.dst, cheap.dst_port)
    topo.add_link(1, 2, dear.dst, dear.dst_port)
    assert answers(planner, topo) == answers(Planner(topo), topo)
    assert planner.equal_cost_paths(1, 2) == [[1, 2]]


def test_a_shortcut_reaches_answers_whose_source_lost_its_search() -> None:
    # s1 reaches s3 over s2 or s6; s7 hangs off s1 alone.
    topo = Topology()
    for dpid in (1, 2, 3, 6, 7):
        topo.add_switch(dpid, {p: Port(p) for p in range(1, 6)})
    for a, pa, b, pb in ((1, 1, 2, 1), (2, 2, 3, 1), (1, 2, 6, 1), (6, 2, 3, 2), (1, 3, 7, 1)):
        topo.add_link(a, pa, b, pb)
    planner = Planner(topo)
    assert planner.equal_cost_paths(1, 3) == [[1, 2, 3], [1, 6, 3]]
    topo.remove_link(1, 3)  # s7 is cut off: s1's search is dropped, its answers kept
    assert planner.equal_cost_paths(1, 3) == [[1, 2, 3], [1, 6, 3]]
    topo.add_link(1, 4, 3, 3)  # a direct link: one hop beats both
    assert planner.equal_cost_paths(1, 3) == [[1, 3]]
