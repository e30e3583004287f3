"""Shared fixtures: a k-ary fat-tree built in pure Python (no Mininet), a fake clock,
a poll for conditions that other threads make true.

The numbering follows topologies/fattree.py: switch s<n> has dpid n, core switches
first, then pod by pod the aggregation and the edge switches; host h<n> has MAC
00:00:00:00:00:<n> (hex) and IP 10.0.0.<n>. An edge switch has its hosts on ports
1..k/2 and its aggregation switches on k/2+1..k; an aggregation switch has its edge
switches on 1..k/2 and its core switches on k/2+1..k; core port p leads to pod p-1.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import pytest

from sdnscent.controller import ScentController
from sdnscent.store import MemoryStore
from sdnscent.topology import Host, Port, Topology
from sdnscent.trails import Hop


@dataclass(frozen=True)
class HostSpec:
    """Where host h<n> sits and what it is called."""

    n: int
    mac: str
    ip: str
    dpid: int
    port: int


@dataclass(frozen=True)
class FatTree:
    """The layout of a k-ary fat-tree: switches, cables and hosts."""

    k: int
    cores: tuple[int, ...]
    aggs: tuple[tuple[int, ...], ...]  # per pod
    edges: tuple[tuple[int, ...], ...]  # per pod
    cables: tuple[tuple[int, int, int, int], ...]  # (a, a_port, b, b_port), one per cable
    hosts: tuple[HostSpec, ...]

    @property
    def switches(self) -> list[int]:
        """Every dpid, ascending."""
        return sorted([*self.cores, *(d for pod in self.aggs for d in pod),
                       *(d for pod in self.edges for d in pod)])

    def ports(self, dpid: int) -> list[Port]:
        """The k ports of switch `dpid` (all up, 10 Gbit/s)."""
        return [Port(p, f"s{dpid}-eth{p}", f"02:00:00:00:{dpid:02x}:{p:02x}", 10**10)
                for p in range(1, self.k + 1)]

    def host(self, n: int) -> HostSpec:
        """Host h<n> (1-based)."""
        return self.hosts[n - 1]

    def topology(self, hosts: Iterable[int] | None = None) -> Topology:
        """A Topology holding the fat-tree; `hosts` limits which hosts are learned."""
        topo = Topology()
        for dpid in self.switches:
            topo.add_switch(dpid, {p.number: p for p in self.ports(dpid)}, f"s{dpid}")
        for a, pa, b, pb in self.cables:
            topo.add_link(a, pa, b, pb)
            topo.add_link(b, pb, a, pa)
        for h in self._hosts(hosts):
            topo.add_host(h.mac, h.ip, h.dpid, h.port)
        return topo

    def controller(self, clock: Callable[[], float], hosts: Iterable[int] | None = None,
                   **options: Any) -> ScentController:
        """A ScentController told about the fat-tree through its own event methods."""
        ctrl = ScentController(MemoryStore(clock=clock), clock=clock, **options)
        for dpid in self.switches:
            ctrl.switch_enter(dpid, self.ports(dpid), f"s{dpid}")
        for a, pa, b, pb in self.cables:
            ctrl.link_seen(a, pa, b, pb)
            ctrl.link_seen(b, pb, a, pa)
        for h in self._hosts(hosts):
            ctrl.learn_host(h.dpid, h.port, h.mac, h.ip)
        return ctrl

    def _hosts(self, which: Iterable[int] | None) -> list[HostSpec]:
        return list(self.hosts) if which is None else [self.host(n) for n in which]


def build_fat_tree(k: int = 4) -> FatTree:
    """The layout of a k-ary fat-tree numbered like topologies/fattree.py."""
    half = k // 2
    cores = tuple(range(1, half * half + 1))
    aggs, edges, cables, hosts = [], [], [], []
    for pod in range(k):
        first = half * half + pod * k + 1
        pod_aggs = tuple(range(first, first + half))
        pod_edges = tuple(range(first + half, first + k))
        aggs.append(pod_aggs)
        edges.append(pod_edges)
        for e, edge in enumerate(pod_edges):
            for p in range(1, half + 1):
                n = len(hosts) + 1
                hosts.append(HostSpec(n, f"00:00:00:00:00:{n:02x}", f"10.0.0.{n}", edge, p))
            for a, agg in enumerate(pod_aggs):
                cables.append((agg, 1 + e, edge, half + 1 + a))
    for index, core in enumerate(cores):
        for pod in range(k):
            cables.append((core, pod + 1, aggs[pod][index // half], half + 1 + index % half))
    return FatTree(k, cores, tuple(aggs), tuple(edges), tuple(cables), tuple(hosts))


def hops_follow_links(topo: Topology, hops: tuple[Hop, ...], src: Host | HostSpec,
                      dst: Host | HostSpec) -> None:
    """Assert that `hops` enter at src's port, follow real links and leave at dst's port."""
    assert hops[0].dpid == src.dpid and hops[0].in_port == src.port
    assert hops[-1].dpid == dst.dpid and hops[-1].out_port == dst.port
    for here, there in pairwise(hops):
        link = topo.link_from(here.dpid, here.out_port)
        assert link is not None, f"no link leaves {here.dpid}:{here.out_port}"
        assert (link.dst, link.dst_port) == (there.dpid, there.in_port), (here, there, link)


def wait_for(check: Callable[[], Any], timeout: float = 5.0, step: float = 0.02) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@pytest.fixture
def fat_tree() -> FatTree:
    """The k=4 fat-tree layout: 20 switches, 16 hosts."""
    return build_fat_tree(4)


@pytest.fixture
def clock() -> FakeClock:
    """A hand-driven clock starting at t=1000."""
    return FakeClock()


@pytest.fixture
def check_hops() -> Callable[..., None]:
    """The hops_follow_links assertion."""
    return hops_follow_links


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """apps.manager.main reconfigures the root logger: put it back afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    quiet = {name: logging.getLogger(name).level for name in ("os_ken", "werkzeug")}
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, value in quiet.items():
        logging.getLogger(name).setLevel(value)
