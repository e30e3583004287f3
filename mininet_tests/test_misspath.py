"""The sniffer miss path: a transit flow deleted mid-stream comes back from the store."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from mininet_tests.harness import ScentNet, dump_flows, ping, running_net, trail_between
from topologies.linear import LinearTopo


@pytest.fixture(scope="module")
def line(testbed: None) -> Iterator[ScentNet]:
    """s1 - s2 - s3 with one host each."""
    with running_net(LinearTopo(3)) as net:
        yield net


def test_deleted_transit_flow_is_restored_without_losing_packets(line: ScentNet) -> None:
    h1, h3 = line.host("h1"), line.host("h3")
    assert ping(h1, h3.IP())
    trail = trail_between(line, h1.IP(), h3.IP())
    assert [h["switch"] for h in trail["hops"]] == ["s1", "s2", "s3"]
    entry = re.compile(rf"table=1,.*mpls_label={trail['label']}\b")
    assert [f for f in dump_flows("s2") if entry.search(f)]

    result: dict[str, str] = {}
    stream = threading.Thread(
        target=lambda: result.update(out=h1.cmd(f"ping -n -i 0.05 -c 60 {h3.IP()}")))
    stream.start()
    time.sleep(1.0)
    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "del-flows", "s2",
                    f"table=1,mpls,mpls_label={trail['label']}"], check=True)
    stream.join()

    sent, received = map(int, re.search(r"(\d+) packets transmitted, (\d+) received",
                                        result["out"]).groups())
    assert (sent, received) == (60, 60), result["out"]
    assert [f for f in dump_flows("s2") if entry.search(f)], "the hop was not restored"
    misses = [e for e in line.ctl.get("/events")["events"] if e["kind"] == "label-miss"]
    assert misses and misses[-1]["trail"] == trail["id"]
