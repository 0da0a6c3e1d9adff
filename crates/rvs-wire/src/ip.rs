//! Types shared by IPv4 and IPv6: protocol numbers, versions, fragment status, and the
//! "invoking packet" quoted inside ICMP errors.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::field::{get_array, get_u16};
use crate::{Error, Result};

enum_with_unknown! {
    /// IP protocol / IPv6 next header number (IANA "Assigned Internet Protocol Numbers").
    pub enum IpProtocol(u8) {
        /// IPv6 Hop-by-Hop Options (0).
        HopByHop = 0,
        /// ICMP (1).
        Icmp = 1,
        /// IPv4 encapsulation, IPIP (4).
        Ipip = 4,
        /// TCP (6).
        Tcp = 6,
        /// UDP (17).
        Udp = 17,
        /// IPv6 encapsulation (41).
        Ipv6 = 41,
        /// IPv6 Routing header (43).
        Ipv6Route = 43,
        /// IPv6 Fragment header (44).
        Ipv6Frag = 44,
        /// GRE (47).
        Gre = 47,
        /// IPsec Encapsulating Security Payload (50).
        Esp = 50,
        /// IPsec Authentication Header (51).
        Ah = 51,
        /// ICMPv6 (58).
        Icmpv6 = 58,
        /// IPv6 No Next Header (59).
        Ipv6NoNxt = 59,
        /// IPv6 Destination Options (60).
        Ipv6Opts = 60,
        /// SCTP (132).
        Sctp = 132,
    }
}

impl IpProtocol {
    /// Whether the first four bytes of this protocol's header are source and destination
    /// ports (TCP, UDP, SCTP).
    pub fn has_ports(self) -> bool {
        matches!(self, IpProtocol::Tcp | IpProtocol::Udp | IpProtocol::Sctp)
    }
}

/// IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpVersion {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl IpVersion {
    /// Reads the version nibble of an IP header's first byte.
    pub fn of_first_byte(byte: u8) -> Option<IpVersion> {
        match byte >> 4 {
            4 => Some(IpVersion::Ipv4),
            6 => Some(IpVersion::Ipv6),
            _ => None,
        }
    }
}

/// Where a packet sits in a fragmented datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Fragment {
    /// A whole datagram (no fragmentation; an IPv6 atomic fragment also counts as whole).
    #[default]
    None,
    /// The first fragment (offset 0, more fragments follow): carries the L4 header.
    First,
    /// A later fragment (offset > 0): no L4 header.
    NonFirst,
}

impl Fragment {
    /// Classifies an offset (in bytes) and a more-fragments flag.
    pub fn classify(offset: u16, more_frags: bool) -> Fragment {
        match (offset, more_frags) {
            (0, false) => Fragment::None,
            (0, true) => Fragment::First,
            _ => Fragment::NonFirst,
        }
    }
}

/// The head of the datagram an ICMP error quotes (RFC 792 "internet header + 64 bits of
/// original data datagram", RFC 4443 "as much of invoking packet as possible").
///
/// IPVS matches such errors to a connection by protocol, addresses and ports of the quoted
/// packet, which travelled in the opposite direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InvokingPacket {
    /// Source address of the quoted packet.
    pub src_addr: IpAddr,
    /// Destination address of the quoted packet.
    pub dst_addr: IpAddr,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub protocol: IpProtocol,
    /// Offset of the upper-layer header within the quoted bytes.
    pub l4_offset: usize,
    /// Fragment status of the quoted packet.
    pub fragment: Fragment,
    /// Source and destination ports, when the protocol has them, the quoted packet is not a
    /// later fragment and at least four bytes of its L4 header were quoted.
    pub ports: Option<(u16, u16)>,
}

impl InvokingPacket {
    /// Parses the quoted IPv4 datagram of an ICMPv4 error (the bytes after its 8-byte header).
    ///
    /// The quoted datagram is usually truncated, so its total length is not checked against
    /// the data; its header must be complete. Errors: [`Error::Truncated`],
    /// [`Error::Malformed`] (version or IHL).
    pub fn parse_ipv4(data: &[u8]) -> Result<InvokingPacket> {
        if data.len() < crate::ipv4::HEADER_LEN {
            return Err(Error::Truncated);
        }
        if data[0] >> 4 != 4 {
            return Err(Error::Malformed);
        }
        let ihl = usize::from(data[0] & 0x0F) * 4;
        if ihl < crate::ipv4::HEADER_LEN {
            return Err(Error::Malformed);
        }
        if data.len() < ihl {
            return Err(Error::Truncated);
        }
        let flags_frag = get_u16(data, 6);
        let fragment = Fragment::classify((flags_frag & 0x1FFF) * 8, flags_frag & 0x2000 != 0);
        let protocol = IpProtocol::from(data[9]);
        Ok(InvokingPacket {
            src_addr: IpAddr::V4(Ipv4Addr::from(get_array::<4>(data, 12))),
            dst_addr: IpAddr::V4(Ipv4Addr::from(get_array::<4>(data, 16))),
            protocol,
            l4_offset: ihl,
            fragment,
            ports: ports(data, ihl, protocol, fragment),
        })
    }

    /// Parses the quoted IPv6 packet of an ICMPv6 error, walking its extension headers as far
    /// as they were quoted.
    ///
    /// Errors: [`Error::Truncated`] (fixed header or an extension header cut off),
    /// [`Error::Malformed`], [`Error::Unsupported`] (see [`crate::ipv6_upper_layer`]).
    pub fn parse_ipv6(data: &[u8]) -> Result<InvokingPacket> {
        if data.len() < crate::ipv6::HEADER_LEN {
            return Err(Error::Truncated);
        }
        if data[0] >> 4 != 6 {
            return Err(Error::Malformed);
        }
        let l4 = crate::ipv6::walk_extension_headers(data, data.len())?;
        let fragment = l4.fragment.map_or(Fragment::None, |f| {
            Fragment::classify(f.offset, f.more_frags)
        });
        Ok(InvokingPacket {
            src_addr: IpAddr::V6(Ipv6Addr::from(get_array::<16>(data, 8))),
            dst_addr: IpAddr::V6(Ipv6Addr::from(get_array::<16>(data, 24))),
            protocol: l4.next_header,
            l4_offset: l4.offset,
            fragment,
            ports: ports(data, l4.offset, l4.next_header, fragment),
        })
    }
}

fn ports(data: &[u8], at: usize, protocol: IpProtocol, fragment: Fragment) -> Option<(u16, u16)> {
    if !protocol.has_ports() || fragment == Fragment::NonFirst || data.len() < at + 4 {
        return None;
    }
    Some((get_u16(data, at), get_u16(data, at + 2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_numbers() {
        for (p, n) in [
            (IpProtocol::HopByHop, 0u8),
            (IpProtocol::Icmp, 1),
            (IpProtocol::Ipip, 4),
            (IpProtocol::Tcp, 6),
            (IpProtocol::Udp, 17),
            (IpProtocol::Ipv6, 41),
            (IpProtocol::Ipv6Route, 43),
            (IpProtocol::Ipv6Frag, 44),
            (IpProtocol::Gre, 47),
            (IpProtocol::Esp, 50),
            (IpProtocol::Ah, 51),
            (IpProtocol::Icmpv6, 58),
            (IpProtocol::Ipv6NoNxt, 59),
            (IpProtocol::Ipv6Opts, 60),
            (IpProtocol::Sctp, 132),
        ] {
            assert_eq!(u8::from(p), n);
            assert_eq!(IpProtocol::from(n), p);
        }
        // Cross-check some numbers against etherparse's constants.
        use etherparse::IpNumber as E;
        for (p, e) in [
            (IpProtocol::HopByHop, E::IPV6_HEADER_HOP_BY_HOP),
            (IpProtocol::Icmp, E::ICMP),
            (IpProtocol::Ipip, E::IPV4),
            (IpProtocol::Tcp, E::TCP),
            (IpProtocol::Udp, E::UDP),
            (IpProtocol::Ipv6, E::IPV6),
            (IpProtocol::Ipv6Route, E::IPV6_ROUTE_HEADER),
            (IpProtocol::Ipv6Frag, E::IPV6_FRAGMENTATION_HEADER),
            (IpProtocol::Gre, E::GRE),
            (IpProtocol::Esp, E::ENCAPSULATING_SECURITY_PAYLOAD),
            (IpProtocol::Ah, E::AUTHENTICATION_HEADER),
            (IpProtocol::Icmpv6, E::IPV6_ICMP),
            (IpProtocol::Ipv6NoNxt, E::IPV6_NO_NEXT_HEADER),
            (IpProtocol::Ipv6Opts, E::IPV6_DESTINATION_OPTIONS),
            (IpProtocol::Sctp, E::SCTP),
        ] {
            assert_eq!(u8::from(p), e.0, "{p:?}");
        }
        assert_eq!(IpProtocol::from(200), IpProtocol::Unknown(200));
        assert!(IpProtocol::Sctp.has_ports() && !IpProtocol::Icmp.has_ports());
    }

    #[test]
    fn fragment_classes() {
        assert_eq!(Fragment::classify(0, false), Fragment::None);
        assert_eq!(Fragment::classify(0, true), Fragment::First);
        assert_eq!(Fragment::classify(1480, true), Fragment::NonFirst);
        assert_eq!(Fragment::classify(2960, false), Fragment::NonFirst);
        assert_eq!(IpVersion::of_first_byte(0x45), Some(IpVersion::Ipv4));
        assert_eq!(IpVersion::of_first_byte(0x60), Some(IpVersion::Ipv6));
        assert_eq!(IpVersion::of_first_byte(0x50), None);
    }
}
