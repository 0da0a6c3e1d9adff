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
 * Userspace (crates/rvs-io/src/xdp.rs) fills the maps; see rvs_bpf.h for the key layouts.
 */
#include "rvs_bpf.h"
#include <linux/icmpv6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

/* AF_XDP sockets, one per rx queue. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

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

SEC("xdp")
int rvs_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__be16 proto = 0;
	int off, cat;
	long verdict;

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
	/* Falls back to XDP_PASS when no socket is registered for this queue, so a director
	 * whose workers are not (yet) running degrades to "the kernel sees everything". */
	verdict = bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
	count(verdict == XDP_REDIRECT ? STAT_REDIRECT : STAT_NO_XSK);
	return verdict;
}

/* Dual licence so GPL-only helpers (bpf_fib_lookup for the phase-2 fast path) stay usable;
 * the source itself is MIT OR Apache-2.0 like the rest of rvs. */
char LICENSE[] SEC("license") = "Dual MIT/GPL";
