//! OCF agents through the adapter: the fixture agents under `tests/fixtures/ocf` and, when
//! Debian's resource-agents package is installed, its real `Dummy` agent, in both the YAML
//! and the haresources (`OCF::<type>::<instance>`) forms.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{
    Ended, RecordingHost, become_subreaper, fixtures, instance, pids, run_or_skip, scratch_dir,
    wait_ended,
};
use vigil_agents::heartbeat_script::HeartbeatEnvironment;
use vigil_agents::ocf::{OcfAgent, OcfError, find_provider, from_haresources};
use vigil_plugin_api::{OcfStatus, ResourceAgent};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Debian's resource-agents layout.
const DEBIAN_OCF_ROOT: &str = "/usr/lib/ocf";

fn fixture_root() -> PathBuf {
    fixtures().join("ocf")
}

fn debian_dummy_installed() -> bool {
    let root = Path::new(DEBIAN_OCF_ROOT);
    root.join("resource.d/heartbeat/Dummy").is_file()
        && root.join("lib/heartbeat/ocf-shellfuncs").is_file()
}

/// A scratch directory with a `log` file path, a `state` file path and an `rsctmp` dir.
struct Scratch {
    log: PathBuf,
    state: PathBuf,
    rsc_tmp: PathBuf,
    dir: PathBuf,
}

fn scratch(test: &str) -> Scratch {
    let dir = scratch_dir(test);
    Scratch {
        log: dir.join("log"),
        state: dir.join("state"),
        rsc_tmp: dir.join("rsctmp"),
        dir,
    }
}

fn recorded(log: &Path) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn agent_sees_the_ocf_environment_and_one_argument() {
    let host = RecordingHost::default();
    let s = scratch("ocf_env");
    let agent = OcfAgent::new(fixture_root(), "vigil-test", "Recorder", &s.rsc_tmp).unwrap();
    let rsc = instance(
        "rec_1",
        &[
            ("log", s.log.to_str().unwrap()),
            ("state", s.state.to_str().unwrap()),
            ("color", "dark blue"),
        ],
        TIMEOUT,
    );
    assert_eq!(agent.start(&rsc, &host).status, OcfStatus::Success);
    let lines = recorded(&s.log);
    let expected = format!(
        "start args=1 level=unset instance=rec_1 type=Recorder provider=vigil-test \
         version=1.0 root={} rsctmp={} color=dark blue extra=unset home=unset",
        fixture_root().display(),
        s.rsc_tmp.display()
    );
    assert_eq!(lines, [expected]);
    assert!(s.rsc_tmp.is_dir(), "HA_RSCTMP was not created");
}

#[test]
fn monitor_calls_monitor_with_check_level_zero_never_status() {
    let host = RecordingHost::default();
    let s = scratch("ocf_monitor");
    let agent = OcfAgent::new(fixture_root(), "vigil-test", "Recorder", &s.rsc_tmp).unwrap();
    let rsc = instance(
        "rec_2",
        &[
            ("log", s.log.to_str().unwrap()),
            ("state", s.state.to_str().unwrap()),
        ],
        TIMEOUT,
    );
    assert_eq!(agent.monitor(&rsc, &host).status, OcfStatus::NotRunning);
    assert_eq!(agent.start(&rsc, &host).status, OcfStatus::Success);
    assert_eq!(agent.monitor(&rsc, &host).status, OcfStatus::Success);
    assert_eq!(agent.stop(&rsc, &host).status, OcfStatus::Success);
    assert_eq!(agent.monitor(&rsc, &host).status, OcfStatus::NotRunning);
    let actions: Vec<String> = recorded(&s.log)
        .iter()
        .map(|line| line.split(" instance=").next().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        [
            "monitor args=1 level=0",
            "start args=1 level=unset",
            "monitor args=1 level=0",
            "stop args=1 level=unset",
            "monitor args=1 level=0",
        ]
    );
}

#[test]
fn validate_without_validate_all_checks_the_agent_is_installed() {
    let host = RecordingHost::default();
    let s = scratch("ocf_validate");
    let agent = OcfAgent::new(fixture_root(), "vigil-test", "Recorder", &s.rsc_tmp).unwrap();
    let rsc = instance("rec_3", &[("log", s.log.to_str().unwrap())], TIMEOUT);
    let outcome = agent.validate(&rsc, &host);
    assert_eq!(outcome.status, OcfStatus::Success, "{outcome:?}");
    assert!(outcome.message.contains("no validate-all"), "{outcome:?}");
    let missing = OcfAgent::new(fixture_root(), "vigil-test", "NoSuchAgent", &s.rsc_tmp).unwrap();
    let outcome = missing.validate(&rsc, &host);
    assert_eq!(outcome.status, OcfStatus::ErrInstalled);
    assert!(
        outcome.message.contains("NoSuchAgent is missing"),
        "{outcome:?}"
    );
    assert_eq!(missing.start(&rsc, &host).status, OcfStatus::ErrInstalled);
}

#[test]
fn metadata_is_the_agents_own_xml() {
    let agent = OcfAgent::new(fixture_root(), "vigil-test", "Recorder", "/nonexistent").unwrap();
    let xml = agent.fetch_metadata().unwrap();
    assert!(xml.contains("<resource-agent name=\"Recorder\""), "{xml}");
    assert!(xml.contains("<parameter name=\"state\""), "{xml}");
    assert_eq!(agent.metadata(), xml);
    let hang = OcfAgent::new(fixture_root(), "vigil-test", "NoSuchAgent", "/nonexistent").unwrap();
    assert!(matches!(
        hang.fetch_metadata(),
        Err(OcfError::Metadata { .. })
    ));
    assert!(hang.metadata().contains("meta-data failed"));
}

#[test]
fn a_hung_agent_is_killed_at_its_timeout_and_leaves_nothing_behind() {
    become_subreaper();
    let host = RecordingHost::default();
    let s = scratch("ocf_hang");
    let pid_file = s.dir.join("pids");
    let agent = OcfAgent::new(fixture_root(), "vigil-test", "Hang", &s.rsc_tmp).unwrap();
    let rsc = instance(
        "hang_1",
        &[("pids", pid_file.to_str().unwrap())],
        Duration::from_secs(1),
    );
    let outcome = agent.start(&rsc, &host);
    assert_eq!(outcome.status, OcfStatus::ErrGeneric, "{outcome:?}");
    assert!(outcome.message.contains("timed out"), "{outcome:?}");
    assert!(outcome.message.contains("killed"), "{outcome:?}");
    let [agent_pid, child] = pids(&fs::read(&pid_file).unwrap())[..] else {
        panic!("bad pid file");
    };
    assert!(
        common::already_reaped(agent_pid),
        "the agent was not reaped"
    );
    assert_eq!(wait_ended(child), Ended::Signal(libc::SIGKILL));
}

#[test]
fn haresources_form_reads_the_instance_file_and_finds_the_provider() {
    let host = RecordingHost::default();
    let s = scratch("ocf_haresources");
    let ha_dir = s.dir.join("ha.d");
    let conf = ha_dir.join("conf/OCF/Recorder");
    fs::create_dir_all(&conf).unwrap();
    fs::write(
        conf.join("web1"),
        format!(
            "# instance web1\nOCF_RESKEY_log={}\nOCF_RESKEY_state='{}'\n\
             OCF_RESKEY_color=\"light green\"\nRECORDER_EXTRA=yes\n",
            s.log.display(),
            s.state.display()
        ),
    )
    .unwrap();
    let mut env = HeartbeatEnvironment::new(&ha_dir, "node1");
    env.ocf_root = fixture_root();
    let resolved = from_haresources(
        &["Recorder".into(), "web1".into()],
        &env,
        &s.rsc_tmp,
        TIMEOUT,
    )
    .unwrap();
    // No "heartbeat" provider in the fixtures: the first in name order wins.
    assert_eq!(resolved.agent.provider(), "heartbeat-alike");
    assert_eq!(resolved.instance.name, "web1");
    assert_eq!(resolved.instance.params["color"], "light green");

    let vigil_test = OcfAgent::new(fixture_root(), "vigil-test", "Recorder", &s.rsc_tmp)
        .unwrap()
        .with_environment(
            env.variables()
                .into_iter()
                .chain([("RECORDER_EXTRA".into(), "yes".into())])
                .collect(),
        );
    assert_eq!(
        vigil_test.start(&resolved.instance, &host).status,
        OcfStatus::Success
    );
    let line = recorded(&s.log).pop().unwrap();
    assert!(line.contains("instance=web1"), "{line}");
    assert!(line.contains("color=light green"), "{line}");
    assert!(line.contains("extra=yes"), "{line}");

    assert_eq!(
        resolved.agent.start(&resolved.instance, &host).status,
        OcfStatus::Success
    );
    assert_eq!(
        recorded(&s.log).pop().unwrap(),
        "heartbeat-alike Recorder start"
    );
}

#[test]
fn haresources_form_reports_a_missing_instance_file_or_agent() {
    let s = scratch("ocf_haresources_missing");
    let mut env = HeartbeatEnvironment::new(s.dir.join("ha.d"), "node1");
    env.ocf_root = fixture_root();
    let err = from_haresources(
        &["Recorder".into(), "nope".into()],
        &env,
        &s.rsc_tmp,
        TIMEOUT,
    )
    .unwrap_err();
    assert!(
        matches!(err, OcfError::InstanceFileUnreadable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("conf/OCF/Recorder/nope"), "{err}");
    let err = find_provider(&fixture_root(), "NoSuchAgent").unwrap_err();
    assert!(matches!(err, OcfError::AgentNotFound { .. }), "{err}");
}

#[test]
fn haresources_form_refuses_an_instance_file_that_is_not_text() {
    let s = scratch("ocf_haresources_binary");
    let ha_dir = s.dir.join("ha.d");
    fs::create_dir_all(ha_dir.join("conf/OCF/Recorder")).unwrap();
    fs::write(
        ha_dir.join("conf/OCF/Recorder/bin"),
        b"OCF_RESKEY_a=1\nOCF_RESKEY_b=\xff\n",
    )
    .unwrap();
    let mut env = HeartbeatEnvironment::new(&ha_dir, "node1");
    env.ocf_root = fixture_root();
    let err = from_haresources(
        &["Recorder".into(), "bin".into()],
        &env,
        &s.rsc_tmp,
        TIMEOUT,
    )
    .unwrap_err();
    assert!(
        matches!(&err, OcfError::InstanceFileSyntax { source, .. } if source.line == 2),
        "{err}"
    );
    assert!(err.to_string().contains("not UTF-8"), "{err}");
}

#[test]
fn debian_dummy_starts_monitors_and_stops() {
    if !run_or_skip(
        debian_dummy_installed(),
        "Debian's resource-agents (OCF Dummy)",
    ) {
        return;
    }
    let host = RecordingHost::default();
    let s = scratch("ocf_debian_dummy");
    let agent = OcfAgent::new(DEBIAN_OCF_ROOT, "heartbeat", "Dummy", &s.rsc_tmp).unwrap();
    let rsc = instance("dummy_1", &[("state", s.state.to_str().unwrap())], TIMEOUT);
    assert_eq!(agent.validate(&rsc, &host).status, OcfStatus::Success);
    assert_eq!(agent.monitor(&rsc, &host).status, OcfStatus::NotRunning);
    let started = agent.start(&rsc, &host);
    assert_eq!(started.status, OcfStatus::Success, "{started:?}");
    assert!(s.state.exists(), "Dummy did not create its state file");
    assert_eq!(agent.monitor(&rsc, &host).status, OcfStatus::Success);
    assert_eq!(agent.stop(&rsc, &host).status, OcfStatus::Success);
    assert!(!s.state.exists());
    assert_eq!(agent.monitor(&rsc, &host).status, OcfStatus::NotRunning);
}

#[test]
fn debian_dummy_metadata_is_an_ocf_document() {
    if !run_or_skip(
        debian_dummy_installed(),
        "Debian's resource-agents (OCF Dummy)",
    ) {
        return;
    }
    let agent = OcfAgent::new(
        DEBIAN_OCF_ROOT,
        "heartbeat",
        "Dummy",
        "/run/resource-agents",
    )
    .unwrap();
    let xml = agent.fetch_metadata().unwrap();
    assert!(xml.trim_start().starts_with("<?xml"), "{xml}");
    assert!(xml.contains("<resource-agent name=\"Dummy\""), "{xml}");
    assert!(xml.contains("<parameter name=\"state\""), "{xml}");
    assert!(xml.contains("<action name=\"monitor\""), "{xml}");
    assert!(xml.trim_end().ends_with("</resource-agent>"), "{xml}");
}

#[test]
fn debian_dummy_runs_from_haresources_where_heartbeats_wrapper_failed() {
    if !run_or_skip(
        debian_dummy_installed(),
        "Debian's resource-agents (OCF Dummy)",
    ) {
        return;
    }
    let host = RecordingHost::default();
    let s = scratch("ocf_debian_dummy_haresources");
    let ha_dir = s.dir.join("ha.d");
    fs::create_dir_all(ha_dir.join("conf/OCF/Dummy")).unwrap();
    fs::write(
        ha_dir.join("conf/OCF/Dummy/dummy_hr"),
        format!("OCF_RESKEY_state={}\n", s.state.display()),
    )
    .unwrap();
    let env = HeartbeatEnvironment::new(&ha_dir, "node1");
    let resolved = from_haresources(
        &["Dummy".into(), "dummy_hr".into()],
        &env,
        &s.rsc_tmp,
        TIMEOUT,
    )
    .unwrap();
    assert_eq!(resolved.agent.provider(), "heartbeat");
    let (agent, rsc) = (&resolved.agent, &resolved.instance);
    assert_eq!(agent.monitor(rsc, &host).status, OcfStatus::NotRunning);
    assert_eq!(agent.start(rsc, &host).status, OcfStatus::Success);
    assert_eq!(agent.monitor(rsc, &host).status, OcfStatus::Success);
    assert_eq!(agent.stop(rsc, &host).status, OcfStatus::Success);
    assert_eq!(agent.monitor(rsc, &host).status, OcfStatus::NotRunning);
}
