//! Real `vigil run` processes on loopback (ucast with `bind=` on 127.0.0.x), no root needed:
//! the daemon's life cycle, its API and `cl_status`, and bad datagrams from the network.

use std::fs;
use std::io::Write as _;
use std::net::UdpSocket;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use vigil::api::{ApiClient, StatusReport};
use vigil::membership::NodeStatus;
use vigil::wire::auth::{AuthKeys, AuthMethod};
use vigil::wire::datagram::{self, InnerAuth};
use vigil::wire::{FieldValue, Message};

const KEY: &str = "loopback-secret";
const WAIT: Duration = Duration::from_secs(15);

/// A few daemons sharing one port on 127.0.0.1, .2, .3 …, removed on drop.
struct Cluster {
    dir: PathBuf,
    port: u16,
    nodes: Vec<Node>,
    /// YAML appended to every node's configuration (resource groups, auto_failback).
    extra_yaml: String,
}

struct Node {
    name: String,
    address: String,
    socket: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Cluster {
    fn start(names: &[&str]) -> Cluster {
        Cluster::start_with(names, "")
    }

    fn start_with(names: &[&str], extra_yaml: &str) -> Cluster {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vigil-loopback-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cluster = Cluster {
            dir,
            port,
            nodes: Vec::new(),
            extra_yaml: extra_yaml.to_string(),
        };
        for (index, name) in names.iter().enumerate() {
            let node = cluster.spawn(index, name, names);
            cluster.nodes.push(node);
        }
        cluster
    }

    fn spawn(&self, index: usize, name: &str, names: &[&str]) -> Node {
        let node_dir = self.dir.join(name);
        fs::create_dir_all(&node_dir).unwrap();
        let address = format!("127.0.0.{}", index + 1);
        let media: String = (0..names.len())
            .filter(|&i| i != index)
            .map(|i| format!("  - ucast: lo 127.0.0.{} bind={address}\n", i + 1))
            .collect();
        let socket = node_dir.join("vigil.sock");
        let yaml = format!(
            "node_name: {name}\nnodes: [{}]\nkeepalive: 200ms\ndeadtime: 1s\nwarntime: 500ms\ninitdead: 2s\nudpport: {}\nmedia:\n{media}auth: {{ method: sha1, key: {KEY} }}\nstate_dir: {}\napi_socket: {}\n{}",
            names.join(", "),
            self.port,
            node_dir.join("state").display(),
            socket.display(),
            self.extra_yaml,
        );
        let config = node_dir.join("cluster.yaml");
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&config)
            .unwrap()
            .write_all(yaml.as_bytes())
            .unwrap();
        let log = node_dir.join("stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["run", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Node {
            name: name.to_string(),
            address,
            socket,
            log,
            child: Some(child),
        }
    }

    fn node(&self, name: &str) -> &Node {
        self.nodes.iter().find(|n| n.name == name).unwrap()
    }

    fn node_mut(&mut self, name: &str) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.name == name).unwrap()
    }

    /// Waits until every running node sees every node of `names` with `status`.
    fn wait_until_all_see(&self, names: &[&str], status: NodeStatus) {
        let running: Vec<&Node> = self.nodes.iter().filter(|n| n.child.is_some()).collect();
        for observer in running {
            for name in names {
                observer.wait_for_status(name, status);
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Node {
    /// Whether this node's Dummy instance for `token` is running (its state file exists).
    fn runs(&self, token: &str) -> bool {
        self.dummy_state_file(token).exists()
    }

    /// The state file of this node's Dummy instance for `token`.
    fn dummy_state_file(&self, token: &str) -> PathBuf {
        let instance = token.replace("::", "_");
        self.socket
            .parent()
            .unwrap()
            .join("dummy")
            .join(format!("{instance}.state"))
    }

    fn status(&self) -> Option<StatusReport> {
        ApiClient::connect(&self.socket)
            .and_then(|mut c| c.status())
            .ok()
    }

    fn wait_for_status(&self, node: &str, status: NodeStatus) {
        let deadline = Instant::now() + WAIT;
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(report) = self.status() {
                let seen = report
                    .membership
                    .nodes
                    .iter()
                    .find(|n| n.name == node)
                    .map(|n| n.status);
                if seen == Some(status) {
                    return;
                }
                last = seen;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} never saw {node} {status:?} (last seen {last:?}); log:\n{}",
            self.name,
            self.log_text()
        );
    }

    fn log_text(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = self.child.as_ref().unwrap().id() as libc::pid_t;
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("{} did not exit; log:\n{}", self.name, self.log_text());
    }

    fn cl_status(&self, args: &[&str]) -> Output {
        let link_dir = self.socket.parent().unwrap().join("bin");
        let link = link_dir.join("cl_status");
        if !link.exists() {
            fs::create_dir_all(&link_dir).unwrap();
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_vigil"), &link).unwrap();
        }
        Command::new(&link)
            .args(args)
            .env("VIGIL_SOCKET", &self.socket)
            .output()
            .unwrap()
    }
}

fn keys(slot: u8, method: AuthMethod) -> AuthKeys {
    AuthKeys::new(slot, vec![(slot, method)]).unwrap()
}

fn cluster_keys() -> AuthKeys {
    keys(1, AuthMethod::Sha1 { key: KEY.into() })
}

/// A status message in the name of `src`, as Heartbeat builds it.
fn status_from(src: &str, seq: u64, generation: u64) -> Message {
    let mut m = Message::with_type("status");
    m.push_str("st", "active");
    m.push_str("dt", "3e8");
    m.push_str("protocol", "1");
    m.push_str("src", src);
    m.push("srcuuid", FieldValue::Binary(vec![7; 16]));
    m.push_str("seq", &format!("{seq:x}"));
    m.push_str("hg", &format!("{generation:x}"));
    m.push_str("ts", "6b028f9e");
    m.push_str("ld", "0.00 0.00 0.00 1/1 1");
    m.push_str("ttl", "3");
    m
}

#[test]
fn the_demo_shows_a_death_a_failover_and_a_failback() {
    let output = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for milestone in [
        "=> all active, every group on its preferred node",
        "=> charlie declared dead and mail running on exactly one survivor",
        "=> mail failed back to charlie",
    ] {
        assert!(
            stdout.contains(milestone),
            "missing {milestone:?} in:\n{stdout}"
        );
    }
}

#[test]
fn sigterm_stops_the_daemon_cleanly_and_removes_its_socket() {
    let mut cluster = Cluster::start(&["alpha", "bravo"]);
    cluster.wait_until_all_see(&["alpha", "bravo"], NodeStatus::Active);
    let alpha = cluster.node_mut("alpha");
    alpha.signal(libc::SIGTERM);
    let status = alpha.wait_exit();
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        alpha.log_text()
    );
    assert!(!alpha.socket.exists(), "the API socket was left behind");
    let (alpha_out, rc) = {
        let out = alpha.cl_status(&["hbstatus"]);
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status.code(),
        )
    };
    assert_eq!(
        (alpha_out.as_str(), rc),
        ("Heartbeat is stopped on this machine.\n", Some(1))
    );
    cluster
        .node("bravo")
        .wait_for_status("alpha", NodeStatus::Dead);
}

#[test]
fn cl_status_under_its_own_name_answers_from_the_daemon() {
    let mut cluster = Cluster::start(&["alpha", "bravo", "charlie"]);
    cluster.wait_until_all_see(&["alpha", "bravo", "charlie"], NodeStatus::Active);
    let alpha = cluster.node("alpha");
    let out = alpha.cl_status(&["hbstatus"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Heartbeat is running on this machine.\n"
    );
    assert_eq!(out.status.code(), Some(0));
    let out = alpha.cl_status(&["listnodes"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "charlie\nbravo\nalpha\n"
    );
    let out = alpha.cl_status(&["hblinkstatus", "bravo", "lo"]);
    assert_eq!(
        (
            String::from_utf8_lossy(&out.stdout).as_ref(),
            out.status.code()
        ),
        ("up\n", Some(0))
    );
    let out = alpha.cl_status(&["hbparameter", "-p", "keepalive"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200ms\n");

    let charlie = cluster.node_mut("charlie");
    charlie.signal(libc::SIGKILL);
    let _ = charlie.wait_exit();
    cluster
        .node("alpha")
        .wait_for_status("charlie", NodeStatus::Dead);
    let out = cluster.node("alpha").cl_status(&["nodestatus", "charlie"]);
    assert_eq!(
        (
            String::from_utf8_lossy(&out.stdout).as_ref(),
            out.status.code()
        ),
        ("dead\n", Some(1))
    );
}

#[test]
fn bad_datagrams_are_dropped_and_counted_without_changing_membership() {
    let cluster = Cluster::start(&["alpha", "bravo"]);
    cluster.wait_until_all_see(&["alpha", "bravo"], NodeStatus::Active);
    let alpha = cluster.node("alpha");
    let before = alpha.status().unwrap();
    let target = format!("{}:{}", alpha.address, cluster.port);
    let attacker = UdpSocket::bind("127.0.0.9:0").unwrap();
    let send = |bytes: &[u8]| {
        attacker.send_to(bytes, &target).unwrap();
    };

    let bravo_generation = before
        .membership
        .nodes
        .iter()
        .find(|n| n.name == "bravo")
        .unwrap()
        .generation;
    let valid = datagram::encode(
        &status_from("bravo", 1, bravo_generation),
        &cluster_keys(),
        InnerAuth::Classic,
    )
    .unwrap();
    send(b"\x00\xffgarbage that is no message at all");
    send(&valid[..valid.len() / 2]);
    send(&vec![b'#'; 65_000]);
    let forged = datagram::encode(
        &status_from("bravo", 99, bravo_generation),
        &keys(
            1,
            AuthMethod::Sha1 {
                key: "not-the-key".into(),
            },
        ),
        InnerAuth::Omitted,
    )
    .unwrap();
    send(&forged);
    let other_slot = datagram::encode(
        &status_from("bravo", 99, bravo_generation),
        &keys(7, AuthMethod::Sha1 { key: KEY.into() }),
        InnerAuth::Omitted,
    )
    .unwrap();
    send(&other_slot);
    let old_generation = datagram::encode(
        &status_from("bravo", 5, 1),
        &cluster_keys(),
        InnerAuth::Classic,
    )
    .unwrap();
    send(&old_generation);
    let in_our_name = datagram::encode(
        &status_from("alpha", 0xfffff, before.membership.generation),
        &cluster_keys(),
        InnerAuth::Classic,
    )
    .unwrap();
    send(&in_our_name);

    let expected = [
        "malformed",
        "bad_signature",
        "unknown_key_slot",
        "lower_generation",
        "replayed_seq",
    ];
    let deadline = Instant::now() + WAIT;
    let after = loop {
        let report = alpha.status().unwrap();
        if expected
            .iter()
            .all(|r| report.drops.get(*r).copied().unwrap_or(0) > 0)
            || Instant::now() > deadline
        {
            break report;
        }
        thread::sleep(Duration::from_millis(50));
    };
    for reason in expected {
        assert!(
            after.drops.get(reason).copied().unwrap_or(0) > 0,
            "no drop counted as {reason}: {:?}",
            after.drops
        );
    }
    let statuses = |r: &StatusReport| -> Vec<(String, NodeStatus, u64)> {
        r.membership
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.status, n.generation))
            .collect()
    };
    assert_eq!(statuses(&after), statuses(&before), "membership changed");
    let log = fs::read(&alpha.log).unwrap();
    assert!(
        std::str::from_utf8(&log).is_ok(),
        "the log is no longer UTF-8"
    );
}

#[test]
fn the_event_stream_reports_a_death_in_order() {
    let mut cluster = Cluster::start(&["alpha", "bravo"]);
    cluster.wait_until_all_see(&["alpha", "bravo"], NodeStatus::Active);
    let mut events = ApiClient::connect(&cluster.node("alpha").socket).unwrap();
    events.subscribe().unwrap();
    let bravo = cluster.node_mut("bravo");
    bravo.signal(libc::SIGKILL);
    let _ = bravo.wait_exit();
    let mut seen = Vec::new();
    loop {
        let event = events.next_event().unwrap();
        if let Some(last) = seen.last() {
            let last: &vigil::api::ApiEvent = last;
            assert_eq!(
                event.seq,
                last.seq + 1,
                "events out of order: {seen:?} then {event:?}"
            );
        }
        let done = event.kind == "node_status"
            && event.node.as_deref() == Some("bravo")
            && event.text.contains("dead");
        seen.push(event);
        if done {
            break;
        }
    }
    assert!(seen.iter().all(|e| e.lost == 0));
}

/// Waits until `check` holds, failing with `what` and the logs of every node.
fn wait_until(cluster: &Cluster, what: &str, check: impl Fn(&Cluster) -> bool) {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if check(cluster) {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let logs: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| format!("--- {}:\n{}", n.name, n.log_text()))
        .collect();
    panic!("never: {what}\n{}", logs.join("\n"));
}

const TWO_GROUPS: &str = "auto_failback: on\nresource_groups:\n  - { node: alpha, resources: [\"Dummy::web\"] }\n  - { node: bravo, resources: [\"Dummy::db\"] }\n";

#[test]
fn each_group_runs_once_on_its_node_moves_when_it_dies_and_fails_back() {
    let mut cluster = Cluster::start_with(&["alpha", "bravo"], TWO_GROUPS);
    wait_until(&cluster, "web on alpha and db on bravo", |c| {
        c.node("alpha").runs("Dummy::web") && c.node("bravo").runs("Dummy::db")
    });
    assert!(!cluster.node("alpha").runs("Dummy::db") && !cluster.node("bravo").runs("Dummy::web"));

    let alpha = cluster.node_mut("alpha");
    alpha.signal(libc::SIGKILL);
    let _ = alpha.wait_exit();
    wait_until(&cluster, "bravo takes web over", |c| {
        c.node("bravo").runs("Dummy::web")
    });

    // alpha comes back: a killed node's Dummy files stay behind, as a crashed service's
    // would; the restarted node must find them stopped, so clear them as a reboot would.
    let dummy_dir = cluster.node("alpha").socket.parent().unwrap().join("dummy");
    let _ = fs::remove_dir_all(&dummy_dir);
    let names = ["alpha", "bravo"];
    let restarted = cluster.spawn(0, "alpha", &names);
    *cluster.node_mut("alpha") = restarted;
    wait_until(&cluster, "web fails back to alpha", |c| {
        c.node("alpha").runs("Dummy::web") && !c.node("bravo").runs("Dummy::web")
    });
    assert!(cluster.node("bravo").runs("Dummy::db"));
}

#[test]
fn sigterm_releases_local_groups_to_the_peer() {
    let mut cluster = Cluster::start_with(&["alpha", "bravo"], TWO_GROUPS);
    wait_until(&cluster, "web on alpha", |c| {
        c.node("alpha").runs("Dummy::web")
    });
    let alpha = cluster.node_mut("alpha");
    alpha.signal(libc::SIGTERM);
    let status = alpha.wait_exit();
    assert!(status.success());
    assert!(
        !cluster.node("alpha").runs("Dummy::web"),
        "alpha left web running"
    );
    wait_until(&cluster, "bravo takes web", |c| {
        c.node("bravo").runs("Dummy::web")
    });
}

#[test]
fn standby_and_takeover_move_the_groups() {
    let cluster = Cluster::start_with(&["alpha", "bravo"], TWO_GROUPS);
    wait_until(&cluster, "both groups up", |c| {
        c.node("alpha").runs("Dummy::web") && c.node("bravo").runs("Dummy::db")
    });
    let alpha = cluster.node("alpha");
    let standby = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["standby", "all", "--socket"])
        .arg(&alpha.socket)
        .output()
        .unwrap();
    assert!(
        standby.status.success(),
        "{}",
        String::from_utf8_lossy(&standby.stderr)
    );
    wait_until(&cluster, "bravo runs both", |c| {
        c.node("bravo").runs("Dummy::web") && !c.node("alpha").runs("Dummy::web")
    });
    let out = alpha.cl_status(&["rscstatus"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "none\n");

    let takeover = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["takeover", "all", "--socket"])
        .arg(&alpha.socket)
        .output()
        .unwrap();
    assert!(
        takeover.status.success(),
        "{}",
        String::from_utf8_lossy(&takeover.stderr)
    );
    wait_until(&cluster, "alpha runs both", |c| {
        c.node("alpha").runs("Dummy::web") && c.node("alpha").runs("Dummy::db")
    });
    assert!(!cluster.node("bravo").runs("Dummy::db") && !cluster.node("bravo").runs("Dummy::web"));
}

#[test]
fn a_failed_monitor_restarts_in_place_then_moves_the_group() {
    let watched = "resource_groups:\n  - node: alpha\n    order: [alpha, bravo]\n    resources:\n      - token: \"Dummy::web\"\n        timeout: 5s\n        monitor: { interval: 200ms, restarts: 1 }\n";
    let cluster = Cluster::start_with(&["alpha", "bravo"], watched);
    wait_until(&cluster, "web on alpha", |c| {
        c.node("alpha").runs("Dummy::web")
    });
    let state = cluster.node("alpha").dummy_state_file("Dummy::web");

    // The service dies behind vigil's back: the monitor notices and restarts it in place.
    fs::remove_file(&state).unwrap();
    wait_until(&cluster, "web restarted on alpha", |c| {
        c.node("alpha").runs("Dummy::web")
    });
    assert!(
        !cluster.node("bravo").runs("Dummy::web"),
        "the first failure moved the group instead of restarting it"
    );
    assert!(
        cluster
            .node("alpha")
            .log_text()
            .contains("restarting it in place"),
        "{}",
        cluster.node("alpha").log_text()
    );

    // Its one restart is used up: the next failure moves the group to bravo.
    fs::remove_file(&state).unwrap();
    wait_until(&cluster, "web moved to bravo", |c| {
        c.node("bravo").runs("Dummy::web") && !c.node("alpha").runs("Dummy::web")
    });
}

/// A heartbeat-class script `resource.d/hang` for the hung-agent test, in its own Heartbeat
/// directory: on alpha its start never ends (it waits on a copy of `sleep` named `snooze`,
/// and leaves another `snooze` running in the background, as a careless script would); on any
/// other node it starts at once. Its state is `<dir>/<node>.running`.
fn write_hanging_script(dir: &std::path::Path) -> PathBuf {
    let resource_d = dir.join("resource.d");
    fs::create_dir_all(&resource_d).unwrap();
    let sleep = ["/usr/bin/sleep", "/bin/sleep"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("a sleep binary");
    let snooze = dir.join("snooze");
    fs::copy(sleep, &snooze).unwrap();
    let script = format!(
        r#"#!/bin/sh
# hang NAME start|stop|status
state="{dir}/$HA_CURHOST.running"
case "$2" in
start)
    if [ "$HA_CURHOST" = alpha ]; then
        "{snooze}" 1000 &
        "{snooze}" 1001
    fi
    : > "$state" ;;
stop) rm -f "$state" ;;
status) if [ -f "$state" ]; then echo running; else echo stopped; fi ;;
esac
"#,
        dir = dir.display(),
        snooze = snooze.display()
    );
    let path = resource_d.join("hang");
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o755)
        .open(&path)
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    snooze
}

/// Processes whose executable is `program`.
fn processes_running(program: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(exe) = fs::read_link(entry.path().join("exe")) else {
            continue;
        };
        if exe == program {
            let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push(format!(
                "pid {}: {}",
                entry.file_name().to_string_lossy(),
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            ));
        }
    }
    found
}

#[test]
fn a_hung_agent_is_killed_at_its_timeout_leaves_nothing_behind_and_heartbeats_go_on() {
    let scripts = std::env::temp_dir().join(format!("vigil-hang-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scripts);
    let snooze = write_hanging_script(&scripts);
    let yaml = format!(
        "ha_dir: {}\nresource_groups:\n  - node: alpha\n    resources:\n      - {{ token: \"hang::svc\", timeout: 2s }}\n",
        scripts.display()
    );
    let cluster = Cluster::start_with(&["alpha", "bravo"], &yaml);
    let started = Instant::now();

    // alpha's start hangs; at 2 s it is killed with its whole process group, counted as a
    // failed start, and the group goes to bravo. Meanwhile both daemons answer and see each
    // other alive.
    let mut unanswered = Vec::new();
    let deadline = Instant::now() + WAIT * 2;
    while !scripts.join("bravo.running").exists() {
        assert!(
            Instant::now() < deadline,
            "the group never reached bravo after alpha's start hung; alpha's log:\n{}",
            cluster.node("alpha").log_text()
        );
        for (node, peer) in [("alpha", "bravo"), ("bravo", "alpha")] {
            let seen = cluster.node(node).status().map(|report| {
                report
                    .membership
                    .nodes
                    .iter()
                    .find(|n| n.name == peer)
                    .map(|n| n.status)
            });
            if started.elapsed() > Duration::from_secs(4) && seen != Some(Some(NodeStatus::Active))
            {
                unanswered.push(format!(
                    "{:?}: {node} saw {peer} as {seen:?}",
                    started.elapsed()
                ));
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
    let moved_after = started.elapsed();
    assert!(
        unanswered.is_empty(),
        "a daemon stopped answering or lost its peer while an agent hung:\n{}",
        unanswered.join("\n")
    );
    assert!(
        moved_after >= Duration::from_secs(2),
        "the group moved after {moved_after:?}, before the 2 s timeout could end the hung start"
    );
    assert!(!scripts.join("alpha.running").exists());

    // Nothing of the hung start survives: neither the script, nor its foreground or
    // background child.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = processes_running(&snooze);
    while !left.is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
        left = processes_running(&snooze);
    }
    assert!(
        left.is_empty(),
        "the hung agent left processes behind:\n{}",
        left.join("\n")
    );

    let alpha_log = cluster.node("alpha").log_text();
    assert!(
        alpha_log.lines().any(|l| l.contains("hang::svc")
            && l.contains("start failed")
            && l.contains("timed out after 2s")),
        "alpha's log does not report the start killed at its timeout:\n{alpha_log}"
    );
    for node in ["alpha", "bravo"] {
        let log = cluster.node(node).log_text();
        assert!(
            !log.contains("is dead"),
            "{node} declared its peer dead while an agent hung:\n{log}"
        );
    }
    drop(cluster);
    let _ = fs::remove_dir_all(&scripts);
}
