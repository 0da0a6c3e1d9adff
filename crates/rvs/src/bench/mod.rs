//! `rvs bench`: the pieces of `bench/run` that need Rust.
//!
//! * [`packet_gen`] — a UDP packet generator on `BPF_PROG_TEST_RUN` with live frames: the kernel
//!   runs a tiny XDP program (`bench/xdp/gen.bpf.c`) in a loop and transmits every frame it
//!   returns with `XDP_TX`, so a single core offers several million 64-byte packets per second
//!   into a veth — far more than a socket-based generator (trafgen tops out near 0.6 Mpps here).
//!   xdp-tools' own `xdp-trafficgen` 1.3.1 does the same but no longer loads on recent kernels
//!   (it needs the removed `xdp_redirect_map_err` tracepoint).

pub mod packet_gen;

/// Why a benchmark helper failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// An interface could not be looked up in `/sys/class/net`.
    #[error("interface {name}: {source}")]
    Interface {
        /// Interface name.
        name: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Invalid parameters.
    #[error("{0}")]
    BadSpec(String),
    /// The BPF object could not be loaded.
    #[error("loading {path}: {source}")]
    Load {
        /// The object file.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: Box<aya::EbpfError>,
    },
    /// The kernel refused the program or a test run.
    #[error("BPF program: {0}")]
    Program(#[from] aya::programs::ProgramError),
}
