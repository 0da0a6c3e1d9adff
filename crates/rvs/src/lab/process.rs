//! Processes identified by pid *and* start time, so a recycled pid is never signalled.

use std::fs;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A process the lab (or `rvs realserver tun`) started: its pid and its start time in clock ticks
/// after boot (`/proc/<pid>/stat` field 22), which together identify it even after pid reuse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    /// The process id.
    pub pid: u32,
    /// Start time in clock ticks since boot.
    pub start_time: u64,
}

impl ProcessId {
    /// The identity of a live process, or `None` if `pid` is not running.
    pub fn of(pid: u32) -> Option<Self> {
        let (state, start_time) = stat(pid)?;
        (state != 'Z' && state != 'X').then_some(Self { pid, start_time })
    }

    /// The calling process.
    pub fn current() -> Option<Self> {
        Self::of(std::process::id())
    }

    /// Whether this very process still runs (not a zombie, not a newer process with the same pid).
    pub fn is_alive(&self) -> bool {
        matches!(stat(self.pid), Some((state, start)) if start == self.start_time && state != 'Z' && state != 'X')
    }

    /// Sends SIGTERM, waits up to `grace`, then SIGKILL; returns once the process is gone or after
    /// another second. Does nothing if the pid now belongs to another process.
    ///
    /// Returns whether the process is gone.
    pub fn terminate(&self, grace: Duration) -> bool {
        if !self.is_alive() {
            return true;
        }
        signal(self.pid, "TERM");
        if wait_gone(self, grace) {
            return true;
        }
        if self.is_alive() {
            signal(self.pid, "KILL");
        }
        wait_gone(self, Duration::from_secs(1))
    }
}

fn wait_gone(p: &ProcessId, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !p.is_alive() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    !p.is_alive()
}

/// Sends a signal with the `kill` utility (keeps this crate free of `unsafe`).
fn signal(pid: u32, sig: &str) {
    // A failure means the process is already gone; `terminate` checks liveness afterwards.
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `(state, starttime)` from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<(char, u64)> {
    // The command name (field 2) is in parentheses and may contain spaces or ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state (field 3), starttime is field 22: skip fields 4..=21.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names() {
        let line =
            "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(line), Some(('S', 987_654)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn current_process_is_alive_and_others_are_not_confused() {
        let me = ProcessId::current().unwrap();
        assert!(me.is_alive());
        let older = ProcessId {
            pid: me.pid,
            start_time: me.start_time.wrapping_sub(1),
        };
        assert!(!older.is_alive(), "a different start time must not match");
    }

    #[test]
    fn terminates_a_child() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let id = ProcessId::of(child.id()).unwrap();
        // The child becomes a zombie once killed: `is_alive` treats that as gone.
        assert!(id.terminate(Duration::from_secs(2)));
        let _ = child.wait();
        assert!(!id.is_alive());
    }
}
