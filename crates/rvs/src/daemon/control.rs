//! The control socket and the steering maps that follow the service table.
//!
//! The socket is a Unix stream socket, mode 0600 in a root-owned directory, so only root can
//! connect (as only CAP_NET_ADMIN may change IPVS). Each connection carries any number of
//! request/response frames (rvs-api framing). After every request that may change the service
//! table, the XDP steering maps of every interface are brought in line with
//! [`Engine::steering`](rvs_engine::Engine::steering).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use rvs_api::{Request, Response, codec};
use rvs_io::xdp::{Steering, VipKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tracing::{debug, warn};

use super::{SharedEngine, lock};

/// The steering programs of all served interfaces and what their maps currently hold.
#[derive(Debug)]
pub struct SteeringSet {
    progs: Vec<Steering>,
    vips: BTreeSet<(u8, IpAddr, u16)>,
    vip_addrs: BTreeSet<IpAddr>,
    nat_sources: BTreeSet<(u8, IpAddr, u16)>,
}

impl SteeringSet {
    /// Wraps freshly attached programs (empty maps).
    pub fn new(progs: Vec<Steering>) -> Self {
        Self { progs, vips: BTreeSet::new(), vip_addrs: BTreeSet::new(), nat_sources: BTreeSet::new() }
    }

    /// The programs, for detaching at shutdown.
    pub fn into_inner(self) -> Vec<Steering> {
        self.progs
    }

    /// Applies the difference between what the maps hold and what the engine needs.
    pub fn sync(&mut self, want: &rvs_engine::Steering) {
        let want_vips: BTreeSet<_> = want.vips.iter().copied().collect();
        let want_addrs: BTreeSet<_> = want.vip_addrs.iter().copied().collect();
        let want_nat: BTreeSet<_> = want.nat_sources.iter().copied().collect();
        let key = |(proto, addr, port): (u8, IpAddr, u16)| VipKey { proto, addr, port };
        for p in &mut self.progs {
            for &k in want_vips.difference(&self.vips) {
                log_err(p.add_vip(key(k)), "add_vip");
            }
            for &k in self.vips.difference(&want_vips) {
                log_err(p.del_vip(key(k)), "del_vip");
            }
            for &a in want_addrs.difference(&self.vip_addrs) {
                log_err(p.add_vip_addr(a), "add_vip_addr");
            }
            for &a in self.vip_addrs.difference(&want_addrs) {
                log_err(p.del_vip_addr(a), "del_vip_addr");
            }
            for &k in want_nat.difference(&self.nat_sources) {
                log_err(p.add_nat_source(key(k)), "add_nat_source");
            }
            for &k in self.nat_sources.difference(&want_nat) {
                log_err(p.del_nat_source(key(k)), "del_nat_source");
            }
        }
        self.vips = want_vips;
        self.vip_addrs = want_addrs;
        self.nat_sources = want_nat;
    }
}

fn log_err(r: Result<(), rvs_io::IoError>, what: &str) {
    if let Err(err) = r {
        warn!(%err, "steering map update {what} failed");
    }
}

/// Creates the socket: parent directory if needed, stale socket removed, mode 0600.
pub fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        // A socket nobody answers on is a leftover of a crashed rvsd; a live one is an error.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("{} is in use: is another rvsd running?", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {} to root", path.display()))?;
    Ok(listener)
}

/// Accepts control connections forever.
pub async fn serve(listener: UnixListener, engine: SharedEngine, steering: Arc<Mutex<SteeringSet>>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, engine.clone(), steering.clone()));
            }
            Err(err) => {
                warn!(%err, "accepting a control connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(mut stream: UnixStream, engine: SharedEngine, steering: Arc<Mutex<SteeringSet>>) {
    loop {
        let mut header = [0u8; 4];
        if stream.read_exact(&mut header).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes(header) as usize;
        if len > codec::MAX_FRAME {
            warn!(len, "oversized control frame; closing the connection");
            return;
        }
        let mut body = vec![0u8; len];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let response = match serde_json::from_slice::<Request>(&body) {
            Ok(req) => handle(req, &engine, &steering),
            Err(err) => Response::Error { error: rvs_api::ApiError::Other(format!("malformed request: {err}")) },
        };
        let frame = match codec::encode(&response) {
            Ok(f) => f,
            Err(err) => {
                warn!(%err, "encoding a control response failed");
                return;
            }
        };
        if stream.write_all(&frame).await.is_err() {
            return;
        }
    }
}

/// Applies one request and keeps the steering maps in line.
pub fn handle(req: Request, engine: &SharedEngine, steering: &Mutex<SteeringSet>) -> Response {
    let mutating = !matches!(
        req,
        Request::GetInfo
            | Request::ListServices
            | Request::GetService { .. }
            | Request::GetTimeouts
            | Request::ListConns
            | Request::ListDaemons
            | Request::GetSysctls
    );
    debug!(?req, "control request");
    let (response, want) = {
        let mut e = lock(engine);
        let r = e.control(Instant::now(), req);
        (r, mutating.then(|| e.steering()))
    };
    if let Some(want) = want {
        steering.lock().unwrap_or_else(|e| e.into_inner()).sync(&want);
    }
    response
}
