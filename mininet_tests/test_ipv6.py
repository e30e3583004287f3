"""IPv6 on a labelled trail, for real: Neighbour Discovery answered by the controller,
ping6 and TCP (iperf3) over IPv6 on s1 - s2 - s3, the trail label checked on the wire,
and the same pair's IPv4 trail measured beside it (set-up latency, throughput)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from scapy.contrib.mpls import MPLS
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from mininet_tests.harness import Capture, ScentNet, running_net, trail_between, wait_for
from topologies.linear import LinearTopo

IPERF_SECONDS = 3


def v6(n: int) -> str:
    return f"fc00::{n}"


@pytest.fixture(scope="module")
def line(testbed: None) -> Iterator[ScentNet]:
    """s1 - s2 - s3, h1..h3, each host with fc00::<n>/64 besides 10.0.0.<n>."""
    with running_net(LinearTopo(3)) as net:
        for n, host in enumerate(net.net.hosts, start=1):
            host.cmd("sysctl -qw net.ipv6.conf.all.disable_ipv6=0")
            host.cmd(f"ip -6 addr add {v6(n)}/64 dev {host.defaultIntf()} nodad")
        yield net


def ping_out(src: Any, dst: str, count: int = 3) -> tuple[int, float]:
    """(replies, first round-trip ms) of `ping -c count dst` from `src`."""
    out = src.cmd(f"ping -n -c {count} -W 2 -i 0.2 {dst}")
    replies = re.search(r"(\d+) received", out)
    first = re.search(r"time=([\d.]+) ms", out)
    assert replies, out
    return int(replies[1]), float(first[1]) if first else float("nan")


def iperf_mbits(server: Any, client: Any, address: str) -> float:
    """Mbit/s of one iperf3 TCP run client -> address (server listens once)."""
    proc = server.popen(["iperf3", "-s", "-1"], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: ":5201" in server.cmd("ss -ltn"), 10, "iperf3 listening")
        out = client.cmd(f"timeout {IPERF_SECONDS + 10} iperf3 -c {address} "
                         f"-t {IPERF_SECONDS} -J")
    finally:
        proc.terminate()
        proc.wait(10)
    data = json.loads(out[out.index("{"):])
    return data.get("end", {}).get("sum_received", {}).get("bits_per_second", 0.0) / 1e6


def test_ping6_rides_an_ipv6_trail_with_its_label_on_the_wire(line: ScentNet) -> None:
    h1, h3 = line.host("h1"), line.host("h3")
    capture = Capture("s1-eth2", bpf="mpls")  # s1's port towards s2
    replies, first_ms = ping_out(h1, v6(3))
    frames = capture.stop()
    assert replies == 3, h1.cmd(f"ip -6 neigh show; ping -c 1 {v6(3)}")
    trail = trail_between(line, v6(1), v6(3))
    back = trail_between(line, v6(3), v6(1))
    assert trail["family"] == "ipv6" and trail["state"] == "active"
    assert [h["switch"] for h in trail["hops"]] == ["s1", "s2", "s3"]
    # Every labelled echo towards h3 carries the trail's label and an intact IPv6 packet;
    # the replies come back with the reverse trail's label.
    labels = {}
    for frame in frames:
        ip6 = frame[MPLS][IPv6] if IPv6 in frame else None
        assert ip6 is not None, frame.summary()
        labels.setdefault((ip6.src, ip6.dst), set()).add(frame[MPLS].label)
    assert labels.get((v6(1), v6(3))) == {trail["label"]}, labels
    assert labels.get((v6(3), v6(1))) == {back["label"]}, labels
    # Neighbour Discovery was answered by the controller, with h3's MAC.
    neigh = h1.cmd(f"ip -6 neigh show {v6(3)}")
    assert h3.MAC() in neigh, neigh
    hosts = {h["mac"]: h for h in line.ctl.get("/topology")["hosts"]}
    assert v6(3) in hosts[h3.MAC()]["ipv6"] and v6(1) in hosts[h1.MAC()]["ipv6"]
    print(f"\nIPv6 first ping {first_ms} ms, trail set-up {trail['setup_latency_ms']} ms")


def test_the_cli_lists_the_ipv6_trails(line: ScentNet) -> None:
    out = subprocess.run([sys.executable, "-m", "sdnscent.cli", "--api",
                          f"http://127.0.0.1:{line.ctl.api_port}", "trails"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert re.search(rf"\b{re.escape(v6(1))}\s+{re.escape(v6(3))}\b", out.stdout), out.stdout


def test_tcp_over_ipv6_and_ipv4_on_the_same_path(line: ScentNet) -> None:
    if shutil.which("iperf3") is None:
        pytest.skip("iperf3 not installed: run `make setup`")
    h1, h3 = line.host("h1"), line.host("h3")
    replies, first4 = ping_out(h1, h3.IP())
    assert replies == 3
    four, six = trail_between(line, h1.IP(), h3.IP()), trail_between(line, v6(1), v6(3))
    assert four["hops"] == six["hops"] and four["label"] != six["label"]
    capture = Capture("s2-eth3", bpf="mpls")  # s2's port towards s3
    mbits6 = iperf_mbits(h3, h1, v6(3))
    frames = capture.stop()
    mbits4 = iperf_mbits(h3, h1, h3.IP())
    assert mbits6 > 1 and mbits4 > 1, (mbits6, mbits4)
    tcp = [f for f in frames if IPv6 in f and f[IPv6].nh == 6 and f[IPv6].dst == v6(3)]
    assert tcp and {f[MPLS].label for f in tcp} == {six["label"]}
    assert all(f[Ether].type == 0x8847 for f in tcp)
    print(f"\nsame path {' '.join(h['switch'] for h in six['hops'])}: "
          f"set-up IPv4 {four['setup_latency_ms']} ms, IPv6 {six['setup_latency_ms']} ms; "
          f"TCP IPv4 {mbits4:.0f} Mbit/s, IPv6 {mbits6:.0f} Mbit/s "
          f"(ratio {mbits6 / mbits4:.2f}); first ping IPv4 {first4} ms")


def test_the_audit_reads_the_ipv6_trails_and_the_masked_edge_drops_back_as_correct(
        line: ScentNet) -> None:
    """Every switch's table, IPv6 classifiers, pop_mpls:0x86dd and the masked eth_dst
    drops included, compares equal with what the controller expects."""
    audit = line.ctl.get("/audit")
    assert audit["stale"] == 0 and not audit["unread"], audit
    for name, counts in audit["switches"].items():
        assert (counts["missing"], counts["wrong"], counts["unknown"]) == (0, 0, 0), (name,
                                                                                     counts)
        assert counts["correct"] > 0
