//! The XDP fast path, seen from the engine (docs/fastpath.md).
//!
//! The engine decides which connections the XDP program may forward on its own — established TCP
//! and every UDP connection — and describes each as a [`FastEntry`]: the flow as it arrives and
//! the exact rewrite. It exports them as [`FastUpdate`]s (drained with
//! [`Engine::drain_fast_updates`](crate::Engine::drain_fast_updates)), takes the fast path's
//! counters back with [`Engine::fast_path_counters`](crate::Engine::fast_path_counters), and,
//! because it no longer sees those packets, asks how long an entry has been idle before it expires
//! the connection ([`crate::Event::FastPathProbe`], answered by
//! [`Engine::fast_path_idle`](crate::Engine::fast_path_idle)).
//!
//! [`apply`] is the reference model of the XDP program's rewrite: the program must produce the
//! same bytes, and tests compare the two on the same frames.

use std::net::IpAddr;

use rvs_wire::tunnel::{self, Ipv4Tunnel, Ipv6Tunnel};
use rvs_wire::{
    EthernetAddress, EthernetFrame, Ipv4Packet, Ipv6Packet, PacketBuf, TcpPacket, UdpPacket,
};

use crate::l2::{IfaceId, Mac};

/// A flow as it arrives at the director: the fast-path map key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// 6 (TCP) or 17 (UDP).
    pub proto: u8,
    /// Source address.
    pub saddr: IpAddr,
    /// Destination address.
    pub daddr: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

/// What the fast path does to a matching packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastKind {
    /// DR: MAC addresses (and TTL).
    Route,
    /// NAT towards the real server: destination := `addr1`:`port`.
    NatDst,
    /// NAT back to the client: source := `addr1`:`port`.
    NatSrc,
    /// TUN with an outer IPv4 header `addr2` → `addr1`.
    Tunnel4,
    /// TUN with an outer IPv6 header `addr2` → `addr1`.
    Tunnel6,
}

/// One fast-path entry. See docs/fastpath.md for the byte-level contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastEntry {
    /// The flow it matches.
    pub key: FlowKey,
    /// The rewrite.
    pub kind: FastKind,
    /// Largest IP datagram forwarded (larger ones go to the engine, which answers with ICMP).
    pub max_len: u16,
    /// Egress interface.
    pub egress: IfaceId,
    /// Counter slot: real server id × 2 + (0 client → server, 1 server → client).
    pub stats_index: u32,
    /// Next hop's MAC.
    pub dst_mac: Mac,
    /// Egress interface's MAC.
    pub src_mac: Mac,
    /// New port (NAT kinds).
    pub port: u16,
    /// New address (NAT) or outer destination (tunnels).
    pub addr1: IpAddr,
    /// Outer source (tunnels).
    pub addr2: Option<IpAddr>,
}

/// A change to the fast-path map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastUpdate {
    /// Insert or replace the entry for its key.
    Upsert(FastEntry),
    /// Remove the entry for this key.
    Remove(FlowKey),
}

/// Why the fast path leaves a packet to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Punt {
    /// Not an untagged IPv4 (IHL 5) / IPv6 (no extension headers) TCP/UDP packet, or a fragment.
    Shape,
    /// The packet is not the entry's flow.
    OtherFlow,
    /// TCP SYN, FIN or RST: the state machine must see it.
    TcpFlags,
    /// TTL / hop limit ≤ 1.
    Ttl,
    /// Longer than the entry's `max_len`.
    TooLong,
    /// NAT of a UDP datagram without checksum (the engine computes a full one).
    UdpNoChecksum,
    /// IPv4 tunnel for a packet that is not DF IPv4 (needs a fresh IP identification).
    NeedsIdent,
    /// The buffer has no room for the outer header.
    NoHeadroom,
}

/// The parsed fields the fast path works with.
struct Shape {
    v6: bool,
    proto: u8,
    l4: usize,
    ip_len: usize,
    key: FlowKey,
    tcp_flags: u8,
    ttl: u8,
    df: bool,
}

const ETH_LEN: usize = 14;

fn shape(data: &[u8]) -> Option<Shape> {
    let ethertype = u16::from_be_bytes([*data.get(12)?, *data.get(13)?]);
    let ip = data.get(ETH_LEN..)?;
    let (v6, proto, l4, ip_len, saddr, daddr, ttl, df) = match ethertype {
        0x0800 => {
            let p = Ipv4Packet::new_checked(ip).ok()?;
            if p.header_len() != 20 || p.more_frags() || p.frag_offset() != 0 {
                return None;
            }
            let len = usize::from(p.total_len());
            let proto: u8 = p.next_header().into();
            (
                false,
                proto,
                ETH_LEN + 20,
                len,
                IpAddr::V4(p.src_addr()),
                IpAddr::V4(p.dst_addr()),
                p.ttl(),
                p.dont_frag(),
            )
        }
        0x86DD => {
            let p = Ipv6Packet::new_checked(ip).ok()?;
            let proto: u8 = p.next_header().into();
            (
                true,
                proto,
                ETH_LEN + 40,
                p.total_len(),
                IpAddr::V6(p.src_addr()),
                IpAddr::V6(p.dst_addr()),
                p.hop_limit(),
                false,
            )
        }
        _ => return None,
    };
    let min = match proto {
        6 => 20,
        17 => 8,
        _ => return None,
    };
    if ETH_LEN + ip_len > data.len() || ip_len < (l4 - ETH_LEN) + min {
        return None;
    }
    let seg = &data[l4..];
    let sport = u16::from_be_bytes([seg[0], seg[1]]);
    let dport = u16::from_be_bytes([seg[2], seg[3]]);
    let tcp_flags = if proto == 6 { seg[13] } else { 0 };
    Some(Shape {
        v6,
        proto,
        l4,
        ip_len,
        key: FlowKey {
            proto,
            saddr,
            daddr,
            sport,
            dport,
        },
        tcp_flags,
        ttl,
        df,
    })
}

/// The key of a frame, if it has the shape the fast path handles.
pub fn flow_key(frame: &[u8]) -> Option<FlowKey> {
    shape(frame).map(|s| s.key)
}

/// Applies `e` to the frame exactly as the XDP program does, or says why it would not.
/// On `Err` the frame is unchanged.
pub fn apply(e: &FastEntry, pkt: &mut PacketBuf<'_>) -> Result<(), Punt> {
    let s = shape(pkt.data()).ok_or(Punt::Shape)?;
    if s.key != e.key {
        return Err(Punt::OtherFlow);
    }
    if s.proto == 6 && s.tcp_flags & 0x07 != 0 {
        return Err(Punt::TcpFlags);
    }
    if s.ttl <= 1 {
        return Err(Punt::Ttl);
    }
    if s.ip_len > usize::from(e.max_len) {
        return Err(Punt::TooLong);
    }
    let end = ETH_LEN + s.ip_len;
    if s.proto == 17 && matches!(e.kind, FastKind::NatDst | FastKind::NatSrc) {
        let csum = u16::from_be_bytes([pkt.data()[s.l4 + 6], pkt.data()[s.l4 + 7]]);
        if csum == 0 {
            return Err(Punt::UdpNoChecksum);
        }
    }
    if e.kind == FastKind::Tunnel4 && (s.v6 || !s.df) {
        return Err(Punt::NeedsIdent);
    }
    let needed = match e.kind {
        FastKind::Tunnel4 => tunnel::IPV4_OVERHEAD,
        FastKind::Tunnel6 => tunnel::IPV6_OVERHEAD,
        _ => 0,
    };
    if pkt.headroom() < needed {
        return Err(Punt::NoHeadroom);
    }

    // From here on the packet is ours: no failure leaves it half-rewritten.
    {
        let data = &mut pkt.data_mut()[..end];
        if s.v6 {
            Ipv6Packet::new_unchecked(&mut data[ETH_LEN..]).decrement_hop_limit();
        } else {
            Ipv4Packet::new_unchecked(&mut data[ETH_LEN..]).decrement_ttl();
        }
        match e.kind {
            FastKind::NatDst | FastKind::NatSrc => nat(data, &s, e),
            FastKind::Route | FastKind::Tunnel4 | FastKind::Tunnel6 => {}
        }
    }
    match (e.kind, e.addr1, e.addr2) {
        (FastKind::Tunnel4, IpAddr::V4(dst), Some(IpAddr::V4(src))) => {
            let t = Ipv4Tunnel {
                src_addr: src,
                dst_addr: dst,
                ident: 0,
                copy_df: true,
            };
            tunnel::encap_ipv4(pkt, ETH_LEN, &t).map_err(|_| Punt::NoHeadroom)?;
        }
        (FastKind::Tunnel6, IpAddr::V6(dst), Some(IpAddr::V6(src))) => {
            let t = Ipv6Tunnel {
                src_addr: src,
                dst_addr: dst,
                flow_label: 0,
            };
            tunnel::encap_ipv6(pkt, ETH_LEN, &t).map_err(|_| Punt::NoHeadroom)?;
        }
        (FastKind::Tunnel4 | FastKind::Tunnel6, _, _) => return Err(Punt::Shape),
        _ => {}
    }
    let mut eth = EthernetFrame::new_unchecked(pkt.data_mut());
    eth.set_dst_addr(EthernetAddress(e.dst_mac));
    eth.set_src_addr(EthernetAddress(e.src_mac));
    Ok(())
}

fn nat(data: &mut [u8], s: &Shape, e: &FastEntry) {
    let dst = e.kind == FastKind::NatDst;
    let old = match (e.addr1, s.v6) {
        (IpAddr::V4(a), false) => {
            let mut ip = Ipv4Packet::new_unchecked(&mut data[ETH_LEN..]);
            IpAddr::V4(if dst {
                ip.rewrite_dst_addr(a)
            } else {
                ip.rewrite_src_addr(a)
            })
        }
        (IpAddr::V6(a), true) => {
            let mut ip = Ipv6Packet::new_unchecked(&mut data[ETH_LEN..]);
            let old = if dst { ip.dst_addr() } else { ip.src_addr() };
            if dst {
                ip.set_dst_addr(a)
            } else {
                ip.set_src_addr(a)
            }
            IpAddr::V6(old)
        }
        _ => return,
    };
    let seg = &mut data[s.l4..];
    if s.proto == 6 {
        let mut t = TcpPacket::new_unchecked(seg);
        t.update_checksum_for_addr(&old, &e.addr1);
        if dst {
            t.rewrite_dst_port(e.port)
        } else {
            t.rewrite_src_port(e.port)
        };
    } else {
        let mut u = UdpPacket::new_unchecked(seg);
        u.update_checksum_for_addr(&old, &e.addr1);
        if dst {
            u.rewrite_dst_port(e.port)
        } else {
            u.rewrite_src_port(e.port)
        };
    }
}

// ----- the engine's side: export, withdraw, counters, idle probes -----------------------------

use std::time::{Duration, Instant};

use crate::conn::{Conn, ConnAddr, ConnIdx, InKey, OutKey, TICK_MS, flags};
use crate::engine::{Engine, Event, Family};
use crate::state::tcp;
use rvs_api::ForwardMethod;

/// How long the engine waits for the answer to an idle probe before expiring anyway.
const PROBE_GRACE_MS: u64 = 2_000;

/// The fast-path keys of a connection: client → VIP, and for NAT real server → client.
fn keys<A: ConnAddr>(c: &Conn<A>) -> [Option<FlowKey>; 2] {
    let inbound = FlowKey {
        proto: c.proto,
        saddr: c.caddr.to_ip(),
        daddr: c.vaddr.to_ip(),
        sport: c.cport,
        dport: c.vport,
    };
    let outbound = (c.flags & flags::OUT_LINKED != 0).then(|| FlowKey {
        proto: c.proto,
        saddr: c.daddr.to_ip(),
        daddr: c.caddr.to_ip(),
        sport: c.dport,
        dport: c.cport,
    });
    [Some(inbound), outbound]
}

/// Client packets a connection must have sent through the engine before it is exported.
///
/// A map insert and delete cost two system calls in the daemon; most short connections (one
/// request, a handful of packets) would finish before the fast path paid that back, while a
/// flow that has proved itself long-lived gains on every further packet.
pub const FAST_PATH_MIN_PACKETS: u32 = 8;

fn eligible<A>(c: &Conn<A>) -> bool {
    c.aux >= FAST_PATH_MIN_PACKETS
        && c.flags & (flags::TEMPLATE | flags::ONE_PACKET) == 0
        && match c.proto {
            6 => c.state == tcp::ESTABLISHED,
            17 => true,
            _ => false,
        }
}

impl Engine {
    /// Turns the export of fast-path entries on or off. Turning it off withdraws every entry.
    pub fn set_fast_path(&mut self, on: bool) {
        if self.fast_path && !on {
            self.withdraw_all::<std::net::Ipv4Addr>();
            self.withdraw_all::<std::net::Ipv6Addr>();
        }
        self.fast_path = on;
        self.fast_gen = self.l2.generation();
    }

    /// Whether fast-path entries are exported.
    pub fn fast_path(&self) -> bool {
        self.fast_path
    }

    /// Fast-path map changes since the last call, in order.
    pub fn drain_fast_updates(&mut self) -> Vec<FastUpdate> {
        std::mem::take(&mut self.fast_updates)
    }

    /// Adds what the fast path forwarded for counter slot `stats_index` since the last report.
    pub fn fast_path_counters(&mut self, stats_index: u32, packets: u64, bytes: u64) {
        let (id, out) = (crate::dest::DestId(stats_index / 2), stats_index % 2 == 1);
        // IPVS keeps a real server's counters only while it is available (spec §7); a deleted
        // one's slot may even belong to another service by now.
        let Some(service) = self
            .dests
            .get(id)
            .filter(|d| d.available)
            .map(|d| d.service)
        else {
            return;
        };
        if let Some(d) = self.dests.get_mut(id) {
            d.stats.add(out, packets, bytes);
        }
        if let Some(s) = self.services.get_mut(service) {
            s.stats.add(out, packets, bytes);
        }
        self.stats.add(out, packets, bytes);
    }

    /// Answers an idle probe: the entry for `key` last forwarded a packet `idle` ago (`None`:
    /// the entry is gone). The connection is refreshed if it is still within its timeout, else
    /// expired now.
    pub fn fast_path_idle(&mut self, now: Instant, key: &FlowKey, idle: Option<Duration>) {
        self.advance(now);
        match (key.saddr, key.daddr) {
            (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => {
                self.idle_answer::<std::net::Ipv4Addr>(key, s, d, idle)
            }
            (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) => {
                self.idle_answer::<std::net::Ipv6Addr>(key, s, d, idle)
            }
            _ => {}
        }
    }

    fn idle_answer<A: Family>(&mut self, key: &FlowKey, s: A, d: A, idle: Option<Duration>) {
        let ik = InKey {
            proto: key.proto,
            caddr: s,
            cport: key.sport,
            vaddr: d,
            vport: key.dport,
        };
        let ok = OutKey {
            proto: key.proto,
            daddr: s,
            dport: key.sport,
            caddr: d,
            cport: key.dport,
        };
        let Some(idx) = A::conns(self)
            .lookup_in(&ik)
            .or_else(|| A::conns(self).lookup_out(&ok))
        else {
            return;
        };
        let c = *A::conns(self).get(idx);
        if c.flags & flags::PROBING == 0 {
            return;
        }
        let timeout_ms = u64::from(self.state_timeout(&c)) * 1000;
        match idle.map(|d| d.as_millis() as u64) {
            Some(idle_ms) if idle_ms < timeout_ms => {
                let left = timeout_ms - idle_ms;
                let expires = self.ticks_from_now(left.max(TICK_MS));
                let e = A::conns_mut(self).get_mut(idx);
                e.expires = expires;
                e.flags &= !flags::PROBING;
            }
            _ => self.expire_conn::<A>(idx),
        }
    }

    /// The timeout of a connection's current state, in seconds.
    pub(crate) fn state_timeout<A>(&self, c: &Conn<A>) -> u32 {
        match c.proto {
            6 => self.timeouts.tcp[usize::from(c.state).min(tcp::COUNT - 1)],
            132 => self.timeouts.sctp[usize::from(c.state).min(crate::state::sctp::COUNT - 1)],
            _ => self.timeouts.udp,
        }
    }

    /// Exports `c` (just forwarded by the engine) if it qualifies.
    pub(crate) fn fast_export<A: Family>(&mut self, c: &mut Conn<A>) {
        if !eligible(c) {
            return;
        }
        let Some(d) = self.dests.get(c.dest) else {
            return;
        };
        if !d.available {
            return;
        }
        let (method, daddr, dest_index) = (d.fwd_method(), d.addr, c.dest.0 * 2);
        let Ok(nh) = self.dest_next_hop(c.dest, daddr) else {
            return;
        };
        let [Some(in_key), out_key] = keys(c) else {
            return;
        };
        let (kind, addr1, addr2, port, overhead) = match method {
            ForwardMethod::Route => (FastKind::Route, daddr, None, 0, 0),
            ForwardMethod::Masq => (FastKind::NatDst, daddr, None, c.dport, 0),
            ForwardMethod::Tunnel => match (daddr, nh.src_ip) {
                (IpAddr::V4(_), Some(src @ IpAddr::V4(_))) => {
                    (FastKind::Tunnel4, daddr, Some(src), 0, 20)
                }
                (IpAddr::V6(_), Some(src @ IpAddr::V6(_))) => {
                    (FastKind::Tunnel6, daddr, Some(src), 0, 40)
                }
                _ => return,
            },
            ForwardMethod::Local => return,
        };
        let inbound = FastEntry {
            key: in_key,
            kind,
            max_len: nh.mtu.saturating_sub(overhead),
            egress: nh.iface,
            stats_index: dest_index,
            dst_mac: nh.dst_mac,
            src_mac: nh.src_mac,
            port,
            addr1,
            addr2,
        };
        let outbound = match out_key {
            Some(key) => {
                let Ok(back) = self.l2.next_hop(c.caddr.to_ip()) else {
                    return;
                };
                Some(FastEntry {
                    key,
                    kind: FastKind::NatSrc,
                    max_len: back.mtu,
                    egress: back.iface,
                    stats_index: dest_index + 1,
                    dst_mac: back.dst_mac,
                    src_mac: back.src_mac,
                    port: c.vport,
                    addr1: c.vaddr.to_ip(),
                    addr2: None,
                })
            }
            None => None,
        };
        self.fast_updates.push(FastUpdate::Upsert(inbound));
        if let Some(o) = outbound {
            self.fast_updates.push(FastUpdate::Upsert(o));
        }
        c.flags |= flags::FAST;
    }

    /// Withdraws `c`'s entries (state change, removal, real server deleted).
    pub(crate) fn fast_withdraw<A: ConnAddr>(&mut self, c: &mut Conn<A>) {
        if c.flags & flags::FAST == 0 {
            return;
        }
        for k in keys(c).into_iter().flatten() {
            self.fast_updates.push(FastUpdate::Remove(k));
        }
        c.flags &= !(flags::FAST | flags::PROBING);
    }

    fn withdraw_all<A: Family>(&mut self) {
        let fast: Vec<ConnIdx> = A::conns(self)
            .iter()
            .filter(|(_, c)| c.flags & flags::FAST != 0)
            .map(|(i, _)| i)
            .collect();
        for i in fast {
            let mut c = *A::conns(self).get(i);
            self.fast_withdraw(&mut c);
            *A::conns_mut(self).get_mut(i) = c;
        }
    }

    /// Withdraws the entries of every connection of real server `id` (it was deleted: its
    /// packets must reach the engine, which drops or reschedules them).
    pub(crate) fn fast_withdraw_dest(&mut self, id: crate::dest::DestId) {
        fn of<A: Family>(e: &mut Engine, id: crate::dest::DestId) {
            let hit: Vec<ConnIdx> = A::conns(e)
                .iter()
                .filter(|(_, c)| c.dest == id && c.flags & flags::FAST != 0)
                .map(|(i, _)| i)
                .collect();
            for i in hit {
                let mut c = *A::conns(e).get(i);
                e.fast_withdraw(&mut c);
                *A::conns_mut(e).get_mut(i) = c;
            }
        }
        of::<std::net::Ipv4Addr>(self, id);
        of::<std::net::Ipv6Addr>(self, id);
    }

    /// Re-exports every entry after a next-hop change (MACs, MTU or egress may differ).
    pub(crate) fn fast_refresh_all(&mut self) {
        fn of<A: Family>(e: &mut Engine) {
            let fast: Vec<ConnIdx> = A::conns(e)
                .iter()
                .filter(|(_, c)| c.flags & flags::FAST != 0)
                .map(|(i, _)| i)
                .collect();
            for i in fast {
                let mut c = *A::conns(e).get(i);
                c.flags &= !flags::FAST;
                e.fast_export(&mut c);
                if c.flags & flags::FAST == 0 {
                    // No longer exportable (next hop gone): make sure the map forgets it.
                    c.flags |= flags::FAST;
                    e.fast_withdraw(&mut c);
                }
                *A::conns_mut(e).get_mut(i) = c;
            }
        }
        of::<std::net::Ipv4Addr>(self);
        of::<std::net::Ipv6Addr>(self);
        self.fast_gen = self.l2.generation();
    }

    /// Called by the sweep for an expired fast-path connection: asks the daemon how long its
    /// entries have been idle instead of expiring it. Returns false when the probe already ran
    /// out of time (the caller expires the connection).
    pub(crate) fn fast_probe<A: Family>(&mut self, idx: ConnIdx) -> bool {
        let c = *A::conns(self).get(idx);
        if c.flags & flags::PROBING != 0 {
            return false;
        }
        let expires = self.ticks_from_now(PROBE_GRACE_MS);
        let e = A::conns_mut(self).get_mut(idx);
        e.flags |= flags::PROBING;
        e.expires = expires;
        self.events.push(Event::FastPathProbe { keys: keys(&c) });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Engine, EngineConfig, Interface, Route, Verdict};
    use rvs_api::{DestSpec, ForwardMethod, Protocol, Request, Response, ServiceKey, ServiceSpec};

    const CLIENT_MAC: Mac = [2, 0, 0, 0, 0, 0xc1];
    const DIR_MAC: Mac = [2, 0, 0, 0, 0, 0xd1];
    const RS_MAC: Mac = [2, 0, 0, 0, 0, 0x51];

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    struct Setup {
        v6: bool,
        method: ForwardMethod,
        udp: bool,
    }

    impl Setup {
        fn client(&self) -> IpAddr {
            ip(if self.v6 {
                "2001:db8:1::10"
            } else {
                "198.18.1.10"
            })
        }
        fn vip(&self) -> IpAddr {
            ip(if self.v6 {
                "2001:db8::100"
            } else {
                "198.18.0.100"
            })
        }
        fn rip(&self) -> IpAddr {
            ip(if self.v6 {
                "2001:db8::11"
            } else {
                "198.18.0.11"
            })
        }
        fn gw(&self) -> IpAddr {
            ip(if self.v6 { "2001:db8::1" } else { "198.18.0.1" })
        }

        /// An engine with one interface, the real server on-link, the client behind a router.
        fn engine(&self, fast: bool) -> (Engine, Instant) {
            let now = Instant::now();
            let mut e = Engine::new(now, EngineConfig::default());
            let (dip, net, len) = if self.v6 {
                (ip("2001:db8::2"), ip("2001:db8::"), 64)
            } else {
                (ip("198.18.0.2"), ip("198.18.0.0"), 24)
            };
            let any = if self.v6 { ip("::") } else { ip("0.0.0.0") };
            let eth = e.add_interface(Interface {
                name: "eth0".into(),
                mac: DIR_MAC,
                mtu: 1500,
                addrs: vec![dip],
            });
            e.set_routes(vec![
                Route {
                    dst: net,
                    prefix_len: len,
                    iface: eth,
                    gateway: None,
                    src: Some(dip),
                },
                Route {
                    dst: any,
                    prefix_len: 0,
                    iface: eth,
                    gateway: Some(self.gw()),
                    src: Some(dip),
                },
            ]);
            e.set_neighbour(eth, self.rip(), Some(RS_MAC));
            e.set_neighbour(eth, self.gw(), Some(CLIENT_MAC));
            let key = ServiceKey::Addr {
                protocol: if self.udp {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                },
                addr: self.vip(),
                port: 80,
            };
            assert_eq!(
                e.control(
                    now,
                    Request::AddService {
                        spec: ServiceSpec::new(key)
                    }
                ),
                Response::Ok
            );
            let mut d = DestSpec::new(self.rip(), 8080);
            d.fwd_method = self.method;
            assert_eq!(
                e.control(
                    now,
                    Request::AddDest {
                        service: key,
                        dest: d
                    }
                ),
                Response::Ok
            );
            e.set_fast_path(fast);
            (e, now)
        }

        /// A client → VIP frame (`flags`: TCP flags; ignored for UDP).
        fn to_vip(&self, syn: bool, ack: bool, payload: &[u8]) -> Vec<u8> {
            self.frame(
                CLIENT_MAC,
                DIR_MAC,
                self.client(),
                self.vip(),
                40000,
                80,
                syn,
                ack,
                payload,
            )
        }

        /// A real server → client frame (NAT replies).
        fn rs_reply(&self, syn: bool, ack: bool, payload: &[u8]) -> Vec<u8> {
            self.frame(
                RS_MAC,
                DIR_MAC,
                self.rip(),
                self.client(),
                8080,
                40000,
                syn,
                ack,
                payload,
            )
        }

        #[allow(clippy::too_many_arguments)]
        fn frame(
            &self,
            smac: Mac,
            dmac: Mac,
            s: IpAddr,
            d: IpAddr,
            sp: u16,
            dp: u16,
            syn: bool,
            ack: bool,
            payload: &[u8],
        ) -> Vec<u8> {
            let b = etherparse::PacketBuilder::ethernet2(smac, dmac);
            let b = match (s, d) {
                (IpAddr::V4(s), IpAddr::V4(d)) => b.ipv4(s.octets(), d.octets(), 64),
                (IpAddr::V6(s), IpAddr::V6(d)) => b.ipv6(s.octets(), d.octets(), 64),
                _ => unreachable!(),
            };
            let mut out = Vec::new();
            if self.udp {
                b.udp(sp, dp).write(&mut out, payload).unwrap();
            } else {
                let mut t = b.tcp(sp, dp, 1000, 64000);
                if syn {
                    t = t.syn();
                }
                if ack {
                    t = t.ack(1);
                }
                t.write(&mut out, payload).unwrap();
            }
            if !self.v6 && out[14 + 6] & 0x40 == 0 {
                // Set DF like a Linux TCP/UDP sender would, and fix the header checksum.
                out[14 + 6] |= 0x40;
                out[14 + 10..14 + 12].fill(0);
                let c = rvs_wire::checksum::compute(&out[14..34]);
                out[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
            }
            out
        }
    }

    fn run(e: &mut Engine, now: Instant, frame: &[u8]) -> (Verdict, Vec<u8>) {
        let mut buf = vec![0u8; 256 + frame.len() + 256];
        buf[256..256 + frame.len()].copy_from_slice(frame);
        let mut pkt = PacketBuf::new(&mut buf, 256, frame.len()).unwrap();
        let v = e.process(now, IfaceId(0), &mut pkt);
        let out = pkt.data().to_vec();
        (v, out)
    }

    fn model(entries: &[FastEntry], frame: &[u8]) -> Option<Vec<u8>> {
        let key = flow_key(frame)?;
        let e = entries.iter().find(|e| e.key == key)?;
        let mut buf = vec![0u8; 256 + frame.len() + 256];
        buf[256..256 + frame.len()].copy_from_slice(frame);
        let mut pkt = PacketBuf::new(&mut buf, 256, frame.len()).unwrap();
        apply(e, &mut pkt).ok()?;
        Some(pkt.data().to_vec())
    }

    /// The same conversation through the engine alone and through engine + fast-path model
    /// gives identical frames; the model only handles what the spec allows.
    fn equivalent(s: Setup) {
        let (mut reference, now) = s.engine(false);
        let (mut fast, _) = s.engine(true);
        let nat = s.method == ForwardMethod::Masq;
        let mut convo: Vec<Vec<u8>> = Vec::new();
        if s.udp {
            convo.push(s.to_vip(false, false, b"q1"));
            if nat {
                convo.push(s.rs_reply(false, false, b"a1"));
            }
            for _ in 0..FAST_PATH_MIN_PACKETS {
                convo.push(s.to_vip(false, false, b"q2"));
                if nat {
                    convo.push(s.rs_reply(false, false, b"a2"));
                }
            }
        } else {
            convo.push(s.to_vip(true, false, b""));
            if nat {
                convo.push(s.rs_reply(true, true, b""));
            }
            convo.push(s.to_vip(false, true, b""));
            convo.push(s.to_vip(false, true, b"GET / HTTP/1.0\r\n\r\n"));
            if nat {
                convo.push(s.rs_reply(false, true, b"HTTP/1.0 200 OK\r\n\r\n"));
            }
            for _ in 0..FAST_PATH_MIN_PACKETS {
                convo.push(s.to_vip(false, true, b"more"));
                if nat {
                    convo.push(s.rs_reply(false, true, b"ack"));
                }
            }
        }
        let mut entries: Vec<FastEntry> = Vec::new();
        let mut fast_hits = 0;
        for f in &convo {
            let (rv, rout) = run(&mut reference, now, f);
            assert!(
                matches!(rv, Verdict::Transmit(_)),
                "reference verdict {rv:?}"
            );
            let out = match model(&entries, f) {
                Some(out) => {
                    fast_hits += 1;
                    out
                }
                None => {
                    let (v, out) = run(&mut fast, now, f);
                    assert_eq!(v, rv);
                    out
                }
            };
            assert_eq!(out, rout, "fast path and engine disagree");
            for u in fast.drain_fast_updates() {
                match u {
                    FastUpdate::Upsert(e) => {
                        entries.retain(|x| x.key != e.key);
                        entries.push(e);
                    }
                    FastUpdate::Remove(k) => entries.retain(|x| x.key != k),
                }
            }
        }
        assert!(fast_hits > 0, "the fast path never took a packet");
        assert_eq!(entries.len(), if nat { 2 } else { 1 });
    }

    #[test]
    fn fast_path_matches_engine() {
        for v6 in [false, true] {
            for udp in [false, true] {
                for method in [
                    ForwardMethod::Route,
                    ForwardMethod::Masq,
                    ForwardMethod::Tunnel,
                ] {
                    equivalent(Setup { v6, method, udp });
                }
            }
        }
    }

    #[test]
    fn fin_withdraws_and_probe_refreshes() {
        let s = Setup {
            v6: false,
            method: ForwardMethod::Route,
            udp: false,
        };
        let (mut e, now) = s.engine(true);
        run(&mut e, now, &s.to_vip(true, false, b""));
        // A short connection never reaches the fast path...
        for _ in 1..FAST_PATH_MIN_PACKETS - 1 {
            run(&mut e, now, &s.to_vip(false, true, b"x"));
        }
        assert_eq!(e.drain_fast_updates(), vec![]);
        // ...one that keeps going does, once.
        run(&mut e, now, &s.to_vip(false, true, b"x"));
        run(&mut e, now, &s.to_vip(false, true, b"x"));
        let ups = e.drain_fast_updates();
        assert!(matches!(ups.as_slice(), [FastUpdate::Upsert(_)]), "{ups:?}");
        // Timer runs out (900 s): the sweep probes instead of expiring.
        let later = now + Duration::from_secs(901);
        e.handle_timeout(later);
        e.handle_timeout(later + Duration::from_millis(150));
        let probes: Vec<_> = e
            .drain_events()
            .into_iter()
            .filter(|ev| matches!(ev, Event::FastPathProbe { .. }))
            .collect();
        assert_eq!(probes.len(), 1);
        let Event::FastPathProbe {
            keys: [Some(k), None],
        } = probes[0]
        else {
            panic!()
        };
        // Traffic 5 s ago: the connection lives on.
        e.fast_path_idle(later, &k, Some(Duration::from_secs(5)));
        assert_eq!(e.conn_count().0, 1);
        // A FIN goes through the engine and withdraws the entry.
        let mut fin = s.to_vip(false, true, b"");
        fin[14 + 20 + 13] |= 0x01;
        let tcp_csum_fix = {
            let ip = &fin[14..34];
            let src = IpAddr::V4(std::net::Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
            let dst = IpAddr::V4(std::net::Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
            (src, dst)
        };
        TcpPacket::new_unchecked(&mut fin[34..]).fill_checksum(&tcp_csum_fix.0, &tcp_csum_fix.1);
        run(&mut e, later, &fin);
        assert_eq!(e.drain_fast_updates(), vec![FastUpdate::Remove(k)]);
        // No answer to a later probe → expired after the grace period.
        let (mut e2, now2) = s.engine(true);
        run(&mut e2, now2, &s.to_vip(true, false, b""));
        for _ in 0..FAST_PATH_MIN_PACKETS {
            run(&mut e2, now2, &s.to_vip(false, true, b"x"));
        }
        let t = now2 + Duration::from_secs(901);
        e2.handle_timeout(t);
        e2.handle_timeout(t + Duration::from_secs(3));
        e2.handle_timeout(t + Duration::from_secs(4));
        assert_eq!(e2.conn_count().0, 0);
        assert!(
            e2.drain_fast_updates()
                .iter()
                .any(|u| matches!(u, FastUpdate::Remove(_)))
        );
    }
}
