//! The per-packet work the engine does with rvs-wire: the one-pass parse (and the lean
//! parse of unfragmented TCP/UDP without options or extension headers), and the NAT
//! rewrite of a TCP segment with incremental checksums, compared with recomputing the
//! checksums in full.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use rvs_wire::{Ipv4Packet, PacketMeta, TcpPacket, checksum};

const TCP4_SYN: &[u8] = include_bytes!("../tests/fixtures/frames/tcp4-syn.bin");
const TCP6_PSH: &[u8] = include_bytes!("../tests/fixtures/frames/tcp6-psh.bin");
const UDP6_DSTOPTS: &[u8] = include_bytes!("../tests/fixtures/frames/udp6-dstopts.bin");
const UDP4_1400: &[u8] = include_bytes!("../tests/fixtures/frames/udp4-df-1400.bin");

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("PacketMeta::parse");
    for (name, frame) in [
        ("tcp4_syn", TCP4_SYN),
        ("tcp6_psh", TCP6_PSH),
        ("udp6_dstopts", UDP6_DSTOPTS),
        ("udp4_1400", UDP4_1400),
    ] {
        g.bench_function(name, |b| b.iter(|| PacketMeta::parse(black_box(frame))));
    }
    g.finish();
    // The engine's lean parse of the common shape (falls back to `parse` for the rest).
    let mut g = c.benchmark_group("PacketMeta::parse_ipv4_flow");
    for (name, frame) in [("tcp4_syn", TCP4_SYN), ("udp4_1400", UDP4_1400)] {
        g.bench_function(name, |b| {
            b.iter(|| PacketMeta::parse_ipv4_flow(black_box(frame)))
        });
    }
    g.finish();
    c.bench_function("PacketMeta::parse_ipv6_flow/tcp6_psh", |b| {
        b.iter(|| PacketMeta::parse_ipv6_flow(black_box(TCP6_PSH)))
    });
    // Reference point: etherparse's zero-copy slicing of the same frames (no IPv4 checksum
    // check), to report a ratio rather than a machine-dependent time.
    let mut g = c.benchmark_group("etherparse::SlicedPacket::from_ethernet");
    for (name, frame) in [("tcp4_syn", TCP4_SYN), ("tcp6_psh", TCP6_PSH)] {
        g.bench_function(name, |b| {
            b.iter(|| etherparse::SlicedPacket::from_ethernet(black_box(frame)).is_ok())
        });
    }
    g.finish();
}

fn nat_rewrite(c: &mut Criterion) {
    let rip = Ipv4Addr::new(198, 18, 1, 10);
    let mut g = c.benchmark_group("dnat_tcp4");
    g.bench_function("incremental", |b| {
        let mut frame = TCP4_SYN.to_vec();
        b.iter(|| {
            let (ip_bytes, _) = frame[14..].split_at_mut(20);
            let mut ip = Ipv4Packet::new_unchecked(ip_bytes);
            let old = ip.rewrite_dst_addr(black_box(rip));
            let mut tcp = TcpPacket::new_unchecked(&mut frame[34..]);
            tcp.update_checksum_for_addr(&IpAddr::V4(old), &IpAddr::V4(rip));
            tcp.rewrite_dst_port(black_box(8081));
        })
    });
    g.bench_function("full_recompute", |b| {
        let mut frame = TCP4_SYN.to_vec();
        b.iter(|| {
            let mut ip = Ipv4Packet::new_unchecked(&mut frame[14..]);
            ip.set_dst_addr(black_box(rip));
            ip.fill_checksum();
            let src = IpAddr::V4(ip.src_addr());
            let mut tcp = TcpPacket::new_unchecked(&mut frame[34..]);
            tcp.set_dst_port(black_box(8081));
            tcp.fill_checksum(&src, &IpAddr::V4(rip));
        })
    });
    g.finish();
    c.bench_function("checksum::sum_1480", |b| {
        b.iter(|| checksum::sum(black_box(&UDP4_1400[34..])))
    });
}

criterion_group!(benches, parse, nat_rewrite);
criterion_main!(benches);
