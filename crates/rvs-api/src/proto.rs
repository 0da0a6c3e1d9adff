//! Requests and responses on the control socket.
//!
//! Every client message is one [`Request`]; `rvsd` answers each with exactly one [`Response`].
//! Operations mirror the IPVS generic-netlink commands, so `rvsadm` can translate an ipvsadm
//! command line one to one.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::{
    ConnEntry, DaemonRole, DaemonSpec, DestSpec, Info, ServiceEntry, ServiceKey, ServiceSpec,
    Timeouts,
};

/// A control request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Version and table size.
    GetInfo,
    /// All services with their real servers and counters.
    ListServices,
    /// One service.
    GetService {
        /// Which service.
        key: ServiceKey,
    },
    /// `-A`.
    AddService {
        /// The new service.
        spec: ServiceSpec,
    },
    /// `-E`: replace every parameter of an existing service.
    EditService {
        /// The new parameters (the key selects the service).
        spec: ServiceSpec,
    },
    /// `-D`.
    DelService {
        /// Which service.
        key: ServiceKey,
    },
    /// `-C`: delete every service.
    Flush,
    /// `-a`.
    AddDest {
        /// The service.
        service: ServiceKey,
        /// The new real server.
        dest: DestSpec,
    },
    /// `-e`: replace every parameter of an existing real server.
    EditDest {
        /// The service.
        service: ServiceKey,
        /// The new parameters (address and port select the real server).
        dest: DestSpec,
    },
    /// `-d`.
    DelDest {
        /// The service.
        service: ServiceKey,
        /// Real server address.
        addr: IpAddr,
        /// Real server port.
        port: u16,
    },
    /// `-Z`: zero the counters of one service or (None) of everything.
    Zero {
        /// The service, or every service and the global counters.
        service: Option<ServiceKey>,
    },
    /// `--set tcp tcpfin udp`; a 0 leaves that timeout unchanged.
    SetTimeouts {
        /// New timeouts.
        timeouts: Timeouts,
    },
    /// `-L --timeout`.
    GetTimeouts,
    /// `-L -c`.
    ListConns,
    /// `--start-daemon`.
    StartDaemon {
        /// Daemon parameters.
        spec: DaemonSpec,
    },
    /// `--stop-daemon`.
    StopDaemon {
        /// Which daemon.
        role: DaemonRole,
    },
    /// `-L --daemon`.
    ListDaemons,
    /// Read every IPVS sysctl rvs implements (`expire_nodest_conn`, `conn_reuse_mode`, …).
    GetSysctls,
    /// Set one IPVS sysctl by its kernel name.
    SetSysctl {
        /// Name under `/proc/sys/net/ipv4/vs/`.
        name: String,
        /// New value.
        value: i64,
    },
    /// Read the data plane's counters (no ipvsadm equivalent; `rvs stats`), answered with
    /// [`Response::Counters`]. Added after the first release: older daemons answer it with
    /// an error (`malformed request`).
    GetCounters,
}

/// The answer to one [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    /// The operation succeeded and returns nothing.
    Ok,
    /// Answer to [`Request::GetInfo`].
    Info {
        /// Version and table size.
        info: Info,
    },
    /// Answer to [`Request::ListServices`] and [`Request::GetService`].
    Services {
        /// Services in the daemon's internal order.
        services: Vec<ServiceEntry>,
    },
    /// Answer to [`Request::ListConns`].
    Conns {
        /// Connection entries, templates included, one-packet connections excluded.
        conns: Vec<ConnEntry>,
    },
    /// Answer to [`Request::GetTimeouts`].
    Timeouts {
        /// Current timeouts.
        timeouts: Timeouts,
    },
    /// Answer to [`Request::ListDaemons`].
    Daemons {
        /// Running daemons, master first.
        daemons: Vec<DaemonSpec>,
    },
    /// Answer to [`Request::GetSysctls`].
    Sysctls {
        /// `(name, value)` pairs in name order.
        sysctls: Vec<(String, i64)>,
    },
    /// Answer to [`Request::GetCounters`]: `(name, value)` pairs, grouped by prefix. Names are
    /// dotted paths, stable across releases, and the list only grows; counters only increase
    /// while rvsd runs, except the gauges `xdp.fast_entries` and `engine.conns.*`. `rvsd`
    /// reports:
    ///
    /// * `xdp.<counter>` — the steering program, summed over interfaces and CPUs: every frame
    ///   counts once in `passed` (to the kernel), `redirected` (to an AF_XDP socket),
    ///   `no_socket` (for rvs, but no socket on its queue: to the kernel), `malformed` or
    ///   `fast_hit` (forwarded by the XDP fast path); frames for rvs also count in one
    ///   category (`vip`, `vip_echo`, `icmp_error`, `arp`, `neighbour_solicit`, `nat_return`,
    ///   `fragment`); fast-path punts in `fast_punt_*`, `fast_redirect_fail`, `fast_error`
    ///   (docs/fastpath.md); `xdp.fast_entries` is the number of fast-path map entries and
    ///   `xdp.fast_update_errors` the map updates rvsd could not make;
    /// * `xsk.<interface>.q<queue>.<counter>` — each AF_XDP socket, as last published by its
    ///   worker (about once a second): `rx_packets`, `tx_packets`, `tx_ring_full`,
    ///   `tx_kicks`, `fill_starved`, and the kernel's `rx_dropped`, `rx_invalid_descs`,
    ///   `tx_invalid_descs`, `rx_ring_full`, `rx_fill_ring_empty`, `tx_ring_empty`;
    /// * `engine.drop.<reason>` — frames the engine dropped, by reason; `engine.conns.ipv4`
    ///   and `engine.conns.ipv6` — connection entries (templates included).
    Counters {
        /// `(name, value)` pairs.
        counters: Vec<(String, u64)>,
    },
    /// The operation failed.
    Error {
        /// Why.
        error: ApiError,
    },
}

/// Why an operation failed. `Display` gives ipvsadm's message for the matching kernel errno.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ApiError {
    /// `-A` of an existing service (EEXIST).
    #[error("Service already exists")]
    ServiceExists,
    /// Unknown scheduler or persistence engine (ENOENT on a service operation).
    #[error("Scheduler or persistence engine not found")]
    SchedulerNotFound,
    /// Service operation on a missing service (ESRCH).
    #[error("No such service")]
    NoSuchService,
    /// Real-server operation on a missing service (ESRCH).
    #[error("Service not defined")]
    ServiceNotDefined,
    /// `-a` of an existing real server (EEXIST).
    #[error("Destination already exists")]
    DestExists,
    /// `-e`/`-d` of a missing real server (ENOENT).
    #[error("No such destination")]
    NoSuchDest,
    /// `--start-daemon` while one runs (EEXIST).
    #[error("Daemon has already run")]
    DaemonRunning,
    /// `--stop-daemon` with none running (ESRCH).
    #[error("No daemon is running")]
    NoDaemon,
    /// The caller is not allowed (EPERM).
    #[error("Permission denied (you must be root)")]
    PermissionDenied,
    /// Invalid parameters (EINVAL), e.g. a multicast real-server address.
    #[error("Invalid operation.  Possibly wrong module version, address not unicast, ...")]
    Invalid,
    /// A value out of range (ERANGE), e.g. lower threshold above upper threshold.
    #[error("Numerical result out of range")]
    OutOfRange,
    /// A named device does not exist (ENODEV).
    #[error("No such device")]
    NoDevice,
    /// The operation exists in ipvsadm but rvs does not implement it yet.
    #[error("{0}")]
    NotSupported(String),
    /// Anything else, with a message.
    #[error("{0}")]
    Other(String),
}
