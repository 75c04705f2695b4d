//! The runtime: everything that touches the world on behalf of the protocol machines.
//!
//! ```text
//!   UDP media ──readable──> core task reads them itself (recv+decode+verify, on its own
//!   (readiness descriptor)   thread; it sends to them directly, non-blocking)
//!                                                 │
//!   other media: reader thread ──Received──> [ core task: owns Membership, Failover,
//!                writer thread <─frames─────   counters, event order ]
//!   /proc/loadavg, read on the core's timer ──> ^   │ next deadline → one timerfd
//!   agent threads ──OperationResult───────────> │   └─ApiEvent─> broadcast ─> event streams
//!   API server task ─CoreRequest───────────────-┘
//!   client reaper threads ──ChildDeath──────────> core: restart, give up, or reboot
//!   core ── own status sent ──> watchdog device (one non-blocking byte)
//!   signals (SIGTERM/SIGINT) ─────> core: release groups, linger, stop clients, stop media,
//!                                   remove socket, magic-close the watchdog
//! ```
//!
//! Owns the state files, the media drivers, the timer, the API socket and shutdown. It holds
//! no protocol logic: every decision is the membership or failover machine's, and the core
//! task only carries out their outputs. Nothing here may block the core task: sends never
//! wait, agents and blocking media run on threads, file writes happen before the loop starts.

mod agents;
mod core;
mod fencer;
pub mod media;
pub mod state;
pub mod supervisor;
mod timer;
pub mod watchdog;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

use crate::api::{ApiError, ApiServer};
use crate::config::ClusterConfig;
use crate::fencing::FenceDevice;
use crate::resources::ResolvedResource;
use crate::wire::auth::AuthKeys;
use vigil_plugin_api::Registry;

pub use self::core::Core;

/// What `vigil run` needs beyond the cluster configuration.
#[derive(Clone)]
pub struct DaemonOptions {
    /// The cluster configuration, already validated.
    pub config: ClusterConfig,
    /// This node's name, resolved from YAML, nodeinfo or `uname -n`.
    pub node_name: String,
    /// Where the generation and UUID files live.
    pub state_dir: PathBuf,
    /// The API socket path.
    pub socket: PathBuf,
    /// Every resource of every group, resolved to its agent: `[group][resource]` in
    /// configuration order.
    pub resources: Vec<Vec<ResolvedResource>>,
    /// The STONITH device this node fences lost peers with, configured; `None`: no fencing.
    pub fence_device: Option<FenceDevice>,
    /// Every plugin this node may use; the media are opened from it.
    pub registry: Registry,
}

/// The daemon could not start or failed while running.
#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Medium(#[from] vigil_plugin_api::MediumError),
    #[error(transparent)]
    Registry(#[from] vigil_plugin_api::RegistryError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("cannot start the runtime: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Supervisor(#[from] supervisor::SupervisorError),
    #[error(transparent)]
    Watchdog(#[from] watchdog::WatchdogError),
    /// A `failfast` program died and the node could not be rebooted; vigil stopped instead
    /// (without disarming the watchdog, so a hardware watchdog still resets the node).
    #[error(
        "failfast client {command} died ({exit}) and rebooting failed ({reboot}); vigil stopped \
         instead"
    )]
    Failfast {
        command: String,
        exit: supervisor::Exit,
        reboot: std::io::Error,
    },
}

/// Runs the daemon until SIGTERM or SIGINT, then stops cleanly.
pub fn run(options: DaemonOptions) -> Result<(), RuntimeError> {
    let unix_now = unix_seconds();
    let generation = state::next_generation(
        &options.state_dir,
        options.config.generation_method,
        unix_now,
    )?;
    let uuid = state::node_uuid(&options.state_dir)?;
    let registry = &options.registry;

    let mut media = Vec::new();
    for spec in &options.config.media {
        let medium = registry.medium(&spec.kind)?.open(spec)?;
        media.push((medium, media::FrameFormat::for_medium(&spec.kind)));
    }
    let keys = Arc::new(options.config.auth.clone());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let api = ApiServer::bind(&options.socket)?;
        let core = Core::start(&options, generation, uuid, media, keys, api)?;
        // A spawned task, not the `block_on` future itself: waking the `block_on` future
        // (a frame from a reader thread, say) writes the runtime's eventfd, waking a task does
        // not.
        tokio::spawn(core.run())
            .await
            .map_err(|error| RuntimeError::Io(std::io::Error::other(error)))?
    })
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Keys are shared read-only by every reader thread.
pub type SharedKeys = Arc<AuthKeys>;
