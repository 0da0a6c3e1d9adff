/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Definitions shared by the rvs XDP programs (steer.bpf.c, tun_decap.bpf.c) and mirrored
 * byte for byte by crates/rvs-io/src/xdp.rs. Change both sides together: the Rust side checks
 * the key sizes when it opens the maps, and the unit tests there pin the layouts.
 */
#ifndef RVS_BPF_H
#define RVS_BPF_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Linux address family numbers, used in map keys (no libc in BPF). */
#define RVS_AF_INET 2
#define RVS_AF_INET6 10

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

/*
 * A virtual service (or, in nat_sources, a NAT real server) as seen on the wire.
 * port is in network byte order; 0 means "all ports" (IPVS port-0 services).
 * An IPv4 address fills addr[0..4] and leaves the rest zero.
 */
struct vip_key {
	__u8 family;
	__u8 proto;
	__be16 port;
	__u8 addr[16];
};

/* An address alone (VIPs for ARP/ND/echo/fragments, this host's addresses, ...). */
struct addr_key {
	__u8 family;
	__u8 pad[3]; /* always zero: hashed as part of the key */
	__u8 addr[16];
};

/* 802.1Q / 802.1ad tag; the kernel's struct vlan_hdr lives in a non-UAPI header. */
struct rvs_vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* Number of per-CPU counter slots; the programs use the first few, userspace reads all. */
#define RVS_STATS_SLOTS 16

/*
 * Walks the Ethernet header and up to two VLAN tags (QinQ). Returns the byte offset of the
 * layer-3 header and stores its EtherType (network order) in *proto, or returns -1 when the
 * frame is too short. Two tags is what 802.1ad allows in practice; a third is left to the kernel.
 */
static __always_inline int rvs_parse_l2(void *data, void *data_end, __be16 *proto)
{
	struct ethhdr *eth = data;
	int off = sizeof(*eth);

	if ((void *)(eth + 1) > data_end)
		return -1;
	*proto = eth->h_proto;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		struct rvs_vlan_hdr *vh = data + off;

		if (*proto != bpf_htons(ETH_P_8021Q) && *proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > data_end)
			return -1;
		*proto = vh->encap_proto;
		off += sizeof(*vh);
	}
	return off;
}

static __always_inline void rvs_addr4(__u8 dst[16], __be32 a)
{
	__builtin_memset(dst, 0, 16);
	__builtin_memcpy(dst, &a, 4);
}

#endif /* RVS_BPF_H */
