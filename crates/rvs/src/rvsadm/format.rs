//! Every text rvsadm prints: ipvsadm 1.31's help, version, listings and save format.
//!
//! The layouts are ipvsadm's `printf` formats, reproduced byte for byte (trailing spaces
//! included). Two ipvsadm bugs are fixed on purpose (see docs/rvsadm.md): firewall marks are
//! printed unsigned, so `-S` output for marks ≥ 2^31 restores, and real-server counters and rates
//! are shown with their full 64 bits.

use std::fmt::Write as _;
use std::net::IpAddr;

use rvs_api::{
    ConnEntry, DaemonRole, DaemonSpec, DestEntry, Family, ForwardMethod, Info, Netmask,
    ServiceEntry, ServiceKey, Timeouts, TunnelType, conn_flags, svc_flags,
};

use super::command::ListFormat;
use super::names::{self, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, Resolver};

/// The version line of ipvsadm 1.31 (`-v`, first line of `-h`).
pub const VERSION_LINE: &str = "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n";

/// The hint ipvsadm prints when the first option is not a command.
pub fn tryhelp(prog: &str) -> String {
    format!("Try `{prog} -h' or '{prog} --help' for more information.\n")
}

/// ipvsadm 1.31's usage text (`-h`), with `prog` for every program name.
pub fn usage(prog: &str) -> String {
    let mut s = String::from(VERSION_LINE);
    s.push_str("Usage:\n");
    for line in [
        "-A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]",
        "-D virtual-service",
        "-C",
        "-R",
        "-S [-n]",
        "-a|e virtual-service -r server-address [options]",
        "-d virtual-service -r server-address",
        "-L|l [virtual-service] [options]",
        "-Z [virtual-service]",
        "--set tcp tcpfin udp",
        "--start-daemon {master|backup} [daemon-options]",
        "--stop-daemon {master|backup}",
        "-h",
    ] {
        let _ = writeln!(s, "  {prog} {line}");
    }
    s.push('\n');
    s.push_str(USAGE_BODY);
    s
}

const USAGE_BODY: &str = "\
Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --start-daemon              start connection sync daemon
  --stop-daemon               stop connection sync daemon
  --help            -h        display this help message

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
  --sctp-service    service-address   service-address is host[:port]
  --fwmark-service|-f fwmark          fwmark is an integer greater than zero

Options:
  --ipv6         -6                   fwmark entry uses IPv6
  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh,
                                      the default scheduler is wlc.
  --pe            engine              alternate persistence engine may be sip,
                                      not set by default.
  --persistent   -p [timeout]         persistent service
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --tun-type      type                one of ipip|gue|gre,
                                      the default tunnel type is ipip.
  --tun-port      port                tunnel destination port
  --tun-nocsum                        tunnel encapsulation without checksum
  --tun-csum                          tunnel encapsulation with checksum
  --tun-remcsum                       tunnel encapsulation with remote checksum
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --tun-info                          output of tunnel information
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --ops          -o                   one-packet scheduling
  --numeric      -n                   numeric output of addresses and ports
  --sched-flags  -b flags             scheduler flags (comma-separated)
Daemon Options:
  --syncid sid                        syncid for connection sync (default=255)
  --sync-maxlen length                Max sync message length (default=1472)
  --mcast-interface interface         multicast interface for connection sync
  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)
  --mcast-port port                   UDP port (default=8848)
  --mcast-ttl ttl                     Multicast TTL (default=1)
";

/// The version header of a full listing.
pub fn header(info: &Info) -> String {
    let v = info.version;
    format!(
        "IP Virtual Server version {}.{}.{} (size={})\n",
        (v >> 16) & 0xff,
        (v >> 8) & 0xff,
        v & 0xff,
        info.conn_tab_size as i32
    )
}

/// The column titles of a service listing (`print_title`); empty for `-S`.
pub fn title(f: &ListFormat) -> String {
    const PROT: &str = "Prot LocalAddress:Port";
    if f.rule {
        String::new()
    } else if f.stats {
        format!(
            "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        )
    } else if f.rate {
        format!(
            "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        )
    } else if f.thresholds {
        format!(
            "{PROT:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        )
    } else if f.persistent_conn {
        format!(
            "{PROT:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        )
    } else if f.tun_info {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n".to_owned()
    } else {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n".to_owned()
    }
}

/// ipvsadm's `print_largenum`: 9 columns, scaled by K/M/G/T unless `exact`.
pub fn largenum(v: u64, exact: bool) -> String {
    if exact {
        let digits = v.to_string();
        let width = if digits.len() <= 8 {
            9
        } else {
            digits.len() + 1
        };
        return format!("{digits:>width$}");
    }
    if v < 100_000_000 {
        format!("{v:>9}")
    } else if v < 1_000_000_000 {
        format!("{:>8}K", v / 1000)
    } else if v < 100_000_000_000 {
        format!("{:>8}M", v / 1_000_000)
    } else if v < 100_000_000_000_000 {
        format!("{:>8}G", v / 1_000_000_000)
    } else {
        format!("{:>8}T", v / 1_000_000_000_000)
    }
}

/// The IP protocol number ipvsadm's entries carry (fwmark services are created as TCP).
const fn service_protocol(key: &ServiceKey) -> u8 {
    match key {
        ServiceKey::Addr { protocol, .. } => protocol.number(),
        ServiceKey::Fwmark { .. } => IPPROTO_TCP,
    }
}

/// The scheduler flag names ipvsadm shows for a service (`print_sched_flags`).
fn sched_flags(sched: &str, flags: u32) -> Option<String> {
    let names: [(u32, &str); 3] = match sched {
        "sh" => [
            (svc_flags::SCHED1, "sh-fallback"),
            (svc_flags::SCHED2, "sh-port"),
            (0, ""),
        ],
        "mh" => [
            (svc_flags::SCHED1, "mh-fallback"),
            (svc_flags::SCHED2, "mh-port"),
            (0, ""),
        ],
        _ => [
            (svc_flags::SCHED1, "flag-1"),
            (svc_flags::SCHED2, "flag-2"),
            (svc_flags::SCHED3, "flag-3"),
        ],
    };
    let set: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| *bit != 0 && flags & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    (!set.is_empty()).then(|| set.join(","))
}

fn any_sched_flag(flags: u32) -> bool {
    flags & (svc_flags::SCHED1 | svc_flags::SCHED2 | svc_flags::SCHED3) != 0
}

/// `-c` (nocsum) `+c` (csum) `r+c` (remcsum).
fn tun_flag_name(flags: u16) -> &'static str {
    match flags {
        1 => "+c",
        2 => "r+c",
        _ => "-c",
    }
}

fn tun_flag_opt(flags: u16) -> &'static str {
    match flags {
        1 => "--tun-csum",
        2 => "--tun-remcsum",
        _ => "--tun-nocsum",
    }
}

/// Renders services, connections and the rest with one name resolver and format.
pub struct Printer<'a> {
    /// Name lookups (unused with `-n`).
    pub resolver: &'a dyn Resolver,
    /// The output options.
    pub format: ListFormat,
}

impl std::fmt::Debug for Printer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printer")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Printer<'_> {
    fn anyname(&self, addr: &IpAddr, port: u16, protocol: u8) -> String {
        names::addrport_to_anyname(addr, port, protocol, self.format.numeric, self.resolver)
    }

    /// The service name column: `TCP  10.0.0.1:80`, `FWM  1 IPv6`, or with `-S` `-t …`, `-f 1 -6`.
    fn service_name(&self, key: &ServiceKey) -> String {
        match key {
            ServiceKey::Fwmark { mark, family } => {
                let v6 = *family == Family::Inet6;
                match (self.format.rule, v6) {
                    (true, false) => format!("-f {mark}"),
                    (true, true) => format!("-f {mark} -6"),
                    (false, false) => format!("FWM  {mark}"),
                    (false, true) => format!("FWM  {mark} IPv6"),
                }
            }
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                let vname = self.anyname(addr, *port, protocol.number());
                if self.format.rule {
                    let opt = match protocol.number() {
                        IPPROTO_TCP => "-t",
                        IPPROTO_UDP => "-u",
                        IPPROTO_SCTP => "--sctp-service",
                        _ => "--xxx-service",
                    };
                    format!("{opt} {vname}")
                } else {
                    let mut s = format!("{:<4} {vname}", protocol.name());
                    if addr.is_ipv4() {
                        names::truncate_bytes(&mut s, 33);
                    }
                    s
                }
            }
        }
    }

    /// One service and its real servers (`print_service_entry`), dests sorted unless `--nosort`.
    pub fn service_entry(&self, out: &mut String, se: &ServiceEntry) {
        let f = &self.format;
        let spec = &se.spec;
        let svc_name = self.service_name(&spec.key);
        let persistent = spec.flags & svc_flags::PERSISTENT != 0;
        if f.rule {
            let _ = write!(out, "-A {svc_name} -s {}", spec.scheduler);
            if persistent {
                let _ = write!(out, " -p {}", spec.timeout);
                match spec.netmask {
                    Netmask::V4(m) if !spec.netmask.is_host() => {
                        let _ = write!(out, " -M {m}");
                    }
                    Netmask::V6(p) if !spec.netmask.is_host() => {
                        let _ = write!(out, " -M {p}");
                    }
                    _ => {}
                }
            }
            if let Some(pe) = spec.pe_name.as_deref().filter(|p| !p.is_empty()) {
                let _ = write!(out, " --pe {pe}");
            }
            if spec.flags & svc_flags::ONEPACKET != 0 {
                out.push_str(" -o");
            }
            if any_sched_flag(spec.flags) {
                out.push_str(" -b ");
                out.push_str(&sched_flags(&spec.scheduler, spec.flags).unwrap_or_default());
            }
        } else if f.stats || f.rate {
            let _ = write!(out, "{svc_name:<33}");
            let vals = if f.stats {
                let s = &se.stats;
                [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes]
            } else {
                let r = &se.rates;
                [r.cps, r.inpps, r.outpps, r.inbps, r.outbps]
            };
            for v in vals {
                out.push_str(&largenum(v, f.exact));
            }
        } else {
            let _ = write!(out, "{svc_name} {}", spec.scheduler);
            if any_sched_flag(spec.flags) {
                let flags = sched_flags(&spec.scheduler, spec.flags).unwrap_or_default();
                let _ = write!(out, " ({flags})");
            }
            if persistent {
                let _ = write!(out, " persistent {}", spec.timeout);
                match spec.netmask {
                    Netmask::V4(m) if !spec.netmask.is_host() => {
                        let _ = write!(out, " mask {m}");
                    }
                    Netmask::V6(p) if !spec.netmask.is_host() => {
                        let _ = write!(out, " mask {p}");
                    }
                    _ => {}
                }
                if let Some(pe) = spec.pe_name.as_deref().filter(|p| !p.is_empty()) {
                    let _ = write!(out, " pe {pe}");
                }
            }
            if spec.flags & svc_flags::ONEPACKET != 0 {
                out.push_str(" ops");
            }
        }
        out.push('\n');

        let mut dests: Vec<&DestEntry> = se.dests.iter().collect();
        if !f.nosort {
            glibc_msort(&mut dests, |a, b| cmp_dests(a, b));
        }
        let protocol = service_protocol(&spec.key);
        for e in dests {
            self.dest_entry(out, &svc_name, protocol, e);
        }
    }

    fn dest_entry(&self, out: &mut String, svc_name: &str, protocol: u8, e: &DestEntry) {
        let f = &self.format;
        let d = &e.spec;
        let mut dname = self.anyname(&d.addr, d.port, protocol);
        if !f.rule && d.addr.is_ipv4() {
            names::truncate_bytes(&mut dname, 28);
        }
        if f.rule {
            let switch = match d.fwd_method {
                ForwardMethod::Masq => "-m",
                ForwardMethod::Tunnel => "-i",
                ForwardMethod::Local | ForwardMethod::Route => "-g",
            };
            let _ = write!(
                out,
                "-a {svc_name} -r {dname} {switch} -w {}",
                d.weight as i32
            );
            if d.fwd_method == ForwardMethod::Tunnel {
                match d.tun_type {
                    TunnelType::Ipip => out.push_str(" --tun-type ipip"),
                    TunnelType::Gue => {
                        let _ = write!(
                            out,
                            " --tun-type gue --tun-port {} {}",
                            d.tun_port,
                            tun_flag_opt(d.tun_flags)
                        );
                    }
                    TunnelType::Gre => {
                        let _ = write!(out, " --tun-type gre {}", tun_flag_opt(d.tun_flags));
                    }
                }
            }
            out.push('\n');
        } else if f.stats {
            let _ = write!(out, "  -> {dname:<28}");
            let s = &e.stats;
            for v in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                out.push_str(&largenum(v, f.exact));
            }
            out.push('\n');
        } else if f.rate {
            let r = &e.rates;
            // ipvsadm prints the first three dest rates unscaled, even without --exact.
            let _ = write!(
                out,
                "  -> {dname:<28} {:>8} {:>8} {:>8}",
                r.cps, r.inpps, r.outpps
            );
            out.push_str(&largenum(r.inbps, f.exact));
            out.push_str(&largenum(r.outbps, f.exact));
            out.push('\n');
        } else if f.thresholds {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                d.u_threshold, d.l_threshold, e.activeconns, e.inactconns
            );
        } else if f.persistent_conn {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                d.weight, e.persistconns, e.activeconns, e.inactconns
            );
        } else if f.tun_info {
            let info = match (d.fwd_method, d.tun_type) {
                (ForwardMethod::Tunnel, TunnelType::Ipip) => "ipip".to_owned(),
                (ForwardMethod::Tunnel, TunnelType::Gue) => {
                    format!("gue:{}:{}", d.tun_port, tun_flag_name(d.tun_flags))
                }
                (ForwardMethod::Tunnel, TunnelType::Gre) => {
                    format!("gre:{}", tun_flag_name(d.tun_flags))
                }
                _ => "n/a".to_owned(),
            };
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {info:<13} {:<6} {:<10} {:<10}",
                d.fwd_method.name(),
                d.weight as i32,
                e.activeconns,
                e.inactconns
            );
        } else {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                d.fwd_method.name(),
                d.weight as i32,
                e.activeconns,
                e.inactconns
            );
        }
    }

    /// `-L -c`: the connection table.
    pub fn conns(&self, out: &mut String, conns: &[ConnEntry]) {
        out.push_str("IPVS connection entries\n");
        if self.format.persistent_conn {
            let _ = writeln!(
                out,
                "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
                "state", "source", "virtual", "destination", "pe name"
            );
        } else {
            let _ = writeln!(
                out,
                "pro expire {:<11} {:<18} {:<18} destination",
                "state", "source", "virtual"
            );
        }
        for c in conns
            .iter()
            .filter(|c| c.flags & conn_flags::ONE_PACKET == 0)
        {
            let proto_name = match c.protocol {
                0 => "IP".to_owned(),
                1 => "ICMP".to_owned(),
                IPPROTO_TCP => "TCP".to_owned(),
                IPPROTO_UDP => "UDP".to_owned(),
                58 => "ICMPv6".to_owned(),
                IPPROTO_SCTP => "SCTP".to_owned(),
                n => format!("IP_{n}"),
            };
            let cname = self.anyname(&c.caddr, c.cport, c.protocol);
            let vname = self.anyname(&c.vaddr, c.vport, c.protocol);
            let dname = self.anyname(&c.daddr, c.dport, c.protocol);
            // The kernel shows whole seconds left; minutes are not capped.
            let secs = c.expires_ms / 1000;
            let expire = format!("{:02}:{:02}", secs / 60, secs % 60);
            // ipvsadm reads the state and PE fields of /proc/net/ip_vs_conn with `%s`.
            let state = c.state.split_whitespace().next().unwrap_or("");
            let pe = match (&c.pe_name, &c.pe_data) {
                (Some(n), Some(d)) => {
                    match (n.split_whitespace().next(), d.split_whitespace().next()) {
                        (Some(n), Some(d)) => Some((n, d)),
                        _ => None,
                    }
                }
                _ => None,
            };
            match pe {
                Some((pe_name, pe_data)) if self.format.persistent_conn => {
                    let _ = writeln!(
                        out,
                        "{proto_name:<3} {expire:<6} {state:<11} {cname:<18} {vname:<18} {dname:<16} {pe_name:<18} {pe_data}"
                    );
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "{proto_name:<3} {expire:<6} {state:<11} {cname:<18} {vname:<18} {dname}"
                    );
                }
            }
        }
    }
}

/// `-L --timeout`.
pub fn timeouts(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp as i32, t.tcp_fin as i32, t.udp as i32
    )
}

/// `-L --daemon`: one line per daemon, master first.
pub fn daemons(list: &[DaemonSpec]) -> String {
    let mut out = String::new();
    for role in [DaemonRole::Master, DaemonRole::Backup] {
        for d in list.iter().filter(|d| d.role == role) {
            let kind = match role {
                DaemonRole::Master => "master",
                DaemonRole::Backup => "backup",
            };
            let _ = write!(
                out,
                "{kind} sync daemon (mcast={}, syncid={}",
                d.mcast_ifn, d.syncid
            );
            if d.sync_maxlen != 0 {
                let _ = write!(out, ", maxlen={}", d.sync_maxlen);
            }
            if let Some(g) = &d.mcast_group {
                let _ = write!(out, ", group={}", names::addr_to_string(g));
            }
            if d.mcast_port != 0 {
                let _ = write!(out, ", port={}", d.mcast_port);
            }
            if d.mcast_ttl != 0 {
                let _ = write!(out, ", ttl={}", d.mcast_ttl);
            }
            out.push_str(")\n");
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// sorting

/// An address as the four host-order 32-bit words of `union nf_inet_addr` (IPv4 in word 0).
fn addr_words(a: &IpAddr) -> [u32; 4] {
    match a {
        IpAddr::V4(v4) => [u32::from(*v4), 0, 0, 0],
        IpAddr::V6(v6) => {
            let s = v6.segments();
            [
                (u32::from(s[0]) << 16) | u32::from(s[1]),
                (u32::from(s[2]) << 16) | u32::from(s[3]),
                (u32::from(s[4]) << 16) | u32::from(s[5]),
                (u32::from(s[6]) << 16) | u32::from(s[7]),
            ]
        }
    }
}

/// libipvs compares addresses with C `int` subtraction of host-order words.
fn cmp_addr(a1: &IpAddr, a2: &IpAddr) -> i32 {
    let (w1, w2) = (addr_words(a1), addr_words(a2));
    let words = if a1.is_ipv6() { 4 } else { 1 };
    let mut r = 0;
    for i in 0..words {
        r = w1[i].wrapping_sub(w2[i]) as i32;
        if r != 0 {
            break;
        }
    }
    r
}

/// libipvs `ipvs_cmp_services`: (fwmark, af, protocol, address, port), wrapping like C.
pub fn cmp_services(s1: &ServiceEntry, s2: &ServiceEntry) -> i32 {
    let fields = |k: &ServiceKey| -> (u32, i32, i32, IpAddr, i32) {
        let af = i32::from(k.family().af_number());
        match k {
            ServiceKey::Fwmark { mark, family } => {
                let zero = match family {
                    Family::Inet => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                    Family::Inet6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                };
                (*mark, af, i32::from(IPPROTO_TCP), zero, 0)
            }
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => (0, af, i32::from(protocol.number()), *addr, i32::from(*port)),
        }
    };
    let (m1, af1, p1, a1, port1) = fields(&s1.spec.key);
    let (m2, af2, p2, a2, port2) = fields(&s2.spec.key);
    let r = m1.wrapping_sub(m2) as i32;
    if r != 0 {
        return r;
    }
    if af1 != af2 {
        return af1 - af2;
    }
    if p1 != p2 {
        return p1 - p2;
    }
    let r = cmp_addr(&a1, &a2);
    if r != 0 {
        return r;
    }
    port1 - port2
}

/// libipvs `ipvs_cmp_dests`: (address, port), wrapping like C.
pub fn cmp_dests(d1: &DestEntry, d2: &DestEntry) -> i32 {
    let r = cmp_addr(&d1.spec.addr, &d2.spec.addr);
    if r != 0 {
        return r;
    }
    i32::from(d1.spec.port) - i32::from(d2.spec.port)
}

/// glibc's `qsort` (a top-down merge sort) so that the non-transitive wrapping comparisons give
/// the same order as ipvsadm, and never a panic.
pub fn glibc_msort<T: Copy>(v: &mut [T], cmp: impl Fn(&T, &T) -> i32 + Copy) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    {
        let (a, b) = v.split_at_mut(n1);
        glibc_msort(a, cmp);
        glibc_msort(b, cmp);
    }
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) <= 0 {
            merged.push(v[i]);
            i += 1;
        } else {
            merged.push(v[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&v[i..n1]);
    merged.extend_from_slice(&v[j..n]);
    v.copy_from_slice(&merged);
}

/// Services in ipvsadm's listing order (unless `nosort`). Real servers are sorted when printed.
pub fn sorted_services(services: Vec<ServiceEntry>, nosort: bool) -> Vec<ServiceEntry> {
    if nosort {
        return services;
    }
    let mut idx: Vec<usize> = (0..services.len()).collect();
    glibc_msort(&mut idx, |a, b| cmp_services(&services[*a], &services[*b]));
    idx.into_iter().map(|i| services[i].clone()).collect()
}

/// Sorts the real servers of a service as a listing shows them (for `--json`).
pub fn sort_dests(se: &mut ServiceEntry) {
    let mut idx: Vec<usize> = (0..se.dests.len()).collect();
    glibc_msort(&mut idx, |a, b| cmp_dests(&se.dests[*a], &se.dests[*b]));
    se.dests = idx.into_iter().map(|i| se.dests[i].clone()).collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largenum_examples() {
        assert_eq!(largenum(99_999_999, false), " 99999999");
        assert_eq!(largenum(100_000_000, false), "  100000K");
        assert_eq!(largenum(999_999_999, false), "  999999K");
        assert_eq!(largenum(1_000_000_000, false), "    1000M");
        assert_eq!(largenum(99_999_999_999_999, false), "   99999G");
        assert_eq!(largenum(123_456_789_012_345, false), "     123T");
        assert_eq!(largenum(4_000_000_000, false), "    4000M");
        assert_eq!(largenum(123_456_789_012_345, true), " 123456789012345");
        assert_eq!(largenum(5, true), "        5");
    }

    #[test]
    fn msort_is_a_sort_for_total_orders() {
        let mut v = vec![5, 3, 9, 1, 1, 0, 7];
        glibc_msort(&mut v, |a: &i32, b: &i32| a - b);
        assert_eq!(v, vec![0, 1, 1, 3, 5, 7, 9]);
    }

    #[test]
    fn sched_flag_names() {
        assert_eq!(
            sched_flags("sh", 0x18).as_deref(),
            Some("sh-fallback,sh-port")
        );
        assert_eq!(sched_flags("mh", 0x08).as_deref(), Some("mh-fallback"));
        assert_eq!(sched_flags("lblcr", 0x20).as_deref(), Some("flag-3"));
        assert_eq!(sched_flags("sh", 0x20), None);
    }
}
