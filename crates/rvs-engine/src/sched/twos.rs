//! `twos`: power of two choices (`ip_vs_twos.c`).
//!
//! Two servers are drawn at random with probability proportional to weight, and the one with
//! the lower `overhead / weight` wins (the first draw on ties).

use crate::dest::{Dest, DestId, DestList};

/// A uniform draw in `0..n` from 32 random bits (Lemire's multiply-shift, without the
/// rejection step: the bias is at most `n / 2^32`, and determinism matters more here).
fn below(bits: u32, n: u64) -> u64 {
    ((u128::from(bits) * u128::from(n)) >> 32) as u64
}

/// Picks a real server using `random` as the source of both draws (low and high 32 bits).
pub(crate) fn twos(dests: DestList<'_>, random: u64) -> Option<DestId> {
    let eligible = |d: &Dest| d.is_schedulable();
    let total: u64 = dests
        .iter()
        .filter(|(_, d)| eligible(d))
        .map(|(_, d)| u64::from(d.weight))
        .sum();
    if total == 0 {
        return None;
    }
    // The kernel draws in [0, total] inclusive (`get_random_u32_below(total + 1)`): a draw of 0
    // lands on the first server and one of `total` on the last.
    let mut r1 = below(random as u32, total + 1) as i64;
    let mut r2 = below((random >> 32) as u32, total + 1) as i64;
    let mut choice1: Option<(DestId, &Dest)> = None;
    let mut choice2: Option<(DestId, &Dest)> = None;
    for (id, d) in dests.iter().filter(|(_, d)| eligible(d)) {
        r1 -= i64::from(d.weight);
        r2 -= i64::from(d.weight);
        if r1 <= 0 && choice1.is_none() {
            choice1 = Some((id, d));
        }
        if r2 <= 0 && choice2.is_none() {
            choice2 = Some((id, d));
        }
        if choice1.is_some() && choice2.is_some() {
            break;
        }
    }
    let (id1, d1) = choice1?;
    let (id2, d2) = choice2?;
    let better2 = u128::from(d2.weight) * u128::from(d1.overhead())
        > u128::from(d1.weight) * u128::from(d2.overhead());
    Some(if better2 { id2 } else { id1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::SchedInput;
    use crate::sched::SchedulerKind;
    use crate::sched::testutil::{Harness, input};

    fn with_random(random: u64) -> SchedInput {
        SchedInput {
            random,
            ..input("198.18.0.1", 1000, "198.19.0.1", 0)
        }
    }

    /// 32 random bits that make `below(bits, n)` equal `r`.
    fn bits_for(r: u64, n: u64) -> u64 {
        // Smallest x with floor(x * n / 2^32) == r.
        ((r << 32).div_ceil(n)) & 0xffff_ffff
    }

    #[test]
    fn draw_is_in_range_and_hits_both_ends() {
        for n in [1, 2, 3, 7, 65_536, 1 << 31] {
            assert_eq!(below(0, n), 0);
            assert_eq!(below(u32::MAX, n), n - 1);
            for r in [0, n / 2, n - 1] {
                assert_eq!(below(bits_for(r, n) as u32, n), r, "n={n} r={r}");
            }
        }
    }

    #[test]
    fn twos_picks_less_loaded_of_the_two_draws() {
        // List order C(w1), B(w2), A(w1): total 4, draws in 0..=4.
        // r = 0 or 1 → C; 2 or 3 → B; 4 → A.
        let mut h = Harness::with(
            SchedulerKind::Twos,
            0,
            &[
                ("10.0.0.1", 80, 1),
                ("10.0.0.2", 80, 2),
                ("10.0.0.3", 80, 1),
            ],
        );
        let (a, b, c) = (h.id(0), h.id(1), h.id(2));
        let draw = |r1: u64, r2: u64| with_random(bits_for(r1, 5) | (bits_for(r2, 5) << 32));
        // Both idle: tie → first draw.
        assert_eq!(h.schedule(&draw(0, 4)), Some(c));
        assert_eq!(h.schedule(&draw(4, 0)), Some(a));
        assert_eq!(h.schedule(&draw(2, 0)), Some(b));
        // C loaded: the second draw A wins when it is the less loaded.
        h.set_conns(c, 1, 0);
        assert_eq!(h.schedule(&draw(1, 4)), Some(a));
        // B (w2) with 1 active vs C (w1) with 1 active: 256/2 < 256/1 → B.
        h.set_conns(b, 1, 0);
        assert_eq!(h.schedule(&draw(0, 3)), Some(b));
        assert_eq!(h.schedule(&draw(3, 0)), Some(b));
        // Both draws on one server.
        assert_eq!(h.schedule(&draw(1, 0)), Some(c));
    }

    #[test]
    fn twos_skips_unusable_and_follows_weights() {
        let mut h = Harness::with(
            SchedulerKind::Twos,
            0,
            &[
                ("10.0.0.1", 80, 1),
                ("10.0.0.2", 80, 3),
                ("10.0.0.3", 80, 5),
                ("10.0.0.4", 80, 0),
            ],
        );
        let (a, b, c, d) = (h.id(0), h.id(1), h.id(2), h.id(3));
        h.set_overloaded(c, true);
        // A deterministic stream of random words (splitmix64).
        let mut s: u64 = 0x1234_5678;
        let mut next = || {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let (mut na, mut nb) = (0u32, 0u32);
        for _ in 0..4000 {
            let id = h.schedule(&with_random(next())).unwrap();
            assert!(id != c && id != d, "overloaded or weight-0 server chosen");
            if id == a {
                na += 1;
            } else {
                nb += 1;
            }
            h.bind(id, true);
        }
        // Long-lived connections: the load ends near the 1:3 weight ratio.
        let ratio = f64::from(nb) / f64::from(na);
        assert!((2.5..3.5).contains(&ratio), "B/A = {ratio}");
        h.set_overloaded(a, true);
        h.set_overloaded(b, true);
        assert_eq!(h.schedule(&with_random(next())), None);
    }
}
