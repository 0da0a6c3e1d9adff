//! The UDP test server.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::TestSrvError;

/// Largest UDP payload over IPv4.
const MAX_DATAGRAM: usize = 65_507;

/// A UDP server answering each datagram with `NAME <payload>` (truncated to one datagram).
#[derive(Debug)]
pub struct UdpServer {
    sockets: Vec<UdpSocket>,
    name: Arc<str>,
}

impl UdpServer {
    /// Binds every address in `listen`.
    pub fn bind(listen: &[SocketAddr], name: &str) -> Result<Self, TestSrvError> {
        if listen.is_empty() {
            return Err(TestSrvError::NoListenAddress);
        }
        let sockets = listen
            .iter()
            .map(|&addr| {
                UdpSocket::bind(addr).map_err(|source| TestSrvError::Bind { addr, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            sockets,
            name: name.into(),
        })
    }

    /// The bound addresses (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// Serves forever, one thread per socket.
    ///
    /// Returns only if a thread cannot be started.
    pub fn run(self) -> Result<(), TestSrvError> {
        let mut threads = Vec::new();
        for socket in self.sockets {
            let name = Arc::clone(&self.name);
            let handle = thread::Builder::new()
                .name("udp-serve".into())
                .spawn(move || serve(&socket, &name))
                .map_err(TestSrvError::Thread)?;
            threads.push(handle);
        }
        for handle in threads {
            let _ = handle.join();
        }
        Ok(())
    }
}

/// `NAME <payload>`, cut to [`MAX_DATAGRAM`] bytes.
fn reply(name: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 1 + payload.len());
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out.truncate(MAX_DATAGRAM);
    out
}

fn serve(socket: &UdpSocket, name: &str) {
    let mut buf = vec![0u8; 65_536];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((n, peer)) => {
                // A lost reply is what UDP does; the client retries or reports it.
                let _ = socket.send_to(&reply(name, &buf[..n]), peer);
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_format() {
        assert_eq!(reply("rs1", b"hello"), b"rs1 hello");
        assert_eq!(reply("rs1", b""), b"rs1 ");
        assert_eq!(reply("rs1", &[0u8; 70_000]).len(), MAX_DATAGRAM);
    }

    #[test]
    fn answers_on_loopback() {
        let srv = UdpServer::bind(&["127.0.0.1:0".parse().unwrap()], "rs2").unwrap();
        let addr = srv.local_addrs()[0];
        thread::spawn(move || srv.run());
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.send_to(b"ping 1", addr).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(from, addr);
        assert_eq!(&buf[..n], b"rs2 ping 1");
    }
}
