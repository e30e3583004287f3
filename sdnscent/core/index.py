"""Live trails indexed by link, switch and application (the role of ONOS's ObjectiveTracker).

The core writes every trail through CoreState.put/delete, which keep this
index in step with the store; `rebuild` fills it from the store after a
restart or a take-over. Link loss, switch connect and isolation then look up
the trails concerned instead of reading every trail from the store.

It also counts, per link, the trails that are *busy*: that carried load at
the last counter poll or were made a moment ago (core/trails.py decides). Spreading new trails
over equal paths weighs those, not trails that idle until their lease ends.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..trails import DEAD_STATES, Trail

Link = tuple[int, int]  # (dpid, out port): one direction of a cable

class TrailIndex:
    """Trail ids by the links and switches they use and by application."""

    def __init__(self) -> None:
        self._links: dict[Link, set[int]] = {}
        self._switches: dict[int, set[int]] = {}
        self._apps: dict[str, set[int]] = {}
        self._of: dict[int, tuple[frozenset[Link], frozenset[int], str]] = {}
        self._busy: set[int] = set()
        self._busy_links: dict[Link, int] = {}

    def __len__(self) -> int:
        return len(self._of)

    def __contains__(self, trail_id: object) -> bool:
        return trail_id in self._of

    def rebuild(self, trails: Iterable[Trail]) -> None:
        """Forget everything and index `trails`."""
        self._links.clear()
        self._switches.clear()
        self._apps.clear()
        self._of.clear()
        self._busy.clear()
        self._busy_links.clear()
        for trail in trails:
            self.put(trail)

    def put(self, trail: Trail) -> None:
        """Index `trail` as written (a removed or failed trail leaves the index;
        a busy one stays busy on its new links)."""
        busy = trail.id in self._busy
        self.discard(trail.id)
        if trail.state in DEAD_STATES:
            return
        links, switches = frozenset(trail.links()), frozenset(trail.switches)
        self._of[trail.id] = (links, switches, trail.app)
        for key in links:
            self._links.setdefault(key, set()).add(trail.id)
        for dpid in switches:
            self._switches.setdefault(dpid, set()).add(trail.id)
        self._apps.setdefault(trail.app, set()).add(trail.id)
        if busy:
            self.set_busy(trail.id, True)

    def discard(self, trail_id: int) -> None:
        """Drop `trail_id` from the index (no error if it is not there)."""
        self.set_busy(trail_id, False)
        entry = self._of.pop(trail_id, None)
        if entry is None:
            return
        links, switches, app = entry
        for key in links:
            _remove(self._links, key, trail_id)
        for dpid in switches:
            _remove(self._switches, dpid, trail_id)
        _remove(self._apps, app, trail_id)

    def on_links(self, links: Iterable[Link]) -> set[int]:
        """Ids of trails that use any of `links`."""
        found: set[int] = set()
        for key in links:
            found |= self._links.get(key, set())
        return found

    def count_on(self, link: Link) -> int:
        """How many trails use `link`."""
        return len(self._links.get(link, ()))

    def set_busy(self, trail_id: int, busy: bool) -> None:
        """Mark an indexed trail busy (carrying traffic) or idle; unknown ids are ignored."""
        if busy == (trail_id in self._busy) or (busy and trail_id not in self._of):
            return
        step = 1 if busy else -1
        if busy:
            self._busy.add(trail_id)
        else:
            self._busy.discard(trail_id)
        for key in self._of[trail_id][0]:
            count = self._busy_links.get(key, 0) + step
            if count:
                self._busy_links[key] = count
            else:
                del self._busy_links[key]

    def is_busy(self, trail_id: int) -> bool:
        """Whether `trail_id` is marked busy."""
        return trail_id in self._busy

    def busy_on(self, link: Link) -> int:
        """How many busy trails use `link`."""
        return self._busy_links.get(link, 0)

    def on_switch(self, dpid: int) -> set[int]:
        """Ids of trails that cross switch `dpid`."""
        return set(self._switches.get(dpid, ()))

    def of_app(self, app: str) -> set[int]:
        """Ids of `app`'s trails."""
        return set(self._apps.get(app, ()))

    def apps(self) -> list[str]:
        """Applications that have live trails."""
        return sorted(self._apps)

    def ids(self) -> list[int]:
        """Every indexed trail id, in order."""
        return sorted(self._of)


def _remove(table: dict, key: object, trail_id: int) -> None:
    ids = table.get(key)
    if ids is not None:
        ids.discard(trail_id)
        if not ids:
            del table[key]
