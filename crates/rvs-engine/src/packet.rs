//! The entry point for frames: parsing, and what the director answers or relays itself —
//! ARP and neighbour solicitations for VIPs, ICMP echo to VIPs, and ICMP errors that belong to
//! a connection (spec §4.9).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use rvs_api::ForwardMethod;
use rvs_wire::reply;
use rvs_wire::{
    EtherType, EthernetAddress, FLOW_L3_OFFSET, FlowMeta, Fragment, Icmpv4Packet, Icmpv6Packet,
    InvokingPacket, IpProtocol, Ipv4Packet, Ipv6Packet, PacketBuf, PacketMeta, ParseError,
};

use crate::conn::{Conn, ConnAddr, InKey, OutKey};
use crate::engine::{DropReason, Engine, Family, Verdict};
use crate::flow::{Flow, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP};
use crate::l2::IfaceId;
use crate::state::SctpEvent;
use crate::xmit::{decrement_ttl, set_macs};

const ARP_REQUEST: u16 = 1;
const ICMPV4_ECHO_REQUEST: u8 = 8;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_NEIGHBOR_SOLICIT: u8 = 135;
/// Length of the ICMP header before the quoted packet of an error (both versions).
const ICMP_ERROR_HEADER: usize = 8;

impl Engine {
    /// Processes one received frame in place. See [`Verdict`].
    #[inline]
    pub fn process(&mut self, now: Instant, ingress: IfaceId, pkt: &mut PacketBuf<'_>) -> Verdict {
        self.process_marked(now, ingress, 0, pkt)
    }

    /// As [`Engine::process`], for a packet carrying firewall mark `mark` (fwmark services).
    #[inline]
    pub fn process_marked(
        &mut self,
        now: Instant,
        ingress: IfaceId,
        mark: u32,
        pkt: &mut PacketBuf<'_>,
    ) -> Verdict {
        self.advance(now);
        // The common shape first: untagged, unfragmented TCP/UDP without IPv4 options. The
        // lean parse accepts exactly the frames the full parse would send to `handle_flow`,
        // with the same values; everything else goes the long way.
        if let Some(m) = PacketMeta::parse_ipv4_flow(pkt.data()) {
            let f = lean_flow(&m, ingress);
            return self.handle_flow::<Ipv4Addr>(ingress, mark, pkt, &f);
        }
        self.process_other(ingress, mark, pkt)
    }

    /// Every frame but the common IPv4 shape: the same for IPv6 without extension headers,
    /// then the full parse.
    #[inline(never)]
    fn process_other(&mut self, ingress: IfaceId, mark: u32, pkt: &mut PacketBuf<'_>) -> Verdict {
        if let Some(m) = PacketMeta::parse_ipv6_flow(pkt.data()) {
            let f = lean_flow(&m, ingress);
            return self.handle_flow::<Ipv6Addr>(ingress, mark, pkt, &f);
        }
        let meta = match PacketMeta::parse(pkt.data()) {
            Ok(m) => m,
            // Well-formed, but neither IP nor ARP: not the load balancer's (LLDP, LACP, …).
            Err(ParseError::UnsupportedEthertype) => return Verdict::Pass,
            Err(e) => return self.drop(DropReason::Malformed(e)),
        };
        match meta.ethertype {
            EtherType::Arp => self.handle_arp(ingress, pkt, &meta),
            EtherType::Ipv4 | EtherType::Ipv6 => self.handle_ip(ingress, mark, pkt, &meta),
            _ => Verdict::Pass,
        }
    }

    fn handle_arp(
        &mut self,
        ingress: IfaceId,
        pkt: &mut PacketBuf<'_>,
        meta: &PacketMeta,
    ) -> Verdict {
        if meta.arp_op != ARP_REQUEST || !self.is_vip(meta.dst_addr) {
            return Verdict::Pass;
        }
        let Some(mac) = self.l2.interface(ingress).map(|i| i.mac) else {
            return Verdict::Pass;
        };
        match reply::arp_reply(pkt, EthernetAddress(mac)) {
            Ok(()) => Verdict::Transmit(ingress),
            Err(_) => self.drop(DropReason::Unsupported),
        }
    }

    fn handle_ip(
        &mut self,
        ingress: IfaceId,
        mark: u32,
        pkt: &mut PacketBuf<'_>,
        meta: &PacketMeta,
    ) -> Verdict {
        let proto: u8 = meta.protocol.into();
        match meta.protocol {
            IpProtocol::Tcp | IpProtocol::Udp | IpProtocol::Sctp => {
                if meta.fragment != Fragment::None {
                    return if self.is_vip(meta.dst_addr) {
                        self.drop(DropReason::Fragment)
                    } else {
                        Verdict::Pass
                    };
                }
                let sctp_event = if proto == IPPROTO_SCTP {
                    sctp_event(pkt.data(), meta.l4_offset, meta.l3_offset + meta.ip_len)
                } else {
                    SctpEvent::Data
                };
                match (meta.src_addr, meta.dst_addr) {
                    (IpAddr::V4(s), IpAddr::V4(d)) => {
                        let f = flow(meta, s, d, proto, sctp_event, ingress);
                        self.handle_flow::<Ipv4Addr>(ingress, mark, pkt, &f)
                    }
                    (IpAddr::V6(s), IpAddr::V6(d)) => {
                        let f = flow(meta, s, d, proto, sctp_event, ingress);
                        self.handle_flow::<Ipv6Addr>(ingress, mark, pkt, &f)
                    }
                    _ => Verdict::Pass,
                }
            }
            IpProtocol::Icmp => self.handle_icmpv4(ingress, pkt, meta),
            IpProtocol::Icmpv6 => self.handle_icmpv6(ingress, pkt, meta),
            _ => Verdict::Pass,
        }
    }

    fn handle_icmpv4(
        &mut self,
        ingress: IfaceId,
        pkt: &mut PacketBuf<'_>,
        meta: &PacketMeta,
    ) -> Verdict {
        if meta.fragment != Fragment::None {
            return Verdict::Pass;
        }
        match meta.icmp_type {
            ICMPV4_ECHO_REQUEST if self.is_vip(meta.dst_addr) => {
                match reply::icmpv4_echo_reply(pkt) {
                    Ok(()) => Verdict::Transmit(ingress),
                    Err(_) => self.drop(DropReason::Unsupported),
                }
            }
            // Destination unreachable, source quench, time exceeded.
            3 | 4 | 11 => {
                let end = meta.l3_offset + meta.ip_len;
                let inv = Icmpv4Packet::new_checked(&pkt.data()[meta.l4_offset..end])
                    .and_then(|p| p.parse_invoking());
                match inv {
                    Ok(inv) => self.relay_icmp_any(pkt, meta, &inv),
                    Err(_) => self.drop(DropReason::IcmpNoConnection),
                }
            }
            _ => Verdict::Pass,
        }
    }

    fn handle_icmpv6(
        &mut self,
        ingress: IfaceId,
        pkt: &mut PacketBuf<'_>,
        meta: &PacketMeta,
    ) -> Verdict {
        if meta.fragment != Fragment::None {
            return Verdict::Pass;
        }
        let end = meta.l3_offset + meta.ip_len;
        match meta.icmp_type {
            ICMPV6_NEIGHBOR_SOLICIT => {
                let target = Icmpv6Packet::new_checked(&pkt.data()[meta.l4_offset..end])
                    .map(|p| p.target_addr());
                let Ok(target) = target else {
                    return Verdict::Pass;
                };
                if !self.is_vip(IpAddr::V6(target)) {
                    return Verdict::Pass;
                }
                let Some(mac) = self.l2.interface(ingress).map(|i| i.mac) else {
                    return Verdict::Pass;
                };
                match reply::neighbor_advert(pkt, EthernetAddress(mac)) {
                    Ok(()) => Verdict::Transmit(ingress),
                    Err(_) => self.drop(DropReason::Unsupported),
                }
            }
            ICMPV6_ECHO_REQUEST if self.is_vip(meta.dst_addr) => {
                match reply::icmpv6_echo_reply(pkt) {
                    Ok(()) => Verdict::Transmit(ingress),
                    Err(_) => self.drop(DropReason::Unsupported),
                }
            }
            // Destination unreachable, packet too big, time exceeded, parameter problem.
            1..=4 => {
                let inv = Icmpv6Packet::new_checked(&pkt.data()[meta.l4_offset..end])
                    .and_then(|p| p.parse_invoking());
                match inv {
                    Ok(inv) => self.relay_icmp_any(pkt, meta, &inv),
                    Err(_) => self.drop(DropReason::IcmpNoConnection),
                }
            }
            _ => Verdict::Pass,
        }
    }

    fn relay_icmp_any(
        &mut self,
        pkt: &mut PacketBuf<'_>,
        meta: &PacketMeta,
        inv: &InvokingPacket,
    ) -> Verdict {
        match inv.src_addr {
            IpAddr::V4(_) => self.relay_icmp::<Ipv4Addr>(pkt, meta, inv),
            IpAddr::V6(_) => self.relay_icmp::<Ipv6Addr>(pkt, meta, inv),
        }
    }

    /// Finds the connection an ICMP error is about and forwards the error along it.
    fn relay_icmp<A: Family>(
        &mut self,
        pkt: &mut PacketBuf<'_>,
        meta: &PacketMeta,
        inv: &InvokingPacket,
    ) -> Verdict {
        let proto: u8 = inv.protocol.into();
        let (Some((isport, idport)), Some(isrc), Some(idst)) = (
            inv.ports,
            A::from_ip(inv.src_addr),
            A::from_ip(inv.dst_addr),
        ) else {
            return self.drop(DropReason::IcmpNoConnection);
        };
        if !matches!(proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP) {
            return self.drop(DropReason::IcmpNoConnection);
        }
        let quoted = meta.l4_offset + ICMP_ERROR_HEADER;
        // Incoming: the quoted packet went VIP → client (a reply), the error came from the
        // client's side and goes to the real server that sent the reply.
        let ik = InKey {
            proto,
            caddr: idst,
            cport: idport,
            vaddr: isrc,
            vport: isport,
        };
        if let Some(idx) = A::conns(self).lookup_in(&ik) {
            let c = *A::conns(self).get(idx);
            self.count_icmp(&c, meta.ip_len, true);
            return self.icmp_towards_dest(pkt, meta, quoted, inv, &c);
        }
        // Outgoing (NAT): the quoted packet went client → RIP; the real server complains to the
        // client, which must only ever see the VIP.
        let ok = OutKey {
            proto,
            daddr: idst,
            dport: idport,
            caddr: isrc,
            cport: isport,
        };
        if let Some(idx) = A::conns(self).lookup_out(&ok) {
            let c = *A::conns(self).get(idx);
            self.count_icmp(&c, meta.ip_len, false);
            let nh = match self.l2.next_hop(c.caddr.to_ip()) {
                Ok(nh) => nh,
                Err(e) => return self.drop_nh(e),
            };
            if !decrement_ttl(pkt, meta.l3_offset) {
                return self.drop(DropReason::TtlExceeded);
            }
            let data = pkt.data_mut();
            set_outer(data, meta.l3_offset, false, c.vaddr.to_ip());
            set_quoted(data, quoted, inv, true, c.vaddr.to_ip(), c.vport);
            fill_icmp_checksum(data, meta);
            set_macs(pkt, &nh);
            return Verdict::Transmit(nh.iface);
        }
        self.drop(DropReason::IcmpNoConnection)
    }

    fn count_icmp<A>(&mut self, c: &Conn<A>, len: usize, inbound: bool) {
        let service = self.dests.get(c.dest).map(|d| d.service);
        if let Some(d) = self.dests.get_mut(c.dest) {
            if inbound {
                d.stats.inbound(len)
            } else {
                d.stats.outbound(len)
            }
        }
        if let Some(s) = service.and_then(|s| self.services.get_mut(s)) {
            if inbound {
                s.stats.inbound(len)
            } else {
                s.stats.outbound(len)
            }
        }
        if inbound {
            self.stats.inbound(len)
        } else {
            self.stats.outbound(len)
        }
    }

    /// Forwards an incoming ICMP error to the real server of connection `c` with the
    /// connection's method (NAT rewrites it to name the real server instead of the VIP).
    fn icmp_towards_dest<A: Family>(
        &mut self,
        pkt: &mut PacketBuf<'_>,
        meta: &PacketMeta,
        quoted: usize,
        inv: &InvokingPacket,
        c: &Conn<A>,
    ) -> Verdict {
        let Some(d) = self.dests.get(c.dest) else {
            return self.drop(DropReason::DestUnavailable);
        };
        let (method, daddr) = (d.fwd_method(), d.addr);
        let nh = match self.dest_next_hop(c.dest, daddr) {
            Ok(nh) => nh,
            Err(e) => return self.drop_nh(e),
        };
        if !decrement_ttl(pkt, meta.l3_offset) {
            return self.drop(DropReason::TtlExceeded);
        }
        match method {
            ForwardMethod::Masq => {
                let data = pkt.data_mut();
                set_outer(data, meta.l3_offset, true, daddr);
                set_quoted(data, quoted, inv, false, daddr, c.dport);
                fill_icmp_checksum(data, meta);
            }
            ForwardMethod::Route => {}
            ForwardMethod::Tunnel => {
                if let Err(r) = self.encapsulate(pkt, meta.l3_offset, daddr, nh.src_ip) {
                    return self.drop(r);
                }
            }
            ForwardMethod::Local => return self.drop(DropReason::LocalMethod),
        }
        set_macs(pkt, &nh);
        Verdict::Transmit(nh.iface)
    }
}

/// Rewrites the outer IP source (`dst == false`) or destination address.
fn set_outer(data: &mut [u8], l3: usize, dst: bool, addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => {
            let mut ip = Ipv4Packet::new_unchecked(&mut data[l3..]);
            if dst {
                ip.rewrite_dst_addr(a);
            } else {
                ip.rewrite_src_addr(a);
            }
        }
        IpAddr::V6(a) => {
            let mut ip = Ipv6Packet::new_unchecked(&mut data[l3..]);
            if dst {
                ip.set_dst_addr(a)
            } else {
                ip.set_src_addr(a)
            }
        }
    }
}

/// Rewrites the quoted packet's source (`dst == false`) or destination address and port.
fn set_quoted(data: &mut [u8], q: usize, inv: &InvokingPacket, dst: bool, addr: IpAddr, port: u16) {
    match addr {
        IpAddr::V4(a) => {
            let Some(hdr) = data.get_mut(q..) else { return };
            let mut ip = Ipv4Packet::new_unchecked(hdr);
            if dst {
                ip.set_dst_addr(a)
            } else {
                ip.set_src_addr(a)
            }
            // The quoted header's checksum must stay valid for the receiver to match it.
            let ihl = usize::from(hdr_first(data, q) & 0x0F) * 4;
            if let Some(h) = data.get_mut(q..q + ihl) {
                h[10..12].fill(0);
                let sum = rvs_wire::checksum::compute(h);
                h[10..12].copy_from_slice(&sum.to_be_bytes());
            }
        }
        IpAddr::V6(a) => {
            let Some(hdr) = data.get_mut(q..) else { return };
            let mut ip = Ipv6Packet::new_unchecked(hdr);
            if dst {
                ip.set_dst_addr(a)
            } else {
                ip.set_src_addr(a)
            }
        }
    }
    let p = q + inv.l4_offset + if dst { 2 } else { 0 };
    if let Some(b) = data.get_mut(p..p + 2) {
        b.copy_from_slice(&port.to_be_bytes());
    }
}

fn hdr_first(data: &[u8], q: usize) -> u8 {
    data.get(q).copied().unwrap_or(0x45)
}

/// Recomputes the ICMP / ICMPv6 checksum of the error message after rewriting it.
fn fill_icmp_checksum(data: &mut [u8], meta: &PacketMeta) {
    let end = meta.l3_offset + meta.ip_len;
    if data[meta.l3_offset] >> 4 == 6 {
        let ip = Ipv6Packet::new_unchecked(&data[meta.l3_offset..]);
        let (s, d) = (ip.src_addr(), ip.dst_addr());
        Icmpv6Packet::new_unchecked(&mut data[meta.l4_offset..end]).fill_checksum(&s, &d);
    } else {
        Icmpv4Packet::new_unchecked(&mut data[meta.l4_offset..end]).fill_checksum();
    }
}

#[inline(always)]
fn lean_flow<A: ConnAddr>(m: &FlowMeta<A>, ingress: IfaceId) -> Flow<A> {
    Flow {
        proto: m.protocol,
        saddr: m.src_addr,
        daddr: m.dst_addr,
        sport: m.src_port,
        dport: m.dst_port,
        tcp_flags: m.tcp_flags,
        sctp_event: SctpEvent::Data,
        ip_len: m.ip_len,
        l3: FLOW_L3_OFFSET,
        l4: m.l4_offset,
        ingress,
    }
}

fn flow<A: ConnAddr>(
    meta: &PacketMeta,
    saddr: A,
    daddr: A,
    proto: u8,
    sctp_event: SctpEvent,
    ingress: IfaceId,
) -> Flow<A> {
    Flow {
        proto,
        saddr,
        daddr,
        sport: meta.src_port,
        dport: meta.dst_port,
        tcp_flags: meta.tcp_flags.bits(),
        sctp_event,
        ip_len: meta.ip_len,
        l3: meta.l3_offset,
        l4: meta.l4_offset,
        ingress,
    }
}

/// The SCTP event of a packet: its first chunk's type (and the second's, for the
/// COOKIE-ECHO/ACK + ABORT rule).
fn sctp_event(data: &[u8], l4: usize, end: usize) -> SctpEvent {
    let Some(pkt) = data.get(l4..end) else {
        return SctpEvent::Data;
    };
    let Some(&first) = pkt.get(12) else {
        return SctpEvent::Data;
    };
    let len = pkt
        .get(14..16)
        .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    let second = pkt
        .get(12 + len.div_ceil(4) * 4)
        .copied()
        .filter(|_| len >= 4);
    SctpEvent::from_chunks(first, second)
}
