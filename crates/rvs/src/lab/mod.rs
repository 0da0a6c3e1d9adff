//! `rvs lab`: a network-namespace lab with a client, a router, a director running `rvsd` and three
//! real servers, for each LVS forwarding method (NAT, DR, TUN).
//!
//! * [`up`] builds the topology of [`topology::Plan`], prepares the real servers
//!   (`rvs realserver dr|tun`), starts `rvs testsrv http|udp` on each, verifies the topology
//!   ([`verify`]), then starts `rvsd` in the director namespace and configures the virtual services
//!   over its control socket ([`director`]).
//! * [`down`] stops exactly the processes the lab recorded (by pid and start time), deletes the
//!   lab's namespaces (which removes every veth and bridge in them) and the runtime files. It works
//!   after a failed or interrupted `up` and is idempotent. It never touches anything outside the
//!   `rvs-<lab>-*` namespaces and `/run/rvs/<lab>*`.
//! * [`status`] shows what is up, [`demo`](demo::demo) runs every mode × scheduler and checks the
//!   distribution of requests.
//!
//! Everything the lab runs inside a namespace is either iproute2/ethtool/sysctl/curl or the rvs
//! binary itself (`rvs lab tool …`, `rvs realserver …`, `rvs testsrv …`) via `ip netns exec`.

mod cmd;
pub mod demo;
pub mod director;
pub mod process;
pub mod state;
pub mod tool;
pub mod topology;
pub mod verify;

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use process::ProcessId;
use state::{LabProcess, LabState};
use topology::{HTTP_PORT, LabMode, Plan, VIP4, VIP6};

/// Children spawned by this process, reaped by [`down`] so a long `demo` leaves no zombies.
static CHILDREN: Mutex<Vec<Child>> = Mutex::new(Vec::new());

/// Why a lab operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// The lab needs root (namespaces, veths, XDP).
    #[error("rvs lab needs root")]
    NotRoot,
    /// A required program is not installed.
    #[error("`{0}` not found in PATH (install it: {1})")]
    MissingTool(String, &'static str),
    /// A lab of this name is already up.
    #[error("lab `{0}` is already up (or left over): run `rvs lab down` first")]
    AlreadyUp(String),
    /// Invalid parameters.
    #[error("{0}")]
    BadSpec(String),
    /// A command failed.
    #[error("`{cmd}` failed ({}): {stderr}", status.map_or_else(|| "killed".to_owned(), |c| format!("exit {c}")))]
    Command {
        /// The command line.
        cmd: String,
        /// Exit code.
        status: Option<i32>,
        /// Its error output.
        stderr: String,
    },
    /// An OS operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The state file is corrupt.
    #[error("lab state {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// A topology check failed.
    #[error("verification failed: {0}")]
    Verify(String),
    /// rvsd could not be started or configured.
    #[error("director: {0}")]
    Director(String),
    /// The control socket failed.
    #[error(transparent)]
    Api(#[from] rvs_api::CodecError),
    /// An in-namespace probe failed.
    #[error("probe: {0}")]
    Tool(String),
    /// Some demo verdicts failed.
    #[error("{0} of {1} demo checks failed")]
    DemoFailed(usize, usize),
}

impl LabError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}

/// Whether `rvs lab up` starts rvsd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectorPolicy {
    /// Start it if the binary is found; otherwise build the topology only and say so.
    Auto,
    /// Start it or fail.
    Require,
    /// Topology only.
    Skip,
}

/// Parameters of `rvs lab up`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSpec {
    /// Lab name: namespaces are `rvs-<name>-*`, runtime files `/run/rvs/<name>*`.
    pub name: String,
    /// Forwarding method.
    pub mode: LabMode,
    /// Scheduler of the virtual services.
    pub scheduler: String,
    /// Weights of rs1, rs2, rs3.
    pub weights: Vec<u32>,
    /// Also configure the IPv6 virtual services (the topology is always dual-stack).
    pub ipv6: bool,
    /// rvsd's `--xdp-mode` (auto, native, skb).
    pub xdp_mode: String,
    /// rvsd binary (None: next to `rvs`, else `PATH`).
    pub rvsd: Option<PathBuf>,
    /// Whether to start rvsd.
    pub director: DirectorPolicy,
    /// Whether to configure the virtual services in rvsd (false: rvsd starts with an empty
    /// table, for tests that configure it with rvsadm).
    pub services: bool,
    /// Whether rvsd forwards established flows in XDP (the lab then runs an XDP_PASS program
    /// on the far end of the director's veths, which veth needs to deliver XDP_TX frames).
    pub fast_path: bool,
    /// The rvs binary run inside the namespaces.
    pub rvs_exe: PathBuf,
    /// Print each step and check (errors are printed regardless).
    pub verbose: bool,
}

impl LabSpec {
    /// Defaults: lab `lab`, wlc, weights 1,1,1, IPv4 services, `--xdp-mode auto`, rvsd if found.
    pub fn new(mode: LabMode) -> Result<Self, LabError> {
        Ok(Self {
            name: "lab".into(),
            mode,
            scheduler: "wlc".into(),
            weights: vec![1, 1, 1],
            ipv6: false,
            xdp_mode: "auto".into(),
            rvsd: None,
            director: DirectorPolicy::Auto,
            services: true,
            fast_path: true,
            rvs_exe: std::env::current_exe()
                .map_err(|e| LabError::io("locate the rvs binary", e))?,
            verbose: true,
        })
    }
}

/// Whether the current process runs as root (effective uid 0).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

/// A valid lab name: short, `[a-z0-9-]`, so namespace and file names stay simple.
fn check_name(name: &str) -> Result<(), LabError> {
    let ok = !name.is_empty()
        && name.len() <= 24
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(LabError::BadSpec(format!(
            "bad lab name `{name}` (1-24 of a-z 0-9 -)"
        )))
    }
}

fn preflight(spec: &LabSpec) -> Result<(), LabError> {
    check_name(&spec.name)?;
    if !is_root() {
        return Err(LabError::NotRoot);
    }
    for (tool, pkg) in [
        ("ip", "iproute2"),
        ("ethtool", "ethtool"),
        ("sysctl", "procps"),
        ("kill", "procps"),
    ] {
        if !cmd::have(tool) {
            return Err(LabError::MissingTool(tool.into(), pkg));
        }
    }
    if spec.weights.len() != topology::REAL_SERVERS {
        return Err(LabError::BadSpec(format!(
            "--weights needs {} values",
            topology::REAL_SERVERS
        )));
    }
    if !spec.rvs_exe.is_file() {
        return Err(LabError::BadSpec(format!(
            "rvs binary {} not found",
            spec.rvs_exe.display()
        )));
    }
    let existing = cmd::netns_list()?;
    if state::state_path(&spec.name).exists()
        || Plan::all_namespaces(&spec.name)
            .iter()
            .any(|n| existing.contains(n))
    {
        return Err(LabError::AlreadyUp(spec.name.clone()));
    }
    Ok(())
}

/// Builds one lab and records what it creates.
pub struct Runner<'a> {
    spec: &'a LabSpec,
    plan: Plan,
    state: LabState,
    notes: Vec<String>,
}

impl std::fmt::Debug for Runner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("lab", &self.spec.name)
            .finish_non_exhaustive()
    }
}

impl Runner<'_> {
    /// Spawns `program args` in `ns` in the background (own process group, output to a log
    /// file) and records it in the state.
    pub(crate) fn spawn(
        &mut self,
        ns: &str,
        role: &str,
        program: &str,
        args: &[String],
    ) -> Result<ProcessId, LabError> {
        let logs = state::lab_dir(&self.spec.name).join("logs");
        fs::create_dir_all(&logs)
            .map_err(|e| LabError::io(format!("create {}", logs.display()), e))?;
        let log = logs.join(format!("{}.log", role.replace(' ', "-")));
        let file = fs::File::create(&log)
            .map_err(|e| LabError::io(format!("create {}", log.display()), e))?;
        let file2 = file
            .try_clone()
            .map_err(|e| LabError::io("dup log file", e))?;
        use std::os::unix::process::CommandExt;
        let child = Command::new("ip")
            .args(["netns", "exec", ns, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            // Not in the caller's process group: a Ctrl-C on `rvs lab up` must not kill the lab.
            .process_group(0)
            .spawn()
            .map_err(|e| LabError::io(format!("spawn {program} in {ns}"), e))?;
        // `ip netns exec` execs the program in place, so this pid is the program's.
        let id = ProcessId::of(child.id()).unwrap_or(ProcessId {
            pid: child.id(),
            start_time: 0,
        });
        if let Ok(mut children) = CHILDREN.lock() {
            children.push(child);
        }
        self.state.processes.push(LabProcess {
            role: role.into(),
            netns: ns.into(),
            id: id.clone(),
            log,
        });
        self.state.save()?;
        Ok(id)
    }

    fn say(&self, line: impl AsRef<str>) {
        if self.spec.verbose {
            println!("  {}", line.as_ref());
        }
    }

    fn build(&mut self) -> Result<(), LabError> {
        self.state.save()?;
        let plan = self.plan.clone();
        self.say(format!("namespaces: {}", plan.namespaces().join(" ")));
        for ns in plan.namespaces() {
            self.state.namespaces.push(ns.clone());
            self.state.save()?;
            cmd::run("ip", &["netns", "add", &ns])?;
            cmd::ip(&ns, &["link", "set", "lo", "up"])?;
        }
        let mut by_ns: Vec<(String, Vec<String>)> = Vec::new();
        for (ns, key, value) in &plan.sysctls {
            match by_ns.iter_mut().find(|(n, _)| n == ns) {
                Some((_, kv)) => kv.push(format!("{key}={value}")),
                None => by_ns.push((ns.clone(), vec![format!("{key}={value}")])),
            }
        }
        for (ns, kv) in &by_ns {
            let mut args = vec!["-q", "-w"];
            args.extend(kv.iter().map(String::as_str));
            cmd::netns_exec(ns, "sysctl", &args)?;
        }
        for br in &plan.bridges {
            let mtu = br.mtu.to_string();
            cmd::ip(
                &plan.lan,
                &[
                    "link",
                    "add",
                    &br.name,
                    "mtu",
                    &mtu,
                    "type",
                    "bridge",
                    "mcast_snooping",
                    "0",
                ],
            )?;
            cmd::ip(&plan.lan, &["link", "set", &br.name, "up"])?;
        }
        for v in &plan.veths {
            let mtu = v.mtu.to_string();
            cmd::ip(
                &v.a_ns,
                &[
                    "link", "add", "name", &v.a_dev, "mtu", &mtu, "type", "veth", "peer", "name",
                    &v.b_dev, "netns", &v.b_ns, "mtu", &mtu,
                ],
            )?;
            // Checksum offload would hand XDP partial checksums (see docs/lab.md).
            for (ns, dev) in [(&v.a_ns, &v.a_dev), (&v.b_ns, &v.b_dev)] {
                cmd::netns_exec(ns, "ethtool", &["-K", dev, "tx", "off"])?;
            }
        }
        let mut lan_batch = Vec::new();
        for br in &plan.bridges {
            for port in &br.ports {
                lan_batch.push(format!("link set {port} master {}", br.name));
                lan_batch.push(format!("link set {port} up"));
            }
        }
        cmd::ip_batch(&plan.lan, &lan_batch)?;
        for ns in plan.namespaces().iter().filter(|n| **n != plan.lan) {
            let mut batch = Vec::new();
            for v in &plan.veths {
                if &v.a_ns == ns {
                    batch.push(format!("link set {} up", v.a_dev));
                }
                if &v.b_ns == ns {
                    batch.push(format!("link set {} up", v.b_dev));
                }
            }
            for a in plan.addresses.iter().filter(|a| &a.ns == ns) {
                let nodad = if a.addr.is_ipv6() { " nodad" } else { "" };
                batch.push(format!(
                    "addr add {}/{} dev {}{nodad}",
                    a.addr, a.prefix_len, a.dev
                ));
            }
            for r in plan.routes.iter().filter(|r| &r.ns == ns) {
                batch.push(format!("route add default via {}", r.via));
            }
            cmd::ip_batch(ns, &batch)?;
        }
        self.say(format!("{} topology built", plan.mode));

        self.prepare_real_servers()?;
        verify::verify_topology(self)?;

        match self.director_binary()? {
            Some(rvsd) => {
                let socket = director::start_director(self, &rvsd)?;
                self.say(format!("rvsd running in {} (socket {})", plan.director, socket.display()));
                if self.spec.services {
                    director::configure_services(self.spec, &plan, &socket)?;
                    self.say(format!(
                        "services: TCP {VIP4}:{HTTP_PORT} and UDP {VIP4}:53{}, scheduler {}, weights {}",
                        if self.spec.ipv6 { format!(", and [{VIP6}]") } else { String::new() },
                        self.spec.scheduler,
                        self.spec.weights.iter().map(u32::to_string).collect::<Vec<_>>().join(":")
                    ));
                    verify::verify_director(self)?;
                } else {
                    self.say(format!(
                        "no services (--no-services): configure them with \
                         RVSADM_SOCKET={} rvsadm",
                        socket.display()
                    ));
                }
            }
            None => self.notes.push(
                "director not started (rvsd not found or --no-director): topology, real servers and \
                 test servers are up and verified; the VIP answers nothing yet"
                    .into(),
            ),
        }
        self.state.complete = true;
        self.state.save()
    }

    fn director_binary(&self) -> Result<Option<PathBuf>, LabError> {
        match self.spec.director {
            DirectorPolicy::Skip => Ok(None),
            DirectorPolicy::Auto => Ok(director::find_rvsd(self.spec)),
            DirectorPolicy::Require => director::find_rvsd(self.spec).map(Some).ok_or_else(|| {
                LabError::Director("rvsd binary not found (build it or pass --rvsd PATH)".into())
            }),
        }
    }

    fn prepare_real_servers(&mut self) -> Result<(), LabError> {
        let exe = self.spec.rvs_exe.display().to_string();
        let plan = self.plan.clone();
        let vips = [format!("{VIP4}"), format!("{VIP6}")];
        for rs in &plan.real_servers {
            let state_file =
                state::lab_dir(&self.spec.name).join(format!("{}-realserver.json", rs.name));
            let state_file = state_file.display().to_string();
            match plan.mode {
                LabMode::Nat => {}
                LabMode::Dr => {
                    cmd::netns_exec(
                        &rs.ns,
                        &exe,
                        &[
                            "realserver",
                            "dr",
                            "--vip",
                            &vips[0],
                            "--vip",
                            &vips[1],
                            "--state",
                            &state_file,
                        ],
                    )?;
                }
                LabMode::Tun => {
                    let args: Vec<String> = [
                        "realserver",
                        "tun",
                        "--vip",
                        &vips[0],
                        "--vip",
                        &vips[1],
                        "--interface",
                        &rs.dev,
                        "--state",
                        &state_file,
                    ]
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect();
                    let id =
                        self.spawn(&rs.ns, &format!("{} realserver-tun", rs.name), &exe, &args)?;
                    wait_tun_ready(
                        &id,
                        Path::new(&state_file),
                        self.state.processes.last().map(|p| p.log.clone()),
                    )?;
                }
            }
            let http = vec![
                "testsrv".into(),
                "http".into(),
                "--listen".into(),
                format!("[::]:{HTTP_PORT}"),
                "--name".into(),
                rs.name.clone(),
            ];
            let http_id = self.spawn(&rs.ns, &format!("{} http", rs.name), &exe, &http)?;
            let mut udp = vec![
                "testsrv".into(),
                "udp".into(),
                "--name".into(),
                rs.name.clone(),
            ];
            for l in plan.udp_listen(rs) {
                udp.push("--listen".into());
                udp.push(l);
            }
            let udp_id = self.spawn(&rs.ns, &format!("{} udp", rs.name), &exe, &udp)?;
            wait_listening(&http_id, "tcp", HTTP_PORT)?;
            wait_listening(&udp_id, "udp", topology::UDP_PORT)?;
        }
        self.say(match plan.mode {
            LabMode::Nat => "real servers: gateway = director 198.18.2.1, test servers running".to_owned(),
            LabMode::Dr => "real servers: `rvs realserver dr` (VIP on lo, arp_ignore/arp_announce), test servers running".to_owned(),
            LabMode::Tun => "real servers: `rvs realserver tun` (VIP on lo, decapsulation), test servers running".to_owned(),
        });
        Ok(())
    }
}

/// Waits until a backgrounded `rvs realserver tun` has recorded its decapsulation.
fn wait_tun_ready(id: &ProcessId, state_file: &Path, log: Option<PathBuf>) -> Result<(), LabError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = crate::realserver::RealServerState::load(state_file)
            .ok()
            .flatten()
            .is_some_and(|s| s.decap.is_some());
        // The XDP attach happens after the state is written: give it a moment to fail visibly.
        if ready {
            thread::sleep(Duration::from_millis(200));
            if id.is_alive() {
                return Ok(());
            }
        }
        if !id.is_alive() {
            let text = log
                .as_ref()
                .and_then(|l| fs::read_to_string(l).ok())
                .unwrap_or_default();
            return Err(LabError::Verify(format!(
                "`rvs realserver tun` exited: {}",
                text.trim()
            )));
        }
        if Instant::now() > deadline {
            return Err(LabError::Verify(
                "`rvs realserver tun` did not get ready within 10s".into(),
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Whether process `pid`'s network namespace has a socket listening (TCP) or bound (UDP) on
/// `port`, read from `/proc/<pid>/net/{tcp,tcp6,udp,udp6}`.
fn is_listening(pid: u32, proto: &str, port: u16) -> bool {
    let state = if proto == "tcp" { "0A" } else { "07" };
    [proto.to_owned(), format!("{proto}6")].iter().any(|file| {
        fs::read_to_string(format!("/proc/{pid}/net/{file}")).is_ok_and(|text| {
            text.lines().skip(1).any(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                cols.len() > 3
                    && cols[3] == state
                    && cols[1]
                        .rsplit_once(':')
                        .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                        == Some(port)
            })
        })
    })
}

fn wait_listening(id: &ProcessId, proto: &str, port: u16) -> Result<(), LabError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !id.is_alive() {
            return Err(LabError::Verify(format!(
                "test server pid {} exited (see its log)",
                id.pid
            )));
        }
        if is_listening(id.pid, proto, port) {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(20));
    }
    Err(LabError::Verify(format!(
        "pid {} not listening on {proto} port {port} after 5s",
        id.pid
    )))
}

/// Brings a lab up. On failure everything created so far is removed again.
pub fn up(spec: &LabSpec) -> Result<LabState, LabError> {
    preflight(spec)?;
    let plan = Plan::new(&spec.name, spec.mode);
    let state = LabState {
        name: spec.name.clone(),
        mode: spec.mode,
        scheduler: spec.scheduler.clone(),
        weights: spec.weights.clone(),
        ipv6: spec.ipv6,
        namespaces: Vec::new(),
        processes: Vec::new(),
        director_socket: None,
        complete: false,
    };
    let mut run = Runner {
        spec,
        plan,
        state,
        notes: Vec::new(),
    };
    if spec.verbose {
        println!("rvs lab up: {} mode, lab `{}`", spec.mode, spec.name);
    }
    match run.build() {
        Ok(()) => {
            for n in &run.notes {
                println!("  note: {n}");
            }
            if spec.verbose {
                println!(
                    "lab `{}` is up ({} mode); `rvs lab status`, `rvs lab down`",
                    spec.name, spec.mode
                );
            }
            Ok(run.state)
        }
        Err(e) => {
            eprintln!("rvs lab up failed: {e}\n  removing what was created…");
            if let Err(e2) = down(&spec.name) {
                eprintln!("  cleanup failed too: {e2}");
            }
            Err(e)
        }
    }
}

/// What [`down`] did.
#[derive(Debug, Default)]
pub struct DownReport {
    /// Processes stopped.
    pub stopped: Vec<String>,
    /// Namespaces deleted.
    pub namespaces: Vec<String>,
    /// Warnings (processes in lab namespaces the lab did not start, failures).
    pub warnings: Vec<String>,
}

/// Tears a lab down: stops the recorded processes, deletes the lab's namespaces and runtime
/// files. Idempotent; safe after a failed or interrupted `up`.
pub fn down(name: &str) -> Result<DownReport, LabError> {
    check_name(name)?;
    if !is_root() {
        return Err(LabError::NotRoot);
    }
    let mut report = DownReport::default();
    let state = match LabState::load(name) {
        Ok(s) => s,
        Err(e) => {
            report
                .warnings
                .push(format!("{e}; removing the lab's namespaces by name"));
            None
        }
    };
    if let Some(state) = &state {
        for p in state.processes.iter().rev() {
            if p.id.is_alive() {
                if p.id.terminate(Duration::from_secs(3)) {
                    report
                        .stopped
                        .push(format!("{} (pid {})", p.role, p.id.pid));
                } else {
                    report
                        .warnings
                        .push(format!("{} (pid {}) did not exit", p.role, p.id.pid));
                }
            }
        }
    }
    reap_children();
    let existing = cmd::netns_list()?;
    let mut names = Plan::all_namespaces(name);
    if let Some(state) = &state {
        for ns in &state.namespaces {
            if !names.contains(ns) {
                names.push(ns.clone());
            }
        }
    }
    for ns in names.iter().filter(|n| existing.contains(n)) {
        if let Ok(pids) = cmd::run("ip", &["netns", "pids", ns]) {
            let pids: Vec<&str> = pids.split_whitespace().collect();
            if !pids.is_empty() {
                report.warnings.push(format!(
                    "processes the lab did not start still run in {ns}: {} (left alone)",
                    pids.join(" ")
                ));
            }
        }
        match cmd::run("ip", &["netns", "del", ns]) {
            Ok(_) => report.namespaces.push(ns.clone()),
            Err(e) => report.warnings.push(e.to_string()),
        }
    }
    let _ = fs::remove_file(state::socket_path(name));
    let dir = state::lab_dir(name);
    if dir.exists() {
        fs::remove_dir_all(&dir)
            .map_err(|e| LabError::io(format!("remove {}", dir.display()), e))?;
    }
    Ok(report)
}

fn reap_children() {
    if let Ok(mut children) = CHILDREN.lock() {
        children.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
    }
}

/// Prints what lab `name` is running; with rvsd up, its services and counters.
pub fn status(name: &str) -> Result<bool, LabError> {
    check_name(name)?;
    let Some(state) = LabState::load(name)? else {
        let existing = cmd::netns_list().unwrap_or_default();
        let left: Vec<_> = Plan::all_namespaces(name)
            .into_iter()
            .filter(|n| existing.contains(n))
            .collect();
        if left.is_empty() {
            println!("lab `{name}` is down");
        } else {
            println!(
                "lab `{name}`: no state file, but namespaces exist: {} (run `rvs lab down`)",
                left.join(" ")
            );
        }
        return Ok(false);
    };
    let existing = cmd::netns_list().unwrap_or_default();
    println!(
        "lab `{}`: {} mode, scheduler {}, weights {}, IPv6 services {}{}",
        state.name,
        state.mode,
        state.scheduler,
        state
            .weights
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(":"),
        if state.ipv6 { "on" } else { "off" },
        if state.complete {
            ""
        } else {
            " (INCOMPLETE: up failed or was interrupted)"
        }
    );
    for ns in &state.namespaces {
        println!(
            "  netns {ns:<24} {}",
            if existing.contains(ns) {
                "present"
            } else {
                "MISSING"
            }
        );
    }
    for p in &state.processes {
        println!(
            "  pid {:<8} {:<22} {:<20} {}",
            p.id.pid,
            p.role,
            p.netns,
            if p.id.is_alive() { "running" } else { "EXITED" }
        );
    }
    let plan = Plan::new(&state.name, state.mode);
    println!(
        "  client {} / {} → VIP {VIP4} / {VIP6}",
        Plan::client4(),
        Plan::client6()
    );
    for rs in &plan.real_servers {
        println!("  {} RIP {} / {}", rs.name, rs.rip4, rs.rip6);
    }
    if let Some(socket) = &state.director_socket {
        match director::request(socket, &rvs_api::Request::ListServices) {
            Ok(rvs_api::Response::Services { services }) => {
                for s in services {
                    println!(
                        "  {} {} conns={} inpkts={} outpkts={}",
                        s.spec.key,
                        s.spec.scheduler,
                        s.stats.conns,
                        s.stats.inpkts,
                        s.stats.outpkts
                    );
                    for d in s.dests {
                        println!(
                            "    -> {} {} w={} active={} inactive={} conns={}",
                            IpAddrPort(d.spec.addr, d.spec.port),
                            d.spec.fwd_method.name(),
                            d.spec.weight,
                            d.activeconns,
                            d.inactconns,
                            d.stats.conns
                        );
                    }
                }
            }
            Ok(other) => println!("  rvsd: unexpected answer {other:?}"),
            Err(e) => println!("  rvsd: {e}"),
        }
        match director::request(socket, &rvs_api::Request::GetCounters) {
            Ok(rvs_api::Response::Counters { counters }) => {
                println!("  data-plane counters (non-zero; `rvs stats` lists all):");
                for (name, value) in counters.iter().filter(|(_, v)| *v != 0) {
                    println!("    {name} {value}");
                }
            }
            Ok(other) => println!("  rvsd counters: unexpected answer {other:?}"),
            Err(e) => println!("  rvsd counters: {e}"),
        }
    } else {
        println!("  director: rvsd not running");
    }
    Ok(true)
}

/// `addr:port` with brackets for IPv6.
struct IpAddrPort(IpAddr, u16);

impl std::fmt::Display for IpAddrPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}
