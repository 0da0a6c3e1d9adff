//! The fast path on live veths: client — director — server namespaces, no AF_XDP socket
//! anywhere, kernel forwarding off on the director. Only the XDP program can move the
//! client's datagrams to the server (a redirect to the other interface) or back to the client
//! (XDP_TX). Also measures the fast path's packet rate with an in-kernel generator.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use rvs_io::netlink::Netlink;
use rvs_io::packet::{ETH_P_ALL, PacketSocket};
use rvs_io::xdp::{
    FastAction, FastKind, FlowKey, IPPROTO_UDP, Steering, TrafficGen, XdpMode, XdpPass,
};

use crate::util::{Netns, ipaddr, run, skip_unless_root, steering_on, veth};

const CLIENT: &str = "198.18.30.1";
const VIP: &str = "198.18.30.100";
const VIP_HAIRPIN: &str = "198.18.30.101";
const DIP1: &str = "198.18.31.1";
const RIP: &str = "198.18.31.2";

struct Lab {
    c: Netns,
    d: Netns,
    s: Netns,
    steer: Steering,
}

fn ifindex(ns: &Netns, ifname: &str) -> u32 {
    ns.run(|| Netlink::open().unwrap().link_by_name(ifname).unwrap())
        .ifindex
}

fn lab() -> Option<Lab> {
    let c = Netns::new("flc");
    let d = Netns::new("fld");
    let s = Netns::new("fls");
    veth(&c, "c0", &["198.18.30.1/24"], &d, "d0", &["198.18.30.2/24"]);
    veth(&d, "d1", &["198.18.31.1/24"], &s, "s0", &["198.18.31.2/24"]);
    s.ip(&["route", "add", "198.18.30.0/24", "via", DIP1]);
    // With checksum offload a veth hands XDP a partial checksum (the pseudo-header sum), which
    // no rewrite can turn into a valid one: real NICs receive full checksums, so send those.
    ethtool(&c, &["-K", "c0", "tx", "off"]);
    // The director's kernel must not forward: whatever reaches the server went through XDP.
    d.run(|| rvs_io::sysctl::set("net.ipv4.ip_forward", "0"))
        .unwrap();
    let steer = match steering_on(&d, &["d0", "d1"], XdpMode::Native) {
        Ok(s) => s,
        Err(e) if e.raw_os_error() == Some(95) => {
            eprintln!("SKIP fast path live: no native XDP on veth here: {e}");
            return None;
        }
        Err(e) => panic!("attach: {e}"),
    };
    // The client reaches both VIPs through the director (nobody answers ARP for them).
    let c0 = ifindex(&c, "c0");
    let dmac = d.mac("d0");
    for vip in [VIP, VIP_HAIRPIN] {
        c.run(|| {
            Netlink::open()
                .unwrap()
                .set_neighbour(c0, ipaddr(vip), dmac, true)
        })
        .unwrap();
    }
    Some(Lab { c, d, s, steer })
}

impl Lab {
    /// NAT entry client:cport -> VIP:5000 => RIP:6000, out of d1 (a redirect).
    fn nat_entry(&mut self, cport: u16) -> FlowKey {
        let key = FlowKey {
            proto: IPPROTO_UDP,
            saddr: ipaddr(CLIENT),
            daddr: ipaddr(VIP),
            sport: cport,
            dport: 5000,
        };
        let a = FastAction {
            kind: FastKind::NatDst,
            max_len: 1500,
            egress_ifindex: self.steer.ifindex(1).unwrap(),
            egress_slot: 1,
            stats_index: 2,
            dst_mac: self.s.mac("s0"),
            src_mac: self.d.mac("d1"),
            port: 6000,
            addr1: ipaddr(RIP),
            addr2: None,
        };
        self.steer.fast_upsert(&key, &a).unwrap();
        key
    }

    /// Route entry client:cport -> VIP_HAIRPIN:7000, back out of d0 to the client (XDP_TX).
    fn hairpin_entry(&mut self, cport: u16) -> FlowKey {
        let key = FlowKey {
            proto: IPPROTO_UDP,
            saddr: ipaddr(CLIENT),
            daddr: ipaddr(VIP_HAIRPIN),
            sport: cport,
            dport: 7000,
        };
        let a = FastAction {
            kind: FastKind::Route,
            max_len: 1500,
            egress_ifindex: self.steer.ifindex(0).unwrap(),
            egress_slot: 0,
            stats_index: 4,
            dst_mac: self.c.mac("c0"),
            src_mac: self.d.mac("d0"),
            port: 0,
            addr1: ipaddr(VIP_HAIRPIN),
            addr2: None,
        };
        self.steer.fast_upsert(&key, &a).unwrap();
        key
    }
}

/// Sends `n` datagrams from `client` to `dst` and counts what `server` receives within 1 s.
fn udp_through(client: &UdpSocket, dst: SocketAddr, server: &UdpSocket, n: usize) -> usize {
    server
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    for i in 0..n {
        client
            .send_to(format!("dgram {i}").as_bytes(), dst)
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut got = 0;
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline && got < n {
        if let Ok((len, from)) = server.recv_from(&mut buf) {
            assert!(buf[..len].starts_with(b"dgram "));
            assert_eq!(from.ip(), ipaddr(CLIENT), "NAT keeps the client address");
            got += 1;
        }
    }
    got
}

/// Sends `n` datagrams to the hairpin VIP and counts the frames that come back to c0 from
/// the director (source MAC d0, TTL decremented).
fn hairpin(lab: &Lab, client: &UdpSocket, n: usize) -> usize {
    let dmac = lab.d.mac("d0");
    let sock = lab.c.run(|| PacketSocket::open("c0", ETH_P_ALL)).unwrap();
    let dst = SocketAddr::new(ipaddr(VIP_HAIRPIN), 7000);
    for i in 0..n {
        client
            .send_to(format!("hairpin {i}").as_bytes(), dst)
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut got = 0;
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline && got < n {
        if let Some(len) = sock
            .recv(&mut buf, Some(Duration::from_millis(50)))
            .unwrap()
        {
            let f = &buf[..len];
            if len > 42
                && f[6..12] == dmac
                && f[12..14] == [8, 0]
                && f[14 + 16..14 + 20] == [198, 18, 30, 101]
            {
                assert_eq!(f[14 + 8], 63, "TTL decremented once");
                got += 1;
            }
        }
    }
    got
}

fn ethtool(ns: &Netns, args: &[&str]) {
    let mut v = vec!["netns", "exec", ns.name.as_str(), "ethtool"];
    v.extend_from_slice(args);
    run("ip", &v);
}

/// Packets received by `ifname` in `ns` (sysfs as `ip netns exec` mounts it).
fn rx_packets(ns: &Netns, ifname: &str) -> u64 {
    let path = format!("/sys/class/net/{ifname}/statistics/rx_packets");
    run("ip", &["netns", "exec", ns.name.as_str(), "cat", &path])
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn fast_path_live_veth() {
    if skip_unless_root("fast_path_live_veth") {
        return;
    }
    if Command::new("ethtool").arg("--version").output().is_err() {
        eprintln!("SKIP fast_path_live_veth: needs ethtool");
        return;
    }
    let Some(mut lab) = lab() else {
        return;
    };
    let client = lab.c.run(|| UdpSocket::bind("198.18.30.1:40000")).unwrap();
    let server = lab.s.run(|| UdpSocket::bind("198.18.31.2:6000")).unwrap();
    let key = lab.nat_entry(40000);
    lab.hairpin_entry(40000);
    let vip = SocketAddr::new(ipaddr(VIP), 5000);

    // 1. The far ends run no XDP: the program forwards, the veths drop (see XdpPass).
    let c0 = lab.steer.counters().unwrap();
    let plain = udp_through(&client, vip, &server, 20);
    let plain_hp = hairpin(&lab, &client, 20);
    let c1 = lab.steer.counters().unwrap();
    assert_eq!(
        c1.fast_hit - c0.fast_hit,
        40,
        "every datagram hit the fast path"
    );
    println!(
        "veth peer without XDP: redirect delivered {plain}/20, XDP_TX delivered {plain_hp}/20"
    );

    // 2. GRO on the far ends turns their NAPI on: enough for redirects (ndo_xdp_xmit kicks
    //    the peer), not for XDP_TX (veth kicks the peer only if it has an XDP program).
    ethtool(&lab.s, &["-K", "s0", "gro", "on"]);
    ethtool(&lab.c, &["-K", "c0", "gro", "on"]);
    let gro = udp_through(&client, vip, &server, 20);
    let gro_hp = hairpin(&lab, &client, 20);
    println!("veth peer with GRO on: redirect delivered {gro}/20, XDP_TX delivered {gro_hp}/20");
    assert_eq!(gro, 20, "redirects reach a veth whose peer has GRO on");
    ethtool(&lab.s, &["-K", "s0", "gro", "off"]);
    ethtool(&lab.c, &["-K", "c0", "gro", "off"]);

    // 3. XdpPass on the far ends: both delivered, by XDP alone.
    let pass_s = lab.s.run(|| XdpPass::attach("s0")).unwrap();
    let pass_c = lab.c.run(|| XdpPass::attach("c0")).unwrap();
    let stats0 = lab.steer.fast_stats().unwrap();
    assert_eq!(
        udp_through(&client, vip, &server, 20),
        20,
        "redirect to the server"
    );
    assert_eq!(hairpin(&lab, &client, 20), 20, "XDP_TX back to the client");
    println!("veth peer with XdpPass: redirect delivered 20/20, XDP_TX delivered 20/20");
    let c2 = lab.steer.counters().unwrap();
    assert_eq!(c2.redirected, 0, "no AF_XDP socket anywhere");
    assert_eq!(c2.fast_punt(), 0);
    let stats1 = lab.steer.fast_stats().unwrap();
    let packets = |v: &[(u32, u64, u64)], i| v.iter().find(|s| s.0 == i).map_or(0, |s| s.1);
    assert_eq!(
        packets(&stats1, 2) - packets(&stats0, 2),
        20,
        "NAT flow counted"
    );
    assert_eq!(
        packets(&stats1, 4) - packets(&stats0, 4),
        20,
        "hairpin flow counted"
    );
    let seen = lab.steer.fast_last_seen(&key).unwrap().unwrap();
    assert!(
        rvs_io::xdp::monotonic_ns() - seen < 5_000_000_000,
        "stamped recently"
    );

    // 4. The fast path off: the director's kernel does not forward, so nothing arrives.
    lab.steer.set_fast_path(false).unwrap();
    assert_eq!(
        udp_through(&client, vip, &server, 5),
        0,
        "only XDP forwards here"
    );
    lab.steer.set_fast_path(true).unwrap();
    assert_eq!(udp_through(&client, vip, &server, 5), 5);

    // 5. Packet rate: an in-kernel generator on the client pushes one flow's 64-byte frames
    //    through the director's fast path (NAT, redirect d0 -> d1). The generator, the
    //    director's NAPI and the server's all run on the generator's core.
    let gen_key = lab.nat_entry(40001);
    let frame = udp_frame(&lab, gen_key.sport);
    let generator = lab.c.run(|| TrafficGen::new("c0", &frame)).unwrap();
    generator.send(10_000).unwrap(); // warm-up
    let (hits, delivered) = measure(&lab, &generator, "to the server (XdpPass on s0, skb + UDP)");
    assert!(
        hits > 0 && delivered > 0,
        "generated traffic went through the fast path"
    );
    // Without the server's XDP, d1 drops the redirected frames at once: what remains is the
    // generator and the director.
    drop(pass_s);
    let (hits, _) = measure(&lab, &generator, "dropped by d1 (director cost only)");
    assert!(hits > 0);
    drop(pass_c);
}

/// Sends 2M frames and prints the rates; returns (fast-path hits, frames s0 received).
fn measure(lab: &Lab, generator: &TrafficGen, what: &str) -> (u64, u64) {
    let n: u32 = 2_000_000;
    let before = lab.steer.counters().unwrap();
    let rx_before = rx_packets(&lab.s, "s0");
    let t = Instant::now();
    generator.send(n).unwrap();
    let secs = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(100));
    let hits = lab.steer.counters().unwrap().fast_hit - before.fast_hit;
    let delivered = rx_packets(&lab.s, "s0") - rx_before;
    println!(
        "fast path, 64-byte UDP NAT + redirect, {what}: generator {:.0} pps, fast path \
         forwarded {:.0} pps ({hits} of {n}), s0 received {:.0} pps",
        f64::from(n) / secs,
        hits as f64 / secs,
        delivered as f64 / secs,
    );
    (hits, delivered)
}

/// The client's datagram to VIP:5000 from `sport` as a 64-byte frame, checksums complete.
fn udp_frame(lab: &Lab, sport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2(lab.c.mac("c0"), lab.d.mac("d0"))
        .ipv4([198, 18, 30, 1], [198, 18, 30, 100], 64)
        .udp(sport, 5000)
        .write(&mut out, &[0x5a; 22])
        .unwrap();
    assert_eq!(out.len(), 64);
    out
}
