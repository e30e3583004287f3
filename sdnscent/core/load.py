"""Load: counters, host samples and the allocation engine's moves."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from .. import bundles
from ..dra import HostLoad, TrailLoad
from ..elephants import FlowRate, elephants, natural_demands
from ..placement import exact_assignment, first_moves, place
from ..planner import NoPathError
from ..store import StoreError
from ..telemetry import PortCounters, TrailUsage
from ..topology import TopologyError
from ..trails import Hop, Trail, TrailState
from .model import (
    AVOID,
    LOAD_DRAIN,
    MOVE_ROUNDS,
    ROUTING_SCENT,
    Change,
    NoFreePath,
    is_pinned,
)
from .state import CoreState

LOG = logging.getLogger("sdnscent.controller")

ELEPHANT_MEMORY = 5.0  # s a trail stays an elephant after its rate was last that high
KEEP_SHARE = 0.05  # of the source NIC: an elephant squeezed this low still is one
PLACEMENT_MOVES = 32  # elephants moved per period, at most
ENDED_SHARE = 0.01  # of the source NIC: a latest reading below this is a flow that ended
ENDED_READINGS = 2  # periods in a row that idle (one can be a TCP timeout's pause)
OFFLOAD_SECONDS = 3.0  # time limit of the exact assignment on the glue's solver thread
DEMAND_GRAIN = 0.1  # of the smallest NIC: demands that moved less ask no new exact answer


class LoadManager:
    """Load; shares the core's state."""

    def __init__(self, s: CoreState) -> None:
        self.s = s

    def port_counters(self, dpid: int, stats: Iterable[PortCounters]) -> None:
        """Apply a switch's port statistics (link load)."""
        self.s.telemetry.port_stats(dpid, stats, self.s.clock())

    def read_node_loads(self) -> dict[str, HostLoad]:
        """Fresh, valid host load samples from the store (sdnscent-agent); {} if unreachable."""
        try:
            samples = self.s.store.node_loads()
        except StoreError as exc:
            LOG.debug("no host load: %s", exc)
            return self.s.node_loads
        self.s.node_loads = {**self.s.node_reader.read(samples, self.s.clock()), **self.s.measured}
        return self.s.node_loads

    def computing_nodes(self) -> list[str]:
        """Names of the policy's network functions: the nodes whose CPU and memory are sized."""
        return sorted(spec.name for spec in self.s.policy.network_functions())

    def rebalance(self, measured: Mapping[str, HostLoad] | None = None
                  ) -> tuple[Change, list[Any]]:
        """One period of the resource allocation engine: (moves as a Change, allocations).

        `measured`: load of computing nodes as the allocator backend measures
        their cgroups; it wins over the agents' samples of the same node.

        Moved trails are re-planned with load-aware costs, their hot links made
        expensive enough to leave when any other path exists, and installed
        make-before-break (replan). Allocations (CPU and memory of computing
        nodes) are returned for the glue's allocator backend.
        """
        now = self.s.clock()
        self.s.telemetry.prune(now)
        util = self.s.telemetry.utilisation(self.s.topo, now)
        usages = self.s.telemetry.trail_usages(now)
        # A trail's rate is the larger of its smoothed and latest reading: a ramping
        # elephant must not look small enough to fit on another link.
        trails = [TrailLoad.from_trail(t, max(usages[t.id].bps, usages[t.id].last_bps)
                                       if t.id in usages else 0.0)
                  for t in self.s.store.all()
                  if t.state is TrailState.ACTIVE and not t.grouped and not is_pinned(t)]
        self.s.measured = dict(measured or {})
        hosts = self.read_node_loads()
        plan = self.s.dra.step(self.s.telemetry.link_loads(self.s.topo, now), trails, hosts, now)
        change, allocations = Change(), list(plan.allocations)
        # Load-aware planning of new trails is sdnscent's; the baselines plan without load.
        measured = {k: round(v, 2) for k, v in util.items()} \
            if self.s.routing == ROUTING_SCENT else {}
        for _ in range(MOVE_ROUNDS):
            blocked = set()
            for move in plan.moves:
                # the planner sees the links to leave as full: any other path is cheaper
                self.s.planner.utilisation = {**measured, **{k: AVOID for k in move.avoid_links}}
                try:
                    change.merge(self.s.trails.replan(move.trail_id, f"load: {move.reason}",
                                             avoid=frozenset(move.avoid_links)))
                    self.s.moves += 1
                except NoFreePath as exc:
                    self.s.dra.blocked(move.trail_id, now)
                    blocked.add(move.trail_id)
                    self.s.record("dra-stuck", f"{exc}; trail {move.trail_id} stays "
                                "(the next largest that fits elsewhere moves instead)",
                                move.trail_id)
                except (NoPathError, TopologyError) as exc:
                    self.s.record("dra-stuck", f"trail {move.trail_id} not moved: {exc}",
                                move.trail_id)
            for event in plan.events:
                if not (event.kind == "dra-move" and event.trail in blocked):
                    self.s.record(event.kind, event.message, event.trail)
            self.s.planner.utilisation = measured  # later trails see the load too
            if not blocked:
                break
            plan = self.s.dra.step(self.s.telemetry.link_loads(self.s.topo, now), trails,
                                 self.s.node_loads, now)
            allocations += plan.allocations
        if self.s.routing == ROUTING_SCENT:
            change.merge(self.place_elephants(now, usages))
        return change.merge(self.s.multipath.reweigh_multipath(now)), allocations

    def place_elephants(self, now: float, usages: Mapping[int, TrailUsage]) -> Change:
        """One period of the global placement: elephants to paths, make-before-break.

        Elephants are trails at ELEPHANT_SHARE of their source NIC or more (and
        stay ones down to KEEP_SHARE);
        their natural demand is estimated over the NICs (Hedera), and all of
        them are placed together on candidate paths the policy allows
        (sdnscent.placement), whose hysteresis keeps them still unless a new
        placement is clearly better. Mice, ACK trails, pinned trails, trails
        still moving and the legs of split trails never move. An elephant's TCP
        connections are counted, and two or more elephant connections of one
        trail get trails of their own first (core/connections.py).
        """
        s = self.s
        hosts = s.topo.hosts
        nic = {mac: float(s.topo.link_capacity(h.dpid, h.port)) for mac, h in hosts.items()}
        # Trails within one edge switch never move, but their flows share the hosts'
        # NICs: left out, a flow into a host that also receives a local one looks
        # twice as large as it can be, and the placement fights an overload that
        # is not there.
        measured = {t.id: t for t in s.store.all()
                    if t.state in (TrailState.ACTIVE, TrailState.REROUTING) and not t.grouped
                    and t.src_mac in hosts and t.dst_mac in hosts}
        crossing = [t for t in measured.values()
                    if hosts[t.src_mac].dpid != hosts[t.dst_mac].dpid]
        rates = {t.id: FlowRate(t.id, t.src_mac, t.dst_mac,
                                _rate(usages.get(t.id), nic[t.src_mac]))
                 for t in measured.values()}
        # An elephant stays one while it carries KEEP_SHARE of its NIC and for
        # ELEPHANT_MEMORY s after (a move resets its counters; a flow squeezed by a
        # collision must not turn into a mouse and be run over, nor leave the other
        # flows of its hosts looking larger, so that the next period places them
        # all again on demands that changed by a host's share), unless its flow
        # ended: an idle reading, not just after a move. Kept, its smoothed rate
        # would hold a phantom share of its host's NIC for seconds.
        # Two idle periods in a row: one can be a squeezed flow's retransmit timeout.
        for f in elephants(rates.values(), nic):
            s.elephant_seen[f.trail_id] = now
        for t in s.elephant_seen:  # squeezed by a collision, its demand is not smaller
            if t in rates and rates[t].rate_bps >= KEEP_SHARE * nic[measured[t].src_mac]:
                s.elephant_seen[t] = now
        for t, at in list(s.elephant_seen.items()):
            moved = s.dra.moved_at(t)
            idle = t in measured and t in usages \
                and rates[t].rate_bps < ENDED_SHARE * nic[measured[t].src_mac] \
                and (moved is None or now - moved > ELEPHANT_MEMORY)
            s.elephant_idle[t] = s.elephant_idle.get(t, 0) + 1 if idle else 0
            if t not in measured or now - at > ELEPHANT_MEMORY \
                    or s.elephant_idle[t] >= ENDED_READINGS:
                del s.elephant_seen[t]
        for t in [t for t in s.elephant_idle if t not in s.elephant_seen]:
            del s.elephant_idle[t]
        counting = s.connections.count(crossing, set(s.elephant_seen)).merge(
            s.connections.split(nic))
        return counting.merge(self._place(now, measured, rates, nic))

    def _place(self, now: float, measured: Mapping[int, Trail], rates: Mapping[int, FlowRate],
               nic: Mapping[str, float]) -> Change:
        """Place the elephants of `measured` (place_elephants)."""
        s = self.s
        pinned = s.dra.config.pinned_classes
        big = [rates[t] for t in sorted(s.elephant_seen)]
        if not big:
            s.placement = {"time": now, "elephants": [], "moves": [], "reason": "no elephants"}
            return Change()
        # every elephant shares the NICs; those that may not move are fixed load
        demands = natural_demands(big, nic)
        candidates: dict[int, list[tuple[Hop, ...]]] = {}
        for t in demands:
            trail = measured[t]
            if trail.state is TrailState.ACTIVE and not is_pinned(trail) \
                    and trail.cls not in pinned and len(trail.hops) > 1:
                found = s.trails.candidate_hops(trail)
                if found:
                    candidates[t] = found
        fixed = {t: d for t, d in demands.items() if t not in candidates}
        demands = {t: d for t, d in demands.items() if t in candidates}
        capacity = {lk.key: lk.capacity for lk in s.telemetry.link_loads(s.topo, now)}
        for hops_list in candidates.values():
            for hops in hops_list:
                for key in _links_of(hops):
                    capacity.setdefault(key, float(s.topo.link_capacity(*key)))
        # What does not move: the mice as their counters show them, and the
        # natural demand of the elephants that may not move.
        background: dict[tuple[int, int], float] = {}
        for t, trail in measured.items():
            load = fixed.get(t, 0.0 if t in demands else rates[t].rate_bps)
            for key in trail.links():
                background[key] = background.get(key, 0.0) + load
        if not demands:
            s.placement = {"time": now, "elephants": [
                {"trail": t, "rate_bps": round(rates[t].rate_bps), "demand_bps": round(d),
                 "moves": False} for t, d in sorted(fixed.items())],
                "moves": [], "reason": "no elephant may move"}
            return Change()
        paths = {t: [_links_of(h) for h in hs] for t, hs in candidates.items()}
        current = {t: _links_of(measured[t].hops) for t in demands}
        unit = min(nic[measured[t].src_mac] for t in demands)
        solver = s.exact_solver
        result = place(demands, paths, current, capacity, background, nic=unit,
                       exact=solver is None, hint=s.exact_hint)
        if solver is not None and result.after.overload > 0 and len(demands) > 1:
            self._solve_elsewhere(solver, demands, paths, current, capacity, background, unit)
        moves = first_moves(result, demands, paths, current, capacity, background,
                            PLACEMENT_MOVES)
        s.placement = {
            "time": now, "reason": result.reason,
            "before": result.before.__dict__, "after": result.after.__dict__,
            "elephants": [{"trail": t, "rate_bps": round(rates[t].rate_bps), "demand_bps": round(d),
                           "moves": t in demands}
                          for t, d in sorted({**demands, **fixed}.items())],
            "moves": moves, "waiting": [t for t in result.moves if t not in moves],
            **({"exact": dict(s.exact_status)} if s.exact_status else {})}
        change = Change()
        if moves:
            s.record("placement", f"{len(demands)} elephants placed, "
                     f"{len(moves)} moved: {result.reason}")
        for t in moves:
            hops = candidates[t][result.choice[t]]
            try:
                change.merge(s.trails.replan(t, f"placement: {demands[t] / 1e6:.3g} Mbit/s "
                                            "elephant", hops=hops, drain=LOAD_DRAIN))
            except (NoPathError, TopologyError) as exc:
                s.record("dra-stuck", f"elephant trail {t} not moved: {exc}", t)
                continue
            s.moves += 1
            s.dra.moved(t, now)
            change.merge(self._mirror(measured[t], hops, set(s.elephant_seen)))
        # An elephant that stays put keeps its reply where the reply was first
        # made: off the mirror when a link's load step hid the mirror then, its
        # acknowledgements may queue behind another elephant (measured, stride 2:
        # two flows at 60 % while no two elephants shared a link). Align them.
        for t in sorted(set(demands) - set(moves)):
            change.merge(self._mirror(measured[t], measured[t].hops, set(s.elephant_seen)))
        return change

    def _solve_elsewhere(self, solver: Any, demands: Mapping[int, float],
                         paths: Mapping[int, list[tuple[tuple[int, int], ...]]],
                         current: Mapping[int, tuple[tuple[int, int], ...]],
                         capacity: Mapping[tuple[int, int], float],
                         background: Mapping[tuple[int, int], float], unit: float) -> None:
        """Ask the glue's solver thread for the exact assignment of this snapshot; its
        answer is the next periods' hint (place() takes it where it scores better on
        their demands). A snapshot like the last one asked (same elephants, demands
        within DEMAND_GRAIN of a NIC) is not asked again: the answer would be the same."""
        s = self.s
        grain = DEMAND_GRAIN * unit
        key = tuple(sorted((t, round(d / grain)) for t, d in demands.items()))
        if key == s.exact_key:
            return
        snapshot = (dict(demands), {t: list(p) for t, p in paths.items()}, dict(current),
                    dict(capacity), dict(background))
        asked = s.clock()

        def job() -> dict[int, tuple[tuple[int, int], ...]] | None:
            return exact_assignment(*snapshot, time_limit=OFFLOAD_SECONDS)

        def done(answer: dict[int, tuple[tuple[int, int], ...]] | None) -> None:
            s.exact_status = {"asked": asked, "answered": s.clock(), "elephants": len(key),
                              "found": answer is not None}
            if answer is not None:
                s.exact_hint = answer
            elif s.exact_key == key:
                s.exact_key = None  # no answer in time: ask again next period

        if solver(job, done):
            s.exact_key = key

    def _mirror(self, trail: Trail, hops: tuple[Hop, ...], elephants: set[int]) -> Change:
        """Move the reply trail of a moved elephant onto the mirror of its new path.

        Request and reply then cross the same switches again (stateful network
        functions need that), and the acknowledgements of a flow do not queue
        behind another elephant. Only a reply trail that is not an elephant
        itself, may move and has the mirror among its policy's candidates.
        """
        s = self.s
        if trail.connection is not None:  # one of several connections: the pair's ACKs stay
            return Change()
        reply = s.trails.trail_for_pair(trail.dst_mac, trail.src_mac, trail.app, trail.family)
        if reply is None or reply.id in elephants or reply.state is not TrailState.ACTIVE \
                or reply.grouped or is_pinned(reply):
            return Change()
        path = [h.dpid for h in reversed(hops)]
        try:
            mirror = s.static_planner.hops_along(s.host(reply.src_mac), s.host(reply.dst_mac),
                                                 path)
        except (NoPathError, TopologyError):
            return Change()
        if mirror == reply.hops or mirror not in s.trails.candidate_hops(reply):
            return Change()
        try:
            return s.trails.replan(reply.id, f"reply of elephant trail {trail.id}",
                                   hops=mirror, drain=LOAD_DRAIN)
        except (NoPathError, TopologyError):
            return Change()


def _rate(usage: TrailUsage | None, nic: float) -> float:
    """What a trail carries now: its latest reading when that is idle (the flow
    ended; the smoothed rate lags for seconds), else the larger of the
    smoothed rate and the latest reading (a ramp shows there first)."""
    if usage is None:
        return 0.0
    if usage.last_bps < ENDED_SHARE * nic:
        return usage.last_bps
    return max(usage.bps, usage.last_bps)


def _links_of(hops: tuple[Hop, ...]) -> tuple[tuple[int, int], ...]:
    """A path's inter-switch links as a hashable key (bundles.leg_links, as a tuple)."""
    return tuple(bundles.leg_links(hops))
