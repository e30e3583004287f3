"""Trail leases: the ingress classifier's idle timeout and the store's expiry agree,
traffic renews a lease, an idle trail ends with its flows and its label."""

from __future__ import annotations

from sdnscent import compiler
from sdnscent.flows import COOKIE_MASK_ALL, TABLE_CLASSIFY, FlowDelete, FlowSpec, trail_cookie
from sdnscent.trails import Trail

LEASE = 30


def ops_of(change) -> list:
    return [op for step in change.steps for ops in step.values() for op in ops]


def leased(fat_tree, clock, **options):
    ctrl = fat_tree.controller(clock, trail_lease=LEASE, lease_slack=3.0, **options)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, _ = ctrl.ensure_trail(h1.mac, h5.mac)
    return ctrl, trail


def test_a_leased_trail_carries_its_lease_as_the_classifiers_idle_timeout(fat_tree,
                                                                          clock) -> None:
    ctrl, trail = leased(fat_tree, clock)
    assert (trail.lease, trail.expires) == (LEASE, clock.now + LEASE)
    (classifier,) = compiler.classifier_flows(trail)
    assert (classifier.idle_timeout, classifier.notify_removed) == (LEASE, True)
    # only the ingress classifier times out; the label path is removed by the controller
    assert all(f.idle_timeout == 0 for f in compiler.path_flows(trail))
    unleased, _ = fat_tree.controller(clock).ensure_trail(fat_tree.host(1).mac,
                                                          fat_tree.host(5).mac)
    assert unleased.lease == 0 and unleased.expires is None
    assert compiler.classifier_flows(unleased)[0].idle_timeout == 0


def test_traffic_renews_the_lease_and_silence_lets_it_run_out(fat_tree, clock) -> None:
    ctrl, trail = leased(fat_tree, clock)
    clock.advance(20)
    ctrl.update_counters([(trail.id, 10, 1000)])
    assert ctrl.store.get(trail.id).expires == clock.now + LEASE
    clock.advance(20)
    ctrl.update_counters([(trail.id, 10, 1000)])  # nothing new: no renewal
    assert ctrl.store.get(trail.id).expires == clock.now - 20 + LEASE
    assert not ctrl.expire_trails()
    clock.advance(10)
    change = ctrl.expire_trails()
    assert sorted(ops_of(change), key=lambda op: op.dpid) == [
        FlowDelete(d, trail_cookie(trail.id), COOKIE_MASK_ALL) for d in sorted(trail.switches)]
    assert ctrl.store.get(trail.id) is None
    assert trail.label not in ctrl.labels  # freed
    assert "lease expired" in ctrl.events[-1].message


def test_counters_of_several_classifier_alternatives_are_summed(fat_tree, clock) -> None:
    ctrl, trail = leased(fat_tree, clock)
    ctrl.update_counters([(trail.id, 4, 400), (trail.id, 6, 600)])
    stored = ctrl.store.get(trail.id)
    assert (stored.packets, stored.bytes) == (10, 1000)


def test_the_switch_timing_out_an_idle_classifier_ends_the_trail(fat_tree, clock) -> None:
    ctrl, trail = leased(fat_tree, clock)
    clock.advance(LEASE - 1)  # within the slack of the store's lease: the trail was idle
    change = ctrl.classifier_idle(trail.id, compiler.classifier_flows(trail)[0].match_dict)
    assert {op.dpid for op in ops_of(change)} == set(trail.switches)
    assert ctrl.store.get(trail.id) is None and trail.label not in ctrl.labels


def test_an_idle_alternative_of_a_busy_trail_is_put_back(fat_tree, clock) -> None:
    ctrl, trail = leased(fat_tree, clock)
    clock.advance(LEASE - 1)
    ctrl.update_counters([(trail.id, 5, 500)])  # the trail is busy (another alternative)
    classifier = compiler.classifier_flows(trail)[0]
    change = ctrl.classifier_idle(trail.id, classifier.match_dict)
    assert ops_of(change) == [classifier]
    assert ctrl.store.get(trail.id) is not None


def test_a_packet_in_for_a_pair_with_a_trail_reinstalls_its_classifier(fat_tree,
                                                                      clock) -> None:
    ctrl, trail = leased(fat_tree, clock)
    clock.advance(10)
    change = ctrl.refresh_classifiers(trail.src_mac, trail.dst_mac)
    flows = ops_of(change)
    assert flows and all(isinstance(f, FlowSpec) and f.table == TABLE_CLASSIFY for f in flows)
    assert ctrl.store.get(trail.id).expires == clock.now + LEASE


def test_after_a_restart_leases_get_one_lease_to_show_traffic(fat_tree, clock) -> None:
    ctrl, trail = leased(fat_tree, clock)
    clock.advance(LEASE + 5)  # the controller was down: no counters were read
    ctrl.recover()
    assert not ctrl.expire_trails()
    ctrl.update_counters([(trail.id, 3, 300)])  # still flowing
    clock.advance(LEASE - 1)
    assert not ctrl.expire_trails()
    assert isinstance(ctrl.store.get(trail.id), Trail)
    clock.advance(2)
    assert ctrl.expire_trails() and ctrl.store.get(trail.id) is None


def test_only_the_ingress_classifier_counts_not_a_re_entry_after_an_nf(fat_tree,
                                                                      clock) -> None:
    ctrl, trail = leased(fat_tree, clock)
    ingress = trail.ingress
    ctrl.classifier_counters(ingress.dpid, [(trail.id, ingress.in_port, 7, 700),
                                            (trail.id, ingress.in_port + 99, 7, 700)])
    ctrl.classifier_counters(trail.hops[1].dpid, [(trail.id, 1, 50, 5000)])
    stored = ctrl.store.get(trail.id)
    assert (stored.packets, stored.bytes) == (7, 700)
