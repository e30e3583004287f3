"""`python -m benchmarks.online`: Hedera's testbed experiment, run online.

A k=4 fat-tree in Mininet with every link shaped to --bw Mbit/s (TCLink, htb);
one long TCP flow (iperf3) per host, all started together, in Hedera's traffic
patterns (stride 1/2/4/8, staggered, random, random bijection; seeded). Each
pattern runs under four routings, each in its own network and controller:

* ``perfect``: the best placement of the flows, computed offline for the
  known pattern (sdnscent.placement, exact) and installed as plain IP flows
  with ovs-ofctl above the controller's rules: the ceiling.
* ``static``: the controller with ``--routing static`` (one shortest path per
  host pair, chosen among equals by a hash: what a plain shortest-path
  controller does).
* ``ecmp``: ``--routing ecmp`` (every least-cost path, hashed per flow by a
  select group at the ingress).
* ``scent``: the default, ``--routing scent`` (elephants detected from the
  trail counters, natural demand, global placement each period).

Score: the flows' aggregate rate over the second half of the run, divided by
the number of flows times the rate one flow gets alone on the same fabric
(measured at the start of the run). Convergence: the first second at which
the aggregate (a 2-s mean) comes within 5 % of its second-half mean. Label
misses: labelled packets that found no entry on a switch (the controller's
``label-miss`` packet-ins) while the pattern ran; the controller restores the
entry from the store and resends the packet, unless the label is unknown there
(``dropped``: those are lost). Events that explain misses (a switch
reconnecting, a link timing out) are counted per run (WATCHED).

The links between switches run at the NICs' rate times LABEL_ROOM (3.008 Mbit/s
at 3): room for the 4-byte trail label of a full frame, as their MTU (1600)
has room for it. At exactly the NICs' rate (``--fabric-bw 3``) every labelled
flow's bottleneck moves from its sender's NIC to its first fabric link, and
the labelled routings lose 3-7 % per flow on stride 2 and 4 against the
perfect placement's plain IP flows (docs/results.rst).

Needs root, Open vSwitch and iperf3 (``make setup``); holds the Mininet lock.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from sdnscent.elephants import FlowRate, natural_demands
from sdnscent.placement import place

K = 4
PATTERNS = ("stride1", "stride2", "stride4", "stride8", "staggered", "random", "bijection")
MODES = ("perfect", "static", "ecmp", "scent")
PERFECT_PRIORITY = 60000  # above every rule of the controller's pipeline
PERFECT_COOKIE = 0xBE57  # not the controller's (0x5ce7...): its audit leaves them alone
BASE_PORT = 5201
# controller events that explain label misses (a switch reconnecting, a link
# timing out, a trail failing), counted per run
WATCHED = ("switch", "switch-resync", "audit", "link", "label-miss", "trail-failed",
           "trail-removed", "no-path")
WITHIN = 0.05  # convergence: within 5 % of the final rate
LABEL_ROOM = 1518 / 1514  # a full frame with its trail label, over the frame without


# Traffic patterns (Hedera, section 6) ------------------------------------------------

def host_pod(host: int, k: int = K) -> int:
    """Pod of host h<host> (1-based, numbered by pod and edge switch)."""
    return (host - 1) // (k * k // 4)


def host_edge(host: int, k: int = K) -> int:
    """Edge switch index (global) of host h<host>."""
    return (host - 1) // (k // 2)


def pattern_pairs(name: str, seed: int, k: int = K) -> list[tuple[int, int]]:
    """(src, dst) host numbers of a pattern: one flow per source host.

    strideN: host x sends to host (x + N) mod hosts. staggered: to a host on the
    same edge switch with probability 0.2, in the same pod with 0.3, else in
    another pod. random: to any other host. bijection: a random permutation
    without fixed points.
    """
    hosts = k ** 3 // 4
    rng = random.Random(f"{name}:{seed}")
    everyone = range(1, hosts + 1)
    if name.startswith("stride"):
        step = int(name[6:])
        return [(x, (x - 1 + step) % hosts + 1) for x in everyone]
    if name == "random":
        return [(x, rng.choice([y for y in everyone if y != x])) for x in everyone]
    if name == "bijection":
        while True:
            order = list(everyone)
            rng.shuffle(order)
            if all(a != b for a, b in zip(everyone, order, strict=True)):
                return list(zip(everyone, order, strict=True))
    if name == "staggered":
        pairs = []
        for x in everyone:
            roll = rng.random()
            if roll < 0.2:
                pool = [y for y in everyone if host_edge(y, k) == host_edge(x, k) and y != x]
            elif roll < 0.5:
                pool = [y for y in everyone if host_pod(y, k) == host_pod(x, k)
                        and host_edge(y, k) != host_edge(x, k)]
            else:
                pool = [y for y in everyone if host_pod(y, k) != host_pod(x, k)]
            pairs.append((x, rng.choice(pool)))
        return pairs
    raise ValueError(f"unknown pattern {name!r}; choose from {', '.join(PATTERNS)}")


# Measurement -------------------------------------------------------------------------

@dataclass
class Run:
    """One pattern under one routing: per-second aggregate and what it scores."""

    mode: str
    pattern: str
    flows: int
    alone_bps: float
    series: list[float] = field(default_factory=list)  # aggregate bit/s per second
    label_misses: int = 0
    retransmits: int = 0
    misses_dropped: int = 0  # label misses whose label was unknown there: dropped
    events: dict[str, int] = field(default_factory=dict)  # WATCHED kinds while it ran

    @property
    def final_bps(self) -> float:
        """Mean aggregate over the second half."""
        half = self.series[len(self.series) // 2:]
        return sum(half) / len(half) if half else 0.0

    @property
    def score(self) -> float:
        """final / (flows x the rate of one flow alone)."""
        return self.final_bps / (self.flows * self.alone_bps) if self.alone_bps else 0.0

    @property
    def convergence_s(self) -> float:
        """Seconds from the start until the aggregate, as a 2-s mean, first comes
        within WITHIN of the final rate (nan if it never does)."""
        final = self.final_bps
        for i in range(len(self.series) - 1):
            if (self.series[i] + self.series[i + 1]) / 2 >= (1 - WITHIN) * final:
                return float(i)
        return float("nan")


def aggregate(reports: Sequence[dict[str, Any]], seconds: int) -> tuple[list[float], int]:
    """Per-second sum of the flows' rates from iperf3 -J reports; and retransmits."""
    series = [0.0] * seconds
    retransmits = 0
    for report in reports:
        for interval in report.get("intervals", []):
            total = interval["sum"]
            at = int(round(total["start"]))
            if 0 <= at < seconds:
                series[at] += total["bits_per_second"]
        retransmits += report.get("end", {}).get("sum_sent", {}).get("retransmits", 0) or 0
    return series, retransmits


def metric(ctl: Any, name: str, labels: str) -> float:
    """One sample of the controller's /metrics (0 if absent)."""
    url = ctl.api.removesuffix("/api/v1") + "/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    selector = re.escape(name) + (rf"\{{{re.escape(labels)}\}}" if labels else "")
    found = re.search(rf"^{selector} (\S+)$", text, re.M)
    return float(found[1]) if found else 0.0


def watched_events(ctl: Any, since: float) -> dict[str, int]:
    """How many events of each WATCHED kind the controller recorded since `since`."""
    with urllib.request.urlopen(ctl.api + "/events", timeout=5) as reply:
        events = json.load(reply)["events"]
    return dict(Counter(e["kind"] for e in events
                        if e["kind"] in WATCHED and e["time"] >= since))


def iperf_flows(net: Any, pairs: Sequence[tuple[int, int]], seconds: int
                ) -> list[dict[str, Any]]:
    """Run one iperf3 flow per pair, all at once; their JSON reports."""
    servers = []
    for i, (_, dst) in enumerate(pairs):
        servers.append(net.host(f"h{dst}").popen(
            ["iperf3", "-s", "-1", "-p", str(BASE_PORT + i)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)
    clients = [net.host(f"h{src}").popen(
        ["iperf3", "-c", net.host(f"h{dst}").IP(), "-p", str(BASE_PORT + i), "-t", str(seconds),
         "-i", "1", "-J", "--connect-timeout", "5000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for i, (src, dst) in enumerate(pairs)]
    reports = []
    for client in clients:
        out, err = client.communicate(timeout=seconds + 60)
        try:
            reports.append(json.loads(out))
        except json.JSONDecodeError:
            raise RuntimeError(f"iperf3 gave no report: {err.decode()[-300:]}") from None
    for server in servers:
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    return reports


def warm_up(net: Any, pairs: Sequence[tuple[int, int]]) -> None:
    """One ping per pair (both ways resolved, trails set up) before the flows start."""
    from mininet_tests.harness import ping, wait_for
    for src, dst in sorted(set(pairs)):
        a, b = net.host(f"h{src}"), net.host(f"h{dst}")
        wait_for(lambda a=a, b=b: ping(a, b.IP()), 20, f"h{src} -> h{dst}")


# The perfect placement ---------------------------------------------------------------

def fabric_graph(net: Any) -> nx.MultiDiGraph:
    """Switches and hosts of a running Mininet network, edges keyed by out port."""
    graph = nx.MultiDiGraph()
    for link in net.net.links:
        a, b = link.intf1, link.intf2
        pa, pb = a.node.ports[a], b.node.ports[b]
        graph.add_edge(a.node.name, b.node.name, key=pa, port=pa)
        graph.add_edge(b.node.name, a.node.name, key=pb, port=pb)
    return graph


def perfect_paths(net: Any, pairs: Sequence[tuple[int, int]], bps: float
                  ) -> dict[int, list[tuple[str, int]]]:
    """Flow index -> [(switch, out port)] of the best placement of `pairs`.

    Candidates: every shortest path; demands: the natural demands over the
    NICs; placed exactly (sdnscent.placement, min-max with HiGHS).
    """
    graph = fabric_graph(net)
    nic = {f"h{h}": bps for p in pairs for h in p}
    demand = natural_demands([FlowRate(i, f"h{s}", f"h{d}", bps) for i, (s, d) in
                              enumerate(pairs)], nic)
    switch_graph = nx.DiGraph((u, v) for u, v in graph.edges() if u.startswith("s")
                              and v.startswith("s"))
    candidates: dict[int, list[tuple[tuple[str, int], ...]]] = {}
    for i, (s, d) in enumerate(pairs):
        first = next(iter(graph[f"h{s}"]))
        last = next(iter(graph.pred[f"h{d}"]))
        paths = [[first]] if first == last else \
            sorted(nx.all_shortest_paths(switch_graph, first, last))
        candidates[i] = [tuple((u, min(graph[u][v])) for u, v in zip(p, p[1:], strict=False))
                         for p in paths]
    capacity = {(u, key): bps for u, _, key in graph.edges(keys=True)}
    to_id = {n: i for i, n in enumerate(sorted(graph.nodes))}

    def ids(path: tuple[tuple[str, int], ...]) -> tuple[tuple[int, int], ...]:
        return tuple((to_id[u], port) for u, port in path)

    result = place(demand, {i: [ids(c) for c in cs] for i, cs in candidates.items()},
                   {i: ids(cs[0]) for i, cs in candidates.items()},
                   {(to_id[u], port): bps for (u, port) in capacity}, gain=0.0, time_limit=30)
    out = {}
    for i, (_, d) in enumerate(pairs):
        path = list(candidates[i][result.choice[i]])
        last = next(iter(graph.pred[f"h{d}"]))
        path.append((last, graph[last][f"h{d}"] and min(graph[last][f"h{d}"])))
        out[i] = path
    return out


def install_perfect(net: Any, pairs: Sequence[tuple[int, int]], bps: float) -> None:
    """Plain IP flows along the perfect placement, both ways, above the controller's."""
    paths = perfect_paths(net, pairs, bps)
    graph = fabric_graph(net)
    done: set[tuple[str, str]] = set()
    rules: list[tuple[str, str]] = []
    for i, (s, d) in enumerate(pairs):
        src, dst = net.host(f"h{s}").IP(), net.host(f"h{d}").IP()
        if (src, dst) not in done:
            done.add((src, dst))
            rules += [(sw, f"ip,nw_src={src},nw_dst={dst},actions=output:{port}")
                      for sw, port in paths[i]]
    for i, (s, d) in enumerate(pairs):  # replies: the same switches backwards
        src, dst = net.host(f"h{d}").IP(), net.host(f"h{s}").IP()
        if (src, dst) in done:
            continue
        done.add((src, dst))
        hops = [sw for sw, _ in paths[i]][::-1]
        nodes = [*hops, f"h{s}"]
        for here, there in zip(nodes, nodes[1:], strict=False):
            port = min(graph[here][there])
            rules.append((here, f"ip,nw_src={src},nw_dst={dst},actions=output:{port}"))
    for switch, rule in rules:
        subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-flow", switch,
                        f"table=0,priority={PERFECT_PRIORITY},cookie={PERFECT_COOKIE:#x},"
                        f"{rule}"], check=True)


def clear_perfect(net: Any) -> None:
    """Remove the perfect placement's flows (cookie PERFECT_COOKIE) everywhere."""
    for switch in net.net.switches:
        subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "del-flows", switch.name,
                        f"cookie={PERFECT_COOKIE:#x}/-1"], check=True)


# Networks ----------------------------------------------------------------------------

def shaped_fat_tree(bw_mbit: float, k: int = K, fabric_mbit: float | None = None) -> Any:
    """The k-ary fat-tree with every link a TCLink shaped to `bw_mbit` (htb); the
    links between switches to `fabric_mbit` instead when given (room for the label).

    Example: shaped_fat_tree(3.0, fabric_mbit=3.0 * LABEL_ROOM).
    """
    from mininet.link import TCLink

    from topologies.fattree import FatTreeTopo, _LinkEnd  # noqa: PLC2701 - same project

    class Shaped(FatTreeTopo):
        def _host_link(self, switch: str, host: str) -> None:
            self.addLink(switch, host, cls=TCLink, cls2=_LinkEnd, bw=bw_mbit,
                         params2={"txo": False})

        def _fabric_link(self, node1: str, node2: str) -> None:
            self.addLink(node1, node2, cls=TCLink, cls1=_LinkEnd, cls2=_LinkEnd,
                         bw=fabric_mbit or bw_mbit,
                         mtu=1600)

    return Shaped(k=k)


@contextmanager
def network(mode: str, bw_mbit: float, extra: Sequence[str] = (),
            fabric_mbit: float | None = None) -> Iterator[Any]:
    """A shaped fat-tree under a controller routing as `mode` wants (perfect: static);
    links between switches at `fabric_mbit` (default: `bw_mbit` x LABEL_ROOM), the
    controller counting every link at the NICs' rate `bw_mbit`."""
    from mininet_tests.harness import running_net
    routing = "static" if mode == "perfect" else mode
    args = ["--routing", routing, "--default-link-capacity", str(int(bw_mbit * 1e6)),
            "--trail-lease", "0", *extra]
    with running_net(shaped_fat_tree(bw_mbit, fabric_mbit=fabric_mbit or bw_mbit * LABEL_ROOM),
                     controller_args=args) as net:
        yield net


def alone_rate(net: Any, seconds: int = 8) -> float:
    """Mean rate of one pod-crossing flow h1 -> h16 alone, after its first 2 s."""
    warm_up(net, [(1, 16)])
    (report,) = iperf_flows(net, [(1, 16)], seconds)
    rates = [iv["sum"]["bits_per_second"] for iv in report["intervals"][2:]]
    return sum(rates) / len(rates)


def run_pattern(net: Any, mode: str, name: str, seed: int, seconds: int, alone: float,
                bw_mbit: float) -> Run:
    """One pattern under the network's routing; the Run it scored."""
    pairs = pattern_pairs(name, seed)
    if mode == "perfect":
        install_perfect(net, pairs, bw_mbit * 1e6)
    warm_up(net, pairs)
    misses = metric(net.ctl, "sdnscent_packet_ins_total", 'kind="label-miss"')
    dropped = metric(net.ctl, "sdnscent_label_misses_unknown_total", "")
    started = time.time()
    reports = iperf_flows(net, pairs, seconds)
    run = Run(mode, name, len(pairs), alone)
    run.series, run.retransmits = aggregate(reports, seconds)
    run.label_misses = int(metric(net.ctl, "sdnscent_packet_ins_total",
                                  'kind="label-miss"') - misses)
    run.misses_dropped = int(metric(net.ctl, "sdnscent_label_misses_unknown_total", "")
                             - dropped)
    run.events = watched_events(net.ctl, started)
    if mode == "perfect":
        clear_perfect(net)
    time.sleep(2.0)  # queues drain, idle trails stop counting as elephants
    return run


# Report ------------------------------------------------------------------------------

def mean_runs(runs: Sequence[Run]) -> list[Run]:
    """One Run per (pattern, mode): the repeats' per-second series averaged (so its
    score is their mean score), label misses and retransmits summed."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.pattern, r.mode), []).append(r)
    out = []
    for (pattern, mode), same in groups.items():
        first = same[0]
        length = min(len(r.series) for r in same)
        # scored against one alone-rate: the series scale to the first repeat's
        series = [sum(r.series[i] * first.alone_bps / r.alone_bps for r in same) / len(same)
                  for i in range(length)]
        events: Counter[str] = Counter()
        for r in same:
            events.update(r.events)
        out.append(Run(mode, pattern, first.flows, first.alone_bps, series,
                       sum(r.label_misses for r in same), sum(r.retransmits for r in same),
                       sum(r.misses_dropped for r in same), dict(events)))
    return out


def ratio_range(runs: Sequence[Run], pattern: str, a: str, b: str) -> tuple[float, float] | None:
    """Least and greatest score(a) / score(b) of one pattern over the repeats
    (each repeat's ratio is taken within that repeat: same hour, same host)."""
    ours = [r for r in runs if r.pattern == pattern and r.mode == a]
    theirs = [r for r in runs if r.pattern == pattern and r.mode == b]
    ratios = [x.score / y.score for x, y in zip(ours, theirs, strict=False) if y.score]
    return (min(ratios), max(ratios)) if ratios else None


def table(runs: Sequence[Run], patterns: Sequence[str], modes: Sequence[str]) -> str:
    """The results as an RST table: mean score per mode over the repeats, ratios of
    the means (with each repeat's range when there are several), the slowest
    convergence, the label misses of every repeat."""
    repeats = max(Counter((r.pattern, r.mode) for r in runs).values(), default=1)
    means = mean_runs(runs)
    by = {(r.pattern, r.mode): r for r in means}
    slowest: dict[tuple[str, str], float] = {}
    for r in runs:
        key = (r.pattern, r.mode)
        c = r.convergence_s
        slowest[key] = max(slowest.get(key, c), c) if c == c else float("nan")
    head = ["pattern", *modes]
    if "perfect" in modes and "scent" in modes:
        head.append("scent/perfect")
    if "ecmp" in modes and "scent" in modes:
        head.append("scent/ecmp")
    head += [f"converge {m} (s)" for m in modes if m != "perfect"]
    if "scent" in modes:
        head.append("label misses (scent)")
    rows = []
    for p in patterns:
        row = [p] + [f"{by[(p, m)].score:.2f}" if (p, m) in by else "-" for m in modes]
        for name, base in (("scent/perfect", "perfect"), ("scent/ecmp", "ecmp")):
            if name in head:
                text = _ratio(by, p, "scent", base)
                spread = ratio_range(runs, p, "scent", base) if repeats > 1 else None
                row.append(f"{text} ({spread[0]:.2f}-{spread[1]:.2f})" if spread else text)
        row += [f"{slowest[(p, m)]:.0f}" if (p, m) in slowest else "-"
                for m in modes if m != "perfect"]
        if "scent" in modes:
            row.append(misses_text(by[(p, "scent")]) if (p, "scent") in by else "-")
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule, "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)), rule]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join([*lines, rule])


def misses_text(run: Run) -> str:
    """A run's label misses for the table: '0', or '26 (0 dropped)'."""
    if not run.label_misses:
        return "0"
    return f"{run.label_misses} ({run.misses_dropped} dropped)"


def _ratio(by: dict[tuple[str, str], Run], p: str, a: str, b: str) -> str:
    if (p, a) in by and (p, b) in by and by[(p, b)].score:
        return f"{by[(p, a)].score / by[(p, b)].score:.2f}"
    return "-"


def plot(runs: Sequence[Run], patterns: Sequence[str], modes: Sequence[str], path: Path) -> None:
    """Grouped bars of the scores (matplotlib; the bench extra)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {(r.pattern, r.mode): r.score for r in mean_runs(runs)}
    fig, ax = plt.subplots(figsize=(8, 3.2))
    width = 0.8 / len(modes)
    for j, mode in enumerate(modes):
        ax.bar([i + j * width for i in range(len(patterns))],
               [by.get((p, mode), 0.0) for p in patterns], width, label=mode)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(patterns))], patterns)
    ax.set_ylabel("aggregate / ideal")
    ax.set_ylim(0, 1.05)
    ax.legend(ncol=len(modes), fontsize="small", loc="lower right")
    ax.set_title("Hedera's patterns, k=4 fat-tree, links shaped (second half of each run)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main(argv: Sequence[str] | None = None) -> list[Run]:
    """Run the experiment and print the table (progress on stderr)."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.online", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patterns", default=",".join(PATTERNS))
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--seconds", type=int, default=40, help="length of each run (default 40)")
    ap.add_argument("--bw", type=float, default=3.0, help="link rate in Mbit/s (default 3)")
    ap.add_argument("--fabric-bw", type=float,
                    help="rate of the links between switches in Mbit/s (default: --bw "
                         "x 1518/1514, room for the trail label; --bw itself is the "
                         "fabric without that room)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1,
                    help="run every mode this many times, in turn; the table shows means")
    ap.add_argument("--plot", type=Path, help="write a bar chart (SVG) here")
    ap.add_argument("--json", type=Path, help="write every run's series here")
    args = ap.parse_args(argv)
    patterns = [p for p in args.patterns.split(",") if p]
    modes = [m for m in args.modes.split(",") if m]
    for p in patterns:
        pattern_pairs(p, args.seed)  # unknown names fail before any network starts
    bad = [m for m in modes if m not in MODES]
    if args.fabric_bw is not None and args.fabric_bw <= 0:
        ap.error("--fabric-bw must be positive")
    if bad or args.seconds < 6 or args.repeat < 1:
        ap.error(f"unknown modes {bad}" if bad else "--seconds must be at least 6"
                 if args.seconds < 6 else "--repeat must be at least 1")
    runs: list[Run] = []
    alone, alones = 0.0, []
    for rep in range(1, args.repeat + 1):
        tag = f"[{rep}/{args.repeat}] " if args.repeat > 1 else ""
        for mode in modes:
            with network(mode, args.bw, fabric_mbit=args.fabric_bw) as net:
                rate = alone_rate(net)
                alone = alone or rate  # every mode of a repeat against the first one's
                alones += [] if len(alones) == rep else [rate]
                print(f"{tag}[{mode}] one flow alone: {rate / 1e6:.3f} Mbit/s", file=sys.stderr)
                for p in patterns:
                    run = run_pattern(net, mode, p, args.seed, args.seconds, alone, args.bw)
                    runs.append(run)
                    print(f"{tag}[{mode}] {p}: score {run.score:.3f}, converged after "
                          f"{run.convergence_s:.0f} s, {run.label_misses} label misses "
                          f"({run.misses_dropped} dropped), {run.retransmits} retransmits"
                          + "".join(f", {n} {k} events" for k, n in sorted(run.events.items())),
                          file=sys.stderr)
        alone = 0.0
    fabric = f" (between switches {args.fabric_bw or args.bw * LABEL_ROOM:.4g})"
    print(f"k={K} fat-tree, links {args.bw}{fabric} Mbit/s, {args.seconds} s per run, seed "
          f"{args.seed}, {args.repeat} repeat(s) (scores: their mean; ratios: of the means, "
          f"each repeat's range in brackets; convergence: the slowest); one flow alone: "
          f"{', '.join(f'{a / 1e6:.3f}' for a in alones)} Mbit/s")
    print(table(runs, patterns, modes))
    if args.json:  # first: a plot that fails must not cost the measurements
        args.json.write_text(json.dumps([{**r.__dict__, "score": r.score,
                                          "convergence_s": r.convergence_s} for r in runs],
                                        indent=1))
    if args.plot:
        plot(runs, patterns, modes, args.plot)
    return runs


if __name__ == "__main__":
    main()
