//! What each forwarding method does to a packet's bytes, and where the frame goes next
//! (`ip_vs_xmit.c`, spec §5):
//! * NAT — client → server: destination address and port become the real server's; server →
//!   client: source address and port become the VIP's. IP and transport checksums are updated
//!   incrementally (a zero UDP/IPv4 checksum is computed in full, as IPVS does).
//! * DR — only the MAC addresses change (and the TTL).
//! * TUN — an outer IPv4/IPv6 header towards the real server is prepended; a packet that would
//!   no longer fit the egress MTU is answered with ICMP "fragmentation needed" / "packet too big".
//!
//! Every forwarded packet has its TTL / hop limit decremented; at ≤ 1 the sender gets an ICMP
//! time exceeded. ICMP errors the director sends go back out of the interface the offending
//! packet came from, to the MAC it came from.

use std::net::{IpAddr, Ipv4Addr};

use rvs_api::ForwardMethod;
use rvs_wire::reply::{self, Icmpv4Error, Icmpv6Error};
use rvs_wire::tunnel::{self, Ipv4Tunnel, Ipv6Tunnel};
use rvs_wire::{
    EthernetAddress, EthernetFrame, Icmpv4DstUnreachable, Icmpv4TimeExceeded, Icmpv6DstUnreachable,
    Icmpv6TimeExceeded, Ipv4Packet, Ipv6Packet, PacketBuf, TcpPacket, UdpPacket,
};

use crate::conn::{Conn, ConnAddr};
use crate::dest::DestId;
use crate::engine::{DropReason, Engine, Family, Verdict};
use crate::flow::{Flow, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP};
use crate::l2::{IfaceId, NextHop, NextHopError};

/// Which end of a packet a NAT rewrite changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Src,
    Dst,
}

/// An ICMP error the director originates.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IcmpKind {
    /// Port unreachable (no real server available).
    PortUnreachable,
    /// Fragmentation needed / packet too big, with the MTU to report.
    TooBig(u16),
    /// TTL / hop limit exceeded in transit.
    TimeExceeded,
}

impl Engine {
    /// Client → server transmit for connection `c`, whose real server `dest` was read by the
    /// caller (`None`: it no longer exists).
    #[inline(never)]
    pub(crate) fn xmit_in<A: Family>(
        &mut self,
        c: &Conn<A>,
        dest: Option<XmitDest>,
        pkt: &mut PacketBuf<'_>,
        f: &Flow<A>,
    ) -> Verdict {
        let Some(d) = dest else {
            return self.drop(DropReason::DestUnavailable);
        };
        let method = d.method;
        if method == ForwardMethod::Local {
            return self.drop(DropReason::LocalMethod);
        }
        let hop = match d.hop {
            Some(hop) => hop,
            None => match self.resolve_dest_next_hop(c.dest, self.dest_addr(c)) {
                Ok(nh) => TxHop::of(&nh),
                Err(e) => return self.drop_nh(e),
            },
        };
        if method == ForwardMethod::Route {
            return self.xmit_route(hop, pkt, f);
        }
        if !decrement_ttl_of::<A>(pkt.data_mut(), f.l3) {
            return self.ttl_exceeded(f.ingress, pkt, f.daddr.to_ip());
        }
        let daddr = self.dest_addr(c);
        match method {
            ForwardMethod::Masq => {
                if let Some(v) = self.mtu_check(f, pkt, hop.mtu, 0) {
                    return v;
                }
                nat_rewrite(pkt.data_mut(), f, Side::Dst, daddr, c.dport);
            }
            ForwardMethod::Tunnel => {
                let overhead = if daddr.is_ipv4() { 20 } else { 40 };
                if let Some(v) = self.mtu_check(f, pkt, hop.mtu, overhead) {
                    return v;
                }
                // The tunnel source is part of the full next hop, cached with `hop`.
                let src_ip = match self.tunnel_src(c.dest, daddr) {
                    Ok(src) => src,
                    Err(e) => return self.drop_nh(e),
                };
                if let Err(r) = self.encapsulate(pkt, f.l3, daddr, src_ip) {
                    return self.drop(r);
                }
            }
            ForwardMethod::Route | ForwardMethod::Local => unreachable!("handled above"),
        }
        hop.write_macs(pkt.data_mut());
        Verdict::Transmit(hop.iface)
    }

    /// The source address for a tunnel towards real server `id` at `addr`: the cached next
    /// hop's (valid for the current L2 generation), or a fresh resolution.
    #[inline]
    fn tunnel_src(&mut self, id: DestId, addr: IpAddr) -> Result<Option<IpAddr>, NextHopError> {
        let generation = self.l2.generation();
        if let Some(d) = self.dests.get(id)
            && let Some((g, nh, _)) = &d.next_hop
            && *g == generation
        {
            return Ok(nh.src_ip);
        }
        self.dest_next_hop(id, addr).map(|nh| nh.src_ip)
    }

    /// The address of `c`'s real server (the caller has seen it exist).
    #[inline]
    fn dest_addr<A>(&self, c: &Conn<A>) -> IpAddr {
        self.dests
            .get(c.dest)
            .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |d| d.addr)
    }

    /// Direct routing towards `hop`: TTL, MTU, MACs.
    #[inline(always)]
    pub(crate) fn xmit_route<A: Family>(
        &mut self,
        hop: TxHop,
        pkt: &mut PacketBuf<'_>,
        f: &Flow<A>,
    ) -> Verdict {
        let data = pkt.data_mut();
        if !decrement_ttl_of::<A>(data, f.l3) {
            return self.ttl_exceeded(f.ingress, pkt, f.daddr.to_ip());
        }
        if f.ip_len > usize::from(hop.mtu) {
            return self.too_big(f, pkt, usize::from(hop.mtu));
        }
        hop.write_macs(data);
        Verdict::Transmit(hop.iface)
    }

    /// NAT towards IPv4 real server `rip`, port `dport`, through `hop`: what
    /// [`Engine::xmit_in`] does for a NAT connection of an IPv4 flow, without the generic
    /// address handling.
    #[inline(always)]
    pub(crate) fn xmit_nat4<A: Family>(
        &mut self,
        dport: u16,
        hop: TxHop,
        rip: Ipv4Addr,
        pkt: &mut PacketBuf<'_>,
        f: &Flow<A>,
    ) -> Verdict {
        if !decrement_ttl_of::<A>(pkt.data_mut(), f.l3) {
            return self.ttl_exceeded(f.ingress, pkt, f.daddr.to_ip());
        }
        if f.ip_len > usize::from(hop.mtu) {
            return self.too_big(f, pkt, usize::from(hop.mtu));
        }
        let data = pkt.data_mut();
        nat_rewrite(data, f, Side::Dst, IpAddr::V4(rip), dport);
        hop.write_macs(data);
        Verdict::Transmit(hop.iface)
    }

    /// IPIP towards IPv4 real server `rip` from `src` through `hop`: what
    /// [`Engine::xmit_in`] does for a tunnel connection whose next hop has an IPv4 source.
    #[inline(always)]
    pub(crate) fn xmit_tun4<A: Family>(
        &mut self,
        hop: TxHop,
        src: Ipv4Addr,
        rip: Ipv4Addr,
        pkt: &mut PacketBuf<'_>,
        f: &Flow<A>,
    ) -> Verdict {
        if !decrement_ttl_of::<A>(pkt.data_mut(), f.l3) {
            return self.ttl_exceeded(f.ingress, pkt, f.daddr.to_ip());
        }
        if let Some(v) = self.mtu_check(f, pkt, hop.mtu, tunnel::IPV4_OVERHEAD) {
            return v;
        }
        if let Err(r) = self.encapsulate(pkt, f.l3, IpAddr::V4(rip), Some(IpAddr::V4(src))) {
            return self.drop(r);
        }
        hop.write_macs(pkt.data_mut());
        Verdict::Transmit(hop.iface)
    }

    /// TTL / hop limit ran out: count it and answer with ICMP time exceeded from `src`.
    #[cold]
    #[inline(never)]
    fn ttl_exceeded(&mut self, ingress: IfaceId, pkt: &mut PacketBuf<'_>, src: IpAddr) -> Verdict {
        self.drops.count(DropReason::TtlExceeded);
        self.send_icmp(ingress, pkt, src, IcmpKind::TimeExceeded)
    }

    /// Server → client transmit (NAT replies) for connection `c`.
    pub(crate) fn xmit_out<A: Family>(
        &mut self,
        c: &Conn<A>,
        pkt: &mut PacketBuf<'_>,
        f: &Flow<A>,
    ) -> Verdict {
        let nh = match self.l2.next_hop(c.caddr.to_ip()) {
            Ok(nh) => nh,
            Err(e) => return self.drop_nh(e),
        };
        if !decrement_ttl_of::<A>(pkt.data_mut(), f.l3) {
            return self.ttl_exceeded(f.ingress, pkt, c.vaddr.to_ip());
        }
        if let Some(v) = self.mtu_check(f, pkt, nh.mtu, 0) {
            return v;
        }
        nat_rewrite(pkt.data_mut(), f, Side::Src, c.vaddr.to_ip(), c.vport);
        set_macs(pkt, &nh);
        Verdict::Transmit(nh.iface)
    }

    /// `ip_vs_leave`: no connection can be made. The client gets ICMP port unreachable (from
    /// the VIP) unless this was an FTP-data style fallback that IPVS hands to the local stack.
    pub(crate) fn leave<A: Family>(
        &mut self,
        ingress: IfaceId,
        pkt: &mut PacketBuf<'_>,
        f: &Flow<A>,
        ftp_fallback: bool,
    ) -> Verdict {
        if ftp_fallback {
            return self.drop(DropReason::NoConnection);
        }
        self.drops.count(DropReason::NoDestination);
        self.send_icmp(ingress, pkt, f.daddr.to_ip(), IcmpKind::PortUnreachable)
    }

    /// A TCP segment of a virtual service that has no connection and cannot open one (not a
    /// SYN, not a reset): answered with a reset from the VIP. An IPVS director hands such a
    /// segment to its own stack, which holds the VIP and has no socket for it, so the client
    /// learns at once that the connection is gone (a real server deleted with
    /// `expire_nodest_conn`, a director that took over without the connection) instead of
    /// retransmitting into silence. Counted as a `no_connection` drop.
    #[cold]
    pub(crate) fn reset(&mut self, ingress: IfaceId, pkt: &mut PacketBuf<'_>) -> Verdict {
        self.drops.count(DropReason::NoConnection);
        match reply::tcp_reset(pkt) {
            Ok(()) => Verdict::Transmit(ingress),
            Err(_) => Verdict::Drop(DropReason::NoConnection),
        }
    }

    pub(crate) fn drop_nh(&mut self, e: NextHopError) -> Verdict {
        self.drop(match e {
            NextHopError::NoRoute => DropReason::NoRoute,
            NextHopError::NoNeighbour => DropReason::NoNeighbour,
        })
    }

    /// Rejects a packet that does not fit `mtu - overhead`: DF IPv4 and all IPv6 get an ICMP
    /// error back (when `pmtu_disc` is on); others are dropped because the data path does
    /// not fragment.
    #[inline]
    fn mtu_check<A>(
        &mut self,
        f: &Flow<A>,
        pkt: &mut PacketBuf<'_>,
        mtu: u16,
        overhead: usize,
    ) -> Option<Verdict> {
        let room = usize::from(mtu).saturating_sub(overhead);
        if f.ip_len <= room {
            return None;
        }
        Some(self.too_big(f, pkt, room))
    }

    #[cold]
    fn too_big<A>(&mut self, f: &Flow<A>, pkt: &mut PacketBuf<'_>, room: usize) -> Verdict {
        let v6 = is_ipv6(pkt, f.l3);
        let df = v6 || Ipv4Packet::new_unchecked(&pkt.data()[f.l3..]).dont_frag();
        if !df || !self.sysctl.pmtu_disc {
            return self.drop(DropReason::TooBig);
        }
        self.drops.count(DropReason::TooBig);
        let report = if v6 { room.max(1280) } else { room.max(68) };
        let src = ip_dst(pkt, f.l3);
        self.send_icmp(
            f.ingress,
            pkt,
            src,
            IcmpKind::TooBig(report.min(65535) as u16),
        )
    }

    /// Prepends the outer header of an IPIP / IP6IP6 / 4in6 / 6in4 tunnel towards `rip`.
    #[inline]
    pub(crate) fn encapsulate(
        &mut self,
        pkt: &mut PacketBuf<'_>,
        l3: usize,
        rip: IpAddr,
        src_ip: Option<IpAddr>,
    ) -> Result<(), DropReason> {
        let map = |e: rvs_wire::Error| match e {
            rvs_wire::Error::NoSpace => DropReason::NoHeadroom,
            _ => DropReason::TooBig,
        };
        match (rip, src_ip) {
            (IpAddr::V4(dst), Some(IpAddr::V4(src))) => {
                // An outer header that carries DF needs no identification (RFC 6864); using 0
                // keeps the engine's frames identical to the XDP fast path's.
                let inner = &pkt.data()[l3..];
                let df = self.sysctl.pmtu_disc
                    && inner.first().is_some_and(|b| b >> 4 == 4)
                    && Ipv4Packet::new_unchecked(inner).dont_frag();
                let ident = if df {
                    0
                } else {
                    self.ip_ident = self.ip_ident.wrapping_add(1);
                    self.ip_ident
                };
                let t = Ipv4Tunnel {
                    src_addr: src,
                    dst_addr: dst,
                    ident,
                    copy_df: self.sysctl.pmtu_disc,
                };
                tunnel::encap_ipv4(pkt, l3, &t).map_err(map)
            }
            (IpAddr::V6(dst), Some(IpAddr::V6(src))) => {
                let t = Ipv6Tunnel {
                    src_addr: src,
                    dst_addr: dst,
                    flow_label: 0,
                };
                tunnel::encap_ipv6(pkt, l3, &t).map_err(map)
            }
            _ => Err(DropReason::NoRoute),
        }
    }

    /// Turns `pkt` into an ICMP error about itself, from `src`, and sends it back where it
    /// came from. Errors the RFCs forbid (about ICMP errors, multicast…) are dropped silently.
    /// The caller counts the drop reason: the offending packet is dropped either way.
    pub(crate) fn send_icmp(
        &mut self,
        ingress: IfaceId,
        pkt: &mut PacketBuf<'_>,
        src: IpAddr,
        kind: IcmpKind,
    ) -> Verdict {
        let r = match src {
            IpAddr::V4(src) => {
                let err = match kind {
                    IcmpKind::PortUnreachable => {
                        Icmpv4Error::DstUnreachable(Icmpv4DstUnreachable::PortUnreachable)
                    }
                    IcmpKind::TooBig(mtu) => Icmpv4Error::FragRequired { mtu },
                    IcmpKind::TimeExceeded => {
                        Icmpv4Error::TimeExceeded(Icmpv4TimeExceeded::TtlExpired)
                    }
                };
                self.ip_ident = self.ip_ident.wrapping_add(1);
                reply::icmpv4_error(pkt, src, self.ip_ident, err)
            }
            IpAddr::V6(src) => {
                let err = match kind {
                    IcmpKind::PortUnreachable => {
                        Icmpv6Error::DstUnreachable(Icmpv6DstUnreachable::PortUnreachable)
                    }
                    IcmpKind::TooBig(mtu) => Icmpv6Error::PktTooBig {
                        mtu: u32::from(mtu),
                    },
                    IcmpKind::TimeExceeded => {
                        Icmpv6Error::TimeExceeded(Icmpv6TimeExceeded::HopLimitExceeded)
                    }
                };
                reply::icmpv6_error(pkt, src, err)
            }
        };
        match (r, kind) {
            (Ok(()), _) => Verdict::Transmit(ingress),
            // The callers have counted the drop already.
            (Err(_), IcmpKind::TimeExceeded) => Verdict::Drop(DropReason::TtlExceeded),
            (Err(_), IcmpKind::TooBig(_)) => Verdict::Drop(DropReason::TooBig),
            (Err(_), IcmpKind::PortUnreachable) => Verdict::Drop(DropReason::NoDestination),
        }
    }
}

fn is_ipv6(pkt: &PacketBuf<'_>, l3: usize) -> bool {
    pkt.data().get(l3).is_some_and(|b| b >> 4 == 6)
}

fn ip_dst(pkt: &PacketBuf<'_>, l3: usize) -> IpAddr {
    let data = &pkt.data()[l3..];
    if data[0] >> 4 == 6 {
        IpAddr::V6(Ipv6Packet::new_unchecked(data).dst_addr())
    } else {
        IpAddr::V4(Ipv4Packet::new_unchecked(data).dst_addr())
    }
}

/// What the transmit of a client → server packet needs from its real server, read in the
/// same visit that counts the packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct XmitDest {
    pub method: ForwardMethod,
    /// The cached next hop, if it is still valid.
    pub hop: Option<TxHop>,
    /// The real server's address if it is IPv4 (NAT and tunnel fast paths).
    pub rip4: Option<Ipv4Addr>,
    /// The cached next hop's IPv4 source for tunnel headers (tunnel fast path).
    pub src4: Option<Ipv4Addr>,
}

/// The part of a [`NextHop`] every forwarded frame needs: egress, MTU and the two MACs in
/// Ethernet header order.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(8))]
pub(crate) struct TxHop {
    pub macs: [u8; 12],
    pub iface: IfaceId,
    pub mtu: u16,
}

impl TxHop {
    #[inline(always)]
    pub(crate) fn of(nh: &NextHop) -> Self {
        let mut macs = [0u8; 12];
        macs[..6].copy_from_slice(&nh.dst_mac);
        macs[6..].copy_from_slice(&nh.src_mac);
        Self {
            macs,
            iface: nh.iface,
            mtu: nh.mtu,
        }
    }

    /// Writes destination and source MAC (what [`set_macs`] does).
    #[inline(always)]
    pub(crate) fn write_macs(&self, frame: &mut [u8]) {
        if let Some(h) = frame.first_chunk_mut::<12>() {
            *h = self.macs;
        }
    }
}

/// [`decrement_ttl`] for a packet whose IP version is known from the flow's address family.
#[inline(always)]
pub(crate) fn decrement_ttl_of<A: ConnAddr>(frame: &mut [u8], l3: usize) -> bool {
    if A::BITS == 32 {
        let ip = &mut frame[l3..l3 + 20];
        Ipv4Packet::new_unchecked(ip).decrement_ttl().is_some()
    } else {
        let ip = &mut frame[l3..l3 + 40];
        Ipv6Packet::new_unchecked(ip)
            .decrement_hop_limit()
            .is_some()
    }
}

/// Decrements TTL / hop limit; false when it was ≤ 1 (the packet must not be forwarded).
#[inline]
pub(crate) fn decrement_ttl(pkt: &mut PacketBuf<'_>, l3: usize) -> bool {
    let data = &mut pkt.data_mut()[l3..];
    if data[0] >> 4 == 6 {
        Ipv6Packet::new_unchecked(data)
            .decrement_hop_limit()
            .is_some()
    } else {
        Ipv4Packet::new_unchecked(data).decrement_ttl().is_some()
    }
}

/// Writes the next hop's Ethernet addresses.
#[inline]
pub(crate) fn set_macs(pkt: &mut PacketBuf<'_>, nh: &NextHop) {
    let mut eth = EthernetFrame::new_unchecked(pkt.data_mut());
    eth.set_dst_addr(EthernetAddress(nh.dst_mac));
    eth.set_src_addr(EthernetAddress(nh.src_mac));
}

/// Rewrites one end (address and transport port) of the packet described by `f`.
#[inline]
fn nat_rewrite<A: ConnAddr>(data: &mut [u8], f: &Flow<A>, side: Side, addr: IpAddr, port: u16) {
    if let IpAddr::V4(a) = addr
        && A::BITS == 32
        && matches!(f.proto, IPPROTO_TCP | IPPROTO_UDP)
    {
        return nat_rewrite_v4(data, f, side, a, port);
    }
    nat_rewrite_any(data, f, side, addr, port);
}

/// [`nat_rewrite_any`] for TCP/UDP over IPv4, on fixed-size header views.
#[inline(always)]
fn nat_rewrite_v4<A: ConnAddr>(
    data: &mut [u8],
    f: &Flow<A>,
    side: Side,
    addr: Ipv4Addr,
    port: u16,
) {
    let mut ip = Ipv4Packet::new_unchecked(&mut data[f.l3..f.l3 + 20]);
    let old = match side {
        Side::Src => ip.rewrite_src_addr(addr),
        Side::Dst => ip.rewrite_dst_addr(addr),
    };
    let (src, dst) = (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()));
    let (old, new) = (IpAddr::V4(old), IpAddr::V4(addr));
    if f.proto == IPPROTO_TCP {
        let mut t = TcpPacket::new_unchecked(&mut data[f.l4..f.l4 + 20]);
        t.update_checksum_for_addr(&old, &new);
        match side {
            Side::Src => t.rewrite_src_port(port),
            Side::Dst => t.rewrite_dst_port(port),
        };
        return;
    }
    let mut u = UdpPacket::new_unchecked(&mut data[f.l4..f.l4 + 8]);
    if u.checksum() != 0 {
        u.update_checksum_for_addr(&old, &new);
        match side {
            Side::Src => u.rewrite_src_port(port),
            Side::Dst => u.rewrite_dst_port(port),
        };
        return;
    }
    let mut u = UdpPacket::new_unchecked(&mut data[f.l4..f.l3 + f.ip_len]);
    match side {
        Side::Src => u.set_src_port(port),
        Side::Dst => u.set_dst_port(port),
    }
    // IPv4 "no checksum": IPVS computes a full one.
    u.fill_checksum(&src, &dst);
}

/// Rewrites one end of any TCP/UDP/SCTP packet (either family).
fn nat_rewrite_any<A: ConnAddr>(data: &mut [u8], f: &Flow<A>, side: Side, addr: IpAddr, port: u16) {
    let end = f.l3 + f.ip_len;
    let (old, src, dst) = match addr {
        IpAddr::V4(a) => {
            let mut ip = Ipv4Packet::new_unchecked(&mut data[f.l3..end]);
            let old = match side {
                Side::Src => ip.rewrite_src_addr(a),
                Side::Dst => ip.rewrite_dst_addr(a),
            };
            (
                IpAddr::V4(old),
                IpAddr::V4(ip.src_addr()),
                IpAddr::V4(ip.dst_addr()),
            )
        }
        IpAddr::V6(a) => {
            let mut ip = Ipv6Packet::new_unchecked(&mut data[f.l3..end]);
            let old = match side {
                Side::Src => {
                    let o = ip.src_addr();
                    ip.set_src_addr(a);
                    o
                }
                Side::Dst => {
                    let o = ip.dst_addr();
                    ip.set_dst_addr(a);
                    o
                }
            };
            (
                IpAddr::V6(old),
                IpAddr::V6(ip.src_addr()),
                IpAddr::V6(ip.dst_addr()),
            )
        }
    };
    let seg = &mut data[f.l4..end];
    match f.proto {
        IPPROTO_TCP => {
            let mut t = TcpPacket::new_unchecked(seg);
            t.update_checksum_for_addr(&old, &addr);
            match side {
                Side::Src => t.rewrite_src_port(port),
                Side::Dst => t.rewrite_dst_port(port),
            };
        }
        IPPROTO_UDP => {
            let mut u = UdpPacket::new_unchecked(seg);
            if u.checksum() == 0 {
                match side {
                    Side::Src => u.set_src_port(port),
                    Side::Dst => u.set_dst_port(port),
                }
                // IPv4 "no checksum": IPVS computes a full one. (IPv6 UDP never has 0.)
                u.fill_checksum(&src, &dst);
            } else {
                u.update_checksum_for_addr(&old, &addr);
                match side {
                    Side::Src => u.rewrite_src_port(port),
                    Side::Dst => u.rewrite_dst_port(port),
                };
            }
        }
        IPPROTO_SCTP if seg.len() >= 12 => {
            let at = if side == Side::Src { 0 } else { 2 };
            seg[at..at + 2].copy_from_slice(&port.to_be_bytes());
            sctp_fill_checksum(seg);
        }
        _ => {}
    }
}

/// CRC32c (Castagnoli), reflected, as SCTP uses it.
const fn crc32c_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC32C: [u32; 256] = crc32c_table();

/// CRC32c of `data`.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc = CRC32C[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// Recomputes the SCTP common header checksum (offset 8, stored little-endian, RFC 4960
/// appendix B).
fn sctp_fill_checksum(seg: &mut [u8]) {
    seg[8..12].fill(0);
    let c = crc32c(seg);
    seg[8..12].copy_from_slice(&c.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_vector() {
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }
}
