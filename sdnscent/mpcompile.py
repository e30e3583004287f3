"""Compile a weighted multipath trail into OpenFlow specs: a select group at the
ingress whose buckets push each path's label, the classifier into the group, and
each path's label flows (pop at the exit), reusing the single-path compiler.

The group selects before the label is pushed: Open vSwitch's select hash cannot
see past an MPLS label, so only an unlabelled packet splits by its 5-tuple.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .compiler import (
    Step,
    classifier_matches,
    classifier_priority,
    group_ops,
    hop_flows,
    ingress_actions,
    leased,
)
from .flows import Bucket, FlowSpec, Group, GroupSpec
from .pipeline import MAX_LABEL, MIN_LABEL, MULTIPATH_GROUP_MAX, TABLE_CLASSIFY, trail_cookie
from .topology import Topology, dpid_str
from .trails import Hop, Trail

BUCKET_TOTAL = 100  # bucket weights of a group sum to this (OpenFlow weights are 16-bit)
WEIGHT_TOLERANCE = 1e-6  # how far from 1 the path weights may sum


@dataclass(frozen=True)
class WeightedPath:
    """One path of a multipath trail: its hops (ingress first), share and MPLS label."""

    hops: tuple[Hop, ...]
    weight: float
    label: int


@dataclass(frozen=True)
class MultipathSpecs:
    """What a multipath trail installs: the ingress select group, the table-0
    classifiers into it and the table-1 label flows of every path."""

    group: GroupSpec
    classifiers: tuple[FlowSpec, ...]
    path_flows: tuple[FlowSpec, ...]

    @property
    def bucket_weights(self) -> tuple[int, ...]:
        """The integer weight of each path's bucket, in path order."""
        return tuple(b.weight for b in self.group.buckets)

    def specs(self) -> list[FlowSpec | GroupSpec]:
        """Every flow and the group, in install order."""
        return [*self.path_flows, self.group, *self.classifiers]

    def install_steps(self) -> list[Step]:
        """Label paths first, then the group and its classifiers at the ingress (one
        barrier each): no packet enters a bucket whose path is not there yet."""
        return [group_ops(self.path_flows), group_ops([self.group, *self.classifiers])]


def bucket_weights(weights: Sequence[float], total: int = BUCKET_TOTAL) -> tuple[int, ...]:
    """Integer weights summing to `total`, by largest remainder (ties: the earlier path).

    >>> bucket_weights([0.5, 0.25, 0.25])
    (50, 25, 25)
    >>> bucket_weights([1 / 3] * 3)
    (34, 33, 33)
    """
    scaled = [w * total for w in weights]
    floors = [math.floor(x) for x in scaled]
    left = total - sum(floors)
    order = sorted(range(len(scaled)), key=lambda i: (-(scaled[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return tuple(floors)


def _check(trail: Trail, paths: Sequence[WeightedPath], group_id: int, total: int,
           topo: Topology | None) -> None:
    """Raise ValueError naming the first problem of the input."""
    where = f"trail {trail.id}"
    if not trail.hops:
        raise ValueError(f"{where}: no hops: the trail's ingress and egress name the endpoints")
    if not paths:
        raise ValueError(f"{where}: no paths")
    if not 0 <= group_id <= MULTIPATH_GROUP_MAX:
        raise ValueError(f"{where}: group_id {group_id} outside 0..{MULTIPATH_GROUP_MAX:#x}")
    if not len(paths) <= total <= 0xFFFF:
        raise ValueError(f"{where}: bucket total {total} must lie in {len(paths)}..65535")
    src = (trail.ingress.dpid, trail.ingress.in_port)
    dst = (trail.egress.dpid, trail.egress.out_port)
    labels: dict[int, int] = {}
    for n, path in enumerate(paths):
        at = f"{where}: path {n}"
        if isinstance(path.weight, bool) or not isinstance(path.weight, (int, float)) \
                or not math.isfinite(path.weight) or path.weight < 0:
            raise ValueError(f"{at}: weight {path.weight!r} must be a number >= 0")
        if isinstance(path.label, bool) or not isinstance(path.label, int) \
                or not MIN_LABEL <= path.label <= MAX_LABEL:
            raise ValueError(f"{at}: label {path.label!r} outside {MIN_LABEL}..{MAX_LABEL}")
        if path.label in labels:
            raise ValueError(f"{at}: duplicate label {path.label} (also path {labels[path.label]})")
        labels[path.label] = n
        if len(path.hops) < 2:
            raise ValueError(f"{at}: {len(path.hops)} hop(s); a multipath trail crosses at "
                             "least two switches")
        first, last = path.hops[0], path.hops[-1]
        if (first.dpid, first.in_port) != src:
            raise ValueError(f"{at}: starts at switch {dpid_str(first.dpid)} port "
                             f"{first.in_port}, not at the source's switch "
                             f"{dpid_str(src[0])} port {src[1]}")
        if (last.dpid, last.out_port) != dst:
            raise ValueError(f"{at}: ends at switch {dpid_str(last.dpid)} port "
                             f"{last.out_port}, not at the destination's switch "
                             f"{dpid_str(dst[0])} port {dst[1]}")
        for i, hop in enumerate(path.hops):
            if hop.via is not None:
                raise ValueError(f"{at}: hop {i} crosses network function {hop.via}; "
                                 "multipath trails do not carry NF chains")
        if topo is not None:
            for i, (here, there) in enumerate(zip(path.hops, path.hops[1:], strict=False)):
                link = topo.link_from(here.dpid, here.out_port)
                if link is None or (link.dst, link.dst_port) != (there.dpid, there.in_port):
                    raise ValueError(f"{at}: hop {i} leaves {dpid_str(here.dpid)} port "
                                     f"{here.out_port}, which is not linked to "
                                     f"{dpid_str(there.dpid)} port {there.in_port}")
    weight_sum = math.fsum(p.weight for p in paths)
    if abs(weight_sum - 1.0) > WEIGHT_TOLERANCE:
        raise ValueError(f"{where}: path weights sum to {weight_sum:.9g}, not 1")


def compile_multipath(trail: Trail, paths: Sequence[WeightedPath], group_id: int, *,
                      total: int = BUCKET_TOTAL, topo: Topology | None = None
                      ) -> MultipathSpecs:
    """The OpenFlow specs of `trail` split over `paths`.

    `trail` gives the identity (id for the cookies, MACs, classifier alternatives
    `match`, priority, lease, exit rewrites) and the endpoints: every path must
    start at its ingress (dpid, in_port) and end at its egress (dpid, out_port);
    its own hops and label are not installed. Labels and `group_id` are allocated
    by the caller. With `topo`, each hop must follow a link. Bucket weights are
    the path weights rounded to integers summing to `total` (largest remainder;
    a very small weight may round to 0 and its path then carries nothing).

    Raises ValueError naming the trail, the path and the problem.
    """
    _check(trail, paths, group_id, total, topo)
    ingress = trail.ingress
    cookie = trail_cookie(trail.id)
    weights = bucket_weights([p.weight for p in paths], total)
    buckets = []
    path_flows: list[FlowSpec] = []
    for path, weight in zip(paths, weights, strict=True):
        leg = replace(trail, hops=path.hops, label=path.label)
        buckets.append(Bucket(tuple(ingress_actions(leg)), weight))  # push, label, output
        # table 1: forward on the label, pop at the exit; the ingress's own entry (last,
        # hop_flows lists the exit first) is left out: the bucket outputs directly
        path_flows.extend(hop_flows(leg)[:-1])
    group = GroupSpec(ingress.dpid, group_id, "select", tuple(buckets))
    classifiers = tuple(
        leased(trail, FlowSpec.make(ingress.dpid, TABLE_CLASSIFY, classifier_priority(trail),
                                     match, [Group(group_id)], cookie=cookie))
        for match in classifier_matches(trail))
    return MultipathSpecs(group, classifiers, tuple(path_flows))
