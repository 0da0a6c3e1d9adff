//! `lblcr`: locality-based least connection with replication (`ip_vs_lblcr.c`).
//!
//! Each destination address maps to a *set* of real servers. A lookup uses the least loaded
//! usable member; when that one is "overloaded" (lblc's definition) or there is none, a server
//! chosen by weighted least connection joins the set. A set that has not changed for
//! `lblcr_expiration` loses its most loaded member on the next lookup, so sets shrink again
//! when demand falls.

use std::net::IpAddr;

use super::lblc::{LocalityTable, is_overloaded};
use super::lc::weighted_least;
use crate::dest::{Dest, DestId, DestList};

/// The server set of one destination address (`struct ip_vs_dest_set`).
#[derive(Debug, Clone)]
pub(crate) struct DestSet {
    /// Members, most recently inserted first.
    pub(crate) members: Vec<DestId>,
    /// Last time a member was inserted or erased, ms.
    pub(crate) lastmod: u64,
}

impl DestSet {
    /// `ip_vs_dest_set_insert`: add `id` at the front unless present; only a real insertion
    /// touches `lastmod`.
    fn insert(&mut self, id: DestId, now: u64) {
        if !self.members.contains(&id) {
            self.members.insert(0, id);
            self.lastmod = now;
        }
    }

    /// `ip_vs_dest_set_min`: the weighted-least-loaded usable member.
    fn min(&self, dests: DestList<'_>) -> Option<DestId> {
        let members = self
            .members
            .iter()
            .filter_map(|&id| dests.try_by_id(id).map(|d| (id, d)))
            .filter(|(_, d)| d.available);
        weighted_least(members, Dest::overhead)
    }

    /// `ip_vs_dest_set_max`: the weighted-most-loaded member with weight > 0 (the OVERLOAD flag
    /// does not matter); ties → the earlier (more recently inserted) member.
    fn max(&self, dests: DestList<'_>) -> Option<DestId> {
        let mut members = self
            .members
            .iter()
            .filter_map(|&id| dests.try_by_id(id).map(|d| (id, d)))
            .filter(|(_, d)| d.weight > 0);
        let (mut most_id, mut most) = members.next()?;
        let mut moh = most.overhead();
        for (id, d) in members {
            let doh = d.overhead();
            if u128::from(moh) * u128::from(d.weight) < u128::from(doh) * u128::from(most.weight) {
                (most_id, most, moh) = (id, d, doh);
            }
        }
        Some(most_id)
    }
}

/// The lblcr scheduler state.
#[derive(Debug, Clone)]
pub(crate) struct Lblcr {
    table: LocalityTable<DestSet>,
    /// `lblcr_expiration` sysctl, ms.
    pub(crate) expiration_ms: u64,
}

impl Lblcr {
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

    /// The set of `daddr`, most recent member first.
    #[cfg(test)]
    pub(crate) fn set_of(&mut self, daddr: IpAddr) -> Option<Vec<DestId>> {
        self.table.get_mut(daddr).map(|e| e.value.members.clone())
    }

    /// `del_dest`: take `id` out of every set and drop sets left empty. (The kernel leaves the
    /// deleted server in the sets, never choosing it as it is not AVAILABLE; it still counts
    /// toward the "more than one member" shrink test there, a difference only visible while a
    /// deleted server would have been in a set.)
    pub(crate) fn del_dest(&mut self, id: DestId) {
        self.table.retain(|e| {
            e.value.members.retain(|&m| m != id);
            !e.value.members.is_empty()
        });
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
        let expiration = self.expiration_ms;
        if let Some(en) = self.table.get_mut(daddr) {
            en.lastuse = now;
            let set = &mut en.value;
            // Chosen before the shrink below, as in the kernel: the erased member may still be
            // returned this once.
            let min = set.min(dests);
            if set.members.len() > 1
                && now > set.lastmod.saturating_add(expiration)
                && let Some(m) = set.max(dests)
            {
                set.members.retain(|&x| x != m);
                set.lastmod = now;
            }
            if let Some(m) = min
                && !is_overloaded(dests.by_id(m), dests)
            {
                return Some(m);
            }
            let id = weighted_least(dests.iter(), Dest::overhead)?;
            set.insert(id, now);
            return Some(id);
        }
        let id = weighted_least(dests.iter(), Dest::overhead)?;
        self.table.insert(
            daddr,
            DestSet {
                members: vec![id],
                lastmod: now,
            },
            now,
        );
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

    fn state(h: &mut Harness) -> &mut Lblcr {
        match &mut h.sched.state {
            crate::sched::State::Lblcr(l) => l,
            _ => unreachable!(),
        }
    }

    fn set(h: &mut Harness, daddr: &str) -> Option<Vec<DestId>> {
        state(h).set_of(daddr.parse().unwrap())
    }

    #[test]
    fn lblcr_set_grows_under_load_and_shrinks_after_expiration() {
        let mut h = Harness::with(
            SchedulerKind::Lblcr,
            0,
            &[
                ("10.0.0.1", 80, 2),
                ("10.0.0.2", 80, 2),
                ("10.0.0.3", 80, 2),
            ],
        );
        let t = SchedTunables {
            lblcr_expiration_ms: 10 * MIN,
            ..SchedTunables::default()
        };
        h.sched.set_tunables(&t);
        let (a, b, c) = (h.id(0), h.id(1), h.id(2));
        let vip = "192.168.1.100";
        // First lookup: wlc over idle servers → C (newest); the set is {C}.
        assert_eq!(to(&mut h, vip, 0), Some(c));
        assert_eq!(set(&mut h, vip), Some(vec![c]));
        // Sticky while C is not overloaded (active <= weight).
        h.set_conns(c, 2, 0);
        assert_eq!(to(&mut h, vip, MIN), Some(c));
        // C 3 active > 2 while others are idle (0 * 2 < 2): wlc picks B, which joins the set.
        h.set_conns(c, 3, 0);
        assert_eq!(to(&mut h, vip, 2 * MIN), Some(b));
        assert_eq!(set(&mut h, vip), Some(vec![b, c]));
        // Now the least loaded member is used: B (idle) rather than C.
        assert_eq!(to(&mut h, vip, 3 * MIN), Some(b));
        // B and C both overloaded → A joins.
        h.set_conns(b, 3, 0);
        assert_eq!(to(&mut h, vip, 4 * MIN), Some(a));
        assert_eq!(set(&mut h, vip), Some(vec![a, b, c]));
        // Load falls. Within the expiration nothing is removed.
        h.set_conns(a, 1, 0);
        h.set_conns(b, 0, 0);
        h.set_conns(c, 1, 5);
        assert_eq!(to(&mut h, vip, 14 * MIN), Some(b));
        assert_eq!(set(&mut h, vip).unwrap().len(), 3);
        // 10 min after the last change (lastmod = 4 min), strictly later: the most loaded member
        // (C: 261/2 vs A: 256/2) leaves; the pick was made before, among all three.
        assert_eq!(to(&mut h, vip, 14 * MIN + 1), Some(b));
        assert_eq!(set(&mut h, vip), Some(vec![a, b]));
        // The removal restarted the clock; next shrink after another 10 min, down to one.
        assert_eq!(to(&mut h, vip, 20 * MIN), Some(b));
        assert_eq!(set(&mut h, vip).unwrap().len(), 2);
        assert_eq!(to(&mut h, vip, 25 * MIN), Some(b));
        assert_eq!(set(&mut h, vip), Some(vec![b]));
        // A set of one is never shrunk.
        assert_eq!(to(&mut h, vip, 100 * MIN), Some(b));
        assert_eq!(set(&mut h, vip), Some(vec![b]));
    }

    #[test]
    fn lblcr_min_skips_overload_flag_and_weight_zero() {
        let mut h = Harness::with(
            SchedulerKind::Lblcr,
            0,
            &[("10.0.0.1", 80, 1), ("10.0.0.2", 80, 1)],
        );
        let (a, b) = (h.id(0), h.id(1));
        let vip = "10.9.9.9";
        assert_eq!(to(&mut h, vip, 0), Some(b));
        // Unlike lblc, the set minimum does check the OVERLOAD flag: B flagged → A chosen and
        // added.
        h.set_overloaded(b, true);
        assert_eq!(to(&mut h, vip, 1), Some(a));
        assert_eq!(set(&mut h, vip), Some(vec![a, b]));
        h.set_overloaded(b, false);
        // Both members usable and idle: the first member (A, most recently inserted) wins ties.
        assert_eq!(to(&mut h, vip, 2), Some(a));
        h.set_weight(a, 0);
        assert_eq!(to(&mut h, vip, 3), Some(b));
        h.set_overloaded(b, true);
        assert_eq!(to(&mut h, vip, 4), None);
    }

    #[test]
    fn lblcr_delete_removes_member_and_empty_sets() {
        let mut h = Harness::with(
            SchedulerKind::Lblcr,
            0,
            &[("10.0.0.1", 80, 1), ("10.0.0.2", 80, 1)],
        );
        let (a, b) = (h.id(0), h.id(1));
        assert_eq!(to(&mut h, "10.9.9.9", 0), Some(b));
        h.set_overloaded(b, true);
        assert_eq!(to(&mut h, "10.9.9.9", 1), Some(a));
        h.set_overloaded(b, false);
        assert_eq!(to(&mut h, "10.9.9.8", 1), Some(b));
        assert_eq!(state(&mut h).len(), 2);
        h.del(b);
        assert_eq!(set(&mut h, "10.9.9.9"), Some(vec![a]));
        assert_eq!(set(&mut h, "10.9.9.8"), None);
        assert_eq!(state(&mut h).len(), 1);
        assert_eq!(to(&mut h, "10.9.9.8", 2), Some(a));
        assert_eq!(to(&mut h, "10.9.9.9", 2), Some(a));
    }

    #[test]
    fn lblcr_gc_expires_idle_entries() {
        let mut h = Harness::with(SchedulerKind::Lblcr, 0, &[("10.0.0.1", 80, 1)]);
        let t = SchedTunables {
            lblcr_expiration_ms: 5 * MIN,
            ..SchedTunables::default()
        };
        h.sched.gc(0, &t);
        assert_eq!(h.sched.poll_timeout(), Some(MIN));
        to(&mut h, "10.9.9.1", 0);
        to(&mut h, "10.9.9.2", 28 * MIN);
        let mut now = MIN;
        while now < 30 * MIN {
            h.sched.gc(now, &t);
            now += MIN;
        }
        assert_eq!(state(&mut h).len(), 2);
        // Minute 30 is the full scan: idle 30 min > 5 → gone; idle 2 min → kept.
        h.sched.gc(30 * MIN, &t);
        assert_eq!(state(&mut h).len(), 1);
        assert!(set(&mut h, "10.9.9.2").is_some());
    }
}
