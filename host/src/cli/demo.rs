//! `vigil demo`: a three-node cluster on loopback, no root needed.
//!
//! Starts three real `vigil run` processes (ucast on 127.0.0.1–3 with one shared high port,
//! sha1 authentication), each preferring one resource group (a Dummy agent: a state file in
//! the node's runtime directory), with `auto_failback on`. It shows every node going active
//! and every group starting on its node, kills one node with SIGKILL and shows the survivors
//! declaring it dead and exactly one of them taking its group, restarts it and shows the
//! group failing back, then stops the rest with SIGTERM and removes its temporary directory.
//! It only orchestrates processes and reads their API.

use std::fs;
use std::io::Write as _;
use std::net::UdpSocket;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::api::{ApiClient, StatusReport};
use crate::failover::LocalGroupState;
use crate::membership::NodeStatus;

/// The nodes and the group each prefers.
const NODES: [(&str, &str); 3] = [
    ("alpha", "Dummy::web"),
    ("bravo", "Dummy::db"),
    ("charlie", "Dummy::mail"),
];
/// How long each phase may take before the demo gives up and says what it saw.
const PHASE_LIMIT: Duration = Duration::from_secs(20);
/// A node's start-up period with a longer announced deadtime, plus a margin.
const STARTUP_GRACE: Duration = Duration::from_millis(5_500);

struct DemoNode {
    name: &'static str,
    index: usize,
    socket: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Drop for DemoNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the demo; returns failure if the cluster did not behave.
pub fn run() -> anyhow::Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("vigil-demo-{}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = run_in(&dir);
    let _ = fs::remove_dir_all(&dir);
    result
}

fn run_in(dir: &Path) -> anyhow::Result<ExitCode> {
    let port = free_udp_port()?;
    let exe = std::env::current_exe().context("cannot find the vigil binary")?;
    println!(
        "vigil demo: three nodes on loopback (ucast 127.0.0.1-3, port {port}), keepalive 200ms, deadtime 1s, sha1;"
    );
    println!("groups: web prefers alpha, db prefers bravo, mail prefers charlie; auto_failback on");
    let started = Instant::now();
    let mut nodes = Vec::new();
    for (index, (name, _)) in NODES.iter().enumerate() {
        nodes.push(start_node(&exe, dir, index, name, port)?);
    }
    let everyone: Vec<&str> = NODES.iter().map(|(n, _)| *n).collect();
    println!(
        "\n[{:>6.3}s] started {}",
        started.elapsed().as_secs_f64(),
        everyone.join(", ")
    );
    wait_for(
        &nodes,
        started,
        "all active, every group on its preferred node",
        |reports| {
            reports.iter().all(|r| {
                r.as_ref().is_some_and(|r| {
                    r.membership
                        .nodes
                        .iter()
                        .all(|n| n.status == NodeStatus::Active)
                        && NODES
                            .iter()
                            .all(|(node, group)| owner(r, group) == Some(node))
                })
            })
        },
    )?;

    // For its first 5 s a node announces deadtime + 2 s (as Heartbeat does), so the kill
    // waits for that grace to end and the survivors use the configured 1 s.
    if let Some(wait) = (started + STARTUP_GRACE).checked_duration_since(Instant::now()) {
        println!(
            "\nwaiting {:.1} s for the start-up grace (deadtime + 2 s for the first 5 s) to end",
            wait.as_secs_f64()
        );
        thread::sleep(wait);
    }
    let Some(mut victim) = nodes.pop() else {
        bail!("no node to kill");
    };
    let killed_at = Instant::now();
    if let Some(mut child) = victim.child.take() {
        child.kill().context("cannot kill the demo node")?;
        let _ = child.wait();
    }
    println!(
        "\n[{:>6.3}s] killed {} with SIGKILL",
        started.elapsed().as_secs_f64(),
        victim.name
    );
    wait_for(
        &nodes,
        started,
        "charlie declared dead and mail running on exactly one survivor",
        |reports| {
            reports.iter().all(|r| {
                r.as_ref().is_some_and(|r| {
                    r.membership
                        .nodes
                        .iter()
                        .any(|n| n.name == victim.name && n.status == NodeStatus::Dead)
                })
            }) && reports
                .iter()
                .flatten()
                .filter(|r| runs_here(r, "Dummy::mail"))
                .count()
                == 1
        },
    )?;
    println!(
        "mail was running again {:.0} ms after the kill (deadtime 1000 ms)",
        killed_at.elapsed().as_secs_f64() * 1000.0
    );

    // A killed node's Dummy state files stay behind, as a crashed service's would; a reboot
    // clears /run, so the restart clears them too.
    let _ = fs::remove_dir_all(dir.join(victim.name).join("dummy"));
    let restarted = start_node(&exe, dir, victim.index, victim.name, port)?;
    drop(victim);
    nodes.push(restarted);
    println!(
        "\n[{:>6.3}s] restarted charlie",
        started.elapsed().as_secs_f64()
    );
    wait_for(&nodes, started, "mail failed back to charlie", |reports| {
        reports.iter().all(|r| {
            r.as_ref()
                .is_some_and(|r| owner(r, "Dummy::mail") == Some("charlie"))
        }) && reports
            .iter()
            .flatten()
            .filter(|r| runs_here(r, "Dummy::mail"))
            .count()
            == 1
    })?;

    println!("\nwhat {} logged:", nodes[0].name);
    if let Ok(log) = fs::read_to_string(&nodes[0].log) {
        for line in log
            .lines()
            .filter(|l| l.contains("INFO") || l.contains("WARN"))
        {
            println!("  {line}");
        }
    }
    for node in &mut nodes {
        if let Some(child) = node.child.take() {
            stop(child)?;
        }
    }
    println!("\nstopped every node with SIGTERM (each released its groups first); demo done");
    Ok(ExitCode::SUCCESS)
}

fn start_node(
    exe: &Path,
    dir: &Path,
    index: usize,
    name: &'static str,
    port: u16,
) -> anyhow::Result<DemoNode> {
    let node_dir = dir.join(name);
    fs::create_dir_all(&node_dir)?;
    let own = format!("127.0.0.{}", index + 1);
    let media: String = (0..NODES.len())
        .filter(|&i| i != index)
        .map(|i| format!("  - ucast: lo 127.0.0.{} bind={own}\n", i + 1))
        .collect();
    let groups: String = NODES
        .iter()
        .map(|(node, group)| format!("  - {{ node: {node}, resources: [\"{group}\"] }}\n"))
        .collect();
    let socket = node_dir.join("vigil.sock");
    let names: Vec<&str> = NODES.iter().map(|(n, _)| *n).collect();
    let yaml = format!(
        "node_name: {name}\nnodes: [{nodes}]\nkeepalive: 200ms\ndeadtime: 1s\nwarntime: 500ms\ninitdead: 2s\nudpport: {port}\nmedia:\n{media}auth: {{ method: sha1, key: demo-secret }}\nauto_failback: on\nresource_groups:\n{groups}state_dir: {state}\napi_socket: {socket}\n",
        nodes = names.join(", "),
        state = node_dir.join("state").display(),
        socket = socket.display(),
    );
    let config = node_dir.join("cluster.yaml");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&config)?;
    file.write_all(yaml.as_bytes())?;
    let log = node_dir.join("vigil.log");
    let child = Command::new(exe)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::options().create(true).append(true).open(&log)?)
        .spawn()
        .with_context(|| format!("cannot start node {name}"))?;
    Ok(DemoNode {
        name,
        index,
        socket,
        log,
        child: Some(child),
    })
}

/// The owner of `group` as `report`'s node sees it.
fn owner<'a>(report: &'a StatusReport, group: &str) -> Option<&'a str> {
    report
        .failover
        .groups
        .iter()
        .find(|g| g.key == group)
        .and_then(|g| g.owner.as_deref())
}

/// Whether `report`'s node runs `group` itself.
fn runs_here(report: &StatusReport, group: &str) -> bool {
    report
        .failover
        .groups
        .iter()
        .any(|g| g.key == group && g.local == LocalGroupState::Running)
}

/// Polls every node's status until `done` holds, printing each change of the picture.
fn wait_for(
    nodes: &[DemoNode],
    started: Instant,
    goal: &str,
    done: impl Fn(&[Option<StatusReport>]) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + PHASE_LIMIT;
    let mut last_picture = String::new();
    loop {
        let reports: Vec<Option<StatusReport>> = nodes
            .iter()
            .map(|n| {
                ApiClient::connect(&n.socket)
                    .and_then(|mut c| c.status())
                    .ok()
            })
            .collect();
        let picture = picture(nodes, &reports);
        if picture != last_picture {
            println!("[{:>6.3}s] {picture}", started.elapsed().as_secs_f64());
            last_picture = picture;
        }
        if done(&reports) {
            println!("[{:>6.3}s] => {goal}", started.elapsed().as_secs_f64());
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("gave up after {PHASE_LIMIT:?} waiting until {goal}; last seen: {last_picture}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// One line: what each node thinks of every node, and which groups it runs.
fn picture(nodes: &[DemoNode], reports: &[Option<StatusReport>]) -> String {
    let views: Vec<String> = nodes
        .iter()
        .zip(reports)
        .map(|(node, report)| match report {
            None => format!("{}: (starting)", node.name),
            Some(r) => {
                let seen: Vec<String> = r
                    .membership
                    .nodes
                    .iter()
                    .map(|n| format!("{}={}", n.name, n.status.as_str()))
                    .collect();
                let running: Vec<&str> = r
                    .failover
                    .groups
                    .iter()
                    .filter(|g| g.local == LocalGroupState::Running)
                    .map(|g| g.key.trim_start_matches("Dummy::"))
                    .collect();
                format!(
                    "{} sees {} runs [{}]",
                    node.name,
                    seen.join(" "),
                    running.join(" ")
                )
            }
        })
        .collect();
    views.join(" | ")
}

fn stop(mut child: Child) -> anyhow::Result<()> {
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.kill()?;
    child.wait()?;
    bail!("a node did not stop within 10 s of SIGTERM")
}

/// A UDP port free on 127.0.0.1, chosen by the kernel.
fn free_udp_port() -> anyhow::Result<u16> {
    let socket = UdpSocket::bind("127.0.0.1:0").context("cannot bind a UDP socket on loopback")?;
    Ok(socket.local_addr()?.port())
}
