"""The scent-trail controller app (os-ken): OpenFlow events in, flow specs out.

Event handlers only parse and queue; one worker thread asks sdnscent's
ScentController for a Change and sends it, step by step, each step closed by
a barrier the worker waits for. LLDP, link expiry and counters run on timers.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
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
from os_ken.lib.packet import arp, ethernet, ipv4, packet
from os_ken.ofproto import ofproto_v1_3
from werkzeug.serving import make_server

from sdnscent.allocator import AllocatorError, UsageMeter, open_allocator
from sdnscent.cache import CachedStore
from sdnscent.controller import ArpPacket, Change, ScentController
from sdnscent.dra import DraConfig
from sdnscent.flows import (
    COOKIE_MAGIC,
    COOKIE_MASK_ALL,
    COOKIE_MASK_OURS,
    ETH_TYPE_ARP,
    ETH_TYPE_IPV4,
    ETH_TYPE_LLDP,
    KIND_TRAIL,
    TABLE_CLASSIFY,
    TABLE_FORWARD,
    FlowSpec,
    cookie_trail_id,
    make_cookie,
    trail_cookie,
)
from sdnscent.metrics import ControllerCollector, Metrics, TimedStore
from sdnscent.policy import Policy
from sdnscent.policyfile import PolicyError, load_policy
from sdnscent.ratelimit import RateLimiter
from sdnscent.rest import ApiError, create_app
from sdnscent.store import MemoryStore, StoreError, TrailStore, open_store, redact
from sdnscent.telemetry import NodeLoadReader, PortCounters
from sdnscent.topology import Port, TopologyError, dpid_str
from sdnscent.trails import Trail

from . import discovery, ofmsg, ofwire
from .settings import SETTINGS

LOG = logging.getLogger("sdnscent.app")
BARRIER_TIMEOUT = 3.0
DUMP_TIMEOUT = 5.0  # s to read a switch's flow table back for the audit
PARK_SECONDS = 3.0  # how long a packet with no path waits for a link to appear
PARKED_MAX = 256


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
        self.leader = not self.shared  # alone with its memory store: always master
        self.generation = 0
        self.ctrl = ScentController(store, SETTINGS.default_link_capacity,
                                    switch_grace=SETTINGS.switch_grace,
                                    trail_lease=SETTINGS.trail_lease,
                                    lease_slack=2 * SETTINGS.stats_interval + 1,
                                    stats_interval=SETTINGS.stats_interval,
                                    dra=DraConfig(link_high=SETTINGS.link_high,
                                                  link_low=SETTINGS.link_low,
                                                  hold_time=SETTINGS.move_hold,
                                                  period=SETTINGS.stats_interval))
        self.metrics.registry.register(ControllerCollector(self.ctrl))
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
        self.ctrl.recover()  # trails and labels of a persistent store, after a restart
        if self.shared:  # a writer that died between a trail and its index entries
            store.rebuild_index()
        self.datapaths: dict[int, Any] = {}
        self._send_lock = threading.Lock()
        self._barriers: dict[tuple[int, int], threading.Event] = {}
        self._dumps: dict[tuple[int, int], tuple[list[Any], threading.Event]] = {}
        self._jobs: queue.Queue[tuple[str, Callable[[], None]] | None] = queue.Queue()
        self._stopping = threading.Event()
        self._api_server: Any = None
        self._parked: deque[tuple[float, tuple[Any, ...]]] = deque(maxlen=PARKED_MAX)
        self.job_errors = 0

    # lifecycle ----------------------------------------------------------
    def start(self) -> Any:
        """Start the event loop, the worker, timers and the REST API."""
        thread = super().start()
        loops = [(self._worker, "worker"), (self._lldp_loop, "lldp"), (self._stats_loop, "stats")]
        if self.shared:
            self._elect()  # master at once if nobody else is
            loops.append((self._leader_loop, "leader"))
        for target, name in loops:
            threading.Thread(target=target, name=f"sdnscent-{name}", daemon=True).start()
        if self.settings.api_listen:
            host, _, port = self.settings.api_listen.rpartition(":")
            host = host.strip("[]") or "127.0.0.1"  # [::1]:8080 is IPv6 loopback
            api = create_app(self.ctrl, token=self.settings.api_token,
                             apply_policy=self.apply_policy, status=self.status,
                             flow_stats=self.trail_flow_stats,
                             remove_trail=self.remove_trail, replan_trail=self.replan_trail,
                             pin_trail=self.pin_trail,
                             metrics=self.metrics.render,
                             open_reads=self.settings.api_open_reads)
            self._api_server = make_server(host, int(port), api, threaded=True)
            threading.Thread(target=self._api_server.serve_forever, name="sdnscent-api",
                             daemon=True).start()
            LOG.info("REST API on http://%s/api/v1", self.settings.api_listen)
        return thread

    def stop(self) -> None:
        """Stop timers, the worker and the REST API; hand the master role on."""
        self._stopping.set()
        self._jobs.put(None)
        if self.shared and self.leader:
            try:
                self.ctrl.store.release_leader(self.node_id)
            except StoreError:
                pass
        if self._api_server is not None:
            self._api_server.shutdown()
        super().stop()

    # leadership among controllers sharing a store --------------------------
    def status(self) -> dict[str, Any]:
        """This controller as GET /api/v1/controller shows it."""
        store = self.ctrl.store
        info: dict[str, Any] = {
            "id": self.node_id, "role": "master" if self.leader else "standby",
            "generation": self.generation, "store": redact(self.settings.store_url),
            "switches": len(self.datapaths), "trail_lease": self.settings.trail_lease}
        if isinstance(store, CachedStore):
            info["store_status"] = store.status()
            try:
                info["leader"] = store.leader()
            except StoreError:
                info["leader"] = None
        else:
            info["store_status"] = {"healthy": True}
            info["leader"] = self.node_id
        return info

    def _elect(self) -> None:
        """Claim or renew the master lease; take over or step down on a change."""
        try:
            held = self.ctrl.store.claim_leader(self.node_id, self.settings.leader_ttl)
        except StoreError as exc:
            # Nobody can claim while the store is down: keep the current role.
            LOG.debug("leader lease not renewed: %s", exc)
            return
        if held and not self.leader:
            self._submit("take-over", self._take_over)
        elif not held and self.leader:
            self.leader = False
            with self.ctrl.lock:
                self.ctrl.record("leader", f"{self.node_id} lost the master lease; standby now")

    def _leader_loop(self) -> None:
        while not self._stopping.wait(self.settings.leader_ttl / 3):
            self._elect()

    def _take_over(self) -> None:
        """Become master: newest generation, trails from the store, audit every switch."""
        store = self.ctrl.store
        self.generation = store.next_generation()
        if isinstance(store, CachedStore):
            store.load()
            store.rebuild_index()
        with self.ctrl.lock:
            count = self.ctrl.recover()
            self.ctrl.record("leader", f"{self.node_id} is master (generation "
                             f"{self.generation}); {count} trails from the store")
        self.leader = True
        for dp in list(self.datapaths.values()):
            self._request_role(dp)
            dp.send_msg(dp.ofproto_parser.OFPPortDescStatsRequest(dp, 0))  # -> audit

    def _request_role(self, dp: Any) -> None:
        """Tell a switch whether we are its master or a slave (shared stores only)."""
        if not self.shared:
            return
        ofp = dp.ofproto
        if self.leader:
            role, generation = ofp.OFPCR_ROLE_MASTER, self.generation
        else:
            role = ofp.OFPCR_ROLE_SLAVE
            try:
                generation = self.ctrl.store.generation()
            except StoreError:
                generation = self.generation
        self._send(dp, dp.ofproto_parser.OFPRoleRequest(dp, role, generation))

    @set_ev_cls(ofp_event.EventOFPRoleReply, MAIN_DISPATCHER)
    def _role_reply(self, ev: Any) -> None:
        msg = ev.msg
        LOG.info("switch %s: role %d, generation %d", dpid_str(msg.datapath.id), msg.role,
                 msg.generation_id)

    # policy ---------------------------------------------------------------
    def apply_policy(self, policy: Policy, timeout: float = 60.0) -> dict[str, Any]:
        """Swap in a validated policy and re-plan trails; wait for the switches."""
        done = threading.Event()
        summary: dict[str, Any] = {}

        def job() -> None:
            try:
                with self.ctrl.lock:
                    try:
                        change, result = self.ctrl.set_policy(policy)
                    except (TopologyError, ValueError) as exc:  # refused whole: nothing changed
                        self.ctrl.record("policy-rejected", f"{policy.source} not applied; "
                                         f"the running policy stays: {exc}")
                        summary["rejected"] = str(exc)
                        return
                self._execute(change)
                summary.update(result)
            finally:
                done.set()

        self._submit("policy", job)
        if not done.wait(timeout):
            return {"warning": f"still re-planning after {timeout:.0f} s"}
        return summary

    # operator actions over REST --------------------------------------------
    def _on_worker(self, name: str, action: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Run `action` on the worker and return its result (ApiError 503 on a timeout)."""
        if not self.leader:
            raise ApiError(409, "this controller is a standby; send it to the master")
        done = threading.Event()
        result: list[Any] = []
        failure: list[BaseException] = []

        def job() -> None:
            try:
                result.append(action())
            except BaseException as exc:  # handed to the REST thread
                failure.append(exc)
            finally:
                done.set()

        self._submit(name, job)
        if not done.wait(timeout):
            raise ApiError(503, f"{name} still running after {timeout:.0f} s")
        if failure:
            raise failure[0]
        return result[0]

    def remove_trail(self, trail_id: int) -> dict[str, Any] | None:
        """DELETE /trails/<id>: remove the trail's flows and free its label."""
        def action() -> dict[str, Any] | None:
            with self.ctrl.lock:
                trail = self.ctrl.store.get(trail_id)
                if trail is None:
                    return None
                view = self.ctrl.trail_view(trail)
                change = self.ctrl.remove_trail(trail_id, "removed by the operator (REST)")
            self._execute(change)
            return {"status": "removed", "trail": view}

        return self._on_worker("rest-delete", action)

    def replan_trail(self, trail_id: int) -> dict[str, Any] | None:
        """POST /trails/<id>/replan: move the trail to its best path now."""
        def action() -> dict[str, Any] | None:
            with self.ctrl.lock:
                before = self.ctrl.store.get(trail_id)
                if before is None:
                    return None
                change = self.ctrl.replan(trail_id, "operator request (REST)")
            self._execute(change)
            with self.ctrl.lock:
                after = self.ctrl.store.get(trail_id)
                view = self.ctrl.trail_view(after) if after is not None else None
            state = "removed" if after is None else \
                "unchanged" if after.version == before.version else "replanned"
            return {"status": state, "trail": view}

        return self._on_worker("rest-replan", action)

    def pin_trail(self, trail_id: int, pinned: bool) -> dict[str, Any] | None:
        """PUT/DELETE /trails/<id>/pin: keep the trail off load moves (or not)."""
        def action() -> dict[str, Any] | None:
            with self.ctrl.lock:
                trail = self.ctrl.pin_trail(trail_id, pinned)
                if trail is None:
                    return None
                return {"status": "pinned" if pinned else "unpinned",
                        "trail": self.ctrl.trail_view(trail)}

        return self._on_worker("rest-pin", action)

    def trail_flow_stats(self, trail: Trail) -> dict[int, list[dict[str, Any]] | None]:
        """Flows with `trail`'s cookie on each switch it crosses, read now."""
        out: dict[int, list[dict[str, Any]] | None] = {}
        for dpid in dict.fromkeys(trail.switches):
            dp = self.datapaths.get(dpid)
            entries = self._dump_flows(dp, trail_cookie(trail.id), COOKIE_MASK_ALL,
                                       timeout=2.0) if dp is not None else None
            out[dpid] = None if entries is None else [
                {"table": e.table_id, "priority": e.priority,
                 "match": {k: v for k, v in e.match.items() if not isinstance(v, tuple)},
                 "packets": e.packet_count, "bytes": e.byte_count,
                 "duration": e.duration_sec + e.duration_nsec / 1e9} for e in entries]
        return out

    def reload_policy_file(self) -> None:
        """SIGHUP: read --policy again; a bad file changes nothing."""
        path = self.settings.policy_file
        if not path:
            LOG.warning("SIGHUP ignored: the controller was started without --policy")
            return
        try:
            policy = load_policy(path)
        except PolicyError as exc:
            with self.ctrl.lock:
                self.ctrl.record("policy-rejected", f"{path} not applied; the running policy "
                                 f"stays: {exc}")
            LOG.error("policy reload rejected, nothing changed:\n%s", exc)
            return
        LOG.info("policy reloaded from %s: %s", path, self.apply_policy(policy))

    # the worker -----------------------------------------------------------
    def _submit(self, name: str, job: Callable[[], None]) -> None:
        self._jobs.put((name, job))

    def _worker(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            name, job = item
            try:
                job()
            except Exception:  # one bad event must not stop the controller
                self.job_errors += 1
                LOG.exception("job %s failed", name)

    def _execute(self, change: Change) -> None:
        """Send each step's operations, then wait for every barrier of the step.

        A standby sends nothing (its switches would refuse it anyway).
        """
        if not self.leader:
            return
        for index, step in enumerate(change.steps):
            pause = change.pause_before.get(index, 0.0)
            if pause:
                time.sleep(pause)  # let packets in flight on an old path arrive
            waits = []
            for dpid, ops in step.items():
                dp = self.datapaths.get(dpid)
                if dp is None:
                    continue
                self._send_ops(dp, ops)
                waits.append((dpid, self._barrier(dp)))
            for dpid, event in waits:
                if not event.wait(BARRIER_TIMEOUT):
                    LOG.warning("no barrier reply from %s within %.0f s", dpid_str(dpid),
                                BARRIER_TIMEOUT)
        with self.ctrl.lock:
            for callback in change.done:
                callback()

    def _send_ops(self, dp: Any, ops: list[Any]) -> None:
        """Send a step's operations for one switch as one buffer (flow adds encoded by
        ofwire, the rest by os-ken): one socket write instead of one per flow mod."""
        chunks: list[bytes] = []
        flows = 0
        with self._send_lock:
            for op in ops:
                if isinstance(op, FlowSpec):
                    try:
                        xid = (dp.xid + 1) & dp.ofproto.MAX_XID
                        chunks.append(ofwire.flow_add(op, xid))
                        dp.xid = xid
                        flows += 1
                        continue
                    except ofwire.Unsupported:
                        pass
                msg = ofmsg.to_message(dp, op)
                dp.set_xid(msg)
                msg.serialize()
                chunks.append(bytes(msg.buf))
                self.metrics.sent(msg)
            if chunks:
                dp.send(b"".join(chunks))
        if flows:
            self.metrics.sent("OFPFlowMod", flows)

    def _send(self, dp: Any, msg: Any) -> None:
        with self._send_lock:
            dp.set_xid(msg)
            dp.send_msg(msg)
        self.metrics.sent(msg)

    def _barrier(self, dp: Any) -> threading.Event:
        msg = dp.ofproto_parser.OFPBarrierRequest(dp)
        event = threading.Event()
        with self._send_lock:
            dp.set_xid(msg)
            self._barriers[(dp.id, msg.xid)] = event
            dp.send_msg(msg)
        self.metrics.sent(msg)
        return event

    def _dump_flows(self, dp: Any, cookie: int, mask: int,
                    timeout: float = DUMP_TIMEOUT) -> list[Any] | None:
        """Flow stats entries of `dp` whose cookie matches; None without an answer."""
        ofp, parser = dp.ofproto, dp.ofproto_parser
        msg = parser.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                         cookie, mask, parser.OFPMatch())
        entries: list[Any] = []
        done = threading.Event()
        with self._send_lock:
            dp.set_xid(msg)
            self._dumps[(dp.id, msg.xid)] = (entries, done)
            dp.send_msg(msg)
        if not done.wait(timeout):
            self._dumps.pop((dp.id, msg.xid), None)
            return None
        return entries

    def _read_flows(self, dp: Any) -> list[Any] | None:
        """Our flows on the switch (cookie 0x5ce7...), as FlowSpecs; None if unreadable."""
        entries = self._dump_flows(dp, COOKIE_MAGIC << 48, COOKIE_MASK_OURS)
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

    def _packet_out(self, dp: Any, port: int, data: bytes, in_port: int | None = None) -> None:
        if not self.leader:
            return
        ofp, parser = dp.ofproto, dp.ofproto_parser
        msg = parser.OFPPacketOut(
            dp, buffer_id=ofp.OFP_NO_BUFFER,
            in_port=ofp.OFPP_CONTROLLER if in_port is None else in_port,
            actions=[parser.OFPActionOutput(port)], data=data)
        self._send(dp, msg)

    # switches and ports -----------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev: Any) -> None:
        dp = ev.msg.datapath
        dp.send_msg(dp.ofproto_parser.OFPPortDescStatsRequest(dp, 0))

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

        def job() -> None:
            self.datapaths[dp.id] = dp
            self._request_role(dp)
            if not self.leader:  # a standby only keeps the connection
                return
            installed = self._read_flows(dp)
            with self.ctrl.lock:
                change = self.ctrl.switch_enter(dp.id, ports, name, installed)
            started = time.perf_counter()
            self._execute(change)
            ops = sum(len(o) for step in change.steps for o in step.values())
            if ops:
                ms = (time.perf_counter() - started) * 1000
                with self.ctrl.lock:
                    self.ctrl.record("switch-ready", f"switch {name or dpid_str(dp.id)}: {ops} "
                                     f"operations confirmed in {ms:.0f} ms "
                                     f"({ops / max(ms, 1e-3) * 1000:.0f}/s)")
            for dpid in list(self.datapaths):  # neighbours can now see the new switch
                self._send_lldp(dpid)

        self._submit("switch-enter", job)

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev: Any) -> None:
        dp, msg = ev.msg.datapath, ev.msg
        port = _port(dp.ofproto, msg.desc)
        if msg.reason == dp.ofproto.OFPPR_DELETE:
            port = Port(port.number, port.name, port.hw_addr, port.speed_bps, up=False)

        def job() -> None:
            with self.ctrl.lock:
                change = self.ctrl.port_status(dp.id, port)
            self._execute(change)
            if port.up:
                self._send_lldp(dp.id)

        self._submit("port-status", job)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _dead(self, ev: Any) -> None:
        dp = ev.datapath
        if dp is None or dp.id is None:
            return

        def job() -> None:
            if self.datapaths.get(dp.id) is dp:
                del self.datapaths[dp.id]
                with self.ctrl.lock:
                    change = self.ctrl.switch_leave(dp.id)
                self._execute(change)

        self._submit("switch-leave", job)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev: Any) -> None:
        event = self._barriers.pop((ev.msg.datapath.id, ev.msg.xid), None)
        if event is not None:
            event.set()

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def _error(self, ev: Any) -> None:
        msg = ev.msg
        ofp = msg.datapath.ofproto
        if msg.type == ofp.OFPET_METER_MOD_FAILED and msg.code in (
                ofp.OFPMMFC_METER_EXISTS, ofp.OFPMMFC_UNKNOWN_METER):
            LOG.debug("switch %s: meter add/modify refused (expected when making a meter "
                      "right without reading it)", dpid_str(msg.datapath.id))
            return
        LOG.warning("switch %s rejected a message: type %d code %d", dpid_str(msg.datapath.id),
                    msg.type, msg.code)

    # discovery ---------------------------------------------------------
    def _send_lldp(self, dpid: int) -> None:
        if not self.leader:
            return
        dp = self.datapaths.get(dpid)
        sw = self.ctrl.topo.switches.get(dpid)
        if dp is None or sw is None:
            return
        for port in list(sw.ports.values()):
            if port.up and port.hw_addr:
                self._packet_out(dp, port.number, discovery.build(dpid, port.number, port.hw_addr))

    def _lldp_loop(self) -> None:
        while not self._stopping.wait(self.settings.lldp_interval):
            for dpid in list(self.datapaths):
                self._send_lldp(dpid)

            def expire() -> None:
                with self.ctrl.lock:
                    change = self.ctrl.expire_links(self.settings.link_timeout)
                self._execute(change)

            self._submit("link-expiry", expire)

    # counters ------------------------------------------------------------
    def _stats_loop(self) -> None:
        while not self._stopping.wait(self.settings.stats_interval):
            self._submit("store-sync", self._maintain_store)
            if not self.leader:
                continue
            self._submit("leases", self._expire_leases)
            self._submit("rebalance", self._rebalance)
            for dp in list(self.datapaths.values()):
                self._send(dp, dp.ofproto_parser.OFPPortStatsRequest(dp, 0, dp.ofproto.OFPP_ANY))
                parser = dp.ofproto_parser
                self._send(dp, parser.OFPFlowStatsRequest(
                    dp, 0, TABLE_CLASSIFY, dp.ofproto.OFPP_ANY, dp.ofproto.OFPG_ANY,
                    make_cookie(KIND_TRAIL), 0xFFFF_FFFF_0000_0000, parser.OFPMatch()))

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

    def _expire_leases(self) -> None:
        with self.ctrl.lock:
            change = self.ctrl.expire_trails()
        self._execute(change)

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

        def job() -> None:
            with self.ctrl.lock:
                change = self.ctrl.classifier_idle(trail_id, match)
            self._execute(change)

        self._submit("flow-removed", job)

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _flow_stats(self, ev: Any) -> None:
        msg = ev.msg
        dump = self._dumps.get((msg.datapath.id, msg.xid))
        if dump is not None:  # a flow table read back for the audit
            dump[0].extend(msg.body)
            if not msg.flags & msg.datapath.ofproto.OFPMPF_REPLY_MORE:
                del self._dumps[(msg.datapath.id, msg.xid)]
                dump[1].set()
            return
        stats = []
        for entry in ev.msg.body:
            trail_id = cookie_trail_id(entry.cookie)
            if trail_id is not None:
                stats.append((trail_id, entry.match.get("in_port"), entry.packet_count,
                              entry.byte_count))
        with self.ctrl.lock:
            self.ctrl.classifier_counters(msg.datapath.id, stats)

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
            found = discovery.parse(msg.data)
            if found:
                self._submit("lldp", lambda: self._on_lldp(found, dp.id, in_port))
        elif eth.ethertype == ETH_TYPE_ARP:
            req = pkt.get_protocol(arp.arp)
            if req is not None:
                self._submit("arp", lambda: self._on_arp(dp.id, in_port, req, received))
        elif msg.table_id == TABLE_FORWARD:
            self._submit("label-miss", lambda: self._on_label_miss(dp.id, in_port, msg.data))
        elif eth.ethertype == ETH_TYPE_IPV4:
            ip = pkt.get_protocol(ipv4.ipv4)
            if ip is not None and not _is_multicast(eth.dst):
                self._submit("ipv4", lambda: self._on_ipv4(
                    dp.id, in_port, eth.src, eth.dst, ip.src, msg.data, received))

    def _on_lldp(self, found: tuple[int, int], dpid: int, in_port: int) -> None:
        with self.ctrl.lock:
            change = self.ctrl.link_seen(found[0], found[1], dpid, in_port)
        self._execute(change)
        if change:  # a new link: packets that had no path may have one now
            self._retry_parked()

    def _retry_parked(self) -> None:
        now = time.monotonic()
        parked, self._parked = self._parked, deque(maxlen=PARKED_MAX)
        for deadline, args in parked:
            if deadline > now:
                self._on_ipv4(*args, deadline=deadline)

    def _on_arp(self, dpid: int, in_port: int, req: Any, received: float) -> None:
        with self.ctrl.lock:
            result, change = self.ctrl.handle_arp(dpid, in_port, req.opcode, req.src_mac,
                                                  req.src_ip, req.dst_ip)
        self._execute(change)
        for out in result.packets:
            self._send_arp(out)
        for src, dst in result.pairs:
            self._setup_trails([(src, dst), (dst, src)], received)
        for client, name in result.services:
            with self.ctrl.lock:
                change = self.ctrl.ensure_service(client, name)
            self._execute(change)

    def _send_arp(self, out: ArpPacket) -> None:
        dp = self.datapaths.get(out.dpid)
        if dp is None:
            return
        pkt = packet.Packet()
        pkt.add_protocol(ethernet.ethernet(out.eth_dst, out.eth_src, ETH_TYPE_ARP))
        pkt.add_protocol(arp.arp(opcode=out.opcode, src_mac=out.src_mac, src_ip=out.src_ip,
                                 dst_mac=out.dst_mac, dst_ip=out.dst_ip))
        pkt.serialize()
        self._packet_out(dp, out.port, bytes(pkt.data))

    def _setup_trails(self, pairs: list[tuple[str, str]], received: float) -> list[int]:
        """Make sure trails exist for `pairs`; install new ones in one change."""
        change, new = Change(), []
        with self.ctrl.lock, self.metrics.planning.time():
            for src, dst in pairs:
                try:
                    _, extra = self.ctrl.ensure_pair(src, dst)
                except TopologyError as exc:
                    LOG.info("no trail %s -> %s: %s", src, dst, exc)
                    continue
                new.extend(extra.created)
                change.merge(extra)
        self._execute(change)
        elapsed_ms = (time.monotonic() - received) * 1000
        with self.ctrl.lock:
            for trail_id in new:
                self.ctrl.set_setup_latency(trail_id, elapsed_ms)
                self.metrics.setup.observe(elapsed_ms / 1000)
        return new

    def _on_ipv4(self, dpid: int, in_port: int, eth_src: str, eth_dst: str, ip_src: str,
                 data: bytes, received: float, deadline: float | None = None) -> None:
        with self.ctrl.lock:
            if self.ctrl.topo.is_link_port(dpid, in_port):
                return
            change = self.ctrl.learn_host(dpid, in_port, eth_src, ip_src)
            known = eth_dst in self.ctrl.topo.hosts and eth_src in self.ctrl.topo.hosts
            service = self.ctrl.service_by_mac(eth_dst)
            if service is not None and eth_src in self.ctrl.topo.hosts:
                change.merge(self.ctrl.ensure_service(eth_src, service.name))
        self._execute(change)
        if service is not None:  # to a VIP: the service's group takes it from the table
            dp = self.datapaths.get(dpid)
            if dp is not None and known is False and eth_src in self.ctrl.topo.hosts:
                self._packet_out(dp, dp.ofproto.OFPP_TABLE, data, in_port)
            return
        if not known:
            return
        with self.ctrl.lock:
            existing = self.ctrl.trail_for_pair(eth_src, eth_dst) is not None
            refresh = self.ctrl.refresh_classifiers(eth_src, eth_dst) if existing else Change()
        self._execute(refresh)  # its classifier timed out or was removed: put it back
        self._setup_trails([(eth_src, eth_dst)], received)
        with self.ctrl.lock:
            ready = self.ctrl.trail_for_pair(eth_src, eth_dst) is not None
        dp = self.datapaths.get(dpid)
        if ready and dp is not None:
            self._packet_out(dp, dp.ofproto.OFPP_TABLE, data, in_port)
        elif not ready:  # no path yet (links still being discovered): hold it briefly
            self._parked.append((deadline or time.monotonic() + PARK_SECONDS,
                                 (dpid, in_port, eth_src, eth_dst, ip_src, data, received)))

    def _on_label_miss(self, dpid: int, in_port: int, data: bytes) -> None:
        """A labelled packet found no entry: restore the hop from the store."""
        label = _mpls_label(data)
        with self.ctrl.lock:
            change = self.ctrl.restore_hop(dpid, label) if label is not None else Change()
        if not change:
            LOG.debug("label %s unknown at %s: dropped", label, dpid_str(dpid))
            return
        self._execute(change)
        dp = self.datapaths.get(dpid)
        if dp is not None:
            self._packet_out(dp, dp.ofproto.OFPP_TABLE, data, in_port)


def _packet_kind(msg: Any, eth: Any) -> str:
    """lldp, arp, label-miss, ipv4 or other: what a packet-in asks for."""
    if eth is None:
        return "other"
    if eth.ethertype == ETH_TYPE_LLDP:
        return "lldp"
    if eth.ethertype == ETH_TYPE_ARP:
        return "arp"
    if msg.table_id == TABLE_FORWARD:
        return "label-miss"
    return "ipv4" if eth.ethertype == ETH_TYPE_IPV4 else "other"


def _decode(name: bytes | str) -> str:
    return name.decode(errors="replace").rstrip("\x00") if isinstance(name, bytes) else name


def _port(ofp: Any, desc: Any) -> Port:
    up = not (desc.state & ofp.OFPPS_LINK_DOWN) and not (desc.config & ofp.OFPPC_PORT_DOWN)
    return Port(desc.port_no, _decode(desc.name), desc.hw_addr, desc.curr_speed * 1000, up)


def _is_multicast(mac: str) -> bool:
    return int(mac.split(":")[0], 16) & 1 == 1


def _mpls_label(data: bytes) -> int | None:
    if len(data) < 18 or data[12:14] != b"\x88\x47":
        return None
    return int.from_bytes(data[14:17], "big") >> 4
