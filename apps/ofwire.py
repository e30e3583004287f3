"""OpenFlow 1.3 flow-mod (add) encoding straight to bytes, for bulk installs.

os-ken builds a message object per flow mod (about 65 us each in Python, plus
18 us to serialise): a switch that connects with 10,000 trails would wait
seconds for the controller, not for itself. This encoder writes the same bytes
with struct from a FlowSpec (the fields, actions and instructions the compiler
uses) in about a tenth of that; ofmsg.flow_mod stays the reference (tests
compare the bytes) and the fallback for anything this encoder does not know.
"""

from __future__ import annotations

import ipaddress
import struct

from sdnscent.flows import (
    Action,
    FlowSpec,
    Group,
    Output,
    PopMpls,
    PushMpls,
    SetField,
    ToController,
)

OFP_VERSION = 0x04
OFPT_FLOW_MOD = 14
OFPFC_ADD = 0
OFPFF_SEND_FLOW_REM = 1
NO_BUFFER = 0xFFFFFFFF
OFPP_CONTROLLER = 0xFFFFFFFD
OFPCML_MAX = 0xFFE5  # max_len os-ken puts in an output action by default
OXM_CLASS = 0x8000

# name: (OXM field number, value length, kind)
FIELDS: dict[str, tuple[int, int, str]] = {
    "in_port": (0, 4, "int"), "eth_dst": (3, 6, "mac"), "eth_src": (4, 6, "mac"),
    "eth_type": (5, 2, "int"), "ip_dscp": (8, 1, "int"), "ip_proto": (10, 1, "int"),
    "ipv4_src": (11, 4, "ip"), "ipv4_dst": (12, 4, "ip"), "tcp_src": (13, 2, "int"),
    "tcp_dst": (14, 2, "int"), "udp_src": (15, 2, "int"), "udp_dst": (16, 2, "int"),
    "mpls_label": (34, 4, "int"), "mpls_tc": (35, 1, "int"),
    "ipv6_src": (26, 16, "ip6"), "ipv6_dst": (27, 16, "ip6"), "icmpv6_type": (29, 1, "int"),
}

_HEADER = struct.Struct("!BBHI")
_FLOW_MOD = struct.Struct("!QQBBHHHIIIH2x")


class Unsupported(ValueError):
    """A field or action this encoder does not handle (use ofmsg.flow_mod)."""


def _value(name: str, value: int | str) -> bytes:
    try:
        number, length, kind = FIELDS[name]
    except KeyError:
        raise Unsupported(f"OXM field {name}") from None
    if kind == "mac":
        return bytes.fromhex(str(value).replace(":", ""))
    if kind == "ip":
        return ipaddress.IPv4Address(value).packed
    if kind == "ip6":
        return ipaddress.IPv6Address(value).packed
    return int(value).to_bytes(length, "big")


def _oxm(name: str, value: int | str) -> bytes:
    if isinstance(value, str) and "/" in value:  # "value/mask": has_mask set, both follow
        if FIELDS.get(name, (0, 0, ""))[2] not in ("mac", "ip"):
            raise Unsupported(f"masked OXM field {name}")
        plain, mask = value.split("/", 1)
        body = _value(name, plain) + _value(name, mask)
        return struct.pack("!HBB", OXM_CLASS, FIELDS[name][0] << 1 | 1, len(body)) + body
    body = _value(name, value)
    return struct.pack("!HBB", OXM_CLASS, FIELDS[name][0] << 1, len(body)) + body


def _pad8(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 8)


def match_bytes(match: tuple[tuple[str, int | str], ...]) -> bytes:
    """An OXM match, fields in field-number order (prerequisites come first)."""
    try:
        fields = sorted(match, key=lambda item: FIELDS[item[0]][0])
    except KeyError as exc:
        raise Unsupported(f"OXM field {exc.args[0]}") from None
    body = b"".join(_oxm(name, value) for name, value in fields)
    return _pad8(struct.pack("!HH", 1, 4 + len(body)) + body)


def action_bytes(action: Action) -> bytes:
    """One action."""
    if isinstance(action, Output):
        return struct.pack("!HHIH6x", 0, 16, action.port, OFPCML_MAX)
    if isinstance(action, ToController):
        return struct.pack("!HHIH6x", 0, 16, OFPP_CONTROLLER, action.max_len)
    if isinstance(action, PushMpls):
        return struct.pack("!HHH2x", 19, 8, action.ethertype)
    if isinstance(action, PopMpls):
        return struct.pack("!HHH2x", 20, 8, action.ethertype)
    if isinstance(action, Group):
        return struct.pack("!HHI", 22, 8, action.group_id)
    if isinstance(action, SetField):
        oxm = _oxm(action.field, action.value)
        return _pad8(struct.pack("!HH", 25, len(_pad8(b"1234" + oxm))) + oxm)
    raise Unsupported(f"action {action!r}")


def flow_add(spec: FlowSpec, xid: int) -> bytes:
    """The OFPT_FLOW_MOD (add) of `spec` as sent on the wire."""
    instructions = b""
    if spec.meter is not None:
        instructions += struct.pack("!HHI", 6, 8, spec.meter)
    if spec.actions:
        acts = b"".join(action_bytes(a) for a in spec.actions)
        instructions += struct.pack("!HH4x", 4, 8 + len(acts)) + acts
    if spec.goto is not None:
        instructions += struct.pack("!HHB3x", 1, 8, spec.goto)
    body = _FLOW_MOD.pack(spec.cookie, 0, spec.table, OFPFC_ADD, spec.idle_timeout,
                          spec.hard_timeout, spec.priority, NO_BUFFER, 0, 0,
                          OFPFF_SEND_FLOW_REM if spec.notify_removed else 0)
    body += match_bytes(spec.match) + instructions
    return _HEADER.pack(OFP_VERSION, OFPT_FLOW_MOD, _HEADER.size + len(body), xid) + body
