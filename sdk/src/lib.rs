//! The vigil plugin SDK: what a third party depends on to write a medium, a STONITH device or
//! a resource agent once and ship it as a native library or as a sandboxed WASM component.
//!
//! An author implements one contract from [`api`] (re-exported from `vigil-plugin-api`) and
//! exports it with one macro: [`native`] for a `cdylib` the daemon loads with its C ABI,
//! [`wasm`] for a component built with `cargo build --target wasm32-wasip2`. The `harness`
//! feature adds a mock host and conformance checks for the author's own tests. This crate
//! owns no daemon logic: it only adapts an implementation to the boundary it is shipped over.

pub use vigil_plugin_api as api;

#[cfg(all(feature = "harness", not(target_arch = "wasm32")))]
pub mod harness;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(target_arch = "wasm32")]
pub mod wasm;
