"""OpenFlow transactions as data: owners of operations, step verdicts, per-switch order."""

from __future__ import annotations

from collections.abc import Callable

from sdnscent.flows import (
    COOKIE_MASK_ALL,
    COOKIE_MASK_OURS,
    PIPELINE_COOKIE,
    FlowDelete,
    FlowSpec,
    GroupSpec,
    MeterSpec,
    trail_cookie,
)
from sdnscent.pipeline import multipath_group_id
from sdnscent.transactions import (
    RETRY_FIRST,
    RETRY_MAX,
    Failure,
    SwitchOrder,
    judge,
    owner_of,
    retry_delay,
    without_trails,
)


def hop(dpid: int, trail: int, label: int) -> FlowSpec:
    return FlowSpec.make(dpid, 1, 100, {"eth_type": 0x8847, "mpls_label": label},
                         cookie=trail_cookie(trail))


def test_owner_of_each_kind_of_operation() -> None:
    assert owner_of(hop(1, 7, 16)) == 7
    assert owner_of(FlowDelete(1, trail_cookie(7), COOKIE_MASK_ALL)) == 7
    assert owner_of(FlowDelete(1, PIPELINE_COOKIE, COOKIE_MASK_OURS)) is None  # a wipe
    assert owner_of(GroupSpec(1, multipath_group_id(9), "select")) == 9
    assert owner_of(GroupSpec(1, 3, "select")) is None  # a service binding's group
    assert owner_of(MeterSpec(1, 7, 1000, 100)) == 7
    assert owner_of(FlowSpec.make(1, 0, 1000, {"eth_type": 0x88CC})) is None  # pipeline


def test_a_refusal_fails_its_trail_and_a_silent_switch_fails_everything_it_got() -> None:
    step = {1: [hop(1, 7, 16), hop(1, 8, 17)], 2: [hop(2, 9, 18), FlowSpec.make(2, 0, 500, {
        "in_port": 3, "eth_type": 0x8847})]}
    refused = judge(step, [Failure(1, 0, "OFPET_FLOW_MOD_FAILED/OFPFMFC_TABLE_FULL",
                                   step[1][1])])
    assert list(refused.trails) == [8] and not refused.resync
    assert "step 1 on switch 0x1" in refused.trails[8]
    silent = judge(step, [Failure(2, 0, "no barrier reply within 3 s")])
    assert list(silent.trails) == [9] and list(silent.resync) == [2]


def test_later_steps_go_on_without_the_failed_trails() -> None:
    steps = [{1: [hop(1, 7, 16), hop(1, 8, 17)]}, {2: [hop(2, 7, 16)]}]
    assert without_trails(steps, {7}) == [{1: [hop(1, 8, 17)]}, {}]


def test_back_off_doubles_to_its_cap() -> None:
    assert [retry_delay(a) for a in range(3)] == [RETRY_FIRST, 2 * RETRY_FIRST,
                                                  4 * RETRY_FIRST]
    assert retry_delay(30) == RETRY_MAX


class Recorder:
    """Runs started changes by hand, recording the order."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.finishers: dict[str, Callable[[], None]] = {}
        self.order = SwitchOrder(lambda run: run())

    def submit(self, name: str, dpids: set[int]) -> None:
        def run(finished: Callable[[], None]) -> None:
            self.started.append(name)
            self.finishers[name] = finished

        self.order.submit(frozenset(dpids), run)


def test_changes_keep_their_order_per_switch_and_others_go_at_once() -> None:
    r = Recorder()
    r.submit("a", {1, 2})  # s2 will be slow: a stays unfinished
    r.submit("b", {1})  # behind a on s1
    r.submit("c", {3})  # another switch: starts at once
    r.submit("d", {3, 1})  # behind b on s1
    assert r.started == ["a", "c"]
    r.finishers["c"]()
    assert r.started == ["a", "c"]  # d still waits for b
    r.finishers["a"]()
    assert r.started == ["a", "c", "b"]
    r.finishers["a"]()  # a second call changes nothing
    r.finishers["b"]()
    assert r.started == ["a", "c", "b", "d"]
    r.finishers["d"]()
    assert r.order.pending() == 0
