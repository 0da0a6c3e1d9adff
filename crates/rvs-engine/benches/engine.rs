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

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use etherparse::PacketBuilder;
use rvs_api::{DestSpec, ForwardMethod, Protocol, Request, Response, ServiceKey, ServiceSpec};
use rvs_engine::{Engine, EngineConfig, IfaceId, Interface, Route, Verdict};
use rvs_wire::PacketBuf;

const HEADROOM: usize = 256;
const EXT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const INT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const VIP: [u8; 4] = [198, 18, 0, 100];
const CLIENT_BASE: [u8; 4] = [198, 19, 0, 0];
const SPORT_BASE: u16 = 1024;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rip(i: u16) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(
        u32::from(Ipv4Addr::new(198, 18, 1, 11)) + u32::from(i),
    ))
}

/// An engine with `ext`/`int` interfaces and a TCP service VIP:80 over `n_rs` real servers.
fn engine(
    method: ForwardMethod,
    sched: &str,
    n_rs: u16,
    capacity: usize,
) -> (Engine, IfaceId, Instant) {
    let now = Instant::now();
    let mut e = Engine::new(
        now,
        EngineConfig {
            seed: 7,
            conn_capacity: capacity,
        },
    );
    let ext = e.add_interface(Interface {
        name: "ext".into(),
        mac: EXT_MAC,
        mtu: 1500,
        addrs: vec![ip("198.18.0.2")],
    });
    let int = e.add_interface(Interface {
        name: "int".into(),
        mac: INT_MAC,
        mtu: 1500,
        addrs: vec![ip("198.18.1.1")],
    });
    e.set_routes(vec![
        Route {
            dst: ip("0.0.0.0"),
            prefix_len: 0,
            iface: ext,
            gateway: Some(ip("198.18.0.1")),
            src: None,
        },
        Route {
            dst: ip("198.18.1.0"),
            prefix_len: 24,
            iface: int,
            gateway: None,
            src: None,
        },
    ]);
    e.set_neighbour(ext, ip("198.18.0.1"), Some(ROUTER_MAC));
    let key = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: IpAddr::V4(VIP.into()),
        port: 80,
    };
    let mut spec = ServiceSpec::new(key);
    spec.scheduler = sched.into();
    assert_eq!(e.control(now, Request::AddService { spec }), Response::Ok);
    for i in 0..n_rs {
        e.set_neighbour(int, rip(i), Some([2, 0, 0, 1, (i >> 8) as u8, i as u8]));
        let mut d = DestSpec::new(
            rip(i),
            if method == ForwardMethod::Masq {
                8080
            } else {
                80
            },
        );
        d.fwd_method = method;
        d.weight = 1 + u32::from(i % 3);
        assert_eq!(
            e.control(
                now,
                Request::AddDest {
                    service: key,
                    dest: d
                }
            ),
            Response::Ok
        );
    }
    (e, ext, now)
}

/// Length of the template frames (Ethernet, IPv4 and TCP headers, no payload).
const FRAME_LEN: usize = 54;

/// A TCP segment from the template client to VIP:80.
fn template(syn: bool) -> [u8; FRAME_LEN] {
    let b = PacketBuilder::ethernet2(ROUTER_MAC, EXT_MAC).ipv4(CLIENT_BASE, VIP, 64);
    let b = b.tcp(SPORT_BASE, 80, 1000, 64240);
    let b = if syn { b.syn() } else { b.ack(2000) };
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v.try_into().unwrap()
}

/// RFC 1624 incremental update of a 16-bit ones' complement checksum for two changed words
/// (`(old, new)` pairs; one fold gives the same result as two single updates).
#[inline(always)]
fn csum_update(csum: u16, words: [(u16, u16); 2]) -> u16 {
    let mut sum = u32::from(!csum);
    for (old, new) in words {
        sum += u32::from(!old) + u32::from(new);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// Flow `i`: client 198.19.x.y (65536 addresses) and a source port per 65536 flows.
#[inline]
fn flow(i: u32) -> ([u8; 4], u16) {
    let host = (i & 0xffff) as u16;
    (
        [
            CLIENT_BASE[0],
            CLIENT_BASE[1],
            (host >> 8) as u8,
            host as u8,
        ],
        SPORT_BASE + (i >> 16) as u16,
    )
}

/// Writes the template into `frame` and turns it into flow `i` (checksums kept valid), as
/// a NIC would deliver a fresh frame.
#[inline(always)]
fn prepare(frame: &mut [u8], template: &[u8; FRAME_LEN], i: u32) {
    let mut f = *template;
    let (addr, port) = flow(i);
    // Client address bytes 26..30: only the low 16 bits differ from the template.
    let new_low = u16::from_be_bytes([addr[2], addr[3]]);
    let old_low = u16::from_be_bytes([f[28], f[29]]);
    f[28..30].copy_from_slice(&new_low.to_be_bytes());
    let ipc = u16::from_be_bytes([f[24], f[25]]);
    let ipc = csum_update(ipc, [(old_low, new_low), (0, 0)]);
    f[24..26].copy_from_slice(&ipc.to_be_bytes());
    f[34..36].copy_from_slice(&port.to_be_bytes());
    let tc = u16::from_be_bytes([f[50], f[51]]);
    let tc = csum_update(tc, [(old_low, new_low), (SPORT_BASE, port)]);
    f[50..52].copy_from_slice(&tc.to_be_bytes());
    frame[..FRAME_LEN].copy_from_slice(&f);
}

struct Runner {
    engine: Engine,
    ext: IfaceId,
    now: Instant,
    buf: Vec<u8>,
}

impl Runner {
    #[inline]
    fn run(&mut self, template: &[u8; FRAME_LEN], i: u32) -> Verdict {
        let len = template.len();
        prepare(&mut self.buf[HEADROOM..HEADROOM + len], template, i);
        let mut pkt = PacketBuf::new(&mut self.buf, HEADROOM, len).unwrap();
        self.engine.process(self.now, self.ext, &mut pkt)
    }
}

/// Frames per `Engine::process_batch` call in the `…/batch16` benchmarks (a typical
/// AF_XDP RX burst is larger; 16 is the engine's warm-up group).
const BATCH: usize = 16;

impl Runner {
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

/// An engine holding `n` established connections of `method`, its tables sized for
/// `capacity` connections up front.
fn populated(method: ForwardMethod, n: u32) -> Runner {
    populated_with(method, n, n as usize)
}

fn populated_with(method: ForwardMethod, n: u32, capacity: usize) -> Runner {
    let (engine, ext, now) = engine(method, "wlc", 10, capacity);
    let mut r = Runner {
        engine,
        ext,
        now,
        buf: vec![0; 2048],
    };
    let (syn, ack) = (template(true), template(false));
    for i in 0..n {
        assert!(matches!(r.run(&syn, i), Verdict::Transmit(_)));
        assert!(matches!(r.run(&ack, i), Verdict::Transmit(_)));
    }
    let (v4, v6) = r.engine.conn_count();
    assert_eq!(v4 + v6, n as usize);
    let bytes = r.engine.conn_memory_bytes();
    eprintln!(
        "conn table [{method:?}, sized for {capacity}]: {n} connections, {bytes} bytes, {:.1} bytes per connection",
        bytes as f64 / f64::from(n)
    );
    r
}

/// Memory per connection when the tables grow from the default size (4096) instead of
/// being sized up front: the IPv6 table then stays small, so this is the IPv4 cost.
fn memory_report() {
    for n in [10_000, 100_000, 1_000_000] {
        drop(populated_with(
            ForwardMethod::Route,
            n,
            EngineConfig::default().conn_capacity,
        ));
    }
}

/// xorshift64*: a cheap, deterministic random flow picker.
struct Rng(u64);

impl Rng {
    #[inline]
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) * u64::from(n)) >> 32) as u32
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
                let mut r = Runner {
                    engine,
                    ext,
                    now,
                    buf: vec![0; 2048],
                };
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
