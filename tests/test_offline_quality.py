"""Honest offline tables (issue 14): integral placements against the splittable LP
bound, the planner the controller runs, and per-pair / per-destination entries."""

import pytest

from benchmarks import quality, speed
from sdnscent.baselines import Fabric, controller_single, ecmp, global_first_fit, min_hop
from sdnscent.mcf import min_max_utilization
from sdnscent.netfile import Demand, Trail, arc_loads, fat_tree, max_utilization, parse_network
from sdnscent.traffic import PATTERNS, demand_matrix, pattern

TOL = 1e-6


def _net(k: int):
    return parse_network(fat_tree(k), f"fat-tree k={k}")


def _mlu(net, trails) -> float:
    return max_utilization(net, arc_loads(net, trails))


def _integral(net, demands) -> dict[str, float]:
    fabric = Fabric(net)
    static = controller_single(fabric, demands)
    plans = {"SP": min_hop(fabric, demands), "static": static,
             "ECMP": ecmp(fabric, demands), "GFF": global_first_fit(fabric, demands),
             "place": quality.placement(fabric, demands, static),
             "place-all": quality.placement(fabric, demands, static, None)}
    for trails in plans.values():
        assert all(len(t.paths) == 1 for t in trails)  # one path per flow
    out = {name: _mlu(net, trails) for name, trails in plans.items()}
    out["LP"] = min_max_utilization(fabric, demands, out["static"]).value
    return out


def test_natural_demands_are_hedera_estimates():
    net = _net(4)
    for name in PATTERNS:
        got = {(d.src, d.dst): d.rate for d in quality.fat_tree_demands(net, 4, name, 1)}
        hosts = [net.ids[i] for i in sorted(net.hosts)]
        want = demand_matrix(pattern(name, hosts, 2, 4, 1), 1e9)
        assert got == pytest.approx({(net.index[s], net.index[t]): r
                                     for s, row in want.items() for t, r in row.items()})


@pytest.mark.parametrize("name", PATTERNS)
def test_k4_integral_never_beat_the_lp_and_placement_never_worse_than_gff(name):
    net = _net(4)
    r = _integral(net, quality.fat_tree_demands(net, 4, name, 1))
    for method in ("SP", "static", "ECMP", "GFF", "place", "place-all"):
        assert r[method] >= r["LP"] * (1 - TOL), method
    assert r["place"] <= r["GFF"] * (1 + TOL)
    assert r["place-all"] <= r["GFF"] * (1 + TOL)


@pytest.mark.parametrize("name", ["stride4", "stride8", "staggered(0.2,0.3)"])
def test_k8_placement_over_gffs_paths_never_worse_than_gff(name):
    net = _net(8)
    demands = quality.fat_tree_demands(net, 8, name, 1)
    fabric = Fabric(net)
    static = controller_single(fabric, demands)
    gff = _mlu(net, global_first_fit(fabric, demands))
    placed = _mlu(net, quality.placement(fabric, demands, static, None))
    assert placed <= gff * (1 + TOL)
    assert placed >= 1.0 - TOL  # the LP bound of every Hedera pattern: full NICs


def test_aggregate_is_max_min_fair_and_capped_at_the_demand():
    net = parse_network({"directed": True, "nodes": [{"id": n} for n in "abc"],
                         "links": [{"source": "a", "target": "b", "capacity": 10.0},
                                   {"source": "b", "target": "c", "capacity": 4.0}]}, "line")
    a, b, c = (net.index[n] for n in "abc")
    through = Trail(Demand(a, c, 10.0), ((a, b, c),), (1.0,))
    short = Trail(Demand(a, b, 3.0), ((a, b),), (1.0,))
    # a->c gets 4 (b->c full), a->b its 3: 7 of 13
    assert quality.aggregate(net, [through, short]) == pytest.approx(7 / 13)
    assert quality.aggregate(net, [short]) == pytest.approx(1.0)


def test_quality_tables_label_the_lp_as_a_bound(capsys):
    quality.main(["--k", "4", "--wan", "--no-bars"])
    out = capsys.readouterr().out
    assert "LP bound" in out and "bound" in out.splitlines()[1]
    assert "integral methods at or above the LP bound everywhere: yes" in out
    assert "multipath" not in out.splitlines()[1]  # no splittable competitor column


def test_speed_times_the_controllers_planner(capsys):
    speed.main(["--k", "4", "--repeat", "1", "--cold", "5", "--pairs", "60", "--setup", "30"])
    out = capsys.readouterr().out
    for row in ("Planner.host_hops, uncached", "Planner.host_hops, cached",
                "plan_app_hops (policy), uncached", "plan_app_hops (policy), cached",
                "baselines.Router", "ensure_trail, --routing static",
                "ensure_trail, --routing scent"):
        assert row in out, row


def test_entries_baselines_are_per_pair_and_per_destination():
    dataplane = pytest.importorskip("benchmarks.dataplane")
    e = dataplane.entries_per_switch(flows=100, pairs=8)
    assert e["per_dst_total"] <= e["per_pair_total"] <= e["trails_total"]
    assert e["per_pair_total"] <= e["per_flow_total"]
    assert e["per_dst_max"] <= e["per_pair_max"]
