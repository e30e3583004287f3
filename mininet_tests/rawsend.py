"""Send prebuilt Ethernet frames with an AF_PACKET socket, run inside Mininet hosts.

    python -m mininet_tests.rawsend INTF HEX [--count N] [--rate PPS --seconds S]

HEX is one frame as hex (built with scapy by the test). With --count the frame goes
out N times back to back; with --rate it goes out at PPS frames per second for S
seconds (paced per millisecond, fast enough for 10,000+ frames/s from Python). Prints
one JSON line: sent, refused (by the kernel), seconds, rate.
"""

from __future__ import annotations

import argparse
import json
import socket
import time


def send_frames(intf: str, frames: list[bytes]) -> None:
    """Send each frame once out of `intf` (in the caller's network namespace)."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((intf, 0))
        for frame in frames:
            sock.send(frame)


def send_paced(intf: str, frame: bytes, rate: float, seconds: float) -> dict[str, float]:
    """Send `frame` at `rate` per second for `seconds`; count those the kernel refused."""
    tried = sent = 0
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((intf, 0))
        start = time.perf_counter()
        end = start + seconds
        while (now := time.perf_counter()) < end:
            due = int((now - start) * rate)
            while tried < due:
                tried += 1
                try:
                    sock.send(frame)
                    sent += 1
                except OSError:  # a full queue (ENOBUFS): the frame is lost, as on a wire
                    pass
            time.sleep(0.0005)
        elapsed = time.perf_counter() - start
    return {"sent": sent, "refused": tried - sent, "seconds": round(elapsed, 3),
            "rate": round(sent / elapsed)}


def main() -> None:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("intf")
    p.add_argument("frame", help="the frame, as hex")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--rate", type=float, help="frames per second (with --seconds)")
    p.add_argument("--seconds", type=float, default=5.0)
    args = p.parse_args()
    frame = bytes.fromhex(args.frame)
    if args.rate:
        print(json.dumps(send_paced(args.intf, frame, args.rate, args.seconds)), flush=True)
    else:
        start = time.perf_counter()
        send_frames(args.intf, [frame] * args.count)
        elapsed = time.perf_counter() - start
        print(json.dumps({"sent": args.count, "seconds": round(elapsed, 3),
                          "rate": round(args.count / max(elapsed, 1e-9))}), flush=True)


if __name__ == "__main__":
    main()
