//! vigil's resource agents and the adapters that run legacy agents unchanged.
//!
//! One module per agent, each in the same order (parameters, the agent type, the
//! `ResourceAgent` impl, tests), plus the one process runner every script-based agent uses.
//! Agents touch the system only through the `Host` they are given; the adapters run scripts
//! through [`process`] and nothing else.
//!
//! - [`dummy`]: a stand-in resource for tests and the demo.
//! - [`ipaddr`], [`ipaddr2`]: virtual addresses with gratuitous ARP.
//! - [`filesystem`]: mount and unmount.
//! - [`process`]: runs a program in its own process group with a deadline, always reaped.
//! - [`heartbeat_script`], [`lsb`], [`ocf`]: adapters for resource.d, init.d and OCF agents.

pub mod dummy;
pub mod filesystem;
pub mod heartbeat_script;
pub mod ipaddr;
pub mod ipaddr2;
pub mod lsb;
pub mod ocf;
pub mod process;

use vigil_plugin_api::Registry;

/// Registers every built-in agent (the adapters are found per resource, not registered).
pub fn register(registry: &mut Registry) {
    dummy::register(registry);
    ipaddr::register(registry);
    ipaddr2::register(registry);
    filesystem::register(registry);
}
