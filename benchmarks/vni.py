"""Host tagging (sdnscent-vni) against switch tagging, on Mininet + Open vSwitch.

    python -m benchmarks.vni [--seconds 5] [--updates 10]

Needs root, Open vSwitch, Mininet, redis-server and `make bpf`. One network
(s1 - s2 - s3, h1 -> h3 over Redis), one run, in this order:

1. switch tagging: iperf3 TCP and UDP h1 -> h3, the edge switch pushes the label;
2. host tagging: sdnscent-vni on h1 (the label pushed at tc egress, GSO kept),
   s1 accepting h1's label with the flows sdnscent.tagging computes;
3. the spike's push (bpf_skb_adjust_room at the MAC layer) with TCP: as is, and
   with gso_max_segs 1 on h1's interface (its only way to work);
4. map update latency: a ping every 2 ms from h1 while the trail's label changes
   in the store; time from the store write to the first frame with the new
   label on h1's interface (pcap timestamps; same clock).

CPU per packet is iperf3's sender CPU time (user + system of the iperf3
process, where tc egress runs) over the packets sent. Ratios: host / switch.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mininet_tests.harness import REPO, Capture, ScentNet, ping, running_net, wait_for
from mininet_tests.test_vni import map_labels, mpls_labels, ofctl_flow
from sdnscent import tagging
from sdnscent.store import open_store
from sdnscent.trails import TrailState
from tests.redisproc import running_redis
from topologies.linear import LinearTopo

MSS_FRAME = 1448  # TCP payload per segment (MTU 1500, timestamps)


def say(text: str) -> None:
    print(f"vni: {text}", flush=True)


def iperf(net: ScentNet, seconds: int, udp: bool) -> dict[str, float]:
    """Gbit/s, sender CPU % (of one core) and CPU microseconds per packet."""
    h1, h3 = net.host("h1"), net.host("h3")
    server = h3.popen(["iperf3", "-s", "-1", "-p", "5299"])
    wait_for(lambda: "5299" in h3.cmd("ss -ltn"), 5, "iperf3 server")
    opts = "-u -b 2G -l 1400" if udp else ""
    out = h1.cmd(f"iperf3 -c {h3.IP()} -p 5299 -t {seconds} -J {opts}")
    server.wait(10)
    end = json.loads(out[out.index("{"):])["end"]
    cpu = end["cpu_utilization_percent"]["host_total"]
    if udp:
        sent = end["sum"]
        packets = sent["packets"]
        bps = sent["bits_per_second"] * (1 - sent["lost_percent"] / 100)
    else:
        bps = end["sum_received"]["bits_per_second"]
        packets = max(1, end["sum_sent"]["bytes"] // MSS_FRAME)
    return {"gbps": bps / 1e9, "cpu": cpu, "us_per_pkt": cpu / 100 * seconds / packets * 1e6}


def start_vni(net: ScentNet, url: str, obj: Path | None = None) -> Any:
    h1 = net.host("h1")
    cmd = [sys.executable, "-m", "sdnscent.vni.cli", "run", "--store", url, "--iface",
           str(h1.defaultIntf()), "--interval", "1"]
    if obj is not None:
        cmd += ["--object", str(obj)]
    proc = h1.popen(cmd, cwd=str(REPO), stderr=subprocess.PIPE, text=True)
    wait_for(lambda: net.host("h3").IP() in map_labels(h1), 20, "h1's map")
    return proc


def stop_vni(proc: Any) -> None:
    proc.send_signal(signal.SIGTERM)
    if proc.wait(10) != 0:
        raise RuntimeError(f"sdnscent-vni failed: {proc.stderr.read()}")


def trust(net: ScentNet, store_url: str) -> None:
    store = open_store(store_url)
    trails = store.all()
    store.close()
    h1 = net.host("h1")
    first = next(t for t in trails if t.src_ip == h1.IP() and len(t.hops) > 1)
    for flow in tagging.trusted_port_flows(first.ingress.dpid, first.ingress.in_port, trails):
        subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-flow", "s1", ofctl_flow(flow)],
                       check=True)


def update_latency(net: ScentNet, store_url: str, updates: int) -> list[float]:
    """Seconds from a store write to the first frame with the new label on h1."""
    h1, h3 = net.host("h1"), net.host("h3")
    store = open_store(store_url)
    trail = next(t for t in store.all() if t.src_ip == h1.IP() and t.dst_ip == h3.IP())
    pinger = h1.popen(["ping", "-n", "-i", "0.002", "-W", "0.1", h3.IP()],
                      stdout=subprocess.DEVNULL)
    out, version = [], trail.version
    try:
        for i in range(updates):
            label = 900_000 + i
            capture = Capture(str(h1.defaultIntf()), host=h1, bpf="mpls")
            time.sleep(0.2)
            version += 1
            written = time.time()
            store.put(trail.evolve(label=label, version=version, state=TrailState.ACTIVE))
            time.sleep(0.3)
            frames = [f for f in capture.stop() if mpls_labels(f) == [label]]
            if frames:
                out.append(float(frames[0].time) - written)
    finally:
        pinger.send_signal(signal.SIGINT)
        pinger.wait(5)
        store.put(trail.evolve(version=version + 1))  # the controller's record again
        store.close()
    return out


def row(name: str, r: dict[str, float], base: dict[str, float] | None) -> str:
    ratio = "" if base is None else (f"  throughput x{r['gbps'] / base['gbps']:.2f}  "
                                     f"cpu/pkt x{r['us_per_pkt'] / base['us_per_pkt']:.2f}")
    return (f"{name:<44} {r['gbps']:6.3f} Gbit/s  cpu {r['cpu']:5.1f}%  "
            f"{r['us_per_pkt']:6.2f} us/pkt{ratio}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vni")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--updates", type=int, default=10)
    args = parser.parse_args(argv)
    spike = Path(tempfile.mkdtemp(prefix="sdnscent-vni-bench-")) / "tagger_adjust_room.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-DVNI_PUSH_ADJUST_ROOM",
                    f"-I/usr/include/{subprocess.getoutput('uname -m')}-linux-gnu", "-c",
                    str(REPO / "sdnscent/vni/tagger.c"), "-o", str(spike)], check=True)
    with running_redis("sdnscent-vni-redis-") as redis:
        with running_net(LinearTopo(3), ["--store", redis.url]) as net:
            h1, h3 = net.host("h1"), net.host("h3")
            assert ping(h1, h3.IP()) and ping(h3, h1.IP())
            results: dict[str, dict[str, float]] = {}
            for udp in (False, True):
                results[f"switch {'udp' if udp else 'tcp'}"] = iperf(net, args.seconds, udp)
            vni = start_vni(net, redis.unix_url)
            trust(net, redis.url)
            for udp in (False, True):
                results[f"host {'udp' if udp else 'tcp'}"] = iperf(net, args.seconds, udp)
            latency = update_latency(net, redis.url, args.updates)
            stop_vni(vni)
            vni = start_vni(net, redis.unix_url, spike)
            trust(net, redis.url)
            results["spike tcp"] = iperf(net, min(3, args.seconds), False)
            intf = str(h1.defaultIntf())
            h1.cmd(f"ip link set dev {intf} gso_max_segs 1")
            results["spike tcp, gso_max_segs 1"] = iperf(net, args.seconds, False)
            h1.cmd(f"ip link set dev {intf} gso_max_segs 65535")
            stop_vni(vni)
    say("h1 -> h3 over s1 - s2 - s3 (OVS userspace datapath), "
        f"{args.seconds} s per iperf3 run")
    say(row("switch tagging, TCP", results["switch tcp"], None))
    say(row("host tagging (change_head), TCP", results["host tcp"], results["switch tcp"]))
    say(row("spike push (adjust_room), TCP", results["spike tcp"], results["switch tcp"]))
    say(row("spike push + gso_max_segs 1, TCP", results["spike tcp, gso_max_segs 1"],
            results["switch tcp"]))
    say(row("switch tagging, UDP 1400 B", results["switch udp"], None))
    say(row("host tagging (change_head), UDP 1400 B", results["host udp"],
            results["switch udp"]))
    if latency:
        ms = sorted(x * 1000 for x in latency)
        say(f"map update latency, store write -> first tagged frame ({len(ms)} of "
            f"{args.updates}): median {statistics.median(ms):.1f} ms, max {ms[-1]:.1f} ms")
    else:
        say("map update latency: no tagged frame seen")


if __name__ == "__main__":
    main()
