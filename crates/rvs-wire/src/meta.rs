//! One-pass frame summary for the engine's hot path.
//!
//! [`PacketMeta::parse`] reads an Ethernet frame once — L2 (up to two VLAN tags), L3 (ARP,
//! IPv4 with header checksum, IPv6 with its extension headers) and the first bytes of L4
//! (ports, TCP flags, ICMP type) — and returns the fields the engine dispatches on, or the
//! reason to drop the frame. It does not verify L4 checksums (the engine rewrites them
//! incrementally, so a corrupt one stays corrupt and the receiver drops it) and allocates
//! nothing.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum;
use crate::ethernet::{self, EtherType};
use crate::field::{get_array, get_u16, get_u32};
use crate::ip::{Fragment, IpProtocol, IpVersion};
use crate::tcp::TcpFlags;
use crate::{arp, icmpv4, ipv4, ipv6, tcp, udp, vlan};

/// Why [`PacketMeta::parse`] rejected a frame. One variant per drop reason; the engine
/// counts drops under [`ParseError::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseError {
    /// The frame ends inside the Ethernet header or a VLAN tag.
    Truncated,
    /// More than two VLAN tags.
    TooManyVlanTags,
    /// The (inner) EtherType is not ARP, IPv4 or IPv6.
    UnsupportedEthertype,
    /// An ARP frame shorter than the 28-byte Ethernet/IPv4 ARP packet.
    TruncatedArp,
    /// ARP for something other than IPv4 over Ethernet.
    UnsupportedArp,
    /// The frame ends inside the fixed IP header (or IPv4 options).
    TruncatedIp,
    /// The IP version does not match the EtherType.
    BadIpVersion,
    /// IPv4 IHL below 5.
    BadIpHeaderLength,
    /// IPv4 total length below the header length, or IP datagram length beyond the frame.
    BadTotalLength,
    /// The IPv4 header checksum does not verify.
    BadIpChecksum,
    /// A fragment that would reach beyond 65535 bytes of reassembled datagram.
    BadFragment,
    /// The IPv6 extension-header chain is truncated, malformed (Hop-by-Hop not first) or
    /// longer than eight headers.
    BadExtensionHeader,
    /// The datagram ends inside the TCP, UDP, SCTP or ICMP header.
    TruncatedL4,
    /// TCP data offset below 5 or beyond the datagram.
    BadTcpHeaderLength,
    /// UDP length field below 8 or beyond the datagram.
    BadUdpLength,
}

impl ParseError {
    /// Stable snake_case name, used as a counter name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            ParseError::Truncated => "truncated",
            ParseError::TooManyVlanTags => "too_many_vlan_tags",
            ParseError::UnsupportedEthertype => "unsupported_ethertype",
            ParseError::TruncatedArp => "truncated_arp",
            ParseError::UnsupportedArp => "unsupported_arp",
            ParseError::TruncatedIp => "truncated_ip",
            ParseError::BadIpVersion => "bad_ip_version",
            ParseError::BadIpHeaderLength => "bad_ip_header_length",
            ParseError::BadTotalLength => "bad_total_length",
            ParseError::BadIpChecksum => "bad_ip_checksum",
            ParseError::BadFragment => "bad_fragment",
            ParseError::BadExtensionHeader => "bad_extension_header",
            ParseError::TruncatedL4 => "truncated_l4",
            ParseError::BadTcpHeaderLength => "bad_tcp_header_length",
            ParseError::BadUdpLength => "bad_udp_length",
        }
    }

    /// Every variant, for registering counters up front.
    pub const ALL: [ParseError; 15] = [
        ParseError::Truncated,
        ParseError::TooManyVlanTags,
        ParseError::UnsupportedEthertype,
        ParseError::TruncatedArp,
        ParseError::UnsupportedArp,
        ParseError::TruncatedIp,
        ParseError::BadIpVersion,
        ParseError::BadIpHeaderLength,
        ParseError::BadTotalLength,
        ParseError::BadIpChecksum,
        ParseError::BadFragment,
        ParseError::BadExtensionHeader,
        ParseError::TruncatedL4,
        ParseError::BadTcpHeaderLength,
        ParseError::BadUdpLength,
    ];
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for ParseError {}

/// Summary of one frame.
///
/// Offsets are absolute in the frame. For ARP, `src_addr`/`dst_addr` are the sender/target
/// protocol addresses, `protocol` is [`PacketMeta::NO_PROTOCOL`] and `l4_offset` equals
/// `l3_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PacketMeta {
    /// VLAN id of the outermost tag, if tagged.
    pub vlan_id: Option<u16>,
    /// EtherType after the VLAN tags: `Arp`, `Ipv4` or `Ipv6`.
    pub ethertype: EtherType,
    /// Offset of the L3 header (14, 18 or 22).
    pub l3_offset: usize,
    /// IP version; `None` for ARP.
    pub ip_version: Option<IpVersion>,
    /// Source address (ARP: sender protocol address).
    pub src_addr: IpAddr,
    /// Destination address (ARP: target protocol address).
    pub dst_addr: IpAddr,
    /// Upper-layer protocol, after IPv6 extension headers.
    pub protocol: IpProtocol,
    /// Offset of the upper-layer header (for a non-first fragment: of the fragment data).
    pub l4_offset: usize,
    /// Source port (TCP, UDP, SCTP; 0 otherwise and for non-first fragments).
    pub src_port: u16,
    /// Destination port (as `src_port`).
    pub dst_port: u16,
    /// TCP flags (empty for other protocols).
    pub tcp_flags: TcpFlags,
    /// IP datagram length: IPv4 total length, or 40 + IPv6 payload length. The frame may be
    /// longer (padding); `l3_offset + ip_len` is where the datagram ends.
    pub ip_len: usize,
    /// TTL / hop limit (0 for ARP).
    pub ttl: u8,
    /// Fragment status.
    pub fragment: Fragment,
    /// IPv4 identification or IPv6 fragment identification (0 for an unfragmented IPv6
    /// packet).
    pub frag_ident: u32,
    /// ICMP / ICMPv6 type (0 otherwise; check `protocol` first).
    pub icmp_type: u8,
    /// ICMP / ICMPv6 code.
    pub icmp_code: u8,
    /// ARP operation (0 for IP).
    pub arp_op: u16,
}

type Parse<T> = core::result::Result<T, ParseError>;

/// Offset of the IP header in the frames [`FlowMeta`] describes (untagged Ethernet).
pub const FLOW_L3_OFFSET: usize = ethernet::HEADER_LEN;

/// The flow fields of an untagged, unfragmented TCP or UDP packet without IPv4 options or
/// IPv6 extension headers: the shape of nearly every packet a load balancer forwards.
///
/// [`PacketMeta::parse_ipv4_flow`] and [`PacketMeta::parse_ipv6_flow`] return it for exactly
/// the frames that [`PacketMeta::parse`] accepts with that shape, with the same field values;
/// the IP header starts at [`FLOW_L3_OFFSET`] and the transport header at `l4_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowMeta<A> {
    /// Source address.
    pub src_addr: A,
    /// Destination address.
    pub dst_addr: A,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// 6 (TCP) or 17 (UDP).
    pub protocol: u8,
    /// TCP flags byte (0 for UDP).
    pub tcp_flags: u8,
    /// Offset of the transport header in the frame (34 for IPv4, 54 for IPv6).
    pub l4_offset: usize,
    /// IP datagram length, as [`PacketMeta::ip_len`].
    pub ip_len: usize,
}

/// Whether the 20-byte option-less IPv4 header `h` has a valid checksum, with the result of
/// `fold(sum(h)) == 0xFFFF`:
/// * native-endian 32-bit words: the ones'-complement sum of byte-swapped words is the
///   byte-swapped sum, and "all ones" is its own byte swap;
/// * folding a sum to 16 bits gives "all ones" exactly when the sum is a non-zero multiple
///   of 0xFFFF (2^16 ≡ 1 mod 0xFFFF, and end-around carry never folds a non-zero sum to 0);
///   the caller has checked the first byte (0x45), so the sum is never zero.
#[inline(always)]
fn ipv4_header_checksum_ok(h: &[u8; ipv4::HEADER_LEN]) -> bool {
    let w = |i: usize| u64::from(u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
    (w(0) + w(4) + w(8) + w(12) + w(16)) % 0xFFFF == 0
}

/// The transport checks of [`PacketMeta::parse_l4`] for an unfragmented TCP/UDP datagram:
/// `(src_port, dst_port, tcp_flags)` if they pass.
#[inline(always)]
fn flow_l4(protocol: u8, l4: &[u8]) -> Option<(u16, u16, u8)> {
    let flags = match protocol {
        6 => {
            let hdr: &[u8; tcp::HEADER_LEN] = l4.first_chunk()?;
            let header_len = usize::from(hdr[12] >> 4) * 4;
            if header_len < tcp::HEADER_LEN || header_len > l4.len() {
                return None;
            }
            hdr[13]
        }
        17 => {
            let hdr: &[u8; udp::HEADER_LEN] = l4.first_chunk()?;
            let len = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
            if len < udp::HEADER_LEN || len > l4.len() {
                return None;
            }
            0
        }
        _ => return None,
    };
    let ports: &[u8; 4] = l4.first_chunk()?;
    Some((
        u16::from_be_bytes([ports[0], ports[1]]),
        u16::from_be_bytes([ports[2], ports[3]]),
        flags,
    ))
}

impl PacketMeta {
    /// The `protocol` value for ARP frames: `IpProtocol::Unknown(0)`, which IP parsing
    /// never yields (0 parses as `HopByHop`).
    pub const NO_PROTOCOL: IpProtocol = IpProtocol::Unknown(0);

    /// Length of the L4 part of the datagram (header + payload, or fragment data).
    pub fn l4_len(&self) -> usize {
        (self.l3_offset + self.ip_len).saturating_sub(self.l4_offset)
    }

    /// Parses an Ethernet frame (without FCS). Never panics, never allocates.
    pub fn parse(frame: &[u8]) -> Parse<PacketMeta> {
        let (ethertype, l3_offset) = vlan::l3_ethertype(frame).map_err(|e| match e {
            crate::Error::Unsupported => ParseError::TooManyVlanTags,
            _ => ParseError::Truncated,
        })?;
        let outer = EtherType::from(get_u16(frame, ethernet::HEADER_LEN - 2));
        let vlan_id = outer
            .is_vlan()
            .then(|| get_u16(frame, ethernet::HEADER_LEN) & 0x0FFF);
        let mut meta = PacketMeta {
            vlan_id,
            ethertype,
            l3_offset,
            ip_version: None,
            src_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            protocol: Self::NO_PROTOCOL,
            l4_offset: l3_offset,
            src_port: 0,
            dst_port: 0,
            tcp_flags: TcpFlags::NONE,
            ip_len: 0,
            ttl: 0,
            fragment: Fragment::None,
            frag_ident: 0,
            icmp_type: 0,
            icmp_code: 0,
            arp_op: 0,
        };
        let l3 = &frame[l3_offset..];
        match ethertype {
            EtherType::Ipv4 => meta.parse_ipv4(l3)?,
            EtherType::Ipv6 => meta.parse_ipv6(l3)?,
            EtherType::Arp => meta.parse_arp(l3)?,
            _ => return Err(ParseError::UnsupportedEthertype),
        }
        Ok(meta)
    }

    /// The hot-path parse: [`FlowMeta`] of an untagged IPv4 frame carrying an unfragmented
    /// TCP or UDP datagram with a 20-byte header, or `None` for every other frame — including
    /// every frame [`PacketMeta::parse`] rejects, so the caller falls back to it and gets the
    /// drop reason from there. Same checks as `parse` (lengths, header checksum, fragment
    /// fields, TCP data offset, UDP length), same values.
    #[inline]
    pub fn parse_ipv4_flow(frame: &[u8]) -> Option<FlowMeta<Ipv4Addr>> {
        const L4: usize = FLOW_L3_OFFSET + ipv4::HEADER_LEN;
        let head: &[u8; L4] = frame.first_chunk()?;
        // EtherType IPv4, version 4 with IHL 5.
        if head[12..15] != [0x08, 0x00, 0x45] {
            return None;
        }
        let ip: &[u8; ipv4::HEADER_LEN] = head[FLOW_L3_OFFSET..].first_chunk()?;
        let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        // Neither MF nor a fragment offset (the reserved bit and DF do not matter).
        if total_len < ipv4::HEADER_LEN
            || FLOW_L3_OFFSET + total_len > frame.len()
            || u16::from_be_bytes([ip[6], ip[7]]) & 0x3FFF != 0
            || !ipv4_header_checksum_ok(ip)
        {
            return None;
        }
        let protocol = ip[9];
        let (src_port, dst_port, tcp_flags) =
            flow_l4(protocol, &frame[L4..FLOW_L3_OFFSET + total_len])?;
        Some(FlowMeta {
            src_addr: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
            dst_addr: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
            src_port,
            dst_port,
            protocol,
            tcp_flags,
            l4_offset: L4,
            ip_len: total_len,
        })
    }

    /// As [`PacketMeta::parse_ipv4_flow`], for an untagged IPv6 frame whose next header is
    /// TCP or UDP (no extension header).
    #[inline]
    pub fn parse_ipv6_flow(frame: &[u8]) -> Option<FlowMeta<Ipv6Addr>> {
        const L4: usize = FLOW_L3_OFFSET + ipv6::HEADER_LEN;
        let head: &[u8; L4] = frame.first_chunk()?;
        if head[12..14] != [0x86, 0xDD] || head[14] >> 4 != 6 {
            return None;
        }
        let ip: &[u8; ipv6::HEADER_LEN] = head[FLOW_L3_OFFSET..].first_chunk()?;
        let total_len = ipv6::HEADER_LEN + usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        if FLOW_L3_OFFSET + total_len > frame.len() {
            return None;
        }
        let protocol = ip[6];
        let (src_port, dst_port, tcp_flags) =
            flow_l4(protocol, &frame[L4..FLOW_L3_OFFSET + total_len])?;
        Some(FlowMeta {
            src_addr: Ipv6Addr::from(get_array::<16>(ip, 8)),
            dst_addr: Ipv6Addr::from(get_array::<16>(ip, 24)),
            src_port,
            dst_port,
            protocol,
            tcp_flags,
            l4_offset: L4,
            ip_len: total_len,
        })
    }

    fn parse_arp(&mut self, l3: &[u8]) -> Parse<()> {
        if l3.len() < arp::PACKET_LEN {
            return Err(ParseError::TruncatedArp);
        }
        if get_u16(l3, 0) != arp::HARDWARE_ETHERNET
            || EtherType::from(get_u16(l3, 2)) != EtherType::Ipv4
            || l3[4] != 6
            || l3[5] != 4
        {
            return Err(ParseError::UnsupportedArp);
        }
        self.arp_op = get_u16(l3, 6);
        self.src_addr = IpAddr::V4(Ipv4Addr::from(get_array::<4>(l3, 14)));
        self.dst_addr = IpAddr::V4(Ipv4Addr::from(get_array::<4>(l3, 24)));
        self.ip_len = arp::PACKET_LEN;
        Ok(())
    }

    fn parse_ipv4(&mut self, l3: &[u8]) -> Parse<()> {
        if l3.len() < ipv4::HEADER_LEN {
            return Err(ParseError::TruncatedIp);
        }
        if l3[0] >> 4 != 4 {
            return Err(ParseError::BadIpVersion);
        }
        let header_len = usize::from(l3[0] & 0x0F) * 4;
        if header_len < ipv4::HEADER_LEN {
            return Err(ParseError::BadIpHeaderLength);
        }
        if l3.len() < header_len {
            return Err(ParseError::TruncatedIp);
        }
        let total_len = usize::from(get_u16(l3, 2));
        if total_len < header_len || total_len > l3.len() {
            return Err(ParseError::BadTotalLength);
        }
        if checksum::fold(checksum::sum(&l3[..header_len])) != 0xFFFF {
            return Err(ParseError::BadIpChecksum);
        }
        let flags_frag = get_u16(l3, 6);
        let frag_offset = usize::from(flags_frag & 0x1FFF) * 8;
        if frag_offset + (total_len - header_len) > usize::from(u16::MAX) {
            return Err(ParseError::BadFragment);
        }
        self.ip_version = Some(IpVersion::Ipv4);
        self.fragment = Fragment::classify(frag_offset as u16, flags_frag & 0x2000 != 0);
        self.frag_ident = u32::from(get_u16(l3, 4));
        self.ttl = l3[8];
        self.protocol = IpProtocol::from(l3[9]);
        self.src_addr = IpAddr::V4(Ipv4Addr::from(get_array::<4>(l3, 12)));
        self.dst_addr = IpAddr::V4(Ipv4Addr::from(get_array::<4>(l3, 16)));
        self.ip_len = total_len;
        self.l4_offset = self.l3_offset + header_len;
        self.parse_l4(&l3[header_len..total_len])
    }

    fn parse_ipv6(&mut self, l3: &[u8]) -> Parse<()> {
        if l3.len() < ipv6::HEADER_LEN {
            return Err(ParseError::TruncatedIp);
        }
        if l3[0] >> 4 != 6 {
            return Err(ParseError::BadIpVersion);
        }
        let total_len = ipv6::HEADER_LEN + usize::from(get_u16(l3, 4));
        if total_len > l3.len() {
            return Err(ParseError::BadTotalLength);
        }
        let l4 = ipv6::walk_extension_headers(l3, total_len)
            .map_err(|_| ParseError::BadExtensionHeader)?;
        if let Some(frag) = l4.fragment {
            if usize::from(frag.offset) + (total_len - l4.offset) > usize::from(u16::MAX) {
                return Err(ParseError::BadFragment);
            }
            self.fragment = Fragment::classify(frag.offset, frag.more_frags);
            self.frag_ident = frag.ident;
        }
        self.ip_version = Some(IpVersion::Ipv6);
        self.ttl = l3[7];
        self.protocol = l4.next_header;
        self.src_addr = IpAddr::V6(Ipv6Addr::from(get_array::<16>(l3, 8)));
        self.dst_addr = IpAddr::V6(Ipv6Addr::from(get_array::<16>(l3, 24)));
        self.ip_len = total_len;
        self.l4_offset = self.l3_offset + l4.offset;
        self.parse_l4(&l3[l4.offset..total_len])
    }

    /// Reads ports, flags or ICMP type from the upper-layer bytes `l4` (bounded by the
    /// datagram length).
    fn parse_l4(&mut self, l4: &[u8]) -> Parse<()> {
        if self.fragment == Fragment::NonFirst {
            return Ok(());
        }
        match self.protocol {
            IpProtocol::Tcp => {
                if l4.len() < tcp::HEADER_LEN {
                    return Err(ParseError::TruncatedL4);
                }
                let header_len = usize::from(l4[12] >> 4) * 4;
                if header_len < tcp::HEADER_LEN || header_len > l4.len() {
                    return Err(ParseError::BadTcpHeaderLength);
                }
                self.tcp_flags = TcpFlags::from_bits(l4[13]);
                self.set_ports(l4);
            }
            IpProtocol::Udp => {
                if l4.len() < udp::HEADER_LEN {
                    return Err(ParseError::TruncatedL4);
                }
                // A first fragment's UDP length covers the whole datagram, so it is only
                // checked against unfragmented packets.
                let len = usize::from(get_u16(l4, 4));
                if self.fragment == Fragment::None && (len < udp::HEADER_LEN || len > l4.len()) {
                    return Err(ParseError::BadUdpLength);
                }
                self.set_ports(l4);
            }
            IpProtocol::Sctp => {
                // Common header: ports, verification tag, checksum.
                if l4.len() < 12 {
                    return Err(ParseError::TruncatedL4);
                }
                self.set_ports(l4);
            }
            IpProtocol::Icmp | IpProtocol::Icmpv6 => {
                if l4.len() < icmpv4::HEADER_LEN {
                    return Err(ParseError::TruncatedL4);
                }
                self.icmp_type = l4[0];
                self.icmp_code = l4[1];
            }
            _ => {}
        }
        Ok(())
    }

    fn set_ports(&mut self, l4: &[u8]) {
        let ports = get_u32(l4, 0);
        self.src_port = (ports >> 16) as u16;
        self.dst_port = ports as u16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// Compares a parse against etherparse's view of the same frame.
    fn check_against_etherparse(name: &str, frame: &[u8]) {
        let meta = PacketMeta::parse(frame).unwrap_or_else(|e| panic!("{name}: {e}"));
        let o = etherparse::SlicedPacket::from_ethernet(frame)
            .unwrap_or_else(|e| panic!("{name}: etherparse: {e:?}"));
        match &o.net {
            Some(etherparse::NetSlice::Ipv4(ip)) => {
                let h = ip.header();
                assert_eq!(meta.ip_version, Some(IpVersion::Ipv4), "{name}");
                assert_eq!(meta.src_addr, IpAddr::V4(h.source_addr()), "{name}");
                assert_eq!(meta.dst_addr, IpAddr::V4(h.destination_addr()), "{name}");
                assert_eq!(meta.ip_len, usize::from(h.total_len()), "{name}");
                assert_eq!(meta.ttl, h.ttl(), "{name}");
                assert_eq!(meta.frag_ident, u32::from(h.identification()), "{name}");
                assert_eq!(meta.l4_offset, meta.l3_offset + h.slice().len(), "{name}");
                assert_eq!(
                    meta.fragment != Fragment::None,
                    ip.is_payload_fragmented(),
                    "{name}"
                );
                assert_eq!(u8::from(meta.protocol), ip.payload().ip_number.0, "{name}");
            }
            Some(etherparse::NetSlice::Ipv6(ip)) => {
                let h = ip.header();
                assert_eq!(meta.ip_version, Some(IpVersion::Ipv6), "{name}");
                assert_eq!(meta.src_addr, IpAddr::V6(h.source_addr()), "{name}");
                assert_eq!(meta.dst_addr, IpAddr::V6(h.destination_addr()), "{name}");
                assert_eq!(meta.ip_len, 40 + usize::from(h.payload_length()), "{name}");
                assert_eq!(meta.ttl, h.hop_limit(), "{name}");
                assert_eq!(
                    meta.fragment != Fragment::None,
                    ip.is_payload_fragmented(),
                    "{name}"
                );
                assert_eq!(u8::from(meta.protocol), ip.payload().ip_number.0, "{name}");
                let payload = ip.payload().payload;
                assert_eq!(meta.l4_len(), payload.len(), "{name}");
            }
            Some(etherparse::NetSlice::Arp(a)) => {
                assert_eq!(meta.ethertype, EtherType::Arp, "{name}");
                assert_eq!(meta.arp_op, a.operation().0, "{name}");
                assert_eq!(meta.ip_version, None, "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }
        match &o.transport {
            Some(etherparse::TransportSlice::Tcp(t)) => {
                assert_eq!(
                    (meta.src_port, meta.dst_port),
                    (t.source_port(), t.destination_port()),
                    "{name}"
                );
                assert_eq!(meta.tcp_flags.syn(), t.syn(), "{name}");
                assert_eq!(meta.tcp_flags.ack(), t.ack(), "{name}");
                assert_eq!(meta.tcp_flags.fin(), t.fin(), "{name}");
                assert_eq!(meta.tcp_flags.rst(), t.rst(), "{name}");
                assert_eq!(meta.tcp_flags.psh(), t.psh(), "{name}");
            }
            Some(etherparse::TransportSlice::Udp(u)) => {
                assert_eq!(
                    (meta.src_port, meta.dst_port),
                    (u.source_port(), u.destination_port()),
                    "{name}"
                );
            }
            Some(etherparse::TransportSlice::Icmpv4(i)) => {
                assert_eq!(
                    (meta.icmp_type, meta.icmp_code),
                    (i.type_u8(), i.code_u8()),
                    "{name}"
                );
            }
            Some(etherparse::TransportSlice::Icmpv6(i)) => {
                assert_eq!(
                    (meta.icmp_type, meta.icmp_code),
                    (i.type_u8(), i.code_u8()),
                    "{name}"
                );
            }
            // etherparse does not look into fragments; a first fragment still has ports.
            None if meta.fragment == Fragment::First => {
                let l4 = &frame[meta.l4_offset..];
                let ports = (get_u16(l4, 0), get_u16(l4, 2));
                assert_eq!((meta.src_port, meta.dst_port), ports, "{name}");
            }
            None => {
                assert_eq!((meta.src_port, meta.dst_port), (0, 0), "{name}");
            }
            Some(_) => {}
        }
    }

    #[test]
    fn every_fixture_matches_etherparse() {
        for (name, frame) in fixtures::ALL {
            check_against_etherparse(name, frame);
        }
    }

    #[test]
    fn specific_fields() {
        let m = PacketMeta::parse(fixtures::TCP4_SYN).unwrap();
        assert_eq!(m.l3_offset, 14);
        assert_eq!(m.l4_offset, 34);
        assert_eq!(m.protocol, IpProtocol::Tcp);
        assert_eq!(m.dst_port, 8080);
        assert_eq!(m.tcp_flags, TcpFlags::SYN);
        assert_eq!(m.vlan_id, None);

        let m = PacketMeta::parse(fixtures::UDP6_DSTOPTS).unwrap();
        assert_eq!(
            (m.protocol, m.l4_offset, m.dst_port),
            (IpProtocol::Udp, 14 + 48, 5353)
        );

        let m = PacketMeta::parse(fixtures::IPV6_FRAG_MIDDLE).unwrap();
        assert_eq!(
            (m.fragment, m.src_port, m.dst_port),
            (Fragment::NonFirst, 0, 0)
        );
        let first = PacketMeta::parse(fixtures::IPV6_FRAG_FIRST).unwrap();
        assert_eq!((first.fragment, first.dst_port), (Fragment::First, 9));
        assert_eq!(first.frag_ident, m.frag_ident);
        assert_ne!(first.frag_ident, 0);

        let m = PacketMeta::parse(fixtures::IPV4_FRAG_FIRST).unwrap();
        assert_eq!((m.fragment, m.dst_port), (Fragment::First, 9));

        let m = PacketMeta::parse(fixtures::ARP_REQUEST).unwrap();
        assert_eq!(m.arp_op, 1);
        assert_eq!(m.protocol, PacketMeta::NO_PROTOCOL);
        assert_eq!(m.dst_addr, IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)));

        let m = PacketMeta::parse(fixtures::NS).unwrap();
        assert_eq!(
            (m.protocol, m.icmp_type, m.ttl),
            (IpProtocol::Icmpv6, 135, 255)
        );
        let m = PacketMeta::parse(fixtures::ICMP4_FRAG_NEEDED).unwrap();
        assert_eq!(
            (m.protocol, m.icmp_type, m.icmp_code),
            (IpProtocol::Icmp, 3, 4)
        );
        let m = PacketMeta::parse(fixtures::UDP4_IPOPTS).unwrap();
        assert_eq!(m.l4_offset, 14 + 32);
    }

    fn tagged(frame: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
        let mut out = frame[..12].to_vec();
        for (tpid, tci) in tags {
            out.extend_from_slice(&tpid.to_be_bytes());
            out.extend_from_slice(&tci.to_be_bytes());
        }
        out.extend_from_slice(&frame[12..]);
        out
    }

    #[test]
    fn vlan_tags() {
        let one = tagged(fixtures::TCP6_SYN, &[(0x8100, 0x2064)]);
        let m = PacketMeta::parse(&one).unwrap();
        assert_eq!(
            (m.vlan_id, m.l3_offset, m.l4_offset),
            (Some(100), 18, 18 + 40)
        );
        check_against_etherparse("vlan", &one);
        let two = tagged(fixtures::UDP4, &[(0x88a8, 10), (0x8100, 20)]);
        let m = PacketMeta::parse(&two).unwrap();
        assert_eq!((m.vlan_id, m.l3_offset), (Some(10), 22));
        check_against_etherparse("qinq", &two);
        let three = tagged(fixtures::UDP4, &[(0x88a8, 10), (0x8100, 20), (0x8100, 30)]);
        assert_eq!(PacketMeta::parse(&three), Err(ParseError::TooManyVlanTags));
    }

    fn mutate(frame: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut v = frame.to_vec();
        f(&mut v);
        v
    }

    fn refill_ipv4(v: &mut [u8]) {
        let mut ip = crate::Ipv4Packet::new_unchecked(&mut v[14..]);
        ip.fill_checksum();
    }

    #[test]
    fn each_drop_reason() {
        use ParseError as E;
        let cases: Vec<(Vec<u8>, ParseError)> = vec![
            (fixtures::TCP4_SYN[..13].to_vec(), E::Truncated),
            (
                mutate(fixtures::TCP4_SYN, |v| {
                    v[12..14].copy_from_slice(&[0x88, 0xcc])
                }),
                E::UnsupportedEthertype,
            ),
            (fixtures::ARP_REQUEST[..41].to_vec(), E::TruncatedArp),
            (
                mutate(fixtures::ARP_REQUEST, |v| v[14 + 5] = 16),
                E::UnsupportedArp,
            ),
            (fixtures::TCP4_SYN[..33].to_vec(), E::TruncatedIp),
            (fixtures::TCP6_SYN[..53].to_vec(), E::TruncatedIp),
            (
                mutate(fixtures::TCP4_SYN, |v| v[14] = 0x65),
                E::BadIpVersion,
            ),
            (
                mutate(fixtures::TCP6_SYN, |v| v[14] = 0x45),
                E::BadIpVersion,
            ),
            (
                mutate(fixtures::TCP4_SYN, |v| {
                    v[14] = 0x44;
                    refill_ipv4(v)
                }),
                E::BadIpHeaderLength,
            ),
            (
                mutate(fixtures::TCP4_SYN, |v| {
                    v[16..18].copy_from_slice(&61u16.to_be_bytes());
                    refill_ipv4(v)
                }),
                E::BadTotalLength,
            ),
            (
                mutate(fixtures::TCP4_SYN, |v| {
                    v[16..18].copy_from_slice(&19u16.to_be_bytes());
                    refill_ipv4(v)
                }),
                E::BadTotalLength,
            ),
            (fixtures::TCP6_SYN[..93].to_vec(), E::BadTotalLength),
            (
                mutate(fixtures::TCP4_SYN, |v| v[24] ^= 0x01),
                E::BadIpChecksum,
            ),
            (
                mutate(fixtures::IPV4_FRAG_LAST, |v| {
                    v[20..22].copy_from_slice(&0x1fffu16.to_be_bytes());
                    refill_ipv4(v)
                }),
                E::BadFragment,
            ),
            (
                mutate(fixtures::UDP6_DSTOPTS, |v| v[14 + 41] = 9),
                E::BadExtensionHeader,
            ),
            (
                mutate(fixtures::TCP4_SYN, |v| {
                    v[16..18].copy_from_slice(&39u16.to_be_bytes());
                    refill_ipv4(v)
                }),
                E::TruncatedL4,
            ),
            (
                mutate(fixtures::TCP4_SYN, |v| v[34 + 12] = 0x40),
                E::BadTcpHeaderLength,
            ),
            (
                mutate(fixtures::TCP4_SYN, |v| v[34 + 12] = 0xf0),
                E::BadTcpHeaderLength,
            ),
            (
                mutate(fixtures::UDP4, |v| {
                    v[34 + 4..34 + 6].copy_from_slice(&200u16.to_be_bytes())
                }),
                E::BadUdpLength,
            ),
            (
                mutate(fixtures::UDP4, |v| {
                    v[34 + 4..34 + 6].copy_from_slice(&7u16.to_be_bytes())
                }),
                E::BadUdpLength,
            ),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for (i, (frame, want)) in cases.iter().enumerate() {
            assert_eq!(PacketMeta::parse(frame), Err(*want), "case {i}");
            seen.insert(want.as_str());
        }
        let vlan3 = tagged(fixtures::UDP4, &[(0x8100, 1), (0x8100, 2), (0x8100, 3)]);
        assert_eq!(PacketMeta::parse(&vlan3), Err(E::TooManyVlanTags));
        seen.insert(E::TooManyVlanTags.as_str());
        // ALL lists every variant: this match stops compiling when one is added.
        let position = |e: ParseError| match e {
            E::Truncated => 0,
            E::TooManyVlanTags => 1,
            E::UnsupportedEthertype => 2,
            E::TruncatedArp => 3,
            E::UnsupportedArp => 4,
            E::TruncatedIp => 5,
            E::BadIpVersion => 6,
            E::BadIpHeaderLength => 7,
            E::BadTotalLength => 8,
            E::BadIpChecksum => 9,
            E::BadFragment => 10,
            E::BadExtensionHeader => 11,
            E::TruncatedL4 => 12,
            E::BadTcpHeaderLength => 13,
            E::BadUdpLength => 14,
        };
        for (i, e) in ParseError::ALL.iter().enumerate() {
            assert_eq!(position(*e), i);
        }
        // Every variant is exercised and names are unique snake_case.
        assert_eq!(seen.len(), ParseError::ALL.len());
        for e in ParseError::ALL {
            assert!(
                e.as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            );
            assert_eq!(std::format!("{e}"), e.as_str());
        }
    }

    #[test]
    fn padded_frame_uses_ip_length() {
        let mut v = fixtures::TCP4_RST.to_vec();
        v.extend_from_slice(&[0u8; 6]);
        let m = PacketMeta::parse(&v).unwrap();
        assert_eq!(m.l3_offset + m.ip_len, fixtures::TCP4_RST.len());
        assert_eq!(m.l4_len(), 20);
    }

    /// The lean parses against the full one: `Some` exactly for the frames `parse` accepts
    /// with the flow shape, with the same values.
    fn check_flow_parse(frame: &[u8]) -> Result<(), TestCaseError> {
        let full = PacketMeta::parse(frame);
        let v4 = PacketMeta::parse_ipv4_flow(frame);
        let v6 = PacketMeta::parse_ipv6_flow(frame);
        let shape = full.as_ref().ok().filter(|m| {
            m.vlan_id.is_none()
                && m.fragment == Fragment::None
                && matches!(m.protocol, IpProtocol::Tcp | IpProtocol::Udp)
                && m.l4_offset
                    == m.l3_offset
                        + if m.ethertype == EtherType::Ipv4 {
                            20
                        } else {
                            40
                        }
        });
        let lean = match (v4, v6) {
            (Some(f), None) => Some((
                IpAddr::V4(f.src_addr),
                IpAddr::V4(f.dst_addr),
                f.src_port,
                f.dst_port,
                f.protocol,
                f.tcp_flags,
                f.l4_offset,
                f.ip_len,
            )),
            (None, Some(f)) => Some((
                IpAddr::V6(f.src_addr),
                IpAddr::V6(f.dst_addr),
                f.src_port,
                f.dst_port,
                f.protocol,
                f.tcp_flags,
                f.l4_offset,
                f.ip_len,
            )),
            (None, None) => None,
            (Some(_), Some(_)) => panic!("both families"),
        };
        let want = shape.map(|m| {
            (
                m.src_addr,
                m.dst_addr,
                m.src_port,
                m.dst_port,
                u8::from(m.protocol),
                m.tcp_flags.bits(),
                m.l4_offset,
                m.ip_len,
            )
        });
        prop_assert_eq!(lean, want, "full parse {:?}", full);
        if lean.is_some() {
            prop_assert_eq!(shape.map(|m| m.l3_offset), Some(FLOW_L3_OFFSET));
        }
        Ok(())
    }

    #[test]
    fn flow_parse_on_fixtures() {
        let mut hits = 0;
        for (name, frame) in fixtures::ALL {
            check_flow_parse(frame).unwrap_or_else(|e| panic!("{name}: {e}"));
            hits += usize::from(
                PacketMeta::parse_ipv4_flow(frame).is_some()
                    || PacketMeta::parse_ipv6_flow(frame).is_some(),
            );
        }
        // Both families and both protocols are among the fixtures.
        assert!(PacketMeta::parse_ipv4_flow(fixtures::TCP4_SYN).is_some());
        assert!(PacketMeta::parse_ipv4_flow(fixtures::UDP4).is_some());
        assert!(PacketMeta::parse_ipv6_flow(fixtures::TCP6_SYN).is_some());
        assert!(PacketMeta::parse_ipv4_flow(fixtures::UDP4_IPOPTS).is_none());
        assert!(PacketMeta::parse_ipv6_flow(fixtures::UDP6_DSTOPTS).is_none());
        assert!(hits >= 4);
    }

    proptest! {
        #[test]
        fn flow_parse_matches_parse_on_mutated_fixtures(
            which in 0usize..fixtures::ALL.len(),
            edits in proptest::collection::vec((0usize..80, any::<u8>()), 0..4),
            cut in any::<usize>(),
            fix_ipv4_checksum in any::<bool>(),
        ) {
            let mut v = fixtures::ALL[which].1.to_vec();
            for (at, byte) in edits {
                let len = v.len();
                v[at % len] = byte;
            }
            // Keep most mutated IPv4 headers checksum-valid so the later checks are reached.
            if fix_ipv4_checksum && v.len() >= 34 && v[12..14] == [0x08, 0x00] {
                let ihl = usize::from(v[14] & 0x0F) * 4;
                if ihl >= 20 && v.len() >= 14 + ihl {
                    v[24..26].fill(0);
                    let c = checksum::compute(&v[14..14 + ihl]);
                    v[24..26].copy_from_slice(&c.to_be_bytes());
                }
            }
            let len = v.len();
            if cut % 4 == 0 {
                v.truncate(cut % (len + 1));
            }
            check_flow_parse(&v)?;
        }

        #[test]
        fn header_checksum_shortcut_equals_fold(mut h in any::<[u8; 20]>(), valid in any::<bool>()) {
            h[0] = 0x45;
            if valid {
                h[10..12].fill(0);
                let c = checksum::compute(&h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
            }
            let want = checksum::fold(checksum::sum(&h)) == 0xFFFF;
            prop_assert_eq!(ipv4_header_checksum_ok(&h), want);
            if valid {
                prop_assert!(want);
            }
        }

        #[test]
        fn flow_parse_matches_parse_on_random_bytes(
            data in proptest::collection::vec(any::<u8>(), 0..120),
            v6 in any::<bool>(),
        ) {
            let mut v = data;
            if v.len() >= 15 {
                // Steer random bytes towards the flow shape.
                v[12..14].copy_from_slice(if v6 { &[0x86, 0xDD] } else { &[0x08, 0x00] });
                v[14] = if v6 { 0x60 | (v[14] & 0x0F) } else { 0x45 };
            }
            check_flow_parse(&v)?;
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = PacketMeta::parse(&data);
        }

        #[test]
        fn never_panics_on_mutated_fixtures(
            which in 0usize..fixtures::ALL.len(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in any::<usize>(),
        ) {
            let mut v = fixtures::ALL[which].1.to_vec();
            for (at, byte) in edits {
                let len = v.len();
                v[at % len] = byte;
            }
            let len = v.len();
            v.truncate(cut % (len + 1));
            if let Ok(m) = PacketMeta::parse(&v) {
                // Whatever parses is self-consistent.
                prop_assert!(m.l3_offset + m.ip_len <= v.len());
                prop_assert!(m.l4_offset <= m.l3_offset + m.ip_len);
            }
        }
    }
}
