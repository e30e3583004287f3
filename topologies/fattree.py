"""k-ary fat-tree: ``mn --custom topologies/fattree.py --topo fattree,4``.

``mn --custom`` exec()s this file on its own and copies its globals into mn, so it
imports only Mininet and keeps its helper names private.

Switches are ``s<n>`` with dpid ``n``: core switches first, then pod by pod the
aggregation and the edge switches.  Hosts ``h<n>`` get 10.0.0.<n>/8 and MAC
00:00:00:00:00:<n>, numbered by pod and edge switch.  Ports: an edge switch has
its hosts on 1..k/2 and its aggregation switches on k/2+1..k; an aggregation
switch has its edge switches on 1..k/2 and its core switches on k/2+1..k; core
switch ports 1..k lead to pods 0..k-1.
"""

from mininet.topo import Topo
from mininet.util import ipAdd, macColonHex


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
                    self.addLink(
                        edge, self.addHost(f"h{host}", ip=f"{ipAdd(host)}/8", mac=macColonHex(host))
                    )
            for agg in aggs[pod]:
                for edge in edges:
                    self.addLink(agg, edge)
        # Core switch i*k/2 + j (0-based) links to aggregation switch i of every pod.
        for index, core in enumerate(cores):
            for pod in range(k):
                self.addLink(core, aggs[pod][index // half])

    def _switch(self, n: int, layer: str, **meta: int) -> str:
        """Add switch s<n> with dpid n in ``layer``."""
        return self.addSwitch(
            f"s{n}", dpid=f"{n:016x}", protocols="OpenFlow13", layer=layer, **meta
        )


topos = {"fattree": FatTreeTopo}
