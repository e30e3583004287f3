"""LLDP frames for link discovery: build one per port, parse what comes back."""

from __future__ import annotations

import struct

from os_ken.lib.packet import ethernet, lldp, packet

LLDP_MAC = lldp.LLDP_MAC_NEAREST_BRIDGE
CHASSIS_PREFIX = b"dpid:"


def build(dpid: int, port: int, hw_addr: str) -> bytes:
    """An LLDP frame announcing (dpid, port)."""
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(LLDP_MAC, hw_addr, 0x88CC))
    tlvs = (
        lldp.ChassisID(subtype=lldp.ChassisID.SUB_LOCALLY_ASSIGNED,
                       chassis_id=CHASSIS_PREFIX + f"{dpid:016x}".encode()),
        lldp.PortID(subtype=lldp.PortID.SUB_PORT_COMPONENT, port_id=struct.pack("!I", port)),
        lldp.TTL(ttl=120),
        lldp.End(),
    )
    pkt.add_protocol(lldp.lldp(tlvs))
    pkt.serialize()
    return bytes(pkt.data)


def parse(data: bytes) -> tuple[int, int] | None:
    """(dpid, port) announced by one of our LLDP frames, or None."""
    try:
        pkt = packet.Packet(data)
        msg = pkt.get_protocol(lldp.lldp)
    except Exception:  # malformed frames from the wire are not ours
        return None
    if msg is None or len(msg.tlvs) < 2:
        return None
    chassis, port_id = msg.tlvs[0], msg.tlvs[1]
    if not isinstance(chassis, lldp.ChassisID) or not isinstance(port_id, lldp.PortID):
        return None
    if not chassis.chassis_id.startswith(CHASSIS_PREFIX) or len(port_id.port_id) != 4:
        return None
    try:
        dpid = int(chassis.chassis_id[len(CHASSIS_PREFIX):], 16)
    except ValueError:
        return None
    return dpid, struct.unpack("!I", port_id.port_id)[0]
