"""What the tagger's map should hold for a host: pure functions from the trails
that start there to (key, value) entries, and their byte layout (tagger.c).
"""

from __future__ import annotations

import ipaddress
import logging
import struct
from collections.abc import Iterable
from dataclasses import dataclass, replace

from ..compiler import classifier_priority
from ..pipeline import MAX_LABEL, MIN_LABEL, NO_LABEL
from ..tagging import no_label_path
from ..trails import Trail, TrailState

LOG = logging.getLogger(__name__)

# Key shapes (enum shape in tagger.c): which parts of a key are set.
SHAPE_DST = 0
SHAPE_DSCP = 1
SHAPE_PORT = 2
SHAPE_SPORT = 3
SHAPE_PORT_DSCP = 4
SHAPE_SPORT_DSCP = 5
SHAPE_PROTO = 6
SHAPE_PROTO_DSCP = 7

IP_PROTO = {"tcp": 6, "udp": 17, "sctp": 132}
KEY = struct.Struct("!4sHBBB3x")  # daddr, port (network order), proto, dscp, shape
VALUE = struct.Struct("<IHBB")  # label, priority, tc, shapes (host order: x86/arm64)


class Unrepresentable(ValueError):
    """A classifier alternative the tagger's key cannot express."""


@dataclass(frozen=True, order=True)
class TagKey:
    """One map key: destination plus the classifier fields its shape uses."""

    daddr: str
    shape: int = SHAPE_DST
    proto: int = 0
    port: int = 0
    dscp: int = 0

    def pack(self) -> bytes:
        """The 12 bytes of struct tag_key."""
        return KEY.pack(ipaddress.IPv4Address(self.daddr).packed, self.port, self.proto,
                        self.dscp, self.shape)

    @classmethod
    def unpack(cls, raw: bytes) -> TagKey:
        """A key read back from the map."""
        daddr, port, proto, dscp, shape = KEY.unpack(raw)
        return cls(str(ipaddress.IPv4Address(daddr)), shape, proto, port, dscp)


@dataclass(frozen=True)
class TagValue:
    """One map value: the label (NO_LABEL: untagged), its priority and TC bits.

    `shapes` is set on SHAPE_DST entries only: bit n says shape n has entries
    for this destination, so the program looks only those up.
    """

    label: int
    priority: int
    tc: int = 0
    shapes: int = 0
    trail: int = 0  # the trail the entry came from (not in the map; 0 when read back)

    def pack(self) -> bytes:
        """The 8 bytes of struct tag_value."""
        return VALUE.pack(self.label, self.priority, self.tc, self.shapes)

    @classmethod
    def unpack(cls, raw: bytes) -> TagValue:
        """A value read back from the map."""
        return cls(*VALUE.unpack(raw))

    def same_in_map(self, other: TagValue) -> bool:
        """True if both pack to the same bytes (the trail id is not stored)."""
        return self.pack() == other.pack()


Entries = dict[TagKey, TagValue]


def key_for(daddr: str, alt: Iterable[tuple[str, int]]) -> TagKey:
    """The key of one classifier alternative (e.g. (("ip_proto", 6), ("tcp_dst", 443))).

    Raises Unrepresentable for fields the key has no room for (both ports,
    source addresses, ...).
    """
    fields = dict(alt)
    proto = fields.pop("ip_proto", 0)
    dscp = fields.pop("ip_dscp", None)
    port, source = 0, False
    for name in list(fields):
        kind, _, direction = name.partition("_")
        if kind in IP_PROTO and direction in ("src", "dst"):
            if port:
                raise Unrepresentable(f"{sorted(dict(alt))}: one L4 port per key")
            if proto != IP_PROTO[kind]:
                raise Unrepresentable(f"{name} needs ip_proto {IP_PROTO[kind]}, got {proto}")
            port, source = fields.pop(name), direction == "src"
    if fields:
        raise Unrepresentable(f"the tagger cannot match {', '.join(sorted(fields))}")
    if port:
        if dscp is None:
            shape = SHAPE_SPORT if source else SHAPE_PORT
        else:
            shape = SHAPE_SPORT_DSCP if source else SHAPE_PORT_DSCP
    elif proto:
        shape = SHAPE_PROTO if dscp is None else SHAPE_PROTO_DSCP
    else:
        shape = SHAPE_DST if dscp is None else SHAPE_DSCP
    return TagKey(daddr, shape, proto, port, dscp or 0)


def taggable(trail: Trail) -> str | None:
    """Why the host must leave `trail` to its edge switch, or None if it can tag it.

    Only ACTIVE trails are tagged: while a trail is installed or moved
    (INSTALLING, REROUTING) its packets go untagged and the switch's
    make-before-break carries them; the new label is used once it is ACTIVE.
    """
    if trail.state != TrailState.ACTIVE:
        return f"state {trail.state.value}"
    why = no_label_path(trail)  # the edge switch accepts exactly these (sdnscent.tagging)
    if why is not None:
        return why
    if not MIN_LABEL <= trail.label <= MAX_LABEL:
        return f"label {trail.label} outside {MIN_LABEL}..{MAX_LABEL}"
    try:
        ipaddress.IPv4Address(trail.dst_ip)
    except ValueError:
        return f"destination {trail.dst_ip!r} is not IPv4"
    return None


def starts_at(trail: Trail, ip: str, mac: str) -> bool:
    """True if `trail` starts at the host with `ip` and `mac`."""
    return trail.src_ip == ip and trail.src_mac.lower() == mac.lower()


def host_entries(trails: Iterable[Trail], ip: str, mac: str) -> Entries:
    """The map entries of the host (`ip`, `mac`): one per classifier alternative of
    each taggable trail that starts there, plus each destination's SHAPE_DST entry.

    Where two trails claim one key the higher classifier priority wins (a
    tie: the lower trail id, which is deterministic). A trail with an
    alternative the key cannot express is left to the switch entirely.
    """
    entries: Entries = {}
    for trail in sorted(trails, key=lambda t: t.id):
        if not starts_at(trail, ip, mac):
            continue
        why = taggable(trail)
        if why is not None:
            LOG.debug("trail %d left to the switch: %s", trail.id, why)
            continue
        try:
            keys = [key_for(trail.dst_ip, alt) for alt in trail.match] or [TagKey(trail.dst_ip)]
        except Unrepresentable as exc:
            LOG.info("trail %d left to the switch: %s", trail.id, exc)
            continue
        value = TagValue(trail.label, classifier_priority(trail), trail=trail.id)
        for key in keys:
            held = entries.get(key)
            if held is None or value.priority > held.priority:
                entries[key] = value
    shapes: dict[str, int] = {}
    for key in entries:
        shapes[key.daddr] = shapes.get(key.daddr, 0) | (1 << key.shape)
    for daddr, bits in shapes.items():
        key = TagKey(daddr)
        base = entries.get(key, TagValue(NO_LABEL, 0))
        entries[key] = replace(base, shapes=bits)
    return entries


def lookup(entries: Entries, daddr: str, proto: int = 0, sport: int = 0, dport: int = 0,
           dscp: int = 0) -> int:
    """The label the program pushes on such a packet (NO_LABEL: none); tagger.c's
    lookup in Python, for tests and `sdnscent-vni show`."""
    base = entries.get(TagKey(daddr))
    if base is None:
        return NO_LABEL
    best = base
    probes = [(SHAPE_DSCP, 0, 0, dscp), (SHAPE_PROTO, proto, 0, 0),
              (SHAPE_PROTO_DSCP, proto, 0, dscp)]
    has_ports = proto in IP_PROTO.values()
    if has_ports and dport:
        probes.append((SHAPE_PORT, proto, dport, 0))
    if has_ports and sport:
        probes.append((SHAPE_SPORT, proto, sport, 0))
    if has_ports and dport:
        probes.append((SHAPE_PORT_DSCP, proto, dport, dscp))
    if has_ports and sport:
        probes.append((SHAPE_SPORT_DSCP, proto, sport, dscp))
    for shape, p, port, d in probes:
        if base.shapes & (1 << shape):
            hit = entries.get(TagKey(daddr, shape, p, port, d))
            if hit is not None and hit.priority >= best.priority:
                best = hit
    return best.label if MIN_LABEL <= best.label <= MAX_LABEL else NO_LABEL
