//! The XDP programs of rvs (built from `bpf/` by `build.rs`) and their maps.
//!
//! * [`Steering`] runs on a director: one program, loaded once ([`Steering::load`]) and
//!   attached to every served interface ([`Steering::attach`]), so all interfaces share its
//!   maps. It forwards the packets of the flows the engine put in the fast path itself
//!   ([`Steering::fast_upsert`], docs/fastpath.md), hands VIP traffic, ARP/ND for VIPs, NAT
//!   return traffic and the related ICMP errors to the AF_XDP socket of the receiving interface
//!   and queue ([`crate::xsk`]), and passes everything else to the kernel.
//! * [`TunDecap`] runs on a TUN-mode real server whose kernel has no `ipip` module: it strips the
//!   outer IP header of tunnelled packets addressed to a VIP held on `lo`.
//! * [`XdpPass`] passes everything: on a veth, an attached XDP program is what makes the
//!   interface accept frames that XDP sends out of its peer (the fast path's XDP_TX and
//!   redirects). The rvs lab puts it on the far ends of a director's veths.
//! * [`TrafficGen`] transmits a frame, from one flow or many, from inside the kernel, for load
//!   tests and `rvs bench gen`.
//!
//! Programs attach through a **bpf_link**: the program is detached when the link's file
//! descriptor closes — on `detach`, on drop, and also when the process dies (even by SIGKILL).
//! Nothing is pinned, so nothing outlives rvsd. If another XDP program is already attached to
//! the interface, attaching fails with `EBUSY` (a link never replaces a program it does not own).
//!
//! Interface names are resolved in the calling thread's network namespace ([`crate::netns`]).
//!
//! ```no_run
//! # fn main() -> Result<(), rvs_io::IoError> {
//! use rvs_io::xdp::{Steering, SteeringConfig, VipKey, XdpMode};
//! use rvs_io::xsk::{XskConfig, XskSocket};
//! let mut steer = Steering::load(SteeringConfig::default())?;
//! let eth0 = steer.attach("eth0", XdpMode::Auto)?;
//! let eth1 = steer.attach("eth1", XdpMode::Auto)?;
//! let mut sockets = Vec::new(); // one per (interface, rx queue), owned by the workers
//! for (slot, ifname) in [(eth0, "eth0"), (eth1, "eth1")] {
//!     let xsk = XskSocket::open(ifname, 0, &XskConfig::default())?;
//!     steer.register_xsk(slot, 0, &xsk)?;
//!     sockets.push(xsk);
//! }
//! let vip = "198.18.0.100".parse().unwrap();
//! steer.add_vip(VipKey::tcp(vip, 80))?;
//! steer.add_vip_addr(vip)?; // ARP, ping, fragments
//! # Ok(()) }
//! ```

use std::collections::HashMap as StdHashMap;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use aya::maps::{Array, DevMap, HashMap, IterableMap, MapData, PerCpuArray, PerCpuValues, XskMap};
use aya::programs::Xdp;
use aya::{Ebpf, EbpfLoader};

use crate::IoError;
use crate::netlink::{self, Netlink, XdpAttachMode};
use crate::netns;
use crate::sys;

pub use crate::netlink::XdpAttachment;

static STEER_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/steer.bpf.o"));
static TUN_DECAP_OBJ: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tun_decap.bpf.o"));
static XDP_PASS_OBJ: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xdp_pass.bpf.o"));
static XDP_GEN_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xdp_gen.bpf.o"));

/// How many interfaces one [`Steering`] serves (`RVS_MAX_IFACES` in bpf/rvs_bpf.h): slots
/// `0..MAX_IFACES`.
pub const MAX_IFACES: u32 = 64;
/// How many rx queues per interface can have an AF_XDP socket (`RVS_MAX_QUEUES`).
pub const MAX_QUEUES: u32 = 64;

/// IP protocol numbers used in [`VipKey`].
pub const IPPROTO_TCP: u8 = 6;
/// UDP.
pub const IPPROTO_UDP: u8 = 17;
/// SCTP.
pub const IPPROTO_SCTP: u8 = 132;

/// How to attach an XDP program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum XdpMode {
    /// Native (driver) mode if the driver supports it, otherwise generic (SKB) mode.
    #[default]
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (SKB) mode only: works on every interface, slower.
    Skb,
}

impl XdpMode {
    fn flags(self) -> u32 {
        const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
        const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
        match self {
            Self::Auto => 0,
            Self::Native => XDP_FLAGS_DRV_MODE,
            Self::Skb => XDP_FLAGS_SKB_MODE,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Native => "native",
            Self::Skb => "skb",
        }
    }
}

/// What an XDP program decided for a frame (see [`Steering::test_run`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpAction {
    /// `XDP_ABORTED`: program error.
    Aborted,
    /// `XDP_DROP`.
    Drop,
    /// `XDP_PASS`: to the kernel stack.
    Pass,
    /// `XDP_TX`: back out of the receiving interface.
    Tx,
    /// `XDP_REDIRECT`: to another interface, CPU or AF_XDP socket.
    Redirect,
    /// Any other value.
    Other(u32),
}

impl From<u32> for XdpAction {
    fn from(v: u32) -> Self {
        match v {
            0 => Self::Aborted,
            1 => Self::Drop,
            2 => Self::Pass,
            3 => Self::Tx,
            4 => Self::Redirect,
            v => Self::Other(v),
        }
    }
}

/// A virtual service as the steering program matches it: protocol, VIP, port (0 = all ports).
/// In [`Steering::add_nat_source`] the same shape names a NAT real server (RIP, port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VipKey {
    /// IP protocol ([`IPPROTO_TCP`], [`IPPROTO_UDP`], [`IPPROTO_SCTP`]).
    pub proto: u8,
    /// The address; its family is the key's family.
    pub addr: IpAddr,
    /// The port in host byte order; 0 matches every port (IPVS port-0 services).
    pub port: u16,
}

impl VipKey {
    /// A TCP service.
    pub fn tcp(addr: IpAddr, port: u16) -> Self {
        Self {
            proto: IPPROTO_TCP,
            addr,
            port,
        }
    }

    /// A UDP service.
    pub fn udp(addr: IpAddr, port: u16) -> Self {
        Self {
            proto: IPPROTO_UDP,
            addr,
            port,
        }
    }

    /// An SCTP service.
    pub fn sctp(addr: IpAddr, port: u16) -> Self {
        Self {
            proto: IPPROTO_SCTP,
            addr,
            port,
        }
    }

    /// The Linux address family number (`AF_INET` 2 or `AF_INET6` 10).
    pub fn family(&self) -> u8 {
        family(&self.addr)
    }

    /// The key exactly as the C `struct vip_key` (bpf/rvs_bpf.h) lays it out:
    /// family, proto, port (network order), 16 address bytes (IPv4 in the first four).
    pub fn to_bytes(&self) -> [u8; 20] {
        let raw = RawVipKey::from(self);
        let mut b = [0u8; 20];
        b[0] = raw.family;
        b[1] = raw.proto;
        b[2..4].copy_from_slice(&raw.port);
        b[4..].copy_from_slice(&raw.addr);
        b
    }
}

fn family(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

fn addr16(addr: &IpAddr) -> [u8; 16] {
    let mut a = [0u8; 16];
    match addr {
        IpAddr::V4(v4) => a[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => a = v6.octets(),
    }
    a
}

/// `struct vip_key` (bpf/rvs_bpf.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct RawVipKey {
    family: u8,
    proto: u8,
    port: [u8; 2],
    addr: [u8; 16],
}

// SAFETY: repr(C), only u8 fields and arrays: no padding, every bit pattern valid.
unsafe impl aya::Pod for RawVipKey {}

impl From<&VipKey> for RawVipKey {
    fn from(k: &VipKey) -> Self {
        Self {
            family: k.family(),
            proto: k.proto,
            port: k.port.to_be_bytes(),
            addr: addr16(&k.addr),
        }
    }
}

/// `struct addr_key` (bpf/rvs_bpf.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct RawAddrKey {
    family: u8,
    pad: [u8; 3],
    addr: [u8; 16],
}

// SAFETY: repr(C), only u8 fields and arrays: no padding, every bit pattern valid.
unsafe impl aya::Pod for RawAddrKey {}

impl From<&IpAddr> for RawAddrKey {
    fn from(a: &IpAddr) -> Self {
        Self {
            family: family(a),
            pad: [0; 3],
            addr: addr16(a),
        }
    }
}

/// A fast-path flow: a TCP or UDP packet as the director receives it (`struct flow_key` of
/// bpf/rvs_bpf.h and docs/fastpath.md). Both addresses have the same family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// [`IPPROTO_TCP`] or [`IPPROTO_UDP`].
    pub proto: u8,
    /// Source address.
    pub saddr: IpAddr,
    /// Destination address.
    pub daddr: IpAddr,
    /// Source port, host byte order.
    pub sport: u16,
    /// Destination port, host byte order.
    pub dport: u16,
}

impl FlowKey {
    /// Size of `struct flow_key`.
    pub const LEN: usize = 40;

    /// The Linux address family number of the flow (`AF_INET` 2 or `AF_INET6` 10), from `saddr`.
    pub fn family(&self) -> u8 {
        family(&self.saddr)
    }

    /// The key exactly as `struct flow_key` lays it out: family, proto, sport and dport in
    /// network order, two zero bytes, then the source and destination addresses in 16 bytes
    /// each (IPv4 in the first four).
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.family();
        b[1] = self.proto;
        b[2..4].copy_from_slice(&self.sport.to_be_bytes());
        b[4..6].copy_from_slice(&self.dport.to_be_bytes());
        b[8..24].copy_from_slice(&addr16(&self.saddr));
        b[24..40].copy_from_slice(&addr16(&self.daddr));
        b
    }

    /// Parses [`Self::to_bytes`] output; `None` for an unknown address family.
    pub fn from_bytes(b: &[u8; Self::LEN]) -> Option<Self> {
        let v6 = match b[0] {
            f if f == AF_INET => false,
            f if f == AF_INET6 => true,
            _ => return None,
        };
        Some(Self {
            proto: b[1],
            sport: u16::from_be_bytes([b[2], b[3]]),
            dport: u16::from_be_bytes([b[4], b[5]]),
            saddr: addr_from16(&b[8..24], v6),
            daddr: addr_from16(&b[24..40], v6),
        })
    }

    fn validate(&self) -> Result<(), IoError> {
        if self.saddr.is_ipv4() != self.daddr.is_ipv4() {
            return Err(IoError::InvalidArgument(format!(
                "fast-path flow {self:?} mixes address families"
            )));
        }
        if self.proto != IPPROTO_TCP && self.proto != IPPROTO_UDP {
            return Err(IoError::InvalidArgument(format!(
                "fast-path flow {self:?}: only TCP and UDP are looked up"
            )));
        }
        Ok(())
    }
}

/// What the fast path does to a flow's packets (`fast_action.kind`, docs/fastpath.md). Every
/// kind also decrements the TTL / hop limit and writes the next hop's MAC addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FastKind {
    /// Direct routing: nothing else.
    Route = 1,
    /// NAT towards a real server: destination := `addr1`, destination port := `port`.
    NatDst = 2,
    /// NAT of a real server's reply: source := `addr1`, source port := `port`.
    NatSrc = 3,
    /// IP tunnel with an outer IPv4 header `addr2` → `addr1` (IPv4 inner packets with DF only).
    Tunnel4 = 4,
    /// IP tunnel with an outer IPv6 header `addr2` → `addr1`.
    Tunnel6 = 5,
}

impl FastKind {
    /// The kind for a `fast_action.kind` byte.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Route,
            2 => Self::NatDst,
            3 => Self::NatSrc,
            4 => Self::Tunnel4,
            5 => Self::Tunnel6,
            _ => return None,
        })
    }
}

/// The value of a fast-path entry (`struct fast_action` of bpf/rvs_bpf.h, docs/fastpath.md),
/// without `last_seen_ns`, which the program writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FastAction {
    /// The rewrite.
    pub kind: FastKind,
    /// Largest IP datagram (as received) forwarded; a longer one is punted to the engine,
    /// which answers with ICMP fragmentation needed / packet too big.
    pub max_len: u16,
    /// The interface the packet leaves by: the receiving one means `XDP_TX`, any other a
    /// redirect through slot `egress_slot`.
    pub egress_ifindex: u32,
    /// The [`Steering`] slot of `egress_ifindex`.
    pub egress_slot: u32,
    /// Counter slot in `fast_stats` (real server id * 2 + 0 inbound / 1 outbound), see
    /// [`Steering::fast_stats`].
    pub stats_index: u32,
    /// Next hop's MAC address.
    pub dst_mac: [u8; 6],
    /// Egress interface's MAC address.
    pub src_mac: [u8; 6],
    /// NatDst: the new destination port; NatSrc: the new source port (host order). Else 0.
    pub port: u16,
    /// NatDst: the new destination; NatSrc: the new source; Tunnel*: the outer destination
    /// (RIP). Ignored for Route.
    pub addr1: IpAddr,
    /// Tunnel*: the outer source (DIP). `None` otherwise.
    pub addr2: Option<IpAddr>,
}

impl FastAction {
    /// Size of `struct fast_action`.
    pub const LEN: usize = 72;

    /// The value exactly as `struct fast_action` lays it out (host-order integers, `port` in
    /// network order), with `last_seen_ns` 0.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.kind as u8;
        b[2..4].copy_from_slice(&self.max_len.to_ne_bytes());
        b[4..8].copy_from_slice(&self.egress_ifindex.to_ne_bytes());
        b[8..12].copy_from_slice(&self.egress_slot.to_ne_bytes());
        b[12..16].copy_from_slice(&self.stats_index.to_ne_bytes());
        b[16..22].copy_from_slice(&self.dst_mac);
        b[22..28].copy_from_slice(&self.src_mac);
        b[28..30].copy_from_slice(&self.port.to_be_bytes());
        b[32..48].copy_from_slice(&addr16(&self.addr1));
        if let Some(a2) = &self.addr2 {
            b[48..64].copy_from_slice(&addr16(a2));
        }
        b
    }

    /// Parses a `struct fast_action` of a flow `key` (whose family gives the address family of
    /// `addr1` for Route and NAT); returns the action and its `last_seen_ns`. `None` for an
    /// unknown kind.
    pub fn from_bytes(b: &[u8; Self::LEN], key: &FlowKey) -> Option<(Self, u64)> {
        let kind = FastKind::from_u8(b[0])?;
        let u32_at = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let v6 = match kind {
            FastKind::Tunnel4 => false,
            FastKind::Tunnel6 => true,
            _ => key.saddr.is_ipv6(),
        };
        let mut dst_mac = [0u8; 6];
        let mut src_mac = [0u8; 6];
        dst_mac.copy_from_slice(&b[16..22]);
        src_mac.copy_from_slice(&b[22..28]);
        let mut seen = [0u8; 8];
        seen.copy_from_slice(&b[64..72]);
        let action = Self {
            kind,
            max_len: u16::from_ne_bytes([b[2], b[3]]),
            egress_ifindex: u32_at(4),
            egress_slot: u32_at(8),
            stats_index: u32_at(12),
            dst_mac,
            src_mac,
            port: u16::from_be_bytes([b[28], b[29]]),
            addr1: addr_from16(&b[32..48], v6),
            addr2: matches!(kind, FastKind::Tunnel4 | FastKind::Tunnel6)
                .then(|| addr_from16(&b[48..64], v6)),
        };
        Some((action, u64::from_ne_bytes(seen)))
    }

    fn validate(&self, key: &FlowKey, stats_max: u32) -> Result<(), IoError> {
        let bad = |why: &str| {
            Err(IoError::InvalidArgument(format!(
                "fast-path entry {key:?} -> {self:?}: {why}"
            )))
        };
        if self.egress_slot >= MAX_IFACES {
            return bad("egress_slot out of range");
        }
        if self.stats_index >= stats_max {
            return bad("stats_index beyond fast_stats_max");
        }
        match (self.kind, self.addr2) {
            (FastKind::Route, _) => {}
            (FastKind::NatDst | FastKind::NatSrc, _) => {
                if self.addr1.is_ipv4() != key.saddr.is_ipv4() {
                    return bad("NAT address of another family than the flow");
                }
            }
            (FastKind::Tunnel4, Some(IpAddr::V4(_))) if self.addr1.is_ipv4() => {}
            (FastKind::Tunnel6, Some(IpAddr::V6(_))) if self.addr1.is_ipv6() => {}
            (FastKind::Tunnel4 | FastKind::Tunnel6, _) => {
                return bad("tunnel endpoints must both be of the tunnel's family");
            }
        }
        Ok(())
    }
}

/// `struct flow_key` as the map sees it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct RawFlowKey([u8; FlowKey::LEN]);

// SAFETY: repr(C) wrapper of a byte array: no padding, every bit pattern valid.
unsafe impl aya::Pod for RawFlowKey {}

/// `struct fast_action` as the map sees it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct RawFastAction([u8; FastAction::LEN]);

// SAFETY: repr(C) wrapper of a byte array: no padding, every bit pattern valid.
unsafe impl aya::Pod for RawFastAction {}

/// `struct fast_stats`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct RawFastStats {
    packets: u64,
    bytes: u64,
}

// SAFETY: repr(C), two u64 fields: no padding, every bit pattern valid.
unsafe impl aya::Pod for RawFastStats {}

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock the fast path stamps `last_seen_ns` with
/// (`bpf_ktime_get_ns`), so `monotonic_ns() - last_seen` is how long a flow has been idle.
pub fn monotonic_ns() -> u64 {
    sys::monotonic_ns()
}

/// Sizes of the steering program's fast-path maps (fixed when [`Steering::load`] creates them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SteeringConfig {
    /// Most fast-path entries (`fast_conns`): NAT connections use two, DR/TUN one.
    /// Entries are allocated as inserted, so a large value costs nothing until used.
    pub fast_conns_max: u32,
    /// Counter slots (`fast_stats`, per CPU): `stats_index` must stay below it.
    pub fast_stats_max: u32,
}

impl Default for SteeringConfig {
    fn default() -> Self {
        Self {
            fast_conns_max: 1 << 20,
            fast_stats_max: 1 << 17,
        }
    }
}

const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;

/// An address from 16 key bytes (IPv4: the first four).
fn addr_from16(b: &[u8], v6: bool) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    if v6 {
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
    }
}

/// Counters of the steering program over all its interfaces, summed over CPUs.
///
/// Every frame is counted once in exactly one of `passed`, `malformed`, `redirected`,
/// `no_socket` and `fast_hit`, except the (never expected) frames dropped after a half-done
/// fast-path rewrite, which count only in `fast_error`. Frames handed to rvs are also counted
/// once in one category (`vip` .. `fragment`); frames the fast path punts, once in one
/// `fast_punt_*` counter (or `fast_redirect_fail`, `fast_error`) before they are classified.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SteerCounters {
    /// Not for rvs: passed to the kernel.
    pub passed: u64,
    /// Handed to the AF_XDP socket of the receiving interface and queue.
    pub redirected: u64,
    /// For rvs, but no socket registered for the receiving interface and queue: passed to the
    /// kernel.
    pub no_socket: u64,
    /// Truncated headers: passed to the kernel (which drops them).
    pub malformed: u64,
    /// Category: TCP/UDP/SCTP to a virtual service.
    pub vip: u64,
    /// Category: ICMP/ICMPv6 echo request to a VIP.
    pub vip_echo: u64,
    /// Category: ICMP error about a VIP or NAT flow.
    pub icmp_error: u64,
    /// Category: ARP request for a VIP.
    pub arp: u64,
    /// Category: IPv6 neighbour solicitation for a VIP.
    pub neighbour_solicit: u64,
    /// Category: return traffic from a NAT real server.
    pub nat_return: u64,
    /// Category: fragment to a VIP or from a NAT real server.
    pub fragment: u64,
    /// Fast path: rewritten and sent (XDP_TX or redirect to another interface).
    pub fast_hit: u64,
    /// Fast path punted to the engine: TCP SYN, FIN or RST.
    pub fast_punt_tcp_flags: u64,
    /// Fast path punted: TTL / hop limit ≤ 1.
    pub fast_punt_ttl: u64,
    /// Fast path punted: IP datagram longer than the entry's `max_len`.
    pub fast_punt_too_big: u64,
    /// Fast path punted: NAT of a UDP datagram with checksum 0.
    pub fast_punt_udp_no_checksum: u64,
    /// Fast path punted: Tunnel4 entry, but the packet is not IPv4 with DF set.
    pub fast_punt_tunnel: u64,
    /// Fast path punted: the IP length does not fit the frame or the headers.
    pub fast_punt_truncated: u64,
    /// Fast path punted: the entry has an unknown kind.
    pub fast_punt_bad_entry: u64,
    /// Fast path punted: the entry's `egress_slot` has no interface.
    pub fast_redirect_fail: u64,
    /// Fast path could not adjust the frame for a tunnel header (punted; dropped if the frame
    /// was already changed).
    pub fast_error: u64,
}

impl SteerCounters {
    /// Every counter with its field name, in declaration order (for `rvs stats` and the
    /// control socket's `xdp.*` counters).
    pub fn fields(&self) -> [(&'static str, u64); 21] {
        [
            ("passed", self.passed),
            ("redirected", self.redirected),
            ("no_socket", self.no_socket),
            ("malformed", self.malformed),
            ("vip", self.vip),
            ("vip_echo", self.vip_echo),
            ("icmp_error", self.icmp_error),
            ("arp", self.arp),
            ("neighbour_solicit", self.neighbour_solicit),
            ("nat_return", self.nat_return),
            ("fragment", self.fragment),
            ("fast_hit", self.fast_hit),
            ("fast_punt_tcp_flags", self.fast_punt_tcp_flags),
            ("fast_punt_ttl", self.fast_punt_ttl),
            ("fast_punt_too_big", self.fast_punt_too_big),
            ("fast_punt_udp_no_checksum", self.fast_punt_udp_no_checksum),
            ("fast_punt_tunnel", self.fast_punt_tunnel),
            ("fast_punt_truncated", self.fast_punt_truncated),
            ("fast_punt_bad_entry", self.fast_punt_bad_entry),
            ("fast_redirect_fail", self.fast_redirect_fail),
            ("fast_error", self.fast_error),
        ]
    }

    /// Every frame the fast path found an entry for but left to the engine.
    pub fn fast_punt(&self) -> u64 {
        self.fast_punt_tcp_flags
            + self.fast_punt_ttl
            + self.fast_punt_too_big
            + self.fast_punt_udp_no_checksum
            + self.fast_punt_tunnel
            + self.fast_punt_truncated
            + self.fast_punt_bad_entry
            + self.fast_redirect_fail
    }
}

/// Per-interface counters of the TUN decapsulation program, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecapCounters {
    /// Not a tunnel packet: passed untouched.
    pub passed: u64,
    /// Decapsulated, inner IPv4.
    pub decap_v4: u64,
    /// Decapsulated, inner IPv6.
    pub decap_v6: u64,
    /// Tunnel packet whose outer destination is not one of this host's addresses.
    pub not_local: u64,
    /// Tunnel packet whose inner destination is not a VIP of this host.
    pub not_vip: u64,
    /// Fragmented tunnel packet (left to the kernel).
    pub fragment: u64,
    /// Truncated packet or head adjustment failure.
    pub error: u64,
}

type BoxError = crate::error::BoxError;

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> IoError {
    move |e| IoError::BpfMap {
        map,
        source: e.into(),
    }
}

fn load_err(program: &'static str) -> impl Fn(BoxError) -> IoError {
    move |source| IoError::BpfLoad { program, source }
}

/// Loads an embedded object (maps resized as given) and its XDP program `prog_name` into the
/// kernel; returns the object and the program's kernel id (0 if the kernel would not say).
fn load_object(
    label: &'static str,
    obj: &[u8],
    prog_name: &str,
    max_entries: &[(&str, u32)],
) -> Result<(Ebpf, u32), IoError> {
    let err = load_err(label);
    let mut loader = EbpfLoader::new();
    for (map, n) in max_entries {
        loader.map_max_entries(map, *n);
    }
    let mut ebpf = loader.load(obj).map_err(|e| err(e.into()))?;
    let prog: &mut Xdp = ebpf
        .program_mut(prog_name)
        .ok_or_else(|| err(format!("no program {prog_name} in object").into()))?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| err(e.into()))?;
    prog.load().map_err(|e| err(e.into()))?;
    let prog_id = prog.info().map(|i| i.id()).unwrap_or(0);
    Ok((ebpf, prog_id))
}

/// The fd of a loaded XDP program of `ebpf`.
fn program_fd<'a>(ebpf: &'a Ebpf, prog_name: &str) -> Result<BorrowedFd<'a>, IoError> {
    let prog: &Xdp = ebpf
        .program(prog_name)
        .ok_or(IoError::Unsupported("program missing from object"))?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| load_err("xdp")(e.into()))?;
    Ok(prog.fd().map_err(|e| load_err("xdp")(e.into()))?.as_fd())
}

fn take_map<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, IoError>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or_else(|| IoError::BpfMap {
        map: name,
        source: "missing from the object".into(),
    })?;
    T::try_from(map).map_err(map_err(name))
}

/// A program attached to one interface through a bpf_link: closing `fd` detaches it.
#[derive(Debug)]
struct Link {
    /// Never read: it is held so that closing it (on drop) detaches the program.
    _fd: OwnedFd,
    ifindex: u32,
    ifname: String,
    /// What the kernel did, not what was asked for.
    mode: XdpMode,
    /// The namespace the interface lives in (its ifindex means something only there).
    netns: File,
}

impl Link {
    fn create_at(
        prog_fd: BorrowedFd<'_>,
        ifindex: u32,
        ifname: &str,
        mode: XdpMode,
    ) -> Result<Self, IoError> {
        let netns = netns::current_file()?;
        let (fd, got) = attach_link(prog_fd, ifindex, ifname, mode)?;
        let mode = match netlink::xdp_query(ifname) {
            Ok(Some(a)) if a.mode == XdpAttachMode::Skb => XdpMode::Skb,
            Ok(Some(a)) if a.mode == XdpAttachMode::Native => XdpMode::Native,
            _ => got,
        };
        Ok(Self {
            _fd: fd,
            ifindex,
            ifname: ifname.to_owned(),
            mode,
            netns,
        })
    }
}

fn attach_link(
    prog_fd: BorrowedFd<'_>,
    ifindex: u32,
    ifname: &str,
    mode: XdpMode,
) -> Result<(OwnedFd, XdpMode), IoError> {
    let try_mode = |m: XdpMode| {
        sys::bpf_link_create_xdp(prog_fd, ifindex, m.flags()).map_err(|source| IoError::Attach {
            ifname: ifname.to_owned(),
            mode: m.name(),
            source,
        })
    };
    match mode {
        XdpMode::Native | XdpMode::Skb => Ok((try_mode(mode)?, mode)),
        XdpMode::Auto => match try_mode(XdpMode::Native) {
            Ok(fd) => Ok((fd, XdpMode::Native)),
            // Something is already attached: generic mode would fail the same way.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err(e),
            Err(_) => Ok((try_mode(XdpMode::Skb)?, XdpMode::Skb)),
        },
    }
}

/// Runs `prog_name` once on `frame` (`BPF_PROG_TEST_RUN`), received on `rx` = (link, queue)
/// (entering the link's namespace for the call), or on the loopback device without `rx`.
fn test_run_prog(
    ebpf: &Ebpf,
    prog_name: &str,
    frame: &[u8],
    rx: Option<(&Link, u32)>,
) -> Result<(XdpAction, Vec<u8>), IoError> {
    let fd = program_fd(ebpf, prog_name)?;
    let _ns = match rx {
        Some((link, _)) => netns::enter_file(&link.netns)?,
        None => None,
    };
    // Room for the largest header the programs prepend (an outer IPv6 header).
    let mut out = vec![0u8; frame.len() + 256];
    let (ret, len) = sys::bpf_prog_test_run_xdp(
        fd,
        frame,
        &mut out,
        rx.map(|(link, queue)| (link.ifindex, queue)),
    )
    .map_err(IoError::sys("bpf(BPF_PROG_TEST_RUN)"))?;
    out.truncate(len);
    Ok((XdpAction::from(ret), out))
}

/// A loaded object whose program is attached to one interface.
#[derive(Debug)]
struct Attached {
    /// Declared first so it drops first (fields drop in declaration order): closing the link
    /// fd detaches the program before the object goes.
    link: Link,
    ebpf: Ebpf,
    prog_id: u32,
}

impl Attached {
    fn load(
        label: &'static str,
        obj: &[u8],
        prog_name: &str,
        ifname: &str,
        mode: XdpMode,
    ) -> Result<Self, IoError> {
        let ifindex = sys::if_nametoindex(ifname)
            .ok_or_else(|| IoError::NoSuchInterface(ifname.to_owned()))?;
        let (ebpf, prog_id) = load_object(label, obj, prog_name, &[])?;
        let link = Link::create_at(program_fd(&ebpf, prog_name)?, ifindex, ifname, mode)?;
        Ok(Self {
            link,
            ebpf,
            prog_id,
        })
    }
}

fn sum_counters<const N: usize>(
    stats: &PerCpuArray<MapData, u64>,
    map: &'static str,
) -> Result<[u64; N], IoError> {
    let mut out = [0u64; N];
    for (i, slot) in out.iter_mut().enumerate() {
        let values = stats.get(&(i as u32), 0).map_err(map_err(map))?;
        *slot = values.iter().copied().fold(0u64, u64::wrapping_add);
    }
    Ok(out)
}

/// Adds every address configured in the calling thread's namespace to a `local_addrs` map.
fn fill_local_addrs(map: &mut HashMap<MapData, RawAddrKey, u32>) -> Result<(), IoError> {
    for a in Netlink::open()?.addresses(None)? {
        map.insert(RawAddrKey::from(&a.addr), 1, 0)
            .map_err(map_err("local_addrs"))?;
    }
    Ok(())
}

fn nr_cpus() -> Result<usize, IoError> {
    aya::util::nr_cpus().map_err(|(what, source)| IoError::Sys { op: what, source })
}

/// Index of `config[CONFIG_FAST_PATH]` in steer.bpf.c.
const CONFIG_FAST_PATH: u32 = 0;
/// BPF_NOEXIST / BPF_EXIST update flags (linux/bpf.h).
const BPF_NOEXIST: u64 = 1;
const BPF_EXIST: u64 = 2;

/// The steering program of a director, loaded once and attached to each served interface,
/// with its maps. See the module docs.
///
/// Interfaces are numbered by **slot** in the order they are attached (0, 1, ...): the slot
/// names an interface in [`Self::register_xsk`] and in [`FastAction::egress_slot`].
pub struct Steering {
    /// Declared first so they drop first (fields drop in declaration order): closing the link
    /// fds detaches the program from every interface before the maps go. Index = slot.
    links: Vec<Link>,
    ebpf: Ebpf,
    prog_id: u32,
    config: SteeringConfig,
    xsks: XskMap<MapData>,
    iface_slots: HashMap<MapData, u32, u32>,
    tx_ports: DevMap<MapData>,
    vips: HashMap<MapData, RawVipKey, u32>,
    vip_addrs: HashMap<MapData, RawAddrKey, u32>,
    nat_sources: HashMap<MapData, RawVipKey, u32>,
    nat_addrs: HashMap<MapData, RawAddrKey, u32>,
    local_addrs: HashMap<MapData, RawAddrKey, u32>,
    fast_conns: HashMap<MapData, RawFlowKey, RawFastAction>,
    fast_stats: PerCpuArray<MapData, RawFastStats>,
    switches: Array<MapData, u32>,
    stats: PerCpuArray<MapData, u64>,
    /// How many nat_sources entries use each address (nat_addrs holds the address while > 0).
    nat_addr_refs: StdHashMap<RawAddrKey, u32>,
    /// Entries in fast_conns (only this handle adds or removes them).
    fast_entries: usize,
    /// The highest stats_index any entry used: fast_stats reads slots 0..=it.
    stats_high: Option<u32>,
}

impl Steering {
    /// Loads the steering program and creates its maps, attached nowhere yet; the fast path is
    /// on ([`Self::set_fast_path`]).
    ///
    /// # Errors
    /// [`IoError::InvalidArgument`] for a zero map size, [`IoError::BpfLoad`] (verifier log
    /// inside), [`IoError::BpfMap`].
    pub fn load(config: SteeringConfig) -> Result<Self, IoError> {
        if config.fast_conns_max == 0 || config.fast_stats_max == 0 {
            return Err(IoError::InvalidArgument(format!(
                "{config:?}: map sizes must be at least 1"
            )));
        }
        let (mut ebpf, prog_id) = load_object(
            "steer",
            STEER_OBJ,
            "rvs_steer",
            &[
                ("fast_conns", config.fast_conns_max),
                ("fast_stats", config.fast_stats_max),
            ],
        )?;
        let mut s = Self {
            links: Vec::new(),
            xsks: take_map(&mut ebpf, "xsks")?,
            iface_slots: take_map(&mut ebpf, "iface_slots")?,
            tx_ports: take_map(&mut ebpf, "tx_ports")?,
            vips: take_map(&mut ebpf, "vips")?,
            vip_addrs: take_map(&mut ebpf, "vip_addrs")?,
            nat_sources: take_map(&mut ebpf, "nat_sources")?,
            nat_addrs: take_map(&mut ebpf, "nat_addrs")?,
            local_addrs: take_map(&mut ebpf, "local_addrs")?,
            fast_conns: take_map(&mut ebpf, "fast_conns")?,
            fast_stats: take_map(&mut ebpf, "fast_stats")?,
            switches: take_map(&mut ebpf, "config")?,
            stats: take_map(&mut ebpf, "stats")?,
            ebpf,
            prog_id,
            config,
            nat_addr_refs: StdHashMap::new(),
            fast_entries: 0,
            stats_high: None,
        };
        s.set_fast_path(true)?;
        Ok(s)
    }

    /// Attaches the program to `ifname` (through its own bpf_link) and returns the interface's
    /// slot. The addresses configured in the calling thread's namespace (where `ifname` is)
    /// are added to the director's own addresses, so traffic from NAT real servers to the
    /// director itself (health checks) stays with the kernel; keep them current with
    /// [`Self::add_local_addr`] / [`Self::del_local_addr`].
    ///
    /// # Errors
    /// [`IoError::NoSuchInterface`]; [`IoError::InvalidArgument`] when the interface is already
    /// served or [`MAX_IFACES`] are; [`IoError::Attach`] (`EBUSY`: another XDP program is
    /// attached; `EOPNOTSUPP`: no native XDP with [`XdpMode::Native`]); [`IoError::BpfMap`].
    pub fn attach(&mut self, ifname: &str, mode: XdpMode) -> Result<u32, IoError> {
        let ifindex = sys::if_nametoindex(ifname)
            .ok_or_else(|| IoError::NoSuchInterface(ifname.to_owned()))?;
        let slot = u32::try_from(self.links.len()).unwrap_or(u32::MAX);
        if slot >= MAX_IFACES {
            return Err(IoError::InvalidArgument(format!(
                "{ifname}: a steering program serves at most {MAX_IFACES} interfaces"
            )));
        }
        // iface_slots is keyed by ifindex, which is unique only within a namespace.
        if self.iface_slots.get(&ifindex, 0).is_ok() {
            return Err(IoError::InvalidArgument(format!(
                "{ifname}: ifindex {ifindex} is already served"
            )));
        }
        // The maps first, so the program knows the interface from its first frame. The
        // devmap resolves the ifindex in the calling thread's namespace, as if_nametoindex did.
        self.iface_slots
            .insert(ifindex, slot, 0)
            .map_err(map_err("iface_slots"))?;
        let linked = self
            .tx_ports
            .set(slot, ifindex, None, 0)
            .map_err(|e| IoError::BpfMap {
                map: "tx_ports",
                source: e.into(),
            })
            .and_then(|()| fill_local_addrs(&mut self.local_addrs))
            .and_then(|()| {
                Link::create_at(program_fd(&self.ebpf, "rvs_steer")?, ifindex, ifname, mode)
            });
        match linked {
            Ok(link) => {
                self.links.push(link);
                Ok(slot)
            }
            Err(e) => {
                let _ = self.iface_slots.remove(&ifindex);
                let _ = self.tx_ports.set(slot, 0, None, 0);
                Err(e)
            }
        }
    }

    /// How many interfaces are attached (their slots are `0..slot_count()`).
    pub fn slot_count(&self) -> u32 {
        u32::try_from(self.links.len()).unwrap_or(u32::MAX)
    }

    /// The slot of an attached interface, by index.
    pub fn slot_of(&self, ifindex: u32) -> Option<u32> {
        self.links
            .iter()
            .position(|l| l.ifindex == ifindex)
            .and_then(|i| u32::try_from(i).ok())
    }

    fn link(&self, slot: u32) -> Result<&Link, IoError> {
        self.links
            .get(slot as usize)
            .ok_or_else(|| IoError::InvalidArgument(format!("no interface in slot {slot}")))
    }

    /// The mode the kernel attached slot `slot` in ([`XdpMode::Native`] or [`XdpMode::Skb`]).
    pub fn attached_mode(&self, slot: u32) -> Option<XdpMode> {
        self.links.get(slot as usize).map(|l| l.mode)
    }

    /// Interface index of slot `slot`.
    pub fn ifindex(&self, slot: u32) -> Option<u32> {
        self.links.get(slot as usize).map(|l| l.ifindex)
    }

    /// Interface name of slot `slot`.
    pub fn ifname(&self, slot: u32) -> Option<&str> {
        self.links.get(slot as usize).map(|l| l.ifname.as_str())
    }

    /// Kernel id of the loaded program (0 if the kernel would not say); every interface runs
    /// this one program.
    pub fn prog_id(&self) -> u32 {
        self.prog_id
    }

    /// The map sizes the program was loaded with.
    pub fn config(&self) -> SteeringConfig {
        self.config
    }

    /// Steers traffic for a virtual service (protocol, VIP, port; port 0 = all ports).
    /// Does not imply [`Self::add_vip_addr`], which ARP/ND, ping and fragments need.
    pub fn add_vip(&mut self, key: VipKey) -> Result<(), IoError> {
        self.vips
            .insert(RawVipKey::from(&key), 1, 0)
            .map_err(map_err("vips"))
    }

    /// Stops steering a virtual service. Removing an absent key is not an error.
    pub fn del_vip(&mut self, key: VipKey) -> Result<(), IoError> {
        remove_if_present(&mut self.vips, &RawVipKey::from(&key), "vips")
    }

    /// Steers ARP requests / neighbour solicitations for `addr`, echo requests to it and
    /// fragments addressed to it.
    pub fn add_vip_addr(&mut self, addr: IpAddr) -> Result<(), IoError> {
        self.vip_addrs
            .insert(RawAddrKey::from(&addr), 1, 0)
            .map_err(map_err("vip_addrs"))
    }

    /// Reverts [`Self::add_vip_addr`].
    pub fn del_vip_addr(&mut self, addr: IpAddr) -> Result<(), IoError> {
        remove_if_present(&mut self.vip_addrs, &RawAddrKey::from(&addr), "vip_addrs")
    }

    /// Steers return traffic from a NAT (masquerading) real server `RIP:rport` (port 0 = any
    /// source port), plus fragments from that address and ICMP errors about its flows, unless
    /// addressed to the director itself.
    pub fn add_nat_source(&mut self, key: VipKey) -> Result<(), IoError> {
        let raw = RawVipKey::from(&key);
        let existed = self.nat_sources.get(&raw, 0).is_ok();
        self.nat_sources
            .insert(raw, 1, 0)
            .map_err(map_err("nat_sources"))?;
        if !existed {
            let addr = RawAddrKey::from(&key.addr);
            let n = self.nat_addr_refs.entry(addr).or_insert(0);
            *n += 1;
            let n = *n;
            self.nat_addrs
                .insert(addr, n, 0)
                .map_err(map_err("nat_addrs"))?;
        }
        Ok(())
    }

    /// Reverts [`Self::add_nat_source`].
    pub fn del_nat_source(&mut self, key: VipKey) -> Result<(), IoError> {
        let raw = RawVipKey::from(&key);
        if self.nat_sources.get(&raw, 0).is_err() {
            return Ok(());
        }
        remove_if_present(&mut self.nat_sources, &raw, "nat_sources")?;
        let addr = RawAddrKey::from(&key.addr);
        if let Some(n) = self.nat_addr_refs.get_mut(&addr) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.nat_addr_refs.remove(&addr);
                remove_if_present(&mut self.nat_addrs, &addr, "nat_addrs")?;
            } else {
                let n = *n;
                self.nat_addrs
                    .insert(addr, n, 0)
                    .map_err(map_err("nat_addrs"))?;
            }
        }
        Ok(())
    }

    /// Marks `addr` as the director's own (see [`Self::attach`]).
    pub fn add_local_addr(&mut self, addr: IpAddr) -> Result<(), IoError> {
        self.local_addrs
            .insert(RawAddrKey::from(&addr), 1, 0)
            .map_err(map_err("local_addrs"))
    }

    /// Reverts [`Self::add_local_addr`].
    pub fn del_local_addr(&mut self, addr: IpAddr) -> Result<(), IoError> {
        remove_if_present(
            &mut self.local_addrs,
            &RawAddrKey::from(&addr),
            "local_addrs",
        )
    }

    /// Removes every virtual service, VIP address and NAT source (not the registered sockets,
    /// the local addresses nor the fast-path entries).
    pub fn clear(&mut self) -> Result<(), IoError> {
        clear_map(&mut self.vips, "vips")?;
        clear_map(&mut self.vip_addrs, "vip_addrs")?;
        clear_map(&mut self.nat_sources, "nat_sources")?;
        clear_map(&mut self.nat_addrs, "nat_addrs")?;
        self.nat_addr_refs.clear();
        Ok(())
    }

    /// Routes frames received on interface `slot`, rx queue `queue`, to an AF_XDP socket bound
    /// to that interface and queue (an [`crate::xsk::XskSocket`], or any fd via
    /// `&OwnedFd`/`BorrowedFd`; a socket bound elsewhere would get nothing). Replaces an
    /// earlier registration. Closing the socket removes it from the map (the kernel does that
    /// on release), after which those frames are passed to the kernel and counted in
    /// [`SteerCounters::no_socket`].
    pub fn register_xsk(
        &mut self,
        slot: u32,
        queue: u32,
        socket: impl AsFd,
    ) -> Result<(), IoError> {
        let key = self.xsk_key(slot, queue)?;
        self.xsks
            .set(key, socket.as_fd().as_raw_fd(), 0)
            .map_err(map_err("xsks"))
    }

    /// Stops redirecting interface `slot`, queue `queue`: its frames go to the kernel again.
    pub fn unregister_xsk(&mut self, slot: u32, queue: u32) -> Result<(), IoError> {
        let key = self.xsk_key(slot, queue)?;
        match self.xsks.unset(key) {
            Ok(()) => Ok(()),
            Err(aya::maps::MapError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
            {
                Ok(())
            }
            Err(e) => Err(map_err("xsks")(e)),
        }
    }

    fn xsk_key(&self, slot: u32, queue: u32) -> Result<u32, IoError> {
        self.link(slot)?;
        if queue >= MAX_QUEUES {
            return Err(IoError::InvalidArgument(format!(
                "rx queue {queue}: at most {MAX_QUEUES} queues per interface"
            )));
        }
        Ok(slot * MAX_QUEUES + queue)
    }

    /// Runs the program once on `frame` in the kernel (`BPF_PROG_TEST_RUN`) as if received on
    /// interface `slot`, rx queue 0, without receiving or sending anything: returns its verdict
    /// and the frame as it left it (a fast-path hit comes back rewritten, with
    /// [`XdpAction::Tx`] or [`XdpAction::Redirect`]). Maps and counters see it like a received
    /// frame. Frames for rvs give [`XdpAction::Redirect`] if a socket is registered for the
    /// slot's queue 0, otherwise [`XdpAction::Pass`] (counted in [`SteerCounters::no_socket`]);
    /// nothing is delivered either way. The calling thread briefly enters the interface's
    /// network namespace. For self-checks and tests.
    pub fn test_run(&self, slot: u32, frame: &[u8]) -> Result<(XdpAction, Vec<u8>), IoError> {
        test_run_prog(&self.ebpf, "rvs_steer", frame, Some((self.link(slot)?, 0)))
    }

    /// The program's counters over all interfaces, summed over CPUs.
    pub fn counters(&self) -> Result<SteerCounters, IoError> {
        let c: [u64; 21] = sum_counters(&self.stats, "stats")?;
        Ok(SteerCounters {
            passed: c[0],
            redirected: c[1],
            no_socket: c[2],
            vip: c[3],
            vip_echo: c[4],
            icmp_error: c[5],
            arp: c[6],
            neighbour_solicit: c[7],
            nat_return: c[8],
            fragment: c[9],
            malformed: c[10],
            fast_hit: c[11],
            fast_punt_tcp_flags: c[12],
            fast_punt_ttl: c[13],
            fast_punt_too_big: c[14],
            fast_punt_udp_no_checksum: c[15],
            fast_punt_tunnel: c[16],
            fast_punt_truncated: c[17],
            fast_punt_bad_entry: c[18],
            fast_redirect_fail: c[19],
            fast_error: c[20],
        })
    }

    /// Turns the fast path on or off for every interface at once. Off, every packet takes the
    /// phase-1 path (the entries stay and are used again when it is turned back on).
    pub fn set_fast_path(&mut self, enabled: bool) -> Result<(), IoError> {
        self.switches
            .set(CONFIG_FAST_PATH, u32::from(enabled), 0)
            .map_err(map_err("config"))
    }

    /// Whether the fast path is on.
    pub fn fast_path(&self) -> Result<bool, IoError> {
        Ok(self
            .switches
            .get(&CONFIG_FAST_PATH, 0)
            .map_err(map_err("config"))?
            != 0)
    }

    /// Inserts or replaces the fast-path entry of `key`. Its `last_seen_ns` starts at
    /// [`monotonic_ns`] now, so a new entry does not look idle since boot.
    ///
    /// # Errors
    /// [`IoError::InvalidArgument`] for a key mixing families or not TCP/UDP, an `egress_slot`
    /// ≥ [`MAX_IFACES`], a `stats_index` ≥ `fast_stats_max`, or addresses of the wrong family
    /// for the kind; [`IoError::BpfMap`] (`E2BIG`: `fast_conns_max` entries already).
    pub fn fast_upsert(&mut self, key: &FlowKey, action: &FastAction) -> Result<(), IoError> {
        key.validate()?;
        action.validate(key, self.config.fast_stats_max)?;
        let raw_key = RawFlowKey(key.to_bytes());
        let mut value = action.to_bytes();
        value[64..72].copy_from_slice(&monotonic_ns().to_ne_bytes());
        let value = RawFastAction(value);
        match self.fast_conns.insert(raw_key, value, BPF_NOEXIST) {
            Ok(()) => self.fast_entries += 1,
            Err(aya::maps::MapError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::EEXIST) =>
            {
                self.fast_conns
                    .insert(raw_key, value, BPF_EXIST)
                    .map_err(map_err("fast_conns"))?;
            }
            Err(e) => return Err(map_err("fast_conns")(e)),
        }
        self.stats_high = self.stats_high.max(Some(action.stats_index));
        Ok(())
    }

    /// Removes the fast-path entry of `key`; false if there was none.
    pub fn fast_remove(&mut self, key: &FlowKey) -> Result<bool, IoError> {
        match self.fast_conns.remove(&RawFlowKey(key.to_bytes())) {
            Ok(()) => {
                self.fast_entries = self.fast_entries.saturating_sub(1);
                Ok(true)
            }
            Err(aya::maps::MapError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
            {
                Ok(false)
            }
            Err(e) => Err(map_err("fast_conns")(e)),
        }
    }

    /// The entry of `key` and its `last_seen_ns`, if there is one.
    pub fn fast_get(&self, key: &FlowKey) -> Result<Option<(FastAction, u64)>, IoError> {
        match self.fast_conns.get(&RawFlowKey(key.to_bytes()), 0) {
            Ok(v) => Ok(FastAction::from_bytes(&v.0, key)),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(aya::maps::MapError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
            {
                Ok(None)
            }
            Err(e) => Err(map_err("fast_conns")(e)),
        }
    }

    /// When the fast path last forwarded a packet of `key` (or the entry was last written),
    /// in [`monotonic_ns`] time; `None` without an entry.
    pub fn fast_last_seen(&self, key: &FlowKey) -> Result<Option<u64>, IoError> {
        Ok(self.fast_get(key)?.map(|(_, seen)| seen))
    }

    /// How many fast-path entries there are.
    pub fn fast_count(&self) -> usize {
        self.fast_entries
    }

    /// Removes every fast-path entry (one system call per entry).
    pub fn fast_clear(&mut self) -> Result<(), IoError> {
        let keys: Vec<RawFlowKey> = self
            .fast_conns
            .keys()
            .collect::<Result<_, _>>()
            .map_err(map_err("fast_conns"))?;
        for k in keys {
            match self.fast_conns.remove(&k) {
                Ok(()) => {}
                Err(aya::maps::MapError::SyscallError(e))
                    if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(map_err("fast_conns")(e)),
            }
        }
        self.fast_entries = 0;
        Ok(())
    }

    /// The fast path's counters: `(stats_index, packets, bytes)` summed over CPUs, for every
    /// slot up to the highest `stats_index` an entry has used that counted anything, in index
    /// order. Counters only grow (until [`Self::fast_stats_clear`]); bytes are IP datagram
    /// lengths as received. One batched system call per 1024 slots.
    pub fn fast_stats(&self) -> Result<Vec<(u32, u64, u64)>, IoError> {
        const CHUNK: u32 = 1024;
        let Some(high) = self.stats_high else {
            return Ok(Vec::new());
        };
        let ncpus = nr_cpus()?;
        let value_size = std::mem::size_of::<RawFastStats>(); // 16: already a multiple of 8
        let want = high + 1;
        let mut keys = vec![0u32; CHUNK.min(want) as usize];
        let mut values = vec![0u8; keys.len() * value_size * ncpus];
        let fd = self.fast_stats.map().fd().as_fd();
        let mut out = Vec::new();
        let (mut token, mut seen) = (None, 0u32);
        while seen < want {
            let mut next = 0u32;
            let (n, done) = sys::bpf_map_lookup_batch_u32(
                fd,
                token,
                &mut next,
                &mut keys,
                &mut values,
                CHUNK.min(want - seen),
            )
            .map_err(IoError::sys("bpf(BPF_MAP_LOOKUP_BATCH) fast_stats"))?;
            for (i, &index) in keys.iter().enumerate().take(n as usize) {
                let (mut packets, mut bytes) = (0u64, 0u64);
                for cpu in 0..ncpus {
                    let at = (i * ncpus + cpu) * value_size;
                    let word = |o: usize| {
                        let mut w = [0u8; 8];
                        w.copy_from_slice(&values[at + o..at + o + 8]);
                        u64::from_ne_bytes(w)
                    };
                    packets = packets.wrapping_add(word(0));
                    bytes = bytes.wrapping_add(word(8));
                }
                if index <= high && (packets != 0 || bytes != 0) {
                    out.push((index, packets, bytes));
                }
            }
            seen += n;
            if done || n == 0 {
                break;
            }
            token = Some(next);
        }
        Ok(out)
    }

    /// Zeroes the counters of slot `index` (for reusing it for another real server).
    pub fn fast_stats_clear(&mut self, index: u32) -> Result<(), IoError> {
        let zero =
            PerCpuValues::try_from(vec![RawFastStats::default(); nr_cpus()?]).map_err(|e| {
                IoError::BpfMap {
                    map: "fast_stats",
                    source: e.into(),
                }
            })?;
        self.fast_stats
            .set(index, zero, 0)
            .map_err(map_err("fast_stats"))
    }

    /// Detaches the program from every interface and unloads it (same as dropping).
    pub fn detach(self) {
        drop(self);
    }
}

impl std::fmt::Debug for Steering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steering")
            .field("prog_id", &self.prog_id)
            .field(
                "interfaces",
                &self
                    .links
                    .iter()
                    .map(|l| (l.ifname.as_str(), l.ifindex, l.mode))
                    .collect::<Vec<_>>(),
            )
            .field("fast_entries", &self.fast_entries)
            .finish_non_exhaustive()
    }
}

/// The TUN decapsulation program attached to one interface of a real server.
pub struct TunDecap {
    /// First, so the program is detached before the map handles close.
    prog: Attached,
    decap_vips: HashMap<MapData, RawAddrKey, u32>,
    local_addrs: HashMap<MapData, RawAddrKey, u32>,
    stats: PerCpuArray<MapData, u64>,
}

impl TunDecap {
    /// Loads the decapsulation program and attaches it to `ifname`. This host's addresses (all
    /// addresses in the calling thread's namespace, read once here) become the valid outer
    /// destinations; keep them current with [`Self::add_local_addr`] / [`Self::del_local_addr`].
    pub fn attach(ifname: &str, mode: XdpMode) -> Result<Self, IoError> {
        let mut prog = Attached::load("tun_decap", TUN_DECAP_OBJ, "rvs_tun_decap", ifname, mode)?;
        let mut t = Self {
            decap_vips: take_map(&mut prog.ebpf, "decap_vips")?,
            local_addrs: take_map(&mut prog.ebpf, "local_addrs")?,
            stats: take_map(&mut prog.ebpf, "stats")?,
            prog,
        };
        fill_local_addrs(&mut t.local_addrs)?;
        Ok(t)
    }

    /// The mode the kernel attached the program in.
    pub fn attached_mode(&self) -> XdpMode {
        self.prog.link.mode
    }

    /// Interface index.
    pub fn ifindex(&self) -> u32 {
        self.prog.link.ifindex
    }

    /// Interface name.
    pub fn ifname(&self) -> &str {
        &self.prog.link.ifname
    }

    /// Kernel id of the loaded program (0 if the kernel would not say).
    pub fn prog_id(&self) -> u32 {
        self.prog.prog_id
    }

    /// Decapsulates tunnelled packets whose inner destination is `vip`.
    pub fn add_vip(&mut self, vip: IpAddr) -> Result<(), IoError> {
        self.decap_vips
            .insert(RawAddrKey::from(&vip), 1, 0)
            .map_err(map_err("decap_vips"))
    }

    /// Reverts [`Self::add_vip`].
    pub fn del_vip(&mut self, vip: IpAddr) -> Result<(), IoError> {
        remove_if_present(&mut self.decap_vips, &RawAddrKey::from(&vip), "decap_vips")
    }

    /// Accepts tunnel packets addressed to `addr`.
    pub fn add_local_addr(&mut self, addr: IpAddr) -> Result<(), IoError> {
        self.local_addrs
            .insert(RawAddrKey::from(&addr), 1, 0)
            .map_err(map_err("local_addrs"))
    }

    /// Reverts [`Self::add_local_addr`].
    pub fn del_local_addr(&mut self, addr: IpAddr) -> Result<(), IoError> {
        remove_if_present(
            &mut self.local_addrs,
            &RawAddrKey::from(&addr),
            "local_addrs",
        )
    }

    /// Runs the program once on `frame` (`BPF_PROG_TEST_RUN`): its verdict and the frame as it
    /// left it (decapsulated or untouched). For self-checks and tests.
    pub fn test_run(&self, frame: &[u8]) -> Result<(XdpAction, Vec<u8>), IoError> {
        test_run_prog(&self.prog.ebpf, "rvs_tun_decap", frame, None)
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> Result<DecapCounters, IoError> {
        let c: [u64; 7] = sum_counters(&self.stats, "stats")?;
        Ok(DecapCounters {
            passed: c[0],
            decap_v4: c[1],
            decap_v6: c[2],
            not_local: c[3],
            not_vip: c[4],
            fragment: c[5],
            error: c[6],
        })
    }

    /// Detaches the program (same as dropping).
    pub fn detach(self) {
        drop(self);
    }
}

impl std::fmt::Debug for TunDecap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunDecap")
            .field("ifname", &self.prog.link.ifname)
            .field("ifindex", &self.prog.link.ifindex)
            .field("mode", &self.prog.link.mode)
            .finish_non_exhaustive()
    }
}

/// The XDP program attached to `ifname` in the calling thread's namespace, if any (netlink
/// `IFLA_XDP`, what `ip -d link show` prints). For rvsd's self-checks and for tests.
pub fn query(ifname: &str) -> Result<Option<XdpAttachment>, IoError> {
    netlink::xdp_query(ifname)
}

/// A program that passes every frame, attached in native mode to one interface.
///
/// A veth drops the frames an XDP program sends out of its peer unless it is ready for them: a
/// redirect into the peer (the fast path towards another interface) needs this end's NAPI,
/// which an attached native XDP program or GRO (`ethtool -K <dev> gro on`) turns on; `XDP_TX`
/// out of the peer (the fast path back out of the receiving interface) needs an XDP program
/// on this end, GRO is not enough. Put this on the far end of every veth a [`Steering`]
/// serves when the far end runs no XDP program of its own (a real server with [`TunDecap`]
/// needs nothing more). Detached on drop, like the others.
#[derive(Debug)]
pub struct XdpPass {
    prog: Attached,
}

impl XdpPass {
    /// Loads the program and attaches it to `ifname` in native mode.
    ///
    /// # Errors
    /// [`IoError::NoSuchInterface`], [`IoError::BpfLoad`], [`IoError::Attach`] (`EBUSY`:
    /// another XDP program is attached; `EOPNOTSUPP`: the driver has no native XDP).
    pub fn attach(ifname: &str) -> Result<Self, IoError> {
        let prog = Attached::load(
            "xdp_pass",
            XDP_PASS_OBJ,
            "rvs_xdp_pass",
            ifname,
            XdpMode::Native,
        )?;
        Ok(Self { prog })
    }

    /// Interface index.
    pub fn ifindex(&self) -> u32 {
        self.prog.link.ifindex
    }

    /// Interface name.
    pub fn ifname(&self) -> &str {
        &self.prog.link.ifname
    }

    /// Kernel id of the loaded program (0 if the kernel would not say).
    pub fn prog_id(&self) -> u32 {
        self.prog.prog_id
    }

    /// Detaches the program (same as dropping).
    pub fn detach(self) {
        drop(self);
    }
}

/// Options of a [`TrafficGen`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenOptions {
    /// Source addresses to send from: the template's, the next one, … (`1`: the template's
    /// only). Above 1 the template must be an untagged IPv4 TCP or UDP frame without options.
    pub src_addrs: u32,
    /// Source ports to send from: the template's, the next one, … (`1`: the template's only).
    /// Same condition as `src_addrs`.
    pub src_ports: u32,
    /// Frames the kernel builds and transmits per batch (1..=256).
    pub batch: u32,
}

impl Default for GenOptions {
    /// One flow, batches of 64 (the kernel's default and the usual NAPI budget).
    fn default() -> Self {
        Self {
            src_addrs: 1,
            src_ports: 1,
            batch: 64,
        }
    }
}

/// What [`TrafficGen::run_for`] sent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GenReport {
    /// Frames offered to the interface (program runs). Frames the driver or the peer could not
    /// take are dropped without being counted apart: count what arrives at the receiver.
    pub frames: u64,
    /// Wall-clock time spent sending.
    pub elapsed: Duration,
}

impl GenReport {
    /// Frames offered per second.
    pub fn pps(&self) -> f64 {
        self.frames as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// `struct gen_config` of bpf/xdp_gen.bpf.c.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct RawGenConfig {
    data: [u8; TrafficGen::RESTORED],
    n_addrs: u32,
    n_ports: u32,
    l4: u32,
    pad: u32,
}

// SAFETY: repr(C), a byte array of 64 followed by four u32: no padding, every bit pattern valid.
unsafe impl aya::Pod for RawGenConfig {}

/// `gen_config.l4`: no transport checksum to update, UDP, TCP.
const GEN_L4_NONE: u32 = 0;
const GEN_L4_UDP: u32 = 1;
const GEN_L4_TCP: u32 = 2;

impl RawGenConfig {
    /// The program's configuration for `frame` and `options`, checked.
    fn new(frame: &[u8], options: &GenOptions) -> Result<Self, IoError> {
        let bad = |why: String| {
            Err(IoError::InvalidArgument(format!(
                "traffic generator: {why}"
            )))
        };
        if !(TrafficGen::MIN_FRAME..=TrafficGen::MAX_FRAME).contains(&frame.len()) {
            return bad(format!(
                "frame of {} bytes: {}..={} needed",
                frame.len(),
                TrafficGen::MIN_FRAME,
                TrafficGen::MAX_FRAME
            ));
        }
        if !(1..=256).contains(&options.batch) {
            return bad(format!("batch {}: 1..=256 needed", options.batch));
        }
        if options.src_addrs == 0 || options.src_ports == 0 {
            return bad("source address and port counts must be at least 1".to_owned());
        }
        let mut l4 = GEN_L4_NONE;
        if options.src_addrs > 1 || options.src_ports > 1 {
            // Untagged IPv4, IHL 5, not a fragment: the offsets the program uses.
            let ipv4 = frame[12..14] == [0x08, 0x00]
                && frame[14] == 0x45
                && u16::from_be_bytes([frame[20], frame[21]]) & 0x3fff == 0;
            l4 = match (ipv4, frame[23]) {
                (true, IPPROTO_UDP) if frame[40..42] == [0, 0] => GEN_L4_NONE,
                (true, IPPROTO_UDP) => GEN_L4_UDP,
                (true, IPPROTO_TCP) => GEN_L4_TCP,
                _ => {
                    return bad(
                        "varying sources needs an untagged, unfragmented IPv4 TCP or UDP frame \
                         without IP options"
                            .to_owned(),
                    );
                }
            };
            let saddr = u32::from_be_bytes([frame[26], frame[27], frame[28], frame[29]]);
            if u64::from(saddr) + u64::from(options.src_addrs) > 1 << 32 {
                return bad(format!(
                    "{} source addresses from {} run past 255.255.255.255",
                    options.src_addrs,
                    Ipv4Addr::from(saddr)
                ));
            }
            let sport = u16::from_be_bytes([frame[34], frame[35]]);
            if u32::from(sport) + options.src_ports > 1 << 16 {
                return bad(format!(
                    "{} source ports from {sport} run past 65535",
                    options.src_ports
                ));
            }
        }
        let mut data = [0u8; TrafficGen::RESTORED];
        let n = frame.len().min(TrafficGen::RESTORED);
        data[..n].copy_from_slice(&frame[..n]);
        Ok(Self {
            data,
            n_addrs: options.src_addrs,
            n_ports: options.src_ports,
            l4,
            pad: 0,
        })
    }
}

/// A traffic generator: transmits a frame out of an interface from inside the kernel
/// (`BPF_PROG_RUN` in live-frames mode, as xdp-trafficgen does), millions per second on one
/// core, optionally from many flows. For load tests and benchmarks (`rvs bench gen`).
///
/// Each transmission is the template frame, or with [`GenOptions::src_addrs`] /
/// [`GenOptions::src_ports`] above 1 the template from a source address and port picked at
/// random in those ranges, with the IPv4 and TCP/UDP checksums updated (bpf/xdp_gen.bpf.c).
///
/// The frames leave through the driver's XDP transmit path (`ndo_xdp_xmit`), so the interface
/// must support being an XDP redirect target; a veth delivers them only if its peer runs NAPI
/// (an XDP program attached in native mode, see [`XdpPass`], or GRO).
///
/// ```no_run
/// # fn main() -> Result<(), rvs_io::IoError> {
/// use rvs_io::xdp::{GenOptions, TrafficGen};
/// # let frame = vec![0u8; 60];
/// let options = GenOptions { src_addrs: 8, src_ports: 512, ..GenOptions::default() };
/// let generator = TrafficGen::with_options("eth0", &frame, options)?;
/// let report = generator.run_for(std::time::Duration::from_secs(10))?;
/// println!("{} frames, {:.0} pps", report.frames, report.pps());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TrafficGen {
    ebpf: Ebpf,
    ifindex: u32,
    netns: File,
    frame: Vec<u8>,
    options: GenOptions,
}

impl TrafficGen {
    /// Shortest frame accepted: 60 bytes, a 64-byte frame on the wire with its FCS.
    pub const MIN_FRAME: usize = 60;
    /// Longest frame accepted.
    pub const MAX_FRAME: usize = 3000;
    /// Bytes of the template the program writes back over every frame before sending it (all
    /// of a shorter frame): the kernel reuses frame buffers without restoring them, and
    /// whatever the frames meet may rewrite their headers in place.
    pub const RESTORED: usize = 64;

    /// Loads the generator for `frame` (a whole Ethernet frame) on `ifname`, resolved in the
    /// calling thread's namespace: one flow, batches of 64.
    ///
    /// # Errors
    /// As [`Self::with_options`].
    pub fn new(ifname: &str, frame: &[u8]) -> Result<Self, IoError> {
        Self::with_options(ifname, frame, GenOptions::default())
    }

    /// Loads the generator for `frame` on `ifname` (calling thread's namespace) with `options`.
    ///
    /// # Errors
    /// [`IoError::NoSuchInterface`]; [`IoError::InvalidArgument`] for a frame outside
    /// [`Self::MIN_FRAME`]..=[`Self::MAX_FRAME`] bytes, a batch outside 1..=256, a zero count,
    /// source ranges running past the last address or port, or varying sources of a frame
    /// that is not untagged IPv4 TCP/UDP without options; [`IoError::BpfLoad`],
    /// [`IoError::BpfMap`].
    pub fn with_options(ifname: &str, frame: &[u8], options: GenOptions) -> Result<Self, IoError> {
        let config = RawGenConfig::new(frame, &options)?;
        let ifindex = sys::if_nametoindex(ifname)
            .ok_or_else(|| IoError::NoSuchInterface(ifname.to_owned()))?;
        let (mut ebpf, _) = load_object("xdp_gen", XDP_GEN_OBJ, "rvs_xdp_gen", &[])?;
        let mut map: Array<MapData, RawGenConfig> = take_map(&mut ebpf, "gen_config")?;
        map.set(0, config, 0).map_err(map_err("gen_config"))?;
        Ok(Self {
            ebpf,
            ifindex,
            netns: netns::current_file()?,
            frame: frame.to_vec(),
            options,
        })
    }

    /// The options the generator was loaded with.
    pub fn options(&self) -> GenOptions {
        self.options
    }

    /// Transmits `count` frames and returns when the kernel has handed them all to the driver
    /// (the calling thread is busy in the kernel meanwhile; it briefly enters the interface's
    /// namespace). Frames the driver cannot take are dropped and not reported.
    ///
    /// The frames go out in runs of at most [`Self::SEND_CHUNK`]. The kernel abandons a run
    /// when a signal is pending (`EINTR`) without saying how many frames it sent; such a run
    /// is repeated whole, so an interrupted call sends up to one run more than `count`.
    pub fn send(&self, count: u32) -> Result<(), IoError> {
        let fd = program_fd(&self.ebpf, "rvs_xdp_gen")?;
        let _ns = netns::enter_file(&self.netns)?;
        let mut left = count;
        while left > 0 {
            let run = left.min(Self::SEND_CHUNK);
            self.send_fd(fd, run)?;
            left -= run;
        }
        Ok(())
    }

    /// The longest run of frames [`Self::send`] asks the kernel for in one call.
    pub const SEND_CHUNK: u32 = 1 << 16;

    /// One `BPF_PROG_RUN` of `count` frames, repeated (a few times at most) while the kernel
    /// reports it interrupted.
    fn send_fd(&self, fd: BorrowedFd<'_>, count: u32) -> Result<(), IoError> {
        let mut tries = 0;
        loop {
            match sys::bpf_prog_run_xdp_live(
                fd,
                &self.frame,
                self.ifindex,
                count,
                self.options.batch,
            ) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted && tries < 8 => tries += 1,
                r => return r.map_err(IoError::sys("bpf(BPF_PROG_RUN, live frames)")),
            }
        }
    }

    /// Transmits from the calling thread for `duration` (within about a quarter of a second:
    /// the kernel is asked for as many frames as fit in 250 ms at the rate measured so far,
    /// since every call sets up and tears down a page pool).
    ///
    /// # Errors
    /// As [`Self::send`] (interrupted runs are repeated there too).
    pub fn run_for(&self, duration: Duration) -> Result<GenReport, IoError> {
        let fd = program_fd(&self.ebpf, "rvs_xdp_gen")?;
        let _ns = netns::enter_file(&self.netns)?;
        let start = Instant::now();
        let deadline = start + duration;
        let mut frames = 0u64;
        let mut repeat: u32 = 4096;
        while Instant::now() < deadline {
            let t = Instant::now();
            self.send_fd(fd, repeat)?;
            frames += u64::from(repeat);
            let per_frame = t.elapsed().as_secs_f64().max(1e-6) / f64::from(repeat);
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_secs_f64();
            repeat = (0.25f64.min(left) / per_frame).clamp(64.0, 4_000_000.0) as u32;
        }
        Ok(GenReport {
            frames,
            elapsed: start.elapsed(),
        })
    }

    /// Runs the program once in the kernel (`BPF_PROG_TEST_RUN`, not live: nothing is sent)
    /// and returns its verdict and the frame it would transmit. For self-checks and tests.
    pub fn test_run(&self) -> Result<(XdpAction, Vec<u8>), IoError> {
        test_run_prog(&self.ebpf, "rvs_xdp_gen", &self.frame, None)
    }
}

fn remove_if_present<K: aya::Pod>(
    map: &mut HashMap<MapData, K, u32>,
    key: &K,
    name: &'static str,
) -> Result<(), IoError> {
    match map.remove(key) {
        Ok(()) => Ok(()),
        Err(aya::maps::MapError::SyscallError(e))
            if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
        {
            Ok(())
        }
        Err(e) => Err(map_err(name)(e)),
    }
}

fn clear_map<K: aya::Pod>(
    map: &mut HashMap<MapData, K, u32>,
    name: &'static str,
) -> Result<(), IoError> {
    let keys: Vec<K> = map
        .keys()
        .collect::<Result<_, _>>()
        .map_err(map_err(name))?;
    for k in keys {
        remove_if_present(map, &k, name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn keys_match_the_c_layout() {
        assert_eq!(size_of::<RawVipKey>(), 20);
        assert_eq!(size_of::<RawAddrKey>(), 20);
        let k = VipKey::udp("198.18.0.1".parse().unwrap(), 53);
        let b = k.to_bytes();
        assert_eq!(b[0], 2);
        assert_eq!(b[1], 17);
        assert_eq!(&b[2..4], &[0, 53]);
        assert_eq!(&b[4..8], &[198, 18, 0, 1]);
        assert!(b[8..].iter().all(|&x| x == 0));
        let k6 = VipKey::tcp("2001:db8::1".parse().unwrap(), 443);
        let b6 = k6.to_bytes();
        assert_eq!(b6[0], 10);
        assert_eq!(&b6[2..4], &443u16.to_be_bytes());
        assert_eq!(&b6[4..6], &[0x20, 0x01]);
        assert_eq!(b6[19], 1);
    }

    #[test]
    fn handles_can_move_to_other_threads() {
        fn send<T: Send>() {}
        fn sync<T: Sync>() {}
        send::<Steering>();
        sync::<Steering>();
        send::<TunDecap>();
        send::<XdpPass>();
        send::<TrafficGen>();
        send::<crate::xsk::XskSocket>();
        send::<crate::netlink::Netlink>();
    }

    #[test]
    fn embedded_objects_are_bpf_elf() {
        for obj in [STEER_OBJ, TUN_DECAP_OBJ, XDP_PASS_OBJ, XDP_GEN_OBJ] {
            assert_eq!(&obj[..4], b"\x7fELF");
            assert_eq!(obj[4], 2, "ELF64");
            // e_machine at offset 18: EM_BPF = 247
            assert_eq!(u16::from_le_bytes([obj[18], obj[19]]), 247);
        }
    }

    #[test]
    fn flow_key_matches_the_c_layout() {
        let k = FlowKey {
            proto: IPPROTO_UDP,
            saddr: "198.18.0.1".parse().unwrap(),
            daddr: "198.18.1.2".parse().unwrap(),
            sport: 0x1234,
            dport: 53,
        };
        let mut want = [0u8; 40];
        want[..8].copy_from_slice(&[2, 17, 0x12, 0x34, 0, 53, 0, 0]);
        want[8..12].copy_from_slice(&[198, 18, 0, 1]);
        want[24..28].copy_from_slice(&[198, 18, 1, 2]);
        assert_eq!(k.to_bytes(), want);
        assert_eq!(FlowKey::from_bytes(&want), Some(k));

        let k6 = FlowKey {
            proto: IPPROTO_TCP,
            saddr: "2001:db8::1".parse().unwrap(),
            daddr: "2001:db8::2".parse().unwrap(),
            sport: 443,
            dport: 40000,
        };
        let b = k6.to_bytes();
        assert_eq!(&b[..8], &[10, 6, 1, 187, 0x9c, 0x40, 0, 0]);
        assert_eq!(&b[8..10], &[0x20, 0x01]);
        assert_eq!((b[23], b[39]), (1, 2));
        assert_eq!(FlowKey::from_bytes(&b), Some(k6));
        let mut bad = b;
        bad[0] = 7;
        assert_eq!(FlowKey::from_bytes(&bad), None);
    }

    #[test]
    fn fast_action_matches_the_c_layout() {
        let key = FlowKey {
            proto: IPPROTO_TCP,
            saddr: "198.18.0.1".parse().unwrap(),
            daddr: "198.18.0.100".parse().unwrap(),
            sport: 40000,
            dport: 80,
        };
        let a = FastAction {
            kind: FastKind::Tunnel4,
            max_len: 1480,
            egress_ifindex: 0x0102_0304,
            egress_slot: 3,
            stats_index: 0x0a0b,
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_mac: [2, 0, 0, 0, 0, 2],
            port: 0,
            addr1: "198.18.2.2".parse().unwrap(),
            addr2: Some("198.18.1.1".parse().unwrap()),
        };
        let b = a.to_bytes();
        assert_eq!((b[0], b[1]), (4, 0));
        assert_eq!(&b[2..4], &1480u16.to_ne_bytes());
        assert_eq!(&b[4..8], &0x0102_0304u32.to_ne_bytes());
        assert_eq!(&b[8..12], &3u32.to_ne_bytes());
        assert_eq!(&b[12..16], &0x0a0bu32.to_ne_bytes());
        assert_eq!(&b[16..28], &[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
        assert_eq!(&b[28..32], &[0, 0, 0, 0]);
        assert_eq!(&b[32..36], &[198, 18, 2, 2]);
        assert!(b[36..48].iter().all(|&x| x == 0));
        assert_eq!(&b[48..52], &[198, 18, 1, 1]);
        assert!(b[52..].iter().all(|&x| x == 0), "last_seen_ns 0");
        let mut stamped = b;
        stamped[64..].copy_from_slice(&77u64.to_ne_bytes());
        assert_eq!(FastAction::from_bytes(&stamped, &key), Some((a, 77)));

        let nat = FastAction {
            kind: FastKind::NatSrc,
            port: 8080,
            addr1: "2001:db8::100".parse().unwrap(),
            addr2: None,
            ..a
        };
        let b = nat.to_bytes();
        assert_eq!(b[0], 3);
        assert_eq!(&b[28..30], &[0x1f, 0x90], "port in network order");
        assert_eq!(&b[32..34], &[0x20, 0x01]);
        let key6 = FlowKey {
            saddr: "2001:db8::1".parse().unwrap(),
            daddr: "2001:db8::2".parse().unwrap(),
            ..key
        };
        assert_eq!(FastAction::from_bytes(&b, &key6), Some((nat, 0)));
        let mut bad = b;
        bad[0] = 9;
        assert_eq!(FastAction::from_bytes(&bad, &key6), None);
    }

    #[test]
    fn fast_entries_are_validated() {
        let key = FlowKey {
            proto: IPPROTO_UDP,
            saddr: "198.18.0.1".parse().unwrap(),
            daddr: "198.18.0.100".parse().unwrap(),
            sport: 1,
            dport: 2,
        };
        let route = FastAction {
            kind: FastKind::Route,
            max_len: 1500,
            egress_ifindex: 2,
            egress_slot: 0,
            stats_index: 0,
            dst_mac: [0; 6],
            src_mac: [0; 6],
            port: 0,
            addr1: "::".parse().unwrap(),
            addr2: None,
        };
        assert!(key.validate().is_ok());
        assert!(route.validate(&key, 10).is_ok());
        let mixed = FlowKey {
            daddr: "2001:db8::1".parse().unwrap(),
            ..key
        };
        assert!(mixed.validate().is_err());
        assert!(FlowKey { proto: 132, ..key }.validate().is_err());
        assert!(
            route.validate(&key, 0).is_err(),
            "stats_index beyond the map"
        );
        let far = FastAction {
            egress_slot: MAX_IFACES,
            ..route
        };
        assert!(far.validate(&key, 10).is_err());
        let nat6 = FastAction {
            kind: FastKind::NatDst,
            ..route
        };
        assert!(
            nat6.validate(&key, 10).is_err(),
            "IPv6 NAT address on an IPv4 flow"
        );
        let tun = FastAction {
            kind: FastKind::Tunnel6,
            addr1: "2001:db8::2".parse().unwrap(),
            addr2: None,
            ..route
        };
        assert!(tun.validate(&key, 10).is_err(), "tunnel without a source");
        let tun = FastAction {
            addr2: Some("2001:db8::1".parse().unwrap()),
            ..tun
        };
        assert!(tun.validate(&key, 10).is_ok(), "IPv4 in IPv6");
        let tun4 = FastAction {
            kind: FastKind::Tunnel4,
            ..tun
        };
        assert!(tun4.validate(&key, 10).is_err());
    }

    /// A 60-byte IPv4 UDP frame 198.18.1.10:1024 -> 198.18.0.100:53 (checksums not needed).
    fn udp4_frame() -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[20] = 0x40; // DF
        f[23] = IPPROTO_UDP;
        f[26..30].copy_from_slice(&[198, 18, 1, 10]);
        f[30..34].copy_from_slice(&[198, 18, 0, 100]);
        f[34..36].copy_from_slice(&1024u16.to_be_bytes());
        f[36..38].copy_from_slice(&53u16.to_be_bytes());
        f[40..42].copy_from_slice(&[0x12, 0x34]);
        f
    }

    #[test]
    fn traffic_gen_options_are_checked() {
        assert_eq!(size_of::<RawGenConfig>(), 80, "struct gen_config");
        let many = GenOptions {
            src_addrs: 8,
            src_ports: 512,
            batch: 64,
        };
        let f = udp4_frame();
        let c = RawGenConfig::new(&f, &many).unwrap();
        assert_eq!((c.n_addrs, c.n_ports, c.l4), (8, 512, GEN_L4_UDP));
        assert_eq!(&c.data[..60], &f[..], "the whole short frame is restored");
        assert!(c.data[60..].iter().all(|&b| b == 0));

        let mut no_csum = f.clone();
        no_csum[40..42].copy_from_slice(&[0, 0]);
        assert_eq!(RawGenConfig::new(&no_csum, &many).unwrap().l4, GEN_L4_NONE);
        let mut tcp = vec![0u8; 70];
        tcp[..60].copy_from_slice(&f);
        tcp[23] = IPPROTO_TCP;
        let c = RawGenConfig::new(&tcp, &many).unwrap();
        assert_eq!(c.l4, GEN_L4_TCP);
        assert_eq!(&c.data[..], &tcp[..64], "64 bytes of a longer frame");

        let refused = |frame: &[u8], o: GenOptions| RawGenConfig::new(frame, &o).is_err();
        assert!(refused(&f[..59], GenOptions::default()), "short frame");
        assert!(
            refused(&vec![0u8; 3001], GenOptions::default()),
            "long frame"
        );
        assert!(refused(&f, GenOptions { batch: 0, ..many }));
        assert!(refused(&f, GenOptions { batch: 257, ..many }));
        assert!(refused(
            &f,
            GenOptions {
                src_addrs: 0,
                ..many
            }
        ));
        assert!(
            refused(
                &f,
                GenOptions {
                    src_ports: 65_000,
                    ..many
                }
            ),
            "ports past 65535"
        );
        assert!(
            !refused(
                &f,
                GenOptions {
                    src_ports: 64_512,
                    ..many
                }
            ),
            "up to 65535"
        );
        let mut high = f.clone();
        high[26..30].copy_from_slice(&[255, 255, 255, 250]);
        assert!(refused(&high, many), "addresses past 255.255.255.255");
        let mut options = f.clone();
        options[14] = 0x46;
        assert!(refused(&options, many), "IP options");
        let mut fragment = f.clone();
        fragment[20] = 0x20; // MF
        assert!(refused(&fragment, many), "fragment");
        let mut icmp = f.clone();
        icmp[23] = 1;
        assert!(refused(&icmp, many), "not TCP/UDP");
        let mut v6 = f.clone();
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert!(refused(&v6, many), "not IPv4");
        assert!(
            !refused(&v6, GenOptions::default()),
            "any frame for one flow"
        );
    }

    #[test]
    fn steer_counter_fields_name_every_counter_once() {
        let c = SteerCounters {
            passed: 1,
            redirected: 2,
            no_socket: 3,
            malformed: 4,
            vip: 5,
            vip_echo: 6,
            icmp_error: 7,
            arp: 8,
            neighbour_solicit: 9,
            nat_return: 10,
            fragment: 11,
            fast_hit: 12,
            fast_punt_tcp_flags: 13,
            fast_punt_ttl: 14,
            fast_punt_too_big: 15,
            fast_punt_udp_no_checksum: 16,
            fast_punt_tunnel: 17,
            fast_punt_truncated: 18,
            fast_punt_bad_entry: 19,
            fast_redirect_fail: 20,
            fast_error: 21,
        };
        let f = c.fields();
        let values: Vec<u64> = f.iter().map(|(_, v)| *v).collect();
        assert_eq!(
            values,
            (1..=21).collect::<Vec<u64>>(),
            "every field, in order"
        );
        let names: std::collections::HashSet<_> = f.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), 21);
        assert_eq!(f[1], ("redirected", 2));
        assert_eq!(f[20], ("fast_error", 21));
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let a = monotonic_ns();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = monotonic_ns();
        assert!(b >= a + 2_000_000, "{a} {b}");
    }
}
