"""Several elephants of one host pair: counted per TCP connection, split onto trails
of their own, and spread by the placement.

Counters are fed as the switches report them (classifier counters per trail,
learned counters per connection); the forwarding simulator shows where each
connection's packets go afterwards.
"""

from __future__ import annotations

from dataclasses import replace

from fabric import attachment, compile_network
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser
from test_rebalance import feed, nic, run_done

from apps import ofmsg
from sdnscent import compiler
from sdnscent.audit import diff_flows
from sdnscent.connections import ConnectionCount, ConnectionMeter, to_split
from sdnscent.controller import ScentController
from sdnscent.core.connections import CONNECTION_LEASE
from sdnscent.core.load import ELEPHANT_MEMORY
from sdnscent.flows import FlowSpec, LearnConnection, Resubmit
from sdnscent.pipeline import (
    KIND_FLOW,
    PRIO_FLOW,
    PRIO_SAMPLE,
    TABLE_FLOWS,
    cookie_kind,
    make_cookie,
)
from sdnscent.simulator import IPPROTO_TCP, IPPROTO_UDP, ipv4_packet

MBIT = 1e6


def tcp(src, dst, sport: int, dport: int = 5201, proto: int = IPPROTO_TCP):
    return ipv4_packet(src.ip, dst.ip, eth_src=src.mac, eth_dst=dst.mac, ip_proto=proto,
                       src_port=sport, dst_port=dport)


# the pure parts -------------------------------------------------------------------

def test_the_meter_turns_byte_counters_into_rates_and_forgets() -> None:
    meter = ConnectionMeter()
    meter.update([ConnectionCount(7, 40000, 5201, 0)], 10.0)
    assert meter.rates() == {}  # one reading: no rate yet
    meter.update([ConnectionCount(7, 40000, 5201, 250_000), ConnectionCount(7, 40002, 5201, 9)],
                 11.0)
    assert meter.rates() == {7: {(40000, 5201): 2_000_000.0}}
    meter.update([ConnectionCount(7, 40000, 5201, 100)], 12.0)  # relearned: starts again
    assert meter.rates()[7][(40000, 5201)] == 2_000_000.0
    meter.update([ConnectionCount(7, 40000, 5201, 125_100)], 13.0)
    assert meter.rates()[7][(40000, 5201)] == 1_000_000.0
    meter.update([], 20.0)  # nothing read for longer than FORGET_AFTER
    assert meter.rates() == {}
    meter.update([ConnectionCount(8, 1, 2, 0)], 21.0)
    meter.update([ConnectionCount(8, 1, 2, 10)], 22.0)
    meter.forget(8)
    assert meter.rates() == {}


def test_only_a_trail_with_two_elephant_connections_is_split_largest_first() -> None:
    rates = {1: {(1, 80): 5 * MBIT, (2, 80): 7 * MBIT, (3, 80): 0.1 * MBIT},
             2: {(1, 80): 9 * MBIT, (2, 80): 0.5 * MBIT},  # one elephant: placed whole
             3: {(1, 80): 9 * MBIT, (2, 80): 9 * MBIT}}  # no threshold known
    assert to_split(rates, {1: 1 * MBIT, 2: 1 * MBIT}) == {1: [(2, 80), (1, 80)]}


def test_learn_and_resubmit_survive_the_wire_and_a_read_back() -> None:
    class Datapath:
        ofproto, ofproto_parser, id = ofproto_v1_3, ofproto_v1_3_parser, 1

    learn = LearnConnection(TABLE_FLOWS, 1, 0x5CE7_0009_0000_0007, 10)
    spec = FlowSpec.make(1, 0, PRIO_SAMPLE, {"in_port": 1, "eth_type": 0x800, "ip_proto": 6},
                         [learn, Resubmit(TABLE_FLOWS)], goto=1)
    msg = ofmsg.flow_mod(Datapath(), spec)
    msg.serialize()
    buf = bytes(msg.buf)
    back = ofproto_v1_3_parser.OFPFlowMod.parser(Datapath(), ofproto_v1_3.OFP_VERSION,
                                                 ofproto_v1_3.OFPT_FLOW_MOD, len(buf), 0, buf)
    assert ofmsg.actions_from(Datapath(), back.instructions[0].actions) == spec.actions


# the controller ------------------------------------------------------------------

def counted_elephant(fat_tree, clock):
    """h1 -> h5 across pods (four paths), an elephant whose connections are counted."""
    ctrl = fat_tree.controller(clock)
    h1, h5 = fat_tree.host(1), fat_tree.host(5)
    trail, change = ctrl.ensure_trail(h1.mac, h5.mac)
    run_done(change)
    feed(ctrl, clock, {trail.id: 0.9 * nic(ctrl, trail)})
    change, _ = ctrl.rebalance()
    counted = ctrl.store.get(trail.id)
    assert counted.counted and counted.label == trail.label
    adds = [op for step in change.steps for ops in step.values() for op in ops
            if isinstance(op, FlowSpec) and op.priority == PRIO_SAMPLE]
    assert len(adds) == 1 and dict(adds[0].match)["ip_proto"] == 6
    assert adds[0].actions[:2] == (LearnConnection(TABLE_FLOWS, 1, adds[0].actions[0].cookie,
                                                   compiler.CONNECTION_IDLE),
                                   Resubmit(TABLE_FLOWS))
    assert cookie_kind(adds[0].actions[0].cookie) == KIND_FLOW
    run_done(change)
    return ctrl, counted, h1, h5


def connections(ctrl, clock, trail, rates: dict[tuple[int, int], float], dpid=None,
                seconds: int = 2) -> None:
    """Learned per-connection counters of `trail` at its ingress (or `dpid`), polled."""
    sent = dict.fromkeys(rates, 0)
    for _ in range(seconds + 1):
        ctrl.connection_counters(trail.ingress.dpid if dpid is None else dpid,
                                 [ConnectionCount(trail.id, s, d, n)
                                  for (s, d), n in sent.items()])
        clock.advance(1.0)
        for ports, bps in rates.items():
            sent[ports] += int(bps / 8)


def test_two_elephant_connections_of_one_pair_get_trails_on_different_paths(
        fat_tree, clock) -> None:
    ctrl, parent, h1, h5 = counted_elephant(fat_tree, clock)
    net = compile_network(ctrl, fat_tree)
    trace = net.send(attachment(h1), tcp(h1, h5, 40000))
    assert trace.delivered_to == ("h5",), trace.format()
    learned = [f for f in net.switches[parent.ingress.dpid].flows if f.table == TABLE_FLOWS
               and cookie_kind(f.cookie) == KIND_FLOW]
    assert [dict(f.match)["tcp_src"] for f in learned] == [40000]  # the switch learned it
    half = 0.45 * nic(ctrl, parent)
    connections(ctrl, clock, parent, {(40000, 5201): half, (40002, 5201): half * 0.9,
                                      (40004, 22): 0.01 * nic(ctrl, parent)})
    feed(ctrl, clock, {parent.id: 0.9 * nic(ctrl, parent)}, seconds=1)
    change, _ = ctrl.rebalance()
    run_done(change)
    children = sorted((t for t in ctrl.store.all() if t.connection), key=lambda t: t.connection)
    assert [t.connection for t in children] == [(40000, 5201), (40002, 5201)]
    assert ctrl.s.splits == 2
    assert children[0].hops == parent.hops  # the largest stays where it was
    assert children[1].links()[1:] != parent.links()[1:]  # the next leaves the pair's path
    assert all(t.lease == CONNECTION_LEASE and t.priority == PRIO_FLOW for t in children)
    assert len({t.label for t in [parent, *children]}) == 3
    net = compile_network(ctrl, fat_tree)
    for sport, trail in ((40000, children[0]), (40002, children[1]), (40004, parent)):
        trace = net.send(attachment(h1), tcp(h1, h5, sport, 5201 if sport != 40004 else 22))
        assert trace.delivered_to == ("h5",), trace.format()
        assert [(h.dpid, h.out_port) for h in trace.hops][:-1] == trail.links(), sport
    udp = net.send(attachment(h1), tcp(h1, h5, 40000, proto=IPPROTO_UDP))
    assert [(h.dpid, h.out_port) for h in udp.hops][:-1] == parent.links()  # not TCP: stays
    # the split-off trails are elephants the placement places like any other
    feed(ctrl, clock, {parent.id: 0.0, children[0].id: half, children[1].id: half})
    change, _ = ctrl.rebalance()
    placed = {e["trail"] for e in ctrl.placement()["elephants"]}
    assert {children[0].id, children[1].id} <= placed
    # seen again: nothing is split twice
    connections(ctrl, clock, parent, {(40000, 5201): half, (40002, 5201): half})
    again, _ = ctrl.rebalance()
    assert ctrl.s.splits == 2


def test_one_elephant_connection_is_not_split_and_counting_stops_with_the_elephant(
        fat_tree, clock) -> None:
    ctrl, parent, h1, h5 = counted_elephant(fat_tree, clock)
    connections(ctrl, clock, parent, {(40000, 5201): 0.9 * nic(ctrl, parent),
                                      (40002, 5201): 0.02 * nic(ctrl, parent)})
    change, _ = ctrl.rebalance()
    assert not [t for t in ctrl.store.all() if t.connection]
    run_done(change)
    # quiet for longer than an elephant is remembered: counting ends, the rule goes
    feed(ctrl, clock, {parent.id: 0.0}, seconds=int(ELEPHANT_MEMORY) + 1)
    change, _ = ctrl.rebalance()
    assert not ctrl.store.get(parent.id).counted
    gone = [op for step in change.steps for ops in step.values() for op in ops
            if getattr(op, "priority", None) == PRIO_SAMPLE]
    assert len(gone) == 1 and gone[0].strict
    run_done(change)
    net = compile_network(ctrl, fat_tree)
    assert not [f for f in net.switches[parent.ingress.dpid].flows
                if f.priority == PRIO_SAMPLE]


def test_counters_from_another_switch_or_trail_change_nothing(fat_tree, clock) -> None:
    ctrl, parent, h1, h5 = counted_elephant(fat_tree, clock)
    other = parent.hops[1].dpid  # a transit switch cannot speak for the ingress
    big = {(40000, 5201): 0.45 * nic(ctrl, parent), (40002, 5201): 0.45 * nic(ctrl, parent)}
    connections(ctrl, clock, parent, big, dpid=other)
    h2, h6 = fat_tree.host(2), fat_tree.host(6)
    mouse, change = ctrl.ensure_trail(h2.mac, h6.mac)  # not counted: its counters are ignored
    run_done(change)
    connections(ctrl, clock, mouse, big)
    change, _ = ctrl.rebalance()
    assert not [t for t in ctrl.store.all() if t.connection]
    assert ctrl.s.connection_meter.rates() == {}


def test_the_audit_leaves_learned_counters_alone(fat_tree, clock) -> None:
    ctrl, parent, h1, h5 = counted_elephant(fat_tree, clock)
    dpid = parent.ingress.dpid
    expected = compiler.switch_flows(dpid, [], [parent])
    learned = FlowSpec.make(dpid, TABLE_FLOWS, 1, {"eth_type": 0x800, "ip_proto": 6,
                                                   "ipv4_src": h1.ip, "ipv4_dst": h5.ip,
                                                   "tcp_src": 40000, "tcp_dst": 5201},
                            cookie=make_cookie(KIND_FLOW, parent.id))
    result = diff_flows(expected, [*expected, replace(learned, idle_timeout=10)])
    assert not result.adds and not result.deletes and result.learned == 1


def test_split_trails_end_with_their_connection_and_survive_a_restart(fat_tree, clock) -> None:
    ctrl, parent, h1, h5 = counted_elephant(fat_tree, clock)
    half = 0.45 * nic(ctrl, parent)
    connections(ctrl, clock, parent, {(40000, 5201): half, (40002, 5201): half})
    change, _ = ctrl.rebalance()
    run_done(change)
    children = [t for t in ctrl.store.all() if t.connection]
    assert len(children) == 2
    again = ScentController(ctrl.store, clock=clock)  # a restart: the same store
    assert again.recover() == 3  # the pair's trail and its two connections
    assert again.trail_for_pair(h1.mac, h5.mac).id == parent.id
    assert {again.s.by_pair[t.pair] for t in children} == {t.id for t in children}
    # the connection ended: its classifier idles out on the switch and the trail goes
    clock.advance(CONNECTION_LEASE + again.s.lease_slack + 1)
    match = compiler.classifier_flows(children[0])[0].match_dict
    change = again.s.trails.classifier_idle(children[0].id, match)
    assert ctrl.store.get(children[0].id) is None
    run_done(change)
