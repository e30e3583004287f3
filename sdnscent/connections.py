"""TCP connections inside one trail: their rates, and which to split off.

A pair's default trail carries every connection between two hosts on one
path. When several of them are elephants, no placement of the trail can
spread them: each must become a trail of its own (classified on its ports).
While a trail is an elephant its ingress switch learns one counter per
connection (docs/placement.rst, "Several elephants of one pair"); this module
turns those byte counters into rates and picks the connections to split off.
Pure: the core feeds it counters and acts on what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

FORGET_AFTER = 3.0  # s without a reading: the counter is gone (connection ended or split)


@dataclass(frozen=True)
class ConnectionCount:
    """One learned counter read from a switch: a connection of trail `trail_id`."""

    trail_id: int
    tcp_src: int
    tcp_dst: int
    bytes: int

    @property
    def key(self) -> tuple[int, int, int]:
        """(trail id, tcp_src, tcp_dst)."""
        return (self.trail_id, self.tcp_src, self.tcp_dst)


class ConnectionMeter:
    """Rates of connections from successive readings of their byte counters.

    A connection's first reading gives no rate; a counter that went backwards
    (relearned after it idled out) starts again. Readings older than
    FORGET_AFTER seconds are dropped.
    """

    def __init__(self) -> None:
        self._last: dict[tuple[int, int, int], tuple[float, int]] = {}
        self._rate: dict[tuple[int, int, int], float] = {}

    def update(self, counts: Iterable[ConnectionCount], now: float) -> None:
        """Apply one switch's readings taken at `now` (seconds)."""
        for c in counts:
            before = self._last.get(c.key)
            self._last[c.key] = (now, c.bytes)
            if before is None or now <= before[0] or c.bytes < before[1]:
                continue
            self._rate[c.key] = 8.0 * (c.bytes - before[1]) / (now - before[0])
        for key in [k for k, (at, _) in self._last.items() if now - at > FORGET_AFTER]:
            del self._last[key]
            self._rate.pop(key, None)

    def forget(self, trail_id: int) -> None:
        """Drop every connection of `trail_id` (the trail ended or stopped counting)."""
        for key in [k for k in self._last if k[0] == trail_id]:
            del self._last[key]
            self._rate.pop(key, None)

    def rates(self) -> dict[int, dict[tuple[int, int], float]]:
        """trail id -> {(tcp_src, tcp_dst): bit/s} for every connection with a rate."""
        out: dict[int, dict[tuple[int, int], float]] = {}
        for (trail, sport, dport), bps in self._rate.items():
            out.setdefault(trail, {})[(sport, dport)] = bps
        return out


def to_split(rates: Mapping[int, Mapping[tuple[int, int], float]],
             threshold: Mapping[int, float]) -> dict[int, list[tuple[int, int]]]:
    """The connections to give trails of their own, by trail id.

    A trail is split only when two or more of its connections reach its
    `threshold` (bit/s: the elephant share of its source NIC); then every
    such connection is split off, largest first, and the rest stay.
    """
    out: dict[int, list[tuple[int, int]]] = {}
    for trail, conns in rates.items():
        limit = threshold.get(trail)
        if limit is None or limit <= 0:
            continue
        big = sorted((bps, ports) for ports, bps in conns.items() if bps >= limit)
        if len(big) >= 2:
            out[trail] = [ports for _, ports in reversed(big)]
    return out
