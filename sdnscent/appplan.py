"""A policy read against the live network: which application a host pair
belongs to, how its packets are classified, and the constraints its trails
must satisfy. Names in the policy (s4, h1, fw1) resolve to dpids and ports here.
"""

from __future__ import annotations

import ipaddress
import itertools

from .constraints import (
    ChainPlanner,
    NetworkFunction,
    app_constraints,
    network_functions,
    node_attrs,
    resolve_switch,
)
from .pipeline import MAX_APPS_PRIORITY, PRIO_APP_BASE
from .planner import Planner, pair_key
from .policy import Application, Policy
from .topology import Host, Topology
from .trails import Hop

IP_PROTO = {"tcp": 6, "udp": 17}

Match = tuple[tuple[str, int], ...]


class PolicyView:
    """`policy` interpreted on `topo` (cheap to build; rebuild after changes)."""

    def __init__(self, policy: Policy, topo: Topology) -> None:
        self.policy = policy
        self.topo = topo

    def network_functions(self) -> list[NetworkFunction]:
        """NFs whose both sides hang off connected switches."""
        return network_functions(self.policy, self.topo)

    def nf_ports(self) -> set[tuple[int, int]]:
        """Switch ports that face a network function (never host ports)."""
        ports = set()
        for spec in self.policy.network_functions():
            for att in spec.attach:
                dpid = resolve_switch(self.topo, att.switch)
                if dpid is not None:
                    ports.add((dpid, att.port))
        return ports

    # applications -----------------------------------------------------------
    def _endpoint_ips(self, app: Application) -> list[ipaddress.IPv4Network
                                                       | ipaddress.IPv6Network]:
        nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = list(app.endpoints.prefixes)
        for name in app.endpoints.hosts:
            spec = self.policy.nodes.get(name)
            ip = spec.ip if spec is not None and spec.ip else name
            try:
                nets.append(ipaddress.ip_network(ip))
            except ValueError:
                continue  # a host the policy cannot place: matches nothing
        return nets

    def covers(self, app: Application, ip: str) -> bool:
        """True if `ip` is one of `app`'s endpoints (an app without any covers all)."""
        e = app.endpoints
        if not e.hosts and not e.prefixes:
            return True
        if not ip:
            return False
        addr = ipaddress.ip_address(ip)
        return any(addr in net for net in self._endpoint_ips(app))

    def covers_host(self, app: Application, host: Host) -> bool:
        """True if any address of `host` (IPv4 or IPv6) is one of `app`'s endpoints."""
        e = app.endpoints
        return (not e.hosts and not e.prefixes) or any(self.covers(app, a)
                                                       for a in host.addresses)

    def apps_for(self, src: Host, dst: Host) -> list[Application]:
        """Applications whose endpoints cover traffic from `src` to `dst` (a host named
        or inside a prefix by any of its addresses: its IPv4 and its IPv6 traffic)."""
        return [app for app in self.policy.applications
                if self.covers_host(app, src) or self.covers_host(app, dst)]

    def is_forward(self, app: Application | None, src_ip: str, dst_ip: str) -> bool:
        """Whether a trail runs from the application's endpoints (its DAG direction).

        Traffic sent by the endpoints is forward; when both or neither end is
        an endpoint, the lower address is taken as the sender.
        """
        if app is not None:
            src_in, dst_in = self.covers(app, src_ip), self.covers(app, dst_ip)
            if src_in != dst_in:
                return src_in
        return ipaddress.ip_address(src_ip) < ipaddress.ip_address(dst_ip)

    def priority(self, app: Application) -> int:
        """Classifier priority: earlier applications in the file win overlaps."""
        index = self.policy.applications.index(app)
        return PRIO_APP_BASE + max(0, MAX_APPS_PRIORITY - index)


def app_matches(app: Application) -> tuple[Match, ...]:
    """Extra classifier fields of `app`, one tuple per alternative.

    Each L4 port matches both directions (destination port towards the
    service, source port on the way back); DSCP values multiply out.
    """
    ports: list[dict[str, int]] = []
    for p in app.endpoints.ports:
        proto = IP_PROTO[p.proto]
        ports.append({"ip_proto": proto, f"{p.proto}_dst": p.port})
        ports.append({"ip_proto": proto, f"{p.proto}_src": p.port})
    dscps = [{"ip_dscp": d} for d in app.endpoints.dscp]
    if not ports and not dscps:
        return ()
    combos = itertools.product(ports or [{}], dscps or [{}])
    return tuple(tuple(sorted({**a, **b}.items())) for a, b in combos)


CACHE_MAX = 256  # layered graphs kept per controller


def plan_app_hops(view: PolicyView, app: Application, src: Host, dst: Host, planner: Planner,
                  exclusions: tuple[set[tuple[int, int]], set[int]],
                  cache: dict[tuple[object, ...], ChainPlanner] | None = None
                  ) -> tuple[Hop, ...]:
    """Hops of `app`'s trail from src to dst under the policy (NoPathError with the reason).

    `exclusions` are the links and switches isolation keeps the trail away from.
    `cache` keeps one layered graph per (policy, application, topology version,
    utilisation map, exclusions): building it is most of the planning time.
    """
    policy, topo = view.policy, view.topo
    links, switches = exclusions
    key = (id(policy), app.name, topo.version, id(planner.utilisation), frozenset(links),
           frozenset(switches))
    chain_planner = cache.get(key) if cache is not None else None
    if chain_planner is None:
        nfs = network_functions(policy, topo)
        attrs = node_attrs(topo, policy, nfs)
        rules = app_constraints(app, policy, topo, attrs, utilisation=planner.utilisation,
                                isolated_links=links, isolated_switches=switches)
        chain_planner = ChainPlanner(topo, policy.chain_of(app), nfs, rules,
                                     policy.weights_of(app))
        if cache is not None:
            if len(cache) >= CACHE_MAX:
                cache.clear()
            cache[key] = chain_planner
    return chain_planner.plan(src, dst, flow_key=(*pair_key(src.mac, dst.mac), app.name))
