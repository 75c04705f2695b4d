//! Connectivity-driven failover (what Heartbeat's ipfail did, built in): a node that sees
//! fewer ping nodes than another candidate for a group stands by for that group.
//!
//! Owns the local count of live ping nodes (`ping` and `ping_group` pseudo-nodes whose
//! status is `ping`), the counts the vigil peers report with `t=vigil-ping-count count=N`,
//! and the dampened *connectivity standby*: the groups this node stands by for because a
//! candidate peer sees more ping nodes. It must not choose owners or run anything: the
//! machine in `mod.rs` says, for each group, whether a candidate peer outranks us, and
//! treats the resulting set like operator standby (announced in `standby`, so the peer takes
//! the group with the usual claim, and we release it). It touches no clock or socket.
//!
//! Losing a ping node is already dampened by membership: it is dead only after `deadping` of
//! silence, so a ping node that answers now and then is never lost. A group therefore leaves
//! as soon as a candidate peer outranks us, and the way back is what is dampened: our standby
//! ends only once counts have been equal for the whole dampening time, and then
//! `auto_failback` decides where the group goes. A ping node that flaps moves a group once
//! and does not bounce it back. A ping node counts as answering until membership declares it
//! dead, so the first seconds after a start (before its first answer) move nothing. The
//! count is sent on every change, whenever a peer comes alive or restarts, and every
//! `refresh`.
//! Heartbeat peers (and ipfail's `num_ping_nodes`) are not spoken to: a peer that never sent
//! a count never outranks us.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::messages::MessageError;
use crate::wire::Message;

/// The message type that carries a node's count of live ping nodes.
pub(super) const T_PING_COUNT: &str = "vigil-ping-count";
/// The field with the count, in decimal.
const F_COUNT: &str = "count";

/// How connectivity-driven failover is configured (`connectivity_failover`, or a
/// `respawn … ipfail` line mapped onto it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectivityConfig {
    /// The ping nodes counted: their names as membership reports them (the host of a `ping`
    /// line, the name of a `ping_group`).
    pub ping_nodes: Vec<String>,
    /// How long counts must be equal again before a connectivity standby ends and the group
    /// may go back; the runtime defaults it to `deadping`. Moving away is not delayed beyond
    /// the `deadping` that declares a ping node dead.
    pub dampening: Duration,
    /// How often our count is repeated when it does not change, so a peer that missed it
    /// learns it.
    pub refresh: Duration,
}

/// A change of our connectivity standby, for the machine to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StandbyChange {
    /// The group index.
    pub group: usize,
    /// Whether we now stand by for it (otherwise the standby ended).
    pub standby: bool,
}

/// What connectivity failover knows and decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Connectivity {
    /// Each counted ping node (lower case) and whether it answers.
    ping_nodes: BTreeMap<String, bool>,
    /// See [`ConnectivityConfig::dampening`].
    dampening: Duration,
    /// See [`ConnectivityConfig::refresh`].
    refresh: Duration,
    /// The last count each vigil peer (by node index) reported in its current run.
    peer_counts: BTreeMap<usize, u32>,
    /// Groups we stand by for because a candidate peer sees more ping nodes.
    standby: BTreeSet<usize>,
    /// Groups whose wanted standby differs from [`Self::standby`], with the wanted value and
    /// since when it has been wanted.
    pending: BTreeMap<usize, (bool, Duration)>,
    /// The count we last sent, and when.
    last_sent: Option<(u32, Duration)>,
    /// A peer needs our count now (it came alive or restarted).
    send_requested: bool,
}

impl Connectivity {
    pub(super) fn new(config: ConnectivityConfig) -> Self {
        Self {
            ping_nodes: config
                .ping_nodes
                .iter()
                .map(|n| (n.to_ascii_lowercase(), true))
                .collect(),
            dampening: config.dampening,
            refresh: config.refresh.max(Duration::from_millis(100)),
            peer_counts: BTreeMap::new(),
            standby: BTreeSet::new(),
            pending: BTreeMap::new(),
            last_sent: None,
            send_requested: false,
        }
    }

    /// Records whether a ping node is alive (anything but dead); `false` if `name` is not a
    /// counted ping node.
    pub(super) fn on_ping_status(&mut self, name: &str, up: bool) -> bool {
        match self.ping_nodes.get_mut(&name.to_ascii_lowercase()) {
            Some(alive) => {
                *alive = up;
                true
            }
            None => false,
        }
    }

    /// How many counted ping nodes answer.
    pub(super) fn local_count(&self) -> u32 {
        u32::try_from(self.ping_nodes.values().filter(|&&up| up).count()).unwrap_or(u32::MAX)
    }

    /// The count `node` reported in its current run, if any.
    pub(super) fn peer_count(&self, node: usize) -> Option<u32> {
        self.peer_counts.get(&node).copied()
    }

    /// Records a peer's `vigil-ping-count`.
    pub(super) fn on_count(&mut self, node: usize, message: &Message) -> Result<(), MessageError> {
        let raw = message
            .get_str(F_COUNT)
            .ok_or_else(|| MessageError::MissingField {
                message_type: T_PING_COUNT.to_string(),
                field: F_COUNT,
            })?;
        let count = raw.parse::<u32>().map_err(|_| MessageError::BadValue {
            message_type: T_PING_COUNT.to_string(),
            field: F_COUNT,
            value: raw.to_string(),
            expected: "a decimal count",
        })?;
        self.peer_counts.insert(node, count);
        Ok(())
    }

    /// A peer died, restarted or came alive: its old count no longer holds, and it needs
    /// ours.
    pub(super) fn peer_changed(&mut self, node: usize) {
        self.peer_counts.remove(&node);
        self.send_requested = true;
    }

    /// The count message to send now, if one is due.
    pub(super) fn message_due(&mut self, now: Duration) -> Option<Message> {
        let count = self.local_count();
        let due = match self.last_sent {
            None => true,
            Some((sent, at)) => sent != count || now >= at + self.refresh,
        };
        if !due && !self.send_requested {
            return None;
        }
        self.send_requested = false;
        self.last_sent = Some((count, now));
        let mut message = Message::with_type(T_PING_COUNT);
        message.push_str(F_COUNT, &count.to_string());
        Some(message)
    }

    /// Whether we stand by for `group` for connectivity.
    pub(super) fn stands_by(&self, group: usize) -> bool {
        self.standby.contains(&group)
    }

    /// Our connectivity standby set.
    pub(super) fn standby(&self) -> &BTreeSet<usize> {
        &self.standby
    }

    /// Feeds whether a candidate peer outranks us for `group` now. A standby starts at once;
    /// it ends once not being outranked has held for the dampening time.
    pub(super) fn step(
        &mut self,
        group: usize,
        outranked: bool,
        now: Duration,
    ) -> Option<StandbyChange> {
        if self.standby.contains(&group) == outranked {
            self.pending.remove(&group);
            return None;
        }
        let since = match self.pending.get(&group) {
            Some(&(wanted, since)) if wanted == outranked => since,
            _ => {
                self.pending.insert(group, (outranked, now));
                now
            }
        };
        if now < since + self.hold(outranked) {
            return None;
        }
        self.pending.remove(&group);
        if outranked {
            self.standby.insert(group);
        } else {
            self.standby.remove(&group);
        }
        Some(StandbyChange {
            group,
            standby: outranked,
        })
    }

    /// How long wanting `standby` must last before it takes effect: nothing to leave (the
    /// ping node's `deadping` already passed), the dampening to come back.
    fn hold(&self, standby: bool) -> Duration {
        if standby {
            Duration::ZERO
        } else {
            self.dampening
        }
    }

    /// The next moment something is due: a dampened change or a refresh of our count.
    pub(super) fn next_deadline(&self) -> Option<Duration> {
        let pending = self
            .pending
            .values()
            .map(|&(wanted, since)| since + self.hold(wanted));
        let refresh = self.last_sent.map(|(_, at)| at + self.refresh);
        pending.chain(refresh).min()
    }
}
