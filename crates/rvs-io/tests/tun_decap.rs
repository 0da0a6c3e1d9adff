//! TunDecap: a client sends IPIP / IP6IP6 / 4in6 packets to a real-server namespace that holds
//! the VIPs on lo; a UDP server there receives the inner datagrams.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use rvs_io::netlink::Netlink;
use rvs_io::packet::PacketSocket;
use rvs_io::xdp::{self, TunDecap, XdpMode};

use crate::pkt;
use crate::util::{Netns, skip_unless_root, veth};

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn tun_decap_delivers_inner_packets_to_vips_on_lo() {
    if skip_unless_root("tun_decap") {
        return;
    }
    let c = Netns::new("tdc");
    let r = Netns::new("tdr");
    veth(
        &c,
        "c0",
        &["198.18.1.1/24", "2001:db8:1::1/64"],
        &r,
        "r0",
        &["198.18.1.2/24", "2001:db8:1::2/64"],
    );
    // The real server routes replies to clients through the director side, as in LVS-TUN
    // (this also satisfies rp_filter for the client addresses).
    r.ip(&["route", "add", "default", "via", "198.18.1.1"]);
    r.ip(&["-6", "route", "add", "default", "via", "2001:db8:1::1"]);
    let (vip4, vip6) = (v4("198.18.1.100"), v6("2001:db8:1::100"));
    r.run(|| {
        let mut nl = Netlink::open().unwrap();
        let lo = nl.link_by_name("lo").unwrap().ifindex;
        assert!(nl.add_address(lo, IpAddr::V4(vip4), 32).unwrap());
        assert!(nl.add_address(lo, IpAddr::V6(vip6), 128).unwrap());
    });

    let mut decap = match r.run(|| TunDecap::attach("r0", XdpMode::Native)) {
        Ok(t) => t,
        Err(e) if e.raw_os_error() == Some(95) => {
            eprintln!("SKIP tun_decap: no native XDP on veth: {e}");
            return;
        }
        Err(e) => panic!("attach: {e}"),
    };
    assert_eq!(decap.attached_mode(), XdpMode::Native);
    decap.add_vip(IpAddr::V4(vip4)).unwrap();
    decap.add_vip(IpAddr::V6(vip6)).unwrap();

    let srv4 = r
        .run(|| UdpSocket::bind(SocketAddr::new(IpAddr::V4(vip4), 5353)))
        .unwrap();
    let srv6 = r
        .run(|| UdpSocket::bind(SocketAddr::new(IpAddr::V6(vip6), 5353)))
        .unwrap();
    for s in [&srv4, &srv6] {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    }
    let (rmac, cmac) = (r.mac("r0"), c.mac("c0"));
    let tx = c.run(|| PacketSocket::open("c0", 0)).unwrap();

    let (cip4, cip6) = (v4("198.18.9.1"), v6("2001:db8:9::1"));
    let (dir4, rip4) = (v4("198.18.1.1"), v4("198.18.1.2"));
    let (dir6, rip6) = (v6("2001:db8:1::1"), v6("2001:db8:1::2"));
    let inner4 = |dst: Ipv4Addr, payload: &[u8]| {
        pkt::ipv4(
            cip4,
            dst,
            17,
            &pkt::udp(cip4.into(), dst.into(), 4444, 5353, payload),
        )
    };
    let inner6 = |dst: Ipv6Addr, payload: &[u8]| {
        pkt::ipv6(
            cip6,
            dst,
            17,
            &pkt::udp(cip6.into(), dst.into(), 6666, 5353, payload),
        )
    };
    let send4 = |outer_dst: Ipv4Addr, proto: u8, inner: &[u8]| {
        tx.send(&pkt::ethernet(
            rmac,
            cmac,
            pkt::ETHERTYPE_IPV4,
            &pkt::ipv4(dir4, outer_dst, proto, inner),
        ))
        .unwrap();
    };
    let send6 = |outer_dst: Ipv6Addr, next: u8, inner: &[u8]| {
        tx.send(&pkt::ethernet(
            rmac,
            cmac,
            pkt::ETHERTYPE_IPV6,
            &pkt::ipv6(dir6, outer_dst, next, inner),
        ))
        .unwrap();
    };
    let mut buf = [0u8; 256];

    // IPIP (IPv4 in IPv4).
    send4(rip4, 4, &inner4(vip4, b"ipip"));
    let (n, from) = srv4
        .recv_from(&mut buf)
        .expect("inner IPv4 datagram delivered");
    assert_eq!(
        (&buf[..n], from),
        (&b"ipip"[..], SocketAddr::new(cip4.into(), 4444))
    );

    // IP6IP6.
    send6(rip6, 41, &inner6(vip6, b"ip6ip6"));
    let (n, from) = srv6
        .recv_from(&mut buf)
        .expect("inner IPv6 datagram delivered");
    assert_eq!(
        (&buf[..n], from),
        (&b"ip6ip6"[..], SocketAddr::new(cip6.into(), 6666))
    );

    // IPv4 in IPv6.
    send6(rip6, 4, &inner4(vip4, b"4in6"));
    let (n, _) = srv4.recv_from(&mut buf).expect("4in6 delivered");
    assert_eq!(&buf[..n], b"4in6");

    // Left alone: inner destination not a VIP here, outer destination not this host.
    send4(rip4, 4, &inner4(v4("198.18.1.200"), b"not a vip"));
    send4(v4("198.18.1.77"), 4, &inner4(vip4, b"not for us"));
    srv4.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(
        srv4.recv_from(&mut buf).is_err(),
        "nothing else reaches the VIP socket"
    );

    let k = decap.counters().unwrap();
    println!("tun_decap: {k:?}");
    assert_eq!(
        (k.decap_v4, k.decap_v6, k.not_vip, k.not_local),
        (2, 1, 1, 1)
    );
    assert_eq!(k.error, 0);

    drop(decap);
    assert_eq!(r.run(|| xdp::query("r0")).unwrap(), None);

    // Generic (SKB) mode, for NICs without native XDP: same result through the skb path.
    let mut decap = r.run(|| TunDecap::attach("r0", XdpMode::Skb)).unwrap();
    assert_eq!(decap.attached_mode(), XdpMode::Skb);
    decap.add_vip(IpAddr::V4(vip4)).unwrap();
    decap.add_vip(IpAddr::V6(vip6)).unwrap();
    srv4.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    send4(rip4, 4, &inner4(vip4, b"ipip/skb"));
    let (n, _) = srv4
        .recv_from(&mut buf)
        .expect("IPIP decapsulated in SKB mode");
    assert_eq!(&buf[..n], b"ipip/skb");
    send6(rip6, 41, &inner6(vip6, b"ip6ip6/skb"));
    let (n, _) = srv6
        .recv_from(&mut buf)
        .expect("IP6IP6 decapsulated in SKB mode");
    assert_eq!(&buf[..n], b"ip6ip6/skb");
    let k = decap.counters().unwrap();
    assert_eq!((k.decap_v4, k.decap_v6), (1, 1));
}
