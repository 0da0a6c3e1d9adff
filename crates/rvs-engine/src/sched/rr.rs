//! `rr`: round robin (`ip_vs_rr.c`).
//!
//! The state is a cursor on the last chosen real server, or on the list head before the first
//! choice. Each call walks on from the node after the cursor, wrapping at most once, and takes the
//! first server with weight > 0 that is not overloaded. Weight magnitudes are ignored.

use crate::dest::{DestId, DestList};

/// Round-robin cursor.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rr {
    /// Last chosen real server; `None` is the list head (nothing chosen yet).
    cursor: Option<DestId>,
}

impl Rr {
    /// `init_service`: the cursor starts on the list head.
    pub(crate) const fn new() -> Self {
        Self { cursor: None }
    }

    /// `del_dest`: if the cursor is on `id`, it moves to `id`'s predecessor in list order (the
    /// list head if `id` was first), so the next call continues with `id`'s successor.
    pub(crate) fn del_dest(&mut self, before: DestList<'_>, id: DestId) {
        if self.cursor != Some(id) {
            return;
        }
        let pos = before.ids().iter().position(|&x| x == id);
        self.cursor = match pos {
            Some(p) if p > 0 => Some(before.ids()[p - 1]),
            _ => None,
        };
    }

    /// Picks the next usable real server after the cursor.
    pub(crate) fn schedule(&mut self, dests: DestList<'_>) -> Option<DestId> {
        let n = dests.len();
        // Index of the first node to examine. A cursor that is not in the list any more (cannot
        // happen through the engine) behaves like the head.
        let start = self
            .cursor
            .and_then(|c| dests.ids().iter().position(|&x| x == c))
            .map_or(0, |p| p + 1);
        let chosen = (0..n)
            .map(|i| dests.at((start + i) % n))
            .find(|(_, d)| d.is_schedulable())
            .map(|(id, _)| id)?;
        self.cursor = Some(chosen);
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use crate::sched::SchedulerKind;
    use crate::sched::testutil::Harness;

    #[test]
    fn rr_alternates_newest_first() {
        // §11 item 40: A then B added → B, A, B, A…
        let mut h = Harness::with(
            SchedulerKind::Rr,
            0,
            &[("10.0.0.1", 80, 1), ("10.0.0.2", 80, 1)],
        );
        let (a, b) = (h.id(0), h.id(1));
        let seq: Vec<_> = (0..6).map(|_| h.schedule_any().unwrap()).collect();
        assert_eq!(seq, [b, a, b, a, b, a]);
    }

    #[test]
    fn rr_ignores_weight_magnitude_and_skips_unusable() {
        let mut h = Harness::with(
            SchedulerKind::Rr,
            0,
            &[
                ("10.0.0.1", 80, 5),
                ("10.0.0.2", 80, 1),
                ("10.0.0.3", 80, 1),
            ],
        );
        let (a, b, c) = (h.id(0), h.id(1), h.id(2));
        // List order is C, B, A; weights 5/1/1 do not matter.
        let seq: Vec<_> = (0..6).map(|_| h.schedule_any().unwrap()).collect();
        assert_eq!(seq, [c, b, a, c, b, a]);
        h.set_weight(b, 0);
        h.set_overloaded(c, true);
        let seq: Vec<_> = (0..4).map(|_| h.schedule_any().unwrap()).collect();
        assert_eq!(seq, [a, a, a, a]);
        h.set_overloaded(a, true);
        assert_eq!(h.schedule_any(), None);
        h.set_overloaded(c, false);
        assert_eq!(h.schedule_any(), Some(c));
    }

    #[test]
    fn rr_cursor_moves_to_predecessor_on_delete() {
        let mut h = Harness::with(
            SchedulerKind::Rr,
            0,
            &[
                ("10.0.0.1", 80, 1),
                ("10.0.0.2", 80, 1),
                ("10.0.0.3", 80, 1),
            ],
        );
        let (a, b, c) = (h.id(0), h.id(1), h.id(2));
        // List C, B, A.
        assert_eq!(h.schedule_any(), Some(c));
        assert_eq!(h.schedule_any(), Some(b));
        // Cursor on B; deleting B moves it to C, so the next pick is B's successor A.
        h.del(b);
        assert_eq!(h.schedule_any(), Some(a));
        assert_eq!(h.schedule_any(), Some(c));
        // Cursor on C (first in list): deleting it moves the cursor to the head.
        h.del(c);
        assert_eq!(h.schedule_any(), Some(a));
        // A newly added dest goes to the head; the cursor stays on A, so the new one is next.
        let d = h.add("10.0.0.4", 80, 1);
        assert_eq!(h.schedule_any(), Some(d));
        assert_eq!(h.schedule_any(), Some(a));
        h.del(a);
        h.del(d);
        assert_eq!(h.schedule_any(), None);
    }
}
