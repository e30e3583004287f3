"""Named multicast groups on controller-computed trees, checked in the simulator: a
member's packet to the group reaches every other member once and nobody else."""

from __future__ import annotations

import pytest

from sdnscent.flows import FlowDelete, FlowSpec, GroupDelete, GroupSpec
from sdnscent.hosttraffic import edge_kind
from sdnscent.policyfile import PolicyError, parse_policy
from sdnscent.simulator import Network, Switch, ipv4_packet
from tests.fabric import attachment, compiled_tables, host_name, sim_hosts, sim_links

GROUP = """\
host_traffic:
  groups:
    - {name: ticker, address: 239.1.1.1, members: [10.0.0.1, 10.0.0.6, 10.0.0.13, 10.0.0.14]}
"""


def network(ctrl, tree, ops) -> Network:
    tables = compiled_tables(ctrl)
    extra: dict[int, list] = {}
    for op in ops:
        extra.setdefault(op.dpid, []).append(op)
    switches = {d: Switch(d, [*flows, *extra.get(d, [])]) for d, flows in tables.items()}
    return Network(switches, sim_links(tree), sim_hosts(tree))


def ops_of(change) -> list:
    return [op for step in change.steps for ops in step.values() for op in ops]


def test_a_group_reaches_its_members_only_along_one_tree_per_sender(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock)
    change, _ = ctrl.set_policy(parse_policy(GROUP, "g.yaml"))
    ops = ops_of(change)
    assert all(isinstance(op, FlowSpec | GroupSpec) for op in ops)
    trees = ctrl.s.multicast.trees
    assert len(trees) == 4 and len({t.label for t in trees.values()}) == 4
    net = network(ctrl, fat_tree, ops)
    members = {1, 6, 13, 14}
    for n in members:
        h = fat_tree.host(n)
        sent = ipv4_packet(h.ip, "239.1.1.1", eth_src=h.mac, eth_dst="01:00:5e:01:01:01",
                           ip_proto=17, src_port=5000, dst_port=5001)
        trace = net.send(attachment(h), sent)
        assert sorted(trace.delivered_to) == sorted(host_name(fat_tree.host(m))
                                                    for m in members - {n}), trace.format()
        assert all(d.packet == sent for d in trace.deliveries)  # no label left on
        assert not trace.loop and not trace.errors
    # A non-member's packet to the group is dropped at its edge, counted as multicast.
    h2 = fat_tree.host(2)
    trace = net.send(attachment(h2), ipv4_packet(h2.ip, "239.1.1.1", eth_src=h2.mac,
                                                 eth_dst="01:00:5e:01:01:01", ip_proto=17,
                                                 src_port=5000, dst_port=5001))
    assert not trace.deliveries and [edge_kind(d.cookie) for d in trace.drops] == [
        "ipv4-multicast"]


def test_trees_follow_members_and_go_with_the_group(fat_tree, clock) -> None:
    ctrl = fat_tree.controller(clock, hosts=[1, 6])
    ctrl.set_policy(parse_policy(GROUP, "g.yaml"))
    assert {k[1] for k in ctrl.s.multicast.trees} == {fat_tree.host(1).mac,
                                                     fat_tree.host(6).mac}
    h13 = fat_tree.host(13)
    change = ctrl.learn_host(h13.dpid, h13.port, h13.mac, h13.ip)  # a member appears
    ops = ops_of(change)
    assert any(isinstance(op, GroupDelete) for op in ops)  # the old trees are replaced
    deleted = {(op.dpid, op.group_id) for op in ops if isinstance(op, GroupDelete)}
    added = {(op.dpid, op.group_id) for op in ops if isinstance(op, GroupSpec)}
    assert deleted and not deleted & added  # a new group never takes an id being deleted
    assert len(ctrl.s.multicast.trees) == 3
    labels = {t.label for t in ctrl.s.multicast.trees.values()}
    assert all(label in ctrl.s.labels for label in labels)
    change, _ = ctrl.set_policy(parse_policy("{}", "empty.yaml"))
    assert ctrl.s.multicast.trees == {}
    assert all(label in ctrl.s.labels for label in labels)  # until the deletes are confirmed
    for callback in change.done:
        callback()
    removed = ops_of(change)
    assert {type(op) for op in removed} >= {FlowDelete, GroupDelete}
    assert labels and not any(label in ctrl.s.labels for label in labels)  # freed


def test_a_group_must_have_a_multicast_address_and_known_members() -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(GROUP.replace("239.1.1.1", "10.1.1.1"), "bad.yaml")
    assert "'10.1.1.1' is not an IPv4 multicast address" in str(err.value)
