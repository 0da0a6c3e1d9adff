//! Thin, checked wrappers over the raw system calls rvs-io makes itself (aya makes its own).
//!
//! Every `unsafe` libc call of the crate that is not about mapped ring memory lives here, so the
//! rest of the crate deals in `OwnedFd`s, slices and `io::Result`s.

use std::ffi::CString;
use std::io;
use std::mem::{MaybeUninit, size_of};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Plain old data: every bit pattern is a valid value and there are no pointers or references,
/// so the kernel may fill it and we may hand its bytes to the kernel.
///
/// # Safety
///
/// Implement only for `#[repr(C)]` integer-only structs (and integers).
pub(crate) unsafe trait Plain: Copy {}

// SAFETY: integers are valid for every bit pattern.
unsafe impl Plain for u32 {}
// SAFETY: integers are valid for every bit pattern.
unsafe impl Plain for i32 {}
// SAFETY: repr(C) struct of integers (linux/if_xdp.h).
unsafe impl Plain for libc::xdp_umem_reg {}
// SAFETY: repr(C) struct of integers (linux/if_xdp.h).
unsafe impl Plain for libc::xdp_mmap_offsets {}
// SAFETY: repr(C) struct of integers (linux/if_xdp.h).
unsafe impl Plain for libc::xdp_statistics {}
// SAFETY: repr(C) struct of integers (linux/if_xdp.h).
unsafe impl Plain for libc::xdp_options {}
// SAFETY: repr(C) struct of integers (linux/if_xdp.h).
unsafe impl Plain for libc::sockaddr_xdp {}
// SAFETY: repr(C) struct of integers (linux/netlink.h).
unsafe impl Plain for libc::sockaddr_nl {}
// SAFETY: repr(C) struct of integers (linux/if_packet.h).
unsafe impl Plain for libc::sockaddr_ll {}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret.unsigned_abs())
    }
}

/// `socket(2)` with `SOCK_CLOEXEC`.
pub(crate) fn socket(
    domain: libc::c_int,
    ty: libc::c_int,
    proto: libc::c_int,
) -> io::Result<OwnedFd> {
    // SAFETY: socket() takes no pointers; the returned fd is fresh and owned by nobody else.
    let fd = cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) })?;
    // SAFETY: fd was just returned by socket() and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt(2)` with a plain value.
pub(crate) fn setsockopt<T: Plain>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    let len = socklen::<T>();
    // SAFETY: value points to a live T of exactly len bytes, which the kernel only reads.
    cvt(unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (value as *const T).cast(), len) })?;
    Ok(())
}

/// `getsockopt(2)` into a plain value; returns the value and the length the kernel wrote.
pub(crate) fn getsockopt<T: Plain>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<(T, usize)> {
    let mut value = MaybeUninit::<T>::zeroed();
    let mut len = socklen::<T>();
    // SAFETY: value is a writable buffer of len bytes; the kernel writes at most len bytes and
    // updates len.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value.as_mut_ptr().cast(),
            &mut len,
        )
    })?;
    // SAFETY: the buffer was zeroed and T is Plain, so every bit pattern (zero or written by the
    // kernel) is a valid T.
    Ok((unsafe { value.assume_init() }, len as usize))
}

/// `bind(2)` to a plain socket address.
pub(crate) fn bind<T: Plain>(fd: BorrowedFd<'_>, addr: &T) -> io::Result<()> {
    // SAFETY: addr points to a live sockaddr of exactly the given length; the kernel only reads it.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), (addr as *const T).cast(), socklen::<T>()) })?;
    Ok(())
}

/// `sendto(2)` of a buffer to a plain socket address (or connected, if `addr` is `None`).
pub(crate) fn sendto<T: Plain>(
    fd: BorrowedFd<'_>,
    buf: &[u8],
    flags: libc::c_int,
    addr: Option<&T>,
) -> io::Result<usize> {
    let (ptr, len) = match addr {
        Some(a) => ((a as *const T).cast::<libc::sockaddr>(), socklen::<T>()),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: buf is a live readable slice; ptr/len describe a live sockaddr or are null/0.
    cvt_size(unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            flags,
            ptr,
            len,
        )
    })
}

/// `recv(2)` into a buffer.
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: buf is a live writable slice of buf.len() bytes.
    cvt_size(unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags) })
}

/// Wakes the kernel side of an AF_XDP socket: `sendto(fd, NULL, 0, MSG_DONTWAIT)`.
pub(crate) fn xsk_kick_tx(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: a zero-length send with null buffer and address is what AF_XDP documents for a
    // TX wakeup; the kernel reads no memory.
    cvt_size(unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    })?;
    Ok(())
}

/// Wakes the RX side of an AF_XDP socket (fill ring): `recvfrom(fd, NULL, 0, MSG_DONTWAIT)`.
pub(crate) fn xsk_kick_rx(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: a zero-length receive with null buffer and address; the kernel writes no memory.
    cvt_size(unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            std::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    })?;
    Ok(())
}

/// `poll(2)` on one fd; returns the revents (0 on timeout). `None` waits forever.
pub(crate) fn poll(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    timeout: Option<Duration>,
) -> io::Result<libc::c_short> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    let ms = match timeout {
        None => -1,
        Some(d) => libc::c_int::try_from(d.as_millis()).unwrap_or(libc::c_int::MAX),
    };
    loop {
        // SAFETY: pfd is one live pollfd, and nfds is 1.
        match cvt(unsafe { libc::poll(&mut pfd, 1, ms) }) {
            Ok(0) => return Ok(0),
            Ok(_) => return Ok(pfd.revents),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `poll(2)` on several descriptors for `events`; returns each one's `revents`.
pub(crate) fn poll_many(
    fds: &[BorrowedFd<'_>],
    events: libc::c_short,
    timeout: Option<Duration>,
) -> io::Result<Vec<libc::c_short>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        })
        .collect();
    let ms = match timeout {
        None => -1,
        Some(d) => libc::c_int::try_from(d.as_millis()).unwrap_or(libc::c_int::MAX),
    };
    let n = libc::nfds_t::try_from(pfds.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    loop {
        // SAFETY: pfds holds n initialised pollfd entries that outlive the call, and the
        // descriptors are borrowed (open) for its duration.
        match cvt(unsafe { libc::poll(pfds.as_mut_ptr(), n, ms) }) {
            Ok(_) => return Ok(pfds.iter().map(|p| p.revents).collect()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// An anonymous or file-backed shared mapping, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mmap {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

impl Mmap {
    /// Private anonymous memory, pre-faulted (UMEM).
    pub(crate) fn anonymous(len: usize) -> io::Result<Self> {
        Self::map(
            len,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    }

    /// A shared mapping of `fd` at `offset` (AF_XDP rings).
    pub(crate) fn shared(fd: BorrowedFd<'_>, len: usize, offset: u64) -> io::Result<Self> {
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "mmap offset too large"))?;
        Self::map(
            len,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd.as_raw_fd(),
            off,
        )
    }

    fn map(len: usize, flags: libc::c_int, fd: RawFd, off: libc::off_t) -> io::Result<Self> {
        // SAFETY: a fresh mapping chosen by the kernel (addr NULL) cannot alias existing Rust
        // memory; the result is checked against MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                off,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = std::ptr::NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        Ok(Self { ptr, len })
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe a mapping this value created and nothing else unmaps; no
        // references into it outlive self (owners borrow from self).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// SAFETY: the mapping is plain memory owned by this value; moving it between threads is fine.
unsafe impl Send for Mmap {}

/// `if_nametoindex(3)`; `None` when the interface does not exist (in the calling thread's netns).
pub(crate) fn if_nametoindex(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: c is a valid NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (idx != 0).then_some(idx)
}

/// `setns(2)` of the calling thread into the namespace referred to by `fd`.
pub(crate) fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: setns takes an fd and a flag; it touches no memory of ours.
    cvt(unsafe { libc::setns(fd.as_raw_fd(), nstype) })?;
    Ok(())
}

/// `bpf(BPF_LINK_CREATE)` for an XDP program on an interface; returns the link fd.
///
/// A bpf_link (unlike the older netlink attachment) belongs to its fd: when the last fd closes,
/// including when the process dies, the kernel detaches the program.
pub(crate) fn bpf_link_create_xdp(
    prog_fd: BorrowedFd<'_>,
    ifindex: u32,
    flags: u32,
) -> io::Result<OwnedFd> {
    /// The `link_create` member of `union bpf_attr` (linux/bpf.h), padded with zeroes, which
    /// the kernel requires for the fields it knows and we do not set.
    #[repr(C)]
    struct LinkCreate {
        prog_fd: u32,
        target_ifindex: u32,
        attach_type: u32,
        flags: u32,
        rest: [u64; 8],
    }
    const BPF_LINK_CREATE: libc::c_long = 28;
    const BPF_XDP: u32 = 37;
    let attr = LinkCreate {
        prog_fd: u32::try_from(prog_fd.as_raw_fd())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "negative fd"))?,
        target_ifindex: ifindex,
        attach_type: BPF_XDP,
        flags,
        rest: [0; 8],
    };
    // SAFETY: attr is a live, fully initialised bpf_attr prefix of the size we pass; the kernel
    // only reads it. The return value is checked before being wrapped.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_LINK_CREATE,
            &attr as *const LinkCreate,
            size_of::<LinkCreate>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(ret).map_err(|_| io::Error::other("bpf returned a bad fd"))?;
    // SAFETY: fd was just returned by the kernel for us and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn socklen<T>() -> libc::socklen_t {
    // Sizes of the option and address structs used here are tiny; this cannot truncate.
    libc::socklen_t::try_from(size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
}

/// `struct xdp_md` (linux/bpf.h): the context of a `BPF_PROG_TEST_RUN` of an XDP program.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct XdpMd {
    data: u32,
    data_end: u32,
    data_meta: u32,
    ingress_ifindex: u32,
    rx_queue_index: u32,
    egress_ifindex: u32,
}

/// The `test` member of `union bpf_attr` (linux/bpf.h).
#[repr(C)]
#[derive(Debug)]
struct TestRun {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

const BPF_PROG_TEST_RUN: libc::c_long = 10;

fn fd_u32(fd: BorrowedFd<'_>) -> io::Result<u32> {
    u32::try_from(fd.as_raw_fd())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "negative fd"))
}

fn len_u32(len: usize) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))
}

/// Issues `bpf(BPF_PROG_TEST_RUN)` with `attr`, whose pointers the caller keeps alive.
fn test_run(attr: &mut TestRun) -> io::Result<()> {
    // SAFETY: attr is a live, fully initialised bpf_attr prefix of the size we pass; every
    // pointer in it (data_in/data_out/ctx_in, set by the callers) refers to a buffer of the
    // stated size that outlives the call. The kernel writes retval/data_size_out/duration in
    // attr and at most data_size_out bytes to data_out.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            attr as *mut TestRun,
            size_of::<TestRun>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `bpf(BPF_PROG_TEST_RUN)` of an XDP program on one frame: returns the program's return value
/// and the frame as the program left it (written into `out`, whose used length is returned).
///
/// With `rx = Some((ifindex, queue))` the frame is received on that interface (resolved in the
/// calling thread's network namespace) and queue, as `ctx->ingress_ifindex` and
/// `ctx->rx_queue_index` show; otherwise it arrives on the loopback device, queue 0.
pub(crate) fn bpf_prog_test_run_xdp(
    prog_fd: BorrowedFd<'_>,
    frame: &[u8],
    out: &mut [u8],
    rx: Option<(u32, u32)>,
) -> io::Result<(u32, usize)> {
    let ctx = rx.map(|(ifindex, queue)| XdpMd {
        data_end: u32::try_from(frame.len()).unwrap_or(u32::MAX),
        ingress_ifindex: ifindex,
        rx_queue_index: queue,
        ..XdpMd::default()
    });
    let mut attr = TestRun {
        prog_fd: fd_u32(prog_fd)?,
        retval: 0,
        data_size_in: len_u32(frame.len())?,
        data_size_out: len_u32(out.len())?,
        data_in: frame.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat: 1,
        duration: 0,
        ctx_size_in: if ctx.is_some() {
            size_of::<XdpMd>() as u32
        } else {
            0
        },
        ctx_size_out: 0,
        ctx_in: ctx.as_ref().map_or(0, |c| c as *const XdpMd as u64),
        ctx_out: 0,
        flags: 0,
        cpu: 0,
        batch_size: 0,
        _pad: 0,
    };
    test_run(&mut attr)?;
    Ok((attr.retval, (attr.data_size_out as usize).min(out.len())))
}

/// `bpf(BPF_PROG_RUN)` of an XDP program in live-frames mode (`BPF_F_TEST_XDP_LIVE_FRAMES`):
/// runs it `repeat` times on copies of `frame` as if received on `ifindex` (calling thread's
/// namespace), and the kernel carries out each verdict (XDP_TX transmits out of `ifindex`).
pub(crate) fn bpf_prog_run_xdp_live(
    prog_fd: BorrowedFd<'_>,
    frame: &[u8],
    ifindex: u32,
    repeat: u32,
    batch_size: u32,
) -> io::Result<()> {
    const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;
    let ctx = XdpMd {
        data_end: len_u32(frame.len())?,
        ingress_ifindex: ifindex,
        ..XdpMd::default()
    };
    let mut attr = TestRun {
        prog_fd: fd_u32(prog_fd)?,
        retval: 0,
        data_size_in: len_u32(frame.len())?,
        data_size_out: 0,
        data_in: frame.as_ptr() as u64,
        data_out: 0,
        repeat,
        duration: 0,
        ctx_size_in: size_of::<XdpMd>() as u32,
        ctx_size_out: 0,
        ctx_in: &ctx as *const XdpMd as u64,
        ctx_out: 0,
        flags: BPF_F_TEST_XDP_LIVE_FRAMES,
        cpu: 0,
        batch_size,
        _pad: 0,
    };
    test_run(&mut attr)
}

/// `bpf(BPF_MAP_LOOKUP_BATCH)` on an array-like map (u32 keys): copies up to `count` entries
/// starting after index `*token` (from the first one when `token` is `None`) into `keys` and
/// `values`, and leaves in `*next` the token for the following call. Returns how many entries
/// were copied and whether the end of the map was reached.
///
/// `keys` must hold `count` keys and `values` `count` values of the map's value size (per-CPU
/// maps: rounded up to 8 bytes, times the number of possible CPUs).
pub(crate) fn bpf_map_lookup_batch_u32(
    map_fd: BorrowedFd<'_>,
    token: Option<u32>,
    next: &mut u32,
    keys: &mut [u32],
    values: &mut [u8],
    count: u32,
) -> io::Result<(u32, bool)> {
    /// The `batch` member of `union bpf_attr` (linux/bpf.h).
    #[repr(C)]
    struct Batch {
        in_batch: u64,
        out_batch: u64,
        keys: u64,
        values: u64,
        count: u32,
        map_fd: u32,
        elem_flags: u64,
        flags: u64,
    }
    const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
    if keys.len() < count as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "keys buffer too small",
        ));
    }
    let token_in = token.unwrap_or(0);
    let mut attr = Batch {
        in_batch: if token.is_some() {
            &token_in as *const u32 as u64
        } else {
            0
        },
        out_batch: next as *mut u32 as u64,
        keys: keys.as_mut_ptr() as u64,
        values: values.as_mut_ptr() as u64,
        count,
        map_fd: fd_u32(map_fd)?,
        elem_flags: 0,
        flags: 0,
    };
    // SAFETY: attr is a live, fully initialised bpf_attr prefix; in_batch (if set) points to a
    // u32 token and out_batch to a writable u32, keys to `count` writable u32s (checked above),
    // values to a buffer the caller sized for `count` values of this map (documented contract;
    // the kernel writes exactly that much at most). All outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_LOOKUP_BATCH,
            &mut attr as *mut Batch,
            size_of::<Batch>(),
        )
    };
    if ret < 0 {
        let e = io::Error::last_os_error();
        // ENOENT: the end of the map; `count` says how many were copied before it.
        if e.raw_os_error() == Some(libc::ENOENT) {
            return Ok((attr.count, true));
        }
        return Err(e);
    }
    Ok((attr.count, false))
}

/// `clock_gettime(CLOCK_MONOTONIC)` in nanoseconds: the clock of `bpf_ktime_get_ns()`.
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a live, writable timespec; CLOCK_MONOTONIC always exists on Linux, so the
    // call cannot fail (and ts stays zeroed if it somehow did).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}
