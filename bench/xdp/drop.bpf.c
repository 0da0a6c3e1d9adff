// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * Where the real servers count what reaches them during the packets/s runs: drop every frame at
 * the earliest point (native XDP on the real server's interface), so the real servers cost the
 * shared CPUs almost nothing. bench/run reads the count from the veth's own XDP statistics
 * (`ethtool -S`: rx_queue_0_xdp_drops).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int bench_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
