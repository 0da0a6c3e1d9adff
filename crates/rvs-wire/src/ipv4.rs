//! IPv4 (RFC 791).

use core::net::Ipv4Addr;

use crate::checksum;
use crate::field::{Field, get_array, get_u16, set_u16};
use crate::ip::{Fragment, IpProtocol};
use crate::{Error, Result};

mod field {
    use super::Field;
    pub(super) const VER_IHL: usize = 0;
    pub(super) const DSCP_ECN: usize = 1;
    pub(super) const LENGTH: Field = 2..4;
    pub(super) const IDENT: Field = 4..6;
    pub(super) const FLG_OFF: Field = 6..8;
    pub(super) const TTL: usize = 8;
    pub(super) const PROTOCOL: usize = 9;
    pub(super) const CHECKSUM: Field = 10..12;
    pub(super) const SRC_ADDR: Field = 12..16;
    pub(super) const DST_ADDR: Field = 16..20;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// Largest IPv4 header (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1FFF;

/// ECN codepoint "Congestion Experienced".
pub const ECN_CE: u8 = 0b11;
/// ECN codepoint "ECN-Capable Transport (0)".
pub const ECN_ECT0: u8 = 0b10;

/// A view of an IPv4 packet.
///
/// After [`check_len`](Self::check_len): the buffer holds the header including options, and
/// `header_len <= total_len <= buffer length`. The buffer may be longer than `total_len`
/// (Ethernet padding); [`payload`](Self::payload) stops at `total_len`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checks; getters may panic on a short or inconsistent buffer.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the buffer against the header's length fields.
    ///
    /// [`Error::Truncated`] if the buffer is shorter than 20 bytes, the IHL or `total_len`;
    /// [`Error::Malformed`] if IHL < 5 or `total_len` < IHL. The version is not checked here
    /// (see [`Ipv4Repr::parse`] and [`crate::PacketMeta::parse`]).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = usize::from(self.header_len());
        let total_len = usize::from(self.total_len());
        if header_len < HEADER_LEN || total_len < header_len {
            return Err(Error::Malformed);
        }
        if len < header_len || len < total_len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version nibble (4 for a valid packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4), including options.
    #[inline]
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0F) * 4
    }

    /// The whole former TOS byte (DSCP << 2 | ECN).
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Differentiated services code point.
    pub fn dscp(&self) -> u8 {
        self.dscp_ecn() >> 2
    }

    /// Explicit congestion notification codepoint.
    pub fn ecn(&self) -> u8 {
        self.dscp_ecn() & 0x03
    }

    /// Total length (header + payload) in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT.start)
    }

    #[inline]
    fn flags_frag(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::FLG_OFF.start)
    }

    /// Don't Fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }

    /// More Fragments flag.
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }

    /// Fragment offset in **bytes** (the field × 8).
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag() & OFFSET_MASK) << 3
    }

    /// Fragment status.
    pub fn fragment(&self) -> Fragment {
        Fragment::classify(self.frag_offset(), self.more_frags())
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Time to live (smoltcp's name for it).
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.ttl()
    }

    /// Protocol of the payload.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_array::<4>(self.buffer.as_ref(), field::SRC_ADDR.start))
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_array::<4>(self.buffer.as_ref(), field::DST_ADDR.start))
    }

    fn header_end(&self) -> usize {
        usize::from(self.header_len())
            .max(HEADER_LEN)
            .min(self.buffer.as_ref().len())
    }

    /// Whether the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(&self.buffer.as_ref()[..self.header_end()])) == 0xFFFF
    }

    /// Header options (empty when IHL is 5).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_end()]
    }

    /// The payload: from the end of the header to `total_len` (not to the buffer end).
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(data.len());
        &data[self.header_end().min(end)..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version nibble.
    pub fn set_version(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0F) | (value << 4);
    }

    /// Sets the header length in bytes (must be a multiple of 4 in 20..=60).
    pub fn set_header_len(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xF0) | ((value / 4) & 0x0F);
    }

    /// Sets the TOS byte (DSCP and ECN).
    pub fn set_dscp_ecn(&mut self, value: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = value;
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH.start, value);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::IDENT.start, value);
    }

    fn set_flags_frag(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::FLG_OFF.start, value);
    }

    /// Clears DF, MF and the fragment offset (and the reserved bit).
    pub fn clear_flags(&mut self) {
        self.set_flags_frag(0);
    }

    /// Sets or clears Don't Fragment.
    pub fn set_dont_frag(&mut self, value: bool) {
        let raw = self.flags_frag() & !FLAG_DF;
        self.set_flags_frag(raw | if value { FLAG_DF } else { 0 });
    }

    /// Sets or clears More Fragments.
    pub fn set_more_frags(&mut self, value: bool) {
        let raw = self.flags_frag() & !FLAG_MF;
        self.set_flags_frag(raw | if value { FLAG_MF } else { 0 });
    }

    /// Sets the fragment offset, in bytes (a multiple of 8).
    pub fn set_frag_offset(&mut self, value: u16) {
        let raw = self.flags_frag() & !OFFSET_MASK;
        self.set_flags_frag(raw | (value >> 3));
    }

    /// Sets the time to live (checksum not updated).
    #[inline]
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    /// Sets the time to live (checksum not updated).
    #[inline]
    pub fn set_hop_limit(&mut self, value: u8) {
        self.set_ttl(value);
    }

    /// Sets the protocol.
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = value.into();
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, value);
    }

    /// Sets the source address (checksum not updated).
    #[inline]
    pub fn set_src_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }

    /// Sets the destination address (checksum not updated).
    #[inline]
    pub fn set_dst_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }

    /// Recomputes the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let end = self.header_end();
        let csum = checksum::compute(&self.buffer.as_ref()[..end]);
        self.set_checksum(csum);
    }

    /// Forwarding step: if TTL > 1, decrements it, updates the checksum incrementally and
    /// returns the new TTL; otherwise leaves the packet alone and returns `None` (the caller
    /// should drop it and may send ICMP time exceeded, as `ip_forward` does).
    #[inline]
    pub fn decrement_ttl(&mut self) -> Option<u8> {
        let ttl = self.ttl();
        if ttl <= 1 {
            return None;
        }
        // TTL is the high byte of the TTL/protocol word, which drops by 0x0100: the checksum
        // rises by 0x0100 with end-around carry (RFC 1141, as `ip_decrease_ttl`). This is
        // RFC 1624 eqn. 3 for that change, value for value (`checksum::update16` would give
        // the same; see the exhaustive test).
        let sum = u32::from(self.checksum()) + 0x0100;
        let csum = (sum + u32::from(sum >= 0xFFFF)) as u16;
        self.set_ttl(ttl - 1);
        self.set_checksum(csum);
        Some(ttl - 1)
    }

    /// Replaces the source address and updates the header checksum incrementally. Returns the
    /// old address (the caller updates the L4 pseudo-header checksum with
    /// [`checksum::update32`]).
    #[inline]
    pub fn rewrite_src_addr(&mut self, value: Ipv4Addr) -> Ipv4Addr {
        let old = self.src_addr();
        let csum = checksum::update32(self.checksum(), old.to_bits(), value.to_bits());
        self.set_src_addr(value);
        self.set_checksum(csum);
        old
    }

    /// Replaces the destination address and updates the header checksum incrementally.
    /// Returns the old address.
    #[inline]
    pub fn rewrite_dst_addr(&mut self, value: Ipv4Addr) -> Ipv4Addr {
        let old = self.dst_addr();
        let csum = checksum::update32(self.checksum(), old.to_bits(), value.to_bits());
        self.set_dst_addr(value);
        self.set_checksum(csum);
        old
    }

    /// Header options, mutable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_end();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// The payload (up to `total_len`), mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_end();
        let data = self.buffer.as_mut();
        let end = usize::from(get_u16(data, field::LENGTH.start)).min(data.len());
        &mut data[start.min(end)..end]
    }
}

/// The fields of an unfragmented IPv4 header without options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol.
    pub next_header: IpProtocol,
    /// Payload length in bytes (`total_len` − header length).
    pub payload_len: usize,
    /// Time to live.
    pub hop_limit: u8,
    /// TOS byte (DSCP << 2 | ECN).
    pub dscp_ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
}

impl Ipv4Repr {
    /// Parses a checked packet. Options are skipped (not represented).
    ///
    /// Errors: [`Error::Malformed`] for a version other than 4, [`Error::Checksum`],
    /// [`Error::Unsupported`] for a fragment.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Ipv4Repr> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(Error::Malformed);
        }
        if !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        if packet.fragment() != Fragment::None {
            return Err(Error::Unsupported);
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.total_len() - u16::from(packet.header_len())),
            hop_limit: packet.ttl(),
            dscp_ecn: packet.dscp_ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
        })
    }

    /// Bytes of header [`emit`](Self::emit) writes: 20.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header (no options) with `total_len = 20 + payload_len` and a valid
    /// checksum. The payload is not touched.
    ///
    /// # Panics
    /// If the buffer is shorter than 20 bytes. `payload_len` above 65515 is truncated.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        packet.buffer.as_mut()[..HEADER_LEN].copy_from_slice(&self.header());
    }

    /// The 20 bytes [`emit`](Self::emit) writes, built in registers.
    #[inline(always)]
    pub(crate) fn header(&self) -> [u8; HEADER_LEN] {
        let len = ((HEADER_LEN + self.payload_len) as u16).to_be_bytes();
        let ident = self.ident.to_be_bytes();
        let flags = if self.dont_frag { FLAG_DF } else { 0 }.to_be_bytes();
        let (s, d) = (self.src_addr.octets(), self.dst_addr.octets());
        let mut h = [
            0x45,
            self.dscp_ecn,
            len[0],
            len[1],
            ident[0],
            ident[1],
            flags[0],
            flags[1],
            self.hop_limit,
            self.next_header.into(),
            0,
            0,
            s[0],
            s[1],
            s[2],
            s[3],
            d[0],
            d[1],
            d[2],
            d[3],
        ];
        let csum = header_checksum(&h);
        h[10] = csum[0];
        h[11] = csum[1];
        h
    }
}

/// The checksum field bytes (as stored) of a 20-byte header whose checksum field is zero:
/// `checksum::compute(h).to_be_bytes()`, summed as five native-endian words (the
/// ones'-complement sum of byte-swapped words is the byte-swapped sum, so complementing
/// the native-order fold and storing it native-endian gives the big-endian field).
#[inline(always)]
fn header_checksum(h: &[u8; HEADER_LEN]) -> [u8; 2] {
    let w = |i: usize| u64::from(u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
    let acc = w(0) + w(4) + w(8) + w(12) + w(16);
    let acc = (acc & 0xFFFF_FFFF) + (acc >> 32);
    let acc = (acc & 0xFFFF_FFFF) + (acc >> 32);
    (!checksum::fold(acc as u32)).to_ne_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn oracle(ip: &[u8]) -> etherparse::Ipv4Header {
        etherparse::Ipv4Header::from_slice(ip).unwrap().0
    }

    #[test]
    fn deconstruct_against_etherparse() {
        for (name, frame) in [
            ("echo", fixtures::ICMP4_ECHO_REQUEST),
            ("opts", fixtures::UDP4_IPOPTS),
            ("frag-first", fixtures::IPV4_FRAG_FIRST),
            ("frag-mid", fixtures::IPV4_FRAG_MIDDLE),
            ("frag-last", fixtures::IPV4_FRAG_LAST),
            ("syn", fixtures::TCP4_SYN),
        ] {
            let ip = &frame[14..];
            let p = Ipv4Packet::new_checked(ip).unwrap();
            let o = oracle(ip);
            assert_eq!(p.version(), 4, "{name}");
            assert_eq!(usize::from(p.header_len()), o.header_len(), "{name}");
            assert_eq!(p.dscp(), o.dscp.value(), "{name}");
            assert_eq!(p.ecn(), o.ecn.value(), "{name}");
            assert_eq!(p.total_len(), o.total_len, "{name}");
            assert_eq!(p.ident(), o.identification, "{name}");
            assert_eq!(p.dont_frag(), o.dont_fragment, "{name}");
            assert_eq!(p.more_frags(), o.more_fragments, "{name}");
            assert_eq!(p.frag_offset(), o.fragment_offset.value() * 8, "{name}");
            assert_eq!(p.ttl(), o.time_to_live, "{name}");
            assert_eq!(u8::from(p.next_header()), o.protocol.0, "{name}");
            assert_eq!(p.checksum(), o.header_checksum, "{name}");
            assert_eq!(p.src_addr().octets(), o.source, "{name}");
            assert_eq!(p.dst_addr().octets(), o.destination, "{name}");
            assert_eq!(p.options(), o.options.as_slice(), "{name}");
            assert!(p.verify_checksum(), "{name}");
            assert_eq!(o.calc_header_checksum(), p.checksum(), "{name}");
            let oracle_payload = etherparse::Ipv4Slice::from_slice(ip).unwrap();
            assert_eq!(p.payload(), oracle_payload.payload().payload, "{name}");
        }
    }

    #[test]
    fn fragment_fields_of_captured_datagram() {
        let first = Ipv4Packet::new_checked(&fixtures::IPV4_FRAG_FIRST[14..]).unwrap();
        let middle = Ipv4Packet::new_checked(&fixtures::IPV4_FRAG_MIDDLE[14..]).unwrap();
        let last = Ipv4Packet::new_checked(&fixtures::IPV4_FRAG_LAST[14..]).unwrap();
        assert_eq!(first.fragment(), Fragment::First);
        assert_eq!(middle.fragment(), Fragment::NonFirst);
        assert_eq!(last.fragment(), Fragment::NonFirst);
        assert_eq!(first.ident(), middle.ident());
        assert_eq!(middle.frag_offset(), first.payload().len() as u16);
        assert_eq!(
            last.frag_offset() as usize,
            first.payload().len() + middle.payload().len()
        );
        // 3000 bytes of data + the 8-byte UDP header were split.
        assert_eq!(last.frag_offset() as usize + last.payload().len(), 3008);
        assert!(!last.more_frags());
        assert_eq!(Ipv4Repr::parse(&first).unwrap_err(), Error::Unsupported);
    }

    #[test]
    fn construct_exact_bytes() {
        let ip = &fixtures::UDP4[14..];
        let p = Ipv4Packet::new_checked(ip).unwrap();
        let repr = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(repr.next_header, IpProtocol::Udp);
        assert_eq!(repr.payload_len, 13);
        assert!(repr.dont_frag);
        let mut bytes = [0u8; 20];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(&bytes[..], &ip[..20]);
    }

    #[test]
    fn check_len_errors() {
        let ip = &fixtures::ICMP4_ECHO_REQUEST[14..];
        assert_eq!(
            Ipv4Packet::new_checked(&ip[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Ipv4Packet::new_checked(&ip[..83]).unwrap_err(),
            Error::Truncated
        );
        let mut bad = ip.to_vec();
        bad[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&bad[..]).unwrap_err(),
            Error::Malformed
        );
        bad[0] = 0x4f; // IHL 60 > total_len 84 is fine, but options eat the ICMP header
        bad[2..4].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&bad[..]).unwrap_err(),
            Error::Malformed
        );
        let mut padded = ip.to_vec();
        padded.extend_from_slice(&[0xEE; 10]);
        let p = Ipv4Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(p.payload().len(), 64);
        let mut v6 = ip.to_vec();
        v6[0] = 0x65;
        let p = Ipv4Packet::new_checked(&v6[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&p).unwrap_err(), Error::Malformed);
        let mut badsum = ip.to_vec();
        badsum[10] ^= 1;
        let p = Ipv4Packet::new_checked(&badsum[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&p).unwrap_err(), Error::Checksum);
    }

    #[test]
    fn decrement_ttl_stops_at_one() {
        let mut ip = fixtures::ICMP4_ECHO_TTL1[14..].to_vec();
        let mut p = Ipv4Packet::new_checked(&mut ip[..]).unwrap();
        assert_eq!(p.decrement_ttl(), None);
        assert_eq!(p.ttl(), 1);
        p.set_ttl(2);
        p.fill_checksum();
        assert_eq!(p.decrement_ttl(), Some(1));
        assert!(p.verify_checksum());
    }

    #[test]
    fn flag_setters() {
        let mut ip = fixtures::UDP4[14..].to_vec();
        let mut p = Ipv4Packet::new_checked(&mut ip[..]).unwrap();
        p.set_more_frags(true);
        p.set_frag_offset(1480);
        assert!(p.dont_frag() && p.more_frags());
        assert_eq!(p.frag_offset(), 1480);
        p.set_dont_frag(false);
        assert!(!p.dont_frag() && p.more_frags());
        p.clear_flags();
        assert_eq!(
            (p.dont_frag(), p.more_frags(), p.frag_offset()),
            (false, false, 0)
        );
    }

    proptest! {
        /// The word-wise header checksum equals the byte-wise one.
        #[test]
        fn header_checksum_equals_compute(mut h in any::<[u8; 20]>()) {
            h[10] = 0;
            h[11] = 0;
            prop_assert_eq!(header_checksum(&h), checksum::compute(&h).to_be_bytes());
        }
    }

    /// The TTL shortcut equals RFC 1624 eqn. 3 for every checksum, TTL and protocol.
    #[test]
    fn decrement_ttl_is_rfc1624_for_every_checksum() {
        let mut ip = fixtures::TCP4_SYN[14..34].to_vec();
        for (ttl, proto) in [(2u8, 6u8), (64, 17), (255, 0), (128, 255)] {
            for csum in 0..=u16::MAX {
                ip[8] = ttl;
                ip[9] = proto;
                ip[10..12].copy_from_slice(&csum.to_be_bytes());
                let mut p = Ipv4Packet::new_unchecked(&mut ip[..]);
                assert_eq!(p.decrement_ttl(), Some(ttl - 1));
                let old = u16::from(ttl) << 8 | u16::from(proto);
                let want = checksum::update16(csum, old, old - 0x0100);
                assert_eq!(
                    p.checksum(),
                    want,
                    "csum {csum:#06x} ttl {ttl} proto {proto}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn incremental_rewrites_equal_recompute(
            src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), ttl in 2u8..=255,
            which in 0usize..6,
        ) {
            let frame = [fixtures::ICMP4_ECHO_REQUEST, fixtures::UDP4_IPOPTS, fixtures::TCP4_SYN,
                fixtures::IPV4_FRAG_MIDDLE, fixtures::ICMP4_FRAG_NEEDED, fixtures::UDP4][which];
            let mut ip: Vec<u8> = frame[14..].to_vec();
            let mut p = Ipv4Packet::new_checked(&mut ip[..]).unwrap();
            p.set_ttl(ttl);
            p.fill_checksum();
            p.rewrite_src_addr(Ipv4Addr::from(src));
            p.rewrite_dst_addr(Ipv4Addr::from(dst));
            p.decrement_ttl();
            let incremental = p.checksum();
            // Independent oracle: etherparse recomputes the header checksum.
            let o = oracle(&ip);
            prop_assert_eq!(o.calc_header_checksum(), incremental);
            prop_assert_eq!(o.time_to_live, ttl - 1);
        }

        #[test]
        fn repr_round_trip(
            src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), proto in any::<u8>(),
            payload_len in 0usize..1400, hop_limit in any::<u8>(), dscp_ecn in any::<u8>(),
            ident in any::<u16>(), dont_frag in any::<bool>(),
        ) {
            let repr = Ipv4Repr {
                src_addr: Ipv4Addr::from(src), dst_addr: Ipv4Addr::from(dst),
                next_header: IpProtocol::from(proto), payload_len, hop_limit, dscp_ecn, ident,
                dont_frag,
            };
            let mut bytes = vec![0u8; repr.buffer_len() + payload_len];
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut bytes[..]));
            let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(Ipv4Repr::parse(&p).unwrap(), repr);
            let o = oracle(&bytes);
            prop_assert_eq!(o.calc_header_checksum(), p.checksum());
        }
    }
}
