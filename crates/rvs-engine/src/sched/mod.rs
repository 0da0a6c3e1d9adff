//! The IPVS schedulers, with the kernel's exact selection rules and tie-breaking.
//!
//! A [`Scheduler`] is bound to one virtual service. The engine calls, in this order:
//! 1. [`Scheduler::new`] when the service is created or its scheduler changes (`init_service`);
//! 2. [`Scheduler::add_dest`] / [`Scheduler::del_dest`] / [`Scheduler::upd_dest`] after every change
//!    of the service's real-server list or of a real server's weight (`add_dest`/`del_dest`/`upd_dest`);
//! 3. [`Scheduler::schedule`] for every new connection that is not served by a persistence template;
//! 4. [`Scheduler::gc`] periodically (lblc/lblcr table expiry); [`Scheduler::poll_timeout`] says when.
//!
//! Schedulers never change connection counts or flags: they read the [`DestList`] and return the
//! chosen [`DestId`]; the engine binds the connection.
//!
//! (Implementation in progress: see the per-scheduler modules.)

use std::net::IpAddr;
use std::str::FromStr;

use crate::dest::{DestId, DestList};

/// The scheduler algorithms IPVS offers (`-s NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchedulerKind {
    /// `rr`: round robin.
    Rr,
    /// `wrr`: weighted round robin.
    Wrr,
    /// `lc`: least connection.
    Lc,
    /// `wlc`: weighted least connection (default).
    Wlc,
    /// `sed`: shortest expected delay.
    Sed,
    /// `nq`: never queue.
    Nq,
    /// `dh`: destination hashing.
    Dh,
    /// `sh`: source hashing.
    Sh,
    /// `lblc`: locality-based least connection.
    Lblc,
    /// `lblcr`: lblc with replication.
    Lblcr,
    /// `mh`: Maglev hashing.
    Mh,
    /// `fo`: weighted failover.
    Fo,
    /// `ovf`: weighted overflow.
    Ovf,
    /// `twos`: power of two choices.
    Twos,
    /// `none`: no scheduler bound; every new connection finds no destination.
    None,
}

impl SchedulerKind {
    /// Every kind, in ipvsadm's help order followed by `twos` and `none`.
    pub const ALL: [Self; 15] = [
        Self::Rr,
        Self::Wrr,
        Self::Lc,
        Self::Wlc,
        Self::Lblc,
        Self::Lblcr,
        Self::Dh,
        Self::Sh,
        Self::Sed,
        Self::Nq,
        Self::Fo,
        Self::Ovf,
        Self::Mh,
        Self::Twos,
        Self::None,
    ];

    /// The name used by ipvsadm and keepalived (`lb_algo`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rr => "rr",
            Self::Wrr => "wrr",
            Self::Lc => "lc",
            Self::Wlc => "wlc",
            Self::Sed => "sed",
            Self::Nq => "nq",
            Self::Dh => "dh",
            Self::Sh => "sh",
            Self::Lblc => "lblc",
            Self::Lblcr => "lblcr",
            Self::Mh => "mh",
            Self::Fo => "fo",
            Self::Ovf => "ovf",
            Self::Twos => "twos",
            Self::None => "none",
        }
    }
}

impl FromStr for SchedulerKind {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|k| k.name() == s).ok_or(())
    }
}

/// What a scheduler may look at in the packet that opens a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedInput {
    /// Client address (source of the packet).
    pub caddr: IpAddr,
    /// Client port (0 when the protocol has no ports).
    pub cport: u16,
    /// Packet destination address (the VIP; lblc/lblcr/dh key on it).
    pub daddr: IpAddr,
    /// Engine time in milliseconds (lblc/lblcr last-use stamps).
    pub now_ms: u64,
    /// Uniform random bits from the engine's seeded generator (twos).
    pub random: u64,
}

/// Why a scheduler cannot be bound to a service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchedError {
    /// The service has more real servers than the Maglev table has slots (EINVAL in IPVS).
    #[error("mh: {dests} real servers exceed the lookup table size {size}")]
    TooManyDests {
        /// Real servers in the service.
        dests: usize,
        /// Table size.
        size: usize,
    },
}

/// Tunables the lblc/lblcr garbage collector reads (the `lblc_expiration`/`lblcr_expiration` sysctls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedTunables {
    /// lblc entry expiry, milliseconds (default 24 h).
    pub lblc_expiration_ms: u64,
    /// lblcr entry/set expiry, milliseconds (default 24 h).
    pub lblcr_expiration_ms: u64,
}

impl Default for SchedTunables {
    fn default() -> Self {
        Self { lblc_expiration_ms: 86_400_000, lblcr_expiration_ms: 86_400_000 }
    }
}

/// A scheduler bound to one service. (Being implemented.)
#[derive(Debug, Clone)]
pub struct Scheduler {
    kind: SchedulerKind,
    flags: u32,
}

impl Scheduler {
    /// Binds `kind` to a service with service flags `flags` (SCHED1/SCHED2 select sh/mh options)
    /// and current real servers `dests`.
    pub fn new(kind: SchedulerKind, flags: u32, dests: DestList<'_>) -> Result<Self, SchedError> {
        let _ = dests;
        Ok(Self { kind, flags })
    }

    /// The algorithm.
    pub const fn kind(&self) -> SchedulerKind {
        self.kind
    }

    /// The service flags it was bound with.
    pub const fn flags(&self) -> u32 {
        self.flags
    }

    /// `id` was just inserted at the head of `dests`.
    pub fn add_dest(&mut self, dests: DestList<'_>, id: DestId) {
        let _ = (dests, id);
    }

    /// `id` is being removed: `before` still contains it, `after` does not.
    pub fn del_dest(&mut self, before: DestList<'_>, after: DestList<'_>, id: DestId) {
        let _ = (before, after, id);
    }

    /// The weight (or thresholds) of `id` changed in place.
    pub fn upd_dest(&mut self, dests: DestList<'_>, id: DestId) {
        let _ = (dests, id);
    }

    /// Picks a real server for a new connection, or `None` ("no destination available").
    pub fn schedule(&mut self, dests: DestList<'_>, input: &SchedInput) -> Option<DestId> {
        let _ = input;
        dests.iter().find(|(_, d)| d.is_schedulable()).map(|(id, _)| id)
    }

    /// Expires lblc/lblcr entries.
    pub fn gc(&mut self, now_ms: u64, tunables: &SchedTunables) {
        let _ = (now_ms, tunables);
    }

    /// When [`Scheduler::gc`] wants to run next, if ever.
    pub fn poll_timeout(&self) -> Option<u64> {
        None
    }
}
