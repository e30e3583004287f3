"""The scent-trail controller's logic, free of os-ken.

Every method takes facts (a switch connected, a link was seen, a packet asked
for a trail) and returns a Change: ordered steps of flow operations for the
glue to send, plus callbacks to run once the switches confirmed them.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import audit, bundles, compiler, dag, splits, tagging
from .appplan import IP_PROTO, PolicyView, app_matches, plan_app_hops
from .compiler import Step
from .constraints import check_network_functions
from .dra import DraConfig, DraEngine, HostLoad, TrailLoad
from .flows import (
    COOKIE_MASK_ALL,
    COOKIE_MASK_OURS,
    ETH_TYPE_IPV4,
    KIND_BLOCK,
    KIND_SERVICE,
    PIPELINE_COOKIE,
    TABLE_CLASSIFY,
    FlowDelete,
    FlowSpec,
    GroupDelete,
    GroupSpec,
    MeterDelete,
    make_cookie,
    trail_cookie,
)
from .labels import LabelAllocator
from .patterns import PatternTracker
from .planner import NoPathError, Planner
from .policy import DEFAULT_APP, EMPTY_POLICY, Application, Policy, Service
from .store import StaleWrite, StoreError, TrailStore
from .telemetry import FlowCounters, NodeLoadReader, PortCounters, Telemetry, TelemetryConfig
from .topology import Host, Link, Port, Topology, TopologyError, dpid_str
from .trails import Hop, Trail, TrailState

LOG = logging.getLogger(__name__)

PROACTIVE_TOP = 8  # best-ranked pairs per application set up when a host (re)appears
CONTROLLER_MAC = "0e:5c:e7:00:00:01"  # locally administered; source of ARP probes
ARP_REQUEST, ARP_REPLY = 1, 2
PROBE_INTERVAL = 1.0  # s between probes for the same unknown address
LINK_PORT_GRACE = 10.0  # s an audited link-port flow waits for LLDP to confirm its link
DRAIN = 0.1  # s an old path keeps its entries after the classifier moved (in-flight packets)
AVOID = 100.0  # utilisation the planner sees on links a move must leave (cost +400 hops)
MOVE_ROUNDS = 3  # engine steps per period when a chosen trail has no free path


PINNED = "pinned"  # Trail.extra key of an operator's pin


def is_pinned(trail: Trail) -> bool:
    """True if an operator pinned `trail` to its path (no load moves)."""
    return trail.extra.get(PINNED) == "true"


class NoFreePath(LookupError):
    """A move found no path off the links it must leave."""


@dataclass
class Change:
    """Flow operations in barrier-separated steps, and what to do after."""

    steps: list[Step] = field(default_factory=list)
    done: list[Callable[[], None]] = field(default_factory=list)
    created: list[int] = field(default_factory=list)  # ids of trails this change sets up
    # step index -> seconds to wait before sending it (an old path drains first)
    pause_before: dict[int, float] = field(default_factory=dict)

    def merge(self, other: Change) -> Change:
        """Run `other` alongside this change, step i beside step i."""
        for i, step in enumerate(other.steps):
            if i == len(self.steps):
                self.steps.append({})
            for dpid, ops in step.items():
                self.steps[i].setdefault(dpid, []).extend(ops)
        self.done.extend(other.done)
        self.created.extend(other.created)
        for i, pause in other.pause_before.items():
            self.pause_before[i] = max(pause, self.pause_before.get(i, 0.0))
        return self

    def __bool__(self) -> bool:
        return bool(self.steps or self.done)


@dataclass(frozen=True)
class ArpPacket:
    """An ARP packet for the glue to build and send out of (dpid, port)."""

    dpid: int
    port: int
    opcode: int
    eth_src: str
    eth_dst: str
    src_mac: str
    src_ip: str
    dst_mac: str
    dst_ip: str


@dataclass
class ArpResult:
    """What to send after an ARP packet-in, and host pairs worth trails."""

    packets: list[ArpPacket] = field(default_factory=list)
    pairs: list[tuple[str, str]] = field(default_factory=list)
    services: list[tuple[str, str]] = field(default_factory=list)  # (client MAC, service)


@dataclass
class ServiceBinding:
    """A client of a service: its classifier into a select group at its switch."""

    service: Service
    client: str  # MAC
    dpid: int
    group_id: int
    cookie: int
    flows: list[FlowSpec]
    group: GroupSpec


@dataclass(frozen=True)
class Event:
    """Something an operator should be able to read back (GET /events)."""

    time: float
    kind: str
    message: str
    trail: int | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON form."""
        return {"time": self.time, "kind": self.kind, "message": self.message,
                "trail": self.trail}


class ScentController:
    """Topology, trails and labels; decisions returned as Changes.

    Not thread-safe by itself: callers hold `lock` around each call.
    """

    def __init__(self, store: TrailStore, default_capacity: int | None = None,
                 clock: Callable[[], float] = time.time, switch_grace: float = 0.0,
                 link_port_grace: float = LINK_PORT_GRACE, trail_lease: int = 0,
                 lease_slack: float = 3.0, stats_interval: float = 1.0,
                 dra: DraConfig | None = None) -> None:
        self.topo = Topology(default_capacity)
        self.planner = Planner(self.topo)
        self.labels = LabelAllocator()
        self.store = store
        self.clock = clock
        self.lock = threading.RLock()
        self.events: deque[Event] = deque(maxlen=2000)
        self._by_pair: dict[tuple[str, str, str], int] = {}  # (app, src, dst) -> trail
        self.policy: Policy = EMPTY_POLICY
        self._blocks: dict[tuple[str, str, str], list[FlowSpec]] = {}
        self._retired_blocks: dict[tuple[str, str, str], list[FlowSpec]] = {}
        self.patterns = PatternTracker()
        self._chain_cache: dict[tuple[object, ...], Any] = {}
        self._block_ids = 0
        self._link_seen: dict[tuple[int, int], float] = {}
        self._pending_arp: dict[str, dict[str, tuple[str, int, int]]] = {}
        self._probed: dict[str, float] = {}
        self.misses_unknown = 0
        self._bindings: dict[tuple[str, str], ServiceBinding] = {}  # (service, client MAC)
        self._group_next = 1
        self._group_free: deque[int] = deque()
        self._binding_ids = 0
        # A switch whose connection dropped keeps forwarding (fail mode secure):
        # it counts as gone only after `switch_grace` seconds without a reconnect.
        self.switch_grace = switch_grace
        self._away: dict[int, float] = {}  # dpid -> when its connection dropped
        self.link_port_grace = link_port_grace
        self._pending_link_ports: dict[tuple[int, int], float] = {}  # audited, not yet seen
        # Leases: a trail idle for `trail_lease` s ends (0: trails live until removed).
        # `lease_slack` covers the delay between a packet and the counter poll
        # that sees it (the store's expiry trails the switch's by at most that).
        self.trail_lease = trail_lease
        self.lease_slack = lease_slack
        self._sweep_after = 0.0  # no lease sweep before this (after a restart)
        # Telemetry and the dynamic resource allocation engine (docs/telemetry.rst).
        self.telemetry = Telemetry(TelemetryConfig(period=stats_interval))
        self.dra = DraEngine(dra or DraConfig(period=stats_interval))
        self._node_reader = NodeLoadReader()
        self.node_loads: dict[str, HostLoad] = {}
        self._measured: dict[str, HostLoad] = {}  # computing nodes the allocator measures
        self.moves = 0  # trails moved off hot links and nodes
        self.reweights = 0  # multipath trails whose split changed with the load
        self._legs: dict[int, list[int]] = {}  # multipath trail: head id -> leg ids, head first
        self._reweighed: dict[int, float] = {}  # multipath trail -> when its split last changed

    def recover(self) -> int:
        """Rebuild the indexes from the store after a restart; return the trail count.

        The (app, src, dst) index and the label allocations come back; hosts
        are learned again from traffic, and a trail whose hosts are not known
        yet is kept (see replan and learn_host). Block rules and service
        bindings are not stored: the audit removes theirs from the switches.
        """
        self._by_pair.clear()
        self._legs.clear()
        self.labels = LabelAllocator()
        # Counters were not read while no controller ran: give leased trails
        # one lease to show traffic before the sweep judges them.
        self._sweep_after = self.clock() + self.trail_lease
        trails = self.store.all()
        for trail in trails:
            if trail.state in (TrailState.REMOVED, TrailState.FAILED):
                continue
            try:
                self.labels.reserve(trail.label)
            except ValueError as exc:  # LabelError: a duplicate or out-of-range label
                self.record("recover", f"trail {trail.id} skipped: {exc}", trail.id)
                continue
            key = (trail.app, trail.src_mac, trail.dst_mac)
            head = bundles.head_of(trail)
            if head is not None:
                self._legs.setdefault(head, []).append(trail.id)
                if trail.id != head:
                    continue
            older = self._by_pair.get(key)
            self._by_pair[key] = trail.id if older is None else max(older, trail.id)
        for head, legs in list(self._legs.items()):
            legs.sort()
            if legs[0] != head:  # legs without their head (a writer died half-way)
                del self._legs[head]
                self.record("recover", f"legs {legs} of multipath trail {head} not installed: "
                            "its head leg is gone (DELETE them)")
        self.record("recover", f"{len(self._by_pair)} trails and their labels loaded from "
                    "the store")
        return len(self._by_pair)

    # events -----------------------------------------------------------
    def record(self, kind: str, message: str, trail: int | None = None) -> None:
        """Keep an event for the API and log it."""
        self.events.append(Event(self.clock(), kind, message, trail))
        LOG.info("%s: %s", kind, message)

    # switches, ports, links ---------------------------------------------
    def switch_enter(self, dpid: int, ports: Iterable[Port], name: str = "",
                     installed: list[FlowSpec] | None = None) -> Change:
        """A switch (re)connected: make its table what it should hold.

        With `installed` (our flows read back from the switch) the table is
        audited: correct entries stay untouched, missing ones are installed,
        unknown ones deleted (sdnscent.audit). Without it, our old flows are
        wiped and everything is installed again. A switch that reconnects
        without having left keeps its links, so it gets its link-port flows
        and the entries of trails crossing it back.
        """
        known = dpid in self.topo.switches
        self._away.pop(dpid, None)
        self.topo.add_switch(dpid, {p.number: p for p in ports}, name)
        self.record("switch", f"switch {name or dpid_str(dpid)} "
                    + ("reconnected" if known else "connected"))
        link_ports = [lk.dst_port for lk in self.topo.links() if lk.dst == dpid]
        trails = [t for t in self.store.all() if dpid in t.switches
                  and t.state not in (TrailState.REMOVED, TrailState.FAILED)]
        if installed is not None:
            return self._audit(dpid, link_ports, trails, installed)
        wipe = FlowDelete(dpid, PIPELINE_COOKIE & COOKIE_MASK_OURS, COOKIE_MASK_OURS)
        first: list[compiler.Op] = [wipe]
        if self.policy.services or self._bindings or self._legs:  # groups: services, multipath
            first.append(GroupDelete(dpid))
        bindings = [b for b in self._bindings.values() if b.dpid == dpid]
        groups: list[compiler.Op] = [b.group for b in bindings]
        groups += self._ingress_meters(dpid, trails) + self._multipath_ingress(dpid)
        flows = list(compiler.switch_flows(dpid, link_ports, trails))
        flows += self._trusted_flows(dpid, trails)
        return Change([{dpid: first}, {dpid: groups + flows + [f for b in bindings
                                                              for f in b.flows]}])

    def _audit(self, dpid: int, link_ports: list[int], trails: list[Trail],
               installed: list[FlowSpec]) -> Change:
        """The audit of a (re)connected switch as a Change (see switch_enter)."""
        bindings = [b for b in self._bindings.values() if b.dpid == dpid]
        expected = compiler.switch_flows(dpid, link_ports, trails)
        expected += [f for flows in self._blocks.values() for f in flows if f.dpid == dpid]
        expected += [f for b in bindings for f in b.flows]
        expected += self._trusted_flows(dpid, trails)
        multipath = self._multipath_ingress(dpid)
        expected += [op for op in multipath if isinstance(op, FlowSpec)]
        now = self.clock()

        def keep_for_now(flow: FlowSpec) -> bool:
            """A link-port flow LLDP has not confirmed yet: keep it for a while.

            A drop rule of a blocked application is kept too (fail closed): it
            is not persisted, and without it the application's packets would
            ride the default trail until the pair is evaluated again; a trail
            installed later under the same match replaces it in place.
            """
            if (flow.cookie >> 32) & 0xFFFF == KIND_BLOCK:
                return True
            port = flow.match_dict.get("in_port")
            if not isinstance(port, int) or flow != compiler.link_port_flow(dpid, port):
                return False
            sw_port = self.topo.switches[dpid].ports.get(port)
            if sw_port is None or not sw_port.up:
                return False
            if any(h.dpid == dpid and h.port == port for h in self.topo.hosts.values()):
                return False
            self._pending_link_ports.setdefault((dpid, port), now)
            return True

        result = audit.diff_flows(expected, installed, defer=keep_for_now)
        self.record("audit", f"switch {self.topo.switch_name(dpid)}: {result.summary()}")
        steps = audit.audit_steps(dpid, result)
        meters = self._ingress_meters(dpid, trails)
        if meters and steps:
            steps[0] = {dpid: meters + steps[0].get(dpid, [])}
        elif meters:
            steps = [{dpid: meters}]
        if self.policy.services or bindings or multipath:  # groups are not audited: set again
            steps = [{dpid: [GroupDelete(dpid)]},
                     {dpid: [b.group for b in bindings] + [f for b in bindings for f in b.flows]
                      + multipath}] + steps
        return Change(steps)

    @staticmethod
    def _ingress_meters(dpid: int, trails: list[Trail]) -> list[compiler.Op]:
        """The meters of capped trails starting at `dpid`, made right whether they exist.

        Meters are not read back: each is sent as an add and as a modify; the
        switch refuses one of the two (harmlessly) and the rate ends up right.
        """
        ops: list[compiler.Op] = []
        for trail in trails:
            if trail.ingress.dpid == dpid:
                ops += compiler.meter_ops(trail) + compiler.meter_ops(trail, modify=True)
        return ops

    def switch_leave(self, dpid: int) -> Change:
        """A switch disconnected: forget it and move trails off it.

        With a switch grace period the switch is only marked away (it keeps
        forwarding on its flows); expire_links forgets it if it stays away.
        """
        if dpid not in self.topo.switches:
            return Change()
        if self.switch_grace > 0:
            self._away.setdefault(dpid, self.clock())
            self.record("switch", f"switch {self.topo.switch_name(dpid)} disconnected; "
                        f"its flows stay, forgotten after {self.switch_grace:.0f} s away")
            return Change()
        return self._forget_switch(dpid)

    def _forget_switch(self, dpid: int) -> Change:
        self._away.pop(dpid, None)
        for key in [k for k in self._pending_link_ports if k[0] == dpid]:
            del self._pending_link_ports[key]
        name = self.topo.switch_name(dpid)
        links, hosts = self.topo.remove_switch(dpid)
        self.record("switch", f"switch {name} disconnected; {len(links)} link directions lost")
        return self._after_loss(links, hosts, gone_switch=dpid)

    def port_status(self, dpid: int, port: Port) -> Change:
        """A port changed; a port that is down loses its links and hosts."""
        if dpid not in self.topo.switches:
            return Change()
        self.topo.set_port(dpid, port)
        if port.up:
            return Change()
        links, hosts = self.topo.remove_port(dpid, port.number)
        if links:
            self.record("link", f"port {port.number} of {self.topo.switch_name(dpid)} down: "
                        + ", ".join(self._link_name(lk) for lk in links) + " removed")
        return self._after_loss(links, hosts)

    def link_seen(self, src: int, src_port: int, dst: int, dst_port: int) -> Change:
        """LLDP from (src, src_port) arrived at (dst, dst_port)."""
        if src not in self.topo.switches or dst not in self.topo.switches:
            return Change()
        self._link_seen[(src, src_port)] = self.clock()
        confirmed = self._pending_link_ports.pop((dst, dst_port), None) is not None
        port = self.topo.switches[dst].ports.get(dst_port)
        if port is not None and not port.up:
            return Change()
        hosts_before = set(self.topo.hosts)
        replaced = self.topo.link_from(src, src_port)
        link = self.topo.add_link(src, src_port, dst, dst_port)
        change = Change()
        if link is None:
            return change
        self.record("link", f"link {self._link_name(link)} discovered")
        if not confirmed:  # an audited flow for this port is installed already
            change.merge(Change([{dst: [compiler.link_port_flow(dst, dst_port)]}]))
        if replaced is not None:  # the port was recabled: trails on the old link move
            self.record("link", f"link {self._link_name(replaced)} replaced")
            change.merge(self._after_loss([replaced], []))
        change.merge(self._retry_blocked())
        for mac in hosts_before - set(self.topo.hosts):
            change.merge(self._drop_host_trails(mac, "host was on an inter-switch port"))
        for binding in list(self._bindings.values()):  # a pool member may be reachable now
            change.merge(self._refresh_binding(binding))
        for head in list(self._legs):  # a multipath trail short of legs may get them back
            legs = self._leg_trails(head)
            profile = self.policy.app(legs[0].app) if legs else None
            if profile is not None and len(legs) < profile.requirements.paths:
                change.merge(self.replan(head, "a link appeared", keep_intact=True))
        return change

    def expire_links(self, timeout: float) -> Change:
        """Remove links whose LLDP has not been seen for `timeout` seconds.

        Also forgets switches away longer than the switch grace period and
        deletes audited link-port flows that LLDP did not confirm in time.
        Links of a switch that is away do not expire while it may come back.
        """
        now = self.clock()
        change = Change()
        for dpid, since in list(self._away.items()):
            if now - since > self.switch_grace:
                change.merge(self._forget_switch(dpid))
        for (dpid, port), since in list(self._pending_link_ports.items()):
            if now - since > self.link_port_grace:
                del self._pending_link_ports[(dpid, port)]
                if dpid in self.topo.switches and not self.topo.is_link_port(dpid, port):
                    self.record("audit", f"no link found on {self.topo.switch_name(dpid)}:"
                                f"{port} within {self.link_port_grace:.0f} s: its link-port "
                                "flow is deleted")
                    change.merge(Change([{dpid: [compiler.link_port_delete(dpid, port)]}]))
        lost = []
        for link in self.topo.links():
            if link.src in self._away or link.dst in self._away:
                self._link_seen[(link.src, link.src_port)] = now
                continue
            seen = self._link_seen.get((link.src, link.src_port), now)
            if now - seen > timeout:
                lost.append(self.topo.remove_link(link.src, link.src_port))
        lost = [lk for lk in lost if lk]
        for link in lost:
            self._link_seen.pop((link.src, link.src_port), None)
            self.record("link", f"link {self._link_name(link)} timed out")
        return change.merge(self._after_loss(lost, []))

    def _link_name(self, link: Link) -> str:
        return (f"{self.topo.switch_name(link.src)}:{link.src_port}->"
                f"{self.topo.switch_name(link.dst)}:{link.dst_port}")

    def _after_loss(self, links: list[Link], hosts: list[Host],
                    gone_switch: int | None = None) -> Change:
        change = Change()
        for link in links:
            if link.dst in self.topo.switches:
                change.merge(Change([{link.dst: [compiler.link_port_delete(link.dst,
                                                                           link.dst_port)]}]))
        for host in hosts:
            change.merge(self._drop_host_trails(host.mac, f"host {host.ip} went away"))
        broken = {(lk.src, lk.src_port) for lk in links}
        for trail in self.store.all():
            if trail.state in (TrailState.REMOVED, TrailState.FAILED):
                continue
            crosses = any(hop in broken for hop in trail.links())
            if crosses or (gone_switch is not None and gone_switch in trail.switches):
                change.merge(self.replan(trail.id, "its path lost a link", keep_intact=True))
        return change

    # hosts and ARP ----------------------------------------------------
    def learn_host(self, dpid: int, port: int, mac: str, ip: str) -> Change:
        """A host spoke from (dpid, port); learn it, moving its trails if it moved."""
        if mac == CONTROLLER_MAC or ip == "0.0.0.0" or dpid not in self.topo.switches:
            return Change()
        if self.topo.is_link_port(dpid, port) or (dpid, port) in self._nf_ports():
            return Change()
        previous_owner = self.topo.host_by_ip(ip)
        was_known = mac in self.topo.hosts
        trusted_before = self.tagger_ports()
        try:
            host, old = self.topo.add_host(mac, ip, dpid, port)
        except TopologyError as exc:
            LOG.warning("host not learned: %s", exc)
            return Change()
        change = Change()
        if previous_owner is not None and previous_owner.mac != host.mac:
            self.record("host", f"{ip} moved from {previous_owner.mac} to {mac}")
            change.merge(self._drop_host_trails(previous_owner.mac, f"{ip} changed owner"))
            self.patterns.forget(previous_owner.mac)
        if old is not None:
            self.record("host", f"host {ip} ({mac}) moved to "
                        f"{self.topo.switch_name(dpid)}:{port}")
            change.merge(self._drop_host_trails(mac, "host moved"))
        if old is not None or previous_owner is None or previous_owner.mac != host.mac:
            for binding in list(self._bindings.values()):  # a pool member (re)appeared
                if ip in self._member_ips(binding.service):
                    change.merge(self._refresh_binding(binding))
        if not was_known and old is None:
            change.merge(self._drop_misplaced_trails(host))
        if not was_known or old is not None:
            change.merge(self._proactive_pairs(mac))
        return change.merge(self._retrust(trusted_before))

    def _drop_misplaced_trails(self, host: Host) -> Change:
        """Trails kept from before a restart whose end is not where `host` was learned."""
        change = Change()
        for (_app, src, dst), trail_id in list(self._by_pair.items()):
            trail = self.store.get(trail_id)
            if trail is None or host.mac not in (src, dst) \
                    or (trail.grouped and trail.id not in self._legs):
                continue
            at = [(trail.ingress.dpid, trail.ingress.in_port)] if src == host.mac else []
            if dst == host.mac:
                at.append((trail.egress.dpid, trail.egress.out_port))
            if any(place != (host.dpid, host.port) for place in at):
                change.merge(self.remove_trail(trail_id, f"host {host.ip} was learned at "
                                               f"{self.topo.switch_name(host.dpid)}:"
                                               f"{host.port}, not where the trail ends"))
        return change

    def _proactive_pairs(self, mac: str) -> Change:
        """Set up the best-ranked pairs of a host that (re)appeared, before it talks."""
        change = Change()
        done: set[tuple[str, str]] = set()
        for app in {p[0] for p in self.patterns.pairs}:
            for _, src, dst in self.patterns.top(app, PROACTIVE_TOP):
                if mac in (src, dst) and (src, dst) not in done \
                        and src in self.topo.hosts and dst in self.topo.hosts:
                    done.add((src, dst))
                    try:
                        change.merge(self.ensure_pair(src, dst)[1])
                    except TopologyError:
                        continue
        if done:
            self.record("proactive", f"{len(done)} frequent pairs of {mac} set up again")
        return change

    def handle_arp(self, dpid: int, port: int, opcode: int, src_mac: str, src_ip: str,
                   dst_ip: str) -> tuple[ArpResult, Change]:
        """Proxy ARP from the host table; probe edge ports for unknown addresses."""
        result = ArpResult()
        if src_mac == CONTROLLER_MAC or self.topo.is_link_port(dpid, port) \
                or (dpid, port) in self._nf_ports():
            return result, Change()
        change = self.learn_host(dpid, port, src_mac, src_ip)
        requester = self.topo.hosts.get(src_mac)
        # Whoever was waiting for src_ip gets the answer now.
        for waiting_mac, (waiting_ip, wdpid, wport) in self._pending_arp.pop(src_ip, {}).items():
            if requester and waiting_mac != src_mac:
                result.packets.append(self._arp_reply(requester, waiting_mac, waiting_ip,
                                                      wdpid, wport))
                result.pairs.append((waiting_mac, src_mac))
        if opcode != ARP_REQUEST or requester is None or dst_ip == src_ip:
            return result, change
        service = self.service_by_vip(dst_ip)
        if service is not None:
            if src_ip in self._member_ips(service):
                self.record("service", f"{src_ip} asked for {service.name} ({dst_ip}), of "
                            "which it is a pool member: not answered")
                return result, change
            result.packets.append(ArpPacket(dpid, port, ARP_REPLY, service.mac, src_mac,
                                            service.mac, dst_ip, src_mac, src_ip))
            result.services.append((src_mac, service.name))
            now = self.clock()
            for ip in self._member_ips(service):
                if self.topo.host_by_ip(ip) is None \
                        and now - self._probed.get(ip, -PROBE_INTERVAL) >= PROBE_INTERVAL:
                    self._probed[ip] = now
                    result.packets.extend(self._arp_probes(ip, exclude=(dpid, port)))
            return result, change
        target = self.topo.host_by_ip(dst_ip)
        if target is not None:
            if target.mac != src_mac:
                result.packets.append(self._arp_reply(target, src_mac, src_ip, dpid, port))
                result.pairs.append((src_mac, target.mac))
            return result, change
        self._pending_arp.setdefault(dst_ip, {})[src_mac] = (src_ip, dpid, port)
        now = self.clock()
        if now - self._probed.get(dst_ip, -PROBE_INTERVAL) >= PROBE_INTERVAL:
            self._probed[dst_ip] = now
            result.packets.extend(self._arp_probes(dst_ip, exclude=(dpid, port)))
        return result, change

    def _arp_reply(self, owner: Host, to_mac: str, to_ip: str, dpid: int, port: int) -> ArpPacket:
        return ArpPacket(dpid, port, ARP_REPLY, owner.mac, to_mac, owner.mac, owner.ip,
                         to_mac, to_ip)

    def _nf_ports(self) -> set[tuple[int, int]]:
        return PolicyView(self.policy, self.topo).nf_ports() if self.policy.nodes else set()

    def _arp_probes(self, ip: str, exclude: tuple[int, int]) -> list[ArpPacket]:
        """ARP probes (sender 0.0.0.0, RFC 5227) out of every host-facing port."""
        probes = []
        skip = self._nf_ports() | {exclude}
        for dpid in sorted(self.topo.switches):
            for port in self.topo.edge_ports(dpid):
                if (dpid, port) not in skip:
                    probes.append(ArpPacket(dpid, port, ARP_REQUEST, CONTROLLER_MAC,
                                            "ff:ff:ff:ff:ff:ff", CONTROLLER_MAC, "0.0.0.0",
                                            "00:00:00:00:00:00", ip))
        return probes

    # trails -----------------------------------------------------------
    def trail_for_pair(self, src_mac: str, dst_mac: str,
                       app: str = DEFAULT_APP) -> Trail | None:
        """The live trail of `app` from src_mac to dst_mac, if any."""
        trail_id = self._by_pair.get((app, src_mac, dst_mac))
        return self.store.get(trail_id) if trail_id is not None else None

    def ensure_trail(self, src_mac: str, dst_mac: str, app: str = DEFAULT_APP,
                     record_failure: bool = True) -> tuple[Trail, Change]:
        """The trail of `app` for a host pair, planned and compiled if missing.

        Raises NoPathError (recorded as an event, with the policy's reason)
        when no path satisfies the policy, TopologyError for an unknown host.
        """
        existing = self.trail_for_pair(src_mac, dst_mac, app)
        if existing is not None:
            return existing, Change()
        src, dst = self._host(src_mac), self._host(dst_mac)
        view = PolicyView(self.policy, self.topo)
        profile = self.policy.app(app)
        service = self.policy.service(app)
        if app != DEFAULT_APP and profile is None and service is None:
            raise TopologyError(f"application {app!r} is not in the policy")
        try:
            if self._wants_multipath(profile, src, dst):
                return self._ensure_multipath(view, profile, src, dst)  # type: ignore[arg-type]
            hops = self._plan_hops(view, profile, src, dst)
        except NoPathError as exc:
            if record_failure:
                self.record("no-path", f"{app} trail {src.ip} -> {dst.ip} not installed: {exc}")
            raise
        fields = self._service_fields(service, dst) if service is not None \
            else self._app_fields(view, profile)
        lease = 0 if fields.get("grouped") else int(self.trail_lease)
        now = self.clock()
        trail = Trail(self.store.next_id(), self.labels.allocate(), src.mac, dst.mac, src.ip,
                      dst.ip, hops, app=app, created=now, lease=lease,
                      expires=now + lease if lease else None, **fields)
        self.store.put(trail)
        self._by_pair[(app, src.mac, dst.mac)] = trail.id
        self.record("trail", f"{app} trail {trail.id} {src.ip} -> {dst.ip} label {trail.label} "
                    f"via {self._path_text(trail)}", trail.id)
        steps = tagging.install_steps(trail) if self._tagged(trail) \
            else compiler.install_steps(trail)
        return trail, Change(steps, [lambda: self._activate(trail.id)], [trail.id])

    def ensure_pair(self, src_mac: str, dst_mac: str) -> tuple[Trail | None, Change]:
        """The default trail of a pair plus the trails of every application on it.

        An application whose policy cannot be met gets a drop rule at the
        ingress instead, so its packets never ride the default trail.
        """
        change = Change()
        try:
            default, change = self.ensure_trail(src_mac, dst_mac)
        except NoPathError:
            default = None
        src, dst = self._host(src_mac), self._host(dst_mac)
        now = self.clock()
        self.patterns.request((DEFAULT_APP, src.mac, dst.mac), now)
        for profile in PolicyView(self.policy, self.topo).apps_for(src, dst):
            self.patterns.request((profile.name, src.mac, dst.mac), now,
                                  *self._criticality(profile.name))
            key = (profile.name, src.mac, dst.mac)
            if key in self._by_pair:
                continue
            try:
                _, extra = self.ensure_trail(src.mac, dst.mac, profile.name,
                                             record_failure=False)
            except NoPathError as exc:
                blocked = self._block(profile, src, dst)
                if blocked:  # a new drop rule, not one kept from before: say why
                    self.record("no-path", f"{profile.name} trail {src.ip} -> {dst.ip} not "
                                f"installed: {exc}")
                change.merge(blocked)
                continue
            change.merge(self._unblock(key)).merge(extra)
        return default, change

    def _app_fields(self, view: PolicyView, profile: Application | None) -> dict[str, Any]:
        if profile is None:
            return {}
        cap = self.policy.weights_of(profile).max_rate
        return {"cls": profile.data_class, "match": app_matches(profile),
                "priority": view.priority(profile), "rate_cap": round(cap) if cap else 0}

    def _plan_hops(self, view: PolicyView, profile: Application | None, src: Host,
                   dst: Host, replacing: Trail | None = None) -> tuple[Hop, ...]:
        """Hops for a trail of `profile` (None: the default per-pair trail)."""
        if profile is None:
            return self.planner.host_hops(src, dst)
        return plan_app_hops(view, profile, src, dst, self.planner,
                             self._isolation_exclusions(profile, replacing), self._chain_cache)

    def _isolation_exclusions(self, profile: Application,
                              replacing: Trail | None) -> tuple[set[tuple[int, int]], set[int]]:
        """Links (dpid, out_port) and switches the trail must not share."""
        links: set[tuple[int, int]] = set()
        switches: set[int] = set()
        mine = profile.requirements.isolation
        for trail in self.store.all():
            if trail.app in (profile.name, DEFAULT_APP) or trail is replacing:
                continue
            other = self.policy.app(trail.app)
            theirs = other.requirements.isolation if other else "none"
            strictest = "switch" if "switch" in (mine, theirs) else (
                "link" if "link" in (mine, theirs) else "none")
            if strictest == "link":
                links.update(trail.links())
            elif strictest == "switch":
                switches.update(trail.switches)
        for dpid, port in list(links):  # a link is the cable: both directions
            link = self.topo.link_from(dpid, port)
            if link is not None:
                links.add((link.dst, link.dst_port))
        return links, switches

    def _block(self, profile: Application, src: Host, dst: Host) -> Change:
        """Drop `profile`'s packets from src to dst at the ingress (no fallback)."""
        key = (profile.name, src.mac, dst.mac)
        if key in self._blocks:
            return Change()
        view = PolicyView(self.policy, self.topo)
        base = {"in_port": src.port, "eth_type": ETH_TYPE_IPV4, "eth_src": src.mac,
                "eth_dst": dst.mac}
        matches = [(src.dpid, view.priority(profile), {**base, **dict(alt)})
                   for alt in (app_matches(profile) or ((),))]
        retired = self._retired_blocks.pop(key, None)
        if retired is not None and [(f.dpid, f.priority, f.match_dict) for f in retired] \
                == matches:
            self._blocks[key] = retired  # the same rule is still installed: keep it
            return Change()
        if retired is not None:
            self._retired_blocks[key] = retired  # deleted by _retire_blocks
        self._block_ids += 1
        cookie = make_cookie(KIND_BLOCK, self._block_ids)
        flows = [FlowSpec.make(dpid, TABLE_CLASSIFY, prio, match, cookie=cookie)
                 for dpid, prio, match in matches]
        self._blocks[key] = flows
        return Change([{src.dpid: list(flows)}])

    def _unblock(self, key: tuple[str, str, str]) -> Change:
        return self._delete_after_paths(self._blocks.pop(key, []))

    def _delete_after_paths(self, flows: Iterable[FlowSpec]) -> Change:
        """Delete drop rules in step 3, after any new trail's path and classifier."""
        ops = [compiler.delete_exact(f) for f in flows if f.dpid in self.topo.switches]
        return Change([{}, {}, compiler.group_ops(ops)]) if ops else Change()

    def _covers(self, view: PolicyView, profile: Application, trail: Trail) -> bool:
        src, dst = self.topo.hosts.get(trail.src_mac), self.topo.hosts.get(trail.dst_mac)
        if src is None or dst is None:  # kept from before a restart until its hosts speak
            return True
        return profile in view.apps_for(src, dst)

    def _retire_blocks(self) -> Change:
        """Delete drop rules that a re-evaluation did not want back."""
        retired = [f for flows in self._retired_blocks.values() for f in flows]
        self._retired_blocks.clear()
        return self._delete_after_paths(retired)

    def _retry_blocked(self) -> Change:
        """A new link may make a blocked application placeable."""
        change = Change()
        for app, src, dst in list(self._blocks):
            if src not in self.topo.hosts or dst not in self.topo.hosts:
                continue
            try:
                _, extra = self.ensure_trail(src, dst, app, record_failure=False)
            except (NoPathError, TopologyError):
                continue
            change.merge(self._unblock((app, src, dst))).merge(extra)
        return change

    def blocked(self) -> list[tuple[str, str, str]]:
        """(application, src MAC, dst MAC) whose packets are dropped by policy."""
        return sorted(self._blocks)

    def _path_text(self, trail: Trail) -> str:
        parts = []
        for hop in trail.hops:
            parts.append(self.topo.switch_name(hop.dpid))
            if hop.via:
                parts.append(f"[{hop.via}]")
        return " ".join(parts)

    def _host(self, mac: str) -> Host:
        host = self.topo.hosts.get(mac)
        if host is None:
            raise TopologyError(f"unknown host {mac}")
        return host

    def _activate(self, trail_id: int) -> None:
        trail = self.store.get(trail_id)
        if trail and trail.state in (TrailState.INSTALLING, TrailState.REROUTING):
            self.store.put(trail.evolve(state=TrailState.ACTIVE, version=trail.version + 1))

    def set_setup_latency(self, trail_id: int, ms: float) -> None:
        """Record how long the first install of a trail took."""
        trail = self.store.get(trail_id)
        if trail and trail.setup_ms is None:
            self.store.put(trail.evolve(setup_ms=round(ms, 3), version=trail.version + 1))

    def replan(self, trail_id: int, reason: str,
               avoid: frozenset[tuple[int, int]] = frozenset(), keep_intact: bool = False
               ) -> Change:
        """Move a trail to its current best path under the policy, make-before-break.

        With `avoid` (links as (dpid, out port)) the new path must use none of
        them: NoFreePath is raised, and nothing changes, if it cannot. A leg of
        a multipath trail re-plans the whole trail; `keep_intact` keeps the
        legs whose paths still work (after a failure).
        """
        old = self.store.get(trail_id)
        if old is None:
            return Change()
        head = bundles.head_of(old)
        if head is not None:
            return self._replan_multipath(head, reason, keep_intact)
        view = PolicyView(self.policy, self.topo)
        profile = self.policy.app(old.app)
        service = self.policy.service(old.app)
        if old.app != DEFAULT_APP and profile is None and service is None:
            return self.remove_trail(trail_id, f"{reason}; application {old.app!r} is gone")
        if (old.src_mac not in self.topo.hosts or old.dst_mac not in self.topo.hosts) \
                and self._path_intact(old):  # from before a restart: hosts not seen yet
            return Change()
        try:
            src, dst = self._host(old.src_mac), self._host(old.dst_mac)
            if self._wants_multipath(profile, src, dst):  # ensure_pair splits it afresh
                return self.remove_trail(trail_id, f"{reason}; the application is split over "
                                         "several paths now")
            hops = self._plan_hops(view, profile, src, dst, replacing=old)
        except (NoPathError, TopologyError) as exc:
            change = self.remove_trail(trail_id, f"{reason}; no new path: {exc}")
            if profile is not None and old.src_mac in self.topo.hosts \
                    and old.dst_mac in self.topo.hosts:
                change.merge(self._block(profile, src, dst))
            return change
        fields = self._app_fields(view, profile) if service is None \
            else self._service_fields(service, dst)
        if avoid and avoid & {(h.dpid, h.out_port) for h in hops[:-1]}:
            raise NoFreePath(f"trail {trail_id}: every path crosses "
                             f"{', '.join(sorted(self._link_name_of(k) for k in avoid))}")
        if hops == old.hops and all(getattr(old, k) == v for k, v in fields.items()):
            return Change()
        label = self.labels.allocate()
        new = old.evolve(label=label, hops=hops, state=TrailState.REROUTING,
                         version=old.version + 1, **fields)
        self.store.put(new)
        self.record("reroute", f"trail {old.id} {old.src_ip} -> {old.dst_ip} moved ({reason}): "
                    f"label {old.label} -> {label}, via {self._path_text(new)}", old.id)
        old_label = old.label

        def finish() -> None:
            self._activate(old.id)
            self.labels.release(old_label)

        steps = tagging.reroute_steps(old, new) if self._tagged(new) \
            else compiler.reroute_steps(old, new)
        drain = {len(steps) - 1: DRAIN} if len(steps) > 2 else {}  # the old path's deletes
        if new.grouped:  # the bucket moves to the new label once its path is there
            binding = self._bindings.get((new.app, new.src_mac))
            group = self._binding_group(binding) if binding is not None else None
            steps.insert(1, {group.dpid: [group]} if group is not None else {})
        self._drop_gone_switches(steps)  # the old path's switches may be gone
        if new.grouped and drain:
            drain = {len(steps) - 1: DRAIN}
        return Change(steps, [finish], pause_before=drain)

    def _drop_gone_switches(self, steps: list[Step]) -> None:
        """Leave out the operations of switches the topology no longer has."""
        for step in steps:
            for dpid in [d for d in step if d not in self.topo.switches]:
                del step[dpid]

    def _path_intact(self, trail: Trail) -> bool:
        """Every switch of `trail` is known and every link it uses is up."""
        return all(d in self.topo.switches for d in trail.switches) and all(
            self.topo.link_from(d, p) is not None for d, p in trail.links())

    def remove_trail(self, trail_id: int, reason: str, note: str = "removed") -> Change:
        """Delete a trail's flows and free its label.

        `note` is the reason other controllers see in the store's notification.
        A leg of a multipath trail takes the whole trail with it.
        """
        current = self.store.get(trail_id)
        head = bundles.head_of(current) if current is not None else None
        if head is not None and head in self._legs:
            return self._remove_multipath(head, reason, note)
        trail = self.store.delete(trail_id, note)
        if trail is None:
            return Change()
        key = (trail.app, trail.src_mac, trail.dst_mac)
        if self._by_pair.get(key) == trail_id:
            del self._by_pair[key]
        self.labels.release(trail.label)
        self.record("trail-removed", f"{trail.app} trail {trail.id} {trail.src_ip} -> "
                    f"{trail.dst_ip} removed: {reason}", trail.id)
        ops = [op for op in compiler.remove_ops(trail) if op.dpid in self.topo.switches]
        change = Change([{op.dpid: [op] for op in ops}] if ops else [])
        if self.policy.service(trail.app) is not None or self._bindings:
            client = trail.src_mac if trail.grouped else trail.dst_mac
            binding = self._bindings.get((trail.app, client))
            group = self._binding_group(binding) if binding is not None else None
            if group is not None:  # the bucket goes before the path it leads to
                change = Change([{group.dpid: [group]}]).merge(
                    Change([{}, *change.steps], change.done))
        return change

    # policy -------------------------------------------------------------
    def check_policy(self, policy: Policy) -> set[tuple[int, int]]:
        """Raise TopologyError or ValueError if `policy` does not fit the network as it is
        (an NF on an inter-switch port, say); else return the ports that face NFs."""
        view = PolicyView(policy, self.topo)
        nf_ports = view.nf_ports()
        check_network_functions(self.topo, view.network_functions())
        return nf_ports

    def set_policy(self, policy: Policy) -> tuple[Change, dict[str, int]]:
        """Swap the policy atomically and re-plan every trail under it.

        The caller validated `policy`. A policy that does not fit the network
        (an NF attached to an inter-switch port, say) raises TopologyError
        before anything changes. Trails that can no longer be placed are
        removed and their traffic blocked.
        """
        view = PolicyView(policy, self.topo)
        nf_ports = self.check_policy(policy)  # may raise: nothing is swapped yet
        trusted_before = self.tagger_ports()
        self.policy = policy
        self._chain_cache.clear()
        change = Change()
        rebind = []
        for key, binding in list(self._bindings.items()):
            if policy.service(binding.service.name) != binding.service:
                change.merge(self._remove_binding(binding, "the service changed"))
                if policy.service(binding.service.name) is not None:
                    rebind.append(key)
        for host in [h for h in self.topo.hosts.values() if (h.dpid, h.port) in nf_ports]:
            self.topo.remove_host(host.mac)  # that port is a network function now
            change.merge(self._drop_host_trails(host.mac, "its port is a network function"))
        self._retired_blocks.update(self._blocks)  # _block takes back what is still wanted
        self._blocks.clear()
        before = {t.id: t.version for t in self.store.all()}
        for trail_id in before:
            trail = self.store.get(trail_id)
            if trail is not None and (trail.src_mac not in self.topo.hosts
                                      or trail.dst_mac not in self.topo.hosts):
                continue  # kept from before a restart: its hosts have not spoken yet
            profile = policy.app(trail.app) if trail is not None else None
            if profile is not None and not self._covers(view, profile, trail):
                change.merge(self.remove_trail(trail_id, f"application {trail.app} no longer "
                                               "covers this pair"))
                continue
            change.merge(self.replan(trail_id, "policy changed"))
        pairs = sorted({(s, d) for app, s, d in self._by_pair if app == DEFAULT_APP})
        for src, dst in pairs:
            if src in self.topo.hosts and dst in self.topo.hosts:
                change.merge(self.ensure_pair(src, dst)[1])
        for name, client in rebind:
            if client in self.topo.hosts:
                change.merge(self.ensure_service(client, name))
        for binding in list(self._bindings.values()):
            change.merge(self._refresh_binding(binding))
        change.merge(self._retire_blocks())
        change.merge(self._retrust(trusted_before))
        after = {t.id: t.version for t in self.store.all()}
        summary = {
            "replanned": sum(1 for i in before if i in after and after[i] != before[i]),
            "removed": sum(1 for i in before if i not in after),
            "added": sum(1 for i in after if i not in before),
            "blocked": len(self._blocks),
        }
        self.record("policy", f"policy from {policy.source} applied: "
                    + ", ".join(f"{k} {v}" for k, v in summary.items()))
        return change, summary

    def _retrust(self, before: set[tuple[int, int]]) -> Change:
        """Tagger ports that appeared get their flows; those that went lose them."""
        now = self.tagger_ports()
        change = Change()
        trails = self.store.all()
        for dpid, port in sorted(now - before):
            if dpid in self.topo.switches:
                change.merge(Change([{dpid: tagging.trusted_port_flows(dpid, port, trails)}]))
        for dpid, port in sorted(before - now):
            if dpid in self.topo.switches:
                change.merge(Change([{dpid: list(tagging.untrust_ops(dpid, port))}]))
        return change

    def app_dag(self, app: str, reverse: bool = False) -> Any:
        """The union of `app`'s trails in one direction as a DAG (networkx DiGraph).

        Forward trails carry what the application's endpoints send (see
        PolicyView.is_forward); `reverse` gives the replies. Raises
        dag.DagCycleError if the union is not acyclic.
        """
        view = PolicyView(self.policy, self.topo)
        profile = self.policy.app(app)
        trails = [t for t in self.store.all() if t.app == app
                  and view.is_forward(profile, t.src_ip, t.dst_ip) != reverse]
        return dag.app_dag(trails, self.topo, view.network_functions(), self.policy)

    def _drop_host_trails(self, mac: str, reason: str) -> Change:
        change = Change()
        for binding in [b for b in self._bindings.values() if b.client == mac]:
            change.merge(self._remove_binding(binding, reason))
        for (_app, src, dst), trail_id in list(self._by_pair.items()):
            if mac in (src, dst):
                change.merge(self.remove_trail(trail_id, reason))
        for key in [k for k in self._blocks if mac in k[1:]]:
            change.merge(self._unblock(key))
        for waiting in self._pending_arp.values():
            waiting.pop(mac, None)
        return change

    def restore_hop(self, dpid: int, label: int) -> Change:
        """The miss path: re-install the table-1 entry of `label` at `dpid`.

        An empty Change means the label is unknown there: drop the packet.
        """
        trail = self.store.find_by_label(dpid, label)
        if trail is None or trail.label != label or dpid not in trail.switches:
            self.misses_unknown += 1
            return Change()
        flows = [f for f in compiler.hop_flows(trail) if f.dpid == dpid]
        self.record("label-miss", f"label {label} missing at {self.topo.switch_name(dpid)}: "
                    "restored from the store", trail.id)
        return Change([{dpid: flows}])

    def classifier_counters(self, dpid: int,
                            entries: Iterable[tuple[int, int | None, int, int]]) -> None:
        """Apply table-0 flow stats of switch `dpid`: (trail id, in_port, packets, bytes).

        Only a trail's ingress classifiers count (not where it re-enters after
        a network function, which would count its packets twice).
        """
        stats = []
        for trail_id, in_port, packets, nbytes in entries:
            trail = self.store.get(trail_id)
            if trail is not None and (not trail.grouped or trail.id in self._legs) \
                    and trail.ingress.dpid == dpid \
                    and in_port in (None, trail.ingress.in_port):
                stats.append((trail_id, packets, nbytes))
        self.update_counters(stats)

    def update_counters(self, stats: Iterable[tuple[int, int, int]]) -> None:
        """Apply (trail id, packets, bytes) read from ingress classifier flows.

        A trail with several classifier alternatives may appear several times:
        its counters are the sums. Traffic since the last poll renews its lease.
        """
        now = self.clock()
        totals: dict[int, list[int]] = {}
        for trail_id, packets, nbytes in stats:
            total = totals.setdefault(trail_id, [0, 0])
            total[0] += packets
            total[1] += nbytes
        self.telemetry.flow_stats([FlowCounters(i, p, b) for i, (p, b) in totals.items()], now)
        for trail_id, (packets, nbytes) in totals.items():
            trail = self.store.get(trail_id)
            if trail is None:
                continue
            self.patterns.counters((trail.app, trail.src_mac, trail.dst_mac), packets, now,
                                   *self._criticality(trail.app))
            if (trail.packets, trail.bytes) == (packets, nbytes):
                continue
            changes: dict[str, Any] = {"packets": packets, "bytes": nbytes}
            if trail.lease and packets > trail.packets:
                changes["expires"] = now + trail.lease
            try:
                self.store.put(trail.evolve(version=trail.version + 1, **changes))
            except StaleWrite:
                continue  # moved meanwhile; the next poll counts again

    # telemetry and the resource allocation engine --------------------------
    def port_counters(self, dpid: int, stats: Iterable[PortCounters]) -> None:
        """Apply a switch's port statistics (link load)."""
        self.telemetry.port_stats(dpid, stats, self.clock())

    def read_node_loads(self) -> dict[str, HostLoad]:
        """Fresh, valid host load samples from the store (sdnscent-agent); {} if unreachable."""
        try:
            samples = self.store.node_loads()
        except StoreError as exc:
            LOG.debug("no host load: %s", exc)
            return self.node_loads
        self.node_loads = {**self._node_reader.read(samples, self.clock()), **self._measured}
        return self.node_loads

    def tagger_ports(self, policy: Policy | None = None) -> set[tuple[int, int]]:
        """(dpid, port) of learned hosts the policy marks as taggers (docs/vni.rst)."""
        nodes = [n for n in (policy or self.policy).nodes.values() if n.tagger]
        if not nodes:
            return set()
        ips = {n.ip for n in nodes if n.ip}
        macs = {n.mac for n in nodes if n.mac}
        return {(h.dpid, h.port) for h in self.topo.hosts.values()
                if h.ip in ips or h.mac in macs}

    def _tagged(self, trail: Trail) -> bool:
        return (trail.ingress.dpid, trail.ingress.in_port) in self.tagger_ports()

    def _trusted_flows(self, dpid: int, trails: Iterable[Trail]) -> list[FlowSpec]:
        trails = list(trails)
        return [f for d, port in sorted(self.tagger_ports()) if d == dpid
                for f in tagging.trusted_port_flows(dpid, port, trails)]

    def pin_trail(self, trail_id: int, pinned: bool) -> Trail | None:
        """Pin a trail to its path (or unpin it); None if there is no such trail.

        A pinned trail is never moved to relieve load (the allocation engine
        does not see it as a candidate). It still moves when its path breaks
        or the policy no longer allows it: a pin is about optimisation, not
        about correctness or security.
        """
        trail = self.store.get(trail_id)
        if trail is None:
            return None
        if is_pinned(trail) == pinned:
            return trail
        extra = {k: v for k, v in trail.extra.items() if k != PINNED}
        if pinned:
            extra[PINNED] = "true"
        trail = trail.evolve(extra=extra, version=trail.version + 1)
        self.store.put(trail)
        self.record("pin", f"trail {trail_id} {'pinned to' if pinned else 'unpinned from'} "
                    f"{self._path_text(trail)}", trail_id)
        return trail

    def computing_nodes(self) -> list[str]:
        """Names of the policy's network functions: the nodes whose CPU and memory are sized."""
        return sorted(spec.name for spec in self.policy.network_functions())

    def rebalance(self, measured: Mapping[str, HostLoad] | None = None
                  ) -> tuple[Change, list[Any]]:
        """One period of the resource allocation engine: (moves as a Change, allocations).

        `measured`: load of computing nodes as the allocator backend measures
        their cgroups; it wins over the agents' samples of the same node.

        Moved trails are re-planned with load-aware costs, their hot links made
        expensive enough to leave when any other path exists, and installed
        make-before-break (replan). Allocations (CPU and memory of computing
        nodes) are returned for the glue's allocator backend.
        """
        now = self.clock()
        self.telemetry.prune(now)
        util = self.telemetry.utilisation(self.topo, now)
        usages = self.telemetry.trail_usages(now)
        # A trail's rate is the larger of its smoothed and latest reading: a ramping
        # elephant must not look small enough to fit on another link.
        trails = [TrailLoad.from_trail(t, max(usages[t.id].bps, usages[t.id].last_bps)
                                       if t.id in usages else 0.0)
                  for t in self.store.all()
                  if t.state is TrailState.ACTIVE and not t.grouped and not is_pinned(t)]
        self._measured = dict(measured or {})
        hosts = self.read_node_loads()
        plan = self.dra.step(self.telemetry.link_loads(self.topo, now), trails, hosts, now)
        change, allocations = Change(), list(plan.allocations)
        measured = {k: round(v, 2) for k, v in util.items()}
        for _ in range(MOVE_ROUNDS):
            blocked = set()
            for move in plan.moves:
                # the planner sees the links to leave as full: any other path is cheaper
                self.planner.utilisation = {**measured, **{k: AVOID for k in move.avoid_links}}
                try:
                    change.merge(self.replan(move.trail_id, f"load: {move.reason}",
                                             avoid=frozenset(move.avoid_links)))
                    self.moves += 1
                except NoFreePath as exc:
                    self.dra.blocked(move.trail_id, now)
                    blocked.add(move.trail_id)
                    self.record("dra-stuck", f"{exc}; trail {move.trail_id} stays "
                                "(the next largest that fits elsewhere moves instead)",
                                move.trail_id)
                except (NoPathError, TopologyError) as exc:
                    self.record("dra-stuck", f"trail {move.trail_id} not moved: {exc}",
                                move.trail_id)
            for event in plan.events:
                if not (event.kind == "dra-move" and event.trail in blocked):
                    self.record(event.kind, event.message, event.trail)
            self.planner.utilisation = measured  # later trails see the load too
            if not blocked:
                break
            plan = self.dra.step(self.telemetry.link_loads(self.topo, now), trails,
                                 self.node_loads, now)
            allocations += plan.allocations
        return change.merge(self._reweigh_multipath(now)), allocations

    def _link_name_of(self, key: tuple[int, int]) -> str:
        link = self.topo.link_from(*key)
        return self._link_name(link) if link is not None else f"{dpid_str(key[0])}:{key[1]}"

    def nodes_view(self) -> dict[str, object]:
        """JSON form of host load (GET /api/v1/nodes)."""
        return {"nodes": [
            {"node": n.node, "time": n.time, "cpu": round(n.cpu, 4), "memory": round(n.memory, 4),
             "cpu_limit": n.cpu_limit, "mem_limit": n.mem_limit, "mem_used": n.mem_used,
             "cpu_cores": n.cpu_cores} for n in self.node_loads.values()]}

    # leases -------------------------------------------------------------
    def expire_trails(self) -> Change:
        """Remove trails whose lease ran out (no traffic for their lease), freeing labels.

        The switch removes an idle classifier by itself (classifier_idle is
        told); this sweep catches the rest: a lost notification, a trail whose
        classifier never saw a packet, a restart.
        """
        now = self.clock()
        if now < self._sweep_after:
            return Change()
        change = Change()
        for trail in self.store.all():
            if trail.lease and trail.expires is not None and trail.expires <= now:
                change.merge(self.remove_trail(trail.id, f"lease expired (idle {trail.lease} s)",
                                               note="expired"))
        return change

    def classifier_idle(self, trail_id: int, match: dict[str, int | str]) -> Change:
        """The switch timed out an idle ingress classifier of `trail_id`.

        If the whole trail was idle for its lease it ends here. If another
        classifier alternative of it carried traffic (the store's lease is
        still running), the idle alternative is put back.
        """
        trail = self.store.get(trail_id)
        if trail is None or not trail.lease:
            return Change()
        if trail.expires is None or trail.expires <= self.clock() + self.lease_slack:
            return self.remove_trail(trail_id, f"idle for {trail.lease} s on the switch",
                                     note="expired")
        want = {k: v.lower() if isinstance(v, str) else v for k, v in match.items()}
        flows = [f for f in self._classifiers_of(trail) if dict(
            (k, v.lower() if isinstance(v, str) else v) for k, v in f.match) == want]
        return Change([{trail.ingress.dpid: flows}]) if flows else Change()

    def refresh_classifiers(self, src_mac: str, dst_mac: str) -> Change:
        """A host's packet reached the controller although its pair has trails.

        Their classifiers are gone from the switch (timed out just now, or
        removed by hand): install them again and renew the leases.
        """
        change = Change()
        now = self.clock()
        for (_app, src, dst), trail_id in list(self._by_pair.items()):
            if (src, dst) != (src_mac, dst_mac):
                continue
            trail = self.store.get(trail_id)
            if trail is None or (trail.grouped and trail.id not in self._legs):
                continue
            if trail.lease:
                trail = trail.evolve(expires=now + trail.lease, version=trail.version + 1)
                self.store.put(trail)
            flows = self._classifiers_of(trail)
            if flows:
                change.merge(Change([{trail.ingress.dpid: flows}]))
        return change

    def _criticality(self, app: str) -> tuple[int, str]:
        """(security level, data class) of an application for pair ranking."""
        profile = self.policy.app(app)
        if profile is None:
            return 0, "best-effort"
        return self.policy.classification_of(profile).min_level, profile.data_class

    def pair_ranking(self, app: str) -> list[dict[str, object]]:
        """`app`'s host pairs by use and criticality (GET /apps/<name>/pairs)."""
        ranked = []
        for (_, src, dst), stats in self.patterns.ranking(app):
            hosts = self.topo.hosts
            ranked.append({"src": hosts[src].ip if src in hosts else src,
                           "dst": hosts[dst].ip if dst in hosts else dst,
                           "score": round(stats.score(), 3), "rate": round(stats.rate, 3),
                           "requests": round(stats.requests, 3), "packets": stats.packets})
        return ranked

    # multipath trails ----------------------------------------------------
    def _wants_multipath(self, profile: Application | None, src: Host, dst: Host) -> bool:
        """`profile` splits its trails (requirements.paths > 1) and the hosts are on
        different switches (two hosts on one switch have one path)."""
        return profile is not None and profile.requirements.paths > 1 and src.dpid != dst.dpid

    def _leg_trails(self, head: int) -> list[Trail]:
        """The stored legs of multipath trail `head`, head first."""
        legs = [self.store.get(i) for i in self._legs.get(head, [])]
        return [leg for leg in legs if leg is not None]

    def _plan_legs(self, view: PolicyView, profile: Application, src: Host, dst: Host,
                   keep: list[tuple[Hop, ...]]) -> list[tuple[Hop, ...]]:
        """`keep` and then more link-disjoint paths under the policy, up to its `paths`.

        Each new leg is the planner's best path that uses none of the links of
        the legs before it (so a failed link breaks one leg only, and the split
        is exact: sdnscent.splits). Raises NoPathError if there is none at all.
        """
        links, switches = self._isolation_exclusions(profile, None)
        legs = list(keep)
        while len(legs) < profile.requirements.paths:
            used = {key for hops in legs for key in bundles.leg_links(hops)}
            try:
                hops = plan_app_hops(view, profile, src, dst, self.planner,
                                     (links | used, switches),
                                     self._chain_cache if not used else None)
            except NoPathError:
                if not legs:
                    raise
                break
            if hops in legs:
                break
            legs.append(hops)
        return legs

    def _leg_weights(self, profile: Application, legs: list[tuple[Hop, ...]], rate: float,
                     own: Mapping[tuple[int, int], float]) -> tuple[float, ...]:
        """The split minimising the legs' highest link utilisation (sdnscent.splits).

        Demand: the trail's measured `rate` (at least the policy's
        min_bandwidth); link load: measured, less `own` (what this trail put
        there). Unknown demand splits by spare capacity.
        """
        now = self.clock()
        keys = [bundles.leg_links(hops) for hops in legs]
        capacity = {k: float(self.topo.link_capacity(*k)) for ks in keys for k in ks}
        measured = {load.key: load.bps for load in self.telemetry.link_loads(self.topo, now)}
        background = {k: max(0.0, measured.get(k, 0.0) - own.get(k, 0.0)) for k in capacity}
        demand = max(rate, profile.requirements.min_bandwidth or 0.0)
        return splits.minmax_weights(keys, capacity, background, demand)

    def _ensure_multipath(self, view: PolicyView, profile: Application, src: Host,
                          dst: Host) -> tuple[Trail, Change]:
        """A new multipath trail: legs stored, label paths, then group and classifier."""
        hops = self._plan_legs(view, profile, src, dst, [])
        weights = self._leg_weights(profile, hops, 0.0, {})
        fields = self._app_fields(view, profile)
        now = self.clock()
        lease = int(self.trail_lease)
        head = self.store.next_id()
        legs = []
        for i, (path, weight) in enumerate(zip(hops, weights, strict=True)):
            first = i == 0
            legs.append(Trail(
                head if first else self.store.next_id(), self.labels.allocate(), src.mac,
                dst.mac, src.ip, dst.ip, path, app=profile.name, created=now,
                lease=lease if first else 0, expires=now + lease if lease and first else None,
                grouped=True, extra=bundles.leg_extra({}, head, weight),
                **{**fields, "rate_cap": fields.get("rate_cap", 0) if first else 0}))
        for leg in legs:
            self.store.put(leg)
        self._legs[head] = [leg.id for leg in legs]
        self._by_pair[(profile.name, src.mac, dst.mac)] = head
        self.record("trail", f"{profile.name} trail {head} {src.ip} -> {dst.ip} split over "
                    f"{len(legs)} paths: " + "; ".join(
                        f"label {leg.label} weight {w:.2f} via {self._path_text(leg)}"
                        for leg, w in zip(legs, weights, strict=True)), head)
        built = bundles.specs(legs)
        steps = [compiler.group_ops([*bundles.meter_ops(legs[0]),
                                     *(f for leg in legs for f in compiler.path_flows(leg))]),
                 compiler.group_ops([built.group, *built.classifiers])]
        ids = [leg.id for leg in legs]

        def active() -> None:
            for trail_id in ids:
                self._activate(trail_id)

        return legs[0], Change(steps, [active], ids)

    def _replan_multipath(self, head: int, reason: str, keep_intact: bool) -> Change:
        """Re-plan a multipath trail's legs and split, make-before-break.

        New and moved legs get their label paths first, then the group is
        modified to the new buckets, then (after a drain) the old paths go.
        Legs whose path is unchanged keep their label. With `keep_intact` the
        legs whose path still works stay as they are (a failure elsewhere).
        """
        legs = self._leg_trails(head)
        if not legs or legs[0].id != head:
            return Change()
        first = legs[0]
        view = PolicyView(self.policy, self.topo)
        profile = self.policy.app(first.app)
        if (first.src_mac not in self.topo.hosts or first.dst_mac not in self.topo.hosts) \
                and all(self._path_intact(leg) for leg in legs):
            return Change()  # from before a restart: hosts not seen yet
        try:
            src, dst = self._host(first.src_mac), self._host(first.dst_mac)
            if profile is None or not self._wants_multipath(profile, src, dst):
                return self._remove_multipath(head, f"{reason}; the application is not split "
                                              "any more", "removed")
            keep = [leg.hops for leg in legs if keep_intact and self._path_intact(leg)]
            paths = self._plan_legs(view, profile, src, dst, keep)
        except (NoPathError, TopologyError) as exc:
            change = self._remove_multipath(head, f"{reason}; no new path: {exc}", "removed")
            if profile is not None and first.src_mac in self.topo.hosts \
                    and first.dst_mac in self.topo.hosts:
                change.merge(self._block(profile, self._host(first.src_mac),
                                         self._host(first.dst_mac)))
            return change
        # Legs keep their record (and label) where the path is unchanged; the head
        # (lease, counters, classifier cookie) always stays.
        slots: list[Trail | None] = [None] * len(paths)
        spare = list(legs)
        for i, path in enumerate(paths):
            same = next((leg for leg in spare if leg.hops == path), None)
            if same is not None:
                slots[i] = same
                spare.remove(same)
        if first in spare:
            free = next((i for i, leg in enumerate(slots) if leg is None), len(slots) - 1)
            if slots[free] is not None:
                spare.append(slots[free])  # type: ignore[arg-type]
            slots[free] = first
            spare.remove(first)
        for i in range(len(slots)):
            if slots[i] is None and spare:
                slots[i] = spare.pop(0)
        at = slots.index(first)  # the head leads the legs, whichever path it has
        slots.insert(0, slots.pop(at))
        paths.insert(0, paths.pop(at))
        rate = self._multipath_rate(head, self.clock())
        weights = self._leg_weights(profile, paths, rate, bundles.own_load(legs, rate))
        fields = self._app_fields(view, profile)
        now = self.clock()
        new_legs: list[Trail] = []
        moved: list[tuple[Trail, Trail]] = []
        for i, (path, leg, weight) in enumerate(zip(paths, slots, weights, strict=True)):
            extra = bundles.leg_extra(leg.extra if leg else {}, head, weight)
            cap = fields.get("rate_cap", 0) if i == 0 else 0
            if leg is None:
                new = Trail(self.store.next_id(), self.labels.allocate(), src.mac, dst.mac,
                            src.ip, dst.ip, path, app=profile.name, created=now, grouped=True,
                            extra=extra, **{**fields, "rate_cap": 0})
            elif leg.hops != path:
                new = leg.evolve(label=self.labels.allocate(), hops=path,
                                 state=TrailState.REROUTING, version=leg.version + 1,
                                 extra=extra, **{**fields, "rate_cap": cap})
                moved.append((leg, new))
            else:
                new = leg.evolve(version=leg.version + 1, extra=extra,
                                 **{**fields, "rate_cap": cap})
            new_legs.append(new)
        old_weights = [bundles.weight_of(leg) for leg in legs]
        if not moved and not spare and len(new_legs) == len(legs) \
                and all(getattr(first, k) == v for k, v in fields.items() if k != "rate_cap") \
                and first.rate_cap == new_legs[0].rate_cap \
                and not splits.changed(old_weights, weights, bundles.REWEIGHT_MIN):
            return Change()
        for leg in spare:
            self.store.delete(leg.id, "removed")
        for leg in new_legs:
            self.store.put(leg)
        self._legs[head] = [leg.id for leg in new_legs]
        self.record("reroute", f"multipath trail {head} {first.src_ip} -> {first.dst_ip} "
                    f"re-planned ({reason}): " + "; ".join(
                        f"label {leg.label} weight {bundles.weight_of(leg):.2f} via "
                        f"{self._path_text(leg)}" for leg in new_legs), head)
        return self._multipath_steps(legs, new_legs, moved, spare)

    def _multipath_steps(self, legs: list[Trail], new_legs: list[Trail],
                         moved: list[tuple[Trail, Trail]], dropped: list[Trail]) -> Change:
        """Install a re-planned multipath trail (see _replan_multipath)."""
        added = [leg for leg in new_legs if leg.id not in {old.id for old in legs}]
        paths = [f for _, new in moved for f in compiler.path_flows(new)]
        paths += [f for leg in added for f in compiler.path_flows(leg)]
        first, head = legs[0], new_legs[0]
        built = bundles.specs(new_legs)
        old_classifiers = bundles.specs(legs).classifiers
        meters = bundles.meter_ops(head, modify=bool(first.rate_cap)) \
            if head.rate_cap != first.rate_cap else []
        ingress = [replace(built.group, modify=True),
                   *(f for f in built.classifiers if f not in old_classifiers)]
        stale: list[compiler.Op] = [compiler.delete_exact(f) for f in old_classifiers
                                    if f.key not in {c.key for c in built.classifiers}]
        for old, new in moved:
            kept = {f.key for f in compiler.trail_flows(new)}
            stale += [compiler.delete_exact(f) for f in compiler.trail_flows(old)
                      if f.key not in kept]
        for leg in dropped:
            stale += compiler.remove_ops(leg)
        if first.rate_cap and not head.rate_cap:
            stale.append(MeterDelete(first.ingress.dpid, compiler.meter_id(first)))
        steps = [compiler.group_ops([*meters, *paths]), compiler.group_ops(ingress)]
        stale_steps = [compiler.group_ops(stale)]
        self._drop_gone_switches(steps + stale_steps)  # the old paths' switches may be gone
        steps = [step for step in steps if step]
        drain = {len(steps): DRAIN} if stale_steps[0] and steps else {}
        steps += [step for step in stale_steps if step]
        labels = [old.label for old, _ in moved] + [leg.label for leg in dropped]
        ids = [leg.id for leg in new_legs]

        def finish() -> None:
            for trail_id in ids:
                self._activate(trail_id)
            for label in labels:
                self.labels.release(label)

        return Change(steps, [finish], pause_before=drain)

    def _remove_multipath(self, head: int, reason: str, note: str) -> Change:
        """Delete a multipath trail: classifier and group, then every leg's flows."""
        legs = self._leg_trails(head)
        self._legs.pop(head, None)
        self._reweighed.pop(head, None)
        if not legs:
            return Change()
        first = legs[0]
        for leg in legs:
            self.store.delete(leg.id, note)
            self.labels.release(leg.label)
        key = (first.app, first.src_mac, first.dst_mac)
        if self._by_pair.get(key) == head:
            del self._by_pair[key]
        self.record("trail-removed", f"{first.app} multipath trail {head} {first.src_ip} -> "
                    f"{first.dst_ip} ({len(legs)} paths) removed: {reason}", head)
        dpid = first.ingress.dpid
        ingress: list[compiler.Op] = [
            FlowDelete(dpid, trail_cookie(head), COOKIE_MASK_ALL, TABLE_CLASSIFY),
            GroupDelete(dpid, bundles.group_id(head))]
        if first.rate_cap:
            ingress.append(MeterDelete(dpid, compiler.meter_id(first)))
        steps = [compiler.group_ops(ingress),
                 compiler.group_ops(op for leg in legs for op in compiler.remove_ops(leg))]
        self._drop_gone_switches(steps)
        return Change([step for step in steps if step])

    def _multipath_ingress(self, dpid: int) -> list[compiler.Op]:
        """Meters, groups and classifiers of the multipath trails entering at `dpid`."""
        ops: list[compiler.Op] = []
        for head in sorted(self._legs):
            first = self.store.get(head)  # the head alone says where the trail enters
            if first is not None and first.ingress.dpid == dpid \
                    and first.state not in (TrailState.REMOVED, TrailState.FAILED):
                ops += bundles.ingress_ops(self._leg_trails(head))
        return ops

    def _multipath_rate(self, head: int, now: float) -> float:
        """A multipath trail's smoothed bit/s (its head's classifiers count it all; 0 if
        unmeasured). Smoothed: the split follows the load, not its bursts."""
        usage = self.telemetry.trail_usage(head, now)
        return usage.bps if usage is not None else 0.0

    def _classifiers_of(self, trail: Trail) -> list[FlowSpec]:
        """A trail's ingress classifiers (a multipath trail's head: into its group)."""
        if trail.id in self._legs:
            legs = self._leg_trails(trail.id)
            return list(bundles.specs(legs).classifiers) if legs else []
        return compiler.classifier_flows(trail)

    def _reweigh_multipath(self, now: float) -> Change:
        """Move each multipath trail's split to its measured load (a group modify).

        Only trails that carry traffic, are not pinned and would see a weight
        move by bundles.REWEIGHT_MIN or more change: a modify re-hashes flows.
        After a change the split holds for bundles.REWEIGHT_HOLD periods, until
        the smoothed link loads show where the flows went (else it oscillates).
        """
        change = Change()
        hold = bundles.REWEIGHT_HOLD * self.telemetry.config.period
        for head in sorted(self._legs):
            legs = self._leg_trails(head)
            if not legs or any(is_pinned(leg) for leg in legs) \
                    or any(leg.state is not TrailState.ACTIVE for leg in legs) \
                    or now - self._reweighed.get(head, -hold) < hold:
                continue
            profile = self.policy.app(legs[0].app)
            rate = self._multipath_rate(head, now)
            if profile is None or rate <= 0:
                continue
            old = [bundles.weight_of(leg) for leg in legs]
            weights = self._leg_weights(profile, [leg.hops for leg in legs], rate,
                                        bundles.own_load(legs, rate))
            if not splits.changed(old, weights, bundles.REWEIGHT_MIN):
                continue
            new_legs = [leg.evolve(version=leg.version + 1,
                                   extra=bundles.leg_extra(leg.extra, head, w))
                        for leg, w in zip(legs, weights, strict=True)]
            try:
                for leg in new_legs:
                    self.store.put(leg)
            except StaleWrite:
                continue  # changed meanwhile; the next period looks again
            self.reweights += 1
            self._reweighed[head] = now
            self.record("reweight", f"multipath trail {head} split "
                        + " / ".join(f"{w:.2f}" for w in weights) + " (was "
                        + " / ".join(f"{w:.2f}" for w in old) + f") for {rate / 1e6:.1f} Mbit/s",
                        head)
            if legs[0].ingress.dpid in self.topo.switches:
                change.merge(Change([{legs[0].ingress.dpid: [bundles.group_modify(new_legs)]}]))
        return change

    # services -----------------------------------------------------------
    def service_by_vip(self, ip: str) -> Service | None:
        """The service whose virtual address is `ip`, if any."""
        return next((s for s in self.policy.services if str(s.vip) == ip), None)

    def service_by_mac(self, mac: str) -> Service | None:
        """The service whose virtual MAC is `mac`, if any."""
        return next((s for s in self.policy.services if s.mac == mac), None)

    def _member_ips(self, service: Service) -> dict[str, str]:
        """ip -> pool member name."""
        ips = {}
        for name in service.pool:
            spec = self.policy.nodes.get(name)
            if spec is not None and spec.ip:
                ips[spec.ip] = name
        return ips

    def _service_fields(self, service: Service, dst: Host) -> dict[str, Any]:
        """Trail fields of a service trail: to a pool member (dst is one) or a reply."""
        if dst.ip in self._member_ips(service):
            return {"grouped": True, "rewrite": (("eth_dst", dst.mac), ("ipv4_dst", dst.ip))}
        match: tuple[tuple[tuple[str, int], ...], ...] = ()
        if service.port is not None:
            proto = service.port.proto
            match = ((("ip_proto", IP_PROTO[proto]), (f"{proto}_src", service.port.port)),)
        return {"match": match, "priority": compiler.PRIO_SERVICE,
                "rewrite": (("eth_src", service.mac), ("ipv4_src", str(service.vip)))}

    def _service_matches(self, service: Service, client: Host) -> list[dict[str, int | str]]:
        match: dict[str, int | str] = {"in_port": client.port, "eth_type": ETH_TYPE_IPV4,
                                       "eth_src": client.mac, "eth_dst": service.mac,
                                       "ipv4_dst": str(service.vip)}
        if service.port is not None:
            match["ip_proto"] = IP_PROTO[service.port.proto]
            match[f"{service.port.proto}_dst"] = service.port.port
        return [match]

    def _binding_group(self, binding: ServiceBinding, modify: bool = True) -> GroupSpec | None:
        """The binding's select group as it should be now; None if unchanged."""
        members = []
        service = binding.service
        for ip, name in self._member_ips(service).items():
            member = self.topo.host_by_ip(ip)
            if member is None:
                continue
            there = self.trail_for_pair(binding.client, member.mac, service.name)
            back = self.trail_for_pair(member.mac, binding.client, service.name)
            if there is not None and back is not None and there.ingress.dpid == binding.dpid:
                members.append((there, service.weight_of(name)))
        group = compiler.service_group(binding.dpid, binding.group_id, members, modify)
        if modify and group == binding.group:
            return None
        binding.group = group
        return group

    def _member_trails(self, service: Service, client: Host) -> Change:
        """Trails client -> member and member -> client for every placeable member."""
        change = Change()
        for ip, name in self._member_ips(service).items():
            member = self.topo.host_by_ip(ip)
            if member is None or member.mac == client.mac:
                continue
            made: list[Trail] = []
            try:
                for src, dst in ((client.mac, member.mac), (member.mac, client.mac)):
                    trail, extra = self.ensure_trail(src, dst, service.name)
                    made.append(trail)
                    change.merge(extra)
            except NoPathError:
                self.record("service", f"{service.name}: pool member {name} left out for "
                            f"client {client.ip}: no trail")
                for trail in made:
                    change.merge(self.remove_trail(trail.id, "its pool member is unreachable"))
        return change

    def ensure_service(self, client_mac: str, name: str) -> Change:
        """Client `client_mac` uses service `name`: trails to the pool, select group, classifier.

        The group holds one bucket per pool member that is known and reachable
        both ways; members that appear later are added with a group modify.
        """
        service = self.policy.service(name)
        client = self.topo.hosts.get(client_mac)
        if service is None or client is None:
            return Change()
        binding = self._bindings.get((name, client_mac))
        if binding is not None:
            return self._refresh_binding(binding)
        change = self._member_trails(service, client)
        if self._group_free:
            group_id = self._group_free.popleft()
        else:
            group_id, self._group_next = self._group_next, self._group_next + 1
        self._binding_ids += 1
        cookie = make_cookie(KIND_SERVICE, self._binding_ids)
        flows = compiler.service_classifiers(client.dpid, self._service_matches(service, client),
                                             group_id, cookie)
        binding = ServiceBinding(service, client.mac, client.dpid, group_id, cookie, flows,
                                 GroupSpec(client.dpid, group_id, "select"))
        self._bindings[(name, client.mac)] = binding
        group = self._binding_group(binding, modify=False)
        assert group is not None
        self.record("service", f"{name}: client {client.ip} -> group {group_id} on "
                    f"{self.topo.switch_name(client.dpid)} with {len(group.buckets)} of "
                    f"{len(service.pool)} pool members")
        return change.merge(Change([{}, {client.dpid: [group, *flows]}]))

    def _refresh_binding(self, binding: ServiceBinding) -> Change:
        """Add pool members that became placeable; modify the group if it changed."""
        client = self.topo.hosts.get(binding.client)
        if client is None or self._bindings.get((binding.service.name, binding.client)) \
                is not binding:
            return Change()
        change = self._member_trails(binding.service, client)
        group = self._binding_group(binding)
        if group is not None and binding.dpid in self.topo.switches:
            change.merge(Change([{}, {binding.dpid: [group]}]))
        return change

    def _remove_binding(self, binding: ServiceBinding, reason: str) -> Change:
        """Drop a client's classifier and group, then its service trails."""
        name = binding.service.name
        if self._bindings.get((name, binding.client)) is not binding:
            return Change()
        del self._bindings[(name, binding.client)]
        self._group_free.append(binding.group_id)
        self.record("service", f"{name}: client {binding.client} removed: {reason}")
        change = Change()
        if binding.dpid in self.topo.switches:
            change.merge(Change([{binding.dpid: [
                FlowDelete(binding.dpid, binding.cookie, COOKIE_MASK_ALL),
                GroupDelete(binding.dpid, binding.group_id)]}]))
        later = Change()
        for (app, src, dst), trail_id in list(self._by_pair.items()):
            if app == name and binding.client in (src, dst):
                later.merge(self.remove_trail(trail_id, reason))
        return change.merge(Change([{}, *later.steps], later.done))

    def services_view(self) -> list[dict[str, object]]:
        """Clients of each service and the pool members in their group."""
        out = []
        for (name, client), binding in sorted(self._bindings.items()):
            host = self.topo.hosts.get(client)
            members = []
            for bucket in binding.group.buckets:
                dst = next((a.value for a in bucket.actions
                            if getattr(a, "field", None) == "ipv4_dst"), None)
                members.append({"ip": dst, "weight": bucket.weight})
            out.append({"service": name, "client": host.ip if host else client,
                        "dpid": dpid_str(binding.dpid), "group_id": binding.group_id,
                        "members": members})
        return out

    # views --------------------------------------------------------------
    def topology_view(self) -> dict[str, object]:
        """JSON form of the topology (GET /api/v1/topology), with measured link load."""
        topo = self.topo
        loads = {lk.key: lk for lk in self.telemetry.link_loads(topo, self.clock())}
        return {
            "switches": [
                {"dpid": dpid_str(sw.dpid), "name": topo.switch_name(sw.dpid),
                 "ports": [{"port": p.number, "name": p.name, "up": p.up,
                            "speed_bps": p.speed_bps} for _, p in sorted(sw.ports.items())]}
                for _, sw in sorted(topo.switches.items())
            ],
            "links": [
                {"src": dpid_str(lk.src), "src_port": lk.src_port, "dst": dpid_str(lk.dst),
                 "dst_port": lk.dst_port, "capacity": topo.link_capacity(lk.src, lk.src_port),
                 "load": round(loads[(lk.src, lk.src_port)].bps)
                 if (lk.src, lk.src_port) in loads else 0,
                 "utilization": round(loads[(lk.src, lk.src_port)].utilisation, 4)
                 if (lk.src, lk.src_port) in loads else 0.0,
                 "latency": lk.latency}
                for lk in topo.links()
            ],
            "hosts": [
                {"mac": h.mac, "ip": h.ip, "dpid": dpid_str(h.dpid), "port": h.port}
                for h in sorted(topo.hosts.values(), key=lambda h: ipaddress.IPv4Address(h.ip))
            ],
        }

    def trail_view(self, trail: Trail) -> dict[str, object]:
        """JSON form of one trail, with switch names beside dpids."""
        data = trail.to_dict()
        data["pinned"] = is_pinned(trail)
        usage = self.telemetry.trail_usage(trail.id, self.clock())
        data["rate_bps"] = round(usage.bps) if usage is not None else 0  # smoothed, ingress
        for hop, raw in zip(data["hops"], trail.hops, strict=False):  # type: ignore[arg-type]
            hop["switch"] = self.topo.switch_name(raw.dpid)
        head = bundles.head_of(trail)
        legs = self._legs.get(head, []) if head is not None else []
        if head is not None and trail.id in legs:
            data["multipath"] = {"trail": head, "leg": legs.index(trail.id), "legs": len(legs),
                                 "weight": round(bundles.weight_of(trail), 6)}
        return data
