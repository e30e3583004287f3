"""Telemetry: switch counters turned into smoothed rates, and host load samples.

Port statistics give each link's load (bit/s and fraction of capacity); the
ingress flow of every trail gives the trail's usage (bytes, packets, rates).
Rates are EWMA-smoothed per period; counter resets and wraps are handled. Host
load samples written by sdnscent-agent are checked by validate_sample() on both
sides of the store. Pure logic: the os-ken glue feeds it. See docs/telemetry.rst.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .dra import HostLoad, LinkLoad
from .store import StoreError, check_node_name
from .topology import Topology

LOG = logging.getLogger(__name__)

DEFAULT_PERIOD = 1.0  # s between two polls of the switches
DEFAULT_ALPHA = 0.5  # weight of a new rate sample taken one period after the last
COUNTER_BITS = 64  # OpenFlow 1.3 port and flow counters


@dataclass(frozen=True)
class TelemetryConfig:
    """Polling period, smoothing and counter width."""

    period: float = DEFAULT_PERIOD
    alpha: float = DEFAULT_ALPHA
    counter_bits: int = COUNTER_BITS
    stale_periods: float = 5.0  # a rate not refreshed for this many periods is dropped

    def __post_init__(self) -> None:
        if not self.period > 0:
            raise ValueError(f"telemetry period {self.period!r} must be > 0")
        if not 0 < self.alpha <= 1:
            raise ValueError(f"telemetry alpha {self.alpha!r} must be in (0, 1]")
        if self.counter_bits not in (32, 64):
            raise ValueError(f"counter width {self.counter_bits!r} must be 32 or 64")

    @property
    def stale_after(self) -> float:
        """Seconds after which an unrefreshed rate is dropped."""
        return self.stale_periods * self.period


# Counters -> rates ---------------------------------------------------------------

def counter_delta(last: int, value: int, bits: int = COUNTER_BITS) -> int | None:
    """How much a counter grew from `last` to `value`; None if it was reset.

    A counter that went down from the top quarter of its range to the bottom
    quarter wrapped; any other decrease is a reset (switch restart, flow replaced).
    """
    if value >= last:
        return value - last
    modulus = 1 << bits
    if last >= modulus - modulus // 4 and value < modulus // 4:
        return value + modulus - last
    return None


class CounterSeries:
    """Cumulative counters of one object (port, flow) -> totals and smoothed rates.

    Counters are updated together: a reset of one is a reset of all. `totals`
    keep counting across resets (the traffic after a reset is added).
    """

    def __init__(self, size: int, config: TelemetryConfig) -> None:
        self.config = config
        self.last: tuple[int, ...] | None = None
        self.last_time = 0.0
        self.last_duration: float | None = None
        self.totals = [0] * size
        self.rates: list[float] | None = None  # EWMA per second
        self.raw: list[float] | None = None  # the latest unsmoothed rates
        self.updated = 0.0  # when the rates were last refreshed
        self.resets = 0

    def update(self, values: tuple[int, ...], now: float, duration: float | None = None) -> bool:
        """Add a reading taken at `now`; True if the rates were refreshed.

        `duration` (seconds the flow has existed, from flow stats) detects a
        replaced flow even when its counters did not go down.
        """
        if any(v < 0 for v in values) or not math.isfinite(now):
            return False
        if self.last is None:
            self.last, self.last_time, self.last_duration = values, now, duration
            self.totals = list(values)
            return False
        dt = now - self.last_time
        if dt <= 0:
            return False  # a duplicate or late reply
        bits = self.config.counter_bits
        deltas = [counter_delta(a, b, bits) for a, b in zip(self.last, values, strict=True)]
        replaced = (duration is not None and self.last_duration is not None
                    and duration < self.last_duration)
        sample: list[float] | None
        if replaced or any(d is None for d in deltas):
            self.resets += 1
            self.totals = [t + v for t, v in zip(self.totals, values, strict=True)]
            # the counters restarted `duration` ago if we know it; else the rate is unknown
            sample = [v / duration for v in values] \
                if duration is not None and 0 < duration <= dt else None
        else:
            counted = [d for d in deltas if d is not None]
            self.totals = [t + d for t, d in zip(self.totals, counted, strict=True)]
            sample = [d / dt for d in counted]
        self.last, self.last_time, self.last_duration = values, now, duration
        if sample is None:
            return False
        self.raw = sample
        if self.rates is None:
            self.rates = list(sample)
        else:
            # the same smoothing per second whatever the actual gap between replies
            weight = 1.0 - (1.0 - self.config.alpha) ** (dt / self.config.period)
            self.rates = [r + weight * (s - r) for r, s in zip(self.rates, sample, strict=True)]
        self.updated = now
        return True

    def fresh(self, now: float) -> bool:
        """True if the rates exist and are not stale at `now`."""
        return self.rates is not None and now - self.updated <= self.config.stale_after


@dataclass(frozen=True)
class PortCounters:
    """One entry of a port-stats reply."""

    port: int
    rx_bytes: int
    tx_bytes: int
    rx_packets: int = 0
    tx_packets: int = 0


@dataclass(frozen=True)
class FlowCounters:
    """A trail's ingress classifier flow, from a flow-stats reply."""

    trail_id: int
    packets: int
    bytes: int
    duration: float | None = None  # duration_sec + duration_nsec / 1e9


@dataclass(frozen=True)
class PortRate:
    """Smoothed rates of a switch port."""

    dpid: int
    port: int
    rx_bps: float
    tx_bps: float
    rx_pps: float
    tx_pps: float
    time: float


@dataclass(frozen=True)
class TrailUsage:
    """What a trail carried: totals since first seen and smoothed rates."""

    trail_id: int
    packets: int
    bytes: int
    bps: float
    pps: float
    time: float
    last_bps: float = 0.0  # the latest reading, unsmoothed (a ramp shows here first)


class Telemetry:
    """Per-port and per-trail counter series; link loads and trail usage on demand."""

    def __init__(self, config: TelemetryConfig | None = None) -> None:
        self.config = config or TelemetryConfig()
        self._ports: dict[tuple[int, int], CounterSeries] = {}
        self._trails: dict[int, CounterSeries] = {}

    # input -------------------------------------------------------------
    def port_stats(self, dpid: int, stats: Iterable[PortCounters], now: float) -> None:
        """A switch's port-stats reply, received at `now`."""
        for entry in stats:
            series = self._ports.get((dpid, entry.port))
            if series is None:
                series = self._ports[(dpid, entry.port)] = CounterSeries(4, self.config)
            series.update((entry.rx_bytes, entry.tx_bytes, entry.rx_packets, entry.tx_packets),
                          now)

    def flow_stats(self, stats: Iterable[FlowCounters], now: float) -> None:
        """Counters of trails' ingress flows, received at `now`."""
        for entry in stats:
            series = self._trails.get(entry.trail_id)
            if series is None:
                series = self._trails[entry.trail_id] = CounterSeries(2, self.config)
            series.update((entry.bytes, entry.packets), now, entry.duration)

    def forget_switch(self, dpid: int) -> None:
        """The switch left: drop its ports' series (a reconnect starts afresh)."""
        for key in [k for k in self._ports if k[0] == dpid]:
            del self._ports[key]

    def forget_port(self, dpid: int, port: int) -> None:
        """The port went away."""
        self._ports.pop((dpid, port), None)

    def forget_trail(self, trail_id: int) -> None:
        """The trail was removed."""
        self._trails.pop(trail_id, None)

    # output ------------------------------------------------------------
    def port_rate(self, dpid: int, port: int, now: float) -> PortRate | None:
        """Smoothed rates of a port, or None if unmeasured or stale."""
        series = self._ports.get((dpid, port))
        if series is None or not series.fresh(now) or series.rates is None:
            return None
        rx, tx, rxp, txp = series.rates
        return PortRate(dpid, port, rx * 8, tx * 8, rxp, txp, series.updated)

    def link_loads(self, topo: Topology, now: float) -> list[LinkLoad]:
        """The load of every measured link direction (tx of its source port).

        Capacity: Topology.link_capacity, i.e. configured, else the default
        (--default-link-capacity), else the port speed the switch reports.
        """
        out = []
        for link in topo.links():
            rate = self.port_rate(link.src, link.src_port, now)
            if rate is None:
                continue
            out.append(LinkLoad(link.src, link.src_port, rate.tx_bps,
                                float(topo.link_capacity(link.src, link.src_port)),
                                link.dst, link.dst_port))
        return out

    def utilisation(self, topo: Topology, now: float) -> dict[tuple[int, int], float]:
        """Utilisation (0..1, capped) by (dpid, port): the Planner.utilisation map."""
        return {lk.key: min(1.0, lk.utilisation) for lk in self.link_loads(topo, now)}

    def trail_usage(self, trail_id: int, now: float) -> TrailUsage | None:
        """A trail's usage; rates 0 until two readings, None if never seen or stale."""
        series = self._trails.get(trail_id)
        if series is None or now - series.last_time > self.config.stale_after:
            return None
        nbytes, packets = series.totals
        fresh = series.fresh(now) and series.rates is not None
        bps, pps = (series.rates[0] * 8, series.rates[1]) if fresh \
            and series.rates is not None else (0.0, 0.0)
        last = series.raw[0] * 8 if fresh and series.raw is not None else 0.0
        return TrailUsage(trail_id, packets, nbytes, bps, pps, series.last_time, last)

    def trail_usages(self, now: float) -> dict[int, TrailUsage]:
        """Usage of every trail seen and not stale, by id."""
        out = {}
        for trail_id in sorted(self._trails):
            usage = self.trail_usage(trail_id, now)
            if usage is not None:
                out[trail_id] = usage
        return out

    def prune(self, now: float) -> None:
        """Drop series not refreshed for a long time (10 stale periods)."""
        limit = 10 * self.config.stale_after
        for port in [k for k, s in self._ports.items() if now - s.last_time > limit]:
            del self._ports[port]
        for trail_id in [k for k, s in self._trails.items() if now - s.last_time > limit]:
            del self._trails[trail_id]


# Host load samples (sdnscent-agent) ------------------------------------------------

SAMPLE_VERSION = 1
MAX_SKEW = 5.0  # s a sample's time may lie ahead of the reader's clock
MAX_IFACES = 256
MAX_INTERVAL = 3600.0
_SAMPLE_FIELDS = {"v", "node", "time", "interval", "ttl", "cpu", "cpus", "mem_used",
                  "mem_total", "ifaces"}
_CGROUP_FIELDS = {"cpu_cores", "cpu_limit", "mem_used", "mem_limit"}


class SampleError(ValueError):
    """A host load sample is malformed or stale; the message names the field."""


def _kind(value: Any) -> str:
    return type(value).__name__ if not isinstance(value, bool) else "bool"


def _number(data: Mapping[str, Any], name: str, where: str, low: float | None = None,
            high: float | None = None, integer: bool = False, positive: bool = False) -> Any:
    value = data.get(name)
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or (isinstance(value, float)
                                              and not math.isfinite(value)):
        kind = "an integer" if integer else "a finite number"
        raise SampleError(f"{where}field {name!r}: expected {kind}, got {_kind(value)}")
    if low is not None and value < low:
        raise SampleError(f"{where}field {name!r}: must be >= {low}, got {value}")
    if positive and value <= 0:
        raise SampleError(f"{where}field {name!r}: must be > 0, got {value}")
    if high is not None and value > high:
        raise SampleError(f"{where}field {name!r}: must be <= {high}, got {value}")
    return value if integer else float(value)


def validate_sample(data: Any, now: float | None = None,
                    node: str | None = None) -> dict[str, Any]:
    """A checked, normalised copy of a host load sample; SampleError if bad.

    Used by the agent before writing and by readers after reading. With `now`,
    a sample older than its own ttl, or ahead of `now` by more than MAX_SKEW,
    is stale. With `node`, the sample must name that node.
    """
    where = f"node {node!r}: " if node else ""
    if not isinstance(data, Mapping):
        raise SampleError(f"{where}a load sample is an object, got {_kind(data)}")
    if node is None and isinstance(data.get("node"), str):
        where = f"node {data['node']!r}: "  # not checked yet, but it helps the reader
    if data.get("v") != SAMPLE_VERSION:
        raise SampleError(f"{where}field 'v': sample format {data.get('v')!r} is not "
                          f"supported (this version reads {SAMPLE_VERSION})")
    keys = set(data)
    for name in sorted(_SAMPLE_FIELDS - keys):
        raise SampleError(f"{where}field {name!r}: missing")
    for name in sorted(keys - _SAMPLE_FIELDS - {"cgroup", "mac"}):
        raise SampleError(f"{where}field {name!r}: unknown field")
    name = data["node"]
    try:
        check_node_name(name)
    except StoreError as exc:
        raise SampleError(f"{where}field 'node': {exc}") from None
    if node is not None and name != node:
        raise SampleError(f"{where}field 'node': sample names node {name!r}")
    where = f"node {name!r}: "
    out: dict[str, Any] = {"v": SAMPLE_VERSION, "node": name}
    out["time"] = _number(data, "time", where, positive=True)
    out["interval"] = _number(data, "interval", where, positive=True, high=MAX_INTERVAL)
    out["ttl"] = _number(data, "ttl", where, positive=True, high=10 * MAX_INTERVAL)
    out["cpu"] = _number(data, "cpu", where, low=0.0, high=1.0)
    out["cpus"] = _number(data, "cpus", where, low=1, integer=True)
    out["mem_total"] = _number(data, "mem_total", where, integer=True, positive=True)
    out["mem_used"] = _number(data, "mem_used", where, low=0, integer=True)
    if out["mem_used"] > out["mem_total"]:
        raise SampleError(f"{where}field 'mem_used': {out['mem_used']} exceeds mem_total "
                          f"{out['mem_total']}")
    ifaces = data["ifaces"]
    if not isinstance(ifaces, Mapping):
        raise SampleError(f"{where}field 'ifaces': expected an object, got {_kind(ifaces)}")
    if len(ifaces) > MAX_IFACES:
        raise SampleError(f"{where}field 'ifaces': {len(ifaces)} interfaces (at most "
                          f"{MAX_IFACES})")
    out["ifaces"] = {}
    for ifname in sorted(ifaces, key=str):
        rates = ifaces[ifname]
        path = f"{where}ifaces.{ifname}: "
        if not isinstance(ifname, str) or not 0 < len(ifname) < 16 or not ifname.isprintable():
            raise SampleError(f"{where}field 'ifaces': bad interface name {ifname!r}")
        if not isinstance(rates, Mapping) or set(rates) != {"rx_bps", "tx_bps"}:
            raise SampleError(f"{path}expected {{'rx_bps', 'tx_bps'}}, got "
                              f"{sorted(rates) if isinstance(rates, Mapping) else _kind(rates)}")
        out["ifaces"][ifname] = {k: _number(rates, k, path, low=0.0) for k in ("rx_bps", "tx_bps")}
    if "cgroup" in data and data["cgroup"] is not None:
        out["cgroup"] = _validate_cgroup(data["cgroup"], f"{where}cgroup: ")
    if "mac" in data:
        if not isinstance(data["mac"], str) or len(data["mac"]) != 64:
            raise SampleError(f"{where}field 'mac': expected 64 hex digits (HMAC-SHA256)")
        out["mac"] = data["mac"]
    if now is not None:
        age = now - out["time"]
        if age > out["ttl"]:
            raise SampleError(f"{where}stale: taken {age:.1f} s ago, ttl {out['ttl']:g} s")
        if -age > MAX_SKEW:
            raise SampleError(f"{where}field 'time': {-age:.1f} s in the future "
                              f"(clock skew over {MAX_SKEW:g} s)")
    return out


def _validate_cgroup(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise SampleError(f"{where}expected an object, got {_kind(data)}")
    for name in sorted(set(data) - _CGROUP_FIELDS):
        raise SampleError(f"{where}field {name!r}: unknown field")
    for name in sorted(_CGROUP_FIELDS - set(data)):
        raise SampleError(f"{where}field {name!r}: missing")
    out = {"cpu_cores": _number(data, "cpu_cores", where, low=0.0),
           "mem_used": _number(data, "mem_used", where, low=0, integer=True),
           "cpu_limit": None, "mem_limit": None}
    if data["cpu_limit"] is not None:
        out["cpu_limit"] = _number(data, "cpu_limit", where, positive=True)
    if data["mem_limit"] is not None:
        out["mem_limit"] = _number(data, "mem_limit", where, integer=True, positive=True)
    return out


def host_load(sample: Mapping[str, Any]) -> HostLoad:
    """The engine's view of a validated sample: busy fractions of what the node may use."""
    group = sample.get("cgroup")
    if not group:
        return HostLoad(sample["node"], sample["time"], sample["cpu"],
                        sample["mem_used"] / sample["mem_total"], mem_used=sample["mem_used"])
    cores, cpu_limit, mem_limit = group["cpu_cores"], group["cpu_limit"], group["mem_limit"]
    return HostLoad(sample["node"], sample["time"],
                    cores / (cpu_limit or sample["cpus"]),
                    group["mem_used"] / (mem_limit or sample["mem_total"]),
                    cpu_limit, mem_limit, group["mem_used"], cores)


def _signed_text(sample: Mapping[str, Any]) -> bytes:
    """The bytes an HMAC covers: the sample without its mac, as canonical JSON."""
    body = {k: v for k, v in sample.items() if k != "mac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"),
                      allow_nan=False).encode()


def sign_sample(sample: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    """A copy of `sample` with "mac": HMAC-SHA256 under the node's `key` (hex)."""
    mac = hmac.new(key, _signed_text(sample), hashlib.sha256).hexdigest()
    return {**{k: v for k, v in sample.items() if k != "mac"}, "mac": mac}


class SampleRejected(SampleError):
    """A sample that fails authentication; `reason` is unsigned, unknown-node,
    signature or replay."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SampleAuth:
    """Checks agent samples' HMACs under per-node keys, and refuses replays.

    A replay is a correctly signed sample older than the newest one accepted
    from the same node (reading the same sample again is not one).
    """

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        self.keys = dict(keys)
        self._newest: dict[str, tuple[float, str]] = {}  # node -> (time, mac) accepted

    def check(self, node: str, data: Mapping[str, Any]) -> None:
        """Raise SampleRejected unless `data` is signed by `node`'s key and is not a replay."""
        key = self.keys.get(node)
        if key is None:
            raise SampleRejected("unknown-node", f"node {node!r}: no telemetry key for this "
                                 "node: sample refused")
        mac = data.get("mac")
        if not isinstance(mac, str):
            raise SampleRejected("unsigned", f"node {node!r}: unsigned sample refused")
        try:
            text = _signed_text(data)
        except (TypeError, ValueError):
            raise SampleRejected("signature", f"node {node!r}: sample not signable") from None
        want = hmac.new(key, text, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, mac):
            raise SampleRejected("signature", f"node {node!r}: bad signature: sample refused")
        taken = data.get("time")
        newest = self._newest.get(node)
        if newest is not None and isinstance(taken, int | float) and \
                (taken < newest[0] or (taken == newest[0] and mac != newest[1])):
            raise SampleRejected("replay", f"node {node!r}: replayed sample (taken at {taken}, "
                                 f"newer sample seen from {newest[0]}) refused")

    def accepted(self, node: str, data: Mapping[str, Any]) -> None:
        """Remember the newest sample accepted from `node`."""
        self._newest[node] = (data["time"], data["mac"])


class NodeLoadReader:
    """Reads TrailStore.node_loads() into HostLoads, rejecting bad or stale samples.

    With `keys` (node -> HMAC key) every sample must be signed by its node's
    key and newer than the last one accepted (docs/security.rst). A rejection
    is logged once per node until the node sends a good sample again, and
    counted once per distinct sample in `rejected_counts` (by reason).
    """

    def __init__(self, keys: Mapping[str, bytes] | None = None) -> None:
        self._rejected: dict[str, str] = {}
        self._last_bad: dict[str, str] = {}
        self.auth = SampleAuth(keys) if keys is not None else None
        self.rejected_counts: Counter[str] = Counter()

    def read(self, samples: Mapping[str, Any], now: float) -> dict[str, HostLoad]:
        """Valid, fresh (and with keys: authentic) samples by node."""
        out = {}
        for node in sorted(samples):
            data = samples[node]
            try:
                if self.auth is not None:
                    self.auth.check(node, data if isinstance(data, Mapping) else {})
                sample = validate_sample(data, now, node)
            except SampleError as exc:
                reason = exc.reason if isinstance(exc, SampleRejected) else "invalid"
                fingerprint = f"{reason}:{_fingerprint(data)}"
                if self._last_bad.get(node) != fingerprint:
                    self.rejected_counts[reason] += 1
                    self._last_bad[node] = fingerprint
                gist = str(exc).split(":")[1]  # "node 'n': <gist>: details"
                if self._rejected.get(node) != gist:
                    LOG.warning("rejected load sample: %s", exc)
                self._rejected[node] = gist
                continue
            if self.auth is not None:
                self.auth.accepted(node, sample)
            out[node] = host_load(sample)
            self._rejected.pop(node, None)
            self._last_bad.pop(node, None)
        return out


def _fingerprint(data: Any) -> str:
    """Tells one stored sample from the next (a sample re-read is counted once)."""
    if isinstance(data, Mapping):
        return f"{data.get('time')!r}/{data.get('mac')!r}"
    return repr(data)[:64]
