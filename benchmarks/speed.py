"""Benchmark 2 (issues 6 and 14): how fast the controller plans a trail.

    python -m benchmarks.speed [--k 8 16] [--pairs 20000] [--cold 200] [--repeat 3]
                               [--seed 1]

Times the planner the controller runs, on a fat-tree (generated node-link
data, 1 Gbit/s and 20 us per link, as the controller's Topology):

- default trails: ``Planner.host_hops`` (least-cost path, stable hash of the
  host pair among equals, then the hops). "Uncached": a fresh Planner for
  every trail, so each one pays for its Dijkstra. "Cached": one Planner for
  every trail, as the controller keeps it between topology changes (one
  Dijkstra per source switch, the paths of each switch pair kept).
- an application's trails: ``appplan.plan_app_hops`` under a policy (an
  avoided zone on an eighth of the cores, a minimum level that excludes
  another eighth, spare bandwidth and a latency bound). "Uncached": no
  layered-graph cache, so every trail builds its ChainPlanner; "cached": the
  controller's cache (one ChainPlanner per application and topology version).

Cached rows plan `--pairs` host pairs (every ordered pair if there are fewer;
else a seeded sample); uncached rows plan the first `--cold` of them. The
reference in the same run is ``sdnscent.baselines.Router`` (the offline
planner of ``sdnscent plan``, which the issue 6 table timed): the same paths
as ``Planner.host_hops`` (tests/test_baselines.py) with one shared Dijkstra
per source switch and no hops built. "x Router" is our time per trail over
the Router's (same pairs, same policy): above 1 means slower. Timed as timeit
times code: the garbage collector off during the timed code (``--gc`` leaves
it on), best of ``--repeat`` runs, each from a fresh planner or cache. Prints
a table and writes nothing.

A second table times a new default trail in the controller itself:
``ScentController.ensure_trail`` on a memory store (planning, a label, the
compiled flows, the store and the trail index) for `--setup` random host
pairs, each once, with ``--routing static`` (``Planner.host_hops``) and with
``--routing scent`` (the default: the least crowded of the least-cost paths,
by the trails already on their links), best of ``--repeat`` fresh controllers.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial

from benchmarks.planning import fat_tree as controller_fat_tree
from benchmarks.planning import tell
from sdnscent.appplan import PolicyView, plan_app_hops
from sdnscent.baselines import Fabric
from sdnscent.constraints import ChainPlanner
from sdnscent.controller import ScentController
from sdnscent.netfile import Network, fat_tree, parse_network
from sdnscent.planner import Planner
from sdnscent.policy import Application, Classification, NodeSpec, Policy, Requirements, Zone
from sdnscent.store import MemoryStore
from sdnscent.topology import Host

APP = "bulk"
LINK_LATENCY = 20e-6  # s per link: equal, so equal-cost paths stay equal (hash tie-break)
MAX_LATENCY = 0.0001  # s: 5 links; every least-cost path (<= 4 inter-switch links) meets it
NO_EXCLUSIONS: tuple[set[tuple[int, int]], set[int]] = (set(), set())

KEEP_GC = False  # --gc: leave the collector on while timing
Pairs = Sequence[tuple[Host, Host]]


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


def timed(plan: Callable[[Host, Host], object], pairs: Pairs) -> float:
    """Seconds to plan every pair with `plan`, the collector off."""
    with no_gc():
        start = time.perf_counter()
        for src, dst in pairs:
            plan(src, dst)
        return time.perf_counter() - start


def run(k: int, n_pairs: int, n_cold: int, seed: int, repeat: int) -> list[tuple[str, ...]]:
    """Rows of the speed table for one fat-tree."""
    net = network(k)
    pol = policy(net, seed)
    fabric = Fabric(net, pol)
    topo = fabric.topo
    app = pol.app(APP)
    assert app is not None
    view = PolicyView(pol, topo)
    hosts = sorted(net.hosts)
    every = [(s, t) for s in hosts for t in hosts if s != t]
    picked = every if len(every) <= n_pairs else random.Random(seed).sample(every, n_pairs)
    pairs = [(fabric.hosts[s], fabric.hosts[t]) for s, t in picked]
    cold = pairs[:n_cold]
    index = {id(h): i for i, h in fabric.hosts.items()}  # Host -> node index (Router)

    def router(name: str | None) -> float:  # a fresh Fabric, the router's build timed
        fresh = Fabric(net, pol)
        with no_gc():
            start = time.perf_counter()
            plan = fresh.router(name).path
            for s, d in pairs:
                plan(index[id(s)], index[id(d)])
            return time.perf_counter() - start

    def cached_hops() -> float:
        planner = Planner(topo)
        return timed(planner.host_hops, pairs)

    def cached_app() -> float:
        planner: Planner = Planner(topo)
        cache: dict[tuple[object, ...], ChainPlanner] = {}
        return timed(lambda s, d: plan_app_hops(view, app, s, d, planner, NO_EXCLUSIONS, cache),
                     pairs)

    rows = []
    for name, what, ours in (
            (None, "Planner.host_hops", (
                ("uncached", cold, lambda: timed(lambda s, d: Planner(topo).host_hops(s, d),
                                                 cold)),
                ("cached", pairs, cached_hops))),
            (APP, "plan_app_hops (policy)", (
                ("uncached", cold, lambda: timed(lambda s, d: plan_app_hops(
                    view, app, s, d, Planner(topo), NO_EXCLUSIONS, None), cold)),
                ("cached", pairs, cached_app)))):
        ref = best(repeat, partial(router, name)) / len(pairs)
        rows.append((f"k={k} baselines.Router, {'policy' if name else 'default'} "
                     "(issue 6's number)", f"{len(pairs):,}", f"{ref * 1e3:.4f}",
                     f"{1 / ref:,.0f}", "1.0"))
        for how, some, go in ours:
            per = best(repeat, go) / len(some)
            rows.append((f"k={k} {what}, {how}", f"{len(some):,}", f"{per * 1e3:.4f}",
                         f"{1 / per:,.0f}", f"{per / ref:.1f}"))
    print(f"k={k}: {len(net.switches)} switches, {len(hosts)} hosts, {len(every):,} ordered "
          f"host pairs; cached rows plan {len(pairs):,} of them, uncached rows {len(cold):,}")
    return rows


def setup(k: int, n_pairs: int, seed: int, repeat: int) -> list[tuple[str, ...]]:
    """Rows of the controller table: ensure_trail per routing mode on a fresh controller."""
    topo = controller_fat_tree(k)
    macs = sorted(topo.hosts)
    rnd = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    while len(pairs) < min(n_pairs, len(macs) * (len(macs) - 1)):
        a, b = rnd.sample(macs, 2)
        if (a, b) not in seen:
            seen.add((a, b))
            pairs.append((a, b))

    def once(routing: str) -> float:
        ctrl = tell(ScentController(MemoryStore(), routing=routing), topo)
        with no_gc():
            start = time.perf_counter()
            for a, b in pairs:
                ctrl.ensure_trail(a, b)
            return time.perf_counter() - start

    rows = []
    for routing in ("static", "scent"):
        per = best(repeat, partial(once, routing)) / len(pairs)
        rows.append((f"k={k} ensure_trail, --routing {routing}", f"{len(pairs):,}",
                     f"{per * 1e3:.3f}", f"{1 / per:,.0f}"))
    return rows


def print_table(rows: Sequence[tuple[str, ...]]) -> None:
    """Rows as aligned columns, the first one a header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for n, row in enumerate(rows):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[8, 16], help="fat-tree arities")
    parser.add_argument("--pairs", type=int, default=20_000,
                        help="host pairs of the cached rows (a seeded sample if fewer than all)")
    parser.add_argument("--cold", type=int, default=200,
                        help="host pairs of the uncached rows (the first of those above)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs of each row; the fastest counts")
    parser.add_argument("--setup", type=int, default=2000,
                        help="host pairs of the controller table (0: skip it)")
    parser.add_argument("--gc", action="store_true",
                        help="leave the garbage collector on while timing")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    global KEEP_GC
    KEEP_GC = args.gc
    rows = [("planning", "trails", "ms/trail", "trails/s", "x Router")]
    for k in args.k:
        rows += run(k, args.pairs, args.cold, args.seed, args.repeat)
    print_table(rows)
    if args.setup > 0:
        rows = [("new default trail in the controller", "trails", "ms/trail", "trails/s")]
        for k in args.k:
            rows += setup(k, args.setup, args.seed, args.repeat)
        print_table(rows)


if __name__ == "__main__":
    main()
