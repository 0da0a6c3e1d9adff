//! A data-plane worker: the AF_XDP sockets of one RX queue on every served interface.
//!
//! Loop: wait until a socket is readable, take a burst of up to [`BATCH`] frames, run them
//! through the engine as one batch (`Engine::process_batch`, which overlaps the
//! connection-table misses of the burst's frames) under one lock, then transmit. A frame
//! leaving on the interface it came in on is sent from its own UMEM chunk (no copy); one
//! leaving on another interface is copied into a chunk of that interface's socket for the same
//! queue, which this worker also owns, so cross-interface NAT traffic never needs a second
//! thread. About once a second a worker publishes its sockets' counters to [`Shared`] for the
//! control socket's `GetCounters`, so that no other thread ever touches a socket.

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
/// How often a worker publishes its sockets' counters ([`Shared::publish_xsk`]).
const STATS_PERIOD: Duration = Duration::from_secs(1);

/// One socket and the engine interface it serves.
#[derive(Debug)]
pub struct WorkerPort {
    /// Engine id of the interface.
    pub iface: IfaceId,
    /// Interface name (names the socket's counters).
    pub name: String,
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
    /// Vectors reused by every burst.
    scratch: Scratch,
}

/// The per-burst vectors of [`Worker::process_burst`], kept between bursts so that a burst
/// allocates nothing. Those holding borrows of a socket's UMEM are stored empty, with a
/// `'static` element type, and re-typed for each burst ([`relifetime`]).
#[derive(Debug, Default)]
struct Scratch {
    chunks: Vec<(&'static mut [u8], usize, usize)>,
    pkts: Vec<PacketBuf<'static>>,
    /// The frames whose packets are in `pkts`, in the same order.
    batched: Vec<Frame>,
    verdicts: Vec<Verdict>,
}

/// Empties `v` and returns its allocation as a vector of another element type of the same
/// layout (here: the same type with another lifetime). Collecting a mapped `vec::IntoIter`
/// into a vector of an equally sized and aligned type reuses the buffer in place, and the
/// iterator is empty, so the closure never runs.
fn relifetime<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter()
        .map(|_| unreachable!("the vector is empty"))
        .collect()
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
            scratch: Scratch::default(),
        }
    }

    /// Runs until the stop flag is set.
    pub fn run(mut self) {
        let mut frames: Vec<Frame> = Vec::with_capacity(BATCH);
        let mut verdicts: Vec<(Frame, Verdict, usize, usize)> = Vec::with_capacity(BATCH);
        for p in &mut self.ports {
            p.socket.refill();
        }
        let mut next_stats = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= next_stats {
                next_stats = now + STATS_PERIOD;
                self.publish_stats();
            }
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
                self.process_burst(i, &frames, &mut verdicts);
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

    /// Hands every socket's counters to [`Shared`], where the control socket reads them.
    fn publish_stats(&self) {
        for p in &self.ports {
            match p.socket.stats() {
                Ok(stats) => self.shared.publish_xsk(&p.name, self.queue, stats),
                Err(err) => debug!(%err, interface = %p.name, "reading AF_XDP counters failed"),
            }
        }
    }

    /// Runs a received burst through the engine as one batch ([`Engine::process_batch`]),
    /// under one lock, and appends `(frame, verdict, data offset, data length)` per frame to
    /// `out`.
    ///
    /// [`Engine::process_batch`]: rvs_engine::Engine::process_batch
    fn process_burst(
        &mut self,
        i: usize,
        frames: &[Frame],
        out: &mut Vec<(Frame, Verdict, usize, usize)>,
    ) {
        out.clear();
        let now = Instant::now();
        let iface = self.ports[i].iface;
        let socket = &mut self.ports[i].socket;
        let scratch = &mut self.scratch;
        let mut chunks = relifetime(std::mem::take(&mut scratch.chunks));
        if let Err(err) = socket.bufs(frames, &mut chunks) {
            // rx_burst hands out distinct frames this worker owns, so this cannot happen;
            // the frames are still ours and are recycled by `transmit`.
            warn!(%err, queue = self.queue, "AF_XDP burst refused");
            let refused = Verdict::Drop(rvs_engine::DropReason::Unsupported);
            out.extend(frames.iter().map(|f| (*f, refused, 0, 0)));
            scratch.chunks = relifetime(chunks);
            return;
        }
        let mut pkts = relifetime(std::mem::take(&mut scratch.pkts));
        scratch.batched.clear();
        for (frame, (chunk, off, len)) in frames.iter().zip(chunks.drain(..)) {
            match PacketBuf::new(chunk, off, len) {
                Ok(pkt) => {
                    pkts.push(pkt);
                    scratch.batched.push(*frame);
                }
                Err(_) => out.push((
                    *frame,
                    Verdict::Drop(rvs_engine::DropReason::Unsupported),
                    off,
                    len,
                )),
            }
        }
        let verdicts = &mut scratch.verdicts;
        verdicts.clear();
        self.shared
            .with(|engine| engine.process_batch(now, iface, &mut pkts, verdicts));
        for ((frame, pkt), verdict) in scratch.batched.iter().zip(&pkts).zip(verdicts.drain(..)) {
            out.push((*frame, verdict, pkt.head(), pkt.len()));
        }
        pkts.clear();
        scratch.pkts = relifetime(pkts);
        scratch.chunks = relifetime(chunks);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relifetime_keeps_the_allocation() {
        let v: Vec<PacketBuf<'static>> = Vec::with_capacity(BATCH);
        let (cap, at) = (v.capacity(), v.as_ptr() as usize);
        let mut bytes = [0u8; 64];
        let mut w: Vec<PacketBuf<'_>> = relifetime(v);
        assert_eq!((w.capacity(), w.as_ptr() as usize), (cap, at));
        w.push(PacketBuf::new(&mut bytes, 4, 10).unwrap());
        let back: Vec<PacketBuf<'static>> = relifetime(w);
        assert!(back.is_empty());
        assert_eq!((back.capacity(), back.as_ptr() as usize), (cap, at));
    }
}
