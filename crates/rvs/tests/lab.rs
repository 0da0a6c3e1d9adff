//! `rvs lab`, `rvs realserver` and `rvs testsrv` end to end, through the built `rvs` binary.
//!
//! Every test needs root: it prints `SKIP …` and passes otherwise. Each test builds its own
//! network namespaces (`rvs-lt<pid>…`), uses only 198.18.0.0/15 and 2001:db8::/32, bounds every
//! command in time, and removes its namespaces and processes in a `Drop` guard, also on failure.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rvs::lab::process::ProcessId;
use rvs::lab::state::LabState;

const RVS: &str = env!("CARGO_BIN_EXE_rvs");

fn root_or_skip(test: &str) -> bool {
    if rvs::lab::is_root() {
        return true;
    }
    eprintln!("SKIP {test}: needs root (network namespaces, veth, XDP)");
    false
}

/// A name unique to this test process and `tag`.
fn unique(tag: &str) -> String {
    format!("lt{}{tag}", std::process::id() % 100_000)
}

/// Runs a command, killing it after `secs`.
fn run(program: &str, args: &[&str], secs: u64) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "`{program} {}` timed out after {secs}s\nstdout: {}\nstderr: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs and requires success; returns stdout.
fn ok(program: &str, args: &[&str], secs: u64) -> String {
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

/// `ip netns exec ns program args…`, required to succeed.
fn exec(ns: &str, program: &str, args: &[&str]) -> String {
    let mut full = vec!["netns", "exec", ns, program];
    full.extend_from_slice(args);
    ok("ip", &full, 30)
}

fn netns_list() -> Vec<String> {
    ok("ip", &["netns", "list"], 10)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Network namespaces and background processes of one test, removed on drop.
struct Sandbox {
    namespaces: Vec<String>,
    children: Vec<Child>,
}

impl Sandbox {
    fn new(names: &[&str]) -> Self {
        let mut s = Self {
            namespaces: Vec::new(),
            children: Vec::new(),
        };
        for n in names {
            s.namespaces.push((*n).to_owned());
            ok("ip", &["netns", "add", n], 10);
            ok("ip", &["-n", n, "link", "set", "lo", "up"], 10);
        }
        s
    }

    /// A veth pair `a_dev`@`a_ns` — `b_dev`@`b_ns`, up, checksum offload off.
    fn veth(&self, a_ns: &str, a_dev: &str, b_ns: &str, b_dev: &str) {
        ok(
            "ip",
            &[
                "-n", a_ns, "link", "add", "name", a_dev, "type", "veth", "peer", "name", b_dev,
                "netns", b_ns,
            ],
            10,
        );
        for (ns, dev) in [(a_ns, a_dev), (b_ns, b_dev)] {
            exec(ns, "ethtool", &["-K", dev, "tx", "off"]);
            ok("ip", &["-n", ns, "link", "set", dev, "up"], 10);
        }
    }

    fn addr(&self, ns: &str, dev: &str, cidr: &str) {
        let mut args = vec!["-n", ns, "addr", "add", cidr, "dev", dev];
        if cidr.contains(':') {
            args.push("nodad");
        }
        ok("ip", &args, 10);
    }

    /// Starts `rvs args…` in `ns` in the background.
    fn spawn(&mut self, ns: &str, args: &[&str]) -> u32 {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, RVS])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let pid = child.id();
        self.children.push(child);
        pid
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.namespaces {
            let _ = Command::new("ip")
                .args(["netns", "del", n])
                .stderr(Stdio::null())
                .status();
            // State files the tests name after their namespaces (normally removed by --undo).
            let _ = fs::remove_file(std::env::temp_dir().join(format!("{n}.json")));
        }
    }
}

/// Runs `rvs lab down --name` on drop.
struct LabGuard(String);

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = Command::new(RVS)
            .args(["lab", "down", "--name", &self.0])
            .stdout(Stdio::null())
            .status();
    }
}

fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

mod topology {
    use super::*;

    /// Up, then down: nothing of the lab may remain (namespaces, processes, runtime files).
    fn up_down(mode: &str) {
        let name = unique(mode);
        let _guard = LabGuard(name.clone());
        let out = ok(
            RVS,
            &[
                "lab",
                "up",
                "--name",
                &name,
                "--mode",
                mode,
                "--no-director",
            ],
            120,
        );
        assert!(out.contains(&format!("lab `{name}` is up")), "{out}");
        let state = LabState::load(&name).unwrap().expect("state file");
        assert!(state.complete);
        assert_eq!(state.namespaces.len(), 7);
        let ours: Vec<String> = netns_list()
            .into_iter()
            .filter(|n| n.starts_with(&format!("rvs-{name}-")))
            .collect();
        assert_eq!(ours.len(), 7, "{ours:?}");
        assert!(state.processes.len() >= 6, "{:?}", state.processes);
        assert!(state.processes.iter().all(|p| p.id.is_alive()));
        assert!(ok(RVS, &["lab", "status", "--name", &name], 30).contains("running"));

        let out = ok(RVS, &["lab", "down", "--name", &name], 60);
        assert!(out.contains("is down"), "{out}");
        assert_nothing_left(&name, &state);
        // Idempotent.
        ok(RVS, &["lab", "down", "--name", &name], 60);
        assert!(ok(RVS, &["lab", "status", "--name", &name], 30).contains("is down"));
    }

    fn assert_nothing_left(name: &str, state: &LabState) {
        let left: Vec<String> = netns_list()
            .into_iter()
            .filter(|n| n.starts_with(&format!("rvs-{name}-")))
            .collect();
        assert!(left.is_empty(), "namespaces left: {left:?}");
        assert!(
            !Path::new(&format!("/run/rvs/{name}")).exists(),
            "runtime directory left"
        );
        assert!(
            !Path::new(&format!("/run/rvs/{name}.sock")).exists(),
            "socket left"
        );
        for p in &state.processes {
            assert!(!p.id.is_alive(), "{} (pid {}) still runs", p.role, p.id.pid);
        }
    }

    #[test]
    fn dr_up_down_leaves_nothing_behind() {
        if root_or_skip("dr_up_down_leaves_nothing_behind") {
            up_down("dr");
        }
    }

    #[test]
    fn nat_up_down_leaves_nothing_behind() {
        if root_or_skip("nat_up_down_leaves_nothing_behind") {
            up_down("nat");
        }
    }

    /// Also the TUN decapsulation path end to end: `lab up` sends hand-made IPIP and IP6IP6
    /// queries from the router to each real server and requires their direct answers.
    #[test]
    fn tun_up_down_leaves_nothing_behind() {
        if root_or_skip("tun_up_down_leaves_nothing_behind") {
            up_down("tun");
        }
    }

    /// `lab up` killed half-way (after it started processes): `lab down` still removes everything.
    #[test]
    fn down_after_interrupted_up() {
        if !root_or_skip("down_after_interrupted_up") {
            return;
        }
        let name = unique("intr");
        let _guard = LabGuard(name.clone());
        let mut up = Command::new(RVS)
            .args([
                "lab",
                "up",
                "--name",
                &name,
                "--mode",
                "dr",
                "--no-director",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut state = None;
        wait_for("lab up to start processes", 60, || {
            state = LabState::load(&name)
                .ok()
                .flatten()
                .filter(|s| !s.processes.is_empty());
            state.is_some() || up.try_wait().unwrap().is_some()
        });
        up.kill().unwrap();
        up.wait().unwrap();
        let state = LabState::load(&name)
            .unwrap()
            .expect("state file after interruption");
        assert!(!state.complete, "interrupted too late to test anything");
        ok(RVS, &["lab", "down", "--name", &name], 60);
        assert_nothing_left(&name, &state);
    }
}

mod director {
    use super::*;

    /// The whole stack: `rvs lab demo` through rvsd for every mode, IPv4 and IPv6, with wrr (exact
    /// weighted distribution) and the reply-path check (NAT via the director, DR/TUN around it).
    #[test]
    fn demo_through_rvsd_every_mode() {
        if !root_or_skip("demo_through_rvsd_every_mode") {
            return;
        }
        let name = unique("demo");
        let _guard = LabGuard(name.clone());
        let rvsd = env!("CARGO_BIN_EXE_rvsd");
        let out = run(
            RVS,
            &[
                "lab",
                "demo",
                "--name",
                &name,
                "--modes",
                "nat,dr,tun",
                "--schedulers",
                "wrr",
                "--ipv6",
                "--rvsd",
                rvsd,
            ],
            300,
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("6 of 6 checks passed"), "{text}");
        for mode in ["nat", "dr", "tun"] {
            for family in ["IPv4", "IPv6"] {
                assert!(
                    text.contains(&format!("{mode}/wrr {family} weights 3:2:1 → 30/20/10 ✓")),
                    "{text}"
                );
            }
        }
        assert!(
            !Path::new(&format!("/run/rvs/{name}")).exists(),
            "demo left its lab up"
        );
    }
}

mod realserver {
    use super::*;

    /// Every `net.ipv4.conf.*.{arp_ignore,arp_announce,rp_filter}` and every address, in `ns`.
    fn snapshot(ns: &str) -> (BTreeMap<String, String>, String) {
        let mut sysctls = BTreeMap::new();
        let out = exec(
            ns,
            "sysctl",
            &[
                "-a",
                "-r",
                r"^net\.ipv4\.conf\..*\.(arp_ignore|arp_announce|rp_filter)$",
            ],
        );
        for line in out.lines() {
            if let Some((k, v)) = line.split_once(" = ") {
                sysctls.insert(k.to_owned(), v.to_owned());
            }
        }
        let addrs = ok("ip", &["-n", ns, "-o", "addr", "show"], 10)
            .lines()
            .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n");
        (sysctls, addrs)
    }

    fn sysctl(ns: &str, key: &str) -> String {
        exec(ns, "sysctl", &["-n", key]).trim().to_owned()
    }

    fn lo_has(ns: &str, cidr: &str) -> bool {
        ok("ip", &["-n", ns, "addr", "show", "dev", "lo"], 10).contains(cidr)
    }

    /// `rvs realserver dr` is idempotent and `--undo` restores exactly the earlier state, leaving
    /// alone what it did not change and what someone else changed since.
    #[test]
    fn dr_then_undo_restores_sysctls_and_addresses_exactly() {
        if !root_or_skip("dr_then_undo_restores_sysctls_and_addresses_exactly") {
            return;
        }
        let ns = format!("rvs-{}", unique("rsundo"));
        let sb = Sandbox::new(&[&ns]);
        sb.veth(&ns, "va", &ns, "vb");
        // Pre-existing state the command must respect.
        exec(
            &ns,
            "sysctl",
            &[
                "-q",
                "-w",
                "net.ipv4.conf.all.arp_announce=1",
                "net.ipv4.conf.va.arp_ignore=2",
            ],
        );
        sb.addr(&ns, "lo", "198.18.0.101/32");
        let before = snapshot(&ns);
        let state = std::env::temp_dir().join(format!("{ns}.json"));
        let state_s = state.display().to_string();
        let args = [
            "realserver",
            "dr",
            "--vip",
            "198.18.0.100",
            "--vip",
            "198.18.0.101",
            "--vip",
            "2001:db8::100",
            "--state",
            &state_s,
        ];

        let out = exec(&ns, RVS, &args);
        assert!(out.contains("added 198.18.0.100/32 on lo"), "{out}");
        assert!(
            !out.contains("198.18.0.101/32 on lo"),
            "pre-existing VIP must not be re-added: {out}"
        );
        assert!(lo_has(&ns, "198.18.0.100/32") && lo_has(&ns, "2001:db8::100/128"));
        assert_eq!(sysctl(&ns, "net.ipv4.conf.all.arp_ignore"), "1");
        assert_eq!(sysctl(&ns, "net.ipv4.conf.all.arp_announce"), "2");
        assert_eq!(
            sysctl(&ns, "net.ipv4.conf.va.arp_ignore"),
            "2",
            "stricter value left alone"
        );
        assert_eq!(sysctl(&ns, "net.ipv4.conf.vb.arp_ignore"), "1");
        assert_eq!(sysctl(&ns, "net.ipv4.conf.va.arp_announce"), "2");
        assert_eq!(sysctl(&ns, "net.ipv4.conf.vb.arp_announce"), "2");
        let prepared = snapshot(&ns);

        let again = exec(&ns, RVS, &args);
        assert!(again.contains("already prepared"), "{again}");
        assert_eq!(snapshot(&ns), prepared, "second run must change nothing");

        // Someone else changes a value rvs set: undo must leave it.
        exec(
            &ns,
            "sysctl",
            &["-q", "-w", "net.ipv4.conf.vb.arp_ignore=2"],
        );
        let undo = exec(
            &ns,
            RVS,
            &["realserver", "dr", "--undo", "--state", &state_s],
        );
        assert!(undo.contains("left alone"), "{undo}");
        assert_eq!(sysctl(&ns, "net.ipv4.conf.vb.arp_ignore"), "2");
        exec(
            &ns,
            "sysctl",
            &["-q", "-w", "net.ipv4.conf.vb.arp_ignore=0"],
        );
        assert_eq!(
            snapshot(&ns),
            before,
            "undo must restore the exact earlier state"
        );
        assert!(lo_has(&ns, "198.18.0.101/32"), "pre-existing VIP must stay");
        assert!(!state.exists(), "state file removed by undo");
        let none = exec(
            &ns,
            RVS,
            &["realserver", "dr", "--undo", "--state", &state_s],
        );
        assert!(none.contains("nothing to undo"), "{none}");
    }

    /// A router and one DR real server on a LAN. Checks the probe itself first (an unprepared
    /// host answers ARP for an address on `lo`; an address on `eth0` is advertised by ND), then
    /// that the prepared real server stays silent for the VIP in both families.
    #[test]
    fn dr_real_server_is_silent_for_vip_arp_and_nd() {
        if !root_or_skip("dr_real_server_is_silent_for_vip_arp_and_nd") {
            return;
        }
        let (router, rs) = (
            format!("rvs-{}-r", unique("arp")),
            format!("rvs-{}-s", unique("arp")),
        );
        let sb = Sandbox::new(&[&router, &rs]);
        sb.veth(&router, "to-lan", &rs, "eth0");
        sb.addr(&router, "to-lan", "198.18.0.1/24");
        sb.addr(&router, "to-lan", "2001:db8::1/64");
        sb.addr(&rs, "eth0", "198.18.0.11/24");
        sb.addr(&rs, "eth0", "2001:db8::11/64");
        let rs_mac = {
            let out = ok("ip", &["-n", &rs, "-j", "link", "show", "dev", "eth0"], 10);
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            v[0]["address"].as_str().unwrap().to_owned()
        };
        let probe = |target: &str| -> rvs::lab::tool::NeighProbe {
            let out = exec(
                &router,
                RVS,
                &[
                    "lab",
                    "tool",
                    "neigh-probe",
                    "--target",
                    target,
                    "--watch-ms",
                    "1000",
                ],
            );
            let p: rvs::lab::tool::NeighProbe = serde_json::from_str(&out).unwrap();
            assert!(p.requests > 0, "the probe for {target} sent nothing");
            p
        };

        // Control: the VIP on lo of an unprepared host is answered on eth0 (arp_ignore=0).
        sb.addr(&rs, "lo", "198.18.0.100/32");
        assert_eq!(
            probe("198.18.0.100").answers.keys().collect::<Vec<_>>(),
            [&rs_mac],
            "ARP probe must see the answer"
        );
        // Control for ND: an address on eth0 is advertised…
        sb.addr(&rs, "eth0", "2001:db8::100/128");
        assert!(
            probe("2001:db8::100").answers.contains_key(&rs_mac),
            "ND probe must see the advertisement"
        );
        ok(
            "ip",
            &["-n", &rs, "addr", "del", "2001:db8::100/128", "dev", "eth0"],
            10,
        );
        // …but an IPv6 VIP on lo never is, even before any preparation (Linux answers NS only
        // for addresses of the receiving interface): nothing to change for IPv6.
        sb.addr(&rs, "lo", "2001:db8::100/128");
        assert!(
            probe("2001:db8::100").answers.is_empty(),
            "Linux advertised a VIP held on lo"
        );

        let state = std::env::temp_dir()
            .join(format!("{rs}.json"))
            .display()
            .to_string();
        exec(
            &rs,
            RVS,
            &[
                "realserver",
                "dr",
                "--vip",
                "198.18.0.100",
                "--vip",
                "2001:db8::100",
                "--state",
                &state,
            ],
        );
        for vip in ["198.18.0.100", "2001:db8::100"] {
            let p = probe(vip);
            assert!(
                p.answers.is_empty(),
                "prepared real server answered for {vip}: {:?}",
                p.answers
            );
        }
        // The real server still answers for its own address (the recipe hides only the VIP).
        assert!(probe("198.18.0.11").answers.contains_key(&rs_mac));
        exec(&rs, RVS, &["realserver", "dr", "--undo", "--state", &state]);
    }

    /// A hand-made IPIP / IP6IP6 packet from the router reaches the VIP on a real server only
    /// while `rvs realserver tun` holds the XDP decapsulation; `--undo` stops it.
    #[test]
    fn tun_decap_end_to_end_with_hand_made_packets() {
        if !root_or_skip("tun_decap_end_to_end_with_hand_made_packets") {
            return;
        }
        let (router, rs) = (
            format!("rvs-{}-r", unique("tun")),
            format!("rvs-{}-s", unique("tun")),
        );
        let mut sb = Sandbox::new(&[&router, &rs]);
        sb.veth(&router, "to-tun", &rs, "eth0");
        sb.addr(&router, "to-tun", "198.18.3.1/24");
        sb.addr(&router, "to-tun", "2001:db8:3::1/64");
        sb.addr(&rs, "eth0", "198.18.3.11/24");
        sb.addr(&rs, "eth0", "2001:db8:3::11/64");
        let state = std::env::temp_dir().join(format!("{rs}.json"));
        let state_s = state.display().to_string();
        let probe = |rip: &str, vip: &str, src: &str| {
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &router,
                    RVS,
                    "lab",
                    "tool",
                    "tun-probe",
                    "--rip",
                    rip,
                    "--vip",
                    vip,
                    "--src",
                    src,
                ],
                20,
            )
        };
        let v4 = || probe("198.18.3.11", "198.18.0.100", "198.18.3.1");
        let v6 = || probe("2001:db8:3::11", "2001:db8::100", "2001:db8:3::1");

        let holder = sb.spawn(
            &rs,
            &[
                "realserver",
                "tun",
                "--vip",
                "198.18.0.100",
                "--vip",
                "2001:db8::100",
                "--interface",
                "eth0",
                "--state",
                &state_s,
            ],
        );
        wait_for("the decapsulation to be recorded", 20, || {
            rvs::realserver::RealServerState::load(&state)
                .ok()
                .flatten()
                .is_some_and(|s| s.decap.is_some())
        });
        wait_for("the XDP program", 20, || {
            ok("ip", &["-n", &rs, "-d", "link", "show", "dev", "eth0"], 10)
                .contains("rvs_tun_decap")
        });
        sb.spawn(
            &rs,
            &[
                "testsrv",
                "udp",
                "--listen",
                "198.18.0.100:53",
                "--listen",
                "[2001:db8::100]:53",
                "--name",
                "rsT",
            ],
        );
        thread::sleep(Duration::from_millis(300));
        for out in [v4(), v6()] {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "rsT tun-probe");
        }

        let undo = exec(
            &rs,
            RVS,
            &["realserver", "tun", "--undo", "--state", &state_s],
        );
        assert!(undo.contains(&format!("stopped pid {holder}")), "{undo}");
        assert!(!ProcessId::of(holder).is_some_and(|p| p.is_alive()));
        assert!(!ok("ip", &["-n", &rs, "-d", "link", "show", "dev", "eth0"], 10).contains("xdp"));
        assert!(!ok("ip", &["-n", &rs, "addr", "show", "dev", "lo"], 10).contains("198.18.0.100"));
        // Without decapsulation (and without the VIP) nothing answers any more.
        assert!(!v4().status.success());
        assert!(!v6().status.success());
    }
}

mod testsrv {
    use super::*;

    /// HTTP and UDP test servers answer with their name over IPv4 and IPv6 across a veth.
    #[test]
    fn http_and_udp_answer_with_their_name_over_ipv4_and_ipv6() {
        if !root_or_skip("http_and_udp_answer_with_their_name_over_ipv4_and_ipv6") {
            return;
        }
        let (client, server) = (
            format!("rvs-{}-c", unique("srv")),
            format!("rvs-{}-s", unique("srv")),
        );
        let mut sb = Sandbox::new(&[&client, &server]);
        sb.veth(&client, "eth0", &server, "eth0");
        sb.addr(&client, "eth0", "198.18.0.10/24");
        sb.addr(&client, "eth0", "2001:db8::10/64");
        sb.addr(&server, "eth0", "198.18.0.11/24");
        sb.addr(&server, "eth0", "2001:db8::11/64");
        let http = sb.spawn(
            &server,
            &["testsrv", "http", "--listen", "[::]:80", "--name", "web7"],
        );
        let udp = sb.spawn(
            &server,
            &[
                "testsrv",
                "udp",
                "--listen",
                "198.18.0.11:53",
                "--listen",
                "[2001:db8::11]:53",
                "--name",
                "dns7",
            ],
        );
        wait_for("the servers to listen", 10, || {
            let tcp = fs::read_to_string(format!("/proc/{http}/net/tcp6")).unwrap_or_default();
            let udp4 = fs::read_to_string(format!("/proc/{udp}/net/udp")).unwrap_or_default();
            tcp.contains(":0050 ") && udp4.contains(":0035 ")
        });
        for addr in ["198.18.0.11", "[2001:db8::11]"] {
            let body = exec(
                &client,
                "curl",
                &["-s", "-m", "5", &format!("http://{addr}/anything")],
            );
            assert_eq!(body, "web7\n");
            let head = exec(
                &client,
                "curl",
                &[
                    "-s",
                    "-m",
                    "5",
                    "-D",
                    "-",
                    "-o",
                    "/dev/null",
                    &format!("http://{addr}/"),
                ],
            );
            assert!(head.contains("X-Real-Server: web7"), "{head}");
            let stream = exec(
                &client,
                "curl",
                &[
                    "-s",
                    "-N",
                    "-m",
                    "5",
                    &format!("http://{addr}/stream?seconds=1"),
                ],
            );
            let lines: Vec<&str> = stream.lines().collect();
            assert_eq!(lines.len(), 10, "{stream}");
            assert_eq!(lines[0], "web7 0");
            assert_eq!(lines[9], "web7 9");
        }
        for server_addr in ["198.18.0.11:53", "[2001:db8::11]:53"] {
            let out = exec(
                &client,
                RVS,
                &[
                    "lab",
                    "tool",
                    "udp",
                    "--server",
                    server_addr,
                    "--count",
                    "2",
                ],
            );
            assert_eq!(out, "dns7 probe 0\ndns7 probe 1\n");
        }
    }
}
