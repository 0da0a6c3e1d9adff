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
#define RVS_STATS_SLOTS 32

/*
 * One steering program serves every interface of a director. Each interface gets a slot
 * (0..RVS_MAX_IFACES-1): iface_slots maps its ifindex to the slot, tx_ports maps the slot to
 * the ifindex for redirects, and the AF_XDP socket of (slot, rx queue) sits in xsks at
 * slot * RVS_MAX_QUEUES + queue.
 */
#define RVS_MAX_IFACES 64
#define RVS_MAX_QUEUES 64

/*
 * Fast path (docs/fastpath.md): a TCP/UDP packet as received. An IPv4 address fills the first
 * four bytes of its array and leaves the rest zero; ports are in network order.
 */
struct flow_key {
	__u8 family; /* RVS_AF_INET / RVS_AF_INET6 */
	__u8 proto;  /* IPPROTO_TCP / IPPROTO_UDP */
	__be16 sport;
	__be16 dport;
	__u16 pad; /* always zero: hashed as part of the key */
	__u8 saddr[16];
	__u8 daddr[16];
};

/* fast_action.kind */
enum {
	FAST_ROUTE = 1,   /* DR: next-hop MACs only */
	FAST_NAT_DST = 2, /* daddr := addr1, dport := port */
	FAST_NAT_SRC = 3, /* saddr := addr1, sport := port */
	FAST_TUNNEL4 = 4, /* prepend IPv4 addr2 -> addr1 */
	FAST_TUNNEL6 = 5, /* prepend IPv6 addr2 -> addr1 */
};

/* What the engine wants done with a flow's packets; 72 bytes, no implicit padding. */
struct fast_action {
	__u8 kind;
	__u8 pad0;
	__u16 max_len;	       /* largest IP datagram forwarded here (host order); larger: punt */
	__u32 egress_ifindex;  /* == ingress ifindex: XDP_TX, else redirect through tx_ports */
	__u32 egress_slot;     /* key in tx_ports */
	__u32 stats_index;     /* slot in fast_stats */
	__u8 dst_mac[6];
	__u8 src_mac[6];
	__be16 port;	       /* NAT_DST: new dport; NAT_SRC: new sport */
	__u16 pad1;
	__u8 addr1[16];	       /* NAT: new address; TUNNEL: outer daddr (RIP) */
	__u8 addr2[16];	       /* TUNNEL: outer saddr (DIP) */
	__u64 last_seen_ns;    /* bpf_ktime_get_ns() of the last packet forwarded */
};

/* The Rust side (rvs_io::xdp::FlowKey/FastAction) writes these offsets; keep them fixed. */
_Static_assert(sizeof(struct flow_key) == 40, "flow_key layout");
_Static_assert(__builtin_offsetof(struct flow_key, saddr) == 8, "flow_key layout");
_Static_assert(sizeof(struct fast_action) == 72, "fast_action layout");
_Static_assert(__builtin_offsetof(struct fast_action, dst_mac) == 16, "fast_action layout");
_Static_assert(__builtin_offsetof(struct fast_action, port) == 28, "fast_action layout");
_Static_assert(__builtin_offsetof(struct fast_action, addr1) == 32, "fast_action layout");
_Static_assert(__builtin_offsetof(struct fast_action, last_seen_ns) == 64, "fast_action layout");

/* Per-CPU packet and byte counts of one fast_stats slot. */
struct fast_stats {
	__u64 packets;
	__u64 bytes; /* IP datagram length as received */
};

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
