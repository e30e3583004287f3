"""Prometheus metrics (GET /metrics): a registry per controller process.

Gauges of state (trails by state and class, link utilisation, nodes) are read
from the ScentController on each scrape by a collector; counters of things the
os-ken app does (OpenFlow messages sent, packet-ins, rate-limited packet-ins)
and latency histograms (planning, trail set-up, store calls) are updated by
the app. Nothing here imports os-ken.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from .controller import Event, ScentController
from .topology import dpid_str

NS = "sdnscent"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0)


class ControllerCollector:
    """Reads the controller's state at scrape time (under its lock)."""

    def __init__(self, ctrl: ScentController) -> None:
        self.ctrl = ctrl
        self._events: Tally[str] = Tally()
        self._last_event: Event | None = None

    def _count_events(self) -> None:
        """Count events recorded since the last scrape (the log keeps the last 2000)."""
        events = list(self.ctrl.events)
        start = 0
        if self._last_event is not None:
            for index in range(len(events) - 1, -1, -1):
                if events[index] is self._last_event:
                    start = index + 1
                    break
        for event in events[start:]:
            self._events[event.kind] += 1
        if events:
            self._last_event = events[-1]

    def describe(self) -> list[Metric]:
        """Nothing up front: the families are built on each scrape."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The controller's gauges and counters now."""
        ctrl = self.ctrl
        with ctrl.lock:
            trails = ctrl.store.all()
            now = ctrl.clock()
            loads = ctrl.telemetry.link_loads(ctrl.topo, now)
            names = {d: ctrl.topo.switch_name(d) for d in ctrl.topo.switches}
            switches, hosts = len(ctrl.topo.switches), len(ctrl.topo.hosts)
            moves, misses = ctrl.moves, ctrl.misses_unknown
            nodes = dict(ctrl.node_loads)
            reader = getattr(ctrl, "_node_reader", None)
            rejected = dict(getattr(reader, "rejected_counts", {}) or {})
            self._count_events()
            events = dict(self._events)
        by_state = GaugeMetricFamily(f"{NS}_trails", "Trails by state and data class",
                                     labels=["state", "class"])
        for (state, cls), n in sorted(Tally((t.state.value, t.cls) for t in trails).items()):
            by_state.add_metric([state, cls], n)
        yield by_state
        by_app = GaugeMetricFamily(f"{NS}_trails_by_app", "Trails by application",
                                   labels=["app"])
        for app, n in sorted(Tally(t.app for t in trails).items()):
            by_app.add_metric([app], n)
        yield by_app
        yield GaugeMetricFamily(f"{NS}_switches", "Connected switches", value=switches)
        yield GaugeMetricFamily(f"{NS}_hosts", "Known hosts", value=hosts)
        yield CounterMetricFamily(f"{NS}_trail_moves", "Trails moved off hot links or nodes "
                                  "by the allocation engine", value=moves)
        replans = CounterMetricFamily(f"{NS}_replans", "Trails re-planned (moved to a new "
                                      "path: load, policy, failures, operator)",
                                      value=events.get("reroute", 0))
        yield replans
        yield CounterMetricFamily(f"{NS}_label_misses_unknown", "Labelled packets whose "
                                  "label the store did not know (dropped)", value=misses)
        kinds = CounterMetricFamily(f"{NS}_events", "Controller events by kind (GET /events)",
                                    labels=["kind"])
        for kind, n in sorted(events.items()):
            kinds.add_metric([kind], n)
        yield kinds
        util = GaugeMetricFamily(f"{NS}_link_utilization", "Measured utilisation of a link "
                                 "direction (0..1, smoothed)",
                                 labels=["src", "src_port", "dst", "switch"])
        load = GaugeMetricFamily(f"{NS}_link_load_bps", "Measured load of a link direction "
                                 "(bit/s, smoothed)", labels=["src", "src_port", "dst", "switch"])
        for lk in sorted(loads, key=lambda x: x.key):
            link = ctrl.topo.link_from(*lk.key)
            labels = [dpid_str(lk.key[0]), str(lk.key[1]),
                      dpid_str(link.dst) if link else "", names.get(lk.key[0], "")]
            util.add_metric(labels, lk.utilisation)
            load.add_metric(labels, lk.bps)
        yield util
        yield load
        cpu = GaugeMetricFamily(f"{NS}_node_cpu", "Busy CPU fraction of a node", labels=["node"])
        mem = GaugeMetricFamily(f"{NS}_node_memory", "Busy memory fraction of a node",
                                labels=["node"])
        for name, host in sorted(nodes.items()):
            cpu.add_metric([name], host.cpu)
            mem.add_metric([name], host.memory)
        yield cpu
        yield mem
        bad = CounterMetricFamily(f"{NS}_telemetry_samples_rejected", "Agent samples "
                                  "rejected (bad signature, replay, malformed, stale)",
                                  labels=["reason"])
        for reason, n in sorted(rejected.items()):
            bad.add_metric([reason], n)
        yield bad


class Metrics:
    """The registry of one controller process, with the app's counters and histograms."""

    def __init__(self, ctrl: ScentController | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        reg = self.registry
        self.messages = Counter(f"{NS}_openflow_messages_sent", "OpenFlow messages sent "
                                "to switches, by type", ["type"], registry=reg)
        self.packet_ins = Counter(f"{NS}_packet_ins", "Packet-ins received, by kind",
                                  ["kind"], registry=reg)
        self.packet_ins_limited = Counter(f"{NS}_packet_ins_rate_limited", "Packet-ins "
                                          "dropped by the per-port rate limit", registry=reg)
        self.planning = Histogram(f"{NS}_planning_seconds", "Time to plan trails for one "
                                  "request (path search, labels, flow specs)",
                                  buckets=LATENCY_BUCKETS, registry=reg)
        self.setup = Histogram(f"{NS}_trail_setup_seconds", "Packet-in to the barrier "
                               "replies confirming a new trail's flows",
                               buckets=LATENCY_BUCKETS, registry=reg)
        self.store = Histogram(f"{NS}_store_seconds", "Calls to the shared trail store "
                               "(Redis), by operation", ["op"], buckets=LATENCY_BUCKETS,
                               registry=reg)
        if ctrl is not None:
            reg.register(ControllerCollector(ctrl))

    def sent(self, msg: Any, count: int = 1) -> None:
        """Count OpenFlow messages by class name (OFPFlowMod, ...; or the name itself)."""
        self.messages.labels(msg if isinstance(msg, str) else type(msg).__name__).inc(count)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class TimedStore:
    """A store proxy that times every public call into `histogram` by method name."""

    def __init__(self, backing: Any, histogram: Histogram,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._backing, self._histogram, self._clock = backing, histogram, clock

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._backing, name)
        if name.startswith("_") or not callable(attr):
            return attr
        observe = self._histogram.labels(name).observe
        clock = self._clock

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return attr(*args, **kwargs)
            finally:
                observe(clock() - start)

        return timed
