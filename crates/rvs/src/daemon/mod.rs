//! `rvsd`: the director daemon.
//!
//! It wires the pure engine to the kernel:
//! * [`worker`] — data-plane threads, one per RX queue, each owning the AF_XDP sockets of that
//!   queue on every served interface, feeding frames to the shared [`Engine`] and transmitting
//!   what it returns;
//! * [`netsync`] — interfaces, connected and default routes and the neighbour table copied from
//!   netlink into the engine, and neighbour resolution on the engine's request;
//! * [`control`] — the root-only Unix control socket speaking rvs-api, including the data
//!   plane's counters ([`Shared::counters`]: steering program, AF_XDP sockets, engine);
//! * [`steer`] — the XDP program's maps kept equal to what the engine needs: the VIP and NAT
//!   steering maps after every control request, and the fast path (docs/fastpath.md) after
//!   every engine call that exported or withdrew entries;
//! * this module — start-up, the housekeeping loop (timers, events, fast-path counters and idle
//!   probes) and a clean shutdown that detaches the XDP program on SIGTERM/SIGINT. A crash
//!   detaches it too: it is attached through bpf_link file descriptors, which the kernel
//!   releases with the process.
//!
//! The engine sits behind one mutex taken once per received batch (phase 1 of the
//! architecture); control requests and timers take it between batches. Map updates the engine
//! asked for are applied before that mutex is released ([`Shared::with`]), so the map sees
//! inserts and removals in the engine's order whichever thread caused them.

pub mod control;
pub mod netsync;
pub mod steer;
pub mod worker;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rvs_engine::{Engine, EngineConfig};
use rvs_io::xdp::{Steering, SteeringConfig, XdpMode};
use rvs_io::xsk::{XskConfig, XskSocket, XskStats};
use tracing::{info, warn};

use self::netsync::NetSync;
use self::steer::{Port, SteeringSet};
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
    /// Forward established flows in XDP (phase 2) instead of through AF_XDP.
    pub fast_path: bool,
    /// Geometry of every AF_XDP socket: UMEM chunks and ring sizes. Larger rings absorb
    /// longer gaps in the worker's scheduling (in copy mode the kernel drops what the RX
    /// ring cannot hold, counted in `rx_ring_full`).
    pub xsk: XskConfig,
}

/// The engine and the XDP maps it drives, shared by workers, control and housekeeping.
#[derive(Debug)]
pub struct Shared {
    engine: Mutex<Engine>,
    steering: Mutex<SteeringSet>,
    /// The AF_XDP sockets' counters by (interface, queue), as their workers last published
    /// them ([`Shared::publish_xsk`]): the control thread never touches a socket.
    xsk_stats: Mutex<BTreeMap<(String, u32), XskStats>>,
}

impl Shared {
    /// Runs `f` on the engine, then applies the fast-path changes it produced while the engine
    /// is still locked (lock order: engine, then steering).
    pub fn with<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        let mut e = lock(&self.engine);
        let r = f(&mut e);
        let updates = e.drain_fast_updates();
        if !updates.is_empty() {
            lock(&self.steering).apply_fast(&updates);
        }
        r
    }

    /// The steering maps (for the VIP sync and counters).
    pub fn steering(&self) -> MutexGuard<'_, SteeringSet> {
        lock(&self.steering)
    }

    /// Records the counters of the AF_XDP socket on `interface`, queue `queue` (called by
    /// the worker that owns it, about once a second).
    pub fn publish_xsk(&self, interface: &str, queue: u32, stats: XskStats) {
        lock(&self.xsk_stats).insert((interface.to_owned(), queue), stats);
    }

    /// The answer to `GetCounters` (see `rvs_api::Response::Counters`): the steering
    /// program's counters and fast-path entries, every AF_XDP socket's last published
    /// counters, then the engine's.
    pub fn counters(&self) -> Vec<(String, u64)> {
        let engine = self.with(|e| e.counters());
        let mut out = self.steering().counters();
        for ((interface, queue), stats) in lock(&self.xsk_stats).iter() {
            out.extend(
                stats
                    .fields()
                    .iter()
                    .map(|(name, v)| (format!("xsk.{interface}.q{queue}.{name}"), *v)),
            );
        }
        out.extend(engine);
        out
    }
}

/// Locks a mutex, recovering from poisoning: every engine and map operation completes before
/// returning, so the protected state stays consistent across a panic in a caller.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
        EngineConfig {
            seed: random_seed(),
            conn_capacity: cfg.conn_capacity,
        },
    );
    let mut netsync = NetSync::open(&cfg.interfaces).context("reading interfaces over netlink")?;
    netsync
        .install(&mut engine)
        .context("copying interfaces, routes and neighbours")?;

    // Attach before any socket exists: until a queue has a socket and a VIP is in the maps,
    // the program passes everything to the kernel.
    let mut prog =
        Steering::load(SteeringConfig::default()).context("loading the XDP steering program")?;
    let mut ports = Vec::new();
    for (i, name) in cfg.interfaces.iter().enumerate() {
        let slot = prog
            .attach(name, cfg.xdp_mode)
            .with_context(|| format!("attaching the XDP steering program to {name}"))?;
        let mode = prog.attached_mode(slot).unwrap_or(cfg.xdp_mode);
        info!(interface = %name, ?mode, slot, prog_id = prog.prog_id(), "XDP steering attached");
        let ifindex = prog.ifindex(slot).unwrap_or(0);
        ports.push(Port {
            iface: netsync.iface_id(i),
            ifindex,
            slot,
        });
    }
    prog.set_fast_path(cfg.fast_path)
        .context("configuring the XDP fast path")?;
    engine.set_fast_path(cfg.fast_path);
    info!(enabled = cfg.fast_path, "XDP fast path");

    let stop = Arc::new(AtomicBool::new(false));
    let mut sockets = Vec::new();
    for queue in 0..cfg.queues {
        let mut wports = Vec::new();
        for (i, name) in cfg.interfaces.iter().enumerate() {
            let xsk = XskSocket::open(name, queue, &cfg.xsk)
                .with_context(|| format!("opening the AF_XDP socket on {name} queue {queue}"))?;
            prog.register_xsk(ports[i].slot, queue, xsk.fd())
                .with_context(|| format!("registering the AF_XDP socket of {name}"))?;
            info!(interface = %name, queue, bind = ?xsk.bind_mode(), "AF_XDP socket ready");
            wports.push(WorkerPort {
                iface: ports[i].iface,
                name: name.clone(),
                socket: xsk,
            });
        }
        sockets.push(wports);
    }

    let shared = Arc::new(Shared {
        engine: Mutex::new(engine),
        steering: Mutex::new(SteeringSet::new(prog, ports)),
        xsk_stats: Mutex::new(BTreeMap::new()),
    });
    let mut workers = Vec::new();
    for (queue, wports) in sockets.into_iter().enumerate() {
        let w = Worker::new(queue as u32, wports, shared.clone(), stop.clone());
        workers.push(
            std::thread::Builder::new()
                .name(format!("rvsd-rxq{queue}"))
                .spawn(move || w.run())
                .context("spawning a data-plane worker")?,
        );
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the control-plane runtime")?;
    let result = rt.block_on(control_plane(&cfg, shared.clone(), netsync));
    // Dropping the runtime drops its remaining tasks (the aborted control server and any open
    // control connections), which hold clones of `shared`.
    drop(rt);

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        if w.join().is_err() {
            warn!("a data-plane worker panicked");
        }
    }
    let shared = match Arc::try_unwrap(shared) {
        Ok(s) => s,
        Err(_) => bail!("engine still shared at shutdown"),
    };
    let steering = shared
        .steering
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let names = steering.interface_names();
    steering.into_inner().detach();
    for name in names {
        info!(interface = %name, "XDP steering detached");
    }
    let _ = std::fs::remove_file(&cfg.socket);
    info!("rvsd stopped");
    result
}

/// How often the fast path's counters are folded into the engine's.
const FAST_STATS_PERIOD: Duration = Duration::from_secs(1);

/// Control socket, timers and signals, until a signal asks to stop.
async fn control_plane(
    cfg: &DaemonConfig,
    shared: Arc<Shared>,
    mut netsync: NetSync,
) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let listener = control::bind(&cfg.socket)?;
    info!(socket = %cfg.socket.display(), "control socket listening");
    let server = tokio::spawn(control::serve(listener, shared.clone()));
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_refresh = Instant::now();
    let mut last_stats = Instant::now();
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = int.recv() => { info!("SIGINT: shutting down"); break; }
            _ = tick.tick() => {
                let now = Instant::now();
                if now.duration_since(last_stats) >= FAST_STATS_PERIOD {
                    last_stats = now;
                    steer::harvest_fast_stats(&shared);
                }
                let events = shared.with(|e| {
                    if now >= e.poll_timeout() {
                        e.handle_timeout(now);
                    }
                    e.drain_events()
                });
                let events = steer::answer_probes(&shared, now, events);
                netsync.handle_events(events);
                netsync.poll_pending(&shared, now);
                if now.duration_since(last_refresh) >= Duration::from_secs(2) {
                    last_refresh = now;
                    // Trashed real servers leave the engine on its own timers: keep the
                    // steering maps following them, not only control requests.
                    shared.with(|e| shared.steering().sync(&e.steering()));
                    if let Err(err) = netsync.refresh(&shared) {
                        warn!(%err, "refreshing interfaces and neighbours failed");
                    }
                }
            }
        }
    }
    server.abort();
    Ok(())
}
