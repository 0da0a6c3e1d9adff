//! The rvs load-balancing engine: IPVS semantics as a pure, deterministic state machine.
//!
//! [`Engine`] owns the virtual services and real servers ([`service`], [`dest`]), the
//! schedulers ([`sched`]), the connection table ([`conn`]) with the IPVS protocol state
//! machines ([`state`]), counters and rate estimators ([`stats`]) and the forwarding rewrites
//! for NAT, DR and TUN. It takes frames and `now`, rewrites frames in place and answers with a
//! [`Verdict`]; configuration arrives as [`rvs_api::Request`]s through [`Engine::control`].
//! It reads no clock, opens no socket and spawns no thread: the daemon (`rvsd`) does that.
//!
//! ```
//! use std::time::Instant;
//! use rvs_api::{DestSpec, ForwardMethod, Protocol, Request, Response, ServiceKey, ServiceSpec};
//! use rvs_engine::{Engine, EngineConfig};
//!
//! let now = Instant::now();
//! let mut engine = Engine::new(now, EngineConfig::default());
//! let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: "198.18.0.100".parse().unwrap(), port: 80 };
//! let mut spec = ServiceSpec::new(key);
//! spec.scheduler = "rr".into();
//! assert_eq!(engine.control(now, Request::AddService { spec }), Response::Ok);
//! let mut dest = DestSpec::new("198.18.0.11".parse().unwrap(), 80);
//! dest.fwd_method = ForwardMethod::Masq;
//! assert_eq!(engine.control(now, Request::AddDest { service: key, dest }), Response::Ok);
//! ```
#![forbid(unsafe_code)]

pub mod conn;
mod control;
pub mod dest;
mod engine;
pub mod fastpath;
mod flow;
pub mod l2;
mod packet;
pub mod sched;
pub mod service;
pub mod state;
pub mod stats;
pub mod sysctl;
mod xmit;

pub use control::IPVS_VERSION;
pub use engine::{DropReason, Engine, EngineConfig, Event, Steering, Verdict};
pub use l2::{IfaceId, Interface, Mac, NextHop, Route};
