//! [`Engine`]: the load balancer as one deterministic state machine.
//!
//! Call order (quinn-style):
//! * [`Engine::process`] for every received frame; it rewrites the frame in place and returns a
//!   [`Verdict`] saying where it goes;
//! * [`Engine::control`] for configuration and listings (see `control.rs`);
//! * [`Engine::handle_timeout`] whenever [`Engine::poll_timeout`] has passed: connection expiry,
//!   the 2-second rate estimator, scheduler garbage collection;
//! * [`Engine::poll_event`] after either, to learn what the daemon must do (resolve a neighbour).
//!
//! The engine reads no clock: every entry point takes `now`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use rvs_api::{ForwardMethod, ServiceKey};

use crate::conn::{ConnAddr, ConnIdx, ConnTable, NIL, TICK_MS, flags};
use crate::dest::{DestArena, DestId, ServiceId};
use crate::l2::{IfaceId, Interface, L2, Mac, NextHop, NextHopError, Route};
use crate::sched::SchedTunables;
use crate::service::ServiceTable;
use crate::state::TimeoutTable;
use crate::stats::{ESTIMATOR_PERIOD_MS, StatsBlock};
use crate::sysctl::Sysctls;

/// Construction parameters.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Seed for hashing and for the `twos` scheduler's random draws. Use a random value in
    /// production (flow keys come from the network); tests use fixed seeds to be reproducible.
    pub seed: u64,
    /// IPv4 connections to size the table for up front (it grows beyond as needed; the IPv6
    /// table starts small and grows with use).
    pub conn_capacity: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            seed: 0x0005_eed1_b5c0_ffee,
            conn_capacity: 4096,
        }
    }
}

/// What to do with a frame after [`Engine::process`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (rewritten) frame on this interface.
    Transmit(IfaceId),
    /// Not for the load balancer: give it to the kernel stack unchanged.
    Pass,
    /// Drop it; the reason has been counted.
    Drop(DropReason),
}

/// Why a frame was dropped (each reason has a counter, see [`Engine::drop_counters`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// The frame could not be parsed; the parser's reason is counted under its own name.
    Malformed(rvs_wire::ParseError),
    /// IP fragment (rvs does not reassemble yet).
    Fragment,
    /// A packet of a virtual service that may not open a connection (not a SYN, RST, FTP data).
    /// A TCP segment other than a reset is answered with a reset from the VIP (counted here
    /// too), as the director's own stack answers it under IPVS.
    NoConnection,
    /// No real server could be chosen; an ICMP unreachable was sent when possible.
    NoDestination,
    /// The connection's real server was deleted (`expire_nodest_conn` = 0 keeps the entry).
    DestUnavailable,
    /// No route towards the next hop.
    NoRoute,
    /// The next hop's MAC address is not known yet (resolution was requested).
    NoNeighbour,
    /// TTL or hop limit exhausted (an ICMP time exceeded was sent when possible).
    TtlExceeded,
    /// Too big for the egress MTU with DF set (an ICMP frag-needed / PTB was sent when possible).
    TooBig,
    /// Not enough headroom in the buffer to add a tunnel header.
    NoHeadroom,
    /// Forwarding method `Local` cannot be served from the XDP data path.
    LocalMethod,
    /// An ICMP error that matches no connection.
    IcmpNoConnection,
    /// Protocol or feature the engine does not handle.
    Unsupported,
}

impl DropReason {
    /// Stable counter name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Malformed(e) => e.as_str(),
            Self::Fragment => "fragment",
            Self::NoConnection => "no_connection",
            Self::NoDestination => "no_destination",
            Self::DestUnavailable => "dest_unavailable",
            Self::NoRoute => "no_route",
            Self::NoNeighbour => "no_neighbour",
            Self::TtlExceeded => "ttl_exceeded",
            Self::TooBig => "too_big",
            Self::NoHeadroom => "no_headroom",
            Self::LocalMethod => "local_method",
            Self::IcmpNoConnection => "icmp_no_connection",
            Self::Unsupported => "unsupported",
        }
    }
}

/// Something the daemon must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Resolve this neighbour (ARP/ND) and report it with [`Engine::set_neighbour`].
    ResolveNeighbour {
        /// Interface to resolve on.
        iface: IfaceId,
        /// Address to resolve.
        addr: IpAddr,
    },
    /// A fast-path connection's timer ran out: report how long ago its entries last forwarded
    /// a packet — the most recent of the keys present — with [`Engine::fast_path_idle`] on the
    /// first key (or `None` if no entry exists any more).
    FastPathProbe {
        /// The connection's fast-path keys (client side, then real-server side for NAT).
        keys: [Option<crate::fastpath::FlowKey>; 2],
    },
}

/// What the XDP steering program must hand to the engine, derived from the service table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Steering {
    /// `(protocol, VIP, port)` of every address-based service (port 0 = all ports).
    pub vips: Vec<(u8, IpAddr, u16)>,
    /// Every VIP address (ARP/ND, ICMP echo, fragments).
    pub vip_addrs: Vec<IpAddr>,
    /// `(protocol, RIP, port)` of every NAT real server (their replies come back through us).
    pub nat_sources: Vec<(u8, IpAddr, u16)>,
}

/// Per-reason drop counters.
#[derive(Debug, Default, Clone)]
pub(crate) struct DropCounters {
    counts: HashMap<&'static str, u64>,
}

impl DropCounters {
    pub(crate) fn count(&mut self, r: DropReason) {
        *self.counts.entry(r.name()).or_insert(0) += 1;
    }
}

/// The engine. See the module docs for the call order.
#[derive(Debug)]
pub struct Engine {
    pub(crate) epoch: Instant,
    /// The `now` of the latest call (clock arithmetic is skipped while it repeats).
    last_now: Instant,
    pub(crate) now_ms: u64,
    pub(crate) tick: u32,
    pub(crate) services: ServiceTable,
    pub(crate) dests: DestArena,
    /// Deleted real servers still referenced, with the key of the service they belonged to
    /// (IPVS revives a trashed server re-added to the same `<protocol, VIP, port>` / mark).
    pub(crate) trash: Vec<(DestId, ServiceKey)>,
    pub(crate) conns4: ConnTable<Ipv4Addr>,
    pub(crate) conns6: ConnTable<Ipv6Addr>,
    pub(crate) timeouts: TimeoutTable,
    pub(crate) sysctl: Sysctls,
    pub(crate) stats: StatsBlock,
    pub(crate) drops: DropCounters,
    pub(crate) l2: L2,
    /// VIP → number of services using it.
    pub(crate) vips: HashMap<IpAddr, u32, foldhash::fast::RandomState>,
    rng: u64,
    pub(crate) ip_ident: u16,
    next_estimate_ms: u64,
    next_sweep_ms: u64,
    sweep4: u32,
    sweep6: u32,
    pub(crate) events: Vec<Event>,
    pub(crate) fast_path: bool,
    pub(crate) fast_updates: Vec<crate::fastpath::FastUpdate>,
    pub(crate) fast_gen: u32,
}

/// How often a slice of the connection table is checked for expired entries.
const SWEEP_PERIOD_MS: u64 = 100;
/// A full pass over the table takes this many sweeps (≈ 1 s).
const SWEEP_SLICES: usize = 10;
/// A template that still controls connections when its timer fires is re-armed for this long.
const TEMPLATE_REARM_MS: u64 = 60_000;
/// Initial timeout of a new connection, replaced by its first state transition.
pub(crate) const INITIAL_TIMEOUT_MS: u64 = 3_000;

impl Engine {
    /// A new engine with no services.
    pub fn new(now: Instant, cfg: EngineConfig) -> Self {
        Self {
            epoch: now,
            last_now: now,
            now_ms: 0,
            tick: 0,
            services: ServiceTable::default(),
            dests: DestArena::default(),
            trash: Vec::new(),
            conns4: ConnTable::new(cfg.conn_capacity, cfg.seed),
            // IPv6 tables start at the minimum and grow with use: sizing them up front for
            // a share of `conn_capacity` cost memory on every IPv4-only director.
            conns6: ConnTable::new(0, cfg.seed.rotate_left(17)),
            timeouts: TimeoutTable::default(),
            sysctl: Sysctls::default(),
            stats: StatsBlock::default(),
            drops: DropCounters::default(),
            l2: L2::default(),
            vips: HashMap::default(),
            rng: cfg.seed ^ 0x9E37_79B9_7F4A_7C15,
            ip_ident: (cfg.seed as u16) | 1,
            next_estimate_ms: ESTIMATOR_PERIOD_MS,
            next_sweep_ms: SWEEP_PERIOD_MS,
            sweep4: 0,
            sweep6: 0,
            events: Vec::new(),
            fast_path: false,
            fast_updates: Vec::new(),
            fast_gen: 0,
        }
    }

    /// Moves the engine clock forward to `now` (never backwards).
    #[inline]
    pub(crate) fn advance(&mut self, now: Instant) {
        // A worker passes one `now` for a whole batch of frames: skip the arithmetic.
        if now == self.last_now {
            return;
        }
        self.last_now = now;
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        if ms > self.now_ms {
            self.now_ms = ms;
            self.tick = (ms / TICK_MS) as u32;
        }
    }

    /// Tick value `ms` milliseconds from now.
    #[inline]
    pub(crate) fn ticks_from_now(&self, ms: u64) -> u32 {
        self.tick.wrapping_add((ms / TICK_MS) as u32)
    }

    /// splitmix64: cheap, deterministic, good enough for `twos` draws.
    pub(crate) fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    // ----- environment -------------------------------------------------------------------

    /// Registers an interface the engine may transmit on.
    pub fn add_interface(&mut self, iface: Interface) -> IfaceId {
        self.l2.add_interface(iface)
    }

    /// Replaces an interface's data.
    pub fn update_interface(&mut self, id: IfaceId, iface: Interface) {
        self.l2.update_interface(id, iface);
    }

    /// Replaces the routing table.
    pub fn set_routes(&mut self, routes: Vec<Route>) {
        self.l2.set_routes(routes);
    }

    /// Learns or forgets a neighbour.
    pub fn set_neighbour(&mut self, iface: IfaceId, ip: IpAddr, mac: Option<Mac>) {
        self.l2.set_neighbour(iface, ip, mac);
    }

    /// Lets a neighbour that failed to resolve be requested again.
    pub fn retry_neighbour(&mut self, iface: IfaceId, ip: IpAddr) {
        self.l2.retry_wanted(iface, ip);
    }

    /// The engine's L2 view.
    pub fn l2(&self) -> &L2 {
        &self.l2
    }

    /// The sysctls.
    pub fn sysctls(&self) -> &Sysctls {
        &self.sysctl
    }

    /// The sysctls, mutably (tests and the daemon's config loader).
    pub fn sysctls_mut(&mut self) -> &mut Sysctls {
        &mut self.sysctl
    }

    /// The next event for the daemon, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.collect_events();
        (!self.events.is_empty()).then(|| self.events.remove(0))
    }

    /// Every pending event, oldest first.
    pub fn drain_events(&mut self) -> Vec<Event> {
        self.collect_events();
        std::mem::take(&mut self.events)
    }

    fn collect_events(&mut self) {
        for (iface, addr) in self.l2.take_wanted() {
            self.events.push(Event::ResolveNeighbour { iface, addr });
        }
    }

    /// Drop counters by reason name, sorted by name.
    pub fn drop_counters(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = self.drops.counts.iter().map(|(k, v)| (*k, *v)).collect();
        v.sort_unstable();
        v
    }

    /// Live connections and templates (IPv4, IPv6).
    pub fn conn_count(&self) -> (usize, usize) {
        (self.conns4.len(), self.conns6.len())
    }

    /// Bytes held by both connection tables.
    pub fn conn_memory_bytes(&self) -> usize {
        self.conns4.memory_bytes() + self.conns6.memory_bytes()
    }

    /// Global counters (all services).
    pub fn global_stats(&self) -> (rvs_api::Stats, rvs_api::Rates) {
        (self.stats.stats(), self.stats.rates())
    }

    /// What the steering program must send to the engine.
    pub fn steering(&self) -> Steering {
        let mut s = Steering::default();
        for (_, svc) in self.services.iter() {
            if let ServiceKey::Addr {
                protocol,
                addr,
                port,
            } = svc.spec.key
            {
                s.vips.push((protocol.number(), addr, port));
                if !s.vip_addrs.contains(&addr) {
                    s.vip_addrs.push(addr);
                }
                for &d in &svc.dests {
                    let Some(d) = self.dests.get(d) else { continue };
                    if d.fwd_method() == ForwardMethod::Masq {
                        // A real-server port of 0 (port-0 services) answers from any port.
                        s.nat_sources.push((protocol.number(), d.addr, d.port));
                    }
                }
            }
        }
        // Deleted NAT real servers whose connections live on still send replies that must be
        // rewritten (or dropped) by the engine, never forwarded by the kernel with the RIP
        // showing.
        for &(id, key) in &self.trash {
            if let (Some(d), ServiceKey::Addr { protocol, .. }) = (self.dests.get(id), key)
                && d.fwd_method() == ForwardMethod::Masq
            {
                s.nat_sources.push((protocol.number(), d.addr, d.port));
            }
        }
        s.vips.sort_unstable();
        s.vip_addrs.sort_unstable();
        s.nat_sources.sort_unstable();
        s.nat_sources.dedup();
        s
    }

    /// Recomputes the VIP set after a service or real-server change.
    pub(crate) fn vip_refs_changed(&mut self) {
        self.vips.clear();
        for (_, svc) in self.services.iter() {
            if let ServiceKey::Addr { addr, .. } = svc.spec.key {
                *self.vips.entry(addr).or_insert(0) += 1;
            }
        }
        // Forget every cached next hop (as a cache keyed by slot would need to: a slot may now
        // hold another real server).
        for (_, d) in self.dests.iter_mut() {
            d.next_hop = None;
        }
    }

    /// Whether the engine answers ARP/ND and echo requests for `ip`.
    #[inline]
    pub(crate) fn is_vip(&self, ip: IpAddr) -> bool {
        self.vips.contains_key(&ip)
    }

    /// The next hop towards a real server, cached in the real server.
    #[inline]
    pub(crate) fn dest_next_hop(
        &mut self,
        id: DestId,
        addr: IpAddr,
    ) -> Result<NextHop, NextHopError> {
        let generation = self.l2.generation();
        if let Some(d) = self.dests.get(id)
            && let Some((g, nh, _)) = d.next_hop
            && g == generation
        {
            return Ok(nh);
        }
        self.resolve_dest_next_hop(id, addr)
    }

    /// The cache miss of [`Engine::dest_next_hop`]: resolves and remembers.
    #[cold]
    #[inline(never)]
    pub(crate) fn resolve_dest_next_hop(
        &mut self,
        id: DestId,
        addr: IpAddr,
    ) -> Result<NextHop, NextHopError> {
        let generation = self.l2.generation();
        let nh = self.l2.next_hop(addr)?;
        if let Some(d) = self.dests.get_mut(id) {
            d.next_hop = Some((generation, nh, crate::xmit::TxHop::of(&nh)));
        }
        Ok(nh)
    }

    pub(crate) fn drop(&mut self, r: DropReason) -> Verdict {
        self.drops.count(r);
        Verdict::Drop(r)
    }

    // ----- timers -----------------------------------------------------------------------

    /// When [`Engine::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Instant {
        let next = self.next_estimate_ms.min(self.next_sweep_ms);
        self.epoch + Duration::from_millis(next)
    }

    /// Runs everything that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        while self.now_ms >= self.next_estimate_ms {
            self.estimate();
            self.next_estimate_ms += ESTIMATOR_PERIOD_MS;
        }
        if self.fast_path && self.fast_gen != self.l2.generation() {
            self.fast_refresh_all();
        }
        if self.now_ms >= self.next_sweep_ms {
            self.sweep();
            let tunables = SchedTunables {
                lblc_expiration_ms: u64::from(self.sysctl.lblc_expiration) * 1000,
                lblcr_expiration_ms: u64::from(self.sysctl.lblcr_expiration) * 1000,
            };
            let now_ms = self.now_ms;
            for (_, svc) in self.services.iter_mut() {
                if svc.sched.poll_timeout().is_some_and(|t| t <= now_ms) {
                    svc.sched.gc(now_ms, &tunables);
                }
            }
            self.purge_trash();
            self.next_sweep_ms = self.now_ms + SWEEP_PERIOD_MS;
        }
    }

    fn estimate(&mut self) {
        self.stats.estimate();
        for (_, svc) in self.services.iter_mut() {
            svc.stats.estimate();
        }
        for (_, d) in self.dests.iter_mut() {
            d.stats.estimate();
        }
    }

    /// An expired entry found by the sweep: fast-path connections are probed first (the engine
    /// has not seen their packets), everything else expires.
    fn sweep_expired<A: Family>(&mut self, idx: ConnIdx) {
        if A::conns(self).get(idx).flags & flags::FAST != 0 && self.fast_probe::<A>(idx) {
            return;
        }
        self.expire_conn::<A>(idx);
    }

    /// Expires one slice of each table.
    fn sweep(&mut self) {
        let slice4 = (self.conns4.slots() / SWEEP_SLICES).max(1024);
        let end = self.sweep4 as usize + slice4;
        let mut i = self.sweep4 as usize;
        while i < end.min(self.conns4.slots()) {
            if self
                .conns4
                .slot(i as u32)
                .is_some_and(|c| c.expired(self.tick))
            {
                self.sweep_expired::<Ipv4Addr>(i as u32);
            }
            i += 1;
        }
        self.sweep4 = if i >= self.conns4.slots() {
            0
        } else {
            i as u32
        };

        let slice6 = (self.conns6.slots() / SWEEP_SLICES).max(1024);
        let end = self.sweep6 as usize + slice6;
        let mut i = self.sweep6 as usize;
        while i < end.min(self.conns6.slots()) {
            if self
                .conns6
                .slot(i as u32)
                .is_some_and(|c| c.expired(self.tick))
            {
                self.sweep_expired::<Ipv6Addr>(i as u32);
            }
            i += 1;
        }
        self.sweep6 = if i >= self.conns6.slots() {
            0
        } else {
            i as u32
        };
    }

    // ----- binding connections to real servers ---------------------------------------

    /// Counts a new connection or template against its real server (`ip_vs_bind_dest`).
    pub(crate) fn bind_dest(&mut self, id: DestId, conn_flags: u16) {
        let Some(d) = self.dests.get_mut(id) else {
            return;
        };
        if conn_flags & flags::TEMPLATE != 0 {
            d.persistconns += 1;
        } else if conn_flags & flags::INACTIVE != 0 {
            d.inactconns += 1;
        } else {
            d.activeconns += 1;
        }
        if d.spec.u_threshold != 0 && d.total_conns() >= d.spec.u_threshold {
            d.overloaded = true;
        }
        let sid = d.service;
        self.note_dest_load(sid, id);
    }

    /// Tells the scheduler of service `sid` that the load of its real server `id` changed.
    #[inline]
    pub(crate) fn note_dest_load(&mut self, sid: ServiceId, id: DestId) {
        if let Some(s) = self.services.get_mut(sid) {
            s.sched.note_load(id);
        }
    }

    /// Reverses [`Engine::bind_dest`] and applies the threshold hysteresis (`ip_vs_unbind_dest`).
    pub(crate) fn unbind_dest(&mut self, id: DestId, conn_flags: u16) {
        let Some(d) = self.dests.get_mut(id) else {
            return;
        };
        if conn_flags & flags::TEMPLATE != 0 {
            d.persistconns = d.persistconns.saturating_sub(1);
        } else if conn_flags & flags::INACTIVE != 0 {
            d.inactconns = d.inactconns.saturating_sub(1);
        } else {
            d.activeconns = d.activeconns.saturating_sub(1);
        }
        let total = d.total_conns();
        let (l, u) = (d.spec.l_threshold, d.spec.u_threshold);
        if l != 0 {
            if total < l {
                d.overloaded = false;
            }
        } else if u != 0 {
            if u64::from(total) * 4 < u64::from(u) * 3 {
                d.overloaded = false;
            }
        } else {
            d.overloaded = false;
        }
        let sid = d.service;
        self.note_dest_load(sid, id);
    }
}

/// Per-family access to the engine's connection table, so flow code is written once.
pub(crate) trait Family: ConnAddr {
    fn conns(e: &Engine) -> &ConnTable<Self>;
    fn conns_mut(e: &mut Engine) -> &mut ConnTable<Self>;
}

impl Family for Ipv4Addr {
    #[inline]
    fn conns(e: &Engine) -> &ConnTable<Self> {
        &e.conns4
    }
    #[inline]
    fn conns_mut(e: &mut Engine) -> &mut ConnTable<Self> {
        &mut e.conns4
    }
}

impl Family for Ipv6Addr {
    #[inline]
    fn conns(e: &Engine) -> &ConnTable<Self> {
        &e.conns6
    }
    #[inline]
    fn conns_mut(e: &mut Engine) -> &mut ConnTable<Self> {
        &mut e.conns6
    }
}

impl Engine {
    /// Timer expiry of an entry: templates that still control connections are re-armed.
    pub(crate) fn expire_conn<A: Family>(&mut self, idx: ConnIdx) {
        let c = *A::conns(self).get(idx);
        if c.is_template() && c.aux > 0 {
            let t = self.ticks_from_now(TEMPLATE_REARM_MS);
            A::conns_mut(self).get_mut(idx).expires = t;
            return;
        }
        self.remove_conn::<A>(idx, false);
    }

    /// Removes an entry now (flush, `expire_nodest_conn`, port reuse). A non-assured template
    /// losing its last connection this way goes too, as in IPVS.
    pub(crate) fn delete_conn<A: Family>(&mut self, idx: ConnIdx) {
        self.remove_conn::<A>(idx, true);
    }

    fn remove_conn<A: Family>(&mut self, idx: ConnIdx, forced: bool) {
        let mut c = A::conns_mut(self).remove(idx);
        self.fast_withdraw(&mut c);
        self.unbind_dest(c.dest, c.flags);
        if c.control != NIL && A::conns(self).is_live(c.control) {
            let t = A::conns_mut(self).get_mut(c.control);
            t.aux = t.aux.saturating_sub(1);
            if forced && t.aux == 0 && t.flags & flags::ASSURED == 0 {
                self.remove_conn::<A>(c.control, false);
            }
        }
    }

    pub(crate) fn delete_conn4(&mut self, idx: ConnIdx) {
        self.delete_conn::<Ipv4Addr>(idx);
    }
    pub(crate) fn delete_conn6(&mut self, idx: ConnIdx) {
        self.delete_conn::<Ipv6Addr>(idx);
    }
}
