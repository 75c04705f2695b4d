//! Resource failover of real `vigil` processes in the network-namespace lab: haresources
//! groups start on their preferred node, move to a survivor when their node hangs, is cut
//! off or dies, come back with `auto_failback on`, follow `hb_standby` and `hb_takeover`, are
//! released on SIGTERM, and run legacy agents (resource-agents' OCF Dummy and IPaddr2, an LSB
//! init script, Heartbeat's own resource.d IPaddr wrapper) unchanged. A slow agent never
//! stops the heartbeats, a failed start leaves nothing half up, and `vigil config check`
//! refuses bad resources naming their haresources line.
//!
//! Needs root for everything but the `config check` tests (each test says why it skips
//! without it, or fails when `VIGIL_REQUIRE_ROOT_TESTS=1`). What is asserted is what an
//! operator sees: addresses with `ip` inside the node's namespace, frames on the bridge with
//! `tcpdump`, `cl_status`, `vigil status --json`, the daemon's log, and the state files the
//! test's own resource scripts keep. Timing is ha.cf's keepalive 200ms, deadtime 1,
//! warntime 500ms, initdead 2 over `bcast eth0` with `sha1`; waits poll with generous
//! deadlines and never judge speed.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::capture::{PortCapture, TCPDUMP};
use support::netns::{FIRST_LINK, Lab, NodeNet, address_holders, wait_address_holders};
use support::vigil_node::{PrivateDir, VIGIL_BIN, VigilNode, group_view, wait_group};
use support::{
    ClStatus, ClusterConfig, MediumKind, SETTLE_TIMEOUT, ScratchDir, line_reports_dead, node_name,
    run_or_skip, unique_token, wait_all_active, wait_for, wait_node_status, write_file,
};

/// The host number of the virtual address the tests move around (198.18.<lab>.100).
const VIP_HOST: u8 = 100;
/// The host number of the address resource-agents' IPaddr2 manages.
const IPADDR2_HOST: u8 = 101;
/// The host number of the address Heartbeat's resource.d IPaddr wrapper manages.
const WRAPPER_HOST: u8 = 102;

/// How long the slow resource's start takes: several deadtimes, so a daemon whose
/// heartbeats waited for the agent would be declared dead meanwhile.
const SLOW_START: Duration = Duration::from_secs(5);

/// resource-agents' OCF Dummy and IPaddr2, which `OCF::Dummy::…` and `OCF::IPaddr2::…` run.
const OCF_DUMMY: &str = "/usr/lib/ocf/resource.d/heartbeat/Dummy";
const OCF_IPADDR2: &str = "/usr/lib/ocf/resource.d/heartbeat/IPaddr2";
/// Heartbeat 3.0.6's resource.d wrapper around resource-agents' IPaddr.
const HEARTBEAT_IPADDR_WRAPPER: &str = "/etc/ha.d/resource.d/IPaddr";
/// resource-agents' IPaddr configures the address with `ifconfig` (package net-tools).
const IFCONFIG: &str = "/sbin/ifconfig";

/// vigil nodes in one lab with resource groups. Fields drop in declaration order: the
/// daemons go before the namespaces they run in.
struct FailoverCluster {
    /// The daemons, node `i` at position `i - 1`; empty until [`FailoverCluster::start`].
    nodes: Vec<VigilNode>,
    /// Their places in the lab.
    nets: Vec<NodeNet>,
    /// The lab itself, dropped last.
    lab: Lab,
}

/// What every node of a cluster is configured with beyond the lab's ha.cf.
struct Resources<'a> {
    /// `auto_failback` in ha.cf: `on` or `off`.
    auto_failback: &'a str,
    /// The haresources file, the same on every node.
    haresources: String,
    /// Adds a node's own files (scripts keeping state in its directory, OCF instance
    /// files) to its configuration directory before its daemon starts.
    prepare: &'a dyn Fn(&NodeNet, &Path),
}

impl FailoverCluster {
    /// A lab with `count` node namespaces and no daemon yet, or `None` when the test skips.
    fn create(hint: &str, count: u8) -> Option<FailoverCluster> {
        let mut lab = Lab::new(hint)?;
        let nets = (1..=count).map(|i| lab.add_node(i)).collect();
        Some(FailoverCluster {
            nodes: Vec::new(),
            nets,
            lab,
        })
    }

    /// The address with host number `host` in the lab's `eth0` network.
    fn lab_address(&self, host: u8) -> Ipv4Addr {
        let [a, b, c, _] = self.nets[0].address.octets();
        Ipv4Addr::new(a, b, c, host)
    }

    /// Starts a daemon on every node, node 1 first, with bcast/sha1 and `resources`. Each
    /// daemon sees `<node dir>/init.d` as `/etc/init.d` and `<node dir>/rsctmp` as
    /// `/run/resource-agents` (where resource-agents keep their bookkeeping), as if each node
    /// were a machine of its own.
    fn start(&mut self, resources: &Resources) {
        let names: Vec<String> = (1..=self.count()).map(node_name).collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let addresses: Vec<Ipv4Addr> = self.nets.iter().map(|n| n.address).collect();
        let config = ClusterConfig::new(MediumKind::Bcast, &name_refs, &addresses);
        for (net, name) in self.nets.iter().zip(&names) {
            let private_dirs = [
                PrivateDir {
                    source: net.dir.join("init.d"),
                    target: PathBuf::from("/etc/init.d"),
                },
                PrivateDir {
                    source: net.dir.join("rsctmp"),
                    target: PathBuf::from("/run/resource-agents"),
                },
            ];
            let node = VigilNode::start_prepared(net, name, &config, &private_dirs, |ha| {
                set_auto_failback(ha, resources.auto_failback);
                write_file(&ha.join("haresources"), &resources.haresources, 0o644);
                fs::create_dir_all(ha.join("resource.d"))
                    .unwrap_or_else(|e| panic!("cannot create resource.d: {e}"));
                (resources.prepare)(net, ha);
            });
            self.nodes.push(node);
        }
    }

    fn count(&self) -> u8 {
        u8::try_from(self.nets.len()).unwrap_or(u8::MAX)
    }

    /// Node `index` (from 1).
    fn node(&self, index: u8) -> &VigilNode {
        &self.nodes[usize::from(index) - 1]
    }

    /// Node `index`'s place in the lab.
    fn net(&self, index: u8) -> &NodeNet {
        &self.nets[usize::from(index) - 1]
    }

    /// The nodes among `among` whose `eth0` carries `address` now.
    fn holders(&self, address: Ipv4Addr, among: &[u8]) -> Vec<u8> {
        address_holders(&self.nets, address, among)
    }

    /// Waits until, of the nodes `among`, exactly `expected` carry `address`.
    fn wait_holders(&self, address: Ipv4Addr, among: &[u8], expected: &[u8]) {
        wait_address_holders(&self.nets, address, among, expected);
    }

    /// The nodes among `among` where the test script `name` is running (its state file,
    /// kept in the node's directory, exists).
    fn running(&self, name: &str, among: &[u8]) -> Vec<u8> {
        among
            .iter()
            .copied()
            .filter(|&i| script_state(self.net(i), name).exists())
            .collect()
    }

    /// Waits until, of the nodes `among`, exactly `expected` run the test script `name`.
    fn wait_running(&self, name: &str, among: &[u8], expected: &[u8]) {
        wait_for(
            &format!("{name} running on node(s) {expected:?} of {among:?}"),
            SETTLE_TIMEOUT,
            || match self.running(name, among) {
                now if now == expected => Ok(()),
                now => Err(format!("running on node(s) {now:?}")),
            },
        );
    }
}

impl Drop for FailoverCluster {
    fn drop(&mut self) {
        if thread::panicking() {
            for node in &self.nodes {
                eprintln!(
                    "----- log of {} (last 120 lines) -----\n{}",
                    node.node_name(),
                    last_lines(&node.log(), 120)
                );
            }
        }
    }
}

/// The last `count` lines of `text`: a failed test shows the end of each node's log.
fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// Replaces the lab's `auto_failback on` in the node's ha.cf with `value`.
fn set_auto_failback(ha_dir: &Path, value: &str) {
    let path = ha_dir.join("ha.cf");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(
        text.contains("auto_failback on\n"),
        "the lab's ha.cf has no auto_failback line: {text}"
    );
    let changed = text.replace("auto_failback on\n", &format!("auto_failback {value}\n"));
    write_file(&path, &changed, 0o644);
}

/// The state file the test script `name` keeps in the node's directory while it runs.
fn script_state(net: &NodeNet, name: &str) -> PathBuf {
    net.dir.join(format!("{name}.state"))
}

/// The journal of starts and stops every test script of the node appends to.
fn journal(net: &NodeNet) -> Vec<String> {
    fs::read_to_string(net.dir.join("journal"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Writes the heartbeat-class script `<ha_dir>/resource.d/<name>` for `net`: called as
/// `name [args…] start|stop|status`, `start` runs `start_hook` (shell; an `exit 1` there fails
/// the start) and then creates the state file in the node's directory, `stop` removes it,
/// `status` prints `running` or `stopped`. Every start and stop is journalled.
fn write_resource_script(net: &NodeNet, ha_dir: &Path, name: &str, start_hook: &str) {
    let dir = net.dir.display();
    let script = format!(
        r#"#!/bin/sh
# Heartbeat-class resource script for the failover tests.
state='{dir}/{name}.state'
journal='{dir}/journal'
for action; do :; done
case "$action" in
start)
    echo "{name} start" >> "$journal"
    {start_hook}
    echo "$HA_CURHOST" > "$state"
    ;;
stop)
    echo "{name} stop" >> "$journal"
    rm -f "$state"
    ;;
status)
    if [ -f "$state" ]; then echo running; else echo stopped; fi
    ;;
*)
    echo "usage: $0 {{start|stop|status}}" >&2
    exit 1
    ;;
esac
exit 0
"#
    );
    write_file(&ha_dir.join("resource.d").join(name), &script, 0o755);
}

/// Waits until `cl_status rscstatus` on `node` says `word`.
fn wait_rsc_status(node: &VigilNode, word: &str) {
    wait_for(
        &format!("{} to answer rscstatus {word}", node.node_name()),
        SETTLE_TIMEOUT,
        || match node.cl_status(&["rscstatus"]) {
            (out, 0) if out.trim() == word => Ok(()),
            (out, rc) => Err(format!("{:?} (rc {rc})", out.trim())),
        },
    );
}

/// Runs a Heartbeat tool (`hb_standby`, `hb_takeover`) on `node`; fails the test if it
/// does not succeed.
fn run_heartbeat_tool(node: &VigilNode, tool: &str, args: &[&str]) {
    let (stdout, stderr, rc) = node.run_tool(tool, args);
    assert_eq!(
        rc,
        0,
        "{tool} {args:?} on {} failed: {stdout}{stderr}",
        node.node_name()
    );
}

/// Whether `tcpdump` is there to watch the bridge.
fn tcpdump_or_skip() -> bool {
    run_or_skip(
        Path::new(TCPDUMP).exists(),
        "tcpdump (Debian package tcpdump; run .ci/install-test-packages)",
    )
}

/// The haresources of the two-node tests: node1's group is the virtual address and the
/// test script `hbdemo`.
fn address_and_script_group(cluster: &FailoverCluster, preferred: &str) -> String {
    let vip = cluster.lab_address(VIP_HOST);
    format!("{preferred} IPaddr::{vip}/24/{FIRST_LINK} hbdemo\n")
}

fn prepare_hbdemo(net: &NodeNet, ha_dir: &Path) {
    write_resource_script(net, ha_dir, "hbdemo", ":");
}

/// Starts two nodes with node1's group `IPaddr::VIP/24/eth0 hbdemo` and waits until it runs
/// on node1 only and node2 knows that.
fn two_nodes_with_address_group(hint: &str, auto_failback: &str) -> Option<FailoverCluster> {
    let mut cluster = FailoverCluster::create(hint, 2)?;
    let haresources = address_and_script_group(&cluster, "node1");
    cluster.start(&Resources {
        auto_failback,
        haresources,
        prepare: &prepare_hbdemo,
    });
    let vip = cluster.lab_address(VIP_HOST);
    let key = format!("IPaddr::{vip}/24/{FIRST_LINK}");
    wait_all_active(&[cluster.node(1), cluster.node(2)]);
    wait_group(cluster.node(1), &key, Some("node1"), "running");
    wait_group(cluster.node(2), &key, Some("node1"), "stopped");
    assert_eq!(
        cluster.holders(vip, &[1, 2]),
        [1],
        "{vip} is not on node1 only"
    );
    assert_eq!(
        cluster.running("hbdemo", &[1, 2]),
        [1],
        "hbdemo does not run on node1 only"
    );
    Some(cluster)
}

/// Freezes node1 (SIGSTOP) and cuts it off; waits until node2 runs its group and has
/// announced the address with gratuitous ARP from its own `eth0` (seen on node2's bridge
/// port). Node1 stays frozen and cut.
fn freeze_owner_and_see_peer_take_over(cluster: &FailoverCluster) {
    let vip = cluster.lab_address(VIP_HOST);
    let capture = PortCapture::start(
        &cluster.lab,
        cluster.net(2),
        FIRST_LINK,
        "arp",
        &cluster.net(2).dir.join("arp.pcap"),
    );
    cluster.node(1).freeze();
    cluster.lab.cut(cluster.net(1));
    wait_node_status(cluster.node(2), "node1", "dead");
    cluster.wait_holders(vip, &[2], &[2]);
    cluster.wait_running("hbdemo", &[2], &[2]);
    let node2_mac = cluster.net(2).mac_address(FIRST_LINK);
    wait_for(
        &format!("a gratuitous ARP for {vip} from node2's {FIRST_LINK} {node2_mac:02x?}"),
        SETTLE_TIMEOUT,
        || {
            let packets = capture.arp_packets();
            if packets.iter().any(|p| p.announces(vip, node2_mac)) {
                Ok(())
            } else {
                Err(format!("ARP packets on node2's port: {packets:?}"))
            }
        },
    );
}

#[test]
fn frozen_owner_loses_its_address_to_the_peer_and_gets_it_back_with_auto_failback_on() {
    if !tcpdump_or_skip() {
        return;
    }
    let Some(cluster) = two_nodes_with_address_group("fbon", "on") else {
        return;
    };
    let vip = cluster.lab_address(VIP_HOST);
    freeze_owner_and_see_peer_take_over(&cluster);

    cluster.node(1).thaw();
    cluster.lab.heal(cluster.net(1));
    wait_all_active(&[cluster.node(1), cluster.node(2)]);
    let key = format!("IPaddr::{vip}/24/{FIRST_LINK}");
    wait_group(cluster.node(1), &key, Some("node1"), "running");
    wait_group(cluster.node(2), &key, Some("node1"), "stopped");
    cluster.wait_holders(vip, &[1, 2], &[1]);
    cluster.wait_running("hbdemo", &[1, 2], &[1]);
}

#[test]
fn with_auto_failback_off_the_address_stays_on_the_peer_when_the_owner_returns() {
    let Some(mut cluster) = two_nodes_with_address_group("fboff", "off") else {
        return;
    };
    let vip = cluster.lab_address(VIP_HOST);
    let key = format!("IPaddr::{vip}/24/{FIRST_LINK}");
    // A crash: node1's daemon dies and its node drops off the network.
    cluster.nodes[0].kill_hard();
    cluster.lab.cut(cluster.net(1));
    wait_node_status(cluster.node(2), "node1", "dead");
    cluster.wait_holders(vip, &[2], &[2]);
    cluster.wait_running("hbdemo", &[2], &[2]);

    // node1 reboots: its address and its script's state are gone with the old system, it
    // comes back on the network and starts vigil again.
    run_ip(
        cluster.net(1),
        &["addr", "del", &format!("{vip}/24"), "dev", FIRST_LINK],
    );
    let _ = fs::remove_file(script_state(cluster.net(1), "hbdemo"));
    cluster.lab.heal(cluster.net(1));
    cluster.nodes[0].restart();
    wait_all_active(&[cluster.node(1), cluster.node(2)]);
    wait_group(cluster.node(1), &key, Some("node2"), "stopped");
    wait_group(cluster.node(2), &key, Some("node2"), "running");
    // Nothing moves later either: the owner stays while both nodes keep agreeing.
    for _ in 0..10 {
        assert_eq!(cluster.holders(vip, &[1, 2]), [2], "{vip} left node2");
        assert_eq!(cluster.running("hbdemo", &[1, 2]), [2], "hbdemo left node2");
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn with_auto_failback_off_a_healed_partition_leaves_the_group_with_the_first_holder_in_order() {
    let Some(cluster) = two_nodes_with_address_group("fboffpart", "off") else {
        return;
    };
    let vip = cluster.lab_address(VIP_HOST);
    let key = format!("IPaddr::{vip}/24/{FIRST_LINK}");
    cluster.node(1).freeze();
    cluster.lab.cut(cluster.net(1));
    wait_node_status(cluster.node(2), "node1", "dead");
    cluster.wait_holders(vip, &[2], &[2]);

    // Both held the group while apart (node1 frozen with its address still up). With
    // auto_failback off the holder first in the group's order keeps it: node1, its preferred
    // node; node2 releases it.
    cluster.node(1).thaw();
    cluster.lab.heal(cluster.net(1));
    wait_all_active(&[cluster.node(1), cluster.node(2)]);
    wait_group(cluster.node(1), &key, Some("node1"), "running");
    wait_group(cluster.node(2), &key, Some("node1"), "stopped");
    cluster.wait_holders(vip, &[1, 2], &[1]);
    cluster.wait_running("hbdemo", &[1, 2], &[1]);
}

/// Runs `ip ARGS` inside the node's namespace; fails the test when it fails.
fn run_ip(net: &NodeNet, args: &[&str]) {
    support::run_checked(Command::new("ip").arg("-n").arg(&net.namespace).args(args));
}

#[test]
fn standby_and_takeover_move_the_address_and_sigterm_releases_it_to_the_peer() {
    let Some(mut cluster) = FailoverCluster::create("standby", 2) else {
        return;
    };
    let vip = cluster.lab_address(VIP_HOST);
    let haresources = format!(
        "{}node2 Dummy::two\n",
        address_and_script_group(&cluster, "node1")
    );
    cluster.start(&Resources {
        auto_failback: "on",
        haresources,
        prepare: &prepare_hbdemo,
    });
    let key = format!("IPaddr::{vip}/24/{FIRST_LINK}");
    wait_all_active(&[cluster.node(1), cluster.node(2)]);
    wait_group(cluster.node(1), &key, Some("node1"), "running");
    wait_group(cluster.node(2), "Dummy::two", Some("node2"), "running");
    assert_eq!(cluster.holders(vip, &[1, 2]), [1]);
    wait_rsc_status(cluster.node(1), "local");
    wait_rsc_status(cluster.node(2), "local");

    run_heartbeat_tool(cluster.node(1), "hb_standby", &[]);
    cluster.wait_holders(vip, &[1, 2], &[2]);
    cluster.wait_running("hbdemo", &[1, 2], &[2]);
    wait_rsc_status(cluster.node(1), "none");
    wait_rsc_status(cluster.node(2), "all");

    run_heartbeat_tool(cluster.node(1), "hb_takeover", &[]);
    cluster.wait_holders(vip, &[1, 2], &[1]);
    cluster.wait_running("hbdemo", &[1, 2], &[1]);
    wait_group(cluster.node(1), "Dummy::two", Some("node1"), "running");
    wait_rsc_status(cluster.node(1), "all");
    wait_rsc_status(cluster.node(2), "none");

    let status = cluster.nodes[0].stop();
    assert!(status.success(), "node1 did not stop cleanly ({status})");
    // The namespace outlives the daemon: whatever is still on eth0 now was left behind.
    assert_eq!(
        cluster.holders(vip, &[1]),
        [] as [u8; 0],
        "node1 exited with {vip} still on its {FIRST_LINK}"
    );
    assert_eq!(
        cluster.running("hbdemo", &[1]),
        [] as [u8; 0],
        "node1 exited with hbdemo running"
    );
    cluster.wait_holders(vip, &[2], &[2]);
    cluster.wait_running("hbdemo", &[2], &[2]);
    wait_group(cluster.node(2), "Dummy::two", Some("node2"), "running");
    wait_rsc_status(cluster.node(2), "all");
}

/// Watches, until `done`, which of the nodes `among` carry `address`, polling as fast as
/// `ip` answers; returns every node ever seen with it and every moment two had it at once.
fn watch_address(
    nets: &[NodeNet],
    address: Ipv4Addr,
    done: &AtomicBool,
) -> (BTreeSet<u8>, Vec<String>) {
    let start = Instant::now();
    let mut ever = BTreeSet::new();
    let mut doubles = Vec::new();
    while !done.load(Ordering::Relaxed) {
        let holders: Vec<u8> = nets
            .iter()
            .filter(|n| n.ipv4_addresses(FIRST_LINK).contains(&address))
            .map(|n| n.index)
            .collect();
        ever.extend(holders.iter().copied());
        if holders.len() > 1 {
            doubles.push(format!("{:?}: on {holders:?}", start.elapsed()));
        }
    }
    (ever, doubles)
}

#[test]
fn in_three_nodes_exactly_one_survivor_takes_the_address_and_the_last_node_takes_everything() {
    let Some(mut cluster) = FailoverCluster::create("three", 3) else {
        return;
    };
    let vip = cluster.lab_address(VIP_HOST);
    let key = format!("IPaddr::{vip}/24/{FIRST_LINK}");
    cluster.start(&Resources {
        auto_failback: "on",
        haresources: format!("node1 {key}\nnode2 Dummy::two\nnode3 Dummy::three\n"),
        prepare: &|_, _| {},
    });
    let all = [cluster.node(1), cluster.node(2), cluster.node(3)];
    wait_all_active(&[all[0], all[1], all[2]]);
    for node in all {
        wait_group(
            node,
            &key,
            Some("node1"),
            if node.node_name() == "node1" {
                "running"
            } else {
                "stopped"
            },
        );
    }
    wait_group(cluster.node(2), "Dummy::two", Some("node2"), "running");
    wait_group(cluster.node(3), "Dummy::three", Some("node3"), "running");
    assert_eq!(cluster.holders(vip, &[1, 2, 3]), [1]);

    let done = AtomicBool::new(false);
    let survivors = [cluster.net(2).clone(), cluster.net(3).clone()];
    let (taker, (ever, doubles)) = thread::scope(|scope| {
        let watcher = scope.spawn(|| watch_address(&survivors, vip, &done));
        let stop_watching = StopWatching(&done);
        cluster.nodes[0].kill_hard();
        cluster.lab.cut(cluster.net(1));
        let taker = wait_for(
            "one survivor to carry the address with both survivors agreeing on it",
            SETTLE_TIMEOUT,
            || {
                let views = [
                    group_view(cluster.node(2), &key)?,
                    group_view(cluster.node(3), &key)?,
                ];
                let holders = cluster.holders(vip, &[2, 3]);
                match (&views[0].0, &views[1].0, holders.as_slice()) {
                    (Some(a), Some(b), [holder]) if a == b && *a == node_name(*holder) => {
                        Ok(*holder)
                    }
                    _ => Err(format!("views {views:?}, address on {holders:?}")),
                }
            },
        );
        // Keep watching a while: a second survivor starting late would show now.
        thread::sleep(Duration::from_secs(2));
        drop(stop_watching);
        let seen = watcher
            .join()
            .unwrap_or_else(|_| panic!("the address watcher failed"));
        (taker, seen)
    });
    assert!(
        doubles.is_empty(),
        "{vip} was on both survivors:\n{}",
        doubles.join("\n")
    );
    assert_eq!(
        ever,
        BTreeSet::from([taker]),
        "more than one survivor carried {vip} after node1 died"
    );

    let last = if taker == 2 { 3 } else { 2 };
    cluster.nodes[usize::from(taker) - 1].kill_hard();
    cluster.lab.cut(cluster.net(taker));
    let last_node = cluster.node(last);
    wait_node_status(last_node, &node_name(taker), "dead");
    cluster.wait_holders(vip, &[last], &[last]);
    let last_name = node_name(last);
    wait_group(last_node, &key, Some(&last_name), "running");
    wait_group(last_node, "Dummy::two", Some(&last_name), "running");
    wait_group(last_node, "Dummy::three", Some(&last_name), "running");
    wait_rsc_status(last_node, "all");
}

/// Tells a watcher to stop when dropped, so a failing scenario cannot leave it running (the
/// scope would wait for it forever).
struct StopWatching<'a>(&'a AtomicBool);

impl Drop for StopWatching<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// An LSB init script `hblsb` keeping its state in the node's directory: `status` answers
/// `is running` with 0 or `is stopped` with 3, as LSB says.
fn write_lsb_script(net: &NodeNet) {
    let dir = net.dir.display();
    let script = format!(
        r#"#!/bin/sh
### BEGIN INIT INFO
# Provides:          hblsb
# Required-Start:    $network
# Required-Stop:     $network
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: LSB service of the failover tests
### END INIT INFO
state='{dir}/hblsb.state'
case "$1" in
start)
    [ -f "$state" ] || echo started > "$state"
    exit 0
    ;;
stop)
    rm -f "$state"
    exit 0
    ;;
restart|force-reload)
    echo started > "$state"
    exit 0
    ;;
status)
    if [ -f "$state" ]; then echo "hblsb is running"; exit 0; fi
    echo "hblsb is stopped"
    exit 3
    ;;
*)
    echo "Usage: $0 {{start|stop|restart|force-reload|status}}" >&2
    exit 2
    ;;
esac
"#
    );
    write_file(&net.dir.join("init.d").join("hblsb"), &script, 0o755);
}

#[test]
fn ocf_dummy_ocf_ipaddr2_and_an_lsb_script_run_unchanged_through_the_daemon() {
    if !run_or_skip(
        Path::new(OCF_DUMMY).exists() && Path::new(OCF_IPADDR2).exists(),
        "resource-agents' Dummy and IPaddr2 (Debian package resource-agents; run .ci/install-test-packages)",
    ) {
        return;
    }
    let Some(mut cluster) = FailoverCluster::create("legacy", 2) else {
        return;
    };
    let vip2 = cluster.lab_address(IPADDR2_HOST);
    let prepare = |net: &NodeNet, ha_dir: &Path| {
        let dummy_dir = ha_dir.join("conf/OCF/Dummy");
        let ipaddr2_dir = ha_dir.join("conf/OCF/IPaddr2");
        for dir in [&dummy_dir, &ipaddr2_dir] {
            fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        }
        write_file(
            &dummy_dir.join("d1"),
            &format!(
                "# resource-agents' Dummy keeps its state here\nOCF_RESKEY_state={}\n",
                net.dir.join("d1.state").display()
            ),
            0o644,
        );
        write_file(
            &ipaddr2_dir.join("vip2"),
            &format!(
                "OCF_RESKEY_ip={vip2}\nOCF_RESKEY_cidr_netmask=24\nexport OCF_RESKEY_nic=\"{FIRST_LINK}\"\n"
            ),
            0o644,
        );
        write_lsb_script(net);
    };
    cluster.start(&Resources {
        auto_failback: "on",
        haresources: "node1 OCF::Dummy::d1 OCF::IPaddr2::vip2 hblsb\n".to_string(),
        prepare: &prepare,
    });
    let key = "OCF::Dummy::d1";
    wait_all_active(&[cluster.node(1), cluster.node(2)]);
    wait_group(cluster.node(1), key, Some("node1"), "running");
    wait_group(cluster.node(2), key, Some("node1"), "stopped");
    let log = cluster.node(1).log();
    for runner in [
        format!("OCF agent {OCF_DUMMY}"),
        format!("OCF agent {OCF_IPADDR2}"),
        "init script /etc/init.d/hblsb".to_string(),
    ] {
        assert!(
            log.contains(&runner),
            "node1 never ran {runner}; its log:\n{log}"
        );
    }
    let runs_everything_on = |expected: &[u8]| {
        cluster.wait_running("d1", &[1, 2], expected);
        cluster.wait_holders(vip2, &[1, 2], expected);
        cluster.wait_running("hblsb", &[1, 2], expected);
    };
    runs_everything_on(&[1]);

    // Every agent stops on node1 and starts on node2, and back.
    run_heartbeat_tool(cluster.node(1), "hb_standby", &[]);
    wait_group(cluster.node(2), key, Some("node2"), "running");
    runs_everything_on(&[2]);
    run_heartbeat_tool(cluster.node(1), "hb_takeover", &[]);
    wait_group(cluster.node(1), key, Some("node1"), "running");
    runs_everything_on(&[1]);
}

#[test]
fn heartbeats_resource_d_ipaddr_wrapper_runs_unchanged_as_a_resource_d_script() {
    if !run_or_skip(
        Path::new(HEARTBEAT_IPADDR_WRAPPER).exists() && Path::new(IFCONFIG).exists(),
        "Heartbeat's resource.d/IPaddr wrapper (package heartbeat) and ifconfig, which \
         resource-agents' IPaddr runs (package net-tools)",
    ) {
        return;
    }
    let Some(mut cluster) = FailoverCluster::create("wrapper", 2) else {
        return;
    };
    let address = cluster.lab_address(WRAPPER_HOST);
    // `IPaddr::…` in haresources always means vigil's built-in IPaddr, so the wrapper is
    // reached under another name: a link to the installed script, run as it is.
    let prepare = |_: &NodeNet, ha_dir: &Path| {
        std::os::unix::fs::symlink(HEARTBEAT_IPADDR_WRAPPER, ha_dir.join("resource.d/HbIPaddr"))
            .unwrap_or_else(|e| panic!("cannot link the IPaddr wrapper: {e}"));
    };
    let key = format!("HbIPaddr::{address}/24/{FIRST_LINK}");
    cluster.start(&Resources {
        auto_failback: "on",
        haresources: format!("node1 {key}\n"),
        prepare: &prepare,
    });
    wait_all_active(&[cluster.node(1), cluster.node(2)]);
    wait_group(cluster.node(1), &key, Some("node1"), "running");
    cluster.wait_holders(address, &[1, 2], &[1]);
    let log = cluster.node(1).log();
    assert!(
        log.contains("resource.d script"),
        "node1 did not run the wrapper as a resource.d script; its log:\n{log}"
    );
    run_heartbeat_tool(cluster.node(1), "hb_standby", &[]);
    wait_group(cluster.node(2), &key, Some("node2"), "running");
    cluster.wait_holders(address, &[1, 2], &[2]);
}

/// Watches, until `done`, that `observer` sees `peer` active and that `vigil status` answers
/// on `observer`; returns every other observation with the time since the watch began.
fn watch_alive(observer: &VigilNode, peer: &str, done: &AtomicBool) -> Vec<String> {
    let start = Instant::now();
    let mut violations = Vec::new();
    while !done.load(Ordering::Relaxed) {
        let (status, rc) = observer.node_status(peer);
        if status != "active" || rc != 0 {
            violations.push(format!(
                "{:?}: {} saw {peer} {status:?} (rc {rc})",
                start.elapsed(),
                observer.node_name()
            ));
        }
        if let Err(e) = observer.try_status_json() {
            violations.push(format!(
                "{:?}: vigil status on {} failed: {e}",
                start.elapsed(),
                observer.node_name()
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
    violations
}

#[test]
fn heartbeats_and_the_status_api_go_on_while_an_agent_takes_seconds_to_start() {
    let Some(mut cluster) = FailoverCluster::create("slow", 2) else {
        return;
    };
    // The start is slow only once the test asks for it, after the cluster settled.
    let prepare = |net: &NodeNet, ha_dir: &Path| {
        let slow_flag = net.dir.join("slow");
        let begun = net.dir.join("slow-start-begun");
        let hook = format!(
            "if [ -f '{}' ]; then : > '{}'; sleep {}; fi",
            slow_flag.display(),
            begun.display(),
            SLOW_START.as_secs()
        );
        write_resource_script(net, ha_dir, "slowstart", &hook);
    };
    cluster.start(&Resources {
        auto_failback: "on",
        haresources: "node1 slowstart\n".to_string(),
        prepare: &prepare,
    });
    wait_all_active(&[cluster.node(1), cluster.node(2)]);
    wait_group(cluster.node(2), "slowstart", Some("node1"), "stopped");
    cluster.wait_running("slowstart", &[1, 2], &[1]);
    write_file(&cluster.net(2).dir.join("slow"), "", 0o644);

    let (node1, node2) = (cluster.node(1), cluster.node(2));
    let done = AtomicBool::new(false);
    let violations = thread::scope(|scope| {
        let watchers = [
            scope.spawn(|| watch_alive(node1, "node2", &done)),
            scope.spawn(|| watch_alive(node2, "node1", &done)),
        ];
        {
            let _stop = StopWatching(&done);
            run_heartbeat_tool(node1, "hb_standby", &[]);
            let begun = cluster.net(2).dir.join("slow-start-begun");
            wait_for("node2 to begin the slow start", SETTLE_TIMEOUT, || {
                if begun.exists() {
                    Ok(())
                } else {
                    Err("not begun".to_string())
                }
            });
            // While the agent sleeps, node2 reports the group as starting.
            wait_group(node2, "slowstart", Some("node2"), "starting");
            cluster.wait_running("slowstart", &[2], &[2]);
        }
        watchers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|_| vec!["watcher panicked".to_string()])
            })
            .collect::<Vec<_>>()
    });
    assert!(
        violations.is_empty(),
        "a node was lost or stopped answering while an agent started:\n{}",
        violations.join("\n")
    );
    for (node, peer) in [(node1, "node2"), (node2, "node1")] {
        let log = node.log();
        let deaths: Vec<&str> = log.lines().filter(|l| line_reports_dead(l, peer)).collect();
        assert!(
            deaths.is_empty(),
            "{} declared {peer} dead while an agent started:\n{}",
            node.node_name(),
            deaths.join("\n")
        );
    }
    wait_group(node2, "slowstart", Some("node2"), "running");
}

#[test]
fn a_failed_start_stops_the_group_in_reverse_order_and_the_peer_runs_it() {
    let Some(mut cluster) = FailoverCluster::create("failstart", 2) else {
        return;
    };
    // `second` cannot start on node1.
    let prepare = |net: &NodeNet, ha_dir: &Path| {
        write_resource_script(net, ha_dir, "first", ":");
        write_resource_script(
            net,
            ha_dir,
            "second",
            r#"if [ "$HA_CURHOST" = node1 ]; then echo "second cannot start here" >&2; exit 1; fi"#,
        );
    };
    cluster.start(&Resources {
        auto_failback: "on",
        haresources: "node1 first second\n".to_string(),
        prepare: &prepare,
    });
    wait_group(cluster.node(1), "first", Some("node2"), "failed");
    wait_group(cluster.node(2), "first", Some("node2"), "running");
    cluster.wait_running("first", &[1, 2], &[2]);
    cluster.wait_running("second", &[1, 2], &[2]);
    assert_eq!(
        journal(cluster.net(1)),
        ["first start", "second start", "second stop", "first stop"],
        "node1 did not undo its failed start right to left"
    );
    let log = cluster.node(1).log();
    assert!(
        log.lines()
            .any(|l| l.contains("second") && l.contains("start") && l.contains("failed")),
        "node1's log does not report the failed start of `second`:\n{log}"
    );
    let (table, _, rc) = cluster.node(1).run_tool("vigil", &["status"]);
    assert_eq!(rc, 0, "vigil status on node1 failed: {table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("first") && l.contains("failed")),
        "vigil status on node1 does not show the group failed:\n{table}"
    );
}

/// A Heartbeat configuration directory for `vigil config check`: the lab's ha.cf and authkeys
/// for node1 and node2, `haresources`, and the resource.d scripts `hbdemo` (executable) and
/// `notexec` (not executable).
fn config_dir(scratch: &ScratchDir, label: &str, haresources: &str) -> PathBuf {
    let dir = scratch.path().join(label);
    fs::create_dir_all(dir.join("resource.d"))
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let config = ClusterConfig::new(
        MediumKind::Bcast,
        &["node1", "node2"],
        &[Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2)],
    );
    write_file(&dir.join("ha.cf"), &config.ha_cf(""), 0o644);
    write_file(&dir.join("authkeys"), &config.authkeys, 0o600);
    write_file(&dir.join("haresources"), haresources, 0o644);
    let script = "#!/bin/sh\ncase \"$1\" in status) echo stopped ;; esac\nexit 0\n";
    write_file(&dir.join("resource.d/hbdemo"), script, 0o755);
    write_file(&dir.join("resource.d/notexec"), script, 0o644);
    dir
}

/// Runs `vigil config check --ha-dir DIR`; returns its exit code and everything it printed.
fn config_check(dir: &Path) -> (i32, String) {
    let output = Command::new(VIGIL_BIN)
        .args(["config", "check", "--ha-dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {VIGIL_BIN}: {e}"));
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn config_check_accepts_resolvable_resources() {
    let (pid, counter) = unique_token();
    let scratch = ScratchDir::new(&format!("vigil-failover-check-{pid}-{counter}"));
    let dir = config_dir(
        &scratch,
        "good",
        "node1 IPaddr::198.18.0.100/24/eth0 hbdemo\nnode2 198.18.0.101 Dummy::two\n",
    );
    let (rc, said) = config_check(&dir);
    assert_eq!(rc, 0, "config check refused a good configuration: {said}");
    assert!(said.contains("2 resource group(s)"), "{said}");
}

#[test]
fn config_check_refuses_bad_resources_naming_file_and_line() {
    let (pid, counter) = unique_token();
    let scratch = ScratchDir::new(&format!("vigil-failover-check-{pid}-{counter}"));
    let good_first_line = "node1 IPaddr::198.18.0.100/24/eth0 hbdemo\n";
    let cases = [
        ("unknown-node", "node9 Dummy::nine", "node9"),
        ("unknown-agent", "node2 nosuchagent", "nosuchagent"),
        (
            "bad-ipaddr",
            "node2 IPaddr::198.18.0.300/24/eth0",
            "198.18.0.300",
        ),
        (
            "bad-ipaddr-bits",
            "node2 IPaddr::198.18.0.50/33/eth0",
            "cidr_netmask",
        ),
        ("not-executable", "node2 notexec", "not executable"),
    ];
    for (label, line, detail) in cases {
        let dir = config_dir(&scratch, label, &format!("{good_first_line}{line}\n"));
        let (rc, said) = config_check(&dir);
        assert_ne!(rc, 0, "config check accepted `{line}`: {said}");
        let place = format!("{}:2", dir.join("haresources").display());
        assert!(
            said.contains(&place),
            "config check of `{line}` does not name {place}: {said}"
        );
        assert!(
            said.contains(detail),
            "config check of `{line}` does not say {detail:?}: {said}"
        );
    }
}
