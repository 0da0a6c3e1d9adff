//! TCP segments (RFC 9293).

use core::fmt;
use core::net::IpAddr;

use crate::checksum;
use crate::field::{Field, get_u16, get_u32, set_u16, set_u32};
use crate::ip::IpProtocol;
use crate::{Error, Result};

mod field {
    use super::Field;
    pub(super) const SRC_PORT: Field = 0..2;
    pub(super) const DST_PORT: Field = 2..4;
    pub(super) const SEQ_NUM: Field = 4..8;
    pub(super) const ACK_NUM: Field = 8..12;
    pub(super) const DATA_OFF: usize = 12;
    pub(super) const FLAGS: usize = 13;
    pub(super) const WIN_SIZE: Field = 14..16;
    pub(super) const CHECKSUM: Field = 16..18;
    pub(super) const URGENT: Field = 18..20;
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = field::URGENT.end;

/// Largest TCP header (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;

/// The eight TCP flag bits (byte 13 of the header).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u8);

impl TcpFlags {
    /// No flags.
    pub const NONE: TcpFlags = TcpFlags(0);
    /// FIN: no more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// SYN: synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// RST: reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// PSH: push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// ACK: acknowledgment field significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// URG: urgent pointer field significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECE: ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// CWR: congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// Flags from the raw byte.
    pub const fn from_bits(bits: u8) -> TcpFlags {
        TcpFlags(bits)
    }

    /// The raw byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set.
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// FIN set.
    pub const fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    /// SYN set.
    pub const fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    /// RST set.
    pub const fn rst(self) -> bool {
        self.contains(Self::RST)
    }
    /// PSH set.
    pub const fn psh(self) -> bool {
        self.contains(Self::PSH)
    }
    /// ACK set.
    pub const fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
    /// URG set.
    pub const fn urg(self) -> bool {
        self.contains(Self::URG)
    }
    /// ECE set.
    pub const fn ece(self) -> bool {
        self.contains(Self::ECE)
    }
    /// CWR set.
    pub const fn cwr(self) -> bool {
        self.contains(Self::CWR)
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl core::ops::BitAnd for TcpFlags {
    type Output = TcpFlags;
    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        f.write_str("TcpFlags(")?;
        let mut first = true;
        for (bit, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        f.write_str(")")
    }
}

/// A view of a TCP segment.
///
/// The buffer must be exactly the segment (the IP payload), since the checksum covers all of
/// it. After [`check_len`](Self::check_len) the header including options is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without checks; getters may panic on a short buffer.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> TcpPacket<T> {
        TcpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<TcpPacket<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// [`Error::Truncated`] if the buffer is shorter than 20 bytes or the data offset;
    /// [`Error::Malformed`] if the data offset is below 5.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = usize::from(self.header_len());
        if header_len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < header_len {
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

    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQ_NUM.start)
    }

    /// Acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::ACK_NUM.start)
    }

    /// Header length in bytes (data offset × 4).
    #[inline]
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The flag byte.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// FIN set.
    pub fn fin(&self) -> bool {
        self.flags().fin()
    }
    /// SYN set.
    pub fn syn(&self) -> bool {
        self.flags().syn()
    }
    /// RST set.
    pub fn rst(&self) -> bool {
        self.flags().rst()
    }
    /// PSH set.
    pub fn psh(&self) -> bool {
        self.flags().psh()
    }
    /// ACK set.
    pub fn ack(&self) -> bool {
        self.flags().ack()
    }
    /// URG set.
    pub fn urg(&self) -> bool {
        self.flags().urg()
    }
    /// ECE set.
    pub fn ece(&self) -> bool {
        self.flags().ece()
    }
    /// CWR set.
    pub fn cwr(&self) -> bool {
        self.flags().cwr()
    }

    /// Receive window (unscaled).
    pub fn window_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::WIN_SIZE.start)
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::URGENT.start)
    }

    fn header_end(&self) -> usize {
        usize::from(self.header_len())
            .max(HEADER_LEN)
            .min(self.buffer.as_ref().len())
    }

    /// The options bytes (empty for a 20-byte header).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_end()]
    }

    /// Iterates over the options.
    pub fn options_iter(&self) -> TcpOptions<'_> {
        TcpOptions::new(self.options())
    }

    /// The data after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_end()..]
    }

    /// Length of the segment in sequence space: payload + SYN + FIN.
    pub fn segment_len(&self) -> usize {
        self.payload().len() + usize::from(self.syn()) + usize::from(self.fin())
    }

    /// Whether the checksum verifies for this pseudo-header. An address pair of mixed
    /// families never verifies for a real segment.
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        let data = self.buffer.as_ref();
        let ph = checksum::pseudo_header(src, dst, IpProtocol::Tcp.into(), data.len() as u32);
        checksum::fold(ph + checksum::sum(data)) == 0xFFFF
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
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

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, value: u32) {
        set_u32(self.buffer.as_mut(), field::SEQ_NUM.start, value);
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, value: u32) {
        set_u32(self.buffer.as_mut(), field::ACK_NUM.start, value);
    }

    /// Sets the header length in bytes (a multiple of 4 in 20..=60); keeps the reserved bits.
    pub fn set_header_len(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::DATA_OFF];
        *b = (*b & 0x0F) | ((value / 4) << 4);
    }

    /// Sets the flag byte.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = flags.0;
    }

    /// Sets the receive window.
    pub fn set_window_len(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::WIN_SIZE.start, value);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, value);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_at(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::URGENT.start, value);
    }

    /// Recomputes the checksum over the whole buffer and the pseudo-header.
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let ph = checksum::pseudo_header(src, dst, IpProtocol::Tcp.into(), data.len() as u32);
        let csum = checksum::finish(ph + checksum::sum(data));
        self.set_checksum(csum);
    }

    /// Replaces the source port, updating the checksum incrementally; returns the old port.
    #[inline]
    pub fn rewrite_src_port(&mut self, value: u16) -> u16 {
        let old = self.src_port();
        let csum = checksum::update16(self.checksum(), old, value);
        self.set_src_port(value);
        self.set_checksum(csum);
        old
    }

    /// Replaces the destination port, updating the checksum incrementally; returns the old
    /// port.
    #[inline]
    pub fn rewrite_dst_port(&mut self, value: u16) -> u16 {
        let old = self.dst_port();
        let csum = checksum::update16(self.checksum(), old, value);
        self.set_dst_port(value);
        self.set_checksum(csum);
        old
    }

    /// Folds an address change in the pseudo-header into the checksum (after a NAT rewrite
    /// of the IP header). `old` and `new` must be of the same family.
    #[inline]
    pub fn update_checksum_for_addr(&mut self, old: &IpAddr, new: &IpAddr) {
        let csum = update_for_addr(self.checksum(), old, new);
        self.set_checksum(csum);
    }

    /// The options bytes, mutable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_end();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// The data after the header, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_end();
        &mut self.buffer.as_mut()[start..]
    }
}

/// RFC 1624 update of a transport checksum for a pseudo-header address change.
#[inline]
pub(crate) fn update_for_addr(csum: u16, old: &IpAddr, new: &IpAddr) -> u16 {
    // The IPv4 case stays small enough to inline (and to fold away the match when the
    // caller's addresses are known to be IPv4).
    match (old, new) {
        (IpAddr::V4(o), IpAddr::V4(n)) => checksum::update32(csum, o.to_bits(), n.to_bits()),
        _ => update_for_addr_v6(csum, old, new),
    }
}

/// [`update_for_addr`] with an IPv6 address on either side.
#[inline(never)]
fn update_for_addr_v6(csum: u16, old: &IpAddr, new: &IpAddr) -> u16 {
    match (old, new) {
        (IpAddr::V4(o), IpAddr::V4(n)) => checksum::update32(csum, o.to_bits(), n.to_bits()),
        (IpAddr::V6(o), IpAddr::V6(n)) => checksum::update_bytes(csum, &o.octets(), &n.octets()),
        (IpAddr::V4(o), IpAddr::V6(n)) => {
            checksum::update_bytes(csum, &o.to_ipv6_mapped().octets(), &n.octets())
        }
        (IpAddr::V6(o), IpAddr::V4(n)) => {
            checksum::update_bytes(csum, &o.octets(), &n.to_ipv6_mapped().octets())
        }
    }
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// End of option list (kind 0).
    EndOfList,
    /// No-operation padding (kind 1).
    NoOperation,
    /// Maximum segment size (kind 2).
    MaxSegmentSize(u16),
    /// Window scale shift (kind 3).
    WindowScale(u8),
    /// SACK permitted (kind 4).
    SackPermitted,
    /// SACK blocks (kind 5): raw left/right edge pairs.
    SackRange(&'a [u8]),
    /// Timestamps (kind 8).
    Timestamp {
        /// TSval.
        tsval: u32,
        /// TSecr.
        tsecr: u32,
    },
    /// Any other option: kind and the bytes after the length byte.
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option data.
        data: &'a [u8],
    },
}

impl<'a> TcpOption<'a> {
    /// Parses the option at the start of `data`; returns it and the rest of the bytes.
    ///
    /// [`Error::Truncated`] if the option runs past `data`, [`Error::Malformed`] for a length
    /// below 2 or a wrong length for a known kind.
    pub fn parse(data: &'a [u8]) -> Result<(&'a [u8], TcpOption<'a>)> {
        let kind = *data.first().ok_or(Error::Truncated)?;
        match kind {
            0 => return Ok((&data[1..], TcpOption::EndOfList)),
            1 => return Ok((&data[1..], TcpOption::NoOperation)),
            _ => {}
        }
        let len = usize::from(*data.get(1).ok_or(Error::Truncated)?);
        if len < 2 {
            return Err(Error::Malformed);
        }
        let body = data.get(2..len).ok_or(Error::Truncated)?;
        let option = match (kind, body.len()) {
            (2, 2) => TcpOption::MaxSegmentSize(get_u16(body, 0)),
            (3, 1) => TcpOption::WindowScale(body[0]),
            (4, 0) => TcpOption::SackPermitted,
            (5, n) if n % 8 == 0 => TcpOption::SackRange(body),
            (8, 8) => TcpOption::Timestamp {
                tsval: get_u32(body, 0),
                tsecr: get_u32(body, 4),
            },
            (2..=5 | 8, _) => return Err(Error::Malformed),
            _ => TcpOption::Unknown { kind, data: body },
        };
        Ok((&data[len..], option))
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::SackRange(d) | TcpOption::Unknown { data: d, .. } => 2 + d.len(),
            TcpOption::Timestamp { .. } => 10,
        }
    }

    /// Writes the option at the start of `buf` and returns the rest.
    ///
    /// # Panics
    /// If `buf` is shorter than [`buffer_len`](Self::buffer_len), or an option's data is
    /// longer than 253 bytes.
    pub fn emit<'b>(&self, buf: &'b mut [u8]) -> &'b mut [u8] {
        let len = self.buffer_len();
        let (head, rest) = buf.split_at_mut(len);
        match *self {
            TcpOption::EndOfList => head[0] = 0,
            TcpOption::NoOperation => head[0] = 1,
            TcpOption::MaxSegmentSize(mss) => {
                head[..2].copy_from_slice(&[2, 4]);
                set_u16(head, 2, mss);
            }
            TcpOption::WindowScale(shift) => head.copy_from_slice(&[3, 3, shift]),
            TcpOption::SackPermitted => head.copy_from_slice(&[4, 2]),
            TcpOption::SackRange(d) => {
                head[..2].copy_from_slice(&[5, len as u8]);
                head[2..].copy_from_slice(d);
            }
            TcpOption::Timestamp { tsval, tsecr } => {
                head[..2].copy_from_slice(&[8, 10]);
                set_u32(head, 2, tsval);
                set_u32(head, 6, tsecr);
            }
            TcpOption::Unknown { kind, data } => {
                head[..2].copy_from_slice(&[kind, len as u8]);
                head[2..].copy_from_slice(data);
            }
        }
        rest
    }
}

/// Iterator over the options of a segment. Yields `Err` once for malformed options and then
/// stops; stops after End of Option List.
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    data: &'a [u8],
    done: bool,
}

impl<'a> TcpOptions<'a> {
    /// Iterates over an options area.
    pub fn new(data: &'a [u8]) -> TcpOptions<'a> {
        TcpOptions { data, done: false }
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.data.is_empty() {
            return None;
        }
        match TcpOption::parse(self.data) {
            Ok((rest, option)) => {
                self.data = rest;
                if option == TcpOption::EndOfList {
                    self.done = true;
                }
                Some(Ok(option))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// A TCP segment with the fields needed to build test packets and simple replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: u32,
    /// Acknowledgment number (meaningful with ACK).
    pub ack_number: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Receive window.
    pub window_len: u16,
    /// MSS option, if present.
    pub max_seg_size: Option<u16>,
    /// Data.
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// Parses a checked segment and verifies its checksum ([`Error::Checksum`]). Options are
    /// validated; only MSS is kept.
    pub fn parse(packet: &TcpPacket<&'a [u8]>, src: &IpAddr, dst: &IpAddr) -> Result<TcpRepr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        let mut max_seg_size = None;
        for option in packet.options_iter() {
            if let TcpOption::MaxSegmentSize(mss) = option? {
                max_seg_size = Some(mss);
            }
        }
        let data: &'a [u8] = packet.buffer;
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window_len: packet.window_len(),
            max_seg_size,
            payload: &data[packet.header_end()..],
        })
    }

    /// Header length [`emit`](Self::emit) writes: 20, or 24 with MSS.
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + if self.max_seg_size.is_some() { 4 } else { 0 }
    }

    /// Bytes [`emit`](Self::emit) writes: header + payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes the segment and its checksum. The buffer must be exactly
    /// [`buffer_len`](Self::buffer_len) bytes (the checksum covers all of it).
    ///
    /// # Panics
    /// If the buffer is shorter than `buffer_len()`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut TcpPacket<T>,
        src: &IpAddr,
        dst: &IpAddr,
    ) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        packet.buffer.as_mut()[field::DATA_OFF] = 0;
        packet.set_header_len(self.header_len() as u8);
        packet.set_flags(self.flags);
        packet.set_window_len(self.window_len);
        packet.set_urgent_at(0);
        if let Some(mss) = self.max_seg_size {
            TcpOption::MaxSegmentSize(mss).emit(packet.options_mut());
        }
        let len = self.payload.len();
        packet.payload_mut()[..len].copy_from_slice(self.payload);
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

    /// (TCP bytes, src, dst) of a captured Ethernet frame.
    fn segment(frame: &[u8]) -> (&[u8], IpAddr, IpAddr) {
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
            (
                &frame[54..14 + ip.total_len()],
                ip.src_addr().into(),
                ip.dst_addr().into(),
            )
        }
    }

    const SEGMENTS: [&[u8]; 10] = [
        fixtures::TCP4_SYN,
        fixtures::TCP4_SYNACK,
        fixtures::TCP4_ACK,
        fixtures::TCP4_PSH,
        fixtures::TCP4_FIN,
        fixtures::TCP4_RST,
        fixtures::TCP6_SYN,
        fixtures::TCP6_SYNACK,
        fixtures::TCP6_PSH,
        fixtures::TCP6_RST,
    ];

    #[test]
    fn deconstruct_against_etherparse() {
        for frame in SEGMENTS {
            let (seg, src, dst) = segment(frame);
            let p = TcpPacket::new_checked(seg).unwrap();
            let o = etherparse::TcpSlice::from_slice(seg).unwrap();
            assert_eq!(p.src_port(), o.source_port());
            assert_eq!(p.dst_port(), o.destination_port());
            assert_eq!(p.seq_number(), o.sequence_number());
            assert_eq!(p.ack_number(), o.acknowledgment_number());
            assert_eq!(usize::from(p.header_len()), o.header_len());
            assert_eq!(
                (
                    p.fin(),
                    p.syn(),
                    p.rst(),
                    p.psh(),
                    p.ack(),
                    p.urg(),
                    p.ece(),
                    p.cwr()
                ),
                (
                    o.fin(),
                    o.syn(),
                    o.rst(),
                    o.psh(),
                    o.ack(),
                    o.urg(),
                    o.ece(),
                    o.cwr()
                )
            );
            assert_eq!(p.window_len(), o.window_size());
            assert_eq!(p.checksum(), o.checksum());
            assert_eq!(p.urgent_at(), o.urgent_pointer());
            assert_eq!(p.options(), o.options());
            assert_eq!(p.payload(), o.payload());
            assert!(p.verify_checksum(&src, &dst));
            let expected = match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => o
                    .to_header()
                    .calc_checksum_ipv4_raw(s.octets(), d.octets(), o.payload())
                    .unwrap(),
                (IpAddr::V6(s), IpAddr::V6(d)) => o
                    .to_header()
                    .calc_checksum_ipv6_raw(s.octets(), d.octets(), o.payload())
                    .unwrap(),
                _ => unreachable!(),
            };
            assert_eq!(p.checksum(), expected);
            assert!(!p.verify_checksum(&dst, &IpAddr::V4(Ipv4Addr::new(198, 18, 9, 9))));
        }
    }

    #[test]
    fn syn_options() {
        let (seg, _, _) = segment(fixtures::TCP4_SYN);
        let p = TcpPacket::new_checked(seg).unwrap();
        assert_eq!(p.flags(), TcpFlags::SYN);
        let opts: Vec<TcpOption<'_>> = p.options_iter().map(|o| o.unwrap()).collect();
        assert_eq!(opts[0], TcpOption::MaxSegmentSize(1240));
        assert_eq!(opts[1], TcpOption::SackPermitted);
        assert!(matches!(opts[2], TcpOption::Timestamp { tsecr: 0, .. }));
        assert_eq!(opts[3], TcpOption::NoOperation);
        assert!(matches!(opts[4], TcpOption::WindowScale(_)));
        assert_eq!(opts.len(), 5);
        // Re-emitting the parsed options reproduces the bytes.
        let mut out = [0u8; 20];
        let mut rest = &mut out[..];
        for o in &opts {
            rest = o.emit(rest);
        }
        assert!(rest.is_empty());
        assert_eq!(&out[..], p.options());
        assert_eq!(
            std::format!("{:?}", TcpFlags::SYN | TcpFlags::ACK),
            "TcpFlags(SYN|ACK)"
        );
        assert_eq!(p.segment_len(), 1);
    }

    #[test]
    fn malformed_options() {
        assert_eq!(TcpOption::parse(&[2, 1, 0, 0]), Err(Error::Malformed));
        assert_eq!(TcpOption::parse(&[2, 4, 0]), Err(Error::Truncated));
        assert_eq!(TcpOption::parse(&[2, 3, 0]), Err(Error::Malformed));
        assert_eq!(TcpOption::parse(&[]), Err(Error::Truncated));
        let mut it = TcpOptions::new(&[1, 9, 0]);
        assert_eq!(it.next(), Some(Ok(TcpOption::NoOperation)));
        assert_eq!(it.next(), Some(Err(Error::Malformed)));
        assert_eq!(it.next(), None);
        let mut it = TcpOptions::new(&[0, 2, 4]);
        assert_eq!(it.next(), Some(Ok(TcpOption::EndOfList)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn check_len_errors() {
        let (seg, _, _) = segment(fixtures::TCP4_SYN);
        assert_eq!(
            TcpPacket::new_checked(&seg[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            TcpPacket::new_checked(&seg[..39]).unwrap_err(),
            Error::Truncated
        );
        let mut bad = seg.to_vec();
        bad[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&bad[..]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn construct_rst_exactly() {
        for frame in [fixtures::TCP4_RST, fixtures::TCP6_RST, fixtures::TCP4_PSH] {
            let (seg, src, dst) = segment(frame);
            let p = TcpPacket::new_checked(seg).unwrap();
            let repr = TcpRepr::parse(&p, &src, &dst).unwrap();
            if p.options().is_empty() {
                let mut bytes = vec![0u8; repr.buffer_len()];
                repr.emit(&mut TcpPacket::new_unchecked(&mut bytes[..]), &src, &dst);
                assert_eq!(&bytes[..], seg);
            } else {
                assert_eq!(repr.payload, b"ping");
            }
        }
    }

    #[test]
    fn parse_rejects_bad_checksum() {
        let (seg, src, dst) = segment(fixtures::TCP4_ACK);
        let mut bad = seg.to_vec();
        bad[4] ^= 0x80;
        let p = TcpPacket::new_checked(&bad[..]).unwrap();
        assert_eq!(TcpRepr::parse(&p, &src, &dst).unwrap_err(), Error::Checksum);
    }

    proptest! {
        #[test]
        fn nat_rewrite_matches_recompute(
            which in 0usize..10, new_addr in any::<[u8; 16]>(), new_port in any::<u16>(),
            rewrite_src in any::<bool>(),
        ) {
            let (seg, src, dst) = segment(SEGMENTS[which]);
            let mut bytes = seg.to_vec();
            let mut p = TcpPacket::new_checked(&mut bytes[..]).unwrap();
            let new_ip = match src {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(new_addr[0], new_addr[1], new_addr[2], new_addr[3])),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(new_addr)),
            };
            let (s2, d2) = if rewrite_src {
                p.rewrite_src_port(new_port);
                p.update_checksum_for_addr(&src, &new_ip);
                (new_ip, dst)
            } else {
                p.rewrite_dst_port(new_port);
                p.update_checksum_for_addr(&dst, &new_ip);
                (src, new_ip)
            };
            prop_assert!(p.verify_checksum(&s2, &d2));
            let incremental = p.checksum();
            // Independent oracle: etherparse's full recomputation.
            let o = etherparse::TcpSlice::from_slice(&bytes).unwrap();
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
            src_port in any::<u16>(), dst_port in any::<u16>(), seq in any::<u32>(),
            ack in any::<u32>(), flags in any::<u8>(), win in any::<u16>(),
            mss in proptest::option::of(any::<u16>()),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            v6 in any::<bool>(),
        ) {
            let (s, d): (IpAddr, IpAddr) = if v6 {
                ("2001:db8::1".parse::<Ipv6Addr>().unwrap().into(), "2001:db8::2".parse::<Ipv6Addr>().unwrap().into())
            } else {
                (Ipv4Addr::new(198, 18, 0, 1).into(), Ipv4Addr::new(198, 18, 0, 2).into())
            };
            let repr = TcpRepr {
                src_port, dst_port, seq_number: seq, ack_number: ack,
                flags: TcpFlags::from_bits(flags), window_len: win, max_seg_size: mss,
                payload: &payload,
            };
            let mut bytes = vec![0u8; repr.buffer_len()];
            repr.emit(&mut TcpPacket::new_unchecked(&mut bytes[..]), &s, &d);
            let p = TcpPacket::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(TcpRepr::parse(&p, &s, &d).unwrap(), repr);
            let o = etherparse::TcpSlice::from_slice(&bytes).unwrap();
            let expected = match (s, d) {
                (IpAddr::V4(a), IpAddr::V4(b)) => o.to_header().calc_checksum_ipv4_raw(a.octets(), b.octets(), o.payload()).unwrap(),
                (IpAddr::V6(a), IpAddr::V6(b)) => o.to_header().calc_checksum_ipv6_raw(a.octets(), b.octets(), o.payload()).unwrap(),
                _ => unreachable!(),
            };
            prop_assert_eq!(p.checksum(), expected);
        }
    }
}
