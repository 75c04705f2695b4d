//! OCF resource agents (`$OCF_ROOT/resource.d/<provider>/<type>`, spec §10), run unchanged.
//!
//! The agent gets the action as its single argument and the OCF environment: `OCF_ROOT`,
//! `OCF_RA_VERSION_MAJOR`/`MINOR` (1.0), `OCF_RESOURCE_INSTANCE`, `OCF_RESOURCE_TYPE`,
//! `OCF_RESOURCE_PROVIDER`, `OCF_RESKEY_<name>` for every parameter, `OCF_CHECK_LEVEL=0` for
//! monitor, and `HA_RSCTMP`. Its exit code is the OCF status. `monitor` is called as
//! `monitor`, never as `status`: passing `status` was how Heartbeat 3.0.6's `OCF` wrapper
//! broke agents that only know `monitor`.
//!
//! Two ways to configure one:
//! - vigil's YAML names provider, type and parameters: [`OcfAgent::new`] plus a
//!   [`ResourceInstance`] the host builds from the parameter map.
//! - haresources' `OCF::<type>::<instance>` (spec §5.2): [`from_haresources`] finds the
//!   agent under any provider (`heartbeat` first) and reads the parameters from the shell
//!   variable file `<ha_dir>/conf/OCF/<type>/<instance>` ([`parse_instance_file`]). This
//!   replaces Heartbeat's `resource.d/OCF` wrapper, which 3.0.6 ships broken (it searches
//!   the wrong directory and calls `status`).
//!
//! This module owns the OCF calling convention. It runs agents only through
//! [`crate::process`]; it does not interpret the status beyond the code (the failover logic
//! does).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;
use vigil_plugin_api::{
    Host, LogLevel, OcfStatus, OperationOutcome, ResourceAgent, ResourceInstance,
};

use crate::heartbeat_script::{
    HeartbeatEnvironment, check_script, is_plain_file_name, run_script, script_metadata,
};
use crate::process::{self, AGENT_OUTPUT_LIMIT, ProcessRequest, SCRIPT_PATH};

/// Where agents keep run-time state unless configured otherwise (`HA_RSCTMP`); what
/// resource-agents' own `ocf-directories` defaults to.
pub const DEFAULT_RSC_TMP: &str = "/run/resource-agents";

/// The provider Heartbeat's agents come under; searched first for haresources names.
pub const HEARTBEAT_PROVIDER: &str = "heartbeat";

/// How long `meta-data` may take: it only prints text (agents declare 5 s).
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// The OCF resource agent API version vigil implements.
const OCF_RA_VERSION: (&str, &str) = ("1", "0");

/// The prefix of parameter variables.
const RESKEY_PREFIX: &str = "OCF_RESKEY_";

/// An OCF agent or its configuration could not be set up.
#[derive(Debug, Error)]
pub enum OcfError {
    /// A provider, type or instance name that cannot be a single file name.
    #[error("OCF {what} {name:?} is not a plain name (no '/', not empty, not '.' or '..')")]
    InvalidName { what: &'static str, name: String },
    /// No provider has an agent of this type.
    #[error("no OCF agent {agent_type:?} under {}/*/ (is the package providing it installed?)", .resource_dir.display())]
    AgentNotFound {
        agent_type: String,
        resource_dir: PathBuf,
    },
    /// A haresources `OCF::…` token without exactly a type and an instance.
    #[error(
        "OCF resource needs exactly OCF::<type>::<instance>, got {count} argument(s) after OCF"
    )]
    HaresourcesArguments { count: usize },
    /// The instance file could not be read.
    #[error("cannot read OCF instance file {}: {source}", .path.display())]
    InstanceFileUnreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The instance file is not a list of `NAME=value` lines.
    #[error("OCF instance file {}: {source}", .path.display())]
    InstanceFileSyntax {
        path: PathBuf,
        #[source]
        source: InstanceFileError,
    },
    /// `meta-data` failed.
    #[error("meta-data of {}: {reason}", .agent.display())]
    Metadata { agent: PathBuf, reason: String },
}

/// A line of an instance file that is not a plain `NAME=value` assignment.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {reason}")]
pub struct InstanceFileError {
    /// 1-based.
    pub line: usize,
    /// What is wrong and what was expected.
    pub reason: String,
}

/// One OCF agent type under one provider, as a [`ResourceAgent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcfAgent {
    /// `OCF_ROOT`.
    ocf_root: PathBuf,
    /// `OCF_RESOURCE_PROVIDER` (`heartbeat`).
    provider: String,
    /// `OCF_RESOURCE_TYPE` (`Dummy`).
    agent_type: String,
    /// `HA_RSCTMP`: created if missing before an operation, since agents keep pid and
    /// state files there and fail confusingly without it.
    rsc_tmp: PathBuf,
    /// Variables set before the OCF ones (which win): the heartbeat environment and an
    /// instance file's non-parameter variables for haresources resources.
    extra_env: Vec<(String, String)>,
}

impl OcfAgent {
    /// The agent `<ocf_root>/resource.d/<provider>/<agent_type>`, keeping its run-time
    /// state in `rsc_tmp`. Whether the script exists is checked by each operation (and by
    /// validate), so that installing it later needs no reconfiguration.
    pub fn new(
        ocf_root: impl Into<PathBuf>,
        provider: &str,
        agent_type: &str,
        rsc_tmp: impl Into<PathBuf>,
    ) -> Result<Self, OcfError> {
        check_name("provider", provider)?;
        check_name("type", agent_type)?;
        Ok(Self {
            ocf_root: ocf_root.into(),
            provider: provider.to_owned(),
            agent_type: agent_type.to_owned(),
            rsc_tmp: rsc_tmp.into(),
            extra_env: Vec::new(),
        })
    }

    /// The same agent with `env` set for every operation before the OCF variables.
    pub fn with_environment(mut self, env: Vec<(String, String)>) -> Self {
        self.extra_env = env;
        self
    }

    /// The agent's script.
    pub fn script(&self) -> PathBuf {
        self.ocf_root
            .join("resource.d")
            .join(&self.provider)
            .join(&self.agent_type)
    }

    /// The provider (`heartbeat`).
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The type (`Dummy`).
    pub fn agent_type(&self) -> &str {
        &self.agent_type
    }

    /// The whole environment of `action` for `instance`. A parameter name that cannot be
    /// part of a variable name, or a NUL byte, is a configuration error.
    pub fn environment(
        &self,
        instance: &ResourceInstance,
        action: &str,
    ) -> Result<Vec<(String, String)>, String> {
        let text = |path: &Path| path.to_string_lossy().into_owned();
        let mut env = vec![("PATH".to_owned(), SCRIPT_PATH.to_owned())];
        env.extend(self.extra_env.iter().cloned());
        env.extend([
            ("OCF_ROOT".to_owned(), text(&self.ocf_root)),
            (
                "OCF_RA_VERSION_MAJOR".to_owned(),
                OCF_RA_VERSION.0.to_owned(),
            ),
            (
                "OCF_RA_VERSION_MINOR".to_owned(),
                OCF_RA_VERSION.1.to_owned(),
            ),
            ("OCF_RESOURCE_INSTANCE".to_owned(), instance.name.clone()),
            ("OCF_RESOURCE_TYPE".to_owned(), self.agent_type.clone()),
            ("OCF_RESOURCE_PROVIDER".to_owned(), self.provider.clone()),
            ("HA_RSCTMP".to_owned(), text(&self.rsc_tmp)),
        ]);
        for (name, value) in &instance.params {
            if !is_variable_name(name) {
                return Err(format!(
                    "parameter name {name:?} cannot be passed as {RESKEY_PREFIX}{name} \
                     (letters, digits and '_' only, not starting with a digit)"
                ));
            }
            env.push((format!("{RESKEY_PREFIX}{name}"), value.clone()));
        }
        if action == "monitor" {
            env.push(("OCF_CHECK_LEVEL".to_owned(), "0".to_owned()));
        }
        if let Some((name, _)) = env
            .iter()
            .find(|(name, value)| name.contains('\0') || value.contains('\0'))
        {
            return Err(format!("variable {name:?} contains a NUL byte"));
        }
        Ok(env)
    }

    /// Runs `meta-data` and returns its XML (exit code 0, an XML document on stdout).
    pub fn fetch_metadata(&self) -> Result<String, OcfError> {
        let agent = self.script();
        let failed = |reason: String| OcfError::Metadata {
            agent: agent.clone(),
            reason,
        };
        let instance = ResourceInstance {
            name: self.agent_type.clone(),
            params: BTreeMap::new(),
            timeout: METADATA_TIMEOUT,
            grants: Default::default(),
        };
        let env = self.environment(&instance, "meta-data").map_err(failed)?;
        let request = ProcessRequest {
            program: agent.clone(),
            args: vec!["meta-data".to_owned()],
            env,
            clear_env: true,
            timeout: METADATA_TIMEOUT,
            max_output: AGENT_OUTPUT_LIMIT,
        };
        let (code, output) = process::operation_exit_code(&request, "meta-data")
            .map_err(|outcome| failed(outcome.message))?;
        if code != 0 {
            return Err(failed(format!("exit code {code}")));
        }
        let xml = String::from_utf8(output.stdout)
            .map_err(|_| failed("the output is not UTF-8".to_owned()))?;
        if !xml.contains("<resource-agent") {
            return Err(failed(
                "the output has no <resource-agent> element".to_owned(),
            ));
        }
        Ok(xml)
    }

    /// Makes sure `HA_RSCTMP` exists (sticky and world-readable, as resource-agents'
    /// tmpfiles.d creates it); a failure is logged and left for the agent to report.
    fn prepare_rsc_tmp(&self, host: &dyn Host) {
        if self.rsc_tmp.is_dir() {
            return;
        }
        if let Err(err) = fs::DirBuilder::new()
            .recursive(true)
            .mode(0o1755)
            .create(&self.rsc_tmp)
        {
            host.log(
                LogLevel::Warning,
                &format!("cannot create HA_RSCTMP {}: {err}", self.rsc_tmp.display()),
            );
        }
    }

    /// Runs one OCF action; its exit code is the status.
    fn run_action(
        &self,
        action: &str,
        instance: &ResourceInstance,
        host: &dyn Host,
    ) -> OperationOutcome {
        let what = format!("{} {action}", self.agent_type);
        let env = match self.environment(instance, action) {
            Ok(env) => env,
            Err(reason) => {
                return OperationOutcome::new(
                    OcfStatus::ErrConfigured,
                    format!("{what}: {reason}"),
                );
            }
        };
        self.prepare_rsc_tmp(host);
        let (code, output) =
            match run_script(&self.script(), &[action], instance, &env, false, host) {
                Ok(result) => result,
                Err(failed) => return failed,
            };
        let status = u8::try_from(code).map_or(OcfStatus::ErrGeneric, OcfStatus::from_code);
        let reason = match (status, output.last_line()) {
            (OcfStatus::Success | OcfStatus::NotRunning, _) | (_, None) => String::new(),
            (_, Some(line)) => format!(": {line}"),
        };
        OperationOutcome::new(status, format!("{what}: {status}{reason}"))
    }
}

impl ResourceAgent for OcfAgent {
    fn metadata(&self) -> String {
        self.fetch_metadata().unwrap_or_else(|err| {
            tracing::warn!(agent = %self.script().display(), error = %err, "OCF meta-data failed");
            script_metadata(
                &self.agent_type,
                &format!(
                    "OCF agent {} (its meta-data failed: {err})",
                    self.script().display()
                ),
                &["start", "stop", "monitor", "validate-all", "meta-data"],
            )
        })
    }

    fn validate(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        let script = self.script();
        if let Err(problem) = check_script(&script) {
            return OperationOutcome::new(
                OcfStatus::ErrInstalled,
                format!("OCF agent {} is {problem}", script.display()),
            );
        }
        let outcome = self.run_action("validate-all", instance, host);
        if outcome.status == OcfStatus::ErrUnimplemented {
            return OperationOutcome::success(format!(
                "{} has no validate-all; the agent is installed",
                self.agent_type
            ));
        }
        outcome
    }

    fn start(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        self.run_action("start", instance, host)
    }

    fn stop(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        self.run_action("stop", instance, host)
    }

    fn monitor(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        self.run_action("monitor", instance, host)
    }
}

/// A haresources `OCF::<type>::<instance>` resource, resolved: the agent and the instance
/// to run it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaresourcesOcf {
    /// The agent, with the heartbeat environment and the instance file's other variables.
    pub agent: OcfAgent,
    /// Named after `<instance>`, with the instance file's `OCF_RESKEY_*` values.
    pub instance: ResourceInstance,
}

/// Resolves `OCF::<type>::<instance>` (`args` is `[type, instance]`): the agent of that type
/// under any provider of `environment.ocf_root` ([`find_provider`]), parameters from
/// `<ha_dir>/conf/OCF/<type>/<instance>` ([`parse_instance_file`]), the heartbeat
/// environment as Heartbeat's wrapper had it, and `timeout` for every operation.
pub fn from_haresources(
    args: &[String],
    environment: &HeartbeatEnvironment,
    rsc_tmp: &Path,
    timeout: Duration,
) -> Result<HaresourcesOcf, OcfError> {
    let [agent_type, instance_name] = args else {
        return Err(OcfError::HaresourcesArguments { count: args.len() });
    };
    check_name("type", agent_type)?;
    check_name("instance", instance_name)?;
    let provider = find_provider(&environment.ocf_root, agent_type)?;
    let path = environment
        .ha_dir
        .join("conf")
        .join("OCF")
        .join(agent_type)
        .join(instance_name);
    let text = fs::read(&path).map_err(|source| OcfError::InstanceFileUnreadable {
        path: path.clone(),
        source,
    })?;
    let syntax = |source: InstanceFileError| OcfError::InstanceFileSyntax {
        path: path.clone(),
        source,
    };
    let text = String::from_utf8(text).map_err(|err| {
        let valid = err
            .as_bytes()
            .get(..err.utf8_error().valid_up_to())
            .unwrap_or_default();
        syntax(InstanceFileError {
            line: 1 + valid.iter().filter(|b| **b == b'\n').count(),
            reason: "not UTF-8 text".to_owned(),
        })
    })?;
    let file = parse_instance_file(&text).map_err(syntax)?;
    let mut env = environment.variables();
    env.extend(file.env);
    let agent =
        OcfAgent::new(&environment.ocf_root, &provider, agent_type, rsc_tmp)?.with_environment(env);
    Ok(HaresourcesOcf {
        agent,
        instance: ResourceInstance {
            name: instance_name.clone(),
            params: file.params,
            timeout,
            grants: Default::default(),
        },
    })
}

/// The provider that has an agent `agent_type`: `heartbeat` if it does, else the first
/// other provider in name order. (Heartbeat 3.0.6's wrapper looked one directory too deep.)
pub fn find_provider(ocf_root: &Path, agent_type: &str) -> Result<String, OcfError> {
    check_name("type", agent_type)?;
    let resource_dir = ocf_root.join("resource.d");
    let has_agent =
        |provider: &str| check_script(&resource_dir.join(provider).join(agent_type)).is_ok();
    if has_agent(HEARTBEAT_PROVIDER) {
        return Ok(HEARTBEAT_PROVIDER.to_owned());
    }
    let mut providers: Vec<String> = fs::read_dir(&resource_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().into_string().ok())
                .filter(|name| is_plain_file_name(name))
                .collect()
        })
        .unwrap_or_default();
    providers.sort();
    providers
        .into_iter()
        .find(|provider| has_agent(provider))
        .ok_or_else(|| OcfError::AgentNotFound {
            agent_type: agent_type.to_owned(),
            resource_dir,
        })
}

/// The contents of a haresources OCF instance file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceFile {
    /// `OCF_RESKEY_<name>=value` lines, by `<name>`.
    pub params: BTreeMap<String, String>,
    /// Every other variable, exported unchanged as Heartbeat's wrapper exported them.
    pub env: Vec<(String, String)>,
}

/// Parses an instance file: `NAME=value` lines (optionally `export NAME=value`), `#`
/// comments and blank lines, values unquoted or in single or double quotes with shell
/// backslash escapes. Heartbeat sourced the file with `sh`; anything beyond plain
/// assignments (expansions, commands, several assignments on a line) is refused rather than
/// guessed at. A later assignment replaces an earlier one. Errors carry the 1-based line.
pub fn parse_instance_file(text: &str) -> Result<InstanceFile, InstanceFileError> {
    let mut params = BTreeMap::new();
    let mut env: Vec<(String, String)> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_number = index + 1;
        let error = |reason: String| InstanceFileError {
            line: line_number,
            reason,
        };
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export")
            .filter(|rest| rest.starts_with([' ', '\t']))
            .map_or(line, str::trim_start);
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| error(format!("expected NAME=value, found {:?}", raw.trim())))?;
        if !is_variable_name(name) {
            return Err(error(format!("{name:?} is not a shell variable name")));
        }
        let value = parse_shell_value(value).map_err(error)?;
        match name.strip_prefix(RESKEY_PREFIX) {
            Some("") => {
                return Err(error(format!(
                    "{RESKEY_PREFIX} needs a parameter name after it"
                )));
            }
            Some(param) => {
                params.insert(param.to_owned(), value);
            }
            None => {
                env.retain(|(existing, _)| existing != name);
                env.push((name.to_owned(), value));
            }
        }
    }
    Ok(InstanceFile { params, env })
}

/// The value of one shell assignment, up to an unquoted blank or `#` comment.
fn parse_shell_value(text: &str) -> Result<String, String> {
    let no_expansion = |c: char| {
        format!("{c:?} (expansion or command substitution) is not supported; quote it with '…'")
    };
    let mut value = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err("unterminated '…' quote".to_owned()),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c @ ('"' | '\\' | '$' | '`')) => value.push(c),
                        Some(c) => {
                            value.push('\\');
                            value.push(c);
                        }
                        None => return Err("unterminated \"…\" quote".to_owned()),
                    },
                    Some(c @ ('$' | '`')) => return Err(no_expansion(c)),
                    Some(c) => value.push(c),
                    None => return Err("unterminated \"…\" quote".to_owned()),
                }
            },
            '\\' => match chars.next() {
                Some(c) => value.push(c),
                None => return Err("a line may not end in a backslash".to_owned()),
            },
            '$' | '`' => return Err(no_expansion(c)),
            ' ' | '\t' => {
                let rest = chars.as_str().trim_start();
                if rest.is_empty() || rest.starts_with('#') {
                    break;
                }
                return Err(format!(
                    "only one assignment per line, and no commands (found {rest:?} after the value)"
                ));
            }
            ';' | '&' | '|' | '<' | '>' | '(' | ')' => {
                return Err(format!("{c:?} is shell syntax; quote the value"));
            }
            c => value.push(c),
        }
    }
    Ok(value)
}

fn check_name(what: &'static str, name: &str) -> Result<(), OcfError> {
    if is_plain_file_name(name) {
        Ok(())
    } else {
        Err(OcfError::InvalidName {
            what,
            name: name.to_owned(),
        })
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`: a name the shell can read back.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(params: &[(&str, &str)]) -> ResourceInstance {
        ResourceInstance {
            name: "inst1".into(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            timeout: Duration::from_secs(20),
            grants: Default::default(),
        }
    }

    fn agent() -> OcfAgent {
        OcfAgent::new("/usr/lib/ocf", "heartbeat", "Dummy", "/run/resource-agents").unwrap()
    }

    #[test]
    fn environment_carries_the_ocf_variables_and_parameters() {
        let env: BTreeMap<_, _> = agent()
            .environment(&instance(&[("state", "/tmp/x"), ("fake", "")]), "start")
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(env["OCF_ROOT"], "/usr/lib/ocf");
        assert_eq!(env["OCF_RA_VERSION_MAJOR"], "1");
        assert_eq!(env["OCF_RA_VERSION_MINOR"], "0");
        assert_eq!(env["OCF_RESOURCE_INSTANCE"], "inst1");
        assert_eq!(env["OCF_RESOURCE_TYPE"], "Dummy");
        assert_eq!(env["OCF_RESOURCE_PROVIDER"], "heartbeat");
        assert_eq!(env["HA_RSCTMP"], "/run/resource-agents");
        assert_eq!(env["OCF_RESKEY_state"], "/tmp/x");
        assert_eq!(env["OCF_RESKEY_fake"], "");
        assert_eq!(env["PATH"], SCRIPT_PATH);
        assert!(!env.contains_key("OCF_CHECK_LEVEL"));
    }

    #[test]
    fn monitor_gets_check_level_zero() {
        let env = agent().environment(&instance(&[]), "monitor").unwrap();
        assert!(env.contains(&("OCF_CHECK_LEVEL".to_owned(), "0".to_owned())));
    }

    #[test]
    fn ocf_variables_win_over_extra_environment() {
        let env = agent()
            .with_environment(vec![("OCF_RESOURCE_TYPE".into(), "Other".into())])
            .environment(&instance(&[]), "start")
            .unwrap();
        let last = env
            .iter()
            .rev()
            .find(|(k, _)| k == "OCF_RESOURCE_TYPE")
            .unwrap();
        assert_eq!(last.1, "Dummy");
    }

    #[test]
    fn parameter_names_that_are_not_variable_names_are_refused() {
        for bad in ["a-b", "1st", "", "a b"] {
            let err = agent()
                .environment(&instance(&[(bad, "v")]), "start")
                .unwrap_err();
            assert!(err.contains("cannot be passed"), "{bad:?}: {err}");
        }
        let err = agent()
            .environment(&instance(&[("ok", "a\0b")]), "start")
            .unwrap_err();
        assert!(err.contains("NUL"), "{err}");
    }

    #[test]
    fn names_with_slashes_are_refused() {
        assert!(matches!(
            OcfAgent::new("/usr/lib/ocf", "../x", "Dummy", "/run"),
            Err(OcfError::InvalidName {
                what: "provider",
                ..
            })
        ));
        assert!(matches!(
            OcfAgent::new("/usr/lib/ocf", "heartbeat", "a/b", "/run"),
            Err(OcfError::InvalidName { what: "type", .. })
        ));
    }

    #[test]
    fn instance_file_assignments_become_parameters_and_variables() {
        let file = parse_instance_file(
            "# Dummy instance\n\
             OCF_RESKEY_state=/var/run/x.state\n\
             \n  export OCF_RESKEY_fake='two words # not a comment'\n\
             OCF_RESKEY_q=\"a \\\"b\\\" \\$c\"   # comment\n\
             OCF_RESKEY_esc=a\\ b\n\
             OCF_CHECK_LEVEL=10\n\
             OCF_RESKEY_state=/override\n",
        )
        .unwrap();
        assert_eq!(file.params["state"], "/override");
        assert_eq!(file.params["fake"], "two words # not a comment");
        assert_eq!(file.params["q"], "a \"b\" $c");
        assert_eq!(file.params["esc"], "a b");
        assert_eq!(
            file.env,
            vec![("OCF_CHECK_LEVEL".to_owned(), "10".to_owned())]
        );
    }

    #[test]
    fn instance_file_refuses_what_is_not_a_plain_assignment() {
        let cases = [
            ("just words\n", 1, "expected NAME=value"),
            ("A=1\n1A=2\n", 2, "not a shell variable name"),
            ("A=$HOME\n", 1, "expansion"),
            ("A=\"x`id`\"\n", 1, "expansion"),
            ("A=1 B=2\n", 1, "one assignment"),
            ("A='open\n", 1, "unterminated"),
            ("A=x;rm\n", 1, "shell syntax"),
            ("OCF_RESKEY_=1\n", 1, "needs a parameter name"),
        ];
        for (text, line, reason) in cases {
            let err = parse_instance_file(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}");
            assert!(err.reason.contains(reason), "{text:?}: {err}");
        }
    }

    #[test]
    fn haresources_form_needs_type_and_instance() {
        let env = HeartbeatEnvironment::new("/etc/ha.d", "node1");
        let err = from_haresources(
            &["Dummy".into()],
            &env,
            Path::new("/run"),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(
            matches!(err, OcfError::HaresourcesArguments { count: 1 }),
            "{err}"
        );
        let err = from_haresources(
            &["Dummy".into(), "../../etc/passwd".into()],
            &env,
            Path::new("/run"),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                OcfError::InvalidName {
                    what: "instance",
                    ..
                }
            ),
            "{err}"
        );
    }
}
