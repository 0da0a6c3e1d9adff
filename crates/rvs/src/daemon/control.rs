//! The control socket.
//!
//! A Unix stream socket, mode 0600 in a root-owned directory, so only root can connect (as only
//! CAP_NET_ADMIN may change IPVS). Each connection carries any number of request/response
//! frames (rvs-api framing). After every request that may change the service table, the XDP
//! steering maps are brought in line with [`Engine::steering`](rvs_engine::Engine::steering).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use rvs_api::{Request, Response, codec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tracing::{debug, warn};

use super::Shared;

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
pub async fn serve(listener: UnixListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, shared.clone()));
            }
            Err(err) => {
                warn!(%err, "accepting a control connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(mut stream: UnixStream, shared: Arc<Shared>) {
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
            Ok(req) => handle(req, &shared),
            Err(err) => Response::Error {
                error: rvs_api::ApiError::Other(format!("malformed request: {err}")),
            },
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
pub fn handle(req: Request, shared: &Shared) -> Response {
    if req == Request::GetCounters {
        // The data plane's counters: the engine's part comes from the engine, the rest from
        // the steering program and the workers (see `Shared::counters`).
        return Response::Counters {
            counters: shared.counters(),
        };
    }
    let mutating = !matches!(
        req,
        Request::GetInfo
            | Request::ListServices
            | Request::GetService { .. }
            | Request::GetTimeouts
            | Request::ListConns
            | Request::ListDaemons
            | Request::GetSysctls
            | Request::GetCounters
    );
    debug!(?req, "control request");
    // Listings and -Z must see what the XDP fast path forwarded up to now, and a real server
    // about to be deleted must be credited before it stops counting.
    super::steer::harvest_fast_stats(shared);
    shared.with(|e| {
        let r = e.control(Instant::now(), req);
        if mutating {
            shared.steering().sync(&e.steering());
        }
        r
    })
}
