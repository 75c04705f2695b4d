//! `external/NAME`: cluster-glue's external STONITH scripts, run unchanged. Every eligible
//! script in the scripts directory (`/usr/lib/stonith/plugins/external` by default) is one
//! device type; `stonith -L` lists them.
//!
//! The script protocol is cluster-glue's (spec §7.5):
//! - A script is eligible when it is a regular file with an execute bit and is writable by
//!   neither group nor others; any other is refused, at listing and before every run.
//! - It runs as `SCRIPT OP [HOST]` with the daemon's environment plus every configured
//!   parameter as a variable of the same name, `HA_LOGTAG=external/NAME`, and `PATH` starting
//!   with cluster-glue's shared directory (scripts source `ha_log.sh` from there).
//! - `getconfignames` prints the parameter names; `status` exits 0 when the device works
//!   (another status is passed back as the code); `gethosts` prints the hosts;
//!   `reset|on|off HOST` exits 0 on success (else `S_RESETFAIL`); `getinfo-devid`,
//!   `getinfo-devname`, `getinfo-devdescr`, `getinfo-devurl` and `getinfo-xml` print text.
//!
//! Scripts run through the agents' process runner: in a process group of their own, killed
//! at the settings' command timeout (`S_TIMEOUT`), always reaped. Their stderr is passed on
//! unchanged ([`device_log::script_stderr`]). Unlike cluster-glue, a reset first asks
//! `gethosts` and refuses a host the script does not list (`S_BADHOST`).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use vigil_agents::process::{self, ProcessExit, ProcessRequest, SCRIPT_PATH};
use vigil_plugin_api::{
    DeviceInfo, PluginInfo, ResetRequest, StonithCode, StonithDevice, StonithError, StonithFactory,
};

use crate::device_log::{self, Severity};
use crate::hostlist;
use crate::{StonithSettings, built_in_device};

/// The family name: device types are `external/NAME`.
pub const FAMILY: &str = "external";

/// The most output kept from one script run; `getinfo-xml` of the larger scripts is a few
/// kilobytes.
const OUTPUT_LIMIT: usize = 1 << 20;

/// The code a run without an exit status gets in messages (cluster-glue's `-1`).
const NO_EXIT_STATUS: i32 = -1;

/// Where scripts are and how they run, shared by the factory and its devices.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ScriptSetup {
    /// The scripts directory.
    dir: PathBuf,
    /// Put first on the scripts' `PATH`.
    glue_shared_dir: PathBuf,
    /// The longest one run may take.
    timeout: Duration,
}

/// The `external` plugin: one device type per eligible script.
#[derive(Debug)]
pub struct ExternalFactory {
    /// The plugin's identity (its name is the family).
    info: PluginInfo,
    /// Where its scripts are and how they run.
    setup: ScriptSetup,
}

impl ExternalFactory {
    /// The plugin reading scripts from `settings.external_dir`.
    pub fn new(settings: &StonithSettings) -> Self {
        Self {
            info: built_in_device(
                FAMILY,
                "cluster-glue external/* STONITH scripts, run unchanged",
            ),
            setup: ScriptSetup {
                dir: settings.external_dir.clone(),
                glue_shared_dir: settings.glue_shared_dir.clone(),
                timeout: settings.command_timeout,
            },
        }
    }
}

impl StonithFactory for ExternalFactory {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn types(&self) -> Vec<String> {
        eligible_scripts(&self.setup.dir)
            .into_iter()
            .map(|name| format!("{FAMILY}/{name}"))
            .collect()
    }

    fn create(&self, device_type: &str) -> Result<Box<dyn StonithDevice>, StonithError> {
        let name = device_type
            .strip_prefix(FAMILY)
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|name| !name.is_empty() && !name.contains('/') && *name != "." && *name != "..")
            .ok_or_else(|| {
                StonithError::new(
                    StonithCode::Oops,
                    format!(
                        "`{device_type}` is not an external device type (external/NAME, NAME a script in {})",
                        self.setup.dir.display()
                    ),
                )
            })?;
        Ok(Box::new(ExternalDevice::open(name, &self.setup)?))
    }
}

/// The names of the eligible scripts in `dir`, sorted; none when it cannot be read.
fn eligible_scripts(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let path = entry.path();
            let meta = fs::metadata(&path).ok()?;
            let mode = meta.permissions().mode();
            if !meta.is_file() || mode & 0o111 == 0 {
                return None;
            }
            if mode & 0o022 != 0 {
                device_log::log(
                    Severity::Warning,
                    &format!(
                        "Executable file {} ignored (writable by group/others)",
                        path.display()
                    ),
                );
                return None;
            }
            Some(name)
        })
        .collect();
    names.sort();
    names
}

/// Checks that the script at `path` may run, logging cluster-glue's message when not.
fn check_script(path: &Path) -> Result<(), String> {
    let refuse = |message: String| {
        device_log::log(Severity::Critical, &message);
        Err(message)
    };
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) => {
            return refuse(format!(
                "external_run_cmd: stat(2) of {} failed: {}",
                path.display(),
                describe(&err)
            ));
        }
    };
    let mode = meta.permissions().mode();
    if !meta.is_file() || mode & 0o111 == 0 {
        return refuse(format!(
            "external_run_cmd: {} found NOT to be executable.",
            path.display()
        ));
    }
    if mode & 0o022 != 0 {
        return refuse(format!(
            "external_run_cmd: {} found to be writable by group/others, NOT executing for security purposes.",
            path.display()
        ));
    }
    Ok(())
}

/// The C library's text for an I/O error (`No such file or directory`), as cluster-glue
/// prints it.
fn describe(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

/// How one script run ended.
#[derive(Debug)]
struct ScriptRun {
    /// Its exit status, or [`NO_EXIT_STATUS`] when it could not run, died of a signal or
    /// timed out.
    status: i32,
    /// It was killed at the timeout.
    timed_out: bool,
    /// Its standard output.
    stdout: String,
}

/// One `external/NAME` device.
#[derive(Debug)]
pub struct ExternalDevice {
    /// The script's name (`ipmi`).
    name: String,
    /// The script.
    path: PathBuf,
    /// How scripts run.
    setup: ScriptSetup,
    /// What `getconfignames` printed, asked once when first needed (cluster-glue asks at the
    /// same moments, so a script runs as often under both).
    config_names: OnceLock<Vec<String>>,
    /// The parameters passed to every run; `None` until configured.
    params: Option<Vec<(String, String)>>,
}

impl ExternalDevice {
    /// Opens the device of script `name`, which must be eligible.
    fn open(name: &str, setup: &ScriptSetup) -> Result<ExternalDevice, StonithError> {
        let path = setup.dir.join(name);
        check_script(&path).map_err(|message| {
            StonithError::new(
                StonithCode::Oops,
                format!("no usable external/{name} script: {message}"),
            )
        })?;
        Ok(ExternalDevice {
            name: name.to_string(),
            path,
            setup: setup.clone(),
            config_names: OnceLock::new(),
            params: None,
        })
    }

    /// Runs `getconfignames`; none when it fails (logged, as cluster-glue logs it).
    fn ask_config_names(&self) -> Vec<String> {
        let run = self.run("getconfignames", None, true);
        if run.status != 0 {
            device_log::log(
                Severity::Critical,
                &format!(
                    "external_get_confignames: '{} getconfignames' failed with rc {}",
                    self.name, run.status
                ),
            );
            return Vec::new();
        }
        run.stdout.split_whitespace().map(str::to_string).collect()
    }

    fn device_type(&self) -> String {
        format!("{FAMILY}/{}", self.name)
    }

    fn check_configured(&self) -> Result<(), StonithError> {
        match self.params {
            Some(_) => Ok(()),
            None => Err(hostlist::not_configured(&self.device_type())),
        }
    }

    /// The environment of a run: the parameters, `PATH` with the glue directory first and
    /// the log tag.
    fn environment(&self) -> Vec<(String, String)> {
        let mut env = self.params.clone().unwrap_or_default();
        let glue = self.setup.glue_shared_dir.to_string_lossy().into_owned();
        let path = std::env::var("PATH").unwrap_or_else(|_| SCRIPT_PATH.to_string());
        let path = if path.starts_with(&glue) {
            path
        } else {
            format!("{glue}:{path}")
        };
        env.push(("PATH".to_string(), path));
        env.push(("HA_LOGTAG".to_string(), self.device_type()));
        env
    }

    /// Runs `SCRIPT op [host]`. With `keep_output` false its stdout is logged line by line
    /// (cluster-glue does so for operations whose output it does not use).
    fn run(&self, op: &str, host: Option<&str>, keep_output: bool) -> ScriptRun {
        let command = match host {
            Some(host) => format!("{} {op} {host}", self.path.display()),
            None => format!("{} {op}", self.path.display()),
        };
        let failed = ScriptRun {
            status: NO_EXIT_STATUS,
            timed_out: false,
            stdout: String::new(),
        };
        if check_script(&self.path).is_err() {
            return failed;
        }
        let mut args = vec![op.to_string()];
        args.extend(host.map(str::to_string));
        let request = ProcessRequest {
            program: self.path.clone(),
            args,
            env: self.environment(),
            clear_env: false,
            timeout: self.setup.timeout,
            max_output: OUTPUT_LIMIT,
        };
        let output = match process::run(&request) {
            Ok(output) => output,
            Err(err) => {
                device_log::log(
                    Severity::Critical,
                    &format!("external_run_cmd: Calling '{command}' failed: {err}"),
                );
                return failed;
            }
        };
        if !output.stderr.is_empty() {
            device_log::script_stderr(
                &self.device_type(),
                &String::from_utf8_lossy(&output.stderr),
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !keep_output {
            for line in stdout.lines() {
                device_log::log(
                    Severity::Info,
                    &format!("external_run_cmd: '{command}' output: {line}"),
                );
            }
        }
        let (status, timed_out) = match output.exit {
            ProcessExit::Code(code) => (code, false),
            ProcessExit::Signal(signal) => {
                device_log::log(
                    Severity::Critical,
                    &format!("external_run_cmd: '{command}' got signal {signal}"),
                );
                (NO_EXIT_STATUS, false)
            }
            ProcessExit::TimedOut => {
                device_log::log(
                    Severity::Critical,
                    &format!(
                        "external_run_cmd: '{command}' timed out after {} s and was killed with its process group",
                        self.setup.timeout.as_secs_f64()
                    ),
                );
                (NO_EXIT_STATUS, true)
            }
        };
        ScriptRun {
            status,
            timed_out,
            stdout,
        }
    }

    /// The error for a failed run: `S_TIMEOUT` when it timed out, else `code`.
    fn failure(run: &ScriptRun, code: StonithCode, message: String) -> StonithError {
        let code = if run.timed_out {
            StonithCode::Timeout
        } else {
            code
        };
        StonithError::new(code, message)
    }
}

impl StonithDevice for ExternalDevice {
    fn config_names(&self) -> Vec<String> {
        self.config_names
            .get_or_init(|| self.ask_config_names())
            .clone()
    }

    fn configure(&mut self, params: &[(String, String)]) -> Result<(), StonithError> {
        if self.params.is_some() {
            return Err(StonithError::new(
                StonithCode::Oops,
                format!("{} is configured already", self.device_type()),
            ));
        }
        for name in self.config_names() {
            if hostlist::param(params, &name).is_none() {
                device_log::log(
                    Severity::Debug,
                    &format!("Cannot get parameter {name} from StonithNVpair"),
                );
            }
        }
        self.params = Some(params.to_vec());
        Ok(())
    }

    fn status(&mut self) -> Result<(), StonithError> {
        self.check_configured()?;
        let run = self.run("status", None, false);
        if run.status == 0 {
            return Ok(());
        }
        let message = format!(
            "external_status: '{} status' failed with rc {}",
            self.name, run.status
        );
        device_log::log(Severity::Warning, &message);
        let code = StonithCode::from_number(run.status).unwrap_or(StonithCode::Oops);
        Err(Self::failure(&run, code, message))
    }

    fn hosts(&mut self) -> Result<Vec<String>, StonithError> {
        self.check_configured()?;
        let run = self.run("gethosts", None, true);
        if run.status != 0 {
            let message = format!(
                "external_hostlist: '{} gethosts' failed with rc {}",
                self.name, run.status
            );
            device_log::log(Severity::Critical, &message);
            return Err(Self::failure(&run, StonithCode::Oops, message));
        }
        let hosts: Vec<String> = run
            .stdout
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        if hosts.is_empty() {
            let message = format!(
                "external_hostlist: '{} gethosts' returned an empty hostlist",
                self.name
            );
            device_log::log(Severity::Critical, &message);
            return Err(StonithError::new(StonithCode::Oops, message));
        }
        Ok(hosts)
    }

    fn reset(&mut self, request: ResetRequest, host: &str) -> Result<(), StonithError> {
        self.check_configured()?;
        let host = host.to_lowercase();
        let hosts = self.hosts().map_err(|err| {
            StonithError::new(
                err.code,
                format!(
                    "cannot tell whether {} controls {host}: {}",
                    self.device_type(),
                    err.message
                ),
            )
        })?;
        hostlist::check_controls(&self.device_type(), &hosts, &host)?;
        device_log::log(
            Severity::Debug,
            &format!("Host external-reset initiating on {host}"),
        );
        let op = request.as_str();
        let run = self.run(op, Some(&host), false);
        if run.status == 0 {
            return Ok(());
        }
        let message = format!(
            "external_reset_req: '{} {op}' for host {host} failed with rc {}",
            self.name, run.status
        );
        device_log::log(Severity::Critical, &message);
        Err(Self::failure(&run, StonithCode::ResetFailed, message))
    }

    fn info(&mut self, what: DeviceInfo) -> Option<String> {
        let op = match what {
            DeviceInfo::ConfigXml => "getinfo-xml",
            DeviceInfo::DeviceId => "getinfo-devid",
            DeviceInfo::DeviceName => "getinfo-devname",
            DeviceInfo::Description => "getinfo-devdescr",
            DeviceInfo::Url => "getinfo-devurl",
        };
        let run = self.run(op, None, true);
        if run.status == 0 {
            return Some(run.stdout);
        }
        device_log::log(
            Severity::Critical,
            &format!(
                "external_getinfo: '{} {op}' failed with rc {}",
                self.name, run.status
            ),
        );
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};

    use super::*;

    /// Writes an executable `#!/bin/sh` script with `mode`. A child process writes it, so no
    /// descriptor open for writing can leak into a program another test thread forks at the
    /// same moment (which would make running the script fail with ETXTBSY).
    pub(crate) fn write_script(path: &Path, body: &str, mode: u32) {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("cat > \"$0\" && chmod {mode:o} \"$0\""))
            .arg(path)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("#!/bin/sh\n{body}").as_bytes())
            .unwrap();
        assert!(
            child.wait().unwrap().success(),
            "cannot write {}",
            path.display()
        );
    }

    /// A scripts directory of one test, removed on drop.
    struct ScriptsDir(PathBuf);

    impl ScriptsDir {
        fn new(label: &str) -> ScriptsDir {
            let dir =
                std::env::temp_dir().join(format!("vigil-external-{label}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            ScriptsDir(dir)
        }

        fn factory(&self, timeout: Duration) -> ExternalFactory {
            ExternalFactory::new(&StonithSettings {
                external_dir: self.0.clone(),
                glue_shared_dir: PathBuf::from("/usr/share/cluster-glue"),
                command_timeout: timeout,
                ..StonithSettings::default()
            })
        }

        fn journal(&self) -> String {
            fs::read_to_string(self.0.join("journal")).unwrap_or_default()
        }
    }

    impl Drop for ScriptsDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A script implementing every operation of the protocol; resets are written to
    /// `journal` next to it, and `getinfo-devname` reports what the environment held.
    fn protocol_script(dir: &Path) -> String {
        format!(
            r#"journal='{journal}'
case "$1" in
getconfignames) echo "hostlist ipaddr" ;;
status) [ "$ipaddr" = 198.18.0.9 ] && exit 0; echo "no device at $ipaddr" >&2; exit 2 ;;
gethosts) echo "$hostlist" ;;
reset|on|off) echo "$1 $2" >> "$journal"; [ "$2" = stuck ] && exit 1; exit 0 ;;
getinfo-devid) echo "Test device" ;;
getinfo-devname) echo "$HA_LOGTAG ${{PATH%%:*}} $ipaddr" ;;
getinfo-devdescr) printf 'A test device\nfor vigil\n' ;;
getinfo-devurl) echo "http://example.invalid/" ;;
getinfo-xml) echo '<parameters></parameters>' ;;
*) exit 1 ;;
esac
"#,
            journal = dir.join("journal").display()
        )
    }

    fn configured(factory: &ExternalFactory, ipaddr: &str) -> Box<dyn StonithDevice> {
        let mut device = factory.create("external/testdev").unwrap();
        device
            .configure(&[
                ("hostlist".to_string(), "hb1 HB2 stuck".to_string()),
                ("ipaddr".to_string(), ipaddr.to_string()),
            ])
            .unwrap();
        device
    }

    #[test]
    fn only_eligible_scripts_are_device_types() {
        let dir = ScriptsDir::new("types");
        write_script(&dir.0.join("good"), "exit 0\n", 0o755);
        write_script(&dir.0.join("owner-only"), "exit 0\n", 0o700);
        write_script(&dir.0.join("group-writable"), "exit 0\n", 0o775);
        write_script(&dir.0.join("other-writable"), "exit 0\n", 0o757);
        write_script(&dir.0.join("not-executable"), "exit 0\n", 0o644);
        fs::create_dir(dir.0.join("subdir")).unwrap();
        assert_eq!(
            dir.factory(Duration::from_secs(10)).types(),
            ["external/good", "external/owner-only"]
        );
        let missing = ScriptsDir::new("types-missing");
        fs::remove_dir(&missing.0).unwrap();
        assert!(missing.factory(Duration::from_secs(10)).types().is_empty());
    }

    #[test]
    fn every_operation_of_the_script_protocol_works() {
        let dir = ScriptsDir::new("protocol");
        write_script(&dir.0.join("testdev"), &protocol_script(&dir.0), 0o755);
        let factory = dir.factory(Duration::from_secs(10));
        let mut device = configured(&factory, "198.18.0.9");
        assert_eq!(device.config_names(), ["hostlist", "ipaddr"]);
        assert_eq!(device.status(), Ok(()));
        assert_eq!(device.hosts().unwrap(), ["hb1", "hb2", "stuck"]);
        assert_eq!(device.reset(ResetRequest::Reset, "HB2"), Ok(()));
        assert_eq!(device.reset(ResetRequest::PowerOff, "hb1"), Ok(()));
        assert_eq!(device.reset(ResetRequest::PowerOn, "hb1"), Ok(()));
        assert_eq!(dir.journal(), "reset hb2\noff hb1\non hb1\n");
        assert_eq!(
            device.info(DeviceInfo::DeviceId).as_deref(),
            Some("Test device\n")
        );
        assert_eq!(
            device.info(DeviceInfo::DeviceName).as_deref(),
            Some("external/testdev /usr/share/cluster-glue 198.18.0.9\n")
        );
        assert_eq!(
            device.info(DeviceInfo::Description).as_deref(),
            Some("A test device\nfor vigil\n")
        );
        assert_eq!(
            device.info(DeviceInfo::Url).as_deref(),
            Some("http://example.invalid/\n")
        );
        assert_eq!(
            device.info(DeviceInfo::ConfigXml).as_deref(),
            Some("<parameters></parameters>\n")
        );
    }

    #[test]
    fn a_failing_status_passes_the_script_code_back() {
        let dir = ScriptsDir::new("status");
        write_script(&dir.0.join("testdev"), &protocol_script(&dir.0), 0o755);
        let mut device = configured(&dir.factory(Duration::from_secs(10)), "198.18.0.1");
        let err = device.status().unwrap_err();
        assert_eq!(err.code, StonithCode::Access);
        assert!(
            err.message.contains("'testdev status' failed with rc 2"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_failing_reset_is_reset_failed_and_an_unlisted_host_never_reaches_the_script() {
        let dir = ScriptsDir::new("reset");
        write_script(&dir.0.join("testdev"), &protocol_script(&dir.0), 0o755);
        let mut device = configured(&dir.factory(Duration::from_secs(10)), "198.18.0.9");
        let err = device.reset(ResetRequest::Reset, "stuck").unwrap_err();
        assert_eq!(err.code, StonithCode::ResetFailed);
        assert!(
            err.message
                .contains("'testdev reset' for host stuck failed with rc 1"),
            "{}",
            err.message
        );
        let err = device.reset(ResetRequest::Reset, "hb9").unwrap_err();
        assert_eq!(err.code, StonithCode::BadHost);
        assert_eq!(dir.journal(), "reset stuck\n");
    }

    #[test]
    fn nothing_but_names_and_info_work_before_configure() {
        let dir = ScriptsDir::new("unconfigured");
        write_script(&dir.0.join("testdev"), &protocol_script(&dir.0), 0o755);
        let mut device = dir
            .factory(Duration::from_secs(10))
            .create("external/testdev")
            .unwrap();
        assert_eq!(device.config_names(), ["hostlist", "ipaddr"]);
        assert_eq!(device.status().unwrap_err().code, StonithCode::Invalid);
        assert_eq!(device.hosts().unwrap_err().code, StonithCode::Invalid);
        assert_eq!(
            device.reset(ResetRequest::Reset, "hb1").unwrap_err().code,
            StonithCode::Invalid
        );
        assert_eq!(
            device.info(DeviceInfo::DeviceId).as_deref(),
            Some("Test device\n")
        );
    }

    #[test]
    fn a_group_writable_script_is_refused_at_creation_and_at_every_run() {
        let dir = ScriptsDir::new("writable");
        write_script(&dir.0.join("testdev"), &protocol_script(&dir.0), 0o775);
        let factory = dir.factory(Duration::from_secs(10));
        let err = factory.create("external/testdev").err().unwrap();
        assert_eq!(err.code, StonithCode::Oops);
        assert!(
            err.message.contains("writable by group/others"),
            "{}",
            err.message
        );

        fs::set_permissions(dir.0.join("testdev"), fs::Permissions::from_mode(0o755)).unwrap();
        let mut device = configured(&factory, "198.18.0.9");
        fs::set_permissions(dir.0.join("testdev"), fs::Permissions::from_mode(0o775)).unwrap();
        assert_eq!(device.status().unwrap_err().code, StonithCode::Oops);
        assert!(device.reset(ResetRequest::Reset, "hb1").is_err());
        assert_eq!(dir.journal(), "");
    }

    #[test]
    fn unknown_scripts_and_malformed_types_are_refused() {
        let dir = ScriptsDir::new("unknown");
        let factory = dir.factory(Duration::from_secs(10));
        for device_type in ["external/nosuch", "external/", "external", "external/../x"] {
            let err = factory.create(device_type).err().unwrap();
            assert_eq!(err.code, StonithCode::Oops, "{device_type}");
        }
    }

    #[test]
    fn a_hung_script_times_out_and_is_killed() {
        let dir = ScriptsDir::new("hung");
        let body = r#"case "$1" in
getconfignames) echo hostlist ;;
gethosts) echo hb1 ;;
*) exec sleep 60 ;;
esac
"#;
        write_script(&dir.0.join("testdev"), body, 0o755);
        let factory = dir.factory(Duration::from_millis(300));
        let mut device = factory.create("external/testdev").unwrap();
        device
            .configure(&[("hostlist".to_string(), "hb1".to_string())])
            .unwrap();
        let started = std::time::Instant::now();
        let err = device.reset(ResetRequest::Reset, "hb1").unwrap_err();
        assert_eq!(err.code, StonithCode::Timeout);
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
