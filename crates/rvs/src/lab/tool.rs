//! Probes the lab runs *inside* its namespaces (`ip netns exec <ns> rvs lab tool …`), so they
//! need nothing but the rvs binary: TCP reachability, ARP/ND answer capture, UDP queries and
//! hand-made IPIP / IP6IP6 packets.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::LabError;

/// Attaches an XDP_PASS program to every interface in `ifaces` and holds them until the process
/// is killed (the programs detach with it).
pub fn hold_xdp_pass(ifaces: &[String]) -> Result<(), LabError> {
    let mut held = Vec::new();
    for i in ifaces {
        let p = rvs_io::xdp::XdpPass::attach(i)
            .map_err(|e| LabError::Director(format!("XDP_PASS on {i}: {e}")))?;
        held.push(p);
    }
    println!("holding XDP_PASS on {}", ifaces.join(" "));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Whether `addr:port` answers a TCP SYN at all: a connection *or* a refusal (RST) proves the host
/// is reachable; only silence (timeout, unreachable) counts as failure.
pub fn reach(addr: IpAddr, port: u16, timeout: Duration) -> bool {
    match TcpStream::connect_timeout(&SocketAddr::new(addr, port), timeout) {
        Ok(_) => true,
        Err(e) => e.kind() == io::ErrorKind::ConnectionRefused,
    }
}

/// What a neighbour probe saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighProbe {
    /// Requests for the target this host sent (ARP requests / Neighbour Solicitations); zero
    /// means the probe did not happen and proves nothing.
    pub requests: u32,
    /// MAC addresses that answered for the target, with the number of answers each.
    pub answers: BTreeMap<String, u32>,
}

const ETH_HDR: usize = 14;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETH_P_ALL: u16 = 0x0003;
const IPPROTO_ICMPV6: u8 = 58;
const ND_NEIGHBOR_SOLICIT: u8 = 135;
const ND_NEIGHBOR_ADVERT: u8 = 136;

fn mac(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Classifies one Ethernet frame: `Some((true, _))` a request for `target`, `Some((false, mac))`
/// an answer for `target` from `mac`.
fn classify(frame: &[u8], target: IpAddr) -> Option<(bool, String)> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    match (ethertype, target) {
        (ETHERTYPE_ARP, IpAddr::V4(t)) => {
            let arp = frame.get(ETH_HDR..ETH_HDR + 28)?;
            let op = u16::from_be_bytes([arp[6], arp[7]]);
            let sha = &arp[8..14];
            let spa = Ipv4Addr::new(arp[14], arp[15], arp[16], arp[17]);
            let tpa = Ipv4Addr::new(arp[24], arp[25], arp[26], arp[27]);
            match op {
                1 if tpa == t && spa != t => Some((true, String::new())),
                // A reply, or a gratuitous request announcing the target.
                2 if spa == t => Some((false, mac(sha))),
                1 if spa == t && tpa == t => Some((false, mac(sha))),
                _ => None,
            }
        }
        (ETHERTYPE_IPV6, IpAddr::V6(t)) => {
            let ip = frame.get(ETH_HDR..)?;
            if *ip.get(6)? != IPPROTO_ICMPV6 {
                return None;
            }
            let icmp = ip.get(40..64)?;
            let target: [u8; 16] = icmp[8..24].try_into().ok()?;
            if Ipv6Addr::from(target) != t {
                return None;
            }
            match icmp[0] {
                ND_NEIGHBOR_SOLICIT => Some((true, String::new())),
                ND_NEIGHBOR_ADVERT => Some((false, mac(&frame[6..12]))),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Makes this host resolve `target` (flushes its neighbour entry, sends a UDP datagram to
/// port 9) and records, for `watch`, every ARP reply / Neighbour Advertisement for it on any
/// interface. Needs root (a packet socket).
pub fn neigh_probe(target: IpAddr, watch: Duration) -> Result<NeighProbe, LabError> {
    let sock = Socket::new(
        Domain::PACKET,
        Type::RAW,
        Some(Protocol::from(i32::from(ETH_P_ALL.to_be()))),
    )
    .map_err(|e| LabError::io("open packet socket", e))?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| LabError::io("packet socket timeout", e))?;
    let family = if target.is_ipv4() { "-4" } else { "-6" };
    // Forget any cached answer so the kernel asks again. Failure only means there was none.
    let _ = Command::new("ip")
        .args([family, "neigh", "flush", "to", &target.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let bind: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(|_| LabError::Tool("bad bind address".into()))?;
    let trigger = UdpSocket::bind(bind).map_err(|e| LabError::io("bind UDP trigger", e))?;
    let mut probe = NeighProbe::default();
    let mut buf = [0u8; 2048];
    let start = Instant::now();
    let mut sent = false;
    while start.elapsed() < watch {
        if !sent {
            trigger
                .send_to(b"rvs lab neighbour probe", SocketAddr::new(target, 9))
                .map_err(|e| LabError::io(format!("send to {target}"), e))?;
            sent = true;
        }
        match (&sock).read(&mut buf) {
            Ok(n) => match classify(&buf[..n], target) {
                Some((true, _)) => probe.requests += 1,
                Some((false, m)) => *probe.answers.entry(m).or_default() += 1,
                None => {}
            },
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(LabError::io("read packet socket", e)),
        }
    }
    Ok(probe)
}

/// Sends `count` datagrams `probe <i>` to `server` (from `bind`, or any address) and returns the
/// replies received, in order, each within `timeout`.
pub fn udp_query(
    server: SocketAddr,
    bind: Option<IpAddr>,
    count: u32,
    timeout: Duration,
) -> Result<Vec<String>, LabError> {
    let local = match bind {
        Some(ip) => SocketAddr::new(ip, 0),
        None if server.is_ipv4() => SocketAddr::from(([0, 0, 0, 0], 0)),
        None => SocketAddr::from(([0u16; 8], 0)),
    };
    let sock = UdpSocket::bind(local).map_err(|e| LabError::io(format!("bind {local}"), e))?;
    // connect() makes the kernel drop replies from any other source (e.g. a DR real server
    // answering from its RIP instead of the VIP), which is what a real client does.
    sock.connect(server)
        .map_err(|e| LabError::io(format!("connect {server}"), e))?;
    sock.set_read_timeout(Some(timeout))
        .map_err(|e| LabError::io("set timeout", e))?;
    let mut replies = Vec::new();
    let mut buf = [0u8; 2048];
    for i in 0..count {
        sock.send(format!("probe {i}").as_bytes())
            .map_err(|e| LabError::io(format!("send to {server}"), e))?;
        match sock.recv(&mut buf) {
            Ok(n) => replies.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(LabError::io(format!("receive from {server}"), e)),
        }
    }
    Ok(replies)
}

/// RFC 1071 one's-complement sum of `data` added to `sum`.
fn sum16(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 or IPv6 packet `src:sport → dst:dport` carrying UDP `payload`, checksums complete.
pub fn udp_packet(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let udp_len = u16::try_from(8 + payload.len()).ok()?;
    let mut udp = Vec::with_capacity(usize::from(udp_len));
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut pseudo = sum16(0, &s.octets());
            pseudo = sum16(pseudo, &d.octets());
            pseudo += 17 + u32::from(udp_len);
            let c = fold(sum16(pseudo, &udp));
            udp[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
            let total = 20u16.checked_add(udp_len)?;
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&total.to_be_bytes());
            ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            let c = fold(sum16(0, &ip));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            ip.extend_from_slice(&udp);
            Some(ip)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut pseudo = sum16(0, &s.octets());
            pseudo = sum16(pseudo, &d.octets());
            pseudo += 17 + u32::from(udp_len);
            let c = fold(sum16(pseudo, &udp));
            udp[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
            let mut ip = vec![0x60, 0, 0, 0];
            ip.extend_from_slice(&udp_len.to_be_bytes());
            ip.extend_from_slice(&[17, 64]);
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            ip.extend_from_slice(&udp);
            Some(ip)
        }
        _ => None,
    }
}

/// Plays the TUN director by hand: sends a UDP datagram `src → vip:port` encapsulated in IPIP
/// (IPv4 `rip`) or IPv6-in-IPv6 (IPv6 `rip`) to `rip`, and returns the reply the real server
/// sends straight back to `src` (which must be an address of this host). Tries three times.
pub fn tun_probe(
    rip: IpAddr,
    vip: IpAddr,
    src: IpAddr,
    port: u16,
    payload: &str,
    timeout: Duration,
) -> Result<Option<String>, LabError> {
    let reply_sock = UdpSocket::bind(SocketAddr::new(src, 0))
        .map_err(|e| LabError::io(format!("bind {src}"), e))?;
    reply_sock
        .set_read_timeout(Some(timeout))
        .map_err(|e| LabError::io("set timeout", e))?;
    let sport = reply_sock
        .local_addr()
        .map_err(|e| LabError::io("local address", e))?
        .port();
    let inner = udp_packet(src, vip, sport, port, payload.as_bytes())
        .ok_or_else(|| LabError::Tool("inner source and VIP must be of one family".into()))?;
    let (domain, outer_proto) = match (rip, vip) {
        (IpAddr::V4(_), IpAddr::V4(_)) => (Domain::IPV4, 4), // IPPROTO_IPIP
        (IpAddr::V6(_), IpAddr::V6(_)) => (Domain::IPV6, 41), // IPPROTO_IPV6
        _ => return Err(LabError::Tool("mixed-family tunnels are not probed".into())),
    };
    let raw = Socket::new(domain, Type::RAW, Some(Protocol::from(outer_proto)))
        .map_err(|e| LabError::io("open raw tunnel socket", e))?;
    let mut buf = [0u8; 2048];
    for _ in 0..3 {
        raw.send_to(&inner, &SockAddr::from(SocketAddr::new(rip, 0)))
            .map_err(|e| LabError::io(format!("send encapsulated packet to {rip}"), e))?;
        match reply_sock.recv_from(&mut buf) {
            Ok((n, from)) if from.ip() == vip => {
                return Ok(Some(String::from_utf8_lossy(&buf[..n]).into_owned()));
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(LabError::io("receive tunnel reply", e)),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_checksums_verify() {
        let p = udp_packet(
            "198.18.0.1".parse().unwrap(),
            "198.18.0.100".parse().unwrap(),
            4000,
            53,
            b"hi!",
        )
        .unwrap();
        assert_eq!(p.len(), 20 + 8 + 3);
        assert_eq!(fold(sum16(0, &p[..20])), 0, "IPv4 header checksum");
        let mut pseudo = sum16(sum16(0, &p[12..16]), &p[16..20]);
        pseudo += 17 + 11;
        assert_eq!(fold(sum16(pseudo, &p[20..])), 0, "UDP checksum");

        let p = udp_packet(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::100".parse().unwrap(),
            4000,
            53,
            b"hi",
        )
        .unwrap();
        assert_eq!(p.len(), 40 + 10);
        let mut pseudo = sum16(sum16(0, &p[8..24]), &p[24..40]);
        pseudo += 17 + 10;
        assert_eq!(fold(sum16(pseudo, &p[40..])), 0, "UDP/IPv6 checksum");
        assert!(
            udp_packet(
                "198.18.0.1".parse().unwrap(),
                "2001:db8::1".parse().unwrap(),
                1,
                2,
                b""
            )
            .is_none()
        );
    }

    #[test]
    fn classifies_arp_and_nd() {
        let vip: IpAddr = "198.18.0.100".parse().unwrap();
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
        arp.extend_from_slice(&[2, 0, 0, 0, 0, 0xaa]);
        arp.extend_from_slice(&[198, 18, 0, 100]);
        arp.extend_from_slice(&[0; 6]);
        arp.extend_from_slice(&[198, 18, 0, 1]);
        assert_eq!(
            classify(&arp, vip),
            Some((false, "02:00:00:00:00:aa".into()))
        );
        arp[21] = 1; // request from the VIP to 198.18.0.1: not about resolving the VIP
        assert_eq!(classify(&arp, vip), None);
        arp[28..32].copy_from_slice(&[198, 18, 0, 1]);
        arp[38..42].copy_from_slice(&[198, 18, 0, 100]);
        assert_eq!(classify(&arp, vip), Some((true, String::new())));

        let vip6: IpAddr = "2001:db8::100".parse().unwrap();
        let mut na = vec![0x33, 0x33, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0xbb, 0x86, 0xdd];
        na.extend_from_slice(&[0x60, 0, 0, 0, 0, 24, 58, 255]);
        na.extend_from_slice(&[0; 32]);
        na.extend_from_slice(&[136, 0, 0, 0, 0x60, 0, 0, 0]);
        na.extend_from_slice(&"2001:db8::100".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(
            classify(&na, vip6),
            Some((false, "02:00:00:00:00:bb".into()))
        );
        na[54] = 135;
        assert_eq!(classify(&na, vip6), Some((true, String::new())));
        assert_eq!(classify(&na, vip), None);
    }
}
