//! Interfaces, routes and neighbours: what the engine needs to put a rewritten packet on a wire.
//!
//! The engine never asks the kernel anything. The daemon copies the interfaces it serves, the
//! relevant routes and the neighbour entries in (from netlink), and the engine resolves a next
//! hop — egress interface, destination MAC, source MAC, MTU and the source address for tunnel
//! headers — from them. A missing neighbour is reported as an [`crate::Event`] so the daemon can
//! resolve it; the packet that needed it is dropped and counted, like a kernel neighbour miss
//! without a queue.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// Index of an interface the engine transmits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfaceId(pub u16);

/// A MAC address.
pub type Mac = [u8; 6];

/// An interface attached to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Kernel name (for messages).
    pub name: String,
    /// Its MAC address (source MAC of everything sent on it).
    pub mac: Mac,
    /// IP MTU.
    pub mtu: u16,
    /// Its own addresses (DIPs); the first of a family is the default tunnel source.
    pub addrs: Vec<IpAddr>,
}

/// A route: `dst/prefix_len` via `gateway` (or on-link) out of `iface`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix.
    pub dst: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Egress interface.
    pub iface: IfaceId,
    /// Next-hop router, or `None` for an on-link prefix.
    pub gateway: Option<IpAddr>,
    /// Preferred source address (tunnel outer source), if the route names one.
    pub src: Option<IpAddr>,
}

impl Route {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.dst, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let len = u32::from(self.prefix_len.min(32));
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let len = u32::from(self.prefix_len.min(128));
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Where to send a packet for a given destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    /// Egress interface.
    pub iface: IfaceId,
    /// Destination MAC.
    pub dst_mac: Mac,
    /// Source MAC (the egress interface's).
    pub src_mac: Mac,
    /// Egress IP MTU.
    pub mtu: u16,
    /// Source address for headers the director builds (tunnels, ICMP), if it has one of the
    /// destination's family.
    pub src_ip: Option<IpAddr>,
}

/// Why no next hop could be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHopError {
    /// No route covers the destination.
    NoRoute,
    /// The neighbour (gateway or on-link destination) is not resolved yet.
    NoNeighbour,
}

/// The engine's view of the network around it.
#[derive(Debug, Default, Clone)]
pub struct L2 {
    ifaces: Vec<Interface>,
    /// Sorted by prefix length, longest first.
    routes: Vec<Route>,
    neigh: HashMap<(IfaceId, IpAddr), Mac, foldhash::fast::RandomState>,
    wanted: HashSet<(IfaceId, IpAddr), foldhash::fast::RandomState>,
    pending: Vec<(IfaceId, IpAddr)>,
    /// Bumped on every change so callers can cache next hops.
    generation: u32,
}

impl L2 {
    /// Registers an interface and returns its id.
    pub fn add_interface(&mut self, iface: Interface) -> IfaceId {
        self.ifaces.push(iface);
        self.generation = self.generation.wrapping_add(1);
        IfaceId((self.ifaces.len() - 1) as u16)
    }

    /// Replaces an interface's data (MTU or addresses changed).
    pub fn update_interface(&mut self, id: IfaceId, iface: Interface) {
        if let Some(slot) = self.ifaces.get_mut(id.0 as usize) {
            *slot = iface;
            self.generation = self.generation.wrapping_add(1);
        }
    }

    /// The interface under `id`.
    pub fn interface(&self, id: IfaceId) -> Option<&Interface> {
        self.ifaces.get(id.0 as usize)
    }

    /// All interfaces.
    pub fn interfaces(&self) -> impl Iterator<Item = (IfaceId, &Interface)> {
        self.ifaces
            .iter()
            .enumerate()
            .map(|(i, f)| (IfaceId(i as u16), f))
    }

    /// Replaces the routing table.
    pub fn set_routes(&mut self, mut routes: Vec<Route>) {
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix_len));
        self.routes = routes;
        self.generation = self.generation.wrapping_add(1);
    }

    /// The routes, longest prefix first.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Learns (or updates) a neighbour; `None` forgets it.
    pub fn set_neighbour(&mut self, iface: IfaceId, ip: IpAddr, mac: Option<Mac>) {
        match mac {
            Some(m) => {
                if self.neigh.insert((iface, ip), m) != Some(m) {
                    self.generation = self.generation.wrapping_add(1);
                }
                self.wanted.remove(&(iface, ip));
            }
            None => {
                if self.neigh.remove(&(iface, ip)).is_some() {
                    self.generation = self.generation.wrapping_add(1);
                }
            }
        }
    }

    /// The neighbour's MAC, if known.
    pub fn neighbour(&self, iface: IfaceId, ip: IpAddr) -> Option<Mac> {
        self.neigh.get(&(iface, ip)).copied()
    }

    /// Current generation (changes whenever any next hop may have changed).
    pub const fn generation(&self) -> u32 {
        self.generation
    }

    /// The longest-prefix route for `dst`.
    #[inline]
    pub fn route(&self, dst: IpAddr) -> Option<&Route> {
        self.routes.iter().find(|r| r.contains(dst))
    }

    /// Whether `ip` is one of the director's own addresses.
    pub fn is_local(&self, ip: IpAddr) -> bool {
        self.ifaces.iter().any(|i| i.addrs.contains(&ip))
    }

    /// Resolves the next hop towards `dst`. A missing neighbour is queued for resolution once.
    pub fn next_hop(&mut self, dst: IpAddr) -> Result<NextHop, NextHopError> {
        let route = *self.route(dst).ok_or(NextHopError::NoRoute)?;
        let Some(iface) = self.ifaces.get(route.iface.0 as usize) else {
            return Err(NextHopError::NoRoute);
        };
        let via = route.gateway.unwrap_or(dst);
        let src_ip = route
            .src
            .filter(|s| s.is_ipv4() == dst.is_ipv4())
            .or_else(|| {
                iface
                    .addrs
                    .iter()
                    .copied()
                    .find(|a| a.is_ipv4() == dst.is_ipv4())
            });
        let (src_mac, mtu) = (iface.mac, iface.mtu);
        match self.neigh.get(&(route.iface, via)) {
            Some(&dst_mac) => Ok(NextHop {
                iface: route.iface,
                dst_mac,
                src_mac,
                mtu,
                src_ip,
            }),
            None => {
                if self.wanted.insert((route.iface, via)) {
                    self.pending.push((route.iface, via));
                }
                Err(NextHopError::NoNeighbour)
            }
        }
    }

    /// Neighbours to resolve, each reported once until it is learnt.
    pub fn take_wanted(&mut self) -> Vec<(IfaceId, IpAddr)> {
        std::mem::take(&mut self.pending)
    }

    /// Forgets that a neighbour was requested, so a later miss reports it again (the daemon
    /// calls this when a resolution attempt failed).
    pub fn retry_wanted(&mut self, iface: IfaceId, ip: IpAddr) {
        self.wanted.remove(&(iface, ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_and_neighbour_misses() {
        let mut l2 = L2::default();
        let eth = l2.add_interface(Interface {
            name: "eth0".into(),
            mac: [2, 0, 0, 0, 0, 1],
            mtu: 1500,
            addrs: vec![ip("198.18.0.2")],
        });
        l2.set_routes(vec![
            Route {
                dst: ip("0.0.0.0"),
                prefix_len: 0,
                iface: eth,
                gateway: Some(ip("198.18.0.1")),
                src: None,
            },
            Route {
                dst: ip("198.18.0.0"),
                prefix_len: 24,
                iface: eth,
                gateway: None,
                src: None,
            },
        ]);
        assert_eq!(
            l2.next_hop(ip("198.18.0.11")),
            Err(NextHopError::NoNeighbour)
        );
        assert_eq!(
            l2.next_hop(ip("198.18.0.11")),
            Err(NextHopError::NoNeighbour)
        );
        assert_eq!(l2.take_wanted(), vec![(eth, ip("198.18.0.11"))]);
        l2.set_neighbour(eth, ip("198.18.0.11"), Some([2, 0, 0, 0, 0, 11]));
        l2.set_neighbour(eth, ip("198.18.0.1"), Some([2, 0, 0, 0, 0, 0x99]));
        let nh = l2.next_hop(ip("198.18.0.11")).unwrap();
        assert_eq!(nh.dst_mac, [2, 0, 0, 0, 0, 11]);
        assert_eq!(nh.src_ip, Some(ip("198.18.0.2")));
        let nh = l2.next_hop(ip("198.18.7.7")).unwrap();
        assert_eq!(nh.dst_mac, [2, 0, 0, 0, 0, 0x99]);
        assert_eq!(l2.next_hop(ip("2001:db8::1")), Err(NextHopError::NoRoute));
    }
}
