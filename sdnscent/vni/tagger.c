// SPDX-License-Identifier: GPL-2.0
/*
 * sdnscent VNI tagger: a tc (clsact egress) program that stamps the scent
 * trail's MPLS label on a host's outbound IPv4 packets.
 *
 * The label comes from the hash map `trail_labels`, which sdnscent-vni keeps in
 * sync with the trail store (sdnscent/vni/loader.py).  A packet without an
 * entry leaves untagged and the edge switch classifies it as before.
 *
 * Key design (docs/vni.rst): one entry per classifier alternative of a trail,
 *   (destination IPv4, IP protocol, L4 port and whether it is the source or
 *    the destination port, DSCP),
 * with unused parts zero and a `shape` byte saying which parts are used.  The
 * entry of shape 0 (destination only) of every destination with any entry is
 * always present: its `shapes` bitmap says which other shapes exist for that
 * destination, so the common case (one default trail per destination) costs
 * one lookup and an application-specific one at most five.  Among the
 * entries that match, the highest `priority` wins (as OpenFlow priorities do
 * on the switch); a winner with label 0 means "leave untagged".
 *
 * The label goes in front of the IP header as part of the MAC header, which
 * keeps GSO working (push_label below); packets are never dropped here.
 *
 * Built with uapi headers only (no libbpf headers):
 *   clang -O2 -g -target bpf -I/usr/include/$(gcc -print-multiarch) -c tagger.c
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/types.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name
#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Helpers, declared from their uapi ids (what libbpf's bpf_helpers.h does). */
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_lookup_elem;
static long (*bpf_skb_load_bytes)(const struct __sk_buff *skb, __u32 off, void *to,
				  __u32 len) = (void *)BPF_FUNC_skb_load_bytes;
static long (*bpf_skb_store_bytes)(struct __sk_buff *skb, __u32 off, const void *from,
				   __u32 len, __u64 flags) = (void *)BPF_FUNC_skb_store_bytes;

/* Byte order without libbpf's bpf_endian.h. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define bpf_htons(x) ((__be16)__builtin_bswap16(x))
#define bpf_htonl(x) ((__be32)__builtin_bswap32(x))
#else
#define bpf_htons(x) ((__be16)(x))
#define bpf_htonl(x) ((__be32)(x))
#endif

#define ETH_P_MPLS_UC 0x8847
#define MPLS_LABEL_MIN 16	/* 0-15 are reserved (RFC 3032) */
#define MPLS_LABEL_MAX 0xFFFFF
#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF

/* Key shapes: which parts of a key are set (bit n of `shapes` = shape n). */
enum shape {
	SHAPE_DST = 0,		/* destination only (a host pair's default trail) */
	SHAPE_DSCP = 1,		/* + DSCP */
	SHAPE_PORT = 2,		/* + protocol and destination port */
	SHAPE_SPORT = 3,	/* + protocol and source port (a server's replies) */
	SHAPE_PORT_DSCP = 4,	/* + protocol, destination port and DSCP */
	SHAPE_SPORT_DSCP = 5,	/* + protocol, source port and DSCP */
	SHAPE_PROTO = 6,	/* + protocol only */
	SHAPE_PROTO_DSCP = 7,	/* + protocol and DSCP */
};

struct tag_key {
	__be32 daddr;		/* IPv4 destination, network order */
	__be16 port;		/* L4 port, network order (0 unless the shape has one) */
	__u8 proto;		/* IP protocol (0 unless the shape has one) */
	__u8 dscp;		/* DSCP 0-63 (0 unless the shape has one) */
	__u8 shape;		/* enum shape */
	__u8 pad[3];		/* always zero */
};

struct tag_value {
	__u32 label;		/* MPLS label; 0: send untagged */
	__u16 priority;		/* the trail's classifier priority; highest match wins */
	__u8 tc;		/* MPLS traffic class (0-7) */
	__u8 shapes;		/* SHAPE_DST entries: bitmap of this destination's shapes */
};

/* Counters, read by `sdnscent-vni show` and the benchmark. */
enum counter {
	CNT_TAGGED = 0,		/* label pushed */
	CNT_UNTAGGED = 1,	/* IPv4 with no entry (or label 0) */
	CNT_FAILED = 2,		/* the push failed: sent untagged */
	CNT_OTHER = 3,		/* not IPv4 (ARP, IPv6, ...): untouched */
	CNT_MAX = 4,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tag_key);
	__type(value, struct tag_value);
} trail_labels SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tag_counters SEC(".maps");

ALWAYS_INLINE void count(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&tag_counters, &which);

	if (n)
		*n += 1;
}

/* Look one key up; keep it if it beats the best match so far. */
ALWAYS_INLINE void try_key(struct tag_key *key, __u8 shape, __u8 proto, __be16 port,
			   __u8 dscp, struct tag_value **best)
{
	struct tag_value *v;

	key->shape = shape;
	key->proto = proto;
	key->port = port;
	key->dscp = dscp;
	v = bpf_map_lookup_elem(&trail_labels, key);
	if (v && v->priority >= (*best)->priority)	/* a tie goes to the later, more specific key */
		*best = v;
}

#ifndef VNI_PUSH_ADJUST_ROOM
static long (*bpf_skb_change_head)(struct __sk_buff *skb, __u32 len,
				   __u64 flags) = (void *)BPF_FUNC_skb_change_head;

/*
 * Insert the label stack entry as part of the MAC header: grow the packet at
 * its head (bpf_skb_change_head also resets the MAC header to the new start),
 * move the two MAC addresses forward, then write ethertype 0x8847 and the
 * entry.  The kernel now sees an 18-byte MAC header in front of an unchanged
 * IP header, so a GSO packet is still segmented as TCP/UDP over IPv4 and
 * every segment gets a copy of Ethernet + label (docs/vni.rst, "GSO").
 */
ALWAYS_INLINE long push_label(struct __sk_buff *skb, __be32 lse)
{
	__be16 mpls_type = bpf_htons(ETH_P_MPLS_UC);
	__u8 macs[2 * ETH_ALEN];

	if (bpf_skb_change_head(skb, 4, 0) < 0 ||
	    bpf_skb_load_bytes(skb, 4, macs, sizeof(macs)) < 0 ||
	    bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0) < 0 ||
	    bpf_skb_store_bytes(skb, 2 * ETH_ALEN, &mpls_type, sizeof(mpls_type), 0) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, sizeof(struct ethhdr), &lse, sizeof(lse), 0);
}
#else
static long (*bpf_skb_adjust_room)(struct __sk_buff *skb, __s32 len_diff, __u32 mode,
				   __u64 flags) = (void *)BPF_FUNC_skb_adjust_room;

/*
 * The spike's variant, kept for the benchmark: room between the MAC and the
 * IP header.  bpf_skb_adjust_room moves the kernel's network header onto the
 * label, so a GSO packet can no longer be segmented (the kernel has no MPLS
 * GSO): TCP works only with the device's gso_max_segs at 1.
 */
ALWAYS_INLINE long push_label(struct __sk_buff *skb, __be32 lse)
{
	__be16 mpls_type = bpf_htons(ETH_P_MPLS_UC);

	if (bpf_skb_adjust_room(skb, 4, BPF_ADJ_ROOM_MAC, 0) < 0 ||
	    bpf_skb_store_bytes(skb, 2 * ETH_ALEN, &mpls_type, sizeof(mpls_type), 0) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, sizeof(struct ethhdr), &lse, sizeof(lse), 0);
}
#endif

SEC("tc")
int tag(struct __sk_buff *skb)
{
	struct {
		struct ethhdr eth;
		struct iphdr ip;
	} __attribute__((packed)) hdr;
	struct tag_key key = {};
	struct tag_value *dst, *best;
	__be16 ports[2] = {0, 0};	/* source, destination */
	__u8 dscp, shapes, proto;
	__be32 lse;

	/* Headers are copied out rather than read in place: the IP header of an
	 * outgoing skb need not be in its linear part. */
	if (bpf_skb_load_bytes(skb, 0, &hdr, sizeof(hdr)) < 0 ||
	    hdr.eth.h_proto != bpf_htons(ETH_P_IP)) {
		count(CNT_OTHER);
		return TC_ACT_OK;
	}
	key.daddr = hdr.ip.daddr;
	dst = bpf_map_lookup_elem(&trail_labels, &key);	/* shape 0: destination only */
	if (!dst) {
		count(CNT_UNTAGGED);
		return TC_ACT_OK;
	}
	best = dst;
	shapes = dst->shapes;
	dscp = hdr.ip.tos >> 2;
	proto = hdr.ip.protocol;
	if (shapes & ~1) {
		/* L4 ports: only in the first fragment, after any IP options. */
		if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP) &&
		    !(hdr.ip.frag_off & bpf_htons(IP_OFFSET)) &&
		    bpf_skb_load_bytes(skb, sizeof(hdr.eth) + hdr.ip.ihl * 4, ports, sizeof(ports)) < 0)
			ports[0] = ports[1] = 0;
		if (shapes & (1 << SHAPE_DSCP))
			try_key(&key, SHAPE_DSCP, 0, 0, dscp, &best);
		if (shapes & (1 << SHAPE_PROTO))
			try_key(&key, SHAPE_PROTO, proto, 0, 0, &best);
		if (shapes & (1 << SHAPE_PROTO_DSCP))
			try_key(&key, SHAPE_PROTO_DSCP, proto, 0, dscp, &best);
		if (ports[1] && (shapes & (1 << SHAPE_PORT)))
			try_key(&key, SHAPE_PORT, proto, ports[1], 0, &best);
		if (ports[0] && (shapes & (1 << SHAPE_SPORT)))
			try_key(&key, SHAPE_SPORT, proto, ports[0], 0, &best);
		if (ports[1] && (shapes & (1 << SHAPE_PORT_DSCP)))
			try_key(&key, SHAPE_PORT_DSCP, proto, ports[1], dscp, &best);
		if (ports[0] && (shapes & (1 << SHAPE_SPORT_DSCP)))
			try_key(&key, SHAPE_SPORT_DSCP, proto, ports[0], dscp, &best);
	}
	if (best->label < MPLS_LABEL_MIN || best->label > MPLS_LABEL_MAX) {
		count(CNT_UNTAGGED);	/* label 0: this traffic stays with the switch */
		return TC_ACT_OK;
	}
	/* Label stack entry: label(20) | TC(3) | S=1 | TTL(8), TTL from the IP header
	 * (as the switch's push_mpls copies it). */
	lse = bpf_htonl((best->label << 12) | ((best->tc & 7) << 9) | (1 << 8) | hdr.ip.ttl);

	if (push_label(skb, lse) < 0) {
		count(CNT_FAILED);
		return TC_ACT_OK;	/* untagged: the switch still classifies it */
	}
	count(CNT_TAGGED);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
