"""The optimum: minimum maximum-link-utilisation multicommodity flow, as an LP
solved by scipy's HiGHS.

One commodity per (source node, application): its flow on every arc the
application may use, leaving the source and arriving at each destination with
that destination's demand. Minimise lambda subject to load(e) <= lambda * capacity(e).
Path latency bounds are not expressible per arc and are relaxed, so the value
is a lower bound on every planner's maximum utilisation. `optimal` decomposes
the flows into paths for `sdnscent plan --mode optimal`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from .baselines import Fabric, PlanError, Progress, shortest_path
from .netfile import Demand, Network, Trail, arc_loads, max_utilization
from .planner import NoPathError

TOLERANCE = 1e-9  # relative: flow below this share of a demand is noise


@dataclass
class McfResult:
    """The LP optimum: `value` (max utilisation) and the flow of each commodity per arc."""

    value: float
    flows: dict[tuple[int, str | None], dict[int, float]]  # (source, app) -> arc -> bit/s
    seconds: float = 0.0


def _commodities(demands: Sequence[Demand]) -> dict[tuple[int, str | None], dict[int, float]]:
    groups: dict[tuple[int, str | None], dict[int, float]] = defaultdict(dict)
    for d in demands:
        row = groups[(d.src, d.app)]
        row[d.dst] = row.get(d.dst, 0.0) + d.rate
    return dict(groups)


def reference_utilization(fabric: Fabric, demands: Sequence[Demand]) -> float:
    """The maximum utilisation of the controller's single paths (an upper bound to scale by)."""
    try:
        trails = shortest_path(fabric, demands)
    except NoPathError as exc:
        raise PlanError(str(exc)) from None
    return max_utilization(fabric.net, arc_loads(fabric.net, trails))


def min_max_utilization(fabric: Fabric, demands: Sequence[Demand],
                        upper: float | None = None) -> McfResult:
    """Solve the min max-utilisation MCF LP for `demands` on `fabric` (HiGHS).

    `upper` (default: the single-path plan's maximum utilisation) scales the LP
    so that its variable is about 1 whatever the units: HiGHS's tolerances are
    absolute. Raises PlanError if a demand has no path its application may use.
    """
    start = time.perf_counter()
    net = fabric.net
    groups = _commodities(demands)
    if not groups:
        return McfResult(0.0, {}, 0.0)
    unit = max(d.rate for d in demands)  # rates in units of the largest demand
    n_nodes, n_arcs = len(net.ids), len(net.arcs)
    allowed = {app: fabric.allowed_arcs(app) for _, app in groups}
    columns: list[tuple[tuple[int, str | None], int]] = []
    eq_rows, eq_cols, eq_vals = [], [], []
    ub_rows, ub_cols, ub_vals = [], [], []
    b_eq = np.zeros(len(groups) * n_nodes)
    for g, (key, sinks) in enumerate(groups.items()):
        src, app = key
        base = g * n_nodes
        b_eq[base + src] = sum(sinks.values()) / unit
        for dst, rate in sinks.items():
            b_eq[base + dst] -= rate / unit
        for arc in allowed[app]:
            col = len(columns)
            columns.append((key, arc))
            a = net.arcs[arc]
            eq_rows += [base + a.u, base + a.v]
            eq_cols += [col, col]
            eq_vals += [1.0, -1.0]
            ub_rows.append(arc)
            ub_cols.append(col)
            ub_vals.append(1.0)
    lam = len(columns)
    upper = upper or reference_utilization(fabric, demands) or 1.0
    caps = np.array([a.capacity * upper / unit for a in net.arcs])
    ub_rows += list(range(n_arcs))
    ub_cols += [lam] * n_arcs
    ub_vals += list(-caps)
    n_cols = lam + 1
    a_eq = coo_matrix((eq_vals, (eq_rows, eq_cols)), shape=(len(b_eq), n_cols)).tocsr()
    a_ub = coo_matrix((ub_vals, (ub_rows, ub_cols)), shape=(n_arcs, n_cols)).tocsr()
    cost = np.zeros(n_cols)
    cost[lam] = 1.0
    res = linprog(cost, A_ub=a_ub, b_ub=np.zeros(n_arcs), A_eq=a_eq, b_eq=b_eq,
                  bounds=(0, None), method="highs")
    if res.status == 2:
        raise PlanError("no routing exists: some demand has no path on the links its "
                        "application may use")
    if res.status != 0:
        raise PlanError(f"the LP solver failed: {res.message}")
    flows: dict[tuple[int, str | None], dict[int, float]] = defaultdict(dict)
    x = res.x
    for col, (key, arc) in enumerate(columns):
        if x[col] > TOLERANCE:
            flows[key][arc] = x[col] * unit
    return McfResult(float(x[lam]) * upper, dict(flows), time.perf_counter() - start)


def decompose(net: Network, source: int, flow: dict[int, float], sinks: dict[int, float]
              ) -> dict[int, list[tuple[tuple[int, ...], float]]]:
    """Split a single-source flow into paths: destination -> [(path, bit/s)].

    Cycles carry nothing to a destination and are dropped, so the paths' load
    never exceeds the flow's. Numerical leftovers are spread over the found paths.
    """
    residual = dict(flow)
    out_of: dict[int, list[int]] = defaultdict(list)
    for arc in flow:
        out_of[net.arcs[arc].u].append(arc)
    found: dict[int, list[tuple[tuple[int, ...], float]]] = {}
    for dst, want in sinks.items():
        left = want
        paths: dict[tuple[int, ...], float] = {}
        while left > want * 1e-7:
            # widest-first DFS from the source to dst over arcs with flow left
            parent: dict[int, int] = {source: -1}
            stack = [source]
            while stack and dst not in parent:
                node = stack.pop()
                for arc in sorted(out_of[node], key=lambda a: residual[a]):
                    v = net.arcs[arc].v
                    if v not in parent and residual[arc] > want * 1e-9:
                        parent[v] = arc
                        stack.append(v)
            if dst not in parent:
                break
            arcs = []
            node = dst
            while node != source:
                arcs.append(parent[node])
                node = net.arcs[parent[node]].u
            arcs.reverse()
            push = min(left, *(residual[a] for a in arcs))
            for a in arcs:
                residual[a] -= push
            path = (source, *(net.arcs[a].v for a in arcs))
            paths[path] = paths.get(path, 0.0) + push
            left -= push
        if not paths:
            raise PlanError(f"the LP routes nothing from {net.ids[source]!r} to "
                            f"{net.ids[dst]!r}")
        total = sum(paths.values())
        found[dst] = [(p, amount * want / total) for p, amount in paths.items()]
    return found


def optimal(fabric: Fabric, demands: Sequence[Demand], progress: Progress | None = None,
            result: McfResult | None = None) -> list[Trail]:
    """The LP optimum as trails: each demand's flow decomposed into weighted paths."""
    result = result or min_max_utilization(fabric, demands)
    groups = _commodities(demands)
    split: dict[tuple[int, str | None], dict[int, list[tuple[tuple[int, ...], float]]]] = {}
    for n, (key, sinks) in enumerate(groups.items(), 1):
        split[key] = decompose(fabric.net, key[0], result.flows.get(key, {}), sinks)
        if progress is not None:
            progress(n, len(groups))
    trails = []
    for d in demands:
        parts = split[(d.src, d.app)][d.dst]
        total = sum(amount for _, amount in parts)
        kept = [(p, amount / total) for p, amount in parts if amount / total > 1e-6]
        norm = sum(w for _, w in kept)
        trails.append(Trail(d, tuple(p for p, _ in kept), tuple(w / norm for _, w in kept)))
    return trails
