//! Configuration files read from disk: Heartbeat directories and YAML files through
//! `load_ha_dir`/`load_yaml` with the built-in media, the permission rule on files holding
//! keys, the conversion to YAML and back, the local node's name, resource groups' orders and
//! per-resource settings, and every bad fixture's message (file, line and what was expected).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use vigil::config::{
    self, AutoFailback, ClusterConfig, ConfigSource, GenerationMethod, MonitorSetting, MsgFormat,
    ResourceEntry,
};
use vigil::wire::auth::AuthMethod;

/// A scratch directory under the system's temp directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("vigil-config-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create scratch directory");
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` with `contents` and permission bits `mode`.
    fn write(&self, name: &str, contents: &[u8], mode: u32) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, contents).expect("write scratch file");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod scratch file");
        path
    }

    /// Copies a fixture in as `name`.
    fn fixture(&self, fixture: &str, name: &str, mode: u32) -> PathBuf {
        self.write(
            name,
            &fs::read(fixture_path(fixture)).expect("read fixture"),
            mode,
        )
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

/// A Heartbeat directory holding the lab's ha.cf `capture` (one of the three captured
/// clusters), its authkeys (mode 600) and the lab's haresources.
fn lab_dir(capture: &str) -> Scratch {
    let dir = Scratch::new(capture);
    dir.fixture(&format!("{capture}.ha.cf"), "ha.cf", 0o644);
    dir.fixture(&format!("{capture}.authkeys"), "authkeys", 0o600);
    dir.fixture("lab.haresources", "haresources", 0o644);
    dir
}

fn load_dir(dir: &Scratch) -> Result<ClusterConfig, config::ConfigError> {
    config::load_ha_dir(dir.path(), &vigil::registry::builtin())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The model without where each value was written and without what YAML cannot carry
/// (directives without effect, and their recorded values): what a conversion keeps.
fn settings_only(mut config: ClusterConfig) -> ClusterConfig {
    config.source = ConfigSource::Yaml(PathBuf::new());
    for medium in &mut config.media {
        medium.origin.clear();
    }
    for group in &mut config.resource_groups {
        group.origin.clear();
    }
    let ignored: Vec<String> = config
        .ignored_directives
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    // `crm` is recorded under its own name and under `pacemaker`, as in Heartbeat.
    let pacemaker_alias = ignored.iter().any(|n| n == "crm");
    let dropped =
        |name: &String| ignored.contains(name) || (pacemaker_alias && name == "pacemaker");
    config.parameters.retain(|(name, _)| !dropped(name));
    config.ignored_directives.clear();
    config
}

#[test]
fn captured_heartbeat_clusters_load_with_their_timings() {
    for (capture, slot, method, media) in [
        ("bcast-sha1", 1, "sha1", vec![("bcast", vec!["eth0"])]),
        (
            "mcast-md5",
            2,
            "md5",
            vec![("mcast", vec!["eth0", "239.0.0.94", "694", "1", "0"])],
        ),
        (
            "ucast-crc",
            3,
            "crc",
            vec![
                ("ucast", vec!["eth0", "198.18.0.1"]),
                ("ucast", vec!["eth0", "198.18.0.2"]),
            ],
        ),
    ] {
        let dir = lab_dir(capture);
        let config = load_dir(&dir).unwrap_or_else(|err| panic!("{capture}: {err}"));
        assert_eq!(config.source, ConfigSource::HaDir(dir.path().to_path_buf()));
        assert_eq!(config.nodes, ["hb1", "hb2"]);
        assert_eq!(config.timing.keepalive, ms(200), "{capture}");
        assert_eq!(config.timing.deadtime, ms(1000), "{capture}");
        assert_eq!(config.timing.warntime, ms(500), "{capture}");
        assert_eq!(config.timing.initdead, ms(2000), "{capture}");
        assert_eq!(config.timing.deadping, ms(1000), "{capture}");
        assert_eq!(config.timing.max_rexmit_delay, ms(250), "{capture}");
        assert_eq!(config.udp_port, 694);
        assert_eq!(config.auto_failback, AutoFailback::On);
        assert_eq!(config.msgfmt, MsgFormat::Classic);
        assert_eq!(config.generation_method, GenerationMethod::File);
        assert_eq!(config.hopfudge, 1);
        let got: Vec<(&str, Vec<&str>)> = config
            .media
            .iter()
            .map(|m| (m.kind.as_str(), m.args.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(got, media, "{capture}");
        assert!(config.media.iter().all(|m| m.udp_port == 694));
        assert_eq!(config.auth.outbound_slot(), slot);
        assert_eq!(config.auth.outbound().name(), method);
        assert_eq!(config.resource_groups.len(), 1);
        assert_eq!(config.resource_groups[0].node, "hb1");
        // haresources has no syntax for an order, a timeout or a monitor: defaults only.
        assert!(config.resource_groups[0].order.is_empty());
        assert_eq!(
            config.resource_groups[0].resources,
            [
                ResourceEntry::plain("IPaddr::198.18.0.100/24/eth0"),
                ResourceEntry::plain("hbdemo")
            ]
        );
        assert_eq!(
            config.resource_groups[0].origin,
            format!("{}:1", dir.path().join("haresources").display())
        );
        assert_eq!(config.state_dir, Path::new("/var/lib/heartbeat"));
        assert_eq!(config.api_socket, Path::new("/run/vigil/vigil.sock"));
        assert_eq!(config.node_name, None);
        let ignored: Vec<&str> = config
            .ignored_directives
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(ignored, ["logfile", "debugfile", "use_logd", "crm"]);
        // What `cl_status hbparameter -p` showed on the captured cluster.
        for (name, value) in [
            ("keepalive", "200ms"),
            ("deadtime", "1"),
            ("warntime", "500ms"),
            ("initdead", "2"),
            ("udpport", "694"),
            ("auto_failback", "on"),
            ("crm", "off"),
            ("logfile", "/var/log/hb/ha-log"),
            ("baud", "19200"),
            ("hopfudge", "1"),
        ] {
            assert_eq!(
                config.parameter(name).as_deref(),
                Some(value),
                "{capture}: {name}"
            );
        }
        assert_eq!(config.parameter("node"), None);
    }
}

#[test]
fn a_directory_without_haresources_has_no_groups() {
    let dir = Scratch::new("no-haresources");
    dir.fixture("bcast-sha1.ha.cf", "ha.cf", 0o644);
    dir.fixture("bcast-sha1.authkeys", "authkeys", 0o600);
    let config = load_dir(&dir).expect("valid directory");
    assert!(config.resource_groups.is_empty());
}

#[test]
fn crm_on_leaves_haresources_unread() {
    let dir = lab_dir("bcast-sha1");
    let ha_cf = fs::read_to_string(dir.path().join("ha.cf")).expect("read ha.cf");
    dir.write(
        "ha.cf",
        ha_cf.replace("crm off", "crm on").as_bytes(),
        0o644,
    );
    dir.fixture("bad/unknown-node.haresources", "haresources", 0o644);
    let config = load_dir(&dir).expect("haresources is not read with crm on");
    assert!(config.resource_groups.is_empty());
}

#[test]
fn authkeys_readable_by_group_or_others_is_refused() {
    for mode in [0o644, 0o640, 0o604, 0o444] {
        let dir = lab_dir("bcast-sha1");
        let authkeys = dir.fixture("bcast-sha1.authkeys", "authkeys", mode);
        let err = load_dir(&dir).expect_err("readable authkeys").to_string();
        assert_eq!(
            err,
            format!(
                "{0}: mode {mode:04o} lets group or others read the authentication keys \
                 (expected no group or other read permission: run `chmod 600 {0}`)",
                authkeys.display()
            )
        );
    }
    let dir = lab_dir("bcast-sha1");
    dir.fixture("bcast-sha1.authkeys", "authkeys", 0o400);
    load_dir(&dir).expect("owner-only authkeys is accepted");
}

#[test]
fn missing_or_non_text_files_are_reported_with_their_path() {
    let dir = Scratch::new("missing");
    let err = load_dir(&dir).expect_err("no ha.cf").to_string();
    assert!(
        err.starts_with(&format!(
            "{}: cannot read: ",
            dir.path().join("ha.cf").display()
        )),
        "{err}"
    );
    let dir = lab_dir("bcast-sha1");
    let ha_cf = dir.write("ha.cf", b"node hb1 hb2\nbcast eth0\n# caf\xe9\n", 0o644);
    assert_eq!(
        load_dir(&dir).expect_err("not UTF-8").to_string(),
        format!(
            "{}:3: not UTF-8 text (expected a text file)",
            ha_cf.display()
        )
    );
}

#[test]
fn bad_files_are_refused_naming_the_line_and_the_expectation() {
    // (fixture, the file it replaces, the message after `<path>`)
    let cases = [
        (
            "deadtime-short.ha.cf",
            "ha.cf",
            ":2: deadtime 400ms must be more than twice keepalive (250ms)",
        ),
        (
            "udpport-late.ha.cf",
            "ha.cf",
            ":4: udpport must come before the first medium (<dir>/ha.cf:2)",
        ),
        (
            "unknown-directive.ha.cf",
            "ha.cf",
            ":2: unknown directive `keepalive_ms` (expected a ha.cf directive or a medium: \
             bcast, mcast,",
        ),
        (
            "tipc.ha.cf",
            "ha.cf",
            ":2: medium `tipc` is not available in this build (available: bcast, mcast,",
        ),
        (
            "mcast-short.ha.cf",
            "ha.cf",
            ":3: `mcast eth0 239.0.0.94 694`: expected",
        ),
        (
            "initdead-short.ha.cf",
            "ha.cf",
            ":3: initdead 5s must not be shorter than deadtime (10s)",
        ),
        (
            "auth-after-slot.authkeys",
            "authkeys",
            ":2: auth 2 must come before the definition of slot 2 (<dir>/authkeys:1)",
        ),
        (
            "sha1-without-key.authkeys",
            "authkeys",
            ":2: key slot 1: sha1 needs a key (expected `1 sha1 KEY`)",
        ),
        (
            "stray-line.authkeys",
            "authkeys",
            ":3: expected `auth N` or a key slot `N crc`, `N md5 KEY` or `N sha1 KEY`",
        ),
        (
            "unknown-node.haresources",
            "haresources",
            ":2: `hb3` is not a configured node (nodes: hb1, hb2)",
        ),
    ];
    for (fixture, replaces, expected) in cases {
        let dir = lab_dir("bcast-sha1");
        let mode = if replaces == "authkeys" { 0o600 } else { 0o644 };
        let path = dir.fixture(&format!("bad/{fixture}"), replaces, mode);
        let err = load_dir(&dir).expect_err(fixture).to_string();
        let expected = format!(
            "{}{}",
            path.display(),
            expected.replace("<dir>", &dir.path().display().to_string())
        );
        assert!(
            err.starts_with(&expected),
            "{fixture}:\n got: {err}\nwant: {expected}"
        );
        assert!(
            !err.contains("labsecret"),
            "{fixture}: a key leaked into {err}"
        );
    }
}

fn load_yaml_file(path: &Path) -> Result<ClusterConfig, config::ConfigError> {
    config::load_yaml(path, &vigil::registry::builtin())
}

#[test]
fn bad_yaml_files_are_refused_naming_line_column_and_expectation() {
    let cases = [
        (
            "unknown-field.yaml",
            ":2:1: unknown field `logfile`, expected one of `node_name`, `nodes`",
        ),
        (
            "bad-time.yaml",
            ":2:12: keepalive `200xs` is not valid (expected a time above zero",
        ),
        (
            "deadtime-short.yaml",
            ":3:11: deadtime 400ms must be more than twice keepalive (250ms)",
        ),
        (
            "tipc.yaml",
            ":4:5: medium `tipc` is not available in this build (available: bcast, mcast,",
        ),
        (
            "group-node.yaml",
            ":8:11: `hb3` is not a configured node (nodes: hb1, hb2)",
        ),
        (
            "two-media-in-one-entry.yaml",
            ":3:5: media[0]: one medium per list entry (expected `- kind: arguments`)",
        ),
        (
            "order-preferred-not-first.yaml",
            ":7:13: the order of group `httpd` starts with `hb2`, not with its preferred node \
             `hb1` (expected [hb1, …])",
        ),
        (
            "resource-timeout.yaml",
            ":9:18: timeout `2h` is not valid (expected a time from 1s to 3600s: a number in \
             seconds, or followed by ms or us)",
        ),
        (
            "monitor-interval-zero.yaml",
            ":9:30: monitor interval `0ms` is not valid (expected a time above zero and at most \
             86400s",
        ),
        (
            "monitor-restarts.yaml",
            ":9:44: monitor restarts `1000` is not valid (expected a whole number from 0 to 100)",
        ),
        (
            "monitor-unknown-field.yaml",
            ":11:11: resource_groups[0].resources[0].monitor: unknown field `on_fail`, expected \
             `interval` or `restarts`",
        ),
    ];
    for (fixture, expected) in cases {
        let dir = Scratch::new("bad-yaml");
        let path = dir.fixture(&format!("bad/{fixture}"), fixture, 0o600);
        let err = load_yaml_file(&path).expect_err(fixture).to_string();
        let expected = format!("{}{expected}", path.display());
        assert!(
            err.starts_with(&expected),
            "{fixture}:\n got: {err}\nwant: {expected}"
        );
    }
}

#[test]
fn cluster_yaml_reads_as_an_operator_writes_it() {
    let dir = Scratch::new("yaml");
    let path = dir.fixture("cluster.yaml", "cluster.yaml", 0o600);
    let config = load_yaml_file(&path).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(config.source, ConfigSource::Yaml(path.clone()));
    assert_eq!(config.node_name.as_deref(), Some("hb1"));
    assert_eq!(config.nodes, ["hb1", "hb2"]);
    assert_eq!(config.timing.keepalive, ms(200));
    assert_eq!(config.timing.deadtime, ms(1000));
    assert_eq!(config.timing.warntime, ms(500));
    assert_eq!(config.timing.initdead, ms(2000));
    assert_eq!(config.auto_failback, AutoFailback::On);
    let kinds: Vec<&str> = config.media.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(kinds, ["bcast", "mcast", "ucast"]);
    assert_eq!(config.media[2].origin, format!("{}:12:5", path.display()));
    assert_eq!(config.auth.outbound_slot(), 1);
    assert_eq!(
        config.auth.outbound(),
        &AuthMethod::Sha1 {
            key: "labsecret".to_string()
        }
    );
    assert_eq!(config.state_dir, Path::new("/var/lib/vigil"));
    assert_eq!(
        config.resource_groups[0].resources,
        [
            ResourceEntry::plain("IPaddr::198.18.0.100/24/eth0"),
            ResourceEntry::plain("hbdemo")
        ]
    );
    assert_eq!(
        config.resource_groups[0].origin,
        format!("{}:18:5", path.display())
    );
    assert_eq!(config.parameter("keepalive").as_deref(), Some("200ms"));
    assert_eq!(config.parameter("initdead").as_deref(), Some("2"));
    assert!(config.ignored_directives.is_empty());
}

#[test]
fn group_orders_and_resource_settings_read_as_written() {
    let dir = Scratch::new("yaml-monitored");
    let path = dir.fixture("monitored.yaml", "monitored.yaml", 0o600);
    let config = load_yaml_file(&path).unwrap_or_else(|err| panic!("{err}"));
    let [web, db] = config.resource_groups.as_slice() else {
        panic!("two groups expected: {:?}", config.resource_groups);
    };
    assert_eq!(web.key(), "IPaddr::198.18.0.100/24/eth0");
    assert_eq!(web.order, ["alpha", "charlie", "bravo"]);
    assert_eq!(
        web.resources,
        [
            ResourceEntry::plain("IPaddr::198.18.0.100/24/eth0"),
            ResourceEntry {
                token: "Dummy::web".to_string(),
                timeout: Some(Duration::from_secs(20)),
                monitor: Some(MonitorSetting {
                    interval: Duration::from_secs(2),
                    restarts: 2,
                }),
                grants: Default::default(),
            },
        ]
    );
    assert_eq!(web.origin, format!("{}:10:5", path.display()));
    assert!(db.order.is_empty());
    assert_eq!(
        db.resources,
        [ResourceEntry {
            token: "Dummy::db".to_string(),
            timeout: Some(Duration::from_secs(90)),
            monitor: Some(MonitorSetting {
                interval: ms(500),
                restarts: 0,
            }),
            grants: Default::default(),
        }]
    );
}

#[test]
fn yaml_holding_keys_must_not_be_readable_by_others() {
    let dir = Scratch::new("yaml-mode");
    let path = dir.fixture("cluster.yaml", "cluster.yaml", 0o640);
    let err = load_yaml_file(&path)
        .expect_err("readable keys")
        .to_string();
    assert!(
        err.contains("mode 0640 lets group or others read the authentication keys"),
        "{err}"
    );
    assert!(
        err.contains(&format!("chmod 600 {}", path.display())),
        "{err}"
    );
    // Without a key there is nothing to protect.
    let crc = dir.write(
        "crc.yaml",
        b"nodes: [hb1]\nmedia:\n  - bcast: eth0\nauth: { method: crc }\n",
        0o644,
    );
    load_yaml_file(&crc).expect("a crc-only file may be world-readable");
}

#[test]
fn heartbeat_directories_convert_to_yaml_and_back_unchanged() {
    for capture in ["bcast-sha1", "mcast-md5", "ucast-crc"] {
        let dir = lab_dir(capture);
        let from_ha = load_dir(&dir).expect("valid directory");
        let yaml = config::to_yaml(&from_ha);
        assert!(yaml.contains("keepalive: 200ms"), "{yaml}");
        assert!(yaml.contains("deadtime: 1\n"), "{yaml}");
        assert!(yaml.contains("#   logfile /var/log/hb/ha-log"), "{yaml}");
        assert!(yaml.contains("state_dir: /var/lib/heartbeat"), "{yaml}");
        let path = dir.write("cluster.yaml", yaml.as_bytes(), 0o600);
        let from_yaml = load_yaml_file(&path).unwrap_or_else(|err| panic!("{err}\n{yaml}"));
        assert_eq!(
            settings_only(from_yaml),
            settings_only(from_ha),
            "{capture}:\n{yaml}"
        );
    }
}

#[test]
fn yaml_files_convert_to_yaml_and_back_unchanged() {
    for fixture in ["cluster.yaml", "slots.yaml", "monitored.yaml"] {
        let dir = Scratch::new("yaml-round-trip");
        let path = dir.fixture(fixture, fixture, 0o600);
        let first = load_yaml_file(&path).unwrap_or_else(|err| panic!("{fixture}: {err}"));
        let yaml = config::to_yaml(&first);
        let again_path = dir.write("again.yaml", yaml.as_bytes(), 0o600);
        let again = load_yaml_file(&again_path).unwrap_or_else(|err| panic!("{err}\n{yaml}"));
        assert_eq!(
            settings_only(again),
            settings_only(first),
            "{fixture}:\n{yaml}"
        );
    }
}

#[test]
fn local_node_name_comes_from_nodeinfo_lower_cased() {
    let dir = lab_dir("bcast-sha1");
    dir.write("nodeinfo", b"  HB2\nignored\n", 0o644);
    let config = load_dir(&dir).expect("valid directory");
    assert_eq!(
        config::local_node_name(&config, None).ok().as_deref(),
        Some("hb2")
    );
    // An explicit directory wins over the one the configuration came from.
    let other = Scratch::new("nodeinfo");
    other.fixture("hb1.nodeinfo", "nodeinfo", 0o644);
    assert_eq!(
        config::local_node_name(&config, Some(other.path()))
            .ok()
            .as_deref(),
        Some("hb1")
    );
}

#[test]
fn local_node_name_not_among_the_nodes_is_refused_naming_both() {
    let dir = lab_dir("bcast-sha1");
    let nodeinfo = dir.write("nodeinfo", b"hb9\n", 0o644);
    let config = load_dir(&dir).expect("valid directory");
    let err = config::local_node_name(&config, None).expect_err("hb9 is not a node");
    assert_eq!(
        err.to_string(),
        format!(
            "local node name `hb9` (from {0}:1) is not one of the configured nodes (hb1, hb2); \
             add it to the nodes or set the name in {0}",
            nodeinfo.display()
        )
    );
}

#[test]
fn local_node_name_from_yaml_is_used_as_written() {
    let dir = Scratch::new("yaml-name");
    let path = dir.fixture("cluster.yaml", "cluster.yaml", 0o600);
    let config = load_yaml_file(&path).expect("valid YAML");
    assert_eq!(
        config::local_node_name(&config, None).ok().as_deref(),
        Some("hb1")
    );
}
