//! A WASM agent as a cluster resource fails over like a built-in one (namespaces): the
//! example `wasm-vip` agent, loaded from a directory in `VIGIL_PLUGIN_PATH` and granted
//! `log`, `addresses` and `arp` on `eth0` in the YAML configuration, brings its address up
//! on the preferred node and announces it, the peer takes it when the owner hangs, and it
//! goes back with `auto_failback on`. A configuration that leaves out the `arp` grant is
//! refused by `vigil config check`, naming the capability.
//!
//! The failover test needs root and `tcpdump` (it says why it skips without them, or fails
//! when `VIGIL_REQUIRE_ROOT_TESTS=1`); the `config check` test needs neither. Both build the
//! example with cargo for `wasm32-wasip2` first. What is asserted is what an operator sees:
//! addresses with `ip` inside the node's namespace, gratuitous ARP on the node's bridge port
//! with `tcpdump`, `cl_status`, `vigil status --json` and the daemon's log. Timing is the
//! other namespace tests': keepalive 200ms, deadtime 1, warntime 500ms, initdead 2 over
//! `bcast eth0` with `sha1`; waits poll with generous deadlines and never judge speed.

mod support;

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use support::capture::{PortCapture, TCPDUMP};
use support::netns::{FIRST_LINK, Lab, NodeNet, address_holders, wait_address_holders};
use support::plugin_build::{PluginWorkspace, wasm_plugin};
use support::vigil_node::{VIGIL_BIN, VigilNode, wait_group};
use support::{
    ClStatus, ClusterConfig, MediumKind, SETTLE_TIMEOUT, ScratchDir, node_name, run_or_skip,
    unique_token, wait_all_active, wait_for, wait_node_status,
};

/// The host number of the virtual address the agent manages (198.18.<lab>.100).
const VIP_HOST: u8 = 100;

/// The environment variable naming the directories plugins are loaded from.
const PLUGIN_PATH_ENV: &str = "VIGIL_PLUGIN_PATH";

/// Everything `wasm-vip` needs: its log lines, the addresses of `eth0` and gratuitous ARP
/// out of `eth0`.
const FULL_GRANT: &str = "{ log: true, addresses: [eth0], arp: [eth0] }";

/// The same without `arp`, which the agent declares and so must be refused.
const GRANT_WITHOUT_ARP: &str = "{ log: true, addresses: [eth0] }";

/// vigil nodes in one lab running the WASM agent's group. Fields drop in declaration order:
/// the daemons go before the namespaces they run in.
struct WasmCluster {
    /// The daemons, node `i` at position `i - 1`.
    nodes: Vec<VigilNode>,
    /// Their places in the lab.
    nets: Vec<NodeNet>,
    /// The lab itself, dropped last; the plugin directory is inside it.
    lab: Lab,
}

impl WasmCluster {
    /// A lab with `count` node namespaces and no daemon yet, or `None` when the test skips.
    fn create(hint: &str, count: u8) -> Option<WasmCluster> {
        let mut lab = Lab::new(hint)?;
        let nets = (1..=count).map(|i| lab.add_node(i)).collect();
        Some(WasmCluster {
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

    /// Starts a daemon on every node, node 1 first, from YAML with the lab's timing and
    /// `resource_groups`, loading plugins from `plugin_dir`.
    fn start(&mut self, resource_groups: &str, plugin_dir: &Path) {
        let names: Vec<String> = (1..=self.count()).map(node_name).collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let addresses: Vec<Ipv4Addr> = self.nets.iter().map(|n| n.address).collect();
        let config = ClusterConfig::new(MediumKind::Bcast, &name_refs, &addresses);
        for (net, name) in self.nets.iter().zip(&names) {
            let yaml = config.yaml(name, resource_groups);
            let node = VigilNode::start_yaml(
                net,
                name,
                &yaml,
                &[(PLUGIN_PATH_ENV, plugin_dir.as_os_str())],
            );
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

    /// Starts capturing the ARP packets node `index` sends and receives on its bridge port.
    fn capture_arp(&self, index: u8, label: &str) -> PortCapture {
        let net = self.net(index);
        PortCapture::start(
            &self.lab,
            net,
            FIRST_LINK,
            "arp",
            &net.dir.join(format!("{label}.pcap")),
        )
    }

    /// Waits until `capture` holds a gratuitous ARP announcing `address` at the MAC address
    /// of node `index`'s `eth0`.
    fn wait_announcement(&self, capture: &PortCapture, address: Ipv4Addr, index: u8) {
        let mac = self.net(index).mac_address(FIRST_LINK);
        wait_for(
            &format!(
                "a gratuitous ARP for {address} from {}'s {FIRST_LINK} {mac:02x?}",
                node_name(index)
            ),
            SETTLE_TIMEOUT,
            || {
                let packets = capture.arp_packets();
                if packets.iter().any(|p| p.announces(address, mac)) {
                    Ok(())
                } else {
                    Err(format!("ARP packets seen: {packets:?}"))
                }
            },
        );
    }
}

impl Drop for WasmCluster {
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

/// Builds the example agent and copies it alone into `<dir>/plugins`, the directory to give
/// as `VIGIL_PLUGIN_PATH` (the build directory may hold other components).
fn wasm_vip_plugin_dir(dir: &Path) -> PathBuf {
    let built = wasm_plugin(PluginWorkspace::Examples, "wasm-vip");
    let plugins = dir.join("plugins");
    fs::create_dir_all(&plugins)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", plugins.display()));
    let file_name = built
        .file_name()
        .unwrap_or_else(|| panic!("{} has no file name", built.display()));
    fs::copy(&built, plugins.join(file_name))
        .unwrap_or_else(|e| panic!("cannot copy {}: {e}", built.display()));
    plugins
}

/// The `resource_groups:` of one group preferring `node` whose only resource is `token`
/// with `grant`.
fn wasm_group(node: &str, token: &str, grant: &str) -> String {
    format!(
        "resource_groups:\n  - node: {node}\n    resources:\n      - token: \"{token}\"\n        grant: {grant}\n"
    )
}

/// The token of the WASM agent managing `vip`: Heartbeat's positional `ip/bits/nic`.
fn wasm_vip_token(vip: Ipv4Addr) -> String {
    format!("wasm-vip::{vip}/24/{FIRST_LINK}")
}

/// Whether the daemon's log has the line the agent writes through its `log` grant when it
/// adds `vip` (`198.18.X.100/24 added to eth0`).
fn logged_start(node: &VigilNode, vip: Ipv4Addr) -> bool {
    let added = format!("{vip}/24 added to {FIRST_LINK}");
    node.log().lines().any(|line| line.contains(&added))
}

#[test]
fn a_wasm_address_agent_fails_over_to_the_peer_and_back_with_auto_failback_on() {
    if !run_or_skip(
        Path::new(TCPDUMP).exists(),
        "tcpdump (Debian package tcpdump; run .ci/install-test-packages)",
    ) {
        return;
    }
    let Some(mut cluster) = WasmCluster::create("wasmvip", 2) else {
        return;
    };
    let plugin_dir = wasm_vip_plugin_dir(cluster.lab.dir());
    let vip = cluster.lab_address(VIP_HOST);
    let key = wasm_vip_token(vip);
    let first_announcement = cluster.capture_arp(1, "start-arp");
    cluster.start(&wasm_group("node1", &key, FULL_GRANT), &plugin_dir);

    wait_all_active(&[cluster.node(1), cluster.node(2)]);
    wait_group(cluster.node(1), &key, Some("node1"), "running");
    wait_group(cluster.node(2), &key, Some("node1"), "stopped");
    cluster.wait_holders(vip, &[1, 2], &[1]);
    cluster.wait_announcement(&first_announcement, vip, 1);
    assert!(
        logged_start(cluster.node(1), vip),
        "node1's log has no line of the agent saying it added {vip}"
    );

    // node1 hangs and drops off the network with its address still up.
    let takeover_announcement = cluster.capture_arp(2, "takeover-arp");
    cluster.node(1).freeze();
    cluster.lab.cut(cluster.net(1));
    wait_node_status(cluster.node(2), "node1", "dead");
    cluster.wait_holders(vip, &[2], &[2]);
    wait_group(cluster.node(2), &key, Some("node2"), "running");
    cluster.wait_announcement(&takeover_announcement, vip, 2);
    assert!(
        logged_start(cluster.node(2), vip),
        "node2's log has no line of the agent saying it added {vip}"
    );

    // node1 comes back: its group goes back to it and node2 lets the address go.
    cluster.node(1).thaw();
    cluster.lab.heal(cluster.net(1));
    wait_all_active(&[cluster.node(1), cluster.node(2)]);
    wait_group(cluster.node(1), &key, Some("node1"), "running");
    wait_group(cluster.node(2), &key, Some("node1"), "stopped");
    cluster.wait_holders(vip, &[1, 2], &[1]);
    for _ in 0..10 {
        assert_eq!(
            cluster.holders(vip, &[1, 2]),
            [1],
            "{vip} is not on node1 only after it returned"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// Writes the lab-style YAML of node1 and node2 whose one group is the WASM agent's with
/// `grant`, as `<dir>/<label>.yaml`.
fn check_config(dir: &Path, label: &str, grant: &str) -> PathBuf {
    let config = ClusterConfig::new(
        MediumKind::Bcast,
        &["node1", "node2"],
        &[Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2)],
    );
    let token = wasm_vip_token(Ipv4Addr::new(198, 18, 0, VIP_HOST));
    let path = dir.join(format!("{label}.yaml"));
    support::write_file(
        &path,
        &config.yaml("node1", &wasm_group("node1", &token, grant)),
        0o600,
    );
    path
}

/// Runs `vigil config check --config FILE` with plugins from `plugin_dir`; returns its exit
/// code and everything it printed.
fn config_check(file: &Path, plugin_dir: &Path) -> (i32, String) {
    let output = Command::new(VIGIL_BIN)
        .args(["config", "check", "--config"])
        .arg(file)
        .env(PLUGIN_PATH_ENV, plugin_dir)
        .env("NO_COLOR", "1")
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
fn config_check_refuses_the_wasm_agent_without_its_arp_grant_naming_the_capability() {
    let (pid, counter) = unique_token();
    let scratch = ScratchDir::new(&format!("vigil-wasm-check-{pid}-{counter}"));
    let plugin_dir = wasm_vip_plugin_dir(scratch.path());

    let granted = check_config(scratch.path(), "granted", FULL_GRANT);
    let (rc, said) = config_check(&granted, &plugin_dir);
    assert_eq!(
        rc, 0,
        "config check refused the agent with every grant it needs: {said}"
    );
    assert!(said.contains("1 resource group(s)"), "{said}");

    let without_arp = check_config(scratch.path(), "without-arp", GRANT_WITHOUT_ARP);
    let (rc, said) = config_check(&without_arp, &plugin_dir);
    assert_ne!(
        rc, 0,
        "config check accepted the agent without `arp`: {said}"
    );
    for expected in [
        "capability `arp`".to_string(),
        "`wasm-vip`".to_string(),
        without_arp.display().to_string(),
    ] {
        assert!(
            said.contains(&expected),
            "the refusal does not say {expected:?}: {said}"
        );
    }
}
