//! ICMP for IPv4 (RFC 792, RFC 1191 for "fragmentation needed" with MTU).

use crate::checksum;
use crate::field::{Field, Rest, get_u16, set_u16};
use crate::ip::InvokingPacket;
use crate::{Error, Result};

enum_with_unknown! {
    /// ICMPv4 message type.
    pub enum Icmpv4Message(u8) {
        /// Echo reply.
        EchoReply = 0,
        /// Destination unreachable.
        DstUnreachable = 3,
        /// Source quench (deprecated by RFC 6633, still parsed).
        SourceQuench = 4,
        /// Redirect.
        Redirect = 5,
        /// Echo request.
        EchoRequest = 8,
        /// Router advertisement.
        RouterAdvert = 9,
        /// Router solicitation.
        RouterSolicit = 10,
        /// Time exceeded.
        TimeExceeded = 11,
        /// Parameter problem.
        ParamProblem = 12,
        /// Timestamp request.
        Timestamp = 13,
        /// Timestamp reply.
        TimestampReply = 14,
    }
}

impl Icmpv4Message {
    /// Whether this type is an error message (which quotes an invoking packet and must never
    /// trigger another ICMP error).
    pub fn is_error(self) -> bool {
        matches!(
            self,
            Icmpv4Message::DstUnreachable
                | Icmpv4Message::SourceQuench
                | Icmpv4Message::Redirect
                | Icmpv4Message::TimeExceeded
                | Icmpv4Message::ParamProblem
        )
    }
}

enum_with_unknown! {
    /// Codes of "destination unreachable".
    pub enum Icmpv4DstUnreachable(u8) {
        /// Network unreachable.
        NetUnreachable = 0,
        /// Host unreachable.
        HostUnreachable = 1,
        /// Protocol unreachable.
        ProtoUnreachable = 2,
        /// Port unreachable.
        PortUnreachable = 3,
        /// Fragmentation needed and DF set (carries the next-hop MTU).
        FragRequired = 4,
        /// Source route failed.
        SrcRouteFailed = 5,
        /// Destination network unknown.
        DstNetUnknown = 6,
        /// Destination host unknown.
        DstHostUnknown = 7,
        /// Source host isolated.
        SrcHostIsolated = 8,
        /// Network administratively prohibited.
        NetProhibited = 9,
        /// Host administratively prohibited.
        HostProhibited = 10,
        /// Network unreachable for ToS.
        NetUnreachToS = 11,
        /// Host unreachable for ToS.
        HostUnreachToS = 12,
        /// Communication administratively prohibited.
        CommProhibited = 13,
        /// Host precedence violation.
        HostPrecedViol = 14,
        /// Precedence cutoff in effect.
        PrecedCutoff = 15,
    }
}

enum_with_unknown! {
    /// Codes of "time exceeded".
    pub enum Icmpv4TimeExceeded(u8) {
        /// TTL expired in transit.
        TtlExpired = 0,
        /// Fragment reassembly time exceeded.
        FragExpired = 1,
    }
}

mod field {
    use super::{Field, Rest};
    pub(super) const TYPE: usize = 0;
    pub(super) const CODE: usize = 1;
    pub(super) const CHECKSUM: Field = 2..4;
    pub(super) const ECHO_IDENT: Field = 4..6;
    pub(super) const ECHO_SEQNO: Field = 6..8;
    pub(super) const MTU: Field = 6..8;
    pub(super) const DATA: Rest = 8..;
}

/// Length of the ICMPv4 header (type, code, checksum and the 4 type-specific bytes).
pub const HEADER_LEN: usize = field::DATA.start;

/// A view of an ICMPv4 message. The buffer must be exactly the message (the IP payload),
/// since the checksum covers all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps a buffer without checks; getters may panic if it is shorter than 8 bytes.
    pub const fn new_unchecked(buffer: T) -> Icmpv4Packet<T> {
        Icmpv4Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Icmpv4Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// [`Error::Truncated`] if the buffer is shorter than the 8-byte header.
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

    /// Message type.
    pub fn msg_type(&self) -> Icmpv4Message {
        Icmpv4Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// Message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Echo identifier (echo request/reply).
    pub fn echo_ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }

    /// Echo sequence number (echo request/reply).
    pub fn echo_seq_no(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ECHO_SEQNO.start)
    }

    /// Next-hop MTU (destination unreachable, code "fragmentation needed"; RFC 1191).
    pub fn next_hop_mtu(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::MTU.start)
    }

    /// Everything after the 8-byte header: echo data, or the invoking packet of an error.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }

    /// The quoted invoking datagram of an error message (IP header + at least 8 bytes of
    /// its payload), or `None` for non-error types.
    pub fn invoking_packet(&self) -> Option<&[u8]> {
        self.msg_type().is_error().then(|| self.data())
    }

    /// Parses the quoted invoking datagram of an error message ([`Error::Unsupported`] for
    /// non-error types).
    pub fn parse_invoking(&self) -> Result<InvokingPacket> {
        InvokingPacket::parse_ipv4(self.invoking_packet().ok_or(Error::Unsupported)?)
    }

    /// Whether the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref())) == 0xFFFF
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets the message type (checksum not updated).
    pub fn set_msg_type(&mut self, value: Icmpv4Message) {
        self.buffer.as_mut()[field::TYPE] = value.into();
    }

    /// Sets the message code (checksum not updated).
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, value);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::ECHO_IDENT.start, value);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::ECHO_SEQNO.start, value);
    }

    /// Sets the next-hop MTU (and zeroes the unused bytes before it).
    pub fn set_next_hop_mtu(&mut self, value: u16) {
        let b = self.buffer.as_mut();
        set_u16(b, field::ECHO_IDENT.start, 0);
        set_u16(b, field::MTU.start, value);
    }

    /// Zeroes the four type-specific header bytes ("unused" in most error messages).
    pub fn clear_rest_of_header(&mut self) {
        self.buffer.as_mut()[4..8].fill(0);
    }

    /// Recomputes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let csum = checksum::compute(self.buffer.as_ref());
        self.set_checksum(csum);
    }

    /// The data after the header, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }
}

/// An ICMPv4 message this crate builds or answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    /// Echo request.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Destination unreachable.
    DstUnreachable {
        /// Code.
        reason: Icmpv4DstUnreachable,
        /// Next-hop MTU for `FragRequired`, 0 otherwise.
        next_hop_mtu: u16,
        /// Quoted invoking datagram.
        data: &'a [u8],
    },
    /// Time exceeded.
    TimeExceeded {
        /// Code.
        reason: Icmpv4TimeExceeded,
        /// Quoted invoking datagram.
        data: &'a [u8],
    },
    /// Source quench.
    SourceQuench {
        /// Quoted invoking datagram.
        data: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses a checked message and verifies its checksum ([`Error::Checksum`]); other
    /// message types than the variants are [`Error::Unsupported`].
    pub fn parse(packet: &Icmpv4Packet<&'a [u8]>) -> Result<Icmpv4Repr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        let buffer: &'a [u8] = packet.buffer;
        let data = &buffer[field::DATA];
        Ok(match (packet.msg_type(), packet.msg_code()) {
            (Icmpv4Message::EchoRequest, 0) => Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            (Icmpv4Message::EchoReply, 0) => Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            (Icmpv4Message::DstUnreachable, code) => {
                let reason = Icmpv4DstUnreachable::from(code);
                Icmpv4Repr::DstUnreachable {
                    reason,
                    next_hop_mtu: if reason == Icmpv4DstUnreachable::FragRequired {
                        packet.next_hop_mtu()
                    } else {
                        0
                    },
                    data,
                }
            }
            (Icmpv4Message::TimeExceeded, code) => Icmpv4Repr::TimeExceeded {
                reason: Icmpv4TimeExceeded::from(code),
                data,
            },
            (Icmpv4Message::SourceQuench, 0) => Icmpv4Repr::SourceQuench { data },
            _ => return Err(Error::Unsupported),
        })
    }

    /// The data part.
    pub fn data(&self) -> &'a [u8] {
        match *self {
            Icmpv4Repr::EchoRequest { data, .. }
            | Icmpv4Repr::EchoReply { data, .. }
            | Icmpv4Repr::DstUnreachable { data, .. }
            | Icmpv4Repr::TimeExceeded { data, .. }
            | Icmpv4Repr::SourceQuench { data } => data,
        }
    }

    /// Bytes [`emit`](Self::emit) writes: 8 + data.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data().len()
    }

    /// Writes the message with a valid checksum.
    ///
    /// # Panics
    /// If the buffer is shorter than [`buffer_len`](Self::buffer_len). The checksum covers
    /// the whole buffer, so pass exactly `buffer_len()` bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv4Packet<T>) {
        packet.clear_rest_of_header();
        match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, .. } => {
                packet.set_msg_type(Icmpv4Message::EchoRequest);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
            }
            Icmpv4Repr::EchoReply { ident, seq_no, .. } => {
                packet.set_msg_type(Icmpv4Message::EchoReply);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                ..
            } => {
                packet.set_msg_type(Icmpv4Message::DstUnreachable);
                packet.set_msg_code(reason.into());
                packet.set_next_hop_mtu(next_hop_mtu);
            }
            Icmpv4Repr::TimeExceeded { reason, .. } => {
                packet.set_msg_type(Icmpv4Message::TimeExceeded);
                packet.set_msg_code(reason.into());
            }
            Icmpv4Repr::SourceQuench { .. } => {
                packet.set_msg_type(Icmpv4Message::SourceQuench);
                packet.set_msg_code(0);
            }
        }
        let data = self.data();
        packet.data_mut()[..data.len()].copy_from_slice(data);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::ip::{Fragment, IpProtocol};
    use core::net::{IpAddr, Ipv4Addr};
    use proptest::prelude::*;

    fn message(frame: &[u8]) -> &[u8] {
        let ip = crate::Ipv4Packet::new_checked(&frame[14..]).unwrap();
        &frame[14 + usize::from(ip.header_len())..14 + usize::from(ip.total_len())]
    }

    #[test]
    fn deconstruct_against_etherparse() {
        for frame in [
            fixtures::ICMP4_ECHO_REQUEST,
            fixtures::ICMP4_ECHO_REPLY,
            fixtures::ICMP4_TIME_EXCEEDED,
            fixtures::ICMP4_FRAG_NEEDED,
            fixtures::ICMP4_PORT_UNREACHABLE,
            fixtures::ICMP4_PORT_UNREACHABLE_576,
        ] {
            let m = message(frame);
            let p = Icmpv4Packet::new_checked(m).unwrap();
            let o = etherparse::Icmpv4Slice::from_slice(m).unwrap();
            assert_eq!(u8::from(p.msg_type()), o.type_u8());
            assert_eq!(p.msg_code(), o.code_u8());
            assert_eq!(p.checksum(), o.checksum());
            assert_eq!(p.data(), o.payload());
            assert!(p.verify_checksum());
            assert_eq!(o.icmp_type().calc_checksum(o.payload()), p.checksum());
            match o.icmp_type() {
                etherparse::Icmpv4Type::EchoRequest(e) | etherparse::Icmpv4Type::EchoReply(e) => {
                    assert_eq!((p.echo_ident(), p.echo_seq_no()), (e.id, e.seq));
                }
                etherparse::Icmpv4Type::DestinationUnreachable(
                    etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu },
                ) => assert_eq!(p.next_hop_mtu(), next_hop_mtu),
                _ => {}
            }
        }
    }

    #[test]
    fn errors_quote_the_invoking_packet() {
        let p = Icmpv4Packet::new_checked(message(fixtures::ICMP4_FRAG_NEEDED)).unwrap();
        assert_eq!(p.msg_type(), Icmpv4Message::DstUnreachable);
        assert_eq!(
            Icmpv4DstUnreachable::from(p.msg_code()),
            Icmpv4DstUnreachable::FragRequired
        );
        assert_eq!(p.next_hop_mtu(), 1280);
        let inv = p.parse_invoking().unwrap();
        assert_eq!(inv.src_addr, IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)));
        assert_eq!(inv.dst_addr, IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)));
        assert_eq!(inv.protocol, IpProtocol::Udp);
        assert_eq!(inv.fragment, Fragment::None);
        assert_eq!(inv.l4_offset, 20);
        let (sport, dport) = inv.ports.unwrap();
        assert_eq!(dport, 5353);
        // The quoted header is the one the client sent (fixture 20).
        let sent = &fixtures::UDP4_DF_1400[14..];
        assert_eq!(&p.data()[..28], &sent[..28]);
        assert_eq!(sport, u16::from_be_bytes([sent[20], sent[21]]));

        let te = Icmpv4Packet::new_checked(message(fixtures::ICMP4_TIME_EXCEEDED)).unwrap();
        let inv = te.parse_invoking().unwrap();
        assert_eq!(inv.protocol, IpProtocol::Icmp);
        assert_eq!(inv.ports, None);
        let echo = Icmpv4Packet::new_checked(message(fixtures::ICMP4_ECHO_REQUEST)).unwrap();
        assert_eq!(echo.invoking_packet(), None);
        assert_eq!(echo.parse_invoking(), Err(Error::Unsupported));
    }

    #[test]
    fn construct_exact_bytes() {
        for frame in [
            fixtures::ICMP4_ECHO_REQUEST,
            fixtures::ICMP4_ECHO_REPLY,
            fixtures::ICMP4_TIME_EXCEEDED,
            fixtures::ICMP4_FRAG_NEEDED,
            fixtures::ICMP4_PORT_UNREACHABLE,
        ] {
            let m = message(frame);
            let repr = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(m).unwrap()).unwrap();
            let mut bytes = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Icmpv4Packet::new_unchecked(&mut bytes[..]));
            assert_eq!(&bytes[..], m);
        }
        let mut bad = message(fixtures::ICMP4_ECHO_REPLY).to_vec();
        bad[9] ^= 1;
        assert_eq!(
            Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&bad[..]).unwrap()),
            Err(Error::Checksum)
        );
        assert_eq!(
            Icmpv4Packet::new_checked(&bad[..7]).unwrap_err(),
            Error::Truncated
        );
    }

    proptest! {
        #[test]
        fn repr_round_trip(
            kind in 0u8..5, a in any::<u16>(), b in any::<u16>(), code in any::<u8>(),
            data in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let repr = match kind {
                0 => Icmpv4Repr::EchoRequest { ident: a, seq_no: b, data: &data },
                1 => Icmpv4Repr::EchoReply { ident: a, seq_no: b, data: &data },
                2 => {
                    let reason = Icmpv4DstUnreachable::from(code);
                    let next_hop_mtu = if reason == Icmpv4DstUnreachable::FragRequired { a } else { 0 };
                    Icmpv4Repr::DstUnreachable { reason, next_hop_mtu, data: &data }
                }
                3 => Icmpv4Repr::TimeExceeded { reason: Icmpv4TimeExceeded::from(code), data: &data },
                _ => Icmpv4Repr::SourceQuench { data: &data },
            };
            let mut bytes = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Icmpv4Packet::new_unchecked(&mut bytes[..]));
            let p = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(Icmpv4Repr::parse(&p).unwrap(), repr);
            let o = etherparse::Icmpv4Slice::from_slice(&bytes).unwrap();
            prop_assert_eq!(o.icmp_type().calc_checksum(o.payload()), p.checksum());
        }
    }
}
