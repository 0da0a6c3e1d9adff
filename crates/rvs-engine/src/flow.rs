//! The per-packet path for TCP, UDP and SCTP: connection lookup in both directions, the rules
//! for opening a connection, scheduling (plain and persistent), the state machine and counters.
//! What happens to the bytes afterwards is in `xmit.rs`.

use rvs_api::{ForwardMethod, ServiceKey};
use rvs_wire::PacketBuf;

use crate::conn::{Conn, ConnIdx, InKey, NIL, OutKey, TICK_MS, flags};
use crate::dest::{DestId, DestList, ServiceId};
use crate::engine::{DropReason, Engine, Family, INITIAL_TIMEOUT_MS, Verdict};
use crate::l2::IfaceId;
use crate::sched::SchedInput;
use crate::state::{
    Direction, SctpEvent, sctp, sctp_transition, tcp, tcp_is_active, tcp_transition,
};
use crate::xmit::XmitDest;

pub(crate) const IPPROTO_TCP: u8 = 6;
pub(crate) const IPPROTO_UDP: u8 = 17;
pub(crate) const IPPROTO_SCTP: u8 = 132;

const TH_FIN: u8 = 0x01;
const TH_SYN: u8 = 0x02;
const TH_RST: u8 = 0x04;
const TH_ACK: u8 = 0x10;

/// The fields of one TCP/UDP/SCTP packet the flow logic needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flow<A> {
    pub proto: u8,
    pub saddr: A,
    pub daddr: A,
    pub sport: u16,
    pub dport: u16,
    /// TCP flags byte (0 for other protocols).
    pub tcp_flags: u8,
    /// SCTP event of the packet (Data for other protocols).
    pub sctp_event: SctpEvent,
    /// IP datagram length (what the counters count).
    pub ip_len: usize,
    /// Offset of the IP header in the frame.
    pub l3: usize,
    /// Offset of the transport header in the frame.
    pub l4: usize,
    /// Interface the packet arrived on (ICMP errors go back there).
    pub ingress: IfaceId,
}

impl<A: Copy> Flow<A> {
    /// The in-index key of a client → VIP packet of this flow.
    #[inline]
    pub(crate) fn in_key(&self) -> InKey<A> {
        InKey {
            proto: self.proto,
            caddr: self.saddr,
            cport: self.sport,
            vaddr: self.daddr,
            vport: self.dport,
        }
    }
}

impl<A> Flow<A> {
    /// `th->syn && !th->ack && !th->fin && !th->rst` — a packet that may open a new connection
    /// in IPVS's `is_new_conn` sense (SCTP: an INIT).
    #[inline]
    fn is_new_conn(&self) -> bool {
        match self.proto {
            IPPROTO_TCP => self.tcp_flags & (TH_SYN | TH_ACK | TH_FIN | TH_RST) == TH_SYN,
            IPPROTO_SCTP => self.sctp_event == SctpEvent::Init,
            _ => false,
        }
    }
}

enum InCheck {
    Use,
    Drop(DropReason),
    Reschedule,
}

impl Engine {
    /// Handles a TCP/UDP/SCTP packet. `mark` is the packet's firewall mark (0 if none).
    pub(crate) fn handle_flow<A: Family>(
        &mut self,
        ingress: IfaceId,
        mark: u32,
        pkt: &mut PacketBuf<'_>,
        f: &Flow<A>,
    ) -> Verdict {
        let found = A::conns(self).lookup_in(&f.in_key());
        self.handle_flow_found(ingress, mark, pkt, f, found)
    }

    /// [`Engine::handle_flow`] for a flow prepared earlier (by [`Engine::process_batch`]):
    /// `in_hash` is its key's [`crate::conn::ConnTable::in_hash`], and `found`, if known, the
    /// result of its in-index lookup with the table unchanged since.
    #[inline(never)]
    pub(crate) fn handle_flow_prepared<A: Family>(
        &mut self,
        ingress: IfaceId,
        pkt: &mut PacketBuf<'_>,
        f: &Flow<A>,
        in_hash: u64,
        found: Option<Option<ConnIdx>>,
    ) -> Verdict {
        let found = found.unwrap_or_else(|| A::conns(self).lookup_in_hashed(&f.in_key(), in_hash));
        self.handle_flow_found(ingress, 0, pkt, f, found)
    }

    /// [`Engine::handle_flow`] with the result of the flow's in-index lookup done earlier
    /// (with the table unchanged since).
    #[inline(always)]
    pub(crate) fn handle_flow_found<A: Family>(
        &mut self,
        ingress: IfaceId,
        mark: u32,
        pkt: &mut PacketBuf<'_>,
        f: &Flow<A>,
        found: Option<ConnIdx>,
    ) -> Verdict {
        if let Some(idx) = found {
            if let Some(v) = self.forward_established::<A>(idx, pkt, f) {
                return v;
            }
            match self.check_in::<A>(idx, f) {
                InCheck::Use => return self.forward_in::<A>(idx, pkt, f),
                InCheck::Drop(r) => return self.drop(r),
                InCheck::Reschedule => {}
            }
        }
        let ok = OutKey {
            proto: f.proto,
            daddr: f.saddr,
            dport: f.sport,
            caddr: f.daddr,
            cport: f.dport,
        };
        if let Some(idx) = A::conns(self).lookup_out(&ok) {
            if !A::conns(self).get(idx).expired(self.tick) {
                return self.forward_out::<A>(idx, pkt, f);
            }
            self.expire_conn::<A>(idx);
        }
        self.new_conn::<A>(ingress, mark, pkt, f)
    }

    /// The most common packet of all, handled in place: a TCP ACK (no SYN/FIN/RST) of a live
    /// ESTABLISHED connection whose real server is available and has a cached next hop, by
    /// direct routing, or by NAT or IPIP of an IPv4 flow to an IPv4 real server. Exactly
    /// what `check_in` + `forward_in` do for it (no state change, timer re-armed, counters,
    /// transmit, fast-path export) without copying the entry or going through the generic
    /// plumbing. `None` (before any side effect) for every other packet.
    #[inline(always)]
    fn forward_established<A: Family>(
        &mut self,
        idx: ConnIdx,
        pkt: &mut PacketBuf<'_>,
        f: &Flow<A>,
    ) -> Option<Verdict> {
        enum Plan {
            Route,
            Nat4(std::net::Ipv4Addr),
            Tun4(std::net::Ipv4Addr, std::net::Ipv4Addr),
        }
        if f.proto != IPPROTO_TCP || f.tcp_flags & 0x17 != TH_ACK {
            return None;
        }
        #[cfg(test)]
        if tests::NO_SHORTCUT.with(std::cell::Cell::get) {
            return None;
        }
        let tick = self.tick;
        let c = A::conns(self).get(idx);
        if c.state != tcp::ESTABLISHED || c.expired(tick) {
            return None;
        }
        let (dest, dport) = (c.dest, c.dport);
        let generation = self.l2.generation();
        let d = self.dests.get_mut(dest)?;
        let Some((g, nh, hop)) = &d.next_hop else {
            return None;
        };
        if !d.available || *g != generation {
            return None;
        }
        let hop = *hop;
        let plan = match (d.spec.fwd_method, d.addr, nh.src_ip) {
            (ForwardMethod::Route, _, _) => Plan::Route,
            (ForwardMethod::Masq, std::net::IpAddr::V4(rip), _) if A::BITS == 32 => Plan::Nat4(rip),
            (ForwardMethod::Tunnel, std::net::IpAddr::V4(rip), Some(std::net::IpAddr::V4(src)))
                if A::BITS == 32 =>
            {
                Plan::Tun4(src, rip)
            }
            _ => return None,
        };
        // Committed: from here on this is forward_in's work, in its order.
        d.stats.inbound(f.ip_len);
        if let Some(s) = self.services.get_mut(d.service) {
            s.stats.inbound(f.ip_len);
        }
        self.stats.inbound(f.ip_len);
        let timeout_s = self.timeouts.tcp[tcp::ESTABLISHED as usize];
        let expires = tick.wrapping_add((u64::from(timeout_s) * 1000 / TICK_MS) as u32);
        let e = A::conns_mut(self).get_mut(idx);
        e.expires = expires;
        e.aux = e.aux.wrapping_add(1);
        let fast = e.flags & flags::FAST != 0;
        let verdict = match plan {
            Plan::Route => self.xmit_route::<A>(hop, pkt, f),
            Plan::Nat4(rip) => self.xmit_nat4::<A>(dport, hop, rip, pkt, f),
            Plan::Tun4(src, rip) => self.xmit_tun4::<A>(hop, src, rip, pkt, f),
        };
        if self.fast_path && !fast && matches!(verdict, Verdict::Transmit(_)) {
            let mut c = *A::conns(self).get(idx);
            self.fast_export(&mut c);
            *A::conns_mut(self).get_mut(idx) = c;
        }
        Some(verdict)
    }

    /// Decides whether an existing client-side entry carries this packet (spec §4.6).
    #[inline(always)]
    fn check_in<A: Family>(&mut self, idx: ConnIdx, f: &Flow<A>) -> InCheck {
        // The common case, decided without touching anything: a live entry, a packet that
        // cannot open a connection (so neither reuse rule applies) and a real server that is
        // still configured.
        let c = A::conns(self).get(idx);
        if !c.expired(self.tick)
            && !f.is_new_conn()
            && self.dests.get(c.dest).is_some_and(|d| d.available)
        {
            return InCheck::Use;
        }
        self.check_in_slow::<A>(idx, f)
    }

    /// [`Engine::check_in`] in full.
    #[inline(never)]
    fn check_in_slow<A: Family>(&mut self, idx: ConnIdx, f: &Flow<A>) -> InCheck {
        let c = *A::conns(self).get(idx);
        if c.expired(self.tick) {
            // Not swept yet: the packet is treated exactly as after the timer fired.
            self.expire_conn::<A>(idx);
            return InCheck::Reschedule;
        }
        let (available, weight) = self
            .dests
            .get(c.dest)
            .map_or((false, 0), |d| (d.available, d.weight));
        let new = f.is_new_conn();
        if new && c.control == NIL && self.sysctl.conn_reuse_mode != 0 {
            let reuse = match c.proto {
                IPPROTO_TCP => {
                    c.state == tcp::TIME_WAIT
                        || c.state == tcp::CLOSE
                        || (self.sysctl.conn_reuse_mode & 2 != 0
                            && c.state == tcp::FIN_WAIT
                            && c.flags & flags::NOOUTPUT != 0)
                }
                IPPROTO_SCTP => c.state == sctp::CLOSED,
                _ => false,
            };
            if reuse {
                self.delete_conn::<A>(idx);
                return InCheck::Reschedule;
            }
        }
        if new && weight == 0 && self.sysctl.expire_nodest_conn {
            self.delete_conn::<A>(idx);
            return InCheck::Reschedule;
        }
        // After the reuse checks, as in ip_vs_in_hook: a new SYN on a finished connection to a
        // deleted real server is scheduled afresh, not dropped.
        if !available {
            if self.sysctl.expire_nodest_conn {
                self.delete_conn::<A>(idx);
                return InCheck::Reschedule;
            }
            return InCheck::Drop(DropReason::DestUnavailable);
        }
        InCheck::Use
    }

    /// A packet with no entry: open a connection if a service takes it (spec §4.1).
    fn new_conn<A: Family>(
        &mut self,
        ingress: IfaceId,
        mark: u32,
        pkt: &mut PacketBuf<'_>,
        f: &Flow<A>,
    ) -> Verdict {
        let Some(sid) = self
            .services
            .lookup(mark, f.proto, f.daddr.to_ip(), f.dport)
        else {
            return Verdict::Pass;
        };
        let may_open = match f.proto {
            IPPROTO_TCP => {
                f.tcp_flags & TH_RST == 0 && (f.tcp_flags & TH_SYN != 0 || self.sysctl.sloppy_tcp)
            }
            IPPROTO_SCTP => {
                f.sctp_event != SctpEvent::Abort
                    && (f.sctp_event == SctpEvent::Init || self.sysctl.sloppy_sctp)
            }
            _ => true,
        };
        if !may_open && f.proto == IPPROTO_TCP && f.tcp_flags & TH_RST == 0 {
            return self.reset(ingress, pkt);
        }
        // FTP data connections (source port 20) belong to the FTP helper, never the scheduler.
        if !may_open || (f.proto == IPPROTO_TCP && f.sport == 20) {
            return self.drop(DropReason::NoConnection);
        }
        let Some(svc) = self.services.get(sid) else {
            return Verdict::Pass;
        };
        let fwmark = matches!(svc.spec.key, ServiceKey::Fwmark { .. });
        let svc_port = svc.spec.key.port();
        let persistent = svc.is_persistent();
        let one_packet = svc.is_one_packet() && f.proto == IPPROTO_UDP;
        if !persistent && !fwmark && f.dport != svc_port {
            // Reached through the FTP or port-0 fallback without persistence: ip_vs_leave.
            return self.leave::<A>(ingress, pkt, f, svc_port == 21);
        }

        let (dest, template) = if persistent {
            match self.sched_persist::<A>(sid, mark, f) {
                Some(x) => x,
                None => return self.leave::<A>(ingress, pkt, f, false),
            }
        } else {
            match self.sched_plain(sid, f) {
                Some(d) => (d, NIL),
                None => return self.leave::<A>(ingress, pkt, f, false),
            }
        };
        let Some(d) = self.dests.get(dest) else {
            return self.drop(DropReason::NoDestination);
        };
        let dport = if template != NIL {
            if f.dport == svc_port && d.port != 0 {
                d.port
            } else {
                f.dport
            }
        } else if d.port != 0 {
            d.port
        } else {
            f.dport
        };
        let daddr = A::from_ip(d.addr).unwrap_or(A::UNSPECIFIED);
        let fwd = d.fwd_method();
        let mut cflags = flags::INACTIVE | fwd.code() as u16;
        if fwd != ForwardMethod::Masq {
            cflags |= flags::NOOUTPUT;
        }
        let service = d.service;
        self.count_new_conn(dest, service);
        let expires = self.ticks_from_now(INITIAL_TIMEOUT_MS);
        let mut conn = Conn::new(
            f.proto, f.saddr, f.sport, f.daddr, f.dport, daddr, dport, dest, cflags, expires,
        );
        conn.control = template;
        if template != NIL {
            let timeout_ms = self
                .services
                .get(sid)
                .map_or(0, |s| u64::from(s.spec.timeout) * 1000);
            let t_exp = self.ticks_from_now(timeout_ms);
            let t = A::conns_mut(self).get_mut(template);
            t.aux += 1;
            t.expires = t_exp;
        }
        if one_packet {
            // One-packet scheduling: the connection is used for this datagram and never stored.
            conn.flags |= flags::ONE_PACKET;
            self.bind_dest(dest, conn.flags);
            let v = self.forward_conn::<A>(&mut conn, Direction::Input, pkt, f);
            self.unbind_dest(dest, conn.flags);
            if template != NIL && A::conns(self).is_live(template) {
                let t = A::conns_mut(self).get_mut(template);
                t.aux = t.aux.saturating_sub(1);
            }
            return v;
        }
        self.bind_dest(dest, conn.flags);
        let idx = A::conns_mut(self).insert(conn, fwd == ForwardMethod::Masq);
        self.forward_in::<A>(idx, pkt, f)
    }

    fn count_new_conn(&mut self, dest: DestId, service: ServiceId) {
        self.stats.conn();
        if let Some(d) = self.dests.get_mut(dest) {
            d.stats.conn();
        }
        if let Some(s) = self.services.get_mut(service) {
            s.stats.conn();
        }
    }

    fn sched_input<A: Family>(&mut self, f: &Flow<A>) -> SchedInput {
        SchedInput {
            caddr: f.saddr.to_ip(),
            cport: f.sport,
            daddr: f.daddr.to_ip(),
            now_ms: self.now_ms,
            random: self.next_random(),
        }
    }

    fn sched_plain<A: Family>(&mut self, sid: ServiceId, f: &Flow<A>) -> Option<DestId> {
        let input = self.sched_input(f);
        let svc = self.services.get_mut(sid)?;
        svc.sched
            .schedule(DestList::new(&svc.dests, &self.dests), &input)
    }

    /// Persistent scheduling (`ip_vs_sched_persist`, spec §4.5): find or create the client
    /// network's template and return its real server and index.
    fn sched_persist<A: Family>(
        &mut self,
        sid: ServiceId,
        mark: u32,
        f: &Flow<A>,
    ) -> Option<(DestId, ConnIdx)> {
        let svc = self.services.get(sid)?;
        let svc_port = svc.spec.key.port();
        let timeout_ms = u64::from(svc.spec.timeout) * 1000;
        let snet = f.saddr.masked(&svc.spec.netmask);
        let fwmark = matches!(svc.spec.key, ServiceKey::Fwmark { .. });
        let (tproto, tvaddr, tvport) = if fwmark {
            let mark = match svc.spec.key {
                ServiceKey::Fwmark { mark: m, .. } => m,
                ServiceKey::Addr { .. } => mark,
            };
            (0, A::from_mark(mark), 0)
        } else if svc_port == 0 || svc_port == 21 || f.dport != svc_port {
            (f.proto, f.daddr, 0)
        } else {
            (f.proto, f.daddr, f.dport)
        };
        let tkey = InKey {
            proto: tproto,
            caddr: snet,
            cport: 0,
            vaddr: tvaddr,
            vport: tvport,
        };

        if let Some(t) = A::conns(self).lookup_template(&tkey)
            && A::conns(self).get(t).expired(self.tick)
        {
            // Its timer ran out but has not been handled yet: do now what the timer would
            // (re-arm a template that still controls connections, or remove it).
            self.expire_conn::<A>(t);
        }
        if let Some(t) = A::conns(self).lookup_template(&tkey) {
            let tc = *A::conns(self).get(t);
            let usable = self.dests.get(tc.dest).is_some_and(|d| {
                d.available && !(d.weight == 0 && self.sysctl.expire_quiescent_template)
            });
            if usable {
                return Some((tc.dest, t));
            }
            // Invalidate: move it where no packet's key can reach it; it expires on its own.
            A::conns_mut(self).rekey(t, 0, 0xffff, 0xffff);
        }

        let dest = self.sched_plain(sid, f)?;
        let d = self.dests.get(dest)?;
        let tdport = if !fwmark && svc_port != 0 && svc_port != 21 && f.dport == svc_port {
            d.port
        } else {
            0
        };
        let daddr = A::from_ip(d.addr).unwrap_or(A::UNSPECIFIED);
        let tflags = flags::TEMPLATE | d.fwd_method().code() as u16;
        let expires = self.ticks_from_now(timeout_ms);
        let tconn = Conn::new(
            tproto, snet, 0, tvaddr, tvport, daddr, tdport, dest, tflags, expires,
        );
        self.bind_dest(dest, tflags);
        let t = A::conns_mut(self).insert(tconn, false);
        Some((dest, t))
    }

    /// Client → server packet on entry `idx`.
    #[inline(always)]
    fn forward_in<A: Family>(
        &mut self,
        idx: ConnIdx,
        pkt: &mut PacketBuf<'_>,
        f: &Flow<A>,
    ) -> Verdict {
        let mut c = *A::conns(self).get(idx);
        let dir = if c.flags & flags::NOOUTPUT != 0 {
            Direction::InputOnly
        } else {
            Direction::Input
        };
        let v = self.forward_conn::<A>(&mut c, dir, pkt, f);
        *A::conns_mut(self).get_mut(idx) = c;
        v
    }

    /// Server → client packet (NAT reply) on entry `idx`.
    #[inline(always)]
    fn forward_out<A: Family>(
        &mut self,
        idx: ConnIdx,
        pkt: &mut PacketBuf<'_>,
        f: &Flow<A>,
    ) -> Verdict {
        let mut c = *A::conns(self).get(idx);
        let v = self.forward_conn::<A>(&mut c, Direction::Output, pkt, f);
        *A::conns_mut(self).get_mut(idx) = c;
        v
    }

    /// State transition, counters and rewrite for one packet of connection `c`.
    #[inline(always)]
    fn forward_conn<A: Family>(
        &mut self,
        c: &mut Conn<A>,
        dir: Direction,
        pkt: &mut PacketBuf<'_>,
        f: &Flow<A>,
    ) -> Verdict {
        self.set_state(c, dir, f);
        let out = dir == Direction::Output;
        // One visit to the real server: its counters and its service's, and what the transmit
        // needs (the cached next hop is taken only if still valid).
        let generation = self.l2.generation();
        let mut dest = None;
        if let Some(d) = self.dests.get_mut(c.dest) {
            d.stats.packet(out, f.ip_len);
            if let Some(s) = self.services.get_mut(d.service) {
                s.stats.packet(out, f.ip_len);
            }
            let method = d.spec.fwd_method;
            let (hop, src4) = match &d.next_hop {
                Some((g, nh, hop)) if *g == generation => (
                    Some(*hop),
                    match (method, nh.src_ip) {
                        (ForwardMethod::Tunnel, Some(std::net::IpAddr::V4(a))) => Some(a),
                        _ => None,
                    },
                ),
                _ => (None, None),
            };
            dest = Some(XmitDest {
                method,
                hop,
                rip4: match d.addr {
                    std::net::IpAddr::V4(a) => Some(a),
                    std::net::IpAddr::V6(_) => None,
                },
                src4,
            });
        }
        self.stats.packet(out, f.ip_len);
        let verdict = if out {
            self.xmit_out::<A>(c, pkt, f)
        } else {
            c.aux = c.aux.wrapping_add(1);
            // With a known next hop, direct routing, and NAT and IPIP of IPv4 flows to IPv4
            // real servers, are transmitted inline; the rest (and every first packet after
            // a next-hop change) by xmit_in.
            match dest {
                Some(XmitDest {
                    method: ForwardMethod::Route,
                    hop: Some(hop),
                    ..
                }) => self.xmit_route::<A>(hop, pkt, f),
                Some(XmitDest {
                    method: ForwardMethod::Masq,
                    hop: Some(hop),
                    rip4: Some(rip),
                    ..
                }) if A::BITS == 32 => self.xmit_nat4::<A>(c.dport, hop, rip, pkt, f),
                Some(XmitDest {
                    method: ForwardMethod::Tunnel,
                    hop: Some(hop),
                    rip4: Some(rip),
                    src4: Some(src),
                }) if A::BITS == 32 => self.xmit_tun4::<A>(hop, src, rip, pkt, f),
                _ => self.xmit_in::<A>(c, dest, pkt, f),
            }
        };
        if self.fast_path && c.flags & flags::FAST == 0 && matches!(verdict, Verdict::Transmit(_)) {
            self.fast_export(c);
        }
        verdict
    }

    /// Runs the protocol state machine, moves the connection between the active and inactive
    /// counts, marks its template ASSURED and re-arms its timer.
    #[inline(always)]
    fn set_state<A: Family>(&mut self, c: &mut Conn<A>, dir: Direction, f: &Flow<A>) {
        let timeout_s = match c.proto {
            IPPROTO_TCP => {
                // An ACK (without SYN/FIN/RST) keeps an established connection established in
                // every direction and both tables: nothing else to do.
                if c.state != tcp::ESTABLISHED || f.tcp_flags & 0x17 != TH_ACK {
                    self.tcp_transition(c, dir, f);
                }
                self.timeouts.tcp[c.state as usize]
            }
            IPPROTO_SCTP => {
                let new = sctp_transition(c.state, dir, f.sctp_event);
                if new != c.state {
                    self.update_activity(c, new == sctp::ESTABLISHED);
                    if new == sctp::ESTABLISHED {
                        self.assure_template::<A>(c.control);
                    }
                    c.state = new;
                }
                self.timeouts.sctp[c.state as usize]
            }
            _ => {
                if dir == Direction::Output {
                    self.assure_template::<A>(c.control);
                }
                self.timeouts.udp
            }
        };
        c.expires = self
            .tick
            .wrapping_add((u64::from(timeout_s) * 1000 / TICK_MS) as u32);
    }

    /// The TCP state machine step of [`Engine::set_state`].
    #[inline]
    fn tcp_transition<A: Family>(&mut self, c: &mut Conn<A>, dir: Direction, f: &Flow<A>) {
        let new = tcp_transition(c.state, dir, f.tcp_flags, self.sysctl.secure_tcp_table());
        if new != c.state && new != tcp::ESTABLISHED && c.flags & flags::FAST != 0 {
            // FIN/RST/SYN reach the engine: the fast path stops at ESTABLISHED.
            self.fast_withdraw(c);
        }
        if new != c.state {
            self.update_activity(c, tcp_is_active(new));
            if new == tcp::ESTABLISHED {
                self.assure_template::<A>(c.control);
            }
            c.state = new;
        }
    }

    fn update_activity<A>(&mut self, c: &mut Conn<A>, active: bool) {
        let inactive = c.flags & flags::INACTIVE != 0;
        let Some(d) = self.dests.get_mut(c.dest) else {
            return;
        };
        if !inactive && !active {
            d.activeconns = d.activeconns.saturating_sub(1);
            d.inactconns += 1;
            c.flags |= flags::INACTIVE;
        } else if inactive && active {
            d.activeconns += 1;
            d.inactconns = d.inactconns.saturating_sub(1);
            c.flags &= !flags::INACTIVE;
        } else {
            return;
        }
        let sid = d.service;
        self.note_dest_load(sid, c.dest);
    }

    fn assure_template<A: Family>(&mut self, t: ConnIdx) {
        if t != NIL && A::conns(self).is_live(t) {
            A::conns_mut(self).get_mut(t).flags |= flags::ASSURED;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;

    thread_local! {
        /// Makes `forward_established` step aside, so tests can compare it with the
        /// general path.
        pub(crate) static NO_SHORTCUT: Cell<bool> = const { Cell::new(false) };
    }
}
