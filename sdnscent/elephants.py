"""Elephant flows and their natural demand (Hedera's estimation).

A trail is an elephant when its measured rate reaches a share (10 %) of its
source host's NIC. What an elastic flow *would* take if the fabric were not in
its way cannot be read off a counter: TCP fills whatever path it is given. As
Hedera does, the natural demand is the max-min fair share of every elephant
over the host NICs alone: each source splits its NIC among its flows, each
destination caps what it can receive, repeated until nothing changes.
Everything here is pure and works in bit/s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

ELEPHANT_SHARE = 0.1  # of the source NIC's rate: Hedera's threshold
MAX_ROUNDS = 64  # estimation rounds; it converges in far fewer on real patterns
EPSILON = 1e-6  # bit/s: smaller changes end the estimation


@dataclass(frozen=True)
class FlowRate:
    """A trail as the estimator sees it: its end hosts and measured rate."""

    trail_id: int
    src: str  # source host (its MAC)
    dst: str  # destination host (its MAC)
    rate_bps: float


def elephants(flows: Iterable[FlowRate], nic: Mapping[str, float],
              share: float = ELEPHANT_SHARE) -> list[FlowRate]:
    """The flows whose rate reaches `share` of their source's NIC rate, by trail id.

    A host without a known NIC rate has no elephants (nothing to compare with).
    """
    if not 0 < share <= 1:
        raise ValueError(f"elephant share {share!r} must be in (0, 1]")
    return sorted((f for f in flows if nic.get(f.src, 0.0) > 0
                   and f.rate_bps >= share * nic[f.src]), key=lambda f: f.trail_id)


def natural_demands(flows: Sequence[FlowRate], nic: Mapping[str, float]) -> dict[int, float]:
    """Each flow's natural demand in bit/s: max-min fair over the NICs alone.

    `nic` maps every source and destination host to its NIC rate. Sources
    share their rate equally among their flows not yet limited elsewhere;
    a destination receiving more than its rate caps the largest senders to an
    equal share (receiver-limited flows are then fixed). Raises ValueError for
    a host without a positive NIC rate.
    """
    for f in flows:
        for host in (f.src, f.dst):
            if nic.get(host, 0.0) <= 0:
                raise ValueError(f"no NIC rate for host {host} (trail {f.trail_id})")
    by_src: dict[str, list[int]] = defaultdict(list)
    by_dst: dict[str, list[int]] = defaultdict(list)
    for f in flows:
        by_src[f.src].append(f.trail_id)
        by_dst[f.dst].append(f.trail_id)
    demand = {f.trail_id: 0.0 for f in flows}
    limited: set[int] = set()  # receiver-limited: their demand is fixed
    for _ in range(MAX_ROUNDS):
        changed = False
        for src, ids in by_src.items():
            fixed = sum(demand[i] for i in ids if i in limited)
            free = [i for i in ids if i not in limited]
            if not free:
                continue
            each = max(0.0, nic[src] - fixed) / len(free)
            for i in free:
                if abs(demand[i] - each) > EPSILON:
                    demand[i], changed = each, True
        for dst, ids in by_dst.items():
            if sum(demand[i] for i in ids) <= nic[dst] + EPSILON:
                continue
            capped, left = set(ids), nic[dst]
            each = left / len(capped)
            while True:  # flows below the equal share keep what they ask for
                small = {i for i in capped if demand[i] < each - EPSILON}
                if not small:
                    break
                left -= sum(demand[i] for i in small)
                capped -= small
                each = left / len(capped)
            for i in capped:
                if abs(demand[i] - each) > EPSILON:
                    demand[i], changed = each, True
                limited.add(i)
        if not changed:
            break
    return demand
