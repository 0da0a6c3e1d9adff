// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * rvs steering program (XDP).
 *
 * Hands to the AF_XDP socket of the receiving queue only the frames the director must handle,
 * and passes everything else to the kernel so ssh, VRRP, routing daemons and health checkers
 * keep working on the same interface:
 *
 *   - TCP/UDP/SCTP to a virtual service (vips, exact port or port 0);
 *   - ICMP/ICMPv6 echo requests to a VIP (vip_addrs);
 *   - IPv4/IPv6 fragments to a VIP or from a NAT real server (the engine reassembles, so it
 *     needs every fragment, including the first one that carries the ports);
 *   - ARP requests and IPv6 neighbour solicitations for a VIP (the engine answers them: the
 *     director does not own the VIP as a kernel address);
 *   - NAT return traffic: from a NAT real server (nat_sources) to a non-local address;
 *   - ICMP errors whose quoted packet belongs to one of the above flows.
 *
 * Before that classification, the fast path (docs/fastpath.md) forwards the packets of
 * established flows that the engine put in fast_conns: it rewrites them exactly as the engine
 * would and sends them out itself (XDP_TX or a redirect to another served interface). Anything
 * the fast path does not handle falls through to the classification above, so the engine sees
 * it as in phase 1.
 *
 * The same program (and so the same maps) serves every interface of the director: a NAT flow
 * enters on one interface and leaves on another.
 *
 * Userspace (crates/rvs-io/src/xdp.rs) fills the maps; see rvs_bpf.h for the key layouts.
 */
#include "rvs_bpf.h"
#include <linux/icmpv6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

/* AF_XDP sockets, one per (interface slot, rx queue): key slot * RVS_MAX_QUEUES + queue. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, RVS_MAX_IFACES * RVS_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/* Interface slot of each served interface, by ifindex. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RVS_MAX_IFACES);
	__type(key, __u32);
	__type(value, __u32);
} iface_slots SEC(".maps");

/* Served interfaces by slot: where the fast path redirects to. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, RVS_MAX_IFACES);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val); /* ifindex; no second program */
} tx_ports SEC(".maps");

/*
 * Fast-path flows. A plain HASH, not an LRU: the engine owns every entry's lifecycle and
 * must never find one evicted behind its back. Not preallocated: userspace sizes it for the
 * largest connection table (1M entries by default, set_max_entries at load), which would pin
 * ~170 MB of kernel memory even while the director is idle.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 20);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct flow_key);
	__type(value, struct fast_action);
} fast_conns SEC(".maps");

/* Fast-path packet/byte counts by fast_action.stats_index (real server id * 2 + direction). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1 << 17);
	__type(key, __u32);
	__type(value, struct fast_stats);
} fast_stats SEC(".maps");

/* Run-time switches, written by userspace; config[CONFIG_FAST_PATH] != 0 enables the fast
 * path (userspace sets it to 1 at load). */
enum {
	CONFIG_FAST_PATH = 0,
	CONFIG_SLOTS = 4,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CONFIG_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} config SEC(".maps");

/* Virtual services: (family, proto, VIP, vport). Value reserved (service id for phase 2). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct vip_key);
	__type(value, __u32);
} vips SEC(".maps");

/* VIP addresses alone: ARP/ND targets, echo requests, fragments. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct addr_key);
	__type(value, __u32);
} vip_addrs SEC(".maps");

/* NAT real servers: (family, proto, RIP, rport); replies from them go to the engine. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vip_key);
	__type(value, __u32);
} nat_sources SEC(".maps");

/* NAT real-server addresses alone (for fragments, which carry no ports after the first).
 * Value: how many nat_sources entries use the address (kept by userspace). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct addr_key);
	__type(value, __u32);
} nat_addrs SEC(".maps");

/*
 * The director's own addresses. Traffic from a NAT real server *to* one of them is the
 * director's own business (health checks from rvsd, ssh, ...) and goes to the kernel.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct addr_key);
	__type(value, __u32);
} local_addrs SEC(".maps");

/* Counter slots; mirrored by SteerCounters in xdp.rs. */
enum {
	STAT_PASS = 0,         /* not ours: handed to the kernel */
	STAT_REDIRECT = 1,     /* handed to the AF_XDP socket of the rx queue */
	STAT_NO_XSK = 2,       /* ours, but no socket on this rx queue: passed */
	STAT_VIP = 3,          /* TCP/UDP/SCTP to a virtual service */
	STAT_VIP_ECHO = 4,     /* ICMP/ICMPv6 echo request to a VIP */
	STAT_ICMP_ERROR = 5,   /* ICMP error about a VIP or NAT flow */
	STAT_ARP = 6,          /* ARP request for a VIP */
	STAT_NS = 7,           /* IPv6 neighbour solicitation for a VIP */
	STAT_NAT_RETURN = 8,   /* reply traffic from a NAT real server */
	STAT_FRAGMENT = 9,     /* fragment to a VIP or from a NAT real server */
	STAT_MALFORMED = 10,   /* truncated header: passed, the kernel drops it */
	/* Fast path. A forwarded frame counts only in STAT_FAST_HIT; a punted one in one
	 * STAT_FAST_PUNT_* slot and then again as the classification above decides. */
	STAT_FAST_HIT = 11,          /* rewritten and sent by XDP_TX or a redirect */
	STAT_FAST_PUNT_TCP_FLAGS = 12, /* SYN, FIN or RST: the engine changes state */
	STAT_FAST_PUNT_TTL = 13,       /* TTL / hop limit <= 1: the engine sends time exceeded */
	STAT_FAST_PUNT_TOO_BIG = 14,   /* longer than max_len: the engine sends frag-needed/PTB */
	STAT_FAST_PUNT_UDP_CSUM0 = 15, /* NAT of a UDP datagram without checksum */
	STAT_FAST_PUNT_TUNNEL = 16,    /* TUNNEL4 of anything but an IPv4 packet with DF */
	STAT_FAST_PUNT_TRUNCATED = 17, /* IP length disagrees with the frame: the engine decides */
	STAT_FAST_PUNT_BAD_ENTRY = 18, /* unknown kind in fast_conns */
	STAT_FAST_REDIRECT_FAIL = 19,  /* egress_slot not in tx_ports: punted */
	STAT_FAST_ERROR = 20,          /* head/tail adjustment failed: punted, or dropped if the
					* frame had already been changed */
};

/* Classification result that means "not ours". */
#define NOT_OURS (-1)

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RVS_STATS_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &slot);

	if (v)
		*v += 1; /* per-CPU slot: no atomics needed */
}

static __always_inline int has_addr(void *map, __u8 family, const __u8 addr[16])
{
	struct addr_key k = {};

	k.family = family;
	__builtin_memcpy(k.addr, addr, 16);
	return bpf_map_lookup_elem(map, &k) != NULL;
}

/* Exact port first, then the port-0 (all ports) entry. */
static __always_inline int has_service(void *map, __u8 family, __u8 proto, const __u8 addr[16],
				       __be16 port)
{
	struct vip_key k = {};

	k.family = family;
	k.proto = proto;
	k.port = port;
	__builtin_memcpy(k.addr, addr, 16);
	if (bpf_map_lookup_elem(map, &k))
		return 1;
	k.port = 0;
	return bpf_map_lookup_elem(map, &k) != NULL;
}

static __always_inline int is_l4_with_ports(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

/* TCP, UDP and SCTP all start with source port, destination port. */
struct ports {
	__be16 src;
	__be16 dst;
};

/*
 * A TCP/UDP/SCTP packet: to a virtual service, or back from a NAT real server towards a
 * client (never towards the director itself).
 */
static __always_inline int classify_ports(__u8 family, __u8 proto, const __u8 saddr[16],
					  const __u8 daddr[16], const struct ports *p)
{
	if (has_service(&vips, family, proto, daddr, p->dst))
		return STAT_VIP;
	if (has_service(&nat_sources, family, proto, saddr, p->src) &&
	    !has_addr(&local_addrs, family, daddr))
		return STAT_NAT_RETURN;
	return NOT_OURS;
}

/*
 * An ICMP error quoting a packet (inner_*) that we sent: from VIP:vport towards a client
 * (the error comes from a router on the client side), or towards a NAT real server (the error
 * comes from the real server or a router before it, and is addressed to the client address
 * we kept as source). The outer destination must not be ours for the NAT case, so errors
 * about rvsd's own health checks reach the kernel.
 */
static __always_inline int classify_icmp_error(__u8 family, __u8 inner_proto,
					       const __u8 inner_saddr[16],
					       const __u8 inner_daddr[16],
					       const struct ports *inner, const __u8 outer_daddr[16])
{
	if (!is_l4_with_ports(inner_proto))
		return NOT_OURS;
	if (has_service(&vips, family, inner_proto, inner_saddr, inner->src))
		return STAT_ICMP_ERROR;
	if (has_service(&nat_sources, family, inner_proto, inner_daddr, inner->dst) &&
	    !has_addr(&local_addrs, family, outer_daddr))
		return STAT_ICMP_ERROR;
	return NOT_OURS;
}

/* From <linux/icmp.h>, which drags in libc's <sys/socket.h> (not usable with -target bpf). */
#define ICMP_ECHO 8
#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

struct icmp4_hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest; /* id/sequence, or unused/MTU for errors */
};

struct arp_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 oper;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
} __attribute__((packed));

static __always_inline int classify_arp(void *cur, void *end)
{
	struct arp_ipv4 *arp = cur;
	__u8 target[16];
	__u32 spa, tpa;

	if ((void *)(arp + 1) > end)
		return STAT_MALFORMED;
	if (arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) || arp->hlen != 6 ||
	    arp->plen != 4 || arp->oper != bpf_htons(1))
		return NOT_OURS;
	/* A gratuitous ARP (sender == target) announces, it asks nothing: let the kernel
	 * update its neighbour table (e.g. from the peer director taking over a VIP). */
	__builtin_memcpy(&spa, arp->spa, 4);
	__builtin_memcpy(&tpa, arp->tpa, 4);
	if (spa == tpa)
		return NOT_OURS;
	rvs_addr4(target, tpa);
	return has_addr(&vip_addrs, RVS_AF_INET, target) ? STAT_ARP : NOT_OURS;
}

static __always_inline int classify_ipv4(void *cur, void *end)
{
	struct iphdr *iph = cur;
	__u8 saddr[16], daddr[16];
	__u32 hlen;
	void *l4;

	if ((void *)(iph + 1) > end)
		return STAT_MALFORMED;
	if (iph->version != 4)
		return NOT_OURS;
	hlen = iph->ihl * 4; /* options are allowed: 20..60 bytes */
	if (hlen < sizeof(*iph))
		return NOT_OURS;
	l4 = cur + hlen;
	rvs_addr4(saddr, iph->saddr);
	rvs_addr4(daddr, iph->daddr);

	if (iph->frag_off & bpf_htons(0x3fff)) { /* MF or a fragment offset */
		if (has_addr(&vip_addrs, RVS_AF_INET, daddr) ||
		    (has_addr(&nat_addrs, RVS_AF_INET, saddr) &&
		     !has_addr(&local_addrs, RVS_AF_INET, daddr)))
			return STAT_FRAGMENT;
		return NOT_OURS;
	}

	if (is_l4_with_ports(iph->protocol)) {
		struct ports *p = l4;

		if ((void *)(p + 1) > end)
			return STAT_MALFORMED;
		return classify_ports(RVS_AF_INET, iph->protocol, saddr, daddr, p);
	}
	if (iph->protocol == IPPROTO_ICMP) {
		struct icmp4_hdr *icmp = l4;
		struct iphdr *inner;
		struct ports *ip;
		__u8 isaddr[16], idaddr[16];
		__u32 ihlen;

		if ((void *)(icmp + 1) > end)
			return STAT_MALFORMED;
		if (icmp->type == ICMP_ECHO)
			return has_addr(&vip_addrs, RVS_AF_INET, daddr) ? STAT_VIP_ECHO : NOT_OURS;
		if (icmp->type != ICMP_DEST_UNREACH && icmp->type != ICMP_SOURCE_QUENCH &&
		    icmp->type != ICMP_TIME_EXCEEDED && icmp->type != ICMP_PARAMETERPROB)
			return NOT_OURS;
		inner = (void *)(icmp + 1);
		if ((void *)(inner + 1) > end)
			return STAT_MALFORMED;
		ihlen = inner->ihl * 4;
		if (ihlen < sizeof(*inner))
			return NOT_OURS;
		ip = (void *)inner + ihlen;
		if ((void *)(ip + 1) > end) /* RFC 792 quotes at least 8 bytes of L4 */
			return STAT_MALFORMED;
		rvs_addr4(isaddr, inner->saddr);
		rvs_addr4(idaddr, inner->daddr);
		return classify_icmp_error(RVS_AF_INET, inner->protocol, isaddr, idaddr, ip, daddr);
	}
	return NOT_OURS;
}

/* Extension headers we walk to find the transport header (RFC 8200 order). */
#define IPV6_MAX_EXT 4

static __always_inline int classify_ipv6(void *cur, void *end)
{
	struct ipv6hdr *ip6 = cur;
	__u8 saddr[16], daddr[16];
	__u8 nexthdr;
	void *l4;

	if ((void *)(ip6 + 1) > end)
		return STAT_MALFORMED;
	if (ip6->version != 6)
		return NOT_OURS;
	__builtin_memcpy(saddr, &ip6->saddr, 16);
	__builtin_memcpy(daddr, &ip6->daddr, 16);
	nexthdr = ip6->nexthdr;
	l4 = ip6 + 1;

#pragma unroll
	for (int i = 0; i < IPV6_MAX_EXT; i++) {
		struct ipv6_opt_hdr *oh = l4;

		if (nexthdr == IPPROTO_FRAGMENT) {
			/* Every fragment, the first one included: the engine reassembles. */
			if (has_addr(&vip_addrs, RVS_AF_INET6, daddr) ||
			    (has_addr(&nat_addrs, RVS_AF_INET6, saddr) &&
			     !has_addr(&local_addrs, RVS_AF_INET6, daddr)))
				return STAT_FRAGMENT;
			return NOT_OURS;
		}
		if (nexthdr != IPPROTO_HOPOPTS && nexthdr != IPPROTO_ROUTING &&
		    nexthdr != IPPROTO_DSTOPTS)
			break;
		if ((void *)(oh + 1) > end)
			return STAT_MALFORMED;
		nexthdr = oh->nexthdr;
		l4 += (oh->hdrlen + 1) * 8;
	}

	if (is_l4_with_ports(nexthdr)) {
		struct ports *p = l4;

		if ((void *)(p + 1) > end)
			return STAT_MALFORMED;
		return classify_ports(RVS_AF_INET6, nexthdr, saddr, daddr, p);
	}
	if (nexthdr == IPPROTO_ICMPV6) {
		struct icmp6hdr *icmp6 = l4;
		struct ipv6hdr *inner;
		struct ports *ip;

		if ((void *)(icmp6 + 1) > end)
			return STAT_MALFORMED;
		if (icmp6->icmp6_type == ICMPV6_ECHO_REQUEST)
			return has_addr(&vip_addrs, RVS_AF_INET6, daddr) ? STAT_VIP_ECHO : NOT_OURS;
		if (icmp6->icmp6_type == 135 /* NDISC_NEIGHBOUR_SOLICITATION */) {
			/* Body: 4 reserved bytes (already inside icmp6hdr), then the target. */
			__u8 *target = (void *)(icmp6 + 1);

			if ((void *)(target + 16) > end)
				return STAT_MALFORMED;
			return has_addr(&vip_addrs, RVS_AF_INET6, target) ? STAT_NS : NOT_OURS;
		}
		if (icmp6->icmp6_type < ICMPV6_DEST_UNREACH || icmp6->icmp6_type > ICMPV6_PARAMPROB)
			return NOT_OURS;
		/* Errors (types 1-4) quote the offending packet; ours never carry extension headers. */
		inner = (void *)(icmp6 + 1);
		if ((void *)(inner + 1) > end)
			return STAT_MALFORMED;
		ip = (void *)(inner + 1);
		if ((void *)(ip + 1) > end)
			return STAT_MALFORMED;
		return classify_icmp_error(RVS_AF_INET6, inner->nexthdr, (__u8 *)&inner->saddr,
					   (__u8 *)&inner->daddr, ip, daddr);
	}
	return NOT_OURS;
}

/* ---- Fast path (docs/fastpath.md) ------------------------------------------------------ */

/* fast_path() result: the frame goes on to the classification (and so to the engine). */
#define FAST_FALL_THROUGH (-1)

#define IP_DF 0x4000
#define IP_FRAG_MASK 0x3fff /* MF and the fragment offset */
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define ECN_MASK 0x03
#define ECN_ECT0 0x02
#define ECN_CE 0x03
/* Longest IP datagram the fast path looks at. XDP buffers without fragments are one page, so
 * no real frame comes near; the bound lets the verifier accept data + ip_len below. */
#define FAST_MAX_IP_LEN 0x3fff

/* TCP and UDP headers as far as the fast path reads them (linux/tcp.h and linux/udp.h would
 * do, but this keeps the flag byte and both checksums in plain sight). */
struct fast_tcphdr {
	__be16 source;
	__be16 dest;
	__be32 seq;
	__be32 ack_seq;
	__u8 doff_res;
	__u8 flags; /* CWR ECE URG ACK PSH RST SYN FIN */
	__be16 window;
	__sum16 check;
	__be16 urg_ptr;
};

struct fast_udphdr {
	__be16 source;
	__be16 dest;
	__be16 len;
	__sum16 check;
};

/*
 * Internet checksum arithmetic (RFC 1071, RFC 1624) on 16-bit words exactly as they sit in
 * memory: a ones'-complement sum does not depend on byte order (RFC 1071 §2.B), so packet
 * words and map words (both in network order) are combined without swapping.
 */
static __always_inline __u16 csum_fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* The sum of ~m + m' for one changed word m -> m'. */
static __always_inline __u32 csum_diff16(__u16 old, __u16 new)
{
	return (__u32)(__u16)~old + new;
}

/* The sum of ~m + m' over n changed words (2 for an IPv4 address, 8 for IPv6). */
static __always_inline __u32 csum_diff_words(const __u16 *old, const __u16 *new, int n)
{
	__u32 d = 0;

#pragma unroll
	for (int i = 0; i < n; i++)
		d += csum_diff16(old[i], new[i]);
	return d;
}

/*
 * RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). Unlike eqn. 2 it never yields -0 where a full
 * recomputation would not, so the result equals a full recomputation for every header the
 * fast path touches (all include a non-zero protocol word), and so equals what the engine's
 * rvs_wire::checksum::update16/update32/update_bytes produce.
 */
static __always_inline __u16 csum_update(__u16 check, __u32 diff)
{
	return ~csum_fold((__u32)(__u16)~check + diff);
}

/* UDP transmits a computed 0 as 0xffff (0 means "no checksum", RFC 768). */
static __always_inline __u16 udp_csum_update(__u16 check, __u32 diff)
{
	__u16 c = csum_update(check, diff);

	return c ? c : 0xffff;
}

/* Outer DSCP/ECN from the inner one: DSCP copied, ECN copied except CE -> ECT(0)
 * (RFC 6040 normal mode, Linux INET_ECN_encapsulate; rvs_wire::tunnel::ecn_encapsulate). */
static __always_inline __u8 ecn_encapsulate(__u8 ds)
{
	return (ds & ECN_MASK) == ECN_CE ? (ds & ~ECN_MASK) | ECN_ECT0 : ds;
}

static __always_inline void ipv4_decrement_ttl(struct iphdr *iph)
{
	__u16 *ttl_proto = (__u16 *)&iph->ttl; /* TTL is the high byte of the TTL/protocol word */
	__u16 old = *ttl_proto;

	iph->ttl--;
	iph->check = csum_update(iph->check, csum_diff16(old, *ttl_proto));
}

/* IPv6 traffic class: the 8 bits after the version nibble. */
static __always_inline __u8 ipv6_tclass(const struct ipv6hdr *ip6)
{
	const __u8 *b = (const void *)ip6;

	return (__u8)((b[0] & 0x0f) << 4) | (b[1] >> 4);
}

/*
 * NAT of one end of a TCP/UDP packet: address := addr1, port := port. dst selects the
 * destination (NAT_DST) or the source (NAT_SRC). The caller checked that the L4 header is in
 * the frame and that a UDP checksum is not 0. Same order of updates as the engine: IPv4 header
 * checksum, L4 checksum for the address (pseudo header), L4 checksum for the port.
 */
static __always_inline void nat_rewrite(void *l3, int v6, void *l4, void *data_end, __u8 proto,
					int dst, const struct fast_action *a)
{
	struct iphdr *iph = l3;
	struct ipv6hdr *ip6 = l3;
	__u16 *addr;
	__be16 *port;
	int words = v6 ? 8 : 2;
	__u32 d_addr, d_port;

	if (v6)
		addr = dst ? (__u16 *)&ip6->daddr : (__u16 *)&ip6->saddr;
	else
		addr = dst ? (__u16 *)&iph->daddr : (__u16 *)&iph->saddr;
	port = dst ? l4 + 2 : l4;
	d_addr = csum_diff_words(addr, (const __u16 *)a->addr1, words);
	d_port = csum_diff16(*port, a->port);

	if (!v6)
		iph->check = csum_update(iph->check, d_addr);
	if (proto == IPPROTO_TCP) {
		struct fast_tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return;
		th->check = csum_update(th->check, d_addr);
		th->check = csum_update(th->check, d_port);
	} else {
		struct fast_udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return;
		uh->check = udp_csum_update(uh->check, d_addr);
		uh->check = udp_csum_update(uh->check, d_port);
	}
	if (v6)
		__builtin_memcpy(addr, a->addr1, 16);
	else
		__builtin_memcpy(addr, a->addr1, 4);
	*port = a->port;
}

static __always_inline void set_macs(struct ethhdr *eth, const struct fast_action *a)
{
	__builtin_memcpy(eth->h_dest, a->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, a->src_mac, ETH_ALEN);
}

/*
 * TUNNEL4 / TUNNEL6: prepends the outer header (outer6: IPv6, else IPv4) in front of the inner
 * packet (inner6: IPv6, else IPv4; IPv6 in IPv4 never gets here) of ip_len bytes, moves the
 * Ethernet header to the new front, decrements the inner TTL / hop limit and copies it out.
 * Returns 0, -1 when nothing was changed (the caller punts), or -2 when the frame is no longer
 * what it was (the caller drops it; cannot happen once the head adjustment succeeded, but the
 * verifier needs the bounds checks).
 */
static __always_inline int tunnel_encap(struct xdp_md *ctx, const struct fast_action *a,
					__u32 ip_len, int outer6, int inner6)
{
	const int hdr = outer6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	const int inner_hdr = inner6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	void *data, *data_end, *inner;
	struct ethhdr *eth;
	long excess;
	__u8 ds, ttl;

	/* Ethernet padding after a short datagram would end up inside the outer packet's
	 * trailer; the engine drops it when it encapsulates, so do the same. */
	excess = (long)bpf_xdp_get_buff_len(ctx) - ETH_HLEN - (long)ip_len;
	if (excess > 0 && bpf_xdp_adjust_tail(ctx, (int)-excess))
		return -1;
	if (bpf_xdp_adjust_head(ctx, -hdr))
		return -1;

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	inner = data + ETH_HLEN + hdr;
	if (inner + inner_hdr > data_end)
		return -2;

	if (inner6) {
		struct ipv6hdr *ip6 = inner;

		ip6->hop_limit--;
		ttl = ip6->hop_limit;
		ds = ipv6_tclass(ip6);
	} else {
		struct iphdr *iph = inner;

		ipv4_decrement_ttl(iph);
		ttl = iph->ttl;
		ds = iph->tos;
	}
	ds = ecn_encapsulate(ds);

	set_macs(eth, a);
	if (outer6) {
		struct ipv6hdr *o = data + ETH_HLEN;
		__u8 *b = (void *)o;

		eth->h_proto = bpf_htons(ETH_P_IPV6);
		b[0] = 0x60 | (ds >> 4); /* version 6, traffic class, flow label 0 */
		b[1] = (__u8)(ds << 4);
		b[2] = 0;
		b[3] = 0;
		o->payload_len = bpf_htons((__u16)ip_len);
		o->nexthdr = inner6 ? IPPROTO_IPV6 : IPPROTO_IPIP;
		o->hop_limit = ttl;
		__builtin_memcpy(&o->saddr, a->addr2, 16);
		__builtin_memcpy(&o->daddr, a->addr1, 16);
	} else {
		struct iphdr *o = data + ETH_HLEN;
		const __u16 *w = (const void *)o;
		__u32 sum = 0;

		eth->h_proto = bpf_htons(ETH_P_IP);
		o->version = 4;
		o->ihl = 5;
		o->tos = ds;
		o->tot_len = bpf_htons((__u16)(ip_len + sizeof(*o)));
		/* ID 0 with DF: an atomic datagram (RFC 6864); only DF inner packets get here. */
		o->id = 0;
		o->frag_off = bpf_htons(IP_DF);
		o->ttl = ttl;
		o->protocol = IPPROTO_IPIP;
		o->check = 0;
		__builtin_memcpy(&o->saddr, a->addr2, 4);
		__builtin_memcpy(&o->daddr, a->addr1, 4);
#pragma unroll
		for (int i = 0; i < 10; i++)
			sum += w[i];
		o->check = ~csum_fold(sum);
	}
	return 0;
}

/*
 * Looks the frame up in fast_conns and, on a hit that passes the punt rules, rewrites it and
 * returns XDP_TX or XDP_REDIRECT. Returns FAST_FALL_THROUGH (frame unchanged, or at most its
 * Ethernet padding trimmed) for everything else, or XDP_DROP for a frame it half rewrote.
 */
static __always_inline int fast_path(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = NULL;
	struct ipv6hdr *ip6 = NULL;
	struct flow_key key = {};
	struct fast_action *a;
	struct fast_stats *st;
	__u32 cfg = CONFIG_FAST_PATH, ip_len, l4_min, *enabled;
	__u16 udp_check = 0;
	__u8 tcp_flags = 0, ttl, kind;
	void *l4;
	int action, v6;

	enabled = bpf_map_lookup_elem(&config, &cfg);
	if (!enabled || !*enabled)
		return FAST_FALL_THROUGH;
	if ((void *)(eth + 1) > data_end)
		return FAST_FALL_THROUGH;

	/*
	 * Only the layouts the rewrites handle at fixed offsets are looked up: untagged IPv4
	 * without options and not a fragment, IPv6 without extension headers. The rest are punted
	 * without a lookup (they are not counted as punts).
	 */
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		iph = (void *)(eth + 1);
		if ((void *)(iph + 1) > data_end)
			return FAST_FALL_THROUGH;
		if (iph->version != 4 || iph->ihl != 5 || (iph->frag_off & bpf_htons(IP_FRAG_MASK)))
			return FAST_FALL_THROUGH;
		key.family = RVS_AF_INET;
		key.proto = iph->protocol;
		__builtin_memcpy(key.saddr, &iph->saddr, 4);
		__builtin_memcpy(key.daddr, &iph->daddr, 4);
		ip_len = bpf_ntohs(iph->tot_len);
		ttl = iph->ttl;
		l4 = iph + 1;
		v6 = 0;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end)
			return FAST_FALL_THROUGH;
		if (ip6->version != 6)
			return FAST_FALL_THROUGH;
		key.family = RVS_AF_INET6;
		key.proto = ip6->nexthdr; /* an extension header is neither TCP nor UDP */
		__builtin_memcpy(key.saddr, &ip6->saddr, 16);
		__builtin_memcpy(key.daddr, &ip6->daddr, 16);
		ip_len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
		ttl = ip6->hop_limit;
		l4 = ip6 + 1;
		v6 = 1;
	} else {
		return FAST_FALL_THROUGH;
	}

	if (key.proto == IPPROTO_TCP) {
		struct fast_tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return FAST_FALL_THROUGH;
		key.sport = th->source;
		key.dport = th->dest;
		tcp_flags = th->flags;
		l4_min = sizeof(*th);
	} else if (key.proto == IPPROTO_UDP) {
		struct fast_udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return FAST_FALL_THROUGH;
		key.sport = uh->source;
		key.dport = uh->dest;
		udp_check = uh->check;
		l4_min = sizeof(*uh);
	} else {
		return FAST_FALL_THROUGH;
	}

	a = bpf_map_lookup_elem(&fast_conns, &key);
	if (!a)
		return FAST_FALL_THROUGH;

	/* Punt rules: the engine handles these packets as in phase 1. */
	kind = a->kind;
	if (tcp_flags & (TCP_SYN | TCP_FIN | TCP_RST)) {
		count(STAT_FAST_PUNT_TCP_FLAGS);
		return FAST_FALL_THROUGH;
	}
	if (ttl <= 1) {
		count(STAT_FAST_PUNT_TTL);
		return FAST_FALL_THROUGH;
	}
	if (ip_len > a->max_len) {
		count(STAT_FAST_PUNT_TOO_BIG);
		return FAST_FALL_THROUGH;
	}
	if (ip_len > FAST_MAX_IP_LEN || ip_len < (v6 ? sizeof(*ip6) : sizeof(*iph)) + l4_min ||
	    data + ETH_HLEN + ip_len > data_end) {
		count(STAT_FAST_PUNT_TRUNCATED);
		return FAST_FALL_THROUGH;
	}
	if (kind < FAST_ROUTE || kind > FAST_TUNNEL6) {
		count(STAT_FAST_PUNT_BAD_ENTRY);
		return FAST_FALL_THROUGH;
	}
	if ((kind == FAST_NAT_DST || kind == FAST_NAT_SRC) && key.proto == IPPROTO_UDP &&
	    udp_check == 0) {
		/* IPv4 "no checksum": the engine computes a full one. (Invalid for IPv6, where the
		 * engine does the same, so it is punted too.) */
		count(STAT_FAST_PUNT_UDP_CSUM0);
		return FAST_FALL_THROUGH;
	}
	if (kind == FAST_TUNNEL4 && (v6 || !(iph->frag_off & bpf_htons(IP_DF)))) {
		/* The outer header would need a fresh IP ID, which only the engine assigns. */
		count(STAT_FAST_PUNT_TUNNEL);
		return FAST_FALL_THROUGH;
	}

	/* Decide the egress before touching the frame, so a failure can still punt it. */
	if (a->egress_ifindex == ctx->ingress_ifindex) {
		action = XDP_TX;
	} else {
		action = bpf_redirect_map(&tx_ports, a->egress_slot, 0);
		if (action != XDP_REDIRECT) {
			count(STAT_FAST_REDIRECT_FAIL);
			return FAST_FALL_THROUGH;
		}
	}

	if (kind == FAST_TUNNEL4 || kind == FAST_TUNNEL6) {
		int err;

		if (kind == FAST_TUNNEL4)
			err = tunnel_encap(ctx, a, ip_len, 0, 0);
		else if (v6)
			err = tunnel_encap(ctx, a, ip_len, 1, 1);
		else
			err = tunnel_encap(ctx, a, ip_len, 1, 0);
		if (err) {
			count(STAT_FAST_ERROR);
			return err == -1 ? FAST_FALL_THROUGH : XDP_DROP;
		}
	} else {
		if (v6)
			ip6->hop_limit--;
		else
			ipv4_decrement_ttl(iph);
		if (kind == FAST_NAT_DST || kind == FAST_NAT_SRC)
			nat_rewrite(v6 ? (void *)ip6 : (void *)iph, v6, l4, data_end, key.proto,
				    kind == FAST_NAT_DST, a);
		set_macs(eth, a);
	}

	a->last_seen_ns = bpf_ktime_get_ns();
	st = bpf_map_lookup_elem(&fast_stats, &a->stats_index);
	if (st) {
		st->packets += 1; /* per-CPU slot: no atomics needed */
		st->bytes += ip_len;
	}
	count(STAT_FAST_HIT);
	return action;
}

/* Hands a frame for rvs to the AF_XDP socket of its (interface, rx queue), if there is one. */
static __always_inline long to_xsk(struct xdp_md *ctx)
{
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 queue = ctx->rx_queue_index;
	__u32 *slot = bpf_map_lookup_elem(&iface_slots, &ifindex);

	if (!slot || *slot >= RVS_MAX_IFACES || queue >= RVS_MAX_QUEUES)
		return XDP_PASS;
	/* Falls back to XDP_PASS when no socket is registered for this queue, so a director
	 * whose workers are not (yet) running degrades to "the kernel sees everything". */
	return bpf_redirect_map(&xsks, *slot * RVS_MAX_QUEUES + queue, XDP_PASS);
}

SEC("xdp")
int rvs_steer(struct xdp_md *ctx)
{
	int fast = fast_path(ctx);
	void *data, *data_end;
	__be16 proto = 0;
	int off, cat;
	long verdict;

	if (fast != FAST_FALL_THROUGH)
		return fast;

	/* Read after the fast path, which may have trimmed the frame's padding. */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	off = rvs_parse_l2(data, data_end, &proto);
	if (off < 0) {
		cat = STAT_MALFORMED;
	} else if (proto == bpf_htons(ETH_P_IP)) {
		cat = classify_ipv4(data + off, data_end);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		cat = classify_ipv6(data + off, data_end);
	} else if (proto == bpf_htons(ETH_P_ARP)) {
		cat = classify_arp(data + off, data_end);
	} else {
		cat = NOT_OURS;
	}

	if (cat == NOT_OURS || cat == STAT_MALFORMED) {
		count(cat == NOT_OURS ? STAT_PASS : STAT_MALFORMED);
		return XDP_PASS;
	}
	count(cat);
	verdict = to_xsk(ctx);
	count(verdict == XDP_REDIRECT ? STAT_REDIRECT : STAT_NO_XSK);
	return verdict;
}

/* Dual licence so GPL-only helpers stay usable; the source itself is MIT OR Apache-2.0 like
 * the rest of rvs. */
char LICENSE[] SEC("license") = "Dual MIT/GPL";
