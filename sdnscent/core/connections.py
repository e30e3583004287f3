"""Connections: count an elephant trail's TCP connections, split the big ones off.

While a default trail is an elephant its ingress classifier also has the
switch learn one counter per TCP connection (compiler.counting_flows). When
two or more connections of it are elephants themselves, each gets a trail of
its own, classified on its ports above the pair's trail (PRIO_FLOW), which the
global placement then moves like any other elephant. A split-off trail ends
CONNECTION_LEASE seconds after its connection's last packet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .. import compiler
from ..connections import ConnectionCount, to_split
from ..elephants import ELEPHANT_SHARE
from ..pipeline import PRIO_FLOW
from ..trails import (
    EXTRA_CONNECTION,
    EXTRA_COUNTED,
    EXTRA_PARENT,
    Hop,
    Trail,
    TrailState,
    connection_key,
)
from .model import Change
from .state import CoreState

CONNECTION_LEASE = 10  # s: a split-off connection's trail ends this long after its last packet


class ConnectionManager:
    """Per-connection counting and splitting; shares the core's state."""

    def __init__(self, s: CoreState) -> None:
        self.s = s

    def counters(self, dpid: int, counts: Iterable[ConnectionCount]) -> None:
        """Apply the learned connection counters read from switch `dpid`.

        Only a counted trail's own ingress switch is believed: a counter with
        another trail's cookie, or from elsewhere, is ignored.
        """
        mine = []
        for c in counts:
            trail = self.s.store.get(c.trail_id)
            if trail is not None and trail.counted and trail.ingress.dpid == dpid:
                mine.append(c)
        self.s.connection_meter.update(mine, self.s.clock())

    def count(self, trails: Iterable[Trail], elephants: set[int]) -> Change:
        """Count the connections of every active elephant that can be split; stop
        counting those that are no longer elephants."""
        change = Change()
        for trail in trails:
            want = trail.id in elephants and compiler.can_count(trail) \
                and not self.s.tagged(trail)
            if trail.state is not TrailState.ACTIVE or want == trail.counted:
                continue
            extra = {k: v for k, v in trail.extra.items() if k != EXTRA_COUNTED}
            if want:
                extra[EXTRA_COUNTED] = "tcp"
            else:
                self.s.connection_meter.forget(trail.id)
            new = trail.evolve(extra=extra, version=trail.version + 1)
            self.s.put(new)
            change.merge(_classifier_change(trail, new))
        return change

    def split(self, nic: Mapping[str, float]) -> Change:
        """Give each elephant connection of a trail with two or more a trail of its own.

        The largest stays on the pair's path; the others start on the least
        crowded of the pair's candidate paths (fewest elephants on the
        busiest link), and the placement moves them from there.
        """
        s = self.s
        rates = s.connection_meter.rates()
        threshold = {}
        for trail_id in rates:
            trail = s.store.get(trail_id)
            if trail is not None and trail.counted and trail.state is TrailState.ACTIVE:
                threshold[trail_id] = ELEPHANT_SHARE * nic.get(trail.src_mac, 0.0)
        change = Change()
        for trail_id, connections in sorted(to_split(rates, threshold).items()):
            parent = s.store.get(trail_id)
            assert parent is not None
            paths = s.trails.candidate_hops(parent) or [parent.hops]
            others = set(s.elephant_seen) - {trail_id}
            crowd = {hops: _elephants_on(s, hops, others) for hops in paths}
            for n, (sport, dport) in enumerate(connections):
                if connection_key(parent.pair, sport, dport) in s.by_pair:
                    continue
                hops = parent.hops if n == 0 else min(paths, key=lambda h: crowd[h])
                crowd[hops] = crowd.get(hops, 0) + 1
                change.merge(self._split_off(parent, sport, dport, hops,
                                             rates[trail_id][(sport, dport)]))
        return change

    def _split_off(self, parent: Trail, sport: int, dport: int, hops: tuple[Hop, ...],
                   bps: float) -> Change:
        s = self.s
        now = s.clock()
        child = Trail(s.store.next_id(), s.labels.allocate(), parent.src_mac, parent.dst_mac,
                      parent.src_ip, parent.dst_ip, hops, app=parent.app, cls=parent.cls,
                      created=now, lease=CONNECTION_LEASE, expires=now + CONNECTION_LEASE,
                      match=((("ip_proto", 6), ("tcp_src", sport), ("tcp_dst", dport)),),
                      priority=PRIO_FLOW,
                      extra={EXTRA_CONNECTION: f"{sport}:{dport}", EXTRA_PARENT: str(parent.id)})
        s.splits += 1
        return s.trails.install_new(child, note=f" (TCP {sport} -> {dport}, {bps / 1e6:.3g} "
                                    f"Mbit/s, split off elephant trail {parent.id})")


def _classifier_change(old: Trail, new: Trail) -> Change:
    """The ingress classifiers `new` adds to or drops from `old`'s (same label and path)."""
    before = {f.key: f for f in compiler.classifier_flows(old)}
    after = {f.key: f for f in compiler.classifier_flows(new)}
    ops = [f for k, f in after.items() if before.get(k) != f]
    ops += [compiler.delete_exact(f) for k, f in before.items() if k not in after]
    return Change([{new.ingress.dpid: ops}]) if ops else Change()


def _elephants_on(s: CoreState, hops: tuple[Hop, ...], elephants: set[int]) -> int:
    """How many of `elephants` use the busiest link of `hops`."""
    return max((len(s.index.on_links([(h.dpid, h.out_port)]) & elephants) for h in hops[:-1]),
               default=0)
