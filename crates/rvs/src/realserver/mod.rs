//! `rvs realserver dr|tun`: prepares a Linux host to be an LVS real server, and undoes exactly that.
//!
//! What [`prepare`] does (the LVS "hidden VIP" recipe):
//!
//! * every VIP goes on `lo` as a host address (`/32`, `/128`), so the kernel accepts packets for it;
//! * with at least one IPv4 VIP: `arp_ignore=1` (answer ARP only for addresses of the receiving
//!   interface, so never for the VIP on `lo`) and `arp_announce=2` (never use the VIP as ARP source)
//!   on `all` and on every non-loopback interface that is up. Values already stricter
//!   (`arp_ignore=2`) are left alone;
//! * IPv6 needs nothing: Linux answers a Neighbour Solicitation only for addresses of the interface
//!   it arrives on (`ndisc_recv_ns` looks the target up strictly on that device), so a VIP on `lo`
//!   is never advertised on `eth0`, and `lo` performs no DAD. `tests/lab_realserver.rs` checks this;
//! * TUN additionally: decapsulation. Where the kernel has the `ipip` / `ip6_tunnel` fallback
//!   devices (`tunl0`, `ip6tnl0`) they are set up and `rp_filter` is made loose on them (the inner
//!   packet arrives on the tunnel device but its source is routed out of the physical one).
//!   Otherwise rvs's XDP program strips the outer header on the chosen interfaces; the process
//!   that attached it stays in the foreground and holds it (see [`Prepared::hold`]); `rp_filter`
//!   is relaxed from strict to loose on `all` and on those interfaces.
//!
//! Every change is recorded before it is made in a state file (default
//! `/run/rvs/realserver-<mode>-net<netns inode>.json`): the sysctl's old value, addresses that did
//! not exist, links that were down. [`undo`] reverts exactly those, skipping anything someone else
//! changed since, and stops the XDP holder. Running [`prepare`] again is idempotent.

mod decap;
mod os;
mod state;

pub use decap::XdpDecap;
pub use state::{AddedAddress, DecapState, RealServerState, SysctlChange};

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use rvs_io::xdp::XdpMode;

use crate::lab::process::ProcessId;

/// Directory of the default state files.
pub const STATE_DIR: &str = "/run/rvs";

/// LVS forwarding method the real server is prepared for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Direct routing: the director rewrites only MAC addresses.
    Dr,
    /// IP tunnelling: the director encapsulates in IPIP / IP6IP6.
    Tun,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dr => "dr",
            Self::Tun => "tun",
        })
    }
}

/// Why preparing or undoing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RealServerError {
    /// No `--vip` given.
    #[error("no --vip given")]
    NoVip,
    /// A system call or file operation failed.
    #[error("{what}: {source}")]
    Os {
        /// What was attempted.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The state file is not valid JSON of the expected shape.
    #[error("state file {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The state file belongs to another mode or namespace.
    #[error("state file {path} {why}; run --undo with the matching command or remove it")]
    StateMismatch {
        /// The file.
        path: PathBuf,
        /// What does not match.
        why: String,
    },
    /// A `rvs realserver tun` holding the XDP program already runs with other VIPs.
    #[error(
        "rvs realserver tun already runs as pid {pid} for VIPs {vips:?}; run --undo first to change VIPs"
    )]
    HolderRunning {
        /// Its pid.
        pid: u32,
        /// The VIPs it decapsulates.
        vips: Vec<IpAddr>,
    },
    /// Neither the kernel nor rvs can decapsulate here.
    #[error("no TUN decapsulation available: {0}")]
    DecapUnavailable(String),
    /// Attaching or configuring the XDP program failed.
    #[error("XDP decapsulation: {0}")]
    Xdp(String),
    /// Netlink, sysctl or namespace access failed.
    #[error(transparent)]
    Io(#[from] rvs_io::IoError),
}

/// What to prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// DR or TUN.
    pub mode: Mode,
    /// The VIPs.
    pub vips: Vec<IpAddr>,
    /// TUN: interfaces for the XDP program (empty = every non-loopback interface that is up).
    pub interfaces: Vec<String>,
    /// State file (None = [`default_state_path`]).
    pub state_path: Option<PathBuf>,
    /// TUN: how to attach the XDP program.
    pub xdp_mode: XdpMode,
}

/// Result of [`prepare`].
#[derive(Debug)]
pub struct Prepared {
    /// Where the changes are recorded.
    pub state_path: PathBuf,
    /// One line per change made now (empty when everything was already in place).
    pub changes: Vec<String>,
    /// Notes (values left alone, decapsulation already held by another process, …).
    pub notes: Vec<String>,
    /// TUN with XDP decapsulation: the attached program. The caller must keep it (and stay
    /// running) for as long as the real server serves; it detaches when dropped or at exit.
    pub hold: Option<XdpDecap>,
}

/// `/run/rvs/realserver-<mode>-net<inode>.json` for the current network namespace.
///
/// `/run` is shared by all namespaces (`ip netns exec` does not remount it), hence the namespace
/// inode in the name.
pub fn default_state_path(mode: Mode) -> Result<PathBuf, RealServerError> {
    Ok(PathBuf::from(STATE_DIR).join(format!("realserver-{mode}-net{}.json", os::netns_inode()?)))
}

fn host_prefix(addr: &IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// Records and makes changes, saving the state after each so an interrupted run can be undone.
struct Recorder<'a> {
    path: &'a Path,
    state: RealServerState,
    changes: Vec<String>,
    notes: Vec<String>,
}

impl Recorder<'_> {
    fn save(&self) -> Result<(), RealServerError> {
        self.state.save(self.path)
    }

    /// Ensures `key` holds one of `accept`, writing `accept[0]` otherwise.
    fn sysctl(&mut self, key: &str, accept: &[&str]) -> Result<(), RealServerError> {
        let Some(current) = os::sysctl_read(key)? else {
            self.notes
                .push(format!("{} does not exist, skipped", dotted(key)));
            return Ok(());
        };
        if accept.contains(&current.as_str()) {
            return Ok(());
        }
        let new = accept[0];
        match self.state.sysctls.iter_mut().find(|c| c.key == key) {
            // Changed by us before and by someone else since: keep the original old value.
            Some(change) => new.clone_into(&mut change.new),
            None => self.state.sysctls.push(SysctlChange {
                key: key.to_owned(),
                old: current.clone(),
                new: new.to_owned(),
            }),
        }
        self.save()?;
        os::sysctl_write(key, new)?;
        self.changes
            .push(format!("{} {current} -> {new}", dotted(key)));
        Ok(())
    }

    fn link_up(&mut self, links: &[os::Link], dev: &str) -> Result<(), RealServerError> {
        if links.iter().any(|l| l.name == dev && !l.up) {
            if !self.state.links_set_up.iter().any(|d| d == dev) {
                self.state.links_set_up.push(dev.to_owned());
            }
            self.save()?;
            os::set_link_up(dev, true)?;
            self.changes.push(format!("link {dev} set up"));
        }
        Ok(())
    }
}

/// `net/ipv4/conf/all/arp_ignore` → `net.ipv4.conf.all.arp_ignore` (for messages).
fn dotted(key: &str) -> String {
    key.replace('/', ".")
}

/// Prepares the host; idempotent. See the module documentation for what is changed.
pub fn prepare(opts: &Options) -> Result<Prepared, RealServerError> {
    if opts.vips.is_empty() {
        return Err(RealServerError::NoVip);
    }
    let path = match &opts.state_path {
        Some(p) => p.clone(),
        None => default_state_path(opts.mode)?,
    };
    let inode = os::netns_inode()?;
    let state = match RealServerState::load(&path)? {
        Some(s) if s.mode != opts.mode => {
            return Err(RealServerError::StateMismatch {
                path,
                why: format!("records a `{}` preparation", s.mode),
            });
        }
        Some(s) if s.netns_inode != inode => {
            return Err(RealServerError::StateMismatch {
                path,
                why: format!("belongs to network namespace inode {}", s.netns_inode),
            });
        }
        Some(s) => s,
        None => RealServerState::new(opts.mode, inode),
    };
    let mut rec = Recorder {
        path: &path,
        state,
        changes: Vec::new(),
        notes: Vec::new(),
    };
    for vip in &opts.vips {
        if !rec.state.vips.contains(vip) {
            rec.state.vips.push(*vip);
        }
    }
    rec.save()?;

    let links = os::links()?;
    let lo = links
        .iter()
        .find(|l| l.loopback)
        .map_or("lo", |l| l.name.as_str())
        .to_owned();
    rec.link_up(&links, &lo)?;

    let present = os::addresses(&lo)?;
    for vip in &opts.vips {
        let plen = host_prefix(vip);
        if present.iter().any(|(a, _)| a == vip) {
            continue;
        }
        rec.state.addresses.push(AddedAddress {
            dev: lo.clone(),
            addr: *vip,
            prefix_len: plen,
        });
        rec.save()?;
        os::add_address(&lo, *vip, plen)?;
        rec.changes.push(format!("added {vip}/{plen} on {lo}"));
    }

    let up: Vec<String> = links
        .iter()
        .filter(|l| l.up && !l.loopback)
        .map(|l| l.name.clone())
        .collect();
    if rec.state.vips.iter().any(IpAddr::is_ipv4) {
        for dev in std::iter::once("all").chain(up.iter().map(String::as_str)) {
            rec.sysctl(&format!("net/ipv4/conf/{dev}/arp_ignore"), &["1", "2"])?;
            rec.sysctl(&format!("net/ipv4/conf/{dev}/arp_announce"), &["2"])?;
        }
    }

    let mut hold = None;
    if opts.mode == Mode::Tun {
        hold = prepare_decap(&mut rec, opts, &links, &up)?;
    }
    rec.save()?;
    let (changes, notes) = (rec.changes, rec.notes);
    Ok(Prepared {
        state_path: path,
        changes,
        notes,
        hold,
    })
}

fn prepare_decap(
    rec: &mut Recorder<'_>,
    opts: &Options,
    links: &[os::Link],
    up: &[String],
) -> Result<Option<XdpDecap>, RealServerError> {
    let vips = rec.state.vips.clone();
    if let Some(devices) = decap::kernel_devices(links, &vips) {
        for dev in &devices {
            rec.link_up(links, dev)?;
            if dev == decap::KERNEL_IPIP_DEV {
                rec.sysctl(&format!("net/ipv4/conf/{dev}/rp_filter"), &["2", "0"])?;
            }
        }
        rec.sysctl("net/ipv4/conf/all/rp_filter", &["2", "0"])?;
        rec.state.decap = Some(DecapState::Kernel { devices });
        rec.save()?;
        return Ok(None);
    }

    if let Some(DecapState::Xdp { holder, .. }) = &rec.state.decap
        && holder.is_alive()
    {
        let mut wanted = opts.vips.clone();
        wanted.sort();
        let mut held = vips;
        held.sort();
        wanted.dedup();
        held.dedup();
        if wanted != held {
            return Err(RealServerError::HolderRunning {
                pid: holder.pid,
                vips: held,
            });
        }
        rec.notes.push(format!(
            "XDP decapsulation already held by pid {}",
            holder.pid
        ));
        return Ok(None);
    }

    let interfaces = if opts.interfaces.is_empty() {
        up.to_vec()
    } else {
        opts.interfaces.clone()
    };
    if interfaces.is_empty() {
        return Err(RealServerError::Xdp(
            "no interface that is up to attach to".into(),
        ));
    }
    if vips.iter().any(IpAddr::is_ipv4) {
        rec.sysctl("net/ipv4/conf/all/rp_filter", &["2", "0"])?;
        for dev in &interfaces {
            rec.sysctl(&format!("net/ipv4/conf/{dev}/rp_filter"), &["2", "0"])?;
        }
    }
    let holder = ProcessId::current()
        .ok_or_else(|| RealServerError::Xdp("cannot read own /proc/self/stat".into()))?;
    rec.state.decap = Some(DecapState::Xdp {
        interfaces: interfaces.clone(),
        holder,
    });
    rec.save()?;
    let decap = match decap::attach_xdp(&interfaces, &vips, opts.xdp_mode) {
        Ok(d) => d,
        Err(e) => {
            // Nothing is attached: forget the holder; the other changes stay recorded for --undo.
            rec.state.decap = None;
            rec.save()?;
            return Err(e);
        }
    };
    rec.changes.push(format!(
        "XDP decapsulation attached on {}",
        interfaces.join(", ")
    ));
    Ok(Some(decap))
}

/// Result of [`undo`].
#[derive(Debug, Default)]
pub struct Undone {
    /// One line per change reverted.
    pub changes: Vec<String>,
    /// Things left alone (changed by someone else since, or already gone).
    pub notes: Vec<String>,
}

/// Reverts what the state file records, then removes it. Without a state file it does nothing.
pub fn undo(mode: Mode, state_path: Option<&Path>) -> Result<Undone, RealServerError> {
    let path = match state_path {
        Some(p) => p.to_owned(),
        None => default_state_path(mode)?,
    };
    let mut out = Undone::default();
    let Some(state) = RealServerState::load(&path)? else {
        out.notes.push(format!(
            "nothing to undo ({} does not exist)",
            path.display()
        ));
        return Ok(out);
    };
    if state.mode != mode {
        return Err(RealServerError::StateMismatch {
            path,
            why: format!("records a `{}` preparation", state.mode),
        });
    }
    if state.netns_inode != os::netns_inode()? {
        return Err(RealServerError::StateMismatch {
            path,
            why: format!("belongs to network namespace inode {}", state.netns_inode),
        });
    }
    match &state.decap {
        Some(DecapState::Xdp { holder, interfaces }) => {
            if holder.is_alive() {
                if !holder.terminate(Duration::from_secs(5)) {
                    return Err(RealServerError::Xdp(format!(
                        "holder pid {} did not exit",
                        holder.pid
                    )));
                }
                out.changes.push(format!(
                    "stopped pid {} (XDP decapsulation on {})",
                    holder.pid,
                    interfaces.join(", ")
                ));
            }
        }
        Some(DecapState::Kernel { .. }) | None => {}
    }
    for change in state.sysctls.iter().rev() {
        match os::sysctl_read(&change.key)? {
            Some(v) if v == change.new => {
                os::sysctl_write(&change.key, &change.old)?;
                out.changes
                    .push(format!("{} {} -> {}", dotted(&change.key), v, change.old));
            }
            Some(v) => out.notes.push(format!(
                "{} is {v}, not {} as set by rvs: left alone",
                dotted(&change.key),
                change.new
            )),
            None => out
                .notes
                .push(format!("{} no longer exists", dotted(&change.key))),
        }
    }
    for a in state.addresses.iter().rev() {
        let present = os::addresses(&a.dev).unwrap_or_default();
        if present
            .iter()
            .any(|(addr, plen)| *addr == a.addr && *plen == a.prefix_len)
        {
            os::del_address(&a.dev, a.addr, a.prefix_len)?;
            out.changes.push(format!(
                "removed {}/{} from {}",
                a.addr, a.prefix_len, a.dev
            ));
        } else {
            out.notes.push(format!(
                "{}/{} already gone from {}",
                a.addr, a.prefix_len, a.dev
            ));
        }
    }
    let links = os::links()?;
    for dev in state.links_set_up.iter().rev() {
        if links.iter().any(|l| &l.name == dev && l.up) {
            os::set_link_up(dev, false)?;
            out.changes.push(format!("link {dev} set down"));
        }
    }
    std::fs::remove_file(&path).map_err(|e| RealServerError::Os {
        what: format!("remove {}", path.display()),
        source: e,
    })?;
    Ok(out)
}
