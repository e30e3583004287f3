"""Link-down re-planning at 10,000 trails: what one failure event costs the controller.

    python -m benchmarks.replan [--store redis|memory] [--k 8] [--trails 10000]
                                [--links 5] [--seed 1]

A ScentController on a pure-Python k-ary fat-tree (benchmarks.planning.fat_tree:
k=8 is 80 switches, 128 hosts) with its store wrapped as apps/scent_trail.py
does for Redis: ``CachedStore(TimedStore(RedisStore))``, on a private
redis-server (tests/redisproc.py: loopback, free port, no persistence, stopped
by pid); ``--store memory`` uses a MemoryStore as is. It installs ``--trails``
trails between random distinct host pairs (ensure_trail, then each Change's
done callbacks, which mark the trail active), then times, each on its own:

1. link down: ``port_status`` of an aggregation switch's up-link port to a
   core (``up=False``), on ``--links`` different cables; median reported.
   "Crossing" is how many trails used the cable before; of those,
   "re-routed" have other hops afterwards and "removed" are gone. The
   done callbacks of the re-route (activate, free the old labels) are timed
   separately; then the port comes up again and LLDP is replayed both ways.
2. switch reconnect: ``switch_enter`` of a switch the controller knows (no
   flow read-back: wipe and reinstall), 3 switches per layer.
3. ensure_trail of a link-isolated application for 10 random pairs: "blue"
   first, then "green", which must share no cable with blue's trails (its
   planning reads every trail); placed or not (NoPathError), a call is timed.

"store calls" and "store ms" are what the TimedStore under the cache observed
(calls that reached Redis) during the timed call. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.planning import fat_tree, tell
from sdnscent.cache import CachedStore
from sdnscent.controller import Change, ScentController
from sdnscent.metrics import Metrics, TimedStore
from sdnscent.planner import NoPathError
from sdnscent.policyfile import parse_policy
from sdnscent.store import MemoryStore, TrailStore, open_store
from sdnscent.topology import Port, Topology
from tests.redisproc import REDIS_SERVER, running_redis

CAPACITY = 10**10  # bit/s of every link (the fat-tree's port speed)
SWITCH_SAMPLES = 3  # switches per layer for switch_enter
ISOLATED_PAIRS = 10  # ensure_trail calls of the link-isolated application
ISOLATION = """
applications:
  - name: blue
    endpoints: {prefixes: [10.0.0.0/16], ports: [udp/5001]}
    requirements: {isolation: link}
  - name: green
    endpoints: {prefixes: [10.0.0.0/16], ports: [udp/5002]}
    requirements: {isolation: link}
"""


def progress(text: str) -> None:
    """A progress line on stderr."""
    print(text, file=sys.stderr, flush=True)


@dataclass
class Row:
    """One timed event kind: ms per call and what each call touched."""

    what: str
    ms: list[float] = field(default_factory=list)
    counts: dict[str, list[int]] = field(default_factory=dict)
    store_calls: list[int] = field(default_factory=list)
    store_ms: list[float] = field(default_factory=list)

    def add(self, name: str, value: int) -> None:
        self.counts.setdefault(name, []).append(value)


class StoreTimer:
    """Calls and seconds the TimedStore recorded (None for the memory store)."""

    def __init__(self, metrics: Metrics | None) -> None:
        self.metrics = metrics

    def totals(self) -> tuple[int, float]:
        if self.metrics is None:
            return 0, 0.0
        calls, seconds = 0.0, 0.0
        for family in self.metrics.store.collect():
            for sample in family.samples:
                if sample.name.endswith("_count"):
                    calls += sample.value
                elif sample.name.endswith("_sum"):
                    seconds += sample.value
        return int(calls), seconds

    @contextlib.contextmanager
    def timed(self, row: Row) -> Iterator[None]:
        """Add the wall time and the store calls of the block to `row` (also if it raises)."""
        calls, seconds = self.totals()
        start = time.perf_counter()
        try:
            yield
        finally:
            row.ms.append((time.perf_counter() - start) * 1e3)
            if self.metrics is not None:
                after_calls, after_seconds = self.totals()
                row.store_calls.append(after_calls - calls)
                row.store_ms.append((after_seconds - seconds) * 1e3)


def run_done(change: Change) -> None:
    """What the app runs once the switches confirmed a Change."""
    for callback in change.done:
        callback()


def layers(k: int) -> dict[str, list[int]]:
    """Switch dpids by layer, numbered as benchmarks.planning.fat_tree does."""
    half = k // 2
    out: dict[str, list[int]] = {"core": list(range(1, half * half + 1)),
                                 "aggregation": [], "edge": []}
    for pod in range(k):
        first = half * half + pod * k + 1
        out["aggregation"] += range(first, first + half)
        out["edge"] += range(first + half, first + k)
    return out


def build(store: TrailStore, topo: Topology) -> ScentController:
    """A controller that saw every switch, both directions of every link and every host."""
    ctrl = tell(ScentController(store, CAPACITY), topo)
    ctrl.set_policy(parse_policy(ISOLATION, "replan-benchmark"))  # no trails yet: cheap
    return ctrl


def install(ctrl: ScentController, pairs: Sequence[tuple[str, str]]) -> None:
    """A default trail per pair, activated."""
    start = time.perf_counter()
    for n, (src, dst) in enumerate(pairs, 1):
        run_done(ctrl.ensure_trail(src, dst)[1])
        if n % 1000 == 0 or n == len(pairs):
            progress(f"  {n:,} / {len(pairs):,} trails ({time.perf_counter() - start:.1f} s)")


def uplinks(ctrl: ScentController, k: int, count: int) -> list[tuple[int, int, int, int]]:
    """`count` aggregation -> core cables (agg, port, core, core port), spread over pods."""
    aggs, cores = layers(k)["aggregation"], set(layers(k)["core"])
    half = k // 2
    chosen = []
    for i in range(count):
        agg = aggs[(i % k) * half + i % half]
        port = half + 1 + (i // k + i) % half
        link = ctrl.topo.link_from(agg, port)
        assert link is not None and link.dst in cores, (agg, port, link)
        chosen.append((agg, port, link.dst, link.dst_port))
    return chosen


def link_down(ctrl: ScentController, k: int, count: int, timer: StoreTimer) -> list[Row]:
    """Time port_status(up=False) on `count` cables, then the re-route's done callbacks."""
    down, done = Row("link down: port_status"), Row("  then the done callbacks")
    for agg, port, core, core_port in uplinks(ctrl, k, count):
        cable = {(agg, port), (core, core_port)}
        crossing = {t.id: t.hops for t in ctrl.store.all() if cable & set(t.links())}
        speed = ctrl.topo.switches[agg].ports[port].speed_bps
        with timer.timed(down):
            change = ctrl.port_status(agg, Port(port, speed_bps=speed, up=False))
        with timer.timed(done):
            run_done(change)
        after = {i: ctrl.store.get(i) for i in crossing}
        down.add("crossing", len(crossing))
        down.add("re-routed", sum(1 for i, t in after.items()
                                  if t is not None and t.hops != crossing[i]))
        down.add("removed", sum(1 for t in after.values() if t is None))
        progress(f"  s{agg}:{port} <-> s{core}:{core_port}: {down.ms[-1]:.0f} ms, "
                 f"{len(crossing)} trails crossing")
        run_done(ctrl.port_status(agg, Port(port, speed_bps=speed, up=True)))
        run_done(ctrl.link_seen(agg, port, core, core_port))
        run_done(ctrl.link_seen(core, core_port, agg, port))
    return [down, done]


def reconnect(ctrl: ScentController, k: int, timer: StoreTimer) -> list[Row]:
    """Time switch_enter of known switches, per layer."""
    rows = []
    rnd = random.Random(0)
    for layer, dpids in layers(k).items():
        row = Row(f"switch_enter ({layer})")
        for dpid in rnd.sample(dpids, SWITCH_SAMPLES):
            ports = list(ctrl.topo.switches[dpid].ports.values())
            crossing = sum(1 for t in ctrl.store.all() if dpid in t.switches)
            with timer.timed(row):
                change = ctrl.switch_enter(dpid, ports, f"s{dpid}")
            row.add("crossing", crossing)
            row.add("flow ops", sum(len(ops) for step in change.steps for ops in step.values()))
        progress(f"  {layer}: {statistics.median(row.ms):.0f} ms")
        rows.append(row)
    return rows


def isolated(ctrl: ScentController, pairs: Sequence[tuple[str, str]],
             timer: StoreTimer) -> list[Row]:
    """Time ensure_trail of "blue", then of "green" (which must avoid blue's cables)."""
    rows = []
    for app in ("blue", "green"):
        row = Row(f'ensure_trail (link-isolated "{app}")')
        placed = 0
        for src, dst in pairs:
            try:
                with timer.timed(row):
                    change = ctrl.ensure_trail(src, dst, app)[1]
            except NoPathError:
                continue
            placed += 1
            run_done(change)
        row.add("placed", placed)
        rows.append(row)
    return rows


def _median(values: Sequence[float] | None) -> str:
    if not values:
        return "-"
    value = statistics.median(values)
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def table(rows: Sequence[Row]) -> list[str]:
    """Median ms (min-max) and the median of each count, one line per event kind."""
    names = ["crossing", "re-routed", "removed", "flow ops", "placed"]
    head = f"{'event (median of n)':<38}{'n':>3}{'ms':>9}{'min-max ms':>16}" \
           f"{'store calls':>13}{'store ms':>10}" + "".join(f"{n:>11}" for n in names)
    lines = [head, "-" * len(head)]
    for row in rows:
        spread = f"{min(row.ms):.3g}-{max(row.ms):.3g}" if row.ms else "-"
        lines.append(f"{row.what:<38}{len(row.ms):>3}{_median(row.ms):>9}{spread:>16}"
                     f"{_median(row.store_calls):>13}{_median(row.store_ms):>10}"
                     + "".join(f"{_median(row.counts.get(n)):>11}" for n in names))
    return lines


def measure(store: TrailStore, args: argparse.Namespace, timer: StoreTimer) -> list[str]:
    """Build, install, time; the table."""
    topo = fat_tree(args.k)
    rnd = random.Random(args.seed)
    macs = sorted(topo.hosts)
    pairs = rnd.sample([(a, b) for a in macs for b in macs if a != b], args.trails)
    progress(f"fat-tree k={args.k}: {len(topo.switches)} switches, {len(macs)} hosts; "
             f"installing {args.trails:,} trails")
    ctrl = build(store, topo)
    install(ctrl, pairs)
    progress(f"link down on {args.links} aggregation-core cables")
    rows = link_down(ctrl, args.k, args.links, timer)
    progress("switch reconnects")
    rows += reconnect(ctrl, args.k, timer)
    progress("ensure_trail of a link-isolated application")
    rows += isolated(ctrl, rnd.sample(pairs, ISOLATED_PAIRS), timer)
    progress(f"{len(ctrl.store.all()):,} trails in the store at the end")
    return table(rows)


def source() -> str:
    """Which sdnscent the run imported (the "before" run uses a separate worktree)."""
    import sdnscent

    return str(Path(sdnscent.__file__).resolve().parent.parent)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("redis", "memory"), default="redis")
    parser.add_argument("--k", type=int, default=8, help="fat-tree arity (even, >= 4)")
    parser.add_argument("--trails", type=int, default=10_000, help="trails installed")
    parser.add_argument("--links", type=int, default=5, help="cables taken down (median)")
    parser.add_argument("--seed", type=int, default=1)
    args, _ = parser.parse_known_args(argv)  # `python -m benchmarks` shares its options
    hosts = len(fat_tree(args.k).hosts)
    if args.trails > hosts * (hosts - 1):
        parser.error(f"--trails {args.trails}: a k={args.k} fat-tree has only "
                     f"{hosts * (hosts - 1)} host pairs")
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        store: TrailStore
        if args.store == "memory":
            where, store, timer = "memory://", MemoryStore(), StoreTimer(None)
        else:
            if REDIS_SERVER is None:
                parser.error("redis-server is not installed (use --store memory)")
            server = stack.enter_context(running_redis("sdnscent-replan-"))
            metrics = Metrics()
            # as apps/scent_trail.py wraps a shared store
            store = CachedStore(TimedStore(open_store(server.url), metrics.store))  # type: ignore[arg-type]
            stack.callback(store.close)
            where, timer = f"CachedStore(TimedStore({server.url}))", StoreTimer(metrics)
        progress(f"store {where}; sdnscent from {source()}")
        lines = measure(store, args, timer)
    print(f"link-down re-planning: fat-tree k={args.k}, {args.trails:,} trails, store {where} "
          f"({time.perf_counter() - started:.0f} s)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
