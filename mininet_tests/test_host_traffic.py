"""Host traffic beyond unicast IP, for real on s1 - s2 - s3: a DHCP lease from a real
dnsmasq through the controller's relay (nothing flooded), broadcasts dropped at the
edge and counted on /metrics, and the way out: an address behind the gateway h2 (a
router with a second interface to o1, outside the fabric) reached on trails, with the
policy's application for the outside prefix applied."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.contrib.mpls import MPLS
from scapy.layers.dhcp import BOOTP
from scapy.layers.inet import ICMP

from mininet_tests.harness import Capture, ScentNet, ping, running_net, trail_between, wait_for
from topologies.linear import LinearTopo

POLICY = """\
nodes:
  dhcp1: {kind: host, ip: 10.0.0.1}
  router: {kind: host, ip: 10.0.0.2}
host_traffic: {dhcp_server: dhcp1, gateway: router}
applications:
  - name: outside
    endpoints: {prefixes: [192.168.1.0/24]}
"""
# dnsmasq pings an address before offering it (up to 3 s of silence): off, so the lease
# time measures the fabric and the relay, not that check (DNSMASQ_PING=1 puts it back).
DNSMASQ_EXTRA = [] if os.environ.get("DNSMASQ_PING") == "1" else ["--no-ping"]
SCRIPT = """#!/bin/sh
# udhcpc calls this with the lease in its environment; only "bound" matters here.
[ "$1" = bound ] && ip addr add "$ip/${mask:-8}" dev "$interface"
exit 0
"""


@pytest.fixture(scope="module")
def line(testbed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScentNet]:
    """s1 - s2 - s3; h1 is the policy's DHCP server, running dnsmasq; h2 the gateway."""
    for tool in ("dnsmasq", "udhcpc"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed: run `make setup` (dnsmasq-base, udhcpc)")
    work = tmp_path_factory.mktemp("dhcp")
    policy = work / "policy.yaml"
    policy.write_text(POLICY)
    with running_net(LinearTopo(3), policy=policy) as net:
        h1 = net.host("h1")
        server = h1.popen(["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0",
                           "--user=root", "--bind-interfaces", f"--interface={h1.defaultIntf()}",
                           "--dhcp-range=10.0.0.100,10.0.0.199,255.0.0.0,10m", *DNSMASQ_EXTRA,
                           f"--dhcp-leasefile={work / 'leases'}",
                           f"--pid-file={work / 'dnsmasq.pid'}", "--log-dhcp",
                           f"--log-facility={work / 'dnsmasq.log'}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        net.workdir = work
        try:
            wait_for(lambda: ":67 " in h1.cmd("ss -lun"), 10, "dnsmasq listening on port 67")
            yield net
        finally:
            server.terminate()
            server.wait(10)


def lease(net: ScentNet, host_name: str, script: Path) -> tuple[str, float, str]:
    """(address, seconds from start to lease, output) of one udhcpc run on `host_name`."""
    host = net.host(host_name)
    intf = host.defaultIntf()
    host.cmd(f"ip -4 addr flush dev {intf}")
    started = time.monotonic()
    out = host.cmd(f"udhcpc -i {intf} -f -q -n -t 5 -T 1 -s {script}")
    elapsed = time.monotonic() - started
    found = re.search(r"lease of ([\d.]+) obtained", out)
    return (found[1] if found else ""), elapsed, out


def test_a_client_gets_a_lease_from_the_policys_server_without_flooding(line: ScentNet) -> None:
    assert line.workdir is not None
    script = line.workdir / "udhcpc.sh"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    h1, h2, h3 = line.host("h1"), line.host("h2"), line.host("h3")
    assert ping(h1, h2.IP())  # the server is a known host
    bystander = Capture(str(h2.defaultIntf()), host=h2, bpf="udp port 67 or udp port 68")
    address, seconds, out = lease(line, "h3", script)
    seen = bystander.stop()
    assert address.startswith("10.0.0.1"), out + (line.workdir / "dnsmasq.log").read_text()
    assert f"inet {address}/8" in h3.cmd(f"ip -4 addr show dev {h3.defaultIntf()}")
    assert [f for f in seen if BOOTP in f] == []  # nothing flooded to other hosts
    # The leased host is an ordinary host now: a trail to the server, both ways.
    assert ping(h3, h1.IP(), count=2)
    assert trail_between(line, address, h1.IP())["state"] == "active"
    again, seconds_again, _ = lease(line, "h3", script)  # the server gives the same one
    assert again == address
    text = urllib.request.urlopen(f"http://127.0.0.1:{line.ctl.api_port}/metrics",
                                  timeout=5).read().decode()
    requests = re.search(r'sdnscent_host_traffic_answered_total\{kind="dhcp-request"\} (\S+)',
                         text)
    assert requests and float(requests[1]) >= 4  # discover + request, twice
    print(f"\nDHCP lease in {seconds * 1000:.0f} ms, again in {seconds_again * 1000:.0f} ms")


def test_a_broadcast_is_dropped_at_the_edge_and_counted(line: ScentNet) -> None:
    h2, h3 = line.host("h2"), line.host("h3")
    base = dropped(line)
    receiver = Capture(str(h3.defaultIntf()), host=h3, bpf="icmp")
    h2.cmd("ping -b -n -c 5 -i 0.2 -W 1 10.255.255.255")
    seen = receiver.stop()
    assert [f for f in seen if ICMP in f and f[ICMP].type == 8] == []
    wait_for(lambda: dropped(line) >= base + 5, 10, "5 more broadcasts counted on /metrics")


def dropped(net: ScentNet) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{net.ctl.api_port}/metrics",
                                  timeout=5).read().decode()
    found = re.search(r'sdnscent_host_traffic_dropped_packets_total\{kind="broadcast"\} (\S+)',
                      text)
    return float(found[1]) if found else 0.0


def test_an_address_behind_the_gateway_is_reached_on_trails_under_the_policy(
        line: ScentNet) -> None:
    h1, h2 = line.host("h1"), line.host("h2")
    outside = line.net.addHost("o1", ip="192.168.1.1/24")
    link = line.net.addLink(h2, outside)
    h2.setIP("192.168.1.254/24", intf=link.intf1)
    outside.setIP("192.168.1.1/24", intf=link.intf2)
    h2.cmd("sysctl -qw net.ipv4.ip_forward=1")
    outside.cmd("ip route add default via 192.168.1.254")
    h1.cmd(f"ip route add 192.168.1.0/24 via {h2.IP()}")
    capture = Capture("s1-eth2", bpf="mpls")  # s1 towards s2
    assert ping(h1, "192.168.1.1", count=3), h1.cmd("ping -c 1 192.168.1.1")
    frames = capture.stop()
    out = [t for t in line.ctl.get("/trails?src=10.0.0.1&dst=10.0.0.2")["trails"]]
    by_app = {t["app"]: line.ctl.get(f"/trails/{t['id']}") for t in out}
    assert set(by_app) >= {"outside"}, by_app
    assert by_app["outside"]["match"] == [{"ipv4_dst": "192.168.1.0/255.255.255.0"}]
    echoes = [f for f in frames if ICMP in f and f[ICMP].type == 8]
    assert echoes and {f[MPLS].label for f in echoes} == {by_app["outside"]["label"]}
    hosts = {h["mac"]: h for h in line.ctl.get("/topology")["hosts"]}
    assert hosts[h2.MAC()]["ip"] == h2.IP()  # not the outside source of the replies
    assert not any(h["ip"] == "192.168.1.1" for h in hosts.values())
    back = line.ctl.get("/trails?src=10.0.0.2&dst=10.0.0.1")["trails"]
    assert {t["app"] for t in back} >= {"outside"}  # replies come back on trails
