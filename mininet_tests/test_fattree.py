"""The walking skeleton on a k=4 fat-tree: trails carry all traffic, on the wire.

Tests run in file order on one network; the link-failure test comes last.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether

from mininet_tests.harness import (
    Capture,
    ScentNet,
    dump_flows,
    ping,
    port_name,
    trail_between,
    wait_for,
)
from sdnscent.flows import trail_cookie


def test_pingall_fattree_has_no_loss_over_trails(fattree: ScentNet) -> None:
    loss = fattree.net.pingAll(timeout=2)
    assert loss == 0.0
    trails = fattree.ctl.get("/trails")["trails"]
    pairs = {(t["src"], t["dst"]) for t in trails}
    ips = [h.IP() for h in fattree.net.hosts]
    assert pairs == {(a, b) for a in ips for b in ips if a != b}
    assert all(t["state"] == "active" for t in trails)
    for sw in fattree.switch_names:  # no learning switch, no NORMAL, no flooding
        for line in dump_flows(sw):
            assert "NORMAL" not in line and "FLOOD" not in line and "ALL" not in line, line


def test_core_link_frames_carry_the_trail_label(fattree: ScentNet) -> None:
    src, dst = fattree.host("h1"), fattree.host("h16")  # pods 0 and 3
    assert ping(src, dst.IP())
    trail = trail_between(fattree, src.IP(), dst.IP())
    assert len(trail["hops"]) == 5, trail["hops"]  # edge, agg, core, agg, edge
    agg = trail["hops"][1]
    core_link = port_name(fattree, agg["dpid"], agg["out_port"])
    on_link = Capture(core_link, bpf="mpls")
    at_host = Capture(dst.defaultIntf().name, host=dst)
    assert ping(src, dst.IP(), count=5, wait=1)
    link_frames, host_frames = on_link.stop(), at_host.stop()

    ours = [f for f in link_frames if MPLS in f and IP in f
            and (f[IP].src, f[IP].dst) == (src.IP(), dst.IP())]
    assert len(ours) >= 3, f"{len(ours)} labelled frames {src.IP()}->{dst.IP()} on {core_link}"
    assert {f[MPLS].label for f in ours} == {trail["label"]}
    delivered = [f for f in host_frames if IP in f and ICMP in f and f[IP].src == src.IP()]
    assert len(delivered) >= 3
    assert all(f[Ether].type == 0x0800 for f in delivered)
    assert not [f for f in host_frames if f[Ether].type == 0x8847 or MPLS in f]


def _flows_by_switch(net: ScentNet) -> dict[str, list[str]]:
    view = net.ctl.get("/topology")
    names = {sw["dpid"]: sw["name"] for sw in view["switches"]}
    return {dpid: dump_flows(name) for dpid, name in names.items()}


def _first_buckets(net: ScentNet) -> dict[str, dict[str, str]]:
    """dpid -> group id -> its first bucket, of every switch (ovs-ofctl dump-groups)."""
    view = net.ctl.get("/topology")
    out: dict[str, dict[str, str]] = {}
    for sw in view["switches"]:
        text = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "--no-names", "dump-groups",
                               sw["name"]], check=True, capture_output=True, text=True).stdout
        out[sw["dpid"]] = {m.group(1): m.group(2) for m in re.finditer(
            r"group_id=(\d+),type=ff,bucket=([^,]+,actions=[^,]+)", text)}
    return out


def test_every_rest_hop_is_a_flow_on_its_switch(fattree: ScentNet) -> None:
    flows = _flows_by_switch(fattree)
    groups = _first_buckets(fattree)  # protected hops output into a fast-failover group
    trails = fattree.ctl.get("/trails")["trails"]
    assert trails
    for trail in trails:
        cookie = f"cookie={trail_cookie(trail['id']):#x},"
        label = trail["label"]
        hops = trail["hops"]
        first = hops[0]
        classifier = [f for f in flows[first["dpid"]] if cookie in f and "table=0," in f]
        assert len(classifier) == 1, (trail, classifier)
        assert f"in_port={first['in_port']}," in classifier[0]
        if len(hops) == 1:
            assert classifier[0].endswith(f"actions=output:{first['out_port']}")
            continue
        assert f"set_field:{label}->mpls_label" in classifier[0]
        for i, hop in enumerate(hops):
            entry = [f for f in flows[hop["dpid"]]
                     if cookie in f and "table=1," in f and f"mpls_label={label} " in f]
            assert len(entry) == 1, (trail["id"], hop, entry)
            pop = "pop_mpls:0x0800," if i == len(hops) - 1 else ""
            group = re.search(r"actions=group:(\d+)$", entry[0])
            if group and not pop:  # bucket 0 watches and outputs to the hop's port
                port = hop["out_port"]
                assert groups[hop["dpid"]][group.group(1)] == \
                    f"watch_port:{port},actions=output:{port}", entry[0]
                continue
            assert entry[0].endswith(f"actions={pop}output:{hop['out_port']}"), entry[0]


def test_tcp_crosses_the_fabric_on_trails(fattree: ScentNet) -> None:
    """Full-size frames fit: labelled frames need inter-switch MTU > 1500."""
    server, client = fattree.host("h16"), fattree.host("h1")
    proc = server.popen(["iperf3", "-s", "-1", "-B", server.IP()])
    wait_for(lambda: "iperf3" in server.cmd("ss -ltnp"), 5, "the iperf3 server")
    out = client.cmd(f"iperf3 -c {server.IP()} -t 2 -J")
    proc.wait(10)
    received = json.loads(out)["end"]["sum_received"]["bits_per_second"]
    assert received > 50e6, f"iperf3 over the trail: {received / 1e6:.1f} Mbit/s"


def test_link_down_reroutes_trail_within_3s(fattree: ScentNet) -> None:
    src, dst = fattree.host("h2"), fattree.host("h15")
    assert ping(src, dst.IP())
    before = trail_between(fattree, src.IP(), dst.IP())
    agg, core = before["hops"][1], before["hops"][2]
    names = {sw["dpid"]: sw["name"] for sw in fattree.ctl.get("/topology")["switches"]}
    fattree.net.configLinkStatus(names[agg["dpid"]], names[core["dpid"]], "down")
    down_at = time.monotonic()
    wait_for(lambda: ping(src, dst.IP(), wait=0.3), 10, "ping after the link went down",
             interval=0.0)
    recovered = time.monotonic() - down_at
    assert recovered < 3.0, f"ping recovered after {recovered:.2f} s"

    after = trail_between(fattree, src.IP(), dst.IP())
    assert after["id"] == before["id"] and after["label"] != before["label"]
    used = {(h["dpid"], h["out_port"]) for h in after["hops"]}
    assert (agg["dpid"], agg["out_port"]) not in used
    # Ping may come back over the fast-failover detour before the re-route's old
    # path is deleted (after its drain): the old label goes soon after, everywhere.
    stale = re.compile(rf"mpls_label={before['label']}\b")

    def left() -> dict[str, list[str]]:
        return {dpid: found for dpid, lines in _flows_by_switch(fattree).items()
                if (found := [line for line in lines if stale.search(line)])}

    wait_for(lambda: not left(), 2.0, "the old label's entries gone", interval=0.1)
    print(f"reroute: ping recovered {recovered:.2f} s after the link went down")
