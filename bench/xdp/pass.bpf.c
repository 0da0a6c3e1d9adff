// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * XDP_PASS, for the LAN-side peer of the director's interface in the ceiling run only: a veth
 * schedules its peer's NAPI after XDP_TX only when the peer has an XDP program (with GRO alone the
 * peer's ring fills after 256 frames and every further XDP_TX fails with xdp_tx_errors).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int bench_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
