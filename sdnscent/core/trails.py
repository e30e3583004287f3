"""The trail lifecycle: plan, install, activate, re-plan, remove, leases."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import bundles, compiler, tagging
from ..appplan import PolicyView, app_matches, plan_app_hops
from ..flows import (
    ETH_TYPE_IPV4,
    ETH_TYPE_IPV6,
    KIND_BLOCK,
    TABLE_CLASSIFY,
    FlowSpec,
    make_cookie,
)
from ..labels import LabelAllocator
from ..pipeline import TRAIL_LABEL_MAX
from ..planner import NoPathError, stable_hash
from ..planner import pair_key as mirror_key
from ..policy import DEFAULT_APP, Application
from ..store import StaleWrite
from ..telemetry import FlowCounters
from ..topology import Host, TopologyError
from ..trails import DEAD_STATES, IPV6_KEY, Hop, Trail, TrailState, pair_key
from .gateway import gateway_apps, gateway_match
from .model import (
    DRAIN,
    PINNED,
    ROUTING_SCENT,
    Change,
    NoFreePath,
    is_pinned,
)
from .state import CoreState

CANDIDATES_MAX = 16  # candidate paths per trail for the elephant placement (k=8: all)
BUSY_GRACE = 5.0  # s a new trail counts as busy before its counters are believed idle
# a trail is busy while its latest rate is this share of its source NIC or more: the
# ACKs of a bulk transfer (about 2 % of its bytes) or a trickle do not crowd a path
BUSY_SHARE = 0.05


def spread(paths: list[list[int]], limit: int) -> list[list[int]]:
    """At most `limit` of the sorted `paths`, evenly spaced: sorted paths share
    their first hops in runs, so the first few would all leave by one uplink."""
    if len(paths) <= limit:
        return paths
    return [paths[i * len(paths) // limit] for i in range(limit)]


class TrailManager:
    """The trail lifecycle; shares the core's state."""

    def __init__(self, s: CoreState) -> None:
        self.s = s

    def recover(self) -> int:
        """Rebuild the indexes from the store after a restart; return the trail count.

        The (app, src, dst) index, the trail index and the label allocations
        come back; stored hosts are placed when their switch connects (a host
        not stored is learned again from traffic, and a trail whose hosts are
        not known yet is kept: see replan and learn_host). Block rules and
        service bindings are not stored: the audit removes theirs.
        """
        self.s.by_pair.clear()
        self.s.legs.clear()
        self.s.labels = LabelAllocator(last=TRAIL_LABEL_MAX)
        # Counters were not read while no controller ran: give leased trails
        # one lease to show traffic before the sweep judges them.
        self.s.sweep_after = self.s.clock() + self.s.trail_lease
        trails = self.s.store.all()
        self.s.index.rebuild(trails)
        hosts = self.s.hosts.load_stored()
        for trail in trails:
            if trail.state in DEAD_STATES:
                continue
            try:
                self.s.labels.reserve(trail.label)
            except ValueError as exc:  # LabelError: a duplicate or out-of-range label
                self.s.record("recover", f"trail {trail.id} skipped: {exc}", trail.id)
                continue
            key = trail.pair
            head = bundles.head_of(trail)
            if head is not None:
                self.s.legs.setdefault(head, []).append(trail.id)
                if trail.id != head:
                    continue
            older = self.s.by_pair.get(key)
            self.s.by_pair[key] = trail.id if older is None else max(older, trail.id)
        for head, legs in list(self.s.legs.items()):
            legs.sort()
            if legs[0] != head:  # legs without their head (a writer died half-way)
                del self.s.legs[head]
                self.s.record("recover", f"legs {legs} of multipath trail {head} not installed: "
                            "its head leg is gone (DELETE them)")
        self.s.record("recover", f"{len(self.s.by_pair)} trails and their labels, and "
                      f"{hosts} hosts, loaded from the store")
        return len(self.s.by_pair)

    def trail_for_pair(self, src_mac: str, dst_mac: str,
                       app: str = DEFAULT_APP, family: int = 4) -> Trail | None:
        """The live `family` (4 or 6) trail of `app` from src_mac to dst_mac, if any."""
        trail_id = self.s.by_pair.get(pair_key(app, src_mac, dst_mac, family))
        return self.s.store.get(trail_id) if trail_id is not None else None

    def ensure_trail(self, src_mac: str, dst_mac: str, app: str = DEFAULT_APP,
                     record_failure: bool = True, family: int = 4) -> tuple[Trail, Change]:
        """The `family` (4 or 6) trail of `app` for a host pair, planned and compiled if
        missing.

        Raises NoPathError (recorded as an event, with the policy's reason)
        when no path satisfies the policy, TopologyError for an unknown host
        or one without an address of `family`.
        """
        existing = self.trail_for_pair(src_mac, dst_mac, app, family)
        if existing is not None:
            return existing, Change()
        src, dst = self.s.host(src_mac), self.s.host(dst_mac)
        src_ip, dst_ip = src.address(family), dst.address(family)
        if not (src_ip and dst_ip):
            raise TopologyError(f"no IPv{family} trail {src_mac} -> {dst_mac}: "
                                f"{src_mac if not src_ip else dst_mac} has no IPv{family} "
                                "address")
        view = PolicyView(self.s.policy, self.s.topo)
        profile = self.s.policy.app(app)
        service = self.s.policy.service(app)
        if app != DEFAULT_APP and profile is None and service is None:
            raise TopologyError(f"application {app!r} is not in the policy")
        if family == 6 and service is not None:
            raise TopologyError(f"service {app!r}: virtual addresses are IPv4 only")
        try:
            if family == 4 and (self.s.multipath.wants_multipath(profile, src, dst)
                                or self.s.multipath.wants_ecmp(profile, src, dst)):
                return self.s.multipath.ensure_multipath(view, profile, src, dst)
            hops = self._plan_hops(view, profile, src, dst)
        except NoPathError as exc:
            if record_failure:
                self.s.record("no-path", f"{app} trail {src_ip} -> {dst_ip} not installed: {exc}")
            raise
        fields = self.s.services.service_fields(service, dst) if service is not None \
            else self.app_fields(view, profile, src, dst)
        lease = 0 if fields.get("grouped") else int(self.s.trail_lease)
        now = self.s.clock()
        trail = Trail(self.s.store.next_id(), self.s.labels.allocate(), src.mac, dst.mac, src_ip,
                      dst_ip, hops, app=app, created=now, lease=lease,
                      expires=now + lease if lease else None, **fields)
        return trail, self.install_new(trail)

    def install_new(self, trail: Trail, note: str = "") -> Change:
        """Store and index a new trail (its label allocated) and return its installation."""
        self.s.put(trail)
        reply = self.trail_for_pair(trail.dst_mac, trail.src_mac, trail.app, trail.family)
        if not trail.grouped and (reply is None or reply.state in DEAD_STATES):
            # made for a packet: busy until its counters say otherwise. The reply of a
            # live trail is not: it mirrors that trail, and ACKs and answers are light
            self.s.index.set_busy(trail.id, True)
        self.s.by_pair[trail.pair] = trail.id
        self.s.record("trail", f"{trail.app} trail {trail.id} {trail.src_ip} -> {trail.dst_ip} "
                      f"label {trail.label} via {self.s.path_text(trail)}{note}", trail.id)
        steps = tagging.install_steps(trail) if self.s.tagged(trail) \
            else compiler.install_steps(trail)
        steps = self.s.protection.install_steps(trail, steps)
        return Change(steps, [lambda: self.s.activate(trail.id)], [trail.id])

    def ensure_pair(self, src_mac: str, dst_mac: str,
                    family: int = 4) -> tuple[Trail | None, Change]:
        """The default `family` (4 or 6) trail of a pair plus the trails of every
        application on it.

        An application whose policy cannot be met gets a drop rule at the
        ingress instead, so its packets never ride the default trail.
        """
        change = Change()
        try:
            default, change = self.ensure_trail(src_mac, dst_mac, family=family)
        except NoPathError:
            default = None
        src, dst = self.s.host(src_mac), self.s.host(dst_mac)
        now = self.s.clock()
        self.s.patterns.request((DEFAULT_APP, src.mac, dst.mac), now)
        view = PolicyView(self.s.policy, self.s.topo)
        through_gateway = gateway_apps(self.s, view, src, dst) if family == 4 else []
        for profile in view.apps_for(src, dst) + through_gateway:
            self.s.patterns.request((profile.name, src.mac, dst.mac), now,
                                  *self.s.criticality(profile.name))
            key = pair_key(profile.name, src.mac, dst.mac, family)
            if key in self.s.by_pair:
                continue
            try:
                _, extra = self.ensure_trail(src.mac, dst.mac, profile.name,
                                             record_failure=False, family=family)
            except NoPathError as exc:
                blocked = self.block(profile, src, dst, family)
                if blocked:  # a new drop rule, not one kept from before: say why
                    self.s.record("no-path", f"{profile.name} trail {src.address(family)} -> "
                                f"{dst.address(family)} not installed: {exc}")
                change.merge(blocked)
                continue
            change.merge(self.unblock(key)).merge(extra)
        return default, change

    def app_fields(self, view: PolicyView, profile: Application | None,
                   src: Host | None = None, dst: Host | None = None) -> dict[str, Any]:
        """A trail's fields from its application (core/gateway.py: through the gateway,
        classified on the application's prefixes too)."""
        if profile is None:
            return {}
        cap = self.s.policy.weights_of(profile).max_rate
        match = gateway_match(self.s, profile, src, dst) if src and dst else None
        return {"cls": profile.data_class, "match": match or app_matches(profile),
                "priority": view.priority(profile), "rate_cap": round(cap) if cap else 0}

    def _plan_hops(self, view: PolicyView, profile: Application | None, src: Host,
                   dst: Host, replacing: Trail | None = None) -> tuple[Hop, ...]:
        """Hops for a trail of `profile` (None: the default per-pair trail)."""
        if profile is None:
            if self.s.routing == ROUTING_SCENT:
                return self._spread_hops(src, dst, replacing)
            return self.s.planner.host_hops(src, dst)
        return plan_app_hops(view, profile, src, dst, self.s.planner,
                             self.isolation_exclusions(profile, replacing), self.s.chain_cache)

    def _spread_hops(self, src: Host, dst: Host, replacing: Trail | None = None
                     ) -> tuple[Hop, ...]:
        """A pair's default trail on a least-cost path: the one it has (re-planning
        `replacing`) where that still is one, else the mirror of its reply
        trail's path where that is one, else the least crowded, ties broken by
        the pair's hash.

        Crowded: busy trails (core/index.py: BUSY_SHARE of their NIC at the last
        poll, or made for a packet in the last BUSY_GRACE s and not a live
        trail's reply) on the path's busiest link, then in all, then
        all trails: a trail idling out its lease carries nothing. Before any
        flow is measured, spreading busy trails evenly is the best guess at
        spreading load; the global placement corrects it once elephants show.
        (The planner weighs utilisation in steps, CostModel.load_step, so the
        residue of a flow that ended seconds ago does not make one path the
        only least-cost one for every new trail.)
        """
        planner = self.s.planner
        paths = planner.equal_cost_paths(src.dpid, dst.dpid) if src.dpid != dst.dpid else []
        if len(paths) <= 1:
            return planner.host_hops(src, dst)
        if replacing is not None and self.s.path_intact(replacing) \
                and [h.dpid for h in replacing.hops] in paths:
            return replacing.hops
        reply = self.trail_for_pair(dst.mac, src.mac)
        if reply is not None and reply.state not in DEAD_STATES and self.s.path_intact(reply):
            mirror = [h.dpid for h in reversed(reply.hops)]
            if mirror in paths:
                return planner.hops_along(src, dst, mirror)
        start = stable_hash(*mirror_key(src.mac, dst.mac)) % len(paths)
        index = self.s.index
        own = set(replacing.links()) if replacing is not None else set()
        own_busy = replacing is not None and index.is_busy(replacing.id)

        hops: dict[tuple[int, int], tuple[int, int]] = {}  # switch pair -> (busy, trails)

        def on(here: int, there: int) -> tuple[int, int]:
            """Busy trails and trails on the link from `here` to `there`, less this one."""
            key = (here, planner.link_for(here, there).src_port)
            found = (index.busy_on(key) - (key in own and own_busy),
                     index.count_on(key) - (key in own))
            hops[(here, there)] = found
            return found

        def crowd(path: list[int]) -> tuple[int, int, int, int]:
            loads = [hops.get(pair) or on(*pair) for pair in zip(path, path[1:], strict=False)]
            busy = [b for b, _ in loads]
            counts = [c for _, c in loads]
            return (max(busy), sum(busy), max(counts), sum(counts))

        best = min(paths[start:] + paths[:start], key=crowd)
        return planner.hops_along(src, dst, best)

    def isolation_exclusions(self, profile: Application,
                              replacing: Trail | None) -> tuple[set[tuple[int, int]], set[int]]:
        """Links (dpid, out_port) and switches the trail must not share."""
        links: set[tuple[int, int]] = set()
        switches: set[int] = set()
        mine = profile.requirements.isolation
        for app in self.s.index.apps():
            if app in (profile.name, DEFAULT_APP):
                continue
            other = self.s.policy.app(app)
            theirs = other.requirements.isolation if other else "none"
            strictest = "switch" if "switch" in (mine, theirs) else (
                "link" if "link" in (mine, theirs) else "none")
            if strictest == "none":
                continue
            for trail in self.s.live(self.s.index.of_app(app)):
                if replacing is not None and trail.id == replacing.id:
                    continue
                if strictest == "link":
                    links.update(trail.links())
                else:
                    switches.update(trail.switches)
        for dpid, port in list(links):  # a link is the cable: both directions
            link = self.s.topo.link_from(dpid, port)
            if link is not None:
                links.add((link.dst, link.dst_port))
        return links, switches

    def block(self, profile: Application, src: Host, dst: Host, family: int = 4) -> Change:
        """Drop `profile`'s `family` packets from src to dst at the ingress (no fallback)."""
        key = pair_key(profile.name, src.mac, dst.mac, family)
        if key in self.s.blocks:
            return Change()
        view = PolicyView(self.s.policy, self.s.topo)
        eth_type = ETH_TYPE_IPV6 if family == 6 else ETH_TYPE_IPV4
        base = {"in_port": src.port, "eth_type": eth_type, "eth_src": src.mac,
                "eth_dst": dst.mac}
        alts = (gateway_match(self.s, profile, src, dst) if family == 4 else None) \
            or app_matches(profile) or ((),)
        matches = [(src.dpid, view.priority(profile), {**base, **dict(alt)}) for alt in alts]
        retired = self.s.retired_blocks.pop(key, None)
        if retired is not None and [(f.dpid, f.priority, f.match_dict) for f in retired] \
                == matches:
            self.s.blocks[key] = retired  # the same rule is still installed: keep it
            return Change()
        if retired is not None:
            self.s.retired_blocks[key] = retired  # deleted by _retire_blocks
        self.s.block_ids += 1
        cookie = make_cookie(KIND_BLOCK, self.s.block_ids)
        flows = [FlowSpec.make(dpid, TABLE_CLASSIFY, prio, match, cookie=cookie)
                 for dpid, prio, match in matches]
        self.s.blocks[key] = flows
        return Change([{src.dpid: list(flows)}])

    def unblock(self, key: tuple[str, str, str]) -> Change:
        return self._delete_after_paths(self.s.blocks.pop(key, []))

    def _delete_after_paths(self, flows: Iterable[FlowSpec]) -> Change:
        """Delete drop rules in step 3, after any new trail's path and classifier."""
        ops = [compiler.delete_exact(f) for f in flows if f.dpid in self.s.topo.switches]
        return Change([{}, {}, compiler.group_ops(ops)]) if ops else Change()

    def covers(self, view: PolicyView, profile: Application, trail: Trail) -> bool:
        src, dst = self.s.topo.hosts.get(trail.src_mac), self.s.topo.hosts.get(trail.dst_mac)
        if src is None or dst is None:  # kept from before a restart until its hosts speak
            return True
        return profile in view.apps_for(src, dst) or (
            trail.family == 4 and profile in gateway_apps(self.s, view, src, dst))

    def retire_blocks(self) -> Change:
        """Delete drop rules that a re-evaluation did not want back."""
        retired = [f for flows in self.s.retired_blocks.values() for f in flows]
        self.s.retired_blocks.clear()
        return self._delete_after_paths(retired)

    def retry_blocked(self) -> Change:
        """A new link may make a blocked application placeable."""
        change = Change()
        for key in list(self.s.blocks):
            app, src, dst = key
            if src not in self.s.topo.hosts or dst not in self.s.topo.hosts:
                continue
            family = 6 if app.endswith(IPV6_KEY) else 4
            try:
                _, extra = self.ensure_trail(src, dst, app.removesuffix(IPV6_KEY),
                                             record_failure=False, family=family)
            except (NoPathError, TopologyError):
                continue
            change.merge(self.unblock(key)).merge(extra)
        return change

    def blocked(self) -> list[tuple[str, str, str]]:
        """(application, src MAC, dst MAC) whose packets are dropped by policy."""
        return sorted(self.s.blocks)

    def set_setup_latency(self, trail_id: int, ms: float) -> None:
        """Record how long the first install of a trail took."""
        trail = self.s.store.get(trail_id)
        if trail and trail.setup_ms is None:
            self.s.put(trail.evolve(setup_ms=round(ms, 3), version=trail.version + 1))

    def candidate_hops(self, trail: Trail, limit: int = CANDIDATES_MAX) -> list[tuple[Hop, ...]]:
        """Paths `trail` may take under its policy, for the elephant placement.

        The default trail of a pair: every least-cost path of the fabric
        without load. An application's trail: the policy planner's best path
        and, for each link of it, the best path without that link, so every
        candidate meets zones, network-function chains and isolation. The
        current path comes first where it still works. [] if the hosts are unknown.
        """
        src, dst = self.s.topo.hosts.get(trail.src_mac), self.s.topo.hosts.get(trail.dst_mac)
        if src is None or dst is None:
            return []
        out: list[tuple[Hop, ...]] = [trail.hops] if self.s.path_intact(trail) else []
        profile = self.s.policy.app(trail.app)
        static = self.s.static_planner
        try:
            if profile is None:
                paths = static.equal_cost_paths(src.dpid, dst.dpid) \
                    if src.dpid != dst.dpid else [[src.dpid]]
                for path in spread(paths, limit):
                    hops = static.hops_along(src, dst, path)
                    if hops not in out:
                        out.append(hops)
                return out[:max(limit, 1)]
            view = PolicyView(self.s.policy, self.s.topo)
            links, switches = self.isolation_exclusions(profile, trail)
            best = plan_app_hops(view, profile, src, dst, static, (links, switches))
            if best not in out:
                out.append(best)
            for hop in best[:-1]:
                if len(out) >= limit:
                    break
                try:
                    other = plan_app_hops(view, profile, src, dst, static,
                                          (links | {(hop.dpid, hop.out_port)}, switches))
                except NoPathError:
                    continue
                if other not in out:
                    out.append(other)
        except (NoPathError, TopologyError):
            pass
        return out

    def replan(self, trail_id: int, reason: str,
               avoid: frozenset[tuple[int, int]] = frozenset(), keep_intact: bool = False,
               hops: tuple[Hop, ...] | None = None, drain: float = DRAIN) -> Change:
        """Move a trail to its current best path under the policy, make-before-break.

        With `avoid` (links as (dpid, out port)) the new path must use none of
        them: NoFreePath is raised, and nothing changes, if it cannot. A leg of
        a multipath trail re-plans the whole trail; `keep_intact` keeps the
        legs whose paths still work (after a failure). `hops` moves the trail
        to exactly that path, one of candidate_hops() (the elephant placement).
        `drain`: seconds the old path keeps its entries for packets in flight.
        """
        old = self.s.store.get(trail_id)
        if old is None:
            return Change()
        head = bundles.head_of(old)
        if head is not None:
            return self.s.multipath.replan_multipath(head, reason, keep_intact)
        view = PolicyView(self.s.policy, self.s.topo)
        profile = self.s.policy.app(old.app)
        service = self.s.policy.service(old.app)
        if old.app != DEFAULT_APP and profile is None and service is None:
            return self.remove_trail(trail_id, f"{reason}; application {old.app!r} is gone")
        if (old.src_mac not in self.s.topo.hosts or old.dst_mac not in self.s.topo.hosts) \
                and self.s.path_intact(old):  # from before a restart: hosts not seen yet
            return Change()
        try:
            src, dst = self.s.host(old.src_mac), self.s.host(old.dst_mac)
            if old.family == 4 and (self.s.multipath.wants_multipath(profile, src, dst)
                                    or self.s.multipath.wants_ecmp(profile, src, dst)):
                # ensure_pair splits it
                return self.remove_trail(trail_id, f"{reason}; the application is split over "
                                         "several paths now")
            if hops is None:
                hops = self._plan_hops(view, profile, src, dst, replacing=old)
        except (NoPathError, TopologyError) as exc:
            change = self.remove_trail(trail_id, f"{reason}; no new path: {exc}")
            if profile is not None and old.src_mac in self.s.topo.hosts \
                    and old.dst_mac in self.s.topo.hosts:
                change.merge(self.block(profile, src, dst, old.family))
            return change
        fields = self.app_fields(view, profile, src, dst) if service is None \
            else self.s.services.service_fields(service, dst)
        if avoid and avoid & {(h.dpid, h.out_port) for h in hops[:-1]}:
            raise NoFreePath(f"trail {trail_id}: every path crosses "
                             f"{', '.join(sorted(self.s.link_name_of(k) for k in avoid))}")
        if hops == old.hops and all(getattr(old, k) == v for k, v in fields.items()):
            return Change()
        label = self.s.labels.allocate()
        new = old.evolve(label=label, hops=hops, state=TrailState.REROUTING,
                         version=old.version + 1, **fields)
        self.s.put(new)
        self.s.record("reroute", f"trail {old.id} {old.src_ip} -> {old.dst_ip} moved ({reason}): "
                    f"label {old.label} -> {label}, via {self.s.path_text(new)}", old.id)
        old_label = old.label

        def finish() -> None:
            self.s.activate(old.id)
            self.s.labels.release(old_label)

        steps = tagging.reroute_steps(old, new) if self.s.tagged(new) \
            else compiler.reroute_steps(old, new)
        ahead, steps, after = self.s.protection.reroute(old, new, steps)
        pause = drain
        drain = {len(steps) - 1: pause} if len(steps) > 2 else {}  # the old path's deletes
        if new.grouped:  # the bucket moves to the new label once its path is there
            binding = self.s.bindings.get((new.app, new.src_mac))
            group = self.s.services.binding_group(binding) if binding is not None else None
            steps.insert(1, {group.dpid: [group]} if group is not None else {})
        self.s.drop_gone_switches(steps)  # the old path's switches may be gone
        if new.grouped and drain:
            drain = {len(steps) - 1: pause}
        if ahead or after:  # protection: groups and detours first, unused ones last
            drain = {i + len(ahead): wait for i, wait in drain.items()}
            steps = [*ahead, *steps, *after]
            self.s.drop_gone_switches(steps)
        return Change(steps, [finish], pause_before=drain)

    def remove_trail(self, trail_id: int, reason: str, note: str = "removed") -> Change:
        """Delete a trail's flows and free its label.

        `note` is the reason other controllers see in the store's notification.
        A leg of a multipath trail takes the whole trail with it.
        """
        current = self.s.store.get(trail_id)
        head = bundles.head_of(current) if current is not None else None
        if head is not None and head in self.s.legs:
            return self.s.multipath.remove_multipath(head, reason, note)
        trail = self.s.delete(trail_id, note)
        if trail is None:
            return Change()
        key = trail.pair
        if self.s.by_pair.get(key) == trail_id:
            del self.s.by_pair[key]
        self.s.labels.release(trail.label)
        self.s.record("trail-removed", f"{trail.app} trail {trail.id} {trail.src_ip} -> "
                    f"{trail.dst_ip} removed: {reason}", trail.id)
        ops = [op for op in compiler.remove_ops(trail) if op.dpid in self.s.topo.switches]
        change = Change([{op.dpid: [op] for op in ops}] if ops else [])
        released = [op for op in self.s.protection.release(trail.id)
                    if op.dpid in self.s.topo.switches]
        if released:  # groups and detours no trail uses any more, after the trail's flows
            change.steps.append(compiler.group_ops(released))
        if self.s.policy.service(trail.app) is not None or self.s.bindings:
            client = trail.src_mac if trail.grouped else trail.dst_mac
            binding = self.s.bindings.get((trail.app, client))
            group = self.s.services.binding_group(binding) if binding is not None else None
            if group is not None:  # the bucket goes before the path it leads to
                change = Change([{group.dpid: [group]}]).merge(
                    Change([{}, *change.steps], change.done))
        return change

    def restore_hop(self, dpid: int, label: int) -> Change:
        """The miss path: re-install the table-1 entry of `label` at `dpid`.

        An empty Change means the label is unknown there: drop the packet.
        """
        trail = self.s.store.find_by_label(dpid, label)
        if trail is None or trail.label != label or dpid not in trail.switches \
                or trail.state is TrailState.FAILED:  # half a failed trail is worse than none
            self.s.misses_unknown += 1
            return Change()
        flows = [f for f in self.s.protection.hop_flows(trail) if f.dpid == dpid]
        self.s.record("label-miss", f"label {label} missing at {self.s.topo.switch_name(dpid)}: "
                    "restored from the store", trail.id)
        return Change([{dpid: flows}])

    def classifier_counters(self, dpid: int,
                            entries: Iterable[tuple[int, int | None, int, int]]) -> None:
        """Apply table-0 flow stats of switch `dpid`: (trail id, in_port, packets, bytes).

        Only a trail's ingress classifiers count (not where it re-enters after
        a network function, which would count its packets twice).
        """
        stats = []
        for trail_id, in_port, packets, nbytes in entries:
            trail = self.s.store.get(trail_id)
            if trail is not None and (not trail.grouped or trail.id in self.s.legs) \
                    and trail.ingress.dpid == dpid \
                    and in_port in (None, trail.ingress.in_port):
                stats.append((trail_id, packets, nbytes))
        self.update_counters(stats)

    def _carries_load(self, trail: Trail, packets: int, now: float) -> bool:
        """Whether a trail's latest counters show load: a rate of BUSY_SHARE of its
        source NIC or more, or (before a rate can be read) packets since the last poll."""
        if packets <= trail.packets:
            return False
        usage = self.s.telemetry.trail_usage(trail.id, now)
        host = self.s.topo.hosts.get(trail.src_mac)
        if usage is None or usage.last_bps <= 0 or host is None:
            return True
        nic = float(self.s.topo.link_capacity(host.dpid, host.port))
        return usage.last_bps >= BUSY_SHARE * nic

    def update_counters(self, stats: Iterable[tuple[int, int, int]]) -> None:
        """Apply (trail id, packets, bytes) read from ingress classifier flows.

        A trail with several classifier alternatives may appear several times:
        its counters are the sums. Traffic since the last poll renews its lease.
        """
        now = self.s.clock()
        totals: dict[int, list[int]] = {}
        for trail_id, packets, nbytes in stats:
            total = totals.setdefault(trail_id, [0, 0])
            total[0] += packets
            total[1] += nbytes
        self.s.telemetry.flow_stats([FlowCounters(i, p, b) for i, (p, b) in totals.items()], now)
        for trail_id, (packets, nbytes) in totals.items():
            trail = self.s.store.get(trail_id)
            if trail is None:
                continue
            busy = self._carries_load(trail, packets, now)
            if busy or now - trail.created >= BUSY_GRACE:
                self.s.index.set_busy(trail_id, busy)
            self.s.patterns.counters((trail.app, trail.src_mac, trail.dst_mac), packets, now,
                                   *self.s.criticality(trail.app))
            if (trail.packets, trail.bytes) == (packets, nbytes):
                continue
            changes: dict[str, Any] = {"packets": packets, "bytes": nbytes}
            if trail.lease and packets > trail.packets:
                changes["expires"] = now + trail.lease
            try:
                self.s.put(trail.evolve(version=trail.version + 1, **changes))
            except StaleWrite:
                continue  # moved meanwhile; the next poll counts again

    def pin_trail(self, trail_id: int, pinned: bool) -> Trail | None:
        """Pin a trail to its path (or unpin it); None if there is no such trail.

        A pinned trail is never moved to relieve load (the allocation engine
        does not see it as a candidate). It still moves when its path breaks
        or the policy no longer allows it: a pin is about optimisation, not
        about correctness or security.
        """
        trail = self.s.store.get(trail_id)
        if trail is None:
            return None
        if is_pinned(trail) == pinned:
            return trail
        extra = {k: v for k, v in trail.extra.items() if k != PINNED}
        if pinned:
            extra[PINNED] = "true"
        trail = trail.evolve(extra=extra, version=trail.version + 1)
        self.s.put(trail)
        self.s.record("pin", f"trail {trail_id} {'pinned to' if pinned else 'unpinned from'} "
                    f"{self.s.path_text(trail)}", trail_id)
        return trail

    def expire_trails(self) -> Change:
        """Remove trails whose lease ran out (no traffic for their lease), freeing labels.

        The switch removes an idle classifier by itself (classifier_idle is
        told); this sweep catches the rest: a lost notification, a trail whose
        classifier never saw a packet, a restart.
        """
        now = self.s.clock()
        if now < self.s.sweep_after:
            return Change()
        change = Change()
        for trail in self.s.store.all():
            if trail.lease and trail.expires is not None and trail.expires <= now:
                change.merge(self.remove_trail(trail.id, f"lease expired (idle {trail.lease} s)",
                                               note="expired"))
        return change

    def classifier_idle(self, trail_id: int, match: dict[str, int | str]) -> Change:
        """The switch timed out an idle ingress classifier of `trail_id`.

        If the whole trail was idle for its lease it ends here. If another
        classifier alternative of it carried traffic (the store's lease is
        still running), the idle alternative is put back.
        """
        trail = self.s.store.get(trail_id)
        if trail is None or not trail.lease:
            return Change()
        if trail.expires is None or trail.expires <= self.s.clock() + self.s.lease_slack:
            return self.remove_trail(trail_id, f"idle for {trail.lease} s on the switch",
                                     note="expired")
        if trail.state is TrailState.FAILED:
            return Change()  # its retry puts the classifier back with the rest
        want = {k: v.lower() if isinstance(v, str) else v for k, v in match.items()}
        flows = [f for f in self._classifiers_of(trail) if dict(
            (k, v.lower() if isinstance(v, str) else v) for k, v in f.match) == want]
        return Change([{trail.ingress.dpid: flows}]) if flows else Change()

    def refresh_classifiers(self, src_mac: str, dst_mac: str) -> Change:
        """A host's packet reached the controller although its pair has trails.

        Their classifiers are gone from the switch (timed out just now, or
        removed by hand): install them again and renew the leases.
        """
        change = Change()
        now = self.s.clock()
        for (_app, src, dst), trail_id in list(self.s.by_pair.items()):
            if (src, dst) != (src_mac, dst_mac):
                continue
            trail = self.s.store.get(trail_id)
            if trail is None or (trail.grouped and trail.id not in self.s.legs) \
                    or trail.state is TrailState.FAILED:  # its retry installs it whole
                continue
            if trail.lease:
                trail = trail.evolve(expires=now + trail.lease, version=trail.version + 1)
                self.s.put(trail)
            flows = self._classifiers_of(trail)
            if flows:
                change.merge(Change([{trail.ingress.dpid: flows}]))
        return change

    def _classifiers_of(self, trail: Trail) -> list[FlowSpec]:
        """A trail's ingress classifiers (a multipath trail's head: into its group)."""
        if trail.id in self.s.legs:
            legs = self.s.multipath.leg_trails(trail.id)
            return list(bundles.specs(legs).classifiers) if legs else []
        return compiler.classifier_flows(trail)
