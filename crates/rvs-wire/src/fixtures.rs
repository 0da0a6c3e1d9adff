//! Real frames captured by `tests/fixtures/capture.sh`, split by `extract.py` (which
//! generates this file: do not edit by hand).
//!
//! Topology: a (198.18.0.1, 2001:db8::1, 02:00:00:00:00:0a) -- r (198.18.0.2 / 198.18.1.1,
//! 2001:db8::2 / 2001:db8:1::1, 02:00:00:00:00:01) -- b (198.18.1.2, 2001:db8:1::2); r forwards
//! and its link to b has a 1280-byte MTU. All frames were captured on a's interface.

pub(crate) const ARP_REPLY: &[u8] = include_bytes!("../tests/fixtures/frames/arp-reply.bin");
pub(crate) const ARP_REQUEST: &[u8] = include_bytes!("../tests/fixtures/frames/arp-request.bin");
pub(crate) const ICMP4_ECHO_REPLY: &[u8] =
    include_bytes!("../tests/fixtures/frames/icmp4-echo-reply.bin");
pub(crate) const ICMP4_ECHO_REQUEST: &[u8] =
    include_bytes!("../tests/fixtures/frames/icmp4-echo-request.bin");
pub(crate) const ICMP4_ECHO_TTL1: &[u8] =
    include_bytes!("../tests/fixtures/frames/icmp4-echo-ttl1.bin");
pub(crate) const ICMP4_FRAG_NEEDED: &[u8] =
    include_bytes!("../tests/fixtures/frames/icmp4-frag-needed.bin");
pub(crate) const ICMP4_PORT_UNREACHABLE: &[u8] =
    include_bytes!("../tests/fixtures/frames/icmp4-port-unreachable.bin");
pub(crate) const ICMP4_PORT_UNREACHABLE_576: &[u8] =
    include_bytes!("../tests/fixtures/frames/icmp4-port-unreachable-576.bin");
pub(crate) const ICMP4_TIME_EXCEEDED: &[u8] =
    include_bytes!("../tests/fixtures/frames/icmp4-time-exceeded.bin");
pub(crate) const ICMP6_ECHO_HOPS1: &[u8] =
    include_bytes!("../tests/fixtures/frames/icmp6-echo-hops1.bin");
pub(crate) const ICMP6_ECHO_REPLY: &[u8] =
    include_bytes!("../tests/fixtures/frames/icmp6-echo-reply.bin");
pub(crate) const ICMP6_ECHO_REQUEST: &[u8] =
    include_bytes!("../tests/fixtures/frames/icmp6-echo-request.bin");
pub(crate) const ICMP6_PKT_TOO_BIG: &[u8] =
    include_bytes!("../tests/fixtures/frames/icmp6-pkt-too-big.bin");
pub(crate) const ICMP6_PORT_UNREACHABLE: &[u8] =
    include_bytes!("../tests/fixtures/frames/icmp6-port-unreachable.bin");
pub(crate) const ICMP6_PORT_UNREACHABLE_1280: &[u8] =
    include_bytes!("../tests/fixtures/frames/icmp6-port-unreachable-1280.bin");
pub(crate) const ICMP6_TIME_EXCEEDED: &[u8] =
    include_bytes!("../tests/fixtures/frames/icmp6-time-exceeded.bin");
pub(crate) const IPV4_FRAG_FIRST: &[u8] =
    include_bytes!("../tests/fixtures/frames/ipv4-frag-first.bin");
pub(crate) const IPV4_FRAG_LAST: &[u8] =
    include_bytes!("../tests/fixtures/frames/ipv4-frag-last.bin");
pub(crate) const IPV4_FRAG_MIDDLE: &[u8] =
    include_bytes!("../tests/fixtures/frames/ipv4-frag-middle.bin");
pub(crate) const IPV6_FRAG_FIRST: &[u8] =
    include_bytes!("../tests/fixtures/frames/ipv6-frag-first.bin");
pub(crate) const IPV6_FRAG_LAST: &[u8] =
    include_bytes!("../tests/fixtures/frames/ipv6-frag-last.bin");
pub(crate) const IPV6_FRAG_MIDDLE: &[u8] =
    include_bytes!("../tests/fixtures/frames/ipv6-frag-middle.bin");
pub(crate) const MLD_REPORT_HBH: &[u8] =
    include_bytes!("../tests/fixtures/frames/mld-report-hbh.bin");
pub(crate) const MLD_REPORT_HBH_UNSPEC: &[u8] =
    include_bytes!("../tests/fixtures/frames/mld-report-hbh-unspec.bin");
pub(crate) const NA: &[u8] = include_bytes!("../tests/fixtures/frames/na.bin");
pub(crate) const NS: &[u8] = include_bytes!("../tests/fixtures/frames/ns.bin");
pub(crate) const NS_DAD: &[u8] = include_bytes!("../tests/fixtures/frames/ns-dad.bin");
pub(crate) const ROUTER_SOLICIT: &[u8] =
    include_bytes!("../tests/fixtures/frames/router-solicit.bin");
pub(crate) const TCP4_ACK: &[u8] = include_bytes!("../tests/fixtures/frames/tcp4-ack.bin");
pub(crate) const TCP4_FIN: &[u8] = include_bytes!("../tests/fixtures/frames/tcp4-fin.bin");
pub(crate) const TCP4_PSH: &[u8] = include_bytes!("../tests/fixtures/frames/tcp4-psh.bin");
pub(crate) const TCP4_RST: &[u8] = include_bytes!("../tests/fixtures/frames/tcp4-rst.bin");
pub(crate) const TCP4_SYN: &[u8] = include_bytes!("../tests/fixtures/frames/tcp4-syn.bin");
pub(crate) const TCP4_SYN_CLOSED: &[u8] =
    include_bytes!("../tests/fixtures/frames/tcp4-syn-closed.bin");
pub(crate) const TCP4_SYNACK: &[u8] = include_bytes!("../tests/fixtures/frames/tcp4-synack.bin");
pub(crate) const TCP6_PSH: &[u8] = include_bytes!("../tests/fixtures/frames/tcp6-psh.bin");
pub(crate) const TCP6_RST: &[u8] = include_bytes!("../tests/fixtures/frames/tcp6-rst.bin");
pub(crate) const TCP6_SYN: &[u8] = include_bytes!("../tests/fixtures/frames/tcp6-syn.bin");
pub(crate) const TCP6_SYNACK: &[u8] = include_bytes!("../tests/fixtures/frames/tcp6-synack.bin");
pub(crate) const UDP4: &[u8] = include_bytes!("../tests/fixtures/frames/udp4.bin");
pub(crate) const UDP4_CLOSED_PORT: &[u8] =
    include_bytes!("../tests/fixtures/frames/udp4-closed-port.bin");
pub(crate) const UDP4_DF_1400: &[u8] = include_bytes!("../tests/fixtures/frames/udp4-df-1400.bin");
pub(crate) const UDP4_IPOPTS: &[u8] = include_bytes!("../tests/fixtures/frames/udp4-ipopts.bin");
pub(crate) const UDP4_REPLY: &[u8] = include_bytes!("../tests/fixtures/frames/udp4-reply.bin");
pub(crate) const UDP6: &[u8] = include_bytes!("../tests/fixtures/frames/udp6.bin");
pub(crate) const UDP6_1400: &[u8] = include_bytes!("../tests/fixtures/frames/udp6-1400.bin");
pub(crate) const UDP6_CLOSED_PORT: &[u8] =
    include_bytes!("../tests/fixtures/frames/udp6-closed-port.bin");
pub(crate) const UDP6_DSTOPTS: &[u8] = include_bytes!("../tests/fixtures/frames/udp6-dstopts.bin");
pub(crate) const UDP6_REPLY: &[u8] = include_bytes!("../tests/fixtures/frames/udp6-reply.bin");

/// Every fixture with its name, for tests that sweep them all.
pub(crate) const ALL: &[(&str, &[u8])] = &[
    ("arp-reply", ARP_REPLY),
    ("arp-request", ARP_REQUEST),
    ("icmp4-echo-reply", ICMP4_ECHO_REPLY),
    ("icmp4-echo-request", ICMP4_ECHO_REQUEST),
    ("icmp4-echo-ttl1", ICMP4_ECHO_TTL1),
    ("icmp4-frag-needed", ICMP4_FRAG_NEEDED),
    ("icmp4-port-unreachable", ICMP4_PORT_UNREACHABLE),
    ("icmp4-port-unreachable-576", ICMP4_PORT_UNREACHABLE_576),
    ("icmp4-time-exceeded", ICMP4_TIME_EXCEEDED),
    ("icmp6-echo-hops1", ICMP6_ECHO_HOPS1),
    ("icmp6-echo-reply", ICMP6_ECHO_REPLY),
    ("icmp6-echo-request", ICMP6_ECHO_REQUEST),
    ("icmp6-pkt-too-big", ICMP6_PKT_TOO_BIG),
    ("icmp6-port-unreachable", ICMP6_PORT_UNREACHABLE),
    ("icmp6-port-unreachable-1280", ICMP6_PORT_UNREACHABLE_1280),
    ("icmp6-time-exceeded", ICMP6_TIME_EXCEEDED),
    ("ipv4-frag-first", IPV4_FRAG_FIRST),
    ("ipv4-frag-last", IPV4_FRAG_LAST),
    ("ipv4-frag-middle", IPV4_FRAG_MIDDLE),
    ("ipv6-frag-first", IPV6_FRAG_FIRST),
    ("ipv6-frag-last", IPV6_FRAG_LAST),
    ("ipv6-frag-middle", IPV6_FRAG_MIDDLE),
    ("mld-report-hbh", MLD_REPORT_HBH),
    ("mld-report-hbh-unspec", MLD_REPORT_HBH_UNSPEC),
    ("na", NA),
    ("ns", NS),
    ("ns-dad", NS_DAD),
    ("router-solicit", ROUTER_SOLICIT),
    ("tcp4-ack", TCP4_ACK),
    ("tcp4-fin", TCP4_FIN),
    ("tcp4-psh", TCP4_PSH),
    ("tcp4-rst", TCP4_RST),
    ("tcp4-syn", TCP4_SYN),
    ("tcp4-syn-closed", TCP4_SYN_CLOSED),
    ("tcp4-synack", TCP4_SYNACK),
    ("tcp6-psh", TCP6_PSH),
    ("tcp6-rst", TCP6_RST),
    ("tcp6-syn", TCP6_SYN),
    ("tcp6-synack", TCP6_SYNACK),
    ("udp4", UDP4),
    ("udp4-closed-port", UDP4_CLOSED_PORT),
    ("udp4-df-1400", UDP4_DF_1400),
    ("udp4-ipopts", UDP4_IPOPTS),
    ("udp4-reply", UDP4_REPLY),
    ("udp6", UDP6),
    ("udp6-1400", UDP6_1400),
    ("udp6-closed-port", UDP6_CLOSED_PORT),
    ("udp6-dstopts", UDP6_DSTOPTS),
    ("udp6-reply", UDP6_REPLY),
];
