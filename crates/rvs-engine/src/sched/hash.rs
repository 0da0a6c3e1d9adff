//! The hash functions the IPVS hashing schedulers use, bit-exact with the kernel, so that a
//! given client lands on the same real server under rvs as under IPVS.

use std::net::IpAddr;

/// The kernel's golden-ratio multiplier (`GOLDEN_RATIO_32`, kernel >= 4.7).
const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// `hash_32(v, bits)`: the top `bits` bits of `v * GOLDEN_RATIO_32` (mod 2^32).
///
/// `bits` must be in `1..=32`; the schedulers use 8 (dh, sh) and 10 (lblc, lblcr).
pub(crate) const fn hash_32(v: u32, bits: u32) -> u32 {
    v.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits)
}

/// The address "fold" IPVS hashes: the IPv4 address, or the XOR of the four 32-bit words of
/// an IPv6 address, as a host-order number (the kernel's `ntohl(addr_fold)`).
pub(crate) fn addr_fold(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from_be_bytes(a.octets()),
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            w(0) ^ w(4) ^ w(8) ^ w(12)
        }
    }
}

/// One SipHash round (`SIPHASH_PERMUTATION`).
const fn sipround(v: [u64; 4]) -> [u64; 4] {
    let [mut v0, mut v1, mut v2, mut v3] = v;
    v0 = v0.wrapping_add(v1);
    v1 = v1.rotate_left(13);
    v1 ^= v0;
    v0 = v0.rotate_left(32);
    v2 = v2.wrapping_add(v3);
    v3 = v3.rotate_left(16);
    v3 ^= v2;
    v0 = v0.wrapping_add(v3);
    v3 = v3.rotate_left(21);
    v3 ^= v0;
    v2 = v2.wrapping_add(v1);
    v1 = v1.rotate_left(17);
    v1 ^= v2;
    v2 = v2.rotate_left(32);
    [v0, v1, v2, v3]
}

/// `hsiphash(&v, sizeof(u32), {key, key})` as a 64-bit kernel computes it: SipHash-1-3 with
/// both 64-bit key words equal to `key`, over the four little-endian bytes of `v`, truncated to
/// the low 32 bits. (32-bit kernels use HalfSipHash and give different values; IPVS's Maglev
/// tables are therefore not portable between the two, and we follow the 64-bit one.)
pub(crate) const fn hsiphash_u32(v: u32, key: u64) -> u32 {
    const LEN: u64 = 4;
    let mut s = [
        0x736f_6d65_7073_6575 ^ key,
        0x646f_7261_6e64_6f6d ^ key,
        0x6c79_6765_6e65_7261 ^ key,
        0x7465_6462_7974_6573 ^ key,
    ];
    // A 4-byte message has no full 8-byte word: the only block is the tail plus the length.
    let b = (LEN << 56) | v as u64;
    s[3] ^= b;
    s = sipround(s);
    s[0] ^= b;
    s[2] ^= 0xff;
    s = sipround(s);
    s = sipround(s);
    s = sipround(s);
    (s[0] ^ s[1] ^ s[2] ^ s[3]) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_32_vectors() {
        // §3.15: hash_32(ntohl(10.0.0.1), 8) = 39, and the sh/dh/lblc buckets.
        assert_eq!(hash_32(0x0A00_0001, 8), 39);
        let b8 = |a: &str| hash_32(addr_fold(a.parse().unwrap()), 8);
        let b10 = |a: &str| hash_32(addr_fold(a.parse().unwrap()), 10);
        assert_eq!(b8("192.168.1.100"), 89);
        assert_eq!(b8("192.168.1.101"), 187);
        assert_eq!(b8("203.0.113.7"), 124);
        assert_eq!(b10("10.0.0.1"), 159);
        assert_eq!(b10("192.168.1.100"), 357);
        // The definition itself, on a value whose product wraps.
        let v: u32 = 0xDEAD_BEEF;
        assert_eq!(
            hash_32(v, 8),
            (((u64::from(v) * 0x61C8_8647) % (1 << 32)) >> 24) as u32
        );
        assert_eq!(hash_32(v, 32), v.wrapping_mul(0x61C8_8647));
    }

    #[test]
    fn addr_fold_v4_and_v6() {
        assert_eq!(addr_fold("10.0.0.1".parse().unwrap()), 0x0A00_0001);
        // 2001:db8::1 = words 0x20010db8, 0, 0, 1.
        assert_eq!(addr_fold("2001:db8::1".parse().unwrap()), 0x2001_0db8 ^ 1);
        assert_eq!(
            addr_fold("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            0x2001_0db8 ^ 0x0001_0002 ^ 0x0003_0004 ^ 0x0005_0006
        );
    }

    #[test]
    fn hsiphash_vector() {
        // §3.13: hsiphash(v = 0, key 2654435761) = 0x1d5a77c2.
        assert_eq!(hsiphash_u32(0, 2_654_435_761), 0x1d5a_77c2);
    }

    /// The two Maglev keys give different permutations, the value is read little-endian (1 and
    /// 1 << 24 differ), and small inputs do not collide.
    #[test]
    fn hsiphash_depends_on_key_and_value() {
        let k1 = 2_654_435_761;
        let k2 = 2_654_446_892;
        assert_ne!(hsiphash_u32(0, k1), hsiphash_u32(0, k2));
        assert_ne!(hsiphash_u32(1, k1), hsiphash_u32(0x0100_0000, k1));
        let mut seen = std::collections::HashSet::new();
        for v in 0..1000 {
            seen.insert(hsiphash_u32(v, k1));
        }
        assert_eq!(seen.len(), 1000);
    }
}
