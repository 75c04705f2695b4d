//! Resolves every configured resource to the agent that runs it and the instance it runs.
//!
//! A configured resource, a haresources token (`IPaddr::198.18.0.100/24/eth0`,
//! `198.18.0.100`, `OCF::Dummy::d1`, `httpd`) with its operation timeout, becomes one
//! [`ResolvedResource`], by Heartbeat's rules (spec §5.1–5.2): a bare
//! address is `IPaddr`; `OCF::type::instance` is an OCF agent with its instance file; a name
//! that a built-in (or plugin) agent is registered under uses that agent with its positional
//! arguments; any other name is a `resource.d` script, else an init script. Resolution reads
//! the file system (to find scripts) but starts nothing; it runs at configuration time so a
//! bad resource is refused before the daemon joins the cluster.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use vigil_agents::heartbeat_script::{
    self, HeartbeatEnvironment, HeartbeatScriptAgent, ScriptKind,
};
use vigil_agents::lsb::{LsbAgent, StatusRule};
use vigil_agents::ocf;
use vigil_plugin_api::{
    Grants, PluginInfo, PluginOrigin, Registry, ResourceAgent, ResourceInstance,
};

use crate::config::{ClusterConfig, ResourceEntry};

/// Where legacy agents live and how they are run.
#[derive(Debug, Clone)]
pub struct ResolveContext {
    /// The environment Heartbeat gives resource scripts (`HA_DIR`, `HA_CURHOST`, …).
    pub heartbeat: HeartbeatEnvironment,
    /// Where init scripts are looked for after `<ha_dir>/resource.d`.
    pub init_dir: PathBuf,
    /// `HA_RSCTMP` for OCF agents.
    pub rsc_tmp: PathBuf,
    /// How long an operation may take when its resource sets no timeout.
    pub default_timeout: Duration,
}

impl ResolveContext {
    /// The usual places (`/etc/init.d`, `/run/resource-agents`) for a node named `node` with
    /// its Heartbeat files in `ha_dir`.
    pub fn new(ha_dir: &Path, node: &str, default_timeout: Duration) -> Self {
        Self {
            heartbeat: HeartbeatEnvironment::new(ha_dir, node),
            init_dir: PathBuf::from(heartbeat_script::DEFAULT_INIT_DIR),
            rsc_tmp: PathBuf::from(ocf::DEFAULT_RSC_TMP),
            default_timeout,
        }
    }
}

/// One resource, ready to run.
#[derive(Clone)]
pub struct ResolvedResource {
    /// The resource as the operator wrote it; its name in logs and status.
    pub token: String,
    /// What runs it, for `vigil status` and logs (`built-in IPaddr`, `resource.d script …`).
    pub runner: String,
    /// The agent.
    pub agent: Arc<dyn ResourceAgent>,
    /// The instance the agent is called with.
    pub instance: ResourceInstance,
}

impl std::fmt::Debug for ResolvedResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedResource")
            .field("token", &self.token)
            .field("runner", &self.runner)
            .field("instance", &self.instance)
            .finish()
    }
}

/// A resource could not be resolved.
#[derive(Debug, Error)]
#[error("{origin}: resource `{token}`: {reason}")]
pub struct ResolveError {
    /// Where the resource is configured (`/etc/ha.d/haresources:3`).
    pub origin: String,
    /// The token as written.
    pub token: String,
    /// What is wrong and what was expected.
    pub reason: String,
}

/// How long an agent operation may run unless its resource sets a `timeout` (haresources
/// cannot). Heartbeat 3.0.6 had no limit at all; a minute keeps a hung script from holding a
/// group forever while leaving slow services (databases, filesystems with a journal to
/// replay) room to start.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Resolves every resource of every group of `config` for the node `node`: `[group][resource]`
/// in configuration order, each instance with its resource's timeout (or
/// [`DEFAULT_OPERATION_TIMEOUT`]). Scripts are looked for in the configuration's
/// `script_dir`.
pub fn resolve_groups(
    config: &ClusterConfig,
    node: &str,
    registry: &Registry,
) -> Result<Vec<Vec<ResolvedResource>>, ResolveError> {
    let context = ResolveContext::new(&config.script_dir, node, DEFAULT_OPERATION_TIMEOUT);
    config
        .resource_groups
        .iter()
        .map(|group| {
            group
                .resources
                .iter()
                .map(|resource| resolve(resource, &group.origin, registry, &context))
                .collect()
        })
        .collect()
}

/// Resolves one configured resource: its token names the agent and instance, its timeout
/// bounds every operation of the instance (monitors included).
pub fn resolve(
    resource: &ResourceEntry,
    origin: &str,
    registry: &Registry,
    context: &ResolveContext,
) -> Result<ResolvedResource, ResolveError> {
    let token = resource.token.as_str();
    let timeout = resource.timeout.unwrap_or(context.default_timeout);
    let fail = |reason: String| ResolveError {
        origin: origin.to_string(),
        token: token.to_string(),
        reason,
    };
    let expanded;
    let token_to_split = if looks_like_address(token) {
        expanded = format!("IPaddr::{token}");
        expanded.as_str()
    } else {
        token
    };
    let mut parts = token_to_split.split("::");
    let name = parts.next().unwrap_or_default();
    let args: Vec<String> = parts.map(str::to_string).collect();
    if name.is_empty() || args.iter().any(String::is_empty) {
        return Err(fail(
            "expected `Name` or `Name::arg1::arg2…` with no empty part".into(),
        ));
    }

    if resource.grants != Grants::default()
        && !registry
            .agent(name)
            .is_ok_and(|registered| is_sandboxed(&registered.info))
    {
        return Err(fail(
            "`grant` applies only to WASM agents; this resource's agent runs with the daemon's \
             own rights, so remove `grant`"
                .into(),
        ));
    }

    if name == "OCF" {
        let resolved = ocf::from_haresources(&args, &context.heartbeat, &context.rsc_tmp, timeout)
            .map_err(|e| fail(e.to_string()))?;
        return Ok(ResolvedResource {
            token: token.to_string(),
            runner: format!("OCF agent {}", resolved.agent.script().display()),
            agent: Arc::new(resolved.agent),
            instance: resolved.instance,
        });
    }

    if let Ok(registered) = registry.agent(name) {
        check_grants(
            &registered.info,
            registered.agent.as_ref(),
            &resource.grants,
        )
        .map_err(fail)?;
        let params = registered.agent.positional_params(&args).map_err(fail)?;
        return Ok(ResolvedResource {
            token: token.to_string(),
            runner: format!("{} {}", registered.info.origin, name),
            agent: Arc::clone(&registered.agent),
            instance: ResourceInstance {
                name: instance_name(token),
                params,
                timeout,
                grants: resource.grants.clone(),
            },
        });
    }

    let script = heartbeat_script::find_script(name, &context.heartbeat.ha_dir, &context.init_dir)
        .map_err(|e| fail(format!("{e} (and no built-in agent has that name)")))?;
    let params = heartbeat_script::positional_params(&args);
    let (runner, agent): (String, Arc<dyn ResourceAgent>) = match script {
        ScriptKind::HeartbeatClass(path) => (
            format!("resource.d script {}", path.display()),
            Arc::new(HeartbeatScriptAgent::new(path, &context.heartbeat)),
        ),
        ScriptKind::Lsb(path) => (
            format!("init script {}", path.display()),
            Arc::new(LsbAgent::new(
                path,
                StatusRule::OutputText,
                context.heartbeat.variables(),
            )),
        ),
    };
    Ok(ResolvedResource {
        token: token.to_string(),
        runner,
        agent,
        instance: ResourceInstance {
            name: instance_name(token),
            params,
            timeout,
            grants: Grants::default(),
        },
    })
}

/// Whether an agent runs in the sandbox, where only granted capabilities work.
fn is_sandboxed(info: &PluginInfo) -> bool {
    matches!(info.origin, PluginOrigin::Wasm { .. })
}

/// Refuses, at load, a sandboxed agent that asks for a capability its resource was not
/// granted, naming the capability; other agents are not held to grants.
fn check_grants(
    info: &PluginInfo,
    agent: &dyn ResourceAgent,
    grants: &Grants,
) -> Result<(), String> {
    if !is_sandboxed(info) {
        return Ok(());
    }
    match grants.first_missing(&agent.capabilities()) {
        None => Ok(()),
        Some(missing) => Err(format!(
            "the WASM agent `{}` asks for capability `{missing}`, which this resource is not \
             granted (granted: {}); add it under the resource's `grant:` or use another agent",
            info.name,
            describe_kinds(grants)
        )),
    }
}

/// The granted kinds for a message (`log, addresses` or `nothing`).
fn describe_kinds(grants: &Grants) -> String {
    let kinds: Vec<&str> = grants.kinds().into_iter().map(|k| k.as_str()).collect();
    if kinds.is_empty() {
        "nothing".to_string()
    } else {
        kinds.join(", ")
    }
}

/// Heartbeat's shorthand: a token shaped like `[0-9]*.[0-9]*.[0-9]*.[0-9]*…` is an address.
fn looks_like_address(token: &str) -> bool {
    let head = token.split('/').next().unwrap_or_default();
    let parts: Vec<&str> = head.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// `OCF_RESOURCE_INSTANCE` for a token: unique per token, safe in file names
/// (`IPaddr::198.18.0.100/24/eth0` gives `IPaddr_198.18.0.100_24_eth0`).
fn instance_name(token: &str) -> String {
    token
        .replace("::", "_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_address_shorthand_is_recognised() {
        assert!(looks_like_address("198.18.0.100"));
        assert!(looks_like_address("198.18.0.100/24/eth0"));
        assert!(!looks_like_address("IPaddr::198.18.0.100"));
        assert!(!looks_like_address("httpd"));
        assert!(!looks_like_address("1.2.3"));
    }

    #[test]
    fn instance_names_are_file_name_safe_and_keep_the_token_readable() {
        assert_eq!(
            instance_name("IPaddr::198.18.0.100/24/eth0"),
            "IPaddr_198.18.0.100_24_eth0"
        );
        assert_eq!(instance_name("httpd"), "httpd");
    }

    #[test]
    fn an_unknown_name_is_refused_naming_where_it_was_looked_for() {
        let dir = std::env::temp_dir().join(format!("vigil-resolve-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("resource.d")).unwrap();
        let mut context = ResolveContext::new(&dir, "hb1", Duration::from_secs(20));
        context.init_dir = dir.join("init.d");
        let registry = crate::registry::builtin();
        let err = resolve(
            &ResourceEntry::plain("nosuchagent::x"),
            "haresources:2",
            &registry,
            &context,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("haresources:2: resource `nosuchagent::x`: "),
            "{text}"
        );
        assert!(text.contains("resource.d"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_instance_gets_its_resources_timeout_or_the_default() {
        let registry = crate::registry::builtin();
        let config = crate::config::parse_yaml(
            "nodes: [hb1]\nmedia: [{bcast: eth0}]\nauth: {method: crc}\nresource_groups:\n  \
             - node: hb1\n    resources:\n      - Dummy::a\n      - {token: Dummy::b, \
             timeout: 20s, monitor: {interval: 5s}}\n",
            Path::new("cluster.yaml"),
            &registry,
        )
        .unwrap();
        let groups = resolve_groups(&config, "hb1", &registry).unwrap();
        let timeouts: Vec<(&str, Duration)> = groups[0]
            .iter()
            .map(|r| (r.token.as_str(), r.instance.timeout))
            .collect();
        assert_eq!(
            timeouts,
            [
                ("Dummy::a", DEFAULT_OPERATION_TIMEOUT),
                ("Dummy::b", Duration::from_secs(20))
            ]
        );
    }

    #[test]
    fn an_empty_part_is_refused() {
        let context = ResolveContext::new(Path::new("/nonexistent"), "hb1", Duration::from_secs(1));
        let registry = crate::registry::builtin();
        let err = resolve(
            &ResourceEntry::plain("IPaddr::::x"),
            "haresources:1",
            &registry,
            &context,
        )
        .unwrap_err();
        assert!(err.to_string().contains("no empty part"), "{err}");
    }

    /// An agent that claims to be a WASM component asking for `log` and `addresses`.
    struct SandboxedAgent;
    impl ResourceAgent for SandboxedAgent {
        fn metadata(&self) -> String {
            String::new()
        }
        fn capabilities(&self) -> Vec<vigil_plugin_api::Capability> {
            vec![
                vigil_plugin_api::Capability::Log,
                vigil_plugin_api::Capability::Addresses,
            ]
        }
        fn validate(&self, _: &ResourceInstance, _: &dyn vigil_plugin_api::Host) -> Outcome {
            Outcome::success("")
        }
        fn start(&self, _: &ResourceInstance, _: &dyn vigil_plugin_api::Host) -> Outcome {
            Outcome::success("")
        }
        fn stop(&self, _: &ResourceInstance, _: &dyn vigil_plugin_api::Host) -> Outcome {
            Outcome::success("")
        }
        fn monitor(&self, _: &ResourceInstance, _: &dyn vigil_plugin_api::Host) -> Outcome {
            Outcome::success("")
        }
    }
    use vigil_plugin_api::OperationOutcome as Outcome;

    fn registry_with_sandboxed_agent() -> Registry {
        let mut registry = crate::registry::builtin();
        registry
            .add_agent(
                PluginInfo {
                    kind: vigil_plugin_api::PluginKind::ResourceAgent,
                    name: "vip".into(),
                    origin: PluginOrigin::Wasm {
                        path: "/plugins/vip.wasm".into(),
                    },
                    version: "1".into(),
                    description: "test".into(),
                },
                Arc::new(SandboxedAgent),
            )
            .unwrap();
        registry
    }

    fn with_grants(token: &str, grants: Grants) -> ResourceEntry {
        ResourceEntry {
            grants,
            ..ResourceEntry::plain(token)
        }
    }

    #[test]
    fn a_wasm_agent_asking_for_more_than_its_grant_is_refused_naming_the_capability() {
        let registry = registry_with_sandboxed_agent();
        let context = ResolveContext::new(Path::new("/etc/ha.d"), "hb1", Duration::from_secs(20));
        let only_log = Grants {
            log: true,
            ..Grants::default()
        };
        let err = resolve(
            &with_grants("vip", only_log),
            "cluster.yaml:7",
            &registry,
            &context,
        )
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "cluster.yaml:7: resource `vip`: the WASM agent `vip` asks for capability \
             `addresses`, which this resource is not granted (granted: log); add it under the \
             resource's `grant:` or use another agent"
        );
        let enough = Grants {
            log: true,
            address_interfaces: ["eth0".to_string()].into(),
            ..Grants::default()
        };
        let resolved = resolve(
            &with_grants("vip", enough.clone()),
            "cluster.yaml:7",
            &registry,
            &context,
        )
        .unwrap();
        assert_eq!(resolved.instance.grants, enough);
    }

    #[test]
    fn a_grant_on_an_agent_outside_the_sandbox_is_refused() {
        let registry = registry_with_sandboxed_agent();
        let context = ResolveContext::new(Path::new("/etc/ha.d"), "hb1", Duration::from_secs(20));
        let grants = Grants {
            log: true,
            ..Grants::default()
        };
        let err = resolve(
            &with_grants("Dummy::web", grants),
            "cluster.yaml:7",
            &registry,
            &context,
        )
        .err()
        .unwrap();
        assert!(
            err.to_string()
                .contains("`grant` applies only to WASM agents"),
            "{err}"
        );
    }
}
