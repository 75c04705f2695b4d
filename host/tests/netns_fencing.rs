//! Fencing before takeover with real `vigil` processes in the network-namespace lab: two
//! nodes, node1's group a virtual address, and a `stonith_host *` line in ha.cf. When node1
//! hangs and is cut off, node2 (the chosen owner of its group) must reset it through the
//! device before the address comes up there: with `null` the reset is logged before the
//! takeover; with `meatware` nothing moves until an operator confirms with Debian's
//! `meatclient`; with a device that always fails nothing ever moves and the failure is
//! visible in the log and in `vigil status`.
//!
//! Needs root (each test says why it skips without it, or fails when
//! `VIGIL_REQUIRE_ROOT_TESTS=1`). What is asserted is what an operator sees: the address with
//! `ip` inside node2's namespace, node2's log, and `vigil status` (text and `--json`). Each
//! daemon runs in a private mount namespace with a `/run` of its own (a directory of the
//! node), as if each node were a machine: meatware's FIFO `/run/meatware.node1` is then
//! node2's alone, and `meatclient` meets it by entering node2's namespaces. Timing is the
//! lab's (keepalive 200ms, deadtime 1, bcast with sha1); waits poll with generous deadlines.

mod support;

use std::fs;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::netns::{FIRST_LINK, Lab, NodeNet};
use support::vigil_node::{PrivateDir, VIGIL_BIN, VigilNode};
use support::{
    ClStatus, ClusterConfig, MediumKind, SETTLE_TIMEOUT, node_name, run_or_skip, wait_all_active,
    wait_for, wait_node_status, write_file,
};

/// The host number of the virtual address node1's group holds (198.18.<lab>.100).
const VIP_HOST: u8 = 100;

/// Debian's `meatclient` (package cluster-glue), the operator's tool of Heartbeat clusters.
const DEBIAN_MEATCLIENT: &str = "/usr/sbin/meatclient";

/// How long the tests watch that no takeover happens while the reset is not done: several
/// deadtimes, and long enough for the failing device's third attempt (1 s, then 2 s later).
const NO_TAKEOVER_WATCH: Duration = Duration::from_secs(8);

/// Two vigil nodes fencing through one device. Fields drop in declaration order: the
/// daemons go before the namespaces they run in.
struct FencingCluster {
    /// node1 and node2.
    nodes: Vec<VigilNode>,
    /// Their places in the lab.
    nets: Vec<NodeNet>,
    /// The lab itself, dropped last.
    lab: Lab,
}

impl FencingCluster {
    /// Starts node1 and node2 with `node1 IPaddr::VIP/24/eth0` and the ha.cf line
    /// `stonith_host * DEVICE`, and waits until the address runs on node1 only and both
    /// nodes see each other; `None` when the test skips.
    fn start(hint: &str, device: &str) -> Option<FencingCluster> {
        let mut lab = Lab::new(hint)?;
        let nets: Vec<NodeNet> = (1..=2).map(|i| lab.add_node(i)).collect();
        let names: Vec<String> = (1..=2).map(node_name).collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let addresses: Vec<Ipv4Addr> = nets.iter().map(|n| n.address).collect();
        let config = ClusterConfig::new(MediumKind::Bcast, &name_refs, &addresses);
        let mut cluster = FencingCluster {
            nodes: Vec::new(),
            nets,
            lab,
        };
        let vip = cluster.vip();
        for (net, name) in cluster.nets.iter().zip(&names) {
            let private_dirs = [PrivateDir {
                source: node_run_dir(net),
                target: PathBuf::from("/run"),
            }];
            let node = VigilNode::start_prepared(net, name, &config, &private_dirs, |ha| {
                append_stonith_host(ha, device);
                write_file(
                    &ha.join("haresources"),
                    &format!("node1 IPaddr::{vip}/24/{FIRST_LINK}\n"),
                    0o644,
                );
            });
            cluster.nodes.push(node);
        }
        wait_all_active(&[cluster.node(1), cluster.node(2)]);
        cluster.wait_vip_on(&[1, 2], &[1]);
        Some(cluster)
    }

    /// Node `index` (from 1).
    fn node(&self, index: u8) -> &VigilNode {
        &self.nodes[usize::from(index) - 1]
    }

    /// Node `index`'s place in the lab.
    fn net(&self, index: u8) -> &NodeNet {
        &self.nets[usize::from(index) - 1]
    }

    /// The virtual address of node1's group.
    fn vip(&self) -> Ipv4Addr {
        let [a, b, c, _] = self.nets[0].address.octets();
        Ipv4Addr::new(a, b, c, VIP_HOST)
    }

    /// The group key `vigil status` shows for node1's group.
    fn group_key(&self) -> String {
        format!("IPaddr::{}/24/{FIRST_LINK}", self.vip())
    }

    /// Whether node `index`'s `eth0` carries the virtual address now.
    fn has_vip(&self, index: u8) -> bool {
        self.net(index)
            .ipv4_addresses(FIRST_LINK)
            .contains(&self.vip())
    }

    /// Waits until, of the nodes `among`, exactly `expected` carry the virtual address (a
    /// frozen node1 keeps it on its interface, so a takeover is judged on node2 alone).
    fn wait_vip_on(&self, among: &[u8], expected: &[u8]) {
        wait_for(
            &format!("{} on node(s) {expected:?} of {among:?}", self.vip()),
            SETTLE_TIMEOUT,
            || {
                let now: Vec<u8> = among.iter().copied().filter(|&i| self.has_vip(i)).collect();
                if now == expected {
                    Ok(())
                } else {
                    Err(format!("on node(s) {now:?}"))
                }
            },
        );
    }

    /// Freezes node1 (SIGSTOP, a hung node that might wake up) and cuts it off, and waits
    /// until node2 declares it dead. Returns how long node2's log was before the freeze, so
    /// that what follows can be read on its own.
    fn freeze_and_cut_node1(&self) -> usize {
        let log_start = self.node(2).log().len();
        self.node(1).freeze();
        self.lab.cut(self.net(1));
        wait_node_status(self.node(2), "node1", "dead");
        log_start
    }

    /// node2's log since byte `from`.
    fn node2_log_since(&self, from: usize) -> String {
        self.node(2)
            .log()
            .get(from..)
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until node2's log since `from` has a line containing every one of `parts`;
    /// returns that line.
    fn wait_node2_log_line(&self, from: usize, parts: &[&str]) -> String {
        wait_for(
            &format!("node2 to log a line with {parts:?}"),
            SETTLE_TIMEOUT,
            || {
                self.node2_log_since(from)
                    .lines()
                    .find(|line| parts.iter().all(|part| line.contains(part)))
                    .map(str::to_string)
                    .ok_or_else(|| "no such line yet".to_string())
            },
        )
    }

    /// Fails the test if the virtual address appears on node2 during `watch`.
    fn assert_no_takeover_for(&self, watch: Duration, why: &str) {
        let start = Instant::now();
        while start.elapsed() < watch {
            assert!(
                !self.has_vip(2),
                "{} came up on node2 {:?} after the watch began although {why}",
                self.vip(),
                start.elapsed()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The one entry of node2's `failover.fencing` in `vigil status --json`, for node1.
    fn node2_fencing_entry(&self) -> Result<serde_json::Value, String> {
        let status = self.node(2).try_status_json()?;
        let fencing = status
            .pointer("/failover/fencing")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| format!("no failover.fencing list in the status: {status}"))?;
        match fencing.as_slice() {
            [entry] if entry.get("node").and_then(serde_json::Value::as_str) == Some("node1") => {
                Ok(entry.clone())
            }
            other => Err(format!("failover.fencing is {other:?}")),
        }
    }

    /// node2's `vigil status` as an operator reads it.
    fn node2_status_text(&self) -> String {
        let output = self
            .net(2)
            .exec(VIGIL_BIN)
            .args(["status", "--socket"])
            .arg(self.node(2).net().dir.join("vigil").join("vigil.sock"))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run vigil status on node2: {e}"));
        assert!(
            output.status.success(),
            "vigil status on node2 failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A command running `program` in node2's network and mount namespaces, where its
    /// daemon lives: it sees the same `/run` as the daemon.
    fn enter_node2(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg("-t")
            .arg(self.node(2).pid().to_string())
            .args(["-m", "-n", "--"])
            .arg(program);
        command
    }
}

impl Drop for FencingCluster {
    fn drop(&mut self) {
        if thread::panicking() {
            for node in &self.nodes {
                eprintln!(
                    "----- log of {} (last 80 lines) -----\n{}",
                    node.node_name(),
                    last_lines(&node.log(), 80)
                );
            }
        }
    }
}

/// The node's own directory that its daemon sees as `/run`.
fn node_run_dir(net: &NodeNet) -> PathBuf {
    net.dir.join("run")
}

/// Appends `stonith_host * DEVICE` to the node's ha.cf.
fn append_stonith_host(ha_dir: &Path, device: &str) {
    let path = ha_dir.join("ha.cf");
    let mut text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.push_str(&format!("stonith_host * {device}\n"));
    write_file(&path, &text, 0o644);
}

/// The last `count` lines of `text`: a failed test shows the end of each node's log.
fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// The index of the first line of `log` containing `needle`.
fn line_index(log: &str, needle: &str) -> Option<usize> {
    log.lines().position(|line| line.contains(needle))
}

#[test]
fn null_device_resets_the_lost_node_before_its_address_moves() {
    let Some(cluster) = FencingCluster::start("fencenull", "null node1 node2") else {
        return;
    };
    let log_start = cluster.freeze_and_cut_node1();
    // The log as it was the moment the address was first seen on node2: the reset must be
    // in it already.
    let log_at_takeover = wait_for("the address on node2", SETTLE_TIMEOUT, || {
        if cluster.has_vip(2) {
            Ok(cluster.node2_log_since(log_start))
        } else {
            Err("not yet on node2".to_string())
        }
    });
    let reset = line_index(&log_at_takeover, "Resetting node node1 with [null]").unwrap_or_else(
        || panic!("the address came up on node2 before it logged the reset of node1:\n{log_at_takeover}"),
    );
    let fenced = line_index(&log_at_takeover, "node node1 now reset").unwrap_or_else(|| {
        panic!("the address came up on node2 before node1's reset succeeded:\n{log_at_takeover}")
    });
    let acquiring = line_index(&log_at_takeover, "Acquiring resource group").unwrap_or_else(|| {
        panic!("the address is on node2 but no acquisition was logged:\n{log_at_takeover}")
    });
    assert!(
        reset < fenced && fenced < acquiring,
        "node2 logged the reset (line {reset}), its success (line {fenced}) and the \
         acquisition (line {acquiring}) out of order:\n{log_at_takeover}"
    );
    assert_eq!(
        log_at_takeover.matches("Resetting node node1").count(),
        1,
        "node1 was reset more than once:\n{log_at_takeover}"
    );
    cluster.wait_vip_on(&[2], &[2]);
    wait_for("node2's fencing list to empty", SETTLE_TIMEOUT, || {
        let status = cluster.node(2).try_status_json()?;
        match status.pointer("/failover/fencing") {
            Some(serde_json::Value::Array(list)) if list.is_empty() => Ok(()),
            other => Err(format!("failover.fencing is {other:?}")),
        }
    });
}

#[test]
fn meatware_waits_for_the_operator_then_the_address_moves() {
    if !run_or_skip(
        Path::new(DEBIAN_MEATCLIENT).exists(),
        "Debian's meatclient (package cluster-glue; run .ci/install-test-packages)",
    ) {
        return;
    }
    let Some(cluster) = FencingCluster::start("fencemeat", "meatware node1 node2") else {
        return;
    };
    let log_start = cluster.freeze_and_cut_node1();
    let crit = cluster.wait_node2_log_line(log_start, &["Run \"meatclient -c node1\""]);
    assert!(
        crit.contains("CRIT"),
        "the operator's instruction is not logged at CRIT: {crit}"
    );
    let fifo = node_run_dir(cluster.net(2)).join("meatware.node1");
    wait_for("meatware's FIFO in node2's /run", SETTLE_TIMEOUT, || {
        if fifo.exists() {
            Ok(())
        } else {
            Err(format!("no {}", fifo.display()))
        }
    });
    cluster.assert_no_takeover_for(
        NO_TAKEOVER_WATCH,
        "the operator has not confirmed node1's reset",
    );
    let entry = cluster
        .node2_fencing_entry()
        .unwrap_or_else(|e| panic!("node2's status shows no pending reset of node1: {e}"));
    assert_eq!(entry["state"], "fencing", "{entry}");
    assert_eq!(entry["by"], "node2", "{entry}");
    assert_eq!(entry["groups"][0], cluster.group_key().as_str(), "{entry}");
    let text = cluster.node2_status_text();
    let expected = format!(
        "STONITH node1: fencing by node2 (attempts 1); waiting: {}",
        cluster.group_key()
    );
    assert!(
        text.lines().any(|line| line == expected),
        "vigil status on node2 lacks {expected:?}:\n{text}"
    );

    let mut meatclient = cluster
        .enter_node2(DEBIAN_MEATCLIENT)
        .args(["-c", "node1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {DEBIAN_MEATCLIENT}: {e}"));
    meatclient
        .stdin
        .take()
        .expect("meatclient's stdin is piped")
        .write_all(b"y\n")
        .unwrap_or_else(|e| panic!("cannot answer meatclient: {e}"));
    let answered = meatclient
        .wait_with_output()
        .unwrap_or_else(|e| panic!("meatclient did not finish: {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&answered.stdout),
        String::from_utf8_lossy(&answered.stderr)
    );
    assert!(
        answered.status.success(),
        "meatclient -c node1 failed ({}): {said}",
        answered.status
    );
    assert!(said.contains("reset confirmed"), "{said}");
    cluster.wait_vip_on(&[2], &[2]);
    let log = cluster.node2_log_since(log_start);
    let fenced = line_index(&log, "node node1 now reset").unwrap_or_else(|| {
        panic!("the address moved but node2 never logged node1's reset:\n{log}")
    });
    let acquiring = line_index(&log, "Acquiring resource group")
        .unwrap_or_else(|| panic!("the address moved without an acquisition logged:\n{log}"));
    assert!(
        fenced < acquiring,
        "acquired before the confirmation:\n{log}"
    );
    assert!(
        !fifo.exists(),
        "the FIFO {} was left behind",
        fifo.display()
    );
}

#[test]
fn a_device_that_always_fails_never_lets_the_address_move() {
    // `suicide` can only reset the node it runs on, which it knows by `uname -n`: the lab's
    // nodes share the machine's name, never `node1`, so every reset of node1 is refused at
    // once (S_BADHOST), without a network or a timeout involved.
    let machine = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    assert_ne!(
        machine.trim().to_lowercase(),
        "node1",
        "this machine is named node1, so `suicide` would reset it instead of failing"
    );
    let Some(cluster) = FencingCluster::start("fencefail", "suicide") else {
        return;
    };
    let log_start = cluster.freeze_and_cut_node1();
    let failed = cluster.wait_node2_log_line(log_start, &["STONITH of node1 failed"]);
    assert!(
        failed.contains("no takeover"),
        "the failure does not say that nothing moves: {failed}"
    );
    cluster.assert_no_takeover_for(NO_TAKEOVER_WATCH, "node1 was never reset");
    let entry = cluster
        .node2_fencing_entry()
        .unwrap_or_else(|e| panic!("node2's status shows no failing reset of node1: {e}"));
    let attempts = entry["attempts"].as_u64().unwrap_or(0);
    assert!(attempts > 1, "the reset was not retried: {entry}");
    let last_error = entry["last_error"].as_str().unwrap_or_default().to_string();
    assert!(!last_error.is_empty(), "no last error in {entry}");
    assert_eq!(entry["by"], "node2", "{entry}");
    let text = cluster.node2_status_text();
    let line = text
        .lines()
        .find(|line| line.starts_with("STONITH node1: "))
        .unwrap_or_else(|| panic!("vigil status on node2 shows no STONITH line:\n{text}"));
    assert!(
        line.contains(" by node2 (attempts ")
            && line.contains(&format!("waiting: {}", cluster.group_key()))
            && line.contains("; last error: "),
        "vigil status on node2 does not show the failing reset: {line}"
    );
    let log = cluster.node2_log_since(log_start);
    assert!(
        !log.contains("Acquiring resource group"),
        "node2 acquired node1's group although it was never reset:\n{log}"
    );
    assert!(
        log.contains("Resetting node node1 with [suicide] (attempt 2)"),
        "no retry was logged:\n{log}"
    );
    assert!(!cluster.has_vip(2), "{} is on node2", cluster.vip());
}
