//! The built-in plugins of this binary, registered into one [`Registry`].
//!
//! Loading native dynamic and WASM plugins joins this module with the plugins issue; today it
//! only gathers what is linked in.

use vigil_plugin_api::Registry;

/// A registry holding every built-in plugin.
pub fn builtin() -> Registry {
    let mut registry = Registry::new();
    vigil_media::register(&mut registry);
    vigil_agents::register(&mut registry);
    registry
}
