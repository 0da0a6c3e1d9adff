//! Attaches an rvs XDP program and holds it until killed: the test suite uses it to check that
//! a bpf_link dies with its process (SIGKILL included). Also handy by hand:
//!
//! ```text
//! xdp_hold <steer|tun_decap|xdp_pass> <ifname> [netns] [native|skb|auto]
//! ```
//!
//! Prints `attached <ifname> <mode> <prog id>` once the program is attached, then waits until
//! its standard input closes.

use std::io::{BufRead, Write};

use rvs_io::xdp::{Steering, SteeringConfig, TunDecap, XdpMode, XdpPass};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: xdp_hold <steer|tun_decap|xdp_pass> <ifname> [netns] [native|skb|auto]");
        std::process::exit(2);
    }
    let _ns = match args.get(3).filter(|s| !s.is_empty() && *s != "-") {
        Some(ns) => Some(rvs_io::netns::enter(ns)?),
        None => None,
    };
    let mode = match args.get(4).map(String::as_str) {
        Some("native") => XdpMode::Native,
        Some("skb") => XdpMode::Skb,
        _ => XdpMode::Auto,
    };
    let ifname = &args[2];
    // Keep whichever program we attached alive until stdin closes.
    let (held, mode, id): (Box<dyn std::fmt::Debug>, XdpMode, u32) = match args[1].as_str() {
        "steer" => {
            let mut s = Steering::load(SteeringConfig::default())?;
            let slot = s.attach(ifname, mode)?;
            let (m, id) = (s.attached_mode(slot).unwrap_or(mode), s.prog_id());
            (Box::new(s), m, id)
        }
        "tun_decap" => {
            let t = TunDecap::attach(ifname, mode)?;
            let (m, id) = (t.attached_mode(), t.prog_id());
            (Box::new(t), m, id)
        }
        "xdp_pass" => {
            let p = XdpPass::attach(ifname)?;
            let id = p.prog_id();
            (Box::new(p), XdpMode::Native, id)
        }
        other => return Err(format!("unknown program {other}").into()),
    };
    println!("attached {ifname} {mode:?} {id}");
    std::io::stdout().flush()?;
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
    }
    drop(held);
    Ok(())
}
