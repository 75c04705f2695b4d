//! keepalived 2.2.7 as a node of the lab: one VRRPv3 instance holding the benchmark's
//! address, run in the node's network namespace with its own configuration file, pid files
//! and console log.
//!
//! Owns the configuration text (keepalived's defaults except what the comparison needs:
//! VRRPv3, the address, the priorities and the advertisement interval), starting
//! `keepalived` in the foreground, finding its processes (the parent and the VRRP child it
//! forks), and killing them. It must not use the machine's `/etc/keepalived`, its default
//! pid files or syslog, or leave a process behind: the node is killed on drop.

use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::VrrpTiming;
use crate::support::netns::{FIRST_LINK, NodeNet};
use crate::support::{die_with_test, signal_process, write_file};

/// The daemon as Debian installs it.
pub(crate) const KEEPALIVED: &str = "/usr/sbin/keepalived";

/// node1's priority: it owns the address whenever it is up (preemption is keepalived's
/// default).
pub(crate) const OWNER_PRIORITY: u8 = 150;

/// node2's priority.
pub(crate) const BACKUP_PRIORITY: u8 = 100;

/// The VRRP router id of the benchmark's instance; the lab's bridge carries no other.
const VIRTUAL_ROUTER_ID: u8 = 51;

/// How long killed keepalived processes may take to leave the process table.
const REAP_TIMEOUT: Duration = Duration::from_secs(10);

/// One keepalived node. Dropping it kills its processes.
pub(crate) struct KeepalivedNode {
    /// The node's name, as keepalived's `router_id`.
    name: String,
    /// Where in the lab it lives.
    net: NodeNet,
    /// Its configuration file.
    config: PathBuf,
    /// The parent's pid file (`-p`), removed before each start so that a killed parent
    /// cannot be taken for a running one.
    pid_file: PathBuf,
    /// The VRRP child's pid file (`-r`), likewise.
    vrrp_pid_file: PathBuf,
    /// Console output of every start, appended.
    log: PathBuf,
    /// The parent process, when running.
    child: Option<Child>,
}

impl KeepalivedNode {
    /// Writes the node's configuration for `address` at `timing` with `priority`, in the
    /// node's directory; the daemon does not run yet.
    pub(crate) fn prepare(
        net: &NodeNet,
        name: &str,
        address: Ipv4Addr,
        priority: u8,
        timing: VrrpTiming,
    ) -> KeepalivedNode {
        let dir = net.dir.join("keepalived");
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let config = dir.join("keepalived.conf");
        write_file(
            &config,
            &config_text(name, address, priority, timing),
            0o644,
        );
        KeepalivedNode {
            name: name.to_string(),
            net: net.clone(),
            config,
            pid_file: dir.join("keepalived.pid"),
            vrrp_pid_file: dir.join("vrrp.pid"),
            log: dir.join("console.log"),
            child: None,
        }
    }

    /// Starts keepalived in the node's namespace: in the foreground (`-n`), VRRP only, logging
    /// to the console with detail and not to syslog.
    pub(crate) fn start(&mut self) {
        assert!(
            self.child.is_none(),
            "keepalived on {} is still running",
            self.name
        );
        let _ = fs::remove_file(&self.pid_file);
        let _ = fs::remove_file(&self.vrrp_pid_file);
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log.display()));
        let mut command = self.net.exec(KEEPALIVED);
        command
            .args(["-n", "-l", "-D", "-G", "-P", "-f"])
            .arg(&self.config)
            .arg("-p")
            .arg(&self.pid_file)
            .arg("-r")
            .arg(&self.vrrp_pid_file)
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .unwrap_or_else(|e| panic!("cannot duplicate {}: {e}", self.log.display())),
            )
            .stderr(log);
        die_with_test(&mut command);
        // `ip netns exec` execs keepalived, so the child's pid is the parent's.
        self.child = Some(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {KEEPALIVED}: {e}")),
        );
    }

    /// Where in the lab the node lives.
    pub(crate) fn net(&self) -> &NodeNet {
        &self.net
    }

    /// The parent and every process it forked (the VRRP child).
    pub(crate) fn pids(&self) -> Vec<i32> {
        let Some(parent) = self.child.as_ref().and_then(|c| i32::try_from(c.id()).ok()) else {
            return Vec::new();
        };
        let mut pids = vec![parent];
        pids.extend(children_of(parent));
        pids
    }

    /// Kills every process of the node with SIGKILL (stopped ones too), reaps the parent
    /// and waits until the others are gone or zombies of their new parent.
    pub(crate) fn kill_and_reap(&mut self) {
        let pids = self.pids();
        for &pid in &pids {
            signal_process(pid, libc::SIGKILL);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        let start = Instant::now();
        while pids.iter().any(|&pid| running(pid)) && start.elapsed() < REAP_TIMEOUT {
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The console log of every start so far.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for KeepalivedNode {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// The configuration of one node: keepalived's defaults but for VRRPv3, the address, the
/// priority and the advertisement interval. No `state` line: both nodes start as BACKUP
/// (keepalived's default) and node1 takes the address by its priority; preemption and the
/// gratuitous ARP settings are left at their defaults.
fn config_text(name: &str, address: Ipv4Addr, priority: u8, timing: VrrpTiming) -> String {
    format!(
        "global_defs {{\n    router_id {name}\n    vrrp_version 3\n}}\n\n\
         vrrp_instance failover {{\n    interface {FIRST_LINK}\n    virtual_router_id \
         {VIRTUAL_ROUTER_ID}\n    priority {priority}\n    advert_int {}\n    \
         virtual_ipaddress {{\n        {address}/24 dev {FIRST_LINK}\n    }}\n}}\n",
        timing.advert_int
    )
}

/// The processes whose parent is `parent`, from `/proc/PID/stat`.
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| stat_fields(pid).is_some_and(|(_, ppid)| ppid == parent))
        .collect()
}

/// Whether `pid` exists and is not a zombie.
fn running(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|(state, _)| state != 'Z')
}

/// The state and parent pid of a process, from `/proc/PID/stat` (after the command name,
/// which may hold spaces and parentheses).
fn stat_fields(pid: i32) -> Option<(char, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}
