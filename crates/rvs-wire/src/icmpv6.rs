//! ICMPv6 (RFC 4443) and the Neighbor Discovery messages the director answers (RFC 4861).

use core::net::{IpAddr, Ipv6Addr};

use crate::checksum;
use crate::ethernet::EthernetAddress;
use crate::field::{Field, Rest, get_array, get_u16, get_u32, set_u16, set_u32};
use crate::ip::{InvokingPacket, IpProtocol};
use crate::{Error, Result};

enum_with_unknown! {
    /// ICMPv6 message type.
    pub enum Icmpv6Message(u8) {
        /// Destination unreachable.
        DstUnreachable = 1,
        /// Packet too big.
        PktTooBig = 2,
        /// Time exceeded.
        TimeExceeded = 3,
        /// Parameter problem.
        ParamProblem = 4,
        /// Echo request.
        EchoRequest = 128,
        /// Echo reply.
        EchoReply = 129,
        /// Multicast listener query.
        MldQuery = 130,
        /// Router solicitation.
        RouterSolicit = 133,
        /// Router advertisement.
        RouterAdvert = 134,
        /// Neighbor solicitation.
        NeighborSolicit = 135,
        /// Neighbor advertisement.
        NeighborAdvert = 136,
        /// Redirect.
        Redirect = 137,
        /// Multicast listener report v2.
        MldReport = 143,
    }
}

impl Icmpv6Message {
    /// Whether this is an error message (types 0..=127).
    pub fn is_error(self) -> bool {
        u8::from(self) < 128
    }

    /// Whether this Neighbor Discovery type carries a target address at bytes 8..24.
    fn has_target(self) -> bool {
        matches!(
            self,
            Icmpv6Message::NeighborSolicit
                | Icmpv6Message::NeighborAdvert
                | Icmpv6Message::Redirect
        )
    }
}

enum_with_unknown! {
    /// Codes of "destination unreachable".
    pub enum Icmpv6DstUnreachable(u8) {
        /// No route to destination.
        NoRoute = 0,
        /// Communication administratively prohibited.
        AdminProhibit = 1,
        /// Beyond scope of source address.
        BeyondScope = 2,
        /// Address unreachable.
        AddrUnreachable = 3,
        /// Port unreachable.
        PortUnreachable = 4,
        /// Source address failed ingress/egress policy.
        FailedPolicy = 5,
        /// Reject route to destination.
        RejectRoute = 6,
    }
}

enum_with_unknown! {
    /// Codes of "time exceeded".
    pub enum Icmpv6TimeExceeded(u8) {
        /// Hop limit exceeded in transit.
        HopLimitExceeded = 0,
        /// Fragment reassembly time exceeded.
        FragReassemExceeded = 1,
    }
}

enum_with_unknown! {
    /// Codes of "parameter problem".
    pub enum Icmpv6ParamProblem(u8) {
        /// Erroneous header field.
        ErroneousHdrField = 0,
        /// Unrecognized next header.
        UnrecognizedNxtHdr = 1,
        /// Unrecognized IPv6 option.
        UnrecognizedOption = 2,
    }
}

/// Flags of a neighbor advertisement (byte 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NdiscNeighborFlags(u8);

impl NdiscNeighborFlags {
    /// No flags.
    pub const NONE: NdiscNeighborFlags = NdiscNeighborFlags(0);
    /// R: the sender is a router.
    pub const ROUTER: NdiscNeighborFlags = NdiscNeighborFlags(0x80);
    /// S: sent in response to a solicitation.
    pub const SOLICITED: NdiscNeighborFlags = NdiscNeighborFlags(0x40);
    /// O: override an existing cache entry.
    pub const OVERRIDE: NdiscNeighborFlags = NdiscNeighborFlags(0x20);

    /// Flags from the raw byte (reserved bits dropped).
    pub const fn from_bits(bits: u8) -> NdiscNeighborFlags {
        NdiscNeighborFlags(bits & 0xE0)
    }
    /// The raw byte.
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: NdiscNeighborFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// R set.
    pub const fn router(self) -> bool {
        self.contains(Self::ROUTER)
    }
    /// S set.
    pub const fn solicited(self) -> bool {
        self.contains(Self::SOLICITED)
    }
    /// O set.
    pub const fn override_(self) -> bool {
        self.contains(Self::OVERRIDE)
    }
}

impl core::ops::BitOr for NdiscNeighborFlags {
    type Output = NdiscNeighborFlags;
    fn bitor(self, rhs: NdiscNeighborFlags) -> NdiscNeighborFlags {
        NdiscNeighborFlags(self.0 | rhs.0)
    }
}

mod field {
    use super::{Field, Rest};
    pub(super) const TYPE: usize = 0;
    pub(super) const CODE: usize = 1;
    pub(super) const CHECKSUM: Field = 2..4;
    pub(super) const ECHO_IDENT: Field = 4..6;
    pub(super) const ECHO_SEQNO: Field = 6..8;
    pub(super) const MTU: Field = 4..8;
    pub(super) const POINTER: Field = 4..8;
    pub(super) const NA_FLAGS: usize = 4;
    pub(super) const DATA: Rest = 8..;
    pub(super) const TARGET: Field = 8..24;
    pub(super) const NDISC_OPTIONS: Rest = 24..;
}

/// Length of the ICMPv6 header (type, code, checksum, 4 type-specific bytes).
pub const HEADER_LEN: usize = field::DATA.start;

/// Length of a neighbor solicitation/advertisement without options.
pub const NDISC_NEIGHBOR_LEN: usize = field::NDISC_OPTIONS.start;

/// Length of a link-layer address option for Ethernet.
pub const LLADDR_OPTION_LEN: usize = 8;

/// Minimum IPv6 MTU: an ICMPv6 error must fit in it (RFC 4443 §2.4(c)).
pub const MIN_MTU: usize = 1280;

/// A view of an ICMPv6 message. The buffer must be exactly the message (the upper-layer
/// payload), since the checksum covers all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wraps a buffer without checks; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Icmpv6Packet<T> {
        Icmpv6Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Icmpv6Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// [`Error::Truncated`] if the buffer is shorter than 8 bytes, or than 24 bytes for
    /// neighbor solicitation/advertisement and redirect (which carry a target address).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.msg_type().has_target() && len < NDISC_NEIGHBOR_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    pub fn msg_type(&self) -> Icmpv6Message {
        Icmpv6Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// Message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Echo identifier.
    pub fn echo_ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }

    /// Echo sequence number.
    pub fn echo_seq_no(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ECHO_SEQNO.start)
    }

    /// MTU of a packet-too-big message.
    pub fn pkt_too_big_mtu(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::MTU.start)
    }

    /// Pointer of a parameter-problem message.
    pub fn param_problem_ptr(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::POINTER.start)
    }

    /// Flags of a neighbor advertisement.
    pub fn neighbor_flags(&self) -> NdiscNeighborFlags {
        NdiscNeighborFlags::from_bits(self.buffer.as_ref()[field::NA_FLAGS])
    }

    /// Target address of a neighbor solicitation/advertisement or redirect.
    ///
    /// # Panics
    /// For other message types shorter than 24 bytes (`check_len` only guarantees the 24
    /// bytes for the types that have a target).
    pub fn target_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(get_array::<16>(self.buffer.as_ref(), field::TARGET.start))
    }

    /// Neighbor Discovery options after the target address (empty if the message is shorter).
    pub fn ndisc_options(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(field::NDISC_OPTIONS)
            .unwrap_or(&[])
    }

    /// Iterates over the Neighbor Discovery options.
    pub fn ndisc_options_iter(&self) -> NdiscOptions<'_> {
        NdiscOptions::new(self.ndisc_options())
    }

    /// Everything after the 8-byte header: echo data, or the invoking packet of an error.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }

    /// The quoted invoking packet of an error message, or `None` for other types.
    pub fn invoking_packet(&self) -> Option<&[u8]> {
        self.msg_type().is_error().then(|| self.data())
    }

    /// Parses the quoted invoking packet of an error message ([`Error::Unsupported`] for
    /// non-error types).
    pub fn parse_invoking(&self) -> Result<InvokingPacket> {
        InvokingPacket::parse_ipv6(self.invoking_packet().ok_or(Error::Unsupported)?)
    }

    /// Whether the checksum verifies with the IPv6 pseudo-header of `src` and `dst`.
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        let data = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v6(src, dst, IpProtocol::Icmpv6.into(), data.len() as u32);
        checksum::fold(ph + checksum::sum(data)) == 0xFFFF
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the message type (checksum not updated).
    pub fn set_msg_type(&mut self, value: Icmpv6Message) {
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

    /// Sets the MTU of a packet-too-big message.
    pub fn set_pkt_too_big_mtu(&mut self, value: u32) {
        set_u32(self.buffer.as_mut(), field::MTU.start, value);
    }

    /// Sets the pointer of a parameter-problem message.
    pub fn set_param_problem_ptr(&mut self, value: u32) {
        set_u32(self.buffer.as_mut(), field::POINTER.start, value);
    }

    /// Sets the neighbor advertisement flags (and zeroes the reserved bytes).
    pub fn set_neighbor_flags(&mut self, flags: NdiscNeighborFlags) {
        let b = self.buffer.as_mut();
        b[4..8].fill(0);
        b[field::NA_FLAGS] = flags.bits();
    }

    /// Sets the target address.
    ///
    /// # Panics
    /// If the buffer is shorter than 24 bytes.
    pub fn set_target_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET].copy_from_slice(&value.octets());
    }

    /// Zeroes the four type-specific header bytes.
    pub fn clear_rest_of_header(&mut self) {
        self.buffer.as_mut()[4..8].fill(0);
    }

    /// Recomputes the checksum with the pseudo-header of `src` and `dst`.
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v6(src, dst, IpProtocol::Icmpv6.into(), data.len() as u32);
        let csum = checksum::finish(ph + checksum::sum(data));
        self.set_checksum(csum);
    }

    /// The data after the 8-byte header, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }

    /// Neighbor Discovery options, mutable (empty if the message is shorter than 24 bytes).
    pub fn ndisc_options_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(field::NDISC_OPTIONS)
            .unwrap_or(&mut [])
    }
}

/// A Neighbor Discovery option (RFC 4861 §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdiscOption<'a> {
    /// Source link-layer address (type 1) of Ethernet size.
    SourceLinkLayerAddr(EthernetAddress),
    /// Target link-layer address (type 2) of Ethernet size.
    TargetLinkLayerAddr(EthernetAddress),
    /// Any other option (or a link-layer address that is not 6 bytes): type and the bytes
    /// after the length byte.
    Unknown {
        /// Option type.
        kind: u8,
        /// Option data.
        data: &'a [u8],
    },
}

impl<'a> NdiscOption<'a> {
    /// Parses the option at the start of `data`; returns it and the rest.
    ///
    /// [`Error::Malformed`] for a zero length (RFC 4861 says drop the packet),
    /// [`Error::Truncated`] if it runs past `data`.
    pub fn parse(data: &'a [u8]) -> Result<(&'a [u8], NdiscOption<'a>)> {
        if data.len() < 2 {
            return Err(Error::Truncated);
        }
        let len = usize::from(data[1]) * 8;
        if len == 0 {
            return Err(Error::Malformed);
        }
        let body = data.get(2..len).ok_or(Error::Truncated)?;
        let option = match (data[0], len) {
            (1, LLADDR_OPTION_LEN) => {
                NdiscOption::SourceLinkLayerAddr(EthernetAddress::from_bytes(body))
            }
            (2, LLADDR_OPTION_LEN) => {
                NdiscOption::TargetLinkLayerAddr(EthernetAddress::from_bytes(body))
            }
            (kind, _) => NdiscOption::Unknown { kind, data: body },
        };
        Ok((&data[len..], option))
    }

    /// Bytes [`emit`](Self::emit) writes (a multiple of 8).
    pub fn buffer_len(&self) -> usize {
        match self {
            NdiscOption::SourceLinkLayerAddr(_) | NdiscOption::TargetLinkLayerAddr(_) => {
                LLADDR_OPTION_LEN
            }
            NdiscOption::Unknown { data, .. } => (2 + data.len()).div_ceil(8) * 8,
        }
    }

    /// Writes the option (zero-padded to a multiple of 8) and returns the rest of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<'b>(&self, buf: &'b mut [u8]) -> &'b mut [u8] {
        let len = self.buffer_len();
        let (head, rest) = buf.split_at_mut(len);
        head.fill(0);
        head[1] = (len / 8) as u8;
        match self {
            NdiscOption::SourceLinkLayerAddr(mac) => {
                head[0] = 1;
                head[2..8].copy_from_slice(&mac.0);
            }
            NdiscOption::TargetLinkLayerAddr(mac) => {
                head[0] = 2;
                head[2..8].copy_from_slice(&mac.0);
            }
            NdiscOption::Unknown { kind, data } => {
                head[0] = *kind;
                head[2..2 + data.len()].copy_from_slice(data);
            }
        }
        rest
    }
}

/// Iterator over Neighbor Discovery options; yields `Err` once on a malformed option and
/// then stops.
#[derive(Debug, Clone)]
pub struct NdiscOptions<'a> {
    data: &'a [u8],
}

impl<'a> NdiscOptions<'a> {
    /// Iterates over an options area.
    pub fn new(data: &'a [u8]) -> NdiscOptions<'a> {
        NdiscOptions { data }
    }
}

impl<'a> Iterator for NdiscOptions<'a> {
    type Item = Result<NdiscOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        match NdiscOption::parse(self.data) {
            Ok((rest, option)) => {
                self.data = rest;
                Some(Ok(option))
            }
            Err(e) => {
                self.data = &[];
                Some(Err(e))
            }
        }
    }
}

/// An ICMPv6 message this crate builds or answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Repr<'a> {
    /// Destination unreachable.
    DstUnreachable {
        /// Code.
        reason: Icmpv6DstUnreachable,
        /// Quoted invoking packet.
        data: &'a [u8],
    },
    /// Packet too big.
    PktTooBig {
        /// MTU of the next hop.
        mtu: u32,
        /// Quoted invoking packet.
        data: &'a [u8],
    },
    /// Time exceeded.
    TimeExceeded {
        /// Code.
        reason: Icmpv6TimeExceeded,
        /// Quoted invoking packet.
        data: &'a [u8],
    },
    /// Parameter problem.
    ParamProblem {
        /// Code.
        reason: Icmpv6ParamProblem,
        /// Offset of the problem in the invoking packet.
        pointer: u32,
        /// Quoted invoking packet.
        data: &'a [u8],
    },
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
    /// Neighbor solicitation.
    NeighborSolicit {
        /// Address being resolved.
        target_addr: Ipv6Addr,
        /// Source link-layer address option.
        lladdr: Option<EthernetAddress>,
    },
    /// Neighbor advertisement.
    NeighborAdvert {
        /// R/S/O flags.
        flags: NdiscNeighborFlags,
        /// Address being advertised.
        target_addr: Ipv6Addr,
        /// Target link-layer address option.
        lladdr: Option<EthernetAddress>,
    },
}

impl<'a> Icmpv6Repr<'a> {
    /// Parses a checked message and verifies its checksum against the pseudo-header
    /// ([`Error::Checksum`]). Neighbor Discovery options are validated; only the
    /// link-layer address option matching the type is kept. Other types are
    /// [`Error::Unsupported`]; a non-zero code on echo or ND is [`Error::Malformed`].
    pub fn parse(
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        packet: &Icmpv6Packet<&'a [u8]>,
    ) -> Result<Icmpv6Repr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        let buffer: &'a [u8] = packet.buffer;
        let data = &buffer[field::DATA];
        let code = packet.msg_code();
        let msg_type = packet.msg_type();
        if matches!(
            msg_type,
            Icmpv6Message::EchoRequest
                | Icmpv6Message::EchoReply
                | Icmpv6Message::NeighborSolicit
                | Icmpv6Message::NeighborAdvert
        ) && code != 0
        {
            return Err(Error::Malformed);
        }
        let lladdr = |want_source: bool| -> Result<Option<EthernetAddress>> {
            let mut found = None;
            for option in NdiscOptions::new(&buffer[NDISC_NEIGHBOR_LEN..]) {
                match option? {
                    NdiscOption::SourceLinkLayerAddr(mac) if want_source => found = Some(mac),
                    NdiscOption::TargetLinkLayerAddr(mac) if !want_source => found = Some(mac),
                    _ => {}
                }
            }
            Ok(found)
        };
        Ok(match msg_type {
            Icmpv6Message::DstUnreachable => Icmpv6Repr::DstUnreachable {
                reason: code.into(),
                data,
            },
            Icmpv6Message::PktTooBig => Icmpv6Repr::PktTooBig {
                mtu: packet.pkt_too_big_mtu(),
                data,
            },
            Icmpv6Message::TimeExceeded => Icmpv6Repr::TimeExceeded {
                reason: code.into(),
                data,
            },
            Icmpv6Message::ParamProblem => Icmpv6Repr::ParamProblem {
                reason: code.into(),
                pointer: packet.param_problem_ptr(),
                data,
            },
            Icmpv6Message::EchoRequest => Icmpv6Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            Icmpv6Message::EchoReply => Icmpv6Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            Icmpv6Message::NeighborSolicit => Icmpv6Repr::NeighborSolicit {
                target_addr: packet.target_addr(),
                lladdr: lladdr(true)?,
            },
            Icmpv6Message::NeighborAdvert => Icmpv6Repr::NeighborAdvert {
                flags: packet.neighbor_flags(),
                target_addr: packet.target_addr(),
                lladdr: lladdr(false)?,
            },
            _ => return Err(Error::Unsupported),
        })
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv6Repr::DstUnreachable { data, .. }
            | Icmpv6Repr::PktTooBig { data, .. }
            | Icmpv6Repr::TimeExceeded { data, .. }
            | Icmpv6Repr::ParamProblem { data, .. }
            | Icmpv6Repr::EchoRequest { data, .. }
            | Icmpv6Repr::EchoReply { data, .. } => HEADER_LEN + data.len(),
            Icmpv6Repr::NeighborSolicit { lladdr, .. }
            | Icmpv6Repr::NeighborAdvert { lladdr, .. } => {
                NDISC_NEIGHBOR_LEN
                    + if lladdr.is_some() {
                        LLADDR_OPTION_LEN
                    } else {
                        0
                    }
            }
        }
    }

    /// Writes the message with a valid checksum for `src` → `dst`.
    ///
    /// # Panics
    /// If the buffer is shorter than [`buffer_len`](Self::buffer_len). The checksum covers
    /// the whole buffer, so pass exactly `buffer_len()` bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        packet: &mut Icmpv6Packet<T>,
    ) {
        packet.clear_rest_of_header();
        let (msg_type, code, data): (Icmpv6Message, u8, &[u8]) = match *self {
            Icmpv6Repr::DstUnreachable { reason, data } => {
                (Icmpv6Message::DstUnreachable, reason.into(), data)
            }
            Icmpv6Repr::PktTooBig { mtu, data } => {
                packet.set_pkt_too_big_mtu(mtu);
                (Icmpv6Message::PktTooBig, 0, data)
            }
            Icmpv6Repr::TimeExceeded { reason, data } => {
                (Icmpv6Message::TimeExceeded, reason.into(), data)
            }
            Icmpv6Repr::ParamProblem {
                reason,
                pointer,
                data,
            } => {
                packet.set_param_problem_ptr(pointer);
                (Icmpv6Message::ParamProblem, reason.into(), data)
            }
            Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                (Icmpv6Message::EchoRequest, 0, data)
            }
            Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                (Icmpv6Message::EchoReply, 0, data)
            }
            Icmpv6Repr::NeighborSolicit {
                target_addr,
                lladdr,
            } => {
                packet.set_target_addr(target_addr);
                if let Some(mac) = lladdr {
                    NdiscOption::SourceLinkLayerAddr(mac).emit(packet.ndisc_options_mut());
                }
                (Icmpv6Message::NeighborSolicit, 0, &[])
            }
            Icmpv6Repr::NeighborAdvert {
                flags,
                target_addr,
                lladdr,
            } => {
                packet.set_neighbor_flags(flags);
                packet.set_target_addr(target_addr);
                if let Some(mac) = lladdr {
                    NdiscOption::TargetLinkLayerAddr(mac).emit(packet.ndisc_options_mut());
                }
                (Icmpv6Message::NeighborAdvert, 0, &[])
            }
        };
        packet.set_msg_type(msg_type);
        packet.set_msg_code(code);
        packet.data_mut()[..data.len()].copy_from_slice(data);
        packet.fill_checksum(src, dst);
    }
}

/// Helper for callers holding `IpAddr`s: verifies an ICMPv6 checksum, false unless both are
/// IPv6.
pub fn verify_checksum_ip<T: AsRef<[u8]>>(
    packet: &Icmpv6Packet<T>,
    src: &IpAddr,
    dst: &IpAddr,
) -> bool {
    match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => packet.verify_checksum(s, d),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::ip::Fragment;
    use proptest::prelude::*;

    /// (message, src, dst) of a captured ICMPv6 frame.
    fn message(frame: &[u8]) -> (&[u8], Ipv6Addr, Ipv6Addr) {
        let ip = crate::Ipv6Packet::new_checked(&frame[14..]).unwrap();
        let l4 = crate::ipv6_upper_layer(&ip).unwrap();
        assert_eq!(l4.next_header, IpProtocol::Icmpv6);
        (
            &frame[14 + l4.offset..14 + ip.total_len()],
            ip.src_addr(),
            ip.dst_addr(),
        )
    }

    const MESSAGES: [&[u8]; 13] = [
        fixtures::NS,
        fixtures::NA,
        fixtures::NS_DAD,
        fixtures::ICMP6_ECHO_REQUEST,
        fixtures::ICMP6_ECHO_REPLY,
        fixtures::ICMP6_TIME_EXCEEDED,
        fixtures::ICMP6_PKT_TOO_BIG,
        fixtures::ICMP6_PORT_UNREACHABLE,
        fixtures::ICMP6_PORT_UNREACHABLE_1280,
        fixtures::ROUTER_SOLICIT,
        fixtures::MLD_REPORT_HBH,
        fixtures::MLD_REPORT_HBH_UNSPEC,
        fixtures::ICMP6_ECHO_HOPS1,
    ];

    #[test]
    fn deconstruct_against_etherparse() {
        for frame in MESSAGES {
            let (m, src, dst) = message(frame);
            let p = Icmpv6Packet::new_checked(m).unwrap();
            let o = etherparse::Icmpv6Slice::from_slice(m).unwrap();
            assert_eq!(u8::from(p.msg_type()), o.type_u8());
            assert_eq!(p.msg_code(), o.code_u8());
            assert_eq!(p.checksum(), o.checksum());
            assert!(p.verify_checksum(&src, &dst));
            assert!(o.is_checksum_valid(src.octets(), dst.octets()));
            assert!(!p.verify_checksum(&dst, &dst));
            assert_eq!(&m[4..8], &o.bytes5to8()[..]);
            match o.icmp_type() {
                etherparse::Icmpv6Type::EchoRequest(e) | etherparse::Icmpv6Type::EchoReply(e) => {
                    assert_eq!((p.echo_ident(), p.echo_seq_no()), (e.id, e.seq));
                    assert_eq!(p.data(), o.payload());
                }
                etherparse::Icmpv6Type::PacketTooBig { mtu } => {
                    assert_eq!(p.pkt_too_big_mtu(), mtu);
                    assert_eq!(p.data(), o.payload());
                }
                _ => {}
            }
        }
    }

    #[test]
    fn neighbor_discovery() {
        let (m, src, dst) = message(fixtures::NS);
        let p = Icmpv6Packet::new_checked(m).unwrap();
        assert_eq!(p.msg_type(), Icmpv6Message::NeighborSolicit);
        assert_eq!(p.target_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        let repr = Icmpv6Repr::parse(&src, &dst, &p).unwrap();
        assert_eq!(
            repr,
            Icmpv6Repr::NeighborSolicit {
                target_addr: "2001:db8::2".parse().unwrap(),
                lladdr: Some(EthernetAddress([2, 0, 0, 0, 0, 0x0a])),
            }
        );
        let (m, src, dst) = message(fixtures::NA);
        let p = Icmpv6Packet::new_checked(m).unwrap();
        // r forwards, so Linux sets the Router flag too.
        let flags = p.neighbor_flags();
        assert!(flags.solicited() && flags.override_() && flags.router());
        assert_eq!(flags.bits(), 0xE0);
        let repr = Icmpv6Repr::parse(&src, &dst, &p).unwrap();
        let mut bytes = vec![0u8; repr.buffer_len()];
        repr.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(&bytes[..], m);
        // DAD probe: unspecified source, no link-layer option.
        let (m, src, dst) = message(fixtures::NS_DAD);
        assert!(src.is_unspecified());
        let repr = Icmpv6Repr::parse(&src, &dst, &Icmpv6Packet::new_checked(m).unwrap()).unwrap();
        assert!(matches!(
            repr,
            Icmpv6Repr::NeighborSolicit { lladdr: None, .. }
        ));
        // A short NS fails check_len.
        assert_eq!(
            Icmpv6Packet::new_checked(&m[..23]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn ndisc_option_errors() {
        assert_eq!(NdiscOption::parse(&[1, 0, 0, 0]), Err(Error::Malformed));
        assert_eq!(NdiscOption::parse(&[1, 1, 0, 0]), Err(Error::Truncated));
        assert_eq!(NdiscOption::parse(&[1]), Err(Error::Truncated));
        let (rest, o) =
            NdiscOption::parse(&[14, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 99])
                .unwrap();
        assert_eq!(rest, &[99]);
        assert!(matches!(o, NdiscOption::Unknown { kind: 14, data } if data.len() == 14));
        let mut it = NdiscOptions::new(&[1, 0]);
        assert_eq!(it.next(), Some(Err(Error::Malformed)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn errors_quote_the_invoking_packet() {
        let (m, ..) = message(fixtures::ICMP6_PKT_TOO_BIG);
        let p = Icmpv6Packet::new_checked(m).unwrap();
        assert_eq!(p.pkt_too_big_mtu(), 1280);
        let inv = p.parse_invoking().unwrap();
        assert_eq!(inv.protocol, IpProtocol::Udp);
        assert_eq!(inv.ports.map(|p| p.1), Some(5353));
        assert_eq!(inv.dst_addr, IpAddr::V6("2001:db8:1::2".parse().unwrap()));
        // 1240-byte message: the whole IPv6 packet fits in the minimum MTU.
        assert_eq!(40 + m.len(), MIN_MTU);

        let (m, ..) = message(fixtures::ICMP6_PORT_UNREACHABLE_1280);
        let inv = Icmpv6Packet::new_checked(m)
            .unwrap()
            .parse_invoking()
            .unwrap();
        // Linux reports the error after reassembly, so it quotes the whole datagram.
        assert_eq!(inv.fragment, Fragment::None);
        assert_eq!(inv.l4_offset, 40);
        assert_eq!(inv.ports.map(|p| p.1), Some(9));

        let (m, ..) = message(fixtures::ICMP6_TIME_EXCEEDED);
        let p = Icmpv6Packet::new_checked(m).unwrap();
        assert_eq!(
            Icmpv6TimeExceeded::from(p.msg_code()),
            Icmpv6TimeExceeded::HopLimitExceeded
        );
        assert_eq!(p.parse_invoking().unwrap().protocol, IpProtocol::Icmpv6);
    }

    #[test]
    fn construct_exact_bytes() {
        for frame in [
            fixtures::NS,
            fixtures::NA,
            fixtures::ICMP6_ECHO_REQUEST,
            fixtures::ICMP6_ECHO_REPLY,
            fixtures::ICMP6_TIME_EXCEEDED,
            fixtures::ICMP6_PKT_TOO_BIG,
            fixtures::ICMP6_PORT_UNREACHABLE,
        ] {
            let (m, src, dst) = message(frame);
            let repr =
                Icmpv6Repr::parse(&src, &dst, &Icmpv6Packet::new_checked(m).unwrap()).unwrap();
            let mut bytes = vec![0u8; repr.buffer_len()];
            repr.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(&mut bytes[..]));
            assert_eq!(&bytes[..], m);
        }
        let (m, src, dst) = message(fixtures::ROUTER_SOLICIT);
        assert_eq!(
            Icmpv6Repr::parse(&src, &dst, &Icmpv6Packet::new_checked(m).unwrap()),
            Err(Error::Unsupported)
        );
    }

    proptest! {
        #[test]
        fn repr_round_trip(
            kind in 0u8..8, a in any::<u16>(), b in any::<u16>(), code in any::<u8>(),
            mtu in any::<u32>(), target in any::<[u8; 16]>(), mac in proptest::option::of(any::<[u8; 6]>()),
            flags in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
            let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
            let lladdr = mac.map(EthernetAddress);
            let repr = match kind {
                0 => Icmpv6Repr::DstUnreachable { reason: code.into(), data: &data },
                1 => Icmpv6Repr::PktTooBig { mtu, data: &data },
                2 => Icmpv6Repr::TimeExceeded { reason: code.into(), data: &data },
                3 => Icmpv6Repr::ParamProblem { reason: code.into(), pointer: mtu, data: &data },
                4 => Icmpv6Repr::EchoRequest { ident: a, seq_no: b, data: &data },
                5 => Icmpv6Repr::EchoReply { ident: a, seq_no: b, data: &data },
                6 => Icmpv6Repr::NeighborSolicit { target_addr: target.into(), lladdr },
                _ => Icmpv6Repr::NeighborAdvert { flags: NdiscNeighborFlags::from_bits(flags), target_addr: target.into(), lladdr },
            };
            let mut bytes = vec![0u8; repr.buffer_len()];
            repr.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(&mut bytes[..]));
            let p = Icmpv6Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(Icmpv6Repr::parse(&src, &dst, &p).unwrap(), repr);
            let o = etherparse::Icmpv6Slice::from_slice(&bytes).unwrap();
            prop_assert!(o.is_checksum_valid(src.octets(), dst.octets()));
            prop_assert!(verify_checksum_ip(&p, &IpAddr::V6(src), &IpAddr::V6(dst)));
        }
    }
}
