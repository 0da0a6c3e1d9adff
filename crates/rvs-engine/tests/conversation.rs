//! Whole conversations per forward method: the IPVS state machine, active/inactive counts,
//! timers and counters observed through `ListConns` / `GetService` after every packet.

use std::net::SocketAddr;
use std::time::Duration;

use rvs_api::{ConnEntry, ForwardMethod, ServiceKey, Stats};
use rvs_engine::Verdict;

use crate::util::*;

const SEC: Duration = Duration::from_secs(1);

/// One client's flow through a one-real-server service.
struct Conv {
    lab: Lab,
    key: ServiceKey,
    method: ForwardMethod,
    client: SocketAddr,
    vip: SocketAddr,
    rip: SocketAddr,
    udp: bool,
    /// Expected counters, accumulated by the test from the datagrams it sends.
    want: Stats,
}

impl Conv {
    fn new(method: ForwardMethod, v6: bool, udp: bool) -> Self {
        let mut lab = Lab::new();
        let vport = if udp { 53 } else { 80 };
        let rport = if method == ForwardMethod::Masq {
            8000 + vport
        } else {
            vport
        };
        let key = if udp {
            udp_key(vip(v6), vport)
        } else {
            tcp_key(vip(v6), vport)
        };
        lab.add_service(key, "wlc", |_| {});
        lab.add_dest(key, rip(v6, 0), rport, method, 1);
        Self {
            lab,
            key,
            method,
            client: SocketAddr::new(client(v6, 1), 41_000),
            vip: SocketAddr::new(vip(v6), vport),
            rip: SocketAddr::new(rip(v6, 0), rport),
            udp,
            want: Stats {
                conns: 1,
                ..Stats::default()
            },
        }
    }

    fn l4(&self, flags: u8) -> L4 {
        if self.udp { L4::Udp } else { tcp_flags(flags) }
    }

    /// Client → VIP; must be forwarded to the real server.
    fn inb(&mut self, flags: u8, data: &[u8]) {
        let f = from_client(self.client, self.vip, self.l4(flags), data);
        let out = self.lab.run(self.lab.ext, &f);
        assert_eq!(
            out.verdict,
            Verdict::Transmit(self.lab.int),
            "inbound flags {flags:#x}"
        );
        self.want.inpkts += 1;
        self.want.inbytes += (f.len() - 14) as u64;
    }

    /// Real server → client (NAT reply); must be forwarded to the client.
    fn outb(&mut self, flags: u8, data: &[u8]) {
        let f = from_server(0, self.rip, self.client, self.l4(flags), data);
        let out = self.lab.run(self.lab.int, &f);
        assert_eq!(
            out.verdict,
            Verdict::Transmit(self.lab.ext),
            "outbound flags {flags:#x}"
        );
        self.want.outpkts += 1;
        self.want.outbytes += (f.len() - 14) as u64;
    }

    /// The only connection entry.
    fn conn(&mut self) -> ConnEntry {
        let mut v = self.lab.conns();
        assert_eq!(v.len(), 1, "{v:?}");
        v.remove(0)
    }

    /// Asserts state, timer (seconds), active/inactive counts and the flags of the entry.
    fn check(&mut self, state: &str, timeout_s: u64, active: bool) {
        let c = self.conn();
        assert_eq!(c.state, state);
        assert!(
            c.expires_ms <= timeout_s * 1000 && c.expires_ms + 10 >= timeout_s * 1000,
            "{state}: expires in {} ms, want {timeout_s} s",
            c.expires_ms
        );
        assert_eq!((c.caddr, c.cport), (self.client.ip(), self.client.port()));
        assert_eq!((c.vaddr, c.vport), (self.vip.ip(), self.vip.port()));
        assert_eq!((c.daddr, c.dport), (self.rip.ip(), self.rip.port()));
        let noout = if self.method == ForwardMethod::Masq {
            0
        } else {
            0x80
        };
        let inactive = if active { 0 } else { 0x100 };
        assert_eq!(
            c.flags,
            inactive | noout | self.method.code(),
            "{state}: conn flags"
        );
        let counts = self.lab.counts(self.key, self.rip.ip());
        assert_eq!(
            counts,
            if active { (1, 0) } else { (0, 1) },
            "{state}: active/inactive"
        );
        self.check_stats();
    }

    fn check_stats(&mut self) {
        let svc = self.lab.service(self.key);
        assert_eq!(svc.stats, self.want, "service counters");
        assert_eq!(svc.dests[0].stats, self.want, "real-server counters");
        assert_eq!(
            self.lab.engine.global_stats().0,
            self.want,
            "global counters"
        );
    }

    /// Advances `secs` and asserts the entry is still there; then advances past its expiry
    /// and asserts it is gone and the counts are back to zero.
    fn expires_after(&mut self, secs: u64) {
        self.lab.advance(Duration::from_secs(secs) - SEC);
        assert_eq!(self.lab.conns().len(), 1, "gone before its timeout");
        self.lab.advance(SEC + Duration::from_millis(10));
        assert!(self.lab.conns().is_empty(), "not expired after {secs} s");
        assert_eq!(self.lab.engine.conn_count(), (0, 0));
        assert_eq!(self.lab.counts(self.key, self.rip.ip()), (0, 0));
        // Counters survive the connection.
        self.check_stats();
    }
}

fn nat_tcp(v6: bool) {
    let mut c = Conv::new(ForwardMethod::Masq, v6, false);
    c.inb(TH_SYN, b"");
    c.check("SYN_RECV", 60, true);
    c.lab.advance(SEC);
    c.outb(TH_SYN | TH_ACK, b"");
    c.check("SYN_RECV", 60, true);
    c.lab.advance(SEC);
    c.inb(TH_ACK, b"");
    c.check("ESTABLISHED", 900, true);
    c.lab.advance(10 * SEC);
    c.inb(
        TH_PSH | TH_ACK,
        b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    c.check("ESTABLISHED", 900, true);
    c.outb(TH_PSH | TH_ACK, &[b'x'; 700]);
    c.check("ESTABLISHED", 900, true);
    c.outb(TH_PSH | TH_ACK, &[b'y'; 1200]);
    c.inb(TH_ACK, b"");
    // The client closes first: IN fin ES → CLOSE_WAIT, then the server's FIN → TIME_WAIT.
    c.inb(TH_FIN | TH_ACK, b"");
    c.check("CLOSE_WAIT", 60, false);
    c.outb(TH_FIN | TH_ACK, b"");
    c.check("TIME_WAIT", 120, false);
    c.lab.advance(30 * SEC);
    c.inb(TH_ACK, b"");
    c.check("TIME_WAIT", 120, false);
    c.expires_after(120);
}

#[test]
fn nat_tcp_conversation_v4() {
    nat_tcp(false);
}

#[test]
fn nat_tcp_conversation_v6() {
    nat_tcp(true);
}

fn input_only_tcp(method: ForwardMethod, v6: bool) {
    let mut c = Conv::new(method, v6, false);
    c.inb(TH_SYN, b"");
    c.check("SYN_RECV", 60, true);
    c.lab.advance(SEC);
    c.inb(TH_ACK, b"");
    c.check("ESTABLISHED", 900, true);
    c.inb(TH_PSH | TH_ACK, &[7u8; 1000]);
    c.check("ESTABLISHED", 900, true);
    c.lab.advance(100 * SEC);
    c.inb(TH_FIN | TH_ACK, b"");
    c.check("FIN_WAIT", 120, false);
    c.lab.advance(5 * SEC);
    c.inb(TH_ACK, b"");
    c.check("FIN_WAIT", 120, false);
    c.inb(TH_RST, b"");
    c.check("CLOSE", 10, false);
    // Replies bypass the director.
    assert_eq!(c.want.outpkts, 0);
    c.expires_after(10);
}

#[test]
fn dr_tcp_conversation_v4() {
    input_only_tcp(ForwardMethod::Route, false);
}

#[test]
fn dr_tcp_conversation_v6() {
    input_only_tcp(ForwardMethod::Route, true);
}

#[test]
fn tun_tcp_conversation_v4() {
    input_only_tcp(ForwardMethod::Tunnel, false);
}

#[test]
fn tun_tcp_conversation_v6() {
    input_only_tcp(ForwardMethod::Tunnel, true);
}

fn udp(method: ForwardMethod, v6: bool) {
    let mut c = Conv::new(method, v6, true);
    c.inb(0, b"question");
    c.check("UDP", 300, false);
    c.lab.advance(200 * SEC);
    c.check("UDP", 100, false);
    if method == ForwardMethod::Masq {
        c.outb(0, b"answer");
    } else {
        c.inb(0, b"again");
    }
    // Every packet, in either direction, restarts the 300 s timer; UDP is never active.
    c.check("UDP", 300, false);
    c.lab.advance(250 * SEC);
    c.inb(0, b"third");
    c.check("UDP", 300, false);
    c.expires_after(300);
}

#[test]
fn nat_udp_v4() {
    udp(ForwardMethod::Masq, false);
}

#[test]
fn nat_udp_v6() {
    udp(ForwardMethod::Masq, true);
}

#[test]
fn dr_udp_v4() {
    udp(ForwardMethod::Route, false);
}

#[test]
fn tun_udp_v6() {
    udp(ForwardMethod::Tunnel, true);
}

/// A segment with none of SYN/FIN/ACK/RST forces CLOSE (kernel quirk, spec §4.3).
#[test]
fn flagless_segment_closes() {
    let mut c = Conv::new(ForwardMethod::Masq, false, false);
    c.inb(TH_SYN, b"");
    c.inb(TH_ACK, b"");
    c.check("ESTABLISHED", 900, true);
    c.inb(TH_PSH, b"data");
    c.check("CLOSE", 10, false);
}

/// Many connections, each accounted for exactly once: counts match the entries.
#[test]
fn counts_match_entries() {
    let mut lab = Lab::new();
    let key = tcp_key(vip4(), 80);
    lab.add_service(key, "rr", |_| {});
    for i in 0..3 {
        lab.add_dest(key, rip(false, i), 80, ForwardMethod::Route, 1);
    }
    for n in 0..90u32 {
        let cl = SocketAddr::new(client(false, n), 1024 + n as u16);
        let v = SocketAddr::new(vip4(), 80);
        assert!(matches!(
            lab.run(lab.ext, &from_client(cl, v, tcp_flags(TH_SYN), b""))
                .verdict,
            Verdict::Transmit(_)
        ));
        if n % 3 == 0 {
            lab.run(lab.ext, &from_client(cl, v, tcp_flags(TH_ACK), b""));
            lab.run(
                lab.ext,
                &from_client(cl, v, tcp_flags(TH_FIN | TH_ACK), b""),
            );
        }
    }
    let conns = lab.flows();
    assert_eq!(conns.len(), 90);
    for i in 0..3 {
        let addr = rip(false, i);
        let (a, ina) = lab.counts(key, addr);
        let mine: Vec<_> = conns.iter().filter(|c| c.daddr == addr).collect();
        let active = mine.iter().filter(|c| c.state == "SYN_RECV").count() as u32;
        let inactive = mine.iter().filter(|c| c.state == "FIN_WAIT").count() as u32;
        assert_eq!((a, ina), (active, inactive), "dest {addr}");
        assert_eq!(a + ina, 30, "rr spreads evenly");
    }
    // SYN_RECV entries go after 60 s, FIN_WAIT ones after 120 s.
    lab.advance(Duration::from_secs(61));
    assert_eq!(lab.flows().len(), 30);
    lab.advance(Duration::from_secs(60));
    assert!(lab.flows().is_empty());
}
