//! Golden pcap tests: for every forward method × family × protocol, an input capture goes
//! through the engine and the output must equal the expected capture byte for byte. The
//! expected captures are (re)written with `RVS_BLESS=1`; every expected packet is ALSO checked
//! by an independent oracle (etherparse parsing and checksum recomputation), so a blessed
//! file cannot silently encode a wrong rewrite.

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use rvs_api::ForwardMethod;
use rvs_engine::Verdict;

use crate::util::*;

#[derive(Debug, Clone, Copy)]
struct Case {
    method: ForwardMethod,
    v6: bool,
    udp: bool,
}

impl Case {
    fn name(&self) -> String {
        let m = match self.method {
            ForwardMethod::Masq => "nat",
            ForwardMethod::Route => "dr",
            ForwardMethod::Tunnel => "tun",
            ForwardMethod::Local => "local",
        };
        format!(
            "{m}_{}_{}",
            if self.v6 { "v6" } else { "v4" },
            if self.udp { "udp" } else { "tcp" }
        )
    }

    fn vport(&self) -> u16 {
        if self.udp { 53 } else { 80 }
    }

    /// NAT real servers listen on another port so the port rewrite is visible.
    fn rport(&self) -> u16 {
        match self.method {
            ForwardMethod::Masq => self.vport() + 8000,
            _ => self.vport(),
        }
    }

    fn client(&self) -> SocketAddr {
        SocketAddr::new(client(self.v6, 7), 40_007)
    }

    fn vip(&self) -> SocketAddr {
        SocketAddr::new(vip(self.v6), self.vport())
    }

    fn rip(&self) -> SocketAddr {
        SocketAddr::new(rip(self.v6, 0), self.rport())
    }
}

/// DSCP 10 (AF11) with ECN CE: TUN must turn CE into ECT(0) in the outer header.
const TOS: u8 = (10 << 2) | 3;

fn opts(ttl: u8) -> IpOpts {
    IpOpts {
        ttl,
        tos: TOS,
        df: true,
        ident: 0x4242,
    }
}

/// The input frames of a case.
fn inputs(c: &Case) -> Vec<Vec<u8>> {
    let (cl, v, r) = (c.client(), c.vip(), c.rip());
    let nat = c.method == ForwardMethod::Masq;
    let inb = |l4: L4, data: &[u8], ttl: u8| build(ROUTER_MAC, EXT_MAC, cl, v, l4, data, opts(ttl));
    let outb = |l4: L4, data: &[u8]| build(rs_mac(0), INT_MAC, r, cl, l4, data, opts(64));
    let tcp = |flags: u8, seq: u32, ack: u32| L4::Tcp { flags, seq, ack };
    let mut v = Vec::new();
    if c.udp {
        v.push(inb(L4::Udp, b"query one", 64));
        if nat {
            v.push(outb(L4::Udp, b"answer one, a little longer"));
        }
        // A zero UDP checksum ("none", IPv4 only): NAT must compute a full one.
        let mut f = inb(L4::Udp, b"query two", 3);
        if !c.v6 {
            let l4 = 14 + 20;
            f[l4 + 6..l4 + 8].copy_from_slice(&[0, 0]);
        }
        v.push(f);
    } else {
        let req = b"GET / HTTP/1.0\r\n\r\n";
        let resp = b"HTTP/1.0 200 OK\r\n\r\nhello";
        v.push(inb(tcp(TH_SYN, 100, 0), b"", 64));
        if nat {
            v.push(outb(tcp(TH_SYN | TH_ACK, 500, 101), b""));
        }
        v.push(inb(tcp(TH_ACK, 101, 501), b"", 63));
        v.push(inb(tcp(TH_PSH | TH_ACK, 101, 501), req, 62));
        if nat {
            v.push(outb(
                tcp(TH_PSH | TH_ACK, 501, 101 + req.len() as u32),
                resp,
            ));
            v.push(outb(
                tcp(
                    TH_FIN | TH_ACK,
                    501 + resp.len() as u32,
                    101 + req.len() as u32,
                ),
                b"",
            ));
        }
        v.push(inb(
            tcp(
                TH_FIN | TH_ACK,
                101 + req.len() as u32,
                502 + resp.len() as u32,
            ),
            b"",
            2,
        ));
    }
    v
}

fn setup(c: &Case) -> Lab {
    let mut lab = Lab::new();
    let key = if c.udp {
        udp_key(vip(c.v6), c.vport())
    } else {
        tcp_key(vip(c.v6), c.vport())
    };
    lab.add_service(key, "rr", |_| {});
    lab.add_dest(key, rip(c.v6, 0), c.rport(), c.method, 1);
    lab
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn write_pcap(path: &PathBuf, frames: &[(Duration, Vec<u8>)]) {
    let mut w = PcapWriter::new(File::create(path).unwrap()).unwrap();
    for (ts, f) in frames {
        w.write_packet(&PcapPacket::new(*ts, f.len() as u32, f))
            .unwrap();
    }
}

fn read_pcap(path: &PathBuf) -> Vec<(Duration, Vec<u8>)> {
    let f = File::open(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with RVS_BLESS=1 to create it)",
            path.display()
        )
    });
    let mut r = PcapReader::new(f).unwrap();
    let mut v = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        v.push((p.timestamp, p.data.into_owned()));
    }
    v
}

/// Runs the input frames through a fresh engine; each must be transmitted.
fn run(c: &Case, input: &[(Duration, Vec<u8>)]) -> Vec<(Duration, Vec<u8>)> {
    let mut lab = setup(c);
    let start = lab.now;
    input
        .iter()
        .map(|(ts, f)| {
            lab.now = start + *ts;
            let iface = if f[0..6] == EXT_MAC { lab.ext } else { lab.int };
            let out = lab.run(iface, f);
            let want = if iface == lab.ext { lab.int } else { lab.ext };
            assert_eq!(
                out.verdict,
                Verdict::Transmit(want),
                "{}: frame at {ts:?}",
                c.name()
            );
            (*ts, out.bytes)
        })
        .collect()
}

/// `INET_ECN_encapsulate`: DSCP copied, CE becomes ECT(0).
fn ecn_encapsulate(tos: u8) -> u8 {
    if tos & 3 == 3 { (tos & !3) | 2 } else { tos }
}

/// The independent check of one (input, output) pair.
fn oracle(c: &Case, input: &[u8], output: &[u8]) {
    let i = parse(input);
    let o = parse(output);
    let inbound = i.dst_mac == EXT_MAC;
    if !inbound {
        // NAT reply: SNAT to the VIP, routed to the client's router.
        assert_eq!(c.method, ForwardMethod::Masq);
        assert_eq!((o.dst_mac, o.src_mac), (ROUTER_MAC, EXT_MAC), "reply MACs");
        assert_eq!(o.ip.src(), c.vip().ip(), "reply source = VIP");
        assert_eq!(o.ip.dst(), i.ip.dst(), "reply destination = client");
        assert_eq!(o.ip.ports(), (c.vport(), i.ip.ports().1), "reply ports");
        assert_eq!(o.ip.ttl(), i.ip.ttl() - 1, "TTL decremented");
        assert_eq!(o.ip.tos(), i.ip.tos());
        assert_eq!(o.ip.total_len(), i.ip.total_len());
        assert_eq!(o.ip.l4_data(), i.ip.l4_data(), "payload");
        o.ip.assert_header_checksum();
        o.ip.assert_l4_checksum();
        return;
    }
    assert_eq!((o.dst_mac, o.src_mac), (rs_mac(0), INT_MAC), "inbound MACs");
    match c.method {
        ForwardMethod::Masq => {
            assert_eq!(o.ip.src(), i.ip.src(), "client address kept");
            assert_eq!(o.ip.dst(), c.rip().ip(), "DNAT to the RIP");
            assert_eq!(o.ip.ports(), (i.ip.ports().0, c.rport()), "DNAT port");
            assert_eq!(o.ip.ttl(), i.ip.ttl() - 1, "TTL decremented");
            assert_eq!(o.ip.tos(), i.ip.tos());
            assert_eq!(o.ip.total_len(), i.ip.total_len());
            assert_eq!(o.ip.l4_data(), i.ip.l4_data(), "payload");
            if let (IpView::V4(oh, _), IpView::V4(ih, _)) = (&o.ip, &i.ip) {
                assert_eq!(
                    (oh.identification, oh.dont_fragment),
                    (ih.identification, ih.dont_fragment)
                );
            }
            o.ip.assert_header_checksum();
            o.ip.assert_l4_checksum();
        }
        ForwardMethod::Route => {
            assert_eq!(output.len(), input.len());
            assert_eq!(&output[12..14], &input[12..14], "ethertype");
            assert_eq!(
                output[14..],
                ttl_minus_one(&input[14..])[..],
                "DR changes only MACs and TTL"
            );
            o.ip.assert_header_checksum();
        }
        ForwardMethod::Tunnel => {
            let outer = &o.ip;
            let dip = if c.v6 { dip_int6() } else { dip_int4() };
            assert_eq!(outer.src(), dip, "outer source = DIP");
            assert_eq!(outer.dst(), c.rip().ip(), "outer destination = RIP");
            assert_eq!(
                outer.proto(),
                if c.v6 { 41 } else { 4 },
                "IPIP / IPv6-in-IPv6"
            );
            let inner = ttl_minus_one(&input[14..]);
            assert_eq!(outer.payload(), &inner[..], "inner = original with TTL - 1");
            assert_eq!(outer.ttl(), i.ip.ttl() - 1, "outer TTL = inner TTL");
            assert_eq!(outer.tos(), ecn_encapsulate(i.ip.tos()), "outer TOS");
            match (outer, &i.ip) {
                (IpView::V4(oh, _), IpView::V4(ih, _)) => {
                    assert_eq!(oh.dont_fragment, ih.dont_fragment, "outer DF copied");
                    assert_eq!(oh.header_len(), 20);
                    assert_eq!(usize::from(oh.total_len), inner.len() + 20);
                }
                (IpView::V6(oh, _), _) => {
                    assert_eq!(oh.flow_label.value(), 0, "outer flow label");
                    assert_eq!(usize::from(oh.payload_length), inner.len());
                }
                _ => unreachable!(),
            }
            outer.assert_header_checksum();
            let inner = parse_ip(&inner);
            // An IPv4 UDP checksum of 0 means "none" and passes through a tunnel untouched.
            if !(inner.proto() == 17 && !c.v6 && inner.payload()[6..8] == [0, 0]) {
                inner.assert_l4_checksum();
            }
        }
        ForwardMethod::Local => unreachable!(),
    }
}

fn golden(c: Case) {
    let name = c.name();
    let in_path = fixture(&format!("{name}.in.pcap"));
    let out_path = fixture(&format!("{name}.out.pcap"));
    let fresh: Vec<(Duration, Vec<u8>)> = inputs(&c)
        .into_iter()
        .enumerate()
        .map(|(n, f)| (Duration::from_millis(10 * n as u64), f))
        .collect();
    if std::env::var_os("RVS_BLESS").is_some() {
        std::fs::create_dir_all(fixture("")).unwrap();
        write_pcap(&in_path, &fresh);
        write_pcap(&out_path, &run(&c, &fresh));
    }
    let input = read_pcap(&in_path);
    assert_eq!(
        input, fresh,
        "{name}: the input capture differs from the generator (re-bless)"
    );
    let expected = read_pcap(&out_path);
    let got = run(&c, &input);
    assert_eq!(got.len(), expected.len(), "{name}: packet count");
    for (n, ((ts, g), (ets, e))) in got.iter().zip(&expected).enumerate() {
        assert_eq!(ts, ets);
        assert_eq!(
            g,
            e,
            "{name}: packet {n} differs from {}",
            out_path.display()
        );
    }
    for ((_, i), (_, e)) in input.iter().zip(&expected) {
        oracle(&c, i, e);
    }
}

macro_rules! golden_cases {
    ($($name:ident: $method:ident, $v6:expr, $udp:expr;)*) => {$(
        #[test]
        fn $name() {
            golden(Case { method: ForwardMethod::$method, v6: $v6, udp: $udp });
        }
    )*};
}

golden_cases! {
    nat_v4_tcp: Masq, false, false;
    nat_v4_udp: Masq, false, true;
    nat_v6_tcp: Masq, true, false;
    nat_v6_udp: Masq, true, true;
    dr_v4_tcp: Route, false, false;
    dr_v4_udp: Route, false, true;
    dr_v6_tcp: Route, true, false;
    dr_v6_udp: Route, true, true;
    tun_v4_tcp: Tunnel, false, false;
    tun_v4_udp: Tunnel, false, true;
    tun_v6_tcp: Tunnel, true, false;
    tun_v6_udp: Tunnel, true, true;
}

/// The oracle itself must reject a wrong rewrite (so the golden tests can fail).
#[test]
#[should_panic(expected = "DNAT port")]
fn oracle_rejects_a_wrong_port() {
    let c = Case {
        method: ForwardMethod::Masq,
        v6: false,
        udp: false,
    };
    let input = &inputs(&c)[0];
    let mut out = run(&c, &[(Duration::ZERO, input.clone())]).remove(0).1;
    // Corrupt the destination port (and keep the checksum consistent is not even needed:
    // the port check comes first).
    out[14 + 20 + 3] ^= 1;
    oracle(&c, input, &out);
}

#[test]
#[should_panic(expected = "TCP checksum")]
fn oracle_rejects_a_bad_checksum() {
    let c = Case {
        method: ForwardMethod::Masq,
        v6: true,
        udp: false,
    };
    let input = &inputs(&c)[0];
    let mut out = run(&c, &[(Duration::ZERO, input.clone())]).remove(0).1;
    out[14 + 40 + 16] ^= 0x10;
    oracle(&c, input, &out);
}
