"""sdnscent-agent: a host's CPU, memory and per-interface rates, written to the
store every interval with a TTL (so a dead agent's data expires instead of lying).

Runs on any Linux host and inside Mininet hosts (their network namespaces):
interface counters come from netlink (pyroute2, stats64) of the namespace the
agent runs in. Survives store outages (retry with backoff, one log line per
outage); SIGTERM and SIGINT end it with status 0. See docs/telemetry.rst.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import psutil
from pyroute2 import IPRoute

from .allocator import UNLIMITED_MEMORY, v1_mounts
from .secretfile import SecretFileError, read_key_file
from .store import (
    StoreError,
    TrailStore,
    check_node_name,
    check_shared_url,
    open_store,
    redact,
)
from .telemetry import SAMPLE_VERSION, SampleError, counter_delta, sign_sample, validate_sample

LOG = logging.getLogger("sdnscent.agent")

DEFAULT_INTERVAL = 1.0  # s between samples
TTL_FACTOR = 3.0  # a sample lives this many intervals
MAX_BACKOFF = 10.0  # s between store retries during an outage, at most
SKIP_IFACES = frozenset({"lo"})


class CgroupProbe:
    """CPU and memory of the cgroup the agent runs in (cgroups v1), if it has its own.

    A Mininet CPULimitedHost puts its shell (and so the agent) in cpu,cpuacct:/<host>;
    usage relative to that cgroup's quota is what its allocation should follow.
    """

    def __init__(self, proc_cgroup: Path = Path("/proc/self/cgroup"),
                 mounts: dict[str, Path] | None = None) -> None:
        mounts = v1_mounts() if mounts is None else mounts
        paths: dict[str, str] = {}
        try:
            for line in proc_cgroup.read_text().splitlines():
                _, controllers, path = line.split(":", 2)
                for controller in controllers.split(","):
                    paths[controller] = path
        except (OSError, ValueError):
            pass
        self.dirs = {c: mounts[c] / paths[c].lstrip("/") for c in ("cpu", "cpuacct", "memory")
                     if c in mounts and c in paths}
        # only a cgroup of its own says something about this host
        self.active = paths.get("cpuacct", "/") != "/" and "cpuacct" in self.dirs
        self._last: tuple[int, float] | None = None

    def sample(self, now: float) -> dict[str, Any] | None:
        """{"cpu_cores", "cpu_limit", "mem_used", "mem_limit"}, or None (no cgroup, first call)."""
        if not self.active:
            return None
        usage = _read_int(self.dirs["cpuacct"] / "cpuacct.usage")
        if usage is None:
            return None
        last, self._last = self._last, (usage, now)
        if last is None or now <= last[1] or usage < last[0]:
            return None
        quota = _read_int(self.dirs["cpu"] / "cpu.cfs_quota_us") if "cpu" in self.dirs else None
        period = _read_int(self.dirs["cpu"] / "cpu.cfs_period_us") if "cpu" in self.dirs else None
        mem_dir = self.dirs.get("memory")
        mem_used = _read_int(mem_dir / "memory.usage_in_bytes") if mem_dir else None
        mem_limit = _read_int(mem_dir / "memory.limit_in_bytes") if mem_dir else None
        return {
            "cpu_cores": (usage - last[0]) / 1e9 / (now - last[1]),
            "cpu_limit": quota / period if quota and quota > 0 and period else None,
            "mem_used": mem_used or 0,
            "mem_limit": mem_limit if mem_limit and mem_limit < UNLIMITED_MEMORY else None,
        }


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class Sampler:
    """Builds validated load samples of this host (psutil + netlink counters)."""

    def __init__(self, node: str, interval: float, ttl: float,
                 wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic,
                 cgroup: CgroupProbe | None = None) -> None:
        self.node, self.interval, self.ttl = node, interval, ttl
        self.wall, self.mono = wall, mono
        self.cgroup = cgroup if cgroup is not None else CgroupProbe()
        self._ipr = IPRoute()
        self._counters: dict[str, tuple[int, int, float]] = {}
        # the first readings only set the baselines of the rates
        psutil.cpu_percent(None)
        self.interfaces()
        self.cgroup.sample(self.mono())

    def close(self) -> None:
        """Release the netlink socket."""
        self._ipr.close()

    def interfaces(self) -> dict[str, dict[str, float]]:
        """rx/tx bit/s of every interface since the last call (none on the first)."""
        now = self.mono()
        seen: dict[str, tuple[int, int, float]] = {}
        out: dict[str, dict[str, float]] = {}
        for msg in self._ipr.get_links():
            name, stats = msg.get("ifname"), msg.get("stats64")
            if not name or name in SKIP_IFACES or stats is None:
                continue
            rx, tx = int(stats.get("rx_bytes") or 0), int(stats.get("tx_bytes") or 0)
            seen[name] = (rx, tx, now)
            last = self._counters.get(name)
            if last is None or now <= last[2]:
                continue
            drx, dtx = counter_delta(last[0], rx), counter_delta(last[1], tx)
            if drx is None or dtx is None:
                continue  # the interface was re-created: rates again next time
            out[name] = {"rx_bps": drx * 8 / (now - last[2]), "tx_bps": dtx * 8 / (now - last[2])}
        self._counters = seen
        return out

    def sample(self) -> dict[str, Any]:
        """A load sample; SampleError if it does not pass validate_sample()."""
        mem = psutil.virtual_memory()
        cpu = psutil.cpu_percent(None) / 100.0
        data: dict[str, Any] = {
            "v": SAMPLE_VERSION, "node": self.node, "time": self.wall(),
            "interval": self.interval, "ttl": self.ttl,
            "cpu": min(1.0, max(0.0, cpu)) if math.isfinite(cpu) else cpu,
            "cpus": psutil.cpu_count() or 1,
            "mem_used": int(mem.total - mem.available), "mem_total": int(mem.total),
            "ifaces": self.interfaces(),
        }
        group = self.cgroup.sample(self.mono())
        if group is not None:
            data["cgroup"] = group
        return validate_sample(data)


class Agent:
    """The sample-and-write loop, with reconnects and backoff."""

    def __init__(self, url: str, node: str, interval: float = DEFAULT_INTERVAL,
                 ttl: float | None = None, max_backoff: float = MAX_BACKOFF,
                 opener: Callable[[str], TrailStore] = open_store,
                 sampler: Sampler | None = None, key: bytes | None = None) -> None:
        self.url, self.node, self.interval = url, node, interval
        self.key = key  # HMAC key: samples are signed with it (docs/security.rst)
        self.ttl = ttl if ttl is not None else TTL_FACTOR * interval
        self.max_backoff = max(max_backoff, interval)
        self.opener = opener
        self.sampler = sampler or Sampler(node, interval, self.ttl)
        self.store: TrailStore | None = None
        self.written = 0
        self.lost = 0  # samples not written during outages
        self._down_since: float | None = None
        self._bad_sample: str | None = None

    def _write(self, sample: dict[str, Any]) -> bool:
        """Write one sample; False (logged once per outage) if the store failed."""
        try:
            if self.store is None:
                self.store = self.opener(self.url)
            self.store.put_node_load(self.node, sample, self.ttl)
        except Exception as exc:  # any store failure is an outage to ride out
            if self._down_since is None:
                self._down_since = time.monotonic()
                reason = str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
                LOG.warning("event=store-down node=%s store=%s error=%r retrying=with-backoff",
                            self.node, redact(self.url), reason)
            self.lost += 1
            return False
        self.written += 1
        if self._down_since is not None:
            LOG.warning("event=store-up node=%s store=%s down_s=%.1f lost_samples=%d",
                        self.node, redact(self.url), time.monotonic() - self._down_since,
                        self.lost)
            self._down_since = None
            self.lost = 0
        return True

    def _sample(self) -> dict[str, Any] | None:
        try:
            sample = self.sampler.sample()
        except SampleError as exc:
            if str(exc) != self._bad_sample:
                LOG.error("event=sample-rejected node=%s error=%r", self.node, str(exc))
            self._bad_sample = str(exc)
            return None
        except Exception as exc:  # a failed probe must not end the agent
            LOG.error("event=sample-failed node=%s error=%r", self.node,
                      f"{type(exc).__name__}: {exc}")
            return None
        self._bad_sample = None
        return sign_sample(sample, self.key) if self.key is not None else sample

    def run(self, stop: threading.Event) -> None:
        """Sample every interval until `stop` is set; back off while the store is down."""
        backoff = 0.0
        retry_at = 0.0
        deadline = time.monotonic()
        LOG.info("event=start node=%s store=%s interval=%g ttl=%g", self.node,
                 redact(self.url), self.interval, self.ttl)
        try:
            while not stop.is_set():
                sample = self._sample()  # every interval: rates stay per interval
                now = time.monotonic()
                if sample is not None:
                    if now < retry_at:
                        self.lost += 1
                    elif self._write(sample):
                        backoff = 0.0
                    else:
                        backoff = min(self.max_backoff, backoff * 2 or self.interval)
                        retry_at = time.monotonic() + backoff
                deadline += self.interval
                if deadline < time.monotonic():  # fell behind (suspended, slow store)
                    deadline = time.monotonic() + self.interval
                stop.wait(max(0.0, deadline - time.monotonic()))
        finally:
            self.close()
            LOG.info("event=stop node=%s written=%d", self.node, self.written)

    def close(self) -> None:
        """Release the store and the netlink socket."""
        if self.store is not None:
            self.store.close()
            self.store = None
        self.sampler.close()


def build_parser() -> argparse.ArgumentParser:
    """The command line of sdnscent-agent."""
    parser = argparse.ArgumentParser(
        prog="sdnscent-agent",
        description="Write this host's CPU, memory and interface rates to the sdnscent store.")
    parser.add_argument("--store", required=True,
                        help="redis://host:port/db or redis+cluster://host:port")
    parser.add_argument("--node", required=True, help="this host's name (e.g. the Mininet host)")
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL,
                        help="seconds between samples (default %(default)s)")
    parser.add_argument("--ttl", type=float, default=None,
                        help=f"seconds a sample lives (default {TTL_FACTOR:g} x interval)")
    parser.add_argument("--key-file", metavar="FILE",
                        help="this node's telemetry key (mode 0600): samples are signed with "
                             "HMAC-SHA256; the controller's --telemetry-keys holds the same key")
    parser.add_argument("--max-backoff", type=float, default=MAX_BACKOFF,
                        help="longest wait between store retries (default %(default)s s)")
    parser.add_argument("--log-level", default="warning",
                        choices=["debug", "info", "warning", "error"],
                        help="default %(default)s: only outages and rejected samples")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: run until SIGTERM/SIGINT (status 0); bad arguments are status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        check_node_name(args.node)
        check_shared_url(args.store)
    except StoreError as exc:
        parser.error(str(exc))
    if not (math.isfinite(args.interval) and 0 < args.interval <= 3600):
        parser.error(f"--interval {args.interval}: expected seconds in (0, 3600]")
    if args.ttl is not None and not (math.isfinite(args.ttl) and args.ttl >= args.interval):
        parser.error(f"--ttl {args.ttl}: expected seconds >= the interval")
    key = None
    if args.key_file:
        try:
            key = read_key_file(args.key_file)
        except SecretFileError as exc:
            parser.error(str(exc))
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent = Agent(args.store, args.node, args.interval, args.ttl, args.max_backoff, key=key)
    agent.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
