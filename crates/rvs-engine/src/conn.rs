//! The connection table: compact entries in a slab, indexed by two intrusive hash chains.
//!
//! Each [`Conn`] is one flow (or one persistence template) through the director. Entries live in
//! a `Vec` slab and are found through two bucket arrays of `u32` slab indices:
//! * the **in** index, keyed `<protocol, caddr, cport, vaddr, vport>` (client → VIP packets and
//!   template lookups);
//! * the **out** index, keyed `<protocol, daddr, dport, caddr, cport>`, linked only for NAT
//!   connections, whose replies pass the director and must be matched back to their entry.
//!
//! Chains are singly linked through `next_in` / `next_out`, so an IPv4 entry costs 48 bytes plus
//! one `u32` per bucket per index; the bucket arrays grow to keep at most one entry per bucket on
//! average. That is what makes an IPv4 connection cost ≈ 56–64 bytes in all (kernel IPVS: ≈ 320).
//!
//! Time in entries is in [`TICK_MS`] ticks stored as `u32` and compared with wrapping arithmetic,
//! which stays correct for timeouts up to 2^31 ticks (≈ 248 days), above IPVS's 31-day maximum.

use std::fmt::Debug;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rvs_api::Netmask;

use crate::dest::DestId;

/// Length of one timer tick in milliseconds.
pub const TICK_MS: u64 = 10;

/// "No entry" in chains, buckets and `control`.
pub const NIL: u32 = u32::MAX;

/// Index of an entry in a [`ConnTable`].
pub type ConnIdx = u32;

/// Connection flag bits kept in [`Conn::flags`] (a 16-bit subset of IPVS's `IP_VS_CONN_F_*`).
pub mod flags {
    /// Forwarding method mask (IPVS codes: 0 Masq, 1 Local, 2 Tunnel, 3 Route).
    pub const FWD_MASK: u16 = 0x0007;
    /// Created from a sync message.
    pub const SYNC: u16 = 0x0020;
    /// Replies never pass the director (DR/TUN): the TCP state machine uses the INPUT-ONLY table.
    pub const NOOUTPUT: u16 = 0x0080;
    /// Counted as inactive.
    pub const INACTIVE: u16 = 0x0100;
    /// Persistence template.
    pub const TEMPLATE: u16 = 0x1000;
    /// One-packet scheduling connection (never stored).
    pub const ONE_PACKET: u16 = 0x2000;
    /// Linked into the out index (NAT).
    pub const OUT_LINKED: u16 = 0x4000;
    /// Template state ASSURED (one of its connections got established or a UDP reply was seen).
    pub const ASSURED: u16 = 0x8000;
    /// Exported to the XDP fast path.
    pub const FAST: u16 = 0x0400;
    /// Fast-path connection whose timer ran out: waiting for the daemon's idle report.
    pub const PROBING: u16 = 0x0200;
    /// Slot is free (never set on a live entry).
    pub(crate) const FREE: u16 = 0x0800;
}

/// An address type connections are keyed by: IPv4 or IPv6.
pub trait ConnAddr: Copy + Eq + Hash + Debug + 'static {
    /// The unspecified address (placeholder for fields that do not apply).
    const UNSPECIFIED: Self;
    /// As a std address.
    fn to_ip(self) -> IpAddr;
    /// From a std address of the same family.
    fn from_ip(ip: IpAddr) -> Option<Self>;
    /// Address width in bits (32 or 128).
    const BITS: u32;
    /// Packs the address into 128 bits for hashing.
    fn bits(self) -> u128;
    /// The address with a persistence netmask applied (the client network of a template).
    fn masked(self, netmask: &Netmask) -> Self;
    /// A firewall mark as a template's virtual address (the mark in the first 32 bits).
    fn from_mark(mark: u32) -> Self;
}

impl ConnAddr for Ipv4Addr {
    const UNSPECIFIED: Self = Ipv4Addr::UNSPECIFIED;
    const BITS: u32 = 32;
    fn to_ip(self) -> IpAddr {
        IpAddr::V4(self)
    }
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }
    #[inline]
    fn bits(self) -> u128 {
        u32::from(self) as u128
    }
    fn masked(self, netmask: &Netmask) -> Self {
        match netmask {
            Netmask::V4(m) => Self::from(u32::from(self) & u32::from(*m)),
            Netmask::V6(_) => self,
        }
    }
    fn from_mark(mark: u32) -> Self {
        Self::from(mark)
    }
}

impl ConnAddr for Ipv6Addr {
    const UNSPECIFIED: Self = Ipv6Addr::UNSPECIFIED;
    const BITS: u32 = 128;
    fn to_ip(self) -> IpAddr {
        IpAddr::V6(self)
    }
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }
    }
    #[inline]
    fn bits(self) -> u128 {
        u128::from(self)
    }
    fn masked(self, netmask: &Netmask) -> Self {
        match netmask {
            Netmask::V6(len) if *len < 128 => {
                let mask = if *len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(*len))
                };
                Self::from(u128::from(self) & mask)
            }
            _ => self,
        }
    }
    fn from_mark(mark: u32) -> Self {
        Self::from(u128::from(mark) << 96)
    }
}

/// One connection or persistence template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Conn<A> {
    /// Client address (templates: the client network).
    pub caddr: A,
    /// Virtual address (fwmark templates: the mark in the first 32 bits).
    pub vaddr: A,
    /// Real server address (meaningful for NAT; other methods read it from the dest).
    pub daddr: A,
    /// Real server.
    pub dest: DestId,
    /// Expiry time in ticks (wrapping).
    pub expires: u32,
    /// Controlling template's index, or [`NIL`].
    pub control: u32,
    /// Connections: incoming packet count (sync threshold). Templates: controlled connections.
    pub aux: u32,
    next_in: u32,
    next_out: u32,
    /// Client port (0 for templates).
    pub cport: u16,
    /// Virtual port.
    pub vport: u16,
    /// Real server port.
    pub dport: u16,
    /// [`flags`] bits.
    pub flags: u16,
    /// IP protocol number (0 for fwmark templates).
    pub proto: u8,
    /// Protocol state (see [`crate::state`]); templates: 0.
    pub state: u8,
}

impl<A: ConnAddr> Conn<A> {
    /// A new entry, not yet linked anywhere.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        proto: u8,
        caddr: A,
        cport: u16,
        vaddr: A,
        vport: u16,
        daddr: A,
        dport: u16,
        dest: DestId,
        flags: u16,
        expires: u32,
    ) -> Self {
        Self {
            caddr,
            vaddr,
            daddr,
            dest,
            expires,
            control: NIL,
            aux: 0,
            next_in: NIL,
            next_out: NIL,
            cport,
            vport,
            dport,
            flags,
            proto,
            state: 0,
        }
    }

    /// Whether this entry is a persistence template.
    pub const fn is_template(&self) -> bool {
        self.flags & flags::TEMPLATE != 0
    }

    /// IPVS forwarding code (0 Masq, 1 Local, 2 Tunnel, 3 Route).
    pub const fn fwd_code(&self) -> u16 {
        self.flags & flags::FWD_MASK
    }

    /// Whether the entry has expired at tick `now`.
    #[inline]
    pub const fn expired(&self, now: u32) -> bool {
        (self.expires.wrapping_sub(now) as i32) <= 0
    }

    /// Ticks left before expiry (0 if expired).
    pub const fn remaining(&self, now: u32) -> u32 {
        let d = self.expires.wrapping_sub(now) as i32;
        if d > 0 { d as u32 } else { 0 }
    }
}

/// `<protocol, caddr, cport, vaddr, vport>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InKey<A> {
    /// IP protocol (0 for fwmark templates).
    pub proto: u8,
    /// Client address.
    pub caddr: A,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vaddr: A,
    /// Virtual port.
    pub vport: u16,
}

/// `<protocol, daddr, dport, caddr, cport>` (a NAT reply seen from the real server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutKey<A> {
    /// IP protocol.
    pub proto: u8,
    /// Real server address (reply source).
    pub daddr: A,
    /// Real server port (reply source port).
    pub dport: u16,
    /// Client address (reply destination).
    pub caddr: A,
    /// Client port (reply destination port).
    pub cport: u16,
}

/// The table. See the module docs.
#[derive(Debug, Clone)]
pub struct ConnTable<A> {
    entries: Vec<Conn<A>>,
    free_head: u32,
    len: usize,
    in_buckets: Vec<u32>,
    out_buckets: Vec<u32>,
    mask: usize,
    hasher: foldhash::fast::FixedState,
    /// Changes whenever an entry is linked into or unlinked from the indexes (so a lookup
    /// result stays valid while it does not change).
    links: u32,
}

const MIN_BUCKETS: usize = 4096;

impl<A: ConnAddr> ConnTable<A> {
    /// An empty table sized for `capacity` entries, hashing with `seed` (choose it at random in
    /// production: the keys come from the network).
    pub fn new(capacity: usize, seed: u64) -> Self {
        let buckets = capacity.next_power_of_two().max(MIN_BUCKETS);
        Self {
            entries: Vec::with_capacity(capacity),
            free_head: NIL,
            len: 0,
            in_buckets: vec![NIL; buckets],
            out_buckets: vec![NIL; buckets],
            mask: buckets - 1,
            hasher: foldhash::fast::FixedState::with_seed(seed),
            links: 0,
        }
    }

    /// A value that changes whenever the indexes change: while it stays the same, every
    /// lookup gives the same result.
    #[inline]
    pub(crate) const fn link_generation(&self) -> u32 {
        self.links
    }

    /// Live entries (connections and templates).
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of hash buckets per index (`size=` in `ipvsadm -L`).
    pub const fn buckets(&self) -> usize {
        self.mask + 1
    }

    /// Slab slots, live or free (iteration bound for sweeps).
    pub const fn slots(&self) -> usize {
        self.entries.len()
    }

    /// Memory held by the table in bytes (slab capacity and both bucket arrays).
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * size_of::<Conn<A>>()
            + (self.in_buckets.capacity() + self.out_buckets.capacity()) * size_of::<u32>()
    }

    /// Keyed hash of two addresses and the packed ports. Two IPv4 addresses fit one word,
    /// which halves the hashing work of the hot path; every bit still goes through the key.
    #[inline]
    fn hash_key(&self, a: A, b: A, ports: u64) -> u64 {
        if A::BITS == 32 {
            self.hasher
                .hash_one(((a.bits() as u64) << 32 | b.bits() as u64, ports))
        } else {
            self.hasher.hash_one((a.bits(), b.bits(), ports))
        }
    }

    /// The full in-index hash of a key: independent of the table size, so it stays valid
    /// across growth (see [`ConnTable::lookup_in_hashed`]).
    #[inline]
    pub(crate) fn in_hash(&self, key: &InKey<A>) -> u64 {
        let ports = (key.cport as u64) << 24 | (key.vport as u64) << 8 | key.proto as u64;
        self.hash_key(key.caddr, key.vaddr, ports)
    }

    #[inline]
    fn hash_in(&self, proto: u8, caddr: A, cport: u16, vaddr: A, vport: u16) -> usize {
        let ports = (cport as u64) << 24 | (vport as u64) << 8 | proto as u64;
        self.hash_key(caddr, vaddr, ports) as usize & self.mask
    }

    #[inline]
    fn hash_out(&self, proto: u8, daddr: A, dport: u16, caddr: A, cport: u16) -> usize {
        // A different field order from hash_in keeps the two indexes independent.
        let ports = (dport as u64) << 24 | (cport as u64) << 8 | proto as u64;
        self.hash_key(daddr, caddr, ports) as usize & self.mask
    }

    /// The connection (not template) matching `key`.
    #[inline]
    pub fn lookup_in(&self, key: &InKey<A>) -> Option<ConnIdx> {
        self.find_in(key, false)
    }

    /// The persistence template matching `key`.
    pub fn lookup_template(&self, key: &InKey<A>) -> Option<ConnIdx> {
        self.find_in(key, true)
    }

    /// [`ConnTable::lookup_in`] with `hash` = [`ConnTable::in_hash`]`(key)` computed earlier.
    #[inline]
    pub(crate) fn lookup_in_hashed(&self, key: &InKey<A>, hash: u64) -> Option<ConnIdx> {
        self.find_in_bucket(key, false, hash as usize & self.mask)
    }

    #[inline]
    fn find_in(&self, key: &InKey<A>, template: bool) -> Option<ConnIdx> {
        let b = self.hash_in(key.proto, key.caddr, key.cport, key.vaddr, key.vport);
        self.find_in_bucket(key, template, b)
    }

    #[inline]
    fn find_in_bucket(&self, key: &InKey<A>, template: bool, b: usize) -> Option<ConnIdx> {
        let mut i = self.in_buckets[b];
        while i != NIL {
            let c = &self.entries[i as usize];
            if Self::in_matches(c, key, template) {
                return Some(i);
            }
            i = c.next_in;
        }
        None
    }

    /// The NAT connection whose reply matches `key`.
    #[inline]
    pub fn lookup_out(&self, key: &OutKey<A>) -> Option<ConnIdx> {
        let b = self.hash_out(key.proto, key.daddr, key.dport, key.caddr, key.cport);
        let mut i = self.out_buckets[b];
        while i != NIL {
            let c = &self.entries[i as usize];
            if c.cport == key.cport
                && c.dport == key.dport
                && c.proto == key.proto
                && c.caddr == key.caddr
                && c.daddr == key.daddr
            {
                return Some(i);
            }
            i = c.next_out;
        }
        None
    }

    /// Loads the head of the in-index bucket of a key with [`ConnTable::in_hash`] `hash`
    /// (batch warm-up: the value only feeds [`ConnTable::warm_chain`]; it may be stale by
    /// the time the packet is processed).
    #[inline]
    pub(crate) fn warm_bucket(&self, hash: u64) -> ConnIdx {
        self.in_buckets
            .get(hash as usize & self.mask)
            .copied()
            .unwrap_or(NIL)
    }

    /// [`ConnTable::lookup_in`] from `head`, the head of the key's bucket loaded earlier by
    /// [`ConnTable::warm_bucket`] (batch warm-up). The result is the lookup's as long as
    /// [`ConnTable::link_generation`] has not changed since `head` was loaded. The match
    /// reads both ends of the entry, so both lines of a straddling entry are loaded.
    #[inline]
    pub(crate) fn lookup_in_from(&self, mut i: ConnIdx, key: &InKey<A>) -> Option<ConnIdx> {
        while let Some(c) = self.entries.get(i as usize) {
            if Self::in_matches(c, key, false) {
                return Some(i);
            }
            i = c.next_in;
        }
        None
    }

    #[inline(always)]
    fn in_matches(c: &Conn<A>, key: &InKey<A>, template: bool) -> bool {
        c.cport == key.cport
            && c.vport == key.vport
            && c.proto == key.proto
            && c.caddr == key.caddr
            && c.vaddr == key.vaddr
            && c.is_template() == template
    }

    /// Inserts `conn`, linking it into the out index too when `link_out` (NAT connections).
    pub fn insert(&mut self, mut conn: Conn<A>, link_out: bool) -> ConnIdx {
        if self.len >= self.buckets() {
            self.grow();
        }
        conn.flags &= !(flags::FREE | flags::OUT_LINKED);
        if link_out {
            conn.flags |= flags::OUT_LINKED;
        }
        let idx = if self.free_head != NIL {
            let idx = self.free_head;
            self.free_head = self.entries[idx as usize].next_in;
            self.entries[idx as usize] = conn;
            idx
        } else {
            self.entries.push(conn);
            (self.entries.len() - 1) as u32
        };
        self.link(idx);
        self.len += 1;
        idx
    }

    fn link(&mut self, idx: ConnIdx) {
        self.links = self.links.wrapping_add(1);
        let c = self.entries[idx as usize];
        let b = self.hash_in(c.proto, c.caddr, c.cport, c.vaddr, c.vport);
        self.entries[idx as usize].next_in = self.in_buckets[b];
        self.in_buckets[b] = idx;
        if c.flags & flags::OUT_LINKED != 0 {
            let b = self.hash_out(c.proto, c.daddr, c.dport, c.caddr, c.cport);
            self.entries[idx as usize].next_out = self.out_buckets[b];
            self.out_buckets[b] = idx;
        }
    }

    fn unlink(&mut self, idx: ConnIdx) {
        self.links = self.links.wrapping_add(1);
        let c = self.entries[idx as usize];
        let b = self.hash_in(c.proto, c.caddr, c.cport, c.vaddr, c.vport);
        Self::unlink_from(&mut self.in_buckets[b], idx, &mut self.entries, |e| {
            &mut e.next_in
        });
        if c.flags & flags::OUT_LINKED != 0 {
            let b = self.hash_out(c.proto, c.daddr, c.dport, c.caddr, c.cport);
            Self::unlink_from(&mut self.out_buckets[b], idx, &mut self.entries, |e| {
                &mut e.next_out
            });
        }
    }

    fn unlink_from(
        head: &mut u32,
        idx: ConnIdx,
        entries: &mut [Conn<A>],
        next: impl Fn(&mut Conn<A>) -> &mut u32,
    ) {
        if *head == idx {
            *head = *next(&mut entries[idx as usize]);
            return;
        }
        let mut i = *head;
        while i != NIL {
            let n = *next(&mut entries[i as usize]);
            if n == idx {
                let after = *next(&mut entries[idx as usize]);
                *next(&mut entries[i as usize]) = after;
                return;
            }
            i = n;
        }
    }

    fn grow(&mut self) {
        self.links = self.links.wrapping_add(1);
        let buckets = self.buckets() * 2;
        self.in_buckets = vec![NIL; buckets];
        self.out_buckets = vec![NIL; buckets];
        self.mask = buckets - 1;
        for i in 0..self.entries.len() {
            if self.entries[i].flags & flags::FREE == 0 {
                self.link(i as u32);
            }
        }
    }

    /// Removes the entry and returns it.
    ///
    /// # Panics
    /// If `idx` is not a live entry (an engine bug).
    pub fn remove(&mut self, idx: ConnIdx) -> Conn<A> {
        assert!(self.is_live(idx), "removing a free connection slot");
        self.unlink(idx);
        let c = self.entries[idx as usize];
        let e = &mut self.entries[idx as usize];
        e.flags = flags::FREE;
        e.next_in = self.free_head;
        self.free_head = idx;
        self.len -= 1;
        c
    }

    /// Changes the ports of a live entry and re-links it (templates are invalidated by moving
    /// them to ports no packet can carry a key for).
    pub fn rekey(&mut self, idx: ConnIdx, cport: u16, vport: u16, dport: u16) {
        self.unlink(idx);
        let e = &mut self.entries[idx as usize];
        e.cport = cport;
        e.vport = vport;
        e.dport = dport;
        self.link(idx);
    }

    /// Whether `idx` is a live entry.
    pub fn is_live(&self, idx: ConnIdx) -> bool {
        self.entries
            .get(idx as usize)
            .is_some_and(|c| c.flags & flags::FREE == 0)
    }

    /// The entry at `idx` (callers hold indices from lookups or iteration).
    #[inline]
    pub fn get(&self, idx: ConnIdx) -> &Conn<A> {
        &self.entries[idx as usize]
    }

    /// The entry at `idx`, mutably. Key fields must not be changed (use [`ConnTable::rekey`]).
    #[inline]
    pub fn get_mut(&mut self, idx: ConnIdx) -> &mut Conn<A> {
        &mut self.entries[idx as usize]
    }

    /// The live entry in slot `idx`, if any (for sweeps over `0..slots()`).
    pub fn slot(&self, idx: ConnIdx) -> Option<&Conn<A>> {
        self.entries
            .get(idx as usize)
            .filter(|c| c.flags & flags::FREE == 0)
    }

    /// Every live entry with its index.
    pub fn iter(&self) -> impl Iterator<Item = (ConnIdx, &Conn<A>)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, c)| c.flags & flags::FREE == 0)
            .map(|(i, c)| (i as u32, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn v4(n: u32) -> Ipv4Addr {
        Ipv4Addr::from(0xC612_0000 | n)
    }

    #[test]
    fn entry_is_compact() {
        assert_eq!(size_of::<Conn<Ipv4Addr>>(), 48);
        assert!(size_of::<Conn<Ipv6Addr>>() <= 88);
    }

    #[test]
    fn insert_lookup_remove_both_directions() {
        let mut t = ConnTable::<Ipv4Addr>::new(16, 7);
        let c = Conn::new(
            6,
            v4(1),
            40000,
            v4(100),
            80,
            v4(11),
            8080,
            DestId(3),
            0,
            100,
        );
        let i = t.insert(c, true);
        let ik = InKey {
            proto: 6,
            caddr: v4(1),
            cport: 40000,
            vaddr: v4(100),
            vport: 80,
        };
        let ok = OutKey {
            proto: 6,
            daddr: v4(11),
            dport: 8080,
            caddr: v4(1),
            cport: 40000,
        };
        assert_eq!(t.lookup_in(&ik), Some(i));
        assert_eq!(t.lookup_out(&ok), Some(i));
        assert_eq!(t.lookup_template(&ik), None);
        assert_eq!(t.lookup_in(&InKey { cport: 40001, ..ik }), None);
        t.remove(i);
        assert_eq!(t.lookup_in(&ik), None);
        assert_eq!(t.lookup_out(&ok), None);
        assert!(t.is_empty());
    }

    #[test]
    fn wrapping_expiry() {
        let c = Conn::new(
            17,
            v4(1),
            1,
            v4(2),
            2,
            v4(3),
            3,
            DestId(0),
            0,
            5u32.wrapping_sub(10),
        );
        // Expires at u32::MAX - 4; time keeps going across the wrap.
        assert!(!c.expired(u32::MAX - 20));
        assert!(!c.expired(u32::MAX - 5));
        assert!(c.expired(u32::MAX - 4));
        assert!(c.expired(3));
        assert_eq!(c.remaining(u32::MAX - 20), 16);
        assert_eq!(c.remaining(3), 0);
    }

    proptest! {
        /// The table agrees with a HashMap model through random inserts, removals and growth.
        #[test]
        fn matches_a_model(ops in proptest::collection::vec((0u8..3, 0u32..300, any::<bool>()), 1..2000)) {
            let mut t = ConnTable::<Ipv4Addr>::new(1, 1);
            let mut model: HashMap<u32, ConnIdx> = HashMap::new();
            for (op, k, nat) in ops {
                let ik = InKey { proto: 6, caddr: v4(k), cport: k as u16, vaddr: v4(1000), vport: 80 };
                match op {
                    0 | 1 => {
                        if let std::collections::hash_map::Entry::Vacant(e) = model.entry(k) {
                            let c = Conn::new(6, v4(k), k as u16, v4(1000), 80, v4(k + 5000), 8080, DestId(k), 0, 0);
                            e.insert(t.insert(c, nat));
                        }
                    }
                    _ => {
                        if let Some(i) = model.remove(&k) {
                            prop_assert_eq!(t.remove(i).dest, DestId(k));
                        }
                    }
                }
                prop_assert_eq!(t.lookup_in(&ik), model.get(&k).copied());
            }
            prop_assert_eq!(t.len(), model.len());
            for (k, i) in &model {
                let ik = InKey { proto: 6, caddr: v4(*k), cport: *k as u16, vaddr: v4(1000), vport: 80 };
                prop_assert_eq!(t.lookup_in(&ik), Some(*i));
                if t.get(*i).flags & flags::OUT_LINKED != 0 {
                    let ok = OutKey { proto: 6, daddr: v4(k + 5000), dport: 8080, caddr: v4(*k), cport: *k as u16 };
                    prop_assert_eq!(t.lookup_out(&ok), Some(*i));
                }
            }
        }
    }
}
