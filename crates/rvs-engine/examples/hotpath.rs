//! Drives the established-flow hot path without criterion, for profilers:
//! `valgrind --tool=callgrind target/release/examples/hotpath dr 10000 200000` (the
//! engine's own cost is the inclusive cost of `engine_process`; run two packet counts and
//! subtract to cancel the set-up).
//! Arguments: mode (`dr`, `tun`, `nat`: established flows; `new-wlc`, `new-mh`, …: new
//! connections over 100 real servers), connections in the table, packets, and optionally a
//! batch size: frames are then handed to `Engine::process_batch` in groups of that many.
//!
//! Prints wall-clock time per packet and, where the kernel reports it
//! (`/proc/thread-self/schedstat`), the thread's CPU time per packet: on a shared machine the
//! latter leaves out the time the thread waited for a core.

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use rvs_api::ForwardMethod;
use rvs_engine::{Engine, IfaceId, Verdict};
use rvs_wire::PacketBuf;

use common::{HEADROOM, Rng, Runner, engine, populated_with, prepare, template};

/// `Engine::process`, kept out of line so that a profiler can tell the engine's cost from
/// the harness's (callgrind: the inclusive cost of `hotpath::engine_process`).
#[inline(never)]
fn engine_process(
    engine: &mut Engine,
    now: Instant,
    ingress: IfaceId,
    pkt: &mut PacketBuf<'_>,
) -> Verdict {
    engine.process(now, ingress, pkt)
}

/// Nanoseconds this thread has spent on a CPU, if the kernel says.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Runs `f` and prints its wall-clock and CPU time per packet.
fn timed(label: &str, packets: u32, f: impl FnOnce()) {
    let cpu = cpu_ns();
    let start = Instant::now();
    f();
    let wall = start.elapsed().as_nanos() as f64 / f64::from(packets.max(1));
    match (cpu, cpu_ns()) {
        (Some(a), Some(b)) => println!(
            "{label}: {wall:.1} ns per packet (wall), {:.1} ns (cpu)",
            (b - a) as f64 / f64::from(packets.max(1))
        ),
        _ => println!("{label}: {wall:.1} ns per packet (wall)"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("dr", String::as_str);
    let n: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let packets: u32 = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    if let Some(sched) = mode.strip_prefix("new-") {
        // New connections from distinct clients over 100 real servers, into a table sized
        // for a million (so that runs of different lengths differ only in packets).
        let capacity = (packets as usize).max(1 << 20);
        let (engine, ext, now) = engine(ForwardMethod::Route, sched, 100, capacity);
        let mut r = Runner::new(engine, ext, now, engine_process);
        let syn = template(true);
        timed(
            &format!("new connections ({sched}, 100 real servers)"),
            packets,
            || {
                for i in 0..packets {
                    black_box(r.run(&syn, i));
                }
            },
        );
        return;
    }
    let method = match mode {
        "tun" => ForwardMethod::Tunnel,
        "nat" => ForwardMethod::Masq,
        _ => ForwardMethod::Route,
    };
    let batch: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut r = populated_with(method, n, n as usize, engine_process);
    let ack = template(false);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    if batch > 0 {
        let label = format!("{method:?}, {n} connections, batches of {batch}");
        let mut bufs = vec![vec![0u8; 2048]; batch];
        let mut verdicts = Vec::with_capacity(batch);
        let len = ack.len();
        timed(&label, packets, || {
            for _ in 0..(packets as usize).div_ceil(batch) {
                let mut pkts: Vec<PacketBuf<'_>> = bufs
                    .iter_mut()
                    .map(|b| {
                        prepare(&mut b[HEADROOM..HEADROOM + len], &ack, rng.below(n));
                        PacketBuf::new(b, HEADROOM, len).unwrap()
                    })
                    .collect();
                verdicts.clear();
                r.engine
                    .process_batch(r.now, r.ext, &mut pkts, &mut verdicts);
                black_box(&verdicts);
            }
        });
        return;
    }
    timed(&format!("{method:?}, {n} connections"), packets, || {
        for _ in 0..packets {
            let i = rng.below(n);
            black_box(r.run(&ack, i));
        }
    });
}
