//! ARP for IPv4 over Ethernet (RFC 826).

use core::net::Ipv4Addr;

use crate::ethernet::{EtherType, EthernetAddress};
use crate::field::{Field, get_array, get_u16, set_u16};
use crate::{Error, Result};

enum_with_unknown! {
    /// ARP operation code.
    pub enum ArpOperation(u16) {
        /// Who has the target protocol address?
        Request = 1,
        /// The sender protocol address is at the sender hardware address.
        Reply = 2,
    }
}

/// ARP hardware type for Ethernet.
pub const HARDWARE_ETHERNET: u16 = 1;

mod field {
    use super::Field;
    pub(super) const HTYPE: Field = 0..2;
    pub(super) const PTYPE: Field = 2..4;
    pub(super) const HLEN: usize = 4;
    pub(super) const PLEN: usize = 5;
    pub(super) const OPER: Field = 6..8;
    pub(super) const SHA: Field = 8..14;
    pub(super) const SPA: Field = 14..18;
    pub(super) const THA: Field = 18..24;
    pub(super) const TPA: Field = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::TPA.end;

/// A view of an Ethernet/IPv4 ARP packet.
///
/// The address getters assume 6-byte hardware and 4-byte protocol addresses; check
/// [`hardware_len`](Self::hardware_len) and [`protocol_len`](Self::protocol_len) (or use
/// [`ArpRepr::parse`]) before trusting them. They never panic after `check_len`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps a buffer without checks; getters may panic if it is shorter than 28 bytes.
    pub const fn new_unchecked(buffer: T) -> ArpPacket<T> {
        ArpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<ArpPacket<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Ensures the buffer holds a 28-byte Ethernet/IPv4 ARP packet: [`Error::Truncated`]
    /// otherwise. Extra bytes (Ethernet padding) are allowed.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < PACKET_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type (1 for Ethernet).
    pub fn hardware_type(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::HTYPE.start)
    }

    /// Protocol type (an EtherType; IPv4 here).
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(get_u16(self.buffer.as_ref(), field::PTYPE.start))
    }

    /// Hardware address length (6 for Ethernet).
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length (4 for IPv4).
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation.
    pub fn operation(&self) -> ArpOperation {
        ArpOperation::from(get_u16(self.buffer.as_ref(), field::OPER.start))
    }

    /// Sender hardware address.
    pub fn source_hardware_addr(&self) -> EthernetAddress {
        EthernetAddress(get_array(self.buffer.as_ref(), field::SHA.start))
    }

    /// Sender protocol address.
    pub fn source_protocol_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_array::<4>(self.buffer.as_ref(), field::SPA.start))
    }

    /// Target hardware address.
    pub fn target_hardware_addr(&self) -> EthernetAddress {
        EthernetAddress(get_array(self.buffer.as_ref(), field::THA.start))
    }

    /// Target protocol address.
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_array::<4>(self.buffer.as_ref(), field::TPA.start))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the hardware type.
    pub fn set_hardware_type(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::HTYPE.start, value);
    }

    /// Sets the protocol type.
    pub fn set_protocol_type(&mut self, value: EtherType) {
        set_u16(self.buffer.as_mut(), field::PTYPE.start, value.into());
    }

    /// Sets the hardware address length.
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value;
    }

    /// Sets the protocol address length.
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value;
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, value: ArpOperation) {
        set_u16(self.buffer.as_mut(), field::OPER.start, value.into());
    }

    /// Sets the sender hardware address.
    pub fn set_source_hardware_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&addr.0);
    }

    /// Sets the sender protocol address.
    pub fn set_source_protocol_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&addr.octets());
    }

    /// Sets the target hardware address.
    pub fn set_target_hardware_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&addr.0);
    }

    /// Sets the target protocol address.
    pub fn set_target_protocol_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&addr.octets());
    }
}

/// An Ethernet/IPv4 ARP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Request or reply (other codes are rejected by [`parse`](Self::parse)).
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub source_hardware_addr: EthernetAddress,
    /// Sender protocol address.
    pub source_protocol_addr: Ipv4Addr,
    /// Target hardware address (zero in requests).
    pub target_hardware_addr: EthernetAddress,
    /// Target protocol address.
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// Parses a checked packet. [`Error::Unsupported`] unless it is Ethernet/IPv4 ARP with
    /// operation request or reply.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr> {
        packet.check_len()?;
        if packet.hardware_type() != HARDWARE_ETHERNET
            || packet.protocol_type() != EtherType::Ipv4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        let operation = packet.operation();
        if !matches!(operation, ArpOperation::Request | ArpOperation::Reply) {
            return Err(Error::Unsupported);
        }
        Ok(ArpRepr {
            operation,
            source_hardware_addr: packet.source_hardware_addr(),
            source_protocol_addr: packet.source_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        })
    }

    /// Bytes [`emit`](Self::emit) writes: 28.
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the packet.
    ///
    /// # Panics
    /// If the buffer is shorter than 28 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_hardware_type(HARDWARE_ETHERNET);
        packet.set_protocol_type(EtherType::Ipv4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(self.source_hardware_addr);
        packet.set_source_protocol_addr(self.source_protocol_addr);
        packet.set_target_hardware_addr(self.target_hardware_addr);
        packet.set_target_protocol_addr(self.target_protocol_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn oracle(frame: &[u8]) -> etherparse::ArpPacket {
        match etherparse::PacketHeaders::from_ethernet_slice(frame)
            .unwrap()
            .net
        {
            Some(etherparse::NetHeaders::Arp(a)) => a,
            other => panic!("not ARP: {other:?}"),
        }
    }

    #[test]
    fn deconstruct_request() {
        let p = ArpPacket::new_checked(&fixtures::ARP_REQUEST[14..]).unwrap();
        let o = oracle(fixtures::ARP_REQUEST);
        assert_eq!(p.hardware_type(), o.hw_addr_type.0);
        assert_eq!(u16::from(p.protocol_type()), o.proto_addr_type.0);
        assert_eq!((p.hardware_len(), p.protocol_len()), (6, 4));
        assert_eq!(p.operation(), ArpOperation::Request);
        assert_eq!(u16::from(p.operation()), o.operation.0);
        assert_eq!(p.source_hardware_addr().as_bytes(), o.sender_hw_addr());
        assert_eq!(
            &p.source_protocol_addr().octets()[..],
            o.sender_protocol_addr()
        );
        assert_eq!(p.target_hardware_addr().as_bytes(), o.target_hw_addr());
        assert_eq!(
            &p.target_protocol_addr().octets()[..],
            o.target_protocol_addr()
        );
        assert_eq!(p.source_protocol_addr(), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(p.target_protocol_addr(), Ipv4Addr::new(198, 18, 0, 2));
    }

    #[test]
    fn construct_reply_exactly() {
        let payload = &fixtures::ARP_REPLY[14..];
        let repr = ArpRepr::parse(&ArpPacket::new_checked(payload).unwrap()).unwrap();
        assert_eq!(repr.operation, ArpOperation::Reply);
        assert_eq!(
            repr.source_hardware_addr,
            EthernetAddress([2, 0, 0, 0, 0, 1])
        );
        let mut bytes = [0u8; PACKET_LEN];
        repr.emit(&mut ArpPacket::new_unchecked(&mut bytes[..]));
        assert_eq!(&bytes[..], &payload[..PACKET_LEN]);
    }

    #[test]
    fn rejects_short_and_foreign() {
        assert_eq!(
            ArpPacket::new_checked(&fixtures::ARP_REQUEST[14..41]).unwrap_err(),
            Error::Truncated
        );
        let mut bytes = fixtures::ARP_REQUEST[14..].to_vec();
        bytes[5] = 16; // IPv6-sized protocol addresses
        let p = ArpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(ArpRepr::parse(&p).unwrap_err(), Error::Unsupported);
        bytes[5] = 4;
        bytes[7] = 3; // RARP request
        let p = ArpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.operation(), ArpOperation::Unknown(3));
        assert_eq!(ArpRepr::parse(&p).unwrap_err(), Error::Unsupported);
    }
}
