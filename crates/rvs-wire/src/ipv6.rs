//! IPv6 (RFC 8200) and its extension-header chain.

use core::net::Ipv6Addr;

use crate::field::{Field, get_array, get_u16, get_u32, set_u16};
use crate::ip::IpProtocol;
use crate::{Error, Result};

mod field {
    use super::Field;
    pub(super) const VER_TC_FLOW: Field = 0..4;
    pub(super) const LENGTH: Field = 4..6;
    pub(super) const NXT_HDR: usize = 6;
    pub(super) const HOP_LIMIT: usize = 7;
    pub(super) const SRC_ADDR: Field = 8..24;
    pub(super) const DST_ADDR: Field = 24..40;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// Most extension headers [`ipv6_upper_layer`] walks before giving up.
pub const MAX_EXT_HEADERS: usize = 8;

/// Length of an IPv6 Fragment header.
pub const FRAG_HEADER_LEN: usize = 8;

/// A view of an IPv6 packet.
///
/// After [`check_len`](Self::check_len) the buffer holds the 40-byte header and
/// `payload_len` bytes of payload; it may be longer (Ethernet padding). Jumbograms
/// (`payload_len` 0 with a Jumbo Payload option) are not supported: their payload reads as
/// empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a buffer without checks; getters may panic if it is shorter than 40 bytes.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Ipv6Packet<T> {
        Ipv6Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Ipv6Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// [`Error::Truncated`] if the buffer is shorter than 40 + `payload_len` bytes. The
    /// version is not checked here.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < HEADER_LEN + usize::from(self.payload_len()) {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version nibble (6 for a valid packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Traffic class (DSCP << 2 | ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        let b = self.buffer.as_ref();
        (b[0] << 4) | (b[1] >> 4)
    }

    /// Differentiated services code point.
    pub fn dscp(&self) -> u8 {
        self.traffic_class() >> 2
    }

    /// Explicit congestion notification codepoint.
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 0x03
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::VER_TC_FLOW.start) & 0x000F_FFFF
    }

    /// Payload length (everything after the fixed header, extension headers included).
    #[inline]
    pub fn payload_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// Total datagram length: 40 + `payload_len`.
    #[inline]
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }

    /// Next header after the fixed header (maybe an extension header).
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::NXT_HDR])
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(get_array::<16>(self.buffer.as_ref(), field::SRC_ADDR.start))
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(get_array::<16>(self.buffer.as_ref(), field::DST_ADDR.start))
    }

    /// The payload (extension headers and upper layer), bounded by `payload_len`.
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        let end = self.total_len().min(data.len());
        &data[HEADER_LEN.min(end)..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the version nibble.
    pub fn set_version(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[0];
        *b = (*b & 0x0F) | (value << 4);
    }

    /// Sets the traffic class.
    pub fn set_traffic_class(&mut self, value: u8) {
        let b = self.buffer.as_mut();
        b[0] = (b[0] & 0xF0) | (value >> 4);
        b[1] = (b[1] & 0x0F) | (value << 4);
    }

    /// Sets the flow label (low 20 bits of `value`).
    pub fn set_flow_label(&mut self, value: u32) {
        let b = self.buffer.as_mut();
        b[1] = (b[1] & 0xF0) | ((value >> 16) as u8 & 0x0F);
        set_u16(b, 2, value as u16);
    }

    /// Sets the payload length.
    pub fn set_payload_len(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH.start, value);
    }

    /// Sets the next header.
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::NXT_HDR] = value.into();
    }

    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value;
    }

    /// Sets the source address (upper-layer checksums not updated).
    #[inline]
    pub fn set_src_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }

    /// Sets the destination address (upper-layer checksums not updated).
    #[inline]
    pub fn set_dst_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }

    /// Forwarding step: if the hop limit is above 1, decrements it and returns the new value;
    /// otherwise returns `None` and leaves the packet alone (the caller drops it and may send
    /// ICMPv6 time exceeded). IPv6 has no header checksum.
    #[inline]
    pub fn decrement_hop_limit(&mut self) -> Option<u8> {
        let hops = self.hop_limit();
        if hops <= 1 {
            return None;
        }
        self.set_hop_limit(hops - 1);
        Some(hops - 1)
    }

    /// The payload (bounded by `payload_len`), mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        let data = self.buffer.as_mut();
        let end = end.min(data.len());
        &mut data[HEADER_LEN.min(end)..end]
    }
}

/// The fields of a fixed IPv6 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// Next header.
    pub next_header: IpProtocol,
    /// Payload length in bytes.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Parses a checked packet; [`Error::Malformed`] for a version other than 6.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Result<Ipv6Repr> {
        packet.check_len()?;
        if packet.version() != 6 {
            return Err(Error::Malformed);
        }
        Ok(Ipv6Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        })
    }

    /// Bytes of header [`emit`](Self::emit) writes: 40.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the fixed header. The payload is not touched.
    ///
    /// # Panics
    /// If the buffer is shorter than 40 bytes. `payload_len` above 65535 is truncated.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) {
        packet.buffer.as_mut()[..4].copy_from_slice(&[0x60, 0, 0, 0]);
        packet.set_traffic_class(self.traffic_class);
        packet.set_flow_label(self.flow_label);
        packet.set_payload_len(self.payload_len as u16);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

/// What a Fragment header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6FragInfo {
    /// Fragment offset in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more_frags: bool,
    /// Identification.
    pub ident: u32,
}

/// Where the upper-layer header of an IPv6 packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6L4 {
    /// The last next-header value: the upper-layer protocol, or `Ah`, `Esp`, `Ipv6NoNxt`
    /// where the walk stops.
    pub next_header: IpProtocol,
    /// Offset of that header from the start of the IPv6 header.
    pub offset: usize,
    /// Fragment header contents, if there was one. For a non-first fragment
    /// (`offset != 0`) the walk stops after the Fragment header: the bytes at
    /// [`Ipv6L4::offset`] are then fragment data, not a header.
    pub fragment: Option<Ipv6FragInfo>,
}

/// Walks the extension headers (Hop-by-Hop, Routing, Destination Options, Fragment) of a
/// checked packet to the upper-layer header.
///
/// Stops at any other next-header value (including AH, ESP and No Next Header), after a
/// non-first Fragment header, or with an error: [`Error::Truncated`] if a header runs past
/// `payload_len`, [`Error::Malformed`] for a Hop-by-Hop header that is not first,
/// [`Error::Unsupported`] after [`MAX_EXT_HEADERS`] headers.
pub fn ipv6_upper_layer<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Result<Ipv6L4> {
    let data = packet.buffer.as_ref();
    walk_extension_headers(data, packet.total_len().min(data.len()))
}

/// The walk of [`ipv6_upper_layer`] over `data[..end]`, where `data` starts with a fixed IPv6
/// header of at least 40 bytes (checked by the caller). Also used for the truncated packets
/// quoted in ICMPv6 errors.
pub(crate) fn walk_extension_headers(data: &[u8], end: usize) -> Result<Ipv6L4> {
    if end < HEADER_LEN || data.len() < end {
        return Err(Error::Truncated);
    }
    let mut next_header = IpProtocol::from(data[field::NXT_HDR]);
    let mut offset = HEADER_LEN;
    let mut fragment = None;
    for count in 0..=MAX_EXT_HEADERS {
        let len = match next_header {
            IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts => {
                if next_header == IpProtocol::HopByHop && count != 0 {
                    return Err(Error::Malformed);
                }
                if offset + 2 > end {
                    return Err(Error::Truncated);
                }
                (usize::from(data[offset + 1]) + 1) * 8
            }
            IpProtocol::Ipv6Frag => FRAG_HEADER_LEN,
            _ => {
                return Ok(Ipv6L4 {
                    next_header,
                    offset,
                    fragment,
                });
            }
        };
        if count == MAX_EXT_HEADERS {
            break;
        }
        if offset + len > end {
            return Err(Error::Truncated);
        }
        let this = next_header;
        next_header = IpProtocol::from(data[offset]);
        if this == IpProtocol::Ipv6Frag {
            let off_flags = get_u16(data, offset + 2);
            let info = Ipv6FragInfo {
                offset: off_flags & 0xFFF8,
                more_frags: off_flags & 1 != 0,
                ident: get_u32(data, offset + 4),
            };
            fragment = Some(info);
            offset += len;
            if info.offset != 0 {
                return Ok(Ipv6L4 {
                    next_header,
                    offset,
                    fragment,
                });
            }
        } else {
            offset += len;
        }
    }
    Err(Error::Unsupported)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use proptest::prelude::*;
    use std::vec::Vec;

    #[test]
    fn deconstruct_against_etherparse() {
        for (name, frame) in fixtures::ALL {
            if frame[12..14] != [0x86, 0xdd] {
                continue;
            }
            let ip = &frame[14..];
            let p = Ipv6Packet::new_checked(ip).unwrap();
            let o = etherparse::Ipv6Slice::from_slice(ip).unwrap();
            let h = o.header().to_header();
            assert_eq!(p.version(), 6, "{name}");
            assert_eq!(p.traffic_class(), h.traffic_class, "{name}");
            assert_eq!(p.flow_label(), h.flow_label.value(), "{name}");
            assert_eq!(p.payload_len(), h.payload_length, "{name}");
            assert_eq!(u8::from(p.next_header()), h.next_header.0, "{name}");
            assert_eq!(p.hop_limit(), h.hop_limit, "{name}");
            assert_eq!(p.src_addr().octets(), h.source, "{name}");
            assert_eq!(p.dst_addr().octets(), h.destination, "{name}");
            assert_eq!(p.payload().len(), usize::from(h.payload_length), "{name}");

            let l4 = ipv6_upper_layer(&p).unwrap();
            // etherparse's payload() is the upper layer after the extension headers.
            let payload = o.payload();
            assert_eq!(u8::from(l4.next_header), payload.ip_number.0, "{name}");
            assert_eq!(&ip[l4.offset..p.total_len()], payload.payload, "{name}");
            assert_eq!(
                l4.fragment.is_some_and(|f| f.offset != 0 || f.more_frags),
                o.is_payload_fragmented(),
                "{name}"
            );
        }
    }

    #[test]
    fn walks_hop_by_hop_and_dstopts() {
        let p = Ipv6Packet::new_checked(&fixtures::MLD_REPORT_HBH[14..]).unwrap();
        assert_eq!(p.next_header(), IpProtocol::HopByHop);
        let l4 = ipv6_upper_layer(&p).unwrap();
        assert_eq!(
            (l4.next_header, l4.offset, l4.fragment),
            (IpProtocol::Icmpv6, 48, None)
        );

        let p = Ipv6Packet::new_checked(&fixtures::UDP6_DSTOPTS[14..]).unwrap();
        assert_eq!(p.next_header(), IpProtocol::Ipv6Opts);
        let l4 = ipv6_upper_layer(&p).unwrap();
        assert_eq!((l4.next_header, l4.offset), (IpProtocol::Udp, 48));
    }

    #[test]
    fn fragments() {
        let first = Ipv6Packet::new_checked(&fixtures::IPV6_FRAG_FIRST[14..]).unwrap();
        let l4 = ipv6_upper_layer(&first).unwrap();
        let f = l4.fragment.unwrap();
        assert_eq!((l4.next_header, l4.offset), (IpProtocol::Udp, 48));
        assert_eq!((f.offset, f.more_frags), (0, true));
        let mid = Ipv6Packet::new_checked(&fixtures::IPV6_FRAG_MIDDLE[14..]).unwrap();
        let l4m = ipv6_upper_layer(&mid).unwrap();
        let fm = l4m.fragment.unwrap();
        assert_eq!((fm.offset, fm.more_frags, fm.ident), (1448, true, f.ident));
        assert_eq!(l4m.next_header, IpProtocol::Udp);
        let last = Ipv6Packet::new_checked(&fixtures::IPV6_FRAG_LAST[14..]).unwrap();
        let fl = ipv6_upper_layer(&last).unwrap().fragment.unwrap();
        assert_eq!((fl.offset, fl.more_frags), (2896, false));
        // Cross-check with etherparse's fragment header parser.
        let o = etherparse::Ipv6Slice::from_slice(&fixtures::IPV6_FRAG_LAST[14..]).unwrap();
        let (ext, _, _) = etherparse::Ipv6Extensions::from_slice(
            etherparse::IpNumber::IPV6_FRAGMENTATION_HEADER,
            &fixtures::IPV6_FRAG_LAST[54..],
        )
        .unwrap();
        let oh = ext.fragment.unwrap();
        assert_eq!(fl.offset, oh.fragment_offset.value() * 8);
        assert_eq!(fl.ident, oh.identification);
        assert!(o.is_payload_fragmented());
    }

    fn with_ext(headers: &[(u8, usize)], last: u8) -> Vec<u8> {
        // headers: (kind, length in bytes); builds a minimal chain ending with `last`.
        let mut out = fixtures::UDP6[14..54].to_vec();
        let mut body = Vec::new();
        let kinds: Vec<u8> = headers.iter().map(|h| h.0).chain([last]).collect();
        out[6] = kinds[0];
        for (i, (kind, len)) in headers.iter().enumerate() {
            let mut h = vec![0u8; *len];
            h[0] = kinds[i + 1];
            if *kind != 44 {
                h[1] = (*len / 8 - 1) as u8;
            }
            body.extend_from_slice(&h);
        }
        body.extend_from_slice(&[0u8; 8]);
        out[4..6].copy_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn walker_limits() {
        let ok = with_ext(&[(0, 8), (60, 16), (43, 8), (44, 8), (60, 8)], 6);
        let p = Ipv6Packet::new_checked(&ok[..]).unwrap();
        let l4 = ipv6_upper_layer(&p).unwrap();
        assert_eq!((l4.next_header, l4.offset), (IpProtocol::Tcp, 40 + 48));
        assert_eq!(l4.fragment.map(|f| f.offset), Some(0));

        let hbh_late = with_ext(&[(60, 8), (0, 8)], 17);
        let p = Ipv6Packet::new_checked(&hbh_late[..]).unwrap();
        assert_eq!(ipv6_upper_layer(&p), Err(Error::Malformed));

        let eight = with_ext(&[(60, 8); 8], 17);
        let p = Ipv6Packet::new_checked(&eight[..]).unwrap();
        assert_eq!(ipv6_upper_layer(&p).unwrap().next_header, IpProtocol::Udp);
        let nine = with_ext(&[(60, 8); 9], 17);
        let p = Ipv6Packet::new_checked(&nine[..]).unwrap();
        assert_eq!(ipv6_upper_layer(&p), Err(Error::Unsupported));

        let mut cut = with_ext(&[(60, 24)], 17);
        cut[41] = 200; // claims 1608 bytes
        let p = Ipv6Packet::new_checked(&cut[..]).unwrap();
        assert_eq!(ipv6_upper_layer(&p), Err(Error::Truncated));

        let esp = with_ext(&[(60, 8)], 50);
        let p = Ipv6Packet::new_checked(&esp[..]).unwrap();
        assert_eq!(ipv6_upper_layer(&p).unwrap().next_header, IpProtocol::Esp);
    }

    #[test]
    fn construct_exact_bytes() {
        let ip = &fixtures::TCP6_SYN[14..];
        let repr = Ipv6Repr::parse(&Ipv6Packet::new_checked(ip).unwrap()).unwrap();
        let mut bytes = [0u8; 40];
        repr.emit(&mut Ipv6Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(&bytes[..], &ip[..40]);
        assert_eq!(
            Ipv6Packet::new_checked(&ip[..ip.len() - 1]).unwrap_err(),
            Error::Truncated
        );
    }

    proptest! {
        #[test]
        fn repr_round_trip(
            src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), nh in any::<u8>(),
            payload_len in 0usize..600, hop_limit in any::<u8>(), tc in any::<u8>(),
            flow in 0u32..(1 << 20),
        ) {
            let repr = Ipv6Repr {
                src_addr: Ipv6Addr::from(src), dst_addr: Ipv6Addr::from(dst),
                next_header: IpProtocol::from(nh), payload_len, hop_limit, traffic_class: tc,
                flow_label: flow,
            };
            let mut bytes = vec![0u8; 40 + payload_len];
            repr.emit(&mut Ipv6Packet::new_unchecked(&mut bytes[..]));
            prop_assert_eq!(Ipv6Repr::parse(&Ipv6Packet::new_checked(&bytes[..]).unwrap()).unwrap(), repr);
            let h = etherparse::Ipv6Header::from_slice(&bytes).unwrap().0;
            prop_assert_eq!(h.traffic_class, tc);
            prop_assert_eq!(h.flow_label.value(), flow);
        }
    }
}
