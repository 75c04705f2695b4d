//! The resource-agent adapter: a WASM component of the `resource-agent` world as a
//! `ResourceAgent`.
//!
//! Owns the plugin's template (its `InstancePre`), what it said about itself at load (name,
//! version, description, capabilities, meta-data), and one kept instance per resource,
//! created on first use and discarded after a trap. Each operation lends the daemon's
//! `Host` to the instance for the call, sets the epoch deadline from the resource's timeout,
//! and turns a trap into a failed operation naming its cause. It must not run on the core
//! thread (the agent runner calls it on its own threads) nor outlive a trapped instance.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use vigil_plugin_api::{
    AgentAction, Capability, Grants, Host, OcfStatus, OperationOutcome, PluginInfo, PluginKind,
    PluginOrigin, ResourceAgent, ResourceInstance,
};
use wasmtime::Store;

use super::bindings::agent::exports::vigil::plugin::agent as wit_agent;
use super::bindings::agent::vigil::plugin::types as wit;
use super::bindings::agent::{ResourceAgent as AgentExports, ResourceAgentPre};
use super::imports::{CallState, with_host};
use super::{
    LOAD_DEADLINE, WasmLoadError, WasmRuntime, deadline_ticks, trap_cause, valid_plugin_name,
};

/// One live instance of the plugin with its store.
struct KeptInstance {
    /// The store: the instance's memory and the [`CallState`] its imports use.
    store: Store<CallState>,
    /// The instance's exports.
    exports: AgentExports,
}

/// The slot of one resource's kept instance; `None` until first use and after a trap.
type InstanceSlot = Arc<Mutex<Option<KeptInstance>>>;

/// A WASM resource agent, registered like any other agent.
pub struct WasmAgent {
    /// Kind, name, origin (the file), version and description.
    info: PluginInfo,
    /// What the plugin declared it uses; a resource must be granted each one.
    capabilities: Vec<Capability>,
    /// Its OCF meta-data, asked once at load.
    metadata: String,
    /// The engine and ticker, kept alive as long as the agent is.
    runtime: WasmRuntime,
    /// The template every instance is made from.
    template: ResourceAgentPre<CallState>,
    /// One kept instance per resource, by instance name. Each slot has its own lock, so
    /// operations on different resources never wait for each other.
    instances: Mutex<HashMap<String, InstanceSlot>>,
    /// The instance that answers `positional-params` (it serves no resource).
    describer: Mutex<Option<KeptInstance>>,
}

impl WasmAgent {
    /// Instantiates the template once to ask the plugin who it is and for its meta-data.
    pub(crate) fn describe(
        runtime: WasmRuntime,
        path: &Path,
        template: ResourceAgentPre<CallState>,
    ) -> Result<WasmAgent, WasmLoadError> {
        let describe_error = |reason: String| WasmLoadError::Describe {
            path: path.to_path_buf(),
            reason,
        };
        let owner = path.display().to_string();
        let mut kept = instantiate(
            &runtime,
            &template,
            &owner,
            Grants::default(),
            LOAD_DEADLINE,
        )
        .map_err(describe_error)?;
        let guest = kept.exports.vigil_plugin_agent();
        kept.store
            .data_mut()
            .begin_call(Instant::now() + LOAD_DEADLINE);
        kept.store.set_epoch_deadline(deadline_ticks(LOAD_DEADLINE));
        let described = guest
            .call_info(&mut kept.store)
            .and_then(|info| Ok((info, guest.call_metadata(&mut kept.store)?)));
        let (info, metadata) = described.map_err(|error| {
            describe_error(trap_cause(&error, kept.store.data(), LOAD_DEADLINE))
        })?;
        if !valid_plugin_name(&info.name) {
            return Err(WasmLoadError::BadName {
                path: path.to_path_buf(),
                name: info.name,
            });
        }
        let capabilities = info.capabilities.iter().map(|c| capability(*c)).collect();
        Ok(WasmAgent {
            info: PluginInfo {
                kind: PluginKind::ResourceAgent,
                name: info.name,
                origin: PluginOrigin::Wasm {
                    path: PathBuf::from(path),
                },
                version: info.version,
                description: info.description,
            },
            capabilities,
            metadata,
            runtime,
            template,
            instances: Mutex::new(HashMap::new()),
            describer: Mutex::new(Some(kept)),
        })
    }

    /// Kind, name, origin, version and description, as the registry lists it.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// Runs one operation on a new instance made from the template, then drops it; what a
    /// plugin without kept instances would cost (the benchmark compares it with [`run`]).
    ///
    /// [`run`]: ResourceAgent::run
    pub fn run_on_fresh_instance(
        &self,
        action: AgentAction,
        instance: &ResourceInstance,
        host: &dyn Host,
    ) -> OperationOutcome {
        match instantiate(
            &self.runtime,
            &self.template,
            &instance.name,
            instance.grants.clone(),
            instance.timeout,
        ) {
            Ok(mut kept) => call(&mut kept, action, instance, host)
                .unwrap_or_else(|cause| self.failed(action, instance, &cause)),
            Err(cause) => self.failed(action, instance, &cause),
        }
    }

    /// How many resources have a live instance now (tests and status).
    pub fn kept_instances(&self) -> usize {
        self.lock_instances()
            .values()
            .filter(|slot| {
                slot.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_some()
            })
            .count()
    }

    fn lock_instances(&self) -> std::sync::MutexGuard<'_, HashMap<String, InstanceSlot>> {
        self.instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot of `resource`'s instance, created empty on first use.
    fn slot(&self, resource: &str) -> InstanceSlot {
        let mut instances = self.lock_instances();
        if let Some(slot) = instances.get(resource) {
            return Arc::clone(slot);
        }
        let slot = InstanceSlot::default();
        instances.insert(resource.to_string(), Arc::clone(&slot));
        slot
    }

    /// The failed outcome of a call whose instance trapped or could not be made.
    fn failed(
        &self,
        action: AgentAction,
        instance: &ResourceInstance,
        cause: &str,
    ) -> OperationOutcome {
        tracing::warn!(
            agent = %self.info.name,
            resource = %instance.name,
            %action,
            cause,
            "WASM agent failed; its instance is discarded"
        );
        OperationOutcome::new(
            OcfStatus::ErrGeneric,
            format!(
                "WASM agent `{}` {cause}; the next operation gets a fresh instance",
                self.info.name
            ),
        )
    }
}

impl ResourceAgent for WasmAgent {
    fn metadata(&self) -> String {
        self.metadata.clone()
    }

    fn capabilities(&self) -> Vec<Capability> {
        self.capabilities.clone()
    }

    fn positional_params(
        &self,
        args: &[String],
    ) -> Result<std::collections::BTreeMap<String, String>, String> {
        let mut describer = self
            .describer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if describer.is_none() {
            *describer = Some(instantiate(
                &self.runtime,
                &self.template,
                &self.info.name,
                Grants::default(),
                LOAD_DEADLINE,
            )?);
        }
        let Some(kept) = describer.as_mut() else {
            return Err("no instance to ask".into());
        };
        kept.store
            .data_mut()
            .begin_call(Instant::now() + LOAD_DEADLINE);
        kept.store.set_epoch_deadline(deadline_ticks(LOAD_DEADLINE));
        let guest = kept.exports.vigil_plugin_agent();
        match guest.call_positional_params(&mut kept.store, args) {
            Ok(answer) => answer.map(|params| params.into_iter().collect()),
            Err(error) => {
                let cause = trap_cause(&error, kept.store.data(), LOAD_DEADLINE);
                *describer = None;
                Err(format!("WASM agent `{}` {cause}", self.info.name))
            }
        }
    }

    fn validate(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        self.run(AgentAction::Validate, instance, host)
    }

    fn start(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        self.run(AgentAction::Start, instance, host)
    }

    fn stop(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        self.run(AgentAction::Stop, instance, host)
    }

    fn monitor(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        self.run(AgentAction::Monitor, instance, host)
    }

    /// Runs the action on the resource's kept instance (made on first use); a trap fails
    /// the operation and discards the instance.
    fn run(
        &self,
        action: AgentAction,
        instance: &ResourceInstance,
        host: &dyn Host,
    ) -> OperationOutcome {
        let slot = self.slot(&instance.name);
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        let kept = match slot.take() {
            Some(kept) => kept,
            None => match instantiate(
                &self.runtime,
                &self.template,
                &instance.name,
                instance.grants.clone(),
                instance.timeout,
            ) {
                Ok(kept) => kept,
                Err(cause) => return self.failed(action, instance, &cause),
            },
        };
        let kept = slot.insert(kept);
        match call(kept, action, instance, host) {
            Ok(outcome) => outcome,
            Err(cause) => {
                *slot = None;
                self.failed(action, instance, &cause)
            }
        }
    }
}

/// A new instance for `owner` from `template`; the error says why, for the operation's
/// message.
fn instantiate(
    runtime: &WasmRuntime,
    template: &ResourceAgentPre<CallState>,
    owner: &str,
    grants: Grants,
    deadline: Duration,
) -> Result<KeptInstance, String> {
    let mut store = runtime.store(CallState::new(owner, grants), deadline);
    store.data_mut().begin_call(Instant::now() + deadline);
    match template.instantiate(&mut store) {
        Ok(exports) => Ok(KeptInstance { store, exports }),
        Err(error) => Err(format!(
            "could not be instantiated: {}",
            trap_cause(&error, store.data(), deadline)
        )),
    }
}

/// One operation on `kept`, with `host` lent for the call; `Err` is the trap's cause, and
/// the instance must not be entered again.
fn call(
    kept: &mut KeptInstance,
    action: AgentAction,
    instance: &ResourceInstance,
    host: &dyn Host,
) -> Result<OperationOutcome, String> {
    let state = kept.store.data_mut();
    if state.grants != instance.grants {
        state.grants = instance.grants.clone();
    }
    state.begin_call(Instant::now() + instance.timeout);
    kept.store
        .set_epoch_deadline(deadline_ticks(instance.timeout));
    let argument = wit_agent::Instance {
        name: instance.name.clone(),
        params: instance
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        timeout_ms: u64::try_from(instance.timeout.as_millis()).unwrap_or(u64::MAX),
    };
    let guest = kept.exports.vigil_plugin_agent();
    let result = with_host(&mut kept.store, host, |store| match action {
        AgentAction::Start => guest.call_start(store, &argument),
        AgentAction::Stop => guest.call_stop(store, &argument),
        AgentAction::Monitor => guest.call_monitor(store, &argument),
        AgentAction::Validate => guest.call_validate(store, &argument),
    });
    match result {
        Ok(outcome) => Ok(OperationOutcome::new(
            OcfStatus::from_code(outcome.status),
            outcome.message,
        )),
        Err(error) => Err(trap_cause(&error, kept.store.data(), instance.timeout)),
    }
}

/// The API's name for a WIT capability.
fn capability(capability: wit::Capability) -> Capability {
    match capability {
        wit::Capability::Log => Capability::Log,
        wit::Capability::Addresses => Capability::Addresses,
        wit::Capability::Arp => Capability::GratuitousArp,
        wit::Capability::Commands => Capability::Commands,
        wit::Capability::Read => Capability::ReadFiles,
    }
}
