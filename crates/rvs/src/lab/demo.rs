//! `rvs lab demo`: for each forwarding method and scheduler, bring the lab up, send requests
//! through the VIP from the client with curl, check the distribution over the real servers, tear
//! the lab down.
//!
//! What each scheduler is checked for (weights rs1:rs2:rs3):
//!
//! | scheduler | weights | traffic | verdict |
//! |---|---|---|---|
//! | rr  | 1:1:1 | N sequential requests | exactly N/3 each (N a multiple of 3) |
//! | wrr | 3:2:1 | N sequential requests | exactly N·w/6 each (N a multiple of 6) |
//! | wlc | 3:2:1 | 12 long-lived `/stream` connections opened one after another | 6/4/2 (±1): active connections proportional to weight |
//! | sh  | 1:1:1 | N requests spread over 8 client source addresses | every source always reaches the same real server |
//! | other | 1:1:1 | N sequential requests | every request answered |
//!
//! Every check also reads rvsd's counters of the TCP service: NAT replies pass the director
//! (outgoing packets counted), DR and TUN replies bypass it (outgoing packets stay 0).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use super::topology::{HTTP_PORT, LabMode, Plan, VIP4, VIP6};
use rvs_api::{Protocol, Request, Response, ServiceKey};

use super::{DirectorPolicy, LabError, LabSpec, cmd, director, down, state, up};

/// Parameters of the demo.
#[derive(Debug, Clone)]
pub struct DemoSpec {
    /// Requests per burst (rounded up to a multiple of 6).
    pub requests: u32,
    /// Forwarding methods to run.
    pub modes: Vec<LabMode>,
    /// Schedulers to run.
    pub schedulers: Vec<String>,
    /// Also test the IPv6 VIP.
    pub ipv6: bool,
    /// Lab name, rvs/rvsd binaries and XDP mode (mode, scheduler, weights are set per run).
    pub base: LabSpec,
    /// Print every step of every `lab up`, not only the verdicts.
    pub verbose: bool,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Forwarding method.
    pub mode: LabMode,
    /// Scheduler.
    pub scheduler: String,
    /// `IPv4` or `IPv6`.
    pub family: &'static str,
    /// The one-line result.
    pub line: String,
    /// Whether it matched.
    pub ok: bool,
}

/// Weights the demo uses for a scheduler.
pub fn demo_weights(scheduler: &str) -> Vec<u32> {
    match scheduler {
        "wrr" | "wlc" => vec![3, 2, 1],
        _ => vec![1, 1, 1],
    }
}

fn url(vip: IpAddr, path: &str) -> String {
    match vip {
        IpAddr::V4(a) => format!("http://{a}:{HTTP_PORT}{path}"),
        IpAddr::V6(a) => format!("http://[{a}]:{HTTP_PORT}{path}"),
    }
}

/// `n` requests on separate connections (one curl, `Connection: close`), optionally from
/// `source`; the real-server names that answered, in order.
fn burst(
    client_ns: &str,
    vip: IpAddr,
    n: u32,
    source: Option<IpAddr>,
) -> Result<Vec<String>, LabError> {
    let u = url(vip, "/");
    let src = source.map(|s| s.to_string());
    let mut args: Vec<&str> = vec!["-s", "-m", "60", "-H", "Connection: close"];
    if let Some(s) = &src {
        args.extend(["--interface", s]);
    }
    for _ in 0..n {
        args.push(&u);
    }
    let out = cmd::netns_output(client_ns, "curl", &args)?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect())
}

/// `k` long-lived `/stream` connections opened 150 ms apart; the real server of each.
fn streams(client_ns: &str, vip: IpAddr, k: u32) -> Result<Vec<String>, LabError> {
    let seconds = (k * 150 / 1000 + 3).to_string();
    let u = url(vip, &format!("/stream?seconds={seconds}"));
    let mut children = Vec::new();
    for _ in 0..k {
        let child = Command::new("ip")
            .args(["netns", "exec", client_ns, "curl", "-sN", "-m", "30", &u])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| LabError::io("spawn curl", e))?;
        children.push(child);
        thread::sleep(Duration::from_millis(150));
    }
    let mut names = Vec::new();
    for child in children {
        let out = child
            .wait_with_output()
            .map_err(|e| LabError::io("wait for curl", e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(name) = text.split_whitespace().next() {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

fn counts(names: &[String], servers: &[String]) -> Vec<u32> {
    servers
        .iter()
        .map(|s| names.iter().filter(|n| *n == s).count() as u32)
        .collect()
}

fn slash(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join("/")
}

/// `total · wᵢ / Σw`, rounded.
fn proportional(total: u32, weights: &[u32]) -> Vec<u32> {
    let sum: u32 = weights.iter().sum();
    weights
        .iter()
        .map(|w| (f64::from(total) * f64::from(*w) / f64::from(sum.max(1))).round() as u32)
        .collect()
}

fn within(got: &[u32], want: &[u32], tol: u32) -> bool {
    got.len() == want.len() && got.iter().zip(want).all(|(g, w)| g.abs_diff(*w) <= tol)
}

/// Runs the traffic for one scheduler against `vip` and judges it.
fn judge(
    scheduler: &str,
    weights: &[u32],
    n: u32,
    plan: &Plan,
    vip: IpAddr,
) -> Result<(String, bool), LabError> {
    let servers: Vec<String> = plan.real_servers.iter().map(|r| r.name.clone()).collect();
    let w = weights
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(":");
    match scheduler {
        "rr" | "wrr" => {
            let names = burst(&plan.client, vip, n, None)?;
            let got = counts(&names, &servers);
            let eff: Vec<u32> = if scheduler == "rr" {
                vec![1; weights.len()]
            } else {
                weights.to_vec()
            };
            let want = proportional(n, &eff);
            let sum: u32 = eff.iter().sum();
            let tol = if n.is_multiple_of(sum.max(1)) { 0 } else { 2 };
            let ok = names.len() == n as usize && within(&got, &want, tol);
            Ok((
                format!(
                    "weights {w} → {} {} {}",
                    slash(&got),
                    if ok { "✓ matches" } else { "✗ expected" },
                    slash(&want)
                ),
                ok,
            ))
        }
        "wlc" | "lc" | "sed" => {
            let k = 2 * weights.iter().sum::<u32>();
            let names = streams(&plan.client, vip, k)?;
            let got = counts(&names, &servers);
            let eff: Vec<u32> = if scheduler == "lc" {
                vec![1; weights.len()]
            } else {
                weights.to_vec()
            };
            let want = proportional(k, &eff);
            let ok = names.len() == k as usize && within(&got, &want, 1);
            Ok((
                format!(
                    "weights {w}, {k} concurrent connections → {} {} {} (±1)",
                    slash(&got),
                    if ok { "✓ matches" } else { "✗ expected" },
                    slash(&want)
                ),
                ok,
            ))
        }
        "sh" => {
            let sources = Plan::client_sources(vip.is_ipv6());
            let per = (n / sources.len() as u32).max(3);
            let mut per_server: BTreeMap<String, u32> = BTreeMap::new();
            let mut sticky = true;
            let mut answered = 0;
            for src in &sources {
                let names = burst(&plan.client, vip, per, Some(*src))?;
                answered += names.len();
                let distinct: BTreeSet<&String> = names.iter().collect();
                sticky &= distinct.len() == 1;
                if let Some(first) = names.first() {
                    *per_server.entry(first.clone()).or_default() += 1;
                }
            }
            let total = per * sources.len() as u32;
            let ok = sticky && answered == total as usize;
            let spread: Vec<u32> = servers
                .iter()
                .map(|s| per_server.get(s).copied().unwrap_or(0))
                .collect();
            Ok((
                format!(
                    "{} sources × {per} requests → sources per server {} {}",
                    sources.len(),
                    slash(&spread),
                    if ok {
                        "✓ every source stuck to one real server"
                    } else {
                        "✗ a source moved or requests were lost"
                    }
                ),
                ok,
            ))
        }
        _ => {
            let names = burst(&plan.client, vip, n, None)?;
            let got = counts(&names, &servers);
            let ok = names.len() == n as usize;
            Ok((
                format!(
                    "weights {w} → {} {}",
                    slash(&got),
                    if ok {
                        "✓ all answered"
                    } else {
                        "✗ requests lost"
                    }
                ),
                ok,
            ))
        }
    }
}

/// Checks, from rvsd's counters of the TCP service, that replies took the mode's path: through
/// the director for NAT (outgoing packets counted), straight to the client for DR and TUN (the
/// director never sees them: outgoing packets stay 0, as in IPVS).
fn reply_path(lab: &str, mode: LabMode, vip: IpAddr) -> (String, bool) {
    let key = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: vip,
        port: HTTP_PORT,
    };
    let socket = state::socket_path(lab);
    let stats = match director::request(&socket, &Request::GetService { key }) {
        Ok(Response::Services { services }) => match services.first() {
            Some(s) => s.stats,
            None => return ("✗ service missing in rvsd".into(), false),
        },
        Ok(other) => return (format!("✗ rvsd answered {other:?}"), false),
        Err(e) => return (format!("✗ rvsd: {e}"), false),
    };
    let (inp, outp) = (stats.inpkts, stats.outpkts);
    match mode {
        LabMode::Nat if inp > 0 && outp > 0 => (
            format!("✓ replies via the director ({inp} in, {outp} out)"),
            true,
        ),
        LabMode::Nat => (
            format!("✗ NAT replies not seen by the director ({inp} in, {outp} out)"),
            false,
        ),
        _ if inp > 0 && outp == 0 => (
            format!("✓ replies bypass the director ({inp} in, 0 out)"),
            true,
        ),
        _ => (
            format!("✗ expected replies to bypass the director ({inp} in, {outp} out)"),
            false,
        ),
    }
}

/// Runs the demo; prints each verdict as it comes and a summary. Fails if any verdict failed.
pub fn demo(spec: &DemoSpec) -> Result<Vec<Verdict>, LabError> {
    if !cmd::have("curl") {
        return Err(LabError::MissingTool("curl".into(), "curl"));
    }
    let n = spec.requests.max(6).div_ceil(6) * 6;
    println!(
        "rvs lab demo: {} × {}, {n} requests per check{}; a fresh lab for each run",
        spec.modes
            .iter()
            .map(LabMode::to_string)
            .collect::<Vec<_>>()
            .join(","),
        spec.schedulers.join(","),
        if spec.ipv6 { ", IPv4 and IPv6" } else { "" }
    );
    let mut verdicts = Vec::new();
    for &mode in &spec.modes {
        for scheduler in &spec.schedulers {
            let weights = demo_weights(scheduler);
            let mut lab = spec.base.clone();
            lab.mode = mode;
            lab.scheduler.clone_from(scheduler);
            lab.weights.clone_from(&weights);
            lab.ipv6 = spec.ipv6;
            lab.director = DirectorPolicy::Require;
            lab.verbose = spec.verbose;
            if spec.verbose {
                println!("\n=== {mode}/{scheduler} ===");
            }
            let families: Vec<(&'static str, IpAddr)> = if spec.ipv6 {
                vec![("IPv4", IpAddr::V4(VIP4)), ("IPv6", IpAddr::V6(VIP6))]
            } else {
                vec![("IPv4", IpAddr::V4(VIP4))]
            };
            match up(&lab) {
                Ok(_) => {
                    let plan = Plan::new(&lab.name, mode);
                    for (family, vip) in families {
                        let (mut line, mut ok) = judge(scheduler, &weights, n, &plan, vip)
                            .unwrap_or_else(|e| (format!("✗ traffic failed: {e}"), false));
                        let (path, path_ok) = reply_path(&lab.name, mode, vip);
                        line.push_str(&format!("; {path}"));
                        ok &= path_ok;
                        let line = format!("{mode}/{scheduler} {family} {line}");
                        println!("{line}");
                        verdicts.push(Verdict {
                            mode,
                            scheduler: scheduler.clone(),
                            family,
                            line,
                            ok,
                        });
                    }
                }
                Err(e) => {
                    for (family, _) in families {
                        let line = format!("{mode}/{scheduler} {family} ✗ lab up failed: {e}");
                        println!("{line}");
                        verdicts.push(Verdict {
                            mode,
                            scheduler: scheduler.clone(),
                            family,
                            line,
                            ok: false,
                        });
                    }
                }
            }
            if let Err(e) = down(&lab.name) {
                eprintln!("rvs lab down failed: {e}");
            }
        }
    }
    println!("\n=== summary ===");
    for v in &verdicts {
        println!("{}", v.line);
    }
    let failed = verdicts.iter().filter(|v| !v.ok).count();
    println!(
        "{} of {} checks passed",
        verdicts.len() - failed,
        verdicts.len()
    );
    if failed > 0 {
        Err(LabError::DemoFailed(failed, verdicts.len()))
    } else {
        Ok(verdicts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations() {
        assert_eq!(proportional(60, &[3, 2, 1]), [30, 20, 10]);
        assert_eq!(proportional(60, &[1, 1, 1]), [20, 20, 20]);
        assert_eq!(proportional(12, &[3, 2, 1]), [6, 4, 2]);
        assert!(within(&[6, 4, 2], &[6, 4, 2], 0));
        assert!(within(&[7, 3, 2], &[6, 4, 2], 1));
        assert!(!within(&[8, 2, 2], &[6, 4, 2], 1));
        assert!(!within(&[6, 4], &[6, 4, 2], 1));
        let names: Vec<String> = ["rs1", "rs2", "rs1", "x"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let servers: Vec<String> = ["rs1", "rs2", "rs3"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(counts(&names, &servers), [2, 1, 0]);
    }
}
