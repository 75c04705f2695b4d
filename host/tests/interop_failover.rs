//! Resource failover between a vigil node and a real Heartbeat 3.0.6 node in the
//! network-namespace lab: both run the same haresources (one `IPaddr` group preferred by each
//! node; Heartbeat runs it with its own resource.d wrapper around resource-agents' IPaddr,
//! vigil with its built-in agent), each group comes up once on its preferred node, a hard
//! killed node's group moves to the survivor, and with `auto_failback on` it comes back when
//! the node returns. Run once with vigil as node1 and once with vigil as node2.
//!
//! Needs root and the Debian packages `.ci/install-test-packages` installs (heartbeat,
//! cluster-glue, resource-agents, net-tools for IPaddr's `ifconfig`, tcpdump); without them
//! each test says why it skips, or fails when `VIGIL_REQUIRE_ROOT_TESTS=1`. What is asserted
//! is what an operator sees: the addresses `ip` lists in each node's namespace and each
//! node's own `cl_status` at every step, and, watched every couple of milliseconds for the
//! whole test, that an address is never on two nodes that are both on the network. Every
//! cluster message that crosses the bridge is captured, so a failure shows the exchange
//! next to both daemons' logs.

mod support;

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::capture::{PortCapture, TCPDUMP, udp_payload};
use support::heartbeat::{HeartbeatNode, heartbeat_or_skip};
use support::netns::{FIRST_LINK, Lab, NodeNet, address_holders};
use support::vigil_node::VigilNode;
use support::{
    ClStatus, ClusterConfig, MediumKind, node_name, run_checked, run_or_skip, wait_all_active,
    wait_for, wait_node_status, write_file,
};
use vigil::agent_host::netlink;
use vigil::config;
use vigil::wire::FieldValue;
use vigil::wire::datagram;

/// Heartbeat 3.0.6's resource.d wrapper around resource-agents' IPaddr, which Heartbeat runs
/// for `IPaddr::…`.
const HEARTBEAT_IPADDR_WRAPPER: &str = "/etc/ha.d/resource.d/IPaddr";
/// resource-agents' IPaddr configures the address with `ifconfig` (package net-tools).
const IFCONFIG: &str = "/sbin/ifconfig";

/// How long the first acquisition may take: Heartbeat 3.0.6 pauses 10 s after its
/// communications come up unless its peer answers its `starting` as stable (vigil does),
/// and a busy machine adds to that.
const FIRST_ACQUISITION_TIMEOUT: Duration = Duration::from_secs(40);

/// The tests' `initdead` here: a started daemon waits this long for its peer's first
/// heartbeat. Heartbeat 3.0.6 once took 2.3 s from its start to its first heartbeat in CI.
const FIRST_HEARTBEAT_GRACE_SECONDS: u32 = 10;

/// How long a group may take to move: a death is declared after the deadtime, and a
/// failback runs Heartbeat's standby exchange, which Heartbeat retries once a second until
/// both sides are stable.
const MOVE_TIMEOUT: Duration = Duration::from_secs(30);

/// The pause between two looks of the address watcher: short against any window worth
/// reporting, long enough to leave the machine to the daemons.
const LOOK_PAUSE: Duration = Duration::from_millis(1);

/// The fields of every message that say nothing about the exchange itself; left out of the
/// message log.
const ROUTINE_FIELDS: [&str; 9] = [
    "t", "src", "seq", "hg", "ts", "ld", "ttl", "auth", "protocol",
];

/// The host number of the address in the group node `index` prefers (node1 .100, node2
/// .101).
fn group_host(index: u8) -> u8 {
    99 + index
}

/// The address of node `index`'s group in the lab whose nodes are `nets`.
fn group_address(nets: &[NodeNet; 2], index: u8) -> Ipv4Addr {
    let [a, b, c, _] = nets[0].address.octets();
    Ipv4Addr::new(a, b, c, group_host(index))
}

/// The haresources both nodes run: one IPaddr group preferred by each node.
fn haresources(nets: &[NodeNet; 2]) -> String {
    (1..=2)
        .map(|i| {
            format!(
                "{} IPaddr::{}/24/{FIRST_LINK}\n",
                node_name(i),
                group_address(nets, i)
            )
        })
        .collect()
}

/// What the test thread tells the address watcher, and what the watcher found so far.
struct AddressWatch {
    /// Node `i + 1` is cut off from the bridge (its stale addresses are nobody's business
    /// until it is healed: a hung or dead node cannot answer for them).
    detached: [AtomicBool; 2],
    /// Set when the watcher must stop.
    done: AtomicBool,
    /// When the test began: every time reported is since then.
    start: Instant,
    /// Address changes and the test's steps, in order, with their times.
    timeline: Mutex<Vec<String>>,
    /// Every window in which an address was on both nodes while both were on the network.
    overlaps: Mutex<Vec<String>>,
    /// How often each address appeared on each node (by node index), cut off or not.
    appearances: Mutex<BTreeMap<(Ipv4Addr, u8), u32>>,
    /// How many looks the watcher took, to tell how fine its watch was.
    looks: AtomicU64,
}

impl AddressWatch {
    fn new(start: Instant) -> AddressWatch {
        AddressWatch {
            detached: [AtomicBool::new(false), AtomicBool::new(false)],
            done: AtomicBool::new(false),
            start,
            timeline: Mutex::new(Vec::new()),
            overlaps: Mutex::new(Vec::new()),
            appearances: Mutex::new(BTreeMap::new()),
            looks: AtomicU64::new(0),
        }
    }

    /// Adds a line to the timeline at the current time.
    fn note(&self, what: &str) {
        let line = format!("{:>8.3}s  {what}", self.start.elapsed().as_secs_f64());
        lock(&self.timeline).push(line);
    }

    /// Marks node `index` cut off (`true`) or back on the bridge.
    fn set_detached(&self, index: u8, detached: bool) {
        self.detached[usize::from(index) - 1].store(detached, Ordering::SeqCst);
    }

    fn overlaps(&self) -> Vec<String> {
        lock(&self.overlaps).clone()
    }

    fn appearances(&self, address: Ipv4Addr, index: u8) -> u32 {
        lock(&self.appearances)
            .get(&(address, index))
            .copied()
            .unwrap_or(0)
    }

    /// The timeline, ending with how often the watcher looked.
    fn timeline(&self) -> String {
        let looks = self.looks.load(Ordering::Relaxed);
        let elapsed = self.start.elapsed();
        let mut lines = lock(&self.timeline).clone();
        lines.push(format!(
            "{looks} looks at the two namespaces in {:.1}s: one every {:.2} ms",
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1000.0 / looks.max(1) as f64
        ));
        lines.join("\n")
    }

    /// Fails the test if an address was ever on both nodes at once; `step` names where.
    fn assert_never_doubled(&self, step: &str) {
        let overlaps = self.overlaps();
        assert!(
            overlaps.is_empty(),
            "by the end of {step}, an address was on both nodes at once:\n{}\ntimeline:\n{}",
            overlaps.join("\n"),
            self.timeline()
        );
    }
}

/// Locks a mutex; a watcher that panicked while holding it has failed the test anyway.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One look at one node's addresses.
struct Sample {
    /// When the look ended, since the test began.
    time: Duration,
    /// For each watched address, whether it was on the node while the node was on the
    /// network.
    holds: [bool; 2],
}

/// Polls both namespaces' `eth0` in turn, every [`LOOK_PAUSE`], until `watch.done`:
/// records every appearance and disappearance of `addresses` on each node, and every window
/// in which one address was on both nodes while neither was cut off. The two namespaces
/// cannot be read at one instant, so an overlap is counted only when a node held the
/// address in both of its looks around a look that found it on the other node: a move
/// between two looks is never mistaken for one.
///
/// Spawning `ip` for every look would keep a core busy, so the calling thread moves itself
/// between the two namespaces and dumps their addresses over netlink; it must be a thread
/// of its own that ends with the watch.
fn watch_addresses(nets: &[NodeNet; 2], addresses: [Ipv4Addr; 2], watch: &AddressWatch) {
    let namespaces = nets.clone().map(|net| {
        let path = net.namespace_path();
        let file =
            File::open(&path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        (path, file)
    });
    let mut held = [[false; 2]; 2];
    let mut recent: VecDeque<Sample> = VecDeque::with_capacity(3);
    let mut open: [Option<(Duration, Duration)>; 2] = [None, None];
    let close = |address: Ipv4Addr, (from, to): (Duration, Duration)| {
        lock(&watch.overlaps).push(format!(
            "{address} on node1 and node2 from {:.3}s to {:.3}s ({} ms)",
            from.as_secs_f64(),
            to.as_secs_f64(),
            (to - from).as_millis()
        ));
    };
    let mut turn = 0usize;
    while !watch.done.load(Ordering::SeqCst) {
        let i = turn % 2;
        turn += 1;
        let detached = watch.detached[i].load(Ordering::SeqCst);
        let (path, namespace) = &namespaces[i];
        // SAFETY: setns switches only this thread's network namespace, and this thread
        // exists for the watch alone. The descriptor is an open namespace file.
        let rc = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "setns into {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        let present: Vec<Ipv4Addr> = netlink::addresses()
            .unwrap_or_else(|e| panic!("cannot list the addresses in {}: {e}", path.display()))
            .into_iter()
            .filter(|a| a.interface == FIRST_LINK)
            .filter_map(|a| match a.address.address {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
            .collect();
        let time = watch.start.elapsed();
        watch.looks.fetch_add(1, Ordering::Relaxed);
        let mut holds = [false; 2];
        for (a, &address) in addresses.iter().enumerate() {
            let has = present.contains(&address);
            holds[a] = has && !detached;
            if has != held[i][a] {
                held[i][a] = has;
                let index = u8::try_from(i + 1).unwrap_or(u8::MAX);
                if has {
                    *lock(&watch.appearances)
                        .entry((address, index))
                        .or_insert(0) += 1;
                }
                let place = if detached { " (cut off)" } else { "" };
                watch.note(&format!(
                    "{address} {} node{index}{place}",
                    if has { "appeared on" } else { "left" }
                ));
            }
        }
        if recent.len() == 3 {
            recent.pop_front();
        }
        recent.push_back(Sample { time, holds });
        thread::sleep(LOOK_PAUSE);
        if recent.len() < 3 {
            continue;
        }
        for (a, &address) in addresses.iter().enumerate() {
            let doubled = recent.iter().all(|s| s.holds[a]);
            open[a] = match (doubled, open[a]) {
                (true, None) => Some((recent[0].time, recent[2].time)),
                (true, Some((from, _))) => Some((from, recent[2].time)),
                (false, Some(window)) => {
                    close(address, window);
                    None
                }
                (false, None) => None,
            };
        }
    }
    for (a, &address) in addresses.iter().enumerate() {
        if let Some(window) = open[a] {
            close(address, window);
        }
    }
}

/// Stops the watcher when dropped, so a failing step cannot leave it running (the scope
/// would wait for it forever), and prints the timeline when the test fails.
struct StopWatching<'a>(&'a AddressWatch);

impl Drop for StopWatching<'_> {
    fn drop(&mut self) {
        self.0.done.store(true, Ordering::SeqCst);
        if thread::panicking() {
            eprintln!("----- addresses and steps -----\n{}", self.0.timeline());
        }
    }
}

/// A vigil node and a Heartbeat node in one lab, and the capture of the cluster messages
/// between them. Fields drop in declaration order: the daemons and the capture go before the
/// namespaces they run in.
struct MixedPair {
    /// The vigil node.
    vigil: VigilNode,
    /// The Heartbeat node.
    heartbeat: HeartbeatNode,
    /// Every UDP datagram to port 694 that crosses the bridge.
    messages: PortCapture,
    /// Which node (1 or 2) vigil is.
    vigil_index: u8,
    /// The nodes' places in the lab, node `i` at `i - 1`.
    nets: [NodeNet; 2],
    /// When the test began, on the clock the capture stamps packets with.
    wall_start: SystemTime,
    /// The lab itself, dropped last.
    lab: Lab,
}

impl MixedPair {
    /// Starts the capture, then node1 and node2 (vigil as node `vigil_index`), each with
    /// the lab's ha.cf and `haresources`.
    fn start(mut lab: Lab, vigil_index: u8, wall_start: SystemTime) -> MixedPair {
        let nets = [lab.add_node(1), lab.add_node(2)];
        let names = [node_name(1), node_name(2)];
        // The scenario asserts that each group comes up once, on its preferred node: the
        // node started first must not declare the other dead (and take its group) because
        // that one was slow to send its first heartbeat on a busy machine.
        let config = ClusterConfig::new(
            MediumKind::Bcast,
            &[&names[0], &names[1]],
            &[nets[0].address, nets[1].address],
        )
        .with_initdead(FIRST_HEARTBEAT_GRACE_SECONDS);
        let resources = haresources(&nets);
        let messages = PortCapture::start_on_bridge(
            &lab,
            FIRST_LINK,
            "udp port 694",
            &lab.dir().join("messages.pcap"),
        );
        let heartbeat_index = 3 - vigil_index;
        let with_resources = |ha_dir: &Path| {
            write_file(&ha_dir.join("haresources"), &resources, 0o644);
        };
        let start_vigil = || {
            VigilNode::start_prepared(
                &nets[usize::from(vigil_index) - 1],
                &node_name(vigil_index),
                &config,
                &[],
                with_resources,
            )
        };
        let start_heartbeat = || {
            HeartbeatNode::start_prepared(
                &nets[usize::from(heartbeat_index) - 1],
                &node_name(heartbeat_index),
                &config,
                with_resources,
            )
        };
        let (vigil, heartbeat) = if vigil_index == 1 {
            let vigil = start_vigil();
            (vigil, start_heartbeat())
        } else {
            let heartbeat = start_heartbeat();
            (start_vigil(), heartbeat)
        };
        MixedPair {
            vigil,
            heartbeat,
            messages,
            vigil_index,
            nets,
            wall_start,
            lab,
        }
    }

    fn heartbeat_index(&self) -> u8 {
        3 - self.vigil_index
    }

    fn net(&self, index: u8) -> &NodeNet {
        &self.nets[usize::from(index) - 1]
    }

    /// Node `index` as its own `cl_status` sees the cluster.
    fn node(&self, index: u8) -> &dyn ClStatus {
        if index == self.vigil_index {
            &self.vigil
        } else {
            &self.heartbeat
        }
    }

    fn address(&self, index: u8) -> Ipv4Addr {
        group_address(&self.nets, index)
    }

    /// The nodes among `among` whose `eth0` carries `address` now.
    fn holders(&self, address: Ipv4Addr, among: &[u8]) -> Vec<u8> {
        address_holders(&self.nets, address, among)
    }

    /// Waits until, of the nodes `among`, node `holder[i]` alone carries the address of
    /// node `i + 1`'s group, for both groups, and each node's `cl_status rscstatus` says
    /// what it holds (`all` or `local`; a node that is cut off is not asked).
    fn wait_placement(&self, step: &str, among: &[u8], holder: [u8; 2], timeout: Duration) {
        wait_for(
            &format!(
                "{step}: node1's group on node{}, node2's on node{}",
                holder[0], holder[1]
            ),
            timeout,
            || {
                let mut seen = Vec::new();
                for group in 1..=2 {
                    let address = self.address(group);
                    let now = self.holders(address, among);
                    if now != [holder[usize::from(group) - 1]] {
                        seen.push(format!("{address} on {now:?}"));
                    }
                }
                for &index in among {
                    let owned = holder.iter().filter(|&&h| h == index).count();
                    let expected = if owned == 2 { "all" } else { "local" };
                    let (out, rc) = self.node(index).cl_status(&["rscstatus"]);
                    if out.trim() != expected || rc != 0 {
                        seen.push(format!(
                            "node{index} rscstatus {:?} (rc {rc}), expected {expected}",
                            out.trim()
                        ));
                    }
                }
                if seen.is_empty() {
                    Ok(())
                } else {
                    Err(seen.join("; "))
                }
            },
        );
    }

    /// The cluster messages captured so far, one a line with its time since the test began:
    /// every type but the routine `status` of an active node and acknowledgements, with the
    /// fields that carry the exchange.
    fn message_log(&self) -> String {
        // The keys the vigil node runs with, read by its own configuration loader.
        let keys = match config::load_ha_dir(self.vigil.ha_dir(), &vigil::registry::builtin()) {
            Ok(config) => config.auth,
            Err(e) => return format!("cannot read the lab's authkeys to decode messages: {e}"),
        };
        let origin = self
            .wall_start
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut lines = Vec::new();
        for (time, frame) in self.messages.timed_frames() {
            let Some(payload) = udp_payload(&frame) else {
                continue;
            };
            let at = time.saturating_sub(origin).as_secs_f64();
            let message = match datagram::decode(payload, &keys) {
                Ok(message) => message,
                Err(reason) => {
                    lines.push(format!("{at:>8.3}s  undecodable datagram: {reason:?}"));
                    continue;
                }
            };
            let kind = message.message_type().unwrap_or("?");
            let st = message.get_str("st").unwrap_or("");
            if kind == "NS_ackmsg" || (kind == "status" && st == "active") {
                continue;
            }
            let mut line = format!(
                "{at:>8.3}s  {} {kind}",
                message.get_str("src").unwrap_or("?")
            );
            for field in message.fields() {
                if ROUTINE_FIELDS.contains(&field.name.as_str()) {
                    continue;
                }
                if let FieldValue::String(value) = &field.value {
                    line.push_str(&format!(" {}={value}", field.name));
                }
            }
            lines.push(line);
        }
        lines.join("\n")
    }

    /// Removes `address` from node `index`'s `eth0` if it is still there: what a reboot of
    /// that node does.
    fn clear_address(&self, index: u8, address: Ipv4Addr) {
        if self.holders(address, &[index]).is_empty() {
            return;
        }
        run_checked(
            Command::new("ip")
                .arg("-n")
                .arg(&self.net(index).namespace)
                .args(["addr", "del", &format!("{address}/24"), "dev", FIRST_LINK]),
        );
    }
}

impl Drop for MixedPair {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "----- vigil (node{}) stderr, last 150 lines -----\n{}",
                self.vigil_index,
                last_lines(&self.vigil.log(), 150)
            );
            eprintln!(
                "----- Heartbeat (node{}) ha-log, last 150 lines -----\n{}",
                self.heartbeat_index(),
                last_lines(&self.heartbeat.log(), 150)
            );
            eprintln!(
                "----- Heartbeat (node{}) ha-debug, last 60 lines -----\n{}",
                self.heartbeat_index(),
                last_lines(&self.heartbeat.debug_log(), 60)
            );
            eprintln!(
                "----- cluster messages on the bridge -----\n{}",
                self.message_log()
            );
        }
    }
}

/// The last `count` lines of `text`.
fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// Whether everything the test needs is installed; otherwise says why it skips.
fn prerequisites_or_skip() -> bool {
    heartbeat_or_skip()
        && run_or_skip(
            Path::new(HEARTBEAT_IPADDR_WRAPPER).exists() && Path::new(IFCONFIG).exists(),
            "Heartbeat's resource.d/IPaddr wrapper (package heartbeat) and ifconfig, which \
             resource-agents' IPaddr runs (package net-tools)",
        )
        && run_or_skip(
            Path::new(TCPDUMP).exists(),
            "tcpdump (Debian package tcpdump; run .ci/install-test-packages)",
        )
}

/// The whole scenario with vigil as node `vigil_index` and Heartbeat as the other node:
/// both groups come up once on their preferred nodes; the hung and cut-off Heartbeat node's
/// group moves to vigil; once Heartbeat is back its group returns to it; the crashed vigil
/// node's group moves to Heartbeat; once vigil is back its group returns to it. An address
/// is never on both nodes while both are on the network.
fn vigil_and_heartbeat_take_over_and_give_back(vigil_index: u8, hint: &str) {
    if !prerequisites_or_skip() {
        return;
    }
    let wall_start = SystemTime::now();
    let start = Instant::now();
    let Some(lab) = Lab::new(hint) else {
        return;
    };
    let watch = AddressWatch::new(start);
    let mut pair = MixedPair::start(lab, vigil_index, wall_start);
    let watched = pair.nets.clone();
    let addresses = [pair.address(1), pair.address(2)];
    thread::scope(|scope| {
        let watcher = scope.spawn(|| watch_addresses(&watched, addresses, &watch));
        let stop_watching = StopWatching(&watch);
        run_scenario(&mut pair, &watch);
        drop(stop_watching);
        if watcher.join().is_err() {
            panic!("the address watcher failed");
        }
    });
    watch.assert_never_doubled("the test");
    println!(
        "addresses and steps:\n{}\ncluster messages:\n{}",
        watch.timeline(),
        pair.message_log()
    );
}

fn run_scenario(pair: &mut MixedPair, watch: &AddressWatch) {
    let (v, h) = (pair.vigil_index, pair.heartbeat_index());
    let (vigil_name, heartbeat_name) = (node_name(v), node_name(h));
    let both = [1, 2];
    let preferred = [1, 2];

    watch.note("both daemons started");
    wait_all_active(&[&pair.vigil, &pair.heartbeat]);
    pair.wait_placement(
        "first acquisition",
        &both,
        preferred,
        FIRST_ACQUISITION_TIMEOUT,
    );
    watch.note("each group on its preferred node");
    for group in 1..=2 {
        let address = pair.address(group);
        let other = 3 - group;
        assert_eq!(
            (
                watch.appearances(address, group),
                watch.appearances(address, other)
            ),
            (1, 0),
            "{address} did not come up exactly once, on node{group} only; timeline:\n{}",
            watch.timeline()
        );
    }
    watch.assert_never_doubled("the first acquisition");

    // Heartbeat hangs and drops off the network; its address stays in its namespace.
    pair.heartbeat.freeze();
    pair.lab.cut(pair.net(h));
    watch.set_detached(h, true);
    watch.note("Heartbeat frozen and cut off");
    wait_node_status(&pair.vigil, &heartbeat_name, "dead");
    pair.wait_placement("vigil takes over", &[v], [v, v], MOVE_TIMEOUT);
    watch.note("vigil holds both groups");
    watch.assert_never_doubled("vigil's takeover");

    // Heartbeat's node reboots: nothing of it survives, and it comes back.
    pair.heartbeat.kill_and_reap();
    pair.clear_address(h, pair.address(h));
    watch.set_detached(h, false);
    pair.lab.heal(pair.net(h));
    pair.heartbeat.start_daemon();
    watch.note("Heartbeat restarted");
    wait_all_active(&[&pair.vigil, &pair.heartbeat]);
    pair.wait_placement("failback to Heartbeat", &both, preferred, MOVE_TIMEOUT);
    watch.note("failback to Heartbeat complete");
    watch.assert_never_doubled("the failback to Heartbeat");

    // vigil crashes and its node drops off the network.
    pair.vigil.kill_hard();
    pair.lab.cut(pair.net(v));
    watch.set_detached(v, true);
    watch.note("vigil killed and cut off");
    wait_node_status(&pair.heartbeat, &vigil_name, "dead");
    pair.wait_placement("Heartbeat takes over", &[h], [h, h], MOVE_TIMEOUT);
    watch.note("Heartbeat holds both groups");
    watch.assert_never_doubled("Heartbeat's takeover");

    // vigil's node reboots and comes back.
    pair.clear_address(v, pair.address(v));
    watch.set_detached(v, false);
    pair.lab.heal(pair.net(v));
    pair.vigil.restart();
    watch.note("vigil restarted");
    wait_all_active(&[&pair.vigil, &pair.heartbeat]);
    pair.wait_placement("failback to vigil", &both, preferred, MOVE_TIMEOUT);
    watch.note("failback to vigil complete");
    // A late second start on either side would show now.
    thread::sleep(Duration::from_secs(2));
    pair.wait_placement("the end", &both, preferred, MOVE_TIMEOUT);

    // Heartbeat took every message of vigil's as valid in the state it was in.
    let log = pair.heartbeat.log();
    let complaints: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("ERROR:") && line.contains("message in state"))
        .collect();
    assert!(
        complaints.is_empty(),
        "Heartbeat received resource messages it did not expect:\n{}\nmessages:\n{}",
        complaints.join("\n"),
        pair.message_log()
    );
}

#[test]
fn vigil_as_node1_and_heartbeat_as_node2_take_over_and_give_back_each_others_address() {
    vigil_and_heartbeat_take_over_and_give_back(1, "ifvig1");
}

#[test]
fn heartbeat_as_node1_and_vigil_as_node2_take_over_and_give_back_each_others_address() {
    vigil_and_heartbeat_take_over_and_give_back(2, "ifvig2");
}
