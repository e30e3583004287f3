"""The policy model: zones, node attributes, applications, classifications.

Plain frozen data; `policyfile` reads and validates YAML into it, the planner
and controller read it. docs/policy.rst describes the file format.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal

from .hosttraffic import HostTrafficPolicy

NodeKind = Literal["switch", "host", "nf"]
Isolation = Literal["none", "link", "switch"]
ISOLATIONS: tuple[str, ...] = ("none", "link", "switch")
DEFAULT_APP = "default"


@dataclass(frozen=True)
class Zone:
    """A security zone; higher level = more trusted."""

    name: str
    level: int


@dataclass(frozen=True)
class Attachment:
    """Where a node plugs into the fabric: switch (name or dpid) and port."""

    switch: str
    port: int


@dataclass(frozen=True)
class NodeSpec:
    """Policy attributes of a switch, host or network function.

    A network function (kind "nf") has exactly two attachments: traffic
    enters on one and leaves on the other (a transparent, bump-in-the-wire NF).
    """

    name: str
    kind: NodeKind
    zone: str | None = None
    level: int | None = None  # None: the zone's level (or 0 without a zone)
    role: str | None = None  # firewall, load_balancer, ... (nf only)
    capacity: float | None = None  # bit/s
    attach: tuple[Attachment, ...] = ()
    ip: str | None = None  # hosts: how the controller recognises them
    mac: str | None = None
    tagger: bool = False  # hosts: stamps its own trail labels (sdnscent-vni, docs/vni.rst)


@dataclass(frozen=True)
class L4Port:
    """A transport protocol and port, e.g. tcp/443."""

    proto: Literal["tcp", "udp"]
    port: int


@dataclass(frozen=True)
class Endpoints:
    """What classifies an application's packets at the edge.

    A packet belongs to the application when its source or destination is
    one of `hosts` or inside one of `prefixes` (if any are given), and its
    destination port is one of `ports` (if given), and its DSCP is one of
    `dscp` (if given).
    """

    hosts: tuple[str, ...] = ()
    prefixes: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()  # either family
    ports: tuple[L4Port, ...] = ()
    dscp: tuple[int, ...] = ()


@dataclass(frozen=True)
class Requirements:
    """What an application's trails must satisfy."""

    max_latency: float | None = None  # seconds, end to end
    min_bandwidth: float | None = None  # bit/s of spare capacity on every link
    chain: tuple[str, ...] | None = None  # NF roles in order; None: the classification's
    avoid_nodes: frozenset[str] = frozenset()
    avoid_zones: frozenset[str] = frozenset()
    isolation: Isolation = "none"
    # Legs of each trail: > 1 splits it over that many link-disjoint paths with
    # weights (a select group at the ingress; docs/multipath.rst).
    paths: int = 1


@dataclass(frozen=True)
class Application:
    """An application profile."""

    name: str
    endpoints: Endpoints = field(default_factory=Endpoints)
    data_class: str = "best-effort"
    access_pattern: str = "request-response"
    classification: str = "public"
    requirements: Requirements = field(default_factory=Requirements)


@dataclass(frozen=True)
class Classification:
    """Rules for a security classification."""

    name: str
    min_level: int = 0  # never cross a node below this level
    allowed_zones: frozenset[str] | None = None  # None: any zone
    chain: tuple[str, ...] = ()  # default NF chain


@dataclass(frozen=True)
class ClassWeights:
    """Cost weights of a data class (soft costs of the planner)."""

    name: str
    hop: float = 1.0
    latency: float = 1.0  # per millisecond
    load: float = 4.0  # per unit of utilisation
    security: float = 0.0  # per level below the highest
    max_rate: float | None = None  # bit/s: each trail of the class is metered to this


@dataclass(frozen=True)
class Limits:
    """Resource limits."""

    max_utilization: float = 1.0  # a trail is never placed on a link above this


@dataclass(frozen=True)
class Service:
    """A load-balanced service: a virtual address in front of a server pool.

    Clients send to `vip` (proxy ARP answers with `mac`); the client's
    ingress switch spreads their flows over `pool` with an OpenFlow select
    group, weighted by `weights` (all 1 when None). `port` limits the service
    to one transport port (None: every IPv4 packet to the VIP).
    """

    name: str
    vip: ipaddress.IPv4Address
    mac: str
    pool: tuple[str, ...]
    port: L4Port | None = None
    weights: tuple[int, ...] | None = None

    def weight_of(self, member: str) -> int:
        """The bucket weight of pool member `member`."""
        if self.weights is None:
            return 1
        return self.weights[self.pool.index(member)]


def service_mac(vip: ipaddress.IPv4Address) -> str:
    """The locally administered MAC a service gets by default: 0e:5c:<vip bytes>."""
    return "0e:5c:" + ":".join(f"{b:02x}" for b in vip.packed)


@dataclass(frozen=True)
class Policy:
    """A whole, validated policy."""

    zones: Mapping[str, Zone] = field(default_factory=dict)
    nodes: Mapping[str, NodeSpec] = field(default_factory=dict)
    classifications: Mapping[str, Classification] = field(default_factory=dict)
    data_classes: Mapping[str, ClassWeights] = field(default_factory=dict)
    applications: tuple[Application, ...] = ()
    limits: Limits = field(default_factory=Limits)
    services: tuple[Service, ...] = ()
    source: str = "<built-in>"
    host_traffic: HostTrafficPolicy = field(default_factory=HostTrafficPolicy)  # DHCP, gateway

    def service(self, name: str) -> Service | None:
        """The service called `name`, if any."""
        return next((s for s in self.services if s.name == name), None)

    def app(self, name: str) -> Application | None:
        """The application called `name`, if any."""
        return next((a for a in self.applications if a.name == name), None)

    def classification_of(self, app: Application) -> Classification:
        """The classification rules of `app` (an unrestricted default if undeclared)."""
        return self.classifications.get(app.classification, Classification(app.classification))

    def chain_of(self, app: Application) -> tuple[str, ...]:
        """The NF roles `app` must traverse, in order."""
        if app.requirements.chain is not None:
            return app.requirements.chain
        return self.classification_of(app).chain

    def weights_of(self, app: Application) -> ClassWeights:
        """Cost weights for `app`'s data class."""
        return self.data_classes.get(app.data_class, ClassWeights(app.data_class))

    def level_of(self, node: str) -> int:
        """Security level of a named node (0 when unknown)."""
        spec = self.nodes.get(node)
        if spec is None:
            return 0
        if spec.level is not None:
            return spec.level
        zone = self.zones.get(spec.zone) if spec.zone else None
        return zone.level if zone else 0

    def zone_of(self, node: str) -> str | None:
        """Zone of a named node, if any."""
        spec = self.nodes.get(node)
        return spec.zone if spec else None

    def network_functions(self) -> list[NodeSpec]:
        """Every NF node."""
        return [n for n in self.nodes.values() if n.kind == "nf"]


def to_jsonable(value: Any) -> Any:
    """Plain JSON types for any policy value (sets sorted, networks as text)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (frozenset, set)):
        return sorted(to_jsonable(v) for v in value)
    if isinstance(value, (tuple, list)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv4Address, ipaddress.IPv6Network,
                          ipaddress.IPv6Address)):
        return str(value)
    return value


EMPTY_POLICY = Policy()
