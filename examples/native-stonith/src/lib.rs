//! `statedir`: an example native STONITH device built with vigil-sdk, a power switch
//! simulated by files in a directory.
//!
//! For every host of its `hostlist` the device keeps, in its `statedir`:
//! - `HOST.power`: `on` or `off`, the simulated outlet;
//! - `HOST.log`: one line per request it carried out (`reset`, `on`, `off`), so a test or an
//!   operator can see exactly what was fenced;
//! - `HOST.pid` (written by whoever runs the "node"): a process standing in for the node. A
//!   reset or power-off kills it with SIGKILL, as pulling the plug would, and removes the file.
//!
//! That makes a cluster of several vigil processes on one machine fenceable for real: each
//! node writes its pid file, and fencing a node kills it. The device owns only the files of
//! its directory and the processes named there; it never decides whom to fence.
//!
//! Build: `cargo build --manifest-path examples/Cargo.toml -p native-stonith`, then put
//! `libnative_stonith.so` in a vigil plugin directory; `stonith -L` lists `statedir`.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use vigil_sdk::api::{DeviceInfo, ResetRequest, StonithCode, StonithDevice, StonithError};

/// The device type, as configuration and `stonith -t` name it.
const TYPE: &str = "statedir";

/// The parameters, in positional order: the directory is one word, the host list takes the
/// rest of a positional string (`stonith -p "/run/fence node1 node2"`).
const PARAMETERS: [&str; 2] = ["statedir", "hostlist"];

/// What `stonith -m` shows.
const PARAMETERS_XML: &str = r#"<parameters>
<parameter name="statedir" unique="1" required="1">
<content type="string" />
<shortdesc lang="en">State directory</shortdesc>
<longdesc lang="en">The directory holding HOST.power, HOST.log and HOST.pid for every host.</longdesc>
</parameter>
<parameter name="hostlist" unique="1" required="1">
<content type="string" />
<shortdesc lang="en">Hostlist</shortdesc>
<longdesc lang="en">The hosts this switch powers, separated by spaces or commas.</longdesc>
</parameter>
</parameters>"#;

/// A configured switch.
#[derive(Debug)]
struct Switch {
    /// Where the outlets' files live.
    directory: PathBuf,
    /// The hosts on the switch, lower case.
    hosts: Vec<String>,
}

/// A `statedir` device; unconfigured until `configure` succeeds.
#[derive(Debug, Default)]
pub struct StateDirDevice {
    switch: Option<Switch>,
}

impl StateDirDevice {
    fn switch(&self) -> Result<&Switch, StonithError> {
        self.switch.as_ref().ok_or_else(|| {
            StonithError::new(StonithCode::Invalid, "statedir device is not configured")
        })
    }
}

/// The value of parameter `name`, which every configuration must give.
fn required<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, StonithError> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            StonithError::new(
                StonithCode::BadConfig,
                format!("statedir device needs parameter `{name}`"),
            )
        })
}

/// An I/O failure on the switch's files: the switch did not do what was asked.
fn failed(what: &str, path: &Path, error: io::Error) -> StonithError {
    StonithError::new(
        StonithCode::ResetFailed,
        format!("{what} {}: {error}", path.display()),
    )
}

impl Switch {
    fn file(&self, host: &str, extension: &str) -> PathBuf {
        self.directory.join(format!("{host}.{extension}"))
    }

    /// Kills the process standing in for `host`, if there is one; a process that is already
    /// gone is fine (the outlet is off either way).
    fn pull_plug(&self, host: &str) -> Result<(), StonithError> {
        let pid_file = self.file(host, "pid");
        let text = match fs::read_to_string(&pid_file) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(failed("cannot read", &pid_file, e)),
        };
        let pid: libc::pid_t = text.trim().parse().map_err(|_| {
            StonithError::new(
                StonithCode::ResetFailed,
                format!(
                    "{} does not hold a process id: {text:?}",
                    pid_file.display()
                ),
            )
        })?;
        if pid <= 1 {
            return Err(StonithError::new(
                StonithCode::ResetFailed,
                format!(
                    "{} names process {pid}, which is never a node",
                    pid_file.display()
                ),
            ));
        }
        // SAFETY: kill has no memory-safety preconditions; a stale pid only gives ESRCH.
        let killed = unsafe { libc::kill(pid, libc::SIGKILL) };
        if killed != 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::ESRCH) {
                return Err(failed("cannot kill the process named in", &pid_file, error));
            }
        }
        fs::remove_file(&pid_file).map_err(|e| failed("cannot remove", &pid_file, e))
    }

    /// Records the outlet's new state and the request carried out.
    fn record(&self, host: &str, power: &str, request: ResetRequest) -> Result<(), StonithError> {
        let power_file = self.file(host, "power");
        fs::write(&power_file, format!("{power}\n"))
            .map_err(|e| failed("cannot write", &power_file, e))?;
        let log_file = self.file(host, "log");
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_file)
            .and_then(|mut log| writeln!(log, "{request}"))
            .map_err(|e| failed("cannot append to", &log_file, e))
    }
}

impl StonithDevice for StateDirDevice {
    fn config_names(&self) -> Vec<String> {
        PARAMETERS.iter().map(|p| p.to_string()).collect()
    }

    fn configure(&mut self, params: &[(String, String)]) -> Result<(), StonithError> {
        let directory = PathBuf::from(required(params, "statedir")?);
        if !directory.is_absolute() || !directory.is_dir() {
            return Err(StonithError::new(
                StonithCode::BadConfig,
                format!(
                    "statedir {} is not an existing absolute directory",
                    directory.display()
                ),
            ));
        }
        let hosts: Vec<String> = required(params, "hostlist")?
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|h| !h.is_empty())
            .map(str::to_lowercase)
            .collect();
        if let Some(bad) = hosts.iter().find(|h| h.contains('/') || h.starts_with('.')) {
            return Err(StonithError::new(
                StonithCode::BadConfig,
                format!("host name {bad:?} cannot name a file in the state directory"),
            ));
        }
        self.switch = Some(Switch { directory, hosts });
        Ok(())
    }

    fn status(&mut self) -> Result<(), StonithError> {
        let switch = self.switch()?;
        let probe = switch.directory.join(".statedir-status");
        fs::write(&probe, b"ok\n")
            .and_then(|()| fs::remove_file(&probe))
            .map_err(|e| {
                StonithError::new(
                    StonithCode::Access,
                    format!("cannot write in {}: {e}", switch.directory.display()),
                )
            })
    }

    fn hosts(&mut self) -> Result<Vec<String>, StonithError> {
        Ok(self.switch()?.hosts.clone())
    }

    fn reset(&mut self, request: ResetRequest, host: &str) -> Result<(), StonithError> {
        let switch = self.switch()?;
        let host = host.to_lowercase();
        if !switch.hosts.contains(&host) {
            return Err(StonithError::new(
                StonithCode::BadHost,
                format!("host {host} is not on this statedir switch"),
            ));
        }
        match request {
            ResetRequest::Reset => {
                switch.pull_plug(&host)?;
                switch.record(&host, "on", request)
            }
            ResetRequest::PowerOff => {
                switch.pull_plug(&host)?;
                switch.record(&host, "off", request)
            }
            ResetRequest::PowerOn => switch.record(&host, "on", request),
        }
    }

    fn info(&mut self, what: DeviceInfo) -> Option<String> {
        match what {
            DeviceInfo::ConfigXml => Some(PARAMETERS_XML.to_string()),
            DeviceInfo::DeviceId => Some("statedir STONITH device".to_string()),
            DeviceInfo::DeviceName => self
                .switch
                .as_ref()
                .map(|s| s.directory.display().to_string()),
            DeviceInfo::Description => Some(
                "Power switch simulated by files in a directory; kills a node's process named \
                 in HOST.pid.\nFOR TESTS AND DEMOS ON ONE MACHINE."
                    .to_string(),
            ),
            DeviceInfo::Url => None,
        }
    }
}

vigil_sdk::export_stonith! {
    name: TYPE,
    description: "power switch simulated by files in a directory (example native plugin)",
    device: StateDirDevice::default(),
}
