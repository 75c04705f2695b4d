//! The built-in plugins of this binary, registered into one [`Registry`].
//!
//! Loading native dynamic and WASM plugins joins this module with the plugins issue; today it
//! only gathers what is linked in.

use std::path::Path;

use vigil_agents::AgentSettings;
use vigil_plugin_api::Registry;
use vigil_stonith::StonithSettings;

/// A registry holding every built-in plugin, with agents keeping their runtime files under
/// the default `/run/vigil`.
pub fn builtin() -> Registry {
    for_node(&AgentSettings::default().run_directory)
}

/// A registry holding every built-in plugin, with agents keeping their runtime files under
/// `run_directory`, this node's own (the directory of its API socket).
pub fn for_node(run_directory: &Path) -> Registry {
    let mut registry = Registry::new();
    vigil_media::register(&mut registry);
    vigil_agents::register(
        &mut registry,
        &AgentSettings {
            run_directory: run_directory.to_path_buf(),
        },
    );
    vigil_stonith::register(&mut registry, &StonithSettings::default());
    registry
}
