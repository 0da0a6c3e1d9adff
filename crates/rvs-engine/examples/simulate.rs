//! A synthetic client population through the engine, for every forward method and scheduler.
//!
//! 3000 TCP connections from distinct clients (handshake, one request, one reply for NAT,
//! FIN from both sides) go through a service with three real servers of weights 3:2:1. For
//! each case the per-real-server connection and packet counters are printed with a one-line
//! verdict saying whether the distribution is what the scheduler promises; the exit status
//! is non-zero if any verdict fails.
//!
//! `cargo run -p rvs-engine --example simulate --release`

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use etherparse::{PacketBuilder, TcpHeader};
use rvs_api::{DestSpec, ForwardMethod, Protocol, Request, Response, ServiceKey, ServiceSpec};
use rvs_engine::{Engine, EngineConfig, IfaceId, Interface, Route, Verdict};
use rvs_wire::PacketBuf;

const CLIENTS: u32 = 3000;
const WEIGHTS: [u32; 3] = [3, 2, 1];
const EXT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const INT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const SCHEDULERS: [&str; 14] = [
    "rr", "wrr", "wlc", "sh", "mh", "lc", "sed", "nq", "fo", "ovf", "twos", "dh", "lblc", "lblcr",
];

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("literal address")
}

fn rip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 1, 11 + i as u8))
}

fn rs_mac(i: usize) -> [u8; 6] {
    [2, 0, 0, 1, 0, i as u8]
}

fn vip() -> SocketAddr {
    SocketAddr::new(ip("198.18.0.100"), 80)
}

fn client(n: u32) -> SocketAddr {
    let a = u32::from(Ipv4Addr::new(198, 19, 0, 0)) + n + 1;
    SocketAddr::new(IpAddr::V4(a.into()), 10_000 + (n % 50_000) as u16)
}

fn segment(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: SocketAddr,
    dst: SocketAddr,
    flags: u8,
    data: &[u8],
) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
        unreachable!("the simulation is IPv4")
    };
    let mut h = TcpHeader::new(src.port(), dst.port(), 1, 64_240);
    h.syn = flags & SYN != 0;
    h.fin = flags & FIN != 0;
    h.psh = flags & PSH != 0;
    h.ack = flags & ACK != 0;
    h.acknowledgment_number = if h.ack { 1 } else { 0 };
    let mut out = Vec::new();
    PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(s.octets(), d.octets(), 64)
        .tcp_header(h)
        .write(&mut out, data)
        .expect("frame fits");
    out
}

struct Sim {
    engine: Engine,
    now: Instant,
    ext: IfaceId,
    int: IfaceId,
    buf: Vec<u8>,
    key: ServiceKey,
}

impl Sim {
    fn new(method: ForwardMethod, sched: &str) -> Self {
        let now = Instant::now();
        let mut engine = Engine::new(
            now,
            EngineConfig {
                seed: 2024,
                conn_capacity: 8192,
            },
        );
        let ext = engine.add_interface(Interface {
            name: "ext".into(),
            mac: EXT_MAC,
            mtu: 1500,
            addrs: vec![ip("198.18.0.2")],
        });
        let int = engine.add_interface(Interface {
            name: "int".into(),
            mac: INT_MAC,
            mtu: 1500,
            addrs: vec![ip("198.18.1.1")],
        });
        engine.set_routes(vec![
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
        engine.set_neighbour(ext, ip("198.18.0.1"), Some(ROUTER_MAC));
        let key = ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: vip().ip(),
            port: 80,
        };
        let mut spec = ServiceSpec::new(key);
        spec.scheduler = sched.into();
        assert_eq!(
            engine.control(now, Request::AddService { spec }),
            Response::Ok
        );
        for (i, w) in WEIGHTS.iter().enumerate() {
            engine.set_neighbour(int, rip(i), Some(rs_mac(i)));
            let mut d = DestSpec::new(
                rip(i),
                if method == ForwardMethod::Masq {
                    8080
                } else {
                    80
                },
            );
            d.fwd_method = method;
            d.weight = *w;
            assert_eq!(
                engine.control(
                    now,
                    Request::AddDest {
                        service: key,
                        dest: d
                    }
                ),
                Response::Ok
            );
        }
        Self {
            engine,
            now,
            ext,
            int,
            buf: vec![0; 4096],
            key,
        }
    }

    /// Runs a frame; returns the real server it went to (by MAC) or `None` for the client side.
    fn run(&mut self, iface: IfaceId, frame: &[u8]) -> Result<Option<usize>, String> {
        self.buf[256..256 + frame.len()].copy_from_slice(frame);
        let mut pkt = PacketBuf::new(&mut self.buf, 256, frame.len()).map_err(|e| e.to_string())?;
        match self.engine.process(self.now, iface, &mut pkt) {
            Verdict::Transmit(out) if out == self.int => {
                let mac = &pkt.data()[0..6];
                Ok(Some(
                    (0..WEIGHTS.len())
                        .find(|&i| rs_mac(i) == mac)
                        .ok_or("unknown MAC")?,
                ))
            }
            Verdict::Transmit(out) if out == self.ext => Ok(None),
            v => Err(format!("unexpected verdict {v:?}")),
        }
    }

    /// One whole connection of client `n`.
    fn connection(&mut self, n: u32, nat: bool) -> Result<usize, String> {
        let c = client(n);
        let inb = |flags, data: &[u8]| segment(ROUTER_MAC, EXT_MAC, c, vip(), flags, data);
        let rs = self
            .run(self.ext, &inb(SYN, b""))?
            .ok_or("SYN not forwarded to a real server")?;
        let rsa = SocketAddr::new(rip(rs), 8080);
        let outb = |flags, data: &[u8]| segment(rs_mac(rs), INT_MAC, rsa, c, flags, data);
        if nat {
            self.run(self.int, &outb(SYN | ACK, b""))?;
        }
        for (flags, data) in [(ACK, &b""[..]), (PSH | ACK, b"GET / HTTP/1.0\r\n\r\n")] {
            if self.run(self.ext, &inb(flags, data))? != Some(rs) {
                return Err(format!("client {n} switched real server"));
            }
        }
        if nat {
            self.run(self.int, &outb(PSH | ACK, b"HTTP/1.0 200 OK\r\n\r\nhi"))?;
        }
        self.run(self.ext, &inb(FIN | ACK, b""))?;
        if nat {
            self.run(self.int, &outb(FIN | ACK, b""))?;
        }
        self.now += Duration::from_millis(1);
        Ok(rs)
    }
}

/// What a scheduler should do with 3000 short connections over weights 3:2:1 (list order:
/// the weight-1 server is newest, so first).
fn verdict(sched: &str, conns: [u64; 3]) -> (bool, String) {
    let total = conns.iter().sum::<u64>() as f64;
    let share = |i: usize| conns[i] as f64 / total;
    let weighted = |tol: f64| (0..3).all(|i| (share(i) - f64::from(WEIGHTS[i]) / 6.0).abs() <= tol);
    let even = |tol: f64| (0..3).all(|i| (share(i) - 1.0 / 3.0).abs() <= tol);
    let single = conns.iter().filter(|&&c| c > 0).count() == 1;
    match sched {
        "rr" => (conns == [1000; 3], "round robin: equal thirds".into()),
        "wrr" => (
            conns == [1500, 1000, 500],
            "weighted round robin: exactly 3:2:1".into(),
        ),
        "wlc" => (
            weighted(0.01),
            "weighted least connection: 3:2:1 (±1 %)".into(),
        ),
        "lc" => (
            even(0.01),
            "least connection ignores weights: thirds (±1 %)".into(),
        ),
        "sh" => (
            weighted(0.06),
            "source hashing: buckets by weight, ~3:2:1 (±6 %)".into(),
        ),
        "mh" => (
            weighted(0.06),
            "Maglev: slots by weight, ~3:2:1 (±6 %)".into(),
        ),
        "twos" => (weighted(0.06), "power of two choices: ~3:2:1 (±6 %)".into()),
        // Closed connections are inactive; these count only active ones, which are 0 at every
        // new connection, so the first criterion decides every time.
        "sed" | "fo" | "ovf" => (
            conns[0] as f64 == total,
            "all to the heaviest server (no active load)".into(),
        ),
        "nq" => (
            conns[2] as f64 == total,
            "all to the first idle server in list order (newest)".into(),
        ),
        "dh" | "lblc" | "lblcr" => (
            single,
            "one VIP: all to one server (destination locality)".into(),
        ),
        _ => (false, "unknown scheduler".into()),
    }
}

fn main() -> ExitCode {
    let mut failed = 0;
    for (mname, method) in [
        ("nat", ForwardMethod::Masq),
        ("dr", ForwardMethod::Route),
        ("tun", ForwardMethod::Tunnel),
    ] {
        println!("== {mname} ({} clients, weights {WEIGHTS:?}) ==", CLIENTS);
        for sched in SCHEDULERS {
            let mut sim = Sim::new(method, sched);
            let mut err = None;
            for n in 0..CLIENTS {
                if let Err(e) = sim.connection(n, method == ForwardMethod::Masq) {
                    err = Some(e);
                    break;
                }
            }
            let svc = match sim
                .engine
                .control(sim.now, Request::GetService { key: sim.key })
            {
                Response::Services { mut services } => services.remove(0),
                r => {
                    println!("{sched:6} cannot list the service: {r:?}");
                    failed += 1;
                    continue;
                }
            };
            let mut conns = [0u64; 3];
            let mut cols = Vec::new();
            for d in &svc.dests {
                let i = (0..3)
                    .find(|&i| rip(i) == d.spec.addr)
                    .expect("known real server");
                conns[i] = d.stats.conns;
            }
            for i in 0..3 {
                let d = svc
                    .dests
                    .iter()
                    .find(|d| d.spec.addr == rip(i))
                    .expect("listed");
                cols.push(format!(
                    "{}(w{}): {:4} conns {:5} in {:5} out",
                    rip(i),
                    d.spec.weight,
                    d.stats.conns,
                    d.stats.inpkts,
                    d.stats.outpkts
                ));
            }
            let (ok, why) = match err {
                Some(e) => (false, e),
                None => verdict(sched, conns),
            };
            let out_ok = (method == ForwardMethod::Masq) == (svc.stats.outpkts > 0);
            let ok = ok && out_ok && svc.stats.conns == u64::from(CLIENTS);
            if !ok {
                failed += 1;
            }
            println!("{sched:6} {}", cols.join(" | "));
            println!("       {} {why}", if ok { "PASS" } else { "FAIL" });
        }
    }
    if failed > 0 {
        println!("{failed} case(s) failed");
        ExitCode::FAILURE
    } else {
        println!("all cases passed");
        ExitCode::SUCCESS
    }
}
