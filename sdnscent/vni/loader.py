"""Load the tagger on a host interface and keep its map in sync with the trail store.

`Tagger` attaches tagger.o at the interface's clsact egress hook with tc
(iproute2's loader; no pins), finds its maps by id and writes entries with
bpf(2). `VniAgent` follows the store: the trails that start at this host
(its IPv4 and MAC), initial load from all(), then change notifications, and
a full resync every interval. Run in the host's network namespace.
"""

from __future__ import annotations

import json
import logging
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..store import StoreError, TrailStore, open_store, redact
from ..trails import Trail
from .bpf import BpfError, BpfMap, prog_map_ids
from .entries import Entries, TagKey, TagValue, host_entries, starts_at

LOG = logging.getLogger("sdnscent.vni")

OBJECT = Path(__file__).with_name("tagger.o")  # built by `make bpf`
SOURCE = Path(__file__).with_name("tagger.c")
SECTION = "tc"
FILTER_PREF = 0x5CE7  # our egress filter's tc priority: the one we replace and remove
LABEL_MAP = "trail_labels"
COUNTER_MAP = "tag_counters"
COUNTERS = ("tagged", "untagged", "failed", "other")
DEFAULT_INTERVAL = 1.0
MAX_BACKOFF = 10.0


class VniError(RuntimeError):
    """The tagger could not be loaded, found or unloaded."""


# tc's ELF loader insists on a bpffs at /sys/fs/bpf (for pins we do not use). Inside
# a Mininet host or after `ip netns exec` /sys is a fresh sysfs without one; on a
# plain host tc would mount one for good. So tc runs in a private mount namespace
# with a throw-away bpffs: nothing is mounted or pinned outside it.
PRIVATE_BPFFS = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                 'mount -t bpf bpf /sys/fs/bpf && exec tc "$@"', "tc"]


def _tc(*args: str, check: bool = True, prefix: list[str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    cmd = [*prefix, *args] if prefix else ["tc", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise VniError(f"tc {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def interface_address(iface: str) -> tuple[str, str]:
    """(IPv4, MAC) of `iface` in this network namespace."""
    proc = subprocess.run(["ip", "-j", "addr", "show", "dev", iface], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise VniError(f"interface {iface!r}: {proc.stderr.strip()}")
    link = json.loads(proc.stdout)[0]
    ips = [a["local"] for a in link.get("addr_info", []) if a.get("family") == "inet"]
    if not ips:
        raise VniError(f"interface {iface!r} has no IPv4 address (give --ip)")
    return ips[0], link["address"]


def check_object(path: Path) -> Path:
    """`path` if it is a usable tagger object; VniError saying how to build it."""
    if not path.is_file():
        raise VniError(f"{path} not found: build it with `make bpf` (needs clang)")
    if path == OBJECT and SOURCE.exists() and SOURCE.stat().st_mtime > path.stat().st_mtime:
        LOG.warning("%s is older than %s: run `make bpf`", path, SOURCE.name)
    return path


def attached_prog_id(iface: str) -> int | None:
    """The id of our program on `iface`'s egress hook, or None."""
    proc = _tc("-j", "filter", "show", "dev", iface, "egress", check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    for item in json.loads(proc.stdout):
        prog = item.get("options", {}).get("prog")
        if item.get("pref") == FILTER_PREF and prog:
            return int(prog["id"])
    return None


def _has_clsact(iface: str) -> bool:
    proc = _tc("-j", "qdisc", "show", "dev", iface)
    return any(q.get("kind") == "clsact" for q in json.loads(proc.stdout or "[]"))


def _other_filters(iface: str) -> bool:
    for hook in ("ingress", "egress"):
        proc = _tc("-j", "filter", "show", "dev", iface, hook, check=False)
        items = json.loads(proc.stdout or "[]") if proc.returncode == 0 else []
        if any(item.get("pref") != FILTER_PREF for item in items):
            return True
    return False


def unload(iface: str) -> bool:
    """Remove our filter from `iface`, and its clsact qdisc if nothing else uses it.

    The program and its maps go with the filter (nothing is pinned). Returns
    True if there was something to remove. Safe to run after a crash.
    """
    removed = False
    if attached_prog_id(iface) is not None:
        _tc("filter", "del", "dev", iface, "egress", "pref", str(FILTER_PREF))
        removed = True
    if _has_clsact(iface) and not _other_filters(iface):
        _tc("qdisc", "del", "dev", iface, "clsact")
        removed = True
    return removed


class Tagger:
    """The tagger program on one interface: attach, sync the map, detach."""

    def __init__(self, iface: str, obj: Path = OBJECT) -> None:
        self.iface = iface
        self.obj = obj
        self.labels: BpfMap | None = None
        self.counters: BpfMap | None = None
        self.prog_id: int | None = None
        self._mirror: dict[bytes, bytes] = {}  # what we believe the map holds

    def attach(self) -> None:
        """Load the program at clsact egress (replacing a leftover of ours)."""
        check_object(self.obj)
        if not _has_clsact(self.iface):
            _tc("qdisc", "add", "dev", self.iface, "clsact")
        if attached_prog_id(self.iface) is not None:
            LOG.warning("event=replace-leftover iface=%s", self.iface)
            _tc("filter", "del", "dev", self.iface, "egress", "pref", str(FILTER_PREF))
        _tc("filter", "add", "dev", self.iface, "egress", "pref", str(FILTER_PREF), "handle",
            "1", "bpf", "direct-action", "object-file", str(self.obj.resolve()), "section",
            SECTION, prefix=PRIVATE_BPFFS)
        self.prog_id = attached_prog_id(self.iface)
        if self.prog_id is None:
            raise VniError(f"{self.iface}: the tagger is not on the egress hook after tc add")
        self.labels, self.counters = open_maps(self.prog_id)
        self._mirror = self.labels.items()
        LOG.info("event=attached iface=%s prog=%d map=%d", self.iface, self.prog_id,
                 self.labels.id)

    def detach(self) -> None:
        """Remove the program (and the clsact qdisc if it is now unused)."""
        for m in (self.labels, self.counters):
            if m is not None:
                m.close()
        self.labels = self.counters = None
        unload(self.iface)
        LOG.info("event=detached iface=%s", self.iface)

    def sync(self, entries: Entries, verify: bool = False) -> int:
        """Make the map hold exactly `entries`; return the number of writes.

        Specific entries are written before the SHAPE_DST entries that point
        the program at them, and deleted after. `verify` re-reads the map
        first (repairing changes made behind our back).
        """
        if self.labels is None:
            raise VniError("the tagger is not attached")
        if verify:
            self._mirror = self.labels.items()
        want = {k.pack(): v.pack() for k, v in entries.items()}
        changed = [k for k, v in want.items() if self._mirror.get(k) != v]
        gone = [k for k in self._mirror if k not in want]
        changed.sort(key=lambda k: TagKey.unpack(k).shape == 0)  # specific first
        gone.sort(key=lambda k: TagKey.unpack(k).shape == 0)
        for key in changed:
            self.labels.put(key, want[key])
            self._mirror[key] = want[key]
        for key in gone:
            self.labels.delete(key)
            del self._mirror[key]
        return len(changed) + len(gone)

    def entries(self) -> Entries:
        """What the map holds now (read from the kernel)."""
        return read_entries(self.labels) if self.labels is not None else {}

    def counts(self) -> dict[str, int]:
        """The program's packet counters, summed over CPUs."""
        return read_counters(self.counters) if self.counters is not None else {}


def open_maps(prog_id: int) -> tuple[BpfMap, BpfMap]:
    """The label and counter maps of the loaded program `prog_id`."""
    found: dict[str, BpfMap] = {}
    for map_id in prog_map_ids(prog_id):
        m = BpfMap(map_id)
        if m.name in (LABEL_MAP, COUNTER_MAP) and m.name not in found:
            found[m.name] = m
        else:
            m.close()
    if set(found) != {LABEL_MAP, COUNTER_MAP}:
        for m in found.values():
            m.close()
        raise VniError(f"program {prog_id} lacks the maps {LABEL_MAP} and {COUNTER_MAP}")
    return found[LABEL_MAP], found[COUNTER_MAP]


def read_entries(labels: BpfMap) -> Entries:
    """Decode every entry of a label map."""
    return {TagKey.unpack(k): TagValue.unpack(v) for k, v in labels.items().items()}


def read_counters(counters: BpfMap) -> dict[str, int]:
    """Decode the per-CPU counters, summed."""
    out = {}
    for i, name in enumerate(COUNTERS):
        slots = counters.per_cpu(i.to_bytes(4, "little"))
        out[name] = sum(int.from_bytes(s, "little") for s in slots)
    return out


def show(iface: str) -> dict[str, Any]:
    """The tagger on `iface` as JSON-ready data (entries and counters)."""
    prog_id = attached_prog_id(iface)
    if prog_id is None:
        return {"iface": iface, "attached": False}
    labels, counters = open_maps(prog_id)
    try:
        entries = read_entries(labels)
        return {"iface": iface, "attached": True, "prog_id": prog_id, "map_id": labels.id,
                "counters": read_counters(counters),
                "entries": [{"daddr": k.daddr, "shape": k.shape, "proto": k.proto,
                             "port": k.port, "dscp": k.dscp, "label": v.label,
                             "priority": v.priority, "tc": v.tc, "shapes": v.shapes}
                            for k, v in sorted(entries.items())]}
    finally:
        labels.close()
        counters.close()


class VniAgent:
    """Keeps one host's tagger map equal to the trails that start at the host."""

    def __init__(self, url: str, tagger: Tagger, ip: str, mac: str,
                 interval: float = DEFAULT_INTERVAL, max_backoff: float = MAX_BACKOFF,
                 opener: Callable[[str], TrailStore] = open_store) -> None:
        self.url, self.tagger, self.ip, self.mac = url, tagger, ip, mac.lower()
        self.interval = interval
        self.max_backoff = max(max_backoff, interval)
        self.opener = opener
        self.store: TrailStore | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._notes: queue.Queue[dict[str, Any]] = queue.Queue()
        self._trails: dict[int, Trail] = {}
        self._down_since: float | None = None
        self.syncs = 0
        self.writes = 0
        self.last_sync: float = 0.0  # time.time() of the last map change

    # the store ------------------------------------------------------------
    def _connect(self) -> TrailStore:
        if self.store is None:
            self.store = self.opener(self.url)
            self._unsubscribe = self.store.subscribe(self._notes.put)
        return self.store

    def _drop_store(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.store is not None:
            try:
                self.store.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass
            self.store = None

    def _outage(self, exc: Exception) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            LOG.warning("event=store-down store=%s error=%r keeping=map", redact(self.url),
                        str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: "
                        f"{exc}")
        self._drop_store()

    def _up(self) -> None:
        if self._down_since is not None:
            LOG.warning("event=store-up store=%s down_s=%.1f", redact(self.url),
                        time.monotonic() - self._down_since)
            self._down_since = None

    # syncing --------------------------------------------------------------
    def resync(self) -> int:
        """Read every trail, rebuild the map (verified against the kernel)."""
        trails = self._connect().all()
        self._up()
        self._trails = {t.id: t for t in trails if starts_at(t, self.ip, self.mac)}
        return self._apply(verify=True)

    def _note(self, note: dict[str, Any]) -> bool:
        """Apply one change notification to the local trail set; True if it matters."""
        trail_id = note.get("id")
        if not isinstance(trail_id, int):
            return False
        if note.get("op") == "delete":
            return self._trails.pop(trail_id, None) is not None
        trail = self._connect().get(trail_id)
        if trail is not None and starts_at(trail, self.ip, self.mac):
            self._trails[trail_id] = trail
            return True
        return self._trails.pop(trail_id, None) is not None

    def _apply(self, verify: bool = False) -> int:
        writes = self.tagger.sync(host_entries(self._trails.values(), self.ip, self.mac),
                                  verify=verify)
        self.syncs += 1
        self.writes += writes
        if writes:
            self.last_sync = time.time()
            LOG.info("event=map-sync writes=%d trails=%d", writes, len(self._trails))
        return writes

    def run(self, stop: threading.Event) -> None:
        """Attach, follow the store until `stop` is set, detach (always)."""
        self.tagger.attach()
        LOG.info("event=start iface=%s ip=%s mac=%s store=%s interval=%g", self.tagger.iface,
                 self.ip, self.mac, redact(self.url), self.interval)
        backoff = 0.0
        next_full = time.monotonic()
        try:
            while not stop.is_set():
                now = time.monotonic()
                try:
                    if now >= next_full:
                        self.resync()
                        backoff = 0.0
                        next_full = now + self.interval
                    else:
                        note = self._notes.get(timeout=min(0.2, next_full - now))
                        dirty = self._note(note)
                        while True:  # coalesce a burst of notifications into one sync
                            try:
                                dirty = self._note(self._notes.get_nowait()) or dirty
                            except queue.Empty:
                                break
                        if dirty:
                            self._apply()
                except queue.Empty:
                    continue
                except (BpfError, VniError):
                    raise
                except Exception as exc:  # a store failure: keep the map, retry later
                    self._outage(exc)
                    backoff = min(self.max_backoff, backoff * 2 or self.interval)
                    next_full = time.monotonic() + backoff
                    stop.wait(backoff)
        finally:
            self._drop_store()
            self.tagger.detach()
            LOG.info("event=stop syncs=%d writes=%d", self.syncs, self.writes)
