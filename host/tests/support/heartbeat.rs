//! Debian's Heartbeat 3.0.6 as a cluster node in the lab, the reference peer for the
//! interoperability tests.
//!
//! Owns giving one Heartbeat node the private world it assumes it has: its network namespace
//! from the lab, plus its own mount and UTS namespaces (hostname = node name, a private
//! tmpfs on `/run` with the directories the package's tmpfiles.d would make, and per-node
//! copies of `/etc/ha.d` and `/var/lib/heartbeat` bound over the real ones). A long-lived
//! holder process keeps those namespaces alive so later commands (`heartbeat`, `heartbeat
//! -k`, `cl_status`) can enter them with `nsenter`. It must not change anything outside
//! those namespaces and the node's directory: the host's `/run`, `/etc/ha.d` and
//! `/var/lib/heartbeat` stay untouched.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::netns::NodeNet;
use super::{
    ClStatus, ClusterConfig, SETTLE_TIMEOUT, die_with_test, process_exists, run_checked,
    run_or_skip, signal_process, wait_for, write_file,
};

/// The Heartbeat master program as Debian installs it.
pub const HEARTBEAT_DAEMON: &str = "/usr/libexec/heartbeat/heartbeat";
/// Heartbeat's own status tool.
pub const HEARTBEAT_CL_STATUS: &str = "/usr/bin/cl_status";

/// How long `heartbeat -k` may take before the rest is killed; it waits several seconds
/// for its children by design.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Prepares the node's namespaces, then stays as the holder that keeps them alive.
/// Arguments: hostname, etc copy, var/lib copy, ready marker. `/sys` was already remounted
/// for the network namespace by `ip netns exec`.
const HOLDER_SCRIPT: &str = r#"set -e
hostname "$1"
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/dopd /run/crm /run/resource-agents
# /var/lock (= /run/lock), where Heartbeat puts the UUCP lock file of a serial line.
mkdir -p /run/lock
chown hacluster:haclient /run/heartbeat /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/dopd /run/crm
chmod 0750 /run/heartbeat /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/dopd /run/crm
chmod 1755 /run/resource-agents
mount --bind "$2" /etc/ha.d
mount --bind "$3" /var/lib/heartbeat
: > "$4"
exec sleep infinity
"#;

/// Whether Heartbeat is installed; otherwise prints why the test skips (or fails it when
/// root tests are required).
pub fn heartbeat_or_skip() -> bool {
    let installed = Path::new(HEARTBEAT_DAEMON).exists() && Path::new(HEARTBEAT_CL_STATUS).exists();
    run_or_skip(
        installed,
        "Heartbeat 3.0.6 (Debian packages heartbeat cluster-glue resource-agents; run .ci/install-test-packages)",
    )
}

/// One Heartbeat node. Dropping it kills all its processes and its namespaces' holder.
pub struct HeartbeatNode {
    /// The node's name, which is also its hostname inside its UTS namespace.
    name: String,
    /// Where in the lab it lives.
    net: NodeNet,
    /// This node's files: the copies bound over /etc/ha.d and /var/lib/heartbeat, and logs.
    dir: PathBuf,
    /// The process whose mount, UTS and network namespaces are the node's.
    holder: Child,
    /// The holder's mount namespace (`mnt:[inode]`): every other process in it is Heartbeat's.
    mount_namespace: String,
}

impl HeartbeatNode {
    /// Prepares the node's namespaces and files for `config` and starts Heartbeat there.
    pub fn start(net: &NodeNet, name: &str, config: &ClusterConfig) -> HeartbeatNode {
        HeartbeatNode::start_prepared(net, name, config, |_| {})
    }

    /// Like [`HeartbeatNode::start`], but `prepare` may change or add files in the node's
    /// copy of `/etc/ha.d` (haresources above all; it gets that directory) before Heartbeat
    /// first starts.
    pub fn start_prepared(
        net: &NodeNet,
        name: &str,
        config: &ClusterConfig,
        prepare: impl FnOnce(&Path),
    ) -> HeartbeatNode {
        let dir = net.dir.join("heartbeat");
        let etc = dir.join("etc-ha.d");
        let var_lib = dir.join("var-lib-heartbeat");
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        // Copies keep the package's scripts (harc, rc.d, resource.d) and directory owners.
        run_checked(Command::new("cp").arg("-a").arg("/etc/ha.d").arg(&etc));
        run_checked(
            Command::new("cp")
                .arg("-a")
                .arg("/var/lib/heartbeat")
                .arg(&var_lib),
        );
        let head = format!(
            "logfile {}\ndebugfile {}\nuse_logd no\n",
            dir.join("ha-log").display(),
            dir.join("ha-debug").display()
        );
        write_file(&etc.join("ha.cf"), &config.ha_cf(&head), 0o644);
        write_file(&etc.join("authkeys"), &config.authkeys, 0o600);
        write_file(&etc.join("haresources"), "", 0o644);
        prepare(&etc);

        let ready = dir.join("namespaces-ready");
        let holder_log = File::create(dir.join("holder.log"))
            .unwrap_or_else(|e| panic!("cannot create holder log in {}: {e}", dir.display()));
        let mut command = net.exec("unshare");
        command
            .args(["--mount", "--uts", "--propagation", "private", "sh", "-c"])
            .arg(HOLDER_SCRIPT)
            .arg("sh")
            .arg(name)
            .arg(&etc)
            .arg(&var_lib)
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(
                holder_log
                    .try_clone()
                    .unwrap_or_else(|e| panic!("cannot duplicate holder log: {e}")),
            )
            .stderr(holder_log);
        die_with_test(&mut command);
        let mut holder = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start namespace holder for {name}: {e}"));
        let holder_pid = holder.id();
        wait_for(
            &format!("the namespaces of Heartbeat node {name}"),
            SETTLE_TIMEOUT,
            || {
                if ready.exists() {
                    return Ok(());
                }
                match holder.try_wait() {
                    Ok(Some(status)) => panic!(
                        "namespace holder for {name} exited ({status}): {}",
                        fs::read_to_string(dir.join("holder.log")).unwrap_or_default()
                    ),
                    _ => Err("holder still preparing".to_string()),
                }
            },
        );
        let mount_namespace = fs::read_link(format!("/proc/{holder_pid}/ns/mnt"))
            .unwrap_or_else(|e| panic!("cannot read the holder's mount namespace: {e}"))
            .to_string_lossy()
            .into_owned();
        let node = HeartbeatNode {
            name: name.to_string(),
            net: net.clone(),
            dir,
            holder,
            mount_namespace,
        };
        node.start_daemon();
        node
    }

    /// Starts Heartbeat in the node's namespaces (again, after a stop or a kill). It
    /// daemonizes; this returns once the starter has exited successfully.
    pub fn start_daemon(&self) {
        let output = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("heartbeat.out"))
            .unwrap_or_else(|e| panic!("cannot open heartbeat.out: {e}"));
        let status = self
            .enter(HEARTBEAT_DAEMON)
            .stdin(Stdio::null())
            .stdout(
                output
                    .try_clone()
                    .unwrap_or_else(|e| panic!("cannot duplicate heartbeat.out: {e}")),
            )
            .stderr(output)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {HEARTBEAT_DAEMON}: {e}"));
        assert!(
            status.success(),
            "Heartbeat on {} did not start ({status}): {}",
            self.name,
            fs::read_to_string(self.dir.join("heartbeat.out")).unwrap_or_default()
        );
    }

    /// A command that runs `program` in the node's network, mount and UTS namespaces.
    pub fn enter(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg("-t")
            .arg(self.holder.id().to_string())
            .args(["-m", "-u", "-n", "--"])
            .arg(program);
        command
    }

    /// The lab node this Heartbeat runs on.
    pub fn net(&self) -> &NodeNet {
        &self.net
    }

    /// Every process of this node's Heartbeat (and of anything it started): all processes in
    /// its mount namespace except the holder.
    pub fn pids(&self) -> Vec<i32> {
        let holder = i32::try_from(self.holder.id()).unwrap_or(-1);
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != holder)
            .filter(|pid| {
                fs::read_link(format!("/proc/{pid}/ns/mnt"))
                    .is_ok_and(|ns| ns.to_string_lossy() == self.mount_namespace)
            })
            .collect()
    }

    /// Kills every Heartbeat process of this node with SIGKILL, as a crash or power loss
    /// would, and waits until none is left.
    pub fn kill_hard(&self) {
        assert!(
            self.kill_all(),
            "Heartbeat processes of {} survived SIGKILL: {:?}",
            self.name,
            self.pids()
        );
    }

    /// Kills every Heartbeat process of this node like [`HeartbeatNode::kill_hard`], then
    /// waits until each is gone from the process table, not just dead: Heartbeat refuses to
    /// start while the pid in its pid file exists, and a killed master stays there as a
    /// zombie until its new parent reaps it, so a start right after a plain kill can find
    /// it "already running".
    pub fn kill_and_reap(&self) {
        let killed = self.pids();
        self.kill_hard();
        wait_for(
            &format!(
                "the killed Heartbeat processes of {} to be reaped",
                self.name
            ),
            SETTLE_TIMEOUT,
            || {
                let left: Vec<i32> = killed
                    .iter()
                    .copied()
                    .filter(|&pid| process_exists(pid))
                    .collect();
                if left.is_empty() {
                    Ok(())
                } else {
                    Err(format!("still in the process table: {left:?}"))
                }
            },
        );
    }

    /// Stops every Heartbeat process of this node with SIGSTOP (a hung node).
    pub fn freeze(&self) {
        for pid in self.pids() {
            signal_process(pid, libc::SIGSTOP);
        }
    }

    /// Resumes the processes [`HeartbeatNode::freeze`] stopped.
    pub fn thaw(&self) {
        for pid in self.pids() {
            signal_process(pid, libc::SIGCONT);
        }
    }

    /// Stops Heartbeat the operator's way (`heartbeat -k`), then makes sure nothing of it is
    /// left.
    pub fn stop(&self) {
        let mut stopper = self
            .enter(HEARTBEAT_DAEMON)
            .arg("-k")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run heartbeat -k: {e}"));
        let start = Instant::now();
        while start.elapsed() < STOP_TIMEOUT {
            if let Ok(Some(_)) = stopper.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let _ = stopper.kill();
        let _ = stopper.wait();
        self.kill_hard();
    }

    /// Heartbeat's log file (`logfile` in ha.cf), lossily decoded: Heartbeat writes raw bytes
    /// of bad packets into it.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.dir.join("ha-log")).unwrap_or_default()).into_owned()
    }

    /// Heartbeat's debug file (`debugfile` in ha.cf: what the resource scripts it ran
    /// printed), lossily decoded.
    pub fn debug_log(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.dir.join("ha-debug")).unwrap_or_default())
            .into_owned()
    }

    /// SIGKILLs the node's processes until none is left; false if some survived 10 s.
    fn kill_all(&self) -> bool {
        let start = Instant::now();
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                return true;
            }
            if start.elapsed() > Duration::from_secs(10) {
                return false;
            }
            for pid in pids {
                signal_process(pid, libc::SIGKILL);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl ClStatus for HeartbeatNode {
    fn node_name(&self) -> &str {
        &self.name
    }

    fn cl_status(&self, args: &[&str]) -> (String, i32) {
        let output = self
            .enter(HEARTBEAT_CL_STATUS)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run cl_status on {}: {e}", self.name));
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            output.status.code().unwrap_or(-1),
        )
    }
}

impl Drop for HeartbeatNode {
    fn drop(&mut self) {
        self.kill_all();
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
