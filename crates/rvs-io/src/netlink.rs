//! A small synchronous rtnetlink client: links, addresses, neighbours, routes.
//!
//! Why not rtnetlink/netlink-packet-route: rvs needs a dozen request types, called from data-plane
//! worker setup, from the `rvs realserver`/`rvs lab` tools and from tests, often inside a network
//! namespace entered by one thread ([`crate::netns`]). A blocking socket owned by the caller has
//! no runtime to start, is bound to the namespace of the thread that opened it, and fits in one
//! file with no dependency churn. The control plane can call it from
//! `tokio::task::spawn_blocking`; each call is one request and its answer, typically well under
//! a millisecond.
//!
//! A [`Netlink`] talks to the network namespace its creating thread was in when
//! [`Netlink::open`] ran, for its whole life.
//!
//! ```no_run
//! # fn main() -> Result<(), rvs_io::IoError> {
//! use rvs_io::netlink::Netlink;
//! let mut nl = Netlink::open()?;
//! let lo = nl.link_by_name("lo")?;
//! nl.add_address(lo.ifindex, "198.18.0.10".parse().unwrap(), 32)?;
//! let route = nl.route_get("198.18.1.1".parse().unwrap())?;
//! println!("via {:?} dev {:?} src {:?}", route.gateway, route.oif, route.prefsrc);
//! # Ok(()) }
//! ```

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, OwnedFd};

use crate::IoError;
use crate::sys;

/// An Ethernet (MAC) address.
pub type MacAddr = [u8; 6];

// linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h, linux/neighbour.h
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWNEIGH: u16 = 28;
const RTM_DELNEIGH: u16 = 29;
const RTM_GETNEIGH: u16 = 30;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_XDP_PROG_ID: u16 = 4;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const IFA_F_NODAD: u32 = 0x02;

const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NTF_USE: u8 = 0x01;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PREFSRC: u16 = 7;
const RTA_TABLE: u16 = 15;
const RTM_F_LOOKUP_TABLE: u32 = 0x1000;
const NLA_TYPE_MASK: u16 = 0x3fff;

const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;

/// How an XDP program is attached to a link (`IFLA_XDP_ATTACHED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum XdpAttachMode {
    /// In the driver (native XDP).
    Native,
    /// Generic XDP, run by the kernel stack on an skb.
    Skb,
    /// Offloaded to the NIC.
    Hardware,
    /// More than one of the above at once.
    Multi,
}

/// The XDP program attached to a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XdpAttachment {
    /// How it is attached.
    pub mode: XdpAttachMode,
    /// Kernel program id (as `bpftool prog show id N`); 0 for [`XdpAttachMode::Multi`].
    pub prog_id: u32,
}

/// A network interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub ifindex: u32,
    /// Interface name.
    pub name: String,
    /// Hardware address, if the link has an Ethernet-style one.
    pub mac: Option<MacAddr>,
    /// MTU in bytes.
    pub mtu: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Operationally up (`IFF_RUNNING`: carrier present).
    pub running: bool,
    /// The raw `IFF_*` flags.
    pub flags: u32,
    /// The attached XDP program, if any.
    pub xdp: Option<XdpAttachment>,
}

/// An address configured on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressInfo {
    /// Interface index.
    pub ifindex: u32,
    /// The local address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Scope (`RT_SCOPE_*`: 0 universe, 253 link, 254 host).
    pub scope: u8,
    /// `IFA_F_*` flags (e.g. 0x40 tentative, 0x80 permanent).
    pub flags: u32,
}

/// Neighbour (ARP/ND) entry state, the kernel's `NUD_*` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NeighState(pub u16);

impl NeighState {
    /// Resolution in progress.
    pub const INCOMPLETE: Self = Self(0x01);
    /// Confirmed recently.
    pub const REACHABLE: Self = Self(0x02);
    /// Usable but not confirmed recently.
    pub const STALE: Self = Self(0x04);
    /// Waiting before probing.
    pub const DELAY: Self = Self(0x08);
    /// Being probed.
    pub const PROBE: Self = Self(0x10);
    /// Resolution failed.
    pub const FAILED: Self = Self(0x20);
    /// No ARP/ND needed on this link.
    pub const NOARP: Self = Self(0x40);
    /// Static entry.
    pub const PERMANENT: Self = Self(0x80);

    /// Whether the entry holds a usable link-layer address.
    pub fn is_valid(self) -> bool {
        self.0 & (0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80) != 0
    }
}

/// One neighbour table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbour {
    /// Interface index.
    pub ifindex: u32,
    /// Protocol address.
    pub ip: IpAddr,
    /// Link-layer address (absent while incomplete or failed).
    pub mac: Option<MacAddr>,
    /// State bits.
    pub state: NeighState,
}

/// The kernel's answer to "how would you send to `dst`?" (`ip route get`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    /// The destination asked about.
    pub dst: IpAddr,
    /// Output interface.
    pub oif: Option<u32>,
    /// Next hop, when not directly connected.
    pub gateway: Option<IpAddr>,
    /// Source address the kernel would use.
    pub prefsrc: Option<IpAddr>,
    /// Route type (`RTN_*`: 1 unicast, 2 local, 3 broadcast, ...).
    pub route_type: u8,
    /// Routing table id.
    pub table: u32,
}

impl RouteInfo {
    /// The destination is one of this host's addresses.
    pub fn is_local(&self) -> bool {
        self.route_type == 2
    }
}

/// A NETLINK_ROUTE socket. See the module docs.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens a NETLINK_ROUTE socket in the calling thread's network namespace.
    pub fn open() -> Result<Self, IoError> {
        let fd = sys::socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE)
            .map_err(IoError::sys("socket(AF_NETLINK)"))?;
        // SAFETY: sockaddr_nl is plain integers; all-zero is a valid value.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        sys::bind(fd.as_fd(), &sa).map_err(IoError::sys("bind(AF_NETLINK)"))?;
        Ok(Self {
            fd,
            seq: 1,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Looks up an interface by name.
    ///
    /// # Errors
    /// [`IoError::NoSuchInterface`] when it does not exist.
    pub fn link_by_name(&mut self, name: &str) -> Result<LinkInfo, IoError> {
        let mut req = Request::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK);
        req.ifinfomsg(0, 0, 0, 0);
        req.attr_str(IFLA_IFNAME, name);
        let mut out = None;
        match self.transact("RTM_GETLINK", req, |ty, p| {
            if ty == RTM_NEWLINK {
                out = parse_link(p);
            }
        }) {
            Err(IoError::Netlink { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => {
                return Err(IoError::NoSuchInterface(name.to_owned()));
            }
            r => r?,
        }
        out.ok_or(IoError::NetlinkProtocol {
            op: "RTM_GETLINK",
            what: "no link in reply",
        })
    }

    /// Looks up an interface by index.
    pub fn link_by_index(&mut self, ifindex: u32) -> Result<LinkInfo, IoError> {
        let idx = i32::try_from(ifindex)
            .map_err(|_| IoError::InvalidArgument(format!("ifindex {ifindex}")))?;
        let mut req = Request::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK);
        req.ifinfomsg(0, idx, 0, 0);
        let mut out = None;
        match self.transact("RTM_GETLINK", req, |ty, p| {
            if ty == RTM_NEWLINK {
                out = parse_link(p);
            }
        }) {
            Err(IoError::Netlink { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => {
                return Err(IoError::NoSuchInterface(format!("ifindex {ifindex}")));
            }
            r => r?,
        }
        out.ok_or(IoError::NetlinkProtocol {
            op: "RTM_GETLINK",
            what: "no link in reply",
        })
    }

    /// All interfaces.
    pub fn links(&mut self) -> Result<Vec<LinkInfo>, IoError> {
        let mut req = Request::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP);
        req.ifinfomsg(0, 0, 0, 0);
        let mut out = Vec::new();
        self.transact("RTM_GETLINK", req, |ty, p| {
            if ty == RTM_NEWLINK {
                out.extend(parse_link(p));
            }
        })?;
        Ok(out)
    }

    /// Sets an interface administratively up or down.
    pub fn set_link_up(&mut self, ifindex: u32, up: bool) -> Result<(), IoError> {
        let idx = i32::try_from(ifindex)
            .map_err(|_| IoError::InvalidArgument(format!("ifindex {ifindex}")))?;
        let flags = if up { libc::IFF_UP as u32 } else { 0 };
        let mut req = Request::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
        req.ifinfomsg(0, idx, flags, libc::IFF_UP as u32);
        self.transact("RTM_NEWLINK", req, |_, _| {})
    }

    /// Addresses, of one interface or (with `None`) of all.
    pub fn addresses(&mut self, ifindex: Option<u32>) -> Result<Vec<AddressInfo>, IoError> {
        let mut req = Request::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
        req.ifaddrmsg(0, 0, 0, 0, 0);
        let mut out = Vec::new();
        self.transact("RTM_GETADDR", req, |ty, p| {
            if ty == RTM_NEWADDR
                && let Some(a) = parse_addr(p)
                && ifindex.is_none_or(|i| i == a.ifindex)
            {
                out.push(a);
            }
        })?;
        Ok(out)
    }

    /// Adds `addr/prefix_len` to an interface. IPv6 addresses are added with `nodad`: a VIP must
    /// be usable at once, and rvs (VRRP) resolves address conflicts itself.
    ///
    /// Returns `false` if the address was already there. For IPv6 the kernel installs the
    /// local route from a work queue, so the address may take a few milliseconds after this
    /// returns to be routable.
    pub fn add_address(
        &mut self,
        ifindex: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<bool, IoError> {
        let (family, bytes) = ip_bytes(&addr);
        check_prefix(family, prefix_len)?;
        let mut req = Request::new(
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        );
        let flags = if family == AF_INET6 { IFA_F_NODAD } else { 0 };
        req.ifaddrmsg(family, prefix_len, flags as u8, 0, ifindex);
        req.attr(IFA_LOCAL, &bytes);
        req.attr(IFA_ADDRESS, &bytes);
        req.attr(IFA_FLAGS, &flags.to_ne_bytes());
        match self.transact("RTM_NEWADDR", req, |_, _| {}) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes `addr/prefix_len` from an interface. Returns `false` if it was not there.
    pub fn del_address(
        &mut self,
        ifindex: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<bool, IoError> {
        let (family, bytes) = ip_bytes(&addr);
        check_prefix(family, prefix_len)?;
        let mut req = Request::new(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK);
        req.ifaddrmsg(family, prefix_len, 0, 0, ifindex);
        req.attr(IFA_LOCAL, &bytes);
        match self.transact("RTM_DELADDR", req, |_, _| {}) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The IPv4 ARP and IPv6 neighbour tables (all interfaces).
    pub fn neighbours(&mut self) -> Result<Vec<Neighbour>, IoError> {
        let mut req = Request::new(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP);
        req.ndmsg(0, 0, 0, 0);
        let mut out = Vec::new();
        self.transact("RTM_GETNEIGH", req, |ty, p| {
            if ty == RTM_NEWNEIGH {
                out.extend(parse_neigh(p));
            }
        })?;
        Ok(out)
    }

    /// The neighbour entry for `ip` on `ifindex`, if there is one (in any state).
    pub fn neighbour(&mut self, ifindex: u32, ip: IpAddr) -> Result<Option<Neighbour>, IoError> {
        Ok(self
            .neighbours()?
            .into_iter()
            .find(|n| n.ifindex == ifindex && n.ip == ip))
    }

    /// Adds or replaces a neighbour entry (`ip neigh replace IP lladdr MAC dev IF nud STATE`);
    /// `permanent` picks `PERMANENT` (static), otherwise `REACHABLE`.
    pub fn set_neighbour(
        &mut self,
        ifindex: u32,
        ip: IpAddr,
        mac: MacAddr,
        permanent: bool,
    ) -> Result<(), IoError> {
        let idx = i32::try_from(ifindex)
            .map_err(|_| IoError::InvalidArgument(format!("ifindex {ifindex}")))?;
        let (family, bytes) = ip_bytes(&ip);
        let state = if permanent {
            NeighState::PERMANENT
        } else {
            NeighState::REACHABLE
        };
        let mut req = Request::new(
            RTM_NEWNEIGH,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        );
        req.ndmsg(family, idx, state.0, 0);
        req.attr(NDA_DST, &bytes);
        req.attr(NDA_LLADDR, &mac);
        self.transact("RTM_NEWNEIGH", req, |_, _| {})
    }

    /// Deletes a neighbour entry. Returns `false` if there was none.
    pub fn del_neighbour(&mut self, ifindex: u32, ip: IpAddr) -> Result<bool, IoError> {
        let idx = i32::try_from(ifindex)
            .map_err(|_| IoError::InvalidArgument(format!("ifindex {ifindex}")))?;
        let (family, bytes) = ip_bytes(&ip);
        let mut req = Request::new(RTM_DELNEIGH, NLM_F_REQUEST | NLM_F_ACK);
        req.ndmsg(family, idx, 0, 0);
        req.attr(NDA_DST, &bytes);
        match self.transact("RTM_DELNEIGH", req, |_, _| {}) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Asks the kernel to resolve `ip` on `ifindex` (creating the entry if needed) the way it
    /// would for an outgoing packet: `RTM_NEWNEIGH` with `NTF_USE`. It sends an ARP request or
    /// neighbour solicitation unless the entry is already valid; poll [`Self::neighbour`] for
    /// the result. Nothing is sent on links without ARP.
    pub fn resolve_neighbour(&mut self, ifindex: u32, ip: IpAddr) -> Result<(), IoError> {
        let idx = i32::try_from(ifindex)
            .map_err(|_| IoError::InvalidArgument(format!("ifindex {ifindex}")))?;
        let (family, bytes) = ip_bytes(&ip);
        let mut req = Request::new(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE);
        req.ndmsg(family, idx, 0, NTF_USE);
        req.attr(NDA_DST, &bytes);
        self.transact("RTM_NEWNEIGH(use)", req, |_, _| {})
    }

    /// Route lookup for `dst` (`ip route get DST`): output interface, gateway, source address.
    ///
    /// # Errors
    /// [`IoError::Netlink`] with `ENETUNREACH`/`EHOSTUNREACH` when there is no route.
    pub fn route_get(&mut self, dst: IpAddr) -> Result<RouteInfo, IoError> {
        let (family, bytes) = ip_bytes(&dst);
        let mut req = Request::new(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_ACK);
        let dst_len = if family == AF_INET { 32 } else { 128 };
        req.rtmsg(family, dst_len, RTM_F_LOOKUP_TABLE);
        req.attr(RTA_DST, &bytes);
        let mut out = None;
        self.transact("RTM_GETROUTE", req, |ty, p| {
            if ty == RTM_NEWROUTE {
                out = parse_route(p, dst);
            }
        })?;
        out.ok_or(IoError::NetlinkProtocol {
            op: "RTM_GETROUTE",
            what: "no route in reply",
        })
    }

    /// Sends one request and feeds every reply message (type, payload after the netlink
    /// header) to `on_msg` until the ack (plain requests) or NLMSG_DONE (dumps).
    fn transact(
        &mut self,
        op: &'static str,
        mut req: Request,
        mut on_msg: impl FnMut(u16, &[u8]),
    ) -> Result<(), IoError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let bytes = req.finish(seq);
        let kernel = {
            // SAFETY: sockaddr_nl is plain integers; all-zero (pid 0 = the kernel) is valid.
            let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
            sa.nl_family = libc::AF_NETLINK as u16;
            sa
        };
        sys::sendto(self.fd.as_fd(), bytes, 0, Some(&kernel))
            .map_err(|source| IoError::Netlink { op, source })?;
        loop {
            let n = match sys::recv(self.fd.as_fd(), &mut self.buf, 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(IoError::Netlink { op, source }),
            };
            let mut rest = &self.buf[..n];
            while rest.len() >= NLMSG_HDRLEN {
                let len = read_u32(rest, 0) as usize;
                let ty = read_u16(rest, 4);
                let mseq = read_u32(rest, 8);
                if len < NLMSG_HDRLEN || len > rest.len() {
                    return Err(IoError::NetlinkProtocol {
                        op,
                        what: "bad message length",
                    });
                }
                let payload = &rest[NLMSG_HDRLEN..len];
                rest = &rest[align4(len).min(rest.len())..];
                if mseq != seq {
                    continue; // a late answer to an earlier request
                }
                match ty {
                    NLMSG_ERROR => {
                        if payload.len() < 4 {
                            return Err(IoError::NetlinkProtocol {
                                op,
                                what: "short error message",
                            });
                        }
                        let err = read_u32(payload, 0) as i32;
                        if err == 0 {
                            return Ok(());
                        }
                        return Err(IoError::Netlink {
                            op,
                            source: io::Error::from_raw_os_error(-err),
                        });
                    }
                    NLMSG_DONE => {
                        // A dump that failed midway reports the error here.
                        if payload.len() >= 4 {
                            let err = read_u32(payload, 0) as i32;
                            if err < 0 {
                                return Err(IoError::Netlink {
                                    op,
                                    source: io::Error::from_raw_os_error(-err),
                                });
                            }
                        }
                        return Ok(());
                    }
                    _ => on_msg(ty, payload),
                }
            }
        }
    }
}

/// Queries the XDP program attached to `ifname` (in the calling thread's network namespace):
/// `None` when there is none. Same information as `ip -d link show`.
pub fn xdp_query(ifname: &str) -> Result<Option<XdpAttachment>, IoError> {
    Ok(Netlink::open()?.link_by_name(ifname)?.xdp)
}

fn check_prefix(family: u8, prefix_len: u8) -> Result<(), IoError> {
    let max = if family == AF_INET { 32 } else { 128 };
    if prefix_len > max {
        return Err(IoError::InvalidArgument(format!(
            "prefix length {prefix_len} > {max}"
        )));
    }
    Ok(())
}

fn ip_bytes(ip: &IpAddr) -> (u8, Vec<u8>) {
    match ip {
        IpAddr::V4(a) => (AF_INET, a.octets().to_vec()),
        IpAddr::V6(a) => (AF_INET6, a.octets().to_vec()),
    }
}

fn ip_from(family: u8, b: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => <[u8; 4]>::try_from(b)
            .ok()
            .map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        AF_INET6 => <[u8; 16]>::try_from(b)
            .ok()
            .map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        _ => None,
    }
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn read_u16(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2)
        .map_or(0, |s| u16::from_ne_bytes([s[0], s[1]]))
}

fn read_u32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// Iterates the `rtattr`s in `b`: (type without flag bits, payload).
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = usize::from(read_u16(b, 0));
        let ty = read_u16(b, 2) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = &b[align4(len).min(b.len())..];
        Some((ty, payload))
    })
}

fn parse_link(p: &[u8]) -> Option<LinkInfo> {
    const IFINFOMSG: usize = 16;
    let body = p.get(IFINFOMSG..)?;
    let mut link = LinkInfo {
        ifindex: read_u32(p, 4),
        name: String::new(),
        mac: None,
        mtu: 0,
        flags: read_u32(p, 8),
        up: false,
        running: false,
        xdp: None,
    };
    link.up = link.flags & libc::IFF_UP as u32 != 0;
    link.running = link.flags & libc::IFF_RUNNING as u32 != 0;
    for (ty, v) in attrs(body) {
        match ty {
            IFLA_IFNAME => {
                let s = v.split(|&c| c == 0).next().unwrap_or(v);
                link.name = String::from_utf8_lossy(s).into_owned();
            }
            IFLA_ADDRESS => link.mac = MacAddr::try_from(v).ok(),
            IFLA_MTU => link.mtu = read_u32(v, 0),
            IFLA_XDP => link.xdp = parse_xdp(v),
            _ => {}
        }
    }
    Some(link)
}

fn parse_xdp(nested: &[u8]) -> Option<XdpAttachment> {
    let mut mode = None;
    let mut prog_id = 0;
    for (ty, v) in attrs(nested) {
        match ty {
            IFLA_XDP_ATTACHED => {
                mode = match v.first()? {
                    1 => Some(XdpAttachMode::Native),
                    2 => Some(XdpAttachMode::Skb),
                    3 => Some(XdpAttachMode::Hardware),
                    4 => Some(XdpAttachMode::Multi),
                    _ => None,
                }
            }
            IFLA_XDP_PROG_ID => prog_id = read_u32(v, 0),
            _ => {}
        }
    }
    mode.map(|mode| XdpAttachment { mode, prog_id })
}

fn parse_addr(p: &[u8]) -> Option<AddressInfo> {
    const IFADDRMSG: usize = 8;
    let family = *p.first()?;
    let mut a = AddressInfo {
        ifindex: read_u32(p, 4),
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        prefix_len: *p.get(1)?,
        flags: u32::from(*p.get(2)?),
        scope: *p.get(3)?,
    };
    let (mut local, mut address) = (None, None);
    for (ty, v) in attrs(p.get(IFADDRMSG..)?) {
        match ty {
            IFA_LOCAL => local = ip_from(family, v),
            IFA_ADDRESS => address = ip_from(family, v),
            IFA_FLAGS => a.flags = read_u32(v, 0),
            _ => {}
        }
    }
    // IFA_LOCAL is the local address; IFA_ADDRESS is the peer on point-to-point links and the
    // only one sent for IPv6.
    a.addr = local.or(address)?;
    Some(a)
}

fn parse_neigh(p: &[u8]) -> Option<Neighbour> {
    const NDMSG: usize = 12;
    let family = *p.first()?;
    let mut n = Neighbour {
        ifindex: read_u32(p, 4),
        ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        mac: None,
        state: NeighState(read_u16(p, 8)),
    };
    let mut ip = None;
    for (ty, v) in attrs(p.get(NDMSG..)?) {
        match ty {
            NDA_DST => ip = ip_from(family, v),
            NDA_LLADDR => n.mac = MacAddr::try_from(v).ok(),
            _ => {}
        }
    }
    n.ip = ip?;
    Some(n)
}

fn parse_route(p: &[u8], dst: IpAddr) -> Option<RouteInfo> {
    const RTMSG: usize = 12;
    let family = *p.first()?;
    let mut r = RouteInfo {
        dst,
        oif: None,
        gateway: None,
        prefsrc: None,
        route_type: *p.get(7)?,
        table: u32::from(*p.get(4)?),
    };
    for (ty, v) in attrs(p.get(RTMSG..)?) {
        match ty {
            RTA_OIF => r.oif = Some(read_u32(v, 0)),
            RTA_GATEWAY => r.gateway = ip_from(family, v),
            RTA_PREFSRC => r.prefsrc = ip_from(family, v),
            RTA_TABLE => r.table = read_u32(v, 0),
            _ => {}
        }
    }
    Some(r)
}

/// A netlink request being built: header placeholder, family header, attributes.
struct Request {
    buf: Vec<u8>,
}

impl Request {
    fn new(ty: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish()
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // seq, set by finish()
        buf.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills it in
        Self { buf }
    }

    fn ifinfomsg(&mut self, family: u8, index: i32, flags: u32, change: u32) {
        self.buf.extend_from_slice(&[family, 0, 0, 0]); // family, pad, type (u16)
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
    }

    fn ifaddrmsg(&mut self, family: u8, prefix_len: u8, flags: u8, scope: u8, index: u32) {
        self.buf
            .extend_from_slice(&[family, prefix_len, flags, scope]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
    }

    fn ndmsg(&mut self, family: u8, ifindex: i32, state: u16, flags: u8) {
        self.buf.extend_from_slice(&[family, 0, 0, 0]);
        self.buf.extend_from_slice(&ifindex.to_ne_bytes());
        self.buf.extend_from_slice(&state.to_ne_bytes());
        self.buf.extend_from_slice(&[flags, 0]); // flags, type
    }

    fn rtmsg(&mut self, family: u8, dst_len: u8, flags: u32) {
        // family, dst_len, src_len, tos, table, protocol, scope, type
        self.buf
            .extend_from_slice(&[family, dst_len, 0, 0, 0, 0, 0, 0]);
        self.buf.extend_from_slice(&flags.to_ne_bytes());
    }

    fn attr(&mut self, ty: u16, value: &[u8]) {
        let len = 4 + value.len();
        // Attribute payloads here are addresses and names: far below u16::MAX.
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(align4(self.buf.len()), 0);
    }

    fn attr_str(&mut self, ty: u16, s: &str) {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.attr(ty, &v);
    }

    fn finish(&mut self, seq: u32) -> &[u8] {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout_matches_the_kernel_headers() {
        let mut r = Request::new(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK);
        r.ifaddrmsg(AF_INET, 32, 0, 0, 7);
        r.attr(IFA_LOCAL, &[198, 18, 0, 1]);
        r.attr_str(IFLA_IFNAME, "lo"); // 3 bytes of payload: padded to 4
        let b = r.finish(42).to_vec();
        assert_eq!(b.len(), 16 + 8 + 8 + 8);
        assert_eq!(read_u32(&b, 0) as usize, b.len());
        assert_eq!(read_u16(&b, 4), RTM_NEWADDR);
        assert_eq!(read_u32(&b, 8), 42);
        assert_eq!(&b[16..24], &[AF_INET, 32, 0, 0, 7, 0, 0, 0][..]);
        assert_eq!(read_u16(&b, 24), 8);
        assert_eq!(&b[28..32], &[198, 18, 0, 1]);
        assert_eq!(read_u16(&b, 32), 7);
        assert_eq!(&b[36..40], b"lo\0\0");
    }

    #[test]
    fn attrs_stop_at_truncation() {
        let mut b = Vec::new();
        b.extend_from_slice(&8u16.to_ne_bytes());
        b.extend_from_slice(&RTA_OIF.to_ne_bytes());
        b.extend_from_slice(&5u32.to_ne_bytes());
        b.extend_from_slice(&200u16.to_ne_bytes()); // claims more than there is
        b.extend_from_slice(&RTA_GATEWAY.to_ne_bytes());
        let v: Vec<_> = attrs(&b).collect();
        assert_eq!(v, vec![(RTA_OIF, &5u32.to_ne_bytes()[..])]);
    }

    #[test]
    fn parses_xdp_attachment() {
        let mut b = Vec::new();
        b.extend_from_slice(&5u16.to_ne_bytes());
        b.extend_from_slice(&IFLA_XDP_ATTACHED.to_ne_bytes());
        b.extend_from_slice(&[2, 0, 0, 0]);
        b.extend_from_slice(&8u16.to_ne_bytes());
        b.extend_from_slice(&IFLA_XDP_PROG_ID.to_ne_bytes());
        b.extend_from_slice(&77u32.to_ne_bytes());
        assert_eq!(
            parse_xdp(&b),
            Some(XdpAttachment {
                mode: XdpAttachMode::Skb,
                prog_id: 77
            })
        );
        assert_eq!(parse_xdp(&[5, 0, 2, 0, 0, 0, 0, 0]), None);
    }

    #[test]
    fn neigh_state_validity() {
        assert!(NeighState::REACHABLE.is_valid());
        assert!(NeighState::PERMANENT.is_valid());
        assert!(!NeighState::INCOMPLETE.is_valid());
        assert!(!NeighState::FAILED.is_valid());
    }
}
