//! Real servers taken out of service under a live connection (ipvs.md §4.6), both families at
//! once:
//!
//! 1. weight 0 (quiescent): the existing stream continues to its end; no new connection goes to
//!    the server;
//! 2. deleted, `expire_nodest_conn` = 0 (default): rvsd keeps the connection entry and drops its
//!    packets: the stream stalls (the client's read times out), nothing of the connection leaves
//!    the director any more; new connections go to the remaining servers;
//!    A new SYN from the client port of a finished connection to the deleted server is scheduled
//!    afresh when that entry is reusable (NAT: TIME_WAIT) and dropped otherwise (DR/TUN:
//!    FIN_WAIT), as in IPVS;
//! 3. deleted, `expire_nodest_conn` = 1: rvsd removes the entry at once; the connection's next
//!    packets are treated as new ones, and since they are not SYNs no connection is created:
//!    rvsd answers them with a reset from the VIP, as an IPVS director's own stack (which holds
//!    the VIP) does, so the client's read fails with "connection reset" well within its read
//!    timeout; new connections go to the remaining servers.
//!
//! "Dropped" is checked on the wire: after the deletion the client sends more data on the
//! connection; its packets reach the director and none goes on to a real server.

use std::thread;
use std::time::{Duration, Instant};

use rvs::lab::topology::{HTTP_PORT, LabMode};
use rvs_api::{ConnEntry, DestSpec, Request};

use super::lab::{Fam, Lab, mac_of};
use super::traffic::{self, Stream, StreamEnd};
use super::wire::{Capture, Frame};

/// New requests per family while a server is out of service.
const NEW_REQUESTS: usize = 30;
/// Read timeout of the long-lived streams: a stall is a read that waited this long.
const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(3);

/// New connections from the client: all answered, none by real server `excluded`.
fn new_requests_avoid(lab: &Lab, fam: Fam, excluded: usize, what: &str) -> [u64; 3] {
    let answers = traffic::http_burst(&lab.plan.client, fam.vip(), NEW_REQUESTS, 5);
    let failed: Vec<&String> = answers.iter().filter_map(|r| r.as_ref().err()).collect();
    if !failed.is_empty() {
        // What rvsd holds for those client ports tells why.
        let conns: Vec<_> = lab
            .conns()
            .into_iter()
            .filter(|c| {
                failed
                    .iter()
                    .any(|e| e.starts_with(&format!("port {}:", c.cport)))
            })
            .collect();
        panic!(
            "{} {fam} {what}: {} of {NEW_REQUESTS} new requests failed: {failed:?}\nrvsd's entries for those ports: {conns:#?}",
            lab.mode,
            failed.len()
        );
    }
    let answers: Vec<_> = answers.into_iter().map(Result::unwrap).collect();
    let tally = traffic::tally(&answers);
    assert_eq!(
        tally[excluded],
        0,
        "{} {fam} {what}: rs{} still got new connections: {tally:?}",
        lab.mode,
        excluded + 1
    );
    tally
}

/// Opens one stream per family and returns them with their real servers.
fn streams(lab: &Lab, seconds: u32, read_timeout: Duration) -> Vec<(Fam, Stream, usize)> {
    Fam::BOTH
        .into_iter()
        .map(|f| {
            let s = Stream::open(&lab.plan.client, f.vip(), seconds, read_timeout);
            let server = s.wait_lines(3, 10.0);
            let rs = lab.rs_index(&server);
            (f, s, rs)
        })
        .collect()
}

/// Captures on every director interface, from the bridge side: `dir` (the LAN) and, for NAT,
/// `dir-nat` (the real servers' segment).
fn director_captures(lab: &Lab) -> Vec<(&'static str, Capture)> {
    let mut ports = vec!["dir"];
    if lab.mode == LabMode::Nat {
        ports.push("dir-nat");
    }
    ports
        .into_iter()
        .map(|p| (p, Capture::start(&lab.plan.lan, p)))
        .collect()
}

/// Frames of one connection at the director after some instant.
#[derive(Debug, Default)]
struct AtDirector {
    /// Client → director (from the router, on the LAN).
    from_client: usize,
    /// Director → real servers (DR/TUN: on the LAN; NAT: on the real servers' segment).
    to_servers: usize,
    /// Director → client (to the router), with their source addresses: NAT replies, resets.
    to_client: Vec<std::net::IpAddr>,
    /// How many of those are TCP resets.
    resets: usize,
}

fn at_director(lab: &Lab, frames: &[(&str, Frame)], port: u16, since: Instant) -> AtDirector {
    let p = &lab.plan;
    let dir_mac = mac_of(&p.director, "eth0");
    let router_mac = mac_of(&p.router, &p.router_lan_dev);
    let nat_mac = (lab.mode == LabMode::Nat).then(|| mac_of(&p.director, "eth1"));
    let mut seen = AtDirector::default();
    for (at, f) in frames {
        if f.at <= since || !f.is_flow(port, HTTP_PORT) {
            continue;
        }
        match (*at, nat_mac) {
            ("dir", _) if f.src_mac == router_mac => seen.from_client += 1,
            ("dir", _) if f.src_mac == dir_mac && f.dst_mac == router_mac => {
                let ip = f.ip.as_ref().unwrap();
                seen.to_client.push(ip.src());
                seen.resets += usize::from(ip.is_tcp_reset());
            }
            ("dir", None) if f.src_mac == dir_mac => seen.to_servers += 1,
            ("dir-nat", Some(m)) if f.src_mac == m => seen.to_servers += 1,
            _ => {}
        }
    }
    seen
}

/// New connections (SYNs) from the client ports of finished connections to real servers that
/// were deleted since (`expire_nodest_conn` = 0). IPVS checks connection reuse before the real
/// server's availability (`ip_vs_in_hook`): with `conn_reuse_mode` = 1 (the default) a SYN
/// matching an entry in TIME_WAIT or CLOSE (NAT, where the director sees both directions) expires
/// it and is scheduled afresh; a SYN matching an entry that is not reusable (FIN_WAIT: DR/TUN,
/// where the director only sees the client's FIN and ACK) is dropped like every other packet of
/// a connection to a deleted server, until the entry expires.
fn port_reuse_after_deletion(lab: &Lab, conns: &[ConnEntry], reuse: &[(Fam, usize, u16)]) {
    let mode = lab.mode;
    let attempts: Vec<_> = reuse
        .iter()
        .map(|&(fam, rs, port)| {
            let entry = conns
                .iter()
                .find(|c| c.cport == port && c.vport == HTTP_PORT && c.vaddr == fam.vip())
                .unwrap_or_else(|| {
                    panic!("{mode} {fam}: no entry for the finished connection from port {port}")
                });
            assert_eq!(entry.daddr, lab.rip(fam, rs));
            // The server closed first; a NAT director saw both FINs, a DR/TUN one only the
            // client's FIN and ACK (IPVS's INPUT-ONLY table keeps FIN_WAIT).
            let want = if mode == LabMode::Nat {
                "TIME_WAIT"
            } else {
                "FIN_WAIT"
            };
            assert_eq!(
                entry.state, want,
                "{mode} {fam}: state of the finished connection"
            );
            let vip = fam.vip();
            let started = Instant::now();
            let h = traffic::spawn_in(&lab.plan.client, move || {
                traffic::http_get_from(vip, port, Duration::from_secs(2))
            });
            (fam, rs, port, entry.state.clone(), started, h)
        })
        .collect();
    for (fam, rs, port, state, started, h) in attempts {
        let again = h.join().unwrap();
        eprintln!(
            "[{mode}] {fam}: new connection from port {port} (old entry {state} → deleted rs{}): {again:?} after {:.1}s",
            rs + 1,
            started.elapsed().as_secs_f64()
        );
        match state.as_str() {
            "TIME_WAIT" | "CLOSE" => {
                let a = again.unwrap_or_else(|e| {
                    panic!(
                        "{mode} {fam}: a SYN reusing the client port of a {state} connection to deleted rs{} must be scheduled afresh (IPVS conn_reuse_mode), but: {e}",
                        rs + 1
                    )
                });
                assert_ne!(
                    lab.rs_index(&a.server),
                    rs,
                    "{mode} {fam}: answered by the deleted server"
                );
            }
            _ => assert!(
                again.as_ref().is_err_and(|e| e.contains("connect")),
                "{mode} {fam}: a SYN on a {state} entry of a deleted real server must be dropped: {again:?}"
            ),
        }
    }
}

pub(crate) fn check(lab: &Lab) {
    let mode = lab.mode;

    // 1. Weight 0.
    let live = streams(lab, 3, Duration::from_secs(5));
    let mut restore: Vec<(Fam, DestSpec)> = Vec::new();
    for (fam, _, rs) in &live {
        let mut d = lab.dest(fam.tcp(), *fam, *rs).unwrap();
        restore.push((*fam, d.clone()));
        d.weight = 0;
        lab.expect_ok(&Request::EditDest {
            service: fam.tcp(),
            dest: d,
        });
        assert_eq!(lab.dest(fam.tcp(), *fam, *rs).unwrap().weight, 0);
    }
    let quiesced_at = Instant::now();
    for (fam, _, rs) in &live {
        let before = lab.dest_conns(fam.tcp(), *fam);
        let tally = new_requests_avoid(lab, *fam, *rs, "weight 0");
        let after = lab.dest_conns(fam.tcp(), *fam);
        assert_eq!(
            after[*rs], before[*rs],
            "{mode} {fam}: rvsd scheduled onto weight 0"
        );
        eprintln!(
            "[{mode}] {fam}: rs{} at weight 0 → {NEW_REQUESTS} new requests went {tally:?}",
            rs + 1
        );
    }
    for (fam, s, rs) in live {
        let log = s.finish(15.0);
        assert_eq!(
            log.end.as_ref().map(|e| &e.1),
            Some(&StreamEnd::Eof),
            "{mode} {fam}: the stream to quiesced rs{} did not complete",
            rs + 1
        );
        log.check_sequence().unwrap();
        assert_eq!(log.lines.len(), 30, "{mode} {fam}: stream lines");
        let after = log.lines.iter().filter(|(t, _)| *t > quiesced_at).count();
        assert!(
            after >= 10,
            "{mode} {fam}: only {after} lines after weight 0"
        );
        assert!(
            log.max_gap() < Duration::from_secs(1),
            "{mode} {fam}: the stream paused {:?}",
            log.max_gap()
        );
        eprintln!(
            "[{mode}] {fam}: the stream on quiesced rs{} completed: 30/30 lines, {after} after weight 0",
            rs + 1
        );
    }
    for (fam, d) in restore {
        lab.expect_ok(&Request::EditDest {
            service: fam.tcp(),
            dest: d,
        });
    }

    // 2. and 3. Deleted, without and with expire_nodest_conn.
    assert_eq!(lab.sysctl("expire_nodest_conn"), 0, "default");
    let mut readd: Vec<(Fam, DestSpec)> = Vec::new();
    for expire in [0, 1] {
        if expire == 1 {
            for (fam, d) in readd.drain(..) {
                lab.expect_ok(&Request::AddDest {
                    service: fam.tcp(),
                    dest: d,
                });
            }
            lab.expect_ok(&Request::SetSysctl {
                name: "expire_nodest_conn".into(),
                value: 1,
            });
            assert_eq!(lab.sysctl("expire_nodest_conn"), 1);
        }
        let what = format!("deleted, expire_nodest_conn={expire}");
        let live = streams(lab, 60, STREAM_READ_TIMEOUT);
        // A finished connection to the server about to be deleted, from a known client port.
        let mut reuse: Vec<(Fam, usize, u16)> = Vec::new();
        if expire == 0 {
            for (fam, _, rs) in &live {
                let (vip, name) = (fam.vip(), format!("rs{}", rs + 1));
                let port = traffic::spawn_in(&lab.plan.client, move || {
                    (0..12).map(|_| traffic::next_port()).find(|&p| {
                        traffic::http_get_from(vip, p, Duration::from_secs(5))
                            .unwrap_or_else(|e| panic!("{e}"))
                            .server
                            == name
                    })
                })
                .join()
                .unwrap()
                .expect("no connection landed on the server");
                reuse.push((*fam, *rs, port));
            }
        }
        let caps = director_captures(lab);
        for (fam, _, rs) in &live {
            readd.push((*fam, lab.dest(fam.tcp(), *fam, *rs).unwrap()));
            lab.expect_ok(&Request::DelDest {
                service: fam.tcp(),
                addr: lab.rip(*fam, *rs),
                port: HTTP_PORT,
            });
            assert!(lab.dest(fam.tcp(), *fam, *rs).is_none());
        }
        let deleted_at = Instant::now();
        let conns = lab.conns();
        for (fam, s, rs) in &live {
            let entry = conns
                .iter()
                .find(|c| c.cport == s.port && c.vport == HTTP_PORT && c.vaddr == fam.vip());
            if expire == 0 {
                let e = entry.unwrap_or_else(|| {
                    panic!("{mode} {fam} {what}: the connection entry must stay")
                });
                assert_eq!(
                    e.daddr,
                    lab.rip(*fam, *rs),
                    "{mode} {fam}: entry's real server"
                );
            } else {
                assert!(
                    entry.is_none(),
                    "{mode} {fam} {what}: the connection entry must be gone: {entry:?}"
                );
                let rip = lab.rip(*fam, *rs);
                assert!(
                    !conns
                        .iter()
                        .any(|c| c.daddr == rip && c.vport == HTTP_PORT && c.flags & 0x1000 == 0),
                    "{mode} {fam} {what}: connections to the deleted server remain"
                );
            }
        }
        // Something for the client to send on each connection: packets to drop. (With
        // expire_nodest_conn the client's acknowledgements of what a DR/TUN server still
        // sends it directly may have drawn the reset already.)
        for (_, s, _) in &live {
            if expire == 0 {
                s.send(b"more\r\n");
            } else {
                let _ = s.try_send(b"more\r\n");
            }
        }
        port_reuse_after_deletion(lab, &conns, &reuse);
        for (fam, _, rs) in &live {
            let tally = new_requests_avoid(lab, *fam, *rs, &what);
            eprintln!(
                "[{mode}] {fam}: rs{} {what} → {NEW_REQUESTS} new requests went {tally:?}",
                rs + 1
            );
        }
        let mut results = Vec::new();
        for (fam, s, rs) in live {
            let port = s.port;
            let log = s.finish(20.0);
            results.push((fam, rs, port, log));
        }
        thread::sleep(Duration::from_millis(200));
        let frames: Vec<(&str, Frame)> = caps
            .into_iter()
            .flat_map(|(at, c)| c.stop().into_iter().map(move |f| (at, f)))
            .collect();
        for (fam, rs, port, log) in results {
            let (end_at, end) = log.end.clone().unwrap();
            if expire == 0 {
                // Stalled: nothing arrived for the whole read timeout, well before the server
                // would have finished.
                assert!(
                    matches!(
                        end,
                        StreamEnd::Error(
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut,
                            _
                        )
                    ),
                    "{mode} {fam} {what}: expected the stream to stall (read timeout), got {end:?} after {} lines",
                    log.lines.len()
                );
            } else {
                // Reset by the director, sooner than a stall could be noticed.
                assert!(
                    matches!(
                        end,
                        StreamEnd::Error(std::io::ErrorKind::ConnectionReset, _)
                    ),
                    "{mode} {fam} {what}: expected a reset, got {end:?} after {} lines",
                    log.lines.len()
                );
                assert!(
                    end_at - deleted_at < STREAM_READ_TIMEOUT,
                    "{mode} {fam} {what}: the reset came {:?} after the deletion",
                    end_at - deleted_at
                );
            }
            log.check_sequence().unwrap();
            assert!(log.lines.len() < 300, "{mode} {fam}: the stream went on");
            let late_lines = log.lines.iter().filter(|(t, _)| *t > deleted_at).count();
            // Dropped at the director: the client's packets of the connection (its data and
            // retransmissions) still arrive there, none reaches a real server.
            let seen = at_director(lab, &frames, port, deleted_at + Duration::from_millis(300));
            // With expire_nodest_conn the reset may come within those first 300 ms (a DR/TUN
            // client acknowledges what the server still sends it directly), after which the
            // client sends nothing more; the reset itself shows its packets reached rvsd.
            let since_deletion = at_director(lab, &frames, port, deleted_at);
            assert!(
                if expire == 0 {
                    seen.from_client
                } else {
                    since_deletion.from_client
                } > 0,
                "{mode} {fam} {what}: no client packet of the connection reached the director after the deletion (nothing to drop: the check proves nothing)"
            );
            assert_eq!(
                seen.to_servers, 0,
                "{mode} {fam} {what}: the director still forwarded client packets of the connection"
            );
            // NAT: whatever the director sends the client has the VIP as source. (IPVS keeps
            // SNATing the real server's packets of a kept entry; rvsd no longer steers them,
            // so none leaves: see the report.) With expire_nodest_conn: at least the reset.
            assert!(
                seen.to_client.iter().all(|&a| a == fam.vip()),
                "{mode} {fam} {what}: RIP-sourced packets reached the client side: {:?}",
                seen.to_client
            );
            if expire == 0 {
                assert_eq!(
                    seen.resets, 0,
                    "{mode} {fam} {what}: the director reset the connection"
                );
            } else {
                assert!(
                    since_deletion.resets > 0,
                    "{mode} {fam} {what}: no reset from the director was captured"
                );
            }
            let shown = if expire == 0 { &seen } else { &since_deletion };
            eprintln!(
                "[{mode}] {fam}: stream on rs{} {what}: ended ({end:?} {:.1}s after the deletion; {late_lines} lines after it); later {} client packets of it reached the director, 0 went on to a real server, {} went to the client ({} resets)",
                rs + 1,
                (end_at - deleted_at).as_secs_f64(),
                shown.from_client,
                shown.to_client.len(),
                shown.resets
            );
        }
    }
}
