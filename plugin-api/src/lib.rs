//! The stable contracts between the vigil daemon and its plugins.
//!
//! This crate owns the traits every plugin implements (`Medium` now; `StonithDevice` and
//! `ResourceAgent` join it with their issues), the shared types they exchange, and the
//! [`Registry`] that lists plugins of every origin. It does no I/O and carries few
//! dependencies so that a third-party plugin can depend on it cheaply. A change that breaks
//! a plugin is a new ABI version, never a silent edit.
//!
//! Modules:
//! - [`plugin`]: what identifies a plugin (kind, name, origin, version, description).
//! - [`medium`]: the `Medium` contract for communication links and its factory.
//! - [`registry`]: the list of known plugins, filled by `register` functions.

pub mod medium;
pub mod plugin;
pub mod registry;

pub use medium::{Medium, MediumError, MediumFactory, MediumSpec, PeerAddress};
pub use plugin::{PluginInfo, PluginKind, PluginOrigin};
pub use registry::{Registry, RegistryError};
