"""The controller's trail cache in front of a real redis-server: reads from memory,
writes through, an outage held in memory and written back, other writers' changes;
the same for host records."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis_fixtures

from sdnscent.cache import CachedStore
from sdnscent.metrics import Metrics, TimedStore
from sdnscent.store import HostRecord, StaleWrite, StoreError, open_store
from sdnscent.trails import Hop, Trail
from tests.redisproc import RedisServer, running_redis


def trail(trail_id: int, label: int, dpids: tuple[int, ...] = (1, 2, 3),
          version: int = 1) -> Trail:
    return Trail(trail_id, label, "00:00:00:00:00:01", "00:00:00:00:00:02", "10.0.0.1",
                 "10.0.0.2", tuple(Hop(d, 1, 2) for d in dpids), version=version)


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A redis-server of this test alone (the outage tests stop and start it)."""
    redis_fixtures._need_redis()
    with running_redis("sdnscent-cache-") as srv:
        yield srv


@pytest.fixture
def cache(server: RedisServer) -> Iterator[CachedStore]:
    store = CachedStore(open_store(server.url), id_block=8)
    yield store
    store.close()


def test_loads_what_the_store_holds_and_writes_through(server: RedisServer) -> None:
    backing = open_store(server.url)
    backing.put(trail(1, 100))
    cache = CachedStore(open_store(server.url))
    try:
        assert cache.all() == [trail(1, 100)]
        cache.put(trail(2, 200, dpids=(4,)))
        assert backing.get(2) == trail(2, 200, dpids=(4,))
        assert cache.find_by_label(4, 200) == trail(2, 200, dpids=(4,))
        cache.delete(1, "test")
        assert backing.get(1) is None and cache.get(1) is None
    finally:
        cache.close()
        backing.close()


def test_an_outage_is_held_in_memory_and_written_back_when_redis_returns(
        server: RedisServer, cache: CachedStore) -> None:
    assert (cache.next_id(), cache.next_id()) == (1, 2)
    cache.put(trail(1, 100))
    cache.put(trail(2, 200, dpids=(5,)))
    server.stop()
    # installed trails keep being served from memory
    assert [t.id for t in cache.all()] == [1, 2]
    assert cache.find_by_label(2, 100) == trail(1, 100)
    # new trails and changes are still accepted, and counted as pending
    new_id = cache.next_id()
    cache.put(trail(new_id, 300, dpids=(6,)))
    cache.put(trail(1, 101, version=2))
    cache.delete(2, "lease expired")
    assert cache.degraded and cache.pending == 3
    assert cache.status()["healthy"] is False
    assert cache.sync() == 0  # still down: nothing written, nothing lost
    assert cache.degraded
    server.start()  # empty: this redis keeps no data across restarts
    assert cache.sync() == 2  # trail 1 (v2) and the new one; trail 2 stays deleted
    assert not cache.degraded and cache.pending == 0
    backing = open_store(server.url)
    try:
        assert backing.all() == [trail(1, 101, version=2), trail(new_id, 300, dpids=(6,))]
        assert backing.find_by_label(6, 300) == trail(new_id, 300, dpids=(6,))
        assert backing.next_id() > new_id  # ids handed out in the outage stay taken
    finally:
        backing.close()
    assert cache.all() == [trail(1, 101, version=2), trail(new_id, 300, dpids=(6,))]


def test_reserved_ids_run_out_in_a_long_outage_with_a_clear_error(
        server: RedisServer, cache: CachedStore) -> None:
    cache.put(trail(1, 100))
    server.stop()
    cache.put(trail(1, 100, version=2))  # noticed the outage
    with pytest.raises(StoreError, match="reserved for an outage are used up"):
        for _ in range(20):
            cache.next_id()
    server.start()


def test_changes_of_another_writer_reach_the_copy_and_its_listeners(
        server: RedisServer, cache: CachedStore) -> None:
    other = CachedStore(open_store(server.url))
    seen: list[dict] = []
    cache.subscribe(seen.append)
    try:
        other.put(trail(7, 700))
        assert redis_fixtures.until(lambda: cache.all() == [trail(7, 700)])
        other.put(trail(7, 701, version=2))
        assert redis_fixtures.until(lambda: cache.find_by_label(1, 701) == trail(7, 701, version=2))
        assert cache.find_by_label(1, 700) is None
        other.delete(7, "lease expired")
        assert redis_fixtures.until(lambda: cache.all() == [])
        assert redis_fixtures.until(lambda: len(seen) == 3)
        assert [(n["op"], n["version"]) for n in seen] == [("put", 1), ("put", 2),
                                                          ("delete", 2)]
        assert seen[2]["reason"] == "lease expired"
        cache.put(trail(8, 800))  # its own writes are not echoed to its listeners
        time.sleep(0.3)
        assert len(seen) == 3
    finally:
        other.close()


def test_a_stale_write_fails_and_the_copy_takes_the_newer_version(
        server: RedisServer, cache: CachedStore) -> None:
    cache.put(trail(1, 100))
    backing = open_store(server.url)
    try:
        backing.put(trail(1, 100, version=5))  # notification may race the next put
        with pytest.raises(StaleWrite):
            cache.put(trail(1, 102, version=2))
        assert cache.get(1) == trail(1, 100, version=5)
    finally:
        backing.close()


def test_a_label_of_another_writer_is_found_in_redis_on_a_miss(
        server: RedisServer, cache: CachedStore) -> None:
    backing = open_store(server.url)
    try:
        backing.put(trail(3, 300, dpids=(9,)))
        assert cache.find_by_label(9, 300) == trail(3, 300, dpids=(9,))
        assert cache.get(3) == trail(3, 300, dpids=(9,))
    finally:
        backing.close()


def host(n: int, port: int = 1, seen: float = 100.0) -> HostRecord:
    return HostRecord(f"00:00:00:00:00:{n:02x}", f"10.0.0.{n}", 0x10 + n, port, seen)


def test_hosts_go_through_the_apps_stack_timed(server: RedisServer) -> None:
    """CachedStore(TimedStore(store)), as apps/scent_trail.py builds it."""
    metrics = Metrics()
    cache = CachedStore(TimedStore(open_store(server.url), metrics.store))  # type: ignore[arg-type]
    backing = open_store(server.url)
    try:
        cache.put_host(host(1))
        backing.put_host(host(2))  # another controller's
        assert cache.hosts() == [host(1), host(2)]
        cache.delete_host(host(1).mac)
        assert backing.hosts() == [host(2)]
        with pytest.raises(StoreError, match="'port'"):
            cache.put_host(host(3, port=0))
        assert not cache.degraded and backing.hosts() == [host(2)]
        for op in ("put_host", "hosts", "delete_host"):
            assert metrics.registry.get_sample_value("sdnscent_store_seconds_count",
                                                     {"op": op}), op
    finally:
        cache.close()
        backing.close()


def test_hosts_are_served_in_an_outage_and_written_back_when_redis_returns(
        server: RedisServer, cache: CachedStore) -> None:
    then = time.time() - 1000
    for n in (1, 2, 3):
        cache.put_host(host(n, seen=then))
    server.stop()
    assert cache.hosts() == [host(1, seen=then), host(2, seen=then), host(3, seen=then)]
    assert cache.degraded  # the copy answered
    moved, new = host(1, port=2, seen=then + 100), host(4, seen=then + 100)
    cache.put_host(moved)
    cache.put_host(new)
    cache.delete_host(host(2).mac)
    cache.delete_host(host(3).mac)
    assert cache.pending == 4
    assert cache.hosts() == [moved, new]
    assert cache.sync() == 0 and cache.degraded
    server.start()  # empty
    backing = open_store(server.url)
    try:
        again = host(3, port=9, seen=time.time() + 5)  # another controller saw it after the delete
        backing.put_host(again)
        backing.put_host(host(4, port=9, seen=then + 50))  # older than the cache's
        backing.put_host(host(2, seen=then))  # as before the outage: deleted again
        assert cache.sync() == 3  # hosts 1, 4 and the delete of 2; 3 is newer than its delete
        assert not cache.degraded and cache.pending == 0
        assert backing.hosts() == [moved, again, new]
        assert cache.hosts() == [moved, again, new]
    finally:
        backing.close()
