"""Rate caps: a data class's max_rate meters each of its trails at the ingress; the
meter exists before the classifier that uses it, goes with the trail, and survives
a move; the policy file names a bad rate."""

from __future__ import annotations

import textwrap

import pytest

from sdnscent import compiler
from sdnscent.flows import FlowDelete, FlowSpec, MeterDelete, MeterSpec
from sdnscent.policyfile import PolicyError, parse_policy
from sdnscent.simulator import FlowTableError, Network
from sdnscent.topology import Port

BULK = """
    nodes:
      h1: {kind: host, ip: 10.0.0.1}
    data_classes:
      bulk: {load: 8, max_rate: 20Mbit}
    applications:
      - name: backup
        data_class: bulk
        endpoints: {hosts: [h1], ports: [tcp/873]}
"""


def capped(fat_tree, clock):
    ctrl = fat_tree.controller(clock)
    ctrl.set_policy(parse_policy(textwrap.dedent(BULK), "test.yaml"))
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    _, change = ctrl.ensure_pair(h1.mac, h5.mac)
    return ctrl, ctrl.trail_for_pair(h1.mac, h5.mac, "backup"), change


def test_a_capped_class_meters_its_trails_at_the_ingress(fat_tree, clock) -> None:
    ctrl, trail, change = capped(fat_tree, clock)
    assert trail.rate_cap == 20_000_000
    assert ctrl.trail_for_pair(fat_tree.host(1).mac, fat_tree.host(5).mac).rate_cap == 0
    meter = MeterSpec(trail.ingress.dpid, trail.id, 20_000, 4_000)
    steps = compiler.install_steps(trail)
    assert meter in steps[0][trail.ingress.dpid]
    classifiers = compiler.classifier_flows(trail)
    assert classifiers and all(f.meter == trail.id for f in classifiers)
    assert classifiers[0] in steps[1][trail.ingress.dpid]
    # applied in the order the steps give, a real switch (the simulator) accepts it...
    net = Network({}, {}, {})
    for step in steps:
        net.apply(op for ops in step.values() for op in ops)
    # ...and refuses the classifier if its meter is not there yet
    with pytest.raises(FlowTableError, match="meter"):
        Network({}, {}, {}).apply(classifiers)
    # removing the trail removes its meter too
    ops = compiler.remove_ops(trail)
    assert MeterDelete(trail.ingress.dpid, trail.id) in ops
    assert all(isinstance(op, FlowDelete | MeterDelete) for op in ops)


def test_a_moved_capped_trail_keeps_its_meter(fat_tree, clock) -> None:
    ctrl, trail, _ = capped(fat_tree, clock)
    down = trail.hops[1]
    change = ctrl.port_status(down.dpid, Port(down.out_port, up=False))
    ops = [op for step in change.steps for o in step.values() for op in o]
    moved = ctrl.store.get(trail.id)
    assert moved.label != trail.label and moved.rate_cap == trail.rate_cap
    assert not [op for op in ops if isinstance(op, MeterSpec | MeterDelete)
                and op.dpid == trail.ingress.dpid and op.meter_id == trail.id]
    assert all(f.meter == trail.id for f in ops if isinstance(f, FlowSpec)
               and f.table == 0 and f.cookie == compiler.trail_cookie(trail.id))


def test_a_reconnecting_switch_gets_its_meters_made_right(fat_tree, clock) -> None:
    ctrl, trail, _ = capped(fat_tree, clock)
    dpid = trail.ingress.dpid
    change = ctrl.switch_enter(dpid, fat_tree.ports(dpid), f"s{dpid}", installed=[])
    meters = [op for step in change.steps for op in step.get(dpid, [])
              if isinstance(op, MeterSpec)]
    assert [(m.meter_id, m.modify) for m in meters] == [(trail.id, False), (trail.id, True)]


@pytest.mark.parametrize(("rate", "problem"), [("-5Mbit", "max_rate"), ("fast", "max_rate"),
                                               ("0", "> 0")])
def test_a_bad_max_rate_is_named(rate: str, problem: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(textwrap.dedent(BULK).replace("20Mbit", rate), "test.yaml")
    assert "data_classes.bulk.max_rate" in str(err.value) and problem in str(err.value)
