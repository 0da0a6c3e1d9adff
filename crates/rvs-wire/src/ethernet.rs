//! Ethernet II frames.

use core::fmt;

use crate::field::{Field, Rest, get_array, get_u16, set_u16};
use crate::{Error, Result};

/// A 48-bit Ethernet (MAC) address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xFF; 6]);

    /// Reads an address from the first six bytes of `data`.
    ///
    /// # Panics
    /// If `data` is shorter than six bytes.
    pub fn from_bytes(data: &[u8]) -> EthernetAddress {
        EthernetAddress(get_array(data, 0))
    }

    /// The six address bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether the group bit is set (multicast, including broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is a unicast address (group bit clear).
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// The multicast MAC an IPv6 multicast address maps to (RFC 2464 §7: `33:33` + the low
    /// 32 bits).
    pub fn from_ipv6_multicast(addr: &core::net::Ipv6Addr) -> EthernetAddress {
        let o = addr.octets();
        EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

enum_with_unknown! {
    /// The EtherType field of an Ethernet or 802.1Q header.
    pub enum EtherType(u16) {
        /// IPv4 (0x0800).
        Ipv4 = 0x0800,
        /// ARP (0x0806).
        Arp = 0x0806,
        /// 802.1Q VLAN tag (0x8100).
        Vlan = 0x8100,
        /// IPv6 (0x86dd).
        Ipv6 = 0x86DD,
        /// 802.1ad service tag, "QinQ" (0x88a8).
        QinQ = 0x88A8,
    }
}

impl EtherType {
    /// Whether this EtherType announces a VLAN tag (802.1Q or 802.1ad).
    pub fn is_vlan(self) -> bool {
        matches!(self, EtherType::Vlan | EtherType::QinQ)
    }
}

mod field {
    use super::{Field, Rest};
    pub(super) const DESTINATION: Field = 0..6;
    pub(super) const SOURCE: Field = 6..12;
    pub(super) const ETHERTYPE: Field = 12..14;
    pub(super) const PAYLOAD: Rest = 14..;
}

/// Length of an Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A view of an Ethernet II frame (without FCS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checks; getters may panic if it is shorter than 14 bytes.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> EthernetFrame<T> {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<EthernetFrame<T>> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Ensures the buffer holds the 14-byte header: [`Error::Truncated`] otherwise.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Header length (always 14; VLAN tags are part of the payload, see [`crate::vlan`]).
    #[inline]
    pub const fn header_len() -> usize {
        HEADER_LEN
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> EthernetAddress {
        EthernetAddress(get_array(self.buffer.as_ref(), field::DESTINATION.start))
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> EthernetAddress {
        EthernetAddress(get_array(self.buffer.as_ref(), field::SOURCE.start))
    }

    /// EtherType (the outer one: `Vlan`/`QinQ` for tagged frames).
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(get_u16(self.buffer.as_ref(), field::ETHERTYPE.start))
    }

    /// Everything after the 14-byte header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }

    /// Sets the EtherType.
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        set_u16(
            self.buffer.as_mut(),
            field::ETHERTYPE.start,
            ethertype.into(),
        );
    }

    /// Swaps source and destination addresses (for replies).
    pub fn swap_addrs(&mut self) {
        let src = self.src_addr();
        let dst = self.dst_addr();
        self.set_src_addr(dst);
        self.set_dst_addr(src);
    }

    /// Everything after the 14-byte header, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// The fields of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Source address.
    pub src_addr: EthernetAddress,
    /// Destination address.
    pub dst_addr: EthernetAddress,
    /// EtherType.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Reads the header of a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<EthernetRepr> {
        frame.check_len()?;
        Ok(EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
        })
    }

    /// Bytes [`emit`](Self::emit) writes: 14.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header.
    ///
    /// # Panics
    /// If the frame buffer is shorter than 14 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        frame.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn deconstruct_arp_request() {
        let f = EthernetFrame::new_checked(fixtures::ARP_REQUEST).unwrap();
        let oracle = etherparse::Ethernet2Slice::from_slice_without_fcs(fixtures::ARP_REQUEST)
            .unwrap()
            .to_header();
        assert_eq!(f.dst_addr(), EthernetAddress::BROADCAST);
        assert_eq!(f.dst_addr().0, oracle.destination);
        assert_eq!(f.src_addr(), EthernetAddress([2, 0, 0, 0, 0, 0x0a]));
        assert_eq!(f.src_addr().0, oracle.source);
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(u16::from(f.ethertype()), oracle.ether_type.0);
        assert_eq!(f.payload().len(), 28);
        assert!(f.dst_addr().is_broadcast() && f.dst_addr().is_multicast());
        assert!(f.src_addr().is_unicast());
        assert_eq!(std::format!("{}", f.src_addr()), "02:00:00:00:00:0a");
    }

    #[test]
    fn construct_rebuilds_header() {
        let original = fixtures::ICMP4_ECHO_REQUEST;
        let repr = EthernetRepr::parse(&EthernetFrame::new_checked(original).unwrap()).unwrap();
        assert_eq!(repr.ethertype, EtherType::Ipv4);
        let mut bytes = [0u8; 14];
        let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
        repr.emit(&mut frame);
        assert_eq!(&bytes[..], &original[..14]);
        assert_eq!(repr.buffer_len(), 14);
    }

    #[test]
    fn swap_and_truncation() {
        let mut bytes = fixtures::ARP_REPLY.to_vec();
        let mut f = EthernetFrame::new_checked(&mut bytes[..]).unwrap();
        let (s, d) = (f.src_addr(), f.dst_addr());
        f.swap_addrs();
        assert_eq!((f.src_addr(), f.dst_addr()), (d, s));
        assert_eq!(
            EthernetFrame::new_checked(&bytes[..13]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn ethertype_conversions() {
        for v in [0x0800u16, 0x0806, 0x8100, 0x86dd, 0x88a8, 0x1234] {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
        assert_eq!(EtherType::from(0x1234), EtherType::Unknown(0x1234));
        assert!(EtherType::QinQ.is_vlan() && !EtherType::Ipv6.is_vlan());
        let mc: core::net::Ipv6Addr = "ff02::1:ff00:2".parse().unwrap();
        assert_eq!(
            EthernetAddress::from_ipv6_multicast(&mc),
            EthernetAddress([0x33, 0x33, 0xff, 0, 0, 2])
        );
    }
}
