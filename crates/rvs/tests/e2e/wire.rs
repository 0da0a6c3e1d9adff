//! Packet captures on lab interfaces (an AF_PACKET socket opened inside the namespace) and
//! decoding with etherparse.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use etherparse::{Ethernet2Header, Ipv4Header, Ipv6Header, TcpHeader, UdpHeader};
use rvs_io::packet::{ETH_P_ALL, PacketSocket};

use super::traffic::spawn_in;

/// One captured frame and when the capture thread read it.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    pub(crate) at: Instant,
    pub(crate) data: Vec<u8>,
}

/// Every frame sent or received on one interface, until [`Capture::stop`].
pub(crate) struct Capture {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Vec<Captured>>>,
}

impl Capture {
    /// Starts capturing on `dev` in namespace `ns`; returns once the socket is open.
    pub(crate) fn start(ns: &str, dev: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (stop2, dev2, ns2) = (stop.clone(), dev.to_owned(), ns.to_owned());
        let handle = spawn_in(ns, move || {
            let sock = PacketSocket::open(&dev2, ETH_P_ALL)
                .unwrap_or_else(|e| panic!("packet socket on {dev2} in {ns2}: {e}"));
            // A bigger buffer than the default, so a briefly descheduled reader loses nothing.
            let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(4 << 20);
            tx.send(()).unwrap();
            let mut frames = Vec::new();
            let mut buf = vec![0u8; 65536];
            while !stop2.load(Ordering::SeqCst) {
                match sock.recv(&mut buf, Some(Duration::from_millis(20))) {
                    Ok(Some(n)) => frames.push(Captured {
                        at: Instant::now(),
                        data: buf[..n].to_vec(),
                    }),
                    Ok(None) => {}
                    Err(e) => panic!("capture on {dev2}: {e}"),
                }
            }
            // Whatever is still queued.
            while let Ok(Some(n)) = sock.recv(&mut buf, Some(Duration::ZERO)) {
                frames.push(Captured {
                    at: Instant::now(),
                    data: buf[..n].to_vec(),
                });
            }
            frames
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("capture did not start");
        Self {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops and returns the decoded frames.
    pub(crate) fn stop(mut self) -> Vec<Frame> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .unwrap()
            .join()
            .unwrap()
            .into_iter()
            .map(|c| Frame::decode(c.at, &c.data))
            .collect()
    }
}

impl Drop for Capture {
    /// A capture abandoned by a failing check stops too.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// An IP header as etherparse decodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IpHeader {
    V4(Ipv4Header),
    V6(Ipv6Header),
}

/// An IP packet: header and exactly the payload its length fields announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IpPacket {
    pub(crate) header: IpHeader,
    pub(crate) payload: Vec<u8>,
}

impl IpPacket {
    /// Decodes an IPv4 or IPv6 packet (no IPv6 extension headers in the lab).
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        match bytes.first()? >> 4 {
            4 => {
                let (h, rest) = Ipv4Header::from_slice(bytes).ok()?;
                let len = usize::from(h.total_len).checked_sub(h.header_len())?;
                Some(Self {
                    payload: rest.get(..len)?.to_vec(),
                    header: IpHeader::V4(h),
                })
            }
            6 => {
                let (h, rest) = Ipv6Header::from_slice(bytes).ok()?;
                Some(Self {
                    payload: rest.get(..usize::from(h.payload_length))?.to_vec(),
                    header: IpHeader::V6(h),
                })
            }
            _ => None,
        }
    }

    pub(crate) fn src(&self) -> IpAddr {
        match &self.header {
            IpHeader::V4(h) => Ipv4Addr::from(h.source).into(),
            IpHeader::V6(h) => Ipv6Addr::from(h.source).into(),
        }
    }

    pub(crate) fn dst(&self) -> IpAddr {
        match &self.header {
            IpHeader::V4(h) => Ipv4Addr::from(h.destination).into(),
            IpHeader::V6(h) => Ipv6Addr::from(h.destination).into(),
        }
    }

    /// Protocol / next header.
    pub(crate) fn proto(&self) -> u8 {
        match &self.header {
            IpHeader::V4(h) => h.protocol.0,
            IpHeader::V6(h) => h.next_header.0,
        }
    }

    /// TTL / hop limit.
    pub(crate) fn ttl(&self) -> u8 {
        match &self.header {
            IpHeader::V4(h) => h.time_to_live,
            IpHeader::V6(h) => h.hop_limit,
        }
    }

    /// Whether an IPv4 header checksum is right (always true for IPv6, which has none).
    pub(crate) fn checksum_ok(&self) -> bool {
        match &self.header {
            IpHeader::V4(h) => h.header_checksum == h.calc_header_checksum(),
            IpHeader::V6(_) => true,
        }
    }

    /// The encapsulated packet of an IPIP (4) or IPv6-in-IP (41) packet.
    pub(crate) fn inner(&self) -> Option<IpPacket> {
        matches!(self.proto(), 4 | 41)
            .then(|| Self::decode(&self.payload))
            .flatten()
    }

    /// TCP or UDP `(source port, destination port)`.
    pub(crate) fn ports(&self) -> Option<(u16, u16)> {
        match self.proto() {
            6 => TcpHeader::from_slice(&self.payload)
                .ok()
                .map(|(t, _)| (t.source_port, t.destination_port)),
            17 => UdpHeader::from_slice(&self.payload)
                .ok()
                .map(|(u, _)| (u.source_port, u.destination_port)),
            _ => None,
        }
    }

    /// Whether this is a TCP segment with RST set.
    pub(crate) fn is_tcp_reset(&self) -> bool {
        self.proto() == 6 && TcpHeader::from_slice(&self.payload).is_ok_and(|(t, _)| t.rst)
    }

    /// This packet with the TTL/hop limit set to `ttl` and (IPv4) the header checksum
    /// recomputed: what the packet must look like after a router-like hop.
    pub(crate) fn with_ttl(&self, ttl: u8) -> IpPacket {
        let mut p = self.clone();
        match &mut p.header {
            IpHeader::V4(h) => {
                h.time_to_live = ttl;
                h.header_checksum = h.calc_header_checksum();
            }
            IpHeader::V6(h) => h.hop_limit = ttl,
        }
        p
    }

    /// The innermost packet (decapsulating IPIP / IPv6-in-IP).
    pub(crate) fn innermost(&self) -> IpPacket {
        self.inner().map_or_else(|| self.clone(), |i| i.innermost())
    }
}

/// A decoded Ethernet frame.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub(crate) at: Instant,
    pub(crate) src_mac: [u8; 6],
    pub(crate) dst_mac: [u8; 6],
    /// The IP packet, for IPv4 and IPv6 frames.
    pub(crate) ip: Option<IpPacket>,
}

impl Frame {
    pub(crate) fn decode(at: Instant, data: &[u8]) -> Self {
        match Ethernet2Header::from_slice(data) {
            Ok((eth, rest)) => {
                let ip = matches!(eth.ether_type.0, 0x0800 | 0x86dd)
                    .then(|| IpPacket::decode(rest))
                    .flatten();
                Self {
                    at,
                    src_mac: eth.source,
                    dst_mac: eth.destination,
                    ip,
                }
            }
            Err(_) => Self {
                at,
                src_mac: [0; 6],
                dst_mac: [0; 6],
                ip: None,
            },
        }
    }

    /// Whether the (innermost) packet is TCP/UDP with `port` on either side and `service` on
    /// the other: one flow of one client socket.
    pub(crate) fn is_flow(&self, port: u16, service: u16) -> bool {
        self.ip
            .as_ref()
            .and_then(|ip| ip.innermost().ports())
            .is_some_and(|(s, d)| (s == port && d == service) || (s == service && d == port))
    }
}
