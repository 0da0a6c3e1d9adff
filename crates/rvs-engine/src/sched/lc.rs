//! The least-connection family: `lc`, `wlc`, `sed`, `nq` (`ip_vs_lc.c`, `ip_vs_wlc.c`,
//! `ip_vs_sed.c`, `ip_vs_nq.c`), and the weighted-least-connection pick that `lblc`/`lblcr`
//! fall back on.
//!
//! Weighted comparisons cross-multiply ("A is better than B" ⇔ `oh(B) * w(A) > oh(A) * w(B)`)
//! and keep the earlier real server in list order on ties, exactly like the kernel.

use crate::dest::{Dest, DestId, DestList};

/// `sed`/`nq` overhead: active connections plus the one being scheduled.
pub(super) fn sed_overhead(d: &Dest) -> u64 {
    u64::from(d.activeconns) + 1
}

/// Whether `cand` (overhead `coh`) beats `least`: `loh * w(cand) > coh * w(least)`, exact
/// for every weight/overhead combination: in 64 bits as the kernel's `(__s64)` comparison
/// (with weights up to 65535 and overheads below 2^40 the products stay below 2^56), and in
/// 128 bits should a product overflow.
#[inline(always)]
fn better(loh: u64, least: &Dest, coh: u64, cand: &Dest) -> bool {
    better_w(loh, least.weight, coh, cand.weight)
}

#[inline(always)]
pub(super) fn better_w(loh: u64, lw: u32, coh: u64, cw: u32) -> bool {
    // Overheads are below 2^41 and weights below 2^32, so both operands are non-negative
    // i64 values: a signed multiply that does not overflow gives the exact product (and
    // compiles to a two-operand imul).
    let (l, c) = (loh as i64, coh as i64);
    match (l.checked_mul(i64::from(cw)), c.checked_mul(i64::from(lw))) {
        (Some(l), Some(c)) => l > c,
        _ => better_wide(loh, lw, coh, cw),
    }
}

#[cold]
#[inline(never)]
fn better_wide(loh: u64, lw: u32, coh: u64, cw: u32) -> bool {
    u128::from(loh) * u128::from(cw) > u128::from(coh) * u128::from(lw)
}

/// The weighted-least pick over `it` (in list order): the first schedulable server is the
/// baseline; every later non-overloaded server replaces it if strictly better. (A weight-0
/// server can never be strictly better, so it never wins.)
#[inline]
pub(crate) fn weighted_least<'a>(
    mut it: impl Iterator<Item = (DestId, &'a Dest)>,
    overhead: impl Fn(&Dest) -> u64,
) -> Option<DestId> {
    let (mut least_id, least) = it.by_ref().find(|(_, d)| d.is_schedulable())?;
    let (mut loh, mut lw) = (overhead(least), least.weight);
    for (id, d) in it {
        if d.overloaded {
            continue;
        }
        let doh = overhead(d);
        if better_w(loh, lw, doh, d.weight) {
            (least_id, loh, lw) = (id, doh, d.weight);
        }
    }
    Some(least_id)
}

/// [`weighted_least`] over a whole service, as one tight loop over its list (the scan
/// every wlc/sed connection pays for, across all real servers).
#[inline(never)]
fn weighted_least_list(dests: DestList<'_>, overhead: impl Fn(&Dest) -> u64) -> Option<DestId> {
    let arena = dests.arena();
    let mut rest = dests.ids().iter();
    let (mut least_id, mut loh, mut lw) = loop {
        let &id = rest.next()?;
        if let Some(d) = arena.get(id)
            && d.is_schedulable()
        {
            break (id, overhead(d), d.weight);
        }
    };
    for &id in rest {
        // A vacant slot (never in a list) could not win either: weight 0, overloaded.
        let Some(d) = arena.get_any(id) else { continue };
        let doh = overhead(d);
        // Overloaded servers are skipped; evaluated without a branch.
        if !d.overloaded & better_w(loh, lw, doh, d.weight) {
            (least_id, loh, lw) = (id, doh, d.weight);
        }
    }
    Some(least_id)
}

/// `lc`: the minimum `active * 256 + inactive` among schedulable servers (weights otherwise
/// ignored); ties → earlier in list order.
pub(crate) fn lc(dests: DestList<'_>) -> Option<DestId> {
    let mut least: Option<(DestId, u64)> = None;
    for (id, d) in dests.iter().filter(|(_, d)| d.is_schedulable()) {
        let doh = d.overhead();
        if least.is_none_or(|(_, loh)| doh < loh) {
            least = Some((id, doh));
        }
    }
    least.map(|(id, _)| id)
}

/// `wlc` (the default scheduler): minimum `(active * 256 + inactive) / weight`, by the
/// kernel's scan. The scheduler picks from the incremental index of `least.rs` instead; this
/// scan is its reference (checked against it on every pick in debug builds).
pub(crate) fn wlc(dests: DestList<'_>) -> Option<DestId> {
    weighted_least_list(dests, Dest::overhead)
}

/// `sed`: minimum `(active + 1) / weight`, by the kernel's scan (the reference of `least.rs`,
/// as for [`wlc`]).
pub(crate) fn sed(dests: DestList<'_>) -> Option<DestId> {
    weighted_least_list(dests, sed_overhead)
}

/// `nq`: the first schedulable server with no active connection, else as `sed`.
pub(crate) fn nq(dests: DestList<'_>) -> Option<DestId> {
    let mut least: Option<(DestId, &Dest, u64)> = None;
    for (id, d) in dests.iter().filter(|(_, d)| d.is_schedulable()) {
        if d.activeconns == 0 {
            return Some(id);
        }
        let doh = sed_overhead(d);
        if least.is_none_or(|(_, l, loh)| better(loh, l, doh, d)) {
            least = Some((id, d, doh));
        }
    }
    least.map(|(id, _, _)| id)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::dest::DestId;
    use crate::sched::SchedulerKind;
    use crate::sched::testutil::Harness;

    const TWO: &[(&str, u16, u32)] = &[("10.0.0.1", 80, 1), ("10.0.0.2", 80, 2)];

    #[test]
    fn wlc_vectors() {
        // §11 item 42: idle equal weights → the most recently added.
        let mut h = Harness::with(
            SchedulerKind::Wlc,
            0,
            &[("10.0.0.1", 80, 1), ("10.0.0.2", 80, 1)],
        );
        assert_eq!(h.schedule_any(), Some(h.id(1)));
        // A(w=1, 1 active) vs B(w=2, 1 active): 256/1 vs 256/2 → B.
        let mut h = Harness::with(SchedulerKind::Wlc, 0, TWO);
        let (a, b) = (h.id(0), h.id(1));
        h.set_conns(a, 1, 0);
        h.set_conns(b, 1, 0);
        assert_eq!(h.schedule_any(), Some(b));
        // Same in the other list order (B first as baseline; A is not strictly better).
        let mut h = Harness::with(SchedulerKind::Wlc, 0, &[TWO[1], TWO[0]]);
        let (b, a) = (h.id(0), h.id(1));
        h.set_conns(a, 1, 0);
        h.set_conns(b, 1, 0);
        assert_eq!(h.schedule_any(), Some(b));
        // Exact tie (A 1 active w1, B 2 active w2): the earlier in list order (newest) wins.
        h.set_conns(b, 2, 0);
        assert_eq!(h.schedule_any(), Some(a));
    }

    #[test]
    fn lc_vectors() {
        // §11 item 43: 255 inactive (overhead 255) beats 1 active (overhead 256), whatever the
        // weights.
        let mut h = Harness::with(
            SchedulerKind::Lc,
            0,
            &[("10.0.0.1", 80, 1), ("10.0.0.2", 80, 100)],
        );
        let (a, b) = (h.id(0), h.id(1));
        h.set_conns(a, 0, 255);
        h.set_conns(b, 1, 0);
        assert_eq!(h.schedule_any(), Some(a));
        h.set_conns(a, 0, 256);
        // Tie at 256: B is earlier in list order.
        assert_eq!(h.schedule_any(), Some(b));
        h.set_weight(b, 0);
        assert_eq!(h.schedule_any(), Some(a));
        h.set_overloaded(a, true);
        assert_eq!(h.schedule_any(), None);
    }

    #[test]
    fn sed_and_nq_vectors() {
        // §11 item 44. A(w1), B(w2) added A then B: list B, A.
        let mut h = Harness::with(SchedulerKind::Sed, 0, TWO);
        let (a, b) = (h.id(0), h.id(1));
        // sed: A 0 active → 1/1; B 1 active → 2/2: tie → B (earlier).
        h.set_conns(b, 1, 0);
        assert_eq!(h.schedule_any(), Some(b));
        // B 2 active → 3/2 > 1/1 → A. Inactive connections are ignored.
        h.set_conns(b, 2, 0);
        h.set_conns(a, 0, 1000);
        assert_eq!(h.schedule_any(), Some(a));

        // nq returns an idle server at once, even one with the worse ratio.
        let mut h = Harness::with(SchedulerKind::Nq, 0, TWO);
        let (a, b) = (h.id(0), h.id(1));
        h.set_conns(b, 1, 0);
        assert_eq!(h.schedule_any(), Some(a));
        // The first idle in list order: B idle too → B.
        h.set_conns(b, 0, 5);
        assert_eq!(h.schedule_any(), Some(b));
        // Nobody idle: sed rule. A 1 active → 2/1, B 1 active → 2/2 → B.
        h.set_conns(a, 1, 0);
        h.set_conns(b, 1, 0);
        assert_eq!(h.schedule_any(), Some(b));
        // A 1 → 2/1 = 2; B 3 → 4/2 = 2: tie → B (earlier).
        h.set_conns(b, 3, 0);
        assert_eq!(h.schedule_any(), Some(b));
        h.set_conns(b, 4, 0);
        assert_eq!(h.schedule_any(), Some(a));
        // Idle but weight 0 or overloaded is not "idle available".
        h.set_conns(b, 0, 0);
        h.set_weight(b, 0);
        assert_eq!(h.schedule_any(), Some(a));
        h.set_weight(b, 2);
        h.set_overloaded(b, true);
        assert_eq!(h.schedule_any(), Some(a));
    }

    /// Schedules `n` connections, binding each as active, and returns per-server counts.
    fn drive(h: &mut Harness, n: usize) -> HashMap<DestId, usize> {
        let mut counts = HashMap::new();
        for _ in 0..n {
            let id = h.schedule_any().expect("a destination");
            h.bind(id, true);
            *counts.entry(id).or_default() += 1;
        }
        counts
    }

    #[test]
    fn weighted_family_converges_to_weights() {
        for kind in [SchedulerKind::Wlc, SchedulerKind::Sed, SchedulerKind::Nq] {
            let mut h = Harness::with(
                kind,
                0,
                &[
                    ("10.0.0.1", 80, 1),
                    ("10.0.0.2", 80, 3),
                    ("10.0.0.3", 80, 0),
                    ("10.0.0.4", 80, 6),
                ],
            );
            let ids: Vec<_> = (0..4).map(|i| h.id(i)).collect();
            let c = drive(&mut h, 1000);
            assert_eq!(c.get(&ids[2]), None, "{kind:?}: weight 0 got connections");
            // Long-lived connections: counts follow 1:3:6 to within one connection.
            for (i, w) in [(0, 1), (1, 3), (3, 6)] {
                let expect = 1000 * w / 10;
                let got = c[&ids[i]];
                assert!(
                    got.abs_diff(expect) <= 1,
                    "{kind:?}: dest {i} got {got}, want ~{expect}"
                );
            }
        }
    }

    #[test]
    fn lc_balances_counts_ignoring_weights() {
        let mut h = Harness::with(
            SchedulerKind::Lc,
            0,
            &[
                ("10.0.0.1", 80, 1),
                ("10.0.0.2", 80, 9),
                ("10.0.0.3", 80, 0),
            ],
        );
        let c = drive(&mut h, 100);
        assert_eq!(c[&h.id(0)], 50);
        assert_eq!(c[&h.id(1)], 50);
        assert_eq!(c.get(&h.id(2)), None);
    }

    #[test]
    fn overloaded_and_quiescent_are_skipped() {
        for kind in [
            SchedulerKind::Lc,
            SchedulerKind::Wlc,
            SchedulerKind::Sed,
            SchedulerKind::Nq,
        ] {
            let mut h = Harness::with(
                kind,
                0,
                &[
                    ("10.0.0.1", 80, 1),
                    ("10.0.0.2", 80, 1),
                    ("10.0.0.3", 80, 1),
                ],
            );
            let (a, b, c) = (h.id(0), h.id(1), h.id(2));
            // The newest (C) is the natural pick; overloaded, it is skipped.
            h.set_conns(a, 10, 0);
            h.set_overloaded(c, true);
            assert_eq!(h.schedule_any(), Some(b), "{kind:?}");
            h.set_weight(b, 0);
            assert_eq!(h.schedule_any(), Some(a), "{kind:?}");
            h.set_overloaded(a, true);
            assert_eq!(h.schedule_any(), None, "{kind:?}");
        }
    }

    #[test]
    fn empty_service_has_no_destination() {
        for kind in [
            SchedulerKind::Lc,
            SchedulerKind::Wlc,
            SchedulerKind::Sed,
            SchedulerKind::Nq,
        ] {
            let mut h = Harness::new(kind, 0);
            assert_eq!(h.schedule_any(), None, "{kind:?}");
        }
    }
}
