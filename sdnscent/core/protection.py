"""Fast-failover protection of trails: arm with the install, move with a re-plan,
re-arm after a topology change, give back on removal (sdnscent/protection.py)."""

from __future__ import annotations

from collections.abc import Iterable

from .. import bundles, compiler
from ..compiler import Op, Step
from ..constraints import app_constraints, network_functions, node_attrs
from ..flows import FlowSpec, Group, cookie_kind
from ..pipeline import (
    COOKIE_ID_MAX,
    KIND_PROTECTION,
    KIND_TRAIL,
    PROTECTION_GROUP_MAX,
    PROTECTION_GROUP_MIN,
)
from ..protection import (
    Armed,
    DetourPlanner,
    Guard,
    ProtectionTable,
    check_mode,
    guarded_hop_flows,
    rejoin_flows,
)
from ..trails import DEAD_STATES, Trail
from .model import Change
from .state import CoreState

CACHE_MAX = 64  # detour planners kept (one per application and exclusion set)


class ProtectionManager:
    """Backup detours and fast-failover groups of every live trail; `mode` is
    "link", "node" or "none" (--protection)."""

    def __init__(self, s: CoreState, mode: str = "none") -> None:
        self.s = s
        self.mode = check_mode(mode)
        self.table = ProtectionTable()
        self._users: dict[int, int] = {}  # trail id -> its current user key in the table
        self._next_user = 1
        self._planners: dict[tuple[object, ...], DetourPlanner] = {}

    # -- planning ---------------------------------------------------------------------------
    def _planner(self, trail: Trail) -> DetourPlanner:
        s = self.s
        profile = s.policy.app(trail.app)
        if profile is None:
            key: tuple[object, ...] = ("", s.topo.version)
        else:
            links, switches = s.trails.isolation_exclusions(profile, trail)
            key = (id(s.policy), profile.name, s.topo.version, id(s.planner.utilisation),
                   frozenset(links), frozenset(switches))
        planner = self._planners.get(key)
        if planner is None:
            if profile is None:
                planner = DetourPlanner(s.topo)
            else:
                attrs = node_attrs(s.topo, s.policy, network_functions(s.policy, s.topo))
                rules = app_constraints(profile, s.policy, s.topo, attrs,
                                        utilisation=s.planner.utilisation,
                                        isolated_links=links, isolated_switches=switches)
                planner = DetourPlanner(s.topo, rules, s.policy.weights_of(profile))
            if len(self._planners) >= CACHE_MAX:
                self._planners.clear()
            self._planners[key] = planner
        return planner

    def guards(self, trail: Trail) -> tuple[Guard, ...]:
        """The protection `trail` should have now (every hop unprotected when off)."""
        guards = self._planner(trail).guards(trail, self.mode if self.mode != "none" else "none")
        if trail.grouped:  # a service's select group outputs at the ingress itself
            guards = tuple(Guard(g.index, g.dpid, g.port, "none",
                                 reason="the service's select group outputs at the ingress")
                           if g.index == 0 else g for g in guards)
        return guards

    def _eligible(self, trail: Trail) -> bool:
        return self.mode != "none" and bundles.head_of(trail) is None and len(trail.hops) > 1

    def _arm(self, trail: Trail) -> tuple[int, Armed, list[Op]]:
        user = self._next_user
        self._next_user += 1
        guards = self.guards(trail)
        armed, ops = self.table.arm(trail.evolve(id=user), guards)
        for guard in armed.guards:
            if guard.kind == "none":
                self.s.record("unprotected", f"trail {trail.id} hop {guard.index} "
                              f"({self.s.topo.switch_name(guard.dpid)} port {guard.port}) has no "
                              f"backup: {guard.reason}", trail.id)
        return user, armed, ops

    def hop_flows(self, trail: Trail) -> list[FlowSpec]:
        """The trail's table-1 entries as installed: protected hops into their groups."""
        return guarded_hop_flows(trail, self.armed(trail.id))

    def armed(self, trail_id: int) -> Armed | None:
        """The protection trail `trail_id` holds now (None: none)."""
        user = self._users.get(trail_id)
        return self.table.armed.get(user) if user is not None else None

    # -- the trail lifecycle ------------------------------------------------------------------
    def install_steps(self, trail: Trail, steps: list[Step]) -> list[Step]:
        """`steps` of a trail's install with its protection: groups and detours first,
        each protected hop's entry into its group, rejoin entries with the path."""
        if not self._eligible(trail):
            return steps
        armed = self.armed(trail.id)
        ops: list[Op] = []
        if armed is None:  # a retry keeps what the trail holds already
            user, armed, ops = self._arm(trail)
            self._users[trail.id] = user
        out = guard_steps(steps, trail, armed)
        return [compiler.group_ops(ops), *out] if ops else out

    def reroute(self, old: Trail, new: Trail, steps: list[Step]
                ) -> tuple[list[Step], list[Step], list[Step]]:
        """A re-plan's steps with protection: (steps before, `steps` changed, steps after).

        The new path is armed before it is installed; the old path's rejoin
        entries go with its stale entries, its groups and detours after them.
        """
        before_user = self._users.pop(old.id, None)
        was = self.table.armed.get(before_user) if before_user is not None else None
        ahead: list[Step] = []
        kept: set[tuple[object, ...]] = set()
        if self._eligible(new):
            user, armed, ops = self._arm(new)
            self._users[new.id] = user
            steps = guard_steps(steps, new, armed)
            kept = {f.key for f in rejoin_flows(new, armed)}
            if ops:
                ahead = [compiler.group_ops(ops)]
        stale_rejoins: list[Op] = [compiler.delete_exact(f) for f in rejoin_flows(old, was)
                                   if f.key not in kept] if was is not None else []
        if stale_rejoins:
            if len(steps) > 2:
                steps = [*steps[:-1], _merged(steps[-1], stale_rejoins)]
            else:
                steps = [*steps, compiler.group_ops(stale_rejoins)]
        after = []
        if before_user is not None:
            released = self.table.release(before_user)
            if released:
                after = [compiler.group_ops(released)]
        return ahead, steps, after

    def release(self, trail_id: int) -> list[Op]:
        """A removed trail's share: deletes of the groups and detours nobody uses now
        (sent after the trail's own flows are deleted)."""
        user = self._users.pop(trail_id, None)
        return self.table.release(user) if user is not None else []

    def rearm(self) -> Change:
        """Re-arm every protected trail whose guards changed with the topology (a
        detour lost a link, or a hop can be protected now), and arm live trails
        that hold no protection (recovered after a restart): new groups and
        detours, then its hop entries into them, then what nobody uses any more."""
        if self.mode == "none":
            return Change()
        first: list[Op] = []
        flows: list[Op] = []
        stale: list[Op] = []
        released: list[Op] = []
        for trail_id in sorted(set(self._users) | set(self.s.by_pair.values())):
            user = self._users.get(trail_id)
            trail = self.s.store.get(trail_id)
            was = self.table.armed.get(user) if user is not None else None
            if trail is None or trail.state in DEAD_STATES or not self._eligible(trail):
                continue
            if (was is not None and self.guards(trail) == was.guards) \
                    or not self.s.path_intact(trail):
                continue
            new_user, armed, ops = self._arm(trail)
            self._users[trail_id] = new_user
            first.extend(ops)
            old_flows = {f.key: f for f in guarded_hop_flows(trail, was)}
            new_flows = {f.key: f for f in guarded_hop_flows(trail, armed)}
            # a trail armed for the first time may hold adopted entries: send them all
            flows.extend(f for k, f in new_flows.items() if was is None or old_flows.get(k) != f)
            stale.extend(compiler.delete_exact(f) for k, f in old_flows.items()
                         if k not in new_flows)
            if user is not None:
                released.extend(self.table.release(user))
        legacy = self.table.legacy_groups or self.table.legacy_labels
        if legacy and all(self.armed(t) is not None for t in self._live_eligible()):
            released.extend(self.table.forget_legacy())  # nothing points at them now
        change = Change([compiler.group_ops(ops) for ops in (first, flows, stale + released)])
        self.s.drop_gone_switches(change.steps)
        return change if any(change.steps) else Change()

    def _live_eligible(self) -> list[int]:
        out = []
        for trail_id in set(self.s.by_pair.values()):
            trail = self.s.store.get(trail_id)
            if trail is not None and trail.state not in DEAD_STATES and self._eligible(trail):
                out.append(trail_id)
        return out

    # -- the audit and REST -------------------------------------------------------------------
    def expected(self, dpid: int, flows: list[FlowSpec], trails: Iterable[Trail],
                 installed: Iterable[FlowSpec] | None = None) -> list[FlowSpec]:
        """`flows` (what switch `dpid` should hold without protection) with the
        protected hops' entries, the rejoin entries and the detour entries.

        With `installed` (the audit of a switch whose groups are kept), the
        protection a trail not armed yet has there from before a restart is
        adopted: its hop entries into their groups and the detour entries are
        expected as they are, until the trail is armed again (rearm)."""
        if self.mode == "none":
            return flows
        trails = list(trails)
        swap: dict[tuple[object, ...], FlowSpec] = {}
        extra: list[FlowSpec] = []
        if installed is not None:
            swap, extra = self._adopt(dpid, installed, trails)
        for trail in trails:
            armed = self.armed(trail.id)
            if armed is None or not armed.groups:
                continue
            plain = {f.key for f in compiler.hop_flows(trail) if f.dpid == dpid}
            for flow in guarded_hop_flows(trail, armed):
                if flow.dpid != dpid:
                    continue
                if flow.key in plain:
                    swap[flow.key] = flow
                else:
                    extra.append(flow)
        detours = [f for f in self.table.specs(dpid) if isinstance(f, FlowSpec)]
        return [swap.get(f.key, f) for f in flows] + extra + detours

    def _adopt(self, dpid: int, installed: Iterable[FlowSpec], trails: list[Trail]
               ) -> tuple[dict[tuple[object, ...], FlowSpec], list[FlowSpec]]:
        plain = {f.key for t in trails if self.armed(t.id) is None
                 for f in compiler.hop_flows(t) if f.dpid == dpid}
        mine = {f.key for f in self.table.specs(dpid) if isinstance(f, FlowSpec)}
        swap: dict[tuple[object, ...], FlowSpec] = {}
        extra: list[FlowSpec] = []
        gids: list[int] = []
        labels: list[int] = []
        for flow in installed:
            kind = cookie_kind(flow.cookie)
            into = flow.actions[0] if len(flow.actions) == 1 else None
            if kind == KIND_PROTECTION and flow.key not in mine:
                labels.append(flow.cookie & COOKIE_ID_MAX)
                extra.append(flow)
            elif kind == KIND_TRAIL and flow.key in plain and isinstance(into, Group) \
                    and PROTECTION_GROUP_MIN <= into.group_id <= PROTECTION_GROUP_MAX:
                gids.append(into.group_id)
                swap[flow.key] = flow
        self.table.adopt(dpid, gids, labels)
        return swap, extra

    def groups(self, dpid: int) -> list[Op]:
        """The fast-failover groups switch `dpid` should hold (sent when it connects)."""
        return [g for g in self.table.specs(dpid) if not isinstance(g, FlowSpec)]

    def view(self, trail_id: int) -> list[dict[str, object]] | None:
        """JSON of a trail's protection, one entry per hop on a link (None: not armed)."""
        armed = self.armed(trail_id)
        return [g.to_dict() for g in armed.guards] if armed is not None else None


def _merged(step: Step, ops: list[Op]) -> Step:
    out = {dpid: list(items) for dpid, items in step.items()}
    for op in ops:
        out.setdefault(op.dpid, []).append(op)
    return out


def guard_steps(steps: list[Step], trail: Trail, armed: Armed) -> list[Step]:
    """`steps` with the trail's protected hop entries swapped for their group
    versions; rejoin entries join the step that holds the trail's hop entries."""
    if not armed.groups:
        return steps
    guarded = guarded_hop_flows(trail, armed)
    plain = {f.key for f in compiler.hop_flows(trail)}
    swap = {f.key: f for f in guarded if f.key in plain}
    extra = [f for f in guarded if f.key not in plain]
    out: list[Step] = []
    placed = False
    for step in steps:
        new: Step = {}
        holds_hops = False
        for dpid, ops in step.items():
            items: list[Op] = []
            for op in ops:
                if isinstance(op, FlowSpec) and op.key in swap:
                    items.append(swap[op.key])
                    holds_hops = True
                else:
                    items.append(op)
            new[dpid] = items
        if holds_hops and not placed:
            for flow in extra:
                new.setdefault(flow.dpid, []).append(flow)
            placed = True
        out.append(new)
    return out
