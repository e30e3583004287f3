"""Real redis-server processes on loopback for tests and benchmarks (no pytest).

One server or a 3-master cluster, on free ports, each in its own directory,
without persistence, stopped by pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
START_TIMEOUT = 10.0  # s for a server to answer PING
CLUSTER_TIMEOUT = 20.0  # s for cluster_state:ok


def free_port(cluster: bool = False) -> int:
    """A loopback port nobody listens on (and port+10000 too, for a cluster bus)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if not cluster:
            return port
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free loopback port")


class RedisServer:
    """One redis-server on 127.0.0.1:port, in its own directory."""

    def __init__(self, port: int, workdir: Path, cluster: bool = False) -> None:
        self.port = port
        self.dir = workdir
        self.cluster = cluster
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def socket(self) -> Path:
        """Its Unix socket: reachable from every network namespace (Mininet hosts)."""
        return self.dir / "redis.sock"

    @property
    def unix_url(self) -> str:
        return f"redis+unix://{self.socket}"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        args = [REDIS_SERVER or "redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
                "--save", "", "--appendonly", "no", "--dir", str(self.dir),
                "--daemonize", "no", "--logfile", str(self.dir / "redis.log")]
        if not self.cluster:
            args += ["--unixsocket", str(self.socket), "--unixsocketperm", "777"]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", "5000"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        client = self.client()
        try:
            while True:
                if self.proc.poll() is not None:
                    log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server on {self.port} exited: {log}")
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server on {self.port} did not start") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server (SIGTERM to its pid, SIGKILL if it lingers)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def client(self) -> redis.Redis:
        """A plain client of this one server."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2,
                           socket_connect_timeout=1)


@contextlib.contextmanager
def running_redis(prefix: str = "sdnscent-redis-") -> Iterator[RedisServer]:
    """A started redis-server in a temporary directory, stopped (by pid) on exit."""
    with tempfile.TemporaryDirectory(prefix=prefix) as workdir:
        server = RedisServer(free_port(), Path(workdir))
        try:
            server.start()  # stopped even when it does not answer in time
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def running_cluster(prefix: str = "sdnscent-cluster-") -> Iterator[RedisClusterNodes]:
    """A started 3-master Redis Cluster in a temporary directory, stopped on exit."""
    with tempfile.TemporaryDirectory(prefix=prefix) as workdir:
        nodes = start_cluster(Path(workdir))
        try:
            yield nodes
        finally:
            for server in nodes.servers:
                server.stop()


class RedisClusterNodes:
    """Three cluster-enabled redis-servers joined into one cluster (no replicas)."""

    def __init__(self, servers: list[RedisServer]) -> None:
        self.servers = servers

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.servers[0].port}"

    def server(self, port: int) -> RedisServer:
        """The node listening on `port`."""
        return next(s for s in self.servers if s.port == port)

    def wait_ok(self, timeout: float = CLUSTER_TIMEOUT) -> None:
        """Wait until every node reports cluster_state:ok."""
        deadline = time.monotonic() + timeout
        while True:
            states = []
            for server in self.servers:
                client = server.client()
                try:
                    states.append(str(client.execute_command("CLUSTER INFO").get("cluster_state")))
                except redis.RedisError as exc:
                    states.append(str(exc))
                finally:
                    client.close()
            if all(state == "ok" for state in states):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster not ok after {timeout} s: {states}")
            time.sleep(0.05)


def start_cluster(workdir: Path, masters: int = 3) -> RedisClusterNodes:
    """Start `masters` cluster-enabled servers under `workdir` and join them.

    On failure the servers already started are stopped before raising.
    """
    servers = []
    try:
        for i in range(masters):
            node_dir = workdir / f"node{i}"
            node_dir.mkdir(parents=True)
            server = RedisServer(free_port(cluster=True), node_dir, cluster=True)
            servers.append(server)
            server.start()
        done = subprocess.run(
            [REDIS_CLI or "redis-cli", "--cluster", "create",
             *(f"127.0.0.1:{s.port}" for s in servers),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout}{done.stderr}")
        nodes = RedisClusterNodes(servers)
        nodes.wait_ok()
        return nodes
    except BaseException:
        for server in servers:
            server.stop()
        raise
