"""The real os-ken app driven through fake datapaths: every byte it sends is decoded
with os-ken's parser, applied to the forwarding simulator, and answered as a
switch would (barrier replies, empty table reads, refusals on request).

Three switches in a line, h1 on s1 port 1 and h2 on s3 port 2. Discovery runs over the
app's own LLDP packet-outs, hosts over ARP packet-ins and probes.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from os_ken.lib.packet import arp, ethernet, packet
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from apps import ofmsg
from apps.settings import SETTINGS
from sdnscent.flows import COOKIE_MASK_ALL, ETH_TYPE_ARP, FlowDelete, FlowSpec, cookie_trail_id
from sdnscent.simulator import Network, Switch, both_ways, ipv4_packet
from sdnscent.trails import TrailState

LINKS = [((1, 2), (2, 1)), ((2, 2), (3, 1))]  # s1:2-s2:1, s2:2-s3:1
HOSTS = {(1, 1): ("h1", "00:00:00:00:00:01", "10.0.0.1"),
         (3, 2): ("h2", "00:00:00:00:00:02", "10.0.0.2")}
WIRES = both_ways(LINKS)


class FakeDatapath:
    """A switch as os-ken's Datapath looks to the app; decodes what it is sent."""

    def __init__(self, dpid: int, world: World) -> None:
        self.id = dpid
        self.ofproto = ofp
        self.ofproto_parser = parser
        self.xid = 0
        self.world = world
        self.refuse: Callable[[FlowSpec], bool] = lambda flow: False

    def set_xid(self, msg: Any) -> int:
        self.xid = (self.xid + 1) & ofp.MAX_XID
        msg.set_xid(self.xid)
        return self.xid

    def send_msg(self, msg: Any) -> None:
        if msg.xid is None:
            self.set_xid(msg)
        msg.serialize()
        self.send(bytes(msg.buf))

    def send(self, buf: bytes) -> bool:
        while buf:
            version, kind, length, xid = struct.unpack_from("!BBHI", buf)
            self.world.received(self, kind, xid, buf[:length])
            buf = buf[length:]
        return True


class World:
    """The fake switches, the simulator holding what they were sent, and the app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.dps = {dpid: FakeDatapath(dpid, self) for dpid in (1, 2, 3)}
        self.net = Network({dpid: Switch(dpid) for dpid in self.dps}, WIRES,
                           {port: name for port, (name, _, _) in HOSTS.items()})
        self.packet_outs: list[tuple[int, int, bytes]] = []
        self.errors_sent = 0

    def event(self, msg: Any) -> SimpleNamespace:
        return SimpleNamespace(msg=msg)

    def received(self, dp: FakeDatapath, kind: int, xid: int, raw: bytes) -> None:
        if kind == ofp.OFPT_BARRIER_REQUEST:
            reply = parser.OFPBarrierReply(dp)
            reply.xid = xid
            self.app._barrier_reply(self.event(reply))
        elif kind == ofp.OFPT_FLOW_MOD:
            self.flow_mod(dp, xid, raw)
        elif kind == ofp.OFPT_MULTIPART_REQUEST:
            (mp_type,) = struct.unpack_from("!H", raw, 8)
            if mp_type == ofp.OFPMP_FLOW:  # a table read back: ours is empty at first
                reply = parser.OFPFlowStatsReply(dp, body=[], flags=0)
                reply.xid = xid
                self.app._flow_stats(self.event(reply))
        elif kind == ofp.OFPT_PACKET_OUT:  # os-ken cannot parse these: by hand
            actions_len = struct.unpack_from("!H", raw, 16)[0]
            action_type, _, port = struct.unpack_from("!HHI", raw, 24)
            assert action_type == ofp.OFPAT_OUTPUT
            self.packet_outs.append((dp.id, port, raw[24 + actions_len:]))

    def flow_mod(self, dp: FakeDatapath, xid: int, raw: bytes) -> None:
        msg = parser.OFPFlowMod.parser(dp, ofp.OFP_VERSION, ofp.OFPT_FLOW_MOD, len(raw), xid,
                                       raw)
        if msg.command == ofp.OFPFC_ADD:
            flow = ofmsg.flow_from_stats(dp, msg)
            if dp.refuse(flow):
                error = parser.OFPErrorMsg(dp, type_=ofp.OFPET_FLOW_MOD_FAILED,
                                           code=ofp.OFPFMFC_TABLE_FULL, data=raw[:64])
                error.xid = xid
                self.errors_sent += 1
                self.app._error(self.event(error))
                return
            self.net.apply([flow])
        elif msg.command in (ofp.OFPFC_DELETE, ofp.OFPFC_DELETE_STRICT):
            match = tuple(sorted((k, v) for k, v in msg.match.items()))
            strict = msg.command == ofp.OFPFC_DELETE_STRICT
            self.net.apply([FlowDelete(dp.id, msg.cookie, msg.cookie_mask,
                                       None if msg.table_id == ofp.OFPTT_ALL else msg.table_id,
                                       match, msg.priority if strict else None, strict)])

    def deliver_packet_outs(self) -> int:
        """Frames sent out of switch ports reach the far switch (LLDP) or the host
        (ARP probes, answered). Returns how many were delivered."""
        outs, self.packet_outs = self.packet_outs, []
        for dpid, port, data in outs:
            eth = packet.Packet(data).get_protocol(ethernet.ethernet)
            if (dpid, port) in WIRES:
                self.packet_in(*WIRES[(dpid, port)], data)
            elif (dpid, port) in HOSTS and eth.ethertype == ETH_TYPE_ARP:
                req = packet.Packet(data).get_protocol(arp.arp)
                name, mac, ip = HOSTS[(dpid, port)]
                if req.opcode == arp.ARP_REQUEST and req.dst_ip == ip:
                    self.packet_in(dpid, port, arp_frame(arp.ARP_REPLY, mac, ip,
                                                         req.src_mac, req.src_ip))
        return len(outs)

    def packet_in(self, dpid: int, port: int, data: bytes, table: int = 0) -> None:
        dp = self.dps[dpid]
        msg = parser.OFPPacketIn(dp, buffer_id=ofp.OFP_NO_BUFFER, total_len=len(data),
                                 reason=ofp.OFPR_ACTION, table_id=table, cookie=0,
                                 match=parser.OFPMatch(in_port=port), data=data)
        self.app._packet_in(self.event(msg))


def arp_frame(opcode: int, src_mac: str, src_ip: str, dst_mac: str, dst_ip: str) -> bytes:
    pkt = packet.Packet()
    eth_dst = "ff:ff:ff:ff:ff:ff" if opcode == arp.ARP_REQUEST else dst_mac
    pkt.add_protocol(ethernet.ethernet(eth_dst, src_mac, ETH_TYPE_ARP))
    pkt.add_protocol(arp.arp(opcode=opcode, src_mac=src_mac, src_ip=src_ip,
                             dst_mac=dst_mac, dst_ip=dst_ip))
    pkt.serialize()
    return bytes(pkt.data)


def settle(world: World, timeout: float = 10.0) -> None:
    """Run queued jobs on this thread and wait for changes in flight, until quiet."""
    app = world.app
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        while not app.worker.jobs.empty():
            item = app.worker.jobs.get()
            if item is not None:
                item[1]()
                busy = True
        if app.runner.order.pending() or app.channel.in_flight():
            busy = True
            time.sleep(0.01)
        if world.deliver_packet_outs():
            busy = True
        if not busy:
            time.sleep(0.05)  # audit threads reading tables
            if app.worker.jobs.empty() and not app.runner.order.pending() and not world.packet_outs:
                return
    raise AssertionError("the app did not settle")


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name, value in {"store_url": "memory://", "api_listen": None, "policy_file": None,
                        "trail_lease": 0, "ovsdb_targets": (), "packet_in_rate": 0.0}.items():
        monkeypatch.setattr(SETTINGS, name, value)
    from apps.scent_trail import ScentTrailApp

    app = ScentTrailApp()
    world = World(app)
    for dp in world.dps.values():
        ports = [parser.OFPPort(p, f"02:00:00:00:{dp.id:02x}:{p:02x}", f"s{dp.id}-eth{p}".encode(),
                                0, 0, 0, 0, 0, 0, 10_000_000, 0) for p in (1, 2)]
        ports.append(parser.OFPPort(ofp.OFPP_LOCAL, "02:00:00:00:00:ff", f"s{dp.id}".encode(),
                                    0, 0, 0, 0, 0, 0, 0, 0))
        app._port_desc(world.event(SimpleNamespace(datapath=dp, body=ports)))
    settle(world)
    yield world
    app._stopping.set()


def ping_setup(world: World) -> None:
    """h1 ARPs for h2: the app probes, h2 answers, trails go in."""
    world.packet_in(1, 1, arp_frame(arp.ARP_REQUEST, "00:00:00:00:00:01", "10.0.0.1",
                                    "00:00:00:00:00:00", "10.0.0.2"))
    settle(world)


def test_discovery_over_the_apps_own_lldp_and_a_trail_the_simulator_delivers(
        world: World) -> None:
    ctrl = world.app.ctrl
    assert len(ctrl.topo.links()) == 4  # both directions of both cables, from its LLDP
    ping_setup(world)
    trail = ctrl.trail_for_pair("00:00:00:00:00:01", "00:00:00:00:00:02")
    assert trail is not None and trail.state is TrailState.ACTIVE
    trace = world.net.send("h1", ipv4_packet("10.0.0.1", "10.0.0.2",
                                             eth_src="00:00:00:00:00:01",
                                             eth_dst="00:00:00:00:00:02"))
    assert trace.delivered_to == ("h2",), trace.format()
    assert {t.packet.mpls_label for t in trace.transits} == {trail.label}


def test_a_refused_flow_mod_fails_its_trail_cleans_up_and_the_retry_installs_it(
        world: World) -> None:
    ctrl = world.app.ctrl
    world.dps[2].refuse = lambda flow: cookie_trail_id(flow.cookie) is not None  # table full
    ping_setup(world)
    assert world.errors_sent
    trail = ctrl.trail_for_pair("00:00:00:00:00:01", "00:00:00:00:00:02")
    assert trail is not None and trail.state is TrailState.FAILED
    view = ctrl.trail_view(trail)
    assert "OFPFMFC_TABLE_FULL" in view["failure"]["reason"]
    assert any(e.kind == "trail-failed" and e.trail == trail.id for e in ctrl.events)
    for sw in world.net.switches.values():  # nothing of it is left half-installed
        assert not [f for f in sw.flows if cookie_trail_id(f.cookie) == trail.id]
    world.dps[2].refuse = lambda flow: False  # the table has room again
    ctrl.s.retries.waiting[trail.id].due = 0.0  # the back-off is over
    world.app._decide(world.app._leases)
    settle(world)
    trail = ctrl.store.get(trail.id)
    assert trail is not None and trail.state is TrailState.ACTIVE
    assert "failure" not in ctrl.trail_view(trail)
    trace = world.net.send("h1", ipv4_packet("10.0.0.1", "10.0.0.2",
                                             eth_src="00:00:00:00:00:01",
                                             eth_dst="00:00:00:00:00:02"))
    assert trace.delivered_to == ("h2",), trace.format()


def test_a_switch_that_never_confirms_delays_only_changes_that_touch_it(
        world: World) -> None:
    app = world.app
    app.channel.barrier_timeout = 0.5
    silent = world.dps[2]
    silent.send = lambda buf: True  # s2 stops answering (and applying) anything
    ping_setup(world)
    trail = app.ctrl.trail_for_pair("00:00:00:00:00:01", "00:00:00:00:00:02")
    assert trail is not None and trail.state is TrailState.FAILED  # crossed the dead switch
    started = time.monotonic()
    done: list[bool] = []
    flow = FlowSpec.make(1, 0, 5, {"in_port": 1, "eth_type": 0x0806}, cookie=0x1)
    from sdnscent.controller import Change

    app._execute(Change([{1: [flow]}]), lambda ok: done.append(ok))  # s1 only
    while not done and time.monotonic() - started < 5:
        time.sleep(0.01)
    assert done == [True] and time.monotonic() - started < 0.4
    assert COOKIE_MASK_ALL  # the mask constant the cleanup used is the full one


def test_a_drain_pause_does_not_hold_up_other_changes_to_its_switches(world: World) -> None:
    app = world.app
    from sdnscent.controller import Change

    ping_setup(world)
    first = FlowSpec.make(1, 0, 5, {"in_port": 1, "eth_type": 0x0806}, cookie=0x1)
    later = FlowSpec.make(1, 0, 6, {"in_port": 2, "eth_type": 0x0806}, cookie=0x2)
    other = FlowSpec.make(1, 0, 7, {"in_port": 3, "eth_type": 0x0806}, cookie=0x3)
    finished: list[str] = []
    started = time.monotonic()
    drained = Change([{1: [first]}, {1: [later]}], [lambda: finished.append("drained")],
                     pause_before={1: 1.0})
    app._execute(drained, lambda ok: finished.append(f"drained then {ok}"))
    time.sleep(0.2)  # the first step went out; the change now waits out its drain
    app._execute(Change([{1: [other]}]), lambda ok: finished.append("other"))
    while len(finished) < 3 and time.monotonic() - started < 5:
        time.sleep(0.01)
    assert finished == ["other", "drained", "drained then True"], finished
    assert time.monotonic() - started >= 1.0  # the drained step waited its pause
    installed = {(f.priority, f.cookie) for f in world.net.switches[1].flows}
    assert {(5, 1), (6, 2), (7, 3)} <= installed
