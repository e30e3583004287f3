"""The topologies work from the `mn` command line against the controller."""

from __future__ import annotations

import subprocess

import pytest

from mininet_tests.harness import REPO, ControllerProcess, datapath_type, mininet_lock


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
