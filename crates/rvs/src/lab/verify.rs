//! Checks that the lab topology works, first without the director, then through it.
//!
//! Without rvsd ([`verify_topology`]): every hop answers (client → router → director; real servers
//! from where their traffic comes), every test server answers with its name on its RIP, and the
//! real-server preparation works on its own: in DR mode the router, told by a static neighbour
//! entry to send VIP traffic to one real server's MAC (exactly what the director's MAC rewrite
//! does), gets that server's answer; in TUN mode the router encapsulates a UDP query to the VIP by
//! hand and gets the real server's direct answer. In DR mode nobody may answer ARP/ND for the VIP
//! yet: the real servers must stay silent.
//!
//! With rvsd ([`verify_director`]): only the director answers ARP/ND for the VIP, and the client
//! gets answers from a real server through the VIP.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::thread;
use std::time::Duration;

use serde::Deserialize;

use super::tool::NeighProbe;
use super::topology::{HTTP_PORT, LabMode, UDP_PORT, VIP4, VIP6, v4, v6};
use super::{LabError, Runner, cmd};

/// Runs `rvs lab tool <args>` in `ns`; returns stdout.
pub(crate) fn tool(exe: &str, ns: &str, args: &[&str]) -> Result<String, LabError> {
    let mut full = vec!["lab", "tool"];
    full.extend_from_slice(args);
    cmd::netns_exec(ns, exe, &full)
}

/// Whether `addr` answers TCP (connect or RST) from `ns`, within a few tries.
pub(crate) fn reach(exe: &str, ns: &str, addr: IpAddr) -> Result<bool, LabError> {
    let out = tool(exe, ns, &["reach", &addr.to_string(), "--tries", "3"])?;
    Ok(out.trim() == "reachable")
}

/// `curl http://addr[:port]/path` from `ns`; the body, or `None` on failure.
pub fn curl(ns: &str, addr: IpAddr, path: &str) -> Result<Option<String>, LabError> {
    let url = match addr {
        IpAddr::V4(a) => format!("http://{a}:{HTTP_PORT}{path}"),
        IpAddr::V6(a) => format!("http://[{a}]:{HTTP_PORT}{path}"),
    };
    let out = cmd::netns_output(ns, "curl", &["-s", "-m", "3", &url])?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()))
}

/// One UDP query to `server` from `ns`: the reply, if any.
pub(crate) fn udp(exe: &str, ns: &str, server: SocketAddr) -> Result<Option<String>, LabError> {
    let out = tool(
        exe,
        ns,
        &["udp", "--server", &server.to_string(), "--count", "1"],
    )?;
    Ok(out.lines().next().map(str::to_owned))
}

/// MAC address of `dev` in `ns`.
pub(crate) fn mac_of(ns: &str, dev: &str) -> Result<String, LabError> {
    #[derive(Deserialize)]
    struct Link {
        address: String,
    }
    let out = cmd::ip(ns, &["-j", "link", "show", "dev", dev])?;
    let links: Vec<Link> = serde_json::from_str(&out)
        .map_err(|e| LabError::Tool(format!("ip -j link show {dev}: {e}")))?;
    links
        .into_iter()
        .next()
        .map(|l| l.address)
        .ok_or_else(|| LabError::Tool(format!("{dev} not found in {ns}")))
}

/// ARP (IPv4) or ND (IPv6) probe for `target` from `ns`.
pub(crate) fn neigh_probe(exe: &str, ns: &str, target: IpAddr) -> Result<NeighProbe, LabError> {
    let out = tool(
        exe,
        ns,
        &[
            "neigh-probe",
            "--target",
            &target.to_string(),
            "--watch-ms",
            "1200",
        ],
    )?;
    serde_json::from_str(&out).map_err(|e| LabError::Tool(format!("neigh-probe output: {e}")))
}

fn ok(run: &Runner<'_>, what: impl AsRef<str>) {
    run.say(format!("✓ {}", what.as_ref()));
}

fn expect(cond: bool, what: impl Into<String>) -> Result<(), LabError> {
    if cond {
        Ok(())
    } else {
        Err(LabError::Verify(what.into()))
    }
}

/// `198.18.net.host` and `2001:db8:net::host`.
fn both((net, host): (u8, u8)) -> [IpAddr; 2] {
    [IpAddr::V4(v4(net, host)), IpAddr::V6(v6(net, host))]
}

/// Checks the topology before rvsd runs (see the module documentation).
pub(crate) fn verify_topology(run: &Runner<'_>) -> Result<(), LabError> {
    let exe = run.spec.rvs_exe.display().to_string();
    let p = &run.plan;
    let hops: [(&str, &str, (u8, u8)); 3] = [
        (&p.client, "client → router", (1, 1)),
        (&p.router, "router → director DIP", (0, 2)),
        (&p.client, "client → director DIP (routed)", (0, 2)),
    ];
    for (ns, what, host) in hops {
        for addr in both(host) {
            expect(
                reach(&exe, ns, addr)?,
                format!("{what}: {addr} does not answer"),
            )?;
        }
        ok(run, what);
    }
    // Where real-server traffic comes from: the director on the NAT segment, the router otherwise.
    let probe_ns = if p.mode == LabMode::Nat {
        &p.director
    } else {
        &p.router
    };
    for rs in &p.real_servers {
        for rip in [IpAddr::V4(rs.rip4), IpAddr::V6(rs.rip6)] {
            expect(
                reach(&exe, probe_ns, rip)?,
                format!("{} {rip} unreachable from {probe_ns}", rs.name),
            )?;
            if p.mode != LabMode::Nat {
                expect(
                    reach(&exe, &p.client, rip)?,
                    format!("{} {rip} unreachable from the client", rs.name),
                )?;
            }
            let body = curl(probe_ns, rip, "/")?;
            expect(
                body.as_deref() == Some(&rs.name),
                format!("http://{rip}/ answered {body:?}, want {}", rs.name),
            )?;
            let reply = udp(&exe, probe_ns, SocketAddr::new(rip, UDP_PORT))?;
            expect(
                reply.as_deref() == Some(&format!("{} probe 0", rs.name)),
                format!("udp {rip}:{UDP_PORT} answered {reply:?}"),
            )?;
        }
        ok(
            run,
            format!(
                "{}: reachable, http and udp answer `{}` on {} and {}",
                rs.name, rs.name, rs.rip4, rs.rip6
            ),
        );
    }
    match p.mode {
        LabMode::Nat => {}
        LabMode::Dr => verify_dr_real_servers(run, &exe)?,
        LabMode::Tun => verify_tun_decap(run, &exe)?,
    }
    Ok(())
}

/// DR: the real servers accept VIP traffic sent to their MAC and never answer ARP/ND for the VIP.
fn verify_dr_real_servers(run: &Runner<'_>, exe: &str) -> Result<(), LabError> {
    let p = &run.plan;
    let dev = &p.router_lan_dev;
    for rs in &p.real_servers {
        let mac = mac_of(&rs.ns, &rs.dev)?;
        for vip in [IpAddr::V4(VIP4), IpAddr::V6(VIP6)] {
            let vip_s = vip.to_string();
            cmd::ip(
                &p.router,
                &[
                    "neigh",
                    "replace",
                    &vip_s,
                    "lladdr",
                    &mac,
                    "dev",
                    dev,
                    "nud",
                    "permanent",
                ],
            )?;
            let body = curl(&p.router, vip, "/");
            let reply = udp(exe, &p.router, SocketAddr::new(vip, UDP_PORT));
            cmd::ip(&p.router, &["neigh", "del", &vip_s, "dev", dev])?;
            let (body, reply) = (body?, reply?);
            expect(
                body.as_deref() == Some(&rs.name),
                format!("DR path to {} for {vip}: http answered {body:?}", rs.name),
            )?;
            expect(
                reply.as_deref() == Some(&format!("{} probe 0", rs.name)),
                format!("DR path to {} for {vip}: udp answered {reply:?}", rs.name),
            )?;
        }
    }
    ok(
        run,
        "DR: each real server answers VIP traffic sent to its MAC (http and udp, IPv4 and IPv6)",
    );
    let rs_macs = p
        .real_servers
        .iter()
        .map(|rs| mac_of(&rs.ns, &rs.dev))
        .collect::<Result<BTreeSet<_>, _>>()?;
    for vip in [IpAddr::V4(VIP4), IpAddr::V6(VIP6)] {
        let probe = neigh_probe(exe, &p.router, vip)?;
        expect(
            probe.requests > 0,
            format!("neighbour probe for {vip} sent no request"),
        )?;
        let leaked: Vec<_> = probe
            .answers
            .keys()
            .filter(|m| rs_macs.contains(*m))
            .collect();
        expect(
            leaked.is_empty(),
            format!("real servers answered ARP/ND for {vip}: {leaked:?}"),
        )?;
        expect(
            probe.answers.is_empty(),
            format!("unexpected ARP/ND answers for {vip}: {:?}", probe.answers),
        )?;
    }
    ok(
        run,
        "DR: real servers stay silent for ARP/ND probes of the VIP from the router",
    );
    Ok(())
}

/// TUN: a hand-encapsulated query to the VIP reaches each real server, which answers directly.
fn verify_tun_decap(run: &Runner<'_>, exe: &str) -> Result<(), LabError> {
    let p = &run.plan;
    for rs in &p.real_servers {
        for (rip, vip, src) in [
            (IpAddr::V4(rs.rip4), IpAddr::V4(VIP4), IpAddr::V4(v4(0, 1))),
            (IpAddr::V6(rs.rip6), IpAddr::V6(VIP6), IpAddr::V6(v6(0, 1))),
        ] {
            let out = tool(
                exe,
                &p.router,
                &[
                    "tun-probe",
                    "--rip",
                    &rip.to_string(),
                    "--vip",
                    &vip.to_string(),
                    "--src",
                    &src.to_string(),
                    "--port",
                    &UDP_PORT.to_string(),
                ],
            )?;
            let want = format!("{} tun-probe", rs.name);
            expect(
                out.trim() == want,
                format!(
                    "encapsulated query to {vip} via {rip} answered {:?}, want {want:?}",
                    out.trim()
                ),
            )?;
        }
    }
    ok(
        run,
        "TUN: each real server decapsulates IPIP and IP6IP6 to the VIP and answers directly",
    );
    Ok(())
}

/// Checks the VIP through rvsd (see the module documentation).
pub(crate) fn verify_director(run: &Runner<'_>) -> Result<(), LabError> {
    let exe = run.spec.rvs_exe.display().to_string();
    let p = &run.plan;
    let dir_mac = mac_of(&p.director, "eth0")?;
    let mut vips = vec![IpAddr::V4(VIP4)];
    if run.spec.ipv6 {
        vips.push(IpAddr::V6(VIP6));
    }
    for &vip in &vips {
        let probe = neigh_probe(&exe, &p.router, vip)?;
        expect(
            probe.requests > 0,
            format!("neighbour probe for {vip} sent no request"),
        )?;
        let others: Vec<_> = probe.answers.keys().filter(|m| **m != dir_mac).collect();
        expect(
            others.is_empty(),
            format!("hosts other than the director answered for {vip}: {others:?}"),
        )?;
        expect(
            probe.answers.contains_key(&dir_mac),
            format!("the director ({dir_mac}) did not answer ARP/ND for {vip}"),
        )?;
        ok(
            run,
            format!("only the director ({dir_mac}) answers ARP/ND for {vip}"),
        );
        let names: Vec<&str> = p.real_servers.iter().map(|r| r.name.as_str()).collect();
        let mut body = None;
        for _ in 0..3 {
            body = curl(&p.client, vip, "/")?;
            if body.is_some() {
                break;
            }
            thread::sleep(Duration::from_millis(300));
        }
        expect(
            body.as_deref().is_some_and(|b| names.contains(&b)),
            format!("client → http://{vip}/ answered {body:?}"),
        )?;
        let reply = udp(&exe, &p.client, SocketAddr::new(vip, UDP_PORT))?;
        expect(
            reply
                .as_deref()
                .is_some_and(|r| names.iter().any(|n| r == format!("{n} probe 0"))),
            format!("client → udp {vip}:{UDP_PORT} answered {reply:?}"),
        )?;
        ok(
            run,
            format!(
                "client → VIP {vip}: http answered by {}, udp by {}",
                body.unwrap_or_default(),
                reply.unwrap_or_default()
            ),
        );
    }
    Ok(())
}
