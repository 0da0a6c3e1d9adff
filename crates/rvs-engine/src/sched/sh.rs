//! `sh`: source hashing (`ip_vs_sh.c`), keyed by the client address and optionally its port.
//!
//! 256 buckets are filled in list order, each real server taking `weight` consecutive buckets
//! (a weight-0 server still takes one), cycling through the list until all are filled. Flags:
//! `sh-fallback` (SCHED1) probes other buckets when the hashed one is unusable; `sh-port`
//! (SCHED2) adds the client port to the key.

use std::net::IpAddr;

use rvs_api::model::svc_flags;

use super::hash::{addr_fold, hash_32};
use crate::dest::{DestId, DestList};

/// log2 of the bucket count (`CONFIG_IP_VS_SH_TAB_BITS`).
const TAB_BITS: u32 = 8;
/// Buckets.
const TAB_SIZE: usize = 1 << TAB_BITS;
/// Bucket index mask.
const TAB_MASK: u32 = (1 << TAB_BITS) - 1;

/// The source-hash table.
#[derive(Debug, Clone)]
pub(crate) struct Sh {
    buckets: Box<[Option<DestId>; TAB_SIZE]>,
}

/// `ip_vs_sh_hashkey`: the bucket for `addr`/`port`, plus `offset` added *after* hashing.
pub(crate) fn hashkey(addr: IpAddr, port: u16, offset: u32) -> usize {
    let h = hash_32(u32::from(port).wrapping_add(addr_fold(addr)), TAB_BITS);
    (offset.wrapping_add(h) & TAB_MASK) as usize
}

impl Sh {
    /// `init_service`.
    pub(crate) fn new(dests: DestList<'_>) -> Self {
        let mut s = Self {
            buckets: Box::new([None; TAB_SIZE]),
        };
        s.reassign(dests);
        s
    }

    /// Fills the buckets again (`add_dest`/`del_dest`/`upd_dest`).
    pub(crate) fn reassign(&mut self, dests: DestList<'_>) {
        if dests.is_empty() {
            self.buckets.fill(None);
            return;
        }
        let mut pos = 0;
        let mut taken = 0;
        for b in self.buckets.iter_mut() {
            let (id, d) = dests.at(pos);
            *b = Some(id);
            taken += 1;
            if taken >= d.weight.max(1) {
                pos = (pos + 1) % dests.len();
                taken = 0;
            }
        }
    }

    fn usable(dests: DestList<'_>, id: DestId) -> bool {
        dests.try_by_id(id).is_some_and(|d| d.is_schedulable())
    }

    /// The real server for a client; `flags` are the service flags (SCHED1 = fallback,
    /// SCHED2 = hash the port).
    pub(crate) fn schedule(
        &self,
        dests: DestList<'_>,
        flags: u32,
        caddr: IpAddr,
        cport: u16,
    ) -> Option<DestId> {
        let port = if flags & svc_flags::SCHED2 != 0 {
            cport
        } else {
            0
        };
        let ihash = hashkey(caddr, port, 0);
        let id = self.buckets[ihash]?;
        if Self::usable(dests, id) {
            return Some(id);
        }
        if flags & svc_flags::SCHED1 == 0 {
            return None;
        }
        // The kernel adds the original bucket once into the offset and once more inside
        // `hashkey`, so probing starts at bucket 2*ihash (mod 256); kept for identical placement.
        for offset in 0..TAB_SIZE as u32 {
            let roffset = (offset + ihash as u32) % TAB_SIZE as u32;
            let id = self.buckets[hashkey(caddr, port, roffset)]?;
            if Self::usable(dests, id) {
                return Some(id);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::SchedulerKind;
    use crate::sched::testutil::{Harness, input};

    const FALLBACK: u32 = svc_flags::SCHED1;
    const PORT: u32 = svc_flags::SCHED2;

    fn from(h: &mut Harness, caddr: &str, cport: u16) -> Option<DestId> {
        h.schedule(&input(caddr, cport, "198.19.0.1", 0))
    }

    /// The table, read through lookups of synthetic keys: for every bucket find a client
    /// address that hashes to it.
    fn client_for_bucket(b: usize) -> String {
        (0u32..)
            .map(|i| std::net::Ipv4Addr::from(0x0A00_0000 + i))
            .find(|a| hashkey(IpAddr::V4(*a), 0, 0) == b)
            .expect("every bucket is reachable")
            .to_string()
    }

    #[test]
    fn sh_vectors_two_equal_weights() {
        // §3.15 / §11 item 46: dests .2 (newer) and .1, weight 1: even buckets → .2, odd → .1.
        let mut h = Harness::with(
            SchedulerKind::Sh,
            0,
            &[("192.168.1.1", 80, 1), ("192.168.1.2", 80, 1)],
        );
        let (one, two) = (h.id(0), h.id(1));
        for b in [0usize, 1, 2, 3, 88, 89, 254, 255] {
            let want = if b.is_multiple_of(2) { two } else { one };
            assert_eq!(
                from(&mut h, &client_for_bucket(b), 0),
                Some(want),
                "bucket {b}"
            );
        }
        // 192.168.1.100 → bucket 89 (odd), 203.0.113.7 → 124 (even).
        assert_eq!(from(&mut h, "192.168.1.100", 0), Some(one));
        assert_eq!(from(&mut h, "203.0.113.7", 0), Some(two));
        // The port is ignored without sh-port.
        assert_eq!(from(&mut h, "203.0.113.7", 4321), Some(two));
    }

    #[test]
    fn sh_weighted_fill_pattern() {
        // Weights 3 (.2, newer) and 1 (.1): `.2 .2 .2 .1` repeated.
        let mut h = Harness::with(
            SchedulerKind::Sh,
            0,
            &[("192.168.1.1", 80, 1), ("192.168.1.2", 80, 3)],
        );
        let (one, two) = (h.id(0), h.id(1));
        for b in 0..TAB_SIZE {
            let want = if b % 4 == 3 { one } else { two };
            assert_eq!(
                from(&mut h, &client_for_bucket(b), 0),
                Some(want),
                "bucket {b}"
            );
        }
        // A weight-0 server still takes one bucket (then is unusable there).
        h.set_weight(two, 0);
        // Fill: .2 (1 bucket), .1 (1 bucket), …: even → .2 (unusable), odd → .1.
        assert_eq!(from(&mut h, &client_for_bucket(0), 0), None);
        assert_eq!(from(&mut h, &client_for_bucket(1), 0), Some(one));
    }

    #[test]
    fn sh_port_flag_changes_the_key() {
        let mut h = Harness::with(
            SchedulerKind::Sh,
            PORT,
            &[("192.168.1.1", 80, 1), ("192.168.1.2", 80, 1)],
        );
        let (one, two) = (h.id(0), h.id(1));
        // Key = port + addr: 10.0.0.1 port 0 → bucket 39 (odd → .1); port p hashes
        // 0x0A000001 + p.
        for p in [0u16, 1, 2, 80, 443, 65535] {
            let b = hash_32(0x0A00_0001 + u32::from(p), 8);
            let want = if b.is_multiple_of(2) { two } else { one };
            assert_eq!(from(&mut h, "10.0.0.1", p), Some(want), "port {p}");
        }
    }

    #[test]
    fn sh_ipv6_clients_use_folded_address() {
        let mut h = Harness::with(
            SchedulerKind::Sh,
            PORT,
            &[("2001:db8::a", 80, 1), ("2001:db8::b", 80, 1)],
        );
        let (a, b) = (h.id(0), h.id(1));
        for (c, p) in [
            ("2001:db8::1", 0u16),
            ("2001:db8:1:2:3:4:5:6", 443),
            ("2001:db8::ffff", 9),
        ] {
            let fold = addr_fold(c.parse().unwrap());
            let bucket = hash_32(u32::from(p).wrapping_add(fold), 8);
            let want = if bucket.is_multiple_of(2) { b } else { a };
            assert_eq!(from(&mut h, c, p), Some(want), "{c} port {p}");
        }
    }

    #[test]
    fn sh_fallback_probes_from_twice_the_bucket() {
        // Four servers of weight 1, list order D, C, B, A: bucket b → [D,C,B,A][b % 4].
        let servers = &[
            ("10.1.0.1", 80, 1),
            ("10.1.0.2", 80, 1),
            ("10.1.0.3", 80, 1),
            ("10.1.0.4", 80, 1),
        ];
        let mut plain = Harness::with(SchedulerKind::Sh, 0, servers);
        let mut fb = Harness::with(SchedulerKind::Sh, FALLBACK, servers);
        let list = [fb.id(3), fb.id(2), fb.id(1), fb.id(0)];
        // 10.0.0.1 → bucket 39 → list[3] = A. Make A unusable.
        let a = fb.id(0);
        fb.set_overloaded(a, true);
        plain.set_overloaded(plain.id(0), true);
        assert_eq!(from(&mut plain, "10.0.0.1", 0), None);
        // Probing starts at (39 + 39) & 255 = 78 → list[78 % 4] = list[2] = B.
        assert_eq!(from(&mut fb, "10.0.0.1", 0), Some(list[2]));
        // With B unusable too: 79 → list[3] = A (unusable), 80 → list[0] = D.
        fb.set_weight(list[2], 0);
        assert_eq!(from(&mut fb, "10.0.0.1", 0), Some(list[0]));
        // Bucket 89 (192.168.1.100) → list[1] = C, usable: no probing.
        assert_eq!(from(&mut fb, "192.168.1.100", 0), Some(list[1]));
        // Everyone unusable → none.
        fb.set_overloaded(list[0], true);
        fb.set_overloaded(list[1], true);
        assert_eq!(from(&mut fb, "10.0.0.1", 0), None);
    }

    #[test]
    fn sh_is_deterministic_and_mostly_stable() {
        let servers: Vec<(String, u16, u32)> =
            (1..=10).map(|i| (format!("10.1.0.{i}"), 80, 1)).collect();
        let refs: Vec<(&str, u16, u32)> = servers
            .iter()
            .map(|(a, p, w)| (a.as_str(), *p, *w))
            .collect();
        let mut h1 = Harness::with(SchedulerKind::Sh, 0, &refs);
        let mut h2 = Harness::with(SchedulerKind::Sh, 0, &refs);
        let clients: Vec<String> = (0..2000)
            .map(|i| format!("198.18.{}.{}", i / 250, i % 250))
            .collect();
        let map1: Vec<_> = clients.iter().map(|c| from(&mut h1, c, 0)).collect();
        let map2: Vec<_> = clients.iter().map(|c| from(&mut h2, c, 0)).collect();
        assert_eq!(map1, map2);
        // Every server gets a share close to 1/10.
        for i in 0..10 {
            let n = map1.iter().filter(|&&d| d == Some(h1.id(i))).count();
            assert!((120..=280).contains(&n), "server {i}: {n} of 2000");
        }
        // sh is a plain modulo-style table, so it is *not* consistent: removing the newest
        // server reshuffles most clients. The fallback flag is what keeps the others in place
        // when a server is only unusable (quiescent) instead of deleted.
        let mut fb = Harness::with(SchedulerKind::Sh, FALLBACK, &refs);
        let before: Vec<_> = clients.iter().map(|c| from(&mut fb, c, 0)).collect();
        let victim = fb.id(9);
        fb.set_weight(victim, 0);
        // Quiescing rebuilds with weight 0 = still one bucket, so the table is unchanged.
        let after: Vec<_> = clients.iter().map(|c| from(&mut fb, c, 0)).collect();
        let mut moved = 0;
        for (b, a) in before.iter().zip(&after) {
            if *b == Some(victim) {
                assert_ne!(*a, Some(victim));
            } else if b != a {
                moved += 1;
            }
        }
        assert_eq!(moved, 0, "clients of other servers moved");

        // Deleting a server rebuilds the deal over the nine left: bucket b → list'[b % 9].
        let oldest = h1.id(0);
        h1.del(oldest);
        let list: Vec<_> = h1.order.clone();
        assert_eq!(list.len(), 9);
        for b in [0, 1, 8, 9, 100, 255] {
            assert_eq!(
                from(&mut h1, &client_for_bucket(b), 0),
                Some(list[b % 9]),
                "bucket {b}"
            );
        }
    }
}
