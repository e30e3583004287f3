"""Benchmark 1 (issue 6): maximum link utilisation of the multipath planner against
the LP optimum, shortest path, the controller's single path, ECMP and Hedera's
Global First Fit.

    python -m benchmarks.quality [--k 4 8] [--wan abilene geant ...] [--seed 1]
                                 [--ecmp-seed 0]

Baselines: "shortest path" = fewest hops, lowest dpid among equals (one path
per switch pair); "controller single" = the controller's least-cost path picked
by the stable hash of the host pair; "ECMP" = hash-based ECMP, each flow (every
demand is one flow) on the least-cost path the hash of its 5-tuple picks
(seed --ecmp-seed); "ECMP-fluid (ideal)" = every demand split equally over its
least-cost paths, what hashing approaches with many small flows per pair;
"GFF" = Global First Fit.

(a) Generated fat-trees (1 Gbit/s links, hosts included) with Hedera's
patterns; every host sends one flow at the rate Hedera's demand estimator
gives it (its max-min fair share of the NICs). (b) SNDlib networks shipped by
topohub with their demand matrices; no capacities there, so every link gets
the same one and each matrix is scaled so that the LP optimum is 0.9 (a busy
network: below that, first fit rarely has to move a flow). Ratios are
multipath / baseline: below 1 is better. Prints tables and ASCII bars.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import topohub

from sdnscent.baselines import (
    Fabric,
    controller_single,
    ecmp,
    ecmp_fluid,
    global_first_fit,
    min_hop,
)
from sdnscent.mcf import min_max_utilization
from sdnscent.multipath import multipath
from sdnscent.netfile import (
    Demand,
    Network,
    Trail,
    arc_loads,
    fat_tree,
    max_utilization,
    parse_network,
)
from sdnscent.traffic import PATTERNS, demand_matrix, pattern

WANS = ("abilene", "geant", "polska", "nobel-germany", "janos-us", "germany50")
WAN_TARGET = 0.9  # LP optimum after scaling a WAN's demands
SP, SINGLE, FLUID = "shortest path", "controller single", "ECMP-fluid (ideal)"
COLUMNS = ("LP", "multipath", SP, SINGLE, "ECMP", FLUID, "GFF")
SHORT = {SP: "SP", SINGLE: "single", FLUID: "fluid"}  # column heads of the ratios and bars
RATIOS = ("LP", "ECMP", "GFF", FLUID, SINGLE, SP)


def evaluate(net: Network, demands: Sequence[Demand], ecmp_seed: int = 0) -> dict[str, float]:
    """Maximum utilisation of every planner, plus the LP and multipath seconds."""
    fabric = Fabric(net)

    def mlu(trails: Sequence[Trail]) -> float:
        return max_utilization(net, arc_loads(net, trails))

    upper = mlu(controller_single(fabric, demands))
    start = time.perf_counter()
    lp = min_max_utilization(fabric, demands, upper)
    lp_s = time.perf_counter() - start
    mp = multipath(fabric, demands, upper=upper)
    out = {"LP": lp.value,
           "multipath": mlu(mp.trails),
           SP: mlu(min_hop(fabric, demands)),
           SINGLE: upper,
           "ECMP": mlu(ecmp(fabric, demands, seed=ecmp_seed)),
           FLUID: mlu(ecmp_fluid(fabric, demands)),
           "GFF": mlu(global_first_fit(fabric, demands)),
           "lp_s": lp_s, "mp_s": mp.seconds,
           "paths": sum(len(t.paths) for t in mp.trails) / len(mp.trails)}
    return out


def fat_tree_cases(ks: Sequence[int], seed: int, ecmp_seed: int = 0
                   ) -> list[tuple[str, dict[str, float]]]:
    """One row per (k, pattern)."""
    rows = []
    for k in ks:
        net = parse_network(fat_tree(k), f"fat-tree k={k}")
        hosts = [net.ids[i] for i in sorted(net.hosts)]
        for name in PATTERNS:
            flows = pattern(name, hosts, k // 2, k * k // 4, seed)
            matrix = demand_matrix(flows, 1e9)
            demands = [Demand(net.index[s], net.index[t], rate)
                       for s, row in matrix.items() for t, rate in row.items()]
            rows.append((f"k={k} {name}", evaluate(net, demands, ecmp_seed)))
    return rows


def wan_cases(names: Sequence[str], ecmp_seed: int = 0
              ) -> list[tuple[str, dict[str, float]]]:
    """One row per SNDlib network, demands scaled to an LP optimum of WAN_TARGET."""
    rows = []
    for name in names:
        net = parse_network(topohub.get(f"sndlib/{name}"), name)
        lp = min_max_utilization(Fabric(net), net.demands).value
        demands = [Demand(d.src, d.dst, d.rate * WAN_TARGET / lp) for d in net.demands]
        label = f"{name} ({len(net.ids)} nodes, {len(net.arcs) // 2} links, {len(demands)} dem.)"
        rows.append((label, evaluate(net, demands, ecmp_seed)))
    return rows


def table(title: str, rows: list[tuple[str, dict[str, float]]]) -> None:
    """Print max utilisation per planner and multipath's ratios."""
    head = ("case", *COLUMNS, *(f"MP/{SHORT.get(c, c)}" for c in RATIOS), "paths/trail",
            "LP s", "MP s")
    lines = [head]
    for label, r in rows:
        lines.append((label, *(f"{r[c]:.3f}" for c in COLUMNS),
                      *(f"{r['multipath'] / r[c]:.3f}" for c in RATIOS),
                      f"{r['paths']:.2f}", f"{r['lp_s']:.2f}", f"{r['mp_s']:.2f}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    print(title)
    for n, line in enumerate(lines):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(line, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print()


def bars(rows: list[tuple[str, dict[str, float]]], width: int = 40) -> None:
    """ASCII bars of max utilisation per case and planner (matplotlib is not installed)."""
    top = max(r[c] for _, r in rows for c in COLUMNS)
    for label, r in rows:
        print(label)
        for c in COLUMNS:
            bar = "#" * max(1, round(width * r[c] / top))
            print(f"  {SHORT.get(c, c):<9} {bar:<{width}} {r[c]:.3f}")
    print()


def verdict(fat: list[tuple[str, dict[str, float]]], wan: list[tuple[str, dict[str, float]]]
            ) -> None:
    """The goals of issue 6, checked on these rows."""
    worst = max(r["multipath"] / r["LP"] for _, r in fat + wan)
    print(f"multipath within 5% of the LP everywhere: {'yes' if worst <= 1.05 else 'NO'} "
          f"(worst ratio {worst:.4f})")
    groups = {"stride": [r for n, r in fat if "stride" in n], "WAN": [r for _, r in wan]}
    for label, pick in groups.items():
        for base in ("ECMP", FLUID, "GFF", SINGLE, SP):
            better = sum(r["multipath"] < r[base] * (1 - 1e-6) for r in pick)
            ties = sum(abs(r["multipath"] - r[base]) <= r[base] * 1e-6 for r in pick)
            print(f"{label} cases: multipath better than {base} in {better} of {len(pick)}, "
                  f"equal in {ties}")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[4, 8], help="fat-tree arities")
    parser.add_argument("--wan", nargs="+", default=list(WANS), help="topohub sndlib names")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random patterns")
    parser.add_argument("--ecmp-seed", type=int, default=0, help="seed of the ECMP flow hash")
    parser.add_argument("--no-bars", dest="bars", action="store_false")
    args = parser.parse_args(argv)
    fat = fat_tree_cases(args.k, args.seed, args.ecmp_seed)
    wan = wan_cases(args.wan, args.ecmp_seed)
    table("(a) fat-trees, Hedera patterns: max link utilisation", fat)
    table(f"(b) SNDlib WANs (topohub), demands scaled to LP = {WAN_TARGET}", wan)
    if args.bars:
        bars(fat + wan)
    verdict(fat, wan)


if __name__ == "__main__":
    main()
