"""Split weights of a multipath trail over its legs (link-disjoint paths).

Given each leg's links, their capacities, the load already on them and the
trail's demand, the weights minimise the highest utilisation of any of the
legs' links: water-filling, which is the optimum of the linear program over
those paths because no two legs share a link. Without a demand estimate the
weights follow each leg's spare capacity (its tightest link).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

LinkKey = tuple[int, int]  # (dpid, out port): one direction of a link

BISECTIONS = 100  # halvings of the water level; far below float resolution by then


def _check(legs: Sequence[Sequence[LinkKey]], capacity: Mapping[LinkKey, float]) -> None:
    if not legs:
        raise ValueError("no legs to split over")
    owner: dict[LinkKey, int] = {}
    for i, links in enumerate(legs):
        for key in links:
            if key in owner and owner[key] != i:
                raise ValueError(f"legs {owner[key]} and {i} share link {key}: "
                                 "water-filling needs link-disjoint legs")
            owner[key] = i
            cap = capacity.get(key)
            if cap is None or not math.isfinite(cap) or cap <= 0:
                raise ValueError(f"leg {i}: link {key} has no positive capacity ({cap!r})")


def normalised(raw: Sequence[float]) -> tuple[float, ...]:
    """Weights scaled to sum to 1 (equal if they are all 0)."""
    total = math.fsum(raw)
    if total <= 0:
        return tuple(1.0 / len(raw) for _ in raw)
    return tuple(x / total for x in raw)


def spare_weights(legs: Sequence[Sequence[LinkKey]], capacity: Mapping[LinkKey, float],
                  load: Mapping[LinkKey, float]) -> tuple[float, ...]:
    """Weights proportional to each leg's spare bit/s on its tightest link.

    A leg without links (both hosts on one switch) takes everything; if no
    leg has spare capacity the split is equal.

    >>> spare_weights([[(1, 1)], [(1, 2)]], {(1, 1): 10.0, (1, 2): 10.0}, {(1, 1): 4.0})
    (0.375, 0.625)
    """
    _check(legs, capacity)
    if any(not links for links in legs):
        return tuple(1.0 if not links else 0.0 for links in legs)
    spare = [max(0.0, min(capacity[k] - load.get(k, 0.0) for k in links)) for links in legs]
    return normalised(spare)


def max_utilisation(legs: Sequence[Sequence[LinkKey]], weights: Sequence[float],
                    capacity: Mapping[LinkKey, float], load: Mapping[LinkKey, float],
                    demand: float) -> float:
    """The highest utilisation of the legs' links with `demand` split by `weights`."""
    worst = 0.0
    for links, weight in zip(legs, weights, strict=True):
        for key in links:
            worst = max(worst, (load.get(key, 0.0) + weight * demand) / capacity[key])
    return worst


def minmax_weights(legs: Sequence[Sequence[LinkKey]], capacity: Mapping[LinkKey, float],
                   load: Mapping[LinkKey, float], demand: float) -> tuple[float, ...]:
    """Weights minimising the highest utilisation of the legs' links carrying `demand`.

    `load` is the bit/s already on each link (not counting this trail). Legs
    must be link-disjoint. With demand 0 the weights are spare_weights.
    Leg i can take (u * c_l - b_l) / demand on its link l at water level u;
    the level where the legs together take all of the demand is found by
    bisection, and each leg gets what its tightest link can take there.

    >>> minmax_weights([[(1, 1)], [(1, 2)]], {(1, 1): 10.0, (1, 2): 10.0}, {(1, 1): 4.0}, 2.0)
    (0.0, 1.0)
    >>> minmax_weights([[(1, 1)], [(1, 2)]], {(1, 1): 10.0, (1, 2): 10.0}, {(1, 1): 4.0}, 8.0)
    (0.25, 0.75)
    """
    if not math.isfinite(demand) or demand < 0:
        raise ValueError(f"demand {demand!r} must be a finite number >= 0")
    if demand == 0:
        return spare_weights(legs, capacity, load)
    _check(legs, capacity)
    if any(not links for links in legs):
        return tuple(1.0 if not links else 0.0 for links in legs)

    def takes(links: Sequence[LinkKey], level: float) -> float:
        return max(0.0, min((level * capacity[k] - load.get(k, 0.0)) / demand for k in links))

    base = [max(load.get(k, 0.0) / capacity[k] for k in links) for links in legs]
    lo = min(base)
    hi = max(max((load.get(k, 0.0) + demand) / capacity[k] for k in links) for links in legs)
    for _ in range(BISECTIONS):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        if math.fsum(takes(links, mid) for links in legs) >= 1.0:
            hi = mid
        else:
            lo = mid
    # Exact level: each leg that takes a share is bound by its tightest link there,
    # so sum((u * c_i - b_i) / demand) = 1 over those legs solves for u.
    bound = [min(links, key=lambda k: hi * capacity[k] - load.get(k, 0.0))
             if takes(links, hi) > 0 else None for links in legs]
    active = [k for k in bound if k is not None]
    level = (demand + math.fsum(load.get(k, 0.0) for k in active)) / math.fsum(
        capacity[k] for k in active)
    return normalised([max(0.0, (level * capacity[k] - load.get(k, 0.0)) / demand)
                        if k is not None else 0.0 for k in bound])


def changed(old: Sequence[float], new: Sequence[float], threshold: float) -> bool:
    """True if the legs differ in number or any weight moved by `threshold` or more."""
    return len(old) != len(new) or any(abs(a - b) >= threshold
                                       for a, b in zip(old, new, strict=True))
