"""Host load and the cgroups allocator on the real thing: sdnscent-agent runs inside
Mininet hosts (the firewall NF in its own cgroup), the controller shows their load,
a busy firewall on a trail gets a larger CPU quota (read back from the cgroup files),
and the agents ride out a Redis restart while installed trails keep forwarding."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mininet_tests.harness import REPO, ScentNet, ping, running_net, wait_for
from mininet_tests.test_policy import POLICY, app_trail, send_udp
from sdnscent.allocator import AllocatorError, CgroupV1Allocator
from tests.redisproc import REDIS_SERVER, RedisServer, running_redis
from topologies.nfchain import NFChainTopo

FW_CPU = 0.1  # of the machine: Mininet sets the quota to 0.1 x period x cores


@pytest.fixture(scope="module")
def redis_server(testbed: None) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (scripts/setup.sh installs it)")
    if not Path("/sys/fs/cgroup/cpu").is_dir():
        pytest.skip("no cgroup v1 cpu hierarchy")
    with running_redis("sdnscent-alloc-redis-") as server:
        yield server


@pytest.fixture(scope="module")
def anet(redis_server: RedisServer) -> Iterator[tuple[ScentNet, dict[str, Any]]]:
    """The NF fabric with fw1 in a cgroup; agents in fw1 and h1 (over Redis' Unix socket)."""
    with running_net(NFChainTopo(firewall_cpu=FW_CPU),
                     ["--store", redis_server.url, "--allocator", "cgroup"],
                     policy=POLICY) as net:
        agents = {name: net.host(name).popen(
            [sys.executable, "-m", "sdnscent.agent",
             "--store", redis_server.unix_url, "--node", name, "--interval", "0.5"],
            cwd=str(REPO)) for name in ("fw1", "h1")}
        try:
            yield net, agents
        finally:
            for proc in agents.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    assert proc.wait(10) == 0
            try:  # the memory group is the allocator's (Mininet removes cpu/cpuacct)
                CgroupV1Allocator().remove("fw1", controllers=("memory",))
            except AllocatorError:
                pass


def quota(node: str) -> int:
    return int((Path("/sys/fs/cgroup/cpu") / node / "cpu.cfs_quota_us").read_text())


def node_times(net: ScentNet) -> dict[str, float]:
    return {n["node"]: n["time"] for n in net.ctl.get("/nodes")["nodes"]}


def test_agents_report_and_a_busy_firewall_gets_more_cpu(
        anet: tuple[ScentNet, dict[str, Any]]) -> None:
    net, _ = anet
    def measured() -> dict[str, Any] | None:
        nodes = {n["node"]: n for n in net.ctl.get("/nodes")["nodes"]}
        if "h1" in nodes and nodes.get("fw1", {}).get("cpu_cores") is not None:
            return nodes["fw1"]
        return None

    # fw1's CPU against its quota comes from its cgroup, which the controller's
    # allocator measures (inside a Mininet host the agent cannot see /sys/fs/cgroup)
    fw1 = wait_for(measured, 15, "fw1 (with its cgroup's CPU) and h1 in /nodes")
    assert fw1["cpu_limit"] == pytest.approx(quota("fw1") / 100000, rel=0.01)
    h1, h3 = net.host("h1"), net.host("h3")
    assert ping(h1, h3.IP())
    send_udp(h1, h3.IP(), 5001, 20)
    trail = app_trail(net, "payroll", h1.IP(), h3.IP())
    assert any(h.get("via") == "fw1" for h in trail["hops"])  # through the firewall
    before = quota("fw1")
    burner = net.host("fw1").popen(["sh", "-c", "while :; do :; done"])  # in fw1's cgroup
    try:
        started = time.monotonic()
        wait_for(lambda: quota("fw1") > before, 20, "a larger CPU quota for fw1", interval=0.2)
        grown = time.monotonic() - started
    finally:
        burner.kill()
        burner.wait(5)
    after = quota("fw1")

    def allocated() -> list[dict[str, Any]]:
        return [e for e in net.ctl.get("/events")["events"]
                if e["kind"] in ("allocation", "dra-alloc") and "fw1" in e["message"]]

    events = wait_for(lambda: [e for e in allocated() if e["kind"] == "allocation"] and
                      allocated(), 5, "the allocation event")
    print(f"fw1 quota {before} -> {after} us per 100 ms, {grown:.1f} s after it got busy; "
          f"{[e['message'] for e in events[-2:]]}")
    assert after > before


def test_agents_and_forwarding_ride_out_a_redis_restart(
        anet: tuple[ScentNet, dict[str, Any]], redis_server: RedisServer) -> None:
    net, agents = anet
    h1, h3 = net.host("h1"), net.host("h3")
    assert ping(h1, h3.IP())
    redis_server.stop()
    down = time.time()
    time.sleep(2.0)
    assert ping(h1, h3.IP())  # installed trails forward without the store
    redis_server.start()
    back = time.time()
    wait_for(lambda: all(t > back for t in node_times(net).values())
             and {"fw1", "h1"} <= set(node_times(net)), 20, "fresh samples after the restart")
    assert all(proc.poll() is None for proc in agents.values())  # no agent crashed
    print(f"redis down {back - down:.1f} s; agents writing again "
          f"{time.time() - back:.1f} s after it came back")
