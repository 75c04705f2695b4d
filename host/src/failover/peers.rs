//! What this node knows about each other node's resources.
//!
//! Owns one record per peer: whether membership says it is alive, whether it is a vigil or a
//! Heartbeat node, how much we know of its current run (nothing yet, freshly restarted,
//! announced, leaving, silent), the groups it holds, claims, stands by for or may not run,
//! and — for a Heartbeat peer — its `rsc_hold` bits, stability and releases it announced
//! before finishing them. It records; the machine decides.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::membership::NodeStatus;

/// Which software the peer runs, as its messages tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PeerKind {
    /// Nothing resource-related heard yet.
    Unknown,
    /// Its `starting`/`resource` messages carry vigil's fields.
    Vigil,
    /// Its messages are Heartbeat's bare ones.
    Heartbeat,
}

/// How much we know of the peer's current run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Knowledge {
    /// Not heard since it died, or alive when our communications came up and silent since:
    /// it may hold anything, so we wait for its word.
    Unknown,
    /// Came back from a partition: it may hold anything, so we wait for its word.
    Returning,
    /// Restarted under our eyes, or first seen after our communications came up, and has not
    /// announced yet: it holds nothing and takes nothing until it does.
    Fresh,
    /// Its holdings are known from its messages of this run.
    Known,
    /// Sent `shutdone`: it released everything and leaves.
    Departed,
    /// Alive but silent past the fallback period: left out of decisions until it speaks.
    Silent,
}

/// One other node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Peer {
    /// Its node name (lower case).
    pub name: String,
    /// The status membership last reported.
    pub status: NodeStatus,
    /// Present in the cluster: membership says `up` or `active`, or it was heard before our
    /// communications came up (membership may declare them up before its first status).
    pub alive: bool,
    /// vigil or Heartbeat: decides how groups move to and from it.
    pub kind: PeerKind,
    /// How far its announcements can be relied on.
    pub knowledge: Knowledge,
    /// Since when it has been alive, `Unknown` or `Returning`, while our communications were
    /// up: the fallback period runs from here.
    pub unknown_since: Option<Duration>,
    /// Groups it holds (starting, running, stopping, failed to stop).
    pub held: BTreeSet<usize>,
    /// Groups it claims (vigil only).
    pub claims: BTreeSet<usize>,
    /// Groups it stands by for.
    pub standby: BTreeSet<usize>,
    /// Groups it may not run.
    pub failed: BTreeSet<usize>,
    /// Its run's incarnation (vigil only).
    pub incarnation: Option<String>,
    /// The number of its newest announcement.
    pub version: u64,
    /// The newest of our announcements (this run of ours) it says it has seen.
    pub seen_ours: u64,
    /// We sent an announcement since we learned of its current run: it will receive it.
    pub told: bool,
    /// We sent our `starting` while it was present in its current run (or since it came
    /// back): it will answer that one, and a Heartbeat peer takes a second `starting` during
    /// its own start-up as an error (`Received 'starting' message in state 2`).
    pub heard_our_starting: bool,
    /// Its `starting` came after ours: the `resource` answering ours is due by then, or we
    /// ask again.
    pub starting_answer_due: Option<Duration>,
    /// Its claims as of the newest of its announcements we have told it we saw: a claim
    /// outside this set still needs our acknowledgement.
    pub acknowledged_claims: BTreeSet<usize>,
    /// It said `isstable=1` last (Heartbeat's `other_is_stable`).
    pub stable: bool,
    /// A Heartbeat peer between its `starting` and its first stable announcement: it may
    /// still take its own (local) groups.
    pub starting_up: bool,
    /// It announced `info=shutdown`: it releases everything and takes nothing more.
    pub leaving: bool,
    /// A Heartbeat peer's `rsc_hold` can be taken at its word: we saw its `starting` or an
    /// `isstable=1`, or waited `RQSTDELAY`. Before that, a smaller holding may still be
    /// stopping (3.0.6 clears its bits before it stops, and answers `starting` with
    /// `isstable=0` whether it starts or shuts down).
    pub word_trusted: bool,
    /// Since when a Heartbeat peer's word has not been trusted.
    pub untrusted_since: Option<Duration>,
    /// A Heartbeat peer's `rsc_hold` bits (`other_holds_resources`).
    pub bits: u8,
    /// Groups a Heartbeat peer announced as released but may still be stopping (until its
    /// `done` or `shutdone`).
    pub pending_release: BTreeSet<usize>,
    /// Groups we are giving a Heartbeat peer in a standby exchange (from its `other` on): it
    /// takes them after our `done` but says so only in its first full `resource` after the
    /// exchange.
    pub taking: BTreeSet<usize>,
    /// Groups a legacy Heartbeat peer took after we answered its `ip-request`.
    pub legacy_held: BTreeSet<usize>,
    /// Groups for which it answered our `ip-request` since we asked.
    pub legacy_answered: BTreeSet<usize>,
}

impl Peer {
    pub(super) fn new(name: String) -> Self {
        Peer {
            name,
            status: NodeStatus::Init,
            alive: false,
            kind: PeerKind::Unknown,
            knowledge: Knowledge::Unknown,
            unknown_since: None,
            held: BTreeSet::new(),
            claims: BTreeSet::new(),
            standby: BTreeSet::new(),
            failed: BTreeSet::new(),
            incarnation: None,
            version: 0,
            seen_ours: 0,
            told: false,
            heard_our_starting: false,
            starting_answer_due: None,
            acknowledged_claims: BTreeSet::new(),
            stable: false,
            starting_up: false,
            leaving: false,
            word_trusted: false,
            untrusted_since: None,
            bits: 0,
            pending_release: BTreeSet::new(),
            taking: BTreeSet::new(),
            legacy_held: BTreeSet::new(),
            legacy_answered: BTreeSet::new(),
        }
    }

    /// Whether it may hold `group` as far as we know.
    pub(super) fn holds(&self, group: usize) -> bool {
        self.held.contains(&group)
            || self.pending_release.contains(&group)
            || self.taking.contains(&group)
            || self.legacy_held.contains(&group)
    }

    /// Every group it may hold.
    pub(super) fn holdings(&self) -> BTreeSet<usize> {
        self.held
            .iter()
            .chain(&self.pending_release)
            .chain(&self.taking)
            .chain(&self.legacy_held)
            .copied()
            .collect()
    }

    /// Forgets everything about its run (it died, restarted, or came back from a
    /// partition); the kind stays, as software does not change without a restart.
    pub(super) fn forget(&mut self, knowledge: Knowledge) {
        self.knowledge = knowledge;
        self.unknown_since = None;
        self.heard_our_starting = false;
        self.starting_answer_due = None;
        self.held.clear();
        self.claims.clear();
        self.acknowledged_claims.clear();
        self.standby.clear();
        self.failed.clear();
        self.stable = false;
        self.starting_up = false;
        self.leaving = false;
        self.word_trusted = false;
        self.untrusted_since = None;
        self.bits = 0;
        self.pending_release.clear();
        self.taking.clear();
        self.legacy_held.clear();
        self.legacy_answered.clear();
    }

    /// Forgets its incarnation too (a new run numbers its announcements from 1 and has seen
    /// nothing of ours).
    pub(super) fn new_run(&mut self) {
        self.forget(Knowledge::Fresh);
        self.incarnation = None;
        self.version = 0;
        self.seen_ours = 0;
        self.told = false;
    }
}
