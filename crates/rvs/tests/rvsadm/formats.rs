//! Output formats: golden snapshots of every listing (ipvs.md §2) and the exact strings of
//! checklist items 26–39. The snapshots were compared byte for byte with ipvsadm 1.31 built
//! against a stub libipvs holding the same tables (the only intended difference: fwmarks are
//! printed unsigned).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rvs_engine::Verdict;
use rvs_wire::TcpFlags;

use rvs_api::{
    ConnEntry, DaemonRole, DaemonSpec, DestEntry, DestSpec, Family, ForwardMethod, Netmask,
    Protocol, Rates, ServiceEntry, ServiceKey, ServiceSpec, Stats, TunnelType, conn_flags,
};

use crate::backend::{EngineLab, Shared, canned_state, new_state, ok, run};

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn svc(key: ServiceKey, sched: &str, flags: u32, timeout: u32, netmask: Netmask) -> ServiceEntry {
    ServiceEntry {
        spec: ServiceSpec {
            key,
            scheduler: sched.to_owned(),
            pe_name: None,
            flags,
            timeout,
            netmask,
        },
        stats: Stats::default(),
        rates: Rates::default(),
        dests: Vec::new(),
    }
}

fn key(p: Protocol, a: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: p,
        addr: addr(a),
        port,
    }
}

fn dest(a: &str, port: u16, fwd: ForwardMethod, weight: u32, active: u32, inact: u32) -> DestEntry {
    let mut spec = DestSpec::new(addr(a), port);
    spec.fwd_method = fwd;
    spec.weight = weight;
    DestEntry {
        spec,
        activeconns: active,
        inactconns: inact,
        persistconns: 0,
        stats: Stats::default(),
        rates: Rates::default(),
    }
}

fn v4mask(s: &str) -> Netmask {
    Netmask::V4(s.parse().unwrap())
}

const HOST: &str = "255.255.255.255";

/// The mixed table of ipvs.md §2.2 (plus counters for §2.3), in a scrambled daemon order.
fn mixed() -> Shared {
    let st = canned_state();
    let mut s = Vec::new();

    let mut fwm6 = svc(
        ServiceKey::Fwmark {
            mark: 2882430849,
            family: Family::Inet6,
        },
        "lc",
        1,
        300,
        Netmask::V6(64),
    );
    fwm6.spec.pe_name = Some("sip".to_owned());
    s.push(fwm6);
    s.push(svc(
        key(Protocol::Tcp, "10.0.0.1", 0),
        "lblcr",
        0x21,
        360,
        v4mask(HOST),
    ));

    let mut web = svc(
        key(Protocol::Tcp, "10.0.0.1", 80),
        "wlc",
        0,
        0,
        v4mask(HOST),
    );
    web.stats = Stats {
        conns: 1234,
        inpkts: 99_999_999,
        outpkts: 100_000_000,
        inbytes: 999_999_999,
        outbytes: 123_456_789_012_345,
    };
    web.rates = Rates {
        cps: 5,
        inpps: 6,
        outpps: 7,
        inbps: 8,
        outbps: 9,
    };
    let mut d1 = dest(
        "192.168.1.1",
        8080,
        ForwardMethod::Masq,
        0,
        4_294_967_295,
        0,
    );
    d1.stats = Stats {
        conns: 1,
        inpkts: 2,
        outpkts: 3,
        inbytes: 4,
        outbytes: 5,
    };
    d1.rates = Rates {
        cps: 6,
        inpps: 7,
        outpps: 8,
        inbps: 9,
        outbps: 10,
    };
    let mut d2 = dest("192.168.1.2", 8080, ForwardMethod::Masq, 100, 0, 0);
    d2.stats = Stats {
        conns: 617,
        inpkts: 5,
        outpkts: 0,
        inbytes: 1_000_000_000,
        outbytes: 99_999_999_999_999,
    };
    d2.rates = Rates {
        cps: 100_000_000,
        inpps: 200_000_000,
        outpps: 3,
        inbps: 4_000_000_000,
        outbps: 5,
    };
    web.dests = vec![d2, d1];
    s.push(web);

    let mut https = svc(
        key(Protocol::Tcp, "10.0.0.1", 443),
        "sh",
        0x19,
        600,
        v4mask("255.255.255.0"),
    );
    let mut gue = dest("192.168.1.11", 443, ForwardMethod::Tunnel, 3, 12, 3);
    gue.spec.tun_type = TunnelType::Gue;
    gue.spec.tun_port = 6080;
    gue.spec.tun_flags = 1;
    gue.spec.u_threshold = 10;
    gue.spec.l_threshold = 5;
    gue.persistconns = 4;
    let mut gre = dest("192.168.1.12", 443, ForwardMethod::Tunnel, 1, 0, 0);
    gre.spec.tun_type = TunnelType::Gre;
    let ipip = dest("192.168.1.13", 443, ForwardMethod::Tunnel, 1, 0, 0);
    https.dests = vec![
        ipip,
        dest("127.0.0.1", 443, ForwardMethod::Local, 0, 0, 0),
        gre,
        gue,
    ];
    s.push(https);

    let mut dns = svc(
        key(Protocol::Udp, "10.0.0.1", 53),
        "rr",
        0x4,
        0,
        v4mask(HOST),
    );
    dns.dests = vec![dest("192.168.1.10", 53, ForwardMethod::Route, 2, 0, 7)];
    s.push(dns);
    s.push(svc(
        key(Protocol::Sctp, "10.0.0.2", 9999),
        "mh",
        0x8,
        0,
        v4mask(HOST),
    ));
    let mut v6 = svc(
        key(Protocol::Tcp, "2001:db8::80", 80),
        "wlc",
        1,
        300,
        Netmask::V6(64),
    );
    v6.dests = vec![
        dest("192.168.3.3", 80, ForwardMethod::Tunnel, 1, 0, 0),
        dest("2001:db8::a0a0", 80, ForwardMethod::Masq, 1, 0, 0),
    ];
    s.push(v6);
    let mut fwm1 = svc(
        ServiceKey::Fwmark {
            mark: 1,
            family: Family::Inet,
        },
        "wrr",
        1,
        360,
        v4mask(HOST),
    );
    fwm1.dests = vec![dest("192.168.2.1", 0, ForwardMethod::Route, 5, 0, 0)];
    s.push(fwm1);
    // Wrapping comparisons: 200.0.0.1 - 1.0.0.1 is negative as an int.
    let mut wrap = svc(
        key(Protocol::Tcp, "200.0.0.1", 80),
        "rr",
        0,
        0,
        v4mask(HOST),
    );
    wrap.dests = vec![
        dest("200.0.0.1", 80, ForwardMethod::Route, 1, 0, 0),
        dest("1.0.0.1", 80, ForwardMethod::Route, 1, 0, 0),
        dest("100.0.0.1", 80, ForwardMethod::Route, 1, 0, 0),
        dest("100.0.0.1", 81, ForwardMethod::Route, 1, 0, 0),
    ];
    s.push(wrap);
    s.push(svc(
        key(Protocol::Tcp, "1.0.0.1", 80),
        "rr",
        0,
        0,
        v4mask(HOST),
    ));
    s.push(svc(
        key(Protocol::Tcp, "100.0.0.1", 80),
        "rr",
        0,
        0,
        v4mask(HOST),
    ));
    // Names: localhost and a long name that the 28/33-column truncation cuts.
    let mut named = svc(
        key(Protocol::Tcp, "192.0.2.77", 443),
        "wlc",
        0,
        0,
        v4mask(HOST),
    );
    named.dests = vec![
        dest("192.0.2.77", 8080, ForwardMethod::Masq, 1, 0, 0),
        dest("127.0.0.1", 80, ForwardMethod::Masq, 1, 0, 0),
    ];
    s.push(named);

    st.borrow_mut().canned().services = s;
    st
}

fn out(st: &Shared, line: &str) -> String {
    let o = run(st, line);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""), "rvsadm {line}");
    o.stdout
}

macro_rules! snapshot {
    ($name:ident, $state:expr, $line:expr) => {
        #[test]
        fn $name() {
            let st = $state;
            insta::assert_snapshot!(stringify!($name), out(&st, $line), $line);
        }
    };
}

snapshot!(list_numeric, mixed(), "-L -n");
snapshot!(list_names, mixed(), "-L");
snapshot!(list_no_arguments_is_list, mixed(), "");
snapshot!(list_nosort, mixed(), "-Ln --nosort");
snapshot!(list_stats, mixed(), "-Ln --stats");
snapshot!(list_stats_exact, mixed(), "-Ln --stats --exact");
snapshot!(list_rate, mixed(), "-Ln --rate");
snapshot!(list_rate_exact, mixed(), "-Ln --rate -X");
snapshot!(list_thresholds, mixed(), "-Ln --thresholds");
snapshot!(list_persistent_conn, mixed(), "-Ln --persistent-conn");
snapshot!(list_tun_info, mixed(), "-Ln --tun-info");
snapshot!(
    list_precedence,
    mixed(),
    "-Ln --thresholds --persistent-conn --tun-info --rate"
);
snapshot!(list_single_service, mixed(), "-L -n -t 10.0.0.1:443");
snapshot!(
    list_single_service_stats,
    mixed(),
    "-L -n -t 10.0.0.1:80 --stats"
);
snapshot!(list_single_fwmark_names, mixed(), "-L -f 1");
snapshot!(save_numeric, mixed(), "-S -n");
snapshot!(save_names, mixed(), "-S");
snapshot!(json_services, mixed(), "-L --json -t 10.0.0.1:80");

fn conns() -> Shared {
    let st = canned_state();
    let c =
        |p: u8, ca: &str, cp: u16, va: &str, vp: u16, da: &str, dp: u16, state: &str, secs: u64| {
            ConnEntry {
                protocol: p,
                caddr: addr(ca),
                cport: cp,
                vaddr: addr(va),
                vport: vp,
                daddr: addr(da),
                dport: dp,
                state: state.to_owned(),
                expires_ms: secs * 1000 + 999,
                flags: 0,
                pe_name: None,
                pe_data: None,
            }
        };
    let mut list = vec![
        c(
            6,
            "192.168.1.100",
            54321,
            "10.0.0.1",
            80,
            "192.168.1.2",
            8080,
            "ESTABLISHED",
            898,
        ),
        c(
            6,
            "192.168.1.100",
            54322,
            "10.0.0.1",
            80,
            "192.168.1.1",
            8080,
            "FIN_WAIT",
            119,
        ),
        c(
            17,
            "192.168.1.101",
            32769,
            "10.0.0.1",
            53,
            "192.168.1.10",
            53,
            "UDP",
            299,
        ),
        c(
            6,
            "192.168.1.0",
            0,
            "10.0.0.1",
            443,
            "192.168.1.11",
            443,
            "ASSURED",
            3599,
        ),
        c(
            0,
            "192.168.1.100",
            0,
            "0.0.0.1",
            0,
            "192.168.2.1",
            0,
            "NONE",
            359,
        ),
        c(
            6,
            "2001:db8::1",
            50000,
            "2001:db8::80",
            80,
            "2001:db8::a0a0",
            80,
            "SYN_RECV",
            59,
        ),
        c(
            17,
            "127.0.0.1",
            5060,
            "10.0.0.1",
            5060,
            "127.0.0.1",
            5060,
            "UDP",
            7200,
        ),
        c(
            132,
            "10.9.9.9",
            1000,
            "10.0.0.2",
            9999,
            "1.2.3.4",
            9999,
            "ESTABLISHED",
            1,
        ),
    ];
    list[6].pe_name = Some("sip".to_owned());
    list[6].pe_data = Some("abc@example".to_owned());
    let mut ops = c(
        17,
        "10.1.1.1",
        1,
        "10.0.0.1",
        53,
        "192.168.1.10",
        53,
        "UDP",
        1,
    );
    ops.flags = conn_flags::ONE_PACKET;
    list.push(ops);
    st.borrow_mut().canned().conns = list;
    st
}

snapshot!(conns_numeric, conns(), "-L -n -c");
snapshot!(conns_names, conns(), "-Lc");
snapshot!(conns_persistent, conns(), "-Lnc --persistent-conn");
snapshot!(conns_json, conns(), "-L -c --json");

fn daemons() -> Shared {
    let st = canned_state();
    st.borrow_mut().canned().daemons = vec![
        DaemonSpec {
            role: DaemonRole::Backup,
            mcast_ifn: "eth1".to_owned(),
            syncid: 5,
            sync_maxlen: 8972,
            mcast_group: Some(addr("ff02::81")),
            mcast_port: 8848,
            mcast_ttl: 1,
        },
        DaemonSpec {
            role: DaemonRole::Master,
            mcast_ifn: "eth0".to_owned(),
            syncid: 0,
            sync_maxlen: 1472,
            mcast_group: Some(addr("224.0.0.81")),
            mcast_port: 8848,
            mcast_ttl: 1,
        },
    ];
    st
}

snapshot!(daemons_list, daemons(), "-L --daemon");
snapshot!(daemons_json, daemons(), "-L --daemon --json");
snapshot!(help, new_state(), "-h");

// --- checklist 26–39, exact strings ---

/// The configuration of checklist item 26, built through rvsadm itself.
fn item26() -> Shared {
    let st = new_state();
    ok(&st, "-A -t 10.0.0.1:80 -s wlc");
    ok(&st, "-a -t 10.0.0.1:80 -r 192.168.1.1:80 -m");
    ok(&st, "-a -t 10.0.0.1:80 -r 192.168.1.2:80 -m");
    st
}

const HEADER: &str = "IP Virtual Server version 1.2.1 (size=4096)\n";

#[test]
fn item26_plain_list() {
    let want = format!(
        "{HEADER}Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
         TCP  10.0.0.1:80 wlc\n  -> 192.168.1.1:80               Masq    1      0          0         \n\
         \x20 -> 192.168.1.2:80               Masq    1      0          0         \n"
    );
    assert_eq!(out(&item26(), "-L -n"), want);
}

#[test]
fn item27_stats() {
    let want = format!(
        "{HEADER}Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n\
         TCP  10.0.0.1:80                         0        0        0        0        0\n\
         \x20 -> 192.168.1.1:80                      0        0        0        0        0\n\
         \x20 -> 192.168.1.2:80                      0        0        0        0        0\n"
    );
    assert_eq!(out(&item26(), "-L -n --stats"), want);
}

#[test]
fn item28_rate_title() {
    let o = out(&item26(), "-L -n --rate");
    assert_eq!(
        o.lines().nth(1),
        Some("Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS")
    );
}

#[test]
fn item29_thresholds() {
    let o = out(&item26(), "-L -n --thresholds");
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(
        lines[1],
        "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn "
    );
    assert_eq!(
        lines[4],
        "  -> 192.168.1.1:80               0          0          0          0         "
    );
}

#[test]
fn item30_persistent_conn() {
    let o = out(&item26(), "-L -n --persistent-conn");
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(
        lines[1],
        "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn "
    );
    assert_eq!(
        lines[4],
        "  -> 192.168.1.1:80               1         0           0          0         "
    );
}

#[test]
fn item31_number_formatting() {
    // The engine's table, frozen so the counters can be set beyond what traffic would give.
    let st = item26();
    st.borrow_mut().freeze();
    let set = |v: u64| {
        st.borrow_mut().canned().services[0].stats = Stats {
            conns: v,
            inpkts: 0,
            outpkts: 0,
            inbytes: 0,
            outbytes: 0,
        };
    };
    for (v, plain, exact) in [
        (99_999_999u64, " 99999999", " 99999999"),
        (100_000_000, "  100000K", " 100000000"),
        (1_000_000_000, "    1000M", " 1000000000"),
        (99_999_999_999_999, "   99999G", " 99999999999999"),
        (123_456_789_012_345, "     123T", " 123456789012345"),
    ] {
        set(v);
        let row = |line: &str| out(&st, line).lines().nth(3).unwrap().to_owned();
        assert_eq!(&row("-Ln --stats")[33..42], plain, "{v}");
        assert!(
            row("-Ln --stats --exact")[33..].starts_with(&format!("{exact} ")),
            "{v}"
        );
    }
}

#[test]
fn item32_save() {
    assert_eq!(
        out(&item26(), "-S -n"),
        "-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 192.168.1.1:80 -m -w 1\n-a -t 10.0.0.1:80 -r 192.168.1.2:80 -m -w 1\n"
    );
}

#[test]
fn item33_34_service_flags() {
    let st = new_state();
    ok(
        &st,
        "-A -t 10.0.0.1:443 -s sh -p 600 -M 255.255.255.0 -b sh-fallback,sh-port",
    );
    ok(&st, "-A -u 10.0.0.1:53 -s rr -o");
    ok(&st, "-A --sctp-service 10.0.0.2:9999 -s mh -b mh-fallback");
    let list = out(&st, "-Ln");
    assert!(list.contains(
        "\nTCP  10.0.0.1:443 sh (sh-fallback,sh-port) persistent 600 mask 255.255.255.0\n"
    ));
    assert!(list.contains("\nUDP  10.0.0.1:53 rr ops\n"));
    assert!(list.contains("\nSCTP 10.0.0.2:9999 mh (mh-fallback)\n"));
    let save = out(&st, "-S -n");
    assert!(
        save.contains("-A -t 10.0.0.1:443 -s sh -p 600 -M 255.255.255.0 -b sh-fallback,sh-port\n")
    );
    assert!(save.contains("-A -u 10.0.0.1:53 -s rr -o\n"));
}

#[test]
fn item35_tunnel_info() {
    let st = new_state();
    ok(&st, "-A -t 10.0.0.1:443");
    ok(
        &st,
        "-a -t 10.0.0.1:443 -r 192.168.1.11 -i -w 3 --tun-type gue --tun-port 6080 --tun-csum",
    );
    ok(
        &st,
        "-a -t 10.0.0.1:443 -r 192.168.1.12 -i --tun-type gre --tun-nocsum",
    );
    ok(&st, "-a -t 10.0.0.1:443 -r 192.168.1.2:8080 -m -w 100");
    let info = out(&st, "-Ln --tun-info");
    assert!(info.contains(
        "\n  -> 192.168.1.11:443             Tunnel  gue:6080:+c   3      0          0         \n"
    ));
    assert!(info.contains(
        "\n  -> 192.168.1.12:443             Tunnel  gre:-c        1      0          0         \n"
    ));
    assert!(info.contains(
        "\n  -> 192.168.1.2:8080             Masq    n/a           100    0          0         \n"
    ));
    let save = out(&st, "-S -n");
    assert!(
        save.contains("-r 192.168.1.11:443 -i -w 3 --tun-type gue --tun-port 6080 --tun-csum\n")
    );
    assert!(save.contains("-r 192.168.1.12:443 -i -w 1 --tun-type gre --tun-nocsum\n"));
}

#[test]
fn item36_timeouts() {
    let st = new_state();
    assert_eq!(
        out(&st, "-L --timeout"),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    ok(&st, "--set 60 30 20");
    assert_eq!(
        out(&st, "-L --timeout"),
        "Timeout (tcp tcpfin udp): 60 30 20\n"
    );
    ok(&st, "--set 0 0 0");
    assert_eq!(
        out(&st, "-L --timeout"),
        "Timeout (tcp tcpfin udp): 60 30 20\n"
    );
    assert_eq!(
        out(&st, "-L --timeout --json"),
        "{\n  \"tcp\": 60,\n  \"tcp_fin\": 30,\n  \"udp\": 20\n}\n"
    );
}

#[test]
fn item37_daemons() {
    assert_eq!(out(&new_state(), "-L --daemon"), "");
    let st = canned_state();
    st.borrow_mut().canned().daemons = vec![DaemonSpec {
        role: DaemonRole::Master,
        mcast_ifn: "eth0".to_owned(),
        syncid: 0,
        sync_maxlen: 1472,
        mcast_group: Some(addr("224.0.0.81")),
        mcast_port: 8848,
        mcast_ttl: 1,
    }];
    assert_eq!(
        out(&st, "-L --daemon"),
        "master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
    );
}

#[test]
fn item38_connections() {
    let o = out(&conns(), "-L -n -c");
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines[0], "IPVS connection entries");
    assert_eq!(
        lines[1],
        "pro expire state       source             virtual            destination"
    );
    assert_eq!(
        lines[2],
        "TCP 14:58  ESTABLISHED 192.168.1.100:54321 10.0.0.1:80        192.168.1.2:8080"
    );
    assert_eq!(
        lines[5],
        "TCP 59:59  ASSURED     192.168.1.0:0      10.0.0.1:443       192.168.1.11:443"
    );
    assert_eq!(
        lines[8],
        "UDP 120:00 UDP         127.0.0.1:5060     10.0.0.1:5060      127.0.0.1:5060"
    );
    // One-packet connections are never listed.
    assert_eq!(lines.len(), 10);
}

#[test]
fn item39_order() {
    let o = out(&mixed(), "-Ln");
    let services: Vec<&str> = o
        .lines()
        .skip(3)
        .filter(|l| !l.starts_with("  ->"))
        .collect();
    assert_eq!(
        services,
        [
            // Wrapping int comparisons, as ipvsadm: a mark >= 2^31 minus 0 is negative, and
            // 200.0.0.1 - 1.0.0.1 is negative too, so neither order is a plain numeric one.
            "FWM  2882430849 IPv6 lc persistent 300 mask 64 pe sip",
            "TCP  200.0.0.1:80 rr",
            "TCP  1.0.0.1:80 rr",
            "TCP  10.0.0.1:0 lblcr (flag-3) persistent 360",
            "TCP  10.0.0.1:80 wlc",
            "TCP  10.0.0.1:443 sh (sh-fallback,sh-port) persistent 600 mask 255.255.255.0",
            "TCP  100.0.0.1:80 rr",
            "TCP  192.0.2.77:443 wlc",
            "UDP  10.0.0.1:53 rr ops",
            "SCTP 10.0.0.2:9999 mh (mh-fallback)",
            "TCP  [2001:db8::80]:80 wlc persistent 300 mask 64",
            "FWM  1 wrr persistent 360",
        ]
    );
    // --nosort keeps the daemon's order, newest real server first.
    let st = new_state();
    ok(&st, "-A -t 10.0.0.1:80");
    ok(&st, "-a -t 10.0.0.1:80 -r 192.168.1.1");
    ok(&st, "-a -t 10.0.0.1:80 -r 192.168.1.2");
    let dests = |line: &str| -> Vec<String> {
        out(&st, line)
            .lines()
            .skip(3)
            .filter(|l| l.starts_with("  ->"))
            .map(|l| l[5..20].trim().to_owned())
            .collect()
    };
    assert_eq!(dests("-Ln"), ["192.168.1.1:80", "192.168.1.2:80"]);
    assert_eq!(dests("-Ln --nosort"), ["192.168.1.2:80", "192.168.1.1:80"]);
}

#[test]
fn item24_edit_resets() {
    let st = new_state();
    ok(&st, "-A -t 10.0.0.1:80 -s rr -p 600 -M 255.255.255.0");
    ok(&st, "-a -t 10.0.0.1:80 -r 192.168.1.1 -w 5 -x 10 -y 2");
    ok(&st, "-E -t 10.0.0.1:80");
    ok(&st, "-e -t 10.0.0.1:80 -r 192.168.1.1");
    assert_eq!(
        out(&st, "-S -n"),
        "-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 192.168.1.1:80 -g -w 1\n"
    );
}

/// Real counters and connections: TCP through the engine (direct routing), then `-L --stats`,
/// `-L -c` and `-Z`. IPVS zeroes statistics, never the connection counts.
#[test]
fn engine_traffic_counters_connections_and_zero() {
    let st = new_state();
    ok(&st, "-A -t 198.18.0.100:80 -s rr");
    ok(&st, "-a -t 198.18.0.100:80 -r 198.18.0.11 -g");
    ok(&st, "-a -t 198.18.0.100:80 -r 198.18.0.12 -g -w 2");
    ok(&st, "-A -t [2001:db8::100]:443 -s wrr");
    ok(&st, "-a -t [2001:db8::100]:443 -r [2001:db8::13]:443 -g");
    let vip4: SocketAddr = "198.18.0.100:80".parse().unwrap();
    let vip6: SocketAddr = "[2001:db8::100]:443".parse().unwrap();
    let mut targets = Vec::new();
    {
        let mut s = st.borrow_mut();
        let lab = s.lab();
        for n in 1..=4u16 {
            let client = SocketAddr::new(addr(&format!("198.19.0.{n}")), 40000 + n);
            let (v, frame) = lab.tcp(client, vip4, TcpFlags::SYN, b"");
            assert!(matches!(v, Verdict::Transmit(_)), "{v:?}");
            targets.push(EngineLab::dr_target(&frame));
        }
        // The first client completes its handshake: one established connection.
        let client = SocketAddr::new(addr("198.19.0.1"), 40001);
        let (v, _) = lab.tcp(client, vip4, TcpFlags::ACK, b"");
        assert!(matches!(v, Verdict::Transmit(_)), "{v:?}");
        let client6 = SocketAddr::new(addr("2001:db8:ff::1"), 50000);
        let (v, frame) = lab.tcp(client6, vip6, TcpFlags::SYN, b"hello");
        assert!(matches!(v, Verdict::Transmit(_)), "{v:?}");
        assert_eq!(EngineLab::dr_target(&frame), 13);
    }
    // rr alternates, newest real server (.12) first.
    assert_eq!(targets, [12, 11, 12, 11]);
    // Connections in SYN_RECV count as active, as in IPVS since Linux 4.8 (tcp_state_active).
    let list = out(&st, "-L -n");
    assert_eq!(
        list,
        format!(
            "{HEADER}Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
             TCP  198.18.0.100:80 rr\n\
             \x20 -> 198.18.0.11:80               Route   1      2          0         \n\
             \x20 -> 198.18.0.12:80               Route   2      2          0         \n\
             TCP  [2001:db8::100]:443 wrr\n\
             \x20 -> [2001:db8::13]:443           Route   1      1          0         \n"
        )
    );
    // Five packets of 40 bytes (IPv4 header + TCP header) in, none out (DR replies bypass the
    // director); the IPv6 SYN is 40 + 20 + 5 bytes.
    let stats = out(&st, "-L -n --stats");
    assert_eq!(
        stats,
        format!(
            "{HEADER}Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n\
             TCP  198.18.0.100:80                     4        5        0      200        0\n\
             \x20 -> 198.18.0.11:80                      2        2        0       80        0\n\
             \x20 -> 198.18.0.12:80                      2        3        0      120        0\n\
             TCP  [2001:db8::100]:443                 1        1        0       65        0\n\
             \x20 -> [2001:db8::13]:443                  1        1        0       65        0\n"
        )
    );
    let mut conns: Vec<String> = out(&st, "-L -n -c").lines().map(str::to_owned).collect();
    assert_eq!(conns[0], "IPVS connection entries");
    assert_eq!(
        conns[1],
        "pro expire state       source             virtual            destination"
    );
    let mut entries = conns.split_off(2);
    entries.sort();
    assert_eq!(
        entries,
        [
            "TCP 01:00  SYN_RECV    198.19.0.2:40002   198.18.0.100:80    198.18.0.11:80",
            "TCP 01:00  SYN_RECV    198.19.0.3:40003   198.18.0.100:80    198.18.0.12:80",
            "TCP 01:00  SYN_RECV    198.19.0.4:40004   198.18.0.100:80    198.18.0.11:80",
            "TCP 01:00  SYN_RECV    [2001:db8:ff::1]:50000 [2001:db8::100]:443 [2001:db8::13]:443",
            "TCP 15:00  ESTABLISHED 198.19.0.1:40001   198.18.0.100:80    198.18.0.12:80",
        ]
    );
    st.borrow_mut().lab().advance(Duration::from_millis(30_500));
    let mut conns: Vec<String> = out(&st, "-L -n -c")
        .lines()
        .skip(2)
        .map(str::to_owned)
        .collect();
    conns.sort();
    assert_eq!(
        conns,
        [
            "TCP 00:29  SYN_RECV    198.19.0.2:40002   198.18.0.100:80    198.18.0.11:80",
            "TCP 00:29  SYN_RECV    198.19.0.3:40003   198.18.0.100:80    198.18.0.12:80",
            "TCP 00:29  SYN_RECV    198.19.0.4:40004   198.18.0.100:80    198.18.0.11:80",
            "TCP 00:29  SYN_RECV    [2001:db8:ff::1]:50000 [2001:db8::100]:443 [2001:db8::13]:443",
            "TCP 14:29  ESTABLISHED 198.19.0.1:40001   198.18.0.100:80    198.18.0.12:80",
        ]
    );

    ok(&st, "-Z -t 198.18.0.100:80");
    let stats = out(&st, "-L -n --stats");
    assert!(
        stats.contains(
            "\nTCP  198.18.0.100:80                     0        0        0        0        0\n\
             \x20 -> 198.18.0.11:80                      0        0        0        0        0\n\
             \x20 -> 198.18.0.12:80                      0        0        0        0        0\n"
        ),
        "{stats}"
    );
    assert!(
        stats.contains(
            "\nTCP  [2001:db8::100]:443                 1        1        0       65        0\n"
        ),
        "{stats}"
    );
    // Connection counts survive -Z.
    assert_eq!(out(&st, "-L -n"), list);
    ok(&st, "-Z");
    let stats = out(&st, "-L -n --stats");
    assert!(
        stats.contains(
            "\nTCP  [2001:db8::100]:443                 0        0        0        0        0\n"
        ),
        "{stats}"
    );
    assert_eq!(out(&st, "-L -n"), list);
    // The half-open connections time out; the listing follows the engine's table.
    st.borrow_mut().lab().advance(Duration::from_secs(31));
    assert_eq!(
        out(&st, "-L -n -c").lines().skip(2).collect::<Vec<_>>(),
        ["TCP 13:58  ESTABLISHED 198.19.0.1:40001   198.18.0.100:80    198.18.0.12:80"]
    );
    let list = out(&st, "-L -n");
    assert!(
        list.contains(
            "\n  -> 198.18.0.11:80               Route   1      0          0         \n\
             \x20 -> 198.18.0.12:80               Route   2      1          0         \n"
        ),
        "{list}"
    );
}
