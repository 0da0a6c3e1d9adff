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

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

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
        engine_process(&mut self.engine, self.now, self.ext, &mut pkt)
    }
}

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

/// An engine holding `n` established connections of `method`.
fn populated(method: ForwardMethod, n: u32) -> Runner {
    let (engine, ext, now) = engine(method, "wlc", 10, n as usize);
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
        "conn table [{method:?}]: {n} connections, {bytes} bytes, {:.1} bytes per connection",
        bytes as f64 / f64::from(n)
    );
    r
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
        let mut r = Runner {
            engine,
            ext,
            now,
            buf: vec![0; 2048],
        };
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
    let mut r = populated(method, n);
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
