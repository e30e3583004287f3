"""Planning at WAN scale: `plan --mode fast` against the plain LP in HiGHS.

    python -m benchmarks.wan [--lp-cap SECONDS] [--quick] [--topologies A,B] [--models M,N]

For each topology and traffic model, three child processes (each one's peak
RSS is its own): the fast planner (Fabric + treeflow, trails not written), the
plain source-aggregated node-arc LP (sdnscent.mcf.min_max_utilization) killed
after --lp-cap seconds (default 1800; --quick: 60 s and the two small WANs
only). Demands: all ordered node pairs; gravity rate = degree(s) x degree(t)
x 1 Mbit/s, uniform 10 Mbit/s. MLU values are therefore arbitrary in scale:
compare within a row.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).parent / "data"
TOPOLOGIES = ("Uninett2010", "TataNld", "UsCarrier", "Kdl")
MODELS = ("gravity", "uniform")


def network(name: str):
    """The Network of a topology name, without demands."""
    from sdnscent.netfile import load_network, parse_network

    if (DATA / f"{name}.json").exists():
        return load_network(DATA / f"{name}.json")
    import topohub

    data = topohub.get(f"topozoo/{name}")
    data["graph"].pop("demands", None)
    return parse_network(data, name)


def demands(net, model: str):
    """All-pairs demands of a traffic model."""
    from sdnscent.netfile import Demand

    deg = [0] * len(net.ids)
    for a in net.arcs:
        deg[a.u] += 1
    n = len(net.ids)
    if model == "gravity":
        return [Demand(s, t, 1e6 * deg[s] * deg[t]) for s in range(n) for t in range(n)
                if s != t]
    return [Demand(s, t, 1e7) for s in range(n) for t in range(n) if s != t]


def child(kind: str, name: str, model: str) -> dict:
    """Run one measurement in this process and return its numbers."""
    from sdnscent.baselines import Fabric
    from sdnscent.fastplan import fast
    from sdnscent.mcf import min_max_utilization

    net = network(name)
    ds = demands(net, model)
    start = time.perf_counter()
    fabric = Fabric(net)
    out: dict = {"nodes": len(net.ids), "arcs": len(net.arcs), "demands": len(ds)}
    if kind == "fast":
        plan = fast(fabric, ds)
        sol = plan.solution
        out.update(value=sol.value, bound=sol.bound, single=sol.history[0][2])
    else:
        out["value"] = min_max_utilization(fabric, ds).value
    out["seconds"] = time.perf_counter() - start
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def measure(kind: str, name: str, model: str, cap: float | None) -> dict | None:
    cmd = [sys.executable, "-m", "benchmarks.wan", "--child", kind, name, model]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=cap, check=True)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lp-cap", type=float, default=1800.0, metavar="SECONDS")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--topologies", default=",".join(TOPOLOGIES))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    names = args.topologies.split(",")
    cap = args.lp_cap
    if args.quick:
        names, cap = [n for n in names if n in ("Uninett2010", "UsCarrier")], 60.0
    head = ("topology", "model", "demands", "LP s", "fast s", "speed-up", "single MLU",
            "fast MLU", "bound", "gap", "LP MLU", "fast/LP", "fast MB", "LP MB")
    print("  ".join(head), flush=True)
    for name in names:
        for model in args.models.split(","):
            f = measure("fast", name, model, None)
            lp = measure("lp", name, model, cap)
            assert f is not None
            gap = f["value"] / f["bound"] - 1
            row = (name, model, f"{f['demands']:,}",
                   f"{lp['seconds']:.1f}" if lp else f">{cap:.0f}", f"{f['seconds']:.2f}",
                   f"{lp['seconds'] / f['seconds']:.0f}x" if lp
                   else f">{cap / f['seconds']:.0f}x",
                   f"{f['single']:.4g}", f"{f['value']:.4g}", f"{f['bound']:.4g}",
                   f"{gap:.2%}", f"{lp['value']:.4g}" if lp else "-",
                   f"{f['value'] / lp['value']:.4f}" if lp else "-",
                   f"{f['rss_mb']:.0f}", f"{lp['rss_mb']:.0f}" if lp else "-")
            print("  ".join(row), flush=True)
            if lp:
                assert f["bound"] <= lp["value"] * (1 + 1e-6) <= f["value"] * (1 + 1e-6), row
    return 0


if __name__ == "__main__":
    sys.exit(main())
