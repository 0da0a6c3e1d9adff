//! The error type of rvs-io.

use std::io;

/// Boxed error from a dependency whose types rvs-io does not expose (aya).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong when rvs-io talks to the kernel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// A system call failed; `op` names it (e.g. `"setsockopt(XDP_UMEM_REG)"`).
    #[error("{op}: {source}")]
    Sys {
        /// The call that failed.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The named interface does not exist in the calling thread's network namespace.
    #[error("no such interface: {0}")]
    NoSuchInterface(String),
    /// Loading or verifying an embedded BPF object failed (the verifier log is in the source).
    #[error("loading BPF program {program}: {source}")]
    BpfLoad {
        /// Which program (`"steer"`, `"tun_decap"`).
        program: &'static str,
        /// The loader's error.
        #[source]
        source: BoxError,
    },
    /// A BPF map operation failed.
    #[error("BPF map {map}: {source}")]
    BpfMap {
        /// Map name as in the C source.
        map: &'static str,
        /// The loader's error.
        #[source]
        source: BoxError,
    },
    /// Attaching an XDP program failed in every mode that was tried.
    #[error("attaching XDP program to {ifname} ({mode}): {source}")]
    Attach {
        /// Interface name.
        ifname: String,
        /// The last mode tried (`"native"` or `"skb"`).
        mode: &'static str,
        /// The kernel's answer to BPF_LINK_CREATE.
        #[source]
        source: io::Error,
    },
    /// The kernel answered a netlink request with an error.
    #[error("netlink {op}: {source}")]
    Netlink {
        /// The request (e.g. `"RTM_NEWADDR"`).
        op: &'static str,
        /// The errno the kernel returned.
        #[source]
        source: io::Error,
    },
    /// A netlink reply did not have the expected shape.
    #[error("netlink {op}: malformed reply: {what}")]
    NetlinkProtocol {
        /// The request whose reply was malformed.
        op: &'static str,
        /// What was wrong.
        what: &'static str,
    },
    /// A caller-supplied value is out of range (configuration, address family, sizes).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The kernel lacks a feature rvs-io needs (e.g. `XDP_STATISTICS`).
    #[error("unsupported by this kernel: {0}")]
    Unsupported(&'static str),
    /// Entering or leaving a network namespace failed.
    #[error("network namespace {name}: {source}")]
    Netns {
        /// Namespace name (under /run/netns) or path.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Reading or writing a sysctl failed.
    #[error("sysctl {path}: {source}")]
    Sysctl {
        /// Path under /proc/sys.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl IoError {
    pub(crate) fn sys(op: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Sys { op, source }
    }

    /// The OS error number behind this error, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Sys { source, .. }
            | Self::Attach { source, .. }
            | Self::Netlink { source, .. }
            | Self::Netns { source, .. }
            | Self::Sysctl { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
