"""A named multicast group for real: s1 - s2 - s3 with two hosts each, the group
239.1.1.1 of h1, h3 and h6; h1's datagrams to it reach h3 and h6 on the tree's label and
no other host; a non-member's datagrams to it are dropped at its edge and counted."""

from __future__ import annotations

import re
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from mininet_tests.harness import REPO, Capture, ScentNet, ping, running_net, wait_for
from topologies.linear import LinearTopo

GROUP = "239.1.1.1"
MEMBERS = ("h1", "h3", "h6")
POLICY = f"""\
host_traffic:
  groups:
    - {{name: ticker, address: {GROUP}, members: [10.0.0.1, 10.0.0.3, 10.0.0.6]}}
"""
COUNT = 5


@pytest.fixture(scope="module")
def line(testbed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScentNet]:
    """s1 (h1, h2) - s2 (h3, h4) - s3 (h5, h6), every host known to the controller."""
    policy = tmp_path_factory.mktemp("mcast") / "policy.yaml"
    policy.write_text(POLICY)
    with running_net(LinearTopo(3, 2), policy=policy) as net:
        hosts = net.net.hosts
        for host, other in zip(hosts, hosts[1:] + hosts[:1], strict=True):
            assert ping(host, other.IP())
        yield net


def send(net: ScentNet, name: str) -> None:
    """COUNT UDP datagrams from host `name` to the group, as raw frames."""
    host = net.host(name)
    frame = bytes(Ether(src=host.MAC(), dst="01:00:5e:01:01:01")
                  / IP(src=host.IP(), dst=GROUP, ttl=4) / UDP(sport=5000, dport=5001)
                  / b"ticker")
    host.cmd(f"cd {REPO} && {sys.executable} -m mininet_tests.rawsend "
             f"{host.defaultIntf().name} {frame.hex()} --count {COUNT}")


def tree_label(net: ScentNet, sender_mac: str) -> int:
    """The label of the group's tree from `sender_mac`, from the controller's events."""
    for event in reversed(net.ctl.get("/events")["events"]):
        found = re.search(rf"group ticker .* from {sender_mac}: tree .* label (\d+)",
                          event["message"])
        if event["kind"] == "multicast" and found:
            return int(found[1])
    raise AssertionError(f"no tree from {sender_mac} in /events")


def test_a_group_is_delivered_to_its_members_only(line: ScentNet) -> None:
    h1 = line.host("h1")
    label = wait_for(lambda: tree_label(line, h1.MAC()), 10, "the tree from h1")
    captures = {h.name: Capture(str(h.defaultIntf()), host=h, bpf=f"dst host {GROUP}")
                for h in line.net.hosts if h.name != "h1"}
    wire = Capture("s1-eth3", bpf="mpls")  # s1 towards s2
    send(line, "h1")
    got = {name: len([f for f in cap.stop() if UDP in f and f[UDP].dport == 5001])
           for name, cap in captures.items()}
    labelled = [f for f in wire.stop() if MPLS in f]
    assert got == {"h2": 0, "h3": COUNT, "h4": 0, "h5": 0, "h6": COUNT}, got
    assert len(labelled) == COUNT and {f[MPLS].label for f in labelled} == {label}


def test_a_non_members_datagrams_to_the_group_are_dropped_and_counted(line: ScentNet) -> None:
    before = multicast_drops(line)
    captures = {name: Capture(str(line.host(name).defaultIntf()), host=line.host(name),
                              bpf=f"dst host {GROUP}") for name in MEMBERS}
    send(line, "h2")
    assert all(cap.stop() == [] for cap in captures.values())
    wait_for(lambda: multicast_drops(line) >= before + COUNT, 10,
             f"{COUNT} more IPv4 multicast drops on /metrics")


def multicast_drops(net: ScentNet) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{net.ctl.api_port}/metrics",
                                  timeout=5).read().decode()
    found = re.search(r'sdnscent_host_traffic_dropped_packets_total\{kind="ipv4-multicast"\} '
                      r"(\S+)", text)
    return float(found[1]) if found else 0.0

