//! What a plugin's origin costs: one monitor operation of a resource agent built in, loaded
//! from a native library through the C ABI, run in a kept WASM instance or a fresh one, and
//! Debian's OCF Dummy forked as a script (criterion); then the resident memory of an idle
//! `vigil run` with and without one WASM agent running (a table).
//!
//! Run: `cargo bench -p vigil --bench plugin_costs` (criterion's flags follow `--`). The
//! plugins are built in release from `examples/` and `host/tests/plugins/` first. Each
//! agent is started before its monitor is measured, so every monitor finds its resource
//! running: the built-in Dummy, the native NativeDummy and the OCF Dummy look at a state
//! file; wasm-vip asks the host for the addresses of its granted interface (a mock host
//! here); wasm-hostile with `do=ok` answers at once, which is the bare cost of entering
//! the sandbox.

// Shared with the other harnesses and the tests; this one uses part of each.
#[allow(dead_code)]
#[path = "../common/mod.rs"]
mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::fs;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use criterion::Criterion;
use support::plugin_build::{PluginTarget, PluginWorkspace, build_plugin};
use vigil::api::ApiClient;
use vigil::failover::LocalGroupState;
use vigil::wasm::{WasmPlugin, WasmRuntime};
use vigil_agents::ocf::OcfAgent;
use vigil_plugin_api::{AgentAction, Grants, OcfStatus, Registry, ResourceAgent, ResourceInstance};
use vigil_sdk::harness::MockHost;

/// Debian's OCF Dummy, forked for every operation.
const DEBIAN_DUMMY: &str = "/usr/lib/ocf/resource.d/heartbeat/Dummy";

/// How long a daemon idles before its memory is read.
const IDLE: Duration = Duration::from_secs(10);

fn instance(params: &[(&str, &str)], grants: Grants) -> ResourceInstance {
    ResourceInstance {
        name: "bench".to_string(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        timeout: Duration::from_secs(20),
        grants,
    }
}

/// Starts the resource and checks that monitor sees it running, so the benchmark measures
/// the answer an owner gets every interval.
fn started(agent: &dyn ResourceAgent, instance: &ResourceInstance, host: &MockHost) {
    let start = agent.run(AgentAction::Start, instance, host);
    assert_eq!(start.status, OcfStatus::Success, "{}", start.message);
    let monitor = agent.run(AgentAction::Monitor, instance, host);
    assert_eq!(monitor.status, OcfStatus::Success, "{}", monitor.message);
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    println!(
        "machine: {}; load average {}",
        common::machine_description(),
        common::load_average()
    );
    let scratch = std::env::temp_dir().join(format!("vigil-plugin-costs-{}", std::process::id()));
    fs::create_dir_all(&scratch).unwrap();

    let native = build_plugin(
        PluginWorkspace::TestPlugins,
        "native-agent",
        PluginTarget::Native,
        true,
    );
    let vip = build_plugin(
        PluginWorkspace::Examples,
        "wasm-vip",
        PluginTarget::Wasm,
        true,
    );
    let hostile = build_plugin(
        PluginWorkspace::TestPlugins,
        "wasm-hostile",
        PluginTarget::Wasm,
        true,
    );

    let host = MockHost::new().with_address("eth0", "198.18.0.1/24");
    let mut group = criterion.benchmark_group("monitor");

    let builtin = vigil::registry::for_node(&scratch);
    let dummy = Arc::clone(&builtin.agent("Dummy").unwrap().agent);
    let dummy_instance = instance(&[("name", "bench")], Grants::default());
    started(dummy.as_ref(), &dummy_instance, &host);
    group.bench_function("built-in Dummy", |b| {
        b.iter(|| dummy.run(AgentAction::Monitor, &dummy_instance, &host))
    });

    let mut loaded = Registry::new();
    let info = vigil::registry::load_file(&mut loaded, &native).unwrap();
    let native_agent = Arc::clone(&loaded.agent(&info.name).unwrap().agent);
    let state = scratch.join("native.state");
    let native_instance = instance(&[("state", state.to_str().unwrap())], Grants::default());
    started(native_agent.as_ref(), &native_instance, &host);
    group.bench_function("native NativeDummy (C ABI)", |b| {
        b.iter(|| native_agent.run(AgentAction::Monitor, &native_instance, &host))
    });

    let runtime = WasmRuntime::new().unwrap();
    let wasm_agent = |path: &Path| match vigil::wasm::compile(&runtime, path).unwrap() {
        WasmPlugin::Agent(agent) => agent,
        WasmPlugin::Stonith(_) => panic!("{} is not an agent", path.display()),
    };
    let vip_agent = wasm_agent(&vip);
    let vip_grants = Grants {
        log: true,
        address_interfaces: ["eth0".to_string()].into(),
        arp_interfaces: ["eth0".to_string()].into(),
        ..Grants::default()
    };
    let vip_instance = instance(
        &[
            ("ip", "198.18.0.100"),
            ("cidr_netmask", "24"),
            ("nic", "eth0"),
        ],
        vip_grants,
    );
    started(vip_agent.as_ref(), &vip_instance, &host);
    group.bench_function("WASM wasm-vip, kept instance", |b| {
        b.iter(|| vip_agent.run(AgentAction::Monitor, &vip_instance, &host))
    });
    group.bench_function("WASM wasm-vip, fresh instance", |b| {
        b.iter(|| vip_agent.run_on_fresh_instance(AgentAction::Monitor, &vip_instance, &host))
    });

    let hostile_agent = wasm_agent(&hostile);
    let all = Grants {
        log: true,
        address_interfaces: ["eth0".to_string()].into(),
        arp_interfaces: ["eth0".to_string()].into(),
        commands: [PathBuf::from("/bin/true")].into(),
        read_paths: [PathBuf::from("/proc")].into(),
    };
    let ok_instance = instance(&[("do", "ok")], all);
    group.bench_function("WASM empty monitor, kept instance", |b| {
        b.iter(|| hostile_agent.run(AgentAction::Monitor, &ok_instance, &host))
    });

    if Path::new(DEBIAN_DUMMY).is_file() {
        let ocf = OcfAgent::new("/usr/lib/ocf", "heartbeat", "Dummy", scratch.join("rsc")).unwrap();
        let ocf_state = scratch.join("ocf.state");
        let ocf_instance = instance(&[("state", ocf_state.to_str().unwrap())], Grants::default());
        started(&ocf, &ocf_instance, &host);
        group.bench_function("OCF Dummy (Debian, fork+exec)", |b| {
            b.iter(|| ocf.run(AgentAction::Monitor, &ocf_instance, &host))
        });
        ocf.run(AgentAction::Stop, &ocf_instance, &host);
    } else {
        println!("skipped OCF Dummy: {DEBIAN_DUMMY} is not installed (Debian's resource-agents)");
    }
    group.finish();

    idle_memory(&scratch, &hostile);
    criterion.final_summary();
    let _ = fs::remove_dir_all(&scratch);
}

/// Prints the resident memory of an idle two-node cluster's first node, without any
/// resource and with one WASM agent running (wasm-hostile answering at once).
fn idle_memory(scratch: &Path, component: &Path) {
    let grant = "{ log: true, addresses: [lo], arp: [lo], commands: [/bin/true], read: [/proc] }";
    let with_wasm = format!(
        "resource_groups:\n  - node: alpha\n    resources:\n      - {{ token: \"wasm-hostile::do=ok\", monitor: {{ interval: 10s }}, grant: {grant} }}\n"
    );
    println!(
        "\nidle memory of node alpha after {IDLE:?} (two nodes, ucast on loopback, keepalive 200ms)"
    );
    println!("| configuration | VmRSS | VmHWM |");
    println!("|---|---|---|");
    for (index, (label, plugin, groups)) in [
        ("no plugin, no resource", None, String::new()),
        (
            "one WASM agent (release build, kept instance)",
            Some(component),
            with_wasm,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = scratch.join(format!("idle-{index}"));
        let plugins = dir.join("plugins");
        fs::create_dir_all(&plugins).unwrap();
        if let Some(plugin) = plugin {
            fs::copy(plugin, plugins.join(plugin.file_name().unwrap())).unwrap();
        }
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut nodes: Vec<Child> = ["alpha", "bravo"]
            .iter()
            .enumerate()
            .map(|(index, name)| spawn_node(&dir, &plugins, port, index, name, &groups))
            .collect();
        if !groups.is_empty() {
            wait_running(&dir.join("alpha").join("vigil.sock"));
        }
        thread::sleep(IDLE);
        let status = fs::read_to_string(format!("/proc/{}/status", nodes[0].id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| "?".into())
        };
        println!("| {label} | {} | {} |", field("VmRSS:"), field("VmHWM:"));
        for node in &mut nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

/// Waits until the node behind `socket` runs its (only) group, so the agent is loaded and its
/// instance made before memory is read.
fn wait_running(socket: &Path) {
    for _ in 0..300 {
        let running = ApiClient::connect(socket)
            .and_then(|mut client| client.status())
            .is_ok_and(|report| {
                report
                    .failover
                    .groups
                    .first()
                    .is_some_and(|g| g.local == LocalGroupState::Running)
            });
        if running {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("the WASM agent's group never ran on {}", socket.display());
}

fn spawn_node(
    dir: &Path,
    plugins: &Path,
    port: u16,
    index: usize,
    name: &str,
    groups: &str,
) -> Child {
    let node_dir = dir.join(name);
    fs::create_dir_all(&node_dir).unwrap();
    let address = format!("127.0.0.{}", index + 1);
    let peer = format!("127.0.0.{}", 2 - index);
    let yaml = format!(
        "node_name: {name}\nnodes: [alpha, bravo]\nkeepalive: 200ms\ndeadtime: 1s\n\
         warntime: 500ms\ninitdead: 2s\nudpport: {port}\n\
         media:\n  - ucast: lo {peer} bind={address}\n\
         auth: {{ method: sha1, key: bench-secret }}\nstate_dir: {}\napi_socket: {}\n{groups}",
        node_dir.join("state").display(),
        node_dir.join("vigil.sock").display(),
    );
    let config = node_dir.join("cluster.yaml");
    // It holds the cluster's key: readable by root only, as vigil demands.
    support::write_file(&config, &yaml, 0o600);
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["run", "--config"])
        .arg(&config)
        .env("VIGIL_PLUGIN_PATH", plugins)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(node_dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap()
}
