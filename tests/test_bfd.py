"""BFD on inter-switch links through OVSDB: the options the controller writes and
the keeper that writes them on both ends of every link LLDP finds."""

from __future__ import annotations

import threading

import pytest

from sdnscent.protection import bfd_options
from tests.conftest import wait_for
from tests.test_ovsdb import DPID, server, southbound  # noqa: F401 - fixtures


def test_bfd_options_set_both_intervals_and_zero_turns_bfd_off() -> None:
    assert bfd_options(10) == {"enable": "true", "min_tx": "10", "min_rx": "10",
                               "decay_min_rx": None}
    assert bfd_options(0) == {"enable": "false"}


@pytest.mark.parametrize("bad", [-1, 10_001, 2.5, True, "10"])
def test_a_bad_bfd_interval_is_refused_by_value(bad: object) -> None:
    with pytest.raises(ValueError, match=f"BFD interval {bad!r}"):
        bfd_options(bad)  # type: ignore[arg-type]


def test_the_keeper_enables_bfd_on_both_ends_and_leaves_the_mtu_when_told(
        server, southbound) -> None:  # noqa: F811 - fixtures
    from sdnscent.apps.ovsdb import MtuKeeper

    events: list[str] = []
    ends = {(DPID, 1): ((DPID, 1), (DPID, 2))}
    keeper = MtuKeeper(southbound, 0, lambda d, p: ends.get((d, p)), events.append,
                       bfd_options(15))
    thread = threading.Thread(target=keeper.run, daemon=True)
    thread.start()
    try:
        keeper.seen((DPID, 1))
        want = '{enable="true", min_rx="15", min_tx="15"}'
        wait_for(lambda: all(server.get("interface", f"s1-eth{p}", "bfd") == want
                             for p in (1, 2)))
        assert server.get("interface", "s1-eth3", "bfd") == "{}"
        assert server.get("interface", "s1-eth1", "mtu_request") == "[]"
        assert len([e for e in events if "bfd" in e]) == 2
    finally:
        keeper._jobs.put(None)
        thread.join(5)
