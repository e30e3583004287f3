"""The DRA engine on synthetic load traces: which trails move and when, hysteresis,
hold time, bounded moves, no oscillation, meters and CPU/memory allocations."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pytest

from sdnscent.dra import (
    AllocConfig,
    ClassRule,
    DraConfig,
    DraEngine,
    HostLoad,
    LinkLoad,
    TrailLoad,
)
from sdnscent.trails import Hop, Trail

G = 1e9
M = 1e6
A, B = (1, 1), (1, 2)  # two ways from switch 1: port 1 to switch 2, port 2 to switch 3


def link(key: tuple[int, int], bps: float, capacity: float = G) -> LinkLoad:
    return LinkLoad(key[0], key[1], bps, capacity, dst=key[1] + 1, dst_port=1)


@dataclass
class TwoPaths:
    """A fabric with two parallel paths A and B and an app that applies decisions."""

    rates: dict[int, float]
    where: dict[int, tuple[int, int]]
    background: dict[tuple[int, int], float] = field(default_factory=lambda: {A: 0.0, B: 0.0})
    moves: list[tuple[float, int]] = field(default_factory=list)

    def links(self) -> list[LinkLoad]:
        load = dict(self.background)
        for trail_id, rate in self.rates.items():
            load[self.where[trail_id]] += rate
        return [link(A, load[A]), link(B, load[B])]

    def trails(self) -> list[TrailLoad]:
        return [TrailLoad(t, (self.where[t],), r, "bulk") for t, r in self.rates.items()]

    def run(self, engine: DraEngine, now: float) -> None:
        plan = engine.step(self.links(), self.trails(), {}, now)
        for move in plan.moves:
            other = B if self.where[move.trail_id] == A else A
            if other not in move.avoid_links:  # the planner finds the other path
                self.where[move.trail_id] = other
                self.moves.append((now, move.trail_id))


def test_largest_contributors_move_first() -> None:
    engine = DraEngine(DraConfig())
    trails = [TrailLoad(1, (A,), 100 * M), TrailLoad(2, (A,), 400 * M),
              TrailLoad(3, (A,), 300 * M), TrailLoad(4, (A,), 150 * M)]
    plan = engine.step([link(A, 950 * M), link(B, 100 * M)], trails, {}, now=0.0)
    # 950 -> 550 Mbit/s (below the 60 % low-water mark) by moving the 400 Mbit/s trail only
    assert [m.trail_id for m in plan.moves] == [2]
    move = plan.moves[0]
    assert move.why == "link-hot" and move.hot == "0000000000000001:1"
    assert A in move.avoid_links and (1, 2, 1) in move.avoid_edges
    assert "largest movable contributor" in move.reason and "95%" in move.reason
    assert [e.kind for e in plan.events] == ["dra-hot", "dra-move"]
    assert plan.events[1].trail == 2


def test_more_trails_move_until_the_link_reaches_low_water() -> None:
    engine = DraEngine(DraConfig())
    trails = [TrailLoad(i, (A,), 100 * M) for i in range(1, 11)]
    plan = engine.step([link(A, 1000 * M)], trails, {}, now=0.0)
    # needs 400 Mbit/s off: four of the equal trails, lowest ids first among equals
    assert [m.trail_id for m in plan.moves] == [1, 2, 3, 4]


def test_moves_are_bounded_per_period() -> None:
    engine = DraEngine(DraConfig(max_moves=2, period=1.0))
    trails = [TrailLoad(i, ((1, i),), 500 * M) for i in range(1, 7)]
    links = [link((1, i), 950 * M) for i in range(1, 7)]
    first = engine.step(links, trails, {}, now=0.0)
    assert len(first.moves) == 2
    # the same period: nothing more may move
    assert engine.step(links, trails, {}, now=0.5).moves == ()
    later = engine.step(links, trails, {}, now=1.0)
    assert len(later.moves) == 2
    assert {m.trail_id for m in first.moves}.isdisjoint(m.trail_id for m in later.moves)


def test_a_hot_link_that_cannot_shed_load_is_reported_once() -> None:
    engine = DraEngine(DraConfig(max_moves=1))
    trails = [TrailLoad(i, (A,), 300 * M) for i in (1, 2, 3)]
    plan = engine.step([link(A, 950 * M)], trails, {}, now=0.0)
    assert len(plan.moves) == 1  # 650 Mbit/s left: still above low-water
    stuck = [e for e in plan.events if e.kind == "dra-stuck"]
    assert len(stuck) == 1 and "move bound reached" in stuck[0].message
    again = engine.step([link(A, 950 * M)], trails, {}, now=0.2)
    assert not [e for e in again.events if e.kind == "dra-stuck"]


def test_hold_time_keeps_a_moved_trail_in_place() -> None:
    engine = DraEngine(DraConfig(hold_time=30.0, settle_time=0.0))
    first = engine.step([link(A, 900 * M)], [TrailLoad(7, (A,), 600 * M)], {}, now=0.0)
    assert [m.trail_id for m in first.moves] == [7]
    # the trail now runs on B, which is hot: it must stay there for the hold time
    for now in range(1, 30):
        plan = engine.step([link(B, 900 * M), link(A, 100 * M)],
                           [TrailLoad(7, (B,), 600 * M)], {}, now=float(now))
        assert plan.moves == (), now
    plan = engine.step([link(B, 900 * M)], [TrailLoad(7, (B,), 600 * M)], {}, now=30.0)
    assert [m.trail_id for m in plan.moves] == [7]


def test_a_move_made_elsewhere_starts_the_hold_time() -> None:
    engine = DraEngine(DraConfig(hold_time=10.0))
    engine.moved(3, now=0.0)
    trails = [TrailLoad(3, (A,), 500 * M)]
    plan = engine.step([link(A, 900 * M)], trails, {}, now=5.0)
    assert plan.moves == ()
    assert "held until 5 s from now" in " ".join(e.message for e in plan.events)


def test_recent_moves_count_as_relief_until_measurements_settle() -> None:
    engine = DraEngine(DraConfig(settle_time=5.0))
    trails = [TrailLoad(1, (A,), 300 * M), TrailLoad(2, (A,), 300 * M),
              TrailLoad(3, (A,), 300 * M)]
    plan = engine.step([link(A, 900 * M)], trails, {}, now=0.0)
    assert [m.trail_id for m in plan.moves] == [1]
    # the smoothed load lags: still 900 Mbit/s a period later, though trail 1 left
    lagging = engine.step([link(A, 880 * M)], trails[1:], {}, now=1.0)
    assert lagging.moves == ()
    # once settled, a link still hot is relieved again
    settled = engine.step([link(A, 850 * M)], trails[1:], {}, now=6.0)
    assert [m.trail_id for m in settled.moves] == [2]


def test_hysteresis_between_high_and_low_water() -> None:
    engine = DraEngine(DraConfig(link_high=0.8, link_low=0.6))
    kinds = []
    for step, util in enumerate([0.5, 0.79, 0.85, 0.7, 0.79, 0.65, 0.55, 0.75, 0.81]):
        plan = engine.step([link(A, util * G)], [], {}, now=float(step))
        kinds.append([e.kind for e in plan.events if e.kind in ("dra-hot", "dra-cool")])
        assert (A in plan.hot_links) == (step in (2, 3, 4, 5, 8)), step
    assert kinds == [[], [], ["dra-hot"], [], [], [], ["dra-cool"], [], ["dra-hot"]]


def test_no_oscillation_under_alternating_load() -> None:
    """Background load flips between the two paths every period: trails that move
    to escape it must not follow it back and forth."""
    def simulate(hold: float) -> TwoPaths:
        fabric = TwoPaths(rates={i: (40 + 10 * i) * M for i in range(1, 7)},
                          where={i: A if i % 2 else B for i in range(1, 7)})
        engine = DraEngine(DraConfig(hold_time=hold, max_moves=3, settle_time=0.0))
        for period in range(120):
            fabric.background = {A: 700 * M, B: 0.0} if period % 2 == 0 \
                else {A: 0.0, B: 700 * M}
            fabric.run(engine, float(period))
        return fabric

    held = simulate(hold=30.0)
    per_trail: dict[int, list[float]] = defaultdict(list)
    for at, trail_id in held.moves:
        per_trail[trail_id].append(at)
    for trail_id, times in per_trail.items():
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert all(gap >= 30.0 for gap in gaps), (trail_id, times)
    assert len(held.moves) <= 6 * (120 // 30 + 1)
    per_period = defaultdict(int)
    for at, _ in held.moves:
        per_period[at] += 1
    assert max(per_period.values()) <= 3
    # without a hold time the same trace makes trails flap every period or two
    assert len(simulate(hold=0.0).moves) > 3 * len(held.moves)


def test_avoid_lists_links_the_trail_would_push_over_high_water() -> None:
    engine = DraEngine(DraConfig())
    links = [link(A, 950 * M), link(B, 700 * M), link((1, 3), 100 * M)]
    plan = engine.step(links, [TrailLoad(5, (A,), 500 * M)], {}, now=0.0)
    (move,) = plan.moves
    assert move.avoid_links == (A, B)  # A is hot; B would reach 120 %; port 3 has room


def test_pinned_classes_and_tiny_trails_stay() -> None:
    engine = DraEngine(DraConfig(pinned_classes=frozenset({"control"}), min_share=0.05))
    trails = [TrailLoad(1, (A,), 800 * M, "control"), TrailLoad(2, (A,), 40 * M),
              TrailLoad(3, (A,), 100 * M)]
    plan = engine.step([link(A, 950 * M)], trails, {}, now=0.0)
    assert [m.trail_id for m in plan.moves] == [3]
    stuck = [e.message for e in plan.events if e.kind == "dra-stuck"]
    assert stuck and "class control is pinned" in stuck[0]


def test_under_used_links_and_nodes_are_reported() -> None:
    engine = DraEngine(DraConfig(spare=0.3, alloc=None))
    hosts = {"fw1": HostLoad("fw1", 0.0, 0.1, 0.2), "fw2": HostLoad("fw2", 0.0, 0.7, 0.2)}
    plan = engine.step([link(A, 250 * M), link(B, 50 * M), link((1, 3), 500 * M)], [],
                       hosts, now=0.0)
    assert plan.spare_links == (B, A)
    assert plan.spare_nodes == ("fw1",)


def test_trail_load_from_a_trail_names_its_nf_hosts() -> None:
    trail = Trail(9, 100, "00:00:00:00:00:01", "00:00:00:00:00:02", "10.0.0.1", "10.0.0.2",
                  (Hop(1, 1, 2), Hop(2, 1, 3, via="fw1"), Hop(3, 4, 1)), cls="bulk")
    load = TrailLoad.from_trail(trail, 5 * M)
    assert load == TrailLoad(9, ((1, 2), (2, 3)), 5 * M, "bulk", ("fw1",))


# computing nodes ------------------------------------------------------------------

def cgroup_load(time: float, cores: float, cpu_limit: float | None, mem_used: int,
                mem_limit: int | None = 256 << 20) -> HostLoad:
    """fw1 measured in its own cgroup (as telemetry.host_load makes it)."""
    return HostLoad("fw1", time, cores / (cpu_limit or 4), mem_used / (mem_limit or 1 << 33),
                    cpu_limit, mem_limit, mem_used, cores)


def nf_trails(node: str = "fw1") -> list[TrailLoad]:
    return [TrailLoad(1, (A,), 300 * M, nodes=(node,)), TrailLoad(2, (A,), 100 * M,
                                                                  nodes=(node,))]


def test_a_hot_node_gets_more_cpu_before_trails_move() -> None:
    alloc = AllocConfig(cpu_initial=0.5, cpu_max=2.0, hold_time=10.0)
    engine = DraEngine(DraConfig(alloc=alloc))
    hosts = {"fw1": cgroup_load(0.0, cores=0.475, cpu_limit=0.5, mem_used=128 << 20)}
    plan = engine.step([link(A, 400 * M)], nf_trails(), hosts, now=0.0)
    assert plan.moves == ()
    (grow,) = plan.allocations
    assert grow.node == "fw1" and grow.cpu == pytest.approx(0.5 * 0.95 / 0.65, rel=1e-3)
    assert grow.memory == alloc.mem_initial  # memory at 50 % is inside its band
    assert "CPU 95% of 0.50 cores" in grow.reason and "400 Mbit/s" in grow.reason
    # within the node's hold time nothing changes, even if still hot
    hosts = {"fw1": cgroup_load(1.0, cores=0.9 * grow.cpu, cpu_limit=grow.cpu,
                                mem_used=128 << 20)}
    assert engine.step([link(A, 400 * M)], nf_trails(), hosts, now=5.0).allocations == ()
    assert engine.step([link(A, 400 * M)], nf_trails(), hosts, now=5.0).moves == ()


def test_a_hot_node_at_its_cpu_maximum_sheds_its_largest_trail() -> None:
    engine = DraEngine(DraConfig(alloc=AllocConfig(cpu_max=1.0)))
    hosts = {"fw1": cgroup_load(0.0, cores=0.95, cpu_limit=1.0, mem_used=128 << 20)}
    plan = engine.step([link(A, 400 * M)], nf_trails(), hosts, now=0.0)
    assert [m.trail_id for m in plan.moves] == [1]
    move = plan.moves[0]
    assert move.why == "node-hot" and move.avoid_nodes == ("fw1",)
    assert "at its allocation limit" in move.reason


def test_idle_nodes_shrink_and_memory_follows_usage() -> None:
    alloc = AllocConfig(cpu_min=0.1, cpu_initial=1.0, mem_initial=512 << 20, hold_time=10.0)
    engine = DraEngine(DraConfig(alloc=alloc))
    mem_used = int((512 << 20) * 0.95)
    hosts = {"fw1": cgroup_load(0.0, cores=0.02, cpu_limit=None, mem_used=mem_used)}
    (first,) = engine.step([], nf_trails(), hosts, now=0.0).allocations
    assert first.cpu == pytest.approx(0.1)  # 1 core (initial) at 2 % -> the minimum
    assert first.memory == int(mem_used / 0.6)  # grown to land at 60 %
    assert engine.allocation("fw1") == (first.cpu, first.memory)
    # trails gone, node still known: it keeps being sized, after its hold time
    hosts = {"fw1": cgroup_load(11.0, cores=0.002, cpu_limit=first.cpu,
                                mem_limit=first.memory, mem_used=100 << 20)}
    (second,) = engine.step([], [], hosts, now=11.0).allocations
    assert second.cpu == pytest.approx(0.1)  # already the minimum: unchanged
    assert second.memory == int((100 << 20) / 0.6)


def test_nodes_without_a_fresh_sample_are_left_alone() -> None:
    engine = DraEngine(DraConfig())
    plan = engine.step([link(A, 400 * M)], nf_trails(), {}, now=0.0)
    assert plan.allocations == () and plan.moves == ()


def test_a_hot_node_without_a_cgroup_of_its_own_is_not_sized_but_relieved() -> None:
    engine = DraEngine(DraConfig())
    hosts = {"fw1": HostLoad("fw1", 0.0, cpu=0.9, memory=0.5)}  # the machine's figures
    plan = engine.step([link(A, 400 * M)], nf_trails(), hosts, now=0.0)
    assert plan.allocations == ()
    assert [m.trail_id for m in plan.moves] == [1]


# meters ---------------------------------------------------------------------------

def test_meters_for_capped_classes_change_only_when_the_rate_does() -> None:
    rules = {"bulk": ClassRule(cap_bps=200 * M, cap_share=0.5), "video": ClassRule(cap_share=0.1)}
    engine = DraEngine(DraConfig(classes=rules))
    trails = [TrailLoad(1, (A,), 10 * M, "bulk"), TrailLoad(2, (A, B), 10 * M, "video"),
              TrailLoad(3, (A,), 10 * M, "interactive")]
    links = [link(A, 0.0), link(B, 0.0, capacity=100 * M)]
    plan = engine.step(links, trails, {}, now=0.0)
    assert [(m.trail_id, m.rate_bps) for m in plan.meters] == [(1, 200 * M), (2, 10 * M)]
    assert "class bulk is capped at 200 Mbit/s" in plan.meters[0].reason
    assert engine.step(links, trails, {}, now=1.0).meters == ()
    # trail 2 moved off the narrow link: its cap follows the capacity; trail 1 left bulk
    trails = [TrailLoad(1, (A,), 10 * M, "interactive"), TrailLoad(2, (A,), 10 * M, "video")]
    plan = engine.step(links, trails, {}, now=2.0)
    assert [(m.trail_id, m.rate_bps) for m in plan.meters] == [(1, None), (2, 100 * M)]


def test_bad_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match="low-water"):
        DraConfig(link_high=0.5, link_low=0.6)
    with pytest.raises(ValueError, match="cpu_target"):
        DraConfig(cpu_low=0.7, cpu_high=0.8)
