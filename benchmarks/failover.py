"""Datagrams lost when a trail's link fails: fast-failover protection against the
controller's repair, and a silent failure with and without BFD.

    python -m benchmarks.failover [--rate 10000] [--runs 1] [--bfd-interval 10]
                                  [--no-lldp]

Needs root, Open vSwitch and Mininet; takes the machine-wide Mininet lock
(mininet_tests/harness.py) for each run. The bed is mininet_tests/failover.py:
five switches in a ring, the h1 -> h2 trail over s1 -> s2 -> s3, the s1 - s2
link through a Linux bridge in host m1. A numbered UDP stream (udpseq, 200-byte
datagrams at ``--rate`` per second) runs h1 -> h2; after 1.5 s the link fails:

- ``carrier, none``: m1's bridge ports go down (both switch ports lose carrier),
  the controller runs with ``--protection none``: it re-plans on the
  port-status. The baseline of the ratios.
- ``carrier, node``: the same with ``--protection node`` (the default): the
  fast-failover group at s1 moves the trail to its detour, then the controller
  re-plans it off the detour.
- ``silent, BFD``: an nftables rule in m1 drops everything the bridge forwards
  (carrier stays up), BFD on inter-switch links every ``--bfd-interval`` ms
  (``--ovsdb``): BFD declares the port dead and the group fails over.
- ``no failure (control)``: protection on, nothing fails: what the stream loses
  on this machine anyway (a shared 2-core host; the sender and receiver are
  Python).
- ``silent, LLDP``: the same without BFD (what the controller did before): only
  the LLDP timeout (3.5 s) notices. ``--no-lldp`` skips it (it takes longer).

Each row gives datagrams sent, lost, the gap (the longest silence around a lost
run, from the receiver's arrival times) and lost / baseline lost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Sequence
from typing import Any

from mininet_tests.failover import (
    OVSDB,
    FailoverTopo,
    StreamResult,
    bfd_up,
    bridge,
    carrier_loss,
    silent_failure,
    stream_through,
)
from mininet_tests.harness import running_net, wait_for


def run(args: list[str], fail: Callable[[Any], None], rate: int, after: float,
        bfd: bool) -> StreamResult:
    """One controller and network, one failure under the stream."""
    with running_net(FailoverTopo(), controller_args=args) as net:
        bridge(net)
        if bfd:
            wait_for(lambda: bfd_up(net), 20, "BFD up on the bridged link", interval=0.2)
        return stream_through(net, fail, rate, after=after)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.failover")
    p.add_argument("--rate", type=int, default=10_000, help="datagrams per second")
    p.add_argument("--runs", type=int, default=1, help="runs per case (medians shown)")
    p.add_argument("--bfd-interval", type=int, default=10, metavar="MS")
    p.add_argument("--no-lldp", action="store_true", help="skip the silent failure without BFD")
    args = p.parse_args(argv)
    bfd = ["--ovsdb", f"unix:{OVSDB}", "--bfd-interval", str(args.bfd_interval)]
    cases: list[tuple[str, list[str], Callable[[Any], None], float, bool]] = [
        ("carrier, none", ["--protection", "none"], carrier_loss, 3.0, False),
        ("no failure (control)", ["--protection", "node"], lambda net: None, 3.0, False),
        ("carrier, node", ["--protection", "node"], carrier_loss, 3.0, False),
        (f"silent, BFD {args.bfd_interval} ms", ["--protection", "node", *bfd],
         silent_failure, 3.0, True),
    ]
    if not args.no_lldp:
        cases.append(("silent, LLDP", ["--protection", "node"], silent_failure, 8.0, False))
    print(f"Failover at {args.rate} datagrams/s ({args.runs} run(s) per case, medians)")
    print(f"{'case':<22} {'sent':>7} {'lost':>7} {'gap ms':>8} {'lost/none':>9}  runs (lost)")
    base = None
    for name, ctl_args, fail, after, with_bfd in cases:
        results = []
        for _ in range(args.runs):
            results.append(run(ctl_args, fail, args.rate, after, with_bfd))
            print(f"  {name}: {results[-1].to_dict()}", file=sys.stderr, flush=True)
        lost = statistics.median(r.lost for r in results)
        gap = statistics.median(r.gap_ms for r in results)
        base = lost if base is None else base
        ratio = f"{lost / base:.2f}" if base else "-"
        print(f"{name:<22} {results[0].sent:>7} {lost:>7g} {gap:>8.1f} {ratio:>9}  "
              f"{[r.lost for r in results]}", flush=True)


if __name__ == "__main__":
    main()
