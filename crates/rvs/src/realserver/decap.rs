//! TUN decapsulation on a real server: the kernel's fallback tunnel devices where the `ipip` /
//! `ip6_tunnel` modules exist, rvs's XDP program (`rvs_io::xdp::TunDecap`) where they do not.

use std::fmt;
use std::net::IpAddr;

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

/// The attached XDP decapsulation program; detached when dropped or when the process exits.
pub struct XdpDecap {
    interfaces: Vec<String>,
}

impl fmt::Debug for XdpDecap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XdpDecap")
            .field("interfaces", &self.interfaces)
            .finish()
    }
}

impl XdpDecap {
    /// Interfaces the program is attached to.
    pub fn interfaces(&self) -> &[String] {
        &self.interfaces
    }
}

/// Attaches the XDP decapsulation program to `interfaces` and configures `vips`.
///
/// Waiting for `rvs_io::xdp::TunDecap`: until it lands this reports
/// [`RealServerError::DecapUnavailable`].
pub(crate) fn attach_xdp(
    interfaces: &[String],
    vips: &[IpAddr],
) -> Result<XdpDecap, RealServerError> {
    let _ = (interfaces, vips);
    Err(RealServerError::DecapUnavailable(
        "this kernel has no ipip/ip6_tunnel device and rvs-io's XDP TunDecap is not built in yet"
            .into(),
    ))
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
