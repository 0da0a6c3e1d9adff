//! rvsadm end to end: a real `rvsd` in an `rvs lab up --no-services` lab, configured and
//! inspected through the `rvsadm` binary only (`RVSADM_SOCKET` = the lab's control socket), with
//! HTTP traffic from the lab's client namespace (curl).
//!
//! One scenario per virtual service: DR and NAT (one lab each), IPv4 then IPv6. Each adds a
//! wrr service with weights 3/2/1, checks that 60 requests are answered 30/20/10, that `-L -n`,
//! `--stats` and `-c` show exactly ipvsadm's layout with the counts the traffic implies, that
//! weight 0 (`-e`) and `-d` stop new connections to a real server, that `-S -n | -C | -R`
//! reproduces the same `-S -n` with traffic still flowing, that `-Z` zeroes the counters, then
//! `--set`/`--timeout`, a daemon error and `--start-daemon`.
//!
//! Needs root (prints `SKIP` and passes otherwise). Each lab has a unique name
//! (`ra<pid><mode>`), uses only 198.18.0.0/15 and 2001:db8::/32, and is removed by
//! `rvs lab down` in a `Drop` guard, also when a check fails. Every command is bounded in time.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use rvs::lab::topology::{HTTP_PORT, LabMode, Plan, VIP4, VIP6};

const RVS: &str = env!("CARGO_BIN_EXE_rvs");
const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");
const RVSADM: &str = env!("CARGO_BIN_EXE_rvsadm");

/// One lab at a time: the machine has two cores and the checks count packets.
static LABS: Mutex<()> = Mutex::new(());

const TITLES: &str = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
const STATS_TITLES: &str = "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n";

fn root_or_skip(test: &str) -> bool {
    if rvs::lab::is_root() {
        return true;
    }
    eprintln!("SKIP {test}: needs root (network namespaces, veth, XDP, AF_XDP)");
    false
}

/// Runs `program args` with `env` and `stdin`, killing it after `secs` (then panicking).
fn run(program: &str, args: &[&str], env: &[(&str, &str)], stdin: &str, secs: u64) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let data = stdin.as_bytes().to_vec();
    let in_t = thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
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
        thread::sleep(Duration::from_millis(10));
    };
    let _ = in_t.join();
    Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// What one rvsadm invocation produced.
#[derive(Debug)]
struct Adm {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// IPv4 or IPv6 service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fam {
    V4,
    V6,
}

/// `addr:port`, IPv6 in brackets, as ipvsadm prints and parses it.
fn addr_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// A lab brought up with `--no-services`; `rvs lab down` when dropped.
struct Lab {
    name: String,
    plan: Plan,
    socket: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(RVS)
            .args(["lab", "down", "--name", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Lab {
    fn up(mode: LabMode, tag: &str) -> Self {
        let name = format!("ra{}{tag}", std::process::id() % 100_000);
        // The guard exists before `up` runs, so a failed or timed-out `up` is cleaned too.
        let lab = Self {
            plan: Plan::new(&name, mode),
            socket: rvs::lab::state::socket_path(&name),
            name,
        };
        let out = run(
            RVS,
            &[
                "lab",
                "up",
                "--name",
                &lab.name,
                "--mode",
                &mode.to_string(),
                "--no-services",
                "--rvsd",
                RVSD,
            ],
            &[],
            "",
            180,
        );
        assert!(
            out.status.success(),
            "rvs lab up failed\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }

    fn adm_in(&self, args: &[&str], stdin: &str) -> Adm {
        let socket = self.socket.display().to_string();
        let out = run(RVSADM, args, &[("RVSADM_SOCKET", &socket)], stdin, 30);
        Adm {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// `rvsadm LINE` (split on blanks), which must succeed without a word on stderr.
    fn ok(&self, line: &str) -> String {
        let args: Vec<&str> = line.split_whitespace().collect();
        let o = self.adm_in(&args, "");
        assert_eq!(
            (o.code, o.stderr.as_str()),
            (Some(0), ""),
            "rvsadm {line}: {o:?}"
        );
        o.stdout
    }

    fn vip(fam: Fam) -> IpAddr {
        match fam {
            Fam::V4 => IpAddr::V4(VIP4),
            Fam::V6 => IpAddr::V6(VIP6),
        }
    }

    fn rips(&self, fam: Fam) -> Vec<IpAddr> {
        self.plan
            .real_servers
            .iter()
            .map(|rs| match fam {
                Fam::V4 => IpAddr::V4(rs.rip4),
                Fam::V6 => IpAddr::V6(rs.rip6),
            })
            .collect()
    }

    /// The client's addresses (198.18.1.10–17 / 2001:db8:1::10–17); the kernel picks the source.
    fn clients(fam: Fam) -> Vec<String> {
        Plan::client_sources(fam == Fam::V6)
            .iter()
            .map(IpAddr::to_string)
            .collect()
    }

    /// Makes the router resolve the VIP (a UDP datagram to port 9, which no service takes) and
    /// checks that someone — the director — answers ARP/ND for it now that rvsadm added it.
    fn resolve_vip(&self, fam: Fam) {
        let vip = Self::vip(fam).to_string();
        let out = run(
            "ip",
            &[
                "netns",
                "exec",
                &self.plan.router,
                RVS,
                "lab",
                "tool",
                "neigh-probe",
                "--target",
                &vip,
                "--watch-ms",
                "1200",
            ],
            &[],
            "",
            30,
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let probe: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("neigh-probe output {text:?}: {e}"));
        assert!(
            probe["answers"].as_object().is_some_and(|a| !a.is_empty()),
            "nobody answers ARP/ND for {vip}: {probe}"
        );
    }

    /// `n` HTTP requests from the client, one connection each, one after the other; the
    /// answering real servers in order.
    fn request_seq(&self, fam: Fam, n: usize) -> Vec<String> {
        let url = format!("http://{}/", addr_port(Self::vip(fam), HTTP_PORT));
        let mut args = vec![
            "netns",
            "exec",
            &self.plan.client,
            "curl",
            "-s",
            "-m",
            "10",
            "-H",
            "Connection: close",
        ];
        args.extend(std::iter::repeat_n(url.as_str(), n));
        let out = run("ip", &args, &[], "", 120);
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        let seq: Vec<String> = body.lines().map(str::to_owned).collect();
        assert_eq!(
            seq.len(),
            n,
            "{n} requests to {url} answered: {seq:?} (curl {:?}: {})",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        seq
    }

    /// [`request_seq`](Self::request_seq), counted by real server.
    fn requests(&self, fam: Fam, n: usize) -> BTreeMap<String, usize> {
        let mut got = BTreeMap::new();
        for name in self.request_seq(fam, n) {
            *got.entry(name).or_default() += 1;
        }
        got
    }
}

/// `-L -n` of one service, as ipvsadm prints it: `(address, weight, active, inactive)` rows.
fn listing(header: &str, vip: &str, fwd: &str, rows: &[(String, u32, u32, u32)]) -> String {
    let mut s = format!("{header}\n{TITLES}TCP  {vip} wrr\n");
    for (rip, w, active, inactive) in rows {
        s.push_str(&format!(
            "  -> {rip:<28} {fwd:<7} {w:<6} {active:<10} {inactive:<10}\n"
        ));
    }
    s
}

/// The counters of one `--stats` row, after checking that the row is exactly ipvsadm's
/// `%-33s %8s %8s %8s %8s %8s` (service) or `  -> %-28s …` (real server) layout.
fn stats_row(line: &str, name: &str) -> [u64; 5] {
    let w: Vec<&str> = line.split_whitespace().collect();
    let nums: Vec<u64> = w[w.len() - 5..]
        .iter()
        .map(|n| n.parse().unwrap_or_else(|_| panic!("{line:?}")))
        .collect();
    let rebuilt = format!(
        "{name:<33} {:>8} {:>8} {:>8} {:>8} {:>8}",
        nums[0], nums[1], nums[2], nums[3], nums[4]
    );
    assert_eq!(line, rebuilt);
    [nums[0], nums[1], nums[2], nums[3], nums[4]]
}

/// Checks `-L -n --stats` of one service: layout, connections per real server, packets and
/// bytes consistent (the service is the sum of its real servers), replies through the director
/// only in NAT. Returns the service's counters.
fn check_stats(
    stats: &str,
    header: &str,
    vip: &str,
    conns: &[(String, u64)],
    nat: bool,
) -> [u64; 5] {
    let lines: Vec<&str> = stats.lines().collect();
    assert_eq!(lines.len(), 4 + conns.len(), "{stats}");
    assert_eq!(
        format!("{}\n{}\n{}\n", lines[0], lines[1], lines[2]),
        format!("{header}\n{STATS_TITLES}")
    );
    let svc = stats_row(lines[3], &format!("TCP  {vip}"));
    let mut sum = [0u64; 5];
    for ((rip, want), line) in conns.iter().zip(&lines[4..]) {
        let d = stats_row(line, &format!("  -> {rip}"));
        assert_eq!(d[0], *want, "connections to {rip}: {stats}");
        if *want > 0 {
            // SYN, ACK, request, ACKs, FIN: at least three packets in per connection.
            assert!(d[1] >= 3 * want && d[3] > d[1] * 40, "{rip}: {stats}");
            assert_eq!(
                d[2] > 0,
                nat,
                "{rip}: replies via the director iff NAT: {stats}"
            );
        }
        for i in 0..5 {
            sum[i] += d[i];
        }
    }
    assert_eq!(
        svc, sum,
        "the service counts what its real servers count: {stats}"
    );
    svc
}

/// Waits (at most 5 s) until `-L -n` equals `want`: connections settle into their final TCP
/// states a moment after curl exits.
fn wait_listing(lab: &Lab, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = lab.ok("-L -n");
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "-L -n:\n{got}\nwant:\n{want}");
        thread::sleep(Duration::from_millis(100));
    }
}

fn scenario(lab: &Lab, fam: Fam) {
    let t0 = Instant::now();
    let nat = lab.plan.mode == LabMode::Nat;
    let (flag, fwd) = if nat { ("-m", "Masq") } else { ("-g", "Route") };
    let vip = addr_port(Lab::vip(fam), HTTP_PORT);
    let rips: Vec<String> = lab
        .rips(fam)
        .into_iter()
        .map(|r| addr_port(r, HTTP_PORT))
        .collect();
    let names: Vec<String> = lab
        .plan
        .real_servers
        .iter()
        .map(|r| r.name.clone())
        .collect();
    let count = |got: &BTreeMap<String, usize>, i: usize| got.get(&names[i]).copied().unwrap_or(0);

    // An empty table with the default timeouts (an earlier scenario may have changed them).
    lab.ok("-C");
    lab.ok("--set 900 120 300");
    assert_eq!(
        lab.ok("-L --timeout"),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    let empty = lab.ok("-L -n");
    let header = empty.lines().next().unwrap().to_owned();
    assert!(
        header.starts_with("IP Virtual Server version 1.2.1 (size=") && header.ends_with(')'),
        "{empty}"
    );
    assert_eq!(empty, format!("{header}\n{TITLES}"));

    // The service and its real servers, weights 3/2/1.
    assert_eq!(lab.ok(&format!("-A -t {vip} -s wrr")), "");
    for (rip, w) in rips.iter().zip([3, 2, 1]) {
        assert_eq!(lab.ok(&format!("-a -t {vip} -r {rip} {flag} -w {w}")), "");
    }
    let row = |i: usize, w: u32, inactive: u32| (rips[i].clone(), w, 0, inactive);
    assert_eq!(
        lab.ok("-L -n"),
        listing(
            &header,
            &vip,
            fwd,
            &[row(0, 3, 0), row(1, 2, 0), row(2, 1, 0)]
        )
    );
    lab.resolve_vip(fam);

    // 60 connections, 30/20/10, in IPVS's wrr order: adding rs1 (weight 3) alone set the bar to
    // 1 (gcd 3, so max 3 - 2), and adding the others keeps it, so the first pass takes every
    // server in list order (newest first), then the bar restarts at 3.
    let seq = lab.request_seq(fam, 60);
    let cycle = [
        &names[2], &names[1], &names[0], &names[0], &names[1], &names[0],
    ];
    let want: Vec<&String> = cycle.iter().copied().cycle().take(60).collect();
    assert_eq!(seq.iter().collect::<Vec<_>>(), want);
    // Every connection is closed: none active, all inactive (TIME_WAIT / FIN_WAIT).
    wait_listing(
        lab,
        &listing(
            &header,
            &vip,
            fwd,
            &[row(0, 3, 30), row(1, 2, 20), row(2, 1, 10)],
        ),
    );
    let conns = |a: u64, b: u64, c: u64| {
        vec![
            (rips[0].clone(), a),
            (rips[1].clone(), b),
            (rips[2].clone(), c),
        ]
    };
    let svc = check_stats(
        &lab.ok("-L -n --stats"),
        &header,
        &vip,
        &conns(30, 20, 10),
        nat,
    );
    assert_eq!(svc[0], 60);

    // The connection table: 60 entries to this VIP from the client, in ipvsadm's layout.
    let table = lab.ok("-L -n -c");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "IPVS connection entries");
    assert_eq!(
        lines[1],
        "pro expire state       source             virtual            destination"
    );
    let clients = Lab::clients(fam);
    let mut per_rip: BTreeMap<&str, usize> = BTreeMap::new();
    for line in &lines[2..] {
        let w: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(w.len(), 6, "{line}");
        let rebuilt = format!(
            "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
            w[0], w[1], w[2], w[3], w[4], w[5]
        );
        assert_eq!(*line, rebuilt);
        if w[4] != vip {
            continue; // an earlier scenario's connections
        }
        assert_eq!(w[0], "TCP", "{line}");
        assert!(
            ["TIME_WAIT", "FIN_WAIT", "CLOSE_WAIT", "CLOSE", "LAST_ACK"].contains(&w[2]),
            "{line}"
        );
        let (secs_m, secs_s) = w[1].split_once(':').unwrap();
        let secs: u32 = secs_m.parse::<u32>().unwrap() * 60 + secs_s.parse::<u32>().unwrap();
        assert!(secs <= 120, "{line}");
        let src = match fam {
            Fam::V4 => w[3].rsplit_once(':').unwrap().0.to_owned(),
            Fam::V6 => w[3].rsplit_once("]:").unwrap().0[1..].to_owned(),
        };
        assert!(clients.contains(&src), "{line}");
        *per_rip.entry(w[5]).or_default() += 1;
    }
    let want: BTreeMap<&str, usize> = [
        (rips[0].as_str(), 30),
        (rips[1].as_str(), 20),
        (rips[2].as_str(), 10),
    ]
    .into();
    assert_eq!(per_rip, want, "{table}");

    // Weight 0: rs3 keeps its connections but gets no new ones.
    lab.ok(&format!("-e -t {vip} -r {} {flag} -w 0", rips[2]));
    let got = lab.requests(fam, 12);
    assert_eq!(count(&got, 2), 0, "{got:?}");
    assert!(
        count(&got, 0) > count(&got, 1) && count(&got, 1) > 0,
        "{got:?}"
    );
    let (a, b) = (count(&got, 0) as u32, count(&got, 1) as u32);
    wait_listing(
        lab,
        &listing(
            &header,
            &vip,
            fwd,
            &[row(0, 3, 30 + a), row(1, 2, 20 + b), row(2, 0, 10)],
        ),
    );

    // -d: rs2 is gone from the table and gets nothing.
    lab.ok(&format!("-d -t {vip} -r {}", rips[1]));
    let got = lab.requests(fam, 6);
    assert_eq!(count(&got, 0), 6, "{got:?}");
    wait_listing(
        lab,
        &listing(&header, &vip, fwd, &[row(0, 3, 36 + a), row(2, 0, 10)]),
    );

    // -S -n, -C, -R: the same table again, and it still forwards.
    let saved = lab.ok("-S -n");
    assert_eq!(
        saved,
        format!(
            "-A -t {vip} -s wrr\n-a -t {vip} -r {} {flag} -w 3\n-a -t {vip} -r {} {flag} -w 0\n",
            rips[0], rips[2]
        )
    );
    lab.ok("-C");
    assert_eq!(lab.ok("-S -n"), "");
    assert_eq!(lab.ok("-L -n"), format!("{header}\n{TITLES}"));
    let o = lab.adm_in(&["-R"], &saved);
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (Some(0), "", "")
    );
    assert_eq!(lab.ok("-S -n"), saved);
    let got = lab.requests(fam, 6);
    assert_eq!(count(&got, 0), 6, "{got:?}");

    // -Z: every counter of the service back to 0, then counting again from there.
    thread::sleep(Duration::from_millis(300));
    lab.ok("-Z");
    check_stats(
        &lab.ok("-L -n --stats"),
        &header,
        &vip,
        &[(rips[0].clone(), 0), (rips[2].clone(), 0)],
        nat,
    );
    let zero = format!(
        "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}",
        format!("TCP  {vip}"),
        0,
        0,
        0,
        0,
        0
    );
    assert!(lab.ok("-L -n --stats").contains(&format!("\n{zero}\n")));
    lab.requests(fam, 6);
    let svc = check_stats(
        &lab.ok("-L -n --stats"),
        &header,
        &vip,
        &[(rips[0].clone(), 6), (rips[2].clone(), 0)],
        nat,
    );
    assert_eq!(svc[0], 6);

    // Timeouts.
    lab.ok("--set 60 30 20");
    assert_eq!(
        lab.ok("-L --timeout"),
        "Timeout (tcp tcpfin udp): 60 30 20\n"
    );

    // A daemon error: exit 255 and ipvsadm's message.
    let o = lab.adm_in(&["-A", "-t", &vip, "-s", "wrr"], "");
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (Some(255), "", "Service already exists\n")
    );
    // Connection synchronisation is not there yet: rvsd says so, rvsadm fails.
    let o = lab.adm_in(&["--start-daemon", "master"], "");
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (
            Some(255),
            "",
            "connection synchronisation is not implemented in this rvs version\n"
        )
    );
    assert_eq!(lab.ok("-L --daemon"), "");
    eprintln!(
        "{} {:?}: scenario passed in {:.1}s",
        lab.plan.mode,
        fam,
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn dr_ipv4_and_ipv6_through_rvsadm() {
    if !root_or_skip("dr_ipv4_and_ipv6_through_rvsadm") {
        return;
    }
    let _one = LABS.lock().unwrap_or_else(|e| e.into_inner());
    let t0 = Instant::now();
    let lab = Lab::up(LabMode::Dr, "d");
    eprintln!("dr lab up in {:.1}s", t0.elapsed().as_secs_f64());
    scenario(&lab, Fam::V4);
    scenario(&lab, Fam::V6);
}

#[test]
fn nat_ipv4_and_ipv6_through_rvsadm() {
    if !root_or_skip("nat_ipv4_and_ipv6_through_rvsadm") {
        return;
    }
    let _one = LABS.lock().unwrap_or_else(|e| e.into_inner());
    let t0 = Instant::now();
    let lab = Lab::up(LabMode::Nat, "n");
    eprintln!("nat lab up in {:.1}s", t0.elapsed().as_secs_f64());
    scenario(&lab, Fam::V4);
    scenario(&lab, Fam::V6);
}
