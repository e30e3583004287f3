"""The trail store: one suite over memory://, a real redis-server and a real 3-master
Redis Cluster (record format, versioned writes, the label index, reconnects, URLs)."""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import MISSING, dataclass, fields
from typing import Any

import pytest
import redis_fixtures
from redis.cluster import RedisCluster
from redis_fixtures import RedisClusterNodes, RedisServer, free_port

from sdnscent.redisstore import (
    COUNTER_KEY,
    HOSTS_KEY,
    IDS_KEY,
    RedisClusterStore,
    RedisStore,
    labels_key,
    tombstone_key,
    trail_key,
)
from sdnscent.store import (
    MAX_DPID,
    MAX_PORT,
    HostRecord,
    MemoryStore,
    StaleWrite,
    StoreError,
    TrailStore,
    decode_host,
    decode_trail,
    encode_host,
    encode_trail,
    host_to_record,
    open_store,
    trail_to_record,
)
from sdnscent.trails import Hop, Trail, TrailState

# The session-scoped servers (tests/conftest.py is not ours to extend).
redis_server = redis_fixtures.redis_server
redis_cluster = redis_fixtures.redis_cluster


def full_trail(trail_id: int = 7, version: int = 3) -> Trail:
    """A trail with every field away from its default (see test_sample_sets_every_field)."""
    return Trail(
        id=trail_id, label=4242, src_mac="00:00:00:00:00:01", dst_mac="00:00:00:00:00:05",
        src_ip="10.0.0.1", dst_ip="10.0.0.5",
        hops=(Hop(0x11, 1, 3), Hop(0xABCDEF0123456789, 2, 4, via="fw1"), Hop(0x13, 5, 1)),
        app="web", cls="gold", state=TrailState.ACTIVE, created=1764057600.123456,
        expires=4102444800.5, version=version, setup_ms=3.875, packets=12, bytes=1176,
        extra={"note": "x", "owner": "ctl-a"},
        match=((("tcp_dst", 443),), (("tcp_src", 443), ("ip_proto", 6))),
        priority=1234, rewrite=(("ipv4_src", "10.0.0.100"), ("eth_src", "0e:00:00:00:00:64")),
        grouped=True, lease=60, rate_cap=50_000_000)


def simple_trail(trail_id: int, label: int, dpids: tuple[int, ...] = (1, 2, 3),
                 version: int = 1) -> Trail:
    hops = tuple(Hop(d, 1, 2) for d in dpids)
    return Trail(trail_id, label, "00:00:00:00:00:01", "00:00:00:00:00:02", "10.0.0.1",
                 "10.0.0.2", hops, version=version)


def same(a: Trail | None, b: Trail | None) -> bool:
    """Equal including `extra` (which Trail's __eq__ ignores)."""
    return a == b and (a is None or a.extra == b.extra)  # type: ignore[union-attr]


# The record format ------------------------------------------------------------

def _default(f: Any) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def test_sample_sets_every_field_so_a_new_field_needs_a_codec_entry() -> None:
    trail = full_trail()
    for f in fields(Trail):
        assert getattr(trail, f.name) != _default(f), \
            f"Trail.{f.name}: give full_trail() a non-default value and serialise it"
    for f in fields(Hop):
        assert any(getattr(h, f.name) != _default(f) for h in trail.hops), \
            f"Hop.{f.name}: give a hop of full_trail() a non-default value and serialise it"


def test_record_round_trips_every_trail_and_hop_field() -> None:
    trail = full_trail()
    record = trail_to_record(trail)
    assert record["v"] == 1
    assert set(record) - {"v"} == {f.name for f in fields(Trail)}
    assert all(set(h) == {f.name for f in fields(Hop)} for h in record["hops"])
    back = decode_trail(encode_trail(trail), "k")
    for f in fields(Trail):
        assert getattr(back, f.name) == getattr(trail, f.name), f.name
        assert type(getattr(back, f.name)) is type(getattr(trail, f.name)), f.name
    assert same(back, trail)


def _mutate(change: Callable[[dict], None]) -> str:
    record = trail_to_record(full_trail())
    change(record)
    return json.dumps(record)


BAD_RECORDS = [
    ("not-json", "{oops", "not JSON"),
    ("not-object", "[1, 2]", "'(record)'"),
    ("future-format", _mutate(lambda r: r.update(v=2)), "'v'"),
    ("missing-label", _mutate(lambda r: r.pop("label")), "'label': missing"),
    ("unknown-field", _mutate(lambda r: r.update(colour="red")), "'colour': unknown field"),
    ("label-string", _mutate(lambda r: r.update(label="22")), "'label'"),
    ("version-bool", _mutate(lambda r: r.update(version=True)), "'version'"),
    ("hop-port", _mutate(lambda r: r["hops"][1].update(in_port="eth1")), "'hops[1].in_port'"),
    ("hop-missing", _mutate(lambda r: r["hops"][2].pop("dpid")), "'hops[2].dpid': missing"),
    ("hop-not-object", _mutate(lambda r: r["hops"].append(5)), "'hops[3]'"),
    ("no-hops", _mutate(lambda r: r.update(hops=[])), "'hops'"),
    ("state", _mutate(lambda r: r.update(state="sleeping")), "'state'"),
    ("created-nan", _mutate(lambda r: r.update(created="soon")), "'created'"),
    ("extra", _mutate(lambda r: r.update(extra={"a": 1})), "'extra'"),
    ("match-value", _mutate(lambda r: r["match"][0][0].__setitem__(1, "443")), "'match[0][0]'"),
    ("rewrite-pair", _mutate(lambda r: r["rewrite"].append(["x"])), "'rewrite[2]'"),
    ("grouped", _mutate(lambda r: r.update(grouped="yes")), "'grouped'"),
    ("lease", _mutate(lambda r: r.update(lease=-1)), "'lease': must be >= 0"),
    ("rate-cap", _mutate(lambda r: r.update(rate_cap="1M")), "'rate_cap'"),
]


@pytest.mark.parametrize(("text", "field"), [(t, f) for _, t, f in BAD_RECORDS],
                         ids=[n for n, _, _ in BAD_RECORDS])
def test_malformed_record_is_a_store_error_naming_key_and_field(text: str, field: str) -> None:
    with pytest.raises(StoreError) as err:
        decode_trail(text, "sdnscent:{t:7}:trail")
    assert "sdnscent:{t:7}:trail" in str(err.value)
    assert field in str(err.value)


# The host record format ----------------------------------------------------------

H1 = HostRecord("00:00:00:00:00:01", "10.0.0.1", 0x11, 1, 1764057600.25)
H6 = HostRecord("0e:aa:bb:cc:dd:ff", "2001:db8::6", MAX_DPID, MAX_PORT, 1764057601.0)


def test_host_record_round_trips_every_field() -> None:
    for host in (H1, H6):
        record = host_to_record(host)
        assert record["v"] == 1 and set(record) - {"v"} == {f.name for f in fields(HostRecord)}
        back = decode_host(encode_host(host), "k")
        assert back == host and type(back.seen) is float
    assert decode_host(encode_host(HostRecord("00:00:00:00:00:02", "10.0.0.2", 0, 7, 5)),
                       "k").seen == 5.0


def _host_text(**change: Any) -> str:
    record = host_to_record(H1)
    record.update(change)
    return json.dumps({k: v for k, v in record.items() if v is not ...})


BAD_HOSTS = [
    ("not-json", "{oops", "not JSON"),
    ("not-object", '["00:00:00:00:00:01"]', "'(record)'"),
    ("future-format", _host_text(v=2), "'v'"),
    ("missing-ip", _host_text(ip=...), "'ip': missing"),
    ("unknown-field", _host_text(vlan=3), "'vlan': unknown field"),
    ("mac-upper", _host_text(mac="00:00:00:00:00:AB"), "'mac'"),
    ("mac-dashes", _host_text(mac="00-00-00-00-00-01"), "'mac'"),
    ("mac-short", _host_text(mac="00:00:00:00:01"), "'mac'"),
    ("mac-number", _host_text(mac=1), "'mac': expected a string"),
    ("ip-garbage", _host_text(ip="10.0.0.256"), "'ip': expected an IPv4 or IPv6"),
    ("ip-name", _host_text(ip="h1.example"), "'ip'"),
    ("ip-number", _host_text(ip=167772161), "'ip': expected a string"),
    ("ip-not-canonical", _host_text(ip="2001:DB8::6"), "'ip': \"2001:DB8::6\" is not in "
                                                        "canonical form (2001:db8::6)"),
    ("dpid-negative", _host_text(dpid=-1), "'dpid': must be >= 0"),
    ("dpid-65-bit", _host_text(dpid=MAX_DPID + 1), "'dpid': must be <="),
    ("dpid-string", _host_text(dpid="0x11"), "'dpid': expected an integer"),
    ("dpid-float", _host_text(dpid=17.0), "'dpid': expected an integer"),
    ("port-zero", _host_text(port=0), "'port': must be >= 1"),
    ("port-reserved", _host_text(port=0xFFFFFFFE), "'port': must be <="),
    ("port-bool", _host_text(port=True), "'port': expected an integer"),
    ("seen-string", _host_text(seen="now"), "'seen': expected a number"),
    ("seen-negative", _host_text(seen=-1), "'seen': must be >= 0"),
    ("seen-null", _host_text(seen=None), "'seen': expected a number"),
]


@pytest.mark.parametrize(("text", "field"), [(t, f) for _, t, f in BAD_HOSTS],
                         ids=[n for n, _, _ in BAD_HOSTS])
def test_malformed_host_record_is_a_store_error_naming_key_and_field(text: str,
                                                                     field: str) -> None:
    with pytest.raises(StoreError) as err:
        decode_host(text, "sdnscent:{meta}:hosts[00:00:00:00:00:01]")
    assert "'sdnscent:{meta}:hosts[00:00:00:00:00:01]'" in str(err.value)
    assert field in str(err.value)


def test_seen_must_be_finite() -> None:
    with pytest.raises(StoreError, match="'seen'"):
        decode_host(_host_text(seen=float("nan")), "k")  # json.dumps writes NaN
    with pytest.raises(StoreError, match="'seen'"):
        encode_host(HostRecord(H1.mac, H1.ip, 1, 1, float("inf")))


# One suite, three backends ----------------------------------------------------------

@dataclass
class Backend:
    """A store backend under test and the means to poke at it."""

    name: str
    open: Callable[[], TrailStore]
    raw: Any = None  # a redis client of the backend (None for memory)
    server_of_trail_1: Callable[[], RedisServer] | None = None  # the node holding trail 1
    settle: Callable[[], None] = lambda: None  # wait until a restarted node serves again


def _flush(servers: list[RedisServer]) -> None:
    for server in servers:
        client = server.client()
        try:
            client.flushall()
        finally:
            client.close()


@pytest.fixture(params=["memory", "redis", "cluster"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """memory://, a real redis-server or a real Redis Cluster, emptied for each test."""
    if request.param == "memory":
        shared = MemoryStore()
        yield Backend("memory", lambda: shared)
        return
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        _flush([server])
        raw = server.client()
        yield Backend("redis", lambda: open_store(server.url), raw, lambda: server)
        raw.close()
        return
    nodes: RedisClusterNodes = request.getfixturevalue("redis_cluster")
    _flush(nodes.servers)
    raw = RedisCluster(host="127.0.0.1", port=nodes.servers[0].port)

    def owner() -> RedisServer:
        return nodes.server(raw.get_node_from_key(trail_key(1)).port)

    yield Backend("cluster", lambda: open_store(nodes.url), raw, owner, nodes.wait_ok)
    raw.close()


@pytest.fixture
def store(backend: Backend) -> Iterator[TrailStore]:
    """A fresh store object on the backend."""
    opened = backend.open()
    yield opened
    opened.close()


def test_put_get_delete_all_round_trip_every_field(store: TrailStore) -> None:
    trail = full_trail(trail_id=7)
    other = simple_trail(3, 30)
    store.put(trail)
    store.put(other)
    assert same(store.get(7), trail)
    assert [t.id for t in store.all()] == [3, 7]
    assert same(store.all()[1], trail)
    assert store.get(99) is None
    assert same(store.delete(7), trail)
    assert store.delete(7) is None
    assert store.get(7) is None
    assert store.all() == [other]


def test_next_id_is_unique_and_increasing(store: TrailStore) -> None:
    ids = [store.next_id() for _ in range(50)]
    assert ids == sorted(set(ids)) and ids[0] >= 1


def test_next_id_is_unique_across_two_store_objects(backend: Backend) -> None:
    first, second = backend.open(), backend.open()
    seen: list[list[int]] = [[], []]

    def take(store: TrailStore, out: list[int]) -> None:
        out.extend(store.next_id() for _ in range(200))

    threads = [threading.Thread(target=take, args=(s, out))
               for s, out in zip((first, second), seen, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = seen[0] + seen[1]
    assert len(set(every)) == len(every) == 400
    first.close()
    second.close()


def test_older_version_is_refused_and_the_newer_kept(store: TrailStore) -> None:
    store.put(simple_trail(5, 50, version=4))
    with pytest.raises(StaleWrite, match="version 3 is older than stored 4"):
        store.put(simple_trail(5, 51, version=3))
    store.put(simple_trail(5, 50, version=4))  # the same version again: idempotent
    store.put(simple_trail(5, 52, version=6))
    assert store.get(5) == simple_trail(5, 52, version=6)


def test_late_write_cannot_resurrect_a_deleted_trail(store: TrailStore) -> None:
    store.put(simple_trail(5, 50, version=4))
    store.delete(5)
    with pytest.raises(StaleWrite, match="deleted at version 4"):
        store.put(simple_trail(5, 50, version=4))
    assert store.get(5) is None and store.all() == []
    store.put(simple_trail(5, 50, version=5))  # a newer generation may come back
    assert store.get(5) == simple_trail(5, 50, version=5)
    assert [t.id for t in store.all()] == [5]


def test_racing_writers_always_leave_the_newest_version(backend: Backend) -> None:
    writers = [backend.open(), backend.open()]
    rounds, stale = 150, 0
    writers[0].put(simple_trail(9, 90, version=1))
    for n in range(2, 2 * rounds + 2, 2):
        barrier = threading.Barrier(2)
        outcome: dict[int, BaseException | None] = {}

        def write(store: TrailStore, version: int, barrier: threading.Barrier = barrier,
                  outcome: dict[int, BaseException | None] = outcome) -> None:
            barrier.wait()
            try:
                store.put(simple_trail(9, 90 + version % 7, version=version))
                outcome[version] = None
            except BaseException as exc:  # reported below
                outcome[version] = exc

        # the older version is written by alternating clients
        threads = [threading.Thread(target=write, args=(writers[(n // 2) % 2], n)),
                   threading.Thread(target=write, args=(writers[(n // 2 + 1) % 2], n + 1))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert outcome[n + 1] is None
        if outcome[n] is not None:
            assert isinstance(outcome[n], StaleWrite), outcome[n]
            stale += 1
        stored = writers[0].get(9)
        assert stored is not None and stored.version == n + 1
        assert stored.label == 90 + (n + 1) % 7
    print(f"{backend.name}: {stale} of {rounds} older writes lost the race (StaleWrite)")
    for w in writers:
        w.close()


def test_find_by_label_follows_reroutes_deletes_and_label_reuse(store: TrailStore) -> None:
    store.put(simple_trail(1, 100, (11, 12, 13)))
    store.put(simple_trail(2, 200, (11, 14)))
    assert store.find_by_label(12, 100).id == 1  # type: ignore[union-attr]
    assert store.find_by_label(11, 200).id == 2  # type: ignore[union-attr]
    assert store.find_by_label(14, 100) is None
    assert store.find_by_label(12, 999) is None
    moved = simple_trail(1, 101, (11, 15, 13), version=2)  # new label and path
    store.put(moved)
    assert store.find_by_label(12, 100) is None
    assert store.find_by_label(13, 100) is None
    assert store.find_by_label(15, 101) == moved
    store.delete(1)
    assert store.find_by_label(15, 101) is None
    store.put(simple_trail(3, 101, (15,)))  # the freed label serves another trail
    assert store.find_by_label(15, 101).id == 3  # type: ignore[union-attr]
    assert store.find_by_label(11, 101) is None


# Redis-only behaviour ------------------------------------------------------------------

def _redis_only(backend: Backend) -> None:
    if backend.raw is None:
        pytest.skip("the memory store holds objects, not records")


def test_malformed_stored_record_is_a_clear_error_and_skipped_by_all(
        backend: Backend, store: TrailStore, caplog: pytest.LogCaptureFixture) -> None:
    _redis_only(backend)
    store.put(simple_trail(1, 100))
    store.put(simple_trail(2, 200, (21,)))
    bad = _mutate(lambda r: (r.update(id=2, label=200), r["hops"][0].update(out_port=-1)))
    backend.raw.set(trail_key(2), bad)
    with pytest.raises(StoreError, match=r"'sdnscent:\{t:2\}:trail'.*'hops\[0\]\.out_port'"):
        store.get(2)
    with pytest.raises(StoreError, match="'hops"):
        store.find_by_label(21, 200)
    assert [t.id for t in store.all()] == [1]
    assert "malformed" in caplog.text and "{t:2}" in caplog.text
    backend.raw.set(trail_key(1), json.dumps(trail_to_record(simple_trail(8, 100))))
    with pytest.raises(StoreError, match="field 'id': 8 does not match the key's trail 1"):
        store.get(1)
    backend.raw.set(trail_key(2), b"\xff\x00garbage")
    store.put(simple_trail(2, 201, (21,), version=2))  # a good write replaces garbage
    assert store.find_by_label(21, 201) == simple_trail(2, 201, (21,), version=2)
    backend.raw.set(trail_key(2), "{}")
    assert store.delete(2) is None  # removed; nothing readable to return
    assert backend.raw.get(trail_key(2)) is None
    backend.raw.hset(labels_key(21), "5", "not-an-id")
    with pytest.raises(StoreError, match="not a trail id"):
        store.find_by_label(21, 5)


def test_one_trails_keys_share_a_slot_and_meta_keys_share_one(backend: Backend) -> None:
    if backend.name != "cluster":
        pytest.skip("slots exist only in a cluster")
    node = backend.raw.get_default_node()
    for trail_id in (1, 77, 123456):
        slots = {backend.raw.execute_command("CLUSTER KEYSLOT", key, target_nodes=node)
                 for key in (trail_key(trail_id), tombstone_key(trail_id))}
        assert len(slots) == 1
    slots = {backend.raw.execute_command("CLUSTER KEYSLOT", key, target_nodes=node)
             for key in (COUNTER_KEY, IDS_KEY, HOSTS_KEY)}
    assert len(slots) == 1


def test_store_recovers_after_a_redis_restart(backend: Backend, store: TrailStore) -> None:
    _redis_only(backend)
    assert backend.server_of_trail_1 is not None
    before = store.next_id()
    store.put(simple_trail(1, 100))
    server = backend.server_of_trail_1()
    server.stop()
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as err:
            store.get(1)
        assert f"127.0.0.1:{server.port}" in str(err.value)
        assert time.monotonic() - started < 5
    finally:
        server.start()
        backend.settle()
    _wait_usable(store)
    assert store.next_id() > before  # the lost counter does not hand out old ids
    store.put(simple_trail(1, 100, version=2))  # the data died with it (--save '')
    assert store.get(1) == simple_trail(1, 100, version=2)
    assert store.find_by_label(2, 100) == simple_trail(1, 100, version=2)


def _wait_usable(store: TrailStore, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            store.get(1)
            return
        except StoreError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# URLs, start-up errors, connections -------------------------------------------------------

@pytest.mark.parametrize(("url", "problem"), [
    ("", "unknown scheme ''"),
    ("localhost:6379", "unknown scheme 'localhost'"),
    ("mysql://db:3306", "unknown scheme 'mysql'"),
    ("memory://somewhere", "memory:// takes no host"),
    ("redis://", "no host"),
    ("redis://h:notaport/0", "Port could not be cast"),
    ("redis://h:70000/0", "Port out of range"),
    ("redis://h:6379/x", "database 'x' is not a number"),
    ("redis://h:6379/0/1", "database '0/1' is not a number"),
    ("redis://h:6379/0?timeout=3", "options"),
    ("redis+cluster://h:7000/3", "only database 0"),
    ("rediss://h:6379/0", "TLS"),
])
def test_bad_url_is_a_store_error_naming_url_and_problem(url: str, problem: str) -> None:
    with pytest.raises(StoreError) as err:
        open_store(url)
    assert repr(url) in str(err.value)
    assert problem in str(err.value)


def test_a_unix_socket_reaches_the_same_redis(redis_server: RedisServer) -> None:
    tcp, unix = open_store(redis_server.url), open_store(redis_server.unix_url)
    try:
        tcp.put(simple_trail(901, 9010))
        assert unix.get(901) == simple_trail(901, 9010)
        assert unix.address == f"redis+unix://{redis_server.socket}"
    finally:
        tcp.delete(901)
        tcp.close()
        unix.close()
    for url in ("redis+unix://relative.sock", "redis+unix://host/x.sock"):
        with pytest.raises(StoreError, match="redis\\+unix:///absolute"):
            open_store(url)
    with pytest.raises(StoreError, match="/nonexistent.sock"):
        open_store("redis+unix:///nonexistent.sock")


def test_password_is_not_echoed_in_errors() -> None:
    with pytest.raises(StoreError) as err:
        open_store("redis://admin:s3cret@h:6379/x")
    assert "s3cret" not in str(err.value) and "admin:***@h" in str(err.value)


@pytest.mark.parametrize("scheme", ["redis", "redis+cluster"])
def test_unreachable_redis_is_a_quick_store_error_naming_the_address(scheme: str) -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(StoreError, match=f"cannot reach Redis.* at 127.0.0.1:{port}"):
        open_store(f"{scheme}://127.0.0.1:{port}")
    assert time.monotonic() - started < 3


def test_manager_exits_2_on_unreachable_store() -> None:
    from apps import manager

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        assert manager.main(["--store", f"redis://127.0.0.1:{free_port()}/0"]) == 2
    finally:  # main() configures the root logger
        root.handlers[:] = handlers
        root.setLevel(level)


def test_opening_a_store_to_validate_it_leaves_no_connection(redis_server: RedisServer) -> None:
    raw = redis_server.client()

    def ours() -> int:
        return sum(1 for c in raw.client_list() if c.get("name") == "sdnscent")

    assert ours() == 0
    open_store(redis_server.url)  # what apps/manager.py main() does: open and drop
    gc.collect()
    deadline = time.monotonic() + 2
    while ours() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ours() == 0
    kept = open_store(redis_server.url)
    assert isinstance(kept, RedisStore) and ours() == 1
    kept.close()
    raw.close()


def test_open_store_picks_the_backend(redis_server: RedisServer,
                                      redis_cluster: RedisClusterNodes) -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    plain = open_store(f"redis://127.0.0.1:{redis_server.port}")  # port given, db 0
    cluster = open_store(redis_cluster.url)
    assert isinstance(plain, RedisStore) and isinstance(cluster, RedisClusterStore)
    plain.close()
    cluster.close()


# Leases, host load, notifications, leadership (every backend) ----------------------

def test_a_trail_past_its_lease_and_grace_leaves_the_store_by_itself(
        backend: Backend, store: TrailStore) -> None:
    store.lease_grace = 0.2
    short = simple_trail(1, 100).evolve(expires=time.time() + 0.3)
    lasting = simple_trail(2, 200, dpids=(4,)).evolve(expires=time.time() + 60)
    forever = simple_trail(3, 300, dpids=(5,))
    for trail in (short, lasting, forever):
        store.put(trail)
    assert store.get(1) == short and store.find_by_label(2, 100) == short
    time.sleep(0.6)
    assert store.get(1) is None
    assert store.find_by_label(2, 100) is None
    assert [t.id for t in store.all()] == [2, 3]
    assert store.next_id() > 3  # an expired trail's id is not handed out again


def test_reserve_ids_hands_out_a_block_nobody_else_gets(store: TrailStore) -> None:
    block = store.reserve_ids(50)
    assert len(block) == 50 and block == list(range(block[0], block[0] + 50))
    others = {store.next_id() for _ in range(20)}
    assert not others & set(block)


def test_node_load_expires_with_its_ttl_and_rejects_bad_input(store: TrailStore) -> None:
    store.put_node_load("h1", {"cpu": 0.5, "ts": 1.0}, ttl=0.3)
    store.put_node_load("fw1", {"cpu": 0.9, "ts": 1.0, "ifaces": {"eth0": [1, 2]}}, ttl=30)
    assert store.node_loads() == {"fw1": {"cpu": 0.9, "ts": 1.0, "ifaces": {"eth0": [1, 2]}},
                                  "h1": {"cpu": 0.5, "ts": 1.0}}
    assert redis_fixtures.until(lambda: "h1" not in store.node_loads())
    for node, sample, ttl, problem in [("bad name", {}, 1, "node name"),
                                       ("{x}", {}, 1, "node name"),
                                       ("h2", [1], 1, "an object"),
                                       ("h2", {"cpu": float("nan")}, 1, "plain JSON"),
                                       ("h2", {}, 0, "ttl")]:
        with pytest.raises(StoreError, match=problem):
            store.put_node_load(node, sample, ttl)  # type: ignore[arg-type]
    assert set(store.node_loads()) == {"fw1"}


def test_every_put_and_delete_is_announced_to_other_store_objects(
        backend: Backend, store: TrailStore) -> None:
    other = backend.open()
    seen: list[dict] = []
    unsubscribe = other.subscribe(seen.append)
    try:
        trail = simple_trail(1, 100)
        store.put(trail)
        store.put(trail.evolve(label=101, version=2))
        store.delete(1, reason="lease expired")
        assert redis_fixtures.until(lambda: len(seen) >= 3)
        assert [(n["op"], n["id"], n["version"], n["label"]) for n in seen] == [
            ("put", 1, 1, 100), ("put", 1, 2, 101), ("delete", 1, 2, 101)]
        assert seen[2]["reason"] == "lease expired"
        assert {n["origin"] for n in seen} == {store.origin}
        assert other is store or other.origin != store.origin
    finally:
        unsubscribe()
        if other is not store:
            other.close()


def test_one_leader_at_a_time_and_the_lease_passes_on_when_it_runs_out(
        store: TrailStore) -> None:
    assert store.claim_leader("ctl-a", ttl=0.4)
    assert not store.claim_leader("ctl-b", ttl=0.4)
    assert store.claim_leader("ctl-a", ttl=0.4)  # renewal
    assert store.leader() == "ctl-a"
    assert redis_fixtures.until(lambda: store.claim_leader("ctl-b", ttl=5))  # a's lease ran out
    assert store.leader() == "ctl-b"
    store.release_leader("ctl-a")  # not a's to release
    assert store.leader() == "ctl-b"
    store.release_leader("ctl-b")
    assert store.leader() is None
    first = store.next_generation()
    assert store.next_generation() == first + 1 == store.generation()


def test_rebuild_index_restores_a_lost_label_index(backend: Backend, store: TrailStore) -> None:
    _redis_only(backend)
    store.put(simple_trail(1, 100))
    backend.raw.delete(labels_key(2))
    assert store.find_by_label(2, 100) is None
    assert store.rebuild_index() == 1
    assert store.find_by_label(2, 100) == simple_trail(1, 100)


# Learned hosts (every backend) -------------------------------------------------------

def test_hosts_round_trip_overwrite_and_delete(backend: Backend, store: TrailStore) -> None:
    assert store.hosts() == []
    store.put_host(H6)
    store.put_host(H1)
    assert store.hosts() == [H1, H6]  # by MAC
    moved = HostRecord(H1.mac, H1.ip, 0x12, 3, H1.seen + 10)
    store.put_host(moved)
    restarted = backend.open()  # what a controller started after a kill -9 reads
    try:
        assert restarted.hosts() == [moved, H6]
        store.delete_host(H1.mac)
        store.delete_host(H1.mac)  # already gone: no error
        store.delete_host("00:00:00:00:00:99")
        assert restarted.hosts() == [H6]
    finally:
        if restarted is not store:
            restarted.close()


@pytest.mark.parametrize(("host", "field"), [
    (HostRecord("00:00:00:00:00:0G", "10.0.0.1", 1, 1, 1.0), "'mac'"),
    (HostRecord("00:00:00:00:00:01", "10.0.0", 1, 1, 1.0), "'ip'"),
    (HostRecord("00:00:00:00:00:01", "10.0.0.1", -5, 1, 1.0), "'dpid'"),
    (HostRecord("00:00:00:00:00:01", "10.0.0.1", 1, 0, 1.0), "'port'"),
    (HostRecord("00:00:00:00:00:01", "10.0.0.1", 1, 1, float("nan")), "'seen'"),
], ids=["mac", "ip", "dpid", "port", "seen"])
def test_an_invalid_host_record_is_refused_naming_the_field(store: TrailStore,
                                                            host: HostRecord,
                                                            field: str) -> None:
    with pytest.raises(StoreError, match=field):
        store.put_host(host)
    assert store.hosts() == []
    with pytest.raises(StoreError, match="expected a MAC address"):
        store.delete_host("h1")


def test_a_malformed_stored_host_is_logged_and_skipped(
        backend: Backend, store: TrailStore, caplog: pytest.LogCaptureFixture) -> None:
    _redis_only(backend)
    store.put_host(H1)
    store.put_host(H6)
    backend.raw.hset(HOSTS_KEY, "00:00:00:00:00:02", _host_text(mac="00:00:00:00:00:02",
                                                                 port=-3))
    backend.raw.hset(HOSTS_KEY, "00:00:00:00:00:03", b"\xff\x00garbage")
    backend.raw.hset(HOSTS_KEY, "00:00:00:00:00:04", _host_text())  # says it is H1
    backend.raw.hset(HOSTS_KEY, "not-a-mac", _host_text())
    with caplog.at_level(logging.ERROR, logger="sdnscent.redisstore"):
        assert store.hosts() == [H1, H6]
    assert "'sdnscent:{meta}:hosts[00:00:00:00:00:02]': field 'port'" in caplog.text
    assert "hosts[00:00:00:00:00:03]': not JSON" in caplog.text
    assert "hosts[00:00:00:00:00:04]': field 'mac'" in caplog.text
    assert "hosts[not-a-mac]'" in caplog.text
    store.put_host(HostRecord("00:00:00:00:00:02", "10.0.0.2", 1, 2, 3.0))  # replaces it
    assert [h.mac for h in store.hosts()] == [H1.mac, "00:00:00:00:00:02", H6.mac]
