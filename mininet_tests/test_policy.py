"""The policy engine on a zoned fabric with a real nftables firewall (fw1).

topologies/nfchain.py: spines s1 (core, level 2) and s2 (dmz, level 0), leaves
s3-s5 (access, level 1); fw1 bridges s4 ports 2 and 3. The policy is
mininet_tests/policies/nfchain.yaml. Tests run in file order on one network.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import UDP

from mininet_tests.harness import (
    Capture,
    ScentNet,
    dump_flows,
    ping,
    running_net,
    wait_for,
)
from sdnscent.flows import trail_cookie
from topologies.nfchain import NFChainTopo

POLICY = Path(__file__).parent / "policies" / "nfchain.yaml"
TOKEN = "test-token-0123"
DMZ_SPINE = "0000000000000002"


@pytest.fixture(scope="module")
def nfnet(testbed: None) -> Iterator[ScentNet]:
    """The zoned fabric under a controller started with the policy."""
    with running_net(NFChainTopo(), ["--api-token", TOKEN], policy=POLICY) as net:
        yield net


def send_udp(host: Any, dst_ip: str, port: int, count: int, gap: float = 0.01) -> None:
    """Send `count` UDP datagrams from `host` to dst_ip:port."""
    host.cmd(
        "python3 -c \"import socket,time; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); "
        f"[(s.sendto(b'x'*64,('{dst_ip}',{port})),time.sleep({gap})) for _ in range({count})]\"")


def app_trail(net: ScentNet, app: str, src_ip: str, dst_ip: str) -> dict[str, Any]:
    """The REST record of `app`'s trail src_ip -> dst_ip."""
    def find() -> dict[str, Any] | None:
        for trail in net.ctl.get("/trails")["trails"]:
            if (trail["app"], trail["src"], trail["dst"]) == (app, src_ip, dst_ip) \
                    and trail["state"] == "active":
                return trail
        return None

    return wait_for(find, 10, f"an active {app} trail {src_ip} -> {dst_ip}")


def fw_counters(net: ScentNet) -> dict[str, tuple[int, int]]:
    """nftables rule counters of the firewall host."""
    return net.host("fw1").nft_counters()


def put_policy(net: ScentNet, text: str, token: str | None = TOKEN) -> tuple[int, Any]:
    """PUT a policy; return (HTTP status, decoded body)."""
    req = urllib.request.Request(net.ctl.api + "/policy", data=text.encode(), method="PUT",
                                 headers={"Content-Type": "application/yaml"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def cables(net: ScentNet, trail: dict[str, Any]) -> set[frozenset[tuple[str, int]]]:
    """The inter-switch cables a trail uses, as unordered port pairs."""
    links = {(lk["src"], lk["src_port"]): (lk["dst"], lk["dst_port"])
             for lk in net.ctl.get("/topology")["links"]}
    used = set()
    for hop in trail["hops"][:-1]:
        end = (hop["dpid"], hop["out_port"])
        if end in links:
            used.add(frozenset((end, links[end])))
    return used


def test_restricted_trail_crosses_the_firewall_and_never_the_dmz(nfnet: ScentNet) -> None:
    h1, h3 = nfnet.host("h1"), nfnet.host("h3")
    assert ping(h1, h3.IP())
    trail = app_trail(nfnet, "payroll", h1.IP(), h3.IP())
    assert [h.get("via") for h in trail["hops"] if h.get("via")] == ["fw1"]
    assert DMZ_SPINE not in {h["dpid"] for h in trail["hops"]}
    before = fw_counters(nfnet)
    fw = nfnet.host("fw1")
    at_fw = [Capture(f"fw1-eth{i}", host=fw, bpf="udp port 5001") for i in (0, 1)]
    at_dst = Capture(h3.defaultIntf().name, host=h3, bpf="udp port 5001")
    send_udp(h1, h3.IP(), 5001, 50)
    seen_fw, delivered = [cap.stop() for cap in at_fw], at_dst.stop()
    after = fw_counters(nfnet)
    assert after["other"][0] - before["other"][0] >= 50  # UDP 5001 is not ICMP/TCP
    for frames in seen_fw:  # in on one side, out on the other, unlabelled both times
        plain = [f for f in frames if UDP in f and MPLS not in f]
        assert len(plain) == 50, [f.summary() for f in frames[:5]]
    assert len([f for f in delivered if UDP in f]) == 50
    cookie = f"cookie={trail_cookie(trail['id']):#x},"
    assert not [line for line in dump_flows("s2") if cookie in line]


def test_firewall_denied_packets_never_reach_the_destination(nfnet: ScentNet) -> None:
    h1, h3 = nfnet.host("h1"), nfnet.host("h3")
    before = fw_counters(nfnet)
    at_dst = Capture(h3.defaultIntf().name, host=h3, bpf="udp port 9999")
    send_udp(h1, h3.IP(), 9999, 20)
    delivered = at_dst.stop()
    after = fw_counters(nfnet)
    assert after["deny-udp-9999"][0] - before["deny-udp-9999"][0] == 20
    assert delivered == []


def test_isolated_applications_share_no_link(nfnet: ScentNet) -> None:
    h2, h4 = nfnet.host("h2"), nfnet.host("h4")
    assert ping(h2, h4.IP())
    a = app_trail(nfnet, "backup-a", h2.IP(), h4.IP())
    b = app_trail(nfnet, "backup-b", h2.IP(), h4.IP())
    a_back = app_trail(nfnet, "backup-a", h4.IP(), h2.IP())
    b_back = app_trail(nfnet, "backup-b", h4.IP(), h2.IP())
    assert not (cables(nfnet, a) | cables(nfnet, a_back)) & (cables(nfnet, b)
                                                           | cables(nfnet, b_back))
    # On the wire: the spine ports towards s3 carry each application on its own spine.
    caps = {spine: Capture(f"{spine}-eth1", bpf="mpls") for spine in ("s1", "s2", "s6")}
    send_udp(h2, h4.IP(), 6001, 20)
    send_udp(h2, h4.IP(), 6002, 20)
    labels = {spine: {f[MPLS].label for f in cap.stop() if MPLS in f}
              for spine, cap in caps.items()}
    spines_a = {s for s, seen in labels.items() if seen & {a["label"], a_back["label"]}}
    spines_b = {s for s, seen in labels.items() if seen & {b["label"], b_back["label"]}}
    assert spines_a and spines_b and not spines_a & spines_b, labels


def test_infeasible_application_is_reported_and_never_delivered(nfnet: ScentNet) -> None:
    h5, h1 = nfnet.host("h5"), nfnet.host("h1")
    assert ping(h5, h1.IP())  # other traffic of the pair flows
    at_dst = Capture(h1.defaultIntf().name, host=h1, bpf="udp port 7001")
    send_udp(h5, h1.IP(), 7001, 20)
    assert at_dst.stop() == []
    events = nfnet.ctl.get("/events")["events"]
    reasons = [e["message"] for e in events if e["kind"] == "no-path" and "vault" in e["message"]]
    assert reasons and "level" in reasons[-1], events[-10:]
    assert not [t for t in nfnet.ctl.get("/trails")["trails"] if t["app"] == "vault"]


def _trail_labels(net: ScentNet) -> dict[int, int]:
    return {t["id"]: t["label"] for t in net.ctl.get("/trails")["trails"]}


def test_broken_policy_is_rejected_and_changes_nothing(nfnet: ScentNet) -> None:
    before_policy, before_trails = nfnet.ctl.get("/policy"), _trail_labels(nfnet)
    status, body = put_policy(nfnet, POLICY.read_text(), token=None)
    assert status == 401
    broken = POLICY.read_text().replace("isolation: link}", "isolation: sometimes}", 1)
    status, body = put_policy(nfnet, broken)
    assert status == 400
    assert any("isolation" in p for p in body["error"]["problems"]), body
    nfnet.policy_path.write_text("version: 1\napplications: [oops\n")
    nfnet.ctl.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: any(e["kind"] == "policy-rejected"
                         for e in nfnet.ctl.get("/events")["events"]), 10, "the SIGHUP rejection")
    assert nfnet.ctl.get("/policy") == before_policy
    assert _trail_labels(nfnet) == before_trails


def test_valid_policy_reload_replans_and_traffic_keeps_flowing(nfnet: ScentNet) -> None:
    h1, h3 = nfnet.host("h1"), nfnet.host("h3")
    old = app_trail(nfnet, "payroll", h1.IP(), h3.IP())
    doc = yaml.safe_load(POLICY.read_text())
    payroll = next(a for a in doc["applications"] if a["name"] == "payroll")
    payroll["requirements"]["chain"] = []  # no firewall any more, still no dmz
    at_dst = Capture(h3.defaultIntf().name, host=h3, bpf="udp port 5001")
    sender = threading.Thread(target=send_udp, args=(h1, h3.IP(), 5001, 300, 0.01))
    sender.start()
    time.sleep(1.0)
    status, body = put_policy(nfnet, yaml.safe_dump(doc))
    sender.join()
    delivered = [f for f in at_dst.stop() if UDP in f]
    assert status == 200 and body["status"] == "applied", body
    new = app_trail(nfnet, "payroll", h1.IP(), h3.IP())
    assert new["id"] == old["id"] and new["label"] != old["label"]
    assert not [h for h in new["hops"] if h.get("via")]
    assert DMZ_SPINE not in {h["dpid"] for h in new["hops"]}
    assert len(delivered) == 300, f"{300 - len(delivered)} datagrams lost across the reload"
