//! `ssh`: reboots (or powers off) a host of its `hostlist` by logging in as root with ssh,
//! then checks that the host stops answering pings. For testing only, as cluster-glue says:
//! a host that hangs cannot be reached this way.
//!
//! As cluster-glue's device: the remote command schedules the reboot two seconds later with
//! `at now`, so ssh returns; then up to [`PING_ATTEMPTS`] pings, one a second, and the reset
//! succeeded once one gets no answer (`ping` exit status 1). Power-on is impossible
//! (`S_INVAL`); a host not in the list is `S_BADHOST`. Commands run through the agents'
//! process runner, so a hung ssh is killed at the settings' command timeout.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use vigil_agents::process::{self, ProcessExit, ProcessRequest};
use vigil_plugin_api::{
    DeviceInfo, ResetRequest, StonithCode, StonithDevice, StonithError, StonithFactory,
};

use crate::device_log::{self, Severity};
use crate::hostlist::{self, HOSTLIST, HOSTLIST_PARAMETERS_XML};
use crate::{PowerCommands, SingleTypeFactory, StonithSettings, built_in_device};

/// The device type.
pub const TYPE: &str = "ssh";

/// cluster-glue's device id, the start of its messages.
const DEVICE_ID: &str = "SSH STONITH device";

/// What `stonith -h` says about it.
const DESCRIPTION: &str =
    "SSH-based host reset\nFine for testing, but not suitable for production!";

/// How many pings may still be answered before the reset counts as failed.
pub const PING_ATTEMPTS: u32 = 15;

/// The ssh options cluster-glue uses: quiet, no X11, no stdin, as root.
const SSH_OPTIONS: [&str; 5] = ["-q", "-x", "-n", "-l", "root"];

/// The most output kept from ssh or ping; both are quiet here.
const OUTPUT_LIMIT: usize = 64 * 1024;

/// The programs the device runs and how often it pings; tests replace them.
#[derive(Debug, Clone)]
struct Tools {
    /// The ssh client, searched in `PATH`.
    ssh: PathBuf,
    /// The ping program, searched in `PATH`.
    ping: PathBuf,
    /// The pause between two pings.
    ping_interval: Duration,
}

impl Default for Tools {
    fn default() -> Self {
        Self {
            ssh: PathBuf::from("ssh"),
            ping: PathBuf::from("ping"),
            ping_interval: Duration::from_secs(1),
        }
    }
}

/// An `ssh` device.
#[derive(Debug)]
pub struct SshDevice {
    /// What the remote host runs to reset or power off.
    power_commands: PowerCommands,
    /// The longest ssh or one ping may take.
    timeout: Duration,
    /// The programs it runs.
    tools: Tools,
    /// The hosts it may reset; `None` until configured.
    hosts: Option<Vec<String>>,
}

impl SshDevice {
    /// An unconfigured device with `settings`' power commands and command timeout.
    pub fn new(settings: &StonithSettings) -> Self {
        Self {
            power_commands: settings.power_commands.clone(),
            timeout: settings.command_timeout,
            tools: Tools::default(),
            hosts: None,
        }
    }

    fn hosts_or_invalid(&self) -> Result<&[String], StonithError> {
        self.hosts
            .as_deref()
            .ok_or_else(|| hostlist::not_configured(DEVICE_ID))
    }

    /// The command run on the remote host: the power command two seconds later, through `at`
    /// so that ssh can return first.
    fn remote_command(&self, request: ResetRequest) -> String {
        let command = match request {
            ResetRequest::PowerOff => &self.power_commands.poweroff,
            _ => &self.power_commands.reboot,
        };
        format!("echo 'sleep 2; {command}' | SHELL=/bin/sh at now >/dev/null 2>&1")
    }

    fn run(&self, program: &Path, args: Vec<String>) -> Option<ProcessExit> {
        let request = ProcessRequest {
            program: program.to_path_buf(),
            args,
            env: Vec::new(),
            clear_env: false,
            timeout: self.timeout,
            max_output: OUTPUT_LIMIT,
        };
        match process::run(&request) {
            Ok(output) => Some(output.exit),
            Err(err) => {
                device_log::log(Severity::Critical, &err.to_string());
                None
            }
        }
    }

    /// Whether the host stopped answering pings within [`PING_ATTEMPTS`] tries.
    fn host_went_down(&self, host: &str) -> bool {
        for attempt in 0..PING_ATTEMPTS {
            let args = vec!["-w1".to_string(), "-c1".to_string(), host.to_string()];
            if self.run(&self.tools.ping, args) == Some(ProcessExit::Code(1)) {
                device_log::log(
                    Severity::Debug,
                    &format!("unable to ping {host} after {attempt} tries, stonith did work"),
                );
                return true;
            }
            thread::sleep(self.tools.ping_interval);
        }
        false
    }
}

impl StonithDevice for SshDevice {
    fn config_names(&self) -> Vec<String> {
        vec![HOSTLIST.to_string()]
    }

    fn configure(&mut self, params: &[(String, String)]) -> Result<(), StonithError> {
        let hosts =
            hostlist::configured_hosts(DEVICE_ID, params, StonithCode::Oops, StonithCode::Oops)?;
        self.hosts = Some(hosts);
        Ok(())
    }

    fn status(&mut self) -> Result<(), StonithError> {
        self.hosts_or_invalid()?;
        if Path::new("/bin/sh").exists() {
            Ok(())
        } else {
            Err(StonithError::new(
                StonithCode::Oops,
                "no /bin/sh to run ssh commands with",
            ))
        }
    }

    fn hosts(&mut self) -> Result<Vec<String>, StonithError> {
        self.hosts_or_invalid().map(<[String]>::to_vec)
    }

    fn reset(&mut self, request: ResetRequest, host: &str) -> Result<(), StonithError> {
        let host = host.to_lowercase();
        let hosts = self.hosts_or_invalid()?;
        if request == ResetRequest::PowerOn {
            let message = format!("{DEVICE_ID} not capable of power-on operation");
            device_log::log(Severity::Critical, &message);
            return Err(StonithError::new(StonithCode::Invalid, message));
        }
        hostlist::check_controls(DEVICE_ID, hosts, &host)?;
        let kind = if request == ResetRequest::PowerOff {
            "poweroff"
        } else {
            "reset"
        };
        device_log::log(
            Severity::Info,
            &format!("Initiating ssh-{kind} on host: {host}"),
        );
        let remote = self.remote_command(request);
        let mut args: Vec<String> = SSH_OPTIONS.iter().map(|s| s.to_string()).collect();
        args.push(host.clone());
        args.push(remote.clone());
        if self.run(&self.tools.ssh, args) != Some(ProcessExit::Code(0)) {
            let command = format!(
                "{} {} \"{host}\" \"{remote}\"",
                self.tools.ssh.display(),
                SSH_OPTIONS.join(" ")
            );
            let message = format!("command {command} failed");
            device_log::log(Severity::Critical, &message);
            return Err(StonithError::new(StonithCode::ResetFailed, message));
        }
        if self.host_went_down(&host) {
            return Ok(());
        }
        let message =
            format!("still able to ping {host} after {PING_ATTEMPTS} tries, stonith did not work");
        device_log::log(Severity::Critical, &message);
        Err(StonithError::new(StonithCode::ResetFailed, message))
    }

    fn info(&mut self, what: DeviceInfo) -> Option<String> {
        match what {
            DeviceInfo::DeviceId => Some(DEVICE_ID.to_string()),
            DeviceInfo::DeviceName => Some("ssh STONITH device".to_string()),
            DeviceInfo::Description => Some(DESCRIPTION.to_string()),
            DeviceInfo::ConfigXml => Some(HOSTLIST_PARAMETERS_XML.to_string()),
            DeviceInfo::Url => Some("http://openssh.org".to_string()),
        }
    }
}

/// The `ssh` plugin.
pub fn factory(settings: &StonithSettings) -> Arc<dyn StonithFactory> {
    let settings = settings.clone();
    Arc::new(SingleTypeFactory {
        info: built_in_device(TYPE, "SSH-based host reset, for testing only"),
        make: Box::new(move || Box::new(SshDevice::new(&settings))),
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::external::tests::write_script;

    /// A directory with a fake `ssh` that records its arguments and a fake `ping`, removed
    /// on drop.
    struct FakeTools(PathBuf);

    impl FakeTools {
        fn new(label: &str, ssh_exit: i32, ping_exit: i32) -> FakeTools {
            let dir =
                std::env::temp_dir().join(format!("vigil-ssh-{label}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            let ssh = format!(
                "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > '{}'\nexit {ssh_exit}\n",
                dir.join("args").display()
            );
            write_script(&dir.join("ssh"), &ssh, 0o755);
            write_script(&dir.join("ping"), &format!("exit {ping_exit}\n"), 0o755);
            FakeTools(dir)
        }

        fn device(&self) -> SshDevice {
            let mut device = SshDevice::new(&StonithSettings::default());
            device.tools = Tools {
                ssh: self.0.join("ssh"),
                ping: self.0.join("ping"),
                ping_interval: Duration::from_millis(5),
            };
            device
                .configure(&[(HOSTLIST.to_string(), "hb1 hb2".to_string())])
                .unwrap();
            device
        }

        fn ssh_args(&self) -> String {
            fs::read_to_string(self.0.join("args")).unwrap_or_default()
        }
    }

    impl Drop for FakeTools {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_reset_logs_in_as_root_and_schedules_the_reboot_then_sees_the_host_gone() {
        let tools = FakeTools::new("reset", 0, 1);
        let mut device = tools.device();
        assert_eq!(device.reset(ResetRequest::Reset, "HB2"), Ok(()));
        assert_eq!(
            tools.ssh_args(),
            "-q\n-x\n-n\n-l\nroot\nhb2\necho 'sleep 2; /sbin/reboot -nf' | SHELL=/bin/sh at now >/dev/null 2>&1\n"
        );
        assert_eq!(device.reset(ResetRequest::PowerOff, "hb1"), Ok(()));
        assert!(tools.ssh_args().contains("/sbin/poweroff -nf"));
    }

    #[test]
    fn a_host_still_answering_pings_is_a_failed_reset() {
        let tools = FakeTools::new("alive", 0, 0);
        let err = tools
            .device()
            .reset(ResetRequest::Reset, "hb1")
            .unwrap_err();
        assert_eq!(err.code, StonithCode::ResetFailed);
        assert!(
            err.message
                .contains("still able to ping hb1 after 15 tries")
        );
    }

    #[test]
    fn a_failing_ssh_is_a_failed_reset_naming_the_command() {
        let tools = FakeTools::new("sshfails", 255, 1);
        let err = tools
            .device()
            .reset(ResetRequest::Reset, "hb1")
            .unwrap_err();
        assert_eq!(err.code, StonithCode::ResetFailed);
        assert!(err.message.starts_with("command "), "{}", err.message);
        assert!(
            err.message.contains("-q -x -n -l root \"hb1\""),
            "{}",
            err.message
        );
    }

    #[test]
    fn power_on_is_invalid_and_an_unlisted_host_bad_host() {
        let tools = FakeTools::new("refusals", 0, 1);
        let mut device = tools.device();
        assert_eq!(
            device.reset(ResetRequest::PowerOn, "hb1").unwrap_err().code,
            StonithCode::Invalid
        );
        assert_eq!(
            device.reset(ResetRequest::Reset, "hb9").unwrap_err().code,
            StonithCode::BadHost
        );
    }

    #[test]
    fn a_missing_or_empty_host_list_is_oops_as_in_cluster_glue() {
        let mut device = SshDevice::new(&StonithSettings::default());
        assert_eq!(device.configure(&[]).unwrap_err().code, StonithCode::Oops);
        assert_eq!(
            device
                .configure(&[(HOSTLIST.to_string(), ",".to_string())])
                .unwrap_err()
                .code,
            StonithCode::Oops
        );
        assert_eq!(
            device.info(DeviceInfo::Url).as_deref(),
            Some("http://openssh.org")
        );
    }
}
