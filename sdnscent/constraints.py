"""Policy-constrained path search: constraint objects and network-function chains.

Constraints are small objects in the style of ONOS intents: hard ones prune
switches, network functions (NFs) and links, soft ones add a cost per link, and
the search never changes when a kind is added. `plan_chain` routes a trail from
host to host through NFs of given roles, in order, with one least-cost search on
a layered graph (layer i = "the first i NFs of the chain are behind us").

Example::

    nfs = [NetworkFunction("fw1", "firewall", (5, 7), (5, 8), "core", 2)]
    hops = plan_chain(topo, h1, h9, ("firewall",), nfs,
                      [AvoidZones({"dmz"}, attrs), MinLevel(2, attrs)])
    # NoPathError("no path from 10.0.0.1 to 10.0.0.9 avoiding zone dmz through
    #              switches of level >= 2 that passes a firewall: ...") if none
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from heapq import heappop, heappush
from itertools import count, islice, pairwise
from typing import Any

import networkx as nx

from .planner import LOAD_STEP, NoPathError, pair_key, stable_hash, stepped
from .policy import Application, ClassWeights, Policy
from .topology import Host, Link, Topology, TopologyError, dpid_str, parse_dpid
from .trails import Hop

Node = int | str  # a switch (dpid) or a network function (name)
ZoneLevel = tuple[str | None, int]  # (zone or None, security level)
NodeAttrs = Mapping[Node, ZoneLevel]
UNKNOWN: ZoneLevel = (None, 0)  # a node missing from an attribute map

# A layered-graph node: (dpid, layer) for a switch, (nf name, layer, "ab"|"ba")
# for a network function traversed in that direction (entering side a or b).
LayerNode = tuple[int, int] | tuple[str, int, str]

MIN_COST = 1e-6  # a leg never costs less: keeps least-cost paths loop-free
LATENCY_ALTERNATIVES = 8  # least-cost paths tried before the fastest one
MAX_TRIES = 64  # searches spent on avoiding repeated arrivals


# -- legs: the edges constraints look at ---------------------------------------------------------
@dataclass(frozen=True)
class Leg:
    """One directed edge of the planning graph, as constraints see it.

    An inter-switch link (`src`, `dst` dpids, both ports set), the wire from a
    switch port into a network function (`dst` is the NF's name, `dst_port`
    None) or the wire from an NF into a switch port (`src` is the NF's name,
    `src_port` None). `capacity` in bit/s, `latency` in seconds.
    """

    src: Node
    src_port: int | None
    dst: Node
    dst_port: int | None
    capacity: float
    latency: float = 0.0

    @classmethod
    def of(cls, link: Link) -> Leg:
        """The leg of an inter-switch link direction."""
        return cls(link.src, link.src_port, link.dst, link.dst_port, link.capacity, link.latency)

    @property
    def out_key(self) -> tuple[int, int] | None:
        """The (dpid, port) the leg leaves by (the utilisation map's key); None from an NF."""
        if self.src_port is None or isinstance(self.src, str):
            return None
        return (self.src, self.src_port)

    def switch_ports(self) -> list[tuple[int, int]]:
        """The switch ports at either end of the wire, (dpid, port) each."""
        ends = []
        if self.src_port is not None and isinstance(self.src, int):
            ends.append((self.src, self.src_port))
        if self.dst_port is not None and isinstance(self.dst, int):
            ends.append((self.dst, self.dst_port))
        return ends


# -- constraints -----------------------------------------------------------------------------
class Constraint:
    """Base of every constraint: allows everything and costs nothing.

    A kind overrides what it restricts. `describe()` is the phrase a "no path"
    reason uses ("avoiding zone dmz"); a constraint that restricts nothing (an
    empty avoid list, a soft cost) describes itself as "" and is left out.
    """

    def allows_node(self, node: Node) -> bool:
        """May a path cross `node` (a dpid or an NF name)?"""
        return True

    def allows_link(self, leg: Leg) -> bool:
        """May a path use `leg`?"""
        return True

    def cost(self, leg: Leg) -> float:
        """Extra cost of using `leg` (soft constraints)."""
        return 0.0

    def validate(self, path_latency: float) -> bool:
        """Is a whole path with this end-to-end latency (seconds) acceptable?"""
        return True

    def describe(self) -> str:
        """The phrase for reasons, e.g. "avoiding zone dmz"; "" when inactive."""
        return ""


def _names(items: Iterable[object]) -> str:
    return ", ".join(sorted(str(i) for i in items))


def _zone_level(attrs: NodeAttrs, node: Node) -> ZoneLevel:
    return attrs.get(node, UNKNOWN)


def format_rate(bps: float) -> str:
    """A bit rate for people: 10 Mbit/s, 1.5 Gbit/s, 800 bit/s."""
    for unit, scale in (("Tbit/s", 1e12), ("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:g} {unit}"
    return f"{bps:g} bit/s"


@dataclass(frozen=True, eq=False)
class AvoidNodes(Constraint):
    """Never cross these switches (dpids) or network functions (names).

    `names` labels nodes in the reason (e.g. dpid -> switch name); a dpid
    without a name is shown as 16 hex digits.
    """

    nodes: frozenset[Node]
    names: Mapping[Node, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", frozenset(self.nodes))

    def allows_node(self, node: Node) -> bool:
        return node not in self.nodes

    def describe(self) -> str:
        if not self.nodes:
            return ""
        labels = (self.names.get(n) or (dpid_str(n) if isinstance(n, int) else n)
                  for n in self.nodes)
        return f"avoiding {_names(labels)}"


@dataclass(frozen=True, eq=False)
class AvoidZones(Constraint):
    """Never cross a switch or NF in one of `zones` (zones from `attrs`)."""

    zones: frozenset[str]
    attrs: NodeAttrs

    def __post_init__(self) -> None:
        object.__setattr__(self, "zones", frozenset(self.zones))

    def allows_node(self, node: Node) -> bool:
        return _zone_level(self.attrs, node)[0] not in self.zones

    def describe(self) -> str:
        if not self.zones:
            return ""
        return f"avoiding zone{'s' if len(self.zones) > 1 else ''} {_names(self.zones)}"


@dataclass(frozen=True, eq=False)
class AllowedZones(Constraint):
    """Cross only switches and NFs in one of `zones`.

    A node without a zone is refused unless `allow_unzoned` (fail closed: a
    switch someone forgot to classify is not trusted with restricted data).
    """

    zones: frozenset[str]
    attrs: NodeAttrs
    allow_unzoned: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "zones", frozenset(self.zones))

    def allows_node(self, node: Node) -> bool:
        zone = _zone_level(self.attrs, node)[0]
        return zone in self.zones if zone is not None else self.allow_unzoned

    def describe(self) -> str:
        if not self.zones:
            return "through no zone at all"
        return f"only through zone{'s' if len(self.zones) > 1 else ''} {_names(self.zones)}"


@dataclass(frozen=True, eq=False)
class MinLevel(Constraint):
    """Never cross a switch or NF whose security level is below `level`.

    Nodes missing from `attrs` have level 0. Inactive (no phrase) when no
    node can be below `level`.
    """

    level: int
    attrs: NodeAttrs

    def allows_node(self, node: Node) -> bool:
        return _zone_level(self.attrs, node)[1] >= self.level

    def describe(self) -> str:
        lowest = min((lv for _, lv in self.attrs.values()), default=0)
        if self.level <= min(lowest, 0):
            return ""
        return f"through switches of level >= {self.level}"


@dataclass(frozen=True, eq=False)
class UtilisationCap(Constraint):
    """Never use a link whose utilisation (0..1, keyed by (dpid, out port)) is above `cap`.

    A cap of 1 or more is inactive: measurements overshoot, and "never above
    100%" is what every link already is.
    """

    utilisation: Mapping[tuple[int, int], float]
    cap: float

    def allows_link(self, leg: Leg) -> bool:
        if self.cap >= 1.0:
            return True
        key = leg.out_key
        return key is None or self.utilisation.get(key, 0.0) <= self.cap

    def describe(self) -> str:
        return "" if self.cap >= 1.0 else f"on links at or below {self.cap * 100:g}% utilisation"


@dataclass(frozen=True, eq=False)
class MinBandwidth(Constraint):
    """Use only links with `bandwidth` bit/s spare: capacity * (1 - utilisation) >= bandwidth.

    The wire from an NF back into a switch has no utilisation of its own in the
    map (it is keyed by the port a link leaves); its full capacity counts.
    """

    bandwidth: float
    utilisation: Mapping[tuple[int, int], float] = field(default_factory=dict)

    def allows_link(self, leg: Leg) -> bool:
        key = leg.out_key
        used = self.utilisation.get(key, 0.0) if key else 0.0
        return leg.capacity * (1.0 - used) >= self.bandwidth

    def describe(self) -> str:
        if self.bandwidth <= 0:
            return ""
        return f"with {format_rate(self.bandwidth)} spare on every link"


@dataclass(frozen=True, eq=False)
class ExcludeLinks(Constraint):
    """Isolation: use no cable one of whose ends is in `links` ((dpid, port) each).

    Give the (dpid, out_port) of every hop of the trails to keep away from (as
    Trail.links() lists them, including hops into an NF): both directions of
    those cables, and the wires to and from those NF ports, are refused.
    """

    links: frozenset[tuple[int, int]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "links", frozenset(self.links))

    def allows_link(self, leg: Leg) -> bool:
        return not any(end in self.links for end in leg.switch_ports())

    def describe(self) -> str:
        return "sharing no link with isolated applications" if self.links else ""


@dataclass(frozen=True, eq=False)
class ExcludeSwitches(Constraint):
    """Isolation: cross none of `nodes` (dpids of switches, or NF names, other trails use)."""

    nodes: frozenset[Node]

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", frozenset(self.nodes))

    def allows_node(self, node: Node) -> bool:
        return node not in self.nodes

    def describe(self) -> str:
        return "sharing no switch with isolated applications" if self.nodes else ""


@dataclass(frozen=True, eq=False)
class MaxLatency(Constraint):
    """End-to-end latency (sum of link latencies, seconds) at most `seconds`.

    Checked on the whole path with `validate`; a single link slower than the
    bound is pruned at once.
    """

    seconds: float

    def allows_link(self, leg: Leg) -> bool:
        return leg.latency <= self.seconds

    def validate(self, path_latency: float) -> bool:
        return path_latency <= self.seconds

    def describe(self) -> str:
        return f"within {self.seconds * 1e3:g} ms"


@dataclass(frozen=True, eq=False)
class LoadCost(Constraint):
    """Soft: `weight` per unit of utilisation of the link a leg leaves by, in
    whole `step`s as the planner counts it (planner.stepped)."""

    utilisation: Mapping[tuple[int, int], float]
    weight: float
    step: float = LOAD_STEP

    def cost(self, leg: Leg) -> float:
        key = leg.out_key
        return self.weight * stepped(self.utilisation.get(key, 0.0), self.step) if key else 0.0


@dataclass(frozen=True, eq=False)
class SecurityCost(Constraint):
    """Soft: `weight` * (max_level - level of the node a leg enters).

    `max_level` defaults to the highest level in `attrs`, so a trail through
    the most trusted nodes costs nothing extra.
    """

    attrs: NodeAttrs
    weight: float
    max_level: int | None = None

    def __post_init__(self) -> None:
        if self.max_level is None:
            top = max((lv for _, lv in self.attrs.values()), default=0)
            object.__setattr__(self, "max_level", top)

    def cost(self, leg: Leg) -> float:
        below = (self.max_level or 0) - _zone_level(self.attrs, leg.dst)[1]
        return self.weight * max(below, 0)


def soft_costs(weights: ClassWeights, utilisation: Mapping[tuple[int, int], float] | None = None,
               attrs: NodeAttrs | None = None) -> list[Constraint]:
    """The load and security soft costs of a data class (those with a weight and data).

    Hop and latency weights need no data: plan_chain applies them itself.
    """
    costs: list[Constraint] = []
    if weights.load and utilisation:
        costs.append(LoadCost(utilisation, weights.load))
    if weights.security and attrs:
        costs.append(SecurityCost(attrs, weights.security))
    return costs


# -- network functions -----------------------------------------------------------------------
@dataclass(frozen=True)
class NetworkFunction:
    """A transparent, bump-in-the-wire network function.

    Traffic entering on side a leaves on side b and vice versa; each side is
    the (dpid, port) of the switch port it hangs off (both may be on one switch).
    """

    name: str
    role: str
    side_a: tuple[int, int]
    side_b: tuple[int, int]
    zone: str | None = None
    level: int = 0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a network function needs a name")
        if tuple(self.side_a) == tuple(self.side_b):
            raise ValueError(f"network function {self.name}: both sides on "
                             f"{dpid_str(self.side_a[0])} port {self.side_a[1]}")

    def traversals(self) -> tuple[tuple[tuple[int, int], tuple[int, int], str], ...]:
        """(entry port, exit port, direction) for both ways through."""
        return traversals(self)


def traversals(nf: NetworkFunction) -> tuple[tuple[tuple[int, int], tuple[int, int], str], ...]:
    """(entry port, exit port, direction) for both ways through `nf`.

    Works on any object with `side_a` and `side_b` (duck-typed NFs).
    """
    a, b = (nf.side_a[0], nf.side_a[1]), (nf.side_b[0], nf.side_b[1])
    return ((a, b, "ab"), (b, a, "ba"))


def resolve_switch(topo: Topology, ref: str | int) -> int | None:
    """The dpid a policy names by switch name or dpid; None if it names nothing known."""
    if isinstance(ref, int):
        return ref
    for dpid, switch in topo.switches.items():
        if switch.name == ref:
            return dpid
    try:
        return parse_dpid(ref)
    except TopologyError:
        return None


def network_functions(policy: Policy, topo: Topology) -> list[NetworkFunction]:
    """The policy's NF nodes as planning objects (side a = first attachment), by name.

    An NF whose attachments do not name two known ports is left out.
    """
    nfs = []
    for spec in sorted(policy.network_functions(), key=lambda s: s.name):
        if len(spec.attach) != 2:
            continue
        sides = [(resolve_switch(topo, a.switch), a.port) for a in spec.attach]
        if any(dpid is None for dpid, _ in sides) or sides[0] == sides[1]:
            continue
        (da, pa), (db, pb) = sides
        assert da is not None and db is not None
        nfs.append(NetworkFunction(spec.name, spec.role or "", (da, pa), (db, pb), spec.zone,
                                   policy.level_of(spec.name)))
    return nfs


def node_attrs(topo: Topology, policy: Policy, nfs: Iterable[NetworkFunction] = ()
               ) -> dict[Node, ZoneLevel]:
    """Zone and level of every switch (from the policy's switch nodes) and NF.

    Switches the policy does not describe get (None, 0).
    """
    attrs: dict[Node, ZoneLevel] = {dpid: UNKNOWN for dpid in topo.switches}
    for spec in policy.nodes.values():
        if spec.kind == "switch":
            dpid = resolve_switch(topo, spec.name)
            if dpid is not None:
                attrs[dpid] = (policy.zone_of(spec.name), policy.level_of(spec.name))
    for nf in nfs:
        attrs[nf.name] = (nf.zone, nf.level)
    return attrs


def app_constraints(app: Application, policy: Policy, topo: Topology, attrs: NodeAttrs, *,
                    utilisation: Mapping[tuple[int, int], float] | None = None,
                    isolated_links: Iterable[tuple[int, int]] = (),
                    isolated_switches: Iterable[Node] = ()) -> list[Constraint]:
    """Every constraint and soft cost the policy puts on `app`'s trails.

    Avoided nodes are names (switch names, dpids or NF names). The isolation
    sets are what the trails of applications `app` must keep away from use;
    the caller picks them by `app.requirements.isolation`. Pass the result with
    `policy.chain_of(app)` and `policy.weights_of(app)` to plan_chain.
    """
    req = app.requirements
    rules = policy.classification_of(app)
    util = utilisation or {}
    found: list[Constraint] = []
    if req.avoid_nodes:
        nodes: dict[Node, str] = {}
        for name in req.avoid_nodes:
            dpid = resolve_switch(topo, name)
            nodes[dpid if dpid in topo.switches else name] = name
        found.append(AvoidNodes(frozenset(nodes), nodes))
    if req.avoid_zones:
        found.append(AvoidZones(req.avoid_zones, attrs))
    if rules.allowed_zones is not None:
        found.append(AllowedZones(rules.allowed_zones, attrs))
    if rules.min_level:
        found.append(MinLevel(rules.min_level, attrs))
    if policy.limits.max_utilization < 1.0:
        found.append(UtilisationCap(util, policy.limits.max_utilization))
    if req.min_bandwidth:
        found.append(MinBandwidth(req.min_bandwidth, util))
    links = frozenset(isolated_links)
    if links:
        found.append(ExcludeLinks(links))
    switches = frozenset(isolated_switches)
    if switches:
        found.append(ExcludeSwitches(switches))
    if req.max_latency is not None:
        found.append(MaxLatency(req.max_latency))
    return found + soft_costs(policy.weights_of(app), util, attrs)


# -- the layered graph -----------------------------------------------------------------------
def _is_switch(node: LayerNode) -> bool:
    return isinstance(node[0], int)


def _order(node: LayerNode) -> tuple[int, int, int, str, str]:
    """Sort key of layered nodes: switches by dpid (as Planner sorts paths), then NFs."""
    if isinstance(node[0], int):
        return (0, node[0], node[1], "", "")
    return (1, 0, node[1], str(node[0]), str(node[2]))


def _leg_cost(leg: Leg, weights: ClassWeights, constraints: Sequence[Constraint]) -> float:
    # The same arithmetic as planner.CostModel.link_cost, so that an unconstrained
    # plan ties and breaks ties exactly like Planner does.
    cost = weights.hop + weights.latency * leg.latency * 1e3
    extra = sum(c.cost(leg) for c in constraints)
    if extra:
        cost = cost + extra
    if cost < 0:
        raise ValueError(f"negative cost {cost} for the leg {leg}")
    return max(cost, MIN_COST)


def _allowed(leg: Leg, constraints: Sequence[Constraint]) -> bool:
    return all(c.allows_link(leg) for c in constraints)


def _nf_legs(topo: Topology, nf: NetworkFunction, entry: tuple[int, int],
             exit_: tuple[int, int]) -> tuple[Leg, Leg]:
    into = Leg(entry[0], entry[1], nf.name, None, topo.link_capacity(*entry))
    out = Leg(nf.name, None, exit_[0], exit_[1], topo.link_capacity(*exit_))
    return into, out


def check_network_functions(topo: Topology, nfs: Iterable[NetworkFunction]) -> None:
    """Raise ValueError for duplicate NF names, TopologyError for a side on a link port."""
    seen: set[str] = set()
    for nf in nfs:
        if nf.name in seen:
            raise ValueError(f"two network functions are called {nf.name}")
        seen.add(nf.name)
        for label, (dpid, port) in (("a", nf.side_a), ("b", nf.side_b)):
            if dpid in topo.switches and topo.is_link_port(dpid, port):
                raise TopologyError(f"network function {nf.name}: side {label} "
                                    f"({topo.switch_name(dpid)} port {port}) is an "
                                    "inter-switch link port")


def layered_graph(topo: Topology, chain: Sequence[str] = (), nfs: Iterable[NetworkFunction] = (),
                  constraints: Sequence[Constraint] = (), weights: ClassWeights | None = None
                  ) -> nx.DiGraph:
    """The pruned, weighted planning graph for a chain of NF roles.

    Nodes are (dpid, i) for allowed switches in layers i = 0..len(chain), and
    (nf name, i, "ab"|"ba") for each allowed NF of role chain[i] and way
    through. Edges: allowed links between two switches in every layer, and
    switch -> NF -> switch from layer i to i + 1. Every edge has `cost`,
    `latency` (s) and `leg` of its cheapest link (lowest port among equals) and
    `legs`, every allowed (cost, port, leg) sorted. Hop and latency costs come
    from `weights` (ClassWeights defaults when None); constraints add theirs.
    """
    weights = weights or ClassWeights("default")
    constraints = tuple(constraints)
    nfs = list(nfs)
    check_network_functions(topo, nfs)
    switches = sorted(d for d in topo.switches if all(c.allows_node(d) for c in constraints))
    allowed = set(switches)
    parallel: dict[tuple[int, int], list[tuple[float, int, Leg]]] = defaultdict(list)
    for link in topo.links():
        if link.src not in allowed or link.dst not in allowed:
            continue
        leg = Leg.of(link)
        if _allowed(leg, constraints):
            parallel[(link.src, link.dst)].append(
                (_leg_cost(leg, weights, constraints), link.src_port, leg))
    pairs = []
    for (u, v), legs in sorted(parallel.items()):
        legs.sort(key=lambda c: c[:2])
        pairs.append((u, v, {"cost": legs[0][0], "latency": legs[0][2].latency,
                             "leg": legs[0][2], "legs": legs}))
    graph = nx.DiGraph()
    for layer in range(len(chain) + 1):
        graph.add_nodes_from((d, layer) for d in switches)
        graph.add_edges_from(((u, layer), (v, layer), data) for u, v, data in pairs)
    for layer, role in enumerate(chain):
        for nf in sorted(nfs, key=lambda n: n.name):
            if nf.role != role or not all(c.allows_node(nf.name) for c in constraints):
                continue
            for entry, exit_, way in traversals(nf):
                if entry[0] not in allowed or exit_[0] not in allowed:
                    continue
                into, out = _nf_legs(topo, nf, entry, exit_)
                if not (_allowed(into, constraints) and _allowed(out, constraints)):
                    continue
                here = (nf.name, layer, way)
                for u, v, leg in (((entry[0], layer), here, into),
                                  (here, (exit_[0], layer + 1), out)):
                    cost = _leg_cost(leg, weights, constraints)
                    graph.add_edge(u, v, cost=cost, latency=leg.latency, leg=leg,
                                   legs=[(cost, 0, leg)])
    return graph


Weight = str | Callable[[LayerNode, LayerNode, dict[str, Any]], float | None]
Ban = tuple[int, int, int]  # (dpid, in_port, layer): the path may not arrive there


def least_cost_path(graph: nx.DiGraph, source: LayerNode, target: LayerNode,
                    flow_key: Sequence[object], weight: Weight = "cost"
                    ) -> list[LayerNode] | None:
    """One least-cost path, picked among equals by stable_hash(flow_key); None if none.

    Equal-cost paths are ordered as sorted() orders them (switches by dpid) and
    the pick is the one `sorted(all_shortest_paths)[hash % n]` would give, found
    by counting paths instead of listing them (chains multiply ECMP choices).
    """
    if source not in graph or target not in graph:
        return None
    pred, dist = nx.dijkstra_predecessor_and_distance(graph, source, weight=weight)
    if target not in dist:
        return None
    succ: dict[LayerNode, list[LayerNode]] = defaultdict(list)
    seen = {target}
    todo = [target]
    while todo:
        node = todo.pop()
        for before in pred[node]:
            succ[before].append(node)
            if before not in seen:
                seen.add(before)
                todo.append(before)
    count: dict[LayerNode, int] = {target: 1}
    stack: list[tuple[LayerNode, bool]] = [(source, False)]
    while stack:
        node, ready = stack.pop()
        if node in count:
            continue
        if ready:
            count[node] = sum(count[n] for n in succ[node])
            continue
        stack.append((node, True))
        stack.extend((n, False) for n in succ[node] if n not in count)
    index = stable_hash(*flow_key) % count[source]
    path = [source]
    node = source
    while node != target:
        for nxt in sorted(succ[node], key=_order):
            if index < count[nxt]:
                node = nxt
                break
            index -= count[nxt]
        path.append(node)
    return path


def _choice(head: LayerNode, data: dict[str, Any], bans: frozenset[Ban],
            fastest: bool = False) -> tuple[float, Leg] | None:
    """The cheapest (or fastest) leg of an edge that does not arrive where `bans` forbid."""
    allowed = [(cost, leg) for cost, _, leg in data["legs"]
               if not bans or leg.dst_port is None or (leg.dst, leg.dst_port, head[1]) not in bans]
    if not allowed:
        return None
    if fastest:  # parallel links: the cheapest leg is not always the fastest
        return min(allowed, key=lambda item: item[1].latency)
    return allowed[0]


def _weight(bans: frozenset[Ban], what: str = "cost") -> Weight:
    if not bans and what == "cost":
        return what

    def weight(_u: LayerNode, v: LayerNode, data: dict[str, Any]) -> float | None:
        choice = _choice(v, data, bans, fastest=what == "latency")
        if choice is None:
            return None
        return choice[0] if what == "cost" else choice[1].latency
    return weight


def _legs(graph: nx.DiGraph, path: Sequence[LayerNode], bans: frozenset[Ban],
          fastest: bool = False) -> tuple[float, list[Leg]]:
    """Cost and legs of a path found under `bans` (its fastest legs if `fastest`)."""
    cost, legs = 0.0, []
    for u, v in pairwise(path):
        choice = _choice(v, graph.edges[u, v], bans, fastest)
        assert choice is not None, (u, v)
        cost += choice[0]
        legs.append(choice[1])
    return cost, legs


def path_latency(graph: nx.DiGraph, path: Sequence[LayerNode]) -> float:
    """End-to-end latency (seconds) of a layered-graph path over its cheapest legs."""
    return sum(graph.edges[u, v]["latency"] for u, v in pairwise(path))


def _conflict(path: Sequence[LayerNode], legs: Sequence[Leg]) -> tuple[int, int, list[int]] | None:
    """The first switch port the path arrives by in two layers: (dpid, port, layers)."""
    layers: dict[tuple[int, int], list[int]] = defaultdict(list)
    for head, leg in zip(path[1:], legs, strict=True):
        if _is_switch(head) and leg.dst_port is not None:
            layers[(int(head[0]), leg.dst_port)].append(head[1])
    for (dpid, port), seen in layers.items():
        if len(seen) > 1:
            return dpid, port, seen
    return None


def _latency_ok(legs: Sequence[Leg], constraints: Sequence[Constraint]) -> bool:
    latency = sum(leg.latency for leg in legs)
    return all(c.validate(latency) for c in constraints)


class _Search:
    """Least-cost path with whole-path checks: latency bounds and, optionally, distinct arrivals.

    Arrivals: a path may arrive at a switch port at most once (one trail label
    plus the arrival port must tell visits apart). When the least-cost path
    arrives somewhere twice, the search branches: in one branch that arrival
    is banned in the first layer using it, in another in the second... and
    goes on best-first by cost, which finds the least-cost path without
    repeated arrivals (within MAX_TRIES searches).
    """

    def __init__(self, graph: nx.DiGraph, source: LayerNode, target: LayerNode,
                 flow_key: Sequence[object], constraints: Sequence[Constraint],
                 distinct_arrivals: bool, name: Callable[[int], str] = dpid_str) -> None:
        self.graph, self.source, self.target = graph, source, target
        self.flow_key, self.constraints = flow_key, constraints
        self.distinct_arrivals = distinct_arrivals
        self.name = name
        self.arrival = self.latency = self.exhausted = ""

    @property
    def failures(self) -> list[str]:
        """Why the search found nothing (empty: no path at all)."""
        return [f for f in (self.arrival, self.latency, self.exhausted) if f]

    def _ok(self, path: Sequence[LayerNode], legs: Sequence[Leg]) -> bool:
        if self.distinct_arrivals and _conflict(path, legs):
            return False
        return _latency_ok(legs, self.constraints)

    def _within_latency(self, bans: frozenset[Ban]) -> tuple[list[LayerNode], list[Leg]] | None:
        weight = _weight(bans)
        paths = nx.shortest_simple_paths(self.graph, self.source, self.target, weight=weight)
        for path in islice(paths, LATENCY_ALTERNATIVES):
            _, legs = _legs(self.graph, path, bans)
            if self._ok(path, legs):
                return path, legs
        fastest = nx.dijkstra_path(self.graph, self.source, self.target,
                                   weight=_weight(bans, "latency"))
        _, legs = _legs(self.graph, fastest, bans, fastest=True)
        if self._ok(fastest, legs):
            return fastest, legs
        took = sum(leg.latency for leg in legs) * 1e3
        self.latency = self.latency or f"the fastest such path takes {took:g} ms"
        return None

    def run(self) -> tuple[list[LayerNode], list[Leg]] | None:
        """The path and its legs; None with `failures` saying why (empty: no path at all)."""
        heap: list[tuple[float, int, frozenset[Ban], list[LayerNode], list[Leg]]] = []
        tick = count()
        tried: set[frozenset[Ban]] = set()

        def push(bans: frozenset[Ban]) -> None:
            if bans in tried:
                return
            if len(tried) >= MAX_TRIES:
                self.exhausted = f"search stopped after {MAX_TRIES} tries"
                return
            tried.add(bans)
            path = least_cost_path(self.graph, self.source, self.target, self.flow_key,
                                   _weight(bans))
            if path is not None:
                cost, legs = _legs(self.graph, path, bans)
                heappush(heap, (cost, next(tick), bans, path, legs))

        push(frozenset())
        while heap:  # best first: a ban set's path costs no less than its parent's
            _, _, bans, path, legs = heappop(heap)
            conflict = _conflict(path, legs) if self.distinct_arrivals else None
            if conflict is None:
                if _latency_ok(legs, self.constraints):
                    return path, legs
                found = self._within_latency(bans)
                if found:
                    return found
                continue
            dpid, port, layers = conflict
            self.arrival = self.arrival or (f"every path found arrives at {self.name(dpid)} "
                                            f"port {port} more than once")
            for layer in layers:
                push(bans | {(dpid, port, layer)})
        return None


def _hops(path: Sequence[LayerNode], legs: Sequence[Leg], src: Host, dst: Host
          ) -> tuple[Hop, ...]:
    hops = []
    in_port = src.port
    for (here, there), leg in zip(pairwise(path), legs, strict=True):
        if _is_switch(here):
            via = None if _is_switch(there) else str(there[0])
            assert leg.src_port is not None
            hops.append(Hop(int(here[0]), in_port, leg.src_port, via))
        if _is_switch(there):
            assert leg.dst_port is not None
            in_port = leg.dst_port
    hops.append(Hop(dst.dpid, in_port, dst.port))
    return tuple(hops)


# -- reasons ---------------------------------------------------------------------------------
def _article(role: str) -> str:
    return f"{'an' if role[:1].lower() in 'aeiou' else 'a'} {role}"


def chain_phrase(chain: Sequence[str]) -> str:
    """ "that passes a firewall then a load_balancer" ("" for no chain)."""
    if not chain:
        return ""
    return "that passes " + " then ".join(_article(r) for r in chain)


def _refusing(constraints: Sequence[Constraint], node: Node) -> list[str]:
    return [c.describe() or type(c).__name__ for c in constraints if not c.allows_node(node)]


def _details(topo: Topology, src: Host, dst: Host, chain: Sequence[str],
             nfs: Sequence[NetworkFunction], constraints: Sequence[Constraint]) -> list[str]:
    details = []
    for host in dict.fromkeys((src, dst)):
        if host.dpid not in topo.switches:
            details.append(f"the switch of {host.ip} ({dpid_str(host.dpid)}) is not connected")
        elif refused := _refusing(constraints, host.dpid):
            details.append(f"the switch of {host.ip} ({topo.switch_name(host.dpid)}) is "
                           f"excluded: {'; '.join(dict.fromkeys(refused))}")
    for role in dict.fromkeys(chain):
        of_role = [nf for nf in nfs if nf.role == role]
        if not of_role:
            details.append(f"no network function has role {role}")
            continue
        why = {}
        for nf in of_role:
            refused = _refusing(constraints, nf.name)
            absent = [s for s in (nf.side_a, nf.side_b) if s[0] not in topo.switches]
            hosts = [(d, _refusing(constraints, d)) for d in dict.fromkeys(
                (nf.side_a[0], nf.side_b[0]))]
            if absent:
                why[nf.name] = f"attached to {dpid_str(absent[0][0])}, not connected"
            elif refused:
                why[nf.name] = "; ".join(dict.fromkeys(refused))
            elif barred := [(d, r) for d, r in hosts if r]:
                dpid, reasons = barred[0]
                why[nf.name] = (f"attached to {topo.switch_name(dpid)}, which is excluded: "
                                f"{'; '.join(dict.fromkeys(reasons))}")
        if len(why) == len(of_role):
            listed = ", ".join(f"{name} ({reason})" for name, reason in sorted(why.items()))
            details.append(f"every {role} is excluded: {listed}")
    return details


def no_path_reason(topo: Topology, src: Host, dst: Host, chain: Sequence[str] = (),
                   nfs: Sequence[NetworkFunction] = (), constraints: Sequence[Constraint] = (),
                   extra: Sequence[str] = ()) -> str:
    """ "no path from 10.0.0.1 to 10.0.0.9 avoiding zone dmz that passes a firewall[: why]"."""
    words = [f"no path from {src.ip} to {dst.ip}"]
    words += dict.fromkeys(p for p in (c.describe() for c in constraints) if p)
    if chain:
        words.append(chain_phrase(chain))
    text = " ".join(words)
    details = [*_details(topo, src, dst, chain, nfs, constraints), *extra]
    return f"{text}: {'; '.join(details)}" if details else text


# -- chain routing ---------------------------------------------------------------------------
class ChainPlanner:
    """Plans trails through one chain with one NF list, constraint set and weights.

    The layered graph is built on first use and again whenever the topology's
    version changes, so planning many trails of one application costs one build.
    Constraints are read when the graph is built: after changing what they
    look at (a utilisation map, say), make a new ChainPlanner.

    >>> planner = ChainPlanner(topo, ("firewall",), nfs, [AvoidZones({"dmz"}, attrs)])
    >>> [planner.plan(src, dst) for src, dst in pairs]
    """

    def __init__(self, topo: Topology, chain: Sequence[str] = (),
                 nfs: Iterable[NetworkFunction] = (), constraints: Iterable[Constraint] = (),
                 weights: ClassWeights | None = None, *, distinct_arrivals: bool = True) -> None:
        self.topo = topo
        self.chain = tuple(chain)
        self.nfs = list(nfs)
        self.constraints = tuple(constraints)
        self.weights = weights
        self.distinct_arrivals = distinct_arrivals
        self._graph: nx.DiGraph | None = None
        self._version = -1

    @property
    def graph(self) -> nx.DiGraph:
        """The layered graph for the topology as it is now."""
        if self._graph is None or self._version != self.topo.version:
            self._graph = layered_graph(self.topo, self.chain, self.nfs, self.constraints,
                                        self.weights)
            self._version = self.topo.version
        return self._graph

    def plan(self, src: Host, dst: Host, flow_key: Sequence[object] | None = None
             ) -> tuple[Hop, ...]:
        """Hops from `src` to `dst`; see plan_chain."""
        if src.mac == dst.mac:
            raise NoPathError(f"trail from host {src.ip} to itself")
        key = tuple(flow_key) if flow_key is not None else pair_key(src.mac, dst.mac)
        search = _Search(self.graph, (src.dpid, 0), (dst.dpid, len(self.chain)), key,
                         self.constraints, self.distinct_arrivals, self.topo.switch_name)
        found = search.run()
        if found is None:
            raise NoPathError(no_path_reason(self.topo, src, dst, self.chain, self.nfs,
                                             self.constraints, search.failures))
        return _hops(*found, src, dst)


def plan_chain(topo: Topology, src: Host, dst: Host, chain: Sequence[str] = (),
               nfs: Iterable[NetworkFunction] = (), constraints: Iterable[Constraint] = (),
               weights: ClassWeights | None = None, flow_key: Sequence[object] | None = None,
               *, distinct_arrivals: bool = True) -> tuple[Hop, ...]:
    """Hops of a trail from `src` to `dst` through NFs of the roles in `chain`, in order.

    One least-cost search on the layered graph (see layered_graph): NFs are
    crossed only as the chain's steps, a switch is crossed at most once per
    layer, and hard constraints prune. Among equal-cost paths the pick is
    stable_hash(*flow_key) (default pair_key(src.mac, dst.mac), as Planner.host_hops).
    A hop with `via` hands the packet to that NF; the next hop is where it
    comes back (its in_port is the NF's other side).

    With `distinct_arrivals` (the default) the path also never arrives at the
    same switch port twice (say, down the same cable before and after an NF),
    so that the trail label plus the arrival port identify every visit; set it
    False when each chain segment has a label of its own.

    Raises NoPathError naming every active constraint and the chain when no
    path satisfies them, ValueError/TopologyError for inconsistent NFs. To plan
    many trails with the same inputs, use one ChainPlanner.

    >>> plan_chain(topo, h1, h2)  # == Planner(topo).host_hops(h1, h2)
    """
    planner = ChainPlanner(topo, chain, nfs, constraints, weights,
                           distinct_arrivals=distinct_arrivals)
    return planner.plan(src, dst, flow_key)
