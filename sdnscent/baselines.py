"""Single-path planning exactly as the controller plans, and the baselines of
`sdnscent plan`: the controller's single path, the minimum-hop shortest path,
hash-based ECMP (each flow on one least-cost path picked by a hash of its
5-tuple), its fluid ideal (equal split) and Hedera's Global First Fit.

A Fabric turns a Network into the controller's Topology (one switch per switch
node, hosts on edge ports) and plans on the same layered graph, with the same
costs, constraints and tie-break (stable hash of the host pair) as
ChainPlanner and Planner.host_hops, but shares one Dijkstra per source switch
and one path count per switch pair across every demand.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from heapq import heappop, heappush
from itertools import count, islice

import networkx as nx

from .constraints import (
    ChainPlanner,
    Constraint,
    LayerNode,
    app_constraints,
    layered_graph,
    node_attrs,
)
from .netfile import Demand, NetFileError, Network, Trail
from .planner import NoPathError, pair_key
from .policy import EMPTY_POLICY, ClassWeights, Policy
from .topology import Host, Port, Topology, TopologyError, normalize_mac

Path = tuple[int, ...]  # node indices of a Network
Progress = Callable[[int, int], None]  # (done, total)
GFF_MIN_CANDIDATES = 4  # Global First Fit tries at least this many paths where they exist
ECMP_PROTO = 6  # the 5-tuple of a demand's flows: TCP ...
ECMP_DST_PORT = 5001  # ... to iperf's port ...
ECMP_SRC_PORT = 49152  # ... from ephemeral ports, one per flow of a host pair
PROGRESS_EVERY = 20_000


class PlanError(ValueError):
    """The demands cannot be planned (no path, or a policy that offline planning cannot apply)."""


def _virtual_mac(n: int) -> str:
    return "0e:00:" + ":".join(f"{b:02x}" for b in n.to_bytes(4, "big"))


def _host_mac(n: int) -> str:
    return ":".join(f"{b:02x}" for b in n.to_bytes(6, "big"))


def _ip(base: str, n: int) -> str:
    return str(ipaddress.IPv4Address(base) + n)


class Fabric:
    """`net` as the controller sees it, with `policy` for per-application constraints.

    Switch node i gets dpid ``attrs["dpid"]`` if given, else its position among
    the switch nodes + 1, and the name str(node id) (policies name switches by
    it). A host node is a Host on its switch's port (``mac``/``ip`` attributes
    if given); a switch node that sends or receives demands gets a virtual host
    on a spare port, so switch-to-switch demands (WANs) plan like host pairs.
    """

    def __init__(self, net: Network, policy: Policy | None = None) -> None:
        self.net = net
        self.policy = policy or EMPTY_POLICY
        self.topo = Topology()
        self.dpid: dict[int, int] = {}
        self.node_of: dict[int, int] = {}
        for pos, i in enumerate(net.switches):
            raw = net.attrs[i].get("dpid", pos + 1) if net.attrs else pos + 1
            if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw < 2**64:
                raise NetFileError(f"node {net.ids[i]!r}: dpid {raw!r} must be an integer "
                                   "between 1 and 2^64 - 1")
            if raw in self.node_of:
                raise NetFileError(f"node {net.ids[i]!r}: dpid {raw} is also the dpid of "
                                   f"{net.ids[self.node_of[raw]]!r}")
            self.dpid[i], self.node_of[raw] = raw, i
        ports: dict[tuple[int, int], int] = {}  # (node, neighbour) -> port on node
        count: dict[int, int] = defaultdict(int)
        for a in net.arcs:
            for here, there in ((a.u, a.v), (a.v, a.u)):
                if (here, there) not in ports:
                    count[here] += 1
                    ports[(here, there)] = count[here]
        for i, dpid in self.dpid.items():
            self.topo.add_switch(dpid, {p: Port(p) for p in range(1, count[i] + 2)},
                                 str(net.ids[i]))
        for a in net.arcs:
            if a.u in self.dpid and a.v in self.dpid:
                self.topo.add_link(self.dpid[a.u], ports[(a.u, a.v)], self.dpid[a.v],
                                   ports[(a.v, a.u)])
                self.topo.set_link_attrs(self.dpid[a.u], ports[(a.u, a.v)],
                                         capacity=max(1, round(a.capacity)), latency=a.latency)
        self.hosts: dict[int, Host] = {}
        for n, i in enumerate(sorted(net.hosts), 1):  # h<n> as Mininet numbers its hosts
            switch = net.arcs[net.out_arcs[i][0]].v if net.out_arcs[i] else next(
                a.u for a in net.arcs if a.v == i)
            attrs = net.attrs[i] if net.attrs else {}
            try:
                mac = normalize_mac(str(attrs.get("mac", _host_mac(n))))
                ip = str(ipaddress.IPv4Address(attrs.get("ip", _ip("10.0.0.0", n))))
            except (TopologyError, ValueError) as exc:
                raise NetFileError(f"host {net.ids[i]!r}: {exc}") from None
            self.hosts[i] = Host(mac, ip, self.dpid[switch], ports[(switch, i)])
        for i, dpid in self.dpid.items():  # the virtual host of a switch node
            self.hosts[i] = Host(_virtual_mac(dpid), _ip("172.16.0.0", len(self.hosts)), dpid,
                                 count[i] + 1)
        self.attrs = node_attrs(self.topo, self.policy)
        self._routers: dict[str | None, Router] = {}

    def router(self, app: str | None = None) -> Router:
        """The planner of `app`'s trails (None: the controller's default per-pair trail)."""
        if app not in self._routers:
            if app is None:
                self._routers[app] = Router(self, (), ClassWeights("default"), None)
            else:
                profile = self.policy.app(app)
                if profile is None:
                    raise PlanError(f"application {app!r} is not in the policy")
                if self.policy.chain_of(profile):
                    raise PlanError(f"application {app!r} needs network functions "
                                    f"({', '.join(self.policy.chain_of(profile))}); offline "
                                    "planning does not place network functions")
                rules = app_constraints(profile, self.policy, self.topo, self.attrs)
                self._routers[app] = Router(self, rules, self.policy.weights_of(profile), app)
        return self._routers[app]

    def allowed_arcs(self, app: str | None = None) -> list[int]:
        """Arcs `app`'s trails may use: allowed inter-switch links and every host link."""
        graph = self.router(app).graph
        net, node_of = self.net, self.node_of
        arcs = []
        for i, a in enumerate(net.arcs):
            if a.u in net.hosts or a.v in net.hosts:
                arcs.append(i)
        for u, v in graph.edges:
            arcs.append(net.arc_index[(node_of[u[0]], node_of[v[0]])])
        return sorted(arcs)

    def arc_cost(self, app: str | None = None) -> dict[int, float]:
        """The planner's cost of each allowed inter-switch arc (host links cost nothing)."""
        net, node_of = self.net, self.node_of
        return {net.arc_index[(node_of[u[0]], node_of[v[0]])]: data["cost"]
                for u, v, data in self.router(app).graph.edges(data=True)}

    def path_latency(self, path: Sequence[int]) -> float:
        """Seconds along a node-index path."""
        return sum(self.net.arcs[a].latency for a in self.net.path_arcs(path))

    def link_down(self, u: int, v: int) -> None:
        """Forget the cable between switch nodes u and v (both directions); re-plan from here."""
        for a, b in ((u, v), (v, u)):
            dpid = self.dpid[a]
            for link in self.topo.links_between(dpid, self.dpid[b]):
                self.topo.remove_link(link.src, link.src_port)
        self._routers.clear()


class Router:
    """Least-cost paths of one application, as ChainPlanner plans them (no NF chain)."""

    def __init__(self, fabric: Fabric, constraints: Sequence[Constraint],
                 weights: ClassWeights, app: str | None) -> None:
        self.fabric, self.constraints, self.weights, self.app = fabric, tuple(constraints), \
            weights, app
        self.checks = [c for c in self.constraints if type(c).validate is not Constraint.validate]
        self.graph: nx.DiGraph = layered_graph(fabric.topo, (), (), self.constraints, weights)
        self._validate = [c.validate for c in self.checks]
        # plain adjacency lists and link latencies: the inner loops below run per switch pair
        self._adj: dict[LayerNode, list[tuple[LayerNode, float]]] = {
            u: [(v, data["cost"]) for v, data in nbrs.items()]
            for u, nbrs in self.graph.adj.items()}
        self._latency: dict[tuple[LayerNode, LayerNode], float] = {
            (u, v): lat for u, v, lat in self.graph.edges(data="latency")}
        self._dijkstra: dict[int, tuple[dict[LayerNode, list[LayerNode]],
                                        dict[LayerNode, int]]] = {}
        self._dags: dict[tuple[int, int], tuple[dict[LayerNode, list[LayerNode]],
                                                dict[LayerNode, int]] | None] = {}
        self._picked: dict[tuple[int, int, int], tuple[Path, bool]] = {}
        self._passing: dict[tuple[int, int], list[Path]] = {}  # least-cost, within the checks
        self._hops: dict[LayerNode, dict[LayerNode, int]] = {}  # target -> hop counts to it
        self._suffix = "" if app is None else f"\x1f{app}"

    # -- the controller's pick -----------------------------------------------------------------
    def flow_key(self, src: int, dst: int) -> tuple[object, ...]:
        """The tie-break key the controller hashes for this node pair."""
        hosts = self.fabric.hosts
        key = pair_key(hosts[src].mac, hosts[dst].mac)
        return key if self.app is None else (*key, self.app)

    def _search(self, source: LayerNode) -> tuple[dict[LayerNode, list[LayerNode]],
                                                  dict[LayerNode, int]]:
        """Dijkstra from `source`: every least-cost predecessor of each node, and each
        node's rank in order of distance.

        The same arithmetic and ties as nx.dijkstra_predecessor_and_distance (which
        ChainPlanner uses): distances summed from the source outward, a predecessor
        kept when its distance plus the link's cost equals the node's exactly.
        """
        adj = self._adj
        done: dict[LayerNode, float] = {}
        seen: dict[LayerNode, float] = {source: 0.0}
        pred: dict[LayerNode, list[LayerNode]] = {source: []}
        tick = count()
        fringe: list[tuple[float, int, LayerNode]] = [(0.0, next(tick), source)]
        while fringe:
            d, _, v = heappop(fringe)
            if v in done:
                continue
            done[v] = d
            for u, cost in adj[v]:
                vu = d + cost
                if u in done:
                    if vu == done[u]:
                        pred[u].append(v)
                elif u not in seen or vu < seen[u]:
                    seen[u] = vu
                    heappush(fringe, (vu, next(tick), u))
                    pred[u] = [v]
                elif vu == seen[u]:
                    pred[u].append(v)
        return pred, {node: rank for rank, node in enumerate(done)}

    def _dag(self, s: int, t: int) -> tuple[dict[LayerNode, list[LayerNode]],
                                            dict[LayerNode, int]] | None:
        """Sorted successors and path counts to t on the least-cost DAG from s (dpids).

        The DAG constraints.least_cost_path builds, counted here in Dijkstra's order
        rather than by its depth-first walk: sharing that walk made the k=8 speed
        benchmark a quarter slower (340,000 -> 255,000 trails/s).
        """
        if (s, t) in self._dags:
            return self._dags[(s, t)]
        source, target = (s, 0), (t, 0)
        found = None
        if source in self._adj and target in self._adj:
            if s not in self._dijkstra:
                self._dijkstra[s] = self._search(source)
            pred, rank = self._dijkstra[s]
            if target in rank:
                succ: dict[LayerNode, list[LayerNode]] = defaultdict(list)
                order = [target]
                seen = {target}
                for node in order:  # grows while we walk: breadth-first over pred
                    for before in pred[node]:
                        succ[before].append(node)
                        if before not in seen:
                            seen.add(before)
                            order.append(before)
                counts: dict[LayerNode, int] = {target: 1}
                del order[0]
                order.sort(key=rank.__getitem__, reverse=True)  # farthest from s first
                for node in order:
                    nexts = succ[node]
                    nexts.sort()  # (dpid, 0) tuples: the order _order gives them
                    n = 0
                    for nxt in nexts:
                        n += counts[nxt]
                    counts[node] = n
                found = (dict(succ), counts)
        self._dags[(s, t)] = found
        return found

    def _nodes(self, src: int, dst: int, dpids: Iterable[LayerNode]) -> Path:
        f = self.fabric
        mid = [f.node_of[int(d[0])] for d in dpids]
        head = [src] if src in f.net.hosts else []
        tail = [dst] if dst in f.net.hosts else []
        return (*head, *mid, *tail)

    def _fallback(self, src: int, dst: int) -> Path:
        """ChainPlanner itself: the latency detours and the reason when there is no path."""
        f = self.fabric
        planner = ChainPlanner(f.topo, (), (), self.constraints, self.weights)
        try:
            hops = planner.plan(f.hosts[src], f.hosts[dst], self.flow_key(src, dst))
        except NoPathError as exc:
            raise NoPathError(f"{f.net.ids[src]!r} -> {f.net.ids[dst]!r}: {exc}") from None
        return self._nodes(src, dst, ((h.dpid, 0) for h in hops))

    def _ok(self, path: Path) -> bool:
        """Whole-path checks (latency bounds) over the inter-switch links, as the controller."""
        hosts = self.fabric.net.hosts
        latency = self.fabric.path_latency([n for n in path if n not in hosts])
        return all(c.validate(latency) for c in self.checks)

    def switch_path(self, src: int, dst: int) -> Path:
        """The switch nodes of path(src, dst): one shared tuple per switch path."""
        hosts = self.fabric.hosts
        s, t = hosts[src].dpid, hosts[dst].dpid
        if s == t:
            if (s, 0) not in self.graph:
                return self._strip(src, dst, self._fallback(src, dst))
            return (self.fabric.node_of[s],)
        dag = self._dags[(s, t)] if (s, t) in self._dags else self._dag(s, t)
        if dag is None:
            return self._strip(src, dst, self._fallback(src, dst))
        a, b = hosts[src].mac, hosts[dst].mac
        # stable_hash(*pair_key(a, b)[, app]) spelled out: this line runs per trail
        text = f"{a}\x1f{b}{self._suffix}" if a <= b else f"{b}\x1f{a}{self._suffix}"
        index = int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "big")
        index %= dag[1][(s, 0)]
        picked = self._picked.get((s, t, index))
        if picked is None:
            picked = self._pick(s, t, index, dag)
        mid, ok = picked
        if not ok:
            return self._strip(src, dst, self._fallback(src, dst))
        return mid

    def _pick(self, s: int, t: int, index: int,
              dag: tuple[dict[LayerNode, list[LayerNode]], dict[LayerNode, int]]
              ) -> tuple[Path, bool]:
        """Walk to the index-th least-cost path s -> t, as least_cost_path does."""
        succ, counts = dag
        key = (s, t, index)
        node: LayerNode = (s, 0)
        target: LayerNode = (t, 0)
        node_of = self.fabric.node_of
        mid = [node_of[s]]
        latency = 0.0
        lat = self._latency if self._validate else None
        while node != target:
            for nxt in succ[node]:
                n = counts[nxt]
                if index < n:
                    break
                index -= n
            if lat is not None:
                latency += lat[node, nxt]
            node = nxt
            mid.append(node_of[int(nxt[0])])
        ok = True
        for valid in self._validate:
            if not valid(latency):
                ok = False
                break
        self._picked[key] = (tuple(mid), ok)
        return self._picked[key]

    def _full(self, src: int, dst: int, mid: Path) -> Path:
        hosts = self.fabric.net.hosts
        return (*((src,) if src in hosts else ()), *mid, *((dst,) if dst in hosts else ()))

    def _strip(self, src: int, dst: int, path: Path) -> Path:
        hosts = self.fabric.net.hosts
        return path[src in hosts:len(path) - (dst in hosts)]

    def path(self, src: int, dst: int) -> Path:
        """The path (node indices, hosts included) the controller gives a trail src -> dst.

        Raises NoPathError (naming the nodes and the controller's reason).
        """
        return self._full(src, dst, self.switch_path(src, dst))

    # -- other path choices --------------------------------------------------------------------
    def hashed_path(self, src: int, dst: int, digest: int) -> Path:
        """Least-cost path number `digest` % (their number), in the controller's order
        (only paths that pass the latency checks count). ECMP's pick for a flow hash."""
        hosts = self.fabric.hosts
        s, t = hosts[src].dpid, hosts[dst].dpid
        dag = self._dag(s, t) if s != t else None
        if dag is None:
            return self.path(src, dst)
        if not self._validate:
            index = digest % dag[1][(s, 0)]
            picked = self._picked.get((s, t, index)) or self._pick(s, t, index, dag)
            return self._full(src, dst, picked[0])
        if (s, t) not in self._passing:
            count = dag[1][(s, 0)]
            mids = [self._picked.get((s, t, i)) or self._pick(s, t, i, dag) for i in range(count)]
            self._passing[(s, t)] = [mid for mid, ok in mids if ok]
        passing = self._passing[(s, t)]
        if not passing:
            return self.path(src, dst)
        return self._full(src, dst, passing[digest % len(passing)])

    def min_hop_path(self, src: int, dst: int) -> Path:
        """The fewest-hop path over the switches and links the constraints allow, the
        lowest dpid first where hop counts tie (no costs, no hash). One that breaks a
        latency bound gives way to path(src, dst)."""
        hosts = self.fabric.hosts
        s, t = (hosts[src].dpid, 0), (hosts[dst].dpid, 0)
        if s == t or s not in self._adj or t not in self._adj:
            return self.path(src, dst)
        if t not in self._hops:  # hops to t from every node: breadth-first over predecessors
            hops = {t: 0}
            order = [t]
            for node in order:
                for before in self.graph.pred[node]:
                    if before not in hops:
                        hops[before] = hops[node] + 1
                        order.append(before)
            self._hops[t] = hops
        hops = self._hops[t]
        if s not in hops:
            return self.path(src, dst)
        walk = [s]
        while walk[-1] != t:
            here = hops[walk[-1]]
            walk.append(min(v for v, _ in self._adj[walk[-1]] if hops.get(v) == here - 1))
        path = self._nodes(src, dst, walk)
        return path if not self.checks or self._ok(path) else self.path(src, dst)

    # -- path sets -----------------------------------------------------------------------------
    def least_cost_paths(self, src: int, dst: int, limit: int | None = None) -> list[Path]:
        """Every least-cost path (sorted as the controller sorts them) that passes the checks.

        Falls back to [path(src, dst)] when none passes (a latency bound).
        """
        hosts = self.fabric.hosts
        s, t = hosts[src].dpid, hosts[dst].dpid
        dag = self._dag(s, t) if s != t else None
        if dag is None:
            return [self.path(src, dst)]
        succ = dag[0]
        found: list[Path] = []
        stack: list[tuple[LayerNode, tuple[LayerNode, ...]]] = [((s, 0), ((s, 0),))]
        while stack and (limit is None or len(found) < limit):
            node, walk = stack.pop()
            if node == (t, 0):
                path = self._nodes(src, dst, walk)
                if not self.checks or self._ok(path):
                    found.append(path)
                continue
            stack.extend((n, (*walk, n)) for n in reversed(succ[node]))
        return found or [self.path(src, dst)]

    def candidate_paths(self, src: int, dst: int, at_least: int) -> list[Path]:
        """The least-cost paths, then the next cheapest simple paths until there are `at_least`."""
        paths = self.least_cost_paths(src, dst)
        if len(paths) >= at_least:
            return paths
        hosts = self.fabric.hosts
        s, t = (hosts[src].dpid, 0), (hosts[dst].dpid, 0)
        if s == t:
            return paths
        seen = set(paths)
        try:
            for walk in islice(nx.shortest_simple_paths(self.graph, s, t, weight="cost"),
                               at_least + len(paths)):
                path = self._nodes(src, dst, walk)
                if path not in seen and (not self.checks or self._ok(path)):
                    seen.add(path)
                    paths.append(path)
                    if len(paths) >= at_least:
                        break
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            pass
        return paths


class TrailIndex:
    """Which trails cross which inter-switch cable, by shared switch path (as ONOS's
    ObjectiveTracker indexes intents): a cable going down touches only its trails."""

    def __init__(self) -> None:
        self.by_path: dict[Path, list[int]] = defaultdict(list)
        self.by_cable: dict[frozenset[int], set[Path]] = defaultdict(set)

    def add(self, trail: int, switch_path: Path) -> None:
        """Record that `trail` follows `switch_path` (switch node indices)."""
        trails = self.by_path[switch_path]
        if not trails:
            for a, b in zip(switch_path, switch_path[1:], strict=False):
                self.by_cable[frozenset((a, b))].add(switch_path)
        trails.append(trail)

    def remove(self, trail: int, switch_path: Path) -> None:
        """Forget that `trail` follows `switch_path`."""
        trails = self.by_path.get(switch_path)
        if trails and trail in trails:
            trails.remove(trail)

    def affected(self, u: int, v: int) -> list[int]:
        """Trails crossing the cable between switch nodes u and v, ascending."""
        out: list[int] = []
        for path in self.by_cable.get(frozenset((u, v)), ()):
            out.extend(self.by_path[path])
        return sorted(out)


# -- the baselines -----------------------------------------------------------------------------
def _tick(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
        progress(done, total)


def controller_single(fabric: Fabric, demands: Sequence[Demand],
                      progress: Progress | None = None) -> list[Trail]:
    """Each demand on the one path the controller would give its trail (least cost,
    equal-cost paths picked by the stable hash of the host pair)."""
    trails = []
    for n, d in enumerate(demands, 1):
        trails.append(Trail(d, (fabric.router(d.app).path(d.src, d.dst),), (1.0,)))
        _tick(progress, n, len(demands))
    return trails


shortest_path = controller_single  # the name sdnscent.cli and mcf import for mode "single"


def min_hop(fabric: Fabric, demands: Sequence[Demand],
            progress: Progress | None = None) -> list[Trail]:
    """Shortest path: each demand on its fewest-hop path, lowest dpid first among equals
    (deterministic: every flow between two switches takes the same path)."""
    trails = []
    for n, d in enumerate(demands, 1):
        trails.append(Trail(d, (fabric.router(d.app).min_hop_path(d.src, d.dst),), (1.0,)))
        _tick(progress, n, len(demands))
    return trails


def flow_tuple(fabric: Fabric, demand: Demand, flow: int) -> tuple[str, str, int, int, int]:
    """The 5-tuple of flow number `flow` (0, 1, ...) of a host pair: TCP from port
    ECMP_SRC_PORT + flow to ECMP_DST_PORT."""
    hosts = fabric.hosts
    return (hosts[demand.src].ip, hosts[demand.dst].ip, ECMP_PROTO, ECMP_SRC_PORT + flow,
            ECMP_DST_PORT)


def flow_hash(five_tuple: tuple[str, str, int, int, int], seed: int = 0) -> int:
    """A switch's ECMP hash of a flow: 64 bits of blake2b over the 5-tuple, keyed by `seed`
    (the same in every process)."""
    text = "\x1f".join(map(str, five_tuple)).encode()
    return int.from_bytes(blake2b(text, digest_size=8, key=seed.to_bytes(8, "big")).digest(),
                          "big")


def ecmp(fabric: Fabric, demands: Sequence[Demand], progress: Progress | None = None,
         seed: int = 0, flows: int = 1) -> list[Trail]:
    """Hash-based ECMP, as switches do it: each flow takes the least-cost path that the
    hash of its 5-tuple (flow_tuple, flow_hash with `seed`) picks among them.

    Each demand is `flows` flows of equal rate, hashed separately; demands of the same
    host pair (and application) continue the numbering, so they are further flows of
    that pair. A trail's weights are the shares of its flows on each path.
    """
    if flows < 1:
        raise ValueError(f"flows must be at least 1, not {flows}")
    trails = []
    used: dict[tuple[int, int, str | None], int] = defaultdict(int)
    for n, d in enumerate(demands, 1):
        router = fabric.router(d.app)
        first = used[(d.src, d.dst, d.app)]
        used[(d.src, d.dst, d.app)] += flows
        hits: dict[Path, int] = {}
        for f in range(first, first + flows):
            path = router.hashed_path(d.src, d.dst, flow_hash(flow_tuple(fabric, d, f), seed))
            hits[path] = hits.get(path, 0) + 1
        trails.append(Trail(d, tuple(hits), tuple(h / flows for h in hits.values())))
        _tick(progress, n, len(demands))
    return trails


def ecmp_fluid(fabric: Fabric, demands: Sequence[Demand],
               progress: Progress | None = None) -> list[Trail]:
    """Each demand split equally over every least-cost path: the fluid ideal of ECMP,
    which hashing approaches when every pair sends many small flows."""
    trails = []
    for n, d in enumerate(demands, 1):
        paths = fabric.router(d.app).least_cost_paths(d.src, d.dst)
        trails.append(Trail(d, tuple(paths), tuple(1.0 / len(paths) for _ in paths)))
        _tick(progress, n, len(demands))
    return trails


@dataclass
class _Reservations:
    capacity: list[float]
    used: list[float]

    def fits(self, arcs: Sequence[int], rate: float) -> bool:
        return all(self.used[a] + rate <= self.capacity[a] * (1 + 1e-9) for a in arcs)

    def take(self, arcs: Sequence[int], rate: float) -> None:
        for a in arcs:
            self.used[a] += rate


def global_first_fit(fabric: Fabric, demands: Sequence[Demand], progress: Progress | None = None,
                     at_least: int = GFF_MIN_CANDIDATES) -> list[Trail]:
    """Hedera's Global First Fit: each demand, in the order given, takes the first candidate
    path with room for its whole rate on every link; one that fits nowhere stays on its
    hashed (controller) path. Candidates: the least-cost paths, topped up with the next
    cheapest to `at_least` (a fat-tree has enough least-cost paths; a WAN seldom does).
    """
    net = fabric.net
    book = _Reservations([a.capacity for a in net.arcs], [0.0] * len(net.arcs))
    trails = []
    for n, d in enumerate(demands, 1):
        router = fabric.router(d.app)
        chosen = None
        for path in router.candidate_paths(d.src, d.dst, at_least):
            if book.fits(net.path_arcs(path), d.rate):
                chosen = path
                break
        if chosen is None:
            chosen = router.path(d.src, d.dst)
        book.take(net.path_arcs(chosen), d.rate)
        trails.append(Trail(d, (chosen,), (1.0,)))
        _tick(progress, n, len(demands))
    return trails
