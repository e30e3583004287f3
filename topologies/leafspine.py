"""Leaf-spine fabric: ``mn --custom topologies/leafspine.py --topo leafspine,2,4,2``.

``mn --custom`` exec()s this file on its own and copies its globals into mn, so it
imports only Mininet and keeps its helper names private.

Switches are ``s<n>`` with dpid ``n``: spines s1..s<spines>, then the leaves.
Hosts ``h<n>`` get 10.0.0.<n>/8 and MAC 00:00:00:00:00:<n>, numbered leaf by
leaf.  Ports: a leaf has its hosts on 1..hosts_per_leaf, then spine 1, 2, ...;
spine port <i> leads to leaf <i>.
"""

from mininet.topo import Topo
from mininet.util import ipAdd, macColonHex


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
                self.addLink(
                    leaf, self.addHost(f"h{host}", ip=f"{ipAdd(host)}/8", mac=macColonHex(host))
                )
            for spine in spine_names:
                self.addLink(leaf, spine)

    def _switch(self, n: int, layer: str) -> str:
        """Add switch s<n> with dpid n in ``layer``."""
        return self.addSwitch(f"s{n}", dpid=f"{n:016x}", protocols="OpenFlow13", layer=layer)


topos = {"leafspine": LeafSpineTopo}
