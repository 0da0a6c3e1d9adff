//! One lab per test: `rvs lab up --ipv6` through the built binaries, `rvs lab down` on drop, and a
//! client for rvsd's control socket.

use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rvs::lab::state::{LabProcess, LabState};
use rvs::lab::topology::{HTTP_PORT, LabMode, Plan, UDP_PORT, VIP4, VIP6, v4, v6};
use rvs_api::{ConnEntry, DestSpec, Protocol, Request, Response, ServiceEntry, ServiceKey};

pub(crate) const RVS: &str = env!("CARGO_BIN_EXE_rvs");
pub(crate) const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

/// Whether the test can run; prints why not.
pub(crate) fn root_or_skip(test: &str) -> bool {
    if rvs::lab::is_root() {
        return true;
    }
    eprintln!("SKIP {test}: needs root (network namespaces, veth, XDP, AF_XDP)");
    false
}

/// Runs a command, killing it after `secs` (then panicking with its output).
pub(crate) fn run(program: &str, args: &[&str], secs: u64) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    // Drain the pipes in the background so a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut v);
        v
    });
    let err_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut v);
        v
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`{program} {}` timed out after {secs}s\nstdout: {}\nstderr: {}",
                args.join(" "),
                String::from_utf8_lossy(&out_t.join().unwrap()),
                String::from_utf8_lossy(&err_t.join().unwrap())
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// Runs and requires success; returns stdout.
pub(crate) fn ok(program: &str, args: &[&str], secs: u64) -> String {
    let out = run(program, args, secs);
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}\nstdout: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// MAC address of `dev` in namespace `ns`.
pub(crate) fn mac_of(ns: &str, dev: &str) -> [u8; 6] {
    let out = ok("ip", &["-n", ns, "-j", "link", "show", "dev", dev], 10);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let s = v[0]["address"].as_str().unwrap();
    let mut mac = [0u8; 6];
    for (i, part) in s.split(':').enumerate() {
        mac[i] = u8::from_str_radix(part, 16).unwrap();
    }
    mac
}

/// `aa:bb:…` for messages.
pub(crate) fn mac_str(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// IPv4 or IPv6: the VIP, the client, the director and the real servers of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fam {
    V4,
    V6,
}

impl Fam {
    pub(crate) const BOTH: [Self; 2] = [Self::V4, Self::V6];

    pub(crate) fn vip(self) -> IpAddr {
        match self {
            Self::V4 => IpAddr::V4(VIP4),
            Self::V6 => IpAddr::V6(VIP6),
        }
    }

    /// The lab address `198.18.net.host` / `2001:db8:net::host`.
    pub(crate) fn addr(self, net: u8, host: u8) -> IpAddr {
        match self {
            Self::V4 => IpAddr::V4(v4(net, host)),
            Self::V6 => IpAddr::V6(v6(net, host)),
        }
    }

    /// The director's address on the LAN (DIP).
    pub(crate) fn dip(self) -> IpAddr {
        self.addr(0, 2)
    }

    pub(crate) fn tcp(self) -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: self.vip(),
            port: HTTP_PORT,
        }
    }

    pub(crate) fn udp(self) -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: self.vip(),
            port: UDP_PORT,
        }
    }
}

impl std::fmt::Display for Fam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        })
    }
}

/// A lab that exists for the lifetime of this value: `rvs lab down` runs on drop, also when the
/// test panics (and when `lab up` itself failed half-way).
pub(crate) struct Lab {
    pub(crate) name: String,
    pub(crate) mode: LabMode,
    pub(crate) plan: Plan,
    pub(crate) weights: [u32; 3],
    pub(crate) socket: PathBuf,
}

impl Lab {
    /// `rvs lab up --mode M --scheduler S --weights W --ipv6` with the rvsd built for this test.
    pub(crate) fn up(mode: LabMode, scheduler: &str, weights: [u32; 3]) -> Self {
        let name = format!("e2e{}{mode}", std::process::id() % 100_000);
        let lab = Self {
            plan: Plan::new(&name, mode),
            socket: rvs::lab::state::socket_path(&name),
            name,
            mode,
            weights,
        };
        let w = weights.map(|w| w.to_string()).join(",");
        let started = Instant::now();
        let out = run(
            RVS,
            &[
                "lab",
                "up",
                "--name",
                &lab.name,
                "--mode",
                &mode.to_string(),
                "--scheduler",
                scheduler,
                "--weights",
                &w,
                "--ipv6",
                "--rvsd",
                RVSD,
            ],
            120,
        );
        assert!(
            out.status.success(),
            "lab up failed\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "[{mode}] lab `{}` up in {:.1}s ({scheduler} {w})",
            lab.name,
            started.elapsed().as_secs_f64()
        );
        lab
    }

    pub(crate) fn state(&self) -> LabState {
        LabState::load(&self.name).unwrap().expect("lab state file")
    }

    /// The rvsd process the lab started.
    pub(crate) fn rvsd(&self) -> LabProcess {
        self.state()
            .processes
            .into_iter()
            .find(|p| p.role == "rvsd")
            .expect("rvsd in the lab state")
    }

    /// Index 0..3 of `rs1`..`rs3`.
    pub(crate) fn rs_index(&self, name: &str) -> usize {
        self.plan
            .real_servers
            .iter()
            .position(|r| r.name == name)
            .unwrap_or_else(|| panic!("unknown real server `{name}`"))
    }

    pub(crate) fn rip(&self, fam: Fam, rs: usize) -> IpAddr {
        let r = &self.plan.real_servers[rs];
        match fam {
            Fam::V4 => IpAddr::V4(r.rip4),
            Fam::V6 => IpAddr::V6(r.rip6),
        }
    }

    /// One request on rvsd's control socket.
    pub(crate) fn request(&self, req: &Request) -> Response {
        let mut s = UnixStream::connect(&self.socket)
            .unwrap_or_else(|e| panic!("connect {}: {e}", self.socket.display()));
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        rvs_api::write_frame(&mut s, req).unwrap();
        rvs_api::read_frame(&mut s).unwrap()
    }

    /// A request that must succeed with `Response::Ok`.
    pub(crate) fn expect_ok(&self, req: &Request) {
        match self.request(req) {
            Response::Ok => {}
            other => panic!("{req:?} answered {other:?}"),
        }
    }

    pub(crate) fn service(&self, key: ServiceKey) -> ServiceEntry {
        match self.request(&Request::GetService { key }) {
            Response::Services { mut services } if services.len() == 1 => services.remove(0),
            other => panic!("GetService {key}: {other:?}"),
        }
    }

    pub(crate) fn conns(&self) -> Vec<ConnEntry> {
        match self.request(&Request::ListConns) {
            Response::Conns { conns } => conns,
            other => panic!("ListConns: {other:?}"),
        }
    }

    /// rvsd's data-plane counters (`GetCounters`).
    pub(crate) fn counters(&self) -> Vec<(String, u64)> {
        match self.request(&Request::GetCounters) {
            Response::Counters { counters } => counters,
            other => panic!("GetCounters: {other:?}"),
        }
    }

    pub(crate) fn sysctl(&self, name: &str) -> i64 {
        match self.request(&Request::GetSysctls) {
            Response::Sysctls { sysctls } => {
                sysctls
                    .into_iter()
                    .find(|(n, _)| n == name)
                    .unwrap_or_else(|| panic!("sysctl {name} missing"))
                    .1
            }
            other => panic!("GetSysctls: {other:?}"),
        }
    }

    /// The spec of real server `rs` in `key`, as rvsd lists it.
    pub(crate) fn dest(&self, key: ServiceKey, fam: Fam, rs: usize) -> Option<DestSpec> {
        let rip = self.rip(fam, rs);
        self.service(key)
            .dests
            .into_iter()
            .find(|d| d.spec.addr == rip)
            .map(|d| d.spec)
    }

    /// Per-real-server `conns` counters of a service (rs1..rs3; 0 for a missing one).
    pub(crate) fn dest_conns(&self, key: ServiceKey, fam: Fam) -> [u64; 3] {
        let svc = self.service(key);
        std::array::from_fn(|i| {
            let rip = self.rip(fam, i);
            svc.dests
                .iter()
                .find(|d| d.spec.addr == rip)
                .map_or(0, |d| d.stats.conns)
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = Command::new(RVS)
            .args(["lab", "down", "--name", &self.name])
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "rvs lab down --name {} failed: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("rvs lab down --name {}: {e}", self.name),
        }
    }
}

/// Waits for `cond`, panicking with `what` after `secs`.
pub(crate) fn wait_for(what: &str, secs: f64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}
