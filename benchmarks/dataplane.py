"""Data plane and convergence on Mininet + Open vSwitch (issue 6, benchmarks 3 and 4).

    python -m benchmarks.dataplane [--trails 1000,10000] [--links 5] [--seconds 5]

Needs root, Open vSwitch and Mininet (``make setup``); holds the Mininet lock of
mininet_tests/harness.py for each network. In one run:

1. throughput: iperf3 TCP h1 -> h3 over a 3-switch line, first over labelled
   trails under the controller, then on the same bridges with plain forwarding
   (the controller stopped, every bridge reset to one ``actions=NORMAL`` flow);
   median of three runs each; ratio labelled / plain.
2. flow installation: N synthetic trails between the two hosts of a 2-switch
   line (distinct UDP ports, so distinct classifiers and labels) are written to
   Redis; the controller starts, recovers them and installs them on each switch
   as it connects (its audit: flow mods in one batch per switch, then one
   barrier; the ``switch-ready`` event times it). Baseline on the same switch:
   the same flows (``dump-flows``) deleted and added again by ``ovs-ofctl
   add-flows``, with and without ``--bundle`` (OpenFlow 1.4 bundles: the
   switch's own limit). Ratios controller / bundle.
3. flow entries per switch for 1,000 flows between 32 host pairs of a k=4
   fat-tree (pure computation on the compiler's output, no Mininet): compiled
   trails (a trail per pair) against per-pair forwarding (one rule per host
   pair on every hop), per-destination forwarding (one rule per destination on
   every switch its traffic crosses) and, for scale, one exact 5-tuple rule
   per flow on every hop.
4. convergence: a ping every 10 ms across a k=4 fat-tree; an aggregation-core
   link of its trail goes down (``ip link set ... down``); the gap in replies
   and the packets lost; repeated on ``--links`` links.
5. multipath: 8 parallel TCP streams h1 -> h3 across a 2-spine leaf-spine
   whose leaf uplinks are shaped to ``--shape`` Mbit/s (tc tbf), under the
   policy of mininet_tests/policies/multipath.yaml with ``paths: 1`` (one
   trail, the baseline) and ``paths: 2`` (split over both spines); median of
   three runs each; ratio split / single, and each leg's share of packets.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mininet_tests.demo import iperf
from mininet_tests.harness import (
    ControllerProcess,
    ScentNet,
    dump_flows,
    mininet_lock,
    ping,
    port_name,
    trail_between,
    wait_for,
)
from sdnscent import compiler
from sdnscent.appplan import PRIO_APP_BASE
from sdnscent.store import open_store
from sdnscent.trails import Hop, Trail, TrailState
from tests.conftest import build_fat_tree
from tests.redisproc import running_redis
from topologies.fattree import FatTreeTopo
from topologies.leafspine import LeafSpineTopo
from topologies.linear import LinearTopo

MULTIPATH_POLICY = Path(__file__).parent.parent / "mininet_tests" / "policies" / "multipath.yaml"
FIRST_LABEL = 100_000  # synthetic trails' labels, clear of the allocator's first ones
RUNS = 3  # iperf3 runs per side of the throughput comparison (median)


def say(text: str) -> None:
    print(f"dataplane: {text}", flush=True)


def ofctl(*args: str, check: bool = True) -> str:
    return subprocess.run(["ovs-ofctl", *args], capture_output=True, text=True,
                          check=check).stdout


# 1. throughput ----------------------------------------------------------------

def throughput(seconds: int) -> dict[str, float]:
    with mininet_lock():
        ctl = ControllerProcess(["--trail-lease", "0"])
        net = ScentNet(LinearTopo(3), ctl)
        try:
            net.start()
            h1, h3 = net.host("h1"), net.host("h3")
            wait_for(lambda: ping(h1, h3.IP()), 20, "h1 -> h3")
            labelled = statistics.median(iperf(net, "h1", "h3", seconds)
                                         for _ in range(RUNS))
            ctl.stop()
            for sw in net.switch_names:  # plain forwarding on the same bridges
                ofctl("-O", "OpenFlow13", "del-flows", sw)
                ofctl("-O", "OpenFlow13", "add-flow", sw, "actions=NORMAL")
            wait_for(lambda: ping(h1, h3.IP()), 10, "h1 -> h3 with NORMAL")
            plain = statistics.median(iperf(net, "h1", "h3", seconds) for _ in range(RUNS))
        finally:
            net.stop()
            ctl.stop()
    return {"labelled": labelled, "plain": plain}


# 2. flow installation -----------------------------------------------------------

def synthetic_trails(count: int) -> list[Trail]:
    """`count` trails h1 -> h2 over s1 -> s2 of LinearTopo(2), one UDP port each."""
    hops = (Hop(1, 1, 2), Hop(2, 2, 1))
    return [Trail(i + 1, FIRST_LABEL + i, "00:00:00:00:00:01", "00:00:00:00:00:02",
                  "10.0.0.1", "10.0.0.2", hops, app="bench", cls="bench",
                  state=TrailState.ACTIVE, created=time.time(),
                  match=((("ip_proto", 17), ("udp_dst", 1024 + i)),), priority=PRIO_APP_BASE)
            for i in range(count)]


def ready_events(ctl: ControllerProcess) -> dict[str, tuple[int, float]]:
    """switch -> (operations, ms) from the controller's switch-ready events."""
    out = {}
    for event in ctl.get("/events")["events"]:
        found = re.match(r"switch (\S+): (\d+) operations confirmed in (\d+) ms", event["message"])
        if event["kind"] == "switch-ready" and found:
            out[found[1]] = (int(found[2]), float(found[3]))
    return out


def timed_add_flows(switch: str, flows: Path, bundle: bool) -> float:
    ofctl("-O", "OpenFlow13", "del-flows", switch)
    args = ["-O", "OpenFlow14", "--bundle"] if bundle else ["-O", "OpenFlow13"]
    started = time.perf_counter()
    ofctl(*args, "add-flows", switch, str(flows))
    return time.perf_counter() - started


def installation(count: int) -> dict[str, float]:
    with running_redis("sdnscent-bench-") as server:
        workdir = server.dir
        store = open_store(server.url)
        for trail in synthetic_trails(count):
            store.put(trail)
        store.reserve_ids(count)
        store.close()
        with mininet_lock():
            ctl = ControllerProcess(["--store", server.url, "--trail-lease", "0"])
            net = ScentNet(LinearTopo(2), ctl)
            try:
                net.start(discovery_timeout=600)
                wait_for(lambda: {"s1", "s2"} <= set(ready_events(ctl)), 600,
                         "both switches installed")
                events = ready_events(ctl)
                flows = {sw: len(dump_flows(sw)) for sw in ("s1", "s2")}
                ctl.stop()  # the switches keep their flows (fail-secure)
                subprocess.run(["ovs-vsctl", "set", "bridge", "s1",
                                "protocols=OpenFlow13,OpenFlow14"], check=True)
                dumped = Path(workdir) / "s1.flows"
                dumped.write_text(ofctl("-O", "OpenFlow13", "dump-flows", "s1",
                                        "--no-stats"))
                plain_s = timed_add_flows("s1", dumped, bundle=False)
                bundle_s = timed_add_flows("s1", dumped, bundle=True)
                assert len(dump_flows("s1")) == flows["s1"]
            finally:
                net.stop()
                ctl.stop()
    ops, ms = events["s1"]
    return {"trails": count, "s1_flows": flows["s1"], "s2_flows": flows["s2"],
            "controller_ops": ops, "controller_s": ms / 1000,
            "add_flows_s": plain_s, "bundle_s": bundle_s}


# 3. entries per switch -------------------------------------------------------------

def entries_per_switch(flows: int = 1000, pairs: int = 32, seed: int = 1) -> dict[str, Any]:
    """Forwarding entries for `flows` flows spread over `pairs` random host pairs of a
    k=4 fat-tree, every flow on its pair's trail path, four ways.

    "trails": the compiler's flows of the pairs' trails (ingress classifier, a label
    entry per transit hop, the exit). "per_pair": one rule per host pair on every
    switch of its path (MAC or IP pair forwarding). "per_dst": one rule per
    destination host on every switch that some pair's path to it crosses (plain
    destination forwarding needs at least these). "per_flow": one exact 5-tuple rule
    per flow on every switch of its path. Each as max per switch and total.
    """
    tree = build_fat_tree(4)
    rng = random.Random(seed)
    ctrl = tree.controller(lambda: 0.0)
    hosts = list(tree.hosts)
    chosen: list[tuple[Any, Any]] = []
    while len(chosen) < pairs:
        a, b = rng.sample(hosts, 2)
        if (a, b) not in chosen:
            chosen.append((a, b))
    trails = [ctrl.ensure_trail(a.mac, b.mac)[0] for a, b in chosen]
    per_flow: Counter[int] = Counter()
    for i in range(flows):  # flows spread over the pairs; each takes its pair's path
        trail = trails[i % pairs]
        for dpid in trail.switches:
            per_flow[dpid] += 1
    per_pair: Counter[int] = Counter()
    destinations: set[tuple[int, str]] = set()
    for trail in trails:
        for dpid in trail.switches:
            per_pair[dpid] += 1
            destinations.add((dpid, trail.dst_mac))
    per_dst: Counter[int] = Counter(dpid for dpid, _ in destinations)
    with_trails: Counter[int] = Counter()
    for trail in trails:
        for flow in compiler.trail_flows(trail):
            with_trails[flow.dpid] += 1
    used = sorted(set(per_flow) | set(with_trails))
    counts = {"trails": with_trails, "per_pair": per_pair, "per_dst": per_dst,
              "per_flow": per_flow}
    out: dict[str, Any] = {"switches": len(used), "flows": flows, "pairs": pairs}
    for name, count in counts.items():
        out[f"{name}_max"] = max(count[d] for d in used)
        out[f"{name}_total"] = sum(count.values())
    return out


# 4. convergence ----------------------------------------------------------------------

def convergence(links: int) -> list[tuple[float, int]]:
    """(gap in s, pings lost) for `links` link failures under a ping every 10 ms."""
    results = []
    with mininet_lock():
        ctl = ControllerProcess()
        net = ScentNet(FatTreeTopo(4), ctl)
        try:
            net.start()
            pairs = [("h1", "h16"), ("h2", "h15"), ("h3", "h14"), ("h4", "h13"),
                     ("h5", "h12"), ("h6", "h11"), ("h7", "h10"), ("h8", "h9")]
            for src_name, dst_name in pairs[:links]:
                src, dst = net.host(src_name), net.host(dst_name)
                wait_for(lambda s=src, d=dst: ping(s, d.IP()), 20, f"{src_name} -> {dst_name}")
                hop = trail_between(net, src.IP(), dst.IP())["hops"][1]  # agg -> core
                intf = port_name(net, hop["dpid"], hop["out_port"])
                count = 400
                proc = src.popen(["ping", "-n", "-i", "0.01", "-W", "1", "-c", str(count),
                                  dst.IP()], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                time.sleep(1.0)
                subprocess.run(["ip", "link", "set", intf, "down"], check=True)
                out = proc.communicate(timeout=60)[0].decode()
                subprocess.run(["ip", "link", "set", intf, "up"], check=True)
                sent, received = map(int, re.search(
                    r"(\d+) packets transmitted, (\d+) received", out).groups())
                results.append(((sent - received) * 0.01, sent - received))
                wait_for(lambda: len(ctl.get("/topology")["links"]) == 64, 30,
                         "the link back in /topology")
        finally:
            net.stop()
            ctl.stop()
    return results


# 5. multipath -------------------------------------------------------------------

def multipath(paths: int, shape: int, seconds: int, workdir: Path) -> dict[str, Any]:
    """Gbit/s of 8 TCP streams h1 -> h3 (median of RUNS) and packets per spine label."""
    policy = workdir / f"multipath-{paths}.yaml"
    policy.write_text(MULTIPATH_POLICY.read_text().replace("paths: 2", f"paths: {paths}"))
    with mininet_lock():
        ctl = ControllerProcess(["--policy", str(policy), "--trail-lease", "0",
                                 "--default-link-capacity", str(shape * 10**6)])
        net = ScentNet(LeafSpineTopo(spines=2, leaves=2, hosts_per_leaf=2), ctl)
        try:
            net.start()
            for port in (3, 4):  # leaf s3's uplinks to spines s1 and s2
                subprocess.run(["tc", "qdisc", "replace", "dev", f"s3-eth{port}", "root", "tbf",
                                "rate", f"{shape}mbit", "burst", "64kb", "latency", "50ms"],
                               check=True)
            h1, h3 = net.host("h1"), net.host("h3")
            wait_for(lambda: ping(h1, h3.IP()), 20, "h1 -> h3")
            runs = []
            for _ in range(RUNS):
                proc = h3.popen(["iperf3", "-s", "-1", "-B", h3.IP(), "-p", "5201"])
                wait_for(lambda: ":5201" in h3.cmd("ss -ltn"), 5, "the iperf3 server")
                out = h1.cmd(f"iperf3 -c {h3.IP()} -p 5201 -P 8 -t {seconds} -J")
                proc.wait(10)
                runs.append(json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9)
            legs = {}
            for sw in ("s1", "s2"):
                legs[sw] = sum(int(n) for line in dump_flows(sw) if "mpls_label=" in line
                               for n in re.findall(r"n_packets=(\d+)", line))
        finally:
            net.stop()
            ctl.stop()
    return {"gbps": statistics.median(runs), "runs": runs, "spine_packets": legs}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.dataplane", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trails", default="1000,10000", help="trail counts to install")
    p.add_argument("--links", type=int, default=5, help="link failures to time")
    p.add_argument("--seconds", type=int, default=5, help="iperf3 duration")
    p.add_argument("--parts", default="1,2,3,4,5", help="which parts to run (default all)")
    p.add_argument("--shape", type=int, default=50, help="Mbit/s of the leaf uplinks (part 5)")
    args = p.parse_args(argv)
    parts = set(args.parts.split(","))

    if "1" in parts:
        say("1. throughput over labelled trails vs plain forwarding (3-switch line)")
        tput = throughput(args.seconds)
        print(f"  labelled {tput['labelled']:.3f} Gbit/s, plain {tput['plain']:.3f} Gbit/s, "
              f"ratio {tput['labelled'] / tput['plain']:.3f} (medians of {RUNS} runs)")
    if "2" in parts:
        installs(args.trails)
    if "3" in parts:
        say("3. flow entries per switch: 1,000 flows between 32 host pairs (k=4 fat-tree)")
        e = entries_per_switch()
        for name, what in (("trails", "trails (compiled)"),
                           ("per_pair", "per host pair, every hop"),
                           ("per_dst", "per destination, every switch"),
                           ("per_flow", "per 5-tuple flow, every hop")):
            print(f"  {what:<30} max {e[f'{name}_max']:>4} per switch, "
                  f"{e[f'{name}_total']:>5} in all; trails / this "
                  f"{e['trails_total'] / e[f'{name}_total']:.2f}")
    if "4" in parts:
        say(f"4. convergence after a link failure (ping every 10 ms, {args.links} links)")
        runs = convergence(args.links)
        gaps = [g for g, _ in runs]
        print(f"  gap median {statistics.median(gaps) * 1000:.0f} ms, max "
              f"{max(gaps) * 1000:.0f} ms; pings lost {[n for _, n in runs]}")
    if "5" in parts:
        say(f"5. multipath: 8 TCP streams over a 2-spine leaf-spine, uplinks {args.shape} Mbit/s")
        with tempfile.TemporaryDirectory(prefix="sdnscent-bench-") as tmp:
            single = multipath(1, args.shape, args.seconds, Path(tmp))
            split = multipath(2, args.shape, args.seconds, Path(tmp))
        for name, r in (("paths: 1", single), ("paths: 2", split)):
            total = sum(r["spine_packets"].values()) or 1
            shares = " / ".join(f"{sw} {n / total:.2f}" for sw, n in r["spine_packets"].items())
            print(f"  {name}: {r['gbps'] * 1000:.1f} Mbit/s (runs "
                  + ", ".join(f"{g * 1000:.1f}" for g in r["runs"]) + f"); labelled packets "
                  f"per spine {shares}")
        print(f"  ratio split / single {split['gbps'] / single['gbps']:.2f} "
              f"(medians of {RUNS} runs)")


def installs(counts: str) -> None:
    say("2. flow installation: controller vs ovs-ofctl add-flows (one switch, s1)")
    print(f"  {'trails':>7} {'s1 flows':>9} {'controller':>12} {'ctl flows/s':>12} "
          f"{'add-flows/s':>12} {'bundle/s':>10} {'ctl/bundle':>11} {'trails/s':>9}")
    for count in (int(x) for x in counts.split(",")):
        r = installation(count)
        ctl_rate = r["controller_ops"] / r["controller_s"]
        print(f"  {count:>7} {r['s1_flows']:>9} {r['controller_s']:>10.2f} s "
              f"{ctl_rate:>12,.0f} {r['s1_flows'] / r['add_flows_s']:>12,.0f} "
              f"{r['s1_flows'] / r['bundle_s']:>10,.0f} "
              f"{ctl_rate / (r['s1_flows'] / r['bundle_s']):>11.2f} "
              f"{count / r['controller_s']:>9,.0f}")


if __name__ == "__main__":
    main()
