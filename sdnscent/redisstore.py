"""Trail stores on Redis and Redis Cluster: versioned JSON records under hash-tagged
keys, compare-and-set writes in Lua, and a (switch, label) index for the miss path.

Key layout, record format and trade-offs: docs/store.rst.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError
from redis.retry import Retry

from .store import (
    HostRecord,
    Listener,
    Listeners,
    StaleWrite,
    StoreError,
    TrailStore,
    _dump,
    check_mac,
    check_node_name,
    decode_host,
    decode_trail,
    encode_host,
    encode_trail,
    lease_deadline,
    new_origin,
    put_note,
)
from .topology import dpid_str
from .trails import Trail

LOG = logging.getLogger(__name__)

PREFIX = "sdnscent"
SOCKET_TIMEOUT = 2.0  # s per command: a stalled Redis becomes a StoreError, not a hang
CONNECT_TIMEOUT = 1.0  # s per connection attempt
TOMBSTONE_TTL = 86400  # s a deleted trail's version keeps late writers out
FETCH_CHUNK = 500  # records per MGET in all()

# KEYS: trail, tombstone. ARGV: version, record, expire-at in ms (0: never),
# notification, channel.
# -> {1, previous record or ""} written; {0, stored version} stale; {-1, deleted version}.
# A stored record whose version cannot be read is overwritten (the caller logs it).
# The change notification is published by the script: no extra round trip.
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
if ARGV[3] ~= '0' then
  redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
redis.call('PUBLISH', ARGV[5], ARGV[4])
return {1, cur or ''}
"""

# KEYS: trail, tombstone. ARGV: tombstone ttl, trail id, reason, origin, channel.
# -> the deleted record, or nil.
DELETE_SCRIPT = """
local cur = redis.call('GET', KEYS[1])
if not cur then return false end
redis.call('DEL', KEYS[1])
local ok, rec = pcall(cjson.decode, cur)
local note = {op='delete', id=tonumber(ARGV[2]), reason=ARGV[3], origin=ARGV[4]}
if ok and type(rec) == 'table' and type(rec['version']) == 'number' then
  redis.call('SET', KEYS[2], string.format('%d', rec['version']), 'EX', ARGV[1])
  note['version'] = rec['version']
  note['label'] = rec['label']
end
redis.call('PUBLISH', ARGV[5], cjson.encode(note))
return cur
"""

# KEYS: leader. ARGV: holder, ttl ms. -> 1 held (taken or renewed), 0 someone else has it.
CLAIM_SCRIPT = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if cur then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: leader. ARGV: holder.
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: a switch's label hash. ARGV: label, trail id. Remove the entry only if it
# still names this trail (the label may already belong to another one).
UNINDEX_SCRIPT = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""

# KEYS: id counter, id index (same slot). ARGV: the highest id this client saw, count.
# INCRBY count, but never below an id already handed out (a Redis that lost its
# data). -> the last id of the block.
NEXT_ID_SCRIPT = """
local n = tonumber(ARGV[2])
local v = redis.call('INCRBY', KEYS[1], n)
local floor = tonumber(ARGV[1])
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if top[2] and tonumber(top[2]) > floor then floor = tonumber(top[2]) end
if v - n < floor then
  v = floor + n
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


def load_key(node: str) -> str:
    """A host's latest load sample (JSON, expires with its TTL)."""
    return f"{PREFIX}:{{n:{node}}}:load"


COUNTER_KEY = f"{PREFIX}:{{meta}}:next_id"
IDS_KEY = f"{PREFIX}:{{meta}}:trails"  # sorted set of trail ids (score = id)
NODES_KEY = f"{PREFIX}:{{meta}}:nodes"  # sorted set of node names (score = expiry, ms)
LEADER_KEY = f"{PREFIX}:{{meta}}:leader"  # the leader's name, with the lease as TTL
GENERATION_KEY = f"{PREFIX}:{{meta}}:generation"  # OpenFlow role generation id
HOSTS_KEY = f"{PREFIX}:{{meta}}:hosts"  # hash: field MAC -> the host's JSON record
CHANNEL = f"{PREFIX}:changes"  # pub/sub channel of change notifications


def _retry() -> Retry:
    """One quick retry: enough to reconnect a pooled socket after a Redis restart."""
    return Retry(ExponentialBackoff(cap=0.1, base=0.02), 1)


class _RedisBase(TrailStore):
    """The store logic shared by a single Redis and a Redis Cluster."""

    address: str
    _client: Any
    scripts_in_pipeline = False  # a single server runs scripts inside a pipeline

    def __init__(self) -> None:
        self._last_id = 0
        self.origin = new_origin()
        self._listeners = Listeners()
        self._subscriber: threading.Thread | None = None
        self._closed = threading.Event()

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
        self._closed.set()
        with contextlib.suppress(Exception):
            self._client.close()

    # TrailStore -------------------------------------------------------------
    def next_id(self) -> int:
        return self.reserve_ids(1)[0]

    def reserve_ids(self, count: int) -> list[int]:
        if count < 1:
            raise ValueError(f"reserve_ids: count must be >= 1, got {count}")
        with self._errors():
            last = int(self._eval(NEXT_ID_SCRIPT, [COUNTER_KEY, IDS_KEY], self._last_id, count))
        self._last_id = max(self._last_id, last)
        return list(range(last - count + 1, last + 1))

    def ping(self) -> None:
        with self._errors():
            self._client.ping()

    def put(self, trail: Trail) -> None:
        key = trail_key(trail.id)
        deadline = lease_deadline(trail, self.lease_grace)
        expire_at = 0 if deadline is None else max(1, int(deadline * 1000))
        note = json.dumps(put_note(trail, self.origin), separators=(",", ":"))
        with self._errors():
            code, detail = self._eval(PUT_SCRIPT, [key, tombstone_key(trail.id)],
                                      trail.version, encode_trail(trail), expire_at, note,
                                      CHANNEL)
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

    def delete(self, trail_id: int, reason: str = "") -> Trail | None:
        key = trail_key(trail_id)
        with self._errors():
            raw = self._eval(DELETE_SCRIPT, [key, tombstone_key(trail_id)], TOMBSTONE_TTL,
                             trail_id, reason, self.origin, CHANNEL)
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
            trails, expired = [], []
            for start in range(0, len(ids), FETCH_CHUNK):
                chunk = ids[start:start + FETCH_CHUNK]
                keys = [trail_key(i) for i in chunk]
                for trail_id, key, raw in zip(chunk, keys, self._mget(keys), strict=True):
                    if raw is None:
                        expired.append(trail_id)  # its lease ran out (or deleted meanwhile)
                        continue
                    try:
                        trails.append(self._decode(raw, key, trail_id))
                    except StoreError as exc:
                        LOG.error("skipping a malformed trail: %s", exc)
            if expired:  # keep the id set from growing with expired trails
                self._client.zrem(IDS_KEY, *[str(i) for i in expired])
        return trails

    def rebuild_index(self, trails: list[Trail] | None = None) -> int:
        if trails is None:
            trails = self.all()
        with self._errors():
            pipe = self._client.pipeline(transaction=False)
            for trail in trails:
                for dpid, label in sorted(_entries(trail)):
                    pipe.hset(labels_key(dpid), str(label), str(trail.id))
            pipe.execute()
        return len(trails)

    # learned hosts ----------------------------------------------------------
    def put_host(self, record: HostRecord) -> None:
        text = encode_host(record)
        with self._errors():
            self._client.hset(HOSTS_KEY, record.mac, text)

    def hosts(self) -> list[HostRecord]:
        with self._errors():
            raw = self._client.hgetall(HOSTS_KEY)
        out = []
        for field, text in raw.items():
            mac = field.decode(errors="replace") if isinstance(field, bytes) else str(field)
            key = f"{HOSTS_KEY}[{mac if len(mac) <= 40 else mac[:37] + '...'}]"
            try:
                record = decode_host(text, key)
                if record.mac != mac:
                    raise StoreError(f"store record {key!r}: field 'mac': {record.mac} does "
                                     "not match the hash field")
            except StoreError as exc:
                LOG.error("skipping a malformed host record: %s", exc)
                continue
            out.append(record)
        return sorted(out, key=lambda h: h.mac)

    def delete_host(self, mac: str) -> None:
        check_mac(mac)
        with self._errors():
            self._client.hdel(HOSTS_KEY, mac)

    # host load --------------------------------------------------------------
    def put_node_load(self, node: str, sample: Mapping[str, Any], ttl: float) -> None:
        check_node_name(node)
        if not ttl > 0:
            raise StoreError(f"node {node!r}: ttl must be > 0, got {ttl!r}")
        text = _dump(sample, node)
        until = int((time.time() + ttl) * 1000)
        with self._errors():
            self._client.set(load_key(node), text, px=max(1, int(ttl * 1000)))
            self._client.zadd(NODES_KEY, {node: until})

    def node_loads(self) -> dict[str, dict[str, Any]]:
        with self._errors():
            self._client.zremrangebyscore(NODES_KEY, "-inf", int(time.time() * 1000))
            nodes = sorted(n.decode() if isinstance(n, bytes) else n
                           for n in self._client.zrange(NODES_KEY, 0, -1))
            raws = self._mget([load_key(n) for n in nodes]) if nodes else []
        out: dict[str, dict[str, Any]] = {}
        for node, raw in zip(nodes, raws, strict=True):
            if raw is None:
                continue
            try:
                sample = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                sample = None
            if not isinstance(sample, dict):
                LOG.warning("skipping a malformed load sample of node %s", node)
                continue
            out[node] = sample
        return out

    # change notifications ---------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        remove = self._listeners.add(listener)
        if self._subscriber is None:
            ready = threading.Event()
            self._subscriber = threading.Thread(target=self._listen, args=(ready,),
                                                name="sdnscent-store-changes", daemon=True)
            self._subscriber.start()
            ready.wait(2.0)
        return remove

    def _listen(self, ready: threading.Event) -> None:
        """Deliver pub/sub messages to listeners; resubscribe after a Redis outage."""
        down = False
        while not self._closed.is_set():
            pubsub = None
            try:
                pubsub = self._client.pubsub()
                pubsub.subscribe(CHANNEL)
                if down:
                    LOG.warning("store %s: change notifications resumed", self.address)
                    down = False
                ready.set()
                while not self._closed.is_set():
                    msg = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                    if msg is not None and msg.get("type") == "message":
                        self._deliver(msg["data"])
            except (RedisError, RedisClusterException, OSError, ValueError) as exc:
                if self._closed.is_set():
                    return  # the client was closed under us
                if not down:
                    LOG.warning("store %s: change notifications lost (%s); retrying",
                                self.address, exc)
                    down = True
                ready.set()
                self._closed.wait(0.5)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()

    def _deliver(self, data: bytes | str) -> None:
        try:
            note = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            note = None
        if not isinstance(note, dict) or note.get("op") not in ("put", "delete") \
                or not isinstance(note.get("id"), int):
            LOG.warning("store %s: ignored a malformed change notification %.80r",
                        self.address, data)
            return
        self._listeners.emit(note)

    # leadership -------------------------------------------------------------
    def claim_leader(self, holder: str, ttl: float) -> bool:
        with self._errors():
            return bool(int(self._eval(CLAIM_SCRIPT, [LEADER_KEY], holder,
                                       max(1, int(ttl * 1000)))))

    def release_leader(self, holder: str) -> None:
        with self._errors():
            self._eval(RELEASE_SCRIPT, [LEADER_KEY], holder)

    def leader(self) -> str | None:
        with self._errors():
            value = self._client.get(LEADER_KEY)
        return None if value is None else value.decode(errors="replace")

    def next_generation(self) -> int:
        with self._errors():
            return int(self._client.incr(GENERATION_KEY))

    def generation(self) -> int:
        with self._errors():
            return int(self._client.get(GENERATION_KEY) or 0)

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
        if not stale and (not fresh or fresh == _entries(old)):
            return
        pipe = self._client.pipeline(transaction=False)  # one round trip for all entries
        if fresh != _entries(old):
            for dpid, label in sorted(fresh):
                pipe.hset(labels_key(dpid), str(label), str(new.id))  # type: ignore[union-attr]
        for dpid, label in sorted(stale):
            if self.scripts_in_pipeline:
                pipe.eval(UNINDEX_SCRIPT, 1, labels_key(dpid), str(label), str(old.id))  # type: ignore[union-attr]
            else:  # a cluster pipeline does not carry scripts
                self._eval(UNINDEX_SCRIPT, [labels_key(dpid)], str(label), str(old.id))  # type: ignore[union-attr]
        pipe.execute()


def _entries(trail: Trail | None) -> set[tuple[int, int]]:
    return set() if trail is None else {(h.dpid, trail.label) for h in trail.hops}


class RedisStore(_RedisBase):
    """Trails in one Redis server (redis://host:port/db or redis+unix:///path.sock)."""

    scripts_in_pipeline = True

    def __init__(self, host: str | None, port: int | None = 6379, db: int = 0,
                 username: str | None = None, password: str | None = None,
                 unix_socket: str | None = None) -> None:
        super().__init__()
        where = unix_socket or f"{host}:{port}"
        self.address = f"redis+unix://{unix_socket}" if unix_socket \
            else f"redis://{host}:{port}/{db}"
        self._client = redis.Redis(
            host=host or "localhost", port=port or 6379, db=db, username=username,
            password=password, unix_socket_path=unix_socket,
            socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=CONNECT_TIMEOUT,
            retry=_retry(), client_name="sdnscent")
        try:
            with self._errors():
                self._client.ping()
        except StoreError as exc:
            self.close()
            raise StoreError(f"cannot reach Redis at {where}: {exc.__cause__}") from None


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
