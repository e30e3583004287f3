"""The NF-chain topology and its network-function hosts (pure: no root, no Mininet run)."""

import json
import re
from pathlib import Path

import pytest

import topologies.nfchain as nfchain
from topologies import NFChainTopo, switch_layers, switch_zones, topos
from topologies.nfchain import BumpInTheWire, FirewallHost

TOPO_FILE = Path(__file__).resolve().parent.parent / "topologies" / "nfchain.py"

# The port map the module docstring promises (tests and trails rely on it).
PORTS = {
    "s1": {1: "s3", 2: "s4", 3: "s5"},
    "s2": {1: "s3", 2: "s4", 3: "s5"},
    "s6": {1: "s3", 2: "s4", 3: "s5"},
    "s3": {1: "h1", 2: "h2", 3: "s1", 4: "s2", 5: "s6"},
    "s4": {1: "h5", 2: "fw1-eth0", 3: "fw1-eth1", 4: "s1", 5: "s2", 6: "s6"},
    "s5": {1: "h3", 2: "h4", 3: "lb1-eth0", 4: "lb1-eth1", 5: "s1", 6: "s2", 7: "s6"},
}


def port_map(topo: NFChainTopo) -> dict[str, dict[int, str]]:
    """switch -> port -> peer (a switch name, a host, or ``<nf>-eth<i>`` for an NF)."""
    result: dict[str, dict[int, str]] = {}
    for switch in topo.switches():
        peers = {}
        for port, (peer, peer_port) in topo.ports[switch].items():
            peers[port] = f"{peer}-eth{peer_port}" if peer in ("fw1", "lb1") else peer
        result[switch] = peers
    return result


def test_node_and_link_counts() -> None:
    topo = NFChainTopo()
    assert topo.switches() == ["s1", "s2", "s3", "s4", "s5", "s6"]
    assert topo.hosts() == ["fw1", "h1", "h2", "h3", "h4", "h5", "lb1"]
    assert len(topo.links()) == 5 + 2 * 2 + 3 * 3  # hosts, NF interfaces, leaf-spine


def test_port_map_is_the_documented_one() -> None:
    topo = NFChainTopo()
    assert port_map(topo) == PORTS
    documented = {}
    for line in (nfchain.__doc__ or "").splitlines():
        match = re.fullmatch(r"\s+(s\d)\s+((?:\d+ \S+(?:, )?)+)", line)
        if match:
            documented[match[1]] = {int(p): peer for p, peer in
                                    (item.split() for item in match[2].split(", "))}
    assert documented == PORTS


@pytest.mark.parametrize(("nf", "switch", "ports", "cls", "role"), [
    ("fw1", "s4", [2, 3], FirewallHost, "firewall"),
    ("lb1", "s5", [3, 4], BumpInTheWire, "load_balancer"),
])
def test_nf_has_two_links_to_one_leaf(nf: str, switch: str, ports: list[int], cls: type,
                                      role: str) -> None:
    topo = NFChainTopo()
    links = [link for link in topo.links(withInfo=True) if nf in link[:2]]
    assert len(links) == 2
    assert all({a, b} == {nf, switch} for a, b, _ in links)
    assert topo.ports[nf] == {0: (switch, ports[0]), 1: (switch, ports[1])}
    info = topo.nodeInfo(nf)
    assert info["cls"] is cls
    assert info["role"] == role
    assert info["ip"] is None
    macs = [info["addr2"] for _, _, info in links]
    assert len(set(macs)) == 2 and all(mac.startswith("02:") for mac in macs)


def test_zones_levels_and_layers() -> None:
    topo = NFChainTopo()
    assert switch_zones(topo) == {"s1": "core", "s2": "dmz", "s3": "access", "s4": "access",
                                  "s5": "access", "s6": "core"}
    assert {s: topo.nodeInfo(s)["level"] for s in topo.switches()} == {
        "s1": 2, "s2": 0, "s3": 1, "s4": 1, "s5": 1, "s6": 2}
    assert switch_layers(topo) == {"s1": "spine", "s2": "spine", "s3": "leaf", "s4": "leaf",
                                   "s5": "leaf", "s6": "spine"}


def test_switch_dpids_unique_and_hosts_addressed() -> None:
    topo = NFChainTopo()
    dpids = [topo.nodeInfo(s)["dpid"] for s in topo.switches()]
    assert len(set(dpids)) == len(dpids)
    for n, switch in enumerate(topo.switches(), 1):
        assert topo.nodeInfo(switch)["dpid"] == f"{n:016x}"
        assert topo.nodeInfo(switch)["protocols"] == "OpenFlow13"
    for n in range(1, 6):
        info = topo.nodeInfo(f"h{n}")
        assert info["ip"] == f"10.0.0.{n}/8"
        assert info["mac"] == f"00:00:00:00:00:0{n}"


def test_loads_like_mn_custom() -> None:
    customs: dict = {}
    exec(compile(TOPO_FILE.read_text(), str(TOPO_FILE), "exec"), customs, customs)
    cls = customs["topos"]["nfchain"]
    assert cls is not topos["nfchain"]
    assert port_map(cls()) == PORTS
    public = {name for name in customs if not name.startswith("_")}
    assert public <= {"BumpInTheWire", "CPULimitedHost", "CpuLimitedFirewall", "FirewallHost",
                      "Host", "NFChainTopo", "PIPE", "Topo", "ipAdd", "json", "macColonHex", "re",
                      "topos"}


def nft_listing(rules: list[tuple[str | None, int, int]]) -> dict:
    """What ``nft -j list table bridge sdnscent_nf`` prints (nft 1.0.6) for these rules."""
    items: list[dict] = [
        {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
        {"table": {"family": "bridge", "name": "sdnscent_nf", "handle": 3}},
        {"chain": {"family": "bridge", "table": "sdnscent_nf", "name": "forward", "handle": 1,
                   "type": "filter", "hook": "forward", "prio": -200, "policy": "accept"}},
    ]
    for handle, (comment, packets, octets) in enumerate(rules, 2):
        rule = {"family": "bridge", "table": "sdnscent_nf", "chain": "forward",
                "handle": handle,
                "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "udp",
                                                                     "field": "dport"}},
                                    "right": 9999}},
                         {"counter": {"packets": packets, "bytes": octets}}, {"drop": None}]}
        if comment is not None:
            rule["comment"] = comment
        items.append({"rule": rule})
    return {"nftables": items}


class FakeNF:
    """Stands in for a host's namespace: records commands, answers ``nft -j``."""

    def __init__(self, listing: dict) -> None:
        self.listing = listing
        self.calls: list[tuple[tuple[str, ...], str | None]] = []

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        self.calls.append((args, stdin))
        return json.dumps(self.listing) if args[:2] == ("nft", "-j") else ""


def nf_host(cls: type[BumpInTheWire], listing: dict) -> tuple[BumpInTheWire, FakeNF]:
    """An NF host object that was never started, running commands through a FakeNF."""
    host = object.__new__(cls)
    host.name = "fw1"
    fake = FakeNF(listing)
    host._nf_run = fake  # type: ignore[method-assign]
    return host, fake


def test_nft_counters_by_comment_or_position() -> None:
    host, fake = nf_host(FirewallHost, nft_listing([("deny-udp-9999", 10, 920),
                                                    (None, 3, 180), ("other", 44, 3452)]))
    assert host.nft_counters() == {"deny-udp-9999": (10, 920), "#1": (3, 180),
                                   "other": (44, 3452)}
    assert fake.calls == [(("nft", "-j", "list", "table", "bridge", "sdnscent_nf"), None)]


def test_firewall_rules_deny_first_and_name_every_counter() -> None:
    rules = [line for line in FirewallHost.default_rules.splitlines() if line.strip()]
    names = [re.search(r'comment "([^"]+)"', line)[1] for line in rules]
    assert names == ["deny-udp-9999", "deny-telnet", "icmp", "tcp", "other"]
    assert all(re.search(r"\bcounter\b", line) for line in rules)
    assert [line.split()[-3] for line in rules] == ["drop", "drop", "accept", "accept", "accept"]


def test_load_rules_replaces_the_table_in_one_transaction() -> None:
    host, fake = nf_host(FirewallHost, nft_listing([("icmp", 0, 0)]))
    host.load_rules('meta l4proto icmp counter accept comment "icmp"')
    (args, stdin), _listing = fake.calls
    assert args == ("nft", "-f", "-")
    assert stdin is not None
    assert stdin.startswith("table bridge sdnscent_nf\ndelete table bridge sdnscent_nf\n")
    assert "type filter hook forward priority filter; policy accept;" in stdin
    assert '        meta l4proto icmp counter accept comment "icmp"\n' in stdin


def test_rule_without_counter_is_rejected_before_loading() -> None:
    host, fake = nf_host(BumpInTheWire, nft_listing([]))
    with pytest.raises(ValueError, match=r"fw1: nftables rule line 2 has no counter: 'tcp "):
        host.load_rules('counter accept comment "a"\ntcp dport 22 drop\n# note\n')
    assert fake.calls == []


def test_duplicate_rule_comments_are_rejected() -> None:
    host, _fake = nf_host(BumpInTheWire, nft_listing([("x", 0, 0), ("x", 0, 0)]))
    with pytest.raises(ValueError, match=r"comments are not unique: \['x'\]"):
        host.load_rules('counter comment "x"\ncounter comment "x"')
