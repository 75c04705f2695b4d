//! The STONITH adapter: a WASM component of the `stonith-device` world as a
//! `StonithFactory` whose devices each keep an instance of their own.
//!
//! Owns the plugin's template, what it said about itself at load, and, per device, one kept
//! instance holding the plugin's `device` resource. A call that traps fails with `S_OOPS`
//! naming the cause and discards the instance; the next call makes a fresh one, creates the
//! device again and replays the last successful `configure`, so a device survives its own
//! crash. Every call runs under [`STONITH_CALL_DEADLINE`] and the memory limit.
//!
//! Grants for devices are not configurable yet: a WASM device may only log (through the
//! daemon's log, tagged `stonith/TYPE`); every other capability is refused. It must not be
//! called on the core thread (the fencer and the `stonith` tool call devices off it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_plugin_api::{
    DeviceInfo, Grants, Host, PluginInfo, PluginKind, PluginOrigin, ResetRequest, StonithCode,
    StonithDevice, StonithError, StonithFactory,
};
use wasmtime::Store;
use wasmtime::component::ResourceAny;

use super::bindings::stonith::exports::vigil::plugin::stonith as wit_stonith;
use super::bindings::stonith::{StonithDevice as DeviceExports, StonithDevicePre};
use super::imports::CallState;
use super::{
    LOAD_DEADLINE, WasmLoadError, WasmRuntime, deadline_ticks, trap_cause, valid_plugin_name,
};
use crate::agent_host::SystemHost;

/// The longest one device call may run. A WASM device cannot wait for an operator or a
/// serial line (it may only log), so this is generous; the fencer's own deadline is longer.
pub const STONITH_CALL_DEADLINE: Duration = Duration::from_secs(60);

/// What every WASM STONITH device is granted: logging only, until device grants exist in
/// the configuration.
fn device_grants() -> Grants {
    Grants {
        log: true,
        ..Grants::default()
    }
}

/// What a factory shares with its devices.
struct Template {
    /// The plugin's name, for messages.
    name: String,
    /// The engine and ticker, kept alive as long as any device is.
    runtime: WasmRuntime,
    /// The template every device instance is made from.
    pre: StonithDevicePre<CallState>,
}

/// A WASM STONITH plugin, registered like any other.
pub struct WasmStonithFactory {
    /// Kind, name, origin (the file), version and description.
    info: PluginInfo,
    /// The device types it said it provides.
    types: Vec<String>,
    /// Shared with every device it creates.
    template: Arc<Template>,
}

impl WasmStonithFactory {
    /// Instantiates the template once to ask the plugin who it is and what it provides.
    pub(crate) fn describe(
        runtime: WasmRuntime,
        path: &Path,
        pre: StonithDevicePre<CallState>,
    ) -> Result<WasmStonithFactory, WasmLoadError> {
        let describe_error = |reason: String| WasmLoadError::Describe {
            path: path.to_path_buf(),
            reason,
        };
        let owner = path.display().to_string();
        let mut store = runtime.store(CallState::new(owner, device_grants()), LOAD_DEADLINE);
        store.data_mut().begin_call(Instant::now() + LOAD_DEADLINE);
        let described = pre.instantiate(&mut store).and_then(|exports| {
            let guest = exports.vigil_plugin_stonith();
            let info = guest.call_info(&mut store)?;
            let types = guest.call_types(&mut store)?;
            Ok((info, types))
        });
        let (info, types) = described
            .map_err(|error| describe_error(trap_cause(&error, store.data(), LOAD_DEADLINE)))?;
        if !valid_plugin_name(&info.name) {
            return Err(WasmLoadError::BadName {
                path: path.to_path_buf(),
                name: info.name,
            });
        }
        Ok(WasmStonithFactory {
            template: Arc::new(Template {
                name: info.name.clone(),
                runtime,
                pre,
            }),
            info: PluginInfo {
                kind: PluginKind::StonithDevice,
                name: info.name,
                origin: PluginOrigin::Wasm {
                    path: PathBuf::from(path),
                },
                version: info.version,
                description: info.description,
            },
            types,
        })
    }
}

impl StonithFactory for WasmStonithFactory {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn types(&self) -> Vec<String> {
        self.types.clone()
    }

    fn create(&self, device_type: &str) -> Result<Box<dyn StonithDevice>, StonithError> {
        let mut device = WasmStonithDevice {
            template: Arc::clone(&self.template),
            device_type: device_type.to_string(),
            host: Arc::new(SystemHost::new(format!("stonith/{device_type}"))),
            kept: None,
            configured: None,
            config_names: Vec::new(),
        };
        device.config_names = device.with_device(|exports, store, device| {
            exports
                .vigil_plugin_stonith()
                .device()
                .call_config_names(store, device)
        })?;
        Ok(Box::new(device))
    }
}

/// One live instance holding the plugin's device.
struct KeptDevice {
    /// The instance's memory and the state its imports use.
    store: Store<CallState>,
    /// The instance's exports.
    exports: DeviceExports,
    /// The plugin's `device` resource in that instance.
    device: ResourceAny,
}

/// One WASM STONITH device, with its own instance.
pub struct WasmStonithDevice {
    /// The plugin's template.
    template: Arc<Template>,
    /// The type it was created as (`create`'s argument).
    device_type: String,
    /// Where its log lines go.
    host: Arc<dyn Host>,
    /// The live instance; `None` after a trap, until the next call.
    kept: Option<KeptDevice>,
    /// The parameters of the last successful `configure`, replayed on a fresh instance.
    configured: Option<Vec<(String, String)>>,
    /// The parameter names, asked once at creation (`config_names` cannot enter the
    /// instance: it takes `&self`).
    config_names: Vec<String>,
}

/// A device call that trapped or could not be made.
fn oops(message: String) -> StonithError {
    StonithError::new(StonithCode::Oops, message)
}

/// The API's error for the plugin's.
fn stonith_error(error: wit_stonith::StonithError) -> StonithError {
    let code = StonithCode::from_number(i32::from(error.code)).unwrap_or(StonithCode::Oops);
    StonithError::new(code, error.message)
}

impl WasmStonithDevice {
    /// The live instance, made (and the device created and reconfigured) if there is none.
    fn ensure_instance(&mut self) -> Result<&mut KeptDevice, StonithError> {
        if self.kept.is_none() {
            let kept = self.fresh_instance()?;
            self.kept = Some(kept);
        }
        self.kept.as_mut().ok_or_else(|| oops("no instance".into()))
    }

    fn fresh_instance(&self) -> Result<KeptDevice, StonithError> {
        let state = CallState::with_owned_host(
            format!("stonith/{}", self.device_type),
            device_grants(),
            Arc::clone(&self.host),
        );
        let mut store = self.template.runtime.store(state, STONITH_CALL_DEADLINE);
        store
            .data_mut()
            .begin_call(Instant::now() + STONITH_CALL_DEADLINE);
        let made = self
            .template
            .pre
            .instantiate(&mut store)
            .and_then(|exports| {
                let created = exports
                    .vigil_plugin_stonith()
                    .device()
                    .call_create(&mut store, &self.device_type)?;
                Ok((exports, created))
            });
        let (exports, created) = made.map_err(|error| {
            self.trapped(&trap_cause(&error, store.data(), STONITH_CALL_DEADLINE))
        })?;
        let device = created.map_err(stonith_error)?;
        let mut kept = KeptDevice {
            store,
            exports,
            device,
        };
        if let Some(params) = &self.configured {
            let replayed = call(&mut kept, |exports, store, device| {
                exports
                    .vigil_plugin_stonith()
                    .device()
                    .call_configure(store, device, params)
            });
            match replayed {
                Ok(answer) => answer.map_err(stonith_error)?,
                Err(cause) => return Err(self.trapped(&cause)),
            }
        }
        Ok(kept)
    }

    /// The error for a trapped call, logged; the caller has discarded the instance.
    fn trapped(&self, cause: &str) -> StonithError {
        tracing::warn!(
            plugin = %self.template.name,
            device = %self.device_type,
            cause,
            "WASM STONITH device failed; its instance is discarded"
        );
        oops(format!(
            "WASM STONITH device `{}` {cause}; the next call gets a fresh instance",
            self.device_type
        ))
    }

    /// Runs one device call on the live instance; a trap discards it.
    fn with_device<R>(
        &mut self,
        operation: impl FnOnce(
            &DeviceExports,
            &mut Store<CallState>,
            ResourceAny,
        ) -> wasmtime::Result<R>,
    ) -> Result<R, StonithError> {
        let kept = self.ensure_instance()?;
        match call(kept, operation) {
            Ok(answer) => Ok(answer),
            Err(cause) => {
                self.kept = None;
                Err(self.trapped(&cause))
            }
        }
    }
}

/// One call on `kept` under the device deadline; `Err` is the trap's cause.
fn call<R>(
    kept: &mut KeptDevice,
    operation: impl FnOnce(&DeviceExports, &mut Store<CallState>, ResourceAny) -> wasmtime::Result<R>,
) -> Result<R, String> {
    kept.store
        .data_mut()
        .begin_call(Instant::now() + STONITH_CALL_DEADLINE);
    kept.store
        .set_epoch_deadline(deadline_ticks(STONITH_CALL_DEADLINE));
    operation(&kept.exports, &mut kept.store, kept.device)
        .map_err(|error| trap_cause(&error, kept.store.data(), STONITH_CALL_DEADLINE))
}

impl StonithDevice for WasmStonithDevice {
    fn config_names(&self) -> Vec<String> {
        self.config_names.clone()
    }

    fn configure(&mut self, params: &[(String, String)]) -> Result<(), StonithError> {
        self.with_device(|exports, store, device| {
            exports
                .vigil_plugin_stonith()
                .device()
                .call_configure(store, device, params)
        })?
        .map_err(stonith_error)?;
        self.configured = Some(params.to_vec());
        Ok(())
    }

    fn status(&mut self) -> Result<(), StonithError> {
        self.with_device(|exports, store, device| {
            exports
                .vigil_plugin_stonith()
                .device()
                .call_status(store, device)
        })?
        .map_err(stonith_error)
    }

    fn hosts(&mut self) -> Result<Vec<String>, StonithError> {
        self.with_device(|exports, store, device| {
            exports
                .vigil_plugin_stonith()
                .device()
                .call_hosts(store, device)
        })?
        .map_err(stonith_error)
    }

    fn reset(&mut self, request: ResetRequest, host: &str) -> Result<(), StonithError> {
        let request = match request {
            ResetRequest::Reset => wit_stonith::ResetRequest::Reset,
            ResetRequest::PowerOn => wit_stonith::ResetRequest::PowerOn,
            ResetRequest::PowerOff => wit_stonith::ResetRequest::PowerOff,
        };
        self.with_device(|exports, store, device| {
            exports
                .vigil_plugin_stonith()
                .device()
                .call_reset(store, device, request, host)
        })?
        .map_err(stonith_error)
    }

    fn info(&mut self, what: DeviceInfo) -> Option<String> {
        let what = match what {
            DeviceInfo::ConfigXml => wit_stonith::DeviceInfo::ConfigXml,
            DeviceInfo::DeviceId => wit_stonith::DeviceInfo::DeviceId,
            DeviceInfo::DeviceName => wit_stonith::DeviceInfo::DeviceName,
            DeviceInfo::Description => wit_stonith::DeviceInfo::Description,
            DeviceInfo::Url => wit_stonith::DeviceInfo::Url,
        };
        self.with_device(|exports, store, device| {
            exports
                .vigil_plugin_stonith()
                .device()
                .call_info(store, device, what)
        })
        .unwrap_or_else(|error| {
            tracing::warn!(device = %self.device_type, %error, "device info failed");
            None
        })
    }
}
