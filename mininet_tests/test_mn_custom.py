"""The topologies work from the `mn` command line against the controller."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from mininet_tests.harness import (
    REPO,
    ControllerProcess,
    bridges,
    datapath_type,
    interfaces,
    mininet_lock,
)
from topologies.fattree import FatTreeTopo

IPERF_SECONDS = 3
MIN_MBITS = 10.0  # TCP through the userspace datapath runs at hundreds of Mbit/s


@pytest.mark.parametrize("file, topo, hosts", [
    ("linear.py", "linear,3", 3),
    ("leafspine.py", "leafspine,2,3,hosts_per_leaf=2", 6),
    ("fattree.py", "fattree,4", 16),
])
def test_mn_custom_topology_pingall(testbed: None, file: str, topo: str, hosts: int) -> None:
    with mininet_lock():
        ctl = ControllerProcess()
        try:
            run = subprocess.run(
                ["mn", "--custom", str(REPO / "topologies" / file), "--topo", topo,
                 "--switch", f"ovs,datapath={datapath_type()},protocols=OpenFlow13",
                 "--controller", f"remote,ip=127.0.0.1,port={ctl.ofp_port}",
                 "--test", "pingall"],
                capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        finally:
            rc = ctl.stop()
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert f"Results: 0% dropped ({hosts * (hosts - 1)}/{hosts * (hosts - 1)} received)" in out, out
    assert rc == 0, ctl.logs()


def readme_fattree_command() -> list[str]:
    """The README's `mn --custom topologies/fattree.py ...` command, split into words."""
    text = (REPO / "README.rst").read_text()
    found = re.search(r"^\s*(mn --custom topologies/fattree\.py.*?)(?<!\\)$", text,
                      re.MULTILINE | re.DOTALL)
    assert found, "README.rst has no `mn --custom topologies/fattree.py` command"
    return shlex.split(found[1].replace("\\\n", " "))


def descendants(pid: int) -> list[int]:
    """Pids of every process below `pid` (children first found, then theirs)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def kill_iperf3(pidfile: Path) -> None:
    """Stop the iperf3 server whose pid is in `pidfile`, if it still runs."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(pidfile.read_text().strip())
        if b"iperf3" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGTERM)


def tcp_mbits(report: Path) -> float:
    """Mbit/s received in an iperf3 JSON report (0 if the run failed or left none)."""
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        return 0.0
    return data.get("end", {}).get("sum_received", {}).get("bits_per_second", 0.0) / 1e6


def test_readme_fattree_command_carries_tcp(testbed: None) -> None:
    """The README's fat-tree command as a user types it carries TCP, within and across pods.

    The most faithful way is `mn` itself, not Mininet driven from Python: the command
    is the README's (read from README.rst) with only the controller's address added,
    and `--post` runs a CLI script after start-up (as a user would type it). Nothing
    but the topology file sets the inter-switch MTU or the hosts' checksum offload.
    """
    if shutil.which("iperf3") is None:
        pytest.skip("iperf3 not installed: run `make setup`")
    topo = FatTreeTopo(4)
    links = 2 * sum(1 for a, b in topo.links() if topo.isSwitch(a) and topo.isSwitch(b))
    command = readme_fattree_command()
    assert command[:7] == ["mn", "--custom", "topologies/fattree.py", "--topo", "fattree,4",
                           "--switch", "ovs,datapath=user,protocols=OpenFlow13"], command
    assert command[7:] == ["--controller", "remote"], command
    work = Path(tempfile.mkdtemp(prefix="sdnscent-mn-"))
    pairs = {"same edge switch (h1 -> h2, via s7)": ("h1", "h2", work / "edge.json"),
             "across pods (h1 -> h16, 5 switches)": ("h1", "h16", work / "pods.json")}
    with mininet_lock():
        ctl = ControllerProcess()
        before, switches = interfaces(), set(topo.switches())
        try:
            wait = ("import json, urllib.request as u; from mininet_tests.harness import wait_for; "
                    f"wait_for(lambda: len(json.load(u.urlopen('{ctl.api}/topology', timeout=5))"
                    f"['links']) == {links}, 60, 'discovery', 0.2); print('discovered')")
            script = [f"{server} iperf3 -s -1 -D -I {work / server}.pid"
                      for _, server, _ in pairs.values()]
            script.append(f"sh {shlex.quote(sys.executable)} -c {shlex.quote(wait)}")
            # A stalled transfer (0 Mbit/s) must fail fast: iperf3 would wait for its end.
            script += [f"{client} timeout {IPERF_SECONDS + 10} iperf3 -c {server} "
                       f"-t {IPERF_SECONDS} -J --logfile {report}"
                       for client, server, report in pairs.values()]
            (work / "post").write_text("\n".join(script) + "\n")
            argv = [*command[:-1], f"remote,ip=127.0.0.1,port={ctl.ofp_port}",
                    "--test", "none", "--post", str(work / "post")]
            started = time.monotonic()
            mn = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                out = mn.communicate(timeout=180)[0]
            except subprocess.TimeoutExpired:
                for pid in [*descendants(mn.pid), mn.pid]:  # Mininet's shells, then mn
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                out = mn.communicate()[0] + "\n(mn timed out and was killed)"
            elapsed = time.monotonic() - started
        finally:
            for _, server, _ in pairs.values():
                kill_iperf3(work / f"{server}.pid")
            for name in bridges() & switches:  # left only if mn did not stop cleanly
                subprocess.run(["ovs-vsctl", "--if-exists", "del-br", name], check=True)
            for intf in interfaces() - before:
                if re.match(r"^[sh]\d+-eth\d+$", intf):
                    subprocess.run(["ip", "link", "del", intf], capture_output=True)
            rc = ctl.stop()
    rates = {what: tcp_mbits(report) for what, (_, _, report) in pairs.items()}
    reports = {what: report.read_text() if report.exists() else "(no report)"
               for what, (_, _, report) in pairs.items()}
    shutil.rmtree(work, ignore_errors=True)
    print(f"\n{shlex.join(argv[:-2])} ({elapsed:.1f} s)")
    for what, mbits in rates.items():
        print(f"iperf3 TCP {IPERF_SECONDS} s, {what}: {mbits:.1f} Mbit/s")
    assert mn.returncode == 0, out
    assert "discovered" in out, out
    for what, mbits in rates.items():
        assert mbits > MIN_MBITS, f"{what}: {mbits:.3f} Mbit/s\n{reports[what]}\n{out}"
    assert rc == 0, ctl.logs()
