// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * rvs_xdp_pass: passes every frame to the kernel.
 *
 * Its only job is to be attached. A veth accepts the frames an XDP program sends out of its
 * peer only in some states (drivers/net/veth.c, checked on 6.18 by
 * crates/rvs-io/tests/fastpath_live.rs):
 *
 *   - a redirect into the peer (ndo_xdp_xmit, what the fast path does towards another
 *     interface) needs this end's NAPI, which an XDP program attached in native mode or
 *     GRO (`ethtool -K <dev> gro on`) turns on;
 *   - XDP_TX out of the peer needs an XDP program on this end: with GRO alone the frames are
 *     queued but this end's NAPI is not woken for them, so they sit until other traffic comes.
 *
 * Otherwise the frames are dropped (counted as the peer's xdp_tx_errors or as rx drops here).
 * The rvs lab puts this program on the far ends of the veths a director serves.
 */
#include "rvs_bpf.h"

SEC("xdp")
int rvs_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
