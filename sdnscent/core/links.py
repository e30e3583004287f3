"""Switches, ports and links: what the network is, and each switch's audit."""

from __future__ import annotations

from collections.abc import Iterable

from .. import audit, compiler
from ..flows import (
    COOKIE_MASK_OURS,
    KIND_BLOCK,
    PIPELINE_COOKIE,
    FlowDelete,
    FlowSpec,
    Group,
    GroupDelete,
)
from ..topology import Host, Link, Port, dpid_str
from ..trails import Trail
from .model import Change
from .state import CoreState


class LinkManager:
    """Switches, ports and links; shares the core's state."""

    def __init__(self, s: CoreState) -> None:
        self.s = s

    def switch_enter(self, dpid: int, ports: Iterable[Port], name: str = "",
                     installed: list[FlowSpec] | None = None) -> Change:
        """A switch (re)connected: make its table what it should hold.

        With `installed` (our flows read back from the switch) the table is
        audited: correct entries stay untouched, missing ones are installed,
        unknown ones deleted (sdnscent.audit). Without it, our old flows are
        wiped and everything is installed again. A switch that reconnects
        without having left keeps its links, so it gets its link-port flows
        and the entries of trails crossing it back.
        """
        known = dpid in self.s.topo.switches
        self.s.away.pop(dpid, None)
        self.s.planner.avoid_switches = frozenset(self.s.away)
        self.s.topo.add_switch(dpid, {p.number: p for p in ports}, name)
        self.s.record("switch", f"switch {name or dpid_str(dpid)} "
                      + ("reconnected" if known else "connected"))
        self.s.hosts.restore_at(dpid)  # after a restart: hosts known before it
        link_ports = [lk.dst_port for lk in self.s.topo.links() if lk.dst == dpid]
        trails = self.s.live(self.s.index.on_switch(dpid))
        if installed is not None:
            return self._audit(dpid, link_ports, trails, installed)
        wipe = FlowDelete(dpid, PIPELINE_COOKIE & COOKIE_MASK_OURS, COOKIE_MASK_OURS)
        first: list[compiler.Op] = [wipe]
        protection = self.s.protection.groups(dpid)  # fast-failover groups of protected hops
        if self.s.policy.services or self.s.bindings or self.s.legs \
                or self.s.protection.mode != "none":
            first.append(GroupDelete(dpid))  # groups: services, multipath, protection
        bindings = [b for b in self.s.bindings.values() if b.dpid == dpid]
        groups: list[compiler.Op] = [b.group for b in bindings] + protection
        groups += self._ingress_meters(dpid, trails) + self.s.multipath.multipath_ingress(dpid)
        flows = self.s.protection.expected(dpid, compiler.switch_flows(dpid, link_ports, trails),
                                           trails)
        flows += self.s.trusted_flows(dpid, trails) + self.s.edge.flows(dpid)
        return Change([{dpid: first}, {dpid: groups + flows + [f for b in bindings
                                                              for f in b.flows]}])

    def _expected(self, dpid: int, link_ports: list[int], trails: list[Trail],
                  multipath: list[compiler.Op], installed: list[FlowSpec] | None = None
                  ) -> list[FlowSpec]:
        """Every flow switch `dpid` should hold now (`installed`: its groups stay, so
        protection from before a restart is adopted, see ProtectionManager.expected)."""
        bindings = [b for b in self.s.bindings.values() if b.dpid == dpid]
        expected = self.s.protection.expected(
            dpid, compiler.switch_flows(dpid, link_ports, trails), trails, installed)
        expected += [f for flows in self.s.blocks.values() for f in flows if f.dpid == dpid]
        expected += [f for b in bindings for f in b.flows]
        expected += self.s.trusted_flows(dpid, trails) + self.s.edge.flows(dpid)
        expected += [op for op in multipath if isinstance(op, FlowSpec)]
        return expected

    def audit_report(self, dpid: int, installed: list[FlowSpec]) -> dict[str, int]:
        """What an audit of switch `dpid` would fix now, changing nothing (GET /audit).

        `missing`: expected flows not installed; `wrong`: installed under the
        same key with other contents; `unknown`: ours but not expected (drop
        rules of blocked applications are not counted: the audit keeps them).
        """
        if dpid not in self.s.topo.switches:
            return {"missing": 0, "wrong": 0, "unknown": 0, "correct": 0}
        link_ports = [lk.dst_port for lk in self.s.topo.links() if lk.dst == dpid]
        trails = self.s.live(self.s.index.on_switch(dpid))
        multipath = self.s.multipath.multipath_ingress(dpid)
        keeps_groups = not (self.s.policy.services or self.s.bindings or multipath
                            or self.s.protection.groups(dpid))
        expected = self._expected(dpid, link_ports, trails, multipath,
                                  installed if keeps_groups else None)
        result = audit.diff_flows(expected, installed,
                                  defer=lambda f: (f.cookie >> 32) & 0xFFFF == KIND_BLOCK)
        keys = {f.key for f in installed}
        missing = sum(1 for f in result.adds if f.key not in keys)
        return {"missing": missing, "wrong": len(result.adds) - missing,
                "unknown": len(result.deletes), "correct": len(result.kept)}

    def _audit(self, dpid: int, link_ports: list[int], trails: list[Trail],
               installed: list[FlowSpec]) -> Change:
        """The audit of a (re)connected switch as a Change (see switch_enter)."""
        bindings = [b for b in self.s.bindings.values() if b.dpid == dpid]
        multipath = self.s.multipath.multipath_ingress(dpid)
        protection = self.s.protection.groups(dpid)
        # Groups are not audited: set again where services or multipath hold some (the
        # flows into them too). Protection groups are kept when every flow into them
        # is still there (a switch refuses a flow into a missing group and a group
        # delete takes its flows along), else set again; with none of ours yet, the
        # protection found is adopted (after a restart).
        wipe_groups = bool(self.s.policy.services or bindings or multipath)
        expected = self._expected(dpid, link_ports, trails, multipath,
                                  None if wipe_groups or protection else installed)
        if protection and not wipe_groups:
            present = {(f.key, f.actions) for f in installed}
            wipe_groups = any((f.key, f.actions) not in present for f in expected
                              if any(isinstance(a, Group) for a in f.actions))
        now = self.s.clock()

        def keep_for_now(flow: FlowSpec) -> bool:
            """A link-port flow LLDP has not confirmed yet: keep it for a while.

            A drop rule of a blocked application is kept too (fail closed): it
            is not persisted, and without it the application's packets would
            ride the default trail until the pair is evaluated again; a trail
            installed later under the same match replaces it in place.
            """
            if (flow.cookie >> 32) & 0xFFFF == KIND_BLOCK:
                return True
            port = flow.match_dict.get("in_port")
            if not isinstance(port, int) or flow != compiler.link_port_flow(dpid, port):
                return False
            sw_port = self.s.topo.switches[dpid].ports.get(port)
            if sw_port is None or not sw_port.up:
                return False
            if any(h.dpid == dpid and h.port == port for h in self.s.topo.hosts.values()):
                return False
            self.s.pending_link_ports.setdefault((dpid, port), now)
            return True

        result = audit.diff_flows(expected, installed, defer=keep_for_now)
        self.s.record("audit", f"switch {self.s.topo.switch_name(dpid)}: {result.summary()}")
        steps = audit.audit_steps(dpid, result)
        meters = self._ingress_meters(dpid, trails)
        if meters and steps:
            steps[0] = {dpid: meters + steps[0].get(dpid, [])}
        elif meters:
            steps = [{dpid: meters}]
        if wipe_groups:  # a group delete takes the flows into the groups along
            into = [f for f in expected if any(isinstance(a, Group) for a in f.actions)
                    and f not in [g for b in bindings for g in b.flows]
                    and f not in multipath] if protection else []
            steps = [{dpid: [GroupDelete(dpid)]},
                     {dpid: [b.group for b in bindings] + protection
                      + [f for b in bindings for f in b.flows] + multipath + into}] + steps
        return Change(steps)

    @staticmethod
    def _ingress_meters(dpid: int, trails: list[Trail]) -> list[compiler.Op]:
        """The meters of capped trails starting at `dpid`, made right whether they exist.

        Meters are not read back: each is sent as an add and as a modify; the
        switch refuses one of the two (harmlessly) and the rate ends up right.
        """
        ops: list[compiler.Op] = []
        for trail in trails:
            if trail.ingress.dpid == dpid:
                ops += compiler.meter_ops(trail) + compiler.meter_ops(trail, modify=True)
        return ops

    def switch_leave(self, dpid: int) -> Change:
        """A switch disconnected: forget it and move trails off it.

        With a switch grace period the switch is only marked away (it keeps
        forwarding on its flows); expire_links forgets it if it stays away.
        """
        if dpid not in self.s.topo.switches:
            return Change()
        if self.s.switch_grace > 0:
            self.s.away.setdefault(dpid, self.s.clock())
            self.s.planner.avoid_switches = frozenset(self.s.away)
            name = self.s.topo.switch_name(dpid)
            self.s.record("switch", f"switch {name} disconnected; its flows stay, forgotten "
                          f"after {self.s.switch_grace:.0f} s away; trails through it move "
                          "where another path exists")
            return self._leave_transit(dpid, f"switch {name} disconnected")
        return self._forget_switch(dpid)

    def _leave_transit(self, dpid: int, reason: str) -> Change:
        """Move the trails that only cross `dpid` elsewhere, make-before-break.

        A switch without its controller may have lost its table (a restart)
        and cannot be repaired until it returns; trails that start or end
        there stay. Where no other path exists the trail stays too (its
        planned path is unchanged, so nothing is sent).
        """
        change = Change()
        for trail in self.s.live(self.s.index.on_switch(dpid)):
            if dpid in (trail.ingress.dpid, trail.egress.dpid) \
                    or trail.id not in self.s.index:
                continue
            change.merge(self.s.trails.replan(trail.id, reason))
        return change

    def _forget_switch(self, dpid: int) -> Change:
        self.s.away.pop(dpid, None)
        self.s.planner.avoid_switches = frozenset(self.s.away)
        for key in [k for k in self.s.pending_link_ports if k[0] == dpid]:
            del self.s.pending_link_ports[key]
        name = self.s.topo.switch_name(dpid)
        links, hosts = self.s.topo.remove_switch(dpid)
        self.s.edge.switch_gone(dpid)
        self.s.record("switch", f"switch {name} disconnected; {len(links)} link directions lost")
        return self._after_loss(links, hosts, gone_switch=dpid)

    def port_status(self, dpid: int, port: Port) -> Change:
        """A port changed; a port that is down loses its links and hosts."""
        if dpid not in self.s.topo.switches:
            return Change()
        self.s.topo.set_port(dpid, port)
        if port.up:
            return Change()
        self.s.edge.port_down(dpid, port.number)
        links, hosts = self.s.topo.remove_port(dpid, port.number)
        if links:
            self.s.record("link", f"port {port.number} of {self.s.topo.switch_name(dpid)} down: "
                        + ", ".join(self.s.link_name(lk) for lk in links) + " removed")
        return self._after_loss(links, hosts)

    def link_seen(self, src: int, src_port: int, dst: int, dst_port: int) -> Change:
        """LLDP from (src, src_port) arrived at (dst, dst_port)."""
        if src not in self.s.topo.switches or dst not in self.s.topo.switches:
            return Change()
        if self.s.edge.enabled and (self.s.edge.faces_hosts(src, src_port)
                                    or self.s.edge.faces_hosts(dst, dst_port)):
            return Change()  # hosts were seen there: LLDP alone does not make it a link
        self.s.link_seen_at[(src, src_port)] = self.s.clock()
        confirmed = self.s.pending_link_ports.pop((dst, dst_port), None) is not None
        port = self.s.topo.switches[dst].ports.get(dst_port)
        if port is not None and not port.up:
            return Change()
        hosts_before = set(self.s.topo.hosts)
        replaced = self.s.topo.link_from(src, src_port)
        link = self.s.topo.add_link(src, src_port, dst, dst_port)
        change = Change()
        if link is None:
            return change
        self.s.record("link", f"link {self.s.link_name(link)} discovered")
        if not confirmed:  # an audited flow for this port is installed already
            change.merge(Change([{dst: [compiler.link_port_flow(dst, dst_port)]}]))
        if replaced is not None:  # the port was recabled: trails on the old link move
            self.s.record("link", f"link {self.s.link_name(replaced)} replaced")
            change.merge(self._after_loss([replaced], []))
        change.merge(self.s.trails.retry_blocked())
        for mac in hosts_before - set(self.s.topo.hosts):
            change.merge(self.s.hosts.drop_host_trails(mac, "host was on an inter-switch port"))
        for binding in list(self.s.bindings.values()):  # a pool member may be reachable now
            change.merge(self.s.services.refresh_binding(binding))
        for head in list(self.s.legs):  # a multipath trail short of legs may get them back
            legs = self.s.multipath.leg_trails(head)
            profile = self.s.policy.app(legs[0].app) if legs else None
            if profile is not None and len(legs) < profile.requirements.paths:
                change.merge(self.s.trails.replan(head, "a link appeared", keep_intact=True))
        change.steps.extend(self.s.protection.rearm().steps)  # hops a new link can protect
        return change

    def expire_links(self, timeout: float) -> Change:
        """Remove links whose LLDP has not been seen for `timeout` seconds.

        Also forgets switches away longer than the switch grace period and
        deletes audited link-port flows that LLDP did not confirm in time.
        Links of a switch that is away do not expire while it may come back.
        """
        now = self.s.clock()
        change = Change()
        for dpid, since in list(self.s.away.items()):
            if now - since > self.s.switch_grace:
                change.merge(self._forget_switch(dpid))
        for (dpid, port), since in list(self.s.pending_link_ports.items()):
            if now - since > self.s.link_port_grace:
                del self.s.pending_link_ports[(dpid, port)]
                if dpid in self.s.topo.switches and not self.s.topo.is_link_port(dpid, port):
                    self.s.record("audit", f"no link found on {self.s.topo.switch_name(dpid)}:"
                                f"{port} within {self.s.link_port_grace:.0f} s: its link-port "
                                "flow is deleted")
                    change.merge(Change([{dpid: [compiler.link_port_delete(dpid, port)]}]))
        lost = []
        for link in self.s.topo.links():
            if link.src in self.s.away or link.dst in self.s.away:
                self.s.link_seen_at[(link.src, link.src_port)] = now
                continue
            seen = self.s.link_seen_at.get((link.src, link.src_port), now)
            if now - seen > timeout:
                lost.append(self.s.topo.remove_link(link.src, link.src_port))
        lost = [lk for lk in lost if lk]
        for link in lost:
            self.s.link_seen_at.pop((link.src, link.src_port), None)
            self.s.record("link", f"link {self.s.link_name(link)} timed out")
        return change.merge(self._after_loss(lost, []))

    def _after_loss(self, links: list[Link], hosts: list[Host],
                    gone_switch: int | None = None) -> Change:
        change = Change()
        for link in links:
            if link.dst in self.s.topo.switches:
                change.merge(Change([{link.dst: [compiler.link_port_delete(link.dst,
                                                                           link.dst_port)]}]))
        for host in hosts:
            change.merge(self.s.hosts.drop_host_trails(host.mac, f"host {host.ip} went away"))
        affected = self.s.index.on_links((lk.src, lk.src_port) for lk in links)
        if gone_switch is not None:
            affected |= self.s.index.on_switch(gone_switch)
        for trail in self.s.live(affected):
            if trail.id in self.s.index:  # not removed by an earlier re-plan of this loss
                change.merge(self.s.trails.replan(trail.id, "its path lost a link",
                                                  keep_intact=True))
        if links or gone_switch is not None:  # detours over what was lost: re-armed, after
            change.steps.extend(self.s.protection.rearm().steps)
        return change
