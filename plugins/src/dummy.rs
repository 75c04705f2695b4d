//! Filled in by its own change.
use vigil_plugin_api::Registry;

/// Registers this agent.
pub fn register(_registry: &mut Registry) {}
