"""Every number of the OpenFlow pipeline: tables, flow priorities, the cookie
layout and kinds, and the id ranges of labels, groups and meters.

docs/pipeline.rst lists each constant here with the same value
(tests/test_pipeline_doc.py checks both ways). Other modules import these;
flows, compiler, appplan, tagging, bundles and labels re-export their old names.
"""

from __future__ import annotations

# Tables -----------------------------------------------------------------------

TABLE_CLASSIFY = 0  # control traffic, labelled-frame admission, classifiers
TABLE_FORWARD = 1  # label forwarding: one entry per trail hop, pop at the exit
TABLE_FLOWS = 2  # per-flow counters an elephant trail's classifier learns (never forwards)
TABLES = (TABLE_CLASSIFY, TABLE_FORWARD, TABLE_FLOWS)  # every table the pipeline uses

# Flow priorities (highest first) ------------------------------------------------

PRIO_EDGE_DROP = 1100  # table 0: a refused claimant's MAC or IP at its port, dropped
PRIO_LLDP = 1000  # table 0: LLDP to the controller (link discovery)
PRIO_ARP = 900  # table 0: ARP to the controller (proxy ARP)
PRIO_ND = 890  # table 0: IPv6 Neighbour Solicitations and Advertisements to the controller
PRIO_DHCP = 880  # table 0: DHCPv4 (UDP to port 67 or 68) to the controller (relay)
PRIO_LINK_PORT = 500  # table 0: labelled frames from an inter-switch port go on to table 1
PRIO_TAGGED = 450  # table 0: a label of a tagger port's own trail goes on to table 1
PRIO_TAGGER_DROP = 410  # table 0: any other label from a tagger port, dropped and counted
PRIO_UNTRUSTED_LABEL = 400  # table 0: labelled frames from any other port, dropped
PRIO_SERVICE = 300  # table 0: service classifiers into their group, and service replies
MAX_APPS_PRIORITY = 99  # span of application priorities above PRIO_APP_BASE
PRIO_APP_TOP = 299  # table 0: the policy's first application (PRIO_APP_BASE + span)
PRIO_APP_BASE = 200  # table 0: lowest application priority (later ones clamp here)
PRIO_APP = 200  # table 0: an application trail stored without a priority
PRIO_FLOW = 150  # table 0: one TCP connection split off an elephant default trail
PRIO_SAMPLE = 101  # table 0: an elephant default trail's TCP, counted per connection
PRIO_TRAIL = 100  # table 0: a host pair's default trail; table 1: every trail hop
PRIO_GROUP = 30  # table 0: a named multicast group from a member, into its tree's group
PRIO_HOST_DROP = 21  # table 0: broadcast, IPv4 and IPv6 multicast from hosts, dropped and counted
PRIO_HOST_DROP_ANY = 20  # table 0: any other multicast from hosts, dropped and counted
PRIO_PUNT = 10  # table 0: IPv4 or IPv6 without a classifier, to the controller (trail set-up)
PRIO_COUNTED = 1  # table 2: one learned TCP connection (no actions: it only counts)
PRIO_MISS = 0  # table 0: drop anything else; table 1: unknown label to the controller

# Cookies: magic (bits 63-48), kind (bits 47-32), id (bits 31-0) ----------------

COOKIE_MAGIC = 0x5CE7  # top 16 bits of every cookie this controller writes
COOKIE_MAGIC_SHIFT = 48  # bit position of the magic
COOKIE_KIND_SHIFT = 32  # bit position of the 16-bit kind
COOKIE_ID_MAX = 0xFFFF_FFFF  # the id field: 32 bits (ids 0..this)
COOKIE_MASK_ALL = 0xFFFF_FFFF_FFFF_FFFF  # mask selecting one cookie exactly
COOKIE_MASK_KIND = 0xFFFF_FFFF_0000_0000  # mask selecting every cookie of one kind
COOKIE_MASK_OURS = 0xFFFF_0000_0000_0000  # mask selecting every cookie we wrote
KIND_PIPELINE = 0  # fixed flows of every switch and link-port flows; id 0
KIND_TRAIL = 1  # every flow of a trail; id = the trail id
KIND_BLOCK = 2  # drop rules of an application whose policy cannot be met; id = a counter
KIND_SERVICE = 3  # a service binding's classifiers into its select group; id = a counter
KIND_TAGGER = 4  # a tagger port's counted label drop; id = the port number
KIND_PROTECTION = 5  # a backup detour's label entries, shared by trails; id = its backup label
KIND_EDGE = 6  # port security's drop rules at a host port; id = a counter
KIND_HOST_TRAFFIC = 7  # the counted drops of broadcast and multicast; id = the kind of traffic
KIND_MCAST = 8  # every flow of a multicast group's tree from one sender; id = a counter
KIND_FLOW = 9  # a TCP connection's counter the switch learned; id = its trail's id
PIPELINE_COOKIE = 0x5CE7_0000_0000_0000  # cookie of the KIND_PIPELINE flows

# Id ranges ----------------------------------------------------------------------

NO_LABEL = 0  # a tagger map entry's "leave untagged" (reserved, never a trail's)
MIN_LABEL = 16  # lowest trail label (0-15 are reserved by RFC 3032)
MAX_LABEL = 0xF_FFFF  # highest label (20 bits)
TRAIL_LABEL_MAX = 0xE_FFFF  # highest trail label (backup labels sit above)
BACKUP_LABEL_MIN = 0xF_0000  # lowest backup label (a protection detour's outer label)
BACKUP_LABEL_MAX = 0xF_FFFF  # highest backup label
SERVICE_GROUP_MIN = 1  # service bindings' select groups: allocated upwards, freed ids reused
SERVICE_GROUP_MAX = 0x2FFF_FFFF  # highest service group id (protection groups start above)
PROTECTION_GROUP_MIN = 0x3000_0000  # fast-failover groups of protected hops: upwards, reused
PROTECTION_GROUP_MAX = 0x3FFF_FFFF  # highest protection group id (multipath ids start above)
MULTIPATH_GROUP_BASE = 0x4000_0000  # a multipath trail's select group: base + head trail id
MULTIPATH_GROUP_MAX = 0xFFFF_FEFF  # highest multipath group id (OFPG_MAX and up are reserved)
METER_ID_MIN = 1  # a capped trail's meter at its ingress: its trail id (head's for multipath)
METER_ID_MAX = 0xFFFE_FFFF  # highest meter id (0xffff0000 and up left to OpenFlow)


def make_cookie(kind: int, ident: int = 0) -> int:
    """The 64-bit cookie of a flow of `kind` (a KIND_*) with id `ident`."""
    if not 0 <= ident <= COOKIE_ID_MAX:
        raise ValueError(f"cookie id {ident} outside 0..2**32-1")
    return (COOKIE_MAGIC << COOKIE_MAGIC_SHIFT) | (kind << COOKIE_KIND_SHIFT) | ident


def cookie_kind(cookie: int) -> int | None:
    """The kind of one of our cookies; None for a cookie we did not write."""
    if cookie >> COOKIE_MAGIC_SHIFT != COOKIE_MAGIC:
        return None
    return (cookie >> COOKIE_KIND_SHIFT) & 0xFFFF


def trail_cookie(trail_id: int) -> int:
    """Cookie carried by every flow of trail `trail_id`."""
    return make_cookie(KIND_TRAIL, trail_id)


def cookie_trail_id(cookie: int) -> int | None:
    """The trail id encoded in `cookie`, or None for a non-trail cookie."""
    if cookie_kind(cookie) != KIND_TRAIL:
        return None
    return cookie & COOKIE_ID_MAX


def meter_id(trail_id: int) -> int:
    """The meter of capped trail `trail_id` at its ingress (ValueError if out of range)."""
    if not METER_ID_MIN <= trail_id <= METER_ID_MAX:
        raise ValueError(f"trail {trail_id}: no meter id for it")
    return trail_id


def multipath_group_id(head: int) -> int:
    """The select group of the multipath trail whose head leg is `head` (fixed by the
    id, so every controller of a shared store names it alike)."""
    gid = MULTIPATH_GROUP_BASE + head
    if not (0 < head and gid <= MULTIPATH_GROUP_MAX):
        raise ValueError(f"trail {head}: no select group id for it")
    return gid
