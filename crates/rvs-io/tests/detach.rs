//! The XDP programs go away with their owner: on drop, and when the owning process is killed.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use rvs_io::xdp::{self, TunDecap, XdpMode, XdpPass};

use crate::util::{Netns, skip_unless_root, steering_on, wait_for};

/// `ip -d link show` lists an XDP program as `prog/xdp id N`.
fn ip_shows_xdp(ns: &Netns, ifname: &str) -> bool {
    ns.ip(&["-d", "link", "show", "dev", ifname])
        .contains("prog/xdp")
}

/// The `xdp_hold` example, built by `cargo test` next to this test binary.
fn xdp_hold() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("examples").join("xdp_hold");
    p.exists().then_some(p)
}

/// Asserts that no XDP program is left on `ifname` after its owner let go. A child forked by a
/// test running in parallel may hold a copy of the link fd between its fork and its exec (the fd
/// is close-on-exec), which keeps the link alive for that moment.
fn detached(query: &impl Fn(&str) -> Option<xdp::XdpAttachment>, ifname: &str) {
    assert!(
        wait_for(Duration::from_secs(2), || query(ifname)
            .is_none()
            .then_some(()))
        .is_some(),
        "{ifname}: an XDP program is still attached"
    );
}

#[test]
fn detach_on_drop_and_when_the_owner_is_killed() {
    if skip_unless_root("detach") {
        return;
    }
    let ns = Netns::new("det");
    ns.ip(&["link", "add", "x0", "type", "veth", "peer", "name", "x1"]);
    ns.ip(&["link", "set", "x0", "up"]);
    ns.ip(&["link", "set", "x1", "up"]);
    let query = |ifname: &str| ns.run(|| xdp::query(ifname)).unwrap();
    assert_eq!(query("x0"), None);

    // Drop, every program, both modes. One steering program serves both ends.
    for mode in [XdpMode::Native, XdpMode::Skb] {
        let s = steering_on(&ns, &["x0", "x1"], mode).unwrap();
        assert_eq!(s.slot_count(), 2);
        for (slot, ifname) in [(0, "x0"), (1, "x1")] {
            assert_eq!(s.attached_mode(slot), Some(mode));
            assert_eq!(s.ifname(slot), Some(ifname));
            assert_eq!(
                query(ifname).map(|a| a.prog_id),
                Some(s.prog_id()),
                "the same program on every interface"
            );
            assert!(ip_shows_xdp(&ns, ifname));
        }
        assert_eq!(s.slot_of(s.ifindex(1).unwrap()), Some(1));
        assert_eq!(s.attached_mode(2), None);
        // A second program cannot take an interface from the first.
        let busy = ns
            .run(|| TunDecap::attach("x0", XdpMode::Auto))
            .unwrap_err();
        assert_eq!(busy.raw_os_error(), Some(16), "EBUSY: {busy}");
        drop(s);
        for ifname in ["x0", "x1"] {
            detached(&query, ifname);
            assert!(!ip_shows_xdp(&ns, ifname));
        }
    }
    // Attaching twice to the same interface is refused without touching the first link.
    let mut s = steering_on(&ns, &["x0"], XdpMode::Native).unwrap();
    let again = ns.run(|| s.attach("x0", XdpMode::Native)).unwrap_err();
    assert!(
        matches!(again, rvs_io::IoError::InvalidArgument(_)),
        "{again}"
    );
    assert_eq!(query("x0").map(|a| a.prog_id), Some(s.prog_id()));
    s.detach();
    detached(&query, "x0");

    let t = ns.run(|| TunDecap::attach("x0", XdpMode::Auto)).unwrap();
    assert_eq!(
        t.attached_mode(),
        XdpMode::Native,
        "veth supports native XDP"
    );
    assert!(query("x0").is_some());
    t.detach();
    detached(&query, "x0");
    let p = ns.run(|| XdpPass::attach("x0")).unwrap();
    assert_eq!(query("x0").map(|a| a.prog_id), Some(p.prog_id()));
    drop(p);
    detached(&query, "x0");

    // SIGKILL of the owning process.
    let Some(hold) = xdp_hold() else {
        eprintln!(
            "SKIP detach (SIGKILL part): examples/xdp_hold not built next to the test binary"
        );
        return;
    };
    for prog in ["steer", "tun_decap", "xdp_pass"] {
        let mut child = Command::new(&hold)
            .args([prog, "x0", ns.name.as_str(), "native"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("attached x0 Native"),
            "xdp_hold said {line:?}"
        );
        assert!(query("x0").is_some());
        assert!(ip_shows_xdp(&ns, "x0"));
        child.kill().unwrap(); // SIGKILL: no destructor runs
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert!(
            wait_for(Duration::from_secs(2), || query("x0")
                .is_none()
                .then_some(()))
            .is_some(),
            "{prog}: program still attached after SIGKILL"
        );
        assert!(!ip_shows_xdp(&ns, "x0"));
    }
}
