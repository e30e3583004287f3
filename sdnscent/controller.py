"""The scent-trail controller's logic, free of os-ken: a facade over sdnscent.core.

Every method takes facts (a switch connected, a link was seen, a packet asked
for a trail) and returns a Change: ordered steps of flow operations for the
glue to send, plus callbacks to run once the switches confirmed them. The
work is done by managers that share one CoreState (docs/architecture.rst).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .compiler import Step
from .connections import ConnectionCount
from .core import views
from .core.connections import ConnectionManager
from .core.dhcp import DhcpRelay, Relay
from .core.edge import EdgeManager
from .core.hosts import HostManager
from .core.links import LinkManager
from .core.load import LoadManager
from .core.model import (
    ARP_REPLY,
    ARP_REQUEST,
    CONTROLLER_MAC,
    DRAIN,
    LINK_PORT_GRACE,
    PINNED,
    ROUTING_SCENT,
    ArpPacket,
    ArpResult,
    Change,
    Event,
    NoFreePath,
    ServiceBinding,
    is_pinned,
)
from .core.multicast import MulticastManager
from .core.multipath import MultipathManager
from .core.neighbours import NeighbourManager, pair_trails
from .core.packets import Decision, PacketManager, Parked
from .core.policies import PolicyManager
from .core.protection import ProtectionManager
from .core.retries import RetryManager
from .core.services import ServiceManager
from .core.state import CoreState
from .core.trails import TrailManager
from .dra import DraConfig, HostLoad
from .flows import ICMPV6_NA, ICMPV6_NS, FlowSpec
from .hosttraffic import HostTrafficCounters
from .policy import DEFAULT_APP, Policy, Service
from .store import TrailStore
from .telemetry import NodeLoadReader, PortCounters
from .topology import Port
from .trails import Trail
from .transactions import Failure, Verdict

__all__ = ["ARP_REPLY", "ARP_REQUEST", "CONTROLLER_MAC", "DRAIN", "PINNED", "ArpPacket",
           "ArpResult", "Change", "Event", "NoFreePath", "ScentController", "ServiceBinding",
           "is_pinned"]


class ScentController:
    """Topology, trails and labels; decisions returned as Changes.

    A small facade: each call goes to the manager that owns its concern.
    Not thread-safe by itself: callers hold `lock` around each call.
    """

    def __init__(self, store: TrailStore, default_capacity: int | None = None,
                 clock: Callable[[], float] = time.time, switch_grace: float = 0.0,
                 link_port_grace: float = LINK_PORT_GRACE, trail_lease: int = 0,
                 lease_slack: float = 3.0, stats_interval: float = 1.0,
                 dra: DraConfig | None = None, routing: str = ROUTING_SCENT,
                 protection: str = "none") -> None:
        s = CoreState(store, default_capacity, clock, switch_grace, link_port_grace,
                      trail_lease, lease_slack, stats_interval, dra, routing)
        s.links, s.hosts, s.trails = LinkManager(s), HostManager(s), TrailManager(s)
        s.policies, s.multipath = PolicyManager(s), MultipathManager(s)
        s.services, s.load, s.retries = ServiceManager(s), LoadManager(s), RetryManager(s)
        s.packets = PacketManager(s)
        s.protection = ProtectionManager(s, protection)  # --protection: link, node or none
        s.edge = EdgeManager(s)  # port security and signed discovery (off until the app)
        s.neighbours, s.dhcp = NeighbourManager(s), DhcpRelay(s)
        s.multicast, s.connections = MulticastManager(s), ConnectionManager(s)
        self.traffic = HostTrafficCounters()  # host traffic answered or dropped (/metrics)
        self.s = s

    @property
    def store(self) -> Any:
        """The shared state's `store`."""
        return self.s.store

    @property
    def topo(self) -> Any:
        """The shared state's `topo`."""
        return self.s.topo

    @property
    def lock(self) -> Any:
        """The shared state's `lock`."""
        return self.s.lock

    @property
    def planner(self) -> Any:
        """The shared state's `planner`."""
        return self.s.planner

    @property
    def labels(self) -> Any:
        """The shared state's `labels`."""
        return self.s.labels

    @property
    def policy(self) -> Any:
        """The shared state's `policy`."""
        return self.s.policy

    @property
    def events(self) -> Any:
        """The shared state's `events`."""
        return self.s.events

    @property
    def exact_solver(self) -> Any:
        """Where the placement's exact assignment runs: None (in the period, bounded
        by placement.EXACT_SECONDS) or the glue's solver(job, done) -> taken."""
        return self.s.exact_solver

    @exact_solver.setter
    def exact_solver(self, value: Any) -> None:
        self.s.exact_solver = value

    @property
    def clock(self) -> Any:
        """The shared state's `clock`."""
        return self.s.clock

    @clock.setter
    def clock(self, value: Any) -> None:
        self.s.clock = value

    @property
    def telemetry(self) -> Any:
        """The shared state's `telemetry`."""
        return self.s.telemetry

    @property
    def dra(self) -> Any:
        """The shared state's `dra`."""
        return self.s.dra

    @property
    def patterns(self) -> Any:
        """The shared state's `patterns`."""
        return self.s.patterns

    @property
    def trail_lease(self) -> Any:
        """The shared state's `trail_lease`."""
        return self.s.trail_lease

    @trail_lease.setter
    def trail_lease(self, value: Any) -> None:
        self.s.trail_lease = value

    @property
    def switch_grace(self) -> Any:
        """The shared state's `switch_grace`."""
        return self.s.switch_grace

    @switch_grace.setter
    def switch_grace(self, value: Any) -> None:
        self.s.switch_grace = value

    @property
    def moves(self) -> Any:
        """The shared state's `moves`."""
        return self.s.moves

    @property
    def reweights(self) -> Any:
        """The shared state's `reweights`."""
        return self.s.reweights

    @property
    def misses_unknown(self) -> Any:
        """The shared state's `misses_unknown`."""
        return self.s.misses_unknown

    @property
    def node_loads(self) -> Any:
        """The shared state's `node_loads`."""
        return self.s.node_loads

    @property
    def index(self) -> Any:
        """The shared state's `index`."""
        return self.s.index

    @property
    def node_reader(self) -> NodeLoadReader:
        """Reads (and checks) the agents' host load samples."""
        return self.s.node_reader

    @node_reader.setter
    def node_reader(self, reader: NodeLoadReader) -> None:
        self.s.node_reader = reader

    @property
    def edge(self) -> EdgeManager:
        """Port security and discovery checks at the network edge (core.edge)."""
        return self.s.edge

    def edge_tick(self) -> tuple[Change, list[ArpPacket]]:
        """Decide port-security claims now: (moves and drop rules, ARP probes to send)."""
        return self.s.edge.tick()

    def arp_in(self, dpid: int, port: int, opcode: int, src_mac: str, src_ip: str,
               dst_ip: str) -> Decision:
        """An ARP packet-in: answers and probes to send, trails to set up."""
        decision = self.s.packets.arp(dpid, port, opcode, src_mac, src_ip, dst_ip)
        for kind, opcode_sent in (("arp", ARP_REPLY), ("arp-probe", ARP_REQUEST)):
            self.traffic.count(kind, sum(1 for p in decision.packets
                                         if getattr(p, "opcode", None) == opcode_sent))
        return decision

    def ipv4_in(self, dpid: int, in_port: int, eth_src: str, eth_dst: str, ip_src: str,
                data: bytes, received: float, deadline: float | None = None) -> Decision:
        """An IPv4 packet-in: trails to set up, and whether to resend or park the packet."""
        return self.s.packets.ipv4(dpid, in_port, eth_src, eth_dst, ip_src, data, received,
                                   deadline)

    def ipv6_in(self, dpid: int, in_port: int, eth_src: str, eth_dst: str, ip_src: str,
                data: bytes, received: float, deadline: float | None = None) -> Decision:
        """An IPv6 packet-in (not Neighbour Discovery): as ipv4_in, with IPv6 trails."""
        return self.s.packets.ipv4(dpid, in_port, eth_src, eth_dst, ip_src, data, received,
                                   deadline)

    def nd_in(self, dpid: int, port: int, kind: int, eth_src: str, ip_src: str,
              target: str) -> Decision:
        """A Neighbour Solicitation or Advertisement: answers and probes to send now, then
        IPv6 trails for the pairs it shows (core/neighbours.py)."""
        result = self.s.neighbours.handle(dpid, port, kind, eth_src, ip_src, target)
        self.traffic.count("nd", sum(1 for p in result.packets if p.kind == ICMPV6_NA))
        self.traffic.count("nd-probe", sum(1 for p in result.packets if p.kind == ICMPV6_NS))
        decision = Decision(packets=list(result.packets))
        decision.add(result.change)
        for change in pair_trails(self.s, result.pairs):
            decision.add(change)
        return decision

    def dhcp_in(self, dpid: int, port: int, eth_src: str, ip_src: str, to_server: bool,
                chaddr: str) -> tuple[list[Relay], Decision]:
        """A DHCPv4 packet-in: where to send its frame (core/dhcp.py), and probes for an
        unknown server."""
        result = self.s.dhcp.handle(dpid, port, eth_src, ip_src, to_server, chaddr)
        self.traffic.count(result.outcome)
        decision = Decision(packets=list(result.packets))
        decision.add(result.change)
        return result.relays, decision

    def edge_stats(self, dpid: int, entries: Iterable[tuple[int, int]]) -> None:
        """Counters of the edge drop flows of switch `dpid`: (cookie, packets)."""
        self.traffic.edge_stats(dpid, entries)

    def release_parked(self, now: float) -> list[Parked]:
        """Parked packets to decide again now that a link appeared."""
        return self.s.packets.release(now)

    def label_miss(self, dpid: int, label: int | None) -> Decision:
        """A labelled packet missed at `dpid`: restore the hop and resend it."""
        return self.s.packets.label_miss(dpid, label)

    def audit_report(self, dpid: int, installed: list[FlowSpec]) -> dict[str, int]:
        """What an audit of switch `dpid` would fix now (missing, wrong, unknown flows)."""
        return self.s.links.audit_report(dpid, installed)

    def step_failed(self, step_index: int, step: Step, failures: list[Failure],
                    touched: frozenset[int] = frozenset()) -> tuple[Change, Verdict]:
        """A step failed on some switches: (clean-up Change, trails failed and switches to
        audit again). `touched`: the switches of the whole change. See core.retries."""
        return self.s.retries.step_failed(step_index, step, failures, touched)

    def retry_failed(self) -> Change:
        """Install again the failed trails whose back-off is over."""
        return self.s.retries.retry_due()

    def recover(self) -> int:
        """Rebuild the indexes from the store after a restart; return the trail count."""
        return self.s.trails.recover()

    def record(self, kind: str, message: str, trail: int | None = None) -> None:
        """Keep an event for the API and log it."""
        return self.s.record(kind, message, trail)

    def switch_enter(self, dpid: int, ports: Iterable[Port], name: str = "",
                     installed: list[FlowSpec] | None = None) -> Change:
        """A switch (re)connected: make its table what it should hold."""
        return self.s.links.switch_enter(dpid, ports, name, installed)

    def switch_leave(self, dpid: int) -> Change:
        """A switch disconnected: forget it and move trails off it."""
        return self.s.links.switch_leave(dpid)

    def port_status(self, dpid: int, port: Port) -> Change:
        """A port changed; a port that is down loses its links and hosts."""
        return self.s.links.port_status(dpid, port)

    def link_seen(self, src: int, src_port: int, dst: int, dst_port: int) -> Change:
        """LLDP from (src, src_port) arrived at (dst, dst_port)."""
        return self.s.links.link_seen(src, src_port, dst, dst_port)

    def expire_links(self, timeout: float) -> Change:
        """Remove links whose LLDP has not been seen for `timeout` seconds."""
        return self.s.links.expire_links(timeout)

    def learn_host(self, dpid: int, port: int, mac: str, ip: str) -> Change:
        """A host spoke from (dpid, port); learn it, moving its trails if it moved."""
        return self.s.hosts.learn_host(dpid, port, mac, ip)

    def handle_arp(self, dpid: int, port: int, opcode: int, src_mac: str, src_ip: str,
                   dst_ip: str) -> tuple[ArpResult, Change]:
        """Proxy ARP from the host table; probe edge ports for unknown addresses."""
        return self.s.hosts.handle_arp(dpid, port, opcode, src_mac, src_ip, dst_ip)

    def trail_for_pair(self, src_mac: str, dst_mac: str,
                       app: str = DEFAULT_APP, family: int = 4) -> Trail | None:
        """The live `family` (4 or 6) trail of `app` from src_mac to dst_mac, if any."""
        return self.s.trails.trail_for_pair(src_mac, dst_mac, app, family)

    def ensure_trail(self, src_mac: str, dst_mac: str, app: str = DEFAULT_APP,
                     record_failure: bool = True, family: int = 4) -> tuple[Trail, Change]:
        """The `family` trail of `app` for a host pair, planned and compiled if missing."""
        return self.s.trails.ensure_trail(src_mac, dst_mac, app, record_failure, family)

    def ensure_pair(self, src_mac: str, dst_mac: str,
                    family: int = 4) -> tuple[Trail | None, Change]:
        """The default `family` trail of a pair plus the trails of every application on it."""
        return self.s.trails.ensure_pair(src_mac, dst_mac, family)

    def blocked(self) -> list[tuple[str, str, str]]:
        """(application, src MAC, dst MAC) whose packets are dropped by policy."""
        return self.s.trails.blocked()

    def set_setup_latency(self, trail_id: int, ms: float) -> None:
        """Record how long the first install of a trail took."""
        return self.s.trails.set_setup_latency(trail_id, ms)

    def replan(self, trail_id: int, reason: str,
               avoid: frozenset[tuple[int, int]] = frozenset(), keep_intact: bool = False
               ) -> Change:
        """Move a trail to its current best path under the policy, make-before-break."""
        return self.s.trails.replan(trail_id, reason, avoid, keep_intact)

    def remove_trail(self, trail_id: int, reason: str, note: str = "removed") -> Change:
        """Delete a trail's flows and free its label."""
        return self.s.trails.remove_trail(trail_id, reason, note)

    def check_policy(self, policy: Policy) -> set[tuple[int, int]]:
        """Raise TopologyError or ValueError if `policy` does not fit the network as it is"""
        return self.s.policies.check_policy(policy)

    def set_policy(self, policy: Policy) -> tuple[Change, dict[str, int]]:
        """Swap the policy atomically and re-plan every trail under it."""
        return self.s.policies.set_policy(policy)

    def app_dag(self, app: str, reverse: bool = False) -> Any:
        """The union of `app`'s trails in one direction as a DAG (networkx DiGraph)."""
        return self.s.policies.app_dag(app, reverse)

    def restore_hop(self, dpid: int, label: int) -> Change:
        """The miss path: re-install the table-1 entry of `label` at `dpid`."""
        return self.s.trails.restore_hop(dpid, label)

    def classifier_counters(self, dpid: int,
                            entries: Iterable[tuple[int, int | None, int, int]]) -> None:
        """Apply table-0 flow stats of switch `dpid`: (trail id, in_port, packets, bytes)."""
        return self.s.trails.classifier_counters(dpid, entries)

    def connection_counters(self, dpid: int, counts: Iterable[ConnectionCount]) -> None:
        """Apply the per-connection counters switch `dpid` learned (TABLE_FLOWS)."""
        return self.s.connections.counters(dpid, counts)

    def update_counters(self, stats: Iterable[tuple[int, int, int]]) -> None:
        """Apply (trail id, packets, bytes) read from ingress classifier flows."""
        return self.s.trails.update_counters(stats)

    def port_counters(self, dpid: int, stats: Iterable[PortCounters]) -> None:
        """Apply a switch's port statistics (link load)."""
        return self.s.load.port_counters(dpid, stats)

    def read_node_loads(self) -> dict[str, HostLoad]:
        """Fresh, valid host load samples from the store (sdnscent-agent); {} if unreachable."""
        return self.s.load.read_node_loads()

    def tagger_ports(self, policy: Policy | None = None) -> set[tuple[int, int]]:
        """(dpid, port) of learned hosts the policy marks as taggers (docs/vni.rst)."""
        return self.s.tagger_ports(policy)

    def pin_trail(self, trail_id: int, pinned: bool) -> Trail | None:
        """Pin a trail to its path (or unpin it); None if there is no such trail."""
        return self.s.trails.pin_trail(trail_id, pinned)

    def computing_nodes(self) -> list[str]:
        """Names of the policy's network functions: the nodes whose CPU and memory are sized."""
        return self.s.load.computing_nodes()

    @property
    def routing(self) -> str:
        """How trails are routed: scent (load-aware, elephants placed), ecmp or static."""
        return self.s.routing

    def placement(self) -> dict[str, Any]:
        """The last global placement of elephants: when, which, the moves and why."""
        return dict(self.s.placement)

    def rebalance(self, measured: Mapping[str, HostLoad] | None = None
                  ) -> tuple[Change, list[Any]]:
        """One period of the resource allocation engine: (moves as a Change, allocations)."""
        return self.s.load.rebalance(measured)

    def nodes_view(self) -> dict[str, object]:
        """JSON form of host load (GET /api/v1/nodes)."""
        return views.nodes_view(self.s)

    def expire_trails(self) -> Change:
        """Remove trails whose lease ran out (no traffic for their lease), freeing labels."""
        return self.s.trails.expire_trails()

    def classifier_idle(self, trail_id: int, match: dict[str, int | str]) -> Change:
        """The switch timed out an idle ingress classifier of `trail_id`."""
        return self.s.trails.classifier_idle(trail_id, match)

    def refresh_classifiers(self, src_mac: str, dst_mac: str) -> Change:
        """A host's packet reached the controller although its pair has trails."""
        return self.s.trails.refresh_classifiers(src_mac, dst_mac)

    def pair_ranking(self, app: str) -> list[dict[str, object]]:
        """`app`'s host pairs by use and criticality (GET /apps/<name>/pairs)."""
        return views.pair_ranking(self.s, app)

    def service_by_vip(self, ip: str) -> Service | None:
        """The service whose virtual address is `ip`, if any."""
        return self.s.services.service_by_vip(ip)

    def service_by_mac(self, mac: str) -> Service | None:
        """The service whose virtual MAC is `mac`, if any."""
        return self.s.services.service_by_mac(mac)

    def ensure_service(self, client_mac: str, name: str) -> Change:
        """Client `client_mac` uses service `name`: trails to the pool, select group, classifier."""
        return self.s.services.ensure_service(client_mac, name)

    def services_view(self) -> list[dict[str, object]]:
        """Clients of each service and the pool members in their group."""
        return views.services_view(self.s)

    def topology_view(self) -> dict[str, object]:
        """JSON form of the topology (GET /api/v1/topology), with measured link load."""
        return views.topology_view(self.s)

    def trail_view(self, trail: Trail) -> dict[str, object]:
        """JSON form of one trail, with switch names beside dpids."""
        return views.trail_view(self.s, trail)
