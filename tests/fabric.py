"""Simulator glue for the fat-tree of tests/conftest.py (build_fat_tree).

conftest.py lays the fabric out and feeds it to a ScentController; this module
turns the layout into simulator wiring and the controller's state into loaded
flow tables (compiler.switch_flows per switch), all in pure Python.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sdnscent import compiler
from sdnscent.controller import ScentController
from sdnscent.flows import FlowSpec
from sdnscent.simulator import Network, Switch, both_ways
from sdnscent.trails import Trail

if TYPE_CHECKING:
    from tests.conftest import FatTree, HostSpec

SimPort = tuple[int, int]  # (dpid, port number), as the simulator names a port


def host_name(host: HostSpec) -> str:
    """The simulator's name for a host: h<n>."""
    return f"h{host.n}"


def attachment(host: HostSpec) -> SimPort:
    """The (dpid, port) a host hangs off."""
    return (host.dpid, host.port)


def layer(tree: FatTree, dpid: int) -> str:
    """core, aggregation or edge."""
    if dpid in tree.cores:
        return "core"
    return "aggregation" if any(dpid in pod for pod in tree.aggs) else "edge"


def sim_links(tree: FatTree) -> dict[SimPort, SimPort]:
    """Both directions of every cable, for simulator.Network."""
    return both_ways(((a, pa), (b, pb)) for a, pa, b, pb in tree.cables)


def sim_hosts(tree: FatTree) -> dict[SimPort, str]:
    """Attachment point -> host name, for simulator.Network."""
    return {attachment(h): host_name(h) for h in tree.hosts}


def hosts_by_mac(tree: FatTree) -> dict[str, HostSpec]:
    """The fabric's hosts by MAC address."""
    return {h.mac: h for h in tree.hosts}


def link_ports(ctl: ScentController) -> dict[int, list[int]]:
    """dpid -> ports where the controller accepts labelled frames (where links enter)."""
    ports: dict[int, list[int]] = {dpid: [] for dpid in ctl.topo.switches}
    for link in ctl.topo.links():
        ports[link.dst].append(link.dst_port)
    return ports


def trails_by_switch(trails: Iterable[Trail]) -> dict[int, list[Trail]]:
    """dpid -> the trails that cross it (in the order given)."""
    crossing: dict[int, list[Trail]] = defaultdict(list)
    for trail in trails:
        for dpid in dict.fromkeys(trail.switches):
            crossing[dpid].append(trail)
    return crossing


def compiled_tables(ctl: ScentController) -> dict[int, list[FlowSpec]]:
    """compiler.switch_flows for every switch, from the controller's links and trails.

    Each switch is handed the trails that cross it. switch_flows keeps only a
    trail's flows for that switch anyway, so the tables are the same as when it
    is handed every trail, which costs switches x trails compilations (k=8:
    80 x 16,256, about 17 s).
    """
    ports = link_ports(ctl)
    crossing = trails_by_switch(ctl.store.all())
    return {dpid: compiler.switch_flows(dpid, ports[dpid], crossing.get(dpid, []))
            for dpid in sorted(ctl.topo.switches)}


def compile_network(ctl: ScentController, tree: FatTree,
                    links: dict[SimPort, SimPort] | None = None) -> Network:
    """A simulator Network loaded with compiled_tables(ctl), wired like `tree`.

    Loading validates every flow (fields, prerequisites, actions, duplicates).
    """
    switches = {dpid: Switch(dpid, flows) for dpid, flows in compiled_tables(ctl).items()}
    return Network(switches, sim_links(tree) if links is None else links, sim_hosts(tree))
