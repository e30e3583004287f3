"""Read-only JSON views of the core's state for the REST API."""

from __future__ import annotations

import ipaddress

from .. import bundles
from ..topology import dpid_str
from ..trails import EXTRA_PARENT, Trail
from .model import is_pinned
from .state import CoreState


def nodes_view(s: CoreState) -> dict[str, object]:
    """JSON form of host load (GET /api/v1/nodes)."""
    return {"nodes": [
        {"node": n.node, "time": n.time, "cpu": round(n.cpu, 4), "memory": round(n.memory, 4),
         "cpu_limit": n.cpu_limit, "mem_limit": n.mem_limit, "mem_used": n.mem_used,
         "cpu_cores": n.cpu_cores} for n in s.node_loads.values()]}

def pair_ranking(s: CoreState, app: str) -> list[dict[str, object]]:
    """`app`'s host pairs by use and criticality (GET /apps/<name>/pairs)."""
    ranked = []
    for (_, src, dst), stats in s.patterns.ranking(app):
        hosts = s.topo.hosts
        ranked.append({"src": hosts[src].ip if src in hosts else src,
                       "dst": hosts[dst].ip if dst in hosts else dst,
                       "score": round(stats.score(), 3), "rate": round(stats.rate, 3),
                       "requests": round(stats.requests, 3), "packets": stats.packets})
    return ranked

def services_view(s: CoreState) -> list[dict[str, object]]:
    """Clients of each service and the pool members in their group."""
    out = []
    for (name, client), binding in sorted(s.bindings.items()):
        host = s.topo.hosts.get(client)
        members = []
        for bucket in binding.group.buckets:
            dst = next((a.value for a in bucket.actions
                        if getattr(a, "field", None) == "ipv4_dst"), None)
            members.append({"ip": dst, "weight": bucket.weight})
        out.append({"service": name, "client": host.ip if host else client,
                    "dpid": dpid_str(binding.dpid), "group_id": binding.group_id,
                    "members": members})
    return out

def topology_view(s: CoreState) -> dict[str, object]:
    """JSON form of the topology (GET /api/v1/topology), with measured link load."""
    topo = s.topo
    loads = {lk.key: lk for lk in s.telemetry.link_loads(topo, s.clock())}
    return {
        "switches": [
            {"dpid": dpid_str(sw.dpid), "name": topo.switch_name(sw.dpid),
             "ports": [{"port": p.number, "name": p.name, "up": p.up,
                        "speed_bps": p.speed_bps} for _, p in sorted(sw.ports.items())]}
            for _, sw in sorted(topo.switches.items())
        ],
        "links": [
            {"src": dpid_str(lk.src), "src_port": lk.src_port, "dst": dpid_str(lk.dst),
             "dst_port": lk.dst_port, "capacity": topo.link_capacity(lk.src, lk.src_port),
             "load": round(loads[(lk.src, lk.src_port)].bps)
             if (lk.src, lk.src_port) in loads else 0,
             "utilization": round(loads[(lk.src, lk.src_port)].utilisation, 4)
             if (lk.src, lk.src_port) in loads else 0.0,
             "latency": lk.latency}
            for lk in topo.links()
        ],
        "hosts": [
            {"mac": h.mac, "ip": h.ip, "ipv6": list(h.ip6), "dpid": dpid_str(h.dpid),
             "port": h.port}
            for h in sorted(topo.hosts.values(), key=lambda h: (
                not h.ip, ipaddress.ip_address(h.ip or h.address(6))))
        ],
    }

def trail_view(s: CoreState, trail: Trail) -> dict[str, object]:
    """JSON form of one trail, with switch names beside dpids."""
    data = trail.to_dict()
    data["pinned"] = is_pinned(trail)
    failure = s.retries.view(trail.id)
    if failure is not None:
        data["failure"] = failure
    usage = s.telemetry.trail_usage(trail.id, s.clock())
    data["rate_bps"] = round(usage.bps) if usage is not None else 0  # smoothed, ingress
    for hop, raw in zip(data["hops"], trail.hops, strict=False):  # type: ignore[arg-type]
        hop["switch"] = s.topo.switch_name(raw.dpid)
    protection = s.protection.view(trail.id)
    if protection is not None:  # per hop on a link: node, link or none (with the reason)
        data["protection"] = protection
    if trail.counted:  # an elephant: its ingress counts its TCP connections
        data["counted"] = True
    if trail.connection is not None:  # one TCP connection split off an elephant trail
        sport, dport = trail.connection
        data["connection"] = {"tcp_src": sport, "tcp_dst": dport}
        if trail.extra.get(EXTRA_PARENT, "").isdigit():
            data["connection"]["split_from"] = int(trail.extra[EXTRA_PARENT])
    head = bundles.head_of(trail)
    legs = s.legs.get(head, []) if head is not None else []
    if head is not None and trail.id in legs:
        data["multipath"] = {"trail": head, "leg": legs.index(trail.id), "legs": len(legs),
                             "weight": round(bundles.weight_of(trail), 6)}
    return data
