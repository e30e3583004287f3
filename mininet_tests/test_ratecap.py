"""Rate caps on the wire: a bulk application's trail is metered at the ingress
(OpenFlow meter, userspace datapath) to its class's max_rate, within 10 %, while an
interactive trail over the same links keeps its latency."""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mininet_tests.harness import ScentNet, ping, running_net, trail_between, wait_for
from topologies.linear import LinearTopo

CAP = 20_000_000  # bit/s
POLICY = textwrap.dedent(f"""\
    version: 1
    nodes:
      h1: {{kind: host, ip: 10.0.0.1}}
    data_classes:
      bulk: {{max_rate: {CAP // 1_000_000}Mbit}}
      interactive: {{latency: 5}}
    applications:
      - name: backup
        data_class: bulk
        endpoints: {{hosts: [h1], ports: [udp/5201]}}
""")


@pytest.fixture(scope="module")
def line(testbed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScentNet]:
    """s1 - s2 - s3, one host each; UDP to port 5201 from/to h1 is the bulk app."""
    policy = Path(tmp_path_factory.mktemp("ratecap")) / "policy.yaml"
    policy.write_text(POLICY)
    with running_net(LinearTopo(3), policy=policy) as net:
        yield net


def rtt_ms(host, dst: str, count: int = 20) -> float:
    out = host.cmd(f"ping -n -q -i 0.05 -c {count} {dst}")
    found = re.search(r"= [\d.]+/([\d.]+)/", out)
    assert found, out
    return float(found[1])


def test_a_bulk_trail_is_capped_and_the_interactive_one_keeps_its_latency(
        line: ScentNet) -> None:
    h1, h3 = line.host("h1"), line.host("h3")
    assert ping(h1, h3.IP())
    idle_rtt = rtt_ms(h1, h3.IP())
    server = h3.popen(["iperf3", "-s", "-1", "-J", "-p", "5201"], stdout=subprocess.PIPE,
                      stderr=subprocess.STDOUT)
    wait_for(lambda: "5201" in h3.cmd("ss -ltn"), 5, "iperf3 listening")
    client = h1.popen(["iperf3", "-c", h3.IP(), "-p", "5201", "-u", "-b", "60M", "-l", "1400",
                       "-t", "6"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for(lambda: [t for t in line.ctl.get("/trails")["trails"]
                      if t["app"] == "backup" and t["src"] == h1.IP()], 5, "the bulk trail")
    busy_rtt = rtt_ms(h1, h3.IP(), count=40)  # the default trail, during the bulk transfer
    client.communicate(timeout=30)
    report = json.loads(server.communicate(timeout=30)[0].decode())
    received = report["end"]["sum_received"]["bits_per_second"]  # what reached h3
    bulk = next(t for t in line.ctl.get("/trails")["trails"]
                if t["app"] == "backup" and t["src"] == h1.IP())
    meters = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-meters", "s1"],
                            capture_output=True, text=True, check=True).stdout
    print(f"cap {CAP / 1e6:.0f} Mbit/s: bulk received {received / 1e6:.1f} Mbit/s of 60 sent; "
          f"ping RTT idle {idle_rtt:.3f} ms, during the transfer {busy_rtt:.3f} ms")
    assert bulk["rate_cap"] == CAP
    assert f"meter={bulk['id']} kbps" in meters and f"rate={CAP // 1000}" in meters, meters
    assert abs(received - CAP) <= 0.1 * CAP, f"{received / 1e6:.1f} Mbit/s"
    assert trail_between(line, h1.IP(), h3.IP())["rate_cap"] == 0  # the default trail
    assert busy_rtt <= max(3 * idle_rtt, idle_rtt + 2.0), (idle_rtt, busy_rtt)
