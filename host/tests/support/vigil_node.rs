//! The `vigil` binary under test as a cluster node in the lab.
//!
//! Owns starting `vigil run` inside a node's network namespace with a Heartbeat-style
//! configuration directory or a YAML configuration file, state directory and API socket in
//! the node's directory, extra environment variables (`VIGIL_PLUGIN_PATH`), its stderr
//! captured to a file; stopping it (SIGTERM), killing or freezing it; and asking it
//! questions the way an operator would: `cl_status` (the binary under that name, finding the
//! daemon through `VIGIL_SOCKET`) and `vigil status --json`. It must not assume anything of
//! the daemon beyond that command-line contract.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::netns::NodeNet;
use super::{
    ClStatus, ClusterConfig, SETTLE_TIMEOUT, die_with_test, signal_process, wait_for, write_file,
};

/// The binary cargo built for these tests.
pub const VIGIL_BIN: &str = env!("CARGO_BIN_EXE_vigil");

/// How long `vigil` may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a daemon started from YAML may take to answer: it may load WASM plugins from
/// `VIGIL_PLUGIN_PATH`, and compiling one in a debug build takes seconds of CPU on an idle
/// machine, many more on the tests' busy one.
const PLUGIN_START_TIMEOUT: Duration = Duration::from_secs(60);

/// One running (or stopped) vigil node. Dropping it kills the daemon.
pub struct VigilNode {
    /// The node's name, given to the daemon through `nodeinfo` (or the YAML's `node_name`).
    name: String,
    /// Where in the lab it lives.
    net: NodeNet,
    /// The Heartbeat-style configuration directory (ha.cf, authkeys, haresources, nodeinfo);
    /// empty for a node started from YAML, whose file may name it as `ha_dir` for its
    /// `resource.d` scripts.
    ha_dir: PathBuf,
    /// The YAML file the daemon reads (`--config`) instead of `ha_dir`, for a node started
    /// with [`VigilNode::start_yaml`]: the only way to give a resource a `grant:`.
    yaml_file: Option<PathBuf>,
    /// Variables added to the daemon's environment, such as `VIGIL_PLUGIN_PATH`.
    env: Vec<(OsString, OsString)>,
    /// How long a start may take until the daemon answers on its socket.
    start_timeout: Duration,
    /// Where the daemon keeps its generation and UUID across restarts.
    state_dir: PathBuf,
    /// The daemon's API socket.
    socket: PathBuf,
    /// The daemon's stderr, appended to across restarts.
    stderr_path: PathBuf,
    /// A symlink named `cl_status` to the binary, so it answers as Heartbeat's tool.
    cl_status_link: PathBuf,
    /// The running daemon, if any.
    child: Option<Child>,
    /// Directories of the node's own that the daemon sees in place of system directories.
    private_dirs: Vec<PrivateDir>,
}

/// A directory of a node's own that its daemon, and every agent it runs, sees in place of a
/// system directory (`/etc/init.d`, `/run/resource-agents`), as if each node were a machine
/// of its own: bound over it in a private mount namespace, so the machine's directory stays
/// untouched and parallel nodes do not share files there.
#[derive(Debug, Clone)]
pub struct PrivateDir {
    /// The node's directory; created when missing.
    pub source: PathBuf,
    /// The system directory it replaces; created when missing (empty), as the package that
    /// owns it would.
    pub target: PathBuf,
}

impl VigilNode {
    /// Writes the node's configuration for `config` and starts the daemon.
    pub fn start(net: &NodeNet, name: &str, config: &ClusterConfig) -> VigilNode {
        VigilNode::start_prepared(net, name, config, &[], |_| {})
    }

    /// Like [`VigilNode::start`], but `prepare` may change or add files in the node's
    /// configuration directory (haresources, `resource.d` scripts, OCF instance files; it
    /// gets that directory) before the daemon first starts, and the daemon sees each of
    /// `private_dirs` in place of the system directory it names.
    pub fn start_prepared(
        net: &NodeNet,
        name: &str,
        config: &ClusterConfig,
        private_dirs: &[PrivateDir],
        prepare: impl FnOnce(&Path),
    ) -> VigilNode {
        let node = VigilNode::unstarted(net, name, private_dirs, None, &[]);
        write_file(&node.ha_dir.join("ha.cf"), &config.ha_cf(""), 0o644);
        write_file(&node.ha_dir.join("authkeys"), &config.authkeys, 0o600);
        write_file(&node.ha_dir.join("haresources"), "", 0o644);
        write_file(&node.ha_dir.join("nodeinfo"), &format!("{name}\n"), 0o644);
        VigilNode::started(node, prepare)
    }

    /// Starts the daemon with `vigil run --config FILE`, FILE holding `yaml` (which must set
    /// `node_name: NAME`; [`ClusterConfig::yaml`] writes the lab's settings), and with the
    /// variables `env` (such as `VIGIL_PLUGIN_PATH`) added to its environment. `--state-dir`
    /// and `--socket` still point into the node's directory, whatever the file says.
    pub fn start_yaml(net: &NodeNet, name: &str, yaml: &str, env: &[(&str, &OsStr)]) -> VigilNode {
        let yaml_file = net.dir.join("vigil").join("cluster.yaml");
        let mut node = VigilNode::unstarted(net, name, &[], Some(yaml_file.clone()), env);
        node.start_timeout = PLUGIN_START_TIMEOUT;
        // The file holds the authentication key, which vigil requires to be private.
        write_file(&yaml_file, yaml, 0o600);
        VigilNode::started(node, |_| {})
    }

    /// A node with its directories and `cl_status` link made, not started yet.
    fn unstarted(
        net: &NodeNet,
        name: &str,
        private_dirs: &[PrivateDir],
        yaml_file: Option<PathBuf>,
        env: &[(&str, &OsStr)],
    ) -> VigilNode {
        let dir = net.dir.join("vigil");
        let ha_dir = dir.join("ha.d");
        let state_dir = dir.join("state");
        for d in [&ha_dir, &state_dir]
            .into_iter()
            .chain(private_dirs.iter().map(|p| &p.source))
        {
            fs::create_dir_all(d).unwrap_or_else(|e| panic!("cannot create {}: {e}", d.display()));
        }
        let cl_status_link = dir.join("cl_status");
        std::os::unix::fs::symlink(VIGIL_BIN, &cl_status_link)
            .unwrap_or_else(|e| panic!("cannot link {}: {e}", cl_status_link.display()));
        VigilNode {
            name: name.to_string(),
            net: net.clone(),
            ha_dir,
            yaml_file,
            env: env
                .iter()
                .map(|(key, value)| (OsString::from(key), value.to_os_string()))
                .collect(),
            start_timeout: SETTLE_TIMEOUT,
            state_dir,
            socket: dir.join("vigil.sock"),
            stderr_path: dir.join("stderr.log"),
            cl_status_link,
            child: None,
            private_dirs: private_dirs.to_vec(),
        }
    }

    /// Lets `prepare` change the configuration directory, then starts the daemon and waits
    /// until it answers.
    fn started(mut node: VigilNode, prepare: impl FnOnce(&Path)) -> VigilNode {
        prepare(&node.ha_dir);
        node.spawn();
        node
    }

    /// Starts the daemon again after [`VigilNode::stop`] or [`VigilNode::kill_hard`], with the
    /// same configuration and state directory (so with the next generation).
    pub fn restart(&mut self) {
        assert!(
            self.child.is_none(),
            "vigil on {} is still running",
            self.name
        );
        self.spawn();
    }

    fn spawn(&mut self) {
        self.launch();
        self.await_answer();
    }

    /// Starts the daemon without waiting for it to answer, so that several nodes can be
    /// started at one moment; [`VigilNode::await_answer`] then waits for each. The daemon
    /// dies with the thread that calls this (see `die_with_test`): call it from a thread
    /// that outlives the daemon.
    pub fn launch(&mut self) {
        assert!(
            self.child.is_none(),
            "vigil on {} is still running",
            self.name
        );
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.stderr_path.display()));
        let stdout = File::create(self.stderr_path.with_file_name("stdout.log"))
            .unwrap_or_else(|e| panic!("cannot create stdout log: {e}"));
        let mut command = self.daemon_command();
        command.arg("run");
        match &self.yaml_file {
            Some(file) => command.arg("--config").arg(file),
            None => command.arg("--ha-dir").arg(&self.ha_dir),
        };
        command
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--socket")
            .arg(&self.socket)
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        die_with_test(&mut command);
        // `ip netns exec` execs the program, so the child's pid is the daemon's.
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {VIGIL_BIN}: {e}"));
        self.child = Some(child);
    }

    /// Waits until the daemon [`VigilNode::launch`] started answers on its socket; fails
    /// the test if it exits first or does not answer within [`SETTLE_TIMEOUT`] (a minute
    /// for a node started from YAML, which may compile WASM plugins first).
    pub fn await_answer(&mut self) {
        wait_for(
            &format!("vigil on {} to answer on its socket", self.name),
            self.start_timeout,
            || {
                if let Some(status) = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten())
                {
                    panic!(
                        "vigil on {} exited at start ({status}); stderr:\n{}",
                        self.name,
                        self.log()
                    );
                }
                self.try_status_json()
            },
        );
    }

    /// The command that becomes the daemon (arguments follow): `vigil` in the node's
    /// namespace, entered through a private mount namespace with the node's private
    /// directories bound in place when it has any. `unshare` and `sh` exec their successor,
    /// so the child's pid is still the daemon's.
    fn daemon_command(&self) -> Command {
        if self.private_dirs.is_empty() {
            return self.net.exec(VIGIL_BIN);
        }
        let mut command = self.net.exec("unshare");
        command.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            r#"while [ "$1" != -- ]; do mkdir -p "$2" && mount --bind "$1" "$2" || exit 1; shift 2; done; shift; exec "$@""#,
            "sh",
        ]);
        for dir in &self.private_dirs {
            command.arg(&dir.source).arg(&dir.target);
        }
        command.arg("--").arg(VIGIL_BIN);
        command
    }

    /// The lab node this daemon runs on.
    pub fn net(&self) -> &NodeNet {
        &self.net
    }

    /// The daemon's process id.
    pub fn pid(&self) -> i32 {
        let child = self
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("vigil on {} is not running", self.name));
        i32::try_from(child.id()).unwrap_or_else(|_| panic!("pid {} out of range", child.id()))
    }

    /// Stops the daemon with SIGSTOP (a hung node).
    pub fn freeze(&self) {
        signal_process(self.pid(), libc::SIGSTOP);
    }

    /// Resumes a frozen daemon.
    pub fn thaw(&self) {
        signal_process(self.pid(), libc::SIGCONT);
    }

    /// Kills the daemon with SIGKILL (a crash) and reaps it.
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks the daemon to stop with SIGTERM and returns how it exited. Fails the test if it
    /// is still running after a generous wait.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("vigil on {} is not running", self.name));
        let pid = i32::try_from(child.id()).unwrap_or(-1);
        signal_process(pid, libc::SIGCONT);
        signal_process(pid, libc::SIGTERM);
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if start.elapsed() > STOP_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "vigil on {} did not exit within {STOP_TIMEOUT:?} of SIGTERM; stderr:\n{}",
                    self.name,
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's stderr so far, as raw bytes.
    pub fn stderr_bytes(&self) -> Vec<u8> {
        fs::read(&self.stderr_path).unwrap_or_default()
    }

    /// The daemon's stderr so far, lossily decoded (for messages and searching).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.stderr_bytes()).into_owned()
    }

    /// The daemon's state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The node's Heartbeat-style configuration directory (empty for a node started from
    /// YAML).
    pub fn ha_dir(&self) -> &Path {
        &self.ha_dir
    }

    /// Runs the binary under the name `tool` (`hb_standby`, `hb_takeover`, `cl_status`: it
    /// answers as the Heartbeat tool of that name) in the node's namespace, finding the
    /// daemon through `VIGIL_SOCKET`; returns stdout, stderr and the exit code (-1 when a
    /// signal ended it).
    pub fn run_tool(&self, tool: &str, args: &[&str]) -> (String, String, i32) {
        let link = self.cl_status_link.with_file_name(tool);
        if !link.exists() {
            std::os::unix::fs::symlink(VIGIL_BIN, &link)
                .unwrap_or_else(|e| panic!("cannot link {}: {e}", link.display()));
        }
        let output = self
            .net
            .exec(&link)
            .args(args)
            .env("VIGIL_SOCKET", &self.socket)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool} on {}: {e}", self.name));
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
            output.status.code().unwrap_or(-1),
        )
    }

    /// `vigil status --json`, parsed; fails the test when the command fails.
    pub fn status_json(&self) -> serde_json::Value {
        self.try_status_json()
            .unwrap_or_else(|e| panic!("vigil status --json on {}: {e}", self.name))
    }

    /// The drop counters of `vigil status --json`, by reason.
    pub fn drops(&self) -> BTreeMap<String, u64> {
        let status = self.status_json();
        let drops = status
            .get("drops")
            .and_then(serde_json::Value::as_object)
            .unwrap_or_else(|| {
                panic!(
                    "no \"drops\" object in the status of {}: {status}",
                    self.name
                )
            });
        drops
            .iter()
            .map(|(reason, count)| {
                let count = count.as_u64().unwrap_or_else(|| {
                    panic!(
                        "drop counter {reason} of {} is not a count: {count}",
                        self.name
                    )
                });
                (reason.clone(), count)
            })
            .collect()
    }

    /// `vigil status --json`, parsed, or why it could not be had (the daemon is frozen,
    /// gone, or printed something else): for probes that must not fail the test.
    pub fn try_status_json(&self) -> Result<serde_json::Value, String> {
        let output = self
            .net
            .exec(VIGIL_BIN)
            .args(["status", "--json", "--socket"])
            .arg(&self.socket)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run vigil status: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "vigil status --json exited {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        serde_json::from_slice(&output.stdout).map_err(|e| {
            format!(
                "vigil status --json printed no JSON object ({e}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }
}

impl ClStatus for VigilNode {
    fn node_name(&self) -> &str {
        &self.name
    }

    fn cl_status(&self, args: &[&str]) -> (String, i32) {
        let (stdout, _, code) = self.run_tool("cl_status", args);
        (stdout, code)
    }
}

impl Drop for VigilNode {
    fn drop(&mut self) {
        self.kill_hard();
    }
}

/// What `node` reports for the group `key` in `vigil status --json`: its owner (None:
/// nobody) and its local state, or why that cannot be read now.
pub fn group_view(node: &VigilNode, key: &str) -> Result<(Option<String>, String), String> {
    let status = node.try_status_json()?;
    let group = status
        .pointer("/failover/groups")
        .and_then(serde_json::Value::as_array)
        .and_then(|groups| {
            groups
                .iter()
                .find(|g| g.get("key").and_then(serde_json::Value::as_str) == Some(key))
        })
        .ok_or_else(|| format!("no group {key} in the status: {status}"))?;
    let owner = group
        .get("owner")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string);
    let local = group
        .get("local")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| format!("group {key} without a local state: {group}"))?
        .to_string();
    Ok((owner, local))
}

/// Waits until `node` reports the group `key` owned by `owner` with local state `local`.
pub fn wait_group(node: &VigilNode, key: &str, owner: Option<&str>, local: &str) {
    wait_for(
        &format!(
            "{} to report group {key} owned by {owner:?}, here {local}",
            node.node_name()
        ),
        SETTLE_TIMEOUT,
        || match group_view(node, key) {
            Ok((seen_owner, seen_local))
                if seen_owner.as_deref() == owner && seen_local == local =>
            {
                Ok(())
            }
            Ok(seen) => Err(format!("owner {:?}, here {}", seen.0, seen.1)),
            Err(e) => Err(e),
        },
    );
}
