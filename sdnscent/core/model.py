"""The core's value types: Changes for the glue to send, events, ARP packets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..compiler import Step
from ..flows import FlowSpec, GroupSpec
from ..policy import Service
from ..trails import Trail

PROACTIVE_TOP = 8  # best-ranked pairs per application set up when a host (re)appears
CONTROLLER_MAC = "0e:5c:e7:00:00:01"  # locally administered; source of ARP probes
ARP_REQUEST, ARP_REPLY = 1, 2
PROBE_INTERVAL = 1.0  # s between probes for the same unknown address
LINK_PORT_GRACE = 10.0  # s an audited link-port flow waits for LLDP to confirm its link
DRAIN = 0.1  # s an old path keeps its entries after the classifier moved (in-flight packets)
# ... after a move for load: the old path crosses busy links whose queues may hold
# seconds of packets (a 1,000-packet queue at 3 Mbit/s: 4 s); nothing is urgent,
# so they all arrive first.
LOAD_DRAIN = 5.0
AVOID = 100.0  # utilisation the planner sees on links a move must leave (cost +400 hops)
MOVE_ROUNDS = 3  # engine steps per period when a chosen trail has no free path
# How trails are routed (--routing): sdnscent's load-aware planning with global
# placement of elephants, or the baselines a user would compare it with.
ROUTING_SCENT, ROUTING_ECMP, ROUTING_STATIC = "scent", "ecmp", "static"
ROUTINGS = (ROUTING_SCENT, ROUTING_ECMP, ROUTING_STATIC)


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
        """Run `other` alongside this change, step i beside step i.

        Where both wait for a drain, the one whose first pause comes earlier
        starts later (empty steps before it), so that the two drains are one
        wait: make-before-break moves of different lengths (protection groups,
        meters) merged step by step would otherwise wait their drains one after
        the other, and the later move would switch over only after the
        earlier one's drain.
        """
        shift = 0
        if self.pause_before and other.pause_before:
            mine, theirs = min(self.pause_before), min(other.pause_before)
            if mine < theirs:
                self.steps[:0] = [{} for _ in range(theirs - mine)]
                self.pause_before = {i + theirs - mine: p for i, p in self.pause_before.items()}
            shift = max(0, mine - theirs)
        for i, step in enumerate(other.steps, start=shift):
            while i >= len(self.steps):
                self.steps.append({})
            for dpid, ops in step.items():
                self.steps[i].setdefault(dpid, []).extend(ops)
        self.done.extend(other.done)
        self.created.extend(other.created)
        for i, pause in other.pause_before.items():
            self.pause_before[i + shift] = max(pause, self.pause_before.get(i + shift, 0.0))
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


