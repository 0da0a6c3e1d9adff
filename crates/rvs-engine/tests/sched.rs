//! Schedulers end to end through `process()`: distribution against weights, quiescing,
//! persistence templates, and hash stability.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rvs_api::{DestSpec, ForwardMethod, Netmask, Request, ServiceKey, svc_flags};
use rvs_engine::Verdict;

use crate::util::*;

/// A DR service on VIP4:80 with real servers `0..weights.len()` (added in index order, so the
/// list order is the reverse).
fn dr_service(sched: &str, weights: &[u32], flags: u32) -> (Lab, ServiceKey) {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, sched, |s| s.flags = flags);
    for (i, &w) in weights.iter().enumerate() {
        lab.add_dest(key, rip(false, i as u16), 80, ForwardMethod::Route, w);
    }
    (lab, key)
}

/// Sends one TCP segment from client `n` (port `port`) and returns the real server index it
/// was forwarded to.
fn send(lab: &mut Lab, n: u32, port: u16, flags: u8) -> Option<u16> {
    let f = from_client(
        SocketAddr::new(client(false, n), port),
        SocketAddr::new(vip4(), 80),
        tcp_flags(flags),
        b"",
    );
    let out = lab.run(lab.ext, &f);
    match out.verdict {
        Verdict::Transmit(i) if i == lab.int => {
            let p = parse(&out.bytes);
            let idx =
                rs_index(p.ip.dst()).or_else(|| (0..RS_COUNT).find(|&i| rs_mac(i) == p.dst_mac));
            Some(idx.expect("forwarded to a known real server"))
        }
        _ => None,
    }
}

fn syn(lab: &mut Lab, n: u32) -> u16 {
    send(lab, n, 10_000 + (n % 50_000) as u16, TH_SYN).expect("SYN forwarded")
}

/// Schedules `count` SYNs from distinct clients; per-server totals.
fn distribute(lab: &mut Lab, count: u32, first_client: u32) -> HashMap<u16, u32> {
    let mut m = HashMap::new();
    for n in first_client..first_client + count {
        *m.entry(syn(lab, n)).or_insert(0) += 1;
    }
    m
}

#[test]
fn rr_cycles_newest_first_and_evenly() {
    let (mut lab, _) = dr_service("rr", &[1, 1, 1], 0);
    let seq: Vec<u16> = (0..6).map(|n| syn(&mut lab, n)).collect();
    assert_eq!(
        seq,
        [2, 1, 0, 2, 1, 0],
        "rr walks the list, newest first (spec §11 item 40)"
    );
    let m = distribute(&mut lab, 300, 100);
    assert_eq!((m[&0], m[&1], m[&2]), (100, 100, 100));
}

#[test]
fn wrr_matches_weights() {
    let (mut lab, _) = dr_service("wrr", &[3, 2, 1], 0);
    let m = distribute(&mut lab, 600, 0);
    assert_eq!((m[&0], m[&1], m[&2]), (300, 200, 100));
}

#[test]
fn wrr_sequence_is_the_kernels() {
    let (mut lab, _) = dr_service("wrr", &[3, 1], 0);
    // Spec §3.2: A=3 added first, then B=1. Bound to the empty service, the first add gives
    // gcd 3, so cw = mw = 1; the second keeps cw = 1 (≤ the new mw 3): the cycle A A A B is
    // entered at the last pass, so B comes first.
    let seq: Vec<u16> = (0..8).map(|n| syn(&mut lab, n)).collect();
    assert_eq!(seq, [1, 0, 0, 0, 1, 0, 0, 0]);
}

#[test]
fn wlc_matches_weights_with_active_connections() {
    let (mut lab, key) = dr_service("wlc", &[3, 2, 1], 0);
    let m = distribute(&mut lab, 600, 0);
    assert_eq!((m[&0], m[&1], m[&2]), (300, 200, 100));
    // The active counts the scheduler balanced on are what the listing shows.
    assert_eq!(lab.counts(key, rip(false, 0)), (300, 0));
    assert_eq!(lab.counts(key, rip(false, 2)), (100, 0));
}

#[test]
fn wlc_prefers_the_least_loaded_after_closes() {
    let (mut lab, key) = dr_service("wlc", &[1, 1], 0);
    // Ten connections spread 5/5, then five of server 0's become inactive (FIN).
    let mut on0 = Vec::new();
    for n in 0..10 {
        if syn(&mut lab, n) == 0 {
            on0.push(n);
        }
    }
    assert_eq!(on0.len(), 5);
    for &n in &on0 {
        let port = 10_000 + n as u16;
        assert_eq!(send(&mut lab, n, port, TH_ACK), Some(0));
        assert_eq!(send(&mut lab, n, port, TH_FIN | TH_ACK), Some(0));
    }
    assert_eq!(lab.counts(key, rip(false, 0)), (0, 5));
    // Overhead 5 (5 inactive) against 1280 (5 active): server 0 takes new connections until
    // 5 + 256 k ≥ 1280, i.e. five of them; then the two alternate.
    let first: Vec<u16> = (0..5).map(|n| syn(&mut lab, 1000 + n)).collect();
    assert_eq!(first, [0; 5]);
    let m = distribute(&mut lab, 96, 2000);
    assert_eq!((m[&0], m[&1]), (48, 48), "{m:?}");
}

#[test]
fn lc_sed_nq_fo_ovf_pick_as_specified() {
    // lc ignores weights (except 0): even split.
    let (mut lab, _) = dr_service("lc", &[5, 1], 0);
    let m = distribute(&mut lab, 100, 0);
    assert_eq!((m[&0], m[&1]), (50, 50));
    // sed: (active + 1) / weight.
    let (mut lab, _) = dr_service("sed", &[3, 1], 0);
    let m = distribute(&mut lab, 400, 0);
    assert!(
        m[&0].abs_diff(300) <= 1 && m[&1].abs_diff(100) <= 1,
        "{m:?}"
    );
    // nq: the first idle server in list order (newest first) wins at once.
    let (mut lab, _) = dr_service("nq", &[1, 100, 1], 0);
    assert_eq!(syn(&mut lab, 0), 2);
    assert_eq!(syn(&mut lab, 1), 1);
    assert_eq!(syn(&mut lab, 2), 0);
    // fo: always the highest weight.
    let (mut lab, _) = dr_service("fo", &[2, 7, 3], 0);
    let m = distribute(&mut lab, 50, 0);
    assert_eq!(m.get(&1), Some(&50));
    // ovf: the highest weight until its active count exceeds its weight.
    let (mut lab, _) = dr_service("ovf", &[2, 5], 0);
    let seq: Vec<u16> = (0..9).map(|n| syn(&mut lab, n)).collect();
    assert_eq!(seq, [1, 1, 1, 1, 1, 1, 0, 0, 0], "ovf overflow order");
    // Both above their weights: no destination.
    assert_eq!(send(&mut lab, 9, 10_009, TH_SYN), None);
}

#[test]
fn sh_is_sticky_per_client_and_spreads() {
    let (mut lab, _) = dr_service("sh", &[1, 1, 1], 0);
    let mut per_server = HashMap::new();
    for n in 0..900 {
        let first = syn(&mut lab, n);
        // Other connections of the same client (other ports) go to the same server.
        for k in 1..3u16 {
            assert_eq!(
                send(&mut lab, n, 30_000 + k, TH_SYN),
                Some(first),
                "client {n}"
            );
        }
        *per_server.entry(first).or_insert(0u32) += 1;
    }
    for i in 0..3 {
        let c = per_server[&i];
        assert!((200..=400).contains(&c), "sh spread {per_server:?}");
    }
}

#[test]
fn sh_port_flag_spreads_one_client() {
    let (mut lab, _) = dr_service("sh", &[1, 1, 1], svc_flags::SCHED2);
    let servers: std::collections::HashSet<u16> = (0..60u16)
        .map(|k| send(&mut lab, 1, 20_000 + k, TH_SYN).unwrap())
        .collect();
    assert_eq!(servers.len(), 3, "sh-port hashes the client port too");
}

#[test]
fn sh_weights_shape_the_distribution() {
    let (mut lab, _) = dr_service("sh", &[3, 1], 0);
    let m = distribute(&mut lab, 4000, 0);
    let share = f64::from(m[&0]) / 4000.0;
    assert!(
        (0.70..0.80).contains(&share),
        "weight 3 of 4 → ~75 %: {m:?}"
    );
}

fn mh_map(lab: &mut Lab, clients: std::ops::Range<u32>) -> HashMap<u32, u16> {
    clients
        .map(|n| (n, send(lab, n, 50_000, TH_SYN).unwrap()))
        .collect()
}

#[test]
fn mh_spreads_and_is_stable_when_another_server_goes() {
    let (mut lab, key) = dr_service("mh", &[1, 1, 1, 1], 0);
    let before = mh_map(&mut lab, 0..2000);
    let mut per = [0u32; 4];
    for s in before.values() {
        per[*s as usize] += 1;
    }
    assert!(
        per.iter().all(|&c| (400..=600).contains(&c)),
        "mh spread {per:?}"
    );
    // Same client again (new port, mh hashes only the address) → same server.
    for n in 0..50 {
        assert_eq!(send(&mut lab, n, 50_001, TH_SYN), Some(before[&n]));
    }
    lab.ok(Request::DelDest {
        service: key,
        addr: rip(false, 3),
        port: 80,
    });
    let after = mh_map(&mut lab, 10_000..12_000);
    let reference = {
        // The same clients on a fresh service that never had server 3.
        let (mut lab2, _) = dr_service("mh", &[1, 1, 1, 1], 0);
        mh_map(&mut lab2, 10_000..12_000)
    };
    let mut moved = 0;
    let mut kept = 0;
    for (n, s) in &after {
        assert_ne!(*s, 3, "deleted server still scheduled");
        if reference[n] != 3 {
            kept += 1;
            if reference[n] != *s {
                moved += 1;
            }
        }
    }
    // Maglev bound: clients of the surviving servers (almost) never move.
    assert!(
        moved * 100 <= kept * 5,
        "mh moved {moved} of {kept} unrelated clients"
    );
}

#[test]
fn mh_fallback_skips_a_quiescent_server_and_leaves_the_rest() {
    let (mut lab, key) = dr_service("mh", &[1, 1, 1], svc_flags::SCHED1);
    let before = mh_map(&mut lab, 0..600);
    let mut d = DestSpec::new(rip(false, 1), 80);
    d.weight = 0;
    lab.ok(Request::EditDest {
        service: key,
        dest: d,
    });
    let mut changed_unrelated = 0;
    for n in 0..600u32 {
        // New ports so no existing connection is hit.
        let s = send(&mut lab, n, 51_000, TH_SYN).unwrap();
        assert_ne!(s, 1, "quiescent server got a new connection");
        if before[&n] != 1 && before[&n] != s {
            changed_unrelated += 1;
        }
    }
    // mh keeps the slots of a quiescent server (last_weight), so nobody else moves.
    assert_eq!(changed_unrelated, 0);
}

#[test]
fn dh_and_lblc_key_on_the_destination() {
    for sched in ["dh", "lblc", "lblcr"] {
        let (mut lab, _) = dr_service(sched, &[50, 50, 50], 0);
        let first = syn(&mut lab, 0);
        // One VIP: every client goes to the same server while it is not overloaded
        // (lblc: active count above the weight).
        for n in 1..20 {
            assert_eq!(syn(&mut lab, n), first, "{sched}");
        }
    }
}

#[test]
fn twos_uses_every_server() {
    let (mut lab, _) = dr_service("twos", &[1, 1, 1], 0);
    let m = distribute(&mut lab, 300, 0);
    assert_eq!(m.len(), 3, "{m:?}");
    assert!(m.values().all(|&c| (60..=140).contains(&c)), "{m:?}");
}

#[test]
fn weight_zero_mid_stream() {
    let (mut lab, key) = dr_service("rr", &[1, 1], 0);
    let mut established = Vec::new();
    for n in 0..10 {
        let s = syn(&mut lab, n);
        assert_eq!(send(&mut lab, n, 10_000 + n as u16, TH_ACK), Some(s));
        established.push((n, s));
    }
    let mut d = DestSpec::new(rip(false, 0), 80);
    d.weight = 0;
    lab.ok(Request::EditDest {
        service: key,
        dest: d,
    });
    // New connections avoid the quiescent server...
    let m = distribute(&mut lab, 40, 100);
    assert_eq!(m.get(&0), None, "{m:?}");
    assert_eq!(m.get(&1), Some(&40));
    // ...while the existing ones keep flowing to it.
    for (n, s) in established {
        assert_eq!(
            send(&mut lab, n, 10_000 + n as u16, TH_PSH | TH_ACK),
            Some(s)
        );
    }
    assert_eq!(lab.counts(key, rip(false, 0)), (5, 0));
}

/// `-p 360 -M 255.255.255.0` (spec §4.5, §11 item 52).
#[test]
fn persistence_within_netmask() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |s| {
        s.flags = svc_flags::PERSISTENT;
        s.timeout = 360;
        s.netmask = Netmask::V4("255.255.255.0".parse().unwrap());
    });
    for i in 0..3 {
        lab.add_dest(key, rip(false, i), 80, ForwardMethod::Route, 1);
    }
    let a = SocketAddr::new(ip("198.19.1.5"), 40_000);
    let b = SocketAddr::new(ip("198.19.1.77"), 40_001);
    let c = SocketAddr::new(ip("198.19.2.5"), 40_002);
    #[track_caller]
    fn go(lab: &mut Lab, who: SocketAddr, flags: u8) -> u16 {
        let vip = SocketAddr::new(vip4(), 80);
        let out = lab.run(lab.ext, &from_client(who, vip, tcp_flags(flags), b""));
        assert_eq!(
            out.verdict,
            Verdict::Transmit(lab.int),
            "{who} flags {flags:#x}"
        );
        rs_index_by_mac(&out.bytes)
    }
    let sa = go(&mut lab, a, TH_SYN);
    let t = lab.templates();
    assert_eq!(t.len(), 1);
    let t0 = &t[0];
    assert_eq!(
        (t0.caddr, t0.cport, t0.vaddr, t0.vport),
        (ip("198.19.1.0"), 0, vip4(), 80)
    );
    assert_eq!((t0.daddr, t0.dport, t0.protocol), (rip(false, sa), 80, 6));
    assert_eq!(t0.state, "NONE");
    assert_eq!(t0.expires_ms, 360_000);
    assert_eq!(lab.dest(key, rip(false, sa)).persistconns, 1);
    assert_eq!(
        lab.dest(key, rip(false, sa)).activeconns,
        1,
        "templates are not connections"
    );

    // Establishing a connection assures the template.
    assert_eq!(go(&mut lab, a, TH_ACK), sa);
    assert_eq!(lab.templates()[0].state, "ASSURED");

    lab.advance(Duration::from_secs(100));
    assert_eq!(lab.templates()[0].expires_ms, 260_000);
    // Another client of the same /24 sticks to the same server (rr alone would move on),
    // and the template's timer restarts.
    assert_eq!(go(&mut lab, b, TH_SYN), sa);
    assert_eq!(lab.templates()[0].expires_ms, 360_000);
    // A client of another /24 gets its own template and the next server.
    let sc = go(&mut lab, c, TH_SYN);
    assert_ne!(sc, sa);
    assert_eq!(lab.templates().len(), 2);

    // The template outlives its 360 s while a connection it controls lives (a: 900 s).
    lab.advance_by_steps(Duration::from_secs(500), Duration::from_secs(1));
    let t = lab
        .templates()
        .into_iter()
        .find(|t| t.caddr == ip("198.19.1.0"));
    let t = t.expect("template expired while controlling a connection");
    assert!(
        t.expires_ms <= 60_000,
        "re-armed for at most 60 s: {}",
        t.expires_ms
    );
    // c's template had no live connection after its SYN_RECV expired: gone.
    assert!(lab.templates().iter().all(|t| t.caddr != ip("198.19.2.0")));
    assert_eq!(lab.flows().len(), 1, "only a's connection is left");

    // Still sticky after 600 s: a new connection from the /24 goes to the same server.
    let d = SocketAddr::new(ip("198.19.1.200"), 40_003);
    assert_eq!(go(&mut lab, d, TH_SYN), sa);
    // Reset both connections: the template goes once nothing holds it.
    go(&mut lab, a, TH_RST);
    go(&mut lab, d, TH_RST);
    lab.advance_by_steps(Duration::from_secs(359), Duration::from_secs(1));
    assert_eq!(
        lab.templates().len(),
        1,
        "timer restarted by d's connection"
    );
    lab.advance_by_steps(Duration::from_secs(2), Duration::from_secs(1));
    assert!(lab.templates().is_empty());
    assert_eq!(lab.dest(key, rip(false, sa)).persistconns, 0);
}

/// The real-server index from a forwarded frame's destination MAC.
fn rs_index_by_mac(frame: &[u8]) -> u16 {
    (0..RS_COUNT)
        .find(|&i| frame[0..6] == rs_mac(i))
        .expect("known real server MAC")
}

/// A persistent service's IPv6 clients are grouped by prefix length.
#[test]
fn persistence_ipv6_prefix() {
    let mut lab = Lab::new();
    let key = tcp_key(vip6(), 443);
    lab.add_service(key, "rr", |s| {
        s.flags = svc_flags::PERSISTENT;
        s.timeout = 60;
        s.netmask = Netmask::V6(64);
    });
    for i in 0..4 {
        lab.add_dest(key, rip(true, i), 443, ForwardMethod::Route, 1);
    }
    let vip = SocketAddr::new(vip6(), 443);
    let mut seen = Vec::new();
    for n in 0..8u16 {
        let cl = SocketAddr::new(
            IpAddr::V6(format!("2001:db8:ff:1::{}", n + 1).parse().unwrap()),
            30_000 + n,
        );
        let out = lab.run(lab.ext, &from_client(cl, vip, tcp_flags(TH_SYN), b""));
        seen.push(rs_index_by_mac(&out.bytes));
    }
    assert!(seen.iter().all(|&s| s == seen[0]), "{seen:?}");
    let t = lab.templates();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].caddr, ip("2001:db8:ff:1::"));
}

/// UDP flows are scheduled once per flow, not per datagram.
#[test]
fn udp_rr_distributes_per_flow() {
    let mut lab = Lab::new();
    let key = udp_key(vip4(), 53);
    lab.add_service(key, "rr", |_| {});
    for i in 0..2 {
        lab.add_dest(key, rip(false, i), 53, ForwardMethod::Route, 1);
    }
    let vip = SocketAddr::new(vip4(), 53);
    let mut per = [0u32; 2];
    for n in 0..10u32 {
        let cl = SocketAddr::new(client(false, n), 5353);
        for _ in 0..3 {
            let out = lab.run(lab.ext, &from_client(cl, vip, L4::Udp, b"q"));
            per[rs_index_by_mac(&out.bytes) as usize] += 1;
        }
    }
    // Each flow sticks to its server: 5 flows × 3 datagrams each.
    assert_eq!(per, [15, 15]);
    assert_eq!(lab.service(key).stats.conns, 10);
}

/// A template whose timer ran out while it still controls a connection is re-armed, not
/// dropped (spec §4.5), also when a packet finds it before the timer sweep has.
#[test]
fn persistence_template_found_expired_but_controlling_is_kept() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |s| {
        s.flags = svc_flags::PERSISTENT;
        s.timeout = 10;
    });
    for i in 0..3 {
        lab.add_dest(key, rip(false, i), 80, ForwardMethod::Route, 1);
    }
    let first = send(&mut lab, 1, 1000, TH_SYN).unwrap();
    assert_eq!(send(&mut lab, 1, 1000, TH_ACK), Some(first));
    // 10.5 s later, with no timer run in between: the template is past its expiry but
    // controls an established connection.
    lab.now += Duration::from_millis(10_500);
    for port in 1001..1004 {
        assert_eq!(send(&mut lab, 1, port, TH_SYN), Some(first), "port {port}");
    }
    assert_eq!(lab.templates().len(), 1, "one template, still valid");
    assert_eq!(lab.dest(key, rip(false, first)).persistconns, 1);
}
