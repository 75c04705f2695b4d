//! The snapshot of failover that the API serves as JSON (`vigil status`, `cl_status
//! rscstatus`).
//!
//! Owns the shape of that snapshot only. It is a copy taken by `Failover::status`; nothing
//! here is read back by the machine.

use serde::{Deserialize, Serialize};

/// What `cl_status rscstatus` answers: the groups this node runs, in Heartbeat's words, or
/// `transition` while its resources are in flux.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceStatus {
    /// Runs no group (3.0.6 wrongly says `local` here when it owns nothing).
    None,
    /// Runs only groups whose preferred node is this one.
    Local,
    /// Runs only groups whose preferred node is another one.
    Foreign,
    /// Runs groups of both kinds.
    All,
    /// Starting up, starting or stopping a group, or in a standby exchange.
    Transition,
}

impl ResourceStatus {
    /// The word `cl_status rscstatus` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceStatus::None => "none",
            ResourceStatus::Local => "local",
            ResourceStatus::Foreign => "foreign",
            ResourceStatus::All => "all",
            ResourceStatus::Transition => "transition",
        }
    }
}

/// What this node is doing with one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalGroupState {
    /// Nothing of it runs here.
    Stopped,
    /// Its resources are being started (left to right), or restarted in place.
    Starting,
    /// Every resource started.
    Running,
    /// Its resources are being stopped (right to left).
    Stopping,
    /// Not eligible here after a failure, or a stop failed for good.
    Failed,
}

/// One group as seen from here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// The group key (its first resource token).
    pub key: String,
    /// The preferred node.
    pub preferred: String,
    /// Every node that may run it, in order of preference.
    pub order: Vec<String>,
    /// The node that holds it as far as we know (`None`: nobody).
    pub owner: Option<String>,
    /// This node's part.
    pub local: LocalGroupState,
    /// Whether this node stands by for it (takes it only if nobody else can).
    pub standby: bool,
}

/// Failover as seen from this node at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverStatus {
    /// Our node name (lower case).
    pub local_node: String,
    /// `cl_status rscstatus`.
    pub rsc_status: ResourceStatus,
    /// `on`, `off` or `legacy`.
    pub auto_failback: String,
    /// Every group, in configuration order.
    pub groups: Vec<GroupStatus>,
    /// Lost nodes awaiting their reset before their groups move.
    #[serde(default)]
    pub fencing: Vec<super::FencingStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_serialize_as_cl_status_words() {
        let json = serde_json::to_string(&[ResourceStatus::None, ResourceStatus::Transition])
            .unwrap_or_default();
        assert_eq!(json, r#"["none","transition"]"#);
        assert_eq!(ResourceStatus::Foreign.as_str(), "foreign");
        let back: LocalGroupState = serde_json::from_str("\"stopping\"").unwrap();
        assert_eq!(back, LocalGroupState::Stopping);
    }
}
