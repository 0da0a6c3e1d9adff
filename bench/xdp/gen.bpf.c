// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * Packet generator for `rvs bench gen`: run with BPF_PROG_TEST_RUN in live-frames mode
 * (BPF_F_TEST_XDP_LIVE_FRAMES), every run turns the frame into an IPv4/UDP packet of a random
 * flow and transmits it with XDP_TX on the interface given in the context.
 *
 * The kernel initialises a live frame from data_in only when its page is first allocated and
 * recycles pages without resetting them, while the stack downstream rewrites frames in place
 * (MACs, TTL, NAT): so every run rewrites the whole header from `hdr`, not just the fields that
 * vary. The flow is (hdr.saddr + r % n_addrs, hdr.sport + (r >> 16) % n_ports) with r from
 * bpf_get_prandom_u32(). Both checksums are recomputed: the IPv4 header's, and the UDP one over
 * the pseudo-header and the UDP header (the payload is all zeros — the loader's template — and
 * nothing downstream writes to it). A real UDP checksum and DF (set in the template) matter: a
 * load balancer may treat checksum-0 datagrams or fragmentable packets specially (rvs's XDP fast
 * path punts both to its slow path in NAT and TUN mode).
 *
 * `hdr`, `n_addrs` and `n_ports` are set by the loader (aya) before the program is loaded.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define HDR_LEN (sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr))

const volatile __u8 hdr[HDR_LEN] = {};
const volatile __u32 n_addrs = 1;
const volatile __u32 n_ports = 1;

SEC("xdp")
int bench_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *p = data;

	if (data + HDR_LEN > end)
		return XDP_ABORTED;
#pragma unroll
	for (int i = 0; i < HDR_LEN; i++)
		p[i] = hdr[i];

	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct udphdr *udp = (void *)(ip + 1);
	__u32 r = bpf_get_prandom_u32();
	ip->saddr = bpf_htonl(bpf_ntohl(ip->saddr) + r % n_addrs);
	udp->source = bpf_htons(bpf_ntohs(udp->source) + (__u16)((r >> 16) % n_ports));

	__u32 sum = 0;
	__u16 *w = (__u16 *)ip;
	ip->check = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->check = (__u16)~sum;

	/* Pseudo-header (addresses, protocol, length) + UDP header; words in network order. */
	sum = w[6] + w[7] + w[8] + w[9] + bpf_htons(IPPROTO_UDP) + udp->len;
	sum += udp->source + udp->dest + udp->len;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	udp->check = (__u16)~sum ? (__u16)~sum : 0xffff;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
