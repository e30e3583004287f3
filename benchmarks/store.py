"""Trail store: operations per trail install, publish, lookup and get latency, and
restart recovery on memory://, redis:// and redis+cluster:// (3 masters), in one run.

    python -m benchmarks.store [--k 8] [--trails 1000] [--ops 2000] [--seed 1]

Starts its own redis-server processes (one standalone, three cluster masters
joined with ``redis-cli --cluster create``) on free loopback ports, in a temp
dir, without persistence, and stops them by pid when done. Skips the Redis
columns when redis-server is not installed.

For each backend, in this order:

1. install: a ScentController on a pure-Python k-ary fat-tree installs
   ``--trails`` trails between random distinct host pairs with ensure_trail,
   then runs each install's done callbacks (activate) and set_setup_latency, as
   apps/scent_trail.py does once the switches confirmed the flows. Counted:
   TrailStore calls, Redis round trips (one per message sent to a server: a
   pipeline to 3 cluster nodes is 3) and Redis commands (a Lua script is one).
2. restart: with those trails in the store, the time of ``store.all()`` and of a
   restart: opening the store from its URL, a fresh ScentController and
   recover() (memory:// reuses its store: it does not survive a real restart).
3. ``--ops`` single-client calls each of put (a new trail: id taken
   beforehand, hops copied from the installed trails), find_by_label (a hop
   of a stored trail) and get (a stored id). Throughput is calls / loop time.

"x mem" is the ratio against memory:// measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.planning import fat_tree
from sdnscent.controller import ScentController
from sdnscent.store import MemoryStore, TrailStore, open_store
from sdnscent.trails import Trail
from tests.redisproc import REDIS_CLI, REDIS_SERVER, RedisServer, free_port, start_cluster

RESTARTS = 5  # recoveries timed per backend (median reported)
FIRST_BENCH_LABEL = 500_000  # labels of the put benchmark, clear of the allocator's


# Redis processes ------------------------------------------------------------

@contextlib.contextmanager
def redis_backends() -> Iterator[list[tuple[str, str]]]:
    """(name, URL) of a standalone Redis and a 3-master cluster, stopped on exit."""
    if REDIS_SERVER is None or REDIS_CLI is None:
        print("redis-server or redis-cli not installed: memory:// only", flush=True)
        yield []
        return
    servers: list[RedisServer] = []
    with tempfile.TemporaryDirectory(prefix="sdnscent-bench-") as workdir:
        try:
            single = RedisServer(free_port(), Path(workdir))
            servers.append(single)
            single.start()
            nodes = start_cluster(Path(workdir) / "cluster")
            servers.extend(nodes.servers)
            print(f"started redis-server on port {single.port} and a 3-master cluster on "
                  f"ports {', '.join(str(n.port) for n in nodes.servers)}", flush=True)
            yield [("redis://", single.url), ("redis+cluster://", nodes.url)]
        finally:
            for server in servers:
                server.stop()


# Counting -------------------------------------------------------------------

@dataclass
class Counts:
    """Store calls, Redis messages sent (round trips) and Redis commands."""

    calls: Counter[str] = field(default_factory=Counter)
    round_trips: int = 0
    commands: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        """Start counting from zero."""
        self.calls.clear()
        self.commands.clear()
        self.round_trips = 0


@contextlib.contextmanager
def counting_redis(counts: Counts) -> Iterator[None]:
    """Count what every redis-py connection sends while inside (restored on exit)."""
    try:
        from redis.connection import AbstractConnection
    except ImportError:  # no redis-py: memory:// only
        yield
        return
    saved = {name: getattr(AbstractConnection, name)
             for name in ("send_packed_command", "send_command", "pack_commands")}

    def send_packed_command(self: AbstractConnection, command: object,
                            check_health: bool = True) -> None:
        counts.round_trips += 1
        saved["send_packed_command"](self, command, check_health)

    def send_command(self: AbstractConnection, *args: object, **kwargs: object) -> None:
        counts.commands[str(args[0]).lower()] += 1
        saved["send_command"](self, *args, **kwargs)

    def pack_commands(self: AbstractConnection, commands: Sequence[Sequence[object]]) -> object:
        for cmd in commands:
            counts.commands[str(cmd[0]).lower()] += 1
        return saved["pack_commands"](self, commands)

    patches = {"send_packed_command": send_packed_command, "send_command": send_command,
               "pack_commands": pack_commands}
    try:
        for name, func in patches.items():
            setattr(AbstractConnection, name, func)
        yield
    finally:
        for name, func in saved.items():
            setattr(AbstractConnection, name, func)


class CountingStore(TrailStore):
    """A TrailStore that counts the controller's calls and passes them on."""

    def __init__(self, inner: TrailStore, counts: Counts) -> None:
        self.inner = inner
        self.counts = counts

    def next_id(self) -> int:
        self.counts.calls["next_id"] += 1
        return self.inner.next_id()

    def put(self, trail: Trail) -> None:
        self.counts.calls["put"] += 1
        self.inner.put(trail)

    def get(self, trail_id: int) -> Trail | None:
        self.counts.calls["get"] += 1
        return self.inner.get(trail_id)

    def delete(self, trail_id: int, reason: str = "") -> Trail | None:
        self.counts.calls["delete"] += 1
        return self.inner.delete(trail_id, reason)

    def all(self) -> list[Trail]:
        self.counts.calls["all"] += 1
        return self.inner.all()

    def find_by_label(self, dpid: int, label: int) -> Trail | None:
        self.counts.calls["find_by_label"] += 1
        return self.inner.find_by_label(dpid, label)

    # not on the paths measured here: passed on uncounted
    def put_node_load(self, node: str, sample: Any, ttl: float) -> None:
        self.inner.put_node_load(node, sample, ttl)

    def node_loads(self) -> dict[str, dict[str, Any]]:
        return self.inner.node_loads()

    def subscribe(self, listener: Any) -> Any:
        return self.inner.subscribe(listener)

    def claim_leader(self, holder: str, ttl: float) -> bool:
        return self.inner.claim_leader(holder, ttl)

    def release_leader(self, holder: str) -> None:
        self.inner.release_leader(holder)

    def leader(self) -> str | None:
        return self.inner.leader()

    def next_generation(self) -> int:
        return self.inner.next_generation()

    def generation(self) -> int:
        return self.inner.generation()


# Measuring ------------------------------------------------------------------

@dataclass
class Result:
    """Everything measured on one backend."""

    name: str
    per_trail: dict[str, float] = field(default_factory=dict)  # counts per install
    breakdown: dict[str, str] = field(default_factory=dict)  # phase -> "cmd n, ..."
    install_ms: float = 0.0  # mean wall time of ensure_trail (planning included)
    all_ms: float = 0.0
    restart_ms: float = 0.0
    ms: dict[str, list[float]] = field(default_factory=dict)  # op -> sorted latencies
    per_s: dict[str, float] = field(default_factory=dict)  # op -> calls per second


def controller(k: int, store: TrailStore) -> ScentController:
    """A controller told about the fat-tree through its own event methods."""
    topo = fat_tree(k)
    ctrl = ScentController(store, clock=lambda: 1000.0)
    for dpid, switch in sorted(topo.switches.items()):
        ctrl.switch_enter(dpid, list(switch.ports.values()), f"s{dpid}")
    for link in topo.links():
        ctrl.link_seen(link.src, link.src_port, link.dst, link.dst_port)
    for host in sorted(topo.hosts.values(), key=lambda h: h.mac):
        ctrl.learn_host(host.dpid, host.port, host.mac, host.ip)
    return ctrl


def _per_trail(counts: Counts, n: int) -> tuple[float, float, float, str]:
    commands = ", ".join(f"{cmd} {c / n:.2g}" for cmd, c in sorted(counts.commands.items()))
    return (sum(counts.calls.values()) / n, counts.round_trips / n,
            sum(counts.commands.values()) / n, commands)


def install(result: Result, store: TrailStore, k: int, pairs: Sequence[tuple[str, str]],
            counts: Counts) -> list[Trail]:
    """Install a trail per pair through the controller, counting store traffic."""
    ctrl = controller(k, CountingStore(store, counts))
    counts.reset()
    done, trails = [], []
    start = time.perf_counter()
    for src, dst in pairs:
        trail, change = ctrl.ensure_trail(src, dst)
        trails.append(trail)
        done.append(change.done)
    result.install_ms = (time.perf_counter() - start) * 1e3 / len(pairs)
    calls, trips, cmds, names = _per_trail(counts, len(pairs))
    result.per_trail.update(ensure_calls=calls, ensure_trips=trips, ensure_cmds=cmds)
    result.breakdown["ensure_trail"] = names
    counts.reset()
    for trail, callbacks in zip(trails, done, strict=True):
        for callback in callbacks:
            callback()
        ctrl.set_setup_latency(trail.id, 5.0)
    calls, trips, cmds, names = _per_trail(counts, len(pairs))
    result.per_trail.update(confirm_calls=calls, confirm_trips=trips, confirm_cmds=cmds)
    result.breakdown["confirm (activate + setup_ms)"] = names
    return trails


def restart(result: Result, url: str, store: TrailStore, expect: int) -> None:
    """Time store.all() and a controller restart that recovers `expect` trails."""
    alls, restarts = [], []
    for _ in range(RESTARTS):
        start = time.perf_counter()
        assert len(store.all()) == expect
        alls.append(time.perf_counter() - start)
        start = time.perf_counter()
        fresh = store if url == "memory://" else open_store(url)
        try:
            recovered = ScentController(fresh).recover()
        finally:
            if fresh is not store:
                fresh.close()
        restarts.append(time.perf_counter() - start)
        assert recovered == expect, (recovered, expect)
    result.all_ms = statistics.median(alls) * 1e3
    result.restart_ms = statistics.median(restarts) * 1e3


def timed(result: Result, name: str, calls: Sequence[Callable[[], object]]) -> None:
    """Latency of each call and calls per second over the whole loop."""
    for call in calls[:50]:  # warm up connections and caches
        call()
    times = []
    loop = time.perf_counter()
    for call in calls:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    result.per_s[name] = len(calls) / (time.perf_counter() - loop)
    result.ms[name] = sorted(t * 1e3 for t in times)


def operations(result: Result, store: TrailStore, trails: Sequence[Trail], ops: int,
               rnd: random.Random) -> None:
    """put of new trails, find_by_label of stored hops, get of stored ids."""
    fresh = []
    for i in range(ops + 50):
        model = trails[i % len(trails)]
        fresh.append(Trail(store.next_id(), FIRST_BENCH_LABEL + i, model.src_mac, model.dst_mac,
                           model.src_ip, model.dst_ip, model.hops, created=1000.0))
    timed(result, "put", [lambda t=t: store.put(t) for t in fresh])
    hops = [(hop.dpid, trail.label) for trail in trails for hop in trail.hops]
    lookups = [rnd.choice(hops) for _ in range(ops + 50)]
    found = [store.find_by_label(d, label) for d, label in lookups[:20]]
    assert all(t is not None for t in found), "a stored hop was not found by label"
    timed(result, "find_by_label", [lambda d=d, lb=lb: store.find_by_label(d, lb)
                                    for d, lb in lookups])
    ids = [rnd.choice(trails).id for _ in range(ops + 50)]
    timed(result, "get", [lambda i=i: store.get(i) for i in ids])


def measure(name: str, url: str, args: argparse.Namespace,
            pairs: Sequence[tuple[str, str]]) -> Result:
    """Every measurement on one backend."""
    result = Result(name)
    counts = Counts()
    store = MemoryStore() if url == "memory://" else open_store(url)
    try:
        with counting_redis(counts):
            print(f"{name}: installing {len(pairs)} trails through the controller", flush=True)
            trails = install(result, store, args.k, pairs, counts)
        print(f"{name}: {RESTARTS} restarts recovering {len(trails)} trails", flush=True)
        restart(result, url, store, len(trails))
        print(f"{name}: {args.ops} each of put, find_by_label, get", flush=True)
        operations(result, store, trails, args.ops, random.Random(args.seed))
    finally:
        store.close()
    return result


# Reporting ------------------------------------------------------------------

def _pct(ms: Sequence[float], q: float) -> float:
    return ms[min(len(ms) - 1, int(q * len(ms)))]


def table(results: Sequence[Result]) -> list[str]:
    """The rows: a metric, then per backend its value and its ratio to the first."""
    rows: list[tuple[str, list[float], bool]] = []  # label, values, ratio shown

    def add(label: str, get: Callable[[Result], float], ratio: bool = True) -> None:
        rows.append((label, [get(r) for r in results], ratio))

    for phase, key in (("ensure_trail", "ensure"), ("confirm (activate + setup_ms)", "confirm")):
        add(f"{phase}: store calls / trail", lambda r, k=key: r.per_trail[f"{k}_calls"], False)
        add(f"{phase}: round trips / trail", lambda r, k=key: r.per_trail[f"{k}_trips"], False)
        add(f"{phase}: Redis commands / trail", lambda r, k=key: r.per_trail[f"{k}_cmds"], False)
    add("ensure_trail mean ms (planning incl.)", lambda r: r.install_ms)
    for op in ("put", "find_by_label", "get"):
        add(f"{op} median ms", lambda r, o=op: statistics.median(r.ms[o]))
        add(f"{op} p95 ms", lambda r, o=op: _pct(r.ms[o], 0.95))
        add(f"{op} calls/s (1 client)", lambda r, o=op: r.per_s[o])
    add("store.all() ms", lambda r: r.all_ms)
    add("restart: open + recover() ms", lambda r: r.restart_ms)

    def fmt(value: float) -> str:
        if value == 0 or value >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4f}" if value < 0.01 else f"{value:.3g}"

    def times(value: float, base: float) -> str:
        if not base:
            return "-"
        ratio = value / base
        return f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.1f}" if ratio >= 1 \
            else f"{ratio:.2g}"

    width = max(len(label) for label, _, _ in rows) + 2
    header = f"{'':<{width}}" + "".join(f"{r.name:>18}{'x mem':>8}" for r in results)
    lines = [header, "-" * len(header)]
    for label, values, ratio in rows:
        cells = [f"{fmt(v):>18}{times(v, values[0]) if ratio else '-':>8}" for v in values]
        lines.append(f"{label:<{width}}" + "".join(cells))
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=8, help="fat-tree arity (even, >= 4)")
    parser.add_argument("--trails", type=int, default=1000,
                        help="trails installed (and recovered) per backend")
    parser.add_argument("--ops", type=int, default=2000, help="timed calls per operation")
    parser.add_argument("--seed", type=int, default=1)
    args, _ = parser.parse_known_args(argv)  # `python -m benchmarks` shares its options
    rnd = random.Random(args.seed)
    macs = sorted(fat_tree(args.k).hosts)
    every = [(a, b) for a in macs for b in macs if a != b]
    if args.trails > len(every):
        parser.error(f"--trails {args.trails}: a k={args.k} fat-tree has only "
                     f"{len(every)} host pairs")
    pairs = rnd.sample(every, args.trails)
    print(f"trail store: fat-tree k={args.k} ({len(macs)} hosts), {args.trails} trails "
          f"installed per backend, {args.ops} timed calls per operation", flush=True)
    results = [measure("memory://", "memory://", args, pairs)]
    with redis_backends() as backends:
        for name, url in backends:
            results.append(measure(name, url, args, pairs))
    for result in results:
        for phase, names in result.breakdown.items():
            if names:
                print(f"{result.name} {phase}, commands per trail: {names}")
    print("\n".join(table(results)))


if __name__ == "__main__":
    main()
