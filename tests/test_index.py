"""The live-trail index: busy trails per link follow moves and removals."""

from __future__ import annotations

from sdnscent.core.index import TrailIndex
from sdnscent.trails import Hop, Trail, TrailState


def trail(trail_id: int, *path: tuple[int, int], state: TrailState = TrailState.ACTIVE) -> Trail:
    hops = tuple(Hop(dpid, 1, port) for dpid, port in path) + (Hop(99, 1, 1),)
    return Trail(trail_id, 16 + trail_id, "aa", "bb", "10.0.0.1", "10.0.0.2", hops, state=state)


def test_busy_counts_follow_a_trail_that_moves_and_leave_with_it() -> None:
    index = TrailIndex()
    index.put(trail(1, (1, 2), (2, 3)))
    index.put(trail(2, (1, 2), (2, 4)))
    assert index.busy_on((1, 2)) == 0 and index.count_on((1, 2)) == 2
    index.set_busy(1, True)
    index.set_busy(1, True)  # twice is once
    assert (index.busy_on((1, 2)), index.busy_on((2, 3)), index.busy_on((2, 4))) == (1, 1, 0)
    index.put(trail(1, (1, 5), (5, 3)))  # moved: busy on its new links only
    assert (index.busy_on((1, 2)), index.busy_on((1, 5)), index.busy_on((5, 3))) == (0, 1, 1)
    index.set_busy(1, False)
    assert index.busy_on((1, 5)) == 0 and not index.is_busy(1)
    index.set_busy(2, True)
    index.put(trail(2, (1, 2), (2, 4), state=TrailState.REMOVED))  # gone: counts go too
    assert index.busy_on((1, 2)) == 0 and not index.is_busy(2)
    index.set_busy(7, True)  # not indexed: nothing to count
    assert not index.is_busy(7)
