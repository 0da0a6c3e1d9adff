//! A UDP packet generator on `BPF_PROG_TEST_RUN` in live-frames mode.
//!
//! The header template (Ethernet, IPv4, UDP) is built here and handed to the XDP program
//! `bench_gen` (`bench/xdp/gen.bpf.c`) as a read-only global; the program rewrites every frame
//! from it, picks a random flow (source address among `src_count`, source port among
//! `port_count`), recomputes the IPv4 and UDP checksums and returns `XDP_TX`. Packets carry DF
//! and a real UDP checksum, like a Linux UDP socket's: load balancers may treat checksum-0 or
//! fragmentable datagrams specially. The kernel transmits those
//! frames out of the interface named in the context, in batches, from the calling thread.
//! Where the peer cannot take them (a veth whose peer has neither an XDP program nor GRO
//! enabled, or a full ring) the kernel drops them: [`GenReport::runs`] is what was offered, the
//! receiving side counts what arrived.

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aya::EbpfLoader;
use aya::programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp};

use super::BenchError;

/// Ethernet + IPv4 (no options) + UDP header length.
pub const HDR_LEN: usize = 14 + 20 + 8;
/// Smallest frame: 60 bytes, i.e. 64 bytes on the wire with the FCS.
pub const MIN_FRAME: usize = 60;

/// What to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenSpec {
    /// Interface to transmit on (in the current network namespace).
    pub interface: String,
    /// The compiled `bench/xdp/gen.bpf.c`.
    pub object: PathBuf,
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

/// What was sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenReport {
    /// Program runs, i.e. frames offered to `XDP_TX`.
    pub runs: u64,
    /// Wall-clock time spent sending.
    pub elapsed: Duration,
}

impl GenReport {
    /// Frames offered per second.
    pub fn pps(&self) -> f64 {
        self.runs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
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

fn sysfs(interface: &str, attr: &str) -> Result<String, BenchError> {
    fs::read_to_string(format!("/sys/class/net/{interface}/{attr}"))
        .map(|s| s.trim().to_owned())
        .map_err(|source| BenchError::Interface {
            name: interface.to_owned(),
            source,
        })
}

/// The RFC 1071 ones' complement sum of `bytes`, folded to 16 bits.
fn ones_sum(bytes: &[u8]) -> u32 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

/// The checksum of an IPv4 header.
fn ipv4_checksum(header: &[u8]) -> u16 {
    !(ones_sum(header) as u16)
}

/// The first frame: Ethernet, IPv4 (TTL 64, DF, no options), UDP with its checksum, zero payload.
pub fn template(spec: &GenSpec, src_mac: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0u8; spec.frame_len.max(MIN_FRAME)];
    f[0..6].copy_from_slice(&spec.dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (f.len() - 14) as u16;
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&spec.src.octets());
    ip[16..20].copy_from_slice(&spec.dst.octets());
    let csum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&spec.src_port.to_be_bytes());
    udp[2..4].copy_from_slice(&spec.dst_port.to_be_bytes());
    udp[4..6].copy_from_slice(&(ip_len - 20).to_be_bytes());
    let mut pseudo = Vec::with_capacity(12 + f.len() - 34);
    pseudo.extend_from_slice(&f[26..34]);
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(ip_len - 20).to_be_bytes());
    pseudo.extend_from_slice(&f[34..]);
    let csum = match !(ones_sum(&pseudo) as u16) {
        0 => 0xffff,
        c => c,
    };
    f[40..42].copy_from_slice(&csum.to_be_bytes());
    f
}

fn check(spec: &GenSpec) -> Result<(), BenchError> {
    let bad = |m: &str| Err(BenchError::BadSpec(m.to_owned()));
    if !(MIN_FRAME..=1514).contains(&spec.frame_len) {
        return bad("frame length must be 60..=1514");
    }
    if spec.src_count == 0 || spec.port_count == 0 {
        return bad("source address and port counts must be at least 1");
    }
    if u32::from(spec.src_port) + spec.port_count > 65_536 {
        return bad("source port range exceeds 65535");
    }
    if u64::from(u32::from(spec.src)) + u64::from(spec.src_count) > 1 << 32 {
        return bad("source address range overflows");
    }
    if !(1..=256).contains(&spec.batch) {
        return bad("batch must be 1..=256");
    }
    Ok(())
}

/// Sends for `spec.duration` from the calling thread; returns how many frames were offered.
pub fn run(spec: &GenSpec) -> Result<GenReport, BenchError> {
    check(spec)?;
    let ifindex: u32 = sysfs(&spec.interface, "ifindex")?
        .parse()
        .map_err(|_| BenchError::BadSpec(format!("no ifindex for {}", spec.interface)))?;
    let src_mac = match spec.src_mac {
        Some(m) => m,
        None => parse_mac(&sysfs(&spec.interface, "address")?)?,
    };
    let frame = template(spec, src_mac);
    let mut hdr = [0u8; HDR_LEN];
    hdr.copy_from_slice(&frame[..HDR_LEN]);

    let mut bpf = EbpfLoader::new()
        .override_global("hdr", &hdr, true)
        .override_global("n_addrs", &spec.src_count, true)
        .override_global("n_ports", &spec.port_count, true)
        .load_file(&spec.object)
        .map_err(|e| BenchError::Load {
            path: spec.object.clone(),
            source: Box::new(e),
        })?;
    let prog: &mut Xdp = bpf
        .program_mut("bench_gen")
        .ok_or_else(|| BenchError::BadSpec("no program `bench_gen` in the object".into()))?
        .try_into()?;
    prog.load()?;

    // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex.
    // The kernel requires data = 0 and data_end = the frame length.
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());

    let start = Instant::now();
    let deadline = start + spec.duration;
    let mut runs = 0u64;
    // Each syscall runs `repeat` frames; aim for about 250 ms per call: every call sets up and
    // tears down a page pool, which sleeps for an RCU grace period or two.
    let mut repeat: u32 = 4096;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let t = Instant::now();
        prog.test_run(TestRunOptions {
            data_in: Some(&frame),
            ctx_in: Some(&ctx),
            repeat,
            attrs: TestRunAttrs::new().xdp_live_frames(spec.batch),
            ..TestRunOptions::new()
        })?;
        runs += u64::from(repeat);
        let took = t.elapsed().as_secs_f64().max(1e-6);
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_secs_f64();
        let per_frame = took / f64::from(repeat);
        let target = (0.25f64).min(left) / per_frame;
        repeat = target.clamp(64.0, 4_000_000.0) as u32;
    }
    Ok(GenReport {
        runs,
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> GenSpec {
        GenSpec {
            interface: "eth0".into(),
            object: PathBuf::from("gen.o"),
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
        assert_eq!(u16::from_be_bytes([f[16], f[17]]), 46, "IPv4 total length");
        assert_eq!(ipv4_checksum(&f[14..34]), 0, "header checksum verifies");
        assert_eq!(&f[26..30], &[198, 18, 1, 10]);
        assert_eq!(&f[30..34], &[198, 18, 0, 100]);
        assert_eq!(u16::from_be_bytes([f[34], f[35]]), 1024);
        assert_eq!(u16::from_be_bytes([f[36], f[37]]), 53);
        assert_eq!(u16::from_be_bytes([f[38], f[39]]), 26, "UDP length");
        let ip = rvs_wire::Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(f[20], 0x40, "DF");
        let udp = rvs_wire::UdpPacket::new_checked(&f[34..]).unwrap();
        let (src, dst) = (
            "198.18.1.10".parse().unwrap(),
            "198.18.0.100".parse().unwrap(),
        );
        assert!(udp.verify_checksum(&src, &dst));
        assert_ne!(u16::from_be_bytes([f[40], f[41]]), 0, "a real UDP checksum");
    }

    #[test]
    fn checks_reject_bad_ranges() {
        let mut s = spec();
        s.src_port = 65_000;
        s.port_count = 1000;
        assert!(check(&s).is_err());
        let mut s = spec();
        s.frame_len = 59;
        assert!(check(&s).is_err());
        let mut s = spec();
        s.batch = 0;
        assert!(check(&s).is_err());
        assert!(check(&spec()).is_ok());
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
