"""The controller wired to trusted tagger ports: the policy marks a host as a tagger,
and the controller's own changes (learning the host, installing and moving its
trails, a reconnecting switch's audit, dropping the mark) keep the edge right."""

from __future__ import annotations

import textwrap

import pytest

from sdnscent import tagging
from sdnscent.controller import Change
from sdnscent.flows import ETH_TYPE_MPLS, FlowSpec
from sdnscent.policyfile import PolicyError, parse_policy
from sdnscent.simulator import Network, Switch
from sdnscent.topology import Port
from tests.fabric import attachment, compiled_tables, host_name, sim_hosts, sim_links
from tests.test_tagging import assert_carried, dropped_by, labelled

TAGGER = "nodes:\n  h1: {kind: host, ip: 10.0.0.1, tagger: true}\n"


def apply(net: Network, change: Change) -> None:
    for step in change.steps:
        net.apply(op for ops in step.values() for op in ops)
    for callback in change.done:
        callback()


def test_the_policy_makes_a_host_port_trusted_for_its_own_trails(fat_tree, clock) -> None:
    ctl = fat_tree.controller(clock, hosts=[])
    net = Network({d: Switch(d, f) for d, f in compiled_tables(ctl).items()},
                  sim_links(fat_tree), sim_hosts(fat_tree))
    apply(net, ctl.set_policy(parse_policy(TAGGER, "t.yaml"))[0])
    h1, h5, h2 = fat_tree.host(1), fat_tree.host(5), fat_tree.host(2)
    for host in (h1, h5, h2):
        apply(net, ctl.learn_host(host.dpid, host.port, host.mac, host.ip))
    assert ctl.tagger_ports() == {attachment(h1)}
    trail, change = ctl.ensure_trail(h1.mac, h5.mac)
    assert any(isinstance(op, FlowSpec) and op.priority == tagging.PRIO_TAGGED
               for op in change.steps[0].get(h1.dpid, []))  # accepted with the label path
    apply(net, change)
    trail = ctl.store.get(trail.id)
    assert_carried(net.send(host_name(h1), labelled(h1, h5, trail.label)), trail, h5)
    other, change = ctl.ensure_trail(h2.mac, h5.mac)
    apply(net, change)
    assert dropped_by(net.send(host_name(h1), labelled(h1, h5, other.label))).priority \
        == tagging.PRIO_TAGGER_DROP  # not h1's trail: dropped and counted
    assert dropped_by(net.send(host_name(h2), labelled(h2, h5, other.label))).priority \
        < tagging.PRIO_TAGGER_DROP  # h2 is no tagger: the untrusted-label drop
    # a move: the new label is accepted once its path is there, the old one goes
    down = trail.hops[1]
    apply(net, ctl.port_status(down.dpid, Port(down.out_port, up=False)))
    moved = ctl.store.get(trail.id)
    assert_carried(net.send(host_name(h1), labelled(h1, h5, moved.label)), moved, h5)
    assert dropped_by(net.send(host_name(h1), labelled(h1, h5, trail.label)))
    # the audit of a reconnecting switch expects the tagger flows: nothing to change
    table = list(net.switches[h1.dpid].flows)
    audit = ctl.switch_enter(h1.dpid, fat_tree.ports(h1.dpid), f"s{h1.dpid}", installed=table)
    assert not [op for step in audit.steps for ops in step.values() for op in ops
                if getattr(op, "table", None) == 0 and dict(getattr(op, "match", ())).get(
                    "eth_type") == ETH_TYPE_MPLS], audit.steps
    # the mark dropped: the port's labels fall back to the untrusted drop
    apply(net, ctl.set_policy(parse_policy("nodes: {}\n", "t.yaml"))[0])
    assert ctl.tagger_ports() == set()
    assert dropped_by(net.send(host_name(h1), labelled(h1, h5, moved.label))).priority \
        < tagging.PRIO_TAGGER_DROP


@pytest.mark.parametrize(("text", "problem"), [
    ("nodes:\n  s1: {kind: switch, tagger: true}\n", "only hosts"),
    ("nodes:\n  h1: {kind: host, tagger: yes-please}\n", "true or false"),
    ("nodes:\n  h1: {kind: host, tagger: true}\n", "needs an ip or a mac"),
])
def test_a_bad_tagger_mark_is_named(text: str, problem: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(textwrap.dedent(text), "t.yaml")
    assert "tagger" in str(err.value) and problem in str(err.value)
