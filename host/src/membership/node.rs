//! What the machine remembers about each configured node.
//!
//! Owns the per-node record: status, generation, UUID, announced deadtime, when its last
//! heartbeat arrived, its links, its sequence tracking and its acknowledgement state. The
//! rules that change these live in the machine; this module only holds and resets them.

use std::time::Duration;

use super::events::NodeStatus;
use super::sequence::SequenceTracker;

/// One link (link name) to one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Link {
    /// Whether a packet arrived on it within the node's deadtime.
    pub(super) up: bool,
    /// When the last valid packet from the node arrived on it.
    pub(super) last_packet: Duration,
}

/// One configured node (the local one included, with fewer fields in use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TrackedNode {
    /// Lower-case name.
    pub(super) name: String,
    /// Status as seen from here.
    pub(super) status: NodeStatus,
    /// Highest generation seen in its status messages (0: never heard).
    pub(super) generation: u64,
    /// Learned from its `srcuuid`, used for `destuuid` when we address it.
    pub(super) uuid: Option<[u8; 16]>,
    /// The deadtime it announced (`dt`), applied once communications are up.
    pub(super) deadtime: Duration,
    /// When its last accepted status arrived (start time until then): the liveness clock.
    pub(super) last_heard: Duration,
    /// When its previous status message arrived, for late-heartbeat warnings.
    pub(super) last_status_arrival: Option<Duration>,
    /// Sequence number of its newest status message.
    pub(super) status_seqno: u64,
    /// Whether any packet arrived since start or since it was declared dead (comm-up test).
    pub(super) heard_any: bool,
    /// One per distinct link name, in medium order.
    pub(super) links: Vec<Link>,
    /// Its sequence numbers as we track them.
    pub(super) sequence: SequenceTracker,
    /// We acknowledge its in-order messages whose `seq % 10` equals this.
    pub(super) ack_trigger: u64,
    /// The highest of our sequence numbers it acknowledged.
    pub(super) acked: u64,
}

impl TrackedNode {
    /// A node not heard from yet.
    pub(super) fn new(name: String, links: usize, deadtime: Duration, ack_trigger: u64) -> Self {
        Self {
            name,
            status: NodeStatus::Init,
            generation: 0,
            uuid: None,
            deadtime,
            last_heard: Duration::ZERO,
            last_status_arrival: None,
            status_seqno: 0,
            heard_any: false,
            links: vec![
                Link {
                    up: false,
                    last_packet: Duration::ZERO,
                };
                links
            ],
            sequence: SequenceTracker::default(),
            ack_trigger,
            acked: 0,
        }
    }

    /// Remembers its UUID from a `srcuuid` field, if it has the right size.
    pub(super) fn learn_uuid(&mut self, bytes: Option<&[u8]>) {
        if let Some(uuid) = bytes.and_then(|b| <[u8; 16]>::try_from(b).ok()) {
            self.uuid = Some(uuid);
        }
    }
}
