//! The vigil plugin SDK: what a third party depends on to write a medium, a STONITH device or
//! a resource agent once and ship it as a native library or as a sandboxed WASM component.
//!
//! An author implements one contract from [`api`] (re-exported from `vigil-plugin-api`) and
//! exports it with one macro, [`export_agent!`] or [`export_stonith!`] (media are native
//! only: `export_medium!`). The same crate then builds as a native `cdylib` the daemon loads
//! through its C ABI (`cargo build`; the `native` module) or as a WASM component (`cargo
//! build --target wasm32-wasip2`; the `wasm` module). The `harness` feature adds a mock host
//! and conformance checks for the author's own tests. This crate owns no daemon logic: it
//! only adapts an implementation to the boundary it is shipped over.

pub use vigil_plugin_api as api;

#[cfg(all(feature = "harness", not(target_arch = "wasm32")))]
pub mod harness;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

/// Exports a [`api::ResourceAgent`] as a plugin: a native library when built for this
/// machine, a WASM component when built for `wasm32-wasip2`. Invoke once, at the crate root
/// of a `cdylib`:
///
/// ```ignore
/// vigil_sdk::export_agent! {
///     name: "wasm-vip",
///     description: "Virtual IP address",
///     agent: VipAgent = VipAgent,
/// }
/// ```
///
/// The version is the crate's own (`CARGO_PKG_VERSION`). `agent` names the type and the
/// expression that builds it, once, on first use.
#[macro_export]
macro_rules! export_agent {
    (name: $name:expr, description: $description:expr, agent: $agent:ty = $make:expr $(,)?) => {
        #[cfg(not(target_arch = "wasm32"))]
        $crate::export_resource_agent! {
            name: $name,
            version: env!("CARGO_PKG_VERSION"),
            description: $description,
            agent: $agent = $make,
        }
        #[cfg(target_arch = "wasm32")]
        $crate::export_wasm_agent! {
            name: $name,
            description: $description,
            agent: $make,
        }
    };
}

/// Exports a [`api::StonithDevice`] as a plugin providing one device type, `name`: a native
/// library when built for this machine, a WASM component when built for `wasm32-wasip2`.
/// `device` builds a new, unconfigured device each time the daemon asks for one:
///
/// ```ignore
/// vigil_sdk::export_stonith! {
///     name: "statedir",
///     description: "a power switch simulated by files in a directory",
///     device: StateDirDevice::default(),
/// }
/// ```
#[macro_export]
macro_rules! export_stonith {
    (name: $name:expr, description: $description:expr, device: $make:expr $(,)?) => {
        #[cfg(not(target_arch = "wasm32"))]
        $crate::export_stonith_device! {
            name: $name,
            version: env!("CARGO_PKG_VERSION"),
            description: $description,
            device: $make,
        }
        #[cfg(target_arch = "wasm32")]
        $crate::export_wasm_stonith! {
            name: $name,
            description: $description,
            create: |device_type| {
                if device_type == $name {
                    Ok(::std::boxed::Box::new($make))
                } else {
                    Err($crate::api::StonithError::new(
                        $crate::api::StonithCode::Oops,
                        format!("this plugin provides `{}`, not `{device_type}`", $name),
                    ))
                }
            },
        }
    };
}
