// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * rvs_xdp_gen: a traffic generator for tests and benchmarks (rvs_io::xdp::TrafficGen, driven
 * by `rvs bench gen` in bench/run).
 *
 * Userspace runs it with BPF_PROG_RUN in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES) on
 * a template frame, many times over: each run returns XDP_TX, which the kernel turns into a
 * transmission out of the interface named in the run's context. No socket, no skb: this is
 * how xdp-trafficgen pushes millions of frames per second.
 *
 * The kernel initialises a live frame from the template only when its page is first
 * allocated and recycles pages without restoring their contents, while whatever the frames
 * meet downstream (the rvs fast path, NAT, a bridge) may rewrite them in place. So every run
 * first copies the template's first min(frame length, GEN_COPY) bytes back over the frame:
 * every header rvs rewrites lies inside them. The template is at least GEN_MIN bytes long.
 *
 * Flows: with n_addrs or n_ports above 1 (userspace allows that only for an untagged IPv4
 * TCP or UDP template without options), every run picks r = bpf_get_prandom_u32() and sends
 * from (template saddr + r % n_addrs, template sport + (r >> 16) % n_ports); the IPv4 header
 * checksum and the TCP/UDP checksum are updated for the new source (RFC 1624), so the frames
 * carry valid checksums whatever the payload, like a socket's (load balancers may treat a UDP
 * checksum of 0 specially: rvs's fast path punts such NAT datagrams). A UDP template without
 * a checksum (0) keeps none.
 */
#include "rvs_bpf.h"

/* The shortest template: a 64-byte Ethernet frame on the wire without its FCS. */
#define GEN_MIN 60
/* Template bytes restored before each transmission (when the frame is that long). */
#define GEN_COPY 64

/* gen_config.l4: which transport checksum follows the source (set by userspace). */
#define GEN_L4_NONE 0
#define GEN_L4_UDP 1
#define GEN_L4_TCP 2

/* Offsets in an untagged IPv4 frame without options. */
#define GEN_IP 14
#define GEN_L4 34

/* Mirrored by rvs_io::xdp::TrafficGen (RawGenConfig). */
struct gen_config {
	__u8 data[GEN_COPY];
	__u32 n_addrs; /* source addresses: template saddr + 0 .. n_addrs - 1 (1: fixed) */
	__u32 n_ports; /* source ports: template sport + 0 .. n_ports - 1 (1: fixed) */
	__u32 l4;      /* GEN_L4_*: the checksum to update when the source varies */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_config);
} gen_config SEC(".maps");

/* Ones'-complement arithmetic on 16-bit words as they sit in memory (RFC 1071 §2.B). */
static __always_inline __u16 gen_fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), with diff the sum of ~m + m' of the changed words. */
static __always_inline __u16 gen_csum_update(__u16 check, __u32 diff)
{
	return ~gen_fold((__u32)(__u16)~check + diff);
}

static __always_inline __u32 gen_diff16(__u16 old, __u16 new)
{
	return (__u32)(__u16)~old + new;
}

SEC("xdp")
int rvs_xdp_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *p = data;
	struct gen_config *c;
	__u32 zero = 0;

	c = bpf_map_lookup_elem(&gen_config, &zero);
	if (!c || data + GEN_MIN > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(p, c->data, GEN_MIN);
#pragma unroll
	for (int i = GEN_MIN; i < GEN_COPY; i++) {
		if (data + i + 1 > data_end)
			break;
		p[i] = c->data[i];
	}
	if (c->n_addrs <= 1 && c->n_ports <= 1)
		return XDP_TX;

	/* IPv4 header at 14, ports at 34, UDP checksum at 40, TCP checksum at 50: all inside
	 * the GEN_MIN bytes checked above. */
	__u16 *saddr = (__u16 *)(p + GEN_IP + 12);
	__u16 *check = (__u16 *)(p + GEN_IP + 10);
	__u16 *sport = (__u16 *)(p + GEN_L4);
	__u32 r = bpf_get_prandom_u32();
	__u16 a0 = saddr[0], a1 = saddr[1], port = *sport;
	__u32 addr = ((__u32)bpf_ntohs(a0) << 16 | bpf_ntohs(a1)) + r % c->n_addrs;

	saddr[0] = bpf_htons(addr >> 16);
	saddr[1] = bpf_htons(addr & 0xffff);
	*sport = bpf_htons(bpf_ntohs(port) + (__u16)((r >> 16) % c->n_ports));

	__u32 d_addr = gen_diff16(a0, saddr[0]) + gen_diff16(a1, saddr[1]);
	__u32 d_port = gen_diff16(port, *sport);

	*check = gen_csum_update(*check, d_addr);
	if (c->l4 == GEN_L4_UDP) {
		__u16 *l4 = (__u16 *)(p + GEN_L4 + 6);
		__u16 s = gen_csum_update(*l4, d_addr + d_port);

		/* A computed 0 is sent as 0xffff: 0 means "no checksum" (RFC 768). */
		*l4 = s ? s : 0xffff;
	} else if (c->l4 == GEN_L4_TCP) {
		__u16 *l4 = (__u16 *)(p + GEN_L4 + 16);

		*l4 = gen_csum_update(*l4, d_addr + d_port);
	}
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
