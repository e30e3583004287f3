"""Hosts cannot forge trails (docs/security.rst): labelled frames from host ports are dropped.

On the zoned fabric of test_policy.py (topologies/nfchain.py with its policy) payroll's
restricted trail h1 -> h3 goes through the firewall fw1. A host that puts that
trail's label on its own frames must not reach h3 (nor even the firewall): table 0
of its leaf drops MPLS from every port that is not an inter-switch link. The same
frame entering from a link port is delivered, so the drop is what stops it.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from mininet_tests.harness import (
    REPO,
    Capture,
    ScentNet,
    dump_flows,
    n_packets,
    ping,
    port_name,
    running_net,
    wait_for,
)
from mininet_tests.rawsend import send_frames
from mininet_tests.test_policy import POLICY, TOKEN, app_trail, fw_counters, send_udp
from topologies.nfchain import NFChainTopo

EDGE = "s3"  # the leaf of h1 and h2
FORGED = 50  # frames per attempt


@pytest.fixture(scope="module")
def nfnet(testbed: None) -> Iterator[ScentNet]:
    """The zoned fabric under a controller started with the policy."""
    with running_net(NFChainTopo(), ["--api-token", TOKEN], policy=POLICY) as net:
        yield net


@pytest.fixture(scope="module")
def payroll(nfnet: ScentNet) -> dict[str, Any]:
    """payroll's restricted trail h1 -> h3 (through fw1), set up by its own traffic."""
    h1, h3 = nfnet.host("h1"), nfnet.host("h3")
    assert ping(h1, h3.IP())
    send_udp(h1, h3.IP(), 5001, 5)
    trail = nfnet.ctl.get(f"/trails/{app_trail(nfnet, 'payroll', h1.IP(), h3.IP())['id']}")
    assert [h.get("via") for h in trail["hops"] if h.get("via")] == ["fw1"]
    return trail


def forged_frame(net: ScentNet, src_mac: str, label: int, marker: bytes) -> bytes:
    """A frame as payroll's trail carries it: h1 -> h3 udp/5001 under `label`."""
    h1, h3 = net.host("h1"), net.host("h3")
    return bytes(Ether(src=src_mac, dst=h3.MAC()) / MPLS(label=label, s=1, ttl=64)
                 / IP(src=h1.IP(), dst=h3.IP()) / UDP(sport=40000, dport=5001) / marker)


def untrusted_drops(switch: str) -> int:
    """Packets counted by table 0's drop of labelled frames from non-link ports."""
    for line in dump_flows(switch):
        if re.search(r"\bpriority=400,mpls\b", line) and "table=1" not in line:
            assert "actions=drop" in line, line
            return n_packets(line)
    raise AssertionError(f"no untrusted-label drop in table 0 of {switch}")


def send_and_watch(net: ScentNet, marker: bytes, send: Any) -> dict[str, int]:
    """Run `send()`; count frames carrying `marker` at h3 and on fw1's two sides."""
    h3, fw = net.host("h3"), net.host("fw1")
    caps = {"h3": Capture(h3.defaultIntf().name, host=h3, bpf="udp or mpls")}
    caps.update({f"fw1-eth{i}": Capture(f"fw1-eth{i}", host=fw, bpf="udp or mpls")
                 for i in (0, 1)})
    nft_before = sum(p for p, _ in fw_counters(net).values())
    send()
    time.sleep(0.5)  # let anything that was let through arrive
    seen = {where: sum(marker in bytes(f) for f in cap.stop()) for where, cap in caps.items()}
    seen["fw1-nft"] = sum(p for p, _ in fw_counters(net).values()) - nft_before
    return seen


def forge_from(net: ScentNet, host_name: str, label: int) -> tuple[dict[str, int], int]:
    """`host_name` sends FORGED labelled frames; what arrived where, and the drop count."""
    host = net.host(host_name)
    marker = f"forged-by-{host_name}".encode()
    frame = forged_frame(net, host.MAC(), label, marker)
    before = untrusted_drops(EDGE)
    command = (f"cd {REPO} && {sys.executable} -m mininet_tests.rawsend "
               f"{host.defaultIntf().name} {frame.hex()} --count {FORGED}")
    seen = send_and_watch(net, marker, lambda: host.cmd(command))

    def counted() -> int | None:  # flow counters reach OpenFlow from the datapath late
        delta = untrusted_drops(EDGE) - before
        return delta if delta >= FORGED else None

    dropped = wait_for(counted, 5, f"{FORGED} drops on {EDGE}")
    print(f"\n{host_name} forged label {label}: arrived {seen}, {EDGE} dropped {dropped}")
    return seen, dropped


def test_another_host_cannot_ride_the_restricted_trail(nfnet: ScentNet,
                                                       payroll: dict[str, Any]) -> None:
    seen, dropped = forge_from(nfnet, "h2", payroll["label"])
    assert seen == {"h3": 0, "fw1-eth0": 0, "fw1-eth1": 0, "fw1-nft": 0}
    assert dropped == FORGED


def test_the_trails_own_host_cannot_label_its_frames(nfnet: ScentNet,
                                                     payroll: dict[str, Any]) -> None:
    # h1 is the trail's source but not a registered tagger: its leaf pushes the label.
    seen, dropped = forge_from(nfnet, "h1", payroll["label"])
    assert seen == {"h3": 0, "fw1-eth0": 0, "fw1-eth1": 0, "fw1-nft": 0}
    assert dropped == FORGED


def test_the_same_frame_from_a_link_port_is_delivered(nfnet: ScentNet,
                                                      payroll: dict[str, Any]) -> None:
    """The control: the forged frame is right, only where it enters differs."""
    first = payroll["hops"][0]
    assert first["dpid"] == f"{int(EDGE[1:]):016x}"
    link_end = port_name(nfnet, first["dpid"], first["out_port"])  # the leaf's uplink
    marker = b"from-a-link-port"
    frame = forged_frame(nfnet, nfnet.host("h1").MAC(), payroll["label"], marker)
    count = 20
    # Sent out of the leaf's uplink veth, it enters the next switch as the leaf's would.
    seen = send_and_watch(nfnet, marker, lambda: send_frames(link_end, [frame] * count))
    print(f"\nlabel {payroll['label']} injected on {link_end}: arrived {seen}")
    assert seen == {"h3": count, "fw1-eth0": count, "fw1-eth1": count, "fw1-nft": count}
