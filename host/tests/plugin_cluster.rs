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
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::plugin_build::{PluginWorkspace, native_plugin};
use support::{ScratchDir, unique_token};
use vigil::api::{ApiClient, StatusReport};
use vigil::failover::LocalGroupState;
use vigil::membership::NodeStatus;

const WAIT: Duration = Duration::from_secs(20);

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

/// Writes `name`'s configuration and starts its daemon with `plugins` as plugin directory.
fn start_node(dir: &Path, plugins: &Path, name: &'static str, resource: &str) -> Node {
    let node_dir = dir.join(name);
    fs::create_dir_all(&node_dir).unwrap();
    let socket = node_dir.join("vigil.sock");
    let yaml = format!(
        "node_name: {name}\n\
         nodes: [alpha, bravo]\n\
         keepalive: 200ms\ndeadtime: 1s\nwarntime: 500ms\ninitdead: 2s\n\
         media:\n  - unixdgram: {media} {name}\n\
         auth: {{ method: sha1, key: plugin-cluster-secret }}\n\
         auto_failback: off\n\
         state_dir: {state}\napi_socket: {socket}\n\
         stonith:\n  - {{ type: statedir, params: {{ statedir: {fence}, hostlist: alpha bravo }} }}\n\
         resource_groups:\n  - node: alpha\n    resources: [\"{resource}\"]\n",
        media = dir.join("media").display(),
        state = node_dir.join("state").display(),
        socket = socket.display(),
        fence = dir.join("fence").display(),
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

/// The plugin directory: the example medium and STONITH device, and a native agent.
fn install_plugins(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    fs::create_dir_all(&plugins).unwrap();
    for (workspace, package) in [
        (PluginWorkspace::Examples, "native-medium"),
        (PluginWorkspace::Examples, "native-stonith"),
        (PluginWorkspace::TestPlugins, "native-agent"),
    ] {
        let built = native_plugin(workspace, package);
        fs::copy(&built, plugins.join(built.file_name().unwrap())).unwrap();
    }
    plugins
}

#[test]
fn a_cluster_on_a_native_medium_fences_with_a_native_device_and_moves_a_native_agents_resource() {
    let (pid, n) = unique_token();
    let scratch = ScratchDir::new(&format!("vigil-plugin-cluster-{pid}-{n}"));
    let dir = scratch.path();
    for sub in ["media", "fence"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let plugins = install_plugins(dir);
    let service = dir.join("service.state");
    let resource = format!("NativeDummy::{}", service.display());

    let mut alpha = start_node(dir, &plugins, "alpha", &resource);
    let bravo = start_node(dir, &plugins, "bravo", &resource);
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
