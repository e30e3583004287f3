"""Where trails live: the TrailStore interface, its in-memory backend and the
versioned record format that the Redis backends (sdnscent.redisstore) store.

The controller keeps no trail state of its own beyond indexes it can rebuild:
trails are read from and written to a store (see docs/store.rst). Learned hosts
are kept there too (HostRecord), so a restarted controller knows them again.
"""

from __future__ import annotations

import abc
import ipaddress
import json
import logging
import math
import os
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from .trails import Hop, Trail, TrailState

LOG = logging.getLogger(__name__)

RECORD_VERSION = 1  # the "v" of a stored trail record
HOST_RECORD_VERSION = 1  # the "v" of a stored host record
MAX_DPID = 2**64 - 1  # OpenFlow datapath ids are 64-bit
MAX_PORT = 0xFFFFFF00  # OFPP_MAX: the highest physical port number (OpenFlow 1.3)
TOMBSTONES = 65536  # deleted trail versions a MemoryStore remembers
# A trail with a lease stays in the store until `expires` plus this grace: the
# controller's sweep removes it (and its flows) first; the store's own expiry
# is the backstop when no controller is left to sweep.
LEASE_GRACE = 30.0

Listener = Callable[[dict[str, Any]], None]


class StoreError(RuntimeError):
    """The store refused or failed an operation."""


class StaleWrite(StoreError):
    """A write carried an older version than the stored (or deleted) trail."""


@dataclass(frozen=True)
class HostRecord:
    """A learned host as the store keeps it: where it was last seen, and when.

    `mac` is lowercase colon-separated hex, `ip` an IPv4 or IPv6 address in
    canonical text, `seen` wall-clock seconds (encode_host checks all of it).
    """

    mac: str
    ip: str
    dpid: int
    port: int
    seen: float


class TrailStore(abc.ABC):
    """Narrow storage interface for trails, host load and controller leadership.

    Every put and delete is announced to subscribers (see `subscribe`) as a
    change notification naming this store object's `origin`.
    """

    origin: str = ""  # set per store object: who wrote a change
    lease_grace: float = LEASE_GRACE

    @abc.abstractmethod
    def next_id(self) -> int:
        """A fresh trail id, unique within this store."""

    @abc.abstractmethod
    def put(self, trail: Trail) -> None:
        """Store `trail`; raise StaleWrite if a newer version is stored or was deleted.

        A put of the stored version itself is allowed (an idempotent re-write).
        """

    @abc.abstractmethod
    def get(self, trail_id: int) -> Trail | None:
        """The trail with `trail_id`, or None."""

    @abc.abstractmethod
    def delete(self, trail_id: int, reason: str = "") -> Trail | None:
        """Remove a trail; return what was stored. `reason` goes into the notification."""

    @abc.abstractmethod
    def all(self) -> list[Trail]:
        """Every stored trail, by id."""

    @abc.abstractmethod
    def find_by_label(self, dpid: int, label: int) -> Trail | None:
        """The trail that has a hop at switch `dpid` under `label`, or None (the miss path)."""

    def reserve_ids(self, count: int) -> list[int]:
        """`count` fresh trail ids at once (a cache hands them out during an outage)."""
        return [self.next_id() for _ in range(count)]

    def ping(self) -> None:
        """Raise StoreError if the store cannot be reached."""
        return None

    def rebuild_index(self, trails: list[Trail] | None = None) -> int:
        """Re-derive the (switch, label) index from the trail records; return the trail count.

        `trails`: the records as the caller already holds them (saves reading them).
        """
        return len(self.all() if trails is None else trails)

    # learned hosts ------------------------------------------------------------
    @abc.abstractmethod
    def put_host(self, record: HostRecord) -> None:
        """Store `record`, replacing the host's previous one; StoreError if it is invalid."""

    @abc.abstractmethod
    def hosts(self) -> list[HostRecord]:
        """Every stored host, by MAC; a record that does not decode is logged and skipped."""

    @abc.abstractmethod
    def delete_host(self, mac: str) -> None:
        """Forget host `mac` (nothing happens if it is not stored)."""

    # host load (sdnscent-agent) ---------------------------------------------
    @abc.abstractmethod
    def put_node_load(self, node: str, sample: Mapping[str, Any], ttl: float) -> None:
        """Store a host's load sample; it disappears after `ttl` seconds."""

    @abc.abstractmethod
    def node_loads(self) -> dict[str, dict[str, Any]]:
        """The unexpired load sample of every node, by node name."""

    # change notifications -----------------------------------------------------
    @abc.abstractmethod
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every change notification (from any writer of this store).

        Notifications: {"op": "put", "id", "version", "label", "state", "expires",
        "origin"} and {"op": "delete", "id", "version", "reason", "origin"}. The
        listener runs on a store thread and must not block. Returns an unsubscribe.
        """

    # leadership among controllers sharing the store ---------------------------
    @abc.abstractmethod
    def claim_leader(self, holder: str, ttl: float) -> bool:
        """Take or renew the leader lease for `ttl` seconds; False if another holds it."""

    @abc.abstractmethod
    def release_leader(self, holder: str) -> None:
        """Give the lease up if `holder` has it."""

    @abc.abstractmethod
    def leader(self) -> str | None:
        """Who holds the leader lease now."""

    @abc.abstractmethod
    def next_generation(self) -> int:
        """A new, larger OpenFlow role generation id (for a new master)."""

    @abc.abstractmethod
    def generation(self) -> int:
        """The current generation id (0 before any master)."""

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        return None


def new_origin() -> str:
    """A short random name for one store object's writes."""
    return uuid.uuid4().hex[:12]


def put_note(trail: Trail, origin: str) -> dict[str, Any]:
    """The change notification of a put."""
    return {"op": "put", "id": trail.id, "version": trail.version, "label": trail.label,
            "state": trail.state.value, "expires": trail.expires, "origin": origin}


def delete_note(trail: Trail, reason: str, origin: str) -> dict[str, Any]:
    """The change notification of a delete."""
    return {"op": "delete", "id": trail.id, "version": trail.version, "label": trail.label,
            "reason": reason, "origin": origin}


def lease_deadline(trail: Trail, grace: float) -> float | None:
    """When the store may drop `trail` by itself (None: never)."""
    return None if trail.expires is None else trail.expires + grace


class Listeners:
    """In-process subscribers; a failing listener is logged, not propagated."""

    def __init__(self) -> None:
        self._items: list[Listener] = []
        self._lock = threading.Lock()

    def add(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._items.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._items:
                    self._items.remove(listener)
        return remove

    def __bool__(self) -> bool:
        return bool(self._items)

    def emit(self, note: dict[str, Any]) -> None:
        with self._lock:
            items = list(self._items)
        for listener in items:
            try:
                listener(note)
            except Exception:  # noqa: BLE001 - one bad listener must not stop the others
                LOG.exception("change listener failed on %s", note)


class MemoryStore(TrailStore):
    """The embedded default: dicts behind a lock; `clock` decides lease expiry."""

    def __init__(self, clock: Callable[[], float] = time.time,
                 lease_grace: float = LEASE_GRACE) -> None:
        self._trails: dict[int, Trail] = {}
        self._by_label: dict[tuple[int, int], int] = {}  # (dpid, label) -> trail id
        self._gone: OrderedDict[int, int] = OrderedDict()  # deleted id -> its version
        self._next = 1
        self._lock = threading.Lock()
        self._loads: dict[str, tuple[float, dict[str, Any]]] = {}
        self._hosts: dict[str, HostRecord] = {}
        self._listeners = Listeners()
        self._leader: tuple[str, float] | None = None
        self._generation = 0
        self.clock = clock
        self.lease_grace = lease_grace
        self.origin = new_origin()
        self._scanned = -math.inf
        self._top = 0  # the highest trail id ever stored

    def next_id(self) -> int:
        with self._lock:
            value = max(self._next, self._top + 1)
            self._next = value + 1
            return value

    def put(self, trail: Trail) -> None:
        with self._lock:
            self._put(trail)
        if self._listeners:
            self._listeners.emit(put_note(trail, self.origin))

    def _put(self, trail: Trail) -> None:
        self._expire()
        current = self._trails.get(trail.id)
        if current is not None and not self._alive(current, self.clock()):
            del self._trails[current.id]
            self._unindex(current)
            current = None
        if current and current.version > trail.version:
            raise StaleWrite(f"trail {trail.id}: version {trail.version} is older "
                             f"than stored {current.version}")
        gone = self._gone.get(trail.id)
        if current is None and gone is not None and gone >= trail.version:
            raise StaleWrite(f"trail {trail.id}: version {trail.version} was deleted "
                             f"at version {gone}")
        if current is not None:
            self._unindex(current)
        self._trails[trail.id] = trail
        self._top = max(self._top, trail.id)
        for key in _label_keys(trail):
            self._by_label[key] = trail.id

    def get(self, trail_id: int) -> Trail | None:
        with self._lock:
            trail = self._trails.get(trail_id)
            return trail if self._alive(trail, self.clock()) else None

    def delete(self, trail_id: int, reason: str = "") -> Trail | None:
        with self._lock:
            self._expire()
            trail = self._trails.pop(trail_id, None)
            if trail is not None:
                self._unindex(trail)
                self._gone[trail_id] = trail.version
                while len(self._gone) > TOMBSTONES:
                    self._gone.popitem(last=False)
        if trail is not None and self._listeners:
            self._listeners.emit(delete_note(trail, reason, self.origin))
        return trail

    def all(self) -> list[Trail]:
        with self._lock:
            self._scanned = -math.inf
            self._expire()
            return [self._trails[k] for k in sorted(self._trails)]

    def find_by_label(self, dpid: int, label: int) -> Trail | None:
        with self._lock:
            trail_id = self._by_label.get((dpid, label))
            trail = None if trail_id is None else self._trails.get(trail_id)
            return trail if self._alive(trail, self.clock()) else None

    def _expire(self) -> None:
        """Drop trails whose lease plus grace has passed (as Redis' key expiry does).

        A full scan runs at most once a second; get and find_by_label check
        the one trail they return.
        """
        now = self.clock()
        if now - self._scanned < 1.0:
            return
        self._scanned = now
        for trail in [t for t in self._trails.values() if not self._alive(t, now)]:
            del self._trails[trail.id]
            self._unindex(trail)

    def _alive(self, trail: Trail | None, now: float) -> bool:
        return trail is not None and (trail.expires is None
                                      or trail.expires + self.lease_grace > now)

    def put_host(self, record: HostRecord) -> None:
        record = decode_host(encode_host(record), f"host {record.mac!r}")  # checked, as stored
        with self._lock:
            self._hosts[record.mac] = record

    def hosts(self) -> list[HostRecord]:
        with self._lock:
            return [self._hosts[mac] for mac in sorted(self._hosts)]

    def delete_host(self, mac: str) -> None:
        check_mac(mac)
        with self._lock:
            self._hosts.pop(mac, None)

    def put_node_load(self, node: str, sample: Mapping[str, Any], ttl: float) -> None:
        check_node_name(node)
        if not ttl > 0:
            raise StoreError(f"node {node!r}: ttl must be > 0, got {ttl!r}")
        with self._lock:
            self._loads[node] = (self.clock() + ttl, json.loads(_dump(sample, node)))

    def node_loads(self) -> dict[str, dict[str, Any]]:
        now = self.clock()
        with self._lock:
            for node in [n for n, (until, _) in self._loads.items() if until <= now]:
                del self._loads[node]
            return {n: json.loads(json.dumps(s)) for n, (_, s) in sorted(self._loads.items())}

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self._listeners.add(listener)

    def claim_leader(self, holder: str, ttl: float) -> bool:
        now = self.clock()
        with self._lock:
            if self._leader is not None and self._leader[0] != holder \
                    and self._leader[1] > now:
                return False
            self._leader = (holder, now + ttl)
            return True

    def release_leader(self, holder: str) -> None:
        with self._lock:
            if self._leader is not None and self._leader[0] == holder:
                self._leader = None

    def leader(self) -> str | None:
        with self._lock:
            if self._leader is None or self._leader[1] <= self.clock():
                return None
            return self._leader[0]

    def next_generation(self) -> int:
        with self._lock:
            self._generation += 1
            return self._generation

    def generation(self) -> int:
        return self._generation

    def _unindex(self, trail: Trail) -> None:
        for key in _label_keys(trail):
            if self._by_label.get(key) == trail.id:
                del self._by_label[key]


def check_node_name(node: str) -> None:
    """StoreError unless `node` is a usable node name (printable, no braces, <= 128)."""
    if not isinstance(node, str) or not node or len(node) > 128 \
            or not node.isprintable() or any(c in node for c in "{} "):
        raise StoreError(f"node name {node!r}: expected 1-128 printable characters "
                         "without spaces or braces")


def _dump(sample: Mapping[str, Any], node: str) -> str:
    """A load sample as JSON; StoreError if it is not a JSON object of finite values."""
    if not isinstance(sample, Mapping):
        raise StoreError(f"node {node!r}: a load sample is an object, got {_kind(sample)}")
    try:
        return json.dumps(dict(sample), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"node {node!r}: load sample is not plain JSON: {exc}") from None


def _label_keys(trail: Trail) -> set[tuple[int, int]]:
    """The (dpid, label) pairs under which the miss path finds `trail`."""
    return {(hop.dpid, trail.label) for hop in trail.hops}


# The record format ----------------------------------------------------------

def trail_to_record(trail: Trail) -> dict[str, Any]:
    """The stored form of `trail`: a JSON-ready dict with "v": RECORD_VERSION.

    Every field of Trail and Hop is written (tests/test_store.py fails when a new
    field is missing here).
    """
    return {
        "v": RECORD_VERSION,
        "id": trail.id, "label": trail.label, "version": trail.version,
        "src_mac": trail.src_mac, "dst_mac": trail.dst_mac,
        "src_ip": trail.src_ip, "dst_ip": trail.dst_ip,
        "hops": [{"dpid": h.dpid, "in_port": h.in_port, "out_port": h.out_port, "via": h.via}
                 for h in trail.hops],
        "app": trail.app, "cls": trail.cls, "state": trail.state.value,
        "created": trail.created, "expires": trail.expires, "setup_ms": trail.setup_ms,
        "packets": trail.packets, "bytes": trail.bytes, "extra": dict(trail.extra),
        "match": [[[name, value] for name, value in alt] for alt in trail.match],
        "priority": trail.priority,
        "rewrite": [[name, value] for name, value in trail.rewrite],
        "grouped": trail.grouped, "lease": trail.lease, "rate_cap": trail.rate_cap,
    }


def encode_trail(trail: Trail) -> str:
    """`trail` as a compact JSON record."""
    return json.dumps(trail_to_record(trail), separators=(",", ":"), allow_nan=False)


def decode_trail(text: str | bytes, key: str) -> Trail:
    """The Trail in the JSON record `text` read from `key`; StoreError if malformed."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"store record {key!r}: not JSON: {exc}") from None
    return trail_from_record(data, key)


class _Reader:
    """Typed access to one record's fields; errors name the key and field."""

    def __init__(self, key: str) -> None:
        self.key = key

    def fail(self, path: str, problem: str) -> StoreError:
        return StoreError(f"store record {self.key!r}: field {path!r}: {problem}")

    def obj(self, data: Any, path: str, required: set[str], optional: set[str]) -> dict:
        if not isinstance(data, dict):
            raise self.fail(path or "(record)", f"expected an object, got {_kind(data)}")
        for name in sorted(required - data.keys()):
            raise self.fail(_join(path, name), "missing")
        for name in sorted(data.keys() - required - optional):
            raise self.fail(_join(path, name), "unknown field")
        return data

    def integer(self, data: dict, name: str, path: str = "", low: int | None = None,
                high: int | None = None) -> int:
        value = data[name]
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(_join(path, name), f"expected an integer, got {_kind(value)}")
        if low is not None and value < low:
            raise self.fail(_join(path, name), f"must be >= {low}, got {value}")
        if high is not None and value > high:
            raise self.fail(_join(path, name), f"must be <= {high}, got {value}")
        return value

    def text(self, data: dict, name: str, path: str = "") -> str:
        value = data[name]
        if not isinstance(value, str):
            raise self.fail(_join(path, name), f"expected a string, got {_kind(value)}")
        return value

    def num(self, data: dict, name: str) -> float:
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            raise self.fail(name, f"expected a number, got {_kind(value)}")
        return float(value)

    def maybe(self, data: dict, name: str, read: Callable[..., Any], *args: Any) -> Any:
        return None if data.get(name) is None else read(data, name, *args)

    def items(self, data: Any, path: str) -> list:
        if not isinstance(data, list):
            raise self.fail(path, f"expected a list, got {_kind(data)}")
        return data

    def pairs(self, data: Any, path: str, value_type: type) -> tuple[tuple[str, Any], ...]:
        out = []
        for i, pair in enumerate(self.items(data, path)):
            where = f"{path}[{i}]"
            if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str):
                raise self.fail(where, f"expected [name, value], got {_kind(pair)}")
            value = pair[1]
            if not isinstance(value, value_type) or isinstance(value, bool):
                raise self.fail(where, f"value must be {value_type.__name__}, "
                                       f"got {_kind(value)}")
            out.append((pair[0], value))
        return tuple(out)


_FIELDS = {"v", "id", "label", "version", "src_mac", "dst_mac", "src_ip", "dst_ip", "hops",
           "app", "cls", "state", "created", "expires", "setup_ms", "packets", "bytes",
           "extra", "match", "priority", "rewrite", "grouped"}
_HOP_FIELDS = {"dpid", "in_port", "out_port", "via"}


def trail_from_record(data: Any, key: str) -> Trail:
    """The Trail in a decoded record; StoreError naming `key` and the field if malformed."""
    r = _Reader(key)
    if isinstance(data, dict) and "v" in data and data["v"] != RECORD_VERSION:
        raise r.fail("v", f"record format {data['v']!r} is not supported "
                          f"(this version reads {RECORD_VERSION})")
    rec = r.obj(data, "", _FIELDS, {"lease", "rate_cap"})
    hops = []
    for i, raw in enumerate(r.items(rec["hops"], "hops")):
        path = f"hops[{i}]"
        hop = r.obj(raw, path, _HOP_FIELDS, set())
        hops.append(Hop(r.integer(hop, "dpid", path, 0), r.integer(hop, "in_port", path, 0),
                        r.integer(hop, "out_port", path, 0), r.maybe(hop, "via", r.text, path)))
    if not hops:
        raise r.fail("hops", "a trail has at least one hop")
    try:
        state = TrailState(rec["state"])
    except ValueError:
        raise r.fail("state", f"unknown state {rec['state']!r}") from None
    extra = rec["extra"]
    if not isinstance(extra, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in extra.items()):
        raise r.fail("extra", "expected an object of strings")
    match = tuple(r.pairs(alt, f"match[{i}]", int)
                  for i, alt in enumerate(r.items(rec["match"], "match")))
    if not isinstance(rec["grouped"], bool):
        raise r.fail("grouped", f"expected true or false, got {_kind(rec['grouped'])}")
    return Trail(
        id=r.integer(rec, "id", low=1), label=r.integer(rec, "label", low=0),
        src_mac=r.text(rec, "src_mac"), dst_mac=r.text(rec, "dst_mac"),
        src_ip=r.text(rec, "src_ip"), dst_ip=r.text(rec, "dst_ip"), hops=tuple(hops),
        app=r.text(rec, "app"), cls=r.text(rec, "cls"), state=state,
        created=r.num(rec, "created"), expires=r.maybe(rec, "expires", r.num),
        version=r.integer(rec, "version", low=0), setup_ms=r.maybe(rec, "setup_ms", r.num),
        packets=r.integer(rec, "packets", low=0), bytes=r.integer(rec, "bytes", low=0),
        extra=dict(extra), match=match, priority=r.maybe(rec, "priority", r.integer),
        rewrite=r.pairs(rec["rewrite"], "rewrite", str), grouped=rec["grouped"],
        lease=r.integer(rec, "lease", low=0) if "lease" in rec else 0,
        rate_cap=r.integer(rec, "rate_cap", low=0) if "rate_cap" in rec else 0)


# Host records --------------------------------------------------------------

_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
_HOST_FIELDS = {"v", "mac", "ip", "dpid", "port", "seen"}


def check_mac(mac: str) -> None:
    """StoreError unless `mac` is a MAC address in lowercase colon-separated hex."""
    if not isinstance(mac, str) or not _MAC.fullmatch(mac):
        raise StoreError(f"host {_kind(mac)}: expected a MAC address like "
                         "0a:1b:2c:3d:4e:5f (lowercase)")


def host_to_record(record: HostRecord) -> dict[str, Any]:
    """The stored form of `record`: a JSON-ready dict with "v": HOST_RECORD_VERSION."""
    return {"v": HOST_RECORD_VERSION, "mac": record.mac, "ip": record.ip,
            "dpid": record.dpid, "port": record.port, "seen": record.seen}


def encode_host(record: HostRecord) -> str:
    """`record` as compact JSON; StoreError naming the field if it is not a valid record."""
    data = host_to_record(record)
    host_from_record(data, f"host {_kind(record.mac)}")
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


def decode_host(text: str | bytes, key: str) -> HostRecord:
    """The HostRecord in the JSON record `text` read from `key`; StoreError if malformed."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"store record {key!r}: not JSON: {exc}") from None
    return host_from_record(data, key)


def host_from_record(data: Any, key: str) -> HostRecord:
    """The HostRecord in a decoded record; StoreError naming `key` and the field if malformed.

    The record may come from any client of a shared store: every field is checked.
    """
    r = _Reader(key)
    if isinstance(data, dict) and "v" in data and data["v"] != HOST_RECORD_VERSION:
        raise r.fail("v", f"record format {_kind(data['v'])} is not supported "
                          f"(this version reads {HOST_RECORD_VERSION})")
    rec = r.obj(data, "", _HOST_FIELDS, set())
    mac = r.text(rec, "mac")
    if not _MAC.fullmatch(mac):
        raise r.fail("mac", f"expected a MAC address like 0a:1b:2c:3d:4e:5f (lowercase), "
                            f"got {_kind(mac)}")
    ip = r.text(rec, "ip")
    try:
        address = str(ipaddress.ip_address(ip))
    except ValueError:
        raise r.fail("ip", f"expected an IPv4 or IPv6 address, got {_kind(ip)}") from None
    if address != ip:
        raise r.fail("ip", f"{_kind(ip)} is not in canonical form ({address})")
    seen = r.num(rec, "seen")
    if seen < 0:
        raise r.fail("seen", f"must be >= 0, got {seen}")
    return HostRecord(mac, ip, r.integer(rec, "dpid", low=0, high=MAX_DPID),
                      r.integer(rec, "port", low=1, high=MAX_PORT), seen)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _kind(value: Any) -> str:
    text = json.dumps(value) if value is None or isinstance(value, bool | int | float | str) \
        else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


# Opening a store from a URL -------------------------------------------------

SCHEMES = ("memory://, redis://host:port/db, redis+unix:///path/to/redis.sock or "
           "redis+cluster://host:port")


def redact(url: str) -> str:
    """`url` with any password replaced by ***, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{netloc[1]}").geturl()


def check_shared_url(url: str) -> None:
    """StoreError unless `url` is a valid store other processes can reach (not memory://)."""
    scheme, _ = parse_url(url)
    if scheme == "memory":
        raise StoreError(f"store {url!r} lives in one process; use redis://, redis+unix:// "
                         "or redis+cluster://")


def store_password(username: str | None) -> str | None:
    """A Redis user's password from $SDNSCENT_REDIS_PASSWORD_FILE or $SDNSCENT_REDIS_PASSWORD
    (for a URL with a user and no password: secrets stay off command lines)."""
    path = os.environ.get("SDNSCENT_REDIS_PASSWORD_FILE")
    if username and path:
        try:
            return Path(path).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise StoreError(f"SDNSCENT_REDIS_PASSWORD_FILE {path}: {exc.strerror}") from None
    return os.environ.get("SDNSCENT_REDIS_PASSWORD") if username else None


def parse_url(url: str) -> tuple[str, dict[str, Any]]:
    """(scheme, connection options) of a store URL; StoreError saying what is wrong.

    A user without a password (redis://agent-web1@host) takes it from the
    environment (store_password)."""
    shown = redact(url)
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise StoreError(f"store {shown!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme == "memory":
        if parts.netloc or parts.path or parts.query or parts.fragment:
            raise StoreError(f"store {shown!r}: memory:// takes no host, path or options")
        return scheme, {}
    if scheme == "rediss":
        raise StoreError(f"store {shown!r}: TLS (rediss://) is not supported yet")
    if scheme == "redis+unix":
        # A Unix socket reaches Redis from every network namespace (Mininet hosts).
        if parts.hostname or not parts.path.startswith("/") or parts.query or parts.fragment:
            raise StoreError(f"store {shown!r}: use redis+unix:///absolute/path/to/redis.sock")
        return scheme, {"host": None, "port": None, "db": 0, "unix_socket": parts.path,
                        "username": parts.username or None,
                        "password": parts.password or store_password(parts.username)}
    if scheme not in ("redis", "redis+cluster"):
        raise StoreError(f"store {shown!r}: unknown scheme {parts.scheme!r}; use {SCHEMES}")
    if not parts.hostname:
        raise StoreError(f"store {shown!r}: no host; use {scheme}://host:port")
    if parts.query or parts.fragment:
        raise StoreError(f"store {shown!r}: options ({parts.query or parts.fragment!r}) "
                         "are not supported")
    path = parts.path.strip("/")
    if scheme == "redis+cluster" and path not in ("", "0"):
        raise StoreError(f"store {shown!r}: Redis Cluster has only database 0, "
                         f"not {path!r}")
    if path and not (path.isascii() and path.isdigit()):
        raise StoreError(f"store {shown!r}: database {path!r} is not a number "
                         "(redis://host:port/db)")
    options = {"host": parts.hostname, "port": port or 6379,
               "username": parts.username or None,
               "password": parts.password or store_password(parts.username)}
    if scheme == "redis":
        options["db"] = int(path or 0)
    return scheme, options


def open_store(url: str) -> TrailStore:
    """A store for `url`: memory://, redis://host:port/db, redis+unix:///socket or
    redis+cluster://host:port.

    A Redis store is connected (and checked with a PING) before it is returned:
    StoreError names the address when it cannot be reached.
    """
    scheme, options = parse_url(url)
    if scheme == "memory":
        return MemoryStore()
    from .redisstore import RedisClusterStore, RedisStore  # redis is imported only here

    if scheme in ("redis", "redis+unix"):
        return RedisStore(**options)
    return RedisClusterStore(**options)
