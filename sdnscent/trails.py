"""The trail model: a labelled path for one application flow between hosts."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace

from .topology import dpid_str


class TrailState(enum.StrEnum):
    """Lifecycle of a trail."""

    INSTALLING = "installing"
    ACTIVE = "active"
    REROUTING = "rerouting"
    FAILED = "failed"
    REMOVED = "removed"


# States of a trail that holds no entries on the switches (not live).
DEAD_STATES = frozenset({TrailState.REMOVED, TrailState.FAILED})


IPV6_KEY = "@ipv6"  # suffix of an IPv6 trail's application in the (app, src, dst) index
CONNECTION_KEY = "#tcp:"  # infix of a one-connection trail's key: default#tcp:SPORT:DPORT
EXTRA_CONNECTION = "connection"  # extra: "SPORT:DPORT" of a trail split off for one connection
EXTRA_PARENT = "split_from"  # extra: the id of the trail a connection was split off
EXTRA_COUNTED = "counted"  # extra: "tcp" while an elephant's connections are counted


def pair_key(app: str, src_mac: str, dst_mac: str, family: int = 4) -> tuple[str, str, str]:
    """The controller's index key of the `family` trail of `app` from src_mac to dst_mac:
    a pair has one IPv4 and one IPv6 trail per application (each its own label)."""
    return (app if family == 4 else app + IPV6_KEY, src_mac, dst_mac)


def connection_key(pair: tuple[str, str, str], sport: int, dport: int) -> tuple[str, str, str]:
    """The index key of the trail split off `pair`'s trail for TCP sport -> dport."""
    app, src, dst = pair
    return (f"{app}{CONNECTION_KEY}{sport}:{dport}", src, dst)


@dataclass(frozen=True)
class Hop:
    """One switch on a trail: where the packet enters and leaves it."""

    dpid: int
    in_port: int
    out_port: int
    # After out_port the packet crosses this network function and arrives at
    # the next hop's in_port (None: a plain link, or the destination host).
    via: str | None = None

    def to_dict(self) -> dict[str, int | str]:
        """JSON form (dpid as 16 hex digits; "via" only when an NF follows)."""
        data: dict[str, int | str] = {"dpid": dpid_str(self.dpid), "in_port": self.in_port,
                                      "out_port": self.out_port}
        if self.via is not None:
            data["via"] = self.via
        return data


@dataclass(frozen=True)
class Trail:
    """A scent trail: label, endpoints and hops, with lifecycle data."""

    id: int
    label: int
    src_mac: str
    dst_mac: str
    src_ip: str
    dst_ip: str
    hops: tuple[Hop, ...]
    app: str = "default"
    cls: str = "best-effort"
    state: TrailState = TrailState.INSTALLING
    created: float = 0.0
    expires: float | None = None
    version: int = 1
    setup_ms: float | None = None
    packets: int = 0
    bytes: int = 0
    extra: dict[str, str] = field(default_factory=dict, compare=False)
    # Extra classifier fields of an application's trail, one tuple of
    # (field, value) pairs per alternative (e.g. tcp_dst=443 | tcp_src=443);
    # empty: every IPv4 packet between the two hosts.
    match: tuple[tuple[tuple[str, int], ...], ...] = ()
    priority: int | None = None  # classifier priority (None: the compiler's default)
    # Header fields rewritten on the way, as (field, value) pairs: by the
    # exit after the pop (by the ingress on a one-switch trail). A service's
    # replies reach the client from its VIP and MAC.
    rewrite: tuple[tuple[str, str], ...] = ()
    # The ingress is a select-group bucket (a service's pool member), not a
    # classifier flow of its own.
    grouped: bool = False
    # Seconds of idleness after which the trail ends (0: never): the ingress
    # classifier's idle timeout on the switch; `expires` is renewed from its
    # counters (docs/store.rst, "Leases").
    lease: int = 0
    # bit/s the ingress meters the trail to (0: no cap; the data class's max_rate)
    rate_cap: int = 0

    @property
    def family(self) -> int:
        """4 or 6: the IP version the trail carries (from its source address)."""
        return 6 if ":" in self.src_ip else 4

    @property
    def switches(self) -> tuple[int, ...]:
        """The dpids the trail crosses, ingress first."""
        return tuple(h.dpid for h in self.hops)

    @property
    def ingress(self) -> Hop:
        """The first hop (where the label is pushed)."""
        return self.hops[0]

    @property
    def egress(self) -> Hop:
        """The last hop (where the label is popped)."""
        return self.hops[-1]

    @property
    def pair(self) -> tuple[str, str, str]:
        """The trail's key in the controller's (app, src, dst) index (pair_key); a
        trail split off for one TCP connection adds CONNECTION_KEY and its ports."""
        key = pair_key(self.app, self.src_mac, self.dst_mac, self.family)
        ports = self.connection
        return connection_key(key, *ports) if ports else key

    @property
    def connection(self) -> tuple[int, int] | None:
        """(tcp_src, tcp_dst) of a trail split off for one TCP connection, else None."""
        sport, _, dport = self.extra.get(EXTRA_CONNECTION, "").partition(":")
        if not (sport.isdigit() and dport.isdigit()):
            return None
        return int(sport), int(dport)

    @property
    def counted(self) -> bool:
        """True while the ingress counts the trail's TCP connections (an elephant)."""
        return self.extra.get(EXTRA_COUNTED) == "tcp"

    def links(self) -> list[tuple[int, int]]:
        """The (dpid, out_port) of every inter-switch link the trail uses."""
        return [(h.dpid, h.out_port) for h in self.hops[:-1]]

    def evolve(self, **changes: object) -> Trail:
        """A copy with `changes` applied."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, object]:
        """JSON form as served by GET /api/v1/trails/<id>."""
        data = asdict(self)
        data.pop("extra")
        data["match"] = [dict(alt) for alt in self.match]
        data["rewrite"] = dict(self.rewrite)
        data["class"] = data.pop("cls")
        data["state"] = self.state.value
        data["src"] = self.src_ip
        data["family"] = f"ipv{self.family}"
        data["dst"] = self.dst_ip
        data["hops"] = [h.to_dict() for h in self.hops]
        data["setup_latency_ms"] = data.pop("setup_ms")
        return data
