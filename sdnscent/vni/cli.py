"""sdnscent-vni: run the host tagger, show its map, or remove a leftover.

    sdnscent-vni run --store URL --iface IFACE [--interval S] [--ip A --mac M]
    sdnscent-vni show --iface IFACE
    sdnscent-vni unload --iface IFACE

`run` exits 0 on SIGTERM/SIGINT after removing the program (docs/vni.rst).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from ..store import StoreError, check_shared_url
from .bpf import BpfError
from .loader import DEFAULT_INTERVAL, OBJECT, Tagger, VniAgent, VniError, interface_address
from .loader import show as show_tagger
from .loader import unload as unload_tagger


def build_parser() -> argparse.ArgumentParser:
    """The command line of sdnscent-vni."""
    parser = argparse.ArgumentParser(
        prog="sdnscent-vni",
        description="Stamp scent-trail labels on this host's packets (eBPF at tc egress).")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="load the tagger and follow the trail store")
    run.add_argument("--store", required=True,
                     help="redis://host:port/db, redis+unix:///path.sock or "
                          "redis+cluster://host:port")
    run.add_argument("--iface", required=True, help="the host interface facing the edge switch")
    run.add_argument("--ip", help="this host's IPv4 (default: the interface's)")
    run.add_argument("--mac", help="this host's MAC (default: the interface's)")
    run.add_argument("--interval", type=float, default=DEFAULT_INTERVAL,
                     help="seconds between full resyncs (default %(default)s)")
    run.add_argument("--object", type=Path, default=OBJECT,
                     help="the compiled program (default: the package's tagger.o)")
    run.add_argument("--log-level", default="warning",
                     choices=["debug", "info", "warning", "error"])
    for name, text in (("show", "print the map and counters as JSON"),
                       ("unload", "remove the tagger (after a crash)")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--iface", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 on success or signal, 1 on a tagger error, 2 on bad arguments."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "show":
            print(json.dumps(show_tagger(args.iface), indent=2))
            return 0
        if args.command == "unload":
            print("removed" if unload_tagger(args.iface) else "nothing to remove")
            return 0
        return _run(parser, args)
    except (VniError, BpfError) as exc:
        print(f"sdnscent-vni: {exc}", file=sys.stderr)
        return 1


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        check_shared_url(args.store)
    except StoreError as exc:
        parser.error(str(exc))
    if not (math.isfinite(args.interval) and 0 < args.interval <= 3600):
        parser.error(f"--interval {args.interval}: expected seconds in (0, 3600]")
    ip, mac = args.ip, args.mac
    if ip is None or mac is None:
        found_ip, found_mac = interface_address(args.iface)
        ip, mac = ip or found_ip, mac or found_mac
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent = VniAgent(args.store, Tagger(args.iface, args.object), ip, mac, args.interval)
    agent.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
