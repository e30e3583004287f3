"""A Redis outage under a running controller: installed trails keep forwarding, new
trails are made in the controller's memory, and everything is written back when
Redis returns (empty: this redis-server keeps no data across a restart)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from mininet_tests.harness import PingStream, ScentNet, ping, running_net, trail_between, wait_for
from sdnscent.store import open_store
from tests.redisproc import RedisServer
from topologies.leafspine import LeafSpineTopo

INTERVAL = 0.05


@pytest.fixture(scope="module")
def onet(redis_server: RedisServer) -> Iterator[ScentNet]:
    """2 spines, 2 leaves, 2 hosts per leaf (h1 h2 on s3, h3 h4 on s4), trails in Redis."""
    with running_net(LeafSpineTopo(spines=2, leaves=2, hosts_per_leaf=2),
                     controller_args=["--store", redis_server.url]) as net:
        yield net


def stored_pairs(url: str) -> set[tuple[str, str]]:
    store = open_store(url)
    try:
        return {(t.src_ip, t.dst_ip) for t in store.all()}
    finally:
        store.close()


def test_redis_outage_keeps_forwarding_and_writes_back(onet: ScentNet,
                                                       redis_server: RedisServer) -> None:
    h1, h2, h3, h4 = (onet.host(n) for n in ("h1", "h2", "h3", "h4"))
    assert ping(h1, h3.IP())
    before = trail_between(onet, h1.IP(), h3.IP())
    assert (h1.IP(), h3.IP()) in stored_pairs(redis_server.url)

    stream = PingStream(h1, h3.IP(), 8.0, INTERVAL)
    time.sleep(1.0)
    redis_server.stop()
    down = time.monotonic()
    # a new pair during the outage: planned, installed, held in memory
    assert wait_for(lambda: ping(h2, h4.IP()), 10, "h2 -> h4 during the outage", interval=0.5)
    status = onet.ctl.get("/controller")
    assert status["store_status"]["healthy"] is False, status
    assert status["store_status"]["pending_writes"] >= 1, status
    during = trail_between(onet, h2.IP(), h4.IP())
    time.sleep(2.0)  # a few counter polls and lease renewals held in memory

    redis_server.start()  # empty
    wait_for(lambda: onet.ctl.get("/controller")["store_status"]["healthy"], 15,
             "the controller to notice Redis is back")
    back = time.monotonic() - down
    sent, received = stream.result()
    print(f"redis outage of {back:.1f} s: {sent - received} of {sent} pings lost; "
          f"{onet.ctl.get('/controller')['store_status']['written_back']} records written back")
    assert received == sent, stream.output
    pairs = stored_pairs(redis_server.url)
    assert {(h1.IP(), h3.IP()), (h2.IP(), h4.IP())} <= pairs
    assert trail_between(onet, h1.IP(), h3.IP())["label"] == before["label"]
    assert trail_between(onet, h2.IP(), h4.IP())["label"] == during["label"]
    assert ping(h2, h3.IP())  # and new trails go to Redis again
    assert (h2.IP(), h3.IP()) in stored_pairs(redis_server.url)
