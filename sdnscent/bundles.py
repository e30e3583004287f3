"""Multipath trails as stored: one grouped trail record per leg.

A multipath trail splits an application's traffic between two hosts over
link-disjoint paths ("legs"). Each leg is an ordinary trail record (its own
label and hops, `grouped`: no classifier of its own), marked with the id of
the first leg (the head) and its weight. The head carries the lease, the
counters and the rate cap; its cookie marks the ingress classifier, which
sends packets to a select group with one bucket per leg (sdnscent.mpcompile).
Everything installed is derived from the records, so a restarted or standby
controller rebuilds it from the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from . import compiler
from .flows import GroupSpec, MeterSpec, meter_for
from .mpcompile import MultipathSpecs, WeightedPath, compile_multipath
from .pipeline import MULTIPATH_GROUP_BASE, multipath_group_id
from .splits import LinkKey, normalised
from .trails import Hop, Trail

HEAD = "multipath"  # Trail.extra key: the head leg's id (str)
WEIGHT = "weight"  # Trail.extra key: the leg's share of the traffic (str, 0..1)
GROUP_BASE = MULTIPATH_GROUP_BASE  # old name (select group ids: base + head id)
REWEIGHT_MIN = 0.05  # a new split is installed only if some weight moves this much
REWEIGHT_HOLD = 3  # stats periods a new split stays before the next (the loads settle)


def head_of(trail: Trail) -> int | None:
    """The head leg's id if `trail` is a leg of a multipath trail, else None."""
    value = trail.extra.get(HEAD)
    return int(value) if value is not None and value.isdigit() else None


def weight_of(trail: Trail) -> float:
    """A leg's stored weight (0 if missing or unreadable)."""
    try:
        return max(0.0, float(trail.extra.get(WEIGHT, "0")))
    except ValueError:
        return 0.0


def leg_extra(trail_extra: dict[str, str], head: int, weight: float) -> dict[str, str]:
    """`trail_extra` with the leg marks set."""
    return {**trail_extra, HEAD: str(head), WEIGHT: f"{weight:.6f}"}


def group_id(head: int) -> int:
    """The select group of the multipath trail whose head is `head` (fixed by the id, so
    every controller of a shared store names it alike)."""
    return multipath_group_id(head)


def leg_links(hops: Sequence[Hop]) -> list[LinkKey]:
    """The inter-switch links (dpid, out port) a leg leaves by."""
    return [(h.dpid, h.out_port) for h in hops[:-1]]


def own_load(legs: Sequence[Trail], rate: float) -> dict[LinkKey, float]:
    """bit/s the trail puts on each of its legs' links: `rate` times the leg's stored weight."""
    return {k: rate * weight_of(leg) for leg in legs for k in leg_links(leg.hops)}


def specs(legs: Sequence[Trail]) -> MultipathSpecs:
    """Group and classifiers of a multipath trail from its legs (head first)."""
    head = legs[0]
    weights = normalised([weight_of(leg) for leg in legs])
    paths = [WeightedPath(leg.hops, w, leg.label) for leg, w in zip(legs, weights, strict=True)]
    return compile_multipath(head, paths, group_id(head.id))


def group_modify(legs: Sequence[Trail]) -> GroupSpec:
    """The group as it should be now, as a modify of the installed one."""
    return replace(specs(legs).group, modify=True)


def meter_ops(head: Trail, modify: bool = False) -> list[MeterSpec]:
    """The meter a capped multipath trail's classifier points at ([] if uncapped)."""
    if not head.rate_cap:
        return []
    return [meter_for(head.ingress.dpid, compiler.meter_id(head), head.rate_cap, modify)]


def ingress_ops(legs: Sequence[Trail]) -> list[compiler.Op]:
    """What the ingress switch needs besides the legs' label flows: meter, group, classifiers."""
    built = specs(legs)
    return [*meter_ops(legs[0]), *meter_ops(legs[0], modify=True), built.group,
            *built.classifiers]
