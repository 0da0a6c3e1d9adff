//! Typed virtual services, real servers, counters and connections.
//!
//! Field names and numeric codes are those of IPVS so that a value read from `ipvsadm` or
//! `keepalived.conf` maps onto exactly one field here.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

/// Transport protocol of a virtual service (IANA protocol numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// SCTP (132).
    Sctp,
}

impl Protocol {
    /// The IANA protocol number.
    pub const fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
            Self::Sctp => 132,
        }
    }

    /// The protocol for an IANA number, if it is one IPVS balances.
    pub const fn from_number(n: u8) -> Option<Self> {
        match n {
            6 => Some(Self::Tcp),
            17 => Some(Self::Udp),
            132 => Some(Self::Sctp),
            _ => None,
        }
    }

    /// The name ipvsadm prints (`TCP`, `UDP`, `SCTP`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
            Self::Sctp => "SCTP",
        }
    }
}

/// Address family of a service or real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4 (`AF_INET`, 2).
    Inet,
    /// IPv6 (`AF_INET6`, 10).
    Inet6,
}

impl Family {
    /// The family of an address.
    pub const fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::Inet,
            IpAddr::V6(_) => Self::Inet6,
        }
    }

    /// The Linux `AF_*` number (2 or 10), which ipvsadm's sort order uses.
    pub const fn af_number(self) -> u16 {
        match self {
            Self::Inet => 2,
            Self::Inet6 => 10,
        }
    }
}

/// What identifies a virtual service: `<protocol, VIP, port>` or a firewall mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKey {
    /// `-t/-u/--sctp-service VIP:port`.
    Addr {
        /// Transport protocol.
        protocol: Protocol,
        /// Virtual IP address.
        addr: IpAddr,
        /// Virtual port (0 = every port, only meaningful with persistence).
        port: u16,
    },
    /// `-f mark [-6]`: every packet carrying this firewall mark.
    Fwmark {
        /// The mark (1..=u32::MAX).
        mark: u32,
        /// Which family of packets the mark applies to.
        family: Family,
    },
}

impl ServiceKey {
    /// The address family of the service.
    pub const fn family(&self) -> Family {
        match self {
            Self::Addr { addr, .. } => Family::of(addr),
            Self::Fwmark { family, .. } => *family,
        }
    }

    /// The service port (0 for fwmark services).
    pub const fn port(&self) -> u16 {
        match self {
            Self::Addr { port, .. } => *port,
            Self::Fwmark { .. } => 0,
        }
    }
}

impl fmt::Display for ServiceKey {
    /// Formats like `ipvsadm -S -n` names a service: `-t 10.0.0.1:80`, `-f 1 -6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr {
                protocol,
                addr,
                port,
            } => {
                let opt = match protocol {
                    Protocol::Tcp => "-t",
                    Protocol::Udp => "-u",
                    Protocol::Sctp => "--sctp-service",
                };
                match addr {
                    IpAddr::V4(a) => write!(f, "{opt} {a}:{port}"),
                    IpAddr::V6(a) => write!(f, "{opt} [{a}]:{port}"),
                }
            }
            Self::Fwmark {
                mark,
                family: Family::Inet,
            } => write!(f, "-f {mark}"),
            Self::Fwmark {
                mark,
                family: Family::Inet6,
            } => write!(f, "-f {mark} -6"),
        }
    }
}

/// Service flag bits (`IP_VS_SVC_F_*`).
pub mod svc_flags {
    /// Persistent service (`-p`).
    pub const PERSISTENT: u32 = 0x0001;
    /// Kernel-internal "hashed" bit; never set by clients.
    pub const HASHED: u32 = 0x0002;
    /// One-packet scheduling (`-o`).
    pub const ONEPACKET: u32 = 0x0004;
    /// Scheduler flag 1 (`flag-1`, `sh-fallback`, `mh-fallback`).
    pub const SCHED1: u32 = 0x0008;
    /// Scheduler flag 2 (`flag-2`, `sh-port`, `mh-port`).
    pub const SCHED2: u32 = 0x0010;
    /// Scheduler flag 3 (`flag-3`).
    pub const SCHED3: u32 = 0x0020;
}

/// Persistence netmask of a service: a (possibly non-contiguous) IPv4 mask or an IPv6 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Netmask {
    /// IPv4 mask, default 255.255.255.255.
    V4(Ipv4Addr),
    /// IPv6 prefix length 1..=128, default 128.
    V6(u8),
}

impl Netmask {
    /// The "no grouping" mask of a family (/32 or /128).
    pub const fn host(family: Family) -> Self {
        match family {
            Family::Inet => Self::V4(Ipv4Addr::BROADCAST),
            Family::Inet6 => Self::V6(128),
        }
    }

    /// Whether this is the family's host mask (not printed by ipvsadm).
    pub fn is_host(&self) -> bool {
        matches!(self, Self::V4(m) if *m == Ipv4Addr::BROADCAST) || matches!(self, Self::V6(128))
    }
}

/// Everything `-A`/`-E` sets on a virtual service. `-E` replaces every field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// Identity of the service.
    pub key: ServiceKey,
    /// Scheduler name (`wlc` by default). Validated by the engine, not by the parser, as in IPVS.
    pub scheduler: String,
    /// Persistence engine name (`--pe`), only `sip` exists in IPVS.
    pub pe_name: Option<String>,
    /// [`svc_flags`] bits.
    pub flags: u32,
    /// Persistence timeout in seconds (meaningful with [`svc_flags::PERSISTENT`]).
    pub timeout: u32,
    /// Persistence granularity.
    pub netmask: Netmask,
}

impl ServiceSpec {
    /// A service with ipvsadm's defaults: `wlc`, not persistent, host netmask.
    pub fn new(key: ServiceKey) -> Self {
        Self {
            netmask: Netmask::host(key.family()),
            key,
            scheduler: "wlc".to_owned(),
            pe_name: None,
            flags: 0,
            timeout: 0,
        }
    }

    /// Whether the service is persistent.
    pub const fn is_persistent(&self) -> bool {
        self.flags & svc_flags::PERSISTENT != 0
    }
}

/// How packets reach a real server (`IP_VS_CONN_F_FWD_MASK` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardMethod {
    /// NAT (`-m`): DNAT towards the real server, SNAT on the way back. Code 0.
    Masq,
    /// Local node: deliver to the director's own stack. Code 1.
    Local,
    /// IP tunnelling (`-i`): encapsulate towards the real server. Code 2.
    Tunnel,
    /// Direct routing (`-g`, default): rewrite only the MAC addresses. Code 3.
    Route,
}

impl ForwardMethod {
    /// The kernel code (`conn_flags & 7`).
    pub const fn code(self) -> u32 {
        match self {
            Self::Masq => 0,
            Self::Local => 1,
            Self::Tunnel => 2,
            Self::Route => 3,
        }
    }

    /// The name ipvsadm prints in listings (`Masq`, `Local`, `Tunnel`, `Route`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Masq => "Masq",
            Self::Local => "Local",
            Self::Tunnel => "Tunnel",
            Self::Route => "Route",
        }
    }
}

/// Encapsulation used by a tunnel real server (`--tun-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelType {
    /// IP-in-IP (protocol 4 / 41). Default.
    #[default]
    Ipip,
    /// Generic UDP Encapsulation; needs a port.
    Gue,
    /// GRE.
    Gre,
}

/// Tunnel checksum flags (`--tun-nocsum` 0, `--tun-csum` 1, `--tun-remcsum` 2).
pub mod tun_flags {
    /// No outer checksum (default).
    pub const NOCSUM: u16 = 0;
    /// Outer checksum.
    pub const CSUM: u16 = 1;
    /// Remote checksum offload.
    pub const REMCSUM: u16 = 2;
}

/// Everything `-a`/`-e` sets on a real server. `-e` replaces every field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestSpec {
    /// Real server address (RIP).
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
    /// Forwarding method.
    pub fwd_method: ForwardMethod,
    /// Weight 0..=65535; 0 = quiescent (no new connections).
    pub weight: u32,
    /// Upper connection threshold (0 = none).
    pub u_threshold: u32,
    /// Lower connection threshold (0 = none).
    pub l_threshold: u32,
    /// Tunnel encapsulation (only with [`ForwardMethod::Tunnel`]).
    pub tun_type: TunnelType,
    /// GUE destination port.
    pub tun_port: u16,
    /// [`tun_flags`] value.
    pub tun_flags: u16,
}

impl DestSpec {
    /// A real server with ipvsadm's defaults: direct routing, weight 1, no thresholds.
    pub const fn new(addr: IpAddr, port: u16) -> Self {
        Self {
            addr,
            port,
            fwd_method: ForwardMethod::Route,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: TunnelType::Ipip,
            tun_port: 0,
            tun_flags: tun_flags::NOCSUM,
        }
    }
}

/// Cumulative counters of a service, a real server or the whole director.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets client → server.
    pub inpkts: u64,
    /// Packets server → client (NAT only).
    pub outpkts: u64,
    /// Bytes client → server (IP datagram length, before encapsulation).
    pub inbytes: u64,
    /// Bytes server → client.
    pub outbytes: u64,
}

/// Rates from the 2-second estimator, per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Incoming packets per second.
    pub inpps: u64,
    /// Outgoing packets per second.
    pub outpps: u64,
    /// Incoming bytes per second.
    pub inbps: u64,
    /// Outgoing bytes per second.
    pub outbps: u64,
}

/// A real server as listed: its spec, connection counts and counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestEntry {
    /// Configuration.
    pub spec: DestSpec,
    /// Connections in an active state (TCP ESTABLISHED, SYN_RECV, …).
    pub activeconns: u32,
    /// Other connections (all UDP connections, closing TCP ones).
    pub inactconns: u32,
    /// Persistence templates pointing at this server.
    pub persistconns: u32,
    /// Counters.
    pub stats: Stats,
    /// Estimated rates.
    pub rates: Rates,
}

/// A virtual service as listed, with its real servers in scheduling order (newest first, as the
/// kernel keeps them; ipvsadm sorts unless `--nosort`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEntry {
    /// Configuration.
    pub spec: ServiceSpec,
    /// Counters.
    pub stats: Stats,
    /// Estimated rates.
    pub rates: Rates,
    /// Real servers.
    pub dests: Vec<DestEntry>,
}

/// Connection flag bits (`IP_VS_CONN_F_*`) reported in [`ConnEntry::flags`].
pub mod conn_flags {
    /// Forwarding method mask (see [`super::ForwardMethod::code`]).
    pub const FWD_MASK: u32 = 0x0007;
    /// Replies never pass the director (DR/TUN).
    pub const NOOUTPUT: u32 = 0x0080;
    /// Counted as inactive.
    pub const INACTIVE: u32 = 0x0100;
    /// Persistence template.
    pub const TEMPLATE: u32 = 0x1000;
    /// One-packet connection (never listed).
    pub const ONE_PACKET: u32 = 0x2000;
    /// Created from a sync message.
    pub const SYNC: u32 = 0x0020;
}

/// One entry of the connection table (`ipvsadm -L -c`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnEntry {
    /// IP protocol number; 0 (`IP`) for fwmark persistence templates.
    pub protocol: u8,
    /// Client address (for templates: the client network).
    pub caddr: IpAddr,
    /// Client port (0 for templates).
    pub cport: u16,
    /// Virtual address (for fwmark templates: the mark as an IPv4 address).
    pub vaddr: IpAddr,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub daddr: IpAddr,
    /// Real server port.
    pub dport: u16,
    /// State name as ipvsadm prints it (`ESTABLISHED`, `UDP`, `ASSURED`, …).
    pub state: String,
    /// Time left before expiry, in milliseconds.
    pub expires_ms: u64,
    /// [`conn_flags`] bits.
    pub flags: u32,
    /// Persistence engine name, if the template carries PE data.
    pub pe_name: Option<String>,
    /// Persistence engine data.
    pub pe_data: Option<String>,
}

/// The three timeouts `--set` changes, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// TCP ESTABLISHED.
    pub tcp: u32,
    /// TCP FIN_WAIT.
    pub tcp_fin: u32,
    /// UDP.
    pub udp: u32,
}

impl Default for Timeouts {
    /// The kernel defaults: 900 120 300.
    fn default() -> Self {
        Self {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        }
    }
}

/// Version information (`ipvsadm` header line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// IPVS version code; rvs reports 0x010201 ("1.2.1") for compatibility.
    pub version: u32,
    /// Connection hash table size shown as `size=`.
    pub conn_tab_size: u32,
}

/// Role of a connection-sync daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DaemonRole {
    /// Sends connection state.
    Master,
    /// Receives connection state.
    Backup,
}

/// Parameters of a connection-sync daemon (`--start-daemon`, `-L --daemon`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonSpec {
    /// Master or backup.
    pub role: DaemonRole,
    /// Multicast interface name.
    pub mcast_ifn: String,
    /// Sync id (0 = accept any on a backup).
    pub syncid: u8,
    /// Maximum message length (0 = default).
    pub sync_maxlen: u16,
    /// Multicast group (None = 224.0.0.81).
    pub mcast_group: Option<IpAddr>,
    /// UDP port (0 = 8848).
    pub mcast_port: u16,
    /// Multicast TTL (0 = 1).
    pub mcast_ttl: u8,
}
