//! Message framing on a byte stream: `u32` big-endian payload length, then the JSON payload.
//!
//! JSON keeps the protocol readable with `socat` and stable across versions; the control path
//! is far from hot. A frame may not exceed [`MAX_FRAME`] bytes, so a broken or hostile peer
//! cannot make the reader allocate without bound.

use std::io::{self, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest accepted payload: 512 MiB, enough for a few million listed connections.
pub const MAX_FRAME: usize = 512 << 20;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The underlying stream failed.
    #[error("control socket I/O: {0}")]
    Io(#[from] io::Error),
    /// The peer closed the stream before a frame started.
    #[error("control socket closed by peer")]
    Closed,
    /// The announced length is above [`MAX_FRAME`].
    #[error("control frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// The payload is not a valid message.
    #[error("malformed control message: {0}")]
    Json(#[from] serde_json::Error),
}

/// Encodes `msg` as one frame.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, CodecError> {
    let body = serde_json::to_vec(msg)?;
    if body.len() > MAX_FRAME {
        return Err(CodecError::TooLarge(body.len()));
    }
    let len = u32::try_from(body.len()).map_err(|_| CodecError::TooLarge(body.len()))?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Tries to decode one frame from the start of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole frame, else the message and the number
/// of bytes it used.
pub fn decode<T: DeserializeOwned>(buf: &[u8]) -> Result<Option<(T, usize)>, CodecError> {
    let Some(header) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*header) as usize;
    if len > MAX_FRAME {
        return Err(CodecError::TooLarge(len));
    }
    let Some(body) = buf.get(4..4 + len) else {
        return Ok(None);
    };
    Ok(Some((serde_json::from_slice(body)?, 4 + len)))
}

/// Writes one frame and flushes.
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), CodecError> {
    w.write_all(&encode(msg)?)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame. [`CodecError::Closed`] if the stream ends cleanly before it.
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> Result<T, CodecError> {
    let mut header = [0u8; 4];
    match r.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(CodecError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(CodecError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(serde_json::from_slice(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ApiError, Request, Response, ServiceKey, ServiceSpec};

    #[test]
    fn round_trip_through_a_stream() {
        let req = Request::AddService {
            spec: ServiceSpec::new(ServiceKey::Addr {
                protocol: crate::Protocol::Tcp,
                addr: "198.18.0.1".parse().unwrap(),
                port: 80,
            }),
        };
        let mut buf = Vec::new();
        write_frame(&mut buf, &req).unwrap();
        write_frame(
            &mut buf,
            &Response::Error {
                error: ApiError::ServiceExists,
            },
        )
        .unwrap();
        let mut rd = &buf[..];
        let back: Request = read_frame(&mut rd).unwrap();
        assert_eq!(back, req);
        let resp: Response = read_frame(&mut rd).unwrap();
        assert_eq!(
            resp,
            Response::Error {
                error: ApiError::ServiceExists
            }
        );
        assert!(matches!(
            read_frame::<Response>(&mut rd),
            Err(CodecError::Closed)
        ));
    }

    #[test]
    fn partial_and_oversized_frames() {
        let frame = encode(&Request::Flush).unwrap();
        for cut in 0..frame.len() {
            assert!(decode::<Request>(&frame[..cut]).unwrap().is_none());
        }
        let (msg, used) = decode::<Request>(&frame).unwrap().unwrap();
        assert_eq!((msg, used), (Request::Flush, frame.len()));
        let huge = ((MAX_FRAME + 1) as u32).to_be_bytes();
        assert!(matches!(
            decode::<Request>(&huge),
            Err(CodecError::TooLarge(_))
        ));
        let garbage = [0, 0, 0, 3, b'x', b'y', b'z'];
        assert!(matches!(
            decode::<Request>(&garbage),
            Err(CodecError::Json(_))
        ));
    }

    #[test]
    fn counters_on_the_wire() {
        let req = encode(&Request::GetCounters).unwrap();
        assert_eq!(&req[4..], br#"{"op":"get_counters"}"#);
        let resp = Response::Counters {
            counters: vec![
                ("xdp.redirected".to_owned(), 7),
                ("engine.conns.ipv4".to_owned(), 2),
            ],
        };
        let frame = encode(&resp).unwrap();
        assert_eq!(
            &frame[4..],
            br#"{"kind":"counters","counters":[["xdp.redirected",7],["engine.conns.ipv4",2]]}"#
        );
        assert_eq!(
            decode::<Response>(&frame).unwrap(),
            Some((resp, frame.len()))
        );
    }

    #[test]
    fn error_messages_are_ipvsadm_messages() {
        assert_eq!(ApiError::NoSuchService.to_string(), "No such service");
        assert_eq!(
            ApiError::Invalid.to_string(),
            "Invalid operation.  Possibly wrong module version, address not unicast, ..."
        );
    }
}
