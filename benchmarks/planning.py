"""Planning time per trail: a 3-NF chain on a k=8 fat-tree, against the plain planner.

    python -m benchmarks.planning [--k 8] [--pairs 200] [--seed 1]

The topology is built in pure Python (no Mininet). Firewall, IDS and load
balancer hang off edge switches of three different pods. Every row plans the
same random host pairs; the baseline is Planner.host_hops with its cache
cleared for every trail (plan_chain keeps no cache), measured in the same run.
Constraints are added in a fixed order: utilisation cap, avoided zone, minimum
level, spare bandwidth, isolation (excluded links), latency bound, then the
load and security soft costs. plan_chain builds the layered graph for every
trail; one ChainPlanner builds it once (on its first trail, counted in the
mean) and reuses it for all. Prints a table and writes nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence

from sdnscent.constraints import (
    AvoidZones,
    ChainPlanner,
    Constraint,
    ExcludeLinks,
    MaxLatency,
    MinBandwidth,
    MinLevel,
    NetworkFunction,
    UtilisationCap,
    plan_chain,
    soft_costs,
)
from sdnscent.controller import ScentController
from sdnscent.planner import NoPathError, Planner
from sdnscent.policy import ClassWeights
from sdnscent.topology import Host, Port, Topology

CHAIN = ("firewall", "ids", "load_balancer")


def fat_tree(k: int) -> Topology:
    """A k-ary fat-tree numbered like topologies/fattree.py: cores, then per pod the
    aggregation and edge switches; edge ports 1..k/2 hosts, the rest up-links."""
    half = k // 2
    topo = Topology()
    cores = list(range(1, half * half + 1))
    pods = []
    for pod in range(k):
        first = half * half + pod * k + 1
        pods.append((list(range(first, first + half)), list(range(first + half, first + k))))
    for dpid in range(1, half * half + k * k + 1):
        topo.add_switch(dpid, {p: Port(p, speed_bps=10**10) for p in range(1, k + 3)}, f"s{dpid}")
    n = 0
    for aggs, edges in pods:
        for e, edge in enumerate(edges):
            for port in range(1, half + 1):
                n += 1
                topo.add_host(f"00:00:00:00:{n >> 8:02x}:{n & 0xff:02x}",
                              f"10.0.{n >> 8}.{n & 0xff}", edge, port)
            for a, agg in enumerate(aggs):
                topo.add_link(agg, 1 + e, edge, half + 1 + a)
                topo.add_link(edge, half + 1 + a, agg, 1 + e)
    for index, core in enumerate(cores):
        for pod, (aggs, _) in enumerate(pods):
            agg, port = aggs[index // half], half + 1 + index % half
            topo.add_link(core, pod + 1, agg, port)
            topo.add_link(agg, port, core, pod + 1)
    return topo


def tell(ctrl: ScentController, topo: Topology) -> ScentController:
    """Feed `topo` to a controller through its own event methods: every switch, both
    directions of every link, every host; return it."""
    for dpid, switch in sorted(topo.switches.items()):
        ctrl.switch_enter(dpid, list(switch.ports.values()), f"s{dpid}")
    for link in topo.links():
        ctrl.link_seen(link.src, link.src_port, link.dst, link.dst_port)
    for host in sorted(topo.hosts.values(), key=lambda h: h.mac):
        ctrl.learn_host(host.dpid, host.port, host.mac, host.ip)
    return ctrl


def network_functions(k: int) -> list[NetworkFunction]:
    """fw1, ids1, lb1 on the first edge switch of pods 1, k/2 and k-1 (ports k+1, k+2)."""
    half = k // 2
    nfs = []
    for name, role, pod in zip(("fw1", "ids1", "lb1"), CHAIN, (1, half, k - 1), strict=True):
        edge = half * half + pod * k + half + 1
        nfs.append(NetworkFunction(name, role, (edge, k + 1), (edge, k + 2), "core", 2))
    return nfs


def constraint_ladder(topo: Topology, nfs: Sequence[NetworkFunction], rnd: random.Random
                      ) -> list[Constraint]:
    """Six hard constraints that prune a little each, then two soft costs."""
    links = topo.links()
    for link in links:
        topo.set_link_attrs(link.src, link.src_port, latency=rnd.uniform(0.0001, 0.0005))
    util = {(lk.src, lk.src_port): rnd.choice([0.1, 0.3, 0.5, 0.7, 0.95]) for lk in links}
    attrs: dict[int | str, tuple[str | None, int]] = {d: ("core", 2) for d in topo.switches}
    attrs.update({nf.name: (nf.zone, nf.level) for nf in nfs})
    cores = [d for d in topo.switches if d <= len(topo.switches) // 5]
    for dpid in rnd.sample(cores, max(1, len(cores) // 8)):
        attrs[dpid] = ("dmz", 0)  # avoided by zone
    for dpid in rnd.sample(cores, max(1, len(cores) // 8)):
        attrs[dpid] = ("core", 0)  # below the minimum level
    isolated = {(lk.src, lk.src_port) for lk in rnd.sample(links, len(links) // 20)}
    return [UtilisationCap(util, 0.9), AvoidZones({"dmz"}, attrs), MinLevel(1, attrs),
            MinBandwidth(1e9, util), ExcludeLinks(isolated), MaxLatency(0.01),
            *soft_costs(ClassWeights("bulk", security=0.5), util, attrs)]


def timed(plan: Callable[[Host, Host], object], pairs: Sequence[tuple[Host, Host]]
          ) -> tuple[list[float], int]:
    """Seconds per call and the number of pairs without a path."""
    times, failed = [], 0
    for src, dst in pairs:
        start = time.perf_counter()
        try:
            plan(src, dst)
        except NoPathError:
            failed += 1
        times.append(time.perf_counter() - start)
    return times, failed


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=8, help="fat-tree arity (even, >= 4)")
    parser.add_argument("--pairs", type=int, default=200, help="random host pairs per row")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rnd = random.Random(args.seed)
    topo = fat_tree(args.k)
    nfs = network_functions(args.k)
    ladder = constraint_ladder(topo, nfs, rnd)
    hosts = sorted(topo.hosts.values(), key=lambda h: h.mac)
    pairs = [tuple(rnd.sample(hosts, 2)) for _ in range(args.pairs)]

    def cold(src: Host, dst: Host) -> object:
        return Planner(topo).host_hops(src, dst)

    warm_planner = Planner(topo)
    rows: list[tuple[str, Callable[[Host, Host], object]]] = [
        ("Planner.host_hops, cache cleared (baseline)", cold),
        ("Planner.host_hops, warm cache", warm_planner.host_hops),
        ("plan_chain, no chain, no constraints", lambda s, d: plan_chain(topo, s, d)),
        ("ChainPlanner.plan, no chain, no constraints", ChainPlanner(topo).plan),
    ]
    steps = [(f"{n} constraints", ladder[:n]) for n in (0, 1, 2, 4, 6)]
    steps.append(("6 constraints + 2 soft costs", ladder))
    for what, constraints in steps:
        rows.append((f"plan_chain, 3-NF chain, {what}",
                     lambda s, d, c=constraints: plan_chain(topo, s, d, CHAIN, nfs, c)))
        rows.append((f"ChainPlanner.plan, 3-NF chain, {what}",
                     ChainPlanner(topo, CHAIN, nfs, constraints).plan))
    timed(cold, pairs[:10])  # warm up imports and allocators
    print(f"fat-tree k={args.k}: {len(topo.switches)} switches, {len(topo.links())} link "
          f"directions, {len(hosts)} hosts; {len(pairs)} random host pairs per row; "
          f"NFs {', '.join(f'{nf.name} on s{nf.side_a[0]}' for nf in nfs)}")
    header = (f"{'planning':<60} {'mean ms':>8} {'median':>8} {'p95':>8} {'x base':>7} "
              f"{'no path':>8}")
    print(header)
    print("-" * len(header))
    base = None
    for label, plan in rows:
        times, failed = timed(plan, pairs)
        ms = sorted(t * 1e3 for t in times)
        mean = statistics.fmean(ms)
        base = base or mean
        p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
        print(f"{label:<60} {mean:8.2f} {statistics.median(ms):8.2f} {p95:8.2f} "
              f"{mean / base:7.1f} {failed:8d}")


if __name__ == "__main__":
    main()
