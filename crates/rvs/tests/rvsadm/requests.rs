//! What rvsadm sends for valid command lines (checklist 1, 2, 4, 5, 7, 9, 14, 16, 20, 21, 24).

use std::net::{IpAddr, Ipv4Addr};

use rvs_api::{
    DaemonRole, DaemonSpec, DestSpec, Family, ForwardMethod, Netmask, Protocol, Request,
    ServiceKey, ServiceSpec, Timeouts, TunnelType,
};

use crate::backend::{new_state, run};

/// Runs `line` (which must succeed) and returns the one request it sent.
fn sent(line: &str) -> Request {
    let st = new_state();
    // Give dest commands a service to work on.
    let o = run(&st, line);
    let log = st.borrow().log.clone();
    assert_eq!(log.len(), 1, "rvsadm {line}: {log:?} {o:?}");
    log[0].clone()
}

fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: addr.parse().unwrap(),
        port,
    }
}

fn add_spec(line: &str) -> ServiceSpec {
    match sent(line) {
        Request::AddService { spec } => spec,
        r => panic!("{line}: {r:?}"),
    }
}

fn add_dest(line: &str) -> (ServiceKey, DestSpec) {
    match sent(line) {
        Request::AddDest { service, dest } => (service, dest),
        r => panic!("{line}: {r:?}"),
    }
}

#[test]
fn add_service_defaults() {
    let spec = add_spec("-A -t 10.0.0.1:80");
    assert_eq!(spec, ServiceSpec::new(tcp("10.0.0.1", 80)));
    assert_eq!(spec.netmask, Netmask::V4(Ipv4Addr::BROADCAST));
}

#[test]
fn persistence_argument_forms() {
    for (line, timeout, sched) in [
        ("-A -t 10.0.0.1:80 -p", 360, "wlc"),
        ("-A -t 10.0.0.1:80 -p 600", 600, "wlc"),
        ("-A -t 10.0.0.1:80 -p600", 600, "wlc"),
        ("-A -t 10.0.0.1:80 --persistent=600", 600, "wlc"),
        ("-A -t 10.0.0.1:80 -p -s rr", 360, "rr"),
    ] {
        let spec = add_spec(line);
        assert_eq!(
            (spec.flags, spec.timeout, spec.scheduler.as_str()),
            (1, timeout, sched),
            "{line}"
        );
    }
    let spec = add_spec("-A -t 10.0.0.1 -p");
    assert_eq!((spec.key, spec.flags), (tcp("10.0.0.1", 0), 1));
}

#[test]
fn one_packet_scheduling() {
    assert_eq!(add_spec("-A -u 10.0.0.1:53 -o").flags, 0x4);
    let spec = add_spec("-A -f 5 -o");
    assert_eq!(
        (spec.key, spec.flags),
        (
            ServiceKey::Fwmark {
                mark: 5,
                family: Family::Inet
            },
            0x4
        )
    );
}

#[test]
fn scheduler_flags() {
    assert_eq!(
        add_spec("-A -t 10.0.0.1:80 -s sh -b sh-port,sh-fallback").flags,
        0x18
    );
    assert_eq!(add_spec("-A -t 10.0.0.1:80 -b flag-1,flag-3").flags, 0x28);
    // An empty list is ignored, as in ipvsadm.
    let st = new_state();
    let o = crate::backend::run_argv(&st, &["-A", "-t", "10.0.0.1:80", "-p", "-b", ""], "");
    assert_eq!(o.code, 0);
    let Request::AddService { spec } = &st.borrow().log[0] else {
        panic!()
    };
    assert_eq!(spec.flags, 0x1);
}

#[test]
fn fwmark_range_and_ipv6() {
    let spec = add_spec("-A -f 4294967295");
    assert_eq!(
        spec.key,
        ServiceKey::Fwmark {
            mark: u32::MAX,
            family: Family::Inet
        }
    );
    let spec = add_spec("-A -f 1 -6 -p -M 64");
    assert_eq!(
        spec.key,
        ServiceKey::Fwmark {
            mark: 1,
            family: Family::Inet6
        }
    );
    assert_eq!(spec.netmask, Netmask::V6(64));
}

#[test]
fn netmasks() {
    assert_eq!(
        add_spec("-A -t [2001:db8::1]:80 -p -M 64").netmask,
        Netmask::V6(64)
    );
    // -M before an IPv6 service is overridden by it.
    assert_eq!(
        add_spec("-A -M 64 -t [2001:db8::1]:80 -p").netmask,
        Netmask::V6(128)
    );
    assert_eq!(
        add_spec("-A -t 10.0.0.1:80 -p -M 255.255.255.0").netmask,
        Netmask::V4(Ipv4Addr::new(255, 255, 255, 0))
    );
    // inet_aton forms are masks too.
    assert_eq!(
        add_spec("-A -t 10.0.0.1:80 -p -M 0xffff0000").netmask,
        Netmask::V4(Ipv4Addr::new(255, 255, 0, 0))
    );
}

#[test]
fn address_forms() {
    assert_eq!(add_spec("-A -t 10.1:80").key, tcp("10.0.0.1", 80));
    assert_eq!(add_spec("-A -t 0x0a000001:http").key, tcp("10.0.0.1", 80));
    assert_eq!(add_spec("-A -t localhost:https").key, tcp("127.0.0.1", 443));
    assert_eq!(add_spec("-At10.0.0.1:www").key, tcp("10.0.0.1", 80));
    assert_eq!(
        add_spec("-A -t [2001:db8::1]:80").key,
        tcp("2001:db8::1", 80)
    );
    // A bare IPv6 address has no port: the last group is part of the address.
    assert_eq!(
        add_spec("-A -t 2001:db8::1:80 -p").key,
        tcp("2001:db8::1:80", 0)
    );
    // ipvsadm re-splits a bracketed non-IPv6 word, losing the port.
    assert_eq!(add_spec("-A -t [10.0.0.1]:80 -p").key, tcp("10.0.0.1", 0));
    let spec = add_spec("-A -u 10.0.0.1:domain");
    assert_eq!(
        spec.key,
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 53
        }
    );
    let spec = add_spec("-A --sctp-service 10.0.0.2:9999 -s mh -b mh-fallback");
    assert_eq!(
        (spec.key, spec.flags),
        (
            ServiceKey::Addr {
                protocol: Protocol::Sctp,
                addr: "10.0.0.2".parse().unwrap(),
                port: 9999
            },
            0x8
        )
    );
}

#[test]
fn real_server_ports_and_methods() {
    let (svc, d) = add_dest("-a -t 10.0.0.1:80 -r 192.168.1.1");
    assert_eq!(svc, tcp("10.0.0.1", 80));
    assert_eq!(d, DestSpec::new("192.168.1.1".parse().unwrap(), 80));
    let (_, d) = add_dest("-a -t 10.0.0.1:80 -r 192.168.1.1:8080 -i");
    assert_eq!((d.port, d.fwd_method), (80, ForwardMethod::Tunnel));
    let (_, d) = add_dest("-a -t 10.0.0.1:80 -r 192.168.1.1:8080 -m");
    assert_eq!((d.port, d.fwd_method), (8080, ForwardMethod::Masq));
    // The port copy happens when -r is read: before -t it is 0.
    let (_, d) = add_dest("-a -r 192.168.1.1 -t 10.0.0.1:80 -m");
    assert_eq!(d.port, 0);
    let (_, d) = add_dest("-a -t 10.0.0.1:80 -r 192.168.1.1:http-alt -m -w 3 -x 100 -y 50");
    assert_eq!(
        (d.port, d.weight, d.u_threshold, d.l_threshold),
        (8080, 3, 100, 50)
    );
    let (_, d) = add_dest("-a -f 1 -r 192.168.2.1 -g -w 5");
    assert_eq!((d.port, d.weight), (0, 5));
}

#[test]
fn mixed_family_only_for_tunnels() {
    let (_, d) = add_dest("-a -t 10.0.0.1:80 -r [2001:db8::1]:80 -i");
    assert_eq!(d.addr, "2001:db8::1".parse::<IpAddr>().unwrap());
    assert_eq!(d.fwd_method, ForwardMethod::Tunnel);
}

#[test]
fn tunnel_options() {
    let (_, d) = add_dest(
        "-a -t 10.0.0.1:443 -r 192.168.1.11 -i -w 3 --tun-type gue --tun-port 6080 --tun-csum",
    );
    assert_eq!(
        (d.tun_type, d.tun_port, d.tun_flags, d.weight),
        (TunnelType::Gue, 6080, 1, 3)
    );
    let (_, d) = add_dest("-a -t 10.0.0.1:443 -r 192.168.1.12 -i --tun-type gre --tun-nocsum");
    assert_eq!((d.tun_type, d.tun_flags), (TunnelType::Gre, 0));
}

#[test]
fn edit_is_a_full_replacement() {
    let Request::EditService { spec } = sent("-E -t 10.0.0.1:80") else {
        panic!()
    };
    assert_eq!(spec, ServiceSpec::new(tcp("10.0.0.1", 80)));
    let Request::EditDest { dest, .. } = sent("-e -t 10.0.0.1:80 -r 1.2.3.4") else {
        panic!()
    };
    assert_eq!(dest, DestSpec::new("1.2.3.4".parse().unwrap(), 80));
}

#[test]
fn delete_zero_flush() {
    assert_eq!(
        sent("-D -f 1 -6"),
        Request::DelService {
            key: ServiceKey::Fwmark {
                mark: 1,
                family: Family::Inet6
            }
        }
    );
    assert_eq!(
        sent("-d -t 10.0.0.1:80 -r 1.1.1.1"),
        Request::DelDest {
            service: tcp("10.0.0.1", 80),
            addr: "1.1.1.1".parse().unwrap(),
            port: 80
        }
    );
    assert_eq!(
        sent("-d -t 10.0.0.1:80 -r 1.1.1.1:99"),
        Request::DelDest {
            service: tcp("10.0.0.1", 80),
            addr: "1.1.1.1".parse().unwrap(),
            port: 99
        }
    );
    assert_eq!(sent("-Z"), Request::Zero { service: None });
    assert_eq!(
        sent("-Z -t 10.0.0.1:80"),
        Request::Zero {
            service: Some(tcp("10.0.0.1", 80))
        }
    );
    assert_eq!(sent("-C"), Request::Flush);
    assert_eq!(sent("--clear"), Request::Flush);
}

#[test]
fn set_timeouts() {
    assert_eq!(
        sent("--set 10 20 30"),
        Request::SetTimeouts {
            timeouts: Timeouts {
                tcp: 10,
                tcp_fin: 20,
                udp: 30
            }
        }
    );
}

#[test]
fn sync_daemons() {
    assert_eq!(
        sent("--start-daemon master"),
        Request::StartDaemon {
            spec: DaemonSpec {
                role: DaemonRole::Master,
                mcast_ifn: "eth0".to_owned(),
                syncid: 0,
                sync_maxlen: 0,
                mcast_group: None,
                mcast_port: 0,
                mcast_ttl: 0,
            }
        }
    );
    assert_eq!(
        sent(
            "--start-daemon backup --mcast-interface veth0 --syncid 5 --sync-maxlen 1400 --mcast-group ff02::81 --mcast-port 9000 --mcast-ttl 3"
        ),
        Request::StartDaemon {
            spec: DaemonSpec {
                role: DaemonRole::Backup,
                mcast_ifn: "veth0".to_owned(),
                syncid: 5,
                sync_maxlen: 1400,
                mcast_group: Some("ff02::81".parse().unwrap()),
                mcast_port: 9000,
                mcast_ttl: 3,
            }
        }
    );
    assert_eq!(
        sent("--stop-daemon backup --syncid 3"),
        Request::StopDaemon {
            role: DaemonRole::Backup
        }
    );
}

#[test]
fn help_version_and_failures_need_no_daemon() {
    let st = new_state();
    let o = run(&st, "-h");
    assert_eq!(o.code, 0);
    assert!(o.stdout.starts_with(
        "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\nUsage:\n  ipvsadm -A|E"
    ));
    let o = run(&st, "-v extra words");
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (
            0,
            "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n"
        )
    );
    assert_eq!(st.borrow().connects, 0);
}
