//! vigil's resource agents and the adapters that run legacy agents unchanged.
//!
//! One module per agent, each in the same order (parameters, the agent type, the
//! `ResourceAgent` impl, tests), plus the one process runner every script-based agent uses.
//! Agents act on the network, commands and files through the `Host` they are given, so the
//! daemon can grant and observe it; Dummy's state file and Filesystem's mount(2) calls are
//! their own (the `Host` has no capability for them yet). The adapters run scripts through
//! [`process`] and nothing else.
//!
//! - [`dummy`]: a stand-in resource for tests and the demo.
//! - [`ipaddr`], [`ipaddr2`]: virtual addresses with gratuitous ARP, sharing [`address`]
//!   (parameter reading, findif, start/stop/monitor of an address).
//! - [`filesystem`]: mount and unmount.
//! - [`process`]: runs a program in its own process group with a deadline, always reaped.
//! - [`heartbeat_script`], [`lsb`], [`ocf`]: adapters for resource.d, init.d and OCF agents.
//! - [`mock_host`]: an in-memory `Host` and the meta-data check, for agent tests.

pub mod address;
pub mod dummy;
pub mod filesystem;
pub mod heartbeat_script;
pub mod ipaddr;
pub mod ipaddr2;
pub mod lsb;
pub mod mock_host;
pub mod ocf;
pub mod process;

use std::path::PathBuf;

use vigil_plugin_api::Registry;

/// Where built-in agents keep what must not outlive a reboot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSettings {
    /// The node's runtime directory (`/run/vigil`); Dummy keeps its state files in
    /// `dummy/` under it, so several nodes on one host (the demo) never share one.
    pub run_directory: PathBuf,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            run_directory: PathBuf::from("/run/vigil"),
        }
    }
}

/// Registers every built-in agent (the adapters are found per resource, not registered).
pub fn register(registry: &mut Registry, settings: &AgentSettings) {
    dummy::register(registry, &settings.run_directory.join("dummy"));
    ipaddr::register(registry);
    ipaddr2::register(registry);
    filesystem::register(registry);
}
