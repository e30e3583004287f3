"""Minimum maximum link utilisation at WAN scale, with a proven optimality bound.

One commodity per (source, application): its whole demand vector. Every
single-source flow is a convex combination of shortest-path trees (the
vertices of its flow polytope), so the planner keeps, per commodity, a few
trees and their weights:

1. Start: each commodity on its least-cost tree (the planner's costs).
2. Frank-Wolfe on a smoothed maximum (log-sum-exp of utilisations), a block
   of commodities at a time: each block's trees under the gradient lengths,
   an exact line search. Fast to a few percent; every tree becomes a column.
3. Polish: the restricted master LP (Dantzig-Wolfe) over those trees, only on
   the hottest links (rows added while the routing breaks another link), in
   HiGHS; its link prices give new trees (pricing) and a bound.

The bound: for any link lengths l >= 0, no routing has a maximum utilisation
below sum_k sum_t d_kt dist_l(k, t) / sum_e c_e l_e (weak LP duality). The
best such value over every length function tried is reported as `bound`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix, csc_matrix, csr_matrix, hstack
from scipy.sparse.csgraph import dijkstra

Log = Callable[[str], None]
BLOCKS = 4  # Frank-Wolfe updates a quarter of the commodities at a time
FW_PASSES = 5
HOT_FRACTION = 0.8  # master rows: links at this share of the maximum or above ...
HOT_MAX = 200  # ... at most this many at first
ADD_ROWS = 200  # links added to the master per round where the routing breaks them
FLOOR = 1e-9  # relative length floor: scipy's Dijkstra needs positive lengths


class Unroutable(ValueError):
    """A commodity has a destination its allowed links do not reach."""

    def __init__(self, commodity: int, node: int) -> None:
        super().__init__(f"commodity {commodity} cannot reach node {node}")
        self.commodity, self.node = commodity, node


@dataclass
class Problem:
    """Arcs (tail, head, capacity), commodities (source, demand row over nodes) and,
    per commodity, the index of its allowed-arc set and initial lengths."""

    n: int
    tail: np.ndarray
    head: np.ndarray
    capacity: np.ndarray
    sources: np.ndarray
    demand: np.ndarray  # commodities x n
    group: np.ndarray  # commodity -> index into allowed / cost
    allowed: list[np.ndarray]  # arc indices each group may use
    cost: list[np.ndarray]  # initial length of every arc, per group

    def __post_init__(self) -> None:
        m = len(self.tail)
        keys = self.tail.astype(np.int64) * self.n + self.head
        self._order = np.argsort(keys)
        self._keys = keys[self._order]
        self.m = m

    def arc_of(self, tail: np.ndarray, head: np.ndarray) -> np.ndarray:
        """Arc indices of (tail, head) pairs (every pair must be an arc)."""
        pos = np.searchsorted(self._keys, tail.astype(np.int64) * self.n + head)
        return self._order[pos]


def trees(p: Problem, lengths: np.ndarray, commodities: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shortest-path trees of `commodities` (one group's) under `lengths`.

    Returns per commodity its arc loads (k x m), distances (k x n) and predecessors.
    """
    g = p.allowed[p.group[commodities[0]]]
    graph = csr_matrix((lengths[g], (p.tail[g], p.head[g])), shape=(p.n, p.n))
    dist, pred = dijkstra(graph, indices=p.sources[commodities], return_predecessors=True)
    demand = p.demand[commodities]
    bad = np.isinf(dist) & (demand > 0)
    if bad.any():
        k, node = np.argwhere(bad)[0]
        raise Unroutable(int(commodities[k]), int(node))
    acc = demand.copy()
    rows = np.arange(len(commodities))
    order = np.argsort(dist, axis=1, kind="stable")
    for rank in range(p.n - 1, 0, -1):  # children before parents: subtree sums
        nodes = order[:, rank]
        par = pred[rows, nodes]
        ok = par >= 0
        if ok.all():
            acc[rows, par] += acc[rows, nodes]
        elif ok.any():
            acc[rows[ok], par[ok]] += acc[rows[ok], nodes[ok]]
    r, c = np.nonzero(pred >= 0)
    arcs = p.arc_of(pred[r, c], c)
    loads = coo_matrix((acc[r, c], (r, arcs)), shape=(len(commodities), p.m)).toarray()
    return loads, dist, pred.astype(np.int32)


def bound(p: Problem, lengths: np.ndarray, dist: np.ndarray | None = None,
          commodities: np.ndarray | None = None) -> float:
    """The lower bound on every routing's maximum utilisation that `lengths` prove."""
    total = 0.0
    for gi in range(len(p.allowed)):
        ks = np.nonzero(p.group == gi)[0]
        if not len(ks):
            continue
        g = p.allowed[gi]
        graph = csr_matrix((lengths[g], (p.tail[g], p.head[g])), shape=(p.n, p.n))
        d = dijkstra(graph, indices=p.sources[ks])
        total += float((np.where(p.demand[ks] > 0, d, 0.0) * p.demand[ks]).sum())
    return total / float(lengths @ p.capacity)


@dataclass
class Solution:
    """Per commodity, weighted trees: `pred[j]` is column j's tree of commodity
    `owner[j]`, `weight[j]` its share. `value` is the maximum utilisation of that
    routing, `bound` a proven lower bound on the optimum."""

    owner: np.ndarray
    pred: np.ndarray  # columns x n, int32
    weight: np.ndarray
    loads: np.ndarray  # per arc, bit/s
    value: float
    bound: float
    seconds: float
    history: list[tuple[float, str, float, float]] = field(default_factory=list)

    @property
    def gap(self) -> float:
        """value / bound - 1 (0 when both are 0)."""
        return self.value / self.bound - 1.0 if self.bound > 0 else 0.0


class _Columns:
    """Growable column store: owner, tree, arc loads."""

    def __init__(self, m: int, n: int) -> None:
        self.owner: list[np.ndarray] = []
        self.pred: list[np.ndarray] = []
        self.loads: list[np.ndarray] = []
        self._cat: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, owner: np.ndarray, pred: np.ndarray, loads: np.ndarray) -> np.ndarray:
        start = self.count
        self.owner.append(owner)
        self.pred.append(pred)
        self.loads.append(loads)
        self._cat = None
        return np.arange(start, start + len(owner))

    @property
    def count(self) -> int:
        return sum(len(o) for o in self.owner)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._cat is None:
            self.owner = [np.concatenate(self.owner)]
            self.loads = [np.vstack(self.loads)]
            self.pred = [np.vstack(self.pred)]
            self._cat = (self.owner[0], self.loads[0])
        return self._cat


def _by_group(p: Problem, ks: np.ndarray) -> list[np.ndarray]:
    return [ks[p.group[ks] == gi] for gi in np.unique(p.group[ks])]


def _route(p: Problem, cols: _Columns, lengths: list[np.ndarray] | np.ndarray,
           ks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trees of commodities `ks` under lengths (per group or shared), stored as columns.

    Returns the new columns' indices and arc loads, in the order of `ks`.
    """
    idx = np.empty(len(ks), dtype=np.int64)
    loads = np.empty((len(ks), p.m))
    for gi in np.unique(p.group[ks]):
        at = np.nonzero(p.group[ks] == gi)[0]
        lens = lengths[gi] if isinstance(lengths, list) else lengths
        y, _, pred = trees(p, lens, ks[at])
        idx[at] = cols.add(ks[at], pred, y)
        loads[at] = y
    return idx, loads


def _max_mix(a: np.ndarray, b: np.ndarray, cap: np.ndarray) -> tuple[float, float]:
    """The theta in [0, 1] minimising max((a + theta (b - a)) / cap), and that maximum."""
    lo, hi = 0.0, 1.0
    f = lambda t: float(((a + t * (b - a)) / cap).max())  # noqa: E731
    for _ in range(40):
        t1, t2 = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        if f(t1) <= f(t2):
            hi = t2
        else:
            lo = t1
    best = min((0.0, 1.0, (lo + hi) / 2), key=f)
    return best, f(best)


def solve(p: Problem, gap: float = 0.01, time_limit: float | None = None,
          log: Log | None = None, passes: int = FW_PASSES, seed: int = 0) -> Solution:
    """Route every commodity to within `gap` of the minimum maximum utilisation
    (value <= (1 + gap) x bound), or as close as `time_limit` seconds allow."""
    start = time.perf_counter()
    deadline = start + time_limit if time_limit else float("inf")
    cap = p.capacity
    k_all = np.arange(len(p.sources))
    cols = _Columns(p.m, p.n)
    history: list[tuple[float, str, float, float]] = []

    def note(stage: str, value: float, lb: float) -> None:
        history.append((time.perf_counter() - start, stage, value, lb))
        if log:
            log(f"{stage}: max utilisation {value:.6g}, bound {lb:.6g}"
                + (f", gap {value / lb - 1:.2%}" if lb > 0 else "")
                + f" ({time.perf_counter() - start:.1f} s)")

    col, y = _route(p, cols, p.cost, k_all)
    w = np.zeros(len(k_all))
    w[col] = 1.0
    flows = y.copy()  # per commodity, current arc flows
    load = flows.sum(0)
    best_w, best_value, best_load = w.copy(), float((load / cap).max()), load.copy()
    lb = 0.0
    note("least-cost trees", best_value, lb)
    rng = np.random.default_rng(seed)
    fw_w = w
    for it in range(passes):
        if best_value == 0.0 or time.perf_counter() > deadline:
            break
        mu = 8.0 / max(float((load / cap).max()), 1e-300) * min(2 ** (it / 3), 200)
        for b, block in enumerate(np.array_split(rng.permutation(k_all), BLOCKS)):
            if not len(block):
                continue
            util = load / cap
            z = np.exp(mu * (util - util.max()))
            lengths = z / z.sum() / cap
            lengths = lengths + FLOOR * lengths.max()
            if b == 0:
                lb = max(lb, bound(p, lengths))
            col, y = _route(p, cols, lengths, block)
            delta = y.sum(0) - flows[block].sum(0)

            def phi(t: float, delta: np.ndarray = delta, mu: float = mu,
                    load: np.ndarray = load) -> float:
                x = (load + t * delta) / cap
                top = x.max()
                return top + float(np.log(np.exp(mu * (x - top)).sum())) / mu

            lo, hi = 0.0, 1.0
            for _ in range(30):
                t1, t2 = lo + (hi - lo) / 3, hi - (hi - lo) / 3
                if phi(t1) < phi(t2):
                    hi = t2
                else:
                    lo = t1
            step = (lo + hi) / 2
            fw_w = np.concatenate([fw_w, np.zeros(len(col))])
            owner, _ = cols.arrays()
            in_block = np.isin(owner, block)
            fw_w[in_block] *= 1.0 - step
            fw_w[col] += step
            flows[block] += step * (y - flows[block])
            load = flows.sum(0)
        value = float((load / cap).max())
        if value < best_value:
            best_w, best_value, best_load = fw_w.copy(), value, load.copy()
        note(f"Frank-Wolfe pass {it + 1}", value, lb)
    if best_value == 0.0:
        lb = 0.0
    # -- polish: restricted master LP over the trees, on the hottest links --------------------
    util = best_load / cap
    hot = np.argsort(-util)[:HOT_MAX]
    hot = hot[util[hot] >= HOT_FRACTION * best_value]
    rounds = 0
    while best_value > (1 + gap) * lb and time.perf_counter() < deadline and best_value > 0:
        rounds += 1
        owner, loads = cols.arrays()
        best_w = np.concatenate([best_w, np.zeros(len(owner) - len(best_w))])
        scale = best_value
        master = _master(p, owner, loads, hot, scale, deadline - time.perf_counter())
        if master is None:
            break
        x_touched, touched, lam, pi, sigma = master
        w_new = best_w.copy()
        mask = np.isin(owner, touched)
        w_new[mask] = 0.0
        w_new[x_touched[0]] = x_touched[1]
        m_load = w_new @ loads
        theta, mixed = _max_mix(best_load, m_load, cap)
        if mixed < best_value:
            best_w = best_w + theta * (w_new - best_w)
            best_load = best_load + theta * (m_load - best_load)
            best_value = float((best_load / cap).max())
        lengths = pi / cap
        lengths = lengths + FLOOR * lengths.max()
        new_col, y = _route(p, cols, lengths, k_all)
        dist_bound = bound(p, lengths)
        lb = max(lb, dist_bound)
        note(f"master LP round {rounds} ({len(hot)} links)", best_value, lb)
        m_util = m_load / cap
        broken = np.setdiff1d(np.nonzero(m_util > lam * (1 + 1e-7))[0], hot)
        if len(broken):
            broken = broken[np.argsort(-m_util[broken])][:ADD_ROWS]
            hot = np.union1d(hot, broken)
        reduced = (y / cap / scale) @ pi - sigma
        if not (reduced < -1e-9).any() and not len(broken):
            break  # the master is optimal over every tree: nothing more to gain
    owner, loads = cols.arrays()
    w = np.concatenate([best_w, np.zeros(cols.count - len(best_w))])
    pred = cols.pred[0] if len(cols.pred) == 1 else np.vstack(cols.pred)
    used = w > 1e-12
    return Solution(owner[used], pred[used], w[used], best_load, best_value, lb,
                    time.perf_counter() - start, history)


def _master(p: Problem, owner: np.ndarray, loads: np.ndarray, hot: np.ndarray,
            scale: float, seconds: float
            ) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, float, np.ndarray,
                       np.ndarray] | None:
    """The restricted master LP on rows `hot`: min lambda, convex weights per commodity."""
    cap = p.capacity
    util = loads[:, hot] / cap[hot] / scale
    util[util < 1e-12] = 0.0
    touched = np.unique(owner[(util > 0).any(1)])
    cols = np.nonzero(np.isin(owner, touched))[0]
    row_of = np.full(len(p.sources), -1)
    row_of[touched] = np.arange(len(touched))
    a = csc_matrix(util[cols].T)
    nc = len(cols)
    a_ub = hstack([a, csc_matrix(-np.ones((len(hot), 1)))]).tocsr()
    a_eq = csr_matrix((np.ones(nc), (row_of[owner[cols]], np.arange(nc))),
                      shape=(len(touched), nc + 1))
    c = np.zeros(nc + 1)
    c[-1] = 1.0
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(len(hot)), A_eq=a_eq, b_eq=np.ones(len(touched)),
                  bounds=(0, None), method="highs",
                  options={"time_limit": max(1.0, seconds)})
    if res.status != 0 or res.x is None:
        return None
    pi = np.zeros(p.m)
    pi[hot] = np.maximum(-res.ineqlin.marginals, 0.0)
    sigma = np.zeros(len(p.sources))
    sigma[touched] = res.eqlin.marginals
    x = res.x[:-1]
    keep = x > 1e-12
    return (cols[keep], x[keep]), touched, float(res.x[-1]) * scale, pi, sigma
