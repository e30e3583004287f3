"""Zoned fabric with NF hosts: ``mn --custom topologies/nfchain.py --topo nfchain``.

``mn --custom`` exec()s this file on its own and copies its globals into mn, so it
imports only Mininet (and the standard library) and keeps its helper names private.

Switches ``s<n>`` have dpid ``n`` and params ``protocols='OpenFlow13'``, ``layer``
(``spine``/``leaf``), ``zone`` and ``level`` (higher = more trusted): spines s1
and s6 are zone ``core`` level 2, spine s2 zone ``dmz`` level 0, leaves s3-s5 zone
``access`` level 1 (three spines leave room for two link-isolated applications
beside other traffic).  Hosts ``h<n>`` get 10.0.0.<n>/8 and MAC 00:00:00:00:00:<n>.  Two
network-function hosts have no IP address and bridge their two interfaces:
``fw1`` (``FirewallHost``, param ``role='firewall'``) on leaf s4 and ``lb1``
(``BumpInTheWire``, ``role='load_balancer'``) on leaf s5.  Their interfaces have
MACs 02:00:00:00:<nf>:<intf> (fw1 nf=01, lb1 nf=02) which never appear as a
frame source.

Ports (OpenFlow port numbers, fixed: Mininet requests them with ``ofport_request``)::

    switch  port -> peer
    s1      1 s3, 2 s4, 3 s5
    s2      1 s3, 2 s4, 3 s5
    s6      1 s3, 2 s4, 3 s5
    s3      1 h1, 2 h2, 3 s1, 4 s2, 5 s6
    s4      1 h5, 2 fw1-eth0, 3 fw1-eth1, 4 s1, 5 s2, 6 s6
    s5      1 h3, 2 h4, 3 lb1-eth0, 4 lb1-eth1, 5 s1, 6 s2, 7 s6

A leaf has its hosts first, then its NF's eth0 and eth1, then s1, s2 and s6;
spine port <i> leads to leaf s<i+2>.  On the spines the port to s<n> is n-2.

An NF host forwards whatever enters one of its interfaces out of the other,
in both directions (flooding bridge, no MAC learning), and filters with
nftables (bridge family, table ``sdnscent_nf``, chain ``forward``).  L3/L4
rules do not look past an MPLS header (a labelled frame matches only a
catch-all rule: a denied packet with a label passes), so trails must pop their
label before an NF port; 802.1Q-tagged frames are inspected.
``pingall`` reports the NF hosts (no IP address) as unreachable; ping between
``h<n>`` instead.

Links set up what the scent trails need on the userspace datapath (see
``_LinkEnd``): inter-switch interfaces get MTU 1600, the interfaces of ``h<n>``
transmit checksum offload off (the NF hosts turn it off themselves).
"""

import json
import re
from subprocess import PIPE

from mininet import link as _link
from mininet.node import CPULimitedHost, Host
from mininet.topo import Topo
from mininet.util import ipAdd, macColonHex

_CORE_MTU = 1600  # inter-switch MTU: a 1500-byte host frame plus 4-byte trail labels


class _LinkEnd(_link.TCIntf):
    """A link end applying ``mtu`` and ``txo`` (transmit checksum offload) itself.

    Inter-switch ends get ``mtu=1600``: a full 1500-byte host frame with its MPLS
    trail label does not fit a 1500-byte link.  Host ends get ``txo=False``: the
    userspace datapath forwards the unfinished checksums of a host's offloaded TCP
    segments and the receiver drops them.  Under ``mn --link tc,...`` the end is a
    TCIntf, so the shaping options still apply.
    """

    def config(self, mtu: int | None = None, **params: object) -> dict[str, object]:
        """Configure as TCIntf under a TCLink, else as Intf plus ``txo``; then set ``mtu``."""
        if isinstance(self.link, _link.TCLink):
            result = super().config(**params) or {}
        else:
            result = _link.Intf.config(self, **params)
            if params.get("txo") is False:
                self.cmd("ethtool", "-K", self.name, "tx", "off")
        if mtu is not None:
            self.cmd("ip", "link", "set", "dev", self.name, "mtu", str(mtu))
        return result


class BumpInTheWire(Host):
    """A transparent bridge between the host's two interfaces, filtered by nftables.

    ``rules`` (host param) is the body of the bridge ``forward`` chain, one rule per
    line, each with a ``counter`` and best a ``comment "name"`` so that
    :meth:`nft_counters` can address it.  Default: count and accept everything.
    The chain policy is ``accept``.
    """

    nft_table = "sdnscent_nf"
    bridge = "br0"
    default_rules = 'counter accept comment "all"'

    def config(self, rules: str | None = None, **params: object) -> dict:
        """Configure as a bridge: no addresses, no IPv6, no learning, no STP, no offload."""
        params.update(ip=None, defaultRoute=None)  # an NF has no address of its own
        result = super().config(**params)
        intfs = self.intfNames()
        if len(intfs) != 2:
            raise ValueError(f"{self.name}: a bump in the wire needs exactly 2 interfaces, "
                             f"has {intfs}")
        names = [*intfs, self.bridge]
        self._nf_run("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                     "net.ipv6.conf.default.disable_ipv6=1",
                     *(f"net.ipv6.conf.{intf}.disable_ipv6=1" for intf in intfs))
        # ageing_time 0: never learn, always flood, so either port forwards to the
        # other whichever way a frame goes; no multicast snooping either.
        self._nf_run("ip", "link", "add", self.bridge, "type", "bridge", "ageing_time", "0",
                     "stp_state", "0", "mcast_snooping", "0")
        for intf in intfs:
            self._nf_run("ip", "addr", "flush", "dev", intf)
            self._nf_run("ethtool", "-K", intf, "tx", "off")
            self._nf_run("ip", "link", "set", "dev", intf, "master", self.bridge)
            self._nf_run("ip", "link", "set", "dev", intf, "type", "bridge_slave",
                         "learning", "off")
        self._nf_run("sysctl", "-q", "-w", f"net.ipv6.conf.{self.bridge}.disable_ipv6=1")
        for name in names:
            self._nf_run("ip", "link", "set", "dev", name, "up")
        self.load_rules(self.default_rules if rules is None else rules)
        return result

    def nft_ruleset(self, rules: str) -> str:
        """The complete nftables input for the chain body ``rules``, replacing ours atomically."""
        for number, line in enumerate(rules.splitlines(), 1):
            text = line.strip()
            if text and not text.startswith("#") and not re.search(r"\bcounter\b", text):
                raise ValueError(f"{self.name}: nftables rule line {number} has no counter: "
                                 f"{text!r}")
        body = "\n".join(f"        {line.strip()}" for line in rules.splitlines())
        table = f"bridge {self.nft_table}"
        return (f"table {table}\ndelete table {table}\n"
                f"table {table} {{\n    chain forward {{\n"
                f"        type filter hook forward priority filter; policy accept;\n"
                f"{body}\n    }}\n}}\n")

    def load_rules(self, rules: str) -> None:
        """Replace the filter rules (chain body, see the class docstring) in one transaction."""
        self._nf_run("nft", "-f", "-", stdin=self.nft_ruleset(rules))
        keys = [key for key, _ in self._nft_rule_counters()]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"{self.name}: nftables rule comments are not unique: {duplicates}")

    def nft_counters(self) -> dict[str, tuple[int, int]]:
        """(packets, bytes) per rule of the forward chain.

        A rule is named by its ``comment``, or by ``"#<i>"`` (its 0-based position
        in the chain) when it has none.
        """
        return dict(self._nft_rule_counters())

    def _nft_rule_counters(self) -> list[tuple[str, tuple[int, int]]]:
        ruleset = json.loads(self._nf_run("nft", "-j", "list", "table", "bridge",
                                          self.nft_table))
        found = []
        position = 0
        for item in ruleset["nftables"]:
            rule = item.get("rule")
            if rule is None or rule.get("chain") != "forward":
                continue
            key = rule.get("comment") or f"#{position}"
            position += 1
            for expr in rule.get("expr", []):
                if isinstance(expr, dict) and "counter" in expr:
                    counter = expr["counter"]
                    found.append((key, (int(counter["packets"]), int(counter["bytes"]))))
                    break
        return found

    def _nf_run(self, *args: str, stdin: str | None = None) -> str:
        """Run a command in this host's namespace; raise naming it if it fails."""
        proc = self.popen(list(args), stdin=PIPE)
        out, err = proc.communicate(None if stdin is None else stdin.encode())
        if proc.returncode:
            raise RuntimeError(f"{self.name}: `{' '.join(args)}` failed with "
                               f"{proc.returncode}: {err.decode(errors='replace').strip()}")
        return out.decode(errors="replace")


class FirewallHost(BumpInTheWire):
    """A bump in the wire with a firewall rule set.

    Counters: ``deny-udp-9999`` and ``deny-telnet`` (dropped), ``icmp`` and ``tcp``
    (accepted), ``other`` (everything else, accepted).  The deny rules come first.
    """

    default_rules = "\n".join([
        'udp dport 9999 counter drop comment "deny-udp-9999"',
        'tcp dport 23 counter drop comment "deny-telnet"',
        'meta l4proto icmp counter accept comment "icmp"',
        'meta l4proto tcp counter accept comment "tcp"',
        'counter accept comment "other"',
    ])


class CpuLimitedFirewall(FirewallHost, CPULimitedHost):
    """The firewall in a cgroup of its own (Mininet's CPULimitedHost: cpu,cpuacct:/<name>),
    so its CPU use can be measured and its quota changed (the allocator's cgroup backend)."""


class NFChainTopo(Topo):
    """Spines s1 (core) and s2 (dmz), leaves s3-s5, hosts h1-h5, NF hosts fw1 and lb1."""

    def build(self, firewall_cpu: float | None = None) -> None:
        """Build the fabric with the port numbers stated in the module docstring.

        `firewall_cpu`: run fw1 as a CPULimitedHost with this fraction of the machine.
        """
        spines = [self._switch(1, "spine", "core", 2), self._switch(2, "spine", "dmz", 0),
                  self._switch(6, "spine", "core", 2)]
        leaves = {n: self._switch(n, "leaf", "access", 1) for n in (3, 4, 5)}
        attached = {3: [1, 2], 4: [5], 5: [3, 4]}
        nfs = {4: ("fw1", 1, FirewallHost, "firewall"),
               5: ("lb1", 2, BumpInTheWire, "load_balancer")}
        for index, (n, leaf) in enumerate(leaves.items(), 1):
            port = 0
            for host in attached[n]:
                port += 1
                name = self.addHost(f"h{host}", ip=f"{ipAdd(host)}/8", mac=macColonHex(host))
                self._host_link(leaf, name, port1=port, port2=0)
            if n in nfs:
                name, number, cls, role = nfs[n]
                if name == "fw1" and firewall_cpu is not None:
                    self.addHost(name, cls=CpuLimitedFirewall, ip=None, role=role,
                                 cpu=firewall_cpu)
                else:
                    self.addHost(name, cls=cls, ip=None, role=role)
                for intf in (0, 1):
                    port += 1
                    self.addLink(leaf, name, port1=port, port2=intf,
                                 addr2=f"02:00:00:00:{number:02x}:{intf:02x}")
            for spine in spines:
                port += 1
                self._fabric_link(leaf, spine, port1=port, port2=index)

    def _host_link(self, switch: str, host: str, **ports: int) -> None:
        """Link a switch to a host that computes its own checksums."""
        self.addLink(switch, host, cls2=_LinkEnd, params2={"txo": False}, **ports)

    def _fabric_link(self, node1: str, node2: str, **ports: int) -> None:
        """Link two switches with room for trail labels."""
        self.addLink(node1, node2, cls1=_LinkEnd, cls2=_LinkEnd, mtu=_CORE_MTU, **ports)

    def _switch(self, n: int, layer: str, zone: str, level: int) -> str:
        """Add switch s<n> with dpid n in ``layer``, ``zone`` and ``level``."""
        return self.addSwitch(f"s{n}", dpid=f"{n:016x}", protocols="OpenFlow13", layer=layer,
                              zone=zone, level=level)


topos = {"nfchain": NFChainTopo}
