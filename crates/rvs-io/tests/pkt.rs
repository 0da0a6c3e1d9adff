//! Small local packet helpers for the tests (rvs-wire is written in parallel): checksums,
//! builders, and an AF_XDP "echo" worker that answers ARP/NS for a VIP and reflects UDP.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rvs_io::xsk::{Frame, XskSocket};

pub(crate) const ETH_HLEN: usize = 14;
pub(crate) const ETHERTYPE_IPV4: u16 = 0x0800;
pub(crate) const ETHERTYPE_IPV6: u16 = 0x86dd;
pub(crate) const ETHERTYPE_ARP: u16 = 0x0806;

/// One's-complement sum of `b` (RFC 1071), not folded.
pub(crate) fn sum(b: &[u8]) -> u32 {
    let mut s = 0u32;
    let mut chunks = b.chunks_exact(2);
    for c in &mut chunks {
        s += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        s += u32::from(*last) << 8;
    }
    s
}

pub(crate) fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Recomputes the IPv4 header checksum of `hdr` in place.
pub(crate) fn fix_ipv4_checksum(hdr: &mut [u8]) {
    let ihl = usize::from(hdr[0] & 0xf) * 4;
    hdr[10] = 0;
    hdr[11] = 0;
    let c = fold(sum(&hdr[..ihl]));
    hdr[10..12].copy_from_slice(&c.to_be_bytes());
}

/// TCP/UDP/ICMPv6 checksum over the pseudo header and `l4` (whose checksum field must be 0).
pub(crate) fn l4_checksum(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> u16 {
    let mut s = sum(l4);
    match (src, dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            s += sum(&a.octets()) + sum(&b.octets()) + u32::from(proto) + l4.len() as u32;
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            s += sum(&a.octets()) + sum(&b.octets()) + u32::from(proto) + l4.len() as u32;
        }
        _ => panic!("mixed families"),
    }
    match fold(s) {
        0 if proto == 17 => 0xffff,
        c => c,
    }
}

pub(crate) fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let c = l4_checksum(src, dst, 17, &u);
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

pub(crate) fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
    h[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    fix_ipv4_checksum(&mut h);
    h.extend_from_slice(payload);
    h
}

pub(crate) fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(payload);
    h
}

pub(crate) fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HLEN + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ethertype(f: &[u8]) -> u16 {
    u16::from_be_bytes([f[12], f[13]])
}

/// What the echo worker saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct Seen {
    pub(crate) arp_requests: u64,
    pub(crate) neighbour_solicits: u64,
    pub(crate) echo_requests: u64,
    /// UDP datagrams reflected, by destination port.
    pub(crate) udp_by_port: HashMap<u16, u64>,
    pub(crate) other: u64,
    pub(crate) tx_full: u64,
    /// CPU time the worker thread used, in ns (10 ms resolution; 0 if unknown).
    pub(crate) cpu_ns: u64,
}

/// User + system time of the calling thread in ns, from /proc/thread-self/stat (utime and
/// stime, fields 14 and 15, in USER_HZ = 100 ticks per second on Linux/x86).
fn thread_cpu_ns() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return 0;
    };
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0;
    };
    let f: Vec<u64> = rest
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // After the command name: state (not numeric, filtered out), then fields 4.. numbered from 0.
    f.get(10)
        .zip(f.get(11))
        .map_or(0, |(u, s)| (u + s) * 10_000_000)
}

/// The echo worker's view of the director: its MAC and VIPs, and the UDP ports it reflects.
#[derive(Debug, Clone)]
pub(crate) struct Responder {
    pub(crate) mac: [u8; 6],
    pub(crate) vips: Vec<IpAddr>,
    pub(crate) echo_ports: Vec<u16>,
}

enum Verdict {
    /// Reflected in place: transmit the same frame.
    Echo,
    /// Answer built into this buffer (ARP reply, neighbour advertisement): transmit a copy.
    Answer(usize),
    Drop,
}

impl Responder {
    fn handle(&self, f: &mut [u8], answer: &mut [u8; 128], seen: &mut Seen) -> Verdict {
        if f.len() < ETH_HLEN {
            seen.other += 1;
            return Verdict::Drop;
        }
        match ethertype(f) {
            ETHERTYPE_ARP if f.len() >= 42 && f[20..22] == [0, 1] => {
                let tpa = Ipv4Addr::new(f[38], f[39], f[40], f[41]);
                if !self.vips.contains(&IpAddr::V4(tpa)) {
                    seen.other += 1;
                    return Verdict::Drop;
                }
                seen.arp_requests += 1;
                let (sha, spa) = (&f[22..28], &f[28..32]);
                let a = &mut answer[..42];
                a[0..6].copy_from_slice(sha);
                a[6..12].copy_from_slice(&self.mac);
                a[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
                a[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
                a[22..28].copy_from_slice(&self.mac);
                a[28..32].copy_from_slice(&tpa.octets());
                a[32..38].copy_from_slice(sha);
                a[38..42].copy_from_slice(spa);
                Verdict::Answer(42)
            }
            ETHERTYPE_IPV4 if f.len() >= ETH_HLEN + 20 => {
                let ihl = usize::from(f[ETH_HLEN] & 0xf) * 4;
                let proto = f[ETH_HLEN + 9];
                let l4 = ETH_HLEN + ihl;
                if proto == 1 && f.get(l4) == Some(&8) {
                    seen.echo_requests += 1;
                    return Verdict::Drop;
                }
                if proto != 17 || f.len() < l4 + 8 {
                    seen.other += 1;
                    return Verdict::Drop;
                }
                let dport = u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]);
                *seen.udp_by_port.entry(dport).or_default() += 1;
                if !self.echo_ports.contains(&dport) {
                    return Verdict::Drop;
                }
                swap_macs(f);
                let (s, d) = (ETH_HLEN + 12, ETH_HLEN + 16);
                for i in 0..4 {
                    f.swap(s + i, d + i);
                }
                f[ETH_HLEN + 8] = 64;
                fix_ipv4_checksum(&mut f[ETH_HLEN..]);
                let src = IpAddr::V4(Ipv4Addr::new(f[s], f[s + 1], f[s + 2], f[s + 3]));
                let dst = IpAddr::V4(Ipv4Addr::new(f[d], f[d + 1], f[d + 2], f[d + 3]));
                reflect_udp(&mut f[l4..], src, dst);
                Verdict::Echo
            }
            ETHERTYPE_IPV6 if f.len() >= ETH_HLEN + 40 => {
                let next = f[ETH_HLEN + 6];
                let l4 = ETH_HLEN + 40;
                let src6 =
                    Ipv6Addr::from(<[u8; 16]>::try_from(&f[ETH_HLEN + 8..ETH_HLEN + 24]).unwrap());
                if next == 58 && f.len() >= l4 + 24 && f[l4] == 135 {
                    let target = Ipv6Addr::from(<[u8; 16]>::try_from(&f[l4 + 8..l4 + 24]).unwrap());
                    if !self.vips.contains(&IpAddr::V6(target)) {
                        seen.other += 1;
                        return Verdict::Drop;
                    }
                    seen.neighbour_solicits += 1;
                    let dst6 = if src6.is_unspecified() {
                        "ff02::1".parse().unwrap()
                    } else {
                        src6
                    };
                    // NA: type 136, flags Solicited|Override, target, target link-layer option.
                    let mut na = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
                    na.extend_from_slice(&target.octets());
                    na.extend_from_slice(&[2, 1]);
                    na.extend_from_slice(&self.mac);
                    let c = l4_checksum(IpAddr::V6(target), IpAddr::V6(dst6), 58, &na);
                    na[2..4].copy_from_slice(&c.to_be_bytes());
                    let mut ip = ipv6(target, dst6, 58, &na);
                    ip[7] = 255; // hop limit 255, required for ND
                    let mut dst_mac = [0u8; 6];
                    dst_mac.copy_from_slice(&f[6..12]);
                    let frame = ethernet(dst_mac, self.mac, ETHERTYPE_IPV6, &ip);
                    answer[..frame.len()].copy_from_slice(&frame);
                    return Verdict::Answer(frame.len());
                }
                if next == 58 && f.get(l4) == Some(&128) {
                    seen.echo_requests += 1;
                    return Verdict::Drop;
                }
                if next != 17 || f.len() < l4 + 8 {
                    seen.other += 1;
                    return Verdict::Drop;
                }
                let dport = u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]);
                *seen.udp_by_port.entry(dport).or_default() += 1;
                if !self.echo_ports.contains(&dport) {
                    return Verdict::Drop;
                }
                swap_macs(f);
                let (s, d) = (ETH_HLEN + 8, ETH_HLEN + 24);
                for i in 0..16 {
                    f.swap(s + i, d + i);
                }
                f[ETH_HLEN + 7] = 64;
                let src = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&f[s..s + 16]).unwrap()));
                let dst = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&f[d..d + 16]).unwrap()));
                reflect_udp(&mut f[l4..], src, dst);
                Verdict::Echo
            }
            _ => {
                seen.other += 1;
                Verdict::Drop
            }
        }
    }
}

fn swap_macs(f: &mut [u8]) {
    for i in 0..6 {
        f.swap(i, 6 + i);
    }
}

/// Swaps the UDP ports and recomputes the checksum for the (already swapped) addresses.
fn reflect_udp(u: &mut [u8], src: IpAddr, dst: IpAddr) {
    u.swap(0, 2);
    u.swap(1, 3);
    let len = usize::from(u16::from_be_bytes([u[4], u[5]])).min(u.len());
    u[6] = 0;
    u[7] = 0;
    let c = l4_checksum(src, dst, 17, &u[..len]);
    u[6..8].copy_from_slice(&c.to_be_bytes());
}

/// Runs the echo worker on `sock` until `stop`; returns what it saw and the socket (for its
/// counters and chunk accounting).
pub(crate) fn echo_worker(
    mut sock: XskSocket,
    resp: Responder,
    stop: Arc<AtomicBool>,
) -> (Seen, XskSocket) {
    let mut seen = Seen::default();
    let mut frames: Vec<Frame> = Vec::with_capacity(64);
    let mut answer = [0u8; 128];
    let cpu_start = thread_cpu_ns();
    while !stop.load(Ordering::Relaxed) {
        sock.poll(Some(Duration::from_millis(5))).unwrap();
        sock.rx_burst(&mut frames, 64);
        for f in frames.drain(..) {
            let verdict = {
                let pkt = sock.packet_mut(&f).expect("received frame is ours");
                resp.handle(pkt, &mut answer, &mut seen)
            };
            match verdict {
                Verdict::Echo => {
                    if sock.tx_push(f).is_err() {
                        seen.tx_full += 1;
                        sock.recycle(f).unwrap();
                    }
                }
                Verdict::Answer(n) => {
                    sock.recycle(f).unwrap();
                    if let Some((mut out, buf)) = sock.alloc_tx() {
                        buf[..n].copy_from_slice(&answer[..n]);
                        out.len = n as u32;
                        if sock.tx_push(out).is_err() {
                            seen.tx_full += 1;
                            sock.recycle(out).unwrap();
                        }
                    }
                }
                Verdict::Drop => sock.recycle(f).unwrap(),
            }
        }
        sock.flush_tx().unwrap();
        sock.reclaim_completions();
        sock.refill();
    }
    seen.cpu_ns = thread_cpu_ns().saturating_sub(cpu_start);
    // Let the last transmissions complete so the accounting is final.
    for _ in 0..100 {
        sock.flush_tx().unwrap();
        sock.reclaim_completions();
        if sock.chunk_accounting().tx == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (seen, sock)
}

#[test]
fn checksum_helpers_match_a_known_header() {
    // RFC 1071 example-style check: a real IPv4 header (from a capture) with checksum 0xb861.
    let mut h = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];
    fix_ipv4_checksum(&mut h);
    assert_eq!(&h[10..12], &[0xb8, 0x61]);
    // Over a datagram whose checksum is right, the sum is 0xffff, which folds to 0 and is then
    // written as 0xffff (UDP's "zero" rule); a wrong checksum gives anything else.
    let (s, d) = (
        "198.18.0.1".parse().unwrap(),
        "198.18.0.100".parse().unwrap(),
    );
    let u = udp(s, d, 1000, 7777, b"hello");
    assert_eq!(l4_checksum(s, d, 17, &u), 0xffff);
}

/// An ICMP (v4) echo request message with a valid checksum.
pub(crate) fn icmp4_echo(id: u16, seq: u16) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(b"rvs-io ping");
    let c = fold(sum(&m));
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An ICMPv6 echo request message with a valid checksum.
pub(crate) fn icmp6_echo(src: Ipv6Addr, dst: Ipv6Addr, id: u16, seq: u16) -> Vec<u8> {
    let mut m = vec![128, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(b"rvs-io ping");
    let c = l4_checksum(IpAddr::V6(src), IpAddr::V6(dst), 58, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// Whether `f` is an ICMP/ICMPv6 echo reply with identifier `id`.
pub(crate) fn is_echo_reply(f: &[u8], id: u16) -> bool {
    if f.len() < ETH_HLEN + 20 {
        return false;
    }
    match ethertype(f) {
        ETHERTYPE_IPV4 => {
            let l4 = ETH_HLEN + usize::from(f[ETH_HLEN] & 0xf) * 4;
            f[ETH_HLEN + 9] == 1
                && f.len() >= l4 + 8
                && f[l4] == 0
                && f[l4 + 4..l4 + 6] == id.to_be_bytes()
        }
        ETHERTYPE_IPV6 => {
            let l4 = ETH_HLEN + 40;
            f.len() >= l4
                && f[ETH_HLEN + 6] == 58
                && f.len() >= l4 + 8
                && f[l4] == 129
                && f[l4 + 4..l4 + 6] == id.to_be_bytes()
        }
        _ => false,
    }
}
