//! The client API for cluster programs, end to end: two `vigil run` daemons on loopback
//! (ucast bound to 127.0.0.x, no root needed) with the `cluster_chat` example signed on to
//! each, exchanging numbered messages; sign-on refusals by `apiauth`; status change events
//! when the peer dies.

use std::fs;
use std::io::Write as _;
use std::net::UdpSocket;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use vigil::api::ApiError;
use vigil::api::client::{ClusterClient, ClusterEvent};

const WAIT: Duration = Duration::from_secs(20);
/// The unprivileged user and group the refused client runs as.
const NOBODY: u32 = 65534;

struct Cluster {
    dir: PathBuf,
    nodes: Vec<Node>,
}

struct Node {
    name: String,
    socket: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Cluster {
    /// Daemons named `names` on 127.0.0.1, .2 …; `apiauth` is the YAML list of permissions.
    fn start(names: &[&str], apiauth: &str) -> Cluster {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vigil-client-api-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut nodes = Vec::new();
        for (index, name) in names.iter().enumerate() {
            let node_dir = dir.join(name);
            fs::create_dir_all(&node_dir).unwrap();
            fs::set_permissions(&node_dir, fs::Permissions::from_mode(0o755)).unwrap();
            let address = format!("127.0.0.{}", index + 1);
            let media: String = (0..names.len())
                .filter(|&i| i != index)
                .map(|i| format!("  - ucast: lo 127.0.0.{} bind={address}\n", i + 1))
                .collect();
            let socket = node_dir.join("vigil.sock");
            let yaml = format!(
                "node_name: {name}\nnodes: [{}]\nkeepalive: 200ms\ndeadtime: 1s\nwarntime: 500ms\n\
                 initdead: 2s\nudpport: {port}\nmedia:\n{media}auth: {{ method: sha1, key: k }}\n\
                 state_dir: {}\napi_socket: {}\napiauth:\n{apiauth}",
                names.join(", "),
                node_dir.join("state").display(),
                socket.display(),
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
            nodes.push(Node {
                name: name.to_string(),
                socket,
                log,
                child: Some(child),
            });
        }
        Cluster { dir, nodes }
    }

    fn node(&self, name: &str) -> &Node {
        self.nodes.iter().find(|n| n.name == name).unwrap()
    }

    /// Waits until every node sees every node active.
    fn wait_until_all_active(&self) {
        for observer in &self.nodes {
            for node in &self.nodes {
                observer.wait_for(&node.name, "active");
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
    fn wait_for(&self, node: &str, status: &str) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let seen = vigil::api::ApiClient::connect(&self.socket)
                .and_then(|mut c| c.status())
                .ok()
                .and_then(|report| {
                    report
                        .membership
                        .nodes
                        .iter()
                        .find(|n| n.name == node)
                        .map(|n| n.status.as_str().to_string())
                });
            if seen.as_deref() == Some(status) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} never saw {node} {status}; log:\n{}",
            self.name,
            self.log_text()
        );
    }

    fn log_text(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// The `cluster_chat` example, built by `cargo test` next to the test binaries.
fn chat_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let built = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples")
        .join("cluster_chat");
    assert!(
        built.exists(),
        "{} is missing: build it with `cargo build -p vigil --example cluster_chat`",
        built.display()
    );
    built
}

fn chat(socket: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(chat_binary());
    command
        .arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// The `n` values of the chat messages `output` received from `from`, in arrival order.
fn received_from(output: &Output, from: &str) -> Vec<u64> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("message "))
        .filter_map(|rest| {
            let mut words = rest.split_whitespace();
            (words.next() == Some(from)).then(|| words.next()?.parse().ok())?
        })
        .collect()
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

#[test]
fn two_chat_clients_exchange_numbered_messages_in_order_and_complete() {
    let uid = current_uid();
    let cluster = Cluster::start(
        &["alpha", "bravo"],
        &format!("  - {{ client: chat, uid: [\"{uid}\"] }}\n"),
    );
    cluster.wait_until_all_active();
    const COUNT: u64 = 200;
    let count = COUNT.to_string();
    let common = ["--count", &count, "--expect", &count, "--peers", "1"];
    // alpha sends to every node, bravo to alpha only: both paths are exercised.
    let alpha = chat(&cluster.node("alpha").socket, &common)
        .spawn()
        .unwrap();
    let bravo = chat(&cluster.node("bravo").socket, &common)
        .args(["--to", "alpha"])
        .spawn()
        .unwrap();
    let alpha = alpha.wait_with_output().unwrap();
    let bravo = bravo.wait_with_output().unwrap();
    assert!(alpha.status.success(), "alpha: {}", describe(&alpha));
    assert!(bravo.status.success(), "bravo: {}", describe(&bravo));
    let expected: Vec<u64> = (1..=COUNT).collect();
    assert_eq!(
        received_from(&bravo, "alpha"),
        expected,
        "bravo: {}",
        describe(&bravo)
    );
    assert_eq!(
        received_from(&alpha, "bravo"),
        expected,
        "alpha: {}",
        describe(&alpha)
    );
    // alpha's messages went to every node, so its own chat client got them back too, in
    // order (it may exit before the last echoes arrive).
    let echoes = received_from(&alpha, "alpha");
    assert!(
        !echoes.is_empty() && echoes[..] == expected[..echoes.len()],
        "{echoes:?}"
    );
    assert!(received_from(&bravo, "bravo").is_empty());
}

#[test]
fn a_client_without_permission_is_refused_with_the_reason() {
    let uid = current_uid();
    let cluster = Cluster::start(
        &["alpha", "bravo"],
        &format!("  - {{ client: chat, uid: [\"{uid}\"] }}\n"),
    );
    cluster.wait_until_all_active();
    let node = cluster.node("alpha");

    // A name without its own apiauth entry, and no `default` entry.
    let refused = ClusterClient::signon(&node.socket, "secret").err();
    let Some(ApiError::Refused { client, reason, .. }) = refused else {
        panic!("expected a refusal, got {refused:?}");
    };
    assert_eq!(client, "secret");
    assert!(reason.contains("apiauth default"), "{reason}");

    // The same name twice on one node.
    let first = ClusterClient::signon(&node.socket, "chat").unwrap();
    let second = ClusterClient::signon(&node.socket, "chat").err();
    assert!(
        matches!(&second, Some(ApiError::Refused { reason, .. }) if reason.contains("already signed on")),
        "{second:?}"
    );
    drop(first);

    // Another user, by the kernel's credentials of its connection (needs root to become it).
    if uid != 0 {
        eprintln!("not root: the other-user case is skipped");
        return;
    }
    fs::set_permissions(&node.socket, fs::Permissions::from_mode(0o666)).unwrap();
    let binary = cluster.dir.join("cluster_chat");
    fs::copy(chat_binary(), &binary).unwrap();
    fs::set_permissions(&binary, fs::Permissions::from_mode(0o755)).unwrap();
    let output = Command::new(&binary)
        .arg("--socket")
        .arg(&node.socket)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(
        stderr.contains("refused sign-on as `chat`") && stderr.contains(&format!("uid {NOBODY}")),
        "{}",
        describe(&output)
    );
}

#[test]
fn a_signed_on_client_sees_the_peer_die() {
    let uid = current_uid();
    let mut cluster = Cluster::start(
        &["alpha", "bravo"],
        &format!("  - {{ client: watcher, uid: [\"{uid}\"] }}\n"),
    );
    cluster.wait_until_all_active();
    let mut client = ClusterClient::signon(&cluster.node("alpha").socket, "watcher").unwrap();
    assert_eq!(client.node(), "alpha");
    let nodes = client.nodes().unwrap();
    let bravo = nodes.iter().find(|n| n.name == "bravo").unwrap();
    assert_eq!(bravo.status, "active");
    assert!(bravo.links.iter().any(|(_, up)| *up), "{bravo:?}");

    cluster
        .nodes
        .iter_mut()
        .find(|n| n.name == "bravo")
        .unwrap()
        .kill();
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no node_status event for bravo");
        let Some(event) = client.recv_timeout(Duration::from_millis(200)).unwrap() else {
            continue;
        };
        if let ClusterEvent::Membership(event) = event
            && event.kind == "node_status"
            && event.node.as_deref() == Some("bravo")
        {
            break;
        }
    }
    let nodes = client.nodes().unwrap();
    let bravo = nodes.iter().find(|n| n.name == "bravo").unwrap();
    assert_eq!(bravo.status, "dead");
}
