//! The test lab: an [`Engine`] wired to two interfaces, frame builders (etherparse) and an
//! independent oracle that parses what the engine emits.
//!
//! Topology (all addresses from 198.18.0.0/15 and 2001:db8::/32):
//!
//! ```text
//!  clients 198.19.x.y / 2001:db8:ff::x                 real servers 198.18.1.11+ / 2001:db8:1::11+
//!        │ (behind a router 198.18.0.1 / 2001:db8::1)          │ (on-link)
//!   ext  198.18.0.2 / 2001:db8::2  ── engine ──  int  198.18.1.1 / 2001:db8:1::1
//!        VIPs 198.18.0.100, 2001:db8::100
//! ```

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use etherparse::{
    IpHeaders, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, PacketBuilder, TcpHeader,
};
use rvs_api::{
    ConnEntry, DestEntry, DestSpec, ForwardMethod, Protocol, Request, Response, ServiceEntry,
    ServiceKey, ServiceSpec,
};
use rvs_engine::{Engine, EngineConfig, IfaceId, Interface, Mac, Route, Verdict};
use rvs_wire::PacketBuf;

pub(crate) const HEADROOM: usize = 256;
pub(crate) const TAILROOM: usize = 256;

pub(crate) const EXT_MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];
pub(crate) const INT_MAC: Mac = [0x02, 0, 0, 0, 0, 0x02];
pub(crate) const ROUTER_MAC: Mac = [0x02, 0, 0, 0, 0, 0xfe];

pub(crate) const TH_FIN: u8 = 0x01;
pub(crate) const TH_SYN: u8 = 0x02;
pub(crate) const TH_RST: u8 = 0x04;
pub(crate) const TH_PSH: u8 = 0x08;
pub(crate) const TH_ACK: u8 = 0x10;

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(crate) fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub(crate) fn vip4() -> IpAddr {
    ip("198.18.0.100")
}
pub(crate) fn vip6() -> IpAddr {
    ip("2001:db8::100")
}
pub(crate) fn dip_ext4() -> IpAddr {
    ip("198.18.0.2")
}
pub(crate) fn dip_int4() -> IpAddr {
    ip("198.18.1.1")
}
pub(crate) fn dip_ext6() -> IpAddr {
    ip("2001:db8::2")
}
pub(crate) fn dip_int6() -> IpAddr {
    ip("2001:db8:1::1")
}
pub(crate) fn router4() -> IpAddr {
    ip("198.18.0.1")
}
pub(crate) fn router6() -> IpAddr {
    ip("2001:db8::1")
}

/// Number of real servers the lab knows neighbours for (per family).
pub(crate) const RS_COUNT: u16 = 128;

/// Real server `i` (0-based) of a family.
pub(crate) fn rip(v6: bool, i: u16) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x11 + i))
    } else {
        IpAddr::V4(Ipv4Addr::from(
            u32::from(Ipv4Addr::new(198, 18, 1, 11)) + u32::from(i),
        ))
    }
}

/// MAC of real server `i`.
pub(crate) fn rs_mac(i: u16) -> Mac {
    [0x02, 0, 0, 1, (i >> 8) as u8, i as u8]
}

/// The index of a real-server address, if it is one of the lab's.
pub(crate) fn rs_index(addr: IpAddr) -> Option<u16> {
    (0..RS_COUNT).find(|&i| rip(addr.is_ipv6(), i) == addr)
}

/// Client `n` of a family (distinct addresses, off-link behind the router).
pub(crate) fn client(v6: bool, n: u32) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(
            u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0)) + u128::from(n) + 1,
        ))
    } else {
        // 198.19.0.1 upwards (198.19.0.0/16 lies inside 198.18.0.0/15).
        IpAddr::V4(Ipv4Addr::from(
            u32::from(Ipv4Addr::new(198, 19, 0, 0)) + n + 1,
        ))
    }
}

/// The VIP of a family.
pub(crate) fn vip(v6: bool) -> IpAddr {
    if v6 { vip6() } else { vip4() }
}

pub(crate) fn tcp_key(vip: IpAddr, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: vip,
        port,
    }
}

pub(crate) fn udp_key(vip: IpAddr, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: vip,
        port,
    }
}

/// IP header options of a built packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IpOpts {
    pub(crate) ttl: u8,
    /// IPv4 TOS / IPv6 traffic class (DSCP << 2 | ECN).
    pub(crate) tos: u8,
    pub(crate) df: bool,
    pub(crate) ident: u16,
}

impl Default for IpOpts {
    fn default() -> Self {
        Self {
            ttl: 64,
            tos: 0,
            df: true,
            ident: 0x1234,
        }
    }
}

/// Transport of a built packet.
#[derive(Debug, Clone, Copy)]
pub(crate) enum L4 {
    Tcp { flags: u8, seq: u32, ack: u32 },
    Udp,
}

pub(crate) fn tcp_flags(flags: u8) -> L4 {
    L4::Tcp {
        flags,
        seq: 1000,
        ack: if flags & TH_ACK != 0 { 2000 } else { 0 },
    }
}

/// An Ethernet frame `src → dst` built by etherparse.
pub(crate) fn build(
    src_mac: Mac,
    dst_mac: Mac,
    src: SocketAddr,
    dst: SocketAddr,
    l4: L4,
    payload: &[u8],
    o: IpOpts,
) -> Vec<u8> {
    let proto = match l4 {
        L4::Tcp { .. } => IpNumber::TCP,
        L4::Udp => IpNumber::UDP,
    };
    let eth = PacketBuilder::ethernet2(src_mac, dst_mac);
    let ip_step = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = Ipv4Header::new(0, o.ttl, proto, s.octets(), d.octets()).unwrap();
            h.dont_fragment = o.df;
            h.identification = o.ident;
            h.dscp = etherparse::IpDscp::try_new(o.tos >> 2).unwrap();
            h.ecn = etherparse::IpEcn::try_new(o.tos & 3).unwrap();
            eth.ip(IpHeaders::Ipv4(h, Default::default()))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let h = Ipv6Header {
                traffic_class: o.tos,
                flow_label: Ipv6FlowLabel::try_new(0x12345).unwrap(),
                payload_length: 0,
                next_header: proto,
                hop_limit: o.ttl,
                source: s.octets(),
                destination: d.octets(),
            };
            eth.ip(IpHeaders::Ipv6(h, Default::default()))
        }
        _ => panic!("mixed families"),
    };
    let mut out = Vec::new();
    match l4 {
        L4::Tcp { flags, seq, ack } => {
            let mut h = TcpHeader::new(src.port(), dst.port(), seq, 64240);
            h.fin = flags & TH_FIN != 0;
            h.syn = flags & TH_SYN != 0;
            h.rst = flags & TH_RST != 0;
            h.psh = flags & TH_PSH != 0;
            h.ack = flags & TH_ACK != 0;
            h.urg = flags & 0x20 != 0;
            h.acknowledgment_number = ack;
            ip_step.tcp_header(h).write(&mut out, payload).unwrap();
        }
        L4::Udp => ip_step
            .udp(src.port(), dst.port())
            .write(&mut out, payload)
            .unwrap(),
    }
    out
}

/// A client → VIP frame as the router delivers it on `ext`.
pub(crate) fn from_client(src: SocketAddr, dst: SocketAddr, l4: L4, payload: &[u8]) -> Vec<u8> {
    build(
        ROUTER_MAC,
        EXT_MAC,
        src,
        dst,
        l4,
        payload,
        IpOpts::default(),
    )
}

/// A real server → client frame (NAT reply) arriving on `int`.
pub(crate) fn from_server(
    rs: u16,
    src: SocketAddr,
    dst: SocketAddr,
    l4: L4,
    payload: &[u8],
) -> Vec<u8> {
    build(
        rs_mac(rs),
        INT_MAC,
        src,
        dst,
        l4,
        payload,
        IpOpts::default(),
    )
}

/// ICMP error frame between `(src_mac, dst_mac)` (`kind`, `code`, rest-of-header `rest`) from `src` to `dst`, quoting
/// `quoted` (an IP packet).
pub(crate) fn icmp_error(
    (src_mac, dst_mac): (Mac, Mac),
    src: IpAddr,
    dst: IpAddr,
    kind: u8,
    code: u8,
    rest: [u8; 4],
    quoted: &[u8],
) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(src_mac, dst_mac);
    let mut out = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth
            .ipv4(s.octets(), d.octets(), 64)
            .icmpv4_raw(kind, code, rest)
            .write(&mut out, quoted)
            .unwrap(),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth
            .ipv6(s.octets(), d.octets(), 64)
            .icmpv6_raw(kind, code, rest)
            .write(&mut out, quoted)
            .unwrap(),
        _ => panic!("mixed families"),
    }
    out
}

/// An ARP request "who has `target`? tell `sender`" from `mac`.
pub(crate) fn arp_request(mac: Mac, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&sender.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f
}

/// A neighbour solicitation for `target` from `src` (with a source link-layer option).
pub(crate) fn neighbour_solicit(mac: Mac, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let o = target.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    );
    let g = group.octets();
    let dst_mac = [0x33, 0x33, g[12], g[13], g[14], g[15]];
    let mut body = target.octets().to_vec();
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(&mac);
    let mut out = Vec::new();
    PacketBuilder::ethernet2(mac, dst_mac)
        .ipv6(src.octets(), group.octets(), 255)
        .icmpv6_raw(135, 0, [0; 4])
        .write(&mut out, &body)
        .unwrap();
    out
}

/// The result of one [`Lab::run`].
#[derive(Debug, Clone)]
pub(crate) struct Out {
    pub(crate) verdict: Verdict,
    pub(crate) bytes: Vec<u8>,
}

/// The engine and its surroundings.
#[derive(Debug)]
pub(crate) struct Lab {
    pub(crate) engine: Engine,
    pub(crate) t0: Instant,
    pub(crate) now: Instant,
    pub(crate) ext: IfaceId,
    pub(crate) int: IfaceId,
}

impl Lab {
    pub(crate) fn new() -> Self {
        Self::with_config(EngineConfig {
            seed: 42,
            conn_capacity: 1024,
        })
    }

    pub(crate) fn with_config(cfg: EngineConfig) -> Self {
        let t0 = Instant::now();
        let mut engine = Engine::new(t0, cfg);
        let ext = engine.add_interface(Interface {
            name: "ext".into(),
            mac: EXT_MAC,
            mtu: 1500,
            addrs: vec![dip_ext4(), dip_ext6()],
        });
        let int = engine.add_interface(Interface {
            name: "int".into(),
            mac: INT_MAC,
            mtu: 1500,
            addrs: vec![dip_int4(), dip_int6()],
        });
        let route = |dst: &str, prefix_len, iface, gateway: Option<IpAddr>| Route {
            dst: ip(dst),
            prefix_len,
            iface,
            gateway,
            src: None,
        };
        engine.set_routes(vec![
            route("0.0.0.0", 0, ext, Some(router4())),
            route("198.18.0.0", 24, ext, None),
            route("198.18.1.0", 24, int, None),
            route("::", 0, ext, Some(router6())),
            route("2001:db8::", 64, ext, None),
            route("2001:db8:1::", 64, int, None),
        ]);
        engine.set_neighbour(ext, router4(), Some(ROUTER_MAC));
        engine.set_neighbour(ext, router6(), Some(ROUTER_MAC));
        for i in 0..RS_COUNT {
            engine.set_neighbour(int, rip(false, i), Some(rs_mac(i)));
            engine.set_neighbour(int, rip(true, i), Some(rs_mac(i)));
        }
        Self {
            engine,
            t0,
            now: t0,
            ext,
            int,
        }
    }

    /// Moves the clock forward and runs the timers.
    pub(crate) fn advance(&mut self, d: Duration) {
        self.now += d;
        self.engine.handle_timeout(self.now);
    }

    /// Moves the clock forward in `step`s, running the timers at every step.
    pub(crate) fn advance_by_steps(&mut self, total: Duration, step: Duration) {
        let end = self.now + total;
        while self.now + step <= end {
            self.advance(step);
        }
        if self.now < end {
            let rest = end - self.now;
            self.advance(rest);
        }
    }

    /// Runs `frame` (received on `iface`) through the engine.
    pub(crate) fn run(&mut self, iface: IfaceId, frame: &[u8]) -> Out {
        self.run_marked(iface, 0, frame)
    }

    pub(crate) fn run_marked(&mut self, iface: IfaceId, mark: u32, frame: &[u8]) -> Out {
        let mut buf = vec![0u8; HEADROOM + frame.len() + TAILROOM];
        buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        let mut pkt = PacketBuf::new(&mut buf, HEADROOM, frame.len()).unwrap();
        let verdict = self.engine.process_marked(self.now, iface, mark, &mut pkt);
        Out {
            verdict,
            bytes: pkt.data().to_vec(),
        }
    }

    /// Applies a request that must succeed.
    pub(crate) fn ok(&mut self, req: Request) {
        let r = self.engine.control(self.now, req.clone());
        assert_eq!(r, Response::Ok, "request {req:?}");
    }

    /// Applies a request and returns its answer.
    pub(crate) fn req(&mut self, req: Request) -> Response {
        self.engine.control(self.now, req)
    }

    /// Adds a service with scheduler `sched`; `f` adjusts the spec.
    pub(crate) fn add_service(
        &mut self,
        key: ServiceKey,
        sched: &str,
        f: impl FnOnce(&mut ServiceSpec),
    ) {
        let mut spec = ServiceSpec::new(key);
        spec.scheduler = sched.into();
        f(&mut spec);
        self.ok(Request::AddService { spec });
    }

    /// Adds real server `addr:port`.
    pub(crate) fn add_dest(
        &mut self,
        key: ServiceKey,
        addr: IpAddr,
        port: u16,
        method: ForwardMethod,
        weight: u32,
    ) {
        let mut dest = DestSpec::new(addr, port);
        dest.fwd_method = method;
        dest.weight = weight;
        self.ok(Request::AddDest { service: key, dest });
    }

    pub(crate) fn conns(&mut self) -> Vec<ConnEntry> {
        match self.req(Request::ListConns) {
            Response::Conns { conns } => conns,
            r => panic!("ListConns: {r:?}"),
        }
    }

    /// The connections (no templates), sorted by client.
    pub(crate) fn flows(&mut self) -> Vec<ConnEntry> {
        let mut v: Vec<_> = self
            .conns()
            .into_iter()
            .filter(|c| c.flags & 0x1000 == 0)
            .collect();
        v.sort_by_key(|c| (c.caddr, c.cport));
        v
    }

    /// The persistence templates.
    pub(crate) fn templates(&mut self) -> Vec<ConnEntry> {
        self.conns()
            .into_iter()
            .filter(|c| c.flags & 0x1000 != 0)
            .collect()
    }

    pub(crate) fn service(&mut self, key: ServiceKey) -> ServiceEntry {
        match self.req(Request::GetService { key }) {
            Response::Services { mut services } => services.remove(0),
            r => panic!("GetService: {r:?}"),
        }
    }

    pub(crate) fn dest(&mut self, key: ServiceKey, addr: IpAddr) -> DestEntry {
        self.service(key)
            .dests
            .into_iter()
            .find(|d| d.spec.addr == addr)
            .unwrap_or_else(|| panic!("no dest {addr}"))
    }

    /// `(active, inactive)` of real server `addr`.
    pub(crate) fn counts(&mut self, key: ServiceKey, addr: IpAddr) -> (u32, u32) {
        let d = self.dest(key, addr);
        (d.activeconns, d.inactconns)
    }

    /// The count of a drop reason.
    pub(crate) fn drops(&self, name: &str) -> u64 {
        self.engine
            .drop_counters()
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, c)| *c)
    }
}

// ----- oracle ---------------------------------------------------------------------------

/// An IP packet as the oracle sees it.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub(crate) dst_mac: Mac,
    pub(crate) src_mac: Mac,
    pub(crate) ethertype: u16,
    pub(crate) ip: IpView,
}

/// The IP layer of a parsed packet (owned copies of etherparse's headers).
#[derive(Debug, Clone)]
pub(crate) enum IpView {
    V4(Ipv4Header, Vec<u8>),
    V6(Ipv6Header, Vec<u8>),
}

impl IpView {
    pub(crate) fn src(&self) -> IpAddr {
        match self {
            Self::V4(h, _) => IpAddr::V4(h.source.into()),
            Self::V6(h, _) => IpAddr::V6(h.source.into()),
        }
    }
    pub(crate) fn dst(&self) -> IpAddr {
        match self {
            Self::V4(h, _) => IpAddr::V4(h.destination.into()),
            Self::V6(h, _) => IpAddr::V6(h.destination.into()),
        }
    }
    pub(crate) fn ttl(&self) -> u8 {
        match self {
            Self::V4(h, _) => h.time_to_live,
            Self::V6(h, _) => h.hop_limit,
        }
    }
    pub(crate) fn proto(&self) -> u8 {
        match self {
            Self::V4(h, _) => h.protocol.0,
            Self::V6(h, _) => h.next_header.0,
        }
    }
    pub(crate) fn tos(&self) -> u8 {
        match self {
            Self::V4(h, _) => (h.dscp.value() << 2) | h.ecn.value(),
            Self::V6(h, _) => h.traffic_class,
        }
    }
    /// The IP payload (transport header and data).
    pub(crate) fn payload(&self) -> &[u8] {
        match self {
            Self::V4(_, p) | Self::V6(_, p) => p,
        }
    }
    /// Whole datagram length.
    pub(crate) fn total_len(&self) -> usize {
        match self {
            Self::V4(h, p) => {
                assert_eq!(usize::from(h.total_len), h.header_len() + p.len());
                usize::from(h.total_len)
            }
            Self::V6(h, p) => {
                assert_eq!(usize::from(h.payload_length), p.len());
                40 + p.len()
            }
        }
    }

    /// Asserts the IPv4 header checksum (recomputed by etherparse).
    pub(crate) fn assert_header_checksum(&self) {
        if let Self::V4(h, _) = self {
            assert_eq!(
                h.header_checksum,
                h.calc_header_checksum(),
                "IPv4 header checksum"
            );
        }
    }

    /// `(sport, dport)` of a TCP/UDP payload.
    pub(crate) fn ports(&self) -> (u16, u16) {
        let p = self.payload();
        (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        )
    }

    /// Asserts the TCP/UDP checksum by recomputing it with etherparse.
    pub(crate) fn assert_l4_checksum(&self) {
        let p = self.payload();
        match self.proto() {
            6 => {
                let (tcp, data) = TcpHeader::from_slice(p).unwrap();
                let want = match self {
                    Self::V4(h, _) => tcp.calc_checksum_ipv4(h, data).unwrap(),
                    Self::V6(h, _) => tcp.calc_checksum_ipv6(h, data).unwrap(),
                };
                assert_eq!(tcp.checksum, want, "TCP checksum");
            }
            17 => {
                let (udp, data) = etherparse::UdpHeader::from_slice(p).unwrap();
                let want = match self {
                    Self::V4(h, _) => udp
                        .calc_checksum_ipv4(h, &data[..usize::from(udp.length) - 8])
                        .unwrap(),
                    Self::V6(h, _) => udp
                        .calc_checksum_ipv6(h, &data[..usize::from(udp.length) - 8])
                        .unwrap(),
                };
                assert_eq!(udp.checksum, want, "UDP checksum");
            }
            1 => {
                let (icmp, data) = etherparse::Icmpv4Header::from_slice(p).unwrap();
                assert_eq!(
                    icmp.checksum,
                    icmp.icmp_type.calc_checksum(data),
                    "ICMP checksum"
                );
            }
            58 => {
                let s = etherparse::Icmpv6Slice::from_slice(p).unwrap();
                let Self::V6(h, _) = self else {
                    panic!("ICMPv6 in IPv4")
                };
                assert!(
                    s.is_checksum_valid(h.source, h.destination),
                    "ICMPv6 checksum"
                );
            }
            _ => {}
        }
    }

    /// The transport payload after the TCP/UDP header.
    pub(crate) fn l4_data(&self) -> Vec<u8> {
        let p = self.payload();
        match self.proto() {
            6 => TcpHeader::from_slice(p).unwrap().1.to_vec(),
            17 => p[8..].to_vec(),
            _ => p.to_vec(),
        }
    }

    /// The TCP flags byte.
    pub(crate) fn tcp_flags(&self) -> u8 {
        self.payload()[13]
    }
}

/// Asserts that `out` is the director's reset for the client segment `client → vip` that
/// carried `seq` and, if it had ACK, `ack` (`None`: no ACK, `seg_len` bytes of sequence
/// space): sent back on `iface` to the router, from the VIP, checksums right, and returns
/// nothing else of interest.
pub(crate) fn assert_reset(
    out: &Out,
    iface: IfaceId,
    client: SocketAddr,
    vip: SocketAddr,
    seq: u32,
    ack: Option<u32>,
    seg_len: u32,
) {
    assert_eq!(
        out.verdict,
        Verdict::Transmit(iface),
        "a reset goes back out"
    );
    let p = parse(&out.bytes);
    assert_eq!((p.dst_mac, p.src_mac), (ROUTER_MAC, EXT_MAC));
    assert_eq!((p.ip.src(), p.ip.dst()), (vip.ip(), client.ip()));
    assert_eq!(p.ip.ttl(), 64);
    p.ip.assert_header_checksum();
    p.ip.assert_l4_checksum();
    assert_eq!(p.ip.total_len(), if client.is_ipv6() { 60 } else { 40 });
    assert_eq!(p.ip.ports(), (vip.port(), client.port()));
    let (tcp, data) = TcpHeader::from_slice(p.ip.payload()).unwrap();
    assert!(data.is_empty() && tcp.window_size == 0 && tcp.rst && !tcp.syn && !tcp.fin);
    match ack {
        Some(a) => {
            assert!(!tcp.ack);
            assert_eq!(tcp.sequence_number, a);
        }
        None => {
            assert!(tcp.ack);
            assert_eq!(
                (tcp.sequence_number, tcp.acknowledgment_number),
                (0, seq.wrapping_add(seg_len))
            );
        }
    }
}

/// Parses an IP packet (no L2) with etherparse; panics on anything it rejects. The payload
/// is cut at the buffer end (quoted packets); [`IpView::total_len`] checks completeness.
pub(crate) fn parse_ip(bytes: &[u8]) -> IpView {
    match bytes[0] >> 4 {
        4 => {
            let (h, rest) = Ipv4Header::from_slice(bytes).unwrap();
            // A quoted packet (in an ICMP error) may be cut short: keep what there is.
            let plen = (usize::from(h.total_len) - h.header_len()).min(rest.len());
            IpView::V4(h, rest[..plen].to_vec())
        }
        6 => {
            let (h, rest) = Ipv6Header::from_slice(bytes).unwrap();
            let plen = usize::from(h.payload_length).min(rest.len());
            IpView::V6(h.clone(), rest[..plen].to_vec())
        }
        v => panic!("IP version {v}"),
    }
}

/// Parses an Ethernet frame carrying IP.
pub(crate) fn parse(frame: &[u8]) -> Parsed {
    assert!(frame.len() >= 14 + 20, "frame too short: {}", frame.len());
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let ip = parse_ip(&frame[14..]);
    match (&ip, ethertype) {
        (IpView::V4(..), 0x0800) | (IpView::V6(..), 0x86dd) => {}
        _ => panic!("ethertype {ethertype:#x} does not match the IP version"),
    }
    Parsed {
        dst_mac: frame[0..6].try_into().unwrap(),
        src_mac: frame[6..12].try_into().unwrap(),
        ethertype,
        ip,
    }
}

/// Whether the frame parses as something etherparse accepts (used by the fuzz tests).
pub(crate) fn parses_with_etherparse(frame: &[u8]) -> bool {
    etherparse::SlicedPacket::from_ethernet(frame).is_ok()
}

/// The IP packet of a frame with its TTL lowered by one and the IPv4 header checksum fixed
/// (what DR and TUN must forward), computed by the oracle independently of the engine.
pub(crate) fn ttl_minus_one(ip_bytes: &[u8]) -> Vec<u8> {
    let mut v = ip_bytes.to_vec();
    match v[0] >> 4 {
        4 => {
            let (mut h, _) = Ipv4Header::from_slice(&v).unwrap();
            h.time_to_live -= 1;
            h.header_checksum = h.calc_header_checksum();
            let hb = h.to_bytes();
            v[..hb.len()].copy_from_slice(&hb);
        }
        _ => v[7] -= 1,
    }
    v
}
