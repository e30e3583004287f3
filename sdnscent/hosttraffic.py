"""How each kind of host traffic is treated besides unicast IP (docs/host-traffic.rst).

- ARP and IPv6 Neighbour Discovery: answered by the controller (core/hosts.py,
  core/neighbours.py).
- DHCPv4: relayed by the controller to the DHCP server the policy names, and the
  server's answers to the client's port (core/dhcp.py); never flooded.
- Any other broadcast and multicast from a host: dropped at its edge switch by
  the flows below, one per kind of traffic, whose counters the controller reads
  and /metrics shows (``sdnscent_host_traffic_dropped_packets``).

The policy's ``host_traffic`` section (HostTrafficPolicy) names the DHCP server
and the gateway (the way out of the fabric, core/gateway.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .flows import FlowSpec
from .pipeline import (
    KIND_HOST_TRAFFIC,
    PRIO_HOST_DROP,
    PRIO_HOST_DROP_ANY,
    TABLE_CLASSIFY,
    cookie_kind,
    make_cookie,
)

# What the edge drops, by the id in its flow's cookie: (name, eth_dst match, priority).
# Masks are written as Open vSwitch reads them back ("value/mask"), so the audit
# compares equal; the specific kinds sit above the catch-all multicast one.
EDGE_KINDS: dict[int, tuple[str, str, int]] = {
    1: ("broadcast", "ff:ff:ff:ff:ff:ff", PRIO_HOST_DROP),
    2: ("ipv4-multicast", "01:00:5e:00:00:00/ff:ff:ff:80:00:00", PRIO_HOST_DROP),
    3: ("ipv6-multicast", "33:33:00:00:00:00/ff:ff:00:00:00:00", PRIO_HOST_DROP),
    4: ("other-multicast", "01:00:00:00:00:00/01:00:00:00:00:00", PRIO_HOST_DROP_ANY),
}


@dataclass(frozen=True)
class MulticastGroup:
    """A named IPv4 multicast group and its member hosts (policy names or addresses)."""

    name: str
    address: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class HostTrafficPolicy:
    """The policy's ``host_traffic`` section: hosts named by a policy host name or an
    IPv4 address (None: not configured)."""

    dhcp_server: str | None = None  # DHCPv4 requests go to this host (core/dhcp.py)
    gateway: str | None = None  # a router: addresses outside the fabric go to it
    groups: tuple[MulticastGroup, ...] = ()  # delivered on trees (core/multicast.py)


def edge_flows(dpid: int) -> list[FlowSpec]:
    """The counted drops of broadcast and multicast every switch gets."""
    return [FlowSpec.make(dpid, TABLE_CLASSIFY, prio, {"eth_dst": dst},
                          cookie=make_cookie(KIND_HOST_TRAFFIC, ident))
            for ident, (_name, dst, prio) in EDGE_KINDS.items()]


def edge_kind(cookie: int) -> str | None:
    """The kind of traffic an edge drop flow counts, from its cookie (None: not one)."""
    if cookie_kind(cookie) != KIND_HOST_TRAFFIC:
        return None
    found = EDGE_KINDS.get(cookie & 0xFFFF_FFFF)
    return found[0] if found else None


@dataclass
class HostTrafficCounters:
    """What became of host traffic that is not unicast IP, for /metrics."""

    # (dpid, kind) -> packets the switch's drop flow counted (its own running total)
    dropped: dict[tuple[int, str], int] = field(default_factory=dict)
    answered: dict[str, int] = field(default_factory=dict)  # kind -> answers, relays

    def edge_stats(self, dpid: int, entries: Iterable[tuple[int, int]]) -> None:
        """Flow stats of switch `dpid`: (cookie, packets) of its edge drop flows."""
        for cookie, packets in entries:
            kind = edge_kind(cookie)
            if kind is not None:
                self.dropped[(dpid, kind)] = packets

    def count(self, kind: str, n: int = 1) -> None:
        """`n` more packets of `kind` answered or relayed by the controller."""
        if n:
            self.answered[kind] = self.answered.get(kind, 0) + n

    def dropped_by_kind(self) -> dict[str, int]:
        """Packets dropped at the edge per kind, over every switch."""
        total = {name: 0 for name, _, _ in EDGE_KINDS.values()}
        for (_dpid, kind), n in self.dropped.items():
            total[kind] += n
        return total


class HostTrafficCollector:
    """Prometheus collector: host traffic dropped at the edge and answered."""

    def __init__(self, counters: HostTrafficCounters, lock: Any) -> None:
        self.counters = counters
        self.lock = lock

    def collect(self) -> Iterator[Any]:
        """The two metric families."""
        from prometheus_client.core import CounterMetricFamily

        with self.lock:
            dropped = self.counters.dropped_by_kind()
            answered = dict(self.counters.answered)
        drops = CounterMetricFamily(
            "sdnscent_host_traffic_dropped_packets", "Broadcast and multicast from hosts "
            "dropped at the edge switch, by kind (switch counters)", labels=["kind"])
        for kind, n in sorted(dropped.items()):
            drops.add_metric([kind], n)
        yield drops
        answers = CounterMetricFamily(
            "sdnscent_host_traffic_answered", "Host traffic answered or relayed by the "
            "controller, by kind (arp, nd, dhcp-request, dhcp-reply, ...)", labels=["kind"])
        for kind, n in sorted(answered.items()):
            answers.add_metric([kind], n)
        yield answers
