//! What the membership machine tells the world: node statuses, events, drop reasons.
//!
//! Owns the vocabulary of membership's outputs that are not messages: the status of a node,
//! every event with its Heartbeat-style log line, and the reasons an inbound message is
//! dropped. It must not decide anything; the machine in `mod.rs` produces these values.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The status of a cluster node as seen from here (spec §1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    /// Configured but never heard from (and not yet timed out); also what a node announces in
    /// its very first status message.
    Init,
    /// Running, communications not yet declared up.
    Up,
    /// Running with communications up: the state of a healthy member.
    Active,
    /// Silent for longer than its deadtime.
    Dead,
    /// A ping node that answers: reachable, but never a member (not [`Self::is_alive`]).
    Ping,
}

impl NodeStatus {
    /// The word Heartbeat uses (`cl_status nodestatus`, the `st` field).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Init => "init",
            NodeStatus::Up => "up",
            NodeStatus::Active => "active",
            NodeStatus::Dead => "dead",
            NodeStatus::Ping => "ping",
        }
    }

    /// Whether the node counts as a live member (`up` or `active`).
    pub fn is_alive(self) -> bool {
        matches!(self, NodeStatus::Up | NodeStatus::Active)
    }

    /// The status a peer may announce in its `st` field. `dead` is never announced by a
    /// node about itself, so it is refused like any other unknown word.
    pub(super) fn from_announced(word: &str) -> Option<Self> {
        match word {
            "init" => Some(NodeStatus::Init),
            "up" => Some(NodeStatus::Up),
            "active" => Some(NodeStatus::Active),
            _ => None,
        }
    }
}

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened to membership, for logs, API clients and failover. `Display`
/// gives the line Heartbeat 3.0.6 logs for the same event, so operators find what they know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipEvent {
    /// A peer's status changed (from its own status message, or because it timed out).
    NodeStatus {
        /// The peer.
        node: String,
        /// Its status before.
        old: NodeStatus,
        /// Its status now.
        new: NodeStatus,
    },
    /// Our own status changed (`up` at start, `active` once communications are up).
    LocalStatus {
        /// Our status before.
        old: NodeStatus,
        /// Our status now.
        new: NodeStatus,
    },
    /// A link to a node went up (a packet arrived on it) or dead (silent for its deadtime).
    LinkStatus {
        /// The node at the far end.
        node: String,
        /// The link name (interface name or tty).
        link: String,
        /// Whether it is up now.
        up: bool,
    },
    /// A status message arrived more than `warntime` after the previous one.
    LateHeartbeat {
        /// The sender.
        node: String,
        /// The interval since its previous status message.
        late_by: Duration,
        /// Whether the interval also exceeded the deadtime used for that node.
        beyond_deadtime: bool,
    },
    /// A node came back with a higher generation: it restarted.
    NodeRestarted {
        /// The node.
        node: String,
        /// Its new generation.
        generation: u64,
    },
    /// A node declared dead came back with the same generation: a healed partition (or a
    /// frozen process that woke up), the split-brain case.
    ReturnedAfterPartition {
        /// The node.
        node: String,
    },
    /// A gap in a node's sequence numbers: `first..=last` are missing and will be requested.
    PacketsLost {
        /// The sender.
        node: String,
        /// First missing sequence number.
        first: u64,
        /// Last missing sequence number.
        last: u64,
    },
    /// A gap wider than half the history: tracking of the node was restarted instead.
    TooManyPacketsLost {
        /// The sender.
        node: String,
    },
    /// Every missing packet of a node has been recovered (or given up).
    NoPacketsMissing {
        /// The sender.
        node: String,
    },
    /// A missing packet will never arrive (its sender refused it, or too many were missing).
    PacketLostForGood {
        /// The sender.
        node: String,
        /// The lost sequence number.
        seq: u64,
    },
    /// We refused a peer's retransmission request.
    RetransmissionRefused {
        /// The node that asked.
        node: String,
        /// The sequence number it asked for.
        seq: u64,
        /// `seqno too low` or `seqno not found`.
        reason: String,
    },
    /// Every configured node has been heard from (or is dead) and the node list handshake is
    /// done: we are `active`.
    CommunicationsUp,
    /// A node sent a status without `protocol` (an older Heartbeat): acknowledgements and the
    /// node list handshake are off for good.
    FlowControlDisabled {
        /// The node whose message lacked the field.
        node: String,
    },
    /// Too many of our messages are unacknowledged (`paused`), or acknowledgements caught up.
    FlowControl {
        /// Whether local clients should stop sending.
        paused: bool,
    },
    /// A peer's `repnodes` lists other nodes than our configuration; we keep ours.
    NodeListDiffers {
        /// The node that answered.
        node: String,
        /// The nodes it listed.
        nodelist: Vec<String>,
    },
}

impl MembershipEvent {
    /// A stable snake_case name for programs (the API's `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            MembershipEvent::NodeStatus { .. } => "node_status",
            MembershipEvent::LocalStatus { .. } => "local_status",
            MembershipEvent::LinkStatus { .. } => "link_status",
            MembershipEvent::LateHeartbeat { .. } => "late_heartbeat",
            MembershipEvent::NodeRestarted { .. } => "node_restarted",
            MembershipEvent::ReturnedAfterPartition { .. } => "returned_after_partition",
            MembershipEvent::PacketsLost { .. } => "packets_lost",
            MembershipEvent::TooManyPacketsLost { .. } => "too_many_packets_lost",
            MembershipEvent::NoPacketsMissing { .. } => "no_packets_missing",
            MembershipEvent::PacketLostForGood { .. } => "packet_lost_for_good",
            MembershipEvent::RetransmissionRefused { .. } => "retransmission_refused",
            MembershipEvent::CommunicationsUp => "communications_up",
            MembershipEvent::FlowControlDisabled { .. } => "flow_control_disabled",
            MembershipEvent::FlowControl { .. } => "flow_control",
            MembershipEvent::NodeListDiffers { .. } => "node_list_differs",
        }
    }

    /// The node the event is about, if it is about one.
    pub fn node(&self) -> Option<&str> {
        match self {
            MembershipEvent::NodeStatus { node, .. }
            | MembershipEvent::LinkStatus { node, .. }
            | MembershipEvent::LateHeartbeat { node, .. }
            | MembershipEvent::NodeRestarted { node, .. }
            | MembershipEvent::ReturnedAfterPartition { node }
            | MembershipEvent::PacketsLost { node, .. }
            | MembershipEvent::TooManyPacketsLost { node }
            | MembershipEvent::NoPacketsMissing { node }
            | MembershipEvent::PacketLostForGood { node, .. }
            | MembershipEvent::RetransmissionRefused { node, .. }
            | MembershipEvent::FlowControlDisabled { node }
            | MembershipEvent::NodeListDiffers { node, .. } => Some(node),
            MembershipEvent::LocalStatus { .. }
            | MembershipEvent::CommunicationsUp
            | MembershipEvent::FlowControl { .. } => None,
        }
    }

    /// Whether an operator should see it as a warning rather than information.
    pub fn is_warning(&self) -> bool {
        match self {
            MembershipEvent::NodeStatus { new, .. } => *new == NodeStatus::Dead,
            MembershipEvent::LinkStatus { up, .. } => !up,
            MembershipEvent::FlowControl { paused } => *paused,
            MembershipEvent::LateHeartbeat { .. }
            | MembershipEvent::ReturnedAfterPartition { .. }
            | MembershipEvent::PacketsLost { .. }
            | MembershipEvent::TooManyPacketsLost { .. }
            | MembershipEvent::PacketLostForGood { .. }
            | MembershipEvent::RetransmissionRefused { .. }
            | MembershipEvent::NodeListDiffers { .. } => true,
            MembershipEvent::LocalStatus { .. }
            | MembershipEvent::NodeRestarted { .. }
            | MembershipEvent::NoPacketsMissing { .. }
            | MembershipEvent::CommunicationsUp
            | MembershipEvent::FlowControlDisabled { .. } => false,
        }
    }
}

impl fmt::Display for MembershipEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembershipEvent::NodeStatus { node, new, .. } => {
                if *new == NodeStatus::Dead {
                    write!(f, "node {node}: is dead")
                } else {
                    write!(f, "Status update for node {node}: status {new}")
                }
            }
            MembershipEvent::LocalStatus { new, .. } => {
                write!(f, "Local status now set to: '{new}'")
            }
            MembershipEvent::LinkStatus { node, link, up } => {
                write!(f, "Link {node}:{link} {}.", if *up { "up" } else { "dead" })
            }
            MembershipEvent::LateHeartbeat {
                node,
                late_by,
                beyond_deadtime,
            } => {
                write!(
                    f,
                    "Late heartbeat: Node {node}: interval {} ms",
                    late_by.as_millis()
                )?;
                if *beyond_deadtime {
                    f.write_str(" (> deadtime)")?;
                }
                Ok(())
            }
            MembershipEvent::NodeRestarted { node, .. } => {
                write!(f, "Heartbeat restart on node {node}")
            }
            MembershipEvent::ReturnedAfterPartition { node } => {
                write!(f, "Cluster node {node} returning after partition.")
            }
            MembershipEvent::PacketsLost { node, first, last } => {
                // Heartbeat prints the exclusive bounds: the last seq seen and the new one.
                let count = last.saturating_sub(*first).saturating_add(1);
                write!(
                    f,
                    "{count} lost packet(s) for [{node}] [{}:{}]",
                    first.saturating_sub(1),
                    last.saturating_add(1)
                )
            }
            MembershipEvent::TooManyPacketsLost { node } => {
                write!(
                    f,
                    "lost a lot of packets from [{node}]! Sequence tracking restarted."
                )
            }
            MembershipEvent::NoPacketsMissing { node } => {
                write!(f, "No pkts missing from {node}!")
            }
            MembershipEvent::PacketLostForGood { node, seq } => {
                write!(f, "Irretrievably lost packet: node {node} seq {seq}")
            }
            MembershipEvent::RetransmissionRefused { node, seq, reason } => {
                write!(f, "Cannot rexmit pkt {seq} for {node}: {reason}")
            }
            MembershipEvent::CommunicationsUp => {
                f.write_str("Comm_now_up(): updating status to active")
            }
            MembershipEvent::FlowControlDisabled { node } => write!(
                f,
                "flow control disabled due to different version heartbeat (on {node})"
            ),
            MembershipEvent::FlowControl { paused } => {
                if *paused {
                    f.write_str(
                        "Flow control engaged: too many unacknowledged messages, clients paused",
                    )
                } else {
                    f.write_str("Flow control released: clients resumed")
                }
            }
            MembershipEvent::NodeListDiffers { node, nodelist } => write!(
                f,
                "{node} lists nodes [{}] that differ from our configuration; keeping ours \
                 (autojoin is not supported)",
                nodelist.join(" ")
            ),
        }
    }
}

/// Why an inbound message (or a local client's message) was not processed. Drops are counted
/// by reason and never trusted: the `node` that comes with them is only what the message
/// claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// A required field (`t`, `src`, `ts`, `st`, …) is missing or unparsable.
    MalformedField,
    /// `seq` is missing on a sequenced type, not hex, or zero.
    BadSeq,
    /// `src` names a node that is not in the configuration (autojoin is not supported).
    UnknownNode,
    /// The generation is lower than one already seen from that node: a replay.
    LowerGeneration,
    /// A message in our own name that we never sent.
    ReplayedSeq,
    /// Addressed to another node (still sequence-tracked when sequenced).
    NotForUs,
    /// Arrived on a medium index the configuration does not have.
    UnknownMedium,
    /// A local client tried to send a type only the membership machine may send.
    ReservedType,
}

impl DropReason {
    /// Whether the drop is part of normal traffic (a message for another node) rather than a
    /// sign of a fault or an attack: counted all the same, but not worth a warning.
    pub fn is_routine(self) -> bool {
        matches!(self, DropReason::NotForUs)
    }

    /// The snake_case counter name.
    pub fn counter(self) -> &'static str {
        match self {
            DropReason::MalformedField => "malformed_field",
            DropReason::BadSeq => "bad_seq",
            DropReason::UnknownNode => "unknown_node",
            DropReason::LowerGeneration => "lower_generation",
            DropReason::ReplayedSeq => "replayed_seq",
            DropReason::NotForUs => "not_for_us",
            DropReason::UnknownMedium => "unknown_medium",
            DropReason::ReservedType => "reserved_type",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropReason::MalformedField => "a required field is missing or malformed",
            DropReason::BadSeq => "missing, non-hex or zero sequence number",
            DropReason::UnknownNode => {
                "sender is not a configured node (autojoin is not supported)"
            }
            DropReason::LowerGeneration => "generation lower than already seen (replay?)",
            DropReason::ReplayedSeq => "message in our own name that we never sent",
            DropReason::NotForUs => "addressed to another node",
            DropReason::UnknownMedium => "arrived on an unconfigured medium",
            DropReason::ReservedType => "message type reserved to the membership protocol",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_lost_prints_heartbeats_exclusive_bounds() {
        let event = MembershipEvent::PacketsLost {
            node: "hb1".into(),
            first: 90,
            last: 91,
        };
        assert_eq!(event.to_string(), "2 lost packet(s) for [hb1] [89:92]");
    }

    #[test]
    fn late_heartbeat_marks_intervals_beyond_deadtime() {
        let warning = MembershipEvent::LateHeartbeat {
            node: "hb2".into(),
            late_by: Duration::from_millis(600),
            beyond_deadtime: false,
        };
        assert_eq!(
            warning.to_string(),
            "Late heartbeat: Node hb2: interval 600 ms"
        );
        let dead = MembershipEvent::LateHeartbeat {
            node: "hb2".into(),
            late_by: Duration::from_millis(1500),
            beyond_deadtime: true,
        };
        assert_eq!(
            dead.to_string(),
            "Late heartbeat: Node hb2: interval 1500 ms (> deadtime)"
        );
    }

    #[test]
    fn death_and_link_loss_are_warnings_with_heartbeat_wording() {
        let death = MembershipEvent::NodeStatus {
            node: "hb2".into(),
            old: NodeStatus::Active,
            new: NodeStatus::Dead,
        };
        assert_eq!(death.to_string(), "node hb2: is dead");
        assert!(death.is_warning());
        assert_eq!(death.kind(), "node_status");
        assert_eq!(death.node(), Some("hb2"));
        let link = MembershipEvent::LinkStatus {
            node: "hb2".into(),
            link: "eth0".into(),
            up: true,
        };
        assert_eq!(link.to_string(), "Link hb2:eth0 up.");
        assert!(!link.is_warning());
    }

    #[test]
    fn node_status_serializes_as_heartbeats_words() {
        let json = serde_json::to_string(&[NodeStatus::Init, NodeStatus::Active]).unwrap();
        assert_eq!(json, r#"["init","active"]"#);
        assert_eq!(NodeStatus::from_announced("dead"), None);
        assert_eq!(NodeStatus::from_announced("up"), Some(NodeStatus::Up));
    }

    #[test]
    fn drop_reasons_have_distinct_snake_case_counters() {
        let all = [
            DropReason::MalformedField,
            DropReason::BadSeq,
            DropReason::UnknownNode,
            DropReason::LowerGeneration,
            DropReason::ReplayedSeq,
            DropReason::NotForUs,
            DropReason::UnknownMedium,
            DropReason::ReservedType,
        ];
        let names: std::collections::HashSet<_> = all.iter().map(|r| r.counter()).collect();
        assert_eq!(names.len(), all.len());
        assert!(
            names
                .iter()
                .all(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
    }
}
