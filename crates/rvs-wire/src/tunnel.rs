//! IP-in-IP encapsulation for the IPVS tunnel forwarding method (LVS-TUN), and
//! decapsulation for real servers.
//!
//! IPVS (`ip_vs_tunnel_xmit`) wraps the client's packet, unchanged, in an outer header from
//! the director to the real server: IPIP (protocol 4) for an inner IPv4 packet, protocol 41
//! for an inner IPv6 packet, in an outer IPv4 or IPv6 header. The outer header copies from
//! the inner one:
//!
//! * DSCP, and ECN with "Congestion Experienced" turned into ECT(0) (`INET_ECN_encapsulate`,
//!   RFC 6040 normal mode);
//! * TTL / hop limit;
//! * for an outer IPv4 header, DF from an inner IPv4 header when PMTU discovery is on
//!   (`copy_df`); an inner IPv6 packet gives DF = 0, as in IPVS.
//!
//! All functions work on a [`PacketBuf`] holding an Ethernet frame: the outer header is
//! inserted (or removed) right after the L2 header, which moves towards the front so the
//! payload is not copied. `l3_offset` is the L2 header length (14, plus 4 per VLAN tag; see
//! [`crate::vlan::l3_ethertype`]); the EtherType just before it is updated. With
//! `l3_offset` = 0 the buffer holds a bare IP packet and no EtherType is written.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::buf::PacketBuf;
use crate::checksum;
use crate::ethernet::EtherType;
use crate::field::{get_u16, set_u16};
use crate::ip::{Fragment, IpProtocol, IpVersion};
use crate::ipv4::{self, ECN_CE, ECN_ECT0, Ipv4Packet, Ipv4Repr};
use crate::ipv6::{self, Ipv6Packet, Ipv6Repr};
use crate::{Error, Result};

/// Bytes an outer IPv4 header adds.
pub const IPV4_OVERHEAD: usize = ipv4::HEADER_LEN;
/// Bytes an outer IPv6 header adds.
pub const IPV6_OVERHEAD: usize = ipv6::HEADER_LEN;

/// Parameters of an outer IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Tunnel {
    /// Outer source (the director's address).
    pub src_addr: Ipv4Addr,
    /// Outer destination (the real server).
    pub dst_addr: Ipv4Addr,
    /// Identification of the outer header (the caller keeps the counter).
    pub ident: u16,
    /// Copy DF from an inner IPv4 header (IPVS does when `pmtu_disc` is on).
    pub copy_df: bool,
}

/// Parameters of an outer IPv6 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Tunnel {
    /// Outer source (the director's address).
    pub src_addr: Ipv6Addr,
    /// Outer destination (the real server).
    pub dst_addr: Ipv6Addr,
    /// Flow label of the outer header (IPVS uses 0).
    pub flow_label: u32,
}

/// The outer DSCP/ECN byte for an inner DSCP/ECN byte: DSCP copied, ECN copied except that
/// CE becomes ECT(0) (RFC 6040 §4.1 normal mode; Linux `INET_ECN_encapsulate`).
#[inline]
pub fn ecn_encapsulate(inner_dsfield: u8) -> u8 {
    let ecn = inner_dsfield & 0x03;
    (inner_dsfield & !0x03) | if ecn == ECN_CE { ECN_ECT0 } else { ecn }
}

/// What the encapsulation needs to know about the inner packet.
struct Inner {
    version: IpVersion,
    len: usize,
    dsfield: u8,
    hop_limit: u8,
    dont_frag: bool,
}

#[inline]
fn inner_info(ip: &[u8]) -> Result<Inner> {
    match ip.first().and_then(|b| IpVersion::of_first_byte(*b)) {
        Some(IpVersion::Ipv4) => {
            let p = Ipv4Packet::new_checked(ip)?;
            Ok(Inner {
                version: IpVersion::Ipv4,
                len: usize::from(p.total_len()),
                dsfield: p.dscp_ecn(),
                hop_limit: p.ttl(),
                dont_frag: p.dont_frag(),
            })
        }
        Some(IpVersion::Ipv6) => {
            let p = Ipv6Packet::new_checked(ip)?;
            Ok(Inner {
                version: IpVersion::Ipv6,
                len: p.total_len(),
                dsfield: p.traffic_class(),
                hop_limit: p.hop_limit(),
                dont_frag: false,
            })
        }
        None if ip.is_empty() => Err(Error::Truncated),
        None => Err(Error::Malformed),
    }
}

#[inline]
fn inner_protocol(version: IpVersion) -> IpProtocol {
    match version {
        IpVersion::Ipv4 => IpProtocol::Ipip,
        IpVersion::Ipv6 => IpProtocol::Ipv6,
    }
}

#[inline]
fn ethertype_of(version: IpVersion) -> EtherType {
    match version {
        IpVersion::Ipv4 => EtherType::Ipv4,
        IpVersion::Ipv6 => EtherType::Ipv6,
    }
}

#[inline(always)]
fn set_ethertype(buf: &mut PacketBuf<'_>, l3_offset: usize, version: IpVersion) {
    if l3_offset >= 2 {
        set_u16(buf.data_mut(), l3_offset - 2, ethertype_of(version).into());
    }
}

#[inline]
fn l3_slice<'b>(buf: &'b PacketBuf<'_>, l3_offset: usize) -> Result<&'b [u8]> {
    buf.data().get(l3_offset..).ok_or(Error::Truncated)
}

/// Wraps the IP packet at `l3_offset` in an outer IPv4 header (IPIP for an inner IPv4
/// packet, protocol 41 for inner IPv6). Ethernet padding after the inner packet is dropped.
///
/// Errors (buffer unchanged): [`Error::Truncated`]/[`Error::Malformed`] if there is no valid
/// inner IP header, [`Error::NoSpace`] with less than 20 bytes of headroom,
/// [`Error::Unsupported`] if the result would exceed 65535 bytes. The caller checks the
/// path MTU first (IPVS sends "fragmentation needed" instead).
#[inline]
pub fn encap_ipv4(buf: &mut PacketBuf<'_>, l3_offset: usize, tunnel: &Ipv4Tunnel) -> Result<()> {
    let inner = inner_info(l3_slice(buf, l3_offset)?)?;
    if inner.len + IPV4_OVERHEAD > usize::from(u16::MAX) {
        return Err(Error::Unsupported);
    }
    if buf.headroom() < IPV4_OVERHEAD {
        return Err(Error::NoSpace);
    }
    buf.set_len(l3_offset + inner.len)?;
    buf.insert_after(l3_offset, IPV4_OVERHEAD)?;
    let header = Ipv4Repr {
        src_addr: tunnel.src_addr,
        dst_addr: tunnel.dst_addr,
        next_header: inner_protocol(inner.version),
        payload_len: inner.len,
        hop_limit: inner.hop_limit,
        dscp_ecn: ecn_encapsulate(inner.dsfield),
        ident: tunnel.ident,
        dont_frag: tunnel.copy_df && inner.dont_frag,
    }
    .header();
    buf.data_mut()[l3_offset..l3_offset + IPV4_OVERHEAD].copy_from_slice(&header);
    set_ethertype(buf, l3_offset, IpVersion::Ipv4);
    Ok(())
}

/// Wraps the IP packet at `l3_offset` in an outer IPv6 header (next header 41 for inner
/// IPv6, 4 for inner IPv4). Errors as for [`encap_ipv4`] (40 bytes of headroom needed).
#[inline]
pub fn encap_ipv6(buf: &mut PacketBuf<'_>, l3_offset: usize, tunnel: &Ipv6Tunnel) -> Result<()> {
    let inner = inner_info(l3_slice(buf, l3_offset)?)?;
    if inner.len > usize::from(u16::MAX) {
        return Err(Error::Unsupported);
    }
    if buf.headroom() < IPV6_OVERHEAD {
        return Err(Error::NoSpace);
    }
    buf.set_len(l3_offset + inner.len)?;
    buf.insert_after(l3_offset, IPV6_OVERHEAD)?;
    let repr = Ipv6Repr {
        src_addr: tunnel.src_addr,
        dst_addr: tunnel.dst_addr,
        next_header: inner_protocol(inner.version),
        payload_len: inner.len,
        hop_limit: inner.hop_limit,
        traffic_class: ecn_encapsulate(inner.dsfield),
        flow_label: tunnel.flow_label,
    };
    let data = buf.data_mut();
    repr.emit(&mut Ipv6Packet::new_unchecked(
        &mut data[l3_offset..l3_offset + IPV6_OVERHEAD],
    ));
    set_ethertype(buf, l3_offset, IpVersion::Ipv6);
    Ok(())
}

/// Strips the outer IPv4 or IPv6 header at `l3_offset` of an IPIP / IPv6-in-IP packet and
/// returns the inner packet's version. What a TUN-mode real server does.
///
/// ECN follows RFC 6040 §4.2: an outer CE marks an ECN-capable inner packet CE (the inner
/// IPv4 checksum is updated); outer CE over a Not-ECT inner packet is an error, as the RFC
/// says to drop it. Trailing padding is dropped.
///
/// Errors (buffer unchanged): [`Error::Truncated`], [`Error::Malformed`] (bad outer or inner
/// header, version mismatch, the CE case above), [`Error::Checksum`] (outer IPv4 header),
/// [`Error::Unsupported`] (not IP-in-IP, or a fragmented outer packet).
pub fn decap(buf: &mut PacketBuf<'_>, l3_offset: usize) -> Result<IpVersion> {
    let outer = l3_slice(buf, l3_offset)?;
    let (outer_len, header_len, protocol, outer_ecn) =
        match outer.first().and_then(|b| IpVersion::of_first_byte(*b)) {
            Some(IpVersion::Ipv4) => {
                let p = Ipv4Packet::new_checked(outer)?;
                if !p.verify_checksum() {
                    return Err(Error::Checksum);
                }
                if p.fragment() != Fragment::None {
                    return Err(Error::Unsupported);
                }
                (
                    usize::from(p.total_len()),
                    usize::from(p.header_len()),
                    p.next_header(),
                    p.ecn(),
                )
            }
            Some(IpVersion::Ipv6) => {
                let p = Ipv6Packet::new_checked(outer)?;
                let l4 = ipv6::ipv6_upper_layer(&p)?;
                if l4.fragment.is_some_and(|f| f.offset != 0 || f.more_frags) {
                    return Err(Error::Unsupported);
                }
                (p.total_len(), l4.offset, l4.next_header, p.ecn())
            }
            None if outer.is_empty() => return Err(Error::Truncated),
            None => return Err(Error::Malformed),
        };
    let version = match protocol {
        IpProtocol::Ipip => IpVersion::Ipv4,
        IpProtocol::Ipv6 => IpVersion::Ipv6,
        _ => return Err(Error::Unsupported),
    };
    let inner_bytes = &outer[header_len..outer_len];
    let inner = inner_info(inner_bytes)?;
    if inner.version != version {
        return Err(Error::Malformed);
    }
    if inner.len > inner_bytes.len() {
        return Err(Error::Truncated);
    }
    let inner_ecn = inner.dsfield & 0x03;
    let mark_ce = outer_ecn == ECN_CE && inner_ecn != ECN_CE;
    if mark_ce && inner_ecn == 0 {
        return Err(Error::Malformed);
    }

    buf.remove_after(l3_offset, header_len)?;
    buf.set_len(l3_offset + inner.len)?;
    if mark_ce {
        let ip = &mut buf.data_mut()[l3_offset..];
        match version {
            IpVersion::Ipv4 => {
                let old = get_u16(ip, 0);
                ip[1] |= ECN_CE;
                let new = get_u16(ip, 0);
                let csum = checksum::update16(get_u16(ip, 10), old, new);
                set_u16(ip, 10, csum);
            }
            IpVersion::Ipv6 => {
                // ECN is bits 4..6 of byte 1 (the low bits of the traffic class).
                ip[1] |= ECN_CE << 4;
            }
        }
    }
    set_ethertype(buf, l3_offset, version);
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use std::vec::Vec;

    const HEADROOM: usize = 256;

    fn framed(frame: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; HEADROOM];
        v.extend_from_slice(frame);
        v.extend_from_slice(&[0u8; 64]);
        v
    }

    fn v4_tunnel() -> Ipv4Tunnel {
        Ipv4Tunnel {
            src_addr: Ipv4Addr::new(198, 18, 0, 9),
            dst_addr: Ipv4Addr::new(198, 18, 1, 10),
            ident: 0x1234,
            copy_df: true,
        }
    }

    fn v6_tunnel() -> Ipv6Tunnel {
        Ipv6Tunnel {
            src_addr: "2001:db8::9".parse().unwrap(),
            dst_addr: "2001:db8:1::10".parse().unwrap(),
            flow_label: 0,
        }
    }

    #[test]
    fn ipip_matches_etherparse_view() {
        for frame in [
            fixtures::TCP4_SYN,
            fixtures::UDP4,
            fixtures::TCP6_SYN,
            fixtures::UDP6,
        ] {
            let mut raw = framed(frame);
            let mut buf = PacketBuf::new(&mut raw, HEADROOM, frame.len()).unwrap();
            encap_ipv4(&mut buf, 14, &v4_tunnel()).unwrap();
            let out = buf.data();
            assert_eq!(out.len(), frame.len() + 20);
            assert_eq!(&out[..12], &frame[..12], "MACs stay in front");
            assert_eq!(&out[34..], &frame[14..], "inner packet untouched");
            // Oracle: etherparse parses the outer header and sees the inner packet.
            let o = etherparse::PacketHeaders::from_ethernet_slice(out).unwrap();
            let Some(etherparse::NetHeaders::Ipv4(h, _)) = o.net else {
                panic!("no outer v4")
            };
            assert_eq!(h.source, [198, 18, 0, 9]);
            assert_eq!(h.destination, [198, 18, 1, 10]);
            assert_eq!(h.identification, 0x1234);
            assert_eq!(h.header_checksum, h.calc_header_checksum());
            let inner_v4 = frame[12..14] == [8, 0];
            assert_eq!(h.protocol.0, if inner_v4 { 4 } else { 41 });
            let inner = &frame[14..];
            if inner_v4 {
                let ip = Ipv4Packet::new_checked(inner).unwrap();
                assert_eq!(h.time_to_live, ip.ttl());
                assert_eq!(h.dont_fragment, ip.dont_frag());
                assert_eq!(h.total_len, ip.total_len() + 20);
            } else {
                let ip = Ipv6Packet::new_checked(inner).unwrap();
                assert_eq!(h.time_to_live, ip.hop_limit());
                assert!(!h.dont_fragment);
            }
            // Decap restores the original frame exactly.
            assert_eq!(
                decap(&mut buf, 14).unwrap(),
                if inner_v4 {
                    IpVersion::Ipv4
                } else {
                    IpVersion::Ipv6
                }
            );
            assert_eq!(buf.data(), frame);
            assert_eq!(buf.head(), HEADROOM);
        }
    }

    #[test]
    fn ip6ip6_and_4in6() {
        for frame in [fixtures::TCP6_PSH, fixtures::TCP4_PSH] {
            let mut raw = framed(frame);
            let mut buf = PacketBuf::new(&mut raw, HEADROOM, frame.len()).unwrap();
            encap_ipv6(&mut buf, 14, &v6_tunnel()).unwrap();
            let out = buf.data();
            assert_eq!(&out[12..14], &[0x86, 0xdd]);
            let h = etherparse::Ipv6Header::from_slice(&out[14..]).unwrap().0;
            let inner_v4 = frame[12..14] == [8, 0];
            assert_eq!(h.next_header.0, if inner_v4 { 4 } else { 41 });
            assert_eq!(usize::from(h.payload_length), frame.len() - 14);
            assert_eq!(h.source, v6_tunnel().src_addr.octets());
            assert!(
                etherparse::SlicedPacket::from_ethernet(buf.data())
                    .unwrap()
                    .net
                    .is_some()
            );
            decap(&mut buf, 14).unwrap();
            assert_eq!(buf.data(), frame);
        }
    }

    #[test]
    fn ecn_and_df_rules() {
        assert_eq!(ecn_encapsulate(0b1011_1011), 0b1011_1010); // EF + CE -> EF + ECT(0)
        assert_eq!(ecn_encapsulate(0b0000_0001), 0b0000_0001); // ECT(1) kept
        assert_eq!(ecn_encapsulate(0x28), 0x28);

        let mut frame = fixtures::TCP4_SYN.to_vec();
        {
            let mut ip = Ipv4Packet::new_checked(&mut frame[14..]).unwrap();
            ip.set_dscp_ecn(0xBB);
            ip.fill_checksum();
        }
        let mut raw = framed(&frame);
        let mut buf = PacketBuf::new(&mut raw, HEADROOM, frame.len()).unwrap();
        let tunnel = Ipv4Tunnel {
            copy_df: false,
            ..v4_tunnel()
        };
        encap_ipv4(&mut buf, 14, &tunnel).unwrap();
        let outer = Ipv4Packet::new_checked(&buf.data()[14..]).unwrap();
        assert_eq!(outer.dscp_ecn(), 0xBA);
        assert!(!outer.dont_frag(), "DF only copied when asked");
    }

    #[test]
    fn decap_propagates_ce() {
        let frame = fixtures::TCP4_SYN; // inner ECN Not-ECT
        let mut ect = frame.to_vec();
        {
            let mut ip = Ipv4Packet::new_checked(&mut ect[14..]).unwrap();
            ip.set_dscp_ecn(ECN_ECT0);
            ip.fill_checksum();
        }
        for (inner, expect) in [(&ect[..], Ok(ECN_CE)), (frame, Err(Error::Malformed))] {
            let mut raw = framed(inner);
            let mut buf = PacketBuf::new(&mut raw, HEADROOM, inner.len()).unwrap();
            encap_ipv4(&mut buf, 14, &v4_tunnel()).unwrap();
            {
                let mut outer = Ipv4Packet::new_checked(&mut buf.data_mut()[14..]).unwrap();
                outer.set_dscp_ecn(ECN_CE);
                outer.fill_checksum();
            }
            let before: Vec<u8> = buf.data().to_vec();
            match decap(&mut buf, 14) {
                Ok(_) => {
                    let ip = Ipv4Packet::new_checked(&buf.data()[14..]).unwrap();
                    assert_eq!(Ok(ip.ecn()), expect);
                    assert!(ip.verify_checksum());
                }
                Err(e) => {
                    assert_eq!(Err(e), expect);
                    assert_eq!(buf.data(), &before[..], "unchanged on error");
                }
            }
        }
    }

    #[test]
    fn vlan_tagged_and_padded() {
        // A tagged frame with Ethernet padding: the tag stays, padding goes.
        let mut frame = fixtures::TCP4_RST[..12].to_vec();
        frame.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        frame.extend_from_slice(&fixtures::TCP4_RST[12..]);
        frame.extend_from_slice(&[0u8; 6]);
        let mut raw = framed(&frame);
        let mut buf = PacketBuf::new(&mut raw, HEADROOM, frame.len()).unwrap();
        encap_ipv4(&mut buf, 18, &v4_tunnel()).unwrap();
        assert_eq!(&buf.data()[..16], &frame[..16]);
        assert_eq!(&buf.data()[16..18], &[0x08, 0x00]);
        assert_eq!(buf.len(), frame.len() - 6 + 20);
        let o = etherparse::SlicedPacket::from_ethernet(buf.data()).unwrap();
        assert_eq!(o.link_exts.len(), 1);
    }

    #[test]
    fn errors_leave_buffer_alone() {
        let frame = fixtures::TCP4_SYN;
        let mut raw = framed(frame);
        let mut buf = PacketBuf::new(&mut raw[HEADROOM - 10..], 10, frame.len()).unwrap();
        assert_eq!(encap_ipv4(&mut buf, 14, &v4_tunnel()), Err(Error::NoSpace));
        assert_eq!(buf.data(), frame);
        assert_eq!(decap(&mut buf, 14), Err(Error::Unsupported));
        assert_eq!(
            encap_ipv6(&mut buf, 100, &v6_tunnel()),
            Err(Error::Truncated)
        );
        assert_eq!(
            encap_ipv6(&mut buf, frame.len() + 1, &v6_tunnel()),
            Err(Error::Truncated)
        );
        let arp = fixtures::ARP_REQUEST;
        let mut raw = framed(arp);
        let mut buf = PacketBuf::new(&mut raw, HEADROOM, arp.len()).unwrap();
        assert_eq!(
            encap_ipv4(&mut buf, 14, &v4_tunnel()),
            Err(Error::Malformed)
        );
        assert_eq!(buf.data(), arp);
    }
}
