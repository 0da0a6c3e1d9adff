//! An incremental index for the weighted-least pick of `wlc` and `sed`.
//!
//! The kernel scans every real server of the service for each new connection. This index
//! gives the same answer — the first server in list order among the schedulable ones with
//! the lowest `overhead / weight`, compared by cross-multiplication — from a tournament tree
//! over the list positions: a leaf per server, and each inner node holding the winner of its
//! two children, the right (later) child winning only when strictly better. The root is then
//! the first minimum, exactly the server the sequential scan keeps.
//!
//! The engine reports every change of a server's load ([`LeastIndex::note`]: connection
//! counts, the OVERLOAD flag); the leaves of changed servers are re-read and their paths
//! replayed at the next pick, so a pick costs `O(changes × log n)` instead of `O(n)`. List
//! and weight changes rebuild the tree ([`LeastIndex::rebuild`]).

use super::lc::{better_w, sed_overhead};
use crate::dest::{Dest, DestId, DestList};

/// No position (a padding leaf, or a server not in the list).
const NONE: u32 = u32::MAX;

/// The load measure being compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Metric {
    /// `wlc`: `activeconns * 256 + inactconns`.
    Wlc,
    /// `sed`: `activeconns + 1`.
    Sed,
}

impl Metric {
    fn overhead(self, d: &Dest) -> u64 {
        match self {
            Self::Wlc => d.overhead(),
            Self::Sed => sed_overhead(d),
        }
    }
}

/// What the tree compares of one server.
#[derive(Debug, Clone, Copy)]
struct Leaf {
    overhead: u64,
    weight: u32,
    /// Weight > 0 and not overloaded. (A weight-0 server is never strictly better than a
    /// schedulable one in the kernel's scan, so leaving it out changes nothing.)
    schedulable: bool,
}

impl Leaf {
    const OUT: Self = Self {
        overhead: 0,
        weight: 0,
        schedulable: false,
    };

    fn of(metric: Metric, d: Option<&Dest>) -> Self {
        // A vacant slot (never in a list) reads as weight 0, overloaded.
        d.map_or(Self::OUT, |d| Self {
            overhead: metric.overhead(d),
            weight: d.weight,
            schedulable: d.is_schedulable(),
        })
    }
}

/// The tournament tree of one service. See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct LeastIndex {
    metric: Metric,
    /// The service's list, in order.
    ids: Vec<DestId>,
    /// Arena index → list position (`NONE` when not listed).
    pos: Vec<u32>,
    /// Per list position.
    leaves: Vec<Leaf>,
    /// Implicit binary tree, root at 1, leaf of position `p` at `width + p`; each node holds
    /// the winning position of its subtree (`NONE` for an all-padding subtree).
    tree: Vec<u32>,
    /// Leaf count of the tree: the list length rounded up to a power of two.
    width: usize,
    /// Positions whose leaf must be re-read before the next pick, and the flags that keep
    /// them listed once.
    dirty: Vec<u32>,
    queued: Vec<bool>,
}

impl LeastIndex {
    /// An index over `dests`.
    pub(crate) fn new(metric: Metric, dests: DestList<'_>) -> Self {
        let mut ix = Self {
            metric,
            ids: Vec::new(),
            pos: Vec::new(),
            leaves: Vec::new(),
            tree: Vec::new(),
            width: 1,
            dirty: Vec::new(),
            queued: Vec::new(),
        };
        ix.rebuild(dests);
        ix
    }

    /// Rebuilds the tree from `dests` (after a change of the list or of a weight).
    pub(crate) fn rebuild(&mut self, dests: DestList<'_>) {
        let arena = dests.arena();
        self.ids.clear();
        self.ids.extend_from_slice(dests.ids());
        let n = self.ids.len();
        self.pos.clear();
        for (p, id) in self.ids.iter().enumerate() {
            let i = id.index();
            if i >= self.pos.len() {
                self.pos.resize(i + 1, NONE);
            }
            self.pos[i] = p as u32;
        }
        self.leaves.clear();
        self.leaves.extend(
            self.ids
                .iter()
                .map(|&id| Leaf::of(self.metric, arena.get_any(id))),
        );
        self.width = n.next_power_of_two().max(1);
        self.tree.clear();
        self.tree.resize(2 * self.width, NONE);
        for p in 0..n {
            self.tree[self.width + p] = p as u32;
        }
        for node in (1..self.width).rev() {
            self.tree[node] = self.winner(self.tree[2 * node], self.tree[2 * node + 1]);
        }
        self.dirty.clear();
        self.queued.clear();
        self.queued.resize(n, false);
    }

    /// The load of `id` (connection counts or OVERLOAD flag) may have changed. Servers not
    /// in the list are ignored.
    #[inline]
    pub(crate) fn note(&mut self, id: DestId) {
        if let Some(&p) = self.pos.get(id.index())
            && p != NONE
            && let Some(q) = self.queued.get_mut(p as usize)
            && !*q
        {
            *q = true;
            self.dirty.push(p);
        }
    }

    /// The weighted-least pick over `dests` (the list the index was built from), or `None`
    /// if no server is schedulable.
    pub(crate) fn pick(&mut self, dests: DestList<'_>) -> Option<DestId> {
        let arena = dests.arena();
        while let Some(p) = self.dirty.pop() {
            let p = p as usize;
            self.queued[p] = false;
            self.leaves[p] = Leaf::of(self.metric, arena.get_any(self.ids[p]));
            let mut node = (self.width + p) / 2;
            while node >= 1 {
                self.tree[node] = self.winner(self.tree[2 * node], self.tree[2 * node + 1]);
                node /= 2;
            }
        }
        let root = *self.tree.get(1).unwrap_or(&NONE);
        let best = self.leaves.get(root as usize)?;
        best.schedulable.then(|| self.ids[root as usize])
    }

    /// The winner of two subtrees whose winners are `left` and `right` (every position on
    /// the left precedes every position on the right): the right one only if it is
    /// schedulable and strictly better, or the left one is not schedulable.
    #[inline]
    fn winner(&self, left: u32, right: u32) -> u32 {
        let (Some(l), Some(r)) = (
            self.leaves.get(left as usize),
            self.leaves.get(right as usize),
        ) else {
            return if left == NONE { right } else { left };
        };
        if !r.schedulable {
            return left;
        }
        if !l.schedulable || better_w(l.overhead, l.weight, r.overhead, r.weight) {
            right
        } else {
            left
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::testutil::Harness;
    use super::super::{SchedulerKind, lc};
    use super::*;

    /// The index and the kernel's scan agree after any sequence of load, weight and list
    /// changes, both metrics.
    #[test]
    fn matches_the_scan() {
        proptest!(ProptestConfig::with_cases(200), |(
            sed in any::<bool>(),
            weights in prop::collection::vec(0u32..4, 1..12),
            ops in prop::collection::vec((0usize..12, 0u8..6, 0u32..6, 0u32..600), 1..60),
        )| {
            let kind = if sed { SchedulerKind::Sed } else { SchedulerKind::Wlc };
            let servers: Vec<(String, u16, u32)> = weights
                .iter()
                .enumerate()
                .map(|(i, &w)| (format!("10.0.0.{}", i + 1), 80, w))
                .collect();
            let spec: Vec<(&str, u16, u32)> =
                servers.iter().map(|(a, p, w)| (a.as_str(), *p, *w)).collect();
            let mut h = Harness::with(kind, 0, &spec);
            let mut added = weights.len();
            for (who, op, a, b) in ops {
                let id = h.order[who % h.order.len()];
                match op {
                    0 => h.set_conns(id, a, b),
                    1 => h.set_overloaded(id, a % 2 == 0),
                    2 => h.set_weight(id, a),
                    3 => h.bind(id, a % 2 == 0),
                    // List changes: a server added at the head, one deleted (never the last).
                    _ if a % 2 == 0 => {
                        added += 1;
                        h.add(&format!("10.0.1.{added}"), 80, b % 4);
                    }
                    _ if h.order.len() > 1 => h.del(id),
                    _ => {}
                }
                let list = DestList::new(&h.order, &h.arena);
                let want = if sed { lc::sed(list) } else { lc::wlc(list) };
                prop_assert_eq!(h.schedule_any(), want);
            }
        });
    }
}
