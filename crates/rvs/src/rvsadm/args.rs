//! Stage one of the command line: a popt emulation that turns argv into [`LowArgs`].
//!
//! ipvsadm 1.31 parses with popt and applies each option while scanning left to right, so the
//! first bad value stops the scan (`fail()`, exit 2) before popt reports a later unknown option,
//! `-r host` copies the service port known at that moment, `-M` depends on the family of the
//! service parsed so far, and `-6` must follow `-f`. This module reproduces that scan: popt's
//! word handling (bundled short options, `--opt value`, `--opt=value`, the optional argument of
//! `-p`, `--` and leftover words), then the per-option parsing ipvsadm does inside its loop, then
//! the `--set` words, the leftover check and the scheduler flags. What it returns mirrors
//! ipvsadm's `struct ipvs_command_entry` plus the option bit set; the semantic checks that follow
//! (`generic_opt_check` and the rest) live in [`super::command`].

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};

use rvs_api::{DaemonRole, Family, ForwardMethod, Timeouts, TunnelType, svc_flags, tun_flags};

use super::names::{self, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, Resolver};

/// ipvsadm's `MAX_TIMEOUT`: 31 days.
pub const MAX_TIMEOUT: i64 = 86400 * 31;
/// ipvsadm's `IPVS_SVC_PERSISTENT_TIMEOUT`: the timeout of a bare `-p`.
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;
/// `IP_VS_SCHEDNAME_MAXLEN - 1`: longest scheduler name kept.
const SCHED_NAME_MAX: usize = 15;
/// `IP_VS_PENAME_MAXLEN`: longest persistence engine name kept.
const PE_NAME_MAX: usize = 16;
/// `IP_VS_IFNAME_MAXLEN - 1`: longest interface name kept.
const IFNAME_MAX: usize = 15;

/// The commands, in ipvsadm's `CMD_*` order (which is also its `cmdnames[]` order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// `-A`.
    AddService,
    /// `-E`.
    EditService,
    /// `-D`.
    DeleteService,
    /// `-C`.
    Flush,
    /// `-L`, `-l`.
    List,
    /// `-a`.
    AddServer,
    /// `-d`.
    DeleteServer,
    /// `-e`.
    EditServer,
    /// `--set`.
    Set,
    /// `--start-daemon`.
    StartDaemon,
    /// `--stop-daemon`.
    StopDaemon,
    /// `-R`.
    Restore,
    /// `-S`.
    Save,
    /// `-Z`.
    Zero,
}

impl CommandKind {
    /// The name ipvsadm uses in error messages.
    pub const fn name(self) -> &'static str {
        match self {
            Self::AddService => "add-service",
            Self::EditService => "edit-service",
            Self::DeleteService => "delete-service",
            Self::Flush => "flush",
            Self::List => "list",
            Self::AddServer => "add-server",
            Self::DeleteServer => "delete-server",
            Self::EditServer => "edit-server",
            Self::Set => "set",
            Self::StartDaemon => "start-daemon",
            Self::StopDaemon => "stop-daemon",
            Self::Restore => "restore",
            Self::Save => "save",
            Self::Zero => "zero",
        }
    }
}

/// The option bits of ipvsadm (`OPTC_*`), in bit order, plus rvsadm's `--json` as bit 34.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Opt {
    /// `-n`.
    Numeric,
    /// `-c`.
    Connection,
    /// `-t`, `-u`, `--sctp-service`, `-f`.
    Service,
    /// `-s`.
    Scheduler,
    /// `-p`.
    Persistent,
    /// `-M`.
    Netmask,
    /// `-r`.
    Server,
    /// `-g`, `-i`, `-m`.
    Forward,
    /// `-w`.
    Weight,
    /// `-x`.
    UThreshold,
    /// `-y`.
    LThreshold,
    /// `--mcast-interface`.
    McastInterface,
    /// `--timeout`.
    Timeout,
    /// `--daemon`.
    Daemon,
    /// `--stats`.
    Stats,
    /// `--rate`.
    Rate,
    /// `--thresholds`.
    Thresholds,
    /// `--persistent-conn`.
    PersistentConn,
    /// `--nosort`.
    NoSort,
    /// `--syncid`.
    SyncId,
    /// `--exact`, `-X`.
    Exact,
    /// `-o`.
    Ops,
    /// `--pe`.
    Pe,
    /// `-b`.
    SchedFlags,
    /// `--mcast-group`.
    McastGroup,
    /// `--mcast-port`.
    McastPort,
    /// `--mcast-ttl`.
    McastTtl,
    /// `--sync-maxlen`.
    SyncMaxlen,
    /// `--tun-info`.
    TunInfo,
    /// `--tun-type`.
    TunType,
    /// `--tun-port`.
    TunPort,
    /// `--tun-nocsum`.
    TunNocsum,
    /// `--tun-csum`.
    TunCsum,
    /// `--tun-remcsum`.
    TunRemcsum,
    /// `--json` (rvsadm only).
    Json,
}

/// Every option bit in bit order.
pub const ALL_OPTS: [Opt; 35] = [
    Opt::Numeric,
    Opt::Connection,
    Opt::Service,
    Opt::Scheduler,
    Opt::Persistent,
    Opt::Netmask,
    Opt::Server,
    Opt::Forward,
    Opt::Weight,
    Opt::UThreshold,
    Opt::LThreshold,
    Opt::McastInterface,
    Opt::Timeout,
    Opt::Daemon,
    Opt::Stats,
    Opt::Rate,
    Opt::Thresholds,
    Opt::PersistentConn,
    Opt::NoSort,
    Opt::SyncId,
    Opt::Exact,
    Opt::Ops,
    Opt::Pe,
    Opt::SchedFlags,
    Opt::McastGroup,
    Opt::McastPort,
    Opt::McastTtl,
    Opt::SyncMaxlen,
    Opt::TunInfo,
    Opt::TunType,
    Opt::TunPort,
    Opt::TunNocsum,
    Opt::TunCsum,
    Opt::TunRemcsum,
    Opt::Json,
];

impl Opt {
    /// The internal name ipvsadm prints in error messages.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Numeric => "numeric",
            Self::Connection => "connection",
            Self::Service => "service-address",
            Self::Scheduler => "scheduler",
            Self::Persistent => "persistent",
            Self::Netmask => "netmask",
            Self::Server => "real-server",
            Self::Forward => "forwarding-method",
            Self::Weight => "weight",
            Self::UThreshold => "u-threshold",
            Self::LThreshold => "l-threshold",
            Self::McastInterface => "mcast-interface",
            Self::Timeout => "timeout",
            Self::Daemon => "daemon",
            Self::Stats => "stats",
            Self::Rate => "rate",
            Self::Thresholds => "thresholds",
            Self::PersistentConn => "persistent-conn",
            Self::NoSort => "nosort",
            Self::SyncId => "syncid",
            Self::Exact => "exact",
            Self::Ops => "ops",
            Self::Pe => "pe",
            Self::SchedFlags => "sched-flags",
            Self::McastGroup => "mcast-group",
            Self::McastPort => "mcast-port",
            Self::McastTtl => "mcast-ttl",
            Self::SyncMaxlen => "sync-maxlen",
            Self::TunInfo => "tun-info",
            Self::TunType => "tun-type",
            Self::TunPort => "tun-port",
            Self::TunNocsum => "tun-nocsum",
            Self::TunCsum => "tun-csum",
            Self::TunRemcsum => "tun-remcsum",
            Self::Json => "json",
        }
    }

    /// The bit of this option in an [`OptSet`].
    pub const fn bit(self) -> u64 {
        1u64 << (self as u8)
    }
}

/// A set of [`Opt`] bits (ipvsadm's `options`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OptSet(pub u64);

impl OptSet {
    /// Whether `opt` was given.
    pub const fn has(self, opt: Opt) -> bool {
        self.0 & opt.bit() != 0
    }

    /// Whether any of `opts` was given.
    pub fn any(self, opts: &[Opt]) -> bool {
        opts.iter().any(|o| self.has(*o))
    }
}

/// How a stage-one parse ends early. Each variant maps onto one ipvsadm exit path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsError {
    /// `fail(2, …)`: the message goes to stderr with a newline, exit 2, a restore stops.
    Fail(String),
    /// A popt error (`-t: missing argument`): stderr, exit 255, a restore goes on.
    Popt(String),
    /// `tryhelp_exit`: no command first, exit 255, a restore stops.
    TryHelp,
    /// `-h` as the command: print the usage on stdout, exit 0.
    Help,
    /// `-v` as the command: print the version on stdout, exit 0.
    Version,
}

fn fail<T>(msg: impl Into<String>) -> Result<T, ArgsError> {
    Err(ArgsError::Fail(msg.into()))
}

/// The virtual service as scanned (ipvsadm's `ce.svc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowService {
    /// Address family, once a service option set it.
    pub af: Option<Family>,
    /// IP protocol of `-t`/`-u`/`--sctp-service` (TCP for `-f`), 0 before any.
    pub protocol: u8,
    /// Virtual address.
    pub addr: Option<IpAddr>,
    /// Virtual port (0 if none given).
    pub port: u16,
    /// Firewall mark (0 = not a fwmark service).
    pub fwmark: u32,
    /// Scheduler name (empty = default).
    pub sched_name: String,
    /// Service flags.
    pub flags: u32,
    /// Persistence timeout.
    pub timeout: u32,
    /// IPv4 mask as a number (default 255.255.255.255) or IPv6 prefix length.
    pub netmask: u32,
    /// Persistence engine (empty = none).
    pub pe_name: String,
}

/// The real server as scanned (ipvsadm's `ce.dest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowDest {
    /// Real server address, once `-r` was given.
    pub addr: Option<IpAddr>,
    /// Real server port.
    pub port: u16,
    /// Forwarding method (default DR).
    pub fwd: ForwardMethod,
    /// Weight (default 1).
    pub weight: u32,
    /// Upper threshold.
    pub u_threshold: u32,
    /// Lower threshold.
    pub l_threshold: u32,
    /// Tunnel type (default ipip).
    pub tun_type: TunnelType,
    /// GUE port.
    pub tun_port: u16,
    /// Tunnel checksum flags, OR-ed as ipvsadm does.
    pub tun_flags: u16,
}

/// The sync daemon parameters as scanned (ipvsadm's `ce.daemon`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LowDaemon {
    /// `master` or `backup`.
    pub role: Option<DaemonRole>,
    /// Multicast interface (empty = default).
    pub mcast_ifn: String,
    /// Sync id.
    pub syncid: u8,
    /// Maximum sync message length (0 = default).
    pub sync_maxlen: u16,
    /// Multicast group.
    pub mcast_group: Option<IpAddr>,
    /// Multicast port (0 = default).
    pub mcast_port: u16,
    /// Multicast TTL (0 = default).
    pub mcast_ttl: u8,
}

/// Everything the scan of one command line produced, before the semantic checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowArgs {
    /// The command (the first option).
    pub command: CommandKind,
    /// Options given, as ipvsadm's bit set.
    pub options: OptSet,
    /// Service fields.
    pub svc: LowService,
    /// Real server fields.
    pub dest: LowDest,
    /// Sync daemon fields.
    pub daemon: LowDaemon,
    /// The three `--set` values.
    pub timeouts: Option<Timeouts>,
}

impl LowArgs {
    fn new(command: CommandKind) -> Self {
        Self {
            command,
            options: OptSet::default(),
            svc: LowService {
                af: None,
                protocol: 0,
                addr: None,
                port: 0,
                fwmark: 0,
                sched_name: String::new(),
                flags: 0,
                timeout: 0,
                netmask: 0xffff_ffff,
                pe_name: String::new(),
            },
            dest: LowDest {
                addr: None,
                port: 0,
                fwd: ForwardMethod::Route,
                weight: 1,
                u_threshold: 0,
                l_threshold: 0,
                tun_type: TunnelType::Ipip,
                tun_port: 0,
                tun_flags: 0,
            },
            daemon: LowDaemon::default(),
            timeouts: None,
        }
    }

    fn set_option(&mut self, opt: Opt) -> Result<(), ArgsError> {
        if self.options.has(opt) {
            return fail(format!("multiple '{}' options specified", opt.name()));
        }
        self.options.0 |= opt.bit();
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// popt emulation

/// What an option table entry returns (popt's `val`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Cmd(CommandKind),
    Help,
    Version,
    TcpService,
    UdpService,
    SctpService,
    FwmarkService,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Masquerading,
    Ipip,
    Gatewaying,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    SyncId,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArgKind {
    None,
    Required,
    Optional,
}

#[derive(Debug)]
struct OptDef {
    long: &'static str,
    short: Option<char>,
    arg: ArgKind,
    tag: Tag,
}

const fn def(long: &'static str, short: Option<char>, arg: ArgKind, tag: Tag) -> OptDef {
    OptDef {
        long,
        short,
        arg,
        tag,
    }
}

/// Every option's long name and short letter, in the option table's order (for `-h` checks).
#[cfg(test)]
pub(crate) fn option_names() -> impl Iterator<Item = (&'static str, Option<char>)> {
    OPTIONS.iter().map(|o| (o.long, o.short))
}

/// ipvsadm 1.31's popt table, in its order (the first match wins), plus `--json`.
static OPTIONS: &[OptDef] = &[
    def(
        "add-service",
        Some('A'),
        ArgKind::None,
        Tag::Cmd(CommandKind::AddService),
    ),
    def(
        "edit-service",
        Some('E'),
        ArgKind::None,
        Tag::Cmd(CommandKind::EditService),
    ),
    def(
        "delete-service",
        Some('D'),
        ArgKind::None,
        Tag::Cmd(CommandKind::DeleteService),
    ),
    def(
        "clear",
        Some('C'),
        ArgKind::None,
        Tag::Cmd(CommandKind::Flush),
    ),
    def(
        "list",
        Some('L'),
        ArgKind::None,
        Tag::Cmd(CommandKind::List),
    ),
    def(
        "list",
        Some('l'),
        ArgKind::None,
        Tag::Cmd(CommandKind::List),
    ),
    def(
        "zero",
        Some('Z'),
        ArgKind::None,
        Tag::Cmd(CommandKind::Zero),
    ),
    def(
        "add-server",
        Some('a'),
        ArgKind::None,
        Tag::Cmd(CommandKind::AddServer),
    ),
    def(
        "edit-server",
        Some('e'),
        ArgKind::None,
        Tag::Cmd(CommandKind::EditServer),
    ),
    def(
        "delete-server",
        Some('d'),
        ArgKind::None,
        Tag::Cmd(CommandKind::DeleteServer),
    ),
    def("set", None, ArgKind::None, Tag::Cmd(CommandKind::Set)),
    def("help", Some('h'), ArgKind::None, Tag::Help),
    def("version", Some('v'), ArgKind::None, Tag::Version),
    def(
        "restore",
        Some('R'),
        ArgKind::None,
        Tag::Cmd(CommandKind::Restore),
    ),
    def(
        "save",
        Some('S'),
        ArgKind::None,
        Tag::Cmd(CommandKind::Save),
    ),
    def(
        "start-daemon",
        None,
        ArgKind::Required,
        Tag::Cmd(CommandKind::StartDaemon),
    ),
    def(
        "stop-daemon",
        None,
        ArgKind::Required,
        Tag::Cmd(CommandKind::StopDaemon),
    ),
    def("tcp-service", Some('t'), ArgKind::Required, Tag::TcpService),
    def("udp-service", Some('u'), ArgKind::Required, Tag::UdpService),
    def("sctp-service", None, ArgKind::Required, Tag::SctpService),
    def(
        "fwmark-service",
        Some('f'),
        ArgKind::Required,
        Tag::FwmarkService,
    ),
    def("scheduler", Some('s'), ArgKind::Required, Tag::Scheduler),
    def("persistent", Some('p'), ArgKind::Optional, Tag::Persistent),
    def("netmask", Some('M'), ArgKind::Required, Tag::Netmask),
    def("real-server", Some('r'), ArgKind::Required, Tag::RealServer),
    def("masquerading", Some('m'), ArgKind::None, Tag::Masquerading),
    def("ipip", Some('i'), ArgKind::None, Tag::Ipip),
    def("gatewaying", Some('g'), ArgKind::None, Tag::Gatewaying),
    def("weight", Some('w'), ArgKind::Required, Tag::Weight),
    def("u-threshold", Some('x'), ArgKind::Required, Tag::UThreshold),
    def("l-threshold", Some('y'), ArgKind::Required, Tag::LThreshold),
    def("numeric", Some('n'), ArgKind::None, Tag::Numeric),
    def("connection", Some('c'), ArgKind::None, Tag::Connection),
    def(
        "mcast-interface",
        None,
        ArgKind::Required,
        Tag::McastInterface,
    ),
    def("syncid", None, ArgKind::Required, Tag::SyncId),
    def("timeout", None, ArgKind::None, Tag::Timeout),
    def("daemon", None, ArgKind::None, Tag::Daemon),
    def("stats", None, ArgKind::None, Tag::Stats),
    def("rate", None, ArgKind::None, Tag::Rate),
    def("thresholds", None, ArgKind::None, Tag::Thresholds),
    def("persistent-conn", None, ArgKind::None, Tag::PersistentConn),
    def("nosort", None, ArgKind::None, Tag::NoSort),
    def("sort", None, ArgKind::None, Tag::Sort),
    def("exact", Some('X'), ArgKind::None, Tag::Exact),
    def("ipv6", Some('6'), ArgKind::None, Tag::Ipv6),
    def("ops", Some('o'), ArgKind::None, Tag::Ops),
    def("pe", None, ArgKind::Required, Tag::Pe),
    def("sched-flags", Some('b'), ArgKind::Required, Tag::SchedFlags),
    def("mcast-group", None, ArgKind::Required, Tag::McastGroup),
    def("mcast-port", None, ArgKind::Required, Tag::McastPort),
    def("mcast-ttl", None, ArgKind::Required, Tag::McastTtl),
    def("sync-maxlen", None, ArgKind::Required, Tag::SyncMaxlen),
    def("tun-info", None, ArgKind::None, Tag::TunInfo),
    def("tun-type", None, ArgKind::Required, Tag::TunType),
    def("tun-port", None, ArgKind::Required, Tag::TunPort),
    def("tun-nocsum", None, ArgKind::None, Tag::TunNocsum),
    def("tun-csum", None, ArgKind::None, Tag::TunCsum),
    def("tun-remcsum", None, ArgKind::None, Tag::TunRemcsum),
    def("json", None, ArgKind::None, Tag::Json),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PoptError {
    NoArg,
    BadOpt,
    UnwantedArg,
}

impl PoptError {
    const fn message(self) -> &'static str {
        match self {
            Self::NoArg => "missing argument",
            Self::BadOpt => "unknown option",
            Self::UnwantedArg => "option does not take an argument",
        }
    }
}

enum Next {
    Opt(&'static OptDef, Option<String>),
    End,
    Error(PoptError),
}

/// popt's context for one argv (no aliases, no config files: ipvsadm reads none).
struct Popt<'a> {
    argv: &'a [String],
    /// Index of the next word to read.
    next: usize,
    /// Pending short options: (word index, byte offset).
    next_char: Option<(usize, usize)>,
    /// After `--`, every word is a leftover.
    rest_leftover: bool,
    leftovers: VecDeque<String>,
}

impl<'a> Popt<'a> {
    fn new(argv: &'a [String]) -> Self {
        // argv[0] is the program name.
        Self {
            argv,
            next: 1,
            next_char: None,
            rest_leftover: false,
            leftovers: VecDeque::new(),
        }
    }

    /// `poptBadOption(con, POPT_BADOPTION_NOALIAS)`: the last word read.
    fn bad_option(&self) -> &str {
        self.argv
            .get(self.next.saturating_sub(1))
            .map_or("", String::as_str)
    }

    /// `poptGetNextOpt`.
    fn next_opt(&mut self) -> Next {
        loop {
            if self.next_char.is_none() && self.next >= self.argv.len() {
                return Next::End;
            }
            let mut found: Option<&'static OptDef> = None;
            let mut long_arg: Option<String> = None;
            if self.next_char.is_none() {
                let idx = self.next;
                let word = &self.argv[idx];
                self.next += 1;
                if self.rest_leftover || !word.starts_with('-') || word == "-" {
                    self.leftovers.push_back(word.clone());
                    continue;
                }
                if word == "--" {
                    self.rest_leftover = true;
                    continue;
                }
                if let Some(body) = word.strip_prefix("--") {
                    let (name, arg) = match body.split_once('=') {
                        Some((n, a)) => (n, Some(a.to_owned())),
                        None => (body, None),
                    };
                    // Long options must match in full; no option of ipvsadm is single-dash long.
                    match OPTIONS.iter().find(|o| o.long == name) {
                        Some(o) => {
                            found = Some(o);
                            long_arg = arg;
                        }
                        None => return Next::Error(PoptError::BadOpt),
                    }
                } else {
                    self.next_char = Some((idx, 1));
                }
            }
            if let Some((widx, off)) = self.next_char.take() {
                let word = &self.argv[widx];
                let Some(c) = word[off..].chars().next() else {
                    return Next::Error(PoptError::BadOpt);
                };
                let Some(o) = OPTIONS.iter().find(|o| o.short == Some(c)) else {
                    return Next::Error(PoptError::BadOpt);
                };
                found = Some(o);
                let after = off + c.len_utf8();
                if after < word.len() {
                    self.next_char = Some((widx, after));
                }
            }
            let Some(opt) = found else {
                return Next::Error(PoptError::BadOpt);
            };
            if opt.arg == ArgKind::None {
                let eq_follows = self
                    .next_char
                    .is_some_and(|(w, off)| self.argv[w].as_bytes().get(off) == Some(&b'='));
                if long_arg.is_some() || eq_follows {
                    return Next::Error(PoptError::UnwantedArg);
                }
                return Next::Opt(opt, None);
            }
            let value = if long_arg.is_some() {
                long_arg
            } else if let Some((w, off)) = self.next_char.take() {
                let rest = &self.argv[w][off..];
                Some(rest.strip_prefix('=').unwrap_or(rest).to_owned())
            } else if self.next >= self.argv.len() {
                if opt.arg == ArgKind::Optional {
                    None
                } else {
                    return Next::Error(PoptError::NoArg);
                }
            } else {
                let w = &self.argv[self.next];
                if opt.arg == ArgKind::Optional && w.starts_with('-') {
                    None
                } else {
                    self.next += 1;
                    Some(w.clone())
                }
            };
            return Next::Opt(opt, value);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// the scan

fn truncated(s: &str, max: usize) -> String {
    let mut s = s.to_owned();
    names::truncate_bytes(&mut s, max);
    s
}

/// ipvsadm's `parse_timeout()`: `None` (bare `-p`) is the default persistence timeout.
fn parse_timeout(arg: Option<&str>, min: i64, max: i64) -> Result<u32, ArgsError> {
    let Some(s) = arg else {
        return Ok(DEFAULT_PERSISTENT_TIMEOUT);
    };
    match names::string_to_number(s, min, max) {
        Some(n) => Ok(n as u32),
        None => fail(format!("invalid timeout value `{s}' specified")),
    }
}

/// ipvsadm's `parse_fwmark()`: `strtol` base 10, 1..=4294967295.
fn parse_fwmark(s: &str) -> Result<u32, ArgsError> {
    match names::strtol10(s) {
        Some(n) if n > 0 && n <= i64::from(u32::MAX) => Ok(n as u32),
        _ => fail(format!("invalid fwmark value `{s}' specified")),
    }
}

/// C `atoi`: leading whitespace, sign and digits, whatever follows ignored; saturates.
fn atoi(s: &str) -> i64 {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for c in digits.bytes().take_while(u8::is_ascii_digit) {
        v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    if neg { -v } else { v }
}

/// ipvsadm's `parse_sched_flags()` against the scheduler known at the end of the scan.
fn parse_sched_flags(sched: &str, arg: &str) -> Result<u32, ArgsError> {
    let sched = if sched.is_empty() { "wlc" } else { sched };
    let mut flags = 0;
    let mut any = false;
    for flag in arg.split(',').filter(|f| !f.is_empty()) {
        any = true;
        let (bit, only_for) = match flag {
            "flag-1" => (svc_flags::SCHED1, None),
            "flag-2" => (svc_flags::SCHED2, None),
            "flag-3" => (svc_flags::SCHED3, None),
            "sh-fallback" => (svc_flags::SCHED1, Some("sh")),
            "sh-port" => (svc_flags::SCHED2, Some("sh")),
            "mh-fallback" => (svc_flags::SCHED1, Some("mh")),
            "mh-port" => (svc_flags::SCHED2, Some("mh")),
            _ => return fail(format!("invalid scheduler flag `{flag}'")),
        };
        flags |= bit;
        if only_for.is_some_and(|s| s != sched) {
            return fail(format!("incompatible scheduler flag `{flag}'"));
        }
    }
    if !any {
        // ipvsadm 1.31 crashes on a list made only of commas; rvsadm reports it instead.
        return fail(format!("invalid scheduler flag `{arg}'"));
    }
    Ok(flags)
}

/// Stage one: scans `argv` (with `argv[0]` the program name) like ipvsadm's `parse_options()`.
pub fn parse(argv: &[String], resolver: &dyn Resolver) -> Result<LowArgs, ArgsError> {
    let mut popt = Popt::new(argv);
    let (first, first_arg) = match popt.next_opt() {
        Next::Opt(o, a) => (o, a),
        Next::End | Next::Error(_) => return Err(ArgsError::TryHelp),
    };
    let mut la = match first.tag {
        Tag::Cmd(cmd) => LowArgs::new(cmd),
        Tag::Help => return Err(ArgsError::Help),
        Tag::Version => return Err(ArgsError::Version),
        _ => return Err(ArgsError::TryHelp),
    };
    match la.command {
        CommandKind::StartDaemon | CommandKind::StopDaemon => {
            la.daemon.role = match first_arg.as_deref() {
                Some("master") => Some(DaemonRole::Master),
                Some("backup") => Some(DaemonRole::Backup),
                _ if la.command == CommandKind::StartDaemon => {
                    return fail("illegal start-daemon parameter specified");
                }
                _ => return fail("illegal start_daemon specified"),
            };
        }
        _ => {}
    }

    let mut sched_flags_arg = String::new();
    loop {
        let (opt, arg) = match popt.next_opt() {
            Next::Opt(o, a) => (o, a),
            Next::End => break,
            Next::Error(e) => {
                return Err(ArgsError::Popt(format!(
                    "{}: {}",
                    popt.bad_option(),
                    e.message()
                )));
            }
        };
        // Options with a required argument always carry one here.
        let value = arg.as_deref().unwrap_or("");
        match opt.tag {
            Tag::TcpService | Tag::UdpService | Tag::SctpService => {
                la.set_option(Opt::Service)?;
                la.svc.protocol = match opt.tag {
                    Tag::TcpService => IPPROTO_TCP,
                    Tag::UdpService => IPPROTO_UDP,
                    _ => IPPROTO_SCTP,
                };
                let Some(p) = names::parse_service(value, la.svc.protocol, resolver) else {
                    return fail("illegal virtual server address[:port] specified");
                };
                la.svc.af = Some(Family::of(&p.addr));
                if p.addr.is_ipv6() {
                    la.svc.netmask = 128;
                }
                la.svc.addr = Some(p.addr);
                if let Some(port) = p.port {
                    la.svc.port = port;
                }
            }
            Tag::FwmarkService => {
                la.set_option(Opt::Service)?;
                la.svc.af = Some(Family::Inet);
                la.svc.protocol = IPPROTO_TCP;
                la.svc.fwmark = parse_fwmark(value)?;
            }
            Tag::Scheduler => {
                la.set_option(Opt::Scheduler)?;
                la.svc.sched_name = truncated(value, SCHED_NAME_MAX);
            }
            Tag::Persistent => {
                la.set_option(Opt::Persistent)?;
                la.svc.flags |= svc_flags::PERSISTENT;
                la.svc.timeout = parse_timeout(arg.as_deref(), 1, MAX_TIMEOUT)?;
            }
            Tag::Netmask => {
                la.set_option(Opt::Netmask)?;
                if la.svc.af == Some(Family::Inet6) {
                    let n = atoi(value);
                    if !(1..=128).contains(&n) {
                        return fail("illegal ipv6 netmask specified");
                    }
                    la.svc.netmask = n as u32;
                } else {
                    let Some(m) = names::inet_aton(value).or_else(|| resolver.host_to_ipv4(value))
                    else {
                        return fail("illegal virtual server persistent mask specified");
                    };
                    la.svc.netmask = u32::from(m);
                }
            }
            Tag::RealServer => {
                la.set_option(Opt::Server)?;
                let Some(p) = names::parse_service(value, la.svc.protocol, resolver) else {
                    return fail("illegal real server address[:port] specified");
                };
                la.dest.addr = Some(p.addr);
                // Without a port the real server takes the service port known at this point.
                la.dest.port = p.port.unwrap_or(la.svc.port);
            }
            Tag::Ipip | Tag::Gatewaying | Tag::Masquerading => {
                la.set_option(Opt::Forward)?;
                la.dest.fwd = match opt.tag {
                    Tag::Ipip => ForwardMethod::Tunnel,
                    Tag::Gatewaying => ForwardMethod::Route,
                    _ => ForwardMethod::Masq,
                };
            }
            Tag::Weight => {
                la.set_option(Opt::Weight)?;
                match names::string_to_number(value, 0, 65535) {
                    Some(n) => la.dest.weight = n as u32,
                    None => return fail("illegal weight specified"),
                }
            }
            Tag::UThreshold => {
                la.set_option(Opt::UThreshold)?;
                match names::string_to_number(value, 0, i64::from(i32::MAX)) {
                    Some(n) => la.dest.u_threshold = n as u32,
                    None => return fail("illegal u_threshold specified"),
                }
            }
            Tag::LThreshold => {
                la.set_option(Opt::LThreshold)?;
                match names::string_to_number(value, 0, i64::from(i32::MAX)) {
                    Some(n) => la.dest.l_threshold = n as u32,
                    None => return fail("illegal l_threshold specified"),
                }
            }
            Tag::Connection => la.set_option(Opt::Connection)?,
            Tag::Numeric => la.set_option(Opt::Numeric)?,
            Tag::McastInterface => {
                la.set_option(Opt::McastInterface)?;
                la.daemon.mcast_ifn = truncated(value, IFNAME_MAX);
            }
            Tag::SyncId => {
                la.set_option(Opt::SyncId)?;
                match names::string_to_number(value, 0, 255) {
                    Some(n) => la.daemon.syncid = n as u8,
                    None => return fail("illegal syncid specified"),
                }
            }
            Tag::Timeout => la.set_option(Opt::Timeout)?,
            Tag::Daemon => la.set_option(Opt::Daemon)?,
            Tag::Stats => la.set_option(Opt::Stats)?,
            Tag::Rate => la.set_option(Opt::Rate)?,
            Tag::Thresholds => la.set_option(Opt::Thresholds)?,
            Tag::PersistentConn => la.set_option(Opt::PersistentConn)?,
            Tag::NoSort => la.set_option(Opt::NoSort)?,
            Tag::Sort => {}
            Tag::Exact => la.set_option(Opt::Exact)?,
            Tag::Ipv6 => {
                if la.svc.fwmark != 0 {
                    la.svc.af = Some(Family::Inet6);
                    la.svc.netmask = 128;
                } else {
                    // ipvsadm's message carries its own newline before fail() adds one.
                    return fail("-6 used before -f\n");
                }
            }
            Tag::Ops => {
                la.set_option(Opt::Ops)?;
                la.svc.flags |= svc_flags::ONEPACKET;
            }
            Tag::Pe => {
                la.set_option(Opt::Pe)?;
                la.svc.pe_name = truncated(value, PE_NAME_MAX);
            }
            Tag::SchedFlags => {
                la.set_option(Opt::SchedFlags)?;
                sched_flags_arg = truncated(value, 127);
            }
            Tag::McastGroup => {
                la.set_option(Opt::McastGroup)?;
                la.daemon.mcast_group = Some(parse_mcast_group(value)?);
            }
            Tag::McastPort => {
                la.set_option(Opt::McastPort)?;
                match names::string_to_number(value, 1, 65535) {
                    Some(n) => la.daemon.mcast_port = n as u16,
                    None => return fail("illegal mcast-port specified"),
                }
            }
            Tag::McastTtl => {
                la.set_option(Opt::McastTtl)?;
                match names::string_to_number(value, 1, 255) {
                    Some(n) => la.daemon.mcast_ttl = n as u8,
                    None => return fail("illegal mcast-ttl specified"),
                }
            }
            Tag::SyncMaxlen => {
                la.set_option(Opt::SyncMaxlen)?;
                match names::string_to_number(value, 1, 65535 - 20 - 8) {
                    Some(n) => la.daemon.sync_maxlen = n as u16,
                    None => return fail("illegal sync-maxlen specified"),
                }
            }
            Tag::TunInfo => la.set_option(Opt::TunInfo)?,
            Tag::TunType => {
                la.set_option(Opt::TunType)?;
                la.dest.tun_type = match value {
                    "ipip" => TunnelType::Ipip,
                    "gue" => TunnelType::Gue,
                    "gre" => TunnelType::Gre,
                    _ => return fail("illegal tunnel type specified"),
                };
            }
            Tag::TunPort => {
                la.set_option(Opt::TunPort)?;
                match names::string_to_number(value, 1, 65535) {
                    Some(n) => la.dest.tun_port = n as u16,
                    None => return fail("illegal tunnel port specified"),
                }
            }
            Tag::TunNocsum => {
                la.set_option(Opt::TunNocsum)?;
                la.dest.tun_flags |= tun_flags::NOCSUM;
            }
            Tag::TunCsum => {
                la.set_option(Opt::TunCsum)?;
                la.dest.tun_flags |= tun_flags::CSUM;
            }
            Tag::TunRemcsum => {
                la.set_option(Opt::TunRemcsum)?;
                la.dest.tun_flags |= tun_flags::REMCSUM;
            }
            Tag::Json => la.set_option(Opt::Json)?,
            Tag::Cmd(_) | Tag::Help | Tag::Version => {
                return fail(format!("invalid option `{}'", popt.bad_option()));
            }
        }
    }

    if la.command == CommandKind::Set {
        let words: Vec<String> = popt.leftovers.iter().take(3).cloned().collect();
        if words.len() < 3 {
            return fail("--set option requires 3 timeout values");
        }
        popt.leftovers.drain(..3);
        la.timeouts = Some(Timeouts {
            tcp: parse_timeout(Some(&words[0]), 0, MAX_TIMEOUT)?,
            tcp_fin: parse_timeout(Some(&words[1]), 0, MAX_TIMEOUT)?,
            udp: parse_timeout(Some(&words[2]), 0, MAX_TIMEOUT)?,
        });
    }
    if let Some(word) = popt.leftovers.pop_front() {
        return fail(format!("unexpected argument {word}"));
    }
    if !sched_flags_arg.is_empty() {
        la.svc.flags &= !(svc_flags::SCHED1 | svc_flags::SCHED2 | svc_flags::SCHED3);
        la.svc.flags |= parse_sched_flags(&la.svc.sched_name, &sched_flags_arg)?;
    }
    Ok(la)
}

/// `--mcast-group`: IPv6 if the word has a `:`, else IPv4; it must be multicast.
fn parse_mcast_group(s: &str) -> Result<IpAddr, ArgsError> {
    if s.contains(':') {
        match s.parse::<std::net::Ipv6Addr>() {
            Ok(a) if a.is_multicast() => Ok(IpAddr::V6(a)),
            _ => fail(format!("invalid IPv6 mcast-group `{s}'")),
        }
    } else {
        match s.parse::<Ipv4Addr>() {
            Ok(a) if a.is_multicast() => Ok(IpAddr::V4(a)),
            _ => fail(format!("invalid IPv4 mcast-group `{s}'")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        std::iter::once("ipvsadm")
            .chain(s.split_whitespace())
            .map(str::to_owned)
            .collect()
    }

    fn scan(s: &str) -> Vec<(String, Option<String>)> {
        let argv = words(s);
        let mut p = Popt::new(&argv);
        let mut out = Vec::new();
        loop {
            match p.next_opt() {
                Next::Opt(o, a) => out.push((o.long.to_owned(), a)),
                Next::End => break,
                Next::Error(e) => {
                    out.push((
                        format!("error {}", p.bad_option()),
                        Some(e.message().to_owned()),
                    ));
                    break;
                }
            }
        }
        for l in p.leftovers {
            out.push(("leftover".to_owned(), Some(l)));
        }
        out
    }

    fn o(name: &str, arg: Option<&str>) -> (String, Option<String>) {
        (name.to_owned(), arg.map(str::to_owned))
    }

    #[test]
    fn bundles_and_arguments() {
        assert_eq!(scan("-Ln"), vec![o("list", None), o("numeric", None)]);
        assert_eq!(
            scan("-At10.0.0.1:80 -w3"),
            vec![
                o("add-service", None),
                o("tcp-service", Some("10.0.0.1:80")),
                o("weight", Some("3"))
            ]
        );
        assert_eq!(scan("-t=x"), vec![o("tcp-service", Some("x"))]);
        assert_eq!(
            scan("--weight=5 --weight 6"),
            vec![o("weight", Some("5")), o("weight", Some("6"))]
        );
        assert_eq!(scan("-t -L"), vec![o("tcp-service", Some("-L"))]);
    }

    #[test]
    fn optional_argument_of_p() {
        assert_eq!(scan("-p 600"), vec![o("persistent", Some("600"))]);
        assert_eq!(scan("-p600"), vec![o("persistent", Some("600"))]);
        assert_eq!(scan("--persistent=600"), vec![o("persistent", Some("600"))]);
        assert_eq!(
            scan("-p -s rr"),
            vec![o("persistent", None), o("scheduler", Some("rr"))]
        );
        assert_eq!(scan("-p"), vec![o("persistent", None)]);
        assert_eq!(scan("-pn"), vec![o("persistent", Some("n"))]);
    }

    #[test]
    fn errors_name_the_last_word() {
        assert_eq!(
            scan("-A -t"),
            vec![
                o("add-service", None),
                o("error -t", Some("missing argument"))
            ]
        );
        assert_eq!(
            scan("--bogus"),
            vec![o("error --bogus", Some("unknown option"))]
        );
        assert_eq!(
            scan("-Lq"),
            vec![o("list", None), o("error -Lq", Some("unknown option"))]
        );
        assert_eq!(
            scan("-n=3"),
            vec![o("error -n=3", Some("option does not take an argument"))]
        );
        assert_eq!(
            scan("--numeric=3"),
            vec![o(
                "error --numeric=3",
                Some("option does not take an argument")
            )]
        );
    }

    #[test]
    fn leftovers_and_double_dash() {
        assert_eq!(
            scan("foo -L - -- -n"),
            vec![
                o("list", None),
                o("leftover", Some("foo")),
                o("leftover", Some("-")),
                o("leftover", Some("-n"))
            ]
        );
    }

    #[test]
    fn atoi_like_c() {
        assert_eq!(atoi("64"), 64);
        assert_eq!(atoi(" 64abc"), 64);
        assert_eq!(atoi("abc"), 0);
        assert_eq!(atoi("-5"), -5);
    }
}
