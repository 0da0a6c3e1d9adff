//! rvs-io integration tests. The network tests need root: they build their own network
//! namespaces (removed on drop, also on failure), use only 198.18.0.0/15 and 2001:db8::/32,
//! and print `SKIP ...` and pass when they cannot run.

mod bpf_classify;
mod detach;
mod fastpath;
mod fastpath_live;
mod netlink;
mod pkt;
mod steering;
mod sysctl_netns;
mod throughput;
mod traffic_gen;
mod tun_decap;
mod util;
mod xsk;
