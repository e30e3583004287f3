"""The allocator backends: real cgroups v1 on this machine (cpu and memory
hierarchies), the no-op backend, and the checks on names and limits."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdnscent.allocator import (
    AllocatorError,
    CgroupV1Allocator,
    Limits,
    NullAllocator,
    UsageMeter,
    open_allocator,
    v1_mounts,
)
from sdnscent.dra import Allocation


def _cgroup_v1_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create cgroups"
    mounts = v1_mounts()
    missing = [c for c in ("cpu", "memory") if c not in mounts]
    if missing:
        return f"no cgroup v1 {'/'.join(missing)} hierarchy mounted (cgroup v2 only?)"
    return None


needs_cgroup_v1 = pytest.mark.skipif(_cgroup_v1_reason() is not None,
                                     reason=_cgroup_v1_reason() or "")


@pytest.fixture
def cgroup() -> Iterator[tuple[CgroupV1Allocator, str]]:
    """An allocator and a fresh node name; its cgroups are removed afterwards."""
    allocator = CgroupV1Allocator()
    name = f"sdnscent-test-{os.getpid()}"
    try:
        yield allocator, name
    finally:
        allocator.remove(name)


@needs_cgroup_v1
def test_cpu_quota_and_memory_limit_are_written_to_the_cgroup(
        cgroup: tuple[CgroupV1Allocator, str]) -> None:
    allocator, name = cgroup
    applied = allocator.apply(name, Limits(cpu=0.25, memory=64 << 20))
    assert applied == Limits(0.25, 64 << 20)
    cpu_dir, mem_dir = allocator.path("cpu", name), allocator.path("memory", name)
    assert cpu_dir == v1_mounts()["cpu"] / name  # /<name>, like Mininet's CPULimitedHost
    assert (cpu_dir / "cpu.cfs_period_us").read_text().strip() == "100000"
    assert (cpu_dir / "cpu.cfs_quota_us").read_text().strip() == "25000"
    assert (mem_dir / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
    # more than one core, then no limits at all
    assert allocator.apply(name, Limits(cpu=1.5, memory=None)) == Limits(1.5, None)
    assert (cpu_dir / "cpu.cfs_quota_us").read_text().strip() == "150000"
    assert allocator.apply(name, Limits()) == Limits()
    assert (cpu_dir / "cpu.cfs_quota_us").read_text().strip() == "-1"


@needs_cgroup_v1
def test_a_dra_allocation_limits_the_processes_of_the_node(
        cgroup: tuple[CgroupV1Allocator, str]) -> None:
    allocator, name = cgroup
    proc = subprocess.Popen(["sleep", "30"])
    try:
        # what Mininet does for a CPULimitedHost: a cpu cgroup holding the host's shell
        allocator.ensure(name)
        (allocator.path("cpu", name) / "cgroup.procs").write_text(str(proc.pid))
        limits = allocator.apply_allocation(Allocation(name, 0.5, 128 << 20, "test"))
        assert limits == Limits(0.5, 128 << 20)
        # the memory cgroup (which Mininet does not make) now holds the process too
        assert allocator.pids(name, "memory") == [proc.pid]
        if "cpuacct" in allocator.controllers:  # mounted apart from cpu
            assert allocator.pids(name, "cpuacct") == [proc.pid]
        assert f"memory:/{name}" in Path(f"/proc/{proc.pid}/cgroup").read_text()
        allocator.release(name)
        assert allocator.read(name) == Limits()
        assert not allocator.path("memory", name).exists()
    finally:
        proc.kill()
        proc.wait()
    allocator.remove(name)
    assert not allocator.path("cpu", name).exists()


@needs_cgroup_v1
def test_a_memory_limit_below_usage_is_an_error_naming_the_file(
        cgroup: tuple[CgroupV1Allocator, str]) -> None:
    allocator, name = cgroup
    # the process allocates only once it is inside the cgroup (v1 does not move
    # charges with a process), then says so
    script = ("import sys; sys.stdin.readline(); b = bytearray(16 << 20); "
              "print('ok', flush=True); sys.stdin.readline()")
    proc = subprocess.Popen(["python3", "-c", script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        allocator.attach(name, proc.pid)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "ok"
        usage = int((allocator.path("memory", name) / "memory.usage_in_bytes").read_text())
        assert usage >= 16 << 20
        with pytest.raises(AllocatorError, match=f"{name}/memory.limit_in_bytes"):
            allocator.apply(name, Limits(memory=4096))
    finally:
        proc.kill()
        proc.wait()


@needs_cgroup_v1
def test_a_cgroup_under_a_parent_and_a_missing_one_reads_unlimited(tmp_path: Path) -> None:
    allocator = CgroupV1Allocator(parent=f"sdnscent-parent-{os.getpid()}")
    try:
        assert allocator.read("h1") == Limits()  # nothing created yet
        assert allocator.apply("h1", Limits(cpu=0.1)) == Limits(0.1, None)
        assert allocator.path("cpu", "h1").parent.name == f"sdnscent-parent-{os.getpid()}"
    finally:
        allocator.remove("h1")
        for controller in allocator.controllers:
            allocator.path(controller, "h1").parent.rmdir()


def test_names_limits_and_specs_are_checked() -> None:
    mounts = {"cpu": Path("/nonexistent/cpu"), "memory": Path("/nonexistent/memory")}
    allocator = CgroupV1Allocator(mounts)
    for bad in ("", "../etc", "a/b", ".hidden", "x" * 65):
        with pytest.raises(AllocatorError, match="node name"):
            allocator.path("cpu", bad)
    with pytest.raises(AllocatorError, match="/nonexistent/cpu/h1"):
        allocator.apply("h1", Limits(cpu=1.0))
    with pytest.raises(AllocatorError, match="parent"):
        CgroupV1Allocator(mounts, parent="../up")
    with pytest.raises(AllocatorError, match="memory not mounted"):
        CgroupV1Allocator({"cpu": Path("/x")})
    with pytest.raises(AllocatorError, match="must be > 0 cores"):
        Limits(cpu=0)
    with pytest.raises(AllocatorError, match="later step"):
        open_allocator("k8s")
    with pytest.raises(AllocatorError, match="use none, cgroup"):
        open_allocator("docker")


def test_the_null_allocator_remembers_and_changes_nothing() -> None:
    allocator = open_allocator("none")
    assert isinstance(allocator, NullAllocator)
    assert allocator.apply_allocation(Allocation("fw1", 0.5, 1 << 30, "x")) == Limits(0.5, 1 << 30)
    assert allocator.read("fw1") == Limits(0.5, 1 << 30)
    allocator.release("fw1")
    assert allocator.read("fw1") == Limits()


def test_v1_mounts_reads_joined_controllers(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:10 - cgroup cgroup "
        "rw,cpu,cpuacct\n"
        "31 25 0:27 / /sys/fs/cgroup/memory rw shared:11 - cgroup cgroup rw,memory\n"
        "32 25 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
        "33 25 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n")
    mounts = v1_mounts(info)
    assert mounts["cpu"] == mounts["cpuacct"] == Path("/sys/fs/cgroup/cpu,cpuacct")
    assert mounts["memory"] == Path("/sys/fs/cgroup/memory")
    assert "name=systemd" not in mounts and "cgroup2" not in mounts
    assert v1_mounts(tmp_path / "missing") == {}


@needs_cgroup_v1
def test_the_allocator_measures_the_cpu_and_memory_of_a_node_it_manages(
        cgroup: tuple[CgroupV1Allocator, str]) -> None:
    allocator, name = cgroup
    assert allocator.usage(name) is None  # no cgroup: not measured here
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # one busy core
    try:
        for controller in allocator.controllers:
            if controller != "memory":  # as Mininet: cpu (and cpuacct), no memory group
                allocator.path(controller, name).mkdir()
                (allocator.path(controller, name) / "cgroup.procs").write_text(str(proc.pid))
        (allocator.path("cpu", name) / "cpu.cfs_quota_us").write_text("50000")  # 0.5 core
        meter = UsageMeter()
        first = allocator.usage(name)
        assert first is not None and first.cpu_limit == 0.5 and first.mem_used > 0
        assert meter.host_load(name, first, 100.0, 2, 1 << 30) is None  # a rate needs two
        time.sleep(1.0)
        load = meter.host_load(name, allocator.usage(name), 101.0, 2, 1 << 30)
        assert load is not None and 0.3 < load.cpu_cores < 0.6  # held to its quota
        assert load.cpu == pytest.approx(load.cpu_cores / 0.5) and load.cpu_limit == 0.5
    finally:
        proc.kill()
        proc.wait()
