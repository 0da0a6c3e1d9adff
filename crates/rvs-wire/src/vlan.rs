//! IEEE 802.1Q VLAN tags (and 802.1ad "QinQ" service tags, which share the layout).
//!
//! In a tagged frame the Ethernet EtherType is `Vlan` (0x8100) or `QinQ` (0x88a8) and is
//! followed by a 4-byte tag: the TCI (priority, drop-eligible bit, VLAN id) and the next
//! EtherType. [`VlanHeader`] views those 4 bytes and what follows.

use crate::ethernet::{self, EtherType};
use crate::field::{Field, Rest, get_u16, set_u16};
use crate::{Error, Result};

mod field {
    use super::{Field, Rest};
    pub(super) const TCI: Field = 0..2;
    pub(super) const ETHERTYPE: Field = 2..4;
    pub(super) const PAYLOAD: Rest = 4..;
}

/// Length of one VLAN tag.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// Most VLAN tags [`l3_ethertype`] walks (one customer tag inside one service tag).
pub const MAX_TAGS: usize = 2;

/// A view of one VLAN tag (TCI + inner EtherType) and the bytes after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlanHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanHeader<T> {
    /// Wraps a buffer without checks; getters may panic if it is shorter than 4 bytes.
    pub const fn new_unchecked(buffer: T) -> VlanHeader<T> {
        VlanHeader { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<VlanHeader<T>> {
        let v = Self::new_unchecked(buffer);
        v.check_len()?;
        Ok(v)
    }

    /// Ensures the 4-byte tag is present: [`Error::Truncated`] otherwise.
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

    /// The raw Tag Control Information.
    pub fn tci(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::TCI.start)
    }

    /// Priority code point (802.1p, 0..=7).
    pub fn priority(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// Drop eligible indicator (formerly CFI).
    pub fn drop_eligible(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// VLAN identifier (0..=4095).
    pub fn vlan_id(&self) -> u16 {
        self.tci() & 0x0FFF
    }

    /// EtherType of what follows the tag.
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(get_u16(self.buffer.as_ref(), field::ETHERTYPE.start))
    }

    /// The bytes after the tag.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanHeader<T> {
    /// Sets the raw TCI.
    pub fn set_tci(&mut self, tci: u16) {
        set_u16(self.buffer.as_mut(), field::TCI.start, tci);
    }

    /// Sets the VLAN id (low 12 bits of `id`), keeping priority and DEI.
    pub fn set_vlan_id(&mut self, id: u16) {
        let tci = (self.tci() & 0xF000) | (id & 0x0FFF);
        self.set_tci(tci);
    }

    /// Sets the inner EtherType.
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        set_u16(
            self.buffer.as_mut(),
            field::ETHERTYPE.start,
            ethertype.into(),
        );
    }

    /// The bytes after the tag, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// The fields of one VLAN tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanRepr {
    /// Priority code point (0..=7).
    pub priority: u8,
    /// Drop eligible indicator.
    pub drop_eligible: bool,
    /// VLAN id (0..=4095).
    pub vlan_id: u16,
    /// EtherType after the tag.
    pub ethertype: EtherType,
}

impl VlanRepr {
    /// Reads a checked tag.
    pub fn parse<T: AsRef<[u8]>>(tag: &VlanHeader<T>) -> Result<VlanRepr> {
        tag.check_len()?;
        Ok(VlanRepr {
            priority: tag.priority(),
            drop_eligible: tag.drop_eligible(),
            vlan_id: tag.vlan_id(),
            ethertype: tag.ethertype(),
        })
    }

    /// Bytes [`emit`](Self::emit) writes: 4.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the tag (priority and VLAN id are masked to their field widths).
    ///
    /// # Panics
    /// If the buffer is shorter than 4 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, tag: &mut VlanHeader<T>) {
        let tci = (u16::from(self.priority & 0x7) << 13)
            | if self.drop_eligible { 0x1000 } else { 0 }
            | (self.vlan_id & 0x0FFF);
        tag.set_tci(tci);
        tag.set_ethertype(self.ethertype);
    }
}

/// Finds the network layer of an Ethernet frame: returns the EtherType after any VLAN tags
/// (at most [`MAX_TAGS`]) and the offset of the L3 header from the frame start (14, 18 or 22).
///
/// Errors: [`Error::Truncated`] if the frame ends inside the Ethernet header or a tag,
/// [`Error::Unsupported`] for a third tag.
pub fn l3_ethertype(frame: &[u8]) -> Result<(EtherType, usize)> {
    if frame.len() < ethernet::HEADER_LEN {
        return Err(Error::Truncated);
    }
    let mut ethertype = EtherType::from(get_u16(frame, ethernet::HEADER_LEN - 2));
    let mut offset = ethernet::HEADER_LEN;
    let mut tags = 0;
    while ethertype.is_vlan() {
        if tags == MAX_TAGS {
            return Err(Error::Unsupported);
        }
        if frame.len() < offset + HEADER_LEN {
            return Err(Error::Truncated);
        }
        ethertype = EtherType::from(get_u16(frame, offset + field::ETHERTYPE.start));
        offset += HEADER_LEN;
        tags += 1;
    }
    Ok((ethertype, offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use std::vec::Vec;

    fn tag(frame: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
        let mut out = frame[..12].to_vec();
        for (tpid, tci) in tags {
            out.extend_from_slice(&tpid.to_be_bytes());
            out.extend_from_slice(&tci.to_be_bytes());
        }
        out.extend_from_slice(&frame[12..]);
        out
    }

    #[test]
    fn untagged() {
        assert_eq!(
            l3_ethertype(fixtures::TCP4_SYN).unwrap(),
            (EtherType::Ipv4, 14)
        );
        assert_eq!(
            l3_ethertype(&fixtures::TCP4_SYN[..13]),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn single_and_double_tag_agree_with_etherparse() {
        let single = tag(fixtures::TCP6_SYN, &[(0x8100, 0xA064)]);
        let double = tag(fixtures::TCP6_SYN, &[(0x88a8, 0x000A), (0x8100, 0x0014)]);
        for (frame, want_off, ids) in [(&single, 18, &[100u16][..]), (&double, 22, &[10, 20][..])] {
            assert_eq!(l3_ethertype(frame).unwrap(), (EtherType::Ipv6, want_off));
            let oracle = etherparse::SlicedPacket::from_ethernet(frame).unwrap();
            let oracle_ids: Vec<u16> = oracle
                .link_exts
                .iter()
                .filter_map(|e| match e {
                    etherparse::LinkExtSlice::Vlan(v) => Some(v.vlan_identifier().value()),
                    _ => None,
                })
                .collect();
            assert_eq!(oracle_ids, ids);
            let first = VlanHeader::new_checked(&frame[14..]).unwrap();
            assert_eq!(first.vlan_id(), ids[0]);
        }
        let v = VlanHeader::new_checked(&single[14..]).unwrap();
        assert_eq!(
            (v.priority(), v.drop_eligible(), v.vlan_id()),
            (5, false, 100)
        );
        assert_eq!(v.ethertype(), EtherType::Ipv6);
        assert_eq!(v.payload(), &fixtures::TCP6_SYN[14..]);
    }

    #[test]
    fn third_tag_and_truncated_tag() {
        let triple = tag(fixtures::TCP4_SYN, &[(0x88a8, 1), (0x8100, 2), (0x8100, 3)]);
        assert_eq!(l3_ethertype(&triple), Err(Error::Unsupported));
        let single = tag(fixtures::TCP4_SYN, &[(0x8100, 7)]);
        assert_eq!(l3_ethertype(&single[..17]), Err(Error::Truncated));
        assert_eq!(l3_ethertype(&single[..18]).unwrap(), (EtherType::Ipv4, 18));
    }

    #[test]
    fn repr_round_trip() {
        let repr = VlanRepr {
            priority: 6,
            drop_eligible: true,
            vlan_id: 4094,
            ethertype: EtherType::Arp,
        };
        let mut bytes = [0u8; 4];
        let mut v = VlanHeader::new_unchecked(&mut bytes[..]);
        repr.emit(&mut v);
        assert_eq!(bytes, [0xDF, 0xFE, 0x08, 0x06]);
        assert_eq!(
            VlanRepr::parse(&VlanHeader::new_checked(&bytes[..]).unwrap()).unwrap(),
            repr
        );
        let mut v = VlanHeader::new_unchecked(&mut bytes[..]);
        v.set_vlan_id(7);
        assert_eq!(v.vlan_id(), 7);
        assert_eq!(v.priority(), 6);
    }
}
