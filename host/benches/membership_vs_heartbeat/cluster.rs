//! The benchmark's clusters: two nodes of one implementation in the lab's namespaces, each
//! started by the lab's support code with the timing under measurement in its ha.cf.
//!
//! Owns the node life cycle the parts share (start, kill, start again, wait for `active`),
//! where each implementation keeps its ha.cf and log in a node's directory, and reading those
//! logs. It measures nothing itself.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::retime;
use crate::support::heartbeat::HeartbeatNode;
use crate::support::netns::{Lab, NodeNet};
use crate::support::vigil_node::VigilNode;
use crate::support::{ClStatus, ClusterConfig, MediumKind, node_name};
use crate::{Implementation, Timing};

/// How long a node must have run before it is killed: for its first 5 s a node announces
/// deadtime + 2 s, and its peer applies what it announced last.
pub(crate) const MIN_VICTIM_UPTIME: Duration = Duration::from_secs(7);

/// How long the cluster waits for nodes to see each other `active`.
pub(crate) const ACTIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// The lab shared by every part, and a counter that gives each cluster run fresh directories.
pub(crate) struct Bench<'a> {
    /// The lab whose two node namespaces every cluster runs in.
    pub(crate) lab: &'a Lab,
    /// Nodes 1 and 2 of the lab.
    pub(crate) nets: &'a [NodeNet; 2],
    /// Cluster runs started so far.
    runs: u32,
}

impl<'a> Bench<'a> {
    /// The bench of a lab and its nodes 1 and 2.
    pub(crate) fn new(lab: &'a Lab, nets: &'a [NodeNet; 2]) -> Bench<'a> {
        Bench { lab, nets, runs: 0 }
    }

    /// Starts a two-node cluster of `implementation` at `timing` in the lab's namespaces, in
    /// directories no earlier run used.
    pub(crate) fn start_pair(&mut self, implementation: Implementation, timing: Timing) -> Pair {
        self.runs += 1;
        let run = format!("run{}", self.runs);
        let nets: Vec<NodeNet> = self
            .nets
            .iter()
            .map(|net| {
                let dir = net.dir.join(&run);
                fs::create_dir_all(&dir)
                    .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
                NodeNet { dir, ..net.clone() }
            })
            .collect();
        let names = [node_name(1), node_name(2)];
        let config = ClusterConfig::new(
            MediumKind::Bcast,
            &[&names[0], &names[1]],
            &[nets[0].address, nets[1].address],
        );
        Pair {
            observer: Member::start(implementation, &nets[0], &names[0], &config, timing),
            victim: Member::start(implementation, &nets[1], &names[1], &config, timing),
        }
    }
}

/// A running daemon of either implementation.
enum Daemon {
    Vigil(VigilNode),
    Heartbeat(HeartbeatNode),
}

/// One node of a benchmark cluster.
pub(crate) struct Member {
    /// Which daemon runs there.
    daemon: Daemon,
    /// The log the daemon writes `node X: is dead` to, where the lab's support code puts it.
    pub(crate) log: PathBuf,
    /// When its daemon last started, for [`MIN_VICTIM_UPTIME`].
    started: Instant,
}

impl Member {
    /// Starts the node with the lab's support code and `timing` in its ha.cf.
    fn start(
        implementation: Implementation,
        net: &NodeNet,
        name: &str,
        config: &ClusterConfig,
        timing: Timing,
    ) -> Member {
        let (daemon, log) = match implementation {
            Implementation::Vigil => {
                // `VigilNode::start` runs vigil at once with the lab's timing: retimed, it starts
                // again.
                let dir = net.dir.join("vigil");
                let mut node = VigilNode::start(net, name, config);
                node.kill_hard();
                retime(&dir.join("ha.d").join("ha.cf"), &timing.ha_cf_lines());
                node.restart();
                (Daemon::Vigil(node), dir.join("stderr.log"))
            }
            Implementation::Heartbeat => {
                let node = HeartbeatNode::start_prepared(net, name, config, |etc| {
                    retime(&etc.join("ha.cf"), &timing.ha_cf_lines());
                });
                (
                    Daemon::Heartbeat(node),
                    net.dir.join("heartbeat").join("ha-log"),
                )
            }
        };
        Member {
            daemon,
            log,
            started: Instant::now(),
        }
    }

    /// The `cl_status` view of the node.
    pub(crate) fn view(&self) -> &dyn ClStatus {
        match &self.daemon {
            Daemon::Vigil(node) => node,
            Daemon::Heartbeat(node) => node,
        }
    }

    /// The node's name.
    pub(crate) fn name(&self) -> &str {
        self.view().node_name()
    }

    /// Where in the lab the node lives.
    pub(crate) fn net(&self) -> &NodeNet {
        match &self.daemon {
            Daemon::Vigil(node) => node.net(),
            Daemon::Heartbeat(node) => node.net(),
        }
    }

    /// Every process of the node's daemon.
    pub(crate) fn pids(&self) -> Vec<i32> {
        match &self.daemon {
            Daemon::Vigil(node) => vec![node.pid()],
            Daemon::Heartbeat(node) => node.pids(),
        }
    }

    /// Kills the node's daemon with SIGKILL (frozen processes included) and reaps it.
    pub(crate) fn kill(&mut self) {
        match &mut self.daemon {
            Daemon::Vigil(node) => node.kill_hard(),
            Daemon::Heartbeat(node) => node.kill_and_reap(),
        }
    }

    /// Starts the daemon again with the same files.
    pub(crate) fn start_again(&mut self) {
        match &mut self.daemon {
            Daemon::Vigil(node) => node.restart(),
            Daemon::Heartbeat(node) => node.start_daemon(),
        }
        self.started = Instant::now();
    }

    /// `vigil status --json` of a vigil node; `None` for Heartbeat, which has no counters to
    /// ask for.
    pub(crate) fn vigil_status(&self) -> Option<serde_json::Value> {
        match &self.daemon {
            Daemon::Vigil(node) => Some(node.status_json()),
            Daemon::Heartbeat(_) => None,
        }
    }

    /// Bytes in the node's log so far: lines after this offset are new.
    pub(crate) fn log_len(&self) -> u64 {
        fs::metadata(&self.log).map_or(0, |m| m.len())
    }

    /// The node's log from `offset` on, lossily decoded (Heartbeat logs raw bytes).
    pub(crate) fn log_since(&self, offset: u64) -> String {
        let mut bytes = Vec::new();
        if let Ok(mut file) = File::open(&self.log)
            && file.seek(SeekFrom::Start(offset)).is_ok()
        {
            let _ = file.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A running two-node cluster: node 1 observes, node 2 is the one that dies. Dropping it
/// kills both daemons.
pub(crate) struct Pair {
    /// Node 1.
    pub(crate) observer: Member,
    /// Node 2.
    pub(crate) victim: Member,
}

impl Pair {
    /// Waits until both nodes see both `active`.
    pub(crate) fn await_active(&self, timeout: Duration) -> Result<(), String> {
        let members = [&self.observer, &self.victim];
        for observer in members {
            for node in members {
                await_node_status(observer.view(), node.name(), "active", timeout)?;
            }
        }
        Ok(())
    }

    /// Waits until both daemons have run longer than [`MIN_VICTIM_UPTIME`].
    pub(crate) fn await_uptime(&self) {
        let youngest = self.observer.started.max(self.victim.started);
        if let Some(rest) = MIN_VICTIM_UPTIME.checked_sub(youngest.elapsed()) {
            thread::sleep(rest);
        }
    }
}

/// Polls `view` until it reports `node` in `status`; on timeout, says what it saw last.
fn await_node_status(
    view: &dyn ClStatus,
    node: &str,
    status: &str,
    timeout: Duration,
) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let (seen, rc) = view.node_status(node);
        if seen == status {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "{} did not see {node} {status} within {timeout:?} (last: {seen:?}, rc {rc})",
                view.node_name()
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// What a stretch of a node's log says about its peer.
#[derive(Debug, Default)]
pub(crate) struct LogScan {
    /// `node PEER: is dead` lines.
    pub(crate) dead_lines: usize,
    /// Late-heartbeat warnings.
    pub(crate) late_lines: usize,
    /// The longest interval a late-heartbeat warning reported, in ms.
    pub(crate) longest_interval_ms: Option<u64>,
    /// Warning and error messages with the timestamp and process id cut off, with counts.
    pub(crate) warnings: BTreeMap<String, usize>,
}

/// Counts deaths of `peer`, late heartbeats and warnings in a log of either implementation.
pub(crate) fn scan_log(log: &str, peer: &str) -> LogScan {
    let dead = format!("node {peer}: is dead");
    let mut scan = LogScan::default();
    for line in log.lines() {
        if line.contains(&dead) {
            scan.dead_lines += 1;
        }
        if line.contains("Late heartbeat") {
            scan.late_lines += 1;
            let interval = line
                .split("interval ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok());
            scan.longest_interval_ms = scan.longest_interval_ms.max(interval);
        }
        if let Some(message) = warning_message(line) {
            *scan.warnings.entry(message).or_default() += 1;
        }
    }
    scan
}

/// The message of a warning or error line without its timestamp and process id, with
/// numbers replaced by `N` and addresses by `ADDR` so repeats group:
/// `heartbeat: [12]: WARN: Late heartbeat: Node node2: interval 52 ms` →
/// `WARN: Late heartbeat: Node node2: interval N ms`.
fn warning_message(line: &str) -> Option<String> {
    let at = ["WARN", "ERROR", "CRIT"]
        .iter()
        .filter_map(|level| line.find(level))
        .min()?;
    let mut message = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, message: &mut String| {
        if word.starts_with("0x") {
            message.push_str("ADDR");
        } else if !word.is_empty() && word.chars().all(|c| c.is_ascii_digit()) {
            message.push('N');
        } else {
            message.push_str(word);
        }
        word.clear();
    };
    for c in line[at..].chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut message);
            message.push(c);
        }
    }
    flush(&mut word, &mut message);
    Some(message)
}
