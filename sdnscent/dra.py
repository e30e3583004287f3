"""Dynamic resource allocation: pure decisions over measured load.

The engine reads plain snapshots (link loads, trail rates, host loads) once per
period and returns a DraPlan: trails to move away from hot links or nodes
(largest contributors first, with hysteresis, a hold time per trail and a bound
on moves per period), meter rates for rate-capped classes and CPU/memory
allocations for computing nodes. It plans no paths and sends nothing; the
controller applies the plan and records its events. Rules: docs/telemetry.rst.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .topology import dpid_str
from .trails import Trail

LinkKey = tuple[int, int]  # (src dpid, src port): the link direction leaving that port
EdgeKey = tuple[int, int, int]  # (src dpid, dst dpid, src port): a MultiDiGraph edge


def link_name(key: LinkKey) -> str:
    """A link key as operators read it: 16-hex-digit dpid, colon, port."""
    return f"{dpid_str(key[0])}:{key[1]}"


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def _rate(bps: float) -> str:
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if abs(bps) >= scale:
            return f"{bps / scale:.3g} {unit}"
    return f"{bps:.3g} bit/s"


# Inputs -----------------------------------------------------------------------

@dataclass(frozen=True)
class LinkLoad:
    """Measured load of one link direction (the traffic sent out of src:src_port)."""

    src: int
    src_port: int
    bps: float
    capacity: float
    dst: int | None = None
    dst_port: int | None = None

    @property
    def key(self) -> LinkKey:
        """(src dpid, src port), as in Trail.links() and Planner.utilisation."""
        return (self.src, self.src_port)

    @property
    def utilisation(self) -> float:
        """Load as a fraction of capacity (may exceed 1 briefly)."""
        return self.bps / self.capacity if self.capacity > 0 else 0.0


@dataclass(frozen=True)
class TrailLoad:
    """A trail as the engine sees it: where it runs and how much it carries."""

    trail_id: int
    links: tuple[LinkKey, ...]
    rate_bps: float
    cls: str = "best-effort"
    nodes: tuple[str, ...] = ()  # computing nodes (NF hosts) the trail crosses

    @classmethod
    def from_trail(cls, trail: Trail, rate_bps: float) -> TrailLoad:
        """The load of `trail`: its links, class and the NF hosts named by its hops."""
        nodes = tuple(dict.fromkeys(h.via for h in trail.hops if h.via is not None))
        return cls(trail.id, tuple(trail.links()), rate_bps, trail.cls, nodes)


@dataclass(frozen=True)
class HostLoad:
    """Load of a computing node (from a validated sdnscent-agent sample).

    `cpu` and `memory` are busy fractions (0..1) of what the node may use: of
    its cgroup's quota and limit where it has them, else of the machine.
    """

    node: str
    time: float
    cpu: float
    memory: float
    cpu_limit: float | None = None  # cores the node may use now (None: unlimited)
    mem_limit: int | None = None  # bytes (None: unlimited)
    mem_used: int = 0
    # cores used by the node's own cgroup; None: no cgroup of its own (the
    # figures are the machine's), and the node is not sized by the engine
    cpu_cores: float | None = None


# Configuration ---------------------------------------------------------------

@dataclass(frozen=True)
class ClassRule:
    """Bandwidth rule of a data class: a rate cap (absolute and/or a share)."""

    cap_bps: float | None = None
    cap_share: float | None = None  # of the narrowest link capacity on the trail

    def cap(self, capacity: float | None) -> float | None:
        """The meter rate for a trail whose narrowest link has `capacity`."""
        caps = [c for c in (self.cap_bps, None if capacity is None or self.cap_share is None
                             else self.cap_share * capacity) if c is not None]
        return min(caps) if caps else None


@dataclass(frozen=True)
class AllocConfig:
    """Sizing rules for computing nodes' CPU (cores) and memory (bytes)."""

    cpu_min: float = 0.1
    cpu_max: float = 2.0
    cpu_initial: float = 0.5
    mem_min: int = 64 << 20
    mem_max: int = 1 << 30
    mem_initial: int = 256 << 20
    cpu_target: float = 0.65  # size so the busy fraction lands here
    mem_high: float = 0.85
    mem_low: float = 0.3
    mem_target: float = 0.6
    hold_time: float = 10.0  # s between two changes of one node
    min_change: float = 0.05  # relative; smaller changes are not worth a write

    def __post_init__(self) -> None:
        if not 0 < self.cpu_min <= self.cpu_initial <= self.cpu_max:
            raise ValueError("allocation: need 0 < cpu_min <= cpu_initial <= cpu_max")
        if not 0 < self.mem_min <= self.mem_initial <= self.mem_max:
            raise ValueError("allocation: need 0 < mem_min <= mem_initial <= mem_max")
        if not 0 < self.mem_low < self.mem_target < self.mem_high <= 1:
            raise ValueError("allocation: need 0 < mem_low < mem_target < mem_high <= 1")


@dataclass(frozen=True)
class DraConfig:
    """Thresholds and bounds of the engine (defaults: docs/telemetry.rst)."""

    link_high: float = 0.8  # a link becomes hot at or above this utilisation
    link_low: float = 0.6  # ... and cools at or below this; moves aim here
    spare: float = 0.3  # links at or below this are reported as under-used
    cpu_high: float = 0.85  # a node becomes hot at or above this busy fraction
    cpu_low: float = 0.5  # ... and cools at or below this
    hold_time: float = 30.0  # s a moved trail stays where it was put
    max_moves: int = 4  # trails moved per period, at most
    period: float = 1.0  # s: the window of max_moves (the telemetry period)
    settle_time: float = 5.0  # s until a move shows in smoothed measurements
    min_share: float = 0.01  # trails below this share of a hot link are not worth moving
    pinned_classes: frozenset[str] = frozenset()  # classes never moved
    # Move the largest contributors off hot links. The controller turns this off:
    # its global placement of elephants (sdnscent.placement) owns link load, since
    # elastic TCP makes every link it crosses look hot (docs/decisions.rst).
    move_links: bool = True
    classes: Mapping[str, ClassRule] = field(default_factory=dict)
    alloc: AllocConfig | None = field(default_factory=AllocConfig)  # None: no allocations

    def __post_init__(self) -> None:
        for low, high, what in ((self.link_low, self.link_high, "link"),
                                (self.cpu_low, self.cpu_high, "cpu")):
            if not 0 < low < high:
                raise ValueError(f"{what}: need 0 < low-water {low} < high-water {high}")
        if self.alloc is not None and not self.cpu_low < self.alloc.cpu_target < self.cpu_high:
            raise ValueError("allocation: need cpu_low < cpu_target < cpu_high")
        if self.max_moves < 0 or self.hold_time < 0 or self.period <= 0:
            raise ValueError("need max_moves >= 0, hold_time >= 0 and period > 0")


# Outputs ----------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    """Move one trail: re-plan it avoiding the given links and nodes."""

    trail_id: int
    why: str  # "link-hot" or "node-hot"
    hot: str  # the link (dpid:port) or node that triggered the move
    rate_bps: float
    avoid_links: tuple[LinkKey, ...]
    avoid_edges: tuple[EdgeKey, ...]  # the same links as (src, dst, port), where dst is known
    avoid_nodes: tuple[str, ...]
    reason: str  # for the event log


@dataclass(frozen=True)
class MeterDecision:
    """Set (rate_bps) or remove (None) the meter of a trail."""

    trail_id: int
    rate_bps: float | None
    reason: str


@dataclass(frozen=True)
class Allocation:
    """Give a computing node this much CPU (cores) and memory (bytes)."""

    node: str
    cpu: float
    memory: int
    reason: str


@dataclass(frozen=True)
class DraEvent:
    """One line for the controller's event log (ScentController.record)."""

    kind: str  # dra-hot, dra-cool, dra-move, dra-stuck, dra-meter, dra-alloc
    message: str
    trail: int | None = None


@dataclass(frozen=True)
class DraPlan:
    """What the engine decided in one step."""

    time: float
    moves: tuple[Decision, ...] = ()
    meters: tuple[MeterDecision, ...] = ()
    allocations: tuple[Allocation, ...] = ()
    events: tuple[DraEvent, ...] = ()
    hot_links: tuple[LinkKey, ...] = ()
    hot_nodes: tuple[str, ...] = ()
    spare_links: tuple[LinkKey, ...] = ()  # under-used, least used first
    spare_nodes: tuple[str, ...] = ()


# The engine -------------------------------------------------------------------

class DraEngine:
    """Hysteresis state, hold times and move history between steps.

    Call step() once per telemetry period. The engine assumes its decisions
    are applied; tell it about moves made for other reasons (link down) with
    moved(), and about allocations made elsewhere with set_allocation().
    """

    def __init__(self, config: DraConfig | None = None) -> None:
        self.config = config or DraConfig()
        self._hot_links: set[LinkKey] = set()
        self._hot_nodes: set[str] = set()
        self._stuck: set[str] = set()  # hot items already reported as having nothing to move
        self._moved: dict[int, float] = {}  # trail -> when it last moved
        self._recent: deque[float] = deque()  # times of recent moves (the per-period bound)
        self._link_relief: deque[tuple[float, LinkKey, float]] = deque()
        self._node_relief: deque[tuple[float, str, float]] = deque()
        self._meters: dict[int, float] = {}
        self._alloc: dict[str, tuple[float, int]] = {}
        self._alloc_at: dict[str, float] = {}
        self._no_path: dict[int, float] = {}  # trail -> when a move found no free path
        self._last: dict[int, TrailLoad] = {}  # the trails the last step moved

    # external facts ----------------------------------------------------
    def blocked(self, trail_id: int, now: float) -> None:
        """The move of `trail_id` decided at `now` found no path off its hot links.

        Its bookkeeping is undone (no hold time, no move counted, no expected
        relief) and it is not a candidate for `hold_time`: the next step
        picks the next largest contributor, one that fits elsewhere (an
        elephant that would fill any link stays; smaller trails leave it).
        """
        trail = self._last.get(trail_id)
        if self._moved.get(trail_id) == now:
            del self._moved[trail_id]
        if now in self._recent:
            self._recent.remove(now)
        if trail is not None:
            for entry in [(now, key, trail.rate_bps) for key in trail.links]:
                if entry in self._link_relief:
                    self._link_relief.remove(entry)
            for entry in [(now, node, trail.rate_bps) for node in trail.nodes]:
                if entry in self._node_relief:
                    self._node_relief.remove(entry)
        self._no_path[trail_id] = now

    def moved(self, trail_id: int, now: float) -> None:
        """`trail_id` moved at `now` for another reason: its hold time starts."""
        self._moved[trail_id] = now

    def moved_at(self, trail_id: int) -> float | None:
        """When `trail_id` last moved, or None."""
        return self._moved.get(trail_id)

    def forget(self, trail_id: int) -> None:
        """The trail is gone."""
        self._moved.pop(trail_id, None)
        self._meters.pop(trail_id, None)

    def set_allocation(self, node: str, cpu: float, memory: int, now: float | None = None) -> None:
        """The node's allocation is (cpu cores, memory bytes), e.g. after a restart."""
        self._alloc[node] = (cpu, memory)
        if now is not None:
            self._alloc_at[node] = now

    def allocation(self, node: str) -> tuple[float, int] | None:
        """The (cpu, memory) the engine last decided or was told for `node`."""
        return self._alloc.get(node)

    # the step ----------------------------------------------------------
    def step(self, links: Iterable[LinkLoad], trails: Iterable[TrailLoad],
             hosts: Mapping[str, HostLoad] | Iterable[HostLoad], now: float) -> DraPlan:
        """Decide on one snapshot taken at `now`."""
        cfg = self.config
        links_by = {lk.key: lk for lk in links}
        trails_by = {t.trail_id: t for t in trails}
        hosts_by = dict(hosts) if isinstance(hosts, Mapping) else {h.node: h for h in hosts}
        self._expire(now)
        events: list[DraEvent] = []

        on_link: dict[LinkKey, list[TrailLoad]] = {}
        on_node: dict[str, list[TrailLoad]] = {}
        for trail in trails_by.values():
            for key in trail.links:
                on_link.setdefault(key, []).append(trail)
            for node in trail.nodes:
                on_node.setdefault(node, []).append(trail)

        # hysteresis of links and nodes on the measured values
        self._hysteresis(self._hot_links, {k: lk.utilisation for k, lk in links_by.items()},
                         cfg.link_high, cfg.link_low, link_name,
                         lambda name, v: f"link {name} is hot: {_pct(v)} >= high-water "
                                         f"{_pct(cfg.link_high)}",
                         lambda name, v: f"link {name} cooled: {_pct(v)} <= low-water "
                                         f"{_pct(cfg.link_low)}", events)
        self._hysteresis(self._hot_nodes, {n: h.cpu for n, h in hosts_by.items()},
                         cfg.cpu_high, cfg.cpu_low, str,
                         lambda name, v: f"node {name} is hot: CPU {_pct(v)} >= threshold "
                                         f"{_pct(cfg.cpu_high)}",
                         lambda name, v: f"node {name} cooled: CPU {_pct(v)} <= "
                                         f"{_pct(cfg.cpu_low)}", events)

        # what the links carry once recent moves have settled
        projected = {key: max(0.0, lk.bps - self._relief_of(self._link_relief, key))
                     for key, lk in links_by.items()}
        node_rate = {n: sum(t.rate_bps for t in ts) for n, ts in on_node.items()}

        allocations = self._allocations(hosts_by, on_node, now, events)

        budget = max(0, cfg.max_moves - len(self._recent))
        chosen: dict[int, Decision] = {}

        def avoid_for(trail: TrailLoad) -> tuple[tuple[LinkKey, ...], tuple[EdgeKey, ...]]:
            own = set(trail.links)
            keys = set(self._hot_links)
            for key, lk in links_by.items():  # links this trail would push over high-water
                if key not in own and lk.capacity > 0 and \
                        (projected[key] + trail.rate_bps) / lk.capacity > cfg.link_high:
                    keys.add(key)
            ordered = tuple(sorted(keys))
            edges: list[EdgeKey] = []
            for key in ordered:
                dst = links_by[key].dst if key in links_by else None
                if dst is not None:
                    edges.append((key[0], dst, key[1]))
            return ordered, tuple(edges)

        def take(trail: TrailLoad, why: str, hot: str, reason: str) -> None:
            nonlocal budget
            avoid_links, avoid_edges = avoid_for(trail)
            chosen[trail.trail_id] = Decision(
                trail.trail_id, why, hot, trail.rate_bps, avoid_links, avoid_edges,
                tuple(sorted(self._hot_nodes)), reason)
            budget -= 1
            for key in trail.links:
                if key in projected:
                    projected[key] = max(0.0, projected[key] - trail.rate_bps)
            for node in trail.nodes:
                node_rate[node] = max(0.0, node_rate.get(node, 0.0) - trail.rate_bps)

        def movable(trail: TrailLoad) -> str | None:
            """Why `trail` cannot move now, or None."""
            if trail.trail_id in chosen:
                return "already moving"
            if trail.cls in cfg.pinned_classes:
                return f"class {trail.cls} is pinned"
            since = self._moved.get(trail.trail_id)
            if since is not None and now - since < cfg.hold_time:
                return f"held until {cfg.hold_time - (now - since):.0f} s from now"
            failed = self._no_path.get(trail.trail_id)
            if failed is not None and now - failed < cfg.hold_time:
                return "no path off the hot links"
            return None

        # hot links, hottest first: move the largest contributors until projected <= low-water
        def hotness(key: LinkKey) -> tuple[float, LinkKey]:
            cap = links_by[key].capacity
            return (-(projected[key] / cap if cap > 0 else 0.0), key)

        for key in sorted(self._hot_links if cfg.move_links else (), key=hotness):
            lk = links_by[key]
            if lk.capacity <= 0:
                continue
            name = link_name(key)
            target = cfg.link_low * lk.capacity
            candidates = sorted(on_link.get(key, []), key=lambda t: (-t.rate_bps, t.trail_id))
            blocked: list[str] = []
            for trail in candidates:
                if projected[key] <= target:
                    break
                if trail.rate_bps < cfg.min_share * lk.capacity:
                    break  # sorted: the rest are smaller still
                why_not = movable(trail)
                if why_not == "already moving":
                    continue
                if why_not is not None or budget <= 0:
                    blocked.append(f"trail {trail.trail_id} ({why_not or 'move bound reached'})")
                    continue
                util = projected[key] / lk.capacity
                reason = (f"link {name} at {_pct(lk.utilisation)} (projected {_pct(util)}, "
                          f"high-water {_pct(cfg.link_high)}): trail {trail.trail_id} carries "
                          f"{_rate(trail.rate_bps)} ({_pct(trail.rate_bps / lk.capacity)} of "
                          f"the link), the largest movable contributor")
                take(trail, "link-hot", name, reason)
            if projected[key] > target:
                self._report_stuck(name, f"link {name} stays hot at "
                                   f"{_pct(projected[key] / lk.capacity)}", blocked, events)

        # hot nodes that cannot grow: move trails through them, largest first
        for node in sorted(self._hot_nodes):
            if node not in hosts_by or self._can_grow(node, hosts_by[node]):
                continue  # the allocation grows first (_allocations)
            # the measured CPU still includes trails moved off recently
            total = sum(t.rate_bps for t in on_node.get(node, [])) \
                + self._relief_of(self._node_relief, node)
            if total <= 0:
                self._report_stuck(node, f"node {node} stays hot", ["no trail crosses it"],
                                   events)
                continue
            cpu = hosts_by[node].cpu
            candidates = sorted(on_node.get(node, []), key=lambda t: (-t.rate_bps, t.trail_id))
            blocked = []
            for trail in candidates:
                if cpu * node_rate[node] / total <= cfg.cpu_low:
                    break
                why_not = movable(trail)
                if why_not == "already moving":
                    continue
                if why_not is not None or budget <= 0:
                    blocked.append(f"trail {trail.trail_id} ({why_not or 'move bound reached'})")
                    continue
                reason = (f"node {node} at CPU {_pct(cpu)} (threshold {_pct(cfg.cpu_high)}) and "
                          f"at its allocation limit: trail {trail.trail_id} carries "
                          f"{_rate(trail.rate_bps)} ({_pct(trail.rate_bps / total)} of the "
                          f"node's trail traffic), the largest movable contributor")
                take(trail, "node-hot", node, reason)
            if cpu * node_rate[node] / total > cfg.cpu_low:
                self._report_stuck(node, f"node {node} stays hot at CPU {_pct(cpu)}", blocked,
                                   events)

        # record the moves: hold times, the per-period bound, the expected relief
        self._last = {i: trails_by[i] for i in chosen}
        for decision in chosen.values():
            trail = trails_by[decision.trail_id]
            self._moved[trail.trail_id] = now
            self._recent.append(now)
            for key in trail.links:
                self._link_relief.append((now, key, trail.rate_bps))
            for node in trail.nodes:
                self._node_relief.append((now, node, trail.rate_bps))
            events.append(DraEvent("dra-move", f"move trail {trail.trail_id}: "
                                   f"{decision.reason}", trail.trail_id))

        meters = self._meter_decisions(trails_by, links_by, events)
        spare = sorted((lk.utilisation, key) for key, lk in links_by.items()
                       if lk.capacity > 0 and lk.utilisation <= cfg.spare)
        return DraPlan(
            time=now, moves=tuple(chosen.values()), meters=tuple(meters),
            allocations=tuple(allocations), events=tuple(events),
            hot_links=tuple(sorted(self._hot_links)), hot_nodes=tuple(sorted(self._hot_nodes)),
            spare_links=tuple(key for _, key in spare),
            spare_nodes=tuple(sorted(n for n, h in hosts_by.items() if h.cpu <= cfg.cpu_low)))

    # internals ---------------------------------------------------------
    def _hysteresis(self, hot: set[Any], values: Mapping[Any, float], high: float, low: float,
                    name_of: Callable[[Any], str], hot_text: Callable[[str, float], str],
                    cool_text: Callable[[str, float], str], events: list[DraEvent]) -> None:
        """Mark items hot at `high` and cool again at `low`; items gone are forgotten."""
        for key in sorted(hot - values.keys()):
            hot.discard(key)
            self._stuck.discard(name_of(key))
        for key in sorted(values):
            value = values[key]
            if key not in hot and value >= high:
                hot.add(key)
                events.append(DraEvent("dra-hot", hot_text(name_of(key), value)))
            elif key in hot and value <= low:
                hot.discard(key)
                self._stuck.discard(name_of(key))
                events.append(DraEvent("dra-cool", cool_text(name_of(key), value)))

    def _expire(self, now: float) -> None:
        cfg = self.config
        while self._recent and now - self._recent[0] >= cfg.period:
            self._recent.popleft()
        for relief in (self._link_relief, self._node_relief):
            while relief and now - relief[0][0] >= cfg.settle_time:
                relief.popleft()
        for trail_id in [t for t, at in self._moved.items() if now - at >= cfg.hold_time]:
            del self._moved[trail_id]
        for trail_id in [t for t, at in self._no_path.items() if now - at >= cfg.hold_time]:
            del self._no_path[trail_id]

    def _current(self, node: str, host: HostLoad) -> tuple[float, int]:
        """The node's (cpu, memory) now: as measured, else as decided, else the initial."""
        alloc = self.config.alloc or AllocConfig()
        cpu, mem = self._alloc.get(node, (alloc.cpu_initial, alloc.mem_initial))
        return (cpu if host.cpu_limit is None else host.cpu_limit,
                mem if host.mem_limit is None else host.mem_limit)

    def _can_grow(self, node: str, host: HostLoad) -> bool:
        """True if allocations are on and `node` (a cgroup) is below its CPU maximum."""
        alloc = self.config.alloc
        if alloc is None or host.cpu_cores is None:
            return False
        return self._current(node, host)[0] < alloc.cpu_max * (1 - alloc.min_change)

    @staticmethod
    def _relief_of(relief: Iterable[tuple[float, object, float]], key: object) -> float:
        return sum(bps for _, k, bps in relief if k == key)

    def _report_stuck(self, name: str, what: str, blocked: list[str],
                      events: list[DraEvent]) -> None:
        """Say once per hot episode that nothing (more) can be moved."""
        if name in self._stuck:
            return
        self._stuck.add(name)
        detail = "; ".join(blocked[:5]) if blocked else "no movable trail large enough"
        events.append(DraEvent("dra-stuck", f"{what}: {detail}"))

    def _meter_decisions(self, trails: Mapping[int, TrailLoad], links: Mapping[LinkKey, LinkLoad],
                         events: list[DraEvent]) -> list[MeterDecision]:
        out = []
        for trail_id in sorted(trails):
            trail = trails[trail_id]
            rule = self.config.classes.get(trail.cls)
            caps = [links[k].capacity for k in trail.links if k in links]
            rate = rule.cap(min(caps) if caps else None) if rule is not None else None
            old = self._meters.get(trail_id)
            if rate is None:
                if old is not None:
                    del self._meters[trail_id]
                    out.append(MeterDecision(trail_id, None, f"class {trail.cls} has no rate "
                                             "cap: meter removed"))
                continue
            if old is not None and math.isclose(old, rate, rel_tol=0.01):
                continue
            self._meters[trail_id] = rate
            out.append(MeterDecision(trail_id, rate, f"class {trail.cls} is capped at "
                                     f"{_rate(rate)}"))
        for trail_id in sorted(self._meters.keys() - trails.keys()):
            del self._meters[trail_id]  # the trail is gone and its meter with it
        for m in out:
            events.append(DraEvent("dra-meter", f"trail {m.trail_id}: {m.reason}", m.trail_id))
        return out

    def _allocations(self, hosts: Mapping[str, HostLoad], on_node: Mapping[str, list[TrailLoad]],
                     now: float, events: list[DraEvent]) -> list[Allocation]:
        """Size computing nodes so their busy fractions land on the targets."""
        alloc = self.config.alloc
        if alloc is None:
            return []
        cfg = self.config
        out = []
        for node in sorted(set(on_node) | self._alloc.keys()):
            host = hosts.get(node)
            if host is None or host.cpu_cores is None:
                continue  # no fresh measurement of its own cgroup: no decision
            last = self._alloc_at.get(node)
            if last is not None and now - last < alloc.hold_time:
                continue
            cpu, mem = self._current(node, host)
            new_cpu, new_mem = cpu, mem
            why = []
            busy = host.cpu_cores / cpu
            if busy >= cfg.cpu_high or busy <= cfg.cpu_low:
                want = min(alloc.cpu_max, max(alloc.cpu_min, host.cpu_cores / alloc.cpu_target))
                if abs(want - cpu) > alloc.min_change * cpu:
                    new_cpu = want
                    why.append(f"CPU {_pct(busy)} of {cpu:.2f} cores -> {want:.2f} cores")
            used = host.mem_used / mem
            if used >= alloc.mem_high or used <= alloc.mem_low:
                want_mem = int(min(alloc.mem_max, max(alloc.mem_min,
                                                      host.mem_used / alloc.mem_target)))
                if abs(want_mem - mem) > alloc.min_change * mem:
                    new_mem = want_mem
                    why.append(f"memory {_pct(used)} of {mem >> 20} MiB -> "
                               f"{want_mem >> 20} MiB")
            self._alloc.setdefault(node, (cpu, mem))
            if not why:
                continue
            rate = sum(t.rate_bps for t in on_node.get(node, []))
            reason = (f"node {node} carries {_rate(rate)} of trail traffic: "
                      + "; ".join(why))
            self._alloc[node] = (new_cpu, new_mem)
            self._alloc_at[node] = now
            out.append(Allocation(node, round(new_cpu, 4), new_mem, reason))
            events.append(DraEvent("dra-alloc", reason))
        return out
