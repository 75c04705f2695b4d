//! WASM plugins, loaded and run the way the daemon does: the sandbox refuses what was not
//! granted (naming the capability), a plugin that loops, hoards memory or panics fails the
//! operation and the next call runs on a fresh instance, a looping instance holds up no
//! other resource, the SDK's example agent manages a virtual IP through its grants, and a
//! file that is not a component is refused with a message that says so. A WASM STONITH
//! device registers its type, resets only its hosts, survives its own panic (the device is
//! reconfigured on a fresh instance) and is driven by the `stonith` tool from the plugin
//! path.
//!
//! The plugins are built from `examples/wasm-vip` and `host/tests/plugins/wasm-hostile` and
//! `wasm-stonith` for `wasm32-wasip2` by the shared support code, and compiled once per test
//! binary.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use support::plugin_build::{PluginWorkspace, wasm_plugin};
use vigil::agent_host::SystemHost;
use vigil::wasm::{self, WasmAgent, WasmLoadError, WasmPlugin, WasmRuntime};
use vigil_agents::mock_host::MockHost;
use vigil_plugin_api::{
    AgentAction, Capability, DeviceInfo, Grants, OcfStatus, OperationOutcome, PluginKind,
    PluginOrigin, Registry, ResetRequest, ResourceAgent, ResourceInstance, StonithCode,
    StonithDevice, StonithError,
};

/// The one engine of this test process, as the daemon has one.
fn runtime() -> &'static WasmRuntime {
    static RUNTIME: OnceLock<WasmRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| WasmRuntime::new().expect("the WASM engine starts"))
}

fn compile_agent(path: &std::path::Path) -> Arc<WasmAgent> {
    match wasm::compile(runtime(), path) {
        Ok(WasmPlugin::Agent(agent)) => agent,
        Ok(WasmPlugin::Stonith(_)) => panic!("{} is a STONITH plugin", path.display()),
        Err(error) => panic!("cannot load {}: {error}", path.display()),
    }
}

fn hostile_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| wasm_plugin(PluginWorkspace::TestPlugins, "wasm-hostile"))
}

fn vip_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| wasm_plugin(PluginWorkspace::Examples, "wasm-vip"))
}

/// The hostile agent, compiled once; tests use distinct resource names, so each has its own
/// kept instance.
fn hostile() -> &'static WasmAgent {
    static AGENT: OnceLock<Arc<WasmAgent>> = OnceLock::new();
    AGENT.get_or_init(|| compile_agent(hostile_path()))
}

fn vip() -> &'static WasmAgent {
    static AGENT: OnceLock<Arc<WasmAgent>> = OnceLock::new();
    AGENT.get_or_init(|| compile_agent(vip_path()))
}

/// Every kind granted, with nothing specific: each test adds what it allows.
fn every_kind() -> Grants {
    Grants {
        log: true,
        address_interfaces: ["eth0".to_string()].into(),
        arp_interfaces: ["eth0".to_string()].into(),
        commands: [PathBuf::from("/bin/true")].into(),
        read_paths: [PathBuf::from("/proc/self/status")].into(),
    }
}

fn instance(name: &str, params: &[(&str, &str)], grants: Grants) -> ResourceInstance {
    ResourceInstance {
        name: name.to_string(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        timeout: Duration::from_secs(20),
        grants,
    }
}

fn expect(outcome: &OperationOutcome, status: OcfStatus, text: &str) {
    assert_eq!(outcome.status, status, "{outcome:?}");
    assert!(
        outcome.message.contains(text),
        "expected {text:?} in {:?}",
        outcome.message
    );
}

/// Runs `do=ok` on `resource` and returns which call of its instance that was.
fn call_number(resource: &str) -> u64 {
    let outcome = hostile().monitor(&instance(resource, &[], every_kind()), &MockHost::new());
    assert_eq!(outcome.status, OcfStatus::Success, "{outcome:?}");
    outcome
        .message
        .strip_prefix("call ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected answer {:?}", outcome.message))
}

#[test]
fn the_hostile_agent_declares_every_capability_and_keeps_its_instance() {
    let agent = hostile();
    assert_eq!(agent.capabilities(), Capability::ALL.to_vec());
    assert_eq!(agent.info().kind, PluginKind::ResourceAgent);
    assert!(matches!(agent.info().origin, PluginOrigin::Wasm { .. }));
    assert_eq!(call_number("kept"), 1);
    assert_eq!(call_number("kept"), 2, "the instance is kept between calls");
    assert_eq!(
        call_number("kept-other"),
        1,
        "each resource has its own instance"
    );
}

#[test]
fn reading_a_file_outside_the_grant_is_refused_naming_the_capability() {
    let scratch = support::ScratchDir::new(&format!("vigil-wasm-read-{}", std::process::id()));
    let granted = scratch.path().join("granted");
    std::fs::create_dir(&granted).unwrap();
    std::fs::write(granted.join("state"), "running\n").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", granted.join("escape")).unwrap();
    let grants = Grants {
        read_paths: [granted.canonicalize().unwrap()].into(),
        ..every_kind()
    };
    let host = SystemHost::new("read-test");
    let read = |path: &str| {
        hostile().start(
            &instance("read", &[("do", "read"), ("path", path)], grants.clone()),
            &host,
        )
    };

    let refused = read("/etc/shadow");
    expect(
        &refused,
        OcfStatus::ErrPerm,
        "capability not granted: read /etc/shadow",
    );
    let inside = granted.join("state");
    expect(
        &read(inside.to_str().unwrap()),
        OcfStatus::Success,
        "read 8 bytes",
    );
    let escape = granted.join("escape");
    expect(
        &read(escape.to_str().unwrap()),
        OcfStatus::ErrPerm,
        "(resolves to /etc/hostname)",
    );
    let dotdot = format!("{}/../../../etc/passwd", granted.display());
    expect(
        &read(&dotdot),
        OcfStatus::ErrPerm,
        "capability not granted: read",
    );
}

#[test]
fn running_a_command_not_granted_is_refused_naming_the_capability() {
    let host = SystemHost::new("command-test");
    let run = |command: &str| {
        hostile().start(
            &instance(
                "command",
                &[("do", "command"), ("command", command)],
                every_kind(),
            ),
            &host,
        )
    };
    expect(
        &run("/bin/sh -c id"),
        OcfStatus::ErrPerm,
        "capability not granted: commands /bin/sh",
    );
    expect(
        &run("true"),
        OcfStatus::ErrPerm,
        "capability not granted: commands true",
    );
    expect(&run("/bin/true"), OcfStatus::Success, "exit Some(0)");
}

#[test]
fn adding_an_address_on_an_interface_not_granted_is_refused_naming_the_capability() {
    let host = MockHost::new()
        .with_address("eth0", "198.18.0.1/24")
        .with_address("eth1", "198.18.1.1/24");
    let add = |nic: &str| {
        hostile().start(
            &instance(
                "address",
                &[("do", "add-address"), ("nic", nic), ("ip", "198.18.0.50")],
                every_kind(),
            ),
            &host,
        )
    };
    expect(
        &add("eth1"),
        OcfStatus::ErrPerm,
        "capability not granted: addresses on eth1",
    );
    let ip: IpAddr = "198.18.0.50".parse().unwrap();
    assert!(!host.has_address("eth1", ip));
    expect(&add("eth0"), OcfStatus::Success, "Changed");
    assert!(host.has_address("eth0", ip));

    let listed = hostile().monitor(
        &instance("address", &[("do", "addresses")], every_kind()),
        &host,
    );
    assert_eq!(listed.status, OcfStatus::Success, "{listed:?}");
    assert!(listed.message.contains("eth0=198.18.0.1/24"), "{listed:?}");
    assert!(
        !listed.message.contains("eth1"),
        "addresses on interfaces not granted are hidden: {listed:?}"
    );

    let nothing = hostile().monitor(
        &instance("address", &[("do", "addresses")], Grants::default()),
        &host,
    );
    expect(
        &nothing,
        OcfStatus::ErrPerm,
        "capability not granted: addresses",
    );
}

#[test]
fn an_endless_loop_fails_at_its_deadline_and_the_next_call_gets_a_fresh_instance() {
    assert_eq!(call_number("looping"), 1);
    assert_eq!(call_number("looping"), 2);
    let mut looping = instance("looping", &[("do", "loop")], every_kind());
    looping.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let outcome = hostile().monitor(&looping, &MockHost::new());
    let elapsed = started.elapsed();
    expect(
        &outcome,
        OcfStatus::ErrGeneric,
        "ran past its deadline of 300ms",
    );
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
        "the loop ended after {elapsed:?}"
    );
    assert_eq!(call_number("looping"), 1, "a fresh instance after the trap");
}

#[test]
fn a_memory_bomb_fails_at_the_limit_and_the_next_call_gets_a_fresh_instance() {
    assert_eq!(call_number("hoarding"), 1);
    let outcome = hostile().start(
        &instance("hoarding", &[("do", "allocate")], every_kind()),
        &MockHost::new(),
    );
    expect(
        &outcome,
        OcfStatus::ErrGeneric,
        "exceeded its memory limit of 64 MiB",
    );
    assert_eq!(
        call_number("hoarding"),
        1,
        "a fresh instance after the trap"
    );
}

#[test]
fn a_panic_fails_the_operation_with_its_message_and_the_next_call_works() {
    assert_eq!(call_number("panicking"), 1);
    let outcome = hostile().stop(
        &instance("panicking", &[("do", "panic")], every_kind()),
        &MockHost::new(),
    );
    expect(&outcome, OcfStatus::ErrGeneric, "panicked: panicked at");
    assert!(
        outcome.message.contains("hostile agent panics on purpose"),
        "{outcome:?}"
    );
    assert_eq!(
        call_number("panicking"),
        1,
        "a fresh instance after the trap"
    );
}

#[test]
fn a_looping_resource_holds_up_no_other_resource_of_the_same_agent() {
    // Compile the plugin and make the other resource's instance before the loop starts.
    assert_eq!(call_number("unhindered"), 1);
    let looper = thread::spawn(|| {
        let mut looping = instance("stuck", &[("do", "loop")], every_kind());
        looping.timeout = Duration::from_secs(2);
        hostile().monitor(&looping, &MockHost::new())
    });
    // Let the loop start, then ask another resource of the same plugin.
    thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(call_number("unhindered"), 2);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "another resource waited {:?} for the looping one",
        started.elapsed()
    );
    let outcome = looper.join().unwrap();
    expect(
        &outcome,
        OcfStatus::ErrGeneric,
        "ran past its deadline of 2s",
    );
}

#[test]
fn a_fresh_instance_runs_one_operation_without_keeping_anything() {
    let once = hostile().run_on_fresh_instance(
        AgentAction::Monitor,
        &instance("fresh", &[], every_kind()),
        &MockHost::new(),
    );
    expect(&once, OcfStatus::Success, "call 1 of this instance");
    let again = hostile().run_on_fresh_instance(
        AgentAction::Monitor,
        &instance("fresh", &[], every_kind()),
        &MockHost::new(),
    );
    expect(&again, OcfStatus::Success, "call 1 of this instance");
}

#[test]
fn the_example_vip_agent_manages_an_address_through_its_grants() {
    let agent = vip();
    assert_eq!(agent.info().name, "wasm-vip");
    assert_eq!(
        agent.capabilities(),
        vec![
            Capability::Log,
            Capability::Addresses,
            Capability::GratuitousArp
        ]
    );
    assert!(
        agent
            .metadata()
            .contains("<resource-agent name=\"wasm-vip\"")
    );

    let params = agent
        .positional_params(&["198.18.0.100/24/eth0".to_string()])
        .unwrap();
    assert_eq!(params["ip"], "198.18.0.100");
    assert_eq!(params["cidr_netmask"], "24");
    assert_eq!(params["nic"], "eth0");
    assert!(agent.positional_params(&[]).is_err());

    let grants = Grants {
        log: true,
        address_interfaces: BTreeSet::from(["eth0".to_string()]),
        arp_interfaces: BTreeSet::from(["eth0".to_string()]),
        ..Grants::default()
    };
    let resource = ResourceInstance {
        name: "wasm-vip_198.18.0.100".into(),
        params,
        timeout: Duration::from_secs(20),
        grants,
    };
    let host = MockHost::new()
        .with_address("eth0", "198.18.0.1/24")
        .with_interface("eth1");
    let vip: IpAddr = "198.18.0.100".parse().unwrap();

    expect(&agent.validate(&resource, &host), OcfStatus::Success, "");
    expect(
        &agent.monitor(&resource, &host),
        OcfStatus::NotRunning,
        "not configured",
    );
    expect(
        &agent.start(&resource, &host),
        OcfStatus::Success,
        "198.18.0.100/24 added to eth0",
    );
    assert!(host.has_address("eth0", vip));
    let arps = host.arps();
    assert_eq!(arps.len(), 1, "{arps:?}");
    assert_eq!(arps[0].interface, "eth0");
    assert_eq!(arps[0].address, vip);
    assert_eq!(arps[0].count, 5);
    expect(
        &agent.start(&resource, &host),
        OcfStatus::Success,
        "already on eth0",
    );
    expect(
        &agent.monitor(&resource, &host),
        OcfStatus::Success,
        "is on eth0",
    );
    expect(&agent.stop(&resource, &host), OcfStatus::Success, "removed");
    assert!(!host.has_address("eth0", vip));
    expect(
        &agent.stop(&resource, &host),
        OcfStatus::Success,
        "was not configured",
    );
    expect(
        &agent.monitor(&resource, &host),
        OcfStatus::NotRunning,
        "not configured",
    );
    assert!(
        host.logs()
            .iter()
            .any(|(_, line)| line.contains("added to eth0")),
        "the agent logs through its grant: {:?}",
        host.logs()
    );

    let on_eth1 = ResourceInstance {
        name: "wasm-vip_198.18.1.100".into(),
        params: agent
            .positional_params(&["198.18.1.100/24/eth1".to_string()])
            .unwrap(),
        ..resource.clone()
    };
    expect(
        &agent.start(&on_eth1, &host),
        OcfStatus::ErrGeneric,
        "capability not granted: addresses on eth1",
    );

    let bad = ResourceInstance {
        name: "wasm-vip_bad".into(),
        params: [("ip".to_string(), "300.1.1.1".to_string())].into(),
        ..resource
    };
    expect(
        &agent.validate(&bad, &host),
        OcfStatus::ErrConfigured,
        "300.1.1.1",
    );
}

#[test]
fn load_registers_the_component_as_a_wasm_agent() {
    let mut registry = Registry::new();
    let info = wasm::load(runtime(), vip_path(), &mut registry).unwrap();
    assert_eq!(info.kind, PluginKind::ResourceAgent);
    assert_eq!(info.name, "wasm-vip");
    assert_eq!(info.version, "0.1.0");
    let registered = registry.agent("wasm-vip").unwrap();
    assert_eq!(
        registered.info.origin,
        PluginOrigin::Wasm {
            path: vip_path().clone()
        }
    );
    let again = wasm::load(runtime(), vip_path(), &mut registry).unwrap_err();
    assert!(matches!(again, WasmLoadError::Registry(_)), "{again}");
}

#[test]
fn a_file_that_is_not_a_component_is_refused_with_a_clear_message() {
    let scratch = support::ScratchDir::new(&format!("vigil-wasm-bad-{}", std::process::id()));
    let script = scratch.path().join("script.wasm");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let error = wasm::load(runtime(), &script, &mut Registry::new()).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("script.wasm is not a WebAssembly component"),
        "{text}"
    );
    assert!(text.contains("not WebAssembly at all"), "{text}");

    let module = scratch.path().join("module.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    let text = wasm::load(runtime(), &module, &mut Registry::new())
        .unwrap_err()
        .to_string();
    assert!(text.contains("core WebAssembly module"), "{text}");
    assert!(text.contains("wasm32-wasip2"), "{text}");

    let missing = scratch.path().join("missing.wasm");
    let text = wasm::load(runtime(), &missing, &mut Registry::new())
        .unwrap_err()
        .to_string();
    assert!(text.contains("cannot read WASM plugin"), "{text}");
}

/// The device type `host/tests/plugins/wasm-stonith` provides.
const WASM_NULL: &str = "wasm-null";

fn stonith_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| wasm_plugin(PluginWorkspace::TestPlugins, "wasm-stonith"))
}

/// A registry holding only the WASM STONITH plugin, loaded as the daemon loads it; compiled
/// once, each test creates devices of its own.
fn stonith_registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = Registry::new();
        wasm::load(runtime(), stonith_path(), &mut registry)
            .unwrap_or_else(|e| panic!("cannot load {}: {e}", stonith_path().display()));
        registry
    })
}

/// A new `wasm-null` device, configured with `hostlist` when given.
fn null_device(hostlist: Option<&str>) -> Box<dyn StonithDevice> {
    let mut device = stonith_registry()
        .stonith_device(WASM_NULL)
        .unwrap_or_else(|e| panic!("cannot create a {WASM_NULL} device: {e}"));
    if let Some(hostlist) = hostlist {
        device
            .configure(&[("hostlist".to_string(), hostlist.to_string())])
            .unwrap_or_else(|e| panic!("cannot configure hostlist={hostlist:?}: {e}"));
    }
    device
}

fn expect_stonith_error(result: Result<(), StonithError>, code: StonithCode, text: &str) {
    let error = result.expect_err("the device call should fail");
    assert_eq!(error.code, code, "{error:?}");
    assert!(
        error.message.contains(text),
        "expected {text:?} in {:?}",
        error.message
    );
}

#[test]
fn load_registers_the_wasm_stonith_plugin_and_its_device_type() {
    let mut registry = Registry::new();
    let info = wasm::load(runtime(), stonith_path(), &mut registry).unwrap();
    assert_eq!(info.kind, PluginKind::StonithDevice);
    assert_eq!(info.name, WASM_NULL);
    assert_eq!(info.version, "0.1.0");
    assert!(info.description.contains("null"), "{info:?}");
    assert_eq!(registry.stonith_types(), vec![WASM_NULL.to_string()]);
    let factory = registry.stonith_plugin(WASM_NULL).unwrap();
    assert_eq!(
        factory.info().origin,
        PluginOrigin::Wasm {
            path: stonith_path().clone()
        }
    );
    let unknown = registry.stonith_device("wasm-nothing").err().unwrap();
    assert_eq!(unknown.code, StonithCode::Oops, "{unknown:?}");
    let again = wasm::load(runtime(), stonith_path(), &mut registry).unwrap_err();
    assert!(matches!(again, WasmLoadError::Registry(_)), "{again}");
}

#[test]
fn a_wasm_device_resets_its_listed_hosts_and_refuses_others_with_bad_host() {
    let mut device = null_device(None);
    assert_eq!(device.config_names(), vec!["hostlist".to_string()]);
    expect_stonith_error(device.status(), StonithCode::Invalid, "not configured yet");
    expect_stonith_error(
        device.configure(&[("ipaddr".to_string(), "198.18.0.9".to_string())]),
        StonithCode::Invalid,
        "missing parameter `hostlist`",
    );
    expect_stonith_error(
        device.configure(&[("hostlist".to_string(), " , ".to_string())]),
        StonithCode::BadConfig,
        "names no host",
    );

    device
        .configure(&[("hostlist".to_string(), "Node1, node2".to_string())])
        .unwrap();
    assert_eq!(device.status(), Ok(()));
    assert_eq!(device.hosts().unwrap(), vec!["node1", "node2"]);
    for request in [
        ResetRequest::Reset,
        ResetRequest::PowerOn,
        ResetRequest::PowerOff,
    ] {
        assert_eq!(device.reset(request, "node2"), Ok(()), "{request}");
    }
    expect_stonith_error(
        device.reset(ResetRequest::Reset, "node9"),
        StonithCode::BadHost,
        "host `node9` is not in its hostlist",
    );
    assert_eq!(device.reset(ResetRequest::Reset, "node1"), Ok(()));
}

#[test]
fn a_panic_in_reset_is_s_oops_with_its_message_and_the_device_is_reconfigured_on_a_fresh_instance()
{
    let mut device = null_device(Some("alpha beta"));
    for _ in 0..2 {
        let error = device.reset(ResetRequest::Reset, "panic").unwrap_err();
        assert_eq!(error.code, StonithCode::Oops, "{error:?}");
        for text in [
            "WASM STONITH device `wasm-null` panicked: panicked at",
            "panics on purpose resetting `panic`",
            "the next call gets a fresh instance",
        ] {
            assert!(error.message.contains(text), "{text:?} in {error:?}");
        }
        // A fresh instance's device is unconfigured (`S_INVAL`); these answers prove the last
        // configure was replayed on it.
        assert_eq!(device.hosts().unwrap(), vec!["alpha", "beta"]);
        assert_eq!(device.status(), Ok(()));
        assert_eq!(device.reset(ResetRequest::PowerOff, "beta"), Ok(()));
        expect_stonith_error(
            device.reset(ResetRequest::Reset, "gamma"),
            StonithCode::BadHost,
            "gamma",
        );
    }

    let mut unconfigured = null_device(None);
    let error = unconfigured
        .reset(ResetRequest::Reset, "panic")
        .unwrap_err();
    assert_eq!(error.code, StonithCode::Oops, "{error:?}");
    expect_stonith_error(
        unconfigured.status(),
        StonithCode::Invalid,
        "not configured yet",
    );
}

#[test]
fn a_wasm_device_answers_info_like_cluster_glues_null() {
    let mut device = null_device(None);
    assert_eq!(
        device.info(DeviceInfo::DeviceId).as_deref(),
        Some("WASM NULL STONITH device")
    );
    assert_eq!(
        device.info(DeviceInfo::DeviceName),
        None,
        "no name before configure"
    );
    let description = device.info(DeviceInfo::Description).unwrap();
    assert!(description.contains("FOR TESTING ONLY!"), "{description}");
    let url = device.info(DeviceInfo::Url).unwrap();
    assert!(url.starts_with("https://"), "{url}");
    let parameters = device.info(DeviceInfo::ConfigXml).unwrap();
    assert!(parameters.starts_with("<parameters>"), "{parameters}");
    assert!(
        parameters.contains("<parameter name=\"hostlist\" unique=\"0\" required=\"1\">"),
        "{parameters}"
    );
    assert!(parameters.ends_with("</parameters>"), "{parameters}");

    device
        .configure(&[("hostlist".to_string(), "a b".to_string())])
        .unwrap();
    assert_eq!(device.info(DeviceInfo::DeviceName).as_deref(), Some("a b"));
}

/// Runs `vigil stonith ARGS` with only `plugins` on the plugin path and stdin from
/// `/dev/null` (so its log lines go to syslog, not stderr), as a script would.
fn vigil_stonith(plugins: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("stonith")
        .args(args)
        .env("VIGIL_PLUGIN_PATH", plugins)
        .env_remove("hostlist")
        .stdin(Stdio::null())
        .output()
        .expect("vigil runs")
}

#[test]
fn the_stonith_tool_lists_and_drives_a_wasm_device_from_the_plugin_path() {
    let scratch =
        support::ScratchDir::new(&format!("vigil-wasm-stonith-cli-{}", std::process::id()));
    let built = stonith_path();
    std::fs::copy(built, scratch.path().join(built.file_name().unwrap())).unwrap();
    let stdout = |output: &Output| String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = |output: &Output| String::from_utf8_lossy(&output.stderr).into_owned();

    let types = vigil_stonith(scratch.path(), &["-L"]);
    assert_eq!(types.status.code(), Some(0), "{}", stderr(&types));
    let listed: Vec<&str> = std::str::from_utf8(&types.stdout)
        .unwrap()
        .lines()
        .collect();
    assert!(listed.contains(&WASM_NULL), "{listed:?}");
    assert!(
        listed.contains(&"null"),
        "the built-ins are listed beside it: {listed:?}"
    );

    let hosts = vigil_stonith(scratch.path(), &["-t", WASM_NULL, "hostlist=a b", "-l"]);
    assert_eq!(hosts.status.code(), Some(0), "{}", stderr(&hosts));
    assert_eq!(stdout(&hosts), "a\nb\n");

    // One run does what the tool does in order: status, the host list, then the reset.
    let reset = vigil_stonith(
        scratch.path(),
        &["-t", WASM_NULL, "-p", "a b", "-S", "-l", "B"],
    );
    assert_eq!(reset.status.code(), Some(0), "{}", stderr(&reset));
    assert_eq!(stdout(&reset), "a\nb\n");
    let refused = vigil_stonith(scratch.path(), &["-t", WASM_NULL, "hostlist=a b", "c"]);
    assert_eq!(
        refused.status.code(),
        Some(StonithCode::BadHost.number()),
        "{}",
        stderr(&refused)
    );
    let panicked = vigil_stonith(scratch.path(), &["-t", WASM_NULL, "hostlist=a b", "panic"]);
    assert_eq!(
        panicked.status.code(),
        Some(StonithCode::Oops.number()),
        "{}",
        stderr(&panicked)
    );

    let metadata = vigil_stonith(scratch.path(), &["-t", WASM_NULL, "-m"]);
    let text = stdout(&metadata);
    assert_eq!(metadata.status.code(), Some(0), "{}", stderr(&metadata));
    for part in [
        "<resource-agent name=\"wasm-null\">",
        "<shortdesc lang=\"en\">WASM NULL STONITH device</shortdesc>",
        "<parameter name=\"hostlist\" unique=\"0\" required=\"1\">",
    ] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
}
