"""The failover test bed: a ring of five switches with one link through a Linux bridge,
and a numbered UDP stream across a trail while that link fails.

    h1 - s1 -[m1: Linux bridge]- s2 - s3 - h2
          \\                         /
           s4 ------------ s5 -----

The h1 -> h2 trail takes s1 -> s2 -> s3 (two links) rather than s1 -> s4 -> s5 -> s3.
The s1 - s2 link runs through host m1, whose two interfaces are bridged: taking
them down is a carrier loss at both switch ports; an nftables rule dropping
everything the bridge forwards is a silent failure (carrier stays up), which only
BFD (or LLDP, seconds later) notices. Used by mininet_tests/test_failover.py and
benchmarks/failover.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from mininet.topo import Topo

from mininet_tests.harness import CORE_MTU, REPO, ScentNet, ping, wait_for

OVSDB = "/var/run/openvswitch/db.sock"
BRIDGED = (("s1", 2), ("s2", 1))  # the switch ports on either side of the bridge
NFT_TABLE = "sdnscent_silent"


class FailoverTopo(Topo):
    """The ring above; ports: s1 1 h1, 2 m1, 3 s4; s2 1 m1, 2 s3; s3 1 h2, 2 s2, 3 s5."""

    def build(self, **_opts: Any) -> None:
        s = {n: self.addSwitch(f"s{n}", dpid=f"{n:016x}", protocols="OpenFlow13")
             for n in range(1, 6)}
        h1 = self.addHost("h1", ip="10.0.0.1/8", mac="00:00:00:00:00:01")
        h2 = self.addHost("h2", ip="10.0.0.2/8", mac="00:00:00:00:00:02")
        m1 = self.addHost("m1", ip=None)
        self.addLink(h1, s[1], port2=1)
        self.addLink(h2, s[3], port2=1)
        self.addLink(m1, s[1], port1=0, port2=2)
        self.addLink(m1, s[2], port1=1, port2=1)
        self.addLink(s[2], s[3], port1=2, port2=2)
        self.addLink(s[1], s[4], port1=3, port2=1)
        self.addLink(s[4], s[5], port1=2, port2=1)
        self.addLink(s[5], s[3], port1=2, port2=3)


def bridge(net: ScentNet) -> None:
    """Bridge m1's two interfaces (LLDP let through), wait until the controller sees
    the s1 - s2 link, then until h1 reaches h2 (over that link)."""
    m1 = net.host("m1")
    for switch, port in BRIDGED:
        subprocess.run(["ip", "link", "set", "dev", f"{switch}-eth{port}", "mtu", str(CORE_MTU)],
                       check=True)
    script = [
        "sysctl -qw net.ipv6.conf.all.disable_ipv6=1",
        "sysctl -qw net.ipv6.conf.default.disable_ipv6=1",
        "ip link add br0 type bridge stp_state 0 forward_delay 0 group_fwd_mask 0x4000",
        f"ip link set br0 mtu {CORE_MTU}",
    ]
    for intf in ("m1-eth0", "m1-eth1"):
        script += [f"ip addr flush dev {intf}", f"ip link set {intf} mtu {CORE_MTU}",
                   f"ip link set {intf} master br0", f"ip link set {intf} up"]
    script.append("ip link set br0 up")
    for line in script:
        out = m1.cmd(line + " 2>&1; echo rc=$?")
        if not out.strip().endswith("rc=0"):
            raise RuntimeError(f"m1: {line}: {out.strip()}")

    def linked() -> bool:
        ends = {(lk["src"], lk["src_port"]) for lk in net.ctl.get("/topology")["links"]}
        return {(f"{1:016x}", 2), (f"{2:016x}", 1)} <= ends

    wait_for(linked, 20, "the s1 - s2 link through the bridge in /topology", interval=0.2)
    h1, h2 = net.host("h1"), net.host("h2")
    wait_for(lambda: ping(h1, h2.IP()), 20, "h1 -> h2", interval=0.5)


def carrier_loss(net: ScentNet) -> None:
    """Both bridge ports down: s1 and s2 lose carrier on the link."""
    m1 = net.host("m1")
    m1.cmd("ip link set m1-eth0 down; ip link set m1-eth1 down")


def carrier_back(net: ScentNet) -> None:
    """Both bridge ports up again: the link comes back."""
    net.host("m1").cmd("ip link set m1-eth0 up; ip link set m1-eth1 up")


def link_back(net: ScentNet) -> bool:
    """Whether the controller lists both directions of the s1 - s2 link."""
    ends = {(lk["src"], lk["src_port"]) for lk in net.ctl.get("/topology")["links"]}
    return {(f"{1:016x}", 2), (f"{2:016x}", 1)} <= ends


def silent_failure(net: ScentNet) -> None:
    """The bridge drops every frame; carrier stays up at both switch ports."""
    out = net.host("m1").cmd(
        f"nft add table bridge {NFT_TABLE} && nft add chain bridge {NFT_TABLE} forward_drop "
        "'{ type filter hook forward priority 0; policy drop; }' 2>&1; echo rc=$?")
    if not out.strip().endswith("rc=0"):
        raise RuntimeError(f"m1: the nftables drop rule: {out.strip()}")


def link_gone(net: ScentNet) -> bool:
    """Whether the controller no longer lists the s1 - s2 link (LLDP timed out)."""
    ends = {(lk["src"], lk["src_port"]) for lk in net.ctl.get("/topology")["links"]}
    return not ends & {(f"{1:016x}", 2), (f"{2:016x}", 1)}


def bfd_up(net: ScentNet) -> bool:
    """Whether BFD reports the session up at both ends of the bridged link."""
    for switch, port in BRIDGED:
        out = subprocess.run(["ovs-vsctl", "--timeout=5", "get", "interface",
                              f"{switch}-eth{port}", "bfd_status"],
                             capture_output=True, text=True).stdout
        if 'state=up' not in out.replace('"', ""):
            return False
    return True


def trail_hops(net: ScentNet, src_ip: str, dst_ip: str) -> list[tuple[str, int]]:
    """(switch name, out port) of the default trail src -> dst."""
    trails = net.ctl.get(f"/trails?src={src_ip}&dst={dst_ip}")["trails"]
    trail = next(t for t in trails if t["app"] == "default")
    return [(h["switch"], h["out_port"]) for h in trail["hops"]]


@dataclass
class StreamResult:
    """What a numbered UDP stream lost around one failure."""

    sent: int
    received: int
    lost: int
    gap_ms: float  # the longest silence around a lost run (0: nothing lost)
    runs: int

    def to_dict(self) -> dict[str, float | int]:
        """JSON form."""
        return {"sent": self.sent, "received": self.received, "lost": self.lost,
                "gap_ms": round(self.gap_ms, 1), "runs": self.runs}


def _udpseq(host: Any, *args: str) -> Any:
    return host.popen([sys.executable, "-m", "mininet_tests.udpseq", *args], cwd=str(REPO),
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stream_through(net: ScentNet, fail: Any, rate: int, before: float = 1.5,
                   after: float = 3.0, port: int = 7100, size: int = 200) -> StreamResult:
    """Send `rate` numbered datagrams/s h1 -> h2; `fail(net)` after `before` s; count."""
    h1, h2 = net.host("h1"), net.host("h2")
    count = int(rate * (before + after))
    # the receiver must outwait the longest outage (its --idle ends it early)
    receiver = _udpseq(h2, "recv", str(port), "--seconds", str(before + after + 15),
                       "--idle", str(max(2.0, after)), "--expect", str(count), "--gaps")
    wait_for(lambda: f":{port}" in h2.cmd(f"ss -Hlun sport = :{port}"), 10,
             "the udpseq receiver")
    sender = _udpseq(h1, "send", h2.IP(), str(port), "--rate", str(rate), "--count",
                     str(count), "--size", str(size))
    time.sleep(before)
    fail(net)
    try:
        sender.wait(after + 30)
    except subprocess.TimeoutExpired:
        sender.send_signal(signal.SIGTERM)
        sender.wait(10)
    out, err = receiver.communicate(timeout=60)
    if not out.strip():
        raise RuntimeError(f"udpseq receiver: {err.decode()}")
    got = json.loads(out.decode())
    gaps = got.get("gaps", [])
    longest = 0.0
    for _first, _last, t_before, t_after in gaps:
        if t_before is not None and t_after is not None:
            longest = max(longest, (t_after - t_before) * 1e3)
    return StreamResult(count, got["received"], got["lost"], longest, len(gaps))
