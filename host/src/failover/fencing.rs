//! Fencing inside the failover machine: which lost node must be reset before its groups
//! move, which survivor resets it, and what a failed reset leads to.
//!
//! Owns the per-node fencing state. It runs no device (the runtime does, off the core, when
//! it sees [`Output::Fence`]) and it never lets a group that an unfenced node held start
//! anywhere: a failed reset is retried with a growing delay, forever, and nothing moves in
//! between. The survivor that fences is the chosen owner of the lowest group the node held,
//! which every survivor computes the same way; the others wait for its `stonith` message.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::events::FailoverEvent;
use super::messages;
use super::{Failover, Output};
use crate::wire::Message;

/// The delay before the first retry of a failed reset; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest delay between two attempts (Heartbeat retries every 5 s).
const RETRY_MAX: Duration = Duration::from_secs(30);

/// A lost node that must be reset before its groups move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FenceNeed {
    /// The groups it held when it was lost.
    groups: BTreeSet<usize>,
    phase: FencePhase,
    /// Our attempts so far.
    attempts: u32,
    /// The number of our attempt at work (see [`Output::Fence`]).
    attempt_id: u64,
    /// What the device said the last time it failed.
    last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FencePhase {
    /// Another survivor fences it, or we are about to.
    Waiting,
    /// Our device is at work.
    Running,
    /// Our last attempt failed; the next starts then.
    RetryAt(Duration),
}

/// One node awaiting its reset, for `vigil status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FencingStatus {
    /// The node to reset.
    pub node: String,
    /// `fencing` (our device is at work), `retrying` (it failed; see `last_error`) or
    /// `waiting` (another survivor resets it).
    pub state: String,
    /// Who resets it.
    pub by: Option<String>,
    /// Our attempts so far.
    pub attempts: u32,
    /// What the device said the last time it failed.
    pub last_error: Option<String>,
    /// The groups that wait for it.
    pub groups: Vec<String>,
}

impl Failover {
    /// Records that `node`, now lost, held `groups`: with a device configured, none of them
    /// may start elsewhere until it is reset.
    pub(super) fn require_fencing(&mut self, node: usize, groups: BTreeSet<usize>) {
        if self.fence_device.is_none() || groups.is_empty() {
            return;
        }
        let need = self.fences.entry(node).or_insert_with(|| FenceNeed {
            groups: BTreeSet::new(),
            phase: FencePhase::Waiting,
            attempts: 0,
            attempt_id: 0,
            last_error: None,
        });
        need.groups.extend(groups);
    }

    /// Whether `group` waits for a lost node's reset.
    pub(super) fn awaits_fencing(&self, group: usize) -> bool {
        self.fences
            .values()
            .any(|need| need.groups.contains(&group))
    }

    /// The survivor that resets `node`: the chosen owner of the lowest of its groups that
    /// any node may run.
    fn fencer(&self, node: usize) -> Option<usize> {
        let need = self.fences.get(&node)?;
        need.groups.iter().find_map(|&g| self.chosen_owner(g))
    }

    /// Starts the resets that are ours to do and due; drops those of nodes that came back.
    pub(super) fn drive_fencing(&mut self, now: Duration, out: &mut Vec<Output>) {
        let nodes: Vec<usize> = self.fences.keys().copied().collect();
        for node in nodes {
            if self.peers[node].alive {
                self.fences.remove(&node);
                Self::event(
                    out,
                    FailoverEvent::FencingCancelled {
                        node: self.name(node).to_string(),
                    },
                );
                continue;
            }
            let Some(fencer) = self.fencer(node) else {
                // No node may run what it held: nothing to protect.
                self.fences.remove(&node);
                continue;
            };
            let Some(need) = self.fences.get_mut(&node) else {
                continue;
            };
            let due = match need.phase {
                FencePhase::Waiting => fencer == self.local,
                FencePhase::RetryAt(at) => at <= now,
                FencePhase::Running => false,
            };
            if !due {
                continue;
            }
            if fencer != self.local {
                need.phase = FencePhase::Waiting;
                continue;
            }
            self.fence_attempts += 1;
            let attempt_id = self.fence_attempts;
            let Some(need) = self.fences.get_mut(&node) else {
                continue;
            };
            need.attempts += 1;
            need.attempt_id = attempt_id;
            need.phase = FencePhase::Running;
            let attempt = need.attempts;
            let name = self.name(node).to_string();
            Self::event(
                out,
                FailoverEvent::Fencing {
                    node: name.clone(),
                    device: self.fence_device.clone().unwrap_or_default(),
                    attempt,
                },
            );
            out.push(Output::Fence {
                node: name,
                attempt: attempt_id,
            });
        }
    }

    /// Our device finished attempt `attempt` on `node`; an answer to any other attempt than
    /// the one at work is stale and ignored.
    pub(super) fn on_fence_done(
        &mut self,
        node: &str,
        attempt: u64,
        result: Result<(), String>,
        now: Duration,
        out: &mut Vec<Output>,
    ) {
        let Some(index) = self.node_index(node) else {
            return;
        };
        let Some(need) = self
            .fences
            .get_mut(&index)
            .filter(|need| need.phase == FencePhase::Running && need.attempt_id == attempt)
        else {
            return;
        };
        let name = node.to_ascii_lowercase();
        match result {
            Ok(()) => {
                let need = self.fences.remove(&index);
                out.push(Output::Send(messages::stonith_result(
                    &name,
                    messages::STONITH_OK,
                )));
                Self::event(
                    out,
                    FailoverEvent::Fenced {
                        node: name,
                        by: self.name(self.local).to_string(),
                    },
                );
                self.announce_takeover(index, need, out);
            }
            Err(reason) => {
                let delay = retry_delay(need.attempts);
                need.phase = FencePhase::RetryAt(now + delay);
                need.last_error = Some(reason.clone());
                out.push(Output::Send(messages::stonith_result(&name, "bad")));
                Self::event(
                    out,
                    FailoverEvent::FencingFailed {
                        node: name,
                        reason,
                        retry_in_secs: delay.as_secs(),
                    },
                );
            }
        }
    }

    /// A peer's `stonith` message: if it reset a node we wait for, its groups may move.
    pub(super) fn on_stonith_message(
        &mut self,
        from: usize,
        message: &Message,
        out: &mut Vec<Output>,
    ) {
        let Some((node, result)) = messages::parse_stonith_result(message) else {
            return;
        };
        if result != messages::STONITH_OK {
            return;
        }
        let Some(index) = self.node_index(&node) else {
            return;
        };
        if let Some(need) = self.fences.remove(&index) {
            Self::event(
                out,
                FailoverEvent::Fenced {
                    node,
                    by: self.name(from).to_string(),
                },
            );
            self.announce_takeover(index, Some(need), out);
        }
    }

    /// Once `node` is reset, says that we take over what it held, if any of it is ours.
    fn announce_takeover(&self, node: usize, need: Option<FenceNeed>, out: &mut Vec<Output>) {
        let ours = need.is_some_and(|need| {
            need.groups
                .iter()
                .any(|&g| self.chosen_owner(g) == Some(self.local))
        });
        if ours {
            Self::event(
                out,
                FailoverEvent::TakingOverFrom {
                    node: self.name(node).to_string(),
                },
            );
        }
    }

    /// The next retry of a failed reset.
    pub(super) fn next_fencing_deadline(&self) -> Option<Duration> {
        self.fences
            .values()
            .filter_map(|need| match need.phase {
                FencePhase::RetryAt(at) => Some(at),
                _ => None,
            })
            .min()
    }

    /// Every node awaiting its reset, for `vigil status`.
    pub(super) fn fencing_status(&self) -> Vec<FencingStatus> {
        self.fences
            .iter()
            .map(|(&node, need)| {
                let by = self.fencer(node);
                let state = match need.phase {
                    FencePhase::Running => "fencing",
                    FencePhase::RetryAt(_) => "retrying",
                    FencePhase::Waiting => "waiting",
                };
                FencingStatus {
                    node: self.name(node).to_string(),
                    state: state.to_string(),
                    by: by.map(|n| self.name(n).to_string()),
                    attempts: need.attempts,
                    last_error: need.last_error.clone(),
                    groups: need
                        .groups
                        .iter()
                        .filter_map(|&g| self.groups.get(g).map(|group| group.key.clone()))
                        .collect(),
                }
            })
            .collect()
    }
}

/// The wait after the `attempts`-th failure: 1 s, 2 s, 4 s … up to 30 s.
fn retry_delay(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    (RETRY_FIRST * 2u32.pow(doublings)).min(RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_thirty_seconds() {
        let delays: Vec<u64> = (1..=8).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
