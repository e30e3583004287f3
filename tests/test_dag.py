"""The application trail DAG: union of trails, acyclicity, attributes, JSON/DOT/GraphML."""

from __future__ import annotations

import io
import json
import re

import networkx as nx
import pytest

from sdnscent.constraints import NetworkFunction, plan_chain
from sdnscent.dag import DagCycleError, app_dag, switch_node, to_dot, to_graphml, to_json
from sdnscent.policy import NodeSpec, Policy, Zone
from sdnscent.topology import Host, Port, Topology
from sdnscent.trails import Hop, Trail
from tests.conftest import FatTree

POLICY = Policy(
    zones={"core": Zone("core", 3), "pod": Zone("pod", 1)},
    nodes={
        "s1": NodeSpec("s1", "switch", zone="core"),
        "s5": NodeSpec("s5", "switch", zone="pod", level=2),
        "s7": NodeSpec("s7", "switch", zone="pod"),
        "web1": NodeSpec("web1", "host", zone="pod", ip="10.0.0.5"),
    },
)


def fw_fat_tree(tree: FatTree) -> tuple[Topology, NetworkFunction]:
    """k=4 fat-tree with fw1 (zone core, level 3) on both new ports 5, 6 of core s1."""
    topo = tree.topology()
    for port in (5, 6):
        topo.set_port(1, Port(port, f"s1-eth{port}", speed_bps=10**10))
    return topo, NetworkFunction("fw1", "firewall", (1, 5), (1, 6), "core", 3)


def trail(trail_id: int, src: Host, dst: Host, hops: tuple[Hop, ...], app: str = "web") -> Trail:
    return Trail(trail_id, 100 + trail_id, src.mac, dst.mac, src.ip, dst.ip, hops, app=app)


def host(topo: Topology, tree: FatTree, n: int) -> Host:
    return topo.hosts[tree.host(n).mac]


def web_trails(tree: FatTree) -> tuple[Topology, NetworkFunction, list[Trail]]:
    """Trails 1: h1 -> h5 and 2: h2 -> h5, both through fw1; s7 -> s5 takes 1 ms."""
    topo, fw = fw_fat_tree(tree)
    topo.set_link_attrs(7, 3, latency=0.001)  # s7 port 3 leads to s5
    h1, h2, h5 = (host(topo, tree, n) for n in (1, 2, 5))
    trails = [trail(i, src, h5, plan_chain(topo, src, h5, ("firewall",), [fw]))
              for i, src in ((1, h1), (2, h2))]
    return topo, fw, trails


def nodes_of(t: Trail, topo: Topology) -> list[str]:
    """The DAG nodes a trail crosses, in order (switches per layer, NFs by name)."""
    out, layer = [t.src_ip], 0
    for hop in t.hops:
        out.append(switch_node(topo.switch_name(hop.dpid), layer))
        if hop.via:
            out.append(hop.via)
            layer += 1
    return [*out, t.dst_ip]


def test_dag_is_the_union_of_the_trails_with_their_ids(fat_tree) -> None:
    topo, fw, trails = web_trails(fat_tree)
    g = app_dag(trails, topo, [fw], POLICY)
    expected_edges = set()
    for t in trails:
        walk = nodes_of(t, topo)
        assert nx.is_path(g, walk), walk
        expected_edges |= set(nx.utils.pairwise(walk))
        for u, v in nx.utils.pairwise(walk):
            assert t.id in g.edges[u, v]["trails"]
    assert set(g.edges) == expected_edges
    assert g.edges["s1", "fw1"]["trails"] == [1, 2]  # shared by both
    assert g.edges["10.0.0.1", "s7"]["trails"] == [1]
    assert g.graph["apps"] == ["web"] and g.graph["trails"] == [1, 2]


def test_nf_on_one_switch_keeps_the_dag_acyclic_by_layer(fat_tree) -> None:
    topo, fw, trails = web_trails(fat_tree)
    g = app_dag(trails, topo, [fw], POLICY)
    assert nx.is_directed_acyclic_graph(g)
    assert g.has_edge("s1", "fw1") and g.has_edge("fw1", "s1#1")
    assert g.nodes["s1#1"]["switch"] == "s1" and g.nodes["s1#1"]["layer"] == 1
    assert g.nodes["s1#1"]["label"] == "s1 (after 1 NF)"
    order = list(nx.topological_sort(g))
    assert order.index("s1") < order.index("fw1") < order.index("s1#1")


def test_nodes_and_edges_carry_kind_zone_level_latency_bandwidth_security(fat_tree) -> None:
    topo, fw, trails = web_trails(fat_tree)
    g = app_dag(trails, topo, [fw], POLICY)
    assert g.nodes["s1"] == {"kind": "switch", "label": "s1", "switch": "s1",
                             "dpid": "0000000000000001", "layer": 0, "zone": "core", "level": 3}
    assert g.nodes["s5"]["level"] == 2 and g.nodes["s7"]["level"] == 1
    assert g.nodes["s9#1"]["zone"] is None and g.nodes["s9#1"]["level"] == 0
    assert g.nodes["fw1"] == {"kind": "nf", "label": "fw1", "role": "firewall", "zone": "core",
                              "level": 3}
    assert g.nodes["10.0.0.5"]["kind"] == "host" and g.nodes["10.0.0.5"]["label"] == "web1"
    assert g.nodes["10.0.0.5"]["level"] == 1  # zone pod's level
    assert g.nodes["10.0.0.1"]["mac"] == "00:00:00:00:00:01"
    first = g.edges["10.0.0.1", "s7"]
    assert first["latency"] == 0.0 and first["bandwidth"] == 1e10 and first["security"] == 1
    if g.has_edge("s7", "s5"):
        assert g.edges["s7", "s5"]["latency"] == 0.001 and g.edges["s7", "s5"]["security"] == 2
    assert g.edges["s1", "fw1"]["security"] == 3 and g.edges["s1", "fw1"]["bandwidth"] == 1e10
    assert g.edges["fw1", "s1#1"]["security"] == 3


def test_parallel_links_add_their_capacity() -> None:
    topo = Topology()
    for dpid in (1, 2):
        topo.add_switch(dpid, {p: Port(p, speed_bps=10**9) for p in (1, 2, 10, 11)}, f"s{dpid}")
    for port in (1, 2):
        topo.add_link(1, port, 2, port)
        topo.add_link(2, port, 1, port)
    a, _ = topo.add_host("00:00:00:00:00:01", "10.0.0.1", 1, 10)
    b, _ = topo.add_host("00:00:00:00:00:02", "10.0.0.2", 2, 10)
    c, _ = topo.add_host("00:00:00:00:00:03", "10.0.0.3", 1, 11)
    trails = [trail(1, a, b, (Hop(1, 10, 1), Hop(2, 1, 10))),
              trail(2, c, b, (Hop(1, 11, 2), Hop(2, 2, 10))),
              trail(3, a, b, (Hop(1, 10, 1), Hop(2, 1, 10)))]
    g = app_dag(trails, topo, [], Policy())
    assert g.edges["s1", "s2"]["bandwidth"] == 2e9
    assert g.edges["s1", "s2"]["trails"] == [1, 2, 3]


def test_trails_that_cross_a_cable_both_ways_are_a_named_cycle(fat_tree) -> None:
    topo = fat_tree.topology()
    h1, h3 = host(topo, fat_tree, 1), host(topo, fat_tree, 3)  # s7 and s8, pod 0
    there = trail(7, h1, h3, (Hop(7, 1, 3), Hop(5, 1, 2), Hop(8, 3, 1)))  # s7 -> s5 -> s8
    back = trail(9, h3, h1, (Hop(8, 1, 3), Hop(5, 2, 1), Hop(7, 3, 1)))  # s8 -> s5 -> s7
    with pytest.raises(DagCycleError) as err:
        app_dag([there, back], topo, [], POLICY)
    message = str(err.value)
    assert message.startswith("the trails of web do not form a DAG: cycle ")
    assert message.endswith("(trails 7, 9)")
    cycle = err.value.cycle
    assert set(cycle) <= {"s5", "s7", "s8", "10.0.0.1", "10.0.0.3"} and len(cycle) >= 2
    assert " -> ".join([*cycle, cycle[0]]) in message
    assert app_dag([there], topo, [], POLICY).has_edge("s5", "s8")  # each alone is fine


def test_a_name_that_is_a_switch_and_an_nf_is_refused(fat_tree) -> None:
    topo, _, trails = web_trails(fat_tree)
    twin = NetworkFunction("s7", "firewall", (1, 5), (1, 6))
    bad = [t.evolve(hops=tuple(Hop(h.dpid, h.in_port, h.out_port, "s7" if h.via else None)
                               for h in t.hops)) for t in trails]
    with pytest.raises(ValueError, match="'s7' would be both a switch and a nf"):
        app_dag(bad, topo, [twin], POLICY)


def test_an_nf_missing_from_the_list_still_appears(fat_tree) -> None:
    topo, _, trails = web_trails(fat_tree)
    g = app_dag(trails, topo, [], POLICY)
    assert g.nodes["fw1"]["kind"] == "nf" and g.nodes["fw1"]["role"] is None
    assert "role" not in nx.read_graphml(io.StringIO(to_graphml(g))).nodes["fw1"]


# -- exports -------------------------------------------------------------------------------------
def test_json_export_is_node_link_data_that_round_trips(fat_tree) -> None:
    topo, fw, trails = web_trails(fat_tree)
    g = app_dag(trails, topo, [fw], POLICY)
    data = json.loads(json.dumps(to_json(g)))
    assert set(data) >= {"nodes", "links", "directed", "graph"}
    back = nx.node_link_graph(data, edges="links")
    assert set(back.nodes) == set(g.nodes) and set(back.edges) == set(g.edges)
    assert back.edges["s1", "fw1"]["trails"] == [1, 2]
    assert back.nodes["s9#1"]["zone"] is None


def test_graphml_export_parses_back_with_scalar_attributes(fat_tree) -> None:
    topo, fw, trails = web_trails(fat_tree)
    g = app_dag(trails, topo, [fw], POLICY)
    back = nx.read_graphml(io.StringIO(to_graphml(g)))
    assert set(back.nodes) == set(g.nodes) and set(back.edges) == set(g.edges)
    assert back.edges["s1", "fw1"]["trails"] == "1,2"
    assert back.edges["s1", "fw1"]["bandwidth"] == 1e10
    assert back.edges["s1", "fw1"]["security"] == 3
    assert isinstance(back.edges["s1", "fw1"]["latency"], float)
    assert back.nodes["s1"]["zone"] == "core" and back.nodes["s1"]["level"] == 3
    assert "zone" not in back.nodes["s9#1"]  # None is left out, not written as "None"
    assert back.graph["trails"] == "1,2"


def test_dot_export_names_every_node_and_edge(fat_tree) -> None:
    topo, fw, trails = web_trails(fat_tree)
    g = app_dag(trails, topo, [fw], POLICY)
    text = to_dot(g)
    assert text.startswith('digraph "web" {') and text.rstrip().endswith("}")
    for node in g.nodes:
        assert re.search(rf'^  "{re.escape(node)}" \[', text, re.M), node
    for u, v in g.edges:
        assert f'"{u}" -> "{v}" [' in text
    assert 'shape="hexagon"' in text and 'label="0 ms, 10 Gbit/s, level 3"' in text
    assert text.count("{") == text.count("}")


def test_dot_export_escapes_quotes_in_names() -> None:
    g = nx.DiGraph(name='odd "app"')
    g.add_node('s"1', kind="switch", zone=None, level=0)
    g.add_node("h", kind="host", level=0)
    g.add_edge('s"1', "h", latency=0.0, bandwidth=None, security=0, trails=[1])
    text = to_dot(g)
    assert 'digraph "odd \\"app\\"" {' in text
    assert '"s\\"1" -> "h" [label="0 ms, ? bit/s, level 0", latency="0.0", security="0", ' \
           'trails="1"];' in text
    assert "None" not in text


def test_an_empty_application_exports_an_empty_graph(fat_tree) -> None:
    topo = fat_tree.topology()
    g = app_dag([], topo, [], POLICY)
    assert len(g) == 0
    assert to_json(g)["nodes"] == [] and "digraph" in to_dot(g)
    assert len(nx.read_graphml(io.StringIO(to_graphml(g)))) == 0
