//! The control plane of the engine: every `rvs_api::Request`, with IPVS semantics.
//!
//! Each operation is applied atomically between two packets. Established connections survive
//! every change: editing a service or real server keeps them, and deleting a real server moves it
//! to the trash (unavailable, still referenced) until its connections and templates are gone —
//! or are flushed at once when `expire_nodest_conn` is set.

use std::net::IpAddr;
use std::time::Instant;

use rvs_api::{
    ApiError, ConnEntry, DestEntry, DestSpec, Family, ForwardMethod, Info, Netmask, Request,
    Response, ServiceEntry, ServiceKey, ServiceSpec, TunnelType, svc_flags,
};

use crate::conn::{ConnAddr, ConnTable, TICK_MS, flags};
use crate::dest::{Dest, DestId, DestList, ServiceId};
use crate::engine::Engine;
use crate::sched::{Scheduler, SchedulerKind};
use crate::service::Service;
use crate::state::{sctp, tcp};

/// IPVS version code rvs reports (1.2.1), so ipvsadm-style headers stay identical.
pub const IPVS_VERSION: u32 = 0x0001_0201;

impl Engine {
    /// Applies one control request and returns its answer.
    pub fn control(&mut self, now: Instant, req: Request) -> Response {
        self.advance(now);
        let r = match req {
            Request::GetInfo => Ok(Response::Info { info: self.info() }),
            Request::ListServices => Ok(Response::Services {
                services: self.list_services(),
            }),
            Request::GetService { key } => self
                .services
                .find(&key)
                .map(|id| Response::Services {
                    services: vec![self.service_entry(id)],
                })
                .ok_or(ApiError::NoSuchService),
            Request::AddService { spec } => self.add_service(spec).map(|_| Response::Ok),
            Request::EditService { spec } => self.edit_service(spec).map(|()| Response::Ok),
            Request::DelService { key } => self.del_service(&key).map(|()| Response::Ok),
            Request::Flush => {
                self.flush();
                Ok(Response::Ok)
            }
            Request::AddDest { service, dest } => {
                self.add_dest(&service, dest).map(|_| Response::Ok)
            }
            Request::EditDest { service, dest } => {
                self.edit_dest(&service, dest).map(|()| Response::Ok)
            }
            Request::DelDest {
                service,
                addr,
                port,
            } => self.del_dest(&service, addr, port).map(|()| Response::Ok),
            Request::Zero { service } => self.zero(service.as_ref()).map(|()| Response::Ok),
            Request::SetTimeouts { timeouts } => {
                self.timeouts.set(timeouts);
                Ok(Response::Ok)
            }
            Request::GetTimeouts => Ok(Response::Timeouts {
                timeouts: self.timeouts.timeouts(),
            }),
            Request::ListConns => Ok(Response::Conns {
                conns: self.list_conns(),
            }),
            Request::StartDaemon { .. } | Request::StopDaemon { .. } => {
                Err(ApiError::NotSupported(
                    "connection synchronisation is not implemented in this rvs version".to_owned(),
                ))
            }
            Request::ListDaemons => Ok(Response::Daemons {
                daemons: Vec::new(),
            }),
            Request::GetSysctls => Ok(Response::Sysctls {
                sysctls: self.sysctl.list(),
            }),
            Request::SetSysctl { name, value } => self
                .sysctl
                .set(&name, value)
                .map(|()| Response::Ok)
                .map_err(|e| ApiError::Other(e.to_string())),
            Request::GetCounters => Ok(Response::Counters {
                counters: self.counters(),
            }),
        };
        r.unwrap_or_else(|error| Response::Error { error })
    }

    /// The engine's part of [`Response::Counters`]: `engine.drop.<reason>` for every reason
    /// that dropped a frame (by name, see [`Engine::drop_counters`]), then `engine.conns.ipv4`
    /// and `engine.conns.ipv6` (connection entries, templates included). `rvsd` adds the data
    /// plane's counters, which the engine does not see.
    pub fn counters(&self) -> Vec<(String, u64)> {
        let (v4, v6) = self.conn_count();
        self.drop_counters()
            .into_iter()
            .map(|(reason, n)| (format!("engine.drop.{reason}"), n))
            .chain([
                ("engine.conns.ipv4".to_owned(), v4 as u64),
                ("engine.conns.ipv6".to_owned(), v6 as u64),
            ])
            .collect()
    }

    /// Version and table size.
    pub fn info(&self) -> Info {
        Info {
            version: IPVS_VERSION,
            conn_tab_size: self.conns4.buckets() as u32,
        }
    }

    /// `-A`.
    pub fn add_service(&mut self, mut spec: ServiceSpec) -> Result<ServiceId, ApiError> {
        // IPVS's order: an existing service first, then the scheduler, then the rest.
        if self.services.find(&spec.key).is_some() {
            return Err(ApiError::ServiceExists);
        }
        let kind = parse_scheduler(&spec.scheduler)?;
        validate_service(&mut spec)?;
        let sched = Scheduler::new(kind, spec.flags, DestList::new(&[], &self.dests))
            .map_err(|_| ApiError::Invalid)?;
        let id = self.services.insert(Service {
            spec,
            sched,
            dests: Vec::new(),
            stats: Default::default(),
        });
        self.vip_refs_changed();
        Ok(id)
    }

    /// `-E`: every parameter is replaced; connections and real servers stay.
    pub fn edit_service(&mut self, mut spec: ServiceSpec) -> Result<(), ApiError> {
        let id = self
            .services
            .find(&spec.key)
            .ok_or(ApiError::NoSuchService)?;
        let kind = parse_scheduler(&spec.scheduler)?;
        validate_service(&mut spec)?;
        let Some(svc) = self.services.get_mut(id) else {
            return Err(ApiError::NoSuchService);
        };
        // IPVS rebinds only when the algorithm changes; flags are read at scheduling time.
        if svc.sched.kind() != kind {
            svc.sched = Scheduler::new(kind, spec.flags, DestList::new(&svc.dests, &self.dests))
                .map_err(|_| ApiError::Invalid)?;
        } else {
            svc.sched.set_flags(spec.flags);
        }
        svc.spec = spec;
        Ok(())
    }

    /// `-D`.
    pub fn del_service(&mut self, key: &ServiceKey) -> Result<(), ApiError> {
        let id = self.services.find(key).ok_or(ApiError::NoSuchService)?;
        self.remove_service(id);
        Ok(())
    }

    fn remove_service(&mut self, id: ServiceId) {
        let Some(svc) = self.services.remove(id) else {
            return;
        };
        for d in svc.dests {
            self.retire_dest(d, svc.spec.key);
        }
        self.vip_refs_changed();
        if self.sysctl.expire_nodest_conn {
            self.flush_nodest_conns();
        }
    }

    /// `-C`.
    pub fn flush(&mut self) {
        let ids: Vec<ServiceId> = self.services.iter().map(|(id, _)| id).collect();
        for id in ids {
            self.remove_service(id);
        }
    }

    /// `-a`.
    pub fn add_dest(&mut self, key: &ServiceKey, spec: DestSpec) -> Result<DestId, ApiError> {
        let sid = self.services.find(key).ok_or(ApiError::ServiceNotDefined)?;
        validate_dest(key, &spec)?;
        let Some(svc) = self.services.get(sid) else {
            return Err(ApiError::ServiceNotDefined);
        };
        if svc.dests.iter().any(|&d| {
            self.dests
                .get(d)
                .is_some_and(|d| d.addr == spec.addr && d.port == spec.port)
        }) {
            return Err(ApiError::DestExists);
        }
        // Only a new real server must be unicast (ip_vs_new_dest); editing looks it up.
        if !is_unicast(spec.addr) {
            return Err(ApiError::Invalid);
        }
        // A real server deleted from this service and re-added while its connections still
        // live is revived with its counters, as IPVS does with its trash list.
        // Matched by service key, not id: a deleted service's slot may hold another service.
        let revived = self.trash.iter().position(|&(t, k)| {
            k == *key
                && self
                    .dests
                    .get(t)
                    .is_some_and(|d| d.addr == spec.addr && d.port == spec.port)
        });
        let id = match revived {
            Some(pos) => {
                let (id, _) = self.trash.swap_remove(pos);
                if let Some(d) = self.dests.get_mut(id) {
                    d.available = true;
                    d.service = sid;
                    apply_dest_spec(d, spec);
                }
                id
            }
            None => self.dests.insert(Dest::new(spec, sid)),
        };
        let Some(svc) = self.services.get_mut(sid) else {
            return Err(ApiError::ServiceNotDefined);
        };
        svc.dests.insert(0, id);
        svc.sched
            .add_dest(DestList::new(&svc.dests, &self.dests), id);
        self.vip_refs_changed();
        Ok(id)
    }

    /// `-e`: every parameter of the real server is replaced.
    pub fn edit_dest(&mut self, key: &ServiceKey, spec: DestSpec) -> Result<(), ApiError> {
        let sid = self.services.find(key).ok_or(ApiError::ServiceNotDefined)?;
        validate_dest(key, &spec)?;
        let id = self
            .find_dest(sid, spec.addr, spec.port)
            .ok_or(ApiError::NoSuchDest)?;
        if let Some(d) = self.dests.get_mut(id) {
            apply_dest_spec(d, spec);
        }
        if let Some(svc) = self.services.get_mut(sid) {
            svc.sched
                .upd_dest(DestList::new(&svc.dests, &self.dests), id);
        }
        self.vip_refs_changed();
        Ok(())
    }

    /// `-d`.
    pub fn del_dest(&mut self, key: &ServiceKey, addr: IpAddr, port: u16) -> Result<(), ApiError> {
        let sid = self.services.find(key).ok_or(ApiError::ServiceNotDefined)?;
        let id = self
            .find_dest(sid, addr, port)
            .ok_or(ApiError::NoSuchDest)?;
        let Some(svc) = self.services.get_mut(sid) else {
            return Err(ApiError::ServiceNotDefined);
        };
        let before = svc.dests.clone();
        svc.dests.retain(|&d| d != id);
        svc.sched.del_dest(
            DestList::new(&before, &self.dests),
            DestList::new(&svc.dests, &self.dests),
            id,
        );
        self.retire_dest(id, *key);
        self.vip_refs_changed();
        if self.sysctl.expire_nodest_conn {
            self.flush_nodest_conns();
        }
        Ok(())
    }

    fn find_dest(&self, sid: ServiceId, addr: IpAddr, port: u16) -> Option<DestId> {
        let svc = self.services.get(sid)?;
        svc.dests.iter().copied().find(|&d| {
            self.dests
                .get(d)
                .is_some_and(|d| d.addr == addr && d.port == port)
        })
    }

    /// Marks a real server unavailable; frees it now if nothing refers to it, else trashes it.
    fn retire_dest(&mut self, id: DestId, service: ServiceKey) {
        let Some(d) = self.dests.get_mut(id) else {
            return;
        };
        d.available = false;
        if d.refs() == 0 {
            self.dests.remove(id);
        } else {
            self.trash.push((id, service));
            if self.fast_path {
                self.fast_withdraw_dest(id);
            }
        }
    }

    /// Frees trashed real servers nothing refers to any more.
    pub(crate) fn purge_trash(&mut self) {
        let dests = &mut self.dests;
        self.trash.retain(|&(id, _)| {
            if dests.get(id).is_some_and(|d| d.refs() == 0) {
                dests.remove(id);
                false
            } else {
                true
            }
        });
    }

    /// `expire_nodest_conn`: drop every connection whose real server is gone.
    fn flush_nodest_conns(&mut self) {
        fn victims<A: ConnAddr>(t: &ConnTable<A>, e: &crate::dest::DestArena) -> Vec<u32> {
            t.iter()
                .filter(|(_, c)| !c.is_template() && e.get(c.dest).is_none_or(|d| !d.available))
                .map(|(i, _)| i)
                .collect()
        }
        for i in victims(&self.conns4, &self.dests) {
            self.delete_conn4(i);
        }
        for i in victims(&self.conns6, &self.dests) {
            self.delete_conn6(i);
        }
        self.purge_trash();
    }

    /// `-Z`.
    pub fn zero(&mut self, key: Option<&ServiceKey>) -> Result<(), ApiError> {
        let ids: Vec<ServiceId> = match key {
            Some(k) => vec![self.services.find(k).ok_or(ApiError::NoSuchService)?],
            None => {
                self.stats.zero();
                self.services.iter().map(|(id, _)| id).collect()
            }
        };
        for id in ids {
            let Some(svc) = self.services.get_mut(id) else {
                continue;
            };
            svc.stats.zero();
            for &d in &svc.dests {
                if let Some(d) = self.dests.get_mut(d) {
                    d.stats.zero();
                }
            }
        }
        Ok(())
    }

    /// Every service as `ipvsadm -L` needs it.
    pub fn list_services(&self) -> Vec<ServiceEntry> {
        self.services
            .iter()
            .map(|(id, _)| self.service_entry(id))
            .collect()
    }

    fn service_entry(&self, id: ServiceId) -> ServiceEntry {
        let svc = self.services.get(id).expect("listed service exists");
        ServiceEntry {
            spec: svc.spec.clone(),
            stats: svc.stats.stats(),
            rates: svc.stats.rates(),
            dests: svc
                .dests
                .iter()
                .filter_map(|&d| self.dests.get(d))
                .map(|d| DestEntry {
                    spec: d.spec.clone(),
                    activeconns: d.activeconns,
                    inactconns: d.inactconns,
                    persistconns: d.persistconns,
                    stats: d.stats.stats(),
                    rates: d.stats.rates(),
                })
                .collect(),
        }
    }

    /// The connection table as `ipvsadm -L -c` needs it (templates included).
    pub fn list_conns(&self) -> Vec<ConnEntry> {
        let mut out = Vec::with_capacity(self.conns4.len() + self.conns6.len());
        self.collect_conns(&self.conns4, &mut out);
        self.collect_conns(&self.conns6, &mut out);
        out
    }

    fn collect_conns<A: ConnAddr>(&self, t: &ConnTable<A>, out: &mut Vec<ConnEntry>) {
        let now = self.tick;
        for (_, c) in t.iter() {
            let state = if c.is_template() {
                if c.flags & flags::ASSURED != 0 {
                    "ASSURED"
                } else {
                    "NONE"
                }
            } else {
                match c.proto {
                    6 => tcp::NAMES.get(c.state as usize).copied().unwrap_or("ERR!"),
                    17 => "UDP",
                    132 => sctp::NAMES.get(c.state as usize).copied().unwrap_or("ERR!"),
                    _ => "ERR!",
                }
            };
            let dest = self.dests.get(c.dest);
            out.push(ConnEntry {
                protocol: c.proto,
                caddr: c.caddr.to_ip(),
                cport: c.cport,
                vaddr: c.vaddr.to_ip(),
                vport: c.vport,
                daddr: dest.map_or(c.daddr.to_ip(), |d| d.addr),
                dport: c.dport,
                state: state.to_owned(),
                expires_ms: u64::from(c.remaining(now)) * TICK_MS,
                flags: u32::from(c.flags & !(flags::OUT_LINKED | flags::ASSURED)),
                pe_name: None,
                pe_data: None,
            });
        }
    }
}

fn parse_scheduler(name: &str) -> Result<SchedulerKind, ApiError> {
    name.parse().map_err(|()| ApiError::SchedulerNotFound)
}

fn validate_service(spec: &mut ServiceSpec) -> Result<(), ApiError> {
    spec.flags &= !svc_flags::HASHED;
    if spec.pe_name.is_some() {
        // The only IPVS persistence engine is `sip`, which rvs does not implement yet; IPVS
        // answers an unknown engine with this same error.
        return Err(ApiError::SchedulerNotFound);
    }
    match (spec.key.family(), spec.netmask) {
        (Family::Inet, Netmask::V4(_)) => {}
        (Family::Inet6, Netmask::V6(p)) if (1..=128).contains(&p) => {}
        _ => return Err(ApiError::Invalid),
    }
    if let ServiceKey::Fwmark { mark: 0, .. } = spec.key {
        return Err(ApiError::Invalid);
    }
    Ok(())
}

fn validate_dest(key: &ServiceKey, spec: &DestSpec) -> Result<(), ApiError> {
    if spec.weight > i32::MAX as u32 {
        return Err(ApiError::OutOfRange);
    }
    if spec.l_threshold > spec.u_threshold {
        return Err(ApiError::OutOfRange);
    }
    if Family::of(&spec.addr) != key.family() && spec.fwd_method != ForwardMethod::Tunnel {
        return Err(ApiError::Invalid);
    }
    if spec.fwd_method == ForwardMethod::Tunnel
        && spec.tun_type == TunnelType::Gue
        && spec.tun_port == 0
    {
        return Err(ApiError::Invalid);
    }
    Ok(())
}

/// Whether a new real server's address is acceptable: unicast, as IPVS requires.
fn is_unicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => !(a.is_multicast() || a.is_broadcast() || a.is_unspecified()),
        // Link-local real servers would need a scope (interface) IPVS cannot express either.
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified() || a.is_unicast_link_local()),
    }
}

fn apply_dest_spec(d: &mut Dest, spec: DestSpec) {
    // Editing clears OVERLOAD when the upper threshold is removed or raised (ip_vs_ctl.c).
    if spec.u_threshold == 0 || spec.u_threshold > d.spec.u_threshold {
        d.overloaded = false;
    }
    d.weight = spec.weight;
    if spec.weight != 0 {
        d.last_weight = spec.weight;
    }
    d.spec = spec;
}
