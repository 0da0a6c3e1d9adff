//! The kernel state `rvs realserver` reads and changes: links, addresses, sysctls.
//!
//! Sysctls are files under `/proc/sys` (per network namespace for `net/`). Links and addresses
//! are read and changed with iproute2 (`ip -j`), the same netlink operations `rvs-io` offers;
//! this module is the single place to switch over.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;

use super::RealServerError;

/// A network interface of the current namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) name: String,
    pub(crate) up: bool,
    pub(crate) loopback: bool,
}

#[derive(Deserialize)]
struct IpLink {
    ifname: String,
    #[serde(default)]
    flags: Vec<String>,
}

#[derive(Deserialize)]
struct IpAddrDev {
    #[serde(default)]
    addr_info: Vec<IpAddrInfo>,
}

#[derive(Deserialize)]
struct IpAddrInfo {
    local: Option<IpAddr>,
    prefixlen: Option<u8>,
}

fn ip_json(args: &[&str]) -> Result<Vec<u8>, RealServerError> {
    let out = Command::new("ip")
        .arg("-j")
        .args(args)
        .output()
        .map_err(|e| RealServerError::Os {
            what: format!("ip -j {}", args.join(" ")),
            source: e,
        })?;
    if !out.status.success() {
        return Err(RealServerError::Command {
            cmd: format!("ip -j {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out.stdout)
}

fn ip(args: &[&str]) -> Result<(), RealServerError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| RealServerError::Os {
            what: format!("ip {}", args.join(" ")),
            source: e,
        })?;
    if !out.status.success() {
        return Err(RealServerError::Command {
            cmd: format!("ip {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// Every link of the namespace.
pub(crate) fn links() -> Result<Vec<Link>, RealServerError> {
    let raw = ip_json(&["link", "show"])?;
    let links: Vec<IpLink> = serde_json::from_slice(&raw)
        .map_err(|e| RealServerError::Parse(format!("ip -j link show: {e}")))?;
    Ok(links
        .into_iter()
        .map(|l| Link {
            up: l.flags.iter().any(|f| f == "UP"),
            loopback: l.flags.iter().any(|f| f == "LOOPBACK"),
            name: l.ifname,
        })
        .collect())
}

/// Addresses (with prefix length) configured on `dev`.
pub(crate) fn addresses(dev: &str) -> Result<Vec<(IpAddr, u8)>, RealServerError> {
    let raw = ip_json(&["addr", "show", "dev", dev])?;
    let devs: Vec<IpAddrDev> = serde_json::from_slice(&raw)
        .map_err(|e| RealServerError::Parse(format!("ip -j addr show dev {dev}: {e}")))?;
    Ok(devs
        .into_iter()
        .flat_map(|d| d.addr_info)
        .filter_map(|a| Some((a.local?, a.prefixlen?)))
        .collect())
}

/// Adds `addr/prefix_len` to `dev`.
pub(crate) fn add_address(dev: &str, addr: IpAddr, prefix_len: u8) -> Result<(), RealServerError> {
    ip(&["addr", "add", &format!("{addr}/{prefix_len}"), "dev", dev])
}

/// Removes `addr/prefix_len` from `dev`.
pub(crate) fn del_address(dev: &str, addr: IpAddr, prefix_len: u8) -> Result<(), RealServerError> {
    ip(&["addr", "del", &format!("{addr}/{prefix_len}"), "dev", dev])
}

/// Sets `dev` administratively up or down.
pub(crate) fn set_link_up(dev: &str, up: bool) -> Result<(), RealServerError> {
    ip(&["link", "set", "dev", dev, if up { "up" } else { "down" }])
}

/// `/proc/sys/<key>` for a key written with slashes (`net/ipv4/conf/all/arp_ignore`).
fn sysctl_path(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key)
}

/// Reads a sysctl; `Ok(None)` if it does not exist (interface gone, no IPv6).
pub(crate) fn sysctl_read(key: &str) -> Result<Option<String>, RealServerError> {
    match fs::read_to_string(sysctl_path(key)) {
        Ok(v) => Ok(Some(v.trim().to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RealServerError::Os {
            what: format!("read sysctl {key}"),
            source: e,
        }),
    }
}

/// Writes a sysctl.
pub(crate) fn sysctl_write(key: &str, value: &str) -> Result<(), RealServerError> {
    fs::write(sysctl_path(key), value).map_err(|e| RealServerError::Os {
        what: format!("write sysctl {key}={value}"),
        source: e,
    })
}

/// Inode of the current network namespace: names the namespace in state file names.
pub(crate) fn netns_inode() -> Result<u64, RealServerError> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self/ns/net")
        .map(|m| m.ino())
        .map_err(|e| RealServerError::Os {
            what: "stat /proc/self/ns/net".into(),
            source: e,
        })
}
