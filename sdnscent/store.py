"""Where trails live: the TrailStore interface and its in-memory backend.

The controller keeps no trail state of its own beyond indexes it can rebuild:
trails are read from and written to a store. Redis and Redis Cluster backends
implement the same interface (see docs/store.rst).
"""

from __future__ import annotations

import abc
import threading
from urllib.parse import urlparse

from .trails import Trail


class StoreError(RuntimeError):
    """The store refused or failed an operation."""


class StaleWrite(StoreError):
    """A write carried an older version than the stored trail."""


class TrailStore(abc.ABC):
    """Narrow storage interface for trails."""

    @abc.abstractmethod
    def next_id(self) -> int:
        """A fresh trail id, unique within this store."""

    @abc.abstractmethod
    def put(self, trail: Trail) -> None:
        """Store `trail`; raise StaleWrite if a newer version is stored."""

    @abc.abstractmethod
    def get(self, trail_id: int) -> Trail | None:
        """The trail with `trail_id`, or None."""

    @abc.abstractmethod
    def delete(self, trail_id: int) -> Trail | None:
        """Remove a trail; return what was stored."""

    @abc.abstractmethod
    def all(self) -> list[Trail]:
        """Every stored trail, by id."""


class MemoryStore(TrailStore):
    """The embedded default: a dict behind a lock."""

    def __init__(self) -> None:
        self._trails: dict[int, Trail] = {}
        self._next = 1
        self._lock = threading.Lock()

    def next_id(self) -> int:
        with self._lock:
            value = self._next
            self._next += 1
            return value

    def put(self, trail: Trail) -> None:
        with self._lock:
            current = self._trails.get(trail.id)
            if current and current.version > trail.version:
                raise StaleWrite(f"trail {trail.id}: version {trail.version} is older "
                                 f"than stored {current.version}")
            self._trails[trail.id] = trail

    def get(self, trail_id: int) -> Trail | None:
        with self._lock:
            return self._trails.get(trail_id)

    def delete(self, trail_id: int) -> Trail | None:
        with self._lock:
            return self._trails.pop(trail_id, None)

    def all(self) -> list[Trail]:
        with self._lock:
            return [self._trails[k] for k in sorted(self._trails)]


def open_store(url: str) -> TrailStore:
    """A store for `url`: memory:// (default); Redis backends come later."""
    scheme = urlparse(url).scheme
    if scheme == "memory":
        return MemoryStore()
    if scheme in ("redis", "redis+cluster", "rediss"):
        raise StoreError(f"store {url!r}: the Redis backends are not in this version yet")
    raise StoreError(f"store {url!r}: unknown scheme {scheme!r}; use memory://")
