"""Trail store: what the controller's store stack costs on memory://, redis:// and
redis+cluster:// (3 masters): round trips per install, publish and lookup latency,
notification latency, restart recovery and write-back after an outage, in one run.

    python -m benchmarks.store [--k 8] [--trails 1000] [--ops 2000] [--notes 500] [--seed 1]

Starts its own redis-server processes (one standalone, three cluster masters
joined with ``redis-cli --cluster create``) on free loopback ports, in a temp
dir, without persistence, restarts them once (the outage) and stops them by pid
when done. Skips the Redis columns when redis-server is not installed.

The controller wraps a Redis store in CachedStore (reads from memory, writes
through; sdnscent/cache.py) and uses memory:// as is; both stacks are measured:
"raw" is the Redis store alone, "cached" is CachedStore in front of it. Trails
have the app's default 60 s lease (the store expires them), clocks are real.
For each backend, in this order:

1. install, once per stack on an empty store: a ScentController on a
   pure-Python k-ary fat-tree installs ``--trails`` trails between random
   distinct host pairs with ensure_trail; then what follows the switches'
   confirmation (each install's done callbacks, set_setup_latency); then one
   counter poll (classifier_counters per ingress switch with new packet counts:
   the leader renewing every lease). Counted: calls of the controller into its
   store, calls reaching the backend (memory or Redis store), Redis round trips
   (one per message sent to a server: a pipeline to 3 cluster nodes is 3) and
   Redis commands (a Lua script is one; a trail's notification is published by
   its put script, so it costs nothing here).
2. restart, with the cached install's trails in the store, median of 5:
   ``store.all()``; opening the store from its URL + ScentController.recover()
   (raw); the same with CachedStore's load in between (what the app does), then
   ``rebuild_index()``, which the app runs next. memory:// reuses its store:
   it does not survive a real restart.
3. ``--ops`` single-client calls each, per stack: put of a new trail (id taken
   beforehand, hops of an installed trail), find_by_label of an installed
   trail's hop (cached: answered from memory), find_by_label of a trail the
   copy lacks (cached only: written by another store object, its notification
   not taken in; a cache that does not subscribe stands for it) and get.
   Throughput is calls / loop time.
4. notifications (Redis only): ``--notes`` puts on one store object, each
   timed until a listener on a second store object has it: raw (the pub/sub
   message decoded) and cached (the second CachedStore fetched the trail into
   its copy, then told its listeners).
5. write-back (Redis only): the servers emptied, the installed trails written
   through a CachedStore, the servers stopped (a put marks the cache degraded)
   and started again empty; timed: ``CachedStore.sync()`` writing every trail
   back, with its round trips and commands.

"x mem" is the ratio against memory:// measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.planning import fat_tree, tell
from sdnscent.cache import CachedStore
from sdnscent.controller import ScentController
from sdnscent.store import HostRecord, Listener, MemoryStore, TrailStore, open_store
from sdnscent.trails import Trail
from tests.redisproc import (
    REDIS_CLI,
    REDIS_SERVER,
    RedisClusterNodes,
    RedisServer,
    free_port,
    start_cluster,
)

RESTARTS = 5  # recoveries timed per backend (median reported)
LEASE = 60  # s: the app's default trail lease (apps/settings.py)
FIRST_BENCH_LABEL = 500_000  # labels of the put benchmark, clear of the allocator's
NOTE_LABEL = 700_000  # labels of the notification benchmark
NOTE_WARMUP = 20  # notifications not timed (connections, threads)
STACKS = ("raw", "cached")
MEMORY = "memory://"


# Redis processes ------------------------------------------------------------

@dataclass
class Backend:
    """A store URL and the redis-server processes behind it."""

    name: str
    url: str
    servers: list[RedisServer] = field(default_factory=list)
    cluster: RedisClusterNodes | None = None

    def flush(self) -> None:
        """Empty every server (FLUSHALL on each master)."""
        for server in self.servers:
            client = server.client()
            try:
                client.flushall()
            finally:
                client.close()

    def stop(self) -> None:
        """Stop every server (by pid)."""
        for server in self.servers:
            server.stop()

    def start(self) -> None:
        """Start every server again, empty (no persistence); wait for the cluster."""
        for server in self.servers:
            server.start()
        if self.cluster is not None:
            self.cluster.wait_ok()


@contextlib.contextmanager
def redis_backends() -> Iterator[list[Backend]]:
    """A standalone Redis and a 3-master cluster, stopped on exit."""
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
            yield [Backend("redis://", single.url, [single]),
                   Backend("redis+cluster://", nodes.url, list(nodes.servers), nodes)]
        finally:
            for server in servers:
                server.stop()


# Counting -------------------------------------------------------------------

@dataclass
class Counts:
    """Store calls (by the controller, and reaching the backend), Redis round trips
    (messages sent) and Redis commands."""

    calls: Counter[str] = field(default_factory=Counter)
    backend: Counter[str] = field(default_factory=Counter)
    round_trips: int = 0
    commands: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        """Start counting from zero."""
        self.calls.clear()
        self.backend.clear()
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
    """A TrailStore that counts the calls made into it (in `calls`) and passes them on.

    Every method of TrailStore is passed on, so that it can sit under a
    CachedStore too (which reads `origin` and `lease_grace` of its backing store).
    """

    def __init__(self, inner: TrailStore, calls: Counter[str]) -> None:
        self.inner = inner
        self.calls = calls

    @property  # type: ignore[override]
    def origin(self) -> str:
        return self.inner.origin

    @property  # type: ignore[override]
    def lease_grace(self) -> float:
        return self.inner.lease_grace

    def next_id(self) -> int:
        self.calls["next_id"] += 1
        return self.inner.next_id()

    def reserve_ids(self, count: int) -> list[int]:
        self.calls["reserve_ids"] += 1
        return self.inner.reserve_ids(count)

    def put(self, trail: Trail) -> None:
        self.calls["put"] += 1
        self.inner.put(trail)

    def get(self, trail_id: int) -> Trail | None:
        self.calls["get"] += 1
        return self.inner.get(trail_id)

    def delete(self, trail_id: int, reason: str = "") -> Trail | None:
        self.calls["delete"] += 1
        return self.inner.delete(trail_id, reason)

    def all(self) -> list[Trail]:
        self.calls["all"] += 1
        return self.inner.all()

    def find_by_label(self, dpid: int, label: int) -> Trail | None:
        self.calls["find_by_label"] += 1
        return self.inner.find_by_label(dpid, label)

    def rebuild_index(self, trails: list[Trail] | None = None) -> int:
        self.calls["rebuild_index"] += 1
        return self.inner.rebuild_index(trails)

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        self.inner.close()

    # not on the paths measured here: passed on uncounted
    def put_host(self, record: HostRecord) -> None:
        self.inner.put_host(record)

    def hosts(self) -> list[HostRecord]:
        return self.inner.hosts()

    def delete_host(self, mac: str) -> None:
        self.inner.delete_host(mac)

    def put_node_load(self, node: str, sample: Any, ttl: float) -> None:
        self.inner.put_node_load(node, sample, ttl)

    def node_loads(self) -> dict[str, dict[str, Any]]:
        return self.inner.node_loads()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
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


class Unsubscribed(CountingStore):
    """A store whose notifications never arrive: a CachedStore over it misses
    every trail written after its load (the lookup miss path)."""

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return lambda: None


# Measuring ------------------------------------------------------------------

PHASES = ("ensure_trail", "confirm (activate + setup_ms)", "counter poll (lease renewal)")


@dataclass
class Result:
    """Everything measured on one backend; keys name the stack ("raw", "cached")."""

    name: str
    per_trail: dict[tuple[str, str, str], float] = field(default_factory=dict)
    breakdown: dict[tuple[str, str], str] = field(default_factory=dict)  # commands
    install_ms: dict[str, float] = field(default_factory=dict)  # mean ensure_trail
    ms: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # sorted
    per_s: dict[tuple[str, str], float] = field(default_factory=dict)
    all_ms: dict[str, float] = field(default_factory=dict)
    restart_ms: dict[str, float] = field(default_factory=dict)  # raw, cached, rebuild_index
    notify_ms: dict[str, list[float]] = field(default_factory=dict)  # sorted
    writeback: dict[str, float] = field(default_factory=dict)
    writeback_cmds: str = ""


def controller(k: int, store: TrailStore) -> ScentController:
    """A controller (real clock, the app's lease) told about the fat-tree."""
    return tell(ScentController(store, trail_lease=LEASE), fat_tree(k))


def _count(result: Result, stack: str, phase: str, counts: Counts, n: int) -> None:
    for key, value in (("calls", sum(counts.calls.values())),
                       ("backend", sum(counts.backend.values())),
                       ("trips", counts.round_trips), ("cmds", sum(counts.commands.values()))):
        result.per_trail[stack, phase, key] = value / n
    result.breakdown[stack, phase] = ", ".join(
        f"{cmd} {c / n:.2g}" for cmd, c in sorted(counts.commands.items()))


def install(result: Result, stack: str, store: TrailStore, k: int,
            pairs: Sequence[tuple[str, str]], counts: Counts) -> list[Trail]:
    """Install, confirm and poll a trail per pair through the controller, counting.

    `store` is the stack the controller talks to, over a CountingStore of the
    backend (counting into counts.backend).
    """
    ctrl = controller(k, CountingStore(store, counts.calls))
    counts.reset()
    done, trails = [], []
    start = time.perf_counter()
    for src, dst in pairs:
        trail, change = ctrl.ensure_trail(src, dst)
        trails.append(trail)
        done.append(change.done)
    result.install_ms[stack] = (time.perf_counter() - start) * 1e3 / len(pairs)
    _count(result, stack, PHASES[0], counts, len(pairs))
    counts.reset()
    for trail, callbacks in zip(trails, done, strict=True):
        for callback in callbacks:
            callback()
        ctrl.set_setup_latency(trail.id, 5.0)
    _count(result, stack, PHASES[1], counts, len(pairs))
    polls: dict[int, list[tuple[int, int | None, int, int]]] = defaultdict(list)
    for trail in trails:
        polls[trail.ingress.dpid].append((trail.id, trail.ingress.in_port, 100, 12_000))
    counts.reset()
    for dpid, entries in sorted(polls.items()):
        ctrl.classifier_counters(dpid, entries)
    _count(result, stack, PHASES[2], counts, len(pairs))
    return trails


def _median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1e3


def restart(result: Result, url: str, store: TrailStore, expect: int) -> None:
    """store.all() and restarts recovering `expect` trails, raw and through CachedStore."""
    alls, raws, cached, cached_alls, rebuilds = [], [], [], [], []
    for _ in range(RESTARTS):
        start = time.perf_counter()
        assert len(store.all()) == expect
        alls.append(time.perf_counter() - start)
        start = time.perf_counter()
        fresh = store if url == MEMORY else open_store(url)
        try:
            recovered = ScentController(fresh, trail_lease=LEASE).recover()
            raws.append(time.perf_counter() - start)
        finally:
            if fresh is not store:
                fresh.close()
        assert recovered == expect, (recovered, expect)
        if url == MEMORY:
            continue
        start = time.perf_counter()
        cache = CachedStore(open_store(url))
        try:
            recovered = ScentController(cache, trail_lease=LEASE).recover()
            cached.append(time.perf_counter() - start)
            assert recovered == expect, (recovered, expect)
            start = time.perf_counter()
            assert len(cache.all()) == expect
            cached_alls.append(time.perf_counter() - start)
            start = time.perf_counter()
            cache.rebuild_index()
            rebuilds.append(time.perf_counter() - start)
        finally:
            cache.close()
    result.all_ms["raw"] = _median_ms(alls)
    result.restart_ms["raw"] = _median_ms(raws)
    if cached:
        result.all_ms["cached"] = _median_ms(cached_alls)
        result.restart_ms["cached"] = _median_ms(cached)
        result.restart_ms["rebuild_index"] = _median_ms(rebuilds)


def write_back(result: Result, backend: Backend, stored: Sequence[Trail],
               counts: Counts) -> None:
    """Time CachedStore.sync() writing the `stored` trails into Redis restarted empty.

    The servers are emptied first and the trails written through a CachedStore.
    """
    expect = len(stored)
    backend.flush()
    cache = CachedStore(open_store(backend.url))
    try:
        for trail in stored:
            cache.put(trail)
        trails = cache.all()
        assert len(trails) == expect, (len(trails), expect)
        backend.stop()
        cache.put(trails[0].evolve(version=trails[0].version + 1))  # held: degraded now
        assert cache.degraded and cache.pending == 1
        backend.start()
        with counting_redis(counts):
            counts.reset()
            start = time.perf_counter()
            written = cache.sync()
            elapsed = time.perf_counter() - start
        assert written == expect and not cache.degraded, (written, cache.degraded)
    finally:
        cache.close()
    check = open_store(backend.url)
    try:
        assert len(check.all()) == expect
        assert check.find_by_label(trails[-1].ingress.dpid, trails[-1].label) is not None
    finally:
        check.close()
    result.writeback = {"ms": elapsed * 1e3, "written": written, "trips": counts.round_trips,
                        "cmds": sum(counts.commands.values())}
    result.writeback_cmds = ", ".join(f"{cmd} {c}" for cmd, c in sorted(counts.commands.items()))


def timed(result: Result, key: tuple[str, str], calls: Sequence[Callable[[], object]]) -> None:
    """Latency of each call and calls per second over the whole loop (50 warm-up calls)."""
    for call in calls[:50]:  # warm up connections and caches
        call()
    calls = calls[50:]
    times = []
    loop = time.perf_counter()
    for call in calls:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    result.per_s[key] = len(calls) / (time.perf_counter() - loop)
    result.ms[key] = sorted(t * 1e3 for t in times)


def new_trails(next_id: Callable[[], int], first_label: int, models: Sequence[Trail],
               count: int) -> list[Trail]:
    """`count` new leased trails with fresh ids and labels, hops copied from `models`."""
    now = time.time()
    out = []
    for i in range(count):
        model = models[i % len(models)]
        out.append(Trail(next_id(), first_label + i, model.src_mac, model.dst_mac,
                         model.src_ip, model.dst_ip, model.hops, created=now, lease=LEASE,
                         expires=now + LEASE))
    return out


def operations(result: Result, url: str, store: TrailStore, trails: Sequence[Trail],
               ops: int, rnd: random.Random) -> None:
    """put, find_by_label and get on the raw store, then through CachedStore."""
    n = ops + 50
    # Before the raw puts: this copy will not know the trails they write.
    lacking = None if url == MEMORY else CachedStore(Unsubscribed(store, Counter()))
    fresh = new_trails(store.next_id, FIRST_BENCH_LABEL, trails, n)
    timed(result, ("raw", "put"), [lambda t=t: store.put(t) for t in fresh])
    hops = [(hop.dpid, trail.label) for trail in trails for hop in trail.hops]
    lookups = [rnd.choice(hops) for _ in range(n)]
    ids = [rnd.choice(trails).id for _ in range(n)]
    stacks: list[tuple[str, TrailStore]] = [("raw", store)]
    cache = None
    if lacking is not None:
        cache = CachedStore(open_store(url))
        mine = new_trails(cache.next_id, FIRST_BENCH_LABEL + n, trails, n)
        timed(result, ("cached", "put"), [lambda t=t: cache.put(t) for t in mine])
        stacks.append(("cached", cache))
        misses = [(rnd.choice(t.hops).dpid, t.label) for t in fresh]  # one per trail
        timed(result, ("cached", "find_by_label miss"),
              [lambda d=d, lb=lb: lacking.find_by_label(d, lb) for d, lb in misses])
        assert isinstance(lacking.backing, CountingStore)
        assert lacking.backing.calls["find_by_label"] == n, "a lookup did not miss"
        assert all(lacking.find_by_label(d, lb) is not None for d, lb in misses[-20:])
    try:
        for stack, target in stacks:
            found = [target.find_by_label(d, label) for d, label in lookups[:20]]
            assert all(t is not None for t in found), "a stored hop was not found by label"
            timed(result, (stack, "find_by_label"),
                  [lambda d=d, lb=lb, s=target: s.find_by_label(d, lb) for d, lb in lookups])
            timed(result, (stack, "get"), [lambda i=i, s=target: s.get(i) for i in ids])
    finally:
        if cache is not None:
            cache.close()


def notifications(result: Result, url: str, trails: Sequence[Trail], count: int) -> None:
    """Time from a put on one store object to a listener on another, raw and cached."""
    first = NOTE_LABEL
    for n, stack in enumerate(STACKS):
        writer: TrailStore = open_store(url)
        reader: TrailStore = open_store(url)
        if stack == "cached":
            writer, reader = CachedStore(writer), CachedStore(reader)
        arrived: dict[int, float] = {}
        event = threading.Event()

        def on_note(note: dict[str, Any], arrived: dict[int, float] = arrived,
                    event: threading.Event = event) -> None:
            if note.get("op") == "put":
                arrived[note["id"]] = time.perf_counter()
                event.set()

        reader.subscribe(on_note)
        latencies = []
        try:
            batch = new_trails(writer.next_id, first + n * (count + NOTE_WARMUP), trails,
                               count + NOTE_WARMUP)
            for i, trail in enumerate(batch):
                event.clear()
                start = time.perf_counter()
                writer.put(trail)
                deadline = start + 2.0
                while trail.id not in arrived:
                    if not event.wait(max(0.0, deadline - time.perf_counter())):
                        raise RuntimeError(f"{url}: no notification of trail {trail.id}")
                    event.clear()
                if i >= NOTE_WARMUP:
                    latencies.append((arrived[trail.id] - start) * 1e3)
        finally:
            writer.close()
            reader.close()
        result.notify_ms[stack] = sorted(latencies)


def measure(backend: Backend, args: argparse.Namespace,
            pairs: Sequence[tuple[str, str]]) -> Result:
    """Every measurement on one backend."""
    name, url = backend.name, backend.url
    result = Result(name)
    counts = Counts()
    stacks = STACKS[:1] if url == MEMORY else STACKS
    store: TrailStore | None = None
    trails: list[Trail] = []
    try:
        for stack in stacks:
            if store is not None:
                store.close()
                backend.flush()
            store = MemoryStore() if url == MEMORY else open_store(url)
            print(f"{name}: installing {len(pairs)} trails through the controller ({stack})",
                  flush=True)
            with counting_redis(counts):
                backend_store = CountingStore(store, counts.backend)
                top = backend_store if stack == "raw" else CachedStore(backend_store)
                trails = install(result, stack, top, args.k, pairs, counts)
            if top is not backend_store:
                top.close()  # and store: opened again below
                store = MemoryStore() if url == MEMORY else open_store(url)
        assert store is not None
        print(f"{name}: {RESTARTS} restarts recovering {len(trails)} trails", flush=True)
        restart(result, url, store, len(trails))
        stored = store.all()
        print(f"{name}: {args.ops} each of put, find_by_label, get", flush=True)
        operations(result, url, store, trails, args.ops, random.Random(args.seed))
        if url != MEMORY:
            print(f"{name}: {args.notes} notifications, raw and cached", flush=True)
            notifications(result, url, trails, args.notes)
            print(f"{name}: outage, restart empty, write-back of {len(stored)} trails",
                  flush=True)
            store.close()
            store = None
            write_back(result, backend, stored, counts)
    finally:
        if store is not None:
            store.close()
    return result


# Reporting ------------------------------------------------------------------

Row = tuple[str, list[float | None], bool]  # label, value per column, ratio shown


def _pct(ms: Sequence[float], q: float) -> float:
    return ms[min(len(ms) - 1, int(q * len(ms)))]


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4f}" if value < 0.01 else f"{value:.3g}"


def _times(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    ratio = value / base
    return f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.1f}" if ratio >= 1 else f"{ratio:.2g}"


def render(title: str, columns: Sequence[str], rows: Sequence[Row], ratio: bool) -> list[str]:
    """A plain-text table; with `ratio`, each value is followed by value / first column."""
    width = max(len(title), *(len(label) for label, _, _ in rows)) + 2
    sizes = [max(12, len(c) + 2) for c in columns]
    header = f"{title:<{width}}" + "".join(
        f"{c:>{n}}" + (f"{'x mem':>8}" if ratio else "")
        for c, n in zip(columns, sizes, strict=True))
    lines = [header, "-" * len(header)]
    for label, values, show in rows:
        cells = []
        for value, size in zip(values, sizes, strict=True):
            text = f"{_fmt(value):>{size}}"
            if ratio:
                text += f"{_times(value, values[0]) if show else '-':>8}"
            cells.append(text)
        lines.append(f"{label:<{width}}" + "".join(cells))
    return lines


def _stack_columns(results: Sequence[Result]) -> list[tuple[Result, str, str]]:
    """(result, stack, column title): memory:// as is, each Redis raw and cached."""
    out = []
    for r in results:
        for stack in STACKS:
            if (stack, "put") in r.ms or (r.name == MEMORY and stack == "raw"):
                out.append((r, stack, r.name if stack == "raw" else f"{r.name} cached"))
    return out


def tables(results: Sequence[Result]) -> list[str]:
    """Every table of the run."""
    cols = _stack_columns(results)
    names = [title for _, _, title in cols]
    rows: list[Row] = []
    for phase in PHASES:
        for key, what in (("calls", "store calls"), ("backend", "backend calls"),
                          ("trips", "round trips"), ("cmds", "Redis commands")):
            rows.append((f"{phase}: {what}", [r.per_trail.get((s, phase, key))
                                              for r, s, _ in cols], False))
    rows.append(("ensure_trail mean ms (planning incl.)",
                 [r.install_ms.get(s) for r, s, _ in cols], True))
    lines = render("per trail install", names, rows, True) + [""]

    def stat(op: str, get: Callable[[list[float]], float]) -> list[float | None]:
        return [get(r.ms[s, op]) if (s, op) in r.ms else None for r, s, _ in cols]

    rows = []
    for op in ("put", "find_by_label", "find_by_label miss", "get"):
        rows.append((f"{op} median ms", stat(op, statistics.median), True))
        rows.append((f"{op} p95 ms", stat(op, lambda ms: _pct(ms, 0.95)), True))
        rows.append((f"{op} calls/s (1 client)",
                     [r.per_s.get((s, op)) for r, s, _ in cols], True))
    lines += render("operation (single client)", names, rows, True) + [""]

    rows = [("store.all() ms", [r.all_ms.get("raw") for r in results], True),
            ("CachedStore.all() ms", [r.all_ms.get("cached") for r in results], True),
            ("open + recover() ms (no cache)", [r.restart_ms.get("raw") for r in results], True),
            ("open + CachedStore load + recover() ms",
             [r.restart_ms.get("cached") for r in results], True),
            ("then rebuild_index() ms", [r.restart_ms.get("rebuild_index") for r in results],
             True)]
    lines += render("restart (median of 5)", [r.name for r in results], rows, True)
    shared = [r for r in results if r.notify_ms]
    if shared:
        rows = []
        for stack, what in (("raw", "store listener"), ("cached", "CachedStore copy")):
            rows.append((f"put -> {what} median ms",
                         [statistics.median(r.notify_ms[stack]) for r in shared], False))
            rows.append((f"put -> {what} p95 ms",
                         [_pct(r.notify_ms[stack], 0.95) for r in shared], False))
        lines += [""] + render("notification", [r.name for r in shared], rows, False)
        rows = [("CachedStore.sync() ms", [r.writeback["ms"] for r in shared], False),
                ("records written", [r.writeback["written"] for r in shared], False),
                ("ms per record", [r.writeback["ms"] / r.writeback["written"] for r in shared],
                 False),
                ("round trips", [r.writeback["trips"] for r in shared], False),
                ("Redis commands", [r.writeback["cmds"] for r in shared], False)]
        lines += [""] + render("write-back into an empty Redis", [r.name for r in shared],
                               rows, False)
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=8, help="fat-tree arity (even, >= 4)")
    parser.add_argument("--trails", type=int, default=1000,
                        help="trails installed (and recovered) per backend")
    parser.add_argument("--ops", type=int, default=2000, help="timed calls per operation")
    parser.add_argument("--notes", type=int, default=500, help="notifications timed")
    parser.add_argument("--seed", type=int, default=1)
    args, _ = parser.parse_known_args(argv)  # `python -m benchmarks` shares its options
    rnd = random.Random(args.seed)
    macs = sorted(fat_tree(args.k).hosts)
    every = [(a, b) for a in macs for b in macs if a != b]
    if args.trails > len(every):
        parser.error(f"--trails {args.trails}: a k={args.k} fat-tree has only "
                     f"{len(every)} host pairs")
    pairs = rnd.sample(every, args.trails)
    started = time.perf_counter()
    print(f"trail store: fat-tree k={args.k} ({len(macs)} hosts), {args.trails} trails "
          f"installed per backend and stack, {args.ops} timed calls per operation, "
          f"{args.notes} notifications", flush=True)
    results = [measure(Backend(MEMORY, MEMORY), args, pairs)]
    with redis_backends() as backends:
        for backend in backends:
            results.append(measure(backend, args, pairs))
    for result in results:
        for (stack, phase), names in result.breakdown.items():
            if names:
                print(f"{result.name} {stack} {phase}, commands per trail: {names}")
        if result.writeback_cmds:
            print(f"{result.name} write-back, commands: {result.writeback_cmds}")
    print(f"({time.perf_counter() - started:.0f} s)\n")
    print("\n".join(tables(results)))


if __name__ == "__main__":
    main()
