"""A pure-Python forwarding simulator over FlowSpec/GroupSpec with OpenFlow 1.3 semantics.

Tests use it to prove where a packet goes (MPLS push/set/pop, all/indirect/select/
fast-failover groups, packet-ins, drops, loops) across a wired set of switches,
without a switch. Ports can be marked down (`Network.fail_link`): a fast-failover
group then skips buckets watching them and an output to them is dropped.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from .flows import (
    ETH_TYPE_IPV4,
    ETH_TYPE_MPLS,
    OFPP_IN_PORT,
    Action,
    Bucket,
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
from .pipeline import TABLE_CLASSIFY

# OpenFlow 1.3 reserved ports that the simulator models; the others (FLOOD,
# ALL, NORMAL, LOCAL, TABLE, ANY) are refused at load: the design never floods.
# OFPP_IN_PORT (from flows) sends a packet back out of the port it came in on; an
# output to that port by its number is dropped (DROP_IN_PORT), as a switch does.
OFPP_MAX = 0xFFFFFF00
OFPP_CONTROLLER = 0xFFFFFFFD
MAX_TABLE = 254
ETH_TYPE_MPLS_MCAST = 0x8848
ETH_TYPE_IPV6 = 0x86DD
IPPROTO_TCP = 6
IPPROTO_UDP = 17
MPLS_LABEL_MAX = 2**20 - 1

MPLS_ETH_TYPES = frozenset({ETH_TYPE_MPLS, ETH_TYPE_MPLS_MCAST})
GROUP_KINDS = ("all", "select", "indirect", "fast_failover")

# Drop reasons (Drop.reason).
DROP_TABLE_MISS = "table-miss"
DROP_BY_FLOW = "dropped-by-flow"  # a flow matched and emitted nothing
DROP_IN_PORT = "output-to-in-port"  # suppressed, as a switch does without OFPP_IN_PORT
DROP_UNCONNECTED = "unconnected-port"
DROP_EMPTY_GROUP = "empty-group"
DROP_PORT_DOWN = "port-down"  # output to a port marked down (Network.fail_link)
DROP_NO_LIVE_BUCKET = "no-live-bucket"  # a fast-failover group whose watched ports are all down

Port = tuple[int, int]  # (dpid, port number)
_Visit = tuple[int, int, "Packet"]  # (dpid, in_port, packet) on a copy's path


class SimulationError(Exception):
    """Base class: the flows (or the packet) cannot be executed as OpenFlow would."""


class FlowTableError(SimulationError, ValueError):
    """A flow or group is invalid; raised when it is loaded (a compiler bug)."""


class AmbiguousMatchError(SimulationError):
    """Two flows of the same priority in one table both match a packet."""


class ActionError(SimulationError):
    """An action cannot apply to the packet (pop without MPLS, set mpls_label on IP...)."""


class TopologyError(SimulationError, ValueError):
    """The links/hosts wiring given to a Network is inconsistent."""


# Fields ------------------------------------------------------------------

_MAC_FIELDS = frozenset({"eth_src", "eth_dst"})
_IPV4_FIELDS = frozenset({"ipv4_src", "ipv4_dst"})
_IPV6_FIELDS = frozenset({"ipv6_src", "ipv6_dst"})
IPPROTO_ICMPV6 = 58
_L4_FIELDS = frozenset({"tcp_src", "tcp_dst", "udp_src", "udp_dst"})
_INT_RANGES: dict[str, tuple[int, int]] = {
    "in_port": (1, OFPP_MAX),
    "eth_type": (0, 0xFFFF),
    "ip_proto": (0, 0xFF),
    "ip_dscp": (0, 63),
    "tcp_src": (0, 0xFFFF),
    "tcp_dst": (0, 0xFFFF),
    "udp_src": (0, 0xFFFF),
    "udp_dst": (0, 0xFFFF),
    "mpls_label": (0, MPLS_LABEL_MAX),
    "mpls_tc": (0, 7),
    "icmpv6_type": (0, 0xFF),
}
MATCH_FIELDS = frozenset(_INT_RANGES) | _MAC_FIELDS | _IPV4_FIELDS | _IPV6_FIELDS
SETTABLE_FIELDS = _MAC_FIELDS | _IPV4_FIELDS | _L4_FIELDS | {"mpls_label", "mpls_tc"}
# OXM prerequisites: field -> (field it needs, allowed values of that field).
PREREQUISITES: dict[str, tuple[str, frozenset[int]]] = {
    "ipv4_src": ("eth_type", frozenset({ETH_TYPE_IPV4})),
    "ipv4_dst": ("eth_type", frozenset({ETH_TYPE_IPV4})),
    "ipv6_src": ("eth_type", frozenset({ETH_TYPE_IPV6})),
    "ipv6_dst": ("eth_type", frozenset({ETH_TYPE_IPV6})),
    "icmpv6_type": ("ip_proto", frozenset({IPPROTO_ICMPV6})),
    "ip_proto": ("eth_type", frozenset({ETH_TYPE_IPV4, ETH_TYPE_IPV6})),
    "ip_dscp": ("eth_type", frozenset({ETH_TYPE_IPV4, ETH_TYPE_IPV6})),
    "tcp_src": ("ip_proto", frozenset({IPPROTO_TCP})),
    "tcp_dst": ("ip_proto", frozenset({IPPROTO_TCP})),
    "udp_src": ("ip_proto", frozenset({IPPROTO_UDP})),
    "udp_dst": ("ip_proto", frozenset({IPPROTO_UDP})),
    "mpls_label": ("eth_type", MPLS_ETH_TYPES),
    "mpls_tc": ("eth_type", MPLS_ETH_TYPES),
}


def _check_value(name: str, value: object) -> int | str:
    """Validate one OXM value's type and range; return it normalised."""
    if name in _INT_RANGES:
        low, high = _INT_RANGES[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name}={value!r}: expected an integer in {low}..{high}")
        return value
    if name in _MAC_FIELDS:
        parts = value.split(":") if isinstance(value, str) else []
        if len(parts) != 6 or not all(len(p) == 2 for p in parts):
            raise ValueError(f"{name}={value!r}: expected a MAC address aa:bb:cc:dd:ee:ff")
        try:
            bytes.fromhex("".join(parts))
        except ValueError:
            raise ValueError(f"{name}={value!r}: expected a MAC address") from None
        return value.lower()
    if name in _IPV4_FIELDS:
        if not isinstance(value, str):
            raise ValueError(f"{name}={value!r}: expected an IPv4 address string")
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            raise ValueError(f"{name}={value!r}: expected an IPv4 address") from None
    if name in _IPV6_FIELDS:
        try:
            return ipaddress.IPv6Address(value).compressed  # type: ignore[arg-type]
        except ValueError:
            raise ValueError(f"{name}={value!r}: expected an IPv6 address") from None
    raise ValueError(f"unknown field {name!r}")


# Packets -------------------------------------------------------------------


@dataclass(frozen=True)
class Packet:
    """A packet's headers by OXM name, as a switch sees them.

    `eth_type` is the outermost ethertype (0x8847 while a label is on);
    `mpls` is the label stack, outermost first, with `mpls_tcs` its traffic
    classes (zeros when omitted); `payload_type` is the ethertype under the
    stack. IP/L4 fields stay in the packet under a label but are invisible to
    matching and hashing until the last label is popped.
    """

    eth_src: str
    eth_dst: str
    eth_type: int
    ipv4_src: str | None = None
    ipv4_dst: str | None = None
    ipv6_src: str | None = None
    ipv6_dst: str | None = None
    icmpv6_type: int | None = None
    ip_proto: int | None = None
    ip_dscp: int | None = None
    tcp_src: int | None = None
    tcp_dst: int | None = None
    udp_src: int | None = None
    udp_dst: int | None = None
    mpls: tuple[int, ...] = ()
    mpls_tcs: tuple[int, ...] = ()
    payload_type: int | None = None

    def __post_init__(self) -> None:
        for name in ("eth_src", "eth_dst", "eth_type", *_IPV4_FIELDS, *_IPV6_FIELDS,
                     "icmpv6_type", "ip_proto", "ip_dscp", *_L4_FIELDS):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _check_value(name, value))
        for name in _L4_FIELDS:
            proto = IPPROTO_TCP if name.startswith("tcp") else IPPROTO_UDP
            if getattr(self, name) is not None and self.ip_proto != proto:
                raise ValueError(f"{name} given but ip_proto is {self.ip_proto}, not {proto}")
        if self.mpls and not self.mpls_tcs:
            object.__setattr__(self, "mpls_tcs", (0,) * len(self.mpls))
        if len(self.mpls_tcs) != len(self.mpls):
            raise ValueError(f"mpls_tcs {self.mpls_tcs} does not pair with labels {self.mpls}")
        for label, tc in zip(self.mpls, self.mpls_tcs, strict=True):
            _check_value("mpls_label", label)
            _check_value("mpls_tc", tc)
        if self.mpls:
            if self.eth_type not in MPLS_ETH_TYPES:
                raise ValueError(f"labelled packet has eth_type {self.eth_type:#06x}, not MPLS")
            if self.payload_type is None:
                raise ValueError("labelled packet needs payload_type (ethertype under the labels)")
        else:
            if self.eth_type in MPLS_ETH_TYPES:
                raise ValueError(f"eth_type {self.eth_type:#06x} needs at least one MPLS label")
            if self.payload_type is not None:
                raise ValueError("payload_type is only meaningful under an MPLS label")

    @property
    def mpls_label(self) -> int | None:
        """The outermost label, or None without MPLS."""
        return self.mpls[0] if self.mpls else None

    @property
    def mpls_tc(self) -> int | None:
        """The outermost label's traffic class, or None without MPLS."""
        return self.mpls_tcs[0] if self.mpls else None

    @property
    def is_ipv4(self) -> bool:
        """True when the switch can see an IPv4 header (no label on top)."""
        return self.eth_type == ETH_TYPE_IPV4

    @property
    def is_ipv6(self) -> bool:
        """True when the switch can see an IPv6 header (no label on top)."""
        return self.eth_type == ETH_TYPE_IPV6

    @property
    def is_ip(self) -> bool:
        """True when the switch can see an IPv4 or IPv6 header."""
        return self.is_ipv4 or self.is_ipv6

    def get(self, name: str) -> int | str | None:
        """The value a switch matches for OXM field `name`; None when not visible."""
        if name in ("mpls_label", "mpls_tc"):
            return getattr(self, name)
        if name in ("eth_src", "eth_dst", "eth_type"):
            return getattr(self, name)
        if name in _IPV4_FIELDS:
            return getattr(self, name) if self.is_ipv4 else None
        if name in _IPV6_FIELDS:
            return getattr(self, name) if self.is_ipv6 else None
        if name in ("ip_proto", "ip_dscp"):
            return getattr(self, name) if self.is_ip else None
        if name == "icmpv6_type":
            return self.icmpv6_type if self.is_ipv6 and self.ip_proto == IPPROTO_ICMPV6 else None
        if name in _L4_FIELDS:
            proto = IPPROTO_TCP if name.startswith("tcp") else IPPROTO_UDP
            return getattr(self, name) if self.is_ip and self.ip_proto == proto else None
        raise ValueError(f"{name!r} is not a packet header field")


def ipv4_packet(
    ipv4_src: str,
    ipv4_dst: str,
    *,
    eth_src: str = "00:00:00:00:00:01",
    eth_dst: str = "00:00:00:00:00:02",
    ip_proto: int = IPPROTO_TCP,
    src_port: int | None = None,
    dst_port: int | None = None,
    mpls: tuple[int, ...] = (),
    dscp: int = 0,
) -> Packet:
    """Build an IPv4 packet; ports go to tcp_* or udp_* per `ip_proto`.

    `mpls` puts labels (outermost first) on top, as a host that tags would.
    >>> ipv4_packet("10.0.0.1", "10.0.0.2", src_port=40000, dst_port=80).tcp_dst
    80
    """
    has_ports = src_port is not None or dst_port is not None
    if has_ports and ip_proto not in (IPPROTO_TCP, IPPROTO_UDP):
        raise ValueError(f"ports need ip_proto {IPPROTO_TCP} or {IPPROTO_UDP}, not {ip_proto}")
    tcp = ip_proto == IPPROTO_TCP
    return Packet(
        eth_src=eth_src,
        eth_dst=eth_dst,
        eth_type=ETH_TYPE_MPLS if mpls else ETH_TYPE_IPV4,
        ipv4_src=ipv4_src,
        ipv4_dst=ipv4_dst,
        ip_proto=ip_proto,
        ip_dscp=dscp,
        tcp_src=src_port if tcp else None,
        tcp_dst=dst_port if tcp else None,
        udp_src=None if tcp else src_port,
        udp_dst=None if tcp else dst_port,
        mpls=tuple(mpls),
        payload_type=ETH_TYPE_IPV4 if mpls else None,
    )


def ipv6_packet(
    ipv6_src: str,
    ipv6_dst: str,
    *,
    eth_src: str = "00:00:00:00:00:01",
    eth_dst: str = "00:00:00:00:00:02",
    ip_proto: int = IPPROTO_TCP,
    src_port: int | None = None,
    dst_port: int | None = None,
    icmpv6_type: int | None = None,
) -> Packet:
    """Build an IPv6 packet; ports go to tcp_* or udp_* per `ip_proto`, `icmpv6_type`
    makes it ICMPv6 (ip_proto 58).

    >>> ipv6_packet("fc00::1", "fc00::2", dst_port=80).eth_type == ETH_TYPE_IPV6
    True
    """
    if icmpv6_type is not None:
        ip_proto = IPPROTO_ICMPV6
    tcp, udp = ip_proto == IPPROTO_TCP, ip_proto == IPPROTO_UDP
    if (src_port is not None or dst_port is not None) and not (tcp or udp):
        raise ValueError(f"ports need ip_proto {IPPROTO_TCP} or {IPPROTO_UDP}, not {ip_proto}")
    return Packet(
        eth_src=eth_src, eth_dst=eth_dst, eth_type=ETH_TYPE_IPV6, ipv6_src=ipv6_src,
        ipv6_dst=ipv6_dst, icmpv6_type=icmpv6_type, ip_proto=ip_proto, ip_dscp=0,
        tcp_src=src_port if tcp else None, tcp_dst=dst_port if tcp else None,
        udp_src=src_port if udp else None, udp_dst=dst_port if udp else None,
    )


# Actions on packets --------------------------------------------------------


def push_mpls(packet: Packet, ethertype: int = ETH_TYPE_MPLS) -> Packet:
    """OpenFlow push_mpls: the new label copies the outer label/TC, else 0."""
    if ethertype not in MPLS_ETH_TYPES:
        raise ActionError(f"push_mpls ethertype {ethertype:#06x} is not an MPLS ethertype")
    label, tc = (packet.mpls[0], packet.mpls_tcs[0]) if packet.mpls else (0, 0)
    payload = packet.payload_type if packet.mpls else packet.eth_type
    return replace(
        packet,
        eth_type=ethertype,
        mpls=(label, *packet.mpls),
        mpls_tcs=(tc, *packet.mpls_tcs),
        payload_type=payload,
    )


def pop_mpls(packet: Packet, ethertype: int) -> Packet:
    """OpenFlow pop_mpls: `ethertype` becomes the packet's eth_type.

    Raises ActionError without a label, or when `ethertype` does not describe
    what is under the popped label (the switch would mis-parse the packet).
    """
    if not packet.mpls:
        raise ActionError(f"pop_mpls on a packet without MPLS (eth_type {packet.eth_type:#06x})")
    rest, rest_tcs = packet.mpls[1:], packet.mpls_tcs[1:]
    if rest:
        if ethertype not in MPLS_ETH_TYPES:
            raise ActionError(
                f"pop_mpls:{ethertype:#06x} leaves label {rest[0]} on top: ethertype must be MPLS"
            )
        return replace(packet, eth_type=ethertype, mpls=rest, mpls_tcs=rest_tcs)
    if ethertype != packet.payload_type:
        raise ActionError(
            f"pop_mpls:{ethertype:#06x} but the payload is {packet.payload_type:#06x}"
        )
    return replace(packet, eth_type=ethertype, mpls=(), mpls_tcs=(), payload_type=None)


def set_field(packet: Packet, name: str, value: int | str) -> Packet:
    """OpenFlow set_field, with the field's prerequisites checked on the packet."""
    if name not in SETTABLE_FIELDS:
        raise ActionError(f"set_field on {name!r} is not supported")
    try:
        value = _check_value(name, value)
    except ValueError as exc:
        raise ActionError(f"set_field: {exc}") from None
    if name in ("mpls_label", "mpls_tc"):
        if not packet.mpls:
            raise ActionError(f"set_field {name} on a packet without an MPLS header")
        if name == "mpls_label":
            return replace(packet, mpls=(int(value), *packet.mpls[1:]))
        return replace(packet, mpls_tcs=(int(value), *packet.mpls_tcs[1:]))
    if name not in _MAC_FIELDS and packet.get(name) is None:
        raise ActionError(f"set_field {name}: the packet has no visible {name} header")
    return replace(packet, **{name: value})


# Select groups -------------------------------------------------------------


def hash_fields(packet: Packet) -> tuple[int | str | None, ...]:
    """The header fields a select group hashes: L2 always, IPv4 and L4 when visible.

    Under an MPLS label only L2 is visible (as on Open vSwitch, whose select
    hash cannot see past a label): to split by 5-tuple, select before pushing.
    """
    fields: tuple[int | str | None, ...] = (packet.eth_src, packet.eth_dst, packet.eth_type)
    if packet.is_ip:
        ports = tuple(packet.get(f) for f in ("tcp_src", "tcp_dst", "udp_src", "udp_dst"))
        fields += (packet.ipv4_src or packet.ipv6_src, packet.ipv4_dst or packet.ipv6_dst,
                   packet.ip_proto, *ports)
    return fields


def select_hash(packet: Packet) -> int:
    """A deterministic 64-bit hash of `hash_fields(packet)` (same in every process)."""
    digest = hashlib.blake2b(repr(hash_fields(packet)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True)
class BucketShare:
    """Bucket `bucket` of a select group takes hash slots [start, stop) of `total`."""

    bucket: int
    weight: int
    fraction: float
    start: int
    stop: int
    total: int


def select_distribution(group: GroupSpec) -> tuple[BucketShare, ...]:
    """Which bucket gets which fraction of flows: weight / sum of weights."""
    if group.kind != "select":
        raise ValueError(f"group {group.group_id} is {group.kind!r}, not a select group")
    total = sum(b.weight for b in group.buckets)
    if total <= 0:
        raise ValueError(f"select group {group.group_id} has no bucket with a positive weight")
    shares, start = [], 0
    for i, bucket in enumerate(group.buckets):
        stop = start + bucket.weight
        shares.append(BucketShare(i, bucket.weight, bucket.weight / total, start, stop, total))
        start = stop
    return tuple(shares)


def select_bucket(group: GroupSpec, packet: Packet) -> int:
    """Index of the bucket a select group gives `packet` (weighted, deterministic)."""
    shares = select_distribution(group)
    slot = select_hash(packet) * shares[0].total >> 64
    return next(s.bucket for s in shares if s.start <= slot < s.stop)


# Results -------------------------------------------------------------------


@dataclass(frozen=True)
class Emission:
    """A packet a switch sends out of `port` (IN_PORT already resolved)."""

    port: int
    packet: Packet


@dataclass(frozen=True)
class PacketIn:
    """A packet sent to the controller, by ToController or output:CONTROLLER."""

    dpid: int
    table: int
    in_port: int
    cookie: int
    packet: Packet


@dataclass(frozen=True)
class Drop:
    """A packet that went nowhere, and why (one of the DROP_* reasons)."""

    dpid: int
    in_port: int
    reason: str
    packet: Packet
    table: int | None = None
    cookie: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class Step:
    """One table lookup: the flow that matched (None: table-miss) and the packet."""

    dpid: int
    table: int
    in_port: int
    packet: Packet
    flow: FlowSpec | None


@dataclass(frozen=True)
class SwitchResult:
    """What one switch did with one packet arriving on one port."""

    outputs: tuple[Emission, ...]
    packet_ins: tuple[PacketIn, ...]
    drops: tuple[Drop, ...]
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Hop:
    """The packet entered `dpid` on `in_port` and left on `out_port`."""

    dpid: int
    in_port: int
    out_port: int


@dataclass(frozen=True)
class Delivery:
    """The packet reached host `host` (attached at dpid/port) as `packet`."""

    host: str
    packet: Packet
    dpid: int
    port: int


@dataclass(frozen=True)
class Transit:
    """The packet as it crossed the inter-switch link src -> dst."""

    src: Port
    dst: Port
    packet: Packet


@dataclass(frozen=True)
class Trace:
    """Everything that happened to one packet sent into a Network.

    Multicast copies are followed breadth first, so `hops` is in that order.
    `loop` is True when a copy came back unchanged to a port it had already
    entered on its path, or exceeded the hop limit; `errors` says where.
    """

    deliveries: tuple[Delivery, ...] = ()
    hops: tuple[Hop, ...] = ()
    transits: tuple[Transit, ...] = ()
    packet_ins: tuple[PacketIn, ...] = ()
    drops: tuple[Drop, ...] = ()
    steps: tuple[Step, ...] = ()
    loop: bool = False
    errors: tuple[str, ...] = ()

    @property
    def delivered_to(self) -> tuple[str, ...]:
        """Host names reached, in delivery order (a host twice means a duplicate)."""
        return tuple(d.host for d in self.deliveries)

    def format(self) -> str:
        """A readable account, for assertion messages."""
        lines = [
            f"step dpid={s.dpid:#x} in_port={s.in_port} table={s.table}: "
            + (format_flow(s.flow) if s.flow else "table-miss")
            + f"  [{format_packet(s.packet)}]"
            for s in self.steps
        ]
        lines += [f"hop dpid={h.dpid:#x} {h.in_port}->{h.out_port}" for h in self.hops]
        lines += [f"link {t.src}->{t.dst} [{format_packet(t.packet)}]" for t in self.transits]
        lines += [f"delivered {d.host} [{format_packet(d.packet)}]" for d in self.deliveries]
        lines += [
            f"packet-in dpid={p.dpid:#x} table={p.table} [{format_packet(p.packet)}]"
            for p in self.packet_ins
        ]
        lines += [
            f"drop dpid={d.dpid:#x} in_port={d.in_port} {d.reason} {d.detail}".rstrip()
            for d in self.drops
        ]
        lines += [f"error: {e}" for e in self.errors]
        return "\n".join(lines)


# Switches ------------------------------------------------------------------


_Value = int | str
@dataclass(frozen=True)
class MacMask:
    """A masked Ethernet address match ("value/mask", as Open vSwitch writes it)."""

    value: int
    mask: int

    @classmethod
    def parse(cls, text: str) -> MacMask:
        """Read "aa:bb:cc:dd:ee:ff/ff:ff:ff:00:00:00"; ValueError if malformed."""
        value, _, mask = text.partition("/")
        return cls(int(str(_check_value("eth_dst", value)).replace(":", ""), 16),
                   int(str(_check_value("eth_dst", mask)).replace(":", ""), 16))

    def __contains__(self, mac: object) -> bool:
        return isinstance(mac, str) and int(mac.replace(":", ""), 16) & self.mask == self.value


_Prefix = tuple[str, "ipaddress.IPv4Network | MacMask"]  # (field, network or MAC mask)


@dataclass(frozen=True)
class _Entry:
    """A loaded flow with its match split for lookup.

    `exact` holds the (field, value) tests sorted by field, `prefixes` the
    IPv4 prefix tests; the flow matches when every test holds.
    """

    flow: FlowSpec
    exact: tuple[tuple[str, _Value], ...]
    prefixes: tuple[_Prefix, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        """The exact-match field names, the key this entry is indexed under."""
        return tuple(name for name, _ in self.exact)

    @property
    def values(self) -> tuple[_Value, ...]:
        """The exact-match values, in `fields` order."""
        return tuple(value for _, value in self.exact)

    def prefixes_match(self, packet: Packet) -> bool:
        """True when the packet's IPv4 addresses fall in every prefix tested."""
        for name, network in self.prefixes:
            have = packet.get(name)
            if have is None:
                return False
            if isinstance(network, MacMask):
                if have not in network:
                    return False
            elif ipaddress.IPv4Address(have) not in network:
                return False
        return True


def _packet_key(
    fields: tuple[str, ...], in_port: int, packet: Packet
) -> tuple[_Value | None, ...]:
    """The values `packet` arriving on `in_port` has for `fields` (None: not visible)."""
    return tuple(in_port if name == "in_port" else packet.get(name) for name in fields)


@dataclass(frozen=True)
class _Priority:
    """The flows of one priority of one table, indexed for lookup.

    `entries` are sorted by match (the order `Switch.flows` lists them).
    `index` holds, per set of exact-match fields in use, a dict from their
    values to the entries testing those values: a lookup probes each dict
    once, then checks the IPv4 prefixes of the entries it finds.
    """

    priority: int
    entries: tuple[_Entry, ...]
    index: tuple[tuple[tuple[str, ...], dict[tuple[_Value, ...], list[_Entry]]], ...]

    @classmethod
    def build(cls, priority: int, entries: Iterable[_Entry]) -> _Priority:
        ordered = tuple(sorted(entries, key=lambda e: e.flow.match))
        index: dict[tuple[str, ...], dict[tuple[_Value, ...], list[_Entry]]] = {}
        for entry in ordered:
            index.setdefault(entry.fields, {}).setdefault(entry.values, []).append(entry)
        return cls(priority, ordered, tuple(index.items()))

    def hits(self, in_port: int, packet: Packet) -> list[_Entry]:
        """Every entry matching the packet, in `entries` order."""
        found = [
            entry
            for fields, by_values in self.index
            for entry in by_values.get(_packet_key(fields, in_port, packet), ())
            if entry.prefixes_match(packet)
        ]
        if len(found) > 1:
            found.sort(key=lambda e: e.flow.match)
        return found


def _compile_match(flow: FlowSpec) -> tuple[tuple[tuple[str, _Value], ...], tuple[_Prefix, ...]]:
    """Validate a flow's match (fields, values, prerequisites).

    Returns its exact tests, sorted by field, and its IPv4 prefix tests.
    """
    match = flow.match_dict
    exact: list[tuple[str, _Value]] = []
    prefixes: list[_Prefix] = []
    for name, value in match.items():
        if name not in MATCH_FIELDS:
            raise ValueError(f"unknown or unsupported match field {name!r}")
        if name in _MAC_FIELDS and isinstance(value, str) and "/" in value:
            try:
                prefixes.append((name, MacMask.parse(value)))
            except ValueError:
                raise ValueError(f"{name}={value!r}: expected a masked MAC address") from None
        elif name in _IPV4_FIELDS and isinstance(value, str) and "/" in value:
            try:
                prefixes.append((name, ipaddress.IPv4Network(value, strict=False)))
            except ValueError:
                raise ValueError(f"{name}={value!r}: expected an IPv4 prefix") from None
        else:
            exact.append((name, _check_value(name, value)))
        dependent = name
        while dependent in PREREQUISITES:
            needed, allowed = PREREQUISITES[dependent]
            if match.get(needed) not in allowed:
                wanted = " or ".join(f"{v:#06x}" if needed == "eth_type" else str(v)
                                     for v in sorted(allowed))
                raise ValueError(f"match on {dependent} needs {needed}={wanted} (prerequisite)")
            dependent = needed
    return tuple(sorted(exact)), tuple(prefixes)


def _check_actions(actions: Iterable[Action], groups: Mapping[int, GroupSpec] | None) -> None:
    """Validate actions statically; `groups` None skips group-existence checks."""
    for action in actions:
        if isinstance(action, Output):
            port = action.port
            if not (1 <= port <= OFPP_MAX or port in (OFPP_IN_PORT, OFPP_CONTROLLER)):
                raise ValueError(f"output:{port:#x} is not a port the simulator models")
        elif isinstance(action, PushMpls):
            if action.ethertype not in MPLS_ETH_TYPES:
                raise ValueError(f"push_mpls:{action.ethertype:#06x} is not an MPLS ethertype")
        elif isinstance(action, PopMpls):
            _check_value("eth_type", action.ethertype)
        elif isinstance(action, SetField):
            if action.field not in SETTABLE_FIELDS:
                raise ValueError(f"set_field on {action.field!r} is not supported")
            _check_value(action.field, action.value)
        elif isinstance(action, Group):
            if groups is not None and action.group_id not in groups:
                raise ValueError(f"group:{action.group_id} does not exist")
        elif isinstance(action, (LearnConnection, Resubmit)):
            if action.table == TABLE_CLASSIFY:
                raise ValueError(f"{action!r}: table 0 may not learn into or resubmit to itself")
        elif not isinstance(action, ToController):
            raise ValueError(f"unknown action {action!r}")


def _check_group(group: GroupSpec) -> None:
    if group.kind not in GROUP_KINDS:
        raise ValueError(f"type {group.kind!r}: expected one of {', '.join(GROUP_KINDS)}")
    if group.kind == "indirect" and len(group.buckets) != 1:
        raise ValueError(f"an indirect group needs exactly one bucket, not {len(group.buckets)}")
    for bucket in group.buckets:
        if bucket.weight < 0:
            raise ValueError(f"bucket weight {bucket.weight} is negative")
        if group.kind == "fast_failover" and bucket.watch_port is None:
            raise ValueError("a fast-failover bucket needs a watch_port")
        _check_actions(bucket.actions, None)
    if group.kind == "select" and group.buckets and not any(b.weight for b in group.buckets):
        raise ValueError("a select group needs a bucket with a positive weight")


def _group_refs(actions: Iterable[Action]) -> list[int]:
    return [a.group_id for a in actions if isinstance(a, Group)]


class Switch:
    """One switch's flow tables and groups, validated as they are loaded.

    Build it from FlowSpecs and GroupSpecs (any order); two specs with the same
    key and different contents are a compiler bug and raise FlowTableError.
    `apply` then changes it with OpenFlow add/modify/delete semantics.
    """

    def __init__(self, dpid: int, specs: Iterable[FlowSpec | GroupSpec] = ()) -> None:
        self.dpid = dpid
        self._entries: dict[tuple, _Entry] = {}
        self._groups: dict[int, GroupSpec] = {}
        # Meters only matter to `apply` (OpenFlow order: a flow's meter must exist);
        # a table loaded whole is taken as consistent. Rates are not simulated.
        self._meters: dict[int, MeterSpec] = {}
        self._index: dict[int, list[_Priority]] | None = None
        self.down: set[int] = set()  # ports whose link is down (liveness for fast-failover)
        specs = list(specs)
        for spec in specs:
            if isinstance(spec, GroupSpec):
                old = self._groups.get(spec.group_id)
                if old is not None and old != spec:
                    raise self._error(spec, f"group {spec.group_id} given twice, differently")
                self._add_group(spec, check_refs=False)
        for group in list(self._groups.values()):
            self._add_group(group)  # now that every group is known
        for spec in specs:
            if isinstance(spec, FlowSpec):
                old_entry = self._entries.get(spec.key)
                if old_entry is not None and old_entry.flow != spec:
                    raise self._error(spec, "two flows with the same table, priority and match")
                self._add_flow(spec)
            elif not isinstance(spec, GroupSpec):
                raise FlowTableError(f"dpid {dpid:#x}: cannot load {spec!r}")

    # Loading -----------------------------------------------------------------

    def _error(self, spec: FlowSpec | GroupSpec | FlowDelete, why: str) -> FlowTableError:
        what = format_flow(spec) if isinstance(spec, FlowSpec) else repr(spec)
        return FlowTableError(f"dpid {self.dpid:#x}: {why}: {what}")

    def _add_flow(self, flow: FlowSpec) -> None:
        if flow.dpid != self.dpid:
            raise self._error(flow, f"flow for dpid {flow.dpid:#x} loaded on this switch")
        try:
            if not 0 <= flow.table <= MAX_TABLE:
                raise ValueError(f"table {flow.table} outside 0..{MAX_TABLE}")
            if not 0 <= flow.priority <= 0xFFFF:
                raise ValueError(f"priority {flow.priority} outside 0..65535")
            if flow.goto is not None and not flow.table < flow.goto <= MAX_TABLE:
                raise ValueError(f"goto_table:{flow.goto} must be a later table than {flow.table}")
            exact, prefixes = _compile_match(flow)
            _check_actions(flow.actions, self._groups)
        except ValueError as exc:
            raise self._error(flow, str(exc)) from None
        self._entries[flow.key] = _Entry(flow, exact, prefixes)
        self._index = None

    def _add_group(self, group: GroupSpec, check_refs: bool = True) -> None:
        if group.dpid != self.dpid:
            raise self._error(group, f"group for dpid {group.dpid:#x} loaded on this switch")
        try:
            _check_group(group)
        except ValueError as exc:
            raise self._error(group, str(exc)) from None
        groups = {**self._groups, group.group_id: group}
        if not check_refs:
            self._groups = groups
            return
        for bucket in group.buckets:
            for gid in _group_refs(bucket.actions):
                if gid not in groups:
                    raise self._error(group, f"bucket refers to missing group {gid}")
        self._check_group_cycles(groups, group.group_id)
        self._groups = groups

    def _check_group_cycles(self, groups: Mapping[int, GroupSpec], start: int) -> None:
        path: list[int] = []

        def visit(gid: int) -> None:
            if gid in path:
                cycle = " -> ".join(str(g) for g in [*path[path.index(gid):], gid])
                raise FlowTableError(f"dpid {self.dpid:#x}: groups chain in a cycle: {cycle}")
            path.append(gid)
            for bucket in groups[gid].buckets:
                for ref in _group_refs(bucket.actions):
                    if ref in groups:
                        visit(ref)
            path.pop()

        visit(start)

    def apply(self, ops: Iterable[FlowSpec | GroupSpec | FlowDelete | GroupDelete
                                  | MeterSpec | MeterDelete]) -> None:
        """Apply flow-mods in order: a FlowSpec adds (replacing its key), a
        GroupSpec adds or modifies its group, a FlowDelete deletes, a
        GroupDelete deletes groups and the flows that point at them; meters
        are added, modified and deleted (with the flows using them) likewise."""
        for op in ops:
            if isinstance(op, FlowSpec):
                if op.meter is not None and op.meter not in self._meters:
                    raise self._error(op, f"meter {op.meter} does not exist")
                self._add_flow(op)
            elif isinstance(op, MeterSpec):
                if op.modify != (op.meter_id in self._meters):
                    raise FlowTableError(f"dpid {self.dpid:#x}: meter {op.meter_id} "
                                         + ("does not exist" if op.modify else "exists"))
                self._meters[op.meter_id] = op
            elif isinstance(op, MeterDelete):
                gone = set(self._meters) if op.meter_id is None \
                    else {op.meter_id} & set(self._meters)
                for meter in gone:
                    del self._meters[meter]
                for key, entry in list(self._entries.items()):
                    if entry.flow.meter in gone:
                        del self._entries[key]
                self._index = None
            elif isinstance(op, GroupSpec):
                if op.modify and op.group_id not in self._groups:
                    raise self._error(op, f"modify of group {op.group_id}, which does not exist")
                self._add_group(op)
            elif isinstance(op, FlowDelete):
                self._delete(op)
            elif isinstance(op, GroupDelete):
                self._delete_group(op)
            else:
                raise FlowTableError(f"dpid {self.dpid:#x}: cannot apply {op!r}")

    def _delete_group(self, op: GroupDelete) -> None:
        gone = set(self._groups) if op.group_id is None else {op.group_id} & set(self._groups)
        for gid in gone:
            del self._groups[gid]
        for key, entry in list(self._entries.items()):
            if gone & set(_group_refs(entry.flow.actions)):
                del self._entries[key]
        self._index = None

    def _delete(self, op: FlowDelete) -> None:
        if op.dpid != self.dpid:
            raise self._error(op, f"delete for dpid {op.dpid:#x} applied on this switch")
        want = dict(op.match)
        for key, entry in list(self._entries.items()):
            flow = entry.flow
            if (flow.cookie ^ op.cookie) & op.cookie_mask:
                continue
            if op.table is not None and flow.table != op.table:
                continue
            if op.strict:
                if flow.priority != op.priority or flow.match != op.match:
                    continue
            elif any(flow.match_dict.get(k, _MISSING) != v for k, v in want.items()):
                continue
            del self._entries[key]
        self._index = None

    # Inspection --------------------------------------------------------------

    @property
    def flows(self) -> tuple[FlowSpec, ...]:
        """The flows, in table, descending priority order."""
        return tuple(e.flow for prio in self._sorted() for e in prio.entries)

    @property
    def groups(self) -> Mapping[int, GroupSpec]:
        """The groups by id."""
        return dict(self._groups)

    def dump(self) -> str:
        """The switch's flows and groups, ovs-ofctl style."""
        return dump_flows([*self.flows, *self._groups.values()])

    def _sorted(self) -> list[_Priority]:
        index = self._table_index()
        return [prio for table in sorted(index) for prio in index[table]]

    def _table_index(self) -> dict[int, list[_Priority]]:
        """table -> its priorities, highest first (rebuilt after any change)."""
        if self._index is None:
            by_table: dict[int, dict[int, list[_Entry]]] = {}
            for entry in self._entries.values():
                flow = entry.flow
                by_table.setdefault(flow.table, {}).setdefault(flow.priority, []).append(entry)
            self._index = {
                table: [_Priority.build(p, prios[p]) for p in sorted(prios, reverse=True)]
                for table, prios in by_table.items()
            }
        return self._index

    # Forwarding --------------------------------------------------------------

    def lookup(self, table: int, in_port: int, packet: Packet) -> FlowSpec | None:
        """The highest-priority flow of `table` matching; None on a table-miss.

        Raises AmbiguousMatchError when two flows of that priority both match.
        """
        for prio in self._table_index().get(table, []):
            hits = [e.flow for e in prio.hits(in_port, packet)]
            if len(hits) > 1:
                listing = "\n  ".join(format_flow(f) for f in hits)
                raise AmbiguousMatchError(
                    f"dpid {self.dpid:#x} table {table} priority {prio.priority}: "
                    f"{len(hits)} flows match in_port={in_port} [{format_packet(packet)}]:"
                    f"\n  {listing}"
                )
            if hits:
                return hits[0]
        return None

    def process(self, in_port: int, packet: Packet) -> SwitchResult:
        """Run `packet`, arrived on `in_port`, through the pipeline from table 0."""
        run = _Run(self, in_port)
        table: int | None = TABLE_CLASSIFY
        pkt = packet
        last: FlowSpec | None = None
        while table is not None:
            flow = self.lookup(table, in_port, pkt)
            run.steps.append(Step(self.dpid, table, in_port, pkt, flow))
            if flow is None:
                run.drop(DROP_TABLE_MISS, pkt, table, None, f"no flow in table {table} matches")
                break
            last = flow
            run.table, run.cookie = table, flow.cookie
            try:
                pkt = run.apply(flow.actions, pkt)
            except ActionError as exc:
                raise ActionError(
                    f"dpid {self.dpid:#x} in_port={in_port} {format_flow(flow)}: {exc}"
                ) from None
            table = flow.goto
        if last is not None and not (run.outputs or run.packet_ins or run.drops):
            run.drop(DROP_BY_FLOW, pkt, last.table, last.cookie, format_flow(last))
        return SwitchResult(
            tuple(run.outputs), tuple(run.packet_ins), tuple(run.drops), tuple(run.steps)
        )


_MISSING = object()


@dataclass
class _Run:
    """The mutable state of one packet's pass through one switch."""

    switch: Switch
    in_port: int
    table: int = TABLE_CLASSIFY
    cookie: int = 0
    outputs: list[Emission] = field(default_factory=list)
    packet_ins: list[PacketIn] = field(default_factory=list)
    drops: list[Drop] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    def drop(
        self, reason: str, packet: Packet, table: int | None, cookie: int | None, detail: str
    ) -> None:
        self.drops.append(
            Drop(self.switch.dpid, self.in_port, reason, packet, table, cookie, detail)
        )

    def apply(self, actions: Iterable[Action], packet: Packet) -> Packet:
        """Apply actions in order; returns the packet as modified."""
        for action in actions:
            if isinstance(action, Output):
                self.output(action.port, packet)
            elif isinstance(action, ToController):
                self.output(OFPP_CONTROLLER, packet)
            elif isinstance(action, PushMpls):
                packet = push_mpls(packet, action.ethertype)
            elif isinstance(action, PopMpls):
                packet = pop_mpls(packet, action.ethertype)
            elif isinstance(action, SetField):
                packet = set_field(packet, action.field, action.value)
            elif isinstance(action, Group):
                self.group(self.switch._groups[action.group_id], packet)
            elif isinstance(action, LearnConnection):
                self.learn(action, packet)
            elif isinstance(action, Resubmit):
                found = self.switch.lookup(action.table, self.in_port, packet)
                if found is not None:  # a miss runs nothing; the next action follows
                    packet = self.apply(found.actions, packet)
        return packet

    def learn(self, action: LearnConnection, packet: Packet) -> None:
        """Add the per-connection counter entry a TCP/IPv4 packet teaches (as OVS
        does; other packets teach nothing: the classifier matches ip_proto=6)."""
        if packet.tcp_src is None or not packet.is_ipv4:
            return
        self.switch.apply([replace(FlowSpec.make(
            self.switch.dpid, action.table, action.priority,
            {"eth_type": ETH_TYPE_IPV4, "ip_proto": 6, "ipv4_src": packet.get("ipv4_src"),
             "ipv4_dst": packet.get("ipv4_dst"), "tcp_src": packet.tcp_src,
             "tcp_dst": packet.get("tcp_dst")}, cookie=action.cookie),
            idle_timeout=action.idle_timeout)])

    def output(self, port: int, packet: Packet) -> None:
        if port == OFPP_CONTROLLER:
            self.packet_ins.append(
                PacketIn(self.switch.dpid, self.table, self.in_port, self.cookie, packet)
            )
        elif port == OFPP_IN_PORT:
            self.outputs.append(Emission(self.in_port, packet))
        elif port == self.in_port:
            self.drop(DROP_IN_PORT, packet, self.table, self.cookie,
                      f"output:{port} is the in_port (use OFPP_IN_PORT)")
        elif port in self.switch.down:
            self.drop(DROP_PORT_DOWN, packet, self.table, self.cookie, f"output:{port} is down")
        else:
            self.outputs.append(Emission(port, packet))

    def group(self, group: GroupSpec, packet: Packet) -> None:
        """Execute a group; each bucket works on its own copy of the packet."""
        buckets: tuple[Bucket, ...] = group.buckets
        if group.kind == "select" and buckets:
            buckets = (buckets[select_bucket(group, packet)],)
        if group.kind == "fast_failover":
            live = [b for b in buckets if b.watch_port not in self.switch.down]
            if buckets and not live:
                self.drop(DROP_NO_LIVE_BUCKET, packet, self.table, self.cookie,
                          f"group {group.group_id}: every watched port is down")
                return
            buckets = tuple(live[:1])
        if not buckets:
            self.drop(DROP_EMPTY_GROUP, packet, self.table, self.cookie,
                      f"group {group.group_id} has no buckets")
        for bucket in buckets:
            self.apply(bucket.actions, packet)


def build_switches(specs: Iterable[FlowSpec | GroupSpec]) -> dict[int, Switch]:
    """One Switch per dpid found in `specs`."""
    by_dpid: dict[int, list[FlowSpec | GroupSpec]] = {}
    for spec in specs:
        by_dpid.setdefault(spec.dpid, []).append(spec)
    return {dpid: Switch(dpid, items) for dpid, items in by_dpid.items()}


# Networks ------------------------------------------------------------------


def both_ways(links: Mapping[Port, Port] | Iterable[tuple[Port, Port]]) -> dict[Port, Port]:
    """Directed link map with each cable in both directions (a -> b adds b -> a)."""
    pairs = links.items() if isinstance(links, Mapping) else links
    out: dict[Port, Port] = {}
    for a, b in pairs:
        out[a] = b
        out[b] = a
    return out


class Network:
    """Switches wired together, with hosts on some ports.

    `links` maps an output (dpid, port) to the (dpid, port) the packet enters
    next: ONE ENTRY PER DIRECTION, so a normal cable needs both (use
    `both_ways`); a one-way entry models a unidirectional link. `hosts` maps
    (dpid, port) attachment points to host names. A dpid without flows is a
    switch whose every lookup misses.
    """

    def __init__(
        self,
        switches: Mapping[int, Switch],
        links: Mapping[Port, Port] | None = None,
        hosts: Mapping[Port, str] | None = None,
        *,
        max_hops: int = 64,
        max_visits: int = 10_000,
    ) -> None:
        self.switches: dict[int, Switch] = dict(switches)
        self.links: dict[Port, Port] = dict(links or {})
        self.hosts: dict[Port, str] = dict(hosts or {})
        self.max_hops = max_hops
        self.max_visits = max_visits
        self._check_wiring()
        for dpid, _ in [*self.links, *self.links.values(), *self.hosts]:
            self.switches.setdefault(dpid, Switch(dpid))

    @classmethod
    def from_specs(
        cls,
        specs: Iterable[FlowSpec | GroupSpec],
        links: Mapping[Port, Port] | None = None,
        hosts: Mapping[Port, str] | None = None,
        **kwargs: int,
    ) -> Network:
        """A Network whose switches are built from `specs` (see build_switches)."""
        return cls(build_switches(specs), links, hosts, **kwargs)

    def _check_wiring(self) -> None:
        entered: dict[Port, Port] = {}
        for src, dst in self.links.items():
            if src == dst:
                raise TopologyError(f"link {src} loops onto itself")
            if dst in entered:
                raise TopologyError(f"ports {entered[dst]} and {src} both link into {dst}")
            entered[dst] = src
            back = self.links.get(dst)
            if back is not None and back != src:
                raise TopologyError(f"link {src}->{dst} but {dst}->{back}: a port has one peer")
        for port, name in self.hosts.items():
            if port in self.links or port in entered:
                raise TopologyError(f"host {name!r} at {port}, which is an inter-switch port")

    def attachment(self, host: str) -> Port:
        """The (dpid, port) where `host` is attached."""
        ports = [p for p, name in self.hosts.items() if name == host]
        if len(ports) != 1:
            raise KeyError(f"host {host!r} is attached at {len(ports)} ports: {ports}")
        return ports[0]

    def apply(self, ops: Iterable[FlowSpec | GroupSpec | FlowDelete | GroupDelete
                                  | MeterSpec | MeterDelete]) -> None:
        """Apply flow-mods to their switches in order (see Switch.apply)."""
        for op in ops:
            self.switches.setdefault(op.dpid, Switch(op.dpid)).apply([op])

    def dump(self) -> str:
        """Every switch's flows and groups, ovs-ofctl style."""
        return "\n".join(self.switches[d].dump() for d in sorted(self.switches))

    def fail_link(self, port: Port, up: bool = False) -> None:
        """Mark the cable at `port` down at both ends (`up`: back up again), as a
        carrier loss or a BFD session going down does: fast-failover groups
        skip buckets watching those ports, outputs to them are dropped."""
        if port not in self.links:
            raise TopologyError(f"{port} is not an inter-switch port")
        for dpid, number in {port, self.links[port]}:
            down = self.switches.setdefault(dpid, Switch(dpid)).down
            if up:
                down.discard(number)
            else:
                down.add(number)

    def send(self, at: str | Port, packet: Packet) -> Trace:
        """Inject `packet` at host `at` (a name) or at (dpid, in_port); follow it."""
        dpid, in_port = self.attachment(at) if isinstance(at, str) else at
        deliveries: list[Delivery] = []
        hops: list[Hop] = []
        transits: list[Transit] = []
        packet_ins: list[PacketIn] = []
        drops: list[Drop] = []
        steps: list[Step] = []
        errors: list[str] = []
        queue: deque[tuple[int, int, Packet, tuple[_Visit, ...]]] = deque(
            [(dpid, in_port, packet, ())]
        )
        visits = 0
        while queue:
            dpid, in_port, pkt, path = queue.popleft()
            key = (dpid, in_port, pkt)
            if key in path:
                errors.append(
                    f"loop: packet re-entered dpid {dpid:#x} port {in_port} unchanged "
                    f"after {len(path) - path.index(key)} hops [{format_packet(pkt)}]"
                )
                continue
            if len(path) >= self.max_hops:
                errors.append(f"loop: hop limit {self.max_hops} reached at dpid {dpid:#x}")
                continue
            visits += 1
            if visits > self.max_visits:
                errors.append(f"loop: {self.max_visits} switch visits, stopped")
                break
            result = self.switches.setdefault(dpid, Switch(dpid)).process(in_port, pkt)
            packet_ins.extend(result.packet_ins)
            drops.extend(result.drops)
            steps.extend(result.steps)
            for emission in result.outputs:
                out = (dpid, emission.port)
                hops.append(Hop(dpid, in_port, emission.port))
                if out in self.hosts:
                    deliveries.append(Delivery(self.hosts[out], emission.packet, *out))
                elif out in self.links:
                    peer = self.links[out]
                    transits.append(Transit(out, peer, emission.packet))
                    queue.append((*peer, emission.packet, (*path, key)))
                else:
                    drops.append(Drop(dpid, in_port, DROP_UNCONNECTED, emission.packet,
                                      detail=f"output:{emission.port} has no link or host"))
        return Trace(
            tuple(deliveries), tuple(hops), tuple(transits), tuple(packet_ins), tuple(drops),
            tuple(steps), bool(errors), tuple(errors),
        )


# Text dumps ----------------------------------------------------------------


def _format_value(name: str, value: object) -> str:
    if name == "eth_type" and isinstance(value, int):
        return f"{value:#06x}"
    return str(value)


def format_match(match: Iterable[tuple[str, int | str]]) -> str:
    """`name=value,...` with eth_type in hex."""
    return ",".join(f"{k}={_format_value(k, v)}" for k, v in match)


def format_actions(actions: Iterable[Action], goto: int | None = None) -> str:
    """ovs-ofctl style action list; `drop` when there is nothing to do."""
    parts = []
    for a in actions:
        if isinstance(a, Output):
            names = {OFPP_IN_PORT: "IN_PORT", OFPP_CONTROLLER: "CONTROLLER"}
            parts.append(f"output:{names.get(a.port, a.port)}")
        elif isinstance(a, ToController):
            parts.append(f"CONTROLLER:{a.max_len}")
        elif isinstance(a, PushMpls):
            parts.append(f"push_mpls:{a.ethertype:#06x}")
        elif isinstance(a, PopMpls):
            parts.append(f"pop_mpls:{a.ethertype:#06x}")
        elif isinstance(a, SetField):
            parts.append(f"set_field:{_format_value(a.field, a.value)}->{a.field}")
        elif isinstance(a, Group):
            parts.append(f"group:{a.group_id}")
        elif isinstance(a, LearnConnection):
            parts.append(f"learn(table={a.table},priority={a.priority},cookie={a.cookie:#x},"
                         f"idle_timeout={a.idle_timeout},tcp 5-tuple)")
        elif isinstance(a, Resubmit):
            parts.append(f"resubmit(,{a.table})")
        else:
            parts.append(repr(a))
    if goto is not None:
        parts.append(f"goto_table:{goto}")
    return ",".join(parts) or "drop"


def format_flow(flow: FlowSpec) -> str:
    """One flow as `cookie=..., table=..., priority=...,match actions=...`."""
    match = format_match(flow.match)
    return (
        f"cookie={flow.cookie:#x}, table={flow.table}, priority={flow.priority}"
        f"{',' + match if match else ''} actions={format_actions(flow.actions, flow.goto)}"
    )


def format_group(group: GroupSpec) -> str:
    """One group as ovs-ofctl dump-groups prints it."""
    buckets = ",".join(
        f"bucket=bucket_id:{i},weight:{b.weight},actions={format_actions(b.actions)}"
        for i, b in enumerate(group.buckets)
    )
    return f"group_id={group.group_id},type={group.kind}{',' + buckets if buckets else ''}"


def format_packet(packet: Packet) -> str:
    """The packet's set fields, compactly (labels outermost first)."""
    parts = [f"{packet.eth_src}>{packet.eth_dst}", f"eth_type={packet.eth_type:#06x}"]
    if packet.mpls:
        parts.append("mpls=" + "/".join(str(x) for x in packet.mpls))
        if any(packet.mpls_tcs):
            parts.append("mpls_tc=" + "/".join(str(x) for x in packet.mpls_tcs))
    for name in ("ipv4_src", "ipv4_dst", "ip_proto", "tcp_src", "tcp_dst", "udp_src", "udp_dst"):
        value = getattr(packet, name)
        if value is not None:
            parts.append(f"{name}={value}")
    return " ".join(parts)


def dump_flows(specs: Iterable[FlowSpec | GroupSpec]) -> str:
    """A readable listing (like ovs-ofctl dump-flows/dump-groups), per dpid.

    Flows sort by table then descending priority, which is the order a lookup
    tries them in.
    """
    flows: dict[int, list[FlowSpec]] = {}
    groups: dict[int, list[GroupSpec]] = {}
    for spec in specs:
        if isinstance(spec, GroupSpec):
            groups.setdefault(spec.dpid, []).append(spec)
        else:
            flows.setdefault(spec.dpid, []).append(spec)
    lines = []
    for dpid in sorted({*flows, *groups}):
        lines.append(f"dpid={dpid:#x}")
        ordered = sorted(flows.get(dpid, []), key=lambda f: (f.table, -f.priority, f.match))
        lines += [f" {format_flow(f)}" for f in ordered]
        ordered_groups = sorted(groups.get(dpid, []), key=lambda g: g.group_id)
        lines += [f" {format_group(g)}" for g in ordered_groups]
    return "\n".join(lines)
