//! The XDP programs of rvs (built from `bpf/` by `build.rs`) and their maps.
//!
//! * [`Steering`] runs on a director's interfaces: it hands VIP traffic, ARP/ND for VIPs, NAT
//!   return traffic and the related ICMP errors to the AF_XDP socket of the receiving queue
//!   ([`crate::xsk`]), and passes everything else to the kernel.
//! * [`TunDecap`] runs on a TUN-mode real server whose kernel has no `ipip` module: it strips the
//!   outer IP header of tunnelled packets addressed to a VIP held on `lo`.
//!
//! Both attach through a **bpf_link**: the program is detached when the link's file descriptor
//! closes — on [`Steering::detach`], on drop, and also when the process dies (even by SIGKILL).
//! Nothing is pinned, so nothing outlives rvsd. If another XDP program is already attached to
//! the interface, attaching fails with `EBUSY` (a link never replaces a program it does not own).
//!
//! Interface names are resolved in the calling thread's network namespace ([`crate::netns`]).
//!
//! ```no_run
//! # fn main() -> Result<(), rvs_io::IoError> {
//! use rvs_io::xdp::{Steering, VipKey, XdpMode};
//! use rvs_io::xsk::{XskConfig, XskSocket};
//! let mut steer = Steering::attach("eth0", XdpMode::Auto)?;
//! let xsk = XskSocket::open("eth0", 0, &XskConfig::default())?;
//! steer.register_xsk(0, &xsk)?;
//! let vip = "198.18.0.100".parse().unwrap();
//! steer.add_vip(VipKey::tcp(vip, 80))?;
//! steer.add_vip_addr(vip)?; // ARP, ping, fragments
//! # Ok(()) }
//! ```

use std::collections::HashMap as StdHashMap;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use aya::Ebpf;
use aya::maps::{HashMap, MapData, PerCpuArray, XskMap};
use aya::programs::Xdp;

use crate::IoError;
use crate::netlink::{self, Netlink, XdpAttachMode};
use crate::sys;

pub use crate::netlink::XdpAttachment;

static STEER_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/steer.bpf.o"));
static TUN_DECAP_OBJ: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tun_decap.bpf.o"));

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

/// Per-interface counters of the steering program, summed over CPUs.
///
/// Every frame is counted once in exactly one of `passed`, `malformed`, `redirected` and
/// `no_socket`; frames handed to rvs are also counted once in one category
/// (`vip` .. `fragment`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SteerCounters {
    /// Not for rvs: passed to the kernel.
    pub passed: u64,
    /// Handed to the AF_XDP socket of the receiving queue.
    pub redirected: u64,
    /// For rvs, but no socket registered for the receiving queue: passed to the kernel.
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

/// A loaded program attached to one interface through a bpf_link.
#[derive(Debug)]
struct Attached {
    /// Declared first so it drops first: closing the link fd detaches the program.
    link: Option<OwnedFd>,
    ebpf: Ebpf,
    ifindex: u32,
    ifname: String,
    mode: XdpMode,
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
        let load_err = |source: BoxError| IoError::BpfLoad {
            program: label,
            source,
        };
        let mut ebpf = Ebpf::load(obj).map_err(|e| load_err(e.into()))?;
        let prog: &mut Xdp = ebpf
            .program_mut(prog_name)
            .ok_or_else(|| load_err(format!("no program {prog_name} in object").into()))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| load_err(e.into()))?;
        prog.load().map_err(|e| load_err(e.into()))?;
        let prog_fd = prog.fd().map_err(|e| load_err(e.into()))?.as_fd();
        let (link, got) = attach_link(prog_fd, ifindex, ifname, mode)?;
        let prog_id = prog.info().map(|i| i.id()).unwrap_or(0);

        // Report what the kernel actually did, not what we asked for.
        let mode = match netlink::xdp_query(ifname) {
            Ok(Some(a)) if a.mode == XdpAttachMode::Skb => XdpMode::Skb,
            Ok(Some(a)) if a.mode == XdpAttachMode::Native => XdpMode::Native,
            _ => got,
        };
        Ok(Self {
            link: Some(link),
            ebpf,
            ifindex,
            ifname: ifname.to_owned(),
            mode,
            prog_id,
        })
    }

    fn test_run(&self, prog_name: &str, frame: &[u8]) -> Result<(XdpAction, Vec<u8>), IoError> {
        let prog = self
            .ebpf
            .program(prog_name)
            .ok_or(IoError::Unsupported("program missing from object"))?;
        let fd = prog.fd().map_err(|e| IoError::BpfLoad {
            program: "test_run",
            source: e.into(),
        })?;
        let mut out = vec![0u8; frame.len() + 256];
        let (ret, len) = sys::bpf_prog_test_run_xdp(fd.as_fd(), frame, &mut out)
            .map_err(IoError::sys("bpf(BPF_PROG_TEST_RUN)"))?;
        out.truncate(len);
        Ok((XdpAction::from(ret), out))
    }

    fn take_map<T>(&mut self, name: &'static str) -> Result<T, IoError>
    where
        T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map = self.ebpf.take_map(name).ok_or_else(|| IoError::BpfMap {
            map: name,
            source: "missing from the object".into(),
        })?;
        T::try_from(map).map_err(map_err(name))
    }
}

type BoxError = crate::error::BoxError;

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> IoError {
    move |e| IoError::BpfMap {
        map,
        source: e.into(),
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

fn sum_counters(
    stats: &PerCpuArray<MapData, u64>,
    map: &'static str,
) -> Result<[u64; 16], IoError> {
    let mut out = [0u64; 16];
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

/// The steering program attached to one interface, with its maps. See the module docs.
pub struct Steering {
    prog: Attached,
    xsks: XskMap<MapData>,
    vips: HashMap<MapData, RawVipKey, u32>,
    vip_addrs: HashMap<MapData, RawAddrKey, u32>,
    nat_sources: HashMap<MapData, RawVipKey, u32>,
    nat_addrs: HashMap<MapData, RawAddrKey, u32>,
    local_addrs: HashMap<MapData, RawAddrKey, u32>,
    stats: PerCpuArray<MapData, u64>,
    /// How many nat_sources entries use each address (nat_addrs holds the address while > 0).
    nat_addr_refs: StdHashMap<RawAddrKey, u32>,
}

impl Steering {
    /// Loads the steering program and attaches it to `ifname`.
    ///
    /// The director's own addresses (every address in the calling thread's network namespace,
    /// read once here) are put in the `local_addrs` map so that traffic from NAT real servers
    /// to the director itself (health checks) stays with the kernel; keep it current with
    /// [`Self::add_local_addr`] / [`Self::del_local_addr`].
    ///
    /// # Errors
    /// [`IoError::NoSuchInterface`], [`IoError::BpfLoad`] (verifier log inside),
    /// [`IoError::Attach`] (`EBUSY`: another XDP program is attached; `EOPNOTSUPP`: no native
    /// XDP with [`XdpMode::Native`]).
    pub fn attach(ifname: &str, mode: XdpMode) -> Result<Self, IoError> {
        let mut prog = Attached::load("steer", STEER_OBJ, "rvs_steer", ifname, mode)?;
        let mut s = Self {
            xsks: prog.take_map("xsks")?,
            vips: prog.take_map("vips")?,
            vip_addrs: prog.take_map("vip_addrs")?,
            nat_sources: prog.take_map("nat_sources")?,
            nat_addrs: prog.take_map("nat_addrs")?,
            local_addrs: prog.take_map("local_addrs")?,
            stats: prog.take_map("stats")?,
            prog,
            nat_addr_refs: StdHashMap::new(),
        };
        fill_local_addrs(&mut s.local_addrs)?;
        Ok(s)
    }

    /// The mode the kernel attached the program in ([`XdpMode::Native`] or [`XdpMode::Skb`]).
    pub fn attached_mode(&self) -> XdpMode {
        self.prog.mode
    }

    /// Interface index.
    pub fn ifindex(&self) -> u32 {
        self.prog.ifindex
    }

    /// Interface name.
    pub fn ifname(&self) -> &str {
        &self.prog.ifname
    }

    /// Kernel id of the loaded program (0 if the kernel would not say).
    pub fn prog_id(&self) -> u32 {
        self.prog.prog_id
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

    /// Removes every virtual service, VIP address and NAT source (not the registered sockets
    /// nor the local addresses).
    pub fn clear(&mut self) -> Result<(), IoError> {
        clear_map(&mut self.vips, "vips")?;
        clear_map(&mut self.vip_addrs, "vip_addrs")?;
        clear_map(&mut self.nat_sources, "nat_sources")?;
        clear_map(&mut self.nat_addrs, "nat_addrs")?;
        self.nat_addr_refs.clear();
        Ok(())
    }

    /// Routes frames received on rx queue `queue` to an AF_XDP socket bound to this interface
    /// and queue (an [`crate::xsk::XskSocket`], or any fd via `&OwnedFd`/`BorrowedFd`).
    /// Replaces an earlier registration for the queue. Closing the socket removes it from the
    /// map (the kernel does that on release), after which the queue's frames are passed to
    /// the kernel and counted in [`SteerCounters::no_socket`].
    pub fn register_xsk(&mut self, queue: u32, socket: impl AsFd) -> Result<(), IoError> {
        self.xsks
            .set(queue, socket.as_fd().as_raw_fd(), 0)
            .map_err(map_err("xsks"))
    }

    /// Stops redirecting queue `queue`: its frames go to the kernel again.
    pub fn unregister_xsk(&mut self, queue: u32) -> Result<(), IoError> {
        match self.xsks.unset(queue) {
            Ok(()) => Ok(()),
            Err(aya::maps::MapError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
            {
                Ok(())
            }
            Err(e) => Err(map_err("xsks")(e)),
        }
    }

    /// Runs the program once on `frame` in the kernel (`BPF_PROG_TEST_RUN`) without receiving
    /// or sending anything: returns its verdict and the frame as it left it. Counters count it
    /// like a received frame. A test run is "received" on queue 0: frames for rvs give
    /// [`XdpAction::Redirect`] if a socket is registered for queue 0, otherwise
    /// [`XdpAction::Pass`] (and count in [`SteerCounters::no_socket`]); nothing is delivered
    /// either way. For self-checks and tests.
    pub fn test_run(&self, frame: &[u8]) -> Result<(XdpAction, Vec<u8>), IoError> {
        self.prog.test_run("rvs_steer", frame)
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> Result<SteerCounters, IoError> {
        let c = sum_counters(&self.stats, "stats")?;
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
        })
    }

    /// Detaches the program and unloads it (same as dropping).
    pub fn detach(self) {
        drop(self);
    }
}

impl std::fmt::Debug for Steering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steering")
            .field("ifname", &self.prog.ifname)
            .field("ifindex", &self.prog.ifindex)
            .field("mode", &self.prog.mode)
            .field("prog_id", &self.prog.prog_id)
            .finish_non_exhaustive()
    }
}

impl Drop for Steering {
    fn drop(&mut self) {
        // Detach before the maps go away; the kernel then frees program and maps.
        self.prog.link.take();
    }
}

/// The TUN decapsulation program attached to one interface of a real server.
pub struct TunDecap {
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
            decap_vips: prog.take_map("decap_vips")?,
            local_addrs: prog.take_map("local_addrs")?,
            stats: prog.take_map("stats")?,
            prog,
        };
        fill_local_addrs(&mut t.local_addrs)?;
        Ok(t)
    }

    /// The mode the kernel attached the program in.
    pub fn attached_mode(&self) -> XdpMode {
        self.prog.mode
    }

    /// Interface index.
    pub fn ifindex(&self) -> u32 {
        self.prog.ifindex
    }

    /// Interface name.
    pub fn ifname(&self) -> &str {
        &self.prog.ifname
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
        self.prog.test_run("rvs_tun_decap", frame)
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> Result<DecapCounters, IoError> {
        let c = sum_counters(&self.stats, "stats")?;
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
            .field("ifname", &self.prog.ifname)
            .field("ifindex", &self.prog.ifindex)
            .field("mode", &self.prog.mode)
            .finish_non_exhaustive()
    }
}

impl Drop for TunDecap {
    fn drop(&mut self) {
        self.prog.link.take();
    }
}

/// The XDP program attached to `ifname` in the calling thread's namespace, if any (netlink
/// `IFLA_XDP`, what `ip -d link show` prints). For rvsd's self-checks and for tests.
pub fn query(ifname: &str) -> Result<Option<XdpAttachment>, IoError> {
    netlink::xdp_query(ifname)
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
        send::<crate::xsk::XskSocket>();
        send::<crate::netlink::Netlink>();
    }

    #[test]
    fn embedded_objects_are_bpf_elf() {
        for obj in [STEER_OBJ, TUN_DECAP_OBJ] {
            assert_eq!(&obj[..4], b"\x7fELF");
            assert_eq!(obj[4], 2, "ELF64");
            // e_machine at offset 18: EM_BPF = 247
            assert_eq!(u16::from_le_bytes([obj[18], obj[19]]), 247);
        }
    }
}
