//! Shared support for the root-only integration tests: the network-namespace lab, Heartbeat
//! 3.0.6 and vigil as cluster nodes in it, and the configuration and waiting helpers that
//! the tests of both kinds of node use.
//!
//! Owns: deciding whether a root-only test runs or skips, scratch directories, the ha.cf and
//! authkeys texts of a test cluster, polling with a deadline, and the `cl_status` view both
//! implementations share. It must not keep global state beyond a per-process counter, use
//! fixed names or addresses outside 198.18.0.0/15 (IPv6: 2001:2::/48 and link-local), or
//! leave anything behind: every
//! namespace, process and directory it creates is owned by a guard that removes it on drop.
// Each test binary uses a different part of this support code.
#![allow(dead_code)]

pub mod capture;
pub mod heartbeat;
pub mod netns;
pub mod plugin_build;
pub mod vigil_node;

use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Set to `1` in CI: a root-only test that cannot run (no root, no Heartbeat) fails instead of
/// skipping, so a misconfigured CI machine cannot pass by running nothing.
pub const REQUIRE_ROOT_TESTS_ENV: &str = "VIGIL_REQUIRE_ROOT_TESTS";

/// How long a test waits for the cluster to reach a state before it fails. Generous on
/// purpose: the tests share a small, busy machine, and a wait returns as soon as the state
/// holds.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);

/// How often a wait looks again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Whether the environment demands that root-only tests run.
pub fn root_tests_required() -> bool {
    std::env::var(REQUIRE_ROOT_TESTS_ENV).is_ok_and(|v| v == "1")
}

/// Decides whether a test that needs `what` runs: true when `available`; otherwise prints why
/// it skips and returns false, or fails the test when [`REQUIRE_ROOT_TESTS_ENV`] is set.
pub fn run_or_skip(available: bool, what: &str) -> bool {
    if available {
        return true;
    }
    assert!(
        !root_tests_required(),
        "{REQUIRE_ROOT_TESTS_ENV}=1 but this test cannot run: it needs {what}"
    );
    println!(
        "skipped: this test needs {what} (set {REQUIRE_ROOT_TESTS_ENV}=1 to make that a failure)"
    );
    false
}

/// Whether this process runs as root, which namespaces, bridges and veth pairs need.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A process-unique short token: the process id and a per-process counter. Parallel tests in
/// one binary differ in the counter, parallel test binaries in the process id.
pub fn unique_token() -> (u32, u32) {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    (std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A directory for one lab's files, removed on drop. Kept when the test panics, so the logs
/// of a failed run can be read; its path is printed then.
pub struct ScratchDir {
    /// The directory.
    path: PathBuf,
}

impl ScratchDir {
    /// Creates a fresh directory in the system temporary directory named after `label`.
    pub fn new(label: &str) -> ScratchDir {
        let path = std::env::temp_dir().join(label);
        if path.exists() {
            // A stale directory of an earlier process with the same id.
            let _ = fs::remove_dir_all(&path);
        }
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create scratch directory {}: {e}", path.display()));
        ScratchDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("test failed; its files are kept in {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Runs a command to completion and returns its output; fails the test with the command
/// line and its stderr when it cannot start or exits non-zero.
pub fn run_checked(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Polls `probe` every [`POLL_INTERVAL`] until it returns `Ok`, and returns that value. Fails
/// the test after `timeout` with `what` and the last observed state the probe reported.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) => {
                assert!(
                    start.elapsed() < timeout,
                    "timed out after {timeout:?} waiting for {what}; last observed: {last}"
                );
            }
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Writes a file with the given mode, failing the test on error.
pub fn write_file(path: &Path, contents: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}

/// Sends `signal` to one process. A process that is already gone is not an error: the
/// callers use this to freeze, thaw and kill processes that may have exited.
pub fn signal_process(pid: i32, signal: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions; a stale pid only yields ESRCH.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Makes the process `command` starts die with SIGKILL when the test thread that started it
/// ends, so an interrupted test run leaves no daemon behind.
pub fn die_with_test(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only makes the async-signal-safe
    // prctl system call.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// Whether a process exists (zombies included).
pub fn process_exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The `cl_status` view of a cluster node, which Heartbeat and vigil share: tests assert
/// through it so the same check holds on both implementations.
pub trait ClStatus {
    /// The node's own name (its `uname -n`, or vigil's `nodeinfo`).
    fn node_name(&self) -> &str;

    /// Runs `cl_status ARGS` as this node sees the cluster; returns stdout and exit code.
    fn cl_status(&self, args: &[&str]) -> (String, i32);

    /// What this node's `cl_status nodestatus NODE` says, trimmed, with its exit code.
    fn node_status(&self, node: &str) -> (String, i32) {
        let (out, rc) = self.cl_status(&["nodestatus", node]);
        (out.trim().to_string(), rc)
    }

    /// What this node's `cl_status hblinkstatus NODE LINK` says, trimmed, with its exit code.
    fn link_status(&self, node: &str, link: &str) -> (String, i32) {
        let (out, rc) = self.cl_status(&["hblinkstatus", node, link]);
        (out.trim().to_string(), rc)
    }
}

/// The exit code `cl_status nodestatus` gives for a status: 1 for `dead`, 0 otherwise.
fn expected_node_status_rc(status: &str) -> i32 {
    i32::from(status == "dead")
}

/// Waits until `observer` reports `node` in `status` (with the matching exit code).
pub fn wait_node_status(observer: &dyn ClStatus, node: &str, status: &str) {
    let expected_rc = expected_node_status_rc(status);
    wait_for(
        &format!("{} to see node {node} {status}", observer.node_name()),
        SETTLE_TIMEOUT,
        || match observer.node_status(node) {
            (seen, rc) if seen == status && rc == expected_rc => Ok(()),
            (seen, rc) => Err(format!("nodestatus {node} = {seen:?} (rc {rc})")),
        },
    );
}

/// Waits until `observer` reports the link `link` of `node` in `status`.
pub fn wait_link_status(observer: &dyn ClStatus, node: &str, link: &str, status: &str) {
    wait_for(
        &format!(
            "{} to see link {node}:{link} {status}",
            observer.node_name()
        ),
        SETTLE_TIMEOUT,
        || match observer.link_status(node, link) {
            (seen, _) if seen == status => Ok(()),
            (seen, rc) => Err(format!("hblinkstatus {node} {link} = {seen:?} (rc {rc})")),
        },
    );
}

/// Waits until every node sees every node (itself included) `active`.
pub fn wait_all_active(nodes: &[&dyn ClStatus]) {
    for observer in nodes {
        for node in nodes {
            wait_node_status(*observer, node.node_name(), "active");
        }
    }
}

/// The medium kinds the tests cover, each with the authentication method the captured
/// Heartbeat cluster used with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediumKind {
    /// `bcast eth0` with `sha1`.
    Bcast,
    /// `mcast eth0 239.0.0.94 694 1 0` with `md5`.
    Mcast,
    /// `ucast eth0 ADDR`, one line per node (the same lines on every node), with `crc`.
    Ucast,
    /// `mcast6 eth0 ff12::94 694 1 0` with `md5`; the lab must give nodes IPv6 addresses.
    Mcast6,
    /// `ucast6 eth0 2001:2:…`, one line per node's [`ipv6_twin`], with `sha1`.
    Ucast6,
    /// `ucast6 eth0 fe80::…`, one line per node's [`link_local_twin`], with `crc`.
    Ucast6LinkLocal,
}

impl MediumKind {
    /// The ha.cf media lines on `interface` for a cluster whose nodes have `addresses` there.
    pub fn media_lines(self, interface: &str, addresses: &[Ipv4Addr]) -> Vec<String> {
        match self {
            MediumKind::Bcast => vec![format!("bcast {interface}")],
            MediumKind::Mcast => vec![format!("mcast {interface} 239.0.0.94 694 1 0")],
            MediumKind::Ucast => addresses
                .iter()
                .map(|a| format!("ucast {interface} {a}"))
                .collect(),
            MediumKind::Mcast6 => vec![format!("mcast6 {interface} ff12::94 694 1 0")],
            MediumKind::Ucast6 => addresses
                .iter()
                .map(|a| format!("ucast6 {interface} {}", ipv6_twin(*a)))
                .collect(),
            MediumKind::Ucast6LinkLocal => addresses
                .iter()
                .map(|a| format!("ucast6 {interface} {}", link_local_twin(*a)))
                .collect(),
        }
    }

    /// Whether the medium runs over IPv6, so the lab must give its nodes IPv6 addresses
    /// (`Lab::with_ipv6`).
    pub fn is_ipv6(self) -> bool {
        matches!(
            self,
            MediumKind::Mcast6 | MediumKind::Ucast6 | MediumKind::Ucast6LinkLocal
        )
    }

    /// The authkeys file used with this medium in the captured cluster.
    pub fn authkeys(self) -> &'static str {
        match self {
            MediumKind::Bcast => "auth 1\n1 sha1 labsecret\n",
            MediumKind::Mcast => "auth 2\n2 md5 labsecret\n",
            MediumKind::Ucast => "auth 3\n3 crc\n",
            MediumKind::Mcast6 => "auth 2\n2 md5 labsecret\n",
            MediumKind::Ucast6 => "auth 1\n1 sha1 labsecret\n",
            MediumKind::Ucast6LinkLocal => "auth 3\n3 crc\n",
        }
    }
}

/// The lab's IPv6 address that goes with the IPv4 lab address `address` (198.18.X.N on
/// `eth0` gives 2001:2:0:X::N, 198.19.X.N on `eth1` gives 2001:2:1:X::N): the benchmarking
/// range of RFC 5180, the IPv6 analogue of 198.18.0.0/15.
pub fn ipv6_twin(address: Ipv4Addr) -> Ipv6Addr {
    let [first, second, lab, host] = address.octets();
    assert!(
        first == 198 && (second == 18 || second == 19),
        "{address} is not a lab address"
    );
    Ipv6Addr::new(
        0x2001,
        2,
        u16::from(second - 18),
        u16::from(lab),
        0,
        0,
        0,
        u16::from(host),
    )
}

/// The fixed link-local address a lab with IPv6 gives the interface whose IPv4 lab address is
/// `address` (…N gives fe80::N; each link of a lab is its own segment).
pub fn link_local_twin(address: Ipv4Addr) -> Ipv6Addr {
    let [.., host] = address.octets();
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(host))
}

/// One test cluster's configuration as Heartbeat files, the same for every node in it.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The media lines of ha.cf.
    pub media: Vec<String>,
    /// The node names, in ha.cf order.
    pub nodes: Vec<String>,
    /// The authkeys file.
    pub authkeys: String,
    /// `initdead` in seconds: how long a starting node waits for a peer it has not heard
    /// before declaring it dead. 2 keeps tests quick; a test whose second daemon may be slow
    /// to start and that asserts on the first acquisition sets more (see
    /// [`ClusterConfig::with_initdead`]).
    pub initdead_seconds: u32,
}

impl ClusterConfig {
    /// A cluster of `nodes` over one medium kind on `eth0`, nodes at `addresses`.
    pub fn new(kind: MediumKind, nodes: &[&str], addresses: &[Ipv4Addr]) -> ClusterConfig {
        ClusterConfig {
            media: kind.media_lines("eth0", addresses),
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            authkeys: kind.authkeys().to_string(),
            initdead_seconds: 2,
        }
    }

    /// The same cluster with `initdead` set to `seconds`: Heartbeat's advice (at least 10 s)
    /// for a test where a daemon that starts slowly on a busy machine must not be declared
    /// dead before it has sent its first heartbeat. Costs nothing when both start promptly:
    /// a node goes active as soon as it has heard every peer.
    pub fn with_initdead(mut self, seconds: u32) -> ClusterConfig {
        self.initdead_seconds = seconds;
        self
    }

    /// The ha.cf text with the tests' timing: keepalive 200ms, deadtime 1, warntime 500ms,
    /// the configured initdead, udpport 694 (before the media, as Heartbeat requires). `head` comes first
    /// (Heartbeat's logfile lines).
    pub fn ha_cf(&self, head: &str) -> String {
        let mut text = String::from(head);
        text.push_str("udpport 694\nkeepalive 200ms\ndeadtime 1\nwarntime 500ms\n");
        let _ = writeln!(text, "initdead {}", self.initdead_seconds);
        for line in &self.media {
            let _ = writeln!(text, "{line}");
        }
        text.push_str("auto_failback on\n");
        for node in &self.nodes {
            let _ = writeln!(text, "node {node}");
        }
        text.push_str("crm off\n");
        text
    }

    /// The same cluster as vigil's YAML file for the node `node_name`: the timing, media,
    /// key and `auto_failback on` of [`ClusterConfig::ha_cf`], then `tail` (top-level keys
    /// such as `resource_groups:`, as YAML lines).
    pub fn yaml(&self, node_name: &str, tail: &str) -> String {
        let quoted = |text: &str| {
            serde_json::to_string(text).unwrap_or_else(|e| panic!("cannot quote {text:?}: {e}"))
        };
        let nodes: Vec<String> = self.nodes.iter().map(|n| quoted(n)).collect();
        let mut text = format!(
            "node_name: {}\nnodes: [{}]\n\
             udpport: 694\nkeepalive: 200ms\ndeadtime: 1\nwarntime: 500ms\ninitdead: {}\nmedia:\n",
            quoted(node_name),
            nodes.join(", "),
            self.initdead_seconds
        );
        for line in &self.media {
            let (kind, args) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("medium line {line:?} has no arguments"));
            let _ = writeln!(text, "  - {kind}: {}", quoted(args));
        }
        let _ = writeln!(text, "auth: {}", self.yaml_auth());
        text.push_str("auto_failback: on\n");
        text.push_str(tail);
        text
    }

    /// The authkeys file as the YAML `auth:` mapping: its one used slot, method and key.
    fn yaml_auth(&self) -> String {
        let mut lines = self.authkeys.lines().map(str::split_whitespace);
        let slot = match lines.next().map(|mut words| (words.next(), words.next())) {
            Some((Some("auth"), Some(slot))) => slot.to_string(),
            _ => panic!("authkeys has no `auth N` line: {:?}", self.authkeys),
        };
        let mut words = lines
            .find(|words| words.clone().next() == Some(slot.as_str()))
            .unwrap_or_else(|| panic!("authkeys has no key {slot}: {:?}", self.authkeys))
            .skip(1);
        let method = words
            .next()
            .unwrap_or_else(|| panic!("key {slot} of authkeys has no method"));
        match words.next() {
            Some(key) => format!(
                "{{ method: {method}, key: {}, slot: {slot} }}",
                serde_json::to_string(key).unwrap_or_default()
            ),
            None => format!("{{ method: {method}, slot: {slot} }}"),
        }
    }
}

/// The name tests give the node with lab index `index`.
pub fn node_name(index: u8) -> String {
    format!("node{index}")
}

/// Whether a log line says `node` is dead: it names the node and has the word `dead` (not
/// `deadtime`).
pub fn line_reports_dead(line: &str, node: &str) -> bool {
    line.contains(node)
        && line
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| word.eq_ignore_ascii_case("dead"))
}
