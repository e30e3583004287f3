"""Ranking of communicating pairs by observed use and criticality."""

import pytest

from sdnscent.patterns import PatternTracker

A, B, C = "00:00:00:00:00:01", "00:00:00:00:00:02", "00:00:00:00:00:03"


def test_busier_pair_ranks_first() -> None:
    t = PatternTracker(half_life=10)
    t.counters(("web", A, B), 0, now=0)
    t.counters(("web", A, C), 0, now=0)
    t.counters(("web", A, B), 1000, now=5)
    t.counters(("web", A, C), 50, now=5)
    assert t.top("web") == [("web", A, B), ("web", A, C)]
    assert t.ranking("web")[0][1].rate > t.ranking("web")[1][1].rate > 0


def test_critical_application_outranks_equal_traffic() -> None:
    t = PatternTracker(half_life=10)
    for pair, level, cls in ((("bulk", A, B), 0, "bulk"), (("ctl", A, C), 2, "control")):
        t.counters(pair, 0, now=0, level=level, data_class=cls)
        t.counters(pair, 100, now=1, level=level, data_class=cls)
    assert [p for p, _ in t.ranking()] == [("ctl", A, C), ("bulk", A, B)]


def test_requests_count_and_fade_with_the_half_life() -> None:
    t = PatternTracker(half_life=10)
    t.request(("web", A, B), now=0)
    t.request(("web", A, B), now=0)
    t.request(("web", A, C), now=0)
    assert t.top("web", 1) == [("web", A, B)]
    t.request(("web", A, C), now=20)  # A-B's two requests have faded to 0.5
    assert t.pairs[("web", A, C)].requests == pytest.approx(1.25)
    t.request(("web", A, B), now=20)
    assert t.pairs[("web", A, B)].requests == pytest.approx(1.5)


def test_idle_pair_rate_decays_towards_zero() -> None:
    t = PatternTracker(half_life=5)
    t.counters(("web", A, B), 0, now=0)
    t.counters(("web", A, B), 500, now=1)
    busy = t.pairs[("web", A, B)].rate
    t.counters(("web", A, B), 500, now=30)
    assert 0 <= t.pairs[("web", A, B)].rate < busy / 10


def test_counter_reset_does_not_give_negative_rates() -> None:
    t = PatternTracker()
    t.counters(("web", A, B), 900, now=0)
    t.counters(("web", A, B), 10, now=1)  # trail re-installed: counters restart
    assert t.pairs[("web", A, B)].rate >= 0


def test_forgetting_a_host_drops_its_pairs_only() -> None:
    t = PatternTracker()
    t.request(("web", A, B), now=0)
    t.request(("web", B, C), now=0)
    t.request(("web", C, A), now=0)
    t.forget(A)
    assert list(t.pairs) == [("web", B, C)]


def test_half_life_must_be_positive() -> None:
    with pytest.raises(ValueError, match="half-life 0 must be positive"):
        PatternTracker(half_life=0)


# -- in the controller and the API ---------------------------------------------------------


def test_host_that_comes_back_gets_its_busiest_pairs_before_it_talks(fat_tree, clock) -> None:
    from sdnscent.rest import create_app
    from sdnscent.topology import Port

    ctrl = fat_tree.controller(clock)
    h1, h5, h9 = fat_tree.host(1), fat_tree.host(5), fat_tree.host(9)
    busy, _ = ctrl.ensure_pair(h1.mac, h5.mac)
    quiet, _ = ctrl.ensure_pair(h1.mac, h9.mac)
    clock.advance(1)
    ctrl.update_counters([(busy.id, 5000, 500_000), (quiet.id, 0, 0)])
    ranking = create_app(ctrl).test_client().get("/api/v1/apps/default/pairs").get_json()
    assert [(p["src"], p["dst"]) for p in ranking["pairs"]][0] == (h1.ip, h5.ip)
    assert ranking["pairs"][0]["rate"] > 0

    ctrl.port_status(h1.dpid, Port(h1.port, up=False))  # h1 unplugged: its trails go
    assert ctrl.trail_for_pair(h1.mac, h5.mac) is None
    ctrl.port_status(h1.dpid, Port(h1.port, up=True))
    ctrl.learn_host(h1.dpid, h1.port, h1.mac, h1.ip)  # back: set up again at once
    assert ctrl.trail_for_pair(h1.mac, h5.mac) is not None
    assert any(e.kind == "proactive" for e in ctrl.events)


def test_pairs_of_an_unknown_application_are_a_404(fat_tree, clock) -> None:
    from sdnscent.rest import create_app

    client = create_app(fat_tree.controller(clock)).test_client()
    answer = client.get("/api/v1/apps/nope/pairs")
    assert answer.status_code == 404 and "nope" in answer.get_json()["error"]["message"]
