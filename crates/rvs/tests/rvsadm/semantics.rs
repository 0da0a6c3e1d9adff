//! IPVS semantics of the table commands (ipvs.md §1.7, §4), through rvsadm and the real engine
//! with TCP traffic: `-E` and `-e` keep connections, weight 0 quiesces a real server, `-d`
//! trashes a real server that still has connections and `-a` revives it, `-D`/`-C` empty the
//! table, `--set` changes the timeouts of later state changes.

use std::net::SocketAddr;
use std::time::Duration;

use rvs_engine::Verdict;
use rvs_wire::TcpFlags;

use crate::backend::{EngineLab, Shared, new_state, ok, run};

const VIP: &str = "198.18.0.100:80";

fn out(st: &Shared, line: &str) -> String {
    let o = run(st, line);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""), "rvsadm {line}");
    o.stdout
}

/// Client `n`'s socket (198.19.0.n, port 40000 + n).
fn client(n: u16) -> SocketAddr {
    SocketAddr::new(format!("198.19.0.{n}").parse().unwrap(), 40000 + n)
}

/// Sends one segment from client `n` to the VIP; returns the real server's host number
/// (11–19) it was forwarded to, or `None` if the engine did not transmit it.
fn send(st: &Shared, n: u16, flags: TcpFlags) -> Option<u8> {
    let mut s = st.borrow_mut();
    let (v, frame) = s.lab().tcp(client(n), VIP.parse().unwrap(), flags, b"");
    matches!(v, Verdict::Transmit(_)).then(|| EngineLab::dr_target(&frame))
}

/// Real-server rows of `-L -n`: (address, weight, active, inactive).
fn dests(st: &Shared) -> Vec<(String, u32, u32, u32)> {
    out(st, "-L -n")
        .lines()
        .filter(|l| l.starts_with("  -> ") && !l.contains("RemoteAddress"))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (
                w[1].to_owned(),
                w[3].parse().unwrap(),
                w[4].parse().unwrap(),
                w[5].parse().unwrap(),
            )
        })
        .collect()
}

fn two_servers(sched: &str) -> Shared {
    let st = new_state();
    ok(&st, &format!("-A -t {VIP} -s {sched}"));
    ok(&st, &format!("-a -t {VIP} -r 198.18.0.11 -g"));
    ok(&st, &format!("-a -t {VIP} -r 198.18.0.12 -g"));
    st
}

#[test]
fn edit_service_keeps_real_servers_and_connections() {
    let st = two_servers("rr");
    assert_eq!(send(&st, 1, TcpFlags::SYN), Some(12));
    assert_eq!(send(&st, 2, TcpFlags::SYN), Some(11));
    let before = dests(&st);
    let conns = out(&st, "-L -n -c");
    ok(&st, &format!("-E -t {VIP} -s wlc -p 60"));
    assert!(
        out(&st, "-L -n").contains("\nTCP  198.18.0.100:80 wlc persistent 60\n"),
        "scheduler and persistence replaced"
    );
    assert_eq!(dests(&st), before);
    assert_eq!(out(&st, "-L -n -c"), conns);
    // An existing connection still goes to its real server after the edit.
    assert_eq!(send(&st, 1, TcpFlags::ACK), Some(12));
    // -E without -p removes persistence again (full replacement).
    ok(&st, &format!("-E -t {VIP} -s wlc"));
    assert!(out(&st, "-L -n").contains("\nTCP  198.18.0.100:80 wlc\n"));
}

#[test]
fn weight_zero_quiesces_a_real_server() {
    let st = two_servers("wrr");
    assert_eq!(send(&st, 1, TcpFlags::SYN), Some(12));
    ok(&st, &format!("-e -t {VIP} -r 198.18.0.12 -g -w 0"));
    assert_eq!(
        dests(&st),
        [
            ("198.18.0.11:80".to_owned(), 1, 0, 0),
            ("198.18.0.12:80".to_owned(), 0, 1, 0)
        ]
    );
    // New connections avoid it; its existing connection is still forwarded to it.
    for n in 2..8 {
        assert_eq!(send(&st, n, TcpFlags::SYN), Some(11), "client {n}");
    }
    assert_eq!(send(&st, 1, TcpFlags::ACK), Some(12));
    // Back to weight 1: it is scheduled again.
    ok(&st, &format!("-e -t {VIP} -r 198.18.0.12 -g"));
    let targets: Vec<_> = (8..12)
        .filter_map(|n| send(&st, n, TcpFlags::SYN))
        .collect();
    assert!(targets.contains(&12), "{targets:?}");
}

#[test]
fn deleted_real_server_is_revived_with_its_counters() {
    let st = two_servers("rr");
    assert_eq!(send(&st, 1, TcpFlags::SYN), Some(12));
    assert_eq!(send(&st, 1, TcpFlags::ACK), Some(12));
    let stats = out(&st, "-L -n --stats");
    let row12 =
        "\n  -> 198.18.0.12:80                      1        2        0       80        0\n";
    assert!(stats.contains(row12), "{stats}");
    ok(&st, &format!("-d -t {VIP} -r 198.18.0.12"));
    assert_eq!(dests(&st), [("198.18.0.11:80".to_owned(), 1, 0, 0)]);
    // The connection outlives its real server's removal.
    assert!(
        out(&st, "-L -n -c")
            .contains("ESTABLISHED 198.19.0.1:40001   198.18.0.100:80    198.18.0.12:80"),
    );
    // New connections go to the remaining one.
    assert_eq!(send(&st, 2, TcpFlags::SYN), Some(11));
    // Re-adding it while its connection lives brings back the same server: counters and the
    // connection count (IPVS's trash).
    ok(&st, &format!("-a -t {VIP} -r 198.18.0.12 -g -w 3"));
    assert_eq!(
        dests(&st),
        [
            ("198.18.0.11:80".to_owned(), 1, 1, 0),
            ("198.18.0.12:80".to_owned(), 3, 1, 0)
        ]
    );
    assert!(out(&st, "-L -n --stats").contains(row12));
    // A real server without connections starts from zero when added again.
    ok(&st, &format!("-a -t {VIP} -r 198.18.0.13 -g"));
    ok(&st, &format!("-d -t {VIP} -r 198.18.0.13"));
    ok(&st, &format!("-a -t {VIP} -r 198.18.0.13 -g"));
    assert!(out(&st, "-L -n --stats").contains(
        "\n  -> 198.18.0.13:80                      0        0        0        0        0\n"
    ));
}

#[test]
fn delete_and_clear() {
    let st = two_servers("rr");
    ok(&st, "-A -u 198.18.0.100:53 -s rr");
    ok(&st, "-a -u 198.18.0.100:53 -r 198.18.0.11 -g");
    ok(&st, "-A -f 7 -s sh");
    assert_eq!(send(&st, 1, TcpFlags::SYN), Some(12));
    ok(&st, "-D -u 198.18.0.100:53");
    assert_eq!(
        out(&st, "-S -n"),
        "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1\n\
         -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n-A -f 7 -s sh\n"
    );
    ok(&st, "-C");
    assert_eq!(out(&st, "-S -n"), "");
    assert_eq!(
        out(&st, "-L -n"),
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    );
    // Connections are not flushed with the table; they time out.
    assert_eq!(out(&st, "-L -n -c").lines().count(), 3);
    // With no service, the VIP is not served any more: a new client is not forwarded.
    assert_eq!(send(&st, 2, TcpFlags::SYN), None);
    // Clearing an empty table is fine.
    ok(&st, "-C");
}

#[test]
fn timeouts_apply_to_later_state_changes() {
    let st = two_servers("rr");
    assert_eq!(
        out(&st, "-L --timeout"),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    assert_eq!(send(&st, 1, TcpFlags::SYN), Some(12));
    assert_eq!(send(&st, 1, TcpFlags::ACK), Some(12));
    ok(&st, "--set 60 30 20");
    assert_eq!(
        out(&st, "-L --timeout"),
        "Timeout (tcp tcpfin udp): 60 30 20\n"
    );
    // The established connection keeps the timeout it was given…
    let conn = |st: &Shared| out(st, "-L -n -c").lines().nth(2).unwrap().to_owned();
    assert!(
        conn(&st).starts_with("TCP 15:00  ESTABLISHED "),
        "{}",
        conn(&st)
    );
    // …until its next packet, which uses the new value.
    st.borrow_mut().lab().advance(Duration::from_secs(5));
    assert_eq!(send(&st, 1, TcpFlags::ACK), Some(12));
    assert!(
        conn(&st).starts_with("TCP 01:00  ESTABLISHED "),
        "{}",
        conn(&st)
    );
    // A client FIN in direct routing: FIN_WAIT with the new tcpfin timeout.
    assert_eq!(
        send(
            &st,
            1,
            TcpFlags::from_bits(TcpFlags::FIN.bits() | TcpFlags::ACK.bits())
        ),
        Some(12)
    );
    assert!(
        conn(&st).starts_with("TCP 00:30  FIN_WAIT    "),
        "{}",
        conn(&st)
    );
    // Zero keeps a value.
    ok(&st, "--set 0 45 0");
    assert_eq!(
        out(&st, "-L --timeout"),
        "Timeout (tcp tcpfin udp): 60 45 20\n"
    );
}
