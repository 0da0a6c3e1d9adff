//! Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are carried as `u32` partial sums that are already folded to at most 16 significant
//! bits, so callers can add tens of thousands of them (`sum(a) + sum(b) + pseudo_header_v4(..)`)
//! without overflow and then [`finish`] the total. A checksum *field* value (`csum` below) is
//! the stored, complemented value.
//!
//! Data summed in pieces must be split at even offsets; only the last piece may be odd.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Ones-complement sum of `data` as big-endian 16-bit words, folded to 16 bits (not
/// complemented). An odd trailing byte is padded with a zero byte, as RFC 1071 says.
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    // 32-bit words summed into 64 bits fold to the same ones-complement 16-bit sum as 16-bit
    // words (end-around carry is associative), with half the additions.
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let mut tail = [0u8; 4];
    let rest = chunks.remainder();
    tail[..rest.len()].copy_from_slice(rest);
    acc += u64::from(u32::from_be_bytes(tail));
    let acc = (acc & 0xFFFF_FFFF) + (acc >> 32);
    let acc = (acc & 0xFFFF_FFFF) + (acc >> 32);
    u32::from(fold(acc as u32))
}

/// Folds a 32-bit ones-complement accumulator to 16 bits with end-around carry. Not
/// complemented: `!fold(x)` is the checksum field value.
#[inline]
pub fn fold(sum: u32) -> u16 {
    let s = (sum & 0xFFFF) + (sum >> 16);
    let s = (s & 0xFFFF) + (s >> 16);
    s as u16
}

/// The checksum field value for an accumulated sum: `!fold(sum)`.
#[inline]
pub fn finish(sum: u32) -> u16 {
    !fold(sum)
}

/// The checksum field value over `data` alone (IPv4 header, ICMPv4 message).
#[inline]
pub fn compute(data: &[u8]) -> u16 {
    finish(sum(data))
}

/// Partial sum of the IPv4 pseudo-header (RFC 793 §3.1, RFC 768): addresses, protocol and
/// the upper-layer length.
#[inline]
pub fn pseudo_header_v4(src: &Ipv4Addr, dst: &Ipv4Addr, proto: u8, len: u32) -> u32 {
    let s = u32::from(*src);
    let d = u32::from(*dst);
    let total = (s >> 16) + (s & 0xFFFF) + (d >> 16) + (d & 0xFFFF);
    u32::from(fold(
        total + u32::from(proto) + (len >> 16) + (len & 0xFFFF),
    ))
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1): addresses, the 32-bit upper-layer
/// length and the next header value.
#[inline]
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, len: u32) -> u32 {
    let total = sum(&src.octets()) + sum(&dst.octets());
    u32::from(fold(
        total + u32::from(next_header) + (len >> 16) + (len & 0xFFFF),
    ))
}

/// Pseudo-header sum for an address pair of either family.
///
/// A mixed pair (one IPv4, one IPv6) has no meaningful checksum; it is summed as IPv6 with the
/// IPv4 address mapped (`::ffff:a.b.c.d`) so that the result is defined and verification of
/// any real packet against it fails.
#[inline]
pub fn pseudo_header(src: &IpAddr, dst: &IpAddr, proto: u8, len: u32) -> u32 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => pseudo_header_v4(s, d, proto, len),
        (IpAddr::V6(s), IpAddr::V6(d)) => pseudo_header_v6(s, d, proto, len),
        _ => pseudo_header_v6(&to_v6(src), &to_v6(dst), proto, len),
    }
}

fn to_v6(addr: &IpAddr) -> Ipv6Addr {
    match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => *a,
    }
}

/// Updates checksum field `csum` after one 16-bit word of the covered data changed from
/// `old` to `new` (RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')`).
///
/// The result equals a full recomputation unless the covered data becomes all zero: then
/// the full checksum is 0xFFFF and this gives 0x0000. That cannot happen for data that
/// includes an IPv4 header or a pseudo-header (protocol ≠ 0); it can for a bare ICMPv4
/// message, so recompute those.
#[inline]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    !fold(u32::from(!csum) + u32::from(!old) + u32::from(new))
}

/// Updates checksum field `csum` after an aligned 32-bit value (an IPv4 address, a sequence
/// number) changed from `old` to `new`.
#[inline]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let old_hi = u32::from(!((old >> 16) as u16));
    let old_lo = u32::from(!(old as u16));
    !fold(u32::from(!csum) + old_hi + old_lo + (new >> 16) + (new & 0xFFFF))
}

/// Updates checksum field `csum` after the bytes `old` at an even offset of the covered data
/// were replaced by `new` (for example a 16-byte IPv6 address).
///
/// Both slices must have the same length and start at an even offset; with other inputs the
/// result is defined (no panic) but not the checksum of anything.
#[inline]
pub fn update_bytes(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    !fold(u32::from(!csum) + u32::from(!fold(sum(old))) + sum(new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// Straightforward RFC 1071 reference: 16-bit words, fold at the end.
    fn reference(data: &[u8]) -> u16 {
        let mut acc: u64 = 0;
        for pair in data.chunks(2) {
            let hi = u64::from(pair[0]) << 8;
            let lo = pair.get(1).copied().map_or(0, u64::from);
            acc += hi | lo;
        }
        while acc >> 16 != 0 {
            acc = (acc & 0xFFFF) + (acc >> 16);
        }
        !(acc as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the sum of 0001 f203 f4f5 f6f7 is ddf2 (one's complement 220d).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(compute(&data), 0x220d);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12]), 0x1200);
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn real_ipv4_header_verifies() {
        // Header of the captured echo request 198.18.0.1 -> 198.18.0.2 (fixture 09).
        let frame = crate::fixtures::ICMP4_ECHO_REQUEST;
        let header = &frame[14..34];
        assert_eq!(fold(sum(header)), 0xFFFF);
        let stored = u16::from_be_bytes([header[10], header[11]]);
        let mut zeroed = [0u8; 20];
        zeroed.copy_from_slice(header);
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(compute(&zeroed), stored);
    }

    #[test]
    fn pseudo_header_matches_manual_layout() {
        let s = Ipv4Addr::new(198, 18, 0, 1);
        let d = Ipv4Addr::new(198, 18, 1, 2);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&s.octets());
        bytes.extend_from_slice(&d.octets());
        bytes.extend_from_slice(&[0, 6, 0x05, 0xdc]);
        assert_eq!(pseudo_header_v4(&s, &d, 6, 1500), sum(&bytes));

        let s6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d6: Ipv6Addr = "2001:db8:1::2".parse().unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&s6.octets());
        bytes.extend_from_slice(&d6.octets());
        bytes.extend_from_slice(&70000u32.to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 17]);
        assert_eq!(pseudo_header_v6(&s6, &d6, 17, 70000), sum(&bytes));
    }

    #[test]
    fn mixed_pair_is_defined() {
        let a = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
        let b = IpAddr::V6("2001:db8::1".parse().unwrap());
        let mapped = IpAddr::V6(Ipv4Addr::new(198, 18, 0, 1).to_ipv6_mapped());
        assert_eq!(
            pseudo_header(&a, &b, 6, 20),
            pseudo_header(&mapped, &b, 6, 20)
        );
    }

    proptest! {
        #[test]
        fn sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
            prop_assert_eq!(compute(&data), reference(&data));
        }

        #[test]
        fn split_at_even_offset_adds_up(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            cut in 0usize..300,
        ) {
            let cut = (cut * 2).min(data.len() & !1);
            let (a, b) = data.split_at(cut);
            prop_assert_eq!(finish(sum(a) + sum(b)), compute(&data));
        }

        #[test]
        fn update16_equals_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 2..200),
            word in 0usize..100,
            new in any::<u16>(),
        ) {
            // Keep one non-zero word that never changes so the sum is never all-zero: real
            // headers always have one (version nibble, protocol in the pseudo-header).
            data[0] |= 0x40;
            prop_assume!(data.len() >= 4);
            let words = data.len() / 2;
            let at = 2 * (1 + word % (words - 1));
            let before = compute(&data);
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&new.to_be_bytes());
            prop_assert_eq!(update16(before, old, new), compute(&data));
        }

        #[test]
        fn update32_and_bytes_equal_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 40..120),
            new32 in any::<u32>(),
            new16 in proptest::array::uniform16(any::<u8>()),
        ) {
            data[0] |= 0x40;
            let before = compute(&data);
            let old32 = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
            data[4..8].copy_from_slice(&new32.to_be_bytes());
            let mid = compute(&data);
            prop_assert_eq!(update32(before, old32, new32), mid);

            let mut old16 = [0u8; 16];
            old16.copy_from_slice(&data[20..36]);
            data[20..36].copy_from_slice(&new16);
            prop_assert_eq!(update_bytes(mid, &old16, &new16), compute(&data));
        }
    }
}
