"""Local fast-failover protection: a precomputed backup detour for every hop of a trail.

For hop i of a trail (a switch sending the trail over an inter-switch link) a
detour leaves that switch by another port and rejoins the trail at a switch
downstream. Mode "link" avoids the hop's cable; mode "node" also avoids the
next switch where the fabric allows (else it falls back to a link detour).
Detours obey the trail's policy: they cross only the switches and links the
application's constraints allow (zones, levels, avoided nodes, isolation,
utilisation cap), rejoin before the next network function (the chain is
kept), and the detoured trail must still meet the latency bound. A hop with
no such detour is unprotected, with the reason.

On the wire (docs/protection.rst) the hop's table-1 entry outputs into a
fast-failover group: bucket 0 watches the primary port and outputs there,
bucket 1 watches the detour's port, pushes the detour's backup label on top of
the trail label and outputs on the detour. Detour switches forward on the
backup label and the last one pops it (penultimate-hop popping), so the rejoin
switch sees the trail's own label on a link port. A detour (its label and
entries) and a group (its buckets) are shared by every trail that needs the
same one. Everything here is pure data; the core decides when to send it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import networkx as nx

from .compiler import Op, classifier_flows, hop_flows, label_match, output, reentry_flows
from .constraints import Constraint, Leg, _leg_cost
from .flows import (
    ETH_TYPE_IPV4,
    ETH_TYPE_MPLS,
    Action,
    Bucket,
    FlowDelete,
    FlowSpec,
    Group,
    GroupDelete,
    GroupSpec,
    PopMpls,
    PushMpls,
    SetField,
)
from .labels import LabelAllocator, LabelExhausted
from .pipeline import (
    BACKUP_LABEL_MAX,
    BACKUP_LABEL_MIN,
    COOKIE_MASK_ALL,
    KIND_PROTECTION,
    PRIO_TRAIL,
    PROTECTION_GROUP_MAX,
    PROTECTION_GROUP_MIN,
    TABLE_FORWARD,
    make_cookie,
    trail_cookie,
)
from .policy import ClassWeights
from .topology import Topology, dpid_str
from .trails import Hop, Trail

MODES = ("link", "node", "none")
DEFAULT_MODE = "node"


def check_mode(mode: str) -> str:
    """`mode` if it is a protection mode (ValueError naming the choices if not)."""
    if mode not in MODES:
        raise ValueError(f"protection {mode!r}: expected one of {', '.join(MODES)}")
    return mode


@dataclass(frozen=True)
class Detour:
    """A backup path from `head` (leaving by `first_port`) through the `transit`
    switches to `merge`, where it arrives on `merge_port`."""

    head: int
    first_port: int
    transit: tuple[Hop, ...]
    merge: int
    merge_port: int

    @property
    def switches(self) -> tuple[int, ...]:
        """Every switch of the detour, head and merge included."""
        return (self.head, *(h.dpid for h in self.transit), self.merge)

    def links(self) -> list[tuple[int, int]]:
        """The (dpid, out_port) of every link the detour uses."""
        return [(self.head, self.first_port), *((h.dpid, h.out_port) for h in self.transit)]


@dataclass(frozen=True)
class Guard:
    """The protection of hop `index` (switch `dpid`, leaving by `port`).

    `kind` is "node" (the detour avoids the next switch), "link" (it avoids
    the cable) or "none" (unprotected, `reason` says why). `rejoin` is the
    index of the hop where the detour meets the trail again.
    """

    index: int
    dpid: int
    port: int
    kind: str
    detour: Detour | None = None
    rejoin: int | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON form (REST: a trail's "protection")."""
        data: dict[str, object] = {"hop": self.index, "dpid": dpid_str(self.dpid),
                                   "port": self.port, "protection": self.kind}
        if self.detour is not None:
            data["rejoin"] = self.rejoin
            data["detour"] = [dpid_str(d) for d in self.detour.switches]
        if self.reason:
            data["reason"] = self.reason
        return data


def unprotected(guards: Iterable[Guard]) -> list[Guard]:
    """The guards of hops left without a backup."""
    return [g for g in guards if g.kind == "none"]


# -- planning ----------------------------------------------------------------------------------
class DetourPlanner:
    """Backup detours on `topo` under one application's constraints.

    The detour graph (allowed switches, allowed links with their costs) is
    built on first use and again when the topology's version changes; detours
    are cached per (hop, avoided switch, rejoin candidates), so trails that
    need the same detour get the very same one (and share its entries).
    """

    def __init__(self, topo: Topology, constraints: Iterable[Constraint] = (),
                 weights: ClassWeights | None = None) -> None:
        self.topo = topo
        self.constraints = tuple(constraints)
        self.weights = weights or ClassWeights("default")
        self._graph: nx.DiGraph | None = None
        self._version = -1
        self._cache: dict[tuple[object, ...], Detour | None] = {}

    @property
    def graph(self) -> nx.DiGraph:
        """Allowed switches and links; an edge's "legs" are (cost, port, leg), cheapest first."""
        if self._graph is None or self._version != self.topo.version:
            allowed = {d for d in self.topo.switches
                       if all(c.allows_node(d) for c in self.constraints)}
            graph = nx.DiGraph()
            graph.add_nodes_from(sorted(allowed))
            for link in sorted(self.topo.links(), key=lambda lk: (lk.src, lk.src_port)):
                if link.src not in allowed or link.dst not in allowed:
                    continue
                leg = Leg.of(link)
                if not all(c.allows_link(leg) for c in self.constraints):
                    continue
                item = (_leg_cost(leg, self.weights, self.constraints), link.src_port, leg)
                if graph.has_edge(link.src, link.dst):
                    graph.edges[link.src, link.dst]["legs"].append(item)
                else:
                    graph.add_edge(link.src, link.dst, legs=[item])
            for _, _, data in graph.edges(data=True):
                data["legs"].sort(key=lambda item: item[:2])
            self._graph, self._version = graph, self.topo.version
            self._cache.clear()
        return self._graph

    def detour(self, head: int, port: int, targets: Sequence[int],
               avoid: int | None = None) -> Detour | None:
        """The least-cost detour from `head` around its link out of `port` (both
        directions of the cable) to the first of `targets` it reaches, not
        crossing switch `avoid`; None if there is none."""
        graph = self.graph
        key = (head, port, tuple(targets), avoid)
        if key in self._cache:
            return self._cache[key]
        cable = self.topo.link_from(head, port)
        banned = {(head, port)}
        if cable is not None:
            banned.add((cable.dst, cable.dst_port))

        def leg_of(u: int, v: int) -> tuple[float, Leg] | None:
            if avoid is not None and avoid in (u, v):
                return None
            for cost, src_port, leg in graph.edges[u, v]["legs"]:
                if (u, src_port) not in banned and (leg.dst, leg.dst_port) not in banned:
                    return cost, leg
            return None

        def weight(u: int, v: int, _data: Mapping[str, object]) -> float | None:
            found = leg_of(u, v)
            return None if found is None else found[0]

        found: Detour | None = None
        if head in graph:
            dist, paths = nx.single_source_dijkstra(graph, head, weight=weight)
            reachable = [(dist[t], i, t) for i, t in enumerate(targets) if t in dist and t != head]
            if reachable:
                path = paths[min(reachable)[2]]
                wanted = set(targets)
                cut = next(k for k, node in enumerate(path) if k and node in wanted)
                path = path[:cut + 1]
                legs = [leg_of(u, v) for u, v in zip(path, path[1:], strict=False)]
                chosen = [item[1] for item in legs if item is not None]
                transit = tuple(Hop(int(chosen[k].dst), int(chosen[k].dst_port or 0),
                                    int(chosen[k + 1].src_port or 0))
                                for k in range(len(chosen) - 1))
                found = Detour(head, int(chosen[0].src_port or 0), transit, int(path[-1]),
                               int(chosen[-1].dst_port or 0))
        self._cache[key] = found
        return found

    def _latency(self, links: Iterable[tuple[int, int]]) -> float:
        total = 0.0
        for dpid, port in links:
            link = self.topo.link_from(dpid, port)
            total += link.latency if link is not None else 0.0
        return total

    def guards(self, trail: Trail, mode: str = DEFAULT_MODE) -> tuple[Guard, ...]:
        """One Guard per hop of `trail` that leaves by an inter-switch link."""
        check_mode(mode)
        hops = trail.hops
        found = []
        base = self._latency((h.dpid, h.out_port) for h in hops[:-1] if h.via is None)
        for i, hop in enumerate(hops[:-1]):
            if hop.via is not None:
                continue  # the hop hands the packet to a network function, not to a link
            if mode == "none":
                found.append(Guard(i, hop.dpid, hop.out_port, "none",
                                   reason="protection is off (--protection none)"))
                continue
            # Rejoin at the latest where the next network function is handed the packet.
            end = next((m for m in range(i + 1, len(hops)) if hops[m].via is not None),
                       len(hops) - 1)
            guard = None
            why: list[str] = []
            if mode == "node" and i + 1 < end:
                guard = self._guard(trail, i, i + 2, end, hops[i + 1].dpid, base, why)
            if guard is None:
                guard = self._guard(trail, i, i + 1, end, None, base, why)
            if guard is None:
                guard = Guard(i, hop.dpid, hop.out_port, "none",
                              reason=self._reason(hops, i, why))
            found.append(guard)
        return tuple(found)

    def _reason(self, hops: Sequence[Hop], i: int, why: list[str]) -> str:
        name = self.topo.switch_name
        link = self.topo.link_from(hops[i].dpid, hops[i].out_port)
        towards = name(link.dst) if link is not None else f"port {hops[i].out_port}"
        policy = [d for d in (c.describe() for c in self.constraints) if d]
        text = f"no detour from {name(hops[i].dpid)} around its link to {towards}"
        if policy:
            text += " " + " ".join(dict.fromkeys(policy))
        return f"{text}: {'; '.join(dict.fromkeys(why))}" if why else text

    def _guard(self, trail: Trail, i: int, first: int, end: int, avoid: int | None,
               base_latency: float, why: list[str]) -> Guard | None:
        hops = trail.hops
        hop = hops[i]
        targets = [hops[m].dpid for m in range(first, end + 1)]
        detour = self.detour(hop.dpid, hop.out_port, targets, avoid)
        if detour is None:
            return None
        m = first + targets.index(detour.merge)
        at = hops[m]
        name = self.topo.switch_name
        others = {h.in_port for k, h in enumerate(hops) if h.dpid == at.dpid and k != m}
        if detour.merge_port in others:
            why.append(f"the detour arrives at {name(at.dpid)} on port {detour.merge_port}, "
                       "where the trail arrives on another visit")
            return None
        if detour.merge_port == at.out_port and not _exact(trail, m):
            why.append(f"the detour arrives at {name(at.dpid)} on the port the trail leaves by")
            return None
        replaced = [(h.dpid, h.out_port) for h in hops[i:m]]
        latency = base_latency - self._latency(replaced) + self._latency(detour.links())
        if not all(c.validate(latency) for c in self.constraints):
            why.append(f"the detoured trail takes {latency * 1e3:g} ms")
            return None
        return Guard(i, hop.dpid, hop.out_port, "node" if avoid is not None else "link",
                     detour, m)


def _exact(trail: Trail, m: int) -> bool:
    """Whether hop m's table-1 entry matches its arrival port (as compiler.hop_flows does)."""
    hop = trail.hops[m]
    visits = Counter(trail.switches)
    return visits[hop.dpid] > 1 or hop.out_port == hop.in_port


# -- shared state: backup labels, groups, references ----------------------------------------------
@dataclass(frozen=True)
class Armed:
    """What one trail holds of the shared protection: per protected hop index
    its fast-failover group id and its detour's backup label (None: a detour
    without transit switches needs no label)."""

    trail_id: int
    guards: tuple[Guard, ...]
    groups: tuple[tuple[int, int], ...] = ()  # (hop index, group id)
    labels: tuple[tuple[int, int | None], ...] = ()  # (hop index, backup label)

    @property
    def group_of(self) -> dict[int, int]:
        """hop index -> group id."""
        return dict(self.groups)


@dataclass
class _Shared:
    ident: int
    users: set[int] = field(default_factory=set)


def detour_flows(detour: Detour, label: int) -> list[FlowSpec]:
    """Table-1 entries of a detour's transit switches: forward on `label`, the last pops it."""
    cookie = make_cookie(KIND_PROTECTION, label)
    flows = []
    for k, hop in enumerate(detour.transit):
        last = k == len(detour.transit) - 1
        out = output(hop.out_port, hop.in_port)
        actions: list[Action] = [PopMpls(ETH_TYPE_MPLS), out] if last else [out]
        flows.append(FlowSpec.make(hop.dpid, TABLE_FORWARD, PRIO_TRAIL, label_match(label),
                                   actions, cookie=cookie))
    return flows


def failover_buckets(hop: Hop, detour: Detour, label: int | None) -> tuple[Bucket, ...]:
    """Bucket 0: the primary port; bucket 1: push the backup label, out on the detour."""
    backup: list[Action] = [PushMpls(), SetField("mpls_label", label)] if label is not None else []
    return (Bucket((output(hop.out_port, hop.in_port),), 0, hop.out_port),
            Bucket((*backup, output(detour.first_port, hop.in_port)), 0, detour.first_port))


class ProtectionTable:
    """Backup labels, fast-failover groups and who uses them, across all trails.

    `arm` takes a trail's guards and returns the operations that must be on
    the switches before the trail's path (new groups, new detour entries);
    `release` gives a trail's share back and returns the deletes of what no
    trail uses any more. Labels come from BACKUP_LABEL_MIN..MAX, group ids
    from PROTECTION_GROUP_MIN..MAX.
    """

    def __init__(self) -> None:
        self.labels = LabelAllocator(BACKUP_LABEL_MIN, BACKUP_LABEL_MAX)
        self._detours: dict[Detour, _Shared] = {}
        self._groups: dict[tuple[int, tuple[Bucket, ...]], _Shared] = {}
        self._gid_next = PROTECTION_GROUP_MIN
        self._gid_free: list[int] = []
        self.armed: dict[int, Armed] = {}
        # Groups and detour labels found on switches from before a restart (kept
        # until the trails using them are armed again; never allocated meanwhile).
        self.legacy_groups: set[tuple[int, int]] = set()
        self.legacy_labels: set[tuple[int, int]] = set()

    def _gid(self) -> int:
        """A group id: fresh ones first, freed ones only after every fresh one (a
        freed id's delete may still be on its way, in the same Change as a new
        group: taking it back at once would have that delete remove the new group)."""
        legacy = {gid for _, gid in self.legacy_groups}
        while self._gid_next in legacy:
            self._gid_next += 1
        if self._gid_next <= PROTECTION_GROUP_MAX:
            self._gid_next += 1
            return self._gid_next - 1
        while self._gid_free:
            gid = self._gid_free.pop(0)
            if gid not in legacy:
                return gid
        raise LabelExhausted("every protection group id is in use")

    def adopt(self, dpid: int, gids: Iterable[int], labels: Iterable[int]) -> None:
        """Group ids and backup labels found on switch `dpid` that no trail of this
        table holds (from before a restart): not allocated until `forget_legacy`."""
        ours = {shared.ident for shared in self._detours.values()}
        for gid in gids:
            self.legacy_groups.add((dpid, gid))
        for label in labels:
            if label in ours or (dpid, label) in self.legacy_labels:
                continue
            if not any(lb == label for _, lb in self.legacy_labels):
                try:
                    self.labels.reserve(label)
                except ValueError:  # in use by a detour of ours, or out of range
                    continue
            self.legacy_labels.add((dpid, label))

    def forget_legacy(self) -> list[Op]:
        """Deletes of every adopted group and detour entry; their ids become free."""
        ops: list[Op] = [GroupDelete(dpid, gid) for dpid, gid in sorted(self.legacy_groups)]
        ops += [FlowDelete(dpid, make_cookie(KIND_PROTECTION, label), COOKIE_MASK_ALL)
                for dpid, label in sorted(self.legacy_labels)]
        for label in {label for _, label in self.legacy_labels}:
            self.labels.release(label)
        self.legacy_groups.clear()
        self.legacy_labels.clear()
        return ops

    @property
    def detour_count(self) -> int:
        """Detours with a backup label installed (shared ones counted once)."""
        return len(self._detours)

    @property
    def group_count(self) -> int:
        """Fast-failover groups installed (shared ones counted once)."""
        return len(self._groups)

    def arm(self, trail: Trail, guards: Iterable[Guard]) -> tuple[Armed, list[Op]]:
        """Take `trail`'s share of the detours and groups its guards need.

        Returns the Armed record and the ops to install first (groups and
        detour entries nobody had yet). On exhaustion of labels or group ids
        the remaining hops stay unprotected (said in their guard).
        """
        guards = tuple(guards)
        ops: list[Op] = []
        groups: list[tuple[int, int]] = []
        labels: list[tuple[int, int | None]] = []
        kept: list[Guard] = []
        for guard in guards:
            if guard.detour is None:
                kept.append(guard)
                continue
            hop = trail.hops[guard.index]
            try:
                label, new = self._take_detour(guard.detour, trail.id)
            except LabelExhausted as exc:
                kept.append(Guard(guard.index, guard.dpid, guard.port, "none", reason=str(exc)))
                continue
            ops.extend(new)
            buckets = failover_buckets(hop, guard.detour, label)
            try:
                gid, new_group = self._take_group(hop.dpid, buckets, trail.id)
            except LabelExhausted as exc:
                ops.extend(self._drop_detour(guard.detour, trail.id))
                kept.append(Guard(guard.index, guard.dpid, guard.port, "none", reason=str(exc)))
                continue
            ops.extend(new_group)
            groups.append((guard.index, gid))
            labels.append((guard.index, label))
            kept.append(guard)
        armed = Armed(trail.id, tuple(kept), tuple(groups), tuple(labels))
        self.armed[trail.id] = armed
        groups_first = [op for op in ops if isinstance(op, GroupSpec)]
        return armed, groups_first + [op for op in ops if not isinstance(op, GroupSpec)]

    def _take_detour(self, detour: Detour, user: int) -> tuple[int | None, list[Op]]:
        if not detour.transit:
            return None, []
        shared = self._detours.get(detour)
        if shared is not None:
            shared.users.add(user)
            return shared.ident, []
        label = self.labels.allocate()
        self._detours[detour] = _Shared(label, {user})
        return label, list(detour_flows(detour, label))

    def _drop_detour(self, detour: Detour, user: int) -> list[Op]:
        shared = self._detours.get(detour)
        if shared is None:
            return []
        shared.users.discard(user)
        if shared.users:
            return []
        del self._detours[detour]
        self.labels.release(shared.ident)
        cookie = make_cookie(KIND_PROTECTION, shared.ident)
        return [FlowDelete(h.dpid, cookie, COOKIE_MASK_ALL) for h in detour.transit]

    def _take_group(self, dpid: int, buckets: tuple[Bucket, ...], user: int
                    ) -> tuple[int, list[Op]]:
        key = (dpid, buckets)
        shared = self._groups.get(key)
        if shared is not None:
            shared.users.add(user)
            return shared.ident, []
        gid = self._gid()
        self._groups[key] = _Shared(gid, {user})
        return gid, [GroupSpec(dpid, gid, "fast_failover", buckets)]

    def release(self, trail_id: int) -> list[Op]:
        """Give back `trail_id`'s share; the deletes of groups and detours left unused.

        Send them after the trail's own flows are gone (a group delete takes
        the flows pointing at it along).
        """
        armed = self.armed.pop(trail_id, None)
        if armed is None:
            return []
        ops: list[Op] = []
        for key, shared in list(self._groups.items()):
            if trail_id in shared.users:
                shared.users.discard(trail_id)
                if not shared.users:
                    del self._groups[key]
                    self._gid_free.append(shared.ident)
                    ops.append(GroupDelete(key[0], shared.ident))
        for guard in armed.guards:
            if guard.detour is not None:
                ops.extend(self._drop_detour(guard.detour, trail_id))
        return ops

    def specs(self, dpid: int | None = None) -> list[FlowSpec | GroupSpec]:
        """Every group and detour entry held now (of switch `dpid`, or all)."""
        out: list[FlowSpec | GroupSpec] = []
        for (at, buckets), shared in self._groups.items():
            if dpid is None or at == dpid:
                out.append(GroupSpec(at, shared.ident, "fast_failover", buckets))
        for detour, shared in self._detours.items():
            out.extend(f for f in detour_flows(detour, shared.ident)
                       if dpid is None or f.dpid == dpid)
        return out


# -- a trail's own flows, protected ---------------------------------------------------------------
def rejoin_flows(trail: Trail, armed: Armed) -> list[FlowSpec]:
    """Entries of `trail` for detours arriving where its entry matches the arrival
    port (a switch it visits twice, or a hop leaving by its arrival port)."""
    flows: dict[tuple[object, ...], FlowSpec] = {}
    protected = armed.group_of
    for guard in armed.guards:
        if guard.detour is None or guard.rejoin is None or guard.index not in protected:
            continue
        m = guard.rejoin
        if not _exact(trail, m):
            continue
        hop = trail.hops[m]
        arrival = guard.detour.merge_port
        out = output(hop.out_port, arrival)
        last = m == len(trail.hops) - 1
        if last or hop.via is not None:
            rewrites = [SetField(k, v) for k, v in trail.rewrite] if last else []
            actions: list[Action] = [PopMpls(ETH_TYPE_IPV4), *rewrites, out]
        else:
            actions = [out]
        flow = FlowSpec.make(hop.dpid, TABLE_FORWARD, PRIO_TRAIL,
                             label_match(trail.label, arrival), actions,
                             cookie=trail_cookie(trail.id))
        flows[flow.key] = flow
    return list(flows.values())


def guarded_hop_flows(trail: Trail, armed: Armed | None) -> list[FlowSpec]:
    """compiler.hop_flows with each protected hop's output replaced by its group,
    plus the rejoin entries; the plain hop flows when `armed` is None."""
    flows = hop_flows(trail)
    if armed is None or not armed.groups:
        return flows
    protected = armed.group_of
    by_index = list(reversed(flows))  # hop_flows lists the egress first
    for index, gid in protected.items():
        flow = by_index[index]
        by_index[index] = FlowSpec(flow.dpid, flow.table, flow.priority, flow.match,
                                   (Group(gid),), flow.goto, flow.cookie)
    return [*reversed(by_index), *rejoin_flows(trail, armed)]


def guarded_trail_flows(trail: Trail, armed: Armed | None) -> list[FlowSpec]:
    """Every flow of a protected trail, in install order (classifier last)."""
    return guarded_hop_flows(trail, armed) + reentry_flows(trail) + classifier_flows(trail)


# -- detection without carrier loss: BFD on inter-switch links ------------------------------------
BFD_MAX_MS = 10_000


def bfd_options(interval_ms: int) -> dict[str, str | None]:
    """The Interface ``bfd`` column for links checked every `interval_ms` ms (0: BFD off).

    Open vSwitch declares the session down after 3 intervals without a packet
    and the port is then not live for fast-failover groups, carrier or not.
    """
    if isinstance(interval_ms, bool) or not isinstance(interval_ms, int) \
            or not 0 <= interval_ms <= BFD_MAX_MS:
        raise ValueError(f"BFD interval {interval_ms!r}: expected 0 (off) to {BFD_MAX_MS} ms")
    if not interval_ms:
        return {"enable": "false"}
    ms = str(interval_ms)
    return {"enable": "true", "min_tx": ms, "min_rx": ms, "decay_min_rx": None}
