"""Trail planning: shortest paths over a composite link cost.

cost(link) = hop_weight + latency_weight * latency(ms) + load_weight * utilisation.
Among equal-cost paths the choice is deterministic: paths are sorted and one
is picked by a stable hash of the flow's endpoints, which spreads trails over
the fabric like ECMP while giving the same answer on every run.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import networkx as nx

from .topology import Host, Link, Topology, dpid_str
from .trails import Hop

# Utilisation counts in whole steps, rounded down: load differences below a
# step leave equal paths equal. Counters jitter, and a flow that ended seconds
# ago leaves a smoothed residue on its links that would otherwise make one
# path the only least-cost one for every new trail.
LOAD_STEP = 0.25


def stepped(utilisation: float, step: float = LOAD_STEP) -> float:
    """`utilisation` rounded down to a whole number of `step`s (0: as it is)."""
    return math.floor(utilisation / step + 1e-9) * step if step > 0 else utilisation


class NoPathError(LookupError):
    """No path satisfies the request; the message says between what."""


@dataclass(frozen=True)
class CostModel:
    """Weights of the composite link cost."""

    hop_weight: float = 1.0
    latency_weight: float = 1.0  # per millisecond
    load_weight: float = 4.0  # per unit of utilisation (0..1)
    load_step: float = LOAD_STEP  # utilisation counts in these steps (stepped())

    def link_cost(self, link: Link, utilisation: float = 0.0) -> float:
        """Cost of sending a trail over `link`."""
        utilisation = stepped(utilisation, self.load_step)
        return (
            self.hop_weight
            + self.latency_weight * link.latency * 1e3
            + self.load_weight * utilisation
        )


def stable_hash(*parts: object) -> int:
    """A hash of `parts` that is the same in every process (unlike hash())."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def pair_key(a: str, b: str) -> tuple[str, str]:
    """The same tie-break key for both directions of a pair.

    Request and reply then pick mirror paths wherever the fabric is symmetric,
    which stateful network functions on the way need.
    """
    return (a, b) if a <= b else (b, a)


AWAY_COST = 10_000.0  # added to each link of a switch paths should avoid

class Planner:
    """Plans switch paths and host-to-host hops on a Topology.

    Least-cost paths are cached per switch pair until the cost model or a
    link's cost changes (utilisation by a whole step, a link re-configured).
    Links that come and go keep the cache (_follow_removal, _follow_addition):
    a removal strikes the paths that crossed the link out of each answer when
    next asked (the others stay least-cost: a removal makes no path cheaper),
    and only answers left with no path, or sources whose distances grew, are
    searched again; an addition searches again only from the sources it brings
    closer to something, and lists paths again only from those it gives a new
    least-cost path.
    """

    def __init__(self, topo: Topology, cost: CostModel | None = None,
                 utilisation: Mapping[tuple[int, int], float] | None = None) -> None:
        self.topo = topo
        self._cost = cost or CostModel()
        self._utilisation: Mapping[tuple[int, int], float] = dict(utilisation or {})
        self._cache: dict[tuple[int, int], list[list[int]]] = {}
        self._preds: dict[int, dict[int, list[int]]] = {}  # source -> Dijkstra predecessors
        self._dists: dict[int, dict[int, float]] = {}  # source -> Dijkstra distances
        self._avoid_switches: frozenset[int] = frozenset()
        self._links: dict[tuple[int, int], Link] = {}  # link_for answers
        self._gone: list[tuple[int, int]] = []  # switch pairs whose link cost rose
        self._simple: nx.DiGraph | None = None  # one edge per switch pair, "w": its cost
        self._struck: dict[tuple[int, int], int] = {}  # cache key -> len(_gone) applied
        self._cache_version = -1

    @property
    def cost(self) -> CostModel:
        """The cost model; assigning one re-plans from scratch."""
        return self._cost

    @cost.setter
    def cost(self, value: CostModel) -> None:
        self._cost = value
        self._forget()

    @property
    def utilisation(self) -> Mapping[tuple[int, int], float]:
        """Utilisation (0..1) of the link leaving each (dpid, port)."""
        return self._utilisation

    @utilisation.setter
    def utilisation(self, value: Mapping[tuple[int, int], float]) -> None:
        value = dict(value)
        if self._steps(value) != self._steps(self._utilisation):
            self._forget()  # some link costs another step: paths may change
        self._utilisation = value

    def _steps(self, utilisation: Mapping[tuple[int, int], float]) -> dict[tuple[int, int], float]:
        """The links whose utilisation adds to their cost, with what it adds."""
        step = self.cost.load_step
        return {key: cost for key, value in utilisation.items()
                if (cost := stepped(value, step)) != 0}

    @property
    def avoid_switches(self) -> frozenset[int]:
        """Switches paths cross only where there is no other way (their links cost
        AWAY_COST more): a switch that lost its controller connection."""
        return self._avoid_switches

    @avoid_switches.setter
    def avoid_switches(self, value: frozenset[int]) -> None:
        if value != self._avoid_switches:
            self._avoid_switches = frozenset(value)
            self._forget()

    def _edge_cost(self, link: Link) -> float:
        cost = self.cost.link_cost(link, self.utilisation.get((link.src, link.src_port), 0.0))
        if link.src in self._avoid_switches or link.dst in self._avoid_switches:
            cost += AWAY_COST
        return cost

    def _forget(self) -> None:
        """Forget every cached answer."""
        self._cache.clear()
        self._preds.clear()
        self._dists.clear()
        self._links.clear()
        self._gone.clear()
        self._struck.clear()
        self._simple = None

    def _weighted(self) -> nx.DiGraph:
        """The switch graph with one edge per linked pair weighted by its cheapest
        link: searches on it read an attribute instead of costing parallel links."""
        if self._simple is None:
            simple = nx.DiGraph()
            simple.add_nodes_from(self.topo.graph)
            for tail, heads in self.topo.graph.adj.items():
                for head, keyed in heads.items():
                    if keyed:
                        simple.add_edge(tail, head, w=min(self._edge_cost(d["link"])
                                                          for d in keyed.values()))
            self._simple = simple
        return self._simple

    def _follow_topology(self) -> None:
        """Bring the caches up to the topology's switch graph: follow links that
        came or went, forget everything after any other change."""
        version = self.topo.graph_version
        if self._cache_version == version:
            return
        changes = self.topo.link_changes_since(self._cache_version)
        cost = self.cost
        if changes is None or self._simple is None \
                or min(cost.hop_weight, cost.latency_weight, cost.load_weight) < 0 \
                or cost.hop_weight == 0:
            self._forget()  # (zero-cost links could hide a distance change)
        else:
            changed: set[int] | None = None  # sources whose path lists must go
            for added, link in changes:
                self._links.pop((link.src, link.dst), None)
                if not added:
                    self._follow_removal(link)
                elif (sources := self._follow_addition(link)) is not None:
                    changed = sources | (changed or set())
            if changed is not None:  # (and the lists of sources with no Dijkstra left)
                for key in [k for k in self._cache if k[0] in changed or k[0] not in self._preds]:
                    del self._cache[key]
                    self._struck.pop(key, None)
        self._cache_version = version

    def _pair_costs(self, tail: int, head: int) -> tuple[float, float]:
        """(the cost of tail -> head the caches were made with, its cost now): the
        cheapest link between the two, inf where there is none."""
        simple = self._weighted()
        before = simple[tail][head]["w"] if simple.has_edge(tail, head) else math.inf
        now = min((self._edge_cost(lk) for lk in self.topo.links_between(tail, head)),
                  default=math.inf)
        return before, now

    def _follow_addition(self, link: Link) -> set[int] | None:
        """Keep the caches valid with `link` (already in the topology).

        Where the pair's cheapest link costs no less than before, no path
        changes. Otherwise, for each Dijkstra: if the link makes its head
        closer, the source is searched again; if it ties, the link's tail joins
        the head's predecessors. Either way that source's cached path lists must
        go: the sources are returned (None: the link changes no cost; else the
        lists of sources with no Dijkstra left go too). Changes are replayed in
        order against the topology as it is now: the pair's cost before is the
        one the caches were made with.
        """
        tail, head = link.src, link.dst
        before, cost = self._pair_costs(tail, head)
        if cost >= before:
            return None
        self._weighted().add_edge(tail, head, w=cost)
        changed: set[int] = set()
        for source, dist in list(self._dists.items()):
            if tail not in dist:
                continue  # the link starts where this source does not reach
            through = dist[tail] + cost  # as Dijkstra adds it: ties compare exactly
            if through < dist.get(head, math.inf):
                del self._dists[source], self._preds[source]
                changed.add(source)
            elif through == dist[head]:
                preds = self._preds[source][head]
                if tail not in preds:
                    preds.append(tail)
                changed.add(source)
        return changed

    def _follow_removal(self, link: Link) -> None:
        """Keep the caches valid without `link` (already gone from the topology).

        Where the pair's cheapest link costs no more than before, no path
        changes. Otherwise each Dijkstra keeps its distances as long as the
        link's head has another predecessor on a least-cost path (costs are
        positive); a source whose head lost its last one is searched again.
        Cached path lists are struck lazily, on their next use (equal_cost_paths).
        """
        tail, head = link.src, link.dst
        before, after = self._pair_costs(tail, head)
        if after <= before:
            return
        simple = self._weighted()
        if after < math.inf:
            simple.add_edge(tail, head, w=after)
        elif simple.has_edge(tail, head):
            simple.remove_edge(tail, head)
        self._gone.append((tail, head))
        for source, pred in list(self._preds.items()):
            preds = pred.get(head)
            if preds and tail in preds:
                preds.remove(tail)
                if not preds:
                    del self._preds[source], self._dists[source]

    def equal_cost_paths(self, src: int, dst: int, avoid: Iterable[int] = ()) -> list[list[int]]:
        """All least-cost switch paths src -> dst, sorted; [] if none."""
        avoid = frozenset(avoid)
        self._follow_topology()
        key = (src, dst)
        if not avoid and key in self._cache:
            cached = self._cache[key]
            struck = self._struck.get(key, 0)
            if struck == len(self._gone):
                return cached
            kept = cached
            for tail, head in self._gone[struck:]:  # paths are simple: one index each
                kept = [p for p in kept
                        if tail not in p or head not in p or p.index(head) != p.index(tail) + 1]
            if kept or not cached:
                self._cache[key] = kept
                self._struck[key] = len(self._gone)
                return kept
        graph = self._weighted()
        if avoid:
            graph = nx.restricted_view(graph, avoid, [])
        if src not in graph or dst not in graph or src not in self.topo.graph:
            paths: list[list[int]] = []
        elif avoid:
            try:
                paths = sorted(nx.all_shortest_paths(graph, src, dst, weight="w"))
            except nx.NetworkXNoPath:
                paths = []
        else:
            # One Dijkstra per source serves every destination (after a topology
            # change, re-planning the trails of a link re-plans many pairs per source).
            pred = self._preds.get(src)
            if pred is None:
                pred, self._dists[src] = nx.dijkstra_predecessor_and_distance(graph, src,
                                                                              weight="w")
                self._preds[src] = pred
            paths = sorted(_paths_back(pred, src, dst)) if dst in pred else []
        if not avoid:
            self._cache[key] = paths
            if self._gone:
                self._struck[key] = len(self._gone)
        return paths

    def switch_path(self, src: int, dst: int, flow_key: tuple[object, ...] = ()) -> list[int]:
        """One least-cost switch path, chosen among equals by `flow_key`."""
        if src == dst:
            if src not in self.topo.switches:
                raise NoPathError(f"unknown switch {dpid_str(src)}")
            return [src]
        paths = self.equal_cost_paths(src, dst)
        if not paths:
            raise NoPathError(f"no path from switch {dpid_str(src)} to {dpid_str(dst)}")
        return paths[stable_hash(*flow_key) % len(paths)]

    def link_for(self, src: int, dst: int) -> Link:
        """The cheapest link src -> dst (lowest port among equals); remembered
        until the topology, the costs or the utilisation change."""
        self._follow_topology()
        found = self._links.get((src, dst))
        if found is not None:
            return found
        links = self.topo.links_between(src, dst)
        if not links:
            raise NoPathError(f"no link from {dpid_str(src)} to {dpid_str(dst)}")
        found = min(links, key=lambda lk: (self._edge_cost(lk), lk.src_port))
        self._links[(src, dst)] = found
        return found

    def host_hops(self, src: Host, dst: Host) -> tuple[Hop, ...]:
        """Hops of a trail from host `src` to host `dst`."""
        if src.mac == dst.mac:
            raise NoPathError(f"trail from host {src.ip} to itself")
        return self.hops_along(src, dst, self.switch_path(src.dpid, dst.dpid,
                                                          pair_key(src.mac, dst.mac)))

    def hops_along(self, src: Host, dst: Host, path: list[int]) -> tuple[Hop, ...]:
        """Hops of a trail from `src` to `dst` over the switch path `path`."""
        if not path or path[0] != src.dpid or path[-1] != dst.dpid:
            raise NoPathError(f"switch path {[dpid_str(d) for d in path]} does not join "
                              f"host {src.ip} to host {dst.ip}")
        hops: list[Hop] = []
        in_port = src.port
        for here, there in zip(path, path[1:], strict=False):
            link = self.link_for(here, there)
            hops.append(Hop(here, in_port, link.src_port))
            in_port = link.dst_port
        hops.append(Hop(dst.dpid, in_port, dst.port))
        return tuple(hops)


def _paths_back(pred: Mapping[int, list[int]], src: int, dst: int) -> list[list[int]]:
    """Every least-cost path src -> dst from Dijkstra's predecessor lists."""
    paths: list[list[int]] = []
    stack: list[tuple[int, list[int]]] = [(dst, [dst])]
    while stack:
        node, tail = stack.pop()
        if node == src:
            paths.append(tail[::-1])
            continue
        for before in pred[node]:
            if before not in tail:
                stack.append((before, [*tail, before]))
    return paths
