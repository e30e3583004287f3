"""Before and after, on the wire: the three edge attacks from host ports.

    sudo .venv/bin/python -m benchmarks.edge [--before-repo /work/main]

One Mininet run per controller (topologies/linear.py 3,3; see
mininet_tests/test_edge_attacks.py): "after" is this tree's controller;
"before" is the controller of another checkout (its own .venv), e.g. main
before issue 16, given with --before-repo. In each run: h9 speaks, then the
LLDP frames reaching it in 2.5 s are counted and it sends Ryu-style LLDP
announcing s1 port 3 (is a link s1:3 -> h9's port in /topology, and a
link-port flow for h9's port on s3?); h7 sends gratuitous ARP for h1's address
while h4 pings h1; h8 sends frames with h4's MAC and IP while h2 pings h4. For
the last two: the pings that came back and the echo requests that reached the
victim and the attacker (tcpdump in their namespaces).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether

from mininet_tests import harness
from mininet_tests.harness import REPO, Capture, PingStream, ScentNet, ping, running_net, wait_for
from sdnscent.discovery import unsigned_frame
from topologies.linear import LinearTopo

SECONDS = 3.0


def _mac(n: int) -> str:
    return f"00:00:00:00:00:{n:02x}"


def _ip(n: int) -> str:
    return f"10.0.0.{n}"


def _send(net: ScentNet, name: str, frame: bytes, count: int) -> None:
    host = net.host(name)
    host.cmd(f"cd {REPO} && {sys.executable} -m mininet_tests.rawsend "
             f"{host.defaultIntf().name} {frame.hex()} --count {count}")


def _echo_requests(frames: list[Any], dst: str) -> int:
    return sum(1 for f in frames if f.haslayer(ICMP) and f[IP].dst == dst and f[ICMP].type == 8)


def _attack(net: ScentNet, pinger: str, victim: int, attacker: int,
            frame: bytes) -> dict[str, Any]:
    """`attacker` sends `frame` (once, then 20 times during the pings) while `pinger`
    pings h<victim>; what came back and where the echo requests went."""
    src, vic, att = net.host(pinger), net.host(f"h{victim}"), net.host(f"h{attacker}")
    for host, peer in ((src, _ip(victim)), (att, _ip(5)), (vic, _ip(6))):
        wait_for(lambda host=host, peer=peer: ping(host, peer), 20, f"{host.name} -> {peer}")
    _send(net, att.name, frame, 1)
    time.sleep(2.0)  # the probe timeout and more: the first frame's effect settles
    src.cmd(f"ip neigh flush dev {src.defaultIntf().name}")
    caps = {"victim": Capture(vic.defaultIntf().name, host=vic, bpf="icmp"),
            "attacker": Capture(att.defaultIntf().name, host=att, bpf="icmp")}
    stream = PingStream(src, _ip(victim), SECONDS, interval=0.05)
    time.sleep(0.5)
    _send(net, att.name, frame, 20)
    sent, received = stream.result()
    seen = {k: _echo_requests(c.stop(), _ip(victim)) for k, c in caps.items()}
    owner = next((h for h in net.ctl.get("/topology")["hosts"] if h["ip"] == _ip(victim)), None)
    return {"pings_sent": sent, "pings_received": received,
            "echo_requests_at_victim": seen["victim"],
            "echo_requests_at_attacker": seen["attacker"],
            "rest_owner": f"{owner['mac']} at {owner['dpid']}:{owner['port']}" if owner
            else None}


def _lldp(net: ScentNet) -> dict[str, Any]:
    """h9 speaks; LLDP frames it then receives; a forged link from it, in REST and on s3."""
    h9 = net.host("h9")
    wait_for(lambda: ping(h9, _ip(5)), 20, "h9 -> 10.0.0.5")
    at = wait_for(lambda: next((h for h in net.ctl.get("/topology")["hosts"]
                                if h["ip"] == _ip(9)), None), 5, "h9 in /topology")
    time.sleep(1.5)
    cap = Capture(h9.defaultIntf().name, host=h9, bpf="ether proto 0x88cc")
    time.sleep(2.5)
    received = len(cap.stop())
    frame = unsigned_frame(1, 3, "02:00:00:00:00:01")
    for _ in range(4):
        _send(net, "h9", frame, 1)
        time.sleep(0.25)
    time.sleep(0.5)
    forged = [lk for lk in net.ctl.get("/topology")["links"]
              if (lk["dst"], lk["dst_port"]) == (at["dpid"], at["port"])]
    flows = [line for line in harness.dump_flows("s3")
             if "priority=500" in line and re.search(rf"in_port={at['port']}\b", line)]
    return {"lldp_frames_at_host_in_2_5_s": received, "forged_links_in_rest": len(forged),
            "link_port_flow_for_host_port": len(flows)}


@contextlib.contextmanager
def _controller_of(repo: Path | None) -> Iterator[None]:
    """Run the harness's controller from `repo` with its own .venv (None: this tree)."""
    if repo is None:
        yield
        return
    saved = harness.REPO, sys.executable
    harness.REPO, sys.executable = repo, str(repo / ".venv" / "bin" / "python")
    try:
        yield
    finally:
        harness.REPO, sys.executable = saved


def run(repo: Path | None) -> dict[str, Any]:
    """The three attacks on a fresh network under the controller of `repo`."""
    garp = bytes(Ether(src=_mac(7), dst="ff:ff:ff:ff:ff:ff")
                 / ARP(op=1, hwsrc=_mac(7), psrc=_ip(1), hwdst="00:00:00:00:00:00",
                       pdst=_ip(1)))
    spoof = bytes(Ether(src=_mac(4), dst=_mac(2)) / IP(src=_ip(4), dst=_ip(2)) / ICMP())
    python = sys.executable
    with _controller_of(repo), running_net(LinearTopo(3, 3)) as net:
        sys.executable, saved = python, sys.executable  # rawsend: this tree's python
        try:
            return {"lldp_forgery": _lldp(net),
                    "arp_takeover": _attack(net, "h4", 1, 7, garp),
                    "mac_takeover": _attack(net, "h2", 4, 8, spoof)}
        finally:
            sys.executable = saved


def main(argv: list[str] | None = None) -> int:
    """Print the figures as JSON: before (another checkout) and after (this tree)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.edge")
    parser.add_argument("--before-repo", type=Path, metavar="DIR",
                        help="a checkout with its own .venv whose controller is 'before'")
    args = parser.parse_args(argv)
    results = {}
    if args.before_repo:
        results["before"] = run(args.before_repo.resolve())
    results["after"] = run(None)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
