"""The OVSDB southbound at work: told where the switches' OVSDB is (``--ovsdb``),
the controller sets ``mtu_request`` on both ends of every link it discovers, and
leaves host ports alone. Checked in the database and on the interfaces."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mininet_tests.harness import ScentNet, ping, running_net, wait_for
from topologies.linear import LinearTopo

OVSDB = "/var/run/openvswitch/db.sock"
LINK_MTU = 1700  # not the topology file's 1600: only the controller sets this one


def mtu_request(intf: str) -> str:
    return subprocess.run(["ovs-vsctl", "get", "Interface", intf, "mtu_request"],
                          check=True, capture_output=True, text=True).stdout.strip()


def kernel_mtu(intf: str) -> int:
    return int(Path(f"/sys/class/net/{intf}/mtu").read_text())


@pytest.fixture(scope="module")
def snet(testbed: None) -> Iterator[ScentNet]:
    if not Path(OVSDB).exists():
        pytest.skip(f"no OVSDB socket at {OVSDB}")
    with running_net(LinearTopo(n=3), controller_args=[
            "--ovsdb", f"unix:{OVSDB}", "--link-mtu", str(LINK_MTU)]) as net:
        yield net


def test_link_ports_get_the_controllers_mtu_and_host_ports_keep_theirs(snet: ScentNet) -> None:
    links = [(link.intf1.name, link.intf2.name) for link in snet.net.links
             if all(i.node in snet.net.switches for i in (link.intf1, link.intf2))]
    ends = [name for pair in links for name in pair]
    wait_for(lambda: all(mtu_request(n) == str(LINK_MTU) for n in ends), 20,
             f"mtu_request {LINK_MTU} on {ends}")
    wait_for(lambda: all(kernel_mtu(n) == LINK_MTU for n in ends), 10,
             "the datapath applied it")
    host_ports = [h.defaultIntf().link.intf2.name if h.defaultIntf().link.intf1.node is h
                  else h.defaultIntf().link.intf1.name for h in snet.net.hosts]
    assert all(mtu_request(n) == "[]" for n in host_ports), host_ports
    events = [e["message"] for e in snet.ctl.get("/events")["events"] if e["kind"] == "ovsdb"]
    assert events, "no ovsdb event"
    h1, h3 = snet.net.get("h1"), snet.net.get("h3")
    assert ping(h1, h3.IP(), count=3)  # and the fabric still carries traffic
