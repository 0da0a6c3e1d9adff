//! Control-plane semantics: errors as IPVS reports them, `-E`/`-e` replacing every field,
//! `-Z`, `--set`, trash revival, and what deleting things does to live traffic.

use std::net::SocketAddr;
use std::time::Duration;

use rvs_api::{
    ApiError, DestSpec, Family, ForwardMethod, Netmask, Request, Response, ServiceKey, ServiceSpec,
    Stats, Timeouts, TunnelType, svc_flags,
};
use rvs_engine::{DropReason, Verdict};

use crate::util::*;

fn err(lab: &mut Lab, req: Request) -> ApiError {
    match lab.req(req.clone()) {
        Response::Error { error } => error,
        r => panic!("{req:?} succeeded: {r:?}"),
    }
}

fn spec(key: ServiceKey, sched: &str) -> ServiceSpec {
    let mut s = ServiceSpec::new(key);
    s.scheduler = sched.into();
    s
}

#[test]
fn service_errors() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.ok(Request::AddService {
        spec: spec(key, "rr"),
    });
    assert_eq!(
        err(
            &mut lab,
            Request::AddService {
                spec: spec(key, "wlc")
            }
        ),
        ApiError::ServiceExists
    );
    let missing = tcp_key(vip4(), 81);
    assert_eq!(
        err(
            &mut lab,
            Request::EditService {
                spec: spec(missing, "rr")
            }
        ),
        ApiError::NoSuchService
    );
    assert_eq!(
        err(&mut lab, Request::DelService { key: missing }),
        ApiError::NoSuchService
    );
    assert_eq!(
        err(
            &mut lab,
            Request::Zero {
                service: Some(missing)
            }
        ),
        ApiError::NoSuchService
    );
    assert_eq!(
        err(&mut lab, Request::GetService { key: missing }),
        ApiError::NoSuchService
    );
    assert_eq!(
        err(
            &mut lab,
            Request::AddService {
                spec: spec(missing, "bogus")
            }
        ),
        ApiError::SchedulerNotFound
    );
    assert_eq!(
        err(
            &mut lab,
            Request::EditService {
                spec: spec(key, "fastest")
            }
        ),
        ApiError::SchedulerNotFound
    );
    // The failed edit changed nothing.
    assert_eq!(lab.service(key).spec.scheduler, "rr");
    // A persistence engine rvs does not have.
    let mut s = spec(missing, "rr");
    s.pe_name = Some("sip".into());
    assert_eq!(
        err(&mut lab, Request::AddService { spec: s }),
        ApiError::SchedulerNotFound
    );
    // fwmark 0 and an IPv6 prefix out of range.
    let fw0 = ServiceKey::Fwmark {
        mark: 0,
        family: Family::Inet,
    };
    assert_eq!(
        err(
            &mut lab,
            Request::AddService {
                spec: spec(fw0, "rr")
            }
        ),
        ApiError::Invalid
    );
    let mut s = spec(tcp_key(vip6(), 80), "rr");
    s.flags = svc_flags::PERSISTENT;
    s.netmask = Netmask::V6(129);
    assert_eq!(
        err(&mut lab, Request::AddService { spec: s }),
        ApiError::Invalid
    );
    // Nothing was added by the failed requests.
    match lab.req(Request::ListServices) {
        Response::Services { services } => assert_eq!(services.len(), 1),
        r => panic!("{r:?}"),
    }
}

#[test]
fn dest_errors() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    let missing = tcp_key(vip4(), 81);
    lab.ok(Request::AddService {
        spec: spec(key, "rr"),
    });
    let d = DestSpec::new(rip(false, 0), 80);
    assert_eq!(
        err(
            &mut lab,
            Request::AddDest {
                service: missing,
                dest: d.clone()
            }
        ),
        ApiError::ServiceNotDefined
    );
    assert_eq!(
        err(
            &mut lab,
            Request::EditDest {
                service: missing,
                dest: d.clone()
            }
        ),
        ApiError::ServiceNotDefined
    );
    assert_eq!(
        err(
            &mut lab,
            Request::DelDest {
                service: missing,
                addr: d.addr,
                port: 80
            }
        ),
        ApiError::ServiceNotDefined
    );
    lab.ok(Request::AddDest {
        service: key,
        dest: d.clone(),
    });
    assert_eq!(
        err(
            &mut lab,
            Request::AddDest {
                service: key,
                dest: d.clone()
            }
        ),
        ApiError::DestExists
    );
    let other = DestSpec::new(rip(false, 1), 80);
    assert_eq!(
        err(
            &mut lab,
            Request::EditDest {
                service: key,
                dest: other.clone()
            }
        ),
        ApiError::NoSuchDest
    );
    assert_eq!(
        err(
            &mut lab,
            Request::DelDest {
                service: key,
                addr: other.addr,
                port: 80
            }
        ),
        ApiError::NoSuchDest
    );
    // Same address, other port: another real server.
    assert_eq!(
        err(
            &mut lab,
            Request::DelDest {
                service: key,
                addr: d.addr,
                port: 81
            }
        ),
        ApiError::NoSuchDest
    );

    let mut t = DestSpec::new(rip(false, 1), 80);
    t.u_threshold = 10;
    t.l_threshold = 20;
    assert_eq!(
        err(
            &mut lab,
            Request::AddDest {
                service: key,
                dest: t.clone()
            }
        ),
        ApiError::OutOfRange
    );
    // `-y 5` without `-x` is l > u too.
    t.u_threshold = 0;
    t.l_threshold = 5;
    assert_eq!(
        err(
            &mut lab,
            Request::AddDest {
                service: key,
                dest: t.clone()
            }
        ),
        ApiError::OutOfRange
    );
    // Editing an existing server into l > u fails the same way and changes nothing.
    let mut e = d.clone();
    e.u_threshold = 1;
    e.l_threshold = 2;
    assert_eq!(
        err(
            &mut lab,
            Request::EditDest {
                service: key,
                dest: e
            }
        ),
        ApiError::OutOfRange
    );
    assert_eq!(lab.dest(key, d.addr).spec, d);

    for bad in ["224.0.0.1", "255.255.255.255", "0.0.0.0"] {
        let m = DestSpec::new(ip(bad), 80);
        assert_eq!(
            err(
                &mut lab,
                Request::AddDest {
                    service: key,
                    dest: m
                }
            ),
            ApiError::Invalid,
            "{bad}"
        );
    }
    let key6 = tcp_key(vip6(), 80);
    lab.ok(Request::AddService {
        spec: spec(key6, "rr"),
    });
    for bad in ["ff02::1", "::", "fe80::1"] {
        let m = DestSpec::new(ip(bad), 80);
        assert_eq!(
            err(
                &mut lab,
                Request::AddDest {
                    service: key6,
                    dest: m
                }
            ),
            ApiError::Invalid,
            "{bad}"
        );
    }
    // Mixed families only for tunnels.
    let mut mixed = DestSpec::new(rip(true, 0), 80);
    mixed.fwd_method = ForwardMethod::Masq;
    assert_eq!(
        err(
            &mut lab,
            Request::AddDest {
                service: key,
                dest: mixed.clone()
            }
        ),
        ApiError::Invalid
    );
    mixed.fwd_method = ForwardMethod::Tunnel;
    lab.ok(Request::AddDest {
        service: key,
        dest: mixed,
    });
    // GUE needs a port.
    let mut gue = DestSpec::new(rip(false, 5), 80);
    gue.fwd_method = ForwardMethod::Tunnel;
    gue.tun_type = TunnelType::Gue;
    assert_eq!(
        err(
            &mut lab,
            Request::AddDest {
                service: key,
                dest: gue
            }
        ),
        ApiError::Invalid
    );
    assert_eq!(lab.service(key).dests.len(), 2);
}

#[test]
fn edit_service_resets_omitted_options() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "sh", |s| {
        s.flags = svc_flags::PERSISTENT | svc_flags::SCHED1 | svc_flags::SCHED2;
        s.timeout = 600;
        s.netmask = Netmask::V4("255.255.255.0".parse().unwrap());
    });
    for i in 0..3 {
        lab.add_dest(key, rip(false, i), 80, ForwardMethod::Route, 1);
    }
    let vip = SocketAddr::new(vip4(), 80);
    let syn = |n: u32, port| {
        from_client(
            SocketAddr::new(client(false, n), port),
            vip,
            tcp_flags(TH_SYN),
            b"",
        )
    };
    let out = lab.run(lab.ext, &syn(1, 1000));
    assert_eq!(out.verdict, Verdict::Transmit(lab.int));
    // `-E -t VIP:80` with no other option: everything back to the defaults.
    lab.ok(Request::EditService {
        spec: ServiceSpec::new(key),
    });
    let s = lab.service(key).spec;
    assert_eq!(s.scheduler, "wlc");
    assert_eq!(s.flags, 0);
    assert_eq!(s.netmask, Netmask::V4("255.255.255.255".parse().unwrap()));
    // The real servers and the existing connection stay.
    assert_eq!(lab.service(key).dests.len(), 3);
    assert_eq!(
        lab.run(
            lab.ext,
            &from_client(
                SocketAddr::new(client(false, 1), 1000),
                vip,
                tcp_flags(TH_ACK),
                b""
            )
        )
        .verdict,
        Verdict::Transmit(lab.int)
    );
    // No more persistence: the same client's new connections are spread by wlc.
    let mut seen = std::collections::HashSet::new();
    for port in 2000..2006 {
        let out = lab.run(lab.ext, &syn(1, port));
        seen.insert(out.bytes[0..6].to_vec());
    }
    assert_eq!(seen.len(), 3, "wlc without persistence uses every server");
}

#[test]
fn edit_dest_resets_weight_and_method() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |_| {});
    let mut d = DestSpec::new(rip(false, 0), 80);
    d.fwd_method = ForwardMethod::Masq;
    d.weight = 7;
    d.u_threshold = 100;
    d.l_threshold = 10;
    lab.ok(Request::AddDest {
        service: key,
        dest: d.clone(),
    });
    lab.ok(Request::EditDest {
        service: key,
        dest: DestSpec::new(d.addr, 80),
    });
    let e = lab.dest(key, d.addr).spec;
    assert_eq!(
        (e.weight, e.fwd_method, e.u_threshold, e.l_threshold),
        (1, ForwardMethod::Route, 0, 0)
    );
    // And the packet path follows: DR now, so the destination address stays the VIP.
    let out = lab.run(
        lab.ext,
        &from_client(
            SocketAddr::new(client(false, 1), 1000),
            SocketAddr::new(vip4(), 80),
            tcp_flags(TH_SYN),
            b"",
        ),
    );
    let p = parse(&out.bytes);
    assert_eq!(p.ip.dst(), vip4());
    assert_eq!(&out.bytes[0..6], &rs_mac(0));
}

fn traffic(lab: &mut Lab, key: ServiceKey, n: u32) {
    let port = match key {
        ServiceKey::Addr { port, .. } => port,
        ServiceKey::Fwmark { .. } => unreachable!(),
    };
    let out = lab.run(
        lab.ext,
        &from_client(
            SocketAddr::new(client(false, n), 1000),
            SocketAddr::new(vip4(), port),
            tcp_flags(TH_SYN),
            b"hi",
        ),
    );
    assert!(matches!(out.verdict, Verdict::Transmit(_)));
}

#[test]
fn zero_one_service_or_everything() {
    let mut lab = Lab::new();
    let a = tcp_key(vip4(), 80);
    let b = tcp_key(vip4(), 81);
    for k in [a, b] {
        lab.add_service(k, "rr", |_| {});
        lab.add_dest(k, rip(false, 0), 0, ForwardMethod::Route, 1);
    }
    for n in 0..3 {
        traffic(&mut lab, a, n);
        traffic(&mut lab, b, n + 10);
    }
    // Rates need estimator ticks.
    lab.advance(Duration::from_secs(4));
    let one = Stats {
        conns: 3,
        inpkts: 3,
        inbytes: 3 * 42,
        ..Stats::default()
    };
    assert_eq!(lab.service(a).stats, one);
    assert!(lab.service(a).rates.inbps > 0);
    lab.ok(Request::Zero { service: Some(a) });
    assert_eq!(lab.service(a).stats, Stats::default());
    assert_eq!(lab.service(a).dests[0].stats, Stats::default());
    assert_eq!(lab.service(a).rates, rvs_api::Rates::default());
    assert_eq!(lab.service(b).stats, one, "other services untouched");
    assert_eq!(
        lab.engine.global_stats().0.conns,
        6,
        "global counters untouched"
    );
    // Counting resumes from the new zero.
    traffic(&mut lab, a, 20);
    assert_eq!(lab.service(a).stats.conns, 1);
    lab.ok(Request::Zero { service: None });
    assert_eq!(lab.service(a).stats, Stats::default());
    assert_eq!(lab.service(b).stats, Stats::default());
    assert_eq!(lab.engine.global_stats().0, Stats::default());
    // Zeroing touches counters only: the connections are still there.
    assert_eq!(lab.flows().len(), 7);
}

#[test]
fn set_timeouts_with_zeros_keeps_values() {
    let mut lab = Lab::new();
    let get = |lab: &mut Lab| match lab.req(Request::GetTimeouts) {
        Response::Timeouts { timeouts } => timeouts,
        r => panic!("{r:?}"),
    };
    assert_eq!(
        get(&mut lab),
        Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300
        }
    );
    lab.ok(Request::SetTimeouts {
        timeouts: Timeouts {
            tcp: 60,
            tcp_fin: 0,
            udp: 20,
        },
    });
    assert_eq!(
        get(&mut lab),
        Timeouts {
            tcp: 60,
            tcp_fin: 120,
            udp: 20
        }
    );
    lab.ok(Request::SetTimeouts {
        timeouts: Timeouts {
            tcp: 0,
            tcp_fin: 0,
            udp: 0,
        },
    });
    assert_eq!(
        get(&mut lab),
        Timeouts {
            tcp: 60,
            tcp_fin: 120,
            udp: 20
        }
    );
    // The packet path uses them.
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |_| {});
    lab.add_dest(key, rip(false, 0), 80, ForwardMethod::Route, 1);
    let c = SocketAddr::new(client(false, 1), 1000);
    let v = SocketAddr::new(vip4(), 80);
    lab.run(lab.ext, &from_client(c, v, tcp_flags(TH_SYN), b""));
    lab.run(lab.ext, &from_client(c, v, tcp_flags(TH_ACK), b""));
    assert_eq!(lab.flows()[0].expires_ms, 60_000);
    let u = udp_key(vip4(), 53);
    lab.add_service(u, "rr", |_| {});
    lab.add_dest(u, rip(false, 0), 53, ForwardMethod::Route, 1);
    lab.run(
        lab.ext,
        &from_client(c, SocketAddr::new(vip4(), 53), L4::Udp, b"q"),
    );
    let udp = lab.flows().into_iter().find(|f| f.protocol == 17).unwrap();
    assert_eq!(udp.expires_ms, 20_000);
}

#[test]
fn trash_revival_keeps_counters_and_connections() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |_| {});
    lab.add_dest(key, rip(false, 0), 80, ForwardMethod::Route, 1);
    let c = SocketAddr::new(client(false, 1), 1000);
    let v = SocketAddr::new(vip4(), 80);
    lab.run(lab.ext, &from_client(c, v, tcp_flags(TH_SYN), b""));
    lab.run(lab.ext, &from_client(c, v, tcp_flags(TH_ACK), b""));
    let before = lab.dest(key, rip(false, 0));
    assert_eq!(before.stats.conns, 1);
    lab.ok(Request::DelDest {
        service: key,
        addr: rip(false, 0),
        port: 80,
    });
    assert!(lab.service(key).dests.is_empty());
    assert_eq!(
        lab.run(lab.ext, &from_client(c, v, tcp_flags(TH_ACK), b""))
            .verdict,
        Verdict::Drop(DropReason::DestUnavailable)
    );
    // Re-added while its connection lives: the same real server comes back, counters and all.
    lab.add_dest(key, rip(false, 0), 80, ForwardMethod::Route, 3);
    let revived = lab.dest(key, rip(false, 0));
    assert_eq!(revived.stats, before.stats);
    assert_eq!((revived.activeconns, revived.inactconns), (1, 0));
    assert_eq!(revived.spec.weight, 3, "with the new parameters");
    // The old connection flows again.
    assert_eq!(
        lab.run(lab.ext, &from_client(c, v, tcp_flags(TH_ACK), b""))
            .verdict,
        Verdict::Transmit(lab.int)
    );
    assert_eq!(
        lab.dest(key, rip(false, 0)).stats.inpkts,
        before.stats.inpkts + 1
    );

    // Deleted again and re-added after its connections are gone: a fresh server.
    lab.ok(Request::DelDest {
        service: key,
        addr: rip(false, 0),
        port: 80,
    });
    lab.advance(Duration::from_secs(901));
    assert!(lab.flows().is_empty());
    lab.add_dest(key, rip(false, 0), 80, ForwardMethod::Route, 1);
    assert_eq!(lab.dest(key, rip(false, 0)).stats, Stats::default());
}

#[test]
fn trash_is_per_service() {
    // A real server deleted from one service is not revived by adding the same address to
    // another service.
    let mut lab = Lab::new();
    let a = tcp_key(vip4(), 80);
    let b = tcp_key(vip4(), 81);
    lab.add_service(a, "rr", |_| {});
    lab.add_service(b, "rr", |_| {});
    lab.add_dest(a, rip(false, 0), 0, ForwardMethod::Route, 1);
    traffic(&mut lab, a, 1);
    lab.ok(Request::DelDest {
        service: a,
        addr: rip(false, 0),
        port: 0,
    });
    lab.add_dest(b, rip(false, 0), 0, ForwardMethod::Route, 1);
    assert_eq!(lab.dest(b, rip(false, 0)).stats, Stats::default());
    assert_eq!(lab.dest(b, rip(false, 0)).activeconns, 0);
}

#[test]
fn deleting_a_service_keeps_its_connections_until_they_expire() {
    let mut lab = Lab::new();
    let a = tcp_key(vip4(), 80);
    lab.add_service(a, "rr", |_| {});
    lab.add_dest(a, rip(false, 0), 80, ForwardMethod::Route, 1);
    traffic(&mut lab, a, 1);
    lab.ok(Request::DelService { key: a });
    assert_eq!(lab.flows().len(), 1);
    // Its packets are dropped, new SYNs to the old VIP:port are not ours any more.
    let c = SocketAddr::new(client(false, 1), 1000);
    let v = SocketAddr::new(vip4(), 80);
    assert_eq!(
        lab.run(lab.ext, &from_client(c, v, tcp_flags(TH_ACK), b""))
            .verdict,
        Verdict::Drop(DropReason::DestUnavailable)
    );
    let other = SocketAddr::new(client(false, 2), 1000);
    assert_eq!(
        lab.run(lab.ext, &from_client(other, v, tcp_flags(TH_SYN), b""))
            .verdict,
        Verdict::Pass
    );
    lab.advance(Duration::from_secs(61));
    assert!(lab.flows().is_empty());
    assert_eq!(lab.engine.conn_count(), (0, 0));
}

#[test]
fn flush_removes_everything() {
    let mut lab = Lab::new();
    for port in [80, 443] {
        let k = tcp_key(vip4(), port);
        lab.add_service(k, "rr", |_| {});
        lab.add_dest(k, rip(false, 0), port, ForwardMethod::Route, 1);
    }
    lab.add_service(udp_key(vip6(), 53), "rr", |_| {});
    assert_eq!(lab.engine.steering().vip_addrs, vec![vip4(), vip6()]);
    lab.ok(Request::Flush);
    match lab.req(Request::ListServices) {
        Response::Services { services } => assert!(services.is_empty()),
        r => panic!("{r:?}"),
    }
    assert!(lab.engine.steering().vip_addrs.is_empty());
    let arp = arp_request(
        [2, 1, 1, 1, 1, 1],
        "198.18.0.9".parse().unwrap(),
        "198.18.0.100".parse().unwrap(),
    );
    assert_eq!(lab.run(lab.ext, &arp).verdict, Verdict::Pass);
}

#[test]
fn steering_lists_vips_and_nat_sources() {
    let mut lab = Lab::new();
    let t = tcp_key(vip4(), 80);
    lab.add_service(t, "rr", |_| {});
    lab.add_dest(t, rip(false, 0), 8080, ForwardMethod::Masq, 1);
    lab.add_dest(t, rip(false, 1), 80, ForwardMethod::Route, 1);
    let u = udp_key(vip4(), 53);
    lab.add_service(u, "rr", |_| {});
    let s = lab.engine.steering();
    assert_eq!(s.vips, vec![(6, vip4(), 80), (17, vip4(), 53)]);
    assert_eq!(s.vip_addrs, vec![vip4()]);
    assert_eq!(
        s.nat_sources,
        vec![(6, rip(false, 0), 8080)],
        "only NAT real servers"
    );
}

#[test]
fn counters_report_drops_and_connections() {
    let mut lab = Lab::new();
    let counters = |lab: &mut Lab| match lab.req(Request::GetCounters) {
        Response::Counters { counters } => counters,
        r => panic!("{r:?}"),
    };
    assert_eq!(
        counters(&mut lab),
        vec![
            ("engine.conns.ipv4".to_owned(), 0),
            ("engine.conns.ipv6".to_owned(), 0)
        ]
    );
    let arp = arp_request(
        [2, 1, 1, 1, 1, 1],
        "198.18.0.9".parse().unwrap(),
        "198.18.0.100".parse().unwrap(),
    );
    let out = lab.run(lab.ext, &arp[..30]);
    assert!(matches!(out.verdict, Verdict::Drop(_)), "{:?}", out.verdict);
    let got = counters(&mut lab);
    let drops: Vec<(String, u64)> = lab
        .engine
        .drop_counters()
        .into_iter()
        .map(|(r, n)| (format!("engine.drop.{r}"), n))
        .collect();
    assert_eq!(drops.iter().map(|(_, n)| n).sum::<u64>(), 1);
    assert_eq!(&got[..drops.len()], &drops[..]);
    assert_eq!(got.len(), drops.len() + 2);
}

#[test]
fn sysctls_and_info() {
    let mut lab = Lab::new();
    match lab.req(Request::GetSysctls) {
        Response::Sysctls { sysctls } => {
            assert!(sysctls.contains(&("conn_reuse_mode".to_owned(), 1)));
            assert!(sysctls.contains(&("expire_nodest_conn".to_owned(), 0)));
        }
        r => panic!("{r:?}"),
    }
    assert!(matches!(
        err(
            &mut lab,
            Request::SetSysctl {
                name: "secure_tcp".into(),
                value: 9
            }
        ),
        ApiError::Other(_)
    ));
    assert!(matches!(
        err(
            &mut lab,
            Request::SetSysctl {
                name: "nope".into(),
                value: 1
            }
        ),
        ApiError::Other(_)
    ));
    match lab.req(Request::GetInfo) {
        Response::Info { info } => {
            assert_eq!(info.version, 0x010201);
            assert!(info.conn_tab_size.is_power_of_two());
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn changing_the_scheduler_keeps_connections_and_counts() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |_| {});
    for i in 0..2 {
        lab.add_dest(key, rip(false, i), 80, ForwardMethod::Route, 1);
    }
    for n in 0..4 {
        traffic(&mut lab, key, n);
    }
    lab.ok(Request::EditService {
        spec: spec(key, "mh"),
    });
    assert_eq!(lab.flows().len(), 4);
    let total: u32 = lab.service(key).dests.iter().map(|d| d.activeconns).sum();
    assert_eq!(total, 4);
    traffic(&mut lab, key, 9);
    assert_eq!(lab.flows().len(), 5);
}

#[test]
fn trash_is_per_service_even_when_the_service_slot_is_reused() {
    // Service a is deleted while its real server still has a connection (trash); a new
    // service b takes over a's internal slot. Adding the same address to b must create a
    // fresh real server, not revive a's.
    let mut lab = Lab::new();
    let a = tcp_key(vip4(), 80);
    lab.add_service(a, "rr", |_| {});
    lab.add_dest(a, rip(false, 0), 0, ForwardMethod::Route, 1);
    traffic(&mut lab, a, 1);
    lab.ok(Request::DelService { key: a });
    let b = tcp_key(vip4(), 81);
    lab.add_service(b, "rr", |_| {});
    lab.add_dest(b, rip(false, 0), 0, ForwardMethod::Route, 1);
    let d = lab.dest(b, rip(false, 0));
    assert_eq!(
        d.stats,
        Stats::default(),
        "revived another service's real server"
    );
    assert_eq!((d.activeconns, d.inactconns), (0, 0));
    // a's old connection must not come back to life through b.
    let c = SocketAddr::new(client(false, 1), 1000);
    let v = SocketAddr::new(vip4(), 80);
    assert_eq!(
        lab.run(lab.ext, &from_client(c, v, tcp_flags(TH_ACK), b""))
            .verdict,
        Verdict::Drop(DropReason::DestUnavailable)
    );
}

#[test]
fn trash_revival_after_the_service_is_recreated() {
    // IPVS matches trashed real servers by service key: deleting and re-adding the service
    // (a reload) and then the real server brings the old one back with its connections.
    let mut lab = Lab::new();
    let a = tcp_key(vip4(), 80);
    lab.add_service(a, "rr", |_| {});
    lab.add_dest(a, rip(false, 0), 80, ForwardMethod::Route, 1);
    traffic(&mut lab, a, 1);
    lab.ok(Request::DelService { key: a });
    lab.add_service(tcp_key(vip4(), 443), "rr", |_| {});
    lab.add_service(a, "wlc", |_| {});
    lab.add_dest(a, rip(false, 0), 80, ForwardMethod::Route, 1);
    let d = lab.dest(a, rip(false, 0));
    assert_eq!((d.stats.conns, d.activeconns), (1, 1));
    let c = SocketAddr::new(client(false, 1), 1000);
    let v = SocketAddr::new(vip4(), 80);
    assert_eq!(
        lab.run(lab.ext, &from_client(c, v, tcp_flags(TH_ACK), b""))
            .verdict,
        Verdict::Transmit(lab.int)
    );
    assert_eq!(lab.service(a).stats.inpkts, 1, "counted in the new service");
}

#[test]
fn deleted_nat_server_stays_steered_while_its_connections_live() {
    let mut lab = Lab::new();
    let t = tcp_key(vip4(), 80);
    lab.add_service(t, "rr", |_| {});
    lab.add_dest(t, rip(false, 0), 8080, ForwardMethod::Masq, 1);
    let c = SocketAddr::new(client(false, 1), 40000);
    let out = lab.run(
        lab.ext,
        &from_client(c, SocketAddr::new(vip4(), 80), L4::Udp, b""),
    );
    assert_eq!(
        out.verdict,
        Verdict::Pass,
        "UDP to a TCP service is not ours"
    );
    let out = lab.run(
        lab.ext,
        &from_client(c, SocketAddr::new(vip4(), 80), tcp_flags(0x02), b""),
    );
    assert!(
        matches!(out.verdict, Verdict::Transmit(_)),
        "{:?}",
        out.verdict
    );
    lab.ok(Request::DelDest {
        service: t,
        addr: rip(false, 0),
        port: 8080,
    });
    // Its SYN_RECV connection lives on: replies of the deleted server must still reach the
    // engine, never be forwarded by the kernel with the RIP showing.
    assert_eq!(
        lab.engine.steering().nat_sources,
        vec![(6, rip(false, 0), 8080)]
    );
    // Once the connection has expired and the trash is purged, the entry goes.
    lab.advance_by_steps(Duration::from_secs(70), Duration::from_millis(500));
    assert_eq!(lab.engine.conn_count(), (0, 0));
    assert!(lab.engine.steering().nat_sources.is_empty());
}
