//! The benchmark's clusters: two nodes of one implementation in the lab's namespaces,
//! sharing one address-only group, with the address watched on both nodes and the bridge
//! captured for gratuitous ARP.
//!
//! Owns the node life cycle the trials share (prepare, launch both at once, freeze and cut,
//! kill, reboot, standby and takeover), where each implementation keeps its files, the
//! ping nodes of a connectivity cluster (`ping` or `ping_group`) and dropping a node's echo
//! requests to them, the operator's side of a meatware reset (Debian's `meatclient` in the
//! survivor's namespaces), and waiting for the group to settle on a node. It measures
//! nothing itself: the trials take the times.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::address_watch::AddressWatch;
use crate::common::retime;
use crate::keepalived::{BACKUP_PRIORITY, KeepalivedNode, OWNER_PRIORITY};
use crate::support::capture::{ArpPacket, PortCapture};
use crate::support::heartbeat::HeartbeatNode;
use crate::support::netns::{FIRST_LINK, Lab, NodeNet};
use crate::support::vigil_node::{PrivateDir, VigilNode};
use crate::support::{
    ClStatus, ClusterConfig, MediumKind, node_name, run_checked, signal_process, write_file,
};
use crate::{HaCfTiming, Implementation, Timing};

/// Heartbeat 3.0.6's resource.d wrapper around resource-agents' IPaddr, which Heartbeat runs
/// for `IPaddr::…`.
pub(crate) const HEARTBEAT_IPADDR_WRAPPER: &str = "/etc/ha.d/resource.d/IPaddr";
/// resource-agents' IPaddr configures the address with `ifconfig` (package net-tools).
pub(crate) const IFCONFIG: &str = "/sbin/ifconfig";
/// Heartbeat's `hb_standby`: the node gives its resources to its peer.
pub(crate) const HEARTBEAT_STANDBY: &str = "/usr/share/heartbeat/hb_standby";
/// Heartbeat's `hb_takeover`: the node takes them back.
const HEARTBEAT_TAKEOVER: &str = "/usr/share/heartbeat/hb_takeover";
/// Debian's `meatclient` (package cluster-glue): the operator confirms a meatware reset with
/// it, to Heartbeat's device and to vigil's alike.
pub(crate) const DEBIAN_MEATCLIENT: &str = "/usr/sbin/meatclient";

/// The host number of the group's address in the lab's subnet (198.18.X.100).
const GROUP_HOST: u8 = 100;

/// Heartbeat's ipfail as Debian installs it; vigil maps the same `respawn` line onto its
/// built-in connectivity failover.
pub(crate) const HEARTBEAT_IPFAIL: &str = "/usr/libexec/heartbeat/ipfail";

/// The nftables program, with which a node's echo requests to the router are dropped.
pub(crate) const NFT: &str = "/usr/sbin/nft";

/// The nftables table that drops them, in the node's namespace.
const PING_BLOCK_TABLE: &str = "bench_ping_block";

/// The name of the `ping_group` in the connectivity part's group variant: the name its
/// pseudo-node has in membership.
const PING_GROUP_NAME: &str = "routers";

/// How a connectivity cluster names the routers in ha.cf: Heartbeat's two kinds of ping
/// node. The tables label their rows with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PingKind {
    /// `ping ROUTER`: the first router alone, one ping node.
    Ping,
    /// `ping_group routers ROUTER1 ROUTER2`: both routers as one ping node, alive while
    /// either answers.
    PingGroup,
}

impl PingKind {
    /// Both kinds, in the order the connectivity part measures them.
    pub(crate) const ALL: [PingKind; 2] = [PingKind::Ping, PingKind::PingGroup];

    /// How many of the bench's routers the line names.
    fn router_count(self) -> usize {
        match self {
            PingKind::Ping => 1,
            PingKind::PingGroup => 2,
        }
    }

    /// The ha.cf line with the routers as placeholders, for the tables' explanations.
    pub(crate) fn ha_cf_form(self) -> String {
        match self {
            PingKind::Ping => "ping ROUTER".into(),
            PingKind::PingGroup => format!("ping_group {PING_GROUP_NAME} ROUTER1 ROUTER2"),
        }
    }
}

impl fmt::Display for PingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PingKind::Ping => "ping",
            PingKind::PingGroup => "ping_group",
        })
    }
}

/// What a connectivity cluster pings: the kind of its ha.cf line and the routers it names.
#[derive(Debug, Clone)]
struct PingNodes {
    /// `ping` or `ping_group`.
    kind: PingKind,
    /// The routers' addresses, as many as the kind names.
    routers: Vec<Ipv4Addr>,
}

impl PingNodes {
    /// The ha.cf line that names the routers.
    fn ha_cf_line(&self) -> String {
        let routers: Vec<String> = self.routers.iter().map(Ipv4Addr::to_string).collect();
        match self.kind {
            PingKind::Ping => format!("ping {}", routers.join(" ")),
            PingKind::PingGroup => format!("ping_group {PING_GROUP_NAME} {}", routers.join(" ")),
        }
    }
}

/// How long the owner must have run before it dies: for its first 5 s a vigil or Heartbeat
/// node announces deadtime + 2 s, and its peer applies what it announced last.
const MIN_OWNER_UPTIME: Duration = Duration::from_secs(7);

/// How long the group must stay put on its node, after both nodes see each other, before
/// the cluster counts as settled.
const SETTLE_DWELL: Duration = Duration::from_millis(500);

/// How often a wait for a settled cluster looks again.
const SETTLE_POLL: Duration = Duration::from_millis(50);

/// How often the capture is read while a gratuitous ARP is awaited.
const ARP_POLL: Duration = Duration::from_millis(5);

/// The lab shared by every cluster, and a counter that gives each cluster fresh directories.
pub(crate) struct Bench<'a> {
    /// The lab whose two node namespaces every cluster runs in.
    lab: &'a Lab,
    /// Nodes 1 and 2 of the lab.
    nets: &'a [NodeNet; 2],
    /// Whether tcpdump is there to capture gratuitous ARP.
    capture_arp: bool,
    /// The routers both nodes ping in the connectivity part: namespaces where only the
    /// kernel answers. `ping` names the first, `ping_group` both.
    routers: &'a [NodeNet; 2],
    /// Clusters made so far.
    runs: u32,
}

impl<'a> Bench<'a> {
    /// The bench of a lab, its nodes 1 and 2 and the routers of the connectivity part.
    pub(crate) fn new(
        lab: &'a Lab,
        nets: &'a [NodeNet; 2],
        routers: &'a [NodeNet; 2],
        capture_arp: bool,
    ) -> Bench<'a> {
        Bench {
            lab,
            nets,
            capture_arp,
            routers,
            runs: 0,
        }
    }

    /// The lab's nodes with directories no earlier cluster used.
    fn fresh_nets(&mut self) -> [NodeNet; 2] {
        self.runs += 1;
        let run = format!("run{}", self.runs);
        self.nets.clone().map(|net| {
            let dir = net.dir.join(&run);
            fs::create_dir_all(&dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
            NodeNet { dir, ..net }
        })
    }

    /// A cluster of `implementation` at `timing`, configured, its daemons not running and
    /// the group's address on neither node; the watch and the capture run.
    pub(crate) fn cluster(
        &mut self,
        implementation: Implementation,
        timing: Timing,
    ) -> Result<Cluster<'a>, String> {
        self.build(implementation, timing, None, None)
    }

    /// Like [`Bench::cluster`], for vigil or Heartbeat, with the routers as ping nodes of
    /// `kind` (`ping` the first router, `ping_group` both) and Heartbeat's `respawn hacluster
    /// …/ipfail` line on both nodes: Heartbeat runs ipfail, vigil its built-in connectivity
    /// failover.
    pub(crate) fn ping_cluster(
        &mut self,
        implementation: Implementation,
        timing: Timing,
        kind: PingKind,
    ) -> Result<Cluster<'a>, String> {
        if implementation == Implementation::Keepalived {
            return Err("keepalived is not compared for connectivity failover".into());
        }
        let ping = PingNodes {
            kind,
            routers: self.routers[..kind.router_count()]
                .iter()
                .map(|router| router.address)
                .collect(),
        };
        self.build(implementation, timing, None, Some(ping))
    }

    /// Like [`Bench::cluster`], for vigil or Heartbeat, with the ha.cf line `stonith_host *
    /// DEVICE` on both nodes: a survivor resets its lost peer through that device before it
    /// takes the group over.
    pub(crate) fn fenced_cluster(
        &mut self,
        implementation: Implementation,
        timing: Timing,
        device: &str,
    ) -> Result<Cluster<'a>, String> {
        if implementation == Implementation::Keepalived {
            return Err("keepalived has no STONITH".into());
        }
        self.build(implementation, timing, Some(device), None)
    }

    fn build(
        &mut self,
        implementation: Implementation,
        timing: Timing,
        stonith_device: Option<&str>,
        ping: Option<PingNodes>,
    ) -> Result<Cluster<'a>, String> {
        let nets = self.fresh_nets();
        let [a, b, c, _] = nets[0].address.octets();
        let address = Ipv4Addr::new(a, b, c, GROUP_HOST);
        let daemons = match (implementation, timing) {
            (Implementation::Vigil, Timing::HaCf(ha_cf)) => {
                prepare_vigil(&nets, address, ha_cf, stonith_device, ping.as_ref())
                    .map(Daemon::Vigil)
            }
            (Implementation::Heartbeat, Timing::HaCf(ha_cf)) => {
                prepare_heartbeat(&nets, address, ha_cf, stonith_device, ping.as_ref())
                    .map(Daemon::Heartbeat)
            }
            (Implementation::Keepalived, Timing::Vrrp(vrrp)) => {
                let priorities = [OWNER_PRIORITY, BACKUP_PRIORITY];
                [0, 1].map(|i| {
                    Daemon::Keepalived(KeepalivedNode::prepare(
                        &nets[i],
                        &node_name(nets[i].index),
                        address,
                        priorities[i],
                        vrrp,
                    ))
                })
            }
            _ => return Err(format!("{implementation} cannot run at {timing}")),
        };
        let mut index = 0u8;
        let nodes = daemons.map(|daemon| {
            index += 1;
            Node {
                daemon,
                index,
                started: None,
            }
        });
        let macs = nets.clone().map(|net| net.mac_address(FIRST_LINK));
        let arp = self.capture_arp.then(|| {
            PortCapture::start_on_bridge(self.lab, FIRST_LINK, "arp", &nets[0].dir.join("arp.pcap"))
        });
        let cluster = Cluster {
            implementation,
            timing,
            address,
            watch: AddressWatch::start(&nets, address)?,
            arp,
            nodes,
            macs,
            lab: self.lab,
            ping,
        };
        for index in [1, 2] {
            cluster.clear_address(index);
        }
        Ok(cluster)
    }
}

/// The haresources both vigil and Heartbeat run: node1's address-only group.
fn haresources(address: Ipv4Addr) -> String {
    format!("{} IPaddr::{address}/24/{FIRST_LINK}\n", node_name(1))
}

/// The ha.cf, authkeys and haresources of a two-node cluster on `nets`.
fn cluster_config(nets: &[NodeNet; 2]) -> ClusterConfig {
    let names = [node_name(1), node_name(2)];
    ClusterConfig::new(
        MediumKind::Bcast,
        &[&names[0], &names[1]],
        &[nets[0].address, nets[1].address],
    )
}

/// Writes the files of both nodes through the lab's support code, which starts vigil at
/// once; it is killed again, so that both can be launched together. With a STONITH device,
/// each daemon also gets a `/run` of its own (a directory of the node, in a private mount
/// namespace), as Heartbeat's nodes have: meatware's FIFO is then the survivor's alone.
fn prepare_vigil(
    nets: &[NodeNet; 2],
    address: Ipv4Addr,
    timing: HaCfTiming,
    stonith_device: Option<&str>,
    ping: Option<&PingNodes>,
) -> [VigilNode; 2] {
    let config = cluster_config(nets);
    nets.clone().map(|net| {
        let private_run: Vec<PrivateDir> = stonith_device
            .map(|_| PrivateDir {
                source: net.dir.join("run"),
                target: PathBuf::from("/run"),
            })
            .into_iter()
            .collect();
        let mut node = VigilNode::start_prepared(
            &net,
            &node_name(net.index),
            &config,
            &private_run,
            |ha_dir| {
                write_file(&ha_dir.join("haresources"), &haresources(address), 0o644);
                retime(&ha_dir.join("ha.cf"), &timing.ha_cf_lines());
                if let Some(device) = stonith_device {
                    add_stonith_host(&ha_dir.join("ha.cf"), device);
                }
                if let Some(ping) = ping {
                    add_ping_and_ipfail(&ha_dir.join("ha.cf"), ping);
                }
            },
        );
        node.kill_hard();
        node
    })
}

/// Gives both Heartbeat nodes their namespaces and files through the lab's support code,
/// which starts Heartbeat at once; it is killed again, so that both can be launched
/// together.
fn prepare_heartbeat(
    nets: &[NodeNet; 2],
    address: Ipv4Addr,
    timing: HaCfTiming,
    stonith_device: Option<&str>,
    ping: Option<&PingNodes>,
) -> [HeartbeatNode; 2] {
    let config = cluster_config(nets);
    nets.clone().map(|net| {
        let node = HeartbeatNode::start_prepared(&net, &node_name(net.index), &config, |etc| {
            write_file(&etc.join("haresources"), &haresources(address), 0o644);
            retime(&etc.join("ha.cf"), &timing.ha_cf_lines());
            if let Some(device) = stonith_device {
                add_stonith_host(&etc.join("ha.cf"), device);
            }
            if let Some(ping) = ping {
                add_ping_and_ipfail(&etc.join("ha.cf"), ping);
            }
        });
        node.kill_and_reap();
        node
    })
}

/// Appends the `ping` or `ping_group` line and `respawn hacluster …/ipfail` to a node's
/// ha.cf.
fn add_ping_and_ipfail(ha_cf: &Path, ping: &PingNodes) {
    let mut text = fs::read_to_string(ha_cf)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", ha_cf.display()));
    text.push_str(&format!(
        "{}\nrespawn hacluster {HEARTBEAT_IPFAIL}\n",
        ping.ha_cf_line()
    ));
    write_file(ha_cf, &text, 0o644);
}

/// Appends `stonith_host * DEVICE` to a node's ha.cf: every node resets its peers with it.
fn add_stonith_host(ha_cf: &Path, device: &str) {
    let mut text = fs::read_to_string(ha_cf)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", ha_cf.display()));
    text.push_str(&format!("stonith_host * {device}\n"));
    fs::write(ha_cf, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", ha_cf.display()));
}

/// The daemon of a node, of any implementation.
enum Daemon {
    Vigil(VigilNode),
    Heartbeat(HeartbeatNode),
    Keepalived(KeepalivedNode),
}

/// One node of a benchmark cluster.
struct Node {
    /// Its daemon.
    daemon: Daemon,
    /// Its index in the lab (1 or 2).
    index: u8,
    /// When its daemon last started, if it runs.
    started: Option<Instant>,
}

impl Node {
    /// Starts the node's daemon, which is not running; returns once the lab's support code
    /// says it started (vigil: it answers on its socket; Heartbeat: its starter returned;
    /// keepalived: the process exists).
    fn launch(&mut self) {
        self.start_process();
        self.await_started();
    }

    /// The part of [`Node::launch`] that starts the process. vigil and keepalived die with
    /// the thread that starts them (the lab's parent-death signal), so this runs on the
    /// benchmark's main thread; Heartbeat daemonizes and may be started from any thread.
    fn start_process(&mut self) {
        match &mut self.daemon {
            Daemon::Vigil(node) => node.launch(),
            Daemon::Heartbeat(node) => node.start_daemon(),
            Daemon::Keepalived(node) => node.start(),
        }
        self.started = Some(Instant::now());
    }

    /// The part of [`Node::launch`] that waits for the daemon to be up.
    fn await_started(&mut self) {
        if let Daemon::Vigil(node) = &mut self.daemon {
            node.await_answer();
        }
    }

    /// Kills every process of the daemon with SIGKILL (stopped ones too) and reaps it.
    fn kill(&mut self) {
        match &mut self.daemon {
            Daemon::Vigil(node) => node.kill_hard(),
            Daemon::Heartbeat(node) => node.kill_and_reap(),
            Daemon::Keepalived(node) => node.kill_and_reap(),
        }
        self.started = None;
    }

    /// Every process of the daemon.
    fn pids(&self) -> Vec<i32> {
        match &self.daemon {
            Daemon::Vigil(node) => vec![node.pid()],
            Daemon::Heartbeat(node) => node.pids(),
            Daemon::Keepalived(node) => node.pids(),
        }
    }

    /// Where in the lab the node lives.
    fn net(&self) -> &NodeNet {
        match &self.daemon {
            Daemon::Vigil(node) => node.net(),
            Daemon::Heartbeat(node) => node.net(),
            Daemon::Keepalived(node) => node.net(),
        }
    }

    /// The node's `cl_status` view; keepalived has none.
    fn view(&self) -> Option<&dyn ClStatus> {
        match &self.daemon {
            Daemon::Vigil(node) => Some(node),
            Daemon::Heartbeat(node) => Some(node),
            Daemon::Keepalived(_) => None,
        }
    }

    /// Runs `hb_standby` (`standby`) or `hb_takeover` on the node: vigil's binary under
    /// that name, which asks the daemon over its API, or Heartbeat's own script.
    fn move_group(&self, standby: bool) -> Result<(), String> {
        let (stdout, stderr, rc) = match &self.daemon {
            Daemon::Vigil(node) => {
                node.run_tool(if standby { "hb_standby" } else { "hb_takeover" }, &[])
            }
            Daemon::Heartbeat(node) => {
                let script = if standby {
                    HEARTBEAT_STANDBY
                } else {
                    HEARTBEAT_TAKEOVER
                };
                let output = node
                    .enter(script)
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| format!("cannot run {script}: {e}"))?;
                (
                    String::from_utf8_lossy(&output.stdout).into_owned(),
                    String::from_utf8_lossy(&output.stderr).into_owned(),
                    output.status.code().unwrap_or(-1),
                )
            }
            Daemon::Keepalived(_) => return Err("keepalived has no standby command".into()),
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(format!(
                "{} on node{} exited {rc}: {stdout}{stderr}",
                if standby { "hb_standby" } else { "hb_takeover" },
                self.index
            ))
        }
    }

    /// A command that runs `program` in the namespaces the node's daemon lives in (network
    /// and mount, so it sees the daemon's `/run`); keepalived's are the lab's alone.
    fn enter(&self, program: &str) -> Command {
        match &self.daemon {
            Daemon::Vigil(node) => {
                let mut command = Command::new("nsenter");
                command
                    .arg("-t")
                    .arg(node.pid().to_string())
                    .args(["-m", "-n", "--"])
                    .arg(program);
                command
            }
            Daemon::Heartbeat(node) => node.enter(program),
            Daemon::Keepalived(node) => node.net().exec(program),
        }
    }

    /// The last lines of the daemon's log, for a failed trial.
    fn log_tail(&self, lines: usize) -> String {
        let log = match &self.daemon {
            Daemon::Vigil(node) => node.log(),
            Daemon::Heartbeat(node) => node.log(),
            Daemon::Keepalived(node) => node.log(),
        };
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// A two-node cluster of one implementation. Fields drop in declaration order: the watch
/// and the capture end before the daemons are killed.
pub(crate) struct Cluster<'a> {
    /// Which daemon both nodes run.
    pub(crate) implementation: Implementation,
    /// At which timing.
    pub(crate) timing: Timing,
    /// The group's address.
    pub(crate) address: Ipv4Addr,
    /// When the address appears on and leaves each node.
    pub(crate) watch: AddressWatch,
    /// Every ARP packet that crosses the bridge, when tcpdump is there.
    arp: Option<PortCapture>,
    /// Node 1 (the preferred owner) and node 2.
    nodes: [Node; 2],
    /// The MAC address of each node's `eth0`.
    macs: [[u8; 6]; 2],
    /// The lab, for cutting and healing links.
    lab: &'a Lab,
    /// What both nodes ping, in a connectivity cluster.
    ping: Option<PingNodes>,
}

impl Cluster<'_> {
    fn node(&self, index: u8) -> &Node {
        &self.nodes[usize::from(index) - 1]
    }

    fn node_mut(&mut self, index: u8) -> &mut Node {
        &mut self.nodes[usize::from(index) - 1]
    }

    /// Launches both daemons at the same moment and returns that moment: vigil and
    /// keepalived one after the other from this thread (starting a process takes about a
    /// millisecond), then waits for both; Heartbeat, whose starter returns only once it
    /// has daemonized, from one thread each.
    pub(crate) fn launch_both(&mut self) -> SystemTime {
        let launched = SystemTime::now();
        if self.implementation == Implementation::Heartbeat {
            let [first, second] = &mut self.nodes;
            thread::scope(|scope| {
                scope.spawn(|| first.launch());
                scope.spawn(|| second.launch());
            });
        } else {
            for node in &mut self.nodes {
                node.start_process();
            }
            for node in &mut self.nodes {
                node.await_started();
            }
        }
        launched
    }

    /// Kills both daemons and removes the address from both nodes: two powered-off
    /// machines.
    pub(crate) fn stop_both(&mut self) {
        for index in [1, 2] {
            self.node_mut(index).kill();
            self.clear_address(index);
        }
    }

    /// The nodes whose `eth0` carries the address now.
    pub(crate) fn holders(&self) -> Vec<u8> {
        self.nodes
            .iter()
            .filter(|node| {
                node.net()
                    .ipv4_addresses(FIRST_LINK)
                    .contains(&self.address)
            })
            .map(|node| node.index)
            .collect()
    }

    /// Waits until the address is on node `owner` alone, each node sees both `active` (vigil
    /// and Heartbeat), and the address stays put for [`SETTLE_DWELL`].
    pub(crate) fn settle_on(&self, owner: u8, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let seen = self.settled_on(owner);
            if seen.is_ok() {
                thread::sleep(SETTLE_DWELL);
                if self.holders() == [owner] {
                    return Ok(());
                }
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "the group did not settle on node{owner} within {timeout:?}: {}",
                    seen.err().unwrap_or_else(|| "it kept moving".into())
                ));
            }
            thread::sleep(SETTLE_POLL);
        }
    }

    fn settled_on(&self, owner: u8) -> Result<(), String> {
        let holders = self.holders();
        if holders != [owner] {
            return Err(format!("the address is on {holders:?}"));
        }
        for observer in &self.nodes {
            let Some(view) = observer.view() else {
                continue;
            };
            for node in &self.nodes {
                let name = node_name(node.index);
                let (status, _) = view.node_status(&name);
                if status != "active" {
                    return Err(format!("node{} sees {name} {status:?}", observer.index));
                }
            }
        }
        Ok(())
    }

    /// Waits until both daemons have run longer than [`MIN_OWNER_UPTIME`] (vigil and
    /// Heartbeat; keepalived announces nothing different at start).
    pub(crate) fn await_uptime(&self) {
        if self.implementation == Implementation::Keepalived {
            return;
        }
        let youngest = self.nodes.iter().filter_map(|n| n.started).max();
        if let Some(rest) = youngest.and_then(|s| MIN_OWNER_UPTIME.checked_sub(s.elapsed())) {
            thread::sleep(rest);
        }
    }

    /// Kills node `index` the way a hung machine dies: SIGSTOP of every process of its
    /// daemon, then its bridge port detached. Returns the moment right after the signals.
    pub(crate) fn freeze_and_cut(&self, index: u8) -> SystemTime {
        let node = self.node(index);
        for pid in node.pids() {
            signal_process(pid, libc::SIGSTOP);
        }
        let died = SystemTime::now();
        self.lab.cut(node.net());
        died
    }

    /// What a reboot of node `index` does before its daemon starts again: the daemon
    /// killed, the address gone from its interface, its port back on the bridge.
    pub(crate) fn power_cycle(&mut self, index: u8) {
        self.node_mut(index).kill();
        self.clear_address(index);
        self.lab.heal(self.node(index).net());
    }

    /// Starts node `index`'s daemon again and returns the moment just before.
    pub(crate) fn launch(&mut self, index: u8) -> SystemTime {
        let launched = SystemTime::now();
        self.node_mut(index).launch();
        launched
    }

    /// Removes the address from node `index`'s `eth0` if it is there.
    fn clear_address(&self, index: u8) {
        let net = self.node(index).net();
        if !net.ipv4_addresses(FIRST_LINK).contains(&self.address) {
            return;
        }
        run_checked(
            Command::new("ip")
                .arg("-n")
                .arg(&net.namespace)
                .args(["addr", "del", &format!("{}/24", self.address)])
                .args(["dev", FIRST_LINK]),
        );
    }

    /// Drops node `index`'s ICMP echo requests to every router its ping line names (one
    /// nftables rule in its namespace, so all of them at once) and returns the moment just
    /// before; the link itself stays up.
    pub(crate) fn block_pings(&self, index: u8) -> Result<SystemTime, String> {
        let ping = self.ping.as_ref().ok_or("this cluster pings no router")?;
        let routers: Vec<String> = ping.routers.iter().map(Ipv4Addr::to_string).collect();
        let routers = routers.join(", ");
        let net = self.node(index).net();
        let script = format!(
            "table inet {PING_BLOCK_TABLE} {{\n  chain out {{\n    type filter hook output \
             priority 0;\n    ip daddr {{ {routers} }} icmp type echo-request drop\n  }}\n}}\n"
        );
        let path = net.dir.join("block-router.nft");
        write_file(&path, &script, 0o644);
        let at = SystemTime::now();
        run_checked(net.exec(NFT).arg("-f").arg(&path));
        Ok(at)
    }

    /// Lets node `index` reach the routers again and returns the moment just before.
    pub(crate) fn unblock_pings(&self, index: u8) -> SystemTime {
        let at = SystemTime::now();
        run_checked(self.node(index).net().exec(NFT).args([
            "delete",
            "table",
            "inet",
            PING_BLOCK_TABLE,
        ]));
        at
    }

    /// Whether the implementation has a command that moves a group away on request.
    pub(crate) fn has_standby(&self) -> bool {
        self.implementation != Implementation::Keepalived
    }

    /// Asks node `index` to give its groups to its peer (`hb_standby`).
    pub(crate) fn standby(&self, index: u8) -> Result<(), String> {
        self.node(index).move_group(true)
    }

    /// Asks node `index` to take the groups back (`hb_takeover`).
    pub(crate) fn takeover(&self, index: u8) -> Result<(), String> {
        self.node(index).move_group(false)
    }

    /// Whether node `index`'s meatware device waits for the operator to confirm the reset
    /// of `host`: its FIFO `/run/meatware.HOST` exists as the daemon sees `/run`.
    pub(crate) fn meatware_waits(&self, index: u8, host: &str) -> bool {
        self.node(index)
            .enter("test")
            .args(["-p", &format!("/run/meatware.{host}")])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// The operator confirms on node `index` that `host` was power-cycled: Debian's
    /// `meatclient -c HOST` in the daemon's namespaces, answered `y` (given on its stdin
    /// before it starts: it reads the answer only after it has opened the FIFO). Returns
    /// the moment just before it was started, or what it said when it did not confirm
    /// (no device listening yet is exit code 4).
    pub(crate) fn confirm_meatware(&self, index: u8, host: &str) -> Result<SystemTime, String> {
        let mut command = self.node(index).enter(DEBIAN_MEATCLIENT);
        command
            .args(["-c", host])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = SystemTime::now();
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run {DEBIAN_MEATCLIENT}: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(b"y\n")
                .map_err(|e| format!("cannot answer {DEBIAN_MEATCLIENT}: {e}"))?;
        }
        let output = child
            .wait_with_output()
            .map_err(|e| format!("{DEBIAN_MEATCLIENT} did not finish: {e}"))?;
        if output.status.success() {
            Ok(started)
        } else {
            Err(format!(
                "{DEBIAN_MEATCLIENT} -c {host} on node{index} exited {}: {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    /// Whether gratuitous ARP is captured at all.
    pub(crate) fn captures_arp(&self) -> bool {
        self.arp.is_some()
    }

    /// When the first gratuitous ARP for the address from node `from`'s `eth0` crossed the
    /// bridge at or after `after`, waiting until `deadline`; the capture's timestamps are
    /// CLOCK_REALTIME like `after`.
    pub(crate) fn first_arp(
        &self,
        from: u8,
        after: SystemTime,
        deadline: Instant,
    ) -> Option<SystemTime> {
        loop {
            if let Some(&at) = self.arp_announcements(from, after, None).first() {
                return Some(at);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(ARP_POLL);
        }
    }

    /// The gratuitous ARPs for the address from node `from`'s `eth0` captured so far at or
    /// after `after` and, if given, before `before`, in capture order.
    pub(crate) fn arp_announcements(
        &self,
        from: u8,
        after: SystemTime,
        before: Option<SystemTime>,
    ) -> Vec<SystemTime> {
        let Some(capture) = &self.arp else {
            return Vec::new();
        };
        let mac = self.macs[usize::from(from) - 1];
        capture
            .timed_frames()
            .into_iter()
            .filter(|(_, frame)| {
                ArpPacket::from_frame(frame).is_some_and(|p| p.announces(self.address, mac))
            })
            .map(|(at, _)| UNIX_EPOCH + at)
            .filter(|at| *at >= after && before.is_none_or(|end| *at < end))
            .collect()
    }

    /// Both daemons' last log lines and the address's events since `since`, for a failed
    /// trial.
    pub(crate) fn diagnostics(&self, since: SystemTime) -> String {
        let events: Vec<String> = self
            .watch
            .events_since(since)
            .iter()
            .map(|e| {
                let offset =
                    e.at.duration_since(since)
                        .map_or(0.0, |d| d.as_secs_f64() * 1e3);
                format!("+{offset:.1} ms node{} {:?}", e.node, e.change)
            })
            .collect();
        let mut text = format!(
            "address {} now on {:?}; its events since the trial began: [{}]",
            self.address,
            self.holders(),
            events.join(", ")
        );
        for node in &self.nodes {
            text.push_str(&format!(
                "\n----- node{} log, last 30 lines -----\n{}",
                node.index,
                node.log_tail(30)
            ));
        }
        text
    }
}
