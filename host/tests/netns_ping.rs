//! Ping nodes of real `vigil` processes in the network-namespace lab: two nodes over `bcast`
//! watch routers, which are namespaces of their own where only the kernel answers ICMP echo.
//! A `ping` router is `ping` while it answers and `dead` once cut off for `deadping`; a
//! `ping_group` stays `ping` while any member answers.
//!
//! Needs root (each test says why it skips without it, or fails when
//! `VIGIL_REQUIRE_ROOT_TESTS=1`). Assertions go through `cl_status`, what an operator (and
//! ipfail) sees. Timing is ha.cf's keepalive 200ms, deadtime 1, warntime 500ms, initdead 2;
//! `deadping` is left at its default, the deadtime.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use support::netns::{Lab, NodeNet};
use support::vigil_node::VigilNode;
use support::{
    ClStatus, ClusterConfig, MediumKind, node_name, wait_all_active, wait_link_status,
    wait_node_status,
};

/// Two vigil nodes and their routers. Fields drop in declaration order: the daemons go
/// before the namespaces they run in.
struct PingLab {
    nodes: Vec<VigilNode>,
    /// The vigil nodes' places in the lab.
    _nets: Vec<NodeNet>,
    /// The routers, lab indices 50 and up: nothing runs there but the kernel.
    routers: Vec<NodeNet>,
    lab: Lab,
}

impl PingLab {
    /// Starts two nodes over `bcast eth0` with `router_count` routers, adding the media
    /// lines `ping_lines` makes from the routers' addresses.
    fn start(
        name_hint: &str,
        router_count: u8,
        ping_lines: impl FnOnce(&[String]) -> Vec<String>,
    ) -> Option<PingLab> {
        let mut lab = Lab::new(name_hint)?;
        let nets: Vec<NodeNet> = (1..=2).map(|i| lab.add_node(i)).collect();
        let routers: Vec<NodeNet> = (0..router_count).map(|i| lab.add_node(50 + i)).collect();
        let names: Vec<String> = (1..=2).map(node_name).collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let addresses: Vec<_> = nets.iter().map(|n| n.address).collect();
        let mut config = ClusterConfig::new(MediumKind::Bcast, &name_refs, &addresses);
        let router_addresses: Vec<String> = routers.iter().map(|r| r.address.to_string()).collect();
        config.media.extend(ping_lines(&router_addresses));
        let nodes = nets
            .iter()
            .zip(&names)
            .map(|(net, name)| VigilNode::start(net, name, &config))
            .collect();
        Some(PingLab {
            nodes,
            _nets: nets,
            routers,
            lab,
        })
    }

    fn views(&self) -> Vec<&dyn ClStatus> {
        self.nodes.iter().map(|n| n as &dyn ClStatus).collect()
    }

    /// Waits until both nodes report `node` in `status` (rc 0 for `ping`, 1 for `dead`).
    fn wait_both(&self, node: &str, status: &str) {
        for observer in self.views() {
            wait_node_status(observer, node, status);
        }
    }

    /// Checks that both nodes keep reporting `node` as `ping` for `period`.
    fn stays_ping(&self, node: &str, period: Duration) {
        let until = Instant::now() + period;
        while Instant::now() < until {
            for observer in self.views() {
                assert_eq!(
                    observer.node_status(node),
                    ("ping".to_string(), 0),
                    "{} lost {node}",
                    observer.node_name()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn a_router_is_a_ping_node_on_both_nodes_and_dead_once_cut_off() {
    let Some(lab) = PingLab::start("ping", 1, |routers| vec![format!("ping {}", routers[0])])
    else {
        return;
    };
    let router = lab.routers[0].address.to_string();
    wait_all_active(&lab.views());
    lab.wait_both(&router, "ping");
    for observer in lab.views() {
        assert_eq!(
            observer.cl_status(&["nodetype", &router]),
            ("ping\n".to_string(), 0)
        );
        let (listed, rc) = observer.cl_status(&["listnodes", "-p"]);
        assert_eq!(
            (listed.lines().collect::<Vec<_>>(), rc),
            (vec![router.as_str()], 0)
        );
        let (normal, _) = observer.cl_status(&["listnodes", "-n"]);
        assert!(!normal.contains(&router), "{normal}");
        assert_eq!(
            observer.cl_status(&["listhblinks", &router]).0.trim(),
            router
        );
        wait_link_status(observer, &router, &router, "up");
        // The peer's links are the cluster's media only.
        let peer = if observer.node_name() == "node1" {
            "node2"
        } else {
            "node1"
        };
        assert_eq!(observer.cl_status(&["listhblinks", peer]).0.trim(), "eth0");
    }

    let cut_at = Instant::now();
    lab.lab.cut(&lab.routers[0]);
    lab.wait_both(&router, "dead");
    assert!(
        cut_at.elapsed() >= Duration::from_millis(800),
        "dead only after deadping (1 s), not after {:?}",
        cut_at.elapsed()
    );
    for observer in lab.views() {
        wait_link_status(observer, &router, &router, "dead");
        // A dead router is no node death: both nodes stay active.
        for node in ["node1", "node2"] {
            assert_eq!(observer.node_status(node), ("active".to_string(), 0));
        }
    }

    lab.lab.heal(&lab.routers[0]);
    lab.wait_both(&router, "ping");
}

#[test]
fn a_ping_group_lives_while_any_member_answers() {
    let Some(lab) = PingLab::start("pinggrp", 2, |routers| {
        vec![format!("ping_group routers {} {}", routers[0], routers[1])]
    }) else {
        return;
    };
    wait_all_active(&lab.views());
    lab.wait_both("routers", "ping");
    for observer in lab.views() {
        assert_eq!(
            observer.cl_status(&["nodetype", "routers"]),
            ("ping\n".to_string(), 0)
        );
    }

    lab.lab.cut(&lab.routers[0]);
    // Twice deadping with one member cut: the other keeps the group alive.
    lab.stays_ping("routers", Duration::from_millis(2500));

    lab.lab.cut(&lab.routers[1]);
    lab.wait_both("routers", "dead");

    lab.lab.heal(&lab.routers[1]);
    lab.wait_both("routers", "ping");
}

/// A mixed cluster, Heartbeat 3.0.6 on node1 and vigil on node2, with the same `ping` line:
/// each pings the router itself, and both see it `ping`, then `dead` once it is cut off.
#[test]
fn heartbeat_and_vigil_with_the_same_ping_line_both_see_the_router() {
    if !support::heartbeat::heartbeat_or_skip() {
        return;
    }
    let Some(mut lab) = Lab::new("pinghb") else {
        return;
    };
    let (net1, net2, router) = (lab.add_node(1), lab.add_node(2), lab.add_node(50));
    let (name1, name2) = (node_name(1), node_name(2));
    let mut config = ClusterConfig::new(
        MediumKind::Bcast,
        &[&name1, &name2],
        &[net1.address, net2.address],
    );
    let router_name = router.address.to_string();
    config.media.push(format!("ping {router_name}"));
    let hb1 = support::heartbeat::HeartbeatNode::start(&net1, &name1, &config);
    let vigil2 = VigilNode::start(&net2, &name2, &config);
    let views: [&dyn ClStatus; 2] = [&hb1, &vigil2];

    wait_all_active(&views);
    for observer in views {
        wait_node_status(observer, &router_name, "ping");
        assert_eq!(
            observer.cl_status(&["nodetype", &router_name]),
            ("ping\n".to_string(), 0),
            "{}",
            observer.node_name()
        );
    }

    lab.cut(&router);
    for observer in views {
        wait_node_status(observer, &router_name, "dead");
    }
    for observer in views {
        for node in [&name1, &name2] {
            assert_eq!(observer.node_status(node), ("active".to_string(), 0));
        }
    }
    drop(vigil2);
    drop(hb1);
}
