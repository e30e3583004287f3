"""OpenFlow 1.3 flow and group specifications as plain, immutable data.

The flow compiler produces these; the os-ken glue turns them into flow mods
and the forwarding simulator executes them. Nothing here imports os-ken.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Tables, cookies and their helpers live in sdnscent.pipeline; re-exported here.
from .pipeline import COOKIE_MAGIC as COOKIE_MAGIC
from .pipeline import COOKIE_MASK_ALL as COOKIE_MASK_ALL
from .pipeline import COOKIE_MASK_KIND as COOKIE_MASK_KIND
from .pipeline import COOKIE_MASK_OURS as COOKIE_MASK_OURS
from .pipeline import KIND_BLOCK as KIND_BLOCK
from .pipeline import KIND_HOST_TRAFFIC as KIND_HOST_TRAFFIC
from .pipeline import KIND_PIPELINE as KIND_PIPELINE
from .pipeline import KIND_SERVICE as KIND_SERVICE
from .pipeline import KIND_TRAIL as KIND_TRAIL
from .pipeline import PIPELINE_COOKIE
from .pipeline import TABLE_CLASSIFY as TABLE_CLASSIFY
from .pipeline import TABLE_FORWARD as TABLE_FORWARD
from .pipeline import TABLES as TABLES
from .pipeline import cookie_kind as cookie_kind
from .pipeline import cookie_trail_id as cookie_trail_id
from .pipeline import make_cookie as make_cookie
from .pipeline import trail_cookie as trail_cookie

ETH_TYPE_IPV4 = 0x0800
ETH_TYPE_ARP = 0x0806
ETH_TYPE_MPLS = 0x8847
ETH_TYPE_LLDP = 0x88CC
ETH_TYPE_IPV6 = 0x86DD
IPPROTO_ICMPV6 = 58
IPPROTO_UDP = 17
ICMPV6_NS, ICMPV6_NA = 135, 136  # Neighbour Solicitation and Advertisement (RFC 4861)


def ip_eth_type(address: str) -> int:
    """The ethertype of packets from `address`: IPv6 if it has a colon, else IPv4."""
    return ETH_TYPE_IPV6 if ":" in address else ETH_TYPE_IPV4

# OpenFlow 1.3 reserved port "the port the packet came in on": a switch drops an
# output to the in_port given by its number (hosts behind one port need this).
OFPP_IN_PORT = 0xFFFF_FFF8


# Actions -----------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """Send the packet out of `port` (an OpenFlow port number)."""

    port: int


@dataclass(frozen=True)
class ToController:
    """Send the packet to the controller (a packet-in)."""

    max_len: int = 0xFFFF


@dataclass(frozen=True)
class PushMpls:
    """Push an MPLS shim header; the label is then set with SetField."""

    ethertype: int = ETH_TYPE_MPLS


@dataclass(frozen=True)
class PopMpls:
    """Pop the outermost MPLS header; `ethertype` is the payload's type."""

    ethertype: int = ETH_TYPE_IPV4


@dataclass(frozen=True)
class SetField:
    """Set an OXM field (`mpls_label`, `mpls_tc`, `eth_dst`, ...)."""

    field: str
    value: int | str


@dataclass(frozen=True)
class Group:
    """Hand the packet to group `group_id`."""

    group_id: int


@dataclass(frozen=True)
class LearnConnection:
    """Open vSwitch's learn action (NXAST_LEARN) for one TCP connection.

    The switch adds to `table` an entry matching the packet's eth_type,
    ip_proto, ipv4_src, ipv4_dst, tcp_src and tcp_dst, with no actions, at
    `priority`, with `cookie` and `idle_timeout`: a per-connection counter.
    """

    table: int
    priority: int
    cookie: int
    idle_timeout: int


@dataclass(frozen=True)
class Resubmit:
    """Open vSwitch's resubmit (NXAST_RESUBMIT_TABLE): run the matching entry of
    `table` on the packet (in_port as it is), then go on with the next action."""

    table: int


Action = Output | ToController | PushMpls | PopMpls | SetField | Group | LearnConnection | Resubmit


# Flows and groups --------------------------------------------------------


def _freeze(match: Mapping[str, int | str]) -> tuple[tuple[str, int | str], ...]:
    return tuple(sorted(match.items()))


@dataclass(frozen=True)
class FlowSpec:
    """One flow entry: where it lives, what it matches and what it does.

    `match` uses OpenFlow OXM field names (in_port, eth_type, eth_src,
    eth_dst, ipv4_src, ipv4_dst, mpls_label, ...). `actions` are applied in
    order (an apply-actions instruction); `goto` continues in that table.
    An entry with no actions and no goto drops the packet.
    """

    dpid: int
    table: int
    priority: int
    match: tuple[tuple[str, int | str], ...]
    actions: tuple[Action, ...] = ()
    goto: int | None = None
    cookie: int = PIPELINE_COOKIE
    idle_timeout: int = 0
    hard_timeout: int = 0
    notify_removed: bool = False  # OFPFF_SEND_FLOW_REM: tell the controller when it times out
    meter: int | None = None  # a meter instruction: packets pass meter `meter` first

    @classmethod
    def make(
        cls,
        dpid: int,
        table: int,
        priority: int,
        match: Mapping[str, int | str],
        actions: tuple[Action, ...] | list[Action] = (),
        goto: int | None = None,
        cookie: int = PIPELINE_COOKIE,
    ) -> FlowSpec:
        """Build a FlowSpec from a plain match dict."""
        return cls(dpid, table, priority, _freeze(match), tuple(actions), goto, cookie)

    @property
    def match_dict(self) -> dict[str, int | str]:
        """The match as a dict."""
        return dict(self.match)

    @property
    def key(self) -> tuple[int, int, int, tuple[tuple[str, int | str], ...]]:
        """What identifies the entry on a switch: (dpid, table, priority, match)."""
        return (self.dpid, self.table, self.priority, self.match)


@dataclass(frozen=True)
class Bucket:
    """A group bucket: `weight` matters for select groups; `watch_port` for
    fast-failover groups (the bucket is live while that port is up; None: always)."""

    actions: tuple[Action, ...]
    weight: int = 1
    watch_port: int | None = None


@dataclass(frozen=True)
class GroupSpec:
    """An OpenFlow group: `kind` is "select", "all", "indirect" or "fast_failover".

    `modify` sends it as a group modify (the group exists already and flows
    point at it) rather than an add; it is not part of the group's value.
    """

    dpid: int
    group_id: int
    kind: str
    buckets: tuple[Bucket, ...] = field(default_factory=tuple)
    modify: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class MeterSpec:
    """An OpenFlow meter with one drop band: traffic above `rate_kbps` is dropped.

    `modify` sends a meter modify (the meter exists) rather than an add.
    """

    dpid: int
    meter_id: int
    rate_kbps: int
    burst_kb: int
    modify: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class MeterDelete:
    """Remove meter `meter_id` of `dpid` (None: every meter), and the flows using it."""

    dpid: int
    meter_id: int | None = None


def meter_for(dpid: int, meter_id: int, rate_bps: float, modify: bool = False) -> MeterSpec:
    """A meter capping traffic at `rate_bps`, with a burst of 200 ms of that rate."""
    kbps = max(1, round(rate_bps / 1000))
    return MeterSpec(dpid, meter_id, kbps, max(100, kbps // 5), modify)


@dataclass(frozen=True)
class GroupDelete:
    """Remove group `group_id` of `dpid` (None: every group of the switch).

    As in OpenFlow, deleting a group also removes the flows that point at it.
    """

    dpid: int
    group_id: int | None = None


@dataclass(frozen=True)
class FlowDelete:
    """Remove the entries of `dpid` that match: by cookie, table and match.

    `strict` follows OpenFlow: a strict delete needs the priority and the
    exact match; a non-strict one removes every entry whose match includes
    `match` (an empty match means all entries of the table(s)).
    """

    dpid: int
    cookie: int = 0
    cookie_mask: int = 0
    table: int | None = None  # None: all tables
    match: tuple[tuple[str, int | str], ...] = ()
    priority: int | None = None
    strict: bool = False
