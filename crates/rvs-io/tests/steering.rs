//! Steering: two namespaces joined by a veth pair, the steering program and an AF_XDP echo
//! worker on the director end.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rvs_io::netlink::Netlink;
use rvs_io::packet::{ETH_P_ALL, PacketSocket};
use rvs_io::xdp::{self, Steering, VipKey, XdpMode};
use rvs_io::xsk::{BindMode, XskConfig, XskSocket};

use crate::pkt::{self, Responder, Seen};
use crate::util::{Netns, ipaddr, skip_unless_root, steering_on, veth};

/// The steering program and an echo worker running on one director interface.
pub(crate) struct Harness {
    pub(crate) steer: Steering,
    worker: Worker,
}

/// Stops and joins the worker thread on drop, so a failing test does not leave it running.
struct Worker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<(Seen, XskSocket)>>,
}

impl Worker {
    fn join(&mut self) -> (Seen, XskSocket) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().expect("worker panicked")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.handle.take() {
            let _ = w.join();
        }
    }
}

impl Harness {
    /// Attaches in native mode and starts the worker; `None` (after printing why) when the
    /// kernel cannot do native XDP or AF_XDP here.
    pub(crate) fn start(
        director: &Netns,
        ifname: &str,
        resp: Responder,
        config: &XskConfig,
    ) -> Option<Self> {
        Self::start_in_mode(director, ifname, resp, config, XdpMode::Native)
    }

    pub(crate) fn start_in_mode(
        director: &Netns,
        ifname: &str,
        resp: Responder,
        config: &XskConfig,
        mode: XdpMode,
    ) -> Option<Self> {
        let steer = match steering_on(director, &[ifname], mode) {
            Ok(s) => s,
            Err(e) if e.raw_os_error() == Some(libc_eopnotsupp()) => {
                eprintln!("SKIP: no native XDP on veth here: {e}");
                return None;
            }
            Err(e) => panic!("attach: {e}"),
        };
        assert_eq!(steer.attached_mode(0), Some(mode));
        let sock = match director.run(|| XskSocket::open(ifname, 0, config)) {
            Ok(s) => s,
            Err(e) if e.raw_os_error() == Some(97) => {
                eprintln!("SKIP: no AF_XDP sockets in this kernel: {e}");
                return None;
            }
            Err(e) => panic!("xsk open: {e}"),
        };
        assert_eq!(sock.bind_mode(), BindMode::Copy, "veth gives copy mode");
        let mut steer = steer;
        steer.register_xsk(0, 0, &sock).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let worker_stop = stop.clone();
        let handle = std::thread::spawn(move || pkt::echo_worker(sock, resp, worker_stop));
        Some(Self {
            steer,
            worker: Worker {
                stop,
                handle: Some(handle),
            },
        })
    }

    /// Stops the worker and returns what it saw, its socket and the steering program.
    pub(crate) fn finish(mut self) -> (Seen, XskSocket, Steering) {
        let (seen, sock) = self.worker.join();
        (seen, sock, self.steer)
    }
}

fn libc_eopnotsupp() -> i32 {
    95
}

/// Sends `n` datagrams to `dst` and collects the replies (from `dst`, same payloads).
pub(crate) fn echo_roundtrip(sock: &UdpSocket, dst: SocketAddr, n: usize) -> usize {
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut want = std::collections::HashSet::new();
    for i in 0..n {
        let payload = format!("rvs-io echo {i}");
        sock.send_to(payload.as_bytes(), dst).unwrap();
        want.insert(payload);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 2048];
    while !want.is_empty() && Instant::now() < deadline {
        if let Ok((len, from)) = sock.recv_from(&mut buf)
            && from == dst
        {
            want.remove(std::str::from_utf8(&buf[..len]).unwrap_or(""));
        }
    }
    n - want.len()
}

/// Pings `dst` from `ns` through a packet socket on `ifname` (no ping binary needed).
pub(crate) fn ping(ns: &Netns, ifname: &str, dst_mac: [u8; 6], src: IpAddr, dst: IpAddr) -> bool {
    let src_mac = ns.mac(ifname);
    let sock = ns.run(|| PacketSocket::open(ifname, ETH_P_ALL)).unwrap();
    let id = (std::process::id() & 0xffff) as u16;
    let frame = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => pkt::ethernet(
            dst_mac,
            src_mac,
            pkt::ETHERTYPE_IPV4,
            &pkt::ipv4(s, d, 1, &pkt::icmp4_echo(id, 1)),
        ),
        (IpAddr::V6(s), IpAddr::V6(d)) => pkt::ethernet(
            dst_mac,
            src_mac,
            pkt::ETHERTYPE_IPV6,
            &pkt::ipv6(s, d, 58, &pkt::icmp6_echo(s, d, id, 1)),
        ),
        _ => panic!("mixed families"),
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut next_send = Instant::now();
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        if Instant::now() >= next_send {
            sock.send(&frame).unwrap();
            next_send = Instant::now() + Duration::from_millis(500);
        }
        let got = sock
            .recv(&mut buf, Some(Duration::from_millis(50)))
            .unwrap();
        if got.is_some_and(|n| pkt::is_echo_reply(&buf[..n], id)) {
            return true;
        }
    }
    false
}

#[test]
fn steering_ipv4() {
    if skip_unless_root("steering_ipv4") {
        return;
    }
    let c = Netns::new("s4c");
    let d = Netns::new("s4d");
    veth(&c, "c0", &["198.18.0.1/24"], &d, "d0", &["198.18.0.2/24"]);
    let (cip, dip, vip) = (
        ipaddr("198.18.0.1"),
        ipaddr("198.18.0.2"),
        ipaddr("198.18.0.100"),
    );
    let dmac = d.mac("d0");
    let resp = Responder {
        mac: dmac,
        vips: vec![vip],
        echo_ports: vec![7777],
    };
    let Some(mut h) = Harness::start(&d, "d0", resp, &XskConfig::default()) else {
        return;
    };
    assert_eq!(
        d.run(|| xdp::query("d0")).unwrap().map(|a| a.prog_id),
        Some(h.steer.prog_id())
    );
    h.steer.add_vip(VipKey::udp(vip, 7777)).unwrap();
    h.steer.add_vip_addr(vip).unwrap();

    // Nobody answers ARP for the VIP yet: a static entry on the client.
    let c0 = c
        .run(|| Netlink::open().unwrap().link_by_name("c0").unwrap())
        .ifindex;
    c.run(|| Netlink::open().unwrap().set_neighbour(c0, vip, dmac, true))
        .unwrap();
    let client = c.run(|| UdpSocket::bind("198.18.0.1:0")).unwrap();
    let got = echo_roundtrip(&client, SocketAddr::new(vip, 7777), 50);
    assert_eq!(
        got, 50,
        "every datagram to VIP:7777 is echoed by the AF_XDP worker"
    );

    // The director's own address still reaches the kernel: UDP to a real socket, and ping.
    let server = d.run(|| UdpSocket::bind("198.18.0.2:7777")).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    client
        .send_to(b"to the kernel", SocketAddr::new(dip, 7777))
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = server
        .recv_from(&mut buf)
        .expect("kernel socket receives non-VIP traffic");
    assert_eq!((&buf[..n], from.ip()), (&b"to the kernel"[..], cip));
    assert!(
        ping(&c, "c0", dmac, cip, dip),
        "ping to the director's own address"
    );

    // A port that is not a virtual service is passed, not redirected.
    let before = h.steer.counters().unwrap();
    client
        .send_to(b"not a service", SocketAddr::new(vip, 7778))
        .unwrap();
    // Ping to the VIP: the echo request is steered (the worker does not answer it).
    assert!(!ping(&c, "c0", dmac, cip, vip));
    let after = h.steer.counters().unwrap();
    assert!(after.passed > before.passed);
    assert!(after.vip_echo > before.vip_echo);

    // Without the static entry the client ARPs for the VIP; the worker answers from AF_XDP.
    c.run(|| Netlink::open().unwrap().del_neighbour(c0, vip))
        .unwrap();
    assert_eq!(echo_roundtrip(&client, SocketAddr::new(vip, 7777), 3), 3);
    let learned = c
        .run(|| Netlink::open().unwrap().neighbour(c0, vip))
        .unwrap();
    assert_eq!(
        learned.and_then(|n| n.mac),
        Some(dmac),
        "ARP reply from the worker was learned"
    );

    let counters = h.steer.counters().unwrap();
    let (seen, sock, steer) = h.finish();
    println!("steering_ipv4: {counters:?}\n  worker saw {seen:?}");
    assert_eq!(seen.udp_by_port.get(&7777), Some(&53));
    assert_eq!(seen.udp_by_port.get(&7778), None);
    assert!(seen.arp_requests >= 1 && counters.arp >= 1);
    assert!(seen.echo_requests >= 1);
    assert_eq!(counters.no_socket, 0);
    assert!(counters.redirected >= 53 + seen.arp_requests + seen.echo_requests);
    let acct = sock.chunk_accounting();
    assert_eq!(acct.app, 0, "every received frame went back: {acct:?}");
    assert_eq!(acct.free + acct.fill + acct.app + acct.tx, 4096);
    let stats = sock.stats().unwrap();
    assert!(
        stats.rx_packets >= 53 && stats.tx_packets >= 53,
        "{stats:?}"
    );
    drop(sock);
    drop(steer);
    assert_eq!(
        d.run(|| xdp::query("d0")).unwrap(),
        None,
        "detached on drop"
    );
}

#[test]
fn steering_ipv6() {
    if skip_unless_root("steering_ipv6") {
        return;
    }
    let c = Netns::new("s6c");
    let d = Netns::new("s6d");
    veth(
        &c,
        "c0",
        &["2001:db8:6::1/64"],
        &d,
        "d0",
        &["2001:db8:6::2/64"],
    );
    let (cip, dip, vip) = (
        ipaddr("2001:db8:6::1"),
        ipaddr("2001:db8:6::2"),
        ipaddr("2001:db8:6::100"),
    );
    let dmac = d.mac("d0");
    let resp = Responder {
        mac: dmac,
        vips: vec![vip],
        echo_ports: vec![7777],
    };
    let Some(mut h) = Harness::start(&d, "d0", resp, &XskConfig::default()) else {
        return;
    };
    h.steer.add_vip(VipKey::udp(vip, 7777)).unwrap();
    h.steer.add_vip_addr(vip).unwrap();

    // No static neighbour: the client's kernel solicits the VIP, the worker advertises it.
    let client = c.run(|| UdpSocket::bind("[2001:db8:6::1]:0")).unwrap();
    assert_eq!(echo_roundtrip(&client, SocketAddr::new(vip, 7777), 20), 20);
    let c0 = c
        .run(|| Netlink::open().unwrap().link_by_name("c0").unwrap())
        .ifindex;
    let learned = c
        .run(|| Netlink::open().unwrap().neighbour(c0, vip))
        .unwrap();
    assert_eq!(
        learned.and_then(|n| n.mac),
        Some(dmac),
        "NA from the worker was learned"
    );

    // The director's own address: ND and ping go to the kernel.
    assert!(
        ping(&c, "c0", dmac, cip, dip),
        "ping6 to the director's own address"
    );
    let before = h.steer.counters().unwrap();
    client
        .send_to(b"not a service", SocketAddr::new(vip, 7778))
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let after = h.steer.counters().unwrap();
    assert!(after.passed > before.passed);

    let counters = h.steer.counters().unwrap();
    let (seen, sock, _steer) = h.finish();
    println!("steering_ipv6: {counters:?}\n  worker saw {seen:?}");
    assert!(seen.neighbour_solicits >= 1 && counters.neighbour_solicit >= 1);
    assert_eq!(seen.udp_by_port.get(&7777), Some(&20));
    assert_eq!(seen.udp_by_port.get(&7778), None);
    assert_eq!(sock.chunk_accounting().app, 0);
}

#[test]
fn steering_generic_mode() {
    if skip_unless_root("steering_generic_mode") {
        return;
    }
    let c = Netns::new("sgc");
    let d = Netns::new("sgd");
    veth(&c, "c0", &["198.18.4.1/24"], &d, "d0", &["198.18.4.2/24"]);
    let vip = ipaddr("198.18.4.100");
    let resp = Responder {
        mac: d.mac("d0"),
        vips: vec![vip],
        echo_ports: vec![7777],
    };
    let cfg = XskConfig::default();
    let Some(mut h) = Harness::start_in_mode(&d, "d0", resp, &cfg, XdpMode::Skb) else {
        return;
    };
    h.steer.add_vip(VipKey::udp(vip, 7777)).unwrap();
    h.steer.add_vip_addr(vip).unwrap();
    let client = c.run(|| UdpSocket::bind("198.18.4.1:0")).unwrap();
    let got = echo_roundtrip(&client, SocketAddr::new(vip, 7777), 20);
    assert_eq!(
        got, 20,
        "generic XDP + AF_XDP copy mode echo (with ARP for the VIP)"
    );
    let (seen, _, _) = h.finish();
    assert!(seen.arp_requests >= 1);
}
