"""Leadership among controllers that share a store: one master, the others standby.

The master holds a lease in the store and renews it every third of its TTL.
A standby that wins the lease takes over: a newer generation (switches refuse
an older master's role request), trails and hosts from the store, and every
switch audited (docs/scaleout.rst).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sdnscent.cache import CachedStore
from sdnscent.controller import ScentController
from sdnscent.store import StoreError

LOG = logging.getLogger("sdnscent.leader")


class Leadership:
    """The master lease of one controller, and what changes when it is won or lost."""

    def __init__(self, ctrl: ScentController, node_id: str, ttl: float, shared: bool,
                 take_over: Callable[[Callable[[], None]], None]) -> None:
        """`take_over(job)` runs `job` on the controller's worker."""
        self.ctrl = ctrl
        self.node_id = node_id
        self.ttl = ttl
        self.shared = shared
        self.leader = not shared  # alone with a memory store: always master
        self.generation = 0
        self._submit = take_over
        self.on_master: Callable[[], None] = lambda: None  # after a take-over

    def elect(self) -> None:
        """Claim or renew the master lease; take over or step down on a change."""
        try:
            held = self.ctrl.store.claim_leader(self.node_id, self.ttl)
        except StoreError as exc:
            # Nobody can claim while the store is down: keep the current role.
            LOG.debug("leader lease not renewed: %s", exc)
            return
        if held and not self.leader:
            self._submit(self.take_over)
        elif not held and self.leader:
            self.leader = False
            with self.ctrl.lock:
                self.ctrl.record("leader", f"{self.node_id} lost the master lease; standby now")

    def loop(self, stopping: threading.Event) -> None:
        """Renew (or seek) the lease until `stopping` is set."""
        while not stopping.wait(self.ttl / 3):
            self.elect()

    def take_over(self) -> None:
        """Become master: newest generation, trails and hosts from the store."""
        store = self.ctrl.store
        self.generation = store.next_generation()
        if isinstance(store, CachedStore):
            store.load()
            store.rebuild_index()
        with self.ctrl.lock:
            count = self.ctrl.recover()
            self.ctrl.record("leader", f"{self.node_id} is master (generation "
                             f"{self.generation}); {count} trails from the store")
        self.leader = True
        self.on_master()

    def role(self) -> tuple[bool, int]:
        """(master?, generation) to claim at a switch."""
        if self.leader:
            return True, self.generation
        try:
            return False, self.ctrl.store.generation()
        except StoreError:
            return False, self.generation

    def release(self) -> None:
        """Hand the lease on (at a clean stop)."""
        if self.shared and self.leader:
            try:
                self.ctrl.store.release_leader(self.node_id)
            except StoreError:
                pass

    def status(self) -> dict[str, Any]:
        """Role, generation and the current lease holder."""
        info: dict[str, Any] = {"role": "master" if self.leader else "standby",
                                "generation": self.generation}
        store = self.ctrl.store
        if isinstance(store, CachedStore):
            info["store_status"] = store.status()
            try:
                info["leader"] = store.leader()
            except StoreError:
                info["leader"] = None
        else:
            info["store_status"] = {"healthy": True}
            info["leader"] = self.node_id
        return info
