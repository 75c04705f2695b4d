//! The SDK's conformance harness on agents of every origin, and `vigil plugin test` and
//! `vigil plugins` as an operator runs them.
//!
//! Debian's OCF Dummy (resource-agents) is the reference a correct agent is measured by; a
//! script seeded with a mistake shows the command fails naming the check. Plugin files are
//! built from `examples/` and `host/tests/plugins/` by the tests that need them.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::ScratchDir;
use support::plugin_build::{PluginWorkspace, native_plugin, wasm_plugin};
use vigil_agents::ocf::OcfAgent;
use vigil_sdk::harness::{self, Conformance, MockHost, Verdict, checks};

const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");

/// Debian's OCF root and its Dummy agent.
const OCF_ROOT: &str = "/usr/lib/ocf";
const DEBIAN_DUMMY: &str = "/usr/lib/ocf/resource.d/heartbeat/Dummy";

fn debian_dummy_or_skip() -> bool {
    support::run_or_skip(
        Path::new(DEBIAN_DUMMY).is_file(),
        "Debian's resource-agents (OCF Dummy)",
    )
}

fn scratch(label: &str) -> ScratchDir {
    let (pid, n) = support::unique_token();
    ScratchDir::new(&format!("vigil-conformance-{label}-{pid}-{n}"))
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn vigil(args: &[&str]) -> Output {
    Command::new(VIGIL)
        .args(args)
        .env_remove("VIGIL_PLUGIN_PATH")
        .output()
        .expect("vigil runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_harness_passes_on_debians_ocf_dummy() {
    if !debian_dummy_or_skip() {
        return;
    }
    let dir = scratch("dummy");
    let state = dir.path().join("dummy.state");
    let agent = OcfAgent::new(OCF_ROOT, "heartbeat", "Dummy", dir.path().join("rsc")).unwrap();
    let mut conformance = Conformance::new(params(&[("state", state.to_str().unwrap())]));
    // Dummy's validate-all refuses a state file in a directory it cannot write.
    conformance
        .bad_params
        .push(params(&[("state", "/nonexistent/vigil/dummy.state")]));
    let report = harness::check_agent(&agent, &conformance, &MockHost::new());
    assert!(report.passed(), "{report}");
    assert_eq!(
        report.verdict(checks::VALIDATE_REJECTS),
        Some(&Verdict::Passed)
    );
    assert!(!state.exists(), "the harness leaves the resource stopped");
}

#[test]
fn the_harness_passes_on_the_built_in_dummy() {
    let dir = scratch("builtin");
    let registry = vigil::registry::for_node(dir.path());
    let dummy = registry.agent("Dummy").unwrap();
    let conformance = Conformance::new(params(&[("name", "conformance")]));
    let report = harness::check_agent(dummy.agent.as_ref(), &conformance, &MockHost::new());
    assert!(report.passed(), "{report}");
}

/// An OCF agent under `<dir>/ocf/resource.d/test/NAME` whose stop leaves it running when
/// `broken_stop`, written like resource-agents' Dummy with a state file.
fn ocf_script(dir: &Path, name: &str, broken_stop: bool) -> PathBuf {
    let provider = dir.join("ocf/resource.d/test");
    fs::create_dir_all(&provider).unwrap();
    let stop = if broken_stop { ":" } else { "rm -f \"$STATE\"" };
    let script = format!(
        r#"#!/bin/sh
STATE="${{OCF_RESKEY_state:?}}"
case "$1" in
meta-data) cat <<'EOF'
<?xml version="1.0"?>
<resource-agent name="{name}" version="1.0">
<version>1.0</version>
<parameters><parameter name="state" required="1"><content type="string"/></parameter></parameters>
<actions>
<action name="start" timeout="20s"/><action name="stop" timeout="20s"/>
<action name="monitor" timeout="20s"/><action name="meta-data" timeout="5s"/>
<action name="validate-all" timeout="5s"/>
</actions>
</resource-agent>
EOF
  exit 0;;
start) touch "$STATE"; exit 0;;
stop) {stop}; exit 0;;
monitor) [ -f "$STATE" ] && exit 0; exit 7;;
validate-all) [ -n "$OCF_RESKEY_state" ] || exit 6; exit 0;;
*) exit 3;;
esac
"#
    );
    let path = provider.join(name);
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn vigil_plugin_test_passes_a_correct_ocf_agent_and_names_the_failed_check_of_a_broken_one() {
    let dir = scratch("cli");
    let state = format!("state={}", dir.path().join("s").display());
    let good = ocf_script(dir.path(), "Good", false);
    let output = vigil(&["plugin", "test", good.to_str().unwrap(), &state]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(
        shown.starts_with("Testing OCF agent test:Good (OCF_ROOT="),
        "{shown}"
    );
    assert!(
        shown.contains("PASS  start then monitor is running"),
        "{shown}"
    );
    assert!(
        shown.trim_end().ends_with("11 checks, all passed"),
        "{shown}"
    );

    let broken = ocf_script(dir.path(), "Broken", true);
    let output = vigil(&["plugin", "test", broken.to_str().unwrap(), &state]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(
            "FAIL  stop then monitor is not running: returned OCF_SUCCESS (0) (Broken monitor: \
             OCF_SUCCESS (0)), expected OCF_NOT_RUNNING (7)"
        ),
        "{shown}"
    );
    // The broken agent left its state behind; clean it so the scratch dir goes.
    let _ = fs::remove_file(dir.path().join("s"));
}

#[test]
fn vigil_plugin_test_refuses_a_bad_request_with_exit_2() {
    let output = vigil(&["plugin", "test", "NoSuchAgent"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "vigil plugin test: NoSuchAgent is neither a plugin file (.so, .wasm), a built-in \
         agent, nor a script\n"
    );
    let output = vigil(&["plugin", "test", "Dummy", "name"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "vigil plugin test: parameter `name` is not NAME=VALUE\n"
    );
}

#[test]
fn vigil_plugins_lists_the_built_ins_and_fails_on_a_refused_file() {
    let output = vigil(&["plugins"]);
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    let header = shown.lines().next().unwrap();
    assert!(header.starts_with("KIND"), "{shown}");
    for (kind, name) in [
        ("medium", "ucast"),
        ("agent", "IPaddr2"),
        ("stonith", "meatware"),
    ] {
        assert!(
            shown.lines().any(|line| {
                let cells: Vec<&str> = line.split_whitespace().collect();
                cells.len() > 3 && cells[0] == kind && cells[1] == name && cells[2] == "built-in"
            }),
            "{kind} {name} missing:\n{shown}"
        );
    }

    let dir = scratch("plugins");
    fs::write(dir.path().join("libbroken.so"), b"not a library").unwrap();
    let output = Command::new(VIGIL)
        .arg("plugins")
        .env("VIGIL_PLUGIN_PATH", dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "refused: {}: ",
            dir.path().join("libbroken.so").display()
        )),
        "{stderr}"
    );
}

#[test]
fn the_harness_passes_on_a_native_plugin_agent_loaded_through_the_abi() {
    let library = native_plugin(PluginWorkspace::TestPlugins, "native-agent");
    let mut registry = vigil_plugin_api::Registry::new();
    let info = vigil::registry::load_file(&mut registry, &library).unwrap();
    let agent = registry.agent(&info.name).unwrap();
    let dir = scratch("native");
    let state = dir.path().join("native.state");
    let mut conformance = Conformance::new(params(&[("state", state.to_str().unwrap())]));
    conformance
        .bad_params
        .push(params(&[("state", "relative/native.state")]));
    let report = harness::check_agent(agent.agent.as_ref(), &conformance, &MockHost::new());
    assert!(report.passed(), "{report}");
    assert_eq!(
        report.verdict(checks::VALIDATE_REJECTS),
        Some(&Verdict::Passed)
    );

    let output = vigil(&[
        "plugin",
        "test",
        library.to_str().unwrap(),
        &format!("state={}", state.display()),
    ]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(
        shown.starts_with(&format!(
            "Testing native ({}) agent `NativeDummy`",
            library.display()
        )),
        "{shown}"
    );
}

#[test]
fn plugins_of_every_origin_appear_in_vigil_plugins_and_stonith_l() {
    let dir = scratch("listing");
    let built = [
        native_plugin(PluginWorkspace::Examples, "native-stonith"),
        native_plugin(PluginWorkspace::Examples, "native-medium"),
        native_plugin(PluginWorkspace::TestPlugins, "native-agent"),
        wasm_plugin(PluginWorkspace::Examples, "wasm-vip"),
    ];
    for plugin in built {
        fs::copy(&plugin, dir.path().join(plugin.file_name().unwrap())).unwrap();
    }
    let with_plugins = |args: &[&str]| {
        Command::new(VIGIL)
            .args(args)
            .env("VIGIL_PLUGIN_PATH", dir.path())
            .output()
            .unwrap()
    };
    let listing = with_plugins(&["plugins"]);
    let shown = text(&listing);
    assert!(listing.status.success(), "{shown}");
    for (kind, name, origin) in [
        ("stonith", "statedir", "native", "libnative_stonith.so"),
        ("medium", "unixdgram", "native", "libnative_medium.so"),
        ("agent", "NativeDummy", "native", "libnative_agent.so"),
        ("agent", "wasm-vip", "wasm", "wasm_vip.wasm"),
    ]
    .map(|(kind, name, origin, file)| {
        let origin = format!("{origin} ({})", dir.path().join(file).display());
        (kind, name, origin)
    }) {
        assert!(
            shown.lines().any(|line| {
                let cells: Vec<&str> = line.split_whitespace().collect();
                cells.len() > 3 && cells[0] == kind && cells[1] == name && line.contains(&origin)
            }),
            "{kind} {name} from {origin} missing:\n{shown}"
        );
    }
    let types = with_plugins(&["stonith", "-L"]);
    let listed = String::from_utf8_lossy(&types.stdout);
    assert!(types.status.success(), "{}", text(&types));
    assert!(listed.lines().any(|line| line == "statedir"), "{listed}");
    assert!(listed.lines().any(|line| line == "meatware"), "{listed}");
}

#[test]
fn the_harness_passes_on_the_wasm_example_agent_through_its_grants() {
    let component = wasm_plugin(PluginWorkspace::Examples, "wasm-vip");
    let mut registry = vigil_plugin_api::Registry::new();
    let info = vigil::registry::load_file(&mut registry, &component).unwrap();
    let agent = registry.agent(&info.name).unwrap();
    let mut conformance = Conformance::new(params(&[
        ("ip", "198.18.0.100"),
        ("cidr_netmask", "24"),
        ("nic", "eth0"),
    ]));
    conformance.grants = vigil_plugin_api::Grants {
        log: true,
        address_interfaces: ["eth0".to_string()].into(),
        arp_interfaces: ["eth0".to_string()].into(),
        ..Default::default()
    };
    conformance
        .bad_params
        .push(params(&[("ip", "not-an-address"), ("nic", "eth0")]));
    let host = MockHost::new().with_address("eth0", "198.18.0.1/24");
    let report = harness::check_agent(agent.agent.as_ref(), &conformance, &host);
    assert!(report.passed(), "{report}");
    assert_eq!(
        report.verdict(checks::VALIDATE_REJECTS),
        Some(&Verdict::Passed)
    );
}
