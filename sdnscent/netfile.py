"""Offline planning input and output: networkx node-link topologies with link
capacities and demand matrices (SNDlib-derived data from topohub, generated
fat-trees and leaf-spines), validated with errors naming the field and line.

A node whose ``type`` (or ``kind``) is ``"host"`` is a host: it hangs off one
switch by exactly one link, as the controller sees hosts. Every other node is a
switch. Rates and capacities are bit/s, latencies seconds.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import networkx as nx

from .topology import DEFAULT_LINK_CAPACITY

NodeId = int | str  # a node id as the file gives it
FIBRE_KM_PER_S = 200_000.0  # light in fibre: `dist` (km, topohub) -> latency
_WS = re.compile(r"\s*")


class NetFileError(ValueError):
    """A topology or demand file is unusable; the message names the file, line and field."""


@dataclass(frozen=True)
class Arc:
    """One direction of a link between node indices `u` and `v`."""

    u: int
    v: int
    capacity: float
    latency: float = 0.0


@dataclass(frozen=True)
class Demand:
    """Traffic from node index `src` to `dst` at `rate` bit/s, of application `app`."""

    src: int
    dst: int
    rate: float
    app: str | None = None


@dataclass
class Network:
    """A validated topology: node ids as given, directed arcs, hosts and demands."""

    name: str
    ids: list[NodeId]
    arcs: list[Arc]
    hosts: frozenset[int] = frozenset()
    demands: list[Demand] = field(default_factory=list)
    attrs: list[dict[str, Any]] = field(default_factory=list)  # node attributes as given

    def __post_init__(self) -> None:
        self.index: dict[NodeId, int] = {n: i for i, n in enumerate(self.ids)}
        self.by_text: dict[str, int] = {str(n): i for i, n in enumerate(self.ids)}
        self.arc_index: dict[tuple[int, int], int] = {(a.u, a.v): i
                                                      for i, a in enumerate(self.arcs)}
        self.out_arcs: list[list[int]] = [[] for _ in self.ids]
        for i, a in enumerate(self.arcs):
            self.out_arcs[a.u].append(i)

    @property
    def switches(self) -> list[int]:
        """Indices of the switch (non-host) nodes, in file order."""
        return [i for i in range(len(self.ids)) if i not in self.hosts]

    def path_arcs(self, path: Sequence[int]) -> list[int]:
        """Arc indices along a node-index path."""
        return [self.arc_index[(a, b)] for a, b in zip(path, path[1:], strict=False)]

    def graph(self) -> nx.DiGraph:
        """A DiGraph over node indices with `capacity`, `latency` and `arc` on each edge."""
        g = nx.DiGraph()
        g.add_nodes_from(range(len(self.ids)))
        g.add_edges_from((a.u, a.v, {"capacity": a.capacity, "latency": a.latency, "arc": i})
                         for i, a in enumerate(self.arcs))
        return g


# -- locating errors ---------------------------------------------------------------------------
def _skip_ws(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


def locate(text: str, path: Sequence[str | int]) -> int | None:
    """The line (1-based) where the JSON value at `path` (keys, indices) starts; None if absent."""
    dec = json.JSONDecoder()
    try:
        pos = _skip_ws(text, 0)
        for step in path:
            opener = text[pos]
            if opener not in "{[":
                return None
            pos = _skip_ws(text, pos + 1)
            index = 0
            while text[pos] not in "}]":
                if opener == "{":
                    key, pos = dec.raw_decode(text, pos)
                    pos = _skip_ws(text, pos)
                    pos = _skip_ws(text, pos + 1)  # the ':'
                    hit = key == str(step)
                else:
                    hit = index == step
                if hit:
                    break
                _, pos = dec.raw_decode(text, pos)
                pos = _skip_ws(text, pos)
                if text[pos] == ",":
                    pos = _skip_ws(text, pos + 1)
                index += 1
            else:
                return None
        return text.count("\n", 0, pos) + 1
    except (IndexError, ValueError):
        return None


def _where(path: Sequence[str | int]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


class _Reader:
    """Raises NetFileError with "FILE: line N: FIELD: message"."""

    def __init__(self, source: str, text: str | None) -> None:
        self.source, self.text = source, text

    def fail(self, path: Sequence[str | int], message: str) -> NetFileError:
        line = locate(self.text, path) if self.text is not None and path else None
        where = f"{self.source}: line {line}: " if line else f"{self.source}: "
        field_ = _where(path)
        return NetFileError(f"{where}{field_ + ': ' if field_ else ''}{message}")


def _number(reader: _Reader, value: object, path: Sequence[str | int], what: str,
            *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise reader.fail(path, f"{what} {value!r} is not a number")
    if value < 0 or (positive and value == 0):
        raise reader.fail(path, f"{what} {value!r} must be {'> 0' if positive else '>= 0'}")
    return float(value)


def _read_json(path: str | Path) -> tuple[Any, str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NetFileError(f"{path}: cannot read: {exc}") from None
    try:
        return json.loads(text), text
    except json.JSONDecodeError as exc:
        raise NetFileError(f"{path}: line {exc.lineno}: not JSON: {exc.msg}") from None


# -- topologies --------------------------------------------------------------------------------
def is_host(attrs: Mapping[str, Any]) -> bool:
    """True if node attributes mark a host (``type`` or ``kind`` "host", or ``host: true``)."""
    return attrs.get("type") == "host" or attrs.get("kind") == "host" or attrs.get("host") is True


def parse_network(data: Any, source: str = "<topology>", text: str | None = None, *,
                  default_capacity: float = DEFAULT_LINK_CAPACITY,
                  demand_scale: float = 1.0) -> Network:
    """Validate node-link data (as json.load gives it) into a Network.

    Edges come from ``edges`` (topohub, networkx >= 3.4) or ``links`` (networkx's
    default). A link without ``capacity`` gets `default_capacity`; without
    ``latency``, ``dist`` (km, topohub) / 200,000 km/s, else 0. An undirected
    file's link holds its capacity in each direction. ``graph.demands`` rates
    are multiplied by `demand_scale`.
    """
    r = _Reader(source, text)
    if not isinstance(data, dict):
        raise r.fail([], "a node-link topology must be a JSON object")
    nodes = data.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise r.fail(["nodes"] if "nodes" in data else [], "needs a non-empty list 'nodes'")
    if "edges" in data and "links" in data:
        raise r.fail(["links"], "give the links as 'edges' or 'links', not both")
    key = "edges" if "edges" in data else "links"
    edges = data.get(key, [])
    if not isinstance(edges, list):
        raise r.fail([key], "must be a list")
    directed = bool(data.get("directed", False))
    graph_attrs = data.get("graph") or {}
    if not isinstance(graph_attrs, dict):
        raise r.fail(["graph"], "must be an object")
    ids: list[NodeId] = []
    attrs: list[dict[str, Any]] = []
    seen: dict[str, NodeId] = {}
    for i, node in enumerate(nodes):
        if not isinstance(node, dict) or "id" not in node:
            raise r.fail(["nodes", i], "a node must be an object with an 'id'")
        nid = node["id"]
        if isinstance(nid, bool) or not isinstance(nid, (int, str)):
            raise r.fail(["nodes", i, "id"], f"node id {nid!r} must be an integer or a string")
        if str(nid) in seen:
            raise r.fail(["nodes", i, "id"], f"node id {nid!r} given twice"
                         + ("" if seen[str(nid)] == nid else f" (as {seen[str(nid)]!r})"))
        seen[str(nid)] = nid
        ids.append(nid)
        attrs.append({k: v for k, v in node.items() if k != "id"})
    index = {n: i for i, n in enumerate(ids)}
    hosts = frozenset(i for i, a in enumerate(attrs) if is_host(a))
    arcs: list[Arc] = []
    pairs: set[tuple[int, int]] = set()
    degree = [0] * len(ids)
    for i, edge in enumerate(edges):
        where = [key, i]
        if not isinstance(edge, dict):
            raise r.fail(where, "a link must be an object with 'source' and 'target'")
        ends = []
        for end in ("source", "target"):
            if end not in edge:
                raise r.fail(where, f"missing '{end}'")
            if not isinstance(edge[end], int | str) or isinstance(edge[end], bool) \
                    or edge[end] not in index:
                raise r.fail([*where, end], f"unknown node {edge[end]!r}")
            ends.append(index[edge[end]])
        u, v = ends
        if u == v:
            raise r.fail(where, f"link from {ids[u]!r} to itself")
        if (u, v) in pairs or (not directed and (v, u) in pairs):
            raise r.fail(where, f"a second link between {ids[u]!r} and {ids[v]!r}: "
                         "merge parallel links into one with the summed capacity")
        pairs.add((u, v))
        degree[u] += 1
        degree[v] += 1
        if "capacity" in edge:
            capacity = _number(r, edge["capacity"], [*where, "capacity"], "capacity",
                               positive=True)
        else:
            capacity = float(default_capacity)
        if "latency" in edge:
            latency = _number(r, edge["latency"], [*where, "latency"], "latency")
        elif "dist" in edge:
            latency = _number(r, edge["dist"], [*where, "dist"], "dist") / FIBRE_KM_PER_S
        else:
            latency = 0.0
        arcs.append(Arc(u, v, capacity, latency))
        if not directed:
            arcs.append(Arc(v, u, capacity, latency))
    for h in sorted(hosts):
        if degree[h] != 1:
            raise r.fail(["nodes", h], f"host {ids[h]!r} has {degree[h]} links; a host hangs "
                         "off exactly one switch by one link")
    for a in arcs:
        if a.u in hosts and a.v in hosts:
            raise r.fail(["nodes", a.u], f"host {ids[a.u]!r} is linked to host {ids[a.v]!r}, "
                         "not to a switch")
    net = Network(str(graph_attrs.get("name", Path(source).stem)), ids, arcs, hosts,
                  attrs=attrs)
    if "demands" in graph_attrs:
        net.demands = parse_demands(net, graph_attrs["demands"], r, ["graph", "demands"],
                                    scale=demand_scale)
    return net


def load_network(path: str | Path, *, default_capacity: float = DEFAULT_LINK_CAPACITY,
                 demand_scale: float = 1.0) -> Network:
    """Read and validate a node-link JSON topology file (see parse_network)."""
    data, text = _read_json(path)
    return parse_network(data, str(path), text, default_capacity=default_capacity,
                         demand_scale=demand_scale)


# -- demands -----------------------------------------------------------------------------------
def _node(net: Network, r: _Reader, ref: object, path: Sequence[str | int]) -> int:
    """The node index a demand names: the id itself, or its text (JSON keys are strings)."""
    if not isinstance(ref, bool) and isinstance(ref, (int, str)):
        if ref in net.index:
            return net.index[ref]
        if str(ref) in net.by_text:
            return net.by_text[str(ref)]
    raise r.fail(path, f"unknown node {ref!r}")


def parse_demands(net: Network, data: Any, reader: _Reader | None = None,
                  path: Sequence[str | int] = (), *, scale: float = 1.0) -> list[Demand]:
    """Demands as ``{src: {dst: rate}}`` or a list of ``{"src", "dst", "rate"[, "app"]}``.

    Zero rates are dropped; a pair given twice, a demand to itself, a negative
    or non-numeric rate and unknown nodes are errors.
    """
    r = reader or _Reader("<demands>", None)
    path = list(path)
    if isinstance(data, dict) and set(data) == {"demands"}:
        data, path = data["demands"], [*path, "demands"]
    Where = list[str | int]
    found: list[tuple[object, object, object, object, Where, Where, Where]] = []
    if isinstance(data, dict):
        for src, row in data.items():
            if not isinstance(row, dict):
                raise r.fail([*path, src], "must map destinations to rates")
            _node(net, r, src, [*path, src])
            found.extend((src, dst, rate, None, [*path, src], [*path, src, dst],
                          [*path, src, dst]) for dst, rate in row.items())
    elif isinstance(data, list):
        for i, item in enumerate(data):
            where: Where = [*path, i]
            if not isinstance(item, dict):
                raise r.fail(where, "a demand must be an object with src, dst and rate")
            unknown = set(item) - {"src", "dst", "rate", "app"}
            if unknown:
                raise r.fail(where, f"unknown field {sorted(unknown)[0]!r} "
                             "(expected src, dst, rate, app)")
            for need in ("src", "dst", "rate"):
                if need not in item:
                    raise r.fail(where, f"missing '{need}'")
            app = item.get("app")
            if app is not None and not isinstance(app, str):
                raise r.fail([*where, "app"], f"application {app!r} must be a string")
            found.append((item["src"], item["dst"], item["rate"], app, [*where, "src"],
                          [*where, "dst"], [*where, "rate"]))
    else:
        raise r.fail(path, "demands must be {src: {dst: rate}} or a list of "
                     "{src, dst, rate} objects")
    demands: list[Demand] = []
    seen: set[tuple[int, int, str | None]] = set()
    for src, dst, rate, app, src_at, dst_at, rate_at in found:
        s = _node(net, r, src, src_at)
        t = _node(net, r, dst, dst_at)
        value = _number(r, rate, rate_at, "rate")
        if s == t:
            raise r.fail(dst_at, f"demand from {net.ids[s]!r} to itself")
        key = (s, t, app if isinstance(app, str) else None)
        if key in seen:
            raise r.fail(dst_at, f"demand from {net.ids[s]!r} to {net.ids[t]!r} given twice")
        seen.add(key)
        if value > 0:
            demands.append(Demand(s, t, value * scale, key[2]))
    return demands


def load_demands(net: Network, path: str | Path, *, scale: float = 1.0) -> list[Demand]:
    """Read a demand file (see parse_demands) against `net`."""
    data, text = _read_json(path)
    return parse_demands(net, data, _Reader(str(path), text), scale=scale)


# -- results -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trail:
    """A planned demand: its paths (node indices) and split weights (summing to 1)."""

    demand: Demand
    paths: tuple[tuple[int, ...], ...]
    weights: tuple[float, ...]


def arc_loads(net: Network, trails: Iterable[Trail]) -> list[float]:
    """Load (bit/s) on every arc."""
    loads = [0.0] * len(net.arcs)
    for trail in trails:
        for path, weight in zip(trail.paths, trail.weights, strict=True):
            amount = trail.demand.rate * weight
            for arc in net.path_arcs(path):
                loads[arc] += amount
    return loads


def max_utilization(net: Network, loads: Sequence[float]) -> float:
    """The highest load / capacity over every arc (0 for an idle network)."""
    return max((load / a.capacity for load, a in zip(loads, net.arcs, strict=True)), default=0.0)


def plan_json(net: Network, trails: Sequence[Trail], loads: Sequence[float] | None = None,
              extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `sdnscent plan` output (docs/offline.rst): trails, per-link load and utilisation, max."""
    loads = arc_loads(net, trails) if loads is None else loads
    ids = net.ids
    out_trails = [_trail_entry(ids, t) for t in trails]
    links = [{"src": ids[a.u], "dst": ids[a.v], "load": load, "capacity": a.capacity,
              "utilization": load / a.capacity}
             for a, load in zip(net.arcs, loads, strict=True)]
    return {"trails": out_trails, "links": links,
            "max_utilization": max_utilization(net, loads), **(extra or {})}


def _trail_entry(ids: list[NodeId], t: Trail) -> dict[str, Any]:
    entry: dict[str, Any] = {"src": ids[t.demand.src], "dst": ids[t.demand.dst],
                             "rate": t.demand.rate}
    if t.demand.app is not None:
        entry["app"] = t.demand.app
    entry["paths"] = [{"path": [ids[n] for n in p], "weight": w}
                      for p, w in zip(t.paths, t.weights, strict=True)]
    return entry


def _trail_encoder(ids: list[NodeId]) -> Callable[[Trail], str]:
    """json.dumps(_trail_entry(ids, t)), character for character, without building
    the entry: node ids are encoded once, numbers as json.dumps writes them."""
    names = [json.dumps(i) for i in ids]

    def number(x: float) -> str:
        return float.__repr__(x) if isinstance(x, float) and math.isfinite(x) \
            else json.dumps(x)

    def encode(t: Trail) -> str:
        d = t.demand
        app = "" if d.app is None else f', "app": {json.dumps(d.app)}'
        paths = ", ".join(
            f'{{"path": [{", ".join([names[n] for n in p])}], "weight": {number(w)}}}'
            for p, w in zip(t.paths, t.weights, strict=True))
        rate = number(d.rate)
        return (f'{{"src": {names[d.src]}, "dst": {names[d.dst]}, "rate": {rate}{app}, '
                f'"paths": [{paths}]}}')

    return encode


def write_plan(out: TextIO, net: Network, trails: Iterable[Trail], loads: Sequence[float],
               extra: Mapping[str, Any] | None = None, pretty: bool = False) -> None:
    """Stream the document of plan_json to `out`, one trail at a time (the trails may
    be a generator; nothing is built in memory beyond one trail)."""
    ids = net.ids
    sep = ",\n " if pretty else ", "
    out.write('{"trails": [')
    encode = _trail_encoder(ids)
    for n, t in enumerate(trails):
        out.write((sep if n else ("\n " if pretty else "")) + encode(t))
    out.write('], "links": [')
    for n, (a, load) in enumerate(zip(net.arcs, loads, strict=True)):
        link = {"src": ids[a.u], "dst": ids[a.v], "load": load, "capacity": a.capacity,
                "utilization": load / a.capacity}
        out.write((sep if n else ("\n " if pretty else "")) + json.dumps(link))
    out.write("]")
    tail = {"max_utilization": max_utilization(net, loads), **(extra or {})}
    for key, value in tail.items():
        out.write(f",{chr(10) if pretty else ' '}{json.dumps(key)}: "
                  f"{json.dumps(value, indent=1 if pretty else None)}")
    out.write("}\n")


# -- generated fabrics -------------------------------------------------------------------------
def fat_tree(k: int, capacity: float = 1e9, host_capacity: float | None = None,
             latency: float = 0.0) -> dict[str, Any]:
    """Node-link data of a k-ary fat-tree numbered like topologies/fattree.py.

    Switches s1.. (cores, then per pod aggregation and edge), hosts h1..h(k^3/4)
    with ``type: host``, numbered edge by edge.
    """
    if k < 2 or k % 2:
        raise ValueError(f"fat-tree k must be even and >= 2, got {k}")
    half = k // 2
    hcap = capacity if host_capacity is None else host_capacity
    nodes: list[dict[str, Any]] = [{"id": f"s{n}", "type": "switch"}
                                   for n in range(1, half * half + k * k + 1)]
    edges: list[dict[str, Any]] = []
    hosts: list[dict[str, Any]] = []
    for pod in range(k):
        first = half * half + pod * k + 1
        for e in range(half):
            edge = first + half + e
            for _ in range(half):
                h = len(hosts) + 1
                hosts.append({"id": f"h{h}", "type": "host", "pod": pod})
                edges.append({"source": f"h{h}", "target": f"s{edge}", "capacity": hcap,
                              "latency": latency})
            for a in range(half):
                edges.append({"source": f"s{first + a}", "target": f"s{edge}",
                              "capacity": capacity, "latency": latency})
    for index in range(half * half):
        for pod in range(k):
            agg = half * half + pod * k + 1 + index // half
            edges.append({"source": f"s{index + 1}", "target": f"s{agg}", "capacity": capacity,
                          "latency": latency})
    return {"directed": False, "multigraph": False, "graph": {"name": f"fat-tree k={k}"},
            "nodes": nodes + hosts, "edges": edges}


def leaf_spine(spines: int, leaves: int, hosts_per_leaf: int, capacity: float = 10e9,
               host_capacity: float | None = None) -> dict[str, Any]:
    """Node-link data of a leaf-spine numbered like topologies/leafspine.py."""
    if min(spines, leaves, hosts_per_leaf) < 1:
        raise ValueError("spines, leaves and hosts_per_leaf must be >= 1")
    hcap = capacity if host_capacity is None else host_capacity
    nodes: list[dict[str, Any]] = [{"id": f"s{n}", "type": "switch"}
                                   for n in range(1, spines + leaves + 1)]
    edges: list[dict[str, Any]] = []
    h = 0
    for leaf in range(spines + 1, spines + leaves + 1):
        for _ in range(hosts_per_leaf):
            h += 1
            nodes.append({"id": f"h{h}", "type": "host"})
            edges.append({"source": f"h{h}", "target": f"s{leaf}", "capacity": hcap})
        edges.extend({"source": f"s{leaf}", "target": f"s{s}", "capacity": capacity}
                     for s in range(1, spines + 1))
    return {"directed": False, "multigraph": False,
            "graph": {"name": f"leaf-spine {spines}x{leaves}x{hosts_per_leaf}"},
            "nodes": nodes, "edges": edges}
