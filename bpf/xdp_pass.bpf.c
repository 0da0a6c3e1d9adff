// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * rvs_xdp_pass: passes every frame to the kernel.
 *
 * Its only job is to be attached. A veth delivers frames that an XDP program sends out of
 * its peer (XDP_TX, or XDP_REDIRECT through a devmap, as the rvs fast path does) only when
 * this end has NAPI running, and attaching an XDP program in native mode is what turns NAPI
 * on (alternatively GRO: `ethtool -K <dev> gro on`). Without either, those frames are dropped
 * on the veth (ethtool -S shows them as peer_tq_xdp_xmit_err). The rvs lab puts this program
 * on the peer ends of the veths a director serves.
 */
#include "rvs_bpf.h"

SEC("xdp")
int rvs_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
