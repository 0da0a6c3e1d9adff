//! Bad input: truncated, oversized, corrupt, fragmented and random frames are dropped with a
//! counted reason (or passed when they are not for the load balancer), never panic, and
//! whatever the engine transmits is a well-formed frame.

use std::net::SocketAddr;

use proptest::prelude::*;
use rvs_api::{Family, ForwardMethod, Netmask, ServiceKey, svc_flags};
use rvs_engine::{DropReason, Verdict};
use rvs_wire::{PacketMeta, ParseError};

use crate::util::*;

/// A lab with a service of every kind, so that fuzzed frames reach the deep paths.
fn busy_lab() -> Lab {
    let mut lab = Lab::new();
    for (n, v6) in [(0u16, false), (1, true)] {
        let t = tcp_key(vip(v6), 80);
        lab.add_service(t, "rr", |_| {});
        lab.add_dest(t, rip(v6, n), 8080, ForwardMethod::Masq, 1);
        lab.add_dest(t, rip(v6, n + 2), 8080, ForwardMethod::Masq, 1);
        let u = udp_key(vip(v6), 53);
        lab.add_service(u, "wrr", |_| {});
        lab.add_dest(u, rip(v6, n + 4), 53, ForwardMethod::Route, 2);
        lab.add_dest(u, rip(v6, n + 6), 53, ForwardMethod::Tunnel, 1);
        let p = tcp_key(vip(v6), 443);
        lab.add_service(p, "mh", |s| {
            s.flags = svc_flags::PERSISTENT;
            s.timeout = 60;
            s.netmask = if v6 {
                Netmask::V6(64)
            } else {
                Netmask::V4("255.255.255.0".parse().unwrap())
            };
        });
        lab.add_dest(p, rip(v6, n + 8), 443, ForwardMethod::Tunnel, 1);
        lab.add_dest(p, rip(v6, n + 10), 443, ForwardMethod::Route, 1);
        let o = udp_key(vip(v6), 5000);
        lab.add_service(o, "sh", |s| s.flags = svc_flags::ONEPACKET);
        lab.add_dest(o, rip(v6, n + 12), 5000, ForwardMethod::Masq, 1);
        let z = tcp_key(vip(v6), 0);
        lab.add_service(z, "wlc", |s| {
            s.flags = svc_flags::PERSISTENT;
            s.timeout = 30;
        });
        lab.add_dest(z, rip(v6, n + 14), 0, ForwardMethod::Masq, 1);
        let f = ServiceKey::Fwmark {
            mark: 9,
            family: if v6 { Family::Inet6 } else { Family::Inet },
        };
        lab.add_service(f, "lblc", |_| {});
        lab.add_dest(f, rip(v6, n + 16), 0, ForwardMethod::Route, 1);
    }
    // A few live connections of each kind.
    for v6 in [false, true] {
        for n in 0..3 {
            let c = SocketAddr::new(client(v6, n), 2000 + n as u16);
            for (port, l4) in [
                (80, tcp_flags(TH_SYN)),
                (443, tcp_flags(TH_SYN)),
                (53, L4::Udp),
                (22, tcp_flags(TH_SYN)),
            ] {
                let out = lab.run(
                    lab.ext,
                    &from_client(c, SocketAddr::new(vip(v6), port), l4, b"hello"),
                );
                assert!(
                    matches!(out.verdict, Verdict::Transmit(_)),
                    "{port}: {:?}",
                    out.verdict
                );
            }
        }
    }
    lab
}

/// Valid frames of every kind the engine handles, as fuzzing seeds.
fn seeds() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for v6 in [false, true] {
        let c = SocketAddr::new(client(v6, 1), 2001);
        let vip80 = SocketAddr::new(vip(v6), 80);
        v.push(from_client(c, vip80, tcp_flags(TH_SYN), b""));
        v.push(from_client(
            c,
            vip80,
            tcp_flags(TH_PSH | TH_ACK),
            b"GET / HTTP/1.0\r\n\r\n",
        ));
        v.push(from_client(
            c,
            SocketAddr::new(vip(v6), 53),
            L4::Udp,
            b"query",
        ));
        v.push(from_client(
            c,
            SocketAddr::new(vip(v6), 443),
            tcp_flags(TH_SYN),
            b"",
        ));
        v.push(from_client(
            c,
            SocketAddr::new(vip(v6), 5000),
            L4::Udp,
            b"ops",
        ));
        v.push(from_client(
            c,
            SocketAddr::new(vip(v6), 7777),
            tcp_flags(TH_SYN),
            b"",
        ));
        let rs = SocketAddr::new(rip(v6, if v6 { 1 } else { 0 }), 8080);
        let reply = from_server(0, rs, c, tcp_flags(TH_SYN | TH_ACK), b"");
        v.push(reply.clone());
        // ICMP errors quoting a NAT packet (outgoing) and a reply (incoming).
        let fwd = from_client(c, SocketAddr::new(rs.ip(), 8080), tcp_flags(TH_SYN), b"");
        let (kind, code) = if v6 { (1, 4) } else { (3, 3) };
        v.push(icmp_error(
            (rs_mac(0), INT_MAC),
            rs.ip(),
            c.ip(),
            kind,
            code,
            [0; 4],
            &fwd[14..],
        ));
        let back = build(
            rs_mac(0),
            ROUTER_MAC,
            vip80,
            c,
            tcp_flags(TH_ACK),
            &[0; 64],
            IpOpts::default(),
        );
        let router = if v6 {
            ip("2001:db8:ff::fe")
        } else {
            ip("198.19.255.254")
        };
        v.push(icmp_error(
            (ROUTER_MAC, EXT_MAC),
            router,
            vip(v6),
            if v6 { 2 } else { 3 },
            if v6 { 0 } else { 4 },
            [0, 0, 5, 0],
            &back[14..],
        ));
    }
    v.push(arp_request(
        [2, 9, 9, 9, 9, 9],
        "198.18.0.9".parse().unwrap(),
        "198.18.0.100".parse().unwrap(),
    ));
    v.push(neighbour_solicit(
        [2, 9, 9, 9, 9, 9],
        "2001:db8::9".parse().unwrap(),
        "2001:db8::100".parse().unwrap(),
    ));
    let mut echo = Vec::new();
    etherparse::PacketBuilder::ethernet2(ROUTER_MAC, EXT_MAC)
        .ipv4([198, 19, 0, 2], [198, 18, 0, 100], 9)
        .icmpv4_echo_request(1, 2)
        .write(&mut echo, b"abc")
        .unwrap();
    v.push(echo);
    v
}

/// Runs `frame` and checks the invariants every verdict must keep.
fn check(lab: &mut Lab, frame: &[u8]) -> Verdict {
    let drops_before: u64 = lab.engine.drop_counters().iter().map(|(_, n)| n).sum();
    let out = lab.run(lab.ext, frame);
    let drops_after: u64 = lab.engine.drop_counters().iter().map(|(_, n)| n).sum();
    match out.verdict {
        Verdict::Drop(r) => {
            assert!(drops_after > drops_before, "drop {r:?} not counted");
        }
        Verdict::Pass => assert_eq!(out.bytes, frame, "a passed frame must be unchanged"),
        Verdict::Transmit(_) => {
            let meta = PacketMeta::parse(&out.bytes);
            assert!(
                meta.is_ok(),
                "transmitted frame does not parse: {meta:?}\nin:  {frame:02x?}\nout: {:02x?}",
                out.bytes
            );
            if parses_with_etherparse(frame) {
                assert!(
                    parses_with_etherparse(&out.bytes),
                    "etherparse rejects the output\nin:  {frame:02x?}\nout: {:02x?}",
                    out.bytes
                );
            }
        }
    }
    out.verdict
}

fn malformed(e: ParseError) -> Verdict {
    Verdict::Drop(DropReason::Malformed(e))
}

#[test]
fn truncated_frames_are_dropped_and_counted() {
    let mut lab = busy_lab();
    let syn = from_client(
        SocketAddr::new(client(false, 50), 999),
        SocketAddr::new(vip4(), 80),
        tcp_flags(TH_SYN),
        b"",
    );
    assert_eq!(check(&mut lab, &[]), malformed(ParseError::Truncated));
    assert_eq!(
        check(&mut lab, &syn[..13]),
        malformed(ParseError::Truncated)
    );
    assert_eq!(
        check(&mut lab, &syn[..14 + 19]),
        malformed(ParseError::TruncatedIp)
    );
    // Cut inside the TCP header: the IPv4 total length now exceeds the frame.
    assert_eq!(
        check(&mut lab, &syn[..14 + 30]),
        malformed(ParseError::BadTotalLength)
    );
    // Consistently shortened (total length adjusted, checksum fixed): truncated L4.
    let mut short = syn[..14 + 30].to_vec();
    set_ipv4_total_len(&mut short, 30);
    assert_eq!(check(&mut lab, &short), malformed(ParseError::TruncatedL4));
    let arp = arp_request(
        [2, 1, 1, 1, 1, 1],
        "198.18.0.9".parse().unwrap(),
        "198.18.0.100".parse().unwrap(),
    );
    assert_eq!(
        check(&mut lab, &arp[..30]),
        malformed(ParseError::TruncatedArp)
    );
    let names: Vec<_> = lab
        .engine
        .drop_counters()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, _)| k)
        .collect();
    for want in [
        "truncated",
        "truncated_ip",
        "bad_total_length",
        "truncated_l4",
        "truncated_arp",
    ] {
        assert!(names.contains(&want), "{want} not counted: {names:?}");
    }
    assert_eq!(lab.drops("truncated"), 2);
}

/// Sets the IPv4 total length of a frame and recomputes the header checksum.
fn set_ipv4_total_len(frame: &mut [u8], len: u16) {
    frame[16..18].copy_from_slice(&len.to_be_bytes());
    fix_ipv4_checksum(frame);
}

fn fix_ipv4_checksum(frame: &mut [u8]) {
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    if ihl < 20 || frame.len() < 14 + ihl {
        return;
    }
    frame[24..26].copy_from_slice(&[0, 0]);
    let mut sum = 0u32;
    for w in frame[14..14 + ihl].chunks(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    frame[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

#[test]
fn oversized_frames() {
    let mut lab = busy_lab();
    let c = SocketAddr::new(client(false, 60), 999);
    let v = SocketAddr::new(vip4(), 53);
    // A 9000-byte jumbo datagram with DF to a DR/TUN service on a 1500-byte link.
    let jumbo = from_client(c, v, L4::Udp, &vec![0x5a; 9000 - 28]);
    let out = lab.run(lab.ext, &jumbo);
    assert_eq!(
        out.verdict,
        Verdict::Transmit(lab.ext),
        "frag-needed back to the client"
    );
    let p = parse(&out.bytes);
    assert_eq!((p.ip.payload()[0], p.ip.payload()[1]), (3, 4));
    assert!(
        out.bytes.len() <= 14 + 576,
        "ICMP errors quote at most 576 bytes"
    );
    assert_eq!(lab.drops("too_big"), 1);
    // Without DF: cannot be fragmented here, dropped.
    let o = IpOpts {
        df: false,
        ..IpOpts::default()
    };
    let jumbo = build(
        ROUTER_MAC,
        EXT_MAC,
        c,
        v,
        L4::Udp,
        &vec![0x5a; 9000 - 28],
        o,
    );
    assert_eq!(check(&mut lab, &jumbo), Verdict::Drop(DropReason::TooBig));
    // Ethernet padding / trailing bytes beyond the IP datagram are tolerated.
    let mut padded = from_client(
        SocketAddr::new(client(false, 61), 999),
        SocketAddr::new(vip4(), 80),
        tcp_flags(TH_SYN),
        b"",
    );
    padded.extend_from_slice(&[0xee; 20]);
    let out = lab.run(lab.ext, &padded);
    assert_eq!(out.verdict, Verdict::Transmit(lab.int));
    let p = parse(&out.bytes);
    p.ip.assert_l4_checksum();
}

#[test]
fn corrupt_checksums() {
    let mut lab = busy_lab();
    let mut syn = from_client(
        SocketAddr::new(client(false, 70), 999),
        SocketAddr::new(vip4(), 80),
        tcp_flags(TH_SYN),
        b"",
    );
    syn[24] ^= 0xff;
    assert_eq!(check(&mut lab, &syn), malformed(ParseError::BadIpChecksum));
    assert_eq!(lab.drops("bad_ip_checksum"), 1);
    // A bad TCP checksum is not the director's business (IPVS forwards it), but the NAT
    // rewrite must keep it bad: the incremental update cannot "repair" it.
    let mut syn = from_client(
        SocketAddr::new(client(false, 71), 999),
        SocketAddr::new(vip4(), 80),
        tcp_flags(TH_SYN),
        b"",
    );
    syn[14 + 20 + 16] ^= 0x01;
    let out = lab.run(lab.ext, &syn);
    assert_eq!(out.verdict, Verdict::Transmit(lab.int));
    let p = parse(&out.bytes);
    let (tcp, data) = etherparse::TcpHeader::from_slice(p.ip.payload()).unwrap();
    let IpView::V4(h, _) = &p.ip else {
        unreachable!()
    };
    let correct = tcp.calc_checksum_ipv4(h, data).unwrap();
    assert_ne!(
        tcp.checksum, correct,
        "a corrupt checksum must stay corrupt"
    );
    assert_eq!(
        tcp.checksum ^ correct,
        0x0100,
        "off by exactly the injected error"
    );
}

#[test]
fn fragments_to_a_vip_are_dropped() {
    let mut lab = busy_lab();
    let c = SocketAddr::new(client(false, 80), 999);
    // First fragment (MF set) and a later fragment of a UDP datagram to the VIP.
    let mut first = from_client(c, SocketAddr::new(vip4(), 53), L4::Udp, &[1; 64]);
    first[20] |= 0x20;
    fix_ipv4_checksum(&mut first);
    assert_eq!(check(&mut lab, &first), Verdict::Drop(DropReason::Fragment));
    let mut later = from_client(c, SocketAddr::new(vip4(), 53), L4::Udp, &[1; 64]);
    later[20] = 0;
    later[21] = 10;
    fix_ipv4_checksum(&mut later);
    assert_eq!(check(&mut lab, &later), Verdict::Drop(DropReason::Fragment));
    assert_eq!(lab.drops("fragment"), 2);
    // A fragment to an address that is no VIP passes.
    let mut other = from_client(c, SocketAddr::new(ip("198.18.0.2"), 53), L4::Udp, &[1; 64]);
    other[20] |= 0x20;
    fix_ipv4_checksum(&mut other);
    assert_eq!(check(&mut lab, &other), Verdict::Pass);
    // IPv6: a fragment header in front of UDP.
    let c6 = SocketAddr::new(client(true, 80), 999);
    let plain = from_client(c6, SocketAddr::new(vip6(), 53), L4::Udp, &[1; 64]);
    let mut frag = plain[..14 + 40].to_vec();
    frag[14 + 6] = 44; // next header: fragment
    frag.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0x12, 0x34]); // offset 0, M = 1
    frag.extend_from_slice(&plain[14 + 40..]);
    let plen = (frag.len() - 14 - 40) as u16;
    frag[18..20].copy_from_slice(&plen.to_be_bytes());
    assert_eq!(check(&mut lab, &frag), Verdict::Drop(DropReason::Fragment));
}

#[test]
fn garbage_is_dropped_or_passed() {
    let mut lab = busy_lab();
    // Not IP or ARP: nothing for the load balancer.
    let mut lldp = vec![0x01, 0x80, 0xc2, 0, 0, 0x0e, 2, 3, 4, 5, 6, 7, 0x88, 0xcc];
    lldp.extend_from_slice(&[0x02; 46]);
    assert_eq!(check(&mut lab, &lldp), Verdict::Pass);
    // IPv4 ethertype with an IPv6 header inside.
    let mut bad = from_client(
        SocketAddr::new(client(true, 1), 9),
        SocketAddr::new(vip6(), 80),
        tcp_flags(TH_SYN),
        b"",
    );
    bad[12..14].copy_from_slice(&[0x08, 0x00]);
    assert_eq!(check(&mut lab, &bad), malformed(ParseError::BadIpVersion));
    // IHL below 5.
    let mut bad = from_client(
        SocketAddr::new(client(false, 1), 9),
        SocketAddr::new(vip4(), 80),
        tcp_flags(TH_SYN),
        b"",
    );
    bad[14] = 0x44;
    assert_eq!(
        check(&mut lab, &bad),
        malformed(ParseError::BadIpHeaderLength)
    );
    // TCP data offset beyond the segment.
    let mut bad = from_client(
        SocketAddr::new(client(false, 1), 9),
        SocketAddr::new(vip4(), 80),
        tcp_flags(TH_SYN),
        b"",
    );
    bad[14 + 20 + 12] = 0xf0;
    assert_eq!(
        check(&mut lab, &bad),
        malformed(ParseError::BadTcpHeaderLength)
    );
    // UDP length field larger than the datagram.
    let mut bad = from_client(
        SocketAddr::new(client(false, 1), 9),
        SocketAddr::new(vip4(), 53),
        L4::Udp,
        b"x",
    );
    bad[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&500u16.to_be_bytes());
    assert_eq!(check(&mut lab, &bad), malformed(ParseError::BadUdpLength));
    // Three VLAN tags.
    let syn = from_client(
        SocketAddr::new(client(false, 1), 9),
        SocketAddr::new(vip4(), 80),
        tcp_flags(TH_SYN),
        b"",
    );
    let mut tagged = syn[..12].to_vec();
    for _ in 0..3 {
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    }
    tagged.extend_from_slice(&syn[12..]);
    assert_eq!(
        check(&mut lab, &tagged),
        malformed(ParseError::TooManyVlanTags)
    );
    // An ICMP error quoting garbage.
    let err = icmp_error(
        (ROUTER_MAC, EXT_MAC),
        ip("198.19.255.254"),
        vip4(),
        3,
        4,
        [0; 4],
        &[0x45, 0, 0],
    );
    assert_eq!(
        check(&mut lab, &err),
        Verdict::Drop(DropReason::IcmpNoConnection)
    );
}

#[test]
fn a_single_vlan_tag_is_kept_on_forwarded_frames() {
    let mut lab = busy_lab();
    let syn = from_client(
        SocketAddr::new(client(false, 90), 9),
        SocketAddr::new(vip4(), 80),
        tcp_flags(TH_SYN),
        b"",
    );
    let mut tagged = syn[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
    tagged.extend_from_slice(&syn[12..]);
    let out = lab.run(lab.ext, &tagged);
    assert_eq!(out.verdict, Verdict::Transmit(lab.int));
    let meta = PacketMeta::parse(&out.bytes).unwrap();
    assert_eq!(meta.vlan_id, Some(7));
    assert!(
        [rip(false, 0), rip(false, 2)].contains(&meta.dst_addr),
        "DNAT under the tag"
    );
    assert_eq!(&out.bytes[12..16], &[0x81, 0x00, 0x00, 0x07]);
}

#[test]
fn seeds_are_accepted() {
    // The fuzz seeds themselves must be valid, or the mutation tests start from garbage.
    let mut lab = busy_lab();
    for (i, s) in seeds().iter().enumerate() {
        let v = check(&mut lab, s);
        assert!(
            !matches!(v, Verdict::Drop(DropReason::Malformed(_))),
            "seed {i}: {v:?}"
        );
    }
}

/// A mutation of a seed frame.
#[derive(Debug, Clone)]
enum Mutation {
    /// Overwrite one byte.
    Set(usize, u8),
    /// Flip bits of one byte.
    Xor(usize, u8),
    /// Cut the frame to this length.
    Truncate(usize),
    /// Append bytes.
    Extend(Vec<u8>),
    /// Fix the IPv4 header checksum (so later layers get parsed).
    FixChecksum,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (0usize..120, any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        3 => (0usize..120, 1u8..=255).prop_map(|(i, b)| Mutation::Xor(i, b)),
        1 => (0usize..120).prop_map(Mutation::Truncate),
        1 => proptest::collection::vec(any::<u8>(), 1..64).prop_map(Mutation::Extend),
        3 => Just(Mutation::FixChecksum),
    ]
}

fn apply(frame: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::Set(i, b) => {
            if let Some(x) = frame.get_mut(*i) {
                *x = *b;
            }
        }
        Mutation::Xor(i, b) => {
            if let Some(x) = frame.get_mut(*i) {
                *x ^= *b;
            }
        }
        Mutation::Truncate(n) => frame.truncate(*n),
        Mutation::Extend(v) => frame.extend_from_slice(v),
        Mutation::FixChecksum => {
            if frame.len() > 14 && frame.get(12..14) == Some(&[0x08, 0x00]) {
                fix_ipv4_checksum(frame);
            }
        }
    }
}

/// Random bytes behind a chosen L2 header, mostly aimed at a VIP.
fn random_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            Just([0x08u8, 0x00]),
            Just([0x86, 0xdd]),
            Just([0x08, 0x06]),
            any::<[u8; 2]>()
        ],
        proptest::collection::vec(any::<u8>(), 0..200),
        any::<bool>(),
    )
        .prop_map(|(et, body, aim)| {
            let mut f = EXT_MAC.to_vec();
            f.extend_from_slice(&ROUTER_MAC);
            f.extend_from_slice(&et);
            f.extend_from_slice(&body);
            if aim && et == [0x08, 0x00] && f.len() >= 34 {
                f[14] = 0x45;
                f[30..34].copy_from_slice(&[198, 18, 0, 100]);
                let len = (f.len() - 14) as u16;
                f[16..18].copy_from_slice(&len.to_be_bytes());
                fix_ipv4_checksum(&mut f);
            }
            if aim && et == [0x86, 0xdd] && f.len() >= 54 {
                f[14] = 0x60;
                f[38..54].copy_from_slice(&vip6_octets());
                let len = (f.len() - 54) as u16;
                f[18..20].copy_from_slice(&len.to_be_bytes());
            }
            f
        })
}

fn vip6_octets() -> [u8; 16] {
    match vip6() {
        std::net::IpAddr::V6(a) => a.octets(),
        std::net::IpAddr::V4(_) => unreachable!(),
    }
}

fn fuzz_cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    // 256 cases by default; PROPTEST_CASES overrides for long runs.
    #![proptest_config(ProptestConfig { cases: fuzz_cases(), ..ProptestConfig::default() })]

    /// Mutated valid frames, in sequences (the engine keeps state between them).
    #[test]
    fn mutated_frames_never_panic(
        picks in proptest::collection::vec((0usize..64, proptest::collection::vec(mutation(), 0..6), any::<bool>()), 1..12),
        fast_path in any::<bool>(),
    ) {
        let mut lab = busy_lab();
        // The fast-path export bookkeeping runs on the same packets.
        lab.engine.set_fast_path(fast_path);
        let seeds = seeds();
        for (pick, muts, int) in picks {
            let mut f = seeds[pick % seeds.len()].clone();
            for m in &muts {
                apply(&mut f, m);
            }
            let iface = if int { lab.int } else { lab.ext };
            let drops_before: u64 = lab.engine.drop_counters().iter().map(|(_, n)| n).sum();
            let out = lab.run(iface, &f);
            let drops_after: u64 = lab.engine.drop_counters().iter().map(|(_, n)| n).sum();
            match out.verdict {
                Verdict::Drop(_) => prop_assert!(drops_after > drops_before),
                Verdict::Pass => prop_assert_eq!(&out.bytes, &f),
                Verdict::Transmit(_) => {
                    prop_assert!(PacketMeta::parse(&out.bytes).is_ok(), "out {:02x?}", out.bytes);
                    if parses_with_etherparse(&f) {
                        prop_assert!(parses_with_etherparse(&out.bytes), "in {:02x?}\nout {:02x?}", f, out.bytes);
                    }
                }
            }
            lab.advance(std::time::Duration::from_millis(250));
            lab.engine.drain_fast_updates();
        }
    }

    /// Random frames.
    #[test]
    fn random_frames_never_panic(frames in proptest::collection::vec(random_frame(), 1..16)) {
        let mut lab = busy_lab();
        for f in frames {
            check(&mut lab, &f);
        }
    }
}
