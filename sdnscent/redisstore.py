"""Trail stores on Redis and Redis Cluster: versioned JSON records under hash-tagged
keys, compare-and-set writes in Lua, and a (switch, label) index for the miss path.

Key layout, record format and trade-offs: docs/store.rst.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError
from redis.retry import Retry

from .store import StaleWrite, StoreError, TrailStore, decode_trail, encode_trail
from .topology import dpid_str
from .trails import Trail

LOG = logging.getLogger(__name__)

PREFIX = "sdnscent"
SOCKET_TIMEOUT = 2.0  # s per command: a stalled Redis becomes a StoreError, not a hang
CONNECT_TIMEOUT = 1.0  # s per connection attempt
TOMBSTONE_TTL = 86400  # s a deleted trail's version keeps late writers out
FETCH_CHUNK = 500  # records per MGET in all()

# KEYS: trail, tombstone. ARGV: version, record.
# -> {1, previous record or ""} written; {0, stored version} stale; {-1, deleted version}.
# A stored record whose version cannot be read is overwritten (the caller logs it).
PUT_SCRIPT = """
local want = tonumber(ARGV[1])
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, rec = pcall(cjson.decode, cur)
  if ok and type(rec) == 'table' and type(rec['version']) == 'number'
      and rec['version'] > want then
    return {0, string.format('%d', rec['version'])}
  end
else
  local gone = tonumber(redis.call('GET', KEYS[2]) or '')
  if gone and gone >= want then
    return {-1, string.format('%d', gone)}
  end
end
redis.call('SET', KEYS[1], ARGV[2])
return {1, cur or ''}
"""

# KEYS: trail, tombstone. ARGV: tombstone ttl. -> the deleted record, or nil.
DELETE_SCRIPT = """
local cur = redis.call('GET', KEYS[1])
if not cur then return false end
redis.call('DEL', KEYS[1])
local ok, rec = pcall(cjson.decode, cur)
if ok and type(rec) == 'table' and type(rec['version']) == 'number' then
  redis.call('SET', KEYS[2], string.format('%d', rec['version']), 'EX', ARGV[1])
end
return cur
"""

# KEYS: a switch's label hash. ARGV: label, trail id. Remove the entry only if it
# still names this trail (the label may already belong to another one).
UNINDEX_SCRIPT = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""

# KEYS: id counter, id index (same slot). ARGV: the highest id this client saw.
# INCR, but never below an id already handed out (a Redis that lost its data).
NEXT_ID_SCRIPT = """
local v = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if top[2] and tonumber(top[2]) > floor then floor = tonumber(top[2]) end
if v <= floor then
  v = floor + 1
  redis.call('SET', KEYS[1], v)
end
return v
"""


def trail_key(trail_id: int) -> str:
    """The JSON record of a trail."""
    return f"{PREFIX}:{{t:{trail_id}}}:trail"


def tombstone_key(trail_id: int) -> str:
    """The version at which a trail was deleted (expires after TOMBSTONE_TTL)."""
    return f"{PREFIX}:{{t:{trail_id}}}:gone"


def labels_key(dpid: int) -> str:
    """Hash of a switch's labels: field label -> trail id (the miss-path index)."""
    return f"{PREFIX}:{{sw:{dpid_str(dpid)}}}:labels"


COUNTER_KEY = f"{PREFIX}:{{meta}}:next_id"
IDS_KEY = f"{PREFIX}:{{meta}}:trails"  # sorted set of trail ids (score = id)


def _retry() -> Retry:
    """One quick retry: enough to reconnect a pooled socket after a Redis restart."""
    return Retry(ExponentialBackoff(cap=0.1, base=0.02), 1)


class _RedisBase(TrailStore):
    """The store logic shared by a single Redis and a Redis Cluster."""

    address: str
    _client: Any

    def __init__(self) -> None:
        self._last_id = 0

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn client errors into StoreError naming the address."""
        try:
            yield
        except StoreError:
            raise
        except (RedisError, RedisClusterException, OSError) as exc:
            raise StoreError(f"store {self.address}: {type(exc).__name__}: {exc}") from exc

    def _eval(self, script: str, keys: list[str], *args: Any) -> Any:
        return self._client.eval(script, len(keys), *keys, *args)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()

    # TrailStore -------------------------------------------------------------
    def next_id(self) -> int:
        with self._errors():
            value = int(self._eval(NEXT_ID_SCRIPT, [COUNTER_KEY, IDS_KEY], self._last_id))
        self._last_id = max(self._last_id, value)
        return value

    def put(self, trail: Trail) -> None:
        key = trail_key(trail.id)
        with self._errors():
            code, detail = self._eval(PUT_SCRIPT, [key, tombstone_key(trail.id)],
                                      trail.version, encode_trail(trail))
            code = int(code)
            if isinstance(detail, str):
                detail = detail.encode()
            if code == 0:
                raise StaleWrite(f"trail {trail.id}: version {trail.version} is older "
                                 f"than stored {detail.decode(errors='replace')}")
            if code == -1:
                raise StaleWrite(f"trail {trail.id}: version {trail.version} was deleted "
                                 f"at version {detail.decode(errors='replace')}")
            old = self._quiet_decode(detail, key) if detail else None
            if not detail:
                self._client.zadd(IDS_KEY, {str(trail.id): trail.id})
            self._reindex(trail, old)

    def get(self, trail_id: int) -> Trail | None:
        key = trail_key(trail_id)
        with self._errors():
            raw = self._client.get(key)
        return None if raw is None else self._decode(raw, key, trail_id)

    def delete(self, trail_id: int) -> Trail | None:
        key = trail_key(trail_id)
        with self._errors():
            raw = self._eval(DELETE_SCRIPT, [key, tombstone_key(trail_id)], TOMBSTONE_TTL)
            self._client.zrem(IDS_KEY, str(trail_id))
            if raw is None:
                return None
            old = self._quiet_decode(raw, key)
            if old is not None:
                self._reindex(None, old)
        return old

    def all(self) -> list[Trail]:
        with self._errors():
            ids = sorted(int(x) for x in self._client.zrange(IDS_KEY, 0, -1))
            trails = []
            for start in range(0, len(ids), FETCH_CHUNK):
                chunk = ids[start:start + FETCH_CHUNK]
                keys = [trail_key(i) for i in chunk]
                for trail_id, key, raw in zip(chunk, keys, self._mget(keys), strict=True):
                    if raw is None:
                        continue  # deleted meanwhile
                    try:
                        trails.append(self._decode(raw, key, trail_id))
                    except StoreError as exc:
                        LOG.error("skipping a malformed trail: %s", exc)
        return trails

    def find_by_label(self, dpid: int, label: int) -> Trail | None:
        with self._errors():
            trail_id = self._client.hget(labels_key(dpid), str(label))
        if trail_id is None:
            return None
        try:
            trail = self.get(int(trail_id))
        except ValueError:
            raise StoreError(f"store {self.address}: record {labels_key(dpid)!r}: field "
                             f"{str(label)!r}: {trail_id!r} is not a trail id") from None
        if trail is None or trail.label != label or dpid not in trail.switches:
            return None  # a stale index entry: the trail moved or is gone
        return trail

    # helpers ----------------------------------------------------------------
    def _mget(self, keys: list[str]) -> list[bytes | None]:
        return self._client.mget(keys)

    def _decode(self, raw: bytes, key: str, trail_id: int) -> Trail:
        trail = decode_trail(raw, key)
        if trail.id != trail_id:
            raise StoreError(f"store record {key!r}: field 'id': {trail.id} does not match "
                             f"the key's trail {trail_id}")
        return trail

    def _quiet_decode(self, raw: bytes | str, key: str) -> Trail | None:
        """The previous record of a write, or None (logged) if it was malformed."""
        try:
            return decode_trail(raw, key)
        except StoreError as exc:
            LOG.warning("replaced a malformed trail record: %s", exc)
            return None

    def _reindex(self, new: Trail | None, old: Trail | None) -> None:
        """Point (switch, label) at `new`; drop entries only `old` had."""
        fresh = _entries(new)
        stale = _entries(old) - fresh
        if fresh and fresh != _entries(old):
            pipe = self._client.pipeline(transaction=False)
            for dpid, label in sorted(fresh):
                pipe.hset(labels_key(dpid), str(label), str(new.id))  # type: ignore[union-attr]
            pipe.execute()
        for dpid, label in sorted(stale):
            self._eval(UNINDEX_SCRIPT, [labels_key(dpid)], str(label), str(old.id))  # type: ignore[union-attr]


def _entries(trail: Trail | None) -> set[tuple[int, int]]:
    return set() if trail is None else {(h.dpid, trail.label) for h in trail.hops}


class RedisStore(_RedisBase):
    """Trails in one Redis server (redis://host:port/db)."""

    def __init__(self, host: str, port: int = 6379, db: int = 0, username: str | None = None,
                 password: str | None = None) -> None:
        super().__init__()
        self.address = f"redis://{host}:{port}/{db}"
        self._client = redis.Redis(
            host=host, port=port, db=db, username=username, password=password,
            socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=CONNECT_TIMEOUT,
            retry=_retry(), client_name="sdnscent")
        try:
            with self._errors():
                self._client.ping()
        except StoreError as exc:
            self.close()
            raise StoreError(f"cannot reach Redis at {host}:{port}: {exc.__cause__}") from None


class RedisClusterStore(_RedisBase):
    """Trails in a Redis Cluster (redis+cluster://host:port: any node of it)."""

    def __init__(self, host: str, port: int = 6379, username: str | None = None,
                 password: str | None = None) -> None:
        super().__init__()
        self.address = f"redis+cluster://{host}:{port}"
        try:
            self._client = RedisCluster(
                host=host, port=port, username=username, password=password,
                socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=CONNECT_TIMEOUT,
                retry=_retry(), client_name="sdnscent")
        except (RedisError, RedisClusterException, OSError) as exc:
            raise StoreError(f"cannot reach Redis Cluster at {host}:{port}: {exc}") from None

    def _mget(self, keys: list[str]) -> list[bytes | None]:
        return self._client.mget_nonatomic(keys)
