//! Unit tests of the membership machine, one per rule, driven with simulated time.

use std::time::Duration;

use super::*;
use crate::wire::FieldValue;

const WALL: u64 = 1_795_330_974;
const HB1_UUID: [u8; 16] = [1; 16];
const HB2_UUID: [u8; 16] = [2; 16];

fn config(local: &str, nodes: &[&str], links: &[&str]) -> MembershipConfig {
    MembershipConfig {
        local_node: local.to_string(),
        local_uuid: HB1_UUID,
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
        links: links.iter().map(|l| l.to_string()).collect(),
        keepalive: Duration::from_millis(200),
        deadtime: Duration::from_millis(1000),
        warntime: Duration::from_millis(500),
        initdead: Duration::from_millis(2000),
        max_rexmit_delay: Duration::from_millis(250),
        hopfudge: 1,
        generation: 0x6b02_8f9f,
        rng_seed: 7,
    }
}

fn at(ms: u64) -> Now {
    Now {
        mono: Duration::from_millis(ms),
        wall_secs: WALL + ms / 1000,
    }
}

/// A peer that writes messages the way 3.0.6 does.
struct Peer {
    name: &'static str,
    uuid: [u8; 16],
    generation: u64,
    seq: u64,
}

impl Peer {
    fn hb2() -> Self {
        Peer {
            name: "hb2",
            uuid: HB2_UUID,
            generation: 0x6b02_8f90,
            seq: 0,
        }
    }

    fn standard(&self, message: &mut Message, seq: Option<u64>) {
        message.push_str("src", self.name);
        message.push("srcuuid", FieldValue::Binary(self.uuid.to_vec()));
        if let Some(seq) = seq {
            message.push_str("seq", &format!("{seq:x}"));
        }
        message.push_str("hg", &format!("{:x}", self.generation));
        message.push_str("ts", &format!("{WALL:x}"));
        if seq.is_some() {
            message.push_str("ld", "0.10 0.20 0.30 1/100 200");
        }
        message.push_str("ttl", "3");
    }

    fn status(&mut self, st: &str) -> Message {
        self.status_with(st, "3e8", true)
    }

    fn status_with(&mut self, st: &str, dt: &str, protocol: bool) -> Message {
        let mut m = Message::with_type("status");
        m.push_str("st", st);
        m.push_str("dt", dt);
        if protocol {
            m.push_str("protocol", "1");
        }
        self.seq += 1;
        self.standard(&mut m, Some(self.seq));
        m
    }

    fn sequenced(&mut self, kind: &str, body: &[(&str, &str)]) -> Message {
        let mut m = Message::with_type(kind);
        for (name, value) in body {
            m.push_str(name, value);
        }
        self.seq += 1;
        self.standard(&mut m, Some(self.seq));
        m
    }

    fn unsequenced(&self, kind: &str, body: &[(&str, &str)]) -> Message {
        let mut m = Message::with_type(kind);
        for (name, value) in body {
            m.push_str(name, value);
        }
        self.standard(&mut m, None);
        m
    }
}

fn sent(outputs: &[Output]) -> Vec<&Message> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn sent_of_type<'a>(outputs: &'a [Output], kind: &str) -> Vec<&'a Message> {
    sent(outputs)
        .into_iter()
        .filter(|m| m.message_type() == Some(kind))
        .collect()
}

fn events(outputs: &[Output]) -> Vec<&MembershipEvent> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn delivered(outputs: &[Output]) -> Vec<(&str, &Message)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Deliver { from, message } => Some((from.as_str(), message)),
            _ => None,
        })
        .collect()
}

fn drops(outputs: &[Output]) -> Vec<DropReason> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Dropped { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

fn names(message: &Message) -> Vec<&str> {
    message.fields().iter().map(|f| f.name.as_str()).collect()
}

fn node(m: &Membership, name: &str) -> NodeState {
    let status = m.status();
    let found = status.nodes.into_iter().find(|n| n.name == name);
    found.unwrap_or_else(|| panic!("no node {name}"))
}

fn receive(m: &mut Membership, medium: MediumId, message: Message, ms: u64) -> Vec<Output> {
    m.handle(Input::Received { medium, message }, at(ms))
}

/// hb1 started at 0 with hb2 configured; hb2's first status arrived at 10 ms.
fn two_nodes() -> (Membership, Peer) {
    let mut m = Membership::new(config("hb1", &["hb1", "hb2"], &["eth0"]));
    m.handle(Input::Start, at(0));
    let mut hb2 = Peer::hb2();
    receive(&mut m, 0, hb2.status("up"), 10);
    (m, hb2)
}

/// Like [`two_nodes`] with communications up (`repnodes` answered) and hb1 active.
fn two_nodes_active() -> (Membership, Peer) {
    let (mut m, mut hb2) = two_nodes();
    let reply = hb2.sequenced(
        "repnodes",
        &[
            ("dest", "hb1"),
            ("nodelist", "hb1 hb2 "),
            ("delnodelist", " "),
        ],
    );
    receive(&mut m, 0, reply, 20);
    assert_eq!(m.status().local_status, NodeStatus::Active);
    (m, hb2)
}

#[test]
fn start_sends_three_status_messages_init_up_up_in_3_0_6_field_order() {
    let mut m = Membership::new(config("hb1", &["hb1", "hb2"], &["eth0"]));
    let out = m.handle(Input::Start, at(0));
    let statuses = sent_of_type(&out, "status");
    assert_eq!(statuses.len(), 3);
    let words: Vec<_> = statuses.iter().map(|s| s.get_str("st").unwrap()).collect();
    assert_eq!(words, ["init", "up", "up"]);
    assert_eq!(
        names(statuses[0]),
        [
            "t", "st", "dt", "protocol", "src", "srcuuid", "seq", "hg", "ts", "ld", "ttl"
        ]
    );
    let first = statuses[0];
    assert_eq!(first.get_str("dt"), Some("bb8"));
    assert_eq!(first.get_str("protocol"), Some("1"));
    assert_eq!(first.get_str("src"), Some("hb1"));
    assert_eq!(first.get_binary("srcuuid"), Some(HB1_UUID.as_slice()));
    assert_eq!(first.get_str("seq"), Some("1"));
    assert_eq!(first.get_str("hg"), Some("6b028f9f"));
    assert_eq!(first.get_str("ts"), Some(format!("{WALL:x}").as_str()));
    assert_eq!(first.get_str("ld"), Some("n/a"));
    assert_eq!(first.get_str("ttl"), Some("3"));
    assert_eq!(statuses[2].get_str("seq"), Some("3"));
    assert!(events(&out).contains(&&MembershipEvent::LocalStatus {
        old: NodeStatus::Init,
        new: NodeStatus::Up
    }));
}

#[test]
fn keepalive_sends_a_status_every_interval_with_the_load_average() {
    let mut m = Membership::new(config("hb1", &["hb1", "hb2"], &["eth0"]));
    m.handle(Input::Start, at(0));
    assert_eq!(m.next_deadline(), Some(Duration::from_millis(200)));
    m.handle(
        Input::LoadAverage("1.99 1.44 1.70 4/112 20108\n".into()),
        at(50),
    );
    assert!(sent(&m.handle(Input::Timer, at(199))).is_empty());
    let out = m.handle(Input::Timer, at(200));
    let statuses = sent_of_type(&out, "status");
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].get_str("seq"), Some("4"));
    assert_eq!(
        statuses[0].get_str("ld"),
        Some("1.99 1.44 1.70 4/112 20108")
    );
    assert_eq!(m.next_deadline(), Some(Duration::from_millis(400)));
}

#[test]
fn a_late_timer_sends_one_status_and_keeps_the_keepalive_grid() {
    let mut m = Membership::new(config("hb1", &["hb1"], &["eth0"]));
    m.handle(Input::Start, at(0));
    let out = m.handle(Input::Timer, at(730));
    assert_eq!(sent_of_type(&out, "status").len(), 1);
    assert_eq!(m.next_deadline(), Some(Duration::from_millis(800)));
}

#[test]
fn dt_announces_deadtime_plus_2000_for_5_seconds_then_the_deadtime() {
    let mut m = Membership::new(config("hb1", &["hb1"], &["eth0"]));
    m.handle(Input::Start, at(0));
    let before = m.handle(Input::Timer, at(4800));
    assert_eq!(
        sent_of_type(&before, "status")[0].get_str("dt"),
        Some("bb8")
    );
    let at_five = m.handle(Input::Timer, at(5000));
    let statuses = sent_of_type(&at_five, "status");
    let dts: Vec<_> = statuses.iter().map(|s| s.get_str("dt").unwrap()).collect();
    assert_eq!(dts, ["bb8", "3e8"]);
}

#[test]
fn nothing_happens_before_start_or_after_shutdown() {
    let mut m = Membership::new(config("hb1", &["hb1", "hb2"], &["eth0"]));
    let mut hb2 = Peer::hb2();
    assert!(receive(&mut m, 0, hb2.status("up"), 0).is_empty());
    assert_eq!(m.next_deadline(), None);
    m.handle(Input::Start, at(10));
    assert!(m.handle(Input::Shutdown, at(20)).is_empty());
    assert_eq!(m.next_deadline(), None);
    assert!(m.handle(Input::Timer, at(5000)).is_empty());
}

#[test]
fn our_own_looped_back_messages_are_duplicates_that_bring_our_link_up() {
    let mut m = Membership::new(config("hb1", &["hb1", "hb2"], &["eth0", "eth1"]));
    let start = m.handle(Input::Start, at(0));
    let own = sent(&start)[0].clone();
    let out = receive(&mut m, 1, own.clone(), 1);
    assert_eq!(
        events(&out),
        [&MembershipEvent::LinkStatus {
            node: "hb1".into(),
            link: "eth1".into(),
            up: true
        }]
    );
    assert!(receive(&mut m, 1, own, 2).is_empty());
    let me = node(&m, "hb1");
    assert_eq!(me.status, NodeStatus::Up);
    assert!(!me.links[0].up && me.links[1].up);
    assert_eq!(m.status().counters.duplicates, 2);
}

#[test]
fn a_message_in_our_name_that_we_never_sent_is_dropped_as_replayed() {
    let mut m = Membership::new(config("hb1", &["hb1", "hb2"], &["eth0"]));
    let start = m.handle(Input::Start, at(0));
    let mut forged = sent(&start)[0].clone();
    forged.set_str("seq", "99");
    assert_eq!(
        drops(&receive(&mut m, 0, forged, 1)),
        [DropReason::ReplayedSeq]
    );
    let mut old_run = sent(&start)[0].clone();
    old_run.set_str("hg", "6b028f9e");
    assert_eq!(
        drops(&receive(&mut m, 0, old_run, 2)),
        [DropReason::LowerGeneration]
    );
}

#[test]
fn the_same_message_on_two_media_is_processed_once_and_brings_both_links_up() {
    let mut m = Membership::new(config("hb1", &["hb1", "hb2"], &["eth0", "eth1"]));
    m.handle(Input::Start, at(0));
    let mut hb2 = Peer::hb2();
    let status = hb2.status("up");
    let first = receive(&mut m, 0, status.clone(), 10);
    assert!(events(&first).contains(&&MembershipEvent::NodeStatus {
        node: "hb2".into(),
        old: NodeStatus::Init,
        new: NodeStatus::Up
    }));
    let second = receive(&mut m, 1, status, 11);
    assert_eq!(
        events(&second),
        [&MembershipEvent::LinkStatus {
            node: "hb2".into(),
            link: "eth1".into(),
            up: true
        }]
    );
    assert!(sent(&second).is_empty());
    assert_eq!(m.status().counters.duplicates, 1);
    assert_eq!(node(&m, "hb2").last_seq, Some(1));
}

#[test]
fn media_sharing_a_name_are_one_link() {
    let m = Membership::new(config("hb1", &["hb1", "hb2"], &["eth0", "eth0", "ttyS0"]));
    let links: Vec<_> = node(&m, "hb2").links.into_iter().map(|l| l.name).collect();
    assert_eq!(links, ["eth0", "ttyS0"]);
}

#[test]
fn a_message_from_an_unconfigured_node_is_dropped_as_unknown() {
    let (mut m, _) = two_nodes();
    let mut stranger = Peer::hb2();
    stranger.name = "hb9";
    let out = receive(&mut m, 0, stranger.status("up"), 30);
    assert_eq!(
        out,
        [Output::Dropped {
            reason: DropReason::UnknownNode,
            node: Some("hb9".into())
        }]
    );
    assert_eq!(m.status().counters.dropped, 1);
}

#[test]
fn messages_with_missing_or_malformed_standard_fields_are_dropped_with_a_reason() {
    let (mut m, mut hb2) = two_nodes();
    let mut no_ts = hb2.status("up");
    no_ts.remove("ts");
    assert_eq!(
        drops(&receive(&mut m, 0, no_ts, 30)),
        [DropReason::MalformedField]
    );
    let mut bad_seq = hb2.status("up");
    bad_seq.set_str("seq", "zz");
    assert_eq!(
        drops(&receive(&mut m, 0, bad_seq, 31)),
        [DropReason::BadSeq]
    );
    let mut no_seq = hb2.status("up");
    no_seq.remove("seq");
    assert_eq!(drops(&receive(&mut m, 0, no_seq, 32)), [DropReason::BadSeq]);
    let mut zero = hb2.status("up");
    zero.set_str("seq", "0");
    assert_eq!(drops(&receive(&mut m, 0, zero, 33)), [DropReason::BadSeq]);
    let out = receive(&mut m, 7, hb2.status("up"), 34);
    assert_eq!(drops(&out), [DropReason::UnknownMedium]);
    let weird = hb2.status("sleepy");
    assert_eq!(
        drops(&receive(&mut m, 0, weird, 35)),
        [DropReason::MalformedField]
    );
}

#[test]
fn a_lower_generation_is_dropped_as_a_replay() {
    let (mut m, mut hb2) = two_nodes();
    hb2.generation -= 1;
    let out = receive(&mut m, 0, hb2.status("up"), 30);
    assert_eq!(drops(&out), [DropReason::LowerGeneration]);
}

#[test]
fn a_higher_generation_status_reports_a_restart_and_restarts_tracking() {
    let (mut m, mut hb2) = two_nodes_active();
    for _ in 0..5 {
        receive(&mut m, 0, hb2.status("active"), 100);
    }
    let mut restarted = Peer::hb2();
    restarted.generation = hb2.generation + 1;
    let out = receive(&mut m, 0, restarted.status("init"), 300);
    let evs = events(&out);
    assert!(evs.contains(&&MembershipEvent::NodeRestarted {
        node: "hb2".into(),
        generation: hb2.generation + 1
    }));
    assert!(evs.contains(&&MembershipEvent::NodeStatus {
        node: "hb2".into(),
        old: NodeStatus::Active,
        new: NodeStatus::Init
    }));
    assert!(
        !evs.iter()
            .any(|e| matches!(e, MembershipEvent::PacketsLost { .. }))
    );
    let tracked = node(&m, "hb2");
    assert_eq!(tracked.last_seq, Some(1));
    assert_eq!(tracked.generation, hb2.generation + 1);
}

#[test]
fn a_silent_node_is_declared_dead_exactly_at_its_last_heartbeat_plus_deadtime() {
    let (mut m, mut hb2) = two_nodes_active();
    receive(&mut m, 0, hb2.status("active"), 400);
    assert_eq!(m.next_deadline(), Some(Duration::from_millis(600)));
    for ms in [600, 800, 1000, 1200] {
        m.handle(Input::Timer, at(ms));
    }
    assert_eq!(m.next_deadline(), Some(Duration::from_millis(1400)));
    let before = m.handle(Input::Timer, at(1399));
    assert!(events(&before).is_empty());
    let out = m.handle(Input::Timer, at(1400));
    assert!(events(&out).contains(&&MembershipEvent::NodeStatus {
        node: "hb2".into(),
        old: NodeStatus::Active,
        new: NodeStatus::Dead
    }));
    assert_eq!(node(&m, "hb2").status, NodeStatus::Dead);
    assert_eq!(node(&m, "hb2").last_seq, None);
}

#[test]
fn a_deadline_passed_before_another_input_is_handled_first() {
    let (mut m, mut hb2) = two_nodes_active();
    receive(&mut m, 0, hb2.status("active"), 400);
    let late = receive(&mut m, 0, hb2.status("active"), 1500);
    let evs = events(&late);
    let death = evs.iter().position(|e| {
        **e == MembershipEvent::NodeStatus {
            node: "hb2".into(),
            old: NodeStatus::Active,
            new: NodeStatus::Dead,
        }
    });
    let back = evs.iter().position(|e| {
        **e == MembershipEvent::NodeStatus {
            node: "hb2".into(),
            old: NodeStatus::Dead,
            new: NodeStatus::Active,
        }
    });
    assert!(death.is_some() && back.is_some() && death < back, "{evs:?}");
    assert!(evs.contains(&&MembershipEvent::ReturnedAfterPartition { node: "hb2".into() }));
    assert!(evs.contains(&&MembershipEvent::LateHeartbeat {
        node: "hb2".into(),
        late_by: Duration::from_millis(1100),
        beyond_deadtime: true
    }));
}

#[test]
fn a_late_copy_of_an_old_status_does_not_revive_a_dead_node() {
    let (mut m, mut hb2) = two_nodes_active();
    let old = hb2.status("active");
    receive(&mut m, 0, old.clone(), 400);
    m.handle(Input::Timer, at(1400));
    assert_eq!(node(&m, "hb2").status, NodeStatus::Dead);
    let out = receive(&mut m, 0, old, 1450);
    assert!(
        !events(&out)
            .iter()
            .any(|e| matches!(e, MembershipEvent::NodeStatus { .. }))
    );
    assert_eq!(node(&m, "hb2").status, NodeStatus::Dead);
}

#[test]
fn only_status_messages_keep_a_node_alive() {
    let (mut m, mut hb2) = two_nodes_active();
    let mut out = Vec::new();
    for ms in (100..=1100).step_by(100) {
        out.extend(m.handle(Input::Timer, at(ms)));
        out.extend(receive(
            &mut m,
            0,
            hb2.sequenced("resource", &[("rsc_hold", "none")]),
            ms,
        ));
    }
    assert!(events(&out).contains(&&MembershipEvent::NodeStatus {
        node: "hb2".into(),
        old: NodeStatus::Up,
        new: NodeStatus::Dead
    }));
    assert!(
        node(&m, "hb2").links[0].up,
        "other packets still keep the link up"
    );
}

#[test]
fn a_peer_announcing_a_longer_dt_gets_that_deadtime() {
    let (mut m, mut hb2) = two_nodes_active();
    receive(&mut m, 0, hb2.status_with("active", "bb8", true), 100);
    assert_eq!(node(&m, "hb2").deadtime_ms, 3000);
    assert!(events(&m.handle(Input::Timer, at(3099))).is_empty());
    let out = m.handle(Input::Timer, at(3100));
    assert!(events(&out).iter().any(|e| matches!(
        e,
        MembershipEvent::NodeStatus {
            new: NodeStatus::Dead,
            ..
        }
    )));
}

#[test]
fn a_heartbeat_later_than_warntime_is_reported_when_it_arrives() {
    let (mut m, mut hb2) = two_nodes_active();
    receive(&mut m, 0, hb2.status("active"), 100);
    let on_time = receive(&mut m, 0, hb2.status("active"), 600);
    assert!(events(&on_time).is_empty());
    let late = receive(&mut m, 0, hb2.status("active"), 1300);
    assert_eq!(
        events(&late),
        [&MembershipEvent::LateHeartbeat {
            node: "hb2".into(),
            late_by: Duration::from_millis(700),
            beyond_deadtime: false
        }]
    );
}

#[test]
fn initdead_applies_to_everybody_before_communications_are_up() {
    let mut m = Membership::new(config("hb1", &["hb1", "hb2", "hb3"], &["eth0"]));
    m.handle(Input::Start, at(0));
    let mut hb2 = Peer::hb2();
    receive(&mut m, 0, hb2.status("up"), 10);
    assert_eq!(node(&m, "hb2").deadtime_ms, 2000);
    for ms in (200..2000).step_by(200) {
        receive(&mut m, 0, hb2.status("up"), ms);
        let out = m.handle(Input::Timer, at(ms));
        assert!(
            !events(&out)
                .iter()
                .any(|e| matches!(e, MembershipEvent::NodeStatus { .. }))
        );
    }
    let out = m.handle(Input::Timer, at(2000));
    assert!(events(&out).contains(&&MembershipEvent::NodeStatus {
        node: "hb3".into(),
        old: NodeStatus::Init,
        new: NodeStatus::Dead
    }));
    let reqnodes = sent_of_type(&out, "reqnodes");
    assert_eq!(reqnodes.len(), 1, "communications come up once hb3 is dead");
    assert_eq!(reqnodes[0].get_str("dest"), Some("hb2"));
    assert_eq!(node(&m, "hb2").deadtime_ms, 1000);
}

#[test]
fn communications_up_asks_for_the_node_list_and_goes_active_on_the_answer() {
    let mut m = Membership::new(config("hb1", &["hb1", "hb2"], &["eth0"]));
    m.handle(Input::Start, at(0));
    let mut hb2 = Peer::hb2();
    let status = hb2.status("up");
    let srcuuid_known = receive(&mut m, 0, status, 10);
    let reqnodes = sent_of_type(&srcuuid_known, "reqnodes");
    assert_eq!(reqnodes.len(), 1);
    assert_eq!(
        names(reqnodes[0]),
        [
            "t", "dest", "destuuid", "src", "srcuuid", "seq", "hg", "ts", "ld", "ttl"
        ]
    );
    assert_eq!(
        reqnodes[0].get_binary("destuuid"),
        Some(HB2_UUID.as_slice())
    );
    assert_eq!(m.status().local_status, NodeStatus::Up);
    receive(&mut m, 0, hb2.status("up"), 500);
    let retry = m.handle(Input::Timer, at(1010));
    assert_eq!(
        sent_of_type(&retry, "reqnodes").len(),
        1,
        "asked again after 1 s"
    );
    let reply = hb2.sequenced(
        "repnodes",
        &[
            ("dest", "hb1"),
            ("nodelist", "hb1 hb2 "),
            ("delnodelist", " "),
        ],
    );
    let out = receive(&mut m, 0, reply, 1020);
    assert_eq!(
        sent_of_type(&out, "status")[0].get_str("st"),
        Some("active")
    );
    let evs = events(&out);
    assert!(evs.contains(&&MembershipEvent::CommunicationsUp));
    assert!(evs.contains(&&MembershipEvent::LocalStatus {
        old: NodeStatus::Up,
        new: NodeStatus::Active
    }));
    assert!(m.status().communications_up);
}

#[test]
fn a_reqnodes_for_us_is_answered_with_the_node_list_in_3_0_6_field_order() {
    let (mut m, mut hb2) = two_nodes();
    let out = receive(&mut m, 0, hb2.sequenced("reqnodes", &[("dest", "hb1")]), 30);
    let reply = sent_of_type(&out, "repnodes");
    assert_eq!(reply.len(), 1);
    assert_eq!(
        names(reply[0]),
        [
            "dest",
            "t",
            "nodelist",
            "delnodelist",
            "destuuid",
            "src",
            "srcuuid",
            "seq",
            "hg",
            "ts",
            "ld",
            "ttl"
        ]
    );
    assert_eq!(reply[0].get_str("nodelist"), Some("hb1 hb2 "));
    assert_eq!(reply[0].get_str("delnodelist"), Some(" "));
    let for_other = receive(&mut m, 0, hb2.sequenced("reqnodes", &[("dest", "hb3")]), 40);
    assert!(sent_of_type(&for_other, "repnodes").is_empty());
}

#[test]
fn a_node_list_that_differs_is_reported_and_not_adopted() {
    let (mut m, mut hb2) = two_nodes();
    let reply = hb2.sequenced(
        "repnodes",
        &[
            ("dest", "hb1"),
            ("nodelist", "hb1 hb2 hb7 "),
            ("delnodelist", " "),
        ],
    );
    let out = receive(&mut m, 0, reply, 30);
    assert!(
        events(&out)
            .iter()
            .any(|e| matches!(e, MembershipEvent::NodeListDiffers { .. }))
    );
    assert_eq!(m.status().nodes.len(), 2);
    assert!(m.status().communications_up);
}

#[test]
fn a_node_alone_goes_active_at_once() {
    let mut m = Membership::new(config("hb1", &["hb1"], &["eth0"]));
    let out = m.handle(Input::Start, at(0));
    assert!(sent_of_type(&out, "reqnodes").is_empty());
    assert_eq!(sent_of_type(&out, "status").len(), 4);
    assert!(events(&out).contains(&&MembershipEvent::CommunicationsUp));
    assert_eq!(m.status().local_status, NodeStatus::Active);
}

#[test]
fn a_gap_requests_each_missing_seq_once_after_a_random_delay_then_every_max_delay() {
    let (mut m, mut hb2) = two_nodes_active();
    receive(&mut m, 0, hb2.status("active"), 100);
    hb2.seq += 2;
    let out = receive(&mut m, 0, hb2.status("active"), 200);
    assert!(events(&out).contains(&&MembershipEvent::PacketsLost {
        node: "hb2".into(),
        first: 4,
        last: 5
    }));
    assert_eq!(node(&m, "hb2").missing, 2);
    let mut requests = Vec::new();
    let mut times = Vec::new();
    let mut now = 200;
    while requests.len() < 4 {
        let deadline = m.next_deadline().unwrap().as_millis() as u64;
        assert!(deadline > now);
        now = deadline;
        let out = m.handle(Input::Timer, at(now));
        for r in sent_of_type(&out, "NS_rexmit") {
            times.push(now);
            requests.push(r.clone());
        }
    }
    let first_round: Vec<_> = times[..2].iter().map(|t| t - 200).collect();
    assert!(
        first_round.iter().all(|d| (50..=250).contains(d)),
        "{first_round:?}"
    );
    let mut seqs: Vec<_> = requests
        .iter()
        .map(|r| r.get_str("firstseq").unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, ["4", "4", "5", "5"]);
    for r in &requests {
        assert_eq!(r.get_str("dest"), Some("hb2"));
        assert_eq!(r.get_str("firstseq"), r.get_str("lastseq"));
        assert_eq!(r.get("seq"), None, "NS_ messages carry no seq");
        assert_eq!(r.get("ld"), None);
    }
    assert_eq!(m.status().counters.retransmissions_requested, 4);
}

#[test]
fn recovering_every_missing_packet_reports_no_packets_missing() {
    let (mut m, mut hb2) = two_nodes_active();
    let missing = [hb2.status("active"), hb2.status("active")];
    let out = receive(&mut m, 0, hb2.status("active"), 200);
    assert!(
        events(&out)
            .iter()
            .any(|e| matches!(e, MembershipEvent::PacketsLost { .. }))
    );
    let first = receive(&mut m, 0, missing[1].clone(), 300);
    assert!(events(&first).is_empty());
    let second = receive(&mut m, 0, missing[0].clone(), 310);
    assert_eq!(
        events(&second),
        [&MembershipEvent::NoPacketsMissing { node: "hb2".into() }]
    );
    assert_eq!(node(&m, "hb2").missing, 0);
    // Nothing is pending but our next status: it went with the peer's at 300 ms.
    assert_eq!(m.next_deadline(), Some(Duration::from_millis(500)));
}

#[test]
fn a_gap_wider_than_250_restarts_tracking_instead_of_requesting() {
    let (mut m, mut hb2) = two_nodes_active();
    hb2.seq += 251;
    let out = receive(&mut m, 0, hb2.status("active"), 200);
    let evs = events(&out);
    assert!(evs.contains(&&MembershipEvent::TooManyPacketsLost { node: "hb2".into() }));
    assert_eq!(node(&m, "hb2").missing, 0);
    assert_eq!(node(&m, "hb2").last_seq, Some(hb2.seq));
}

#[test]
fn a_nak_gives_up_the_missing_packet() {
    let (mut m, mut hb2) = two_nodes_active();
    hb2.seq += 1;
    receive(&mut m, 0, hb2.status("active"), 200);
    let lost = hb2.seq - 1;
    let nak = hb2.unsequenced(
        "NS_nak_rexmit",
        &[
            ("firstseq", &format!("{lost:x}")),
            ("dest", "hb1"),
            ("info", "seqno too low"),
        ],
    );
    let out = receive(&mut m, 0, nak, 300);
    assert_eq!(
        events(&out),
        [
            &MembershipEvent::PacketLostForGood {
                node: "hb2".into(),
                seq: lost
            },
            &MembershipEvent::NoPacketsMissing { node: "hb2".into() }
        ]
    );
    assert_eq!(m.status().counters.naks_received, 1);
}

#[test]
fn a_retransmission_request_is_answered_with_the_stored_message_unchanged() {
    let (mut m, hb2) = two_nodes_active();
    let first_status = {
        let mut fresh = Membership::new(config("hb1", &["hb1", "hb2"], &["eth0"]));
        sent(&fresh.handle(Input::Start, at(0)))[1].clone()
    };
    let request = hb2.unsequenced(
        "NS_rexmit",
        &[("dest", "hb1"), ("firstseq", "2"), ("lastseq", "2")],
    );
    m.handle(Input::Timer, at(300));
    let out = receive(&mut m, 0, request.clone(), 300);
    assert_eq!(sent(&out), [&first_status]);
    assert_eq!(m.status().counters.retransmissions_sent, 1);
    m.handle(Input::Timer, at(400));
    let again = receive(&mut m, 0, request.clone(), 400);
    assert!(sent(&again).is_empty(), "re-sent less than 240 ms ago");
    m.handle(Input::Timer, at(540));
    let later = receive(&mut m, 0, request, 540);
    assert_eq!(sent(&later), [&first_status]);
}

#[test]
fn a_retransmission_request_for_another_node_is_ignored() {
    let (mut m, hb2) = two_nodes_active();
    let request = hb2.unsequenced(
        "NS_rexmit",
        &[("dest", "hb3"), ("firstseq", "2"), ("lastseq", "2")],
    );
    m.handle(Input::Timer, at(300));
    let out = receive(&mut m, 0, request, 300);
    assert!(sent(&out).is_empty());
    assert_eq!(drops(&out), [DropReason::NotForUs]);
}

#[test]
fn a_request_below_the_history_is_naked_as_too_low_in_hex() {
    let mut m = Membership::new(config("hb1", &["hb1", "hb2"], &["eth0"]));
    m.handle(Input::Start, at(0));
    let mut hb2 = Peer::hb2();
    receive(&mut m, 0, hb2.status("up"), 1);
    for i in 0..600 {
        m.handle(
            Input::SendCluster(Message::with_type("resource")),
            at(2 + i / 100),
        );
    }
    let request = hb2.unsequenced(
        "NS_rexmit",
        &[("dest", "hb1"), ("firstseq", "26"), ("lastseq", "26")],
    );
    let out = receive(&mut m, 0, request, 20);
    let naks = sent_of_type(&out, "NS_nak_rexmit");
    assert_eq!(naks.len(), 1);
    assert_eq!(
        names(naks[0]),
        [
            "t", "firstseq", "dest", "info", "destuuid", "src", "srcuuid", "hg", "ts", "ttl"
        ]
    );
    assert_eq!(naks[0].get_str("firstseq"), Some("1a"));
    assert_eq!(naks[0].get_str("info"), Some("seqno too low"));
    assert_eq!(m.status().counters.naks_sent, 1);
}

#[test]
fn in_order_messages_are_acknowledged_at_the_peers_trigger() {
    let (mut m, mut hb2) = two_nodes_active();
    let mut acks = Vec::new();
    for i in 0..20 {
        let out = receive(&mut m, 0, hb2.sequenced("resource", &[]), 100 + i);
        acks.extend(sent_of_type(&out, "NS_ackmsg").into_iter().cloned());
    }
    assert_eq!(acks.len(), 2, "one per ten messages");
    for ack in &acks {
        assert_eq!(
            names(ack),
            [
                "t", "dest", "ackseq", "destuuid", "src", "srcuuid", "hg", "ts", "ttl"
            ]
        );
        assert_eq!(ack.get_str("dest"), Some("hb2"));
    }
    let seqs: Vec<u64> = acks
        .iter()
        .map(|a| u64::from_str_radix(a.get_str("ackseq").unwrap(), 16).unwrap())
        .collect();
    assert_eq!(seqs[1] - seqs[0], 10);
    assert_eq!(seqs[0] % 10, seqs[1] % 10);
}

#[test]
fn no_acknowledgement_is_sent_above_a_gap() {
    let (mut m, mut hb2) = two_nodes_active();
    hb2.seq += 1;
    let mut acks = 0;
    for i in 0..20 {
        let out = receive(&mut m, 0, hb2.sequenced("resource", &[]), 100 + i);
        acks += sent_of_type(&out, "NS_ackmsg").len();
    }
    assert_eq!(acks, 0);
}

#[test]
fn a_status_without_protocol_turns_acknowledgements_off_for_good() {
    let (mut m, mut hb2) = two_nodes_active();
    let out = receive(&mut m, 0, hb2.status_with("active", "3e8", false), 100);
    assert!(events(&out).contains(&&MembershipEvent::FlowControlDisabled { node: "hb2".into() }));
    let mut acks = 0;
    for i in 0..20 {
        let out = receive(&mut m, 0, hb2.sequenced("resource", &[]), 110 + i);
        acks += sent_of_type(&out, "NS_ackmsg").len();
    }
    assert_eq!(acks, 0);
    // Our status went with the peer's at 100 ms, and the next a keepalive later.
    let keepalive = m.handle(Input::Timer, at(300));
    let statuses = [
        sent_of_type(&out, "status"),
        sent_of_type(&keepalive, "status"),
    ];
    assert!(statuses.iter().all(|sent| sent.len() == 1));
    assert!(
        statuses
            .iter()
            .flatten()
            .all(|s| s.get("protocol").is_none())
    );
    assert!(!m.status().flow_control);
}

#[test]
fn a_peer_status_in_the_second_half_of_our_period_takes_our_status_along() {
    let (mut m, mut hb2) = two_nodes_active();
    let due = m.next_deadline().expect("running");
    let early = due - Duration::from_millis(100);
    let ms = |d: Duration| u64::try_from(d.as_millis()).expect("ms");
    // In the first half: nothing is sent before the timer.
    let first_half = receive(&mut m, 0, hb2.status("active"), ms(early) - 1);
    assert!(sent_of_type(&first_half, "status").is_empty());
    // Half a keepalive or less before it: ours goes now, and the next a keepalive later.
    let second_half = receive(&mut m, 0, hb2.status("active"), ms(early));
    assert_eq!(sent_of_type(&second_half, "status").len(), 1);
    assert_eq!(m.next_deadline(), Some(early + Duration::from_millis(200)));
    // So the timer that was due sends nothing.
    assert!(sent_of_type(&m.handle(Input::Timer, at(ms(due))), "status").is_empty());
}

#[test]
fn messages_for_another_node_are_tracked_but_not_delivered() {
    let (mut m, mut hb2) = two_nodes_active();
    let by_name = receive(
        &mut m,
        0,
        hb2.sequenced("resource", &[("dest", "hb3")]),
        100,
    );
    assert_eq!(drops(&by_name), [DropReason::NotForUs]);
    assert!(delivered(&by_name).is_empty());
    let mut by_uuid = hb2.sequenced("resource", &[("dest", "hb1")]);
    by_uuid.push("destuuid", FieldValue::Binary(vec![9; 16]));
    let out = receive(&mut m, 0, by_uuid, 110);
    assert_eq!(
        drops(&out),
        [DropReason::NotForUs],
        "destuuid decides over dest"
    );
    let seq_before = node(&m, "hb2").last_seq;
    let for_us = receive(
        &mut m,
        0,
        hb2.sequenced("resource", &[("dest", "hb1")]),
        120,
    );
    assert_eq!(delivered(&for_us).len(), 1);
    assert_eq!(node(&m, "hb2").last_seq, seq_before.map(|s| s + 1));
    assert_eq!(node(&m, "hb2").missing, 0);
}

#[test]
fn other_messages_are_delivered_in_the_senders_order_after_gaps_fill() {
    let (mut m, mut hb2) = two_nodes_active();
    let a = hb2.sequenced("resource", &[("info", "a")]);
    let b = hb2.sequenced("resource", &[("info", "b")]);
    let c = hb2.sequenced("resource", &[("info", "c")]);
    let early = receive(&mut m, 0, c.clone(), 100);
    assert!(delivered(&early).is_empty());
    assert!(delivered(&receive(&mut m, 0, b.clone(), 110)).is_empty());
    let out = receive(&mut m, 0, a.clone(), 120);
    let got: Vec<_> = delivered(&out)
        .into_iter()
        .map(|(from, m)| (from, m.clone()))
        .collect();
    assert_eq!(got, [("hb2", a), ("hb2", b), ("hb2", c)]);
}

#[test]
fn a_link_goes_dead_after_the_nodes_deadtime_without_packets_on_it() {
    let mut m = Membership::new(config("hb1", &["hb1", "hb2"], &["eth0", "eth1"]));
    m.handle(Input::Start, at(0));
    let mut hb2 = Peer::hb2();
    let status = hb2.status("up");
    receive(&mut m, 0, status.clone(), 10);
    receive(&mut m, 1, status, 10);
    let reply = hb2.sequenced(
        "repnodes",
        &[
            ("dest", "hb1"),
            ("nodelist", "hb1 hb2 "),
            ("delnodelist", " "),
        ],
    );
    receive(&mut m, 0, reply, 20);
    let mut out = Vec::new();
    for ms in (100..=1100).step_by(100) {
        out.extend(m.handle(Input::Timer, at(ms)));
        out.extend(receive(&mut m, 0, hb2.status("active"), ms));
    }
    let link_events: Vec<_> = events(&out)
        .into_iter()
        .filter(|e| matches!(e, MembershipEvent::LinkStatus { .. }))
        .collect();
    assert_eq!(
        link_events,
        [&MembershipEvent::LinkStatus {
            node: "hb2".into(),
            link: "eth1".into(),
            up: false
        }]
    );
    assert_eq!(node(&m, "hb2").status, NodeStatus::Active);
}

#[test]
fn a_client_message_is_sequenced_sent_and_delivered_to_ourselves() {
    let (mut m, _) = two_nodes_active();
    let mut message = Message::with_type("resource");
    message.push_str("rsc_hold", "none");
    let out = m.handle(Input::SendCluster(message), at(100));
    let sends = sent_of_type(&out, "resource");
    assert_eq!(sends.len(), 1);
    assert_eq!(
        names(sends[0]),
        [
            "t", "rsc_hold", "src", "srcuuid", "seq", "hg", "ts", "ld", "ttl"
        ]
    );
    assert_eq!(delivered(&out), [("hb1", sends[0])]);
    let to_peer = {
        let mut m2 = Message::with_type("ip-request-resp");
        m2.push_str("dest", "hb2");
        m2
    };
    let out = m.handle(Input::SendCluster(to_peer), at(110));
    assert_eq!(
        sent(&out)[0].get_binary("destuuid"),
        Some(HB2_UUID.as_slice())
    );
    assert!(delivered(&out).is_empty());
}

#[test]
fn clients_cannot_send_protocol_messages_or_untyped_ones() {
    let (mut m, _) = two_nodes_active();
    let out = m.handle(Input::SendCluster(Message::with_type("status")), at(100));
    assert_eq!(drops(&out), [DropReason::ReservedType]);
    let out = m.handle(Input::SendCluster(Message::new()), at(100));
    assert_eq!(drops(&out), [DropReason::MalformedField]);
}

#[test]
fn clients_are_paused_when_more_than_250_messages_are_unacknowledged() {
    let (mut m, hb2) = two_nodes_active();
    let mut out = Vec::new();
    for i in 0..260 {
        out.extend(m.handle(
            Input::SendCluster(Message::with_type("resource")),
            at(100 + i / 10),
        ));
    }
    assert!(events(&out).contains(&&MembershipEvent::FlowControl { paused: true }));
    assert!(m.status().clients_paused);
    let highest = m.status().nodes[0].last_seq.unwrap();
    let ack = hb2.unsequenced(
        "NS_ackmsg",
        &[("dest", "hb1"), ("ackseq", &format!("{highest:x}"))],
    );
    let out = receive(&mut m, 0, ack, 200);
    assert!(events(&out).contains(&&MembershipEvent::FlowControl { paused: false }));
}

#[test]
fn alone_the_acknowledged_point_advances_by_itself() {
    let mut m = Membership::new(config("hb1", &["hb1"], &["eth0"]));
    m.handle(Input::Start, at(0));
    let mut out = Vec::new();
    for i in 0..400 {
        out.extend(m.handle(
            Input::SendCluster(Message::with_type("resource")),
            at(1 + i / 10),
        ));
    }
    assert!(
        !events(&out)
            .iter()
            .any(|e| matches!(e, MembershipEvent::FlowControl { .. }))
    );
}

#[test]
fn each_deadline_is_exact_nothing_is_due_a_millisecond_before() {
    let (mut m, mut hb2) = two_nodes_active();
    m.handle(Input::Timer, at(200));
    hb2.seq += 1;
    receive(&mut m, 0, hb2.status("active"), 210);
    let mut kinds = Vec::new();
    for _ in 0..12 {
        let deadline = m.next_deadline().unwrap().as_millis() as u64;
        assert!(
            m.handle(Input::Timer, at(deadline - 1)).is_empty(),
            "at {deadline} - 1"
        );
        let out = m.handle(Input::Timer, at(deadline));
        assert!(!out.is_empty(), "nothing done at deadline {deadline}");
        for o in &out {
            match o {
                Output::Send(s) => kinds.push(s.message_type().unwrap().to_string()),
                Output::Event(e) => kinds.push(e.kind().to_string()),
                _ => {}
            }
        }
    }
    assert!(kinds.iter().any(|k| k == "NS_rexmit"));
    assert!(kinds.iter().any(|k| k == "status"));
    assert!(
        kinds.iter().any(|k| k == "node_status"),
        "hb2 dies at 1210: {kinds:?}"
    );
}

#[test]
fn a_new_generation_is_adopted_from_its_first_message_whatever_its_type() {
    let (mut m, mut hb2) = two_nodes_active();
    for _ in 0..5 {
        receive(&mut m, 0, hb2.status("active"), 100);
    }
    let mut restarted = Peer::hb2();
    restarted.generation = hb2.generation + 1;
    restarted.seq = 3;
    let early = restarted.sequenced("resource", &[("info", "first")]);
    let statuses = [restarted.status("active"), restarted.status("active")];
    let out = receive(&mut m, 0, early.clone(), 150);
    assert!(events(&out).contains(&&MembershipEvent::NodeRestarted {
        node: "hb2".into(),
        generation: restarted.generation
    }));
    assert_eq!(delivered(&out), [("hb2", &early)]);
    for status in statuses {
        let out = receive(&mut m, 0, status, 160);
        assert!(
            !events(&out)
                .iter()
                .any(|e| matches!(e, MembershipEvent::PacketsLost { .. }))
        );
    }
    assert_eq!(node(&m, "hb2").last_seq, Some(6));
}

#[test]
fn a_node_first_heard_without_a_status_is_timed_from_that_moment() {
    let mut m = Membership::new(config("hb1", &["hb1", "hb2"], &["eth0"]));
    m.handle(Input::Start, at(0));
    let hb2 = Peer::hb2();
    let ack = hb2.unsequenced("NS_ackmsg", &[("dest", "hb1"), ("ackseq", "1")]);
    let out = receive(&mut m, 0, ack, 1500);
    assert_eq!(sent_of_type(&out, "reqnodes").len(), 1, "every node heard");
    assert_eq!(node(&m, "hb2").status, NodeStatus::Init);
    assert_eq!(m.next_deadline(), Some(Duration::from_millis(1600)));
    for ms in (1600..2500).step_by(200) {
        let out = m.handle(Input::Timer, at(ms));
        assert!(
            !events(&out)
                .iter()
                .any(|e| matches!(e, MembershipEvent::NodeStatus { .. }))
        );
    }
    let out = m.handle(Input::Timer, at(2500));
    assert!(events(&out).contains(&&MembershipEvent::NodeStatus {
        node: "hb2".into(),
        old: NodeStatus::Init,
        new: NodeStatus::Dead
    }));
}

#[test]
fn a_returning_nodes_old_status_never_makes_accepted_messages_come_again() {
    let (mut m, mut hb2) = two_nodes_active();
    receive(&mut m, 0, hb2.status("active"), 100);
    m.handle(Input::Timer, at(1100));
    assert_eq!(node(&m, "hb2").status, NodeStatus::Dead);
    let late_status = hb2.status("active");
    let client = hb2.sequenced("resource", &[("info", "x")]);
    let out = receive(&mut m, 0, client.clone(), 1200);
    assert_eq!(delivered(&out).len(), 1);
    let back = receive(&mut m, 0, late_status, 1201);
    assert!(
        events(&back).contains(&&MembershipEvent::ReturnedAfterPartition { node: "hb2".into() })
    );
    let next = receive(&mut m, 0, hb2.status("active"), 1300);
    assert!(
        !events(&next)
            .iter()
            .any(|e| matches!(e, MembershipEvent::PacketsLost { .. }))
    );
    assert!(delivered(&receive(&mut m, 0, client, 1301)).is_empty());
}

#[test]
fn an_acknowledgement_of_our_previous_run_is_ignored_not_counted() {
    let (mut m, hb2) = two_nodes_active();
    let ack = hb2.unsequenced("NS_ackmsg", &[("dest", "hb1"), ("ackseq", "5000")]);
    m.handle(Input::Timer, at(300));
    assert!(receive(&mut m, 0, ack, 300).is_empty());
    assert_eq!(m.status().counters.dropped, 0);
}

#[test]
fn a_nak_from_another_run_of_the_sender_is_ignored() {
    let (mut m, mut hb2) = two_nodes_active();
    hb2.seq += 1;
    receive(&mut m, 0, hb2.status("active"), 200);
    let lost = hb2.seq - 1;
    let mut old_run = Peer::hb2();
    old_run.generation -= 1;
    let nak = old_run.unsequenced(
        "NS_nak_rexmit",
        &[
            ("firstseq", &format!("{lost:x}")),
            ("dest", "hb1"),
            ("info", "seqno too low"),
        ],
    );
    receive(&mut m, 0, nak, 300);
    assert_eq!(node(&m, "hb2").missing, 1);
}

#[test]
fn a_timer_after_a_very_long_pause_sends_one_status_on_the_grid() {
    let mut m = Membership::new(config("hb1", &["hb1"], &["eth0"]));
    m.handle(Input::Start, at(0));
    let ten_hours = 36_000_000 + 50;
    let out = m.handle(Input::Timer, at(ten_hours));
    assert_eq!(
        sent_of_type(&out, "status").len(),
        2,
        "keepalive, then the end of the start-up dt"
    );
    assert_eq!(m.next_deadline(), Some(Duration::from_millis(36_000_200)));
}

#[test]
fn the_same_seed_and_inputs_give_the_same_outputs() {
    let run = || {
        let (mut m, mut hb2) = two_nodes_active();
        hb2.seq += 3;
        let mut out = receive(&mut m, 0, hb2.status("active"), 100);
        for _ in 0..10 {
            let at_ms = m.next_deadline().unwrap().as_millis() as u64;
            out.extend(m.handle(Input::Timer, at(at_ms)));
        }
        out
    };
    assert_eq!(run(), run());
}
