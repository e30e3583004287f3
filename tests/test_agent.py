"""sdnscent-agent against a real redis-server: samples arrive and expire, bad ones
are rejected, a Redis restart is ridden out, and the command exits 0 on signals."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis_fixtures
from redis_fixtures import RedisServer, free_port

from sdnscent.agent import Agent, CgroupProbe, Sampler, main
from sdnscent.allocator import CgroupV1Allocator, Limits, v1_mounts
from sdnscent.store import MemoryStore, StoreError, TrailStore, open_store
from sdnscent.telemetry import NodeLoadReader, SampleError, validate_sample
from tests.conftest import wait_for

redis_server = redis_fixtures.redis_server  # the session server (tests that do not kill it)
AGENT = Path(sys.executable).parent / "sdnscent-agent"
INTERVAL = 0.1


def loads(store: TrailStore) -> dict[str, dict[str, Any]]:
    try:
        return store.node_loads()
    except StoreError:
        return {}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone (it gets killed and restarted)."""
    if redis_fixtures.REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (scripts/setup.sh installs it)")
    server = RedisServer(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Running:
    """An Agent's loop on a thread of this process."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.stop = threading.Event()
        self.thread = threading.Thread(target=agent.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


def test_a_sample_describes_this_host_and_passes_validation() -> None:
    sampler = Sampler("h1", INTERVAL, 3 * INTERVAL)
    try:
        time.sleep(INTERVAL)
        sample = sampler.sample()
    finally:
        sampler.close()
    assert validate_sample(sample, now=time.time(), node="h1") == sample
    assert 0.0 <= sample["cpu"] <= 1.0 and 0 < sample["mem_used"] <= sample["mem_total"]
    # rates of every interface but lo from the second reading on (psutil agrees on names)
    assert set(sample["ifaces"]) == set(psutil.net_io_counters(pernic=True)) - {"lo"}
    for rates in sample["ifaces"].values():
        assert rates["rx_bps"] >= 0 and rates["tx_bps"] >= 0


def test_samples_reach_node_loads_and_expire_with_their_ttl(redis_server: RedisServer) -> None:
    store = open_store(redis_server.url)
    running = Running(Agent(redis_server.url, "agent-ttl", INTERVAL, ttl=0.5))
    try:
        sample = wait_for(lambda: loads(store).get("agent-ttl"))
        (load,) = NodeLoadReader().read({"agent-ttl": sample}, time.time()).values()
        assert load.node == "agent-ttl" and 0 <= load.cpu <= 1
        first = sample["time"]
        wait_for(lambda: loads(store)["agent-ttl"]["time"] > first)  # refreshed
    finally:
        running.finish()
    stopped = time.time()
    wait_for(lambda: "agent-ttl" not in loads(store), timeout=3.0)
    assert time.time() - stopped < 1.5  # a dead agent's data is gone after its ttl
    store.close()


def test_malformed_and_stale_samples_are_rejected_by_the_reader(
        redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    store = open_store(redis_server.url)
    sampler = Sampler("agent-good", INTERVAL, 60.0)
    try:
        good = sampler.sample()
    finally:
        sampler.close()
    store.put_node_load("agent-good", good, 60)
    store.put_node_load("agent-bad", dict(good, node="agent-bad", cpu="high"), 60)
    store.put_node_load("agent-old", dict(good, node="agent-old", time=good["time"] - 30,
                                          ttl=5.0), 60)
    store.put_node_load("agent-liar", dict(good, node="agent-other"), 60)
    reader = NodeLoadReader()
    with caplog.at_level(logging.WARNING, logger="sdnscent.telemetry"):
        fresh = reader.read(loads(store), time.time())
    found = {n for n in fresh if n.startswith("agent-")}
    assert found == {"agent-good"}
    text = caplog.text
    assert "node 'agent-bad': field 'cpu': expected a finite number, got str" in text
    assert "node 'agent-old': stale: taken 3" in text
    assert "node 'agent-liar': field 'node': sample names node 'agent-other'" in text
    store.close()


class BrokenSampler:
    """Returns samples that validate_sample() refuses (a probe gone wrong)."""

    def __init__(self) -> None:
        self.calls = 0

    def sample(self) -> dict[str, Any]:
        self.calls += 1
        return validate_sample({"v": 1, "node": "x"})

    def close(self) -> None:
        pass


def test_the_writer_never_stores_a_malformed_sample(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    sampler = BrokenSampler()
    agent = Agent("memory://", "h1", INTERVAL, opener=lambda _url: store,
                  sampler=sampler)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="sdnscent.agent"):
        running = Running(agent)
        wait_for(lambda: sampler.calls >= 3)
        running.finish()
    assert store.node_loads() == {}
    rejected = [r for r in caplog.records if "event=sample-rejected" in r.getMessage()]
    assert len(rejected) == 1 and "node 'x': field 'cpu': missing" in rejected[0].getMessage()
    with pytest.raises(SampleError):
        sampler.sample()


def test_the_agent_rides_out_a_redis_restart(own_redis: RedisServer,
                                            caplog: pytest.LogCaptureFixture) -> None:
    store = open_store(own_redis.url)
    agent = Agent(own_redis.url, "agent-restart", INTERVAL, max_backoff=0.4)
    with caplog.at_level(logging.WARNING, logger="sdnscent.agent"):
        running = Running(agent)
        try:
            wait_for(lambda: loads(store).get("agent-restart"))
            written = agent.written
            own_redis.stop()
            wait_for(lambda: agent.lost >= 3)
            assert running.thread.is_alive()
            restarted = time.time()
            own_redis.start()  # same port, empty data set
            sample = wait_for(lambda: loads(store).get("agent-restart"), timeout=5.0)
            assert sample["time"] >= restarted - INTERVAL
            wait_for(lambda: agent.written >= written + 3)
        finally:
            running.finish()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("event=store-down" in m for m in messages) == 1  # once per outage
    assert sum("event=store-up" in m for m in messages) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    store.close()


def test_the_agent_waits_for_a_store_that_is_not_up_yet(tmp_path: Path) -> None:
    if redis_fixtures.REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(free_port(), tmp_path)
    agent = Agent(server.url, "agent-early", INTERVAL, max_backoff=0.2)
    running = Running(agent)
    try:
        wait_for(lambda: agent.lost >= 2)
        server.start()
        store = open_store(server.url)
        wait_for(lambda: loads(store).get("agent-early"))
        store.close()
    finally:
        running.finish()
        server.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_command_writes_samples_and_exits_0_on_a_signal(redis_server: RedisServer,
                                                            signum: int) -> None:
    node = f"agent-cmd-{signum}"
    proc = subprocess.Popen([str(AGENT), "--store", redis_server.url, "--node", node,
                             "--interval", str(INTERVAL)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = open_store(redis_server.url)
    try:
        wait_for(lambda: loads(store).get(node), timeout=10.0)
    finally:
        os.kill(proc.pid, signum)
        out, err = proc.communicate(timeout=10)
        store.close()
    assert proc.returncode == 0
    assert out == "" and err == ""  # quiet by default


@pytest.mark.parametrize(("args", "message"), [
    (["--store", "redis://h:x/0", "--node", "h1"], "Port could not be cast"),
    (["--store", "memory://", "--node", "h1"], "lives in one process"),
    (["--store", "redis://127.0.0.1:1/0", "--node", "a b"], "node name 'a b'"),
    (["--store", "redis://127.0.0.1:1/0", "--node", "h1", "--interval", "0"], "--interval"),
    (["--store", "redis://127.0.0.1:1/0", "--node", "h1", "--ttl", "0.5"], "--ttl"),
])
def test_bad_arguments_exit_2_naming_the_problem(args: list[str], message: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def _cgroup_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create cgroups"
    if not {"cpu", "cpuacct", "memory"} <= v1_mounts().keys():
        return "no cgroup v1 cpu, cpuacct and memory hierarchies"
    return None


@pytest.mark.skipif(_cgroup_reason() is not None, reason=_cgroup_reason() or "")
def test_the_cgroup_probe_measures_against_the_quota(tmp_path: Path) -> None:
    name = f"sdnscent-test-{os.getpid()}"
    mounts = v1_mounts()
    allocator = CgroupV1Allocator(mounts)  # cpu, memory and (mounted apart here) cpuacct
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        allocator.attach(name, busy.pid)
        allocator.apply(name, Limits(cpu=0.5, memory=256 << 20))
        proc_cgroup = tmp_path / "cgroup"  # what /proc/self/cgroup says inside that host
        proc_cgroup.write_text(f"3:memory:/{name}\n2:cpuacct:/{name}\n1:cpu:/{name}\n0::/\n")
        probe = CgroupProbe(proc_cgroup, mounts)
        assert probe.active and probe.sample(time.monotonic()) is None  # the baseline
        time.sleep(0.5)
        group = probe.sample(time.monotonic())
        assert group is not None
        assert group["cpu_limit"] == 0.5 and group["mem_limit"] == 256 << 20
        # throttled to half a core (one CFS period of slack; less on a busy machine)
        assert 0.05 < group["cpu_cores"] <= 0.65
    finally:
        busy.kill()
        busy.wait()
        allocator.remove(name)
