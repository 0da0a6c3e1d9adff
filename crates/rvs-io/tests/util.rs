//! Namespaces, veth pairs and skip logic for the root-only tests.

use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use rvs_io::netlink::{MacAddr, Netlink};
use rvs_io::netns;
use rvs_io::xdp::{Steering, SteeringConfig, XdpMode};

/// True (after printing why) when the test cannot run here: not root, or no `ip` tool.
pub(crate) fn skip_unless_root(test: &str) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid_zero = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    if !euid_zero {
        eprintln!("SKIP {test}: needs root (network namespaces, XDP, AF_XDP)");
        return true;
    }
    if Command::new("ip").arg("-V").output().is_err() {
        eprintln!("SKIP {test}: needs the `ip` tool (iproute2)");
        return true;
    }
    false
}

/// Runs `ip ARGS`, panicking with its stderr on failure; returns stdout.
pub(crate) fn ip(args: &[&str]) -> String {
    run("ip", args)
}

/// Runs a command, panicking with its stderr on failure; returns stdout.
pub(crate) fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace made for one test, deleted on drop (even when the test fails).
#[derive(Debug)]
pub(crate) struct Netns {
    pub(crate) name: String,
}

impl Netns {
    pub(crate) fn new(tag: &str) -> Self {
        let name = format!("rvsio-{tag}-{}", std::process::id());
        // A leftover from a crashed run of the same pid would make `add` fail.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NAME ARGS`.
    pub(crate) fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["-n", self.name.as_str()];
        v.extend_from_slice(args);
        ip(&v)
    }

    /// Runs `f` on this thread inside the namespace.
    pub(crate) fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        netns::run_in(&self.name, f).expect("enter netns")
    }

    /// MAC address of an interface in this namespace.
    pub(crate) fn mac(&self, ifname: &str) -> MacAddr {
        self.run(|| Netlink::open().unwrap().link_by_name(ifname).unwrap())
            .mac
            .expect("interface has a MAC")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Joins `a:if_a` and `b:if_b` with a veth pair, addresses them and brings them up.
/// IPv6 addresses are added with `nodad` so they are usable at once.
pub(crate) fn veth(
    a: &Netns,
    if_a: &str,
    addrs_a: &[&str],
    b: &Netns,
    if_b: &str,
    addrs_b: &[&str],
) {
    a.ip(&[
        "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", &b.name,
    ]);
    for (ns, ifname, addrs) in [(a, if_a, addrs_a), (b, if_b, addrs_b)] {
        for addr in addrs {
            if addr.contains(':') {
                ns.ip(&["addr", "add", addr, "dev", ifname, "nodad"]);
            } else {
                ns.ip(&["addr", "add", addr, "dev", ifname]);
            }
        }
        ns.ip(&["link", "set", ifname, "up"]);
    }
}

/// Polls `f` every 10 ms until it returns `Some` or `timeout` passes.
pub(crate) fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Map sizes for tests: small, so loading is quick.
pub(crate) fn test_config() -> SteeringConfig {
    SteeringConfig {
        fast_conns_max: 4096,
        fast_stats_max: 256,
    }
}

/// Loads the steering program and attaches it to `ifnames` (slots 0, 1, ...) inside `ns`.
pub(crate) fn steering_on(
    ns: &Netns,
    ifnames: &[&str],
    mode: XdpMode,
) -> Result<Steering, rvs_io::IoError> {
    ns.run(|| {
        let mut s = Steering::load(test_config())?;
        for ifname in ifnames {
            s.attach(ifname, mode)?;
        }
        Ok(s)
    })
}

pub(crate) fn ipaddr(s: &str) -> IpAddr {
    s.parse().unwrap()
}
