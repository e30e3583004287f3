"""Host CPU and memory allocation: the Allocator backend interface, a cgroups v1
backend (the one Mininet's CPULimitedHost uses) and a no-op backend.

The DRA engine (sdnscent.dra) decides Allocations as data; a backend applies
them. A Kubernetes backend (patching a pod's resources) is a later step: it
implements the same three methods. See docs/telemetry.rst.
"""

from __future__ import annotations

import abc
import errno
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from .dra import Allocation, HostLoad

CGROUP_ROOT = Path("/sys/fs/cgroup")
MOUNTINFO = Path("/proc/self/mountinfo")
DEFAULT_PERIOD_US = 100_000  # CFS period, as Mininet's CPULimitedHost uses
MIN_QUOTA_US = 1_000  # the kernel refuses smaller quotas
UNLIMITED_MEMORY = 1 << 62  # memory.limit_in_bytes at or above this means "no limit"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class AllocatorError(RuntimeError):
    """A limit could not be set or read; the message names the node and file."""


@dataclass(frozen=True)
class Limits:
    """CPU (cores; 0.5 = half a core) and memory (bytes) of a node; None: unlimited."""

    cpu: float | None = None
    memory: int | None = None

    def __post_init__(self) -> None:
        if self.cpu is not None and not self.cpu > 0:
            raise AllocatorError(f"CPU limit {self.cpu!r} must be > 0 cores (or None)")
        if self.memory is not None and not self.memory > 0:
            raise AllocatorError(f"memory limit {self.memory!r} must be > 0 bytes (or None)")


@dataclass(frozen=True)
class Usage:
    """A reading of a node's resource counters (cumulative CPU time, memory now)."""

    cpu_ns: int  # CPU time used since the group was made
    cpu_limit: float | None  # cores
    mem_used: int
    mem_limit: int | None


class UsageMeter:
    """Turns Usage readings into the engine's HostLoad (CPU as a rate needs two readings).

    The controller measures the nodes whose cgroups it manages itself: an agent
    inside a Mininet host cannot see the cgroup file system (the host mounts its
    own /sys over it).
    """

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, float]] = {}

    def host_load(self, node: str, usage: Usage, now: float, machine_cpus: int,
                  machine_memory: int) -> HostLoad | None:
        """The node's load from this reading and the previous one (None on the first)."""
        last = self._last.get(node)
        self._last[node] = (usage.cpu_ns, now)
        if last is None or now <= last[1] or usage.cpu_ns < last[0]:
            return None
        cores = (usage.cpu_ns - last[0]) / 1e9 / (now - last[1])
        return HostLoad(node, now, cores / (usage.cpu_limit or machine_cpus),
                        usage.mem_used / (usage.mem_limit or machine_memory),
                        usage.cpu_limit, usage.mem_limit, usage.mem_used, cores)


def check_name(node: str) -> str:
    """`node` if it can name a cgroup (letters, digits, _ . -; <= 64); else AllocatorError."""
    if not isinstance(node, str) or not _NAME_RE.match(node):
        raise AllocatorError(f"node name {node!r}: expected 1-64 letters, digits, '_', '.' "
                             "or '-', not starting with a punctuation mark")
    return node


class Allocator(abc.ABC):
    """Where a node's CPU and memory limits are applied."""

    @abc.abstractmethod
    def apply(self, node: str, limits: Limits) -> Limits:
        """Set the node's limits; return them as read back from the system."""

    @abc.abstractmethod
    def read(self, node: str) -> Limits:
        """The node's limits now."""

    def release(self, node: str) -> None:
        """Lift the node's limits (and remove what this backend created for it)."""
        self.apply(node, Limits())

    def usage(self, node: str) -> Usage | None:
        """What the node uses now as this backend measures it (None: not measured here)."""
        return None

    def apply_allocation(self, allocation: Allocation) -> Limits:
        """Apply a DRA engine decision."""
        return self.apply(allocation.node, Limits(allocation.cpu, allocation.memory))


class NullAllocator(Allocator):
    """Remembers limits and changes nothing (no root, no cgroups, or dry runs)."""

    def __init__(self) -> None:
        self._limits: dict[str, Limits] = {}
        self._lock = threading.Lock()

    def apply(self, node: str, limits: Limits) -> Limits:
        with self._lock:
            self._limits[check_name(node)] = limits
        return limits

    def read(self, node: str) -> Limits:
        with self._lock:
            return self._limits.get(check_name(node), Limits())

    def release(self, node: str) -> None:
        with self._lock:
            self._limits.pop(node, None)


def v1_mounts(mountinfo: Path = MOUNTINFO) -> dict[str, Path]:
    """Mount point of each cgroup v1 controller (e.g. {"cpu": /sys/fs/cgroup/cpu, ...}).

    Controllers mounted together (cpu,cpuacct) map to the same directory.
    """
    out: dict[str, Path] = {}
    try:
        lines = mountinfo.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not sep or len(fields) < 5 or len(rest) < 3 or rest[0] != "cgroup":
            continue
        mount_point = Path(fields[4].replace("\\040", " "))
        for option in rest[2].split(","):
            if option not in ("rw", "ro") and "=" not in option:
                out.setdefault(option, mount_point)
    return out


class CgroupV1Allocator(Allocator):
    """cgroups v1: cpu.cfs_period_us/cpu.cfs_quota_us and memory.limit_in_bytes.

    A node's cgroup is <mount>/<parent>/<node> in the cpu and the memory
    hierarchies; with parent "" that is /<node>, the cgroup Mininet's
    CPULimitedHost creates (cgcreate -g cpu,cpuacct,cpuset:/<host>). Mininet
    creates no memory cgroup: apply() creates it and moves the processes of the
    node's cpu cgroup into it, so the memory limit covers the host's processes
    (likewise a cpuacct group where cpuacct is mounted apart from cpu).
    """

    def __init__(self, mounts: Mapping[str, Path] | None = None, parent: str = "",
                 period_us: int = DEFAULT_PERIOD_US) -> None:
        mounts = dict(v1_mounts() if mounts is None else mounts)
        missing = [c for c in ("cpu", "memory") if c not in mounts]
        if missing:
            raise AllocatorError(f"cgroup v1 controller(s) {', '.join(missing)} not mounted "
                                 "(cgroup v2 only?)")
        if any(not _NAME_RE.match(part) for part in parent.strip("/").split("/") if parent):
            raise AllocatorError(f"cgroup parent {parent!r} is not a relative path of names")
        if not 1_000 <= period_us <= 1_000_000:
            raise AllocatorError(f"CFS period {period_us} us must be in 1000..1000000")
        self.mounts = {"cpu": Path(mounts["cpu"]), "memory": Path(mounts["memory"])}
        # cpuacct mounted apart from cpu (as on Debian 12 here): keep the node's
        # processes in a cpuacct group of its own too, where the agent measures them
        if "cpuacct" in mounts and Path(mounts["cpuacct"]) != self.mounts["cpu"]:
            self.mounts["cpuacct"] = Path(mounts["cpuacct"])
        self.controllers = tuple(self.mounts)
        self.parent = parent.strip("/")
        self.period_us = period_us

    def path(self, controller: str, node: str) -> Path:
        """The node's cgroup directory in the `controller` hierarchy."""
        base = self.mounts[controller]
        return (base / self.parent if self.parent else base) / check_name(node)

    def ensure(self, node: str) -> list[Path]:
        """Create the node's cgroups where missing; return the ones created."""
        made = []
        for controller in self.controllers:
            path = self.path(controller, node)
            try:
                path.mkdir(parents=True)
                made.append(path)
            except FileExistsError:
                pass
            except OSError as exc:
                raise _error(node, path, exc) from None
        return made

    def attach(self, node: str, pid: int) -> None:
        """Move process `pid` into the node's cgroups (cpu, memory, cpuacct)."""
        self.ensure(node)
        for controller in self.controllers:
            _write(node, self.path(controller, node) / "cgroup.procs", str(pid))

    def pids(self, node: str, controller: str = "cpu") -> list[int]:
        """Processes in the node's cgroup of `controller`."""
        path = self.path(controller, node) / "cgroup.procs"
        try:
            return [int(x) for x in path.read_text().split()]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise _error(node, path, exc) from None

    def apply(self, node: str, limits: Limits) -> Limits:
        self.ensure(node)
        cpu_dir, mem_dir = self.path("cpu", node), self.path("memory", node)
        quota = -1 if limits.cpu is None \
            else max(MIN_QUOTA_US, round(limits.cpu * self.period_us))
        _write(node, cpu_dir / "cpu.cfs_period_us", str(self.period_us))
        _write(node, cpu_dir / "cpu.cfs_quota_us", str(quota))
        _write(node, mem_dir / "memory.limit_in_bytes",
               "-1" if limits.memory is None else str(limits.memory))
        self._adopt(node)
        return self.read(node)

    def usage(self, node: str) -> Usage | None:
        """cpuacct.usage, the CFS quota and memory of the node's cgroups (None: no cgroup)."""
        acct = self.path("cpuacct" if "cpuacct" in self.mounts else "cpu", node)
        cpu_ns = _read_int(node, acct / "cpuacct.usage", default=-1)
        if cpu_ns < 0:
            return None
        limits = self.read(node)
        mem_used = _read_int(node, self.path("memory", node) / "memory.usage_in_bytes",
                             default=-1)
        if mem_used < 0:  # no memory group yet (Mininet makes none): the processes' RSS
            mem_used = sum(_rss(pid) for pid in self.pids(node, "cpu"))
        return Usage(cpu_ns, limits.cpu, mem_used, limits.memory)

    def read(self, node: str) -> Limits:
        cpu_dir, mem_dir = self.path("cpu", node), self.path("memory", node)
        quota = _read_int(node, cpu_dir / "cpu.cfs_quota_us", default=-1)
        period = _read_int(node, cpu_dir / "cpu.cfs_period_us", default=self.period_us)
        memory = _read_int(node, mem_dir / "memory.limit_in_bytes", default=UNLIMITED_MEMORY)
        return Limits(None if quota <= 0 else quota / period,
                      None if memory >= UNLIMITED_MEMORY else memory)

    def release(self, node: str) -> None:
        """Lift the limits; remove the memory cgroup (which Mininet does not own)."""
        self.apply(node, Limits())
        self.remove(node, controllers=("memory",))

    def remove(self, node: str, controllers: tuple[str, ...] | None = None) -> None:
        """Move the node's processes to the parent cgroup and remove its cgroups."""
        for controller in self.controllers if controllers is None else controllers:
            path = self.path(controller, node)
            if not path.is_dir():
                continue
            for pid in self.pids(node, controller):
                try:
                    _write(node, path.parent / "cgroup.procs", str(pid))
                except AllocatorError as exc:
                    if not isinstance(exc.__cause__, ProcessLookupError):
                        raise
            try:
                path.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise _error(node, path, exc) from None

    def _adopt(self, node: str) -> None:
        """Put the processes of the node's cpu cgroup into its other cgroups too."""
        members = self.pids(node, "cpu")
        for controller in self.controllers[1:]:
            inside = set(self.pids(node, controller))
            for pid in members:
                if pid in inside:
                    continue
                try:
                    _write(node, self.path(controller, node) / "cgroup.procs", str(pid))
                except AllocatorError as exc:
                    if not isinstance(exc.__cause__, ProcessLookupError):
                        raise  # a process that exited meanwhile is fine


def open_allocator(spec: str) -> Allocator:
    """An allocator from a spec: "none", "cgroup" or "cgroup:<parent>".

    "k8s" is reserved for the Kubernetes backend, which is not written yet.
    """
    kind, _, arg = spec.partition(":")
    if kind == "none" and not arg:
        return NullAllocator()
    if kind == "cgroup":
        return CgroupV1Allocator(parent=arg)
    if kind == "k8s":
        raise AllocatorError("allocator 'k8s': the Kubernetes backend is a later step")
    raise AllocatorError(f"allocator {spec!r}: use none, cgroup or cgroup:<parent>")


def _error(node: str, path: Path, exc: OSError) -> AllocatorError:
    reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
    return AllocatorError(f"node {node}: {path}: {reason}")


def _write(node: str, path: Path, value: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as exc:
        raise _error(node, path, exc) from exc
    try:
        os.write(fd, value.encode())
    except OSError as exc:
        error = _error(node, path, exc)
        raise AllocatorError(f"{error} (writing {value})") from exc
    finally:
        os.close(fd)


def _rss(pid: int) -> int:
    """Resident memory of a process in bytes (0 if it is gone)."""
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return 0


def _read_int(node: str, path: Path, default: int) -> int:
    try:
        return int(path.read_text().strip())
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as exc:
        raise AllocatorError(f"node {node}: {path}: cannot read: {exc}") from None
