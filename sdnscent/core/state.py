"""The state every part of the core shares, and the helpers they all use."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import tagging
from ..appplan import PolicyView
from ..compiler import Step
from ..connections import ConnectionMeter
from ..dra import DraConfig, DraEngine, HostLoad
from ..flows import FlowSpec
from ..labels import LabelAllocator
from ..patterns import PatternTracker
from ..pipeline import SERVICE_GROUP_MIN, TRAIL_LABEL_MAX
from ..planner import Planner
from ..policy import EMPTY_POLICY, Policy
from ..store import TrailStore
from ..telemetry import NodeLoadReader, Telemetry, TelemetryConfig
from ..topology import Host, Link, Topology, TopologyError, dpid_str
from ..trails import DEAD_STATES, Trail, TrailState
from .index import TrailIndex
from .model import LINK_PORT_GRACE, ROUTING_SCENT, ROUTINGS, Event, ServiceBinding

if TYPE_CHECKING:
    from .connections import ConnectionManager
    from .dhcp import DhcpRelay
    from .edge import EdgeManager
    from .hosts import HostManager
    from .links import LinkManager
    from .load import LoadManager
    from .multicast import MulticastManager
    from .multipath import MultipathManager
    from .neighbours import NeighbourManager
    from .packets import PacketManager
    from .policies import PolicyManager
    from .protection import ProtectionManager
    from .retries import RetryManager
    from .services import ServiceManager
    from .trails import TrailManager

LOG = logging.getLogger("sdnscent.controller")


class CoreState:
    """Topology, store, policy and the indexes of the running controller.

    One object shared by the managers (links, hosts, trails, policies,
    multipath, services, load), which reach each other through it. Not
    thread-safe by itself: callers hold `lock`.
    """

    links: LinkManager
    hosts: HostManager
    trails: TrailManager
    policies: PolicyManager
    multipath: MultipathManager
    services: ServiceManager
    load: LoadManager
    retries: RetryManager
    packets: PacketManager
    protection: ProtectionManager
    edge: EdgeManager
    neighbours: NeighbourManager
    dhcp: DhcpRelay
    multicast: MulticastManager
    connections: ConnectionManager

    def __init__(self, store: TrailStore, default_capacity: int | None = None,
                 clock: Callable[[], float] = time.time, switch_grace: float = 0.0,
                 link_port_grace: float = LINK_PORT_GRACE, trail_lease: int = 0,
                 lease_slack: float = 3.0, stats_interval: float = 1.0,
                 dra: DraConfig | None = None, routing: str = ROUTING_SCENT) -> None:
        if routing not in ROUTINGS:
            raise ValueError(f"routing {routing!r} is not one of {', '.join(ROUTINGS)}")
        self.routing = routing
        self.topo = Topology(default_capacity)
        self.planner = Planner(self.topo)
        # The same topology without load: equal-cost paths for ECMP and the
        # candidate paths of the elephant placement.
        self.static_planner = Planner(self.topo)
        self.labels = LabelAllocator(last=TRAIL_LABEL_MAX)
        self.store = store
        self.index = TrailIndex()
        self.clock = clock
        self.lock = threading.RLock()
        self.events: deque[Event] = deque(maxlen=2000)
        self.by_pair: dict[tuple[str, str, str], int] = {}  # (app, src, dst) -> trail
        self.policy: Policy = EMPTY_POLICY
        self.blocks: dict[tuple[str, str, str], list[FlowSpec]] = {}
        self.retired_blocks: dict[tuple[str, str, str], list[FlowSpec]] = {}
        self.patterns = PatternTracker()
        self.chain_cache: dict[tuple[object, ...], Any] = {}
        self.block_ids = 0
        self.link_seen_at: dict[tuple[int, int], float] = {}
        self.misses_unknown = 0
        self.bindings: dict[tuple[str, str], ServiceBinding] = {}  # (service, client MAC)
        self.group_next = SERVICE_GROUP_MIN  # service bindings' select groups
        self.group_free: deque[int] = deque()
        self.binding_ids = 0
        # A switch whose connection dropped keeps forwarding (fail mode secure):
        # it counts as gone only after `switch_grace` seconds without a reconnect.
        self.switch_grace = switch_grace
        self.away: dict[int, float] = {}  # dpid -> when its connection dropped
        self.link_port_grace = link_port_grace
        self.pending_link_ports: dict[tuple[int, int], float] = {}  # audited, not yet seen
        # Leases: a trail idle for `trail_lease` s ends (0: trails live until removed).
        # `lease_slack` covers the delay between a packet and the counter poll
        # that sees it (the store's expiry trails the switch's by at most that).
        self.trail_lease = trail_lease
        self.lease_slack = lease_slack
        self.sweep_after = 0.0  # no lease sweep before this (after a restart)
        # Telemetry and the dynamic resource allocation engine (docs/telemetry.rst).
        self.telemetry = Telemetry(TelemetryConfig(period=stats_interval))
        self.dra = DraEngine(replace(dra or DraConfig(period=stats_interval), move_links=False))
        self.node_reader = NodeLoadReader()
        self.node_loads: dict[str, HostLoad] = {}
        self.measured: dict[str, HostLoad] = {}  # computing nodes the allocator measures
        self.moves = 0  # trails moved off hot links and nodes
        self.elephant_seen: dict[int, float] = {}  # trail -> when it last ran as an elephant
        self.elephant_idle: dict[int, int] = {}  # elephant -> idle periods in a row
        self.connection_meter = ConnectionMeter()  # rates of counted trails' connections
        self.splits = 0  # TCP connections split off an elephant trail onto trails of their own
        self.placement: dict[str, Any] = {}  # the last global placement, for REST
        # The exact assignment off the caller's thread (the glue's): takes a job and a
        # callback for its answer, returns False if busy. None: solved in place().
        self.exact_solver: Callable[[Callable[[], Any], Callable[[Any], None]], bool] | None \
            = None
        self.exact_hint: dict[int, Any] = {}  # its last answer (trail -> path of link keys)
        self.exact_key: Any = None  # the snapshot last asked (elephants, demands)
        self.exact_status: dict[str, Any] = {}  # the last answer: when asked, answered
        self.reweights = 0  # multipath trails whose split changed with the load
        self.legs: dict[int, list[int]] = {}  # multipath trail: head id -> leg ids, head first
        self.reweighed: dict[int, float] = {}  # multipath trail -> when its split last changed

    # writes: the store and the index together ------------------------------
    def put(self, trail: Trail) -> None:
        """Write `trail` to the store and index it (StaleWrite leaves both as they were)."""
        self.store.put(trail)
        self.index.put(trail)

    def delete(self, trail_id: int, note: str = "") -> Trail | None:
        """Delete a trail from the store and the index; the deleted trail or None."""
        self.index.discard(trail_id)
        return self.store.delete(trail_id, note)

    def live(self, ids: Iterable[int]) -> list[Trail]:
        """The stored trails of `ids` that are neither removed nor failed, by id."""
        trails = (self.store.get(i) for i in sorted(ids))
        return [t for t in trails
                if t is not None and t.state not in DEAD_STATES]

    # helpers ----------------------------------------------------------------
    def record(self, kind: str, message: str, trail: int | None = None) -> None:
        """Keep an event for the API and log it."""
        self.events.append(Event(self.clock(), kind, message, trail))
        LOG.info("%s: %s", kind, message)

    def link_name(self, link: Link) -> str:
        return (f"{self.topo.switch_name(link.src)}:{link.src_port}->"
                f"{self.topo.switch_name(link.dst)}:{link.dst_port}")

    def nf_ports(self) -> set[tuple[int, int]]:
        return PolicyView(self.policy, self.topo).nf_ports() if self.policy.nodes else set()

    def path_text(self, trail: Trail) -> str:
        parts = []
        for hop in trail.hops:
            parts.append(self.topo.switch_name(hop.dpid))
            if hop.via:
                parts.append(f"[{hop.via}]")
        return " ".join(parts)

    def host(self, mac: str) -> Host:
        host = self.topo.hosts.get(mac)
        if host is None:
            raise TopologyError(f"unknown host {mac}")
        return host

    def activate(self, trail_id: int) -> None:
        trail = self.store.get(trail_id)
        if trail and trail.state in (TrailState.INSTALLING, TrailState.REROUTING):
            self.put(trail.evolve(state=TrailState.ACTIVE, version=trail.version + 1))
            self.retries.succeeded(trail_id)

    def drop_gone_switches(self, steps: list[Step]) -> None:
        """Leave out the operations of switches the topology no longer has."""
        for step in steps:
            for dpid in [d for d in step if d not in self.topo.switches]:
                del step[dpid]

    def path_intact(self, trail: Trail) -> bool:
        """Every switch of `trail` is known and every link it uses is up."""
        return all(d in self.topo.switches for d in trail.switches) and all(
            self.topo.link_from(d, p) is not None for d, p in trail.links())

    def tagger_ports(self, policy: Policy | None = None) -> set[tuple[int, int]]:
        """(dpid, port) of learned hosts the policy marks as taggers (docs/vni.rst)."""
        nodes = [n for n in (policy or self.policy).nodes.values() if n.tagger]
        if not nodes:
            return set()
        ips = {n.ip for n in nodes if n.ip}
        macs = {n.mac for n in nodes if n.mac}
        return {(h.dpid, h.port) for h in self.topo.hosts.values()
                if h.ip in ips or h.mac in macs}

    def tagged(self, trail: Trail) -> bool:
        return (trail.ingress.dpid, trail.ingress.in_port) in self.tagger_ports()

    def trusted_flows(self, dpid: int, trails: Iterable[Trail]) -> list[FlowSpec]:
        trails = list(trails)
        return [f for d, port in sorted(self.tagger_ports()) if d == dpid
                for f in tagging.trusted_port_flows(dpid, port, trails)]

    def link_name_of(self, key: tuple[int, int]) -> str:
        link = self.topo.link_from(*key)
        return self.link_name(link) if link is not None else f"{dpid_str(key[0])}:{key[1]}"

    def criticality(self, app: str) -> tuple[int, str]:
        """(security level, data class) of an application for pair ranking."""
        profile = self.policy.app(app)
        if profile is None:
            return 0, "best-effort"
        return self.policy.classification_of(profile).min_level, profile.data_class
