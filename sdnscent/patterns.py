"""Communication patterns: which host pairs of an application talk, and how much.

The controller feeds it first packets (a pair asked for a trail) and the
counters of every trail's ingress classifier; it ranks pairs by

    score = (rate + FIRST_PACKET_WEIGHT * requests) * criticality

where `rate` is an exponentially weighted moving average of packets/s,
`requests` counts trail requests (decayed the same way) and `criticality`
grows with the application's security level and data class. The top pairs of
each application are set up proactively when their hosts (re)appear and are
the ones kept alive when trails expire.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HALF_LIFE = 60.0  # seconds: how fast old traffic stops counting
FIRST_PACKET_WEIGHT = 1.0  # a trail request counts like 1 packet/s
CLASS_FACTOR = {"control": 4.0, "interactive": 2.0, "best-effort": 1.0, "bulk": 0.5}
DEFAULT_TOP = 8

Pair = tuple[str, str, str]  # (application, src MAC, dst MAC)


@dataclass
class PairStats:
    """What is known about one pair."""

    rate: float = 0.0  # packets/s, EWMA
    requests: float = 0.0  # trail requests, decayed
    packets: int = 0  # last counter reading
    seen: float | None = None  # time of the last update
    level: int = 0
    data_class: str = "best-effort"

    def criticality(self) -> float:
        """Weight of the pair's application: security level and data class."""
        return (1.0 + self.level) * CLASS_FACTOR.get(self.data_class, 1.0)

    def score(self) -> float:
        """The ranking score (see the module docstring)."""
        return (self.rate + FIRST_PACKET_WEIGHT * self.requests) * self.criticality()


class PatternTracker:
    """Per-application ranking of host pairs by observed use."""

    def __init__(self, half_life: float = HALF_LIFE) -> None:
        if half_life <= 0:
            raise ValueError(f"half-life {half_life} must be positive")
        self.half_life = half_life
        self.pairs: dict[Pair, PairStats] = {}

    def _decay(self, stats: PairStats, now: float) -> float:
        if stats.seen is None:
            return 1.0
        factor = math.pow(0.5, max(0.0, now - stats.seen) / self.half_life)
        stats.requests *= factor
        return factor

    def _stats(self, pair: Pair, level: int, data_class: str) -> PairStats:
        stats = self.pairs.setdefault(pair, PairStats())
        stats.level, stats.data_class = level, data_class
        return stats

    def request(self, pair: Pair, now: float, level: int = 0,
                data_class: str = "best-effort") -> None:
        """A first packet (or ARP) of `pair` asked for a trail."""
        stats = self._stats(pair, level, data_class)
        factor = self._decay(stats, now)
        stats.rate *= factor
        stats.requests += 1.0
        stats.seen = now

    def counters(self, pair: Pair, packets: int, now: float, level: int = 0,
                 data_class: str = "best-effort") -> None:
        """The pair's trail counted `packets` in total by `now`."""
        stats = self._stats(pair, level, data_class)
        elapsed = now - stats.seen if stats.seen is not None else 0.0
        self._decay(stats, now)
        if elapsed > 0 and packets >= stats.packets:
            sample = (packets - stats.packets) / elapsed
            alpha = 1.0 - math.pow(0.5, elapsed / self.half_life)
            stats.rate += alpha * (sample - stats.rate)
        stats.packets = packets
        stats.seen = now

    def forget(self, mac: str) -> None:
        """A host went away: drop its pairs."""
        for pair in [p for p in self.pairs if mac in p[1:]]:
            del self.pairs[pair]

    def ranking(self, app: str | None = None) -> list[tuple[Pair, PairStats]]:
        """Pairs (of `app`, or all) by descending score, ties by pair."""
        items = [(p, s) for p, s in self.pairs.items() if app is None or p[0] == app]
        return sorted(items, key=lambda item: (-item[1].score(), item[0]))

    def top(self, app: str, n: int = DEFAULT_TOP) -> list[Pair]:
        """The `n` most used and critical pairs of `app`."""
        return [pair for pair, _ in self.ranking(app)[:n]]
