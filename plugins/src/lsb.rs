//! LSB init scripts (`/etc/init.d/NAME`) as resource agents (spec §10.5).
//!
//! Which status rule applies when:
//! - [`StatusRule::OutputText`] for an init script named in haresources (found by
//!   [`crate::heartbeat_script::find_script`] in the init directory). Heartbeat 3.0.6 runs
//!   such a script exactly like a resource.d script and decides ownership by the text
//!   `status` prints, whatever its exit code; an existing cluster keeps that behaviour, so
//!   this rule runs the script through the heartbeat-class convention
//!   ([`crate::heartbeat_script::HeartbeatScriptAgent`]), with the heartbeat environment.
//! - [`StatusRule::ExitCode`] for an init script configured as an LSB resource in vigil's
//!   YAML: the LSB exit codes decide, as Pacemaker does: `status` 0 running, 1/2/3 not
//!   running, 4 unknown (a failed monitor); `start` on a running service and `stop` on a
//!   stopped one are success (the LSB requires exit code 0; a `stop` answering 7, "not
//!   running", is taken as stopped too).
//!
//! This module owns the LSB exit-code conventions. It runs scripts only through
//! [`crate::process`] (via the shared script runner of [`crate::heartbeat_script`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use vigil_plugin_api::{Host, OcfStatus, OperationOutcome, ResourceAgent, ResourceInstance};

use crate::heartbeat_script::{
    HeartbeatScriptAgent, failed_with_code, positional_params, run_script, script_metadata,
    script_name, validate_script,
};
use crate::process::{ProcessOutput, SCRIPT_PATH};

/// LSB `status` exit codes (LSB 3.0 "Init Script Actions").
const LSB_STATUS_RUNNING: i32 = 0;
const LSB_STATUS_DEAD_PID_FILE: i32 = 1;
const LSB_STATUS_DEAD_LOCK_FILE: i32 = 2;
const LSB_STATUS_NOT_RUNNING: i32 = 3;
const LSB_STATUS_UNKNOWN: i32 = 4;

/// LSB exit code of the other actions for "program is not running".
const LSB_NOT_RUNNING: i32 = 7;

/// How `status` decides whether the service runs (see the module docs for when each
/// applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusRule {
    /// The LSB exit code of `status` decides.
    ExitCode,
    /// Heartbeat's text rule on the output of `status` decides
    /// ([`crate::heartbeat_script::status_output_says_owned`]).
    OutputText,
}

/// An init script as a [`ResourceAgent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsbAgent {
    /// The init script.
    script: PathBuf,
    /// How `status` is read.
    rule: StatusRule,
    /// The script's whole environment (it does not inherit the daemon's).
    env: Vec<(String, String)>,
}

impl LsbAgent {
    /// The agent for `script`, reading `status` by `rule`, run with exactly `env`: the
    /// heartbeat environment for haresources
    /// ([`crate::heartbeat_script::HeartbeatEnvironment::variables`]), otherwise
    /// [`LsbAgent::service_environment`].
    pub fn new(script: impl Into<PathBuf>, rule: StatusRule, env: Vec<(String, String)>) -> Self {
        Self {
            script: script.into(),
            rule,
            env,
        }
    }

    /// The environment `service(8)` gives an init script: a standard `PATH` and nothing of
    /// the caller's, so a script behaves as it does at boot.
    pub fn service_environment() -> Vec<(String, String)> {
        vec![("PATH".to_owned(), SCRIPT_PATH.to_owned())]
    }

    /// The script this agent runs.
    pub fn script(&self) -> &Path {
        &self.script
    }

    /// The rule this agent reads `status` by.
    pub fn status_rule(&self) -> StatusRule {
        self.rule
    }

    /// The heartbeat-class convention for this script, which [`StatusRule::OutputText`]
    /// follows in every action.
    fn as_heartbeat_script(&self) -> HeartbeatScriptAgent {
        HeartbeatScriptAgent::with_variables(self.script.clone(), self.env.clone())
    }

    /// Runs one LSB action; the exit code, or the finished failed operation.
    fn run_action(
        &self,
        action: &str,
        instance: &ResourceInstance,
        host: &dyn Host,
    ) -> Result<(i32, ProcessOutput), OperationOutcome> {
        run_script(&self.script, &[action], instance, &self.env, true, host)
    }

    /// Start or stop by LSB exit code; `also_success` is a non-zero code that still means the
    /// desired state holds.
    fn transition(
        &self,
        action: &str,
        also_success: Option<i32>,
        instance: &ResourceInstance,
        host: &dyn Host,
    ) -> OperationOutcome {
        let name = script_name(&self.script);
        match self.run_action(action, instance, host) {
            Ok((0, _)) => OperationOutcome::success(format!("{name} {action}: done")),
            Ok((code, _)) if Some(code) == also_success => OperationOutcome::success(format!(
                "{name} {action}: exit code {code} (not running), so it is stopped"
            )),
            Ok((code, output)) => {
                let failed = failed_with_code(&name, action, code, &output);
                // LSB action codes 1–7 mean what the OCF codes of the same value mean.
                let status = u8::try_from(code)
                    .ok()
                    .filter(|code| (1..=7).contains(code))
                    .map_or(OcfStatus::ErrGeneric, OcfStatus::from_code);
                OperationOutcome::new(status, failed.message)
            }
            Err(failed) => failed,
        }
    }
}

impl ResourceAgent for LsbAgent {
    fn metadata(&self) -> String {
        let rule = match self.rule {
            StatusRule::ExitCode => "the LSB exit code of status",
            StatusRule::OutputText => "the text status prints (Heartbeat's haresources rule)",
        };
        script_metadata(
            &script_name(&self.script),
            &format!(
                "LSB init script {}; whether it runs is decided by {rule}.",
                self.script.display()
            ),
            &["start", "stop", "status", "monitor", "meta-data"],
        )
    }

    fn positional_params(&self, args: &[String]) -> Result<BTreeMap<String, String>, String> {
        Ok(positional_params(args))
    }

    fn validate(&self, instance: &ResourceInstance, _host: &dyn Host) -> OperationOutcome {
        validate_script(&self.script, instance)
    }

    fn start(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        match self.rule {
            StatusRule::OutputText => self.as_heartbeat_script().start(instance, host),
            StatusRule::ExitCode => self.transition("start", None, instance, host),
        }
    }

    fn stop(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        match self.rule {
            StatusRule::OutputText => self.as_heartbeat_script().stop(instance, host),
            StatusRule::ExitCode => self.transition("stop", Some(LSB_NOT_RUNNING), instance, host),
        }
    }

    fn monitor(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        if self.rule == StatusRule::OutputText {
            return self.as_heartbeat_script().monitor(instance, host);
        }
        let name = script_name(&self.script);
        let (code, output) = match self.run_action("status", instance, host) {
            Ok(result) => result,
            Err(failed) => return failed,
        };
        let not_running =
            |why: &str| OperationOutcome::new(OcfStatus::NotRunning, format!("{name} {why}"));
        match code {
            LSB_STATUS_RUNNING => OperationOutcome::success(format!("{name} is running")),
            LSB_STATUS_DEAD_PID_FILE => not_running("is dead but its pid file exists"),
            LSB_STATUS_DEAD_LOCK_FILE => not_running("is dead but its lock file exists"),
            LSB_STATUS_NOT_RUNNING => not_running("is not running"),
            LSB_STATUS_UNKNOWN => OperationOutcome::new(
                OcfStatus::ErrGeneric,
                format!(
                    "{name} status is unknown (exit code 4){}",
                    output
                        .last_line()
                        .map(|l| format!(": {l}"))
                        .unwrap_or_default()
                ),
            ),
            other => OperationOutcome::new(
                OcfStatus::ErrGeneric,
                format!(
                    "{name} status exited with {other}, which is no LSB status code{}",
                    output
                        .last_line()
                        .map(|l| format!(": {l}"))
                        .unwrap_or_default()
                ),
            ),
        }
    }
}
