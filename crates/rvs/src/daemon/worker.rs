//! A data-plane worker: the AF_XDP sockets of one RX queue on every served interface.
//!
//! Loop: wait until a socket is readable, take a batch of up to [`BATCH`] frames, run each
//! through the engine under one lock, then transmit. A frame leaving on the interface it came in
//! on is sent from its own UMEM chunk (no copy); one leaving on another interface is copied into
//! a chunk of that interface's socket for the same queue, which this worker also owns, so
//! cross-interface NAT traffic never needs a second thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rvs_engine::{IfaceId, Verdict};
use rvs_io::xsk::{Frame, XskSocket};
use rvs_wire::PacketBuf;
use tracing::{debug, warn};

use super::Shared;

/// Frames taken per socket per round.
pub const BATCH: usize = 64;
/// How long a worker sleeps in poll before checking for shutdown.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// One socket and the engine interface it serves.
#[derive(Debug)]
pub struct WorkerPort {
    /// Engine id of the interface.
    pub iface: IfaceId,
    /// The AF_XDP socket bound to this worker's queue on that interface.
    pub socket: XskSocket,
}

/// See the module docs.
#[derive(Debug)]
pub struct Worker {
    queue: u32,
    ports: Vec<WorkerPort>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    /// Frames the engine passed to the kernel: impossible from AF_XDP, so they are dropped.
    passed: u64,
}

impl Worker {
    /// A worker over `ports` (index = position in the daemon's interface list).
    pub fn new(
        queue: u32,
        ports: Vec<WorkerPort>,
        shared: Arc<Shared>,
        stop: Arc<AtomicBool>,
    ) -> Self {
        Self {
            queue,
            ports,
            shared,
            stop,
            passed: 0,
        }
    }

    /// Runs until the stop flag is set.
    pub fn run(mut self) {
        let mut frames: Vec<Frame> = Vec::with_capacity(BATCH);
        let mut verdicts: Vec<(Frame, Verdict, usize, usize)> = Vec::with_capacity(BATCH);
        for p in &mut self.ports {
            p.socket.refill();
        }
        while !self.stop.load(Ordering::Relaxed) {
            let ready = {
                let socks: Vec<&XskSocket> = self.ports.iter().map(|p| &p.socket).collect();
                match XskSocket::poll_many(&socks, Some(POLL_TIMEOUT)) {
                    Ok(r) => r,
                    Err(err) => {
                        warn!(%err, queue = self.queue, "poll failed");
                        std::thread::sleep(POLL_TIMEOUT);
                        continue;
                    }
                }
            };
            for (i, &readable) in ready.iter().enumerate() {
                self.ports[i].socket.reclaim_completions();
                if !readable {
                    continue;
                }
                frames.clear();
                if self.ports[i].socket.rx_burst(&mut frames, BATCH) == 0 {
                    continue;
                }
                self.process_batch(i, &frames, &mut verdicts);
                self.transmit(i, &mut verdicts);
            }
            for p in &mut self.ports {
                if let Err(err) = p.socket.flush_tx() {
                    warn!(%err, "AF_XDP transmit kick failed");
                }
                p.socket.reclaim_completions();
                p.socket.refill();
            }
        }
        debug!(queue = self.queue, passed = self.passed, "worker stopped");
    }

    /// Runs a batch through the engine under one lock.
    fn process_batch(
        &mut self,
        i: usize,
        frames: &[Frame],
        out: &mut Vec<(Frame, Verdict, usize, usize)>,
    ) {
        out.clear();
        let now = Instant::now();
        let iface = self.ports[i].iface;
        let socket = &mut self.ports[i].socket;
        self.shared.with(|engine| {
            for frame in frames {
                let Some((chunk, off, len)) = socket.buf(frame) else {
                    continue;
                };
                let (verdict, head, plen) = match PacketBuf::new(chunk, off, len) {
                    Ok(mut pkt) => {
                        let v = engine.process(now, iface, &mut pkt);
                        (v, pkt.head(), pkt.len())
                    }
                    Err(_) => (Verdict::Drop(rvs_engine::DropReason::Unsupported), off, len),
                };
                out.push((*frame, verdict, head, plen));
            }
        });
    }

    /// Sends or recycles every frame of a processed batch received on port `i`.
    fn transmit(&mut self, i: usize, verdicts: &mut Vec<(Frame, Verdict, usize, usize)>) {
        for (frame, verdict, head, len) in verdicts.drain(..) {
            match verdict {
                Verdict::Transmit(out) => {
                    let Some(j) = self.ports.iter().position(|p| p.iface == out) else {
                        self.recycle(i, frame);
                        continue;
                    };
                    if j == i {
                        self.send_same(i, frame, head, len);
                    } else {
                        self.send_other(i, j, frame, head, len);
                    }
                }
                Verdict::Pass => {
                    self.passed += 1;
                    self.recycle(i, frame);
                }
                Verdict::Drop(_) => self.recycle(i, frame),
            }
        }
    }

    fn recycle(&mut self, i: usize, frame: Frame) {
        let _ = self.ports[i].socket.recycle(frame);
    }

    fn send_same(&mut self, i: usize, frame: Frame, head: usize, len: usize) {
        let socket = &mut self.ports[i].socket;
        let Ok(f) = socket.reframe(&frame, head, len) else {
            let _ = socket.recycle(frame);
            return;
        };
        if socket.tx_push(f).is_err() {
            // Ring full: give the kernel a chance to drain and try once more.
            let _ = socket.flush_tx();
            socket.reclaim_completions();
            if socket.tx_push(f).is_err() {
                let _ = socket.recycle(f);
            }
        }
    }

    fn send_other(&mut self, i: usize, j: usize, frame: Frame, head: usize, len: usize) {
        let (src, dst) = if i < j {
            let (a, b) = self.ports.split_at_mut(j);
            (&mut a[i].socket, &mut b[0].socket)
        } else {
            let (a, b) = self.ports.split_at_mut(i);
            (&mut b[0].socket, &mut a[j].socket)
        };
        let copied = match (src.buf(&frame), dst.alloc_tx()) {
            (Some((chunk, _, _)), Some((tx, room))) if len <= room.len() => {
                room[..len].copy_from_slice(&chunk[head..head + len]);
                Some(Frame {
                    len: len as u32,
                    ..tx
                })
            }
            (_, Some((tx, _))) => {
                let _ = dst.recycle(Frame { len: 1, ..tx });
                None
            }
            _ => None,
        };
        let _ = src.recycle(frame);
        if let Some(tx) = copied
            && dst.tx_push(tx).is_err()
        {
            let _ = dst.flush_tx();
            dst.reclaim_completions();
            if dst.tx_push(tx).is_err() {
                let _ = dst.recycle(tx);
            }
        }
    }
}
