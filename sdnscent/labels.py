"""MPLS label allocation: one 20-bit label per trail, labels 0-15 reserved.

Released labels go to the back of a FIFO so a label is reused as late as
possible, which keeps a late packet of an old trail from matching a new one.
"""

from __future__ import annotations

from collections import deque

from .pipeline import MAX_LABEL, MIN_LABEL


class LabelError(ValueError):
    """A label outside the usable range, or one not held."""


class LabelExhausted(RuntimeError):
    """Every label of the allocator's range is in use."""


class LabelAllocator:
    """Hands out MPLS labels from [first, last] and takes them back."""

    def __init__(self, first: int = MIN_LABEL, last: int = MAX_LABEL) -> None:
        if not MIN_LABEL <= first <= last <= MAX_LABEL:
            raise LabelError(
                f"label range {first}..{last} must lie within {MIN_LABEL}..{MAX_LABEL}"
            )
        self.first, self.last = first, last
        self._next = first
        self._released: deque[int] = deque()
        self._queued: set[int] = set()  # labels in _released
        self._in_use: set[int] = set()

    def __len__(self) -> int:
        return len(self._in_use)

    def __contains__(self, label: int) -> bool:
        return label in self._in_use

    @property
    def capacity(self) -> int:
        """How many labels the range holds."""
        return self.last - self.first + 1

    def allocate(self) -> int:
        """Return a free label; raise LabelExhausted when none is left."""
        while self._next <= self.last:
            label = self._next
            self._next += 1
            if label not in self._in_use and label not in self._queued:
                self._in_use.add(label)
                return label
        while self._released:
            label = self._released.popleft()
            self._queued.discard(label)
            if label not in self._in_use:
                self._in_use.add(label)
                return label
        raise LabelExhausted(
            f"all {self.capacity} MPLS labels ({self.first}..{self.last}) are in use"
        )

    def reserve(self, label: int) -> None:
        """Mark a specific label as in use (e.g. when restoring trails)."""
        self._check(label)
        if label in self._in_use:
            raise LabelError(f"label {label} is already in use")
        self._in_use.add(label)

    def release(self, label: int) -> None:
        """Give a label back; it is reused only after all fresh labels."""
        self._check(label)
        if label not in self._in_use:
            raise LabelError(f"label {label} is not allocated")
        self._in_use.remove(label)
        if label in self._queued:  # reserved again and released again: move to the back
            self._released.remove(label)
        self._released.append(label)
        self._queued.add(label)

    def _check(self, label: int) -> None:
        if not self.first <= label <= self.last:
            raise LabelError(f"label {label} is outside {self.first}..{self.last}")
