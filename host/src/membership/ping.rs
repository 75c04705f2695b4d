//! Ping pseudo-nodes (spec §1.13): a router or group of routers, configured with `ping` or
//! `ping_group`, watched like a node of type `ping`.
//!
//! Owns what a ping node is to membership: its status (`init`, then `ping` while it answers,
//! `dead` after `deadping` of silence; `initdead` before communications are up, as for every
//! node), its one link named after it, the probe our status turns into on its medium, and
//! what its answer does. A ping node has no sequence numbers, acknowledgements,
//! retransmissions or generation, never becomes `active`, never blocks communications from
//! coming up and is never a member for resources (its status is not `is_alive`).
//!
//! The probe is Heartbeat's: for each of our own `status` messages, its ping medium sends
//! `t=NS_st st=ping info=<ping|ping_group> src=<ping node> ts=<our status ts>`, signed, as an
//! ICMP echo, and the echo reply brings the same frame back. Only a verified frame naming
//! the medium's own ping node, with `st=ping`, proves it alive, and only when its `ts` is
//! recent, so a captured answer cannot be replayed later to fake a live router. Nothing here
//! touches a socket or a clock.

use std::time::Duration;

use super::events::{DropReason, MembershipEvent, NodeStatus};
use super::fields::{self, parse_hex};
use super::status::{LinkState, NodeState};
use super::{Comm, MediumId, Membership, Now, Output};
use crate::wire::Message;

/// The message type of a ping probe and its answer.
const T_PING_STATUS: &str = "NS_st";
/// The status a ping probe announces, and a live ping node's status.
const PING_STATUS: &str = "ping";
/// The `cl_status nodetype` of a ping node.
pub const PING_NODE_TYPE: &str = "ping";

/// One ping node as configured: the medium that probes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingNodeConfig {
    /// The node's name: the host as written on a `ping` line, or a `ping_group`'s name.
    pub name: String,
    /// The medium that pings it (index in the runtime's list).
    pub medium: MediumId,
}

/// The ping nodes of a cluster and how long they may stay silent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PingConfig {
    /// One per `ping` host and per `ping_group`.
    pub nodes: Vec<PingNodeConfig>,
    /// Silence after which a ping node is `dead` (`deadping`, by default the deadtime).
    pub deadping: Duration,
}

/// What the machine remembers about one ping node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TrackedPing {
    /// Lower-case name.
    name: String,
    medium: MediumId,
    status: NodeStatus,
    /// When its last answer arrived (start time until then).
    last_heard: Duration,
}

/// Every ping node, in configuration order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct PingNodes {
    nodes: Vec<TrackedPing>,
    deadping: Duration,
}

impl PingNodes {
    pub(super) fn new(config: PingConfig) -> Self {
        let mut nodes: Vec<TrackedPing> = Vec::with_capacity(config.nodes.len());
        for node in config.nodes {
            let name = node.name.to_ascii_lowercase();
            if nodes.iter().any(|n| n.name == name) {
                continue;
            }
            nodes.push(TrackedPing {
                name,
                medium: node.medium,
                status: NodeStatus::Init,
                last_heard: Duration::ZERO,
            });
        }
        Self {
            nodes,
            deadping: config.deadping.max(Duration::from_millis(1)),
        }
    }

    /// Whether `medium` is a ping medium (its frames never reach the normal path).
    pub(super) fn is_ping_medium(&self, medium: MediumId) -> bool {
        self.nodes.iter().any(|n| n.medium == medium)
    }
}

/// The probe our status `message` turns into on a medium of directive `kind` (`ping` or
/// `ping_group`) pinging `node`, or `None` for anything but our own status.
pub fn probe(kind: &str, node: &str, status: &Message) -> Option<Message> {
    if status.message_type() != Some(fields::T_STATUS) {
        return None;
    }
    let ts = status.get_str(fields::TIMESTAMP)?;
    let mut probe = Message::with_type(T_PING_STATUS);
    probe.push_str(fields::STATUS, PING_STATUS);
    probe.push_str(fields::INFO, kind);
    probe.push_str(fields::SRC, node);
    probe.push_str(fields::TIMESTAMP, ts);
    Some(probe)
}

impl Membership {
    /// Gives the machine its ping nodes; called once, before [`super::Input::Start`]. Their
    /// media stop being links of the normal nodes (a ping medium reaches no node), so they
    /// are taken out of link accounting here.
    pub fn with_ping_nodes(mut self, config: PingConfig) -> Membership {
        self.ping = PingNodes::new(config);
        let mut link_names: Vec<String> = Vec::new();
        let mut medium_links = Vec::with_capacity(self.settings.medium_links.len());
        for (medium, &link) in self.settings.medium_links.iter().enumerate() {
            if self.ping.is_ping_medium(medium) {
                medium_links.push(None);
                continue;
            }
            let Some(name) = link.and_then(|l| self.settings.link_names.get(l)) else {
                medium_links.push(None);
                continue;
            };
            let index = match link_names.iter().position(|l| l == name) {
                Some(index) => index,
                None => {
                    link_names.push(name.clone());
                    link_names.len() - 1
                }
            };
            medium_links.push(Some(index));
        }
        for node in &mut self.nodes {
            node.links.truncate(link_names.len());
        }
        self.settings.link_names = link_names;
        self.settings.medium_links = medium_links;
        self
    }

    /// The ping nodes' clocks start with ours.
    pub(super) fn start_ping_nodes(&mut self, now: Now) {
        for node in &mut self.ping.nodes {
            node.last_heard = now.mono;
        }
    }

    /// The silence after which a ping node is dead now.
    fn ping_deadtime(&self) -> Duration {
        if self.comm == Comm::Starting {
            self.settings.initdead
        } else {
            self.ping.deadping
        }
    }

    /// The earliest moment a ping node goes dead, if one is not dead yet.
    pub(super) fn next_ping_deadline(&self) -> Option<Duration> {
        let deadtime = self.ping_deadtime();
        self.ping
            .nodes
            .iter()
            .filter(|n| n.status != NodeStatus::Dead)
            .map(|n| n.last_heard + deadtime)
            .min()
    }

    /// Declares dead every ping node silent for its deadtime.
    pub(super) fn expire_ping_nodes(&mut self, now: Now, out: &mut Vec<Output>) {
        let deadtime = self.ping_deadtime();
        for index in 0..self.ping.nodes.len() {
            let Some(node) = self.ping.nodes.get(index) else {
                continue;
            };
            if node.status != NodeStatus::Dead && now.mono >= node.last_heard + deadtime {
                self.set_ping_status(index, NodeStatus::Dead, out);
            }
        }
    }

    /// Takes a frame that arrived on a ping medium; returns `false` when `medium` is not
    /// one, so the normal path handles the frame.
    pub(super) fn receive_on_ping_medium(
        &mut self,
        medium: MediumId,
        message: &Message,
        now: Now,
        out: &mut Vec<Output>,
    ) -> bool {
        let Some(index) = self.ping.nodes.iter().position(|n| n.medium == medium) else {
            return false;
        };
        let src = message.get_str(fields::SRC).map(str::to_ascii_lowercase);
        // The runtime loops our own messages back on every medium, this one included.
        if src.as_deref() == Some(self.local_name()) {
            return true;
        }
        let name = self.ping.nodes.get(index).map(|n| n.name.clone());
        if message.message_type() != Some(T_PING_STATUS)
            || message.get_str(fields::STATUS) != Some(PING_STATUS)
            || src != name
        {
            self.drop_message(DropReason::UnknownNode, src, out);
            return true;
        }
        if !self.probe_is_recent(message, now) {
            self.drop_message(DropReason::MalformedField, src, out);
            return true;
        }
        if let Some(node) = self.ping.nodes.get_mut(index) {
            node.last_heard = now.mono;
        }
        self.set_ping_status(index, NodeStatus::Ping, out);
        true
    }

    /// Whether an answer's `ts` (our own, from the probe) is no older than the ping
    /// deadtime plus a second of rounding; a clock stepped back makes it newer, which is
    /// accepted.
    fn probe_is_recent(&self, message: &Message, now: Now) -> bool {
        let Some(ts) = message.get_str(fields::TIMESTAMP).and_then(parse_hex) else {
            return false;
        };
        let window = self.ping_deadtime().as_secs() + 2;
        ts.saturating_add(window) >= now.wall_secs
    }

    fn set_ping_status(&mut self, index: usize, new: NodeStatus, out: &mut Vec<Output>) {
        let Some(node) = self.ping.nodes.get_mut(index) else {
            return;
        };
        let old = node.status;
        if old == new {
            return;
        }
        node.status = new;
        let name = node.name.clone();
        // The link is up while the node answers; `init` → `dead` changes nothing on it.
        if old == NodeStatus::Ping || new == NodeStatus::Ping {
            Self::event(
                out,
                MembershipEvent::LinkStatus {
                    node: name.clone(),
                    link: name.clone(),
                    up: new == NodeStatus::Ping,
                },
            );
        }
        Self::event(
            out,
            MembershipEvent::NodeStatus {
                node: name,
                old,
                new,
            },
        );
    }

    /// The ping nodes as the API shows them, after the normal nodes.
    pub(super) fn ping_node_states(&self) -> impl Iterator<Item = NodeState> + '_ {
        let deadtime_ms = u64::try_from(self.ping_deadtime().as_millis()).unwrap_or(u64::MAX);
        self.ping.nodes.iter().map(move |node| NodeState {
            name: node.name.clone(),
            node_type: PING_NODE_TYPE.to_string(),
            status: node.status,
            generation: 0,
            last_seq: None,
            deadtime_ms,
            missing: 0,
            links: vec![LinkState {
                name: node.name.clone(),
                up: node.status == NodeStatus::Ping,
            }],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::{Input, MembershipConfig};

    const WALL: u64 = 1_795_330_974;

    fn at(ms: u64) -> Now {
        Now {
            mono: Duration::from_millis(ms),
            wall_secs: WALL + ms / 1000,
        }
    }

    /// hb1 and hb2 over `eth0` (medium 0), router `198.18.0.254` pinged on medium 1,
    /// deadtime 1 s, initdead 2 s, deadping 1.5 s.
    fn machine() -> Membership {
        let mut machine = Membership::new(MembershipConfig {
            local_node: "hb1".into(),
            local_uuid: [1; 16],
            nodes: vec!["hb1".into(), "hb2".into()],
            links: vec!["eth0".into(), "198.18.0.254".into()],
            keepalive: Duration::from_millis(200),
            deadtime: Duration::from_millis(1000),
            warntime: Duration::from_millis(500),
            initdead: Duration::from_millis(2000),
            max_rexmit_delay: Duration::from_millis(250),
            hopfudge: 1,
            generation: 0x6b02_8f9f,
            rng_seed: 7,
        })
        .with_ping_nodes(PingConfig {
            nodes: vec![PingNodeConfig {
                name: "198.18.0.254".into(),
                medium: 1,
            }],
            deadping: Duration::from_millis(1500),
        });
        machine.handle(Input::Start, at(0));
        machine
    }

    /// The answer a router gives to the probe of our status sent at `ms`.
    fn answer(machine: &Membership, ms: u64) -> Message {
        let mut status = Message::with_type("status");
        status.push_str("src", machine.local_name());
        status.push_str("ts", &format!("{:x}", at(ms).wall_secs));
        probe("ping", "198.18.0.254", &status).expect("our status has a probe")
    }

    fn router(machine: &Membership) -> NodeState {
        machine
            .status()
            .nodes
            .into_iter()
            .find(|n| n.name == "198.18.0.254")
            .expect("the ping node is listed")
    }

    fn status_events(outputs: &[Output]) -> Vec<(String, NodeStatus, NodeStatus)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Event(MembershipEvent::NodeStatus { node, old, new }) => {
                    Some((node.clone(), *old, *new))
                }
                _ => None,
            })
            .collect()
    }

    fn receive(machine: &mut Membership, medium: usize, message: Message, ms: u64) -> Vec<Output> {
        machine.handle(Input::Received { medium, message }, at(ms))
    }

    #[test]
    fn the_probe_is_heartbeats_ns_st_for_the_ping_node_with_our_status_timestamp() {
        let mut status = Message::with_type("status");
        status.push_str("st", "active");
        status.push_str("src", "hb1");
        status.push_str("ts", "6b028f9f");
        let probe = probe("ping_group", "routers", &status).expect("a status");
        let fields: Vec<(&str, Option<&str>)> = ["t", "st", "info", "src", "ts"]
            .into_iter()
            .map(|f| (f, probe.get_str(f)))
            .collect();
        assert_eq!(
            fields,
            [
                ("t", Some("NS_st")),
                ("st", Some("ping")),
                ("info", Some("ping_group")),
                ("src", Some("routers")),
                ("ts", Some("6b028f9f")),
            ]
        );
        assert_eq!(probe.fields().len(), 5, "nothing else: {probe}");
        let mut other = Message::with_type("NS_ackmsg");
        other.push_str("ts", "1");
        assert_eq!(super::probe("ping", "r", &other), None);
    }

    #[test]
    fn a_ping_node_is_listed_with_type_ping_and_its_own_link_and_is_no_link_of_peers() {
        let machine = machine();
        let status = machine.status();
        let names: Vec<(&str, &str)> = status
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.node_type.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("hb1", "normal"),
                ("hb2", "normal"),
                ("198.18.0.254", "ping")
            ]
        );
        let hb2 = &status.nodes[1];
        let links: Vec<&str> = hb2.links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(links, ["eth0"], "a ping medium reaches no node");
        let router = router(&machine);
        assert_eq!(router.status, NodeStatus::Init);
        assert_eq!(router.links[0].name, "198.18.0.254");
        assert!(!router.links[0].up);
    }

    #[test]
    fn an_answer_makes_the_ping_node_ping_and_deadping_of_silence_makes_it_dead() {
        let mut machine = machine();
        let reply = answer(&machine, 100);
        let outputs = receive(&mut machine, 1, reply, 100);
        assert_eq!(
            status_events(&outputs),
            [(
                "198.18.0.254".to_string(),
                NodeStatus::Init,
                NodeStatus::Ping
            )]
        );
        assert!(
            outputs.contains(&Output::Event(MembershipEvent::LinkStatus {
                node: "198.18.0.254".into(),
                link: "198.18.0.254".into(),
                up: true,
            }))
        );
        assert_eq!(router(&machine).status, NodeStatus::Ping);
        assert!(!NodeStatus::Ping.is_alive(), "never a member");

        // hb2 answers too, so communications come up and deadping applies.
        let mut hb2 = Message::with_type("status");
        for (field, value) in [("st", "up"), ("src", "hb2"), ("seq", "1"), ("hg", "5")] {
            hb2.push_str(field, value);
        }
        hb2.push_str("ts", &format!("{:x}", WALL));
        hb2.push_str("dt", "3e8");
        hb2.push_str("protocol", "1");
        receive(&mut machine, 0, hb2, 150);
        let mut repnodes = Message::with_type("repnodes");
        for (field, value) in [("src", "hb2"), ("seq", "2"), ("hg", "5"), ("dest", "hb1")] {
            repnodes.push_str(field, value);
        }
        repnodes.push_str("ts", &format!("{:x}", WALL));
        repnodes.push_str("nodelist", "hb1 hb2");
        receive(&mut machine, 0, repnodes, 160);
        assert!(machine.status().communications_up);
        assert_eq!(router(&machine).deadtime_ms, 1500);

        let reply = answer(&machine, 1000);
        receive(&mut machine, 1, reply, 1000);
        assert_eq!(
            machine
                .next_deadline()
                .map(|d| d <= Duration::from_millis(2500)),
            Some(true)
        );
        let outputs = machine.handle(Input::Timer, at(2499));
        assert!(
            status_events(&outputs)
                .iter()
                .all(|(n, ..)| n != "198.18.0.254")
        );
        let outputs = machine.handle(Input::Timer, at(2500));
        assert!(status_events(&outputs).contains(&(
            "198.18.0.254".to_string(),
            NodeStatus::Ping,
            NodeStatus::Dead
        )));
        assert_eq!(router(&machine).status, NodeStatus::Dead);
        assert!(!router(&machine).links[0].up);

        // It comes back with its next answer.
        let reply = answer(&machine, 2600);
        let outputs = receive(&mut machine, 1, reply, 2600);
        assert!(status_events(&outputs).contains(&(
            "198.18.0.254".to_string(),
            NodeStatus::Dead,
            NodeStatus::Ping
        )));
    }

    #[test]
    fn a_ping_node_never_heard_goes_dead_after_initdead_and_does_not_hold_communications() {
        let mut machine = machine();
        let outputs = machine.handle(Input::Timer, at(1999));
        assert!(
            status_events(&outputs)
                .iter()
                .all(|(n, ..)| n != "198.18.0.254")
        );
        let outputs = machine.handle(Input::Timer, at(2000));
        assert!(status_events(&outputs).contains(&(
            "198.18.0.254".to_string(),
            NodeStatus::Init,
            NodeStatus::Dead
        )));
        assert!(
            machine.status().communications_up,
            "hb2 dead and the router are no reason to wait"
        );
    }

    #[test]
    fn only_a_recent_answer_naming_the_mediums_own_ping_node_counts() {
        let mut machine = machine();
        let mut wrong_node = answer(&machine, 100);
        wrong_node.set("src", crate::wire::FieldValue::String("hb2".into()));
        let outputs = receive(&mut machine, 1, wrong_node, 100);
        assert!(outputs.contains(&Output::Dropped {
            reason: DropReason::UnknownNode,
            node: Some("hb2".into()),
        }));
        let mut not_ping = answer(&machine, 100);
        not_ping.set("st", crate::wire::FieldValue::String("active".into()));
        receive(&mut machine, 1, not_ping, 100);
        // An answer to a probe sent long ago is a replay.
        let old = answer(&machine, 0);
        let outputs = receive(&mut machine, 1, old, 60_000);
        assert!(outputs.contains(&Output::Dropped {
            reason: DropReason::MalformedField,
            node: Some("198.18.0.254".into()),
        }));
        // A ping answer on the cluster link is no ping node's either.
        let reply = answer(&machine, 60_000);
        receive(&mut machine, 0, reply, 60_000);
        assert_ne!(router(&machine).status, NodeStatus::Ping);
        // Our own status looped back on the ping medium is ignored quietly.
        let mut own = Message::with_type("status");
        own.push_str("src", "hb1");
        own.push_str("ts", "1");
        let outputs = receive(&mut machine, 1, own, 60_000);
        assert!(!outputs.iter().any(|o| matches!(o, Output::Dropped { .. })));
    }
}
