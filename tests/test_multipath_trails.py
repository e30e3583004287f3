"""Multipath trails in the controller: an application with requirements.paths > 1 is
split over link-disjoint legs by an ingress select group.

The controller's own Changes are applied to a simulated fat-tree (k=4, two
uplinks per edge switch, so two disjoint legs between pods) and the simulator
shows where each flow goes: every flow delivered once, unlabelled, the flows
shared between the legs by the weights, one flow always on one leg.
"""

from __future__ import annotations

from collections import Counter

import pytest
from fabric import compile_network

from sdnscent import bundles
from sdnscent.controller import DRAIN, Change, ScentController
from sdnscent.flows import TABLE_CLASSIFY, FlowDelete, FlowSpec, Group, GroupDelete, GroupSpec
from sdnscent.policyfile import PolicyError, parse_policy
from sdnscent.simulator import IPPROTO_UDP, Network, ipv4_packet, select_distribution
from sdnscent.telemetry import PortCounters
from sdnscent.topology import Port
from sdnscent.trails import Trail, TrailState
from tests.conftest import FakeClock, FatTree, build_fat_tree

PORT = 5001  # the bulk application's UDP port
FLOWS = 2000


def policy_text(paths: int = 4) -> str:
    hosts = "\n".join(f"  h{n}: {{kind: host, ip: 10.0.0.{n}}}" for n in range(1, 17))
    return (f"nodes:\n{hosts}\napplications:\n  - name: bulk\n"
            f"    endpoints: {{hosts: [h1, h13], ports: [udp/{PORT}]}}\n"
            f"    requirements: {{paths: {paths}}}\n")


def apply(net: Network, change: Change) -> None:
    for step in change.steps:
        for ops in step.values():
            net.apply(ops)
    for callback in change.done:
        callback()


def ops_of(change: Change) -> list:
    return [op for step in change.steps for ops in step.values() for op in ops]


def legs_of(ctl: ScentController, head: int) -> list[Trail]:
    return [ctl.store.get(i) for i in ctl.s.legs[head]]


def fabric(text: str | None = None, **options: int) -> tuple[FatTree, ScentController,
                                                             FakeClock]:
    """A k=4 fat-tree under a controller with `text` (default: bulk split 4 ways)."""
    tree = build_fat_tree(4)
    clock = FakeClock()
    ctl = tree.controller(clock, **options)
    ctl.set_policy(parse_policy(text or policy_text()))
    return tree, ctl, clock


@pytest.fixture()
def split() -> tuple[FatTree, ScentController, Network, FakeClock]:
    """h1 -> h13 (other pods) with a 'bulk' trail split over its legs, on the switches."""
    tree, ctl, clock = fabric()
    net = compile_network(ctl, tree)
    h1, h13 = tree.host(1), tree.host(13)
    _, change = ctl.ensure_pair(h1.mac, h13.mac)
    apply(net, change)
    return tree, ctl, net, clock


def bulk(tree: FatTree, sport: int, dport: int = PORT):
    h1, h13 = tree.host(1), tree.host(13)
    return ipv4_packet(h1.ip, h13.ip, eth_src=h1.mac, eth_dst=h13.mac, ip_proto=IPPROTO_UDP,
                       src_port=sport, dst_port=dport)


def spread(tree: FatTree, net: Network, flows: int = FLOWS, dport: int = PORT) -> Counter[int]:
    """Send `flows` UDP flows h1 -> h13; count the label each rode (0: none)."""
    labels: Counter[int] = Counter()
    for sport in range(20000, 20000 + flows):
        trace = net.send("h1", bulk(tree, sport, dport))
        assert not trace.loop and not trace.errors, trace.format()
        (delivery,) = trace.deliveries
        assert delivery.host == "h13" and not delivery.packet.mpls
        assert delivery.packet.udp_src == sport
        labels[trace.transits[0].packet.mpls_label if trace.transits else 0] += 1
    return labels


def test_the_trail_is_split_over_link_disjoint_legs_by_weight(split) -> None:
    tree, ctl, net, _ = split
    head = ctl.trail_for_pair(tree.host(1).mac, tree.host(13).mac, "bulk")
    legs = legs_of(ctl, head.id)
    assert len(legs) == 2  # k=4: two uplinks from the edge switch
    assert not set(legs[0].links()) & set(legs[1].links())
    assert [bundles.weight_of(leg) for leg in legs] == [0.5, 0.5]  # idle, equal links
    seen = spread(tree, net)
    assert set(seen) == {leg.label for leg in legs}
    for leg in legs:
        assert seen[leg.label] / FLOWS == pytest.approx(0.5, abs=0.04)


def test_one_flow_always_rides_the_same_leg(split) -> None:
    tree, _, net, _ = split
    first = net.send("h1", bulk(tree, 33333)).transits[0].packet.mpls_label
    assert all(net.send("h1", bulk(tree, 33333)).transits[0].packet.mpls_label == first
               for _ in range(5))


def test_other_traffic_of_the_pair_stays_on_the_default_trail(split) -> None:
    tree, ctl, net, _ = split
    default = ctl.trail_for_pair(tree.host(1).mac, tree.host(13).mac)
    assert spread(tree, net, 200, dport=PORT + 1) == Counter({default.label: 200})


def test_the_group_comes_after_the_legs_and_the_classifier_points_at_it() -> None:
    tree, ctl, _ = fabric()
    h1, h13 = tree.host(1), tree.host(13)
    head, change = ctl.ensure_trail(h1.mac, h13.mac, "bulk")
    legs = legs_of(ctl, head.id)
    label_step = max(i for i, step in enumerate(change.steps) for ops in step.values()
                     for op in ops if isinstance(op, FlowSpec) and op.table != TABLE_CLASSIFY)
    (group_step,) = {i for i, step in enumerate(change.steps) for ops in step.values()
                     for op in ops if isinstance(op, GroupSpec)}
    assert label_step < group_step
    classifiers = [op for op in change.steps[group_step][h1.dpid] if isinstance(op, FlowSpec)]
    assert classifiers and all(op.actions == (Group(bundles.group_id(head.id)),)
                               for op in classifiers)
    assert all(leg.grouped and leg.state is TrailState.INSTALLING for leg in legs)
    for callback in change.done:
        callback()
    assert all(leg.state is TrailState.ACTIVE for leg in legs_of(ctl, head.id))
    view = ctl.trail_view(legs[1])
    assert view["multipath"] == {"trail": head.id, "leg": 1, "legs": 2, "weight": 0.5}


def test_hosts_on_one_switch_get_a_plain_trail() -> None:
    tree, ctl, _ = fabric(policy_text().replace("[h1, h13]", "[h1, h2]"))
    trail, _ = ctl.ensure_trail(tree.host(1).mac, tree.host(2).mac, "bulk")
    assert not trail.grouped and bundles.head_of(trail) is None


def load_link(ctl: ScentController, clock: FakeClock, link: tuple[int, int], share: float,
              head: int | None = None, head_share: float = 0.0, seconds: int = 3) -> None:
    """Counter polls: `link` at `share` of capacity; trail `head` sending `head_share`."""
    capacity = ctl.topo.link_capacity(*link)
    sent = own = 0
    for _ in range(seconds + 1):
        ctl.port_counters(link[0], [PortCounters(link[1], 0, sent)])
        if head is not None:
            ctl.update_counters([(head, own // 1000, own)])
        clock.advance(1.0)
        sent += int(share * capacity / 8)
        own += int(head_share * capacity / 8)


def test_a_new_split_follows_spare_capacity() -> None:
    tree, ctl, clock = fabric()
    h1, h13 = tree.host(1), tree.host(13)
    uplink = (h1.dpid, 3)  # edge -> first aggregation switch
    load_link(ctl, clock, uplink, 0.6)
    head, _ = ctl.ensure_trail(h1.mac, h13.mac, "bulk")
    weights = {leg.links()[0]: bundles.weight_of(leg) for leg in legs_of(ctl, head.id)}
    assert weights[uplink] == pytest.approx(0.4 / 1.4, abs=0.01)  # spare 40% against 100%


def test_the_split_moves_with_measured_load_by_a_group_modify(split) -> None:
    tree, ctl, net, clock = split
    head = ctl.trail_for_pair(tree.host(1).mac, tree.host(13).mac, "bulk")
    legs = legs_of(ctl, head.id)
    busy = legs[0].links()[1]  # aggregation -> core on leg 0, shared with other traffic
    # the trail sends 40% of a link; leg 0's core link also carries 20% of others' traffic
    load_link(ctl, clock, busy, 0.2 + 0.4 * 0.5, head=head.id, head_share=0.4)
    change, _ = ctl.rebalance()
    ops = ops_of(change)
    (group,) = [op for op in ops if isinstance(op, GroupSpec)]
    assert group.modify and not [op for op in ops if isinstance(op, FlowSpec | FlowDelete)]
    after = legs_of(ctl, head.id)
    assert [leg.label for leg in after] == [leg.label for leg in legs]  # no leg moved
    # min-max: leg 0 at 0.2 + 0.4 w0, leg 1 at 0.4 (1 - w0): equal at w0 = 0.25
    assert bundles.weight_of(after[0]) == pytest.approx(0.25, abs=0.01)
    assert ctl.reweights == 1 and any(e.kind == "reweight" for e in ctl.events)
    apply(net, change)
    seen = spread(tree, net)
    shares = [s.fraction for s in select_distribution(group)]
    for leg, share in zip(after, shares, strict=True):
        assert seen[leg.label] / FLOWS == pytest.approx(share, abs=0.04)
    # the same load again: nothing moves (hysteresis)
    load_link(ctl, clock, busy, 0.2 + 0.4 * 0.25, head=head.id, head_share=0.4)
    assert not ctl.rebalance()[0]


def test_a_pinned_multipath_trail_keeps_its_split(split) -> None:
    tree, ctl, _, clock = split
    head = ctl.trail_for_pair(tree.host(1).mac, tree.host(13).mac, "bulk")
    ctl.pin_trail(head.id, True)
    busy = legs_of(ctl, head.id)[0].links()[1]
    load_link(ctl, clock, busy, 0.7, head=head.id, head_share=0.4)
    assert not ctl.rebalance()[0] and ctl.reweights == 0


def fail(net: Network, ctl: ScentController, dpid: int, port: int) -> Change:
    """Cable (dpid, port) breaks: in the simulator and as the switch reports it."""
    peer = net.links.pop((dpid, port))
    del net.links[peer]
    return ctl.port_status(dpid, Port(port, up=False))


def test_a_failed_core_link_moves_only_its_leg(split) -> None:
    tree, ctl, net, _ = split
    head = ctl.trail_for_pair(tree.host(1).mac, tree.host(13).mac, "bulk")
    legs = legs_of(ctl, head.id)
    broken = legs[1].links()[1]  # aggregation -> core of leg 1
    change = fail(net, ctl, *broken)
    after = legs_of(ctl, head.id)
    assert (after[0].label, after[0].hops) == (legs[0].label, legs[0].hops)  # untouched
    assert after[1].id == legs[1].id and after[1].label != legs[1].label
    assert broken not in after[1].links() and not set(after[0].links()) & set(after[1].links())
    # the old leg's entries go last, after a drain
    assert change.pause_before.get(len(change.steps) - 1) == DRAIN
    apply(net, change)
    seen = spread(tree, net)
    assert set(seen) == {after[0].label, after[1].label}
    assert legs[1].label not in ctl.labels and after[1].label in ctl.labels  # old one freed


def test_a_failed_uplink_leaves_one_leg_carrying_everything(split) -> None:
    tree, ctl, net, _ = split
    head = ctl.trail_for_pair(tree.host(1).mac, tree.host(13).mac, "bulk")
    legs = legs_of(ctl, head.id)
    change = fail(net, ctl, *legs[1].links()[0])  # edge -> aggregation of leg 1
    after = legs_of(ctl, head.id)
    assert [leg.id for leg in after] == [head.id] and after[0].label == legs[0].label
    assert bundles.weight_of(after[0]) == 1.0
    assert ctl.store.get(legs[1].id) is None
    apply(net, change)
    assert spread(tree, net) == Counter({legs[0].label: FLOWS})


def test_a_failed_head_leg_is_replaced_and_the_head_stays(split) -> None:
    tree, ctl, net, _ = split
    head = ctl.trail_for_pair(tree.host(1).mac, tree.host(13).mac, "bulk")
    legs = legs_of(ctl, head.id)
    apply(net, fail(net, ctl, *legs[0].links()[0]))
    after = legs_of(ctl, head.id)
    assert after[0].id == head.id and [leg.hops for leg in after] == [legs[1].hops]
    assert spread(tree, net) == Counter({after[0].label: FLOWS})


def test_removing_a_leg_removes_the_whole_trail_and_its_group(split) -> None:
    tree, ctl, net, _ = split
    head = ctl.trail_for_pair(tree.host(1).mac, tree.host(13).mac, "bulk")
    legs = legs_of(ctl, head.id)
    change = ctl.remove_trail(legs[1].id, "operator")
    assert all(ctl.store.get(leg.id) is None for leg in legs) and head.id not in ctl.s.legs
    assert ctl.trail_for_pair(tree.host(1).mac, tree.host(13).mac, "bulk") is None
    assert GroupDelete(tree.host(1).dpid, bundles.group_id(head.id)) in change.steps[0][
        tree.host(1).dpid]
    apply(net, change)
    assert bundles.group_id(head.id) not in net.switches[tree.host(1).dpid].groups
    default = ctl.trail_for_pair(tree.host(1).mac, tree.host(13).mac)
    assert spread(tree, net, 200) == Counter({default.label: 200})  # the pair's default trail
    for leg in legs:
        assert not any(leg.label == dict(f.match).get("mpls_label")
                       for sw in net.switches.values() for f in sw.flows)


def leased_split(lease: int = 5) -> tuple[FatTree, ScentController, FakeClock, Trail,
                                           list[FlowSpec]]:
    """A bulk trail h1 -> h13 under a `lease`: fabric, controller, clock, head, classifiers."""
    tree, ctl, clock = fabric(trail_lease=lease)
    head, change = ctl.ensure_trail(tree.host(1).mac, tree.host(13).mac, "bulk")
    classifiers = [op for op in ops_of(change) if isinstance(op, FlowSpec)
                   and op.table == TABLE_CLASSIFY]
    return tree, ctl, clock, head, classifiers


def test_the_lease_ends_every_leg() -> None:
    tree, ctl, clock, head, classifiers = leased_split()
    assert classifiers and all(f.idle_timeout == 5 and f.notify_removed for f in classifiers)
    legs = legs_of(ctl, head.id)
    assert [leg.lease for leg in legs] == [5, 0]  # the head holds the lease
    clock.advance(3)
    ctl.update_counters([(head.id, 10, 10_000)])  # traffic renews it
    clock.advance(4)
    assert not ctl.expire_trails()
    clock.advance(5)
    gone = ctl.expire_trails()
    assert all(ctl.store.get(leg.id) is None for leg in legs)
    assert GroupDelete(tree.host(1).dpid, bundles.group_id(head.id)) in ops_of(gone)


def test_the_switch_timing_out_the_classifier_ends_the_trail() -> None:
    _, ctl, clock, head, classifiers = leased_split()
    clock.advance(5)
    ctl.classifier_idle(head.id, classifiers[0].match_dict)
    assert head.id not in ctl.s.legs and ctl.store.get(head.id) is None


def test_a_restarted_controller_rebuilds_group_and_classifier_from_the_store(split) -> None:
    tree, ctl, net, _ = split
    head = ctl.trail_for_pair(tree.host(1).mac, tree.host(13).mac, "bulk")
    before = spread(tree, net)
    fresh = ScentController(ctl.store, clock=ctl.clock)
    fresh.set_policy(ctl.policy)  # as the app starts: policy, then the store's trails
    fresh.recover()
    assert fresh.s.legs == ctl.s.legs
    assert fresh.trail_for_pair(tree.host(1).mac, tree.host(13).mac, "bulk").id == head.id
    h1 = tree.host(1)
    edge = net.switches[h1.dpid]
    installed = [f for f in edge.flows]
    change = fresh.switch_enter(h1.dpid, tree.ports(h1.dpid), f"s{h1.dpid}", installed)
    ops = ops_of(change)
    assert GroupDelete(h1.dpid) in ops  # groups are set again, not audited
    assert any(isinstance(op, GroupSpec) and op.group_id == bundles.group_id(head.id)
               for op in ops)
    apply(net, change)
    assert spread(tree, net) == before


def test_a_policy_back_to_one_path_replaces_the_split_trail(split) -> None:
    tree, ctl, net, _ = split
    h1, h13 = tree.host(1), tree.host(13)
    head = ctl.trail_for_pair(h1.mac, h13.mac, "bulk")
    change, summary = ctl.set_policy(parse_policy(policy_text(paths=1)))
    single = ctl.trail_for_pair(h1.mac, h13.mac, "bulk")
    assert single.id != head.id and not single.grouped and not ctl.s.legs
    apply(net, change)
    assert spread(tree, net) == Counter({single.label: FLOWS})
    change, _ = ctl.set_policy(parse_policy(policy_text(paths=2)))
    split_again = ctl.trail_for_pair(h1.mac, h13.mac, "bulk")
    assert split_again.grouped and len(ctl.s.legs[split_again.id]) == 2
    apply(net, change)
    assert len(spread(tree, net)) == 2


def test_an_unchanged_policy_leaves_the_split_alone(split) -> None:
    tree, ctl, _, _ = split
    head = ctl.trail_for_pair(tree.host(1).mac, tree.host(13).mac, "bulk")
    legs = legs_of(ctl, head.id)
    change, summary = ctl.set_policy(parse_policy(policy_text()))
    assert summary["replanned"] == 0 and legs_of(ctl, head.id) == legs
    assert not [op for op in ops_of(change) if isinstance(op, GroupSpec | FlowDelete)]


@pytest.mark.parametrize(("paths", "words"), [
    ("0", "requirements.paths: must be an integer 1..8, got 0"),
    ("9", "requirements.paths: must be an integer 1..8, got 9"),
    ("two", "requirements.paths: must be an integer 1..8"),
])
def test_bad_paths_are_refused_naming_the_field(paths: str, words: str) -> None:
    with pytest.raises(PolicyError, match=words.replace(".", r"\.")):
        parse_policy(policy_text().replace("paths: 4", f"paths: {paths}"))


def test_a_split_application_may_not_need_network_functions() -> None:
    text = policy_text().replace("applications:",
                                 "  fw1: {kind: nf, role: firewall, attach: [{switch: s1, port: 3}"
                                 ", {switch: s1, port: 4}]}\napplications:")
    text = text.replace("    requirements: {paths: 4}",
                        "    classification: restricted\n    requirements: {paths: 4}")
    with pytest.raises(PolicyError, match="cannot cross network functions.*firewall"):
        parse_policy(text)
    parse_policy(text.replace("{paths: 4}", "{paths: 4, chain: []}"))


def test_a_new_split_holds_until_the_loads_settle(split) -> None:
    tree, ctl, _, clock = split
    head = ctl.trail_for_pair(tree.host(1).mac, tree.host(13).mac, "bulk")
    busy = legs_of(ctl, head.id)[0].links()[1]
    load_link(ctl, clock, busy, 0.2 + 0.4 * 0.5, head=head.id, head_share=0.4)
    assert ctl.rebalance()[0] and ctl.reweights == 1
    # leg 0's link empties at once: within the hold the split stays, after it follows
    load_link(ctl, clock, busy, 0.4 * 0.25, head=head.id, head_share=0.4, seconds=1)
    assert not ctl.rebalance()[0] and ctl.reweights == 1
    load_link(ctl, clock, busy, 0.4 * 0.25, head=head.id, head_share=0.4, seconds=3)
    assert ctl.rebalance()[0] and ctl.reweights == 2
    assert bundles.weight_of(legs_of(ctl, head.id)[0]) == pytest.approx(0.5, abs=0.05)


def test_a_link_coming_back_restores_the_missing_leg(split) -> None:
    tree, ctl, net, _ = split
    head = ctl.trail_for_pair(tree.host(1).mac, tree.host(13).mac, "bulk")
    legs = legs_of(ctl, head.id)
    a, pa = legs[1].hops[0].dpid, legs[1].hops[0].out_port
    peer = net.links[(a, pa)]
    apply(net, fail(net, ctl, a, pa))
    assert len(ctl.s.legs[head.id]) == 1
    net.links[(a, pa)], net.links[peer] = peer, (a, pa)
    ctl.port_status(a, Port(pa, up=True))
    apply(net, ctl.link_seen(a, pa, *peer).merge(ctl.link_seen(*peer, a, pa)))
    after = legs_of(ctl, head.id)
    assert len(after) == 2 and after[0].label == legs[0].label
    assert len(spread(tree, net)) == 2


def test_legs_without_their_head_are_reported_and_can_be_deleted(split) -> None:
    tree, ctl, _, _ = split
    head = ctl.trail_for_pair(tree.host(1).mac, tree.host(13).mac, "bulk")
    orphan = legs_of(ctl, head.id)[1]
    ctl.store.delete(head.id, "a writer died")
    fresh = ScentController(ctl.store, clock=ctl.clock)
    fresh.recover()
    assert head.id not in fresh.s.legs
    assert any(e.kind == "recover" and "head leg is gone" in e.message for e in fresh.events)
    fresh.remove_trail(orphan.id, "operator")
    assert fresh.store.get(orphan.id) is None and orphan.label not in fresh.labels


def test_a_replan_that_prefers_another_leg_keeps_the_head_first(split) -> None:
    tree, ctl, net, _ = split
    head = ctl.trail_for_pair(tree.host(1).mac, tree.host(13).mac, "bulk")
    legs = legs_of(ctl, head.id)
    ctl.planner.utilisation = {legs[0].links()[0]: 0.9}  # leg 1's uplink is the better now
    change = ctl.replan(legs[1].id, "operator")
    after = legs_of(ctl, head.id)
    assert ctl.s.legs[head.id][0] == head.id == after[0].id
    # both paths planned again, in the other order: nothing moves
    assert [(leg.id, leg.label, leg.hops) for leg in after] \
        == [(leg.id, leg.label, leg.hops) for leg in legs]
    assert not [op for op in ops_of(change) if isinstance(op, FlowSpec | FlowDelete)]
    apply(net, change)
    assert set(spread(tree, net)) == {leg.label for leg in after}
