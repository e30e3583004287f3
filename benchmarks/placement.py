"""The cost of one placement period in the running controller (not a model of it).

A ScentController on a pure-Python k-ary fat-tree gets one elephant per host in a
stride pattern (h_i -> h_(i+stride)); every other one is first put on its
neighbour's path, the collisions a hash makes. Each period feeds the classifier
counters of a poll at 90 % of a NIC per elephant, then times ``rebalance()``:
candidates, natural demands, the placement and the moves' changes. Periods run
until nothing moves; the table gives each period's time and moves, and the
highest utilisation (elephants per link) before and after.

    python -m benchmarks.placement [--k 8] [--stride 16]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Sequence

from benchmarks.planning import fat_tree, tell
from sdnscent.controller import ScentController
from sdnscent.store import MemoryStore
from sdnscent.trails import Trail

SHARE = 0.9  # of a NIC: what each elephant's counters show


class Clock:
    """A settable clock: counters are fed a second apart without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elephants_on_busiest_link(trails: Sequence[Trail]) -> int:
    return max(Counter(k for t in trails for k in t.links()).values())


def collide(ctrl: ScentController, trails: list[Trail]) -> list[Trail]:
    """Every odd trail onto its predecessor's path where that is one of its candidates."""
    for i in range(1, len(trails), 2):
        path = [h.dpid for h in trails[i - 1].hops]
        same = [c for c in ctrl.s.trails.candidate_hops(trails[i]) if [h.dpid for h in c] == path]
        if same and same[0] != trails[i].hops:
            done(ctrl.s.trails.replan(trails[i].id, "collide", hops=same[0]))
    return [ctrl.store.get(t.id) for t in trails]


def done(change) -> None:
    for callback in change.done:
        callback()


def feed(ctrl: ScentController, clock: Clock, trails: Sequence[Trail], bps: float,
         sent: dict[int, int]) -> None:
    """Two polls a second apart at `bps` per trail (counters restart after a move)."""
    for _ in range(2):
        ctrl.update_counters([(t.id, n // 1000, n) for t in trails
                              for n in [sent.setdefault(t.id, 0)]])
        clock.now += 1.0
        for t in trails:
            sent[t.id] += int(bps / 8)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.placement", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--stride", type=int, default=16)
    ap.add_argument("--periods", type=int, default=8, help="at most (default 8)")
    args = ap.parse_args(argv)
    clock = Clock()
    topo = fat_tree(args.k)
    ctrl = tell(ScentController(MemoryStore(clock=clock), clock=clock), topo)
    hosts = sorted(topo.hosts.values(), key=lambda h: (h.dpid, h.port))
    trails = []
    for i, h in enumerate(hosts):
        trail, change = ctrl.ensure_trail(h.mac, hosts[(i + args.stride) % len(hosts)].mac)
        done(change)
        trails.append(trail)
    trails = collide(ctrl, trails)
    nic = float(topo.link_capacity(hosts[0].dpid, hosts[0].port))
    print(f"k={args.k} fat-tree, {len(trails)} elephants (stride {args.stride}); elephants on "
          f"the busiest link: {elephants_on_busiest_link(trails)}")
    print(f"{'period':>6}  {'rebalance ms':>12}  {'moves':>5}  {'busiest link after':>18}")
    sent: dict[int, int] = {}
    for period in range(1, args.periods + 1):
        feed(ctrl, clock, trails, SHARE * nic, sent)
        start = time.perf_counter()
        change, _ = ctrl.rebalance()
        ms = (time.perf_counter() - start) * 1000
        done(change)
        moves = len(ctrl.placement().get("moves", []))
        trails = [ctrl.store.get(t.id) for t in trails]
        print(f"{period:>6}  {ms:>12.0f}  {moves:>5}  {elephants_on_busiest_link(trails):>18}")
        if not moves:
            break


if __name__ == "__main__":
    main()
