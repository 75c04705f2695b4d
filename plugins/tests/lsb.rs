//! LSB init scripts through the adapter, under both status rules, with the fixture init
//! script `vigil-test-service`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{RecordingHost, fixtures, instance, scratch_dir};
use vigil_agents::heartbeat_script::HeartbeatEnvironment;
use vigil_agents::lsb::{LsbAgent, StatusRule};
use vigil_plugin_api::{OcfStatus, ResourceAgent, ResourceInstance};

const TIMEOUT: Duration = Duration::from_secs(30);

fn script() -> PathBuf {
    fixtures().join("init.d/vigil-test-service")
}

/// The agent under `rule`, with the service's state file in a scratch directory and the
/// given behaviour switches of the fixture.
fn lsb_agent(test: &str, rule: StatusRule, switches: &[(&str, &str)]) -> (LsbAgent, PathBuf) {
    let state = scratch_dir(test).join("state");
    let mut env = LsbAgent::service_environment();
    env.push(("VIGIL_TEST_STATE".into(), state.to_str().unwrap().into()));
    env.extend(
        switches
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    (LsbAgent::new(script(), rule, env), state)
}

fn rsc() -> ResourceInstance {
    instance("vigil-test-service", &[], TIMEOUT)
}

#[test]
fn exit_codes_drive_start_stop_and_status() {
    let host = RecordingHost::default();
    let (agent, state) = lsb_agent("lsb_cycle", StatusRule::ExitCode, &[]);
    assert_eq!(agent.validate(&rsc(), &host).status, OcfStatus::Success);
    assert_eq!(agent.monitor(&rsc(), &host).status, OcfStatus::NotRunning);
    assert_eq!(agent.start(&rsc(), &host).status, OcfStatus::Success);
    assert!(state.exists());
    assert_eq!(agent.monitor(&rsc(), &host).status, OcfStatus::Success);
    // LSB: start on a running service and stop on a stopped one succeed.
    assert_eq!(agent.start(&rsc(), &host).status, OcfStatus::Success);
    assert_eq!(agent.stop(&rsc(), &host).status, OcfStatus::Success);
    assert_eq!(agent.stop(&rsc(), &host).status, OcfStatus::Success);
    assert_eq!(agent.monitor(&rsc(), &host).status, OcfStatus::NotRunning);
}

#[test]
fn stop_answering_not_running_counts_as_stopped() {
    let host = RecordingHost::default();
    let (agent, _) = lsb_agent(
        "lsb_stop7",
        StatusRule::ExitCode,
        &[("VIGIL_TEST_STOP_STOPPED", "7")],
    );
    let outcome = agent.stop(&rsc(), &host);
    assert_eq!(outcome.status, OcfStatus::Success, "{outcome:?}");
}

#[test]
fn a_failed_start_keeps_the_lsb_meaning_of_its_code() {
    let host = RecordingHost::default();
    let (agent, _) = lsb_agent(
        "lsb_start5",
        StatusRule::ExitCode,
        &[("VIGIL_TEST_START_FAILS", "5")],
    );
    let outcome = agent.start(&rsc(), &host);
    assert_eq!(outcome.status, OcfStatus::ErrInstalled, "{outcome:?}");
    assert!(
        outcome.message.contains("start failed on purpose"),
        "{outcome:?}"
    );
    let (agent, _) = lsb_agent(
        "lsb_start150",
        StatusRule::ExitCode,
        &[("VIGIL_TEST_START_FAILS", "150")],
    );
    assert_eq!(agent.start(&rsc(), &host).status, OcfStatus::ErrGeneric);
}

#[test]
fn status_codes_one_to_three_mean_not_running_and_four_is_an_error() {
    let host = RecordingHost::default();
    let (dead, _) = lsb_agent(
        "lsb_dead",
        StatusRule::ExitCode,
        &[("VIGIL_TEST_STATUS", "dead")],
    );
    let outcome = dead.monitor(&rsc(), &host);
    assert_eq!(outcome.status, OcfStatus::NotRunning);
    assert!(outcome.message.contains("pid file"), "{outcome:?}");
    let (unknown, _) = lsb_agent(
        "lsb_unknown",
        StatusRule::ExitCode,
        &[("VIGIL_TEST_STATUS", "unknown")],
    );
    let outcome = unknown.monitor(&rsc(), &host);
    assert_eq!(outcome.status, OcfStatus::ErrGeneric);
    assert!(outcome.message.contains("unknown"), "{outcome:?}");
}

#[test]
fn the_two_rules_disagree_on_a_script_whose_text_and_code_disagree() {
    let host = RecordingHost::default();
    let lying = [("VIGIL_TEST_STATUS", "lying")];
    let (by_code, _) = lsb_agent("lsb_lying_code", StatusRule::ExitCode, &lying);
    assert_eq!(by_code.monitor(&rsc(), &host).status, OcfStatus::NotRunning);
    let (by_text, _) = lsb_agent("lsb_lying_text", StatusRule::OutputText, &lying);
    assert_eq!(by_text.monitor(&rsc(), &host).status, OcfStatus::Success);
}

#[test]
fn from_haresources_the_text_rule_and_heartbeat_convention_apply() {
    let host = RecordingHost::default();
    let state = scratch_dir("lsb_haresources").join("state");
    let mut env = HeartbeatEnvironment::new(fixtures().join("ha.d"), "node1");
    env.extra
        .push(("VIGIL_TEST_STATE".into(), state.to_str().unwrap().into()));
    let agent = LsbAgent::new(script(), StatusRule::OutputText, env.variables());
    assert_eq!(agent.monitor(&rsc(), &host).status, OcfStatus::NotRunning);
    assert_eq!(agent.start(&rsc(), &host).status, OcfStatus::Success);
    assert_eq!(agent.monitor(&rsc(), &host).status, OcfStatus::Success);
    let again = agent.start(&rsc(), &host);
    assert!(again.message.contains("skipped"), "{again:?}");
    assert_eq!(agent.stop(&rsc(), &host).status, OcfStatus::Success);
    assert_eq!(agent.monitor(&rsc(), &host).status, OcfStatus::NotRunning);
}

#[test]
fn a_missing_init_script_is_not_installed() {
    let host = RecordingHost::default();
    let agent = LsbAgent::new(
        fixtures().join("init.d/no-such-service"),
        StatusRule::ExitCode,
        LsbAgent::service_environment(),
    );
    assert_eq!(
        agent.validate(&rsc(), &host).status,
        OcfStatus::ErrInstalled
    );
    assert_eq!(agent.monitor(&rsc(), &host).status, OcfStatus::ErrInstalled);
}
