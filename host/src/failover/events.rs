//! What the failover machine tells the world: one event per decision or mishap.
//!
//! Owns the vocabulary of failover's events and their log lines, worded like Heartbeat 3.0.6's
//! `ResourceManager` and `hb_resource.c` messages so operators find what they know. It decides
//! nothing; the machine in `mod.rs` produces these values.

use std::fmt;

use vigil_plugin_api::{AgentAction, OcfStatus};

use super::messages::HoldSet;

/// Something failover did or saw. `Display` is the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailoverEvent {
    /// We start a group: we are its chosen owner and nobody else holds or claims it.
    Acquiring {
        /// The group key.
        group: String,
        /// Its preferred node and resources, as the haresources line reads.
        line: String,
    },
    /// Every resource of the group started.
    Acquired {
        /// The group key.
        group: String,
    },
    /// We stop a group.
    Releasing {
        /// The group key.
        group: String,
        /// Its preferred node and resources, as the haresources line reads.
        line: String,
        /// Why (`failback to hb1`, `standby`, `shutdown`, …).
        reason: String,
    },
    /// Every resource of the group stopped: it is free for its next owner.
    Released {
        /// The group key.
        group: String,
    },
    /// A start failed: what had started is stopped again and this node no longer runs the
    /// group until an operator action.
    StartFailed {
        /// The group key.
        group: String,
        /// The resource whose start failed.
        resource: String,
        /// What the agent answered.
        status: OcfStatus,
    },
    /// A stop failed and will be retried.
    StopRetry {
        /// The group key.
        group: String,
        /// The resource.
        resource: String,
        /// What the agent answered.
        status: OcfStatus,
        /// Which retry comes next (1-based).
        attempt: u32,
        /// How many retries there are in all.
        of: u32,
    },
    /// A stop failed for good: the group stays held here (nobody else may start it) until
    /// it is stopped by hand or this node is fenced.
    StopFailed {
        /// The group key.
        group: String,
        /// The resource that would not stop.
        resource: String,
        /// What the agent answered last.
        status: OcfStatus,
    },
    /// A monitor found a resource not running as it should.
    MonitorFailed {
        /// The group key.
        group: String,
        /// The resource.
        resource: String,
        /// What the agent answered.
        status: OcfStatus,
        /// `Some(n)`: restarted in place for the n-th time; `None`: restarts exhausted, the
        /// group moves away and this node stops being eligible for it.
        restart: Option<u32>,
    },
    /// An operation result arrived that no operation was waiting for (a late or duplicated
    /// answer): ignored.
    UnexpectedResult {
        /// The group index in the configuration.
        group: usize,
        /// The resource index.
        resource: usize,
        /// The action.
        action: AgentAction,
    },
    /// A node is gone (dead, or restarted) and the groups it held are free for the chosen
    /// survivor, which is us for at least one of them.
    TakingOverFrom {
        /// The node.
        node: String,
    },
    /// A node announced a graceful shutdown (`shutdone`).
    ShutdownNotice {
        /// The node.
        node: String,
    },
    /// A live node sent nothing about its resources within the fallback period: it is left
    /// out of ownership decisions until it does.
    PeerSilent {
        /// The node.
        node: String,
    },
    /// Two nodes hold the same group (after a partition, or with a misbehaving peer); the
    /// one that should not own it releases it.
    DuplicateOwner {
        /// The group key.
        group: String,
        /// The other holder.
        node: String,
    },
    /// Our first resource acquisition after start is complete.
    InitialAcquisitionComplete,
    /// Connectivity failover: we now stand by for a group because a candidate peer has seen
    /// more ping nodes than we do for the whole dampening time, or that standby ended.
    ConnectivityStandby {
        /// The group key.
        group: String,
        /// Whether we stand by for it now (otherwise the standby ended).
        standby: bool,
        /// How many ping nodes we see.
        ours: u32,
        /// The peer seeing the most of them (empty when no peer reported a count).
        peer: String,
        /// How many that peer sees.
        theirs: u32,
    },
    /// Our standby set changed by operator command or on a peer's takeover.
    GoingStandby {
        /// The groups, from our point of view.
        set: HoldSet,
        /// Who asked (`None`: the local operator).
        requested_by: Option<String>,
    },
    /// The operator asked to take groups over.
    TakingOver {
        /// The groups, from our point of view.
        set: HoldSet,
    },
    /// A Heartbeat peer asked to go standby and we agreed to take the set.
    PeerGoingStandby {
        /// The peer.
        node: String,
        /// The set, from its point of view.
        set: HoldSet,
    },
    /// A standby request was not acted on.
    StandbyIgnored {
        /// Who asked (`None`: the local operator).
        node: Option<String>,
        /// Why.
        reason: String,
    },
    /// No answer to our standby request within 10 s, or the peer died: cancelled.
    StandbyCancelled {
        /// Why.
        reason: String,
    },
    /// A Heartbeat standby exchange finished.
    StandbyCompleted {
        /// The set, from the point of view of the node that gave it.
        set: HoldSet,
        /// Whether we were the node that gave the set away.
        gave: bool,
    },
    /// A resource-management message that could not be understood: ignored.
    MalformedMessage {
        /// The sender.
        node: String,
        /// What is wrong with it.
        reason: String,
    },
    /// We fence a lost node before anyone takes its groups over.
    Fencing {
        /// The node.
        node: String,
        /// The device, as configured (`null`, `external/ipmi`).
        device: String,
        /// Which attempt this is (1-based).
        attempt: u32,
    },
    /// The node was fenced (by us, or by the peer that told us so): its groups may move.
    Fenced {
        /// The node.
        node: String,
        /// Who fenced it.
        by: String,
    },
    /// Fencing failed: no takeover until a retry succeeds.
    FencingFailed {
        /// The node.
        node: String,
        /// What the device said.
        reason: String,
        /// When the next attempt starts, in seconds from now.
        retry_in_secs: u64,
    },
    /// A node we were to fence came back before it was fenced: nothing to take over.
    FencingCancelled {
        /// The node.
        node: String,
    },
    /// Graceful shutdown started: every local group is being released.
    ShutdownStarted,
    /// Graceful shutdown done: everything released, `shutdone` sent.
    ShutdownDone,
    /// Graceful shutdown could not release everything: `shutdone` is not sent (peers must
    /// not take over what may still run here) and the daemon stops anyway.
    ShutdownIncomplete {
        /// The groups still held.
        groups: Vec<String>,
    },
}

impl FailoverEvent {
    /// A stable snake_case name for programs (the API's `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            FailoverEvent::Acquiring { .. } => "acquiring",
            FailoverEvent::Acquired { .. } => "acquired",
            FailoverEvent::Releasing { .. } => "releasing",
            FailoverEvent::Released { .. } => "released",
            FailoverEvent::StartFailed { .. } => "start_failed",
            FailoverEvent::StopRetry { .. } => "stop_retry",
            FailoverEvent::StopFailed { .. } => "stop_failed",
            FailoverEvent::MonitorFailed { .. } => "monitor_failed",
            FailoverEvent::UnexpectedResult { .. } => "unexpected_result",
            FailoverEvent::TakingOverFrom { .. } => "taking_over_from",
            FailoverEvent::ShutdownNotice { .. } => "shutdown_notice",
            FailoverEvent::PeerSilent { .. } => "peer_silent",
            FailoverEvent::DuplicateOwner { .. } => "duplicate_owner",
            FailoverEvent::InitialAcquisitionComplete => "initial_acquisition_complete",
            FailoverEvent::ConnectivityStandby { .. } => "connectivity_standby",
            FailoverEvent::GoingStandby { .. } => "going_standby",
            FailoverEvent::TakingOver { .. } => "taking_over",
            FailoverEvent::PeerGoingStandby { .. } => "peer_going_standby",
            FailoverEvent::StandbyIgnored { .. } => "standby_ignored",
            FailoverEvent::StandbyCancelled { .. } => "standby_cancelled",
            FailoverEvent::StandbyCompleted { .. } => "standby_completed",
            FailoverEvent::MalformedMessage { .. } => "malformed_message",
            FailoverEvent::Fencing { .. } => "fencing",
            FailoverEvent::Fenced { .. } => "fenced",
            FailoverEvent::FencingFailed { .. } => "fencing_failed",
            FailoverEvent::FencingCancelled { .. } => "fencing_cancelled",
            FailoverEvent::ShutdownStarted => "shutdown_started",
            FailoverEvent::ShutdownDone => "shutdown_done",
            FailoverEvent::ShutdownIncomplete { .. } => "shutdown_incomplete",
        }
    }

    /// The group key the event is about, if it is about one.
    pub fn group(&self) -> Option<&str> {
        match self {
            FailoverEvent::Acquiring { group, .. }
            | FailoverEvent::Acquired { group }
            | FailoverEvent::Releasing { group, .. }
            | FailoverEvent::Released { group }
            | FailoverEvent::StartFailed { group, .. }
            | FailoverEvent::StopRetry { group, .. }
            | FailoverEvent::StopFailed { group, .. }
            | FailoverEvent::MonitorFailed { group, .. }
            | FailoverEvent::DuplicateOwner { group, .. }
            | FailoverEvent::ConnectivityStandby { group, .. } => Some(group),
            _ => None,
        }
    }

    /// The node the event is about, if it is about another node.
    pub fn node(&self) -> Option<&str> {
        match self {
            FailoverEvent::TakingOverFrom { node }
            | FailoverEvent::ShutdownNotice { node }
            | FailoverEvent::PeerSilent { node }
            | FailoverEvent::DuplicateOwner { node, .. }
            | FailoverEvent::PeerGoingStandby { node, .. }
            | FailoverEvent::MalformedMessage { node, .. }
            | FailoverEvent::Fencing { node, .. }
            | FailoverEvent::Fenced { node, .. }
            | FailoverEvent::FencingFailed { node, .. }
            | FailoverEvent::FencingCancelled { node } => Some(node),
            FailoverEvent::GoingStandby { requested_by, .. } => requested_by.as_deref(),
            FailoverEvent::StandbyIgnored { node, .. } => node.as_deref(),
            _ => None,
        }
    }

    /// Whether an operator should see it as a warning rather than information.
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            FailoverEvent::StartFailed { .. }
                | FailoverEvent::StopRetry { .. }
                | FailoverEvent::StopFailed { .. }
                | FailoverEvent::MonitorFailed { .. }
                | FailoverEvent::UnexpectedResult { .. }
                | FailoverEvent::PeerSilent { .. }
                | FailoverEvent::DuplicateOwner { .. }
                | FailoverEvent::StandbyIgnored { .. }
                | FailoverEvent::StandbyCancelled { .. }
                | FailoverEvent::MalformedMessage { .. }
                | FailoverEvent::ShutdownIncomplete { .. }
                | FailoverEvent::FencingFailed { .. }
        )
    }
}

impl fmt::Display for FailoverEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailoverEvent::Acquiring { line, .. } => {
                write!(f, "Acquiring resource group: {line}")
            }
            FailoverEvent::Acquired { group } => {
                write!(f, "Resource group {group} acquired")
            }
            FailoverEvent::Releasing { line, reason, .. } => {
                write!(f, "Releasing resource group: {line} ({reason})")
            }
            FailoverEvent::Released { group } => {
                write!(f, "Resource group {group} released")
            }
            FailoverEvent::StartFailed {
                group,
                resource,
                status,
            } => write!(
                f,
                "Giving up resources due to failure of {resource} (start returned {status}); \
                 group {group} will not run on this node until an operator takes it over here"
            ),
            FailoverEvent::StopRetry {
                resource,
                status,
                attempt,
                of,
                ..
            } => write!(
                f,
                "Retrying failed stop operation [{resource}] (stop returned {status}; retry \
                 {attempt} of {of})"
            ),
            FailoverEvent::StopFailed {
                group,
                resource,
                status,
            } => write!(
                f,
                "Resource STOP failure: {resource} (stop returned {status}). Group {group} stays \
                 held by this node and no other node will start it: stop it by hand (then \
                 `takeover` or `standby` here retries) or fence this node"
            ),
            FailoverEvent::MonitorFailed {
                group,
                resource,
                status,
                restart,
            } => match restart {
                Some(n) => write!(
                    f,
                    "Monitor of {resource} returned {status}: restarting it in place (restart \
                     {n})"
                ),
                None => write!(
                    f,
                    "Monitor of {resource} returned {status} and its restarts are used up: \
                     moving group {group} away; this node is not eligible for it until an \
                     operator takes it over here"
                ),
            },
            FailoverEvent::UnexpectedResult {
                group,
                resource,
                action,
            } => write!(
                f,
                "Ignoring the result of {action} of resource {resource} in group {group}: no \
                 such operation was running"
            ),
            FailoverEvent::TakingOverFrom { node } => {
                write!(f, "Resources being acquired from {node}.")
            }
            FailoverEvent::ShutdownNotice { node } => {
                write!(f, "Received shutdown notice from '{node}'.")
            }
            FailoverEvent::Fencing {
                node,
                device,
                attempt,
            } => {
                write!(f, "Resetting node {node} with [{device}]")?;
                if *attempt > 1 {
                    write!(f, " (attempt {attempt})")?;
                }
                Ok(())
            }
            FailoverEvent::Fenced { node, by } => {
                write!(
                    f,
                    "node {node} now reset (STONITH by {by}): its resources may move"
                )
            }
            FailoverEvent::FencingFailed {
                node,
                reason,
                retry_in_secs,
            } => write!(
                f,
                "STONITH of {node} failed: {reason}. Retrying in {retry_in_secs} s; no takeover \
                 until it succeeds."
            ),
            FailoverEvent::FencingCancelled { node } => write!(
                f,
                "{node} came back before it was reset: not fencing it, its resources stay its own"
            ),
            FailoverEvent::ConnectivityStandby {
                group,
                standby: true,
                ours,
                peer,
                theirs,
            } => write!(
                f,
                "{peer} sees {theirs} ping nodes, we see {ours}: standing by for {group} \
                 (connectivity failover, as ipfail did)"
            ),
            FailoverEvent::ConnectivityStandby {
                group,
                standby: false,
                ours,
                ..
            } => write!(
                f,
                "no peer sees more ping nodes than we do ({ours}): no longer standing by for \
                 {group}"
            ),
            FailoverEvent::PeerSilent { node } => write!(
                f,
                "{node} is alive but sent no resource information: deciding without it until \
                 it does"
            ),
            FailoverEvent::DuplicateOwner { group, node } => write!(
                f,
                "Both machines own resource group {group} (here and on {node}): the node that \
                 should not own it releases it"
            ),
            FailoverEvent::InitialAcquisitionComplete => {
                f.write_str("Initial resource acquisition complete")
            }
            FailoverEvent::GoingStandby { set, requested_by } => match requested_by {
                None => write!(f, "Going standby [{set}]."),
                Some(node) => write!(f, "Going standby [{set}] for {node}'s takeover."),
            },
            FailoverEvent::TakingOver { set } => write!(f, "Taking over [{set}]."),
            FailoverEvent::PeerGoingStandby { node, set } => {
                write!(f, "{node} wants to go standby [{set}]")
            }
            FailoverEvent::StandbyIgnored { node, reason } => match node {
                Some(node) => write!(f, "standby message [me] from {node} ignored. {reason}"),
                None => write!(f, "standby request ignored. {reason}"),
            },
            FailoverEvent::StandbyCancelled { reason } => {
                write!(f, "Standby request cancelled: {reason}")
            }
            FailoverEvent::StandbyCompleted { set, gave } => {
                if *gave {
                    write!(f, "Local standby process completed [{set}].")
                } else {
                    write!(f, "Standby resource acquisition done [{set}].")
                }
            }
            FailoverEvent::MalformedMessage { node, reason } => {
                write!(f, "Ignoring a message from {node}: {reason}")
            }
            FailoverEvent::ShutdownStarted => f.write_str("Giving up all HA resources."),
            FailoverEvent::ShutdownDone => f.write_str("All HA resources relinquished."),
            FailoverEvent::ShutdownIncomplete { groups } => write!(
                f,
                "Shutting down with resource groups still held ({}): shutdone not sent, so no \
                 peer takes them over while they may still run here",
                groups.join(" ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_use_heartbeats_wording() {
        let event = FailoverEvent::Acquiring {
            group: "IPaddr::198.18.0.100/24/eth0".into(),
            line: "hb1 IPaddr::198.18.0.100/24/eth0 hbdemo".into(),
        };
        assert_eq!(
            event.to_string(),
            "Acquiring resource group: hb1 IPaddr::198.18.0.100/24/eth0 hbdemo"
        );
        assert_eq!(event.group(), Some("IPaddr::198.18.0.100/24/eth0"));
        assert!(!event.is_warning());
        let notice = FailoverEvent::ShutdownNotice { node: "hb2".into() };
        assert_eq!(notice.to_string(), "Received shutdown notice from 'hb2'.");
        assert_eq!(notice.node(), Some("hb2"));
    }

    #[test]
    fn failures_are_warnings_with_the_agents_status() {
        let event = FailoverEvent::StopFailed {
            group: "g".into(),
            resource: "httpd".into(),
            status: OcfStatus::ErrGeneric,
        };
        assert!(event.is_warning());
        assert!(event.to_string().contains("OCF_ERR_GENERIC (1)"));
        assert_eq!(event.kind(), "stop_failed");
    }
}
