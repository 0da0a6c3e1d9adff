//! Counters and the IPVS rate estimator.
//!
//! Each service, real server and the director as a whole carry a [`StatsBlock`]: cumulative
//! 64-bit counters plus the kernel's 2-second EWMA estimator (weight 1/4, fixed-point scales
//! 2^10 for connections/packets and 2^5 for bytes), so `--rate` shows the numbers IPVS would.

use rvs_api::{Rates, Stats};

/// How often the estimator runs, in milliseconds.
pub const ESTIMATOR_PERIOD_MS: u64 = 2_000;

/// Counters, their zero point and the estimator state.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatsBlock {
    /// Cumulative counters since creation.
    pub total: Stats,
    /// Snapshot taken by `-Z`; reported counters are `total - zero`.
    zero: Stats,
    /// Counters at the previous estimator tick.
    last: Stats,
    /// Scaled averages: cps/inpps/outpps ×2^10 per 2 s… as the kernel keeps them.
    avg: [i64; 5],
}

impl StatsBlock {
    /// Counts one new connection.
    #[inline]
    pub fn conn(&mut self) {
        self.total.conns += 1;
    }

    /// Counts one client → server packet of `bytes` (IP datagram length).
    #[inline]
    pub fn inbound(&mut self, bytes: usize) {
        self.total.inpkts += 1;
        self.total.inbytes += bytes as u64;
    }

    /// Counts one server → client packet of `bytes`.
    #[inline]
    pub fn outbound(&mut self, bytes: usize) {
        self.total.outpkts += 1;
        self.total.outbytes += bytes as u64;
    }

    /// Counts one packet of `bytes`: server → client when `outbound`, else client → server.
    #[inline]
    pub fn packet(&mut self, outbound: bool, bytes: usize) {
        if outbound {
            self.outbound(bytes);
        } else {
            self.inbound(bytes);
        }
    }

    /// Adds packets and bytes counted elsewhere (the XDP fast path), inbound or outbound.
    pub fn add(&mut self, outbound: bool, packets: u64, bytes: u64) {
        if outbound {
            self.total.outpkts += packets;
            self.total.outbytes += bytes;
        } else {
            self.total.inpkts += packets;
            self.total.inbytes += bytes;
        }
    }

    /// The counters as `--stats` reports them (since the last `-Z`).
    pub fn stats(&self) -> Stats {
        let (t, z) = (&self.total, &self.zero);
        Stats {
            conns: t.conns - z.conns,
            inpkts: t.inpkts - z.inpkts,
            outpkts: t.outpkts - z.outpkts,
            inbytes: t.inbytes - z.inbytes,
            outbytes: t.outbytes - z.outbytes,
        }
    }

    /// `-Z`: the current counters become the zero point and the estimator restarts.
    pub fn zero(&mut self) {
        self.zero = self.total;
        self.last = self.total;
        self.avg = [0; 5];
    }

    /// One estimator tick; the engine calls it every [`ESTIMATOR_PERIOD_MS`].
    pub fn estimate(&mut self) {
        let t = self.total;
        let l = self.last;
        let deltas = [
            (t.conns - l.conns) << 9,
            (t.inpkts - l.inpkts) << 9,
            (t.outpkts - l.outpkts) << 9,
            (t.inbytes - l.inbytes) << 4,
            (t.outbytes - l.outbytes) << 4,
        ];
        for (avg, d) in self.avg.iter_mut().zip(deltas) {
            // avg += (delta - avg) / 4 with an arithmetic shift, as ip_vs_est.c does.
            *avg += (d as i64 - *avg) >> 2;
        }
        self.last = t;
    }

    /// The rates as `--rate` reports them.
    pub fn rates(&self) -> Rates {
        let pps = |a: i64| ((a + 0x1FF) >> 10).max(0) as u64;
        let bps = |a: i64| ((a + 0xF) >> 5).max(0) as u64;
        Rates {
            cps: pps(self.avg[0]),
            inpps: pps(self.avg[1]),
            outpps: pps(self.avg[2]),
            inbps: bps(self.avg[3]),
            outbps: bps(self.avg[4]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec §11 item 59: 200 connections per window from idle give CPS 25, 44, 58, 68, 76, 82.
    #[test]
    fn estimator_converges_like_the_kernel() {
        let mut s = StatsBlock::default();
        let mut cps = Vec::new();
        let mut bps = Vec::new();
        for _ in 0..6 {
            s.total.conns += 200;
            s.total.inbytes += 2_000_000;
            s.estimate();
            cps.push(s.rates().cps);
            bps.push(s.rates().inbps);
        }
        assert_eq!(cps, [25, 44, 58, 68, 76, 82]);
        assert_eq!(&bps[..4], &[250_000, 437_500, 578_125, 683_594]);
    }

    #[test]
    fn zero_resets_counters_and_rates() {
        let mut s = StatsBlock::default();
        s.conn();
        s.inbound(60);
        s.outbound(40);
        s.estimate();
        assert_eq!(s.stats().inbytes, 60);
        s.zero();
        assert_eq!(s.stats(), Stats::default());
        assert_eq!(s.rates(), Rates::default());
        s.inbound(10);
        assert_eq!(s.stats().inpkts, 1);
    }
}
