//! Who answers ARP / Neighbour Solicitations for the VIP: hand-made requests sent on a packet
//! socket, every answer collected for a while.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use etherparse::{
    ArpHardwareId, ArpOperation, ArpPacket, ArpPacketSlice, EtherType, Ethernet2Header, Ipv6Header,
    PacketBuilder,
};
use rvs_io::packet::{ETH_P_ALL, PacketSocket};

use super::traffic::spawn_in;

/// What a probe saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct NeighAnswers {
    /// Requests sent.
    pub(crate) requests: u32,
    /// Answering MAC (Ethernet source) → number of answers.
    pub(crate) answers: BTreeMap<[u8; 6], u32>,
    /// Answers whose advertised link-layer address differs from their Ethernet source.
    pub(crate) inconsistent: u32,
}

/// An ARP request (IPv4 target) or a Neighbour Solicitation (IPv6 target) for `target`, sent
/// `count` times 200 ms apart from `(src_ip, src_mac)` on `dev` in `ns`; every ARP reply / NA
/// for `target` seen on `dev` within `watch` after the first request is collected.
pub(crate) fn probe(
    ns: &str,
    dev: &str,
    src_mac: [u8; 6],
    src_ip: IpAddr,
    target: IpAddr,
    count: u32,
    watch: Duration,
) -> NeighAnswers {
    let dev = dev.to_owned();
    spawn_in(ns, move || {
        let sock = PacketSocket::open(&dev, ETH_P_ALL).unwrap();
        let request = match (src_ip, target) {
            (IpAddr::V4(s), IpAddr::V4(t)) => arp_request(src_mac, s, t),
            (IpAddr::V6(s), IpAddr::V6(t)) => neighbour_solicitation(src_mac, s, t),
            _ => panic!("mixed families"),
        };
        let mut seen = NeighAnswers::default();
        let start = Instant::now();
        let mut buf = vec![0u8; 4096];
        while start.elapsed() < watch {
            if seen.requests < count
                && start.elapsed() >= Duration::from_millis(200) * seen.requests
            {
                sock.send(&request).unwrap();
                seen.requests += 1;
            }
            let Some(n) = sock
                .recv(&mut buf, Some(Duration::from_millis(20)))
                .unwrap()
            else {
                continue;
            };
            if let Some((eth_src, advertised)) = answer_for(&buf[..n], target) {
                *seen.answers.entry(eth_src).or_default() += 1;
                if advertised.is_some_and(|m| m != eth_src) {
                    seen.inconsistent += 1;
                }
            }
        }
        seen
    })
    .join()
    .unwrap()
}

fn arp_request(mac: [u8; 6], src: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let arp = ArpPacket::new(
        ArpHardwareId::ETHERNET,
        EtherType::IPV4,
        ArpOperation::REQUEST,
        &mac,
        &src.octets(),
        &[0; 6],
        &target.octets(),
    )
    .unwrap();
    let mut out = Vec::new();
    PacketBuilder::ethernet2(mac, [0xff; 6])
        .arp(arp)
        .write(&mut out)
        .unwrap();
    out
}

/// NS to the target's solicited-node multicast group with a source link-layer address option.
fn neighbour_solicitation(mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let t = target.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    let g = group.octets();
    let dst_mac = [0x33, 0x33, g[12], g[13], g[14], g[15]];
    let mut body = t.to_vec();
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(&mac);
    let mut out = Vec::new();
    PacketBuilder::ethernet2(mac, dst_mac)
        .ipv6(src.octets(), g, 255)
        .icmpv6_raw(135, 0, [0; 4])
        .write(&mut out, &body)
        .unwrap();
    out
}

/// `(Ethernet source, advertised MAC)` if `frame` is an ARP reply or a Neighbour Advertisement
/// for `target`.
fn answer_for(frame: &[u8], target: IpAddr) -> Option<([u8; 6], Option<[u8; 6]>)> {
    let (eth, rest) = Ethernet2Header::from_slice(frame).ok()?;
    match target {
        IpAddr::V4(t) if eth.ether_type == EtherType::ARP => {
            let arp = ArpPacketSlice::from_slice(rest).ok()?;
            (arp.operation() == ArpOperation::REPLY && arp.sender_protocol_addr() == t.octets())
                .then(|| (eth.source, arp.sender_hw_addr().try_into().ok()))
        }
        IpAddr::V6(t) if eth.ether_type == EtherType::IPV6 => {
            let (ip, icmp) = Ipv6Header::from_slice(rest).ok()?;
            if ip.next_header.0 != 58 || *icmp.first()? != 136 || icmp.get(8..24)? != t.octets() {
                return None;
            }
            // Options after the 24-byte NA: type 2 = target link-layer address.
            let mut opts = icmp.get(24..usize::from(ip.payload_length))?;
            let mut advertised = None;
            while opts.len() >= 8 {
                let len = usize::from(opts[1]) * 8;
                if len == 0 || len > opts.len() {
                    break;
                }
                if opts[0] == 2 {
                    advertised = opts[2..8].try_into().ok();
                }
                opts = &opts[len..];
            }
            Some((eth.source, advertised))
        }
        _ => None,
    }
}
