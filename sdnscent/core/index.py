"""Live trails indexed by link, switch and application (the role of ONOS's ObjectiveTracker).

The core writes every trail through CoreState.put/delete, which keep this
index in step with the store; `rebuild` fills it from the store after a
restart or a take-over. Link loss, switch connect and isolation then look up
the trails concerned instead of reading every trail from the store.
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
        for trail in trails:
            self.put(trail)

    def put(self, trail: Trail) -> None:
        """Index `trail` as written (a removed or failed trail leaves the index)."""
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

    def discard(self, trail_id: int) -> None:
        """Drop `trail_id` from the index (no error if it is not there)."""
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
