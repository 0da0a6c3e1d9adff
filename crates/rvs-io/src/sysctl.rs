//! Kernel parameters under `/proc/sys`.
//!
//! Names use either the dotted `sysctl(8)` form (`net.ipv4.ip_forward`) or a slash path relative
//! to `/proc/sys` (`net/ipv4/conf/eth0.100/arp_ignore`; needed when a component such as a VLAN
//! interface name contains a dot). `net.*` values belong to a network namespace: they are read
//! and written in the namespace of the calling thread (see [`crate::netns`]).
//!
//! ```no_run
//! # fn main() -> Result<(), rvs_io::IoError> {
//! let old = rvs_io::sysctl::set("net.ipv4.conf.lo.arp_ignore", "1")?;
//! // ... later, undo:
//! rvs_io::sysctl::set("net.ipv4.conf.lo.arp_ignore", &old)?;
//! # Ok(()) }
//! ```

use std::path::PathBuf;

use crate::IoError;

/// The file under `/proc/sys` for a sysctl name.
pub fn path(name: &str) -> PathBuf {
    let rel = if name.contains('/') {
        name.trim_start_matches('/').to_owned()
    } else {
        name.replace('.', "/")
    };
    PathBuf::from("/proc/sys").join(rel)
}

/// Reads a sysctl; the value is trimmed of its trailing newline (multi-value entries such as
/// `net.ipv4.ip_local_port_range` keep their inner tabs).
pub fn get(name: &str) -> Result<String, IoError> {
    let p = path(name);
    std::fs::read_to_string(&p)
        .map(|s| s.trim_end_matches('\n').to_owned())
        .map_err(|source| IoError::Sysctl {
            path: p.display().to_string(),
            source,
        })
}

/// Writes a sysctl and returns the value it had before, so the caller can restore it.
pub fn set(name: &str, value: &str) -> Result<String, IoError> {
    let old = get(name)?;
    let p = path(name);
    std::fs::write(&p, value).map_err(|source| IoError::Sysctl {
        path: p.display().to_string(),
        source,
    })?;
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_proc_sys_paths() {
        assert_eq!(
            path("net.ipv4.ip_forward"),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            path("net/ipv4/conf/eth0.100/arp_ignore"),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/arp_ignore")
        );
    }

    #[test]
    fn reads_a_sysctl_every_kernel_has() {
        let v = get("kernel.ostype").unwrap();
        assert_eq!(v, "Linux");
        assert!(get("net.ipv4.no_such_knob").is_err());
    }
}
