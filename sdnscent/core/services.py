"""Services: virtual addresses answered by a select group over a pool."""

from __future__ import annotations

from typing import Any

from .. import compiler
from ..appplan import IP_PROTO
from ..flows import (
    COOKIE_MASK_ALL,
    ETH_TYPE_IPV4,
    KIND_SERVICE,
    FlowDelete,
    GroupDelete,
    GroupSpec,
    make_cookie,
)
from ..pipeline import SERVICE_GROUP_MAX
from ..planner import NoPathError
from ..policy import Service
from ..topology import Host
from ..trails import Trail
from .model import Change, ServiceBinding
from .state import CoreState


class ServiceManager:
    """Services; shares the core's state."""

    def __init__(self, s: CoreState) -> None:
        self.s = s

    def service_by_vip(self, ip: str) -> Service | None:
        """The service whose virtual address is `ip`, if any."""
        return next((s for s in self.s.policy.services if str(s.vip) == ip), None)

    def service_by_mac(self, mac: str) -> Service | None:
        """The service whose virtual MAC is `mac`, if any."""
        return next((s for s in self.s.policy.services if s.mac == mac), None)

    def member_ips(self, service: Service) -> dict[str, str]:
        """ip -> pool member name."""
        ips = {}
        for name in service.pool:
            spec = self.s.policy.nodes.get(name)
            if spec is not None and spec.ip:
                ips[spec.ip] = name
        return ips

    def service_fields(self, service: Service, dst: Host) -> dict[str, Any]:
        """Trail fields of a service trail: to a pool member (dst is one) or a reply."""
        if dst.ip in self.member_ips(service):
            return {"grouped": True, "rewrite": (("eth_dst", dst.mac), ("ipv4_dst", dst.ip))}
        match: tuple[tuple[tuple[str, int], ...], ...] = ()
        if service.port is not None:
            proto = service.port.proto
            match = ((("ip_proto", IP_PROTO[proto]), (f"{proto}_src", service.port.port)),)
        return {"match": match, "priority": compiler.PRIO_SERVICE,
                "rewrite": (("eth_src", service.mac), ("ipv4_src", str(service.vip)))}

    def _service_matches(self, service: Service, client: Host) -> list[dict[str, int | str]]:
        match: dict[str, int | str] = {"in_port": client.port, "eth_type": ETH_TYPE_IPV4,
                                       "eth_src": client.mac, "eth_dst": service.mac,
                                       "ipv4_dst": str(service.vip)}
        if service.port is not None:
            match["ip_proto"] = IP_PROTO[service.port.proto]
            match[f"{service.port.proto}_dst"] = service.port.port
        return [match]

    def binding_group(self, binding: ServiceBinding, modify: bool = True) -> GroupSpec | None:
        """The binding's select group as it should be now; None if unchanged."""
        members = []
        service = binding.service
        for ip, name in self.member_ips(service).items():
            member = self.s.topo.host_by_ip(ip)
            if member is None:
                continue
            there = self.s.trails.trail_for_pair(binding.client, member.mac, service.name)
            back = self.s.trails.trail_for_pair(member.mac, binding.client, service.name)
            if there is not None and back is not None and there.ingress.dpid == binding.dpid:
                members.append((there, service.weight_of(name)))
        group = compiler.service_group(binding.dpid, binding.group_id, members, modify)
        if modify and group == binding.group:
            return None
        binding.group = group
        return group

    def _member_trails(self, service: Service, client: Host) -> Change:
        """Trails client -> member and member -> client for every placeable member."""
        change = Change()
        for ip, name in self.member_ips(service).items():
            member = self.s.topo.host_by_ip(ip)
            if member is None or member.mac == client.mac:
                continue
            made: list[Trail] = []
            try:
                for src, dst in ((client.mac, member.mac), (member.mac, client.mac)):
                    trail, extra = self.s.trails.ensure_trail(src, dst, service.name)
                    made.append(trail)
                    change.merge(extra)
            except NoPathError:
                self.s.record("service", f"{service.name}: pool member {name} left out for "
                            f"client {client.ip}: no trail")
                for trail in made:
                    change.merge(self.s.trails.remove_trail(trail.id,
                                                            "its pool member is unreachable"))
        return change

    def ensure_service(self, client_mac: str, name: str) -> Change:
        """Client `client_mac` uses service `name`: trails to the pool, select group, classifier.

        The group holds one bucket per pool member that is known and reachable
        both ways; members that appear later are added with a group modify.
        """
        service = self.s.policy.service(name)
        client = self.s.topo.hosts.get(client_mac)
        if service is None or client is None:
            return Change()
        binding = self.s.bindings.get((name, client_mac))
        if binding is not None:
            return self.refresh_binding(binding)
        if not self.s.group_free and self.s.group_next > SERVICE_GROUP_MAX:
            self.s.record("service", f"{name}: client {client.ip} not bound: all "
                          f"{SERVICE_GROUP_MAX} service group ids are in use")
            return Change()
        change = self._member_trails(service, client)
        if self.s.group_free:
            group_id = self.s.group_free.popleft()
        else:
            group_id, self.s.group_next = self.s.group_next, self.s.group_next + 1
        self.s.binding_ids += 1
        cookie = make_cookie(KIND_SERVICE, self.s.binding_ids)
        flows = compiler.service_classifiers(client.dpid, self._service_matches(service, client),
                                             group_id, cookie)
        binding = ServiceBinding(service, client.mac, client.dpid, group_id, cookie, flows,
                                 GroupSpec(client.dpid, group_id, "select"))
        self.s.bindings[(name, client.mac)] = binding
        group = self.binding_group(binding, modify=False)
        assert group is not None
        self.s.record("service", f"{name}: client {client.ip} -> group {group_id} on "
                    f"{self.s.topo.switch_name(client.dpid)} with {len(group.buckets)} of "
                    f"{len(service.pool)} pool members")
        return change.merge(Change([{}, {client.dpid: [group, *flows]}]))

    def refresh_binding(self, binding: ServiceBinding) -> Change:
        """Add pool members that became placeable; modify the group if it changed."""
        client = self.s.topo.hosts.get(binding.client)
        if client is None or self.s.bindings.get((binding.service.name, binding.client)) \
                is not binding:
            return Change()
        change = self._member_trails(binding.service, client)
        group = self.binding_group(binding)
        if group is not None and binding.dpid in self.s.topo.switches:
            change.merge(Change([{}, {binding.dpid: [group]}]))
        return change

    def remove_binding(self, binding: ServiceBinding, reason: str) -> Change:
        """Drop a client's classifier and group, then its service trails."""
        name = binding.service.name
        if self.s.bindings.get((name, binding.client)) is not binding:
            return Change()
        del self.s.bindings[(name, binding.client)]
        self.s.group_free.append(binding.group_id)
        self.s.record("service", f"{name}: client {binding.client} removed: {reason}")
        change = Change()
        if binding.dpid in self.s.topo.switches:
            change.merge(Change([{binding.dpid: [
                FlowDelete(binding.dpid, binding.cookie, COOKIE_MASK_ALL),
                GroupDelete(binding.dpid, binding.group_id)]}]))
        later = Change()
        for (app, src, dst), trail_id in list(self.s.by_pair.items()):
            if app == name and binding.client in (src, dst):
                later.merge(self.s.trails.remove_trail(trail_id, reason))
        return change.merge(Change([{}, *later.steps], later.done))
