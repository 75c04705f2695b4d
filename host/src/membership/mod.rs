//! Cluster membership: the sans-IO state machine at the heart of the daemon.
//!
//! It owns who is alive and over which links: heartbeats (`status` every keepalive),
//! generations and restart detection, per-node sequence tracking with duplicate suppression
//! across media, retransmission requests and answers, flow-control acknowledgements, the
//! `reqnodes`/`repnodes` handshake, deadtime/warntime/initdead and link liveness — Heartbeat
//! 3.0.6's core protocol (spec §1.7–1.12), speaking its wire vocabulary field for field.
//!
//! It must not touch a clock, a socket, a file or a global RNG: time comes in with every
//! input ([`Now`]), randomness from the configured seed, and every effect goes out as an
//! [`Output`] that the runtime carries out (sign, encode and send on every medium; log and
//! publish events; count drops; deliver messages to upper layers). The runtime arms one timer
//! at [`Membership::next_deadline`]; there is no polling interval, so a silent node is
//! declared dead exactly at its last heartbeat plus its deadtime.
//!
//! Submodules: [`events`] (statuses, events, drop reasons), [`status`] (the API snapshot),
//! `fields` (wire names and number formats), `node` (per-node record), `sequence` (receiver
//! side of reliable delivery), `history` (sender side), `inbound` (what a received message
//! does), `outbound` (what we send), `timers` (deadlines), `rng` (seeded jitter).
//!
//! Deliberate differences from 3.0.6, each because 3.0.6 loses or duplicates something (most
//! were found by the deterministic simulation in `tests/membership_simulation.rs`):
//! - a higher generation is adopted from the first sequenced message of a node's new run,
//!   whatever its type (3.0.6 waits for a status), so a message overtaking its statuses is
//!   neither dropped nor delivered twice;
//! - a node first heard through something else than a status is timed from that moment, not
//!   from our start (3.0.6 declares it dead the moment communications come up);
//! - a returning node's old status never moves sequence tracking backwards (3.0.6 then asks
//!   for, and delivers again, what it already had);
//! - non-membership messages are delivered in the sender's order, held back while a gap
//!   below them is being filled (3.0.6 delivers on arrival);
//! - any valid packet keeps its link up, duplicates and messages for others included, and a
//!   link times out after its own node's deadtime;
//! - nothing polls every 250 ms: a node dies exactly at its deadline (as in 3.0.6, the
//!   late-heartbeat warning is raised when the late heartbeat arrives, so warntime needs no
//!   timer of its own);
//! - we do not acknowledge our own messages (3.0.6 does, as a side effect of its internal
//!   loopback; no peer reads those acknowledgements).
//!
//! One difference for cost alone: our status goes with a peer's when it is due within half
//! a keepalive (3.0.6 keeps its own timer), so the phases of a pair lock and one node wakes
//! once per period instead of twice ([`Membership::handle`] on a peer's status; see
//! `timers`). Our heartbeats stay at most a keepalive apart.
//!
//! Ping nodes (`ping`, `ping_group`) are pseudo-nodes of type `ping` kept apart from the
//! normal nodes, in `ping`: no sequencing, never members (see [`Membership::with_ping_nodes`]).
//!
//! Not supported, on purpose: `autojoin` (a status from a node not in the configuration is
//! dropped and counted as `unknown_node`) and `addnode`/`delnode` (a `repnodes` with another
//! node list is reported, not adopted).

pub mod events;
pub mod status;

mod fields;
mod history;
mod inbound;
mod node;
mod outbound;
mod ping;
mod rng;
mod sequence;
mod timers;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use events::{DropReason, MembershipEvent, NodeStatus};
pub use ping::{PING_NODE_TYPE, PingConfig, PingNodeConfig, probe as ping_probe};
pub use status::{LinkState, MembershipCounters, MembershipStatus, NodeState};

use crate::wire::{CompactString, Message, ToCompactString};
use history::SendHistory;
use node::TrackedNode;
use ping::PingNodes;
use rng::SplitMix64;

/// The moment an input happens, as the runtime's clocks read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time since an arbitrary origin: every timer is computed on it.
    pub mono: Duration,
    /// Unix time in seconds: only written into the `ts` field.
    pub wall_secs: u64,
}

/// Index of a medium in the runtime's list; the same index names its link in
/// [`MembershipConfig::links`].
pub type MediumId = usize;

/// Everything the machine needs to know, decided by the configuration and the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipConfig {
    /// Our node name (compared in lower case, as Heartbeat does).
    pub local_node: String,
    /// Our UUID, sent as `srcuuid`.
    pub local_uuid: [u8; 16],
    /// Every configured node, ourselves included.
    pub nodes: Vec<String>,
    /// The link name of each medium (index = [`MediumId`]); media may share a name, and a
    /// name is one link.
    pub links: Vec<String>,
    /// Interval between our status messages.
    pub keepalive: Duration,
    /// Silence after which a node is declared dead (unless it announces a longer one).
    pub deadtime: Duration,
    /// Silence after which a late heartbeat is reported when it finally arrives.
    pub warntime: Duration,
    /// The deadtime applied to everybody before communications are up.
    pub initdead: Duration,
    /// Upper bound of the first retransmission-request delay, and the retry interval.
    pub max_rexmit_delay: Duration,
    /// Added to the node count for the informational `ttl` field.
    pub hopfudge: u8,
    /// This run's generation, already persisted by the runtime.
    pub generation: u64,
    /// Seed for acknowledgement triggers and request jitter; the same seed and inputs give
    /// the same outputs.
    pub rng_seed: u64,
}

/// What can happen to the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The first input: sends the three start-up status messages (`init`, `up`, `up`).
    /// Every other input before it is ignored.
    Start,
    /// A verified, decoded message from a medium, our own looped-back copies included.
    Received {
        /// The medium it arrived on.
        medium: MediumId,
        /// The message.
        message: Message,
    },
    /// The deadline from [`Membership::next_deadline`] was reached. Early or late calls are
    /// fine: whatever is due at `now` is done (and that happens before any other input too).
    Timer,
    /// The first line of `/proc/loadavg`, for the `ld` field (`n/a` until given).
    LoadAverage(String),
    /// A cluster message from a local client, to be sequenced and sent. It is accepted even
    /// while [`MembershipStatus::clients_paused`] is set: pausing clients (not reading from
    /// them) is the runtime's part, as 3.0.6 stops reading its API clients.
    SendCluster(Message),
    /// Clean stop. Heartbeat 3.0.6 announces nothing special when it stops (peers declare it
    /// dead after its deadtime), so nothing is sent; every later input is ignored.
    Shutdown,
}

/// What the runtime must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Sign, encode and send on every medium (status, retransmissions, `NS_*` included).
    Send(Message),
    /// Log, publish to API clients, and (later) tell failover.
    Event(MembershipEvent),
    /// A message that was not processed; count it by [`DropReason::counter`].
    Dropped {
        /// Why.
        reason: DropReason,
        /// The node it claimed to come from, if any. Never trusted.
        node: Option<String>,
    },
    /// A non-membership message for us (`starting`, `resource`, client messages, …), in the
    /// sender's sequence order, for upper layers. Our own such messages are delivered too, as
    /// Heartbeat loops them back internally.
    Deliver {
        /// The sender (lower case).
        from: String,
        /// The message, with all its fields.
        message: Message,
    },
}

/// Where the machine is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before [`Input::Start`].
    Idle,
    /// Between start and shutdown.
    Running,
    /// After [`Input::Shutdown`].
    Stopped,
}

/// Where communications are (Heartbeat's `heartbeat_comm_state` plus the handshake).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comm {
    /// Not every node has been heard from (or declared dead): `initdead` applies.
    Starting,
    /// Every node heard or dead; waiting for the `repnodes` answer from the node at `index`.
    AwaitingNodeList {
        /// Configuration index of the node asked.
        index: usize,
        /// When to ask again.
        retry_at: Duration,
    },
    /// `active`.
    Up,
}

/// Values derived once from [`MembershipConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    local_uuid: [u8; 16],
    keepalive: Duration,
    deadtime: Duration,
    warntime: Duration,
    initdead: Duration,
    max_rexmit_delay: Duration,
    generation: u64,
    /// The `ttl` field: hopfudge + number of nodes.
    ttl: CompactString,
    /// Distinct link names, in medium order.
    link_names: Vec<String>,
    /// For each medium, the index of its link name; `None` for a ping medium.
    medium_links: Vec<Option<usize>>,
}

/// The membership state machine. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    settings: Settings,
    /// Every configured node in configuration order; `local` is ours.
    nodes: Vec<TrackedNode>,
    local: usize,
    rng: SplitMix64,
    phase: Phase,
    comm: Comm,
    local_status: NodeStatus,
    /// When the next keepalive status is due.
    next_keepalive: Duration,
    /// While set, we announce deadtime + 2 s; at this time we go back to the deadtime.
    startup_deadtime_until: Option<Duration>,
    /// The `ld` field.
    load_average: CompactString,
    history: SendHistory,
    /// Acknowledgements are on (off for good once a peer without `protocol` was seen).
    flow_control: bool,
    /// Our highest sequence number acknowledged by every live peer.
    ack_point: u64,
    clients_paused: bool,
    counters: MembershipCounters,
    /// The ping pseudo-nodes, tracked apart from the nodes.
    ping: PingNodes,
}

/// How long a starting node announces a longer deadtime, and by how much (3.0.6's
/// `hb_add_deadtime(2000)` popped after 5 s).
const STARTUP_DEADTIME_PERIOD: Duration = Duration::from_secs(5);
const STARTUP_DEADTIME_EXTRA: Duration = Duration::from_secs(2);
/// Interval between `reqnodes` attempts.
const REQNODES_RETRY: Duration = Duration::from_secs(1);

impl Membership {
    /// A machine for `config`. Node and link names are lower-cased and de-duplicated; the
    /// local node is added if the list lacks it; zero intervals are raised to 1 ms.
    pub fn new(config: MembershipConfig) -> Membership {
        let local_name = config.local_node.to_ascii_lowercase();
        let mut names: Vec<String> = Vec::with_capacity(config.nodes.len() + 1);
        for name in config.nodes.iter().map(|n| n.to_ascii_lowercase()) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        if !names.contains(&local_name) {
            names.push(local_name.clone());
        }
        let local = names.iter().position(|n| *n == local_name).unwrap_or(0);

        let mut link_names: Vec<String> = Vec::new();
        let mut medium_links = Vec::with_capacity(config.links.len());
        for name in &config.links {
            let index = match link_names.iter().position(|l| l == name) {
                Some(index) => index,
                None => {
                    link_names.push(name.clone());
                    link_names.len() - 1
                }
            };
            medium_links.push(Some(index));
        }

        let at_least_1ms = |d: Duration| d.max(Duration::from_millis(1));
        let settings = Settings {
            local_uuid: config.local_uuid,
            keepalive: at_least_1ms(config.keepalive),
            deadtime: at_least_1ms(config.deadtime),
            warntime: config.warntime,
            initdead: config.initdead,
            max_rexmit_delay: at_least_1ms(config.max_rexmit_delay),
            generation: config.generation,
            ttl: (usize::from(config.hopfudge) + names.len()).to_compact_string(),
            link_names,
            medium_links,
        };
        let mut rng = SplitMix64::new(config.rng_seed);
        let nodes = names
            .into_iter()
            .map(|name| {
                TrackedNode::new(
                    name,
                    settings.link_names.len(),
                    settings.deadtime,
                    rng.between(0, 9),
                )
            })
            .collect();
        Membership {
            settings,
            nodes,
            local,
            rng,
            phase: Phase::Idle,
            comm: Comm::Starting,
            local_status: NodeStatus::Init,
            next_keepalive: Duration::ZERO,
            startup_deadtime_until: None,
            load_average: CompactString::const_new("n/a"),
            history: SendHistory::default(),
            flow_control: true,
            ack_point: 0,
            clients_paused: false,
            counters: MembershipCounters::default(),
            ping: PingNodes::default(),
        }
    }

    /// Feeds one input at `now` and returns what to do, in order. Timers due at `now` are
    /// handled first, whatever the input.
    pub fn handle(&mut self, input: Input, now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        match self.phase {
            Phase::Stopped => return out,
            Phase::Idle => {
                if input == Input::Start {
                    self.start(now, &mut out);
                }
                return out;
            }
            Phase::Running => {}
        }
        self.run_due_timers(now, &mut out);
        match input {
            Input::Start | Input::Timer => {}
            Input::Received { medium, message } => self.receive(medium, message, now, &mut out),
            Input::LoadAverage(line) => {
                let first_line = line.lines().next().unwrap_or("").trim();
                self.load_average = if first_line.is_empty() {
                    CompactString::const_new("n/a")
                } else {
                    CompactString::from(first_line)
                };
            }
            Input::SendCluster(message) => self.send_for_client(message, now, &mut out),
            Input::Shutdown => {
                self.phase = Phase::Stopped;
                return out;
            }
        }
        self.check_communications(now, &mut out);
        self.update_flow_control(&mut out);
        out
    }

    fn start(&mut self, now: Now, out: &mut Vec<Output>) {
        self.phase = Phase::Running;
        self.next_keepalive = now.mono + self.settings.keepalive;
        self.startup_deadtime_until = Some(now.mono + STARTUP_DEADTIME_PERIOD);
        for node in &mut self.nodes {
            node.last_heard = now.mono;
            for link in &mut node.links {
                link.last_packet = now.mono;
            }
        }
        if let Some(local) = self.nodes.get_mut(self.local) {
            local.heard_any = true;
        }
        self.start_ping_nodes(now);
        // 3.0.6: raising the deadtime sends a status (still `init`), going `up` sends one,
        // and the main loop sends one more before its first keepalive.
        self.send_status(now, out);
        self.set_local_status(NodeStatus::Up, now, out);
        self.send_status(now, out);
        self.check_communications(now, out);
        self.update_flow_control(out);
    }

    /// A snapshot for the API.
    pub fn status(&self) -> MembershipStatus {
        let mut nodes: Vec<NodeState> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(index, node)| {
                let is_local = index == self.local;
                NodeState {
                    name: node.name.clone(),
                    node_type: "normal".to_string(),
                    status: if is_local {
                        self.local_status
                    } else {
                        node.status
                    },
                    generation: if is_local {
                        self.settings.generation
                    } else {
                        node.generation
                    },
                    last_seq: if is_local {
                        Some(self.history.highest()).filter(|s| *s > 0)
                    } else {
                        node.sequence.last_seq()
                    },
                    deadtime_ms: u64::try_from(
                        if is_local {
                            self.announced_deadtime()
                        } else {
                            self.deadtime_for(node)
                        }
                        .as_millis(),
                    )
                    .unwrap_or(u64::MAX),
                    missing: node.sequence.missing_count(),
                    links: self
                        .settings
                        .link_names
                        .iter()
                        .zip(&node.links)
                        .map(|(name, link)| LinkState {
                            name: name.clone(),
                            up: link.up,
                        })
                        .collect(),
                }
            })
            .collect();
        nodes.extend(self.ping_node_states());
        MembershipStatus {
            local_node: self.local_name().to_string(),
            local_status: self.local_status,
            generation: self.settings.generation,
            communications_up: self.comm == Comm::Up,
            flow_control: self.flow_control,
            clients_paused: self.clients_paused,
            nodes,
            counters: self.counters.clone(),
        }
    }

    fn local_name(&self) -> &str {
        self.nodes.get(self.local).map_or("", |n| n.name.as_str())
    }

    fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.name.eq_ignore_ascii_case(name))
    }

    /// The deadtime that applies to `node` now: `initdead` until every node was heard.
    fn deadtime_for(&self, node: &TrackedNode) -> Duration {
        if self.comm == Comm::Starting {
            self.settings.initdead
        } else {
            node.deadtime
        }
    }

    /// The deadtime we announce in `dt`.
    fn announced_deadtime(&self) -> Duration {
        if self.startup_deadtime_until.is_some() {
            self.settings.deadtime + STARTUP_DEADTIME_EXTRA
        } else {
            self.settings.deadtime
        }
    }

    fn drop_message(&mut self, reason: DropReason, node: Option<String>, out: &mut Vec<Output>) {
        self.counters.dropped += 1;
        out.push(Output::Dropped { reason, node });
    }

    fn event(out: &mut Vec<Output>, event: MembershipEvent) {
        out.push(Output::Event(event));
    }

    /// Communications come up once every node was heard from or declared dead; then the
    /// node list is asked for (or, without flow control, we are active at once).
    fn check_communications(&mut self, now: Now, out: &mut Vec<Output>) {
        match self.comm {
            Comm::Starting => {
                let all_heard = self
                    .nodes
                    .iter()
                    .all(|n| n.heard_any || n.status == NodeStatus::Dead);
                if !all_heard {
                    return;
                }
                if self.flow_control {
                    self.ask_node_list(0, now, out);
                } else {
                    self.communications_up(now, out);
                }
            }
            Comm::AwaitingNodeList { .. } if !self.flow_control => {
                self.communications_up(now, out);
            }
            Comm::AwaitingNodeList { .. } | Comm::Up => {}
        }
    }

    /// Sends `reqnodes` to the first live node from `start` on (configuration order), or
    /// declares communications up if there is none.
    fn ask_node_list(&mut self, start: usize, now: Now, out: &mut Vec<Output>) {
        let target = (start..self.nodes.len()).find(|&i| {
            i != self.local
                && self
                    .nodes
                    .get(i)
                    .is_some_and(|n| n.status != NodeStatus::Dead)
        });
        match target {
            Some(index) => {
                self.comm = Comm::AwaitingNodeList {
                    index,
                    retry_at: now.mono + REQNODES_RETRY,
                };
                self.send_reqnodes(index, now, out);
            }
            None => self.communications_up(now, out),
        }
    }

    fn communications_up(&mut self, now: Now, out: &mut Vec<Output>) {
        if self.comm == Comm::Up {
            return;
        }
        self.comm = Comm::Up;
        Self::event(out, MembershipEvent::CommunicationsUp);
        self.set_local_status(NodeStatus::Active, now, out);
    }

    fn set_local_status(&mut self, status: NodeStatus, now: Now, out: &mut Vec<Output>) {
        if self.local_status == status {
            return;
        }
        let old = self.local_status;
        self.local_status = status;
        self.send_status(now, out);
        Self::event(out, MembershipEvent::LocalStatus { old, new: status });
    }

    /// Recomputes the acknowledged point (the lowest ack among live peers, or automatic when
    /// none is alive) and whether local clients must pause (more than 250 unacknowledged).
    fn update_flow_control(&mut self, out: &mut Vec<Output>) {
        let highest = self.history.highest();
        let lowest_ack = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| *i != self.local && n.status.is_alive())
            .map(|(_, n)| n.acked)
            .min();
        match lowest_ack {
            None => {
                if highest.saturating_sub(self.ack_point) >= sequence::MAX_GAP {
                    self.ack_point = highest - (sequence::MAX_GAP - 1);
                }
            }
            Some(lowest) => self.ack_point = self.ack_point.max(lowest),
        }
        let paused = self.flow_control
            && lowest_ack.is_some()
            && highest.saturating_sub(self.ack_point) > sequence::MAX_GAP;
        if paused != self.clients_paused {
            self.clients_paused = paused;
            Self::event(out, MembershipEvent::FlowControl { paused });
        }
    }
}
