//! The link to `rvsd`: the [`Backend`] trait and its Unix-socket implementation.
//!
//! Each [`Request`] is one frame of [`rvs_api::codec`] on the control socket and is answered by
//! exactly one [`Response`] frame. Tests replace the socket with an in-memory backend.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rvs_api::{CodecError, Request, Response};

/// Environment variable that overrides [`rvs_api::DEFAULT_SOCKET_PATH`].
pub const SOCKET_ENV: &str = "RVSADM_SOCKET";

/// How long rvsadm waits for `rvsd` to answer one request.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request could not be carried to `rvsd` and back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The control socket could not be reached (rvsd not running, wrong path, permissions).
    #[error("cannot connect to rvsd at {}: {}", path.display(), os_message(source))]
    Connect {
        /// The socket path tried.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The connection broke or carried something that is not a response.
    #[error("rvsd control socket {}: {source}", path.display())]
    Transport {
        /// The socket path.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: CodecError,
    },
    /// Any other backend failure (test backends).
    #[error("{0}")]
    Other(String),
}

/// The OS message without Rust's ` (os error N)` suffix, as `strerror` would print it.
fn os_message(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// Something that answers control requests: `rvsd` over its socket, or a test double.
pub trait Backend {
    /// Sends one request and returns its response.
    fn call(&mut self, request: Request) -> Result<Response, BackendError>;
}

/// The socket path: `$RVSADM_SOCKET` if set and not empty, else the default.
pub fn socket_path() -> PathBuf {
    match std::env::var_os(SOCKET_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(rvs_api::DEFAULT_SOCKET_PATH),
    }
}

/// A connection to `rvsd`'s control socket.
#[derive(Debug)]
pub struct UnixBackend {
    stream: UnixStream,
    path: PathBuf,
}

impl UnixBackend {
    /// Connects to the control socket at `path`.
    pub fn connect(path: &Path) -> Result<Self, BackendError> {
        let connect_err = |source| BackendError::Connect {
            path: path.to_owned(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(connect_err)?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .map_err(connect_err)?;
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .map_err(connect_err)?;
        Ok(Self {
            stream,
            path: path.to_owned(),
        })
    }
}

impl Backend for UnixBackend {
    fn call(&mut self, request: Request) -> Result<Response, BackendError> {
        let transport = |source| BackendError::Transport {
            path: self.path.clone(),
            source,
        };
        rvs_api::write_frame(&mut self.stream, &request).map_err(transport)?;
        rvs_api::read_frame(&mut self.stream).map_err(transport)
    }
}
