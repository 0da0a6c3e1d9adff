//! Director-generated replies, built in place from the received frame.
//!
//! The engine answers some frames itself rather than forwarding them: ARP requests and
//! neighbor solicitations for its VIPs, pings to VIPs, and ICMP errors about packets it
//! cannot forward (IPVS sends "fragmentation needed" / "packet too big" from
//! `ensure_mtu_is_adequate`). Each builder turns the received frame in a [`PacketBuf`] into
//! the reply: VLAN tags stay, Ethernet addresses are swapped, the L3 and L4 headers are
//! rewritten and every checksum is valid. The caller decides *whether* to answer (is the
//! address a VIP, rate limits); the builders check that the frame is the kind of packet
//! they answer and that the reply is allowed by the RFCs.
//!
//! On error the frame is unchanged. The replies are not padded to the 60-byte Ethernet
//! minimum (NICs pad on transmit).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::arp::{ArpOperation, ArpPacket, ArpRepr};
use crate::buf::PacketBuf;
use crate::checksum;
use crate::ethernet::{EtherType, EthernetAddress, EthernetFrame};
use crate::icmpv4::{self, Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4TimeExceeded};
use crate::icmpv6::{
    self, Icmpv6DstUnreachable, Icmpv6Message, Icmpv6Packet, Icmpv6Repr, Icmpv6TimeExceeded,
    NdiscNeighborFlags,
};
use crate::ip::{Fragment, IpProtocol};
use crate::ipv4::{self, Ipv4Packet, Ipv4Repr};
use crate::ipv6::{self, Ipv6Packet, Ipv6Repr};
use crate::tcp::{self, TcpFlags, TcpPacket};
use crate::vlan::l3_ethertype;
use crate::{Error, Result};

/// TTL / hop limit of generated packets (Linux's default).
pub const DEFAULT_TTL: u8 = 64;

/// Largest IPv4 datagram carrying an ICMPv4 error (RFC 1812 §4.3.2.3).
pub const ICMPV4_ERROR_MAX: usize = 576;

/// Largest IPv6 packet carrying an ICMPv6 error (RFC 4443 §2.4(c)): the minimum MTU.
pub const ICMPV6_ERROR_MAX: usize = icmpv6::MIN_MTU;

/// Hop limit of Neighbor Discovery messages (RFC 4861 §7.1).
const ND_HOP_LIMIT: u8 = 255;

/// IP TOS bits Linux keeps in ICMP errors (`IPTOS_TOS_MASK`), with precedence
/// "internetwork control" (`IPTOS_PREC_INTERNETCONTROL`).
const TOS_MASK: u8 = 0x1E;
const PREC_INTERNETCONTROL: u8 = 0xC0;

fn l3_of(buf: &PacketBuf<'_>, want: EtherType) -> Result<usize> {
    let (ethertype, l3) = l3_ethertype(buf.data())?;
    if ethertype != want {
        return Err(Error::Unsupported);
    }
    Ok(l3)
}

fn set_macs(buf: &mut PacketBuf<'_>, src: EthernetAddress, dst: EthernetAddress) {
    let mut eth = EthernetFrame::new_unchecked(buf.data_mut());
    eth.set_src_addr(src);
    eth.set_dst_addr(dst);
}

fn swap_macs(buf: &mut PacketBuf<'_>) {
    EthernetFrame::new_unchecked(buf.data_mut()).swap_addrs();
}

/// Turns an ARP request into the reply "target protocol address is at `our_mac`", sent to
/// the requester (Ethernet destination = the request's sender hardware address, as Linux
/// does). Also answers an ARP probe (sender protocol address 0.0.0.0, RFC 5227).
///
/// Errors: [`Error::Unsupported`] if the frame is not an Ethernet/IPv4 ARP request,
/// [`Error::Truncated`].
pub fn arp_reply(buf: &mut PacketBuf<'_>, our_mac: EthernetAddress) -> Result<()> {
    let l3 = l3_of(buf, EtherType::Arp)?;
    let request = ArpRepr::parse(&ArpPacket::new_checked(&buf.data()[l3..])?)?;
    if request.operation != ArpOperation::Request {
        return Err(Error::Unsupported);
    }
    let reply = ArpRepr {
        operation: ArpOperation::Reply,
        source_hardware_addr: our_mac,
        source_protocol_addr: request.target_protocol_addr,
        target_hardware_addr: request.source_hardware_addr,
        target_protocol_addr: request.source_protocol_addr,
    };
    buf.set_len(l3 + reply.buffer_len())?;
    reply.emit(&mut ArpPacket::new_unchecked(&mut buf.data_mut()[l3..]));
    set_macs(buf, our_mac, request.source_hardware_addr);
    Ok(())
}

/// Turns a neighbor solicitation into the solicited neighbor advertisement for its target
/// address, from `our_mac`: IPv6 source = the target, destination = the solicitation's
/// source, flags Solicited + Override, a target link-layer address option. A duplicate
/// address detection probe (unspecified source) is answered to all-nodes (ff02::1) without
/// the Solicited flag (RFC 4861 §7.2.4). Extension headers of the solicitation are dropped.
///
/// Needs up to 8 bytes of tailroom (a solicitation without options grows).
///
/// Errors: [`Error::Unsupported`] (not an NS), [`Error::Malformed`] (hop limit not 255,
/// multicast target, or a DAD probe with a source link-layer option — RFC 4861 §7.1.1),
/// [`Error::Checksum`], [`Error::Truncated`], [`Error::NoSpace`].
pub fn neighbor_advert(buf: &mut PacketBuf<'_>, our_mac: EthernetAddress) -> Result<()> {
    let l3 = l3_of(buf, EtherType::Ipv6)?;
    let data = buf.data();
    let ip = Ipv6Packet::new_checked(&data[l3..])?;
    let ip_repr = Ipv6Repr::parse(&ip)?;
    let l4 = ipv6::ipv6_upper_layer(&ip)?;
    if l4.next_header != IpProtocol::Icmpv6 || l4.fragment.is_some() {
        return Err(Error::Unsupported);
    }
    let icmp = Icmpv6Packet::new_checked(&data[l3 + l4.offset..l3 + ip.total_len()])?;
    if icmp.msg_type() != Icmpv6Message::NeighborSolicit {
        return Err(Error::Unsupported);
    }
    let (target_addr, lladdr) =
        match Icmpv6Repr::parse(&ip_repr.src_addr, &ip_repr.dst_addr, &icmp)? {
            Icmpv6Repr::NeighborSolicit {
                target_addr,
                lladdr,
            } => (target_addr, lladdr),
            _ => return Err(Error::Unsupported),
        };
    if ip_repr.hop_limit != ND_HOP_LIMIT || target_addr.is_multicast() {
        return Err(Error::Malformed);
    }
    let dad = ip_repr.src_addr.is_unspecified();
    if dad && lladdr.is_some() {
        return Err(Error::Malformed);
    }
    let requester_mac = EthernetFrame::new_unchecked(data).src_addr();
    let (dst_addr, dst_mac, flags) = if dad {
        let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        (
            all_nodes,
            EthernetAddress::from_ipv6_multicast(&all_nodes),
            NdiscNeighborFlags::OVERRIDE,
        )
    } else {
        (
            ip_repr.src_addr,
            requester_mac,
            NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
        )
    };
    let advert = Icmpv6Repr::NeighborAdvert {
        flags,
        target_addr,
        lladdr: Some(our_mac),
    };
    let reply_ip = Ipv6Repr {
        src_addr: target_addr,
        dst_addr,
        next_header: IpProtocol::Icmpv6,
        payload_len: advert.buffer_len(),
        hop_limit: ND_HOP_LIMIT,
        traffic_class: 0,
        flow_label: 0,
    };

    let total = l3 + ipv6::HEADER_LEN + advert.buffer_len();
    buf.set_len(total)?;
    let out = &mut buf.data_mut()[l3..];
    let (ip_bytes, icmp_bytes) = out.split_at_mut(ipv6::HEADER_LEN);
    reply_ip.emit(&mut Ipv6Packet::new_unchecked(ip_bytes));
    advert.emit(
        &target_addr,
        &dst_addr,
        &mut Icmpv6Packet::new_unchecked(icmp_bytes),
    );
    set_macs(buf, our_mac, dst_mac);
    Ok(())
}

/// Turns an ICMPv4 echo request into the echo reply: addresses swapped (IP and Ethernet),
/// TTL [`DEFAULT_TTL`], DF cleared, type 0, checksums updated. IP options are kept as received.
///
/// Errors: [`Error::Unsupported`] (not an unfragmented echo request), [`Error::Checksum`]
/// (IP header or ICMP), [`Error::Suppressed`] (sent to a broadcast or multicast address,
/// as Linux's `icmp_echo_ignore_broadcasts`), [`Error::Malformed`], [`Error::Truncated`].
pub fn icmpv4_echo_reply(buf: &mut PacketBuf<'_>) -> Result<()> {
    let l3 = l3_of(buf, EtherType::Ipv4)?;
    let ip = Ipv4Packet::new_checked(&buf.data()[l3..])?;
    if ip.version() != 4 {
        return Err(Error::Malformed);
    }
    if !ip.verify_checksum() {
        return Err(Error::Checksum);
    }
    if ip.fragment() != Fragment::None || ip.next_header() != IpProtocol::Icmp {
        return Err(Error::Unsupported);
    }
    let icmp = Icmpv4Packet::new_checked(ip.payload())?;
    if icmp.msg_type() != Icmpv4Message::EchoRequest || icmp.msg_code() != 0 {
        return Err(Error::Unsupported);
    }
    let dst = ip.dst_addr();
    if dst.is_broadcast() || dst.is_multicast() {
        return Err(Error::Suppressed);
    }
    if !icmp.verify_checksum() {
        return Err(Error::Checksum);
    }
    let total = usize::from(ip.total_len());
    let src = ip.src_addr();

    buf.set_len(l3 + total)?;
    let mut ip = Ipv4Packet::new_unchecked(&mut buf.data_mut()[l3..]);
    // Swapping the addresses leaves the header sum unchanged; the TTL does not.
    ip.set_src_addr(dst);
    ip.set_dst_addr(src);
    ip.set_ttl(DEFAULT_TTL);
    // Linux's ICMP socket does not set DF on replies (IP_PMTUDISC_DONT).
    ip.clear_flags();
    ip.fill_checksum();
    // A full recomputation, not RFC 1624: with identifier, sequence number and data all zero
    // the reply's covered bytes are all zero, whose checksum is 0xFFFF, while the
    // incremental update yields 0x0000 (ICMPv4 has no pseudo-header to keep the sum
    // non-zero). Echo replies are rare enough for this to cost nothing that matters.
    let mut icmp = Icmpv4Packet::new_unchecked(ip.payload_mut());
    icmp.set_msg_type(Icmpv4Message::EchoReply);
    icmp.fill_checksum();
    swap_macs(buf);
    Ok(())
}

/// Turns an ICMPv6 echo request into the echo reply: addresses swapped (IPv6 and Ethernet),
/// hop limit [`DEFAULT_TTL`], traffic class kept, flow label 0, type 129, checksum updated.
/// Extension headers are dropped.
///
/// Errors: [`Error::Unsupported`] (not an unfragmented echo request), [`Error::Checksum`],
/// [`Error::Suppressed`] (multicast destination: the reply needs a unicast source the
/// caller would have to choose), [`Error::Malformed`], [`Error::Truncated`].
pub fn icmpv6_echo_reply(buf: &mut PacketBuf<'_>) -> Result<()> {
    let l3 = l3_of(buf, EtherType::Ipv6)?;
    let data = buf.data();
    let ip = Ipv6Packet::new_checked(&data[l3..])?;
    let ip_repr = Ipv6Repr::parse(&ip)?;
    let l4 = ipv6::ipv6_upper_layer(&ip)?;
    if l4.next_header != IpProtocol::Icmpv6 || l4.fragment.is_some() {
        return Err(Error::Unsupported);
    }
    let icmp = Icmpv6Packet::new_checked(&data[l3 + l4.offset..l3 + ip.total_len()])?;
    if icmp.msg_type() != Icmpv6Message::EchoRequest || icmp.msg_code() != 0 {
        return Err(Error::Unsupported);
    }
    if ip_repr.dst_addr.is_multicast() {
        return Err(Error::Suppressed);
    }
    if !icmp.verify_checksum(&ip_repr.src_addr, &ip_repr.dst_addr) {
        return Err(Error::Checksum);
    }
    let total = ip.total_len();
    let icmp_len = total - l4.offset;
    let ext_len = l4.offset - ipv6::HEADER_LEN;

    buf.set_len(l3 + total)?;
    buf.remove_after(l3 + ipv6::HEADER_LEN, ext_len)?;
    // Moving the fixed header over the extension headers moved the L2 header too.
    let reply_ip = Ipv6Repr {
        src_addr: ip_repr.dst_addr,
        dst_addr: ip_repr.src_addr,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp_len,
        hop_limit: DEFAULT_TTL,
        traffic_class: ip_repr.traffic_class,
        flow_label: 0,
    };
    let out = &mut buf.data_mut()[l3..];
    let (ip_bytes, icmp_bytes) = out.split_at_mut(ipv6::HEADER_LEN);
    reply_ip.emit(&mut Ipv6Packet::new_unchecked(ip_bytes));
    // Swapped addresses leave the pseudo-header sum unchanged; only the type changes.
    let mut icmp = Icmpv6Packet::new_unchecked(icmp_bytes);
    let old = u16::from(u8::from(Icmpv6Message::EchoRequest)) << 8;
    let new = u16::from(u8::from(Icmpv6Message::EchoReply)) << 8;
    let csum = checksum::update16(icmp.checksum(), old, new);
    icmp.set_msg_type(Icmpv6Message::EchoReply);
    icmp.set_checksum(csum);
    swap_macs(buf);
    Ok(())
}

/// The ICMPv4 errors the director sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Error {
    /// Destination unreachable with this code (use [`Icmpv4Error::FragRequired`] for code 4).
    DstUnreachable(Icmpv4DstUnreachable),
    /// Destination unreachable, fragmentation needed and DF set, with the next-hop MTU.
    FragRequired {
        /// MTU of the next hop.
        mtu: u16,
    },
    /// Time exceeded with this code.
    TimeExceeded(Icmpv4TimeExceeded),
}

/// The ICMPv6 errors the director sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv6Error {
    /// Destination unreachable with this code.
    DstUnreachable(Icmpv6DstUnreachable),
    /// Packet too big, with the next-hop MTU.
    PktTooBig {
        /// MTU of the next hop.
        mtu: u32,
    },
    /// Time exceeded with this code.
    TimeExceeded(Icmpv6TimeExceeded),
}

/// Turns an offending IPv4 packet into an ICMPv4 error about it, sent back to its source:
/// a new IPv4 header (source `src_addr`, identification `ident`, TTL [`DEFAULT_TTL`], TOS
/// as Linux's `icmp_send`), the ICMP header and as much of the original datagram as fits in
/// [`ICMPV4_ERROR_MAX`] bytes. Ethernet addresses are swapped.
///
/// Needs 28 bytes of headroom. Errors: [`Error::Suppressed`] when RFC 1812 §4.3.2.7 forbids
/// the error (the packet is an ICMP error, a non-first fragment, or has a broadcast,
/// multicast, unspecified or loopback source, or a broadcast or multicast destination);
/// [`Error::Unsupported`] (not IPv4), [`Error::Malformed`], [`Error::Truncated`],
/// [`Error::NoSpace`].
pub fn icmpv4_error(
    buf: &mut PacketBuf<'_>,
    src_addr: Ipv4Addr,
    ident: u16,
    error: Icmpv4Error,
) -> Result<()> {
    const OVERHEAD: usize = ipv4::HEADER_LEN + icmpv4::HEADER_LEN;
    let l3 = l3_of(buf, EtherType::Ipv4)?;
    let ip = Ipv4Packet::new_checked(&buf.data()[l3..])?;
    if ip.version() != 4 {
        return Err(Error::Malformed);
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let bad_source = src.is_unspecified()
        || src.is_broadcast()
        || src.is_multicast()
        || src.is_loopback()
        || src.octets()[0] >= 240;
    if bad_source || dst.is_broadcast() || dst.is_multicast() {
        return Err(Error::Suppressed);
    }
    if ip.fragment() == Fragment::NonFirst {
        return Err(Error::Suppressed);
    }
    if ip.next_header() == IpProtocol::Icmp {
        // An error about an error would loop; an unreadable ICMP header counts as one.
        let payload = ip.payload();
        if payload.is_empty() || Icmpv4Message::from(payload[0]).is_error() {
            return Err(Error::Suppressed);
        }
    }
    if buf.headroom() < OVERHEAD {
        return Err(Error::NoSpace);
    }
    let quoted = usize::from(ip.total_len()).min(ICMPV4_ERROR_MAX - OVERHEAD);
    let tos = (ip.dscp_ecn() & TOS_MASK) | PREC_INTERNETCONTROL;

    buf.set_len(l3 + quoted)?;
    buf.insert_after(l3, OVERHEAD)?;
    let out = &mut buf.data_mut()[l3..];
    let (ip_bytes, icmp_bytes) = out.split_at_mut(ipv4::HEADER_LEN);
    Ipv4Repr {
        src_addr,
        dst_addr: src,
        next_header: IpProtocol::Icmp,
        payload_len: icmpv4::HEADER_LEN + quoted,
        hop_limit: DEFAULT_TTL,
        dscp_ecn: tos,
        ident,
        dont_frag: false,
    }
    .emit(&mut Ipv4Packet::new_unchecked(ip_bytes));
    let mut icmp = Icmpv4Packet::new_unchecked(icmp_bytes);
    icmp.clear_rest_of_header();
    match error {
        Icmpv4Error::DstUnreachable(code) => {
            icmp.set_msg_type(Icmpv4Message::DstUnreachable);
            icmp.set_msg_code(code.into());
        }
        Icmpv4Error::FragRequired { mtu } => {
            icmp.set_msg_type(Icmpv4Message::DstUnreachable);
            icmp.set_msg_code(Icmpv4DstUnreachable::FragRequired.into());
            icmp.set_next_hop_mtu(mtu);
        }
        Icmpv4Error::TimeExceeded(code) => {
            icmp.set_msg_type(Icmpv4Message::TimeExceeded);
            icmp.set_msg_code(code.into());
        }
    }
    icmp.fill_checksum();
    swap_macs(buf);
    Ok(())
}

/// Turns an offending IPv6 packet into an ICMPv6 error about it, sent back to its source:
/// a new IPv6 header (source `src_addr`, hop limit [`DEFAULT_TTL`]), the ICMPv6 header and as
/// much of the original packet as fits in [`ICMPV6_ERROR_MAX`] bytes. Ethernet addresses are
/// swapped.
///
/// Needs 48 bytes of headroom. Errors: [`Error::Suppressed`] when RFC 4443 §2.4(e) forbids
/// the error (the packet is an ICMPv6 error or redirect, its source is unspecified or
/// multicast, or its destination is multicast and the error is not "packet too big");
/// [`Error::Unsupported`] (not IPv6), [`Error::Malformed`], [`Error::Truncated`],
/// [`Error::NoSpace`].
pub fn icmpv6_error(buf: &mut PacketBuf<'_>, src_addr: Ipv6Addr, error: Icmpv6Error) -> Result<()> {
    const OVERHEAD: usize = ipv6::HEADER_LEN + icmpv6::HEADER_LEN;
    let l3 = l3_of(buf, EtherType::Ipv6)?;
    let ip = Ipv6Packet::new_checked(&buf.data()[l3..])?;
    let ip_repr = Ipv6Repr::parse(&ip)?;
    let (src, dst) = (ip_repr.src_addr, ip_repr.dst_addr);
    if src.is_unspecified() || src.is_multicast() {
        return Err(Error::Suppressed);
    }
    if dst.is_multicast() && !matches!(error, Icmpv6Error::PktTooBig { .. }) {
        return Err(Error::Suppressed);
    }
    // As Linux's is_ineligible(): only a readable ICMPv6 error/redirect header suppresses;
    // an unwalkable chain does not.
    if let Ok(l4) = ipv6::ipv6_upper_layer(&ip) {
        let first = l4.fragment.is_none_or(|f| f.offset == 0);
        if l4.next_header == IpProtocol::Icmpv6
            && first
            && let Some(&kind) = buf.data()[l3..l3 + ip.total_len()].get(l4.offset)
        {
            let kind = Icmpv6Message::from(kind);
            if kind.is_error() || kind == Icmpv6Message::Redirect {
                return Err(Error::Suppressed);
            }
        }
    }
    if buf.headroom() < OVERHEAD {
        return Err(Error::NoSpace);
    }
    let quoted = ip.total_len().min(ICMPV6_ERROR_MAX - OVERHEAD);

    buf.set_len(l3 + quoted)?;
    buf.insert_after(l3, OVERHEAD)?;
    let out = &mut buf.data_mut()[l3..];
    let (ip_bytes, icmp_bytes) = out.split_at_mut(ipv6::HEADER_LEN);
    Ipv6Repr {
        src_addr,
        dst_addr: src,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmpv6::HEADER_LEN + quoted,
        hop_limit: DEFAULT_TTL,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(&mut Ipv6Packet::new_unchecked(ip_bytes));
    let mut icmp = Icmpv6Packet::new_unchecked(icmp_bytes);
    icmp.clear_rest_of_header();
    let (kind, code) = match error {
        Icmpv6Error::DstUnreachable(code) => (Icmpv6Message::DstUnreachable, code.into()),
        Icmpv6Error::PktTooBig { mtu } => {
            icmp.set_pkt_too_big_mtu(mtu);
            (Icmpv6Message::PktTooBig, 0)
        }
        Icmpv6Error::TimeExceeded(code) => (Icmpv6Message::TimeExceeded, code.into()),
    };
    icmp.set_msg_type(kind);
    icmp.set_msg_code(code);
    icmp.fill_checksum(&src_addr, &src);
    swap_macs(buf);
    Ok(())
}

/// Turns a TCP segment into the reset a host without a matching socket sends back (RFC 9293
/// §3.10.7.1, as Linux's `tcp_v4_send_reset`/`tcp_v6_send_reset`): ports and addresses
/// swapped (IP and Ethernet); a segment with ACK gets `<SEQ=SEG.ACK><CTL=RST>`, one without
/// gets `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>` (SYN and FIN count in SEG.LEN). No
/// options, window 0. IPv4: 20-byte header, TOS kept, DF set and identification 0 (what
/// Linux sends for a DF packet without a socket), TTL [`DEFAULT_TTL`]. IPv6: extension
/// headers dropped, traffic class kept, flow label 0, hop limit [`DEFAULT_TTL`]. VLAN tags
/// stay.
///
/// Errors: [`Error::Unsupported`] (not TCP over IPv4/IPv6, a fragment, or itself a reset),
/// [`Error::Checksum`] (IPv4 header or TCP), [`Error::Suppressed`] (source or destination
/// not unicast, as Linux answers only segments for its own unicast addresses),
/// [`Error::Malformed`], [`Error::Truncated`].
pub fn tcp_reset(buf: &mut PacketBuf<'_>) -> Result<()> {
    let (ethertype, l3) = l3_ethertype(buf.data())?;
    let data = buf.data();
    // The addresses of the reply, and the segment it answers.
    let (src, dst, l4, l4_end, tos_or_class) = match ethertype {
        EtherType::Ipv4 => {
            let ip = Ipv4Packet::new_checked(&data[l3..])?;
            let repr = Ipv4Repr::parse(&ip)?;
            if repr.next_header != IpProtocol::Tcp {
                return Err(Error::Unsupported);
            }
            let (s, d) = (repr.src_addr, repr.dst_addr);
            if [s, d].iter().any(|a| {
                a.is_broadcast() || a.is_multicast() || a.is_unspecified() || a.is_loopback()
            }) {
                return Err(Error::Suppressed);
            }
            let l4 = l3 + usize::from(ip.header_len());
            (
                IpAddr::V4(s),
                IpAddr::V4(d),
                l4,
                l4 + repr.payload_len,
                repr.dscp_ecn,
            )
        }
        EtherType::Ipv6 => {
            let ip = Ipv6Packet::new_checked(&data[l3..])?;
            let repr = Ipv6Repr::parse(&ip)?;
            let upper = ipv6::ipv6_upper_layer(&ip)?;
            if upper.next_header != IpProtocol::Tcp || upper.fragment.is_some() {
                return Err(Error::Unsupported);
            }
            let (s, d) = (repr.src_addr, repr.dst_addr);
            if [s, d]
                .iter()
                .any(|a| a.is_multicast() || a.is_unspecified() || a.is_loopback())
            {
                return Err(Error::Suppressed);
            }
            (
                IpAddr::V6(s),
                IpAddr::V6(d),
                l3 + upper.offset,
                l3 + ip.total_len(),
                repr.traffic_class,
            )
        }
        _ => return Err(Error::Unsupported),
    };
    let seg = TcpPacket::new_checked(data.get(l4..l4_end).ok_or(Error::Truncated)?)?;
    if seg.rst() {
        return Err(Error::Unsupported);
    }
    if !seg.verify_checksum(&src, &dst) {
        return Err(Error::Checksum);
    }
    let (seq, ack, flags) = if seg.ack() {
        (seg.ack_number(), 0, TcpFlags::RST)
    } else {
        let len = seg.segment_len() as u32;
        (
            0,
            seg.seq_number().wrapping_add(len),
            TcpFlags::from_bits(TcpFlags::RST.bits() | TcpFlags::ACK.bits()),
        )
    };
    let (sport, dport) = (seg.src_port(), seg.dst_port());

    // The reply is no longer than the segment it answers: both headers are minimal.
    let ip_len = match dst {
        IpAddr::V4(_) => ipv4::HEADER_LEN,
        IpAddr::V6(_) => ipv6::HEADER_LEN,
    };
    buf.set_len(l3 + ip_len + tcp::HEADER_LEN)?;
    let out = &mut buf.data_mut()[l3..];
    let (ip_bytes, tcp_bytes) = out.split_at_mut(ip_len);
    match (dst, src) {
        (IpAddr::V4(from), IpAddr::V4(to)) => Ipv4Repr {
            src_addr: from,
            dst_addr: to,
            next_header: IpProtocol::Tcp,
            payload_len: tcp::HEADER_LEN,
            hop_limit: DEFAULT_TTL,
            dscp_ecn: tos_or_class,
            ident: 0,
            dont_frag: true,
        }
        .emit(&mut Ipv4Packet::new_unchecked(ip_bytes)),
        (IpAddr::V6(from), IpAddr::V6(to)) => Ipv6Repr {
            src_addr: from,
            dst_addr: to,
            next_header: IpProtocol::Tcp,
            payload_len: tcp::HEADER_LEN,
            hop_limit: DEFAULT_TTL,
            traffic_class: tos_or_class,
            flow_label: 0,
        }
        .emit(&mut Ipv6Packet::new_unchecked(ip_bytes)),
        _ => return Err(Error::Malformed),
    }
    // Reserved bits, AE and urgent pointer all zero.
    tcp_bytes.fill(0);
    let mut rst = TcpPacket::new_unchecked(tcp_bytes);
    rst.set_src_port(dport);
    rst.set_dst_port(sport);
    rst.set_seq_number(seq);
    rst.set_ack_number(ack);
    rst.set_header_len(tcp::HEADER_LEN as u8);
    rst.set_flags(flags);
    rst.fill_checksum(&dst, &src);
    swap_macs(buf);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::set_u16;
    use crate::fixtures;
    use std::vec::Vec;

    const HEADROOM: usize = 256;
    const R_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);

    /// A receive buffer as AF_XDP gives it: headroom, the frame, tailroom.
    struct Frame {
        raw: Vec<u8>,
        len: usize,
        head: usize,
    }

    impl Frame {
        fn new(frame: &[u8]) -> Frame {
            Self::with_headroom(frame, HEADROOM)
        }
        fn with_headroom(frame: &[u8], headroom: usize) -> Frame {
            let mut raw = vec![0xEE; headroom];
            raw.extend_from_slice(frame);
            raw.extend_from_slice(&[0xEE; 64]);
            Frame {
                raw,
                len: frame.len(),
                head: headroom,
            }
        }
        fn apply(&mut self, f: impl FnOnce(&mut PacketBuf<'_>) -> Result<()>) -> Result<Vec<u8>> {
            let mut buf = PacketBuf::new(&mut self.raw, self.head, self.len).unwrap();
            let r = f(&mut buf);
            let out = buf.data().to_vec();
            self.head = buf.head();
            self.len = buf.len();
            r.map(|()| out)
        }
    }

    fn build(frame: &[u8], f: impl FnOnce(&mut PacketBuf<'_>) -> Result<()>) -> Result<Vec<u8>> {
        Frame::new(frame).apply(f)
    }

    /// Asserts that a failing builder left the frame as it was.
    fn assert_rejected(
        frame: &[u8],
        want: Error,
        f: impl FnOnce(&mut PacketBuf<'_>) -> Result<()>,
    ) {
        let mut fr = Frame::new(frame);
        assert_eq!(fr.apply(f).unwrap_err(), want);
        assert_eq!(&fr.raw[fr.head..fr.head + fr.len], frame);
    }

    #[test]
    fn arp_reply_equals_linux_reply() {
        let out = build(fixtures::ARP_REQUEST, |b| arp_reply(b, R_MAC)).unwrap();
        assert_eq!(out, fixtures::ARP_REPLY);
        assert_rejected(fixtures::ARP_REPLY, Error::Unsupported, |b| {
            arp_reply(b, R_MAC)
        });
        assert_rejected(fixtures::TCP4_SYN, Error::Unsupported, |b| {
            arp_reply(b, R_MAC)
        });
    }

    #[test]
    fn arp_reply_keeps_vlan_tag() {
        let mut tagged = fixtures::ARP_REQUEST[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        tagged.extend_from_slice(&fixtures::ARP_REQUEST[12..]);
        tagged.extend_from_slice(&[0; 14]); // padded to 60 bytes on the wire
        let out = build(&tagged, |b| arp_reply(b, R_MAC)).unwrap();
        assert_eq!(&out[12..16], &[0x81, 0x00, 0x00, 0x64]);
        assert_eq!(&out[..12], &fixtures::ARP_REPLY[..12]);
        assert_eq!(&out[16..], &fixtures::ARP_REPLY[12..]);
    }

    #[test]
    fn neighbor_advert_equals_linux_reply() {
        let mut out = build(fixtures::NS, |b| neighbor_advert(b, R_MAC)).unwrap();
        // The captured NA came from a forwarding router, so Linux also set the R flag.
        let mut icmp = Icmpv6Packet::new_checked(&mut out[54..]).unwrap();
        assert_eq!(
            icmp.neighbor_flags(),
            NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE
        );
        assert!(icmp.verify_checksum(
            &"2001:db8::2".parse().unwrap(),
            &"2001:db8::1".parse().unwrap()
        ));
        icmp.set_neighbor_flags(icmp.neighbor_flags() | NdiscNeighborFlags::ROUTER);
        icmp.fill_checksum(
            &"2001:db8::2".parse().unwrap(),
            &"2001:db8::1".parse().unwrap(),
        );
        assert_eq!(out, fixtures::NA);
    }

    #[test]
    fn neighbor_advert_for_dad_and_short_ns() {
        // DAD probe for fe80::ff:fe00:1: answered to all-nodes, not solicited.
        let out = build(fixtures::NS_DAD, |b| neighbor_advert(b, R_MAC)).unwrap();
        let ip = Ipv6Packet::new_checked(&out[14..]).unwrap();
        assert_eq!(ip.dst_addr(), "ff02::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            ip.src_addr(),
            "fe80::ff:fe00:1".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(&out[..6], &[0x33, 0x33, 0, 0, 0, 1]);
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(icmp.neighbor_flags(), NdiscNeighborFlags::OVERRIDE);
        let o = etherparse::Icmpv6Slice::from_slice(ip.payload()).unwrap();
        assert!(o.is_checksum_valid(ip.src_addr().octets(), ip.dst_addr().octets()));

        // An NS without options (24 bytes) grows by the 8-byte option.
        let mut short = fixtures::NS[..14 + 40 + 24].to_vec();
        set_u16(&mut short, 18, 24);
        {
            let (s, d) = (
                Ipv6Packet::new_unchecked(&short[14..]).src_addr(),
                Ipv6Packet::new_unchecked(&short[14..]).dst_addr(),
            );
            Icmpv6Packet::new_unchecked(&mut short[54..]).fill_checksum(&s, &d);
        }
        let out = build(&short, |b| neighbor_advert(b, R_MAC)).unwrap();
        assert_eq!(out.len(), fixtures::NA.len());
        let mut fr = Frame::with_headroom(&short, 0);
        fr.raw.truncate(short.len() + 4);
        assert_eq!(
            fr.apply(|b| neighbor_advert(b, R_MAC)).unwrap_err(),
            Error::NoSpace
        );

        let mut hops = fixtures::NS.to_vec();
        hops[21] = 64;
        assert_rejected(&hops, Error::Malformed, |b| neighbor_advert(b, R_MAC));
        let mut bad = fixtures::NS.to_vec();
        bad[60] ^= 1;
        assert_rejected(&bad, Error::Checksum, |b| neighbor_advert(b, R_MAC));
        assert_rejected(fixtures::NA, Error::Unsupported, |b| {
            neighbor_advert(b, R_MAC)
        });
        assert_rejected(fixtures::ROUTER_SOLICIT, Error::Unsupported, |b| {
            neighbor_advert(b, R_MAC)
        });
    }

    #[test]
    fn icmpv4_echo_reply_equals_linux_reply() {
        let mut out = build(fixtures::ICMP4_ECHO_REQUEST, icmpv4_echo_reply).unwrap();
        // Linux picks a fresh IP identification; everything else is the same.
        let mut ip = Ipv4Packet::new_checked(&mut out[14..]).unwrap();
        assert!(ip.verify_checksum());
        ip.set_ident(
            Ipv4Packet::new_checked(&fixtures::ICMP4_ECHO_REPLY[14..])
                .unwrap()
                .ident(),
        );
        ip.fill_checksum();
        assert_eq!(out, fixtures::ICMP4_ECHO_REPLY);

        assert_rejected(
            fixtures::ICMP4_ECHO_REPLY,
            Error::Unsupported,
            icmpv4_echo_reply,
        );
        let mut bad = fixtures::ICMP4_ECHO_REQUEST.to_vec();
        bad[40] ^= 1;
        assert_rejected(&bad, Error::Checksum, icmpv4_echo_reply);
        let mut bcast = fixtures::ICMP4_ECHO_REQUEST.to_vec();
        Ipv4Packet::new_unchecked(&mut bcast[14..]).rewrite_dst_addr(Ipv4Addr::BROADCAST);
        assert_rejected(&bcast, Error::Suppressed, icmpv4_echo_reply);
    }

    #[test]
    fn icmpv4_echo_reply_of_all_zero_request() {
        // Found by the fuzzer: identifier, sequence number and data all zero. The reply's
        // covered bytes are all zero, so its checksum must be 0xFFFF, not 0x0000.
        let mut req = fixtures::ICMP4_ECHO_REQUEST.to_vec();
        req[38..].fill(0);
        Icmpv4Packet::new_unchecked(&mut req[34..]).fill_checksum();
        let out = build(&req, icmpv4_echo_reply).unwrap();
        let icmp = Icmpv4Packet::new_checked(&out[34..]).unwrap();
        assert_eq!(icmp.checksum(), 0xFFFF);
        assert!(icmp.verify_checksum());
        let o = etherparse::Icmpv4Slice::from_slice(&out[34..]).unwrap();
        assert_eq!(o.icmp_type().calc_checksum(o.payload()), 0xFFFF);
    }

    #[test]
    fn icmpv6_echo_reply_equals_linux_reply() {
        let mut out = build(fixtures::ICMP6_ECHO_REQUEST, icmpv6_echo_reply).unwrap();
        // Linux sets an automatic flow label; the ICMPv6 checksum does not cover it.
        Ipv6Packet::new_checked(&mut out[14..])
            .unwrap()
            .set_flow_label(
                Ipv6Packet::new_checked(&fixtures::ICMP6_ECHO_REPLY[14..])
                    .unwrap()
                    .flow_label(),
            );
        assert_eq!(out, fixtures::ICMP6_ECHO_REPLY);
        assert_rejected(
            fixtures::ICMP6_ECHO_REPLY,
            Error::Unsupported,
            icmpv6_echo_reply,
        );
        assert_rejected(fixtures::NS, Error::Unsupported, icmpv6_echo_reply);
    }

    #[test]
    fn icmpv6_echo_reply_drops_extension_headers() {
        // Echo request with a Destination Options header in front of ICMPv6.
        let req = fixtures::ICMP6_ECHO_REQUEST;
        let mut with_opts = req[..54].to_vec();
        with_opts[20] = 60;
        with_opts.extend_from_slice(&[58, 0, 1, 4, 0, 0, 0, 0]);
        with_opts.extend_from_slice(&req[54..]);
        set_u16(&mut with_opts, 18, (req.len() - 54 + 8) as u16);
        let out = build(&with_opts, icmpv6_echo_reply).unwrap();
        let ip = Ipv6Packet::new_checked(&out[14..]).unwrap();
        assert_eq!(ip.next_header(), IpProtocol::Icmpv6);
        assert_eq!(out.len(), req.len());
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(&ip.src_addr(), &ip.dst_addr()));
        assert_eq!(icmp.msg_type(), Icmpv6Message::EchoReply);
    }

    #[test]
    fn icmpv4_errors_equal_linux_errors() {
        for (offending, captured, error) in [
            (
                fixtures::UDP4_DF_1400,
                fixtures::ICMP4_FRAG_NEEDED,
                Icmpv4Error::FragRequired { mtu: 1280 },
            ),
            (
                fixtures::ICMP4_ECHO_TTL1,
                fixtures::ICMP4_TIME_EXCEEDED,
                Icmpv4Error::TimeExceeded(Icmpv4TimeExceeded::TtlExpired),
            ),
            (
                fixtures::UDP4_CLOSED_PORT,
                fixtures::ICMP4_PORT_UNREACHABLE,
                Icmpv4Error::DstUnreachable(Icmpv4DstUnreachable::PortUnreachable),
            ),
            (
                fixtures::IPV4_FRAG_FIRST,
                fixtures::ICMP4_PORT_UNREACHABLE_576,
                Icmpv4Error::DstUnreachable(Icmpv4DstUnreachable::PortUnreachable),
            ),
        ] {
            let ident = Ipv4Packet::new_checked(&captured[14..]).unwrap().ident();
            let out = build(offending, |b| {
                icmpv4_error(b, Ipv4Addr::new(198, 18, 0, 2), ident, error)
            })
            .unwrap();
            if offending == fixtures::IPV4_FRAG_FIRST {
                // Linux answered the reassembled datagram, so the quoted IP header differs
                // (no MF, total length 3028); the outer headers and the quoted L4 bytes agree.
                assert_eq!(out.len(), 14 + ICMPV4_ERROR_MAX);
                assert_eq!(&out[..36], &captured[..36]);
                assert_eq!(&out[38..42], &captured[38..42]);
                assert_eq!(&out[62..], &captured[62..]);
                let o = etherparse::Icmpv4Slice::from_slice(&out[34..]).unwrap();
                assert_eq!(o.icmp_type().calc_checksum(o.payload()), o.checksum());
                assert_eq!(&out[42..], &offending[14..14 + 548]);
            } else {
                assert_eq!(out, captured);
            }
        }
    }

    #[test]
    fn icmpv6_errors_equal_linux_errors() {
        for (offending, captured, error) in [
            (
                fixtures::UDP6_1400,
                fixtures::ICMP6_PKT_TOO_BIG,
                Icmpv6Error::PktTooBig { mtu: 1280 },
            ),
            (
                fixtures::ICMP6_ECHO_HOPS1,
                fixtures::ICMP6_TIME_EXCEEDED,
                Icmpv6Error::TimeExceeded(Icmpv6TimeExceeded::HopLimitExceeded),
            ),
            (
                fixtures::UDP6_CLOSED_PORT,
                fixtures::ICMP6_PORT_UNREACHABLE,
                Icmpv6Error::DstUnreachable(Icmpv6DstUnreachable::PortUnreachable),
            ),
        ] {
            let mut out = build(offending, |b| {
                icmpv6_error(b, "2001:db8::2".parse().unwrap(), error)
            })
            .unwrap();
            let ip = Ipv6Packet::new_checked(&out[14..]).unwrap();
            let o = etherparse::Icmpv6Slice::from_slice(ip.payload()).unwrap();
            assert!(o.is_checksum_valid(ip.src_addr().octets(), ip.dst_addr().octets()));
            assert!(out.len() - 14 <= ICMPV6_ERROR_MAX);
            Ipv6Packet::new_checked(&mut out[14..])
                .unwrap()
                .set_flow_label(
                    Ipv6Packet::new_checked(&captured[14..])
                        .unwrap()
                        .flow_label(),
                );
            assert_eq!(out, captured);
        }
    }

    #[test]
    fn icmp_errors_are_suppressed_where_rfcs_say() {
        let src4 = Ipv4Addr::new(198, 18, 0, 2);
        let unreach = Icmpv4Error::DstUnreachable(Icmpv4DstUnreachable::HostUnreachable);
        for frame in [
            fixtures::ICMP4_PORT_UNREACHABLE,
            fixtures::ICMP4_TIME_EXCEEDED,
            fixtures::IPV4_FRAG_MIDDLE,
            fixtures::IPV4_FRAG_LAST,
        ] {
            assert_rejected(frame, Error::Suppressed, |b| {
                icmpv4_error(b, src4, 0, unreach)
            });
        }
        for (addr, dst_side) in [
            (Ipv4Addr::new(224, 0, 0, 18), true),
            (Ipv4Addr::BROADCAST, true),
            (Ipv4Addr::UNSPECIFIED, false),
            (Ipv4Addr::new(127, 0, 0, 1), false),
            (Ipv4Addr::new(239, 1, 1, 1), false),
        ] {
            let mut f = fixtures::UDP4.to_vec();
            let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
            if dst_side {
                ip.rewrite_dst_addr(addr);
            } else {
                ip.rewrite_src_addr(addr);
            }
            assert_rejected(&f, Error::Suppressed, |b| icmpv4_error(b, src4, 0, unreach));
        }
        // An error about an echo request (not an error) is allowed.
        assert!(
            build(fixtures::ICMP4_ECHO_REQUEST, |b| icmpv4_error(
                b, src4, 0, unreach
            ))
            .is_ok()
        );
        let mut tight = Frame::with_headroom(fixtures::UDP4, 27);
        assert_eq!(
            tight
                .apply(|b| icmpv4_error(b, src4, 0, unreach))
                .unwrap_err(),
            Error::NoSpace
        );
        assert_eq!(&tight.raw[27..27 + fixtures::UDP4.len()], fixtures::UDP4);

        let src6: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let unreach6 = Icmpv6Error::DstUnreachable(Icmpv6DstUnreachable::AddrUnreachable);
        for frame in [
            fixtures::ICMP6_PORT_UNREACHABLE,
            fixtures::ICMP6_PKT_TOO_BIG,
            fixtures::NS,
            fixtures::MLD_REPORT_HBH_UNSPEC,
        ] {
            assert_rejected(frame, Error::Suppressed, |b| {
                icmpv6_error(b, src6, unreach6)
            });
        }
        // Packet too big is allowed towards a multicast destination.
        let mut mcast = fixtures::UDP6.to_vec();
        Ipv6Packet::new_unchecked(&mut mcast[14..]).set_dst_addr("ff0e::1".parse().unwrap());
        assert_rejected(&mcast, Error::Suppressed, |b| {
            icmpv6_error(b, src6, unreach6)
        });
        assert!(
            build(&mcast, |b| icmpv6_error(
                b,
                src6,
                Icmpv6Error::PktTooBig { mtu: 1280 }
            ))
            .is_ok()
        );
        // Non-first fragments may get ICMPv6 errors.
        assert!(
            build(fixtures::IPV6_FRAG_MIDDLE, |b| icmpv6_error(
                b, src6, unreach6
            ))
            .is_ok()
        );
        assert_rejected(fixtures::TCP4_SYN, Error::Unsupported, |b| {
            icmpv6_error(b, src6, unreach6)
        });
    }

    #[test]
    fn icmpv6_error_truncates_to_minimum_mtu() {
        let out = build(fixtures::IPV6_FRAG_FIRST, |b| {
            icmpv6_error(
                b,
                "2001:db8::2".parse().unwrap(),
                Icmpv6Error::PktTooBig { mtu: 1280 },
            )
        })
        .unwrap();
        assert_eq!(out.len(), 14 + ICMPV6_ERROR_MAX);
        assert_eq!(&out[14 + 48..], &fixtures::IPV6_FRAG_FIRST[14..14 + 1232]);
        let inv = Icmpv6Packet::new_checked(&out[54..])
            .unwrap()
            .parse_invoking()
            .unwrap();
        assert_eq!(inv.fragment, Fragment::First);
    }

    /// The reset, decoded by etherparse: (IP source, IP destination, TCP header), with both
    /// checksums verified by etherparse's own arithmetic.
    fn reset_oracle(frame: &[u8]) -> (IpAddr, IpAddr, etherparse::TcpHeader) {
        let p = etherparse::SlicedPacket::from_ethernet(frame).unwrap();
        let Some(etherparse::TransportSlice::Tcp(t)) = p.transport else {
            panic!("not TCP: {frame:02x?}");
        };
        assert!(t.payload().is_empty());
        let h = t.to_header();
        match p.net {
            Some(etherparse::NetSlice::Ipv4(ip)) => {
                let iph = ip.header().to_header();
                assert_eq!(iph.header_checksum, iph.calc_header_checksum());
                assert!(iph.dont_fragment && iph.identification == 0 && iph.time_to_live == 64);
                assert_eq!(h.checksum, h.calc_checksum_ipv4(&iph, &[]).unwrap());
                (
                    IpAddr::V4(iph.source.into()),
                    IpAddr::V4(iph.destination.into()),
                    h,
                )
            }
            Some(etherparse::NetSlice::Ipv6(ip)) => {
                let iph = ip.header().to_header();
                assert!(
                    ip.extensions().is_empty()
                        && iph.hop_limit == 64
                        && iph.flow_label.value() == 0
                );
                assert_eq!(h.checksum, h.calc_checksum_ipv6(&iph, &[]).unwrap());
                (
                    IpAddr::V6(iph.source.into()),
                    IpAddr::V6(iph.destination.into()),
                    h,
                )
            }
            other => panic!("not IP: {other:?}"),
        }
    }

    #[test]
    fn tcp_reset_matches_linux() {
        // Linux's answer to a SYN for a closed port, captured one router hop later (TTL 63).
        let mut out = build(fixtures::TCP4_SYN_CLOSED, tcp_reset).unwrap();
        let mut ip = Ipv4Packet::new_unchecked(&mut out[14..]);
        assert_eq!(ip.ttl(), DEFAULT_TTL);
        ip.set_ttl(63);
        ip.fill_checksum();
        assert_eq!(out, fixtures::TCP4_RST);
    }

    #[test]
    fn tcp_reset_of_an_ack_carries_its_ack_number() {
        for frame in [fixtures::TCP4_ACK, fixtures::TCP4_PSH, fixtures::TCP6_PSH] {
            let (_, l3) = l3_ethertype(frame).unwrap();
            let seg = etherparse::SlicedPacket::from_ethernet(frame).unwrap();
            let Some(etherparse::TransportSlice::Tcp(t)) = seg.transport else {
                panic!()
            };
            let out = build(frame, tcp_reset).unwrap();
            assert_eq!((&out[..6], &out[6..12]), (&frame[6..12], &frame[..6]));
            let (src, dst, h) = reset_oracle(&out);
            let (in_src, in_dst) = match (frame[l3] >> 4, &frame[l3..]) {
                (4, ip) => (
                    IpAddr::V4(Ipv4Packet::new_unchecked(ip).src_addr()),
                    IpAddr::V4(Ipv4Packet::new_unchecked(ip).dst_addr()),
                ),
                (_, ip) => (
                    IpAddr::V6(Ipv6Packet::new_unchecked(ip).src_addr()),
                    IpAddr::V6(Ipv6Packet::new_unchecked(ip).dst_addr()),
                ),
            };
            assert_eq!((src, dst), (in_dst, in_src));
            assert_eq!(
                (h.source_port, h.destination_port),
                (t.destination_port(), t.source_port())
            );
            assert!(t.ack() && h.rst && !h.ack && !h.syn && !h.fin && !h.psh);
            assert_eq!(
                (h.sequence_number, h.acknowledgment_number),
                (t.acknowledgment_number(), 0)
            );
            assert_eq!(
                (h.window_size, h.data_offset(), h.urgent_pointer),
                (0, 5, 0)
            );
        }
    }

    #[test]
    fn tcp_reset_of_a_segment_without_ack_acknowledges_it() {
        // A FIN with data and no ACK: SEG.LEN = payload + 1.
        let mut f = Frame::new(fixtures::TCP4_PSH);
        let seq = f
            .apply(|b| {
                let (_, l3) = l3_ethertype(b.data())?;
                let ip = Ipv4Packet::new_checked(&mut b.data_mut()[l3..])?;
                let hl = usize::from(ip.header_len());
                let (src, dst) = (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()));
                let mut t = TcpPacket::new_checked(&mut b.data_mut()[l3 + hl..])?;
                t.set_flags(TcpFlags::FIN);
                t.fill_checksum(&src, &dst);
                Ok(())
            })
            .unwrap();
        let t = etherparse::SlicedPacket::from_ethernet(&seq).unwrap();
        let Some(etherparse::TransportSlice::Tcp(t)) = t.transport else {
            panic!()
        };
        let want = t
            .sequence_number()
            .wrapping_add(t.payload().len() as u32 + 1);
        assert!(!t.payload().is_empty());
        let out = f.apply(tcp_reset).unwrap();
        let (_, _, h) = reset_oracle(&out);
        assert!(h.rst && h.ack && !h.fin);
        assert_eq!((h.sequence_number, h.acknowledgment_number), (0, want));
    }

    #[test]
    fn tcp_reset_refuses() {
        assert_rejected(fixtures::TCP4_RST, Error::Unsupported, tcp_reset);
        assert_rejected(fixtures::TCP6_RST, Error::Unsupported, tcp_reset);
        assert_rejected(fixtures::UDP4, Error::Unsupported, tcp_reset);
        assert_rejected(fixtures::ARP_REQUEST, Error::Unsupported, tcp_reset);
        assert_rejected(fixtures::IPV4_FRAG_FIRST, Error::Unsupported, tcp_reset);
        // A corrupted TCP checksum (last byte of the frame is inside the segment).
        let mut bad = fixtures::TCP4_ACK.to_vec();
        *bad.last_mut().unwrap() ^= 0x5A;
        assert_rejected(&bad, Error::Checksum, tcp_reset);
        // To a multicast destination (IPv4 header checksum fixed, TCP's left: the address
        // check comes first).
        let mut mc = fixtures::TCP4_ACK.to_vec();
        let mut ip = Ipv4Packet::new_unchecked(&mut mc[14..]);
        ip.set_dst_addr(Ipv4Addr::new(224, 0, 0, 1));
        ip.fill_checksum();
        assert_rejected(&mc, Error::Suppressed, tcp_reset);
        // Truncated segments never panic and change nothing.
        for n in 0..fixtures::TCP4_ACK.len() {
            let mut fr = Frame::new(&fixtures::TCP4_ACK[..n]);
            assert!(fr.apply(tcp_reset).is_err());
        }
    }
}
