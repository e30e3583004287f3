"""What fast-failover protection costs in table entries, per switch, on k-ary fat-trees.

    python -m benchmarks.protection [--k 4 8] [--pairs N] [--seed 1]
    python -m benchmarks.protection --fabrics

``--fabrics`` instead reports, for the example fabrics of topologies/ (fat-tree
k=4, leaf-spine 2x4, linear 3, nfchain with mininet_tests/policies/nfchain.yaml),
every hop a ScentController with ``protection="node"`` leaves unprotected, and why
(all host pairs, with their application trails).

For each k, a default trail between every ordered host pair (or ``--pairs``
random ones), planned like the controller plans them (Planner.host_hops), then
compiled three ways: without protection, with link protection and with node
protection (sdnscent.protection: shared detours and groups). Per switch it
counts the flow entries a trail-carrying switch holds (trail hop entries,
classifiers, rejoin entries, detour entries; the fixed pipeline flows left out)
and the fast-failover groups. "unshared" is what the detour entries would be if
every protected hop had a detour of its own (no sharing). Every table is loaded
into the forwarding simulator's Switch, which refuses duplicate or conflicting
entries. Ratios are against "none" of the same k in the same run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence

from benchmarks.planning import fat_tree
from sdnscent import compiler
from sdnscent.flows import FlowSpec, GroupSpec
from sdnscent.planner import Planner
from sdnscent.protection import (
    DetourPlanner,
    ProtectionTable,
    detour_flows,
    guarded_trail_flows,
)
from sdnscent.simulator import Switch
from sdnscent.topology import Topology
from sdnscent.trails import Trail


def trails_of(topo: Topology, pairs: int | None, seed: int) -> list[Trail]:
    """Default trails of every ordered host pair (or `pairs` random ones)."""
    hosts = sorted(topo.hosts.values(), key=lambda h: h.mac)
    every = [(a, b) for a in hosts for b in hosts if a.mac != b.mac]
    if pairs is not None and pairs < len(every):
        every = random.Random(seed).sample(every, pairs)
    planner = Planner(topo)
    return [Trail(i, 16 + i, a.mac, b.mac, a.ip, b.ip, planner.host_hops(a, b))
            for i, (a, b) in enumerate(every, 1)]


def tables(topo: Topology, trails: Sequence[Trail], mode: str
           ) -> tuple[dict[int, list[FlowSpec | GroupSpec]], dict[str, int]]:
    """Per switch the trail entries and groups under `mode`; and protection counters."""
    per: dict[int, list[FlowSpec | GroupSpec]] = defaultdict(list)
    stats: Counter[str] = Counter()
    if mode == "none":
        for trail in trails:
            for flow in compiler.trail_flows(trail):
                per[flow.dpid].append(flow)
        return per, dict(stats)
    planner = DetourPlanner(topo)
    table = ProtectionTable()
    reasons: Counter[str] = Counter()
    for trail in trails:
        armed, _ops = table.arm(trail, planner.guards(trail, mode))
        for flow in guarded_trail_flows(trail, armed):
            per[flow.dpid].append(flow)
        for guard in armed.guards:
            stats[f"hops {guard.kind}"] += 1
            if guard.detour is not None:
                stats["unshared detour entries"] += len(detour_flows(guard.detour, 16))
            else:
                reasons[guard.reason.split(":")[0]] += 1
    for spec in table.specs():
        per[spec.dpid].append(spec)
    stats["detours"] = table.detour_count
    stats["groups"] = table.group_count
    stats["detour entries"] = sum(1 for s in table.specs() if isinstance(s, FlowSpec))
    for reason, n in reasons.most_common(3):
        print(f"  unprotected ({mode}): {n} x {reason}", file=sys.stderr)
    return per, dict(stats)


def summary(topo: Topology, per: dict[int, list[FlowSpec | GroupSpec]]) -> dict[str, float]:
    """Entries (flows) and groups per switch: mean, max, total; tables validated."""
    flows = [sum(1 for s in per.get(d, []) if isinstance(s, FlowSpec)) for d in topo.switches]
    groups = [sum(1 for s in per.get(d, []) if isinstance(s, GroupSpec)) for d in topo.switches]
    for dpid, specs in per.items():
        Switch(dpid, specs)  # refuses duplicates, conflicts, flows into missing groups
    return {"mean": statistics.fmean(flows), "max": max(flows), "total": sum(flows),
            "groups": sum(groups), "groups_max": max(groups)}


def fabric_report() -> None:
    """Unprotected hops of the example fabrics, with their reasons."""
    from pathlib import Path

    from sdnscent.controller import ScentController
    from sdnscent.policyfile import load_policy
    from sdnscent.store import MemoryStore
    from sdnscent.topology import Port as SwitchPort
    from topologies import FatTreeTopo, LeafSpineTopo, LinearTopo, NFChainTopo

    policy = Path(__file__).resolve().parent.parent / "mininet_tests" / "policies" / "nfchain.yaml"
    fabrics = [("fattree 4", FatTreeTopo(4), None), ("leafspine 2x4", LeafSpineTopo(2, 4), None),
               ("linear 3", LinearTopo(3), None), ("nfchain", NFChainTopo(), policy)]
    for name, mn, rules in fabrics:
        ctrl = ScentController(MemoryStore(), protection="node")
        if rules is not None:
            ctrl.set_policy(load_policy(str(rules)))
        dpid = {s: int(mn.nodeInfo(s)["dpid"], 16) for s in mn.switches()}
        for sw in mn.switches():
            ports = sorted(mn.ports[sw])
            ctrl.switch_enter(dpid[sw], [SwitchPort(p, f"{sw}-eth{p}") for p in ports], sw)
        hosts = []
        for a, b in mn.links():
            (pa, pb) = mn.port(a, b)
            if a in dpid and b in dpid:
                ctrl.link_seen(dpid[a], pa, dpid[b], pb)
                ctrl.link_seen(dpid[b], pb, dpid[a], pa)
            for host, sw, port in ((a, b, pb), (b, a, pa)):
                info = mn.nodeInfo(host)
                if sw in dpid and host not in dpid and info.get("ip"):
                    hosts.append((info["mac"], info["ip"].split("/")[0], dpid[sw], port))
        for mac, ip, at, port in hosts:
            ctrl.learn_host(at, port, mac, ip)
        for src in hosts:
            for dst in hosts:
                if src != dst:
                    _, change = ctrl.ensure_pair(src[0], dst[0])
                    for done in change.done:
                        done()
        kinds: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        for trail in ctrl.store.all():
            armed = ctrl.s.protection.armed(trail.id)
            for guard in armed.guards if armed is not None else ():
                kinds[guard.kind] += 1
                if guard.kind == "none":
                    reasons[f"{trail.app}: {guard.reason}"] += 1
        print(f"{name}: {len(ctrl.store.all())} trails, hops node {kinds['node']}, "
              f"link {kinds['link']}, unprotected {kinds['none']}")
        for reason, n in sorted(reasons.items()):
            print(f"  {n:>3} x {reason}")


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.protection")
    p.add_argument("--fabrics", action="store_true",
                   help="report the unprotected hops of the example fabrics instead")
    p.add_argument("--k", type=int, nargs="+", default=[4, 8])
    p.add_argument("--pairs", type=int, default=None,
                   help="random host pairs per fabric (default: every ordered pair)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if args.fabrics:
        fabric_report()
        return
    print("Table cost of fast-failover protection (entries per switch; ratio vs none)")
    print(f"{'k':>2} {'mode':>5} {'trails':>6} {'mean':>8} {'max':>6} {'total':>8} "
          f"{'ratio':>6} {'groups':>7} {'grp max':>7} {'detours':>7} {'det.ent':>7} "
          f"{'unshared':>8} {'node':>6} {'link':>6} {'none':>5} {'secs':>6}")
    for k in args.k:
        topo = fat_tree(k)
        trails = trails_of(topo, args.pairs, args.seed)
        base = None
        for mode in ("none", "link", "node"):
            start = time.perf_counter()
            per, stats = tables(topo, trails, mode)
            took = time.perf_counter() - start
            s = summary(topo, per)
            base = base or s["total"]
            print(f"{k:>2} {mode:>5} {len(trails):>6} {s['mean']:>8.1f} {s['max']:>6} "
                  f"{s['total']:>8} {s['total'] / base:>6.2f} {s['groups']:>7} "
                  f"{s['groups_max']:>7} {stats.get('detours', 0):>7} "
                  f"{stats.get('detour entries', 0):>7} "
                  f"{stats.get('unshared detour entries', 0):>8} "
                  f"{stats.get('hops node', 0):>6} {stats.get('hops link', 0):>6} "
                  f"{stats.get('hops none', 0):>5} {took:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
