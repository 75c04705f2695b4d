//! Dummy: a stand-in resource whose whole state is one file, for tests and the demo, like
//! resource-agents' Dummy.
//!
//! Owns the state file's place (the `state` parameter, or `<instance>.state` in the agent's
//! state directory) and the test knobs `fake_start_delay` and `fail_start`. Start creates the
//! file, stop removes it, monitor looks for it. The file is the agent's own bookkeeping, not
//! a system resource, and [`Host`] grants no file writes, so this module uses `std::fs`
//! directly; it must never touch anything but its state file and that file's directory.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use thiserror::Error;
use vigil_plugin_api::{
    Host, OcfStatus, OperationOutcome, PluginInfo, PluginKind, PluginOrigin, Registry,
    ResourceAgent, ResourceInstance,
};

/// Where state files go when the `state` parameter is not set.
pub const DEFAULT_STATE_DIRECTORY: &str = "/run/vigil/dummy";

/// A Dummy parameter holds something it cannot.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DummyParamError {
    /// The value does not have the expected form.
    #[error("parameter {param}: {value:?} is not {expected}")]
    BadValue {
        param: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Dummy's parameters, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DummyParams {
    /// The state file.
    state: PathBuf,
    /// How long start waits before creating the state file, to stand in for a slow service.
    start_delay: Duration,
    /// Whether start fails, to stand in for a service that cannot start.
    fail_start: bool,
}

impl DummyParams {
    fn from_instance(
        instance: &ResourceInstance,
        state_directory: &Path,
    ) -> Result<Self, DummyParamError> {
        let state = match instance.param("state") {
            Some(path) if Path::new(path).is_absolute() => PathBuf::from(path),
            Some(path) => {
                return Err(DummyParamError::BadValue {
                    param: "state",
                    value: path.to_string(),
                    expected: "an absolute path",
                });
            }
            None => state_directory.join(format!("{}.state", file_stem(&instance.name))),
        };
        let start_delay = instance
            .param("fake_start_delay")
            .map(parse_delay)
            .transpose()?
            .unwrap_or(Duration::ZERO);
        let fail_start = match instance.param("fail_start").map(str::trim) {
            None => false,
            Some(v) if ["yes", "true", "1", "on"].contains(&v.to_ascii_lowercase().as_str()) => {
                true
            }
            Some(v) if ["no", "false", "0", "off"].contains(&v.to_ascii_lowercase().as_str()) => {
                false
            }
            Some(v) => {
                return Err(DummyParamError::BadValue {
                    param: "fail_start",
                    value: v.to_string(),
                    expected: "a boolean (yes/no, true/false, 1/0, on/off)",
                });
            }
        };
        Ok(DummyParams {
            state,
            start_delay,
            fail_start,
        })
    }
}

/// The instance name made safe as a file name: anything but letters, digits, `.`, `_` and
/// `-` becomes `_`, so `Dummy/../x` cannot leave the state directory.
fn file_stem(instance: &str) -> String {
    let stem: String = instance
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match stem.trim_start_matches('.') {
        "" => "Dummy".to_string(),
        _ => stem,
    }
}

/// Reads a delay as ha.cf writes times: `500ms`, `2s`, or a bare number of seconds.
fn parse_delay(value: &str) -> Result<Duration, DummyParamError> {
    let value = value.trim();
    let bad = || DummyParamError::BadValue {
        param: "fake_start_delay",
        value: value.to_string(),
        expected: "a time such as 500ms, 2s or 2",
    };
    if let Some(ms) = value.strip_suffix("ms") {
        ms.trim()
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| bad())
    } else {
        let seconds = value.strip_suffix('s').unwrap_or(value).trim();
        seconds.parse().map(Duration::from_secs).map_err(|_| bad())
    }
}

/// The outcome for a failed file operation: permission problems are `ErrPerm`, the rest
/// `ErrGeneric`.
fn io_failure(what: &str, path: &Path, error: &io::Error) -> OperationOutcome {
    let status = if error.kind() == io::ErrorKind::PermissionDenied {
        OcfStatus::ErrPerm
    } else {
        OcfStatus::ErrGeneric
    };
    OperationOutcome::new(status, format!("cannot {what} {}: {error}", path.display()))
}

/// The Dummy agent. Stateless apart from where default state files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dummy {
    /// The directory for `<instance>.state` when `state` is not set; tests and the demo point
    /// it at a directory of their own.
    state_directory: PathBuf,
}

impl Default for Dummy {
    fn default() -> Self {
        Self::with_state_directory(DEFAULT_STATE_DIRECTORY)
    }
}

impl Dummy {
    /// A Dummy keeping default state files in `directory` instead of
    /// [`DEFAULT_STATE_DIRECTORY`].
    pub fn with_state_directory(directory: impl Into<PathBuf>) -> Self {
        Dummy {
            state_directory: directory.into(),
        }
    }

    fn params(&self, instance: &ResourceInstance) -> Result<DummyParams, OperationOutcome> {
        DummyParams::from_instance(instance, &self.state_directory)
            .map_err(|e| OperationOutcome::new(OcfStatus::ErrConfigured, e.to_string()))
    }
}

impl ResourceAgent for Dummy {
    fn metadata(&self) -> String {
        format!(
            r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="Dummy" version="1.0">
<version>1.0</version>
<longdesc lang="en">
A resource that does nothing but remember whether it runs, in a state file: start creates
the file, stop removes it, monitor looks for it. For tests, demos and trying out a cluster
configuration. In haresources: Dummy, or Dummy::/path/to/state.
</longdesc>
<shortdesc lang="en">Stand-in resource kept in a state file</shortdesc>
<parameters>
<parameter name="state" unique="1">
<longdesc lang="en">The state file (an absolute path). When empty, INSTANCE.state in {directory}.</longdesc>
<shortdesc lang="en">State file</shortdesc>
<content type="string" default=""/>
</parameter>
<parameter name="fake" unique="0">
<longdesc lang="en">Accepted and unused, as in resource-agents' Dummy, where changing it causes a reload.</longdesc>
<shortdesc lang="en">Fake attribute</shortdesc>
<content type="string" default="dummy"/>
</parameter>
<parameter name="fake_start_delay" unique="0">
<longdesc lang="en">How long start waits before creating the state file (500ms, 2s, or seconds), to stand in for a slow service.</longdesc>
<shortdesc lang="en">Start delay</shortdesc>
<content type="string" default="0"/>
</parameter>
<parameter name="fail_start" unique="0">
<longdesc lang="en">When true, start fails without creating the state file, to stand in for a service that cannot start.</longdesc>
<shortdesc lang="en">Make start fail</shortdesc>
<content type="boolean" default="false"/>
</parameter>
</parameters>
<actions>
<action name="start" timeout="20s"/>
<action name="stop" timeout="20s"/>
<action name="monitor" depth="0" timeout="20s" interval="10s"/>
<action name="validate-all" timeout="20s"/>
<action name="meta-data" timeout="5s"/>
</actions>
</resource-agent>
"#,
            directory = self.state_directory.display(),
        )
    }

    /// `Dummy::/path/to/state`: the one optional argument is the state file.
    /// `Dummy`, `Dummy::<label>` (one more stand-in: the label makes the token, hence the
    /// instance and its state file, unique) or `Dummy::/absolute/state/file`.
    fn positional_params(&self, args: &[String]) -> Result<BTreeMap<String, String>, String> {
        match args {
            [] => Ok(BTreeMap::new()),
            [state] if Path::new(state).is_absolute() => {
                Ok(BTreeMap::from([("state".to_string(), state.clone())]))
            }
            [label]
                if label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') =>
            {
                Ok(BTreeMap::new())
            }
            [other] => Err(format!(
                "argument {other:?}: expected a label (letters, digits, `-`, `_`, `.`) or an absolute state file path"
            )),
            _ => Err(format!(
                "Dummy takes at most one argument, a label or the state file; got {}",
                args.join("::")
            )),
        }
    }

    fn validate(&self, instance: &ResourceInstance, _host: &dyn Host) -> OperationOutcome {
        match self.params(instance) {
            Ok(params) => {
                OperationOutcome::success(format!("state file {}", params.state.display()))
            }
            Err(outcome) => outcome,
        }
    }

    fn start(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        let params = match self.params(instance) {
            Ok(params) => params,
            Err(outcome) => return outcome,
        };
        if params.fail_start {
            return OperationOutcome::new(OcfStatus::ErrGeneric, "start fails: fail_start is set");
        }
        if self.monitor(instance, host).status == OcfStatus::Success {
            return OperationOutcome::success(format!(
                "already running ({} exists)",
                params.state.display()
            ));
        }
        thread::sleep(params.start_delay);
        if let Some(directory) = params.state.parent()
            && let Err(e) = fs::create_dir_all(directory)
        {
            return io_failure("create the state directory", directory, &e);
        }
        if let Err(e) = fs::write(&params.state, format!("{}\n", instance.name)) {
            return io_failure("write the state file", &params.state, &e);
        }
        OperationOutcome::success(format!("started ({} created)", params.state.display()))
    }

    fn stop(&self, instance: &ResourceInstance, _host: &dyn Host) -> OperationOutcome {
        let params = match self.params(instance) {
            Ok(params) => params,
            Err(outcome) => return outcome,
        };
        match fs::remove_file(&params.state) {
            Ok(()) => {
                OperationOutcome::success(format!("stopped ({} removed)", params.state.display()))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => OperationOutcome::success(format!(
                "already stopped ({} absent)",
                params.state.display()
            )),
            Err(e) => io_failure("remove the state file", &params.state, &e),
        }
    }

    fn monitor(&self, instance: &ResourceInstance, _host: &dyn Host) -> OperationOutcome {
        let params = match self.params(instance) {
            Ok(params) => params,
            Err(outcome) => return outcome,
        };
        match fs::metadata(&params.state) {
            Ok(meta) if meta.is_file() => {
                OperationOutcome::success(format!("running ({} exists)", params.state.display()))
            }
            Ok(_) => OperationOutcome::new(
                OcfStatus::ErrGeneric,
                format!("{} exists but is not a file", params.state.display()),
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => OperationOutcome::new(
                OcfStatus::NotRunning,
                format!("stopped ({} absent)", params.state.display()),
            ),
            Err(e) => io_failure("inspect the state file", &params.state, &e),
        }
    }
}

/// Registers Dummy as a built-in agent, keeping its state files in
/// [`DEFAULT_STATE_DIRECTORY`].
pub fn register(registry: &mut Registry, state_directory: &Path) {
    registry
        .add_agent(
            PluginInfo {
                kind: PluginKind::ResourceAgent,
                name: "Dummy".to_string(),
                origin: PluginOrigin::BuiltIn,
                version: env!("CARGO_PKG_VERSION").to_string(),
                description: "stand-in resource kept in a state file, for tests and demos"
                    .to_string(),
            },
            Arc::new(Dummy::with_state_directory(state_directory)),
        )
        .expect("built-in agent names are unique");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock_host::{MockHost, check_metadata};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A scratch directory for one test, removed at the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "vigil-dummy-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&path);
            Scratch(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn instance(name: &str, params: &[(&str, &str)]) -> ResourceInstance {
        ResourceInstance {
            name: name.into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            timeout: Duration::from_secs(20),
            grants: Default::default(),
        }
    }

    #[test]
    fn metadata_is_well_formed_and_lists_every_parameter() {
        let summary = check_metadata(&Dummy::default().metadata()).unwrap();
        assert_eq!(summary.agent_name, "Dummy");
        assert_eq!(
            summary.parameters,
            ["state", "fake", "fake_start_delay", "fail_start"]
        );
    }

    #[test]
    fn start_stop_and_monitor_follow_the_state_file_idempotently() {
        let scratch = Scratch::new();
        let dummy = Dummy::with_state_directory(&scratch.0);
        let host = MockHost::new();
        let web = instance("web", &[]);
        let state = scratch.0.join("web.state");
        assert_eq!(dummy.monitor(&web, &host).status, OcfStatus::NotRunning);
        assert_eq!(dummy.stop(&web, &host).status, OcfStatus::Success);
        assert_eq!(dummy.start(&web, &host).status, OcfStatus::Success);
        assert!(state.is_file());
        assert_eq!(dummy.start(&web, &host).status, OcfStatus::Success);
        assert_eq!(dummy.monitor(&web, &host).status, OcfStatus::Success);
        assert_eq!(dummy.stop(&web, &host).status, OcfStatus::Success);
        assert!(!state.exists());
        assert_eq!(dummy.stop(&web, &host).status, OcfStatus::Success);
        assert_eq!(dummy.monitor(&web, &host).status, OcfStatus::NotRunning);
    }

    #[test]
    fn the_state_parameter_overrides_the_default_place() {
        let scratch = Scratch::new();
        let dummy = Dummy::with_state_directory("/nonexistent/never-used");
        let path = scratch.0.join("deeper").join("db.state");
        let db = instance("db", &[("state", path.to_str().unwrap())]);
        assert_eq!(
            dummy.start(&db, &MockHost::new()).status,
            OcfStatus::Success
        );
        assert!(path.is_file());
    }

    #[test]
    fn instance_names_cannot_leave_the_state_directory() {
        assert_eq!(file_stem("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(file_stem(".."), "Dummy");
        assert_eq!(file_stem("Dummy_1.a-b"), "Dummy_1.a-b");
    }

    #[test]
    fn fail_start_fails_without_creating_the_state() {
        let scratch = Scratch::new();
        let dummy = Dummy::with_state_directory(&scratch.0);
        let host = MockHost::new();
        let broken = instance("broken", &[("fail_start", "yes")]);
        let outcome = dummy.start(&broken, &host);
        assert_eq!(outcome.status, OcfStatus::ErrGeneric);
        assert_eq!(dummy.monitor(&broken, &host).status, OcfStatus::NotRunning);
    }

    #[test]
    fn a_directory_where_the_state_file_belongs_is_a_failure() {
        let scratch = Scratch::new();
        fs::create_dir_all(scratch.0.join("odd.state")).unwrap();
        let dummy = Dummy::with_state_directory(&scratch.0);
        let outcome = dummy.monitor(&instance("odd", &[]), &MockHost::new());
        assert_eq!(outcome.status, OcfStatus::ErrGeneric);
        assert!(
            outcome.message.contains("not a file"),
            "{}",
            outcome.message
        );
    }

    #[test]
    fn bad_parameters_are_configuration_errors() {
        let dummy = Dummy::default();
        let host = MockHost::new();
        let cases = [
            (("state", "relative.state"), "an absolute path"),
            (("fake_start_delay", "soon"), "a time such as 500ms"),
            (("fail_start", "perhaps"), "a boolean"),
        ];
        for ((param, value), expected) in cases {
            let outcome = dummy.validate(&instance("x", &[(param, value)]), &host);
            assert_eq!(outcome.status, OcfStatus::ErrConfigured);
            assert!(outcome.message.contains(expected), "{}", outcome.message);
        }
    }

    #[test]
    fn delays_read_like_ha_cf_times() {
        assert_eq!(parse_delay("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_delay("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_delay("3"), Ok(Duration::from_secs(3)));
        assert!(parse_delay("-1").is_err());
    }

    #[test]
    fn positional_argument_is_a_label_or_the_state_file() {
        let dummy = Dummy::default();
        assert_eq!(
            dummy.positional_params(&["/tmp/x.state".into()]).unwrap(),
            BTreeMap::from([("state".to_string(), "/tmp/x.state".to_string())])
        );
        assert!(dummy.positional_params(&[]).unwrap().is_empty());
        assert!(
            dummy
                .positional_params(&["web-1".into()])
                .unwrap()
                .is_empty()
        );
        assert!(
            dummy
                .positional_params(&["x/y.state".into()])
                .unwrap_err()
                .contains("absolute state file path")
        );
        assert!(
            dummy
                .positional_params(&["/a".into(), "/b".into()])
                .unwrap_err()
                .contains("at most one argument")
        );
    }

    #[test]
    fn register_adds_dummy_as_a_built_in_agent_keeping_state_where_told() {
        let mut registry = Registry::new();
        register(&mut registry, Path::new("/run/node-a/dummy"));
        let registered = registry.agent("Dummy").unwrap();
        assert_eq!(registered.info.origin, PluginOrigin::BuiltIn);
        let params = registered.agent.positional_params(&[]).unwrap();
        assert!(params.is_empty());
        let metadata = registered.agent.metadata();
        assert!(metadata.contains("/run/node-a/dummy"), "{metadata}");
    }
}
