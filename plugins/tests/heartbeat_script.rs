//! Heartbeat-class resource.d scripts through the adapter: Heartbeat's script search, its
//! calling convention and its status-by-output-text rule, with the fixture scripts.

mod common;

use std::time::Duration;

use common::{RecordingHost, fixtures, instance, scratch_dir};
use vigil_agents::heartbeat_script::{
    HeartbeatEnvironment, HeartbeatScriptAgent, ScriptKind, ScriptLookupError, ScriptProblem,
    find_script,
};
use vigil_plugin_api::{LogLevel, OcfStatus, ResourceAgent, ResourceInstance};

const TIMEOUT: Duration = Duration::from_secs(30);

fn ha_dir() -> std::path::PathBuf {
    fixtures().join("ha.d")
}

fn init_dir() -> std::path::PathBuf {
    fixtures().join("init.d")
}

fn agent(name: &str) -> HeartbeatScriptAgent {
    match find_script(name, &ha_dir(), &init_dir()).unwrap() {
        ScriptKind::HeartbeatClass(path) => {
            HeartbeatScriptAgent::new(path, &HeartbeatEnvironment::new(ha_dir(), "node1"))
        }
        other => panic!("{name} resolved to {other:?}"),
    }
}

/// The instance haresources `Name::arg1::arg2` gives.
fn positional(agent: &HeartbeatScriptAgent, args: &[&str]) -> ResourceInstance {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    ResourceInstance {
        name: "rsc".into(),
        params: agent.positional_params(&args).unwrap(),
        timeout: TIMEOUT,
        grants: Default::default(),
    }
}

#[test]
fn resource_d_is_searched_before_the_init_directory() {
    assert_eq!(
        find_script("Shadowed", &ha_dir(), &init_dir()).unwrap(),
        ScriptKind::HeartbeatClass(ha_dir().join("resource.d/Shadowed"))
    );
    assert_eq!(
        find_script("vigil-test-service", &ha_dir(), &init_dir()).unwrap(),
        ScriptKind::Lsb(init_dir().join("vigil-test-service"))
    );
}

#[test]
fn lookup_errors_name_every_path_and_what_was_wrong() {
    let err = find_script("not-executable", &ha_dir(), &init_dir()).unwrap_err();
    let ScriptLookupError::NotFound { tried, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        tried,
        &[
            (
                ha_dir().join("resource.d/not-executable"),
                ScriptProblem::NotExecutable
            ),
            (init_dir().join("not-executable"), ScriptProblem::Missing),
        ]
    );
    let message = err.to_string();
    assert!(
        message.contains("resource.d/not-executable is not executable"),
        "{message}"
    );
    assert!(
        message.contains("init.d/not-executable is missing"),
        "{message}"
    );

    let err = find_script("a-directory", &ha_dir(), &init_dir()).unwrap_err();
    assert!(
        err.to_string()
            .contains("a-directory is not a regular file"),
        "{err}"
    );
}

#[test]
fn status_output_decides_ownership_whatever_the_exit_code() {
    let host = RecordingHost::default();
    let agent = agent("StatusText");
    let cases = [
        ("httpd is not running", OcfStatus::NotRunning),
        ("Not yet running", OcfStatus::NotRunning),
        ("OK", OcfStatus::Success),
        ("INFO: IPaddr Running OK", OcfStatus::Success),
        ("httpd (pid 7) is running...", OcfStatus::Success),
        ("INFO: IPaddr Resource is stopped", OcfStatus::NotRunning),
        ("", OcfStatus::NotRunning),
    ];
    for (text, expected) in cases {
        let outcome = agent.monitor(&positional(&agent, &[text]), &host);
        assert_eq!(
            outcome.status, expected,
            "status printing {text:?}: {outcome:?}"
        );
    }
}

#[test]
fn start_stop_and_monitor_follow_the_state() {
    let host = RecordingHost::default();
    let state = scratch_dir("hb_state").join("state");
    let agent = agent("StateFile");
    let rsc = positional(&agent, &[state.to_str().unwrap()]);
    assert_eq!(agent.monitor(&rsc, &host).status, OcfStatus::NotRunning);
    assert_eq!(agent.start(&rsc, &host).status, OcfStatus::Success);
    assert!(state.exists());
    assert_eq!(agent.monitor(&rsc, &host).status, OcfStatus::Success);
    // The script's own start refuses to run twice; the adapter asks status first, as
    // Heartbeat's ResourceManager does, and skips it.
    let again = agent.start(&rsc, &host);
    assert_eq!(again.status, OcfStatus::Success, "{again:?}");
    assert!(again.message.contains("skipped"), "{again:?}");
    assert_eq!(agent.stop(&rsc, &host).status, OcfStatus::Success);
    assert!(!state.exists());
    assert_eq!(agent.monitor(&rsc, &host).status, OcfStatus::NotRunning);
    assert_eq!(agent.validate(&rsc, &host).status, OcfStatus::Success);
}

#[test]
fn a_failed_start_reports_the_exit_code_and_the_reason() {
    let host = RecordingHost::default();
    let dir = scratch_dir("hb_failed_start");
    // A start that fails: the state path is in a directory that does not exist.
    let state = dir.join("missing-dir/state");
    let agent = agent("StateFile");
    let outcome = agent.start(&positional(&agent, &[state.to_str().unwrap()]), &host);
    assert_eq!(outcome.status, OcfStatus::ErrGeneric, "{outcome:?}");
    assert!(outcome.message.contains("exit code"), "{outcome:?}");
    assert!(
        !host.logged(LogLevel::Debug).is_empty(),
        "the script's output was not logged"
    );
}

#[test]
fn a_failed_stop_of_a_resource_that_is_gone_counts_as_stopped_with_a_warning() {
    let host = RecordingHost::default();
    let state = scratch_dir("hb_sloppy_stop").join("state");
    let agent = agent("StateFile");
    let rsc = positional(&agent, &[state.to_str().unwrap(), "sloppy"]);
    assert_eq!(agent.start(&rsc, &host).status, OcfStatus::Success);
    let outcome = agent.stop(&rsc, &host);
    assert_eq!(outcome.status, OcfStatus::Success, "{outcome:?}");
    let warnings = host.logged(LogLevel::Warning);
    assert!(
        warnings.iter().any(|w| w.contains("must succeed on stop")),
        "{warnings:?}"
    );
}

#[test]
fn a_failed_stop_of_a_resource_still_running_fails() {
    let host = RecordingHost::default();
    let state = scratch_dir("hb_stuck_stop").join("state");
    let agent = agent("StateFile");
    let rsc = positional(&agent, &[state.to_str().unwrap(), "stuck"]);
    assert_eq!(agent.start(&rsc, &host).status, OcfStatus::Success);
    let outcome = agent.stop(&rsc, &host);
    assert_eq!(outcome.status, OcfStatus::ErrGeneric, "{outcome:?}");
    assert!(outcome.message.contains("cannot stop"), "{outcome:?}");
}

#[test]
fn scripts_get_the_heartbeat_environment_and_nothing_else() {
    let host = RecordingHost::default();
    let agent = agent("Environment");
    let outcome = agent.monitor(&positional(&agent, &["node1"]), &host);
    assert_eq!(
        outcome.status,
        OcfStatus::Success,
        "{outcome:?} {:?}",
        host.logged(LogLevel::Debug)
    );
    let other_node = agent.monitor(&positional(&agent, &["node2"]), &host);
    assert_eq!(other_node.status, OcfStatus::NotRunning);
}

#[test]
fn validate_reports_a_script_that_cannot_run() {
    let host = RecordingHost::default();
    let env = HeartbeatEnvironment::new(ha_dir(), "node1");
    let missing = HeartbeatScriptAgent::new(ha_dir().join("resource.d/NoSuchScript"), &env);
    let outcome = missing.validate(&instance("rsc", &[], TIMEOUT), &host);
    assert_eq!(outcome.status, OcfStatus::ErrInstalled);
    assert!(outcome.message.contains("missing"), "{outcome:?}");
    let not_executable =
        HeartbeatScriptAgent::new(ha_dir().join("resource.d/not-executable"), &env);
    let outcome = not_executable.start(&instance("rsc", &[], TIMEOUT), &host);
    assert_eq!(outcome.status, OcfStatus::ErrInstalled, "{outcome:?}");
}

#[test]
fn named_parameters_are_a_configuration_error() {
    let host = RecordingHost::default();
    let agent = agent("StatusText");
    let outcome = agent.monitor(&instance("rsc", &[("ip", "198.18.0.1")], TIMEOUT), &host);
    assert_eq!(outcome.status, OcfStatus::ErrConfigured, "{outcome:?}");
}

#[test]
fn metadata_names_the_script() {
    let xml = agent("StateFile").metadata();
    assert!(xml.contains("<resource-agent name=\"StateFile\""), "{xml}");
}
