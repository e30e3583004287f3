"""The planner's multipath mode: split each demand over a few paths, with weights
that minimise the maximum link utilisation under the policy's constraints.

A path-based LP solved by column generation (HiGHS through scipy): start from
the least-cost paths the controller would hash over, solve the restricted
LP, price new paths with one shortest-path search per source under the link
prices (the LP's duals), add every path that would lower the objective, and
repeat until none would. With every path allowed the path LP equals the arc
LP (mcf.py), so the result is optimal up to the solver's tolerance; a basic
solution splits at most (links at the maximum) demands, so most trails keep
one path. A tiny second term (EPSILON x mean path stretch) prefers short
paths among equally good splits. Latency bounds are checked on each priced
path; one that fails is not added.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import dijkstra

from .baselines import Fabric, PlanError, Progress
from .mcf import reference_utilization
from .netfile import Demand, Trail

EPSILON = 1e-4  # weight of the path-length term against max utilisation / reference
INITIAL_PATHS = 16  # least-cost paths per demand in the first LP
MAX_ROUNDS = 200
MIN_WEIGHT = 1e-6  # a share below this is dropped and the rest renormalised
HOST_ARC_COST = 1.0  # host links are on every path of a demand: any positive cost will do

Log = Callable[[str], None]


@dataclass
class MultipathResult:
    """Trails, the LP value (max utilisation of the fractional optimum found) and effort."""

    trails: list[Trail]
    value: float
    rounds: int
    columns: int
    seconds: float
    stats: dict[str, float] = field(default_factory=dict)


class _Master:
    """The restricted master LP: columns are (demand, path) pairs."""

    def __init__(self, fabric: Fabric, demands: Sequence[Demand], upper: float) -> None:
        self.fabric, self.demands, self.upper = fabric, demands, upper
        net = fabric.net
        self.total = sum(d.rate for d in demands)
        self.cost: dict[str | None, dict[int, float]] = {}
        for app in {d.app for d in demands}:
            cost = {a: HOST_ARC_COST for a in fabric.allowed_arcs(app)}
            cost.update(fabric.arc_cost(app))
            self.cost[app] = cost
        self.cols: list[tuple[int, tuple[int, ...], list[int]]] = []  # (demand, path, arcs)
        self.seen: set[tuple[int, tuple[int, ...]]] = set()
        self.obj: list[float] = []
        self.rows: dict[int, int] = {}  # arc -> inequality row
        self.ub: tuple[list[int], list[int], list[float]] = ([], [], [])
        self.cbar = 1.0
        self.caps = [a.capacity for a in net.arcs]

    def add(self, c: int, path: tuple[int, ...]) -> bool:
        if (c, path) in self.seen:
            return False
        self.seen.add((c, path))
        d = self.demands[c]
        arcs = self.fabric.net.path_arcs(path)
        col = len(self.cols)
        self.cols.append((c, path, arcs))
        cost = self.cost[d.app]
        self.obj.append(EPSILON * d.rate / self.total * sum(cost[a] for a in arcs) / self.cbar)
        rows, cols, vals = self.ub
        for a in arcs:
            row = self.rows.setdefault(a, len(self.rows))
            rows.append(row)
            cols.append(col)
            vals.append(d.rate / (self.caps[a] * self.upper))
        return True

    def solve(self) -> tuple[np.ndarray, float, np.ndarray, dict[int, float]]:
        """Solve; return (column values, mu, demand duals, arc -> price >= 0)."""
        n, m = len(self.cols), len(self.rows)
        mu = n
        rows, cols, vals = self.ub
        a_ub = coo_matrix((vals + [-1.0] * m, (rows + list(range(m)), cols + [mu] * m)),
                          shape=(m, n + 1)).tocsr()
        a_eq = coo_matrix(([1.0] * n, ([c for c, _, _ in self.cols], list(range(n)))),
                          shape=(len(self.demands), n + 1)).tocsr()
        c = np.array([*self.obj, 1.0])
        bounds = [(0, None)] * (n + 1)
        res = linprog(c, A_ub=a_ub, b_ub=np.zeros(m), A_eq=a_eq,
                      b_eq=np.ones(len(self.demands)), bounds=bounds, method="highs")
        if res.status != 0:
            raise PlanError(f"the multipath LP failed: {res.message}")
        prices = {a: -float(res.ineqlin.marginals[row]) for a, row in self.rows.items()}
        return res.x[:n], float(res.x[mu]), np.asarray(res.eqlin.marginals), prices


def _price(master: _Master, duals: np.ndarray, prices: dict[int, float]) -> int:
    """Add every path with a negative reduced cost; return how many were added."""
    fabric, demands = master.fabric, master.demands
    net = fabric.net
    n = len(net.ids)
    by_source: dict[tuple[str | None, int], list[int]] = defaultdict(list)
    for c, d in enumerate(demands):
        by_source[(d.app, d.src)].append(c)
    graphs: dict[str | None, csr_matrix] = {}
    added = 0
    for (app, src), members in by_source.items():
        if app not in graphs:
            cost = master.cost[app]
            arcs = sorted(cost)
            weight = [EPSILON * cost[a] / (master.total * master.cbar)
                      + prices.get(a, 0.0) / (master.caps[a] * master.upper) for a in arcs]
            graphs[app] = csr_matrix((weight, ([net.arcs[a].u for a in arcs],
                                               [net.arcs[a].v for a in arcs])), shape=(n, n))
        dist, pred = dijkstra(graphs[app], indices=src, return_predecessors=True)
        router = fabric.router(app)
        for c in members:
            d = demands[c]
            if not np.isfinite(dist[d.dst]):
                continue
            if d.rate * dist[d.dst] - duals[c] >= -1e-9 * max(1.0, abs(duals[c])):
                continue
            path = [d.dst]
            while path[-1] != src:
                path.append(int(pred[path[-1]]))
            path.reverse()
            if any(v in net.hosts for v in path[1:-1]):
                continue  # never through a host
            full = tuple(path)
            if router.checks and not router._ok(full):
                continue
            added += master.add(c, full)
    return added


def multipath(fabric: Fabric, demands: Sequence[Demand], progress: Progress | None = None,
              log: Log | None = None, upper: float | None = None) -> MultipathResult:
    """Plan `demands` with split weights minimising the maximum link utilisation.

    `upper` is a known maximum utilisation (default: the single-path plan's),
    used to scale the LP. Raises NoPathError/PlanError like the single-path planner.
    """
    start = time.perf_counter()
    demands = list(demands)
    if not demands:
        return MultipathResult([], 0.0, 0, 0, 0.0)
    upper = upper or reference_utilization(fabric, demands) or 1.0
    master = _Master(fabric, demands, upper)
    initial: list[list[tuple[int, ...]]] = []
    for c, d in enumerate(demands):
        initial.append(fabric.router(d.app).least_cost_paths(d.src, d.dst, INITIAL_PATHS))
        if progress is not None and (c + 1) % 20_000 == 0:
            progress(c + 1, len(demands))
    weighted = sum(d.rate * len(fabric.net.path_arcs(p[0])) for d, p in zip(demands, initial,
                                                                          strict=True))
    master.cbar = max(weighted / master.total, 1.0)
    for c, paths in enumerate(initial):
        for path in paths:
            master.add(c, path)
    rounds = 0
    while True:
        rounds += 1
        x, mu, duals, prices = master.solve()
        if log is not None:
            log(f"multipath: round {rounds}: max utilisation {mu * upper:.6g}, "
                f"{len(master.cols)} paths")
        if rounds >= MAX_ROUNDS or not _price(master, duals, prices):
            break
    shares: dict[int, list[tuple[tuple[int, ...], float]]] = defaultdict(list)
    for (c, path, _), value in zip(master.cols, x, strict=True):
        if value > MIN_WEIGHT:
            shares[c].append((path, float(value)))
    trails = []
    for c, d in enumerate(demands):
        kept = sorted(shares[c], key=lambda item: -item[1]) or [(initial[c][0], 1.0)]
        total = sum(w for _, w in kept)
        trails.append(Trail(d, tuple(p for p, _ in kept), tuple(w / total for _, w in kept)))
    return MultipathResult(trails, mu * upper, rounds, len(master.cols),
                           time.perf_counter() - start)
