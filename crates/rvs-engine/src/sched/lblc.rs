//! `lblc`: locality-based least connection (`ip_vs_lblc.c`), keyed by the packet's
//! destination address, and the per-service locality table it shares with `lblcr`.
//!
//! A destination address keeps its cached real server while that server has weight > 0 and is
//! not "overloaded" in lblc's own sense (more active connections than its weight while some
//! server of the service is below half its weight). The threshold OVERLOAD flag is *not*
//! checked for a cached server, as in the kernel; it only matters when a new server is chosen
//! by the weighted-least-connection rule.

use std::net::IpAddr;

use super::hash::{addr_fold, hash_32};
use super::lc::weighted_least;
use crate::dest::{Dest, DestId, DestList};

/// log2 of the bucket count (`CONFIG_IP_VS_LBLC_TAB_BITS`, same for lblcr).
const TAB_BITS: u32 = 10;
/// Buckets.
const TAB_SIZE: usize = 1 << TAB_BITS;
/// Entries above which the periodic check starts evicting idle entries.
const MAX_SIZE: usize = TAB_SIZE * 16;
/// Period of the garbage-collection timer (`CHECK_EXPIRE_INTERVAL`, 60 s).
pub(crate) const CHECK_EXPIRE_INTERVAL_MS: u64 = 60_000;
/// Idle time after which an entry may be evicted from an over-full table (`ENTRY_TIMEOUT`).
const ENTRY_TIMEOUT_MS: u64 = 6 * 60_000;
/// Every this many timer runs without eviction, a full scan drops entries idle longer than
/// the `lblc(r)_expiration` sysctl.
const COUNT_FOR_FULL_EXPIRATION: u32 = 30;

/// One destination address and what it maps to.
#[derive(Debug, Clone)]
pub(crate) struct Entry<V> {
    /// Packet destination address (the key).
    pub(crate) addr: IpAddr,
    /// Last lookup, ms.
    pub(crate) lastuse: u64,
    /// The cached real server (lblc) or server set (lblcr).
    pub(crate) value: V,
}

/// The 1024-bucket table of lblc/lblcr with its expiry timer.
#[derive(Debug, Clone)]
pub(crate) struct LocalityTable<V> {
    buckets: Vec<Vec<Entry<V>>>,
    entries: usize,
    /// Bucket where the last partial scan stopped.
    rover: usize,
    /// Timer runs since the last full scan (starts at 1 like the kernel's).
    counter: u32,
    /// When the timer fires next; `None` until armed.
    next_check: Option<u64>,
}

impl<V> LocalityTable<V> {
    pub(crate) fn new() -> Self {
        Self {
            buckets: (0..TAB_SIZE).map(|_| Vec::new()).collect(),
            entries: 0,
            rover: 0,
            counter: 1,
            next_check: None,
        }
    }

    /// The bucket of a destination address: `hash_32(daddr_fold, 10)`.
    pub(crate) fn bucket(addr: IpAddr) -> usize {
        hash_32(addr_fold(addr), TAB_BITS) as usize
    }

    /// Number of entries.
    #[cfg(test)]
    pub(crate) const fn len(&self) -> usize {
        self.entries
    }

    pub(crate) fn get_mut(&mut self, addr: IpAddr) -> Option<&mut Entry<V>> {
        self.buckets[Self::bucket(addr)]
            .iter_mut()
            .find(|e| e.addr == addr)
    }

    /// Adds an entry for an address that has none.
    pub(crate) fn insert(&mut self, addr: IpAddr, value: V, now: u64) {
        self.buckets[Self::bucket(addr)].push(Entry {
            addr,
            lastuse: now,
            value,
        });
        self.entries += 1;
    }

    /// Keeps the entries for which `keep` returns true (it may edit them).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&mut Entry<V>) -> bool) {
        for b in &mut self.buckets {
            let n = b.len();
            b.retain_mut(&mut keep);
            self.entries -= n - b.len();
        }
    }

    /// Starts the 60 s timer if it is not running (the kernel starts it in `init_service`;
    /// we have no clock there, so the first `gc` or `schedule` call starts it).
    pub(crate) fn arm(&mut self, now: u64) {
        if self.next_check.is_none() {
            self.next_check = Some(now.saturating_add(CHECK_EXPIRE_INTERVAL_MS));
        }
    }

    /// When the timer fires next.
    pub(crate) const fn poll_timeout(&self) -> Option<u64> {
        self.next_check
    }

    /// The timer handler (`ip_vs_lblc_check_expire`), if it is due at `now`: every 30th run a
    /// full scan drops entries unused for `expiration_ms`; otherwise, only while the table holds
    /// more than 16384 entries, entries idle for 6 min are dropped, about 4/3 of the excess
    /// (at most 8192), scanning on from where the previous partial scan stopped.
    pub(crate) fn check_expire(&mut self, now: u64, expiration_ms: u64) {
        let Some(due) = self.next_check else {
            self.arm(now);
            return;
        };
        if now < due {
            return;
        }
        if self.counter.is_multiple_of(COUNT_FOR_FULL_EXPIRATION) {
            self.retain(|e| now < e.lastuse.saturating_add(expiration_ms));
            self.counter = 1;
        } else if self.entries <= MAX_SIZE {
            self.counter += 1;
        } else {
            let mut goal = ((self.entries - MAX_SIZE) * 4 / 3).min(MAX_SIZE / 2);
            let mut j = self.rover;
            for _ in 0..TAB_SIZE {
                j = (j + 1) % TAB_SIZE;
                let b = &mut self.buckets[j];
                let n = b.len();
                b.retain(|e| now < e.lastuse.saturating_add(ENTRY_TIMEOUT_MS));
                let removed = n - b.len();
                self.entries -= removed;
                goal = goal.saturating_sub(removed);
                if goal == 0 {
                    break;
                }
            }
            self.rover = j;
        }
        self.next_check = Some(now.saturating_add(CHECK_EXPIRE_INTERVAL_MS));
    }
}

/// lblc/lblcr's "overloaded": `d` has more active connections than its weight **and** some
/// server of the service is below half its weight (`active * 2 < weight`).
pub(crate) fn is_overloaded(d: &Dest, dests: DestList<'_>) -> bool {
    d.activeconns > d.weight
        && dests
            .iter()
            .any(|(_, x)| u64::from(x.activeconns) * 2 < u64::from(x.weight))
}

/// The lblc scheduler state.
#[derive(Debug, Clone)]
pub(crate) struct Lblc {
    table: LocalityTable<DestId>,
    /// `lblc_expiration` sysctl, ms.
    pub(crate) expiration_ms: u64,
}

impl Lblc {
    pub(crate) fn new(expiration_ms: u64) -> Self {
        Self {
            table: LocalityTable::new(),
            expiration_ms,
        }
    }

    /// Entries in the locality table.
    #[cfg(test)]
    pub(crate) const fn len(&self) -> usize {
        self.table.len()
    }

    /// `del_dest`: forget the destination addresses cached on `id` (the kernel keeps them but
    /// ignores a cached server that is no longer AVAILABLE, which gives the same choices).
    pub(crate) fn del_dest(&mut self, id: DestId) {
        self.table.retain(|e| e.value != id);
    }

    pub(crate) fn gc(&mut self, now: u64) {
        self.table.check_expire(now, self.expiration_ms);
    }

    pub(crate) const fn poll_timeout(&self) -> Option<u64> {
        self.table.poll_timeout()
    }

    pub(crate) fn schedule(
        &mut self,
        dests: DestList<'_>,
        daddr: IpAddr,
        now: u64,
    ) -> Option<DestId> {
        self.table.arm(now);
        if let Some(en) = self.table.get_mut(daddr) {
            en.lastuse = now;
            let cached = en.value;
            if dests
                .try_by_id(cached)
                .is_some_and(|d| d.available && d.weight > 0 && !is_overloaded(d, dests))
            {
                return Some(cached);
            }
        }
        let id = weighted_least(dests.iter(), Dest::overhead)?;
        match self.table.get_mut(daddr) {
            Some(en) => {
                if en.value != id {
                    en.value = id;
                    en.lastuse = now;
                }
            }
            None => self.table.insert(daddr, id, now),
        }
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::testutil::{Harness, input};
    use crate::sched::{SchedTunables, SchedulerKind};

    const MIN: u64 = 60_000;

    fn to(h: &mut Harness, daddr: &str, now: u64) -> Option<DestId> {
        h.schedule(&input("198.18.0.1", 1000, daddr, now))
    }

    #[test]
    fn lblc_bucket_vectors() {
        assert_eq!(
            LocalityTable::<()>::bucket("10.0.0.1".parse().unwrap()),
            159
        );
        assert_eq!(
            LocalityTable::<()>::bucket("192.168.1.100".parse().unwrap()),
            357
        );
    }

    #[test]
    fn lblc_sticks_to_cached_server_despite_load() {
        let mut h = Harness::with(
            SchedulerKind::Lblc,
            0,
            &[("10.0.0.1", 80, 4), ("10.0.0.2", 80, 4)],
        );
        let (a, b) = (h.id(0), h.id(1));
        // Idle: wlc picks the newest (B) for the first address.
        assert_eq!(to(&mut h, "192.168.1.100", 0), Some(b));
        h.bind(b, true);
        // A different address goes to the least loaded: A.
        assert_eq!(to(&mut h, "192.168.1.101", 0), Some(a));
        // The first address stays on B while B is not "overloaded" (active <= weight), even
        // though A is now less loaded.
        for i in 0..3 {
            assert_eq!(to(&mut h, "192.168.1.100", i), Some(b));
            h.bind(b, true);
        }
        assert_eq!(h.dest(b).activeconns, 4);
        assert_eq!(to(&mut h, "192.168.1.100", 5), Some(b));
        // The threshold OVERLOAD flag is not checked for the cached server…
        h.set_overloaded(b, true);
        assert_eq!(to(&mut h, "192.168.1.100", 6), Some(b));
        // …but a new address does not get it.
        assert_eq!(to(&mut h, "192.168.1.102", 6), Some(a));
        h.set_overloaded(b, false);
        // Weight 0 invalidates the cached entry; the replacement is cached.
        h.set_weight(b, 0);
        assert_eq!(to(&mut h, "192.168.1.100", 7), Some(a));
        h.set_weight(b, 4);
        assert_eq!(to(&mut h, "192.168.1.100", 8), Some(a));
    }

    #[test]
    fn lblc_overloaded_rule() {
        let mut h = Harness::with(
            SchedulerKind::Lblc,
            0,
            &[("10.0.0.1", 80, 4), ("10.0.0.2", 80, 2)],
        );
        let (a, b) = (h.id(0), h.id(1));
        assert_eq!(to(&mut h, "10.9.9.9", 0), Some(b));
        // B: 3 active > weight 2. A: 2 active, 2*2 < 4 is false → nobody below half: keep B.
        h.set_conns(b, 3, 0);
        h.set_conns(a, 2, 0);
        assert_eq!(to(&mut h, "10.9.9.9", 1), Some(b));
        // A at 1 active (2 < 4): B is now "overloaded" → rescheduled by wlc to A and cached.
        h.set_conns(a, 1, 0);
        assert_eq!(to(&mut h, "10.9.9.9", 2), Some(a));
        h.set_conns(a, 3, 0);
        assert_eq!(to(&mut h, "10.9.9.9", 3), Some(a));
        // B exactly at its weight is not overloaded.
        h.set_conns(b, 2, 0);
        h.set_conns(a, 5, 0);
        assert_eq!(to(&mut h, "10.9.9.10", 4), Some(b));
        h.set_conns(a, 0, 0);
        assert_eq!(to(&mut h, "10.9.9.10", 5), Some(b));
    }

    #[test]
    fn lblc_delete_drops_entries_and_no_destination() {
        let mut h = Harness::with(SchedulerKind::Lblc, 0, &[("10.0.0.1", 80, 1)]);
        let a = h.id(0);
        assert_eq!(to(&mut h, "10.9.9.9", 0), Some(a));
        let b = h.add("10.0.0.2", 80, 1);
        assert_eq!(to(&mut h, "10.9.9.9", 1), Some(a));
        // Deleting A frees its slot at once: the entry must be gone (else a panic here).
        h.del(a);
        assert_eq!(to(&mut h, "10.9.9.9", 2), Some(b));
        h.set_overloaded(b, true);
        // Cached entry still used (OVERLOAD not checked for cached servers)…
        assert_eq!(to(&mut h, "10.9.9.9", 3), Some(b));
        // …but a fresh address finds nothing.
        assert_eq!(to(&mut h, "10.9.9.8", 3), None);
    }

    fn lblc_len(h: &Harness) -> usize {
        match &h.sched.state {
            crate::sched::State::Lblc(l) => l.len(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn lblc_full_expiry_every_30_minutes() {
        let mut h = Harness::with(SchedulerKind::Lblc, 0, &[("10.0.0.1", 80, 1)]);
        let t = SchedTunables {
            lblc_expiration_ms: 10 * MIN,
            ..SchedTunables::default()
        };
        h.sched.set_tunables(&t);
        assert_eq!(h.sched.poll_timeout(), None);
        to(&mut h, "10.9.9.1", 0);
        // The first schedule starts the 60 s timer.
        assert_eq!(h.sched.poll_timeout(), Some(MIN));
        to(&mut h, "10.9.9.2", 0);
        assert_eq!(lblc_len(&h), 2);
        // Keep 10.9.9.2 in use until minute 25.
        to(&mut h, "10.9.9.2", 25 * MIN);
        // Runs 1..29 (minutes 1..29) only count; the table is small, nothing is removed.
        for m in 1..30 {
            assert_eq!(h.sched.poll_timeout(), Some(m * MIN));
            h.sched.gc(m * MIN, &t);
            assert_eq!(lblc_len(&h), 2, "minute {m}");
        }
        // A call before the timer is due does nothing.
        h.sched.gc(30 * MIN - 1, &t);
        assert_eq!(h.sched.poll_timeout(), Some(30 * MIN));
        // Run 30 is a full scan: 10.9.9.1 (idle 30 min > 10) goes, 10.9.9.2 (idle 5) stays.
        h.sched.gc(30 * MIN, &t);
        assert_eq!(lblc_len(&h), 1);
        assert_eq!(h.sched.poll_timeout(), Some(31 * MIN));
        // The next full scan is 30 runs later.
        for m in 31..60 {
            h.sched.gc(m * MIN, &t);
            assert_eq!(lblc_len(&h), 1);
        }
        h.sched.gc(60 * MIN, &t);
        assert_eq!(lblc_len(&h), 0);
    }

    #[test]
    fn lblc_partial_expiry_when_table_is_full() {
        let mut table: LocalityTable<u32> = LocalityTable::new();
        table.arm(0);
        // 16384 + 300 entries: 300 fresh, the rest idle since t = 0.
        let n = MAX_SIZE + 300;
        for i in 0..n {
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + i as u32));
            table.insert(addr, 0, if i < 300 { 10 * MIN } else { 0 });
        }
        // At minute 10 (run 1): the excess is 300, goal 400: whole buckets of idle (> 6 min)
        // entries are dropped until at least 400 went; fresh ones stay.
        table.check_expire(MIN, 24 * 60 * MIN);
        assert_eq!(table.len(), n, "entries idle 1 min are not evicted");
        table.check_expire(10 * MIN, 24 * 60 * MIN);
        let removed = n - table.len();
        // Buckets hold ~16 entries each: at least 400, at most 400 + one bucket.
        assert!((400..400 + 64).contains(&removed), "removed {removed}");
        let mut fresh = 0;
        table.retain(|e| {
            fresh += usize::from(e.lastuse == 10 * MIN);
            true
        });
        assert_eq!(fresh, 300);
        // Over-full runs do not advance the full-scan counter; the rover stopped mid-table so
        // the next partial scan continues after it.
        assert_eq!(table.counter, 1);
        assert_ne!(table.rover, 0);
        // Back under the limit: the next run only counts.
        table.check_expire(11 * MIN, 24 * 60 * MIN);
        assert_eq!(table.counter, 2);
        assert_eq!(table.len(), n - removed);
    }
}
