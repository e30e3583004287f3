"""A host-tagged trail moved by a real re-plan: h1, h2 and h3 label their own packets
(sdnscent-vni, registered as taggers in the policy); two of them send elephants
(numbered UDP streams, 2,000 datagrams/s) whose trails share an uplink; the global
placement moves one make-before-break, the tagger's map follows within one
interval, and neither stream loses a datagram."""

from __future__ import annotations

import json
import signal
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
from mininet_tests.test_moves import links, python
from mininet_tests.test_vni import map_labels, mpls_labels, need_tagger, show, vni
from tests.redisproc import running_redis
from topologies.leafspine import LeafSpineTopo

INTERVAL = 0.5
POLICY = ("version: 1\nnodes:\n  h1: {kind: host, ip: 10.0.0.1, tagger: true}\n"
          "  h2: {kind: host, ip: 10.0.0.2, tagger: true}\n"
          "  h3: {kind: host, ip: 10.0.0.3, tagger: true}\n")
TAGGERS = ("h1", "h2", "h3")
RATE, SECONDS, SIZE = 2000, 10, 1200  # ~19 Mbit/s: an elephant on a 100 Mbit/s host link


@pytest.fixture(scope="module")
def tagged(testbed: None) -> Iterator[ScentNet]:
    need_tagger()
    with running_redis("sdnscent-vnimove-") as server:
        policy = server.dir / "policy.yaml"
        policy.write_text(POLICY)
        with running_net(LeafSpineTopo(spines=2, leaves=2, hosts_per_leaf=3),
                         ["--store", server.url, "--default-link-capacity", "100000000",
                          "--stats-interval", "0.5"], policy=policy) as net:
            taggers = [vni(net.host(h), "run", "--store", server.unix_url, "--iface",
                           str(net.host(h).defaultIntf()), "--interval", str(INTERVAL))
                       for h in TAGGERS]
            try:
                for h in TAGGERS:
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
    hosts = {f"h{n}": net.host(f"h{n}") for n in range(1, 7)}
    # nine trails from leaf 1 over two uplinks: two from different taggers to
    # different hosts always share one (see test_moves)
    pairs = [(s, d) for s in TAGGERS for d in ("h4", "h5", "h6")]
    for s, d in pairs:
        assert wait_for(lambda s=s, d=d: ping(hosts[s], hosts[d].IP()), 20, f"{s} -> {d}")
    trails = {p: wait_for(lambda p=p: (t := trail_between(net, hosts[p[0]].IP(),
                                                          hosts[p[1]].IP()))["state"]
                          == "active" and t, 10, f"{p} active") for p in pairs}
    crowded = [(a, b) for a in pairs for b in pairs if a < b and a[0] != b[0]
               and a[1] != b[1] and links(trails[a]) & links(trails[b])]
    assert crowded, trails
    streams = crowded[0]
    for s, d in streams:
        wait_for(lambda s=s, d=d: map_labels(hosts[s]).get(hosts[d].IP())
                 == trails[(s, d)]["label"], 5, f"{s}'s map")
    count = RATE * SECONDS
    receivers = [python(hosts[d], "recv", str(7000 + i), "--seconds", str(SECONDS + 20),
                        "--expect", str(count)) for i, (_, d) in enumerate(streams)]
    time.sleep(0.5)
    started = time.monotonic()
    senders = [python(hosts[s], "send", hosts[d].IP(), str(7000 + i), "--rate", str(RATE),
                      "--count", str(count), "--size", str(SIZE))
               for i, (s, d) in enumerate(streams)]

    def apart() -> list | None:
        now = [trail_between(net, hosts[s].IP(), hosts[d].IP()) for s, d in streams]
        if all(t["state"] == "active" for t in now) and not links(now[0]) & links(now[1]):
            return now
        return None

    after = wait_for(apart, 15, "the elephants on separate links", interval=0.1)
    moved_s = time.monotonic() - started
    (i,) = [n for n, (p, t) in enumerate(zip(streams, after, strict=True))
            if t["label"] != trails[p]["label"]]
    msrc, mdst = hosts[streams[i][0]], hosts[streams[i][1]]
    wait_for(lambda: map_labels(msrc).get(mdst.IP()) == after[i]["label"], 2 * INTERVAL,
             "the new label in the tagger's map", interval=0.02)
    mapped_s = time.monotonic() - started
    capture = Capture(str(msrc.defaultIntf()), host=msrc, bpf="mpls")
    time.sleep(0.5)
    on_wire = {tuple(mpls_labels(f)) for f in capture.stop()}
    for sender in senders:
        sender.wait(SECONDS + 15)
    results = [json.loads(r.communicate(timeout=SECONDS + 30)[0].decode()) for r in receivers]
    before = trails[streams[i]]
    print(f"host-tagged move: elephants apart {moved_s:.2f} s after they started, map "
          f"{mapped_s:.2f} s; labels on {streams[i][0]}'s wire {on_wire}; streams {results}")
    assert (after[i]["label"],) in on_wire and (before["label"],) not in on_wire
    for result in results:
        assert result["received"] == count and result["lost"] == 0, result
