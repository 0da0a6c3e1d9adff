//! Protocol corners: SCTP (state machine, CRC32c after NAT), IPv4 options, IPv6 extension
//! headers, VLAN tags, sloppy and secure TCP, the FTP port-21 fallback.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use etherparse::{IpNumber, PacketBuilder};
use rvs_api::{ForwardMethod, Protocol, Request, ServiceKey, svc_flags};
use rvs_engine::{DropReason, Mac, Verdict};

use crate::util::*;

// ----- SCTP -----------------------------------------------------------------------------

/// CRC32c, bit by bit (independent of the engine's table-driven one).
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

const INIT: u8 = 1;
const INIT_ACK: u8 = 2;
const DATA: u8 = 0;
const ABORT: u8 = 6;
const SHUTDOWN: u8 = 7;
const SHUTDOWN_ACK: u8 = 8;
const COOKIE_ECHO: u8 = 10;
const COOKIE_ACK: u8 = 11;
const SHUTDOWN_COMPLETE: u8 = 14;

/// An SCTP packet with one chunk of type `chunk` (16 bytes of chunk body), valid CRC32c.
fn sctp(src_mac: Mac, dst_mac: Mac, src: SocketAddr, dst: SocketAddr, chunk: u8) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&src.port().to_be_bytes());
    p.extend_from_slice(&dst.port().to_be_bytes());
    p.extend_from_slice(&0x1122_3344u32.to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    p.extend_from_slice(&[chunk, 0, 0, 20]);
    p.extend_from_slice(&[0xab; 16]);
    let c = crc32c(&p);
    p[8..12].copy_from_slice(&c.to_le_bytes());
    let mut out = Vec::new();
    let b = PacketBuilder::ethernet2(src_mac, dst_mac);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => b
            .ipv4(s.octets(), d.octets(), 64)
            .write(&mut out, IpNumber(132), &p)
            .unwrap(),
        (IpAddr::V6(s), IpAddr::V6(d)) => b
            .ipv6(s.octets(), d.octets(), 64)
            .write(&mut out, IpNumber(132), &p)
            .unwrap(),
        _ => unreachable!(),
    }
    out
}

fn assert_sctp_crc(ip_payload: &[u8]) {
    let mut p = ip_payload.to_vec();
    let got = u32::from_le_bytes(p[8..12].try_into().unwrap());
    p[8..12].fill(0);
    assert_eq!(got, crc32c(&p), "SCTP CRC32c");
}

#[test]
fn sctp_nat_association() {
    for v6 in [false, true] {
        let mut lab = Lab::new();
        let key = ServiceKey::Addr {
            protocol: Protocol::Sctp,
            addr: vip(v6),
            port: 3868,
        };
        lab.add_service(key, "rr", |_| {});
        lab.add_dest(key, rip(v6, 0), 3869, ForwardMethod::Masq, 1);
        let c = SocketAddr::new(client(v6, 1), 5000);
        let v = SocketAddr::new(vip(v6), 3868);
        let r = SocketAddr::new(rip(v6, 0), 3869);
        let step = |lab: &mut Lab, inbound: bool, chunk: u8, state: &str, active: bool| {
            let (iface, f) = if inbound {
                (lab.ext, sctp(ROUTER_MAC, EXT_MAC, c, v, chunk))
            } else {
                (lab.int, sctp(rs_mac(0), INT_MAC, r, c, chunk))
            };
            let out = lab.run(iface, &f);
            assert!(
                matches!(out.verdict, Verdict::Transmit(_)),
                "chunk {chunk}: {:?}",
                out.verdict
            );
            let p = parse(&out.bytes);
            if inbound {
                assert_eq!((p.ip.dst(), p.ip.ports().1), (r.ip(), 3869));
            } else {
                assert_eq!((p.ip.src(), p.ip.ports().0), (v.ip(), 3868));
            }
            assert_sctp_crc(p.ip.payload());
            let conns = lab.flows();
            assert_eq!(conns[0].state, state, "after chunk {chunk}");
            assert_eq!(
                lab.counts(key, r.ip()),
                if active { (1, 0) } else { (0, 1) },
                "{state}"
            );
        };
        step(&mut lab, true, INIT, "INIT1", false);
        step(&mut lab, false, INIT_ACK, "C-SENT", false);
        step(&mut lab, true, COOKIE_ECHO, "C-REPLIED", false);
        step(&mut lab, false, COOKIE_ACK, "ESTABLISHED", true);
        assert_eq!(lab.flows()[0].expires_ms, 900_000);
        step(&mut lab, true, DATA, "ESTABLISHED", true);
        step(&mut lab, true, SHUTDOWN, "S-RECEIVED", false);
        step(&mut lab, false, SHUTDOWN_ACK, "S-ACK-SENT", false);
        step(&mut lab, true, SHUTDOWN_COMPLETE, "CLOSED", false);
    }
}

#[test]
fn sctp_only_init_opens_an_association() {
    let mut lab = Lab::new();
    let key = ServiceKey::Addr {
        protocol: Protocol::Sctp,
        addr: vip4(),
        port: 3868,
    };
    lab.add_service(key, "rr", |_| {});
    lab.add_dest(key, rip(false, 0), 3868, ForwardMethod::Route, 1);
    let c = SocketAddr::new(client(false, 1), 5000);
    let v = SocketAddr::new(vip4(), 3868);
    for chunk in [DATA, COOKIE_ECHO, ABORT] {
        let out = lab.run(lab.ext, &sctp(ROUTER_MAC, EXT_MAC, c, v, chunk));
        assert_eq!(
            out.verdict,
            Verdict::Drop(DropReason::NoConnection),
            "chunk {chunk}"
        );
    }
    lab.ok(Request::SetSysctl {
        name: "sloppy_sctp".into(),
        value: 1,
    });
    let out = lab.run(lab.ext, &sctp(ROUTER_MAC, EXT_MAC, c, v, DATA));
    assert_eq!(
        out.verdict,
        Verdict::Transmit(lab.int),
        "sloppy_sctp: any chunk but ABORT"
    );
    // DR leaves the packet (and so its CRC) alone.
    let p = parse(&out.bytes);
    assert_sctp_crc(p.ip.payload());
}

// ----- IP header variants ---------------------------------------------------------------

/// Inserts 4 bytes of IPv4 options (NOP NOP NOP EOL) into a frame.
fn with_ipv4_options(frame: &[u8]) -> Vec<u8> {
    let mut f = frame[..34].to_vec();
    f.extend_from_slice(&[1, 1, 1, 0]);
    f.extend_from_slice(&frame[34..]);
    f[14] = 0x46;
    let len = u16::from_be_bytes([f[16], f[17]]) + 4;
    f[16..18].copy_from_slice(&len.to_be_bytes());
    f[24..26].fill(0);
    let (h, _) = etherparse::Ipv4Header::from_slice(&f[14..]).unwrap();
    f[24..26].copy_from_slice(&h.calc_header_checksum().to_be_bytes());
    f
}

/// Inserts an 8-byte hop-by-hop options header (PadN) behind the IPv6 header.
fn with_hop_by_hop(frame: &[u8]) -> Vec<u8> {
    let next = frame[14 + 6];
    let mut f = frame[..54].to_vec();
    f.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
    f.extend_from_slice(&frame[54..]);
    f[14 + 6] = 0;
    let len = u16::from_be_bytes([f[18], f[19]]) + 8;
    f[18..20].copy_from_slice(&len.to_be_bytes());
    f
}

#[test]
fn nat_with_ipv4_options_and_ipv6_extension_headers() {
    for v6 in [false, true] {
        let mut lab = Lab::new();
        let key = tcp_key(vip(v6), 80);
        lab.add_service(key, "rr", |_| {});
        lab.add_dest(key, rip(v6, 0), 8080, ForwardMethod::Masq, 1);
        let c = SocketAddr::new(client(v6, 1), 5000);
        let plain = from_client(c, SocketAddr::new(vip(v6), 80), tcp_flags(TH_SYN), b"hello");
        let f = if v6 {
            with_hop_by_hop(&plain)
        } else {
            with_ipv4_options(&plain)
        };
        let out = lab.run(lab.ext, &f);
        assert_eq!(out.verdict, Verdict::Transmit(lab.int), "v6={v6}");
        assert_eq!(out.bytes.len(), f.len());
        // The options / extension header are kept as they were.
        if v6 {
            assert_eq!(&out.bytes[54..62], &f[54..62]);
            let mut h = etherparse::Ipv6Header::from_slice(&out.bytes[14..])
                .unwrap()
                .0;
            assert_eq!(
                h.destination,
                match rip(true, 0) {
                    IpAddr::V6(a) => a.octets(),
                    _ => unreachable!(),
                }
            );
            // Check the TCP checksum over the upper-layer packet.
            let tcp_bytes = &out.bytes[62..];
            let (tcp, data) = etherparse::TcpHeader::from_slice(tcp_bytes).unwrap();
            h.payload_length = tcp_bytes.len() as u16;
            assert_eq!(tcp.destination_port, 8080);
            assert_eq!(
                tcp.checksum,
                tcp.calc_checksum_ipv6(&h, data).unwrap(),
                "TCP checksum behind an extension header"
            );
        } else {
            let p = parse(&out.bytes);
            p.ip.assert_header_checksum();
            p.ip.assert_l4_checksum();
            assert_eq!((p.ip.dst(), p.ip.ports().1), (rip(false, 0), 8080));
            assert_eq!(&out.bytes[34..38], &[1, 1, 1, 0]);
        }
        // The reply with the same kind of header.
        let rs = SocketAddr::new(rip(v6, 0), 8080);
        let plain = from_server(0, rs, c, tcp_flags(TH_SYN | TH_ACK), b"");
        let f = if v6 {
            with_hop_by_hop(&plain)
        } else {
            with_ipv4_options(&plain)
        };
        let out = lab.run(lab.int, &f);
        assert_eq!(out.verdict, Verdict::Transmit(lab.ext));
        if !v6 {
            let p = parse(&out.bytes);
            p.ip.assert_header_checksum();
            p.ip.assert_l4_checksum();
            assert_eq!((p.ip.src(), p.ip.ports().0), (vip4(), 80));
        }
    }
}

#[test]
fn double_vlan_tagged_frames_are_forwarded_with_their_tags() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |_| {});
    lab.add_dest(key, rip(false, 0), 8080, ForwardMethod::Masq, 1);
    let syn = from_client(
        SocketAddr::new(client(false, 1), 5000),
        SocketAddr::new(vip4(), 80),
        tcp_flags(TH_SYN),
        b"",
    );
    let mut f = syn[..12].to_vec();
    f.extend_from_slice(&[0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x14]);
    f.extend_from_slice(&syn[12..]);
    let out = lab.run(lab.ext, &f);
    assert_eq!(out.verdict, Verdict::Transmit(lab.int));
    assert_eq!(&out.bytes[12..20], &f[12..20], "tags kept");
    let mut untagged = out.bytes[..12].to_vec();
    untagged.extend_from_slice(&out.bytes[20..]);
    let p = parse(&untagged);
    p.ip.assert_header_checksum();
    p.ip.assert_l4_checksum();
    assert_eq!(p.ip.dst(), rip(false, 0));
}

// ----- segments without a connection ---------------------------------------------------

/// A TCP segment of a service that matches no connection and cannot open one is answered
/// with a reset from the VIP, as the IPVS director's own stack (which holds the VIP) would:
/// `<SEQ=SEG.ACK><RST>` with ACK, `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><RST,ACK>` without; a reset is
/// never answered; nothing is created or forwarded. IPv4 and IPv6.
#[test]
fn segment_without_connection_gets_a_reset() {
    for v6 in [false, true] {
        let mut lab = Lab::new();
        let key = tcp_key(vip(v6), 80);
        lab.add_service(key, "rr", |_| {});
        lab.add_dest(key, rip(v6, 0), 80, ForwardMethod::Masq, 1);
        let c = SocketAddr::new(client(v6, 1), 5000);
        let v = SocketAddr::new(vip(v6), 80);
        let data = from_client(c, v, tcp_flags(TH_ACK | TH_PSH), b"GET / HTTP/1.0\r\n\r\n");
        assert_reset(&lab.run(lab.ext, &data), lab.ext, c, v, 1000, Some(2000), 0);
        // FIN without ACK: SEG.LEN counts the data and the FIN.
        let fin = from_client(c, v, tcp_flags(TH_FIN), b"bye");
        assert_reset(&lab.run(lab.ext, &fin), lab.ext, c, v, 1000, None, 4);
        let rst = from_client(c, v, tcp_flags(TH_RST), b"");
        assert_eq!(
            lab.run(lab.ext, &rst).verdict,
            Verdict::Drop(DropReason::NoConnection)
        );
        assert_eq!(lab.drops("no_connection"), 3, "v6={v6}");
        assert!(lab.conns().is_empty());
        assert_eq!(lab.service(key).stats.conns, 0);
    }
}

// ----- TCP options: sloppy, secure ------------------------------------------------------

#[test]
fn sloppy_tcp_opens_on_any_non_rst_segment() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |_| {});
    lab.add_dest(key, rip(false, 0), 80, ForwardMethod::Route, 1);
    let c = SocketAddr::new(client(false, 1), 5000);
    let v = SocketAddr::new(vip4(), 80);
    // Without sloppy_tcp a segment without SYN opens nothing and is answered with a reset.
    let out = lab.run(lab.ext, &from_client(c, v, tcp_flags(TH_ACK), b""));
    assert_reset(&out, lab.ext, c, v, 1000, Some(2000), 0);
    assert!(lab.flows().is_empty());
    lab.ok(Request::SetSysctl {
        name: "sloppy_tcp".into(),
        value: 1,
    });
    assert_eq!(
        lab.run(lab.ext, &from_client(c, v, tcp_flags(TH_ACK), b""))
            .verdict,
        Verdict::Transmit(lab.int)
    );
    assert_eq!(
        lab.flows()[0].state,
        "ESTABLISHED",
        "picked up mid-stream (after a failover)"
    );
    let c2 = SocketAddr::new(client(false, 2), 5000);
    assert_eq!(
        lab.run(lab.ext, &from_client(c2, v, tcp_flags(TH_RST), b""))
            .verdict,
        Verdict::Drop(DropReason::NoConnection)
    );
}

#[test]
fn secure_tcp_keeps_half_open_entries_short() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |_| {});
    lab.add_dest(key, rip(false, 0), 80, ForwardMethod::Route, 1);
    lab.ok(Request::SetSysctl {
        name: "secure_tcp".into(),
        value: 3,
    });
    let c = SocketAddr::new(client(false, 1), 5000);
    let v = SocketAddr::new(vip4(), 80);
    lab.run(lab.ext, &from_client(c, v, tcp_flags(TH_SYN), b""));
    // DR (input-only) SYN in the secure table: NONE → SYNACK.
    assert_eq!(lab.flows()[0].state, "SYNACK");
    lab.run(lab.ext, &from_client(c, v, tcp_flags(TH_ACK), b""));
    assert_eq!(lab.flows()[0].state, "ESTABLISHED");
}

// ----- FTP fallback ---------------------------------------------------------------------

#[test]
fn ftp_port21_fallback() {
    // Non-persistent port-21 service: data ports reach it only through the fallback and are
    // left to the local stack (dropped here, no ICMP).
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 21);
    lab.add_service(key, "rr", |_| {});
    lab.add_dest(key, rip(false, 0), 21, ForwardMethod::Route, 1);
    let c = SocketAddr::new(client(false, 1), 5000);
    let out = lab.run(
        lab.ext,
        &from_client(c, SocketAddr::new(vip4(), 2000), tcp_flags(TH_SYN), b""),
    );
    assert_eq!(out.verdict, Verdict::Drop(DropReason::NoConnection));
    // Privileged ports other than 20 are not FTP data: not ours at all.
    let out = lab.run(
        lab.ext,
        &from_client(c, SocketAddr::new(vip4(), 22), tcp_flags(TH_SYN), b""),
    );
    assert_eq!(out.verdict, Verdict::Pass);

    // Persistent port-21 service: control and data connections share a port-0 template.
    let mut lab = Lab::new();
    lab.add_service(key, "rr", |s| {
        s.flags = svc_flags::PERSISTENT;
        s.timeout = 300;
    });
    for i in 0..3 {
        lab.add_dest(key, rip(false, i), 21, ForwardMethod::Route, 1);
    }
    let ctl = lab.run(
        lab.ext,
        &from_client(c, SocketAddr::new(vip4(), 21), tcp_flags(TH_SYN), b""),
    );
    let data_c = SocketAddr::new(client(false, 1), 5001);
    let data = lab.run(
        lab.ext,
        &from_client(
            data_c,
            SocketAddr::new(vip4(), 40_000),
            tcp_flags(TH_SYN),
            b"",
        ),
    );
    assert_eq!(data.verdict, Verdict::Transmit(lab.int));
    assert_eq!(&ctl.bytes[0..6], &data.bytes[0..6], "same real server");
    let t = lab.templates();
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].vport, t[0].dport), (0, 0));
    // An FTP data connection from source port 20 is never scheduled.
    let active = SocketAddr::new(client(false, 2), 20);
    let out = lab.run(
        lab.ext,
        &from_client(active, SocketAddr::new(vip4(), 21), tcp_flags(TH_SYN), b""),
    );
    assert_eq!(out.verdict, Verdict::Drop(DropReason::NoConnection));
}

// ----- sysctl corners -------------------------------------------------------------------

#[test]
fn conn_reuse_mode_bit_2_reschedules_dr_fin_wait() {
    for (mode, rescheduled) in [(1, false), (3, true)] {
        let mut lab = Lab::new();
        let key = tcp_key(vip4(), 80);
        lab.add_service(key, "rr", |_| {});
        for i in 0..2 {
            lab.add_dest(key, rip(false, i), 80, ForwardMethod::Route, 1);
        }
        lab.ok(Request::SetSysctl {
            name: "conn_reuse_mode".into(),
            value: mode,
        });
        let c = SocketAddr::new(client(false, 1), 5000);
        let v = SocketAddr::new(vip4(), 80);
        let first = lab
            .run(lab.ext, &from_client(c, v, tcp_flags(TH_SYN), b""))
            .bytes[0..6]
            .to_vec();
        lab.run(lab.ext, &from_client(c, v, tcp_flags(TH_ACK), b""));
        lab.run(lab.ext, &from_client(c, v, tcp_flags(TH_FIN | TH_ACK), b""));
        assert_eq!(lab.flows()[0].state, "FIN_WAIT");
        let again = lab
            .run(lab.ext, &from_client(c, v, tcp_flags(TH_SYN), b""))
            .bytes[0..6]
            .to_vec();
        assert_eq!(again != first, rescheduled, "mode {mode}");
        assert_eq!(
            lab.service(key).stats.conns,
            if rescheduled { 2 } else { 1 }
        );
    }
}

#[test]
fn expire_nodest_conn_reschedules_a_syn_to_a_quiescent_server() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |_| {});
    for i in 0..2 {
        lab.add_dest(key, rip(false, i), 80, ForwardMethod::Route, 1);
    }
    let c = SocketAddr::new(client(false, 1), 5000);
    let v = SocketAddr::new(vip4(), 80);
    let first = lab
        .run(lab.ext, &from_client(c, v, tcp_flags(TH_SYN), b""))
        .bytes[0..6]
        .to_vec();
    let idx = (0..2).find(|&i| rs_mac(i)[..] == first[..]).unwrap();
    let mut d = rvs_api::DestSpec::new(rip(false, idx), 80);
    d.weight = 0;
    lab.ok(Request::EditDest {
        service: key,
        dest: d,
    });
    // Default: the retransmitted SYN stays on the quiescent server.
    assert_eq!(
        lab.run(lab.ext, &from_client(c, v, tcp_flags(TH_SYN), b""))
            .bytes[0..6],
        first[..]
    );
    lab.ok(Request::SetSysctl {
        name: "expire_nodest_conn".into(),
        value: 1,
    });
    let again = lab.run(lab.ext, &from_client(c, v, tcp_flags(TH_SYN), b""));
    assert_ne!(
        again.bytes[0..6],
        first[..],
        "rescheduled away from the weight-0 server"
    );
    assert_eq!(lab.flows().len(), 1);
}

#[test]
fn rate_estimator_through_the_engine() {
    // Spec §11 item 59: 200 new connections per 2-s window give CPS 25, 44, 58, 68 …
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |_| {});
    lab.add_dest(key, rip(false, 0), 80, ForwardMethod::Route, 1);
    let v = SocketAddr::new(vip4(), 80);
    let mut cps = Vec::new();
    let mut n = 0;
    for _ in 0..4 {
        for _ in 0..200 {
            let c = SocketAddr::new(client(false, n), 5000);
            lab.run(lab.ext, &from_client(c, v, tcp_flags(TH_SYN), b""));
            n += 1;
        }
        lab.advance(Duration::from_secs(2));
        cps.push(lab.service(key).rates.cps);
    }
    assert_eq!(cps, [25, 44, 58, 68]);
    assert_eq!(lab.engine.global_stats().1.cps, 68);
}

#[test]
fn poll_timeout_advances() {
    let mut lab = Lab::new();
    let t1 = lab.engine.poll_timeout();
    assert!(t1 > lab.t0 && t1 <= lab.t0 + Duration::from_secs(2));
    lab.now = t1;
    lab.engine.handle_timeout(t1);
    assert!(lab.engine.poll_timeout() > t1);
}

#[test]
fn nat_icmp_error_from_the_client_side_reaches_the_real_server() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |_| {});
    lab.add_dest(key, rip(false, 0), 8080, ForwardMethod::Masq, 1);
    let c = SocketAddr::new(client(false, 1), 5000);
    lab.run(
        lab.ext,
        &from_client(c, SocketAddr::new(vip4(), 80), tcp_flags(TH_SYN), b""),
    );
    // The reply as the client side saw it (VIP:80 → client) was too big for a router.
    let reply = build(
        EXT_MAC,
        ROUTER_MAC,
        SocketAddr::new(vip4(), 80),
        c,
        tcp_flags(TH_ACK),
        &[0; 200],
        IpOpts::default(),
    );
    let err = icmp_error(
        (ROUTER_MAC, EXT_MAC),
        ip("198.19.255.254"),
        vip4(),
        3,
        4,
        [0, 0, 5, 0],
        &reply[14..14 + 28],
    );
    let out = lab.run(lab.ext, &err);
    assert_eq!(out.verdict, Verdict::Transmit(lab.int));
    let p = parse(&out.bytes);
    assert_eq!(&out.bytes[0..6], &rs_mac(0));
    assert_eq!(
        (p.ip.src(), p.ip.dst()),
        (ip("198.19.255.254"), rip(false, 0))
    );
    p.ip.assert_header_checksum();
    p.ip.assert_l4_checksum();
    let icmp = p.ip.payload();
    assert_eq!((icmp[0], icmp[1], &icmp[4..8]), (3, 4, &[0u8, 0, 5, 0][..]));
    let quoted = parse_ip(&icmp[8..]);
    assert_eq!(
        (quoted.src(), quoted.dst()),
        (rip(false, 0), c.ip()),
        "quoted as the real server sent it"
    );
    assert_eq!(quoted.ports(), (8080, c.port()));
    quoted.assert_header_checksum();
}
