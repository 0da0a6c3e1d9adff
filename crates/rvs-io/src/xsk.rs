//! AF_XDP sockets with their own UMEM: batched receive and transmit with zero allocation per
//! packet.
//!
//! Implemented directly over libc (mmap + setsockopt + the ring offsets the kernel reports)
//! rather than with the `xdp` crate: the engine needs raw access to whole UMEM chunks (to
//! prepend tunnel headers in the headroom), explicit control over which chunk is where, and
//! need_wakeup handling; the rings are ~150 lines, and no crate type leaks into the API.
//!
//! # Chunks and frames
//!
//! The UMEM is `frame_count` chunks of `frame_size` bytes. Every chunk is always in exactly one
//! place: the socket's free pool, the kernel (fill ring / RX in flight, or TX ring / awaiting
//! completion), or the application (received and not yet given back, or allocated for TX). A
//! [`Frame`] is a descriptor — the UMEM address where packet data starts, and its length — and
//! stands for its chunk while the application owns it. Every frame the application receives
//! must go back exactly once, through [`XskSocket::tx_push`] or [`XskSocket::recycle`]; the socket
//! checks this (a wrong or repeated frame is refused with [`FrameError`], never corrupting the
//! pool), and [`XskSocket::chunk_accounting`] shows where every chunk is.
//!
//! Received data starts `XDP_PACKET_HEADROOM` (256) bytes plus [`XskConfig::headroom`] into its
//! chunk, so up to that many bytes can be prepended in place.
//!
//! # Worker loop
//!
//! ```no_run
//! # fn main() -> Result<(), rvs_io::IoError> {
//! use rvs_io::xsk::{Frame, XskConfig, XskSocket};
//! use std::time::Duration;
//! let mut sock = XskSocket::open("eth0", 0, &XskConfig::default())?;
//! let mut frames: Vec<Frame> = Vec::with_capacity(64);
//! loop {
//!     sock.poll(Some(Duration::from_millis(100)))?;
//!     sock.rx_burst(&mut frames, 64);
//!     for f in frames.drain(..) {
//!         let Some((chunk, off, len)) = sock.buf(&f) else { continue };
//!         // ... rewrite chunk[off..off + len] in place, maybe grow into chunk[..off] ...
//!         let _ = (chunk, off, len);
//!         if let Err(e) = sock.tx_push(f) {
//!             let _ = e;
//!             sock.recycle(f).ok();
//!         }
//!     }
//!     sock.flush_tx()?;
//!     sock.reclaim_completions();
//!     sock.refill();
//! }
//! # }
//! ```
//!
//! A frame for another interface is copied into that interface's socket: `alloc_tx` there,
//! copy, `tx_push` there, `recycle` here.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::IoError;
use crate::sys::{self, Mmap};

/// Bytes the kernel reserves in front of packet data in every chunk (`XDP_PACKET_HEADROOM`).
pub const XDP_PACKET_HEADROOM: u32 = 256;

/// Socket and UMEM geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XskConfig {
    /// Chunk size: 2048 or 4096.
    pub frame_size: u32,
    /// Number of chunks in the UMEM (UMEM size = `frame_size * frame_count`).
    pub frame_count: u32,
    /// RX ring entries (power of two).
    pub rx_size: u32,
    /// TX ring entries (power of two).
    pub tx_size: u32,
    /// Fill ring entries (power of two).
    pub fill_size: u32,
    /// Completion ring entries (power of two; at least `tx_size` avoids TX back-pressure).
    pub comp_size: u32,
    /// Extra headroom in front of received data, on top of the kernel's 256 bytes.
    pub headroom: u32,
    /// `Some(true)` requires zero-copy, `Some(false)` forces copy mode, `None` lets the kernel
    /// pick (zero-copy when the driver supports it).
    pub zero_copy: Option<bool>,
    /// Use the need_wakeup protocol (fewer syscalls; the kernel says when it needs a kick).
    pub need_wakeup: bool,
}

impl Default for XskConfig {
    fn default() -> Self {
        Self {
            frame_size: 2048,
            frame_count: 4096,
            rx_size: 2048,
            tx_size: 2048,
            fill_size: 2048,
            comp_size: 2048,
            headroom: 0,
            zero_copy: None,
            need_wakeup: true,
        }
    }
}

impl XskConfig {
    fn validate(&self) -> Result<(), IoError> {
        let bad = |m: String| Err(IoError::InvalidArgument(m));
        if self.frame_size != 2048 && self.frame_size != 4096 {
            return bad(format!(
                "frame_size {} (must be 2048 or 4096)",
                self.frame_size
            ));
        }
        for (name, v) in [
            ("rx_size", self.rx_size),
            ("tx_size", self.tx_size),
            ("fill_size", self.fill_size),
            ("comp_size", self.comp_size),
        ] {
            if !v.is_power_of_two() {
                return bad(format!("{name} {v} (must be a power of two)"));
            }
        }
        if self.frame_count < 2 || self.frame_count > (1 << 20) {
            return bad(format!("frame_count {}", self.frame_count));
        }
        if self.headroom + XDP_PACKET_HEADROOM + 256 > self.frame_size {
            return bad(format!(
                "headroom {} leaves no room for packets",
                self.headroom
            ));
        }
        Ok(())
    }
}

/// How the kernel bound the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindMode {
    /// Packets are copied between the driver's buffers and the UMEM (always available).
    Copy,
    /// The driver DMAs straight into the UMEM.
    ZeroCopy,
}

/// A packet descriptor: UMEM address of the first data byte, and length. See the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Offset of the packet data in the UMEM.
    pub addr: u64,
    /// Packet length in bytes.
    pub len: u32,
}

/// Why a frame was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The TX ring is full: flush, reclaim completions and retry, or recycle the frame. The
    /// application still owns it.
    #[error("TX ring full")]
    RingFull,
    /// The frame's chunk is not owned by the application (already pushed or recycled, or never
    /// received from this socket).
    #[error("frame not owned by the application")]
    NotOwned,
    /// Address or length outside the UMEM, or data crossing the end of its chunk.
    #[error("frame outside its chunk")]
    OutOfBounds,
    /// [`XskSocket::bufs`] was given two frames in one chunk (the same frame twice, or two
    /// frames of one chunk): their bytes would alias.
    #[error("two frames in one chunk")]
    Duplicate,
}

/// Socket counters: software counts plus the kernel's `XDP_STATISTICS`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Frames returned by [`XskSocket::rx_burst`].
    pub rx_packets: u64,
    /// Frames accepted by [`XskSocket::tx_push`].
    pub tx_packets: u64,
    /// Times `tx_push` found the TX ring full.
    pub tx_ring_full: u64,
    /// Transmit kicks (`sendto`) issued.
    pub tx_kicks: u64,
    /// Times a refill found no free chunk to give the kernel.
    pub fill_starved: u64,
    /// Kernel: frames dropped for reasons other than a full RX ring / empty fill ring.
    pub rx_dropped: u64,
    /// Kernel: invalid RX descriptors.
    pub rx_invalid_descs: u64,
    /// Kernel: invalid TX descriptors.
    pub tx_invalid_descs: u64,
    /// Kernel: frames dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Kernel: times the fill ring was empty when a frame arrived.
    pub rx_fill_ring_empty: u64,
    /// Kernel: times the TX ring was empty on a kick.
    pub tx_ring_empty: u64,
}

impl XskStats {
    /// Every counter with its field name, in declaration order (for `rvs stats` and the
    /// control socket's `xsk.*` counters).
    pub fn fields(&self) -> [(&'static str, u64); 11] {
        [
            ("rx_packets", self.rx_packets),
            ("tx_packets", self.tx_packets),
            ("tx_ring_full", self.tx_ring_full),
            ("tx_kicks", self.tx_kicks),
            ("fill_starved", self.fill_starved),
            ("rx_dropped", self.rx_dropped),
            ("rx_invalid_descs", self.rx_invalid_descs),
            ("tx_invalid_descs", self.tx_invalid_descs),
            ("rx_ring_full", self.rx_ring_full),
            ("rx_fill_ring_empty", self.rx_fill_ring_empty),
            ("tx_ring_empty", self.tx_ring_empty),
        ]
    }
}

/// Where each chunk is (see [`XskSocket::chunk_accounting`]); the fields always sum to
/// `frame_count`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkAccounting {
    /// In the socket's free pool.
    pub free: u32,
    /// Given to the kernel for receiving (fill ring or RX ring).
    pub fill: u32,
    /// Owned by the application.
    pub app: u32,
    /// Given to the kernel for transmitting (TX ring or awaiting completion).
    pub tx: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    Free,
    Fill,
    App,
    Tx,
    /// Application-owned and already named in the [`XskSocket::bufs`] call being checked;
    /// back to `App` before that call returns, so never seen anywhere else.
    Lent,
}

/// One mmapped AF_XDP ring of `T` (u64 addresses for fill/completion, `xdp_desc` for RX/TX).
///
/// The kernel and we share the producer and consumer indexes: each side writes one of them
/// (Release, after writing/reading the entries) and reads the other (Acquire). `cached_*` are our
/// local copies so most operations need no shared-memory access.
#[derive(Debug)]
struct Ring<T> {
    _map: Mmap,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    desc: *mut T,
    mask: u32,
    size: u32,
    cached_prod: u32,
    cached_cons: u32,
}

impl<T: Copy> Ring<T> {
    fn map(
        fd: BorrowedFd<'_>,
        off: &libc::xdp_ring_offset,
        size: u32,
        pgoff: u64,
    ) -> io::Result<Self> {
        let len =
            usize::try_from(off.desc).map_err(io::Error::other)? + size as usize * size_of::<T>();
        let map = Mmap::shared(fd, len, pgoff)?;
        let base = map.as_ptr();
        let at = |o: u64| -> io::Result<*mut u8> {
            let o = usize::try_from(o).map_err(io::Error::other)?;
            if o + 4 > len {
                return Err(io::Error::other("ring offset outside mapping"));
            }
            // SAFETY: o + 4 <= len, so the result stays inside the mapping.
            Ok(unsafe { base.add(o) })
        };
        let producer = at(off.producer)?.cast::<AtomicU32>();
        let consumer = at(off.consumer)?.cast::<AtomicU32>();
        let flags = at(off.flags)?.cast::<AtomicU32>();
        let desc = at(off.desc)?.cast::<T>();
        let mut ring = Self {
            _map: map,
            producer,
            consumer,
            flags,
            desc,
            mask: size - 1,
            size,
            cached_prod: 0,
            cached_cons: 0,
        };
        ring.cached_prod = ring.prod().load(Ordering::Relaxed);
        ring.cached_cons = ring.cons().load(Ordering::Relaxed);
        Ok(ring)
    }

    fn prod(&self) -> &AtomicU32 {
        // SAFETY: producer points to an aligned u32 inside the live mapping the kernel reported;
        // it is only accessed atomically.
        unsafe { &*self.producer }
    }

    fn cons(&self) -> &AtomicU32 {
        // SAFETY: as for prod().
        unsafe { &*self.consumer }
    }

    fn needs_wakeup(&self) -> bool {
        // SAFETY: as for prod().
        unsafe { &*self.flags }.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    // -- producer side (fill, TX) --

    /// Free slots for the producer, re-reading the consumer index only when needed.
    fn free_slots(&mut self, want: u32) -> u32 {
        let mut free = self.size - self.cached_prod.wrapping_sub(self.cached_cons);
        if free < want {
            self.cached_cons = self.cons().load(Ordering::Acquire);
            free = self.size - self.cached_prod.wrapping_sub(self.cached_cons);
        }
        free
    }

    /// Writes the next entry (the caller checked `free_slots`); visible after `publish`.
    fn push(&mut self, v: T) {
        let i = (self.cached_prod & self.mask) as usize;
        // SAFETY: i < size, and desc has room for size entries inside the mapping. The slot
        // is ours: it lies between the published producer and consumer + size.
        unsafe { self.desc.add(i).write(v) };
        self.cached_prod = self.cached_prod.wrapping_add(1);
    }

    fn publish(&mut self) {
        self.prod().store(self.cached_prod, Ordering::Release);
    }

    fn unpublished(&self) -> bool {
        self.prod().load(Ordering::Relaxed) != self.cached_prod
    }

    // -- consumer side (RX, completion) --

    fn available(&mut self, max: u32) -> u32 {
        let mut n = self.cached_prod.wrapping_sub(self.cached_cons);
        if n == 0 {
            self.cached_prod = self.prod().load(Ordering::Acquire);
            n = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        n.min(max)
    }

    fn read(&self, k: u32) -> T {
        let i = (self.cached_cons.wrapping_add(k) & self.mask) as usize;
        // SAFETY: i < size; the entry lies between our consumer index and the producer index
        // we read with Acquire, so the kernel finished writing it.
        unsafe { self.desc.add(i).read() }
    }

    fn release(&mut self, n: u32) {
        self.cached_cons = self.cached_cons.wrapping_add(n);
        self.cons().store(self.cached_cons, Ordering::Release);
    }

    /// Entries the kernel has not consumed yet (producer side).
    fn pending(&mut self) -> u32 {
        self.cached_cons = self.cons().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }
}

/// An AF_XDP socket bound to one queue of one interface, owning its UMEM. See the module docs.
///
/// Not `Sync`: one worker thread owns it. It may be moved to that thread (`Send`).
#[derive(Debug)]
pub struct XskSocket {
    // Rings before the UMEM and the socket: unmapped first.
    fill: Ring<u64>,
    comp: Ring<u64>,
    rx: Ring<libc::xdp_desc>,
    tx: Ring<libc::xdp_desc>,
    fd: OwnedFd,
    umem: Mmap,
    free: Vec<u64>,
    chunks: Vec<Chunk>,
    frame_size: u32,
    frame_shift: u32,
    /// Offset of data in chunks we hand out for TX (same as the RX layout).
    tx_data_offset: u32,
    need_wakeup: bool,
    mode: BindMode,
    ifindex: u32,
    queue_id: u32,
    stats: XskStats,
}

// SAFETY: the raw pointers point into mappings owned by this value; nothing else (except the
// kernel, through the ring protocol) accesses them, so moving the socket to another thread is
// sound. It is not Sync (methods take &mut self for every ring access).
unsafe impl Send for XskSocket {}

impl XskSocket {
    /// Creates an AF_XDP socket and its UMEM, binds it to `queue_id` of `ifname` (in the calling
    /// thread's network namespace) and fills the fill ring.
    ///
    /// The socket receives nothing until its fd is registered in an XSKMAP of an attached XDP
    /// program ([`crate::xdp::Steering::register_xsk`]).
    ///
    /// # Errors
    /// [`IoError::InvalidArgument`] for a bad config, [`IoError::NoSuchInterface`],
    /// [`IoError::Sys`] from the kernel (`bind` fails with `EOPNOTSUPP` when zero-copy is
    /// required but unsupported, `EBUSY` when the queue already has a socket).
    pub fn open(ifname: &str, queue_id: u32, config: &XskConfig) -> Result<Self, IoError> {
        config.validate()?;
        let ifindex = sys::if_nametoindex(ifname)
            .ok_or_else(|| IoError::NoSuchInterface(ifname.to_owned()))?;
        let fd =
            sys::socket(libc::AF_XDP, libc::SOCK_RAW, 0).map_err(IoError::sys("socket(AF_XDP)"))?;
        let umem_len = config.frame_size as usize * config.frame_count as usize;
        let umem = Mmap::anonymous(umem_len).map_err(IoError::sys("mmap(UMEM)"))?;

        let reg = libc::xdp_umem_reg {
            addr: umem.as_ptr() as u64,
            len: umem_len as u64,
            chunk_size: config.frame_size,
            headroom: config.headroom,
            flags: 0,
            tx_metadata_len: 0,
        };
        let f = fd.as_fd();
        sys::setsockopt(f, libc::SOL_XDP, libc::XDP_UMEM_REG, &reg)
            .map_err(IoError::sys("setsockopt(XDP_UMEM_REG)"))?;
        sys::setsockopt(
            f,
            libc::SOL_XDP,
            libc::XDP_UMEM_FILL_RING,
            &config.fill_size,
        )
        .map_err(IoError::sys("setsockopt(XDP_UMEM_FILL_RING)"))?;
        sys::setsockopt(
            f,
            libc::SOL_XDP,
            libc::XDP_UMEM_COMPLETION_RING,
            &config.comp_size,
        )
        .map_err(IoError::sys("setsockopt(XDP_UMEM_COMPLETION_RING)"))?;
        sys::setsockopt(f, libc::SOL_XDP, libc::XDP_RX_RING, &config.rx_size)
            .map_err(IoError::sys("setsockopt(XDP_RX_RING)"))?;
        sys::setsockopt(f, libc::SOL_XDP, libc::XDP_TX_RING, &config.tx_size)
            .map_err(IoError::sys("setsockopt(XDP_TX_RING)"))?;

        let (off, len) =
            sys::getsockopt::<libc::xdp_mmap_offsets>(f, libc::SOL_XDP, libc::XDP_MMAP_OFFSETS)
                .map_err(IoError::sys("getsockopt(XDP_MMAP_OFFSETS)"))?;
        if len != size_of::<libc::xdp_mmap_offsets>() {
            // Pre-5.4 layout without the flags field: no need_wakeup support.
            return Err(IoError::Unsupported(
                "XDP_MMAP_OFFSETS with ring flags (Linux 5.4)",
            ));
        }
        let fill = Ring::map(f, &off.fr, config.fill_size, libc::XDP_UMEM_PGOFF_FILL_RING)
            .map_err(IoError::sys("mmap(fill ring)"))?;
        let comp = Ring::map(
            f,
            &off.cr,
            config.comp_size,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
        )
        .map_err(IoError::sys("mmap(completion ring)"))?;
        let rx = Ring::map(f, &off.rx, config.rx_size, libc::XDP_PGOFF_RX_RING as u64)
            .map_err(IoError::sys("mmap(rx ring)"))?;
        let tx = Ring::map(f, &off.tx, config.tx_size, libc::XDP_PGOFF_TX_RING as u64)
            .map_err(IoError::sys("mmap(tx ring)"))?;

        let mut flags = match config.zero_copy {
            Some(true) => libc::XDP_ZEROCOPY,
            Some(false) => libc::XDP_COPY,
            None => 0,
        };
        if config.need_wakeup {
            flags |= libc::XDP_USE_NEED_WAKEUP;
        }
        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: flags,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue_id,
            sxdp_shared_umem_fd: 0,
        };
        sys::bind(f, &sa).map_err(IoError::sys("bind(AF_XDP)"))?;

        let (opts, _) = sys::getsockopt::<libc::xdp_options>(f, libc::SOL_XDP, libc::XDP_OPTIONS)
            .map_err(IoError::sys("getsockopt(XDP_OPTIONS)"))?;
        let mode = if opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0 {
            BindMode::ZeroCopy
        } else {
            BindMode::Copy
        };

        let frame_count = config.frame_count;
        let mut sock = Self {
            fill,
            comp,
            rx,
            tx,
            fd,
            umem,
            // Highest addresses at the bottom of the stack: chunk 0 is handed out first.
            free: (0..u64::from(frame_count))
                .rev()
                .map(|i| i * u64::from(config.frame_size))
                .collect(),
            chunks: vec![Chunk::Free; frame_count as usize],
            frame_size: config.frame_size,
            frame_shift: config.frame_size.trailing_zeros(),
            tx_data_offset: XDP_PACKET_HEADROOM + config.headroom,
            need_wakeup: config.need_wakeup,
            mode,
            ifindex,
            queue_id,
            stats: XskStats::default(),
        };
        sock.refill();
        Ok(sock)
    }

    /// The socket's file descriptor (for the XSKMAP and for `poll`).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// How the kernel bound the socket.
    pub fn bind_mode(&self) -> BindMode {
        self.mode
    }

    /// Interface index the socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Queue the socket is bound to.
    pub fn queue_id(&self) -> u32 {
        self.queue_id
    }

    /// Chunk size in bytes.
    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// Waits until frames are ready to receive (or `timeout` passes; `None` waits forever).
    /// Returns whether the socket is readable. Also serves as the RX wakeup for need_wakeup.
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool, IoError> {
        let revents = sys::poll(self.fd.as_fd(), libc::POLLIN, timeout)
            .map_err(IoError::sys("poll(AF_XDP)"))?;
        Ok(revents & libc::POLLIN != 0)
    }

    /// Waits until any of `sockets` has frames to receive (or `timeout` passes); returns one
    /// readiness flag per socket, in order. For a worker serving several interfaces.
    pub fn poll_many(
        sockets: &[&XskSocket],
        timeout: Option<Duration>,
    ) -> Result<Vec<bool>, IoError> {
        let fds: Vec<BorrowedFd<'_>> = sockets.iter().map(|s| s.fd.as_fd()).collect();
        let revents =
            sys::poll_many(&fds, libc::POLLIN, timeout).map_err(IoError::sys("poll(AF_XDP)"))?;
        Ok(revents.into_iter().map(|r| r & libc::POLLIN != 0).collect())
    }

    /// Appends up to `max` received frames to `out` and returns how many. `out` does not
    /// reallocate if it has the capacity. The application now owns these frames.
    pub fn rx_burst(&mut self, out: &mut Vec<Frame>, max: usize) -> usize {
        let n = self.rx.available(u32::try_from(max).unwrap_or(u32::MAX));
        let mut got = 0;
        for k in 0..n {
            let d = self.rx.read(k);
            let frame = Frame {
                addr: d.addr,
                len: d.len,
            };
            match self.chunk_index(&frame) {
                Ok(i) if self.chunks[i] == Chunk::Fill => {
                    self.chunks[i] = Chunk::App;
                    out.push(frame);
                    got += 1;
                }
                // The kernel only returns chunks we gave it; anything else is dropped
                // rather than trusted.
                _ => self.stats.rx_invalid_descs += 1,
            }
        }
        if n > 0 {
            self.rx.release(n);
        } else if self.need_wakeup && self.fill.needs_wakeup() {
            // Zero-copy drivers stop receiving once the fill ring ran dry until woken.
            let _ = sys::xsk_kick_rx(self.fd.as_fd());
        }
        self.stats.rx_packets += got as u64;
        got
    }

    /// The chunk of an application-owned `frame`: `(chunk bytes, data offset in the chunk,
    /// data length)`. The engine may rewrite the data, grow it backwards into the headroom or
    /// forwards to the chunk end, then describe the result with [`Self::reframe`].
    /// `None` if the frame is not application-owned or is out of bounds.
    pub fn buf(&mut self, frame: &Frame) -> Option<(&mut [u8], usize, usize)> {
        let i = self.chunk_index(frame).ok()?;
        if self.chunks[i] != Chunk::App {
            return None;
        }
        let base = (i as u64) << self.frame_shift;
        let off = (frame.addr - base) as usize;
        // SAFETY: chunk_index checked that the chunk lies inside the UMEM mapping; the chunk is
        // owned by the application (the kernel has neither it in a ring nor in flight), and the
        // returned borrow of self prevents another view of it.
        let chunk = unsafe {
            std::slice::from_raw_parts_mut(
                self.umem.as_ptr().add(base as usize),
                self.frame_size as usize,
            )
        };
        Some((chunk, off, frame.len as usize))
    }

    /// The chunks of several application-owned frames at once, for processing a received
    /// burst as one batch: appends `(chunk bytes, data offset in the chunk, data length)` of
    /// each of `frames`, in order, to `out`, as [`Self::buf`] gives them one at a time. The
    /// chunks stay application-owned (nothing changes in [`Self::chunk_accounting`]); the
    /// borrow of the socket ends when `out`'s entries are dropped.
    ///
    /// # Errors
    /// Nothing is appended and nothing changes when a frame is refused:
    /// [`FrameError::OutOfBounds`] for a frame outside the UMEM or its chunk,
    /// [`FrameError::NotOwned`] for a frame the application does not own,
    /// [`FrameError::Duplicate`] for two frames in one chunk.
    pub fn bufs<'a>(
        &'a mut self,
        frames: &[Frame],
        out: &mut Vec<(&'a mut [u8], usize, usize)>,
    ) -> Result<(), FrameError> {
        // Mark each chunk while checking, so a chunk named twice is caught without a scratch
        // set; every mark is undone below, whatever the outcome.
        let mut checked = 0;
        let mut verdict = Ok(());
        for frame in frames {
            match self.chunk_index(frame) {
                Ok(i) if self.chunks[i] == Chunk::App => {
                    self.chunks[i] = Chunk::Lent;
                    checked += 1;
                }
                Ok(i) if self.chunks[i] == Chunk::Lent => {
                    verdict = Err(FrameError::Duplicate);
                    break;
                }
                Ok(_) => {
                    verdict = Err(FrameError::NotOwned);
                    break;
                }
                Err(e) => {
                    verdict = Err(e);
                    break;
                }
            }
        }
        for frame in &frames[..checked] {
            self.chunks[(frame.addr >> self.frame_shift) as usize] = Chunk::App;
        }
        verdict?;
        let umem = self.umem.as_ptr();
        let (shift, size) = (self.frame_shift, self.frame_size as usize);
        out.reserve(frames.len());
        for frame in frames {
            let base = ((frame.addr >> shift) as usize) << shift;
            // SAFETY: chunk_index checked above that this chunk lies inside the UMEM mapping,
            // and its state that the application owns it, so the kernel neither reads nor
            // writes it. The slices cannot alias: each covers exactly one whole chunk, and the
            // marking pass refused any chunk named twice. They cannot alias any other view
            // either: they borrow `self` mutably for 'a, so buf, alloc_tx, tx_push, recycle or
            // another bufs cannot run (nor the chunk change hands) while they live.
            let chunk = unsafe { std::slice::from_raw_parts_mut(umem.add(base), size) };
            out.push((chunk, frame.addr as usize - base, frame.len as usize));
        }
        Ok(())
    }

    /// The packet bytes of an application-owned frame (shorthand for [`Self::buf`]).
    pub fn packet_mut(&mut self, frame: &Frame) -> Option<&mut [u8]> {
        let (chunk, off, len) = self.buf(frame)?;
        chunk.get_mut(off..off + len)
    }

    /// A frame in the same chunk as `frame` whose data starts `offset` bytes into the chunk and
    /// is `len` bytes long (after the engine prepended or trimmed headers).
    pub fn reframe(&self, frame: &Frame, offset: usize, len: usize) -> Result<Frame, FrameError> {
        let i = self.chunk_index(frame)?;
        if offset + len > self.frame_size as usize || len == 0 {
            return Err(FrameError::OutOfBounds);
        }
        Ok(Frame {
            addr: ((i as u64) << self.frame_shift) + offset as u64,
            len: u32::try_from(len).map_err(|_| FrameError::OutOfBounds)?,
        })
    }

    /// Takes a free chunk for a frame built by the application (e.g. copied from another
    /// interface's socket). Returns a frame with `len` 0 whose data would start at the usual
    /// headroom offset, and the writable bytes from there to the chunk end. Set `len` (or use
    /// [`Self::reframe`]) before [`Self::tx_push`]. `None` when the pool is empty (reclaim
    /// completions first).
    pub fn alloc_tx(&mut self) -> Option<(Frame, &mut [u8])> {
        let base = self.free.pop()?;
        let i = (base >> self.frame_shift) as usize;
        self.chunks[i] = Chunk::App;
        let frame = Frame {
            addr: base + u64::from(self.tx_data_offset),
            len: 0,
        };
        let (chunk, off, _) = self.buf(&Frame { len: 1, ..frame })?;
        Some((frame, &mut chunk[off..]))
    }

    /// Queues an application-owned frame for transmission on this socket; it is sent at the
    /// next [`Self::flush_tx`]. On error the application still owns the frame.
    pub fn tx_push(&mut self, frame: Frame) -> Result<(), FrameError> {
        let i = self.chunk_index(&frame)?;
        if self.chunks[i] != Chunk::App {
            return Err(FrameError::NotOwned);
        }
        if frame.len == 0 {
            return Err(FrameError::OutOfBounds);
        }
        if self.tx.free_slots(1) == 0 {
            self.stats.tx_ring_full += 1;
            return Err(FrameError::RingFull);
        }
        self.tx.push(libc::xdp_desc {
            addr: frame.addr,
            len: frame.len,
            options: 0,
        });
        self.chunks[i] = Chunk::Tx;
        self.stats.tx_packets += 1;
        Ok(())
    }

    /// Gives an application-owned frame's chunk back (it returns to the fill ring at the next
    /// [`Self::refill`]).
    pub fn recycle(&mut self, frame: Frame) -> Result<(), FrameError> {
        let i = self.chunk_index(&frame)?;
        if self.chunks[i] != Chunk::App {
            return Err(FrameError::NotOwned);
        }
        self.chunks[i] = Chunk::Free;
        self.free.push((i as u64) << self.frame_shift);
        Ok(())
    }

    /// Publishes queued TX frames to the kernel and kicks it when it asks to be (or always,
    /// without need_wakeup). In copy mode one kick sends a limited batch (32 frames), so this
    /// kicks until the ring is drained or the kernel stops making progress, reclaiming
    /// completions in between.
    pub fn flush_tx(&mut self) -> Result<(), IoError> {
        if self.tx.unpublished() {
            self.tx.publish();
        }
        // Every round either sends something or reclaims completions, both bounded by the
        // number of chunks, so this ends.
        loop {
            let pending = self.tx.pending();
            if pending == 0 || (self.need_wakeup && !self.tx.needs_wakeup()) {
                return Ok(());
            }
            self.stats.tx_kicks += 1;
            let mut reclaimed = 0;
            match sys::xsk_kick_tx(self.fd.as_fd()) {
                Ok(()) => {}
                // Transient: copy-mode batch budget used up, completion ring full, or driver
                // busy; the frames stay queued.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN)
                    ) =>
                {
                    reclaimed = self.reclaim_completions();
                }
                Err(e) => {
                    return Err(IoError::Sys {
                        op: "sendto(AF_XDP kick)",
                        source: e,
                    });
                }
            }
            if self.tx.pending() >= pending && reclaimed == 0 {
                // No progress (zero-copy drivers send asynchronously; or the link is down).
                return Ok(());
            }
        }
    }

    /// Returns transmitted chunks (completion ring) to the free pool; returns how many.
    pub fn reclaim_completions(&mut self) -> usize {
        let n = self.comp.available(self.comp.size);
        for k in 0..n {
            let addr = self.comp.read(k);
            let i = (addr >> self.frame_shift) as usize;
            if self.chunks.get(i) == Some(&Chunk::Tx) {
                self.chunks[i] = Chunk::Free;
                self.free.push((i as u64) << self.frame_shift);
            } else {
                self.stats.tx_invalid_descs += 1;
            }
        }
        if n > 0 {
            self.comp.release(n);
        }
        n as usize
    }

    /// Moves free chunks into the fill ring so the kernel can receive into them, keeping a
    /// quarter of the UMEM in the free pool for [`Self::alloc_tx`]. Returns how many were given.
    pub fn refill(&mut self) -> usize {
        let keep = self.frame_count() / 4;
        let spare = (self.free.len() as u32).saturating_sub(keep);
        if spare == 0 {
            if self.fill.free_slots(1) > 0 {
                self.stats.fill_starved += 1;
            }
            return 0;
        }
        let n = self.fill.free_slots(spare).min(spare);
        for _ in 0..n {
            let Some(base) = self.free.pop() else { break };
            self.chunks[(base >> self.frame_shift) as usize] = Chunk::Fill;
            self.fill.push(base);
        }
        if n > 0 {
            self.fill.publish();
            if self.need_wakeup && self.fill.needs_wakeup() {
                let _ = sys::xsk_kick_rx(self.fd.as_fd());
            }
        }
        n as usize
    }

    /// Where every chunk is. The fields always sum to the UMEM's frame count.
    pub fn chunk_accounting(&self) -> ChunkAccounting {
        let mut a = ChunkAccounting::default();
        for c in &self.chunks {
            match c {
                Chunk::Free => a.free += 1,
                Chunk::Fill => a.fill += 1,
                Chunk::App | Chunk::Lent => a.app += 1,
                Chunk::Tx => a.tx += 1,
            }
        }
        a
    }

    /// Counters (software and kernel).
    pub fn stats(&self) -> Result<XskStats, IoError> {
        let (k, _) = sys::getsockopt::<libc::xdp_statistics>(
            self.fd.as_fd(),
            libc::SOL_XDP,
            libc::XDP_STATISTICS,
        )
        .map_err(IoError::sys("getsockopt(XDP_STATISTICS)"))?;
        Ok(XskStats {
            rx_dropped: k.rx_dropped,
            rx_invalid_descs: k.rx_invalid_descs + self.stats.rx_invalid_descs,
            tx_invalid_descs: k.tx_invalid_descs + self.stats.tx_invalid_descs,
            rx_ring_full: k.rx_ring_full,
            rx_fill_ring_empty: k.rx_fill_ring_empty_descs,
            tx_ring_empty: k.tx_ring_empty_descs,
            ..self.stats
        })
    }

    fn frame_count(&self) -> u32 {
        self.chunks.len() as u32
    }

    /// Index of the chunk holding `frame`, checking that the data lies inside it.
    fn chunk_index(&self, frame: &Frame) -> Result<usize, FrameError> {
        let i = (frame.addr >> self.frame_shift) as usize;
        if i >= self.chunks.len() {
            return Err(FrameError::OutOfBounds);
        }
        let off = frame.addr & u64::from(self.frame_size - 1);
        if off + u64::from(frame.len) > u64::from(self.frame_size)
            || self.umem.len() < (i + 1) * self.frame_size as usize
        {
            return Err(FrameError::OutOfBounds);
        }
        Ok(i)
    }
}

impl AsFd for XskSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for XskSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_fields_name_every_counter_once() {
        let s = XskStats {
            rx_packets: 1,
            tx_packets: 2,
            tx_ring_full: 3,
            tx_kicks: 4,
            fill_starved: 5,
            rx_dropped: 6,
            rx_invalid_descs: 7,
            tx_invalid_descs: 8,
            rx_ring_full: 9,
            rx_fill_ring_empty: 10,
            tx_ring_empty: 11,
        };
        let f = s.fields();
        let values: Vec<u64> = f.iter().map(|(_, v)| *v).collect();
        assert_eq!(
            values,
            (1..=11).collect::<Vec<u64>>(),
            "every field, in order"
        );
        let names: std::collections::HashSet<_> = f.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), 11);
        assert_eq!(f[8], ("rx_ring_full", 9));
    }

    #[test]
    fn config_validation() {
        assert!(XskConfig::default().validate().is_ok());
        let bad = XskConfig {
            frame_size: 3000,
            ..XskConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = XskConfig {
            rx_size: 1000,
            ..XskConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = XskConfig {
            headroom: 1800,
            ..XskConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
