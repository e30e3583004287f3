"""Authenticated link discovery: signed LLDP frames, their checks, two-way links.

Pure code (no os-ken): the glue sends the bytes `LldpAuth.frame` builds and
hands every LLDP packet-in to `Discovery.receive`, which says which link
directions the core may count. A frame carries, in an organisationally
specific TLV, a timestamp, a sequence number and an HMAC-SHA256 (keyed by the
controller's secret) over the switch, the port, the timestamp and the
sequence number. Frames without that TLV (the common Ryu format), with a wrong
HMAC, older than `max_age`, or whose sequence number was already accepted for
their origin port are ignored and counted. A link direction counts only once
the opposite direction was heard within `confirm_window` (docs/security.rst).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import secrets
import stat
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

LLDP_DST = bytes.fromhex("0180c200000e")  # nearest bridge
ETH_TYPE_LLDP = 0x88CC
CHASSIS_PREFIX = b"dpid:"
OUI = bytes.fromhex("0e5ce7")  # locally administered (the controller MAC's prefix)
AUTH_SUBTYPE = 1
MAC_BYTES = 16  # HMAC-SHA256 truncated to 128 bits
SECRET_BYTES = 32
_AUTH = struct.Struct("!QQ")  # timestamp (microseconds since the epoch), sequence number
_SIGNED = struct.Struct("!QIQQ")  # dpid, port, timestamp, sequence number
VERDICTS = ("accepted", "unsigned", "bad_mac", "expired", "replayed", "malformed",
            "host_port", "self_loop", "unconfirmed")


class SecretError(ValueError):
    """The LLDP secret file cannot be used; the message says why."""


def load_or_create_secret(path: str | Path) -> bytes:
    """The secret in `path` (hex); a new random one is written there (mode 0600) if absent."""
    file = Path(path)
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(SECRET_BYTES) + "\n")
    info = file.stat()
    if not stat.S_ISREG(info.st_mode):
        raise SecretError(f"LLDP secret {file}: not a regular file")
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(f"LLDP secret {file}: other users may read it (mode "
                          f"{stat.S_IMODE(info.st_mode):04o}); run chmod 600 {file}")
    text = file.read_text(encoding="ascii", errors="replace").strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise SecretError(f"LLDP secret {file}: not hexadecimal") from None
    if len(secret) < 16:
        raise SecretError(f"LLDP secret {file}: {len(secret)} bytes, at least 16 needed")
    return secret


def _tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!H", (kind << 9) | len(value)) + value


def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


@dataclass(frozen=True)
class LldpFrame:
    """What an LLDP frame announces: its origin and, if signed, the signature fields."""

    dpid: int
    port: int
    timestamp_us: int | None = None
    seq: int | None = None
    mac: bytes | None = None


def parse(data: bytes) -> LldpFrame | None:
    """The origin (and signature) of an LLDP frame in our chassis format, else None."""
    if len(data) < 14 or struct.unpack("!H", data[12:14])[0] != ETH_TYPE_LLDP:
        return None
    tlvs: list[tuple[int, bytes]] = []
    rest = data[14:]
    while len(rest) >= 2:
        header = struct.unpack("!H", rest[:2])[0]
        kind, length = header >> 9, header & 0x1FF
        value, rest = rest[2:2 + length], rest[2 + length:]
        if len(value) != length:
            return None
        if kind == 0:
            break
        tlvs.append((kind, value))
    if len(tlvs) < 2 or tlvs[0][0] != 1 or tlvs[1][0] != 2:
        return None
    chassis, port_id = tlvs[0][1][1:], tlvs[1][1][1:]
    if not chassis.startswith(CHASSIS_PREFIX) or len(port_id) != 4:
        return None
    try:
        dpid = int(chassis[len(CHASSIS_PREFIX):], 16)
    except ValueError:
        return None
    port = struct.unpack("!I", port_id)[0]
    for kind, value in tlvs[2:]:
        if kind == 127 and value[:3] == OUI and value[3:4] == bytes([AUTH_SUBTYPE]) \
                and len(value) == 4 + _AUTH.size + MAC_BYTES:
            ts, seq = _AUTH.unpack(value[4:4 + _AUTH.size])
            return LldpFrame(dpid, port, ts, seq, value[4 + _AUTH.size:])
    return LldpFrame(dpid, port)


class LldpAuth:
    """Signs our LLDP frames and checks the ones that come back."""

    def __init__(self, secret: bytes, max_age: float = 3.0,
                 clock: Callable[[], float] = time.time) -> None:
        if len(secret) < 16:
            raise ValueError("the LLDP secret must be at least 16 bytes")
        self._secret = secret
        self.max_age = max_age
        self.clock = clock
        self._seq = itertools.count(int(clock() * 1_000_000))
        self.last_seq: dict[tuple[int, int], int] = {}  # origin -> last accepted sequence

    def _mac(self, dpid: int, port: int, ts: int, seq: int) -> bytes:
        message = b"sdnscent-lldp\0" + _SIGNED.pack(dpid, port, ts, seq)
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:MAC_BYTES]

    def frame(self, dpid: int, port: int, hw_addr: str) -> bytes:
        """A signed LLDP frame announcing (dpid, port), sent from `hw_addr`."""
        ts, seq = int(self.clock() * 1_000_000), next(self._seq)
        auth = OUI + bytes([AUTH_SUBTYPE]) + _AUTH.pack(ts, seq) + self._mac(dpid, port, ts, seq)
        body = (_tlv(1, b"\x07" + CHASSIS_PREFIX + f"{dpid:016x}".encode())
                + _tlv(2, b"\x02" + struct.pack("!I", port))
                + _tlv(3, struct.pack("!H", 120)) + _tlv(127, auth) + _tlv(0, b""))
        return LLDP_DST + _mac_bytes(hw_addr) + struct.pack("!H", ETH_TYPE_LLDP) + body

    def check(self, frame: LldpFrame) -> str:
        """'accepted', or why not: unsigned, bad_mac, expired or replayed."""
        if frame.timestamp_us is None or frame.seq is None or frame.mac is None:
            return "unsigned"
        expected = self._mac(frame.dpid, frame.port, frame.timestamp_us, frame.seq)
        if not hmac.compare_digest(expected, frame.mac):
            return "bad_mac"
        age = self.clock() - frame.timestamp_us / 1_000_000
        if not -1.0 <= age <= self.max_age:
            return "expired"
        origin = (frame.dpid, frame.port)
        if frame.seq <= self.last_seq.get(origin, -1):
            return "replayed"
        self.last_seq[origin] = frame.seq
        return "accepted"


Direction = tuple[int, int, int, int]  # src dpid, src port, dst dpid, dst port


@dataclass
class Discovery:
    """Checks LLDP packet-ins and confirms links in both directions; counts the rest."""

    auth: LldpAuth
    confirm_window: float = 3.5  # s: the opposite direction must be this fresh
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))
    heard: dict[tuple[int, int], tuple[int, int, float]] = field(default_factory=dict)
    rejected: list[dict[str, object]] = field(default_factory=list)  # the latest few

    def receive(self, data: bytes, dpid: int, in_port: int,
                faces_hosts: Callable[[int, int], bool]) -> list[Direction]:
        """Link directions an LLDP packet-in at (dpid, in_port) confirms (often none).

        `faces_hosts(dpid, port)` is true for ports where hosts were seen: a
        link there is not taken on LLDP alone.
        """
        frame = parse(data)
        if frame is None:
            return self._reject("malformed", dpid, in_port, None)
        verdict = self.auth.check(frame)
        if verdict != "accepted":
            return self._reject(verdict, dpid, in_port, frame)
        if frame.dpid == dpid:
            return self._reject("self_loop", dpid, in_port, frame)
        if faces_hosts(dpid, in_port) or faces_hosts(frame.dpid, frame.port):
            return self._reject("host_port", dpid, in_port, frame)
        self.counts["accepted"] += 1
        now = self.auth.clock()
        self.heard[(frame.dpid, frame.port)] = (dpid, in_port, now)
        back = self.heard.get((dpid, in_port))
        if back is None or back[:2] != (frame.dpid, frame.port) \
                or now - back[2] > self.confirm_window:
            self.counts["unconfirmed"] += 1
            return []
        return [(frame.dpid, frame.port, dpid, in_port), (dpid, in_port, frame.dpid, frame.port)]

    def forget_port(self, dpid: int, port: int) -> None:
        """A port went down: what was heard from or at it no longer confirms anything."""
        self.heard.pop((dpid, port), None)
        for origin in [o for o, (d, p, _) in self.heard.items() if (d, p) == (dpid, port)]:
            del self.heard[origin]

    def _reject(self, verdict: str, dpid: int, in_port: int,
                frame: LldpFrame | None) -> list[Direction]:
        self.counts[verdict] += 1
        self.rejected.append({"at": round(self.auth.clock(), 3), "verdict": verdict,
                              "dpid": f"{dpid:016x}", "in_port": in_port,
                              "claimed": None if frame is None
                              else f"{frame.dpid:016x}:{frame.port}"})
        del self.rejected[:-20]
        return []

    def view(self) -> dict[str, object]:
        """Counters and the latest rejections (GET /api/v1/edge)."""
        return {"counts": dict(self.counts), "rejected": list(self.rejected)}


def unsigned_frame(dpid: int, port: int, hw_addr: str) -> bytes:
    """An LLDP frame in the common Ryu format (no signature): what a forger sends."""
    body = (_tlv(1, b"\x07" + CHASSIS_PREFIX + f"{dpid:016x}".encode())
            + _tlv(2, b"\x02" + struct.pack("!I", port)) + _tlv(3, struct.pack("!H", 120))
            + _tlv(0, b""))
    return LLDP_DST + _mac_bytes(hw_addr) + struct.pack("!H", ETH_TYPE_LLDP) + body


def expire_heard(discovery: Discovery, now: float,
                 keep: Iterable[tuple[int, int]] = ()) -> None:
    """Drop heard directions older than the confirmation window (bounded memory)."""
    keep_set = set(keep)
    for origin, (_d, _p, at) in list(discovery.heard.items()):
        if now - at > discovery.confirm_window and origin not in keep_set:
            del discovery.heard[origin]
