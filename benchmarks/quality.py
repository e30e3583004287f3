"""Benchmark 1 (issue 6): maximum link utilisation of the multipath planner against
the LP optimum, shortest path, the controller's single path, ECMP and Hedera's
Global First Fit.

    python -m benchmarks.quality [--k 4 8] [--wan abilene geant ...] [--seed 1]
                                 [--ecmp-seed 0] [--plot FILE.svg]

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
multipath / baseline: below 1 is better. Prints tables and ASCII bars; --plot
also draws the utilisations as grouped bars in an SVG (needs matplotlib: the
`bench` extra, which `make bench` installs).
"""

from __future__ import annotations

import argparse
import shlex
import sys
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
FAT_TITLE = "(a) fat-trees, Hedera patterns: max link utilisation"
WAN_TITLE = f"(b) SNDlib WANs (topohub), demands scaled to LP = {WAN_TARGET}"
# One colour per planner in the plot (matplotlib's tab10, fixed so that it never
# depends on the style in force).
COLOURS = {"LP": "#1f77b4", "multipath": "#2ca02c", SP: "#d62728", SINGLE: "#ff7f0e",
           "ECMP": "#9467bd", FLUID: "#c5b0d5", "GFF": "#8c564b"}
NO_MATPLOTLIB = ("--plot needs matplotlib, which is not installed: run `make bench` "
                 "or `.venv/bin/pip install -e '.[bench]'`")


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
    """ASCII bars of max utilisation per case and planner (--plot draws them as an SVG)."""
    top = max(r[c] for _, r in rows for c in COLUMNS)
    for label, r in rows:
        print(label)
        for c in COLUMNS:
            bar = "#" * max(1, round(width * r[c] / top))
            print(f"  {SHORT.get(c, c):<9} {bar:<{width}} {r[c]:.3f}")
    print()


def plot(path: str, panels: Sequence[tuple[str, list[tuple[str, dict[str, float]]]]],
         command: str) -> None:
    """Grouped bars of max utilisation, one group per case and one bar per planner
    (COLUMNS), one subplot per (title, rows) panel, stacked; written as SVG to path.

    The rows are those that table() and bars() print. Text stays text in the SVG
    (svg.fonttype none) and ids come from a fixed salt, so the file is small and the
    same for the same rows. Raises ImportError without matplotlib.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    panels = [(title, rows) for title, rows in panels if rows]
    if not panels:
        raise ValueError("nothing to plot: no rows")
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "sdnscent",
                                "font.size": 9}):
        fig = Figure(figsize=(14, 4.2 * len(panels) + 1.2), layout="constrained")
        axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
        width = 0.8 / len(COLUMNS)
        for ax, (title, rows) in zip(axes, panels, strict=True):
            for n, column in enumerate(COLUMNS):
                ax.bar([i + (n - (len(COLUMNS) - 1) / 2) * width for i in range(len(rows))],
                       [r[column] for _, r in rows], width, label=column,
                       color=COLOURS[column])
            # "abilene (12 nodes, ...)" -> two lines under the group.
            ax.set_xticks(range(len(rows)),
                          [label.replace(" (", "\n(", 1) for label, _ in rows])
            if max(len(label) for label, _ in rows) > 12 and len(rows) > 8:
                ax.tick_params(axis="x", labelrotation=30)
                for tick in ax.get_xticklabels():
                    tick.set_horizontalalignment("right")
                    tick.set_rotation_mode("anchor")
            ax.set_xlim(-0.5, len(rows) - 0.5)
            ax.set_title(title)
            ax.set_ylabel("max link utilisation\n(offered load / capacity)")
            ax.yaxis.grid(True, linewidth=0.5, color="#cccccc")
            ax.set_axisbelow(True)
        axes[-1].set_xlabel("case (fat-tree pattern or SNDlib network); lower is better")
        fig.suptitle("sdnscent benchmark 1 (quality): maximum link utilisation per case and "
                     f"planner\n{command}")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=len(COLUMNS),
                   frameon=False)
        fig.savefig(path, format="svg", metadata={"Date": None})


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
    parser.add_argument("--plot", metavar="FILE",
                        help="also draw the utilisations as grouped bars in this SVG file "
                             "(needs matplotlib: make bench, or pip install -e .[bench])")
    args = parser.parse_args(argv)
    if args.plot:
        try:  # fail before the benchmark's seconds, not after
            import matplotlib  # noqa: F401
        except ImportError:
            parser.exit(2, f"{parser.prog}: error: {NO_MATPLOTLIB}\n")
    fat = fat_tree_cases(args.k, args.seed, args.ecmp_seed)
    wan = wan_cases(args.wan, args.ecmp_seed)
    table(FAT_TITLE, fat)
    table(WAN_TITLE, wan)
    if args.bars:
        bars(fat + wan)
    verdict(fat, wan)
    if args.plot:
        words = sys.argv[1:] if argv is None else list(argv)
        plot(args.plot, [(FAT_TITLE, fat), (WAN_TITLE, wan)],
             shlex.join(["python", "-m", "benchmarks.quality", *words]))
        print(f"plot: {args.plot}", file=sys.stderr)


if __name__ == "__main__":
    main()
