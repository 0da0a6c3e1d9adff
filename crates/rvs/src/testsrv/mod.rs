//! Tiny test servers that answer with their own name, so a client can see which real server a
//! virtual service scheduled it to.
//!
//! * [`HttpServer`] (`rvs testsrv http`): HTTP/1.1 with keep-alive; every request is answered with
//!   the body `NAME\n`, except `GET /stream?seconds=N`, which streams one line `NAME <i>\n` every
//!   100 ms for `N` seconds (chunked), for long-lived connection tests (wlc, lc, persistence).
//! * [`UdpServer`] (`rvs testsrv udp`): answers each datagram with `NAME <payload>`.
//!
//! Both are plain `std` threads: one acceptor (or receiver) per listening address and one thread
//! per HTTP connection. `[::]:PORT` listens on IPv4 and IPv6 at once (Linux default
//! `bindv6only=0`).
//!
//! A UDP reply leaves from the address the socket is bound to, or, for a wildcard socket, from the
//! address routing picks; it does not use `IP_PKTINFO`. On a DR or TUN real server, where
//! requests arrive for the VIP, listen on the VIP itself (`--listen VIP:53`) so replies carry the
//! VIP as source.

mod http;
mod udp;

pub use http::HttpServer;
pub use udp::UdpServer;

use std::io;
use std::net::SocketAddr;

/// Why a test server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestSrvError {
    /// No `--listen` address was given.
    #[error("no listen address given")]
    NoListenAddress,
    /// Binding a listening socket failed (address in use, address not local, …).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Starting a server thread failed.
    #[error("cannot start a server thread: {0}")]
    Thread(#[source] io::Error),
}
