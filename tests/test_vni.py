"""The host tagger's map contents (sdnscent.vni.entries) and the agent that keeps
them in sync with the store (sdnscent.vni.loader.VniAgent), without a kernel:
the map is a Python stand-in, the store a MemoryStore.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest

from sdnscent.compiler import PRIO_APP, PRIO_TRAIL
from sdnscent.store import MemoryStore
from sdnscent.trails import Hop, Trail, TrailState
from sdnscent.vni import entries as ve
from sdnscent.vni.cli import build_parser
from sdnscent.vni.cli import main as vni_main
from sdnscent.vni.entries import NO_LABEL, TagKey, TagValue, host_entries, key_for, lookup
from sdnscent.vni.loader import VniAgent
from tests.conftest import wait_for

H1 = ("10.0.0.1", "00:00:00:00:00:01")
PATH = (Hop(1, 1, 3), Hop(2, 2, 1))


def trail(tid: int, label: int, dst: str = "10.0.0.9", **kw: object) -> Trail:
    base = dict(src_mac=H1[1], dst_mac="00:00:00:00:00:09", src_ip=H1[0], dst_ip=dst,
                hops=PATH, state=TrailState.ACTIVE)
    base.update(kw)
    return Trail(tid, label, **base)  # type: ignore[arg-type]


def test_key_and_value_bytes_match_the_c_structs() -> None:
    key = TagKey("10.0.0.9", ve.SHAPE_PORT, 6, 443, 0)
    assert key.pack() == bytes([10, 0, 0, 9, 0x01, 0xBB, 6, 0, 2, 0, 0, 0])
    assert TagKey.unpack(key.pack()) == key
    value = TagValue(100, 200, 0, 0b101)
    assert value.pack() == (100).to_bytes(4, "little") + (200).to_bytes(2, "little") + b"\0\5"
    assert TagValue.unpack(value.pack()).same_in_map(value)


def test_a_default_trail_is_one_destination_entry() -> None:
    got = host_entries([trail(1, 16)], *H1)
    assert got == {TagKey("10.0.0.9"): TagValue(16, PRIO_TRAIL, shapes=1, trail=1)}
    assert lookup(got, "10.0.0.9", 6, 40000, 80) == 16
    assert lookup(got, "10.0.0.8") == NO_LABEL


def test_application_trails_win_by_priority_and_fall_back_to_the_default() -> None:
    web = trail(2, 17, app="web", priority=None,
                match=((("ip_proto", 6), ("tcp_dst", 443)), (("ip_proto", 6), ("tcp_src", 443))))
    voice = trail(3, 18, app="voice", priority=PRIO_APP + 10, match=((("ip_dscp", 46),),))
    got = host_entries([trail(1, 16), web, voice], *H1)
    assert got[TagKey("10.0.0.9")].shapes == (1 << ve.SHAPE_DST) | (1 << ve.SHAPE_PORT) | \
        (1 << ve.SHAPE_SPORT) | (1 << ve.SHAPE_DSCP)
    assert lookup(got, "10.0.0.9", 6, 40000, 443) == 17  # the web trail
    assert lookup(got, "10.0.0.9", 6, 443, 40000) == 17  # its replies from port 443
    assert lookup(got, "10.0.0.9", 17, 40000, 443) == 16  # UDP 443 is not web
    assert lookup(got, "10.0.0.9", 6, 40000, 443, dscp=46) == 18  # voice has priority
    assert lookup(got, "10.0.0.9", 6, 40000, 80) == 16


def test_an_application_trail_without_a_default_leaves_other_traffic_untagged() -> None:
    web = trail(2, 17, app="web", match=((("ip_proto", 6), ("tcp_dst", 443)),))
    got = host_entries([web], *H1)
    assert got[TagKey("10.0.0.9")].label == NO_LABEL
    assert lookup(got, "10.0.0.9", 6, 40000, 443) == 17
    assert lookup(got, "10.0.0.9", 6, 40000, 80) == NO_LABEL


@pytest.mark.parametrize("change, why", [
    ({"state": TrailState.INSTALLING}, "state"),
    ({"state": TrailState.REROUTING}, "state"),
    ({"grouped": True}, "pool member"),
    ({"rewrite": (("eth_src", "00:00:00:00:00:aa"),)}, "rewrites"),
    ({"hops": (Hop(1, 1, 2),)}, "one-switch"),
    ({"src_ip": "10.0.0.2"}, None),  # another host's trail
])
def test_trails_the_host_must_leave_to_the_switch(change: dict, why: str | None) -> None:
    t = replace(trail(1, 16), **change)
    assert host_entries([t], *H1) == {}
    if why is not None:
        assert why in (ve.taggable(t) or "")


def test_an_alternative_the_key_cannot_express_leaves_the_whole_trail_to_the_switch() -> None:
    odd = trail(2, 17, app="x", match=((("ip_proto", 6), ("tcp_dst", 1), ("tcp_src", 2)),))
    assert host_entries([odd], *H1) == {}
    with pytest.raises(ve.Unrepresentable, match="tcp_dst needs ip_proto 6"):
        key_for("10.0.0.9", (("ip_proto", 17), ("tcp_dst", 1)))


class FakeTagger:
    """The Tagger interface over a dict (what the kernel map would hold)."""

    iface = "fake0"

    def __init__(self) -> None:
        self.map: dict[TagKey, TagValue] = {}
        self.attached = False
        self.synced = threading.Event()

    def attach(self) -> None:
        self.attached = True

    def detach(self) -> None:
        self.attached = False
        self.map.clear()

    def sync(self, entries: dict[TagKey, TagValue], verify: bool = False) -> int:
        changed = sum(1 for k, v in entries.items() if k not in self.map
                      or not self.map[k].same_in_map(v))
        changed += sum(1 for k in self.map if k not in entries)
        self.map = dict(entries)
        self.synced.set()
        return changed

    def labels(self) -> dict[str, int]:
        return {k.daddr: v.label for k, v in self.map.items() if k.shape == ve.SHAPE_DST}


@contextmanager
def running(agent: VniAgent) -> Iterator[threading.Thread]:
    """`agent.run` on a thread until the block ends; then stopped and joined."""
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,))
    runner.start()
    try:
        yield runner
    finally:
        stop.set()
        runner.join(5)


def test_the_agent_follows_puts_moves_and_deletes_and_unloads_on_stop() -> None:
    store = MemoryStore()
    store.put(trail(1, 16))
    store.put(trail(2, 30, dst="10.0.0.5", src_ip="10.0.0.2"))  # not ours
    tagger = FakeTagger()
    agent = VniAgent("memory://", tagger, *H1, interval=30.0, opener=lambda url: store)
    with running(agent) as runner:
        wait_for(lambda: tagger.labels() == {"10.0.0.9": 16})
        # a move: REROUTING leaves the packets to the switch, ACTIVE takes the new label
        moved = trail(1, 20, version=2, state=TrailState.REROUTING)
        store.put(moved)
        wait_for(lambda: tagger.labels() == {})
        store.put(replace(moved, version=3, state=TrailState.ACTIVE))
        wait_for(lambda: tagger.labels() == {"10.0.0.9": 20})  # by notification, not resync
        store.put(trail(3, 40, dst="10.0.0.7"))
        wait_for(lambda: tagger.labels() == {"10.0.0.9": 20, "10.0.0.7": 40})
        store.delete(1)
        wait_for(lambda: tagger.labels() == {"10.0.0.7": 40})
    assert not runner.is_alive() and not tagger.attached


def test_the_periodic_resync_catches_what_notifications_missed() -> None:
    store = MemoryStore()
    tagger = FakeTagger()
    agent = VniAgent("memory://", tagger, *H1, interval=0.2, opener=lambda url: store)
    with running(agent):
        wait_for(lambda: agent.syncs >= 1)
        agent._unsubscribe()  # notifications lost
        store.put(trail(1, 16))
        wait_for(lambda: tagger.labels() == {"10.0.0.9": 16}, timeout=2.0)


def test_a_store_outage_keeps_the_map_and_recovers() -> None:
    store = MemoryStore()
    store.put(trail(1, 16))
    broken = threading.Event()

    def opener(url: str) -> MemoryStore:
        if broken.is_set():
            raise ConnectionError("store down")
        return store

    tagger = FakeTagger()
    agent = VniAgent("memory://", tagger, *H1, interval=0.1, max_backoff=0.2, opener=opener)
    real_all = store.all
    store.all = lambda: (_ for _ in ()).throw(ConnectionError("down")) \
        if broken.is_set() else real_all()  # type: ignore[method-assign]
    with running(agent) as runner:
        wait_for(lambda: tagger.labels() == {"10.0.0.9": 16})
        broken.set()
        time.sleep(0.5)
        assert tagger.labels() == {"10.0.0.9": 16} and runner.is_alive()
        broken.clear()
        store.put(trail(1, 17, version=2))
        wait_for(lambda: tagger.labels() == {"10.0.0.9": 17})


def test_the_command_line_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_parser().parse_args(["show", "--iface", "eth0"]).command == "show"
    with pytest.raises(SystemExit) as exc:
        vni_main(["run", "--store", "memory://", "--iface", "eth0"])
    assert exc.value.code == 2 and "memory://' lives in one process" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        vni_main(["run", "--store", "redis://h:1/0", "--iface", "eth0", "--interval", "0"])
