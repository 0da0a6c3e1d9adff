//! The XDP programs go away with their owner: on drop, and when the owning process is killed.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use rvs_io::xdp::{self, Steering, TunDecap, XdpMode};

use crate::util::{Netns, skip_unless_root, wait_for};

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

#[test]
fn detach_on_drop_and_when_the_owner_is_killed() {
    if skip_unless_root("detach") {
        return;
    }
    let ns = Netns::new("det");
    ns.ip(&["link", "add", "x0", "type", "veth", "peer", "name", "x1"]);
    ns.ip(&["link", "set", "x0", "up"]);
    ns.ip(&["link", "set", "x1", "up"]);
    let query = || ns.run(|| xdp::query("x0")).unwrap();
    assert_eq!(query(), None);

    // Drop, both programs, both modes.
    for mode in [XdpMode::Native, XdpMode::Skb] {
        let s = ns.run(|| Steering::attach("x0", mode)).unwrap();
        assert_eq!(s.attached_mode(), mode);
        assert_eq!(query().map(|a| a.prog_id), Some(s.prog_id()));
        assert!(ip_shows_xdp(&ns, "x0"));
        // A second program cannot take the interface from the first.
        let busy = ns
            .run(|| TunDecap::attach("x0", XdpMode::Auto))
            .unwrap_err();
        assert_eq!(busy.raw_os_error(), Some(16), "EBUSY: {busy}");
        drop(s);
        assert_eq!(query(), None);
        assert!(!ip_shows_xdp(&ns, "x0"));
    }
    let t = ns.run(|| TunDecap::attach("x0", XdpMode::Auto)).unwrap();
    assert_eq!(
        t.attached_mode(),
        XdpMode::Native,
        "veth supports native XDP"
    );
    assert!(query().is_some());
    t.detach();
    assert_eq!(query(), None);

    // SIGKILL of the owning process.
    let Some(hold) = xdp_hold() else {
        eprintln!(
            "SKIP detach (SIGKILL part): examples/xdp_hold not built next to the test binary"
        );
        return;
    };
    for prog in ["steer", "tun_decap"] {
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
        assert!(query().is_some());
        assert!(ip_shows_xdp(&ns, "x0"));
        child.kill().unwrap(); // SIGKILL: no destructor runs
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert!(
            wait_for(Duration::from_secs(2), || query().is_none().then_some(())).is_some(),
            "{prog}: program still attached after SIGKILL"
        );
        assert!(!ip_shows_xdp(&ns, "x0"));
    }
}
