//! The steering program's classification, frame by frame, through BPF_PROG_TEST_RUN: every
//! category, VLAN tags, extension headers, ICMP errors, fragments, and what must stay with the
//! kernel. Also the TUN decapsulation output bytes. The interface is down, so only the test
//! frames move the counters.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use rvs_io::xdp::{SteerCounters, Steering, TunDecap, VipKey, XdpAction, XdpMode};
use rvs_io::xsk::{XskConfig, XskSocket};

use crate::pkt::{self, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use crate::util::{Netns, skip_unless_root, steering_on, wait_for};

const DMAC: [u8; 6] = [2, 0, 0, 0, 0, 0xd];
const CMAC: [u8; 6] = [2, 0, 0, 0, 0, 0xc];

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}
fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// A TCP header (20 bytes) with the given ports, SYN set.
fn tcp(sport: u16, dport: u16) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02;
    t
}

/// An SCTP common header (12 bytes).
fn sctp(sport: u16, dport: u16) -> Vec<u8> {
    let mut t = vec![0u8; 12];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t
}

fn eth4(ip: &[u8]) -> Vec<u8> {
    pkt::ethernet(DMAC, CMAC, ETHERTYPE_IPV4, ip)
}
fn eth6(ip: &[u8]) -> Vec<u8> {
    pkt::ethernet(DMAC, CMAC, ETHERTYPE_IPV6, ip)
}
fn udp4(s: &str, sp: u16, d: &str, dp: u16) -> Vec<u8> {
    let (s, d) = (v4(s), v4(d));
    pkt::ipv4(s, d, 17, &pkt::udp(s.into(), d.into(), sp, dp, b"x"))
}
fn tcp4(s: &str, sp: u16, d: &str, dp: u16) -> Vec<u8> {
    pkt::ipv4(v4(s), v4(d), 6, &tcp(sp, dp))
}
fn tcp6(s: &str, sp: u16, d: &str, dp: u16) -> Vec<u8> {
    pkt::ipv6(v6(s), v6(d), 6, &tcp(sp, dp))
}
fn udp6(s: &str, sp: u16, d: &str, dp: u16) -> Vec<u8> {
    let (s, d) = (v6(s), v6(d));
    pkt::ipv6(s, d, 17, &pkt::udp(s.into(), d.into(), sp, dp, b"x"))
}

/// Inserts VLAN tags (outermost first) after the MAC addresses.
fn tagged(frame: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    for (tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&frame[12..]);
    f
}

fn arp(op: u16, spa: &str, tpa: &str) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&CMAC);
    a.extend_from_slice(&v4(spa).octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&v4(tpa).octets());
    pkt::ethernet([0xff; 6], CMAC, ETHERTYPE_ARP, &a)
}

fn neighbour_solicit(src: &str, target: &str) -> Vec<u8> {
    let (s, t) = (v6(src), v6(target));
    let mut d = [0xff02, 0, 0, 0, 0, 1, 0xff00, 0];
    let seg = t.segments();
    d[6] |= seg[6] & 0xff;
    d[7] = seg[7];
    let dst = Ipv6Addr::from(d);
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&t.octets());
    m.extend_from_slice(&[1, 1]);
    m.extend_from_slice(&CMAC);
    let c = pkt::l4_checksum(s.into(), dst.into(), 58, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = pkt::ipv6(s, dst, 58, &m);
    ip[7] = 255;
    eth6(&ip)
}

/// ICMP(v4) error `ty`/`code` quoting the IP packet `quoted` (first 28+ bytes).
fn icmp4_error(src: &str, dst: &str, ty: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&quoted[..quoted.len().min(28)]);
    let c = pkt::fold(pkt::sum(&m));
    m[2..4].copy_from_slice(&c.to_be_bytes());
    eth4(&pkt::ipv4(v4(src), v4(dst), 1, &m))
}

fn icmp6_error(src: &str, dst: &str, ty: u8, quoted: &[u8]) -> Vec<u8> {
    let (s, d) = (v6(src), v6(dst));
    let mut m = vec![ty, 0, 0, 0, 0, 0, 0x05, 0x00];
    m.extend_from_slice(&quoted[..quoted.len().min(48)]);
    let c = pkt::l4_checksum(s.into(), d.into(), 58, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    eth6(&pkt::ipv6(s, d, 58, &m))
}

/// An IPv4 packet with the given fragment field (flags + offset).
fn frag4(s: &str, d: &str, frag: u16) -> Vec<u8> {
    let mut ip = udp4(s, 1000, d, 53);
    ip[6..8].copy_from_slice(&frag.to_be_bytes());
    pkt::fix_ipv4_checksum(&mut ip);
    eth4(&ip)
}

/// An IPv6 packet with one extension header of type `ext` (8 bytes) before a TCP header.
fn with_ext6(s: &str, d: &str, ext: u8, dport: u16) -> Vec<u8> {
    let mut payload = vec![6, 0, 0, 0, 0, 0, 0, 0];
    if ext == 44 {
        payload[3] = 1; // fragment header: offset 0, M=1
    } else {
        payload[2] = 1; // PadN option filling the 6 bytes
        payload[3] = 4;
    }
    payload.extend_from_slice(&tcp(40000, dport));
    eth6(&pkt::ipv6(v6(s), v6(d), ext, &payload))
}

type Field = fn(&SteerCounters) -> u64;

#[test]
fn steering_classifies_every_kind_of_frame() {
    if skip_unless_root("bpf_classify") {
        return;
    }
    let ns = Netns::new("cls");
    ns.ip(&["link", "add", "x0", "type", "veth", "peer", "name", "x1"]);
    ns.ip(&["addr", "add", "198.18.5.1/24", "dev", "x0"]);
    ns.ip(&["addr", "add", "2001:db8:5::1/64", "dev", "x0", "nodad"]);
    let mut steer = steering_on(&ns, &["x0"], XdpMode::Skb).unwrap();
    let vip = |s: &str| -> IpAddr { s.parse().unwrap() };
    steer.add_vip(VipKey::udp(vip("198.18.5.100"), 53)).unwrap();
    steer.add_vip(VipKey::tcp(vip("198.18.5.100"), 80)).unwrap();
    steer.add_vip(VipKey::sctp(vip("198.18.5.100"), 9)).unwrap();
    steer.add_vip(VipKey::tcp(vip("198.18.5.101"), 0)).unwrap();
    steer
        .add_vip(VipKey::tcp(vip("2001:db8:5::100"), 443))
        .unwrap();
    for a in ["198.18.5.100", "198.18.5.101", "2001:db8:5::100"] {
        steer.add_vip_addr(vip(a)).unwrap();
    }
    steer
        .add_nat_source(VipKey::tcp(vip("198.18.6.10"), 8080))
        .unwrap();
    steer
        .add_nat_source(VipKey::udp(vip("2001:db8:6::10"), 53))
        .unwrap();

    let vip_f: Field = |c| c.vip;
    let echo: Field = |c| c.vip_echo;
    let icmp_err: Field = |c| c.icmp_error;
    let arp_f: Field = |c| c.arp;
    let ns_f: Field = |c| c.neighbour_solicit;
    let nat: Field = |c| c.nat_return;
    let frag: Field = |c| c.fragment;

    // (what, frame, Some(category) = for rvs, None = for the kernel)
    let cases: Vec<(&str, Vec<u8>, Option<Field>)> = vec![
        (
            "udp to vip:53",
            eth4(&udp4("198.18.9.9", 5000, "198.18.5.100", 53)),
            Some(vip_f),
        ),
        (
            "udp to vip:54",
            eth4(&udp4("198.18.9.9", 5000, "198.18.5.100", 54)),
            None,
        ),
        (
            "tcp to vip:80",
            eth4(&tcp4("198.18.9.9", 5000, "198.18.5.100", 80)),
            Some(vip_f),
        ),
        (
            "tcp to vip:81",
            eth4(&tcp4("198.18.9.9", 5000, "198.18.5.100", 81)),
            None,
        ),
        (
            "udp to tcp-only vip:80",
            eth4(&udp4("198.18.9.9", 5000, "198.18.5.100", 80)),
            None,
        ),
        (
            "tcp to port-0 service",
            eth4(&tcp4("198.18.9.9", 5000, "198.18.5.101", 12345)),
            Some(vip_f),
        ),
        (
            "sctp to vip:9",
            eth4(&pkt::ipv4(
                v4("198.18.9.9"),
                v4("198.18.5.100"),
                132,
                &sctp(5000, 9),
            )),
            Some(vip_f),
        ),
        (
            "tcp to director",
            eth4(&tcp4("198.18.9.9", 5000, "198.18.5.1", 22)),
            None,
        ),
        (
            "ipv4 with options to vip:53",
            {
                let mut ip = udp4("198.18.9.9", 5000, "198.18.5.100", 53);
                ip[0] = 0x46;
                ip.splice(20..20, [1, 1, 1, 0]); // NOP NOP NOP EOL
                let len = (ip.len() as u16).to_be_bytes();
                ip[2..4].copy_from_slice(&len);
                pkt::fix_ipv4_checksum(&mut ip);
                eth4(&ip)
            },
            Some(vip_f),
        ),
        (
            "802.1Q udp to vip",
            tagged(
                &eth4(&udp4("198.18.9.9", 5000, "198.18.5.100", 53)),
                &[(0x8100, 7)],
            ),
            Some(vip_f),
        ),
        (
            "QinQ udp to vip",
            tagged(
                &eth4(&udp4("198.18.9.9", 5000, "198.18.5.100", 53)),
                &[(0x88a8, 100), (0x8100, 7)],
            ),
            Some(vip_f),
        ),
        (
            "tcp6 to vip:443",
            eth6(&tcp6("2001:db8:9::9", 5000, "2001:db8:5::100", 443)),
            Some(vip_f),
        ),
        (
            "udp6 to tcp-only vip:443",
            eth6(&udp6("2001:db8:9::9", 5000, "2001:db8:5::100", 443)),
            None,
        ),
        (
            "tcp6 after hop-by-hop",
            with_ext6("2001:db8:9::9", "2001:db8:5::100", 0, 443),
            Some(vip_f),
        ),
        (
            "tcp6 after dest opts to other port",
            with_ext6("2001:db8:9::9", "2001:db8:5::100", 60, 444),
            None,
        ),
        (
            "ipv6 fragment to vip",
            with_ext6("2001:db8:9::9", "2001:db8:5::100", 44, 443),
            Some(frag),
        ),
        (
            "ipv6 fragment to director",
            with_ext6("2001:db8:9::9", "2001:db8:5::1", 44, 443),
            None,
        ),
        (
            "echo to vip",
            eth4(&pkt::ipv4(
                v4("198.18.9.9"),
                v4("198.18.5.100"),
                1,
                &pkt::icmp4_echo(1, 1),
            )),
            Some(echo),
        ),
        (
            "echo to director",
            eth4(&pkt::ipv4(
                v4("198.18.9.9"),
                v4("198.18.5.1"),
                1,
                &pkt::icmp4_echo(1, 1),
            )),
            None,
        ),
        (
            "echo6 to vip",
            eth6(&pkt::ipv6(
                v6("2001:db8:9::9"),
                v6("2001:db8:5::100"),
                58,
                &pkt::icmp6_echo(v6("2001:db8:9::9"), v6("2001:db8:5::100"), 1, 1),
            )),
            Some(echo),
        ),
        (
            "arp request for vip",
            arp(1, "198.18.5.7", "198.18.5.100"),
            Some(arp_f),
        ),
        (
            "arp request for director",
            arp(1, "198.18.5.7", "198.18.5.1"),
            None,
        ),
        (
            "gratuitous arp for vip",
            arp(1, "198.18.5.100", "198.18.5.100"),
            None,
        ),
        (
            "arp reply about vip",
            arp(2, "198.18.5.7", "198.18.5.100"),
            None,
        ),
        (
            "tagged arp request for vip",
            tagged(&arp(1, "198.18.5.7", "198.18.5.100"), &[(0x8100, 3)]),
            Some(arp_f),
        ),
        (
            "NS for vip",
            neighbour_solicit("2001:db8:5::7", "2001:db8:5::100"),
            Some(ns_f),
        ),
        (
            "DAD NS for vip",
            neighbour_solicit("::", "2001:db8:5::100"),
            Some(ns_f),
        ),
        (
            "NS for director",
            neighbour_solicit("2001:db8:5::7", "2001:db8:5::1"),
            None,
        ),
        (
            "nat return to client",
            eth4(&tcp4("198.18.6.10", 8080, "198.18.9.9", 5555)),
            Some(nat),
        ),
        (
            "nat source to director (health check)",
            eth4(&tcp4("198.18.6.10", 8080, "198.18.5.1", 5555)),
            None,
        ),
        (
            "other port of nat source",
            eth4(&tcp4("198.18.6.10", 8081, "198.18.9.9", 5555)),
            None,
        ),
        (
            "nat6 return to client",
            eth6(&udp6("2001:db8:6::10", 53, "2001:db8:9::9", 5555)),
            Some(nat),
        ),
        (
            "icmp unreachable about vip flow",
            icmp4_error(
                "198.18.7.1",
                "198.18.5.100",
                3,
                4,
                &tcp4("198.18.5.100", 80, "198.18.9.9", 5000),
            ),
            Some(icmp_err),
        ),
        (
            "icmp unreachable about other port",
            icmp4_error(
                "198.18.7.1",
                "198.18.5.100",
                3,
                4,
                &tcp4("198.18.5.100", 81, "198.18.9.9", 5000),
            ),
            None,
        ),
        (
            "icmp error from real server about nat flow",
            icmp4_error(
                "198.18.6.10",
                "198.18.9.9",
                3,
                3,
                &tcp4("198.18.9.9", 5000, "198.18.6.10", 8080),
            ),
            Some(icmp_err),
        ),
        (
            "icmp error to director about its health check",
            icmp4_error(
                "198.18.6.10",
                "198.18.5.1",
                3,
                3,
                &tcp4("198.18.5.1", 5000, "198.18.6.10", 8080),
            ),
            None,
        ),
        (
            "time exceeded about vip flow",
            icmp4_error(
                "198.18.7.1",
                "198.18.5.100",
                11,
                0,
                &udp4("198.18.5.100", 53, "198.18.9.9", 5000),
            ),
            Some(icmp_err),
        ),
        (
            "icmp6 packet too big about vip flow",
            icmp6_error(
                "2001:db8:7::1",
                "2001:db8:5::100",
                2,
                &tcp6("2001:db8:5::100", 443, "2001:db8:9::9", 5000),
            ),
            Some(icmp_err),
        ),
        (
            "icmp6 unreachable about nat flow",
            icmp6_error(
                "2001:db8:6::10",
                "2001:db8:9::9",
                1,
                &udp6("2001:db8:9::9", 5000, "2001:db8:6::10", 53),
            ),
            Some(icmp_err),
        ),
        (
            "first fragment to vip",
            frag4("198.18.9.9", "198.18.5.100", 0x2000),
            Some(frag),
        ),
        (
            "later fragment to vip",
            frag4("198.18.9.9", "198.18.5.100", 0x0010),
            Some(frag),
        ),
        (
            "fragment from nat source to client",
            frag4("198.18.6.10", "198.18.9.9", 0x0010),
            Some(frag),
        ),
        (
            "fragment from nat source to director",
            frag4("198.18.6.10", "198.18.5.1", 0x0010),
            None,
        ),
        (
            "fragment to elsewhere",
            frag4("198.18.9.9", "198.18.5.50", 0x2000),
            None,
        ),
        (
            "DF is not a fragment",
            frag4("198.18.9.9", "198.18.5.100", 0x4000),
            Some(vip_f),
        ),
        (
            "other ethertype",
            pkt::ethernet(DMAC, CMAC, 0x88b5, &[0; 46]),
            None,
        ),
    ];

    for (what, frame, want) in &cases {
        let before = steer.counters().unwrap();
        let (action, out) = steer.test_run(0, frame).unwrap();
        let after = steer.counters().unwrap();
        assert_eq!(
            action,
            XdpAction::Pass,
            "{what}: no socket registered, so passed"
        );
        assert_eq!(&out, frame, "{what}: steering never modifies frames");
        match want {
            Some(field) => {
                assert_eq!(field(&after) - field(&before), 1, "{what}: category");
                assert_eq!(after.no_socket - before.no_socket, 1, "{what}: for rvs");
                assert_eq!(after.passed, before.passed, "{what}");
            }
            None => {
                assert_eq!(after.passed - before.passed, 1, "{what}: for the kernel");
                assert_eq!(after.no_socket, before.no_socket, "{what}");
            }
        }
    }

    // Truncated headers are counted apart and left to the kernel.
    let mut short_udp = eth4(&udp4("198.18.9.9", 5000, "198.18.5.100", 53));
    short_udp.truncate(14 + 20 + 2);
    let short_ip = eth4(&udp4("198.18.9.9", 5000, "198.18.5.100", 53))[..14 + 10].to_vec();
    for frame in [short_udp, short_ip] {
        let before = steer.counters().unwrap();
        assert_eq!(steer.test_run(0, &frame).unwrap().0, XdpAction::Pass);
        assert_eq!(steer.counters().unwrap().malformed - before.malformed, 1);
    }

    // Removing entries takes effect at once; the NAT address stays while a source uses it.
    steer
        .add_nat_source(VipKey::tcp(vip("198.18.6.10"), 9090))
        .unwrap();
    steer
        .del_nat_source(VipKey::tcp(vip("198.18.6.10"), 8080))
        .unwrap();
    let f = frag4("198.18.6.10", "198.18.9.9", 0x0010);
    let before = steer.counters().unwrap();
    steer.test_run(0, &f).unwrap();
    assert_eq!(steer.counters().unwrap().fragment - before.fragment, 1);
    steer.clear().unwrap();
    for (what, frame, _) in &cases {
        let before = steer.counters().unwrap();
        steer.test_run(0, frame).unwrap();
        let after = steer.counters().unwrap();
        assert_eq!(
            after.passed - before.passed,
            1,
            "{what}: after clear() everything is passed"
        );
    }
    steer.del_vip(VipKey::udp(vip("198.18.5.100"), 53)).unwrap(); // absent: not an error
}

#[test]
fn tun_decap_output_frames() {
    if skip_unless_root("bpf_classify (tun_decap)") {
        return;
    }
    let ns = Netns::new("dcl");
    ns.ip(&["link", "add", "x0", "type", "veth", "peer", "name", "x1"]);
    ns.ip(&["addr", "add", "198.18.8.2/24", "dev", "x0"]);
    ns.ip(&["addr", "add", "2001:db8:8::2/64", "dev", "x0", "nodad"]);
    let mut t = ns.run(|| TunDecap::attach("x0", XdpMode::Skb)).unwrap();
    t.add_vip("198.18.8.100".parse().unwrap()).unwrap();
    t.add_vip("2001:db8:8::100".parse().unwrap()).unwrap();

    let inner4 = udp4("198.18.9.9", 4444, "198.18.8.100", 53);
    let inner6 = udp6("2001:db8:9::9", 4444, "2001:db8:8::100", 53);
    let outer4 =
        |inner: &[u8], proto: u8| pkt::ipv4(v4("198.18.8.1"), v4("198.18.8.2"), proto, inner);
    let outer6 =
        |inner: &[u8], next: u8| pkt::ipv6(v6("2001:db8:8::1"), v6("2001:db8:8::2"), next, inner);

    // (frame in, expected frame out)
    let with_options = {
        let mut o = outer4(&inner4, 4);
        o[0] = 0x47; // 28-byte header: 8 bytes of options
        o.splice(20..20, [1, 1, 1, 1, 1, 1, 1, 0]);
        let len = (o.len() as u16).to_be_bytes();
        o[2..4].copy_from_slice(&len);
        pkt::fix_ipv4_checksum(&mut o);
        o
    };
    let cases = [
        (eth4(&outer4(&inner4, 4)), eth4(&inner4)),
        (eth4(&with_options), eth4(&inner4)),
        (eth4(&outer4(&inner6, 41)), eth6(&inner6)),
        (eth6(&outer6(&inner6, 41)), eth6(&inner6)),
        (eth6(&outer6(&inner4, 4)), eth4(&inner4)),
        (
            tagged(&eth4(&outer4(&inner4, 4)), &[(0x8100, 5)]),
            tagged(&eth4(&inner4), &[(0x8100, 5)]),
        ),
        (
            tagged(&eth6(&outer6(&inner4, 4)), &[(0x88a8, 9), (0x8100, 5)]),
            tagged(&eth4(&inner4), &[(0x88a8, 9), (0x8100, 5)]),
        ),
    ];
    for (i, (frame, want)) in cases.iter().enumerate() {
        let (action, out) = t.test_run(frame).unwrap();
        assert_eq!(action, XdpAction::Pass);
        assert_eq!(
            &out, want,
            "case {i}: outer header removed, EtherType fixed, tags kept"
        );
    }
    let k = t.counters().unwrap();
    assert_eq!((k.decap_v4, k.decap_v6), (5, 2));

    // Untouched: not a VIP, not our address, fragmented, plain traffic.
    let not_vip = eth4(&outer4(&udp4("198.18.9.9", 1, "198.18.8.200", 53), 4));
    let not_local = eth4(&pkt::ipv4(v4("198.18.8.1"), v4("198.18.8.77"), 4, &inner4));
    let mut fragmented = outer4(&inner4, 4);
    fragmented[6] = 0x20; // MF
    pkt::fix_ipv4_checksum(&mut fragmented);
    let fragmented = eth4(&fragmented);
    let plain = eth4(&inner4);
    for f in [&not_vip, &not_local, &fragmented, &plain] {
        let (action, out) = t.test_run(f).unwrap();
        assert_eq!((action, &out), (XdpAction::Pass, f));
    }
    let k = t.counters().unwrap();
    assert_eq!(
        (k.not_vip, k.not_local, k.fragment, k.passed, k.error),
        (1, 1, 1, 1, 0)
    );
}

#[test]
fn socket_registration_decides_redirect_or_pass() {
    if skip_unless_root("bpf_classify (xsk registration)") {
        return;
    }
    let ns = Netns::new("reg");
    ns.ip(&["link", "add", "x0", "type", "veth", "peer", "name", "x1"]);
    ns.ip(&["link", "set", "x0", "up"]); // the peer stays down: no traffic arrives
    let mut steer = steering_on(&ns, &["x0"], XdpMode::Native).unwrap();
    let vip: IpAddr = "198.18.5.100".parse().unwrap();
    steer.add_vip(VipKey::udp(vip, 53)).unwrap();
    let frame = eth4(&udp4("198.18.9.9", 5000, "198.18.5.100", 53));
    let run = |s: &Steering| s.test_run(0, &frame).unwrap().0;

    assert_eq!(run(&steer), XdpAction::Pass);
    let sock = ns
        .run(|| XskSocket::open("x0", 0, &XskConfig::default()))
        .unwrap();
    steer.register_xsk(0, 0, &sock).unwrap();
    assert_eq!(run(&steer), XdpAction::Redirect);
    steer.unregister_xsk(0, 0).unwrap();
    steer.unregister_xsk(0, 0).unwrap(); // already gone: not an error
    assert_eq!(run(&steer), XdpAction::Pass);
    steer.register_xsk(0, 0, &sock).unwrap();
    assert_eq!(run(&steer), XdpAction::Redirect);
    let c = steer.counters().unwrap();
    assert_eq!((c.redirected, c.no_socket, c.vip), (2, 2, 4));
    // The kernel removes a closed socket from the XSKMAP. The last reference to its file can
    // outlive our close by a moment when another test forks meanwhile (the child holds a copy
    // of the fd until it execs), hence the wait.
    drop(sock);
    assert!(
        wait_for(Duration::from_secs(2), || (run(&steer) == XdpAction::Pass)
            .then_some(()))
        .is_some(),
        "closed socket still in the XSKMAP"
    );
}
