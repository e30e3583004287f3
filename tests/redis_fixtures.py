"""pytest fixtures: a standalone redis-server and a 3-master Redis Cluster, started
once per session (tests/redisproc.py), stopped by pid at teardown. Skipped, not
failed, when redis-server is not installed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.redisproc import (
    REDIS_CLI,
    REDIS_SERVER,
    RedisClusterNodes,
    RedisServer,
    free_port,
    running_cluster,
    running_redis,
)

__all__ = ["RedisClusterNodes", "RedisServer", "free_port", "redis_cluster", "redis_server"]


def _need_redis() -> None:
    if REDIS_SERVER is None or REDIS_CLI is None:
        pytest.skip("redis-server is not installed (scripts/setup.sh installs it)")


def until(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll `check` every 20 ms until it returns something true or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A standalone redis-server for the whole session."""
    _need_redis()
    with running_redis() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterNodes]:
    """A 3-master Redis Cluster for the whole session."""
    _need_redis()
    with running_cluster() as nodes:
        yield nodes
