//! Deterministic simulation of a cluster of membership machines.
//!
//! N machines run in one process over a simulated network (loss, duplication, reordering,
//! delay, medium cuts, partitions) with a simulated clock; nodes freeze, crash and restart
//! with the next generation. Every machine is driven by its own `next_deadline`; events are
//! handled in time order (ties: scheduled actions, then deliveries, then timers, then node
//! index), so a seed replays exactly. Invariants are checked after every step; a violation
//! is returned with the time and a description, and the caller prints the scenario.

pub mod rng;
pub mod scenario;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use vigil::membership::{
    DropReason, Input, Membership, MembershipConfig, MembershipEvent, NodeStatus, Now, Output,
};
use vigil::wire::{FieldValue, Message};

use rng::Rng;
use scenario::{Fault, Kind, Scenario};

const WALL_START: u64 = 1_800_000_000;
/// The type of the client messages the simulation sends; `cid` numbers them per sender.
const CLIENT_TYPE: &str = "simtest";

/// What one observer knows about one sender from the messages it was handed.
#[derive(Debug, Clone, Default)]
struct Book {
    /// The highest generation of any sequenced message delivered.
    generation: Option<u64>,
    /// The first seq seen of that generation: the machine starts tracking there and drops
    /// older numbers of the run, as 3.0.6 does.
    baseline: u64,
    /// When that generation was first heard: its liveness clock starts there.
    adopted_at: Option<Duration>,
    /// When anything was first heard from it: so does its clock before its first status.
    contact_at: Option<Duration>,
    /// The highest (generation, seq) of a status delivered.
    newest: Option<(u64, u64)>,
    /// The first generation ever heard from it.
    first_generation: Option<u64>,
    /// When a status newer than all before arrived.
    last_new_status: Option<Duration>,
    /// When the first copy of any distinct status of the current generation arrived.
    last_any_status: Option<Duration>,
    seen: HashSet<(u64, u64)>,
    /// `dt` of the newest status.
    newest_dt: Option<Duration>,
    /// The observer's view of its status, from `NodeStatus` events.
    view: Option<NodeStatus>,
    /// The generation in which the observer last saw it alive (a status of it was accepted).
    alive_in: Option<u64>,
    /// When it was last declared dead after having been seen alive: that generation.
    died_alive_in: Option<u64>,
    /// Client messages delivered, by `cid`.
    delivered: Vec<u64>,
    /// Gaps reported and not yet closed.
    gap_open: bool,
    restarts_seen: Vec<u64>,
}

struct SimNode {
    name: String,
    uuid: [u8; 16],
    generation: u64,
    machine: Option<Membership>,
    deadline: Option<Duration>,
    started_at: Duration,
    /// The later of its start and its last unfreeze: its timers could not run before.
    runnable_since: Duration,
    frozen: bool,
    pending_start: bool,
    active: bool,
    books: Vec<Book>,
    /// Client messages it sent, in order: (`cid`, seq).
    sent_cids: Vec<(u64, u64)>,
    /// Whether it ran before: each new run has the next generation.
    booted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Delivery {
    at: Duration,
    order: u64,
    from: usize,
    to: usize,
    medium: usize,
}

enum Action {
    Freeze(usize),
    Unfreeze(usize),
    Crash(usize),
    Boot(usize),
    Client(usize),
}

/// What a finished run saw, for the checks that need the whole run.
pub struct Report {
    pub deaths: u64,
    pub restarts_seen: u64,
    pub returns_seen: u64,
    pub retransmissions: u64,
    pub steps: u64,
}

/// Runs `scenario`; `trace` collects a line per step (printed by the caller on failure or
/// when a single seed is replayed).
pub fn run(scenario: &Scenario, trace: Option<&mut Vec<String>>) -> Result<Report, String> {
    let mut sim = Simulation::new(scenario, trace);
    sim.run()
}

struct Simulation<'a> {
    scenario: &'a Scenario,
    rng: Rng,
    now: Duration,
    nodes: Vec<SimNode>,
    actions: Vec<(Duration, u64, Action)>,
    next_action: usize,
    in_flight: BinaryHeap<Reverse<(Delivery, MessageSlot)>>,
    messages: Vec<Option<Message>>,
    order: u64,
    next_cid: u64,
    trace: Option<&'a mut Vec<String>>,
    report: Report,
    /// While a message from `.1` is handed to `.0`: when its previous new status had
    /// arrived. Deaths the machine declares in that call are due before the message.
    arrival: Option<(usize, usize, Option<Duration>)>,
}

/// Index into `Simulation::messages` (messages are stored once, shared by all copies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct MessageSlot(usize);

fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}

impl<'a> Simulation<'a> {
    fn new(scenario: &'a Scenario, trace: Option<&'a mut Vec<String>>) -> Self {
        let nodes = (0..scenario.nodes)
            .map(|i| SimNode {
                name: format!("n{}", i + 1),
                uuid: [i as u8 + 1; 16],
                generation: 100 + 10 * i as u64,
                machine: None,
                deadline: None,
                started_at: Duration::ZERO,
                runnable_since: Duration::ZERO,
                frozen: false,
                pending_start: false,
                active: false,
                books: vec![Book::default(); scenario.nodes],
                sent_cids: Vec::new(),
                booted: false,
            })
            .collect();
        let mut actions: Vec<(Duration, u64, Action)> = Vec::new();
        let mut order = 0;
        let mut push = |at: u64, action: Action| {
            order += 1;
            actions.push((ms(at), order, action));
        };
        for (node, start) in scenario.starts.iter().enumerate() {
            push(*start, Action::Boot(node));
        }
        for fault in &scenario.faults {
            match fault {
                Fault::Freeze { node, from, until } => {
                    push(*from, Action::Freeze(*node));
                    if let Some(until) = until {
                        push(*until, Action::Unfreeze(*node));
                    }
                }
                Fault::Restart { node, down, up } => {
                    push(*down, Action::Crash(*node));
                    push(*up, Action::Boot(*node));
                }
                Fault::CutMedium { .. } | Fault::Partition { .. } => {}
            }
        }
        for (at, node) in &scenario.client_messages {
            push(*at, Action::Client(*node));
        }
        actions.sort_by_key(|(at, order, _)| (*at, *order));
        Simulation {
            scenario,
            rng: Rng::new(scenario.seed ^ 0x5eed_5eed),
            now: Duration::ZERO,
            nodes,
            actions,
            next_action: 0,
            in_flight: BinaryHeap::new(),
            messages: Vec::new(),
            order: 0,
            next_cid: 0,
            trace,
            report: Report {
                deaths: 0,
                restarts_seen: 0,
                returns_seen: 0,
                retransmissions: 0,
                steps: 0,
            },
            arrival: None,
        }
    }

    fn config(&self, node: usize) -> MembershipConfig {
        let t = self.scenario.timing;
        MembershipConfig {
            local_node: self.nodes[node].name.clone(),
            local_uuid: self.nodes[node].uuid,
            nodes: self.nodes.iter().map(|n| n.name.clone()).collect(),
            links: (0..self.scenario.media)
                .map(|m| format!("eth{m}"))
                .collect(),
            keepalive: ms(t.keepalive),
            deadtime: ms(t.deadtime),
            warntime: ms(t.warntime),
            initdead: ms(t.initdead),
            max_rexmit_delay: ms(t.max_rexmit_delay),
            hopfudge: 1,
            generation: self.nodes[node].generation,
            rng_seed: self
                .scenario
                .seed
                .wrapping_mul(31)
                .wrapping_add(node as u64),
        }
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = self.trace.as_deref_mut() {
            trace.push(format!("{:>7.3} {}", self.now.as_secs_f64(), line()));
        }
    }

    fn run(&mut self) -> Result<Report, String> {
        let end = ms(self.scenario.duration);
        loop {
            let action_at = self.actions.get(self.next_action).map(|(at, _, _)| *at);
            let delivery_at = self.in_flight.peek().map(|Reverse((d, _))| d.at);
            let timer = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.machine.is_some() && !n.frozen && !n.pending_start)
                .filter_map(|(i, n)| n.deadline.map(|d| (d.max(self.now), i)))
                .min();
            let next = [action_at, delivery_at, timer.map(|(at, _)| at)]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { break };
            if next > end {
                break;
            }
            self.now = next;
            if action_at == Some(next) {
                self.next_action += 1;
                let index = self.next_action - 1;
                let action =
                    std::mem::replace(&mut self.actions[index].2, Action::Client(usize::MAX));
                self.act(action)?;
            } else if delivery_at == Some(next) {
                let Some(Reverse((delivery, slot))) = self.in_flight.pop() else {
                    break;
                };
                self.deliver(delivery, slot)?;
            } else if let Some((_, node)) = timer {
                self.drive(node, Input::Timer)?;
            }
            self.report.steps += 1;
            self.check_timely_deaths()?;
        }
        self.check_end()?;
        Ok(std::mem::replace(
            &mut self.report,
            Report {
                deaths: 0,
                restarts_seen: 0,
                returns_seen: 0,
                retransmissions: 0,
                steps: 0,
            },
        ))
    }

    fn act(&mut self, action: Action) -> Result<(), String> {
        match action {
            Action::Boot(node) => {
                if self.nodes[node].booted {
                    self.nodes[node].generation += 1;
                }
                self.nodes[node].booted = true;
                let config = self.config(node);
                let sim_node = &mut self.nodes[node];
                sim_node.machine = Some(Membership::new(config));
                sim_node.active = false;
                sim_node.books = vec![Book::default(); self.scenario.nodes];
                if sim_node.frozen {
                    sim_node.pending_start = true;
                    return Ok(());
                }
                self.log(|| format!("boot n{}", node + 1));
                self.start(node)
            }
            Action::Crash(node) => {
                self.log(|| format!("crash n{}", node + 1));
                let sim_node = &mut self.nodes[node];
                sim_node.machine = None;
                sim_node.deadline = None;
                sim_node.pending_start = false;
                Ok(())
            }
            Action::Freeze(node) => {
                self.log(|| format!("freeze n{}", node + 1));
                self.nodes[node].frozen = true;
                Ok(())
            }
            Action::Unfreeze(node) => {
                self.log(|| format!("unfreeze n{}", node + 1));
                if !self.nodes[node].frozen {
                    return Ok(());
                }
                self.nodes[node].frozen = self.frozen_by_another_fault(node);
                if self.nodes[node].frozen {
                    return Ok(());
                }
                self.nodes[node].runnable_since = self.now;
                if self.nodes[node].pending_start {
                    self.nodes[node].pending_start = false;
                    return self.start(node);
                }
                Ok(())
            }
            Action::Client(node) => {
                let runnable = self.nodes[node].machine.is_some() && !self.nodes[node].frozen;
                if !runnable || self.nodes[node].pending_start {
                    return Ok(());
                }
                self.next_cid += 1;
                let mut message = Message::with_type(CLIENT_TYPE);
                message.push_str("cid", &self.next_cid.to_string());
                self.drive(node, Input::SendCluster(message)).map(drop)
            }
        }
    }

    fn frozen_by_another_fault(&self, node: usize) -> bool {
        let now = self.now.as_millis() as u64;
        self.scenario.faults.iter().any(|f| match f {
            Fault::Freeze {
                node: n,
                from,
                until,
            } => *n == node && *from <= now && until.is_none_or(|u| now < u),
            _ => false,
        })
    }

    fn start(&mut self, node: usize) -> Result<(), String> {
        let sim_node = &mut self.nodes[node];
        sim_node.started_at = self.now;
        sim_node.runnable_since = self.now;
        self.drive(node, Input::Start).map(drop)
    }

    fn medium_cut(&self, node: usize, medium: usize, at: u64) -> bool {
        self.scenario.faults.iter().any(|f| match f {
            Fault::CutMedium {
                node: n,
                medium: m,
                from,
                until,
            } => *n == node && *m == medium && *from <= at && at < *until,
            _ => false,
        })
    }

    fn partitioned(&self, a: usize, b: usize, at: u64) -> bool {
        self.scenario.faults.iter().any(|f| match f {
            Fault::Partition { group, from, until } => {
                *from <= at && at < *until && (group.contains(&a) != group.contains(&b))
            }
            _ => false,
        })
    }

    /// Puts copies of `message` from `from` on every medium towards every node.
    fn transmit(&mut self, from: usize, message: Message) {
        let now_ms = self.now.as_millis() as u64;
        let slot = MessageSlot(self.messages.len());
        self.messages.push(Some(message));
        let lossy = now_ms < self.scenario.duration - self.scenario.settle;
        for medium in 0..self.scenario.media {
            if self.medium_cut(from, medium, now_ms) {
                continue;
            }
            for to in 0..self.scenario.nodes {
                if to == from {
                    if self.scenario.own_loopback {
                        let delay = Duration::from_micros(self.rng.between(10, 100));
                        self.schedule(from, to, medium, delay, slot);
                    }
                    continue;
                }
                if self.partitioned(from, to, now_ms) {
                    continue;
                }
                if lossy && self.rng.chance(self.scenario.loss) {
                    continue;
                }
                let copies = if lossy && self.rng.chance(self.scenario.duplicate) {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let mut delay = Duration::from_micros(self.rng.between(50, 1000));
                    if lossy && self.rng.chance(self.scenario.reorder) {
                        delay += Duration::from_micros(
                            self.rng.between(0, self.scenario.reorder_ms * 1000),
                        );
                    }
                    self.schedule(from, to, medium, delay, slot);
                }
            }
        }
    }

    fn schedule(
        &mut self,
        from: usize,
        to: usize,
        medium: usize,
        delay: Duration,
        slot: MessageSlot,
    ) {
        self.order += 1;
        self.in_flight.push(Reverse((
            Delivery {
                at: self.now + delay,
                order: self.order,
                from,
                to,
                medium,
            },
            slot,
        )));
    }

    fn deliver(&mut self, delivery: Delivery, slot: MessageSlot) -> Result<(), String> {
        let to = delivery.to;
        let target = &self.nodes[to];
        if target.machine.is_none() || target.frozen || target.pending_start {
            return Ok(());
        }
        if self.medium_cut(to, delivery.medium, self.now.as_millis() as u64) {
            return Ok(());
        }
        let Some(message) = self.messages.get(slot.0).and_then(|m| m.clone()) else {
            return Ok(());
        };
        let expectation = if delivery.from != to {
            let before = self.nodes[to].books[delivery.from].last_new_status;
            self.arrival = Some((to, delivery.from, before));
            self.note_arrival(to, delivery.from, &message)
        } else {
            Expect::default()
        };
        let outputs = self.drive(
            to,
            Input::Received {
                medium: delivery.medium,
                message,
            },
        );
        self.arrival = None;
        let outputs = outputs?;
        self.check_expectation(to, delivery.from, expectation, &outputs)
    }

    /// Updates the observer's book for a message from `from`, and says what the machine
    /// must report for it.
    fn note_arrival(&mut self, observer: usize, from: usize, message: &Message) -> Expect {
        let mut expect = Expect::default();
        let now = self.now;
        self.nodes[observer].books[from]
            .contact_at
            .get_or_insert(now);
        let parse = |name: &str| {
            message
                .get_str(name)
                .and_then(|v| u64::from_str_radix(v, 16).ok())
        };
        let (Some(generation), Some(seq)) = (parse("hg"), parse("seq")) else {
            return expect;
        };
        let dt = parse("dt").map(ms);
        let book = &mut self.nodes[observer].books[from];
        match book.generation {
            Some(known) if generation < known => return expect,
            Some(known) if generation == known => {}
            known => {
                if known.is_some() {
                    expect.restart = Some(generation);
                }
                book.generation = Some(generation);
                book.baseline = seq;
                book.adopted_at = Some(now);
                book.alive_in = None;
            }
        }
        book.first_generation.get_or_insert(generation);
        if message.message_type() != Some("status") || seq < book.baseline {
            return expect;
        }
        if book.newest.is_some_and(|(g, _)| generation > g) {
            book.seen.clear();
        }
        expect.status_of = Some(generation);
        if book.seen.insert((generation, seq)) {
            book.last_any_status = Some(now);
        }
        if book.newest.is_none_or(|newest| (generation, seq) > newest) {
            book.newest = Some((generation, seq));
            book.newest_dt = dt;
            book.last_new_status = Some(now);
        }
        expect
    }

    fn check_expectation(
        &mut self,
        observer: usize,
        from: usize,
        expect: Expect,
        outputs: &[Output],
    ) -> Result<(), String> {
        let name = self.nodes[from].name.clone();
        let has =
            |wanted: &MembershipEvent| outputs.iter().any(|o| o == &Output::Event(wanted.clone()));
        if let Some(generation) = expect.restart {
            let wanted = MembershipEvent::NodeRestarted {
                node: name.clone(),
                generation,
            };
            if !has(&wanted) {
                return Err(self.violation(format!(
                    "invariant 3: n{} got {name}'s first message of generation {generation} \
                     without reporting the restart; outputs {outputs:?}",
                    observer + 1
                )));
            }
        }
        // A node seen alive in a run, declared dead, and brought back by a status of the
        // same run has returned after a partition.
        let back_alive = outputs.iter().any(|o| {
            matches!(o, Output::Event(MembershipEvent::NodeStatus { node, old: NodeStatus::Dead, new })
                if *node == name && new.is_alive())
        });
        let returning_run = self.nodes[observer].books[from].died_alive_in;
        if back_alive && expect.status_of.is_some() && expect.status_of == returning_run {
            let wanted = MembershipEvent::ReturnedAfterPartition { node: name.clone() };
            if !has(&wanted) {
                return Err(self.violation(format!(
                    "n{} saw {name} come back with a status of the run it was alive in \
                     without reporting its return; outputs {outputs:?}",
                    observer + 1
                )));
            }
        }
        Ok(())
    }

    /// Feeds one input to a node's machine and carries out its outputs.
    fn drive(&mut self, node: usize, input: Input) -> Result<Vec<Output>, String> {
        let now = Now {
            mono: self.now,
            wall_secs: WALL_START + self.now.as_secs(),
        };
        let input_text = if self.trace.is_some() {
            describe_input(&input)
        } else {
            String::new()
        };
        let Some(machine) = self.nodes[node].machine.as_mut() else {
            return Ok(Vec::new());
        };
        let outputs = machine.handle(input, now);
        self.nodes[node].deadline = machine.next_deadline();
        if self.trace.is_some() {
            let summary: Vec<String> = outputs.iter().map(describe_output).collect();
            let name = self.nodes[node].name.clone();
            self.log(|| format!("{name} <- {input_text} => {}", summary.join(" | ")));
        }
        for output in &outputs {
            match output {
                Output::Send(message) => {
                    if message.message_type() == Some(CLIENT_TYPE) {
                        self.note_client_send(node, message);
                    }
                    self.transmit(node, message.clone());
                }
                Output::Event(event) => self.on_event(node, event)?,
                Output::Dropped {
                    reason,
                    node: claimed,
                } => self.on_drop(node, *reason, claimed)?,
                Output::Deliver { from, message } => self.on_deliver(node, from, message)?,
            }
        }
        Ok(outputs)
    }

    /// Records a client message the first time it is sent, counts its resends.
    fn note_client_send(&mut self, node: usize, message: &Message) {
        let cid: Option<u64> = message.get_str("cid").and_then(|c| c.parse().ok());
        let seq = message
            .get_str("seq")
            .and_then(|s| u64::from_str_radix(s, 16).ok());
        let (Some(cid), Some(seq)) = (cid, seq) else {
            return;
        };
        let sent = &mut self.nodes[node].sent_cids;
        if sent.iter().any(|(c, _)| *c == cid) {
            self.report.retransmissions += 1;
        } else {
            sent.push((cid, seq));
        }
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    fn on_event(&mut self, observer: usize, event: &MembershipEvent) -> Result<(), String> {
        match event {
            MembershipEvent::NodeStatus { node, new, .. } => {
                let Some(x) = self.index_of(node) else {
                    return Err(self.violation(format!("event about unknown node {node}")));
                };
                if *new == NodeStatus::Dead {
                    self.report.deaths += 1;
                    self.check_death_not_premature(observer, x)?;
                }
                let book = &mut self.nodes[observer].books[x];
                if *new == NodeStatus::Dead {
                    book.died_alive_in = book.alive_in;
                } else if new.is_alive() {
                    book.alive_in = book.generation;
                }
                book.view = Some(*new);
            }
            MembershipEvent::CommunicationsUp => self.nodes[observer].active = true,
            MembershipEvent::NodeRestarted { node, generation } => {
                self.report.restarts_seen += 1;
                if let Some(x) = self.index_of(node) {
                    self.nodes[observer].books[x]
                        .restarts_seen
                        .push(*generation);
                }
            }
            MembershipEvent::ReturnedAfterPartition { .. } => self.report.returns_seen += 1,
            MembershipEvent::PacketsLost { node, .. } => {
                if let Some(x) = self.index_of(node) {
                    self.nodes[observer].books[x].gap_open = true;
                }
            }
            MembershipEvent::NoPacketsMissing { node }
            | MembershipEvent::TooManyPacketsLost { node } => {
                if let Some(x) = self.index_of(node) {
                    self.nodes[observer].books[x].gap_open = false;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn on_drop(
        &mut self,
        observer: usize,
        reason: DropReason,
        claimed: &Option<String>,
    ) -> Result<(), String> {
        let allowed = match reason {
            DropReason::NotForUs => true,
            DropReason::LowerGeneration => self.scenario.has_restarts(),
            _ => false,
        };
        if allowed {
            return Ok(());
        }
        Err(self.violation(format!(
            "n{} dropped a message from {claimed:?} as {}: well-formed traffic (our own copies \
             included) must never be refused",
            observer + 1,
            reason.counter()
        )))
    }

    fn on_deliver(&mut self, observer: usize, from: &str, message: &Message) -> Result<(), String> {
        if message.message_type() != Some(CLIENT_TYPE) {
            return Ok(());
        }
        let Some(x) = self.index_of(from) else {
            return Err(self.violation(format!("delivery from unknown node {from}")));
        };
        let Some(cid) = message.get_str("cid").and_then(|c| c.parse::<u64>().ok()) else {
            return Err(self.violation(format!("client message without cid: {message}")));
        };
        let book = &mut self.nodes[observer].books[x];
        if book.delivered.last().is_some_and(|last| *last >= cid) {
            let previous = book.delivered.last().copied();
            return Err(self.violation(format!(
                "n{} delivered {from}'s message {cid} after {previous:?}: duplicate or out of order",
                observer + 1
            )));
        }
        book.delivered.push(cid);
        Ok(())
    }

    /// Invariant 1: a node is declared dead only if no status newer than all before arrived
    /// within the (smallest possible) deadtime.
    fn check_death_not_premature(&mut self, observer: usize, x: usize) -> Result<(), String> {
        let deadtime = ms(self.scenario.timing.deadtime);
        let last_new = match self.arrival {
            Some((o, from, before)) if o == observer && from == x => before,
            _ => self.nodes[observer].books[x].last_new_status,
        };
        let last = last_new.unwrap_or(self.nodes[observer].started_at);
        if self.now < last + deadtime {
            let name = self.nodes[x].name.clone();
            return Err(self.violation(format!(
                "invariant 1: n{} declared {name} dead at {:?} although a new status of it \
                 arrived at {last:?}, less than the deadtime before",
                observer + 1,
                self.now
            )));
        }
        Ok(())
    }

    /// Invariant 2: a node silent towards a running observer is declared dead no later than
    /// its last status arrival + its deadtime + 1 ms. Checked only for observers that have
    /// nothing due any more at `now` (their timers are exact, so that is all of them between
    /// instants).
    fn check_timely_deaths(&mut self) -> Result<(), String> {
        let t = self.scenario.timing;
        for o in 0..self.nodes.len() {
            let observer = &self.nodes[o];
            if observer.machine.is_none() || observer.frozen || observer.pending_start {
                continue;
            }
            if observer.deadline.is_some_and(|d| d <= self.now) {
                continue;
            }
            for x in 0..self.nodes.len() {
                if x == o {
                    continue;
                }
                let book = &observer.books[x];
                if book.view == Some(NodeStatus::Dead) {
                    continue;
                }
                let dt = book.newest_dt.unwrap_or(ms(t.deadtime));
                let deadtime = if observer.active {
                    dt
                } else {
                    dt.max(ms(t.initdead))
                };
                let last = [
                    book.last_any_status,
                    book.adopted_at,
                    book.contact_at,
                    Some(observer.started_at),
                ]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(observer.started_at);
                let bound = (last + deadtime).max(observer.runnable_since) + ms(1);
                if self.now > bound {
                    let name = self.nodes[x].name.clone();
                    return Err(self.violation(format!(
                        "invariant 2: n{} still sees {name} as {:?} at {:?}; its last status \
                         arrived at {last:?} and its deadtime is {deadtime:?}",
                        o + 1,
                        book.view,
                        self.now
                    )));
                }
            }
        }
        Ok(())
    }

    /// After the settling period: every pair of running nodes sees each other alive and
    /// active, the others are dead, restarts were seen, and (short outages) nothing was lost.
    fn check_end(&mut self) -> Result<(), String> {
        let running: Vec<bool> = self
            .nodes
            .iter()
            .map(|n| n.machine.is_some() && !n.frozen && !n.pending_start)
            .collect();
        for o in 0..self.nodes.len() {
            if !running[o] {
                continue;
            }
            let Some(status) = self.nodes[o].machine.as_ref().map(|m| m.status()) else {
                continue;
            };
            if status.local_status != NodeStatus::Active {
                return Err(self.violation(format!(
                    "liveness: n{} never became active: {status:?}",
                    o + 1
                )));
            }
            for (x, &expected_alive) in running.iter().enumerate() {
                if x == o {
                    continue;
                }
                let seen = status
                    .nodes
                    .iter()
                    .find(|n| n.name == self.nodes[x].name)
                    .map(|n| n.status);
                let alive = seen.is_some_and(|s| s.is_alive());
                if expected_alive != alive {
                    return Err(self.violation(format!(
                        "convergence: after settling n{} sees n{} as {seen:?}, expected {}",
                        o + 1,
                        x + 1,
                        if expected_alive { "alive" } else { "dead" }
                    )));
                }
                let book = &self.nodes[o].books[x];
                let current = self.nodes[x].generation;
                if expected_alive
                    && book.first_generation.is_some_and(|g| g < current)
                    && !book.restarts_seen.contains(&current)
                {
                    return Err(self.violation(format!(
                        "invariant 3: n{} never reported the restart of n{} (generation {current})",
                        o + 1,
                        x + 1
                    )));
                }
                if self.scenario.kind == Kind::ShortOutages {
                    self.check_nothing_lost(o, x, &status)?;
                }
            }
        }
        if self.scenario.kind == Kind::ShortOutages && self.report.deaths > 0 {
            return Err(self.violation(format!(
                "invariant 4: {} death(s) declared although every outage was shorter than the \
                 deadtime",
                self.report.deaths
            )));
        }
        Ok(())
    }

    /// Invariant 4: after outages shorter than the deadtime, every gap was closed and every
    /// client message of `x` reached `o` exactly once, in order.
    fn check_nothing_lost(
        &self,
        o: usize,
        x: usize,
        status: &vigil::membership::MembershipStatus,
    ) -> Result<(), String> {
        let book = &self.nodes[o].books[x];
        let missing = status
            .nodes
            .iter()
            .find(|n| n.name == self.nodes[x].name)
            .map_or(0, |n| n.missing);
        if book.gap_open || missing > 0 {
            return Err(self.violation(format!(
                "invariant 4: n{} still misses {missing} packet(s) of n{} (gap reported and \
                 not closed: {})",
                o + 1,
                x + 1,
                book.gap_open
            )));
        }
        // Tracking of a peer starts at the first message seen from it; only what it sent
        // from there on is owed.
        let owed: Vec<u64> = self.nodes[x]
            .sent_cids
            .iter()
            .filter(|(_, seq)| *seq >= book.baseline)
            .map(|(cid, _)| *cid)
            .collect();
        if book.delivered != owed {
            return Err(self.violation(format!(
                "invariant 4: n{} delivered {:?} from n{}, which sent {:?} since n{} first \
                 heard it (seq {:x})",
                o + 1,
                book.delivered,
                x + 1,
                owed,
                o + 1,
                book.baseline
            )));
        }
        Ok(())
    }

    fn violation(&self, what: String) -> String {
        format!("at {:.3} s: {what}", self.now.as_secs_f64())
    }
}

/// What the machine must report for one delivered message.
#[derive(Debug, Clone, Copy, Default)]
struct Expect {
    /// The first message of this new generation: a restart must be reported.
    restart: Option<u64>,
    /// A status of this generation.
    status_of: Option<u64>,
}

fn describe_input(input: &Input) -> String {
    match input {
        Input::Received { medium, message } => format!("[eth{medium}] {}", brief(message)),
        Input::SendCluster(message) => format!("client {}", brief(message)),
        other => format!("{other:?}"),
    }
}

fn describe_output(output: &Output) -> String {
    match output {
        Output::Send(message) => format!("send {}", brief(message)),
        Output::Event(event) => event.to_string(),
        Output::Dropped { reason, node } => format!("dropped {} from {node:?}", reason.counter()),
        Output::Deliver { from, message } => format!("deliver from {from}: {}", brief(message)),
    }
}

/// A short rendering of a message: its type, sender, seq and the fields that matter here.
fn brief(message: &Message) -> String {
    let mut text = String::new();
    for field in message.fields() {
        if let FieldValue::String(value) = &field.value
            && matches!(
                field.name.as_str(),
                "t" | "st" | "src" | "seq" | "hg" | "dest" | "firstseq" | "ackseq" | "cid" | "dt"
            )
        {
            let _ = write!(text, "{}={} ", field.name, value);
        }
    }
    text.trim_end().to_string()
}
