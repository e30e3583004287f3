"""The scent-trail controller app (os-ken): OpenFlow events in, changes out.

A shim, as Faucet's faucet.py is to valve.py: handlers parse OpenFlow events
and queue a job; the worker (apps/runner.py) asks sdnscent's ScentController
(the core) what to do, and the runner sends the answer through the channel
(apps/channel.py: an xid per message, a barrier per switch and step) in
per-switch order, so a slow or dead switch delays only the changes that touch
it. Failed steps go back to the core. Leadership is apps/leadership.py, the
operator's REST actions apps/operator.py, the OVSDB southbound apps/ovsdb.py;
every message is built in apps/ofmsg.py.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil
from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import (
    CONFIG_DISPATCHER,
    DEAD_DISPATCHER,
    MAIN_DISPATCHER,
    set_ev_cls,
)
from os_ken.lib.packet import arp, dhcp, ethernet, icmpv6, ipv4, ipv6, packet, udp
from os_ken.ofproto import ofproto_v1_3
from werkzeug.serving import make_server

from sdnscent.allocator import AllocatorError, UsageMeter, open_allocator
from sdnscent.cache import CachedStore
from sdnscent.compiler import DHCP_CLIENT_PORT, DHCP_SERVER_PORT, Op
from sdnscent.connections import ConnectionCount
from sdnscent.controller import Change, Decision, ScentController
from sdnscent.discovery import expire_heard
from sdnscent.dra import DraConfig
from sdnscent.edgemetrics import EdgeCollector
from sdnscent.flows import (
    COOKIE_MAGIC,
    COOKIE_MASK_KIND,
    COOKIE_MASK_OURS,
    ETH_TYPE_ARP,
    ETH_TYPE_IPV4,
    ETH_TYPE_IPV6,
    ETH_TYPE_LLDP,
    ICMPV6_NA,
    ICMPV6_NS,
    KIND_HOST_TRAFFIC,
    KIND_TRAIL,
    TABLE_CLASSIFY,
    TABLE_FORWARD,
    FlowSpec,
    MeterSpec,
    cookie_kind,
    cookie_trail_id,
    make_cookie,
)
from sdnscent.hosttraffic import HostTrafficCollector, edge_kind
from sdnscent.metrics import ControllerCollector, Metrics, TimedStore
from sdnscent.pipeline import COOKIE_ID_MAX, KIND_FLOW, TABLE_FLOWS
from sdnscent.policyfile import load_policy
from sdnscent.protection import bfd_options
from sdnscent.ratelimit import RateLimiter
from sdnscent.rest import create_app
from sdnscent.store import MemoryStore, TrailStore, open_store, redact
from sdnscent.telemetry import NodeLoadReader, PortCounters
from sdnscent.topology import Port, dpid_str

from . import discovery, ofmsg
from .channel import DUMP_TIMEOUT, Channel
from .leadership import Leadership
from .operator import Operator
from .runner import ChangeRunner, Offload, Worker
from .settings import SETTINGS

LOG = logging.getLogger("sdnscent.app")
WATCH_INTERVAL = 0.05  # s between looks for closed switch connections
STATS_SETTLE = 0.2  # of a stats period: counter replies are in before the engine runs
EDGE_INTERVAL = 0.25  # s between decisions on port-security claims (core.edge)


class ScentTrailApp(app_manager.OSKenApp):
    """Routes every host pair over an MPLS-labelled scent trail."""

    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = SETTINGS
        self.metrics = Metrics()
        store: TrailStore = open_store(SETTINGS.store_url)
        # A shared store (Redis) gets an in-process copy in front of it, and
        # controllers sharing it elect one master (docs/scaleout.rst).
        self.shared = not isinstance(store, MemoryStore)
        if self.shared:
            store = CachedStore(TimedStore(store, self.metrics.store))  # type: ignore[arg-type]
        self.node_id = SETTINGS.controller_id or "sdnscent"
        self.ctrl = ScentController(store, SETTINGS.default_link_capacity,
                                    switch_grace=SETTINGS.switch_grace,
                                    trail_lease=SETTINGS.trail_lease,
                                    lease_slack=2 * SETTINGS.stats_interval + 1,
                                    stats_interval=SETTINGS.stats_interval,
                                    routing=SETTINGS.routing,
                                    dra=DraConfig(link_high=SETTINGS.link_high,
                                                  link_low=SETTINGS.link_low,
                                                  hold_time=SETTINGS.move_hold,
                                                  period=SETTINGS.stats_interval),
                                    protection=SETTINGS.protection)
        # the placement's exact assignment runs on a thread of its own, not in the period
        self.ctrl.exact_solver = Offload(self.ctrl.lock)
        self.metrics.registry.register(ControllerCollector(self.ctrl))
        # The edge (docs/security.rst): signed LLDP, links confirmed both ways, port security.
        self.discovery = discovery.Discovery(
            discovery.LldpAuth(SETTINGS.lldp_secret or secrets.token_bytes(32),
                               max_age=SETTINGS.link_timeout),
            confirm_window=SETTINGS.link_timeout)
        edge = self.ctrl.edge
        edge.discovery, edge.enabled = self.discovery, SETTINGS.port_security
        edge.mac_limit, edge.probe_timeout = SETTINGS.port_mac_limit, SETTINGS.probe_timeout
        self.metrics.registry.register(EdgeCollector(self.ctrl))
        self.metrics.registry.register(HostTrafficCollector(self.ctrl.traffic, self.ctrl.lock))
        # Agent samples must carry an HMAC under their node's key (docs/security.rst).
        self.ctrl.node_reader = NodeLoadReader(SETTINGS.telemetry_keys)
        self._packet_ins = RateLimiter(SETTINGS.packet_in_rate, SETTINGS.packet_in_burst) \
            if SETTINGS.packet_in_rate else None
        self.allocator = open_allocator(SETTINGS.allocator)
        self._usage = UsageMeter()
        self._cpus = psutil.cpu_count() or 1
        self._memory = psutil.virtual_memory().total
        if SETTINGS.policy_file:
            self.ctrl.set_policy(load_policy(SETTINGS.policy_file))  # no switches yet
        self.ctrl.recover()  # trails, labels and hosts of a persistent store, after a restart
        if self.shared:  # a writer that died between a trail and its index entries
            store.rebuild_index()
        self._stopping = threading.Event()
        self.channel = Channel(self.metrics.sent)
        self.leadership = Leadership(self.ctrl, self.node_id, SETTINGS.leader_ttl, self.shared,
                                     lambda job: self._submit("take-over", job))
        self.leadership.on_master = self._audit_all
        self.worker = Worker()
        self.runner = ChangeRunner(self.ctrl, self.channel, lambda: self.leader, self._stopping)
        self.operator = Operator(self.ctrl, self.worker, self.runner, self.channel,
                                 lambda: self.leader, self._read_flows, SETTINGS.policy_file)
        self._api_server: Any = None
        self.mtu: Any = None  # apps.ovsdb.MtuKeeper with --ovsdb
        if SETTINGS.ovsdb_targets and (SETTINGS.link_mtu or SETTINGS.bfd_interval):
            from .ovsdb import MtuKeeper, OvsdbSouthbound  # the OVS IDL only where used

            bfd = bfd_options(SETTINGS.bfd_interval) if SETTINGS.bfd_interval else None
            self.mtu = MtuKeeper(OvsdbSouthbound(list(SETTINGS.ovsdb_targets)),
                                 SETTINGS.link_mtu, self._link_ends, self._record_ovsdb, bfd)

    @property
    def datapaths(self) -> dict[int, Any]:
        """Connected switches by dpid."""
        return self.channel.datapaths

    @property
    def leader(self) -> bool:
        """True while this controller is the master."""
        return self.leadership.leader

    # lifecycle ----------------------------------------------------------
    def start(self) -> Any:
        """Start the event loop, the worker, timers and the REST API."""
        thread = super().start()
        loops = [(self.worker.run, "worker"), (self._lldp_loop, "lldp"),
                 (self._stats_loop, "stats"), (self._watch_loop, "watch"),
                 (self._edge_loop, "edge")]
        if self.shared:
            self.leadership.elect()  # master at once if nobody else is
            loops.append((lambda: self.leadership.loop(self._stopping), "leader"))
        if self.mtu is not None:
            loops.append((self.mtu.run, "ovsdb"))
        for target, name in loops:
            threading.Thread(target=target, name=f"sdnscent-{name}", daemon=True).start()
        if self.settings.api_listen:
            host, _, port = self.settings.api_listen.rpartition(":")
            host = host.strip("[]") or "127.0.0.1"  # [::1]:8080 is IPv6 loopback
            api = create_app(self.ctrl, token=self.settings.api_token,
                             apply_policy=self.operator.apply_policy, status=self.status,
                             flow_stats=self.operator.trail_flow_stats,
                             remove_trail=self.operator.remove_trail,
                             replan_trail=self.operator.replan_trail,
                             pin_trail=self.operator.pin_trail,
                             metrics=self.metrics.render,
                             open_reads=self.settings.api_open_reads,
                             audit=self.operator.audit_now)
            self._api_server = make_server(host, int(port), api, threaded=True)
            threading.Thread(target=self._api_server.serve_forever, name="sdnscent-api",
                             daemon=True).start()
            LOG.info("REST API on http://%s/api/v1", self.settings.api_listen)
        return thread

    def stop(self) -> None:
        """Stop timers, the worker and the REST API; hand the master role on."""
        self._stopping.set()
        self.worker.stop()
        self.leadership.release()
        if self.mtu is not None:
            self.mtu.stop()
        if self._api_server is not None:
            self._api_server.shutdown()
        super().stop()

    def status(self) -> dict[str, Any]:
        """This controller as GET /api/v1/controller shows it."""
        info: dict[str, Any] = {
            "id": self.node_id, "store": redact(self.settings.store_url),
            "switches": len(self.datapaths), "trail_lease": self.settings.trail_lease}
        info.update(self.leadership.status())
        return info

    def _audit_all(self) -> None:
        """After a take-over: claim every switch and audit it (its port list starts it)."""
        for dp in list(self.datapaths.values()):
            self._request_role(dp)
            self.channel.send(dp, ofmsg.port_desc_request(dp))

    def _request_role(self, dp: Any) -> None:
        """Tell a switch whether we are its master or a slave (shared stores only)."""
        if self.shared:
            master, generation = self.leadership.role()
            self.channel.send(dp, ofmsg.role_request(dp, master, generation))

    @set_ev_cls(ofp_event.EventOFPRoleReply, MAIN_DISPATCHER)
    def _role_reply(self, ev: Any) -> None:
        msg = ev.msg
        LOG.info("switch %s: role %d, generation %d", dpid_str(msg.datapath.id), msg.role,
                 msg.generation_id)

    def reload_policy_file(self) -> None:
        """SIGHUP: read --policy again; a bad file changes nothing."""
        self.operator.reload_policy_file()

    @property
    def job_errors(self) -> int:
        """Jobs and changes that failed with an exception (logged)."""
        return self.worker.errors + self.runner.errors

    # the worker and the runner ------------------------------------------------
    def _submit(self, name: str, job: Callable[[], None]) -> None:
        self.worker.submit(name, job)

    def _decide(self, decide: Callable[[], Change]) -> None:
        self.runner.decide(decide)

    def _execute(self, change: Change, then: Callable[[bool], None] | None = None) -> None:
        self.runner.execute(change, then)

    def _packet_out(self, dp: Any, port: int, data: bytes, in_port: int | None = None) -> None:
        if self.leader:
            self.channel.send(dp, ofmsg.packet_out(dp, port, data, in_port))

    # switches and ports -----------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev: Any) -> None:
        dp = ev.msg.datapath
        dp.send_msg(ofmsg.port_desc_request(dp))

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def _port_desc(self, ev: Any) -> None:
        dp = ev.msg.datapath
        ofp = dp.ofproto
        ports, name = [], ""
        for p in ev.msg.body:
            if p.port_no == ofp.OFPP_LOCAL:
                name = _decode(p.name)
            elif p.port_no <= ofp.OFPP_MAX:
                ports.append(_port(ofp, p))
        if self.datapaths.get(dp.id) is not dp:
            self.channel.attach(dp)
        self._request_role(dp)
        if self.leader:  # the table is read on a thread of its own: the worker goes on
            threading.Thread(target=self._audit_switch, args=(dp, ports, name),
                             name=f"sdnscent-audit-{dp.id:x}", daemon=True).start()

    def _audit_switch(self, dp: Any, ports: list[Port], name: str) -> None:
        installed = self._read_flows(dp)

        def job() -> None:
            if self.datapaths.get(dp.id) is not dp or not self.leader:
                return
            with self.ctrl.lock:
                change = self.ctrl.switch_enter(dp.id, ports, name, installed)
            started = time.perf_counter()
            self._execute(change, lambda ok: self._switch_ready(dp.id, name, change, started,
                                                                ok))

        self._submit("switch-enter", job)

    def _switch_ready(self, dpid: int, name: str, change: Change, started: float,
                      ok: bool) -> None:
        if ok:
            self.runner.settled(dpid)
        ops = sum(len(o) for step in change.steps for o in step.values())
        if ops:
            ms = (time.perf_counter() - started) * 1000
            with self.ctrl.lock:
                self.ctrl.record("switch-ready", f"switch {name or dpid_str(dpid)}: {ops} "
                                 f"operations {'confirmed' if ok else 'sent, some failed,'} "
                                 f"in {ms:.0f} ms ({ops / max(ms, 1e-3) * 1000:.0f}/s)")
        for other in list(self.datapaths):  # neighbours can now see the new switch
            self._send_lldp(other)

    def _read_flows(self, dp: Any) -> list[FlowSpec] | None:
        """Our flows on the switch (cookie 0x5ce7...), as FlowSpecs; None if unreadable."""
        entries = self.channel.dump_flows(dp, COOKIE_MAGIC << 48, COOKIE_MASK_OURS)
        if entries is None:
            LOG.warning("no flow table from %s within %.0f s: wiping our flows instead of "
                        "auditing", dpid_str(dp.id), DUMP_TIMEOUT)
            return None
        try:
            return [ofmsg.flow_from_stats(dp, e) for e in entries]
        except ofmsg.UnparsedFlow as exc:
            LOG.warning("flow table of %s not audited (%s): wiping our flows instead",
                        dpid_str(dp.id), exc)
            return None

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev: Any) -> None:
        dp, msg = ev.msg.datapath, ev.msg
        port = _port(dp.ofproto, msg.desc)
        if msg.reason == dp.ofproto.OFPPR_DELETE:
            port = Port(port.number, port.name, port.hw_addr, port.speed_bps, up=False)

        def job() -> None:
            self._decide(lambda: self.ctrl.port_status(dp.id, port))
            if port.up:
                self._send_lldp(dp.id)

        self._submit("port-status", job)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _dead(self, ev: Any) -> None:
        if ev.datapath is not None and ev.datapath.id is not None:
            self._connection_lost(ev.datapath)

    def _watch_loop(self) -> None:
        """Notice closed connections within WATCH_INTERVAL (os-ken's own report of a
        dead switch can lag by up to a second, while traffic through it may be lost)."""
        while not self._stopping.wait(WATCH_INTERVAL):
            for dp in self.channel.closed():
                self._connection_lost(dp)

    def _connection_lost(self, dp: Any) -> None:
        if self.channel.detach(dp):  # its current connection, reported once
            self._submit("switch-leave", lambda: self._decide(
                lambda: self.ctrl.switch_leave(dp.id)))

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev: Any) -> None:
        self.channel.barrier_reply(ev.msg.datapath.id, ev.msg.xid)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def _error(self, ev: Any) -> None:
        msg = ev.msg
        dp = msg.datapath
        ofp = dp.ofproto

        def expected(op: Op) -> bool:
            """A meter is sent as an add and as a modify; one of them is refused."""
            return isinstance(op, MeterSpec) and msg.type == ofp.OFPET_METER_MOD_FAILED \
                and msg.code in (ofp.OFPMMFC_METER_EXISTS, ofp.OFPMMFC_UNKNOWN_METER)

        reason = _error_name(ofp, msg.type, msg.code)
        op = self.channel.error(dp.id, msg.xid, reason, expected)
        if op is None:
            LOG.warning("switch %s rejected message xid %d: %s", dpid_str(dp.id), msg.xid,
                        reason)
        elif not expected(op):
            LOG.warning("switch %s refused %s: %s", dpid_str(dp.id), type(op).__name__, reason)

    # discovery and the OVSDB southbound -----------------------------------------
    def _send_lldp(self, dpid: int) -> None:
        if not self.leader:
            return
        dp = self.datapaths.get(dpid)
        sw = self.ctrl.topo.switches.get(dpid)
        if dp is None or sw is None:
            return
        with self.ctrl.lock:  # never out of ports facing hosts: they would learn the frames
            ports = [p for p in sw.ports.values() if p.up and p.hw_addr
                     and not self.ctrl.edge.faces_hosts(dpid, p.number)]
        for port in ports:
            self._packet_out(dp, port.number,
                             self.discovery.auth.frame(dpid, port.number, port.hw_addr))

    def _lldp_loop(self) -> None:
        while not self._stopping.wait(self.settings.lldp_interval):
            for dpid in list(self.datapaths):
                self._send_lldp(dpid)
            self._submit("link-expiry", lambda: self._decide(self._expire_links))

    def _expire_links(self) -> Change:
        return self.ctrl.expire_links(self.settings.link_timeout)

    def _on_lldp(self, data: bytes, dpid: int, in_port: int) -> None:
        """Check a frame (signature, age, replay, host port); count links seen both ways."""
        change = Change()
        with self.ctrl.lock:
            directions = self.discovery.receive(data, dpid, in_port,
                                                self.ctrl.edge.faces_hosts)
            for src, src_port, dst, dst_port in directions:
                change.merge(self.ctrl.link_seen(src, src_port, dst, dst_port))
            parked = self.ctrl.release_parked(time.monotonic()) if change else []
        self._execute(change)
        if self.mtu is not None and directions:
            self.mtu.seen(directions[0][:2], directions[0][2:])
        for p in parked:  # a new link: packets that had no path may have one now
            self._on_ipv4(p.dpid, p.in_port, p.eth_src, p.eth_dst, p.ip_src, p.data,
                          p.received, p.deadline)

    def _edge_loop(self) -> None:
        while not self._stopping.wait(EDGE_INTERVAL):
            if self.leader:
                self._submit("edge", self._edge_tick)

    def _edge_tick(self) -> None:
        """Probe bound locations, settle claims (moves or drop rules), age LLDP memory."""
        with self.ctrl.lock:
            change, probes = self.ctrl.edge_tick()
            expire_heard(self.discovery, time.time())
        for out in probes:
            dp = self.datapaths.get(out.dpid)
            if dp is not None:
                self._packet_out(dp, out.port, ofmsg.arp_frame(out))
        self._execute(change)

    def _link_ends(self, dpid: int, port: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
        with self.ctrl.lock:
            link = self.ctrl.topo.link_from(dpid, port)
        return None if link is None else ((link.src, link.src_port), (link.dst, link.dst_port))

    def _record_ovsdb(self, message: str) -> None:
        with self.ctrl.lock:
            self.ctrl.record("ovsdb", message)

    # counters ------------------------------------------------------------
    def _stats_loop(self) -> None:
        settle = self.settings.stats_interval * STATS_SETTLE
        while not self._stopping.wait(self.settings.stats_interval - settle):
            self._submit("store-sync", self._maintain_store)
            if not self.leader:
                continue
            self._submit("leases", lambda: self._decide(self._leases))
            for dp in list(self.datapaths.values()):
                self.channel.send(dp, ofmsg.port_stats_request(dp))
                self.channel.send(dp, ofmsg.classifier_stats_request(
                    dp, make_cookie(KIND_TRAIL), COOKIE_MASK_KIND))
                self.channel.send(dp, ofmsg.classifier_stats_request(
                    dp, make_cookie(KIND_HOST_TRAFFIC), COOKIE_MASK_KIND))  # host traffic dropped
                self.channel.send(dp, ofmsg.flow_stats_request(  # an elephant's connections
                    dp, make_cookie(KIND_FLOW), COOKIE_MASK_KIND, TABLE_FLOWS))
            # the engine decides on these counters, not the last period's: the
            # replies take milliseconds, a period is a second
            if self._stopping.wait(settle):
                break
            self._submit("rebalance", self._rebalance)

    def _leases(self) -> Change:
        """Trails whose lease ran out go; failed trails whose back-off is over come back."""
        return self.ctrl.expire_trails().merge(self.ctrl.retry_failed())

    def _maintain_store(self) -> None:
        """After a store outage, write back what was held in memory."""
        store = self.ctrl.store
        if isinstance(store, CachedStore) and store.degraded:
            with self.ctrl.lock:
                written = store.sync()
                if not store.degraded:
                    self.ctrl.record("store", f"trail store back; {written} records written "
                                     "back from memory")

    def _rebalance(self) -> None:
        """One period of the resource allocation engine: move trails, size NF hosts."""
        with self.ctrl.lock:
            nodes = self.ctrl.computing_nodes()
        measured = {}
        now = time.time()
        for node in nodes:  # the cgroups the allocator manages, measured from here
            try:
                usage = self.allocator.usage(node)
            except AllocatorError as exc:
                LOG.debug("no usage of %s: %s", node, exc)
                continue
            if usage is not None:
                load = self._usage.host_load(node, usage, now, self._cpus, self._memory)
                if load is not None:
                    measured[node] = load
        with self.ctrl.lock:
            change, allocations = self.ctrl.rebalance(measured)
        self._execute(change)
        for allocation in allocations:
            try:
                limits = self.allocator.apply_allocation(allocation)
            except AllocatorError as exc:
                LOG.warning("allocation for %s not applied: %s", allocation.node, exc)
                continue
            with self.ctrl.lock:
                self.ctrl.record("allocation", f"{allocation.node}: cpu {limits.cpu} cores, "
                                 f"memory {limits.memory} bytes ({allocation.reason})")

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    def _port_stats(self, ev: Any) -> None:
        msg = ev.msg
        ofp = msg.datapath.ofproto
        stats = [PortCounters(p.port_no, p.rx_bytes, p.tx_bytes, p.rx_packets, p.tx_packets)
                 for p in msg.body if p.port_no <= ofp.OFPP_MAX]
        with self.ctrl.lock:
            self.ctrl.port_counters(msg.datapath.id, stats)

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def _flow_removed(self, ev: Any) -> None:
        """An ingress classifier timed out: the trail's lease may be over."""
        msg = ev.msg
        ofp = msg.datapath.ofproto
        trail_id = cookie_trail_id(msg.cookie)
        if trail_id is None or msg.table_id != TABLE_CLASSIFY or msg.reason not in (
                ofp.OFPRR_IDLE_TIMEOUT, ofp.OFPRR_HARD_TIMEOUT):
            return
        match = {k: v for k, v in msg.match.items() if not isinstance(v, tuple)}
        self._submit("flow-removed", lambda: self._decide(
            lambda: self.ctrl.classifier_idle(trail_id, match)))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _flow_stats(self, ev: Any) -> None:
        msg = ev.msg
        more = bool(msg.flags & msg.datapath.ofproto.OFPMPF_REPLY_MORE)
        if self.channel.flow_stats_reply(msg.datapath.id, msg.xid, msg.body, more):
            return  # a flow table read back for the audit
        stats = []
        edges = []
        connections = []
        for entry in ev.msg.body:
            trail_id = cookie_trail_id(entry.cookie)
            if trail_id is not None:
                stats.append((trail_id, entry.match.get("in_port"), entry.packet_count,
                              entry.byte_count))
            elif edge_kind(entry.cookie) is not None:
                edges.append((entry.cookie, entry.packet_count))
            elif cookie_kind(entry.cookie) == KIND_FLOW and entry.table_id == TABLE_FLOWS:
                match = entry.match
                connections.append(ConnectionCount(
                    entry.cookie & COOKIE_ID_MAX, int(match.get("tcp_src", 0)),
                    int(match.get("tcp_dst", 0)), entry.byte_count))
        with self.ctrl.lock:
            if connections:
                self.ctrl.connection_counters(msg.datapath.id, connections)
            elif stats or not edges:
                self.ctrl.classifier_counters(msg.datapath.id, stats)
            if edges:
                self.ctrl.edge_stats(msg.datapath.id, edges)

    # packets -------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev: Any) -> None:
        received = time.monotonic()
        msg = ev.msg
        dp = msg.datapath
        in_port = msg.match["in_port"]
        if self._packet_ins is not None and not self._packet_ins.allow((dp.id, in_port)):
            self.metrics.packet_ins_limited.inc()  # a flood: dropped before parsing
            return
        pkt = packet.Packet(msg.data)
        eth = pkt.get_protocol(ethernet.ethernet)
        self.metrics.packet_ins.labels(_packet_kind(msg, eth)).inc()
        if eth is None:
            return
        if eth.ethertype == ETH_TYPE_LLDP:
            self._submit("lldp", lambda: self._on_lldp(msg.data, dp.id, in_port))
        elif eth.ethertype == ETH_TYPE_ARP:
            req = pkt.get_protocol(arp.arp)
            if req is not None:
                self._submit("arp", lambda: self._on_arp(dp.id, in_port, req, received))
        elif msg.table_id == TABLE_FORWARD:
            self._submit("label-miss", lambda: self._on_label_miss(dp.id, in_port, msg.data))
        elif eth.ethertype == ETH_TYPE_IPV4 and _dhcp_port(pkt) is not None:
            ip, boot = pkt.get_protocol(ipv4.ipv4), pkt.get_protocol(dhcp.dhcp)
            if ip is not None and boot is not None:
                to_server = _dhcp_port(pkt) == DHCP_SERVER_PORT
                self._submit("dhcp", lambda: self._on_dhcp(dp.id, in_port, eth.src, ip.src,
                                                           to_server, boot.chaddr, msg.data))
        elif eth.ethertype == ETH_TYPE_IPV4:
            ip = pkt.get_protocol(ipv4.ipv4)
            if ip is not None and not _is_multicast(eth.dst):
                self._submit("ipv4", lambda: self._on_ipv4(
                    dp.id, in_port, eth.src, eth.dst, ip.src, msg.data, received))
        elif eth.ethertype == ETH_TYPE_IPV6:
            ip6 = pkt.get_protocol(ipv6.ipv6)
            icmp = pkt.get_protocol(icmpv6.icmpv6)
            if ip6 is None:
                return
            if icmp is not None and icmp.type_ in (ICMPV6_NS, ICMPV6_NA):
                target = getattr(icmp.data, "dst", None)
                if target is not None:
                    self._submit("nd", lambda: self._on_nd(dp.id, in_port, icmp.type_, eth.src,
                                                           ip6.src, target, received))
            elif not _is_multicast(eth.dst):
                self._submit("ipv6", lambda: self._on_ipv4(
                    dp.id, in_port, eth.src, eth.dst, ip6.src, msg.data, received))

    def _on_arp(self, dpid: int, in_port: int, req: Any, received: float) -> None:
        with self.ctrl.lock, self.metrics.planning.time():
            decision = self.ctrl.arp_in(dpid, in_port, req.opcode, req.src_mac, req.src_ip,
                                        req.dst_ip)
        for out in decision.packets:
            dp = self.datapaths.get(out.dpid)
            if dp is not None:
                self._packet_out(dp, out.port, ofmsg.frame(out))
        self._carry_out(decision, dpid, in_port, None, received)

    def _on_dhcp(self, dpid: int, in_port: int, eth_src: str, ip_src: str, to_server: bool,
                 chaddr: str, data: bytes) -> None:
        """Relay a DHCP packet as it is to the server's port or the client's."""
        with self.ctrl.lock:
            relays, decision = self.ctrl.dhcp_in(dpid, in_port, eth_src, ip_src, to_server,
                                                 chaddr)
        for relay in relays:
            dp = self.datapaths.get(relay.dpid)
            if dp is not None:
                self._packet_out(dp, relay.port, data)
        for out in decision.packets:
            dp = self.datapaths.get(out.dpid)
            if dp is not None:
                self._packet_out(dp, out.port, ofmsg.frame(out))
        if decision.changes:
            self._carry_out(decision, dpid, in_port, None, None)

    def _on_nd(self, dpid: int, in_port: int, kind: int, eth_src: str, ip_src: str,
               target: str, received: float) -> None:
        with self.ctrl.lock, self.metrics.planning.time():
            decision = self.ctrl.nd_in(dpid, in_port, kind, eth_src, ip_src, target)
        for out in decision.packets:
            dp = self.datapaths.get(out.dpid)
            if dp is not None:
                self._packet_out(dp, out.port, ofmsg.frame(out))
        self._carry_out(decision, dpid, in_port, None, received)

    def _on_ipv4(self, dpid: int, in_port: int, eth_src: str, eth_dst: str, ip_src: str,
                 data: bytes, received: float, deadline: float | None = None) -> None:
        with self.ctrl.lock, self.metrics.planning.time():
            decision = self.ctrl.ipv4_in(dpid, in_port, eth_src, eth_dst, ip_src, data,
                                         received, deadline)
        self._carry_out(decision, dpid, in_port, data, received)

    def _on_label_miss(self, dpid: int, in_port: int, data: bytes) -> None:
        """A labelled packet found no entry: restore the hop from the store."""
        with self.ctrl.lock:
            decision = self.ctrl.label_miss(dpid, _mpls_label(data))
        self._carry_out(decision, dpid, in_port, data, None)

    def _carry_out(self, decision: Decision, dpid: int, in_port: int, data: bytes | None,
                   received: float | None) -> None:
        """Send a decision's changes in order; then resend the packet, note set-up times."""
        def after(ok: bool) -> None:
            if decision.resend and data is not None:
                dp = self.datapaths.get(dpid)
                if dp is not None:
                    self._packet_out(dp, dp.ofproto.OFPP_TABLE, data, in_port)
            if decision.created and received is not None:
                elapsed_ms = (time.monotonic() - received) * 1000
                with self.ctrl.lock:
                    for trail_id in decision.created:
                        self.ctrl.set_setup_latency(trail_id, elapsed_ms)
                        self.metrics.setup.observe(elapsed_ms / 1000)

        changes = decision.changes or [Change()]
        for change in changes[:-1]:
            self._execute(change)
        self._execute(changes[-1], after)


def _error_name(ofp: Any, kind: int, code: int) -> str:
    """OFPET_FLOW_MOD_FAILED/OFPFMFC_TABLE_FULL-style text for an OpenFlow error."""
    kinds = {v: k for k, v in vars(ofp).items() if k.startswith("OFPET_") and isinstance(v, int)}
    name = kinds.get(kind, f"type {kind}")
    prefix = {"OFPET_FLOW_MOD_FAILED": "OFPFMFC_", "OFPET_GROUP_MOD_FAILED": "OFPGMFC_",
              "OFPET_METER_MOD_FAILED": "OFPMMFC_", "OFPET_BAD_REQUEST": "OFPBRC_",
              "OFPET_BAD_ACTION": "OFPBAC_", "OFPET_BAD_MATCH": "OFPBMC_",
              "OFPET_BAD_INSTRUCTION": "OFPBIC_"}.get(name)
    codes = {v: k for k, v in vars(ofp).items()
             if prefix and k.startswith(prefix) and isinstance(v, int)}
    return f"{name}/{codes.get(code, f'code {code}')}"


def _packet_kind(msg: Any, eth: Any) -> str:
    """lldp, arp, label-miss, ipv4, ipv4-broadcast, ipv6, ipv6-multicast or other: what a
    packet-in asks for (ND is ipv6-multicast or ipv6)."""
    if eth is None:
        return "other"
    if eth.ethertype == ETH_TYPE_LLDP:
        return "lldp"
    if eth.ethertype == ETH_TYPE_ARP:
        return "arp"
    if msg.table_id == TABLE_FORWARD:
        return "label-miss"
    if eth.ethertype == ETH_TYPE_IPV6:
        return "ipv6-multicast" if _is_multicast(eth.dst) else "ipv6"
    if eth.ethertype == ETH_TYPE_IPV4 and _is_multicast(eth.dst):
        return "ipv4-broadcast"
    return "ipv4" if eth.ethertype == ETH_TYPE_IPV4 else "other"


def _decode(name: bytes | str) -> str:
    return name.decode(errors="replace").rstrip("\x00") if isinstance(name, bytes) else name


def _port(ofp: Any, desc: Any) -> Port:
    up = not (desc.state & ofp.OFPPS_LINK_DOWN) and not (desc.config & ofp.OFPPC_PORT_DOWN)
    return Port(desc.port_no, _decode(desc.name), desc.hw_addr, desc.curr_speed * 1000, up)


def _dhcp_port(pkt: Any) -> int | None:
    """67 or 68: the DHCP port a UDP packet is sent to, else None."""
    segment = pkt.get_protocol(udp.udp)
    if segment is None or segment.dst_port not in (DHCP_SERVER_PORT, DHCP_CLIENT_PORT):
        return None
    return int(segment.dst_port)


def _is_multicast(mac: str) -> bool:
    return int(mac.split(":")[0], 16) & 1 == 1


def _mpls_label(data: bytes) -> int | None:
    if len(data) < 18 or data[12:14] != b"\x88\x47":
        return None
    return int.from_bytes(data[14:17], "big") >> 4
