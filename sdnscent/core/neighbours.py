"""IPv6 Neighbour Discovery: the controller's twin of its proxy ARP.

Every Neighbour Solicitation (NS) and Advertisement (NA) reaches the
controller (pipeline.PRIO_ND). A host is learned from the source address of
its NS and NA (and from the target of its NA). An NS for a known address is
answered by the controller with an NA carrying the owner's MAC, and the pair
gets its IPv6 trails both ways; an NS for an unknown address is parked and the
address probed: an NS with the unspecified source (the form of Duplicate
Address Detection, RFC 4862) out of every host port, which the owner answers
with an NA to all-nodes. Probes are bounded like ARP probes: one per address
per PROBE_INTERVAL, PROBE_RATE rounds per second overall, PENDING_TTL and
PENDING_MAX for the waiters. Nothing is flooded.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field

from ..flows import ICMPV6_NA, ICMPV6_NS
from ..ratelimit import RateLimiter
from ..topology import Host, TopologyError
from .hosts import PENDING_MAX, PENDING_TTL, PROBE_BURST, PROBE_RATE
from .model import CONTROLLER_MAC, PROBE_INTERVAL, Change
from .state import CoreState

LOG = logging.getLogger("sdnscent.controller")

UNSPECIFIED = "::"


@dataclass(frozen=True)
class NdPacket:
    """A Neighbour Solicitation or Advertisement for the glue to build and send out of
    (dpid, port). `lladdr` is the link-layer option (target's for an NA, source's for
    an NS; "" for none, as a probe from the unspecified address must)."""

    dpid: int
    port: int
    kind: int  # ICMPV6_NS or ICMPV6_NA
    eth_src: str
    eth_dst: str
    ip_src: str
    ip_dst: str
    target: str
    lladdr: str = ""
    solicited: bool = True  # an NA's S flag


@dataclass
class NdResult:
    """What to send after an ND packet-in, and host pairs worth IPv6 trails."""

    packets: list[NdPacket] = field(default_factory=list)
    pairs: list[tuple[str, str]] = field(default_factory=list)
    change: Change = field(default_factory=Change)


def solicited_node(address: str) -> tuple[str, str]:
    """The solicited-node multicast address of `address` and its Ethernet group (RFC 4291)."""
    low = int(ipaddress.IPv6Address(address)) & 0xFFFFFF
    group = ipaddress.IPv6Address(int(ipaddress.IPv6Address("ff02::1:ff00:0")) | low)
    mac = "33:33:ff:" + ":".join(f"{(low >> s) & 0xFF:02x}" for s in (16, 8, 0))
    return group.compressed, mac


class NeighbourManager:
    """Neighbour Discovery answers and probes; shares the core's state."""

    def __init__(self, s: CoreState) -> None:
        self.s = s
        # unknown address -> requester MAC -> (requester address, dpid, port, since)
        self.pending: dict[str, dict[str, tuple[str, int, int, float]]] = {}
        self.probed: dict[str, float] = {}  # address -> when it was last probed
        self.probes_limited = 0
        self.answered = 0  # NS answered from the host table
        self.probes = 0  # probe rounds sent
        self._rounds = RateLimiter(PROBE_RATE, PROBE_BURST, clock=s.clock)
        self._swept = float("-inf")

    def handle(self, dpid: int, port: int, kind: int, eth_src: str, ip_src: str,
               target: str) -> NdResult:
        """An NS or NA from (dpid, port): learn, answer, probe, and name pairs for trails."""
        result = NdResult()
        if eth_src == CONTROLLER_MAC or kind not in (ICMPV6_NS, ICMPV6_NA) \
                or self.s.topo.is_link_port(dpid, port) or (dpid, port) in self.s.nf_ports():
            return result
        try:
            target = ipaddress.IPv6Address(target).compressed
            ip_src = ipaddress.IPv6Address(ip_src).compressed
        except ValueError:
            LOG.info("neighbour discovery from %s ignored: bad address", eth_src)
            return result
        now = self.s.clock()
        self._expire(now)
        learned = [ip_src] if ip_src != UNSPECIFIED else []
        if kind == ICMPV6_NA and target not in learned:
            learned.append(target)  # an NA speaks for its target
        for address in learned:
            result.change.merge(self.s.hosts.learn_host(dpid, port, eth_src, address))
        owner = self.s.topo.hosts.get(eth_src)
        if owner is not None:
            for address in learned:
                self._answer_waiters(owner, address, result)
        if kind != ICMPV6_NS or ip_src == UNSPECIFIED or owner is None:
            return result  # duplicate address detection: not the controller's to answer
        known = self.s.topo.host_by_ip(target)
        if known is not None:
            if known.mac != eth_src:
                result.packets.append(self._advert(known, target, eth_src, ip_src, dpid, port))
                result.pairs.append((eth_src, known.mac))
                self.answered += 1
            return result
        if target not in self.pending and len(self.pending) >= PENDING_MAX:
            del self.pending[next(iter(self.pending))]  # the oldest address
        self.pending.setdefault(target, {})[eth_src] = (ip_src, dpid, port, now)
        result.packets.extend(self._probe(target, now))
        return result

    def _answer_waiters(self, owner: Host, address: str, result: NdResult) -> None:
        for mac, (waiting_ip, wdpid, wport, _since) in self.pending.pop(address, {}).items():
            if mac != owner.mac:
                result.packets.append(self._advert(owner, address, mac, waiting_ip, wdpid,
                                                   wport))
                result.pairs.append((mac, owner.mac))
                self.answered += 1

    def _advert(self, owner: Host, target: str, to_mac: str, to_ip: str, dpid: int,
                port: int) -> NdPacket:
        """A proxy NA: the owner's MAC in the target link-layer option; the controller's
        as the frame's source (like a proxy ARP reply)."""
        return NdPacket(dpid, port, ICMPV6_NA, CONTROLLER_MAC, to_mac, target, to_ip, target,
                        owner.mac, solicited=True)

    def _expire(self, now: float) -> None:
        if now - self._swept < 1.0:
            return
        self._swept = now
        for address in list(self.pending):
            waiting = {m: w for m, w in self.pending[address].items()
                       if now - w[3] < PENDING_TTL}
            if waiting:
                self.pending[address] = waiting
            else:
                del self.pending[address]
        for address in [a for a, at in self.probed.items() if now - at >= PROBE_INTERVAL]:
            del self.probed[address]

    def _probe(self, target: str, now: float) -> list[NdPacket]:
        """NS probes for `target` out of every host port, unless probed lately or the
        budget is spent."""
        if now - self.probed.get(target, -PROBE_INTERVAL) < PROBE_INTERVAL:
            return []
        if not self._rounds.allow("probe"):
            self.probes_limited += 1
            return []
        self.probed[target] = now
        self.probes += 1
        group, group_mac = solicited_node(target)
        skip = self.s.nf_ports()
        return [NdPacket(dpid, port, ICMPV6_NS, CONTROLLER_MAC, group_mac, UNSPECIFIED, group,
                         target)
                for dpid in sorted(self.s.topo.switches)
                for port in self.s.topo.edge_ports(dpid) if (dpid, port) not in skip]

    def forget(self, mac: str) -> None:
        """A host went away: it waits for nothing any more."""
        for waiting in self.pending.values():
            waiting.pop(mac, None)


def pair_trails(s: CoreState, pairs: list[tuple[str, str]]) -> list[Change]:
    """IPv6 trails, both ways, for each pair an ND exchange showed."""
    changes = []
    for src, dst in pairs:
        for a, b in ((src, dst), (dst, src)):
            try:
                _, change = s.trails.ensure_pair(a, b, family=6)
            except TopologyError as exc:
                LOG.info("no IPv6 trail %s -> %s: %s", a, b, exc)
                continue
            if change:
                changes.append(change)
    return changes
