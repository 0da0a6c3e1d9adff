//! The IPVS protocol state machines (TCP, UDP, SCTP) and their per-state timeouts.
//!
//! Transition tables are the kernel's (`ip_vs_proto_tcp.c`, `ip_vs_proto_sctp.c`): a packet's
//! direction and its event (from TCP flags or the first SCTP chunk) select the next state, and the
//! connection's timer is then set to the new state's timeout. A connection is *active* while its
//! state is one of the protocol's active states; all others (and every UDP connection) count as
//! inactive.

use rvs_api::Timeouts;

/// Direction of a packet relative to its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client → server on a connection whose replies pass the director (NAT).
    Input,
    /// Server → client (NAT replies).
    Output,
    /// Client → server on a connection whose replies bypass the director (DR, TUN).
    InputOnly,
}

impl Direction {
    #[inline]
    const fn row(self) -> usize {
        match self {
            Self::Input => 0,
            Self::Output => 1,
            Self::InputOnly => 2,
        }
    }
}

/// TCP connection states, numbered as in the kernel.
pub mod tcp {
    /// NONE.
    pub const NONE: u8 = 0;
    /// ESTABLISHED.
    pub const ESTABLISHED: u8 = 1;
    /// SYN_SENT.
    pub const SYN_SENT: u8 = 2;
    /// SYN_RECV.
    pub const SYN_RECV: u8 = 3;
    /// FIN_WAIT.
    pub const FIN_WAIT: u8 = 4;
    /// TIME_WAIT.
    pub const TIME_WAIT: u8 = 5;
    /// CLOSE.
    pub const CLOSE: u8 = 6;
    /// CLOSE_WAIT.
    pub const CLOSE_WAIT: u8 = 7;
    /// LAST_ACK.
    pub const LAST_ACK: u8 = 8;
    /// LISTEN.
    pub const LISTEN: u8 = 9;
    /// SYNACK.
    pub const SYNACK: u8 = 10;
    /// Number of states.
    pub const COUNT: usize = 11;

    /// Names as `ipvsadm -L -c` prints them.
    pub const NAMES: [&str; COUNT] = [
        "NONE",
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "SYNACK",
    ];

    /// Default timeouts in seconds, indexed by state.
    pub const DEFAULT_TIMEOUTS: [u32; COUNT] = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120];
}

/// SCTP connection states, numbered as in the kernel.
pub mod sctp {
    /// NONE.
    pub const NONE: u8 = 0;
    /// INIT1.
    pub const INIT1: u8 = 1;
    /// INIT.
    pub const INIT: u8 = 2;
    /// COOKIE_SENT.
    pub const COOKIE_SENT: u8 = 3;
    /// COOKIE_REPLIED.
    pub const COOKIE_REPLIED: u8 = 4;
    /// COOKIE_WAIT.
    pub const COOKIE_WAIT: u8 = 5;
    /// COOKIE.
    pub const COOKIE: u8 = 6;
    /// COOKIE_ECHOED.
    pub const COOKIE_ECHOED: u8 = 7;
    /// ESTABLISHED.
    pub const ESTABLISHED: u8 = 8;
    /// SHUTDOWN_SENT.
    pub const SHUTDOWN_SENT: u8 = 9;
    /// SHUTDOWN_RECEIVED.
    pub const SHUTDOWN_RECEIVED: u8 = 10;
    /// SHUTDOWN_ACK_SENT.
    pub const SHUTDOWN_ACK_SENT: u8 = 11;
    /// REJECTED.
    pub const REJECTED: u8 = 12;
    /// CLOSED.
    pub const CLOSED: u8 = 13;
    /// Number of states.
    pub const COUNT: usize = 14;

    /// Names as `ipvsadm -L -c` prints them.
    pub const NAMES: [&str; COUNT] = [
        "NONE",
        "INIT1",
        "INIT",
        "C-SENT",
        "C-REPLIED",
        "C-WAIT",
        "COOKIE",
        "C-ECHOED",
        "ESTABLISHED",
        "S-SENT",
        "S-RECEIVED",
        "S-ACK-SENT",
        "REJECTED",
        "CLOSED",
    ];

    /// Default timeouts in seconds, indexed by state.
    pub const DEFAULT_TIMEOUTS: [u32; COUNT] =
        [2, 4, 61, 61, 61, 61, 61, 61, 900, 61, 61, 61, 4, 61];
}

/// TCP events in the kernel's priority order RST > SYN > FIN > ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpEvent {
    /// SYN set (and not RST).
    Syn,
    /// FIN set (and not RST/SYN).
    Fin,
    /// ACK only.
    Ack,
    /// RST set.
    Rst,
}

impl TcpEvent {
    /// The event of a segment with TCP flags byte `flags`, or `None` when none of
    /// SYN/FIN/ACK/RST is set (the kernel then forces the state to CLOSE).
    pub const fn from_flags(flags: u8) -> Option<Self> {
        const FIN: u8 = 0x01;
        const SYN: u8 = 0x02;
        const RST: u8 = 0x04;
        const ACK: u8 = 0x10;
        if flags & RST != 0 {
            Some(Self::Rst)
        } else if flags & SYN != 0 {
            Some(Self::Syn)
        } else if flags & FIN != 0 {
            Some(Self::Fin)
        } else if flags & ACK != 0 {
            Some(Self::Ack)
        } else {
            None
        }
    }

    const fn col(self) -> usize {
        match self {
            Self::Syn => 0,
            Self::Fin => 1,
            Self::Ack => 2,
            Self::Rst => 3,
        }
    }
}

use tcp::{
    CLOSE as CL, CLOSE_WAIT as CW, ESTABLISHED as ES, FIN_WAIT as FW, LAST_ACK as LA, LISTEN as LI,
    SYN_RECV as SR, SYN_SENT as SS, SYNACK as SA, TIME_WAIT as TW,
};

/// `[direction][event][current state] -> next state`, the normal table (secure_tcp < 2).
const TCP_NORMAL: [[[u8; tcp::COUNT]; 4]; 3] = [
    // INPUT
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR], // syn
        [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW], // fin
        [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES], // ack
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR], // rst
    ],
    // OUTPUT
    [
        [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // INPUT_ONLY
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// The secure table (secure_tcp ≥ 2): SYN floods cannot move entries into long-lived states.
const TCP_SECURE: [[[u8; tcp::COUNT]; 4]; 3] = [
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SA],
        [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, SA],
        [ES, ES, SS, SR, FW, TW, CL, CW, CL, LI, SA],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
    [
        [SS, ES, SS, SA, SS, SS, SS, SS, SS, LI, SA],
        [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    [
        [SA, ES, ES, SR, SA, SA, SA, SA, SA, SA, SA],
        [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// `TcpEvent::from_flags(flags & 0x17)` as a table column (4: no event → CLOSE), so the
/// per-packet transition is two loads instead of a chain of flag tests.
const TCP_EVENT_COL: [u8; 32] = {
    let mut t = [4u8; 32];
    let mut f = 0;
    while f < 32 {
        t[f] = match TcpEvent::from_flags(f as u8) {
            Some(ev) => ev.col() as u8,
            None => 4,
        };
        f += 1;
    }
    t
};

/// `[secure][direction][event column][state]`: the two tables with a CLOSE row for segments
/// that carry none of SYN/FIN/ACK/RST.
const TCP_TABLES: [[[[u8; tcp::COUNT]; 5]; 3]; 2] = {
    let mut t = [[[[CL; tcp::COUNT]; 5]; 3]; 2];
    let mut d = 0;
    while d < 3 {
        let mut e = 0;
        while e < 4 {
            t[0][d][e] = TCP_NORMAL[d][e];
            t[1][d][e] = TCP_SECURE[d][e];
            e += 1;
        }
        d += 1;
    }
    t
};

/// Next TCP state for a segment with `flags` travelling in `dir` on a connection in `state`.
#[inline]
pub fn tcp_transition(state: u8, dir: Direction, flags: u8, secure: bool) -> u8 {
    let col = TCP_EVENT_COL[usize::from(flags & 0x17)];
    let s = (state as usize).min(tcp::COUNT - 1);
    TCP_TABLES[usize::from(secure)][dir.row()][usize::from(col)][s]
}

/// Whether a TCP state counts as active (ESTABLISHED, SYN_SENT, SYN_RECV, SYNACK).
pub const fn tcp_is_active(state: u8) -> bool {
    matches!(state, ES | SS | SR | SA)
}

/// SCTP events: the type of the first chunk, folded as the kernel does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SctpEvent {
    /// DATA, SACK, HEARTBEAT(-ACK), ECNE, CWR and unknown chunk types.
    Data = 0,
    /// INIT.
    Init,
    /// INIT ACK.
    InitAck,
    /// COOKIE ECHO.
    CookieEcho,
    /// COOKIE ACK.
    CookieAck,
    /// SHUTDOWN.
    Shutdown,
    /// SHUTDOWN ACK.
    ShutdownAck,
    /// SHUTDOWN COMPLETE.
    ShutdownComplete,
    /// ERROR.
    Error,
    /// ABORT.
    Abort,
}

impl SctpEvent {
    /// The event of an SCTP packet: the first chunk's type, and ABORT when a COOKIE ECHO/ACK is
    /// followed by an ABORT chunk (`second` is the type of the second chunk, if any).
    pub const fn from_chunks(first: u8, second: Option<u8>) -> Self {
        let ev = match first {
            1 => Self::Init,
            2 => Self::InitAck,
            6 => Self::Abort,
            7 => Self::Shutdown,
            8 => Self::ShutdownAck,
            9 => Self::Error,
            10 => Self::CookieEcho,
            11 => Self::CookieAck,
            14 => Self::ShutdownComplete,
            _ => Self::Data,
        };
        match (ev, second) {
            (Self::CookieEcho | Self::CookieAck, Some(6)) => Self::Abort,
            _ => ev,
        }
    }
}

mod sctp_table {
    use super::sctp::{
        CLOSED as CL, COOKIE as CO, COOKIE_ECHOED as CE, COOKIE_REPLIED as CR, COOKIE_SENT as CS,
        COOKIE_WAIT as CW, ESTABLISHED as ES, INIT as IN, INIT1 as I1, NONE as NO, REJECTED as RJ,
        SHUTDOWN_ACK_SENT as SA, SHUTDOWN_RECEIVED as SR, SHUTDOWN_SENT as SS,
    };
    const _: u8 = NO;

    /// `[direction][event][state]` from ip_vs_proto_sctp.c.
    pub(super) const TABLE: [[[u8; 14]; 10]; 3] = [
        [
            [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
            [I1, IN, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, IN, IN],
            [CW, CW, CW, CS, CR, CO, CO, CE, ES, SS, SR, SA, RJ, CL],
            [CR, IN, IN, CR, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
            [ES, I1, IN, CS, CR, CW, CO, ES, ES, SS, SR, SA, RJ, CL],
            [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
            [CL, IN, IN, CS, CR, CW, CO, CE, ES, CL, SR, CL, RJ, CL],
            [CL, CL, CL, CS, CR, CW, CO, CE, ES, SS, SR, CL, RJ, CL],
            [CL, I1, IN, CS, CR, CW, CO, CL, ES, SS, SR, SA, RJ, CL],
            [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
        ],
        [
            [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
            [CW, CW, CW, CW, CW, CW, CW, CW, ES, CW, CW, CW, CW, CW],
            [CS, CS, CS, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
            [CE, CE, CE, CE, CE, CE, CE, CE, ES, SS, SR, SA, RJ, CL],
            [ES, ES, ES, ES, ES, ES, ES, ES, ES, SS, SR, SA, RJ, CL],
            [SS, SS, SS, SS, SS, SS, SS, SS, SS, SS, SR, SA, RJ, CL],
            [SA, SA, SA, SA, SA, CW, CO, CE, ES, SA, SA, SA, RJ, CL],
            [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
            [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
            [CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        ],
        [
            [ES, I1, IN, CS, CR, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
            [I1, IN, IN, IN, IN, IN, CO, CE, ES, SS, SR, SA, IN, IN],
            [CE, CE, CE, CE, CE, CE, CO, CE, ES, SS, SR, SA, RJ, CL],
            [ES, ES, ES, ES, ES, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
            [ES, I1, IN, ES, ES, CW, ES, ES, ES, SS, SR, SA, RJ, CL],
            [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
            [CL, IN, IN, CS, CR, CW, CO, CE, CL, CL, SR, CL, RJ, CL],
            [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, CL, CL, RJ, CL],
            [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
            [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
        ],
    ];
}

/// Next SCTP state.
pub fn sctp_transition(state: u8, dir: Direction, ev: SctpEvent) -> u8 {
    let s = (state as usize).min(sctp::COUNT - 1);
    sctp_table::TABLE[dir.row()][ev as usize][s]
}

/// Per-state timeouts of every protocol, in seconds. `--set` changes three of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutTable {
    /// TCP, indexed by state.
    pub tcp: [u32; tcp::COUNT],
    /// SCTP, indexed by state.
    pub sctp: [u32; sctp::COUNT],
    /// UDP (single state).
    pub udp: u32,
}

impl Default for TimeoutTable {
    fn default() -> Self {
        Self {
            tcp: tcp::DEFAULT_TIMEOUTS,
            sctp: sctp::DEFAULT_TIMEOUTS,
            udp: 300,
        }
    }
}

impl TimeoutTable {
    /// The three values `ipvsadm -L --timeout` shows.
    pub const fn timeouts(&self) -> Timeouts {
        Timeouts {
            tcp: self.tcp[tcp::ESTABLISHED as usize],
            tcp_fin: self.tcp[tcp::FIN_WAIT as usize],
            udp: self.udp,
        }
    }

    /// `--set tcp tcpfin udp`; zero leaves a value unchanged.
    pub fn set(&mut self, t: Timeouts) {
        if t.tcp != 0 {
            self.tcp[tcp::ESTABLISHED as usize] = t.tcp;
        }
        if t.tcp_fin != 0 {
            self.tcp[tcp::FIN_WAIT as usize] = t.tcp_fin;
        }
        if t.udp != 0 {
            self.udp = t.udp;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const FIN: u8 = 0x01;
    const RST: u8 = 0x04;

    /// The table-driven transition equals the kernel's flag-priority rule for every flag byte,
    /// state (also out of range), direction and table.
    #[test]
    fn transition_table_matches_flag_rule() {
        for secure in [false, true] {
            for dir in [Direction::Input, Direction::Output, Direction::InputOnly] {
                for state in 0..=tcp::COUNT as u8 + 1 {
                    for flags in 0..=u8::MAX {
                        let s = (state as usize).min(tcp::COUNT - 1);
                        let table = if secure { &TCP_SECURE } else { &TCP_NORMAL };
                        let want = match TcpEvent::from_flags(flags) {
                            None => tcp::CLOSE,
                            Some(ev) => table[dir.row()][ev.col()][s],
                        };
                        assert_eq!(tcp_transition(state, dir, flags, secure), want);
                    }
                }
            }
        }
    }

    /// The shortcut in the packet path: a bare ACK (any flags but SYN/FIN/RST) on an
    /// ESTABLISHED connection leaves it ESTABLISHED in every direction and table.
    #[test]
    fn ack_keeps_established() {
        for secure in [false, true] {
            for dir in [Direction::Input, Direction::Output, Direction::InputOnly] {
                for flags in (0..=u8::MAX).filter(|f| f & 0x17 == ACK) {
                    assert_eq!(
                        tcp_transition(tcp::ESTABLISHED, dir, flags, secure),
                        tcp::ESTABLISHED
                    );
                }
            }
        }
    }

    /// Spec §4.3 "typical flows".
    #[test]
    fn nat_flow() {
        let mut s = tcp::NONE;
        s = tcp_transition(s, Direction::Input, SYN, false);
        assert_eq!(s, tcp::SYN_RECV);
        s = tcp_transition(s, Direction::Output, SYN | ACK, false);
        assert_eq!(s, tcp::SYN_RECV);
        s = tcp_transition(s, Direction::Input, ACK, false);
        assert_eq!(s, tcp::ESTABLISHED);
        s = tcp_transition(s, Direction::Input, FIN | ACK, false);
        assert_eq!(s, tcp::CLOSE_WAIT);
        s = tcp_transition(s, Direction::Output, FIN | ACK, false);
        assert_eq!(s, tcp::TIME_WAIT);
        s = tcp_transition(s, Direction::Input, ACK, false);
        assert_eq!(s, tcp::TIME_WAIT);
        assert!(!tcp_is_active(s));
    }

    #[test]
    fn dr_flow_and_oddities() {
        let mut s = tcp_transition(tcp::NONE, Direction::InputOnly, SYN, false);
        assert_eq!(s, tcp::SYN_RECV);
        assert!(tcp_is_active(s));
        s = tcp_transition(s, Direction::InputOnly, ACK, false);
        assert_eq!(s, tcp::ESTABLISHED);
        s = tcp_transition(s, Direction::InputOnly, FIN | ACK, false);
        assert_eq!(s, tcp::FIN_WAIT);
        assert!(!tcp_is_active(s));
        s = tcp_transition(s, Direction::InputOnly, ACK, false);
        assert_eq!(s, tcp::FIN_WAIT);
        assert_eq!(
            tcp_transition(tcp::ESTABLISHED, Direction::InputOnly, RST, false),
            tcp::CLOSE
        );
        // A segment with none of SYN/FIN/ACK/RST closes the entry (kernel quirk).
        assert_eq!(
            tcp_transition(tcp::ESTABLISHED, Direction::Input, 0x08, false),
            tcp::CLOSE
        );
        // RST wins over SYN.
        assert_eq!(
            tcp_transition(tcp::NONE, Direction::Input, SYN | RST, false),
            tcp::CLOSE
        );
    }

    #[test]
    fn secure_table_differs_where_the_spec_says() {
        assert_eq!(
            tcp_transition(tcp::SYN_RECV, Direction::Input, ACK, true),
            tcp::SYN_RECV
        );
        assert_eq!(
            tcp_transition(tcp::NONE, Direction::InputOnly, SYN, true),
            tcp::SYNACK
        );
        assert_eq!(
            tcp_transition(tcp::SYN_RECV, Direction::Output, SYN, true),
            tcp::SYNACK
        );
    }

    #[test]
    fn sctp_handshake() {
        let d = Direction::InputOnly;
        let mut s = sctp_transition(sctp::NONE, d, SctpEvent::Init);
        assert_eq!(s, sctp::INIT1);
        s = sctp_transition(s, d, SctpEvent::CookieEcho);
        assert_eq!(s, sctp::ESTABLISHED);
        assert_eq!(SctpEvent::from_chunks(10, Some(6)), SctpEvent::Abort);
        assert_eq!(SctpEvent::from_chunks(0, None), SctpEvent::Data);
    }

    #[test]
    fn set_timeouts_zero_keeps() {
        let mut t = TimeoutTable::default();
        assert_eq!(
            t.timeouts(),
            Timeouts {
                tcp: 900,
                tcp_fin: 120,
                udp: 300
            }
        );
        t.set(Timeouts {
            tcp: 60,
            tcp_fin: 0,
            udp: 20,
        });
        assert_eq!(
            t.timeouts(),
            Timeouts {
                tcp: 60,
                tcp_fin: 120,
                udp: 20
            }
        );
    }
}
