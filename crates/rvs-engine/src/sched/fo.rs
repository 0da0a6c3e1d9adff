//! `fo` (weighted failover, `ip_vs_fo.c`) and `ovf` (weighted overflow, `ip_vs_ovf.c`): both
//! send everything to the highest-weight usable server and ignore load, except that `ovf`
//! treats a server whose active connections exceed its weight as unusable.

use crate::dest::{Dest, DestId, DestList};

/// The highest-weight server among those `usable` accepts; ties → earlier in list order.
fn highest_weight(dests: DestList<'_>, usable: impl Fn(&Dest) -> bool) -> Option<DestId> {
    let mut best: Option<(DestId, u32)> = None;
    for (id, d) in dests.iter().filter(|(_, d)| usable(d)) {
        if best.is_none_or(|(_, w)| d.weight > w) {
            best = Some((id, d.weight));
        }
    }
    best.map(|(id, _)| id)
}

/// `fo`: the highest weight among schedulable servers.
pub(crate) fn fo(dests: DestList<'_>) -> Option<DestId> {
    highest_weight(dests, Dest::is_schedulable)
}

/// `ovf`: as `fo`, skipping servers with `activeconns > weight` (inactive connections, and so
/// UDP, do not count).
pub(crate) fn ovf(dests: DestList<'_>) -> Option<DestId> {
    highest_weight(dests, |d| d.is_schedulable() && d.activeconns <= d.weight)
}

#[cfg(test)]
mod tests {
    use crate::sched::SchedulerKind;
    use crate::sched::testutil::Harness;

    const THREE: &[(&str, u16, u32)] = &[
        ("10.0.0.1", 80, 5),
        ("10.0.0.2", 80, 10),
        ("10.0.0.3", 80, 10),
    ];

    #[test]
    fn fo_picks_highest_weight_ignoring_load() {
        // §11 item 45. B and C tie at 10: C is earlier in list order (newest).
        let mut h = Harness::with(SchedulerKind::Fo, 0, THREE);
        let (a, b, c) = (h.id(0), h.id(1), h.id(2));
        for _ in 0..50 {
            assert_eq!(h.schedule_any(), Some(c));
            h.bind(c, true);
        }
        h.set_overloaded(c, true);
        assert_eq!(h.schedule_any(), Some(b));
        h.set_weight(b, 0);
        assert_eq!(h.schedule_any(), Some(a));
        h.set_weight(a, 20);
        h.set_overloaded(c, false);
        assert_eq!(h.schedule_any(), Some(a));
        h.set_overloaded(a, true);
        h.set_overloaded(c, true);
        assert_eq!(h.schedule_any(), None);
    }

    #[test]
    fn ovf_overflows_when_active_exceeds_weight() {
        let mut h = Harness::with(SchedulerKind::Ovf, 0, THREE);
        let (a, b, c) = (h.id(0), h.id(1), h.id(2));
        // C takes connections until its active count exceeds 10 (11 connections), then B
        // takes 11, then A 6, then nobody.
        let mut seq = Vec::new();
        while let Some(id) = h.schedule_any() {
            h.bind(id, true);
            seq.push(id);
            assert!(seq.len() <= 28, "ovf never runs out");
        }
        let mut want = vec![c; 11];
        want.extend([b; 11]);
        want.extend([a; 6]);
        assert_eq!(seq, want);
        // Inactive connections do not count.
        h.set_conns(c, 10, 1000);
        assert_eq!(h.schedule_any(), Some(c));
        h.set_weight(c, 0);
        assert_eq!(h.schedule_any(), None);
    }
}
