//! The XDP fast path (docs/fastpath.md), frame by frame through BPF_PROG_TEST_RUN: every
//! rewrite compared byte for byte with the engine's reference model
//! (`rvs_engine::fastpath::apply`) and with an independent etherparse oracle, every punt rule,
//! and the counters and timestamps. The interfaces stay down: only test frames run.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{
    IpDscp, IpEcn, IpHeaders, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, PacketBuilder,
    TcpHeader, UdpHeader,
};
use rvs_engine::fastpath as model;
use rvs_io::xdp::{
    FastAction, FastKind, FlowKey, IPPROTO_TCP, IPPROTO_UDP, SteerCounters, Steering, VipKey,
    XdpAction, XdpMode, monotonic_ns,
};
use rvs_io::xsk::{XskConfig, XskSocket};
use rvs_wire::PacketBuf;

use crate::util::{Netns, skip_unless_root, steering_on};

const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xc1];
const DIR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xd1];
const NEXT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x51];

/// xorshift64*: deterministic test data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }
    fn addr(&mut self, v6: bool) -> IpAddr {
        if v6 {
            let mut o = [0u8; 16];
            o[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            for b in &mut o[4..] {
                *b = self.byte();
            }
            IpAddr::V6(Ipv6Addr::from(o))
        } else {
            IpAddr::V4(Ipv4Addr::new(
                198,
                18 + (self.byte() & 1),
                self.byte(),
                self.byte(),
            ))
        }
    }
}

/// A TCP or UDP packet to build with etherparse.
#[derive(Clone, Debug)]
struct Pkt {
    udp: bool,
    saddr: IpAddr,
    daddr: IpAddr,
    sport: u16,
    dport: u16,
    ttl: u8,
    /// IPv4 TOS / IPv6 traffic class (DSCP and ECN).
    ds: u8,
    df: bool,
    ident: u16,
    /// TCP flag byte (FIN SYN RST PSH ACK URG ECE CWR from bit 0).
    flags: u8,
    payload: Vec<u8>,
    /// Bytes after the IP datagram (Ethernet padding).
    trailer: Vec<u8>,
}

impl Pkt {
    fn random(rng: &mut Rng, v6: bool, udp: bool) -> Self {
        let payload = (0..rng.below(80)).map(|_| rng.byte()).collect();
        // ACK with PSH/URG/ECE/CWR at random, never SYN/FIN/RST (those are punted).
        let flags = 0x10 | (rng.byte() & 0xe8);
        let mut p = Self {
            udp,
            saddr: rng.addr(v6),
            daddr: rng.addr(v6),
            sport: rng.next() as u16,
            dport: rng.next() as u16,
            ttl: 2 + rng.below(254) as u8,
            ds: rng.byte(),
            df: true,
            ident: rng.next() as u16,
            flags,
            payload,
            trailer: Vec::new(),
        };
        // Ethernet padding: NICs deliver short frames padded to 60 bytes; sometimes junk after
        // a longer one too.
        let len = p.build().len();
        if len < 60 && rng.bool() {
            p.trailer = (len..60).map(|_| rng.byte()).collect();
        } else if rng.below(4) == 0 {
            p.trailer = (0..1 + rng.below(8)).map(|_| rng.byte()).collect();
        }
        p
    }

    fn v6(&self) -> bool {
        self.saddr.is_ipv6()
    }

    fn key(&self) -> FlowKey {
        FlowKey {
            proto: if self.udp { IPPROTO_UDP } else { IPPROTO_TCP },
            saddr: self.saddr,
            daddr: self.daddr,
            sport: self.sport,
            dport: self.dport,
        }
    }

    fn ip_len(&self) -> usize {
        (if self.v6() { 40 } else { 20 }) + (if self.udp { 8 } else { 20 }) + self.payload.len()
    }

    fn build(&self) -> Vec<u8> {
        let ip = match (self.saddr, self.daddr) {
            (IpAddr::V4(s), IpAddr::V4(d)) => IpHeaders::Ipv4(
                Ipv4Header {
                    dscp: IpDscp::try_new(self.ds >> 2).unwrap(),
                    ecn: IpEcn::try_new(self.ds & 3).unwrap(),
                    identification: self.ident,
                    dont_fragment: self.df,
                    time_to_live: self.ttl,
                    source: s.octets(),
                    destination: d.octets(),
                    ..Default::default()
                },
                Default::default(),
            ),
            (IpAddr::V6(s), IpAddr::V6(d)) => IpHeaders::Ipv6(
                Ipv6Header {
                    traffic_class: self.ds,
                    flow_label: Ipv6FlowLabel::try_new(0x12345).unwrap(),
                    hop_limit: self.ttl,
                    source: s.octets(),
                    destination: d.octets(),
                    ..Default::default()
                },
                Default::default(),
            ),
            _ => unreachable!("mixed families"),
        };
        let b = PacketBuilder::ethernet2(CLIENT_MAC, DIR_MAC).ip(ip);
        let mut out = Vec::new();
        if self.udp {
            b.udp(self.sport, self.dport)
                .write(&mut out, &self.payload)
                .unwrap();
        } else {
            let f = self.flags;
            let mut t = TcpHeader::new(self.sport, self.dport, 0x0102_0304, 64000);
            t.acknowledgment_number = 0x0a0b_0c0d;
            t.fin = f & 0x01 != 0;
            t.syn = f & 0x02 != 0;
            t.rst = f & 0x04 != 0;
            t.psh = f & 0x08 != 0;
            t.ack = f & 0x10 != 0;
            t.urg = f & 0x20 != 0;
            t.ece = f & 0x40 != 0;
            t.cwr = f & 0x80 != 0;
            b.tcp_header(t).write(&mut out, &self.payload).unwrap();
        }
        out.extend_from_slice(&self.trailer);
        out
    }
}

/// A random entry of `kind` for packet `p`, leaving by `slot`.
fn random_action(rng: &mut Rng, p: &Pkt, kind: FastKind, slot: u32, ifindex: u32) -> FastAction {
    let (addr1, addr2) = match kind {
        FastKind::Route => (p.daddr, None),
        FastKind::NatDst | FastKind::NatSrc => (rng.addr(p.v6()), None),
        FastKind::Tunnel4 => (rng.addr(false), Some(rng.addr(false))),
        FastKind::Tunnel6 => (rng.addr(true), Some(rng.addr(true))),
    };
    FastAction {
        kind,
        max_len: (p.ip_len() + rng.below(1500) as usize).min(65535) as u16,
        egress_ifindex: ifindex,
        egress_slot: slot,
        stats_index: rng.below(200) as u32,
        dst_mac: NEXT_MAC,
        src_mac: [2, 0, 0, 0, 0xee, slot as u8],
        port: if matches!(kind, FastKind::NatDst | FastKind::NatSrc) {
            rng.next() as u16
        } else {
            0
        },
        addr1,
        addr2,
    }
}

/// What `rvs_engine::fastpath::apply` makes of `frame`; `None` when it punts.
fn engine_model(frame: &[u8], key: &FlowKey, a: &FastAction) -> Option<Vec<u8>> {
    let entry = model::FastEntry {
        key: model::FlowKey {
            proto: key.proto,
            saddr: key.saddr,
            daddr: key.daddr,
            sport: key.sport,
            dport: key.dport,
        },
        kind: match a.kind {
            FastKind::Route => model::FastKind::Route,
            FastKind::NatDst => model::FastKind::NatDst,
            FastKind::NatSrc => model::FastKind::NatSrc,
            FastKind::Tunnel4 => model::FastKind::Tunnel4,
            FastKind::Tunnel6 => model::FastKind::Tunnel6,
        },
        max_len: a.max_len,
        egress: rvs_engine::IfaceId(0),
        stats_index: a.stats_index,
        dst_mac: a.dst_mac,
        src_mac: a.src_mac,
        port: a.port,
        addr1: a.addr1,
        addr2: a.addr2,
    };
    let mut buf = vec![0u8; 256 + frame.len()];
    buf[256..].copy_from_slice(frame);
    let mut pkt = PacketBuf::new(&mut buf, 256, frame.len()).unwrap();
    model::apply(&entry, &mut pkt).ok()?;
    Some(pkt.data().to_vec())
}

/// docs/fastpath.md, written out with etherparse: headers parsed, fields set, every checksum
/// computed from scratch.
fn oracle(frame: &[u8], a: &FastAction) -> Vec<u8> {
    let ip = &frame[14..];
    let v6 = ip[0] >> 4 == 6;
    let (mut l3, l4_off) = if v6 {
        let (h, _) = Ipv6Header::from_slice(ip).unwrap();
        (IpHeaders::Ipv6(h, Default::default()), 40)
    } else {
        let (h, _) = Ipv4Header::from_slice(ip).unwrap();
        (IpHeaders::Ipv4(h, Default::default()), 20)
    };
    let ip_len = match &l3 {
        IpHeaders::Ipv4(h, _) => usize::from(h.total_len),
        IpHeaders::Ipv6(h, _) => 40 + usize::from(h.payload_length),
    };
    let udp = match &l3 {
        IpHeaders::Ipv4(h, _) => h.protocol == IpNumber::UDP,
        IpHeaders::Ipv6(h, _) => h.next_header == IpNumber::UDP,
    };
    let l4_len = if udp { 8 } else { 20 };
    let payload = &ip[l4_off + l4_len..ip_len];
    let trailer = &frame[14 + ip_len..];

    // TTL / hop limit.
    let ds = match &mut l3 {
        IpHeaders::Ipv4(h, _) => {
            h.time_to_live -= 1;
            (h.dscp.value() << 2) | h.ecn.value()
        }
        IpHeaders::Ipv6(h, _) => {
            h.hop_limit -= 1;
            h.traffic_class
        }
    };
    // NAT.
    let set_addr = |l3: &mut IpHeaders, dst: bool, addr: IpAddr| match (l3, addr) {
        (IpHeaders::Ipv4(h, _), IpAddr::V4(a)) if dst => h.destination = a.octets(),
        (IpHeaders::Ipv4(h, _), IpAddr::V4(a)) => h.source = a.octets(),
        (IpHeaders::Ipv6(h, _), IpAddr::V6(a)) if dst => h.destination = a.octets(),
        (IpHeaders::Ipv6(h, _), IpAddr::V6(a)) => h.source = a.octets(),
        _ => panic!("NAT address of the wrong family"),
    };
    let (mut sport, mut dport) = (
        u16::from_be_bytes([ip[l4_off], ip[l4_off + 1]]),
        u16::from_be_bytes([ip[l4_off + 2], ip[l4_off + 3]]),
    );
    match a.kind {
        FastKind::NatDst => {
            set_addr(&mut l3, true, a.addr1);
            dport = a.port;
        }
        FastKind::NatSrc => {
            set_addr(&mut l3, false, a.addr1);
            sport = a.port;
        }
        _ => {}
    }
    // Transport header with a recomputed checksum (unchanged data gives the same checksum).
    let mut l4 = Vec::new();
    if udp {
        let (mut u, _) = UdpHeader::from_slice(&ip[l4_off..]).unwrap();
        u.source_port = sport;
        u.destination_port = dport;
        u.checksum = match &l3 {
            IpHeaders::Ipv4(h, _) => u.calc_checksum_ipv4(h, payload).unwrap(),
            IpHeaders::Ipv6(h, _) => u.calc_checksum_ipv6(h, payload).unwrap(),
        };
        l4.extend_from_slice(&u.to_bytes());
    } else {
        let (mut t, _) = TcpHeader::from_slice(&ip[l4_off..]).unwrap();
        t.source_port = sport;
        t.destination_port = dport;
        t.checksum = match &l3 {
            IpHeaders::Ipv4(h, _) => t.calc_checksum_ipv4(h, payload).unwrap(),
            IpHeaders::Ipv6(h, _) => t.calc_checksum_ipv6(h, payload).unwrap(),
        };
        l4.extend_from_slice(&t.to_bytes());
    }
    let mut inner = Vec::new();
    match &mut l3 {
        IpHeaders::Ipv4(h, _) => {
            h.header_checksum = h.calc_header_checksum();
            inner.extend_from_slice(&h.to_bytes());
        }
        IpHeaders::Ipv6(h, _) => inner.extend_from_slice(&h.to_bytes()),
    }
    let ttl = inner[if v6 { 7 } else { 8 }];
    inner.extend_from_slice(&l4);
    inner.extend_from_slice(payload);

    // Outer header (tunnels): DSCP copied, ECN copied except CE -> ECT(0).
    let outer_ds = if ds & 3 == 3 { (ds & !3) | 2 } else { ds };
    let (ethertype, outer) = match (a.kind, a.addr1, a.addr2) {
        (FastKind::Tunnel4, IpAddr::V4(d), Some(IpAddr::V4(s))) => {
            let mut h = Ipv4Header {
                dscp: IpDscp::try_new(outer_ds >> 2).unwrap(),
                ecn: IpEcn::try_new(outer_ds & 3).unwrap(),
                total_len: (inner.len() + 20) as u16,
                identification: 0,
                dont_fragment: true,
                time_to_live: ttl,
                protocol: IpNumber::IPV4,
                source: s.octets(),
                destination: d.octets(),
                ..Default::default()
            };
            h.header_checksum = h.calc_header_checksum();
            (0x0800u16, h.to_bytes().to_vec())
        }
        (FastKind::Tunnel6, IpAddr::V6(d), Some(IpAddr::V6(s))) => {
            let h = Ipv6Header {
                traffic_class: outer_ds,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: inner.len() as u16,
                next_header: if v6 { IpNumber::IPV6 } else { IpNumber::IPV4 },
                hop_limit: ttl,
                source: s.octets(),
                destination: d.octets(),
            };
            (0x86ddu16, h.to_bytes().to_vec())
        }
        (FastKind::Tunnel4 | FastKind::Tunnel6, ..) => panic!("bad tunnel entry"),
        _ => (u16::from_be_bytes([frame[12], frame[13]]), Vec::new()),
    };
    let mut out = Vec::new();
    out.extend_from_slice(&a.dst_mac);
    out.extend_from_slice(&a.src_mac);
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.extend_from_slice(&outer);
    out.extend_from_slice(&inner);
    // Ethernet padding stays behind an unencapsulated packet; encapsulation drops it.
    if outer.is_empty() {
        out.extend_from_slice(trailer);
    }
    out
}

/// A namespace with a veth pair x0/x1 served by one steering program (slots 0 and 1).
fn setup(tag: &str) -> (Netns, Steering) {
    let ns = Netns::new(tag);
    ns.ip(&["link", "add", "x0", "type", "veth", "peer", "name", "x1"]);
    let steer = steering_on(&ns, &["x0", "x1"], XdpMode::Native).unwrap();
    (ns, steer)
}

#[test]
fn fast_path_matches_the_engine_model() {
    if skip_unless_root("fast_path_matches_the_engine_model") {
        return;
    }
    let (_ns, mut steer) = setup("fpm");
    let (if0, if1) = (steer.ifindex(0).unwrap(), steer.ifindex(1).unwrap());
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let kinds = [
        FastKind::Route,
        FastKind::NatDst,
        FastKind::NatSrc,
        FastKind::Tunnel4,
        FastKind::Tunnel6,
    ];
    let mut checked = 0;
    for kind in kinds {
        for v6 in [false, true] {
            if kind == FastKind::Tunnel4 && v6 {
                continue; // IPv6 in IPv4 is punted (see fast_path_punts)
            }
            for udp in [false, true] {
                for i in 0..40 {
                    let p = Pkt::random(&mut rng, v6, udp);
                    let frame = p.build();
                    // Half leave by the receiving interface (XDP_TX), half by the other.
                    let (slot, ifindex) = if i % 2 == 0 { (0, if0) } else { (1, if1) };
                    let a = random_action(&mut rng, &p, kind, slot, ifindex);
                    let key = p.key();
                    let what = format!("{kind:?} v6={v6} udp={udp} #{i}: {p:?} {a:?}");
                    steer.fast_upsert(&key, &a).unwrap();
                    let (action, out) = steer.test_run(0, &frame).unwrap();
                    let want = if slot == 0 {
                        XdpAction::Tx
                    } else {
                        XdpAction::Redirect
                    };
                    assert_eq!(action, want, "{what}");
                    let reference = engine_model(&frame, &key, &a)
                        .unwrap_or_else(|| panic!("model punts {what}"));
                    assert_eq!(out, reference, "XDP vs rvs_engine::fastpath::apply: {what}");
                    assert_eq!(
                        out,
                        oracle(&frame, &a),
                        "XDP vs the etherparse oracle: {what}"
                    );
                    assert!(steer.fast_remove(&key).unwrap());
                    checked += 1;
                }
            }
        }
    }
    let c = steer.counters().unwrap();
    assert_eq!(c.fast_hit, checked);
    assert_eq!(c.fast_punt(), 0);
    assert_eq!(steer.fast_count(), 0);
}

/// One punt case: the frame, the entry put in the map for its flow, and the counter that
/// must move (`None`: the frame is not even looked up).
struct Punt {
    what: &'static str,
    frame: Vec<u8>,
    key: FlowKey,
    action: FastAction,
    counter: Option<fn(&SteerCounters) -> u64>,
}

const VIP4: &str = "198.18.20.100";
const VIP6: &str = "2001:db8:20::100";

fn vip_pkt(v6: bool, udp: bool) -> Pkt {
    let (s, d) = if v6 {
        ("2001:db8:21::7", VIP6)
    } else {
        ("198.18.21.7", VIP4)
    };
    Pkt {
        udp,
        saddr: s.parse().unwrap(),
        daddr: d.parse().unwrap(),
        sport: 40000,
        dport: 80,
        ttl: 64,
        ds: 0,
        df: true,
        ident: 7,
        flags: 0x10,
        payload: b"punt me".to_vec(),
        trailer: Vec::new(),
    }
}

fn action(kind: FastKind, v6: bool, slot: u32, ifindex: u32) -> FastAction {
    let (addr1, addr2) = match kind {
        FastKind::Tunnel4 => (
            "198.18.22.2".parse().unwrap(),
            Some("198.18.22.1".parse().unwrap()),
        ),
        FastKind::Tunnel6 => (
            "2001:db8:22::2".parse().unwrap(),
            Some("2001:db8:22::1".parse().unwrap()),
        ),
        _ if v6 => ("2001:db8:22::2".parse().unwrap(), None),
        _ => ("198.18.22.2".parse().unwrap(), None),
    };
    FastAction {
        kind,
        max_len: 1500,
        egress_ifindex: ifindex,
        egress_slot: slot,
        stats_index: 3,
        dst_mac: NEXT_MAC,
        src_mac: DIR_MAC,
        port: 8080,
        addr1,
        addr2,
    }
}

/// Recomputes the IPv4 header checksum of the frame's IP header (at `l3`).
fn fix_ipv4(frame: &mut [u8], l3: usize) {
    let ihl = usize::from(frame[l3] & 0xf) * 4;
    frame[l3 + 10..l3 + 12].fill(0);
    let (h, _) = Ipv4Header::from_slice(&frame[l3..l3 + ihl]).unwrap();
    let c = h.calc_header_checksum();
    frame[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
}

fn punt_cases(if0: u32) -> Vec<Punt> {
    let flags: fn(&SteerCounters) -> u64 = |c| c.fast_punt_tcp_flags;
    let ttl: fn(&SteerCounters) -> u64 = |c| c.fast_punt_ttl;
    let too_big: fn(&SteerCounters) -> u64 = |c| c.fast_punt_too_big;
    let csum0: fn(&SteerCounters) -> u64 = |c| c.fast_punt_udp_no_checksum;
    let tunnel: fn(&SteerCounters) -> u64 = |c| c.fast_punt_tunnel;
    let truncated: fn(&SteerCounters) -> u64 = |c| c.fast_punt_truncated;
    let redirect: fn(&SteerCounters) -> u64 = |c| c.fast_redirect_fail;
    let nat = |v6| action(FastKind::NatDst, v6, 0, if0);
    let mut cases = Vec::new();
    let mut case = |what, p: &Pkt, frame: Vec<u8>, action, counter| {
        cases.push(Punt {
            what,
            frame,
            key: p.key(),
            action,
            counter,
        })
    };

    for (what, bit) in [("TCP SYN", 0x02), ("TCP FIN", 0x01), ("TCP RST", 0x04)] {
        for v6 in [false, true] {
            let p = Pkt {
                flags: 0x10 | bit,
                ..vip_pkt(v6, false)
            };
            case(what, &p, p.build(), nat(v6), Some(flags));
        }
    }
    for (v6, t) in [(false, 1), (false, 0), (true, 1), (true, 0)] {
        let p = Pkt {
            ttl: t,
            ..vip_pkt(v6, true)
        };
        case("TTL / hop limit <= 1", &p, p.build(), nat(v6), Some(ttl));
    }
    for v6 in [false, true] {
        let p = vip_pkt(v6, false);
        let a = FastAction {
            max_len: p.ip_len() as u16 - 1,
            ..action(FastKind::Route, v6, 0, if0)
        };
        case("longer than max_len", &p, p.build(), a, Some(too_big));
    }
    for v6 in [false, true] {
        // UDP without checksum. docs/fastpath.md names IPv4 (where 0 means "none"); IPv6
        // forbids 0, and the engine's NAT computes a full checksum for both, so the program
        // punts both to stay byte-identical with the engine.
        let p = vip_pkt(v6, true);
        let mut f = p.build();
        let at = 14 + if v6 { 40 } else { 20 } + 6;
        f[at..at + 2].fill(0);
        case("NAT of UDP checksum 0", &p, f.clone(), nat(v6), Some(csum0));
        let a = action(FastKind::NatSrc, v6, 0, if0);
        case("NAT (src) of UDP checksum 0", &p, f, a, Some(csum0));
    }
    {
        let p = Pkt {
            df: false,
            ..vip_pkt(false, false)
        };
        let a = action(FastKind::Tunnel4, false, 0, if0);
        case("TUNNEL4 of IPv4 without DF", &p, p.build(), a, Some(tunnel));
        let p = vip_pkt(true, false);
        let a = action(FastKind::Tunnel4, true, 0, if0);
        case("TUNNEL4 of IPv6", &p, p.build(), a, Some(tunnel));
    }
    for v6 in [false, true] {
        // IP length beyond the frame, and too short for the headers.
        let p = vip_pkt(v6, true);
        let mut f = p.build();
        if v6 {
            f[18..20].copy_from_slice(&((p.ip_len() - 40 + 10) as u16).to_be_bytes());
        } else {
            f[16..18].copy_from_slice(&((p.ip_len() + 10) as u16).to_be_bytes());
            fix_ipv4(&mut f, 14);
        }
        case(
            "IP length beyond the frame",
            &p,
            f,
            nat(v6),
            Some(truncated),
        );
        let mut f = p.build();
        if v6 {
            f[18..20].copy_from_slice(&4u16.to_be_bytes());
        } else {
            f[16..18].copy_from_slice(&24u16.to_be_bytes());
            fix_ipv4(&mut f, 14);
        }
        case(
            "IP length short of the UDP header",
            &p,
            f,
            nat(v6),
            Some(truncated),
        );
    }
    for v6 in [false, true] {
        let p = vip_pkt(v6, false);
        let a = FastAction {
            egress_slot: 5,
            egress_ifindex: 999,
            ..nat(v6)
        };
        case(
            "egress slot without interface",
            &p,
            p.build(),
            a,
            Some(redirect),
        );
    }

    // Shapes the fast path does not look up at all.
    {
        let p = vip_pkt(false, false);
        let mut f = p.build();
        f[14] = 0x46; // 24-byte header: NOP NOP NOP EOL
        f.splice(34..34, [1, 1, 1, 0]);
        let len = (p.ip_len() + 4) as u16;
        f[16..18].copy_from_slice(&len.to_be_bytes());
        fix_ipv4(&mut f, 14);
        case("IPv4 options", &p, f, nat(false), None);
        for (what, frag) in [("first fragment", 0x2000u16), ("later fragment", 0x0004)] {
            let mut f = p.build();
            f[20..22].copy_from_slice(&frag.to_be_bytes());
            fix_ipv4(&mut f, 14);
            case(what, &p, f, nat(false), None);
        }
    }
    {
        // Hop-by-hop options (PadN) before the TCP header.
        let p = vip_pkt(true, false);
        let f = p.build();
        let mut g = f[..54].to_vec();
        g[20] = 0; // next header: hop-by-hop
        g.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        g.extend_from_slice(&f[54..]);
        let plen = (p.ip_len() - 40 + 8) as u16;
        g[18..20].copy_from_slice(&plen.to_be_bytes());
        case("IPv6 extension header", &p, g, nat(true), None);
    }
    for (what, tags) in [
        ("802.1Q", &[(0x8100u16, 7u16)][..]),
        ("802.1ad", &[(0x88a8, 100), (0x8100, 7)][..]),
    ] {
        let p = vip_pkt(false, true);
        let f = p.build();
        let mut g = f[..12].to_vec();
        for (tpid, vid) in tags {
            g.extend_from_slice(&tpid.to_be_bytes());
            g.extend_from_slice(&vid.to_be_bytes());
        }
        g.extend_from_slice(&f[12..]);
        case(what, &p, g, nat(false), None);
    }
    cases
}

#[test]
fn fast_path_punts() {
    if skip_unless_root("fast_path_punts") {
        return;
    }
    let (ns, mut steer) = setup("fpp");
    let if0 = steer.ifindex(0).unwrap();
    // The flows are VIP traffic, so the phase-1 path hands them to the engine.
    for vip in [VIP4, VIP6] {
        let vip: IpAddr = vip.parse().unwrap();
        steer.add_vip(VipKey::tcp(vip, 80)).unwrap();
        steer.add_vip(VipKey::udp(vip, 80)).unwrap();
        steer.add_vip_addr(vip).unwrap(); // fragments
    }
    let cases = punt_cases(if0);
    let mut sock = None;
    for with_socket in [false, true] {
        if with_socket {
            let s = ns
                .run(|| XskSocket::open("x0", 0, &XskConfig::default()))
                .unwrap();
            steer.register_xsk(0, 0, &s).unwrap();
            sock = Some(s);
        }
        for c in &cases {
            steer.fast_upsert(&c.key, &c.action).unwrap();
            let before = steer.counters().unwrap();
            let (action, out) = steer.test_run(0, &c.frame).unwrap();
            let after = steer.counters().unwrap();
            let what = c.what;
            assert_eq!(out, c.frame, "{what}: punted frames are not rewritten");
            if with_socket {
                assert_eq!(
                    action,
                    XdpAction::Redirect,
                    "{what}: to the engine's socket"
                );
                assert_eq!(after.redirected - before.redirected, 1, "{what}");
            } else {
                assert_eq!(action, XdpAction::Pass, "{what}: no socket, to the kernel");
                assert_eq!(after.no_socket - before.no_socket, 1, "{what}");
            }
            assert_eq!(after.fast_hit, before.fast_hit, "{what}");
            match c.counter {
                Some(f) => {
                    assert_eq!(f(&after) - f(&before), 1, "{what}: punt reason");
                    assert_eq!(after.fast_punt() - before.fast_punt(), 1, "{what}");
                }
                None => assert_eq!(after.fast_punt(), before.fast_punt(), "{what}"),
            }
            assert!(steer.fast_remove(&c.key).unwrap());
        }
    }

    // The engine's model punts every case it can express (it knows no interfaces, so it cannot
    // fail a redirect).
    for c in &cases {
        if c.counter.is_some_and(|f| {
            f(&SteerCounters {
                fast_redirect_fail: 1,
                ..Default::default()
            }) == 1
        }) {
            continue;
        }
        let m = engine_model(&c.frame, &c.key, &c.action);
        assert_eq!(m, None, "{}: the model punts too", c.what);
    }

    // A frame for the fast path while it is switched off takes the phase-1 path.
    let p = vip_pkt(false, true);
    let frame = p.build();
    steer
        .fast_upsert(&p.key(), &action(FastKind::Route, false, 0, if0))
        .unwrap();
    steer.set_fast_path(false).unwrap();
    assert!(!steer.fast_path().unwrap());
    let before = steer.counters().unwrap();
    let (a, out) = steer.test_run(0, &frame).unwrap();
    assert_eq!((a, &out), (XdpAction::Redirect, &frame), "fast path off");
    let after = steer.counters().unwrap();
    assert_eq!(
        (after.fast_hit, after.fast_punt()),
        (before.fast_hit, before.fast_punt())
    );
    steer.set_fast_path(true).unwrap();
    assert_eq!(steer.test_run(0, &frame).unwrap().0, XdpAction::Tx);
    drop(sock);
}

#[test]
fn fast_path_counts_and_stamps() {
    if skip_unless_root("fast_path_counts_and_stamps") {
        return;
    }
    let (_ns, mut steer) = setup("fpc");
    let (if0, if1) = (steer.ifindex(0).unwrap(), steer.ifindex(1).unwrap());
    let p4 = vip_pkt(false, true);
    let p6 = Pkt {
        payload: vec![9; 300],
        ..vip_pkt(true, false)
    };
    let a4 = FastAction {
        stats_index: 7,
        ..action(FastKind::NatDst, false, 1, if1)
    };
    let a6 = FastAction {
        stats_index: 200,
        ..action(FastKind::Tunnel6, true, 0, if0)
    };
    assert!(steer.fast_stats().unwrap().is_empty());
    let t0 = monotonic_ns();
    steer.fast_upsert(&p4.key(), &a4).unwrap();
    steer.fast_upsert(&p6.key(), &a6).unwrap();
    let t1 = monotonic_ns();
    assert_eq!(steer.fast_count(), 2);
    let (got, seen) = steer.fast_get(&p4.key()).unwrap().unwrap();
    assert_eq!(got, a4);
    assert!(
        (t0..=t1).contains(&seen),
        "stamped at insertion: {t0} {seen} {t1}"
    );
    // Replacing an entry keeps the count.
    steer.fast_upsert(&p4.key(), &a4).unwrap();
    assert_eq!(steer.fast_count(), 2);
    assert!(
        steer.fast_stats().unwrap().is_empty(),
        "nothing forwarded yet"
    );

    let (f4, f6) = (p4.build(), p6.build());
    let mut sent4 = 0;
    for _ in 0..5 {
        assert_eq!(steer.test_run(0, &f4).unwrap().0, XdpAction::Redirect);
        sent4 += 1;
    }
    let before6 = monotonic_ns();
    for _ in 0..3 {
        assert_eq!(steer.test_run(0, &f6).unwrap().0, XdpAction::Tx);
    }
    let after6 = monotonic_ns();
    let stats = steer.fast_stats().unwrap();
    assert_eq!(
        stats,
        vec![
            (7, sent4, sent4 * p4.ip_len() as u64),
            (200, 3, 3 * p6.ip_len() as u64)
        ],
        "packets and IP bytes as received, per stats_index"
    );
    let seen6 = steer.fast_last_seen(&p6.key()).unwrap().unwrap();
    assert!(
        (before6..=after6).contains(&seen6),
        "{before6} {seen6} {after6}"
    );
    let seen4 = steer.fast_last_seen(&p4.key()).unwrap().unwrap();
    assert!(seen4 < before6);

    // A punted packet counts nowhere and stamps nothing.
    let syn = Pkt {
        flags: 0x02,
        ..p6.clone()
    };
    steer.test_run(0, &syn.build()).unwrap();
    assert_eq!(steer.fast_stats().unwrap(), stats);
    assert_eq!(steer.fast_last_seen(&p6.key()).unwrap(), Some(seen6));

    steer.fast_stats_clear(7).unwrap();
    assert_eq!(steer.fast_stats().unwrap(), vec![stats[1]]);
    let c = steer.counters().unwrap();
    assert_eq!((c.fast_hit, c.fast_punt_tcp_flags), (8, 1));

    // Removal: the flow takes the phase-1 path again.
    assert!(steer.fast_remove(&p4.key()).unwrap());
    assert!(!steer.fast_remove(&p4.key()).unwrap());
    assert_eq!(steer.fast_last_seen(&p4.key()).unwrap(), None);
    assert_eq!(steer.fast_count(), 1);
    assert_eq!(
        steer.test_run(0, &f4).unwrap(),
        (XdpAction::Pass, f4.clone())
    );
    steer.fast_clear().unwrap();
    assert_eq!(steer.fast_count(), 0);
    assert_eq!(steer.test_run(0, &f6).unwrap(), (XdpAction::Pass, f6));

    // Bad entries are refused before they reach the map.
    let too_far = FastAction {
        stats_index: steer.config().fast_stats_max,
        ..a4
    };
    assert!(steer.fast_upsert(&p4.key(), &too_far).is_err());
    assert_eq!(steer.fast_count(), 0);
}
