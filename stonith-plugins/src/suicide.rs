//! `suicide`: this node reboots or powers itself off. It controls exactly one host, its own
//! node name (`uname -n`), and takes no parameters.
//!
//! As cluster-glue's device: the power command is started in the background two seconds
//! later (`nohup sh -c 'sleep 2; …' &`) so the caller can report success first; power-on is
//! impossible (`S_INVAL`). A request for another host is `S_BADHOST` (cluster-glue answers
//! `S_RESETFAIL`). The node name is compared case-insensitively, since requests arrive
//! lower-cased.

use std::ffi::CStr;
use std::sync::Arc;
use std::time::Duration;

use vigil_agents::process::{self, ProcessExit, ProcessRequest};
use vigil_plugin_api::{
    DeviceInfo, ResetRequest, StonithCode, StonithDevice, StonithError, StonithFactory,
};

use crate::device_log::{self, Severity};
use crate::hostlist;
use crate::{PowerCommands, SingleTypeFactory, StonithSettings, built_in_device};

/// The device type.
pub const TYPE: &str = "suicide";

/// cluster-glue's device id, the start of its messages.
const DEVICE_ID: &str = "Suicide STONITH device";

/// What `stonith -h` says about it (cluster-glue's text ends with a newline).
const DESCRIPTION: &str = "Virtual device to reboot/powerdown itself.\n";

/// A `suicide` device.
#[derive(Debug)]
pub struct SuicideDevice {
    /// What this node runs to reboot or power off.
    power_commands: PowerCommands,
    /// The longest starting the background command may take.
    timeout: Duration,
    /// Whether `configure` was called.
    configured: bool,
}

impl SuicideDevice {
    /// An unconfigured device running `settings`' power commands.
    pub fn new(settings: &StonithSettings) -> Self {
        Self {
            power_commands: settings.power_commands.clone(),
            timeout: settings.command_timeout,
            configured: false,
        }
    }

    fn check_configured(&self) -> Result<(), StonithError> {
        if self.configured {
            Ok(())
        } else {
            Err(hostlist::not_configured(DEVICE_ID))
        }
    }
}

/// This node's name as the kernel knows it (`uname -n`).
fn node_name() -> Result<String, StonithError> {
    // SAFETY: utsname is plain data for which all zeroes is a valid value.
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct it is given and touches nothing else.
    if unsafe { libc::uname(&mut name) } < 0 {
        let err = std::io::Error::last_os_error();
        device_log::log(Severity::Critical, &format!("uname error {err}"));
        return Err(StonithError::new(
            StonithCode::ResetFailed,
            format!("cannot read this node's name: {err}"),
        ));
    }
    // SAFETY: the kernel NUL-terminates nodename within the array.
    let nodename = unsafe { CStr::from_ptr(name.nodename.as_ptr()) };
    Ok(nodename.to_string_lossy().into_owned())
}

impl StonithDevice for SuicideDevice {
    fn config_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn configure(&mut self, _params: &[(String, String)]) -> Result<(), StonithError> {
        self.configured = true;
        Ok(())
    }

    fn status(&mut self) -> Result<(), StonithError> {
        self.check_configured()
    }

    fn hosts(&mut self) -> Result<Vec<String>, StonithError> {
        self.check_configured()?;
        Ok(vec![node_name()?.to_lowercase()])
    }

    fn reset(&mut self, request: ResetRequest, host: &str) -> Result<(), StonithError> {
        self.check_configured()?;
        if request == ResetRequest::PowerOn {
            let message = format!("{DEVICE_ID} not capable of power-on operation");
            device_log::log(Severity::Critical, &message);
            return Err(StonithError::new(StonithCode::Invalid, message));
        }
        let me = node_name()?;
        if !me.eq_ignore_ascii_case(host) {
            return Err(hostlist::refuse_host(&me, host));
        }
        device_log::log(
            Severity::Info,
            &format!("Initiating suicide on host {host}"),
        );
        let command = match request {
            ResetRequest::PowerOff => &self.power_commands.poweroff,
            _ => &self.power_commands.reboot,
        };
        // The background shell lets go of our output pipes at once, so the runner does not
        // wait for it or kill it: it must outlive this call.
        let script = format!("nohup sh -c 'sleep 2; {command}' </dev/null >/dev/null 2>&1 &");
        let started = process::run(&ProcessRequest {
            program: "/bin/sh".into(),
            args: vec!["-c".to_string(), script],
            env: Vec::new(),
            clear_env: false,
            timeout: self.timeout,
            max_output: 4096,
        });
        match started {
            Ok(output) if output.exit == ProcessExit::Code(0) => {
                device_log::log(Severity::Info, "Suicide stonith succeeded.");
                Ok(())
            }
            outcome => {
                device_log::log(Severity::Critical, "Suicide stonith failed.");
                let why = match outcome {
                    Ok(output) => format!("the shell ended with {:?}", output.exit),
                    Err(err) => err.to_string(),
                };
                Err(StonithError::new(
                    StonithCode::ResetFailed,
                    format!("Suicide stonith failed: {why}"),
                ))
            }
        }
    }

    fn info(&mut self, what: DeviceInfo) -> Option<String> {
        match what {
            DeviceInfo::DeviceId => Some(DEVICE_ID.to_string()),
            DeviceInfo::DeviceName => Some("suicide STONITH device".to_string()),
            DeviceInfo::Description => Some(DESCRIPTION.to_string()),
            DeviceInfo::ConfigXml => Some("<parameters></parameters>".to_string()),
            DeviceInfo::Url => None,
        }
    }
}

/// The `suicide` plugin.
pub fn factory(settings: &StonithSettings) -> Arc<dyn StonithFactory> {
    let settings = settings.clone();
    Arc::new(SingleTypeFactory {
        info: built_in_device(TYPE, "Virtual device to reboot/powerdown itself"),
        make: Box::new(move || Box::new(SuicideDevice::new(&settings))),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::thread;
    use std::time::Instant;

    use super::*;

    fn device_running(reboot: &str) -> SuicideDevice {
        let mut device = SuicideDevice::new(&StonithSettings {
            power_commands: PowerCommands {
                reboot: reboot.to_string(),
                poweroff: "false".to_string(),
            },
            ..StonithSettings::default()
        });
        device.configure(&[]).unwrap();
        device
    }

    #[test]
    fn it_controls_only_this_node() {
        let mut device = device_running("false");
        let me = node_name().unwrap().to_lowercase();
        assert_eq!(device.hosts().unwrap(), std::slice::from_ref(&me));
        let err = device
            .reset(ResetRequest::Reset, &format!("{me}-other"))
            .unwrap_err();
        assert_eq!(err.code, StonithCode::BadHost);
        assert_eq!(
            device.reset(ResetRequest::PowerOn, &me).unwrap_err().code,
            StonithCode::Invalid
        );
    }

    #[test]
    fn a_reset_of_this_node_returns_first_and_runs_the_command_two_seconds_later() {
        let marker = std::env::temp_dir().join(format!("vigil-suicide-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        let mut device = device_running(&format!("touch {}", marker.display()));
        let me = node_name().unwrap().to_lowercase();
        let started = Instant::now();
        assert_eq!(device.reset(ResetRequest::Reset, &me), Ok(()));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(!Path::new(&marker).exists());
        while !marker.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the command never ran"
            );
            thread::sleep(Duration::from_millis(50));
        }
        assert!(started.elapsed() >= Duration::from_secs(2));
        std::fs::remove_file(&marker).unwrap();
    }

    #[test]
    fn nothing_works_before_configure() {
        let mut device = SuicideDevice::new(&StonithSettings::default());
        assert_eq!(device.status().unwrap_err().code, StonithCode::Invalid);
        assert_eq!(device.hosts().unwrap_err().code, StonithCode::Invalid);
        assert!(device.config_names().is_empty());
    }
}
