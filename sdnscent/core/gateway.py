"""The way out of the fabric: a gateway (router) host named by the policy.

Hosts reach addresses outside the fabric through their router: they send to the
gateway's MAC, so the pair (host, gateway) gets trails like any other pair, and
the replies come back on the (gateway, host) trail. Two things make this work:

- the gateway is learned by its own address only: a packet it forwards from
  outside carries an outside source address, which must not be taken for the
  gateway's (nor for a host that moved);
- an application whose endpoints include prefixes applies to a host's traffic to
  and from those prefixes through the gateway: its trail between the host and
  the gateway classifies on ipv4_dst (ipv4_src on the way back) in the prefixes,
  on top of the application's ports and DSCP.
"""

from __future__ import annotations

import ipaddress
import itertools

from ..appplan import PolicyView, app_matches
from ..policy import Application
from ..topology import Host
from .state import CoreState


def gateway_ip(s: CoreState) -> str | None:
    """The IPv4 address of the policy's gateway (a host name or an address), or None."""
    name = s.policy.host_traffic.gateway
    if name is None:
        return None
    spec = s.policy.nodes.get(name)
    return spec.ip if spec is not None and spec.ip else name


def gateway_host(s: CoreState) -> Host | None:
    """The gateway as a learned host, if known."""
    ip = gateway_ip(s)
    return s.topo.host_by_ip(ip) if ip else None


def forwarded(s: CoreState, mac: str, ip: str) -> bool:
    """True if a packet from `mac` with source `ip` is one the gateway forwards from
    outside (not to be learned as the gateway's address)."""
    gateway = gateway_host(s)
    return gateway is not None and gateway.mac == mac and ip not in gateway.addresses


def outside_prefixes(app: Application) -> list[str]:
    """The IPv4 prefixes of `app`'s endpoints, as "address/netmask" (how a switch
    reports a masked ipv4 match back)."""
    return [f"{p.network_address}/{p.netmask}" for p in app.endpoints.prefixes
            if isinstance(p, ipaddress.IPv4Network)]


def gateway_apps(s: CoreState, view: PolicyView, src: Host,
                 dst: Host) -> list[Application]:
    """Applications that apply to the pair only through the gateway: one end is the
    gateway, the other is not an endpoint, and the application has IPv4 prefixes."""
    gateway = gateway_host(s)
    if gateway is None or gateway.mac not in (src.mac, dst.mac):
        return []
    direct = view.apps_for(src, dst)
    return [app for app in view.policy.applications
            if app not in direct and outside_prefixes(app)]


def gateway_match(s: CoreState, app: Application, src: Host,
                  dst: Host) -> tuple[tuple[tuple[str, int | str], ...], ...] | None:
    """The classifier alternatives of `app`'s trail src -> dst through the gateway
    (its fields times its prefixes), or None if the pair is not such a pair."""
    gateway = gateway_host(s)
    if gateway is None or gateway.mac not in (src.mac, dst.mac):
        return None
    view = PolicyView(s.policy, s.topo)
    if app in view.apps_for(src, dst):
        return None
    field = "ipv4_dst" if dst.mac == gateway.mac else "ipv4_src"
    fields = app_matches(app) or ((),)
    return tuple(tuple(sorted({**dict(alt), field: prefix}.items()))
                 for alt, prefix in itertools.product(fields, outside_prefixes(app)))
