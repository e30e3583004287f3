"""The controller's view of the network: switches, ports, links and hosts.

A directed multigraph over datapath ids (networkx); a link is one direction of
a cable, keyed by its source port. Hosts hang off edge ports.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace

import networkx as nx

DEFAULT_LINK_CAPACITY = 10_000_000_000  # bit/s: what veth ports report
JOURNAL_MAX = 4096  # switch-graph changes remembered for link_changes_since
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class TopologyError(ValueError):
    """Bad topology input or a reference to something that does not exist."""


def dpid_str(dpid: int) -> str:
    """A datapath id as Open vSwitch prints it: 16 hex digits."""
    return f"{dpid:016x}"


def parse_dpid(text: str | int) -> int:
    """Parse a dpid given as an int, hex digits (optionally 0x or colons)."""
    if isinstance(text, int):
        value = text
    else:
        digits = text.lower().replace(":", "").removeprefix("0x")
        try:
            value = int(digits, 16)
        except ValueError:
            raise TopologyError(f"dpid {text!r} is not a hexadecimal number") from None
    if not 0 <= value < 2**64:
        raise TopologyError(f"dpid {text!r} is outside 64 bits")
    return value


def normalize_mac(mac: str) -> str:
    """Lower-case colon form of an Ethernet address; raise TopologyError if bad."""
    value = mac.lower().replace("-", ":")
    if not _MAC_RE.match(value):
        raise TopologyError(f"MAC address {mac!r} is not of the form aa:bb:cc:dd:ee:ff")
    return value


@dataclass(frozen=True)
class Port:
    """A switch port as the switch describes it."""

    number: int
    name: str = ""
    hw_addr: str = ""
    speed_bps: int = 0
    up: bool = True


@dataclass(frozen=True)
class Link:
    """One direction of an inter-switch link."""

    src: int
    src_port: int
    dst: int
    dst_port: int
    capacity: int = DEFAULT_LINK_CAPACITY
    latency: float = 0.0


@dataclass(frozen=True)
class Host:
    """An end host learned at an edge port."""

    mac: str
    ip: str  # IPv4; "" for a host seen only over IPv6
    dpid: int
    port: int
    ip6: tuple[str, ...] = ()  # IPv6 addresses it spoke from (link-local ones included)

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every address of the host, IPv4 first."""
        return ((self.ip,) if self.ip else ()) + self.ip6

    def address(self, family: int) -> str:
        """The host's address of `family` (4 or 6; for 6 a global one before a link-local
        one), or "" if it has none."""
        if family == 4:
            return self.ip
        best = sorted(self.ip6, key=lambda a: ipaddress.IPv6Address(a).is_link_local)
        return best[0] if best else ""


@dataclass
class Switch:
    """A connected switch and its ports."""

    dpid: int
    name: str = ""
    ports: dict[int, Port] = field(default_factory=dict)


class Topology:
    """Switches, directed links and hosts, with a version bumped on change.

    `graph_version` counts only the changes that can change a switch path (links
    added, removed or re-configured); its journal lets a path cache follow links
    coming and going without starting over (link_changes_since).
    """

    def __init__(self, default_capacity: int | None = None) -> None:
        self.graph = nx.MultiDiGraph()
        self.switches: dict[int, Switch] = {}
        self.hosts: dict[str, Host] = {}  # by MAC
        self._by_ip: dict[str, str] = {}
        self.default_capacity = default_capacity
        self.capacity_overrides: dict[tuple[int, int], int] = {}
        self.version = 0
        self.graph_version = 0
        # (graph_version after the change, (added?, the link) or None for any other change)
        self._journal: list[tuple[int, tuple[bool, Link] | None]] = []

    # switches and ports -------------------------------------------------
    def add_switch(self, dpid: int, ports: dict[int, Port] | None = None, name: str = "") -> Switch:
        """Add (or refresh) a switch with its ports."""
        sw = Switch(dpid, name, dict(ports or {}))
        self.switches[dpid] = sw
        self.graph.add_node(dpid)
        self.version += 1
        return sw

    def remove_switch(self, dpid: int) -> tuple[list[Link], list[Host]]:
        """Forget a switch; return the links and hosts that went with it."""
        if dpid not in self.switches:
            return [], []
        links = self._links_touching(dpid)
        for link in links:
            self._drop_link(link)
        hosts = [h for h in self.hosts.values() if h.dpid == dpid]
        for host in hosts:
            self.remove_host(host.mac)
        del self.switches[dpid]
        self.graph.remove_node(dpid)
        self.version += 1
        return links, hosts

    def set_port(self, dpid: int, port: Port) -> None:
        """Record a port's description (from port-status or port-desc)."""
        self._switch(dpid).ports[port.number] = port

    def remove_port(self, dpid: int, port: int) -> tuple[list[Link], list[Host]]:
        """A port went down or away: drop its links (both directions) and hosts."""
        out = self.link_from(dpid, port)
        links = [out] if out else []
        links += [lk for lk in self._in_links(dpid) if lk.dst_port == port]
        for link in links:
            self._drop_link(link)
        hosts = [h for h in self.hosts.values() if (h.dpid, h.port) == (dpid, port)]
        for host in hosts:
            self.remove_host(host.mac)
        if links:
            self.version += 1
        return links, hosts

    # links -------------------------------------------------------------
    def link_capacity(self, dpid: int, port: int) -> int:
        """Capacity of the link leaving (dpid, port): config, default, port speed."""
        if (dpid, port) in self.capacity_overrides:
            return self.capacity_overrides[(dpid, port)]
        if self.default_capacity:
            return self.default_capacity
        speed = self._switch(dpid).ports.get(port, Port(port)).speed_bps
        return speed or DEFAULT_LINK_CAPACITY

    def add_link(self, src: int, src_port: int, dst: int, dst_port: int) -> Link | None:
        """Record a discovered link direction; return it if new, else None."""
        self._switch(src)
        self._switch(dst)
        if src == dst:
            raise TopologyError(f"link from {dpid_str(src)} to itself")
        current = self.link_from(src, src_port)
        if current and (current.dst, current.dst_port) == (dst, dst_port):
            return None
        if current:
            self._drop_link(current)
        for host in [h for h in self.hosts.values() if (h.dpid, h.port) in
                     ((src, src_port), (dst, dst_port))]:
            self.remove_host(host.mac)
        link = Link(src, src_port, dst, dst_port, self.link_capacity(src, src_port))
        self.graph.add_edge(src, dst, key=src_port, link=link)
        self.version += 1
        self._journal_note((True, link))
        return link

    def set_link_attrs(self, src: int, src_port: int, *, capacity: int | None = None,
                       latency: float | None = None) -> Link:
        """Configure the link direction leaving (src, src_port): capacity (bit/s), latency (s)."""
        link = self.link_from(src, src_port)
        if link is None:
            raise TopologyError(f"no link leaves {dpid_str(src)} port {src_port}")
        if capacity is not None:
            if capacity <= 0:
                raise TopologyError(f"link {dpid_str(src)}:{src_port}: capacity {capacity} <= 0")
            self.capacity_overrides[(src, src_port)] = capacity
        if latency is not None and latency < 0:
            raise TopologyError(f"link {dpid_str(src)}:{src_port}: latency {latency} < 0")
        link = replace(link, capacity=capacity or link.capacity,
                       latency=link.latency if latency is None else latency)
        self.graph.add_edge(src, link.dst, key=src_port, link=link)
        self.version += 1
        self._journal_note(None)
        return link

    def remove_link(self, src: int, src_port: int) -> Link | None:
        """Forget the link direction leaving (src, src_port)."""
        link = self.link_from(src, src_port)
        if link:
            self._drop_link(link)
            self.version += 1
        return link

    def link_changes_since(self, graph_version: int) -> list[tuple[bool, Link]] | None:
        """The link directions added (True) or removed (False) since `graph_version`,
        oldest first; None if anything else changed the switch graph since then
        (a link re-configured) or it is too long ago."""
        if graph_version == self.graph_version:
            return []
        journal = self._journal
        if graph_version < 0 or not journal or journal[0][0] > graph_version + 1:
            return None
        changes: list[tuple[bool, Link]] = []
        for version, change in reversed(journal):
            if version <= graph_version:
                break
            if change is None:
                return None
            changes.append(change)
        return changes[::-1]

    def link_from(self, dpid: int, port: int) -> Link | None:
        """The link direction leaving (dpid, port), if any."""
        if dpid not in self.graph:
            return None
        data = self.graph.succ[dpid]
        for dst in data:
            found = data[dst].get(port)
            if found is not None:
                return found["link"]
        return None

    def links(self) -> list[Link]:
        """All link directions, sorted."""
        return sorted(
            (d["link"] for _, _, d in self.graph.edges(data=True)),
            key=lambda lk: (lk.src, lk.src_port),
        )

    def links_between(self, src: int, dst: int) -> list[Link]:
        """Parallel link directions from src to dst, lowest port first."""
        data = self.graph.get_edge_data(src, dst) or {}
        return [data[k]["link"] for k in sorted(data)]

    def is_link_port(self, dpid: int, port: int) -> bool:
        """True if (dpid, port) is an end of a known inter-switch link."""
        if self.link_from(dpid, port):
            return True
        return any(lk.dst_port == port for lk in self._in_links(dpid))

    def edge_ports(self, dpid: int) -> list[int]:
        """Up ports of a switch that are not inter-switch links (host-facing)."""
        sw = self._switch(dpid)
        return sorted(n for n, p in sw.ports.items()
                      if p.up and n < 0xFFFFFF00 and not self.is_link_port(dpid, n))

    # hosts -------------------------------------------------------------
    def add_host(self, mac: str, ip: str, dpid: int, port: int) -> tuple[Host, Host | None]:
        """Learn or refresh a host; return (host, previous record if it moved)."""
        mac = normalize_mac(mac)
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            raise TopologyError(f"host {mac}: {ip!r} is not an IPv4 address") from None
        self._switch(dpid)
        if self.is_link_port(dpid, port):
            raise TopologyError(f"port {port} of {dpid_str(dpid)} is an inter-switch link")
        old = self.hosts.get(mac)
        host = Host(mac, ip, dpid, port, old.ip6 if old else ())
        if old == host:
            return host, None
        if old and old.ip:
            self._by_ip.pop(old.ip, None)
        stale = self._by_ip.get(ip)
        if stale and stale != mac:
            self.remove_host(stale)
        self.hosts[mac] = host
        self._by_ip[ip] = mac
        self.version += 1
        if old is not None and not old.ip and (old.dpid, old.port) == (dpid, port):
            return host, None  # known by its IPv6 addresses there: it did not move
        return host, old

    def add_host6(self, mac: str, ip6: str, dpid: int, port: int) -> tuple[Host, Host | None]:
        """Learn or refresh a host from an IPv6 packet sent from `ip6` (the unspecified
        address :: teaches nothing); return (host, previous record if it moved)."""
        mac = normalize_mac(mac)
        try:
            addr = ipaddress.IPv6Address(ip6)
        except ValueError:
            raise TopologyError(f"host {mac}: {ip6!r} is not an IPv6 address") from None
        if addr.is_unspecified or addr.is_multicast:
            raise TopologyError(f"host {mac}: {ip6} is not a unicast source address")
        ip6 = addr.compressed
        self._switch(dpid)
        if self.is_link_port(dpid, port):
            raise TopologyError(f"port {port} of {dpid_str(dpid)} is an inter-switch link")
        old = self.hosts.get(mac)
        addrs = old.ip6 if old else ()
        if ip6 not in addrs:
            addrs = (*addrs, ip6)
        host = Host(mac, old.ip if old else "", dpid, port, addrs)
        if old == host:
            return host, None
        stale = self._by_ip.get(ip6)
        if stale and stale != mac:
            self.remove_host(stale)
        self.hosts[mac] = host
        self._by_ip[ip6] = mac
        self.version += 1
        moved = old is not None and (old.dpid, old.port) != (dpid, port)
        return host, old if moved else None

    def remove_host(self, mac: str) -> Host | None:
        """Forget a host."""
        host = self.hosts.pop(mac, None)
        for ip in host.addresses if host else ():
            if self._by_ip.get(ip) == mac:
                del self._by_ip[ip]
        return host

    def host_by_ip(self, ip: str) -> Host | None:
        """The host that owns `ip` (IPv4 or IPv6), if known."""
        mac = self._by_ip.get(ip)
        if mac is None and ":" in ip:
            try:
                mac = self._by_ip.get(ipaddress.IPv6Address(ip).compressed)
            except ValueError:
                return None
        return self.hosts.get(mac) if mac else None

    # snapshots ---------------------------------------------------------
    def switch_name(self, dpid: int) -> str:
        """The switch's bridge name if known, else its dpid string."""
        sw = self.switches.get(dpid)
        return sw.name if sw and sw.name else dpid_str(dpid)

    # internals ---------------------------------------------------------
    def _switch(self, dpid: int) -> Switch:
        try:
            return self.switches[dpid]
        except KeyError:
            raise TopologyError(f"unknown switch {dpid_str(dpid)}") from None

    def _in_links(self, dpid: int) -> list[Link]:
        if dpid not in self.graph:
            return []
        return [d["link"] for _, _, d in self.graph.in_edges(dpid, data=True)]

    def _links_touching(self, dpid: int) -> list[Link]:
        out = [d["link"] for _, _, d in self.graph.out_edges(dpid, data=True)]
        return out + self._in_links(dpid)

    def _drop_link(self, link: Link) -> None:
        if self.graph.has_edge(link.src, link.dst, key=link.src_port):
            self.graph.remove_edge(link.src, link.dst, key=link.src_port)
            self._journal_note((False, link))

    def _journal_note(self, change: tuple[bool, Link] | None) -> None:
        """Count a change of the switch graph: (added?, link), or None for any other."""
        self.graph_version += 1
        self._journal.append((self.graph_version, change))
        if len(self._journal) > JOURNAL_MAX:
            del self._journal[: len(self._journal) - JOURNAL_MAX // 2]
