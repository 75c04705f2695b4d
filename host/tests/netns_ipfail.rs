//! Connectivity-driven failover (vigil's built-in ipfail) with real `vigil` processes in the
//! network-namespace lab: two nodes over `bcast` ping one router, a namespace where only the
//! kernel answers ICMP echo. ha.cf has Heartbeat's `respawn … ipfail` line, which vigil maps
//! onto its built-in logic. When node1, owner of a `Dummy` group, can no longer reach the
//! router (its echo requests are dropped inside its own namespace with nftables) while node2
//! still can, the group moves to node2; once node1 reaches the router again, the group comes
//! back (`auto_failback on`).
//!
//! Needs root and `nft` (the test says why it skips without them, or fails when
//! `VIGIL_REQUIRE_ROOT_TESTS=1`). Assertions go through `vigil status --json`. Timing is
//! ha.cf's keepalive 200ms, deadtime 1, initdead 2; `deadping` and the dampening are left at
//! their defaults (the deadtime, and `deadping`): the group leaves once the router is dead
//! to node1, and comes back once node1 has seen it again for the dampening.

mod support;

use std::time::{Duration, Instant};

use support::netns::{Lab, NodeNet};
use support::vigil_node::{VigilNode, wait_group};
use support::{
    ClStatus, ClusterConfig, MediumKind, node_name, run_checked, run_or_skip, wait_all_active,
    wait_node_status, write_file,
};

/// The group node1 prefers.
const GROUP: &str = "Dummy::conn";
/// nftables' program, used to drop node1's echo requests to the router.
const NFT: &str = "/usr/sbin/nft";
/// The nftables table the test adds in node1's namespace.
const TABLE: &str = "vigil_ipfail_test";

/// Drops every ICMP echo request node `net` sends to `router`.
fn block_pings(net: &NodeNet, router: &str) {
    let script = format!(
        "table inet {TABLE} {{\n  chain out {{\n    type filter hook output priority 0;\n    \
         ip daddr {router} icmp type echo-request drop\n  }}\n}}\n"
    );
    let path = net.dir.join("block-router.nft");
    write_file(&path, &script, 0o644);
    run_checked(net.exec(NFT).arg("-f").arg(&path));
}

/// Takes the rule of [`block_pings`] away again.
fn unblock_pings(net: &NodeNet) {
    run_checked(net.exec(NFT).args(["delete", "table", "inet", TABLE]));
}

#[test]
fn an_owner_that_loses_the_router_gives_its_group_to_the_peer_and_gets_it_back() {
    if !run_or_skip(
        std::path::Path::new(NFT).exists(),
        "nftables (nft) is not installed",
    ) {
        return;
    }
    let Some(mut lab) = Lab::new("ipfail") else {
        return;
    };
    let nets: Vec<NodeNet> = (1..=2).map(|i| lab.add_node(i)).collect();
    let router = lab.add_node(50);
    let router_name = router.address.to_string();
    let names: Vec<String> = (1..=2).map(node_name).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let addresses: Vec<_> = nets.iter().map(|n| n.address).collect();
    let mut config = ClusterConfig::new(MediumKind::Bcast, &name_refs, &addresses);
    config.media.push(format!("ping {router_name}"));
    let nodes: Vec<VigilNode> = nets
        .iter()
        .zip(&names)
        .map(|(net, name)| {
            VigilNode::start_prepared(net, name, &config, &[], |ha| {
                let ha_cf = ha.join("ha.cf");
                let mut text = std::fs::read_to_string(&ha_cf)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", ha_cf.display()));
                text.push_str("respawn root /usr/lib/heartbeat/ipfail\n");
                write_file(&ha_cf, &text, 0o644);
                write_file(&ha.join("haresources"), &format!("node1 {GROUP}\n"), 0o644);
            })
        })
        .collect();
    let (node1, node2) = (&nodes[0], &nodes[1]);

    wait_all_active(&[node1, node2]);
    for node in [node1, node2] {
        wait_node_status(node, &router_name, "ping");
    }
    wait_group(node1, GROUP, Some("node1"), "running");
    wait_group(node2, GROUP, Some("node1"), "stopped");
    for node in [node1, node2] {
        let log = node.log();
        assert!(
            log.contains("connectivity failover enabled"),
            "{}: the ipfail line did not enable connectivity failover:\n{log}",
            node.node_name()
        );
    }

    let cut_at = Instant::now();
    block_pings(&nets[0], &router_name);
    wait_node_status(node1, &router_name, "dead");
    assert_eq!(
        node2.node_status(&router_name),
        ("ping".to_string(), 0),
        "only node1 lost the router"
    );
    wait_group(node2, GROUP, Some("node2"), "running");
    wait_group(node1, GROUP, Some("node2"), "stopped");
    let moved_after = cut_at.elapsed();
    // The last answer came at most a keepalive before the cut: the router is dead, and the
    // group leaves, no sooner than deadping (1 s) minus that keepalive.
    assert!(
        moved_after >= Duration::from_millis(800),
        "the group moved after {moved_after:?}: sooner than deadping (1 s)"
    );

    let log = node1.log();
    assert!(
        log.contains(&format!("we see 0: standing by for {GROUP}")),
        "node1 did not say why it let the group go:\n{log}"
    );

    unblock_pings(&nets[0]);
    wait_node_status(node1, &router_name, "ping");
    let answered_at = Instant::now();
    wait_group(node1, GROUP, Some("node1"), "running");
    let returned_after = answered_at.elapsed();
    // The status poll sees `ping` up to a poll interval late.
    assert!(
        returned_after >= Duration::from_millis(800),
        "the group came back {returned_after:?} after node1 saw the router again: sooner than \
         the dampening (deadping, 1 s)"
    );
    wait_group(node2, GROUP, Some("node1"), "stopped");
    drop(nodes);
    drop(router);
    drop(nets);
}
