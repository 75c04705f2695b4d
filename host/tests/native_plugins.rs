//! Native dynamic plugins end to end: real `cdylib`s built with the SDK (the examples and the
//! misbehaving test plugins), loaded through `vigil::registry::native::load`, and driven
//! through the contracts the daemon uses.
//!
//! Proves: a library built for another ABI is refused naming both versions and nothing in it
//! runs; a library that is not a vigil plugin, and a file that is not a library, are refused
//! with a message naming the file; a panic in a native agent fails that operation and the
//! process carries on; the example STONITH device and medium work across the boundary.

mod support;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use support::plugin_build::{PluginWorkspace, native_plugin};
use support::{ScratchDir, unique_token, wait_for};
use vigil::registry::native::{NativeLoadError, load};
use vigil_agents::mock_host::{MockHost, check_metadata};
use vigil_plugin_api::abi::ABI_VERSION;
use vigil_plugin_api::{
    AgentAction, DeviceInfo, Grants, LogLevel, Medium, MediumError, MediumSpec, OcfStatus,
    PeerAddress, PluginKind, PluginOrigin, Registry, ResetRequest, ResourceInstance, StonithCode,
    positional_params,
};

/// A scratch directory unique to this test.
fn scratch(label: &str) -> ScratchDir {
    let (pid, n) = unique_token();
    ScratchDir::new(&format!("vigil-native-{label}-{pid}-{n}"))
}

/// A resource instance with `params`.
fn instance(name: &str, params: &[(&str, &str)]) -> ResourceInstance {
    ResourceInstance {
        name: name.to_string(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        timeout: Duration::from_secs(20),
        grants: Grants::default(),
    }
}

/// A shared library of the system that is certainly not a vigil plugin: the C library this
/// test process itself runs with, found in its own memory map so no distribution's layout
/// is assumed.
fn system_library() -> PathBuf {
    let maps = fs::read_to_string("/proc/self/maps").expect("/proc/self/maps is readable");
    let libraries: Vec<PathBuf> = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|path| path.starts_with('/') && path.contains(".so"))
        .map(PathBuf::from)
        .collect();
    let is_libc = |p: &&PathBuf| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("libc.so") || n.starts_with("libc-"))
    };
    libraries
        .iter()
        .find(is_libc)
        .or(libraries.first())
        .cloned()
        .expect("this test process maps at least one shared library")
}

#[test]
fn a_plugin_built_for_another_abi_is_refused_naming_both_versions_without_being_called() {
    let path = native_plugin(PluginWorkspace::TestPlugins, "native-abi-mismatch");
    let mut registry = Registry::new();
    // The library's entry point aborts the process: reaching the assertions proves it was
    // never called.
    let error = load(&path, &mut registry).unwrap_err();
    match &error {
        NativeLoadError::AbiMismatch {
            path: refused,
            found,
            expected,
            ..
        } => {
            assert_eq!(refused, &path);
            assert_eq!((*found, *expected), (ABI_VERSION + 1, ABI_VERSION));
        }
        other => panic!("expected an ABI mismatch, got {other:?}"),
    }
    let message = error.to_string();
    let both = format!(
        "was built for plugin ABI {}, this vigil speaks ABI {}",
        ABI_VERSION + 1,
        ABI_VERSION
    );
    assert!(
        message.starts_with(&path.display().to_string()),
        "{message}"
    );
    assert!(message.contains(&both), "{message}");
    assert!(
        message.contains("rebuild it against vigil-sdk"),
        "{message}"
    );
    assert!(registry.list().is_empty());
}

#[test]
fn a_shared_library_that_is_not_a_vigil_plugin_is_refused_with_a_clear_message() {
    let path = system_library();
    let mut registry = Registry::new();
    let error = load(&path, &mut registry).unwrap_err();
    assert!(
        matches!(&error, NativeLoadError::NotAPlugin { symbol, .. }
            if *symbol == "vigil_plugin_abi_version"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "{} is not a vigil plugin: it has no `vigil_plugin_abi_version` symbol (build it \
             with vigil-sdk's export macros)",
            path.display()
        )
    );
    assert!(registry.list().is_empty());
}

#[test]
fn a_file_that_is_not_a_library_is_refused_naming_it() {
    let dir = scratch("not-elf");
    let path = dir.path().join("libfake.so");
    fs::write(&path, "this is text, not an ELF object\n").unwrap();
    let error = load(&path, &mut Registry::new()).unwrap_err();
    assert!(matches!(error, NativeLoadError::Open { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "{} cannot be loaded as a native plugin: ",
            path.display()
        )),
        "{message}"
    );
    let missing = dir.path().join("libabsent.so");
    assert!(matches!(
        load(&missing, &mut Registry::new()),
        Err(NativeLoadError::Open { .. })
    ));
}

#[test]
fn a_panicking_native_agent_fails_its_operation_and_the_process_carries_on() {
    let path = native_plugin(PluginWorkspace::TestPlugins, "native-panicking");
    let mut registry = Registry::new();
    let info = load(&path, &mut registry).unwrap();
    assert_eq!(info.kind, PluginKind::ResourceAgent);
    let agent = Arc::clone(&registry.agent("Panicking").unwrap().agent);
    let host = MockHost::new();

    let monitor_panics = instance("p1", &[("panic_in", "monitor")]);
    let outcome = agent.run(AgentAction::Monitor, &monitor_panics, &host);
    assert_eq!(outcome.status, OcfStatus::ErrGeneric);
    assert_eq!(outcome.message, "plugin panicked: monitor panics as asked");

    // The next call into the same library works, and so does the same panic again.
    let outcome = agent.run(AgentAction::Validate, &monitor_panics, &host);
    assert_eq!(outcome.status, OcfStatus::Success, "{}", outcome.message);
    assert_eq!(outcome.message, "validate-all did not panic");
    let outcome = agent.run(AgentAction::Monitor, &monitor_panics, &host);
    assert_eq!(outcome.status, OcfStatus::ErrGeneric);

    // Panics on several worker threads at once, as the agent runner would call.
    let all_panic = instance("p2", &[("panic_in", "all")]);
    std::thread::scope(|threads| {
        for action in [AgentAction::Start, AgentAction::Stop, AgentAction::Monitor] {
            let (agent, all_panic, host) = (&agent, &all_panic, &host);
            threads.spawn(move || {
                let outcome = agent.run(action, all_panic, host);
                assert_eq!(outcome.status, OcfStatus::ErrGeneric);
                assert_eq!(
                    outcome.message,
                    format!("plugin panicked: {action} panics as asked")
                );
            });
        }
    });

    let refusal = agent.positional_params(&["x".to_string()]).unwrap_err();
    assert!(
        refusal.starts_with("plugin panicked: positional parameters"),
        "{refusal}"
    );
    assert!(check_metadata(&agent.metadata()).is_ok());
}

#[test]
fn a_native_agent_runs_its_resource_and_reaches_the_daemons_host() {
    let path = native_plugin(PluginWorkspace::TestPlugins, "native-agent");
    let mut registry = Registry::new();
    let info = load(&path, &mut registry).unwrap();
    assert_eq!(info.name, "NativeDummy");
    assert_eq!(
        info.origin,
        PluginOrigin::NativeDynamic { path: path.clone() }
    );
    let agent = Arc::clone(&registry.agent("NativeDummy").unwrap().agent);
    let summary = check_metadata(&agent.metadata()).unwrap();
    assert_eq!(summary.agent_name, "NativeDummy");
    assert_eq!(summary.parameters, ["state"]);

    let dir = scratch("agent");
    let state = dir.path().join("r1.state");
    let state_text = state.to_str().unwrap();
    assert_eq!(
        agent.positional_params(&[state_text.to_string()]),
        Ok([("state".to_string(), state_text.to_string())].into())
    );
    let resource = instance("r1", &[("state", state_text)]);
    let host = MockHost::new();
    let run = |action| agent.run(action, &resource, &host);

    assert_eq!(run(AgentAction::Validate).status, OcfStatus::Success);
    assert_eq!(run(AgentAction::Monitor).status, OcfStatus::NotRunning);
    let started = run(AgentAction::Start);
    assert_eq!(started.status, OcfStatus::Success, "{}", started.message);
    assert_eq!(started.message, format!("created {}", state.display()));
    assert_eq!(fs::read_to_string(&state).unwrap(), "r1\n");
    assert_eq!(run(AgentAction::Monitor).status, OcfStatus::Success);
    assert_eq!(run(AgentAction::Stop).status, OcfStatus::Success);
    assert!(!state.exists());
    assert_eq!(run(AgentAction::Monitor).status, OcfStatus::NotRunning);
    assert_eq!(
        host.logs(),
        [
            (LogLevel::Info, "r1 started".to_string()),
            (LogLevel::Info, "r1 stopped".to_string())
        ]
    );

    let relative = instance("r2", &[("state", "relative/path")]);
    assert_eq!(
        agent.run(AgentAction::Start, &relative, &host).status,
        OcfStatus::ErrConfigured
    );

    // The same library a second time is refused by name, not loaded twice.
    let again = load(&path, &mut registry).unwrap_err();
    assert!(
        matches!(again, NativeLoadError::Register { .. }),
        "{again:?}"
    );
    assert!(again.to_string().contains("NativeDummy"), "{again}");
}

/// Waits for a child the device should have killed, and returns how it ended.
fn wait_killed(child: &mut std::process::Child) -> std::process::ExitStatus {
    wait_for(
        "the node's process to die",
        Duration::from_secs(10),
        || match child.try_wait() {
            Ok(Some(status)) => Ok(status),
            Ok(None) => Err("still running".to_string()),
            Err(e) => Err(e.to_string()),
        },
    )
}

#[test]
fn the_example_native_stonith_device_powers_hosts_through_its_state_directory() {
    let path = native_plugin(PluginWorkspace::Examples, "native-stonith");
    let mut registry = Registry::new();
    let info = load(&path, &mut registry).unwrap();
    assert_eq!(
        (info.kind, info.name.as_str()),
        (PluginKind::StonithDevice, "statedir")
    );
    assert!(registry.stonith_types().contains(&"statedir".to_string()));
    assert!(registry.list().contains(&info));

    let mut device = registry.stonith_device("statedir").unwrap();
    let names = device.config_names();
    assert_eq!(names, ["statedir", "hostlist"]);
    assert_eq!(device.status().unwrap_err().code, StonithCode::Invalid);
    assert!(
        device
            .info(DeviceInfo::ConfigXml)
            .unwrap()
            .contains("hostlist")
    );
    assert_eq!(device.info(DeviceInfo::DeviceName), None);

    let dir = scratch("stonith");
    let text = format!("{} Node1 node2", dir.path().display());
    let params = positional_params(&names, &text).unwrap();
    device.configure(&params).unwrap();
    device.status().unwrap();
    assert_eq!(device.hosts().unwrap(), ["node1", "node2"]);
    assert_eq!(
        device.info(DeviceInfo::DeviceName),
        Some(dir.path().display().to_string())
    );

    // node2 is a process on this machine; resetting it pulls its plug.
    let mut node2 = Command::new("sleep").arg("60").spawn().unwrap();
    fs::write(dir.path().join("node2.pid"), node2.id().to_string()).unwrap();
    device.reset(ResetRequest::Reset, "NODE2").unwrap();
    assert_eq!(wait_killed(&mut node2).signal(), Some(libc::SIGKILL));
    assert!(!dir.path().join("node2.pid").exists());
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(read("node2.log"), "reset\n");
    assert_eq!(read("node2.power"), "on\n");

    device.reset(ResetRequest::PowerOff, "node1").unwrap();
    device.reset(ResetRequest::PowerOn, "node1").unwrap();
    assert_eq!(read("node1.log"), "off\non\n");
    assert_eq!(read("node1.power"), "on\n");

    let refused = device.reset(ResetRequest::Reset, "node3").unwrap_err();
    assert_eq!(refused.code, StonithCode::BadHost);
    assert_eq!(refused.message, "host node3 is not on this statedir switch");
    assert!(!dir.path().join("node3.log").exists());

    let mut unconfigurable = registry.stonith_device("statedir").unwrap();
    let bad = unconfigurable
        .configure(&[("hostlist".to_string(), "node1".to_string())])
        .unwrap_err();
    assert_eq!(bad.code, StonithCode::BadConfig);
    assert_eq!(bad.message, "statedir device needs parameter `statedir`");
}

/// A `unixdgram DIR NAME` line.
fn unixdgram(dir: &Path, node: &str) -> MediumSpec {
    MediumSpec {
        kind: "unixdgram".to_string(),
        args: vec![dir.display().to_string(), node.to_string()],
        udp_port: 694,
        origin: "test:1".to_string(),
    }
}

#[test]
fn the_example_native_medium_carries_frames_between_two_nodes() {
    let path = native_plugin(PluginWorkspace::Examples, "native-medium");
    let mut registry = Registry::new();
    load(&path, &mut registry).unwrap();
    let factory = Arc::clone(registry.medium("unixdgram").unwrap());
    assert_eq!(
        factory.info().origin,
        PluginOrigin::NativeDynamic { path: path.clone() }
    );

    let dir = scratch("medium");
    let bus = dir.path().join("bus");
    let mut short = unixdgram(&bus, "node1");
    short.args.pop();
    let error = factory.check(&short).unwrap_err();
    assert!(matches!(error, MediumError::BadArguments { .. }), "{error}");
    assert!(
        error.to_string().starts_with("test:1: `unixdgram "),
        "{error}"
    );
    factory.check(&unixdgram(&bus, "node1")).unwrap();

    let node1: Arc<dyn Medium> = factory.open(&unixdgram(&bus, "node1")).unwrap().into();
    let node2: Arc<dyn Medium> = factory.open(&unixdgram(&bus, "node2")).unwrap().into();
    assert_eq!(
        node1.link_name(),
        format!("unixdgram:{}", bus.join("node1.sock").display())
    );

    let mut buf = vec![0u8; 1024];
    node1.send(b"t=status\nsrc=node1\n").unwrap();
    let (len, from) = node2.recv(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"t=status\nsrc=node1\n");
    assert_eq!(from, PeerAddress::Link);
    node2.send(b"from node2").unwrap();
    let (len, _) = node1.recv(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"from node2");

    // A reader blocked in recv on its own thread is released by shutdown, as at daemon stop.
    let reader = {
        let node1 = Arc::clone(&node1);
        std::thread::spawn(move || node1.recv(&mut [0u8; 64]))
    };
    std::thread::sleep(Duration::from_millis(100));
    node1.shutdown();
    let after = reader.join().expect("the reader thread does not panic");
    assert!(after.is_err(), "{after:?}");

    drop(node1);
    assert!(!bus.join("node1.sock").exists());
    // Sending to a bus where the other node has gone is not an error, like a lost broadcast.
    node2.send(b"anyone?").unwrap();
}
