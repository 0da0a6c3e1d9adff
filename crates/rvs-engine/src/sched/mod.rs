//! The IPVS schedulers, with the kernel's exact selection rules and tie-breaking.
//!
//! A [`Scheduler`] is bound to one virtual service. The engine calls, in this order:
//! 1. [`Scheduler::new`] when the service is created or its scheduler changes (`init_service`);
//! 2. [`Scheduler::add_dest`] / [`Scheduler::del_dest`] / [`Scheduler::upd_dest`] after every change
//!    of the service's real-server list or of a real server's weight (`add_dest`/`del_dest`/`upd_dest`);
//! 3. [`Scheduler::note_load`] after every change of a real server's connection counts or
//!    OVERLOAD flag;
//! 4. [`Scheduler::schedule`] for every new connection that is not served by a persistence template;
//! 5. [`Scheduler::gc`] periodically (lblc/lblcr table expiry); [`Scheduler::poll_timeout`] says when.
//!
//! Schedulers never change connection counts or flags: they read the [`DestList`] and return the
//! chosen [`DestId`]; the engine binds the connection. Every scheduler skips real servers with
//! weight 0 or the OVERLOAD flag for new choices (lblc keeps using a cached server whatever its
//! OVERLOAD flag, as the kernel does). Ties go to the earlier server in list order, i.e. the
//! most recently added.
//!
//! After [`Scheduler::del_dest`] returns, the scheduler holds no [`DestId`] of the deleted
//! server, so the engine may free its arena slot once connections are gone.

use std::net::IpAddr;
use std::str::FromStr;

use crate::dest::{DestId, DestList};

mod dh;
mod fo;
mod hash;
mod lblc;
mod lblcr;
mod lc;
mod least;
mod mh;
mod rr;
mod sh;
#[cfg(test)]
mod testutil;
mod twos;
mod wrr;

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
        Self {
            lblc_expiration_ms: 86_400_000,
            lblcr_expiration_ms: 86_400_000,
        }
    }
}

/// Per-algorithm state.
#[derive(Debug, Clone)]
enum State {
    None,
    Rr(rr::Rr),
    Wrr(wrr::Wrr),
    Lc,
    Wlc(least::LeastIndex),
    Sed(least::LeastIndex),
    Nq,
    Fo,
    Ovf,
    Twos,
    Dh(dh::Dh),
    Sh(sh::Sh),
    Lblc(lblc::Lblc),
    Lblcr(lblcr::Lblcr),
    Mh(mh::Mh),
}

/// A scheduler bound to one service.
#[derive(Debug, Clone)]
pub struct Scheduler {
    kind: SchedulerKind,
    flags: u32,
    state: State,
}

impl Scheduler {
    /// Binds `kind` to a service with service flags `flags` (SCHED1/SCHED2 select the sh/mh
    /// fallback and port options) and current real servers `dests` (`init_service`).
    ///
    /// lblc/lblcr start with the default [`SchedTunables`]; see [`Scheduler::set_tunables`].
    ///
    /// # Errors
    /// [`SchedError::TooManyDests`] for `mh` with more real servers than its 4093 table slots.
    pub fn new(kind: SchedulerKind, flags: u32, dests: DestList<'_>) -> Result<Self, SchedError> {
        let t = SchedTunables::default();
        let state = match kind {
            SchedulerKind::None => State::None,
            SchedulerKind::Rr => State::Rr(rr::Rr::new()),
            SchedulerKind::Wrr => State::Wrr(wrr::Wrr::new(dests)),
            SchedulerKind::Lc => State::Lc,
            SchedulerKind::Wlc => State::Wlc(least::LeastIndex::new(least::Metric::Wlc, dests)),
            SchedulerKind::Sed => State::Sed(least::LeastIndex::new(least::Metric::Sed, dests)),
            SchedulerKind::Nq => State::Nq,
            SchedulerKind::Fo => State::Fo,
            SchedulerKind::Ovf => State::Ovf,
            SchedulerKind::Twos => State::Twos,
            SchedulerKind::Dh => State::Dh(dh::Dh::new(dests)),
            SchedulerKind::Sh => State::Sh(sh::Sh::new(dests)),
            SchedulerKind::Lblc => State::Lblc(lblc::Lblc::new(t.lblc_expiration_ms)),
            SchedulerKind::Lblcr => State::Lblcr(lblcr::Lblcr::new(t.lblcr_expiration_ms)),
            SchedulerKind::Mh => State::Mh(mh::Mh::new(dests)?),
        };
        Ok(Self { kind, flags, state })
    }

    /// The algorithm.
    pub const fn kind(&self) -> SchedulerKind {
        self.kind
    }

    /// The service flags in effect.
    pub const fn flags(&self) -> u32 {
        self.flags
    }

    /// The service's flags were edited (`ipvsadm -E -b …`) without changing the scheduler:
    /// like the kernel, which reads `svc->flags` at scheduling time, the new SCHED1/SCHED2
    /// options apply from the next [`Scheduler::schedule`] and the state is kept.
    pub fn set_flags(&mut self, flags: u32) {
        self.flags = flags;
    }

    /// Applies the `lblc_expiration`/`lblcr_expiration` sysctls at once (the kernel reads them
    /// live). [`Scheduler::gc`] also records the tunables it is given.
    pub fn set_tunables(&mut self, tunables: &SchedTunables) {
        match &mut self.state {
            State::Lblc(s) => s.expiration_ms = tunables.lblc_expiration_ms,
            State::Lblcr(s) => s.expiration_ms = tunables.lblcr_expiration_ms,
            _ => {}
        }
    }

    /// Whether the choice depends on the packet's destination address ([`SchedInput::daddr`]):
    /// true for dh, lblc and lblcr. (sh and mh key on the client address and port.)
    pub const fn uses_packet_daddr(&self) -> bool {
        matches!(
            self.kind,
            SchedulerKind::Dh | SchedulerKind::Lblc | SchedulerKind::Lblcr
        )
    }

    /// `id` was just inserted at the head of `dests`.
    ///
    /// For `mh`, a service that now has more real servers than table slots keeps its previous
    /// table (the new server gets no slot), as in the kernel.
    pub fn add_dest(&mut self, dests: DestList<'_>, id: DestId) {
        let _ = id;
        self.dest_changed(dests);
    }

    /// `id` is being removed: `before` still contains it, `after` does not. On return the
    /// scheduler holds no reference to `id`.
    pub fn del_dest(&mut self, before: DestList<'_>, after: DestList<'_>, id: DestId) {
        match &mut self.state {
            State::Rr(s) => s.del_dest(before, id),
            State::Wrr(s) => s.dest_changed(after),
            State::Dh(s) => s.reassign(after),
            State::Sh(s) => s.reassign(after),
            State::Mh(s) => s.del_dest(after, id),
            State::Lblc(s) => s.del_dest(id),
            State::Lblcr(s) => s.del_dest(id),
            State::Wlc(s) | State::Sed(s) => s.rebuild(after),
            State::None | State::Lc | State::Nq | State::Fo | State::Ovf | State::Twos => {}
        }
    }

    /// The weight (or thresholds) of `id` changed in place; `weight` and `last_weight` are
    /// already updated. (dh does not rebuild on edit, as in the kernel; its table ignores
    /// weights.)
    pub fn upd_dest(&mut self, dests: DestList<'_>, id: DestId) {
        let _ = id;
        if !matches!(self.state, State::Dh(_)) {
            self.dest_changed(dests);
        }
    }

    /// The rebuild shared by `add_dest` and `upd_dest`.
    fn dest_changed(&mut self, dests: DestList<'_>) {
        match &mut self.state {
            State::Wrr(s) => s.dest_changed(dests),
            State::Dh(s) => s.reassign(dests),
            State::Sh(s) => s.reassign(dests),
            State::Mh(s) => {
                // Failure (too many servers) keeps the old table, whose ids are all still
                // listed: nothing to clean up.
                let _ = s.reassign(dests);
            }
            State::Wlc(s) | State::Sed(s) => s.rebuild(dests),
            State::None
            | State::Rr(_)
            | State::Lc
            | State::Nq
            | State::Fo
            | State::Ovf
            | State::Twos
            | State::Lblc(_)
            | State::Lblcr(_) => {}
        }
    }

    /// The load of `id` changed: its active or inactive connection count, or its OVERLOAD
    /// flag. The engine calls this after every such change; wlc and sed keep an index of
    /// the servers' loads (see `least.rs`) that would otherwise go stale.
    #[inline]
    pub fn note_load(&mut self, id: DestId) {
        if let State::Wlc(s) | State::Sed(s) = &mut self.state {
            s.note(id);
        }
    }

    /// Picks a real server for a new connection, or `None` ("no destination available").
    pub fn schedule(&mut self, dests: DestList<'_>, input: &SchedInput) -> Option<DestId> {
        match &mut self.state {
            State::None => None,
            State::Rr(s) => s.schedule(dests),
            State::Wrr(s) => s.schedule(dests),
            State::Lc => lc::lc(dests),
            State::Wlc(s) => {
                let id = s.pick(dests);
                debug_assert_eq!(id, lc::wlc(dests), "wlc index disagrees with the scan");
                id
            }
            State::Sed(s) => {
                let id = s.pick(dests);
                debug_assert_eq!(id, lc::sed(dests), "sed index disagrees with the scan");
                id
            }
            State::Nq => lc::nq(dests),
            State::Fo => fo::fo(dests),
            State::Ovf => fo::ovf(dests),
            State::Twos => twos::twos(dests, input.random),
            State::Dh(s) => s.schedule(dests, input.daddr),
            State::Sh(s) => s.schedule(dests, self.flags, input.caddr, input.cport),
            State::Lblc(s) => s.schedule(dests, input.daddr, input.now_ms),
            State::Lblcr(s) => s.schedule(dests, input.daddr, input.now_ms),
            State::Mh(s) => s.schedule(dests, self.flags, input.caddr, input.cport),
        }
    }

    /// Runs the lblc/lblcr expiry timer if it is due at `now_ms` (a no-op otherwise, and for
    /// other schedulers), and records `tunables`. The first call on an lblc/lblcr scheduler
    /// whose timer is not running yet only starts it (the kernel starts it at bind time).
    pub fn gc(&mut self, now_ms: u64, tunables: &SchedTunables) {
        self.set_tunables(tunables);
        match &mut self.state {
            State::Lblc(s) => s.gc(now_ms),
            State::Lblcr(s) => s.gc(now_ms),
            _ => {}
        }
    }

    /// When [`Scheduler::gc`] wants to run next (engine milliseconds), if ever: every 60 s for
    /// lblc/lblcr once their timer runs (started by the first `gc` or `schedule`), `None`
    /// otherwise.
    pub fn poll_timeout(&self) -> Option<u64> {
        match &self.state {
            State::Lblc(s) => s.poll_timeout(),
            State::Lblcr(s) => s.poll_timeout(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use rvs_api::model::svc_flags;

    use super::testutil::Harness;
    use super::*;

    #[test]
    fn every_kind_binds_and_parses() {
        for kind in SchedulerKind::ALL {
            assert_eq!(kind.name().parse::<SchedulerKind>(), Ok(kind));
            let h = Harness::new(kind, 0);
            assert_eq!(h.sched.kind(), kind);
        }
        assert!("wlcx".parse::<SchedulerKind>().is_err());
    }

    #[test]
    fn none_never_schedules() {
        let mut h = Harness::with(SchedulerKind::None, 0, &[("10.0.0.1", 80, 1)]);
        assert_eq!(h.schedule_any(), None);
    }

    /// The common rule across all algorithms: a weight-0 server never gets a new connection and
    /// an overloaded one is skipped (lblc only for servers it has not cached).
    #[test]
    fn every_scheduler_skips_quiescent_and_overloaded() {
        for kind in SchedulerKind::ALL {
            if kind == SchedulerKind::None {
                continue;
            }
            let mut h = Harness::with(
                kind,
                svc_flags::SCHED1,
                &[
                    ("10.0.0.1", 80, 1),
                    ("10.0.0.2", 80, 0),
                    ("10.0.0.3", 80, 2),
                ],
            );
            let (a, b, c) = (h.id(0), h.id(1), h.id(2));
            h.set_overloaded(c, true);
            for i in 0..300u32 {
                let mut input = testutil::input(
                    &std::net::Ipv4Addr::from(0xC612_0000 + i).to_string(),
                    (1000 + i) as u16,
                    &std::net::Ipv4Addr::from(0xC613_0000 + i).to_string(),
                    u64::from(i),
                );
                input.random = u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let got = h.schedule(&input);
                match kind {
                    // Pure hashing without fallback may land on an unusable server.
                    SchedulerKind::Dh => assert!(got.is_none() || got == Some(a), "{kind:?}"),
                    _ => assert_eq!(got, Some(a), "{kind:?}"),
                }
                if let Some(id) = got {
                    h.bind(id, false);
                }
            }
            assert!(
                h.dest(b).inactconns == 0 && h.dest(c).inactconns == 0,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn flags_and_daddr_accessors() {
        let mut h = Harness::with(
            SchedulerKind::Sh,
            0,
            &[("10.0.0.1", 80, 1), ("10.0.0.2", 80, 1)],
        );
        assert!(!h.sched.uses_packet_daddr());
        // Find a client whose bucket differs once its port is hashed too.
        let probe = |p| testutil::input("10.0.0.1", p, "198.19.0.1", 0);
        let base = h.schedule(&probe(0));
        let port = (1..100).find(|&p| sh::hashkey("10.0.0.1".parse().unwrap(), p, 0) % 2 != 39 % 2);
        let port = port.expect("some port flips the bucket parity");
        assert_eq!(h.schedule(&probe(port)), base);
        h.sched.set_flags(svc_flags::SCHED2);
        assert_eq!(h.sched.flags(), svc_flags::SCHED2);
        assert_ne!(h.schedule(&probe(port)), base);
        for kind in [SchedulerKind::Dh, SchedulerKind::Lblc, SchedulerKind::Lblcr] {
            assert!(Harness::new(kind, 0).sched.uses_packet_daddr());
        }
    }
}
