"""An application's trail DAG: the union of its trails, with JSON, DOT and GraphML exports.

Nodes are hosts (by IP), switches (by switch name) and network functions (by
name); edges carry latency (s), bandwidth (capacity, bit/s), security (the
level of the node entered) and the ids of the trails on them.

A trail through an NF often comes back to a switch it already crossed (an NF
with both sides on s5 gives s5 -> fw1 -> s5), which would make a cycle. So a
switch node stands for the switch *in one layer of the chain*, as in the
planner's layered graph: "s5" before the first NF, "s5#1" after one NF,
"s5#2" after two. Trails of one application pass the same chain, so their
pre- and post-NF segments line up (naming the k-th *visit* instead would not:
s1 -> s4 -> fw1 -> s4' -> s1' on one trail and s4 -> fw1 -> s4' -> s1 on
another would join into a cycle). What is left, e.g. two trails crossing the
same cable in opposite directions (a reply trail, or ECMP choices), is a real
cycle: app_dag raises DagCycleError naming it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

import networkx as nx

from .constraints import Node, format_rate, node_attrs
from .policy import Policy
from .topology import Topology, TopologyError, dpid_str
from .trails import Trail


class NFLike(Protocol):
    """What the DAG needs of a network function (constraints.NetworkFunction has it)."""

    name: str
    role: str
    zone: str | None
    level: int


class DagCycleError(ValueError):
    """The trails do not form a DAG; `cycle` lists the node ids around the cycle."""

    def __init__(self, message: str, cycle: list[str]) -> None:
        super().__init__(message)
        self.cycle = cycle


def switch_node(name: str, layer: int) -> str:
    """The DAG node id of switch `name` after `layer` network functions."""
    return name if layer == 0 else f"{name}#{layer}"


def _capacity(topo: Topology, dpid: int, port: int) -> float | None:
    try:
        return float(topo.link_capacity(dpid, port))
    except TopologyError:
        return None  # the switch left since the trail was planned


def _latency(topo: Topology, dpid: int, port: int) -> float:
    link = topo.link_from(dpid, port)
    return float(link.latency) if link else 0.0


class _Builder:
    def __init__(self, topo: Topology, nfs: Iterable[NFLike], policy: Policy) -> None:
        self.topo = topo
        self.policy = policy
        self.nfs = {nf.name: nf for nf in nfs}
        self.attrs: dict[Node, tuple[str | None, int]] = node_attrs(topo, policy)
        self.hosts = {}
        for spec in policy.nodes.values():
            if spec.kind == "host":
                for key in (spec.ip, spec.mac):
                    if key:
                        self.hosts[key] = spec
        self.graph = nx.DiGraph()
        self.kinds: dict[str, str] = {}

    def _add_node(self, node: str, kind: str, **attrs: Any) -> None:
        known = self.kinds.setdefault(node, kind)
        if known != kind:
            raise ValueError(f"DAG node {node!r} would be both a {known} and a {kind}; "
                             "rename one of them")
        if node not in self.graph:
            self.graph.add_node(node, kind=kind, **attrs)

    def host(self, ip: str, mac: str) -> str:
        spec = self.hosts.get(ip) or self.hosts.get(mac)
        zone = spec.zone if spec else None
        level = self.policy.level_of(spec.name) if spec else 0
        self._add_node(ip, "host", label=spec.name if spec else ip, ip=ip, mac=mac,
                       zone=zone, level=level)
        return ip

    def switch(self, dpid: int, layer: int) -> str:
        name = self.topo.switch_name(dpid)
        node = switch_node(name, layer)
        zone, level = self.attrs.get(dpid, (None, 0))
        label = name if layer == 0 else f"{name} (after {layer} NF{'s' if layer > 1 else ''})"
        self._add_node(node, "switch", label=label, switch=name, dpid=dpid_str(dpid),
                       layer=layer, zone=zone, level=level)
        return node

    def nf(self, name: str) -> str:
        nf = self.nfs.get(name)
        self._add_node(name, "nf", label=name, role=nf.role if nf else None,
                       zone=nf.zone if nf else None, level=nf.level if nf else 0)
        return name

    def edge(self, u: str, v: str, trail: Trail, latency: float, capacity: float | None,
             port: tuple[int, int] | None) -> None:
        security = int(self.graph.nodes[v]["level"])
        if not self.graph.has_edge(u, v):
            self.graph.add_edge(u, v, latency=latency, bandwidth=capacity, security=security,
                                trails=[], _ports={})
        data = self.graph.edges[u, v]
        if trail.id not in data["trails"]:
            data["trails"].append(trail.id)
            data["trails"].sort()
        ports: dict[tuple[int, int] | None, float | None] = data["_ports"]
        if port not in ports:
            ports[port] = capacity
            data["latency"] = max(data["latency"], latency)
            known = [c for c in ports.values() if c is not None]
            data["bandwidth"] = float(sum(known)) if known else None

    def add(self, trail: Trail) -> None:
        before = self.host(trail.src_ip, trail.src_mac)
        first = trail.hops[0]
        layer = 0
        here = self.switch(first.dpid, layer)
        self.edge(before, here, trail, 0.0, _capacity(self.topo, first.dpid, first.in_port),
                  (first.dpid, first.in_port))
        for hop, nxt in zip(trail.hops, trail.hops[1:], strict=False):
            out_cap = _capacity(self.topo, hop.dpid, hop.out_port)
            if hop.via is not None:
                nf = self.nf(hop.via)
                self.edge(here, nf, trail, 0.0, out_cap, (hop.dpid, hop.out_port))
                layer += 1
                there = self.switch(nxt.dpid, layer)
                self.edge(nf, there, trail, 0.0, _capacity(self.topo, nxt.dpid, nxt.in_port),
                          (nxt.dpid, nxt.in_port))
            else:
                there = self.switch(nxt.dpid, layer)
                self.edge(here, there, trail, _latency(self.topo, hop.dpid, hop.out_port),
                          out_cap, (hop.dpid, hop.out_port))
            here = there
        last = trail.hops[-1]
        after = self.host(trail.dst_ip, trail.dst_mac)
        self.edge(here, after, trail, 0.0, _capacity(self.topo, last.dpid, last.out_port),
                  (last.dpid, last.out_port))


def app_dag(trails: Iterable[Trail], topo: Topology, nfs: Iterable[NFLike],
            policy: Policy) -> nx.DiGraph:
    """The union of `trails` as a DAG (networkx DiGraph), checked acyclic.

    Node attributes: kind ("host", "switch", "nf"), label, zone, level; switches
    also switch (name), dpid (16 hex digits) and layer (NFs passed); NFs role;
    hosts ip and mac. Edge attributes: latency (s, the largest of parallel
    links), bandwidth (bit/s, the sum of the distinct links used; None if
    unknown), security (level of the node entered) and trails (sorted ids).
    Zones and levels of switches and hosts come from `policy`, of NFs from `nfs`.

    Raises DagCycleError naming a cycle (and the trails on it) if the union is
    not acyclic, ValueError if a name is both a switch and an NF (or a host).

    >>> g = app_dag(ctrl.store.all(), topo, nfs, policy); to_json(g)["links"][0]
    """
    trails = sorted(trails, key=lambda t: t.id)
    builder = _Builder(topo, nfs, policy)
    for trail in trails:
        builder.add(trail)
    graph = builder.graph
    for _, _, data in graph.edges(data=True):
        del data["_ports"]
    apps = sorted({t.app for t in trails})
    graph.graph.update(name=",".join(apps), apps=apps, trails=[t.id for t in trails])
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return graph
    nodes = [str(u) for u, _ in cycle]
    on_cycle = sorted({i for u, v in cycle for i in graph.edges[u, v]["trails"]})
    raise DagCycleError(
        f"the trails of {' and '.join(apps) or 'no application'} do not form a DAG: "
        f"cycle {' -> '.join([*nodes, nodes[0]])} (trails {', '.join(map(str, on_cycle))})",
        nodes)


# -- exports ---------------------------------------------------------------------------------
def to_json(g: nx.DiGraph) -> dict[str, Any]:
    """networkx node-link data ("nodes", "links"), JSON-serialisable as it is."""
    data: dict[str, Any] = nx.node_link_data(g, edges="links")
    json.dumps(data)  # fail here, not in the web server, if an attribute is not JSON
    return data


def _scalar(value: Any) -> Any:
    """A GraphML-friendly value: lists joined by commas, None dropped (returned as None)."""
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(v) for v in value)
    return value


def _graphml_attrs(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop None, join lists, and give each attribute one type across all items."""
    cleaned = [{k: _scalar(v) for k, v in d.items() if v is not None} for d in items]
    kinds: dict[str, set[type]] = {}
    for d in cleaned:
        for k, v in d.items():
            kinds.setdefault(k, set()).add(type(v))
    for k, types in kinds.items():
        if len(types) == 1:
            continue
        cast: type = float if types <= {int, float} else str
        for d in cleaned:
            if k in d:
                d[k] = cast(d[k])
    return cleaned


def to_graphml(g: nx.DiGraph) -> str:
    """GraphML text (networkx's writer) with None dropped and lists joined by commas."""
    h = nx.DiGraph()
    nodes = list(g.nodes)
    for node, attrs in zip(nodes, _graphml_attrs([dict(g.nodes[n]) for n in nodes]),
                           strict=True):
        h.add_node(str(node), **attrs)
    edges = list(g.edges)
    for (u, v), attrs in zip(edges, _graphml_attrs([dict(g.edges[e]) for e in edges]),
                             strict=True):
        h.add_edge(str(u), str(v), **attrs)
    h.graph.update(_graphml_attrs([dict(g.graph)])[0])
    return "\n".join(nx.generate_graphml(h))


def _dot_id(value: object) -> str:
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def _dot_attrs(attrs: dict[str, Any]) -> str:
    parts = [f"{k}={_dot_id(_scalar(v))}" for k, v in attrs.items()
             if v is not None and not k.startswith("_")]
    return f" [{', '.join(parts)}]" if parts else ""


_SHAPES = {"host": "box", "switch": "ellipse", "nf": "hexagon"}


def to_dot(g: nx.DiGraph) -> str:
    """Graphviz DOT text: nodes shaped by kind, edges labelled latency, bandwidth, level."""
    lines = [f"digraph {_dot_id(g.graph.get('name') or 'trails')} {{", "  rankdir=LR;"]
    for node, data in g.nodes(data=True):
        attrs = {"shape": _SHAPES.get(data.get("kind", ""), "ellipse"), **data}
        lines.append(f"  {_dot_id(node)}{_dot_attrs(attrs)};")
    for u, v, data in g.edges(data=True):
        bandwidth = data.get("bandwidth")
        label = ", ".join([f"{data.get('latency', 0.0) * 1e3:g} ms",
                           format_rate(bandwidth) if bandwidth is not None else "? bit/s",
                           f"level {data.get('security', 0)}"])
        lines.append(f"  {_dot_id(u)} -> {_dot_id(v)}{_dot_attrs({'label': label, **data})};")
    lines.append("}")
    return "\n".join(lines) + "\n"
