"""Telemetry: port and flow counters -> smoothed link loads and trail usage (resets,
wraps, irregular polls, capacity), and the host load sample checks."""

from __future__ import annotations

import logging
import math

import pytest

from sdnscent.telemetry import (
    SAMPLE_VERSION,
    CounterSeries,
    FlowCounters,
    NodeLoadReader,
    PortCounters,
    SampleError,
    Telemetry,
    TelemetryConfig,
    counter_delta,
    host_load,
    validate_sample,
)
from sdnscent.topology import Port, Topology

MB = 1_000_000


def two_switches(default_capacity: int | None = None, speed: int = 10**9) -> Topology:
    topo = Topology(default_capacity)
    for dpid in (1, 2):
        topo.add_switch(dpid, {p: Port(p, f"s{dpid}-eth{p}", speed_bps=speed) for p in (1, 2)})
    topo.add_link(1, 2, 2, 2)
    topo.add_link(2, 2, 1, 2)
    return topo


def ports(tx: int, rx: int = 0) -> list[PortCounters]:
    return [PortCounters(2, rx_bytes=rx, tx_bytes=tx, rx_packets=rx // 1000,
                         tx_packets=tx // 1000)]


def test_counter_delta_tells_wraps_from_resets() -> None:
    assert counter_delta(100, 250) == 150
    assert counter_delta(2**32 - 10, 5, bits=32) == 15  # wrapped
    assert counter_delta(2**64 - 10, 5) == 15
    assert counter_delta(5000, 10) is None  # reset: not near the top of the range
    assert counter_delta(2**31, 5, bits=32) is None


def test_link_load_in_bits_per_second_and_fraction_of_capacity() -> None:
    topo = two_switches(speed=10**9)
    tele = Telemetry(TelemetryConfig(period=1.0, alpha=1.0))
    tele.port_stats(1, ports(tx=0), now=10.0)
    tele.port_stats(1, ports(tx=50 * MB), now=11.0)  # 50 MB in 1 s = 400 Mbit/s
    (load,) = tele.link_loads(topo, now=11.0)
    assert (load.src, load.src_port, load.dst, load.dst_port) == (1, 2, 2, 2)
    assert load.bps == pytest.approx(400e6)
    assert load.capacity == 10**9  # the port speed: nothing configured, no default
    assert load.utilisation == pytest.approx(0.4)
    assert tele.utilisation(topo, now=11.0) == {(1, 2): pytest.approx(0.4)}
    rate = tele.port_rate(1, 2, now=11.0)
    assert rate is not None and rate.tx_pps == pytest.approx(50_000)


def test_capacity_is_configured_else_default_else_port_speed() -> None:
    for default, configured, expected in ((None, None, 10**9), (2 * 10**9, None, 2 * 10**9),
                                          (2 * 10**9, 4 * 10**8, 4 * 10**8)):
        topo = two_switches(default_capacity=default, speed=10**9)
        if configured:
            topo.set_link_attrs(1, 2, capacity=configured)
        tele = Telemetry(TelemetryConfig(alpha=1.0))
        tele.port_stats(1, ports(tx=0), now=0.0)
        tele.port_stats(1, ports(tx=10 * MB), now=1.0)
        (load,) = tele.link_loads(topo, now=1.0)
        assert load.capacity == expected
        assert load.utilisation == pytest.approx(80e6 / expected)


def test_ewma_smooths_a_step_and_ignores_poll_jitter() -> None:
    config = TelemetryConfig(period=1.0, alpha=0.5)
    steady = CounterSeries(1, config)
    for t in range(0, 4):
        steady.update((t * 1000,), float(t))
    assert steady.rates == [pytest.approx(1000)]
    steady.update((3000 + 3000,), 4.0)  # the rate triples
    assert steady.rates == [pytest.approx(2000)]  # half way with alpha 0.5
    # two polls half a period apart smooth exactly like one poll after a period
    jittery = CounterSeries(1, config)
    for t in range(0, 4):
        jittery.update((t * 1000,), float(t))
    jittery.update((4500,), 3.5)
    jittery.update((6000,), 4.0)
    assert jittery.rates == [pytest.approx(2000)]


def test_a_counter_reset_keeps_totals_and_rates_sane() -> None:
    tele = Telemetry(TelemetryConfig(alpha=1.0))
    topo = two_switches()
    tele.port_stats(1, ports(tx=900 * MB), now=0.0)
    tele.port_stats(1, ports(tx=910 * MB), now=1.0)  # 80 Mbit/s
    tele.port_stats(1, ports(tx=1 * MB), now=2.0)  # the switch restarted
    (load,) = tele.link_loads(topo, now=2.0)
    assert load.bps == pytest.approx(80e6)  # no negative or huge sample
    tele.port_stats(1, ports(tx=6 * MB), now=3.0)
    (load,) = tele.link_loads(topo, now=3.0)
    assert load.bps == pytest.approx(40e6)
    assert tele._ports[(1, 2)].resets == 1


def test_32_bit_counters_wrap() -> None:
    series = CounterSeries(1, TelemetryConfig(alpha=1.0, counter_bits=32))
    series.update((2**32 - 1000,), 0.0)
    assert series.update((1000,), 1.0)
    assert series.rates == [pytest.approx(2000)]


def test_duplicate_and_late_replies_are_ignored() -> None:
    series = CounterSeries(1, TelemetryConfig(alpha=1.0))
    series.update((0,), 1.0)
    series.update((1000,), 2.0)
    assert not series.update((1000,), 2.0)
    assert not series.update((500,), 1.5)
    assert series.rates == [pytest.approx(1000)] and series.resets == 0


def test_trail_usage_from_ingress_flow_counters() -> None:
    tele = Telemetry(TelemetryConfig(alpha=1.0))
    assert tele.trail_usage(4, now=0.0) is None
    tele.flow_stats([FlowCounters(4, packets=10, bytes=10_000, duration=5.0)], now=0.0)
    first = tele.trail_usage(4, now=0.0)
    assert first is not None and (first.packets, first.bytes, first.bps) == (10, 10_000, 0.0)
    tele.flow_stats([FlowCounters(4, packets=110, bytes=135_000, duration=6.0)], now=1.0)
    usage = tele.trail_usage(4, now=1.0)
    assert usage is not None
    assert (usage.packets, usage.bytes) == (110, 135_000)
    assert usage.bps == pytest.approx(1e6) and usage.pps == pytest.approx(100)
    # the trail was rerouted: a new ingress flow, 0.5 s old, counting from zero
    tele.flow_stats([FlowCounters(4, packets=20, bytes=50_000, duration=0.5)], now=2.0)
    usage = tele.trail_usage(4, now=2.0)
    assert usage is not None
    assert (usage.packets, usage.bytes) == (130, 185_000)  # totals go on
    assert usage.bps == pytest.approx(800_000)  # 50 kB in the new flow's 0.5 s
    assert set(tele.trail_usages(now=2.0)) == {4}
    tele.forget_trail(4)
    assert tele.trail_usages(now=2.0) == {}


def test_stale_rates_disappear() -> None:
    topo = two_switches()
    tele = Telemetry(TelemetryConfig(period=1.0, stale_periods=3))
    tele.port_stats(1, ports(tx=0), now=0.0)
    tele.port_stats(1, ports(tx=MB), now=1.0)
    assert tele.link_loads(topo, now=4.0)
    assert tele.link_loads(topo, now=4.5) == []
    tele.prune(now=100.0)
    assert tele.port_rate(1, 2, now=100.0) is None and not tele._ports
    tele.port_stats(2, ports(tx=0), now=0.0)
    tele.forget_switch(2)
    assert not tele._ports


def test_bad_configuration_is_refused() -> None:
    for kwargs in ({"period": 0}, {"alpha": 0}, {"alpha": 1.5}, {"counter_bits": 48}):
        with pytest.raises(ValueError):
            TelemetryConfig(**kwargs)


# host load samples ----------------------------------------------------------------

def sample(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "v": SAMPLE_VERSION, "node": "fw1", "time": 1000.0, "interval": 1.0, "ttl": 3.0,
        "cpu": 0.25, "cpus": 4, "mem_used": 512 << 20, "mem_total": 2 << 30,
        "ifaces": {"fw1-eth0": {"rx_bps": 1e6, "tx_bps": 2e6}}}
    data.update(changes)
    return data


def test_a_good_sample_is_accepted_and_normalised() -> None:
    out = validate_sample(sample(time=1000, cpu=0), now=1001.0, node="fw1")
    assert out["time"] == 1000.0 and isinstance(out["time"], float) and out["cpu"] == 0.0
    load = host_load(out)
    assert (load.node, load.cpu, load.memory) == ("fw1", 0.0, 0.25)
    assert load.cpu_limit is None


def test_a_cgroup_sample_is_measured_against_its_limits() -> None:
    group = {"cpu_cores": 0.4, "cpu_limit": 0.5, "mem_used": 96 << 20, "mem_limit": 128 << 20}
    load = host_load(validate_sample(sample(cgroup=group)))
    assert load.cpu == pytest.approx(0.8) and load.memory == pytest.approx(0.75)
    assert (load.cpu_limit, load.mem_limit) == (0.5, 128 << 20)
    assert load.cpu_cores == 0.4
    unlimited = dict(group, cpu_limit=None, mem_limit=None)
    load = host_load(validate_sample(sample(cgroup=unlimited)))
    assert load.cpu == pytest.approx(0.1)  # 0.4 of the machine's 4 cores
    assert load.cpu_limit is None and load.memory == pytest.approx(96 / 2048)
    plain = host_load(validate_sample(sample()))
    assert plain.cpu_cores is None  # no cgroup of its own: the machine's figures


@pytest.mark.parametrize(("changes", "message"), [
    ({"v": 2}, "field 'v': sample format 2"),
    ({"cpu": 1.5}, "field 'cpu': must be <= 1.0"),
    ({"cpu": True}, "field 'cpu': expected a finite number, got bool"),
    ({"cpu": math.nan}, "field 'cpu': expected a finite number"),
    ({"cpus": 2.5}, "field 'cpus': expected an integer"),
    ({"mem_used": 3 << 30}, "field 'mem_used': 3221225472 exceeds mem_total"),
    ({"interval": 0}, "field 'interval': must be > 0"),
    ({"node": "a b"}, "field 'node': node name"),
    ({"node": "fw2"}, "field 'node': sample names node 'fw2'"),
    ({"extra": 1}, "field 'extra': unknown field"),
    ({"ifaces": []}, "field 'ifaces': expected an object"),
    ({"ifaces": {"x" * 16: {"rx_bps": 0, "tx_bps": 0}}}, "bad interface name"),
    ({"ifaces": {"eth0": {"rx_bps": -1, "tx_bps": 0}}}, "ifaces.eth0: field 'rx_bps'"),
    ({"ifaces": {"eth0": {"rx_bps": 0}}}, "ifaces.eth0: expected"),
    ({"cgroup": {"cpu_cores": 0.1}}, "cgroup: field 'cpu_limit': missing"),
    ({"time": 990.0}, "stale: taken 11.0 s ago, ttl 3 s"),
    ({"time": 1010.0}, "field 'time': 9.0 s in the future"),
])
def test_malformed_and_stale_samples_are_rejected(changes: dict[str, object],
                                                  message: str) -> None:
    with pytest.raises(SampleError, match="^node 'fw1': ") as info:
        validate_sample(sample(**changes), now=1001.0, node="fw1")
    assert message in str(info.value)


def test_missing_fields_and_non_objects_are_rejected() -> None:
    data = sample()
    del data["ttl"]
    with pytest.raises(SampleError, match="field 'ttl': missing"):
        validate_sample(data)
    with pytest.raises(SampleError, match="a load sample is an object, got list"):
        validate_sample([1, 2])


def test_the_reader_drops_bad_samples_and_logs_each_problem_once(
        caplog: pytest.LogCaptureFixture) -> None:
    reader = NodeLoadReader()
    samples = {"fw1": sample(), "fw2": sample(node="fw2", cpu=7), "fw3": sample(node="fw3",
                                                                              time=900.0)}
    with caplog.at_level(logging.WARNING, logger="sdnscent.telemetry"):
        for now in (1001.0, 1002.0):
            loads = reader.read(samples, now)
            assert set(loads) == {"fw1"}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert any("fw2" in line and "field 'cpu'" in line for line in lines)
    assert any("fw3" in line and "stale" in line for line in lines)
