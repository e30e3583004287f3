"""Several elephants of one host pair spread on the wire: iperf3 with two parallel
TCP connections from h1 to h2 over a leaf-spine fabric whose spine links (3 Mbit/s,
htb) are narrower than the hosts' (12 Mbit/s). Static routing keeps both on one
spine; the default routing counts the pair's connections at the ingress switch
(OVS learn), gives each a trail of its own on its own spine, and carries clearly
more, measured in the same test. Both spines' links carry one connection each
(OVS port counters), and no packet meets a missing label."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest

from benchmarks.online import metric
from mininet_tests.harness import ScentNet, ping, running_net, wait_for
from topologies.leafspine import LeafSpineTopo, _LinkEnd  # noqa: PLC2701 - same project

SECONDS = 20  # the score is the mean rate over the second half
FABRIC, HOST = 3.0, 12.0  # Mbit/s
GAIN = 1.4  # the default routing's rate over static's, at least (two spines: ideally 2)


class NarrowSpines(LeafSpineTopo):
    """2 spines, 2 leaves, one host per leaf; hosts' links wider than the spines'."""

    def _host_link(self, switch: str, host: str) -> None:
        from mininet.link import TCLink
        self.addLink(switch, host, cls=TCLink, cls2=_LinkEnd, bw=HOST, params2={"txo": False})

    def _fabric_link(self, node1: str, node2: str) -> None:
        from mininet.link import TCLink
        self.addLink(node1, node2, cls=TCLink, cls1=_LinkEnd, cls2=_LinkEnd, bw=FABRIC, mtu=1600)


def two_connections(net: ScentNet) -> float:
    """Mean rate (bit/s) of `iperf3 -P 2` h1 -> h2 over the second half of the run."""
    h1, h2 = net.host("h1"), net.host("h2")
    assert wait_for(lambda: ping(h1, h2.IP()) and ping(h2, h1.IP()), 20, "h1 <-> h2")
    server = h2.popen(["iperf3", "-s", "-1", "-p", "5201"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    client = h1.popen(["iperf3", "-c", h2.IP(), "-p", "5201", "-P", "2", "-t", str(SECONDS),
                       "-i", "1", "-J", "--connect-timeout", "5000"],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = client.communicate(timeout=SECONDS + 60)
    server.wait(10)
    try:
        report = json.loads(out)
    except json.JSONDecodeError:
        raise AssertionError(f"iperf3 gave no report: {err.decode()[-300:]}") from None
    rates = [iv["sum"]["bits_per_second"] for iv in report["intervals"]]
    second = rates[len(rates) // 2:]
    return sum(second) / len(second)


def spine_bytes(net: ScentNet) -> dict[str, int]:
    """Bytes each spine switch forwarded (sum of its ports' tx counters)."""
    out = {}
    for spine in ("s1", "s2"):
        dump = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-ports", spine],
                              capture_output=True, text=True, check=True).stdout
        out[spine] = sum(int(part.split("=")[1].rstrip(","))
                         for line in dump.splitlines() if "tx pkts" in line
                         for part in line.split() if part.startswith("bytes="))
    return out


def run(routing: str) -> tuple[float, dict[str, int], list[dict[str, Any]], float]:
    args = ["--routing", routing, "--default-link-capacity", str(int(FABRIC * 1e6)),
            "--trail-lease", "0", "--stats-interval", "0.5"]
    with running_net(NarrowSpines(spines=2, leaves=2, hosts_per_leaf=1),
                     controller_args=args) as net:
        before = spine_bytes(net)
        misses = metric(net.ctl, "sdnscent_packet_ins_total", 'kind="label-miss"')
        rate = two_connections(net)
        after = spine_bytes(net)
        split = [net.ctl.get(f"/trails/{t['id']}") for t in net.ctl.get("/trails")["trails"]]
        misses = metric(net.ctl, "sdnscent_packet_ins_total", 'kind="label-miss"') - misses
        return rate, {s: after[s] - before[s] for s in after}, split, misses


@pytest.mark.usefixtures("testbed")
def test_two_connections_of_one_pair_take_both_spines() -> None:
    static, static_spines, _, _ = run("static")
    scent, scent_spines, trails, misses = run("scent")
    print(f"static {static / 1e6:.2f} Mbit/s {static_spines}; scent {scent / 1e6:.2f} "
          f"Mbit/s {scent_spines}; label misses {misses}")
    assert scent >= GAIN * static, (static, scent)
    # static: one spine carried (nearly) everything; scent: each carried a connection
    assert min(static_spines.values()) < 0.1 * max(static_spines.values()), static_spines
    assert min(scent_spines.values()) > 0.3 * max(scent_spines.values()), scent_spines
    split = [t for t in trails if "connection" in t]
    assert len(split) >= 2, trails
    assert {t["connection"]["tcp_dst"] for t in split} == {5201}
    assert len({t["hops"][1]["dpid"] for t in split}) == 2  # one per spine
    assert misses == 0
