//! Resource-group ownership: the sans-IO state machine that decides which node runs which
//! haresources group, and runs ours.
//!
//! It owns who should own each group, the messages that move groups between nodes (Heartbeat
//! 3.0.6's R1 vocabulary, spec §5, plus vigil fields Heartbeat ignores), the local execution
//! of each group's agent operations (start left to right, stop right to left, retries,
//! monitors), standby and takeover, and graceful shutdown. It must not touch a clock, a
//! socket, a file or a process: membership's events and delivered messages, operation
//! results, operator commands and the time come in as [`Input`]s; messages to send, agent
//! operations to run and events go out as [`Output`]s. The runtime arms one timer at
//! [`Failover::next_deadline`].
//!
//! # Who owns a group
//!
//! Every node computes the *chosen owner* of a group the same way from the same view: the
//! first node of the group's `order` that is a *candidate* (alive, announced in its current
//! run, not leaving, and not failed for the group) and not in standby for it; if every
//! candidate stands by, the first candidate (standby is a preference, not a ban). With
//! `auto_failback off`, a candidate that holds the group and does not stand by for it keeps
//! it (the first such in `order` if a partition left two holders). `legacy` chooses like
//! `on`. A group's default `order`, when the operator gives none, is its preferred node, then
//! the other configured nodes in configuration order starting after the preferred node and
//! wrapping around (`a b c d` with preferred `c` gives `c d a b`).
//!
//! A node holding a group it is no longer the chosen owner of stops it, right to left, and
//! announces the release. The chosen owner starts a group only when nobody holds it and, so
//! that two nodes whose views differ for a moment can never both start it, after a *claim*:
//! it announces the claim, every live vigil peer acknowledges it (their next announcement
//! lists the claim's number in `seen`), and no peer holds the group or claims it with a
//! better place in `order`. A claim is made while the old holder still stops, so the group
//! is without owner for the stop plus one message. Two claimants cannot both start: a claim
//! stands until its group is started, and each claimant needs the other's acknowledgement,
//! so of the two acknowledgements the later one was sent by a node that had already seen the
//! other's claim, while its own claim (or holding) was standing: the receiver sees that, the
//! sender sees the received claim, and only the better place in `order` may go on. Only a
//! node membership declared dead (or that restarted, or announced `shutdone`) loses its
//! groups without releasing them, in `Failover::release_groups_of_lost_node`, the one place
//! where a fencing step belongs.
//!
//! # Messages
//!
//! After membership's `CommunicationsUp` we send `starting`, as 3.0.6 does; every node answers
//! `starting` with `resource` (`rtype=full`, `isstable`), so a starting node learns every
//! holding within one round trip and acquires at once (3.0.6 waits a fixed 10 s). Until then,
//! the nodes alive when our communications came up may hold anything, and we acquire nothing;
//! one that never answers is left out after the fallback period, `max(10 s, deadtime +
//! keepalive)`, with a warning. A node first seen later is booting: it holds nothing and does
//! not hold anything up, and becomes a candidate with its own `starting`. A node back from a
//! partition may hold anything again: we send it `starting` and wait for its answer.
//!
//! Every change of what we hold, claim, stand by for or may not run is announced with
//! `resource`: Heartbeat's fields (`rsc_hold` from our point of view: `local` = groups
//! preferred by us, over what we hold and claim; `isstable` = nothing in flux) followed by
//! vigil's (`groups`, `claims`, `standby`, `failed` as space-separated keys, a single space for
//! none; `inc`, our run; `ver`, the announcement number; `seen`, the newest announcement
//! received from each vigil peer's run). Our `starting` carries the same fields. A vigil node
//! also announces to acknowledge a claim it has not acknowledged yet (never twice for the same
//! claim, so two claimants do not answer each other forever), and to a peer that has seen
//! nothing of ours when nothing we sent since its run began is on its way.
//!
//! # Heartbeat peers (two-node clusters, as Heartbeat itself)
//!
//! A peer whose messages lack vigil's fields is a Heartbeat node. Its holdings come from
//! `rsc_hold` with Heartbeat's meaning (`local` = its preferred groups, `foreign` = the
//! others; `rtype=full` replaces, otherwise OR, `none` clears). Heartbeat sets its bits before
//! it starts and clears them before it stops, so a smaller holding counts only once the
//! release is over: after its `done` (for `info=standby`), its `shutdone` (for
//! `info=shutdown`), and otherwise only once its word can be trusted — after its `starting`,
//! an `isstable=1`, or 10 s (`RQSTDELAY`), because 3.0.6 answers our `starting` with
//! `isstable=0` whether it is starting or shutting down. Until then we start nothing (and,
//! claiming nothing, still say `isstable=1`, so that a starting Heartbeat node goes on
//! without its 10 s pause). Its `starting` says nothing of its holdings (it may have taken
//! everything over at `initdead`): a new run is told by membership's restart event.
//!
//! Heartbeat takes groups only at its start (its own, unless we hold them), on a `done` of
//! the standby exchange, on `shutdone` or on our death, so we never start its own groups
//! while it is starting, and we move groups to it with the `ask_resources`
//! `me`/`other`/`done` exchange (which moves Heartbeat's whole `local` or `foreign` class,
//! and puts us in standby for that class so both agree). From its `other` on, the set is
//! promised: we start none of it again, whatever an operator says meanwhile, and it counts as
//! the peer's until the peer's first full `resource` after the exchange says so. An
//! `hb_takeover` during an exchange is ignored, as Heartbeat ignores the standby request it
//! turns into. Like 3.0.6, a Heartbeat node does not notice a peer that restarts within its
//! deadtime: groups such a vigil node held for it stay unowned until the next death,
//! standby or takeover. With `auto_failback legacy`, groups move to a non-vigil peer when it
//! asks with `ip-request` (we stop the group, then answer `ip-request-resp`), and we ask for
//! ours with `ip-request` and start on its answer, as `req_resource` and `rc.d/ip-request*`
//! do.
//!
//! # Operator commands, failures, shutdown
//!
//! `standby SET` makes this node stand by for the set (with a Heartbeat peer, through the
//! exchange); `standby none` ends it. `takeover SET` clears our standby and failed marks for
//! the set and sends `hb_takeover`, on which every other node stands by for those groups. A
//! node that failed to start a group, exhausted a resource's monitor restarts, or could not
//! stop it is not eligible for that group until `takeover` here (or a restart); a stop that
//! failed for good keeps the group held here (nobody may start it on top) until an operator
//! stops it and runs `takeover` or `standby`, or fencing. On `Shutdown` we send `resource
//! rsc_hold=none isstable=0 info=shutdown`, stop every group (right to left, groups in
//! parallel), send `shutdone` (`st=dead`) and then [`Output::ShutdownComplete`]; if a stop
//! failed for good, `shutdone` is not sent, so that no peer takes over what may still run.
//!
//! Deliberate differences from 3.0.6: no fixed 10 s pause at start; with three or more nodes
//! exactly one survivor takes a dead node's groups (3.0.6 lets every survivor take them);
//! `cl_status rscstatus` says `none` on a node that owns nothing (3.0.6 says `local`);
//! resources may be monitored and restarted in place; a failed start marks the group
//! ineligible here at once instead of running `hb_standby` 30 s later.
//!
//! # Connectivity failover
//!
//! With [`Failover::with_connectivity`] (what Heartbeat's ipfail did), a node stands by for a
//! group while a candidate vigil peer has reported seeing more ping nodes than we do, for the
//! whole dampening time; the standby is announced like operator standby, so the peer claims
//! and starts the group once we released it. When counts are equal again for the dampening
//! time the standby ends, and the group follows `auto_failback`. See `connectivity`.
//!
//! Submodules: [`events`] (what we log), [`status`] (the API snapshot), `messages` (the wire
//! vocabulary), `peers` (what we know of each node), `runner` (one group's operations),
//! `exchange` (the Heartbeat standby exchange), `connectivity` (ping counts and the dampened
//! connectivity standby).

pub mod events;
pub mod status;

mod connectivity;
mod exchange;
mod fencing;
mod messages;
mod peers;
mod runner;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use vigil_plugin_api::{AgentAction, OcfStatus};

pub use connectivity::ConnectivityConfig;
pub use events::FailoverEvent;
pub use fencing::FencingStatus;
pub use messages::{HoldSet, MessageError};
pub use status::{FailoverStatus, GroupStatus, LocalGroupState, ResourceStatus};

use crate::config::AutoFailback;
use crate::membership::{MembershipEvent, NodeStatus, Now};
use crate::wire::Message;
use connectivity::Connectivity;
use exchange::{Exchange, Phase as ExchangePhase};
use messages::{NodeState, SeenEntry, StandbyStep};
use peers::{Knowledge, Peer, PeerKind};
use runner::{GroupRunner, Note};

/// The shortest wait for a live peer's resource information before deciding without it
/// (Heartbeat's `RQSTDELAY`).
const FALLBACK_MIN: Duration = Duration::from_secs(10);

/// How long a peer's `resource` may take to answer our `starting` when the two `starting`
/// messages may have crossed (ours sent before its own arrived). Heartbeat answers at once
/// if ours reached it after its own was sent, and ignores ours if it came earlier; asking
/// again at once would be a second `starting` during its start-up, which it logs as an
/// error. A round trip plus a retransmission fits well inside.
const STARTING_ANSWER_WAIT: Duration = Duration::from_secs(1);

/// Everything the machine needs to know, from the configuration and the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverConfig {
    /// Our node name (compared in lower case).
    pub local_node: String,
    /// Every configured node, ourselves included, in configuration order (the default
    /// `order` of a group follows it).
    pub nodes: Vec<String>,
    /// The resource groups, in haresources order.
    pub groups: Vec<GroupConfig>,
    /// What happens when a group's preferred node comes back.
    pub auto_failback: AutoFailback,
    /// The keepalive interval: part of the fallback period for silent peers.
    pub keepalive: Duration,
    /// The deadtime: part of the fallback period for silent peers.
    pub deadtime: Duration,
    /// Names this run in announcements (`inc`), so that a peer's acknowledgement of an
    /// earlier run never counts: every run must get a different seed (the runtime draws it
    /// at random).
    pub rng_seed: u64,
    /// The STONITH device this node fences with, as configured (`null`, `external/ipmi`),
    /// for logs; `None`: no fencing, and a lost node's groups move at once.
    pub fence_device: Option<String>,
}

/// One resource group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// The first resource token, Heartbeat's group key (`ip-request ipaddr=`, the keys in
    /// `groups`). Keys must be unique.
    pub key: String,
    /// The node that owns the group when it is up.
    pub preferred: String,
    /// Every node that may run it, in order of preference; empty means the default order
    /// (see the module documentation).
    pub order: Vec<String>,
    /// The resources, in start order.
    pub resources: Vec<ResourceConfig>,
}

/// One resource of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceConfig {
    /// The token as written (`IPaddr::198.18.0.100/24/eth0`), for logs.
    pub name: String,
    /// Periodic monitoring, if wanted (Heartbeat v1 had none).
    pub monitor: Option<MonitorConfig>,
}

/// How a running resource is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorConfig {
    /// Time between the end of one monitor and the next.
    pub interval: Duration,
    /// Restart in place up to this many times (counted since the group was acquired), then
    /// move the group away.
    pub restarts: u32,
}

/// What can happen to the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A membership event, as membership emits it (node status changes, communications up,
    /// restarts, returns after partition; others are ignored).
    Membership(MembershipEvent),
    /// A message from membership's `Deliver` (our own looped-back copies included; they are
    /// ignored).
    Delivered {
        /// The sender (lower case).
        from: String,
        /// The message.
        message: Message,
    },
    /// An agent operation asked with [`Output::Run`] finished.
    OperationDone {
        /// The group index in the configuration.
        group: usize,
        /// The resource index in the group.
        resource: usize,
        /// The action that ran.
        action: AgentAction,
        /// What the agent answered (a timeout is a failure).
        status: OcfStatus,
    },
    /// The deadline from [`Failover::next_deadline`] was reached (early or late is fine).
    Timer,
    /// A reset asked with [`Output::Fence`] finished: `Err` carries what the device said.
    FenceDone {
        /// The node (lower case).
        node: String,
        /// The attempt this answers, as [`Output::Fence`] numbered it; the answer to an
        /// earlier attempt (a reset that was cancelled, or given up at its deadline) is
        /// ignored.
        attempt: u64,
        /// The outcome.
        result: Result<(), String>,
    },
    /// `vigil standby` / `hb_standby`: stand by for the set (`None` ends standby).
    Standby(HoldSet),
    /// `vigil takeover` / `hb_takeover`: take the set over.
    Takeover(HoldSet),
    /// SIGTERM: release every local group, announce, then [`Output::ShutdownComplete`].
    Shutdown,
}

/// What the runtime must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Hand to membership as `SendCluster`.
    Send(Message),
    /// Run this agent operation off the core and answer [`Input::OperationDone`].
    Run {
        /// The group index in the configuration.
        group: usize,
        /// The resource index in the group.
        resource: usize,
        /// The action.
        action: AgentAction,
    },
    /// Reset this lost node with the configured device, off the core, and answer
    /// [`Input::FenceDone`]. Its groups wait.
    Fence {
        /// The node (lower case).
        node: String,
        /// Numbers this attempt, unique in this run: [`Input::FenceDone`] gives it back.
        attempt: u64,
    },
    /// Log and publish.
    Event(FailoverEvent),
    /// Graceful shutdown is finished: the runtime may stop.
    ShutdownComplete,
}

/// Where the machine is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    ShuttingDown,
    Stopped,
}

/// One group: its configuration, resolved to node indices, and its local state.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    /// Heartbeat's group key: how messages name the group.
    key: String,
    /// Node index of the preferred node: what `local` means in Heartbeat's sets.
    preferred: usize,
    /// Node indices in order of preference: the chosen owner is the first candidate.
    order: Vec<usize>,
    /// `preferred r1 r2 …`, as the haresources line reads, for logs.
    line: String,
    /// The resource tokens, to name a failing resource in events.
    resource_names: Vec<String>,
    /// What runs of it here.
    runner: GroupRunner,
    /// Our claim: the number of the first announcement that carries it.
    claim: Option<u64>,
    /// We sent `ip-request` for it since the claim was made.
    ip_requested: bool,
    /// Nodes whose `ip-request` we answer once the group is down (and whether we held it).
    owed_answers: Vec<(usize, bool)>,
}

/// What we last told the others, to announce only changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    /// `rsc_hold`, what Heartbeat reads.
    hold: HoldSet,
    /// `isstable`.
    stable: bool,
    /// `groups`.
    held: BTreeSet<usize>,
    /// `claims`.
    claims: BTreeSet<usize>,
    /// `standby`.
    standby: BTreeSet<usize>,
    /// `failed`.
    failed: BTreeSet<usize>,
}

/// The failover machine. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failover {
    /// Our node index.
    local: usize,
    /// Node names (lower case) by index: configured nodes first, in configuration order.
    names: Vec<String>,
    /// Chooses between keeping a group where it is and giving it back.
    auto_failback: AutoFailback,
    /// How long a live peer may stay silent about its resources.
    fallback: Duration,
    /// Every group, in configuration order (the index is the runtime's group number).
    groups: Vec<Group>,
    /// One record per node (index = node index); the local slot is never read.
    peers: Vec<Peer>,
    /// Running, shutting down, or stopped for good.
    phase: Phase,
    /// Membership declared communications up: we take part in ownership from then on.
    comm_up: bool,
    /// This run's name in announcements (`inc`).
    incarnation: String,
    /// The number of our newest announcement.
    version: u64,
    /// Groups we stand by for.
    standby: BTreeSet<usize>,
    /// Of those, the ones we stand by for because a peer took them over, with that peer:
    /// when it later stands by for them itself, ours ends.
    standby_for_takeover: BTreeMap<usize, usize>,
    /// Groups we may not run.
    failed: BTreeSet<usize>,
    /// The Heartbeat standby exchange under way, if any.
    exchange: Option<Exchange>,
    /// What our last announcement said, so that only changes are announced.
    last_announced: Option<Snapshot>,
    /// An announcement is owed whatever changed (an answer or an acknowledgement).
    announce_requested: bool,
    /// A `starting` is owed (to learn a returning or new node's holdings).
    starting_requested: bool,
    /// We sent a `starting` in this run (the first one goes out even to an empty cluster,
    /// as Heartbeat's does when its communications come up).
    starting_sent: bool,
    /// The first acquisition after start was reported.
    initial_done: bool,
    /// (group, node) pairs already reported as duplicate holdings.
    duplicates: BTreeSet<(usize, usize)>,
    /// The device we fence with, if any (see [`FailoverConfig::fence_device`]).
    fence_device: Option<String>,
    /// Lost nodes that must be reset before their groups move.
    fences: BTreeMap<usize, fencing::FenceNeed>,
    /// The number of the last reset attempt asked for.
    fence_attempts: u64,
    /// Connectivity-driven failover, when enabled ([`Failover::with_connectivity`]).
    connectivity: Option<Connectivity>,
}

impl Failover {
    /// A machine for `config`. Names are lower-cased; the local node is added to the node
    /// list if missing, and so are nodes named only by a group.
    pub fn new(config: FailoverConfig) -> Self {
        let local_name = config.local_node.to_ascii_lowercase();
        let mut names: Vec<String> = Vec::new();
        let index_of = |names: &mut Vec<String>, name: &str| -> usize {
            let name = name.to_ascii_lowercase();
            match names.iter().position(|n| *n == name) {
                Some(i) => i,
                None => {
                    names.push(name);
                    names.len() - 1
                }
            }
        };
        for node in &config.nodes {
            index_of(&mut names, node);
        }
        let local = index_of(&mut names, &local_name);
        let configured = names.len();
        let groups = config
            .groups
            .iter()
            .map(|group| {
                let preferred = index_of(&mut names, &group.preferred);
                let mut order: Vec<usize> = Vec::new();
                if group.order.is_empty() {
                    order.push(preferred);
                    order.extend(
                        (1..configured)
                            .map(|step| (preferred + step) % configured.max(1))
                            .filter(|i| *i != preferred && *i < configured),
                    );
                } else {
                    for node in &group.order {
                        let i = index_of(&mut names, node);
                        if !order.contains(&i) {
                            order.push(i);
                        }
                    }
                }
                let resource_names: Vec<String> =
                    group.resources.iter().map(|r| r.name.clone()).collect();
                let line = std::iter::once(group.preferred.to_ascii_lowercase())
                    .chain(resource_names.iter().cloned())
                    .collect::<Vec<_>>()
                    .join(" ");
                Group {
                    key: group.key.clone(),
                    preferred,
                    order,
                    line,
                    resource_names,
                    runner: GroupRunner::new(&group.resources),
                    claim: None,
                    ip_requested: false,
                    owed_answers: Vec::new(),
                }
            })
            .collect();
        let peers = names.iter().map(|n| Peer::new(n.clone())).collect();
        Failover {
            local,
            names,
            auto_failback: config.auto_failback,
            fallback: FALLBACK_MIN.max(config.deadtime + config.keepalive),
            groups,
            peers,
            phase: Phase::Running,
            comm_up: false,
            incarnation: format!("{:x}", config.rng_seed),
            version: 0,
            standby: BTreeSet::new(),
            standby_for_takeover: BTreeMap::new(),
            failed: BTreeSet::new(),
            exchange: None,
            last_announced: None,
            announce_requested: false,
            starting_requested: false,
            starting_sent: false,
            initial_done: false,
            duplicates: BTreeSet::new(),
            fence_device: config.fence_device,
            fences: BTreeMap::new(),
            fence_attempts: 0,
            connectivity: None,
        }
    }

    /// Enables connectivity-driven failover (what Heartbeat's ipfail did): this node stands
    /// by for a group while a candidate peer sees more ping nodes, dampened (see the
    /// `connectivity` module). Called once, before the first input.
    pub fn with_connectivity(mut self, config: ConnectivityConfig) -> Self {
        self.connectivity = Some(Connectivity::new(config));
        self
    }

    /// Whether [`Input::Delivered`] with `message` can change anything here: only the
    /// resource messages and the connectivity counts do (the types `on_delivered` reads).
    /// The runtime hands failover nothing else, so heartbeats and client messages, nearly
    /// all of the traffic, cost it nothing.
    pub fn acts_on(message: &Message) -> bool {
        message.message_type().is_some_and(|kind| {
            [
                messages::T_STARTING,
                messages::T_RESOURCE,
                messages::T_ASK_RESOURCES,
                messages::T_HB_TAKEOVER,
                messages::T_IP_REQUEST,
                messages::T_IP_REQUEST_RESP,
                messages::T_STONITH,
                messages::T_SHUTDONE,
                connectivity::T_PING_COUNT,
            ]
            .contains(&kind)
        })
    }

    /// Feeds one input at `now` and returns what to do, in order. Messages announcing a group
    /// always come before the operations that start it.
    pub fn handle(&mut self, input: Input, now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase == Phase::Stopped {
            return out;
        }
        let now = now.mono;
        self.run_timers(now, &mut out);
        match input {
            Input::Membership(event) => self.on_membership(event, now, &mut out),
            Input::Delivered { from, message } => self.on_delivered(&from, &message, now, &mut out),
            Input::OperationDone {
                group,
                resource,
                action,
                status,
            } => self.on_operation_done(group, resource, action, status, now, &mut out),
            Input::Timer => {}
            Input::FenceDone {
                node,
                attempt,
                result,
            } => self.on_fence_done(&node, attempt, result, now, &mut out),
            Input::Standby(set) => self.on_standby_command(set, now, &mut out),
            Input::Takeover(set) => self.on_takeover_command(set, &mut out),
            Input::Shutdown => self.begin_shutdown(&mut out),
        }
        self.update_connectivity(now, &mut out);
        self.reconcile(now, &mut out);
        out
    }

    /// When [`Input::Timer`] is next due: a silent peer's fallback, the moment a Heartbeat
    /// peer's word is trusted anyway, a standby exchange's timeout, a stop retry, a monitor,
    /// or the end of the wait for the answer to a `starting` that may have crossed.
    pub fn next_deadline(&self) -> Option<Duration> {
        if self.phase == Phase::Stopped {
            return None;
        }
        let silent = self
            .other_nodes()
            .filter(|&i| self.blocks_handshake(i))
            .filter_map(|i| self.peers.get(i).and_then(|p| p.unknown_since))
            .map(|since| since + self.fallback);
        let untrusted = self
            .other_nodes()
            .filter(|&i| self.awaits_trustworthy_word(i))
            .filter_map(|i| self.peers.get(i).and_then(|p| p.untrusted_since))
            .map(|since| since + FALLBACK_MIN);
        let exchange = self.exchange.map(|e| e.deadline);
        let runners = self.groups.iter().filter_map(|g| g.runner.next_deadline());
        let answers = self.peers.iter().filter_map(|p| p.starting_answer_due);
        silent
            .chain(untrusted)
            .chain(exchange)
            .chain(runners)
            .chain(answers)
            .chain(self.next_fencing_deadline())
            .chain(
                self.connectivity
                    .as_ref()
                    .and_then(Connectivity::next_deadline),
            )
            .min()
    }

    /// A snapshot for the API (`vigil status`, `cl_status rscstatus`).
    pub fn status(&self) -> FailoverStatus {
        let rsc_status = if self.settled() {
            let running: BTreeSet<usize> = (0..self.groups.len())
                .filter(|&g| self.groups[g].runner.is_running())
                .collect();
            match self.class_of(&running) {
                HoldSet::None => ResourceStatus::None,
                HoldSet::Local => ResourceStatus::Local,
                HoldSet::Foreign => ResourceStatus::Foreign,
                HoldSet::All => ResourceStatus::All,
            }
        } else {
            ResourceStatus::Transition
        };
        let groups = self
            .groups
            .iter()
            .enumerate()
            .map(|(g, group)| {
                let owner = if group.runner.is_held() {
                    Some(self.local)
                } else {
                    self.other_nodes().find(|&i| {
                        self.peers.get(i).is_some_and(|p| {
                            p.alive && p.knowledge != Knowledge::Silent && p.holds(g)
                        })
                    })
                };
                let local = if self.failed.contains(&g) && !group.runner.is_held() {
                    LocalGroupState::Failed
                } else {
                    group.runner.state()
                };
                GroupStatus {
                    key: group.key.clone(),
                    preferred: self.name(group.preferred).to_string(),
                    order: group
                        .order
                        .iter()
                        .map(|&i| self.name(i).to_string())
                        .collect(),
                    owner: owner.map(|i| self.name(i).to_string()),
                    local,
                    standby: self.stands_by(self.local, g),
                }
            })
            .collect();
        FailoverStatus {
            local_node: self.name(self.local).to_string(),
            rsc_status,
            auto_failback: self.auto_failback.as_str().to_string(),
            groups,
            fencing: self.fencing_status(),
        }
    }

    fn name(&self, node: usize) -> &str {
        self.names.get(node).map_or("", String::as_str)
    }

    fn node_index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n.eq_ignore_ascii_case(name))
    }

    fn group_index(&self, key: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.key == key)
    }

    fn other_nodes(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.names.len()).filter(move |&i| i != self.local)
    }

    fn event(out: &mut Vec<Output>, event: FailoverEvent) {
        out.push(Output::Event(event));
    }

    // ---------------------------------------------------------------- who owns what

    /// Whether a non-vigil peer is handled the legacy way (`ip-request`).
    fn is_legacy_peer(&self, node: usize) -> bool {
        self.auto_failback == AutoFailback::Legacy
            && self
                .peers
                .get(node)
                .is_some_and(|p| p.kind != PeerKind::Vigil)
    }

    /// Whether a live peer's silence about its resources holds up our acquisitions.
    fn blocks_handshake(&self, node: usize) -> bool {
        self.peers.get(node).is_some_and(|p| {
            p.alive
                && matches!(p.knowledge, Knowledge::Unknown | Knowledge::Returning)
                && !self.is_legacy_peer(node)
        })
    }

    /// Whether a live Heartbeat peer's `rsc_hold` cannot be taken at its word yet (see
    /// `Peer::word_trusted`): until it can, we start nothing.
    fn awaits_trustworthy_word(&self, node: usize) -> bool {
        self.needs_exchange(node)
            && self.peers.get(node).is_some_and(|p| {
                p.alive && p.knowledge == Knowledge::Known && !p.word_trusted && !p.leaving
            })
    }

    /// Whether we may take part in ownership at all.
    fn is_ready(&self) -> bool {
        self.comm_up && self.phase == Phase::Running
    }

    fn is_candidate(&self, node: usize, group: usize) -> bool {
        if node == self.local {
            return self.is_ready() && !self.failed.contains(&group);
        }
        let Some(peer) = self.peers.get(node) else {
            return false;
        };
        let announced = match peer.knowledge {
            Knowledge::Known => true,
            Knowledge::Unknown | Knowledge::Returning | Knowledge::Fresh => {
                self.is_legacy_peer(node)
            }
            Knowledge::Departed | Knowledge::Silent => false,
        };
        peer.alive && announced && !peer.leaving && !peer.failed.contains(&group)
    }

    fn stands_by(&self, node: usize, group: usize) -> bool {
        if node == self.local {
            self.standby.contains(&group)
                || self
                    .connectivity
                    .as_ref()
                    .is_some_and(|c| c.stands_by(group))
        } else {
            self.peers
                .get(node)
                .is_some_and(|p| p.standby.contains(&group))
        }
    }

    fn holds(&self, node: usize, group: usize) -> bool {
        if node == self.local {
            self.groups
                .get(group)
                .is_some_and(|g| g.runner.wants_running())
        } else {
            self.peers.get(node).is_some_and(|p| p.holds(group))
        }
    }

    /// The chosen owner of a group (see the module documentation), or `None` if no node may
    /// run it.
    fn chosen_owner(&self, group: usize) -> Option<usize> {
        let order = &self.groups.get(group)?.order;
        let candidates: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&n| self.is_candidate(n, group))
            .collect();
        if self.auto_failback == AutoFailback::Off
            && let Some(&holder) = candidates
                .iter()
                .find(|&&n| self.holds(n, group) && !self.stands_by(n, group))
        {
            return Some(holder);
        }
        candidates
            .iter()
            .copied()
            .find(|&n| !self.stands_by(n, group))
            .or_else(|| candidates.first().copied())
    }

    /// A node's place in a group's order (lower is better; outside the order is worst).
    fn rank(&self, node: usize, group: usize) -> usize {
        self.groups
            .get(group)
            .and_then(|g| g.order.iter().position(|&n| n == node))
            .unwrap_or(usize::MAX)
    }

    /// Heartbeat's class of a set of groups, from our point of view.
    fn class_of(&self, groups: &BTreeSet<usize>) -> HoldSet {
        let local = groups.iter().any(|&g| {
            self.groups
                .get(g)
                .is_some_and(|x| x.preferred == self.local)
        });
        let foreign = groups.iter().any(|&g| {
            self.groups
                .get(g)
                .is_some_and(|x| x.preferred != self.local)
        });
        HoldSet::from_bits(u8::from(local) | (u8::from(foreign) << 1))
    }

    /// The groups a set covers from `node`'s point of view.
    fn covered(&self, set: HoldSet, node: usize) -> BTreeSet<usize> {
        (0..self.groups.len())
            .filter(|&g| {
                self.groups
                    .get(g)
                    .is_some_and(|x| set.covers(x.preferred == node))
            })
            .collect()
    }

    /// Nothing in flux: our first acquisition is done, nothing starts or stops, no claim, no
    /// exchange. This is `isstable`, and what `transition` in `rscstatus` means.
    fn settled(&self) -> bool {
        self.settled_apart_from_exchange() && self.exchange.is_none()
    }

    fn settled_apart_from_exchange(&self) -> bool {
        self.is_ready()
            && !self.other_nodes().any(|i| self.blocks_handshake(i))
            && self
                .groups
                .iter()
                .all(|g| g.claim.is_none() && !g.runner.in_transition())
    }

    // ---------------------------------------------------------------- inputs

    fn on_membership(&mut self, event: MembershipEvent, now: Duration, out: &mut Vec<Output>) {
        match event {
            MembershipEvent::CommunicationsUp => {
                if self.comm_up {
                    return;
                }
                self.comm_up = true;
                for i in 0..self.peers.len() {
                    if i == self.local {
                        continue;
                    }
                    // Communications are up once every node was heard or declared dead, a
                    // node possibly before its first status message.
                    if self.peers[i].status != NodeStatus::Dead {
                        self.peers[i].alive = true;
                    }
                    if self.blocks_handshake(i) {
                        self.peers[i].unknown_since = Some(now);
                    }
                }
                self.starting_requested = true;
            }
            MembershipEvent::NodeStatus { node, new, .. } => {
                if let Some(c) = &mut self.connectivity
                    && c.on_ping_status(&node, new != NodeStatus::Dead)
                {
                    return;
                }
                let Some(i) = self.node_index(&node).filter(|&i| i != self.local) else {
                    return;
                };
                let was_alive = self.peers[i].alive;
                let alive = new.is_alive();
                if was_alive != alive
                    && let Some(c) = &mut self.connectivity
                {
                    c.peer_changed(i);
                }
                self.peers[i].status = new;
                self.peers[i].alive = alive;
                if was_alive && !alive {
                    self.release_groups_of_lost_node(i, out);
                    let knowledge = match self.peers[i].knowledge {
                        Knowledge::Fresh => Knowledge::Fresh,
                        _ => Knowledge::Unknown,
                    };
                    self.peers[i].forget(knowledge);
                } else if !was_alive && alive && self.comm_up {
                    match self.peers[i].knowledge {
                        // First seen since our communications came up: it is booting (a
                        // node partitioned from us since before then would be a split brain,
                        // and our `starting` makes it tell its holdings).
                        Knowledge::Unknown => {
                            self.peers[i].knowledge = Knowledge::Fresh;
                            self.starting_requested = true;
                        }
                        Knowledge::Returning => {
                            self.peers[i].unknown_since = Some(now);
                            self.starting_requested = true;
                        }
                        _ => {}
                    }
                }
            }
            MembershipEvent::NodeRestarted { node, .. } => {
                let Some(i) = self.node_index(&node).filter(|&i| i != self.local) else {
                    return;
                };
                self.release_groups_of_lost_node(i, out);
                self.peers[i].new_run();
                if let Some(c) = &mut self.connectivity {
                    c.peer_changed(i);
                }
            }
            MembershipEvent::ReturnedAfterPartition { node } => {
                let Some(i) = self.node_index(&node).filter(|&i| i != self.local) else {
                    return;
                };
                self.peers[i].forget(Knowledge::Returning);
                if self.comm_up {
                    self.peers[i].unknown_since = Some(now);
                    self.starting_requested = true;
                }
            }
            _ => {}
        }
    }

    /// The one place where the groups of a node that is gone — declared dead, restarted, or
    /// a run we will not hear from again — stop counting as held, so that their chosen
    /// survivor takes them. A fencing step goes here: until the node is fenced, its groups
    /// must keep counting as held by it.
    fn release_groups_of_lost_node(&mut self, node: usize, out: &mut Vec<Output>) {
        if self.exchange.is_some_and(|e| e.peer == node) {
            self.exchange = None;
            Self::event(
                out,
                FailoverEvent::StandbyCancelled {
                    reason: format!(
                        "{} is gone. Cancelling pending standby operation",
                        self.name(node)
                    ),
                },
            );
        }
        let Some(peer) = self.peers.get_mut(node) else {
            return;
        };
        let held = peer.holdings();
        peer.held.clear();
        peer.pending_release.clear();
        peer.taking.clear();
        peer.legacy_held.clear();
        peer.claims.clear();
        peer.bits = 0;
        self.require_fencing(node, held.clone());
        if !self.fences.contains_key(&node)
            && held
                .iter()
                .any(|&g| self.chosen_owner(g) == Some(self.local))
        {
            Self::event(
                out,
                FailoverEvent::TakingOverFrom {
                    node: self.name(node).to_string(),
                },
            );
        }
    }

    fn on_delivered(
        &mut self,
        from: &str,
        message: &Message,
        now: Duration,
        out: &mut Vec<Output>,
    ) {
        let Some(node) = self.node_index(from) else {
            return;
        };
        if node == self.local {
            return;
        }
        let result = match message.message_type() {
            Some(messages::T_STARTING) => self.on_starting(node, message, now, out),
            Some(messages::T_RESOURCE) => self.on_resource(node, message, out),
            Some(messages::T_ASK_RESOURCES) => self.on_ask_resources(node, message, now, out),
            Some(messages::T_HB_TAKEOVER) => {
                self.on_hb_takeover(node, messages::parse_hb_takeover(message), out);
                Ok(())
            }
            Some(messages::T_IP_REQUEST) => self.on_ip_request(node, message, out),
            Some(messages::T_IP_REQUEST_RESP) => self.on_ip_request_resp(node, message),
            Some(messages::T_STONITH) => {
                self.on_stonith_message(node, message, out);
                Ok(())
            }
            Some(messages::T_SHUTDONE) => {
                self.on_shutdone(node, out);
                Ok(())
            }
            Some(connectivity::T_PING_COUNT) => match &mut self.connectivity {
                Some(c) => c.on_count(node, message),
                None => Ok(()),
            },
            _ => Ok(()),
        };
        if let Err(error) = result {
            Self::event(
                out,
                FailoverEvent::MalformedMessage {
                    node: self.name(node).to_string(),
                    reason: error.to_string(),
                },
            );
        }
    }

    fn on_starting(
        &mut self,
        node: usize,
        message: &Message,
        now: Duration,
        out: &mut Vec<Output>,
    ) -> Result<(), MessageError> {
        match messages::parse_starting(message)? {
            Some(state) => self.apply_vigil_state(node, state, None, out),
            None => {
                // Heartbeat sends `starting` when its communications come up, possibly after
                // taking everything over at `initdead`: it says nothing of its holdings. A new
                // run (membership's restart event) holds nothing; otherwise we keep what we
                // know, and if we know nothing, our own `starting` makes it answer with its
                // `rsc_hold`: the one we already sent, if it crossed this one, else a new one
                // (see `STARTING_ANSWER_WAIT`).
                let peer = &mut self.peers[node];
                peer.kind = PeerKind::Heartbeat;
                peer.starting_up = true;
                peer.stable = false;
                peer.word_trusted = true;
                match peer.knowledge {
                    Knowledge::Fresh => peer.knowledge = Knowledge::Known,
                    Knowledge::Unknown | Knowledge::Returning | Knowledge::Silent => {
                        if peer.heard_our_starting {
                            peer.starting_answer_due = Some(now + STARTING_ANSWER_WAIT);
                        } else {
                            self.starting_requested = true;
                        }
                    }
                    Knowledge::Known | Knowledge::Departed => {}
                }
            }
        }
        self.announce_requested = true;
        Ok(())
    }

    fn on_resource(
        &mut self,
        node: usize,
        message: &Message,
        out: &mut Vec<Output>,
    ) -> Result<(), MessageError> {
        let announcement = messages::parse_resource(message)?;
        self.peers[node].starting_answer_due = None;
        let leaving = announcement.info.as_deref() == Some(messages::INFO_SHUTDOWN);
        match announcement.state {
            Some(state) => {
                self.apply_vigil_state(node, state, announcement.stable, out);
            }
            None => {
                let in_exchange = self
                    .exchange
                    .is_some_and(|e| e.peer == node && e.phase == ExchangePhase::Accepted);
                let releasing = in_exchange
                    || leaving
                    || announcement.info.as_deref() == Some(messages::INFO_STANDBY);
                let peer_bits = {
                    let peer = &self.peers[node];
                    if announcement.full || announcement.hold == HoldSet::None {
                        announcement.hold.bits()
                    } else {
                        announcement.hold.bits() | peer.bits
                    }
                };
                let now_held = self.covered(HoldSet::from_bits(peer_bits), node);
                let after_exchange = self.exchange.is_none_or(|e| e.peer != node);
                let peer = &mut self.peers[node];
                let released: Vec<usize> = peer.held.difference(&now_held).copied().collect();
                if releasing {
                    peer.pending_release.extend(released);
                }
                if announcement.full && after_exchange {
                    peer.taking.clear();
                }
                peer.held = now_held;
                peer.bits = peer_bits;
                peer.kind = PeerKind::Heartbeat;
                if peer.knowledge != Knowledge::Departed {
                    peer.knowledge = Knowledge::Known;
                }
                peer.unknown_since = None;
                if let Some(stable) = announcement.stable {
                    peer.stable = stable;
                    if stable {
                        peer.starting_up = false;
                        peer.word_trusted = true;
                    }
                }
            }
        }
        if leaving {
            self.peers[node].leaving = true;
        }
        Ok(())
    }

    /// Takes a vigil peer's announced state (from `starting` or `resource`).
    fn apply_vigil_state(
        &mut self,
        node: usize,
        state: NodeState,
        stable: Option<bool>,
        out: &mut Vec<Output>,
    ) {
        let known_run = self.peers[node].incarnation.clone();
        if known_run.as_deref() != Some(state.incarnation.as_str()) {
            if known_run.is_some() {
                // A new run we did not see start: the old one's groups are gone with it.
                self.release_groups_of_lost_node(node, out);
            }
            let peer = &mut self.peers[node];
            peer.new_run();
            peer.incarnation = Some(state.incarnation.clone());
        }
        if state.version <= self.peers[node].version {
            return;
        }
        let to_set = |keys: &[String]| -> BTreeSet<usize> {
            keys.iter().filter_map(|k| self.group_index(k)).collect()
        };
        let held = to_set(&state.held);
        let claims = to_set(&state.claims);
        let standby = to_set(&state.standby);
        let failed = to_set(&state.failed);
        let ours = state.seen.iter().find(|e| {
            e.node.eq_ignore_ascii_case(self.name(self.local)) && e.incarnation == self.incarnation
        });
        let knows_us = ours.is_some();
        let seen_ours = ours.map_or(0, |e| e.version);
        // We stand by for groups because this peer took them over; now it stands by for
        // them itself (its operator's newer request): our standby for them ends, so they can
        // move here.
        let newly: Vec<usize> = standby
            .difference(&self.peers[node].standby)
            .copied()
            .filter(|g| self.standby_for_takeover.get(g) == Some(&node))
            .collect();
        for g in newly {
            self.standby.remove(&g);
            self.standby_for_takeover.remove(&g);
            self.groups[g].runner.retry_stop();
        }
        let peer = &mut self.peers[node];
        peer.kind = PeerKind::Vigil;
        peer.version = state.version;
        peer.held = held;
        peer.claims = claims;
        peer.standby = standby;
        peer.failed = failed;
        peer.seen_ours = seen_ours;
        if peer.knowledge != Knowledge::Departed {
            peer.knowledge = Knowledge::Known;
        }
        peer.unknown_since = None;
        if let Some(stable) = stable {
            peer.stable = stable;
        }
        // A withdrawn claim made again needs a new acknowledgement.
        let current: BTreeSet<usize> = peer.claims.clone();
        peer.acknowledged_claims.retain(|g| current.contains(g));
        let unacknowledged_claim = !peer.claims.is_subset(&peer.acknowledged_claims);
        // It has seen nothing of ours and nothing we sent since its run began is on its way.
        let uninformed = !knows_us && !peer.told;
        if unacknowledged_claim || (uninformed && self.comm_up) {
            self.announce_requested = true;
        }
    }

    fn on_ask_resources(
        &mut self,
        node: usize,
        message: &Message,
        now: Duration,
        out: &mut Vec<Output>,
    ) -> Result<(), MessageError> {
        let ask = messages::parse_ask_resources(message)?;
        if self.peers[node].kind == PeerKind::Vigil || self.phase != Phase::Running {
            return Ok(());
        }
        let name = self.name(node).to_string();
        match (ask.step, self.exchange) {
            (StandbyStep::Me, None) => {
                let reason = if self.auto_failback == AutoFailback::Legacy {
                    Some("Standby mode only implemented when nice_failback on")
                } else if !self.peers[node].stable {
                    Some("Other side is in flux.")
                } else if !self.settled_apart_from_exchange() {
                    Some("local resources in flux.")
                } else {
                    None
                };
                if let Some(reason) = reason {
                    Self::event(
                        out,
                        FailoverEvent::StandbyIgnored {
                            node: Some(name),
                            reason: reason.to_string(),
                        },
                    );
                    return Ok(());
                }
                let covered = self.covered(ask.set, node);
                self.peers[node].standby.extend(covered.iter().copied());
                self.peers[node].stable = false;
                for g in &covered {
                    self.standby.remove(g);
                }
                out.push(Output::Send(messages::ask_resources(
                    ask.set,
                    StandbyStep::Other,
                )));
                self.exchange = Some(Exchange {
                    peer: node,
                    set: ask.set,
                    phase: ExchangePhase::Accepted,
                    deadline: now + exchange::EXCHANGE_TIMEOUT,
                });
                Self::event(
                    out,
                    FailoverEvent::PeerGoingStandby {
                        node: name,
                        set: ask.set,
                    },
                );
            }
            (StandbyStep::Other, Some(e)) if e.peer == node && e.phase == ExchangePhase::Asked => {
                let covered = self.covered(e.set, self.local);
                self.standby.extend(covered.iter().copied());
                for g in &covered {
                    self.peers[node].standby.remove(g);
                }
                // Promised from now on: whatever an operator says meanwhile, the peer takes
                // the whole set after our `done`.
                self.peers[node].taking.extend(covered.iter().copied());
                self.exchange = Some(Exchange {
                    phase: ExchangePhase::Giving,
                    deadline: now + exchange::EXCHANGE_TIMEOUT,
                    ..e
                });
                // Heartbeat announces the smaller holding before it stops anything.
                let keep: BTreeSet<usize> = (0..self.groups.len())
                    .filter(|g| self.groups[*g].runner.is_held() && !covered.contains(g))
                    .collect();
                let hold = self.class_of(&keep);
                self.send_announcement(Some(hold), false, Some(messages::INFO_STANDBY), out);
                for g in covered {
                    if self.groups[g].runner.wants_running() {
                        self.release(g, format!("standby: {name} takes it"), out);
                    }
                }
            }
            (StandbyStep::Done, Some(e)) if e.peer == node && e.phase == ExchangePhase::Gave => {
                self.exchange = None;
                Self::event(
                    out,
                    FailoverEvent::StandbyCompleted {
                        set: e.set,
                        gave: true,
                    },
                );
                self.announce_requested = true;
            }
            (StandbyStep::Done, Some(e))
                if e.peer == node && e.phase == ExchangePhase::Accepted =>
            {
                self.peers[node].pending_release.clear();
                self.exchange = Some(Exchange {
                    phase: ExchangePhase::Taking,
                    deadline: now + exchange::EXCHANGE_TIMEOUT,
                    ..e
                });
            }
            (StandbyStep::Me, Some(_)) => Self::event(
                out,
                FailoverEvent::StandbyIgnored {
                    node: Some(name),
                    reason: "Standby in progress.".to_string(),
                },
            ),
            _ => {}
        }
        Ok(())
    }

    fn on_hb_takeover(&mut self, node: usize, set: HoldSet, out: &mut Vec<Output>) {
        if self.phase != Phase::Running {
            return;
        }
        if self.exchange.is_some_and(|e| e.peer == node) {
            // Heartbeat's `rc.d/hb_takeover` answers with a standby request, which a running
            // exchange ignores: the exchange finishes as agreed.
            Self::event(
                out,
                FailoverEvent::StandbyIgnored {
                    node: Some(self.name(node).to_string()),
                    reason: "Standby in progress.".to_string(),
                },
            );
            return;
        }
        let covered = self.covered(set, node);
        self.standby.extend(covered.iter().copied());
        for g in &covered {
            self.peers[node].standby.remove(g);
            self.peers[node].failed.remove(g);
            self.standby_for_takeover.insert(*g, node);
        }
        Self::event(
            out,
            FailoverEvent::GoingStandby {
                set,
                requested_by: Some(self.name(node).to_string()),
            },
        );
    }

    fn on_ip_request(
        &mut self,
        node: usize,
        message: &Message,
        out: &mut Vec<Output>,
    ) -> Result<(), MessageError> {
        let key = messages::parse_ip_request(message)?;
        if self.peers[node].kind == PeerKind::Vigil {
            // It took us for a legacy Heartbeat node before our `starting` reached it: claims
            // move groups between vigil nodes.
            return Ok(());
        }
        let requester = self.name(node).to_string();
        let Some(g) = self.group_index(key) else {
            out.push(Output::Send(messages::ip_request_resp(
                &requester, key, false,
            )));
            return Ok(());
        };
        if self.groups[g].runner.is_held() {
            self.groups[g].owed_answers.push((node, true));
            if self.groups[g].runner.wants_running() {
                self.release(g, format!("ip-request from {requester}"), out);
            }
        } else {
            self.answer_ip_request(g, node, false, out);
        }
        Ok(())
    }

    fn answer_ip_request(
        &mut self,
        group: usize,
        node: usize,
        we_owned: bool,
        out: &mut Vec<Output>,
    ) {
        let key = self.groups[group].key.clone();
        out.push(Output::Send(messages::ip_request_resp(
            self.name(node),
            &key,
            we_owned,
        )));
        if self.peers[node].kind != PeerKind::Vigil {
            self.peers[node].legacy_held.insert(group);
        }
    }

    fn on_ip_request_resp(&mut self, node: usize, message: &Message) -> Result<(), MessageError> {
        let resp = messages::parse_ip_request_resp(message)?;
        if !resp.dest.eq_ignore_ascii_case(self.name(self.local)) || !resp.ok {
            return Ok(());
        }
        if let Some(g) = self.group_index(resp.key) {
            let peer = &mut self.peers[node];
            peer.legacy_answered.insert(g);
            peer.legacy_held.remove(&g);
        }
        Ok(())
    }

    fn on_shutdone(&mut self, node: usize, out: &mut Vec<Output>) {
        Self::event(
            out,
            FailoverEvent::ShutdownNotice {
                node: self.name(node).to_string(),
            },
        );
        if self.exchange.is_some_and(|e| e.peer == node) {
            self.exchange = None;
        }
        // It released everything before saying so.
        self.peers[node].forget(Knowledge::Departed);
    }

    fn on_operation_done(
        &mut self,
        group: usize,
        resource: usize,
        action: AgentAction,
        status: OcfStatus,
        now: Duration,
        out: &mut Vec<Output>,
    ) {
        let Some(state) = self.groups.get_mut(group) else {
            Self::event(
                out,
                FailoverEvent::UnexpectedResult {
                    group,
                    resource,
                    action,
                },
            );
            return;
        };
        let notes = state.runner.complete(resource, action, status, now);
        let key = state.key.clone();
        let names = state.resource_names.clone();
        let resource_name = |r: usize| names.get(r).cloned().unwrap_or_else(|| format!("#{r}"));
        for note in notes {
            let event = match note {
                Note::Running => FailoverEvent::Acquired { group: key.clone() },
                Note::Stopped => {
                    let owed = std::mem::take(&mut self.groups[group].owed_answers);
                    for (node, we_owned) in owed {
                        self.answer_ip_request(group, node, we_owned, out);
                    }
                    FailoverEvent::Released { group: key.clone() }
                }
                Note::StartFailed { resource, status } => {
                    self.failed.insert(group);
                    FailoverEvent::StartFailed {
                        group: key.clone(),
                        resource: resource_name(resource),
                        status,
                    }
                }
                Note::StopRetry {
                    resource,
                    status,
                    attempt,
                } => FailoverEvent::StopRetry {
                    group: key.clone(),
                    resource: resource_name(resource),
                    status,
                    attempt,
                    of: runner::STOP_RETRIES,
                },
                Note::StopFailed { resource, status } => {
                    self.failed.insert(group);
                    FailoverEvent::StopFailed {
                        group: key.clone(),
                        resource: resource_name(resource),
                        status,
                    }
                }
                Note::MonitorRestart {
                    resource,
                    status,
                    restart,
                } => FailoverEvent::MonitorFailed {
                    group: key.clone(),
                    resource: resource_name(resource),
                    status,
                    restart: Some(restart),
                },
                Note::MonitorExhausted { resource, status } => {
                    self.failed.insert(group);
                    FailoverEvent::MonitorFailed {
                        group: key.clone(),
                        resource: resource_name(resource),
                        status,
                        restart: None,
                    }
                }
                Note::Unexpected => FailoverEvent::UnexpectedResult {
                    group,
                    resource,
                    action,
                },
            };
            Self::event(out, event);
        }
    }

    fn on_standby_command(&mut self, set: HoldSet, now: Duration, out: &mut Vec<Output>) {
        if self.phase != Phase::Running {
            return;
        }
        // Our operator's request replaces whatever a peer's takeover asked of us.
        self.standby_for_takeover.clear();
        if set == HoldSet::None {
            self.standby.clear();
            for group in &mut self.groups {
                group.runner.retry_stop();
            }
            Self::event(
                out,
                FailoverEvent::GoingStandby {
                    set,
                    requested_by: None,
                },
            );
            return;
        }
        for group in &mut self.groups {
            group.runner.retry_stop();
        }
        let partner = self.other_nodes().find(|&i| {
            self.peers[i].alive
                && self.peers[i].kind != PeerKind::Vigil
                && self.peers[i].knowledge == Knowledge::Known
        });
        let legacy_partner = self
            .other_nodes()
            .any(|i| self.peers[i].alive && self.is_legacy_peer(i));
        if legacy_partner {
            Self::event(
                out,
                FailoverEvent::StandbyIgnored {
                    node: None,
                    reason: "Standby mode only implemented when nice_failback on".to_string(),
                },
            );
            return;
        }
        let Some(partner) = partner else {
            self.standby.extend(self.covered(set, self.local));
            Self::event(
                out,
                FailoverEvent::GoingStandby {
                    set,
                    requested_by: None,
                },
            );
            return;
        };
        let reason = if self.exchange.is_some() {
            Some("Standby in progress.")
        } else if !self.settled_apart_from_exchange() {
            Some("local resources in flux.")
        } else if !self.peers[partner].stable {
            Some("Other side is in flux.")
        } else {
            None
        };
        match reason {
            Some(reason) => Self::event(
                out,
                FailoverEvent::StandbyIgnored {
                    node: None,
                    reason: reason.to_string(),
                },
            ),
            None => {
                self.ask_to_give(partner, set, now, out);
                Self::event(
                    out,
                    FailoverEvent::GoingStandby {
                        set,
                        requested_by: None,
                    },
                );
            }
        }
    }

    fn on_takeover_command(&mut self, set: HoldSet, out: &mut Vec<Output>) {
        if self.phase != Phase::Running || set == HoldSet::None {
            return;
        }
        for g in self.covered(set, self.local) {
            self.standby.remove(&g);
            self.standby_for_takeover.remove(&g);
            self.failed.remove(&g);
            self.groups[g].runner.retry_stop();
        }
        out.push(Output::Send(messages::hb_takeover(set)));
        Self::event(out, FailoverEvent::TakingOver { set });
    }

    fn begin_shutdown(&mut self, out: &mut Vec<Output>) {
        if self.phase != Phase::Running {
            return;
        }
        self.phase = Phase::ShuttingDown;
        self.exchange = None;
        for group in &mut self.groups {
            group.claim = None;
        }
        Self::event(out, FailoverEvent::ShutdownStarted);
        self.send_announcement(
            Some(HoldSet::None),
            false,
            Some(messages::INFO_SHUTDOWN),
            out,
        );
        for g in 0..self.groups.len() {
            if self.groups[g].runner.wants_running() {
                self.release(g, "shutdown".to_string(), out);
            }
        }
    }

    // ---------------------------------------------------------------- timers

    fn run_timers(&mut self, now: Duration, out: &mut Vec<Output>) {
        if self.comm_up {
            for i in 0..self.peers.len() {
                if i == self.local || !self.blocks_handshake(i) {
                    continue;
                }
                let since = self.peers[i].unknown_since.get_or_insert(now);
                if now >= *since + self.fallback {
                    self.peers[i].knowledge = Knowledge::Silent;
                    self.peers[i].unknown_since = None;
                    Self::event(
                        out,
                        FailoverEvent::PeerSilent {
                            node: self.name(i).to_string(),
                        },
                    );
                }
            }
        }
        for i in 0..self.peers.len() {
            if i == self.local || !self.awaits_trustworthy_word(i) {
                continue;
            }
            let since = self.peers[i].untrusted_since.get_or_insert(now);
            if now >= *since + FALLBACK_MIN {
                self.peers[i].word_trusted = true;
                self.peers[i].untrusted_since = None;
            }
        }
        if let Some(e) = self.exchange
            && now >= e.deadline
        {
            self.exchange = None;
            let reason = if e.phase == ExchangePhase::Asked {
                "No reply to standby request."
            } else {
                "the standby exchange timed out."
            };
            Self::event(
                out,
                FailoverEvent::StandbyCancelled {
                    reason: reason.to_string(),
                },
            );
            self.announce_requested = true;
        }
    }

    // ---------------------------------------------------------------- decisions

    /// Connectivity failover: sends our ping count when due and moves our connectivity
    /// standby, group by group, once a candidate peer has seen more ping nodes than we do
    /// (or no longer does) for the whole dampening time.
    fn update_connectivity(&mut self, now: Duration, out: &mut Vec<Output>) {
        if self.connectivity.is_none() || !self.is_ready() {
            return;
        }
        let Some(c) = self.connectivity.as_ref() else {
            return;
        };
        let ours = c.local_count();
        let best: Vec<Option<(usize, u32)>> = (0..self.groups.len())
            .map(|g| {
                self.groups[g]
                    .order
                    .iter()
                    .copied()
                    .filter(|&n| n != self.local && self.is_candidate(n, g))
                    .filter_map(|n| c.peer_count(n).map(|count| (n, count)))
                    .max_by_key(|&(_, count)| count)
            })
            .collect();
        let Some(c) = self.connectivity.as_mut() else {
            return;
        };
        if let Some(message) = c.message_due(now) {
            out.push(Output::Send(message));
        }
        let mut changes = Vec::new();
        for (g, best) in best.iter().enumerate() {
            let outranked = best.is_some_and(|(_, theirs)| theirs > ours);
            if let Some(change) = c.step(g, outranked, now) {
                changes.push((change, *best));
            }
        }
        for (change, best) in changes {
            let (peer, theirs) = best.map_or((String::new(), ours), |(n, count)| {
                (self.name(n).to_string(), count)
            });
            Self::event(
                out,
                FailoverEvent::ConnectivityStandby {
                    group: self.groups[change.group].key.clone(),
                    standby: change.standby,
                    ours,
                    peer,
                    theirs,
                },
            );
        }
    }

    /// After every input: decide claims, acquisitions and releases, move the standby
    /// exchange on, announce what changed, then ask for the next operations.
    fn reconcile(&mut self, now: Duration, out: &mut Vec<Output>) {
        self.start_waiting_clocks(now);
        // `starting` goes first: a peer then knows what we are before any request of ours.
        self.ask_again_where_starting_went_unanswered(now);
        if self.starting_requested && self.comm_up && self.phase == Phase::Running {
            if !self.starting_sent || self.someone_awaits_our_starting() {
                self.send_starting(out);
            } else {
                self.starting_requested = false;
            }
        }
        if self.phase == Phase::Running && self.comm_up {
            self.drive_fencing(now, out);
            self.decide_groups(now, out);
            self.advance_exchange(now, out);
        }
        if self.comm_up || self.phase == Phase::ShuttingDown {
            let snapshot = self.snapshot();
            if self.announce_requested || self.last_announced.as_ref() != Some(&snapshot) {
                self.send_announcement(None, snapshot.stable, None, out);
            }
        }
        self.drive_runners(now, out);
        if self.phase == Phase::ShuttingDown {
            self.finish_shutdown_if_done(out);
        }
        if !self.initial_done && self.settled() {
            self.initial_done = true;
            Self::event(out, FailoverEvent::InitialAcquisitionComplete);
        }
    }

    /// Starts the fallback clock of every live peer we began waiting for in this input.
    fn start_waiting_clocks(&mut self, now: Duration) {
        for i in 0..self.peers.len() {
            if i == self.local {
                continue;
            }
            if self.comm_up && self.blocks_handshake(i) {
                self.peers[i].unknown_since.get_or_insert(now);
            }
            if self.awaits_trustworthy_word(i) {
                self.peers[i].untrusted_since.get_or_insert(now);
            }
        }
    }

    fn decide_groups(&mut self, now: Duration, out: &mut Vec<Output>) {
        let open = !self
            .other_nodes()
            .any(|i| self.blocks_handshake(i) || self.awaits_trustworthy_word(i));
        let mut for_heartbeat: Option<usize> = None;
        for g in 0..self.groups.len() {
            let chosen = self.chosen_owner(g);
            self.report_duplicates(g, out);
            if self.groups[g].runner.is_held() {
                self.groups[g].claim = None;
                let runner = &self.groups[g].runner;
                if !runner.wants_running() || runner.stop_failed() || chosen == Some(self.local) {
                    continue;
                }
                let giving_now = self.exchange.is_some_and(|e| {
                    e.phase == ExchangePhase::Giving
                        && e.set.covers(self.groups[g].preferred == self.local)
                });
                match chosen {
                    Some(c) if self.needs_exchange(c) && !giving_now => {
                        for_heartbeat.get_or_insert(c);
                    }
                    Some(c) => {
                        let reason = format!("{} should own it", self.name(c));
                        self.release(g, reason, out);
                    }
                    None => self.release(g, "no node may run it".to_string(), out),
                }
                continue;
            }
            let want = open
                && chosen == Some(self.local)
                && !self.held_by_heartbeat_peer(g)
                && !self.awaits_fencing(g);
            if !want {
                self.withdraw_claim(g);
                continue;
            }
            if self.groups[g].claim.is_none() {
                self.groups[g].claim = Some(self.version + 1);
            }
            self.request_from_legacy_peers(g, out);
            if self.may_start(g) {
                self.acquire(g, out);
            }
        }
        if let Some(peer) = for_heartbeat {
            self.offer_to_heartbeat_peer(peer, now, out);
        }
    }

    fn withdraw_claim(&mut self, group: usize) {
        let state = &mut self.groups[group];
        state.claim = None;
        state.ip_requested = false;
    }

    /// Whether moving a group to this node needs Heartbeat's standby exchange.
    fn needs_exchange(&self, node: usize) -> bool {
        node != self.local
            && self.auto_failback != AutoFailback::Legacy
            && self
                .peers
                .get(node)
                .is_some_and(|p| p.kind == PeerKind::Heartbeat)
    }

    /// A Heartbeat peer (non-legacy) holds it: only its own standby exchange frees it.
    fn held_by_heartbeat_peer(&self, group: usize) -> bool {
        self.other_nodes().any(|i| {
            self.needs_exchange(i)
                && self.peers[i].alive
                && self.peers[i].knowledge != Knowledge::Silent
                && self.peers[i].holds(group)
        })
    }

    /// Asks legacy (non-vigil) peers for the group with `ip-request`, once per claim.
    fn request_from_legacy_peers(&mut self, group: usize, out: &mut Vec<Output>) {
        if self.groups[group].ip_requested {
            return;
        }
        let ask = self.other_nodes().any(|i| {
            self.peers[i].alive
                && self.is_legacy_peer(i)
                && !self.peers[i].legacy_answered.contains(&group)
        });
        if ask {
            self.groups[group].ip_requested = true;
            out.push(Output::Send(messages::ip_request(&self.groups[group].key)));
        }
    }

    /// Whether our claim on a group is safe to act on (see the module documentation).
    fn may_start(&self, group: usize) -> bool {
        let Some(claim) = self.groups[group].claim else {
            return false;
        };
        let our_rank = self.rank(self.local, group);
        self.other_nodes().all(|i| {
            let peer = &self.peers[i];
            if !peer.alive {
                return true;
            }
            let legacy = self.is_legacy_peer(i);
            match peer.knowledge {
                Knowledge::Silent | Knowledge::Departed => true,
                Knowledge::Fresh if !legacy => true,
                Knowledge::Unknown | Knowledge::Returning if !legacy => false,
                _ if legacy => peer.legacy_answered.contains(&group),
                _ => {
                    if peer.holds(group) {
                        return false;
                    }
                    match peer.kind {
                        PeerKind::Vigil => {
                            let better_claim =
                                peer.claims.contains(&group) && self.rank(i, group) < our_rank;
                            !better_claim && peer.seen_ours >= claim
                        }
                        PeerKind::Heartbeat | PeerKind::Unknown => {
                            let its_own = self.groups[group].preferred == i;
                            !(peer.starting_up && its_own)
                        }
                    }
                }
            }
        })
    }

    fn acquire(&mut self, group: usize, out: &mut Vec<Output>) {
        for i in 0..self.peers.len() {
            self.peers[i].legacy_answered.remove(&group);
        }
        let state = &mut self.groups[group];
        state.claim = None;
        state.ip_requested = false;
        state.runner.acquire();
        Self::event(
            out,
            FailoverEvent::Acquiring {
                group: state.key.clone(),
                line: state.line.clone(),
            },
        );
    }

    fn release(&mut self, group: usize, reason: String, out: &mut Vec<Output>) {
        let state = &mut self.groups[group];
        state.runner.release();
        Self::event(
            out,
            FailoverEvent::Releasing {
                group: state.key.clone(),
                line: state.line.clone(),
                reason,
            },
        );
    }

    fn report_duplicates(&mut self, group: usize, out: &mut Vec<Output>) {
        let we_hold = self.groups[group].runner.wants_running();
        for i in 0..self.peers.len() {
            if i == self.local {
                continue;
            }
            let peer = &self.peers[i];
            let duplicate = we_hold
                && peer.alive
                && peer.knowledge == Knowledge::Known
                && peer.held.contains(&group);
            if duplicate {
                if self.duplicates.insert((group, i)) {
                    Self::event(
                        out,
                        FailoverEvent::DuplicateOwner {
                            group: self.groups[group].key.clone(),
                            node: self.name(i).to_string(),
                        },
                    );
                }
            } else {
                self.duplicates.remove(&(group, i));
            }
        }
    }

    /// Starts the standby exchange that hands Heartbeat peer `peer` the groups it should own.
    fn offer_to_heartbeat_peer(&mut self, peer: usize, now: Duration, out: &mut Vec<Output>) {
        let ready = self.exchange.is_none()
            && self.settled_apart_from_exchange()
            && self.peers[peer].alive
            && self.peers[peer].knowledge == Knowledge::Known
            && self.peers[peer].stable
            && !self.peers[peer].starting_up;
        if !ready {
            return;
        }
        let to_give: BTreeSet<usize> = (0..self.groups.len())
            .filter(|&g| {
                self.groups[g].runner.wants_running() && self.chosen_owner(g) == Some(peer)
            })
            .collect();
        let held: BTreeSet<usize> = (0..self.groups.len())
            .filter(|&g| self.groups[g].runner.wants_running())
            .collect();
        let set = match self.class_of(&to_give) {
            HoldSet::All if to_give != held => HoldSet::Foreign,
            class => class,
        };
        if set == HoldSet::None {
            return;
        }
        self.ask_to_give(peer, set, now, out);
    }

    fn ask_to_give(&mut self, peer: usize, set: HoldSet, now: Duration, out: &mut Vec<Output>) {
        out.push(Output::Send(messages::ask_resources(set, StandbyStep::Me)));
        self.exchange = Some(Exchange {
            peer,
            set,
            phase: ExchangePhase::Asked,
            deadline: now + exchange::REPLY_TIMEOUT,
        });
    }

    fn advance_exchange(&mut self, now: Duration, out: &mut Vec<Output>) {
        let Some(e) = self.exchange else {
            return;
        };
        match e.phase {
            ExchangePhase::Giving => {
                let covered = self.covered(e.set, self.local);
                if covered.iter().all(|&g| !self.groups[g].runner.is_held()) {
                    out.push(Output::Send(messages::ask_resources(
                        e.set,
                        StandbyStep::Done,
                    )));
                    self.exchange = Some(Exchange {
                        phase: ExchangePhase::Gave,
                        deadline: now + exchange::EXCHANGE_TIMEOUT,
                        ..e
                    });
                }
            }
            ExchangePhase::Taking if self.settled_apart_from_exchange() => {
                out.push(Output::Send(messages::ask_resources(
                    e.set,
                    StandbyStep::Done,
                )));
                self.exchange = None;
                self.announce_requested = true;
                Self::event(
                    out,
                    FailoverEvent::StandbyCompleted {
                        set: e.set,
                        gave: false,
                    },
                );
            }
            _ => {}
        }
    }

    fn drive_runners(&mut self, now: Duration, out: &mut Vec<Output>) {
        for (g, group) in self.groups.iter_mut().enumerate() {
            if let Some((resource, action)) = group.runner.next_operation(now) {
                out.push(Output::Run {
                    group: g,
                    resource,
                    action,
                });
            }
        }
    }

    fn finish_shutdown_if_done(&mut self, out: &mut Vec<Output>) {
        let busy = self
            .groups
            .iter()
            .any(|g| g.runner.is_held() && !g.runner.stop_failed());
        if busy {
            return;
        }
        let stuck: Vec<String> = self
            .groups
            .iter()
            .filter(|g| g.runner.stop_failed())
            .map(|g| g.key.clone())
            .collect();
        if stuck.is_empty() {
            out.push(Output::Send(messages::shutdone()));
            Self::event(out, FailoverEvent::ShutdownDone);
        } else {
            Self::event(out, FailoverEvent::ShutdownIncomplete { groups: stuck });
        }
        out.push(Output::ShutdownComplete);
        self.phase = Phase::Stopped;
    }

    // ---------------------------------------------------------------- announcements

    fn snapshot(&self) -> Snapshot {
        let held: BTreeSet<usize> = (0..self.groups.len())
            .filter(|&g| self.groups[g].runner.is_held())
            .collect();
        let claims: BTreeSet<usize> = (0..self.groups.len())
            .filter(|&g| self.groups[g].claim.is_some())
            .collect();
        // Heartbeat holds nothing once shutdown starts (`i_hold_resources = HB_NO_RSC`).
        let hold = if self.phase == Phase::Running {
            self.class_of(&held.union(&claims).copied().collect())
        } else {
            HoldSet::None
        };
        // Heartbeat announces nothing while its `me` waits for `other`.
        let asking = self
            .exchange
            .is_none_or(|e| e.phase == ExchangePhase::Asked);
        Snapshot {
            hold,
            stable: self.settled_apart_from_exchange() && asking,
            held,
            claims,
            standby: match &self.connectivity {
                Some(c) => self.standby.union(c.standby()).copied().collect(),
                None => self.standby.clone(),
            },
            failed: self.failed.clone(),
        }
    }

    /// Our state as the vigil fields carry it, numbered with the next announcement number.
    fn next_state(&mut self) -> NodeState {
        self.version += 1;
        let keys = |set: &BTreeSet<usize>| -> Vec<String> {
            set.iter()
                .filter_map(|&g| self.groups.get(g).map(|x| x.key.clone()))
                .collect()
        };
        let snapshot = self.snapshot();
        let mut seen = Vec::new();
        for i in 0..self.peers.len() {
            if i == self.local {
                continue;
            }
            let peer = &self.peers[i];
            if let Some(incarnation) = &peer.incarnation {
                seen.push(SeenEntry {
                    node: peer.name.clone(),
                    incarnation: incarnation.clone(),
                    version: peer.version,
                });
            }
        }
        for peer in &mut self.peers {
            peer.acknowledged_claims = peer.claims.clone();
            peer.told = true;
        }
        NodeState {
            incarnation: self.incarnation.clone(),
            version: self.version,
            held: keys(&snapshot.held),
            claims: keys(&snapshot.claims),
            standby: keys(&snapshot.standby),
            failed: keys(&snapshot.failed),
            seen,
        }
    }

    /// Sends `resource` with our current state; `hold` overrides the Heartbeat-visible
    /// `rsc_hold` (the standby and shutdown messages announce the smaller holding first).
    fn send_announcement(
        &mut self,
        hold: Option<HoldSet>,
        stable: bool,
        info: Option<&str>,
        out: &mut Vec<Output>,
    ) {
        let snapshot = self.snapshot();
        let state = self.next_state();
        out.push(Output::Send(messages::resource(
            hold.unwrap_or(snapshot.hold),
            stable,
            info,
            &state,
        )));
        self.last_announced = Some(snapshot);
        self.announce_requested = false;
    }

    /// A peer whose `resource` did not come within [`STARTING_ANSWER_WAIT`] of its own
    /// `starting` never took ours: it gets a new one.
    fn ask_again_where_starting_went_unanswered(&mut self, now: Duration) {
        for peer in &mut self.peers {
            if peer.starting_answer_due.is_some_and(|due| due <= now) {
                peer.starting_answer_due = None;
                peer.heard_our_starting = false;
                self.starting_requested = true;
            }
        }
    }

    /// Whether a present peer has not had our `starting` since it joined: one `starting`
    /// per peer run is the question, its `resource` the answer.
    fn someone_awaits_our_starting(&self) -> bool {
        self.peers
            .iter()
            .enumerate()
            .any(|(i, peer)| i != self.local && peer.alive && !peer.heard_our_starting)
    }

    /// Sends `starting`. A Heartbeat peer takes it as a sign that we are unstable until a
    /// `resource` says otherwise: if we are stable, that `resource` follows at once.
    fn send_starting(&mut self, out: &mut Vec<Output>) {
        let snapshot = self.snapshot();
        let stable = snapshot.stable;
        let state = self.next_state();
        out.push(Output::Send(messages::starting(&state)));
        self.starting_sent = true;
        for (i, peer) in self.peers.iter_mut().enumerate() {
            if i != self.local && peer.alive {
                peer.heard_our_starting = true;
            }
        }
        self.last_announced = Some(snapshot);
        self.starting_requested = false;
        self.announce_requested |= stable;
    }
}
