"""OpenFlow transactions as data: who owns an operation, what a failed step means,
in which order changes may run, and how long a failed trail waits for its retry.

The glue (apps/channel.py) sends each step of a Change with one xid per
message and a barrier per switch. A switch that refuses a message (OFPT_ERROR)
or whose barrier does not come back in time fails the step there. This module
turns such failures into the trails to fail (by the cookie, group or meter of
the refused operations) and the switches to audit again (operations that
belong to no trail: the pipeline, link ports, drop rules, services).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .compiler import Op, Step
from .flows import FlowDelete, FlowSpec, GroupDelete, GroupSpec, MeterDelete, MeterSpec
from .pipeline import (
    COOKIE_MASK_ALL,
    METER_ID_MAX,
    METER_ID_MIN,
    MULTIPATH_GROUP_BASE,
    MULTIPATH_GROUP_MAX,
    cookie_trail_id,
)

RETRY_FIRST = 1.0  # s before the first retry of a failed trail
RETRY_MAX = 60.0  # s: the back-off doubles up to this


def owner_of(op: Op) -> int | None:
    """The trail an operation belongs to (a multipath trail: its head); None if none."""
    if isinstance(op, FlowSpec):
        return cookie_trail_id(op.cookie)
    if isinstance(op, FlowDelete):
        return cookie_trail_id(op.cookie) if op.cookie_mask == COOKIE_MASK_ALL else None
    if isinstance(op, GroupSpec | GroupDelete):
        gid = op.group_id
        if gid is not None and MULTIPATH_GROUP_BASE < gid <= MULTIPATH_GROUP_MAX:
            return gid - MULTIPATH_GROUP_BASE
        return None
    if isinstance(op, MeterSpec | MeterDelete):
        mid = op.meter_id
        return mid if mid is not None and METER_ID_MIN <= mid <= METER_ID_MAX else None
    return None


@dataclass(frozen=True)
class Failure:
    """One switch's part of a step that did not succeed.

    `op` is the refused operation, or None when the switch did not confirm
    the step at all (barrier timeout, connection lost): then every operation
    sent to it in that step counts as failed.
    """

    dpid: int
    step: int
    reason: str
    op: Op | None = None


@dataclass
class Verdict:
    """What failures of a step mean: trails to fail, switches to audit again."""

    trails: dict[int, str] = field(default_factory=dict)  # trail id -> why
    resync: dict[int, str] = field(default_factory=dict)  # dpid -> why

    def __bool__(self) -> bool:
        return bool(self.trails or self.resync)


def judge(step: Step, failures: Iterable[Failure]) -> Verdict:
    """The trails and switches a step's failures concern.

    A refused operation fails its owner trail, or, owning none, marks its
    switch for a new audit. An unconfirmed switch fails every trail with an
    operation there in the step, and is audited again too when it got
    operations of no trail.
    """
    verdict = Verdict()
    for failure in failures:
        ops = [failure.op] if failure.op is not None else step.get(failure.dpid, [])
        where = f"step {failure.step + 1} on switch {failure.dpid:#x}: {failure.reason}"
        for op in ops:
            trail = owner_of(op)
            if trail is not None:
                verdict.trails.setdefault(trail, where)
            else:
                verdict.resync.setdefault(failure.dpid, where)
    return verdict


def without_trails(steps: Iterable[Step], trails: set[int]) -> list[Step]:
    """`steps` less the operations of `trails` (a failed trail's later steps)."""
    out: list[Step] = []
    for step in steps:
        kept: Step = {}
        for dpid, ops in step.items():
            rest = [op for op in ops if owner_of(op) not in trails]
            if rest:
                kept[dpid] = rest
        out.append(kept)
    return out


def retry_delay(attempt: int) -> float:
    """Seconds before retry number `attempt` (0-based): doubling from RETRY_FIRST."""
    return min(RETRY_FIRST * 2 ** max(attempt, 0), RETRY_MAX)


def switches_of(steps: Iterable[Step]) -> frozenset[int]:
    """Every switch a change's steps touch."""
    return frozenset(dpid for step in steps for dpid in step)


class SwitchOrder:
    """Runs changes in submission order per switch, changes on other switches at once.

    A change may start when every earlier change that touches one of its
    switches has finished; so a slow or dead switch delays only the changes
    that touch it (and those queued behind them on their other switches).
    `start` is given a callable to run (on a thread of its choosing) when a
    change's turn comes; the change's runner must call the `finished`
    callback it receives once (later calls are ignored).
    """

    def __init__(self, start: Callable[[Callable[[], None]], None]) -> None:
        self._start = start
        self._lock = threading.Lock()
        self._queues: dict[int, deque[int]] = {}
        self._waiting: dict[int, tuple[frozenset[int], Callable[[Callable[[], None]], None]]] = {}
        self._running: set[int] = set()
        self._next = 0

    def submit(self, dpids: frozenset[int],
               run: Callable[[Callable[[], None]], None]) -> None:
        """Queue `run(finished)` behind earlier changes on `dpids`."""
        with self._lock:
            ticket = self._next
            self._next += 1
            for dpid in dpids:
                self._queues.setdefault(dpid, deque()).append(ticket)
            self._waiting[ticket] = (dpids, run)
            ready = self._ready([ticket])
        self._launch(ready)

    def pending(self) -> int:
        """Changes queued or running."""
        with self._lock:
            return len(self._waiting) + len(self._running)

    def _ready(self, tickets: Iterable[int]) -> list[tuple[int, frozenset[int],
                                                           Callable[..., None]]]:
        ready = []
        for ticket in tickets:
            entry = self._waiting.get(ticket)
            if entry is None:
                continue
            dpids, run = entry
            if all(self._queues[d][0] == ticket for d in dpids):
                del self._waiting[ticket]
                self._running.add(ticket)
                ready.append((ticket, dpids, run))
        return ready

    def _launch(self, ready: list[tuple[int, frozenset[int], Callable[..., None]]]) -> None:
        for ticket, dpids, run in ready:
            finished = self._finisher(ticket, dpids)
            self._start(lambda run=run, finished=finished: run(finished))

    def _finisher(self, ticket: int, dpids: frozenset[int]) -> Callable[[], None]:
        done = threading.Event()

        def finished() -> None:
            if done.is_set():
                return
            done.set()
            with self._lock:
                self._running.discard(ticket)
                heads = []
                for dpid in dpids:
                    queue = self._queues[dpid]
                    queue.popleft()
                    if queue:
                        heads.append(queue[0])
                    else:
                        del self._queues[dpid]
                ready = self._ready(dict.fromkeys(heads))
            self._launch(ready)

        return finished
