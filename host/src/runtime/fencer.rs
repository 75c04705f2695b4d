//! Runs the node's STONITH device when failover asks for a reset, off the core thread.
//!
//! Owns the threads of reset attempts and their deadline; it decides nothing (whom to reset,
//! when to retry: the failover machine does) and never blocks the core: a device that hangs
//! past [`FENCE_TIMEOUT`] is reported as failed, and its thread is left to finish on its own
//! (a thread cannot be killed; a script run by an `external/*` device has its own timeout).

use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use vigil_plugin_api::ResetRequest;

use crate::fencing::FenceDevice;

/// The longest one reset may take: meatware waits up to 600 s for its operator.
pub const FENCE_TIMEOUT: Duration = Duration::from_secs(660);

/// The outcome of one reset, for the core.
#[derive(Debug)]
pub struct FenceResult {
    /// The node (lower case).
    pub node: String,
    /// The attempt, as failover numbered it.
    pub attempt: u64,
    /// `Err` carries what the device said.
    pub result: Result<(), String>,
    /// How long the attempt took.
    pub elapsed: Duration,
}

/// Starts resets and reports their outcomes.
pub struct Fencer {
    device: FenceDevice,
    results: UnboundedSender<FenceResult>,
}

impl Fencer {
    pub fn new(device: FenceDevice, results: UnboundedSender<FenceResult>) -> Self {
        Self { device, results }
    }

    /// The device type, for logs.
    pub fn device_type(&self) -> &str {
        &self.device.device_type
    }

    /// Resets `node` on a thread of its own; exactly one [`FenceResult`] follows. An
    /// attempt waits for the device while an earlier one still holds it (a meatware request
    /// waiting for its operator); the earlier one's answer carries its own number.
    pub fn fence(&self, node: String, attempt: u64) {
        let device = self.device.clone();
        let results = self.results.clone();
        let spawned = thread::Builder::new()
            .name(format!("fence-{node}"))
            .spawn(move || supervise(device, node, attempt, results));
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start a fencing thread");
        }
    }
}

/// Runs one attempt on a worker thread and forwards its result, or a timeout.
fn supervise(
    device: FenceDevice,
    node: String,
    attempt: u64,
    results: UnboundedSender<FenceResult>,
) {
    let started = Instant::now();
    let (done, outcome) = std_mpsc::channel();
    let worker_node = node.clone();
    let spawned = thread::Builder::new()
        .name(format!("reset-{node}"))
        .spawn(move || {
            let result = match device.device.lock() {
                Ok(mut device) => device
                    .reset(ResetRequest::Reset, &worker_node)
                    .map_err(|err| err.to_string()),
                Err(_) => Err("the device failed in an earlier attempt".to_string()),
            };
            let _ = done.send(result);
        });
    let result = match spawned {
        Ok(_) => match outcome.recv_timeout(FENCE_TIMEOUT) {
            Ok(result) => result,
            Err(_) => Err(format!(
                "no answer from the device within {} s",
                FENCE_TIMEOUT.as_secs()
            )),
        },
        Err(error) => Err(format!("cannot start the reset: {error}")),
    };
    let _ = results.send(FenceResult {
        node,
        attempt,
        result,
        elapsed: started.elapsed(),
    });
}
