//! `NativeDummy`: a small, correct native resource agent whose whole state is one file (the
//! `state` parameter), like resource-agents' Dummy. Start creates the file, stop removes it,
//! monitor looks for it; start and stop say what they did through the host's log, so a test
//! sees the host vtable at work. Used by the loader tests, the SDK's conformance checks and
//! the native-call benchmark; it must never touch anything but its state file.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use vigil_sdk::api::{
    Host, LogLevel, OcfStatus, OperationOutcome, ResourceAgent, ResourceInstance,
};

/// The agent; stateless.
#[derive(Debug, Default)]
pub struct NativeDummy;

/// The state file of `instance`, or the outcome refusing its configuration.
fn state_file(instance: &ResourceInstance) -> Result<PathBuf, OperationOutcome> {
    match instance.param("state") {
        Some(path) if Path::new(path).is_absolute() => Ok(PathBuf::from(path)),
        Some(path) => Err(OperationOutcome::new(
            OcfStatus::ErrConfigured,
            format!("parameter state: {path:?} is not an absolute path"),
        )),
        None => Err(OperationOutcome::new(
            OcfStatus::ErrConfigured,
            "parameter state is required",
        )),
    }
}

/// The outcome of a failed file operation.
fn io_failure(what: &str, path: &Path, error: &io::Error) -> OperationOutcome {
    let status = if error.kind() == io::ErrorKind::PermissionDenied {
        OcfStatus::ErrPerm
    } else {
        OcfStatus::ErrGeneric
    };
    OperationOutcome::new(status, format!("cannot {what} {}: {error}", path.display()))
}

impl ResourceAgent for NativeDummy {
    fn metadata(&self) -> String {
        r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="NativeDummy" version="1.0">
<version>1.0</version>
<longdesc lang="en">A resource whose whole state is one file: start creates it, stop removes it.</longdesc>
<shortdesc lang="en">State-file dummy resource (native)</shortdesc>
<parameters>
<parameter name="state" unique="1" required="1">
<longdesc lang="en">Absolute path of the state file.</longdesc>
<shortdesc lang="en">State file</shortdesc>
<content type="string" />
</parameter>
</parameters>
<actions>
<action name="start" timeout="20s" />
<action name="stop" timeout="20s" />
<action name="monitor" timeout="20s" interval="10s" depth="0" />
<action name="validate-all" timeout="20s" />
<action name="meta-data" timeout="5s" />
</actions>
</resource-agent>
"#
        .to_string()
    }

    fn positional_params(&self, args: &[String]) -> Result<BTreeMap<String, String>, String> {
        match args {
            [] => Ok(BTreeMap::new()),
            [state] => Ok([("state".to_string(), state.clone())].into()),
            _ => Err(format!(
                "NativeDummy takes one positional argument (the state file), got {}",
                args.join("::")
            )),
        }
    }

    fn validate(&self, instance: &ResourceInstance, _host: &dyn Host) -> OperationOutcome {
        let state = match state_file(instance) {
            Ok(state) => state,
            Err(refusal) => return refusal,
        };
        match state.parent() {
            Some(dir) if dir.is_dir() => OperationOutcome::success("configuration is valid"),
            _ => OperationOutcome::new(
                OcfStatus::ErrInstalled,
                format!("the directory of {} does not exist", state.display()),
            ),
        }
    }

    fn start(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        let state = match state_file(instance) {
            Ok(state) => state,
            Err(refusal) => return refusal,
        };
        if let Err(e) = fs::write(&state, format!("{}\n", instance.name)) {
            return io_failure("create", &state, &e);
        }
        host.log(LogLevel::Info, &format!("{} started", instance.name));
        OperationOutcome::success(format!("created {}", state.display()))
    }

    fn stop(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        let state = match state_file(instance) {
            Ok(state) => state,
            Err(refusal) => return refusal,
        };
        match fs::remove_file(&state) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return io_failure("remove", &state, &e),
        }
        host.log(LogLevel::Info, &format!("{} stopped", instance.name));
        OperationOutcome::success(format!("removed {}", state.display()))
    }

    fn monitor(&self, instance: &ResourceInstance, _host: &dyn Host) -> OperationOutcome {
        let state = match state_file(instance) {
            Ok(state) => state,
            Err(refusal) => return refusal,
        };
        match fs::metadata(&state) {
            Ok(_) => OperationOutcome::success("running"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                OperationOutcome::new(OcfStatus::NotRunning, "not running")
            }
            Err(e) => io_failure("examine", &state, &e),
        }
    }
}

vigil_sdk::export_agent! {
    name: "NativeDummy",
    description: "state-file dummy resource (native test agent)",
    agent: NativeDummy = NativeDummy,
}
