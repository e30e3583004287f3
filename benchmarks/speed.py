"""Benchmark 2 (issue 6): trails planned per second, against naive per-pair networkx.

    python -m benchmarks.speed [--k 8 16] [--naive-pairs 2000] [--repeat 3] [--seed 1]

For each fat-tree (generated node-link data, 1 Gbit/s and 20 us per link)
every ordered host pair gets a trail (k=16: 1,024 hosts, 1,047,552 trails),
planned exactly as the controller plans (sdnscent.baselines.Router: same
costs, constraints and hash tie-break as ChainPlanner), first with no
constraints, then as an application with constraints: an avoided zone (an
eighth of the cores), a minimum level (another eighth below it), spare
bandwidth and a latency bound. The baseline, in the same run, is
nx.shortest_path per pair on the same graph (constraints: on a copy with the
refused links removed, latency summed after), timed on `--naive-pairs` random
pairs because a full naive run of k=16 takes over an hour; the ratio compares
trails per second. Both sides are timed as timeit times: the garbage collector
off during the timed code, best of `--repeat` runs (each of ours on a fresh
Fabric, so no cache carries over). Then one aggregation-core cable goes down: the trail index
names the trails on it and only those are re-planned. Prints tables and writes
nothing.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import networkx as nx

from sdnscent.baselines import Fabric, Router, TrailIndex
from sdnscent.netfile import Network, fat_tree, parse_network
from sdnscent.policy import Application, Classification, NodeSpec, Policy, Requirements, Zone

APP = "bulk"
LINK_LATENCY = 20e-6  # s per link: equal, so equal-cost paths stay equal (ECMP hashing)
MAX_LATENCY = 0.0001  # s: 5 links; every least-cost path (<= 4 inter-switch links) meets it


def network(k: int) -> Network:
    """A k-ary fat-tree with 1 Gbit/s, 20 us links."""
    return parse_network(fat_tree(k, latency=LINK_LATENCY), f"fat-tree k={k}")


def policy(net: Network, seed: int) -> Policy:
    """Zones: an eighth of the cores in the dmz, another eighth at level 0, the rest level 1."""
    k = round((len(net.hosts) * 4) ** (1 / 3))
    cores = [f"s{n}" for n in range(1, (k // 2) ** 2 + 1)]
    rnd = random.Random(seed)
    picked = rnd.sample(cores, max(2, len(cores) // 4))
    half = len(picked) // 2
    nodes = {str(net.ids[i]): NodeSpec(str(net.ids[i]), "switch", zone="core")
             for i in net.switches}
    nodes.update({name: NodeSpec(name, "switch", zone="dmz") for name in picked[:half]})
    nodes.update({name: NodeSpec(name, "switch", zone="core", level=0)
                  for name in picked[half:]})
    app = Application(APP, data_class="bulk", classification="internal",
                      requirements=Requirements(max_latency=MAX_LATENCY, min_bandwidth=1e8,
                                                avoid_zones=frozenset({"dmz"})))
    return Policy(zones={"dmz": Zone("dmz", 0), "core": Zone("core", 1)}, nodes=nodes,
                  classifications={"internal": Classification("internal", min_level=1)},
                  applications=(app,))


KEEP_GC = False  # --gc: leave the collector on while timing


@contextmanager
def no_gc() -> Iterator[None]:
    """The garbage collector off (as timeit runs): its pauses land on whichever code
    happens to allocate when they fall due."""
    was = gc.isenabled()
    if not KEEP_GC:
        gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def best(repeat: int, run: Callable[[], float]) -> float:
    """The fastest of `repeat` runs of `run` (which returns its own seconds)."""
    return min(run() for _ in range(max(1, repeat)))


def plan_all(router: Router, pairs: Sequence[tuple[int, int]]
             ) -> tuple[float, list[tuple[int, ...]]]:
    """Seconds to plan every pair, and the switch paths."""
    start = time.perf_counter()
    paths = [router.switch_path(s, t) for s, t in pairs]
    return time.perf_counter() - start, paths


def naive(net: Network, fabric: Fabric, pairs: Sequence[tuple[int, int]], constrained: bool
          ) -> float:
    """Seconds per pair for nx.shortest_path on the (filtered) graph."""
    g = net.graph()
    cost = fabric.arc_cost(APP if constrained else None)
    for _, _, data in g.edges(data=True):
        data["cost"] = cost.get(data["arc"], 1.0)
    if constrained:
        allowed = set(fabric.allowed_arcs(APP))
        g = nx.DiGraph(g.edge_subgraph([(u, v) for u, v, a in g.edges(data="arc")
                                        if a in allowed]))
    with no_gc():
        start = time.perf_counter()
        for s, t in pairs:
            path = nx.shortest_path(g, s, t, weight="cost")
            if constrained:
                sum(g.edges[a, b]["latency"] for a, b in zip(path, path[1:], strict=False))
        return (time.perf_counter() - start) / len(pairs)


def ours(net: Network, pol: Policy, app: str | None, pairs: Sequence[tuple[int, int]]
         ) -> float:
    """Seconds to build `app`'s router on a fresh Fabric and plan every pair."""
    fabric = Fabric(net, pol)
    with no_gc():
        start = time.perf_counter()
        router = fabric.router(app)
        plan_all(router, pairs)
        return time.perf_counter() - start


def run(k: int, naive_pairs: int, seed: int, repeat: int = 3) -> list[tuple[str, ...]]:
    """Rows of the speed table for one fat-tree, printing the re-plan lines."""
    net = network(k)
    pol = policy(net, seed)
    start = time.perf_counter()
    fabric = Fabric(net, pol)
    built = time.perf_counter() - start
    hosts = sorted(net.hosts)
    pairs = [(s, t) for s in hosts for t in hosts if s != t]
    sample = random.Random(seed).sample(pairs, min(naive_pairs, len(pairs)))
    rows = []
    index = TrailIndex()
    for label, app in (("no constraints", None), ("constraints", APP)):
        seconds = best(repeat, lambda app=app: ours(net, pol, app, pairs))
        per_naive = best(repeat, lambda app=app: naive(net, fabric, sample, app is not None))
        _, paths = plan_all(fabric.router(app), pairs)
        rate, naive_rate = len(pairs) / seconds, 1 / per_naive
        rows.append((f"k={k} all-pairs, {label}", f"{len(pairs):,}", f"{seconds:.2f}",
                     f"{rate:,.0f}", f"{naive_rate:,.0f}", f"{rate / naive_rate:.1f}x"))
        if app is None:
            for n, path in enumerate(paths):
                index.add(n, path)
    # the busiest aggregation-core cable goes down: re-plan the default trails on it
    cores = {net.index[f"s{n}"] for n in range(1, (k // 2) ** 2 + 1)}
    cable = max((c for c in index.by_cable if c & cores),
                key=lambda c: (sum(len(index.by_path[p]) for p in index.by_cable[c]),
                               sorted(c)))
    u, v = sorted(cable)
    with no_gc():
        start = time.perf_counter()
        affected = index.affected(u, v)
        fabric.link_down(u, v)
        router = fabric.router(None)
        replanned = [router.switch_path(*pairs[n]) for n in affected]
        took = time.perf_counter() - start
    assert all(frozenset((u, v)) not in {frozenset(c) for c in zip(p, p[1:], strict=False)}
               for p in replanned)
    with no_gc():
        full, _ = plan_all(fabric.router(None), pairs)
    print(f"k={k}: fabric built in {built:.2f} s ({len(net.switches)} switches, "
          f"{len(hosts)} hosts). Busiest core cable {net.ids[u]}-{net.ids[v]} down: "
          f"{len(affected):,} of "
          f"{len(pairs):,} trails affected ({100 * len(affected) / len(pairs):.2f}%), "
          f"re-planned in {took * 1e3:.0f} ms; a full re-plan takes {full:.2f} s "
          f"({full / took:.0f}x longer)")
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[8, 16], help="fat-tree arities")
    parser.add_argument("--naive-pairs", type=int, default=2000,
                        help="random pairs timed for the naive baseline")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs of each side; the fastest counts")
    parser.add_argument("--gc", action="store_true",
                        help="leave the garbage collector on while timing")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    global KEEP_GC
    KEEP_GC = args.gc
    rows = [("planning", "trails", "seconds", "trails/s", "naive/s", "speed-up")]
    for k in args.k:
        rows += run(k, args.naive_pairs, args.seed, args.repeat)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for n, row in enumerate(rows):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
