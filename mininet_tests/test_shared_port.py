"""Several hosts behind one switch port, on real Open vSwitch.

s1 port 1 leads to hv1, a Linux bridge in a namespace (a hypervisor) with h1 and h2
behind it; s1 port 2 to hv2, a plain learning bridge (an access switch) with h4
and h5; h3 hangs off s2. hv1 is a VEPA bridge: its host ports are isolated and
learn nothing, so every frame of h1 and h2 goes up to s1 and comes back down the
same port. h1 <-> h2 thus needs the trail's output:IN_PORT (OpenFlow drops an
output to the in_port by number). hv2 switches h4 <-> h5 itself, as an access
switch does (when its forwarding table is right: see the last test). Tests run
in file order on one network.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mininet.topo import Topo

from mininet_tests.harness import (
    ScentNet,
    dump_flows,
    n_packets,
    ping,
    running_net,
    trail_between,
)
from sdnscent.flows import trail_cookie
from sdnscent.topology import dpid_str

S1, S2 = dpid_str(1), dpid_str(2)
IPS = {f"h{n}": f"10.0.0.{n}" for n in range(1, 6)}
BRIDGES = {"hv1": ("h1", "h2"), "hv2": ("h4", "h5")}  # bridge host -> the hosts behind it
UPLINK = {"hv1": 1, "hv2": 2}  # the s1 port each bridge hangs off
PINGS = 3
COUNTED = PINGS - 1  # of PINGS packets: the first may have reached the switch before its trail


class SharedPortTopo(Topo):
    """s1 - s2; hv1 (h1, h2) on s1:1, hv2 (h4, h5) on s1:2, h3 on s2:1."""

    def build(self, **_opts: Any) -> None:
        """Switches, the two bridge namespaces and their hosts."""
        s1, s2 = self.addSwitch("s1"), self.addSwitch("s2")
        for n in range(1, 6):
            self.addHost(f"h{n}", ip=f"{IPS[f'h{n}']}/8", mac=f"00:00:00:00:00:{n:02x}")
        for bridge, hosts in BRIDGES.items():
            self.addHost(bridge, ip=None)
            self.addLink(bridge, s1, port1=0, port2=UPLINK[bridge])
            for port, host in enumerate(hosts, 1):
                self.addLink(host, bridge, port1=0, port2=port)
        self.addLink(s1, s2, port1=3, port2=2)
        self.addLink("h3", s2, port1=0, port2=1)


def make_bridge(node: Any, vepa: bool) -> None:
    """br0 over the node's ports: eth0 goes up to s1, the others lead to hosts.

    VEPA: the host ports are isolated from each other and nothing learns, so a
    host's frames flood to the uplink only and frames from s1 flood to the hosts.
    """
    ports = [f"{node.name}-eth{i}" for i in range(3)]
    script = ["sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1",
              "ip link add br0 type bridge stp_state 0"]
    for port in ports:
        script += [f"ip link set {port} master br0", f"ip link set {port} up"]
    if vepa:
        script += [f"bridge link set dev {ports[0]} learning off"]
        script += [f"bridge link set dev {p} isolated on learning off" for p in ports[1:]]
    script.append("ip link set br0 up")
    for line in script:
        out = node.cmd(f"{line} && echo ok")
        assert out.strip().endswith("ok"), f"{node.name}: {line}: {out}"


@pytest.fixture(scope="module")
def shared(testbed: None) -> Iterator[ScentNet]:
    """The network with hv1 a VEPA bridge and hv2 a learning bridge."""
    with running_net(SharedPortTopo()) as net:
        make_bridge(net.host("hv1"), vepa=True)
        make_bridge(net.host("hv2"), vepa=False)
        yield net


def classifier(net: ScentNet, src: str, dst: str) -> tuple[dict[str, Any], str]:
    """The REST record of the trail src -> dst and its table-0 flow on its ingress."""
    trail = trail_between(net, IPS[src], IPS[dst])
    cookie = f"cookie={trail_cookie(trail['id']):#x},"
    switch = f"s{int(trail['hops'][0]['dpid'], 16)}"
    [line] = [f for f in dump_flows(switch) if cookie in f and "table=0," in f]
    return trail, line


def test_every_host_reaches_the_host_on_the_other_switch(shared: ScentNet) -> None:
    """Also how the controller learns them: a host behind a shared port that has
    not spoken is not probed on that port."""
    for name in ("h1", "h2", "h4", "h5"):
        assert ping(shared.host(name), IPS["h3"], count=2), name
        assert ping(shared.host("h3"), IPS[name]), name
        trail, line = classifier(shared, name, "h3")
        assert len(trail["hops"]) == 2 and "->mpls_label" in line and n_packets(line) >= 2
    hosts = {h["ip"]: (h["dpid"], h["port"]) for h in shared.ctl.get("/topology")["hosts"]}
    for bridge, names in BRIDGES.items():
        assert [hosts[IPS[n]] for n in names] == [(S1, UPLINK[bridge])] * 2, hosts


def test_hosts_behind_one_port_talk_over_a_trail_out_of_in_port(shared: ScentNet) -> None:
    out = shared.host("h1").cmd(f"ping -n -c {PINGS} -W 1 {IPS['h2']}")
    assert f"{PINGS} received" in out and "DUP!" not in out, out
    for src, dst in (("h1", "h2"), ("h2", "h1")):
        trail, line = classifier(shared, src, dst)
        assert trail["hops"] == [{**trail["hops"][0], "dpid": S1, "in_port": 1,
                                  "out_port": 1}], trail
        assert "in_port=1," in line and line.endswith("actions=IN_PORT"), line
        assert n_packets(line) >= COUNTED, line


def test_hosts_behind_two_ports_of_one_switch_talk_over_a_local_trail(
        shared: ScentNet) -> None:
    assert ping(shared.host("h1"), IPS["h4"], count=PINGS)
    for src, dst, in_port, out_port in (("h1", "h4", 1, 2), ("h4", "h1", 2, 1)):
        trail, line = classifier(shared, src, dst)
        assert [(h["in_port"], h["out_port"]) for h in trail["hops"]] == [(in_port, out_port)]
        assert line.endswith(f"actions=output:{out_port}") and n_packets(line) >= COUNTED, line


def test_hosts_behind_a_learning_bridge_reach_each_other(shared: ScentNet) -> None:
    """Last: a failure leaves hv2's forwarding table pointing upstream."""
    out = shared.host("h4").cmd(f"ping -n -c {PINGS} -W 1 {IPS['h5']}")
    assert f"{PINGS} received" in out and "DUP!" not in out, out
