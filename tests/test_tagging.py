"""Trusted tagger ports (sdnscent.tagging) through the forwarding simulator.

Trails come from the real controller on a k=4 fat-tree; tables are the
compiler's plus the tagger port's flows; the simulator shows where frames
that a host labelled itself go.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from sdnscent import compiler, tagging
from sdnscent.flows import ETH_TYPE_MPLS, PIPELINE_COOKIE, FlowSpec, trail_cookie
from sdnscent.simulator import DROP_BY_FLOW, Network, Switch, Trace, ipv4_packet
from sdnscent.trails import Trail, TrailState
from tests.conftest import FakeClock, FatTree, HostSpec, build_fat_tree
from tests.fabric import attachment, compiled_tables, host_name, sim_hosts, sim_links


def fabric() -> tuple[FatTree, object, dict[int, HostSpec]]:
    tree = build_fat_tree(4)
    ctl = tree.controller(FakeClock())
    return tree, ctl, {h.n: h for h in tree.hosts}


def active(ctl: object, src: HostSpec, dst: HostSpec) -> Trail:
    """The default trail src -> dst, installed and ACTIVE."""
    trail, change = ctl.ensure_trail(src.mac, dst.mac)
    for callback in change.done:
        callback()
    return ctl.store.get(trail.id)


def network(tree: FatTree, ctl: object, tagger: HostSpec | None) -> Network:
    """The compiled fabric, plus the trusted-port flows of `tagger`'s port."""
    tables = compiled_tables(ctl)
    if tagger is not None:
        dpid, port = attachment(tagger)
        tables[dpid] = tables[dpid] + tagging.trusted_port_flows(dpid, port, ctl.store.all())
    switches = {dpid: Switch(dpid, flows) for dpid, flows in tables.items()}
    return Network(switches, sim_links(tree), sim_hosts(tree))


def labelled(src: HostSpec, dst: HostSpec, label: int) -> object:
    """A TCP packet src -> dst that src labelled itself."""
    return ipv4_packet(src.ip, dst.ip, eth_src=src.mac, eth_dst=dst.mac, src_port=40000,
                       dst_port=80, mpls=(label,))


def plain(src: HostSpec, dst: HostSpec) -> object:
    return ipv4_packet(src.ip, dst.ip, eth_src=src.mac, eth_dst=dst.mac, src_port=40000,
                       dst_port=80)


def assert_carried(trace: Trace, trail: Trail, dst: HostSpec) -> None:
    """Delivered once to dst, along the trail's hops, with exactly its one label."""
    assert trace.delivered_to == (host_name(dst),), trace.format()
    assert not trace.drops and not trace.packet_ins and not trace.loop, trace.format()
    assert [(h.dpid, h.in_port, h.out_port) for h in trace.hops] == \
        [(h.dpid, h.in_port, h.out_port) for h in trail.hops], trace.format()
    assert trace.transits and all(t.packet.mpls == (trail.label,) for t in trace.transits), \
        trace.format()
    assert trace.deliveries[0].packet.mpls == ()


def dropped_by(trace: Trace) -> FlowSpec:
    """The flow that dropped the packet (and nothing was delivered)."""
    assert trace.delivered_to == () and not trace.packet_ins, trace.format()
    assert [d.reason for d in trace.drops] == [DROP_BY_FLOW], trace.format()
    return next(s.flow for s in reversed(trace.steps) if s.flow is not None)


def test_a_tagged_frame_of_the_hosts_own_trail_rides_it_without_a_second_label() -> None:
    tree, ctl, h = fabric()
    trail = active(ctl, h[1], h[9])  # another pod: edge, aggregation, core, ...
    net = network(tree, ctl, tagger=h[1])
    assert_carried(net.send(host_name(h[1]), labelled(h[1], h[9], trail.label)), trail, h[9])
    # the accept flow counts for the trail (same cookie) at the trail's ingress port
    accept = tagging.accept_flow(trail)
    assert accept.cookie == trail_cookie(trail.id) and accept.priority > \
        compiler.PRIO_UNTRUSTED_LABEL and accept.match_dict["in_port"] == h[1].port


def test_untagged_frames_from_a_tagger_host_are_still_classified_by_the_switch() -> None:
    tree, ctl, h = fabric()
    trail = active(ctl, h[1], h[9])
    net = network(tree, ctl, tagger=h[1])
    assert_carried(net.send(host_name(h[1]), plain(h[1], h[9])), trail, h[9])


def test_a_tagger_sending_the_label_of_a_trail_it_does_not_own_is_dropped_and_counted() -> None:
    tree, ctl, h = fabric()
    active(ctl, h[1], h[9])
    foreign = active(ctl, h[2], h[9])  # h2 shares h1's edge switch
    net = network(tree, ctl, tagger=h[1])
    flow = dropped_by(net.send(host_name(h[1]), labelled(h[1], h[9], foreign.label)))
    assert flow == tagging.drop_flow(h[1].dpid, h[1].port)
    assert flow.cookie == tagging.tagger_cookie(h[1].port)  # its own counters


def test_a_host_without_a_registered_tagger_cannot_inject_labelled_frames() -> None:
    tree, ctl, h = fabric()
    own = active(ctl, h[2], h[9])
    net = network(tree, ctl, tagger=h[1])  # h2 is not a tagger, even for its own trail
    flow = dropped_by(net.send(host_name(h[2]), labelled(h[2], h[9], own.label)))
    assert flow.priority == compiler.PRIO_UNTRUSTED_LABEL and flow.cookie == PIPELINE_COOKIE


def test_trusted_port_flows_accept_only_live_label_paths_of_trails_from_that_port() -> None:
    tree, ctl, h = fabric()
    far = active(ctl, h[1], h[9])
    near = active(ctl, h[1], h[2])  # same edge switch: no label path, nothing to accept
    other = active(ctl, h[3], h[9])
    failed = replace(far, id=99, label=4000, state=TrailState.FAILED)
    flows = tagging.trusted_port_flows(h[1].dpid, h[1].port, [far, near, other, failed])
    assert flows == [tagging.drop_flow(h[1].dpid, h[1].port), tagging.accept_flow(far)]
    assert tagging.no_label_path(near) is not None
    assert tagging.no_label_path(replace(far, grouped=True)) is not None


def test_a_rate_capped_trail_stays_metered_when_its_host_tags_it() -> None:
    tree, ctl, h = fabric()
    trail = replace(active(ctl, h[1], h[9]), rate_cap=20_000_000)
    assert tagging.accept_flow(trail).meter == compiler.meter_id(trail)


def test_untrusting_a_port_sends_its_labels_back_to_the_untrusted_drop() -> None:
    tree, ctl, h = fabric()
    trail = active(ctl, h[1], h[9])
    net = network(tree, ctl, tagger=h[1])
    net.apply(tagging.untrust_ops(h[1].dpid, h[1].port))
    flow = dropped_by(net.send(host_name(h[1]), labelled(h[1], h[9], trail.label)))
    assert flow.priority == compiler.PRIO_UNTRUSTED_LABEL
    assert_carried(net.send(host_name(h[1]), plain(h[1], h[9])), trail, h[9])  # untagged: fine


def test_install_steps_put_the_accept_flow_with_the_label_path() -> None:
    tree, ctl, h = fabric()
    trail = active(ctl, h[1], h[9])
    steps = tagging.install_steps(trail)
    assert steps[1:] == compiler.install_steps(trail)[1:]
    assert tagging.accept_flow(trail) in steps[0][trail.ingress.dpid]


def test_a_reroute_keeps_both_labels_accepted_until_the_old_path_is_removed() -> None:
    """Make-before-break with a tagger: every frame is delivered at every step,
    whether the host still uses the old label, has gone untagged, or uses the new one."""
    tree, ctl, h = fabric()
    old = active(ctl, h[1], h[9])
    net = network(tree, ctl, tagger=h[1])
    ctl.planner.utilisation = {(old.hops[1].dpid, old.hops[1].out_port): 1.0}
    change = ctl.replan(old.id, "test")
    new = ctl.store.get(old.id)
    assert new.label != old.label and new.state == TrailState.REROUTING
    steps = tagging.reroute_steps(old, new)
    assert len(steps) == len(change.steps) == 3  # path, classifier, drained deletes
    for i, step in enumerate(steps):
        net.apply([op for ops in step.values() for op in ops])
        if i < len(steps) - 1:  # the old label works until the last step
            assert_carried(net.send(host_name(h[1]), labelled(h[1], h[9], old.label)), old, h[9])
        assert_carried(net.send(host_name(h[1]), labelled(h[1], h[9], new.label)), new, h[9])
        expected = old if i == 0 else new  # untagged: the classifier moves at step 2
        assert_carried(net.send(host_name(h[1]), plain(h[1], h[9])), expected, h[9])
    flow = dropped_by(net.send(host_name(h[1]), labelled(h[1], h[9], old.label)))
    assert flow == tagging.drop_flow(h[1].dpid, h[1].port)


def test_removing_a_trail_removes_its_accept_flow_by_cookie() -> None:
    tree, ctl, h = fabric()
    trail = active(ctl, h[1], h[9])
    net = network(tree, ctl, tagger=h[1])
    net.apply(compiler.remove_ops(trail))
    remaining = [f for f in net.switches[h[1].dpid].flows if f.match_dict.get("eth_type")
                 == ETH_TYPE_MPLS and f.match_dict.get("in_port") == h[1].port]
    assert remaining == [tagging.drop_flow(h[1].dpid, h[1].port)]


@pytest.mark.parametrize("label", [16, 2**20 - 1])
def test_accept_flows_load_into_a_switch(label: int) -> None:
    """The simulator validates fields and prerequisites when it loads a flow."""
    tree, ctl, h = fabric()
    trail = replace(active(ctl, h[1], h[9]), label=label)
    Switch(trail.ingress.dpid, [tagging.accept_flow(trail)])
