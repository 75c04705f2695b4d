//! Where a Heartbeat standby exchange stands (spec §5.7, `ask_for_resources` in
//! `hb_resource.c`).
//!
//! Owns the state of the three-phase `ask_resources` exchange (`me`, `other`, `done`) that a
//! Heartbeat peer needs before it gives groups up or takes them: which peer, which set, which
//! phase, and until when. vigil nodes never need it among themselves (their announcements and
//! claims move groups); the machine runs it only with a Heartbeat peer. It holds state and
//! timeouts only; the machine sends the messages.

use std::time::Duration;

use super::messages::HoldSet;

/// How long a `me` waits for `other` before it is cancelled (`STANDBY_INIT_TO_MS`).
pub(super) const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the rest of an exchange may take (`HB_STANDBY_RSC_TO_MS`, an hour).
pub(super) const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(3600);

/// The phase of the exchange, from our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// We sent `me` and wait for `other`.
    Asked,
    /// The peer agreed: we release the set, then send `done`.
    Giving,
    /// We sent `done` and wait for the peer's.
    Gave,
    /// We answered `other` to the peer's `me`: it releases.
    Accepted,
    /// The peer sent `done`: we acquire, then send `done`.
    Taking,
}

/// A running exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Exchange {
    /// The peer's node index.
    pub peer: usize,
    /// The set, from the point of view of the node that gives it.
    pub set: HoldSet,
    /// What happens next.
    pub phase: Phase,
    /// When it is cancelled if nothing happens.
    pub deadline: Duration,
}
