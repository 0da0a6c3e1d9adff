//! What the packets look like on the wire while traffic flows, per forwarding method (ipvs.md §5):
//!
//! * DR: the frame the director sends to the real server carries the client's IP packet with only
//!   the TTL / hop limit decremented (and the IPv4 header checksum updated); the destination MAC
//!   is the chosen real server's;
//! * TUN: the director sends the client's packet (TTL − 1) inside an outer IPv4 header DIP → RIP,
//!   protocol 4 (IPv6: outer IPv6, next header 41);
//! * NAT: the director rewrites the destination to the RIP towards the real server and the
//!   source back to the VIP towards the client;
//! * everywhere: no packet from a RIP ever reaches the client; DR/TUN replies never pass the
//!   director (no packet with source VIP leaves it).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::thread;
use std::time::Duration;

use rvs::lab::topology::{HTTP_PORT, LabMode, NET_CLIENT, UDP_PORT};

use super::lab::{Fam, Lab, mac_of, mac_str};
use super::traffic::{self, Answer};
use super::wire::{Capture, Frame, IpPacket};

/// Requests per family during the capture (HTTP; UDP likewise).
const REQUESTS: usize = 12;

/// One client flow of the capture and the real server that answered it.
#[derive(Debug, Clone, Copy)]
struct Flow {
    fam: Fam,
    service: u16,
    port: u16,
    rs: usize,
}

/// A frame the director sent, paired with the client's packet it was made from.
fn find_source<'a>(ins: &'a [&Frame], sent: &IpPacket) -> Option<&'a Frame> {
    ins.iter().copied().find(|f| {
        let ip = f.ip.as_ref().unwrap();
        ip.ttl() > 0 && ip.with_ttl(ip.ttl() - 1) == *sent
    })
}

/// Whether `a` is on the client segment (198.18.1.0/24, 2001:db8:1::/64).
fn on_client_segment(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => a.octets()[..3] == [198, 18, NET_CLIENT],
        IpAddr::V6(a) => a.segments()[..4] == [0x2001, 0xdb8, u16::from(NET_CLIENT), 0],
    }
}

pub(crate) fn check(lab: &Lab) {
    let mode = lab.mode;
    let p = &lab.plan;
    let dir_mac = mac_of(&p.director, "eth0");
    let router_mac = mac_of(&p.router, &p.router_lan_dev);
    let rs_macs: Vec<[u8; 6]> = p
        .real_servers
        .iter()
        .map(|r| mac_of(&r.ns, &r.dev))
        .collect();
    let all_rips: Vec<IpAddr> = Fam::BOTH
        .iter()
        .flat_map(|&f| (0..3).map(move |i| lab.rip(f, i)))
        .collect();

    let cap_dir = Capture::start(&p.lan, "dir");
    let cap_client = Capture::start(&p.client, "eth0");
    let cap_nat = (mode == LabMode::Nat).then(|| Capture::start(&p.lan, "dir-nat"));

    let mut flows = Vec::new();
    for fam in Fam::BOTH {
        let http = traffic::http_burst(&p.client, fam.vip(), REQUESTS, 3);
        let udp = traffic::udp_queries(&p.client, fam.vip(), REQUESTS as u16);
        let http: Vec<Answer> = http
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| panic!("{mode} {fam}: {e}")))
            .collect();
        let udp: Vec<Answer> = udp
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| panic!("{mode} {fam}: {e}")).0)
            .collect();
        for (service, answers) in [(HTTP_PORT, http), (UDP_PORT, udp)] {
            for a in answers {
                flows.push(Flow {
                    fam,
                    service,
                    port: a.port,
                    rs: lab.rs_index(&a.server),
                });
            }
        }
    }
    // The last ACKs and FINs.
    thread::sleep(Duration::from_millis(300));
    let dir_frames = cap_dir.stop();
    let client_frames = cap_client.stop();
    let nat_frames = cap_nat.map(Capture::stop);

    // Client side: answers come from the VIP, never from a RIP.
    let to_client: Vec<&Frame> = client_frames
        .iter()
        .filter(|f| f.ip.as_ref().is_some_and(|ip| on_client_segment(ip.dst())))
        .collect();
    let leaked: Vec<String> = to_client
        .iter()
        .filter_map(|f| f.ip.as_ref())
        .filter(|ip| all_rips.contains(&ip.src()))
        .map(|ip| format!("{} → {}", ip.src(), ip.dst()))
        .collect();
    assert!(
        leaked.is_empty(),
        "{mode}: packets from real servers reached the client: {leaked:?}"
    );
    for fl in &flows {
        let from_vip = to_client
            .iter()
            .filter(|f| f.is_flow(fl.port, fl.service))
            .filter(|f| f.ip.as_ref().unwrap().src() == fl.fam.vip())
            .count();
        assert!(
            from_vip > 0,
            "{mode}: no answer from the VIP seen by the client for {fl:?}"
        );
    }

    // The director's LAN side: what arrives from the router, what the director sends.
    let ins: Vec<&Frame> = dir_frames
        .iter()
        .filter(|f| f.src_mac == router_mac && f.dst_mac == dir_mac && f.ip.is_some())
        .collect();
    let outs: Vec<&Frame> = dir_frames
        .iter()
        .filter(|f| f.src_mac == dir_mac && f.ip.is_some())
        .collect();
    assert!(
        !ins.is_empty(),
        "{mode}: nothing captured towards the director"
    );
    let ip = |f: &Frame| f.ip.clone().unwrap();
    let flow_ins = |fl: &Flow| -> Vec<&Frame> {
        ins.iter()
            .copied()
            .filter(|f| f.is_flow(fl.port, fl.service) && ip(f).dst() == fl.fam.vip())
            .collect()
    };

    match mode {
        LabMode::Dr => {
            let from_vip = outs
                .iter()
                .filter(|f| [Fam::V4.vip(), Fam::V6.vip()].contains(&ip(f).src()))
                .count();
            assert_eq!(
                from_vip, 0,
                "dr: packets with the VIP as source left the director"
            );
            let mut matched = 0;
            for f in &outs {
                let sent = ip(f);
                if ![Fam::V4.vip(), Fam::V6.vip()].contains(&sent.dst()) {
                    continue;
                }
                assert!(
                    rs_macs.contains(&f.dst_mac),
                    "dr: VIP packet sent to {}, not a real server",
                    mac_str(&f.dst_mac)
                );
                assert!(sent.checksum_ok(), "dr: bad IPv4 header checksum: {sent:?}");
                let src = find_source(&ins, &sent).unwrap_or_else(|| {
                    panic!("dr: the director sent a packet no client packet matches (only TTL − 1 and the checksum may differ): {sent:?}")
                });
                assert_eq!(ip(src).ttl() - 1, sent.ttl());
                matched += 1;
            }
            for fl in &flows {
                let fin = flow_ins(fl);
                assert!(!fin.is_empty(), "dr: no client packet of {fl:?} captured");
                for f in fin {
                    let want = ip(f).with_ttl(ip(f).ttl() - 1);
                    let sent: Vec<&&Frame> = outs.iter().filter(|o| ip(o) == want).collect();
                    assert!(
                        !sent.is_empty(),
                        "dr: client packet of {fl:?} not forwarded unchanged: {:?}",
                        ip(f)
                    );
                    for o in sent {
                        assert_eq!(
                            o.dst_mac,
                            rs_macs[fl.rs],
                            "dr: {fl:?} answered by rs{} but its packets went to {}",
                            fl.rs + 1,
                            mac_str(&o.dst_mac)
                        );
                    }
                }
            }
            eprintln!(
                "[dr] wire: {matched} director → real-server frames, each the client's packet with TTL − 1, MACs rewritten to the serving real server; {} flows; 0 VIP-sourced frames from the director",
                flows.len()
            );
        }
        LabMode::Tun => {
            let mut encapsulated = BTreeMap::<u8, usize>::new();
            for f in &outs {
                let outer = ip(f);
                assert!(
                    ![Fam::V4.vip(), Fam::V6.vip()].contains(&outer.src()),
                    "tun: a packet with the VIP as source left the director: {outer:?}"
                );
                assert!(
                    ![Fam::V4.vip(), Fam::V6.vip()].contains(&outer.dst()),
                    "tun: a VIP packet left the director unencapsulated: {outer:?}"
                );
                let Some(inner) = outer.inner() else { continue };
                let fam = if outer.src().is_ipv4() {
                    Fam::V4
                } else {
                    Fam::V6
                };
                assert_eq!(
                    outer.proto(),
                    if fam == Fam::V4 { 4 } else { 41 },
                    "tun: outer protocol"
                );
                assert_eq!(outer.src(), fam.dip(), "tun: outer source must be the DIP");
                assert!(
                    (0..3).any(|i| lab.rip(fam, i) == outer.dst()),
                    "tun: outer destination {} is no RIP",
                    outer.dst()
                );
                assert_eq!(f.dst_mac, router_mac, "tun: next hop must be the router");
                assert!(
                    outer.checksum_ok() && inner.checksum_ok(),
                    "tun: bad checksum"
                );
                let src = find_source(&ins, &inner).unwrap_or_else(|| {
                    panic!("tun: inner packet matches no client packet (only TTL − 1 and the checksum may differ): {inner:?}")
                });
                assert_eq!(ip(src).ttl() - 1, inner.ttl());
                *encapsulated.entry(outer.ttl()).or_default() += 1;
            }
            for fl in &flows {
                let fin = flow_ins(fl);
                assert!(!fin.is_empty(), "tun: no client packet of {fl:?} captured");
                for f in fin {
                    let want = ip(f).with_ttl(ip(f).ttl() - 1);
                    let sent: Vec<IpPacket> = outs
                        .iter()
                        .map(|o| ip(o))
                        .filter(|o| o.inner().as_ref() == Some(&want))
                        .collect();
                    assert!(
                        !sent.is_empty(),
                        "tun: client packet of {fl:?} not forwarded in a tunnel: {:?}",
                        ip(f)
                    );
                    for o in sent {
                        assert_eq!(
                            o.dst(),
                            lab.rip(fl.fam, fl.rs),
                            "tun: {fl:?} answered by rs{} but tunnelled elsewhere",
                            fl.rs + 1
                        );
                    }
                }
            }
            eprintln!(
                "[tun] wire: {} encapsulated frames DIP → RIP (outer TTL → count {encapsulated:?}), inner = client packet with TTL − 1; {} flows",
                encapsulated.values().sum::<usize>(),
                flows.len()
            );
        }
        LabMode::Nat => {
            let nat_frames = nat_frames.unwrap();
            let dir_nat_mac = mac_of(&p.director, "eth1");
            // Towards the client: the VIP as source, never a RIP.
            for f in &outs {
                let sent = ip(f);
                assert!(
                    !all_rips.contains(&sent.src()),
                    "nat: the director let a RIP-sourced packet out: {sent:?}"
                );
            }
            for fl in &flows {
                let replies = outs
                    .iter()
                    .filter(|f| f.is_flow(fl.port, fl.service) && ip(f).src() == fl.fam.vip())
                    .count();
                assert!(replies > 0, "nat: no reply of {fl:?} left the director");
                // Towards the real server: destination rewritten to the serving RIP.
                let dnat: Vec<IpPacket> = nat_frames
                    .iter()
                    .filter(|f| f.src_mac == dir_nat_mac && f.is_flow(fl.port, fl.service))
                    .map(|f| {
                        assert_eq!(
                            f.dst_mac, rs_macs[fl.rs],
                            "nat: {fl:?} sent to the wrong MAC"
                        );
                        ip(f)
                    })
                    .collect();
                assert!(
                    !dnat.is_empty(),
                    "nat: nothing of {fl:?} sent to a real server"
                );
                for d in dnat {
                    assert_eq!(d.dst(), lab.rip(fl.fam, fl.rs), "nat: {fl:?} DNAT");
                    assert!(
                        on_client_segment(d.src()),
                        "nat: {fl:?} source changed: {d:?}"
                    );
                    assert_eq!(d.ports().map(|p| p.1), Some(fl.service));
                    assert!(d.checksum_ok());
                }
            }
            eprintln!(
                "[nat] wire: {} flows: client packets DNATed to the serving RIP, replies SNATed to the VIP; {} frames reached the client, none from a RIP",
                flows.len(),
                to_client.len()
            );
        }
    }
}
