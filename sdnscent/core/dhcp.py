"""DHCPv4 without flooding: the controller relays at layer 2.

Every DHCP packet reaches the controller (pipeline.PRIO_DHCP). A client's
packet (to UDP port 67) is sent out of the port of the DHCP server the policy
names (``host_traffic.dhcp_server``) and nowhere else; the client's port is
remembered by its hardware address (chaddr). The server's answer (to UDP port
68) is sent out of that client's port only, and only when it comes from the
server's own port: another host answering as a DHCP server is dropped and
counted. The frames are not changed, so the server sees the client's request
as if on one wire with it. A server not known yet is ARP-probed (the client
retries). Without a server in the policy, DHCP is dropped and counted.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

from ..topology import Host
from .model import ArpPacket, Change
from .state import CoreState

LOG = logging.getLogger("sdnscent.controller")

CLIENTS_MAX = 4096  # clients whose port is remembered at once (the oldest go first)
CLIENT_TTL = 60.0  # s a client's port is remembered after its last request


@dataclass(frozen=True)
class Relay:
    """Send the packet-in's frame, unchanged, out of (dpid, port)."""

    dpid: int
    port: int


@dataclass
class DhcpResult:
    """What to do with one DHCP packet-in."""

    relays: list[Relay] = field(default_factory=list)
    packets: list[ArpPacket] = field(default_factory=list)  # probes for the server
    change: Change = field(default_factory=Change)
    outcome: str = ""  # dhcp-request, dhcp-reply, dhcp-no-server, dhcp-rogue, ...


class DhcpRelay:
    """The layer-2 DHCP relay; shares the core's state."""

    def __init__(self, s: CoreState) -> None:
        self.s = s
        self.clients: OrderedDict[str, tuple[int, int, float]] = OrderedDict()

    def server_ip(self) -> str | None:
        """The IPv4 address of the policy's DHCP server (a host name or an address)."""
        name = self.s.policy.host_traffic.dhcp_server
        if name is None:
            return None
        spec = self.s.policy.nodes.get(name)
        return spec.ip if spec is not None and spec.ip else name

    def server(self) -> Host | None:
        """The DHCP server as a learned host, if it is known."""
        ip = self.server_ip()
        return self.s.topo.host_by_ip(ip) if ip else None

    def handle(self, dpid: int, port: int, eth_src: str, ip_src: str, to_server: bool,
               chaddr: str) -> DhcpResult:
        """A DHCP packet from (dpid, port): where to relay it."""
        result = DhcpResult()
        if self.s.topo.is_link_port(dpid, port) or (dpid, port) in self.s.nf_ports():
            result.outcome = "dhcp-ignored"
            return result
        now = self.s.clock()
        server_ip = self.server_ip()
        if server_ip is None:
            result.outcome = "dhcp-no-server"
            return result
        if to_server:
            self._remember(chaddr.lower(), dpid, port, now)
            server = self.server()
            if server is None:
                result.packets = self.s.hosts.probe(server_ip)
                result.outcome = "dhcp-server-unknown"
                return result
            if (server.dpid, server.port) != (dpid, port):
                result.relays.append(Relay(server.dpid, server.port))
            result.outcome = "dhcp-request"
            return result
        server = self.server()
        if server is None and _is_address(ip_src) and ip_src == server_ip:
            result.change = self.s.hosts.learn_host(dpid, port, eth_src, ip_src)
            server = self.server()
        if server is None or (server.dpid, server.port) != (dpid, port) \
                or server.mac != eth_src.lower():
            self.s.record("dhcp", f"DHCP answer from {eth_src} at "
                          f"{self.s.topo.switch_name(dpid)}:{port}, not from the DHCP server "
                          f"{server_ip}: dropped")
            result.outcome = "dhcp-rogue"
            return result
        where = self._client(chaddr.lower(), now)
        if where is None:
            result.outcome = "dhcp-client-unknown"
            return result
        result.relays.append(Relay(*where))
        result.outcome = "dhcp-reply"
        return result

    def _remember(self, mac: str, dpid: int, port: int, now: float) -> None:
        self.clients.pop(mac, None)
        self.clients[mac] = (dpid, port, now)
        while len(self.clients) > CLIENTS_MAX:
            self.clients.popitem(last=False)

    def _client(self, mac: str, now: float) -> tuple[int, int] | None:
        """Where the client `mac` is: where it last asked, else where it was learned."""
        known = self.clients.get(mac)
        if known is not None and now - known[2] < CLIENT_TTL:
            return known[0], known[1]
        host = self.s.topo.hosts.get(mac)
        return (host.dpid, host.port) if host is not None else None


def _is_address(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True
