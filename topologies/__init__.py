"""Mininet Topo classes for sdnscent.

Each module also works on its own with ``mn --custom topologies/<file>.py``.
Switches are ``s<n>`` with dpid ``n`` and params ``protocols='OpenFlow13'`` and
``layer`` (plus ``pod`` in a fat-tree, ``zone`` and ``level`` in nfchain); hosts
are ``h<n>`` with IP 10.0.0.<n>/8 and MAC 00:00:00:00:00:<n> (nfchain adds the
network-function hosts fw1 and lb1, without an IP address).  Inter-switch
interfaces get MTU 1600 and host interfaces transmit checksum offload off, so TCP
crosses the userspace datapath; each file does this itself (its private
``_LinkEnd``), since ``mn --custom`` loads one file alone.
"""

from mininet.topo import Topo

from topologies.fattree import FatTreeTopo
from topologies.leafspine import LeafSpineTopo
from topologies.linear import LinearTopo
from topologies.nfchain import NFChainTopo

topos = {"fattree": FatTreeTopo, "leafspine": LeafSpineTopo, "linear": LinearTopo,
         "nfchain": NFChainTopo}

__all__ = ["FatTreeTopo", "LeafSpineTopo", "LinearTopo", "NFChainTopo", "switch_layers",
           "switch_zones", "topos"]


def switch_layers(topo: Topo) -> dict[str, str | None]:
    """Map each switch name to its ``layer`` param (None if the switch has none)."""
    return {name: topo.nodeInfo(name).get("layer") for name in topo.switches()}


def switch_zones(topo: Topo) -> dict[str, str | None]:
    """Map each switch name to its ``zone`` param (None if the switch has none)."""
    return {name: topo.nodeInfo(name).get("zone") for name in topo.switches()}
