//! `wrr`: weighted round robin (`ip_vs_wrr.c`).
//!
//! Passes over the list with a falling weight bar `cw`: pass 1 takes servers whose weight is at
//! least `mw` (the maximum weight less `di - 1`, where `di` is the gcd of the positive weights),
//! each later pass lowers the bar by `di`, and the last pass admits weight >= 1. A server of
//! weight `w` is therefore chosen about `w / di` times per cycle, interleaved by list order.

use crate::dest::{DestId, DestList};

/// Weighted round-robin mark (`struct ip_vs_wrr_mark`).
#[derive(Debug, Clone)]
pub(crate) struct Wrr {
    /// Current node: the last chosen real server, or `None` for the list head.
    cl: Option<DestId>,
    /// Current weight bar.
    cw: i64,
    /// Maximum weight, reduced by `di - 1` so that the last pass is always `cw == 1`.
    mw: i64,
    /// Decreasing interval: the gcd of the positive weights (1 if none).
    di: i64,
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `(di, mw)` for the current weights.
fn marks(dests: DestList<'_>) -> (i64, i64) {
    let mut g = 0;
    let mut max = 0;
    for (_, d) in dests.iter() {
        let w = i64::from(d.weight);
        if w > 0 {
            g = if g > 0 { gcd(w, g) } else { w };
        }
        max = max.max(w);
    }
    let di = if g > 0 { g } else { 1 };
    (di, max - (di - 1))
}

impl Wrr {
    /// `init_service`.
    pub(crate) fn new(dests: DestList<'_>) -> Self {
        let (di, mw) = marks(dests);
        Self {
            cl: None,
            cw: mw,
            mw,
            di,
        }
    }

    /// `add_dest`/`del_dest`/`upd_dest`: back to the head, new gcd and maximum; the bar is kept
    /// where it is unless it is now out of range (then restart at the top), and otherwise
    /// re-aligned to the new gcd grid plus one.
    pub(crate) fn dest_changed(&mut self, dests: DestList<'_>) {
        self.cl = None;
        (self.di, self.mw) = marks(dests);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    /// Picks the next real server.
    pub(crate) fn schedule(&mut self, dests: DestList<'_>) -> Option<DestId> {
        let n = dests.len();
        // Position of the node after `cl` (0 = first node after the head). An id that is no
        // longer listed (the engine always calls `del_dest`) is treated as the head.
        let pos_of = |c: Option<DestId>| c.and_then(|c| dests.ids().iter().position(|&x| x == c));
        let last = pos_of(self.cl);
        if self.mw == 0 {
            return None;
        }
        let mut start = last.map_or(0, |p| p + 1);
        // Set when the bar has wrapped to `mw` during this call.
        let mut restarted = false;
        let mut last_pass = false;
        // Where to give up on the final pass: the node we started from.
        let mut stop: Option<usize> = None;
        loop {
            for i in start..n {
                let (id, d) = dests.at(i);
                if !d.overloaded && i64::from(d.weight) >= self.cw {
                    self.cl = Some(id);
                    return Some(id);
                }
                if stop == Some(i) {
                    self.cl = Some(id);
                    return None;
                }
            }
            start = 0;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                // A full pass at the lowest bar has been made (either the previous pass was
                // the last one, or we started at the head so the first pass saw everything).
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                // The first pass at weight >= 1 only covered the nodes after `last`; this one
                // covers those up to it.
                stop = last;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::sched::SchedulerKind;
    use crate::sched::testutil::Harness;

    fn run(h: &mut Harness, n: usize) -> Vec<crate::dest::DestId> {
        (0..n).map(|_| h.schedule_any().unwrap()).collect()
    }

    #[test]
    fn wrr_sequences_both_insertion_orders() {
        // §3.2 / §11 item 41, with the scheduler bound to a service that already has both
        // servers (init_service: cw = mw = 3).
        let mut h = Harness::bound(
            SchedulerKind::Wrr,
            0,
            &[("10.0.0.1", 80, 3), ("10.0.0.2", 80, 1)],
        )
        .unwrap();
        let (a, b) = (h.id(0), h.id(1));
        assert_eq!(run(&mut h, 8), [a, a, b, a, a, a, b, a]);

        let mut h = Harness::bound(
            SchedulerKind::Wrr,
            0,
            &[("10.0.0.2", 80, 1), ("10.0.0.1", 80, 3)],
        )
        .unwrap();
        let (b, a) = (h.id(0), h.id(1));
        assert_eq!(run(&mut h, 8), [a, a, a, b, a, a, a, b]);
    }

    #[test]
    fn wrr_sequences_after_incremental_adds() {
        // The usual `ipvsadm -A` then `-a`, `-a`: bound to an empty service cw = mw = 0; the
        // first add sets cw = mw = 3 - (3 - 1) = 1 (gcd 3), and the second add keeps cw = 1
        // (<= new mw 3, gcd 1). So the first pass is at weight >= 1: the same cycle as above,
        // entered at another phase.
        let mut h = Harness::with(
            SchedulerKind::Wrr,
            0,
            &[("10.0.0.1", 80, 3), ("10.0.0.2", 80, 1)],
        );
        let (a, b) = (h.id(0), h.id(1));
        assert_eq!(run(&mut h, 8), [b, a, a, a, b, a, a, a]);

        let mut h = Harness::with(
            SchedulerKind::Wrr,
            0,
            &[("10.0.0.2", 80, 1), ("10.0.0.1", 80, 3)],
        );
        let (b, a) = (h.id(0), h.id(1));
        assert_eq!(run(&mut h, 10), [a, b, a, a, a, b, a, a, a, b]);
    }

    #[test]
    fn wrr_exact_ratio_with_gcd() {
        // Weights 4, 6, 2 (gcd 2): per cycle of 6 picks, 2/3/1 — exactly the weight ratio.
        let mut h = Harness::with(
            SchedulerKind::Wrr,
            0,
            &[
                ("10.0.0.1", 80, 4),
                ("10.0.0.2", 80, 6),
                ("10.0.0.3", 80, 2),
            ],
        );
        let ids = [h.id(0), h.id(1), h.id(2)];
        let picks = run(&mut h, 600);
        let mut count: HashMap<_, usize> = HashMap::new();
        for p in &picks {
            *count.entry(*p).or_default() += 1;
        }
        assert_eq!(
            [count[&ids[0]], count[&ids[1]], count[&ids[2]]],
            [200, 300, 100]
        );
        // And every window of one cycle (6 picks) holds the exact ratio too.
        for w in picks.chunks(6) {
            let c = |id| w.iter().filter(|&&x| x == id).count();
            assert_eq!([c(ids[0]), c(ids[1]), c(ids[2])], [2, 3, 1]);
        }
    }

    #[test]
    fn wrr_weight_zero_and_overload() {
        let mut h = Harness::with(
            SchedulerKind::Wrr,
            0,
            &[
                ("10.0.0.1", 80, 2),
                ("10.0.0.2", 80, 0),
                ("10.0.0.3", 80, 1),
            ],
        );
        let (a, b, c) = (h.id(0), h.id(1), h.id(2));
        let picks = run(&mut h, 30);
        assert!(!picks.contains(&b));
        assert_eq!(picks.iter().filter(|&&x| x == a).count(), 20);
        h.set_overloaded(a, true);
        assert_eq!(run(&mut h, 5), [c; 5]);
        h.set_overloaded(c, true);
        assert_eq!(h.schedule_any(), None);
        // All weights zero: mw == 0, no destination.
        h.set_overloaded(a, false);
        h.set_overloaded(c, false);
        h.set_weight(a, 0);
        h.set_weight(c, 0);
        assert_eq!(h.schedule_any(), None);
        h.set_weight(b, 5);
        assert_eq!(run(&mut h, 3), [b; 3]);
    }

    #[test]
    fn wrr_no_dests_and_only_overloaded_after_cursor() {
        let mut h = Harness::new(SchedulerKind::Wrr, 0);
        assert_eq!(h.schedule_any(), None);
        // List C, B, A with weights 1, 3, 1; only B usable after the first pick: the search
        // must come round to B however far the bar has fallen.
        let a = h.add("10.0.0.1", 80, 1);
        let b = h.add("10.0.0.2", 80, 3);
        let c = h.add("10.0.0.3", 80, 1);
        // cw is 1 after the adds (see above): C first.
        assert_eq!(h.schedule_any(), Some(c));
        h.set_overloaded(a, true);
        h.set_overloaded(c, true);
        assert_eq!(run(&mut h, 7), [b; 7]);
        h.set_overloaded(b, true);
        assert_eq!(h.schedule_any(), None);
        assert_eq!(h.schedule_any(), None);
        h.set_overloaded(a, false);
        assert_eq!(run(&mut h, 3), [a; 3]);
    }

    #[test]
    fn wrr_edit_recomputes_and_restarts_from_head() {
        let mut h = Harness::with(
            SchedulerKind::Wrr,
            0,
            &[("10.0.0.1", 80, 1), ("10.0.0.2", 80, 1)],
        );
        let (a, b) = (h.id(0), h.id(1));
        assert_eq!(run(&mut h, 2), [b, a]);
        h.set_weight(a, 3);
        // Bar was 1 (<= new mw 3, di 1): kept; cursor back at head → B, A, then bar wraps to 3.
        assert_eq!(run(&mut h, 6), [b, a, a, a, b, a]);
        h.del(b);
        assert_eq!(run(&mut h, 3), [a, a, a]);
    }
}
