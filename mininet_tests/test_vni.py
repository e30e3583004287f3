"""The host tagger on the real thing: sdnscent-vni in h1 of s1 - s2 - s3, fed from
Redis (over its Unix socket), labels h1's packets itself (docs/vni.rst).

The policy marks h1 as a tagger, so the controller itself installs the trusted
port's flows (docs/vni.rst, "Controller wiring"); some tests also add them by hand
with ovs-ofctl (the same flows sdnscent.tagging computes: a no-op on the switch).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mininet_tests.harness import (
    REPO,
    Capture,
    ScentNet,
    dump_flows,
    n_packets,
    ping,
    running_net,
    trail_between,
    wait_for,
)
from sdnscent import tagging
from sdnscent.flows import FlowSpec
from sdnscent.store import open_store
from sdnscent.trails import TrailState
from tests.redisproc import REDIS_SERVER, RedisServer, running_redis
from topologies.linear import LinearTopo

SCAPY = "from scapy.all import *; from scapy.contrib.mpls import MPLS;"
INTERVAL = 0.5  # s between the tagger's full resyncs


def need_tagger() -> None:
    """Skip unless redis-server is installed and the tagger's BPF object is built."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (scripts/setup.sh installs it)")
    if not (REPO / "sdnscent/vni/tagger.o").exists():
        pytest.skip("sdnscent/vni/tagger.o is not built: run `make bpf`")


@pytest.fixture(scope="module")
def redis_server(testbed: None) -> Iterator[RedisServer]:
    need_tagger()
    with running_redis("sdnscent-vni-redis-") as server:
        yield server


def vni(host: Any, *args: str) -> Any:
    """`sdnscent-vni ARGS` inside a Mininet host (its network namespace)."""
    return host.popen([sys.executable, "-m", "sdnscent.vni.cli", *args], cwd=str(REPO),
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def show(host: Any) -> dict[str, Any]:
    """`sdnscent-vni show` of the host's interface."""
    out, err = vni(host, "show", "--iface", str(host.defaultIntf())).communicate(timeout=20)
    assert not err.strip(), err
    return json.loads(out)


def map_labels(host: Any) -> dict[str, int]:
    """destination -> label of the destination-only entries of the host's map."""
    return {e["daddr"]: e["label"] for e in show(host).get("entries", []) if e["shape"] == 0}


@pytest.fixture(scope="module")
def tnet(redis_server: RedisServer) -> Iterator[tuple[ScentNet, Any]]:
    """s1 - s2 - s3 with h1, h2, h3; sdnscent-vni runs in h1."""
    policy = Path(tempfile.mkdtemp(prefix="sdnscent-vni-policy-")) / "policy.yaml"
    policy.write_text("version: 1\nnodes:\n  h1: {kind: host, ip: 10.0.0.1, tagger: true}\n")
    with running_net(LinearTopo(3), ["--store", redis_server.url], policy=policy) as net:
        h1 = net.host("h1")
        proc = vni(h1, "run", "--store", redis_server.unix_url, "--iface", str(h1.defaultIntf()),
                   "--interval", str(INTERVAL), "--log-level", "info")
        try:
            wait_for(lambda: show(h1).get("attached"), 20, "the tagger on h1-eth0")
            net.vni = proc  # type: ignore[attr-defined]
            net.redis = redis_server  # type: ignore[attr-defined]
            yield net, proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)


def ofctl_flow(flow: FlowSpec) -> str:
    """A tagging FlowSpec in ovs-ofctl add-flow syntax (the fields tagging.py uses)."""
    match = ",".join(f"{k}={v:#x}" if k == "eth_type" else f"{k}={v}" for k, v in flow.match)
    actions = f"goto_table:{flow.goto}" if flow.goto is not None else "drop"
    if flow.meter is not None:
        actions = f"meter:{flow.meter},{actions}"
    return (f"table={flow.table},priority={flow.priority},cookie={flow.cookie:#x},{match},"
            f"actions={actions}")


def trust_h1(net: ScentNet) -> None:
    """Install what the controller would for tagger port h1: drop + accept flows."""
    store = open_store(net.redis.url)  # type: ignore[attr-defined]
    try:
        trails = store.all()
    finally:
        store.close()
    h1_trail = next(t for t in trails if t.src_ip == net.host("h1").IP() and len(t.hops) > 1)
    dpid, port = h1_trail.ingress.dpid, h1_trail.ingress.in_port
    for flow in tagging.trusted_port_flows(dpid, port, trails):
        subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-flow", "s1", ofctl_flow(flow)],
                       check=True)


def active_trail(net: ScentNet, src: Any, dst: Any) -> dict[str, Any]:
    return wait_for(lambda: (t := trail_between(net, src.IP(), dst.IP()))["state"] == "active"
                    and t, 10, f"an active trail {src} -> {dst}")


def tagged_trail(net: ScentNet) -> dict[str, Any]:
    """The trail h1 -> h3, its label in h1's map and accepted by s1 (trust_h1)."""
    h1, h3 = net.host("h1"), net.host("h3")
    if h3.IP() not in map_labels(h1):
        assert ping(h1, h3.IP())  # untagged: the switch sets the trail up
    trail = active_trail(net, h1, h3)
    trust_h1(net)
    wait_for(lambda: map_labels(h1).get(h3.IP()) == trail["label"], 5 * INTERVAL,
             f"label {trail['label']} for {h3.IP()} in h1's map")
    return trail


def mpls_labels(frame: Any) -> list[int]:
    """The MPLS label stack of a captured frame (outermost first)."""
    raw = bytes(frame)
    labels, off = [], 14
    if raw[12:14] != b"\x88\x47":
        return []
    while off + 4 <= len(raw):
        entry = int.from_bytes(raw[off:off + 4], "big")
        labels.append(entry >> 12)
        off += 4
        if entry & 0x100:
            break
    return labels


def test_the_map_holds_the_labels_of_the_trails_that_start_at_h1(
        tnet: tuple[ScentNet, Any]) -> None:
    net, _ = tnet
    h1, h2, h3 = net.host("h1"), net.host("h2"), net.host("h3")
    assert ping(h1, h3.IP()) and ping(h2, h3.IP())  # before h1's map has an entry
    trail = active_trail(net, h1, h3)
    other = active_trail(net, h2, h3)
    wait_for(lambda: map_labels(h1).get(h3.IP()) == trail["label"], 5 * INTERVAL,
             f"label {trail['label']} for {h3.IP()} in h1's map")
    assert other["label"] not in map_labels(h1).values()  # h2's trail is not h1's


def test_frames_leaving_h1_carry_the_trail_label_and_the_edge_adds_none(
        tnet: tuple[ScentNet, Any]) -> None:
    net, _ = tnet
    h1, h3 = net.host("h1"), net.host("h3")
    trail = tagged_trail(net)
    on_h1 = Capture(str(h1.defaultIntf()), host=h1, bpf="mpls")
    uplink = Capture("s1-eth2", bpf="mpls")  # s1 -> s2, in the root namespace
    assert ping(h1, h3.IP(), count=3, wait=2.0)
    host_frames, link_frames = on_h1.stop(), uplink.stop()
    to_h3 = bytes.fromhex(h3.MAC().replace(":", ""))
    requests = [f for f in host_frames if mpls_labels(f) and bytes(f)[:6] == to_h3]
    assert len(requests) >= 3, [bytes(f)[:20].hex() for f in host_frames]
    assert {tuple(mpls_labels(f)) for f in requests} == {(trail["label"],)}
    from_h1 = bytes.fromhex(h1.MAC().replace(":", ""))
    onward = [f for f in link_frames if bytes(f)[6:12] == from_h1]
    assert len(onward) >= 3
    assert {tuple(mpls_labels(f)) for f in onward} == {(trail["label"],)}  # one label


def packets_at(switch: str, priority: int) -> int:
    """Packets counted by `switch`'s first flow at `priority`.

    Open vSwitch's revalidators update rule counters lazily: poll, do not read once.
    """
    return n_packets(next(f for f in dump_flows(switch) if f"priority={priority}" in f))


def send_labelled(src: Any, dst: Any, label: int, count: int = 10) -> None:
    """`count` UDP/7777 frames from `src` to `dst` under MPLS `label`, sent with scapy."""
    send = (f"{SCAPY} sendp(Ether(src='{src.MAC()}', dst='{dst.MAC()}')/"
            f"MPLS(label={label}, s=1, ttl=64)/IP(src='{src.IP()}', dst='{dst.IP()}')/"
            f"UDP(sport=7777, dport=7777)/b'x'*32, iface='{src.defaultIntf()}', count={count},"
            " verbose=0)")
    out = src.cmd(f"{sys.executable} -c \"{send}\"")
    assert "Error" not in out, out


@pytest.mark.parametrize("proto", ["icmp", "udp", "tcp"])
def test_host_tagged_traffic_is_delivered(tnet: tuple[ScentNet, Any], proto: str) -> None:
    net, _ = tnet
    h1, h3 = net.host("h1"), net.host("h3")
    trail = tagged_trail(net)
    before = show(h1)["counters"]["tagged"]
    if proto == "icmp":
        out = h1.cmd(f"ping -n -c 20 -i 0.05 {h3.IP()}")
        assert " 0% packet loss" in out, out
    else:
        server = h3.popen(["iperf3", "-s", "-1", "-p", "5211"])
        try:
            time.sleep(0.5)
            udp = ["-u", "-b", "20M", "-l", "1400"] if proto == "udp" else []
            out = h1.cmd(f"iperf3 -c {h3.IP()} -p 5211 -t 2 -J {' '.join(udp)}")
            result = json.loads(out[out.index("{"):])["end"]
            if proto == "udp":
                got = result["sum"]
                assert got["lost_percent"] < 1.0 and got["packets"] > 1000, got
            else:
                assert result["sum_received"]["bits_per_second"] > 10e6, result["sum_received"]
        finally:
            server.wait(10)
    assert show(h1)["counters"]["tagged"] > before
    accept = [f for f in dump_flows("s1") if f"mpls_label={trail['label']}" in f
              and "table=0" in f]
    assert accept and n_packets(accept[0]) > 0


def test_a_host_without_a_tagger_cannot_send_labelled_frames(
        tnet: tuple[ScentNet, Any]) -> None:
    net, _ = tnet
    h2, h3 = net.host("h2"), net.host("h3")
    assert ping(h2, h3.IP())
    own = active_trail(net, h2, h3)

    before = packets_at("s2", 400)
    capture = Capture(str(h3.defaultIntf()), host=h3, bpf="udp port 7777")
    send_labelled(h2, h3, own["label"])
    assert capture.stop() == []
    wait_for(lambda: packets_at("s2", 400) >= before + 10, 5, "10 drops counted")


def test_with_the_wired_controller_a_tagger_cannot_use_a_label_it_does_not_own(
        tnet: tuple[ScentNet, Any]) -> None:
    """The controller itself trusts h1 (policy `nodes: h1: {kind: host, tagger: true}`):
    h1's own label is accepted with no hand-made flows, h2's label from h1 is dropped
    and counted by the per-port drop."""
    net, _ = tnet
    h1, h2, h3 = net.host("h1"), net.host("h2"), net.host("h3")
    assert ping(h1, h3.IP()) and ping(h2, h3.IP())
    mine, theirs = active_trail(net, h1, h3), active_trail(net, h2, h3)
    accept = [f for f in dump_flows("s1") if "priority=450" in f]
    assert any(f"mpls_label={mine['label']}" in f for f in accept), accept
    assert ping(h1, h3.IP(), count=3)
    before = packets_at("s1", 410)
    send_labelled(h1, h3, theirs["label"])
    wait_for(lambda: packets_at("s1", 410) >= before + 10, 5, "10 drops counted on h1's port")


def test_a_moved_trail_changes_the_map_within_one_interval(tnet: tuple[ScentNet, Any]) -> None:
    """A re-plan as the store shows it: REROUTING (untagged while the switch moves the
    trail), then ACTIVE under a new label. A linear fabric has no second path, so the
    move is written to the store directly (the controller's path is not changed) and
    the wire is checked on h1's own interface."""
    net, _ = tnet
    h1, h3 = net.host("h1"), net.host("h3")
    rec = tagged_trail(net)
    store = open_store(net.redis.url)  # type: ignore[attr-defined]
    try:
        old = store.get(rec["id"])
        new_label = 0xABCDE
        store.put(old.evolve(version=old.version + 1, state=TrailState.REROUTING,
                             label=new_label))
        wait_for(lambda: h3.IP() not in map_labels(h1), INTERVAL, "the entry to go (REROUTING)",
                 interval=0.02)
        moved_at = time.monotonic()
        store.put(old.evolve(version=old.version + 2, state=TrailState.ACTIVE, label=new_label))
        wait_for(lambda: map_labels(h1).get(h3.IP()) == new_label, INTERVAL,
                 "the new label in h1's map", interval=0.02)
        latency = time.monotonic() - moved_at
        capture = Capture(str(h1.defaultIntf()), host=h1, bpf="mpls")
        h1.cmd(f"ping -n -c 2 -W 0.3 {h3.IP()}")  # the switch drops it: only the wire counts
        assert {tuple(mpls_labels(f)) for f in capture.stop()} == {(new_label,)}
        print(f"store change -> map: {latency * 1000:.0f} ms (interval {INTERVAL * 1000:.0f})")
    finally:
        store.put(old.evolve(version=old.version + 3))  # the controller's record again
        store.close()
    wait_for(lambda: map_labels(h1).get(h3.IP()) == old.label, 5 * INTERVAL, "the old label")


def test_unloading_leaves_no_program_map_or_qdisc(tnet: tuple[ScentNet, Any]) -> None:
    net, proc = tnet
    h1 = net.host("h1")
    intf = str(h1.defaultIntf())
    info = show(h1)
    prog_id, map_id = info["prog_id"], info["map_id"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0, proc.stderr.read()
    assert h1.cmd(f"tc filter show dev {intf} egress").strip() == ""
    assert "clsact" not in h1.cmd(f"tc qdisc show dev {intf}")
    for kind, ident in (("prog", prog_id), ("map", map_id)):
        shown = subprocess.run(["bpftool", kind, "show", "id", str(ident)], capture_output=True)
        assert shown.returncode != 0, f"{kind} {ident} still loaded"
    pins = [p for p in Path("/sys/fs/bpf").rglob("*") if p.is_file()
            and p.name in ("trail_labels", "tag_counters")] if Path("/sys/fs/bpf").is_dir() else []
    assert pins == []
    assert show(h1) == {"iface": intf, "attached": False}
