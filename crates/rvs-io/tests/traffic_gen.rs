//! The in-kernel traffic generator (bpf/xdp_gen.bpf.c): flows spread over the configured
//! source ranges with valid checksums, and live transmission out of a veth.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use rvs_io::xdp::{GenOptions, TrafficGen, XdpAction, XdpPass};
use rvs_wire::{Ipv4Packet, TcpPacket, UdpPacket};

use crate::util::{Netns, run, skip_unless_root, veth};

const SRC: [u8; 4] = [198, 18, 40, 10];
const DST: [u8; 4] = [198, 18, 40, 100];

fn udp_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(SRC, DST, 64)
        .udp(40_000, 53)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn tcp_frame() -> Vec<u8> {
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(SRC, DST, 64)
        .tcp(50_000, 80, 1, 1024)
        .ack(7)
        .write(&mut out, b"GET / HTTP/1.1\r\n")
        .unwrap();
    out
}

/// Runs the generator `n` times (not live) and checks every frame; returns the flows seen.
fn flows_of(generator: &TrafficGen, template: &[u8], n: usize) -> HashSet<(Ipv4Addr, u16)> {
    let o = generator.options();
    let mut flows = HashSet::new();
    for _ in 0..n {
        let (action, f) = generator.test_run().unwrap();
        assert_eq!(action, XdpAction::Tx);
        assert_eq!(f.len(), template.len());
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert!(ip.verify_checksum(), "IPv4 header checksum");
        let (src, dst) = (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()));
        let l4 = &f[34..];
        let sport = if f[23] == 17 {
            let udp = UdpPacket::new_checked(l4).unwrap();
            assert!(udp.verify_checksum(&src, &dst), "UDP checksum");
            assert_ne!(udp.checksum(), 0);
            udp.src_port()
        } else {
            let tcp = TcpPacket::new_checked(l4).unwrap();
            assert!(tcp.verify_checksum(&src, &dst), "TCP checksum");
            tcp.src_port()
        };
        let first = u32::from(Ipv4Addr::from(SRC));
        let a = u32::from(ip.src_addr());
        assert!((first..first + o.src_addrs).contains(&a), "{a:x}");
        let base = u16::from_be_bytes([template[34], template[35]]);
        assert!(
            (u32::from(base)..u32::from(base) + o.src_ports).contains(&u32::from(sport)),
            "{sport}"
        );
        // Everything but the source address, the source port and the checksums is the
        // template's.
        let mut masked = f.clone();
        let mut want = template.to_vec();
        for (lo, hi) in [(24, 30), (34, 36), (40, 42), (50, 52)] {
            masked[lo..hi].fill(0);
            want[lo..hi].fill(0);
        }
        assert_eq!(masked, want);
        flows.insert((ip.src_addr(), sport));
    }
    flows
}

#[test]
fn traffic_gen_spreads_flows_with_valid_checksums() {
    if skip_unless_root("traffic gen") {
        return;
    }
    let ns = Netns::new("tgen");
    let many = GenOptions {
        src_addrs: 4,
        src_ports: 8,
        batch: 64,
    };
    // A 60-byte frame (the bench's), one with a payload beyond the restored 64 bytes, TCP.
    for template in [udp_frame(&[0; 18]), udp_frame(&[0x5a; 100]), tcp_frame()] {
        let generator = ns
            .run(|| TrafficGen::with_options("lo", &template, many))
            .unwrap();
        let flows = flows_of(&generator, &template, 400);
        assert!(
            flows.len() >= 24,
            "400 random picks of 32 flows cover most of them: {}",
            flows.len()
        );
    }
    // One flow: the template itself, byte for byte.
    let template = udp_frame(&[1; 30]);
    let one = ns.run(|| TrafficGen::new("lo", &template)).unwrap();
    let (action, f) = one.test_run().unwrap();
    assert_eq!((action, f), (XdpAction::Tx, template.clone()));
    assert_eq!(flows_of(&one, &template, 10).len(), 1);
}

#[test]
fn traffic_gen_sends_for_a_duration() {
    if skip_unless_root("traffic gen live") {
        return;
    }
    let a = Netns::new("tgla");
    let b = Netns::new("tglb");
    veth(&a, "g0", &["198.18.41.1/24"], &b, "g1", &["198.18.41.2/24"]);
    // The receiving end of a veth takes XDP-transmitted frames only with an XDP program.
    let _pass = match b.run(|| XdpPass::attach("g1")) {
        Ok(p) => p,
        Err(e) if e.raw_os_error() == Some(95) => {
            eprintln!("SKIP traffic gen live: no native XDP on veth here: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let rx = || -> u64 {
        run(
            "ip",
            &[
                "netns",
                "exec",
                b.name.as_str(),
                "cat",
                "/sys/class/net/g1/statistics/rx_packets",
            ],
        )
        .trim()
        .parse()
        .unwrap()
    };
    let template = udp_frame(&[0; 18]);
    let options = GenOptions {
        src_addrs: 8,
        src_ports: 64,
        batch: 32,
    };
    let generator = a
        .run(|| TrafficGen::with_options("g0", &template, options))
        .unwrap();
    let before = rx();
    let report = generator.run_for(Duration::from_millis(300)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let got = rx() - before;
    println!(
        "traffic gen: {} frames in {:?} ({:.0} pps), {got} received",
        report.frames,
        report.elapsed,
        report.pps()
    );
    assert!(report.elapsed >= Duration::from_millis(300));
    assert!(report.frames >= 64, "{report:?}");
    // The peer may drop some when its ring is full; the kernel's own IPv6 neighbour discovery
    // on the new link may add a few frames.
    assert!(
        got >= report.frames / 2 && got <= report.frames + 10,
        "{got} of {}",
        report.frames
    );
}
