"""Load: counters, host samples and the allocation engine's moves."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from ..dra import HostLoad, TrailLoad
from ..planner import NoPathError
from ..store import StoreError
from ..telemetry import PortCounters
from ..topology import TopologyError
from ..trails import TrailState
from .model import (
    AVOID,
    MOVE_ROUNDS,
    Change,
    NoFreePath,
    is_pinned,
)
from .state import CoreState

LOG = logging.getLogger("sdnscent.controller")


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
        measured = {k: round(v, 2) for k, v in util.items()}
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
        return change.merge(self.s.multipath.reweigh_multipath(now)), allocations
