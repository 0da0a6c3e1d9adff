//! An in-memory stand-in for rvsd with IPVS semantics, and helpers to run rvsadm against it.

use std::cell::RefCell;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;

use rvs::rvsadm::{self, Backend, BackendError, Resolver, names::Services};
use rvs_api::{
    ApiError, ConnEntry, DaemonSpec, DestEntry, Info, Netmask, Rates, Request, Response,
    ServiceEntry, ServiceKey, Stats, Timeouts,
};

/// Schedulers IPVS knows (ip_vs_sched_getbyname).
const SCHEDULERS: [&str; 15] = [
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
    "none",
];

/// The daemon-side state: services in kernel order, real servers newest first.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) services: Vec<ServiceEntry>,
    pub(crate) timeouts: Option<Timeouts>,
    pub(crate) daemons: Vec<DaemonSpec>,
    pub(crate) conns: Vec<ConnEntry>,
    /// Every request received, in order.
    pub(crate) log: Vec<Request>,
    /// How many times rvsadm connected.
    pub(crate) connects: usize,
}

pub(crate) type Shared = Rc<RefCell<State>>;

pub(crate) fn new_state() -> Shared {
    Rc::new(RefCell::new(State::default()))
}

fn err(error: ApiError) -> Response {
    Response::Error { error }
}

impl State {
    fn find(&self, key: &ServiceKey) -> Option<usize> {
        self.services.iter().position(|s| s.spec.key == *key)
    }

    /// Applies one request with IPVS semantics.
    pub(crate) fn handle(&mut self, req: Request) -> Response {
        self.log.push(req.clone());
        match req {
            Request::GetInfo => Response::Info {
                info: Info {
                    version: 0x010201,
                    conn_tab_size: 4096,
                },
            },
            Request::ListServices => Response::Services {
                services: self.services.clone(),
            },
            Request::GetService { key } => match self.find(&key) {
                Some(i) => Response::Services {
                    services: vec![self.services[i].clone()],
                },
                None => err(ApiError::NoSuchService),
            },
            Request::AddService { spec } => {
                if self.find(&spec.key).is_some() {
                    return err(ApiError::ServiceExists);
                }
                if !SCHEDULERS.contains(&spec.scheduler.as_str())
                    || spec.pe_name.as_deref().is_some_and(|p| p != "sip")
                {
                    return err(ApiError::SchedulerNotFound);
                }
                if matches!(spec.netmask, Netmask::V6(p) if !(1..=128).contains(&p)) {
                    return err(ApiError::Invalid);
                }
                self.services.push(ServiceEntry {
                    spec,
                    stats: Stats::default(),
                    rates: Rates::default(),
                    dests: Vec::new(),
                });
                Response::Ok
            }
            Request::EditService { spec } => {
                let Some(i) = self.find(&spec.key) else {
                    return err(ApiError::NoSuchService);
                };
                if !SCHEDULERS.contains(&spec.scheduler.as_str())
                    || spec.pe_name.as_deref().is_some_and(|p| p != "sip")
                {
                    return err(ApiError::SchedulerNotFound);
                }
                self.services[i].spec = spec;
                Response::Ok
            }
            Request::DelService { key } => match self.find(&key) {
                Some(i) => {
                    self.services.remove(i);
                    Response::Ok
                }
                None => err(ApiError::NoSuchService),
            },
            Request::Flush => {
                self.services.clear();
                Response::Ok
            }
            Request::AddDest { service, dest } => {
                let Some(i) = self.find(&service) else {
                    return err(ApiError::ServiceNotDefined);
                };
                if dest.l_threshold > dest.u_threshold {
                    return err(ApiError::OutOfRange);
                }
                let dests = &mut self.services[i].dests;
                if dests
                    .iter()
                    .any(|d| d.spec.addr == dest.addr && d.spec.port == dest.port)
                {
                    return err(ApiError::DestExists);
                }
                dests.insert(
                    0,
                    DestEntry {
                        spec: dest,
                        activeconns: 0,
                        inactconns: 0,
                        persistconns: 0,
                        stats: Stats::default(),
                        rates: Rates::default(),
                    },
                );
                Response::Ok
            }
            Request::EditDest { service, dest } => {
                let Some(i) = self.find(&service) else {
                    return err(ApiError::ServiceNotDefined);
                };
                if dest.l_threshold > dest.u_threshold {
                    return err(ApiError::OutOfRange);
                }
                let dests = &mut self.services[i].dests;
                match dests
                    .iter_mut()
                    .find(|d| d.spec.addr == dest.addr && d.spec.port == dest.port)
                {
                    Some(d) => {
                        d.spec = dest;
                        Response::Ok
                    }
                    None => err(ApiError::NoSuchDest),
                }
            }
            Request::DelDest {
                service,
                addr,
                port,
            } => {
                let Some(i) = self.find(&service) else {
                    return err(ApiError::ServiceNotDefined);
                };
                let dests = &mut self.services[i].dests;
                match dests
                    .iter()
                    .position(|d| d.spec.addr == addr && d.spec.port == port)
                {
                    Some(j) => {
                        dests.remove(j);
                        Response::Ok
                    }
                    None => err(ApiError::NoSuchDest),
                }
            }
            Request::Zero { service } => {
                let zero = |s: &mut ServiceEntry| {
                    s.stats = Stats::default();
                    s.rates = Rates::default();
                    for d in &mut s.dests {
                        d.stats = Stats::default();
                        d.rates = Rates::default();
                    }
                };
                match service {
                    None => self.services.iter_mut().for_each(zero),
                    Some(key) => match self.find(&key) {
                        Some(i) => zero(&mut self.services[i]),
                        None => return err(ApiError::NoSuchService),
                    },
                }
                Response::Ok
            }
            Request::SetTimeouts { timeouts } => {
                let cur = self.timeouts.get_or_insert_with(Timeouts::default);
                if timeouts.tcp != 0 {
                    cur.tcp = timeouts.tcp;
                }
                if timeouts.tcp_fin != 0 {
                    cur.tcp_fin = timeouts.tcp_fin;
                }
                if timeouts.udp != 0 {
                    cur.udp = timeouts.udp;
                }
                Response::Ok
            }
            Request::GetTimeouts => Response::Timeouts {
                timeouts: self.timeouts.unwrap_or_default(),
            },
            Request::ListConns => Response::Conns {
                conns: self.conns.clone(),
            },
            Request::ListDaemons => Response::Daemons {
                daemons: self.daemons.clone(),
            },
            Request::StartDaemon { .. } | Request::StopDaemon { .. } => {
                err(ApiError::NotSupported(
                    "connection synchronization is not supported by rvsd yet".to_owned(),
                ))
            }
            Request::GetSysctls => Response::Sysctls {
                sysctls: Vec::new(),
            },
            Request::SetSysctl { .. } => Response::Ok,
        }
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
