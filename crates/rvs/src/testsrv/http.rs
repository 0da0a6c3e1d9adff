//! The HTTP/1.1 test server.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::TestSrvError;

/// Largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Largest request body read and discarded.
const MAX_BODY: u64 = 1 << 20;
/// A connection idle for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Interval between two lines of `/stream`.
const STREAM_INTERVAL: Duration = Duration::from_millis(100);
/// Longest `/stream` accepted, in seconds.
const MAX_STREAM_SECONDS: u32 = 3600;
/// `/stream` without `seconds=`.
const DEFAULT_STREAM_SECONDS: u32 = 10;

/// An HTTP/1.1 server answering every request with its name.
///
/// Contract: `GET`/`HEAD`/`POST`/… on any path → `200 OK`, `Content-Length`, body `NAME\n`, header
/// `X-Real-Server: NAME`; keep-alive unless the client asks to close (or speaks HTTP/1.0 without
/// `Connection: keep-alive`). `GET /stream?seconds=N` → `200 OK`, chunked, one line `NAME <i>\n`
/// every 100 ms for `N` seconds (`N` ≤ 3600, default 10). Malformed requests get `400` and the
/// connection is closed.
#[derive(Debug)]
pub struct HttpServer {
    listeners: Vec<TcpListener>,
    name: Arc<str>,
}

impl HttpServer {
    /// Binds every address in `listen`.
    pub fn bind(listen: &[SocketAddr], name: &str) -> Result<Self, TestSrvError> {
        if listen.is_empty() {
            return Err(TestSrvError::NoListenAddress);
        }
        let listeners = listen
            .iter()
            .map(|&addr| {
                TcpListener::bind(addr).map_err(|source| TestSrvError::Bind { addr, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            listeners,
            name: name.into(),
        })
    }

    /// The bound addresses (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves forever: one acceptor thread per listener, one thread per connection.
    ///
    /// Returns only if an acceptor thread cannot be started.
    pub fn run(self) -> Result<(), TestSrvError> {
        let mut acceptors = Vec::new();
        for listener in self.listeners {
            let name = Arc::clone(&self.name);
            let handle = thread::Builder::new()
                .name("http-accept".into())
                .spawn(move || accept_loop(&listener, &name))
                .map_err(TestSrvError::Thread)?;
            acceptors.push(handle);
        }
        for handle in acceptors {
            // An acceptor never returns; a panic in one is reported by the thread itself.
            let _ = handle.join();
        }
        Ok(())
    }
}

fn accept_loop(listener: &TcpListener, name: &Arc<str>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            // EMFILE, ECONNABORTED, …: back off briefly instead of spinning.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let name = Arc::clone(name);
        // If no thread can be created the connection is dropped (closed), which a test notices.
        let _ = thread::Builder::new()
            .name("http-conn".into())
            .spawn(move || {
                let _ = serve_connection(stream, &name);
            });
    }
}

/// What the client asked for.
#[derive(Debug, PartialEq, Eq)]
struct RequestHead {
    method: String,
    target: String,
    http10: bool,
    keep_alive: bool,
    content_length: u64,
    chunked_body: bool,
}

/// Reads one request head. `Ok(None)` on a clean end of stream before a request started.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Result<RequestHead, &'static str>>> {
    let mut lines = Vec::new();
    let mut total = 0usize;
    loop {
        let mut line = Vec::new();
        let n = reader
            .by_ref()
            .take((MAX_HEAD - total + 1) as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return if lines.is_empty() {
                Ok(None)
            } else {
                Ok(Some(Err("truncated request")))
            };
        }
        total += n;
        if total > MAX_HEAD {
            return Ok(Some(Err("request head too large")));
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.is_empty() {
            if lines.is_empty() {
                continue; // tolerate blank lines between requests (RFC 9112 §2.2)
            }
            break;
        }
        lines.push(String::from_utf8_lossy(&line).into_owned());
    }
    Ok(Some(parse_head(&lines)))
}

fn parse_head(lines: &[String]) -> Result<RequestHead, &'static str> {
    let mut parts = lines
        .first()
        .ok_or("empty request")?
        .split_ascii_whitespace();
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed request line");
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err("unsupported HTTP version"),
    };
    let mut head = RequestHead {
        method: method.to_owned(),
        target: target.to_owned(),
        http10,
        keep_alive: !http10,
        content_length: 0,
        chunked_body: false,
    };
    for line in &lines[1..] {
        let (name, value) = line.split_once(':').ok_or("malformed header")?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "connection" => {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        head.keep_alive = false;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        head.keep_alive = true;
                    }
                }
            }
            "content-length" => {
                head.content_length = value.parse().map_err(|_| "bad content-length")?;
            }
            "transfer-encoding" => head.chunked_body = true,
            _ => {}
        }
    }
    Ok(head)
}

/// `Some(seconds)` if `target` is `/stream` (with an optional `seconds=N` query parameter).
fn stream_seconds(target: &str) -> Option<u32> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != "/stream" {
        return None;
    }
    let seconds = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("seconds="))
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(DEFAULT_STREAM_SECONDS);
    Some(seconds.min(MAX_STREAM_SECONDS))
}

fn serve_connection(stream: TcpStream, name: &str) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let head = match read_head(&mut reader)? {
            None => return Ok(()),
            Some(Err(why)) => {
                let body = format!("{why}\n");
                write!(
                    writer,
                    "HTTP/1.1 400 Bad Request\r\nServer: rvs-testsrv\r\nX-Real-Server: {name}\r\n\
                     Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )?;
                return writer.flush();
            }
            Some(Ok(head)) => head,
        };
        if head.chunked_body || head.content_length > MAX_BODY {
            write!(
                writer,
                "HTTP/1.1 413 Content Too Large\r\nServer: rvs-testsrv\r\nX-Real-Server: {name}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
            return writer.flush();
        }
        io::copy(
            &mut reader.by_ref().take(head.content_length),
            &mut io::sink(),
        )?;
        let is_head = head.method == "HEAD";
        if let Some(seconds) = stream_seconds(&head.target).filter(|_| head.method == "GET") {
            stream_lines(&mut writer, name, seconds, head.http10)?;
            if head.http10 || !head.keep_alive {
                return Ok(());
            }
            continue;
        }
        let body = format!("{name}\n");
        let connection = if head.keep_alive {
            if head.http10 {
                "Connection: keep-alive\r\n"
            } else {
                ""
            }
        } else {
            "Connection: close\r\n"
        };
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nServer: rvs-testsrv\r\nX-Real-Server: {name}\r\n\
             Content-Type: text/plain\r\nContent-Length: {}\r\n{connection}\r\n",
            body.len()
        )?;
        if !is_head {
            writer.write_all(body.as_bytes())?;
        }
        writer.flush()?;
        if !head.keep_alive {
            return Ok(());
        }
    }
}

/// Writes `/stream`: chunked for HTTP/1.1, close-delimited for HTTP/1.0.
fn stream_lines(w: &mut TcpStream, name: &str, seconds: u32, http10: bool) -> io::Result<()> {
    if http10 {
        write!(
            w,
            "HTTP/1.1 200 OK\r\nServer: rvs-testsrv\r\nX-Real-Server: {name}\r\n\
             Content-Type: text/plain\r\nConnection: close\r\n\r\n"
        )?;
    } else {
        write!(
            w,
            "HTTP/1.1 200 OK\r\nServer: rvs-testsrv\r\nX-Real-Server: {name}\r\n\
             Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        )?;
    }
    w.flush()?;
    let lines = seconds * 10;
    let start = Instant::now();
    for i in 0..lines {
        let line = format!("{name} {i}\n");
        if http10 {
            w.write_all(line.as_bytes())?;
        } else {
            write!(w, "{:x}\r\n{line}\r\n", line.len())?;
        }
        w.flush()?;
        // Pace against the start time so the stream lasts `seconds`, not `seconds` plus drift.
        let next = start + STREAM_INTERVAL * (i + 1);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
    if !http10 {
        w.write_all(b"0\r\n\r\n")?;
        w.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<RequestHead, &'static str> {
        let mut rd = text.as_bytes();
        read_head(&mut rd).unwrap().unwrap()
    }

    #[test]
    fn parses_keep_alive_rules() {
        let h = head("GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert!(h.keep_alive && !h.http10);
        let h = head("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        assert!(!h.keep_alive);
        let h = head("GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!h.keep_alive && h.http10);
        let h = head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
        assert!(h.keep_alive);
        let h = head("POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(h.content_length, 5);
    }

    #[test]
    fn rejects_malformed_heads() {
        assert!(head("GET /\r\n\r\n").is_err());
        assert!(head("GET / HTTP/2\r\n\r\n").is_err());
        assert!(head("GET / HTTP/1.1\r\nnocolon\r\n\r\n").is_err());
        assert!(head("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n").is_err());
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(head(&big), Err("request head too large"));
        let mut empty: &[u8] = b"";
        assert!(read_head(&mut empty).unwrap().is_none());
    }

    #[test]
    fn stream_targets() {
        assert_eq!(stream_seconds("/stream?seconds=3"), Some(3));
        assert_eq!(stream_seconds("/stream"), Some(DEFAULT_STREAM_SECONDS));
        assert_eq!(
            stream_seconds("/stream?a=b&seconds=99999"),
            Some(MAX_STREAM_SECONDS)
        );
        assert_eq!(stream_seconds("/streams"), None);
        assert_eq!(stream_seconds("/"), None);
    }

    fn request(addr: SocketAddr, req: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn answers_with_its_name_on_loopback() {
        let srv = HttpServer::bind(&["127.0.0.1:0".parse().unwrap()], "rs7").unwrap();
        let addr = srv.local_addrs()[0];
        thread::spawn(move || srv.run());
        let out = request(addr, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\nrs7\n"), "{out}");
        // Two requests on one connection (keep-alive), the second closing it.
        let out = request(
            addr,
            "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(out.matches("rs7\n").count(), 2, "{out}");
        let out = request(
            addr,
            "GET /stream?seconds=1 HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(out.contains("Transfer-Encoding: chunked"), "{out}");
        assert!(out.contains("rs7 0\n") && out.contains("rs7 9\n") && !out.contains("rs7 10\n"));
        assert!(out.ends_with("0\r\n\r\n"), "{out}");
        let out = request(addr, "BROKEN\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
    }
}
