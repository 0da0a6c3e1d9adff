//! The kernel state `rvs realserver` reads and changes: links, addresses, sysctls — through
//! `rvs-io` (netlink, `/proc/sys`), in the calling thread's network namespace.

use std::io;
use std::net::IpAddr;

use rvs_io::IoError;
use rvs_io::netlink::Netlink;

use super::RealServerError;

/// `IFF_LOOPBACK` (linux/if.h).
const IFF_LOOPBACK: u32 = 0x8;

/// A network interface of the current namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) name: String,
    pub(crate) up: bool,
    pub(crate) loopback: bool,
}

fn ifindex(nl: &mut Netlink, dev: &str) -> Result<u32, RealServerError> {
    Ok(nl.link_by_name(dev)?.ifindex)
}

/// Every link of the namespace.
pub(crate) fn links() -> Result<Vec<Link>, RealServerError> {
    Ok(Netlink::open()?
        .links()?
        .into_iter()
        .map(|l| Link {
            up: l.up,
            loopback: l.flags & IFF_LOOPBACK != 0,
            name: l.name,
        })
        .collect())
}

/// Addresses (with prefix length) configured on `dev`; empty if `dev` does not exist.
pub(crate) fn addresses(dev: &str) -> Result<Vec<(IpAddr, u8)>, RealServerError> {
    let mut nl = Netlink::open()?;
    let idx = match nl.link_by_name(dev) {
        Ok(l) => l.ifindex,
        Err(IoError::NoSuchInterface(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    Ok(nl
        .addresses(Some(idx))?
        .into_iter()
        .map(|a| (a.addr, a.prefix_len))
        .collect())
}

/// Adds `addr/prefix_len` to `dev` (IPv6 without DAD).
pub(crate) fn add_address(dev: &str, addr: IpAddr, prefix_len: u8) -> Result<(), RealServerError> {
    let mut nl = Netlink::open()?;
    let idx = ifindex(&mut nl, dev)?;
    nl.add_address(idx, addr, prefix_len)?;
    Ok(())
}

/// Removes `addr/prefix_len` from `dev`.
pub(crate) fn del_address(dev: &str, addr: IpAddr, prefix_len: u8) -> Result<(), RealServerError> {
    let mut nl = Netlink::open()?;
    let idx = ifindex(&mut nl, dev)?;
    nl.del_address(idx, addr, prefix_len)?;
    Ok(())
}

/// Sets `dev` administratively up or down.
pub(crate) fn set_link_up(dev: &str, up: bool) -> Result<(), RealServerError> {
    let mut nl = Netlink::open()?;
    let idx = ifindex(&mut nl, dev)?;
    nl.set_link_up(idx, up)?;
    Ok(())
}

/// Reads a sysctl (slash form, relative to `/proc/sys`); `Ok(None)` if it does not exist
/// (interface gone, no IPv6).
pub(crate) fn sysctl_read(key: &str) -> Result<Option<String>, RealServerError> {
    match rvs_io::sysctl::get(key) {
        Ok(v) => Ok(Some(v.trim().to_owned())),
        Err(IoError::Sysctl { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Writes a sysctl.
pub(crate) fn sysctl_write(key: &str, value: &str) -> Result<(), RealServerError> {
    rvs_io::sysctl::set(key, value)?;
    Ok(())
}

/// Inode of the current network namespace: names the namespace in state file names.
pub(crate) fn netns_inode() -> Result<u64, RealServerError> {
    Ok(rvs_io::netns::current_id()?)
}
