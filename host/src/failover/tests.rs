//! Unit tests of the failover machine, one per rule, driven with simulated time.
//!
//! vigil-only rules run on a small in-process cluster (`Cluster`): every message a node sends
//! reaches the others in order, and agents answer at once (successfully unless a test says
//! otherwise). Heartbeat rules feed one machine the messages a 3.0.6 peer sends, field for
//! field (`Heartbeat`).

use std::collections::VecDeque;
use std::time::Duration;

use super::*;
use crate::membership::NodeStatus;

const WALL: u64 = 1_795_330_974;

fn at(ms: u64) -> Now {
    Now {
        mono: Duration::from_millis(ms),
        wall_secs: WALL + ms / 1000,
    }
}

fn group(key: &str, preferred: &str, extra: &[&str]) -> GroupConfig {
    GroupConfig {
        key: key.to_string(),
        preferred: preferred.to_string(),
        order: Vec::new(),
        resources: std::iter::once(key)
            .chain(extra.iter().copied())
            .map(|name| ResourceConfig {
                name: name.to_string(),
                monitor: None,
            })
            .collect(),
    }
}

fn config(
    local: &str,
    nodes: &[&str],
    groups: &[GroupConfig],
    mode: AutoFailback,
) -> FailoverConfig {
    FailoverConfig {
        local_node: local.to_string(),
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
        groups: groups.to_vec(),
        auto_failback: mode,
        keepalive: Duration::from_millis(200),
        deadtime: Duration::from_millis(1000),
        rng_seed: 0x5eed_0000 + local.bytes().map(u64::from).sum::<u64>(),
        fence_device: None,
    }
}

fn status(node: &str, old: NodeStatus, new: NodeStatus) -> Input {
    Input::Membership(MembershipEvent::NodeStatus {
        node: node.to_string(),
        old,
        new,
    })
}

fn alive(node: &str) -> Input {
    status(node, NodeStatus::Init, NodeStatus::Active)
}

fn dead(node: &str) -> Input {
    status(node, NodeStatus::Active, NodeStatus::Dead)
}

fn comm_up() -> Input {
    Input::Membership(MembershipEvent::CommunicationsUp)
}

fn sends(outputs: &[Output]) -> Vec<&Message> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn runs(outputs: &[Output]) -> Vec<(usize, usize, AgentAction)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Run {
                group,
                resource,
                action,
            } => Some((*group, *resource, *action)),
            _ => None,
        })
        .collect()
}

fn events(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.to_string()),
            _ => None,
        })
        .collect()
}

fn of_type<'a>(outputs: &'a [Output], kind: &str) -> Vec<&'a Message> {
    sends(outputs)
        .into_iter()
        .filter(|m| m.message_type() == Some(kind))
        .collect()
}

fn done(group: usize, resource: usize, action: AgentAction) -> Input {
    Input::OperationDone {
        group,
        resource,
        action,
        status: OcfStatus::Success,
    }
}

/// A scripted agent answer: the next `action` on (`node`, `group`, `resource`) answers
/// `status` instead of success.
struct Failure {
    node: usize,
    group: usize,
    resource: usize,
    action: AgentAction,
    status: OcfStatus,
}

/// vigil nodes wired to each other without membership: messages arrive in send order.
struct Cluster {
    names: Vec<String>,
    nodes: Vec<Option<Failover>>,
    now: u64,
    /// (to, from, message)
    network: VecDeque<(usize, usize, Message)>,
    /// (node, group, resource, action)
    operations: VecDeque<(usize, usize, usize, AgentAction)>,
    failures: Vec<Failure>,
    /// What is active on each node: (group, resource) started and not stopped.
    active: Vec<BTreeSet<(usize, usize)>>,
    events: Vec<(usize, String)>,
    /// Set when a group was ever active on two nodes at once.
    duplicate: Option<String>,
    /// The STONITH device every node fences with, if any.
    fence_device: Option<String>,
    /// Resets asked for and not answered yet: (node asked, node to reset, attempt).
    fence_requests: Vec<(usize, String, u64)>,
    groups: Vec<GroupConfig>,
    mode: AutoFailback,
    /// Connectivity failover, enabled on every node when set.
    connectivity: Option<ConnectivityConfig>,
}

impl Cluster {
    fn new(names: &[&str], groups: &[GroupConfig], mode: AutoFailback) -> Self {
        Cluster {
            names: names.iter().map(|n| n.to_string()).collect(),
            nodes: names.iter().map(|_| None).collect(),
            now: 0,
            network: VecDeque::new(),
            operations: VecDeque::new(),
            failures: Vec::new(),
            active: names.iter().map(|_| BTreeSet::new()).collect(),
            events: Vec::new(),
            duplicate: None,
            fence_device: None,
            fence_requests: Vec::new(),
            groups: groups.to_vec(),
            mode,
            connectivity: None,
        }
    }

    /// Starts every node; each sees the others alive, then its communications come up.
    fn start_all(names: &[&str], groups: &[GroupConfig], mode: AutoFailback) -> Self {
        let mut cluster = Cluster::new(names, groups, mode);
        for i in 0..names.len() {
            cluster.boot(i);
        }
        cluster.settle();
        cluster
    }

    fn index(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|n| n == name)
            .unwrap_or(usize::MAX)
    }

    /// Starts (or restarts) node `i`: it sees every running node alive, they see it restart.
    fn boot(&mut self, i: usize) {
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let mut run = config(&self.names[i], &names, &self.groups, self.mode);
        // Every run names itself differently.
        run.rng_seed = run.rng_seed.wrapping_add(self.now << 8);
        run.fence_device = self.fence_device.clone();
        let mut machine = Failover::new(run);
        if let Some(connectivity) = &self.connectivity {
            machine = machine.with_connectivity(connectivity.clone());
        }
        self.nodes[i] = Some(machine);
        self.active[i].clear();
        for j in 0..self.nodes.len() {
            if j == i {
                continue;
            }
            let peer = self.names[j].clone();
            if self.nodes[j].is_none() {
                // Membership brings communications up once every node was heard or dead.
                self.input(i, status(&peer, NodeStatus::Init, NodeStatus::Dead));
                continue;
            }
            self.input(i, alive(&peer));
            let me = self.names[i].clone();
            self.input(
                j,
                Input::Membership(MembershipEvent::NodeRestarted {
                    node: me.clone(),
                    generation: self.now,
                }),
            );
            self.input(j, alive(&me));
        }
        self.input(i, comm_up());
    }

    /// Node `i` dies: the others are told by membership.
    fn kill(&mut self, i: usize) {
        self.nodes[i] = None;
        self.active[i].clear();
        self.network.retain(|(to, from, _)| *to != i && *from != i);
        self.operations.retain(|(node, ..)| *node != i);
        let name = self.names[i].clone();
        for j in 0..self.nodes.len() {
            if self.nodes[j].is_some() {
                self.input(j, dead(&name));
            }
        }
    }

    fn input(&mut self, i: usize, input: Input) -> Vec<Output> {
        let now = at(self.now);
        let Some(machine) = self.nodes[i].as_mut() else {
            return Vec::new();
        };
        let outputs = machine.handle(input, now);
        for output in &outputs {
            match output {
                Output::Send(message) => {
                    for j in 0..self.nodes.len() {
                        if j != i && self.nodes[j].is_some() {
                            self.network.push_back((j, i, message.clone()));
                        }
                    }
                }
                Output::Run {
                    group,
                    resource,
                    action,
                } => {
                    if *action == AgentAction::Start {
                        self.active[i].insert((*group, *resource));
                        self.check_duplicates();
                    }
                    self.operations.push_back((i, *group, *resource, *action));
                }
                Output::Event(event) => self.events.push((i, event.to_string())),
                Output::Fence { node, attempt } => {
                    self.fence_requests.push((i, node.clone(), *attempt));
                }
                Output::ShutdownComplete => {}
            }
        }
        outputs
    }

    fn check_duplicates(&mut self) {
        for g in 0..self.groups.len() {
            let holders: Vec<&String> = (0..self.nodes.len())
                .filter(|&i| self.active[i].iter().any(|(x, _)| *x == g))
                .map(|i| &self.names[i])
                .collect();
            if holders.len() > 1 && self.duplicate.is_none() {
                self.duplicate = Some(format!("group {g} active on {holders:?}"));
            }
        }
    }

    /// Delivers every message and answers every operation until nothing moves.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            if let Some((to, from, message)) = self.network.pop_front() {
                let from = self.names[from].clone();
                // The runtime hands failover only what `acts_on` accepts: every message a
                // failover machine sends must be among them, or its peers would never see it.
                assert!(
                    Failover::acts_on(&message),
                    "failover sent a message it does not act on: {message:?}"
                );
                self.input(to, Input::Delivered { from, message });
            } else if let Some((node, group, resource, action)) = self.operations.pop_front() {
                self.now += 1;
                let status = match self.failures.iter().position(|f| {
                    (f.node, f.group, f.resource, f.action) == (node, group, resource, action)
                }) {
                    Some(index) => self.failures.remove(index).status,
                    None => OcfStatus::Success,
                };
                if action == AgentAction::Stop && status == OcfStatus::Success {
                    self.active[node].remove(&(group, resource));
                }
                self.input(
                    node,
                    Input::OperationDone {
                        group,
                        resource,
                        action,
                        status,
                    },
                );
            } else {
                return;
            }
        }
        panic!("the cluster never settled");
    }

    /// Runs timers for `ms` of simulated time, settling after each.
    fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        loop {
            let next = self
                .nodes
                .iter()
                .flatten()
                .filter_map(|m| m.next_deadline())
                .map(|d| d.as_millis() as u64)
                .filter(|d| *d <= end)
                .min();
            let Some(next) = next else { break };
            self.now = self.now.max(next);
            for i in 0..self.nodes.len() {
                self.input(i, Input::Timer);
            }
            self.settle();
        }
        self.now = end;
    }

    fn status(&self, i: usize) -> FailoverStatus {
        self.nodes[i]
            .as_ref()
            .map(Failover::status)
            .unwrap_or_else(|| panic!("{} is not running", self.names[i]))
    }

    /// The nodes on which group `g` runs, as they report it.
    fn running(&self, g: usize) -> Vec<String> {
        (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i].as_ref().is_some_and(|m| {
                    m.status().groups.get(g).map(|x| x.local) == Some(LocalGroupState::Running)
                })
            })
            .map(|i| self.names[i].clone())
            .collect()
    }

    fn assert_never_duplicated(&self) {
        assert_eq!(self.duplicate, None, "a group was active on two nodes");
    }
}

// ------------------------------------------------------------------ ownership rules

#[test]
fn default_order_starts_at_the_preferred_node_and_wraps_around() {
    let machine = Failover::new(config(
        "a",
        &["a", "b", "c", "d"],
        &[group("g", "c", &[])],
        AutoFailback::On,
    ));
    assert_eq!(machine.status().groups[0].order, ["c", "d", "a", "b"]);
    let mut custom = group("h", "b", &[]);
    custom.order = vec!["D".into(), "b".into(), "d".into()];
    let machine = Failover::new(config(
        "a",
        &["a", "b", "c", "d"],
        &[custom],
        AutoFailback::On,
    ));
    assert_eq!(
        machine.status().groups[0].order,
        ["d", "b"],
        "an explicit order is kept (lower-cased, without repeats)"
    );
}

#[test]
fn a_node_alone_acquires_its_groups_as_soon_as_communications_are_up() {
    let mut machine = Failover::new(config(
        "hb1",
        &["hb1", "hb2"],
        &[group("IPaddr::198.18.0.100/24/eth0", "hb1", &["hbdemo"])],
        AutoFailback::On,
    ));
    assert!(machine.handle(Input::Timer, at(0)).is_empty());
    machine.handle(dead("hb2"), at(10));
    let outputs = machine.handle(comm_up(), at(20));
    assert_eq!(runs(&outputs), [(0, 0, AgentAction::Start)]);
    assert_eq!(
        sends(&outputs)[0].message_type(),
        Some("starting"),
        "3.0.6 sends `starting` when communications come up"
    );
}

#[test]
fn a_group_is_announced_before_its_first_resource_starts() {
    let mut machine = Failover::new(config(
        "hb1",
        &["hb1"],
        &[group("g", "hb1", &["svc"])],
        AutoFailback::On,
    ));
    let outputs = machine.handle(comm_up(), at(0));
    let announce = outputs
        .iter()
        .position(|o| matches!(o, Output::Send(m) if m.get_str("groups") == Some("g")))
        .expect("an announcement holding g");
    let start = outputs
        .iter()
        .position(|o| matches!(o, Output::Run { .. }))
        .expect("a start");
    assert!(announce < start, "{outputs:?}");
    let outputs = machine.handle(done(0, 0, AgentAction::Start), at(5));
    assert_eq!(
        runs(&outputs),
        [(0, 1, AgentAction::Start)],
        "left to right"
    );
    let outputs = machine.handle(done(0, 1, AgentAction::Start), at(9));
    assert!(events(&outputs).contains(&"Resource group g acquired".to_string()));
    let stable = of_type(&outputs, "resource");
    assert_eq!(stable[0].get_str("isstable"), Some("1"));
    assert_eq!(machine.status().rsc_status, ResourceStatus::Local);
}

#[test]
fn a_starting_node_waits_for_every_live_peers_holdings() {
    let mut machine = Failover::new(config(
        "a",
        &["a", "b"],
        &[group("g", "a", &[])],
        AutoFailback::On,
    ));
    machine.handle(alive("b"), at(0));
    let outputs = machine.handle(comm_up(), at(10));
    assert!(runs(&outputs).is_empty(), "b may hold g: wait for its word");
    assert_eq!(machine.next_deadline(), Some(Duration::from_millis(10_010)));
    assert_eq!(machine.status().rsc_status, ResourceStatus::Transition);

    // b answers our `starting`: it holds nothing and claims nothing.
    let answer = messages::resource(
        HoldSet::None,
        true,
        None,
        &NodeState {
            incarnation: "bb".into(),
            version: 1,
            ..NodeState::default()
        },
    );
    let outputs = machine.handle(
        Input::Delivered {
            from: "b".into(),
            message: answer,
        },
        at(12),
    );
    assert!(
        runs(&outputs).is_empty(),
        "the claim needs b's acknowledgement"
    );
    let claim = of_type(&outputs, "resource")[0];
    assert_eq!(claim.get_str("claims"), Some("g"));
    let version = u64::from_str_radix(claim.get_str("ver").unwrap_or("0"), 16).unwrap_or(0);
    let ours = machine.status().local_node;
    let incarnation = claim.get_str("inc").unwrap_or_default().to_string();
    let acknowledgement = messages::resource(
        HoldSet::None,
        true,
        None,
        &NodeState {
            incarnation: "bb".into(),
            version: 2,
            seen: vec![SeenEntry {
                node: ours,
                incarnation,
                version,
            }],
            ..NodeState::default()
        },
    );
    let outputs = machine.handle(
        Input::Delivered {
            from: "b".into(),
            message: acknowledgement,
        },
        at(13),
    );
    assert_eq!(runs(&outputs), [(0, 0, AgentAction::Start)]);
}

#[test]
fn a_silent_live_peer_is_left_out_after_the_fallback_period() {
    let mut machine = Failover::new(config(
        "a",
        &["a", "b"],
        &[group("g", "a", &[])],
        AutoFailback::On,
    ));
    machine.handle(alive("b"), at(0));
    machine.handle(comm_up(), at(100));
    assert!(runs(&machine.handle(Input::Timer, at(10_099))).is_empty());
    let outputs = machine.handle(Input::Timer, at(10_100));
    assert!(
        events(&outputs)
            .iter()
            .any(|e| e.contains("b is alive but sent no resource information")),
        "{outputs:?}"
    );
    assert_eq!(runs(&outputs), [(0, 0, AgentAction::Start)]);
}

#[test]
fn a_node_first_seen_after_communications_are_up_does_not_hold_up_takeovers() {
    let cluster = Cluster::start_all(&["a", "b"], &[group("g", "a", &[])], AutoFailback::On);
    assert_eq!(cluster.running(0), ["a"]);
    let mut late = Cluster::new(&["a", "b", "c"], &[group("g", "a", &[])], AutoFailback::On);
    late.boot(0);
    late.boot(1);
    late.settle();
    // c appears (booting, its communications not up yet) while a dies: b takes g at once.
    late.input(0, alive("c"));
    late.input(1, alive("c"));
    late.kill(0);
    late.settle();
    assert_eq!(late.running(0), ["b"], "{:?}", late.events);
}

#[test]
fn with_three_nodes_exactly_one_survivor_takes_a_dead_nodes_group() {
    let groups = [group("g", "a", &["svc"])];
    let mut cluster = Cluster::start_all(&["a", "b", "c"], &groups, AutoFailback::On);
    assert_eq!(cluster.running(0), ["a"]);
    cluster.kill(0);
    cluster.settle();
    assert_eq!(cluster.running(0), ["b"], "the next node of the order");
    cluster.assert_never_duplicated();
    let takers: Vec<&(usize, String)> = cluster
        .events
        .iter()
        .filter(|(_, e)| e == "Resources being acquired from a.")
        .collect();
    assert_eq!(takers.len(), 1, "{:?}", cluster.events);
}

#[test]
fn a_claim_waits_for_every_live_vigil_peers_acknowledgement() {
    let groups = [group("g", "a", &[])];
    let mut cluster = Cluster::start_all(&["a", "b", "c"], &groups, AutoFailback::On);
    cluster.kill(0);
    // b is told first; c has not answered b's claim yet.
    let b = cluster.index("b");
    let c = cluster.index("c");
    let claim = cluster
        .network
        .iter()
        .find(|(to, from, m)| *to == c && *from == b && m.get_str("claims") == Some("g"));
    assert!(
        claim.is_some(),
        "b announces its claim: {:?}",
        cluster.network
    );
    assert!(
        !cluster.active[b].iter().any(|(g, _)| *g == 0),
        "b has not started g before c acknowledged"
    );
    cluster.settle();
    assert_eq!(cluster.running(0), ["b"]);
}

#[test]
fn auto_failback_on_returns_a_group_to_its_preferred_node() {
    let groups = [group("g", "a", &["svc"])];
    let mut cluster = Cluster::start_all(&["a", "b"], &groups, AutoFailback::On);
    cluster.kill(0);
    cluster.settle();
    assert_eq!(cluster.running(0), ["b"]);
    cluster.boot(0);
    cluster.settle();
    assert_eq!(cluster.running(0), ["a"]);
    cluster.assert_never_duplicated();
    assert!(
        cluster.events.iter().any(|(i, e)| *i == 1
            && e.starts_with("Releasing resource group: a g svc (a should own it)"))
    );
}

#[test]
fn auto_failback_off_leaves_a_group_with_its_current_holder() {
    let groups = [group("g", "a", &[])];
    let mut cluster = Cluster::start_all(&["a", "b"], &groups, AutoFailback::Off);
    cluster.kill(0);
    cluster.settle();
    cluster.boot(0);
    cluster.settle();
    assert_eq!(cluster.running(0), ["b"]);
    assert_eq!(cluster.status(0).groups[0].owner.as_deref(), Some("b"));
}

#[test]
fn standby_moves_a_nodes_groups_away_and_standby_none_brings_them_back() {
    let groups = [group("g", "a", &[]), group("h", "b", &[])];
    let mut cluster = Cluster::start_all(&["a", "b"], &groups, AutoFailback::On);
    cluster.input(0, Input::Standby(HoldSet::All));
    cluster.settle();
    assert_eq!(cluster.running(0), ["b"]);
    assert_eq!(cluster.running(1), ["b"]);
    assert!(cluster.status(0).groups[0].standby);
    cluster.input(0, Input::Standby(HoldSet::None));
    cluster.settle();
    assert_eq!(cluster.running(0), ["a"], "failback once standby ends");
    cluster.assert_never_duplicated();
}

#[test]
fn a_standby_node_is_the_last_resort() {
    let groups = [group("g", "a", &[])];
    let mut cluster = Cluster::start_all(&["a", "b"], &groups, AutoFailback::On);
    cluster.input(0, Input::Standby(HoldSet::Local));
    cluster.settle();
    assert_eq!(cluster.running(0), ["b"]);
    cluster.kill(1);
    cluster.settle();
    assert_eq!(cluster.running(0), ["a"], "nobody else can run it");
}

#[test]
fn takeover_asks_every_other_node_to_stand_by() {
    let groups = [group("g", "a", &[])];
    let mut cluster = Cluster::start_all(&["a", "b", "c"], &groups, AutoFailback::On);
    let outputs = cluster.input(2, Input::Takeover(HoldSet::Foreign));
    assert_eq!(
        of_type(&outputs, "hb_takeover")[0].to_string(),
        "t=hb_takeover rsc_hold=foreign"
    );
    cluster.settle();
    assert_eq!(cluster.running(0), ["c"]);
    assert!(cluster.status(0).groups[0].standby);
    assert!(cluster.status(1).groups[0].standby);
    cluster.assert_never_duplicated();
}

#[test]
fn a_peers_shutdone_hands_its_groups_over_without_waiting_for_its_death() {
    let groups = [group("g", "a", &["svc"])];
    let mut cluster = Cluster::start_all(&["a", "b"], &groups, AutoFailback::On);
    cluster.input(0, Input::Shutdown);
    cluster.settle();
    assert_eq!(cluster.running(0), ["b"], "no deadtime needed");
    assert!(
        cluster
            .events
            .iter()
            .any(|(i, e)| *i == 1 && e == "Received shutdown notice from 'a'.")
    );
    cluster.assert_never_duplicated();
}

#[test]
fn shutdown_releases_right_to_left_announces_and_completes() {
    let mut machine = Failover::new(config(
        "hb1",
        &["hb1"],
        &[group("g", "hb1", &["svc"])],
        AutoFailback::On,
    ));
    machine.handle(comm_up(), at(0));
    machine.handle(done(0, 0, AgentAction::Start), at(1));
    machine.handle(done(0, 1, AgentAction::Start), at(2));
    let outputs = machine.handle(Input::Shutdown, at(10));
    let first = of_type(&outputs, "resource")[0];
    assert_eq!(first.get_str("rsc_hold"), Some("none"));
    assert_eq!(first.get_str("isstable"), Some("0"));
    assert_eq!(first.get_str("info"), Some("shutdown"));
    assert_eq!(runs(&outputs), [(0, 1, AgentAction::Stop)], "right to left");
    let outputs = machine.handle(done(0, 1, AgentAction::Stop), at(11));
    assert_eq!(runs(&outputs), [(0, 0, AgentAction::Stop)]);
    let outputs = machine.handle(done(0, 0, AgentAction::Stop), at(12));
    let shutdone = of_type(&outputs, "shutdone");
    assert_eq!(shutdone[0].to_string(), "t=shutdone st=dead");
    assert_eq!(outputs.last(), Some(&Output::ShutdownComplete));
    assert!(
        machine.handle(Input::Timer, at(13)).is_empty(),
        "stopped for good"
    );
}

#[test]
fn a_failed_start_stops_what_started_and_the_group_moves_away() {
    let groups = [group("g", "a", &["svc", "web"])];
    let mut cluster = Cluster::new(&["a", "b"], &groups, AutoFailback::On);
    cluster.failures.push(Failure {
        node: 0,
        group: 0,
        resource: 1,
        action: AgentAction::Start,
        status: OcfStatus::ErrGeneric,
    });
    cluster.boot(0);
    cluster.boot(1);
    cluster.settle();
    assert_eq!(cluster.running(0), ["b"]);
    assert!(cluster.active[0].is_empty(), "nothing left half up on a");
    assert_eq!(cluster.status(0).groups[0].local, LocalGroupState::Failed);
    assert!(cluster.events.iter().any(|(i, e)| *i == 0
        && e.starts_with(
            "Giving up resources due to failure of svc (start returned OCF_ERR_GENERIC (1))"
        )));
    cluster.assert_never_duplicated();
    // An operator's takeover makes a eligible again.
    cluster.input(0, Input::Takeover(HoldSet::Local));
    cluster.settle();
    assert_eq!(cluster.running(0), ["a"]);
}

#[test]
fn a_failed_stop_is_retried_then_reported_and_the_group_stays_held() {
    let mut machine = Failover::new(config(
        "a",
        &["a", "b"],
        &[group("g", "b", &[])],
        AutoFailback::On,
    ));
    machine.handle(dead("b"), at(0));
    machine.handle(comm_up(), at(0));
    machine.handle(done(0, 0, AgentAction::Start), at(1));
    machine.handle(status("b", NodeStatus::Dead, NodeStatus::Active), at(100));
    let b_starting = messages::starting(&NodeState {
        incarnation: "bb".into(),
        version: 1,
        ..NodeState::default()
    });
    let outputs = machine.handle(
        Input::Delivered {
            from: "b".into(),
            message: b_starting,
        },
        at(101),
    );
    assert_eq!(runs(&outputs), [(0, 0, AgentAction::Stop)], "failback to b");
    let mut now = 102;
    let failed = Input::OperationDone {
        group: 0,
        resource: 0,
        action: AgentAction::Stop,
        status: OcfStatus::ErrGeneric,
    };
    for attempt in 1..=runner::STOP_RETRIES {
        let outputs = machine.handle(failed.clone(), at(now));
        assert!(events(&outputs)[0].contains(&format!("retry {attempt} of 10")));
        assert!(runs(&outputs).is_empty());
        now += 1000;
        assert_eq!(
            runs(&machine.handle(Input::Timer, at(now))),
            [(0, 0, AgentAction::Stop)]
        );
    }
    let outputs = machine.handle(failed, at(now));
    let lines = events(&outputs);
    assert!(lines[0].starts_with("Resource STOP failure"), "{lines:?}");
    let status = machine.status();
    assert_eq!(status.groups[0].local, LocalGroupState::Failed);
    assert_eq!(
        status.groups[0].owner.as_deref(),
        Some("a"),
        "still held here"
    );
    assert_eq!(
        machine.next_deadline(),
        None,
        "nothing more is tried by itself"
    );
}

#[test]
fn a_failed_monitor_restarts_in_place_then_moves_the_group() {
    let mut groups = [group("g", "a", &["svc"])];
    groups[0].resources[1].monitor = Some(MonitorConfig {
        interval: Duration::from_millis(500),
        restarts: 1,
    });
    let mut cluster = Cluster::start_all(&["a", "b"], &groups, AutoFailback::On);
    assert_eq!(cluster.running(0), ["a"]);
    for _ in 0..2 {
        cluster.failures.push(Failure {
            node: 0,
            group: 0,
            resource: 1,
            action: AgentAction::Monitor,
            status: OcfStatus::NotRunning,
        });
    }
    cluster.advance(600);
    assert_eq!(cluster.running(0), ["a"], "restarted in place once");
    assert!(
        cluster
            .events
            .iter()
            .any(|(_, e)| e.contains("restarting it in place (restart 1)"))
    );
    cluster.advance(600);
    assert_eq!(cluster.running(0), ["b"], "restarts used up: moved");
    assert_eq!(cluster.status(0).groups[0].local, LocalGroupState::Failed);
    cluster.assert_never_duplicated();
}

#[test]
fn duplicate_holders_after_a_partition_resolve_to_the_chosen_owner() {
    let groups = [group("g", "a", &[])];
    let mut cluster = Cluster::start_all(&["a", "b"], &groups, AutoFailback::Off);
    // A partition: each side believes the other dead; b takes g too.
    cluster.input(1, dead("a"));
    cluster.input(0, dead("b"));
    cluster.network.clear();
    cluster.settle();
    assert_eq!(cluster.running(0), ["a", "b"]);
    // Healed: membership reports the return on both sides.
    for (i, peer) in [(0, "b"), (1, "a")] {
        cluster.input(
            i,
            Input::Membership(MembershipEvent::ReturnedAfterPartition {
                node: peer.to_string(),
            }),
        );
        cluster.input(i, status(peer, NodeStatus::Dead, NodeStatus::Active));
    }
    cluster.settle();
    assert_eq!(
        cluster.running(0),
        ["a"],
        "with auto_failback off the first holder in order keeps it"
    );
    assert!(
        cluster
            .events
            .iter()
            .any(|(_, e)| e.starts_with("Both machines own resource group g"))
    );
}

#[test]
fn rscstatus_says_none_on_a_node_that_owns_nothing() {
    let groups = [group("g", "a", &[])];
    let cluster = Cluster::start_all(&["a", "b"], &groups, AutoFailback::On);
    assert_eq!(cluster.status(1).rsc_status, ResourceStatus::None);
    assert_eq!(cluster.status(0).rsc_status, ResourceStatus::Local);
    let json = serde_json::to_value(cluster.status(1)).unwrap_or_default();
    assert_eq!(json["rsc_status"], "none");
    assert_eq!(json["groups"][0]["owner"], "a");
}

#[test]
fn malformed_messages_are_reported_and_ignored() {
    let mut machine = Failover::new(config(
        "a",
        &["a", "b"],
        &[group("g", "a", &[])],
        AutoFailback::On,
    ));
    let mut bad = Message::with_type("resource");
    bad.push_str("rsc_hold", "plenty");
    let outputs = machine.handle(
        Input::Delivered {
            from: "b".into(),
            message: bad,
        },
        at(0),
    );
    assert_eq!(
        events(&outputs),
        [
            "Ignoring a message from b: resource message with rsc_hold=\"plenty\": expected none, local, foreign or all"
        ]
    );
    let outputs = machine.handle(
        Input::Delivered {
            from: "nobody".into(),
            message: Message::with_type("resource"),
        },
        at(1),
    );
    assert!(
        outputs.is_empty(),
        "unknown senders are membership's business"
    );
}

#[test]
fn results_nobody_asked_for_are_reported_and_ignored() {
    let mut machine = Failover::new(config(
        "a",
        &["a"],
        &[group("g", "a", &[])],
        AutoFailback::On,
    ));
    let outputs = machine.handle(done(7, 0, AgentAction::Start), at(0));
    assert_eq!(events(&outputs).len(), 1);
    let outputs = machine.handle(done(0, 0, AgentAction::Stop), at(1));
    assert!(events(&outputs)[0].contains("no such operation was running"));
}

// ------------------------------------------------------------------ Heartbeat peers

/// Messages as Heartbeat 3.0.6 writes them (its standard fields included).
struct Heartbeat {
    name: &'static str,
    seq: u64,
}

impl Heartbeat {
    fn message(&mut self, kind: &str, fields: &[(&str, &str)]) -> Input {
        let mut message = Message::with_type(kind);
        for (name, value) in fields {
            message.push_str(name, value);
        }
        self.seq += 1;
        message.push_str("src", self.name);
        message.push_str("seq", &format!("{:x}", self.seq));
        message.push_str("hg", "6b028f9f");
        message.push_str("ts", "6b028f9f");
        Input::Delivered {
            from: self.name.to_string(),
            message,
        }
    }

    fn starting(&mut self) -> Input {
        self.message("starting", &[])
    }

    fn resource(&mut self, hold: &str, stable: &str) -> Input {
        self.message(
            "resource",
            &[("rsc_hold", hold), ("rtype", "full"), ("isstable", stable)],
        )
    }
}

const VIP: &str = "IPaddr::198.18.0.100/24/eth0";

/// hb2 (vigil, not preferred) next to Heartbeat hb1, with hb1's group running on hb2.
fn holding_heartbeats_group() -> (Failover, Heartbeat) {
    let mut machine = Failover::new(config(
        "hb2",
        &["hb1", "hb2"],
        &[group(VIP, "hb1", &["hbdemo"])],
        AutoFailback::On,
    ));
    machine.handle(dead("hb1"), at(0));
    machine.handle(comm_up(), at(0));
    machine.handle(done(0, 0, AgentAction::Start), at(1));
    machine.handle(done(0, 1, AgentAction::Start), at(2));
    assert_eq!(machine.status().rsc_status, ResourceStatus::Foreign);
    (
        machine,
        Heartbeat {
            name: "hb1",
            seq: 0,
        },
    )
}

#[test]
fn a_heartbeat_peers_holdings_come_from_rsc_hold_with_its_two_node_meaning() {
    let mut machine = Failover::new(config(
        "hb2",
        &["hb1", "hb2"],
        &[group(VIP, "hb1", &[]), group("web", "hb2", &[])],
        AutoFailback::On,
    ));
    let mut hb1 = Heartbeat {
        name: "hb1",
        seq: 0,
    };
    machine.handle(alive("hb1"), at(0));
    machine.handle(comm_up(), at(1));
    let hb1_holds = |machine: &Failover| -> Vec<usize> {
        (0..2).filter(|&g| machine.peers[0].holds(g)).collect()
    };
    machine.handle(hb1.resource("all", "1"), at(2));
    assert_eq!(
        hb1_holds(&machine),
        [0, 1],
        "local = its own, foreign = ours"
    );
    machine.handle(hb1.resource("local", "1"), at(3));
    assert_eq!(hb1_holds(&machine), [0], "rtype=full replaces");
    // `mach_down`'s message has no rtype: it is OR-ed in; `none` clears.
    machine.handle(
        hb1.message(
            "resource",
            &[("rsc_hold", "foreign"), ("info", "mach_down")],
        ),
        at(4),
    );
    assert_eq!(hb1_holds(&machine), [0, 1]);
    machine.handle(hb1.message("resource", &[("rsc_hold", "none")]), at(5));
    assert!(hb1_holds(&machine).is_empty());
}

#[test]
fn a_starting_heartbeat_peer_is_asked_for_its_holdings_and_keeps_its_own_groups() {
    let mut machine = Failover::new(config(
        "hb2",
        &["hb1", "hb2"],
        &[group(VIP, "hb1", &[]), group("web", "hb2", &[])],
        AutoFailback::On,
    ));
    let mut hb1 = Heartbeat {
        name: "hb1",
        seq: 0,
    };
    machine.handle(alive("hb1"), at(0));
    let outputs = machine.handle(comm_up(), at(1));
    assert_eq!(
        of_type(&outputs, "starting").len(),
        1,
        "we ask as we come up"
    );
    let outputs = machine.handle(hb1.starting(), at(2));
    assert_eq!(
        of_type(&outputs, "resource").len(),
        1,
        "starting is answered"
    );
    assert_eq!(
        of_type(&outputs, "starting").len(),
        0,
        "our `starting` crossed its own: it answers that one, and a second would be an error \
         to a starting Heartbeat node"
    );
    assert!(runs(&outputs).is_empty());
    let outputs = machine.handle(hb1.resource("none", "0"), at(3));
    assert_eq!(
        runs(&outputs),
        [(1, 0, AgentAction::Start)],
        "we take our own group, and leave its own to the starting Heartbeat node"
    );
    let status = machine.status();
    assert_eq!(
        status.groups[0].owner, None,
        "hb1 takes its own when it is ready"
    );
}

#[test]
fn failback_to_a_heartbeat_peer_uses_the_ask_resources_exchange() {
    let (mut machine, mut hb1) = holding_heartbeats_group();
    machine.handle(status("hb1", NodeStatus::Dead, NodeStatus::Active), at(100));
    let outputs = machine.handle(hb1.starting(), at(101));
    let answer = of_type(&outputs, "resource")[0];
    assert_eq!(answer.get_str("rsc_hold"), Some("foreign"));
    assert_eq!(answer.get_str("isstable"), Some("1"));
    // hb1 sees we hold its group: it takes nothing and becomes stable.
    let outputs = machine.handle(hb1.resource("none", "1"), at(102));
    let ask = of_type(&outputs, "ask_resources");
    assert_eq!(
        ask[0].to_string(),
        "t=ask_resources rsc_hold=foreign info=me"
    );
    assert!(runs(&outputs).is_empty(), "nothing stops before hb1 agrees");
    let outputs = machine.handle(
        hb1.message(
            "ask_resources",
            &[("rsc_hold", "foreign"), ("info", "other")],
        ),
        at(103),
    );
    let standby = of_type(&outputs, "resource")[0];
    assert_eq!(standby.get_str("info"), Some("standby"));
    assert_eq!(standby.get_str("isstable"), Some("0"));
    assert_eq!(standby.get_str("rsc_hold"), Some("none"));
    assert_eq!(runs(&outputs), [(0, 1, AgentAction::Stop)]);
    machine.handle(done(0, 1, AgentAction::Stop), at(104));
    let outputs = machine.handle(done(0, 0, AgentAction::Stop), at(105));
    assert_eq!(
        of_type(&outputs, "ask_resources")[0].to_string(),
        "t=ask_resources rsc_hold=foreign info=done"
    );
    let outputs = machine.handle(
        hb1.message(
            "ask_resources",
            &[("rsc_hold", "foreign"), ("info", "done")],
        ),
        at(200),
    );
    assert!(events(&outputs).contains(&"Local standby process completed [foreign].".to_string()));
    assert_eq!(
        of_type(&outputs, "resource")[0].get_str("isstable"),
        Some("1")
    );
    machine.handle(hb1.resource("local", "1"), at(201));
    let status = machine.status();
    assert_eq!(status.groups[0].owner.as_deref(), Some("hb1"));
    assert_eq!(status.rsc_status, ResourceStatus::None);
}

#[test]
fn a_heartbeat_peers_release_counts_only_after_its_done() {
    let mut machine = Failover::new(config(
        "hb2",
        &["hb1", "hb2"],
        &[group(VIP, "hb1", &[])],
        AutoFailback::On,
    ));
    let mut hb1 = Heartbeat {
        name: "hb1",
        seq: 0,
    };
    machine.handle(alive("hb1"), at(0));
    machine.handle(comm_up(), at(1));
    machine.handle(hb1.resource("local", "1"), at(2));
    // hb_standby on hb1.
    let outputs = machine.handle(
        hb1.message("ask_resources", &[("rsc_hold", "all"), ("info", "me")]),
        at(10),
    );
    assert_eq!(
        of_type(&outputs, "ask_resources")[0].to_string(),
        "t=ask_resources rsc_hold=all info=other"
    );
    assert!(events(&outputs).contains(&"hb1 wants to go standby [all]".to_string()));
    let outputs = machine.handle(
        hb1.message(
            "resource",
            &[
                ("rsc_hold", "none"),
                ("rtype", "full"),
                ("isstable", "0"),
                ("info", "standby"),
            ],
        ),
        at(11),
    );
    assert!(
        runs(&outputs).is_empty(),
        "hb1 announces before it has stopped anything"
    );
    let outputs = machine.handle(
        hb1.message("ask_resources", &[("rsc_hold", "all"), ("info", "done")]),
        at(500),
    );
    assert_eq!(runs(&outputs), [(0, 0, AgentAction::Start)]);
    let outputs = machine.handle(done(0, 0, AgentAction::Start), at(501));
    assert_eq!(
        of_type(&outputs, "ask_resources")[0].to_string(),
        "t=ask_resources rsc_hold=all info=done"
    );
    assert!(events(&outputs).contains(&"Standby resource acquisition done [all].".to_string()));
}

#[test]
fn a_standby_request_is_ignored_while_resources_are_in_flux() {
    let mut machine = Failover::new(config(
        "hb2",
        &["hb1", "hb2"],
        &[group(VIP, "hb1", &[])],
        AutoFailback::On,
    ));
    let mut hb1 = Heartbeat {
        name: "hb1",
        seq: 0,
    };
    machine.handle(alive("hb1"), at(0));
    machine.handle(comm_up(), at(1));
    machine.handle(hb1.resource("local", "0"), at(2));
    let outputs = machine.handle(
        hb1.message("ask_resources", &[("rsc_hold", "all"), ("info", "me")]),
        at(3),
    );
    assert!(of_type(&outputs, "ask_resources").is_empty());
    assert_eq!(
        events(&outputs),
        ["standby message [me] from hb1 ignored. Other side is in flux."]
    );
}

#[test]
fn hb_takeover_from_a_heartbeat_peer_gives_it_our_groups_through_the_exchange() {
    let (mut machine, mut hb1) = holding_heartbeats_group();
    machine.handle(status("hb1", NodeStatus::Dead, NodeStatus::Active), at(100));
    machine.handle(hb1.starting(), at(101));
    machine.handle(hb1.resource("none", "1"), at(102));
    machine.handle(
        hb1.message(
            "ask_resources",
            &[("rsc_hold", "foreign"), ("info", "other")],
        ),
        at(103),
    );
    machine.handle(done(0, 1, AgentAction::Stop), at(104));
    machine.handle(done(0, 0, AgentAction::Stop), at(105));
    machine.handle(
        hb1.message(
            "ask_resources",
            &[("rsc_hold", "foreign"), ("info", "done")],
        ),
        at(106),
    );
    machine.handle(hb1.resource("local", "1"), at(107));
    // Now hb1's operator runs hb_takeover: we already gave everything; nothing runs here.
    let outputs = machine.handle(
        hb1.message("hb_takeover", &[("rsc_hold", "local")]),
        at(200),
    );
    assert!(events(&outputs)[0].starts_with("Going standby [local] for hb1's takeover."));
    assert!(machine.status().groups[0].standby);
}

#[test]
fn heartbeats_shutdone_means_takeover() {
    let mut machine = Failover::new(config(
        "hb2",
        &["hb1", "hb2"],
        &[group(VIP, "hb1", &[])],
        AutoFailback::On,
    ));
    let mut hb1 = Heartbeat {
        name: "hb1",
        seq: 0,
    };
    machine.handle(alive("hb1"), at(0));
    machine.handle(comm_up(), at(1));
    machine.handle(hb1.resource("local", "1"), at(2));
    let outputs = machine.handle(
        hb1.message(
            "resource",
            &[
                ("rsc_hold", "none"),
                ("rtype", "full"),
                ("isstable", "0"),
                ("info", "shutdown"),
            ],
        ),
        at(10),
    );
    assert!(runs(&outputs).is_empty(), "hb1 is still stopping its group");
    let outputs = machine.handle(hb1.message("shutdone", &[("st", "dead")]), at(400));
    assert_eq!(runs(&outputs), [(0, 0, AgentAction::Start)]);
    assert!(events(&outputs).contains(&"Received shutdown notice from 'hb1'.".to_string()));
}

#[test]
fn legacy_asks_with_ip_request_and_starts_on_the_answer() {
    let mut machine = Failover::new(config(
        "hb1",
        &["hb1", "hb2"],
        &[group(VIP, "hb1", &["hbdemo"])],
        AutoFailback::Legacy,
    ));
    let mut hb2 = Heartbeat {
        name: "hb2",
        seq: 0,
    };
    machine.handle(alive("hb2"), at(0));
    let outputs = machine.handle(comm_up(), at(1));
    assert_eq!(
        of_type(&outputs, "ip-request")[0].to_string(),
        format!("t=ip-request ipaddr={VIP}")
    );
    assert!(runs(&outputs).is_empty());
    let outputs = machine.handle(
        hb2.message(
            "ip-request-resp",
            &[
                ("dest", "hb1"),
                ("ipaddr", VIP),
                ("weown", "yes"),
                ("ok", "OK"),
            ],
        ),
        at(50),
    );
    assert_eq!(runs(&outputs), [(0, 0, AgentAction::Start)]);
}

#[test]
fn legacy_gives_a_group_up_before_answering_ip_request() {
    let mut machine = Failover::new(config(
        "hb2",
        &["hb1", "hb2"],
        &[group(VIP, "hb1", &[])],
        AutoFailback::Legacy,
    ));
    machine.handle(dead("hb1"), at(0));
    machine.handle(comm_up(), at(0));
    machine.handle(done(0, 0, AgentAction::Start), at(1));
    let mut hb1 = Heartbeat {
        name: "hb1",
        seq: 0,
    };
    machine.handle(status("hb1", NodeStatus::Dead, NodeStatus::Active), at(100));
    let outputs = machine.handle(hb1.message("ip-request", &[("ipaddr", VIP)]), at(101));
    assert!(
        of_type(&outputs, "ip-request-resp").is_empty(),
        "not before it is down"
    );
    let outputs = machine.handle(done(0, 0, AgentAction::Stop), at(102));
    assert_eq!(
        of_type(&outputs, "ip-request-resp")[0].to_string(),
        format!("t=ip-request-resp dest=hb1 ipaddr={VIP} weown=yes ok=OK")
    );
    let outputs = machine.handle(Input::Timer, at(103));
    assert!(runs(&outputs).is_empty(), "hb1 has it now");
    assert_eq!(machine.status().groups[0].owner.as_deref(), Some("hb1"));
}

#[test]
fn a_heartbeat_peers_unsettled_word_is_not_trusted_until_it_settles() {
    // We start while hb1 is busy (shutting down, say): its answer to our `starting` says it
    // holds nothing but is not stable, and we never saw its own `starting`.
    let mut machine = Failover::new(config(
        "hb2",
        &["hb1", "hb2"],
        &[group(VIP, "hb1", &[]), group("web", "hb2", &[])],
        AutoFailback::On,
    ));
    let mut hb1 = Heartbeat {
        name: "hb1",
        seq: 0,
    };
    machine.handle(alive("hb1"), at(0));
    machine.handle(comm_up(), at(1));
    let outputs = machine.handle(hb1.resource("none", "0"), at(2));
    assert!(
        runs(&outputs).is_empty(),
        "its groups may still be stopping"
    );
    let answer = of_type(&outputs, "resource");
    assert_eq!(
        answer.last().and_then(|m| m.get_str("isstable")),
        Some("1"),
        "nothing of ours is in flux, so a starting Heartbeat node need not wait 10 s"
    );
    assert_eq!(machine.next_deadline(), Some(Duration::from_millis(10_002)));
    let outputs = machine.handle(hb1.resource("local", "1"), at(50));
    assert_eq!(runs(&outputs), [(1, 0, AgentAction::Start)]);
}

#[test]
fn groups_given_to_a_heartbeat_peer_stay_promised_whatever_the_operator_says_meanwhile() {
    let (mut machine, mut hb1) = holding_heartbeats_group();
    machine.handle(status("hb1", NodeStatus::Dead, NodeStatus::Active), at(100));
    machine.handle(hb1.starting(), at(101));
    machine.handle(hb1.resource("none", "1"), at(102));
    machine.handle(
        hb1.message(
            "ask_resources",
            &[("rsc_hold", "foreign"), ("info", "other")],
        ),
        at(103),
    );
    machine.handle(done(0, 1, AgentAction::Stop), at(104));
    // `standby none` here while the last resource stops: the group is still hb1's.
    machine.handle(Input::Standby(HoldSet::None), at(104));
    let outputs = machine.handle(done(0, 0, AgentAction::Stop), at(105));
    assert_eq!(
        of_type(&outputs, "ask_resources")[0].to_string(),
        "t=ask_resources rsc_hold=foreign info=done"
    );
    assert!(
        runs(&outputs).is_empty(),
        "not started again under hb1's feet"
    );
    // hb1's `done` comes before the `resource` that shows it holds the group.
    let outputs = machine.handle(
        hb1.message(
            "ask_resources",
            &[("rsc_hold", "foreign"), ("info", "done")],
        ),
        at(300),
    );
    assert!(runs(&outputs).is_empty());
    assert_eq!(machine.status().groups[0].owner.as_deref(), Some("hb1"));
}

#[test]
fn hb_takeover_during_a_standby_exchange_is_ignored_as_heartbeat_does() {
    let mut machine = Failover::new(config(
        "hb2",
        &["hb1", "hb2"],
        &[group(VIP, "hb1", &[])],
        AutoFailback::On,
    ));
    let mut hb1 = Heartbeat {
        name: "hb1",
        seq: 0,
    };
    machine.handle(alive("hb1"), at(0));
    machine.handle(comm_up(), at(1));
    machine.handle(hb1.resource("local", "1"), at(2));
    machine.handle(
        hb1.message("ask_resources", &[("rsc_hold", "local"), ("info", "me")]),
        at(10),
    );
    let outputs = machine.handle(hb1.message("hb_takeover", &[("rsc_hold", "all")]), at(11));
    assert_eq!(
        events(&outputs),
        ["standby message [me] from hb1 ignored. Standby in progress."]
    );
    machine.handle(
        hb1.message(
            "resource",
            &[
                ("rsc_hold", "none"),
                ("rtype", "full"),
                ("isstable", "0"),
                ("info", "standby"),
            ],
        ),
        at(12),
    );
    let outputs = machine.handle(
        hb1.message("ask_resources", &[("rsc_hold", "local"), ("info", "done")]),
        at(400),
    );
    assert_eq!(
        runs(&outputs),
        [(0, 0, AgentAction::Start)],
        "the exchange goes on"
    );
}

#[test]
fn a_starting_heartbeat_peer_that_never_answered_ours_is_asked_again_once() {
    let mut machine = Failover::new(config(
        "hb2",
        &["hb1", "hb2"],
        &[group(VIP, "hb1", &[]), group("web", "hb2", &[])],
        AutoFailback::On,
    ));
    let mut hb1 = Heartbeat {
        name: "hb1",
        seq: 0,
    };
    machine.handle(alive("hb1"), at(0));
    machine.handle(comm_up(), at(1));
    // Our `starting` reached hb1 before its own resource management was up: it ignored it.
    machine.handle(hb1.starting(), at(2));
    let wait_ends = 2 + STARTING_ANSWER_WAIT.as_millis() as u64;
    assert!(
        machine
            .next_deadline()
            .is_some_and(|d| d <= Duration::from_millis(wait_ends)),
        "no timer for the answer to our `starting`: {:?}",
        machine.next_deadline()
    );
    let outputs = machine.handle(Input::Timer, at(wait_ends - 1));
    assert!(
        of_type(&outputs, "starting").is_empty(),
        "asked again too early"
    );
    let outputs = machine.handle(Input::Timer, at(wait_ends));
    assert_eq!(
        of_type(&outputs, "starting").len(),
        1,
        "no `resource` came for our first `starting`: ask again"
    );
    let outputs = machine.handle(hb1.resource("none", "0"), at(wait_ends + 5));
    assert!(of_type(&outputs, "starting").is_empty());
    assert_eq!(runs(&outputs), [(1, 0, AgentAction::Start)]);
    let outputs = machine.handle(Input::Timer, at(wait_ends + 3000));
    assert!(
        of_type(&outputs, "starting").is_empty(),
        "asked a third time after the answer came"
    );
}

// ------------------------------------------------------------------ fencing

/// Every node fences with `null`; each starts and settles.
fn fenced_cluster(names: &[&str], groups: &[GroupConfig]) -> Cluster {
    let mut cluster = Cluster::new(names, groups, AutoFailback::On);
    cluster.fence_device = Some("null".to_string());
    for i in 0..names.len() {
        cluster.boot(i);
    }
    cluster.settle();
    cluster
}

/// Answers the oldest pending reset with `result`, then settles.
fn answer_fence(cluster: &mut Cluster, result: Result<(), String>) -> (usize, String) {
    assert!(!cluster.fence_requests.is_empty(), "no reset was asked for");
    let (asker, node, attempt) = cluster.fence_requests.remove(0);
    cluster.input(
        asker,
        Input::FenceDone {
            node: node.clone(),
            attempt,
            result,
        },
    );
    cluster.settle();
    (asker, node)
}

#[test]
fn with_fencing_the_survivor_resets_the_lost_node_before_it_takes_over() {
    let groups = [group("g", "a", &["svc"])];
    let mut cluster = fenced_cluster(&["a", "b"], &groups);
    assert_eq!(cluster.running(0), ["a"]);
    cluster.kill(0);
    cluster.settle();
    assert_eq!(cluster.fence_requests, [(1, "a".to_string(), 1)]);
    assert!(cluster.running(0).is_empty(), "taken over before the reset");
    let fencing = cluster.status(1).fencing;
    assert_eq!(fencing.len(), 1);
    assert_eq!(fencing[0].state, "fencing");
    assert_eq!(fencing[0].by.as_deref(), Some("b"));
    assert!(
        cluster
            .events
            .iter()
            .any(|(i, e)| *i == 1 && e == "Resetting node a with [null]"),
        "{:?}",
        cluster.events
    );

    answer_fence(&mut cluster, Ok(()));
    assert_eq!(cluster.running(0), ["b"]);
    assert!(cluster.status(1).fencing.is_empty());
    cluster.assert_never_duplicated();
}

#[test]
fn a_failed_reset_is_retried_with_a_growing_delay_and_nothing_moves_until_it_succeeds() {
    let groups = [group("g", "a", &["svc"])];
    let mut cluster = fenced_cluster(&["a", "b"], &groups);
    cluster.kill(0);
    cluster.settle();
    let failed_at = cluster.now;
    answer_fence(&mut cluster, Err("device unreachable".to_string()));
    assert!(cluster.running(0).is_empty());
    let status = cluster.status(1).fencing;
    assert_eq!(status[0].state, "retrying");
    assert_eq!(status[0].last_error.as_deref(), Some("device unreachable"));
    assert!(
        cluster
            .events
            .iter()
            .any(|(_, e)| e.starts_with("STONITH of a failed: device unreachable. Retrying in 1 s")),
        "{:?}",
        cluster.events
    );

    // Nothing happens before the retry is due; then a second attempt starts.
    cluster.advance(900);
    assert!(cluster.fence_requests.is_empty());
    cluster.advance(200);
    assert_eq!(cluster.fence_requests.len(), 1, "no retry after 1 s");
    answer_fence(&mut cluster, Err("device unreachable".to_string()));
    let second_failure = cluster.now;
    cluster.advance(1900);
    assert!(
        cluster.fence_requests.is_empty(),
        "the second retry came before 2 s"
    );
    cluster.advance(200);
    assert_eq!(cluster.fence_requests.len(), 1);
    assert!(cluster.now - second_failure >= 2000 && cluster.now > failed_at);
    assert!(
        cluster.running(0).is_empty(),
        "taken over although every reset failed"
    );

    answer_fence(&mut cluster, Ok(()));
    assert_eq!(cluster.running(0), ["b"]);
    assert_eq!(cluster.status(1).fencing, Vec::new());
}

#[test]
fn with_three_nodes_one_survivor_resets_and_the_other_waits_for_its_word() {
    let groups = [group("g", "a", &["svc"]), group("h", "c", &["db"])];
    let mut cluster = fenced_cluster(&["a", "b", "c"], &groups);
    cluster.kill(0);
    cluster.settle();
    assert_eq!(
        cluster.fence_requests,
        [(1, "a".to_string(), 1)],
        "exactly one survivor, the group's next owner, resets a"
    );
    assert_eq!(cluster.status(2).fencing[0].state, "waiting");
    answer_fence(&mut cluster, Ok(()));
    // c learned it from b's `stonith` message.
    assert!(cluster.status(2).fencing.is_empty());
    assert!(
        cluster
            .events
            .iter()
            .any(|(i, e)| *i == 2 && e.starts_with("node a now reset (STONITH by b)")),
        "{:?}",
        cluster.events
    );
    assert_eq!(cluster.running(0), ["b"]);
    assert_eq!(cluster.running(1), ["c"]);
    cluster.assert_never_duplicated();
}

#[test]
fn a_lost_node_that_comes_back_before_its_reset_is_not_fenced() {
    let groups = [group("g", "a", &["svc"])];
    let mut cluster = fenced_cluster(&["a", "b"], &groups);
    cluster.kill(0);
    cluster.settle();
    assert_eq!(cluster.fence_requests.len(), 1);
    // a's link was cut, not its power: it is heard again before the device answers.
    let outputs = cluster.input(1, alive("a"));
    cluster.settle();
    assert!(
        events(&outputs)
            .iter()
            .any(|e| e.contains("came back before it was reset")),
        "{:?}",
        events(&outputs)
    );
    // The late answer is not taken as a reset of the node that is back.
    let before = cluster.events.len();
    answer_fence(&mut cluster, Ok(()));
    assert!(cluster.status(1).fencing.is_empty());
    let later = &cluster.events[before..];
    assert!(
        !later.iter().any(|(_, e)| e.contains("now reset")),
        "{later:?}"
    );
}

#[test]
fn a_node_that_held_nothing_is_not_fenced() {
    let groups = [group("g", "a", &["svc"])];
    let mut cluster = fenced_cluster(&["a", "b"], &groups);
    cluster.kill(1);
    cluster.settle();
    assert!(cluster.fence_requests.is_empty());
    assert_eq!(cluster.running(0), ["a"]);
}

#[test]
fn standby_after_a_takeover_moves_the_groups_again() {
    let groups = [group("g", "a", &["svc"])];
    let mut cluster = Cluster::start_all(&["a", "b"], &groups, AutoFailback::On);
    assert_eq!(cluster.running(0), ["a"]);
    cluster.input(0, Input::Standby(HoldSet::All));
    cluster.settle();
    assert_eq!(cluster.running(0), ["b"]);
    cluster.input(0, Input::Takeover(HoldSet::All));
    cluster.settle();
    assert_eq!(cluster.running(0), ["a"], "takeover brings it back");
    // b stands by since a's takeover; a's new standby is the newer request.
    cluster.input(0, Input::Standby(HoldSet::All));
    cluster.settle();
    assert_eq!(
        cluster.running(0),
        ["b"],
        "the second standby did not move the group"
    );
    cluster.assert_never_duplicated();
}

#[test]
fn the_answer_to_a_cancelled_reset_does_not_complete_a_later_one() {
    let groups = [group("g", "a", &["svc"])];
    let mut cluster = fenced_cluster(&["a", "b"], &groups);
    cluster.kill(0);
    cluster.settle();
    // a comes back before the operator answered (meatware), takes its group back, and is
    // lost again.
    cluster.boot(0);
    cluster.settle();
    assert_eq!(cluster.running(0), ["a"]);
    cluster.kill(0);
    cluster.settle();
    let attempts: Vec<u64> = cluster.fence_requests.iter().map(|r| r.2).collect();
    assert_eq!(attempts, [1, 2]);
    // The operator confirms the first, stale request: nothing moves.
    let (_, _, first) = cluster.fence_requests[0].clone();
    assert_eq!(first, 1);
    answer_fence(&mut cluster, Ok(()));
    assert!(
        cluster.running(0).is_empty(),
        "taken over on a stale confirmation"
    );
    assert_eq!(cluster.status(1).fencing[0].state, "fencing");
    // The current request's answer does.
    answer_fence(&mut cluster, Ok(()));
    assert_eq!(cluster.running(0), ["b"]);
}

// ------------------------------------------------------------------ connectivity failover

/// The one ping node of the connectivity tests.
const ROUTER: &str = "198.18.0.254";
/// Their dampening.
const DAMPENING_MS: u64 = 2000;

/// hb1 and hb2 with connectivity failover, group `g` preferred by hb1 and running there,
/// both seeing the router.
fn connectivity_cluster(mode: AutoFailback) -> Cluster {
    let mut cluster = Cluster::new(&["hb1", "hb2"], &[group("g", "hb1", &[])], mode);
    cluster.connectivity = Some(ConnectivityConfig {
        ping_nodes: vec![ROUTER.to_string()],
        dampening: Duration::from_millis(DAMPENING_MS),
        refresh: Duration::from_millis(1000),
    });
    for i in 0..2 {
        cluster.boot(i);
    }
    cluster.settle();
    for i in 0..2 {
        cluster.router(i, true);
    }
    cluster.advance(DAMPENING_MS * 2);
    assert_eq!(cluster.running(0), ["hb1"]);
    cluster
}

impl Cluster {
    /// Membership of node `i` reports the router answering (`up`) or dead.
    fn router(&mut self, i: usize, up: bool) {
        let (old, new) = if up {
            (NodeStatus::Dead, NodeStatus::Ping)
        } else {
            (NodeStatus::Ping, NodeStatus::Dead)
        };
        self.input(i, status(ROUTER, old, new));
        self.settle();
    }

    fn connectivity_events(&self) -> Vec<&(usize, String)> {
        self.events
            .iter()
            .filter(|(_, e)| e.contains("ping nodes"))
            .collect()
    }
}

#[test]
fn a_flapping_ping_node_moves_a_group_once_and_does_not_bounce_it_back() {
    let mut cluster = connectivity_cluster(AutoFailback::On);
    for _ in 0..5 {
        cluster.router(0, false);
        assert_eq!(cluster.running(0), ["hb2"]);
        cluster.advance(DAMPENING_MS - 500);
        cluster.router(0, true);
        cluster.advance(DAMPENING_MS - 500);
        assert_eq!(cluster.running(0), ["hb2"], "back before counts held equal");
    }
    cluster.advance(DAMPENING_MS * 3);
    assert_eq!(cluster.running(0), ["hb1"]);
    let moves: Vec<_> = cluster
        .connectivity_events()
        .into_iter()
        .filter(|(i, _)| *i == 0)
        .collect();
    assert_eq!(moves.len(), 2, "one standby and its end: {moves:?}");
    cluster.assert_never_duplicated();
}

#[test]
fn an_owner_that_loses_a_ping_node_its_peer_still_sees_hands_its_group_over_at_once() {
    let mut cluster = connectivity_cluster(AutoFailback::On);
    cluster.router(0, false);
    assert_eq!(
        cluster.running(0),
        ["hb2"],
        "deadping already dampened the loss"
    );
    assert!(cluster.status(0).groups[0].standby);
    assert!(
        cluster
            .connectivity_events()
            .iter()
            .any(|(i, e)| *i == 0 && e.contains("hb2 sees 1 ping nodes, we see 0")),
        "{:?}",
        cluster.events
    );
    // hb2 keeps it for as long as it sees more.
    cluster.advance(DAMPENING_MS * 5);
    assert_eq!(cluster.running(0), ["hb2"]);
    cluster.assert_never_duplicated();
}

#[test]
fn equal_counts_again_return_the_group_with_auto_failback_on() {
    let mut cluster = connectivity_cluster(AutoFailback::On);
    cluster.router(0, false);
    cluster.advance(DAMPENING_MS + 100);
    assert_eq!(cluster.running(0), ["hb2"]);
    cluster.router(0, true);
    cluster.advance(DAMPENING_MS - 100);
    assert_eq!(cluster.running(0), ["hb2"], "the return is dampened too");
    cluster.advance(200);
    assert_eq!(cluster.running(0), ["hb1"]);
    assert!(!cluster.status(0).groups[0].standby);
    cluster.assert_never_duplicated();
}

#[test]
fn equal_counts_again_leave_the_group_on_the_peer_with_auto_failback_off() {
    let mut cluster = connectivity_cluster(AutoFailback::Off);
    cluster.router(0, false);
    cluster.advance(DAMPENING_MS + 100);
    assert_eq!(cluster.running(0), ["hb2"]);
    cluster.router(0, true);
    cluster.advance(DAMPENING_MS * 3);
    assert_eq!(cluster.running(0), ["hb2"]);
    assert!(!cluster.status(0).groups[0].standby);
    cluster.assert_never_duplicated();
}

#[test]
fn a_peer_that_sees_fewer_ping_nodes_does_not_take_a_group() {
    let mut cluster = connectivity_cluster(AutoFailback::On);
    cluster.router(1, false);
    cluster.advance(DAMPENING_MS * 3);
    assert_eq!(cluster.running(0), ["hb1"]);
    // And a peer without a count (dead, then back before it sent one) never outranks us.
    cluster.kill(1);
    cluster.router(0, false);
    cluster.advance(DAMPENING_MS * 3);
    assert_eq!(cluster.running(0), ["hb1"]);
}

#[test]
fn ping_counts_are_sent_on_change_and_malformed_ones_are_reported() {
    let mut machine = Failover::new(config(
        "hb1",
        &["hb1", "hb2"],
        &[group("g", "hb1", &[])],
        AutoFailback::On,
    ))
    .with_connectivity(ConnectivityConfig {
        ping_nodes: vec![ROUTER.to_string()],
        dampening: Duration::from_secs(2),
        refresh: Duration::from_secs(1),
    });
    machine.handle(dead("hb2"), at(0));
    // A ping node counts as answering until it is declared dead.
    let outputs = machine.handle(comm_up(), at(10));
    let counts = of_type(&outputs, "vigil-ping-count");
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].get_str("count"), Some("1"));
    let outputs = machine.handle(status(ROUTER, NodeStatus::Init, NodeStatus::Ping), at(20));
    assert!(of_type(&outputs, "vigil-ping-count").is_empty());
    let outputs = machine.handle(status(ROUTER, NodeStatus::Ping, NodeStatus::Dead), at(25));
    assert_eq!(
        of_type(&outputs, "vigil-ping-count")[0].get_str("count"),
        Some("0")
    );
    assert!(of_type(&machine.handle(Input::Timer, at(30)), "vigil-ping-count").is_empty());
    assert_eq!(
        of_type(&machine.handle(Input::Timer, at(1030)), "vigil-ping-count").len(),
        1,
        "repeated every refresh"
    );
    let mut bad = Message::with_type("vigil-ping-count");
    bad.push_str("count", "many");
    let outputs = machine.handle(
        Input::Delivered {
            from: "hb2".into(),
            message: bad,
        },
        at(1040),
    );
    assert!(
        events(&outputs)
            .iter()
            .any(|e| e.contains("count=\"many\""))
    );
}
