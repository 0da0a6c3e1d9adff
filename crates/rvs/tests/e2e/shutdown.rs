//! rvsd stopped by SIGTERM or SIGKILL: no XDP program stays on the director's interfaces (the
//! programs hang on bpf_links owned by the process), and the VIP goes silent.

use std::thread;
use std::time::{Duration, Instant};

use super::lab::{Fam, Lab, mac_of, ok};
use super::neigh;

/// The text of a log without ANSI colour sequences.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ … final byte in @..~
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether every thread of `pid` has exited (zombie or gone).
fn all_threads_exited(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat")).map_or(true, |stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_none_or(|state| matches!(state, "Z" | "X"))
        })
    })
}

fn xdp_on(lab: &Lab, dev: &str) -> Option<rvs_io::xdp::XdpAttachment> {
    let dev2 = dev.to_owned();
    rvs_io::netns::run_in(&lab.plan.director, move || rvs_io::xdp::query(&dev2))
        .unwrap()
        .unwrap_or_else(|e| panic!("xdp query {dev}: {e}"))
}

fn ip_link(lab: &Lab, dev: &str) -> String {
    ok(
        "ip",
        &["-n", &lab.plan.director, "-d", "link", "show", "dev", dev],
        10,
    )
}

/// Stops rvsd with `signal` (`TERM` or `KILL`) and checks what remains.
pub(crate) fn check(lab: &Lab, signal: &str) {
    let mode = lab.mode;
    let rvsd = lab.rvsd();
    assert!(rvsd.id.is_alive(), "rvsd is not running");
    let devs = lab.plan.director_interfaces.clone();
    for dev in &devs {
        let att = xdp_on(lab, dev);
        assert!(
            att.is_some(),
            "{mode}: no XDP program on {dev} while rvsd runs"
        );
        assert!(ip_link(lab, dev).contains("xdp"), "ip -d link show {dev}");
    }

    ok(
        "kill",
        &[&format!("-{signal}"), &rvsd.id.pid.to_string()],
        10,
    );
    // The thread-group leader turns zombie before the other threads have finished exiting (and
    // released the shared file table with the bpf_link): wait for every thread.
    super::lab::wait_for(&format!("rvsd to exit after SIG{signal}"), 15.0, || {
        !rvsd.id.is_alive() && all_threads_exited(rvsd.id.pid)
    });

    let exited = Instant::now();
    for dev in &devs {
        // Releasing a link may be finished by a kernel worker an instant later.
        let mut att = xdp_on(lab, dev);
        while att.is_some() && exited.elapsed() < Duration::from_secs(2) {
            thread::sleep(Duration::from_millis(10));
            att = xdp_on(lab, dev);
        }
        assert_eq!(
            att,
            None,
            "{mode} SIG{signal}: XDP program left on {dev} {:?} after rvsd exited",
            exited.elapsed()
        );
        let link = ip_link(lab, dev);
        assert!(
            !link.contains("xdp"),
            "{mode} SIG{signal}: `ip -d link show {dev}` still shows XDP:\n{link}"
        );
    }
    let log = strip_ansi(&std::fs::read_to_string(&rvsd.log).unwrap());
    if signal == "TERM" {
        assert!(log.contains("SIGTERM: shutting down"), "{log}");
        for dev in &devs {
            assert!(
                log.lines().any(|l| l.contains("XDP steering detached")
                    && l.contains(&format!("interface={dev}"))),
                "{mode}: rvsd's log does not say it detached {dev}:\n{log}"
            );
        }
        assert!(log.contains("rvsd stopped"), "{log}");
        assert!(!lab.socket.exists(), "rvsd left its control socket");
    } else {
        // Killed: rvsd could say nothing; the kernel released the links with the process.
        assert!(!log.contains("XDP steering detached"), "{log}");
    }

    // Nobody answers for the VIP any more.
    let p = &lab.plan;
    let router_mac = mac_of(&p.router, &p.router_lan_dev);
    for fam in Fam::BOTH {
        let seen = neigh::probe(
            &p.router,
            &p.router_lan_dev,
            router_mac,
            fam.addr(0, 1),
            fam.vip(),
            2,
            Duration::from_millis(700),
        );
        assert!(
            seen.answers.is_empty(),
            "{mode} {fam}: the VIP is still answered after SIG{signal}: {:?}",
            seen.answers
        );
    }
    eprintln!(
        "[{mode}] rvsd stopped by SIG{signal}: no XDP program on {}; {}VIP silent",
        devs.join(", "),
        if signal == "TERM" {
            "log says detached; "
        } else {
            ""
        }
    );
}
