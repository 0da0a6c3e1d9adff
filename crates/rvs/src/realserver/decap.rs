//! TUN decapsulation on a real server: the kernel's fallback tunnel devices where the `ipip` /
//! `ip6_tunnel` modules exist, rvs's XDP program (`rvs_io::xdp::TunDecap`) where they do not.
//!
//! The XDP program is attached through a bpf_link owned by this process: it stays attached
//! exactly as long as the process lives (even SIGKILL detaches it), so `rvs realserver tun` stays
//! in the foreground. Pinning the link in bpffs instead would outlive crashes and need bpffs
//! mounted and a separate detach path; a foreground holder under a service manager is simpler and
//! cannot leave a stale program behind.

use std::fmt;
use std::net::IpAddr;

use rvs_io::xdp::{TunDecap, XdpMode};

use super::RealServerError;
use super::os::Link;

/// The kernel's IPIP fallback device (exists in every namespace once `ipip` is loaded).
pub(crate) const KERNEL_IPIP_DEV: &str = "tunl0";
/// The kernel's IPv6 tunnel fallback device (`ip6_tunnel`, decapsulates IPv4/IPv6-in-IPv6).
pub(crate) const KERNEL_IP6TNL_DEV: &str = "ip6tnl0";

/// Which kernel tunnel devices can decapsulate the VIPs' traffic, or `None` if the kernel cannot
/// (then the XDP program is needed).
pub(crate) fn kernel_devices(links: &[Link], vips: &[IpAddr]) -> Option<Vec<String>> {
    let has = |name: &str| links.iter().any(|l| l.name == name);
    let need_v4 = vips.iter().any(IpAddr::is_ipv4);
    let need_v6 = vips.iter().any(IpAddr::is_ipv6);
    if (need_v4 && !has(KERNEL_IPIP_DEV)) || (need_v6 && !has(KERNEL_IP6TNL_DEV)) {
        return None;
    }
    let mut devices = Vec::new();
    if need_v4 {
        devices.push(KERNEL_IPIP_DEV.to_owned());
    }
    if need_v6 {
        devices.push(KERNEL_IP6TNL_DEV.to_owned());
    }
    Some(devices)
}

/// The attached XDP decapsulation programs (one per interface); detached when dropped or when
/// the process exits (bpf_link).
pub struct XdpDecap {
    programs: Vec<TunDecap>,
    interfaces: Vec<String>,
}

impl fmt::Debug for XdpDecap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XdpDecap")
            .field("programs", &self.programs)
            .finish()
    }
}

impl XdpDecap {
    /// Interfaces the program is attached to.
    pub fn interfaces(&self) -> &[String] {
        &self.interfaces
    }

    /// Packets decapsulated so far (IPv4 inner, IPv6 inner), summed over interfaces.
    pub fn decapsulated(&self) -> (u64, u64) {
        self.programs
            .iter()
            .filter_map(|p| p.counters().ok())
            .fold((0, 0), |(a, b), c| (a + c.decap_v4, b + c.decap_v6))
    }
}

/// Attaches rvs-io's XDP decapsulation program to each of `interfaces` and configures `vips`.
/// The valid outer destinations are this namespace's addresses at attach time.
pub(crate) fn attach_xdp(
    interfaces: &[String],
    vips: &[IpAddr],
    mode: XdpMode,
) -> Result<XdpDecap, RealServerError> {
    let mut programs = Vec::new();
    for dev in interfaces {
        let mut p = TunDecap::attach(dev, mode).map_err(|e| RealServerError::Xdp(e.to_string()))?;
        for vip in vips {
            p.add_vip(*vip)
                .map_err(|e| RealServerError::Xdp(e.to_string()))?;
        }
        programs.push(p);
    }
    Ok(XdpDecap {
        programs,
        interfaces: interfaces.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str) -> Link {
        Link {
            name: name.into(),
            up: true,
            loopback: false,
        }
    }

    #[test]
    fn kernel_devices_only_when_every_family_is_covered() {
        let v4: IpAddr = "198.18.0.100".parse().unwrap();
        let v6: IpAddr = "2001:db8::100".parse().unwrap();
        let none = [link("eth0")];
        let only4 = [link("eth0"), link("tunl0")];
        let both = [link("eth0"), link("tunl0"), link("ip6tnl0")];
        assert_eq!(kernel_devices(&none, &[v4]), None);
        assert_eq!(kernel_devices(&only4, &[v4]), Some(vec!["tunl0".into()]));
        assert_eq!(kernel_devices(&only4, &[v4, v6]), None);
        assert_eq!(
            kernel_devices(&both, &[v4, v6]),
            Some(vec!["tunl0".into(), "ip6tnl0".into()])
        );
    }
}
