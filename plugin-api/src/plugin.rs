//! What identifies a plugin to the daemon and to an operator reading `vigil plugins`.
//!
//! Owns only descriptive data; loading plugins of the dynamic and WASM origins is the host's
//! job, not this module's.

use std::fmt;
use std::path::PathBuf;

/// The three kinds of plugin vigil hosts; one contract each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PluginKind {
    /// A communication link carrying heartbeats and cluster messages.
    Medium,
    /// A fencing device that can power-cycle a node.
    StonithDevice,
    /// A resource agent that starts, stops and monitors one resource.
    ResourceAgent,
}

impl PluginKind {
    /// The word used in listings and configuration (`medium`, `stonith`, `agent`).
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Medium => "medium",
            PluginKind::StonithDevice => "stonith",
            PluginKind::ResourceAgent => "agent",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a plugin's code comes from. The daemon treats every origin the same way once it is
/// registered; the origin is kept so an operator can see what runs with which trust.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PluginOrigin {
    /// Linked into the `vigil` binary.
    BuiltIn,
    /// A native `cdylib` loaded from a plugin directory.
    NativeDynamic { path: PathBuf },
    /// A sandboxed WASM component loaded from a plugin directory.
    Wasm { path: PathBuf },
}

impl fmt::Display for PluginOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginOrigin::BuiltIn => f.write_str("built-in"),
            PluginOrigin::NativeDynamic { path } => write!(f, "native ({})", path.display()),
            PluginOrigin::Wasm { path } => write!(f, "wasm ({})", path.display()),
        }
    }
}

/// The identity of one plugin, as listed by the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Which contract the plugin implements.
    pub kind: PluginKind,
    /// The name configuration refers to it by (`bcast`, `external/ipmi`, `IPaddr`).
    pub name: String,
    /// Where its code comes from.
    pub origin: PluginOrigin,
    /// The plugin's own version, for support and upgrade questions.
    pub version: String,
    /// One line for listings such as `vigil plugins` and `stonith -L`.
    pub description: String,
}
