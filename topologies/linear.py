"""Chain of switches: ``mn --custom topologies/linear.py --topo linear,3,2``.

``mn --custom`` exec()s this file on its own and copies its globals into mn, so it
imports only Mininet and keeps its helper names private.  (Mininet has a built-in
``linear`` topology; this one replaces it with the same naming scheme as the
other sdnscent topologies.)

Switches ``s1``..``s<n>`` with dpids 1..n, all in layer ``edge`` (each has hosts).
Hosts ``h<n>`` get 10.0.0.<n>/8 and MAC 00:00:00:00:00:<n>, numbered switch by
switch.  Ports: a switch has its hosts on 1..hosts_per_switch, then the link to
the previous switch, then the link to the next one.

Links set up what the scent trails need on the userspace datapath (see
``_LinkEnd``): inter-switch interfaces get MTU 1600, host interfaces transmit
checksum offload off.
"""

from itertools import pairwise

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



def _linear_count(name: str, value: object) -> int:
    """Return ``value`` if it is an integer >= 1, else raise a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"linear {name} must be an integer >= 1, got {value!r}")
    return value


class LinearTopo(Topo):
    """``n`` switches in a row, ``hosts_per_switch`` hosts on each."""

    def build(self, n: int = 2, hosts_per_switch: int = 1) -> None:
        """Build the chain s1 - s2 - ... - s<n>."""
        n = _linear_count("n", n)
        hosts_per_switch = _linear_count("hosts_per_switch", hosts_per_switch)
        switches = [
            self.addSwitch(f"s{i}", dpid=f"{i:016x}", protocols="OpenFlow13", layer="edge")
            for i in range(1, n + 1)
        ]
        host = 0
        for switch in switches:
            for _ in range(hosts_per_switch):
                host += 1
                self._host_link(
                    switch, self.addHost(f"h{host}", ip=f"{ipAdd(host)}/8", mac=macColonHex(host))
                )
        for left, right in pairwise(switches):
            self._fabric_link(left, right)

    def _host_link(self, switch: str, host: str) -> None:
        """Link a switch to a host that computes its own checksums."""
        self.addLink(switch, host, cls2=_LinkEnd, params2={"txo": False})

    def _fabric_link(self, node1: str, node2: str) -> None:
        """Link two switches with room for trail labels."""
        self.addLink(node1, node2, cls1=_LinkEnd, cls2=_LinkEnd, mtu=_CORE_MTU)


topos = {"linear": LinearTopo}
