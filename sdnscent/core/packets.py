"""Packet-in decisions: what a packet that reached the controller asks for.

The glue parses a packet-in and asks here; the answer says which changes to
send (in order), which ARP packets to send now, whether to send the packet
itself back through the pipeline once the changes are confirmed, and whether
to park it: an IPv4 packet with no path yet (links still being discovered)
waits PARK_SECONDS and is decided again when a link appears.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from ..topology import TopologyError, dpid_str
from .model import ArpPacket, Change
from .neighbours import NdPacket
from .state import CoreState

LOG = logging.getLogger("sdnscent.controller")

PARK_SECONDS = 3.0  # how long a packet with no path waits for a link to appear
PARKED_MAX = 256  # packets parked at once (the oldest go first)


@dataclass(frozen=True)
class Parked:
    """An IPv4 packet waiting for a path."""

    dpid: int
    in_port: int
    eth_src: str
    eth_dst: str
    ip_src: str
    data: bytes
    received: float  # monotonic time of the packet-in (for the set-up latency)
    deadline: float


@dataclass
class Decision:
    """What the glue does about one packet-in."""

    changes: list[Change] = field(default_factory=list)  # sent in this order
    created: list[int] = field(default_factory=list)  # new trails (set-up latency)
    packets: list[ArpPacket | NdPacket] = field(default_factory=list)  # ARP and ND to send now
    resend: bool = False  # send the packet back through table 0 once the changes are done

    def add(self, change: Change) -> None:
        """Append a change (empty ones are left out)."""
        if change:
            self.changes.append(change)
            self.created.extend(change.created)


class PacketManager:
    """Packet-in decisions and parked packets; shares the core's state."""

    def __init__(self, s: CoreState) -> None:
        self.s = s
        self.parked: deque[Parked] = deque(maxlen=PARKED_MAX)

    def _pair(self, decision: Decision, src: str, dst: str, family: int = 4) -> None:
        """Trails for a host pair (default and applications) into `decision`."""
        try:
            _, change = self.s.trails.ensure_pair(src, dst, family)
        except TopologyError as exc:
            LOG.info("no trail %s -> %s: %s", src, dst, exc)
            return
        decision.add(change)

    def arp(self, dpid: int, port: int, opcode: int, src_mac: str, src_ip: str,
            dst_ip: str) -> Decision:
        """An ARP packet: proxy answers and probes now, then trails for the pairs it shows."""
        result, change = self.s.hosts.handle_arp(dpid, port, opcode, src_mac, src_ip, dst_ip)
        decision = Decision(packets=list(result.packets))
        decision.add(change)
        for src, dst in result.pairs:
            self._pair(decision, src, dst)
            self._pair(decision, dst, src)
        for client, name in result.services:
            decision.add(self.s.services.ensure_service(client, name))
        return decision

    def ipv4(self, dpid: int, in_port: int, eth_src: str, eth_dst: str, ip_src: str,
             data: bytes, received: float, deadline: float | None = None) -> Decision:
        """An IPv4 (or IPv6: `ip_src` has a colon) packet with no classifier: learn, set up
        its pair's trails of that family, resend or park.

        `received` is when it arrived (monotonic); `deadline` is set when a
        parked packet is decided again.
        """
        decision = Decision()
        if self.s.topo.is_link_port(dpid, in_port):
            return decision
        family = 6 if ":" in ip_src else 4
        decision.add(self.s.hosts.learn_host(dpid, in_port, eth_src, ip_src))
        hosts = self.s.topo.hosts
        here = hosts.get(eth_src)
        if self.s.edge.enabled and (here is None or (here.dpid, here.port) != (dpid, in_port)) \
                and (dpid, in_port) not in self.s.nf_ports():
            return decision  # a claim port security did not admit (core.edge)
        service = self.s.services.service_by_mac(eth_dst) if family == 4 else None
        if service is not None:  # to a VIP: the service's group takes it from the table
            if eth_src in hosts:
                decision.add(self.s.services.ensure_service(eth_src, service.name))
                decision.resend = True
            return decision
        if eth_dst not in hosts or eth_src not in hosts:
            return decision
        if self.s.trails.trail_for_pair(eth_src, eth_dst, family=family) is not None:
            # its classifier timed out or was removed: put it back
            decision.add(self.s.trails.refresh_classifiers(eth_src, eth_dst))
        self._pair(decision, eth_src, eth_dst, family)
        if self.s.trails.trail_for_pair(eth_src, eth_dst, family=family) is not None:
            decision.resend = True
        else:  # no path yet (links still being discovered): hold it briefly
            self.parked.append(Parked(dpid, in_port, eth_src, eth_dst, ip_src, data, received,
                                      deadline or received + PARK_SECONDS))
        return decision

    def release(self, now: float) -> list[Parked]:
        """Parked packets still within their deadline, to decide again (a link appeared)."""
        parked, self.parked = self.parked, deque(maxlen=PARKED_MAX)
        return [p for p in parked if p.deadline > now]

    def label_miss(self, dpid: int, label: int | None) -> Decision:
        """A labelled packet found no entry at `dpid`: restore the hop, then resend it."""
        change = self.s.trails.restore_hop(dpid, label) if label is not None else Change()
        if not change:
            LOG.debug("label %s unknown at %s: dropped", label, dpid_str(dpid))
            return Decision()
        return Decision(changes=[change], resend=True)
