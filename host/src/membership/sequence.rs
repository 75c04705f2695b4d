//! The receiver side of reliable delivery for one sender: sequence tracking, duplicate
//! suppression, missing packets and in-order release (spec §1.10, §1.11).
//!
//! Owns, per peer, the last sequence number, the missing ones with the time each is next to
//! be requested, and the messages held back until the gaps below them are filled. It decides
//! how one arrival is classified; it never sends anything, reads a clock or draws a random
//! number itself (the first request delay is passed in).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::wire::Message;

/// A gap wider than this restarts tracking instead of requesting every packet (half of the
/// sender's 500-message history, Heartbeat's `FLOWCONTROL_LIMIT`).
pub(super) const MAX_GAP: u64 = 250;
/// At most this many missing sequence numbers are remembered; beyond, the lowest is given up.
pub(super) const MAX_MISSING: usize = 500;
/// At most this many messages wait for a gap below them; beyond, the lowest gap is given up.
pub(super) const MAX_HELD: usize = 500;

/// How one arrival was classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arrival {
    /// The next expected one (or the first one).
    InOrder,
    /// Already seen, or older than anything we still care about.
    Duplicate,
    /// Newer than expected: `first..=last` are now missing and scheduled for requests.
    Gap { first: u64, last: u64 },
    /// Newer than expected by more than [`MAX_GAP`]: tracking restarted at this one.
    TooManyLost { first: u64, last: u64 },
    /// A missing one arrived.
    Recovered {
        /// It was the lowest missing sequence number.
        was_first_missing: bool,
        /// Nothing is missing any more.
        none_missing: bool,
    },
    /// Older than what tracking has seen, accepted once because the sender came back after
    /// being declared dead with a status we never had; tracking is left where it is.
    Resynced,
}

/// Sequence state for one sender.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct SequenceTracker {
    /// The highest sequence number accepted since tracking (re)started.
    last_seq: Option<u64>,
    /// The highest sequence number ever accepted in the sender's current generation. It
    /// survives the reset at death, so that late copies of old messages are not taken for
    /// new ones.
    floor: u64,
    /// Missing sequence numbers, each with the time it is next to be requested.
    missing: BTreeMap<u64, Duration>,
    /// Accepted messages for us that wait for lower missing ones.
    held: BTreeMap<u64, Message>,
}

impl SequenceTracker {
    /// Classifies `seq` and records it. `resync` allows an older number to restart tracking
    /// (sender restarted or returned). `first_request` gives the delay before the first
    /// request of each newly missing number.
    pub(super) fn accept(
        &mut self,
        seq: u64,
        resync: bool,
        now: Duration,
        mut first_request: impl FnMut() -> Duration,
    ) -> Arrival {
        let Some(last) = self.last_seq else {
            if seq > self.floor {
                self.take(seq);
                return Arrival::InOrder;
            }
            if !resync {
                return Arrival::Duplicate;
            }
            // Tracking restarts above everything already accepted, so that later copies of
            // those stay duplicates.
            self.last_seq = Some(self.floor);
            return Arrival::Resynced;
        };
        if Some(seq) == last.checked_add(1) {
            self.take(seq);
            return Arrival::InOrder;
        }
        if seq == last {
            return Arrival::Duplicate;
        }
        if seq > last {
            let (first, newest_missing) = (last + 1, seq - 1);
            if seq - last - 1 > MAX_GAP {
                self.missing.clear();
                self.take(seq);
                return Arrival::TooManyLost {
                    first,
                    last: newest_missing,
                };
            }
            for missing in first..=newest_missing {
                if self.missing.len() >= MAX_MISSING - 1 {
                    self.missing.pop_first();
                }
                self.missing.insert(missing, now + first_request());
            }
            self.take(seq);
            return Arrival::Gap {
                first,
                last: newest_missing,
            };
        }
        let lowest = self.first_missing();
        if self.missing.remove(&seq).is_some() {
            self.floor = self.floor.max(seq);
            return Arrival::Recovered {
                was_first_missing: lowest == Some(seq),
                none_missing: self.missing.is_empty(),
            };
        }
        if resync {
            // Never move tracking backwards: what came after it was already accepted.
            return Arrival::Resynced;
        }
        Arrival::Duplicate
    }

    fn take(&mut self, seq: u64) {
        self.last_seq = Some(seq);
        self.floor = self.floor.max(seq);
    }

    /// Forgets a missing number (its sender NAKed it). Returns whether it was missing.
    pub(super) fn give_up(&mut self, seq: u64) -> bool {
        self.missing.remove(&seq).is_some()
    }

    /// Restarts tracking after the sender was declared dead; the held messages are returned
    /// in order for delivery. Old copies of what was already accepted stay duplicates.
    pub(super) fn reset(&mut self) -> Vec<Message> {
        self.last_seq = None;
        self.missing.clear();
        std::mem::take(&mut self.held).into_values().collect()
    }

    /// Restarts tracking for a new generation of the sender: nothing from before counts.
    pub(super) fn restart(&mut self) -> Vec<Message> {
        self.floor = 0;
        self.reset()
    }

    /// Holds an accepted message for in-order release. If too many wait, the lowest gaps are
    /// given up; their numbers are returned.
    pub(super) fn hold(&mut self, seq: u64, message: Message) -> Vec<u64> {
        self.held.insert(seq, message);
        let mut abandoned = Vec::new();
        while self.held.len() > MAX_HELD {
            match self.missing.pop_first() {
                Some((seq, _)) => abandoned.push(seq),
                None => break,
            }
        }
        abandoned
    }

    /// Held messages that no missing number precedes any more, in order.
    pub(super) fn release(&mut self) -> Vec<Message> {
        let limit = self.first_missing();
        let mut released = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            if limit.is_some_and(|l| *entry.key() > l) {
                break;
            }
            released.push(entry.remove());
        }
        released
    }

    /// Missing numbers whose request time has come.
    pub(super) fn due_requests(&self, now: Duration) -> Vec<u64> {
        self.missing
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(seq, _)| *seq)
            .collect()
    }

    /// Sets when `seq` is next requested, if it is still missing.
    pub(super) fn request_again_at(&mut self, seq: u64, at: Duration) {
        if let Some(when) = self.missing.get_mut(&seq) {
            *when = at;
        }
    }

    /// The earliest pending request time.
    pub(super) fn next_request(&self) -> Option<Duration> {
        self.missing.values().min().copied()
    }

    /// The lowest missing sequence number.
    pub(super) fn first_missing(&self) -> Option<u64> {
        self.missing.keys().next().copied()
    }

    /// The last sequence number accepted since tracking (re)started.
    pub(super) fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// How many numbers are missing.
    pub(super) fn missing_count(&self) -> usize {
        self.missing.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::from_secs(10);

    fn accept(tracker: &mut SequenceTracker, seq: u64) -> Arrival {
        tracker.accept(seq, false, NOW, || Duration::from_millis(100))
    }

    fn message(seq: u64) -> Message {
        let mut m = Message::with_type("resource");
        m.push_str("seq", &format!("{seq:x}"));
        m
    }

    #[test]
    fn the_same_seq_on_a_second_medium_is_a_duplicate() {
        let mut t = SequenceTracker::default();
        assert_eq!(accept(&mut t, 5), Arrival::InOrder);
        assert_eq!(accept(&mut t, 6), Arrival::InOrder);
        assert_eq!(accept(&mut t, 6), Arrival::Duplicate);
        assert_eq!(accept(&mut t, 5), Arrival::Duplicate);
    }

    #[test]
    fn a_gap_schedules_each_missing_seq_and_recovery_empties_the_list() {
        let mut t = SequenceTracker::default();
        accept(&mut t, 89);
        assert_eq!(
            accept(&mut t, 92),
            Arrival::Gap {
                first: 90,
                last: 91
            }
        );
        assert_eq!(
            t.due_requests(NOW + Duration::from_millis(100)),
            vec![90, 91]
        );
        assert_eq!(t.next_request(), Some(NOW + Duration::from_millis(100)));
        assert_eq!(
            accept(&mut t, 91),
            Arrival::Recovered {
                was_first_missing: false,
                none_missing: false
            }
        );
        assert_eq!(
            accept(&mut t, 90),
            Arrival::Recovered {
                was_first_missing: true,
                none_missing: true
            }
        );
        assert_eq!(accept(&mut t, 90), Arrival::Duplicate);
    }

    #[test]
    fn a_gap_wider_than_250_restarts_tracking() {
        let mut t = SequenceTracker::default();
        accept(&mut t, 1);
        assert_eq!(
            accept(&mut t, 252),
            Arrival::Gap {
                first: 2,
                last: 251
            }
        );
        let mut t = SequenceTracker::default();
        accept(&mut t, 1);
        assert_eq!(
            accept(&mut t, 253),
            Arrival::TooManyLost {
                first: 2,
                last: 252
            }
        );
        assert_eq!(t.missing_count(), 0);
        assert_eq!(accept(&mut t, 254), Arrival::InOrder);
    }

    #[test]
    fn after_a_reset_old_copies_stay_duplicates_but_new_numbers_start_fresh() {
        let mut t = SequenceTracker::default();
        accept(&mut t, 10);
        accept(&mut t, 11);
        t.reset();
        assert_eq!(accept(&mut t, 11), Arrival::Duplicate);
        assert_eq!(accept(&mut t, 40), Arrival::InOrder);
        t.restart();
        assert_eq!(accept(&mut t, 1), Arrival::InOrder);
    }

    #[test]
    fn resync_accepts_an_older_number_without_moving_tracking_backwards() {
        let mut t = SequenceTracker::default();
        accept(&mut t, 10);
        accept(&mut t, 13);
        assert_eq!(t.accept(5, true, NOW, || Duration::ZERO), Arrival::Resynced);
        assert_eq!(t.last_seq(), Some(13));
        assert_eq!(t.missing_count(), 2, "the gaps after it are still wanted");
        assert_eq!(accept(&mut t, 14), Arrival::InOrder);
    }

    #[test]
    fn a_resync_after_a_reset_restarts_above_what_was_accepted() {
        let mut t = SequenceTracker::default();
        accept(&mut t, 36);
        accept(&mut t, 40);
        t.reset();
        assert_eq!(
            t.accept(37, true, NOW, || Duration::ZERO),
            Arrival::Resynced
        );
        assert_eq!(accept(&mut t, 38), Arrival::Duplicate);
        assert_eq!(accept(&mut t, 41), Arrival::InOrder);
    }

    #[test]
    fn held_messages_are_released_in_order_once_the_gap_below_fills() {
        let mut t = SequenceTracker::default();
        accept(&mut t, 1);
        accept(&mut t, 3);
        t.hold(3, message(3));
        assert!(t.release().is_empty());
        accept(&mut t, 4);
        t.hold(4, message(4));
        accept(&mut t, 2);
        t.hold(2, message(2));
        assert_eq!(t.release(), vec![message(2), message(3), message(4)]);
    }

    #[test]
    fn a_full_hold_gives_up_the_lowest_gap() {
        let mut t = SequenceTracker::default();
        accept(&mut t, 1);
        accept(&mut t, 3);
        let mut abandoned = Vec::new();
        for seq in 3..(3 + MAX_HELD as u64 + 1) {
            if seq > 3 {
                accept(&mut t, seq);
            }
            abandoned.extend(t.hold(seq, message(seq)));
        }
        assert_eq!(abandoned, vec![2]);
        assert_eq!(t.release().len(), MAX_HELD + 1);
    }
}
