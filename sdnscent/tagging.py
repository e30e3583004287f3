"""Trusted tagger ports: table-0 flows for host ports whose host stamps trail labels
itself (sdnscent-vni, docs/vni.rst).

On such a port a labelled frame is accepted only if its label belongs to a
trail that starts there (anti-spoofing); any other label is dropped and
counted. Pure functions returning FlowSpecs, as the compiler's; the
controller calls them (docs/vni.rst, "Controller wiring").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from . import compiler
from .flows import ETH_TYPE_MPLS, FlowDelete, FlowSpec, MeterDelete
from .pipeline import (
    COOKIE_MASK_ALL,
    KIND_TAGGER,
    PRIO_TAGGED,
    PRIO_TAGGER_DROP,
    TABLE_CLASSIFY,
    TABLE_FORWARD,
    make_cookie,
    trail_cookie,
)
from .trails import DEAD_STATES, Trail

# PRIO_TAGGED and PRIO_TAGGER_DROP sit above the untrusted-label drop, below
# inter-switch ports: a host port is never an inter-switch port, so the two
# never meet on one in_port.


def no_label_path(trail: Trail) -> str | None:
    """Why a host cannot put `trail`'s label on a packet itself (None: it can).

    The same rule decides what the host's tagger writes into its map
    (sdnscent.vni.entries) and what its edge switch accepts.
    """
    if trail.grouped:
        return "a service pool member or multipath leg (the switch's select group picks it)"
    if trail.rewrite:
        return "rewrites headers"
    if len(trail.hops) == 1 and trail.ingress.via is None:
        return "a one-switch trail has no label path"
    return None


def starts_on(trail: Trail, dpid: int, port: int) -> bool:
    """True if `trail` enters the network at switch `dpid`, port `port`."""
    return trail.ingress.dpid == dpid and trail.ingress.in_port == port


def tagger_cookie(port: int) -> int:
    """Cookie of a tagger port's counted drop: kind KIND_TAGGER, id = the port."""
    return make_cookie(KIND_TAGGER, port)


def accept_flow(trail: Trail) -> FlowSpec:
    """Table 0 at the trail's ingress: its label, arriving from its host, goes on
    to table 1 (where the trail's own entry forwards it).

    It carries the trail's cookie, so its counters add to the trail's (and
    renew its lease), and the trail's meter, so a host cannot tag its way
    past a rate cap.
    """
    hop = trail.ingress
    flow = FlowSpec.make(hop.dpid, TABLE_CLASSIFY, PRIO_TAGGED,
                         {"in_port": hop.in_port, "eth_type": ETH_TYPE_MPLS,
                          "mpls_label": trail.label},
                         goto=TABLE_FORWARD, cookie=trail_cookie(trail.id))
    if trail.rate_cap:
        flow = replace(flow, meter=compiler.meter_id(trail))
    return flow


def accept_flows(trail: Trail) -> list[FlowSpec]:
    """[accept_flow(trail)] if the host can tag `trail`, else []."""
    return [] if no_label_path(trail) or trail.state in DEAD_STATES else [accept_flow(trail)]


def drop_flow(dpid: int, port: int) -> FlowSpec:
    """Table 0: labelled frames from tagger port `port` that no accept flow took:
    dropped, counted in this flow's own counters (cookie tagger_cookie(port))."""
    return FlowSpec.make(dpid, TABLE_CLASSIFY, PRIO_TAGGER_DROP,
                         {"in_port": port, "eth_type": ETH_TYPE_MPLS}, cookie=tagger_cookie(port))


def trusted_port_flows(dpid: int, port: int, trails: Iterable[Trail]) -> list[FlowSpec]:
    """Everything switch `dpid` holds for tagger port `port`: the counted drop and
    one accept flow per live trail that starts on that port (others are ignored)."""
    flows = [drop_flow(dpid, port)]
    for trail in trails:
        if starts_on(trail, dpid, port):
            flows.extend(accept_flows(trail))
    return flows


def untrust_ops(dpid: int, port: int) -> list[FlowDelete]:
    """Forget tagger port `port`: delete its drop and every accept flow on it.

    Its labelled frames then fall to the pipeline's untrusted-label drop.
    """
    return [FlowDelete(dpid, 0, 0, TABLE_CLASSIFY, (("eth_type", ETH_TYPE_MPLS),
                                                    ("in_port", port)))]


def install_steps(trail: Trail) -> list[compiler.Step]:
    """compiler.install_steps with the accept flow in the first (path) step.

    For a trail that starts on a tagger port. The host tags only once the
    trail is ACTIVE, i.e. after these steps.
    """
    steps = compiler.install_steps(trail)
    extra = accept_flows(trail)
    if extra and steps:
        steps[0] = {**steps[0], trail.ingress.dpid: [*steps[0].get(trail.ingress.dpid, []),
                                                     *extra]}
    elif extra:
        steps = [compiler.group_ops(extra)]
    return steps


def reroute_steps(old: Trail, new: Trail) -> list[compiler.Step]:
    """compiler.reroute_steps for a trail that starts on a tagger port.

    The new label's accept flow comes with the new path (first step); the old
    label's goes with the old path's entries (the last, drained step). The
    host stops using the old label as soon as it sees the trail REROUTING
    (its packets then take the switch's classifier, which moves
    make-before-break) and uses the new label once it is ACTIVE.
    """
    steps = compiler.reroute_steps(old, new)
    add = accept_flows(new)
    old_accept = accept_flows(old)
    stale = [compiler.delete_exact(f) for f in old_accept
             if f.key not in {g.key for g in add}]
    if add:
        dpid = new.ingress.dpid
        steps[0] = {**steps[0], dpid: [*steps[0].get(dpid, []), *add]}
    if stale:
        last = steps[-1] if len(steps) > 1 and _only_deletes(steps[-1]) else None
        if last is not None:  # reroute_steps' stale step: the one drained
            dpid = old.ingress.dpid
            steps[-1] = {**last, dpid: [*last.get(dpid, []), *stale]}
        else:
            steps.append(compiler.group_ops(stale))
    return steps


def _only_deletes(step: compiler.Step) -> bool:
    return all(isinstance(op, FlowDelete | MeterDelete) for ops in step.values() for op in ops)


def delete_accept(trail: Trail) -> FlowDelete:
    """Delete exactly the accept flow of `trail` (remove_ops' cookie delete already
    covers it when the whole trail goes)."""
    flow = accept_flow(trail)
    return FlowDelete(flow.dpid, flow.cookie, COOKIE_MASK_ALL, flow.table, flow.match,
                      flow.priority, strict=True)
