"""Multipath trails: legs, their split, re-planning and re-weighing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from .. import bundles, compiler, splits
from ..appplan import PolicyView, plan_app_hops
from ..flows import (
    COOKIE_MASK_ALL,
    TABLE_CLASSIFY,
    FlowDelete,
    GroupDelete,
    MeterDelete,
    trail_cookie,
)
from ..planner import NoPathError
from ..policy import DEFAULT_APP, Application
from ..store import StaleWrite
from ..topology import Host, TopologyError
from ..trails import DEAD_STATES, Hop, Trail, TrailState
from .model import DRAIN, ROUTING_ECMP, Change, is_pinned
from .state import CoreState

ECMP_PATHS_MAX = 16  # least-cost paths an ECMP trail is split over, at most


class MultipathManager:
    """Multipath trails; shares the core's state."""

    def __init__(self, s: CoreState) -> None:
        self.s = s

    def wants_multipath(self, profile: Application | None, src: Host, dst: Host) -> bool:
        """`profile` splits its trails (requirements.paths > 1) and the hosts are on
        different switches (two hosts on one switch have one path)."""
        return profile is not None and profile.requirements.paths > 1 and src.dpid != dst.dpid

    def wants_ecmp(self, profile: Application | None, src: Host, dst: Host) -> bool:
        """The default trail of a pair on different switches under `--routing ecmp`:
        split over every least-cost path, hashed per flow at the ingress."""
        return self.s.routing == ROUTING_ECMP and profile is None and src.dpid != dst.dpid

    def ecmp_legs(self, src: Host, dst: Host) -> list[tuple[Hop, ...]]:
        """Every least-cost path (without load) from src to dst, as hops, at most
        ECMP_PATHS_MAX. Raises NoPathError if there is none."""
        static = self.s.static_planner
        paths = static.equal_cost_paths(src.dpid, dst.dpid)[:ECMP_PATHS_MAX]
        if not paths:
            raise NoPathError(f"no path from host {src.ip} to host {dst.ip}")
        return [static.hops_along(src, dst, path) for path in paths]

    def leg_trails(self, head: int) -> list[Trail]:
        """The stored legs of multipath trail `head`, head first."""
        legs = [self.s.store.get(i) for i in self.s.legs.get(head, [])]
        return [leg for leg in legs if leg is not None]

    def _plan_legs(self, view: PolicyView, profile: Application, src: Host, dst: Host,
                   keep: list[tuple[Hop, ...]]) -> list[tuple[Hop, ...]]:
        """`keep` and then more link-disjoint paths under the policy, up to its `paths`.

        Each new leg is the planner's best path that uses none of the links of
        the legs before it (so a failed link breaks one leg only, and the split
        is exact: sdnscent.splits). Raises NoPathError if there is none at all.
        """
        links, switches = self.s.trails.isolation_exclusions(profile, None)
        legs = list(keep)
        while len(legs) < profile.requirements.paths:
            used = {key for hops in legs for key in bundles.leg_links(hops)}
            try:
                hops = plan_app_hops(view, profile, src, dst, self.s.planner,
                                     (links | used, switches),
                                     self.s.chain_cache if not used else None)
            except NoPathError:
                if not legs:
                    raise
                break
            if hops in legs:
                break
            legs.append(hops)
        return legs

    def _leg_weights(self, profile: Application, legs: list[tuple[Hop, ...]], rate: float,
                     own: Mapping[tuple[int, int], float]) -> tuple[float, ...]:
        """The split minimising the legs' highest link utilisation (sdnscent.splits).

        Demand: the trail's measured `rate` (at least the policy's
        min_bandwidth); link load: measured, less `own` (what this trail put
        there). Unknown demand splits by spare capacity.
        """
        now = self.s.clock()
        keys = [bundles.leg_links(hops) for hops in legs]
        capacity = {k: float(self.s.topo.link_capacity(*k)) for ks in keys for k in ks}
        measured = {load.key: load.bps for load in self.s.telemetry.link_loads(self.s.topo, now)}
        background = {k: max(0.0, measured.get(k, 0.0) - own.get(k, 0.0)) for k in capacity}
        demand = max(rate, profile.requirements.min_bandwidth or 0.0)
        return splits.minmax_weights(keys, capacity, background, demand)

    def ensure_multipath(self, view: PolicyView, profile: Application | None, src: Host,
                          dst: Host) -> tuple[Trail, Change]:
        """A new multipath trail: legs stored, label paths, then group and classifier.

        `profile` None: the pair's default trail under ECMP routing (equal weights).
        """
        if profile is None:
            hops = self.ecmp_legs(src, dst)
            weights: tuple[float, ...] = tuple(1 / len(hops) for _ in hops)
        else:
            hops = self._plan_legs(view, profile, src, dst, [])
            weights = self._leg_weights(profile, hops, 0.0, {})
        fields = self.s.trails.app_fields(view, profile)
        app = profile.name if profile is not None else DEFAULT_APP
        now = self.s.clock()
        lease = int(self.s.trail_lease)
        head = self.s.store.next_id()
        legs = []
        for i, (path, weight) in enumerate(zip(hops, weights, strict=True)):
            first = i == 0
            legs.append(Trail(
                head if first else self.s.store.next_id(), self.s.labels.allocate(), src.mac,
                dst.mac, src.ip, dst.ip, path, app=app, created=now,
                lease=lease if first else 0, expires=now + lease if lease and first else None,
                grouped=True, extra=bundles.leg_extra({}, head, weight),
                **{**fields, "rate_cap": fields.get("rate_cap", 0) if first else 0}))
        for leg in legs:
            self.s.put(leg)
        self.s.legs[head] = [leg.id for leg in legs]
        self.s.by_pair[(app, src.mac, dst.mac)] = head
        self.s.record("trail", f"{app} trail {head} {src.ip} -> {dst.ip} split over "
                    f"{len(legs)} paths: " + "; ".join(
                        f"label {leg.label} weight {w:.2f} via {self.s.path_text(leg)}"
                        for leg, w in zip(legs, weights, strict=True)), head)
        built = bundles.specs(legs)
        steps = [compiler.group_ops([*bundles.meter_ops(legs[0]),
                                     *(f for leg in legs for f in compiler.path_flows(leg))]),
                 compiler.group_ops([built.group, *built.classifiers])]
        ids = [leg.id for leg in legs]

        def active() -> None:
            for trail_id in ids:
                self.s.activate(trail_id)

        return legs[0], Change(steps, [active], ids)

    def replan_multipath(self, head: int, reason: str, keep_intact: bool) -> Change:
        """Re-plan a multipath trail's legs and split, make-before-break.

        New and moved legs get their label paths first, then the group is
        modified to the new buckets, then (after a drain) the old paths go.
        Legs whose path is unchanged keep their label. With `keep_intact` the
        legs whose path still works stay as they are (a failure elsewhere).
        """
        legs = self.leg_trails(head)
        if not legs or legs[0].id != head:
            return Change()
        first = legs[0]
        view = PolicyView(self.s.policy, self.s.topo)
        profile = self.s.policy.app(first.app)
        if (first.src_mac not in self.s.topo.hosts or first.dst_mac not in self.s.topo.hosts) \
                and all(self.s.path_intact(leg) for leg in legs):
            return Change()  # from before a restart: hosts not seen yet
        try:
            src, dst = self.s.host(first.src_mac), self.s.host(first.dst_mac)
            ecmp = self.wants_ecmp(profile, src, dst)
            if not ecmp and (profile is None or not self.wants_multipath(profile, src, dst)):
                return self.remove_multipath(head, f"{reason}; the application is not split "
                                              "any more", "removed")
            keep = [leg.hops for leg in legs if keep_intact and self.s.path_intact(leg)]
            paths = self.ecmp_legs(src, dst) if ecmp \
                else self._plan_legs(view, profile, src, dst, keep)  # type: ignore[arg-type]
        except (NoPathError, TopologyError) as exc:
            change = self.remove_multipath(head, f"{reason}; no new path: {exc}", "removed")
            if profile is not None and first.src_mac in self.s.topo.hosts \
                    and first.dst_mac in self.s.topo.hosts:
                change.merge(self.s.trails.block(profile, self.s.host(first.src_mac),
                                         self.s.host(first.dst_mac)))
            return change
        # Legs keep their record (and label) where the path is unchanged; the head
        # (lease, counters, classifier cookie) always stays.
        slots: list[Trail | None] = [None] * len(paths)
        spare = list(legs)
        for i, path in enumerate(paths):
            same = next((leg for leg in spare if leg.hops == path), None)
            if same is not None:
                slots[i] = same
                spare.remove(same)
        if first in spare:
            free = next((i for i, leg in enumerate(slots) if leg is None), len(slots) - 1)
            if slots[free] is not None:
                spare.append(slots[free])  # type: ignore[arg-type]
            slots[free] = first
            spare.remove(first)
        for i in range(len(slots)):
            if slots[i] is None and spare:
                slots[i] = spare.pop(0)
        at = slots.index(first)  # the head leads the legs, whichever path it has
        slots.insert(0, slots.pop(at))
        paths.insert(0, paths.pop(at))
        rate = self._multipath_rate(head, self.s.clock())
        weights = tuple(1 / len(paths) for _ in paths) if profile is None \
            else self._leg_weights(profile, paths, rate, bundles.own_load(legs, rate))
        fields = self.s.trails.app_fields(view, profile)
        now = self.s.clock()
        new_legs: list[Trail] = []
        moved: list[tuple[Trail, Trail]] = []
        for i, (path, leg, weight) in enumerate(zip(paths, slots, weights, strict=True)):
            extra = bundles.leg_extra(leg.extra if leg else {}, head, weight)
            cap = fields.get("rate_cap", 0) if i == 0 else 0
            if leg is None:
                new = Trail(self.s.store.next_id(), self.s.labels.allocate(), src.mac, dst.mac,
                            src.ip, dst.ip, path, app=first.app, created=now, grouped=True,
                            extra=extra, **{**fields, "rate_cap": 0})
            elif leg.hops != path:
                new = leg.evolve(label=self.s.labels.allocate(), hops=path,
                                 state=TrailState.REROUTING, version=leg.version + 1,
                                 extra=extra, **{**fields, "rate_cap": cap})
                moved.append((leg, new))
            else:
                new = leg.evolve(version=leg.version + 1, extra=extra,
                                 **{**fields, "rate_cap": cap})
            new_legs.append(new)
        old_weights = [bundles.weight_of(leg) for leg in legs]
        if not moved and not spare and len(new_legs) == len(legs) \
                and all(getattr(first, k) == v for k, v in fields.items() if k != "rate_cap") \
                and first.rate_cap == new_legs[0].rate_cap \
                and not splits.changed(old_weights, weights, bundles.REWEIGHT_MIN):
            return Change()
        for leg in spare:
            self.s.delete(leg.id, "removed")
        for leg in new_legs:
            self.s.put(leg)
        self.s.legs[head] = [leg.id for leg in new_legs]
        self.s.record("reroute", f"multipath trail {head} {first.src_ip} -> {first.dst_ip} "
                    f"re-planned ({reason}): " + "; ".join(
                        f"label {leg.label} weight {bundles.weight_of(leg):.2f} via "
                        f"{self.s.path_text(leg)}" for leg in new_legs), head)
        return self._multipath_steps(legs, new_legs, moved, spare)

    def _multipath_steps(self, legs: list[Trail], new_legs: list[Trail],
                         moved: list[tuple[Trail, Trail]], dropped: list[Trail]) -> Change:
        """Install a re-planned multipath trail (see _replan_multipath)."""
        added = [leg for leg in new_legs if leg.id not in {old.id for old in legs}]
        paths = [f for _, new in moved for f in compiler.path_flows(new)]
        paths += [f for leg in added for f in compiler.path_flows(leg)]
        first, head = legs[0], new_legs[0]
        built = bundles.specs(new_legs)
        old_classifiers = bundles.specs(legs).classifiers
        meters = bundles.meter_ops(head, modify=bool(first.rate_cap)) \
            if head.rate_cap != first.rate_cap else []
        ingress = [replace(built.group, modify=True),
                   *(f for f in built.classifiers if f not in old_classifiers)]
        stale: list[compiler.Op] = [compiler.delete_exact(f) for f in old_classifiers
                                    if f.key not in {c.key for c in built.classifiers}]
        for old, new in moved:
            kept = {f.key for f in compiler.trail_flows(new)}
            stale += [compiler.delete_exact(f) for f in compiler.trail_flows(old)
                      if f.key not in kept]
        for leg in dropped:
            stale += compiler.remove_ops(leg)
        if first.rate_cap and not head.rate_cap:
            stale.append(MeterDelete(first.ingress.dpid, compiler.meter_id(first)))
        steps = [compiler.group_ops([*meters, *paths]), compiler.group_ops(ingress)]
        stale_steps = [compiler.group_ops(stale)]
        self.s.drop_gone_switches(steps + stale_steps)  # the old paths' switches may be gone
        steps = [step for step in steps if step]
        drain = {len(steps): DRAIN} if stale_steps[0] and steps else {}
        steps += [step for step in stale_steps if step]
        labels = [old.label for old, _ in moved] + [leg.label for leg in dropped]
        ids = [leg.id for leg in new_legs]

        def finish() -> None:
            for trail_id in ids:
                self.s.activate(trail_id)
            for label in labels:
                self.s.labels.release(label)

        return Change(steps, [finish], pause_before=drain)

    def remove_multipath(self, head: int, reason: str, note: str) -> Change:
        """Delete a multipath trail: classifier and group, then every leg's flows."""
        legs = self.leg_trails(head)
        self.s.legs.pop(head, None)
        self.s.reweighed.pop(head, None)
        if not legs:
            return Change()
        first = legs[0]
        for leg in legs:
            self.s.delete(leg.id, note)
            self.s.labels.release(leg.label)
        key = (first.app, first.src_mac, first.dst_mac)
        if self.s.by_pair.get(key) == head:
            del self.s.by_pair[key]
        self.s.record("trail-removed", f"{first.app} multipath trail {head} {first.src_ip} -> "
                    f"{first.dst_ip} ({len(legs)} paths) removed: {reason}", head)
        dpid = first.ingress.dpid
        ingress: list[compiler.Op] = [
            FlowDelete(dpid, trail_cookie(head), COOKIE_MASK_ALL, TABLE_CLASSIFY),
            GroupDelete(dpid, bundles.group_id(head))]
        if first.rate_cap:
            ingress.append(MeterDelete(dpid, compiler.meter_id(first)))
        steps = [compiler.group_ops(ingress),
                 compiler.group_ops(op for leg in legs for op in compiler.remove_ops(leg))]
        self.s.drop_gone_switches(steps)
        return Change([step for step in steps if step])

    def multipath_ingress(self, dpid: int) -> list[compiler.Op]:
        """Meters, groups and classifiers of the multipath trails entering at `dpid`."""
        ops: list[compiler.Op] = []
        for head in sorted(self.s.legs):
            first = self.s.store.get(head)  # the head alone says where the trail enters
            if first is not None and first.ingress.dpid == dpid \
                    and first.state not in DEAD_STATES:
                ops += bundles.ingress_ops(self.leg_trails(head))
        return ops

    def _multipath_rate(self, head: int, now: float) -> float:
        """A multipath trail's smoothed bit/s (its head's classifiers count it all; 0 if
        unmeasured). Smoothed: the split follows the load, not its bursts."""
        usage = self.s.telemetry.trail_usage(head, now)
        return usage.bps if usage is not None else 0.0

    def reweigh_multipath(self, now: float) -> Change:
        """Move each multipath trail's split to its measured load (a group modify).

        Only trails that carry traffic, are not pinned and would see a weight
        move by bundles.REWEIGHT_MIN or more change: a modify re-hashes flows.
        After a change the split holds for bundles.REWEIGHT_HOLD periods, until
        the smoothed link loads show where the flows went (else it oscillates).
        """
        change = Change()
        hold = bundles.REWEIGHT_HOLD * self.s.telemetry.config.period
        for head in sorted(self.s.legs):
            legs = self.leg_trails(head)
            if not legs or any(is_pinned(leg) for leg in legs) \
                    or any(leg.state is not TrailState.ACTIVE for leg in legs) \
                    or now - self.s.reweighed.get(head, -hold) < hold:
                continue
            profile = self.s.policy.app(legs[0].app)
            rate = self._multipath_rate(head, now)
            if profile is None or rate <= 0:
                continue
            old = [bundles.weight_of(leg) for leg in legs]
            weights = self._leg_weights(profile, [leg.hops for leg in legs], rate,
                                        bundles.own_load(legs, rate))
            if not splits.changed(old, weights, bundles.REWEIGHT_MIN):
                continue
            new_legs = [leg.evolve(version=leg.version + 1,
                                   extra=bundles.leg_extra(leg.extra, head, w))
                        for leg, w in zip(legs, weights, strict=True)]
            try:
                for leg in new_legs:
                    self.s.put(leg)
            except StaleWrite:
                continue  # changed meanwhile; the next period looks again
            self.s.reweights += 1
            self.s.reweighed[head] = now
            self.s.record("reweight", f"multipath trail {head} split "
                        + " / ".join(f"{w:.2f}" for w in weights) + " (was "
                        + " / ".join(f"{w:.2f}" for w in old) + f") for {rate / 1e6:.1f} Mbit/s",
                        head)
            if legs[0].ingress.dpid in self.s.topo.switches:
                change.merge(Change([{legs[0].ingress.dpid: [bundles.group_modify(new_legs)]}]))
        return change
