"""Signed LLDP (sdnscent.discovery): what passes, what is refused and counted."""

from __future__ import annotations

import os
import stat

import pytest

from sdnscent.discovery import (
    Discovery,
    LldpAuth,
    SecretError,
    load_or_create_secret,
    parse,
    unsigned_frame,
)

SECRET = b"k" * 32
HW = "02:00:00:00:00:01"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def no_hosts(_dpid: int, _port: int) -> bool:
    return False


@pytest.fixture
def disc() -> tuple[Discovery, Clock]:
    clock = Clock()
    return Discovery(LldpAuth(SECRET, max_age=3.0, clock=clock)), clock


def test_a_link_counts_only_once_both_directions_were_heard(disc) -> None:
    d, _ = disc
    assert d.receive(d.auth.frame(1, 3, HW), 2, 4, no_hosts) == []
    assert d.counts["unconfirmed"] == 1
    assert d.receive(d.auth.frame(2, 4, HW), 1, 3, no_hosts) == [(2, 4, 1, 3), (1, 3, 2, 4)]
    assert d.counts["accepted"] == 2


def test_the_other_direction_must_be_fresh(disc) -> None:
    d, clock = disc
    d.receive(d.auth.frame(1, 3, HW), 2, 4, no_hosts)
    clock.now += 5  # more than the confirmation window
    assert d.receive(d.auth.frame(2, 4, HW), 1, 3, no_hosts) == []


def test_an_unsigned_ryu_style_frame_is_refused_and_counted(disc) -> None:
    d, _ = disc
    frame = unsigned_frame(1, 3, HW)
    assert parse(frame) is not None  # our chassis format, only unsigned
    assert d.receive(frame, 2, 4, no_hosts) == []
    assert d.counts["unsigned"] == 1 and d.rejected[-1]["claimed"] == f"{1:016x}:3"


def test_a_tampered_port_fails_the_hmac(disc) -> None:
    d, _ = disc
    frame = bytearray(d.auth.frame(1, 3, HW))
    at = frame.index(b"\x04\x05\x02") + 6  # port id TLV (type 2, length 5): last byte
    frame[at] = 9
    assert parse(bytes(frame)).port == 9
    assert d.receive(bytes(frame), 2, 4, no_hosts) == []
    assert d.counts["bad_mac"] == 1


def test_a_replayed_frame_is_refused_even_while_fresh(disc) -> None:
    d, _ = disc
    frame = d.auth.frame(1, 3, HW)
    d.receive(frame, 2, 4, no_hosts)
    assert d.receive(frame, 5, 1, no_hosts) == []  # a host relays it elsewhere
    assert d.counts["replayed"] == 1


def test_an_old_frame_has_expired(disc) -> None:
    d, clock = disc
    frame = d.auth.frame(1, 3, HW)
    clock.now += 3.5
    assert d.receive(frame, 2, 4, no_hosts) == []
    assert d.counts["expired"] == 1


def test_a_frame_signed_with_another_secret_fails(disc) -> None:
    d, clock = disc
    other = LldpAuth(b"z" * 32, clock=clock)
    assert d.receive(other.frame(1, 3, HW), 2, 4, no_hosts) == []
    assert d.counts["bad_mac"] == 1


def test_no_link_on_a_port_where_hosts_were_seen(disc) -> None:
    d, _ = disc
    hosts = {(2, 4)}
    d.receive(d.auth.frame(2, 4, HW), 1, 3, lambda dp, p: (dp, p) in hosts)
    assert d.receive(d.auth.frame(1, 3, HW), 2, 4, lambda dp, p: (dp, p) in hosts) == []
    assert d.counts["host_port"] == 2


def test_garbage_is_counted_as_malformed(disc) -> None:
    d, _ = disc
    assert d.receive(b"\x01" * 12 + b"\x88\xcc" + b"\xff", 1, 1, no_hosts) == []
    assert d.counts["malformed"] == 1


def test_the_secret_is_generated_once_and_kept(tmp_path) -> None:
    path = tmp_path / "lldp.key"
    first = load_or_create_secret(path)
    assert len(first) == 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_secret(path) == first
    os.chmod(path, 0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        load_or_create_secret(path)
    os.chmod(path, 0o600)
    path.write_text("not hex")
    with pytest.raises(SecretError, match="not hexadecimal"):
        load_or_create_secret(path)
