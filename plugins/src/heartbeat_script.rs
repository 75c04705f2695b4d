//! Heartbeat-class resource scripts: `/etc/ha.d/resource.d/NAME`, run exactly as Heartbeat
//! 3.0.6's ResourceManager runs them (spec §5.2), and the search that decides whether a
//! haresources name is such a script or an init script.
//!
//! The convention: `<path> [args…] <start|stop|status>`, with the `HA_*` environment of
//! spec §12. Start and stop succeed on exit code 0. Ownership is decided by what `status`
//! prints on stdout, never by its exit code ([`status_output_says_owned`]); the LSB adapter
//! uses the same rule for init scripts named in haresources.
//!
//! This module owns the resource.d convention, the script search and the heartbeat
//! environment. It runs scripts only through [`crate::process`]. It does not parse
//! haresources lines (the host's configuration does) and does not treat `OCF::…` tokens,
//! whose resource.d wrapper is broken in 3.0.6: those go to [`crate::ocf`].

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;
use vigil_plugin_api::{
    Host, LogLevel, OcfStatus, OperationOutcome, ResourceAgent, ResourceInstance,
};

use crate::process::{self, AGENT_OUTPUT_LIMIT, ProcessOutput, ProcessRequest, SCRIPT_PATH};

/// Where Heartbeat's configuration and scripts live unless told otherwise.
pub const DEFAULT_HA_DIR: &str = "/etc/ha.d";

/// Where init scripts live: the second place Heartbeat looks for a haresources name.
pub const DEFAULT_INIT_DIR: &str = "/etc/init.d";

/// Where OCF agents and their shell library live (`OCF_ROOT`).
pub const DEFAULT_OCF_ROOT: &str = "/usr/lib/ocf";

/// The environment Heartbeat exports to every resource script (spec §5.2, §12): the
/// scripts source `$HA_FUNCS` and log through `ha_log`, which reads these variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatEnvironment {
    /// `HA_DIR`: the configuration directory; also gives `HA_FUNCS`
    /// (`<ha_dir>/shellfuncs`) and `HA_RESOURCEDIR` (`<ha_dir>/resource.d`).
    pub ha_dir: PathBuf,
    /// `HA_CURHOST`: this node's name as the cluster knows it (lower-case `uname -n`).
    pub current_host: String,
    /// `HA_LOGFACILITY`: the syslog facility of ha.cf's `logfacility`, empty when unset.
    pub log_facility: Option<String>,
    /// `HA_LOGFILE`: ha.cf's `logfile`, empty when unset.
    pub log_file: Option<PathBuf>,
    /// `HA_DEBUGLOG`: ha.cf's `debugfile`, empty when unset.
    pub debug_log: Option<PathBuf>,
    /// `OCF_ROOT`, for the resource.d wrappers that run OCF agents.
    pub ocf_root: PathBuf,
    /// `PATH` for the scripts.
    pub path: String,
    /// Further variables, set last: ha.cf `env NAME=value` lines and `HA_<field>` values of
    /// the event being handled.
    pub extra: Vec<(String, String)>,
}

impl HeartbeatEnvironment {
    /// The environment of a node named `current_host` with its configuration in `ha_dir`,
    /// no log settings, the standard `OCF_ROOT` and [`SCRIPT_PATH`].
    pub fn new(ha_dir: impl Into<PathBuf>, current_host: impl Into<String>) -> Self {
        Self {
            ha_dir: ha_dir.into(),
            current_host: current_host.into(),
            log_facility: None,
            log_file: None,
            debug_log: None,
            ocf_root: PathBuf::from(DEFAULT_OCF_ROOT),
            path: SCRIPT_PATH.to_owned(),
            extra: Vec::new(),
        }
    }

    /// The variables, in the order they are set (later ones win).
    pub fn variables(&self) -> Vec<(String, String)> {
        let text = |path: &Path| path.to_string_lossy().into_owned();
        let optional = |path: &Option<PathBuf>| path.as_deref().map(text).unwrap_or_default();
        let mut vars = vec![
            ("HA_DIR".to_owned(), text(&self.ha_dir)),
            ("HA_FUNCS".to_owned(), text(&self.ha_dir.join("shellfuncs"))),
            (
                "HA_RESOURCEDIR".to_owned(),
                text(&self.ha_dir.join("resource.d")),
            ),
            ("HA_CURHOST".to_owned(), self.current_host.clone()),
            (
                "HA_LOGFACILITY".to_owned(),
                self.log_facility.clone().unwrap_or_default(),
            ),
            ("HA_LOGFILE".to_owned(), optional(&self.log_file)),
            ("HA_DEBUGLOG".to_owned(), optional(&self.debug_log)),
            // vigil has no ha_logd; scripts log to the files above or to stderr, which the
            // daemon logs.
            ("HA_LOGD".to_owned(), "no".to_owned()),
            ("OCF_ROOT".to_owned(), text(&self.ocf_root)),
            ("PATH".to_owned(), self.path.clone()),
        ];
        vars.extend(self.extra.iter().cloned());
        vars
    }
}

/// What a haresources name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptKind {
    /// A script in `<ha_dir>/resource.d`: run with [`HeartbeatScriptAgent`].
    HeartbeatClass(PathBuf),
    /// An init script: run with [`crate::lsb::LsbAgent`] and the output-text status rule.
    Lsb(PathBuf),
}

/// Why one candidate path was not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptProblem {
    /// Nothing at that path.
    Missing,
    /// Something that is not a regular file (a directory, a device).
    NotRegularFile,
    /// A regular file without execute permission.
    NotExecutable,
}

impl std::fmt::Display for ScriptProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ScriptProblem::Missing => "missing",
            ScriptProblem::NotRegularFile => "not a regular file",
            ScriptProblem::NotExecutable => "not executable",
        })
    }
}

/// A haresources name that names no usable script.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScriptLookupError {
    /// The name cannot be a file name in a directory.
    #[error(
        "resource script name {name:?} is not a plain file name (no '/', not empty, not '.' or '..')"
    )]
    InvalidName { name: String },
    /// No candidate was a regular executable file.
    #[error("no usable resource script {name:?}: {}", describe_tried(.tried))]
    NotFound {
        name: String,
        /// Every path looked at, in search order, with what was wrong with it.
        tried: Vec<(PathBuf, ScriptProblem)>,
    },
}

fn describe_tried(tried: &[(PathBuf, ScriptProblem)]) -> String {
    tried
        .iter()
        .map(|(path, problem)| format!("{} is {problem}", path.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Finds the script for a haresources name as Heartbeat does: `<ha_dir>/resource.d/NAME`,
/// then `<init_dir>/NAME`; the first that is a regular executable file wins.
pub fn find_script(
    name: &str,
    ha_dir: &Path,
    init_dir: &Path,
) -> Result<ScriptKind, ScriptLookupError> {
    if !is_plain_file_name(name) {
        return Err(ScriptLookupError::InvalidName {
            name: name.to_owned(),
        });
    }
    let resource_script = ha_dir.join("resource.d").join(name);
    let init_script = init_dir.join(name);
    let mut tried = Vec::with_capacity(2);
    match check_script(&resource_script) {
        Ok(()) => return Ok(ScriptKind::HeartbeatClass(resource_script)),
        Err(problem) => tried.push((resource_script, problem)),
    }
    match check_script(&init_script) {
        Ok(()) => return Ok(ScriptKind::Lsb(init_script)),
        Err(problem) => tried.push((init_script, problem)),
    }
    Err(ScriptLookupError::NotFound {
        name: name.to_owned(),
        tried,
    })
}

/// Whether `name` can only name an entry directly inside a directory.
pub(crate) fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// Checks that `path` is a regular file with an execute bit (Heartbeat's `-f` and `-x` as
/// root, which vigil runs as).
pub(crate) fn check_script(path: &Path) -> Result<(), ScriptProblem> {
    let meta = fs::metadata(path).map_err(|_| ScriptProblem::Missing)?;
    if !meta.is_file() {
        return Err(ScriptProblem::NotRegularFile);
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(ScriptProblem::NotExecutable);
    }
    Ok(())
}

/// Heartbeat's ownership rule for `status` output (ResourceManager's `we_own_resource`):
/// text containing "not" (any case) followed by a space and later "running" (first letter
/// any case) means not owned; otherwise "running" (first letter any case) or "OK" means
/// owned; anything else, including no output, means not owned.
pub fn status_output_says_owned(stdout: &[u8]) -> bool {
    let says_not_running = stdout.windows(4).enumerate().any(|(i, word)| {
        word.get(..3)
            .is_some_and(|not| not.eq_ignore_ascii_case(b"not"))
            && word.get(3) == Some(&b' ')
            && contains_running(stdout.get(i + 4..).unwrap_or_default())
    });
    !says_not_running && (contains_running(stdout) || stdout.windows(2).any(|w| w == b"OK"))
}

/// Whether `text` contains `[Rr]unning`.
fn contains_running(text: &[u8]) -> bool {
    text.windows(7).any(|word| {
        matches!(word.first(), Some(b'R' | b'r')) && word.get(1..) == Some(b"unning".as_slice())
    })
}

/// Turns haresources positional arguments (`Script::a::b`) into parameters named `1`, `2`,
/// … so that a [`ResourceInstance`] can carry them; [`positional_args`] restores the order.
pub fn positional_params(args: &[String]) -> BTreeMap<String, String> {
    args.iter()
        .enumerate()
        .map(|(i, arg)| ((i + 1).to_string(), arg.clone()))
        .collect()
}

/// The positional arguments stored by [`positional_params`], in order. Any other parameter
/// name, or a gap in the numbering, is a configuration error.
pub fn positional_args(params: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
    let mut numbered = params
        .iter()
        .map(|(name, value)| match name.parse::<usize>() {
            Ok(n) if n >= 1 && name == &n.to_string() => Ok((n, value.clone())),
            _ => Err(format!(
                "parameter {name:?} is not a positional argument number (1, 2, …); \
                 scripts of this kind take only positional arguments"
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    numbered.sort_by_key(|(n, _)| *n);
    for (expected, (n, _)) in (1..).zip(&numbered) {
        if *n != expected {
            return Err(format!(
                "positional argument {expected} is missing (argument {n} is set)"
            ));
        }
    }
    Ok(numbered.into_iter().map(|(_, value)| value).collect())
}

/// A heartbeat-class script (`resource.d`) as a [`ResourceAgent`], following
/// ResourceManager's convention (see the module docs):
/// - start: skipped when `status` already says owned; otherwise success on exit code 0;
/// - stop: success on exit code 0, and also when it fails but `status` then says not owned
///   (Heartbeat only warns then: the script is not LSB-compliant, the resource is stopped);
/// - monitor: `status`, decided by its output text;
/// - validate: the script is a regular executable file.
///
/// Stop retries (`HA_STOPRETRYMAX`) and the reboot after an unrecoverable stop belong to
/// the failover logic, not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatScriptAgent {
    /// The script to run.
    script: PathBuf,
    /// Its whole environment (it does not inherit the daemon's).
    env: Vec<(String, String)>,
}

impl HeartbeatScriptAgent {
    /// The agent for `script`, run with `environment`.
    pub fn new(script: impl Into<PathBuf>, environment: &HeartbeatEnvironment) -> Self {
        Self::with_variables(script.into(), environment.variables())
    }

    /// The agent for `script` with exactly these variables: init scripts named in
    /// haresources run by this convention with the LSB adapter's environment.
    pub(crate) fn with_variables(script: PathBuf, env: Vec<(String, String)>) -> Self {
        Self { script, env }
    }

    /// The script this agent runs.
    pub fn script(&self) -> &Path {
        &self.script
    }

    fn name(&self) -> String {
        script_name(&self.script)
    }

    /// Runs `<script> [args…] <action>`; the exit code and output, or the finished failed
    /// operation.
    fn run_action(
        &self,
        action: &str,
        instance: &ResourceInstance,
        host: &dyn Host,
    ) -> Result<(i32, ProcessOutput), OperationOutcome> {
        run_script(&self.script, &[action], instance, &self.env, true, host)
    }

    /// Runs `status` and applies the output-text rule.
    fn owned(
        &self,
        instance: &ResourceInstance,
        host: &dyn Host,
    ) -> Result<bool, OperationOutcome> {
        self.run_action("status", instance, host)
            .map(|(_, output)| status_output_says_owned(&output.stdout))
    }
}

impl ResourceAgent for HeartbeatScriptAgent {
    fn metadata(&self) -> String {
        script_metadata(
            &self.name(),
            &format!(
                "Heartbeat resource script {}, called as `{} [args…] start|stop|status`; \
                 ownership is decided by the text status prints.",
                self.script.display(),
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
        let name = self.name();
        match self.owned(instance, host) {
            Ok(true) => {
                return OperationOutcome::success(format!(
                    "{name} already running (status says so); start skipped"
                ));
            }
            Ok(false) => {}
            Err(failed) => return failed,
        }
        match self.run_action("start", instance, host) {
            Ok((0, _)) => OperationOutcome::success(format!("{name} started")),
            Ok((code, output)) => failed_with_code(&name, "start", code, &output),
            Err(failed) => failed,
        }
    }

    fn stop(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        let name = self.name();
        let failure = match self.run_action("stop", instance, host) {
            Ok((0, _)) => return OperationOutcome::success(format!("{name} stopped")),
            Ok((code, output)) => failed_with_code(&name, "stop", code, &output),
            Err(failed) => failed,
        };
        match self.owned(instance, host) {
            Ok(false) => {
                host.log(
                    LogLevel::Warning,
                    &format!(
                        "{} ({}); status says not running, so it counts as stopped: the \
                         script must succeed on stop when already stopped",
                        failure.message, failure.status
                    ),
                );
                OperationOutcome::success(format!(
                    "{name} is not running (its stop failed: {})",
                    failure.message
                ))
            }
            Ok(true) | Err(_) => failure,
        }
    }

    fn monitor(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        let name = self.name();
        match self.owned(instance, host) {
            Ok(true) => OperationOutcome::success(format!("{name} is running")),
            Ok(false) => OperationOutcome::new(
                OcfStatus::NotRunning,
                format!("{name} is not running (status output)"),
            ),
            Err(failed) => failed,
        }
    }
}

/// The last path component of a script, its name in messages and meta-data.
pub(crate) fn script_name(script: &Path) -> String {
    script
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| script.display().to_string())
}

/// Validate for script adapters: the script is a regular executable file and the
/// parameters are positional arguments.
pub(crate) fn validate_script(script: &Path, instance: &ResourceInstance) -> OperationOutcome {
    if let Err(problem) = check_script(script) {
        return OperationOutcome::new(
            OcfStatus::ErrInstalled,
            format!("{} is {problem}", script.display()),
        );
    }
    match positional_args(&instance.params) {
        Ok(_) => OperationOutcome::success(format!("{} is an executable script", script.display())),
        Err(reason) => OperationOutcome::new(OcfStatus::ErrConfigured, reason),
    }
}

/// Runs `<script> [positional args…] <trailing…>` for an operation with exactly `env`, logs
/// its output for the debug log, and returns the exit code with the output or the finished
/// failed operation. `positional` says whether the instance's parameters are positional
/// arguments (resource.d and init scripts) or none are passed (OCF agents take theirs from
/// the environment).
pub(crate) fn run_script(
    script: &Path,
    trailing: &[&str],
    instance: &ResourceInstance,
    env: &[(String, String)],
    positional: bool,
    host: &dyn Host,
) -> Result<(i32, ProcessOutput), OperationOutcome> {
    let what = format!("{} {}", script_name(script), trailing.join(" "));
    let mut args = if positional {
        positional_args(&instance.params).map_err(|reason| {
            OperationOutcome::new(OcfStatus::ErrConfigured, format!("{what}: {reason}"))
        })?
    } else {
        Vec::new()
    };
    args.extend(trailing.iter().map(|arg| (*arg).to_owned()));
    let request = ProcessRequest {
        program: script.to_path_buf(),
        args,
        env: env.to_vec(),
        clear_env: true,
        timeout: instance.timeout,
        max_output: AGENT_OUTPUT_LIMIT,
    };
    let result = process::operation_exit_code(&request, &what);
    if let Ok((code, output)) = &result {
        log_output(host, &what, *code, output);
    }
    result
}

/// Heartbeat appends every script's output to its debug log; so does vigil, through the
/// host's log.
fn log_output(host: &dyn Host, what: &str, code: i32, output: &ProcessOutput) {
    for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim_end();
        if !text.is_empty() {
            host.log(
                LogLevel::Debug,
                &format!("{what} (exit {code}) {stream}: {text}"),
            );
        }
    }
}

/// The failed operation for a script that exited with a non-zero code.
pub(crate) fn failed_with_code(
    name: &str,
    action: &str,
    code: i32,
    output: &ProcessOutput,
) -> OperationOutcome {
    let reason = output
        .last_line()
        .map(|line| format!(": {line}"))
        .unwrap_or_default();
    OperationOutcome::new(
        OcfStatus::ErrGeneric,
        format!("{name} {action} failed with exit code {code}{reason}"),
    )
}

/// OCF meta-data for a script that has none of its own (resource.d and init scripts), so
/// that `vigil plugins` and the registry can describe every agent the same way.
pub(crate) fn script_metadata(name: &str, description: &str, actions: &[&str]) -> String {
    let name = xml_escape(name);
    let description = xml_escape(description);
    let actions: String = actions
        .iter()
        .map(|action| {
            format!(
                "    <action name=\"{}\" timeout=\"20s\"/>\n",
                xml_escape(action)
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?>\n\
         <!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n\
         <resource-agent name=\"{name}\" version=\"1.0\">\n\
         \x20 <version>1.0</version>\n\
         \x20 <longdesc lang=\"en\">{description}</longdesc>\n\
         \x20 <shortdesc lang=\"en\">{name}</shortdesc>\n\
         \x20 <parameters/>\n\
         \x20 <actions>\n{actions}  </actions>\n\
         </resource-agent>\n"
    )
}

/// Escapes text for an XML attribute or element.
fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(text: &str) -> bool {
        status_output_says_owned(text.as_bytes())
    }

    #[test]
    fn status_text_not_running_means_not_owned() {
        assert!(!owned("httpd is not running"));
        assert!(!owned("Not running"));
        assert!(!owned("NOT yet Running, OK?"));
        assert!(!owned(
            "INFO: x\nservice is not\trunning? no: not really running"
        ));
    }

    #[test]
    fn status_text_running_or_ok_means_owned() {
        assert!(owned("INFO: IPaddr Running OK"));
        assert!(owned("httpd (pid 42) is running..."));
        assert!(owned("OK"));
        assert!(owned("Running"));
    }

    #[test]
    fn status_text_without_running_or_ok_means_not_owned() {
        assert!(!owned(""));
        assert!(!owned("INFO: IPaddr Resource is stopped"));
        assert!(!owned("ok"));
        assert!(!owned("RUNNING"));
        // Heartbeat's glob: "not" followed by a space negates, wherever it stands, even
        // inside a word; without the space it does not.
        assert!(owned("notrunning"));
        assert!(!owned("cannot stop: still running"));
    }

    #[test]
    fn status_text_rule_works_on_any_bytes() {
        assert!(owned("\u{fffd}running"));
        assert!(status_output_says_owned(b"\xff\xfe running"));
        assert!(!status_output_says_owned(b"\xff not \xfe running"));
    }

    #[test]
    fn positional_arguments_round_trip_in_order() {
        let args: Vec<String> = (1..=12).map(|i| format!("arg{i}")).collect();
        let params = positional_params(&args);
        assert_eq!(positional_args(&params).unwrap(), args);
    }

    #[test]
    fn positional_arguments_refuse_names_and_gaps() {
        let mut params = positional_params(&["a".into()]);
        params.insert("3".into(), "c".into());
        assert!(
            positional_args(&params)
                .unwrap_err()
                .contains("argument 2 is missing")
        );
        let named: BTreeMap<String, String> = [("ip".to_owned(), "x".to_owned())].into();
        assert!(positional_args(&named).unwrap_err().contains("\"ip\""));
        let padded: BTreeMap<String, String> = [("01".to_owned(), "x".to_owned())].into();
        assert!(positional_args(&padded).is_err());
    }

    #[test]
    fn environment_has_heartbeat_variables_with_empty_logs_when_unset() {
        let mut env = HeartbeatEnvironment::new("/etc/ha.d", "node1");
        env.log_file = Some(PathBuf::from("/var/log/ha-log"));
        env.extra.push(("HA_debug".into(), "0".into()));
        let vars: BTreeMap<String, String> = env.variables().into_iter().collect();
        assert_eq!(vars["HA_DIR"], "/etc/ha.d");
        assert_eq!(vars["HA_FUNCS"], "/etc/ha.d/shellfuncs");
        assert_eq!(vars["HA_RESOURCEDIR"], "/etc/ha.d/resource.d");
        assert_eq!(vars["HA_CURHOST"], "node1");
        assert_eq!(vars["HA_LOGFILE"], "/var/log/ha-log");
        assert_eq!(vars["HA_LOGFACILITY"], "");
        assert_eq!(vars["HA_DEBUGLOG"], "");
        assert_eq!(vars["HA_LOGD"], "no");
        assert_eq!(vars["OCF_ROOT"], "/usr/lib/ocf");
        assert_eq!(vars["PATH"], SCRIPT_PATH);
        assert_eq!(vars["HA_debug"], "0");
    }

    #[test]
    fn script_names_must_be_plain_file_names() {
        for bad in ["", ".", "..", "a/b", "../x"] {
            let err =
                find_script(bad, Path::new("/etc/ha.d"), Path::new("/etc/init.d")).unwrap_err();
            assert!(
                matches!(err, ScriptLookupError::InvalidName { .. }),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn generated_metadata_escapes_names() {
        let xml = script_metadata("a<b&\"c\"", "d > e", &["start"]);
        assert!(xml.contains("name=\"a&lt;b&amp;&quot;c&quot;\""), "{xml}");
        assert!(xml.contains("d &gt; e"), "{xml}");
        assert!(xml.contains("<action name=\"start\""), "{xml}");
        assert!(xml.trim_end().ends_with("</resource-agent>"));
    }
}
