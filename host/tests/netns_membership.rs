//! Membership of real `vigil` processes in the network-namespace lab: nodes find each other
//! over every medium kind, a hung node is declared dead, short outages are bridged by
//! retransmission, a second medium fails on its own, and hostile datagrams change nothing.
//!
//! Needs root (each test says why it skips without it, or fails when
//! `VIGIL_REQUIRE_ROOT_TESTS=1`). Assertions go through `cl_status`, `vigil status --json`
//! and the daemon's stderr log, what an operator sees. Timing is ha.cf's keepalive
//! 200ms, deadtime 1, warntime 500ms, initdead 2; waits poll with generous deadlines.

mod support;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::netns::{FIRST_LINK, Lab, NodeNet, SECOND_LINK};
use support::vigil_node::VigilNode;
use support::{
    ClStatus, ClusterConfig, MediumKind, SETTLE_TIMEOUT, line_reports_dead, node_name,
    wait_all_active, wait_for, wait_link_status, wait_node_status,
};

/// The UDP port of every test cluster.
const UDP_PORT: u16 = 694;

/// vigil nodes in one lab. Fields drop in declaration order: the daemons go before the
/// namespaces they run in.
struct VigilCluster {
    /// The daemons, node `i` at position `i - 1`.
    nodes: Vec<VigilNode>,
    /// Their places in the lab.
    nets: Vec<NodeNet>,
    /// The lab itself, dropped last.
    lab: Lab,
}

impl VigilCluster {
    /// Starts `count` vigil nodes with the configuration `configure` makes from the nodes'
    /// names and `eth0` addresses.
    fn start(
        mut lab: Lab,
        count: u8,
        configure: impl FnOnce(&[&str], &[Ipv4Addr]) -> ClusterConfig,
    ) -> VigilCluster {
        let nets: Vec<NodeNet> = (1..=count).map(|i| lab.add_node(i)).collect();
        let names: Vec<String> = (1..=count).map(node_name).collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let addresses: Vec<Ipv4Addr> = nets.iter().map(|n| n.address).collect();
        let config = configure(&name_refs, &addresses);
        let nodes = nets
            .iter()
            .zip(&names)
            .map(|(net, name)| VigilNode::start(net, name, &config))
            .collect();
        VigilCluster { nodes, nets, lab }
    }

    /// Starts `count` vigil nodes over one medium kind on `eth0`.
    fn over(lab: Lab, count: u8, kind: MediumKind) -> VigilCluster {
        VigilCluster::start(lab, count, |names, addresses| {
            ClusterConfig::new(kind, names, addresses)
        })
    }

    /// Node `index` (from 1).
    fn node(&self, index: u8) -> &VigilNode {
        &self.nodes[usize::from(index) - 1]
    }

    /// Node `index`'s place in the lab.
    fn net(&self, index: u8) -> &NodeNet {
        &self.nets[usize::from(index) - 1]
    }

    /// Every node, as the `cl_status` view the waits take.
    fn views(&self) -> Vec<&dyn ClStatus> {
        self.nodes.iter().map(|n| n as &dyn ClStatus).collect()
    }
}

/// Watches, in a background thread, that `observer` keeps seeing `node` in `status` (and,
/// with `link`, that link up) until `done`; returns every other observation with the time
/// since the watch began.
fn watch_constant_status(
    observer: &dyn ClStatus,
    node: &str,
    link: Option<&str>,
    done: &AtomicBool,
) -> Vec<String> {
    let start = Instant::now();
    let mut violations = Vec::new();
    while !done.load(Ordering::Relaxed) {
        let (status, rc) = observer.node_status(node);
        if status != "active" || rc != 0 {
            violations.push(format!(
                "{:?}: {} saw {node} {status:?} (rc {rc})",
                start.elapsed(),
                observer.node_name()
            ));
        }
        if let Some(link) = link {
            let (status, rc) = observer.link_status(node, link);
            if status != "up" {
                violations.push(format!(
                    "{:?}: {} saw link {node}:{link} {status:?} (rc {rc})",
                    start.elapsed(),
                    observer.node_name()
                ));
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    violations
}

/// Runs `scenario` while background threads watch that each `(observer, peer)` pair keeps
/// seeing the peer active (and, with `link`, that link up); returns every violation seen.
/// The watchers stop when the scenario ends, also when it fails.
fn while_watching(
    pairs: &[(&VigilNode, &VigilNode)],
    link: Option<&str>,
    scenario: impl FnOnce(),
) -> Vec<String> {
    let done = AtomicBool::new(false);
    thread::scope(|scope| {
        let watchers: Vec<_> = pairs
            .iter()
            .map(|&(observer, peer)| {
                let done = &done;
                scope.spawn(move || watch_constant_status(observer, peer.node_name(), link, done))
            })
            .collect();
        {
            let _stop = StopWatching(&done);
            scenario();
        }
        watchers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|_| vec!["watcher panicked".to_string()])
            })
            .collect()
    })
}

/// Tells the watchers to stop when dropped, so a failing scenario cannot leave them running
/// (the scope would wait for them forever).
struct StopWatching<'a>(&'a AtomicBool);

impl Drop for StopWatching<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Waits until `observer` applies `deadtime_ms` to `node` (its status report's
/// `membership.nodes[].deadtime_ms`).
fn wait_for_deadtime(observer: &VigilNode, node: &str, deadtime_ms: u64) {
    wait_for(
        &format!(
            "{} to apply a deadtime of {deadtime_ms} ms to {node}",
            observer.node_name()
        ),
        SETTLE_TIMEOUT,
        || {
            let status = observer.status_json();
            let applied = status
                .pointer("/membership/nodes")
                .and_then(serde_json::Value::as_array)
                .and_then(|nodes| {
                    nodes
                        .iter()
                        .find(|n| n.get("name").and_then(serde_json::Value::as_str) == Some(node))
                })
                .and_then(|n| n.get("deadtime_ms"))
                .and_then(serde_json::Value::as_u64);
            match applied {
                Some(ms) if ms == deadtime_ms => Ok(()),
                _ => Err(format!("status: {status}")),
            }
        },
    );
}

/// Lines of `log` that report `node` dead.
fn death_reports(log: &str, node: &str) -> Vec<String> {
    log.lines()
        .filter(|line| line_reports_dead(line, node))
        .map(str::to_string)
        .collect()
}

/// A lab for `kind`: with IPv6 addresses for the IPv6 media.
fn lab_for(kind: MediumKind, hint: &str) -> Option<Lab> {
    if kind.is_ipv6() {
        Lab::with_ipv6(hint)
    } else {
        Lab::new(hint)
    }
}

fn nodes_see_each_other_active(count: u8, kind: MediumKind, hint: &str) {
    let Some(lab) = lab_for(kind, hint) else {
        return;
    };
    let mut cluster = VigilCluster::over(lab, count, kind);
    wait_all_active(&cluster.views());
    for observer in &cluster.nodes {
        for peer in &cluster.nodes {
            if peer.node_name() != observer.node_name() {
                wait_link_status(observer, peer.node_name(), FIRST_LINK, "up");
            }
        }
    }
    for node in &mut cluster.nodes {
        let status = node.stop();
        assert!(
            status.success(),
            "vigil did not exit cleanly on SIGTERM ({status}); stderr:\n{}",
            node.log()
        );
    }
}

#[test]
fn two_nodes_see_each_other_active_over_bcast_sha1() {
    nodes_see_each_other_active(2, MediumKind::Bcast, "two-bcast");
}

#[test]
fn two_nodes_see_each_other_active_over_mcast_md5() {
    nodes_see_each_other_active(2, MediumKind::Mcast, "two-mcast");
}

#[test]
fn two_nodes_see_each_other_active_over_ucast_crc() {
    nodes_see_each_other_active(2, MediumKind::Ucast, "two-ucast");
}

#[test]
fn two_nodes_see_each_other_active_over_mcast6_md5() {
    nodes_see_each_other_active(2, MediumKind::Mcast6, "two-mcast6");
}

#[test]
fn two_nodes_see_each_other_active_over_ucast6_sha1() {
    nodes_see_each_other_active(2, MediumKind::Ucast6, "two-ucast6");
}

#[test]
fn two_nodes_see_each_other_active_over_link_local_ucast6_crc() {
    nodes_see_each_other_active(2, MediumKind::Ucast6LinkLocal, "two-ucast6ll");
}

/// Two nodes over one IPv6 medium: once both are active, cutting node 2's link makes node 1
/// declare it dead (node and link), and healing it brings it back.
fn cut_ipv6_link_makes_the_peer_dead(kind: MediumKind, hint: &str) {
    let Some(lab) = lab_for(kind, hint) else {
        return;
    };
    let cluster = VigilCluster::over(lab, 2, kind);
    wait_all_active(&cluster.views());
    let (node1, node2) = (cluster.node(1), cluster.node(2));
    wait_link_status(node1, node2.node_name(), FIRST_LINK, "up");
    cluster.lab.cut(cluster.net(2));
    wait_node_status(node1, node2.node_name(), "dead");
    wait_link_status(node1, node2.node_name(), FIRST_LINK, "dead");
    let reports = death_reports(&node1.log(), node2.node_name());
    assert!(
        !reports.is_empty(),
        "node1 did not log node2 dead:\n{}",
        node1.log()
    );
    cluster.lab.heal(cluster.net(2));
    wait_all_active(&cluster.views());
    wait_link_status(node1, node2.node_name(), FIRST_LINK, "up");
}

#[test]
fn cut_mcast6_link_makes_the_peer_dead_until_it_heals() {
    cut_ipv6_link_makes_the_peer_dead(MediumKind::Mcast6, "cut-mcast6");
}

#[test]
fn cut_ucast6_link_makes_the_peer_dead_until_it_heals() {
    cut_ipv6_link_makes_the_peer_dead(MediumKind::Ucast6, "cut-ucast6");
}

#[test]
fn three_nodes_see_each_other_active_over_bcast_sha1() {
    nodes_see_each_other_active(3, MediumKind::Bcast, "three-bcast");
}

#[test]
fn three_nodes_see_each_other_active_over_mcast_md5() {
    nodes_see_each_other_active(3, MediumKind::Mcast, "three-mcast");
}

#[test]
fn three_nodes_see_each_other_active_over_ucast_crc() {
    nodes_see_each_other_active(3, MediumKind::Ucast, "three-ucast");
}

/// Freezes node 3 (SIGSTOP) and cuts its link in a cluster of three; returns the cluster
/// once nodes 1 and 2 declared it dead, with node 3 still frozen and cut.
fn freeze_and_cut_third_node(hint: &str) -> Option<VigilCluster> {
    let lab = Lab::new(hint)?;
    let cluster = VigilCluster::over(lab, 3, MediumKind::Bcast);
    wait_all_active(&cluster.views());
    let victim = cluster.node(3);
    victim.freeze();
    cluster.lab.cut(cluster.net(3));
    for survivor in [cluster.node(1), cluster.node(2)] {
        wait_node_status(survivor, victim.node_name(), "dead");
    }
    for (observer, peer) in [(1, 2), (2, 1)] {
        let (status, rc) = cluster
            .node(observer)
            .node_status(cluster.node(peer).node_name());
        assert_eq!(
            (status.as_str(), rc),
            ("active", 0),
            "node{observer} lost node{peer} while only node3 died"
        );
    }
    Some(cluster)
}

#[test]
fn frozen_and_cut_off_node_is_declared_dead_by_the_others() {
    let Some(cluster) = freeze_and_cut_third_node("frozen") else {
        return;
    };
    cluster.node(3).thaw();
    cluster.lab.heal(cluster.net(3));
}

#[test]
fn node_declared_dead_is_active_again_after_it_returns() {
    let Some(cluster) = freeze_and_cut_third_node("returns") else {
        return;
    };
    cluster.node(3).thaw();
    cluster.lab.heal(cluster.net(3));
    wait_all_active(&cluster.views());
}

#[test]
fn short_outages_lose_no_node_and_lost_packets_are_retransmitted() {
    let Some(lab) = Lab::new("outages") else {
        return;
    };
    let cluster = VigilCluster::over(lab, 2, MediumKind::Bcast);
    wait_all_active(&cluster.views());
    let (node1, node2) = (cluster.node(1), cluster.node(2));
    // A node announces deadtime + 2 s for its first seconds; the outages must meet the
    // configured deadtime of 1 s.
    for (observer, peer) in [(node1, node2), (node2, node1)] {
        wait_for_deadtime(observer, peer.node_name(), 1000);
    }

    let violations = while_watching(&[(node1, node2), (node2, node1)], None, || {
        for _ in 0..3 {
            cluster.lab.cut(cluster.net(2));
            thread::sleep(Duration::from_millis(450));
            cluster.lab.heal(cluster.net(2));
            thread::sleep(Duration::from_secs(1));
        }
    });
    assert!(
        violations.is_empty(),
        "a node stopped being active during 450 ms outages:\n{}",
        violations.join("\n")
    );
    for (node, peer) in [(node1, node2), (node2, node1)] {
        let reports = death_reports(&node.log(), peer.node_name());
        assert!(
            reports.is_empty(),
            "{} logged {} dead during short outages:\n{}",
            node.node_name(),
            peer.node_name(),
            reports.join("\n")
        );
    }
    wait_for(
        "node1 to log the lost packets of node2 and their recovery",
        SETTLE_TIMEOUT,
        || {
            let log = node1.log();
            if log.contains("lost packet(s)") && log.contains("No pkts missing") {
                Ok(())
            } else {
                Err(format!("stderr of node1:\n{log}"))
            }
        },
    );
}

#[test]
fn cut_second_medium_marks_only_that_link_dead() {
    let Some(lab) = Lab::with_second_medium("twomedia") else {
        return;
    };
    let cluster = VigilCluster::start(lab, 2, |names, _| ClusterConfig {
        media: vec![
            format!("bcast {FIRST_LINK}"),
            format!("bcast {SECOND_LINK}"),
        ],
        nodes: names.iter().map(|n| n.to_string()).collect(),
        authkeys: MediumKind::Bcast.authkeys().to_string(),
        initdead_seconds: 2,
    });
    wait_all_active(&cluster.views());
    let (node1, node2) = (cluster.node(1), cluster.node(2));
    for (observer, peer) in [(node1, node2), (node2, node1)] {
        wait_link_status(observer, peer.node_name(), FIRST_LINK, "up");
        wait_link_status(observer, peer.node_name(), SECOND_LINK, "up");
    }

    let violations = while_watching(&[(node1, node2), (node2, node1)], Some(FIRST_LINK), || {
        cluster.lab.cut_link(cluster.net(2), SECOND_LINK);
        wait_link_status(node1, node2.node_name(), SECOND_LINK, "dead");
        wait_link_status(node2, node1.node_name(), SECOND_LINK, "dead");
        cluster.lab.heal_link(cluster.net(2), SECOND_LINK);
        wait_link_status(node1, node2.node_name(), SECOND_LINK, "up");
        wait_link_status(node2, node1.node_name(), SECOND_LINK, "up");
    });
    assert!(
        violations.is_empty(),
        "losing eth1 disturbed the node or its eth0 link:\n{}",
        violations.join("\n")
    );
}

/// The lab index of the namespace that eavesdrops and sends hostile datagrams. The cluster's
/// ucast lines include its address, so every node sends it a copy of everything.
const INTRUDER_INDEX: u8 = 9;

/// Receives datagrams on `socket` until `count` from `source` arrived that are sequenced
/// `status` messages; returns them.
fn capture_status_datagrams(socket: &UdpSocket, source: Ipv4Addr, count: usize) -> Vec<Vec<u8>> {
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap_or_else(|e| panic!("cannot set a read timeout: {e}"));
    let start = Instant::now();
    let mut captured = Vec::new();
    let mut buffer = vec![0u8; 65536];
    while captured.len() < count {
        assert!(
            start.elapsed() < SETTLE_TIMEOUT,
            "captured only {} status datagrams from {source} in {SETTLE_TIMEOUT:?}",
            captured.len()
        );
        let Ok((len, from)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        let datagram = &buffer[..len];
        if from.ip() == source
            && contains(datagram, b"(0)t=status,")
            && contains(datagram, b"(0)seq=")
        {
            captured.push(datagram.to_vec());
        }
    }
    captured
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Where the authentication trailer (`<len>:<slot> <token>,`) of a netstring datagram starts.
fn trailer_start(datagram: &[u8]) -> usize {
    datagram
        .windows(4)
        .rposition(|w| w == b"%%%\n")
        .map(|p| p + 4)
        .unwrap_or_else(|| {
            panic!(
                "captured datagram has no %%%: {}",
                String::from_utf8_lossy(datagram)
            )
        })
}

/// The datagram with the last digit of its trailer token changed.
fn with_wrong_signature(datagram: &[u8]) -> Vec<u8> {
    let mut altered = datagram.to_vec();
    let last_digit = altered.len() - 2;
    altered[last_digit] = if altered[last_digit] == b'0' {
        b'1'
    } else {
        b'0'
    };
    altered
}

/// The datagram with its trailer naming key slot 7, which authkeys does not define.
fn with_unknown_key_slot(datagram: &[u8]) -> Vec<u8> {
    let mut altered = datagram.to_vec();
    let start = trailer_start(datagram);
    let slot = start
        + datagram[start..]
            .iter()
            .position(|&b| b == b':')
            .unwrap_or_else(|| panic!("trailer without ':'"))
        + 1;
    altered[slot] = b'7';
    altered
}

/// The datagram with a 60 KB field inserted before its end marker: well-formed, far larger
/// than any real heartbeat, and no longer matching its signature.
fn with_60_kb_field(datagram: &[u8]) -> Vec<u8> {
    let end_marker = trailer_start(datagram) - 4;
    let value = "x".repeat(60 * 1024);
    let field = format!("{}:(0)pad={value},", "(0)pad=".len() + value.len());
    let mut altered = datagram[..end_marker].to_vec();
    altered.extend_from_slice(field.as_bytes());
    altered.extend_from_slice(&datagram[end_marker..]);
    altered
}

/// Bytes that are no message at all, including invalid UTF-8 and terminal escapes.
fn garbage() -> Vec<u8> {
    let mut bytes = b"\xff\xfe\x00\x1b[31m###\n12:(0)t=\xc3\x28".to_vec();
    bytes.extend((0u8..=255).rev());
    bytes
}

/// A counter of `vigil status --json` that a hostile datagram must increase.
#[derive(Debug, Clone, Copy)]
enum Counter {
    /// `drops.<reason>`.
    Drop(&'static str),
    /// A count elsewhere in the status, by JSON pointer.
    Status(&'static str),
}

impl Counter {
    /// The counter's value now on `node`; a reason never counted is 0.
    fn read(self, node: &VigilNode) -> u64 {
        match self {
            Counter::Drop(reason) => node.drops().get(reason).copied().unwrap_or(0),
            Counter::Status(pointer) => {
                let status = node.status_json();
                status
                    .pointer(pointer)
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or_else(|| {
                        panic!(
                            "no count at {pointer} in the status of {}: {status}",
                            node.node_name()
                        )
                    })
            }
        }
    }
}

/// Sends `datagram` to `target` from `socket` and waits until `counter` of `receiver` grew.
fn expect_counted(
    socket: &UdpSocket,
    target: SocketAddr,
    receiver: &VigilNode,
    what: &str,
    datagram: &[u8],
    counter: Counter,
) {
    let drops_before = receiver.drops();
    let before = counter.read(receiver);
    socket.send_to(datagram, target).unwrap_or_else(|e| {
        panic!(
            "cannot send {what} ({} bytes) to {target}: {e}",
            datagram.len()
        )
    });
    wait_for(
        &format!(
            "{} to count the {what} under {counter:?}",
            receiver.node_name()
        ),
        SETTLE_TIMEOUT,
        || {
            let now = counter.read(receiver);
            if now > before {
                Ok(())
            } else {
                Err(format!(
                    "{counter:?} still {now}; drops before {drops_before:?}, now {:?}",
                    receiver.drops()
                ))
            }
        },
    );
}

#[test]
fn hostile_datagrams_are_dropped_and_counted_without_changing_membership() {
    let Some(mut lab) = Lab::new("hostile") else {
        return;
    };
    let intruder_net = lab.add_node(INTRUDER_INDEX);
    let intruder_address = intruder_net.address;
    let mut cluster = VigilCluster::start(lab, 2, |names, addresses| {
        let mut with_tap = addresses.to_vec();
        with_tap.push(intruder_address);
        ClusterConfig::new(MediumKind::Ucast, names, &with_tap)
    });
    wait_all_active(&cluster.views());
    let intruder = intruder_net.udp_socket(UDP_PORT);
    let captured = capture_status_datagrams(&intruder, cluster.net(2).address, 3);
    let target = SocketAddr::from((cluster.net(1).address, UDP_PORT));
    let first = &captured[0];
    let cases = [
        ("garbage datagram", garbage(), Counter::Drop("malformed")),
        (
            "truncated datagram",
            first[..first.len() / 2].to_vec(),
            Counter::Drop("malformed"),
        ),
        (
            "60 KB datagram",
            with_60_kb_field(first),
            Counter::Drop("bad_signature"),
        ),
        (
            "datagram with a wrong signature",
            with_wrong_signature(first),
            Counter::Drop("bad_signature"),
        ),
        (
            "datagram signed with key slot 7",
            with_unknown_key_slot(first),
            Counter::Drop("unknown_key_slot"),
        ),
        // An authentic datagram seen before is a duplicate: counted, never processed again.
        (
            "replayed datagram",
            first.clone(),
            Counter::Status("/membership/counters/duplicates"),
        ),
    ];

    let (node1, node2) = (cluster.node(1), cluster.node(2));
    let violations = while_watching(&[(node1, node2), (node2, node1)], Some(FIRST_LINK), || {
        for (what, datagram, counter) in &cases {
            expect_counted(&intruder, target, node1, what, datagram, *counter);
        }
    });
    assert!(
        violations.is_empty(),
        "hostile datagrams changed membership:\n{}",
        violations.join("\n")
    );

    // A datagram of node2's previous run, replayed after node2 restarted with the next
    // generation.
    let node2 = &mut cluster.nodes[1];
    let status = node2.stop();
    assert!(status.success(), "node2 did not stop cleanly ({status})");
    node2.restart();
    wait_all_active(&cluster.views());
    let (node1, node2) = (cluster.node(1), cluster.node(2));
    expect_counted(
        &intruder,
        target,
        node1,
        "datagram of an earlier generation",
        &captured[1],
        Counter::Drop("lower_generation"),
    );
    for (observer, peer) in [(node1, node2), (node2, node1)] {
        let (status, rc) = observer.node_status(peer.node_name());
        assert_eq!(
            (status.as_str(), rc),
            ("active", 0),
            "{} no longer sees {} active after an old-generation replay",
            observer.node_name(),
            peer.node_name()
        );
    }

    let stderr = node1.stderr_bytes();
    if let Err(e) = std::str::from_utf8(&stderr) {
        panic!(
            "node1's stderr is not UTF-8 after hostile input ({e}):\n{}",
            String::from_utf8_lossy(&stderr)
        );
    }
}
