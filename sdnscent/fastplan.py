"""`sdnscent plan --mode fast`: min-max utilisation at WAN scale (sdnscent/treeflow.py)
with a proven bound, for a Fabric's demands under its policy.

Commodities are (source, application) pairs; an application's trees use only
the arcs its constraints allow (latency bounds are relaxed, as in the LP of
mcf.py) and start from its least-cost tree under the planner's costs. Trails
come out lazily, one per demand in input order, so a plan of half a million
trails is never held in memory as objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .baselines import Fabric, PlanError
from .netfile import Demand, Trail
from .treeflow import Problem, Solution, Unroutable, solve

HOST_ARC_COST = 1.0  # host links are on every path of their demands: any positive cost


@dataclass
class FastPlan:
    """The routing (per commodity weighted trees), its value and bound."""

    problem: Problem
    solution: Solution
    commodity: dict[tuple[int, str | None], int]
    demands: Sequence[Demand]

    @property
    def loads(self) -> list[float]:
        """Load (bit/s) on every arc of the network."""
        return self.solution.loads.tolist()

    def trails(self) -> Iterator[Trail]:
        """One trail per demand, in input order: the tree paths to its destination,
        weighted by their trees' shares (equal paths merged)."""
        sol = self.solution
        by_owner: dict[int, list[int]] = {}
        for j, k in enumerate(sol.owner.tolist()):
            by_owner.setdefault(k, []).append(j)
        preds = [row.tolist() for row in sol.pred]  # list lookups beat numpy scalars here
        weights = sol.weight.tolist()
        for d in self.demands:
            k = self.commodity[(d.src, d.app)]
            paths: dict[tuple[int, ...], float] = {}
            for j in by_owner[k]:
                pred = preds[j]
                node, path = d.dst, [d.dst]
                while node != d.src:
                    node = pred[node]
                    path.append(node)
                key = tuple(reversed(path))
                paths[key] = paths.get(key, 0.0) + weights[j]
            total = sum(paths.values())
            yield Trail(d, tuple(paths), tuple(w / total for w in paths.values()))


def build_problem(fabric: Fabric, demands: Sequence[Demand]
                  ) -> tuple[Problem, dict[tuple[int, str | None], int]]:
    """The tree-flow problem of `demands`: one commodity per (source, application)."""
    net = fabric.net
    n, m = len(net.ids), len(net.arcs)
    commodity: dict[tuple[int, str | None], int] = {}
    for d in demands:
        commodity.setdefault((d.src, d.app), len(commodity))
    apps = list(dict.fromkeys(app for _, app in commodity))
    demand = np.zeros((len(commodity), n))
    rows = np.fromiter((commodity[(d.src, d.app)] for d in demands), np.int64, len(demands))
    dsts = np.fromiter((d.dst for d in demands), np.int64, len(demands))
    rates = np.fromiter((d.rate for d in demands), float, len(demands))
    np.add.at(demand, (rows, dsts), rates)
    allowed, cost = [], []
    for app in apps:
        allowed.append(np.array(fabric.allowed_arcs(app), dtype=np.int64))
        lengths = np.full(m, HOST_ARC_COST)
        for arc, c in fabric.arc_cost(app).items():
            lengths[arc] = c
        cost.append(lengths)
    group = np.array([apps.index(app) for _, app in commodity], dtype=np.int64)
    sources = np.array([src for src, _ in commodity], dtype=np.int64)
    problem = Problem(n, np.array([a.u for a in net.arcs]), np.array([a.v for a in net.arcs]),
                      np.array([a.capacity for a in net.arcs]), sources, demand, group,
                      allowed, cost)
    return problem, commodity


def fast(fabric: Fabric, demands: Sequence[Demand], gap: float = 0.01,
         time_limit: float | None = None, log: Callable[[str], None] | None = None) -> FastPlan:
    """Plan `demands` to within `gap` of the minimum maximum utilisation (or the best
    within `time_limit` seconds), with the bound that proves it."""
    if not demands:
        raise PlanError("no demands to plan")
    problem, commodity = build_problem(fabric, demands)
    try:
        solution = solve(problem, gap=gap, time_limit=time_limit, log=log)
    except Unroutable as exc:
        src, app = next(key for key, k in commodity.items() if k == exc.commodity)
        ids = fabric.net.ids
        raise PlanError(f"no path from {ids[src]!r} to {ids[exc.node]!r}"
                        + (f" for application {app!r}" if app else "")) from None
    return FastPlan(problem, solution, commodity, demands)
