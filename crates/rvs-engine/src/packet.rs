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

use crate::conn::{Conn, ConnAddr, InKey, NIL, OutKey};
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
/// Frames whose table lines [`Engine::process_batch`] loads together before processing them.
const WARM_GROUP: usize = 16;

/// What the batch warm-up learnt about an IPv4 flow frame.
#[derive(Clone, Copy)]
struct Warmed {
    flow: Flow<Ipv4Addr>,
    /// [`crate::conn::ConnTable::in_hash`] of its key.
    hash: u64,
    /// Its in-index lookup, valid while the table's link generation has not changed.
    found: Option<crate::conn::ConnIdx>,
}

impl Engine {
    /// Processes one received frame in place. See [`Verdict`].
    #[inline]
    pub fn process(&mut self, now: Instant, ingress: IfaceId, pkt: &mut PacketBuf<'_>) -> Verdict {
        self.process_marked(now, ingress, 0, pkt)
    }

    /// Processes a batch of frames received together on `ingress`, in order, exactly as
    /// [`Engine::process`] would one by one, and appends one verdict per frame to `verdicts`.
    ///
    /// Faster than the loop for large connection tables: each group of frames is parsed and
    /// hashed first and the connection-table lines the group needs are loaded before any
    /// frame is processed, so the cache and TLB misses of the group overlap instead of
    /// following one another.
    pub fn process_batch(
        &mut self,
        now: Instant,
        ingress: IfaceId,
        pkts: &mut [PacketBuf<'_>],
        verdicts: &mut Vec<Verdict>,
    ) {
        verdicts.reserve(pkts.len());
        self.advance(now);
        let mut flows = [None; WARM_GROUP];
        for group in pkts.chunks_mut(WARM_GROUP) {
            self.warm(ingress, group, &mut flows);
            let links = self.conns4.link_generation();
            for (pkt, flow) in group.iter_mut().zip(&flows) {
                // The parse of a frame does not depend on the engine, and the full hash of
                // its key not on the table's size: both are still right (what
                // `process_marked` would compute) after the frames before it were processed.
                // The lookup done in the warm-up is too, unless an earlier frame of the
                // group linked or unlinked an entry.
                let v = match flow {
                    Some(w) => {
                        let found = (self.conns4.link_generation() == links).then_some(w.found);
                        self.handle_flow_prepared(ingress, pkt, &w.flow, w.hash, found)
                    }
                    None => self.process_other(ingress, 0, pkt),
                };
                verdicts.push(v);
            }
        }
    }

    /// Parses and hashes the IPv4 flows of `group` into `flows`, then loads their in-index
    /// buckets and looks the flows up: only reads, whose misses overlap.
    #[inline(never)]
    fn warm(
        &self,
        ingress: IfaceId,
        group: &[PacketBuf<'_>],
        flows: &mut [Option<Warmed>; WARM_GROUP],
    ) {
        // Three tight passes, so that the misses of each pass are in flight together: the
        // hashes (parsing touches only the frames), the bucket heads, the chains.
        for (slot, pkt) in flows.iter_mut().zip(group) {
            *slot = PacketMeta::parse_ipv4_flow(pkt.data()).map(|m| {
                let flow = lean_flow(&m, ingress);
                let hash = self.conns4.in_hash(&flow.in_key());
                Warmed {
                    flow,
                    hash,
                    found: None,
                }
            });
        }
        let mut heads = [NIL; WARM_GROUP];
        for (head, slot) in heads.iter_mut().zip(&flows[..group.len()]) {
            if let Some(w) = slot {
                *head = self.conns4.warm_bucket(w.hash);
            }
        }
        for (&head, slot) in heads.iter().zip(&mut flows[..group.len()]) {
            if let Some(w) = slot {
                w.found = self.conns4.lookup_in_from(head, &w.flow.in_key());
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EngineConfig, Interface, Route};
    use etherparse::PacketBuilder;
    use proptest::prelude::*;
    use rvs_api::{DestSpec, Protocol, Request, Response, ServiceKey, ServiceSpec};

    const HEADROOM: usize = 128;
    const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xc1];
    const DIR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xd1];

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A director with a TCP and a UDP service on one VIP over a NAT, a DR and a TUN real
    /// server, and a small table that has to grow during the run.
    fn director(now: Instant) -> (Engine, IfaceId) {
        let mut e = Engine::new(
            now,
            EngineConfig {
                seed: 11,
                conn_capacity: 16,
            },
        );
        let eth = e.add_interface(Interface {
            name: "eth0".into(),
            mac: DIR_MAC,
            mtu: 1500,
            addrs: vec![ip("198.18.0.2")],
        });
        e.set_routes(vec![
            Route {
                dst: ip("198.18.0.0"),
                prefix_len: 24,
                iface: eth,
                gateway: None,
                src: None,
            },
            Route {
                dst: ip("0.0.0.0"),
                prefix_len: 0,
                iface: eth,
                gateway: Some(ip("198.18.0.1")),
                src: None,
            },
        ]);
        e.set_neighbour(eth, ip("198.18.0.1"), Some(CLIENT_MAC));
        for (protocol, sched) in [(Protocol::Tcp, "wlc"), (Protocol::Udp, "rr")] {
            let key = ServiceKey::Addr {
                protocol,
                addr: ip("198.18.0.100"),
                port: 80,
            };
            let mut spec = ServiceSpec::new(key);
            spec.scheduler = sched.into();
            assert_eq!(e.control(now, Request::AddService { spec }), Response::Ok);
            for (i, method) in [
                ForwardMethod::Masq,
                ForwardMethod::Route,
                ForwardMethod::Tunnel,
            ]
            .into_iter()
            .enumerate()
            {
                let rip = ip(&format!("198.18.0.{}", 11 + i));
                e.set_neighbour(eth, rip, Some([2, 0, 0, 0, 1, i as u8]));
                let mut dest = DestSpec::new(rip, 80);
                dest.fwd_method = method;
                assert_eq!(
                    e.control(now, Request::AddDest { service: key, dest }),
                    Response::Ok
                );
            }
        }
        (e, eth)
    }

    /// One frame of the random mix: client → VIP TCP with various flags or UDP, replies
    /// from the NAT real server, ARP, and a corrupt IPv4 header.
    fn frame(kind: u8, client: u8, port: u16, flags: u8) -> Vec<u8> {
        let caddr = [198, 19, 0, client % 8];
        let vip = [198, 18, 0, 100];
        let mut v = Vec::new();
        let eth = PacketBuilder::ethernet2(CLIENT_MAC, DIR_MAC);
        match kind % 6 {
            0 | 1 => {
                let mut b = eth.ipv4(caddr, vip, 64).tcp(port, 80, 7, 1000);
                if flags & 1 != 0 {
                    b = b.syn();
                }
                if flags & 2 != 0 {
                    b = b.ack(9);
                }
                if flags & 4 != 0 {
                    b = b.fin();
                }
                if flags & 8 != 0 {
                    b = b.rst();
                }
                b.write(&mut v, &[1, 2, 3]).unwrap();
            }
            2 => eth
                .ipv4(caddr, vip, 64)
                .udp(port, 80)
                .write(&mut v, &[4, 5])
                .unwrap(),
            3 => eth
                .ipv4([198, 18, 0, 11], caddr, 64)
                .tcp(80, port, 9, 1000)
                .ack(8)
                .write(&mut v, &[])
                .unwrap(),
            4 => {
                eth.ipv4(caddr, vip, 1)
                    .tcp(port, 80, 7, 1000)
                    .ack(9)
                    .write(&mut v, &[])
                    .unwrap();
            }
            _ => {
                eth.ipv4(caddr, vip, 64)
                    .tcp(port, 80, 7, 1000)
                    .ack(9)
                    .write(&mut v, &[])
                    .unwrap();
                v[24] ^= 0x55;
            }
        }
        v
    }

    /// Runs `frames` through a fresh director one by one, with the established-flow
    /// shortcut on or off, and returns everything observable.
    #[allow(clippy::type_complexity)]
    fn observe(
        frames: &[Vec<u8>],
        shortcut: bool,
        fast_path: bool,
    ) -> (
        Vec<(Verdict, Vec<u8>)>,
        Vec<rvs_api::ConnEntry>,
        Vec<rvs_api::ServiceEntry>,
        Vec<(&'static str, u64)>,
        Vec<crate::fastpath::FastUpdate>,
    ) {
        crate::flow::tests::NO_SHORTCUT.with(|c| c.set(!shortcut));
        let now = Instant::now();
        let (mut e, eth) = director(now);
        e.set_fast_path(fast_path);
        let mut out = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            let mut b = vec![0u8; HEADROOM + f.len() + 64];
            b[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
            let mut pkt = PacketBuf::new(&mut b, HEADROOM, f.len()).unwrap();
            // Time moves on, so re-armed timers differ from the old ones.
            let t = now + std::time::Duration::from_millis(7 * i as u64);
            let v = e.process(t, eth, &mut pkt);
            out.push((v, pkt.data().to_vec()));
        }
        crate::flow::tests::NO_SHORTCUT.with(|c| c.set(false));
        (
            out,
            e.list_conns(),
            e.list_services(),
            e.drop_counters(),
            e.drain_fast_updates(),
        )
    }

    proptest! {
        /// The in-place handling of ACKs on established connections does exactly what the
        /// general path does: verdicts, bytes, connection entries (state, timers, flags),
        /// counters, drops and fast-path updates.
        #[test]
        fn established_shortcut_equals_general_path(
            frames in proptest::collection::vec((any::<u8>(), any::<u8>(), 1000u16..1004, any::<u8>()), 1..150),
            fast_path in any::<bool>(),
        ) {
            // Half bare ACKs (the shortcut's case), a quarter SYNs, a quarter anything.
            let frames: Vec<Vec<u8>> = frames
                .iter()
                .map(|&(k, c, p, f)| {
                    let flags = match f % 4 {
                        0 => 1,
                        1 => f,
                        _ => 2,
                    };
                    frame(k, c, p, flags)
                })
                .collect();
            prop_assert_eq!(observe(&frames, true, fast_path), observe(&frames, false, fast_path));
        }

        /// `process_batch` is `process` in a loop: same verdicts, same bytes out, same
        /// tables and counters, for any mix and any batch length.
        #[test]
        fn batch_equals_one_by_one(
            frames in proptest::collection::vec((any::<u8>(), any::<u8>(), 1000u16..1006, any::<u8>()), 1..120),
            split in 1usize..40,
        ) {
            let now = Instant::now();
            let (mut one, eth) = director(now);
            let (mut batched, _) = director(now);
            let frames: Vec<Vec<u8>> = frames.iter().map(|&(k, c, p, f)| frame(k, c, p, f)).collect();
            let mut bufs_a: Vec<Vec<u8>> = frames.iter().map(|f| {
                let mut b = vec![0u8; HEADROOM + f.len() + 64];
                b[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
                b
            }).collect();
            let mut bufs_b = bufs_a.clone();
            let mut want = Vec::new();
            for (b, f) in bufs_a.iter_mut().zip(&frames) {
                let mut pkt = PacketBuf::new(b, HEADROOM, f.len()).unwrap();
                let v = one.process(now, eth, &mut pkt);
                want.push((v, pkt.data().to_vec()));
            }
            let mut got = Vec::new();
            let mut offset = 0;
            for chunk in bufs_b.chunks_mut(split) {
                let mut pkts: Vec<PacketBuf<'_>> = chunk
                    .iter_mut()
                    .zip(&frames[offset..])
                    .map(|(b, f)| PacketBuf::new(b, HEADROOM, f.len()).unwrap())
                    .collect();
                let mut verdicts = Vec::new();
                batched.process_batch(now, eth, &mut pkts, &mut verdicts);
                prop_assert_eq!(verdicts.len(), pkts.len());
                for (v, p) in verdicts.into_iter().zip(&pkts) {
                    got.push((v, p.data().to_vec()));
                }
                offset += chunk.len();
            }
            prop_assert_eq!(got, want);
            prop_assert_eq!(batched.list_conns(), one.list_conns());
            prop_assert_eq!(batched.list_services(), one.list_services());
            prop_assert_eq!(batched.drop_counters(), one.drop_counters());
            prop_assert_eq!(batched.global_stats(), one.global_stats());
        }
    }
}
