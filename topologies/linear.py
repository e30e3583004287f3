"""Chain of switches: ``mn --custom topologies/linear.py --topo linear,3,2``.

``mn --custom`` exec()s this file on its own and copies its globals into mn, so it
imports only Mininet and keeps its helper names private.  (Mininet has a built-in
``linear`` topology; this one replaces it with the same naming scheme as the
other sdnscent topologies.)

Switches ``s1``..``s<n>`` with dpids 1..n, all in layer ``edge`` (each has hosts).
Hosts ``h<n>`` get 10.0.0.<n>/8 and MAC 00:00:00:00:00:<n>, numbered switch by
switch.  Ports: a switch has its hosts on 1..hosts_per_switch, then the link to
the previous switch, then the link to the next one.
"""

from itertools import pairwise

from mininet.topo import Topo
from mininet.util import ipAdd, macColonHex


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
                self.addLink(
                    switch, self.addHost(f"h{host}", ip=f"{ipAdd(host)}/8", mac=macColonHex(host))
                )
        for left, right in pairwise(switches):
            self.addLink(left, right)


topos = {"linear": LinearTopo}
