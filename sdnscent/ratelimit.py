"""Token buckets per key: the controller's defence against packet-in floods.

Each switch port (dpid, in_port) gets `rate` packet-ins per second with bursts
of up to `burst`; what is over is dropped before it is parsed or queued, so a
host flooding unknown destinations slows only its own port. Pure logic.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

MAX_KEYS = 65536  # buckets kept; the least recently used goes first


class RateLimiter:
    """`allow(key)` is True while `key` has a token; tokens refill at `rate` per second."""

    def __init__(self, rate: float, burst: float,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS) -> None:
        if not rate > 0 or not burst >= 1:
            raise ValueError(f"rate {rate!r} must be > 0 and burst {burst!r} >= 1")
        self.rate, self.burst, self.clock, self.max_keys = rate, burst, clock, max_keys
        self._buckets: OrderedDict[Hashable, list[float]] = OrderedDict()
        self.dropped = 0

    def allow(self, key: Hashable) -> bool:
        """Take a token for `key` if there is one."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.popitem(last=False)
            bucket = self._buckets[key] = [self.burst, now]
        else:
            self._buckets.move_to_end(key)
            bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return True
        self.dropped += 1
        return False
