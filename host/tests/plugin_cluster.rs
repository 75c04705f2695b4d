//! Plugins of the native and WASM origins doing a cluster's real work, no root needed: two
//! `vigil run` daemons on one machine whose only link is the example native medium
//! (`unixdgram`, Unix datagram sockets), whose resource is run by a plugin agent, and
//! which fence each other with the example native STONITH device (`statedir`, which kills
//! the process standing in for a node, as pulling its plug would).
//!
//! Owns building and installing the plugins into a plugin directory of its own, the two
//! nodes' YAML files, and asserting what an operator sees: the membership both daemons
//! report, the fence device's log, the daemon's own log in order, and the resource's state
//! file. It leaves nothing behind: the daemons are killed and the directory removed on drop.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::plugin_build::{PluginWorkspace, native_plugin, wasm_plugin};
use support::{ScratchDir, unique_token, write_file};
use vigil::api::{ApiClient, StatusReport};
use vigil::failover::LocalGroupState;
use vigil::membership::NodeStatus;
use vigil::wire::auth::{AuthKeys, AuthMethod};
use vigil::wire::datagram;

const WAIT: Duration = Duration::from_secs(30);

/// The cluster's signing key.
const KEY: &str = "plugin-cluster-secret";

/// One daemon of the plugin cluster.
struct Node {
    name: &'static str,
    socket: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn status(&self) -> Option<StatusReport> {
        ApiClient::connect(&self.socket)
            .and_then(|mut c| c.status())
            .ok()
    }

    fn log_text(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.as_ref().unwrap().id()).unwrap()
    }

    fn sees(&self, node: &str, status: NodeStatus) -> bool {
        self.status().is_some_and(|report| {
            report
                .membership
                .nodes
                .iter()
                .any(|n| n.name == node && n.status == status)
        })
    }

    fn group_state(&self) -> Option<LocalGroupState> {
        self.status()
            .and_then(|report| report.failover.groups.first().map(|g| g.local))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_until(what: &str, nodes: &[&Node], check: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let logs: String = nodes
        .iter()
        .map(|n| format!("--- {}:\n{}\n", n.name, n.log_text()))
        .collect();
    panic!("timed out waiting for {what}\n{logs}");
}

/// Writes `name`'s configuration (the cluster's settings, then `groups`, the
/// `resource_groups` YAML) and starts its daemon with `plugins` as plugin directory.
fn start_node(dir: &Path, plugins: &Path, name: &'static str, groups: &str) -> Node {
    let node_dir = dir.join(name);
    fs::create_dir_all(&node_dir).unwrap();
    let socket = node_dir.join("vigil.sock");
    let yaml = format!(
        "node_name: {name}\n\
         nodes: [alpha, bravo]\n\
         keepalive: 200ms\ndeadtime: 1s\nwarntime: 500ms\ninitdead: 2s\n\
         media:\n  - unixdgram: {media} {name}\n\
         auth: {{ method: sha1, key: {KEY} }}\n\
         auto_failback: off\n\
         state_dir: {state}\napi_socket: {socket}\n\
         stonith:\n  - {{ type: statedir, params: {{ statedir: {fence}, hostlist: alpha bravo }} }}\n\
         {groups}",
        media = dir.join("media").display(),
        state = node_dir.join("state").display(),
        socket = socket.display(),
        fence = dir.join("fence").display(),
    );
    let config = node_dir.join("cluster.yaml");
    // It holds the cluster's key: readable by root only, as vigil demands.
    write_file(&config, &yaml, 0o600);
    let log = node_dir.join("stderr.log");
    let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["run", "--config"])
        .arg(&config)
        .env("VIGIL_PLUGIN_PATH", plugins)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let node = Node {
        name,
        socket,
        log,
        child: Some(child),
    };
    // The process standing in for the node, for the fence device to kill.
    fs::write(
        dir.join("fence").join(format!("{name}.pid")),
        format!("{}\n", node.pid()),
    )
    .unwrap();
    node
}

/// The plugin directory: the example medium and STONITH device, a native agent, and the
/// built WASM components of `wasm` (test plugins).
fn install_plugins(dir: &Path, wasm: &[&str]) -> PathBuf {
    let plugins = dir.join("plugins");
    fs::create_dir_all(&plugins).unwrap();
    let native = [
        (PluginWorkspace::Examples, "native-medium"),
        (PluginWorkspace::Examples, "native-stonith"),
        (PluginWorkspace::TestPlugins, "native-agent"),
    ]
    .map(|(workspace, package)| native_plugin(workspace, package));
    let components = wasm
        .iter()
        .map(|package| wasm_plugin(PluginWorkspace::TestPlugins, package));
    for built in native.into_iter().chain(components) {
        fs::copy(&built, plugins.join(built.file_name().unwrap())).unwrap();
    }
    plugins
}

/// A fresh lab directory with the media and fence directories the nodes share.
fn lab_dir(label: &str) -> ScratchDir {
    let (pid, n) = unique_token();
    let scratch = ScratchDir::new(&format!("vigil-plugin-{label}-{pid}-{n}"));
    for sub in ["media", "fence"] {
        fs::create_dir_all(scratch.path().join(sub)).unwrap();
    }
    scratch
}

#[test]
fn a_cluster_on_a_native_medium_fences_with_a_native_device_and_moves_a_native_agents_resource() {
    let scratch = lab_dir("fence");
    let dir = scratch.path();
    let plugins = install_plugins(dir, &[]);
    let service = dir.join("service.state");
    let groups = format!(
        "resource_groups:\n  - node: alpha\n    resources: [\"NativeDummy::{}\"]\n",
        service.display()
    );

    let mut alpha = start_node(dir, &plugins, "alpha", &groups);
    let bravo = start_node(dir, &plugins, "bravo", &groups);
    wait_until(
        "both nodes active over unixdgram",
        &[&alpha, &bravo],
        || alpha.sees("bravo", NodeStatus::Active) && bravo.sees("alpha", NodeStatus::Active),
    );
    wait_until("the service running on alpha", &[&alpha, &bravo], || {
        alpha.group_state() == Some(LocalGroupState::Running) && service.exists()
    });

    // Alpha hangs; the service dies with it. Bravo must fence alpha before starting it.
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(alpha.pid(), libc::SIGSTOP) }, 0);
    fs::remove_file(&service).unwrap();
    wait_until("bravo running the service", &[&alpha, &bravo], || {
        bravo.group_state() == Some(LocalGroupState::Running) && service.exists()
    });

    let fence_log = fs::read_to_string(dir.join("fence/alpha.log")).unwrap_or_default();
    assert!(fence_log.contains("reset"), "fence log: {fence_log:?}");
    let status = alpha.child.take().unwrap().wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the device pulled alpha's plug"
    );
    let log = bravo.log_text();
    let reset = log
        .find("Resetting node alpha with [statedir]")
        .unwrap_or_else(|| panic!("no reset logged:\n{log}"));
    let acquired = log
        .find("Resources being acquired from alpha.")
        .unwrap_or_else(|| panic!("no takeover logged:\n{log}"));
    assert!(reset < acquired, "bravo took over before fencing:\n{log}");
}

/// A frame and when it arrived.
type TimedFrame = (Instant, Vec<u8>);

/// Every frame sent on the lab's `unixdgram` medium, with when it arrived: the medium sends
/// each frame to every `*.sock` of its directory, so a socket of the test's own there sees
/// exactly what the nodes put on the link.
struct LinkObserver {
    frames: std::sync::Arc<std::sync::Mutex<Vec<TimedFrame>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    reader: Option<thread::JoinHandle<()>>,
}

impl LinkObserver {
    fn start(media: &Path) -> LinkObserver {
        let socket = std::os::unix::net::UnixDatagram::bind(media.join("observer.sock")).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let frames = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (frames, stop) = (frames.clone(), stop.clone());
            thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(len) = socket.recv(&mut buf) {
                        let at = Instant::now();
                        frames.lock().unwrap().push((at, buf[..len].to_vec()));
                    }
                }
            })
        };
        LinkObserver {
            frames,
            stop,
            reader: Some(reader),
        }
    }

    /// When `node`'s heartbeats (`t=status` from `src=node`) arrived, from `since` on.
    fn heartbeats_of(&self, node: &str, since: Instant) -> Vec<Instant> {
        let keys = AuthKeys::new(1, vec![(1, AuthMethod::Sha1 { key: KEY.into() })]).unwrap();
        self.frames
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at >= since)
            .filter_map(|(at, frame)| {
                let message = datagram::decode(frame, &keys).ok()?;
                (message.get_str("t") == Some("status") && message.get_str("src") == Some(node))
                    .then_some(*at)
            })
            .collect()
    }
}

impl Drop for LinkObserver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// The longest time between two consecutive instants.
fn largest_gap(instants: &[Instant]) -> Duration {
    instants
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or_default()
}

#[test]
fn a_wasm_agent_that_loops_or_bloats_fails_its_monitor_while_heartbeats_stay_on_time() {
    let scratch = lab_dir("hostile");
    let dir = scratch.path();
    let plugins = install_plugins(dir, &["wasm-hostile"]);
    // The hostile agent declares every capability, so each resource grants them all; its
    // start and stop succeed, its monitor loops forever or allocates without bound.
    let grant = "{ log: true, addresses: [lo], arp: [lo], commands: [/bin/true], read: [/proc] }";
    let groups = format!(
        "resource_groups:\n\
         \x20 - node: alpha\n    resources:\n      - {{ token: \"wasm-hostile::monitor_do=loop\", timeout: 2s, monitor: {{ interval: 200ms, restarts: 100 }}, grant: {grant} }}\n\
         \x20 - node: alpha\n    resources:\n      - {{ token: \"wasm-hostile::monitor_do=allocate\", timeout: 2s, monitor: {{ interval: 200ms, restarts: 100 }}, grant: {grant} }}\n"
    );
    let observer = LinkObserver::start(&dir.join("media"));
    let alpha = start_node(dir, &plugins, "alpha", &groups);
    let bravo = start_node(dir, &plugins, "bravo", &groups);
    wait_until("both nodes active", &[&alpha, &bravo], || {
        alpha.sees("bravo", NodeStatus::Active) && bravo.sees("alpha", NodeStatus::Active)
    });
    let since = Instant::now();
    // Each looping monitor runs into its 2 s deadline; three of them, each followed by a
    // restart in place on a fresh instance, keep a core busy for over six seconds.
    wait_until(
        "three looping monitors stopped at their deadline",
        &[&alpha, &bravo],
        || {
            alpha
                .log_text()
                .matches("ran past its deadline of 2s")
                .count()
                >= 3
                && alpha.log_text().contains("exceeded its memory limit")
        },
    );
    let window = since.elapsed();
    let log = alpha.log_text();
    assert!(
        log.contains("restarting it in place (restart 2)"),
        "the failed monitors were not answered by restarts:\n{log}"
    );
    let heartbeats = observer.heartbeats_of("alpha", since);
    let gap = largest_gap(&heartbeats);
    println!(
        "alpha sent {} heartbeats in {window:?} while its WASM monitors looped and bloated; \
         largest gap between two: {gap:?} (keepalive 200ms, deadtime 1s)",
        heartbeats.len()
    );
    assert!(heartbeats.len() >= 10, "{} heartbeats", heartbeats.len());
    assert!(
        gap < Duration::from_secs(1),
        "a heartbeat waited for the agent: gap {gap:?}"
    );
    assert!(
        bravo.sees("alpha", NodeStatus::Active),
        "bravo lost alpha while its agent misbehaved:\n{}",
        bravo.log_text()
    );
    assert!(
        !bravo.log_text().contains("is dead"),
        "bravo declared alpha dead:\n{}",
        bravo.log_text()
    );
}
