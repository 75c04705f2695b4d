//! The sender side of reliable delivery: the last 500 sequenced messages we sent.
//!
//! Owns the transmit history (`MAXMSGHIST`) and the rules for answering a retransmission
//! request about one sequence number (spec §1.11). It never builds or sends messages itself;
//! the machine turns its answers into resends and NAKs.

use std::collections::VecDeque;
use std::time::Duration;

use crate::wire::Message;

/// How many sent messages are kept for retransmission (Heartbeat's `MAXMSGHIST`).
pub(super) const HISTORY_SIZE: usize = 500;

/// A sequenced message we sent, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SentMessage {
    seq: u64,
    message: Message,
    /// When it was last re-sent, to rate-limit requests from several nodes.
    last_resent: Option<Duration>,
}

/// What a retransmission request for one sequence number deserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lookup {
    /// Older than anything kept: NAK `seqno too low`.
    TooLow,
    /// Never sent (we probably restarted): ignore.
    AboveHighest,
    /// Inside the kept range but absent: NAK `seqno not found`.
    NotFound,
    /// Re-sent too recently: ignore this request.
    RecentlyResent,
    /// Kept and may be re-sent now.
    Available,
}

/// The ring of sent messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct SendHistory {
    sent: VecDeque<SentMessage>,
    /// The highest sequence number that fell out of the ring (Heartbeat's `lowseq`).
    forgotten_up_to: u64,
    /// The highest sequence number sent.
    highest: u64,
}

impl SendHistory {
    /// Remembers a message just sent.
    pub(super) fn record(&mut self, seq: u64, message: Message) {
        if self.sent.len() >= HISTORY_SIZE
            && let Some(oldest) = self.sent.pop_front()
        {
            self.forgotten_up_to = oldest.seq;
        }
        self.sent.push_back(SentMessage {
            seq,
            message,
            last_resent: None,
        });
        self.highest = self.highest.max(seq);
    }

    /// The highest sequence number sent so far (0 before the first).
    pub(super) fn highest(&self) -> u64 {
        self.highest
    }

    fn position(&self, seq: u64) -> Option<usize> {
        self.sent.binary_search_by_key(&seq, |s| s.seq).ok()
    }

    /// Classifies a request for `seq` at `now`; a message re-sent less than `min_interval`
    /// ago is not sent again.
    pub(super) fn lookup(&self, seq: u64, now: Duration, min_interval: Duration) -> Lookup {
        if seq <= self.forgotten_up_to {
            return Lookup::TooLow;
        }
        if seq > self.highest {
            return Lookup::AboveHighest;
        }
        let Some(position) = self.position(seq) else {
            return Lookup::NotFound;
        };
        match self.sent.get(position).and_then(|s| s.last_resent) {
            Some(at) if now.saturating_sub(at) < min_interval => Lookup::RecentlyResent,
            _ => Lookup::Available,
        }
    }

    /// The stored message for `seq`, marked as re-sent at `now`.
    pub(super) fn resend(&mut self, seq: u64, now: Duration) -> Option<Message> {
        let position = self.position(seq)?;
        let entry = self.sent.get_mut(position)?;
        entry.last_resent = Some(now);
        Some(entry.message.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(seq: u64) -> Message {
        let mut m = Message::with_type("status");
        m.push_str("seq", &format!("{seq:x}"));
        m
    }

    #[test]
    fn keeps_the_last_500_and_calls_older_ones_too_low() {
        let mut history = SendHistory::default();
        for seq in 1..=600 {
            history.record(seq, numbered(seq));
        }
        let now = Duration::ZERO;
        let limit = Duration::from_millis(240);
        assert_eq!(history.lookup(100, now, limit), Lookup::TooLow);
        assert_eq!(history.lookup(101, now, limit), Lookup::Available);
        assert_eq!(history.lookup(600, now, limit), Lookup::Available);
        assert_eq!(history.lookup(601, now, limit), Lookup::AboveHighest);
        assert_eq!(history.resend(101, now), Some(numbered(101)));
    }

    #[test]
    fn a_message_is_not_resent_twice_within_the_interval() {
        let mut history = SendHistory::default();
        history.record(1, numbered(1));
        let limit = Duration::from_millis(240);
        assert!(history.resend(1, Duration::from_millis(1000)).is_some());
        assert_eq!(
            history.lookup(1, Duration::from_millis(1239), limit),
            Lookup::RecentlyResent
        );
        assert_eq!(
            history.lookup(1, Duration::from_millis(1240), limit),
            Lookup::Available
        );
    }

    #[test]
    fn a_hole_inside_the_kept_range_is_not_found() {
        let mut history = SendHistory::default();
        history.record(1, numbered(1));
        history.record(3, numbered(3));
        assert_eq!(
            history.lookup(2, Duration::ZERO, Duration::ZERO),
            Lookup::NotFound
        );
    }
}
