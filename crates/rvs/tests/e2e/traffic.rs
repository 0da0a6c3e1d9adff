//! Real TCP and UDP clients running inside a lab namespace (threads that `setns` into it), talking
//! to the lab's test servers through the VIP.
//!
//! `rvs testsrv http` answers `GET /` with the real server's name and `GET /stream?seconds=N`
//! (HTTP/1.0: close-delimited) with one line `NAME i` every 100 ms; `rvs testsrv udp` answers a
//! datagram `x` with `NAME x`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rvs::lab::topology::{HTTP_PORT, UDP_PORT};

/// Runs `f` on a new thread inside network namespace `ns`.
pub(crate) fn spawn_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    let ns = ns.to_owned();
    thread::spawn(move || {
        let _guard = rvs_io::netns::enter(&ns).unwrap_or_else(|e| panic!("enter {ns}: {e}"));
        f()
    })
}

/// A real server's answer and the client port of the connection (or datagram) it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) server: String,
    pub(crate) port: u16,
}

/// Client ports for [`http_get`]: each used once per test process, below the kernel's ephemeral
/// range (which the streams use).
static NEXT_PORT: AtomicU16 = AtomicU16::new(20_000);
/// Client ports for [`udp_queries`], likewise.
static NEXT_UDP_PORT: AtomicU16 = AtomicU16::new(10_000);

/// A client port no earlier request of this process used.
///
/// A port the kernel picks may repeat that of an earlier connection whose entry rvsd still holds
/// (FIN_WAIT for 2 minutes in DR/TUN, where the director sees one direction only). Such a SYN
/// continues the old entry, as in IPVS, instead of being scheduled: exact distribution checks
/// would then depend on luck.
pub(crate) fn next_port() -> u16 {
    let p = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
    assert!(p < 32_000, "out of client ports");
    p
}

/// A TCP connection to `vip`:80 from client port `port` (bound with `SO_REUSEADDR`); must run
/// inside the client namespace. An error names the port.
pub(crate) fn connect_from(
    vip: IpAddr,
    port: u16,
    connect_timeout: Duration,
) -> Result<TcpStream, String> {
    let server = SocketAddr::new(vip, HTTP_PORT);
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(server),
        socket2::Type::STREAM,
        None,
    )
    .map_err(|e| format!("socket: {e}"))?;
    let any: IpAddr = if vip.is_ipv4() {
        [0, 0, 0, 0].into()
    } else {
        [0u16; 8].into()
    };
    sock.set_reuse_address(true)
        .and_then(|()| sock.bind(&SocketAddr::new(any, port).into()))
        .map_err(|e| format!("port {port}: bind: {e}"))?;
    sock.connect_timeout(&server.into(), connect_timeout)
        .map_err(|e| format!("port {port}: connect: {e}"))?;
    Ok(sock.into())
}

/// `GET /` over HTTP/1.0 (one connection per request) from a fresh client port
/// ([`next_port`]); must run inside the client namespace. An error names the client port.
pub(crate) fn http_get(vip: IpAddr) -> Result<Answer, String> {
    http_get_from(vip, next_port(), Duration::from_secs(5))
}

/// [`http_get`] from client port `port`, giving up connecting after `connect_timeout`.
pub(crate) fn http_get_from(
    vip: IpAddr,
    port: u16,
    connect_timeout: Duration,
) -> Result<Answer, String> {
    let mut s = connect_from(vip, port, connect_timeout)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(format!("GET / HTTP/1.0\r\nHost: {vip}\r\n\r\n").as_bytes())
        .map_err(|e| format!("port {port}: send: {e}"))?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)
        .map_err(|e| format!("port {port}: receive: {e}"))?;
    let text = String::from_utf8_lossy(&resp);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("port {port}: no HTTP head in {text:?}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("port {port}: {head}"));
    }
    Ok(Answer {
        server: body.trim().to_owned(),
        port,
    })
}

/// `n` requests to `vip` over `threads` parallel connections from namespace `ns`.
pub(crate) fn http_burst(
    ns: &str,
    vip: IpAddr,
    n: usize,
    threads: usize,
) -> Vec<Result<Answer, String>> {
    let next = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let next = next.clone();
            spawn_in(ns, move || {
                let mut out = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    out.push(http_get(vip));
                }
                out
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

/// `n` UDP queries from namespace `ns`, each from its own, never used source port (a new
/// connection each; ports below the kernel's ephemeral range, see [`next_port`]). A query is
/// retried on the same socket (same connection, same real server) if its answer does not come
/// within a second; the result says how many tries it took.
pub(crate) fn udp_queries(ns: &str, vip: IpAddr, n: u16) -> Vec<Result<(Answer, u32), String>> {
    let first = NEXT_UDP_PORT.fetch_add(n, Ordering::Relaxed);
    assert!(first + n < 20_000, "out of UDP client ports");
    let ports = first..first + n;
    spawn_in(ns, move || {
        ports
            .map(|port| {
                let any: IpAddr = if vip.is_ipv4() {
                    [0, 0, 0, 0].into()
                } else {
                    [0u16; 8].into()
                };
                let s = UdpSocket::bind(SocketAddr::new(any, port))
                    .map_err(|e| format!("bind port {port}: {e}"))?;
                s.connect(SocketAddr::new(vip, UDP_PORT))
                    .map_err(|e| e.to_string())?;
                s.set_read_timeout(Some(Duration::from_secs(1)))
                    .map_err(|e| e.to_string())?;
                let query = format!("q{port}");
                let mut buf = [0u8; 512];
                for tries in 1..=3 {
                    s.send(query.as_bytes()).map_err(|e| e.to_string())?;
                    match s.recv(&mut buf) {
                        Ok(n) => {
                            let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
                            let server = reply
                                .strip_suffix(&format!(" {query}"))
                                .ok_or_else(|| format!("port {port}: odd reply {reply:?}"))?;
                            return Ok((
                                Answer {
                                    server: server.to_owned(),
                                    port,
                                },
                                tries,
                            ));
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                            ) => {}
                        Err(e) => return Err(format!("port {port}: {e}")),
                    }
                }
                Err(format!("port {port}: no answer to 3 tries"))
            })
            .collect()
    })
    .join()
    .unwrap()
}

/// How a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// The server closed the connection after the last line.
    Eof,
    /// A read failed (a timeout: nothing arrived for the read timeout; a reset: RST received).
    Error(io::ErrorKind, String),
    /// We closed it ([`Stream::stop`]).
    Stopped,
}

/// What a stream received so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamLog {
    /// Each body line and when it arrived.
    pub(crate) lines: Vec<(Instant, String)>,
    /// How it ended, once it did.
    pub(crate) end: Option<(Instant, StreamEnd)>,
}

impl StreamLog {
    /// The real server named in the first line.
    pub(crate) fn server(&self) -> Option<&str> {
        self.lines
            .first()
            .and_then(|(_, l)| l.split_whitespace().next())
    }

    /// Checks that every line is `SERVER i` with `i` = 0, 1, 2, … (nothing lost, reordered or
    /// from another server).
    pub(crate) fn check_sequence(&self) -> Result<(), String> {
        let server = self.server().ok_or("no line")?;
        for (i, (_, l)) in self.lines.iter().enumerate() {
            if *l != format!("{server} {i}") {
                return Err(format!("line {i} is {l:?}"));
            }
        }
        Ok(())
    }

    /// The longest pause between two consecutive lines.
    pub(crate) fn max_gap(&self) -> Duration {
        self.lines
            .windows(2)
            .map(|w| w[1].0 - w[0].0)
            .max()
            .unwrap_or_default()
    }
}

/// A long-lived `GET /stream?seconds=N` connection, read by a background thread.
pub(crate) struct Stream {
    log: Arc<Mutex<StreamLog>>,
    ctl: TcpStream,
    stopped: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    /// The client port (identifies the connection in rvsd's table and in captures).
    pub(crate) port: u16,
}

impl Stream {
    /// Connects from namespace `ns` and sends the request; a read that waits longer than
    /// `read_timeout` ends the stream with a timeout error.
    pub(crate) fn open(ns: &str, vip: IpAddr, seconds: u32, read_timeout: Duration) -> Self {
        let log = Arc::new(Mutex::new(StreamLog::default()));
        let stopped = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (log2, stopped2) = (log.clone(), stopped.clone());
        let handle = spawn_in(ns, move || {
            let s = match connect_from(vip, next_port(), Duration::from_secs(5)) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let setup = (|| -> io::Result<(TcpStream, u16)> {
                s.set_read_timeout(Some(read_timeout))?;
                (&s).write_all(
                    format!("GET /stream?seconds={seconds} HTTP/1.0\r\nHost: {vip}\r\n\r\n")
                        .as_bytes(),
                )?;
                Ok((s.try_clone()?, s.local_addr()?.port()))
            })();
            match setup {
                Ok(v) => {
                    let _ = tx.send(Ok(v));
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("send: {e}")));
                    return;
                }
            }
            let end = read_stream(s, &log2);
            let end = if stopped2.load(Ordering::SeqCst) {
                StreamEnd::Stopped
            } else {
                end
            };
            log2.lock().unwrap().end = Some((Instant::now(), end));
        });
        let (ctl, port) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("stream thread")
            .unwrap_or_else(|e| panic!("stream to {vip}: {e}"));
        Self {
            log,
            ctl,
            stopped,
            handle: Some(handle),
            port,
        }
    }

    /// A copy of what arrived so far.
    pub(crate) fn log(&self) -> StreamLog {
        self.log.lock().unwrap().clone()
    }

    /// Waits until `n` lines arrived (panics after `secs`); returns the serving real server.
    pub(crate) fn wait_lines(&self, n: usize, secs: f64) -> String {
        super::lab::wait_for(&format!("{n} stream lines"), secs, || {
            let l = self.log.lock().unwrap();
            assert!(
                l.end.is_none() || l.lines.len() >= n,
                "stream ended early: {:?}",
                l.end
            );
            l.lines.len() >= n
        });
        self.log().server().unwrap().to_owned()
    }

    /// Waits for the stream to end by itself (panics after `secs`).
    pub(crate) fn finish(mut self, secs: f64) -> StreamLog {
        super::lab::wait_for("the stream to end", secs, || {
            self.log.lock().unwrap().end.is_some()
        });
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
        self.log()
    }

    /// Sends `bytes` on the connection (the server does not read while it streams).
    pub(crate) fn send(&self, bytes: &[u8]) {
        (&self.ctl)
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("send on the stream: {e}"));
    }

    /// Sends `bytes` on the connection if it is still open (a reset may have ended it).
    pub(crate) fn try_send(&self, bytes: &[u8]) -> io::Result<()> {
        (&self.ctl).write_all(bytes)
    }

    /// Closes the connection and returns what arrived.
    pub(crate) fn stop(mut self) -> StreamLog {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = self.ctl.shutdown(Shutdown::Both);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
        self.log()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = self.ctl.shutdown(Shutdown::Both);
    }
}

fn read_stream(s: TcpStream, log: &Mutex<StreamLog>) -> StreamEnd {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    // Status line and headers.
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => return StreamEnd::Error(io::ErrorKind::UnexpectedEof, "no head".into()),
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
            Err(e) => return StreamEnd::Error(e.kind(), e.to_string()),
        }
    }
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => return StreamEnd::Eof,
            Ok(_) => log
                .lock()
                .unwrap()
                .lines
                .push((Instant::now(), line.trim_end().to_owned())),
            Err(e) => return StreamEnd::Error(e.kind(), e.to_string()),
        }
    }
}

/// Counts answers per real server `rs1..rs3`; panics on a failed request or an unknown name.
pub(crate) fn tally<'a>(answers: impl IntoIterator<Item = &'a Answer>) -> [u64; 3] {
    let mut c = [0u64; 3];
    for a in answers {
        match a.server.as_str() {
            "rs1" => c[0] += 1,
            "rs2" => c[1] += 1,
            "rs3" => c[2] += 1,
            other => panic!("answer from unknown server {other:?}"),
        }
    }
    c
}
