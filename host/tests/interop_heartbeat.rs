//! Interoperability with the real Heartbeat 3.0.6: Debian's daemon and vigil as peers in one
//! cluster, in the network-namespace lab, each checked with its own `cl_status`.
//!
//! Needs root and the Debian packages `.ci/install-test-packages` installs; without them
//! each test says why it skips (or fails when `VIGIL_REQUIRE_ROOT_TESTS=1`). The first tests
//! run Heartbeat alone and prove the lab itself: when they fail, the lab is broken, not vigil.

mod support;

use support::heartbeat::{HeartbeatNode, heartbeat_or_skip};
use support::netns::{FIRST_LINK, Lab};
use support::vigil_node::VigilNode;
use support::{
    ClStatus, ClusterConfig, MediumKind, node_name, wait_all_active, wait_link_status,
    wait_node_status,
};

/// Two Heartbeat nodes reach `active` over `kind` and see each other's link up; the
/// survivor declares a hard-killed node dead, and active again once it is restarted in the
/// same namespaces. When `stop_gracefully`, a node stopped with `heartbeat -k` is then
/// declared dead too.
fn heartbeat_pair_forms_a_cluster(kind: MediumKind, hint: &str, stop_gracefully: bool) {
    if !heartbeat_or_skip() {
        return;
    }
    let Some(mut lab) = Lab::new(hint) else {
        return;
    };
    let (net1, net2) = (lab.add_node(1), lab.add_node(2));
    let (name1, name2) = (node_name(1), node_name(2));
    let config = ClusterConfig::new(kind, &[&name1, &name2], &[net1.address, net2.address]);
    let hb1 = HeartbeatNode::start(&net1, &name1, &config);
    let hb2 = HeartbeatNode::start(&net2, &name2, &config);

    wait_all_active(&[&hb1, &hb2]);
    wait_link_status(&hb1, &name2, FIRST_LINK, "up");
    wait_link_status(&hb2, &name1, FIRST_LINK, "up");
    let (listed, rc) = hb1.cl_status(&["listnodes"]);
    assert_eq!(rc, 0, "cl_status listnodes failed: {listed}");
    let mut names: Vec<&str> = listed.lines().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [name1.as_str(), name2.as_str()],
        "listnodes printed {listed:?}"
    );

    hb2.kill_hard();
    wait_node_status(&hb1, &name2, "dead");
    let (out, rc) = hb2.cl_status(&["hbstatus"]);
    assert_eq!(rc, 1, "a killed Heartbeat still reports running: {out}");

    hb2.start_daemon();
    wait_all_active(&[&hb1, &hb2]);

    if stop_gracefully {
        hb1.stop();
        assert!(
            hb1.pids().is_empty(),
            "processes left after heartbeat -k: {:?}",
            hb1.pids()
        );
        wait_node_status(&hb2, &name1, "dead");
    }
}

#[test]
fn heartbeat_pair_forms_a_cluster_over_bcast_sha1_in_the_lab() {
    heartbeat_pair_forms_a_cluster(MediumKind::Bcast, "hbbcast", true);
}

#[test]
fn heartbeat_pair_forms_a_cluster_over_mcast_md5_in_the_lab() {
    heartbeat_pair_forms_a_cluster(MediumKind::Mcast, "hbmcast", false);
}

#[test]
fn heartbeat_pair_forms_a_cluster_over_ucast_crc_in_the_lab() {
    heartbeat_pair_forms_a_cluster(MediumKind::Ucast, "hbucast", false);
}

/// A vigil node and a Heartbeat node over `kind` see each other active, each by its own
/// `cl_status`; vigil declares the hard-killed Heartbeat dead; after Heartbeat is back,
/// Heartbeat declares the hard-killed vigil dead.
fn vigil_and_heartbeat_interoperate(kind: MediumKind, hint: &str) {
    if !heartbeat_or_skip() {
        return;
    }
    let Some(mut lab) = Lab::new(hint) else {
        return;
    };
    let (net1, net2) = (lab.add_node(1), lab.add_node(2));
    let (name1, name2) = (node_name(1), node_name(2));
    let config = ClusterConfig::new(kind, &[&name1, &name2], &[net1.address, net2.address]);
    let mut vigil = VigilNode::start(&net1, &name1, &config);
    let heartbeat = HeartbeatNode::start(&net2, &name2, &config);

    wait_all_active(&[&vigil, &heartbeat]);
    wait_link_status(&vigil, &name2, FIRST_LINK, "up");
    wait_link_status(&heartbeat, &name1, FIRST_LINK, "up");

    heartbeat.kill_hard();
    wait_node_status(&vigil, &name2, "dead");
    wait_link_status(&vigil, &name2, FIRST_LINK, "dead");

    heartbeat.start_daemon();
    wait_all_active(&[&vigil, &heartbeat]);

    vigil.kill_hard();
    wait_node_status(&heartbeat, &name1, "dead");
    wait_link_status(&heartbeat, &name1, FIRST_LINK, "dead");
}

#[test]
fn vigil_and_heartbeat_interoperate_over_bcast_sha1() {
    vigil_and_heartbeat_interoperate(MediumKind::Bcast, "ivbcast");
}

#[test]
fn vigil_and_heartbeat_interoperate_over_mcast_md5() {
    vigil_and_heartbeat_interoperate(MediumKind::Mcast, "ivmcast");
}

#[test]
fn vigil_and_heartbeat_interoperate_over_ucast_crc() {
    vigil_and_heartbeat_interoperate(MediumKind::Ucast, "ivucast");
}
