//! The lab topology as data: namespaces, veth pairs, bridges, addresses, routes and sysctls for
//! one forwarding method. Pure; [`super::up`] turns it into `ip` commands.
//!
//! ```text
//!  rvs-lab-client                 rvs-lab-router                       rvs-lab-lan (bridges only)
//!  eth0 198.18.1.10/24 ──────── to-client 198.18.1.1/24
//!       (+ .11-.17 sources)      to-lan    198.18.0.1/24 ──────────── br-lan ─┬─ dir  ── rvs-lab-dir eth0 198.18.0.2/24
//!                                to-tun    198.18.3.1/24 (TUN) ─────── br-tun │         (VIP 198.18.0.100 answered by rvsd)
//!                                                                             └─ rs1..3 (DR: 198.18.0.11-13)
//!  NAT: rvs-lab-dir eth1 198.18.2.1/24 ── br-nat ── rs1..3 198.18.2.11-13 (gateway 198.18.2.1)
//!  TUN: br-tun ── rs1..3 198.18.3.11-13 (gateway 198.18.3.1, the router)
//! ```
//!
//! IPv6 mirrors IPv4: `198.18.N.x` ↔ `2001:db8:N::x` (`2001:db8::x` for N = 0).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// IPv4 VIP of every lab service.
pub const VIP4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
/// IPv6 VIP of every lab service.
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
/// HTTP service port.
pub const HTTP_PORT: u16 = 80;
/// UDP service port.
pub const UDP_PORT: u16 = 53;
/// Number of real servers.
pub const REAL_SERVERS: usize = 3;
/// Client source addresses: `198.18.1.10` and the following ones, for source-hashing demos.
pub const CLIENT_SOURCES: u8 = 8;
/// MTU of the director's and the tunnel segment's links in TUN mode, so that an encapsulated
/// full-size client packet (1500 + 20 or 40 bytes) needs no fragmentation.
pub const TUN_SEGMENT_MTU: u32 = 1600;

/// The LVS forwarding method the lab is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabMode {
    /// Masquerading: real servers on an internal segment behind the director.
    Nat,
    /// Direct routing: real servers on the director's LAN, VIP hidden on `lo`.
    Dr,
    /// IP tunnelling: real servers on a segment behind the router, VIP hidden on `lo`, decap.
    Tun,
}

impl LabMode {
    /// All modes in demo order.
    pub const ALL: [Self; 3] = [Self::Nat, Self::Dr, Self::Tun];

    /// The rvs-api forwarding method of the real servers.
    pub const fn forward_method(self) -> rvs_api::ForwardMethod {
        match self {
            Self::Nat => rvs_api::ForwardMethod::Masq,
            Self::Dr => rvs_api::ForwardMethod::Route,
            Self::Tun => rvs_api::ForwardMethod::Tunnel,
        }
    }
}

impl fmt::Display for LabMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Nat => "nat",
            Self::Dr => "dr",
            Self::Tun => "tun",
        })
    }
}

impl std::str::FromStr for LabMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "nat" => Ok(Self::Nat),
            "dr" => Ok(Self::Dr),
            "tun" => Ok(Self::Tun),
            _ => Err(format!("unknown mode `{s}` (nat, dr, tun)")),
        }
    }
}

/// Address of host `host` on lab segment `net` (198.18.`net`.`host`).
pub const fn v4(net: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, net, host)
}

/// IPv6 twin of [`v4`]: `2001:db8:net::host` where `host` is written in decimal digits read as
/// hex (`.11` ↔ `::11`), so the two families look alike.
pub const fn v6(net: u8, host: u8) -> Ipv6Addr {
    let h = ((host / 100) as u16) << 8 | (((host / 10) % 10) as u16) << 4 | (host % 10) as u16;
    Ipv6Addr::new(0x2001, 0xdb8, net as u16, 0, 0, 0, 0, h)
}

/// LAN segment (router, director, DR real servers).
pub const NET_LAN: u8 = 0;
/// Client segment.
pub const NET_CLIENT: u8 = 1;
/// NAT internal segment behind the director.
pub const NET_NAT: u8 = 2;
/// TUN segment behind the router.
pub const NET_TUN: u8 = 3;

/// A veth pair: `a_dev` in `a_ns`, `b_dev` in `b_ns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Veth {
    /// Namespace of the first end.
    pub a_ns: String,
    /// Name of the first end.
    pub a_dev: String,
    /// Namespace of the second end.
    pub b_ns: String,
    /// Name of the second end.
    pub b_dev: String,
    /// MTU of both ends.
    pub mtu: u32,
}

/// A bridge in the LAN namespace and the veth ends enslaved to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    /// Bridge name.
    pub name: String,
    /// Ports.
    pub ports: Vec<String>,
    /// MTU.
    pub mtu: u32,
}

/// An address to configure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Namespace.
    pub ns: String,
    /// Device.
    pub dev: String,
    /// Address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
}

/// A default route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Namespace.
    pub ns: String,
    /// Gateway.
    pub via: IpAddr,
}

/// One real server of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServerPlan {
    /// `rs1`…`rs3`: namespace suffix and the name the test servers answer with.
    pub name: String,
    /// Namespace.
    pub ns: String,
    /// IPv4 RIP.
    pub rip4: Ipv4Addr,
    /// IPv6 RIP.
    pub rip6: Ipv6Addr,
    /// Its only interface.
    pub dev: String,
}

/// Everything the lab creates for one mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Lab name (`lab` → namespaces `rvs-lab-*`).
    pub name: String,
    /// Forwarding method.
    pub mode: LabMode,
    /// Client namespace.
    pub client: String,
    /// Router namespace.
    pub router: String,
    /// Namespace holding the bridges.
    pub lan: String,
    /// Director namespace.
    pub director: String,
    /// Real servers.
    pub real_servers: Vec<RealServerPlan>,
    /// Director interfaces given to rvsd (`eth0`, plus `eth1` for NAT).
    pub director_interfaces: Vec<String>,
    /// Router interface on the LAN (where ARP/ND for the VIP is probed).
    pub router_lan_dev: String,
    /// Router interface towards the client.
    pub router_client_dev: String,
    /// Veth pairs.
    pub veths: Vec<Veth>,
    /// Bridges (in [`Plan::lan`]).
    pub bridges: Vec<Bridge>,
    /// Addresses.
    pub addresses: Vec<Address>,
    /// Default routes.
    pub routes: Vec<Route>,
    /// Sysctls `(namespace, key, value)`.
    pub sysctls: Vec<(String, String, String)>,
}

impl Plan {
    /// The namespace `rvs-<lab>-<role>`.
    pub fn ns(name: &str, role: &str) -> String {
        format!("rvs-{name}-{role}")
    }

    /// Every namespace of the lab `name`, whatever the mode (what `down` may remove).
    pub fn all_namespaces(name: &str) -> Vec<String> {
        let mut v: Vec<String> = ["client", "router", "lan", "dir"]
            .iter()
            .map(|r| Self::ns(name, r))
            .collect();
        v.extend((1..=REAL_SERVERS).map(|i| Self::ns(name, &format!("rs{i}"))));
        v
    }

    /// Namespaces in creation order.
    pub fn namespaces(&self) -> Vec<String> {
        let mut v = vec![
            self.client.clone(),
            self.router.clone(),
            self.lan.clone(),
            self.director.clone(),
        ];
        v.extend(self.real_servers.iter().map(|r| r.ns.clone()));
        v
    }

    /// IPv4 client address used for requests.
    pub const fn client4() -> Ipv4Addr {
        v4(NET_CLIENT, 10)
    }

    /// IPv6 client address used for requests.
    pub const fn client6() -> Ipv6Addr {
        v6(NET_CLIENT, 10)
    }

    /// The topology for `mode`.
    pub fn new(name: &str, mode: LabMode) -> Self {
        let client = Self::ns(name, "client");
        let router = Self::ns(name, "router");
        let lan = Self::ns(name, "lan");
        let director = Self::ns(name, "dir");
        let tun_mtu = if mode == LabMode::Tun {
            TUN_SEGMENT_MTU
        } else {
            1500
        };
        let rs_net = match mode {
            LabMode::Nat => NET_NAT,
            LabMode::Dr => NET_LAN,
            LabMode::Tun => NET_TUN,
        };
        let real_servers: Vec<RealServerPlan> = (1..=REAL_SERVERS as u8)
            .map(|i| RealServerPlan {
                name: format!("rs{i}"),
                ns: Self::ns(name, &format!("rs{i}")),
                rip4: v4(rs_net, 10 + i),
                rip6: v6(rs_net, 10 + i),
                dev: "eth0".into(),
            })
            .collect();

        let veth = |a_ns: &str, a_dev: &str, b_ns: &str, b_dev: &str, mtu| Veth {
            a_ns: a_ns.into(),
            a_dev: a_dev.into(),
            b_ns: b_ns.into(),
            b_dev: b_dev.into(),
            mtu,
        };
        let mut veths = vec![
            veth(&client, "eth0", &router, "to-client", 1500),
            veth(&router, "to-lan", &lan, "router", tun_mtu),
            veth(&director, "eth0", &lan, "dir", tun_mtu),
        ];
        let mut bridges = vec![Bridge {
            name: "br-lan".into(),
            ports: vec!["router".into(), "dir".into()],
            mtu: tun_mtu,
        }];
        let rs_bridge = match mode {
            LabMode::Dr => 0,
            LabMode::Nat => {
                veths.push(veth(&director, "eth1", &lan, "dir-nat", 1500));
                bridges.push(Bridge {
                    name: "br-nat".into(),
                    ports: vec!["dir-nat".into()],
                    mtu: 1500,
                });
                1
            }
            LabMode::Tun => {
                veths.push(veth(&router, "to-tun", &lan, "router-tun", tun_mtu));
                bridges.push(Bridge {
                    name: "br-tun".into(),
                    ports: vec!["router-tun".into()],
                    mtu: tun_mtu,
                });
                1
            }
        };
        let rs_mtu = bridges[rs_bridge].mtu;
        for rs in &real_servers {
            veths.push(veth(&rs.ns, &rs.dev, &lan, &rs.name, rs_mtu));
            bridges[rs_bridge].ports.push(rs.name.clone());
        }

        let mut addresses = Vec::new();
        let mut add = |ns: &str, dev: &str, net: u8, host: u8| {
            for (addr, prefix_len) in [
                (IpAddr::V4(v4(net, host)), 24),
                (IpAddr::V6(v6(net, host)), 64),
            ] {
                addresses.push(Address {
                    ns: ns.into(),
                    dev: dev.into(),
                    addr,
                    prefix_len,
                });
            }
        };
        for k in 0..CLIENT_SOURCES {
            add(&client, "eth0", NET_CLIENT, 10 + k);
        }
        add(&router, "to-client", NET_CLIENT, 1);
        add(&router, "to-lan", NET_LAN, 1);
        add(&director, "eth0", NET_LAN, 2);
        match mode {
            LabMode::Nat => add(&director, "eth1", NET_NAT, 1),
            LabMode::Tun => add(&router, "to-tun", NET_TUN, 1),
            LabMode::Dr => {}
        }
        for (i, rs) in real_servers.iter().enumerate() {
            add(&rs.ns, &rs.dev, rs_net, 11 + i as u8);
        }

        let mut routes = Vec::new();
        let mut via = |ns: &str, net: u8, host: u8| {
            routes.push(Route {
                ns: ns.into(),
                via: IpAddr::V4(v4(net, host)),
            });
            routes.push(Route {
                ns: ns.into(),
                via: IpAddr::V6(v6(net, host)),
            });
        };
        via(&client, NET_CLIENT, 1);
        via(&director, NET_LAN, 1);
        let rs_gw = match mode {
            LabMode::Nat => (NET_NAT, 1),
            LabMode::Dr => (NET_LAN, 1),
            LabMode::Tun => (NET_TUN, 1),
        };
        for rs in &real_servers {
            via(&rs.ns, rs_gw.0, rs_gw.1);
        }

        let s = |ns: &str, k: &str, v: &str| (ns.to_owned(), k.to_owned(), v.to_owned());
        let mut sysctls = vec![
            // The router routes; rp_filter off because TUN replies leave the real servers with
            // the VIP as source on a segment the VIP is not routed to.
            s(&router, "net.ipv4.ip_forward", "1"),
            s(&router, "net.ipv6.conf.all.forwarding", "1"),
            s(&router, "net.ipv4.conf.all.rp_filter", "0"),
            s(&router, "net.ipv4.conf.default.rp_filter", "0"),
            // The director's kernel must not forward: rvsd forwards VIP traffic itself (XDP/AF_XDP)
            // and the kernel would only forward what the engine missed, un-NATed (leaking RIPs),
            // or bounce VIP packets back with ICMP redirects.
            s(&director, "net.ipv4.ip_forward", "0"),
            s(&director, "net.ipv6.conf.all.forwarding", "0"),
            s(&director, "net.ipv4.conf.all.send_redirects", "0"),
            // The bridges need no addresses; no IPv6 on them avoids RS/MLD noise in captures.
            s(&lan, "net.ipv6.conf.all.disable_ipv6", "1"),
            s(&lan, "net.ipv6.conf.default.disable_ipv6", "1"),
        ];
        for ns in [&client, &router, &director]
            .into_iter()
            .chain(real_servers.iter().map(|r| &r.ns))
        {
            // Lab addresses are unique by construction: skip DAD so they work at once.
            sysctls.push(s(ns, "net.ipv6.conf.all.accept_dad", "0"));
            sysctls.push(s(ns, "net.ipv6.conf.default.accept_dad", "0"));
            // No router advertisements in the lab: routes are static.
            sysctls.push(s(ns, "net.ipv6.conf.default.accept_ra", "0"));
        }

        Self {
            name: name.into(),
            mode,
            client,
            router,
            lan,
            director,
            real_servers,
            director_interfaces: if mode == LabMode::Nat {
                vec!["eth0".into(), "eth1".into()]
            } else {
                vec!["eth0".into()]
            },
            router_lan_dev: "to-lan".into(),
            router_client_dev: "to-client".into(),
            veths,
            bridges,
            addresses,
            routes,
            sysctls,
        }
    }

    /// Client source addresses of one family (the first is the main one).
    pub fn client_sources(ipv6: bool) -> Vec<IpAddr> {
        (0..CLIENT_SOURCES)
            .map(|k| {
                if ipv6 {
                    IpAddr::V6(v6(NET_CLIENT, 10 + k))
                } else {
                    IpAddr::V4(v4(NET_CLIENT, 10 + k))
                }
            })
            .collect()
    }

    /// Where the real servers' HTTP/UDP servers listen: RIPs (dual-stack wildcard for HTTP), and
    /// for DR/TUN also the VIPs, so UDP replies leave with the VIP as source.
    pub fn udp_listen(&self, rs: &RealServerPlan) -> Vec<String> {
        let mut v = vec![
            format!("{}:{UDP_PORT}", rs.rip4),
            format!("[{}]:{UDP_PORT}", rs.rip6),
        ];
        if self.mode != LabMode::Nat {
            v.push(format!("{VIP4}:{UDP_PORT}"));
            v.push(format!("[{VIP6}]:{UDP_PORT}"));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v6_mirrors_v4() {
        assert_eq!(v6(0, 11).to_string(), "2001:db8::11");
        assert_eq!(v6(2, 1).to_string(), "2001:db8:2::1");
        assert_eq!(v6(1, 100).to_string(), "2001:db8:1::100");
        assert_eq!(IpAddr::V6(VIP6), "2001:db8::100".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn addresses_follow_the_brief() {
        let p = Plan::new("lab", LabMode::Nat);
        assert_eq!(p.director, "rvs-lab-dir");
        let has = |ns: &str, dev: &str, a: &str| {
            let a: IpAddr = a.parse().unwrap();
            p.addresses
                .iter()
                .any(|x| x.ns == ns && x.dev == dev && x.addr == a)
        };
        assert!(has("rvs-lab-client", "eth0", "198.18.1.10"));
        assert!(has("rvs-lab-client", "eth0", "2001:db8:1::10"));
        assert!(has("rvs-lab-router", "to-client", "198.18.1.1"));
        assert!(has("rvs-lab-router", "to-lan", "2001:db8::1"));
        assert!(has("rvs-lab-dir", "eth0", "198.18.0.2"));
        assert!(has("rvs-lab-dir", "eth1", "198.18.2.1"));
        assert!(has("rvs-lab-rs2", "eth0", "198.18.2.12"));
        assert!(has("rvs-lab-rs3", "eth0", "2001:db8:2::13"));
        assert_eq!(p.director_interfaces, ["eth0", "eth1"]);
        let gw: Vec<_> = p
            .routes
            .iter()
            .filter(|r| r.ns == "rvs-lab-rs1")
            .map(|r| r.via)
            .collect();
        assert_eq!(
            gw,
            [
                "198.18.2.1".parse::<IpAddr>().unwrap(),
                "2001:db8:2::1".parse().unwrap()
            ]
        );

        let d = Plan::new("lab", LabMode::Dr);
        assert_eq!(d.real_servers[0].rip4, v4(0, 11));
        assert_eq!(d.bridges.len(), 1);
        assert!(d.bridges[0].ports.contains(&"rs3".to_string()));
        let t = Plan::new("lab", LabMode::Tun);
        assert_eq!(t.real_servers[2].rip6.to_string(), "2001:db8:3::13");
        assert!(
            t.routes
                .iter()
                .any(|r| r.ns == "rvs-lab-rs1" && r.via == IpAddr::V4(v4(3, 1)))
        );
    }

    #[test]
    fn every_address_is_in_the_test_ranges() {
        for mode in LabMode::ALL {
            let p = Plan::new("lab", mode);
            for a in &p.addresses {
                match a.addr {
                    IpAddr::V4(v) => assert_eq!(v.octets()[..2], [198, 18], "{v}"),
                    IpAddr::V6(v) => assert_eq!(v.segments()[..2], [0x2001, 0xdb8], "{v}"),
                }
            }
            // Every veth end in the LAN namespace is a bridge port, and vice versa.
            let mut lan_ends: Vec<_> = p
                .veths
                .iter()
                .filter(|v| v.b_ns == p.lan)
                .map(|v| v.b_dev.clone())
                .collect();
            let mut ports: Vec<_> = p.bridges.iter().flat_map(|b| b.ports.clone()).collect();
            lan_ends.sort();
            ports.sort();
            assert_eq!(lan_ends, ports, "{mode}");
            // Interface names fit IFNAMSIZ.
            assert!(
                p.veths
                    .iter()
                    .all(|v| v.a_dev.len() < 16 && v.b_dev.len() < 16)
            );
        }
    }
}
