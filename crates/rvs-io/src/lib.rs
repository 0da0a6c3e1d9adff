//! Everything in rvs that touches the kernel, and the only rvs crate with `unsafe`.
//!
//! * [`xdp`] — the XDP programs (`bpf/*.bpf.c`, built by `build.rs`): [`xdp::Steering`] on a
//!   director (one program for all its interfaces: the fast path forwards established flows
//!   itself, VIP traffic, ARP/ND for VIPs and NAT return traffic go to AF_XDP, the rest to the
//!   kernel), [`xdp::TunDecap`] on TUN-mode real servers, [`xdp::XdpPass`] for the far ends of
//!   veths and [`xdp::TrafficGen`] for load tests; all detach when dropped or when the process
//!   dies.
//! * [`xsk`] — AF_XDP sockets with their UMEM ([`xsk::XskSocket`]): batched RX/TX over frames.
//! * [`netlink`] — links, addresses, neighbours, routes ([`netlink::Netlink`]), and whether an
//!   XDP program is attached ([`xdp::query`]).
//! * [`packet`] — AF_PACKET sockets for the odd frame sent outside the data path (GARP, NA).
//! * [`sysctl`] and [`netns`] — `/proc/sys` values and per-thread network namespaces.
//!
//! A director's data path: [`xdp::Steering::load`] once, [`xdp::Steering::attach`] on each
//! interface (which gives its slot), one [`xsk::XskSocket::open`] per interface and RX queue
//! registered with [`xdp::Steering::register_xsk`], the service table mirrored with
//! `add_vip`/`add_vip_addr`/`add_nat_source`, the engine's fast-path entries with
//! `fast_upsert`/`fast_remove`, and one worker thread per RX queue running the loop shown in
//! [`xsk`].
//!
//! Raw system calls go through the private `sys` module (and ring memory through `xsk`); every
//! `unsafe` block carries a `// SAFETY:` comment.

mod error;
mod sys;

pub mod netlink;
pub mod netns;
pub mod packet;
pub mod sysctl;
pub mod xdp;
pub mod xsk;

pub use error::{BoxError, IoError};
