"""IPv6 against IPv4 on the same trails: set-up latency and TCP throughput.

`python -m benchmarks.ipv6 [--rounds N] [--seconds S]` (root, Mininet; takes the
machine-wide Mininet lock): s1 - s2 - s3 - s4 with two hosts per switch, each
host with 10.0.0.<n> and fc00::<n>. For each pair (h1 -> h<last>, h2 -> h<last-1>,
...) the first ping of each family sets up its trails: the controller's set-up
latency (from the packet-in that asked to the barrier that confirmed, REST
``setup_latency_ms``) is read for both families. Then iperf3 TCP runs alternate
IPv4 and IPv6 on the first pair, `--rounds` times each. Every IPv6 figure is
printed with its ratio to the IPv4 baseline of the same run.
"""

from __future__ import annotations

import argparse
import statistics

from mininet_tests.harness import running_net, trail_between
from mininet_tests.test_ipv6 import iperf_mbits, ping_out, v6
from topologies.linear import LinearTopo


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ipv6", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="iperf3 runs per family")
    parser.add_argument("--switches", type=int, default=4, help="switches in the line")
    args = parser.parse_args(argv)
    with running_net(LinearTopo(args.switches, 2)) as net:
        hosts = net.net.hosts
        for n, host in enumerate(hosts, start=1):
            host.cmd(f"ip -6 addr add {v6(n)}/64 dev {host.defaultIntf()} nodad")
        pairs = [(hosts[i], hosts[-1 - i], i + 1, len(hosts) - i)
                 for i in range(len(hosts) // 2)]
        setup: dict[str, list[float]] = {"ipv4": [], "ipv6": []}
        for src, dst, a, b in pairs:
            for family, (s_ip, d_ip) in (("ipv4", (src.IP(), dst.IP())),
                                         ("ipv6", (v6(a), v6(b)))):
                replies, _ = ping_out(src, d_ip, count=2)
                assert replies == 2, f"{family} {s_ip} -> {d_ip}: no replies"
                setup[family].append(float(trail_between(net, s_ip, d_ip)["setup_latency_ms"]))
        first, last, a, b = pairs[0]
        mbits: dict[str, list[float]] = {"ipv4": [], "ipv6": []}
        for _ in range(args.rounds):
            mbits["ipv4"].append(iperf_mbits(last, first, last.IP()))
            mbits["ipv6"].append(iperf_mbits(last, first, v6(b)))
        hops = " ".join(h["switch"] for h in trail_between(net, v6(a), v6(b))["hops"])
    base_setup = statistics.median(setup["ipv4"])
    base_tcp = statistics.median(mbits["ipv4"])
    print(f"IPv6 vs IPv4, {len(pairs)} pairs on a line of {args.switches} switches; "
          f"TCP on {hops}, {args.rounds} runs each")
    print(f"{'':24}{'IPv4':>10}{'IPv6':>10}{'IPv6/IPv4':>11}")
    six_setup, six_tcp = statistics.median(setup["ipv6"]), statistics.median(mbits["ipv6"])
    print(f"{'set-up latency (ms)':24}{base_setup:>10.1f}{six_setup:>10.1f}"
          f"{six_setup / base_setup:>11.2f}")
    print(f"{'TCP throughput (Mbit/s)':24}{base_tcp:>10.0f}{six_tcp:>10.0f}"
          f"{six_tcp / base_tcp:>11.2f}")
    print(f"  set-up samples ms: IPv4 {setup['ipv4']}, IPv6 {setup['ipv6']}")
    print(f"  TCP samples Mbit/s: IPv4 {[round(x) for x in mbits['ipv4']]}, "
          f"IPv6 {[round(x) for x in mbits['ipv6']]}")


if __name__ == "__main__":
    main()
