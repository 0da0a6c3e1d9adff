//! `rvsd`: the director daemon.
//!
//! It wires the pure engine to the kernel:
//! * [`worker`] — data-plane threads, one per RX queue, each owning the AF_XDP sockets of that
//!   queue on every served interface, feeding frames to the shared [`Engine`] and transmitting
//!   what it returns;
//! * [`netsync`] — interfaces, connected and default routes and the neighbour table copied from
//!   netlink into the engine, and neighbour resolution on the engine's request;
//! * [`control`] — the root-only Unix control socket speaking rvs-api, and keeping the XDP
//!   steering maps equal to what the service table needs;
//! * this module — start-up, the housekeeping loop (timers, events) and a clean shutdown that
//!   detaches every XDP program on SIGTERM/SIGINT. A crash detaches them too: the programs
//!   are attached through bpf_link file descriptors, which the kernel releases with the process.
//!
//! The engine sits behind one mutex taken once per received batch (phase 1 of the
//! architecture); control requests and timers take it between batches.

pub mod control;
pub mod netsync;
pub mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rvs_engine::{Engine, EngineConfig};
use rvs_io::xdp::{Steering, XdpMode};
use rvs_io::xsk::{XskConfig, XskSocket};
use tracing::{info, warn};

use self::netsync::NetSync;
use self::worker::{Worker, WorkerPort};

/// What `rvsd` was asked to do.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Interfaces to serve (one for DR/TUN, two or more for NAT).
    pub interfaces: Vec<String>,
    /// Control socket path.
    pub socket: PathBuf,
    /// XDP attach mode.
    pub xdp_mode: XdpMode,
    /// RX queues per interface to serve (one worker each).
    pub queues: u32,
    /// Connection table size to allocate up front.
    pub conn_capacity: usize,
}

/// The engine shared by workers, control and housekeeping.
pub type SharedEngine = Arc<Mutex<Engine>>;

/// Locks the engine, recovering from a poisoned lock: the engine's state stays consistent
/// across a panic in a caller because every engine operation completes before returning.
pub fn lock(engine: &SharedEngine) -> MutexGuard<'_, Engine> {
    engine.lock().unwrap_or_else(|e| e.into_inner())
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    // std seeds RandomState from the OS's random source.
    RandomState::new().hash_one(Instant::now())
}

/// Runs the daemon until SIGTERM/SIGINT.
pub fn run(cfg: DaemonConfig) -> Result<()> {
    if cfg.interfaces.is_empty() {
        bail!("no --interface given");
    }
    let now = Instant::now();
    let mut engine = Engine::new(
        now,
        EngineConfig { seed: random_seed(), conn_capacity: cfg.conn_capacity },
    );
    let mut netsync = NetSync::open(&cfg.interfaces).context("reading interfaces over netlink")?;
    netsync.install(&mut engine).context("copying interfaces, routes and neighbours")?;
    let engine: SharedEngine = Arc::new(Mutex::new(engine));

    // Attach steering first so that no VIP packet reaches a socket before it exists: the
    // program passes everything until a socket is registered and a VIP is in its map.
    let mut steering = Vec::new();
    for name in &cfg.interfaces {
        let s = Steering::attach(name, cfg.xdp_mode)
            .with_context(|| format!("attaching the XDP steering program to {name}"))?;
        info!(interface = %name, mode = ?s.attached_mode(), prog_id = s.prog_id(), "XDP steering attached");
        steering.push(s);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for queue in 0..cfg.queues {
        let mut ports = Vec::new();
        for (i, name) in cfg.interfaces.iter().enumerate() {
            let xsk = XskSocket::open(name, queue, &XskConfig::default())
                .with_context(|| format!("opening the AF_XDP socket on {name} queue {queue}"))?;
            steering[i]
                .register_xsk(queue, xsk.fd())
                .with_context(|| format!("registering the AF_XDP socket of {name}"))?;
            info!(interface = %name, queue, bind = ?xsk.bind_mode(), "AF_XDP socket ready");
            ports.push(WorkerPort { iface: netsync.iface_id(i), socket: xsk });
        }
        let w = Worker::new(queue, ports, engine.clone(), stop.clone());
        workers.push(
            std::thread::Builder::new()
                .name(format!("rvsd-rxq{queue}"))
                .spawn(move || w.run())
                .context("spawning a data-plane worker")?,
        );
    }

    let steering = Arc::new(Mutex::new(control::SteeringSet::new(steering)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the control-plane runtime")?;
    let result = rt.block_on(control_plane(&cfg, engine.clone(), steering.clone(), netsync));
    // Dropping the runtime drops its remaining tasks (the aborted control server and any open
    // control connections), which hold clones of `steering`.
    drop(rt);

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        if w.join().is_err() {
            warn!("a data-plane worker panicked");
        }
    }
    let steering = match Arc::try_unwrap(steering) {
        Ok(m) => m.into_inner().unwrap_or_else(|e| e.into_inner()),
        Err(_) => bail!("steering still shared at shutdown"),
    };
    for s in steering.into_inner() {
        let name = s.ifname().to_owned();
        s.detach();
        info!(interface = %name, "XDP steering detached");
    }
    let _ = std::fs::remove_file(&cfg.socket);
    info!("rvsd stopped");
    result
}

/// Control socket, timers and signals, until a signal asks to stop.
async fn control_plane(
    cfg: &DaemonConfig,
    engine: SharedEngine,
    steering: Arc<Mutex<control::SteeringSet>>,
    mut netsync: NetSync,
) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let listener = control::bind(&cfg.socket)?;
    info!(socket = %cfg.socket.display(), "control socket listening");
    let server = tokio::spawn(control::serve(listener, engine.clone(), steering.clone()));
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_refresh = Instant::now();
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = int.recv() => { info!("SIGINT: shutting down"); break; }
            _ = tick.tick() => {
                let now = Instant::now();
                let events = {
                    let mut e = lock(&engine);
                    if now >= e.poll_timeout() {
                        e.handle_timeout(now);
                    }
                    e.drain_events()
                };
                netsync.handle_events(events);
                netsync.poll_pending(&engine, now);
                if now.duration_since(last_refresh) >= Duration::from_secs(2) {
                    last_refresh = now;
                    if let Err(err) = netsync.refresh(&engine) {
                        warn!(%err, "refreshing interfaces and neighbours failed");
                    }
                }
            }
        }
    }
    server.abort();
    Ok(())
}
