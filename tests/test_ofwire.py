"""The bulk flow-mod encoder writes exactly the bytes os-ken would, for every flow the
compiler makes (pipeline, trails with leases, meters, NF chains, services)."""

from __future__ import annotations

import pytest
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from apps import ofmsg, ofwire
from sdnscent import compiler
from sdnscent.flows import OFPP_IN_PORT, FlowSpec, Group, Output, SetField
from tests.test_meters import capped


class Datapath:
    ofproto, ofproto_parser, id = ofproto_v1_3, ofproto_v1_3_parser, 1


def reference(spec: FlowSpec, xid: int) -> bytes:
    msg = ofmsg.flow_mod(Datapath(), spec)
    msg.set_xid(xid)
    msg.serialize()
    return bytes(msg.buf)


def every_flow(fat_tree, clock) -> list[FlowSpec]:
    ctrl, _, _ = capped(fat_tree, clock)  # app trails with matches, meters, classes
    ctrl.trail_lease = 30
    ctrl.ensure_trail(fat_tree.host(2).mac, fat_tree.host(9).mac)  # a leased trail
    flows = [f for t in ctrl.store.all() for f in compiler.trail_flows(t)]
    flows += compiler.pipeline_flows(7) + [compiler.link_port_flow(7, 3)]
    flows.append(FlowSpec.make(7, 0, 300, {"in_port": 1, "eth_type": 0x800,
                                           "ipv4_dst": "10.0.0.100", "tcp_dst": 80},
                               [SetField("eth_dst", "0e:5c:0a:00:00:64"),
                                SetField("ipv4_dst", "10.0.0.3"), Output(2)]))
    return flows


def test_the_encoder_writes_what_os_ken_writes(fat_tree, clock) -> None:
    flows = every_flow(fat_tree, clock)
    assert any(f.meter for f in flows) and any(f.notify_removed for f in flows)
    for xid, spec in enumerate(flows, 1):
        assert ofwire.flow_add(spec, xid) == reference(spec, xid), spec


def test_an_unknown_field_is_left_to_os_ken() -> None:
    spec = FlowSpec.make(1, 0, 10, {"vlan_vid": 5})
    with pytest.raises(ofwire.Unsupported, match="vlan_vid"):
        ofwire.flow_add(spec, 1)


def test_output_to_in_port_is_the_reserved_port_as_a_u32() -> None:
    """Hosts behind one port: output:IN_PORT (0xfffffff8) encodes as os-ken does."""
    spec = FlowSpec.make(7, 0, 100, {"in_port": 3, "eth_type": 0x800,
                                     "eth_src": "00:00:00:00:00:01",
                                     "eth_dst": "00:00:00:00:00:02"},
                         [Output(OFPP_IN_PORT), Group(0x4000_0001)])
    wire = ofwire.flow_add(spec, 9)
    assert wire == reference(spec, 9)
    assert bytes.fromhex("00000010fffffff8ffe5") in wire  # type 0, len 16, port, max_len
