//! The control-plane vocabulary of rvs and the protocol spoken on `rvsd`'s control socket.
//!
//! * [`model`] holds the typed configuration and state that every control-plane component shares:
//!   [`ServiceKey`], [`ServiceSpec`], [`DestSpec`], counters ([`Stats`], [`Rates`]), connection
//!   entries ([`ConnEntry`]) and timeouts ([`Timeouts`]). The names and the numeric values follow
//!   IPVS (`include/uapi/linux/ip_vs.h`), so an ipvsadm user recognises every field.
//! * [`proto`] defines [`Request`] and [`Response`], one request per ipvsadm operation, and
//!   [`ApiError`], whose messages are ipvsadm's own (`Service already exists`, …).
//! * [`codec`] frames messages on a byte stream: a 4-byte big-endian length, then JSON.
//!
//! The crate is pure: it performs no I/O of its own beyond the generic `Read`/`Write` helpers in
//! [`codec`], which the binaries call on a Unix stream socket.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod model;
pub mod proto;

pub use codec::{CodecError, read_frame, write_frame};
pub use model::*;
pub use proto::{ApiError, Request, Response};

/// Where `rvsd` listens for control connections unless told otherwise (`--socket`).
pub const DEFAULT_SOCKET_PATH: &str = "/run/rvs/rvsd.sock";
