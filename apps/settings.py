"""Options handed from sdnscent-manager to the os-ken apps it starts."""

from __future__ import annotations

from dataclasses import dataclass

from sdnscent.core.model import ROUTING_SCENT
from sdnscent.mtu import DEFAULT_LINK_MTU


@dataclass
class Settings:
    """What the scent-trail app needs to know at start."""

    store_url: str = "memory://"
    api_listen: str | None = "127.0.0.1:8080"
    policy_file: str | None = None
    api_token: str | None = None
    default_link_capacity: int | None = None
    lldp_interval: float = 1.0
    link_timeout: float = 3.5
    stats_interval: float = 1.0
    switch_grace: float = 10.0  # s a disconnected switch keeps its place (and flows)
    trail_lease: int = 60  # s of idleness after which a trail ends (0: never)
    controller_id: str = ""  # name in the leader election (default: the host name)
    leader_ttl: float = 3.0  # s the leader's lease in a shared store lasts
    link_high: float = 0.8  # utilisation at which a link is hot (trails move off it)
    link_low: float = 0.6  # ... and cool again
    move_hold: float = 30.0  # s a moved trail stays put
    routing: str = ROUTING_SCENT  # scent, ecmp or static (sdnscent.core.model.ROUTINGS)
    allocator: str = "none"  # CPU/memory of computing nodes: none, cgroup[:parent]
    api_open_reads: bool = False  # read endpoints answer non-loopback clients without a token
    packet_in_rate: float = 100.0  # packet-ins per second per switch port (0: unlimited)
    packet_in_burst: float = 200.0
    # node -> HMAC key its sdnscent-agent signs samples with (None: unsigned samples pass)
    telemetry_keys: dict[str, bytes] | None = None
    # OVSDB remotes of the switches (unix:PATH, tcp:HOST:PORT); empty: no OVSDB southbound
    ovsdb_targets: tuple[str, ...] = ()
    link_mtu: int = DEFAULT_LINK_MTU  # mtu_request of inter-switch link ports (0: leave them)
    protection: str = "node"  # fast-failover backups per trail hop: node, link or none
    bfd_interval: int = 0  # ms between BFD packets on inter-switch links, with --ovsdb (0: off)
    # The network edge (docs/security.rst): LLDP HMAC key (None: random per process),
    # port security (hosts bound to their first port), its MAC limit and probe timeout.
    lldp_secret: bytes | None = None
    port_security: bool = True
    port_mac_limit: int = 8
    probe_timeout: float = 1.0


SETTINGS = Settings()
