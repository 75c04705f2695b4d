//! `vigil plugins` (every plugin of every origin, and the files that were refused) and `vigil
//! plugin test` (the SDK's conformance checks on one resource agent of any origin).
//!
//! Owns turning the command line into a registry listing or into one agent, its parameters
//! and its grants, and printing the result. The checks themselves are the SDK's harness
//! (`vigil_sdk::harness`), so a plugin author's unit tests and an operator's run of this
//! command demand the same things. `plugin test` acts on the real system, as `ocf-tester`
//! does: the agent really starts and stops its resource.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use vigil_agents::lsb::{LsbAgent, StatusRule};
use vigil_agents::ocf::{DEFAULT_RSC_TMP, OcfAgent};
use vigil_plugin_api::{Capability, Grants, PluginKind, Registry, ResourceAgent};
use vigil_sdk::harness::{self, Conformance};

use crate::agent_host::SystemHost;
use crate::registry::{self, LoadedPlugins};

/// Prints every plugin as a table, then every refused file; fails if any was refused so
/// that a deployment script notices a broken plugin.
pub fn list(plugins: &LoadedPlugins) -> ExitCode {
    let rows: Vec<[String; 5]> = plugins
        .registry
        .list()
        .into_iter()
        .map(|info| {
            [
                info.kind.to_string(),
                info.name,
                info.origin.to_string(),
                info.version,
                info.description,
            ]
        })
        .collect();
    let header = ["KIND", "NAME", "ORIGIN", "VERSION", "DESCRIPTION"].map(String::from);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        println!(
            "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
    }
    for refused in &plugins.refused {
        eprintln!("refused: {refused}");
    }
    if plugins.refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What `vigil plugin test` was asked.
#[derive(Debug, Clone)]
pub struct TestRequest {
    /// A plugin file, a built-in agent's name, an OCF agent's script or an init script.
    pub target: String,
    /// `NAME=VALUE` instance parameters.
    pub params: Vec<String>,
    /// `KIND` or `KIND=VALUE` grants for a WASM agent.
    pub grants: Vec<String>,
    /// `NAME=VALUE` changes that `validate-all` must refuse, one set each.
    pub bad: Vec<String>,
}

/// Runs the conformance checks and prints the report: exit 0 when every check passed, 1
/// when one failed, 2 when the request itself is wrong.
pub fn test(request: &TestRequest) -> ExitCode {
    let prepared = (|| {
        let params = assignments(&request.params, "parameter")?;
        let grants = grants(&request.grants)?;
        let (what, agent) = agent_for(&request.target)?;
        let mut conformance = Conformance::new(params.clone());
        conformance.instance_name = format!("vigil-plugin-test-{}", std::process::id());
        conformance.grants = grants;
        for change in &request.bad {
            let mut bad = params.clone();
            bad.extend(assignments(std::slice::from_ref(change), "--bad change")?);
            conformance.bad_params.push(bad);
        }
        Ok::<_, String>((what, agent, conformance))
    })();
    let (what, agent, conformance) = match prepared {
        Ok(prepared) => prepared,
        Err(message) => {
            eprintln!("vigil plugin test: {message}");
            return ExitCode::from(2);
        }
    };
    println!("Testing {what}");
    let host = SystemHost::new(conformance.instance_name.clone());
    let report = harness::check_agent(agent.as_ref(), &conformance, &host);
    println!("{report}");
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `NAME=VALUE` words as a map; `what` names them in errors.
fn assignments(words: &[String], what: &str) -> Result<BTreeMap<String, String>, String> {
    words
        .iter()
        .map(|word| match word.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
            _ => Err(format!("{what} `{word}` is not NAME=VALUE")),
        })
        .collect()
}

/// `--grant` words (`log`, `addresses=eth0`, `arp=eth0`, `commands=/bin/true`,
/// `read=/proc/net`) as grants; the keys are the YAML `grant:` keys.
fn grants(words: &[String]) -> Result<Grants, String> {
    let mut grants = Grants::default();
    for word in words {
        let (key, value) = match word.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (word.as_str(), None),
        };
        let kind = Capability::from_word(key).ok_or_else(|| {
            format!(
                "--grant `{word}`: unknown capability `{key}` (known: {})",
                Capability::ALL.map(Capability::as_str).join(", ")
            )
        })?;
        match (kind, value) {
            (Capability::Log, None) => grants.log = true,
            (Capability::Log, Some(_)) => return Err("--grant log takes no value".to_string()),
            (_, None | Some("")) => {
                return Err(format!("--grant {key} needs a value: --grant {key}=VALUE"));
            }
            (Capability::Addresses, Some(interface)) => {
                grants.address_interfaces.insert(interface.to_string());
            }
            (Capability::GratuitousArp, Some(interface)) => {
                grants.arp_interfaces.insert(interface.to_string());
            }
            (Capability::Commands | Capability::ReadFiles, Some(path)) => {
                let path = PathBuf::from(path);
                if !path.is_absolute() {
                    return Err(format!("--grant {word}: expected an absolute path"));
                }
                if kind == Capability::Commands {
                    grants.commands.insert(path);
                } else {
                    grants.read_paths.insert(path);
                }
            }
        }
    }
    Ok(grants)
}

/// The agent `target` names, with a description of it: a plugin file (`.so`, `.wasm`), a
/// built-in agent's name, an OCF agent (a script at `<root>/resource.d/<provider>/<type>`),
/// or any other script, taken as an LSB init script.
fn agent_for(target: &str) -> Result<(String, Arc<dyn ResourceAgent>), String> {
    let path = Path::new(target);
    if registry::plugin_file_kind(path).is_some() {
        let mut loaded = Registry::new();
        let info = registry::load_file(&mut loaded, path)
            .map_err(|reason| format!("{target} refused: {reason}"))?;
        if info.kind != PluginKind::ResourceAgent {
            return Err(format!(
                "{target} is a {} plugin; `vigil plugin test` checks resource agents",
                info.kind
            ));
        }
        let registered = loaded.agent(&info.name).map_err(|e| e.to_string())?;
        return Ok((
            format!("{} agent `{}`", info.origin, info.name),
            Arc::clone(&registered.agent),
        ));
    }
    if let Ok(registered) = registry::builtin().agent(target) {
        return Ok((
            format!("built-in agent `{target}`"),
            Arc::clone(&registered.agent),
        ));
    }
    if !path.is_file() {
        return Err(format!(
            "{target} is neither a plugin file (.so, .wasm), a built-in agent, nor a script"
        ));
    }
    if let Some((root, provider, agent_type)) = ocf_location(path) {
        let agent = OcfAgent::new(&root, &provider, &agent_type, DEFAULT_RSC_TMP)
            .map_err(|e| format!("{target}: {e}"))?;
        return Ok((
            format!(
                "OCF agent {provider}:{agent_type} (OCF_ROOT={})",
                root.display()
            ),
            Arc::new(agent),
        ));
    }
    Ok((
        format!("LSB init script {target}"),
        Arc::new(LsbAgent::new(
            path,
            StatusRule::ExitCode,
            LsbAgent::service_environment(),
        )),
    ))
}

/// `(OCF_ROOT, provider, type)` for a script at `<root>/resource.d/<provider>/<type>`.
fn ocf_location(script: &Path) -> Option<(PathBuf, String, String)> {
    let agent_type = script.file_name()?.to_str()?;
    let provider_dir = script.parent()?;
    let provider = provider_dir.file_name()?.to_str()?;
    let resource_d = provider_dir.parent()?;
    if resource_d.file_name()? != "resource.d" {
        return None;
    }
    Some((
        resource_d.parent()?.to_path_buf(),
        provider.to_string(),
        agent_type.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ocf_agents_are_recognised_by_their_place() {
        assert_eq!(
            ocf_location(Path::new("/usr/lib/ocf/resource.d/heartbeat/Dummy")),
            Some((
                PathBuf::from("/usr/lib/ocf"),
                "heartbeat".to_string(),
                "Dummy".to_string()
            ))
        );
        assert_eq!(ocf_location(Path::new("/etc/init.d/ssh")), None);
    }

    #[test]
    fn grant_words_are_the_yaml_keys() {
        let words: Vec<String> = ["log", "addresses=eth0", "arp=eth0", "read=/proc/net"]
            .map(String::from)
            .into();
        let grants = grants(&words).unwrap();
        assert!(grants.log);
        assert!(grants.allows_addresses_on("eth0"));
        assert!(grants.allows_arp_on("eth0"));
        assert!(grants.allows_read(Path::new("/proc/net/dev")));
        assert_eq!(
            super::grants(&["commands=true".to_string()]).unwrap_err(),
            "--grant commands=true: expected an absolute path"
        );
        assert!(
            super::grants(&["network".to_string()])
                .unwrap_err()
                .starts_with("--grant `network`: unknown capability `network`")
        );
    }

    #[test]
    fn parameters_must_be_assignments() {
        assert_eq!(
            assignments(&["ip".to_string()], "parameter").unwrap_err(),
            "parameter `ip` is not NAME=VALUE"
        );
    }
}
