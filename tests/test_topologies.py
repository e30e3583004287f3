"""Structure of the Mininet topologies (Topo objects are pure: no root needed)."""

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import pytest
from mininet.link import Link, TCLink
from mininet.topo import Topo

from topologies import FatTreeTopo, LeafSpineTopo, LinearTopo, switch_layers, topos

TOPO_DIR = Path(__file__).resolve().parent.parent / "topologies"


def graph(topo: Topo) -> nx.MultiGraph:
    """The topology as a networkx multigraph (node attribute ``layer``)."""
    g = nx.MultiGraph()
    for name in topo.nodes():
        g.add_node(name, layer=topo.nodeInfo(name).get("layer", "host"))
    g.add_edges_from(topo.links())
    return g


def check_common(topo: Topo, switches: int, hosts: int) -> None:
    """Naming, dpids, OpenFlow version, addresses, ports and interface names."""
    assert topo.switches() == [f"s{n}" for n in range(1, switches + 1)]
    assert topo.hosts() == [f"h{n}" for n in range(1, hosts + 1)]
    for n, name in enumerate(topo.switches(), 1):
        info = topo.nodeInfo(name)
        assert info["dpid"] == f"{n:016x}"
        assert info["protocols"] == "OpenFlow13"
    for n, name in enumerate(topo.hosts(), 1):
        info = topo.nodeInfo(name)
        assert info["ip"] == f"10.0.{n // 256}.{n % 256}/8"
        assert info["mac"] == ":".join(f"{n:012x}"[i : i + 2] for i in range(0, 12, 2))
    for node, ports in topo.ports.items():
        first = 1 if topo.isSwitch(node) else 0
        assert sorted(ports) == list(range(first, first + len(ports)))
        assert all(len(f"{node}-eth{port}") <= 15 for port in ports)
    assert nx.is_connected(graph(topo))


@pytest.mark.parametrize("k", [2, 4, 6, 8])
def test_fattree_counts_and_degrees(k: int) -> None:
    topo = FatTreeTopo(k)
    check_common(topo, switches=5 * k * k // 4, hosts=k**3 // 4)
    assert len(topo.links()) == 3 * k**3 // 4
    g = graph(topo)
    assert all(g.degree(s) == k for s in topo.switches())
    assert all(g.degree(h) == 1 for h in topo.hosts())
    assert Counter(switch_layers(topo).values()) == {
        "core": k * k // 4,
        "aggregation": k * k // 2,
        "edge": k * k // 2,
    }


def test_fattree_k4_layers_and_pods() -> None:
    topo = FatTreeTopo(4)
    g = graph(topo)
    adjacent = {("core", "aggregation"), ("aggregation", "edge"), ("edge", "host")}
    for a, b in g.edges():
        pair = (g.nodes[a]["layer"], g.nodes[b]["layer"])
        assert pair in adjacent or pair[::-1] in adjacent, (a, b, pair)
        pods = {topo.nodeInfo(n).get("pod") for n in (a, b) if topo.isSwitch(n)}
        if "core" not in pair:
            assert len(pods) == 1, (a, b)  # aggregation-edge links stay in the pod
    for core in (s for s, layer in switch_layers(topo).items() if layer == "core"):
        assert sorted(topo.nodeInfo(n)["pod"] for n in g[core]) == [0, 1, 2, 3]
        assert "pod" not in topo.nodeInfo(core)
    # Between pods there are (k/2)^2 shortest host-to-host paths, one per core.
    assert len(list(nx.all_shortest_paths(g, "h1", "h16"))) == 4
    assert len(list(nx.all_shortest_paths(g, "h1", "h3"))) == 2


def test_fattree_k4_numbering_and_ports() -> None:
    topo = FatTreeTopo(4)
    layers = switch_layers(topo)
    pod0 = ["aggregation", "aggregation", "edge", "edge"]
    assert [layers[f"s{n}"] for n in range(1, 9)] == ["core"] * 4 + pod0
    assert topo.nodeInfo("s20")["pod"] == 3
    # Edge s7 (pod 0): hosts on 1-2, aggregation s5, s6 on 3-4.
    assert [topo.ports["s7"][p][0] for p in (1, 2, 3, 4)] == ["h1", "h2", "s5", "s6"]
    # Aggregation s5: edges on 1-2, cores s1, s2 on 3-4; core s1: pods 0..3.
    assert [topo.ports["s5"][p][0] for p in (1, 2, 3, 4)] == ["s7", "s8", "s1", "s2"]
    assert [topo.ports["s1"][p][0] for p in (1, 2, 3, 4)] == ["s5", "s9", "s13", "s17"]
    assert topo.ports["h1"][0] == ("s7", 1)


@pytest.mark.parametrize(("spines", "leaves", "hosts"), [(1, 1, 1), (2, 4, 2), (4, 8, 3)])
def test_leafspine(spines: int, leaves: int, hosts: int) -> None:
    topo = LeafSpineTopo(spines, leaves, hosts)
    check_common(topo, switches=spines + leaves, hosts=leaves * hosts)
    g = graph(topo)
    layers = switch_layers(topo)
    spine_names = [s for s, layer in layers.items() if layer == "spine"]
    leaf_names = [s for s, layer in layers.items() if layer == "leaf"]
    assert spine_names == [f"s{n}" for n in range(1, spines + 1)]
    assert len(leaf_names) == leaves
    assert all(sorted(g[s]) == sorted(leaf_names) for s in spine_names)
    for leaf in leaf_names:
        assert sorted(n for n in g[leaf] if n in layers) == sorted(spine_names)
        assert g.degree(leaf) == spines + hosts
    first_leaf = f"s{spines + 1}"
    assert [topo.ports[first_leaf][p][0] for p in range(1, hosts + spines + 1)] == [
        f"h{n}" for n in range(1, hosts + 1)
    ] + spine_names


@pytest.mark.parametrize(("n", "hosts"), [(1, 1), (2, 1), (5, 3)])
def test_linear(n: int, hosts: int) -> None:
    topo = LinearTopo(n, hosts_per_switch=hosts)
    check_common(topo, switches=n, hosts=n * hosts)
    assert len(topo.links()) == n * hosts + n - 1
    assert set(switch_layers(topo).values()) == {"edge"}
    if n > 2:  # s2: its hosts, then s1, then s3
        expect = [f"h{i}" for i in range(hosts + 1, 2 * hosts + 1)] + ["s1", "s3"]
        assert [topo.ports["s2"][p][0] for p in sorted(topo.ports["s2"])] == expect


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: FatTreeTopo(3), "fat-tree k must be an even integer >= 2, got 3"),
        (lambda: FatTreeTopo(0), "got 0"),
        (lambda: FatTreeTopo(-4), "got -4"),
        (lambda: FatTreeTopo("4"), "got '4'"),
        (lambda: FatTreeTopo(4.0), "got 4.0"),
        (lambda: FatTreeTopo(True), "got True"),
        (lambda: LeafSpineTopo(0, 4, 2), "leaf-spine spines must be an integer >= 1, got 0"),
        (lambda: LeafSpineTopo(2, -1, 2), "leaf-spine leaves must be"),
        (lambda: LeafSpineTopo(2, 4, hosts_per_leaf=0), "leaf-spine hosts_per_leaf must be"),
        (lambda: LinearTopo(0), "linear n must be an integer >= 1, got 0"),
        (lambda: LinearTopo(2, hosts_per_switch=None), "linear hosts_per_switch must be"),
    ],
)
def test_bad_arguments(make: Callable[[], Topo], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_switch_layers_without_layer_param() -> None:
    topo = Topo()
    topo.addSwitch("s1")
    assert switch_layers(topo) == {"s1": None}


@pytest.mark.parametrize("name", ["fattree", "leafspine", "linear"])
def test_loads_like_mn_custom(name: str) -> None:
    """``mn --custom FILE`` exec()s the file alone and reads its ``topos`` dict."""
    path = TOPO_DIR / f"{name}.py"
    customs: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), customs, customs)
    cls = customs["topos"][name]
    assert cls is not topos[name]  # a fresh copy, independent of the package
    assert cls().switches()


def load_like_mn_custom(name: str) -> dict:
    """The globals of ``topologies/<name>.py`` exec()ed alone, as ``mn --custom`` does."""
    path = TOPO_DIR / f"{name}.py"
    customs: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), customs, customs)
    return customs


@pytest.mark.parametrize("name", ["fattree", "leafspine", "linear", "nfchain"])
def test_links_ask_for_label_room_and_host_checksums(name: str) -> None:
    """Inter-switch ends get MTU 1600 (a 1500-byte frame plus its trail label), the ends
    on hosts h<n> transmit checksum offload off: set by the file itself, so plain
    ``mn --custom`` carries TCP through the userspace datapath."""
    customs = load_like_mn_custom(name)
    link_end = customs["_LinkEnd"]
    topo = customs["topos"][name]()
    kinds: Counter[str] = Counter()
    for _, _, info in topo.links(withInfo=True):
        node1, node2 = info["node1"], info["node2"]
        if topo.isSwitch(node1) and topo.isSwitch(node2):
            kinds["fabric"] += 1
            assert (info["cls1"], info["cls2"], info["mtu"]) == (link_end, link_end, 1600), info
        elif re.fullmatch(r"h\d+", node2):
            kinds["host"] += 1
            assert topo.isSwitch(node1), info
            assert (info["cls2"], info["params2"]) == (link_end, {"txo": False}), info
            assert "mtu" not in info  # hosts keep MTU 1500
    assert kinds["fabric"] and kinds["host"] == sum(
        1 for host in topo.hosts() if re.fullmatch(r"h\d+", host))


class FakeNode:
    """Records the commands an interface runs in its node (no root, no namespace)."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def addIntf(self, intf: object, port: int | None = None) -> None:
        """Mininet's Node.addIntf: nothing to do here."""

    def cmd(self, *args: object, **_: object) -> str:
        """Record the command line; print nothing."""
        self.commands.append(" ".join(str(arg) for arg in args))
        return ""


@pytest.mark.parametrize("link_cls", [Link, TCLink])
def test_link_end_sets_mtu_and_tx_offload(link_cls: type) -> None:
    """Under Mininet's default Link and under ``mn --link tc`` (TCLink) alike."""
    link_end = load_like_mn_custom("fattree")["_LinkEnd"]
    link = link_cls.__new__(link_cls)
    switch, host = FakeNode(), FakeNode()
    link_end("s1-eth1", node=switch, link=link, mtu=1600)
    link_end("h1-eth0", node=host, link=link, txo=False)
    assert "ip link set dev s1-eth1 mtu 1600" in switch.commands
    assert not any("tx off" in command for command in switch.commands)
    assert any(re.fullmatch(r"ethtool -K h1-eth0 .*tx off.*", command)
               for command in host.commands), host.commands
    assert not any("mtu" in command for command in host.commands)


def test_link_end_is_the_same_in_every_file() -> None:
    """Each file carries its own copy (``mn --custom`` loads one file alone): keep them equal."""
    copies = set()
    for name in ("fattree", "leafspine", "linear", "nfchain"):
        text = (TOPO_DIR / f"{name}.py").read_text()
        start = text.index("_CORE_MTU = ")
        copies.add(text[start:text.index("\n\n\n", text.index("class _LinkEnd"))])
    assert len(copies) == 1
