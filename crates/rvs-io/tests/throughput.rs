//! Throughput smoke check: UDP through the steering program, an AF_XDP socket (copy mode on
//! veth) and the echo worker, rx → rewrite → tx. Prints the rate; asserts only that traffic
//! flowed, since the number depends on the machine and on what else runs on it.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rvs_io::netlink::Netlink;
use rvs_io::xdp::VipKey;
use rvs_io::xsk::{XskConfig, XskSocket};

use crate::pkt::{self, Responder};
use crate::steering::Harness;
use crate::util::{Netns, ipaddr, skip_unless_root, veth};

#[test]
fn throughput_smoke() {
    if skip_unless_root("throughput_smoke") {
        return;
    }
    let c = Netns::new("tpc");
    let d = Netns::new("tpd");
    veth(&c, "c0", &["198.18.3.1/24"], &d, "d0", &["198.18.3.2/24"]);
    let vip = ipaddr("198.18.3.100");
    let dmac = d.mac("d0");
    let resp = Responder {
        mac: dmac,
        vips: vec![vip],
        echo_ports: vec![9],
    };
    let Some(mut h) = Harness::start(&d, "d0", resp, &XskConfig::default()) else {
        return;
    };
    h.steer.add_vip(VipKey::udp(vip, 9)).unwrap();
    let c0 = c
        .run(|| Netlink::open().unwrap().link_by_name("c0").unwrap())
        .ifindex;
    c.run(|| Netlink::open().unwrap().set_neighbour(c0, vip, dmac, true))
        .unwrap();

    let client = c.run(|| UdpSocket::bind("198.18.3.1:0")).unwrap();
    client.connect(SocketAddr::new(vip, 9)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let rx_sock = client.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let rx = {
        let (stop, received) = (stop.clone(), received.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !stop.load(Ordering::Relaxed) {
                if rx_sock.recv(&mut buf).is_ok() {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    // The generator is an AF_XDP socket on the client end too: one syscall per batch instead
    // of one per datagram, so the director side is what gets measured.
    let mut gen_sock = c
        .run(|| XskSocket::open("c0", 0, &XskConfig::default()))
        .unwrap();
    let cmac = c.mac("c0");
    let cport = client.local_addr().unwrap().port();
    let frame = pkt::ethernet(
        dmac,
        cmac,
        pkt::ETHERTYPE_IPV4,
        &pkt::ipv4(
            "198.18.3.1".parse().unwrap(),
            "198.18.3.100".parse().unwrap(),
            17,
            &pkt::udp(ipaddr("198.18.3.1"), vip, cport, 9, &[0u8; 18]), // 60-byte frames
        ),
    );
    let run = Duration::from_secs(1);
    let start = Instant::now();
    let before = h.steer.counters().unwrap();
    let mut sent = 0u64;
    while start.elapsed() < run {
        gen_sock.reclaim_completions();
        for _ in 0..64 {
            let Some((mut f, buf)) = gen_sock.alloc_tx() else {
                break;
            };
            buf[..frame.len()].copy_from_slice(&frame);
            f.len = frame.len() as u32;
            if gen_sock.tx_push(f).is_err() {
                gen_sock.recycle(f).unwrap();
                break;
            }
            sent += 1;
        }
        gen_sock.flush_tx().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    rx.join().unwrap();
    let after = h.steer.counters().unwrap();
    let (seen, sock, _steer) = h.finish();
    let stats = sock.stats().unwrap();
    let redirected = after.redirected - before.redirected;
    let echoed = seen.udp_by_port.get(&9).copied().unwrap_or(0);
    let got = received.load(Ordering::Relaxed);
    println!(
        "throughput_smoke (veth, native XDP, AF_XDP copy mode, 1 worker, 60-byte UDP):\n  \
         generator (AF_XDP on the client end) sent {:.0} pps; XDP redirected {:.0} pps; worker rx->tx {:.0} pps; client received {:.0} pps\n  \
         xsk {stats:?}",
        sent as f64 / elapsed,
        redirected as f64 / elapsed,
        echoed as f64 / elapsed,
        got as f64 / elapsed,
    );
    if seen.cpu_ns > 0 {
        let ns_per_pkt = seen.cpu_ns as f64 / echoed.max(1) as f64;
        println!(
            "  worker thread on CPU {:.0}% of the run: {ns_per_pkt:.0} ns per packet (including the \
             copy-mode TX kick), i.e. about {:.0} pps per fully used core",
            seen.cpu_ns as f64 / 1e7 / elapsed,
            1e9 / ns_per_pkt
        );
    }
    assert!(echoed > 0 && got > 0, "traffic flowed through AF_XDP");
    assert_eq!(sock.chunk_accounting().app, 0);
}
