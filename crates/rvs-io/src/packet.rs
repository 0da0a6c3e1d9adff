//! AF_PACKET sockets bound to one interface: send and receive whole Ethernet frames.
//!
//! For the few frames rvs builds outside the data path (gratuitous ARP, unsolicited neighbour
//! advertisements, VRRP on interfaces without a steering program) and for tests. Not a data
//! path: one system call per frame.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::IoError;
use crate::sys;

/// `ETH_P_ALL`: receive every protocol.
pub const ETH_P_ALL: u16 = 0x0003;
/// `ETH_P_ARP`.
pub const ETH_P_ARP: u16 = 0x0806;
/// `ETH_P_IP`.
pub const ETH_P_IP: u16 = 0x0800;
/// `ETH_P_IPV6`.
pub const ETH_P_IPV6: u16 = 0x86DD;

/// A raw Ethernet socket on one interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

impl PacketSocket {
    /// Opens a socket on `ifname` (in the calling thread's namespace) that receives frames of
    /// EtherType `protocol` ([`ETH_P_ALL`] for all; 0 for a send-only socket that receives
    /// nothing).
    pub fn open(ifname: &str, protocol: u16) -> Result<Self, IoError> {
        let ifindex = sys::if_nametoindex(ifname)
            .ok_or_else(|| IoError::NoSuchInterface(ifname.to_owned()))?;
        let proto_be = protocol.to_be();
        let fd = sys::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto_be))
            .map_err(IoError::sys("socket(AF_PACKET)"))?;
        // SAFETY: sockaddr_ll is plain integers; all-zero is a valid value.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = proto_be;
        sa.sll_ifindex = i32::try_from(ifindex)
            .map_err(|_| IoError::InvalidArgument(format!("ifindex {ifindex}")))?;
        sys::bind(fd.as_fd(), &sa).map_err(IoError::sys("bind(AF_PACKET)"))?;
        Ok(Self { fd, ifindex })
    }

    /// Interface index the socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Transmits one complete Ethernet frame (header included, no FCS).
    pub fn send(&self, frame: &[u8]) -> Result<(), IoError> {
        sys::sendto::<libc::sockaddr_ll>(self.fd.as_fd(), frame, 0, None)
            .map_err(IoError::sys("send(AF_PACKET)"))?;
        Ok(())
    }

    /// Receives one frame into `buf`; `Ok(None)` when `timeout` passes first (`None` waits
    /// forever). Returns the frame length (truncated to `buf.len()`).
    pub fn recv(
        &self,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> Result<Option<usize>, IoError> {
        let ready = sys::poll(self.fd.as_fd(), libc::POLLIN, timeout)
            .map_err(IoError::sys("poll(AF_PACKET)"))?;
        if ready & libc::POLLIN == 0 {
            return Ok(None);
        }
        sys::recv(self.fd.as_fd(), buf, libc::MSG_DONTWAIT)
            .map(Some)
            .map_err(IoError::sys("recv(AF_PACKET)"))
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
