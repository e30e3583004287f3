"""Weighted multipath trails compiled to a select group and label paths, proved on
the forwarding simulator over a k=4 fat-tree: every bucket delivers unlabelled, the
share of flows per path follows the weights, and bad input is refused by name."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from sdnscent import compiler
from sdnscent.flows import TABLE_CLASSIFY, Group, PopMpls, trail_cookie
from sdnscent.mpcompile import (
    MultipathSpecs,
    WeightedPath,
    bucket_weights,
    compile_multipath,
)
from sdnscent.planner import Planner
from sdnscent.simulator import Network, Switch, ipv4_packet, select_distribution
from sdnscent.topology import Topology
from sdnscent.trails import Hop, Trail
from tests.conftest import FatTree, HostSpec, build_fat_tree
from tests.fabric import host_name, sim_hosts, sim_links

FLOWS = 3000
TOLERANCE = 0.035  # about 3 standard deviations of a share measured over FLOWS flows


@pytest.fixture(scope="module")
def tree() -> FatTree:
    return build_fat_tree(4)


@pytest.fixture(scope="module")
def topo(tree: FatTree) -> Topology:
    return tree.topology()


def all_paths(topo: Topology, src: HostSpec, dst: HostSpec) -> list[tuple[Hop, ...]]:
    """Every least-cost path between two hosts as controller hops (Planner's links)."""
    planner = Planner(topo)
    out = []
    for switches in planner.equal_cost_paths(src.dpid, dst.dpid):
        hops, in_port = [], src.port
        for here, there in zip(switches, switches[1:], strict=False):
            link = planner.link_for(here, there)
            hops.append(Hop(here, in_port, link.src_port))
            in_port = link.dst_port
        hops.append(Hop(dst.dpid, in_port, dst.port))
        out.append(tuple(hops))
    return out


def make_trail(src: HostSpec, dst: HostSpec, hops: tuple[Hop, ...], trail_id: int = 7) -> Trail:
    return Trail(trail_id, 100, src.mac, dst.mac, src.ip, dst.ip, hops)


def network(tree: FatTree, topo: Topology, specs: MultipathSpecs) -> Network:
    """The fat-tree with the pipeline, the link ports and the trail's specs loaded."""
    tables: dict[int, list] = {d: compiler.pipeline_flows(d) for d in tree.switches}
    for link in topo.links():
        tables[link.dst].append(compiler.link_port_flow(link.dst, link.dst_port))
    for spec in specs.specs():
        tables[spec.dpid].append(spec)
    return Network({d: Switch(d, s) for d, s in tables.items()}, sim_links(tree),
                   sim_hosts(tree))


def send_flows(net: Network, src: HostSpec, dst: HostSpec, paths: list[tuple[Hop, ...]],
               flows: int = FLOWS) -> Counter[int]:
    """Send one packet of each of `flows` distinct 5-tuples; count the path each took.

    Asserts that every packet reaches `dst` once, without a label, along one of `paths`.
    """
    routes = {tuple(h.dpid for h in p): n for n, p in enumerate(paths)}
    taken: Counter[int] = Counter()
    for f in range(flows):
        packet = ipv4_packet(src.ip, dst.ip, eth_src=src.mac, eth_dst=dst.mac,
                             src_port=10_000 + f, dst_port=5001 + f % 7)
        trace = net.send(host_name(src), packet)
        assert not trace.errors and not trace.drops and not trace.packet_ins, trace.format()
        (delivery,) = trace.deliveries
        assert delivery.host == host_name(dst)
        assert delivery.packet.mpls == () and delivery.packet.is_ipv4
        assert delivery.packet.tcp_src == 10_000 + f  # the payload is untouched
        taken[routes[tuple(h.dpid for h in trace.hops)]] += 1
    return taken


@pytest.mark.parametrize("pair, weights", [
    ((1, 3), (0.7, 0.3)),  # same pod: two paths over the aggregation switches
    ((1, 16), (0.4, 0.3, 0.2, 0.1)),  # across pods: four paths over the cores
])
def test_flows_split_by_weight_and_arrive_unlabelled(tree, topo, pair, weights):
    src, dst = tree.host(pair[0]), tree.host(pair[1])
    paths = all_paths(topo, src, dst)
    assert len(paths) == len(weights)
    labels = [200 + n for n in range(len(paths))]
    specs = compile_multipath(make_trail(src, dst, paths[0]),
                              [WeightedPath(p, w, lb) for p, w, lb in
                               zip(paths, weights, labels, strict=True)],
                              group_id=5, topo=topo)
    assert specs.bucket_weights == tuple(round(w * 100) for w in weights)
    taken = send_flows(network(tree, topo, specs), src, dst, paths)
    assert set(taken) == set(range(len(paths)))  # every bucket's packets arrive
    for n, weight in enumerate(weights):
        assert taken[n] / FLOWS == pytest.approx(weight, abs=TOLERANCE), (n, taken)
    assert [s.fraction for s in select_distribution(specs.group)] == pytest.approx(weights)


def test_specs_select_before_the_push_and_carry_the_trail_cookie(tree, topo):
    src, dst = tree.host(1), tree.host(16)
    paths = all_paths(topo, src, dst)
    trail = make_trail(src, dst, paths[0], trail_id=42)
    specs = compile_multipath(trail, [WeightedPath(p, 0.25, 300 + n)
                                      for n, p in enumerate(paths)], group_id=9)
    (classifier,) = specs.classifiers
    assert classifier.dpid == src.dpid and classifier.table == TABLE_CLASSIFY
    assert classifier.match_dict == compiler.classifier_match(trail)
    assert classifier.actions == (Group(9),) and classifier.goto is None
    assert specs.group.kind == "select" and specs.group.dpid == src.dpid
    for n, bucket in enumerate(specs.group.buckets):
        assert bucket.actions == tuple(compiler.ingress_actions(
            trail.evolve(hops=paths[n], label=300 + n)))
    cookie = trail_cookie(42)
    assert all(f.cookie == cookie for f in (*specs.classifiers, *specs.path_flows))
    # one table-1 entry per hop after the ingress; the exit pops
    assert len(specs.path_flows) == sum(len(p) - 1 for p in paths)
    pops = [f for f in specs.path_flows if f.dpid == dst.dpid]
    assert len(pops) == 4 and all(isinstance(f.actions[0], PopMpls) for f in pops)
    steps = specs.install_steps()
    assert Counter(op for ops in steps[0].values() for op in ops) == Counter(specs.path_flows)
    assert steps[1] == {src.dpid: [specs.group, classifier]}


def test_application_classifier_and_lease_reach_the_group(tree, topo):
    src, dst = tree.host(1), tree.host(3)
    paths = all_paths(topo, src, dst)
    trail = make_trail(src, dst, paths[0]).evolve(
        app="web", match=((("ip_proto", 6), ("tcp_dst", 443)),
                          (("ip_proto", 6), ("tcp_src", 443))), lease=30)
    specs = compile_multipath(trail, [WeightedPath(p, 0.5, 500 + n)
                                      for n, p in enumerate(paths)], group_id=1)
    assert [f.match_dict for f in specs.classifiers] == compiler.classifier_matches(trail)
    assert all(f.priority == compiler.classifier_priority(trail) for f in specs.classifiers)
    assert all(f.idle_timeout == 30 and f.notify_removed for f in specs.classifiers)


def test_bucket_weights_largest_remainder():
    assert bucket_weights([1 / 3] * 3) == (34, 33, 33)
    assert bucket_weights([0.125, 0.875], 10) == (1, 9)
    assert bucket_weights([0.004, 0.996]) == (0, 100)
    assert sum(bucket_weights([0.123, 0.456, 0.421], 1000)) == 1000


@pytest.mark.parametrize("change, words", [
    (lambda p: [replace(p[0], weight=0.6), p[1]], "path weights sum to 1.1, not 1"),
    (lambda p: [replace(p[0], weight=-0.5), p[1]], "path 0: weight -0.5 must be a number >= 0"),
    (lambda p: [p[0], replace(p[1], label=p[0].label)], "path 1: duplicate label 200"),
    (lambda p: [p[0], replace(p[1], label=7)], "path 1: label 7 outside 16..1048575"),
    (lambda p: [p[0], replace(p[1], hops=p[1].hops[1:])],
     "path 1: starts at switch 0000000000000006 port 1, not at the source's switch "
     "0000000000000007 port 1"),
    (lambda p: [p[0], replace(p[1], hops=p[1].hops[:-1])], "path 1: ends at switch"),
    (lambda p: [p[0], replace(p[1], hops=p[1].hops[:1])], "path 1: 1 hop(s)"),
    (lambda p: [], "no paths"),
])
def test_bad_input_is_refused_naming_the_problem(tree, topo, change, words):
    src, dst = tree.host(1), tree.host(3)
    paths = all_paths(topo, src, dst)
    good = [WeightedPath(p, 0.5, 200 + n) for n, p in enumerate(paths)]
    with pytest.raises(ValueError) as exc:
        compile_multipath(make_trail(src, dst, paths[0]), change(good), group_id=1, topo=topo)
    assert words in str(exc.value) and "trail 7" in str(exc.value)


def test_hops_must_follow_links_when_a_topology_is_given(tree, topo):
    src, dst = tree.host(1), tree.host(3)
    paths = all_paths(topo, src, dst)
    first, *rest = paths[1]
    broken = (Hop(first.dpid, first.in_port, paths[0][0].out_port), *rest)
    with pytest.raises(ValueError, match="path 1: hop 0 leaves .* which is not linked"):
        compile_multipath(make_trail(src, dst, paths[0]),
                          [WeightedPath(paths[0], 0.5, 20), WeightedPath(broken, 0.5, 21)],
                          group_id=1, topo=topo)
