"""Leaf-spine fabric: ``mn --custom topologies/leafspine.py --topo leafspine,2,4,2``.

``mn --custom`` exec()s this file on its own and copies its globals into mn, so it
imports only Mininet and keeps its helper names private.

Switches are ``s<n>`` with dpid ``n``: spines s1..s<spines>, then the leaves.
Hosts ``h<n>`` get 10.0.0.<n>/8 and MAC 00:00:00:00:00:<n>, numbered leaf by
leaf.  Ports: a leaf has its hosts on 1..hosts_per_leaf, then spine 1, 2, ...;
spine port <i> leads to leaf <i>.

Links set up what the scent trails need on the userspace datapath (see
``_LinkEnd``): inter-switch interfaces get MTU 1600, host interfaces transmit
checksum offload off.
"""

from mininet import link as _link
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



def _leafspine_count(name: str, value: object) -> int:
    """Return ``value`` if it is an integer >= 1, else raise a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"leaf-spine {name} must be an integer >= 1, got {value!r}")
    return value


class LeafSpineTopo(Topo):
    """Every leaf switch linked to every spine switch; hosts on the leaves."""

    def build(self, spines: int = 2, leaves: int = 4, hosts_per_leaf: int = 2) -> None:
        """Build ``spines`` x ``leaves`` with ``hosts_per_leaf`` hosts on each leaf."""
        spines = _leafspine_count("spines", spines)
        leaves = _leafspine_count("leaves", leaves)
        hosts_per_leaf = _leafspine_count("hosts_per_leaf", hosts_per_leaf)
        spine_names = [self._switch(n, "spine") for n in range(1, spines + 1)]
        host = 0
        for n in range(spines + 1, spines + leaves + 1):
            leaf = self._switch(n, "leaf")
            for _ in range(hosts_per_leaf):
                host += 1
                self._host_link(
                    leaf, self.addHost(f"h{host}", ip=f"{ipAdd(host)}/8", mac=macColonHex(host))
                )
            for spine in spine_names:
                self._fabric_link(leaf, spine)

    def _host_link(self, switch: str, host: str) -> None:
        """Link a switch to a host that computes its own checksums."""
        self.addLink(switch, host, cls2=_LinkEnd, params2={"txo": False})

    def _fabric_link(self, node1: str, node2: str) -> None:
        """Link two switches with room for trail labels."""
        self.addLink(node1, node2, cls1=_LinkEnd, cls2=_LinkEnd, mtu=_CORE_MTU)

    def _switch(self, n: int, layer: str) -> str:
        """Add switch s<n> with dpid n in ``layer``."""
        return self.addSwitch(f"s{n}", dpid=f"{n:016x}", protocols="OpenFlow13", layer=layer)


topos = {"leafspine": LeafSpineTopo}
