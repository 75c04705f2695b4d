//! The snapshot of membership that the API serves as JSON (`vigil status`, `cl_status`).
//!
//! Owns the shape of that snapshot only. It is a copy taken by `Membership::status`; nothing
//! here is read back by the machine.

use serde::{Deserialize, Serialize};

use super::events::NodeStatus;

/// Membership as seen from this node at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipStatus {
    /// Our node name (lower case).
    pub local_node: String,
    /// Our own status (`init` before start, then `up`, then `active`).
    pub local_status: NodeStatus,
    /// This run's generation, so restarts are visible.
    pub generation: u64,
    /// Whether communications are declared up (we are `active`).
    pub communications_up: bool,
    /// Whether acknowledgements are on (off for good once an old peer was seen).
    pub flow_control: bool,
    /// Whether too many of our messages are unacknowledged: local clients should pause.
    pub clients_paused: bool,
    /// Every configured node, in configuration order, ourselves included, then the ping
    /// nodes.
    pub nodes: Vec<NodeState>,
    /// Traffic counters since start.
    pub counters: MembershipCounters,
}

/// One node's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// Node name (lower case).
    pub name: String,
    /// `normal`, or `ping` for a ping node, as `cl_status nodetype` prints it.
    pub node_type: String,
    /// Its status as seen from here.
    pub status: NodeStatus,
    /// The highest generation seen from it (ours for the local node), 0 if never heard.
    pub generation: u64,
    /// The last sequence number tracked from it (ours: the last one sent).
    pub last_seq: Option<u64>,
    /// The deadtime currently applied to it, in milliseconds (`initdead` before
    /// communications are up, then what it announced in `dt`); for the local node, the
    /// deadtime we announce.
    pub deadtime_ms: u64,
    /// How many of its packets are missing and being requested.
    pub missing: usize,
    /// One entry per link name, in medium order.
    pub links: Vec<LinkState>,
}

/// One link to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkState {
    /// The link name (interface or tty).
    pub name: String,
    /// Whether a packet from the node arrived on it within the node's deadtime.
    pub up: bool,
}

/// Traffic counters since start, for diagnosing a lossy network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipCounters {
    /// Messages handed to the runtime for sending (retransmissions included).
    pub sent: u64,
    /// Messages received from media (own looped-back copies included).
    pub received: u64,
    /// Received copies that were already seen (the second medium, own echoes, late copies).
    pub duplicates: u64,
    /// `NS_rexmit` requests we sent.
    pub retransmissions_requested: u64,
    /// Stored messages we sent again on request.
    pub retransmissions_sent: u64,
    /// `NS_nak_rexmit` we sent.
    pub naks_sent: u64,
    /// `NS_nak_rexmit` we received.
    pub naks_received: u64,
    /// `NS_ackmsg` we sent.
    pub acks_sent: u64,
    /// Messages dropped, all reasons together.
    pub dropped: u64,
}
