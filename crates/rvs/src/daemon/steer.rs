//! The XDP program's maps, kept equal to what the engine needs.
//!
//! * Steering (`vips`, `vip_addrs`, `nat_sources`): the difference between what the maps hold
//!   and [`Engine::steering`](rvs_engine::Engine::steering) is applied after every control
//!   request that may change the service table.
//! * Fast path (`fast_conns`): the engine's [`FastUpdate`]s are applied in order
//!   ([`SteeringSet::apply_fast`], called by [`super::Shared::with`]); the per-real-server
//!   counters are folded back into the engine every second ([`harvest_fast_stats`]); and idle
//!   probes are answered from the entries' last-seen stamps ([`answer_probes`]).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rvs_engine::Event;
use rvs_engine::IfaceId;
use rvs_engine::fastpath::{FastEntry, FastKind, FastUpdate, FlowKey};
use rvs_io::xdp::{self, FastAction, Steering, VipKey};
use tracing::{debug, warn};

use super::Shared;

/// A served interface: engine id, kernel index, slot in the steering program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port {
    /// Engine interface id.
    pub iface: IfaceId,
    /// Kernel interface index.
    pub ifindex: u32,
    /// Slot in the steering program (`tx_ports`, XSKMAP keys).
    pub slot: u32,
}

/// The steering program and what its maps currently hold.
#[derive(Debug)]
pub struct SteeringSet {
    prog: Steering,
    ports: Vec<Port>,
    vips: BTreeSet<(u8, IpAddr, u16)>,
    vip_addrs: BTreeSet<IpAddr>,
    nat_sources: BTreeSet<(u8, IpAddr, u16)>,
    /// Last fast-path counter values seen per stats slot (the map's counters only grow).
    fast_seen: HashMap<u32, (u64, u64)>,
    fast_errors: u64,
}

impl SteeringSet {
    /// Wraps the loaded and attached program (maps empty).
    pub fn new(prog: Steering, ports: Vec<Port>) -> Self {
        Self {
            prog,
            ports,
            vips: BTreeSet::new(),
            vip_addrs: BTreeSet::new(),
            nat_sources: BTreeSet::new(),
            fast_seen: HashMap::new(),
            fast_errors: 0,
        }
    }

    /// Names of the served interfaces, in slot order.
    pub fn interface_names(&self) -> Vec<String> {
        self.ports
            .iter()
            .filter_map(|p| self.prog.ifname(p.slot).map(str::to_owned))
            .collect()
    }

    /// The program, for detaching at shutdown.
    pub fn into_inner(self) -> Steering {
        self.prog
    }

    /// Applies the difference between what the maps hold and what the engine needs.
    pub fn sync(&mut self, want: &rvs_engine::Steering) {
        let want_vips: BTreeSet<_> = want.vips.iter().copied().collect();
        let want_addrs: BTreeSet<_> = want.vip_addrs.iter().copied().collect();
        let want_nat: BTreeSet<_> = want.nat_sources.iter().copied().collect();
        let key = |(proto, addr, port): (u8, IpAddr, u16)| VipKey { proto, addr, port };
        let p = &mut self.prog;
        for &k in want_vips.difference(&self.vips) {
            log_err(p.add_vip(key(k)), "add_vip");
        }
        for &k in self.vips.difference(&want_vips) {
            log_err(p.del_vip(key(k)), "del_vip");
        }
        for &a in want_addrs.difference(&self.vip_addrs) {
            log_err(p.add_vip_addr(a), "add_vip_addr");
        }
        for &a in self.vip_addrs.difference(&want_addrs) {
            log_err(p.del_vip_addr(a), "del_vip_addr");
        }
        for &k in want_nat.difference(&self.nat_sources) {
            log_err(p.add_nat_source(key(k)), "add_nat_source");
        }
        for &k in self.nat_sources.difference(&want_nat) {
            log_err(p.del_nat_source(key(k)), "del_nat_source");
        }
        self.vips = want_vips;
        self.vip_addrs = want_addrs;
        self.nat_sources = want_nat;
    }

    /// The steering program's counters as `xdp.<counter>` (summed over interfaces and CPUs),
    /// then `xdp.fast_entries` (entries in the fast-path map) and `xdp.fast_update_errors`
    /// (map updates that failed: those flows stay on the AF_XDP path).
    pub fn counters(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        match self.prog.counters() {
            Ok(c) => out.extend(c.fields().iter().map(|(n, v)| (format!("xdp.{n}"), *v))),
            Err(err) => warn!(%err, "reading the XDP steering counters failed"),
        }
        out.push(("xdp.fast_entries".to_owned(), self.prog.fast_count() as u64));
        out.push(("xdp.fast_update_errors".to_owned(), self.fast_errors));
        out
    }

    /// Applies fast-path changes in the engine's order.
    pub fn apply_fast(&mut self, updates: &[FastUpdate]) {
        for u in updates {
            let r = match u {
                FastUpdate::Upsert(e) => match self.action(e) {
                    Some(a) => self.prog.fast_upsert(&flow_key(&e.key), &a),
                    None => Ok(()),
                },
                FastUpdate::Remove(k) => self.prog.fast_remove(&flow_key(k)).map(|_| ()),
            };
            if let Err(err) = r {
                // A full map only costs speed: the flow stays on the AF_XDP path.
                self.fast_errors += 1;
                if self.fast_errors.is_power_of_two() {
                    warn!(%err, errors = self.fast_errors, "fast-path map update failed");
                }
            }
        }
    }

    fn action(&self, e: &FastEntry) -> Option<FastAction> {
        let port = self.ports.iter().find(|p| p.iface == e.egress)?;
        Some(FastAction {
            kind: match e.kind {
                FastKind::Route => xdp::FastKind::Route,
                FastKind::NatDst => xdp::FastKind::NatDst,
                FastKind::NatSrc => xdp::FastKind::NatSrc,
                FastKind::Tunnel4 => xdp::FastKind::Tunnel4,
                FastKind::Tunnel6 => xdp::FastKind::Tunnel6,
            },
            max_len: e.max_len,
            egress_ifindex: port.ifindex,
            egress_slot: port.slot,
            stats_index: e.stats_index,
            dst_mac: e.dst_mac,
            src_mac: e.src_mac,
            port: e.port,
            addr1: e.addr1,
            addr2: e.addr2,
        })
    }

    /// Counter growth per stats slot since the last call.
    fn fast_stats_deltas(&mut self) -> Vec<(u32, u64, u64)> {
        let stats = match self.prog.fast_stats() {
            Ok(s) => s,
            Err(err) => {
                warn!(%err, "reading the fast-path counters failed");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (index, packets, bytes) in stats {
            let prev = self
                .fast_seen
                .insert(index, (packets, bytes))
                .unwrap_or((0, 0));
            let (dp, db) = (packets.saturating_sub(prev.0), bytes.saturating_sub(prev.1));
            if dp > 0 || db > 0 {
                out.push((index, dp, db));
            }
        }
        out
    }

    /// How long ago the most recently used of `keys` forwarded a packet; `None` if none of
    /// them has (or none exists).
    fn idle(&self, keys: &[Option<FlowKey>; 2]) -> Option<Duration> {
        let now = xdp::monotonic_ns();
        let last = keys
            .iter()
            .flatten()
            .filter_map(|k| self.prog.fast_last_seen(&flow_key(k)).ok().flatten())
            .filter(|&t| t != 0)
            .max()?;
        Some(Duration::from_nanos(now.saturating_sub(last)))
    }
}

fn flow_key(k: &FlowKey) -> xdp::FlowKey {
    xdp::FlowKey {
        proto: k.proto,
        saddr: k.saddr,
        daddr: k.daddr,
        sport: k.sport,
        dport: k.dport,
    }
}

fn log_err(r: Result<(), rvs_io::IoError>, what: &str) {
    if let Err(err) = r {
        warn!(%err, "steering map update {what} failed");
    }
}

/// Folds what the fast path forwarded since the last call into the engine's counters.
pub fn harvest_fast_stats(shared: &Shared) {
    let deltas = shared.steering().fast_stats_deltas();
    if deltas.is_empty() {
        return;
    }
    shared.with(|e| {
        for (index, packets, bytes) in deltas {
            e.fast_path_counters(index, packets, bytes);
        }
    });
}

/// Answers the engine's idle probes; returns the other events.
pub fn answer_probes(shared: &Shared, now: Instant, events: Vec<Event>) -> Vec<Event> {
    let mut rest = Vec::new();
    let mut answers = Vec::new();
    for ev in events {
        match ev {
            Event::FastPathProbe { keys } => {
                let idle = shared.steering().idle(&keys);
                if let Some(k) = keys[0] {
                    debug!(?k, ?idle, "fast-path idle probe");
                    answers.push((k, idle));
                }
            }
            other => rest.push(other),
        }
    }
    if !answers.is_empty() {
        shared.with(|e| {
            for (k, idle) in &answers {
                e.fast_path_idle(now, k, *idle);
            }
        });
    }
    rest
}
