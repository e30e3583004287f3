"""Hedera's traffic patterns for fat-trees and Hedera's demand estimator.

Al-Fares et al., "Hedera: Dynamic Flow Scheduling for Data Center Networks"
(NSDI 2010), section 6: every host sends one flow. stride(i): host x sends to
host (x + i) mod n; staggered(edge_p, pod_p): to a host under the same edge
switch with probability edge_p, in the same pod with pod_p, elsewhere
otherwise; random: to any other host (receivers may collide); random
bijective: a random permutation without fixed points. Hosts are given in
fat-tree order (edge by edge, pod by pod) with `per_edge` and `per_pod` hosts.
`estimate_demands` turns flows into the max-min fair rates Hedera schedules
with (as fractions of a host's NIC rate).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Hashable, Sequence

Flow = tuple[Hashable, Hashable]


def stride(hosts: Sequence[Hashable], step: int) -> list[Flow]:
    """Host x sends to host (x + step) mod n."""
    n = len(hosts)
    if n < 2 or step % n == 0:
        raise ValueError(f"stride {step} over {n} hosts sends hosts to themselves")
    return [(hosts[x], hosts[(x + step) % n]) for x in range(n)]


def staggered(hosts: Sequence[Hashable], per_edge: int, per_pod: int, edge_p: float,
              pod_p: float, rnd: random.Random) -> list[Flow]:
    """Same edge switch with probability edge_p, same pod with pod_p, else another pod."""
    if not 0 <= edge_p + pod_p <= 1:
        raise ValueError(f"edge_p {edge_p} + pod_p {pod_p} must be within [0, 1]")
    n = len(hosts)
    flows = []
    for x in range(n):
        edge0, pod0 = x - x % per_edge, x - x % per_pod
        draw = rnd.random()
        if draw < edge_p and per_edge > 1:
            choices = [y for y in range(edge0, edge0 + per_edge) if y != x]
        elif draw < edge_p + pod_p and per_pod > per_edge:
            choices = [y for y in range(pod0, pod0 + per_pod)
                       if not edge0 <= y < edge0 + per_edge]
        else:
            choices = [y for y in range(n) if not pod0 <= y < pod0 + per_pod]
        choices = choices or [y for y in range(n) if y != x]
        flows.append((hosts[x], hosts[rnd.choice(choices)]))
    return flows


def uniform_random(hosts: Sequence[Hashable], rnd: random.Random) -> list[Flow]:
    """Each host sends to another host chosen uniformly (receivers may collide)."""
    n = len(hosts)
    return [(hosts[x], hosts[(x + rnd.randrange(1, n)) % n]) for x in range(n)]


def random_bijective(hosts: Sequence[Hashable], rnd: random.Random) -> list[Flow]:
    """A random permutation without fixed points: every host sends and receives once."""
    n = len(hosts)
    if n < 2:
        raise ValueError("random bijective traffic needs at least two hosts")
    while True:
        order = list(range(n))
        rnd.shuffle(order)
        if all(order[x] != x for x in range(n)):
            return [(hosts[x], hosts[order[x]]) for x in range(n)]


def estimate_demands(flows: Sequence[Flow]) -> list[float]:
    """Hedera's demand estimator: the max-min fair rate of each flow (NIC rate = 1).

    Senders split their NIC equally over unconverged flows; receivers over
    capacity cap their senders at the fair share, which converges the flow.
    Returns one rate per flow, in the order given.
    """
    demand = [0.0] * len(flows)
    converged = [False] * len(flows)
    by_src: dict[Hashable, list[int]] = defaultdict(list)
    by_dst: dict[Hashable, list[int]] = defaultdict(list)
    for i, (src, dst) in enumerate(flows):
        by_src[src].append(i)
        by_dst[dst].append(i)
    changed = True
    while changed:
        changed = False
        for ids in by_src.values():  # est_src
            fixed = sum(demand[i] for i in ids if converged[i])
            free = [i for i in ids if not converged[i]]
            if free:
                share = (1.0 - fixed) / len(free)
                for i in free:
                    if abs(demand[i] - share) > 1e-12:
                        demand[i], changed = share, True
        for ids in by_dst.values():  # est_dst
            if sum(demand[i] for i in ids) <= 1.0 + 1e-12:
                continue
            limited = set(ids)
            while True:
                small = sum(demand[i] for i in ids if i not in limited)
                share = (1.0 - small) / len(limited)
                drop = {i for i in limited if demand[i] < share}
                if not drop:
                    break
                limited -= drop
            for i in limited:
                if abs(demand[i] - share) > 1e-12 or not converged[i]:
                    demand[i], converged[i], changed = share, True, True
    return demand


def demand_matrix(flows: Sequence[Flow], nic_rate: float) -> dict[Hashable, dict[Hashable, float]]:
    """{src: {dst: bit/s}} of estimated demands, flows between one pair summed."""
    out: dict[Hashable, dict[Hashable, float]] = defaultdict(dict)
    for (src, dst), rate in zip(flows, estimate_demands(flows), strict=True):
        if rate > 0:
            out[src][dst] = out[src].get(dst, 0.0) + rate * nic_rate
    return dict(out)


PATTERNS = ("stride1", "stride2", "stride4", "stride8", "staggered(0.2,0.3)",
            "staggered(0.5,0.3)", "random", "randbij")


def pattern(name: str, hosts: Sequence[Hashable], per_edge: int, per_pod: int,
            seed: int = 1) -> list[Flow]:
    """The flows of a pattern named as in PATTERNS."""
    rnd = random.Random(f"{name}/{seed}")
    if name.startswith("stride"):
        return stride(hosts, int(name.removeprefix("stride")))
    if name.startswith("staggered(") and name.endswith(")"):
        edge_p, pod_p = (float(v) for v in name[len("staggered("):-1].split(","))
        return staggered(hosts, per_edge, per_pod, edge_p, pod_p, rnd)
    if name == "random":
        return uniform_random(hosts, rnd)
    if name == "randbij":
        return random_bijective(hosts, rnd)
    raise ValueError(f"unknown traffic pattern {name!r}; expected one of {', '.join(PATTERNS)}")
