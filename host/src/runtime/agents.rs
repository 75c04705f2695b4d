//! The agent runner: carries out the failover machine's `Run` outputs off the core task.
//!
//! Each operation runs on a thread of its own with the `SystemHost` of its resource; a
//! watcher thread waits at most the instance's timeout plus a grace and then reports a
//! failure, so a native agent that hangs (a thread cannot be killed) still ends as a failed
//! operation, never a hang. Script agents enforce their own deadline and kill their process
//! group (`vigil_agents::process`). The result reaches the core as one message; nothing here
//! ever blocks the core or a heartbeat.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use vigil_plugin_api::{AgentAction, OcfStatus, OperationOutcome};

use crate::agent_host::SystemHost;
use crate::resources::ResolvedResource;

/// Time a native agent gets beyond its instance timeout before it is reported hung (a script
/// agent kills its process group within that grace itself).
const TIMEOUT_GRACE: Duration = Duration::from_secs(3);

/// A finished operation, for the core.
#[derive(Debug)]
pub struct OperationResult {
    pub group: usize,
    pub resource: usize,
    pub action: AgentAction,
    pub outcome: OperationOutcome,
    pub elapsed: Duration,
}

/// Runs agent operations for the configured groups.
pub struct AgentRunner {
    /// `[group][resource]`, in configuration order, as the failover machine indexes them.
    resources: Vec<Vec<Arc<ResolvedResource>>>,
    to_core: UnboundedSender<OperationResult>,
}

impl AgentRunner {
    /// A runner for `resources`, reporting to `to_core`.
    pub fn new(
        resources: Vec<Vec<ResolvedResource>>,
        to_core: UnboundedSender<OperationResult>,
    ) -> Self {
        Self {
            resources: resources
                .into_iter()
                .map(|group| group.into_iter().map(Arc::new).collect())
                .collect(),
            to_core,
        }
    }

    /// The resource behind an index pair, for logs.
    pub fn resource(&self, group: usize, resource: usize) -> Option<&ResolvedResource> {
        self.resources.get(group)?.get(resource).map(Arc::as_ref)
    }

    /// Starts one operation; its result arrives later as an [`OperationResult`].
    pub fn run(&self, group: usize, resource: usize, action: AgentAction) {
        let Some(target) = self
            .resources
            .get(group)
            .and_then(|g| g.get(resource))
            .cloned()
        else {
            let _ = self.to_core.send(OperationResult {
                group,
                resource,
                action,
                outcome: OperationOutcome::new(OcfStatus::ErrConfigured, "no such resource"),
                elapsed: Duration::ZERO,
            });
            return;
        };
        let to_core = self.to_core.clone();
        let spawned = thread::Builder::new()
            .name(format!("op-{action}-{group}.{resource}"))
            .spawn(move || {
                let started = Instant::now();
                let deadline = target.instance.timeout + TIMEOUT_GRACE;
                let (done_tx, done_rx) = mpsc::channel();
                let worker = Arc::clone(&target);
                let worker_spawned = thread::Builder::new()
                    .name(format!("agent-{}", target.instance.name))
                    .spawn(move || {
                        let host = SystemHost::new(worker.instance.name.clone());
                        let outcome = worker.agent.run(action, &worker.instance, &host);
                        let _ = done_tx.send(outcome);
                    });
                let outcome = match worker_spawned {
                    Err(error) => OperationOutcome::new(
                        OcfStatus::ErrGeneric,
                        format!("cannot start a thread for the operation: {error}"),
                    ),
                    Ok(_) => match done_rx.recv_timeout(deadline) {
                        Ok(outcome) => outcome,
                        Err(_) => OperationOutcome::new(
                            OcfStatus::ErrGeneric,
                            format!(
                                "{action} did not finish within {deadline:?}; counted as failed"
                            ),
                        ),
                    },
                };
                let _ = to_core.send(OperationResult {
                    group,
                    resource,
                    action,
                    outcome,
                    elapsed: started.elapsed(),
                });
            });
        if let Err(error) = spawned {
            let _ = self.to_core.send(OperationResult {
                group,
                resource,
                action,
                outcome: OperationOutcome::new(
                    OcfStatus::ErrGeneric,
                    format!("cannot start a thread for the operation: {error}"),
                ),
                elapsed: Duration::ZERO,
            });
        }
    }
}
