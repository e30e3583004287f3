"""A host-tagged trail moved by a real re-plan: h1 and h2 label their own packets
(sdnscent-vni, registered as taggers in the policy); iperf3 fills the uplink one of
their trails shares with another; the engine moves the other trail make-before-break,
the tagger's map follows within one interval, and a 1,000 packets/s numbered UDP
stream on the moved trail loses nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from mininet_tests.harness import (
    Capture,
    ScentNet,
    ping,
    running_net,
    trail_between,
    wait_for,
)
from mininet_tests.test_moves import python, uplink
from mininet_tests.test_vni import map_labels, mpls_labels, need_tagger, show, vni
from tests.redisproc import running_redis
from topologies.leafspine import LeafSpineTopo

INTERVAL = 0.5
POLICY = ("version: 1\nnodes:\n  h1: {kind: host, ip: 10.0.0.1, tagger: true}\n"
          "  h2: {kind: host, ip: 10.0.0.2, tagger: true}\n")


@pytest.fixture(scope="module")
def tagged(testbed: None) -> Iterator[ScentNet]:
    need_tagger()
    with running_redis("sdnscent-vnimove-") as server:
        policy = server.dir / "policy.yaml"
        policy.write_text(POLICY)
        with running_net(LeafSpineTopo(spines=2, leaves=2, hosts_per_leaf=2),
                         ["--store", server.url, "--default-link-capacity", "100000000",
                          "--stats-interval", "0.5"], policy=policy) as net:
            taggers = [vni(net.host(h), "run", "--store", server.unix_url, "--iface",
                           str(net.host(h).defaultIntf()), "--interval", str(INTERVAL))
                       for h in ("h1", "h2")]
            try:
                for h in ("h1", "h2"):
                    wait_for(lambda h=h: show(net.host(h)).get("attached"), 20,
                             f"the tagger on {h}")
                yield net
            finally:
                for proc in taggers:
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGTERM)
                        proc.wait(10)


def test_a_host_tagged_trail_moves_without_loss(tagged: ScentNet) -> None:
    net = tagged
    hosts = {n: net.host(n) for n in ("h1", "h2", "h3", "h4")}
    pairs = [(s, d) for s in ("h1", "h2") for d in ("h3", "h4")]
    for s, d in pairs:
        assert wait_for(lambda s=s, d=d: ping(hosts[s], hosts[d].IP()), 20, f"{s} -> {d}")
    trails = {p: wait_for(lambda p=p: (t := trail_between(net, hosts[p[0]].IP(),
                                                          hosts[p[1]].IP()))["state"]
                          == "active" and t, 10, f"{p} active") for p in pairs}
    shared = [(a, b) for a in pairs for b in pairs if a < b
              and uplink(trails[a]) == uplink(trails[b])]
    assert shared, trails
    elephant, mouse = shared[0]
    msrc, mdst = hosts[mouse[0]], hosts[mouse[1]]
    before = trails[mouse]
    wait_for(lambda: map_labels(msrc).get(mdst.IP()) == before["label"], 5, "the mouse's label "
             f"{before['label']} in {mouse[0]}'s map")

    count = 10_000
    receiver = python(mdst, "recv", "7000", "--seconds", "30", "--expect", str(count))
    server = hosts[elephant[1]].popen(["iperf3", "-s", "-1", "-p", "5201"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    sender = python(msrc, "send", mdst.IP(), "7000", "--rate", "1000", "--count", str(count),
                    "--size", "1200")
    time.sleep(1.5)
    loaded = time.monotonic()
    client = hosts[elephant[0]].popen(
        ["iperf3", "-c", hosts[elephant[1]].IP(), "-p", "5201", "-u", "-b", "95M", "-l", "1400",
         "-t", "7"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    after = wait_for(lambda: (t := trail_between(net, msrc.IP(), mdst.IP()))["label"]
                     != before["label"] and t["state"] == "active" and t, 15, "the move")
    moved_s = time.monotonic() - loaded
    wait_for(lambda: map_labels(msrc).get(mdst.IP()) == after["label"], 2 * INTERVAL,
             "the new label in the tagger's map", interval=0.02)
    mapped_s = time.monotonic() - loaded
    capture = Capture(str(msrc.defaultIntf()), host=msrc, bpf="mpls")
    time.sleep(0.5)
    on_wire = {tuple(mpls_labels(f)) for f in capture.stop()}
    sender.wait(30)
    result = json.loads(receiver.communicate(timeout=40)[0].decode())
    client.communicate(timeout=30)
    server.wait(10)
    print(f"host-tagged move: trail moved {moved_s:.2f} s after the load, map {mapped_s:.2f} s; "
          f"labels on {mouse[0]}'s wire {on_wire}; stream {result}")
    assert uplink(after) != uplink(before)
    assert (after["label"],) in on_wire and (before["label"],) not in on_wire
    assert result["received"] == count and result["lost"] == 0, result
