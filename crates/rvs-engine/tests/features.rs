//! IPVS features beyond the plain packet path: thresholds, quiescing and the sysctls that
//! govern it, port reuse, one-packet scheduling, fwmark and port-0 services, and what the
//! director answers itself (ICMP errors, ARP/ND, echo) or relays (ICMP errors).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use rvs_api::{DestSpec, Family, ForwardMethod, Netmask, Request, ServiceKey, svc_flags};
use rvs_engine::{DropReason, Interface, Verdict};

use crate::util::*;

const SEC: Duration = Duration::from_secs(1);

fn vip_sock(v6: bool, port: u16) -> SocketAddr {
    SocketAddr::new(vip(v6), port)
}

fn cl(n: u32, port: u16) -> SocketAddr {
    SocketAddr::new(client(false, n), port)
}

/// The real server a forwarded frame went to (by destination MAC).
fn rs_of(lab: &Lab, out: &Out) -> Option<u16> {
    match out.verdict {
        Verdict::Transmit(i) if i == lab.int => {
            (0..RS_COUNT).find(|&i| out.bytes[0..6] == rs_mac(i))
        }
        _ => None,
    }
}

fn tcp(lab: &mut Lab, from: SocketAddr, flags: u8) -> Out {
    let f = from_client(from, vip_sock(from.is_ipv6(), 80), tcp_flags(flags), b"");
    lab.run(lab.ext, &f)
}

/// Sends a segment from `from` to VIP4:80 and returns the real server it went to.
fn to(lab: &mut Lab, from: SocketAddr, flags: u8) -> Option<u16> {
    let out = tcp(lab, from, flags);
    rs_of(lab, &out)
}

fn dest_spec(addr: IpAddr, port: u16, method: ForwardMethod, weight: u32) -> DestSpec {
    let mut d = DestSpec::new(addr, port);
    d.fwd_method = method;
    d.weight = weight;
    d
}

// ----- thresholds (spec §4.8, §11 item 57) ---------------------------------------------

/// `fo` prefers server 0 (weight 2) over server 1 (weight 1) unless server 0 is overloaded.
fn threshold_lab(u: u32, l: u32) -> (Lab, ServiceKey) {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "fo", |_| {});
    let mut d0 = dest_spec(rip(false, 0), 80, ForwardMethod::Route, 2);
    d0.u_threshold = u;
    d0.l_threshold = l;
    lab.ok(Request::AddDest {
        service: key,
        dest: d0,
    });
    lab.add_dest(key, rip(false, 1), 80, ForwardMethod::Route, 1);
    (lab, key)
}

/// Ten SYNs one second apart: all on server 0, which is then overloaded.
fn fill_to_threshold(lab: &mut Lab) {
    for n in 0..10 {
        assert_eq!(to(lab, cl(n, 1000), TH_SYN), Some(0), "SYN {n}");
        lab.advance(SEC);
    }
    // t = 10: total 10 ≥ 10 → overloaded; the next SYN overflows to server 1.
    assert_eq!(to(lab, cl(100, 1000), TH_SYN), Some(1));
}

#[test]
fn upper_and_lower_threshold() {
    let (mut lab, key) = threshold_lab(10, 5);
    fill_to_threshold(&mut lab);
    // The SYN_RECV entries of server 0 expire at t = 60..69. At t = 64.5 five remain:
    // not below the lower threshold yet.
    lab.advance(Duration::from_millis(54_500));
    assert_eq!(lab.counts(key, rip(false, 0)), (5, 0));
    assert_eq!(to(&mut lab, cl(101, 1000), TH_SYN), Some(1));
    // t = 65.5: four remain (< 5): OVERLOAD cleared, server 0 takes connections again.
    lab.advance(SEC);
    assert_eq!(lab.counts(key, rip(false, 0)), (4, 0));
    assert_eq!(to(&mut lab, cl(102, 1000), TH_SYN), Some(0));
}

#[test]
fn upper_threshold_alone_resumes_below_75_percent() {
    let (mut lab, key) = threshold_lab(10, 0);
    fill_to_threshold(&mut lab);
    // t = 61.5: 8 left, 8 × 4 = 32 ≥ 30: still overloaded.
    lab.advance(Duration::from_millis(51_500));
    assert_eq!(lab.counts(key, rip(false, 0)), (8, 0));
    assert_eq!(to(&mut lab, cl(101, 1000), TH_SYN), Some(1));
    // t = 62.5: 7 left, 28 < 30: resumes.
    lab.advance(SEC);
    assert_eq!(to(&mut lab, cl(102, 1000), TH_SYN), Some(0));
}

#[test]
fn raising_the_upper_threshold_clears_overload() {
    let (mut lab, key) = threshold_lab(10, 0);
    fill_to_threshold(&mut lab);
    let mut d0 = dest_spec(rip(false, 0), 80, ForwardMethod::Route, 2);
    d0.u_threshold = 20;
    lab.ok(Request::EditDest {
        service: key,
        dest: d0,
    });
    assert_eq!(to(&mut lab, cl(101, 1000), TH_SYN), Some(0));
}

#[test]
fn overload_does_not_stop_existing_connections_or_templates() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |s| {
        s.flags = svc_flags::PERSISTENT;
        s.timeout = 300;
    });
    let mut d0 = dest_spec(rip(false, 0), 80, ForwardMethod::Route, 1);
    d0.u_threshold = 2;
    lab.ok(Request::AddDest {
        service: key,
        dest: d0,
    });
    lab.add_dest(key, rip(false, 1), 80, ForwardMethod::Route, 1);
    // Client 0 lands on server 1 (newest first), client 1 on server 0.
    assert_eq!(to(&mut lab, cl(0, 1000), TH_SYN), Some(1));
    assert_eq!(to(&mut lab, cl(1, 1000), TH_SYN), Some(0));
    // A second connection of client 1 goes through its template: server 0 reaches 2 → overloaded.
    assert_eq!(to(&mut lab, cl(1, 1001), TH_SYN), Some(0));
    // Templates ignore OVERLOAD: a third one still goes there.
    assert_eq!(to(&mut lab, cl(1, 1002), TH_SYN), Some(0));
    // A new client is scheduled: server 0 is skipped.
    assert_eq!(to(&mut lab, cl(2, 1000), TH_SYN), Some(1));
    assert_eq!(to(&mut lab, cl(3, 1000), TH_SYN), Some(1));
    // Existing connections keep flowing.
    assert_eq!(to(&mut lab, cl(1, 1000), TH_ACK), Some(0));
}

// ----- quiescing and deleted real servers (spec §4.6) -----------------------------------

fn persistent_lab() -> (Lab, ServiceKey) {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |s| {
        s.flags = svc_flags::PERSISTENT;
        s.timeout = 360;
    });
    for i in 0..2 {
        lab.add_dest(key, rip(false, i), 80, ForwardMethod::Route, 1);
    }
    (lab, key)
}

#[test]
fn quiescent_server_keeps_persistent_clients_unless_expire_quiescent_template() {
    let (mut lab, key) = persistent_lab();
    let first = to(&mut lab, cl(0, 1000), TH_SYN).unwrap();
    lab.ok(Request::EditDest {
        service: key,
        dest: dest_spec(rip(false, first), 80, ForwardMethod::Route, 0),
    });
    // Default: the template still sends this client's new connections to the quiescent server.
    assert_eq!(to(&mut lab, cl(0, 1001), TH_SYN), Some(first));
    // A new client is not scheduled there.
    assert_ne!(to(&mut lab, cl(1, 1000), TH_SYN), Some(first));
    lab.ok(Request::SetSysctl {
        name: "expire_quiescent_template".into(),
        value: 1,
    });
    let other = to(&mut lab, cl(0, 1002), TH_SYN).unwrap();
    assert_ne!(
        other, first,
        "template of a quiescent server must be invalidated"
    );
    // The client's new template points at the other server; the old one is no longer found.
    let live: Vec<_> = lab
        .templates()
        .into_iter()
        .filter(|t| t.caddr == client(false, 0) && t.vport == 80)
        .collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].daddr, rip(false, other));
    // Existing connections to the quiescent server continue.
    assert_eq!(to(&mut lab, cl(0, 1000), TH_ACK), Some(first));
}

fn two_dr_servers(sched: &str) -> (Lab, ServiceKey) {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, sched, |_| {});
    for i in 0..2 {
        lab.add_dest(key, rip(false, i), 80, ForwardMethod::Route, 1);
    }
    (lab, key)
}

#[test]
fn deleted_server_drops_its_connections_by_default() {
    let (mut lab, key) = two_dr_servers("rr");
    // Client 0 → server 1 (newest first), client 1 → server 0.
    assert_eq!(to(&mut lab, cl(0, 1000), TH_SYN), Some(1));
    assert_eq!(to(&mut lab, cl(1, 1000), TH_SYN), Some(0));
    tcp(&mut lab, cl(1, 1000), TH_ACK);
    lab.ok(Request::DelDest {
        service: key,
        addr: rip(false, 0),
        port: 80,
    });
    let before = lab.drops("dest_unavailable");
    let out = tcp(&mut lab, cl(1, 1000), TH_PSH | TH_ACK);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::DestUnavailable));
    assert_eq!(lab.drops("dest_unavailable"), before + 1);
    // The entry stays until it expires.
    assert!(lab.flows().iter().any(|c| c.daddr == rip(false, 0)));
    // Even a retransmitted SYN of that connection is dropped.
    assert_eq!(
        tcp(&mut lab, cl(1, 1000), TH_SYN).verdict,
        Verdict::Drop(DropReason::DestUnavailable)
    );
    // New clients only reach the remaining server.
    for n in 2..6 {
        assert_eq!(to(&mut lab, cl(n, 1000), TH_SYN), Some(1));
    }
    // The unaffected connection continues.
    assert_eq!(to(&mut lab, cl(0, 1000), TH_ACK), Some(1));
    // After its expiry (ESTABLISHED: 900 s) the trashed server is freed.
    lab.advance(Duration::from_secs(901));
    assert!(lab.flows().iter().all(|c| c.daddr != rip(false, 0)));
}

#[test]
fn expire_nodest_conn_reschedules_on_delete() {
    let (mut lab, key) = two_dr_servers("rr");
    lab.ok(Request::SetSysctl {
        name: "expire_nodest_conn".into(),
        value: 1,
    });
    assert_eq!(to(&mut lab, cl(0, 1000), TH_SYN), Some(1));
    assert_eq!(to(&mut lab, cl(1, 1000), TH_SYN), Some(0));
    lab.ok(Request::DelDest {
        service: key,
        addr: rip(false, 0),
        port: 80,
    });
    // The deletion flushed the connection: a SYN retransmission is scheduled afresh.
    assert!(lab.flows().iter().all(|c| c.daddr != rip(false, 0)));
    assert_eq!(lab.engine.conn_count(), (1, 0));
    assert_eq!(to(&mut lab, cl(1, 1000), TH_SYN), Some(1));
}

#[test]
fn expire_nodest_conn_set_later_reschedules_on_the_next_packet() {
    let (mut lab, key) = two_dr_servers("rr");
    assert_eq!(to(&mut lab, cl(0, 1000), TH_SYN), Some(1));
    assert_eq!(to(&mut lab, cl(1, 1000), TH_SYN), Some(0));
    tcp(&mut lab, cl(1, 1000), TH_ACK);
    lab.ok(Request::DelDest {
        service: key,
        addr: rip(false, 0),
        port: 80,
    });
    lab.ok(Request::SetSysctl {
        name: "expire_nodest_conn".into(),
        value: 1,
    });
    // A data segment of the dead connection cannot open a new one: the entry is gone and
    // the client gets a reset from the VIP (IPVS: the director's stack answers it).
    let before = lab.drops("no_connection");
    let out = tcp(&mut lab, cl(1, 1000), TH_ACK);
    assert_reset(
        &out,
        lab.ext,
        cl(1, 1000),
        vip_sock(false, 80),
        1000,
        Some(2000),
        0,
    );
    assert_eq!(lab.drops("no_connection"), before + 1);
    assert!(lab.flows().iter().all(|c| c.daddr != rip(false, 0)));
    // The client's new SYN on the same port goes to the remaining server.
    assert_eq!(to(&mut lab, cl(1, 1000), TH_SYN), Some(1));
}

// ----- conn_reuse_mode (spec §4.6, §11 item 56) -----------------------------------------

fn close_to_time_wait(lab: &mut Lab, from: SocketAddr, rip_port: (IpAddr, u16)) {
    let v = vip_sock(false, 80);
    let rs = SocketAddr::new(rip_port.0, rip_port.1);
    let idx = rs_index(rip_port.0).unwrap();
    for (dir_in, flags) in [
        (true, TH_SYN),
        (false, TH_SYN | TH_ACK),
        (true, TH_ACK),
        (true, TH_FIN | TH_ACK),
        (false, TH_FIN | TH_ACK),
    ] {
        let out = if dir_in {
            lab.run(lab.ext, &from_client(from, v, tcp_flags(flags), b""))
        } else {
            lab.run(lab.int, &from_server(idx, rs, from, tcp_flags(flags), b""))
        };
        assert!(
            matches!(out.verdict, Verdict::Transmit(_)),
            "{flags:#x}: {:?}",
            out.verdict
        );
    }
}

#[test]
fn conn_reuse_mode_reschedules_a_syn_on_time_wait() {
    for (mode, rescheduled) in [(1, true), (0, false)] {
        let mut lab = Lab::new();
        let key = tcp_key(vip4(), 80);
        lab.add_service(key, "rr", |_| {});
        for i in 0..2 {
            lab.add_dest(key, rip(false, i), 8080, ForwardMethod::Masq, 1);
        }
        lab.ok(Request::SetSysctl {
            name: "conn_reuse_mode".into(),
            value: mode,
        });
        let c = cl(0, 1234);
        close_to_time_wait(&mut lab, c, (rip(false, 1), 8080));
        assert_eq!(lab.flows()[0].state, "TIME_WAIT");
        let out = tcp(&mut lab, c, TH_SYN);
        let got = parse(&out.bytes).ip.dst();
        let flows = lab.flows();
        assert_eq!(flows.len(), 1, "mode {mode}: {flows:?}");
        assert_eq!(flows[0].state, "SYN_RECV");
        if rescheduled {
            assert_eq!(
                got,
                rip(false, 0),
                "mode 1: a fresh connection, scheduled by rr"
            );
            assert_eq!(lab.service(key).stats.conns, 2);
        } else {
            assert_eq!(got, rip(false, 1), "mode 0: the old entry is reused");
            assert_eq!(lab.service(key).stats.conns, 1);
        }
        // Counts stay consistent: exactly one active connection in all.
        let total: u32 = lab
            .service(key)
            .dests
            .iter()
            .map(|d| d.activeconns + d.inactconns)
            .sum();
        assert_eq!(total, 1);
    }
}

// ----- one-packet scheduling (spec §4.7, §11 item 58) ------------------------------------

#[test]
fn one_packet_scheduling() {
    let mut lab = Lab::new();
    let key = udp_key(vip4(), 53);
    lab.add_service(key, "rr", |s| s.flags = svc_flags::ONEPACKET);
    for i in 0..2 {
        lab.add_dest(key, rip(false, i), 53, ForwardMethod::Route, 1);
    }
    let c = cl(0, 5353);
    let mut seq = Vec::new();
    for _ in 0..10 {
        let out = lab.run(lab.ext, &from_client(c, vip_sock(false, 53), L4::Udp, b"q"));
        seq.push(rs_of(&lab, &out).unwrap());
    }
    assert_eq!(
        seq,
        [1, 0, 1, 0, 1, 0, 1, 0, 1, 0],
        "every datagram is scheduled"
    );
    assert!(lab.conns().is_empty(), "OPS connections are never listed");
    let svc = lab.service(key);
    assert_eq!(svc.stats.conns, 10);
    assert_eq!(svc.stats.inpkts, 10);
    assert!(
        svc.dests
            .iter()
            .all(|d| d.activeconns == 0 && d.inactconns == 0)
    );
}

#[test]
fn one_packet_flag_is_ignored_for_tcp() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |s| s.flags = svc_flags::ONEPACKET);
    lab.add_dest(key, rip(false, 0), 80, ForwardMethod::Route, 1);
    tcp(&mut lab, cl(0, 1000), TH_SYN);
    assert_eq!(lab.flows().len(), 1);
}

// ----- fwmark and port-0 services ------------------------------------------------------

#[test]
fn fwmark_service_via_process_marked() {
    let mut lab = Lab::new();
    let key = ServiceKey::Fwmark {
        mark: 7,
        family: Family::Inet,
    };
    lab.add_service(key, "rr", |s| {
        s.flags = svc_flags::PERSISTENT;
        s.timeout = 120;
    });
    for i in 0..2 {
        lab.add_dest(key, rip(false, i), 0, ForwardMethod::Route, 1);
    }
    // Any address and port carrying the mark belongs to the service.
    let dst_a = SocketAddr::new(ip("198.18.0.200"), 8443);
    let dst_b = SocketAddr::new(ip("198.18.0.201"), 53);
    let c = cl(5, 2000);
    let out = lab.run_marked(lab.ext, 7, &from_client(c, dst_a, tcp_flags(TH_SYN), b""));
    let first = rs_of(&lab, &out).expect("marked SYN forwarded");
    // Persistence is shared by all protocols and ports of the mark.
    let out = lab.run_marked(lab.ext, 7, &from_client(c, dst_b, L4::Udp, b"x"));
    assert_eq!(rs_of(&lab, &out), Some(first));
    let t = lab.templates();
    assert_eq!(t.len(), 1);
    // Spec §11 item 53: protocol IP (0), virtual address = the mark, port 0.
    assert_eq!(
        (t[0].protocol, t[0].vaddr, t[0].vport),
        (0, ip("0.0.0.7"), 0)
    );
    // Without the mark the same packet is not ours.
    let out = lab.run(
        lab.ext,
        &from_client(cl(6, 2000), dst_a, tcp_flags(TH_SYN), b""),
    );
    assert_eq!(out.verdict, Verdict::Pass);
    // Another mark is not ours either.
    let out = lab.run_marked(
        lab.ext,
        8,
        &from_client(cl(6, 2000), dst_a, tcp_flags(TH_SYN), b""),
    );
    assert_eq!(out.verdict, Verdict::Pass);
}

#[test]
fn port_zero_persistent_service() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 0);
    lab.add_service(key, "rr", |s| {
        s.flags = svc_flags::PERSISTENT;
        s.timeout = 360;
    });
    for i in 0..3 {
        lab.add_dest(key, rip(false, i), 0, ForwardMethod::Masq, 1);
    }
    let c = client(false, 9);
    let mut servers = Vec::new();
    for port in [22u16, 443, 8080] {
        let f = from_client(
            SocketAddr::new(c, 3000 + port),
            SocketAddr::new(vip4(), port),
            tcp_flags(TH_SYN),
            b"",
        );
        let out = lab.run(lab.ext, &f);
        let p = parse(&out.bytes);
        // A port-0 NAT real server keeps the packet's destination port.
        assert_eq!(p.ip.ports().1, port);
        servers.push(p.ip.dst());
    }
    assert!(servers.iter().all(|s| *s == servers[0]), "{servers:?}");
    let t = lab.templates();
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].vport, t[0].dport), (0, 0));
    // The reply from the real server's port 443 is mapped back to VIP:443.
    let rs = SocketAddr::new(servers[0], 443);
    let idx = rs_index(servers[0]).unwrap();
    let out = lab.run(
        lab.int,
        &from_server(
            idx,
            rs,
            SocketAddr::new(c, 3443),
            tcp_flags(TH_SYN | TH_ACK),
            b"",
        ),
    );
    assert_eq!(out.verdict, Verdict::Transmit(lab.ext));
    let p = parse(&out.bytes);
    assert_eq!((p.ip.src(), p.ip.ports().0), (vip4(), 443));
}

#[test]
fn non_persistent_service_does_not_take_other_ports_of_a_port0_fallback() {
    // Port-0 service without persistence: a packet to another port reaches it only through the
    // fallback lookup and gets ICMP port unreachable (ip_vs_leave).
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 0);
    lab.add_service(key, "rr", |_| {});
    lab.add_dest(key, rip(false, 0), 0, ForwardMethod::Route, 1);
    let out = tcp(&mut lab, cl(0, 1000), TH_SYN);
    assert_eq!(out.verdict, Verdict::Transmit(lab.ext));
    let p = parse(&out.bytes);
    assert_eq!(
        (p.ip.proto(), p.ip.payload()[0], p.ip.payload()[1]),
        (1, 3, 3)
    );
}

// ----- ICMP errors the director originates ---------------------------------------------

/// Checks an ICMP(v6) error sent back to the client: from `src`, type/code, quoting `orig`.
fn assert_icmp_back(lab: &Lab, out: &Out, orig: &[u8], src: IpAddr, kind: u8, code: u8) -> Vec<u8> {
    icmp_back(lab, out, orig, src, (kind, code), false)
}

/// As [`assert_icmp_back`], also accepting a quote with the TTL already decremented.
fn assert_too_big_back(
    lab: &Lab,
    out: &Out,
    orig: &[u8],
    src: IpAddr,
    kind: u8,
    code: u8,
) -> Vec<u8> {
    icmp_back(lab, out, orig, src, (kind, code), true)
}

fn icmp_back(
    lab: &Lab,
    out: &Out,
    orig: &[u8],
    src: IpAddr,
    (kind, code): (u8, u8),
    quote_ttl_minus_one: bool,
) -> Vec<u8> {
    assert_eq!(
        out.verdict,
        Verdict::Transmit(lab.ext),
        "ICMP goes back where the packet came from"
    );
    let p = parse(&out.bytes);
    assert_eq!((p.dst_mac, p.src_mac), (ROUTER_MAC, EXT_MAC));
    let o = parse(orig);
    assert_eq!(p.ip.src(), src);
    assert_eq!(p.ip.dst(), o.ip.src(), "to the sender");
    let v6 = src.is_ipv6();
    assert_eq!(p.ip.proto(), if v6 { 58 } else { 1 });
    let icmp = p.ip.payload();
    assert_eq!((icmp[0], icmp[1]), (kind, code));
    p.ip.assert_header_checksum();
    p.ip.assert_l4_checksum();
    // The quoted packet: the original's IP header and at least its first 8 payload bytes.
    // IPVS decrements the TTL before its MTU check, so a frag-needed quotes TTL - 1.
    let quoted = &icmp[8..];
    let want = &orig[14..];
    let n = quoted.len().min(want.len());
    assert!(n >= if v6 { 48 } else { 28 }, "quote too short: {n}");
    let decremented = ttl_minus_one(want);
    assert!(
        quoted[..n] == want[..n] || (quote_ttl_minus_one && quoted[..n] == decremented[..n]),
        "quoted packet"
    );
    icmp[4..8].to_vec()
}

#[test]
fn no_destination_sends_port_unreachable() {
    for v6 in [false, true] {
        let mut lab = Lab::new();
        let key = tcp_key(vip(v6), 80);
        lab.add_service(key, "wlc", |_| {});
        let c = SocketAddr::new(client(v6, 3), 4444);
        let f = from_client(c, vip_sock(v6, 80), tcp_flags(TH_SYN), b"");
        let out = lab.run(lab.ext, &f);
        let (kind, code) = if v6 { (1, 4) } else { (3, 3) };
        assert_icmp_back(&lab, &out, &f, vip(v6), kind, code);
        assert_eq!(lab.drops("no_destination"), 1);
        assert!(lab.conns().is_empty());
        // All real servers quiescent: the same.
        lab.add_dest(key, rip(v6, 0), 80, ForwardMethod::Route, 0);
        let out = lab.run(lab.ext, &f);
        assert_icmp_back(&lab, &out, &f, vip(v6), kind, code);
        assert_eq!(lab.drops("no_destination"), 2);
    }
}

#[test]
fn ttl_one_sends_time_exceeded() {
    for v6 in [false, true] {
        let mut lab = Lab::new();
        let key = tcp_key(vip(v6), 80);
        lab.add_service(key, "rr", |_| {});
        lab.add_dest(key, rip(v6, 0), 8080, ForwardMethod::Masq, 1);
        let c = SocketAddr::new(client(v6, 3), 4444);
        let o = IpOpts {
            ttl: 1,
            ..IpOpts::default()
        };
        let f = build(
            ROUTER_MAC,
            EXT_MAC,
            c,
            vip_sock(v6, 80),
            tcp_flags(TH_SYN),
            b"",
            o,
        );
        let out = lab.run(lab.ext, &f);
        assert_icmp_back(&lab, &out, &f, vip(v6), if v6 { 3 } else { 11 }, 0);
        assert_eq!(lab.drops("ttl_exceeded"), 1, "counted");
    }
}

#[test]
fn tun_oversized_df_packet_gets_frag_needed() {
    for v6 in [false, true] {
        let mut lab = Lab::new();
        let key = tcp_key(vip(v6), 80);
        lab.add_service(key, "rr", |_| {});
        lab.add_dest(key, rip(v6, 0), 80, ForwardMethod::Tunnel, 1);
        let c = SocketAddr::new(client(v6, 3), 4444);
        tcp(&mut lab, c, TH_SYN);
        // A full 1500-byte datagram cannot take a 20 / 40 byte outer header on a 1500 MTU.
        let hdr = if v6 { 40 + 20 } else { 20 + 20 };
        let f = from_client(
            c,
            vip_sock(v6, 80),
            tcp_flags(TH_ACK),
            &vec![0xab; 1500 - hdr],
        );
        assert_eq!(f.len(), 1514);
        let out = lab.run(lab.ext, &f);
        let rest = if v6 {
            assert_too_big_back(&lab, &out, &f, vip(v6), 2, 0)
        } else {
            assert_too_big_back(&lab, &out, &f, vip(v6), 3, 4)
        };
        let mtu = if v6 {
            u32::from_be_bytes(rest.try_into().unwrap())
        } else {
            u32::from(u16::from_be_bytes([rest[2], rest[3]]))
        };
        assert_eq!(
            mtu,
            if v6 { 1460 } else { 1480 },
            "egress MTU minus the outer header"
        );
        assert_eq!(lab.drops("too_big"), 1);
        // One byte less fits.
        let f = from_client(
            c,
            vip_sock(v6, 80),
            tcp_flags(TH_ACK),
            &vec![0xab; 1500 - hdr - if v6 { 40 } else { 20 }],
        );
        let out = lab.run(lab.ext, &f);
        assert_eq!(out.verdict, Verdict::Transmit(lab.int));
        assert_eq!(out.bytes.len(), 1514);
    }
}

#[test]
fn tun_oversized_packet_without_df_is_dropped() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |_| {});
    lab.add_dest(key, rip(false, 0), 80, ForwardMethod::Tunnel, 1);
    let c = cl(3, 4444);
    tcp(&mut lab, c, TH_SYN);
    let o = IpOpts {
        df: false,
        ..IpOpts::default()
    };
    let f = build(
        ROUTER_MAC,
        EXT_MAC,
        c,
        vip_sock(false, 80),
        tcp_flags(TH_ACK),
        &[0u8; 1460],
        o,
    );
    assert_eq!(
        lab.run(lab.ext, &f).verdict,
        Verdict::Drop(DropReason::TooBig)
    );
}

#[test]
fn dr_respects_a_smaller_egress_mtu() {
    let mut lab = Lab::new();
    lab.engine.update_interface(
        lab.int,
        Interface {
            name: "int".into(),
            mac: INT_MAC,
            mtu: 1400,
            addrs: vec![dip_int4(), dip_int6()],
        },
    );
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |_| {});
    lab.add_dest(key, rip(false, 0), 80, ForwardMethod::Route, 1);
    let c = cl(3, 4444);
    tcp(&mut lab, c, TH_SYN);
    let f = from_client(
        c,
        vip_sock(false, 80),
        tcp_flags(TH_ACK),
        &[1u8; 1400 - 40 + 1],
    );
    let out = lab.run(lab.ext, &f);
    let rest = assert_too_big_back(&lab, &out, &f, vip4(), 3, 4);
    assert_eq!(u16::from_be_bytes([rest[2], rest[3]]), 1400);
    let f = from_client(c, vip_sock(false, 80), tcp_flags(TH_ACK), &[1u8; 1400 - 40]);
    assert_eq!(lab.run(lab.ext, &f).verdict, Verdict::Transmit(lab.int));
}

// ----- ARP, ND and echo ----------------------------------------------------------------

#[test]
fn arp_for_a_vip_is_answered_with_the_ingress_mac() {
    let mut lab = Lab::new();
    lab.add_service(tcp_key(vip4(), 80), "rr", |_| {});
    let asker = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    for (iface, mac) in [(lab.ext, EXT_MAC), (lab.int, INT_MAC)] {
        let req = arp_request(
            asker,
            "198.18.0.9".parse().unwrap(),
            "198.18.0.100".parse().unwrap(),
        );
        let out = lab.run(iface, &req);
        assert_eq!(out.verdict, Verdict::Transmit(iface));
        let a = etherparse::SlicedPacket::from_ethernet(&out.bytes).unwrap();
        let Some(etherparse::NetSlice::Arp(arp)) = a.net else {
            panic!("not ARP: {:?}", out.bytes)
        };
        assert_eq!(arp.operation(), etherparse::ArpOperation::REPLY);
        assert_eq!(arp.sender_hw_addr(), &mac);
        assert_eq!(arp.sender_protocol_addr(), &[198, 18, 0, 100]);
        assert_eq!(arp.target_hw_addr(), &asker);
        assert_eq!(arp.target_protocol_addr(), &[198, 18, 0, 9]);
        assert_eq!(&out.bytes[0..6], &asker);
        assert_eq!(&out.bytes[6..12], &mac);
    }
    // ARP for an address that is no VIP: the kernel's business.
    let req = arp_request(
        asker,
        "198.18.0.9".parse().unwrap(),
        "198.18.0.2".parse().unwrap(),
    );
    assert_eq!(lab.run(lab.ext, &req).verdict, Verdict::Pass);
    // Once the service is gone, the VIP is no longer answered.
    lab.ok(Request::DelService {
        key: tcp_key(vip4(), 80),
    });
    let req = arp_request(
        asker,
        "198.18.0.9".parse().unwrap(),
        "198.18.0.100".parse().unwrap(),
    );
    assert_eq!(lab.run(lab.ext, &req).verdict, Verdict::Pass);
}

#[test]
fn neighbour_solicitation_for_a_vip_is_answered() {
    let mut lab = Lab::new();
    lab.add_service(udp_key(vip6(), 53), "rr", |_| {});
    let asker = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    let src: Ipv6Addr = "2001:db8::9".parse().unwrap();
    let ns = neighbour_solicit(asker, src, "2001:db8::100".parse().unwrap());
    let out = lab.run(lab.ext, &ns);
    assert_eq!(out.verdict, Verdict::Transmit(lab.ext));
    let p = parse(&out.bytes);
    assert_eq!((p.dst_mac, p.src_mac), (asker, EXT_MAC));
    assert_eq!(p.ip.src(), vip6());
    assert_eq!(p.ip.dst(), IpAddr::V6(src));
    assert_eq!(p.ip.ttl(), 255);
    p.ip.assert_l4_checksum();
    let na = p.ip.payload();
    assert_eq!(na[0], 136, "neighbour advertisement");
    assert_eq!(na[4] & 0x60, 0x60, "solicited + override");
    assert_eq!(&na[8..24], &vip6_octets());
    // Target link-layer address option carries the ingress MAC.
    assert_eq!(&na[24..26], &[2, 1]);
    assert_eq!(&na[26..32], &EXT_MAC);
    let other = neighbour_solicit(asker, src, "2001:db8::2".parse().unwrap());
    assert_eq!(lab.run(lab.ext, &other).verdict, Verdict::Pass);
}

fn vip6_octets() -> [u8; 16] {
    match vip6() {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(_) => unreachable!(),
    }
}

#[test]
fn echo_to_a_vip_is_answered() {
    let mut lab = Lab::new();
    lab.add_service(tcp_key(vip4(), 80), "rr", |_| {});
    lab.add_service(tcp_key(vip6(), 80), "rr", |_| {});
    for v6 in [false, true] {
        let c = client(v6, 1);
        let mut f = Vec::new();
        let b = etherparse::PacketBuilder::ethernet2(ROUTER_MAC, EXT_MAC);
        match (c, vip(v6)) {
            (IpAddr::V4(s), IpAddr::V4(d)) => b
                .ipv4(s.octets(), d.octets(), 50)
                .icmpv4_echo_request(7, 1)
                .write(&mut f, b"ping!")
                .unwrap(),
            (IpAddr::V6(s), IpAddr::V6(d)) => b
                .ipv6(s.octets(), d.octets(), 50)
                .icmpv6_echo_request(7, 1)
                .write(&mut f, b"ping!")
                .unwrap(),
            _ => unreachable!(),
        }
        let out = lab.run(lab.ext, &f);
        assert_eq!(out.verdict, Verdict::Transmit(lab.ext));
        let p = parse(&out.bytes);
        assert_eq!((p.dst_mac, p.src_mac), (ROUTER_MAC, EXT_MAC));
        assert_eq!((p.ip.src(), p.ip.dst()), (vip(v6), c));
        p.ip.assert_header_checksum();
        p.ip.assert_l4_checksum();
        assert_eq!(p.ip.payload()[0], if v6 { 129 } else { 0 });
        assert_eq!(
            &p.ip.payload()[4..],
            &[0, 7, 0, 1, b'p', b'i', b'n', b'g', b'!']
        );
    }
    // Echo to a non-VIP address passes.
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2(ROUTER_MAC, EXT_MAC)
        .ipv4([198, 19, 0, 2], [198, 18, 0, 2], 50)
        .icmpv4_echo_request(7, 1)
        .write(&mut f, b"x")
        .unwrap();
    assert_eq!(lab.run(lab.ext, &f).verdict, Verdict::Pass);
}

// ----- ICMP errors relayed (spec §4.9) -------------------------------------------------

#[test]
fn nat_server_port_unreachable_reaches_the_client_showing_only_the_vip() {
    for v6 in [false, true] {
        let mut lab = Lab::new();
        let key = udp_key(vip(v6), 53);
        lab.add_service(key, "rr", |_| {});
        lab.add_dest(key, rip(v6, 0), 8053, ForwardMethod::Masq, 1);
        let c = SocketAddr::new(client(v6, 4), 33_333);
        let q = from_client(c, vip_sock(v6, 53), L4::Udp, b"dns query");
        let fwd = lab.run(lab.ext, &q);
        assert_eq!(fwd.verdict, Verdict::Transmit(lab.int));
        // The real server has nothing on 8053: it answers with port unreachable quoting the
        // datagram it got (client → RIP:8053).
        let (kind, code) = if v6 { (1, 4) } else { (3, 3) };
        let err = icmp_error(
            (rs_mac(0), INT_MAC),
            rip(v6, 0),
            c.ip(),
            kind,
            code,
            [0; 4],
            &fwd.bytes[14..],
        );
        let out = lab.run(lab.int, &err);
        assert_eq!(out.verdict, Verdict::Transmit(lab.ext), "v6={v6}");
        let p = parse(&out.bytes);
        assert_eq!((p.dst_mac, p.src_mac), (ROUTER_MAC, EXT_MAC));
        assert_eq!((p.ip.src(), p.ip.dst()), (vip(v6), c.ip()));
        assert_eq!(p.ip.ttl(), 63);
        p.ip.assert_header_checksum();
        p.ip.assert_l4_checksum();
        let icmp = p.ip.payload();
        assert_eq!((icmp[0], icmp[1]), (kind, code));
        let quoted = parse_ip(&icmp[8..]);
        assert_eq!(
            (quoted.src(), quoted.dst()),
            (c.ip(), vip(v6)),
            "quoted addresses"
        );
        assert_eq!(quoted.ports(), (c.port(), 53), "quoted ports");
        quoted.assert_header_checksum();
        // Nothing in the frame may reveal the real server.
        let r = match rip(v6, 0) {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        assert!(
            !out.bytes.windows(r.len()).any(|w| w == &r[..]),
            "RIP leaked: {:02x?}",
            out.bytes
        );
        assert!(
            !out.bytes.windows(2).any(|w| w == 8053u16.to_be_bytes()),
            "real port leaked"
        );
        assert_eq!(lab.service(key).stats.outpkts, 1);
    }
}

#[test]
fn client_side_frag_needed_about_a_dr_reply_goes_to_the_real_server() {
    for (method, v6) in [
        (ForwardMethod::Route, false),
        (ForwardMethod::Route, true),
        (ForwardMethod::Tunnel, false),
    ] {
        let mut lab = Lab::new();
        let key = tcp_key(vip(v6), 80);
        lab.add_service(key, "rr", |_| {});
        lab.add_dest(key, rip(v6, 0), 80, method, 1);
        let c = SocketAddr::new(client(v6, 4), 33_333);
        tcp(&mut lab, c, TH_SYN);
        tcp(&mut lab, c, TH_ACK);
        // The real server's reply (VIP → client, not seen by the director) was too big for a
        // router on the way; the router complains to the VIP.
        let reply = build(
            rs_mac(0),
            ROUTER_MAC,
            vip_sock(v6, 80),
            c,
            tcp_flags(TH_PSH | TH_ACK),
            &[0u8; 1400],
            IpOpts::default(),
        );
        let router = if v6 {
            ip("2001:db8:ff::fe")
        } else {
            ip("198.19.255.254")
        };
        let (kind, code, rest) = if v6 {
            (2, 0, 1280u32.to_be_bytes())
        } else {
            (3, 4, [0, 0, 0x05, 0x00])
        };
        let err = icmp_error(
            (ROUTER_MAC, EXT_MAC),
            router,
            vip(v6),
            kind,
            code,
            rest,
            &reply[14..14 + if v6 { 1232 } else { 548 }],
        );
        let before = lab.service(key).stats.inpkts;
        let out = lab.run(lab.ext, &err);
        assert_eq!(
            out.verdict,
            Verdict::Transmit(lab.int),
            "{method:?} v6={v6}"
        );
        assert_eq!(&out.bytes[0..6], &rs_mac(0));
        match method {
            ForwardMethod::Route => {
                assert_eq!(
                    out.bytes[14..],
                    ttl_minus_one(&err[14..])[..],
                    "relayed unchanged but the TTL"
                );
            }
            ForwardMethod::Tunnel => {
                let p = parse(&out.bytes);
                assert_eq!((p.ip.dst(), p.ip.proto()), (rip(v6, 0), 4));
                assert_eq!(p.ip.payload(), &ttl_minus_one(&err[14..])[..]);
            }
            _ => unreachable!(),
        }
        assert_eq!(
            lab.service(key).stats.inpkts,
            before + 1,
            "counted as incoming"
        );
    }
}

#[test]
fn icmp_error_about_an_unknown_flow_is_dropped() {
    let mut lab = Lab::new();
    lab.add_service(tcp_key(vip4(), 80), "rr", |_| {});
    let reply = build(
        rs_mac(0),
        ROUTER_MAC,
        vip_sock(false, 80),
        cl(1, 999),
        tcp_flags(TH_ACK),
        b"",
        IpOpts::default(),
    );
    let err = icmp_error(
        (ROUTER_MAC, EXT_MAC),
        ip("198.19.255.254"),
        vip4(),
        3,
        4,
        [0, 0, 5, 0],
        &reply[14..],
    );
    assert_eq!(
        lab.run(lab.ext, &err).verdict,
        Verdict::Drop(DropReason::IcmpNoConnection)
    );
}

// ----- misc -----------------------------------------------------------------------------

#[test]
fn neighbour_miss_is_reported_and_counted() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |_| {});
    // 198.18.1.250 is on-link on int but not resolved.
    lab.add_dest(key, ip("198.18.1.250"), 80, ForwardMethod::Route, 1);
    while lab.engine.poll_event().is_some() {}
    let out = tcp(&mut lab, cl(0, 1000), TH_SYN);
    assert_eq!(out.verdict, Verdict::Drop(DropReason::NoNeighbour));
    assert_eq!(
        lab.engine.drain_events(),
        vec![rvs_engine::Event::ResolveNeighbour {
            iface: lab.int,
            addr: ip("198.18.1.250")
        }]
    );
    lab.engine
        .set_neighbour(lab.int, ip("198.18.1.250"), Some([2, 0, 0, 1, 0, 0xfa]));
    let out = tcp(&mut lab, cl(0, 1000), TH_SYN);
    assert_eq!(out.verdict, Verdict::Transmit(lab.int));
    assert_eq!(&out.bytes[0..6], &[2, 0, 0, 1, 0, 0xfa]);
}

#[test]
fn ipv4_service_with_ipv6_tunnel_server() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |_| {});
    lab.add_dest(key, rip(true, 0), 80, ForwardMethod::Tunnel, 1);
    let f = from_client(cl(0, 1000), vip_sock(false, 80), tcp_flags(TH_SYN), b"");
    let out = lab.run(lab.ext, &f);
    assert_eq!(out.verdict, Verdict::Transmit(lab.int));
    let p = parse(&out.bytes);
    assert_eq!(p.ethertype, 0x86dd);
    assert_eq!(
        (p.ip.src(), p.ip.dst(), p.ip.proto()),
        (dip_int6(), rip(true, 0), 4)
    );
    assert_eq!(p.ip.payload(), &ttl_minus_one(&f[14..])[..]);
}

#[test]
fn udp_reply_assures_a_persistent_template() {
    let mut lab = Lab::new();
    let key = udp_key(vip4(), 53);
    lab.add_service(key, "rr", |s| {
        s.flags = svc_flags::PERSISTENT;
        s.timeout = 60;
        s.netmask = Netmask::V4(Ipv4Addr::new(255, 255, 255, 0));
    });
    lab.add_dest(key, rip(false, 0), 53, ForwardMethod::Masq, 1);
    let c = cl(0, 5000);
    lab.run(lab.ext, &from_client(c, vip_sock(false, 53), L4::Udp, b"q"));
    assert_eq!(lab.templates()[0].state, "NONE");
    let out = lab.run(
        lab.int,
        &from_server(0, SocketAddr::new(rip(false, 0), 53), c, L4::Udp, b"a"),
    );
    assert_eq!(out.verdict, Verdict::Transmit(lab.ext));
    assert_eq!(lab.templates()[0].state, "ASSURED");
}

#[test]
fn sweeping_a_large_table_expires_everything() {
    let mut lab = Lab::new();
    let key = udp_key(vip4(), 53);
    lab.add_service(key, "rr", |_| {});
    for i in 0..4 {
        lab.add_dest(key, rip(false, i), 53, ForwardMethod::Route, 1);
    }
    for n in 0..5000 {
        let out = lab.run(
            lab.ext,
            &from_client(cl(n, 5353), vip_sock(false, 53), L4::Udp, b"q"),
        );
        assert_eq!(out.verdict, Verdict::Transmit(lab.int));
    }
    assert_eq!(lab.engine.conn_count(), (5000, 0));
    let inact: u32 = lab.service(key).dests.iter().map(|d| d.inactconns).sum();
    assert_eq!(inact, 5000);
    // Nothing expires before 300 s.
    lab.advance_by_steps(Duration::from_secs(299), Duration::from_millis(500));
    assert_eq!(lab.engine.conn_count(), (5000, 0));
    // The sweep covers the table in slices every 100 ms: within a second all are gone.
    lab.advance_by_steps(Duration::from_secs(2), Duration::from_millis(100));
    assert_eq!(lab.engine.conn_count(), (0, 0));
    let total: u32 = lab
        .service(key)
        .dests
        .iter()
        .map(|d| d.activeconns + d.inactconns)
        .sum();
    assert_eq!(total, 0);
}

#[test]
fn persistent_client_of_a_deleted_server_is_rescheduled() {
    let (mut lab, key) = persistent_lab();
    let first = to(&mut lab, cl(0, 1000), TH_SYN).unwrap();
    lab.ok(Request::DelDest {
        service: key,
        addr: rip(false, first),
        port: 80,
    });
    // The old connection's packets are dropped (expire_nodest_conn = 0) ...
    assert_eq!(
        tcp(&mut lab, cl(0, 1000), TH_ACK).verdict,
        Verdict::Drop(DropReason::DestUnavailable)
    );
    // ... but a new connection of the same client is not stuck to the deleted server.
    let other = to(&mut lab, cl(0, 1001), TH_SYN).expect("rescheduled");
    assert_ne!(other, first);
    let live: Vec<_> = lab
        .templates()
        .into_iter()
        .filter(|t| t.vport == 80)
        .collect();
    assert_eq!(live.len(), 1, "the old template is invalidated: {live:?}");
    assert_eq!(live[0].daddr, rip(false, other));
}

#[test]
fn ipv6_service_with_ipv4_tunnel_server() {
    let mut lab = Lab::new();
    let key = tcp_key(vip6(), 80);
    lab.add_service(key, "rr", |_| {});
    lab.add_dest(key, rip(false, 0), 80, ForwardMethod::Tunnel, 1);
    let f = from_client(
        SocketAddr::new(client(true, 0), 1000),
        vip_sock(true, 80),
        tcp_flags(TH_SYN),
        b"",
    );
    let out = lab.run(lab.ext, &f);
    assert_eq!(out.verdict, Verdict::Transmit(lab.int));
    let p = parse(&out.bytes);
    assert_eq!(p.ethertype, 0x0800);
    assert_eq!(
        (p.ip.src(), p.ip.dst(), p.ip.proto()),
        (dip_int4(), rip(false, 0), 41)
    );
    p.ip.assert_header_checksum();
    assert_eq!(p.ip.payload(), &ttl_minus_one(&f[14..])[..]);
    let IpView::V4(h, _) = &p.ip else {
        unreachable!()
    };
    assert!(!h.dont_fragment, "an IPv6 inner packet gives DF = 0 (IPVS)");
}

#[test]
fn next_hop_changes_apply_to_live_connections() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |_| {});
    lab.add_dest(key, rip(false, 0), 80, ForwardMethod::Route, 1);
    let c = cl(0, 1000);
    assert_eq!(&tcp(&mut lab, c, TH_SYN).bytes[0..6], &rs_mac(0));
    // The real server's MAC changes (failover of its NIC): the cached next hop follows.
    let new_mac = [2, 0xaa, 0, 0, 0, 1];
    lab.engine
        .set_neighbour(lab.int, rip(false, 0), Some(new_mac));
    assert_eq!(&tcp(&mut lab, c, TH_ACK).bytes[0..6], &new_mac);
    // The neighbour is forgotten: the packet is dropped and a resolution requested.
    lab.engine.drain_events();
    lab.engine.set_neighbour(lab.int, rip(false, 0), None);
    assert_eq!(
        tcp(&mut lab, c, TH_ACK).verdict,
        Verdict::Drop(DropReason::NoNeighbour)
    );
    assert_eq!(
        lab.engine.drain_events(),
        vec![rvs_engine::Event::ResolveNeighbour {
            iface: lab.int,
            addr: rip(false, 0)
        }]
    );
    // The route moves to the external interface.
    let mut routes = lab.engine.l2().routes().to_vec();
    routes.retain(|r| r.dst != ip("198.18.1.0"));
    routes.push(rvs_engine::Route {
        dst: ip("198.18.1.0"),
        prefix_len: 24,
        iface: lab.ext,
        gateway: None,
        src: None,
    });
    lab.engine.set_routes(routes);
    lab.engine
        .set_neighbour(lab.ext, rip(false, 0), Some(new_mac));
    let out = tcp(&mut lab, c, TH_ACK);
    assert_eq!(out.verdict, Verdict::Transmit(lab.ext));
    assert_eq!(
        (&out.bytes[0..6], &out.bytes[6..12]),
        (&new_mac[..], &EXT_MAC[..])
    );
}
