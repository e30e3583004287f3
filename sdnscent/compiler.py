"""The flow compiler: trails and topology facts to per-switch flow specs.

Pipeline (docs/pipeline.rst): table 0 classifies (control traffic to the
controller, labelled frames only from inter-switch ports, a trail's classifier
pushes its label), table 1 forwards on the label and pops it at the exit.
Changes come as ordered steps; each step is barrier-confirmed before the next.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import replace

from .flows import (
    ETH_TYPE_ARP,
    ETH_TYPE_IPV4,
    ETH_TYPE_IPV6,
    ETH_TYPE_LLDP,
    ETH_TYPE_MPLS,
    ICMPV6_NA,
    ICMPV6_NS,
    IPPROTO_ICMPV6,
    IPPROTO_UDP,
    OFPP_IN_PORT,
    Action,
    Bucket,
    FlowDelete,
    FlowSpec,
    Group,
    GroupDelete,
    GroupSpec,
    LearnConnection,
    MeterDelete,
    MeterSpec,
    Output,
    PopMpls,
    PushMpls,
    Resubmit,
    SetField,
    ToController,
    meter_for,
)
from .hosttraffic import edge_flows
from .pipeline import (
    COOKIE_MASK_ALL,
    KIND_FLOW,
    PIPELINE_COOKIE,
    PRIO_APP,
    PRIO_ARP,
    PRIO_COUNTED,
    PRIO_DHCP,
    PRIO_LINK_PORT,
    PRIO_LLDP,
    PRIO_MISS,
    PRIO_ND,
    PRIO_PUNT,
    PRIO_SAMPLE,
    PRIO_SERVICE,
    PRIO_TRAIL,
    PRIO_UNTRUSTED_LABEL,
    TABLE_CLASSIFY,
    TABLE_FLOWS,
    TABLE_FORWARD,
    make_cookie,
    trail_cookie,
)
from .pipeline import meter_id as trail_meter_id
from .policy import DEFAULT_APP
from .trails import Trail

DHCP_SERVER_PORT, DHCP_CLIENT_PORT = 67, 68  # DHCPv4's UDP ports (RFC 2131)

Op = FlowSpec | FlowDelete | GroupSpec | GroupDelete | MeterSpec | MeterDelete
Step = dict[int, list[Op]]  # dpid -> ops, sent together, then one barrier


def pipeline_flows(dpid: int) -> list[FlowSpec]:
    """The fixed flows every switch gets when it connects."""
    c = PIPELINE_COOKIE
    return [
        FlowSpec.make(dpid, TABLE_CLASSIFY, PRIO_LLDP, {"eth_type": ETH_TYPE_LLDP},
                      [ToController()], cookie=c),
        FlowSpec.make(dpid, TABLE_CLASSIFY, PRIO_ARP, {"eth_type": ETH_TYPE_ARP},
                      [ToController()], cookie=c),
        # Neighbour Discovery, IPv6's ARP: answered or probed by the controller.
        *(FlowSpec.make(dpid, TABLE_CLASSIFY, PRIO_ND,
                        {"eth_type": ETH_TYPE_IPV6, "ip_proto": IPPROTO_ICMPV6,
                         "icmpv6_type": kind}, [ToController()], cookie=c)
          for kind in (ICMPV6_NS, ICMPV6_NA)),
        # DHCPv4 both ways: relayed by the controller (core/dhcp.py), never flooded.
        *(FlowSpec.make(dpid, TABLE_CLASSIFY, PRIO_DHCP,
                        {"eth_type": ETH_TYPE_IPV4, "ip_proto": IPPROTO_UDP, "udp_dst": port},
                        [ToController()], cookie=c)
          for port in (DHCP_SERVER_PORT, DHCP_CLIENT_PORT)),
        # Other broadcast and multicast: dropped here at the edge, counted per kind.
        *edge_flows(dpid),
        # Labelled frames are accepted only on inter-switch ports (link_port_flow).
        FlowSpec.make(dpid, TABLE_CLASSIFY, PRIO_UNTRUSTED_LABEL, {"eth_type": ETH_TYPE_MPLS},
                      cookie=c),
        # The first IPv4 packet of a pair with no trail yet asks for one.
        FlowSpec.make(dpid, TABLE_CLASSIFY, PRIO_PUNT, {"eth_type": ETH_TYPE_IPV4},
                      [ToController()], cookie=c),
        FlowSpec.make(dpid, TABLE_CLASSIFY, PRIO_PUNT, {"eth_type": ETH_TYPE_IPV6},
                      [ToController()], cookie=c),
        FlowSpec.make(dpid, TABLE_CLASSIFY, PRIO_MISS, {}, cookie=c),
        # A label with no entry: the controller looks the hop up (miss path).
        FlowSpec.make(dpid, TABLE_FORWARD, PRIO_MISS, {}, [ToController()], cookie=c),
        # Per-connection counters (learned by an elephant's classifier) or nothing.
        FlowSpec.make(dpid, TABLE_FLOWS, PRIO_MISS, {}, cookie=c),
    ]


def link_port_flow(dpid: int, port: int) -> FlowSpec:
    """Accept labelled frames arriving on inter-switch port `port`."""
    return FlowSpec.make(dpid, TABLE_CLASSIFY, PRIO_LINK_PORT,
                         {"in_port": port, "eth_type": ETH_TYPE_MPLS}, goto=TABLE_FORWARD)


def link_port_delete(dpid: int, port: int) -> FlowDelete:
    """Stop accepting labelled frames on `port` (the link went away)."""
    flow = link_port_flow(dpid, port)
    return FlowDelete(dpid, PIPELINE_COOKIE, COOKIE_MASK_ALL, TABLE_CLASSIFY, flow.match,
                      PRIO_LINK_PORT, strict=True)


def classifier_matches(trail: Trail, in_port: int | None = None) -> list[dict[str, int | str]]:
    """What a switch matches to put a packet on `trail`: one dict per alternative.

    `in_port` defaults to the ingress port; re-entry after a network function
    uses the port the NF's far side hangs off.
    """
    base: dict[str, int | str] = {
        "in_port": trail.ingress.in_port if in_port is None else in_port,
        "eth_type": payload_type(trail),
        "eth_src": trail.src_mac,
        "eth_dst": trail.dst_mac,
    }
    return [{**base, **dict(alt)} for alt in trail.match] or [base]


def payload_type(trail: Trail) -> int:
    """The ethertype under a trail's label: IPv4 or IPv6 (popped with it at the exit)."""
    return ETH_TYPE_IPV6 if trail.family == 6 else ETH_TYPE_IPV4


def classifier_match(trail: Trail) -> dict[str, int | str]:
    """The ingress match of a trail with a single classifier alternative."""
    return classifier_matches(trail)[0]


def classifier_priority(trail: Trail) -> int:
    """Application trails sit above the default per-pair trail."""
    if trail.priority is not None:
        return trail.priority
    return PRIO_TRAIL if trail.app == DEFAULT_APP else PRIO_APP


def output(out_port: int, in_port: int) -> Output:
    """Output to `out_port` of a packet that came in on `in_port`: OFPP_IN_PORT when
    they are the same port (hosts behind one port; OpenFlow drops a plain output)."""
    return Output(OFPP_IN_PORT if out_port == in_port else out_port)


def _rewrites(trail: Trail) -> list[Action]:
    return [SetField(name, value) for name, value in trail.rewrite]


def _push(trail: Trail, dpid: int, match: dict[str, int | str]) -> FlowSpec:
    return FlowSpec.make(dpid, TABLE_CLASSIFY, classifier_priority(trail), match,
                         [PushMpls(), SetField("mpls_label", trail.label)],
                         goto=TABLE_FORWARD, cookie=trail_cookie(trail.id))


def leased(trail: Trail, flow: FlowSpec) -> FlowSpec:
    """An ingress classifier carries the trail's lease as its idle timeout and its meter."""
    if trail.lease:
        flow = replace(flow, idle_timeout=trail.lease, notify_removed=True)
    if trail.rate_cap:
        flow = replace(flow, meter=meter_id(trail))
    return flow


def meter_id(trail: Trail) -> int:
    """The meter of a capped trail at its ingress: the trail id (pipeline.meter_id)."""
    return trail_meter_id(trail.id)


def meter_ops(trail: Trail, modify: bool = False) -> list[MeterSpec]:
    """The meter a rate-capped trail's ingress classifier points at ([] if uncapped)."""
    if not trail.rate_cap or trail.grouped:
        return []
    return [meter_for(trail.ingress.dpid, meter_id(trail), trail.rate_cap, modify)]


def ingress_actions(trail: Trail) -> list[Action]:
    """What the ingress does to a packet it puts on `trail`, ending in an output.

    Push and label, then out of the first hop's port; a trail whose hosts
    share a switch just rewrites and delivers. A select group's bucket
    carries these (a bucket cannot continue in table 1). A labelled trail's
    rewrites happen at the exit, after the pop: Open vSwitch drops an IPv4
    set_field that precedes push_mpls in the same action list.
    """
    hop = trail.ingress
    if len(trail.hops) == 1 and hop.via is None:
        return [*_rewrites(trail), output(hop.out_port, hop.in_port)]
    return [PushMpls(), SetField("mpls_label", trail.label), output(hop.out_port, hop.in_port)]


def classifier_flows(trail: Trail) -> list[FlowSpec]:
    """Table 0 at the ingress: push the trail's label (or deliver locally).

    A grouped trail (a service's pool member) has none: the service's select
    group puts packets on it (service_ops). A counted trail (an elephant) also
    counts its TCP connections one by one (counting_flows).
    """
    hop = trail.ingress
    if trail.grouped:
        return []
    if len(trail.hops) == 1 and hop.via is None:
        return [leased(trail, FlowSpec.make(hop.dpid, TABLE_CLASSIFY, classifier_priority(trail),
                                             m, ingress_actions(trail),
                                             cookie=trail_cookie(trail.id)))
                for m in classifier_matches(trail)]
    pushes = [leased(trail, _push(trail, hop.dpid, m)) for m in classifier_matches(trail)]
    return pushes + counting_flows(trail, pushes)


# Seconds a learned connection counter lives without packets (TABLE_FLOWS).
CONNECTION_IDLE = 10


def can_count(trail: Trail) -> bool:
    """A trail whose TCP connections can be counted and split off one by one: a
    default IPv4 trail over several switches (one classifier, no network function)."""
    return (trail.app == DEFAULT_APP and trail.family == 4 and not trail.match
            and not trail.grouped and trail.priority is None and trail.connection is None
            and len(trail.hops) > 1 and all(h.via is None for h in trail.hops))


def counting_flows(trail: Trail, pushes: list[FlowSpec]) -> list[FlowSpec]:
    """While `trail` is counted: its classifier again for TCP (PRIO_SAMPLE), which
    first has the switch learn a counter for the packet's connection into
    TABLE_FLOWS (cookie kind KIND_FLOW, id = the trail) and runs it."""
    if not (trail.counted and can_count(trail)):
        return []
    count = [LearnConnection(TABLE_FLOWS, PRIO_COUNTED, make_cookie(KIND_FLOW, trail.id),
                             CONNECTION_IDLE), Resubmit(TABLE_FLOWS)]
    return [replace(f, priority=PRIO_SAMPLE, match=tuple(sorted({**f.match_dict,
                                                                  "ip_proto": 6}.items())),
                    actions=(*count, *f.actions))
            for f in pushes]


def service_group(dpid: int, group_id: int,
                  members: Iterable[tuple[Trail, int]], modify: bool = False) -> GroupSpec:
    """The select group of a service at a client's switch: one bucket per
    (pool member's trail, weight), in the order given."""
    buckets = tuple(Bucket(tuple(ingress_actions(t)), w) for t, w in members)
    return GroupSpec(dpid, group_id, "select", buckets, modify=modify)


def service_classifiers(dpid: int, matches: Iterable[dict[str, int | str]], group_id: int,
                        cookie: int) -> list[FlowSpec]:
    """Table 0 at a client's switch: its packets to a service go to the select group."""
    return [FlowSpec.make(dpid, TABLE_CLASSIFY, PRIO_SERVICE, m, [Group(group_id)],
                          cookie=cookie) for m in matches]


def classifier_flow(trail: Trail) -> FlowSpec:
    """The ingress classifier of a trail with a single classifier alternative."""
    return classifier_flows(trail)[0]


def reentry_flows(trail: Trail) -> list[FlowSpec]:
    """Table 0 where traffic comes back from a network function: label it again."""
    flows = []
    for before, hop in zip(trail.hops, trail.hops[1:], strict=False):
        if before.via is not None:
            flows.extend(_push(trail, hop.dpid, m)
                         for m in classifier_matches(trail, in_port=hop.in_port))
    return flows


def label_match(label: int, in_port: int | None = None) -> dict[str, int]:
    """Table 1 match on a trail label (and the arrival port where needed)."""
    match = {"eth_type": ETH_TYPE_MPLS, "mpls_label": label}
    if in_port is not None:
        match["in_port"] = in_port
    return match


def hop_flows(trail: Trail) -> list[FlowSpec]:
    """Table 1 entries of every hop, egress first.

    The exit pops the label and delivers; a hop that hands the packet to a
    network function pops it too (the NF sees plain IPv4). A switch the trail
    visits twice (before and after an NF), or a hop that leaves by the port it
    came in on (output:IN_PORT), matches the arrival port as well.
    """
    if len(trail.hops) == 1 and trail.ingress.via is None:
        return []
    cookie = trail_cookie(trail.id)
    visits = Counter(trail.switches)
    flows = []
    for i, hop in enumerate(trail.hops):
        last = i == len(trail.hops) - 1
        pops = last or hop.via is not None
        out = output(hop.out_port, hop.in_port)
        actions = [PopMpls(payload_type(trail)), *(_rewrites(trail) if last else []), out] \
            if pops else [out]
        exact = visits[hop.dpid] > 1 or out.port == OFPP_IN_PORT
        in_port = hop.in_port if exact else None
        flows.append(FlowSpec.make(hop.dpid, TABLE_FORWARD, PRIO_TRAIL,
                                   label_match(trail.label, in_port), actions, cookie=cookie))
    flows.reverse()
    return flows


def path_flows(trail: Trail) -> list[FlowSpec]:
    """Everything but the ingress classifier: installed first."""
    return hop_flows(trail) + reentry_flows(trail)


def trail_flows(trail: Trail) -> list[FlowSpec]:
    """Every flow of a trail, in install order (classifier last)."""
    return path_flows(trail) + classifier_flows(trail)


def group_ops(ops: Iterable[Op]) -> Step:
    """One step holding `ops`, grouped by switch."""
    step: Step = defaultdict(list)
    for op in ops:
        step[op.dpid].append(op)
    return dict(step)


def install_steps(trail: Trail) -> list[Step]:
    """Install a trail: the label path (and its meter) first, then the ingress classifier."""
    steps = [group_ops([*meter_ops(trail), *path_flows(trail)]),
             group_ops(classifier_flows(trail))]
    return [s for s in steps if s]


def remove_ops(trail: Trail) -> list[Op]:
    """Delete every flow of a trail (by its cookie) on the switches it crosses, and its meter."""
    cookie = trail_cookie(trail.id)
    ops: list[Op] = [FlowDelete(dpid, cookie, COOKIE_MASK_ALL)
                     for dpid in dict.fromkeys(trail.switches)]
    if trail.rate_cap and not trail.grouped:
        ops.append(MeterDelete(trail.ingress.dpid, meter_id(trail)))
    return ops


def delete_exact(flow: FlowSpec) -> FlowDelete:
    """Delete exactly `flow` (strict: same table, priority, match and cookie)."""
    return FlowDelete(flow.dpid, flow.cookie, COOKIE_MASK_ALL, flow.table, flow.match,
                      flow.priority, strict=True)


def reroute_steps(old: Trail, new: Trail) -> list[Step]:
    """Make-before-break: new path, switch the classifier, then drop the old path.

    `new` must carry a different label than `old` so both paths coexist until
    the classifier moves. Old entries that the new trail does not overwrite
    are deleted last.
    """
    if old.label == new.label and len(old.hops) > 1 and len(new.hops) > 1:
        raise ValueError(f"trail {old.id}: reroute needs a new label, got the old {old.label}")
    meters: list[Op] = []  # the meter stays in place; its rate may change
    if new.rate_cap and new.rate_cap != old.rate_cap:
        meters = list(meter_ops(new, modify=bool(old.rate_cap)))
    steps = [s for s in [group_ops([*meters, *path_flows(new)]),
                         group_ops(classifier_flows(new))] if s]
    kept = {f.key for f in trail_flows(new)}
    stale: list[Op] = [delete_exact(f) for f in trail_flows(old) if f.key not in kept]
    if old.rate_cap and not new.rate_cap and not old.grouped:
        stale.append(MeterDelete(old.ingress.dpid, meter_id(old)))
    if stale:
        steps.append(group_ops(stale))
    return steps


def switch_flows(dpid: int, link_ports: Iterable[int], trails: Iterable[Trail]) -> list[FlowSpec]:
    """Everything switch `dpid` should hold: pipeline, link ports, trail entries."""
    flows = pipeline_flows(dpid) + [link_port_flow(dpid, p) for p in sorted(link_ports)]
    for trail in trails:
        flows.extend(f for f in trail_flows(trail) if f.dpid == dpid)
    return flows
