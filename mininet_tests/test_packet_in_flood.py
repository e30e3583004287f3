"""A packet-in flood (docs/security.rst): one host's 10,000 packets/s cost only its own port.

topologies/linear.py with 2 switches and 3 hosts each (h1-h3 on s1, h4-h6 on s2).
h1 sends IPv4 to a MAC and an address nobody has: no classifier matches, so every
frame is a packet-in (table 0, priority 10, docs/pipeline.rst). Meanwhile the REST
API answers, a new pair of other hosts on the same switch gets its trail, and
/metrics shows the per-port limiter dropping the flood. Prints the measured numbers.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from mininet_tests.harness import (
    REPO,
    ScentNet,
    dump_flows,
    n_packets,
    running_net,
    trail_between,
)
from topologies.linear import LinearTopo

FLOOD_PPS = 10_000
WINDOW = 4.0  # seconds measured, with and without the flood
RATE, BURST = 100, 200  # the controller's defaults (--packet-in-rate, --packet-in-burst)
NOBODY_MAC, NOBODY_IP = "02:5c:e7:de:ad:01", "10.0.0.250"


@pytest.fixture(scope="module")
def linnet(testbed: None) -> Iterator[ScentNet]:
    """Two switches, three hosts on each, the controller with its default limiter."""
    with running_net(LinearTopo(n=2, hosts_per_switch=3)) as net:
        yield net


def packet_in_counters(net: ScentNet) -> dict[str, float]:
    """Packet-ins accepted (by kind) and rate-limited, from GET /metrics."""
    url = f"http://127.0.0.1:{net.ctl.api_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    counters = {"limited": 0.0}
    for kind, value in re.findall(r'^sdnscent_packet_ins_total\{kind="(\w[\w-]*)"\} (\S+)$',
                                  text, re.M):
        counters[kind] = float(value)
    limited = re.search(r"^sdnscent_packet_ins_rate_limited_total (\S+)$", text, re.M)
    if limited:
        counters["limited"] = float(limited.group(1))
    return counters


def to_controller(net: ScentNet) -> int:
    """Packets s1 sent to the controller for lack of a trail (table 0, priority 10)."""
    return n_packets(next(ln for ln in dump_flows("s1")
                          if re.search(r"\bpriority=10,ip\b", ln)))


def rest_times(net: ScentNet, count: int = 10) -> list[float]:
    """Seconds each of `count` GET /trails took."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        net.ctl.get("/trails")
        times.append(time.perf_counter() - started)
        time.sleep(0.05)
    return times


def first_reply(net: ScentNet, src: str, dst: str) -> float:
    """Seconds from starting to ping a new pair until its first reply (it must come)."""
    a, b = net.host(src), net.host(dst)
    started = time.perf_counter()
    out = a.cmd(f"ping -n -c 1 -W 8 {b.IP()}")
    elapsed = time.perf_counter() - started
    assert " 0% packet loss" in out, out
    return elapsed


def measure(net: ScentNet, pair: tuple[str, str]) -> dict[str, Any]:
    """REST, a new pair's first reply and the packet-in counters over WINDOW seconds."""
    before, rule_before, started = packet_in_counters(net), to_controller(net), time.monotonic()
    rest = rest_times(net)
    reply = first_reply(net, *pair)
    time.sleep(max(0.0, started + WINDOW - time.monotonic()))
    after, rule_after = packet_in_counters(net), to_controller(net)
    seconds = time.monotonic() - started
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    accepted = sum(v for k, v in delta.items() if k != "limited")
    return {"seconds": seconds, "rest": rest, "first_reply": reply, "delta": delta,
            "accepted_per_s": accepted / seconds, "limited_per_s": delta["limited"] / seconds,
            "received_per_s": (accepted + delta["limited"]) / seconds,
            "switch_per_s": (rule_after - rule_before) / seconds}


def report(name: str, m: dict[str, Any]) -> str:
    rest = m["rest"]
    return (f"{name:>8}: packet-ins handled {m['received_per_s']:7.0f}/s (accepted "
            f"{m['accepted_per_s']:5.0f}/s, rate-limited {m['limited_per_s']:6.0f}/s; s1 sent "
            f"{m['switch_per_s']:6.0f}/s to the controller); GET /trails median "
            f"{statistics.median(rest) * 1000:.1f} ms, max {max(rest) * 1000:.1f} ms; new pair's "
            f"first ping reply after {m['first_reply'] * 1000:.0f} ms")


def test_flood_costs_only_the_flooding_port(linnet: ScentNet) -> None:
    h1 = linnet.host("h1")
    quiet = measure(linnet, ("h2", "h5"))
    frame = bytes(Ether(src=h1.MAC(), dst=NOBODY_MAC) / IP(src=h1.IP(), dst=NOBODY_IP)
                  / UDP(sport=40000, dport=9) / (b"\0" * 18))
    sender = h1.popen([sys.executable, "-m", "mininet_tests.rawsend", h1.defaultIntf().name,
                       frame.hex(), "--rate", str(FLOOD_PPS), "--seconds", str(WINDOW + 1.5)],
                      cwd=str(REPO))
    try:
        time.sleep(0.5)  # the port's burst is spent; the limiter is at its rate
        flood = measure(linnet, ("h3", "h6"))
        out, _ = sender.communicate(timeout=15)
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait()
    sent = json.loads(out.decode().strip().splitlines()[-1])
    print(f"\nh1 sent {sent['sent']} frames in {sent['seconds']} s ({sent['rate']}/s, "
          f"{sent['refused']} refused by its kernel)")
    print(report("no flood", quiet))
    print(report("flood", flood))
    assert sent["rate"] >= 0.9 * FLOOD_PPS, sent
    # The flood reached the controller and the limiter dropped all but h1's rate.
    assert flood["switch_per_s"] > 10 * RATE, flood
    assert flood["limited_per_s"] > 5 * RATE, flood
    assert flood["delta"].get("ipv4", 0) <= RATE * flood["seconds"] + BURST, flood["delta"]
    # Everyone else went on: the API answered, the new pair got trails and replies.
    assert max(flood["rest"]) < 1.0, flood["rest"]
    assert flood["first_reply"] < 3.0, flood
    for src, dst in (("h3", "h6"), ("h6", "h3"), ("h2", "h5")):
        trail_between(linnet, linnet.host(src).IP(), linnet.host(dst).IP())
    assert not linnet.ctl.get("/trails?dst=" + NOBODY_IP)["trails"]
