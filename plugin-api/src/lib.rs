//! The stable contracts between the vigil daemon and its plugins.
//!
//! This crate owns the traits every plugin implements (`Medium`, `ResourceAgent`,
//! `StonithDevice`), the shared types they exchange, and the
//! [`Registry`] that lists plugins of every origin. It does no I/O and carries few
//! dependencies so that a third-party plugin can depend on it cheaply. A change that breaks
//! a plugin is a new ABI version, never a silent edit.
//!
//! Modules:
//! - [`plugin`]: what identifies a plugin (kind, name, origin, version, description).
//! - [`abi`]: the C ABI of native dynamic plugins (symbols, version, `#[repr(C)]` tables).
//! - [`capability`]: what a sandboxed agent may ask for and what the operator grants.
//! - [`medium`]: the `Medium` contract for communication links and its factory.
//! - [`registry`]: the list of known plugins, filled by `register` functions.
//! - [`resource`]: the `ResourceAgent` contract and the `Host` capabilities agents use.
//! - [`stonith`]: the `StonithDevice` contract, its `S_*` codes and positional parameters.

pub mod abi;
pub mod capability;
pub mod medium;
pub mod plugin;
pub mod registry;
pub mod resource;
pub mod stonith;

pub use capability::{Capability, Grants};
pub use medium::{Medium, MediumError, MediumFactory, MediumSpec, PeerAddress};
pub use plugin::{PluginInfo, PluginKind, PluginOrigin};
pub use registry::{RegisteredAgent, Registry, RegistryError};
pub use resource::{
    AddressChange, AddressRequest, AgentAction, CommandOutput, Host, HostError, InterfaceAddress,
    IpPrefix, LogLevel, OcfStatus, OperationOutcome, ResourceAgent, ResourceInstance,
};
pub use stonith::{
    DeviceInfo, ResetRequest, StonithCode, StonithDevice, StonithError, StonithFactory,
    positional_params,
};
