"""Re-planning a million trails' paths after a link failure: the controller's planner.

    python -m benchmarks.replan_paths [--k 16] [--cables 6] [--seed 1]

A k-ary fat-tree in pure Python (benchmarks.planning.fat_tree; k=16: 320
switches, 1,024 hosts) and one Planner, the object the controller plans default
trails with (``--routing static``: Planner.host_hops). Every ordered host pair is
a trail (1,047,552 at k=16):

1. full plan: host_hops of every pair on a fresh planner, timed; that is what a
   full re-plan of the fabric costs the planner.
2. per failed cable (aggregation-core and edge-aggregation up-links, spread over
   pods): the trails whose path crossed it are found in an index (as the
   controller's trail index finds them; not timed), then ``remove_port`` and
   host_hops of each of those trails are timed, two ways in turn on the same
   cable, each from the warm caches of the steady state (every edge pair
   asked once):
   - follow: the planner follows the removal (Planner._follow_removal);
   - start over: the planner forgets every answer first (what any other
     topology change costs it, and what every change cost before).
   Each re-planned path is checked against a planner built afresh on the
   failed topology, and must avoid the cable. The cable then comes back.

Prints medians over the cables, the ratio start over / follow, and the peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence

from benchmarks.planning import fat_tree
from sdnscent.planner import Planner
from sdnscent.topology import Host, Topology


def progress(text: str) -> None:
    """A progress line on stderr."""
    print(text, file=sys.stderr, flush=True)


def cables(topo: Topology, k: int, count: int) -> list[tuple[int, int]]:
    """`count` up-link ports (switch, port), alternately aggregation-core and
    edge-aggregation, each in another pod."""
    half = k // 2
    out = []
    for i in range(count):
        pod = (i * 5) % k
        first = half * half + pod * k + 1
        if i % 2 == 0:
            switch = first + i % half  # an aggregation switch; ports half+1.. go to cores
        else:
            switch = first + half + i % half  # an edge switch; ports half+1.. to aggregation
        port = half + 1 + (i // 2) % half
        assert topo.link_from(switch, port) is not None
        out.append((switch, port))
    return out


def warm(planner: Planner, edges: Sequence[int]) -> None:
    """Ask every edge pair once: the steady state of a planner with trails everywhere."""
    for a in edges:
        for b in edges:
            if a != b:
                planner.equal_cost_paths(a, b)


def replan(planner: Planner, topo: Topology, switch: int, port: int,
           trails: Sequence[tuple[Host, Host]], start_over: bool) -> tuple[float, list]:
    """Take the cable down and re-plan `trails`; (ms, their new switch paths)."""
    start = time.perf_counter()
    topo.remove_port(switch, port)
    if start_over:
        planner.cost = planner.cost  # forget every cached answer
    paths = [[h.dpid for h in planner.host_hops(src, dst)] for src, dst in trails]
    return (time.perf_counter() - start) * 1e3, paths


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=16, help="fat-tree arity (even, >= 4)")
    parser.add_argument("--cables", type=int, default=6, help="cables failed (median)")
    args, _ = parser.parse_known_args(argv)
    topo = fat_tree(args.k)
    hosts = sorted(topo.hosts.values(), key=lambda h: h.mac)
    edges = sorted({h.dpid for h in hosts})
    pairs = [(s, d) for s in hosts for d in hosts if s is not d]
    progress(f"fat-tree k={args.k}: {len(topo.switches)} switches, {len(hosts)} hosts, "
             f"{len(pairs):,} trails; full plan")
    planner = Planner(topo)
    start = time.perf_counter()
    planned = [planner.host_hops(s, d) for s, d in pairs]
    full = time.perf_counter() - start
    index: dict[frozenset[int], list[int]] = defaultdict(list)  # cable -> trails crossing
    for n, hops in enumerate(planned):
        for a, b in zip(hops, hops[1:], strict=False):
            index[frozenset((a.dpid, b.dpid))].append(n)
    del planned
    progress(f"  {full:.1f} s")
    rows: dict[str, list[float]] = {"follow": [], "start over": []}
    crossing = []
    for switch, port in cables(topo, args.k, args.cables):
        link = topo.link_from(switch, port)
        assert link is not None
        cable = frozenset((switch, link.dst))
        trails = [pairs[n] for n in index[cable]]
        crossing.append(len(trails))
        for way in ("follow", "start over"):
            warm(planner, edges)
            ms, paths = replan(planner, topo, switch, port, trails, way == "start over")
            rows[way].append(ms)
            fresh = Planner(topo)
            for (src, dst), path in zip(trails, paths, strict=True):
                assert cable not in {frozenset(p) for p in zip(path, path[1:], strict=False)}
                assert path == [h.dpid for h in fresh.host_hops(src, dst)], (src, dst)
            topo.add_link(switch, port, link.dst, link.dst_port)
            topo.add_link(link.dst, link.dst_port, switch, port)
        progress(f"  s{switch}:{port} <-> s{link.dst}: {len(trails):,} trails, "
                 f"follow {rows['follow'][-1]:.0f} ms, start over {rows['start over'][-1]:.0f} ms")
    follow, over = statistics.median(rows["follow"]), statistics.median(rows["start over"])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"re-planning after a link failure: fat-tree k={args.k}, {len(pairs):,} trails, "
          f"{len(crossing)} cables")
    print(f"  full plan of every trail:            {full:.1f} s "
          f"({full / len(pairs) * 1e6:.1f} us a trail)")
    print(f"  trails crossing a cable (median):    {statistics.median(crossing):,.0f} "
          f"({min(crossing):,}-{max(crossing):,})")
    print(f"  re-plan them, follow the removal:    {follow:.1f} ms "
          f"({min(rows['follow']):.1f}-{max(rows['follow']):.1f})")
    print(f"  re-plan them, start over:            {over:.1f} ms "
          f"({min(rows['start over']):.1f}-{max(rows['start over']):.1f})")
    print(f"  start over / follow:                 {over / follow:.1f}x")
    print(f"  peak RSS:                            {rss:,.0f} MB")


if __name__ == "__main__":
    main()
