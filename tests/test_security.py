"""Defences: secret files, signed agent samples (forged, replayed, unsigned ones are
refused and counted, and do not move anything), the packet-in token bucket."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from apps.manager import main as manager_main
from sdnscent.ratelimit import RateLimiter
from sdnscent.secretfile import (
    SecretFileError,
    read_key_file,
    read_keys_file,
    read_token_file,
)
from sdnscent.store import redact
from sdnscent.telemetry import SAMPLE_VERSION, NodeLoadReader, sign_sample
from tests.conftest import FakeClock

KEY = b"fw1-key-0123456789abcdef"


def secret(tmp_path: Path, text: str, mode: int = 0o600, name: str = "secret") -> Path:
    path = tmp_path / name
    path.write_text(text)
    os.chmod(path, mode)
    return path


# -- secret files --------------------------------------------------------------------------------


def test_token_file_is_read_when_only_its_owner_can_read_it(tmp_path) -> None:
    assert read_token_file(secret(tmp_path, "abcdefghijklmnop1234\n")) == "abcdefghijklmnop1234"
    assert read_token_file(secret(tmp_path, "abcdefghijklmnop1234", 0o640))


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o602])
def test_world_readable_token_file_is_refused_saying_how_to_fix_it(tmp_path, mode) -> None:
    path = secret(tmp_path, "abcdefghijklmnop1234", mode)
    with pytest.raises(SecretFileError, match=rf"every user \(mode 0{mode:o}\); run chmod 600"):
        read_token_file(path)


@pytest.mark.parametrize("text", ["", "short", "two words-and-more-text"])
def test_empty_short_or_spaced_token_is_refused(tmp_path, text: str) -> None:
    with pytest.raises(SecretFileError, match="API token file"):
        read_token_file(secret(tmp_path, text))


def test_manager_refuses_a_world_readable_token_file(tmp_path, capsys) -> None:
    path = secret(tmp_path, "abcdefghijklmnop1234", 0o644)
    assert manager_main(["--api-token-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "chmod 600" in err


def test_manager_refuses_tls_options_given_in_part(tmp_path, capsys) -> None:
    key = secret(tmp_path, "key", name="ctl.key")
    assert manager_main(["--ofp-ssl-privkey", str(key)]) == 2
    assert "missing --ofp-ssl-cert, --ofp-ssl-ca-cert" in capsys.readouterr().err


def test_keys_file_maps_nodes_to_keys_and_names_bad_lines(tmp_path) -> None:
    good = secret(tmp_path, "# node key\nfw1 fw1-key-0123456789abcdef\n"
                  "h2  h2-key-0123456789abcdef  # a comment\n")
    assert read_keys_file(good) == {"fw1": KEY, "h2": b"h2-key-0123456789abcdef"}
    bad = secret(tmp_path, "fw1 fw1-key-0123456789abcdef\nfw1 other-key-0123456789abcd\n",
                 name="bad")
    with pytest.raises(SecretFileError, match=r":2: node 'fw1' given twice"):
        read_keys_file(bad)
    assert read_key_file(secret(tmp_path, KEY.decode() + "\n", name="one")) == KEY


def test_redacted_store_url_hides_the_password() -> None:
    assert redact("redis://ctl:hunter2hunter2@10.0.0.254:6379/0") == \
        "redis://ctl:***@10.0.0.254:6379/0"


# -- signed samples ------------------------------------------------------------------------------


def sample(node: str = "fw1", cpu: float = 0.2, time: float = 1000.0) -> dict[str, Any]:
    return {"v": SAMPLE_VERSION, "node": node, "time": time, "interval": 1.0, "ttl": 3.0,
            "cpu": cpu, "cpus": 2, "mem_used": 1, "mem_total": 2, "ifaces": {}}


def test_signed_sample_is_accepted_and_tampering_is_refused() -> None:
    reader = NodeLoadReader({"fw1": KEY})
    signed = sign_sample(sample(), KEY)
    assert reader.read({"fw1": signed}, 1000.5)["fw1"].cpu == 0.2
    forged = {**signed, "cpu": 1.0}  # the signature no longer covers what it says
    assert reader.read({"fw1": forged}, 1000.5) == {}
    assert reader.rejected_counts == {"signature": 1}


def test_forged_unsigned_foreign_and_replayed_samples_are_refused_and_counted_once() -> None:
    reader = NodeLoadReader({"fw1": KEY, "h2": b"h2-key-0123456789abcdef"})
    old = sign_sample(sample(time=1000.0), KEY)
    new = sign_sample(sample(time=1001.0), KEY)
    assert "fw1" in reader.read({"fw1": new}, 1001.2)
    assert "fw1" in reader.read({"fw1": new}, 1001.4)  # the same sample read again
    for _ in range(3):  # written back by an attacker; read every period
        assert reader.read({"fw1": old}, 1001.5) == {}
    assert reader.read({"fw1": sign_sample(sample(time=1001.0, cpu=0.9), KEY)}, 1001.5) == {}
    assert reader.read({"fw1": sample(time=1001.6)}, 1001.7) == {}
    h2_signed_by_fw1 = sign_sample(sample("h2", time=1001.6), KEY)
    assert reader.read({"h2": h2_signed_by_fw1}, 1001.7) == {}
    assert reader.read({"x9": sign_sample(sample("x9", time=1001.6), KEY)}, 1001.7) == {}
    assert reader.rejected_counts == {"replay": 2, "unsigned": 1, "signature": 1,
                                      "unknown-node": 1}


def test_without_keys_unsigned_samples_pass_as_before() -> None:
    assert "fw1" in NodeLoadReader().read({"fw1": sample()}, 1000.5)


def test_a_fake_agent_claiming_full_load_moves_and_resizes_nothing(fat_tree) -> None:
    """With keys, a 100 % CPU sample not signed by fw1's key never reaches the engine;
    the same claim correctly signed does (so the test can tell the two apart)."""
    def run(signed_by: bytes) -> tuple[dict[str, Any], list[str], int]:
        clock = FakeClock()
        ctrl = fat_tree.controller(clock)
        ctrl.node_reader = NodeLoadReader({"fw1": KEY})  # as the app sets it up
        h1, h5 = fat_tree.host(1), fat_tree.host(5)
        for callback in ctrl.ensure_pair(h1.mac, h5.mac)[1].done:
            callback()
        before = {t.id: t.hops for t in ctrl.store.all()}
        for _ in range(3):
            clock.advance(1.0)
            fake = sign_sample(sample(cpu=1.0, time=clock()), signed_by)
            ctrl.store.put_node_load("fw1", fake, 3.0)
            change, allocations = ctrl.rebalance()
            for callback in change.done:
                callback()
        after = {t.id: t.hops for t in ctrl.store.all()}
        hot = [e.kind for e in ctrl.events if e.kind.startswith("dra-")]
        assert after == before and not allocations
        return ctrl.node_loads, hot, ctrl.moves

    loads, hot, moves = run(b"attacker-key-0123456789ab")
    assert loads == {} and hot == [] and moves == 0
    loads, hot, _ = run(KEY)
    assert loads["fw1"].cpu == 1.0 and "dra-hot" in hot


# -- packet-in rate limit ------------------------------------------------------------------------


def test_token_bucket_allows_the_burst_then_the_rate_per_port() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(rate=100, burst=10, clock=clock)
    assert sum(limiter.allow((1, 1)) for _ in range(50)) == 10
    assert sum(limiter.allow((1, 2)) for _ in range(5)) == 5  # another port is unaffected
    clock.advance(0.5)
    assert sum(limiter.allow((1, 1)) for _ in range(100)) == 10  # refilled up to the burst
    clock.advance(0.05)
    assert sum(limiter.allow((1, 1)) for _ in range(100)) == 5
    assert limiter.dropped == 40 + 90 + 95


def test_token_bucket_forgets_the_least_recent_port_beyond_its_bound() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(rate=1, burst=1, clock=clock, max_keys=2)
    assert limiter.allow("a") and limiter.allow("b") and not limiter.allow("a")
    assert limiter.allow("c")  # "b" is forgotten, not "a"
    assert not limiter.allow("a") and limiter.allow("b")
