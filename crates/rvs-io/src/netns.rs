//! Running code inside a named network namespace (`ip netns` style, `/run/netns/NAME`).
//!
//! `setns(2)` changes the network namespace of the **calling thread only**: other threads of the
//! process, including ones spawned earlier, stay where they are, while threads spawned afterwards
//! inherit the new namespace. Sockets (netlink, AF_XDP, UDP, ...) stay in the namespace they were
//! created in for their whole life, whichever thread later uses them; interface names and
//! indexes, `/proc/sys/net` and XDP attachment are resolved in the namespace of the thread making
//! the call. So: enter, create what you need, leave.
//!
//! ```no_run
//! # fn main() -> Result<(), rvs_io::IoError> {
//! let link = rvs_io::netns::run_in("rvs-lab-director", || {
//!     rvs_io::netlink::Netlink::open()?.link_by_name("eth0")
//! })??;
//! # Ok(()) }
//! ```

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::IoError;
use crate::sys;

/// Where `ip netns` keeps named namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// The file for a namespace name (`/run/netns/NAME`); an absolute path is taken as is
/// (e.g. `/proc/1234/ns/net`).
pub fn path(name: &str) -> PathBuf {
    if name.starts_with('/') {
        PathBuf::from(name)
    } else {
        Path::new(NETNS_RUN_DIR).join(name)
    }
}

/// Moves the calling thread into a namespace until the guard is dropped, which moves it back.
#[derive(Debug)]
#[must_use = "dropping the guard returns the thread to its previous namespace"]
pub struct NetnsGuard {
    prev: OwnedFd,
}

/// Enters the namespace `name` on the calling thread. See the module docs.
pub fn enter(name: &str) -> Result<NetnsGuard, IoError> {
    let err = |source| IoError::Netns {
        name: name.to_owned(),
        source,
    };
    let prev: OwnedFd = File::open("/proc/thread-self/ns/net").map_err(err)?.into();
    let target = File::open(path(name)).map_err(err)?;
    sys::setns(target.as_fd(), libc::CLONE_NEWNET).map_err(err)?;
    Ok(NetnsGuard { prev })
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        // Returning to a namespace we were in moments ago only fails if the kernel is out of
        // memory; continuing in the wrong namespace would silently misconfigure the host.
        if let Err(e) = sys::setns(self.prev.as_fd(), libc::CLONE_NEWNET)
            && !std::thread::panicking()
        {
            panic!("cannot return to the previous network namespace: {e}");
        }
    }
}

/// Runs `f` on the calling thread inside namespace `name`, then returns to the current one.
pub fn run_in<T>(name: &str, f: impl FnOnce() -> T) -> Result<T, IoError> {
    let _guard = enter(name)?;
    Ok(f())
}

/// Spawns a thread that lives in namespace `name` and runs `f` there.
pub fn spawn_in<T, F>(name: &str, f: F) -> std::thread::JoinHandle<Result<T, IoError>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let name = name.to_owned();
    std::thread::spawn(move || {
        let target = File::open(path(&name)).map_err(|source| IoError::Netns {
            name: name.clone(),
            source,
        })?;
        sys::setns(target.as_fd(), libc::CLONE_NEWNET)
            .map_err(|source| IoError::Netns { name, source })?;
        Ok(f())
    })
}

/// An identifier of the calling thread's network namespace (the nsfs inode number), to tell
/// namespaces apart.
pub fn current_id() -> Result<u64, IoError> {
    std::fs::metadata("/proc/thread-self/ns/net")
        .map(|m| m.ino())
        .map_err(|source| IoError::Netns {
            name: "/proc/thread-self/ns/net".to_owned(),
            source,
        })
}

/// The calling thread's network namespace as an open file, to come back to it later with
/// [`enter_file`] (interfaces and their indexes belong to a namespace).
pub(crate) fn current_file() -> Result<File, IoError> {
    File::open("/proc/thread-self/ns/net").map_err(|source| IoError::Netns {
        name: "/proc/thread-self/ns/net".to_owned(),
        source,
    })
}

/// Moves the calling thread into the namespace `ns` (from [`current_file`]) until the guard
/// drops, or returns `None` when the thread is already there.
pub(crate) fn enter_file(ns: &File) -> Result<Option<NetnsGuard>, IoError> {
    let err = |source| IoError::Netns {
        name: "/proc/thread-self/ns/net".to_owned(),
        source,
    };
    let here = std::fs::metadata("/proc/thread-self/ns/net").map_err(err)?;
    let there = ns.metadata().map_err(err)?;
    if (here.dev(), here.ino()) == (there.dev(), there.ino()) {
        return Ok(None);
    }
    let prev: OwnedFd = current_file()?.into();
    sys::setns(ns.as_fd(), libc::CLONE_NEWNET).map_err(err)?;
    Ok(Some(NetnsGuard { prev }))
}
