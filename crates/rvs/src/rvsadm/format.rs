//! Every text rvsadm prints: help, version, listings and save format.
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

/// The `-h` text: the version line, ipvsadm's usage synopsis (the command-line interface,
/// with `prog` for every program name), then rvs's own description of every option.
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

/// rvs's description of the options (not ipvsadm's wording).
const USAGE_BODY: &str = "\
rvsadm configures rvsd, the rvs director, with ipvsadm's command line.
Where an option has a short and a long form, they are equivalent.

Commands:
  -A  --add-service       create a virtual service
  -E  --edit-service      change a virtual service; options left out go back to their defaults
  -D  --delete-service    remove a virtual service with its real servers
  -C  --clear             remove every virtual service
  -R  --restore           run the commands read from standard input (the format -S writes)
  -S  --save              write the table as commands that -R accepts
  -a  --add-server        add a real server to a virtual service
  -e  --edit-server       change a real server; options left out go back to their defaults
  -d  --delete-server     remove a real server from a virtual service
  -L  --list  (or -l)     show the virtual services, or another table (-c, --timeout, --daemon)
  -Z  --zero              reset the statistics of one virtual service, or of all of them
      --set TCP FIN UDP   idle timeouts in seconds: established TCP, TCP after FIN, UDP
                          (0 keeps the current value)
      --start-daemon      start connection synchronisation (not available in rvsd yet)
      --stop-daemon       stop connection synchronisation
  -h  --help              print this text
  -v  --version           print the version line

virtual-service (one of):
  -t  --tcp-service ADDR[:PORT]     TCP on ADDR, port PORT
  -u  --udp-service ADDR[:PORT]     UDP on ADDR, port PORT
      --sctp-service ADDR[:PORT]    SCTP on ADDR, port PORT
  -f  --fwmark-service MARK         packets with firewall mark MARK (1 to 4294967295)
  ADDR is an IPv4 address or host name, or an IPv6 address in brackets: [2001:db8::1]:80.
  PORT is a number or a name from /etc/services; port 0 needs -p.

Virtual service options:
  -s  --scheduler NAME       how new connections are spread over the real servers:
                             rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos (default wlc)
  -p  --persistent [SECS]    keep sending a client to the same real server while it is seen
                             within SECS seconds (360 if SECS is left out)
  -M  --netmask MASK         with -p: clients within MASK (IPv4 mask, or IPv6 prefix length)
                             count as one client
      --pe NAME              persistence engine (sip); none unless given
  -b  --sched-flags LIST     scheduler flags, separated by commas: flag-1 flag-2 flag-3,
                             sh-fallback sh-port (sh), mh-fallback mh-port (mh)
  -o  --ops                  one-packet scheduling: every UDP datagram is scheduled on its own
  -6  --ipv6                 with -f: the firewall mark applies to IPv6 packets

Real server options:
  -r  --real-server ADDR[:PORT]   the real server; PORT defaults to the virtual service's,
                                  and with -g or -i it is always the virtual service's (not -f)
  -g  --gatewaying           forward by direct routing (the default)
  -i  --ipip                 forward through a tunnel (IPIP, GUE or GRE: see --tun-type)
  -m  --masquerading         forward by NAT
  -w  --weight N             share of new connections, 0 to 65535 (default 1);
                             0 sends no new connections, existing ones go on
  -x  --u-threshold N        send no new connections once it has N connections (0: no limit)
  -y  --l-threshold N        send new connections again when it has fewer than N
                             (0: fewer than 3/4 of the upper threshold)
      --tun-type TYPE        tunnel encapsulation: ipip (default), gue or gre
      --tun-port PORT        UDP destination port of the GUE encapsulation
      --tun-nocsum           tunnel header without a checksum (the default)
      --tun-csum             tunnel header with a checksum
      --tun-remcsum          GUE remote checksum offload

List options (-L):
  -n  --numeric              print addresses and ports as numbers, without name lookups
                             (with -S too)
  -c  --connection           the connection table instead of the services
      --timeout              the three idle timeouts
      --daemon               the connection synchronisation daemons
      --stats                packet and byte counters since start or the last -Z
      --rate                 connections, packets and bytes per second
  -X  --exact                counters in full, without K, M, G or T
      --thresholds           the upper and lower connection thresholds
      --persistent-conn      persistence templates per real server
      --tun-info             the tunnel settings of each real server
      --nosort               rvsd's order instead of sorted by address
      --sort                 accepted for compatibility; sorting is the default
      --json                 the same data as JSON (an rvs addition)

Connection synchronisation options (--start-daemon):
      --syncid ID            synchronisation group, 0 to 255 (default 0)
      --sync-maxlen BYTES    largest synchronisation message
      --mcast-interface IF   interface the messages use
      --mcast-group ADDR     multicast group, IPv4 or IPv6 (default 224.0.0.81)
      --mcast-port PORT      UDP port (default 8848)
      --mcast-ttl TTL        multicast TTL (default 1)
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

    /// Every option of the table is described in `-h`, with its short form where it has one.
    #[test]
    fn help_names_every_option() {
        let help = usage("rvsadm");
        for (long, short) in super::super::args::option_names() {
            assert!(help.contains(&format!("--{long}")), "--{long}");
            if let Some(c) = short {
                let both = format!("  -{c}  --{long}");
                assert!(
                    help.contains(&both) || (c == 'l' && help.contains("(or -l)")),
                    "{both}"
                );
            }
        }
    }

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
