"""Swapping the policy and re-planning every trail under it."""

from __future__ import annotations

from typing import Any

from .. import dag
from ..appplan import PolicyView
from ..constraints import check_network_functions
from ..policy import DEFAULT_APP, Policy
from ..trails import IPV6_KEY
from .model import Change
from .state import CoreState


class PolicyManager:
    """Swapping the policy and re-planning every trail under it.; shares the core's state."""

    def __init__(self, s: CoreState) -> None:
        self.s = s

    def check_policy(self, policy: Policy) -> set[tuple[int, int]]:
        """Raise TopologyError or ValueError if `policy` does not fit the network as it is
        (an NF on an inter-switch port, say); else return the ports that face NFs."""
        view = PolicyView(policy, self.s.topo)
        nf_ports = view.nf_ports()
        check_network_functions(self.s.topo, view.network_functions())
        return nf_ports

    def set_policy(self, policy: Policy) -> tuple[Change, dict[str, int]]:
        """Swap the policy atomically and re-plan every trail under it.

        The caller validated `policy`. A policy that does not fit the network
        (an NF attached to an inter-switch port, say) raises TopologyError
        before anything changes. Trails that can no longer be placed are
        removed and their traffic blocked.
        """
        view = PolicyView(policy, self.s.topo)
        nf_ports = self.check_policy(policy)  # may raise: nothing is swapped yet
        trusted_before = self.s.tagger_ports()
        self.s.policy = policy
        self.s.chain_cache.clear()
        change = Change()
        rebind = []
        for key, binding in list(self.s.bindings.items()):
            if policy.service(binding.service.name) != binding.service:
                change.merge(self.s.services.remove_binding(binding, "the service changed"))
                if policy.service(binding.service.name) is not None:
                    rebind.append(key)
        for host in [h for h in self.s.topo.hosts.values() if (h.dpid, h.port) in nf_ports]:
            self.s.topo.remove_host(host.mac)  # that port is a network function now
            change.merge(self.s.hosts.drop_host_trails(host.mac, "its port is a network function"))
        self.s.retired_blocks.update(self.s.blocks)  # _block takes back what is still wanted
        self.s.blocks.clear()
        before = {t.id: t.version for t in self.s.store.all()}
        for trail_id in before:
            trail = self.s.store.get(trail_id)
            if trail is not None and (trail.src_mac not in self.s.topo.hosts
                                      or trail.dst_mac not in self.s.topo.hosts):
                continue  # kept from before a restart: its hosts have not spoken yet
            profile = policy.app(trail.app) if trail is not None else None
            if profile is not None and not self.s.trails.covers(view, profile, trail):
                change.merge(self.s.trails.remove_trail(
                    trail_id, f"application {trail.app} no longer covers this pair"))
                continue
            change.merge(self.s.trails.replan(trail_id, "policy changed"))
        pairs = sorted({(s, d, 4 if app == DEFAULT_APP else 6) for app, s, d in self.s.by_pair
                        if app in (DEFAULT_APP, DEFAULT_APP + IPV6_KEY)})
        for src, dst, family in pairs:
            if src in self.s.topo.hosts and dst in self.s.topo.hosts:
                change.merge(self.s.trails.ensure_pair(src, dst, family)[1])
        for name, client in rebind:
            if client in self.s.topo.hosts:
                change.merge(self.s.services.ensure_service(client, name))
        for binding in list(self.s.bindings.values()):
            change.merge(self.s.services.refresh_binding(binding))
        change.merge(self.s.multicast.refresh())
        change.merge(self.s.trails.retire_blocks())
        change.merge(self.s.hosts.retrust(trusted_before))
        change.steps.extend(self.s.protection.rearm().steps)  # detours under the new rules
        after = {t.id: t.version for t in self.s.store.all()}
        summary = {
            "replanned": sum(1 for i in before if i in after and after[i] != before[i]),
            "removed": sum(1 for i in before if i not in after),
            "added": sum(1 for i in after if i not in before),
            "blocked": len(self.s.blocks),
        }
        self.s.record("policy", f"policy from {policy.source} applied: "
                    + ", ".join(f"{k} {v}" for k, v in summary.items()))
        return change, summary

    def app_dag(self, app: str, reverse: bool = False) -> Any:
        """The union of `app`'s trails in one direction as a DAG (networkx DiGraph).

        Forward trails carry what the application's endpoints send (see
        PolicyView.is_forward); `reverse` gives the replies. Raises
        dag.DagCycleError if the union is not acyclic.
        """
        view = PolicyView(self.s.policy, self.s.topo)
        profile = self.s.policy.app(app)
        trails = [t for t in self.s.live(self.s.index.of_app(app))
                  if view.is_forward(profile, t.src_ip, t.dst_ip) != reverse]
        return dag.app_dag(trails, self.s.topo, view.network_functions(), self.s.policy)
