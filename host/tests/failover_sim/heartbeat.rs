//! A Heartbeat 3.0.6 resource manager as a test double: `hb_resource.c`'s nice_failback state
//! machine for a two-node cluster, driven like a `Failover` (same inputs and outputs).
//!
//! It follows the C code step by step where the wire shows it: `starting` and the
//! INIT/STARTING/BOTHSTARTING/RSCRCVD/STABLE/SHUTDOWN states with the 10 s `RQSTDELAY` in
//! RSCRCVD; `resource` messages with `HB_UPD_RSC`; `req_our_resources` (which sets the local
//! bit, announces `isstable=1 info=req_our_resources()` and then lets
//! `rc.d/ip-request-resp` take each group); `hb_rsc_recover_dead_resources`,
//! `takeover_from_node` and `mach_down` (`resource rsc_hold=foreign info=mach_down`);
//! `PerformAutoFailback` (retried every second); the `ask_resources` me/other/done exchange
//! with its 10 s and 1 h timeouts (checked, as in 3.0.6, when a message arrives);
//! `go_standby`; `hb_giveup_resources` and `shutdone`; `rc.d/hb_takeover`. Resource-management
//! children run one at a time, and `takegroup`/`givegroup` skip resources already up or down
//! (`ResourceManager status`). It is deliberately not a vigil machine: it is what vigil must
//! get along with.

use std::collections::VecDeque;
use std::time::Duration;

use vigil::failover::{Input, LocalGroupState, Output};
use vigil::membership::{MembershipEvent, NodeStatus};
use vigil::wire::Message;
use vigil_plugin_api::{AgentAction, OcfStatus};

const LOCAL: u8 = 1;
const FOREIGN: u8 = 2;
const ALL: u8 = 3;
const RQSTDELAY: Duration = Duration::from_secs(10);
const STANDBY_INIT_TO: Duration = Duration::from_secs(10);
const STANDBY_RSC_TO: Duration = Duration::from_secs(3600);
const FAILBACK_RETRY: Duration = Duration::from_secs(1);

fn word(bits: u8) -> &'static str {
    match bits & 3 {
        0 => "none",
        1 => "local",
        2 => "foreign",
        _ => "all",
    }
}

fn bits_of(word: &str) -> u8 {
    match word {
        "local" => LOCAL,
        "foreign" => FOREIGN,
        "all" => ALL,
        _ => 0,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Init,
    Starting,
    BothStarting,
    RscRcvd,
    Stable,
    Shutdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standby {
    Not,
    Me,
    Other,
    Done,
}

/// One step of a resource-management child.
#[derive(Debug, Clone)]
enum Step {
    /// `takegroup`: start what is not up, left to right.
    Take(usize),
    /// `givegroup`: stop what is up, right to left.
    Give(usize),
    Send(Message),
    /// `hb_send_resources_held(TRUE, info)` from a child: it reads the holdings (shared
    /// memory in 3.0.6) when it sends.
    SendHeld(&'static str),
}

pub struct HeartbeatNode {
    me: String,
    peer: String,
    /// Per group: its key, whether its preferred node is us, and its resource count.
    groups: Vec<(String, bool, usize)>,
    auto_failback: bool,
    state: State,
    other_is_stable: bool,
    other_holds: u8,
    i_hold: u8,
    going_standby: Standby,
    standby_running: Option<Duration>,
    standby_rsctype: u8,
    rsc_needs_failback: bool,
    failback_retry: Option<Duration>,
    takeover_in_progress: bool,
    local_takeover_time: Option<Duration>,
    shutdown_in_progress: bool,
    rsc_needs_shutdown: bool,
    comm_up: bool,
    /// Children waiting to run, one after the other.
    queue: VecDeque<Vec<Step>>,
    /// The running child's remaining steps.
    child: Option<VecDeque<Step>>,
    /// What `ResourceManager status` would say of each resource.
    up: Vec<Vec<bool>>,
    pending: Option<(usize, usize, AgentAction)>,
    stopped: bool,
    /// Messages to send at the end of the current input.
    out: Vec<Output>,
    now: Duration,
}

impl HeartbeatNode {
    /// `groups`: (key, preferred node is us, resource count), in haresources order.
    pub fn new(
        me: &str,
        peer: &str,
        groups: Vec<(String, bool, usize)>,
        auto_failback: bool,
    ) -> Self {
        let up = groups.iter().map(|(_, _, n)| vec![false; *n]).collect();
        HeartbeatNode {
            me: me.to_string(),
            peer: peer.to_string(),
            groups,
            auto_failback,
            state: State::Init,
            other_is_stable: false,
            other_holds: 0,
            i_hold: 0,
            going_standby: Standby::Not,
            standby_running: None,
            standby_rsctype: ALL,
            rsc_needs_failback: false,
            failback_retry: None,
            takeover_in_progress: false,
            local_takeover_time: None,
            shutdown_in_progress: false,
            rsc_needs_shutdown: false,
            comm_up: false,
            queue: VecDeque::new(),
            child: None,
            up,
            pending: None,
            stopped: false,
            out: Vec::new(),
            now: Duration::ZERO,
        }
    }

    pub fn handle(&mut self, input: Input, now: Duration) -> Vec<Output> {
        if self.stopped {
            return Vec::new();
        }
        self.now = now;
        self.timers();
        match input {
            Input::Membership(event) => self.membership(event),
            Input::Delivered { from, message } => self.delivered(&from, &message),
            Input::OperationDone {
                group,
                resource,
                action,
                status,
            } => self.operation_done(group, resource, action, status),
            // The stand-in, like the simulated vigil nodes, has no STONITH device.
            Input::Timer | Input::FenceDone { .. } => {}
            Input::Standby(set) => {
                // hb_standby writes `ask_resources … info=me` to the FIFO; it refuses `none`.
                if set != vigil::failover::HoldSet::None {
                    self.send(ask(set.as_str(), "me"));
                }
            }
            Input::Takeover(set) => {
                let mut m = Message::with_type("hb_takeover");
                m.push_str("rsc_hold", set.as_str());
                self.send(m);
            }
            Input::Shutdown => self.giveup_resources(),
        }
        self.run_children();
        std::mem::take(&mut self.out)
    }

    pub fn next_deadline(&self) -> Option<Duration> {
        if self.stopped {
            return None;
        }
        let rscrcvd = (self.state == State::RscRcvd)
            .then_some(self.local_takeover_time)
            .flatten()
            .map(|t| t + Duration::from_millis(1));
        [rscrcvd, self.failback_retry].into_iter().flatten().min()
    }

    pub fn local_state(&self, group: usize) -> LocalGroupState {
        let up = &self.up[group];
        let busy = self.pending.is_some_and(|(g, _, _)| g == group);
        if up.iter().all(|u| *u) && !busy {
            LocalGroupState::Running
        } else if up.iter().any(|u| *u) || busy {
            LocalGroupState::Starting
        } else {
            LocalGroupState::Stopped
        }
    }

    fn send(&mut self, message: Message) {
        self.out.push(Output::Send(message));
    }

    fn timers(&mut self) {
        if self.state == State::RscRcvd && self.local_takeover_time.is_some_and(|t| self.now > t) {
            self.state = State::Stable;
            self.req_our_resources(false);
            self.send_resources_held(true, None);
        }
        if self.failback_retry.is_some_and(|t| self.now >= t) {
            self.failback_retry = None;
            self.perform_auto_failback();
        }
    }

    fn membership(&mut self, event: MembershipEvent) {
        match event {
            MembershipEvent::CommunicationsUp => {
                self.comm_up = true;
                // send_local_starting
                self.send(Message::with_type("starting"));
                self.state = State::Starting;
            }
            MembershipEvent::NodeStatus {
                node,
                new: NodeStatus::Dead,
                ..
            } if node == self.peer => self.recover_dead_resources(),
            _ => {}
        }
    }

    fn is_stable(&self) -> bool {
        if self.shutdown_in_progress && self.state == State::Init {
            return true;
        }
        self.other_is_stable
            && !self.takeover_in_progress
            && self.going_standby == Standby::Not
            && self.standby_running.is_none()
            && self.child.is_none()
            && self.queue.is_empty()
            && matches!(self.state, State::Stable | State::Shutdown | State::Init)
    }

    fn recover_dead_resources(&mut self) {
        if self.going_standby != Standby::Not {
            self.going_standby = Standby::Not;
            self.standby_running = None;
            if !self.other_is_stable && self.i_hold & ALL == ALL {
                self.other_is_stable = true;
            }
            self.shutdown_if_needed();
        }
        if self.shutdown_in_progress {
            return;
        }
        self.rsc_needs_failback = true;
        // No STONITH device: take over whatever the dead node held (or might have).
        if self.other_holds == 0 {
            if self.i_hold & ALL == ALL {
                self.other_is_stable = true;
                return;
            }
            if self.i_hold & LOCAL == 0 {
                self.req_our_resources(true);
            }
            if self.i_hold & FOREIGN == 0 {
                self.takeover_from_node();
            }
        } else {
            self.takeover_from_node();
        }
    }

    fn takeover_from_node(&mut self) {
        if self.shutdown_in_progress {
            self.shutdown_if_needed();
            return;
        }
        // mach_down: takegroup every group the dead node prefers, then announce.
        let mut steps: Vec<Step> = (0..self.groups.len())
            .filter(|&g| !self.groups[g].1)
            .map(Step::Take)
            .collect();
        let mut done = Message::with_type("resource");
        done.push_str("rsc_hold", "foreign");
        done.push_str("info", "mach_down");
        steps.push(Step::Send(done));
        self.queue.push_back(steps);
        self.i_hold |= FOREIGN;
        self.other_holds = 0;
        self.other_is_stable = true;
        self.takeover_in_progress = true;
        self.req_our_resources(true);
    }

    fn req_our_resources(&mut self, anyway: bool) {
        if self.shutdown_in_progress {
            return;
        }
        if (self.other_holds & FOREIGN != 0 || self.i_hold & LOCAL != 0)
            && !anyway
            && self.going_standby == Standby::Not
        {
            return;
        }
        self.i_hold |= LOCAL;
        // req_resource (nice_failback: HA_DONTASK) answers itself with ip-request-resp; the
        // takegroup of rc.d/ip-request-resp runs as a queued job when that message is back.
        let mut steps = Vec::new();
        for (key, local, _) in &self.groups {
            if *local {
                let mut resp = Message::with_type("ip-request-resp");
                resp.push_str("dest", &self.me);
                resp.push_str("ipaddr", key);
                resp.push_str("weown", "yes");
                resp.push_str("ok", "OK");
                steps.push(Step::Send(resp));
            }
        }
        steps.push(Step::SendHeld("req_our_resources()"));
        self.queue.push_back(steps);
    }

    fn resources_held(&self, stable: bool, info: Option<&str>) -> Message {
        let mut m = Message::with_type("resource");
        m.push_str("rsc_hold", word(self.i_hold));
        m.push_str("rtype", "full");
        m.push_str("isstable", if stable { "1" } else { "0" });
        if let Some(info) = info {
            m.push_str("info", info);
        }
        m
    }

    fn send_resources_held(&mut self, stable: bool, info: Option<&str>) {
        let m = self.resources_held(stable, info);
        self.send(m);
    }

    fn perform_auto_failback(&mut self) {
        if self.shutdown_in_progress
            || self.i_hold & FOREIGN == 0
            || !self.rsc_needs_failback
            || !self.auto_failback
        {
            self.rsc_needs_failback = false;
            self.shutdown_if_needed();
            return;
        }
        if self.going_standby != Standby::Not
            || !self.other_is_stable
            || self.state != State::Stable
        {
            self.failback_retry = Some(self.now + FAILBACK_RETRY);
            return;
        }
        self.standby_rsctype = FOREIGN;
        self.send(ask("foreign", "me"));
        self.rsc_needs_failback = false;
    }

    fn delivered(&mut self, from: &str, message: &Message) {
        // 3.0.6 checks the standby timer whenever a cluster message arrives.
        if let Some(deadline) = self.standby_running
            && self.now >= deadline
        {
            self.standby_running = None;
            self.other_is_stable = true;
            self.going_standby = Standby::Not;
            self.shutdown_if_needed();
        }
        let ours = from == self.me;
        match message.message_type() {
            Some("starting") | Some("resource") if self.comm_up => {
                self.process_resources(message, ours)
            }
            Some("ask_resources") if self.comm_up => self.ask_for_resources(message, ours),
            Some("shutdone") => {
                if self.comm_up {
                    self.process_resources(message, ours);
                }
                if ours {
                    self.stopped = true;
                    self.out.push(Output::ShutdownComplete);
                } else {
                    self.other_is_stable = false;
                    self.other_holds = 0;
                    self.takeover_from_node();
                }
            }
            Some("hb_takeover") if !ours && self.comm_up => {
                // rc.d/hb_takeover runs hb_standby with the complementary set.
                let set = match message.get_str("rsc_hold") {
                    Some("local") => "foreign",
                    Some("foreign") => "local",
                    _ => "all",
                };
                self.send(ask(set, "me"));
            }
            Some("ip-request-resp") if ours => {
                // rc.d/ip-request-resp: takegroup, queued as a notify_world job.
                if let Some(g) = message
                    .get_str("ipaddr")
                    .and_then(|k| self.groups.iter().position(|(key, _, _)| key == k))
                {
                    self.queue.push_back(vec![Step::Take(g)]);
                }
            }
            _ => {}
        }
    }

    fn process_resources(&mut self, message: &Message, ours: bool) {
        self.shutdown_if_needed();
        let mut new_state = self.state;
        let kind = message.message_type().unwrap_or("");
        if kind == "starting" && !ours {
            match self.state {
                State::RscRcvd | State::Stable | State::Shutdown => {}
                State::Starting => new_state = State::BothStarting,
                _ => return,
            }
            self.other_is_stable = false;
            let stable = self.state == State::Stable;
            self.send_resources_held(stable, None);
        }
        if kind == "resource" {
            let Some(hold) = message.get_str("rsc_hold") else {
                return;
            };
            let n = bits_of(hold);
            let full = message.get_str("rtype") == Some("full");
            match self.state {
                State::BothStarting | State::Starting => new_state = State::RscRcvd,
                State::RscRcvd | State::Stable | State::Shutdown => {}
                _ => return,
            }
            let update = |cur: u8| {
                if full {
                    n
                } else if n == 0 {
                    0
                } else {
                    n | cur
                }
            };
            if !ours {
                self.other_holds = update(self.other_holds);
                match message.get_str("isstable") {
                    Some("1") if !self.other_is_stable => {
                        self.other_is_stable = true;
                        let stable = self.state == State::Stable;
                        self.send_resources_held(stable, None);
                        self.perform_auto_failback();
                    }
                    Some("1") | None => {}
                    Some(_) => self.other_is_stable = false,
                }
                if !matches!(self.state, State::Stable | State::Shutdown) && self.other_is_stable {
                    self.req_our_resources(false);
                    new_state = State::Stable;
                    self.send_resources_held(true, None);
                    self.perform_auto_failback();
                }
            } else {
                self.i_hold = update(self.i_hold);
                match message.get_str("info") {
                    Some("mach_down") => {
                        self.takeover_in_progress = false;
                        self.i_hold |= FOREIGN;
                        self.rsc_needs_failback = true;
                        self.other_is_stable = true;
                    }
                    Some("shutdown") => new_state = State::Shutdown,
                    _ => {}
                }
            }
        }
        if kind == "shutdone" {
            if !ours {
                self.other_is_stable = true;
                self.other_holds = 0;
                if self.i_hold != ALL && !self.shutdown_in_progress {
                    let rtype = match self.i_hold {
                        FOREIGN => LOCAL,
                        LOCAL => FOREIGN,
                        _ => ALL,
                    };
                    self.going_standby = Standby::Done;
                    self.go_standby(false, rtype);
                }
            } else {
                new_state = State::Shutdown;
                self.i_hold = 0;
            }
        }
        self.state = new_state;
        if self.state == State::RscRcvd && self.local_takeover_time.is_none() {
            self.local_takeover_time = Some(self.now + RQSTDELAY);
        }
        self.shutdown_if_needed();
    }

    fn ask_for_resources(&mut self, message: &Message, ours: bool) {
        if self.state == State::Shutdown {
            return;
        }
        let Some(info) = message.get_str("info") else {
            return;
        };
        let rtype = message.get_str("rsc_hold").map_or(ALL, bits_of);
        if self.standby_running.is_some_and(|t| self.now < t) && info == "me" {
            return;
        }
        match self.going_standby {
            Standby::Not => {
                if !self.other_is_stable || self.state != State::Stable {
                    return;
                }
                self.standby_rsctype = rtype;
                if info == "me" {
                    self.other_is_stable = false;
                    if ours {
                        self.standby_running = Some(self.now + STANDBY_INIT_TO);
                        self.going_standby = Standby::Me;
                    } else {
                        self.going_standby = Standby::Other;
                        self.send(ask(word(rtype), "other"));
                        self.standby_running = Some(self.now + STANDBY_RSC_TO);
                    }
                }
            }
            Standby::Me => {
                if !ours {
                    self.standby_rsctype = rtype;
                    self.standby_running = Some(self.now + STANDBY_RSC_TO);
                    if info == "other" {
                        self.go_standby(true, rtype);
                    }
                } else if info == "done" {
                    self.going_standby = Standby::Done;
                    self.i_hold &= !self.standby_rsctype;
                    self.standby_running = Some(self.now + STANDBY_RSC_TO);
                }
            }
            Standby::Other => {
                self.standby_rsctype = rtype;
                if info == "done" {
                    self.standby_running = Some(self.now + STANDBY_RSC_TO);
                    if !ours {
                        self.go_standby(false, self.standby_rsctype);
                        self.going_standby = Standby::Done;
                    }
                }
            }
            Standby::Done => {
                self.standby_rsctype = rtype;
                if info == "done" {
                    self.standby_running = None;
                    self.going_standby = Standby::Not;
                    if ours {
                        let rup = match rtype {
                            LOCAL => FOREIGN,
                            FOREIGN => LOCAL,
                            ALL => ALL,
                            _ => 0,
                        };
                        self.i_hold |= rup;
                    }
                    self.send_resources_held(true, None);
                    self.going_standby = Standby::Not;
                }
            }
        }
        self.shutdown_if_needed();
    }

    /// `go_standby`: `me` gives the set up, `other` (false) acquires its complement.
    fn go_standby(&mut self, me: bool, set: u8) {
        if me {
            self.other_is_stable = false;
            self.i_hold &= !set;
            self.send_resources_held(false, Some("standby"));
        }
        if set == 0 {
            // "no resources to give up": the child exits without `done`.
            return;
        }
        let act = match set {
            FOREIGN => {
                if me {
                    FOREIGN
                } else {
                    LOCAL
                }
            }
            LOCAL => {
                if me {
                    LOCAL
                } else {
                    FOREIGN
                }
            }
            _ => ALL,
        };
        let keys: Vec<usize> = (0..self.groups.len())
            .filter(|&g| {
                let local = self.groups[g].1;
                act == ALL || (act == LOCAL && local) || (act == FOREIGN && !local)
            })
            .collect();
        let mut steps: Vec<Step> = keys
            .into_iter()
            .map(|g| if me { Step::Give(g) } else { Step::Take(g) })
            .collect();
        steps.push(Step::Send(ask(word(self.standby_rsctype), "done")));
        self.queue.push_back(steps);
    }

    fn shutdown_if_needed(&mut self) {
        if self.rsc_needs_shutdown {
            self.giveup_resources();
        }
    }

    fn giveup_resources(&mut self) {
        if !self.is_stable() {
            self.rsc_needs_shutdown = true;
            return;
        }
        self.rsc_needs_shutdown = false;
        if self.shutdown_in_progress {
            return;
        }
        self.shutdown_in_progress = true;
        self.i_hold = 0;
        self.state = State::Shutdown;
        self.send_resources_held(false, Some("shutdown"));
        let mut steps: Vec<Step> = (0..self.groups.len()).map(Step::Give).collect();
        let mut shutdone = Message::with_type("shutdone");
        shutdone.push_str("st", "dead");
        steps.push(Step::Send(shutdone));
        self.queue.push_back(steps);
    }

    fn operation_done(
        &mut self,
        group: usize,
        resource: usize,
        action: AgentAction,
        status: OcfStatus,
    ) {
        if self.pending != Some((group, resource, action)) {
            return;
        }
        self.pending = None;
        if status == OcfStatus::Success {
            self.up[group][resource] = action == AgentAction::Start;
        }
    }

    /// Runs the current child until it waits for an operation, then the next ones.
    fn run_children(&mut self) {
        loop {
            if self.pending.is_some() {
                return;
            }
            if self.child.is_none() {
                match self.queue.pop_front() {
                    Some(steps) => self.child = Some(steps.into()),
                    None => {
                        self.shutdown_if_needed();
                        if self.child.is_none() && self.queue.is_empty() {
                            return;
                        }
                        continue;
                    }
                }
            }
            let Some(child) = self.child.as_mut() else {
                return;
            };
            let Some(step) = child.front().cloned() else {
                self.child = None;
                continue;
            };
            match step {
                // 3.0.6 may still run a queued `takegroup` after its shutdown began (a race of
                // its own); the double does not, so that its shutdown can be checked.
                Step::Take(_) if self.shutdown_in_progress => {
                    child.pop_front();
                }
                Step::Take(g) => match self.up[g].iter().position(|u| !u) {
                    Some(r) => {
                        self.pending = Some((g, r, AgentAction::Start));
                        self.out.push(Output::Run {
                            group: g,
                            resource: r,
                            action: AgentAction::Start,
                        });
                        return;
                    }
                    None => {
                        child.pop_front();
                    }
                },
                Step::Give(g) => match self.up[g].iter().rposition(|u| *u) {
                    Some(r) => {
                        self.pending = Some((g, r, AgentAction::Stop));
                        self.out.push(Output::Run {
                            group: g,
                            resource: r,
                            action: AgentAction::Stop,
                        });
                        return;
                    }
                    None => {
                        child.pop_front();
                    }
                },
                Step::Send(message) => {
                    child.pop_front();
                    self.send(message);
                }
                Step::SendHeld(info) => {
                    child.pop_front();
                    self.send_resources_held(true, Some(info));
                }
            }
        }
    }
}

fn ask(set: &str, info: &str) -> Message {
    let mut m = Message::with_type("ask_resources");
    m.push_str("rsc_hold", set);
    m.push_str("info", info);
    m
}
