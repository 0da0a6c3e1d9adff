//! End-to-end tests of rvs's data path: real TCP/UDP clients and servers in an `rvs lab`, the
//! director's traffic going through the XDP steering program, AF_XDP and `rvsd`'s engine.
//!
//! One test per forwarding method (NAT, DR, TUN). Each brings one lab up with `--ipv6` (so one
//! lab covers both families) and runs, in order:
//!
//! 1. [`distribution`]: 215 HTTP requests per family over 20 parallel connections, a long-lived
//!    stream per family held open throughout, 60 UDP queries per family: all answered; the counts
//!    per real server are exactly the scheduler's (wrr 3:2:1 per cycle, rr even), from the answers
//!    and from rvsd's counters; NAT replies pass the director, DR/TUN replies do not. Then the
//!    data-plane counters (`GetCounters`, `rvs stats`) show the traffic: frames redirected by
//!    the XDP program, received by the AF_XDP socket.
//! 2. [`shape`]: captures on the director's segments and the client while traffic flows: the
//!    packet shapes of the method (ipvs.md §5), no RIP ever seen by the client, no VIP-sourced
//!    packet leaving a DR/TUN director.
//! 3. ARP / ND for the VIP from the router: exactly one responder, the director.
//! 4. [`quiesce`]: weight 0 and deleted real servers under a live stream, without and with
//!    `expire_nodest_conn`, and a new SYN on a finished connection to a deleted server
//!    (ipvs.md §4.6).
//! 5. [`shutdown`]: rvsd stopped (NAT and TUN: SIGTERM, DR: SIGKILL): no XDP program remains.
//!
//! Client ports are chosen by the test, each used once (see [`traffic::next_port`]), so that no
//! request meets a leftover entry of an earlier one by chance.
//!
//! Needs root (skips with a message otherwise). Each lab has a unique name (`e2e<pid><mode>`),
//! uses only 198.18.0.0/15 and 2001:db8::/32, and is removed by `rvs lab down` in a `Drop`
//! guard, also when a check fails. Every wait is bounded.

#[path = "e2e/distribution.rs"]
mod distribution;
#[path = "e2e/lab.rs"]
mod lab;
#[path = "e2e/neigh.rs"]
mod neigh;
#[path = "e2e/quiesce.rs"]
mod quiesce;
#[path = "e2e/shape.rs"]
mod shape;
#[path = "e2e/shutdown.rs"]
mod shutdown;
#[path = "e2e/traffic.rs"]
mod traffic;
#[path = "e2e/wire.rs"]
mod wire;

use std::time::{Duration, Instant};

use rvs::lab::topology::LabMode;

use lab::{Fam, Lab, RVS, mac_of, mac_str, ok};

/// Only the director answers ARP (IPv4) and Neighbour Solicitations (IPv6) for the VIP: three
/// requests from the router, every answer on the LAN collected for 1.2 s.
fn only_the_director_answers_for_the_vip(lab: &Lab) {
    let p = &lab.plan;
    let dir_mac = mac_of(&p.director, "eth0");
    let router_mac = mac_of(&p.router, &p.router_lan_dev);
    for fam in Fam::BOTH {
        let seen = neigh::probe(
            &p.router,
            &p.router_lan_dev,
            router_mac,
            fam.addr(0, 1),
            fam.vip(),
            3,
            Duration::from_millis(1200),
        );
        let responders: Vec<String> = seen.answers.keys().map(|m| mac_str(m)).collect();
        assert_eq!(
            responders,
            [mac_str(&dir_mac)],
            "{} {fam}: responders for the VIP (director {})",
            lab.mode,
            mac_str(&dir_mac)
        );
        assert_eq!(
            seen.answers[&dir_mac], seen.requests,
            "{} {fam}: one answer per request",
            lab.mode
        );
        assert_eq!(seen.inconsistent, 0, "{} {fam}: advertised MAC", lab.mode);
        eprintln!(
            "[{}] {fam}: {} requests for {} → {} answers, all from the director {}",
            lab.mode,
            seen.requests,
            fam.vip(),
            seen.answers[&dir_mac],
            mac_str(&dir_mac)
        );
    }
}

/// After traffic, rvsd's counters show frames the XDP program redirected to AF_XDP and the
/// socket on the director's eth0 received (workers publish socket counters once a second, so
/// this waits up to 5 s), over the control socket and through `rvs stats`.
fn data_plane_counters_show_the_traffic(lab: &Lab) {
    let value = |counters: &[(String, u64)], name: &str| {
        counters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{}: no counter {name} in {counters:?}", lab.mode))
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let counters = loop {
        let c = lab.counters();
        if value(&c, "xsk.eth0.q0.rx_packets") > 0 || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let redirected = value(&counters, "xdp.redirected");
    let rx = value(&counters, "xsk.eth0.q0.rx_packets");
    assert!(redirected > 0, "{}: xdp.redirected {redirected}", lab.mode);
    assert!(rx > 0, "{}: xsk.eth0.q0.rx_packets {rx}", lab.mode);
    value(&counters, "engine.conns.ipv4");
    value(&counters, "xdp.fast_entries");
    let socket = lab.socket.to_str().unwrap();
    let text = ok(RVS, &["stats", "--socket", socket], 10);
    let printed: Vec<(String, u64)> = text
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(' ').unwrap_or_else(|| panic!("line `{l}`"));
            (
                n.to_owned(),
                v.parse().unwrap_or_else(|_| panic!("line `{l}`")),
            )
        })
        .collect();
    assert!(value(&printed, "xdp.redirected") >= redirected, "{text}");
    assert!(value(&printed, "xsk.eth0.q0.rx_packets") >= rx, "{text}");
    eprintln!(
        "[{}] counters: xdp.redirected {redirected}, xsk.eth0.q0.rx_packets {rx}, {} counters",
        lab.mode,
        printed.len()
    );
}

fn data_path(mode: LabMode, scheduler: &str, weights: [u32; 3], stop_signal: &str) {
    let start = Instant::now();
    let lab = Lab::up(mode, scheduler, weights);
    distribution::check(&lab, scheduler);
    data_plane_counters_show_the_traffic(&lab);
    shape::check(&lab);
    only_the_director_answers_for_the_vip(&lab);
    quiesce::check(&lab);
    shutdown::check(&lab, stop_signal);
    drop(lab);
    eprintln!("[{mode}] done in {:.1}s", start.elapsed().as_secs_f64());
}

#[test]
fn nat_data_path() {
    if lab::root_or_skip("nat_data_path") {
        data_path(LabMode::Nat, "wrr", [3, 2, 1], "TERM");
    }
}

#[test]
fn dr_data_path() {
    if lab::root_or_skip("dr_data_path") {
        data_path(LabMode::Dr, "rr", [1, 1, 1], "KILL");
    }
}

#[test]
fn tun_data_path() {
    if lab::root_or_skip("tun_data_path") {
        data_path(LabMode::Tun, "wrr", [3, 2, 1], "TERM");
    }
}
