"""k-ary fat-tree: ``mn --custom topologies/fattree.py --topo fattree,4``.

``mn --custom`` exec()s this file on its own and copies its globals into mn, so it
imports only Mininet and keeps its helper names private.

Switches are ``s<n>`` with dpid ``n``: core switches first, then pod by pod the
aggregation and the edge switches.  Hosts ``h<n>`` get 10.0.0.<n>/8 and MAC
00:00:00:00:00:<n>, numbered by pod and edge switch.  Ports: an edge switch has
its hosts on 1..k/2 and its aggregation switches on k/2+1..k; an aggregation
switch has its edge switches on 1..k/2 and its core switches on k/2+1..k; core
switch ports 1..k lead to pods 0..k-1.

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


class FatTreeTopo(Topo):
    """k-ary fat-tree: (k/2)^2 core switches; k pods of k/2 aggregation and k/2
    edge switches; k/2 hosts per edge switch (k=4: 20 switches, 16 hosts)."""

    def build(self, k: int = 4) -> None:
        """Build the fat-tree for an even ``k`` >= 2."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 2 or k % 2:
            raise ValueError(f"fat-tree k must be an even integer >= 2, got {k!r}")
        half = k // 2
        cores = [self._switch(n, "core") for n in range(1, half * half + 1)]
        aggs: list[list[str]] = []
        host = 0
        for pod in range(k):
            first = half * half + pod * k + 1  # dpid of the pod's first switch
            aggs.append([self._switch(first + i, "aggregation", pod=pod) for i in range(half)])
            edges = [self._switch(first + half + i, "edge", pod=pod) for i in range(half)]
            for edge in edges:
                for _ in range(half):
                    host += 1
                    self._host_link(
                        edge, self.addHost(f"h{host}", ip=f"{ipAdd(host)}/8", mac=macColonHex(host))
                    )
            for agg in aggs[pod]:
                for edge in edges:
                    self._fabric_link(agg, edge)
        # Core switch i*k/2 + j (0-based) links to aggregation switch i of every pod.
        for index, core in enumerate(cores):
            for pod in range(k):
                self._fabric_link(core, aggs[pod][index // half])

    def _host_link(self, switch: str, host: str) -> None:
        """Link a switch to a host that computes its own checksums."""
        self.addLink(switch, host, cls2=_LinkEnd, params2={"txo": False})

    def _fabric_link(self, node1: str, node2: str) -> None:
        """Link two switches with room for trail labels."""
        self.addLink(node1, node2, cls1=_LinkEnd, cls2=_LinkEnd, mtu=_CORE_MTU)

    def _switch(self, n: int, layer: str, **meta: int) -> str:
        """Add switch s<n> with dpid n in ``layer``."""
        return self.addSwitch(
            f"s{n}", dpid=f"{n:016x}", protocols="OpenFlow13", layer=layer, **meta
        )


topos = {"fattree": FatTreeTopo}
