//! Virtual services and the table that finds the one a packet belongs to.
//!
//! Lookup follows IPVS's precedence (spec §4.1): firewall-mark service (when the packet carries
//! a mark) > exact `<protocol, VIP, port>` > the port-21 service of the VIP for TCP FTP data
//! ports (20 or ≥ 1024) > the port-0 service of the VIP.

use std::collections::HashMap;
use std::net::IpAddr;

use rvs_api::{Family, ServiceKey, ServiceSpec, svc_flags};

use crate::dest::{DestId, ServiceId};
use crate::sched::{Scheduler, SchedulerKind};
use crate::stats::StatsBlock;

/// One virtual service.
#[derive(Debug, Clone)]
pub struct Service {
    /// Configuration.
    pub spec: ServiceSpec,
    /// The bound scheduler.
    pub sched: Scheduler,
    /// Real servers in list order (newest first).
    pub dests: Vec<DestId>,
    /// Counters.
    pub stats: StatsBlock,
}

impl Service {
    /// Whether the service is persistent.
    pub const fn is_persistent(&self) -> bool {
        self.spec.flags & svc_flags::PERSISTENT != 0
    }

    /// Whether one-packet scheduling applies (UDP services only, as in IPVS).
    pub fn is_one_packet(&self) -> bool {
        self.spec.flags & svc_flags::ONEPACKET != 0
    }

    /// The scheduler algorithm.
    pub const fn scheduler_kind(&self) -> SchedulerKind {
        self.sched.kind()
    }
}

type AddrKey = (u8, IpAddr, u16);

/// All virtual services.
#[derive(Debug, Default, Clone)]
pub struct ServiceTable {
    slots: Vec<Option<Service>>,
    free: Vec<u32>,
    by_addr: HashMap<AddrKey, ServiceId, foldhash::fast::RandomState>,
    by_mark: HashMap<(u32, Family), ServiceId, foldhash::fast::RandomState>,
    /// How many port-21 and port-0 services exist: lookups (3) and (4) are skipped while zero.
    ftp_services: usize,
    port0_services: usize,
}

impl ServiceTable {
    /// Number of services.
    pub fn len(&self) -> usize {
        self.by_addr.len() + self.by_mark.len()
    }

    /// Whether there is no service.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The service with exactly this key.
    pub fn find(&self, key: &ServiceKey) -> Option<ServiceId> {
        match *key {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => self.by_addr.get(&(protocol.number(), addr, port)).copied(),
            ServiceKey::Fwmark { mark, family } => self.by_mark.get(&(mark, family)).copied(),
        }
    }

    /// The service a packet `<proto, daddr, dport>` (with firewall mark `mark`, 0 if none)
    /// belongs to, in IPVS's precedence order.
    #[inline]
    pub fn lookup(&self, mark: u32, proto: u8, daddr: IpAddr, dport: u16) -> Option<ServiceId> {
        if mark != 0
            && !self.by_mark.is_empty()
            && let Some(&id) = self.by_mark.get(&(mark, Family::of(&daddr)))
        {
            return Some(id);
        }
        if let Some(&id) = self.by_addr.get(&(proto, daddr, dport)) {
            return Some(id);
        }
        if self.ftp_services > 0
            && proto == 6
            && (dport == 20 || dport >= 1024)
            && let Some(&id) = self.by_addr.get(&(proto, daddr, 21))
        {
            return Some(id);
        }
        if self.port0_services > 0 {
            return self.by_addr.get(&(proto, daddr, 0)).copied();
        }
        None
    }

    /// Adds a service; the caller has checked that the key is new.
    pub fn insert(&mut self, svc: Service) -> ServiceId {
        let key = svc.spec.key;
        let id = if let Some(i) = self.free.pop() {
            self.slots[i as usize] = Some(svc);
            ServiceId(i)
        } else {
            self.slots.push(Some(svc));
            ServiceId((self.slots.len() - 1) as u32)
        };
        match key {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                self.by_addr.insert((protocol.number(), addr, port), id);
                self.count_port(port, 1);
            }
            ServiceKey::Fwmark { mark, family } => {
                self.by_mark.insert((mark, family), id);
            }
        }
        id
    }

    fn count_port(&mut self, port: u16, delta: isize) {
        let adj = |n: &mut usize| *n = n.saturating_add_signed(delta);
        match port {
            21 => adj(&mut self.ftp_services),
            0 => adj(&mut self.port0_services),
            _ => {}
        }
    }

    /// Removes a service.
    pub fn remove(&mut self, id: ServiceId) -> Option<Service> {
        let svc = self.slots.get_mut(id.0 as usize)?.take()?;
        match svc.spec.key {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                self.by_addr.remove(&(protocol.number(), addr, port));
                self.count_port(port, -1);
            }
            ServiceKey::Fwmark { mark, family } => {
                self.by_mark.remove(&(mark, family));
            }
        }
        self.free.push(id.0);
        Some(svc)
    }

    /// The service under `id`.
    #[inline]
    pub fn get(&self, id: ServiceId) -> Option<&Service> {
        self.slots.get(id.0 as usize).and_then(Option::as_ref)
    }

    /// The service under `id`, mutably.
    #[inline]
    pub fn get_mut(&mut self, id: ServiceId) -> Option<&mut Service> {
        self.slots.get_mut(id.0 as usize).and_then(Option::as_mut)
    }

    /// Every service with its id, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (ServiceId, &Service)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (ServiceId(i as u32), s)))
    }

    /// Every service, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (ServiceId, &mut Service)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| s.as_mut().map(|s| (ServiceId(i as u32), s)))
    }
}
