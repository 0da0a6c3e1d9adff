//! `rvs bench`: the pieces of `bench/run` that need Rust.
//!
//! `rvs bench gen` offers UDP from many flows at full speed with [`rvs_io::xdp::TrafficGen`]
//! (`BPF_PROG_RUN` with live frames: the kernel runs bpf/xdp_gen.bpf.c in a loop and transmits
//! every frame it returns with `XDP_TX`), so a single core offers several million 64-byte
//! packets per second into a veth — far more than a socket-based generator (trafgen tops out
//! near 0.6 Mpps here). xdp-tools' own `xdp-trafficgen` 1.3.1 does the same but no longer
//! loads on recent kernels (it needs the removed `xdp_redirect_map_err` tracepoint). This
//! module builds the template frame and hands it to the generator.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use rvs_io::netlink::Netlink;
use rvs_io::xdp::{GenOptions, GenReport, TrafficGen};
use rvs_wire::{
    EtherType, EthernetAddress, EthernetFrame, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr,
    UdpPacket, UdpRepr,
};

/// Ethernet + IPv4 (no options) + UDP header length.
const HDR_LEN: usize = 14 + 20 + 8;

/// Why a benchmark helper failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// Invalid parameters.
    #[error("{0}")]
    BadSpec(String),
    /// The interface could not be read, or the generator not loaded or run.
    #[error(transparent)]
    Io(#[from] rvs_io::IoError),
}

/// What `rvs bench gen` sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenSpec {
    /// Interface to transmit on (in the current network namespace).
    pub interface: String,
    /// Destination MAC (the next hop: the peer of `interface`).
    pub dst_mac: [u8; 6],
    /// Source MAC (`None`: the interface's own).
    pub src_mac: Option<[u8; 6]>,
    /// First source address.
    pub src: Ipv4Addr,
    /// Source addresses used: `src`, `src + 1`, …
    pub src_count: u32,
    /// First source port.
    pub src_port: u16,
    /// Source ports used: `src_port`, `src_port + 1`, …
    pub port_count: u32,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Destination port.
    pub dst_port: u16,
    /// Frame length without FCS (60 = a 64-byte frame on the wire).
    pub frame_len: usize,
    /// How long to send.
    pub duration: Duration,
    /// Frames per kernel batch (1..=256).
    pub batch: u32,
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], BenchError> {
    let bad = || BenchError::BadSpec(format!("bad MAC address `{s}`"));
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next().ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(mac)
}

/// The template frame: Ethernet, IPv4 (TTL 64, DF, no options), UDP with its checksum and a
/// zero payload, `spec.frame_len` bytes (at least 60). Packets carry DF and a real UDP
/// checksum, like a Linux UDP socket's: load balancers may treat checksum-0 or fragmentable
/// datagrams specially.
pub fn template(spec: &GenSpec, src_mac: [u8; 6]) -> Vec<u8> {
    let len = spec.frame_len.max(TrafficGen::MIN_FRAME).max(HDR_LEN);
    let payload = vec![0u8; len - HDR_LEN];
    let mut f = vec![0u8; len];
    EthernetRepr {
        src_addr: EthernetAddress(src_mac),
        dst_addr: EthernetAddress(spec.dst_mac),
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    let udp = UdpRepr {
        src_port: spec.src_port,
        dst_port: spec.dst_port,
        payload: &payload,
    };
    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
    Ipv4Repr {
        src_addr: spec.src,
        dst_addr: spec.dst,
        next_header: IpProtocol::Udp,
        payload_len: udp.buffer_len(),
        hop_limit: 64,
        dscp_ecn: 0,
        ident: 0,
        dont_frag: true,
    }
    .emit(&mut ip);
    udp.emit(
        &mut UdpPacket::new_unchecked(ip.payload_mut()),
        &IpAddr::V4(spec.src),
        &IpAddr::V4(spec.dst),
    );
    f
}

/// Sends for `spec.duration` from the calling thread; returns how many frames were offered.
/// The kernel drops what the interface or its peer cannot take: count at the receiver.
pub fn run(spec: &GenSpec) -> Result<GenReport, BenchError> {
    if !(TrafficGen::MIN_FRAME..=1514).contains(&spec.frame_len) {
        return Err(BenchError::BadSpec(
            "frame length must be 60..=1514".to_owned(),
        ));
    }
    let src_mac = match spec.src_mac {
        Some(m) => m,
        None => Netlink::open()?
            .link_by_name(&spec.interface)?
            .mac
            .ok_or_else(|| BenchError::BadSpec(format!("{} has no MAC address", spec.interface)))?,
    };
    let generator = TrafficGen::with_options(
        &spec.interface,
        &template(spec, src_mac),
        GenOptions {
            src_addrs: spec.src_count,
            src_ports: spec.port_count,
            batch: spec.batch,
        },
    )?;
    Ok(generator.run_for(spec.duration)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> GenSpec {
        GenSpec {
            interface: "eth0".into(),
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_mac: None,
            src: Ipv4Addr::new(198, 18, 1, 10),
            src_count: 8,
            src_port: 1024,
            port_count: 512,
            dst: Ipv4Addr::new(198, 18, 0, 100),
            dst_port: 53,
            frame_len: 60,
            duration: Duration::from_secs(1),
            batch: 64,
        }
    }

    #[test]
    fn template_is_a_valid_64_byte_udp_frame() {
        let f = template(&spec(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(f.len(), 60);
        assert_eq!(&f[0..6], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(&f[6..12], &[2, 0, 0, 0, 0, 2]);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(u16::from_be_bytes([f[16], f[17]]), 46, "IPv4 total length");
        assert_eq!(&f[26..30], &[198, 18, 1, 10]);
        assert_eq!(&f[30..34], &[198, 18, 0, 100]);
        assert_eq!(u16::from_be_bytes([f[34], f[35]]), 1024);
        assert_eq!(u16::from_be_bytes([f[36], f[37]]), 53);
        assert_eq!(u16::from_be_bytes([f[38], f[39]]), 26, "UDP length");
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((f[20], f[22]), (0x40, 64), "DF, TTL 64");
        let udp = UdpPacket::new_checked(&f[34..]).unwrap();
        let (src, dst) = (
            "198.18.1.10".parse().unwrap(),
            "198.18.0.100".parse().unwrap(),
        );
        assert!(udp.verify_checksum(&src, &dst));
        assert_ne!(udp.checksum(), 0, "a real UDP checksum");
        let long = template(
            &GenSpec {
                frame_len: 100,
                ..spec()
            },
            [2, 0, 0, 0, 0, 2],
        );
        assert_eq!((long.len(), long[17]), (100, 86), "IPv4 total length 86");
    }

    #[test]
    fn bad_frame_lengths_are_refused() {
        for frame_len in [59, 1515] {
            let s = GenSpec {
                frame_len,
                ..spec()
            };
            assert!(matches!(run(&s), Err(BenchError::BadSpec(_))));
        }
    }

    #[test]
    fn macs_parse() {
        assert_eq!(
            parse_mac("aa:14:b9:66:aa:50").unwrap(),
            [0xaa, 0x14, 0xb9, 0x66, 0xaa, 0x50]
        );
        assert!(parse_mac("aa:14:b9:66:aa").is_err());
        assert!(parse_mac("aa:14:b9:66:aa:50:01").is_err());
        assert!(parse_mac("zz:14:b9:66:aa:50").is_err());
    }
}
