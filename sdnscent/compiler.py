"""The flow compiler: trails and topology facts to per-switch flow specs.

Pipeline (docs/pipeline.rst): table 0 classifies (control traffic to the
controller, labelled frames only from inter-switch ports, a trail's classifier
pushes its label), table 1 forwards on the label and pops it at the exit.
Changes come as ordered steps; each step is barrier-confirmed before the next.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from .flows import (
    COOKIE_MASK_ALL,
    ETH_TYPE_ARP,
    ETH_TYPE_IPV4,
    ETH_TYPE_LLDP,
    ETH_TYPE_MPLS,
    PIPELINE_COOKIE,
    TABLE_CLASSIFY,
    TABLE_FORWARD,
    FlowDelete,
    FlowSpec,
    GroupSpec,
    Output,
    PopMpls,
    PushMpls,
    SetField,
    ToController,
    trail_cookie,
)
from .trails import Trail

PRIO_LLDP = 1000
PRIO_ARP = 900
PRIO_LINK_PORT = 500
PRIO_UNTRUSTED_LABEL = 400
PRIO_TRAIL = 100
PRIO_PUNT = 10
PRIO_MISS = 0

Op = FlowSpec | FlowDelete | GroupSpec
Step = dict[int, list[Op]]  # dpid -> ops, sent together, then one barrier


def pipeline_flows(dpid: int) -> list[FlowSpec]:
    """The fixed flows every switch gets when it connects."""
    c = PIPELINE_COOKIE
    return [
        FlowSpec.make(dpid, TABLE_CLASSIFY, PRIO_LLDP, {"eth_type": ETH_TYPE_LLDP},
                      [ToController()], cookie=c),
        FlowSpec.make(dpid, TABLE_CLASSIFY, PRIO_ARP, {"eth_type": ETH_TYPE_ARP},
                      [ToController()], cookie=c),
        # Labelled frames are accepted only on inter-switch ports (link_port_flow).
        FlowSpec.make(dpid, TABLE_CLASSIFY, PRIO_UNTRUSTED_LABEL, {"eth_type": ETH_TYPE_MPLS},
                      cookie=c),
        # The first IPv4 packet of a pair with no trail yet asks for one.
        FlowSpec.make(dpid, TABLE_CLASSIFY, PRIO_PUNT, {"eth_type": ETH_TYPE_IPV4},
                      [ToController()], cookie=c),
        FlowSpec.make(dpid, TABLE_CLASSIFY, PRIO_MISS, {}, cookie=c),
        # A label with no entry: the controller looks the hop up (miss path).
        FlowSpec.make(dpid, TABLE_FORWARD, PRIO_MISS, {}, [ToController()], cookie=c),
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


def classifier_match(trail: Trail) -> dict[str, int | str]:
    """What the ingress switch matches to put a packet on `trail`."""
    return {
        "in_port": trail.ingress.in_port,
        "eth_type": ETH_TYPE_IPV4,
        "eth_src": trail.src_mac,
        "eth_dst": trail.dst_mac,
    }


def classifier_flow(trail: Trail) -> FlowSpec:
    """Table 0 at the ingress: push the trail's label (or deliver locally)."""
    cookie = trail_cookie(trail.id)
    hop = trail.ingress
    if len(trail.hops) == 1:
        actions = [Output(hop.out_port)]
        return FlowSpec.make(hop.dpid, TABLE_CLASSIFY, PRIO_TRAIL, classifier_match(trail),
                             actions, cookie=cookie)
    actions = [PushMpls(), SetField("mpls_label", trail.label)]
    return FlowSpec.make(hop.dpid, TABLE_CLASSIFY, PRIO_TRAIL, classifier_match(trail),
                         actions, goto=TABLE_FORWARD, cookie=cookie)


def label_match(label: int) -> dict[str, int]:
    """Table 1 match on a trail label."""
    return {"eth_type": ETH_TYPE_MPLS, "mpls_label": label}


def hop_flows(trail: Trail) -> list[FlowSpec]:
    """Table 1 entries of every hop, egress first (pop and deliver there)."""
    if len(trail.hops) == 1:
        return []
    cookie = trail_cookie(trail.id)
    flows = []
    for i, hop in enumerate(trail.hops):
        last = i == len(trail.hops) - 1
        actions = [PopMpls(ETH_TYPE_IPV4), Output(hop.out_port)] if last else [Output(hop.out_port)]
        flows.append(FlowSpec.make(hop.dpid, TABLE_FORWARD, PRIO_TRAIL, label_match(trail.label),
                                   actions, cookie=cookie))
    flows.reverse()
    return flows


def trail_flows(trail: Trail) -> list[FlowSpec]:
    """Every flow of a trail, in install order (classifier last)."""
    return hop_flows(trail) + [classifier_flow(trail)]


def _group(ops: Iterable[Op]) -> Step:
    step: Step = defaultdict(list)
    for op in ops:
        step[op.dpid].append(op)
    return dict(step)


def install_steps(trail: Trail) -> list[Step]:
    """Install a trail: the label path first, then the ingress classifier."""
    steps = [_group(hop_flows(trail)), _group([classifier_flow(trail)])]
    return [s for s in steps if s]


def remove_ops(trail: Trail) -> list[FlowDelete]:
    """Delete every flow of a trail (by its cookie) on the switches it crosses."""
    cookie = trail_cookie(trail.id)
    return [FlowDelete(dpid, cookie, COOKIE_MASK_ALL) for dpid in dict.fromkeys(trail.switches)]


def reroute_steps(old: Trail, new: Trail) -> list[Step]:
    """Make-before-break: new path, switch the classifier, then drop the old path.

    `new` must carry a different label than `old` so both paths coexist until
    the classifier moves.
    """
    if old.label == new.label and len(old.hops) > 1 and len(new.hops) > 1:
        raise ValueError(f"trail {old.id}: reroute needs a new label, got the old {old.label}")
    cookie = trail_cookie(old.id)
    steps = install_steps(new)
    old_path = [
        FlowDelete(hop.dpid, cookie, COOKIE_MASK_ALL, TABLE_FORWARD, tuple(sorted(
            label_match(old.label).items())), PRIO_TRAIL, strict=True)
        for hop in old.hops
    ] if len(old.hops) > 1 else []
    if classifier_match(old) != classifier_match(new):
        flow = classifier_flow(old)
        old_path.append(FlowDelete(flow.dpid, cookie, COOKIE_MASK_ALL, TABLE_CLASSIFY,
                                   flow.match, PRIO_TRAIL, strict=True))
    if old_path:
        steps.append(_group(old_path))
    return steps


def switch_flows(dpid: int, link_ports: Iterable[int], trails: Iterable[Trail]) -> list[FlowSpec]:
    """Everything switch `dpid` should hold: pipeline, link ports, trail entries."""
    flows = pipeline_flows(dpid) + [link_port_flow(dpid, p) for p in sorted(link_ports)]
    for trail in trails:
        flows.extend(f for f in trail_flows(trail) if f.dpid == dpid)
    return flows
