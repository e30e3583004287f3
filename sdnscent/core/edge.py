"""Port security at the network edge: hosts bound to the port they first appeared at.

A MAC and its IP are bound to the (switch, port) where they were first seen.
Another port claiming either is not believed at once: the bound location is
probed (one ARP request out of that port only) and the claim is accepted
only if that port is down or nothing answers there within `probe_timeout`
(a VM that migrated). If the bound host answers, the claim is refused: a drop
rule for that (port, MAC) or (port, IP) goes into table 0 of the claimant's
switch for `hold` seconds and a `port-security` event is raised. Each port
may carry at most `mac_limit` MACs; the next one is dropped the same way.
Ports where hosts were seen are remembered: no LLDP is sent out of them and
no link is taken on them from LLDP alone (sdnscent.discovery).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..discovery import Discovery
from ..flows import ETH_TYPE_ARP, ETH_TYPE_IPV4, FlowDelete, FlowSpec
from ..pipeline import COOKIE_MASK_ALL, KIND_EDGE, PRIO_EDGE_DROP, TABLE_CLASSIFY, make_cookie
from ..topology import Host, dpid_str
from .model import ARP_REQUEST, CONTROLLER_MAC, ArpPacket, Change
from .state import CoreState

PROBE_TIMEOUT = 1.0  # s the bound location has to answer before a move is accepted
DROP_HOLD = 60  # s a refused claimant's drop rule stays (its hard timeout)
MAC_LIMIT = 8  # MACs one port may carry


@dataclass
class Claim:
    """A frame from (dpid, port) claims a MAC or IP bound elsewhere."""

    kind: str  # "mac" or "ip"
    mac: str  # the claimant's MAC
    ip: str  # the claimant's IP
    dpid: int
    port: int
    owner: Host  # the bound host the claim contests
    since: float
    frame_no: int = 0  # frames admitted before the claim (answers come after it)

    def to_dict(self) -> dict[str, object]:
        """JSON form for GET /api/v1/edge."""
        return {"kind": self.kind, "mac": self.mac, "ip": self.ip, "dpid": dpid_str(self.dpid),
                "port": self.port, "owner_port": f"{dpid_str(self.owner.dpid)}:"
                f"{self.owner.port}", "since": round(self.since, 3)}


@dataclass
class EdgeDrop:
    """A drop rule at the edge for a refused claimant (or a port over its MAC limit)."""

    flows: list[FlowSpec]
    until: float
    reason: str
    info: dict[str, object] = field(default_factory=dict)


class EdgeManager:
    """Host bindings, claims, drop rules and host-facing ports; shares the core's state."""

    def __init__(self, s: CoreState) -> None:
        self.s = s
        self.enabled = False  # the app turns it on (--port-security, default on)
        self.probe_timeout = PROBE_TIMEOUT
        self.hold = DROP_HOLD
        self.mac_limit = MAC_LIMIT
        self.discovery: Discovery | None = None  # signed LLDP (the app sets it)
        self.host_ports: dict[tuple[int, int], set[str]] = {}  # port -> MACs seen there
        self.claims: dict[tuple[str, str, int, int], Claim] = {}
        self.home_seen: dict[str, int] = {}  # MAC -> number of its last frame at its port
        self.frames = 0  # frames looked at, numbering them
        self.drops: dict[tuple[int, int, str, str], EdgeDrop] = {}
        self.outbox: list[ArpPacket] = []
        self.counts = {"moves_accepted": 0, "claims_refused": 0, "mac_limit": 0,
                       "probes": 0}
        self._ids = 0

    # facts from the core -------------------------------------------------------
    def faces_hosts(self, dpid: int, port: int) -> bool:
        """True if hosts were seen at (dpid, port) since it last came up."""
        return bool(self.host_ports.get((dpid, port)))

    def port_down(self, dpid: int, port: int) -> None:
        """A port went down: its hosts, claims from it and what LLDP heard there are gone."""
        self.host_ports.pop((dpid, port), None)
        for key in [k for k in self.claims if k[2:] == (dpid, port)]:
            del self.claims[key]
        if self.discovery is not None:
            self.discovery.forget_port(dpid, port)

    def switch_gone(self, dpid: int) -> None:
        """A switch was forgotten: so are its ports."""
        for key in [k for k in self.host_ports if k[0] == dpid]:
            self.port_down(*key)

    def flows(self, dpid: int) -> list[FlowSpec]:
        """Drop rules switch `dpid` should hold now (for its audit)."""
        now = self.s.clock()
        return [f for d in self.drops.values() if d.until > now for f in d.flows
                if f.dpid == dpid]

    # the check -----------------------------------------------------------------
    def admit(self, dpid: int, port: int, mac: str, ip: str) -> tuple[bool, Change]:
        """May a frame from `mac`/`ip` at (dpid, port) teach the core where it is?

        (True, nothing) to learn it now; (False, drop rules to install) when it
        contests a binding (a probe is queued) or breaks the port's MAC limit.
        """
        if not self.enabled:  # ports facing hosts are still remembered (no LLDP there)
            self.host_ports.setdefault((dpid, port), set()).add(mac)
            return True, Change()
        now = self.s.clock()
        self.frames += 1
        if any(self._dropping(k, now) for k in ((dpid, port, mac, ""), (dpid, port, "", ip))):
            return False, Change()
        seen = self.host_ports.setdefault((dpid, port), set())
        if mac not in seen and len(seen) >= self.mac_limit:
            return False, self._drop(dpid, port, mac, "", now,
                                     f"port {self._where(dpid, port)} already carries "
                                     f"{len(seen)} MACs (limit {self.mac_limit}): {mac} dropped",
                                     "mac_limit")
        seen.add(mac)
        known = self.s.topo.hosts.get(mac)
        owner = self.s.topo.host_by_ip(ip)
        if known is not None and (known.dpid, known.port) == (dpid, port):
            self.home_seen[mac] = self.frames
        elif known is not None and self._alive(known):
            return False, self._claim("mac", mac, ip, dpid, port, known, now)
        if owner is not None and owner.mac != mac and self._alive(owner):
            return False, self._claim("ip", mac, ip, dpid, port, owner, now)
        return True, Change()

    def learned(self, dpid: int, port: int, mac: str, old: Host | None) -> None:
        """The core learned `mac` at (dpid, port) (moved from `old`, if given)."""
        self.home_seen[mac] = self.frames
        if old is not None and (old.dpid, old.port) != (dpid, port):
            self.host_ports.get((old.dpid, old.port), set()).discard(mac)

    def restored(self, dpid: int, port: int, mac: str) -> None:
        """A host from the store was placed at (dpid, port) after a restart: bound there."""
        self.host_ports.setdefault((dpid, port), set()).add(mac)

    def _alive(self, host: Host) -> bool:
        """The bound location still exists: its switch is known and its port is up."""
        sw = self.s.topo.switches.get(host.dpid)
        port = sw.ports.get(host.port) if sw is not None else None
        return port is not None and port.up

    def _claim(self, kind: str, mac: str, ip: str, dpid: int, port: int, owner: Host,
               now: float) -> Change:
        key = (mac, ip, dpid, port)
        if key not in self.claims:
            self.claims[key] = Claim(kind, mac, ip, dpid, port, owner, now, self.frames)
            self.outbox.append(ArpPacket(owner.dpid, owner.port, ARP_REQUEST, CONTROLLER_MAC,
                                         "ff:ff:ff:ff:ff:ff", CONTROLLER_MAC, "0.0.0.0",
                                         "00:00:00:00:00:00", owner.ip))
            self.counts["probes"] += 1
            self.s.record("port-security", f"{self._where(dpid, port)} claims {kind} "
                          f"{mac if kind == 'mac' else ip}, bound to {owner.mac}/{owner.ip} at "
                          f"{self._where(owner.dpid, owner.port)}: probing there")
        return Change()

    # time ----------------------------------------------------------------------
    def tick(self) -> tuple[Change, list[ArpPacket]]:
        """Decide the claims whose probe was answered or timed out; the probes to send."""
        now = self.s.clock()
        change = Change()
        for key, claim in list(self.claims.items()):
            owner = claim.owner
            bound = self.s.topo.hosts.get(owner.mac)
            still_there = bound is not None and (bound.dpid, bound.port) == (owner.dpid,
                                                                              owner.port)
            if still_there and self.home_seen.get(owner.mac, -1) > claim.frame_no:
                del self.claims[key]
                self.counts["claims_refused"] += 1
                what = claim.mac if claim.kind == "mac" else claim.ip
                change.merge(self._drop(claim.dpid, claim.port,
                                        claim.mac if claim.kind == "mac" else "",
                                        claim.ip if claim.kind == "ip" else "", now,
                                        f"{self._where(claim.dpid, claim.port)} claimed "
                                        f"{claim.kind} {what}, but its owner answered at "
                                        f"{self._where(owner.dpid, owner.port)}: dropped "
                                        f"there for {self.hold} s", None))
            elif not still_there or not self._alive(owner) \
                    or now - claim.since >= self.probe_timeout:
                del self.claims[key]
                self.counts["moves_accepted"] += 1
                self.s.record("port-security", f"{claim.kind} "
                              f"{claim.mac if claim.kind == 'mac' else claim.ip} moved to "
                              f"{self._where(claim.dpid, claim.port)}: nothing answered at "
                              f"{self._where(owner.dpid, owner.port)}")
                if still_there:
                    self.s.topo.remove_host(owner.mac)
                    change.merge(self.s.hosts.drop_host_trails(owner.mac, "host moved"))
                change.merge(self.s.hosts.learn_host(claim.dpid, claim.port, claim.mac,
                                                     claim.ip))
        for key in [k for k, d in self.drops.items() if d.until <= now]:
            del self.drops[key]
        packets, self.outbox = self.outbox, []
        return change, packets

    # drop rules ------------------------------------------------------------------
    def _dropping(self, key: tuple[int, int, str, str], now: float) -> bool:
        drop = self.drops.get(key)
        return drop is not None and drop.until > now

    def _drop(self, dpid: int, port: int, mac: str, ip: str, now: float, reason: str,
              counter: str | None) -> Change:
        """Drop rules at (dpid, port) for `mac` (any frame) or `ip` (ARP and IPv4 from it)."""
        self._ids = self._ids % 0xFFFF_FFFF + 1
        cookie = make_cookie(KIND_EDGE, self._ids)
        if mac:
            matches: list[dict[str, int | str]] = [{"in_port": port, "eth_src": mac}]
        else:
            matches = [{"in_port": port, "eth_type": ETH_TYPE_ARP, "arp_spa": ip},
                       {"in_port": port, "eth_type": ETH_TYPE_IPV4, "ipv4_src": ip}]
        flows = [replace(FlowSpec.make(dpid, TABLE_CLASSIFY, PRIO_EDGE_DROP, m, cookie=cookie),
                         hard_timeout=self.hold) for m in matches]
        self.drops[(dpid, port, mac, ip)] = EdgeDrop(flows, now + self.hold, reason, {
            "dpid": dpid_str(dpid), "port": port, "mac": mac or None, "ip": ip or None,
            "cookie": f"{cookie:#x}"})
        if counter:
            self.counts[counter] += 1
        self.s.record("port-security", reason)
        return Change([{dpid: list(flows)}])

    def lift(self, dpid: int, port: int) -> Change:
        """Delete the drop rules at (dpid, port) (its port went down)."""
        change = Change()
        for key in [k for k in self.drops if k[:2] == (dpid, port)]:
            drop = self.drops.pop(key)
            change.merge(Change([{dpid: [FlowDelete(dpid, drop.flows[0].cookie,
                                                    COOKIE_MASK_ALL)]}]))
        return change

    def _where(self, dpid: int, port: int) -> str:
        return f"{self.s.topo.switch_name(dpid)}:{port}"

    def view(self) -> dict[str, object]:
        """JSON form for GET /api/v1/edge."""
        now = self.s.clock()
        return {
            "port_security": self.enabled,
            "mac_limit": self.mac_limit,
            "probe_timeout": self.probe_timeout,
            "counts": dict(self.counts),
            "host_ports": [{"dpid": dpid_str(d), "port": p, "macs": sorted(m)}
                           for (d, p), m in sorted(self.host_ports.items()) if m],
            "claims": [c.to_dict() for c in self.claims.values()],
            "drops": [dict(d.info, reason=d.reason, remaining=round(d.until - now, 1))
                      for d in self.drops.values() if d.until > now],
            "lldp": self.discovery.view() if self.discovery is not None else None,
        }
