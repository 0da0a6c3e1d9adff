//! The engine set-up shared by the criterion benchmark (`benches/engine.rs`) and the profiling
//! driver (`examples/hotpath.rs`, which includes this file with `#[path]`): a director with an
//! external and an internal interface and a TCP service VIP:80, TCP frame templates turned into
//! any of 2^32 client flows with valid checksums, a runner that feeds them to the engine, and a
//! table of established connections.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use etherparse::PacketBuilder;
use rvs_api::{DestSpec, ForwardMethod, Protocol, Request, Response, ServiceKey, ServiceSpec};
use rvs_engine::{Engine, EngineConfig, IfaceId, Interface, Route, Verdict};
use rvs_wire::PacketBuf;

pub(crate) const HEADROOM: usize = 256;
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
pub(crate) fn engine(
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
pub(crate) const FRAME_LEN: usize = 54;

/// A TCP segment from the template client to VIP:80.
pub(crate) fn template(syn: bool) -> [u8; FRAME_LEN] {
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
pub(crate) fn prepare(frame: &mut [u8], template: &[u8; FRAME_LEN], i: u32) {
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

/// Feeds frames to an engine through `process` (`Engine::process`, or a wrapper a profiler
/// can tell apart), one prepared frame at a time.
pub(crate) struct Runner<P> {
    pub(crate) engine: Engine,
    pub(crate) ext: IfaceId,
    pub(crate) now: Instant,
    buf: Vec<u8>,
    process: P,
}

impl<P> Runner<P>
where
    P: FnMut(&mut Engine, Instant, IfaceId, &mut PacketBuf<'_>) -> Verdict,
{
    /// A runner over `engine`, whose frames arrive on `ext` at `now`.
    pub(crate) fn new(engine: Engine, ext: IfaceId, now: Instant, process: P) -> Self {
        Self {
            engine,
            ext,
            now,
            buf: vec![0; 2048],
            process,
        }
    }

    /// Turns `template` into flow `i` in the runner's buffer and processes it.
    #[inline]
    pub(crate) fn run(&mut self, template: &[u8; FRAME_LEN], i: u32) -> Verdict {
        let len = template.len();
        prepare(&mut self.buf[HEADROOM..HEADROOM + len], template, i);
        let mut pkt = PacketBuf::new(&mut self.buf, HEADROOM, len).unwrap();
        (self.process)(&mut self.engine, self.now, self.ext, &mut pkt)
    }
}

/// An engine (wlc over 10 real servers) holding `n` established connections of `method`, its
/// tables sized for `capacity` connections up front; prints the table's memory.
pub(crate) fn populated_with<P>(
    method: ForwardMethod,
    n: u32,
    capacity: usize,
    process: P,
) -> Runner<P>
where
    P: FnMut(&mut Engine, Instant, IfaceId, &mut PacketBuf<'_>) -> Verdict,
{
    let (engine, ext, now) = engine(method, "wlc", 10, capacity);
    let mut r = Runner::new(engine, ext, now, process);
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

/// xorshift64*: a cheap, deterministic random flow picker.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    #[inline]
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) * u64::from(n)) >> 32) as u32
    }
}
