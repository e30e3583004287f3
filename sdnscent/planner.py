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

    Least-cost paths are cached per switch pair until the topology, the cost
    model or the utilisation map is replaced.
    """

    def __init__(self, topo: Topology, cost: CostModel | None = None,
                 utilisation: Mapping[tuple[int, int], float] | None = None) -> None:
        self.topo = topo
        self._cost = cost or CostModel()
        self._utilisation: Mapping[tuple[int, int], float] = dict(utilisation or {})
        self._cache: dict[tuple[int, int], list[list[int]]] = {}
        self._preds: dict[int, dict[int, list[int]]] = {}  # source -> Dijkstra predecessors
        self._avoid_switches: frozenset[int] = frozenset()
        self._links: dict[tuple[int, int], Link] = {}  # link_for answers
        self._cache_version = -1

    @property
    def cost(self) -> CostModel:
        """The cost model; assigning one re-plans from scratch."""
        return self._cost

    @cost.setter
    def cost(self, value: CostModel) -> None:
        self._cost = value
        self._cache.clear()
        self._preds.clear()
        self._links.clear()

    @property
    def utilisation(self) -> Mapping[tuple[int, int], float]:
        """Utilisation (0..1) of the link leaving each (dpid, port)."""
        return self._utilisation

    @utilisation.setter
    def utilisation(self, value: Mapping[tuple[int, int], float]) -> None:
        self._utilisation = dict(value)
        self._cache.clear()
        self._preds.clear()
        self._links.clear()

    @property
    def avoid_switches(self) -> frozenset[int]:
        """Switches paths cross only where there is no other way (their links cost
        AWAY_COST more): a switch that lost its controller connection."""
        return self._avoid_switches

    @avoid_switches.setter
    def avoid_switches(self, value: frozenset[int]) -> None:
        if value != self._avoid_switches:
            self._avoid_switches = frozenset(value)
            self._cache.clear()
            self._preds.clear()
            self._links.clear()

    def _edge_cost(self, link: Link) -> float:
        cost = self.cost.link_cost(link, self.utilisation.get((link.src, link.src_port), 0.0))
        if link.src in self._avoid_switches or link.dst in self._avoid_switches:
            cost += AWAY_COST
        return cost

    def _follow_topology(self) -> None:
        """Forget every cached answer once the topology changed."""
        if self._cache_version != self.topo.version:
            self._cache.clear()
            self._preds.clear()
            self._links.clear()
            self._cache_version = self.topo.version

    def _weight(self, _u: int, _v: int, edges: Mapping[int, Mapping[str, Link]]) -> float:
        return min(self._edge_cost(d["link"]) for d in edges.values())

    def equal_cost_paths(self, src: int, dst: int, avoid: Iterable[int] = ()) -> list[list[int]]:
        """All least-cost switch paths src -> dst, sorted; [] if none."""
        avoid = frozenset(avoid)
        self._follow_topology()
        key = (src, dst)
        if not avoid and key in self._cache:
            return self._cache[key]
        graph = self.topo.graph
        if avoid:
            graph = nx.restricted_view(graph, avoid, [])
        if src not in graph or dst not in graph:
            paths: list[list[int]] = []
        elif avoid:
            try:
                paths = sorted(nx.all_shortest_paths(graph, src, dst, weight=self._weight))
            except nx.NetworkXNoPath:
                paths = []
        else:
            # One Dijkstra per source serves every destination (after a topology
            # change, re-planning the trails of a link re-plans many pairs per source).
            pred = self._preds.get(src)
            if pred is None:
                pred = nx.dijkstra_predecessor_and_distance(graph, src, weight=self._weight)[0]
                self._preds[src] = pred
            paths = sorted(_paths_back(pred, src, dst)) if dst in pred else []
        if not avoid:
            self._cache[key] = paths
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
