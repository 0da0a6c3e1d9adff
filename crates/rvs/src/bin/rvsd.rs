//! `rvsd`: the rvs director daemon (data plane, control socket). See `rvs::daemon`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use rvs::daemon::{self, DaemonConfig};
use rvs_io::xdp::XdpMode;
use rvs_io::xsk::XskConfig;

/// Linux Virtual Server director on XDP/AF_XDP, administered with rvsadm.
#[derive(Debug, Parser)]
#[command(name = "rvsd", version, about)]
struct Args {
    /// Interface to serve (repeat for NAT: clients' side and real servers' side).
    #[arg(short = 'i', long = "interface", required = true)]
    interfaces: Vec<String>,
    /// Control socket path.
    #[arg(long, default_value = rvs_api::DEFAULT_SOCKET_PATH)]
    socket: PathBuf,
    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    xdp_mode: Mode,
    /// RX queues per interface (one data-plane worker per queue).
    #[arg(long, default_value_t = 1)]
    queues: u32,
    /// Connections to allocate table space for at start (the table grows beyond it).
    #[arg(long, default_value_t = 65_536)]
    conn_capacity: usize,
    /// Send every packet through AF_XDP and the engine: no XDP fast path (docs/fastpath.md).
    /// (On veth the fast path needs an XDP program on the peer interface to deliver XDP_TX and
    /// redirected frames.)
    #[arg(long)]
    no_fast_path: bool,
    /// UMEM chunks (2048 bytes each) of every AF_XDP socket.
    #[arg(long, default_value_t = XskConfig::default().frame_count)]
    xsk_frames: u32,
    /// Entries of each AF_XDP ring (RX, TX, fill, completion; a power of two). Larger rings
    /// absorb longer gaps in the worker's scheduling (copy mode drops what the RX ring cannot
    /// hold: `rvs stats` shows it as xsk.<interface>.q<queue>.rx_ring_full).
    #[arg(long, default_value_t = XskConfig::default().rx_size)]
    xsk_ring: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// Native (driver) XDP where the driver has it, else generic.
    Auto,
    /// Native XDP only.
    Native,
    /// Generic (SKB) XDP.
    Skb,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RVS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let cfg = DaemonConfig {
        interfaces: args.interfaces,
        socket: args.socket,
        xdp_mode: match args.xdp_mode {
            Mode::Auto => XdpMode::Auto,
            Mode::Native => XdpMode::Native,
            Mode::Skb => XdpMode::Skb,
        },
        queues: args.queues.max(1),
        conn_capacity: args.conn_capacity,
        fast_path: !args.no_fast_path,
        xsk: XskConfig {
            frame_count: args.xsk_frames,
            rx_size: args.xsk_ring,
            tx_size: args.xsk_ring,
            fill_size: args.xsk_ring,
            comp_size: args.xsk_ring,
            ..XskConfig::default()
        },
    };
    match daemon::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rvsd: {err:#}");
            ExitCode::FAILURE
        }
    }
}
