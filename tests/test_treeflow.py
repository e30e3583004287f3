"""--mode fast (treeflow): its bound against the full LP on small instances:
bound <= LP optimum <= planner's max utilisation <= (1 + gap) x bound."""

import io
import json

import networkx as nx
import numpy as np
import pytest

from sdnscent.baselines import Fabric
from sdnscent.cli import main
from sdnscent.fastplan import fast
from sdnscent.mcf import min_max_utilization
from sdnscent.netfile import Demand, arc_loads, fat_tree, max_utilization, parse_network, write_plan


def wan(seed, n=14, degree=3):
    g = nx.random_regular_graph(degree, n, seed=seed)
    rng = np.random.default_rng(seed)
    data = {"directed": False, "nodes": [{"id": f"n{i}"} for i in g],
            "links": [{"source": f"n{u}", "target": f"n{v}",
                       "capacity": float(rng.choice([1e9, 2.5e9, 10e9]))} for u, v in g.edges]}
    net = parse_network(data)
    deg = [len(net.out_arcs[i]) for i in range(len(net.ids))]
    demands = [Demand(s, t, 1e6 * deg[s] * deg[t]) for s in range(len(net.ids))
               for t in range(len(net.ids)) if s != t]
    return net, demands


def fat_tree_case(seed):
    net = parse_network(fat_tree(4))
    hosts = sorted(net.hosts)
    rng = np.random.default_rng(seed)
    demands = [Demand(h, int(t), float(rng.uniform(1e8, 1e9)))
               for h in hosts for t in rng.choice([x for x in hosts if x != h], 3,
                                                  replace=False)]
    return net, demands


CASES = [("wan", s) for s in range(4)] + [("fat-tree", s) for s in range(2)]


@pytest.mark.parametrize(("kind", "seed"), CASES)
def test_bound_below_lp_below_plan_within_the_reported_gap(kind, seed):
    net, demands = wan(seed) if kind == "wan" else fat_tree_case(seed)
    fabric = Fabric(net)
    plan = fast(fabric, demands, gap=0.01)
    lp = min_max_utilization(fabric, demands).value
    sol = plan.solution
    assert sol.bound <= lp * (1 + 1e-6)
    assert lp <= sol.value * (1 + 1e-6)
    assert sol.value <= 1.01 * sol.bound * (1 + 1e-9)
    assert sol.gap == pytest.approx(sol.value / sol.bound - 1)
    # the trails carry exactly the reported loads
    trails = list(plan.trails())
    assert len(trails) == len(demands)
    for t in trails:
        assert sum(t.weights) == pytest.approx(1.0)
        for p in t.paths:
            assert p[0] == t.demand.src and p[-1] == t.demand.dst
    assert arc_loads(net, trails) == pytest.approx(plan.loads, rel=1e-6, abs=1e-3)
    assert max_utilization(net, plan.loads) == pytest.approx(sol.value)


def test_a_time_limit_still_returns_a_plan_with_a_valid_bound():
    net, demands = wan(7, n=20)
    fabric = Fabric(net)
    plan = fast(fabric, demands, gap=1e-9, time_limit=0.05)
    lp = min_max_utilization(fabric, demands).value
    assert plan.solution.bound <= lp * (1 + 1e-6) <= plan.solution.value * (1 + 1e-6)


def test_streamed_json_is_plan_json(tmp_path):
    net, demands = wan(1)
    plan = fast(Fabric(net), demands)
    out = io.StringIO()
    write_plan(out, net, plan.trails(), plan.loads, {"mode": "fast"}, pretty=True)
    doc = json.loads(out.getvalue())
    assert len(doc["trails"]) == len(demands) and doc["mode"] == "fast"
    assert doc["max_utilization"] == pytest.approx(plan.solution.value)


def test_cli_fast_mode_reports_bound_and_gap(tmp_path, capsys):
    net_data = fat_tree(4)
    hosts = [n["id"] for n in net_data["nodes"] if n.get("type") == "host"]
    net_data["graph"]["demands"] = {h: {hosts[(i + 5) % 16]: 5e8} for i, h in enumerate(hosts)}
    topo = tmp_path / "ft.json"
    topo.write_text(json.dumps(net_data))
    out = tmp_path / "plan.json"
    assert main(["plan", "--topology", str(topo), "--mode", "fast", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["mode"] == "fast"
    assert doc["bound"] <= doc["baselines"]["max_utilization"]["optimal"] * (1 + 1e-6)
    assert doc["max_utilization"] <= doc["baselines"]["max_utilization"]["single"] + 1e-9
    assert doc["max_utilization"] <= (1 + doc["gap"]) * doc["bound"] * (1 + 1e-9)
    assert main(["plan", "--topology", str(topo), "--mode", "fast", "--no-baselines",
                 "--time-limit", "5"]) == 0
    assert json.loads(capsys.readouterr().out)["max_utilization"] == pytest.approx(0.5)
