//! The `serial` medium end to end: real `vigil run` processes joined by a `socat` pty pair
//! (the null-modem cable of these tests), alone, next to a UDP medium that gets cut, and
//! facing Debian's Heartbeat 3.0.6 on the other end of the line.
//!
//! The first test needs only `socat`; the others need root (network namespaces) and the
//! last one Heartbeat too. Each says why it skips when something is missing (or fails when
//! `VIGIL_REQUIRE_ROOT_TESTS=1`).

mod support;

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::heartbeat::{HeartbeatNode, heartbeat_or_skip};
use support::netns::{FIRST_LINK, Lab};
use support::vigil_node::VigilNode;
use support::{
    ClStatus, ClusterConfig, MediumKind, SETTLE_TIMEOUT, ScratchDir, node_name, run_or_skip,
    unique_token, wait_all_active, wait_for, wait_link_status, wait_node_status,
};

/// The `socat` program the pty pairs come from.
const SOCAT: &str = "socat";

/// The authkeys of every cluster here: sha1 with a key, so a frame that is not signed right
/// is refused.
const AUTHKEYS: &str = "auth 1\n1 sha1 serialsecret\n";

/// Whether `socat` can be run; otherwise says why the test skips.
fn socat_or_skip() -> bool {
    let found = Command::new(SOCAT)
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    run_or_skip(found, "socat (Debian package socat)")
}

/// A scratch directory and a pty pair inside it, named after `test` and this process; `None`
/// (the test skips) without socat.
fn cable_or_skip(test: &str) -> Option<(ScratchDir, PtyPair)> {
    if !socat_or_skip() {
        return None;
    }
    let (pid, counter) = unique_token();
    let scratch = ScratchDir::new(&format!("vigil-{test}-{pid}-{counter}"));
    let cable = PtyPair::new(scratch.path());
    Some((scratch, cable))
}

/// Two ptys joined back to back by `socat`: what is written to one is read from the other,
/// like the two ends of a null-modem cable. Killed on drop.
struct PtyPair {
    /// The symlinks socat makes to the two pty slaves.
    ends: [PathBuf; 2],
    socat: Child,
    /// socat's diagnostics, for a failing test.
    log: PathBuf,
}

impl PtyPair {
    /// Starts `socat -d -d pty,raw,echo=0,link=A pty,raw,echo=0,link=B` in `dir` and waits
    /// until both links exist.
    fn new(dir: &Path) -> PtyPair {
        let ends = [dir.join("ttyA"), dir.join("ttyB")];
        let log = dir.join("socat.log");
        let mut command = Command::new(SOCAT);
        command.args(["-d", "-d"]);
        for end in &ends {
            command.arg(format!("pty,raw,echo=0,link={}", end.display()));
        }
        let socat = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("socat log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start socat: {e}"));
        let pair = PtyPair { ends, socat, log };
        wait_for("socat's two ptys", SETTLE_TIMEOUT, || {
            if pair.ends.iter().all(|end| end.exists()) {
                Ok(())
            } else {
                Err(fs::read_to_string(&pair.log).unwrap_or_default())
            }
        });
        pair
    }

    /// One end of the cable.
    fn end(&self, index: usize) -> &str {
        self.ends[index].to_str().expect("scratch paths are UTF-8")
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.socat.kill();
        let _ = self.socat.wait();
    }
}

/// A vigil daemon run from a YAML file with its files in one directory, no namespace and no
/// root needed: the only link it has is its tty. Killed on drop.
struct SerialDaemon {
    name: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl SerialDaemon {
    /// Starts `vigil run` as `name` of `nodes`, with the one medium `serial <tty>`.
    fn start(scratch: &Path, name: &str, nodes: &[&str], tty: &str) -> SerialDaemon {
        let dir = scratch.join(name);
        fs::create_dir_all(&dir).expect("node directory");
        let yaml = format!(
            "node_name: {name}\nnodes: [{}]\nkeepalive: 200ms\ndeadtime: 2s\nwarntime: 1s\n\
             initdead: 4s\nbaud: 115200\nmedia:\n  - serial: {tty}\n\
             auth: {{ method: sha1, key: serialsecret }}\nstate_dir: {}\napi_socket: {}\n",
            nodes.join(", "),
            dir.join("state").display(),
            dir.join("vigil.sock").display(),
        );
        let config = dir.join("cluster.yaml");
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&config)
            .and_then(|mut file| file.write_all(yaml.as_bytes()))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", config.display()));
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_vigil"), dir.join("cl_status"))
            .expect("cl_status link");
        let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["run", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("stderr.log")).expect("log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start vigil: {e}"));
        SerialDaemon {
            name: name.to_string(),
            dir,
            child: Some(child),
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    /// `vigil status --json` of this daemon, or why it could not be had.
    fn status_json(&self) -> Result<serde_json::Value, String> {
        let output = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["status", "--json", "--socket"])
            .arg(self.dir.join("vigil.sock"))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run vigil status: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        serde_json::from_slice(&output.stdout).map_err(|e| format!("not JSON: {e}"))
    }
}

impl ClStatus for SerialDaemon {
    fn node_name(&self) -> &str {
        &self.name
    }

    fn cl_status(&self, args: &[&str]) -> (String, i32) {
        let output = Command::new(self.dir.join("cl_status"))
            .args(args)
            .env("VIGIL_SOCKET", self.dir.join("vigil.sock"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run cl_status: {e}"));
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            output.status.code().unwrap_or(-1),
        )
    }
}

impl Drop for SerialDaemon {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn two_vigil_nodes_joined_only_by_a_pty_pair_become_active_and_see_a_death() {
    let Some((scratch, cable)) = cable_or_skip("serial") else {
        return;
    };
    let nodes = ["alpha", "bravo"];
    let alpha = SerialDaemon::start(scratch.path(), "alpha", &nodes, cable.end(0));
    let mut bravo = SerialDaemon::start(scratch.path(), "bravo", &nodes, cable.end(1));

    wait_all_active(&[&alpha, &bravo]);
    wait_link_status(&alpha, "bravo", cable.end(0), "up");
    wait_link_status(&bravo, "alpha", cable.end(1), "up");
    let (links, _) = alpha.cl_status(&["listhblinks", "bravo"]);
    assert!(
        links.contains(cable.end(0)),
        "alpha's links to bravo: {links:?}"
    );

    bravo.kill();
    wait_node_status(&alpha, "bravo", "dead");
    let log = alpha.log();
    assert!(!log.contains("panicked"), "alpha's log:\n{log}");
}

#[test]
fn line_noise_and_broken_frames_on_the_tty_are_counted_in_vigil_status() {
    let Some((scratch, cable)) = cable_or_skip("serial-noise") else {
        return;
    };
    let alpha = SerialDaemon::start(scratch.path(), "alpha", &["alpha", "bravo"], cable.end(0));
    wait_for("alpha to answer", SETTLE_TIMEOUT, || alpha.status_json());

    // 11 bytes of noise, a frame cut short by the next `>>>`, then a whole frame that is
    // not a signed message (the decoder's business, not the line's).
    let mut line = fs::OpenOptions::new()
        .write(true)
        .open(cable.end(1))
        .expect("the other end of the cable");
    line.write_all(b"line noise\n>>>\nt=status\n>>>\nt=status\n<<<\n")
        .expect("write to the cable");

    let drops = wait_for("the line's drops in vigil status", SETTLE_TIMEOUT, || {
        let status = alpha.status_json()?;
        let drops = status["drops"].clone();
        let count = |name: &str| drops[name].as_u64().unwrap_or(0);
        if count("serial_garbage_bytes") >= 11 && count("serial_broken_frames") >= 1 {
            Ok(drops)
        } else {
            Err(format!("drops so far: {drops}"))
        }
    });
    assert_eq!(drops["serial_garbage_bytes"], 11, "{drops}");
    assert_eq!(drops["serial_broken_frames"], 1, "{drops}");
    assert!(
        drops.get("serial_oversized_frames").is_none(),
        "a counter at zero is not listed: {drops}"
    );
    let log = alpha.log();
    assert!(!log.contains("panicked"), "alpha's log:\n{log}");
}

/// The ha.cf of one lab node: `bcast eth0` plus `serial <tty>`, the tty being this node's
/// end of the cable.
fn bcast_and_serial(nodes: &[&str], tty: &str) -> ClusterConfig {
    let mut config = ClusterConfig::new(MediumKind::Bcast, nodes, &[]);
    config.media.push(format!("serial {tty}"));
    config.authkeys = AUTHKEYS.to_string();
    config
}

#[test]
fn cutting_the_network_leaves_both_nodes_alive_over_the_serial_link() {
    if !socat_or_skip() {
        return;
    }
    let Some(mut lab) = Lab::new("serialcut") else {
        return;
    };
    let (net1, net2) = (lab.add_node(1), lab.add_node(2));
    let (name1, name2) = (node_name(1), node_name(2));
    let nodes = [name1.as_str(), name2.as_str()];
    let cable = PtyPair::new(lab.dir());
    let vigil1 = VigilNode::start(&net1, &name1, &bcast_and_serial(&nodes, cable.end(0)));
    let vigil2 = VigilNode::start(&net2, &name2, &bcast_and_serial(&nodes, cable.end(1)));

    wait_all_active(&[&vigil1, &vigil2]);
    wait_link_status(&vigil1, &name2, FIRST_LINK, "up");
    wait_link_status(&vigil1, &name2, cable.end(0), "up");
    wait_link_status(&vigil2, &name1, cable.end(1), "up");

    lab.cut(&net2);
    wait_link_status(&vigil1, &name2, FIRST_LINK, "dead");
    wait_link_status(&vigil2, &name1, FIRST_LINK, "dead");
    // Well past the deadtime (1 s) with the network cut: only the serial line carries them.
    std::thread::sleep(Duration::from_secs(3));
    for (observer, peer, tty) in [
        (&vigil1, &name2, cable.end(0)),
        (&vigil2, &name1, cable.end(1)),
    ] {
        assert_eq!(observer.node_status(peer), ("active".to_string(), 0));
        assert_eq!(observer.link_status(peer, tty).0, "up");
        assert_eq!(observer.link_status(peer, FIRST_LINK).0, "dead");
    }

    lab.heal(&net2);
    wait_link_status(&vigil1, &name2, FIRST_LINK, "up");
}

#[test]
fn vigil_and_heartbeat_see_each_other_active_over_a_pty_pair() {
    if !socat_or_skip() || !heartbeat_or_skip() {
        return;
    }
    let Some(mut lab) = Lab::new("serialhb") else {
        return;
    };
    let (net1, net2) = (lab.add_node(1), lab.add_node(2));
    let (name1, name2) = (node_name(1), node_name(2));
    let nodes = [name1.as_str(), name2.as_str()];
    let cable = PtyPair::new(lab.dir());
    // The serial line is the only medium: the nodes share no network.
    let serial_only = |tty: &str| ClusterConfig {
        media: vec![format!("serial {tty}")],
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
        authkeys: AUTHKEYS.to_string(),
        initdead_seconds: 2,
    };
    let mut vigil = VigilNode::start(&net1, &name1, &serial_only(cable.end(0)));
    let heartbeat = HeartbeatNode::start(&net2, &name2, &serial_only(cable.end(1)));

    wait_all_active(&[&vigil, &heartbeat]);
    wait_link_status(&vigil, &name2, cable.end(0), "up");
    wait_link_status(&heartbeat, &name1, cable.end(1), "up");

    vigil.kill_hard();
    wait_node_status(&heartbeat, &name1, "dead");
}
