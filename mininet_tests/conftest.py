"""Fixtures for the Mininet tests: root, Open vSwitch, one network per module."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from mininet_tests.harness import ScentNet, running_net
from tests.redisproc import REDIS_SERVER, RedisServer, running_redis
from topologies.fattree import FatTreeTopo

RERUNS = 1  # real timing on a shared 2-core machine: one retry, reported as "rerun"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test here as a Mininet test, retried once if it fails."""
    for item in items:
        if "mininet_tests" in str(item.fspath):
            item.add_marker(pytest.mark.mininet)
            item.add_marker(pytest.mark.flaky(reruns=RERUNS))


@pytest.fixture(scope="session")
def testbed() -> None:
    """Skip unless root with Open vSwitch and Mininet available."""
    if os.geteuid() != 0:
        pytest.skip("Mininet tests need root")
    for tool in ("ovs-vsctl", "ovs-ofctl", "tcpdump", "mn"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed: run `make setup`")


@pytest.fixture(scope="module")
def fattree(testbed: None) -> Iterator[ScentNet]:
    """A k=4 fat-tree (20 switches, 16 hosts) under a fresh controller."""
    with running_net(FatTreeTopo(k=4)) as net:
        yield net


@pytest.fixture(scope="module")
def redis_server(testbed: None, request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A redis-server of the test module, without persistence, stopped by pid."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (scripts/setup.sh installs it)")
    name = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    with running_redis(f"sdnscent-{name}-redis-") as server:
        yield server
