//! `dh`: destination hashing (`ip_vs_dh.c`), keyed by the packet's destination address.
//!
//! 256 buckets are dealt to the real servers one at a time in list order, cyclically, ignoring
//! weights. A packet's bucket is `hash_32(daddr_fold, 8)`; if that bucket's server is
//! unusable there is no destination (no fallback).

use std::net::IpAddr;

use super::hash::{addr_fold, hash_32};
use crate::dest::{DestId, DestList};

/// log2 of the bucket count (`CONFIG_IP_VS_DH_TAB_BITS`).
const TAB_BITS: u32 = 8;
/// Buckets.
const TAB_SIZE: usize = 1 << TAB_BITS;

/// The destination-hash table.
#[derive(Debug, Clone)]
pub(crate) struct Dh {
    buckets: Box<[Option<DestId>; TAB_SIZE]>,
}

impl Dh {
    /// `init_service`.
    pub(crate) fn new(dests: DestList<'_>) -> Self {
        let mut s = Self {
            buckets: Box::new([None; TAB_SIZE]),
        };
        s.reassign(dests);
        s
    }

    /// Deals the buckets again (`add_dest`/`del_dest`; the kernel does not rebuild on edit, and
    /// the table does not depend on weights anyway).
    pub(crate) fn reassign(&mut self, dests: DestList<'_>) {
        let ids = dests.ids();
        for (i, b) in self.buckets.iter_mut().enumerate() {
            *b = if ids.is_empty() {
                None
            } else {
                Some(ids[i % ids.len()])
            };
        }
    }

    /// The bucket a destination address hashes to.
    pub(crate) fn bucket(daddr: IpAddr) -> usize {
        hash_32(addr_fold(daddr), TAB_BITS) as usize
    }

    /// The real server for `daddr`, if it is usable.
    pub(crate) fn schedule(&self, dests: DestList<'_>, daddr: IpAddr) -> Option<DestId> {
        let id = self.buckets[Self::bucket(daddr)]?;
        let d = dests.try_by_id(id)?;
        (d.available && d.is_schedulable()).then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::SchedulerKind;
    use crate::sched::testutil::{Harness, input};

    fn to(h: &mut Harness, daddr: &str) -> Option<DestId> {
        h.schedule(&input("198.18.0.1", 1000, daddr, 0))
    }

    #[test]
    fn dh_buckets_and_deal() {
        // §3.15 bucket vectors.
        assert_eq!(Dh::bucket("192.168.1.100".parse().unwrap()), 89);
        assert_eq!(Dh::bucket("192.168.1.101".parse().unwrap()), 187);
        assert_eq!(Dh::bucket("203.0.113.7".parse().unwrap()), 124);
        assert_eq!(Dh::bucket("10.0.0.1".parse().unwrap()), 39);
        // Three servers, weights ignored: list order C, B, A deals bucket i to [C,B,A][i % 3].
        let mut h = Harness::with(
            SchedulerKind::Dh,
            0,
            &[
                ("10.0.0.1", 80, 100),
                ("10.0.0.2", 80, 1),
                ("10.0.0.3", 80, 1),
            ],
        );
        let list = [h.id(2), h.id(1), h.id(0)];
        assert_eq!(to(&mut h, "192.168.1.100"), Some(list[89 % 3]));
        assert_eq!(to(&mut h, "192.168.1.101"), Some(list[187 % 3]));
        assert_eq!(to(&mut h, "203.0.113.7"), Some(list[124 % 3]));
        assert_eq!(to(&mut h, "10.0.0.1"), Some(list[39 % 3]));
        // Keyed on the destination only: the client does not matter.
        let x = h.schedule(&input("198.18.7.7", 9, "192.168.1.100", 0));
        assert_eq!(x, Some(list[89 % 3]));
    }

    #[test]
    fn dh_no_fallback_and_rebuild_on_delete() {
        let mut h = Harness::with(
            SchedulerKind::Dh,
            0,
            &[("10.0.0.1", 80, 1), ("10.0.0.2", 80, 1)],
        );
        let (a, b) = (h.id(0), h.id(1));
        // List B, A: even buckets → B, odd → A. 192.168.1.100 → 89 (A), 203.0.113.7 → 124 (B).
        assert_eq!(to(&mut h, "192.168.1.100"), Some(a));
        assert_eq!(to(&mut h, "203.0.113.7"), Some(b));
        h.set_overloaded(a, true);
        assert_eq!(to(&mut h, "192.168.1.100"), None);
        h.set_overloaded(a, false);
        h.set_weight(a, 0);
        assert_eq!(to(&mut h, "192.168.1.100"), None);
        assert_eq!(to(&mut h, "203.0.113.7"), Some(b));
        // Deleting A deals every bucket to B (and A's slot is freed: no dangling reference).
        h.del(a);
        assert_eq!(to(&mut h, "192.168.1.100"), Some(b));
        h.del(b);
        assert_eq!(to(&mut h, "192.168.1.100"), None);
    }

    #[test]
    fn dh_ipv6_uses_folded_address() {
        let mut h = Harness::with(
            SchedulerKind::Dh,
            0,
            &[("2001:db8::a", 80, 1), ("2001:db8::b", 80, 1)],
        );
        let list = [h.id(1), h.id(0)];
        for vip in ["2001:db8::1", "2001:db8:ffff::42", "2001:db8::dead:beef"] {
            let fold = addr_fold(vip.parse().unwrap());
            let want = list[(hash_32(fold, 8) % 2) as usize];
            assert_eq!(to(&mut h, vip), Some(want), "{vip}");
        }
    }
}
