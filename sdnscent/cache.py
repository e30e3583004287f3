"""An in-process copy of the trails in front of a shared store (Redis, Redis Cluster).

The controller's hot paths (a switch connecting, a policy change, the audit)
read every trail; from Redis that costs a round trip per 500 trails and a JSON
decode of each. CachedStore answers reads from memory and writes through to the
shared store. When the shared store fails, writes are kept locally (degraded
mode: installed trails keep forwarding, new trails are still made) and `sync()`
writes them back once the store answers again. Changes by other writers
(another controller) arrive as notifications and refresh the copy. Host
records are kept the same way, except that `hosts()` reads the shared store
while it answers (host changes are not notified).

Decisions and limits: docs/store.rst ("The controller's cache and Redis outages").
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from .store import (
    HostRecord,
    Listener,
    Listeners,
    StaleWrite,
    StoreError,
    TrailStore,
    check_mac,
    delete_note,
    encode_host,
    lease_deadline,
    put_note,
)
from .trails import Trail

LOG = logging.getLogger(__name__)

ID_BLOCK = 256  # trail ids reserved at a time: how many trails an outage can create


class CachedStore(TrailStore):
    """Write-through cache of every trail of `backing`, with write-back after outages.

    Not a second source of truth while the backing store is up: every write is
    versioned by the backing store first (StaleWrite passes through), and the
    copy is reloaded after an outage. Listeners see changes of *other* writers
    only (after the copy has taken them in).
    """

    def __init__(self, backing: TrailStore, id_block: int = ID_BLOCK,
                 clock: Callable[[], float] = time.time) -> None:
        self.backing = backing
        self.origin = backing.origin
        self.lease_grace = backing.lease_grace
        self.clock = clock
        self._id_block = id_block
        self._trails: dict[int, Trail] = {}
        self._by_label: dict[tuple[int, int], int] = {}
        self._dirty: set[int] = set()  # written while degraded
        self._deleted: dict[int, str] = {}  # deleted while degraded -> reason
        self._ids: deque[int] = deque()
        self._hosts: dict[str, HostRecord] = {}
        self._hosts_dirty: set[str] = set()  # hosts written while degraded
        self._hosts_gone: dict[str, float] = {}  # hosts deleted while degraded -> when
        self._lock = threading.RLock()
        self._listeners = Listeners()
        self.down_since: float | None = None  # wall time the backing store failed
        self.last_error = ""
        self.written_back = 0  # records written back after outages (for the API)
        self._unsubscribe = backing.subscribe(self._on_note)
        self.load()
        self._ids.extend(backing.reserve_ids(id_block))  # ready for an outage from the start

    # state ------------------------------------------------------------------
    @property
    def degraded(self) -> bool:
        """True while the backing store is unreachable (writes are held locally)."""
        return self.down_since is not None

    @property
    def pending(self) -> int:
        """Local writes and deletes waiting for the backing store."""
        with self._lock:
            return len(self._dirty) + len(self._deleted) + len(self._hosts_dirty) \
                + len(self._hosts_gone)

    def status(self) -> dict[str, Any]:
        """Health of the backing store as the API shows it."""
        return {"backing": getattr(self.backing, "address", type(self.backing).__name__),
                "healthy": not self.degraded, "down_since": self.down_since,
                "last_error": self.last_error, "pending_writes": self.pending,
                "written_back": self.written_back, "cached_trails": len(self._trails)}

    def load(self) -> int:
        """Replace the copy with the backing store's trails and hosts (local pending
        writes stay); return the trail count."""
        trails = self.backing.all()
        hosts = self.backing.hosts()
        with self._lock:
            self._take_hosts(hosts)
            keep = {i: self._trails[i] for i in self._dirty if i in self._trails}
            self._trails.clear()
            self._by_label.clear()
            for trail in trails:
                if trail.id not in self._deleted:
                    self._index(trail)
            for trail in keep.values():
                self._index(trail)
            return len(self._trails)

    def _degrade(self, exc: StoreError) -> None:
        if self.down_since is None:
            self.down_since = self.clock()
            LOG.warning("trail store unreachable, holding writes in memory: %s", exc)
        self.last_error = str(exc)

    # TrailStore: trails -------------------------------------------------------
    def next_id(self) -> int:
        with self._lock:
            if len(self._ids) < self._id_block // 4 and not self.degraded:
                try:
                    self._ids.extend(self.backing.reserve_ids(self._id_block))
                except StoreError as exc:
                    self._degrade(exc)
            if not self._ids:
                raise StoreError(f"trail store down since {self.down_since:.0f} and the "
                                 f"{self._id_block} trail ids reserved for an outage are "
                                 "used up")
            return self._ids.popleft()

    def put(self, trail: Trail) -> None:
        with self._lock:
            current = self._trails.get(trail.id)
            if current is not None and current.version > trail.version:
                raise StaleWrite(f"trail {trail.id}: version {trail.version} is older "
                                 f"than cached {current.version}")
            if not self.degraded:
                try:
                    self.backing.put(trail)
                except StaleWrite:
                    self._refresh(trail.id)
                    raise
                except StoreError as exc:
                    self._degrade(exc)
            if self.degraded:
                self._dirty.add(trail.id)
                self._deleted.pop(trail.id, None)
            if current is not None:
                self._unindex(current)
            self._index(trail)

    def get(self, trail_id: int) -> Trail | None:
        with self._lock:
            trail = self._trails.get(trail_id)
            if trail is None and not self.degraded and trail_id not in self._deleted:
                trail = self._fetch(trail_id)  # written by another controller just now
            return trail if self._alive(trail) else None

    def delete(self, trail_id: int, reason: str = "") -> Trail | None:
        with self._lock:
            trail = self._trails.pop(trail_id, None)
            if trail is not None:
                self._unindex(trail)
            self._dirty.discard(trail_id)
            if not self.degraded:
                try:
                    stored = self.backing.delete(trail_id, reason)
                    return trail or stored
                except StoreError as exc:
                    self._degrade(exc)
            self._deleted[trail_id] = reason
            return trail

    def all(self) -> list[Trail]:
        with self._lock:
            return [t for _, t in sorted(self._trails.items()) if self._alive(t)]

    def find_by_label(self, dpid: int, label: int) -> Trail | None:
        with self._lock:
            trail_id = self._by_label.get((dpid, label))
            if trail_id is not None:
                trail = self._trails.get(trail_id)
                return trail if self._alive(trail) else None
            if self.degraded:
                return None
        try:
            trail = self.backing.find_by_label(dpid, label)  # another controller's trail
        except StoreError as exc:
            self._degrade(exc)
            return None
        if trail is not None:
            with self._lock:
                self._take(trail)
        return trail

    def rebuild_index(self, trails: list[Trail] | None = None) -> int:
        return self.backing.rebuild_index(self.all() if trails is None else trails)

    def ping(self) -> None:
        self.backing.ping()

    def reserve_ids(self, count: int) -> list[int]:
        return self.backing.reserve_ids(count)

    # TrailStore: hosts --------------------------------------------------------
    def put_host(self, record: HostRecord) -> None:
        encode_host(record)  # an invalid record is the caller's error, not an outage
        with self._lock:
            if not self.degraded:
                try:
                    self.backing.put_host(record)
                except StoreError as exc:
                    self._degrade(exc)
            if self.degraded:
                self._hosts_dirty.add(record.mac)
                self._hosts_gone.pop(record.mac, None)
            self._hosts[record.mac] = record

    def hosts(self) -> list[HostRecord]:
        """The shared store's hosts while it answers (other writers' too), else the copy."""
        with self._lock:
            if not self.degraded:
                try:
                    self._take_hosts(self.backing.hosts())
                except StoreError as exc:
                    self._degrade(exc)
            return [self._hosts[mac] for mac in sorted(self._hosts)]

    def delete_host(self, mac: str) -> None:
        check_mac(mac)
        with self._lock:
            self._hosts.pop(mac, None)
            self._hosts_dirty.discard(mac)
            if not self.degraded:
                try:
                    self.backing.delete_host(mac)
                    return
                except StoreError as exc:
                    self._degrade(exc)
            self._hosts_gone[mac] = self.clock()

    # write-back -------------------------------------------------------------
    def sync(self) -> int:
        """If degraded and the backing store answers again: write back; return records written.

        Every cached trail the store lacks (or holds at an older version) is
        written, so a Redis that came back empty gets the trails again; a newer
        stored version wins (another controller wrote it). Deletes made during
        the outage are replayed. Host records likewise, `seen` deciding which
        is newer. Then the copy is reloaded (changes of other writers during
        the outage come in).
        """
        if not self.degraded:
            return 0
        try:
            self.backing.ping()
            stored = {t.id: t for t in self.backing.all()}
            written = 0
            with self._lock:
                for trail_id, reason in list(self._deleted.items()):
                    if trail_id in stored:
                        self.backing.delete(trail_id, reason)
                        written += 1
                    del self._deleted[trail_id]
                for trail in list(self._trails.values()):
                    theirs = stored.get(trail.id)
                    if theirs is not None and theirs.version >= trail.version:
                        continue
                    try:
                        self.backing.put(trail)
                        written += 1
                    except StaleWrite:
                        LOG.info("trail %d changed elsewhere during the outage; "
                                 "taking the stored version", trail.id)
                self._dirty.clear()  # (each put above indexed its trail)
                written += self._write_back_hosts()
                down = self.clock() - (self.down_since or self.clock())
                self.down_since = None
                self.written_back += written
                self.load()
        except StoreError as exc:
            self.last_error = str(exc)
            return 0
        LOG.warning("trail store back after %.1f s: %d records written back", down, written)
        return written

    # host load and leadership: straight to the backing store -----------------
    def put_node_load(self, node: str, sample: Mapping[str, Any], ttl: float) -> None:
        self.backing.put_node_load(node, sample, ttl)

    def node_loads(self) -> dict[str, dict[str, Any]]:
        return self.backing.node_loads()

    def claim_leader(self, holder: str, ttl: float) -> bool:
        return self.backing.claim_leader(holder, ttl)

    def release_leader(self, holder: str) -> None:
        self.backing.release_leader(holder)

    def leader(self) -> str | None:
        return self.backing.leader()

    def next_generation(self) -> int:
        return self.backing.next_generation()

    def generation(self) -> int:
        return self.backing.generation()

    # notifications ----------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self._listeners.add(listener)

    def _on_note(self, note: dict[str, Any]) -> None:
        """A change from the backing store's channel: take in other writers' changes."""
        if note.get("origin") == self.origin:
            return
        trail_id = note["id"]
        with self._lock:
            mine = self._trails.get(trail_id)
            if note["op"] == "delete":
                if mine is None or mine.version > int(note.get("version") or 0):
                    return
                self._unindex(mine)
                del self._trails[trail_id]
                self._dirty.discard(trail_id)
                out = delete_note(mine, str(note.get("reason", "")), str(note.get("origin")))
            else:
                if mine is not None and mine.version >= int(note.get("version") or 0):
                    return
                trail = self._fetch(trail_id)
                if trail is None:
                    return
                out = put_note(trail, str(note.get("origin")))
        self._listeners.emit(out)

    def close(self) -> None:
        self._unsubscribe()
        self.backing.close()

    # helpers ----------------------------------------------------------------
    def _write_back_hosts(self) -> int:
        """sync() for host records (under the lock); return the records written."""
        stored = {h.mac: h for h in self.backing.hosts()}
        written = 0
        for mac, when in list(self._hosts_gone.items()):
            theirs = stored.get(mac)
            if theirs is not None and theirs.seen <= when:  # not seen again since
                self.backing.delete_host(mac)
                written += 1
            del self._hosts_gone[mac]
        for record in list(self._hosts.values()):
            theirs = stored.get(record.mac)
            if theirs is None or (theirs != record and theirs.seen <= record.seen):
                self.backing.put_host(record)
                written += 1
        self._hosts_dirty.clear()
        return written

    def _take_hosts(self, records: list[HostRecord]) -> None:
        """Replace the host copy with `records`, keeping local pending writes and deletes."""
        keep = {mac: self._hosts[mac] for mac in self._hosts_dirty if mac in self._hosts}
        self._hosts = {h.mac: h for h in records if h.mac not in self._hosts_gone}
        self._hosts.update(keep)

    def _fetch(self, trail_id: int) -> Trail | None:
        try:
            trail = self.backing.get(trail_id)
        except StoreError as exc:
            self._degrade(exc)
            return None
        if trail is not None:
            self._take(trail)
        return trail

    def _refresh(self, trail_id: int) -> None:
        """After a StaleWrite: replace the copy with the stored version."""
        try:
            trail = self.backing.get(trail_id)
        except StoreError:
            return
        if trail is not None:
            self._take(trail)

    def _take(self, trail: Trail) -> None:
        current = self._trails.get(trail.id)
        if current is not None:
            if current.version > trail.version:
                return
            self._unindex(current)
        self._index(trail)

    def _index(self, trail: Trail) -> None:
        self._trails[trail.id] = trail
        for hop in trail.hops:
            self._by_label[(hop.dpid, trail.label)] = trail.id

    def _unindex(self, trail: Trail) -> None:
        for hop in trail.hops:
            if self._by_label.get((hop.dpid, trail.label)) == trail.id:
                del self._by_label[(hop.dpid, trail.label)]

    def _alive(self, trail: Trail | None) -> bool:
        if trail is None:
            return False
        deadline = lease_deadline(trail, self.lease_grace)
        return deadline is None or deadline > self.clock()
