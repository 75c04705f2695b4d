//! Everything that happens because time passed: keepalives, the end of the start-up
//! deadtime, node and link deaths, retransmission requests, `reqnodes` retries.
//!
//! Owns the exact deadline of each of these and what is done when it is reached. There is no
//! polling interval (3.0.6 scans every 250 ms); a node is declared dead exactly at its last
//! heartbeat plus its deadtime. It must not read a clock: `now` comes with every input.

use std::time::Duration;

use super::events::{MembershipEvent, NodeStatus};
use super::{Comm, Membership, Now, Output, Phase};

impl Membership {
    /// The next instant at which something is due, or `None` when nothing ever will be
    /// (before start, after shutdown). The runtime sends [`super::Input::Timer`] then.
    pub fn next_deadline(&self) -> Option<Duration> {
        if self.phase != Phase::Running {
            return None;
        }
        let mut next = self.next_keepalive;
        let mut consider = |at: Duration| next = next.min(at);
        if let Some(at) = self.startup_deadtime_until {
            consider(at);
        }
        if let Comm::AwaitingNodeList { retry_at, .. } = self.comm {
            consider(retry_at);
        }
        if let Some(at) = self.next_ping_deadline() {
            consider(at);
        }
        for (index, node) in self.nodes.iter().enumerate() {
            if index == self.local {
                continue;
            }
            let deadtime = self.deadtime_for(node);
            if node.status != NodeStatus::Dead {
                consider(node.last_heard + deadtime);
                if let Some(at) = node.sequence.next_request() {
                    consider(at);
                }
            }
            for link in node.links.iter().filter(|l| l.up) {
                consider(link.last_packet + deadtime);
            }
        }
        Some(next)
    }

    /// Does whatever is due at `now`, deaths first so that no request goes to a dead node.
    pub(super) fn run_due_timers(&mut self, now: Now, out: &mut Vec<Output>) {
        self.expire_nodes(now, out);
        self.expire_links(now, out);
        self.expire_ping_nodes(now, out);
        if now.mono >= self.next_keepalive {
            self.send_status(now, out);
            // Stay on the keepalive grid, one status however late the timer came.
            let period = self.settings.keepalive.as_nanos().max(1);
            let behind = (now.mono - self.next_keepalive).as_nanos();
            let periods = u32::try_from(behind / period + 1).unwrap_or(u32::MAX);
            self.next_keepalive += self.settings.keepalive.saturating_mul(periods);
        }
        if self.startup_deadtime_until.is_some_and(|at| now.mono >= at) {
            self.startup_deadtime_until = None;
            self.send_status(now, out);
        }
        self.request_due_retransmissions(now, out);
        if let Comm::AwaitingNodeList { index, retry_at } = self.comm
            && now.mono >= retry_at
        {
            self.ask_node_list(index, now, out);
        }
        self.check_communications(now, out);
    }

    /// A peer's heartbeat has just arrived: when ours is due within half a keepalive, it is
    /// sent now and the next one a keepalive from now.
    ///
    /// Why: on an idle node each wake-up costs more than the work done in it, and a node
    /// whose timer and peer's heartbeat fall at different moments wakes twice per period.
    /// Sending with the peer's heartbeat locks the two phases together, so the follower
    /// wakes once per period. Peers see our heartbeats at most a keepalive apart, as
    /// before, and at least half a keepalive apart, so nothing a peer times changes.
    pub(super) fn send_status_with_peer(&mut self, now: Now, out: &mut Vec<Output>) {
        if self.next_keepalive.saturating_sub(now.mono) > self.settings.keepalive / 2 {
            return;
        }
        self.send_status(now, out);
        self.next_keepalive = now.mono + self.settings.keepalive;
    }

    fn expire_nodes(&mut self, now: Now, out: &mut Vec<Output>) {
        for index in 0..self.nodes.len() {
            if index == self.local {
                continue;
            }
            let Some(node) = self.nodes.get(index) else {
                continue;
            };
            if node.status != NodeStatus::Dead
                && now.mono >= node.last_heard + self.deadtime_for(node)
            {
                self.declare_dead(index, out);
            }
        }
    }

    /// 3.0.6's `mark_node_dead`: status dead, sequence tracking reset (held messages are
    /// delivered first), no packets counted any more for the comm-up test.
    fn declare_dead(&mut self, index: usize, out: &mut Vec<Output>) {
        let Some(node) = self.nodes.get_mut(index) else {
            return;
        };
        let held = node.sequence.reset();
        let name = node.name.clone();
        let old = node.status;
        node.status = NodeStatus::Dead;
        node.heard_any = false;
        node.acked = 0;
        out.extend(held.into_iter().map(|message| Output::Deliver {
            from: name.clone(),
            message,
        }));
        Self::event(
            out,
            MembershipEvent::NodeStatus {
                node: name,
                old,
                new: NodeStatus::Dead,
            },
        );
    }

    /// Links of peers go dead after the node's deadtime without a packet on them. Our own
    /// links never time out, as in 3.0.6.
    fn expire_links(&mut self, now: Now, out: &mut Vec<Output>) {
        for index in 0..self.nodes.len() {
            if index == self.local {
                continue;
            }
            let Some(node) = self.nodes.get(index) else {
                continue;
            };
            let deadtime = self.deadtime_for(node);
            let name = node.name.clone();
            let expired: Vec<usize> = node
                .links
                .iter()
                .enumerate()
                .filter(|(_, l)| l.up && now.mono >= l.last_packet + deadtime)
                .map(|(i, _)| i)
                .collect();
            for link in expired {
                if let Some(state) = self
                    .nodes
                    .get_mut(index)
                    .and_then(|n| n.links.get_mut(link))
                {
                    state.up = false;
                }
                Self::event(
                    out,
                    MembershipEvent::LinkStatus {
                        node: name.clone(),
                        link: self
                            .settings
                            .link_names
                            .get(link)
                            .cloned()
                            .unwrap_or_default(),
                        up: false,
                    },
                );
            }
        }
    }

    /// One `NS_rexmit` per missing packet whose time has come; the next one after
    /// `max_rexmit_delay`. Nothing is asked of a dead node.
    fn request_due_retransmissions(&mut self, now: Now, out: &mut Vec<Output>) {
        for index in 0..self.nodes.len() {
            let due = match self.nodes.get(index) {
                Some(node) if index != self.local && node.status != NodeStatus::Dead => {
                    node.sequence.due_requests(now.mono)
                }
                _ => continue,
            };
            for seq in due {
                self.request_retransmission(index, seq, now, out);
                let again = now.mono + self.settings.max_rexmit_delay;
                if let Some(node) = self.nodes.get_mut(index) {
                    node.sequence.request_again_at(seq, again);
                }
            }
        }
    }
}
