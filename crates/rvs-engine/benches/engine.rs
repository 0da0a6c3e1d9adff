//! Per-packet cost of the engine.
//!
//! * `established/<method>/<table>`: one TCP ACK of an established flow, picked at random
//!   among all flows of a table of 10k or 1M connections (so the connection-table lookups
//!   miss the caches as they would in production), and `same_flow` (always the same flow:
//!   the best case). Each iteration copies a 54-byte frame template into the buffer and
//!   patches the client address and port (incremental checksums), as a NIC would deliver a
//!   fresh frame; `frame_prep` measures that part alone.
//! * `established/<method>/<table>/batch16`: the same frames through
//!   `Engine::process_batch`, 16 at a time (time per frame).
//! * `new_conn/<sched>_100`: a SYN from a new client, scheduled over 100 real servers, into a
//!   table pre-sized for the run.
//!
//! Also prints the connection table's memory per connection (slab entries plus both hash
//! bucket arrays, `Engine::conn_memory_bytes`).
//!
//! `cargo bench -p rvs-engine` (sample size and times are reduced: the machine is shared).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rvs_api::ForwardMethod;
use rvs_engine::{Engine, EngineConfig, IfaceId, Verdict};
use rvs_wire::PacketBuf;

use common::{FRAME_LEN, HEADROOM, Rng, Runner, engine, populated_with, prepare, template};

/// Frames per `Engine::process_batch` call in the `…/batch16` benchmarks (a typical
/// AF_XDP RX burst is larger; 16 is the engine's warm-up group).
const BATCH: usize = 16;

impl<P> Runner<P> {
    /// Processes `packets` frames of random flows among `n` through `process_batch`, in
    /// batches of [`BATCH`], and returns the time spent (frame preparation included, as
    /// in the one-by-one benchmarks).
    fn run_batches(
        &mut self,
        template: &[u8; FRAME_LEN],
        packets: u64,
        n: u32,
        rng: &mut Rng,
    ) -> Duration {
        let mut bufs = vec![vec![0u8; 2048]; BATCH];
        let mut verdicts = Vec::with_capacity(BATCH);
        let start = Instant::now();
        let mut left = packets;
        while left > 0 {
            let k = (left as usize).min(BATCH);
            let mut pkts: Vec<PacketBuf<'_>> = bufs[..k]
                .iter_mut()
                .map(|b| {
                    prepare(
                        &mut b[HEADROOM..HEADROOM + FRAME_LEN],
                        template,
                        rng.below(n),
                    );
                    PacketBuf::new(b, HEADROOM, FRAME_LEN).unwrap()
                })
                .collect();
            verdicts.clear();
            self.engine
                .process_batch(self.now, self.ext, &mut pkts, &mut verdicts);
            black_box(&verdicts);
            left -= k as u64;
        }
        start.elapsed()
    }
}

/// An engine holding `n` established connections of `method`, its tables sized for `n`
/// connections up front.
fn populated(
    method: ForwardMethod,
    n: u32,
) -> Runner<impl FnMut(&mut Engine, Instant, IfaceId, &mut PacketBuf<'_>) -> Verdict> {
    populated_with(method, n, n as usize, Engine::process)
}

/// Memory per connection when the tables grow from the default size (4096) instead of
/// being sized up front: the IPv6 table then stays small, so this is the IPv4 cost.
fn memory_report() {
    for n in [10_000, 100_000, 1_000_000] {
        drop(populated_with(
            ForwardMethod::Route,
            n,
            EngineConfig::default().conn_capacity,
            Engine::process,
        ));
    }
}

fn established(c: &mut Criterion) {
    let mut g = c.benchmark_group("established");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    memory_report();
    let ack = template(false);
    {
        let mut buf = vec![0u8; 2048];
        let mut rng = Rng(0x1234_5678_9abc_def1);
        g.bench_function("frame_prep", |b| {
            b.iter(|| {
                let i = rng.below(1_000_000);
                prepare(&mut buf[HEADROOM..HEADROOM + ack.len()], &ack, i);
                black_box(&buf[HEADROOM..HEADROOM + 4]);
            })
        });
    }
    for (name, method) in [
        ("dr", ForwardMethod::Route),
        ("tun", ForwardMethod::Tunnel),
        ("nat", ForwardMethod::Masq),
    ] {
        for (label, n) in [("10k", 10_000u32), ("1m", 1_000_000)] {
            let mut r = populated(method, n);
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            g.bench_function(format!("{name}/{label}"), |b| {
                b.iter(|| {
                    let i = rng.below(n);
                    black_box(r.run(&ack, i));
                })
            });
            g.bench_function(format!("{name}/{label}/batch{BATCH}"), |b| {
                b.iter_custom(|iters| r.run_batches(&ack, iters, n, &mut rng))
            });
            if n == 10_000 {
                g.bench_function(format!("{name}/same_flow"), |b| {
                    b.iter(|| black_box(r.run(&ack, 42)))
                });
            }
        }
    }
    g.finish();
}

fn new_conn(c: &mut Criterion) {
    let mut g = c.benchmark_group("new_conn");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let syn = template(true);
    for sched in ["wlc", "mh"] {
        g.bench_function(format!("{sched}_100"), |b| {
            b.iter_custom(|iters| {
                let n = iters.min(u64::from(u32::MAX)) as u32;
                let (engine, ext, now) = engine(ForwardMethod::Route, sched, 100, n as usize);
                let mut r = Runner::new(engine, ext, now, Engine::process);
                let start = Instant::now();
                for i in 0..n {
                    black_box(r.run(&syn, i));
                }
                let t = start.elapsed();
                debug_assert_eq!(r.engine.conn_count().0, n as usize);
                drop(black_box(r));
                t
            })
        });
    }
    g.finish();
}

criterion_group!(benches, established, new_conn);
criterion_main!(benches);
