//! The lab's director: `rvsd` in the director namespace, configured over its control socket.
//!
//! [`start_director`] spawns `rvsd --interface eth0 [--interface eth1] --socket
//! /run/rvs/<lab>.sock --xdp-mode <mode>` with `ip netns exec` and waits until the socket answers
//! `GetInfo`; [`configure_services`] adds the virtual services (TCP VIP:80 and UDP VIP:53, IPv4 and
//! with `--ipv6` IPv6) and the three real servers with the mode's forwarding method and weights.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use rvs_api::{DestSpec, Protocol, Request, Response, ServiceKey, ServiceSpec};

use super::topology::{HTTP_PORT, Plan, UDP_PORT, VIP4, VIP6};
use super::{LabError, LabSpec, Runner, state};

/// How long rvsd may take to open its control socket.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the rvsd binary is: `--rvsd`, else next to the running `rvs`, else `PATH`.
pub(crate) fn find_rvsd(spec: &LabSpec) -> Option<PathBuf> {
    if let Some(p) = &spec.rvsd {
        return p.is_file().then(|| p.clone());
    }
    if let Some(dir) = spec.rvs_exe.parent() {
        let p = dir.join("rvsd");
        if p.is_file() {
            return Some(p);
        }
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join("rvsd"))
        .find(|p| p.is_file())
}

/// Starts rvsd in the director namespace and waits until its control socket answers.
///
/// The process is recorded in the lab state before waiting, so `rvs lab down` stops it even if
/// the wait fails.
pub(crate) fn start_director(run: &mut Runner<'_>, rvsd: &Path) -> Result<PathBuf, LabError> {
    let socket = state::socket_path(&run.spec.name);
    // A stale socket file from an earlier run would make the wait below succeed too early or
    // make rvsd's bind fail.
    let _ = std::fs::remove_file(&socket);
    let mut args: Vec<String> = Vec::new();
    for dev in &run.plan.director_interfaces {
        args.push("--interface".into());
        args.push(dev.clone());
    }
    args.push("--socket".into());
    args.push(socket.display().to_string());
    args.push("--xdp-mode".into());
    args.push(run.spec.xdp_mode.clone());
    if run.spec.fast_path {
        // veth delivers XDP_TX / redirected frames only to a peer that runs XDP itself.
        let peers: Vec<(String, String)> = run
            .plan
            .veths
            .iter()
            .filter(|v| v.a_ns == run.plan.director)
            .map(|v| (v.b_ns.clone(), v.b_dev.clone()))
            .collect();
        let mut by_ns: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (ns, dev) in peers {
            by_ns.entry(ns).or_default().push(dev);
        }
        let rvs = run.spec.rvs_exe.display().to_string();
        for (ns, devs) in by_ns {
            let mut a = vec!["lab".to_owned(), "tool".to_owned(), "xdp-pass".to_owned()];
            a.extend(devs);
            run.spawn(&ns, "xdp-pass", &rvs, &a)?;
        }
        // Give the holder a moment to attach before rvsd starts forwarding.
        thread::sleep(Duration::from_millis(300));
    } else {
        args.push("--no-fast-path".into());
    }
    let director_ns = run.plan.director.clone();
    let rvsd = rvsd.display().to_string();
    let proc = run.spawn(&director_ns, "rvsd", &rvsd, &args)?;
    run.state.director_socket = Some(socket.clone());
    run.state.save()?;

    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if let Ok(Response::Info { .. }) = request(&socket, &Request::GetInfo) {
            return Ok(socket);
        }
        if !proc.is_alive() {
            return Err(LabError::Director(format!(
                "rvsd exited during startup; see {}",
                run.state
                    .processes
                    .last()
                    .map_or_else(String::new, |p| p.log.display().to_string())
            )));
        }
        if Instant::now() > deadline {
            return Err(LabError::Director(format!(
                "rvsd did not answer on {} within {}s",
                socket.display(),
                STARTUP_TIMEOUT.as_secs()
            )));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// One request on the control socket.
pub(crate) fn request(socket: &Path, req: &Request) -> Result<Response, LabError> {
    let mut stream = UnixStream::connect(socket)
        .map_err(|e| LabError::io(format!("connect {}", socket.display()), e))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| LabError::io("control socket timeout", e))?;
    rvs_api::write_frame(&mut stream, req)?;
    Ok(rvs_api::read_frame(&mut stream)?)
}

fn expect_ok(socket: &Path, req: &Request) -> Result<(), LabError> {
    match request(socket, req)? {
        Response::Ok => Ok(()),
        Response::Error { error } => Err(LabError::Director(format!("{req:?}: {error}"))),
        other => Err(LabError::Director(format!(
            "{req:?}: unexpected answer {other:?}"
        ))),
    }
}

/// The virtual services of the lab: `(key, [(RIP, port)…])` for TCP VIP:80 and UDP VIP:53, IPv4
/// and, with `ipv6`, IPv6.
pub(crate) fn services(plan: &Plan, ipv6: bool) -> Vec<(ServiceKey, Vec<SocketAddr>)> {
    let mut out = Vec::new();
    let mut families = vec![IpAddr::V4(VIP4)];
    if ipv6 {
        families.push(IpAddr::V6(VIP6));
    }
    for vip in families {
        for (protocol, port) in [(Protocol::Tcp, HTTP_PORT), (Protocol::Udp, UDP_PORT)] {
            let key = ServiceKey::Addr {
                protocol,
                addr: vip,
                port,
            };
            let rips = plan
                .real_servers
                .iter()
                .map(|rs| {
                    let rip = if vip.is_ipv4() {
                        IpAddr::V4(rs.rip4)
                    } else {
                        IpAddr::V6(rs.rip6)
                    };
                    SocketAddr::new(rip, port)
                })
                .collect();
            out.push((key, rips));
        }
    }
    out
}

/// Adds the lab's virtual services and real servers to rvsd.
pub(crate) fn configure_services(
    spec: &LabSpec,
    plan: &Plan,
    socket: &Path,
) -> Result<(), LabError> {
    for (key, rips) in services(plan, spec.ipv6) {
        let mut svc = ServiceSpec::new(key);
        svc.scheduler.clone_from(&spec.scheduler);
        expect_ok(socket, &Request::AddService { spec: svc })?;
        for (rip, weight) in rips.iter().zip(&spec.weights) {
            let mut dest = DestSpec::new(rip.ip(), rip.port());
            dest.fwd_method = plan.mode.forward_method();
            dest.weight = *weight;
            expect_ok(socket, &Request::AddDest { service: key, dest })?;
        }
    }
    Ok(())
}
