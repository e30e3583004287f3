"""The scent-trail controller app (os-ken): OpenFlow events in, changes out.

A shim, as Faucet's faucet.py is to valve.py. Event handlers parse and queue
a job; one worker thread asks sdnscent's ScentController (the core) what to
do, and hands the resulting changes to the channel (apps/channel.py), which
sends each step with an xid per message and a barrier per switch. Changes
run in submission order per switch (sdnscent.transactions.SwitchOrder), each
on a thread of its own, so a slow or dead switch delays only the changes that
touch it. A step that fails fails its trails in the core, which cleans them
up and retries them; switches with failed non-trail operations are audited
again with back-off. Leadership is apps/leadership.py; every message is built
in apps/ofmsg.py.
"""

from __future__ import annotations

import logging
import queue
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
from os_ken.lib.packet import arp, ethernet, ipv4, packet
from os_ken.ofproto import ofproto_v1_3
from werkzeug.serving import make_server

from sdnscent.allocator import AllocatorError, UsageMeter, open_allocator
from sdnscent.cache import CachedStore
from sdnscent.compiler import Op
from sdnscent.controller import Change, Decision, ScentController
from sdnscent.dra import DraConfig
from sdnscent.flows import (
    COOKIE_MAGIC,
    COOKIE_MASK_ALL,
    COOKIE_MASK_KIND,
    COOKIE_MASK_OURS,
    ETH_TYPE_ARP,
    ETH_TYPE_IPV4,
    ETH_TYPE_LLDP,
    KIND_TRAIL,
    TABLE_CLASSIFY,
    TABLE_FORWARD,
    FlowSpec,
    MeterSpec,
    cookie_trail_id,
    make_cookie,
    trail_cookie,
)
from sdnscent.metrics import ControllerCollector, Metrics, TimedStore
from sdnscent.mtu import link_port_mtus
from sdnscent.policy import Policy
from sdnscent.policyfile import PolicyError, load_policy
from sdnscent.ratelimit import RateLimiter
from sdnscent.rest import ApiError, create_app
from sdnscent.store import MemoryStore, TrailStore, open_store, redact
from sdnscent.telemetry import NodeLoadReader, PortCounters
from sdnscent.topology import Port, TopologyError, dpid_str
from sdnscent.trails import Trail
from sdnscent.transactions import SwitchOrder, retry_delay, switches_of, without_trails

from . import discovery, ofmsg
from .channel import DUMP_TIMEOUT, Channel
from .leadership import Leadership
from .settings import SETTINGS

LOG = logging.getLogger("sdnscent.app")


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
        self.ctrl.recover()  # trails, labels and hosts of a persistent store, after a restart
        if self.shared:  # a writer that died between a trail and its index entries
            store.rebuild_index()
        self.channel = Channel(self.metrics.sent)
        self.leadership = Leadership(self.ctrl, self.node_id, SETTINGS.leader_ttl, self.shared,
                                     lambda job: self._submit("take-over", job))
        self.leadership.on_master = self._audit_all
        self.order = SwitchOrder(_start_thread)
        self._jobs: queue.Queue[tuple[str, Callable[[], None]] | None] = queue.Queue()
        self._stopping = threading.Event()
        self._api_server: Any = None
        self._resyncs: dict[int, int] = {}  # dpid -> audits in a row after failed steps
        self.job_errors = 0
        self.southbound: Any = None
        self._mtu_jobs: queue.Queue[tuple[int, int] | None] = queue.Queue()
        self._mtu_done: set[tuple[int, int]] = set()
        if SETTINGS.ovsdb_targets and SETTINGS.link_mtu:
            from .ovsdb import OvsdbSouthbound  # the OVS IDL only where it is used
            self.southbound = OvsdbSouthbound(list(SETTINGS.ovsdb_targets))

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
        loops = [(self._worker, "worker"), (self._lldp_loop, "lldp"), (self._stats_loop, "stats")]
        if self.shared:
            self.leadership.elect()  # master at once if nobody else is
            loops.append((lambda: self.leadership.loop(self._stopping), "leader"))
        if self.southbound is not None:
            loops.append((self._mtu_loop, "ovsdb"))
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
                             open_reads=self.settings.api_open_reads,
                             audit=self.audit_now)
            self._api_server = make_server(host, int(port), api, threaded=True)
            threading.Thread(target=self._api_server.serve_forever, name="sdnscent-api",
                             daemon=True).start()
            LOG.info("REST API on http://%s/api/v1", self.settings.api_listen)
        return thread

    def stop(self) -> None:
        """Stop timers, the worker and the REST API; hand the master role on."""
        self._stopping.set()
        self._jobs.put(None)
        self._mtu_jobs.put(None)
        self.leadership.release()
        if self.southbound is not None:
            self.southbound.close()
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

    # policy ---------------------------------------------------------------
    def apply_policy(self, policy: Policy, timeout: float = 60.0) -> dict[str, Any]:
        """Swap in a validated policy and re-plan trails; wait for the switches."""
        done = threading.Event()
        summary: dict[str, Any] = {}

        def job() -> None:
            with self.ctrl.lock:
                try:
                    change, result = self.ctrl.set_policy(policy)
                except (TopologyError, ValueError) as exc:  # refused whole: nothing changed
                    self.ctrl.record("policy-rejected", f"{policy.source} not applied; "
                                     f"the running policy stays: {exc}")
                    summary["rejected"] = str(exc)
                    done.set()
                    return
            summary.update(result)
            self._execute(change, lambda ok: done.set())

        self._submit("policy", job)
        if not done.wait(timeout):
            return {"warning": f"still re-planning after {timeout:.0f} s"}
        return summary

    # operator actions over REST --------------------------------------------
    def _on_worker(self, name: str, action: Callable[[], tuple[Any, Change | None]],
                   timeout: float = 30.0) -> Any:
        """Run `action` on the worker, send the change it returns, and return its result
        once the switches confirmed (ApiError 503 on a timeout)."""
        if not self.leader:
            raise ApiError(409, "this controller is a standby; send it to the master")
        done = threading.Event()
        result: list[Any] = []
        failure: list[BaseException] = []

        def job() -> None:
            try:
                value, change = action()
                result.append(value)
            except BaseException as exc:  # handed to the REST thread
                failure.append(exc)
                done.set()
                return
            self._execute(change or Change(), lambda ok: done.set())

        self._submit(name, job)
        if not done.wait(timeout):
            raise ApiError(503, f"{name} still running after {timeout:.0f} s")
        if failure:
            raise failure[0]
        return result[0]

    def remove_trail(self, trail_id: int) -> dict[str, Any] | None:
        """DELETE /trails/<id>: remove the trail's flows and free its label."""
        def action() -> tuple[dict[str, Any] | None, Change | None]:
            with self.ctrl.lock:
                trail = self.ctrl.store.get(trail_id)
                if trail is None:
                    return None, None
                view = self.ctrl.trail_view(trail)
                change = self.ctrl.remove_trail(trail_id, "removed by the operator (REST)")
            return {"status": "removed", "trail": view}, change

        return self._on_worker("rest-delete", action)

    def replan_trail(self, trail_id: int) -> dict[str, Any] | None:
        """POST /trails/<id>/replan: move the trail to its best path now."""
        def action() -> tuple[Trail | None, Change | None]:
            with self.ctrl.lock:
                before = self.ctrl.store.get(trail_id)
                if before is None:
                    return None, None
                return before, self.ctrl.replan(trail_id, "operator request (REST)")

        before = self._on_worker("rest-replan", action)
        if before is None:
            return None
        with self.ctrl.lock:
            after = self.ctrl.store.get(trail_id)
            view = self.ctrl.trail_view(after) if after is not None else None
        state = "removed" if after is None else \
            "unchanged" if after.version == before.version else "replanned"
        return {"status": state, "trail": view}

    def pin_trail(self, trail_id: int, pinned: bool) -> dict[str, Any] | None:
        """PUT/DELETE /trails/<id>/pin: keep the trail off load moves (or not)."""
        def action() -> tuple[dict[str, Any] | None, None]:
            with self.ctrl.lock:
                trail = self.ctrl.pin_trail(trail_id, pinned)
                if trail is None:
                    return None, None
                return {"status": "pinned" if pinned else "unpinned",
                        "trail": self.ctrl.trail_view(trail)}, None

        return self._on_worker("rest-pin", action)

    def trail_flow_stats(self, trail: Trail) -> dict[int, list[dict[str, Any]] | None]:
        """Flows with `trail`'s cookie on each switch it crosses, read now."""
        out: dict[int, list[dict[str, Any]] | None] = {}
        for dpid in dict.fromkeys(trail.switches):
            dp = self.datapaths.get(dpid)
            entries = self.channel.dump_flows(dp, trail_cookie(trail.id), COOKIE_MASK_ALL,
                                              timeout=2.0) if dp is not None else None
            out[dpid] = None if entries is None else [
                {"table": e.table_id, "priority": e.priority,
                 "match": {k: v for k, v in e.match.items() if not isinstance(v, tuple)},
                 "packets": e.packet_count, "bytes": e.byte_count,
                 "duration": e.duration_sec + e.duration_nsec / 1e9} for e in entries]
        return out

    def audit_now(self) -> dict[str, Any]:
        """GET /audit: read every switch's table and say what an audit would fix."""
        switches: dict[str, dict[str, int]] = {}
        unread: list[str] = []
        for dpid, dp in sorted(self.datapaths.items()):
            installed = self._read_flows(dp)
            if installed is None:
                unread.append(dpid_str(dpid))
                continue
            with self.ctrl.lock:
                switches[dpid_str(dpid)] = self.ctrl.audit_report(dpid, installed)
        stale = sum(r["missing"] + r["wrong"] + r["unknown"] for r in switches.values())
        return {"switches": switches, "stale": stale, "unread": unread}

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

    # the worker and the changes it sends ------------------------------------
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

    def _decide(self, name: str, decide: Callable[[], Change]) -> None:
        """Ask the core (under its lock) and send the change it returns."""
        with self.ctrl.lock:
            change = decide()
        self._execute(change)

    def _execute(self, change: Change, then: Callable[[bool], None] | None = None) -> None:
        """Send `change` when its switches are free; `then(ok)` once it is done.

        Steps go out in order, each confirmed by a barrier on every switch it
        touches. A failed step fails its trails in the core (cleaned up and
        retried there); the change's later steps go on without them. The
        change's callbacks run at the end either way (they leave failed
        trails alone). A standby sends nothing.
        """
        if not self.leader or not change:
            if self.leader:
                self._callbacks(change)
            if then is not None:
                then(True)
            return

        def run(finished: Callable[[], None]) -> None:
            ok = True
            try:
                ok = self._run_steps(change)
                self._callbacks(change)
            except Exception:
                self.job_errors += 1
                ok = False
                LOG.exception("change failed")
            finally:
                finished()
            if then is not None:
                then(ok)

        self.order.submit(switches_of(change.steps), run)

    def _callbacks(self, change: Change) -> None:
        if change.done:
            with self.ctrl.lock:
                for callback in change.done:
                    callback()

    def _run_steps(self, change: Change) -> bool:
        """Send the steps of `change`; False if any failed somewhere."""
        steps = list(change.steps)
        ok = True
        for index in range(len(steps)):
            pause = change.pause_before.get(index, 0.0)
            if pause:
                time.sleep(pause)  # let packets in flight on an old path arrive
            failures = self.channel.run_step(index, steps[index])
            if not failures:
                continue
            ok = False
            with self.ctrl.lock:
                cleanup, verdict = self.ctrl.step_failed(index, steps[index], failures)
            for failure in failures:
                LOG.warning("switch %s: step %d failed: %s%s", dpid_str(failure.dpid),
                            index + 1, failure.reason,
                            f" ({type(failure.op).__name__})" if failure.op else "")
            steps[index + 1:] = without_trails(steps[index + 1:], set(verdict.trails))
            self._execute(cleanup)
            for dpid in verdict.resync:
                self._resync(dpid)
        return ok

    def _resync(self, dpid: int) -> None:
        """Audit a switch again after a failed step, with back-off."""
        attempt = self._resyncs.get(dpid, 0)
        self._resyncs[dpid] = attempt + 1

        def again() -> None:
            dp = self.datapaths.get(dpid)
            if dp is not None and not self._stopping.is_set():
                self.channel.send(dp, ofmsg.port_desc_request(dp))  # -> the audit

        timer = threading.Timer(retry_delay(attempt), again)
        timer.daemon = True
        timer.start()

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
            self._resyncs.pop(dpid, None)
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
            self._decide("port-status", lambda: self.ctrl.port_status(dp.id, port))
            if port.up:
                self._send_lldp(dp.id)

        self._submit("port-status", job)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _dead(self, ev: Any) -> None:
        dp = ev.datapath
        if dp is None or dp.id is None or not self.channel.detach(dp):
            return
        self._submit("switch-leave", lambda: self._decide(
            "switch-leave", lambda: self.ctrl.switch_leave(dp.id)))

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
        for port in list(sw.ports.values()):
            if port.up and port.hw_addr:
                self._packet_out(dp, port.number, discovery.build(dpid, port.number, port.hw_addr))

    def _lldp_loop(self) -> None:
        while not self._stopping.wait(self.settings.lldp_interval):
            for dpid in list(self.datapaths):
                self._send_lldp(dpid)
            self._submit("link-expiry", lambda: self._decide(
                "link-expiry", lambda: self.ctrl.expire_links(self.settings.link_timeout)))

    def _on_lldp(self, found: tuple[int, int], dpid: int, in_port: int) -> None:
        with self.ctrl.lock:
            change = self.ctrl.link_seen(found[0], found[1], dpid, in_port)
            parked = self.ctrl.release_parked(time.monotonic()) if change else []
        self._execute(change)
        if self.southbound is not None:
            for end in (found, (dpid, in_port)):
                if end not in self._mtu_done:
                    self._mtu_done.add(end)
                    self._mtu_jobs.put(end)
        for p in parked:  # a new link: packets that had no path may have one now
            self._on_ipv4(p.dpid, p.in_port, p.eth_src, p.eth_dst, p.ip_src, p.data,
                          p.received, p.deadline)

    def _mtu_loop(self) -> None:
        """Set mtu_request on link ports through OVSDB, off the OpenFlow threads."""
        from .ovsdb import OvsdbError

        while True:
            end = self._mtu_jobs.get()
            if end is None:
                return
            with self.ctrl.lock:
                link = self.ctrl.topo.link_from(*end)
                links = [((lk.src, lk.src_port), (lk.dst, lk.dst_port))
                         for lk in ([link] if link is not None else [])]
            for dpid, ports in link_port_mtus(links, self.settings.link_mtu).items():
                try:
                    changed = self.southbound.set_mtu(dpid, sorted(ports),
                                                      self.settings.link_mtu)
                except OvsdbError as exc:
                    LOG.warning("mtu_request not set on %s: %s", dpid_str(dpid), exc)
                    self._mtu_done.discard(end)  # the next LLDP sighting tries again
                    continue
                if changed:
                    with self.ctrl.lock:
                        self.ctrl.record("ovsdb", f"{dpid_str(dpid)}: mtu_request "
                                         f"{self.settings.link_mtu} on ports "
                                         f"{sorted(changed)}")

    # counters ------------------------------------------------------------
    def _stats_loop(self) -> None:
        while not self._stopping.wait(self.settings.stats_interval):
            self._submit("store-sync", self._maintain_store)
            if not self.leader:
                continue
            self._submit("leases", lambda: self._decide("leases", self._leases))
            self._submit("rebalance", self._rebalance)
            for dp in list(self.datapaths.values()):
                self.channel.send(dp, ofmsg.port_stats_request(dp))
                self.channel.send(dp, ofmsg.classifier_stats_request(
                    dp, make_cookie(KIND_TRAIL), COOKIE_MASK_KIND))

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
            "flow-removed", lambda: self.ctrl.classifier_idle(trail_id, match)))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _flow_stats(self, ev: Any) -> None:
        msg = ev.msg
        more = bool(msg.flags & msg.datapath.ofproto.OFPMPF_REPLY_MORE)
        if self.channel.flow_stats_reply(msg.datapath.id, msg.xid, msg.body, more):
            return  # a flow table read back for the audit
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

    def _on_arp(self, dpid: int, in_port: int, req: Any, received: float) -> None:
        with self.ctrl.lock, self.metrics.planning.time():
            decision = self.ctrl.arp_in(dpid, in_port, req.opcode, req.src_mac, req.src_ip,
                                        req.dst_ip)
        for out in decision.packets:
            dp = self.datapaths.get(out.dpid)
            if dp is not None:
                self._packet_out(dp, out.port, ofmsg.arp_frame(out))
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


def _start_thread(run: Callable[[], None]) -> None:
    threading.Thread(target=run, name="sdnscent-change", daemon=True).start()


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
