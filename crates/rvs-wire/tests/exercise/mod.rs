//! Runs one frame through every parser and builder of rvs-wire and checks the invariants
//! that must hold for any input. Shared by the stable tests (`tests/tests.rs`) and the fuzz
//! target (`fuzz/fuzz_targets/parse_frame.rs` includes this file by path), so the corpus
//! and the fuzzer exercise the same code.
//!
//! Invariants: nothing panics; whatever `PacketMeta::parse` accepts is self-consistent;
//! every reply a builder produces parses again and carries valid checksums; encapsulation
//! followed by decapsulation gives back the original frame.

use std::net::IpAddr;

use rvs_wire::{
    ArpPacket, ArpRepr, EtherType, EthernetFrame, EthernetRepr, Icmpv4Packet, Icmpv4Repr,
    Icmpv6Message, Icmpv6Packet, Icmpv6Repr, IpProtocol, IpVersion, Ipv4Packet, Ipv4Repr,
    Ipv6Packet, Ipv6Repr, PacketBuf, PacketMeta, TcpPacket, TcpRepr, UdpPacket, UdpRepr,
    VlanHeader, VlanRepr, ipv6_upper_layer, l3_ethertype, reply, tunnel,
};

/// What a run covered, so callers can assert the corpus reaches the interesting paths.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Coverage {
    /// `PacketMeta::parse` accepted the frame.
    pub(crate) meta_ok: bool,
    /// Some reply builder succeeded.
    pub(crate) replied: bool,
    /// IPv4 and IPv6 encapsulation round trips that ran.
    pub(crate) tunnelled: usize,
}

const HEADROOM: usize = 256;

/// A reply builder with the arguments the exercise passes to all of them.
type Builder = fn(
    &mut PacketBuf<'_>,
    rvs_wire::EthernetAddress,
    std::net::Ipv4Addr,
    std::net::Ipv6Addr,
) -> rvs_wire::Result<()>;
const TAILROOM: usize = 64;

/// Exercises everything on `data` (an Ethernet frame, or any bytes).
pub(crate) fn frame(data: &[u8]) -> Coverage {
    let mut cov = Coverage::default();
    let meta = PacketMeta::parse(data);
    if let Ok(m) = &meta {
        cov.meta_ok = true;
        assert!(m.l3_offset + m.ip_len <= data.len(), "{m:?}");
        assert!(m.l4_offset >= m.l3_offset && m.l4_offset <= m.l3_offset + m.ip_len);
        assert!(matches!(
            m.ethertype,
            EtherType::Arp | EtherType::Ipv4 | EtherType::Ipv6
        ));
        let _ = m.l4_len();
    } else if let Err(e) = &meta {
        assert!(!e.as_str().is_empty());
    }

    if let Ok(eth) = EthernetFrame::new_checked(data) {
        let _ = (
            eth.dst_addr(),
            eth.src_addr(),
            eth.ethertype(),
            eth.payload().len(),
        );
        let _ = EthernetRepr::parse(&eth);
        if eth.ethertype().is_vlan()
            && let Ok(tag) = VlanHeader::new_checked(eth.payload())
        {
            let _ = (
                tag.tci(),
                tag.priority(),
                tag.drop_eligible(),
                tag.vlan_id(),
            );
            let _ = (tag.ethertype(), tag.payload().len(), VlanRepr::parse(&tag));
        }
    }
    let l3 = match l3_ethertype(data) {
        Ok((_, l3)) => l3,
        Err(_) => 14,
    };
    if let Some(bytes) = data.get(l3..) {
        views(bytes);
    }
    builders(data, &mut cov);
    cov
}

/// Recomputes the IPv4 header checksum and the TCP/UDP/ICMP checksums of `data` where the
/// headers allow, so that mutated frames get past checksum checks and reach the code behind
/// them (what smoltcp does with `cfg(fuzzing)`, without touching the library).
pub(crate) fn repair_checksums(data: &mut [u8]) {
    let l3 = match l3_ethertype(data) {
        Ok((_, l3)) => l3,
        Err(_) => return,
    };
    let ip = &mut data[l3..];
    match ip.first().map(|b| b >> 4) {
        Some(4) => {
            let Ok(mut p) = Ipv4Packet::new_checked(&mut *ip) else {
                return;
            };
            p.fill_checksum();
            let (src, dst) = (IpAddr::V4(p.src_addr()), IpAddr::V4(p.dst_addr()));
            let proto = p.next_header();
            if p.fragment() != rvs_wire::Fragment::None {
                return;
            }
            fix_upper(p.payload_mut(), proto, &src, &dst);
        }
        Some(6) => {
            let Ok(p) = Ipv6Packet::new_checked(&*ip) else {
                return;
            };
            let Ok(l4) = ipv6_upper_layer(&p) else { return };
            if l4.fragment.is_some() {
                return;
            }
            let (src, dst, end) = (p.src_addr(), p.dst_addr(), p.total_len());
            fix_upper(
                &mut ip[l4.offset..end],
                l4.next_header,
                &IpAddr::V6(src),
                &IpAddr::V6(dst),
            );
        }
        _ => {}
    }
}

fn fix_upper(bytes: &mut [u8], proto: IpProtocol, src: &IpAddr, dst: &IpAddr) {
    match proto {
        IpProtocol::Tcp => {
            if let Ok(mut t) = TcpPacket::new_checked(bytes) {
                t.fill_checksum(src, dst);
            }
        }
        IpProtocol::Udp => {
            if let Ok(mut u) = UdpPacket::new_checked(bytes) {
                u.fill_checksum(src, dst);
            }
        }
        IpProtocol::Icmp => {
            if let Ok(mut i) = Icmpv4Packet::new_checked(bytes) {
                i.fill_checksum();
            }
        }
        IpProtocol::Icmpv6 => {
            if let (Ok(mut i), IpAddr::V6(s), IpAddr::V6(d)) =
                (Icmpv6Packet::new_checked(bytes), src, dst)
            {
                i.fill_checksum(s, d);
            }
        }
        _ => {}
    }
}

/// Every view and `Repr` over the bytes at the network layer, whatever the EtherType says.
fn views(l3: &[u8]) {
    if let Ok(arp) = ArpPacket::new_checked(l3) {
        let _ = (arp.hardware_type(), arp.protocol_type(), arp.hardware_len());
        let _ = (
            arp.protocol_len(),
            arp.operation(),
            arp.source_hardware_addr(),
        );
        let _ = (arp.source_protocol_addr(), arp.target_hardware_addr());
        let _ = (arp.target_protocol_addr(), ArpRepr::parse(&arp));
    }
    if let Ok(ip) = Ipv4Packet::new_checked(l3) {
        let _ = (
            ip.version(),
            ip.header_len(),
            ip.dscp_ecn(),
            ip.dscp(),
            ip.ecn(),
        );
        let _ = (ip.total_len(), ip.ident(), ip.dont_frag(), ip.more_frags());
        let _ = (ip.frag_offset(), ip.fragment(), ip.ttl(), ip.hop_limit());
        let _ = (
            ip.next_header(),
            ip.checksum(),
            ip.verify_checksum(),
            ip.options().len(),
        );
        let _ = Ipv4Repr::parse(&ip);
        let (src, dst) = (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()));
        let payload = ip.payload();
        transport(payload, &src, &dst);
        if let Ok(icmp) = Icmpv4Packet::new_checked(payload) {
            let _ = (
                icmp.msg_type(),
                icmp.msg_code(),
                icmp.checksum(),
                icmp.echo_ident(),
            );
            let _ = (icmp.echo_seq_no(), icmp.next_hop_mtu(), icmp.data().len());
            let _ = (
                icmp.verify_checksum(),
                icmp.invoking_packet(),
                icmp.parse_invoking(),
            );
            let _ = Icmpv4Repr::parse(&icmp);
        }
    }
    if let Ok(ip) = Ipv6Packet::new_checked(l3) {
        let _ = (
            ip.version(),
            ip.traffic_class(),
            ip.dscp(),
            ip.ecn(),
            ip.flow_label(),
        );
        let _ = (
            ip.payload_len(),
            ip.total_len(),
            ip.next_header(),
            ip.hop_limit(),
        );
        let _ = (ip.payload().len(), Ipv6Repr::parse(&ip));
        let (s6, d6) = (ip.src_addr(), ip.dst_addr());
        if let Ok(l4) = ipv6_upper_layer(&ip) {
            assert!(l4.offset <= ip.total_len());
            let upper = &l3[l4.offset..ip.total_len()];
            transport(upper, &IpAddr::V6(s6), &IpAddr::V6(d6));
            if let Ok(icmp) = Icmpv6Packet::new_checked(upper) {
                let _ = (
                    icmp.msg_type(),
                    icmp.msg_code(),
                    icmp.checksum(),
                    icmp.echo_ident(),
                );
                let _ = (
                    icmp.echo_seq_no(),
                    icmp.pkt_too_big_mtu(),
                    icmp.param_problem_ptr(),
                );
                let _ = (
                    icmp.neighbor_flags(),
                    icmp.data().len(),
                    icmp.ndisc_options().len(),
                );
                let _ = icmp.ndisc_options_iter().count();
                if matches!(
                    icmp.msg_type(),
                    Icmpv6Message::NeighborSolicit
                        | Icmpv6Message::NeighborAdvert
                        | Icmpv6Message::Redirect
                ) {
                    let _ = icmp.target_addr();
                }
                let _ = (icmp.verify_checksum(&s6, &d6), icmp.parse_invoking());
                let _ = Icmpv6Repr::parse(&s6, &d6, &icmp);
            }
        }
    }
}

fn transport(bytes: &[u8], src: &IpAddr, dst: &IpAddr) {
    if let Ok(tcp) = TcpPacket::new_checked(bytes) {
        let _ = (
            tcp.src_port(),
            tcp.dst_port(),
            tcp.seq_number(),
            tcp.ack_number(),
        );
        let _ = (
            tcp.header_len(),
            tcp.flags(),
            tcp.fin(),
            tcp.syn(),
            tcp.rst(),
            tcp.psh(),
        );
        let _ = (tcp.ack(), tcp.urg(), tcp.ece(), tcp.cwr(), tcp.window_len());
        let _ = (
            tcp.checksum(),
            tcp.urgent_at(),
            tcp.options().len(),
            tcp.payload().len(),
        );
        let _ = (tcp.segment_len(), tcp.options_iter().count());
        let _ = (
            tcp.verify_checksum(src, dst),
            TcpRepr::parse(&tcp, src, dst),
        );
    }
    if let Ok(udp) = UdpPacket::new_checked(bytes) {
        let _ = (
            udp.src_port(),
            udp.dst_port(),
            udp.len(),
            udp.is_empty(),
            udp.checksum(),
        );
        let _ = (udp.payload().len(), udp.verify_checksum(src, dst));
        let _ = UdpRepr::parse(&udp, src, dst);
    }
}

/// A receive buffer laid out like an AF_XDP frame.
fn rx_buffer(data: &[u8]) -> Vec<u8> {
    let mut raw = vec![0u8; HEADROOM + data.len() + TAILROOM];
    raw[HEADROOM..HEADROOM + data.len()].copy_from_slice(data);
    raw
}

fn with_buf<R>(data: &[u8], f: impl FnOnce(&mut PacketBuf<'_>) -> R) -> (R, Vec<u8>) {
    let mut raw = rx_buffer(data);
    let mut buf = PacketBuf::new(&mut raw, HEADROOM, data.len()).expect("fits");
    let r = f(&mut buf);
    let out = buf.data().to_vec();
    (r, out)
}

/// Checks a reply: it parses, and the checksums of its IP header and of its ICMP message or
/// TCP segment verify.
fn check_reply(out: &[u8], what: &str) {
    let m = PacketMeta::parse(out)
        .unwrap_or_else(|e| panic!("{what} produced an unparsable frame: {e}"));
    let ip = &out[m.l3_offset..m.l3_offset + m.ip_len];
    if m.protocol == IpProtocol::Tcp {
        let (src, dst) = (m.src_addr, m.dst_addr);
        let tcp = rvs_wire::TcpPacket::new_checked(&out[m.l4_offset..m.l3_offset + m.ip_len])
            .expect("tcp");
        assert!(tcp.verify_checksum(&src, &dst), "{what}: TCP checksum");
    }
    match m.ip_version {
        Some(IpVersion::Ipv4) => {
            let p = Ipv4Packet::new_checked(ip).expect("ipv4");
            assert!(p.verify_checksum(), "{what}: IPv4 checksum");
            if m.protocol == IpProtocol::Icmp {
                assert!(
                    Icmpv4Packet::new_checked(p.payload())
                        .expect("icmp")
                        .verify_checksum(),
                    "{what}: ICMP checksum"
                );
            }
        }
        Some(IpVersion::Ipv6) if m.protocol == IpProtocol::Tcp => {}
        Some(IpVersion::Ipv6) => {
            let p = Ipv6Packet::new_checked(ip).expect("ipv6");
            let l4 = ipv6_upper_layer(&p).expect("walk");
            let icmp = Icmpv6Packet::new_checked(&ip[l4.offset..]).expect("icmpv6");
            assert!(
                icmp.verify_checksum(&p.src_addr(), &p.dst_addr()),
                "{what}: ICMPv6 checksum"
            );
        }
        None => assert_eq!(m.ethertype, EtherType::Arp),
    }
}

fn builders(data: &[u8], cov: &mut Coverage) {
    let mac = rvs_wire::EthernetAddress([2, 0, 0, 0, 0, 1]);
    let v4 = std::net::Ipv4Addr::new(198, 18, 0, 2);
    let v6: std::net::Ipv6Addr = "2001:db8::2".parse().expect("addr");

    let runs: [(&str, Builder); 9] = [
        ("arp_reply", |b, mac, _, _| reply::arp_reply(b, mac)),
        ("neighbor_advert", |b, mac, _, _| {
            reply::neighbor_advert(b, mac)
        }),
        ("icmpv4_echo_reply", |b, _, _, _| {
            reply::icmpv4_echo_reply(b)
        }),
        ("icmpv6_echo_reply", |b, _, _, _| {
            reply::icmpv6_echo_reply(b)
        }),
        ("icmpv4_error", |b, _, v4, _| {
            reply::icmpv4_error(b, v4, 7, reply::Icmpv4Error::FragRequired { mtu: 1400 })
        }),
        ("icmpv4_error", |b, _, v4, _| {
            reply::icmpv4_error(
                b,
                v4,
                7,
                reply::Icmpv4Error::TimeExceeded(rvs_wire::Icmpv4TimeExceeded::TtlExpired),
            )
        }),
        ("icmpv6_error", |b, _, _, v6| {
            reply::icmpv6_error(b, v6, reply::Icmpv6Error::PktTooBig { mtu: 1280 })
        }),
        ("icmpv6_error", |b, _, _, v6| {
            reply::icmpv6_error(
                b,
                v6,
                reply::Icmpv6Error::DstUnreachable(rvs_wire::Icmpv6DstUnreachable::PortUnreachable),
            )
        }),
        ("tcp_reset", |b, _, _, _| reply::tcp_reset(b)),
    ];
    for (what, run) in runs {
        let (r, out) = with_buf(data, |b| run(b, mac, v4, v6));
        match r {
            Ok(()) => {
                cov.replied = true;
                check_reply(&out, what);
                if what == "icmpv4_error" {
                    assert!(
                        PacketMeta::parse(&out).expect("parsed").ip_len <= reply::ICMPV4_ERROR_MAX
                    );
                }
                if what == "tcp_reset" {
                    let m = PacketMeta::parse(&out).expect("parsed");
                    assert!(
                        m.ip_len == 40 || m.ip_len == 60,
                        "reset of {} bytes",
                        m.ip_len
                    );
                }
                if what == "icmpv6_error" {
                    assert!(
                        PacketMeta::parse(&out).expect("parsed").ip_len <= reply::ICMPV6_ERROR_MAX
                    );
                }
            }
            // A builder that refuses must leave the frame untouched.
            Err(_) => assert_eq!(out, data, "{what} changed a frame it rejected"),
        }
    }

    let Ok((ethertype, l3)) = l3_ethertype(data) else {
        return;
    };
    let tunnels: [fn(&mut PacketBuf<'_>, usize) -> rvs_wire::Result<()>; 2] = [
        |b, l3| {
            let t = tunnel::Ipv4Tunnel {
                src_addr: std::net::Ipv4Addr::new(198, 18, 0, 9),
                dst_addr: std::net::Ipv4Addr::new(198, 18, 1, 10),
                ident: 1,
                copy_df: true,
            };
            tunnel::encap_ipv4(b, l3, &t)
        },
        |b, l3| {
            let t = tunnel::Ipv6Tunnel {
                src_addr: "2001:db8::9".parse().expect("addr"),
                dst_addr: "2001:db8:1::10".parse().expect("addr"),
                flow_label: 0,
            };
            tunnel::encap_ipv6(b, l3, &t)
        },
    ];
    for encap in tunnels {
        let mut raw = rx_buffer(data);
        let mut buf = PacketBuf::new(&mut raw, HEADROOM, data.len()).expect("fits");
        match encap(&mut buf, l3) {
            Ok(()) => {
                let inner_len = buf.len()
                    - l3
                    - match buf.data()[l3] >> 4 {
                        4 => 20,
                        _ => 40,
                    };
                PacketMeta::parse(buf.data()).expect("encapsulated frame parses");
                let version = tunnel::decap(&mut buf, l3).expect("decap of our own encap");
                let want = match version {
                    IpVersion::Ipv4 => EtherType::Ipv4,
                    IpVersion::Ipv6 => EtherType::Ipv6,
                };
                assert_eq!(buf.len(), l3 + inner_len);
                assert_eq!(buf.head(), HEADROOM);
                if want == ethertype {
                    assert_eq!(
                        buf.data(),
                        &data[..l3 + inner_len],
                        "encap/decap round trip"
                    );
                }
                cov.tunnelled += 1;
            }
            Err(_) => assert_eq!(buf.data(), data, "failed encap changed the frame"),
        }
        // Decapsulating arbitrary input must not panic, and must not change it on error.
        let mut raw = rx_buffer(data);
        let mut buf = PacketBuf::new(&mut raw, HEADROOM, data.len()).expect("fits");
        if tunnel::decap(&mut buf, l3).is_err() {
            assert_eq!(buf.data(), data);
        }
    }
}
