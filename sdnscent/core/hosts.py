"""Hosts and ARP: learning where hosts are, proxy ARP, probes."""

from __future__ import annotations

import logging

from .. import tagging
from ..ratelimit import RateLimiter
from ..store import HostRecord, StoreError
from ..topology import Host, TopologyError
from .gateway import forwarded
from .model import (
    ARP_REPLY,
    ARP_REQUEST,
    CONTROLLER_MAC,
    PROACTIVE_TOP,
    PROBE_INTERVAL,
    ArpPacket,
    ArpResult,
    Change,
)
from .state import CoreState

LOG = logging.getLogger("sdnscent.controller")

PENDING_TTL = 10.0  # s a requester waits for an unknown address to answer a probe
PENDING_MAX = 4096  # unknown addresses waited for at once (more: the oldest go)
PROBE_RATE, PROBE_BURST = 10.0, 20.0  # probe rounds per second for unknown addresses
HOST_REFRESH = 60.0  # s between writes of a known host's last-seen time to the store


class HostManager:
    """Hosts and ARP; shares the core's state.

    ARP state is bounded: a requester waits PENDING_TTL for an unknown
    address, at most PENDING_MAX addresses are waited for, an address is
    probed at most once per PROBE_INTERVAL, and probe rounds (one ARP out of
    every host port) are limited to PROBE_RATE per second overall.
    """

    def __init__(self, s: CoreState) -> None:
        self.s = s
        # unknown ip -> requester MAC -> (requester ip, dpid, port, since)
        self.pending_arp: dict[str, dict[str, tuple[str, int, int, float]]] = {}
        self.probed: dict[str, float] = {}  # ip -> when it was last probed
        self.probes_limited = 0  # probe rounds refused by the rate limit
        self._probe_rounds = RateLimiter(PROBE_RATE, PROBE_BURST, clock=s.clock)
        self._swept = float("-inf")
        # Hosts from the store after a restart, placed when their switch connects.
        self.recovered: dict[str, HostRecord] = {}
        self._saved: dict[str, float] = {}  # mac -> when its record was last written

    # hosts in the store ----------------------------------------------------------
    def load_stored(self) -> int:
        """Read the stored hosts (after a restart or a take-over); return how many."""
        try:
            records = self.s.store.hosts()
        except StoreError as exc:
            LOG.warning("stored hosts not read: %s", exc)
            records = []
        self.recovered = {r.mac: r for r in records if r.mac not in self.s.topo.hosts}
        return len(records)

    def restore_at(self, dpid: int) -> int:
        """Place the stored hosts of switch `dpid`, which just connected; return how many.

        A host whose port is gone, down, or faces a link or a network function
        stays unplaced; it is learned again when it speaks.
        """
        placed = 0
        sw = self.s.topo.switches.get(dpid)
        nf_ports = self.s.nf_ports()
        for record in [r for r in self.recovered.values() if r.dpid == dpid]:
            del self.recovered[record.mac]
            port = sw.ports.get(record.port) if sw is not None else None
            if port is None or not port.up or (dpid, record.port) in nf_ports \
                    or record.mac in self.s.topo.hosts \
                    or self.s.topo.host_by_ip(record.ip) is not None:
                continue
            try:
                self.s.topo.add_host(record.mac, record.ip, dpid, record.port)
            except TopologyError as exc:
                LOG.info("stored host %s not placed: %s", record.mac, exc)
                continue
            self._saved[record.mac] = record.seen
            self.s.edge.restored(dpid, record.port, record.mac)
            placed += 1
        if placed:
            self.s.record("host", f"{placed} hosts of {self.s.topo.switch_name(dpid)} "
                          "restored from the store")
        return placed

    def _save(self, host: Host, now: float) -> None:
        self._saved[host.mac] = now
        try:
            self.s.store.put_host(HostRecord(host.mac, host.ip, host.dpid, host.port, now))
        except StoreError as exc:
            LOG.warning("host %s not stored: %s", host.mac, exc)

    def _forget(self, mac: str) -> None:
        self._saved.pop(mac, None)
        self.recovered.pop(mac, None)
        try:
            self.s.store.delete_host(mac)
        except StoreError as exc:
            LOG.warning("host %s not deleted from the store: %s", mac, exc)

    def _expire_arp(self, now: float) -> None:
        """Forget waiters older than PENDING_TTL and probes older than PROBE_INTERVAL."""
        if now - self._swept < 1.0:
            return
        self._swept = now
        for ip in list(self.pending_arp):
            waiting = {m: w for m, w in self.pending_arp[ip].items() if now - w[3] < PENDING_TTL}
            if waiting:
                self.pending_arp[ip] = waiting
            else:
                del self.pending_arp[ip]
        for ip in [ip for ip, at in self.probed.items() if now - at >= PROBE_INTERVAL]:
            del self.probed[ip]

    def _probe(self, ip: str, now: float) -> list[ArpPacket]:
        """Probes for `ip` unless it was probed lately or the probe budget is spent."""
        if now - self.probed.get(ip, -PROBE_INTERVAL) < PROBE_INTERVAL:
            return []
        if not self._probe_rounds.allow("probe"):
            self.probes_limited += 1
            return []
        self.probed[ip] = now
        return self._arp_probes(ip)

    def probe(self, ip: str) -> list[ArpPacket]:
        """ARP probes for `ip` now, within the same bounds as for an ARP request."""
        return self._probe(ip, self.s.clock())

    def learn_host(self, dpid: int, port: int, mac: str, ip: str) -> Change:
        """A host spoke from (dpid, port); learn it, moving its trails if it moved."""
        if mac == CONTROLLER_MAC or ip in ("0.0.0.0", "::") or dpid not in self.s.topo.switches:
            return Change()
        if self.s.topo.is_link_port(dpid, port) or (dpid, port) in self.s.nf_ports() \
                or forwarded(self.s, mac, ip):  # from outside, through the gateway
            return Change()
        admitted, refused = self.s.edge.admit(dpid, port, mac, ip)
        if not admitted:  # it contests a binding elsewhere (core.edge)
            return refused
        previous_owner = self.s.topo.host_by_ip(ip)
        was_known = mac in self.s.topo.hosts
        trusted_before = self.s.tagger_ports()
        try:
            add = self.s.topo.add_host6 if ":" in ip else self.s.topo.add_host
            host, old = add(mac, ip, dpid, port)
        except TopologyError as exc:
            LOG.warning("host not learned: %s", exc)
            return Change()
        self.s.edge.learned(dpid, port, host.mac, old)
        change = Change()
        now = self.s.clock()
        self.recovered.pop(host.mac, None)
        if host.ip and (old is not None or not was_known  # the store keeps IPv4 hosts
                        or now - self._saved.get(host.mac, float("-inf")) >= HOST_REFRESH):
            self._save(host, now)
        if previous_owner is not None and previous_owner.mac != host.mac:
            self.s.record("host", f"{ip} moved from {previous_owner.mac} to {mac}")
            change.merge(self.drop_host_trails(previous_owner.mac, f"{ip} changed owner"))
            self.s.patterns.forget(previous_owner.mac)
        if old is not None:
            self.s.record("host", f"host {ip} ({mac}) moved to "
                        f"{self.s.topo.switch_name(dpid)}:{port}")
            change.merge(self.drop_host_trails(mac, "host moved"))
        if old is not None or previous_owner is None or previous_owner.mac != host.mac:
            for binding in list(self.s.bindings.values()):  # a pool member (re)appeared
                if ip in self.s.services.member_ips(binding.service):
                    change.merge(self.s.services.refresh_binding(binding))
        if not was_known and old is None:
            change.merge(self._drop_misplaced_trails(host))
        if not was_known or old is not None:
            change.merge(self._proactive_pairs(mac))
            change.merge(self.s.multicast.refresh())  # a group member may have appeared
        return change.merge(self.retrust(trusted_before))

    def _drop_misplaced_trails(self, host: Host) -> Change:
        """Trails kept from before a restart whose end is not where `host` was learned."""
        change = Change()
        for (_app, src, dst), trail_id in list(self.s.by_pair.items()):
            trail = self.s.store.get(trail_id)
            if trail is None or host.mac not in (src, dst) \
                    or (trail.grouped and trail.id not in self.s.legs):
                continue
            at = [(trail.ingress.dpid, trail.ingress.in_port)] if src == host.mac else []
            if dst == host.mac:
                at.append((trail.egress.dpid, trail.egress.out_port))
            if any(place != (host.dpid, host.port) for place in at):
                change.merge(self.s.trails.remove_trail(trail_id, f"host {host.ip} was learned at "
                                               f"{self.s.topo.switch_name(host.dpid)}:"
                                               f"{host.port}, not where the trail ends"))
        return change

    def _proactive_pairs(self, mac: str) -> Change:
        """Set up the best-ranked pairs of a host that (re)appeared, before it talks."""
        change = Change()
        done: set[tuple[str, str]] = set()
        for app in {p[0] for p in self.s.patterns.pairs}:
            for _, src, dst in self.s.patterns.top(app, PROACTIVE_TOP):
                if mac in (src, dst) and (src, dst) not in done \
                        and src in self.s.topo.hosts and dst in self.s.topo.hosts:
                    done.add((src, dst))
                    try:
                        change.merge(self.s.trails.ensure_pair(src, dst)[1])
                    except TopologyError:
                        continue
        if done:
            self.s.record("proactive", f"{len(done)} frequent pairs of {mac} set up again")
        return change

    def handle_arp(self, dpid: int, port: int, opcode: int, src_mac: str, src_ip: str,
                   dst_ip: str) -> tuple[ArpResult, Change]:
        """Proxy ARP from the host table; probe edge ports for unknown addresses."""
        result = ArpResult()
        if src_mac == CONTROLLER_MAC or self.s.topo.is_link_port(dpid, port) \
                or (dpid, port) in self.s.nf_ports():
            return result, Change()
        now = self.s.clock()
        self._expire_arp(now)
        change = self.learn_host(dpid, port, src_mac, src_ip)
        requester = self.s.topo.hosts.get(src_mac)
        if self.s.edge.enabled and requester is not None and (
                (requester.dpid, requester.port) != (dpid, port)
                or requester.ip != src_ip != "0.0.0.0"):
            requester = None  # a claim port security did not admit: no answers for it
        # Whoever was waiting for src_ip gets the answer now.
        waiters = self.pending_arp.pop(src_ip, {}).items()
        for waiting_mac, (waiting_ip, wdpid, wport, _since) in waiters:
            if requester and waiting_mac != src_mac:
                result.packets.append(self._arp_reply(requester, waiting_mac, waiting_ip,
                                                      wdpid, wport))
                result.pairs.append((waiting_mac, src_mac))
        if opcode != ARP_REQUEST or requester is None or dst_ip == src_ip:
            return result, change
        service = self.s.services.service_by_vip(dst_ip)
        if service is not None:
            if src_ip in self.s.services.member_ips(service):
                self.s.record("service", f"{src_ip} asked for {service.name} ({dst_ip}), of "
                            "which it is a pool member: not answered")
                return result, change
            result.packets.append(ArpPacket(dpid, port, ARP_REPLY, service.mac, src_mac,
                                            service.mac, dst_ip, src_mac, src_ip))
            result.services.append((src_mac, service.name))
            for ip in self.s.services.member_ips(service):
                if self.s.topo.host_by_ip(ip) is None:
                    result.packets.extend(self._probe(ip, now))
            return result, change
        target = self.s.topo.host_by_ip(dst_ip)
        if target is not None:
            if target.mac != src_mac:
                result.packets.append(self._arp_reply(target, src_mac, src_ip, dpid, port))
                result.pairs.append((src_mac, target.mac))
            return result, change
        if dst_ip not in self.pending_arp and len(self.pending_arp) >= PENDING_MAX:
            del self.pending_arp[next(iter(self.pending_arp))]  # the oldest address
        self.pending_arp.setdefault(dst_ip, {})[src_mac] = (src_ip, dpid, port, now)
        result.packets.extend(self._probe(dst_ip, now))
        return result, change

    def _arp_reply(self, owner: Host, to_mac: str, to_ip: str, dpid: int, port: int) -> ArpPacket:
        """A proxy reply: the owner's MAC in the ARP payload, the controller's as the frame's
        source, so a learning bridge behind the port does not learn the owner there."""
        return ArpPacket(dpid, port, ARP_REPLY, CONTROLLER_MAC, to_mac, owner.mac, owner.ip,
                         to_mac, to_ip)

    def _arp_probes(self, ip: str) -> list[ArpPacket]:
        """ARP probes (sender 0.0.0.0, RFC 5227) out of every host-facing port.

        The asker's own port too: hosts behind one access switch or bridge
        share a port, and the asker ignores a probe for an address not its own.
        """
        probes = []
        skip = self.s.nf_ports()
        for dpid in sorted(self.s.topo.switches):
            for port in self.s.topo.edge_ports(dpid):
                if (dpid, port) not in skip:
                    probes.append(ArpPacket(dpid, port, ARP_REQUEST, CONTROLLER_MAC,
                                            "ff:ff:ff:ff:ff:ff", CONTROLLER_MAC, "0.0.0.0",
                                            "00:00:00:00:00:00", ip))
        return probes

    def retrust(self, before: set[tuple[int, int]]) -> Change:
        """Tagger ports that appeared get their flows; those that went lose them."""
        now = self.s.tagger_ports()
        change = Change()
        for dpid, port in sorted(now - before):
            if dpid in self.s.topo.switches:
                trails = self.s.live(self.s.index.on_switch(dpid))
                change.merge(Change([{dpid: tagging.trusted_port_flows(dpid, port, trails)}]))
        for dpid, port in sorted(before - now):
            if dpid in self.s.topo.switches:
                change.merge(Change([{dpid: list(tagging.untrust_ops(dpid, port))}]))
        return change

    def drop_host_trails(self, mac: str, reason: str) -> Change:
        """Remove the trails, service bindings and drop rules of host `mac`.

        A host the topology no longer has is forgotten by the store too.
        """
        if mac not in self.s.topo.hosts:
            self._forget(mac)
        change = Change()
        for binding in [b for b in self.s.bindings.values() if b.client == mac]:
            change.merge(self.s.services.remove_binding(binding, reason))
        for (_app, src, dst), trail_id in list(self.s.by_pair.items()):
            if mac in (src, dst):
                change.merge(self.s.trails.remove_trail(trail_id, reason))
        for key in [k for k in self.s.blocks if mac in k[1:]]:
            change.merge(self.s.trails.unblock(key))
        for waiting in self.pending_arp.values():
            waiting.pop(mac, None)
        self.s.neighbours.forget(mac)
        return change.merge(self.s.multicast.refresh())
