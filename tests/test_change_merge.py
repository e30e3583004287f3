"""Change.merge: changes run side by side, step beside step, drains waited once."""

from __future__ import annotations

from sdnscent.core.model import Change
from sdnscent.flows import FlowSpec


def op(dpid: int, n: int) -> FlowSpec:
    return FlowSpec.make(dpid, 0, n, {"in_port": n}, cookie=n)


def move(dpid: int, before: int, after: int, pause: float = 5.0) -> Change:
    """A make-before-break move on switch `dpid`: `before` steps, a drain, `after` steps."""
    steps = [{dpid: [op(dpid, i)]} for i in range(before + after)]
    return Change(steps, pause_before={before: pause})


def waits(change: Change) -> list[float]:
    """The drains a runner waits, in order (ChangeRunner: one at each paused step)."""
    return [change.pause_before[i] for i in sorted(change.pause_before) if i > 0]


def order_on(change: Change, dpid: int) -> list[tuple[int, int]]:
    """(step index, priority) of `dpid`'s operations as the merged change sends them."""
    return [(i, o.priority) for i, step in enumerate(change.steps) for o in step.get(dpid, [])]


def test_moves_of_different_lengths_wait_one_drain_together() -> None:
    """A move with a protection step ahead (3 steps before its drain) merged with a
    plain one (2 before): one 5 s wait, each move's own order kept, and every
    step each sends before its drain still goes before the one wait."""
    long, short = move(1, 3, 2), move(2, 2, 1)
    for merged in (Change().merge(long).merge(short), Change().merge(short).merge(long)):
        assert waits(merged) == [5.0]
        paused = min(merged.pause_before)
        for dpid, before in ((1, 3), (2, 2)):
            sent = order_on(merged, dpid)
            assert [p for _, p in sent] == sorted(p for _, p in sent)  # own order
            assert [i < paused for i, p in sent] == [p < before for _, p in sent]


def test_a_change_without_a_drain_runs_from_the_first_step() -> None:
    """Installs merged into a move go out at once, not after its drain."""
    merged = move(1, 2, 1).merge(Change([{3: [op(3, 0)]}, {3: [op(3, 1)]}]))
    assert order_on(merged, 3) == [(0, 0), (1, 1)]
    assert waits(merged) == [5.0]


def test_unequal_drains_wait_the_longer() -> None:
    merged = move(1, 2, 1, pause=2.0).merge(move(2, 3, 1, pause=5.0))
    assert waits(merged) == [5.0]
