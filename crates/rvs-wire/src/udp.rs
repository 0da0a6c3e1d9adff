//! UDP datagrams (RFC 768) and their checksum rules.
//!
//! Over IPv4 a checksum field of 0 means "no checksum"; a computed checksum of 0 is therefore
//! sent as 0xFFFF (its ones-complement twin). Over IPv6 the checksum is mandatory
//! (RFC 8200 §8.1) and a field of 0 is invalid. The incremental helpers here keep both rules.

use core::net::IpAddr;

use crate::checksum;
use crate::field::{Field, get_u16, set_u16};
use crate::ip::IpProtocol;
use crate::{Error, Result};

mod field {
    use super::Field;
    pub(super) const SRC_PORT: Field = 0..2;
    pub(super) const DST_PORT: Field = 2..4;
    pub(super) const LENGTH: Field = 4..6;
    pub(super) const CHECKSUM: Field = 6..8;
}

/// Length of a UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A view of a UDP datagram.
///
/// After [`check_len`](Self::check_len): `8 <= length field <= buffer length`. The payload
/// and the checksum stop at the length field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps a buffer without checks; getters may panic on a short buffer.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> UdpPacket<T> {
        UdpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<UdpPacket<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// [`Error::Truncated`] if the buffer is shorter than 8 bytes or the length field;
    /// [`Error::Malformed`] if the length field is below 8.
    pub fn check_len(&self) -> Result<()> {
        let buf_len = self.buffer.as_ref().len();
        if buf_len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(self.len());
        if len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if buf_len < len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// Length field (header + payload).
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// Whether the datagram carries no payload.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    fn datagram(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[..usize::from(self.len()).clamp(HEADER_LEN.min(data.len()), data.len())]
    }

    /// The payload, bounded by the length field.
    pub fn payload(&self) -> &[u8] {
        let d = self.datagram();
        &d[HEADER_LEN.min(d.len())..]
    }

    /// Whether the checksum verifies: over IPv4 a zero field means "none" and passes; over
    /// IPv6 a zero field fails. A mixed address pair never verifies a real datagram.
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        if self.checksum() == 0 {
            return src.is_ipv4() && dst.is_ipv4();
        }
        let d = self.datagram();
        let ph = checksum::pseudo_header(src, dst, IpProtocol::Udp.into(), d.len() as u32);
        checksum::fold(ph + checksum::sum(d)) == 0xFFFF
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port (checksum not updated).
    #[inline]
    pub fn set_src_port(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::SRC_PORT.start, value);
    }

    /// Sets the destination port (checksum not updated).
    #[inline]
    pub fn set_dst_port(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::DST_PORT.start, value);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH.start, value);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, value);
    }

    /// Computes and stores the checksum (a computed 0 is stored as 0xFFFF).
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let d = self.datagram();
        let ph = checksum::pseudo_header(src, dst, IpProtocol::Udp.into(), d.len() as u32);
        let csum = checksum::finish(ph + checksum::sum(d));
        self.set_checksum(if csum == 0 { 0xFFFF } else { csum });
    }

    /// Replaces the source port, updating the checksum incrementally (keeping "no checksum");
    /// returns the old port.
    #[inline]
    pub fn rewrite_src_port(&mut self, value: u16) -> u16 {
        let old = self.src_port();
        let csum = update16(self.checksum(), old, value);
        self.set_src_port(value);
        self.set_checksum(csum);
        old
    }

    /// Replaces the destination port, updating the checksum incrementally; returns the old
    /// port.
    #[inline]
    pub fn rewrite_dst_port(&mut self, value: u16) -> u16 {
        let old = self.dst_port();
        let csum = update16(self.checksum(), old, value);
        self.set_dst_port(value);
        self.set_checksum(csum);
        old
    }

    /// Folds a pseudo-header address change into the checksum (keeping "no checksum").
    #[inline]
    pub fn update_checksum_for_addr(&mut self, old: &IpAddr, new: &IpAddr) {
        let csum = self.checksum();
        if csum != 0 {
            self.set_checksum(nonzero(crate::tcp::update_for_addr(csum, old, new)));
        }
    }

    /// The payload (bounded by the length field), mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let data = self.buffer.as_mut();
        let end = usize::from(get_u16(data, field::LENGTH.start))
            .clamp(HEADER_LEN.min(data.len()), data.len());
        &mut data[HEADER_LEN.min(end)..end]
    }
}

fn nonzero(csum: u16) -> u16 {
    if csum == 0 { 0xFFFF } else { csum }
}

/// [`checksum::update16`] for a UDP checksum field: a field of 0 ("no checksum", IPv4) stays
/// 0, and a result of 0 becomes 0xFFFF.
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    if csum == 0 {
        0
    } else {
        nonzero(checksum::update16(csum, old, new))
    }
}

/// [`checksum::update32`] with the UDP zero rules of [`update16`].
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    if csum == 0 {
        0
    } else {
        nonzero(checksum::update32(csum, old, new))
    }
}

/// [`checksum::update_bytes`] with the UDP zero rules of [`update16`].
pub fn update_bytes(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    if csum == 0 {
        0
    } else {
        nonzero(checksum::update_bytes(csum, old, new))
    }
}

/// A UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Data.
    pub payload: &'a [u8],
}

impl<'a> UdpRepr<'a> {
    /// Parses a checked datagram and verifies its checksum under the rules above
    /// ([`Error::Checksum`]).
    pub fn parse(packet: &UdpPacket<&'a [u8]>, src: &IpAddr, dst: &IpAddr) -> Result<UdpRepr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        let data: &'a [u8] = packet.buffer;
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload: &data[HEADER_LEN..usize::from(packet.len())],
        })
    }

    /// Bytes [`emit`](Self::emit) writes: 8 + payload.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes the datagram with a valid checksum.
    ///
    /// # Panics
    /// If the buffer is shorter than [`buffer_len`](Self::buffer_len). Payloads above 65527
    /// bytes are not representable.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut UdpPacket<T>,
        src: &IpAddr,
        dst: &IpAddr,
    ) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(self.buffer_len() as u16);
        packet.payload_mut().copy_from_slice(self.payload);
        packet.fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;
    use std::vec::Vec;

    fn datagram(frame: &[u8]) -> (&[u8], IpAddr, IpAddr) {
        if frame[12..14] == [0x08, 0x00] {
            let ip = crate::Ipv4Packet::new_checked(&frame[14..]).unwrap();
            let start = 14 + usize::from(ip.header_len());
            let end = 14 + usize::from(ip.total_len());
            (
                &frame[start..end],
                ip.src_addr().into(),
                ip.dst_addr().into(),
            )
        } else {
            let ip = crate::Ipv6Packet::new_checked(&frame[14..]).unwrap();
            let l4 = crate::ipv6_upper_layer(&ip).unwrap();
            (
                &frame[14 + l4.offset..14 + ip.total_len()],
                ip.src_addr().into(),
                ip.dst_addr().into(),
            )
        }
    }

    const DATAGRAMS: [&[u8]; 8] = [
        fixtures::UDP4,
        fixtures::UDP4_REPLY,
        fixtures::UDP4_CLOSED_PORT,
        fixtures::UDP4_IPOPTS,
        fixtures::UDP6,
        fixtures::UDP6_REPLY,
        fixtures::UDP6_CLOSED_PORT,
        fixtures::UDP6_DSTOPTS,
    ];

    #[test]
    fn deconstruct_against_etherparse() {
        for frame in DATAGRAMS {
            let (d, src, dst) = datagram(frame);
            let p = UdpPacket::new_checked(d).unwrap();
            let o = etherparse::UdpSlice::from_slice(d).unwrap();
            assert_eq!(p.src_port(), o.source_port());
            assert_eq!(p.dst_port(), o.destination_port());
            assert_eq!(p.len(), o.length());
            assert_eq!(p.checksum(), o.checksum());
            assert_eq!(p.payload(), o.payload());
            assert!(p.verify_checksum(&src, &dst));
            let h = o.to_header();
            let expected = match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(t)) => h
                    .calc_checksum_ipv4_raw(s.octets(), t.octets(), o.payload())
                    .unwrap(),
                (IpAddr::V6(s), IpAddr::V6(t)) => h
                    .calc_checksum_ipv6_raw(s.octets(), t.octets(), o.payload())
                    .unwrap(),
                _ => unreachable!(),
            };
            assert_eq!(p.checksum(), expected);
        }
        let (d, ..) = datagram(fixtures::UDP4);
        assert_eq!(UdpPacket::new_checked(d).unwrap().payload(), b"hello");
    }

    #[test]
    fn zero_checksum_rules() {
        let v4s: IpAddr = Ipv4Addr::new(198, 18, 0, 1).into();
        let v4d: IpAddr = Ipv4Addr::new(198, 18, 0, 2).into();
        let v6s: IpAddr = "2001:db8::1".parse::<Ipv6Addr>().unwrap().into();
        let v6d: IpAddr = "2001:db8::2".parse::<Ipv6Addr>().unwrap().into();
        let mut bytes = [0x12, 0x34, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00];
        let p = UdpPacket::new_checked(&bytes[..]).unwrap();
        assert!(p.verify_checksum(&v4s, &v4d));
        assert!(!p.verify_checksum(&v6s, &v6d));
        // A port rewrite keeps "no checksum".
        let mut p = UdpPacket::new_checked(&mut bytes[..]).unwrap();
        p.rewrite_dst_port(53);
        p.update_checksum_for_addr(&v4d, &v4s);
        assert_eq!(p.checksum(), 0);
        // Find a payload whose checksum computes to 0 and check it is sent as 0xFFFF.
        let mut found = false;
        for x in 0..=u16::MAX {
            let mut buf = [0u8; 10];
            buf[..6].copy_from_slice(&[0x12, 0x34, 0x00, 0x35, 0x00, 0x0a]);
            buf[8..].copy_from_slice(&x.to_be_bytes());
            let mut p = UdpPacket::new_checked(&mut buf[..]).unwrap();
            let ph = checksum::pseudo_header(&v4s, &v4d, 17, 10);
            if checksum::finish(
                ph + checksum::sum(&[
                    0x12,
                    0x34,
                    0x00,
                    0x35,
                    0x00,
                    0x0a,
                    0,
                    0,
                    (x >> 8) as u8,
                    x as u8,
                ]),
            ) == 0
            {
                p.fill_checksum(&v4s, &v4d);
                assert_eq!(p.checksum(), 0xFFFF);
                assert!(p.verify_checksum(&v4s, &v4d));
                found = true;
                break;
            }
        }
        assert!(found);
        assert_eq!(update16(0, 1, 2), 0);
        assert_eq!(update32(0, 1, 2), 0);
        assert_eq!(update_bytes(0, &[1, 2], &[3, 4]), 0);
        // 0xFFFF - 0x0001 + 0x0001 stays representable as 0xFFFF, never 0.
        assert_ne!(update16(0xFFFF, 0x0001, 0x0001), 0);
    }

    #[test]
    fn length_checks() {
        let (d, ..) = datagram(fixtures::UDP4);
        assert_eq!(
            UdpPacket::new_checked(&d[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            UdpPacket::new_checked(&d[..12]).unwrap_err(),
            Error::Truncated
        );
        let mut bad = d.to_vec();
        bad[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(
            UdpPacket::new_checked(&bad[..]).unwrap_err(),
            Error::Malformed
        );
        let mut padded = d.to_vec();
        padded.extend_from_slice(&[0; 6]);
        let p = UdpPacket::new_checked(&padded[..]).unwrap();
        assert_eq!(p.payload(), b"hello");
    }

    #[test]
    fn construct_exact_bytes() {
        for frame in DATAGRAMS {
            let (d, src, dst) = datagram(frame);
            let repr = UdpRepr::parse(&UdpPacket::new_checked(d).unwrap(), &src, &dst).unwrap();
            let mut bytes = vec![0u8; repr.buffer_len()];
            repr.emit(&mut UdpPacket::new_unchecked(&mut bytes[..]), &src, &dst);
            assert_eq!(&bytes[..], d);
        }
    }

    proptest! {
        #[test]
        fn incremental_equals_recompute(
            which in 0usize..8, addr in any::<[u8; 16]>(), port in any::<u16>(), src_side in any::<bool>(),
        ) {
            let (d, src, dst) = datagram(DATAGRAMS[which]);
            let mut bytes: Vec<u8> = d.to_vec();
            let mut p = UdpPacket::new_checked(&mut bytes[..]).unwrap();
            let new_ip = match src {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(addr)),
            };
            let (s2, d2) = if src_side {
                p.rewrite_src_port(port);
                p.update_checksum_for_addr(&src, &new_ip);
                (new_ip, dst)
            } else {
                p.rewrite_dst_port(port);
                p.update_checksum_for_addr(&dst, &new_ip);
                (src, new_ip)
            };
            prop_assert!(p.verify_checksum(&s2, &d2));
            let incremental = p.checksum();
            // Independent oracle: etherparse's full recomputation (which also sends 0 as
            // 0xFFFF).
            let o = etherparse::UdpSlice::from_slice(&bytes).unwrap();
            let h = o.to_header();
            let expected = match (s2, d2) {
                (IpAddr::V4(a), IpAddr::V4(b)) => h.calc_checksum_ipv4_raw(a.octets(), b.octets(), o.payload()).unwrap(),
                (IpAddr::V6(a), IpAddr::V6(b)) => h.calc_checksum_ipv6_raw(a.octets(), b.octets(), o.payload()).unwrap(),
                _ => unreachable!(),
            };
            prop_assert_eq!(incremental, expected);
        }

        #[test]
        fn repr_round_trip(
            sp in any::<u16>(), dp in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..300), v6 in any::<bool>(),
        ) {
            let (s, d): (IpAddr, IpAddr) = if v6 {
                ("2001:db8::1".parse::<Ipv6Addr>().unwrap().into(), "2001:db8:1::2".parse::<Ipv6Addr>().unwrap().into())
            } else {
                (Ipv4Addr::new(198, 18, 0, 1).into(), Ipv4Addr::new(198, 19, 0, 2).into())
            };
            let repr = UdpRepr { src_port: sp, dst_port: dp, payload: &payload };
            let mut bytes = vec![0u8; repr.buffer_len()];
            repr.emit(&mut UdpPacket::new_unchecked(&mut bytes[..]), &s, &d);
            let p = UdpPacket::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(UdpRepr::parse(&p, &s, &d).unwrap(), repr);
            prop_assert_ne!(p.checksum(), 0);
        }
    }
}
