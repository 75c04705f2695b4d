//! Deterministic simulation of a cluster in which every node runs a membership machine and a
//! failover machine, over a simulated network and clock, with simulated resource agents.
//!
//! Each node feeds membership's events and deliveries to failover and failover's messages
//! back to membership (as the runtime does); failover's agent operations complete after a
//! random delay, sometimes failing. Nodes boot, crash, restart, shut down gracefully and get
//! standby/takeover commands; resources die under their agents. Events are handled in time
//! order (ties: scheduled events in insertion order, then timers by node index), so a seed
//! replays exactly.
//!
//! Checked after every step unless the network was partitioned (or membership declared a
//! running node dead, which is the same thing to failover): no group is active — starting,
//! running, or not yet stopped — on two nodes at once. Checked at the end, `settle_bound`
//! after the last fault or command: every group whose order holds a running node eligible
//! for it runs on exactly one node, completely, and nothing of it is up anywhere else.

pub mod heartbeat;
#[path = "../simulation/rng.rs"]
pub mod rng;
pub mod scenario;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use vigil::failover::{
    self, Failover, FailoverConfig, GroupConfig, LocalGroupState, MonitorConfig, ResourceConfig,
};
use vigil::membership::{self, Membership, MembershipConfig, MembershipEvent, NodeStatus, Now};
use vigil::wire::Message;
use vigil_plugin_api::{AgentAction, OcfStatus};

use heartbeat::HeartbeatNode;
use rng::Rng;
use scenario::{Action, Scenario};

/// What manages a node's resources: vigil's machine or the Heartbeat test double.
enum Manager {
    Vigil(Box<Failover>),
    Heartbeat(Box<HeartbeatNode>),
}

impl Manager {
    fn handle(&mut self, input: failover::Input, now: Now) -> Vec<failover::Output> {
        match self {
            Manager::Vigil(machine) => machine.handle(input, now),
            Manager::Heartbeat(node) => node.handle(input, now.mono),
        }
    }

    fn next_deadline(&self) -> Option<Duration> {
        match self {
            Manager::Vigil(machine) => machine.next_deadline(),
            Manager::Heartbeat(node) => node.next_deadline(),
        }
    }

    /// This node's part in a group, and whether the group is in its order and not failed.
    fn group(&self, g: usize, name: &str) -> (LocalGroupState, bool) {
        match self {
            Manager::Vigil(machine) => {
                let status = machine.status();
                match status.groups.get(g) {
                    Some(group) => (
                        group.local,
                        group.order.iter().any(|n| n == name)
                            && group.local != LocalGroupState::Failed,
                    ),
                    None => (LocalGroupState::Stopped, false),
                }
            }
            Manager::Heartbeat(node) => (node.local_state(g), true),
        }
    }

    fn describe(&self, g: usize) -> String {
        match self {
            Manager::Vigil(machine) => {
                let s = machine.status();
                format!(
                    "{} {:?} {:?}",
                    s.local_node,
                    s.rsc_status,
                    s.groups
                        .get(g)
                        .map(|x| (x.local, x.owner.clone(), x.standby))
                )
            }
            Manager::Heartbeat(node) => format!("heartbeat {:?}", node.local_state(g)),
        }
    }
}

const WALL_START: u64 = 1_800_000_000;

/// What a run saw, for the checks that need totals.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub steps: u64,
    /// Groups started (operations `Start` on the first resource).
    pub acquisitions: u64,
    /// `TakingOverFrom` events: a survivor took a lost node's group.
    pub takeovers: u64,
    /// Runs in which membership declared a running node dead (a de facto partition).
    pub false_deaths: u64,
    pub start_failures: u64,
    pub monitor_failures: u64,
}

/// One simulated resource on one node.
#[derive(Debug, Clone, Copy, Default)]
struct Resource {
    /// A start began and no stop succeeded since: it may be active.
    up: bool,
    /// It died under the agent: monitors fail until it is started again.
    dead: bool,
    /// Stops that failed in a row.
    stop_failures: u32,
}

struct SimNode {
    name: String,
    generation: u64,
    /// Counts boots, so that results and messages of an earlier run are dropped.
    run: u64,
    membership: Option<Membership>,
    failover: Option<Manager>,
    resources: Vec<Vec<Resource>>,
    /// Failover finished its shutdown: membership is stopped at the end of the step.
    shutting_down: bool,
    /// When failover's recent messages were sent, to catch message storms.
    recent_sends: VecDeque<Duration>,
}

impl SimNode {
    fn running(&self) -> bool {
        self.membership.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Action(usize),
    Deliver {
        to: usize,
        slot: usize,
    },
    OperationDone {
        node: usize,
        run: u64,
        group: usize,
        resource: usize,
        action: u8,
    },
}

enum Work {
    Membership(membership::Input),
    Failover(failover::Input),
}

pub fn run(scenario: &Scenario, trace: Option<&mut Vec<String>>) -> Result<Report, String> {
    let mut sim = Simulation::new(scenario, trace);
    sim.run()
}

struct Simulation<'a> {
    scenario: &'a Scenario,
    rng: Rng,
    now: Duration,
    nodes: Vec<SimNode>,
    queue: BinaryHeap<Reverse<(Duration, u64, Event)>>,
    order: u64,
    messages: Vec<Message>,
    trace: Option<&'a mut Vec<String>>,
    report: Report,
    /// Membership declared a running node dead, or the network was split: duplicates are
    /// then possible without fencing, and only convergence is checked.
    split: bool,
}

fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}

fn action_code(action: AgentAction) -> u8 {
    match action {
        AgentAction::Start => 0,
        AgentAction::Stop => 1,
        AgentAction::Monitor => 2,
        AgentAction::Validate => 3,
    }
}

fn action_of(code: u8) -> AgentAction {
    match code {
        0 => AgentAction::Start,
        1 => AgentAction::Stop,
        2 => AgentAction::Monitor,
        _ => AgentAction::Validate,
    }
}

impl<'a> Simulation<'a> {
    fn new(scenario: &'a Scenario, trace: Option<&'a mut Vec<String>>) -> Self {
        let nodes = (0..scenario.nodes)
            .map(|i| SimNode {
                name: format!("n{}", i + 1),
                generation: 100 + 10 * i as u64,
                run: 0,
                membership: None,
                failover: None,
                resources: Vec::new(),
                shutting_down: false,
                recent_sends: VecDeque::new(),
            })
            .collect();
        let mut sim = Simulation {
            scenario,
            rng: Rng::new(scenario.seed ^ 0xfa11_0be5),
            now: Duration::ZERO,
            nodes,
            queue: BinaryHeap::new(),
            order: 0,
            messages: Vec::new(),
            trace,
            report: Report::default(),
            split: false,
        };
        for (index, (at, _)) in scenario.actions.iter().enumerate() {
            sim.schedule(ms(*at), Event::Action(index));
        }
        sim
    }

    fn schedule(&mut self, at: Duration, event: Event) {
        self.order += 1;
        self.queue.push(Reverse((at, self.order, event)));
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = self.trace.as_deref_mut() {
            trace.push(format!("{:>7.3} {}", self.now.as_secs_f64(), line()));
        }
    }

    fn violation(&self, what: String) -> String {
        format!("at {:.3} s: {what}", self.now.as_secs_f64())
    }

    fn now(&self) -> Now {
        Now {
            mono: self.now,
            wall_secs: WALL_START + self.now.as_secs(),
        }
    }

    fn run(&mut self) -> Result<Report, String> {
        let end = ms(self.scenario.duration);
        loop {
            let queued = self.queue.peek().map(|Reverse((at, _, _))| *at);
            let timer = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| {
                    let m = n.membership.as_ref().and_then(Membership::next_deadline);
                    let f = n.failover.as_ref().and_then(Manager::next_deadline);
                    [m, f]
                        .into_iter()
                        .flatten()
                        .min()
                        .map(|d| (d.max(self.now), i))
                })
                .min();
            let next = [queued, timer.map(|(at, _)| at)]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { break };
            if next > end {
                break;
            }
            self.now = next;
            self.update_split();
            if queued == Some(next) {
                let Some(Reverse((_, _, event))) = self.queue.pop() else {
                    break;
                };
                self.handle_event(event)?;
            } else if let Some((_, node)) = timer {
                self.feed(node, Work::Membership(membership::Input::Timer))?;
                self.feed(node, Work::Failover(failover::Input::Timer))?;
            }
            self.report.steps += 1;
            if !self.split {
                self.check_no_duplicate()?;
            }
        }
        self.now = end;
        self.check_converged()?;
        Ok(std::mem::take(&mut self.report))
    }

    fn update_split(&mut self) {
        let now = self.now.as_millis() as u64;
        if self
            .scenario
            .partitions
            .iter()
            .any(|(_, from, _)| *from <= now)
        {
            self.split = true;
        }
    }

    fn partitioned(&self, a: usize, b: usize) -> bool {
        let now = self.now.as_millis() as u64;
        self.scenario.partitions.iter().any(|(side, from, until)| {
            *from <= now && now < *until && side.contains(&a) != side.contains(&b)
        })
    }

    fn handle_event(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Action(index) => {
                let action = self.scenario.actions[index].1.clone();
                self.act(action)
            }
            Event::Deliver { to, slot } => {
                if !self.nodes[to].running() {
                    return Ok(());
                }
                let message = self.messages[slot].clone();
                self.feed(
                    to,
                    Work::Membership(membership::Input::Received { medium: 0, message }),
                )
            }
            Event::OperationDone {
                node,
                run,
                group,
                resource,
                action,
            } => {
                if self.nodes[node].run != run || !self.nodes[node].running() {
                    return Ok(());
                }
                let action = action_of(action);
                let status = self.agent_result(node, group, resource, action);
                self.feed(
                    node,
                    Work::Failover(failover::Input::OperationDone {
                        group,
                        resource,
                        action,
                        status,
                    }),
                )
            }
        }
    }

    /// What the simulated agent answers, and what it did to the resource.
    fn agent_result(
        &mut self,
        node: usize,
        group: usize,
        resource: usize,
        action: AgentAction,
    ) -> OcfStatus {
        let start_failure = self.scenario.start_failure;
        let stop_failure = self.scenario.stop_failure;
        let fails_start = self.rng.chance(start_failure);
        let fails_stop = self.rng.chance(stop_failure);
        let state = &mut self.nodes[node].resources[group][resource];
        match action {
            AgentAction::Start => {
                if fails_start {
                    self.report.start_failures += 1;
                    OcfStatus::ErrGeneric
                } else {
                    state.dead = false;
                    OcfStatus::Success
                }
            }
            AgentAction::Stop => {
                if fails_stop && state.stop_failures < 2 {
                    state.stop_failures += 1;
                    OcfStatus::ErrGeneric
                } else {
                    state.stop_failures = 0;
                    state.up = false;
                    state.dead = false;
                    OcfStatus::Success
                }
            }
            AgentAction::Monitor => {
                if state.up && !state.dead {
                    OcfStatus::Success
                } else {
                    self.report.monitor_failures += 1;
                    OcfStatus::NotRunning
                }
            }
            AgentAction::Validate => OcfStatus::Success,
        }
    }

    fn act(&mut self, action: Action) -> Result<(), String> {
        self.log(|| format!("action {action:?}"));
        match action {
            Action::Boot(node) => self.boot(node),
            Action::Crash(node) => {
                self.stop_node(node);
                Ok(())
            }
            Action::Shutdown(node) => {
                if !self.nodes[node].running() {
                    return Ok(());
                }
                self.feed(node, Work::Failover(failover::Input::Shutdown))
            }
            Action::Standby(node, set) => {
                self.feed(node, Work::Failover(failover::Input::Standby(set)))
            }
            Action::Takeover(node, set) => {
                self.feed(node, Work::Failover(failover::Input::Takeover(set)))
            }
            Action::KillResource {
                node,
                group,
                resource,
            } => {
                if let Some(state) = self.nodes[node]
                    .resources
                    .get_mut(group)
                    .and_then(|g| g.get_mut(resource))
                    && state.up
                {
                    state.dead = true;
                }
                Ok(())
            }
        }
    }

    fn boot(&mut self, node: usize) -> Result<(), String> {
        if self.nodes[node].running() {
            return Ok(());
        }
        let scenario = self.scenario;
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        let sim_node = &mut self.nodes[node];
        sim_node.generation += 1;
        sim_node.run += 1;
        sim_node.shutting_down = false;
        let seed = scenario
            .seed
            .wrapping_mul(0x9e37_79b9)
            .wrapping_add(sim_node.generation * 131 + node as u64);
        sim_node.membership = Some(Membership::new(MembershipConfig {
            local_node: sim_node.name.clone(),
            local_uuid: [node as u8 + 1; 16],
            nodes: names.clone(),
            links: vec!["eth0".to_string()],
            keepalive: ms(scenario.keepalive),
            deadtime: ms(scenario.deadtime),
            warntime: ms(scenario.deadtime / 2),
            initdead: ms(scenario.initdead),
            max_rexmit_delay: ms(120),
            hopfudge: 1,
            generation: sim_node.generation,
            rng_seed: seed,
        }));
        let groups: Vec<GroupConfig> = scenario
            .groups
            .iter()
            .enumerate()
            .map(|(g, spec)| GroupConfig {
                key: format!("IPaddr::198.18.1.{g}/24/eth0"),
                preferred: names[spec.preferred].clone(),
                order: spec.order.iter().map(|&n| names[n].clone()).collect(),
                resources: spec
                    .resources
                    .iter()
                    .enumerate()
                    .map(|(r, monitor)| ResourceConfig {
                        name: if r == 0 {
                            format!("IPaddr::198.18.1.{g}/24/eth0")
                        } else {
                            format!("svc{g}_{r}")
                        },
                        monitor: monitor.map(|(interval, restarts)| MonitorConfig {
                            interval: ms(interval),
                            restarts,
                        }),
                    })
                    .collect(),
            })
            .collect();
        sim_node.failover = Some(if scenario.heartbeat_node == Some(node) {
            let peer = names.iter().find(|n| **n != sim_node.name).cloned();
            let groups = groups
                .iter()
                .map(|g: &GroupConfig| {
                    (
                        g.key.clone(),
                        g.preferred == sim_node.name,
                        g.resources.len(),
                    )
                })
                .collect();
            Manager::Heartbeat(Box::new(HeartbeatNode::new(
                &sim_node.name,
                &peer.unwrap_or_default(),
                groups,
                scenario.auto_failback == vigil::config::AutoFailback::On,
            )))
        } else {
            Manager::Vigil(Box::new(Failover::new(FailoverConfig {
                local_node: sim_node.name.clone(),
                nodes: names,
                groups,
                auto_failback: scenario.auto_failback,
                keepalive: ms(scenario.keepalive),
                deadtime: ms(scenario.deadtime),
                rng_seed: seed ^ 0x5eed,
                fence_device: None,
            })))
        });
        sim_node.resources = scenario
            .groups
            .iter()
            .map(|g| vec![Resource::default(); g.resources.len()])
            .collect();
        self.feed(node, Work::Membership(membership::Input::Start))
    }

    /// The machine stops: everything it ran is gone with it.
    fn stop_node(&mut self, node: usize) {
        let sim_node = &mut self.nodes[node];
        sim_node.membership = None;
        sim_node.failover = None;
        sim_node.resources.clear();
        sim_node.shutting_down = false;
    }

    /// Feeds one input to a node and carries out everything that follows from it.
    fn feed(&mut self, node: usize, first: Work) -> Result<(), String> {
        let mut work = VecDeque::from([first]);
        while let Some(item) = work.pop_front() {
            let now = self.now();
            match item {
                Work::Membership(input) => {
                    let Some(machine) = self.nodes[node].membership.as_mut() else {
                        return Ok(());
                    };
                    let outputs = machine.handle(input, now);
                    for output in outputs {
                        match output {
                            membership::Output::Send(message) => self.transmit(node, message),
                            membership::Output::Event(event) => {
                                if matches!(
                                    event,
                                    MembershipEvent::NodeStatus { .. }
                                        | MembershipEvent::NodeRestarted { .. }
                                        | MembershipEvent::ReturnedAfterPartition { .. }
                                        | MembershipEvent::CommunicationsUp
                                ) {
                                    let name = self.nodes[node].name.clone();
                                    self.log(|| format!("{name}: [membership] {event}"));
                                }
                                self.on_membership_event(node, &event);
                                work.push_back(Work::Failover(failover::Input::Membership(event)));
                            }
                            membership::Output::Dropped { .. } => {}
                            membership::Output::Deliver { from, message } => {
                                if self.trace.is_some() && from != self.nodes[node].name {
                                    let name = self.nodes[node].name.clone();
                                    let text = brief(&message);
                                    self.log(|| format!("{name} <- {from}: {text}"));
                                }
                                work.push_back(Work::Failover(failover::Input::Delivered {
                                    from,
                                    message,
                                }));
                            }
                        }
                    }
                }
                Work::Failover(input) => {
                    let Some(machine) = self.nodes[node].failover.as_mut() else {
                        return Ok(());
                    };
                    let outputs = machine.handle(input, now);
                    for output in outputs {
                        match output {
                            failover::Output::Send(message) => {
                                self.count_send(node)?;
                                if self.trace.is_some() {
                                    let name = self.nodes[node].name.clone();
                                    let text = brief(&message);
                                    self.log(|| format!("{name} sends {text}"));
                                }
                                work.push_back(Work::Membership(membership::Input::SendCluster(
                                    message,
                                )));
                            }
                            failover::Output::Run {
                                group,
                                resource,
                                action,
                            } => self.start_operation(node, group, resource, action),
                            failover::Output::Event(event) => {
                                if event.kind() == "taking_over_from" {
                                    self.report.takeovers += 1;
                                }
                                let name = self.nodes[node].name.clone();
                                self.log(|| format!("{name}: {event}"));
                            }
                            failover::Output::ShutdownComplete => {
                                self.nodes[node].shutting_down = true;
                            }
                            failover::Output::Fence { node: lost, .. } => {
                                return Err(format!(
                                    "asked to fence {lost}, but the simulated nodes have no \
                                     STONITH device"
                                ));
                            }
                        }
                    }
                }
            }
        }
        if self.nodes[node].shutting_down {
            self.finish_shutdown(node)?;
        }
        Ok(())
    }

    /// Failover's messages come in small bursts (an answer, an acknowledgement, a change):
    /// more than `STORM` of them from one node within 100 ms is a feedback loop.
    fn count_send(&mut self, node: usize) -> Result<(), String> {
        const STORM: usize = 40;
        let now = self.now;
        let recent = &mut self.nodes[node].recent_sends;
        while recent
            .front()
            .is_some_and(|at| *at + Duration::from_millis(100) <= now)
        {
            recent.pop_front();
        }
        recent.push_back(now);
        if recent.len() > STORM {
            return Err(self.violation(format!(
                "n{} sent more than {STORM} resource messages within 100 ms: a message storm",
                node + 1
            )));
        }
        Ok(())
    }

    fn finish_shutdown(&mut self, node: usize) -> Result<(), String> {
        let active: Vec<usize> = self.nodes[node]
            .resources
            .iter()
            .enumerate()
            .filter(|(_, g)| g.iter().any(|r| r.up))
            .map(|(g, _)| g)
            .collect();
        if !active.is_empty() {
            return Err(self.violation(format!(
                "n{} completed its shutdown with groups {active:?} still active",
                node + 1
            )));
        }
        if let Some(machine) = self.nodes[node].membership.as_mut() {
            let now = Now {
                mono: self.now,
                wall_secs: WALL_START + self.now.as_secs(),
            };
            machine.handle(membership::Input::Shutdown, now);
        }
        self.log(|| format!("n{} shut down", node + 1));
        self.stop_node(node);
        Ok(())
    }

    fn on_membership_event(&mut self, observer: usize, event: &MembershipEvent) {
        if let MembershipEvent::NodeStatus {
            node,
            new: NodeStatus::Dead,
            ..
        } = event
            && let Some(x) = self.nodes.iter().position(|n| n.name == *node)
            && self.nodes[x].running()
            && !self.nodes[x].shutting_down
        {
            if !self.split {
                self.report.false_deaths += 1;
                let observer_name = self.nodes[observer].name.clone();
                self.log(|| format!("{observer_name} declared running {node} dead: split"));
            }
            self.split = true;
        }
    }

    fn start_operation(&mut self, node: usize, group: usize, resource: usize, action: AgentAction) {
        if action == AgentAction::Start {
            if resource == 0 {
                self.report.acquisitions += 1;
            }
            if let Some(state) = self.nodes[node]
                .resources
                .get_mut(group)
                .and_then(|g| g.get_mut(resource))
            {
                state.up = true;
            }
        }
        let (low, high) = self.scenario.operation_ms;
        let delay = ms(self.rng.between(low, high));
        let run = self.nodes[node].run;
        self.schedule(
            self.now + delay,
            Event::OperationDone {
                node,
                run,
                group,
                resource,
                action: action_code(action),
            },
        );
    }

    fn transmit(&mut self, from: usize, message: Message) {
        let slot = self.messages.len();
        self.messages.push(message);
        for to in 0..self.nodes.len() {
            if to == from || self.partitioned(from, to) {
                continue;
            }
            if self.rng.chance(self.scenario.loss) {
                continue;
            }
            let delay = Duration::from_micros(self.rng.between(500, self.scenario.max_delay_us));
            self.schedule(self.now + delay, Event::Deliver { to, slot });
        }
    }

    /// No group active (a start begun and no successful stop since) on two nodes.
    fn check_no_duplicate(&self) -> Result<(), String> {
        for g in 0..self.scenario.groups.len() {
            let active: Vec<String> = self
                .nodes
                .iter()
                .filter(|n| {
                    n.resources
                        .get(g)
                        .is_some_and(|resources| resources.iter().any(|r| r.up))
                })
                .map(|n| n.name.clone())
                .collect();
            if active.len() > 1 {
                return Err(self.violation(format!(
                    "group g{g} is active on {active:?} at once without a partition"
                )));
            }
        }
        Ok(())
    }

    /// Every group with an eligible running node runs completely on exactly one node.
    fn check_converged(&self) -> Result<(), String> {
        for g in 0..self.scenario.groups.len() {
            let mut eligible = Vec::new();
            let mut running = Vec::new();
            let mut active = Vec::new();
            for (i, sim_node) in self.nodes.iter().enumerate() {
                let Some(manager) = sim_node.failover.as_ref() else {
                    continue;
                };
                let (local, is_eligible) = manager.group(g, &sim_node.name);
                if is_eligible {
                    eligible.push(i + 1);
                }
                let resources = &sim_node.resources[g];
                if resources.iter().any(|r| r.up) {
                    active.push(i + 1);
                }
                if local == LocalGroupState::Running && resources.iter().all(|r| r.up && !r.dead) {
                    running.push(i + 1);
                }
            }
            let ok = if eligible.is_empty() {
                running.is_empty()
            } else {
                running.len() == 1 && active == running
            };
            if !ok {
                let statuses: Vec<String> = self
                    .nodes
                    .iter()
                    .filter_map(|n| n.failover.as_ref())
                    .map(|m| m.describe(g))
                    .collect();
                return Err(self.violation(format!(
                    "convergence: group g{g} eligible on nodes {eligible:?} but running on \
                     {running:?} and active on {active:?} after settling; statuses: {}",
                    statuses.join("; ")
                )));
            }
        }
        Ok(())
    }
}

/// A message without the fields every message has, for traces.
fn brief(message: &Message) -> String {
    let mut text = String::new();
    for field in message.fields() {
        if let vigil::wire::FieldValue::String(value) = &field.value
            && !matches!(field.name.as_str(), "srcuuid" | "ts" | "ld" | "ttl")
        {
            text.push_str(&format!("{}={} ", field.name, value.trim()));
        }
    }
    text.trim_end().to_string()
}
