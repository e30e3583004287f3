"""Every OpenFlow 1.3 message the app sends, built here: flow specs into os-ken
messages, flow stats entries read back into flow specs (for the audit), and
the control messages (barriers, reads, roles, packet-outs, ARP frames)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from os_ken.lib.packet import arp, ethernet, icmpv6, ipv6, packet

from sdnscent.compiler import Op
from sdnscent.core.model import ArpPacket
from sdnscent.core.neighbours import NdPacket
from sdnscent.flows import (
    ETH_TYPE_ARP,
    ETH_TYPE_IPV6,
    ICMPV6_NA,
    IPPROTO_ICMPV6,
    TABLE_CLASSIFY,
    Action,
    FlowDelete,
    FlowSpec,
    Group,
    GroupDelete,
    GroupSpec,
    LearnConnection,
    MeterDelete,
    MeterSpec,
    Output,
    PopMpls,
    PushMpls,
    Resubmit,
    SetField,
    ToController,
)

# What LearnConnection copies from the packet into the learned entry, as
# (NXM field, bits): Open vSwitch checks the prerequisites (eth_type, ip_proto)
# as constants first.
_LEARNED_FIELDS = (("ipv4_src_nxm", 32), ("ipv4_dst_nxm", 32), ("tcp_src_nxm", 16),
                   ("tcp_dst_nxm", 16))

GROUP_TYPES = {"all": 0, "select": 1, "indirect": 2, "fast_failover": 3}
# masked matches the compiler writes: edge drops, prefixes through the gateway
MASKED_FIELDS = frozenset({"eth_dst", "ipv4_src", "ipv4_dst"})


def actions(dp: Any, acts: tuple[Action, ...]) -> list[Any]:
    """os-ken action objects for `acts`."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    out = []
    for act in acts:
        if isinstance(act, Output):
            out.append(parser.OFPActionOutput(act.port))
        elif isinstance(act, ToController):
            out.append(parser.OFPActionOutput(ofp.OFPP_CONTROLLER, act.max_len))
        elif isinstance(act, PushMpls):
            out.append(parser.OFPActionPushMpls(act.ethertype))
        elif isinstance(act, PopMpls):
            out.append(parser.OFPActionPopMpls(act.ethertype))
        elif isinstance(act, SetField):
            out.append(parser.OFPActionSetField(**{act.field: act.value}))
        elif isinstance(act, Group):
            out.append(parser.OFPActionGroup(act.group_id))
        elif isinstance(act, LearnConnection):
            out.append(learn_action(parser, act))
        elif isinstance(act, Resubmit):
            out.append(parser.NXActionResubmitTable(table_id=act.table))
        else:
            raise TypeError(f"unknown action {act!r}")
    return out


def learn_action(parser: Any, act: LearnConnection) -> Any:
    """The NXActionLearn of a LearnConnection: eth_type and ip_proto as constants,
    the addresses and ports copied from the packet."""
    specs = [parser.NXFlowSpecMatch(src=0x0800, dst=("eth_type_nxm", 0), n_bits=16),
             parser.NXFlowSpecMatch(src=6, dst=("ip_proto_nxm", 0), n_bits=8)]
    specs += [parser.NXFlowSpecMatch(src=(name, 0), dst=(name, 0), n_bits=bits)
              for name, bits in _LEARNED_FIELDS]
    return parser.NXActionLearn(table_id=act.table, specs=specs, idle_timeout=act.idle_timeout,
                                priority=act.priority, cookie=act.cookie)


def _learned(parser: Any, act: Any) -> LearnConnection:
    """The LearnConnection an NXActionLearn read back from a switch expresses."""
    want = learn_action(parser, LearnConnection(act.table_id, act.priority, act.cookie,
                                                act.idle_timeout))
    got = [(type(s).__name__, s.src, s.dst, s.n_bits) for s in act.specs]
    if got != [(type(s).__name__, s.src, s.dst, s.n_bits) for s in want.specs] \
            or act.hard_timeout or act.flags:
        raise UnparsedFlow("a learn action other than LearnConnection's")
    return LearnConnection(act.table_id, act.priority, act.cookie, act.idle_timeout)


def flow_mod(dp: Any, spec: FlowSpec) -> Any:
    """An OFPFlowMod (add) for `spec`."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    inst = []
    if spec.actions:
        inst.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS,
                                                 actions(dp, spec.actions)))
    if spec.meter is not None:
        inst.insert(0, parser.OFPInstructionMeter(spec.meter, ofp.OFPIT_METER))
    if spec.goto is not None:
        inst.append(parser.OFPInstructionGotoTable(spec.goto))
    return parser.OFPFlowMod(
        dp, cookie=spec.cookie, table_id=spec.table, command=ofp.OFPFC_ADD,
        idle_timeout=spec.idle_timeout, hard_timeout=spec.hard_timeout,
        priority=spec.priority, flags=ofp.OFPFF_SEND_FLOW_REM if spec.notify_removed else 0,
        match=parser.OFPMatch(**oxm_match(spec.match_dict)),
        instructions=inst)


def oxm_match(match: dict[str, int | str]) -> dict[str, Any]:
    """os-ken's form of a match: a masked value "value/mask" becomes (value, mask)."""
    return {k: tuple(v.split("/", 1)) if isinstance(v, str) and "/" in v else v
            for k, v in match.items()}


def flow_delete(dp: Any, op: FlowDelete) -> Any:
    """An OFPFlowMod (delete or delete-strict) for `op`."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return parser.OFPFlowMod(
        dp, cookie=op.cookie, cookie_mask=op.cookie_mask,
        table_id=ofp.OFPTT_ALL if op.table is None else op.table,
        command=ofp.OFPFC_DELETE_STRICT if op.strict else ofp.OFPFC_DELETE,
        priority=op.priority or 0, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
        match=parser.OFPMatch(**oxm_match(dict(op.match))))


def group_mod(dp: Any, spec: GroupSpec, command: str | None = None) -> Any:
    """An OFPGroupMod for `spec` (command add or modify; default: as the spec says)."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    buckets = [parser.OFPBucket(weight=b.weight,
                                watch_port=ofp.OFPP_ANY if b.watch_port is None else b.watch_port,
                                watch_group=ofp.OFPG_ANY, actions=actions(dp, b.actions))
               for b in spec.buckets]
    command = command or ("modify" if spec.modify else "add")
    cmd = {"add": ofp.OFPGC_ADD, "modify": ofp.OFPGC_MODIFY}[command]
    return parser.OFPGroupMod(dp, cmd, GROUP_TYPES[spec.kind], spec.group_id, buckets)


def group_delete(dp: Any, op: GroupDelete) -> Any:
    """An OFPGroupMod (delete) for one group or, with no id, all of them."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    gid = ofp.OFPG_ALL if op.group_id is None else op.group_id
    return parser.OFPGroupMod(dp, ofp.OFPGC_DELETE, 0, gid, [])


class UnparsedFlow(ValueError):
    """A flow stats entry holds something FlowSpec cannot express."""


def actions_from(dp: Any, acts: list[Any]) -> tuple[Action, ...]:
    """FlowSpec actions for os-ken action objects (the inverse of `actions`)."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    out: list[Action] = []
    for act in acts:
        if isinstance(act, parser.OFPActionOutput):
            out.append(ToController(act.max_len) if act.port == ofp.OFPP_CONTROLLER
                       else Output(act.port))
        elif isinstance(act, parser.OFPActionPushMpls):
            out.append(PushMpls(act.ethertype))
        elif isinstance(act, parser.OFPActionPopMpls):
            out.append(PopMpls(act.ethertype))
        elif isinstance(act, parser.OFPActionSetField):
            out.append(SetField(act.key, act.value))
        elif isinstance(act, parser.OFPActionGroup):
            out.append(Group(act.group_id))
        elif isinstance(act, parser.NXActionLearn):
            out.append(_learned(parser, act))
        elif isinstance(act, parser.NXActionResubmitTable):
            out.append(Resubmit(act.table_id))
        else:
            raise UnparsedFlow(f"action {type(act).__name__}")
    return tuple(out)


def flow_from_stats(dp: Any, entry: Any) -> FlowSpec:
    """A FlowSpec comparable with the compiler's for one OFPFlowStats entry.

    Raises UnparsedFlow for masked matches (but of MASKED_FIELDS), write/clear actions, meters and
    actions FlowSpec does not model (the caller falls back to a wipe).
    """
    ofp = dp.ofproto
    match: dict[str, int | str] = {}
    for name, value in entry.match.items():
        if isinstance(value, tuple):
            if name not in MASKED_FIELDS or not all(isinstance(v, str) for v in value):
                raise UnparsedFlow(f"masked match field {name}")
            value = "/".join(value)  # the compiler's "value/mask" (hosttraffic.EDGE_KINDS)
        match[name] = value.lower() if isinstance(value, str) else value
    acts: tuple[Action, ...] = ()
    goto = None
    meter = None
    for inst in entry.instructions:
        if inst.type == ofp.OFPIT_APPLY_ACTIONS and not acts:
            acts = actions_from(dp, inst.actions)
        elif inst.type == ofp.OFPIT_GOTO_TABLE:
            goto = inst.table_id
        elif inst.type == ofp.OFPIT_METER:
            meter = inst.meter_id
        else:
            raise UnparsedFlow(f"instruction type {inst.type}")
    spec = FlowSpec.make(dp.id, entry.table_id, entry.priority, match, acts, goto,
                         cookie=entry.cookie)
    return replace(spec, idle_timeout=entry.idle_timeout, hard_timeout=entry.hard_timeout,
                   notify_removed=bool(entry.flags & ofp.OFPFF_SEND_FLOW_REM), meter=meter)


def meter_mod(dp: Any, op: MeterSpec | MeterDelete) -> Any:
    """An OFPMeterMod: add or modify a one-band drop meter (kbit/s), or delete meters."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    if isinstance(op, MeterDelete):
        return parser.OFPMeterMod(dp, command=ofp.OFPMC_DELETE, flags=0,
                                  meter_id=ofp.OFPM_ALL if op.meter_id is None else op.meter_id)
    return parser.OFPMeterMod(
        dp, command=ofp.OFPMC_MODIFY if op.modify else ofp.OFPMC_ADD,
        flags=ofp.OFPMF_KBPS | ofp.OFPMF_BURST, meter_id=op.meter_id,
        bands=[parser.OFPMeterBandDrop(rate=op.rate_kbps, burst_size=op.burst_kb)])


def to_message(dp: Any, op: Op) -> Any:
    """The OpenFlow message for any flow operation."""
    if isinstance(op, FlowSpec):
        return flow_mod(dp, op)
    if isinstance(op, MeterSpec | MeterDelete):
        return meter_mod(dp, op)
    if isinstance(op, FlowDelete):
        return flow_delete(dp, op)
    if isinstance(op, GroupDelete):
        return group_delete(dp, op)
    return group_mod(dp, op)


# control messages -----------------------------------------------------------------
def barrier(dp: Any) -> Any:
    """An OFPBarrierRequest."""
    return dp.ofproto_parser.OFPBarrierRequest(dp)


def flow_stats_request(dp: Any, cookie: int, mask: int, table: int | None = None) -> Any:
    """Read the flows whose cookie matches (all tables unless `table`)."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return parser.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL if table is None else table,
                                      ofp.OFPP_ANY, ofp.OFPG_ANY, cookie, mask,
                                      parser.OFPMatch())


def classifier_stats_request(dp: Any, cookie: int, mask: int) -> Any:
    """Read the ingress classifiers (table 0) whose cookie matches: trail counters."""
    return flow_stats_request(dp, cookie, mask, TABLE_CLASSIFY)


def port_desc_request(dp: Any) -> Any:
    """Ask for the switch's ports (the answer starts the switch's audit)."""
    return dp.ofproto_parser.OFPPortDescStatsRequest(dp, 0)


def port_stats_request(dp: Any) -> Any:
    """Ask for every port's counters."""
    return dp.ofproto_parser.OFPPortStatsRequest(dp, 0, dp.ofproto.OFPP_ANY)


def role_request(dp: Any, master: bool, generation: int) -> Any:
    """Claim the master role (or take the slave role) with `generation`."""
    ofp = dp.ofproto
    role = ofp.OFPCR_ROLE_MASTER if master else ofp.OFPCR_ROLE_SLAVE
    return dp.ofproto_parser.OFPRoleRequest(dp, role, generation)


def packet_out(dp: Any, port: int, data: bytes, in_port: int | None = None) -> Any:
    """Send `data` out of `port` (OFPP_TABLE: through the pipeline as if from `in_port`)."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return parser.OFPPacketOut(dp, buffer_id=ofp.OFP_NO_BUFFER,
                               in_port=ofp.OFPP_CONTROLLER if in_port is None else in_port,
                               actions=[parser.OFPActionOutput(port)], data=data)


def arp_frame(out: ArpPacket) -> bytes:
    """The Ethernet frame of an ARP packet the core decided to send."""
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(out.eth_dst, out.eth_src, ETH_TYPE_ARP))
    pkt.add_protocol(arp.arp(opcode=out.opcode, src_mac=out.src_mac, src_ip=out.src_ip,
                             dst_mac=out.dst_mac, dst_ip=out.dst_ip))
    pkt.serialize()
    return bytes(pkt.data)


ND_HOP_LIMIT = 255  # RFC 4861: Neighbour Discovery is accepted only with hop limit 255
NA_SOLICITED, NA_OVERRIDE = 2, 1  # an NA's S and O flags, in os-ken's 3-bit `res`


def nd_frame(out: NdPacket) -> bytes:
    """The Ethernet frame of a Neighbour Solicitation or Advertisement the core decided to
    send (the ICMPv6 checksum is computed here)."""
    if out.kind == ICMPV6_NA:
        option = icmpv6.nd_option_tla(hw_src=out.lladdr) if out.lladdr else None
        flags = NA_OVERRIDE | (NA_SOLICITED if out.solicited else 0)
        body = icmpv6.nd_neighbor(res=flags, dst=out.target, option=option)
    else:
        option = icmpv6.nd_option_sla(hw_src=out.lladdr) if out.lladdr else None
        body = icmpv6.nd_neighbor(res=0, dst=out.target, option=option)
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(out.eth_dst, out.eth_src, ETH_TYPE_IPV6))
    pkt.add_protocol(ipv6.ipv6(hop_limit=ND_HOP_LIMIT, nxt=IPPROTO_ICMPV6, src=out.ip_src,
                               dst=out.ip_dst))
    pkt.add_protocol(icmpv6.icmpv6(type_=out.kind, code=0, data=body))
    pkt.serialize()
    return bytes(pkt.data)


def frame(out: ArpPacket | NdPacket) -> bytes:
    """The frame of an ARP or ND packet the core decided to send."""
    return nd_frame(out) if isinstance(out, NdPacket) else arp_frame(out)
