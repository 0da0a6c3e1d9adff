// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * The test bed's ceiling: the least work an L4 load balancer can do in the lab topology.
 *
 * Attached (native XDP) to the director's LAN interface in the DR topology. Every IPv4 TCP/UDP
 * packet to VIP:any is given to one of three real servers chosen by a hash of
 * (source address, source port, destination port) — stateless and per-flow consistent, so TCP
 * works — by rewriting the Ethernet addresses and bouncing it back out with XDP_TX (LVS direct
 * routing without a connection table, scheduler or AF_XDP). Everything else is passed.
 *
 * Built by bench/run with clang; the addresses come in as -D macros (48-bit MACs as integers,
 * the VIP as a host-order integer), so the object has no maps and no .rodata.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#if !defined(VIP) || !defined(OWN_MAC) || !defined(RS0_MAC) || !defined(RS1_MAC) || !defined(RS2_MAC)
#error "build with -DVIP=0x... -DOWN_MAC=0x... -DRS0_MAC=0x... -DRS1_MAC=0x... -DRS2_MAC=0x..."
#endif

static __always_inline void put_mac(__u8 *d, __u64 mac)
{
	d[0] = mac >> 40;
	d[1] = mac >> 32;
	d[2] = mac >> 24;
	d[3] = mac >> 16;
	d[4] = mac >> 8;
	d[5] = mac;
}

SEC("xdp")
int bench_fwd(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u16 *ports = (void *)(ip + 1);

	if ((void *)(ports + 2) > end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->daddr != bpf_htonl(VIP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_UDP && ip->protocol != IPPROTO_TCP)
		return XDP_PASS;

	__u32 h = (ip->saddr ^ ((__u32)ports[0] << 16 | ports[1])) * 0x9e3779b1u;
	switch ((h >> 16) % 3) {
	case 0:
		put_mac(eth->h_dest, RS0_MAC);
		break;
	case 1:
		put_mac(eth->h_dest, RS1_MAC);
		break;
	default:
		put_mac(eth->h_dest, RS2_MAC);
		break;
	}
	put_mac(eth->h_source, OWN_MAC);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
