"""Which switch ports need which MTU: inter-switch links carry labelled frames.

A trail label is one 4-byte MPLS shim, so a full-size host frame is 4 bytes
longer on links between switches than on the host's own port. Only link ports
get ``mtu_request``; host ports keep the host MTU.
"""

from __future__ import annotations

from collections.abc import Iterable

HOST_MTU = 1500
LABEL_BYTES = 4  # one MPLS label stack entry
MIN_LINK_MTU = HOST_MTU + LABEL_BYTES  # 1504: a full-size host frame with its label
DEFAULT_LINK_MTU = 1600  # MIN_LINK_MTU rounded up; what the Mininet test bed uses
MAX_LINK_MTU = 65535

Endpoint = tuple[int, int]  # (dpid, OpenFlow port)


def check_link_mtu(mtu: int) -> int:
    """Return `mtu` if it is 0 (disabled) or MIN_LINK_MTU..MAX_LINK_MTU; ValueError otherwise."""
    if isinstance(mtu, bool) or not isinstance(mtu, int) or \
            not (mtu == 0 or MIN_LINK_MTU <= mtu <= MAX_LINK_MTU):
        raise ValueError(f"link MTU {mtu!r} must be 0 (off) or {MIN_LINK_MTU}..{MAX_LINK_MTU} "
                         f"(host MTU {HOST_MTU} + a {LABEL_BYTES}-byte label at least)")
    return mtu


def link_port_mtus(links: Iterable[tuple[Endpoint, Endpoint]],
                   link_mtu: int = DEFAULT_LINK_MTU) -> dict[int, dict[int, int]]:
    """``{dpid: {port: mtu}}`` for both ends of every inter-switch link.

    `links` are ``((dpid, port), (dpid, port))`` pairs, one per link or per
    direction (a topology ``Link`` gives ``((l.src, l.src_port), (l.dst, l.dst_port))``).
    Ports not on a link (host ports) are absent; ``link_mtu=0`` gives ``{}``.
    """
    if check_link_mtu(link_mtu) == 0:
        return {}
    plan: dict[int, dict[int, int]] = {}
    for ends in links:
        for dpid, port in ends:
            plan.setdefault(dpid, {})[port] = link_mtu
    return plan
