//! [`PacketBuf`]: a frame inside a larger buffer, with headroom and tailroom.
//!
//! AF_XDP frames sit in a UMEM chunk behind 256 bytes of headroom. Encapsulation and ICMP
//! error generation grow the frame at the front into that headroom instead of copying the
//! whole frame: [`PacketBuf::insert_after`] moves only the bytes *before* the insertion point
//! (usually just the Ethernet header) towards the front.

use crate::{Error, Result};

/// A mutable frame `buf[head..head + len]` inside a larger buffer.
///
/// Invariant: `head + len <= buf.len()`. Every method keeps it; the ones that would break it
/// return [`Error::NoSpace`] (or [`Error::Truncated`] when shrinking past the data) and leave
/// the buffer unchanged.
#[derive(Debug)]
pub struct PacketBuf<'a> {
    buf: &'a mut [u8],
    head: usize,
    len: usize,
}

impl<'a> PacketBuf<'a> {
    /// Wraps `buf`, with the frame starting at `head` and `len` bytes long.
    ///
    /// Returns [`Error::NoSpace`] if the frame does not fit in `buf`.
    #[inline]
    pub fn new(buf: &'a mut [u8], head: usize, len: usize) -> Result<Self> {
        match head.checked_add(len) {
            Some(end) if end <= buf.len() => Ok(PacketBuf { buf, head, len }),
            _ => Err(Error::NoSpace),
        }
    }

    /// The frame bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.head..self.head + self.len]
    }

    /// The frame bytes, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.head..self.head + self.len]
    }

    /// Offset of the frame's first byte in the underlying buffer (what an AF_XDP descriptor's
    /// `addr` must be advanced by).
    #[inline]
    pub fn head(&self) -> usize {
        self.head
    }

    /// Frame length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free bytes in front of the frame.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.head
    }

    /// Free bytes behind the frame.
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.head - self.len
    }

    /// Grows the frame by `n` bytes at the front. The new bytes hold whatever the headroom
    /// held; the caller overwrites them.
    #[inline]
    pub fn push_front(&mut self, n: usize) -> Result<()> {
        if n > self.head {
            return Err(Error::NoSpace);
        }
        self.head -= n;
        self.len += n;
        Ok(())
    }

    /// Drops `n` bytes from the front of the frame.
    #[inline]
    pub fn pull_front(&mut self, n: usize) -> Result<()> {
        if n > self.len {
            return Err(Error::Truncated);
        }
        self.head += n;
        self.len -= n;
        Ok(())
    }

    /// Sets the frame length, growing into the tailroom or shrinking. Grown bytes hold
    /// whatever the tailroom held.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> Result<()> {
        if len > self.buf.len() - self.head {
            return Err(Error::NoSpace);
        }
        self.len = len;
        Ok(())
    }

    /// Opens an `n`-byte gap at `offset` (relative to the frame start) by moving the first
    /// `offset` bytes `n` bytes towards the front. Afterwards `data()[offset..offset + n]` is
    /// the gap (stale bytes, to be overwritten) and the old `data()[offset..]` follows it.
    ///
    /// Costs a copy of `offset` bytes: with `offset` = the L2 header length this prepends an
    /// outer IP header without touching the payload.
    #[inline]
    pub fn insert_after(&mut self, offset: usize, n: usize) -> Result<()> {
        if offset > self.len || n > self.head {
            return Err(Error::NoSpace);
        }
        let start = self.head;
        Self::move_front(self.buf, start, offset, start - n);
        self.head -= n;
        self.len += n;
        Ok(())
    }

    /// Removes the `n` bytes at `offset` by moving the first `offset` bytes `n` bytes towards
    /// the back; the inverse of [`insert_after`](Self::insert_after).
    #[inline]
    pub fn remove_after(&mut self, offset: usize, n: usize) -> Result<()> {
        match offset.checked_add(n) {
            Some(end) if end <= self.len => {}
            _ => return Err(Error::Truncated),
        }
        let start = self.head;
        Self::move_front(self.buf, start, offset, start + n);
        self.head += n;
        self.len -= n;
        Ok(())
    }

    /// `buf.copy_within(from..from + len, to)`, with the usual L2 header lengths (untagged,
    /// one or two VLAN tags) as constant-size moves instead of a `memmove` call.
    #[inline(always)]
    fn move_front(buf: &mut [u8], from: usize, len: usize, to: usize) {
        match len {
            14 => Self::move_n::<14>(buf, from, to),
            18 => Self::move_n::<18>(buf, from, to),
            22 => Self::move_n::<22>(buf, from, to),
            _ => buf.copy_within(from..from + len, to),
        }
    }

    /// Moves `N` bytes from `from` to `to` through registers (the ranges may overlap).
    #[inline(always)]
    fn move_n<const N: usize>(buf: &mut [u8], from: usize, to: usize) {
        let mut t = [0u8; N];
        t.copy_from_slice(&buf[from..from + N]);
        buf[to..to + N].copy_from_slice(&t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    #[test]
    fn new_checks_bounds() {
        let mut b = [0u8; 16];
        assert_eq!(PacketBuf::new(&mut b, 8, 9).unwrap_err(), Error::NoSpace);
        assert_eq!(
            PacketBuf::new(&mut b, usize::MAX, 2).unwrap_err(),
            Error::NoSpace
        );
        let p = PacketBuf::new(&mut b, 8, 8).unwrap();
        assert_eq!(
            (p.head(), p.len(), p.headroom(), p.tailroom()),
            (8, 8, 8, 0)
        );
    }

    #[test]
    fn push_pull_set_len() {
        let mut b: Vec<u8> = (0..32).collect();
        let mut p = PacketBuf::new(&mut b, 10, 4).unwrap();
        assert_eq!(p.data(), &[10, 11, 12, 13]);
        p.push_front(2).unwrap();
        assert_eq!(p.data(), &[8, 9, 10, 11, 12, 13]);
        assert_eq!(p.push_front(9).unwrap_err(), Error::NoSpace);
        p.pull_front(3).unwrap();
        assert_eq!(p.data(), &[11, 12, 13]);
        assert_eq!(p.pull_front(4).unwrap_err(), Error::Truncated);
        p.set_len(5).unwrap();
        assert_eq!(p.data(), &[11, 12, 13, 14, 15]);
        assert_eq!(p.set_len(22).unwrap_err(), Error::NoSpace);
        p.set_len(21).unwrap();
        assert_eq!(p.tailroom(), 0);
        p.set_len(0).unwrap();
        assert!(p.is_empty());
    }

    #[test]
    fn insert_after_moves_only_the_front() {
        let mut b: Vec<u8> = (0..24).collect();
        let mut p = PacketBuf::new(&mut b, 8, 10).unwrap();
        p.insert_after(3, 4).unwrap();
        assert_eq!(p.head(), 4);
        assert_eq!(&p.data()[..3], &[8, 9, 10]);
        assert_eq!(&p.data()[7..], &[11, 12, 13, 14, 15, 16, 17]);
        p.data_mut()[3..7].copy_from_slice(&[0xAA; 4]);
        p.remove_after(3, 4).unwrap();
        assert_eq!(p.data(), &[8, 9, 10, 11, 12, 13, 14, 15, 16, 17]);
        assert_eq!(p.head(), 8);
    }

    #[test]
    fn insert_remove_errors_leave_buffer_alone() {
        let mut b = [7u8; 16];
        let mut p = PacketBuf::new(&mut b, 2, 10).unwrap();
        assert_eq!(p.insert_after(3, 3).unwrap_err(), Error::NoSpace);
        assert_eq!(p.insert_after(11, 1).unwrap_err(), Error::NoSpace);
        assert_eq!(p.remove_after(8, 3).unwrap_err(), Error::Truncated);
        assert_eq!(p.remove_after(usize::MAX, 2).unwrap_err(), Error::Truncated);
        assert_eq!((p.head(), p.len()), (2, 10));
    }

    proptest! {
        #[test]
        fn insert_then_remove_is_identity(
            head in 0usize..64, len in 0usize..64, offset in 0usize..70, n in 0usize..70,
        ) {
            let mut b: Vec<u8> = (0..160u8).collect();
            let original: Vec<u8> = b[head..head + len].to_vec();
            let mut p = PacketBuf::new(&mut b, head, len).unwrap();
            match p.insert_after(offset, n) {
                Ok(()) => {
                    prop_assert_eq!(p.len(), len + n);
                    prop_assert_eq!(&p.data()[..offset], &original[..offset]);
                    prop_assert_eq!(&p.data()[offset + n..], &original[offset..]);
                    p.remove_after(offset, n).unwrap();
                    prop_assert_eq!(p.data(), &original[..]);
                    prop_assert_eq!(p.head(), head);
                }
                Err(e) => {
                    prop_assert_eq!(e, Error::NoSpace);
                    prop_assert!(offset > len || n > head);
                }
            }
        }
    }
}
