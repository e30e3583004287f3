"""Prometheus counters of the network edge: LLDP verdicts and port-security events."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .controller import ScentController

NS = "sdnscent"


class EdgeCollector:
    """Reads core.edge's counters at scrape time (under the controller's lock)."""

    def __init__(self, ctrl: ScentController) -> None:
        self.ctrl = ctrl

    def describe(self) -> list[Metric]:
        """Nothing up front: the families are built on each scrape."""
        return []

    def collect(self) -> Iterator[Metric]:
        """LLDP frames by verdict, port-security events, active drop rules."""
        with self.ctrl.lock:
            edge = self.ctrl.edge
            lldp = dict(edge.discovery.counts) if edge.discovery is not None else {}
            counts = dict(edge.counts)
            drops = len(edge.view()["drops"])  # type: ignore[arg-type]
        frames = CounterMetricFamily(f"{NS}_lldp_frames", "LLDP packet-ins by verdict "
                                     "(accepted or why they were ignored)", labels=["verdict"])
        for verdict, n in sorted(lldp.items()):
            frames.add_metric([verdict], n)
        yield frames
        events = CounterMetricFamily(f"{NS}_port_security", "Port-security decisions",
                                     labels=["event"])
        for event, n in sorted(counts.items()):
            events.add_metric([event], n)
        yield events
        yield GaugeMetricFamily(f"{NS}_edge_drop_rules", "Drop rules port security holds now",
                                value=drops)
