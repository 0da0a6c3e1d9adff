//! A miniature service for scheduler tests: a [`DestArena`], the list order and a bound
//! [`Scheduler`], changed exactly the way the engine changes them (insert at the head, then the
//! scheduler hook; on delete the slot is freed right after `del_dest`, so a scheduler that kept a
//! reference to a deleted real server panics on its next lookup).

use std::net::IpAddr;

use rvs_api::DestSpec;

use crate::dest::{Dest, DestArena, DestId, DestList, ServiceId};
use crate::sched::{SchedError, SchedInput, Scheduler, SchedulerKind};

/// One test service.
#[derive(Debug)]
pub(crate) struct Harness {
    pub(crate) arena: DestArena,
    /// List order, newest first.
    pub(crate) order: Vec<DestId>,
    /// Every id ever added, in insertion order (for [`Harness::id`]).
    pub(crate) inserted: Vec<DestId>,
    pub(crate) sched: Scheduler,
}

fn dest(addr: &str, port: u16, weight: u32) -> Dest {
    let addr: IpAddr = addr.parse().expect("test address");
    let mut spec = DestSpec::new(addr, port);
    spec.weight = weight;
    Dest::new(spec, ServiceId(0))
}

impl Harness {
    /// An empty service bound to `kind`.
    pub(crate) fn new(kind: SchedulerKind, flags: u32) -> Self {
        let arena = DestArena::default();
        let sched = Scheduler::new(kind, flags, DestList::new(&[], &arena)).expect("bind");
        Self {
            arena,
            order: Vec::new(),
            inserted: Vec::new(),
            sched,
        }
    }

    /// A service bound to `kind`, then given `servers` (addr, port, weight) one by one in this
    /// insertion order (`ipvsadm -a` order); the list order is therefore the reverse.
    pub(crate) fn with(kind: SchedulerKind, flags: u32, servers: &[(&str, u16, u32)]) -> Self {
        let mut h = Self::new(kind, flags);
        for &(a, p, w) in servers {
            h.add(a, p, w);
        }
        h
    }

    /// A service that already has `servers` (insertion order) when `kind` is bound to it
    /// (`init_service` sees them all, as after `ipvsadm -E -s`).
    pub(crate) fn bound(
        kind: SchedulerKind,
        flags: u32,
        servers: &[(&str, u16, u32)],
    ) -> Result<Self, SchedError> {
        let mut arena = DestArena::default();
        let mut order = Vec::new();
        let mut inserted = Vec::new();
        for &(a, p, w) in servers {
            let id = arena.insert(dest(a, p, w));
            order.insert(0, id);
            inserted.push(id);
        }
        let sched = Scheduler::new(kind, flags, DestList::new(&order, &arena))?;
        Ok(Self {
            arena,
            order,
            inserted,
            sched,
        })
    }

    /// The `i`-th real server added (0-based, insertion order).
    pub(crate) fn id(&self, i: usize) -> DestId {
        self.inserted[i]
    }

    /// A real server.
    pub(crate) fn dest(&self, id: DestId) -> &Dest {
        self.arena.get(id).expect("live dest")
    }

    /// `ipvsadm -a`: insert at the head of the list, then `add_dest`.
    pub(crate) fn add(&mut self, addr: &str, port: u16, weight: u32) -> DestId {
        let id = self.arena.insert(dest(addr, port, weight));
        self.order.insert(0, id);
        self.inserted.push(id);
        let list = DestList::new(&self.order, &self.arena);
        self.sched.add_dest(list, id);
        id
    }

    /// `ipvsadm -d`: unlink, `del_dest`, then free the arena slot at once.
    pub(crate) fn del(&mut self, id: DestId) {
        let before = self.order.clone();
        self.order.retain(|&x| x != id);
        self.arena.get_mut(id).expect("live dest").available = false;
        self.sched.del_dest(
            DestList::new(&before, &self.arena),
            DestList::new(&self.order, &self.arena),
            id,
        );
        self.arena.remove(id);
    }

    /// `ipvsadm -e -w`: weight (and `last_weight` when non-zero) edited in place, then `upd_dest`.
    pub(crate) fn set_weight(&mut self, id: DestId, weight: u32) {
        let d = self.arena.get_mut(id).expect("live dest");
        d.weight = weight;
        if weight > 0 {
            d.last_weight = weight;
        }
        let list = DestList::new(&self.order, &self.arena);
        self.sched.upd_dest(list, id);
    }

    /// Sets or clears `IP_VS_DEST_F_OVERLOAD` (the threshold logic lives in the engine).
    pub(crate) fn set_overloaded(&mut self, id: DestId, overloaded: bool) {
        self.arena.get_mut(id).expect("live dest").overloaded = overloaded;
        self.sched.note_load(id);
    }

    /// Sets the connection counters of a real server.
    pub(crate) fn set_conns(&mut self, id: DestId, active: u32, inactive: u32) {
        let d = self.arena.get_mut(id).expect("live dest");
        d.activeconns = active;
        d.inactconns = inactive;
        self.sched.note_load(id);
    }

    /// Binds one more connection to `id` (active or inactive), as the engine does after
    /// a successful schedule.
    pub(crate) fn bind(&mut self, id: DestId, active: bool) {
        let d = self.arena.get_mut(id).expect("live dest");
        if active {
            d.activeconns += 1;
        } else {
            d.inactconns += 1;
        }
        self.sched.note_load(id);
    }

    /// `schedule` with an explicit packet.
    pub(crate) fn schedule(&mut self, input: &SchedInput) -> Option<DestId> {
        let list = DestList::new(&self.order, &self.arena);
        self.sched.schedule(list, input)
    }

    /// `schedule` for algorithms that do not look at the packet.
    pub(crate) fn schedule_any(&mut self) -> Option<DestId> {
        self.schedule(&input("198.18.0.1", 1024, "198.19.0.1", 0))
    }
}

/// A packet from `caddr:cport` to `daddr` at `now_ms`, random bits 0.
pub(crate) fn input(caddr: &str, cport: u16, daddr: &str, now_ms: u64) -> SchedInput {
    SchedInput {
        caddr: caddr.parse().expect("test address"),
        cport,
        daddr: daddr.parse().expect("test address"),
        now_ms,
        random: 0,
    }
}
