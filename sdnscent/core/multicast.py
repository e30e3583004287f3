"""Named multicast groups delivered along controller-computed trees.

The policy names a group (``host_traffic.groups``: an IPv4 multicast address and
its member hosts). For each known member that may send, the controller builds a
source tree: the shortest paths from the sender's switch to the switches of the
other known members (one breadth-first search, so the paths share their
prefixes and form a tree), labelled with a label of its own. The sender's edge
switch matches the group address from the sender (``PRIO_GROUP``) into an
OpenFlow "all" group whose buckets push the label towards each child link and
deliver unlabelled to local members; every other switch of the tree matches the
label in table 1 into an "all" group that copies it on to its children and pops
it towards its members. Members get the traffic, nobody else does; anything
sent to a group address by a non-member, or to an unnamed group, is dropped at
the edge like other multicast.

Trees are recomputed when a host is learned or moves and when the policy
changes; they are not re-planned on link failures and not restored by a
switch's audit (docs/host-traffic.rst, limits).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

import networkx as nx

from ..compiler import group_ops, label_match
from ..flows import (
    COOKIE_MASK_ALL,
    ETH_TYPE_IPV4,
    Bucket,
    FlowDelete,
    FlowSpec,
    Group,
    GroupDelete,
    GroupSpec,
    Output,
    PopMpls,
    PushMpls,
    SetField,
)
from ..hosttraffic import MulticastGroup
from ..pipeline import (
    KIND_MCAST,
    PRIO_GROUP,
    PRIO_TRAIL,
    SERVICE_GROUP_MAX,
    TABLE_CLASSIFY,
    TABLE_FORWARD,
    make_cookie,
)
from ..topology import Host
from .model import Change
from .state import CoreState

LOG = logging.getLogger("sdnscent.controller")


@dataclass(frozen=True)
class Tree:
    """One sender's tree of one group, as installed."""

    group: str
    address: str
    sender: str  # MAC
    ingress: tuple[int, int]  # the sender's (dpid, port)
    label: int
    cookie: int
    children: tuple[tuple[int, tuple[int, ...]], ...]  # dpid -> link ports towards members
    members: tuple[tuple[int, tuple[int, ...]], ...]  # dpid -> member ports
    group_ids: tuple[tuple[int, int], ...]  # dpid -> its "all" group

    @property
    def shape(self) -> tuple[object, ...]:
        """What decides the flows, but for the label and ids."""
        return (self.address, self.ingress, self.children, self.members)

    def to_dict(self) -> dict[str, object]:
        """JSON form (GET /api/v1/multicast)."""
        return {"group": self.group, "address": self.address, "sender": self.sender,
                "label": self.label, "switches": [f"{d:016x}" for d, _ in self.group_ids],
                "members": sum(len(p) for _, p in self.members)}


def tree_links(graph: nx.MultiDiGraph, root: int, leaves: set[int]) -> dict[int, list[int]]:
    """dpid -> the link ports (lowest of parallel links) on the shortest-path tree from
    `root` to `leaves` (leaves not reachable are left out)."""
    paths = nx.single_source_shortest_path(graph, root)
    out: dict[int, set[int]] = {}
    for leaf in leaves:
        path = paths.get(leaf)
        if path is None:
            continue
        for a, b in zip(path, path[1:], strict=False):
            out.setdefault(a, set()).add(min(graph[a][b]))
    return {d: sorted(ports) for d, ports in out.items()}


class MulticastManager:
    """Named groups' trees; shares the core's state."""

    def __init__(self, s: CoreState) -> None:
        self.s = s
        self.trees: dict[tuple[str, str], Tree] = {}  # (group, sender MAC) -> tree
        self.tree_ids = 0

    def _members(self, group: MulticastGroup) -> list[Host]:
        hosts = []
        for name in group.members:
            spec = self.s.policy.nodes.get(name)
            ip = spec.ip if spec is not None and spec.ip else name
            host = self.s.topo.host_by_ip(ip)
            if host is not None and host not in hosts:
                hosts.append(host)
        return hosts

    def refresh(self) -> Change:
        """Bring the installed trees in line with the policy's groups and the known
        hosts: new trees for new senders, changed ones rebuilt, stale ones removed."""
        wanted: dict[tuple[str, str], tuple[MulticastGroup, Host, list[Host]]] = {}
        for group in self.s.policy.host_traffic.groups:
            members = self._members(group)
            for sender in members:
                others = [m for m in members if m is not sender]
                if others:
                    wanted[(group.name, sender.mac)] = (group, sender, others)
        change = Change()
        for key in [k for k in self.trees if k not in wanted]:
            change.merge(self._remove(self.trees.pop(key), "no longer wanted"))
        for key, (group, sender, others) in wanted.items():
            children, members = self._shape(sender, others)
            old = self.trees.get(key)
            shape = (group.address, (sender.dpid, sender.port), children, members)
            if old is not None and old.shape == shape:
                continue
            if old is not None:
                change.merge(self._remove(self.trees.pop(key), "its members or path changed"))
            try:
                tree = self._tree(group, sender, children, members)
            except ValueError as exc:
                self.s.record("multicast", f"group {group.name}: no tree from {sender.ip}: {exc}")
                continue
            self.trees[key] = tree
            change.merge(self._install(tree))
        return change

    def _shape(self, sender: Host, others: list[Host]) -> tuple[
            tuple[tuple[int, tuple[int, ...]], ...], tuple[tuple[int, tuple[int, ...]], ...]]:
        links = tree_links(self.s.topo.graph, sender.dpid, {m.dpid for m in others})
        local: dict[int, set[int]] = {}
        for member in others:
            if (member.dpid, member.port) != (sender.dpid, sender.port):
                local.setdefault(member.dpid, set()).add(member.port)
        reached = {sender.dpid}
        for dpid, ports in links.items():
            for port in ports:
                link = self.s.topo.link_from(dpid, port)
                if link is not None:
                    reached.add(link.dst)
        local = {d: p for d, p in local.items() if d in reached}  # unreachable: left out
        return (tuple(sorted((d, tuple(p)) for d, p in links.items())),
                tuple(sorted((d, tuple(sorted(p))) for d, p in local.items())))

    def _tree(self, group: MulticastGroup, sender: Host,
              children: tuple[tuple[int, tuple[int, ...]], ...],
              members: tuple[tuple[int, tuple[int, ...]], ...]) -> Tree:
        switches = sorted({sender.dpid, *(d for d, _ in children), *(d for d, _ in members)})
        label = self.s.labels.allocate()
        ids = []
        for dpid in switches:
            ids.append((dpid, self._allocate_group()))
        self.tree_ids += 1
        return Tree(group.name, group.address, sender.mac, (sender.dpid, sender.port), label,
                    make_cookie(KIND_MCAST, self.tree_ids), children, members, tuple(ids))

    def _allocate_group(self) -> int:
        """A group id from the range service bindings use (they share it)."""
        if self.s.group_free:
            return self.s.group_free.popleft()
        if self.s.group_next > SERVICE_GROUP_MAX:
            raise ValueError("no free group id")
        gid, self.s.group_next = self.s.group_next, self.s.group_next + 1
        return gid

    def _install(self, tree: Tree) -> Change:
        """The groups and table-1 entries first, then the sender's classifier."""
        children, members = dict(tree.children), dict(tree.members)
        path: list[FlowSpec | GroupSpec] = []
        ingress_flows: list[FlowSpec] = []
        for dpid, gid in tree.group_ids:
            first = dpid == tree.ingress[0]
            # weight 0: Open vSwitch refuses an "all" group whose buckets carry a weight
            buckets = [Bucket((PushMpls(), SetField("mpls_label", tree.label), Output(p))
                              if first else (Output(p),), 0) for p in children.get(dpid, ())]
            buckets += [Bucket((Output(p),) if first else (PopMpls(ETH_TYPE_IPV4), Output(p)), 0)
                        for p in members.get(dpid, ())]
            path.append(GroupSpec(dpid, gid, "all", tuple(buckets)))
            if first:
                ingress_flows.append(FlowSpec.make(
                    dpid, TABLE_CLASSIFY, PRIO_GROUP,
                    {"in_port": tree.ingress[1], "eth_type": ETH_TYPE_IPV4,
                     "eth_src": tree.sender, "ipv4_dst": tree.address},
                    [Group(gid)], cookie=tree.cookie))
            else:
                path.append(FlowSpec.make(dpid, TABLE_FORWARD, PRIO_TRAIL,
                                          label_match(tree.label), [Group(gid)],
                                          cookie=tree.cookie))
        self.s.record("multicast", f"group {tree.group} ({tree.address}) from {tree.sender}: "
                      f"tree over {len(tree.group_ids)} switches, label {tree.label}, "
                      f"{sum(len(p) for p in members.values())} member ports")
        return Change([group_ops(path), group_ops(ingress_flows)])

    def _remove(self, tree: Tree, reason: str) -> Change:
        """The classifier and the table-1 entries first, then the groups."""
        here = [d for d, _ in tree.group_ids if d in self.s.topo.switches]
        flows = [FlowDelete(d, tree.cookie, COOKIE_MASK_ALL) for d in here]
        groups = [GroupDelete(d, gid) for d, gid in tree.group_ids if d in self.s.topo.switches]
        self.s.record("multicast", f"group {tree.group} tree from {tree.sender} removed: {reason}")

        def free() -> None:  # once the switches confirmed: a new tree may take them then
            self.s.labels.release(tree.label)
            self.s.group_free.extend(gid for _, gid in tree.group_ids)

        return Change([group_ops(flows), group_ops(groups)], [free])

    def view(self) -> list[dict[str, object]]:
        """Every installed tree."""
        return [t.to_dict() for _, t in sorted(self.trees.items())]


def is_group_address(text: str) -> bool:
    """True for an IPv4 multicast address (224.0.0.0/4)."""
    try:
        return ipaddress.IPv4Address(text).is_multicast
    except ValueError:
        return False
