"""The network edge defended against its own hosts (docs/security.rst), on the wire.

A chain of three switches with three hosts each (topologies/linear.py, 3,3:
s1 h1-h3, s2 h4-h6, s3 h7-h9; h<n> is 10.0.0.<n>, MAC 00:00:00:00:00:0<n>).
Each attack comes from an ordinary host port and has a positive control:

* LLDP forgery and replay: h9 records the controller's LLDP while silent, then
  speaks (its port faces a host: no more LLDP goes out there) and replays what it
  recorded, plus a Ryu-style unsigned frame and a tampered one. No link appears,
  none flaps, the frames are counted; the real links keep being confirmed.
* ARP takeover: h7 sends gratuitous ARP claiming h1's address. h1 answers the
  controller's probe, so h7 is dropped at its port for that address; h4's pings
  to h1 all arrive at h1 and none at h7.
* MAC takeover: h8 sends frames with h4's MAC and IP. Same probe, a drop rule for
  that MAC at h8's port; h1's pings to h4 reach h4, not h8.
* The legitimate move: VM h2 stops at s1 (its port stays up, it no longer
  answers) and resumes on h5's port of s2 with the same MAC and IP; the move is
  accepted after the probe timeout and h3's pings reach it there.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether

from mininet_tests.harness import (
    REPO,
    Capture,
    PingStream,
    ScentNet,
    dump_flows,
    n_packets,
    ping,
    running_net,
    wait_for,
)
from sdnscent.discovery import unsigned_frame
from topologies.linear import LinearTopo

PROBE_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def chain(testbed: None) -> Iterator[ScentNet]:
    """Three switches in a row, three hosts each, port security on (the default)."""
    with running_net(LinearTopo(3, 3), ["--probe-timeout", str(PROBE_TIMEOUT)]) as net:
        yield net


def mac(n: int) -> str:
    return f"00:00:00:00:00:{n:02x}"


def ip(n: int) -> str:
    return f"10.0.0.{n}"


def rest_host(net: ScentNet, address: str) -> dict[str, Any] | None:
    """The /topology record of the host owning `address`."""
    return next((h for h in net.ctl.get("/topology")["hosts"] if h["ip"] == address), None)


def links(net: ScentNet) -> set[tuple[str, int, str, int]]:
    return {(lk["src"], lk["src_port"], lk["dst"], lk["dst_port"])
            for lk in net.ctl.get("/topology")["links"]}


def send(net: ScentNet, name: str, frames: list[bytes], count: int = 1) -> None:
    """Frames out of host `name`'s interface, each `count` times."""
    host = net.host(name)
    for frame in frames:
        host.cmd(f"cd {REPO} && {sys.executable} -m mininet_tests.rawsend "
                 f"{host.defaultIntf().name} {frame.hex()} --count {count}")


def learned(net: ScentNet, n: int) -> dict[str, Any]:
    """Make h<n> speak and return where the controller bound it."""
    host = net.host(f"h{n}")
    peer = ip(1 if n != 1 else 3)
    wait_for(lambda: ping(host, peer), 20, f"h{n} -> {peer}")
    return wait_for(lambda: rest_host(net, ip(n)), 5, f"h{n} in /topology")


def drop_rule(net: ScentNet, switch: str, port: int, field: str) -> str | None:
    """The port-security drop line of `switch` for in_port=`port` with `field`."""
    for line in dump_flows(switch):
        if "priority=1100" in line and re.search(rf"in_port={port}\b", line) \
                and field in line:
            assert "actions=drop" in line, line
            return line
    return None


def counted_drops(net: ScentNet, port: int, field: str, before: int, at_least: int) -> int:
    """Wait until s3's drop rule for (port, field) counted `at_least` more packets."""
    def grown() -> int | None:
        line = drop_rule(net, "s3", port, field)
        delta = n_packets(line) - before if line else 0
        return delta if delta >= at_least else None

    return wait_for(grown, 5, f"{at_least} drops counted on s3")


def edge_drops(net: ScentNet, **want: Any) -> list[dict[str, Any]]:
    return [d for d in net.ctl.get("/edge")["drops"]
            if all(d.get(k) == v for k, v in want.items())]


def icmp_to(frames: list[Any], address: str) -> int:
    return sum(1 for f in frames if f.haslayer(ICMP) and f[IP].dst == address
               and f[ICMP].type == 8)


def test_lldp_forgery_and_replay_from_a_host_port(chain: ScentNet) -> None:
    h9 = chain.host("h9")
    # before h9 speaks its port is not known to face a host: LLDP goes out of it
    cap = Capture(h9.defaultIntf().name, host=h9, bpf="ether proto 0x88cc")
    time.sleep(2.5)
    recorded = [bytes(f) for f in cap.stop()]
    assert recorded, "no LLDP reached the silent host"
    where = learned(chain, 9)
    assert any(p["dpid"] == where["dpid"] and p["port"] == where["port"]
               for p in chain.ctl.get("/edge")["host_ports"])
    cap = Capture(h9.defaultIntf().name, host=h9, bpf="ether proto 0x88cc")
    time.sleep(2.5)
    after = cap.stop()
    print(f"\nLLDP frames at h9: {len(recorded)} in 2.5 s while silent, {len(after)} in "
          "2.5 s once it spoke")
    assert after == []
    before_links = links(chain)
    counts = chain.ctl.get("/edge")["lldp"]["counts"]
    # the attack: replay every recorded frame twice, forge a Ryu-style one announcing
    # s1's uplink, and tamper with the port of a recorded one
    forged = unsigned_frame(1, 4, "02:00:00:00:00:01")
    tampered = bytearray(recorded[-1])
    at = tampered.index(b"\x04\x05\x02") + 6
    tampered[at] ^= 0x01
    frames = recorded + recorded + [forged, bytes(tampered)]
    send(chain, "h9", frames)
    time.sleep(2 * 1.0 + 0.5)  # two LLDP rounds: a flap would show
    now = chain.ctl.get("/edge")["lldp"]["counts"]
    delta = {k: now[k] - counts[k] for k in now}
    print(f"LLDP verdicts during the attack: {delta}")
    refused = sum(v for k, v in delta.items() if k not in ("accepted", "unconfirmed"))
    assert refused >= len(frames)
    assert delta["unsigned"] >= 1 and delta["bad_mac"] >= 1
    assert delta["accepted"] > 0  # the control: real links still confirmed each round
    assert links(chain) == before_links
    assert not any((lk[0], lk[1]) == (where["dpid"], where["port"])
                   or (lk[2], lk[3]) == (where["dpid"], where["port"]) for lk in links(chain))
    # h9's port did not become a link port: labelled frames from it are still dropped
    assert not [line for line in dump_flows("s3") if "priority=500" in line
                and re.search(rf"in_port={where['port']}\b", line)]
    assert [line for line in dump_flows("s3") if "priority=500" in line]  # real link ports
    flaps = [e for e in chain.ctl.get("/events")["events"]
             if e["kind"] == "link" and ("timed out" in e["message"]
                                         or "replaced" in e["message"])]
    assert flaps == []


def test_gratuitous_arp_takeover_is_refused(chain: ScentNet) -> None:
    h1, h4, h7 = (chain.host(n) for n in ("h1", "h4", "h7"))
    victim, attacker = learned(chain, 1), learned(chain, 7)
    learned(chain, 4)
    garp = bytes(Ether(src=mac(7), dst="ff:ff:ff:ff:ff:ff")
                 / ARP(op=1, hwsrc=mac(7), psrc=ip(1), hwdst="00:00:00:00:00:00", pdst=ip(1)))
    send(chain, "h7", [garp])
    wait_for(lambda: edge_drops(chain, port=attacker["port"], ip=ip(1)), 10,
             "a drop rule for h7 claiming 10.0.0.1")
    rule = wait_for(lambda: drop_rule(chain, "s3", attacker["port"], f"arp_spa={ip(1)}"), 5,
                    "the ARP drop rule on s3")
    dropped_before = n_packets(rule)
    h4.cmd(f"ip neigh flush dev {h4.defaultIntf().name}")
    at_h7 = Capture(h7.defaultIntf().name, host=h7, bpf="icmp")
    at_h1 = Capture(h1.defaultIntf().name, host=h1, bpf="icmp")
    stream = PingStream(h4, ip(1), 3.0, interval=0.05)
    time.sleep(0.5)
    send(chain, "h7", [garp], count=20)  # the attack repeated while h4 pings h1
    sent, received = stream.result()
    frames_h7, frames_h1 = at_h7.stop(), at_h1.stop()
    neigh = h4.cmd(f"ip neigh show {ip(1)}")
    dropped = counted_drops(chain, attacker["port"], f"arp_spa={ip(1)}", dropped_before, 20)
    print(f"\nARP takeover: h4 -> h1 {received}/{sent} pings; echo requests for 10.0.0.1 at "
          f"h1 {icmp_to(frames_h1, ip(1))}, at h7 {icmp_to(frames_h7, ip(1))}; h4's ARP entry "
          f"{neigh.strip()!r}; drop rule counted {dropped}")
    assert received == sent
    assert icmp_to(frames_h7, ip(1)) == 0 and icmp_to(frames_h1, ip(1)) >= sent
    assert mac(1) in neigh
    owner = rest_host(chain, ip(1))
    assert (owner["mac"], owner["dpid"], owner["port"]) == (mac(1), victim["dpid"],
                                                            victim["port"])
    # the control: the attacker's own address and traffic still work
    assert rest_host(chain, ip(7))["mac"] == mac(7)
    assert ping(h7, ip(4))


def test_mac_takeover_is_refused(chain: ScentNet) -> None:
    h1, h4, h8 = (chain.host(n) for n in ("h1", "h4", "h8"))
    victim, attacker = learned(chain, 4), learned(chain, 8)
    learned(chain, 1)
    spoof = bytes(Ether(src=mac(4), dst=mac(1)) / IP(src=ip(4), dst=ip(1)) / ICMP())
    send(chain, "h8", [spoof])
    wait_for(lambda: edge_drops(chain, port=attacker["port"], mac=mac(4)), 10,
             "a drop rule for h8 sending as h4's MAC")
    rule = wait_for(lambda: drop_rule(chain, "s3", attacker["port"], f"dl_src={mac(4)}"), 5,
                    "the MAC drop rule on s3")
    dropped_before = n_packets(rule)
    at_h8 = Capture(h8.defaultIntf().name, host=h8, bpf="icmp")
    at_h4 = Capture(h4.defaultIntf().name, host=h4, bpf="icmp")
    stream = PingStream(h1, ip(4), 3.0, interval=0.05)
    time.sleep(0.5)
    send(chain, "h8", [spoof], count=50)
    sent, received = stream.result()
    frames_h8, frames_h4 = at_h8.stop(), at_h4.stop()
    dropped = counted_drops(chain, attacker["port"], f"dl_src={mac(4)}", dropped_before, 50)
    print(f"\nMAC takeover: h1 -> h4 {received}/{sent} pings; echo requests for 10.0.0.4 at "
          f"h4 {icmp_to(frames_h4, ip(4))}, at h8 {icmp_to(frames_h8, ip(4))}; drop rule "
          f"counted {dropped}")
    assert received == sent
    assert icmp_to(frames_h8, ip(4)) == 0 and icmp_to(frames_h4, ip(4)) >= sent
    owner = rest_host(chain, ip(4))
    assert (owner["mac"], owner["dpid"], owner["port"]) == (mac(4), victim["dpid"],
                                                            victim["port"])
    assert any(e["kind"] == "port-security" and "answered" in e["message"]
               for e in chain.ctl.get("/events")["events"])


def test_a_vm_that_migrates_keeps_its_mac_and_ip(chain: ScentNet) -> None:
    h2, h3, h5 = (chain.host(n) for n in ("h2", "h3", "h5"))
    old = learned(chain, 2)
    learned(chain, 3)
    moves = chain.ctl.get("/edge")["counts"]["moves_accepted"]
    # the VM stops at s1 (its port stays up, nothing answers there) and resumes on s2
    h2.cmd(f"ip addr flush dev {h2.defaultIntf().name}")
    intf = h5.defaultIntf().name
    h5.cmd(f"ip link set {intf} down; ip link set {intf} address {mac(2)}; "
           f"ip addr flush dev {intf}; ip addr add {ip(2)}/8 dev {intf}; ip link set {intf} up")
    started = time.monotonic()
    wait_for(lambda: ping(h5, ip(3)), 20, "the migrated VM reaching h3")
    took = time.monotonic() - started
    new = rest_host(chain, ip(2))
    assert new["mac"] == mac(2) and (new["dpid"], new["port"]) != (old["dpid"], old["port"])
    assert new["dpid"] == f"{2:016x}"
    assert chain.ctl.get("/edge")["counts"]["moves_accepted"] == moves + 1
    assert not edge_drops(chain, mac=mac(2))
    at_h5 = Capture(intf, host=h5, bpf="icmp")
    assert ping(h3, ip(2), count=3)
    frames = at_h5.stop()
    print(f"\nmigration: h2's MAC and IP answered from s2 after {took:.1f} s; "
          f"{icmp_to(frames, ip(2))} echo requests from h3 arrived there")
    assert icmp_to(frames, ip(2)) >= 3
    assert re.search(r"moved to", " ".join(e["message"] for e in
                                           chain.ctl.get("/events")["events"]))
