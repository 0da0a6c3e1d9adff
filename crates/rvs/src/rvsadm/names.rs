//! Addresses, ports and service names, parsed and printed as ipvsadm 1.31 does.
//!
//! Parsing follows `parse_service()` of ipvsadm: an all-digit word is refused, `[v6]:port` must
//! have its port, a bare IPv6 address has no port, anything else is split at the last `:` and the
//! host goes through `inet_aton` (so `10.1` and `0x0a000001` are addresses) and then through the
//! system resolver (IPv4 only, first address). A port is a decimal number or a name from the
//! services database for the protocol known at that point of the command line.
//!
//! Printing follows `addrport_to_anyname()`: with `-n` the numeric form (`[v6]:port` in brackets),
//! otherwise a reverse lookup and a service name, each falling back to the numeric form.
//!
//! Everything that consults the machine (hosts, DNS, `/etc/services`) goes through the
//! [`Resolver`] trait, so tests can run without depending on the machine's network.

use std::cell::OnceCell;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::path::PathBuf;

/// IP protocol numbers ipvsadm distinguishes when looking up service names.
pub(crate) const IPPROTO_TCP: u8 = 6;
pub(crate) const IPPROTO_UDP: u8 = 17;
pub(crate) const IPPROTO_SCTP: u8 = 132;

/// The services-database protocol name for an IP protocol, if ipvsadm looks names up for it.
pub(crate) const fn proto_db_name(protocol: u8) -> Option<&'static str> {
    match protocol {
        IPPROTO_TCP => Some("tcp"),
        IPPROTO_UDP => Some("udp"),
        IPPROTO_SCTP => Some("sctp"),
        _ => None,
    }
}

/// Name lookups ipvsadm performs through libc.
pub trait Resolver {
    /// `gethostbyname(name)` restricted to IPv4: the first IPv4 address of `name`.
    fn host_to_ipv4(&self, name: &str) -> Option<Ipv4Addr>;
    /// `gethostbyaddr(addr)`: the host name of an address.
    fn addr_to_host(&self, addr: IpAddr) -> Option<String>;
    /// `getservbyname(name, proto)`: the port of a service name (official name or alias).
    fn service_to_port(&self, name: &str, proto: &str) -> Option<u16>;
    /// `getservbyport(port, proto)`: the official name of the service on a port.
    fn port_to_service(&self, port: u16, proto: &str) -> Option<String>;
}

/// One line of the services database: `name port/proto aliases…`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServiceLine {
    name: String,
    port: u16,
    proto: String,
    aliases: Vec<String>,
}

/// A parsed services database (`/etc/services` format), searched in file order like glibc's
/// `files` backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Services {
    lines: Vec<ServiceLine>,
}

impl Services {
    /// Parses the text of a services file. Malformed lines are skipped, as glibc does.
    pub fn parse(text: &str) -> Self {
        let mut lines = Vec::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_ascii_whitespace();
            let (Some(name), Some(port_proto)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((port, proto)) = port_proto.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            lines.push(ServiceLine {
                name: name.to_owned(),
                port,
                proto: proto.to_owned(),
                aliases: words.map(str::to_owned).collect(),
            });
        }
        Self { lines }
    }

    /// The port of `name` (official name or alias) for `proto`.
    pub fn port_of(&self, name: &str, proto: &str) -> Option<u16> {
        self.lines
            .iter()
            .find(|l| l.proto == proto && (l.name == name || l.aliases.iter().any(|a| a == name)))
            .map(|l| l.port)
    }

    /// The official name of the first service on `port` for `proto`.
    pub fn name_of(&self, port: u16, proto: &str) -> Option<&str> {
        self.lines
            .iter()
            .find(|l| l.proto == proto && l.port == port)
            .map(|l| l.name.as_str())
    }
}

/// The machine's resolver: the system host lookup (`getaddrinfo`/`getnameinfo`, so
/// `/etc/hosts` and DNS as configured in nsswitch) and a services file read on first use.
#[derive(Debug)]
pub struct SystemResolver {
    services_path: PathBuf,
    services: OnceCell<Services>,
}

impl SystemResolver {
    /// A resolver reading services from `/etc/services`.
    pub fn new() -> Self {
        Self::with_services_file("/etc/services")
    }

    /// A resolver reading services from another file.
    pub fn with_services_file(path: impl Into<PathBuf>) -> Self {
        Self {
            services_path: path.into(),
            services: OnceCell::new(),
        }
    }

    fn services(&self) -> &Services {
        self.services.get_or_init(|| {
            // A missing services file only means that no name resolves, as with libc.
            std::fs::read_to_string(&self.services_path)
                .map(|t| Services::parse(&t))
                .unwrap_or_default()
        })
    }
}

impl Default for SystemResolver {
    fn default() -> Self {
        Self::new()
    }
}

impl Resolver for SystemResolver {
    fn host_to_ipv4(&self, name: &str) -> Option<Ipv4Addr> {
        if name.is_empty() {
            return None;
        }
        (name, 0u16)
            .to_socket_addrs()
            .ok()?
            .find_map(|sa| match sa.ip() {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            })
    }

    fn addr_to_host(&self, addr: IpAddr) -> Option<String> {
        dns_lookup::lookup_addr(&addr).ok()
    }

    fn service_to_port(&self, name: &str, proto: &str) -> Option<u16> {
        self.services().port_of(name, proto)
    }

    fn port_to_service(&self, port: u16, proto: &str) -> Option<String> {
        self.services().name_of(port, proto).map(str::to_owned)
    }
}

/// C `isspace` in the C locale.
const fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `strtoul(s, &end, 0)` on a word that starts with a digit: returns the value (None on overflow
/// of u64) and the number of bytes used.
fn strtoul_base0(s: &[u8]) -> (Option<u64>, usize) {
    let (base, start) = match s {
        [b'0', b'x' | b'X', h, ..] if h.is_ascii_hexdigit() => (16u64, 2),
        [b'0', ..] => (8, 0),
        _ => (10, 0),
    };
    let mut val: Option<u64> = Some(0);
    let mut i = start;
    while let Some(&c) = s.get(i) {
        let d = match c {
            b'0'..=b'9' => u64::from(c - b'0'),
            b'a'..=b'f' => u64::from(c - b'a' + 10),
            b'A'..=b'F' => u64::from(c - b'A' + 10),
            _ => break,
        };
        if d >= base {
            break;
        }
        val = val
            .and_then(|v| v.checked_mul(base))
            .and_then(|v| v.checked_add(d));
        i += 1;
    }
    (val, i)
}

/// glibc `inet_aton`: one to four parts in decimal, octal (`0…`) or hex (`0x…`); the last part
/// fills the remaining bytes; trailing whitespace and anything after it is ignored.
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    let mut parts: Vec<u32> = Vec::with_capacity(3);
    let mut pos = 0;
    let val: u64;
    loop {
        if !b.get(pos).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        let (v, used) = strtoul_base0(&b[pos..]);
        let v = v.filter(|v| *v <= 0xffff_ffff)?;
        pos += used;
        if b.get(pos) == Some(&b'.') {
            if parts.len() > 2 || v > 0xff {
                return None;
            }
            parts.push(v as u32);
            pos += 1;
        } else {
            val = v;
            break;
        }
    }
    if let Some(&c) = b.get(pos)
        && !c_isspace(c)
    {
        return None;
    }
    let max: [u64; 4] = [0xffff_ffff, 0xff_ffff, 0xffff, 0xff];
    if val > max[parts.len()] {
        return None;
    }
    let mut word = val as u32;
    for (i, p) in parts.iter().enumerate() {
        word |= p << (24 - 8 * i);
    }
    Some(Ipv4Addr::from(word))
}

/// glibc `inet_ntop(AF_INET6)`: the longest run of at least two zero groups becomes `::`, and
/// `::a.b.c.d` / `::ffff:a.b.c.d` keep their dotted IPv4 tail.
pub fn ipv6_to_string(a: &Ipv6Addr) -> String {
    let w = a.segments();
    let (mut best_base, mut best_len) = (None::<usize>, 0usize);
    let (mut cur_base, mut cur_len) = (None::<usize>, 0usize);
    for (i, word) in w.iter().enumerate() {
        if *word == 0 {
            if cur_base.is_none() {
                cur_base = Some(i);
                cur_len = 1;
            } else {
                cur_len += 1;
            }
        } else if cur_base.is_some() {
            if best_base.is_none() || cur_len > best_len {
                (best_base, best_len) = (cur_base, cur_len);
            }
            cur_base = None;
        }
    }
    if cur_base.is_some() && (best_base.is_none() || cur_len > best_len) {
        (best_base, best_len) = (cur_base, cur_len);
    }
    if best_len < 2 {
        best_base = None;
    }
    let mut out = String::with_capacity(40);
    let mut i = 0;
    while i < 8 {
        if let Some(base) = best_base
            && i >= base
            && i < base + best_len
        {
            if i == base {
                out.push(':');
            }
            i += 1;
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6 && best_base == Some(0) && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)) {
            let o = a.octets();
            let _ = write!(out, "{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
            break;
        }
        let _ = write!(out, "{:x}", w[i]);
        i += 1;
    }
    if let Some(base) = best_base
        && base + best_len == 8
    {
        out.push(':');
    }
    out
}

/// `inet_ntop` for either family.
pub fn addr_to_string(addr: &IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => ipv6_to_string(a),
    }
}

/// `string_to_number(s, min, max)` of ipvsadm: `strtol` base 10 on the whole word (leading
/// whitespace and a sign allowed), then a range check.
pub fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    let n = strtol10(s)?;
    (min..=max).contains(&n).then_some(n)
}

/// `strtol(s, &end, 10)` that must consume the whole word; None if it does not or overflows.
pub(crate) fn strtol10(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let mut i = 0;
    while b.get(i).is_some_and(|c| c_isspace(*c)) {
        i += 1;
    }
    let neg = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let start = i;
    let mut v: i128 = 0;
    while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
        v = (v * 10 + i128::from(c - b'0')).min(i128::from(i64::MAX) + 2);
        i += 1;
    }
    if i == start || i != b.len() {
        return None;
    }
    let v = if neg { -v } else { v };
    i64::try_from(v).ok()
}

/// What `parse_service` found in a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedAddr {
    /// The address.
    pub addr: IpAddr,
    /// The port, if the word had one.
    pub port: Option<u16>,
}

/// ipvsadm's `parse_service()`: `host[:port]`, `[v6]:port` or a bare IPv6 address.
/// `protocol` is the IP protocol known at this point (0 if none), used for service names.
pub fn parse_service(word: &str, protocol: u8, resolver: &dyn Resolver) -> Option<ParsedAddr> {
    if word.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut buf = word;
    // `Some(p)`: the port text follows the separator.
    let mut port_text: Option<&str> = None;
    if let Some(rest) = buf.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let p = after.strip_prefix(':')?;
        buf = inside;
        port_text = Some(p);
    }
    let addr = if let Ok(a6) = buf.parse::<Ipv6Addr>() {
        IpAddr::V6(a6)
    } else {
        // A bracketed word that is not IPv6 is split again; its port was already cut off, so
        // `[10.0.0.1]:80` means 10.0.0.1 with no port, as in ipvsadm.
        match buf.rfind(':') {
            Some(i) => {
                port_text = Some(&buf[i + 1..]);
                buf = &buf[..i];
            }
            None => port_text = None,
        }
        let a4 = inet_aton(buf).or_else(|| resolver.host_to_ipv4(buf))?;
        IpAddr::V4(a4)
    };
    let port = match port_text {
        None => None,
        Some(p) => Some(parse_port(p, protocol, resolver)?),
    };
    Some(ParsedAddr { addr, port })
}

/// A port number 0..=65535 or a service name for `protocol`.
pub fn parse_port(text: &str, protocol: u8, resolver: &dyn Resolver) -> Option<u16> {
    if let Some(n) = string_to_number(text, 0, 65535) {
        return u16::try_from(n).ok();
    }
    resolver.service_to_port(text, proto_db_name(protocol)?)
}

/// ipvsadm's `addrport_to_anyname()`: `addr:port` with names unless `numeric`; IPv6 in brackets.
pub fn addrport_to_anyname(
    addr: &IpAddr,
    port: u16,
    protocol: u8,
    numeric: bool,
    resolver: &dyn Resolver,
) -> String {
    let (open, close) = match addr {
        IpAddr::V4(_) => ("", ""),
        IpAddr::V6(_) => ("[", "]"),
    };
    if numeric {
        return format!("{open}{}{close}:{port}", addr_to_string(addr));
    }
    let host = resolver
        .addr_to_host(*addr)
        .unwrap_or_else(|| addr_to_string(addr));
    let service = proto_db_name(protocol)
        .and_then(|p| resolver.port_to_service(port, p))
        .unwrap_or_else(|| port.to_string());
    // ipvsadm formats into a 60-byte buffer.
    let mut s = format!("{open}{host}{close}:{service}");
    truncate_bytes(&mut s, 59);
    s
}

/// Cuts `s` to at most `max` bytes, at a character boundary.
pub(crate) fn truncate_bytes(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_aton_forms() {
        let ok = |s: &str, a: [u8; 4]| assert_eq!(inet_aton(s), Some(Ipv4Addr::from(a)), "{s}");
        ok("10.0.0.1", [10, 0, 0, 1]);
        ok("10.1", [10, 0, 0, 1]);
        ok("10.1.2", [10, 1, 0, 2]);
        ok("0x0a000001", [10, 0, 0, 1]);
        ok("012.0.0.1", [10, 0, 0, 1]);
        ok("1", [0, 0, 0, 1]);
        ok("1.2.3.4 trailing", [1, 2, 3, 4]);
        ok("4294967295", [255, 255, 255, 255]);
        for bad in [
            "",
            "300.0.0.1",
            "1.2.3.4.5",
            "08",
            "0x",
            "a.b.c.d",
            "1.2.3.256",
            "1..2",
            "1.",
            "4294967296",
            " 1.2.3.4",
        ] {
            assert_eq!(inet_aton(bad), None, "{bad}");
        }
    }

    #[test]
    fn ipv6_formatting_matches_glibc() {
        let f = |s: &str| ipv6_to_string(&s.parse().unwrap());
        assert_eq!(f("::2"), "::2");
        assert_eq!(f("::1.2.3.4"), "::1.2.3.4");
        assert_eq!(f("::ffff:1.2.3.4"), "::ffff:1.2.3.4");
        assert_eq!(f("::"), "::");
        assert_eq!(f("2001:db8::1"), "2001:db8::1");
        assert_eq!(f("1::"), "1::");
        assert_eq!(f("2001:db8:0:1:0:0:0:1"), "2001:db8:0:1::1");
        assert_eq!(f("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
        assert_eq!(f("1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7");
    }

    #[test]
    fn strtol_like_ipvsadm() {
        assert_eq!(string_to_number("80", 0, 65535), Some(80));
        assert_eq!(string_to_number(" +80", 0, 65535), Some(80));
        assert_eq!(string_to_number("-1", 0, 65535), None);
        assert_eq!(string_to_number("", 0, 65535), None);
        assert_eq!(string_to_number("80x", 0, 65535), None);
        assert_eq!(
            string_to_number("99999999999999999999999", 0, i64::MAX),
            None
        );
    }

    #[test]
    fn services_file() {
        let s = Services::parse("# c\nhttp\t80/tcp www # web\nhttp 80/udp\nwww-alt 80/tcp\nbad\n");
        assert_eq!(s.port_of("www", "tcp"), Some(80));
        assert_eq!(s.port_of("http", "sctp"), None);
        assert_eq!(s.name_of(80, "tcp"), Some("http"));
        assert_eq!(s.name_of(81, "tcp"), None);
    }
}
