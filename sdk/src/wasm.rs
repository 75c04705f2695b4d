//! The guest side of WASM plugins: an author's `ResourceAgent` or `StonithDevice`, exported
//! as a component of the `vigil:plugin` WIT package (`plugin-api/wit/vigil-plugin.wit`).
//!
//! Owns the bindings generated from the WIT package, the [`Host`] a sandboxed agent receives
//! (every call is one WIT import, checked by the daemon against the resource's grants), the
//! conversions between WIT and `vigil-plugin-api` types, and the two export macros
//! ([`export_wasm_agent!`](crate::export_wasm_agent) and
//! [`export_wasm_stonith!`](crate::export_wasm_stonith)). It must not decide anything an
//! agent decides, nor reach the system other than through the imports: a plugin gets no
//! WASI (the daemon makes every WASI function trap), so authors use no `std` I/O, clocks,
//! environment or randomness: `std::collections::HashMap::new()` seeds itself from WASI
//! randomness and traps, so use `BTreeMap` (or a fixed hasher). A panic is reported to the daemon through the `panicked` import and ends the
//! operation as failed; the daemon then discards the instance.
//!
//! Build a plugin with `cargo build --target wasm32-wasip2`; the `.wasm` file is the
//! component to drop into a plugin directory.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Once;
use std::time::Duration;

use vigil_plugin_api::{
    AddressChange, AddressRequest, AgentAction, Capability, CommandOutput, DeviceInfo, Grants,
    Host, HostError, InterfaceAddress, IpPrefix, LogLevel, OperationOutcome, ResetRequest,
    ResourceAgent, ResourceInstance, StonithCode, StonithDevice, StonithError,
};

/// Bindings of the `resource-agent` world, generated from the WIT package. Authors use them
/// only through [`export_wasm_agent!`](crate::export_wasm_agent).
#[doc(hidden)]
pub mod agent_world {
    wit_bindgen::generate!({
        path: "../plugin-api/wit",
        world: "resource-agent",
        pub_export_macro: true,
        export_macro_name: "__export_resource_agent",
    });
}

/// Bindings of the `stonith-device` world; the shared `types` and `host` interfaces are the
/// agent world's, so one [`Host`] serves both.
#[doc(hidden)]
pub mod stonith_world {
    wit_bindgen::generate!({
        path: "../plugin-api/wit",
        world: "stonith-device",
        pub_export_macro: true,
        export_macro_name: "__export_stonith_device",
        with: {
            "vigil:plugin/types@0.1.0": crate::wasm::agent_world::vigil::plugin::types,
            "vigil:plugin/host@0.1.0": crate::wasm::agent_world::vigil::plugin::host,
        },
    });
}

use agent_world::exports::vigil::plugin::agent as wit_agent;
use agent_world::vigil::plugin::host as wit_host;
use agent_world::vigil::plugin::types as wit;
use stonith_world::exports::vigil::plugin::stonith as wit_stonith;

/// The daemon's capabilities as a sandboxed plugin sees them: every call is a WIT import,
/// checked against what the operator granted the resource. Agents receive it as their
/// `&dyn Host`; a STONITH device reaches it through [`host`] (devices may only log).
#[derive(Debug, Clone, Copy, Default)]
pub struct GuestHost;

/// The host, for code that is not handed one: a STONITH device's logging.
pub fn host() -> &'static GuestHost {
    &GuestHost
}

impl Host for GuestHost {
    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Debug => wit::LogLevel::Debug,
            LogLevel::Info => wit::LogLevel::Info,
            LogLevel::Warning => wit::LogLevel::Warning,
            LogLevel::Error => wit::LogLevel::Error,
        };
        wit_host::log(level, message);
    }

    fn addresses(&self) -> Result<Vec<InterfaceAddress>, HostError> {
        let addresses = wit_host::addresses().map_err(host_error)?;
        Ok(addresses
            .into_iter()
            .map(|a| InterfaceAddress {
                interface: a.interface,
                address: ip_prefix(a.address),
                broadcast: a.broadcast.map(ip_address),
                label: a.label,
            })
            .collect())
    }

    fn add_address(&self, request: &AddressRequest) -> Result<AddressChange, HostError> {
        let request = wit::AddressRequest {
            interface: request.interface.clone(),
            address: wit_prefix(request.address),
            broadcast: request.broadcast.map(wit_address),
            label: request.label.clone(),
        };
        wit_host::add_address(&request)
            .map(address_change)
            .map_err(host_error)
    }

    fn remove_address(
        &self,
        interface: &str,
        address: IpPrefix,
    ) -> Result<AddressChange, HostError> {
        wit_host::remove_address(interface, wit_prefix(address))
            .map(address_change)
            .map_err(host_error)
    }

    fn send_gratuitous_arp(
        &self,
        interface: &str,
        address: IpAddr,
        count: u32,
        interval: Duration,
    ) -> Result<(), HostError> {
        wit_host::send_gratuitous_arp(interface, wit_address(address), count, millis(interval))
            .map_err(host_error)
    }

    fn run_command(
        &self,
        argv: &[String],
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<CommandOutput, HostError> {
        let output = wit_host::run_command(argv, env, millis(timeout)).map_err(host_error)?;
        Ok(CommandOutput {
            exit_code: output.exit_code,
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }

    fn read_file(&self, path: &Path) -> Result<Vec<u8>, HostError> {
        let Some(text) = path.to_str() else {
            return Err(HostError::Invalid {
                capability: "read_file".into(),
                reason: format!("{} is not valid UTF-8", path.display()),
            });
        };
        wit_host::read_file(text).map_err(host_error)
    }
}

/// A duration in whole milliseconds, saturating (the WIT unit).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn host_error(error: wit::HostError) -> HostError {
    match error {
        wit::HostError::NotGranted(capability) => HostError::NotGranted { capability },
        wit::HostError::Invalid(f) => HostError::Invalid {
            capability: f.capability,
            reason: f.reason,
        },
        wit::HostError::Failed(f) => HostError::Failed {
            capability: f.capability,
            reason: f.reason,
        },
        wit::HostError::TimedOut(t) => HostError::TimedOut {
            capability: t.capability,
            after: Duration::from_millis(t.after_ms),
        },
    }
}

fn address_change(change: wit::AddressChange) -> AddressChange {
    match change {
        wit::AddressChange::Changed => AddressChange::Changed,
        wit::AddressChange::Unchanged => AddressChange::Unchanged,
    }
}

fn ip_address(address: wit::IpAddress) -> IpAddr {
    match address {
        wit::IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        wit::IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
        }
    }
}

fn wit_address(address: IpAddr) -> wit::IpAddress {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            wit::IpAddress::Ipv4((a, b, c, d))
        }
        IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            wit::IpAddress::Ipv6((a, b, c, d, e, f, g, h))
        }
    }
}

fn ip_prefix(prefix: wit::IpPrefix) -> IpPrefix {
    IpPrefix {
        address: ip_address(prefix.address),
        prefix_len: prefix.prefix_len,
    }
}

fn wit_prefix(prefix: IpPrefix) -> wit::IpPrefix {
    wit::IpPrefix {
        address: wit_address(prefix.address),
        prefix_len: prefix.prefix_len,
    }
}

/// Sends a panic's message to the daemon before the guest aborts, so the failed operation
/// names it; installed on the first call into the plugin.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| wit_host::panicked(&info.to_string())));
    });
}

fn wit_capability(capability: Capability) -> wit::Capability {
    match capability {
        Capability::Log => wit::Capability::Log,
        Capability::Addresses => wit::Capability::Addresses,
        Capability::GratuitousArp => wit::Capability::Arp,
        Capability::Commands => wit::Capability::Commands,
        Capability::ReadFiles => wit::Capability::Read,
    }
}

/// `info` for [`export_wasm_agent!`](crate::export_wasm_agent).
#[doc(hidden)]
pub fn agent_info(
    name: &str,
    version: &str,
    description: &str,
    agent: &dyn ResourceAgent,
) -> wit_agent::AgentInfo {
    install_panic_hook();
    wit_agent::AgentInfo {
        name: name.to_string(),
        version: version.to_string(),
        description: description.to_string(),
        capabilities: agent
            .capabilities()
            .into_iter()
            .map(wit_capability)
            .collect(),
    }
}

/// `metadata` for [`export_wasm_agent!`](crate::export_wasm_agent).
#[doc(hidden)]
pub fn agent_metadata(agent: &dyn ResourceAgent) -> String {
    install_panic_hook();
    agent.metadata()
}

/// `positional-params` for [`export_wasm_agent!`](crate::export_wasm_agent).
#[doc(hidden)]
pub fn agent_positional_params(
    agent: &dyn ResourceAgent,
    args: Vec<String>,
) -> Result<Vec<(String, String)>, String> {
    install_panic_hook();
    agent
        .positional_params(&args)
        .map(|params| params.into_iter().collect())
}

/// One operation for [`export_wasm_agent!`](crate::export_wasm_agent): the WIT instance as a
/// `ResourceInstance` (its grants are the daemon's to enforce, so it carries none), the
/// agent's answer as a WIT outcome.
#[doc(hidden)]
pub fn agent_run(
    agent: &dyn ResourceAgent,
    action: AgentAction,
    instance: wit_agent::Instance,
) -> wit_agent::Outcome {
    install_panic_hook();
    let instance = ResourceInstance {
        name: instance.name,
        params: instance.params.into_iter().collect::<BTreeMap<_, _>>(),
        timeout: Duration::from_millis(instance.timeout_ms),
        grants: Grants::default(),
    };
    let OperationOutcome { status, message } = agent.run(action, &instance, &GuestHost);
    wit_agent::Outcome {
        status: status.code(),
        message,
    }
}

/// Exports a `ResourceAgent` as the `resource-agent` world of a WASM component. Invoke it
/// once, at the root of a `cdylib` crate built for `wasm32-wasip2`:
///
/// ```ignore
/// vigil_sdk::export_wasm_agent! {
///     name: "wasm-vip",
///     description: "A virtual IP address, managed through granted capabilities",
///     agent: VipAgent,
/// }
/// ```
///
/// `agent` is an expression building the agent, evaluated once on first use; the version is
/// the crate's own (`CARGO_PKG_VERSION`). The capabilities the daemon asks the operator to
/// grant are what the agent's `capabilities()` returns.
#[macro_export]
macro_rules! export_wasm_agent {
    (name: $name:expr, description: $description:expr, agent: $agent:expr $(,)?) => {
        const _: () = {
            use $crate::wasm::agent_world::exports::vigil::plugin::agent as __vigil_wit;

            struct VigilWasmAgent;

            fn __vigil_agent() -> &'static dyn $crate::api::ResourceAgent {
                static AGENT: ::std::sync::OnceLock<
                    ::std::boxed::Box<dyn $crate::api::ResourceAgent>,
                > = ::std::sync::OnceLock::new();
                AGENT
                    .get_or_init(|| ::std::boxed::Box::new($agent))
                    .as_ref()
            }

            impl __vigil_wit::Guest for VigilWasmAgent {
                fn info() -> __vigil_wit::AgentInfo {
                    $crate::wasm::agent_info(
                        $name,
                        ::core::env!("CARGO_PKG_VERSION"),
                        $description,
                        __vigil_agent(),
                    )
                }
                fn metadata() -> ::std::string::String {
                    $crate::wasm::agent_metadata(__vigil_agent())
                }
                fn positional_params(
                    args: ::std::vec::Vec<::std::string::String>,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                    ::std::string::String,
                > {
                    $crate::wasm::agent_positional_params(__vigil_agent(), args)
                }
                fn validate(instance: __vigil_wit::Instance) -> __vigil_wit::Outcome {
                    $crate::wasm::agent_run(
                        __vigil_agent(),
                        $crate::api::AgentAction::Validate,
                        instance,
                    )
                }
                fn start(instance: __vigil_wit::Instance) -> __vigil_wit::Outcome {
                    $crate::wasm::agent_run(
                        __vigil_agent(),
                        $crate::api::AgentAction::Start,
                        instance,
                    )
                }
                fn stop(instance: __vigil_wit::Instance) -> __vigil_wit::Outcome {
                    $crate::wasm::agent_run(
                        __vigil_agent(),
                        $crate::api::AgentAction::Stop,
                        instance,
                    )
                }
                fn monitor(instance: __vigil_wit::Instance) -> __vigil_wit::Outcome {
                    $crate::wasm::agent_run(
                        __vigil_agent(),
                        $crate::api::AgentAction::Monitor,
                        instance,
                    )
                }
            }

            $crate::wasm::agent_world::__export_resource_agent!(
                VigilWasmAgent with_types_in $crate::wasm::agent_world
            );
        };
    };
}

/// What creates the devices of a WASM STONITH plugin: given the device type asked for (the
/// plugin's name), a new unconfigured device.
pub type DeviceConstructor = fn(&str) -> Result<Box<dyn StonithDevice>, StonithError>;

/// One device behind the `device` resource of the `stonith` interface. The component model
/// calls a resource through a shared reference; the device's `&mut self` calls go through
/// the cell (a component instance is single-threaded, so a borrow never overlaps another).
/// [`export_wasm_stonith!`](crate::export_wasm_stonith) wraps it in the plugin's own
/// resource type, which forwards to these methods.
#[doc(hidden)]
pub struct WasmDevice(std::cell::RefCell<Box<dyn StonithDevice>>);

fn stonith_error(error: StonithError) -> wit_stonith::StonithError {
    wit_stonith::StonithError {
        code: u8::try_from(error.code.number()).unwrap_or(StonithCode::Oops as u8),
        message: error.message,
    }
}

#[doc(hidden)]
impl WasmDevice {
    /// `device.config-names`.
    pub fn config_names(&self) -> Vec<String> {
        self.0.borrow().config_names()
    }

    pub fn configure(
        &self,
        params: Vec<(String, String)>,
    ) -> Result<(), wit_stonith::StonithError> {
        self.0
            .borrow_mut()
            .configure(&params)
            .map_err(stonith_error)
    }

    /// `device.status`.
    pub fn status(&self) -> Result<(), wit_stonith::StonithError> {
        self.0.borrow_mut().status().map_err(stonith_error)
    }

    /// `device.hosts`.
    pub fn hosts(&self) -> Result<Vec<String>, wit_stonith::StonithError> {
        self.0.borrow_mut().hosts().map_err(stonith_error)
    }

    /// `device.reset`.
    pub fn reset(
        &self,
        request: wit_stonith::ResetRequest,
        host: String,
    ) -> Result<(), wit_stonith::StonithError> {
        let request = match request {
            wit_stonith::ResetRequest::Reset => ResetRequest::Reset,
            wit_stonith::ResetRequest::PowerOn => ResetRequest::PowerOn,
            wit_stonith::ResetRequest::PowerOff => ResetRequest::PowerOff,
        };
        self.0
            .borrow_mut()
            .reset(request, &host)
            .map_err(stonith_error)
    }

    /// `device.info`.
    pub fn info(&self, what: wit_stonith::DeviceInfo) -> Option<String> {
        let what = match what {
            wit_stonith::DeviceInfo::ConfigXml => DeviceInfo::ConfigXml,
            wit_stonith::DeviceInfo::DeviceId => DeviceInfo::DeviceId,
            wit_stonith::DeviceInfo::DeviceName => DeviceInfo::DeviceName,
            wit_stonith::DeviceInfo::Description => DeviceInfo::Description,
            wit_stonith::DeviceInfo::Url => DeviceInfo::Url,
        };
        self.0.borrow_mut().info(what)
    }
}

/// `info` for [`export_wasm_stonith!`](crate::export_wasm_stonith).
#[doc(hidden)]
pub fn stonith_info(name: &str, version: &str, description: &str) -> wit_stonith::PluginInfo {
    install_panic_hook();
    wit_stonith::PluginInfo {
        name: name.to_string(),
        version: version.to_string(),
        description: description.to_string(),
    }
}

/// `device.create` for [`export_wasm_stonith!`](crate::export_wasm_stonith): the device
/// `constructor` makes, wrapped as the plugin's resource type.
#[doc(hidden)]
pub fn stonith_create_with<D: wit_stonith::GuestDevice>(
    constructor: DeviceConstructor,
    device_type: &str,
    wrap: fn(WasmDevice) -> D,
) -> Result<wit_stonith::Device, wit_stonith::StonithError> {
    install_panic_hook();
    let device = constructor(device_type).map_err(stonith_error)?;
    Ok(wit_stonith::Device::new(wrap(WasmDevice(
        std::cell::RefCell::new(device),
    ))))
}

/// Exports a STONITH device type as the `stonith-device` world of a WASM component. Invoke
/// it once, at the root of a `cdylib` crate built for `wasm32-wasip2`:
///
/// ```ignore
/// vigil_sdk::export_wasm_stonith! {
///     name: "wasm-null",
///     description: "A device that pretends to reset its hosts",
///     create: |_device_type| Ok(Box::new(NullDevice::default())),
/// }
/// ```
///
/// `create` is a [`DeviceConstructor`] (a closure without captures does). The plugin
/// provides one device type, its name. WASM devices may only log (through [`host`]) for now.
#[macro_export]
macro_rules! export_wasm_stonith {
    (name: $name:expr, description: $description:expr, create: $create:expr $(,)?) => {
        const _: () = {
            use $crate::wasm::stonith_world::exports::vigil::plugin::stonith as __vigil_wit;

            struct VigilWasmStonith;

            const __VIGIL_CREATE: $crate::wasm::DeviceConstructor = $create;

            impl __vigil_wit::Guest for VigilWasmStonith {
                type Device = __VigilDevice;

                fn info() -> __vigil_wit::PluginInfo {
                    $crate::wasm::stonith_info(
                        $name,
                        ::core::env!("CARGO_PKG_VERSION"),
                        $description,
                    )
                }
                fn types() -> ::std::vec::Vec<::std::string::String> {
                    ::std::vec![::std::string::String::from($name)]
                }
            }

            /// The plugin's device resource: the SDK's, created with this plugin's
            /// constructor.
            struct __VigilDevice($crate::wasm::WasmDevice);

            impl __vigil_wit::GuestDevice for __VigilDevice {
                fn create(
                    device_type: ::std::string::String,
                ) -> ::core::result::Result<__vigil_wit::Device, __vigil_wit::StonithError>
                {
                    $crate::wasm::stonith_create_with(__VIGIL_CREATE, &device_type, __VigilDevice)
                }
                fn config_names(&self) -> ::std::vec::Vec<::std::string::String> {
                    self.0.config_names()
                }
                fn configure(
                    &self,
                    params: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::core::result::Result<(), __vigil_wit::StonithError> {
                    self.0.configure(params)
                }
                fn status(&self) -> ::core::result::Result<(), __vigil_wit::StonithError> {
                    self.0.status()
                }
                fn hosts(
                    &self,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<::std::string::String>,
                    __vigil_wit::StonithError,
                > {
                    self.0.hosts()
                }
                fn reset(
                    &self,
                    request: __vigil_wit::ResetRequest,
                    host: ::std::string::String,
                ) -> ::core::result::Result<(), __vigil_wit::StonithError> {
                    self.0.reset(request, host)
                }
                fn info(
                    &self,
                    what: __vigil_wit::DeviceInfo,
                ) -> ::core::option::Option<::std::string::String> {
                    self.0.info(what)
                }
            }

            $crate::wasm::stonith_world::__export_stonith_device!(
                VigilWasmStonith with_types_in $crate::wasm::stonith_world
            );
        };
    };
}
