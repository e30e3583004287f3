"""Benchmark 1 (issues 6 and 14): maximum link utilisation of integral placements
(one path per flow), with the splittable LP optimum as a bound.

    python -m benchmarks.quality [--k 4 8] [--wan abilene geant ...] [--seed 1]
                                 [--ecmp-seed 0] [--plot FILE.svg]

Compared, all integral (every demand is one flow on one path):
"shortest path" = fewest hops, lowest dpid among equals (one path per switch
pair); "static hash" = the controller's least-cost path picked by the stable
hash of the host pair (--routing static, and every trail before it moves);
"ECMP" = hash-based ECMP, the least-cost path the hash of the flow's 5-tuple
picks (seed --ecmp-seed); "GFF" = Hedera's Global First Fit over the
least-cost paths, topped up with the next cheapest to 4; "placement" =
sdnscent.placement.place, the controller's elephant placement (first fit,
local search, exact min-max assignment in HiGHS, 0.25 s), started from the
static hash paths, hysteresis off (a fresh placement), over the controller's
candidates: the current path, then GFF's evenly spaced in the controller's
order (sdnscent.core.trails.spread), at most sdnscent.core.trails.CANDIDATES_MAX
(16); "placement (all GFF paths)" = the same
over all of GFF's candidates (like for like with GFF; the k=8 fat-tree has 16
least-cost paths between pods).

"LP bound" is the min max-utilisation multicommodity flow LP: demands may be
split over many paths, which one TCP flow cannot be, so no integral placement
can go below it. It is a bound, not a competitor; the multipath planner
(column generation) reaches it by construction, which the last lines check.

(a) Generated fat-trees (1 Gbit/s links, hosts included) with Hedera's
patterns; every host sends one flow at its natural demand
(sdnscent.elephants.natural_demands: max-min fair over the NICs, as Hedera
estimates it). (b) SNDlib networks shipped by topohub with their demand
matrices, each demand one flow; no capacities there, so every link gets the
same one and each matrix is scaled so that the LP bound is 0.9 (a busy
network: below that, first fit rarely has to move a flow).

Per case: max link utilisation per method (lower is better), placement's
ratios to the bound and to the others, then aggregate / ideal: the flows'
max-min fair rates on the paths each method chose (TCP's fair share, capped at
the demand) summed, over the demands summed (1.0 = every flow at its demand;
the splittable bound can reach 1.0 wherever the LP bound is at most 1). --plot
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
    GFF_MIN_CANDIDATES,
    Fabric,
    controller_single,
    ecmp,
    global_first_fit,
    min_hop,
)
from sdnscent.core.trails import CANDIDATES_MAX, spread
from sdnscent.elephants import FlowRate, natural_demands
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
from sdnscent.placement import LinkKey, place
from sdnscent.traffic import PATTERNS, pattern

WANS = ("abilene", "geant", "polska", "nobel-germany", "janos-us", "germany50")
WAN_TARGET = 0.9  # LP bound after scaling a WAN's demands
SP, STATIC, PLACE, BOUND = "shortest path", "static hash", "placement", "LP bound"
PLACE_ALL = "placement (all GFF paths)"
INTEGRAL = (SP, STATIC, "ECMP", "GFF", PLACE, PLACE_ALL)
COLUMNS = (*INTEGRAL, BOUND)  # the bars, the plot and the utilisation table
SHORT = {SP: "SP", STATIC: "static", PLACE: "place", PLACE_ALL: "place-all",
         BOUND: "bound"}  # short column heads
RATIOS = ((PLACE, BOUND), (PLACE, "GFF"), (PLACE, "ECMP"), (PLACE, STATIC),
          (PLACE_ALL, BOUND), (PLACE_ALL, "GFF"))  # (a, b): a / b
FAT_TITLE = ("(a) fat-trees, Hedera patterns: max link utilisation, one path per flow "
             "(LP bound: split flows)")
WAN_TITLE = f"(b) SNDlib WANs (topohub), demands scaled to LP bound = {WAN_TARGET}"
# One colour per method in the plot (matplotlib's tab10, fixed so that it never
# depends on the style in force); the bound is grey.
COLOURS = {SP: "#d62728", STATIC: "#ff7f0e", "ECMP": "#9467bd", "GFF": "#8c564b",
           PLACE: "#2ca02c", PLACE_ALL: "#98df8a", BOUND: "#7f7f7f"}
NO_MATPLOTLIB = ("--plot needs matplotlib, which is not installed: run `make bench` "
                 "or `.venv/bin/pip install -e '.[bench]'`")

Row = tuple[str, dict[str, float]]


def _links(path: Sequence[int]) -> tuple[LinkKey, ...]:
    """The directed links (node index pairs) of a node path."""
    return tuple(zip(path, path[1:], strict=False))


def placement(fabric: Fabric, demands: Sequence[Demand], current: Sequence[Trail],
              limit: int | None = CANDIDATES_MAX) -> list[Trail]:
    """Each demand on the path sdnscent.placement.place picks, starting from `current`
    (one path per demand), over at most `limit` candidates (None: GFF's); hysteresis
    off."""
    net = fabric.net
    rates = {n: d.rate for n, d in enumerate(demands)}
    now = {n: current[n].paths[0] for n in rates}
    candidates: dict[int, list[tuple[int, ...]]] = {}
    for n, d in enumerate(demands):
        found = fabric.router(d.app).candidate_paths(d.src, d.dst, GFF_MIN_CANDIDATES)
        paths = [now[n]]
        for path in (found if limit is None else spread(found, limit)):
            if path not in paths:
                paths.append(path)
        candidates[n] = paths if limit is None else paths[:limit]
    capacity = {(a.u, a.v): a.capacity for a in net.arcs}
    result = place(rates, {n: [_links(p) for p in ps] for n, ps in candidates.items()},
                   {n: _links(now[n]) for n in rates}, capacity, gain=0.0)
    return [Trail(d, (candidates[n][result.choice.get(n, 0)],), (1.0,))
            for n, d in enumerate(demands)]


def aggregate(net: Network, trails: Sequence[Trail]) -> float:
    """Max-min fair rates of single-path flows capped at their demands (progressive
    filling), summed, over the demands summed."""
    flows = [(net.path_arcs(t.paths[0]), t.demand.rate) for t in trails]
    rate = [0.0] * len(flows)
    left = [a.capacity for a in net.arcs]
    active = set(range(len(flows)))
    while active:
        users: dict[int, int] = {}
        for f in active:
            for a in flows[f][0]:
                users[a] = users.get(a, 0) + 1
        step = min([left[a] / n for a, n in users.items()]
                   + [flows[f][1] - rate[f] for f in active])
        for f in active:
            rate[f] += step
        for a, n in users.items():
            left[a] -= step * n
        full = {a for a in users if left[a] <= 1e-9 * net.arcs[a].capacity}
        active = {f for f in active if rate[f] < flows[f][1] * (1 - 1e-9)
                  and not full.intersection(flows[f][0])}
    return sum(rate) / sum(d for _, d in flows)


def evaluate(net: Network, demands: Sequence[Demand], ecmp_seed: int = 0) -> dict[str, float]:
    """Max utilisation and aggregate / ideal of every method, the bound, and seconds."""
    fabric = Fabric(net)

    def mlu(trails: Sequence[Trail]) -> float:
        return max_utilization(net, arc_loads(net, trails))

    static = controller_single(fabric, demands)
    upper = mlu(static)
    start = time.perf_counter()
    lp = min_max_utilization(fabric, demands, upper)
    lp_s = time.perf_counter() - start
    start = time.perf_counter()
    placed = placement(fabric, demands, static)
    place_s = time.perf_counter() - start
    plans = {SP: min_hop(fabric, demands), STATIC: static,
             "ECMP": ecmp(fabric, demands, seed=ecmp_seed),
             "GFF": global_first_fit(fabric, demands), PLACE: placed,
             PLACE_ALL: placement(fabric, demands, static, None)}
    out = {BOUND: lp.value, "lp_s": lp_s, "place_s": place_s,
           "multipath": mlu(multipath(fabric, demands, upper=upper).trails)}
    for name, trails in plans.items():
        out[name] = mlu(trails)
        out[f"{name} agg"] = aggregate(net, trails)
    return out


def fat_tree_demands(net: Network, k: int, name: str, seed: int) -> list[Demand]:
    """Hedera's pattern `name`: one flow per host at its natural demand (1 Gbit/s NICs)."""
    hosts = [net.ids[i] for i in sorted(net.hosts)]
    flows = [FlowRate(n, str(s), str(t), 0.0)
             for n, (s, t) in enumerate(pattern(name, hosts, k // 2, k * k // 4, seed))]
    nic = {str(net.ids[i]): net.arcs[net.out_arcs[i][0]].capacity for i in net.hosts}
    rates = natural_demands(flows, nic)
    return [Demand(net.index[f.src], net.index[f.dst], rates[f.trail_id]) for f in flows
            if rates[f.trail_id] > 0]


def fat_tree_cases(ks: Sequence[int], seed: int, ecmp_seed: int = 0) -> list[Row]:
    """One row per (k, pattern)."""
    rows = []
    for k in ks:
        net = parse_network(fat_tree(k), f"fat-tree k={k}")
        for name in PATTERNS:
            demands = fat_tree_demands(net, k, name, seed)
            rows.append((f"k={k} {name}", evaluate(net, demands, ecmp_seed)))
    return rows


def wan_cases(names: Sequence[str], ecmp_seed: int = 0) -> list[Row]:
    """One row per SNDlib network, demands scaled to an LP bound of WAN_TARGET."""
    rows = []
    for name in names:
        net = parse_network(topohub.get(f"sndlib/{name}"), name)
        lp = min_max_utilization(Fabric(net), net.demands).value
        demands = [Demand(d.src, d.dst, d.rate * WAN_TARGET / lp) for d in net.demands]
        label = f"{name} ({len(net.ids)} nodes, {len(net.arcs) // 2} links, {len(demands)} dem.)"
        rows.append((label, evaluate(net, demands, ecmp_seed)))
    return rows


def _print(title: str, lines: list[tuple[str, ...]]) -> None:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    print(title)
    for n, line in enumerate(lines):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(line, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print()


def table(title: str, rows: list[Row]) -> None:
    """Print max utilisation per method with placement's ratios, then aggregate / ideal."""
    head = ("case", *(SHORT.get(c, c) for c in COLUMNS),
            *(f"{SHORT[a]}/{SHORT.get(b, b)}" for a, b in RATIOS), "place s")
    lines = [head]
    for label, r in rows:
        lines.append((label, *(f"{r[c]:.3f}" for c in COLUMNS),
                      *(f"{r[a] / r[b]:.3f}" for a, b in RATIOS), f"{r['place_s']:.2f}"))
    _print(title, lines)
    lines = [("case", *(SHORT.get(c, c) for c in INTEGRAL), "bound")]
    for label, r in rows:
        lines.append((label, *(f"{r[f'{c} agg']:.3f}" for c in INTEGRAL),
                      "1.000" if r[BOUND] <= 1 + 1e-6 else "-"))
    _print(f"{title.split(':')[0]}: aggregate / ideal (max-min fair rates on the chosen "
           "paths over the demands; higher is better)", lines)


def bars(rows: list[Row], width: int = 40) -> None:
    """ASCII bars of max utilisation per case and method (--plot draws them as an SVG)."""
    top = max(r[c] for _, r in rows for c in COLUMNS)
    for label, r in rows:
        print(label)
        for c in COLUMNS:
            bar = "#" * max(1, round(width * r[c] / top))
            print(f"  {SHORT.get(c, c):<9} {bar:<{width}} {r[c]:.3f}")
    print()


def plot(path: str, panels: Sequence[tuple[str, list[Row]]], command: str) -> None:
    """Grouped bars of max utilisation, one group per case and one bar per method
    (COLUMNS, the LP bound last and hatched), one subplot per (title, rows) panel,
    stacked; written as SVG to path.

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
                label = f"{column} (splittable: no integral method goes below it)" \
                    if column == BOUND else column
                ax.bar([i + (n - (len(COLUMNS) - 1) / 2) * width for i in range(len(rows))],
                       [r[column] for _, r in rows], width, label=label,
                       color=COLOURS[column], hatch="//" if column == BOUND else None)
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
        fig.suptitle("sdnscent benchmark 1 (quality): maximum link utilisation per case, "
                     f"one path per flow, and the splittable LP bound\n{command}")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=len(COLUMNS),
                   frameon=False)
        fig.savefig(path, format="svg", metadata={"Date": None})


def verdict(fat: list[Row], wan: list[Row]) -> None:
    """What the rows show: the bound holds, placement against the others."""
    rows = fat + wan
    below = [(label, c) for label, r in rows for c in INTEGRAL if r[c] < r[BOUND] * (1 - 1e-6)]
    print(f"integral methods at or above the LP bound everywhere: "
          f"{'yes' if not below else 'NO ' + repr(below)}")
    worst = max(r["multipath"] / r[BOUND] for _, r in rows)
    print(f"check: the multipath planner (splittable) reaches the LP bound, worst ratio "
          f"{worst:.4f}")
    for label, pick in (("fat-tree", [r for _, r in fat]), ("WAN", [r for _, r in wan])):
        if not pick:
            continue
        for ours in (PLACE, PLACE_ALL):
            at = sum(r[ours] <= r[BOUND] * (1 + 1e-6) for r in pick)
            print(f"{label} cases: {ours} at the LP bound in {at} of {len(pick)}")
            for base in ("GFF", "ECMP", STATIC, SP):
                better = sum(r[ours] < r[base] * (1 - 1e-6) for r in pick)
                worse = sum(r[ours] > r[base] * (1 + 1e-6) for r in pick)
                print(f"{label} cases: {ours} better than {base} in {better} of {len(pick)}, "
                      f"equal in {len(pick) - better - worse}, worse in {worse}")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[4, 8], help="fat-tree arities")
    parser.add_argument("--wan", nargs="*", default=list(WANS), help="topohub sndlib names")
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
    if wan:
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
