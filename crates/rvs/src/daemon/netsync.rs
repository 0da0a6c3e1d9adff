//! Copies what the engine needs to address frames — interfaces, routes, neighbours — from the
//! kernel (netlink), and resolves neighbours the engine asks for.
//!
//! Routes: every connected prefix of a served interface, plus the kernel's default routes
//! (IPv4 and IPv6) when they leave through a served interface. That covers directors whose real
//! servers and clients are on connected subnets or behind the default gateway; other routes are
//! not needed by the forwarding methods rvs implements.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use rvs_engine::{Engine, Event, IfaceId, Interface, Route};
use rvs_io::netlink::Netlink;
use tracing::{debug, info, warn};

use super::Shared;

#[derive(Debug, Clone)]
struct Served {
    name: String,
    ifindex: u32,
    id: IfaceId,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    iface: IfaceId,
    ifindex: u32,
    ip: IpAddr,
    asked: Instant,
    tries: u32,
}

/// How long a neighbour resolution may take before it is asked again, and how often.
const RESOLVE_RETRY: Duration = Duration::from_millis(500);
const RESOLVE_TRIES: u32 = 3;

/// The netlink side of the daemon. See the module docs.
#[derive(Debug)]
pub struct NetSync {
    nl: Netlink,
    served: Vec<Served>,
    pending: Vec<Pending>,
    routes: Vec<Route>,
    interfaces: HashMap<u32, Interface>,
}

impl NetSync {
    /// Opens netlink and looks the named interfaces up. Engine ids follow the order given.
    pub fn open(names: &[String]) -> Result<Self> {
        let mut nl = Netlink::open().context("opening a netlink socket")?;
        let mut served = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let link = nl
                .link_by_name(name)
                .with_context(|| format!("interface {name}"))?;
            served.push(Served {
                name: name.clone(),
                ifindex: link.ifindex,
                id: IfaceId(i as u16),
            });
        }
        Ok(Self {
            nl,
            served,
            pending: Vec::new(),
            routes: Vec::new(),
            interfaces: HashMap::new(),
        })
    }

    /// The engine id of the `i`-th served interface.
    pub fn iface_id(&self, i: usize) -> IfaceId {
        self.served[i].id
    }

    fn read_interface(&mut self, s: &Served) -> Result<Interface> {
        let link = self.nl.link_by_index(s.ifindex)?;
        let mac = link
            .mac
            .ok_or_else(|| anyhow!("{} has no Ethernet address", s.name))?;
        let mut addrs: Vec<IpAddr> = self
            .nl
            .addresses(Some(s.ifindex))?
            .into_iter()
            // Link-local IPv6 addresses never source tunnels or ICMP errors to clients.
            .filter(|a| !matches!(a.addr, IpAddr::V6(v6) if v6.is_unicast_link_local()))
            .map(|a| a.addr)
            .collect();
        addrs.sort_by_key(|a| !a.is_ipv4());
        Ok(Interface {
            name: s.name.clone(),
            mac,
            mtu: u16::try_from(link.mtu).unwrap_or(u16::MAX),
            addrs,
        })
    }

    fn read_routes(&mut self) -> Result<Vec<Route>> {
        let mut routes = Vec::new();
        for s in self.served.clone() {
            for a in self.nl.addresses(Some(s.ifindex))? {
                if matches!(a.addr, IpAddr::V6(v6) if v6.is_unicast_link_local()) {
                    continue;
                }
                routes.push(Route {
                    dst: network(a.addr, a.prefix_len),
                    prefix_len: a.prefix_len,
                    iface: s.id,
                    gateway: None,
                    src: Some(a.addr),
                });
            }
        }
        for any in [
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ] {
            // "Which way would 0.0.0.0 go" is the default route, if there is one.
            let probe = match any {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1)),
            };
            let Ok(r) = self.nl.route_get(probe) else {
                continue;
            };
            let (Some(oif), Some(gw)) = (r.oif, r.gateway) else {
                continue;
            };
            if let Some(s) = self.served.iter().find(|s| s.ifindex == oif) {
                routes.push(Route {
                    dst: any,
                    prefix_len: 0,
                    iface: s.id,
                    gateway: Some(gw),
                    src: r.prefsrc,
                });
            }
        }
        routes.dedup();
        Ok(routes)
    }

    /// First copy of interfaces, routes and neighbours into a new engine.
    pub fn install(&mut self, engine: &mut Engine) -> Result<()> {
        for s in self.served.clone() {
            let iface = self.read_interface(&s)?;
            info!(interface = %s.name, mac = %fmt_mac(&iface.mac), mtu = iface.mtu, addrs = ?iface.addrs, "serving");
            let id = engine.add_interface(iface.clone());
            debug_assert_eq!(id, s.id);
            self.interfaces.insert(s.ifindex, iface);
        }
        self.routes = self.read_routes()?;
        info!(routes = ?self.routes, "routes");
        engine.set_routes(self.routes.clone());
        self.copy_neighbours(engine)?;
        Ok(())
    }

    fn copy_neighbours(&mut self, engine: &mut Engine) -> Result<()> {
        for n in self.nl.neighbours()? {
            let Some(s) = self.served.iter().find(|s| s.ifindex == n.ifindex) else {
                continue;
            };
            if n.state.is_valid()
                && let Some(mac) = n.mac
                && engine.l2().neighbour(s.id, n.ip) != Some(mac)
            {
                engine.set_neighbour(s.id, n.ip, Some(mac));
            }
        }
        Ok(())
    }

    /// Re-reads interfaces, routes and neighbours and updates the engine where they changed.
    pub fn refresh(&mut self, shared: &Shared) -> Result<()> {
        let mut changed_ifaces = Vec::new();
        for s in self.served.clone() {
            let iface = self.read_interface(&s)?;
            if self.interfaces.get(&s.ifindex) != Some(&iface) {
                info!(interface = %s.name, mtu = iface.mtu, addrs = ?iface.addrs, "interface changed");
                self.interfaces.insert(s.ifindex, iface.clone());
                changed_ifaces.push((s.id, iface));
            }
        }
        let routes = self.read_routes()?;
        let neigh = self.nl.neighbours()?;
        shared.with(|e| {
            for (id, iface) in changed_ifaces {
                e.update_interface(id, iface);
            }
            if routes != self.routes {
                info!(?routes, "routes changed");
                self.routes = routes;
                e.set_routes(self.routes.clone());
            }
            for n in neigh {
                let Some(s) = self.served.iter().find(|s| s.ifindex == n.ifindex) else {
                    continue;
                };
                if n.state.is_valid()
                    && let Some(mac) = n.mac
                    && e.l2().neighbour(s.id, n.ip) != Some(mac)
                {
                    e.set_neighbour(s.id, n.ip, Some(mac));
                }
            }
        });
        Ok(())
    }

    /// Starts resolving the neighbours the engine asked for.
    pub fn handle_events(&mut self, events: Vec<Event>) {
        for ev in events {
            // Event is non-exhaustive: later kinds are not netlink's business.
            #[allow(clippy::single_match)]
            match ev {
                Event::ResolveNeighbour { iface, addr } => self.start_resolving(iface, addr),
                _ => {}
            }
        }
    }

    fn start_resolving(&mut self, iface: IfaceId, addr: IpAddr) {
        let Some(s) = self.served.iter().find(|s| s.id == iface) else {
            return;
        };
        let ifindex = s.ifindex;
        debug!(%addr, ifindex, "resolving neighbour");
        if let Err(err) = self.nl.resolve_neighbour(ifindex, addr) {
            warn!(%addr, %err, "asking the kernel to resolve a neighbour failed");
        }
        self.pending.push(Pending {
            iface,
            ifindex,
            ip: addr,
            asked: Instant::now(),
            tries: 1,
        });
    }

    /// Hands resolved neighbours to the engine and retries or gives up on the others.
    pub fn poll_pending(&mut self, shared: &Shared, now: Instant) {
        if self.pending.is_empty() {
            return;
        }
        let mut keep = Vec::new();
        for mut p in std::mem::take(&mut self.pending) {
            match self.nl.neighbour(p.ifindex, p.ip) {
                Ok(Some(n)) if n.state.is_valid() && n.mac.is_some() => {
                    shared.with(|e| e.set_neighbour(p.iface, p.ip, n.mac));
                    continue;
                }
                Ok(_) => {}
                Err(err) => warn!(ip = %p.ip, %err, "reading a neighbour failed"),
            }
            if now.duration_since(p.asked) < RESOLVE_RETRY {
                keep.push(p);
            } else if p.tries < RESOLVE_TRIES {
                let _ = self.nl.resolve_neighbour(p.ifindex, p.ip);
                p.asked = now;
                p.tries += 1;
                keep.push(p);
            } else {
                warn!(ip = %p.ip, "neighbour did not resolve; will ask again on the next packet");
                shared.with(|e| e.retry_neighbour(p.iface, p.ip));
            }
        }
        self.pending = keep;
    }
}

fn network(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let len = u32::from(len.min(32));
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let len = u32::from(len.min(128));
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

fn fmt_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
