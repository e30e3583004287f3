"""Sequence-numbered UDP for loss and reordering tests, run inside Mininet hosts.

    python -m mininet_tests.udpseq send DST PORT --rate 1000 --count 8000 --size 1200
    python -m mininet_tests.udpseq recv PORT --seconds 15 [--gaps]

The receiver prints one JSON line: received, lost (sequence numbers never seen up
to the highest one received, plus any after it up to --expect), reordered (arrivals
below the highest seen so far), duplicates. With --gaps also "gaps": each run of
lost numbers as [first, last, t_before, t_after], the time.monotonic() arrivals of
the datagrams just before and after it (null at either end of the stream), so a
test can tell which of its events a loss belongs to and when traffic resumed.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import time
from typing import Any

HEADER = struct.Struct("!Q")


def send(dst: str, port: int, rate: float, count: int, size: int) -> None:
    """`count` datagrams of `size` bytes at `rate` per second, numbered from 0."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pad = b"\0" * max(0, size - HEADER.size)
    start = time.perf_counter()
    for seq in range(count):
        due = start + seq / rate
        while (delay := due - time.perf_counter()) > 0:
            time.sleep(min(delay, 0.001))
        sock.sendto(HEADER.pack(seq) + pad, (dst, port))
    sock.close()


def receive(port: int, seconds: float, expect: int | None, idle: float,
            gaps: bool = False) -> dict[str, Any]:
    """Count what arrives for `seconds` (or until `idle` s pass after the last datagram)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("0.0.0.0", port))
    sock.settimeout(0.2)
    seen: dict[int, float] = {}  # sequence number -> monotonic arrival time
    highest, reordered, duplicates = -1, 0, 0
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        if last is not None and time.monotonic() - last > idle:
            break
        try:
            data = sock.recv(65535)
        except TimeoutError:
            continue
        last = arrived = time.monotonic()
        if len(data) < HEADER.size:
            continue
        (seq,) = HEADER.unpack_from(data)
        if seq in seen:
            duplicates += 1
            continue
        if seq < highest:
            reordered += 1
        seen[seq] = arrived
        highest = max(highest, seq)
    top = max(highest + 1, expect or 0)
    result: dict[str, Any] = {"received": len(seen), "lost": top - len(seen),
                              "reordered": reordered, "duplicates": duplicates,
                              "highest": highest}
    if gaps:
        result["gaps"] = lost_runs(seen, top)
    return result


def lost_runs(seen: dict[int, float], top: int) -> list[list[Any]]:
    """Runs of numbers below `top` missing from `seen`: [first, last, t_before, t_after]."""
    runs: list[list[Any]] = []
    prev = -1
    for seq in [*sorted(seen), top]:
        if seq > prev + 1:
            runs.append([prev + 1, seq - 1, seen.get(prev), seen.get(seq)])
        prev = seq
    return runs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="udpseq")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("dst")
    s.add_argument("port", type=int)
    s.add_argument("--rate", type=float, default=1000.0)
    s.add_argument("--count", type=int, default=1000)
    s.add_argument("--size", type=int, default=1200)
    r = sub.add_parser("recv")
    r.add_argument("port", type=int)
    r.add_argument("--seconds", type=float, default=30.0)
    r.add_argument("--expect", type=int)
    r.add_argument("--idle", type=float, default=3.0)
    r.add_argument("--gaps", action="store_true", help="list each run of lost numbers")
    args = p.parse_args(argv)
    if args.cmd == "send":
        send(args.dst, args.port, args.rate, args.count, args.size)
    else:
        result = receive(args.port, args.seconds, args.expect, args.idle, args.gaps)
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
