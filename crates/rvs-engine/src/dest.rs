//! Real servers ("destinations" in IPVS) and the arena that gives them stable ids.
//!
//! A [`Dest`] lives in the engine's [`DestArena`] under a [`DestId`] that never changes while
//! anything refers to it: connections and persistence templates keep pointing at a deleted real
//! server (IPVS moves it to a "trash" list) until they expire, and a scheduler's cache (lblc)
//! may still name it. A service keeps the ids of its current real servers in *list order*:
//! newest first, because IPVS inserts at the head and every scheduler's tie-break favours the
//! earlier entry.

use std::net::IpAddr;

use rvs_api::{DestSpec, ForwardMethod};

use crate::l2::NextHop;
use crate::stats::StatsBlock;
use crate::xmit::TxHop;

/// Stable index of a real server in the [`DestArena`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestId(pub u32);

impl DestId {
    /// The arena slot.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a virtual service in the engine's service table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub u32);

/// One real server.
///
/// The scheduling inputs (`weight`, `last_weight`, `activeconns`, `inactconns`, `available`,
/// `overloaded`) are plain fields so schedulers read them without indirection. The layout is
/// fixed and cache-line aligned: what a scheduler scans over a whole service (weight,
/// connection counts, flags) and what every forwarded packet reads (service, address,
/// forwarding method) share the first 64-byte line; the cached next hop and the counters
/// follow.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub struct Dest {
    /// Current weight (0 = quiescent).
    pub weight: u32,
    /// Connections in an active state.
    pub activeconns: u32,
    /// Connections in an inactive state.
    pub inactconns: u32,
    /// Upper threshold reached (`IP_VS_DEST_F_OVERLOAD`); cleared per §4.8 of the spec.
    pub overloaded: bool,
    /// Still configured in its service (`IP_VS_DEST_F_AVAILABLE`); false once deleted.
    pub available: bool,
    /// Real server port.
    pub port: u16,
    /// A freed arena slot's placeholder (never handed out by [`DestArena::get`]).
    vacant: bool,
    /// The latest non-zero weight this server had (Maglev keeps its slots while quiescent).
    pub last_weight: u32,
    /// Persistence templates pointing here.
    pub persistconns: u32,
    /// The service this real server belongs (or belonged) to.
    pub service: ServiceId,
    /// Real server address.
    pub addr: IpAddr,
    /// Full configuration as the operator gave it.
    pub spec: DestSpec,
    /// The next hop towards `addr`, tagged with the L2 generation it was resolved in, and
    /// the part of it every forwarded frame needs, ready to copy.
    pub(crate) next_hop: Option<(u32, NextHop, TxHop)>,
    /// Counters and rate estimator.
    pub stats: StatsBlock,
}

impl Dest {
    /// A fresh, available real server built from its configuration.
    pub fn new(spec: DestSpec, service: ServiceId) -> Self {
        Self {
            weight: spec.weight,
            activeconns: 0,
            inactconns: 0,
            overloaded: false,
            available: true,
            port: spec.port,
            vacant: false,
            last_weight: spec.weight,
            persistconns: 0,
            service,
            addr: spec.addr,
            spec,
            next_hop: None,
            stats: StatsBlock::default(),
        }
    }

    /// The placeholder of a freed arena slot: weight 0 and overloaded, so no scheduler
    /// scan can pick it.
    fn vacant() -> Self {
        let spec = DestSpec::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);
        let mut d = Self::new(spec, ServiceId(u32::MAX));
        d.weight = 0;
        d.last_weight = 0;
        d.overloaded = true;
        d.available = false;
        d.vacant = true;
        d
    }

    /// Forwarding method.
    #[inline]
    pub const fn fwd_method(&self) -> ForwardMethod {
        self.spec.fwd_method
    }

    /// Whether a scheduler may pick this server for a new connection: weight > 0 and not
    /// overloaded. (Deleted servers are no longer in any service list.)
    #[inline]
    pub const fn is_schedulable(&self) -> bool {
        self.weight > 0 && !self.overloaded
    }

    /// `activeconns * 256 + inactconns`, the load measure of lc, wlc, lblc, lblcr and twos.
    #[inline]
    pub const fn overhead(&self) -> u64 {
        (self.activeconns as u64) * 256 + self.inactconns as u64
    }

    /// Connections counted against the thresholds (templates excluded).
    pub const fn total_conns(&self) -> u32 {
        self.activeconns.saturating_add(self.inactconns)
    }

    /// Everything that still refers to this server.
    pub const fn refs(&self) -> u64 {
        self.activeconns as u64 + self.inactconns as u64 + self.persistconns as u64
    }
}

/// Storage for every real server the engine knows, configured or in the trash.
#[derive(Debug, Default, Clone)]
pub struct DestArena {
    /// Real servers; a freed slot holds a vacant placeholder until it is reused.
    slots: Vec<Dest>,
    free: Vec<u32>,
}

impl DestArena {
    /// Stores `dest` and returns its id.
    pub fn insert(&mut self, dest: Dest) -> DestId {
        if let Some(i) = self.free.pop() {
            self.slots[i as usize] = dest;
            DestId(i)
        } else {
            self.slots.push(dest);
            DestId((self.slots.len() - 1) as u32)
        }
    }

    /// The real server under `id`, if the slot is in use.
    #[inline]
    pub fn get(&self, id: DestId) -> Option<&Dest> {
        self.slots.get(id.index()).filter(|d| !d.vacant)
    }

    /// Mutable access to the real server under `id`.
    #[inline]
    pub fn get_mut(&mut self, id: DestId) -> Option<&mut Dest> {
        self.slots.get_mut(id.index()).filter(|d| !d.vacant)
    }

    /// The slot under `id` even if vacant, for scans that a vacant slot cannot win
    /// (weight 0, overloaded, no connections).
    #[inline]
    pub(crate) fn get_any(&self, id: DestId) -> Option<&Dest> {
        self.slots.get(id.index())
    }

    /// Frees the slot of a real server nothing refers to any more.
    pub fn remove(&mut self, id: DestId) -> Option<Dest> {
        let slot = self.slots.get_mut(id.index()).filter(|d| !d.vacant)?;
        let d = std::mem::replace(slot, Dest::vacant());
        self.free.push(id.0);
        Some(d)
    }

    /// Every occupied slot.
    pub fn iter(&self) -> impl Iterator<Item = (DestId, &Dest)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.vacant)
            .map(|(i, d)| (DestId(i as u32), d))
    }

    /// Every occupied slot, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (DestId, &mut Dest)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter(|(_, d)| !d.vacant)
            .map(|(i, d)| (DestId(i as u32), d))
    }

    /// Number of occupied slots.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether no slot is occupied.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A service's real servers in list order (newest first), as schedulers see them.
#[derive(Debug, Clone, Copy)]
pub struct DestList<'a> {
    order: &'a [DestId],
    arena: &'a DestArena,
}

impl<'a> DestList<'a> {
    /// A view of `order` (ids that must all be occupied in `arena`).
    pub const fn new(order: &'a [DestId], arena: &'a DestArena) -> Self {
        Self { order, arena }
    }

    /// Number of real servers.
    pub const fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the service has no real server.
    pub const fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The ids in list order.
    #[inline]
    pub const fn ids(&self) -> &'a [DestId] {
        self.order
    }

    /// The arena the ids refer to.
    #[inline]
    pub(crate) const fn arena(&self) -> &'a DestArena {
        self.arena
    }

    /// Position `pos` in list order.
    ///
    /// # Panics
    /// If `pos >= len()` or the id's slot is empty (an engine bug).
    pub fn at(&self, pos: usize) -> (DestId, &'a Dest) {
        let id = self.order[pos];
        (id, self.by_id(id))
    }

    /// Any real server by id, also one no longer in this list (lblc caches may name it).
    ///
    /// # Panics
    /// If the slot is empty, which the engine never allows while an id is referenced.
    pub fn by_id(&self, id: DestId) -> &'a Dest {
        match self.arena.get(id) {
            Some(d) => d,
            None => panic!("dangling DestId {}", id.0),
        }
    }

    /// Looks an id up without panicking.
    pub fn try_by_id(&self, id: DestId) -> Option<&'a Dest> {
        self.arena.get(id)
    }

    /// Whether `id` is currently in this list.
    pub fn contains(&self, id: DestId) -> bool {
        self.order.contains(&id)
    }

    /// `(id, dest)` pairs in list order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = (DestId, &'a Dest)> + 'a {
        let arena = self.arena;
        self.order
            .iter()
            .filter_map(move |&id| arena.get(id).map(|d| (id, d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(last: u8) -> Dest {
        let mut spec = DestSpec::new(IpAddr::from([198, 18, 0, last]), 80);
        spec.weight = 3;
        Dest::new(spec, ServiceId(0))
    }

    #[test]
    fn freed_slots_are_invisible_and_reused() {
        let mut a = DestArena::default();
        let (x, y) = (a.insert(dest(1)), a.insert(dest(2)));
        assert_eq!(
            a.remove(x).map(|d| d.addr),
            Some(IpAddr::from([198, 18, 0, 1]))
        );
        assert!(a.get(x).is_none() && a.get_mut(x).is_none() && a.remove(x).is_none());
        assert_eq!(a.len(), 1);
        assert_eq!(a.iter().map(|(id, _)| id).collect::<Vec<_>>(), vec![y]);
        assert_eq!(a.iter_mut().count(), 1);
        // What a scan sees in a freed slot can never be chosen.
        let v = a.get_any(x).expect("slot exists");
        assert!(!v.is_schedulable() && v.overloaded && v.weight == 0 && v.overhead() == 0);
        assert_eq!(a.insert(dest(3)), x);
        assert_eq!(a.get(x).map(|d| d.weight), Some(3));
        assert_eq!(a.len(), 2);
        assert!(a.get(DestId(7)).is_none() && a.get_any(DestId(7)).is_none());
    }
}
