//! Packet views and builders for the rvs data plane.
//!
//! The crate follows smoltcp's `wire` contract. Every header has
//!
//! * a **view** `XxxPacket<T: AsRef<[u8]>>` over a byte buffer: [`new_unchecked`] wraps without
//!   checks, [`check_len`] validates the buffer once, and [`new_checked`] does both. After
//!   `check_len` has succeeded, no getter panics, whatever the bytes are. Setters exist when
//!   `T: AsMut<[u8]>`; they change bytes in place and never reallocate. `new_checked` is for
//!   parsing; for emission wrap a zeroed buffer of `Repr::buffer_len()` bytes with
//!   `new_unchecked`.
//! * a **`Repr`** (a plain struct or enum) with `parse(&view)`, `buffer_len()` and `emit(&mut view)`,
//!   used to build test packets and director-generated replies.
//!
//! Views: [`EthernetFrame`], [`VlanHeader`], [`ArpPacket`], [`Ipv4Packet`], [`Ipv6Packet`],
//! [`TcpPacket`], [`UdpPacket`], [`Icmpv4Packet`], [`Icmpv6Packet`].
//!
//! The engine's hot path calls [`PacketMeta::parse`] once per frame (Ethernet, up to two VLAN
//! tags, IPv4/IPv6 with extension headers, TCP/UDP/ICMP ports and flags), then rewrites the
//! frame in place through the views, keeping checksums right with the RFC 1624 helpers in
//! [`checksum`]. Frames live in a [`PacketBuf`] (a frame inside a larger buffer with headroom,
//! as AF_XDP frames are), which lets [`tunnel`] prepend or strip an outer IP header behind the
//! Ethernet header, and [`reply`] turn a received frame into the director's answer (ARP reply,
//! neighbor advertisement, echo reply, ICMP errors).
//!
//! The crate is `no_std` and has no allocator: nothing here allocates.
//!
//! [`new_unchecked`]: Ipv4Packet::new_unchecked
//! [`check_len`]: Ipv4Packet::check_len
//! [`new_checked`]: Ipv4Packet::new_checked
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
#[macro_use]
extern crate std;

#[macro_use]
mod macros;
mod field;

pub mod arp;
pub mod buf;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod meta;
pub mod reply;
pub mod tcp;
pub mod tunnel;
pub mod udp;
pub mod vlan;

#[cfg(test)]
mod fixtures;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use buf::PacketBuf;
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
pub use icmpv4::{
    Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4Repr, Icmpv4TimeExceeded,
};
pub use icmpv6::{
    Icmpv6DstUnreachable, Icmpv6Message, Icmpv6Packet, Icmpv6ParamProblem, Icmpv6Repr,
    Icmpv6TimeExceeded, NdiscNeighborFlags, NdiscOption,
};
pub use ip::{Fragment, InvokingPacket, IpProtocol, IpVersion};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6FragInfo, Ipv6L4, Ipv6Packet, Ipv6Repr, ipv6_upper_layer};
pub use meta::{FLOW_L3_OFFSET, FlowMeta, PacketMeta, ParseError};
pub use tcp::{TcpFlags, TcpOption, TcpPacket, TcpRepr};
pub use udp::{UdpPacket, UdpRepr};
pub use vlan::{VlanHeader, VlanRepr, l3_ethertype};

use core::fmt;

/// Why a view, `Repr` or buffer operation failed.
///
/// The per-packet drop reasons of the engine's hot path are in [`ParseError`]; this type is
/// for the views and builders, where "what kind of wrong" is enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the header, or than a length field in it says.
    Truncated,
    /// A field holds an impossible value (version, header length, option layout, ...).
    Malformed,
    /// A checksum does not verify.
    Checksum,
    /// Well-formed, but not something this crate handles (ARP for other than Ethernet/IPv4,
    /// an ICMP type without a `Repr`, a fragment where a whole datagram is needed, more than
    /// two VLAN tags or eight IPv6 extension headers).
    Unsupported,
    /// A [`PacketBuf`] has too little headroom or tailroom for the requested change, or an
    /// offset lies outside its data.
    NoSpace,
    /// An ICMP error must not be sent about this packet (RFC 1122 §3.2.2, RFC 1812 §4.3.2.7,
    /// RFC 4443 §2.4(e)): it is itself an ICMP error, a non-first fragment, or comes from or
    /// goes to a non-unicast address.
    Suppressed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated packet",
            Error::Malformed => "malformed packet",
            Error::Checksum => "checksum mismatch",
            Error::Unsupported => "unsupported packet",
            Error::NoSpace => "no room in packet buffer",
            Error::Suppressed => "ICMP error suppressed for this packet",
        })
    }
}

impl core::error::Error for Error {}

/// The result type of the views and builders.
pub type Result<T> = core::result::Result<T, Error>;
