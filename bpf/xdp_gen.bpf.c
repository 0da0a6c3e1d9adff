// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * rvs_xdp_gen: a traffic generator for tests and benchmarks (rvs_io::xdp::TrafficGen).
 *
 * Userspace runs it with BPF_PROG_RUN in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES) on
 * a template frame, many times over: each run returns XDP_TX, which the kernel turns into a
 * transmission out of the interface named in the run's context. No socket, no skb: this is
 * how xdp-trafficgen pushes millions of frames per second.
 *
 * The kernel recycles the frame buffers between runs without restoring their contents, and
 * whatever the frames meet downstream (the rvs fast path, for one) may rewrite them in place.
 * So every run first copies the template's first GEN_COPY bytes back over the frame; the
 * template frame must be at least that long.
 */
#include "rvs_bpf.h"

#define GEN_COPY 64

struct gen_template {
	__u8 data[GEN_COPY];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_template);
} gen_template SEC(".maps");

SEC("xdp")
int rvs_xdp_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct gen_template *t;
	__u32 zero = 0;

	t = bpf_map_lookup_elem(&gen_template, &zero);
	if (!t || data + GEN_COPY > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data, t->data, GEN_COPY);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
