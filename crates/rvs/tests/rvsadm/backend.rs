//! rvsd stand-ins for in-process tests, and helpers to run rvsadm against them.
//!
//! [`new_state`] puts the real engine behind the backend: every request goes to
//! `rvs_engine::Engine::control`, as rvsd does, so adding, editing, deleting, flushing, zeroing,
//! timeouts and every daemon error come from the engine itself. [`EngineLab`] can also push TCP
//! packets through that engine (one interface, direct routing) when a test needs real counters
//! or connections.
//!
//! [`canned_state`] answers the read-only requests from fixed tables. It exists only for the
//! golden formatting tests that need counters, rates, connections or sync daemons the engine
//! cannot produce without heavy traffic (K/M/G scaling, 2^32 counters, every connection state).
//! It refuses every request that would change something.

use std::cell::RefCell;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use rvs::rvsadm::{self, Backend, BackendError, Resolver, names::Services};
use rvs_api::{ApiError, ConnEntry, DaemonSpec, Info, Request, Response, ServiceEntry, Timeouts};
use rvs_engine::{Engine, EngineConfig, IfaceId, Interface, Mac, Route, Verdict};
use rvs_wire::{
    EtherType, EthernetAddress, EthernetFrame, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr,
    Ipv6Packet, Ipv6Repr, PacketBuf, TcpFlags, TcpPacket, TcpRepr,
};

/// The director's MAC on its one interface.
const DIRECTOR_MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];
/// The router in front of the director (source MAC of client packets).
const ROUTER_MAC: Mac = [0x02, 0, 0, 0, 0, 0xfe];

/// The engine with one interface `eth0` (198.18.0.2, 2001:db8::2) on a LAN that holds the
/// router (.1 / ::1) and real servers 198.18.0.11–.19 / 2001:db8::11–19: enough to forward
/// direct-routing traffic. The clock is virtual and moves only when a test says so.
pub(crate) struct EngineLab {
    pub(crate) engine: Engine,
    now: Instant,
    eth0: IfaceId,
}

impl EngineLab {
    fn new() -> Self {
        let now = Instant::now();
        let mut engine = Engine::new(
            now,
            EngineConfig {
                seed: 7,
                conn_capacity: 4096,
            },
        );
        let eth0 = engine.add_interface(Interface {
            name: "eth0".into(),
            mac: DIRECTOR_MAC,
            mtu: 1500,
            addrs: vec![
                IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
                "2001:db8::2".parse().unwrap(),
            ],
        });
        let route = |dst: &str, prefix_len, gateway: Option<&str>| Route {
            dst: dst.parse().unwrap(),
            prefix_len,
            iface: eth0,
            gateway: gateway.map(|g| g.parse().unwrap()),
            src: None,
        };
        engine.set_routes(vec![
            route("0.0.0.0", 0, Some("198.18.0.1")),
            route("198.18.0.0", 24, None),
            route("::", 0, Some("2001:db8::1")),
            route("2001:db8::", 64, None),
        ]);
        engine.set_neighbour(eth0, "198.18.0.1".parse().unwrap(), Some(ROUTER_MAC));
        engine.set_neighbour(eth0, "2001:db8::1".parse().unwrap(), Some(ROUTER_MAC));
        for i in 11..20u8 {
            let mac = [0x02, 0, 0, 0, 1, i];
            engine.set_neighbour(eth0, IpAddr::V4(Ipv4Addr::new(198, 18, 0, i)), Some(mac));
            let v6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10 + u16::from(i - 10));
            engine.set_neighbour(eth0, IpAddr::V6(v6), Some(mac));
        }
        Self { engine, now, eth0 }
    }

    /// Moves the virtual clock forward by `d`, running the engine's timers every 100 ms as
    /// rvsd's housekeeping loop does (the connection sweep visits the table in slices).
    pub(crate) fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now = (self.now + Duration::from_millis(100)).min(end);
            self.engine.handle_timeout(self.now);
        }
    }

    fn control(&mut self, req: Request) -> Response {
        self.engine.control(self.now, req)
    }

    /// A TCP segment from `client` to `vip` as the router delivers it; returns the engine's
    /// verdict and the frame it would transmit.
    pub(crate) fn tcp(
        &mut self,
        client: SocketAddr,
        vip: SocketAddr,
        flags: TcpFlags,
        payload: &[u8],
    ) -> (Verdict, Vec<u8>) {
        let frame = tcp_frame(client, vip, flags, payload);
        let mut buf = vec![0u8; 256 + frame.len() + 256];
        buf[256..256 + frame.len()].copy_from_slice(&frame);
        let mut pkt = PacketBuf::new(&mut buf, 256, frame.len()).unwrap();
        let verdict = self.engine.process(self.now, self.eth0, &mut pkt);
        (verdict, pkt.data().to_vec())
    }

    /// The real server a transmitted DR frame goes to: its destination MAC's last byte is the
    /// real server's host number (11–19).
    pub(crate) fn dr_target(frame: &[u8]) -> u8 {
        frame[5]
    }
}

/// Ethernet + IPv4/IPv6 + TCP with valid checksums.
fn tcp_frame(src: SocketAddr, dst: SocketAddr, flags: TcpFlags, payload: &[u8]) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        seq_number: 1000,
        ack_number: if flags.bits() & TcpFlags::ACK.bits() != 0 {
            2000
        } else {
            0
        },
        flags,
        window_len: 64240,
        max_seg_size: None,
        payload,
    };
    let (ethertype, ip_len) = match src {
        SocketAddr::V4(_) => (EtherType::Ipv4, 20),
        SocketAddr::V6(_) => (EtherType::Ipv6, 40),
    };
    let mut frame = vec![0u8; 14 + ip_len + tcp.buffer_len()];
    EthernetRepr {
        src_addr: EthernetAddress(ROUTER_MAC),
        dst_addr: EthernetAddress(DIRECTOR_MAC),
        ethertype,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
    let (s, d) = (src.ip(), dst.ip());
    match (s, d) {
        (IpAddr::V4(s4), IpAddr::V4(d4)) => Ipv4Repr {
            src_addr: s4,
            dst_addr: d4,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
            dscp_ecn: 0,
            ident: 1,
            dont_frag: true,
        }
        .emit(&mut Ipv4Packet::new_unchecked(&mut frame[14..])),
        (IpAddr::V6(s6), IpAddr::V6(d6)) => Ipv6Repr {
            src_addr: s6,
            dst_addr: d6,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        }
        .emit(&mut Ipv6Packet::new_unchecked(&mut frame[14..])),
        _ => panic!("mixed address families"),
    }
    tcp.emit(
        &mut TcpPacket::new_unchecked(&mut frame[14 + ip_len..]),
        &s,
        &d,
    );
    frame
}

/// Fixed answers to the read-only requests.
#[derive(Debug)]
pub(crate) struct Canned {
    pub(crate) services: Vec<ServiceEntry>,
    pub(crate) timeouts: Timeouts,
    pub(crate) daemons: Vec<DaemonSpec>,
    pub(crate) conns: Vec<ConnEntry>,
}

impl Canned {
    fn handle(&self, req: Request) -> Response {
        match req {
            Request::GetInfo => Response::Info {
                info: Info {
                    version: rvs_engine::IPVS_VERSION,
                    conn_tab_size: 4096,
                },
            },
            Request::ListServices => Response::Services {
                services: self.services.clone(),
            },
            Request::GetService { key } => match self.services.iter().find(|s| s.spec.key == key) {
                Some(s) => Response::Services {
                    services: vec![s.clone()],
                },
                None => Response::Error {
                    error: ApiError::NoSuchService,
                },
            },
            Request::GetTimeouts => Response::Timeouts {
                timeouts: self.timeouts,
            },
            Request::ListConns => Response::Conns {
                conns: self.conns.clone(),
            },
            Request::ListDaemons => Response::Daemons {
                daemons: self.daemons.clone(),
            },
            other => panic!("the canned backend is read-only; {other:?} needs the engine"),
        }
    }
}

enum Daemon {
    Engine(Box<EngineLab>),
    Canned(Canned),
}

/// What rvsadm talks to, with a record of what it was sent.
pub(crate) struct State {
    daemon: Daemon,
    /// Every request received, in order.
    pub(crate) log: Vec<Request>,
    /// How many times rvsadm connected.
    pub(crate) connects: usize,
}

pub(crate) type Shared = Rc<RefCell<State>>;

/// A fresh engine with no services.
pub(crate) fn new_state() -> Shared {
    Rc::new(RefCell::new(State::engine()))
}

/// A canned daemon with empty tables and the default timeouts.
pub(crate) fn canned_state() -> Shared {
    Rc::new(RefCell::new(State {
        daemon: Daemon::Canned(Canned {
            services: Vec::new(),
            timeouts: Timeouts::default(),
            daemons: Vec::new(),
            conns: Vec::new(),
        }),
        log: Vec::new(),
        connects: 0,
    }))
}

impl State {
    /// The real engine, empty.
    pub(crate) fn engine() -> Self {
        Self {
            daemon: Daemon::Engine(Box::new(EngineLab::new())),
            log: Vec::new(),
            connects: 0,
        }
    }

    /// Applies one request and records it.
    pub(crate) fn handle(&mut self, req: Request) -> Response {
        self.log.push(req.clone());
        match &mut self.daemon {
            Daemon::Engine(lab) => lab.control(req),
            Daemon::Canned(c) => c.handle(req),
        }
    }

    /// The service table as the daemon lists it (not recorded in the log).
    pub(crate) fn services(&mut self) -> Vec<ServiceEntry> {
        let resp = match &mut self.daemon {
            Daemon::Engine(lab) => lab.control(Request::ListServices),
            Daemon::Canned(c) => c.handle(Request::ListServices),
        };
        match resp {
            Response::Services { services } => services,
            r => panic!("ListServices answered {r:?}"),
        }
    }

    /// The engine, for traffic and the clock. Panics on a canned daemon.
    pub(crate) fn lab(&mut self) -> &mut EngineLab {
        match &mut self.daemon {
            Daemon::Engine(lab) => lab,
            Daemon::Canned(_) => panic!("a canned daemon has no engine"),
        }
    }

    /// The canned tables. Panics on an engine.
    pub(crate) fn canned(&mut self) -> &mut Canned {
        match &mut self.daemon {
            Daemon::Canned(c) => c,
            Daemon::Engine(_) => panic!("this daemon is the engine, not canned"),
        }
    }

    /// Replaces the engine by canned tables holding what it lists now, so that a test can
    /// change counters the engine would need heavy traffic for.
    pub(crate) fn freeze(&mut self) {
        let services = self.services();
        let lab = self.lab();
        let Response::Timeouts { timeouts } = lab.control(Request::GetTimeouts) else {
            panic!("GetTimeouts");
        };
        let Response::Conns { conns } = lab.control(Request::ListConns) else {
            panic!("ListConns");
        };
        self.daemon = Daemon::Canned(Canned {
            services,
            timeouts,
            daemons: Vec::new(),
            conns,
        });
    }
}

/// A [`Backend`] over the shared state.
pub(crate) struct MemBackend(pub(crate) Shared);

impl Backend for MemBackend {
    fn call(&mut self, request: Request) -> Result<Response, BackendError> {
        Ok(self.0.borrow_mut().handle(request))
    }
}

/// Deterministic name lookups: no dependence on the machine's hosts, DNS or services files.
pub(crate) struct FakeResolver {
    services: Services,
}

impl FakeResolver {
    pub(crate) fn new() -> Self {
        Self {
            services: Services::parse(
                "http 80/tcp www\nhttp 80/udp\nhttps 443/tcp\nhttps 443/udp\ndomain 53/tcp\n\
                 domain 53/udp\nhttp-alt 8080/tcp webcache\nsip 5060/udp\nsip 5060/tcp\n",
            ),
        }
    }
}

impl Resolver for FakeResolver {
    fn host_to_ipv4(&self, name: &str) -> Option<Ipv4Addr> {
        match name {
            "localhost" => Some(Ipv4Addr::LOCALHOST),
            "www.example.test" => Some(Ipv4Addr::new(192, 0, 2, 10)),
            _ => None,
        }
    }

    fn addr_to_host(&self, addr: IpAddr) -> Option<String> {
        match addr.to_string().as_str() {
            "127.0.0.1" | "::1" => Some("localhost".to_owned()),
            "192.0.2.10" => Some("www.example.test".to_owned()),
            "192.0.2.77" => Some("a-very-long-host-name-for-truncation.example.test".to_owned()),
            _ => None,
        }
    }

    fn service_to_port(&self, name: &str, proto: &str) -> Option<u16> {
        self.services.port_of(name, proto)
    }

    fn port_to_service(&self, port: u16, proto: &str) -> Option<String> {
        self.services.name_of(port, proto).map(str::to_owned)
    }
}

/// What one invocation produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs rvsadm with `argv` (argv[0] = "ipvsadm") and `stdin` against the shared state.
pub(crate) fn run_argv(state: &Shared, argv: &[&str], stdin: &str) -> Out {
    let argv: Vec<OsString> = std::iter::once("ipvsadm")
        .chain(argv.iter().copied())
        .map(OsString::from)
        .collect();
    let mut connect = || -> Result<Box<dyn Backend>, BackendError> {
        state.borrow_mut().connects += 1;
        Ok(Box::new(MemBackend(state.clone())))
    };
    let mut input = stdin.as_bytes();
    let (mut out, mut errb) = (Vec::new(), Vec::new());
    let code = rvsadm::run_with_resolver(
        &argv,
        &mut connect,
        &FakeResolver::new(),
        &mut input,
        &mut out,
        &mut errb,
    );
    Out {
        code,
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(errb).unwrap(),
    }
}

/// Runs rvsadm with a whitespace-separated command line.
pub(crate) fn run(state: &Shared, line: &str) -> Out {
    let words: Vec<&str> = line.split_whitespace().collect();
    run_argv(state, &words, "")
}

/// Runs a command that must succeed silently.
pub(crate) fn ok(state: &Shared, line: &str) {
    let o = run(state, line);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""), "rvsadm {line}");
}
