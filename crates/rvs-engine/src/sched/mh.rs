//! `mh`: Maglev hashing (`ip_vs_mh.c`), keyed by the client address and optionally its port.
//!
//! Every real server gets a pseudo-random permutation of the 4093 table slots (an `offset`
//! and a `skip`, both from SipHash of its address and port); the servers take turns, in list
//! order, claiming their next free preferred slot, `turns` slots per round in proportion to
//! their weight. Because each server's preferences do not depend on the others, adding or
//! removing one server moves only about its own share of clients. Flags: `mh-fallback`
//! (SCHED1) probes further slots when the hashed one is unusable; `mh-port` (SCHED2) adds the
//! client port to the key.

use std::net::IpAddr;

use rvs_api::model::svc_flags;

use super::SchedError;
use super::hash::{addr_fold, hsiphash_u32};
use crate::dest::{DestId, DestList};

/// Table size: the prime for `CONFIG_IP_VS_MH_TAB_INDEX = 12` (primes[12 - 8]).
pub(crate) const TAB_SIZE: usize = 4093;
/// `IP_VS_MH_TAB_BITS` = 12 / 2: weights are scaled down to at most this many bits.
const TAB_BITS: u32 = 6;
/// SipHash key of the slot hash (both key words), fixed in the kernel.
const HASH1_KEY: u64 = 2_654_435_761;
/// SipHash key of the skip hash (both key words).
const HASH2_KEY: u64 = 2_654_446_892;

/// `ip_vs_mh_hashkey`: `hsiphash(offset + port + addr_fold)`.
fn hashkey(addr: IpAddr, port: u16, key: u64, offset: u32) -> u32 {
    let v = offset
        .wrapping_add(u32::from(port))
        .wrapping_add(addr_fold(addr));
    hsiphash_u32(v, key)
}

/// The slot a client hashes to (`offset` 0) or its `offset`-th fallback probe.
pub(crate) fn slot(addr: IpAddr, port: u16, offset: u32) -> usize {
    hashkey(addr, port, HASH1_KEY, offset) as usize % TAB_SIZE
}

/// A real server's permutation: `(offset, skip)`.
pub(crate) fn permutation(addr: IpAddr, port: u16) -> (usize, usize) {
    let offset = hashkey(addr, port, HASH1_KEY, 0) as usize % TAB_SIZE;
    let skip = hashkey(addr, port, HASH2_KEY, 0) as usize % (TAB_SIZE - 1) + 1;
    (offset, skip)
}

/// `fls`: 1-based index of the most significant set bit, 0 for 0.
const fn fls(x: u32) -> u32 {
    u32::BITS - x.leading_zeros()
}

const fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The Maglev lookup table.
#[derive(Debug, Clone)]
pub(crate) struct Mh {
    lookup: Vec<Option<DestId>>,
}

impl Mh {
    /// `init_service`: fails when the service has more real servers than slots.
    pub(crate) fn new(dests: DestList<'_>) -> Result<Self, SchedError> {
        let mut s = Self {
            lookup: vec![None; TAB_SIZE],
        };
        s.reassign(dests)?;
        Ok(s)
    }

    /// Rebuilds the table (`add_dest`/`del_dest`/`upd_dest`). With more real servers than
    /// slots the table is left as it was and the error returned (the kernel ignores it there:
    /// the server is added but gets no slot).
    pub(crate) fn reassign(&mut self, dests: DestList<'_>) -> Result<(), SchedError> {
        if dests.len() > TAB_SIZE {
            return Err(SchedError::TooManyDests {
                dests: dests.len(),
                size: TAB_SIZE,
            });
        }
        // gcd and maximum of the positive last weights: a quiescent (weight 0) server keeps its
        // slots through its last non-zero weight.
        let g = dests
            .iter()
            .map(|(_, d)| d.last_weight)
            .filter(|&w| w > 0)
            .fold(0, gcd);
        if g == 0 {
            self.lookup.fill(None);
            return Ok(());
        }
        let max = dests.iter().map(|(_, d)| d.last_weight).max().unwrap_or(0);
        let rshift = fls(max / g).saturating_sub(TAB_BITS);

        struct Setup {
            id: DestId,
            perm: usize,
            skip: usize,
            turns: u32,
        }
        let mut setups: Vec<Setup> = dests
            .iter()
            .map(|(id, d)| {
                let (offset, skip) = permutation(d.addr, d.port);
                let lw = d.last_weight;
                let scaled = (lw / g) >> rshift;
                let turns = if scaled > 0 {
                    scaled
                } else {
                    u32::from(lw != 0)
                };
                Setup {
                    id,
                    perm: offset,
                    skip,
                    turns,
                }
            })
            .collect();

        let mut taken = vec![false; TAB_SIZE];
        let mut n = 0;
        // g > 0 means some server has turns >= 1, so every round fills at least one slot.
        'fill: loop {
            for ds in setups.iter_mut().filter(|ds| ds.turns >= 1) {
                for _ in 0..ds.turns {
                    // The permutation visits every slot (prime size, skip in 1..size), so a free
                    // one is always found while n < size.
                    while taken[ds.perm] {
                        ds.perm += ds.skip;
                        if ds.perm >= TAB_SIZE {
                            ds.perm -= TAB_SIZE;
                        }
                    }
                    taken[ds.perm] = true;
                    self.lookup[ds.perm] = Some(ds.id);
                    n += 1;
                    if n == TAB_SIZE {
                        break 'fill;
                    }
                }
            }
        }
        Ok(())
    }

    /// `del_dest`: rebuild without `id`; if that fails (still more servers than slots), the old
    /// table is kept minus the slots of `id`, so no reference to it remains.
    pub(crate) fn del_dest(&mut self, after: DestList<'_>, id: DestId) {
        if self.reassign(after).is_err() {
            for s in self.lookup.iter_mut().filter(|s| **s == Some(id)) {
                *s = None;
            }
        }
    }

    /// The owner of each slot (tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn table(&self) -> &[Option<DestId>] {
        &self.lookup
    }

    /// The real server for a client.
    pub(crate) fn schedule(
        &self,
        dests: DestList<'_>,
        flags: u32,
        caddr: IpAddr,
        cport: u16,
    ) -> Option<DestId> {
        let usable = |id: DestId| dests.try_by_id(id).is_some_and(|d| d.is_schedulable());
        let port = if flags & svc_flags::SCHED2 != 0 {
            cport
        } else {
            0
        };
        let ihash = slot(caddr, port, 0);
        let id = self.lookup[ihash]?;
        if usable(id) {
            return Some(id);
        }
        if flags & svc_flags::SCHED1 == 0 {
            return None;
        }
        // Unlike sh, the probe offset goes into the hashed value.
        for offset in 0..TAB_SIZE {
            let roffset = ((offset + ihash) % TAB_SIZE) as u32;
            let id = self.lookup[slot(caddr, port, roffset)]?;
            if usable(id) {
                return Some(id);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::Ipv4Addr;

    use super::*;
    use crate::sched::testutil::{Harness, input};
    use crate::sched::{SchedulerKind, State};

    fn table(h: &Harness) -> &[Option<DestId>] {
        match &h.sched.state {
            State::Mh(m) => m.table(),
            _ => unreachable!(),
        }
    }

    fn from(h: &mut Harness, caddr: &str, cport: u16) -> Option<DestId> {
        h.schedule(&input(caddr, cport, "198.19.0.1", 0))
    }

    fn count(h: &Harness, id: DestId) -> usize {
        table(h).iter().filter(|&&s| s == Some(id)).count()
    }

    #[test]
    fn mh_vectors() {
        // §3.13 / §11 item 47.
        let mut h = Harness::with(
            SchedulerKind::Mh,
            0,
            &[("192.168.1.1", 80, 1), ("192.168.1.2", 80, 1)],
        );
        let (one, two) = (h.id(0), h.id(1));
        assert_eq!(permutation("192.168.1.2".parse().unwrap(), 80), (183, 1302));
        assert_eq!(
            permutation("192.168.1.1".parse().unwrap(), 80),
            (2684, 2584)
        );
        assert_eq!(count(&h, two), 2047);
        assert_eq!(count(&h, one), 2046);
        let slots = [3711, 1884, 3741, 3701, 3620, 2581, 754, 2959];
        let owners = [two, one, two, two, one, one, two, one];
        for i in 0..8u8 {
            let c = format!("10.0.0.{}", i + 1);
            assert_eq!(slot(c.parse().unwrap(), 0, 0), slots[i as usize], "{c}");
            assert_eq!(from(&mut h, &c, 0), Some(owners[i as usize]), "{c}");
        }
        // The first claims follow the permutations: .2 takes its offset 183, .1 takes 2684.
        assert_eq!(table(&h)[183], Some(two));
        assert_eq!(table(&h)[2684], Some(one));
        // Without mh-port the client port is ignored.
        assert_eq!(from(&mut h, "10.0.0.1", 5555), Some(two));
    }

    #[test]
    fn mh_port_flag_and_binding_to_existing_service() {
        // Binding to a service that already has the servers gives the same table.
        let servers = &[("192.168.1.1", 80, 1), ("192.168.1.2", 80, 1)];
        let a = Harness::with(SchedulerKind::Mh, 0, servers);
        let b = Harness::bound(SchedulerKind::Mh, svc_flags::SCHED2, servers).unwrap();
        assert_eq!(table(&a), table(&b));
        let mut b = b;
        // With mh-port the key is port + addr: 10.0.0.1 port 1 hashes like 10.0.0.2 port 0.
        assert_eq!(from(&mut b, "10.0.0.1", 1), from(&mut b, "10.0.0.2", 0));
        assert_eq!(from(&mut b, "10.0.0.1", 0), Some(b.id(1)));
        assert_eq!(from(&mut b, "10.0.0.1", 1), Some(b.id(0)));
    }

    #[test]
    fn mh_weights_scale_slot_counts() {
        let mut h = Harness::with(
            SchedulerKind::Mh,
            0,
            &[
                ("10.1.0.1", 80, 100),
                ("10.1.0.2", 80, 200),
                ("10.1.0.3", 80, 300),
            ],
        );
        let ids = [h.id(0), h.id(1), h.id(2)];
        // gcd 100 → turns 1, 2, 3: the table splits 1:2:3 (4093 = 682*6 + 1: the newest server,
        // first in list order, claims the extra slot).
        let c: Vec<_> = ids.iter().map(|&id| count(&h, id)).collect();
        assert_eq!(c, [682, 1364, 2047]);
        // Large weights are shifted down to 6 bits: 1 and 1000 (gcd 1, fls(1000) = 10 → rshift
        // 4) → turns 1 and 62.
        h.set_weight(ids[0], 1);
        h.set_weight(ids[1], 1000);
        h.set_weight(ids[2], 1000);
        let c: Vec<_> = ids.iter().map(|&id| count(&h, id)).collect();
        assert_eq!(c.iter().sum::<usize>(), TAB_SIZE);
        assert!((30..=35).contains(&c[0]), "{c:?}");
        assert!(c[1].abs_diff(c[2]) <= 62, "{c:?}");
    }

    #[test]
    fn mh_quiescent_keeps_slots_and_fallback_probes() {
        let servers: Vec<(String, u16, u32)> =
            (1..=4).map(|i| (format!("10.1.0.{i}"), 80, 1)).collect();
        let refs: Vec<(&str, u16, u32)> = servers
            .iter()
            .map(|(a, p, w)| (a.as_str(), *p, *w))
            .collect();
        let mut plain = Harness::with(SchedulerKind::Mh, 0, &refs);
        let mut fb = Harness::with(SchedulerKind::Mh, svc_flags::SCHED1, &refs);
        let victim = plain.id(2);
        let before = table(&plain).to_vec();
        plain.set_weight(victim, 0);
        fb.set_weight(fb.id(2), 0);
        // Weight 0 keeps last_weight: the table does not change.
        assert_eq!(table(&plain), &before[..]);
        let clients: Vec<String> = (0..400)
            .map(|i| Ipv4Addr::from(0xC612_0000 + i * 7).to_string())
            .collect();
        let mut victims = 0;
        for c in &clients {
            let owner = before[slot(c.parse().unwrap(), 0, 0)];
            let p = from(&mut plain, c, 0);
            let f = from(&mut fb, c, 0);
            if owner == Some(victim) {
                victims += 1;
                assert_eq!(p, None, "{c}: no fallback → no destination");
                assert!(
                    f.is_some() && f != Some(victim),
                    "{c}: fallback must find another"
                );
            } else {
                assert_eq!(p, owner);
                assert_eq!(f, owner);
            }
        }
        assert!(
            victims > 50,
            "the quiescent server owned some clients ({victims})"
        );
        // Everything unusable → none even with fallback.
        for i in 0..4 {
            let id = fb.id(i);
            fb.set_overloaded(id, true);
        }
        assert_eq!(from(&mut fb, &clients[0], 0), None);
        // A service whose servers all have last_weight 0 has an empty table.
        let mut z = Harness::with(SchedulerKind::Mh, svc_flags::SCHED1, &[("10.1.0.1", 80, 0)]);
        assert!(table(&z).iter().all(Option::is_none));
        assert_eq!(from(&mut z, "10.0.0.1", 0), None);
        let id = z.id(0);
        z.set_weight(id, 3);
        assert!(table(&z).iter().all(|&s| s == Some(id)));
    }

    #[test]
    fn mh_removal_moves_only_the_removed_share() {
        let servers: Vec<(String, u16, u32)> =
            (1..=10).map(|i| (format!("10.1.0.{i}"), 8080, 1)).collect();
        let refs: Vec<(&str, u16, u32)> = servers
            .iter()
            .map(|(a, p, w)| (a.as_str(), *p, *w))
            .collect();
        let mut h = Harness::with(SchedulerKind::Mh, 0, &refs);
        let mut again = Harness::with(SchedulerKind::Mh, 0, &refs);
        let clients: Vec<String> = (0..20_000u32)
            .map(|i| Ipv4Addr::from(0xC612_0000 + i * 13).to_string())
            .collect();
        let before: Vec<_> = clients
            .iter()
            .map(|c| from(&mut h, c, 0).unwrap())
            .collect();
        // Deterministic: an identical service maps identically.
        let twin: Vec<_> = clients
            .iter()
            .map(|c| from(&mut again, c, 0).unwrap())
            .collect();
        assert_eq!(before, twin);
        // Balanced: each server has 10 % ± 2 %.
        let mut share: HashMap<DestId, usize> = HashMap::new();
        for d in &before {
            *share.entry(*d).or_default() += 1;
        }
        assert_eq!(share.len(), 10);
        assert!(
            share.values().all(|&n| (1600..=2400).contains(&n)),
            "{share:?}"
        );

        let victim = h.id(4);
        h.del(victim);
        let after: Vec<_> = clients
            .iter()
            .map(|c| from(&mut h, c, 0).unwrap())
            .collect();
        let mut moved_others = 0;
        for (b, a) in before.iter().zip(&after) {
            assert_ne!(*a, victim);
            if *b != victim && a != b {
                moved_others += 1;
            }
        }
        // Only the victim's ~10 % must move; Maglev disturbs a few more (0.9 % of the others
        // with these addresses), far from the ~90 % a modulo table like sh's would move.
        let others = clients.len() - share[&victim];
        let frac = moved_others as f64 / others as f64;
        assert!(
            frac < 0.02,
            "{moved_others} of {others} clients of other servers moved ({frac})"
        );
    }

    #[test]
    fn mh_more_servers_than_slots() {
        let servers: Vec<(String, u16, u32)> = (0..=TAB_SIZE as u32)
            .map(|i| (Ipv4Addr::from(0x0A00_0000 + i).to_string(), 80, 1))
            .collect();
        let refs: Vec<(&str, u16, u32)> = servers
            .iter()
            .map(|(a, p, w)| (a.as_str(), *p, *w))
            .collect();
        // Binding to 4094 servers fails (EINVAL).
        assert_eq!(
            Harness::bound(SchedulerKind::Mh, 0, &refs).unwrap_err(),
            SchedError::TooManyDests {
                dests: TAB_SIZE + 1,
                size: TAB_SIZE
            }
        );
        // With exactly 4093 each server gets exactly one slot.
        let mut h = Harness::bound(SchedulerKind::Mh, 0, &refs[..TAB_SIZE]).unwrap();
        let before = table(&h).to_vec();
        assert!(before.iter().all(Option::is_some));
        let distinct: std::collections::HashSet<_> = before.iter().collect();
        assert_eq!(distinct.len(), TAB_SIZE);
        // Adding two more: the table stays as it was; the newcomers have no slot.
        let extra1 = h.add("10.255.0.1", 80, 1);
        let extra2 = h.add("10.255.0.2", 80, 1);
        assert_eq!(table(&h), &before[..]);
        // Deleting an old server while still over the limit (4094 left): the rebuild fails
        // again and only that server's slot is emptied (its arena slot is freed at once).
        let old = h.id(0);
        let old_slot = before.iter().position(|&s| s == Some(old)).unwrap();
        h.del(old);
        let mut want = before.clone();
        want[old_slot] = None;
        assert_eq!(table(&h), &want[..]);
        // Back at 4093: the rebuild succeeds and includes the newcomers.
        h.del(extra2);
        assert!(table(&h).iter().all(Option::is_some));
        assert!(table(&h).contains(&Some(extra1)));
        assert!(!table(&h).contains(&Some(old)));
    }
}
