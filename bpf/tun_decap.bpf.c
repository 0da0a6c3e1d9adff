// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * rvs TUN-mode real-server decapsulation (XDP).
 *
 * IPVS's tunnel method sends the client's packet to the real server inside an outer IPv4 or
 * IPv6 header (IPIP, 4in6, 6in4 or IP6IP6). A real server normally decapsulates with the ipip
 * module; on a kernel without it this program does the same job: when the outer destination is
 * one of this host's addresses (local_addrs) and the inner destination is a VIP this real server
 * holds on lo (decap_vips), it removes the outer header, fixes the EtherType and returns
 * XDP_PASS, so the kernel delivers the inner packet locally as if it had arrived bare.
 * Everything else passes untouched.
 *
 * Outer fragments are left alone: the inner packet would be incomplete, and IPVS sets DF
 * on tunnelled IPv4 packets anyway.
 */
#include "rvs_bpf.h"
#include <linux/ip.h>
#include <linux/ipv6.h>

#ifndef IPPROTO_IPIP
#define IPPROTO_IPIP 4
#endif
#ifndef IPPROTO_IPV6
#define IPPROTO_IPV6 41
#endif

/* VIPs held by this real server (on lo). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct addr_key);
	__type(value, __u32);
} decap_vips SEC(".maps");

/* This host's own addresses: valid outer destinations. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct addr_key);
	__type(value, __u32);
} local_addrs SEC(".maps");

/* Counter slots; mirrored by DecapCounters in xdp.rs. */
enum {
	STAT_PASS = 0,      /* not a tunnel packet for us */
	STAT_DECAP_V4 = 1,  /* decapsulated, inner IPv4 */
	STAT_DECAP_V6 = 2,  /* decapsulated, inner IPv6 */
	STAT_NOT_LOCAL = 3, /* tunnel packet, outer destination not ours: passed */
	STAT_NOT_VIP = 4,   /* tunnel packet, inner destination not a VIP: passed */
	STAT_FRAGMENT = 5,  /* fragmented outer packet: passed */
	STAT_ERROR = 6,     /* truncated packet or bpf_xdp_adjust_head failure: passed */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RVS_STATS_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline int pass(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &slot);

	if (v)
		*v += 1;
	return XDP_PASS;
}

static __always_inline int has_addr(void *map, __u8 family, const __u8 addr[16])
{
	struct addr_key k = {};

	k.family = family;
	__builtin_memcpy(k.addr, addr, 16);
	return bpf_map_lookup_elem(map, &k) != NULL;
}

/*
 * Checks the inner header right after the outer one and returns the slot to count on
 * success (STAT_DECAP_*), or the reason to leave the packet alone.
 */
static __always_inline int inner_is_vip(__u8 inner_proto, void *inner, void *end)
{
	__u8 addr[16];

	if (inner_proto == IPPROTO_IPIP) {
		struct iphdr *iph = inner;

		if ((void *)(iph + 1) > end)
			return STAT_ERROR;
		if (iph->version != 4)
			return STAT_NOT_VIP;
		rvs_addr4(addr, iph->daddr);
		return has_addr(&decap_vips, RVS_AF_INET, addr) ? STAT_DECAP_V4 : STAT_NOT_VIP;
	}
	{
		struct ipv6hdr *ip6 = inner;

		if ((void *)(ip6 + 1) > end)
			return STAT_ERROR;
		if (ip6->version != 6)
			return STAT_NOT_VIP;
		__builtin_memcpy(addr, &ip6->daddr, 16);
		return has_addr(&decap_vips, RVS_AF_INET6, addr) ? STAT_DECAP_V6 : STAT_NOT_VIP;
	}
}

/*
 * Moves the L2 header (Ethernet + tags, l2len bytes) forward by strip bytes, over the outer IP
 * header, and sets its innermost EtherType. l2len is a compile-time constant at each call site,
 * so the copies have fixed sizes the verifier can check.
 */
#define L2_MAX 22
static __always_inline int strip_outer(struct xdp_md *ctx, __u32 l2len, __u32 strip,
				       __be16 inner_proto)
{
	__u8 l2[L2_MAX];
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + L2_MAX > data_end) /* an IP header follows, so 22 bytes are always there */
		return -1;
	__builtin_memcpy(l2, data, L2_MAX);
	if (bpf_xdp_adjust_head(ctx, (int)strip))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + L2_MAX > data_end)
		return -1;
	/* Write back only l2len bytes: the rest is the inner IP header. */
	if (l2len == 14)
		__builtin_memcpy(data, l2, 12);
	else if (l2len == 18)
		__builtin_memcpy(data, l2, 16);
	else
		__builtin_memcpy(data, l2, 20);
	*(__be16 *)(data + l2len - 2) = inner_proto;
	return 0;
}

SEC("xdp")
int rvs_tun_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__be16 proto = 0;
	__u8 daddr[16];
	__u8 inner_proto;
	__u32 strip;
	void *inner;
	int off, res;

	off = rvs_parse_l2(data, data_end, &proto);
	if (off < 0)
		return pass(STAT_PASS);
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = data + off;

		if ((void *)(iph + 1) > data_end)
			return pass(STAT_PASS);
		if (iph->version != 4 ||
		    (iph->protocol != IPPROTO_IPIP && iph->protocol != IPPROTO_IPV6))
			return pass(STAT_PASS);
		if (iph->frag_off & bpf_htons(0x3fff))
			return pass(STAT_FRAGMENT);
		strip = iph->ihl * 4;
		if (strip < sizeof(*iph))
			return pass(STAT_PASS);
		inner_proto = iph->protocol;
		rvs_addr4(daddr, iph->daddr);
		if (!has_addr(&local_addrs, RVS_AF_INET, daddr))
			return pass(STAT_NOT_LOCAL);
		inner = (void *)iph + strip;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + off;

		if ((void *)(ip6 + 1) > data_end)
			return pass(STAT_PASS);
		/* Tunnel headers from IPVS carry no extension headers. */
		if (ip6->version != 6 ||
		    (ip6->nexthdr != IPPROTO_IPIP && ip6->nexthdr != IPPROTO_IPV6))
			return pass(STAT_PASS);
		strip = sizeof(*ip6);
		inner_proto = ip6->nexthdr;
		__builtin_memcpy(daddr, &ip6->daddr, 16);
		if (!has_addr(&local_addrs, RVS_AF_INET6, daddr))
			return pass(STAT_NOT_LOCAL);
		inner = ip6 + 1;
	} else {
		return pass(STAT_PASS);
	}

	res = inner_is_vip(inner_proto, inner, data_end);
	if (res != STAT_DECAP_V4 && res != STAT_DECAP_V6)
		return pass(res);

	proto = res == STAT_DECAP_V4 ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
	if (off == 14)
		res = strip_outer(ctx, 14, strip, proto) ? STAT_ERROR : res;
	else if (off == 18)
		res = strip_outer(ctx, 18, strip, proto) ? STAT_ERROR : res;
	else
		res = strip_outer(ctx, 22, strip, proto) ? STAT_ERROR : res;
	return pass(res);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
