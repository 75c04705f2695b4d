//! Exporting a plugin as a native dynamic library (`crate-type = ["cdylib"]`) through vigil's
//! C ABI ([`crate::api::abi`]).
//!
//! An author implements one contract and invokes one macro at the crate root:
//! [`export_resource_agent!`](crate::export_resource_agent),
//! [`export_stonith_device!`](crate::export_stonith_device) or
//! [`export_medium!`](crate::export_medium). The macro emits the two symbols the loader
//! looks for (the ABI version as a data symbol, and the entry function returning the static
//! table) and a few `extern "C"` shims that call the generic adapters below.
//!
//! This module owns the plugin side of the boundary: turning C views into the contract's
//! Rust types, handing results back through the caller's receivers, and catching every
//! panic so that it becomes the operation's error (OCF generic error for agents, `S_OOPS`
//! for STONITH devices, an I/O error for media) instead of aborting the daemon. It must not
//! allocate anything the host frees, nor free anything the host allocated.

use std::any::Any;
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Duration;

use crate::api::abi::{
    self, AddressView, ByteStr, HostErrorView, HostVtable, KeyValue, MediumSpecView, MediumVtable,
    PeerAddressView, Receiver, ResourceInstanceView, StonithVtable,
};
use crate::api::{
    AddressChange, AddressRequest, AgentAction, Capability, CommandOutput, DeviceInfo, Grants,
    Host, HostError, InterfaceAddress, IpPrefix, LogLevel, Medium, MediumError, MediumSpec,
    OcfStatus, OperationOutcome, ResetRequest, ResourceAgent, ResourceInstance, StonithCode,
    StonithDevice, StonithError,
};

/// The text of a panic payload, prefixed so the operator sees that the plugin, not the
/// resource or the device, failed.
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let text = if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-text payload".to_string()
    };
    format!("plugin panicked: {text}")
}

/// Runs `body`, turning a panic into its message: the one guard every exported function
/// goes through.
fn guarded<R>(body: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(body)).map_err(panic_message)
}

/// Gives `text` to `receiver`.
///
/// # Safety
/// `receiver` must come from the host's current call.
unsafe fn give_text(receiver: Receiver<ByteStr>, text: &str) {
    // SAFETY: the view lives for the call; the receiver is the caller's, per the contract.
    unsafe { receiver.give(&ByteStr::from_text(text)) }
}

/// The slice behind a pointer and length from the other side; empty for a null pointer.
///
/// # Safety
/// `ptr` must be null or point to `len` valid items for `'a`.
unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: as the caller promises.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// The pairs behind a pointer and length.
///
/// # Safety
/// As [`slice`], and every string in the pairs valid too.
unsafe fn pairs(ptr: *const KeyValue, len: usize) -> Vec<(String, String)> {
    // SAFETY: forwarded to the caller.
    unsafe { slice(ptr, len) }
        .iter()
        // SAFETY: forwarded to the caller.
        .map(|kv| unsafe { (kv.key.to_string_lossy(), kv.value.to_string_lossy()) })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Resource agents
// ---------------------------------------------------------------------------------------

/// The [`ResourceInstance`] an operation's C view describes. Grants stay empty: a native
/// agent runs with the daemon's own rights, and grants bind only sandboxed agents.
///
/// # Safety
/// Every pointer in `view` must be valid for the call.
pub unsafe fn instance_from_view(view: &ResourceInstanceView) -> ResourceInstance {
    ResourceInstance {
        // SAFETY: forwarded to the caller.
        name: unsafe { view.name.to_string_lossy() },
        // SAFETY: forwarded to the caller.
        params: unsafe { pairs(view.params, view.params_len) }
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        timeout: Duration::from_millis(view.timeout_ms),
        grants: Grants::default(),
    }
}

/// `AgentVtable::metadata` over `agent()`.
///
/// # Safety
/// `out` must be the host's receiver for this call.
pub unsafe fn agent_metadata<A: ResourceAgent>(
    agent: fn() -> &'static A,
    out: Receiver<ByteStr>,
) -> i32 {
    match guarded(|| agent().metadata()) {
        Ok(xml) => {
            // SAFETY: the receiver is the caller's.
            unsafe { give_text(out, &xml) };
            0
        }
        Err(_) => 1,
    }
}

/// `AgentVtable::capabilities` over `agent()`: bit `i` for `Capability::ALL[i]`. A panic
/// declares nothing.
pub fn agent_capabilities<A: ResourceAgent>(agent: fn() -> &'static A) -> u32 {
    guarded(|| {
        let wanted = agent().capabilities();
        Capability::ALL
            .iter()
            .enumerate()
            .filter(|(_, c)| wanted.contains(c))
            .fold(0u32, |bits, (i, _)| bits | 1 << i)
    })
    .unwrap_or(0)
}

/// `AgentVtable::positional_params` over `agent()`.
///
/// # Safety
/// `args` must point to `args_len` valid views, and the receivers be the host's.
pub unsafe fn agent_positional_params<A: ResourceAgent>(
    agent: fn() -> &'static A,
    args: *const ByteStr,
    args_len: usize,
    out: Receiver<KeyValue>,
    error: Receiver<ByteStr>,
) -> i32 {
    // SAFETY: forwarded to the caller.
    let args: Vec<String> = unsafe { slice(args, args_len) }
        .iter()
        // SAFETY: forwarded to the caller.
        .map(|a| unsafe { a.to_string_lossy() })
        .collect();
    match guarded(|| agent().positional_params(&args)).and_then(|r| r) {
        Ok(params) => {
            for (key, value) in &params {
                let pair = KeyValue {
                    key: ByteStr::from_text(key),
                    value: ByteStr::from_text(value),
                };
                // SAFETY: the receiver is the caller's; the pair's views live for the call.
                unsafe { out.give(&pair) };
            }
            0
        }
        Err(reason) => {
            // SAFETY: the receiver is the caller's.
            unsafe { give_text(error, &reason) };
            1
        }
    }
}

/// `AgentVtable::run` over `agent()`: the operation's OCF code, its message to `message`.
/// A panic is `OCF_ERR_GENERIC` with the panic's text.
///
/// # Safety
/// `instance` and `host` must be null or valid for the call, `message` the host's receiver.
pub unsafe fn agent_run<A: ResourceAgent>(
    agent: fn() -> &'static A,
    action: u32,
    instance: *const ResourceInstanceView,
    host: *const HostVtable,
    message: Receiver<ByteStr>,
) -> u32 {
    let action = match action {
        abi::ACTION_START => AgentAction::Start,
        abi::ACTION_STOP => AgentAction::Stop,
        abi::ACTION_MONITOR => AgentAction::Monitor,
        abi::ACTION_VALIDATE => AgentAction::Validate,
        other => {
            let reason = format!("unknown action number {other}");
            // SAFETY: the receiver is the caller's.
            unsafe { give_text(message, &reason) };
            return u32::from(OcfStatus::ErrUnimplemented.code());
        }
    };
    // SAFETY: null or valid for the call, as the caller promises.
    let (Some(instance), Some(host)) = (unsafe { instance.as_ref() }, unsafe { host.as_ref() })
    else {
        // SAFETY: the receiver is the caller's.
        unsafe { give_text(message, "the host passed no instance or no host") };
        return u32::from(OcfStatus::ErrArgs.code());
    };
    let outcome = guarded(|| {
        // SAFETY: the view is valid for the call.
        let instance = unsafe { instance_from_view(instance) };
        // SAFETY: the host vtable is valid for the call.
        let host = unsafe { ForeignHost::new(host) };
        agent().run(action, &instance, &host)
    })
    .unwrap_or_else(|panic| OperationOutcome::new(OcfStatus::ErrGeneric, panic));
    // SAFETY: the receiver is the caller's.
    unsafe { give_text(message, &outcome.message) };
    u32::from(outcome.status.code())
}

/// The daemon's [`Host`] as a native agent sees it: every call goes through the
/// [`HostVtable`] the host built for this operation. Public so that a host-side test can
/// prove the vtable round-trips every capability.
pub struct ForeignHost<'a> {
    /// The host's functions and context, valid for the operation.
    vtable: &'a HostVtable,
}

// SAFETY: the vtable's context is the daemon's `&dyn Host`, which is `Sync`, and its
// functions may be called from any thread; the lifetime keeps it inside the operation.
unsafe impl Send for ForeignHost<'_> {}
// SAFETY: as for `Send`.
unsafe impl Sync for ForeignHost<'_> {}

impl<'a> ForeignHost<'a> {
    /// Wraps the host's vtable.
    ///
    /// # Safety
    /// `vtable` must be a host vtable valid for `'a`, as `AgentVtable::run` receives it.
    pub unsafe fn new(vtable: &'a HostVtable) -> Self {
        ForeignHost { vtable }
    }

    /// Runs one host call that reports failure through an error receiver, and turns its
    /// status into a `Result`.
    fn call(
        &self,
        capability: &str,
        call: impl FnOnce(Receiver<HostErrorView>) -> i32,
    ) -> Result<i32, HostError> {
        let mut error = None;
        let mut sink = |view: &HostErrorView| {
            // SAFETY: the host gives views valid during this call.
            error = Some(unsafe { view.to_host_error() })
        };
        let receiver = Receiver::to(&mut sink);
        let status = call(receiver.raw());
        if status == abi::HOST_ERR {
            Err(error.unwrap_or_else(|| HostError::Failed {
                capability: capability.to_string(),
                reason: "the host failed without saying why".to_string(),
            }))
        } else {
            Ok(status)
        }
    }
}

/// The change an address call reports.
fn address_change(status: i32) -> AddressChange {
    if status == abi::HOST_UNCHANGED {
        AddressChange::Unchanged
    } else {
        AddressChange::Changed
    }
}

impl Host for ForeignHost<'_> {
    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Debug => abi::LOG_DEBUG,
            LogLevel::Info => abi::LOG_INFO,
            LogLevel::Warning => abi::LOG_WARNING,
            LogLevel::Error => abi::LOG_ERROR,
        };
        // SAFETY: the vtable is valid for the operation; the message view for the call.
        unsafe { (self.vtable.log)(self.vtable.ctx, level, ByteStr::from_text(message)) }
    }

    fn addresses(&self) -> Result<Vec<InterfaceAddress>, HostError> {
        let mut found = Vec::new();
        let mut sink = |view: &AddressView| {
            // SAFETY: the host gives views valid during this call.
            if let Some(address) = unsafe { view.to_interface_address() } {
                found.push(address);
            }
        };
        let out = Receiver::to(&mut sink);
        self.call("addresses", |error| {
            // SAFETY: the vtable is valid for the operation; the receivers for the call.
            unsafe { (self.vtable.addresses)(self.vtable.ctx, out.raw(), error) }
        })?;
        Ok(found)
    }

    fn add_address(&self, request: &AddressRequest) -> Result<AddressChange, HostError> {
        let view = AddressView::of_request(request);
        self.call("addresses", |error| {
            // SAFETY: the vtable is valid for the operation; the view for the call.
            unsafe { (self.vtable.add_address)(self.vtable.ctx, &view, error) }
        })
        .map(address_change)
    }

    fn remove_address(
        &self,
        interface: &str,
        address: IpPrefix,
    ) -> Result<AddressChange, HostError> {
        self.call("addresses", |error| {
            // SAFETY: the vtable is valid for the operation; the views for the call.
            unsafe {
                (self.vtable.remove_address)(
                    self.vtable.ctx,
                    ByteStr::from_text(interface),
                    abi::IpPrefixView::from_prefix(address),
                    error,
                )
            }
        })
        .map(address_change)
    }

    fn send_gratuitous_arp(
        &self,
        interface: &str,
        address: std::net::IpAddr,
        count: u32,
        interval: Duration,
    ) -> Result<(), HostError> {
        self.call("arp", |error| {
            // SAFETY: the vtable is valid for the operation; the views for the call.
            unsafe {
                (self.vtable.send_gratuitous_arp)(
                    self.vtable.ctx,
                    ByteStr::from_text(interface),
                    abi::IpAddressView::from_ip(address),
                    count,
                    duration_ms(interval),
                    error,
                )
            }
        })
        .map(|_| ())
    }

    fn run_command(
        &self,
        argv: &[String],
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<CommandOutput, HostError> {
        let argv: Vec<ByteStr> = argv.iter().map(|a| ByteStr::from_text(a)).collect();
        let env: Vec<KeyValue> = env
            .iter()
            .map(|(k, v)| KeyValue {
                key: ByteStr::from_text(k),
                value: ByteStr::from_text(v),
            })
            .collect();
        let mut output = None;
        let mut sink = |view: &abi::CommandOutputView| {
            // SAFETY: the host gives views valid during this call.
            output = Some(unsafe { view.to_command_output() })
        };
        let out = Receiver::to(&mut sink);
        self.call("commands", |error| {
            // SAFETY: the vtable is valid for the operation; the arrays and views for the call.
            unsafe {
                (self.vtable.run_command)(
                    self.vtable.ctx,
                    argv.as_ptr(),
                    argv.len(),
                    env.as_ptr(),
                    env.len(),
                    duration_ms(timeout),
                    out.raw(),
                    error,
                )
            }
        })?;
        output.ok_or_else(|| HostError::Failed {
            capability: "commands".to_string(),
            reason: "the host reported success but gave no output".to_string(),
        })
    }

    fn read_file(&self, path: &Path) -> Result<Vec<u8>, HostError> {
        let mut contents = Vec::new();
        let mut sink = |view: &ByteStr| {
            // SAFETY: the host gives views valid during this call.
            contents.extend_from_slice(unsafe { view.as_bytes() })
        };
        let out = Receiver::to(&mut sink);
        self.call("read", |error| {
            // SAFETY: the vtable is valid for the operation; the views for the call.
            unsafe {
                (self.vtable.read_file)(
                    self.vtable.ctx,
                    ByteStr::new(path.as_os_str().as_bytes()),
                    out.raw(),
                    error,
                )
            }
        })?;
        Ok(contents)
    }
}

/// A duration in whole milliseconds, saturating.
fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------------------
// STONITH devices
// ---------------------------------------------------------------------------------------

/// What a STONITH device handle points to.
type DeviceHandle = Box<dyn StonithDevice>;

/// The C status of a device call: 0, or the error's code with its message to `error`.
///
/// # Safety
/// `error` must be the host's receiver for this call.
unsafe fn stonith_status(result: Result<(), StonithError>, error: Receiver<ByteStr>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            // SAFETY: the receiver is the caller's.
            unsafe { give_text(error, &e.message) };
            e.code.number()
        }
    }
}

/// Runs a device call under the panic guard: a panic is `S_OOPS` with the panic's text.
fn stonith_guarded(body: impl FnOnce() -> Result<(), StonithError>) -> Result<(), StonithError> {
    guarded(body).unwrap_or_else(|panic| Err(StonithError::new(StonithCode::Oops, panic)))
}

/// The device behind a handle.
///
/// # Safety
/// `device` must be a live handle from [`stonith_create`], used by one thread at a time.
unsafe fn device<'a>(device: *mut c_void) -> &'a mut DeviceHandle {
    // SAFETY: as the caller promises.
    unsafe { &mut *device.cast::<DeviceHandle>() }
}

/// `StonithVtable::create` with `make` building the device.
///
/// # Safety
/// `device` must be writable; `error` the host's receiver.
pub unsafe fn stonith_create(
    make: impl FnOnce() -> Box<dyn StonithDevice>,
    device_type: ByteStr,
    device: *mut *mut c_void,
    error: Receiver<ByteStr>,
) -> i32 {
    let _ = device_type;
    if device.is_null() {
        // SAFETY: the receiver is the caller's.
        return unsafe { stonith_status(Err(null_argument()), error) };
    }
    let mut made = None;
    let result = stonith_guarded(|| {
        made = Some(make());
        Ok(())
    });
    if let Some(made) = made {
        let handle: *mut DeviceHandle = Box::into_raw(Box::new(made));
        // SAFETY: checked non-null above; the host gave a writable slot.
        unsafe { *device = handle.cast() };
    }
    // SAFETY: the receiver is the caller's.
    unsafe { stonith_status(result, error) }
}

/// The error for a null pointer where the ABI requires one.
fn null_argument() -> StonithError {
    StonithError::new(StonithCode::Oops, "the host passed a null pointer")
}

/// `StonithVtable::destroy`.
///
/// # Safety
/// `device` must be a live handle from [`stonith_create`], not used again.
pub unsafe extern "C" fn stonith_destroy(device: *mut c_void) {
    if device.is_null() {
        return;
    }
    // SAFETY: the handle came from Box::into_raw in stonith_create and is given up now.
    let handle = unsafe { Box::from_raw(device.cast::<DeviceHandle>()) };
    let _ = guarded(move || drop(handle));
}

/// `StonithVtable::config_names`.
///
/// # Safety
/// `device` a live handle; the receivers the host's.
pub unsafe extern "C" fn stonith_config_names(
    device_handle: *mut c_void,
    out: Receiver<ByteStr>,
    error: Receiver<ByteStr>,
) -> i32 {
    // SAFETY: as the caller promises.
    let device = unsafe { device(device_handle) };
    let result = stonith_guarded(|| {
        for name in device.config_names() {
            // SAFETY: the receiver is the caller's.
            unsafe { give_text(out, &name) };
        }
        Ok(())
    });
    // SAFETY: the receiver is the caller's.
    unsafe { stonith_status(result, error) }
}

/// `StonithVtable::configure`.
///
/// # Safety
/// `device` a live handle; `params` `params_len` valid pairs; `error` the host's receiver.
pub unsafe extern "C" fn stonith_configure(
    device_handle: *mut c_void,
    params: *const KeyValue,
    params_len: usize,
    error: Receiver<ByteStr>,
) -> i32 {
    // SAFETY: as the caller promises.
    let (device, params) = unsafe { (device(device_handle), pairs(params, params_len)) };
    let result = stonith_guarded(|| device.configure(&params));
    // SAFETY: the receiver is the caller's.
    unsafe { stonith_status(result, error) }
}

/// `StonithVtable::status`.
///
/// # Safety
/// `device` a live handle; `error` the host's receiver.
pub unsafe extern "C" fn stonith_device_status(
    device_handle: *mut c_void,
    error: Receiver<ByteStr>,
) -> i32 {
    // SAFETY: as the caller promises.
    let device = unsafe { device(device_handle) };
    let result = stonith_guarded(|| device.status());
    // SAFETY: the receiver is the caller's.
    unsafe { stonith_status(result, error) }
}

/// `StonithVtable::hosts`.
///
/// # Safety
/// `device` a live handle; the receivers the host's.
pub unsafe extern "C" fn stonith_hosts(
    device_handle: *mut c_void,
    out: Receiver<ByteStr>,
    error: Receiver<ByteStr>,
) -> i32 {
    // SAFETY: as the caller promises.
    let device = unsafe { device(device_handle) };
    let result = stonith_guarded(|| {
        for host in device.hosts()? {
            // SAFETY: the receiver is the caller's.
            unsafe { give_text(out, &host) };
        }
        Ok(())
    });
    // SAFETY: the receiver is the caller's.
    unsafe { stonith_status(result, error) }
}

/// `StonithVtable::reset`.
///
/// # Safety
/// `device` a live handle; `host` valid for the call; `error` the host's receiver.
pub unsafe extern "C" fn stonith_reset(
    device_handle: *mut c_void,
    request: u32,
    host: ByteStr,
    error: Receiver<ByteStr>,
) -> i32 {
    // SAFETY: as the caller promises.
    let (device, host) = unsafe { (device(device_handle), host.to_string_lossy()) };
    let result = stonith_guarded(|| {
        let request = match request {
            abi::RESET_REBOOT => ResetRequest::Reset,
            abi::RESET_POWER_ON => ResetRequest::PowerOn,
            abi::RESET_POWER_OFF => ResetRequest::PowerOff,
            other => {
                return Err(StonithError::new(
                    StonithCode::Invalid,
                    format!("unknown reset request number {other}"),
                ));
            }
        };
        device.reset(request, &host)
    });
    // SAFETY: the receiver is the caller's.
    unsafe { stonith_status(result, error) }
}

/// `StonithVtable::info`: 1 with the text, 0 when there is none (or the device panicked).
///
/// # Safety
/// `device` a live handle; `out` the host's receiver.
pub unsafe extern "C" fn stonith_info(
    device_handle: *mut c_void,
    what: u32,
    out: Receiver<ByteStr>,
) -> i32 {
    // SAFETY: as the caller promises.
    let device = unsafe { device(device_handle) };
    let what = match what {
        abi::INFO_CONFIG_XML => DeviceInfo::ConfigXml,
        abi::INFO_DEVICE_ID => DeviceInfo::DeviceId,
        abi::INFO_DEVICE_NAME => DeviceInfo::DeviceName,
        abi::INFO_DESCRIPTION => DeviceInfo::Description,
        abi::INFO_URL => DeviceInfo::Url,
        _ => return 0,
    };
    match guarded(|| device.info(what)) {
        Ok(Some(text)) => {
            // SAFETY: the receiver is the caller's.
            unsafe { give_text(out, &text) };
            1
        }
        Ok(None) | Err(_) => 0,
    }
}

/// The STONITH function table, with the plugin's own `create` shim; what
/// [`export_stonith_device!`](crate::export_stonith_device) puts in a static.
pub const fn stonith_vtable(
    create: unsafe extern "C" fn(ByteStr, *mut *mut c_void, Receiver<ByteStr>) -> i32,
) -> StonithVtable {
    StonithVtable {
        create,
        destroy: stonith_destroy,
        config_names: stonith_config_names,
        configure: stonith_configure,
        status: stonith_device_status,
        hosts: stonith_hosts,
        reset: stonith_reset,
        info: stonith_info,
    }
}

// ---------------------------------------------------------------------------------------
// Media
// ---------------------------------------------------------------------------------------

/// What a medium handle points to.
type MediumHandle = Box<dyn Medium>;

/// The [`MediumSpec`] a C view describes.
///
/// # Safety
/// Every pointer in `view` must be valid for the call.
pub unsafe fn spec_from_view(view: &MediumSpecView) -> MediumSpec {
    // SAFETY: forwarded to the caller.
    unsafe {
        MediumSpec {
            kind: view.kind.to_string_lossy(),
            args: slice(view.args, view.args_len)
                .iter()
                .map(|a| a.to_string_lossy())
                .collect(),
            udp_port: view.udp_port,
            origin: view.origin.to_string_lossy(),
        }
    }
}

/// The C status of an I/O error: its errno when it has one, else [`abi::MEDIUM_IO_ERROR`].
fn io_status(error: &io::Error) -> i32 {
    error
        .raw_os_error()
        .filter(|errno| *errno > 0)
        .unwrap_or(abi::MEDIUM_IO_ERROR)
}

/// The C status of a configuration error, its message to `error`.
///
/// # Safety
/// `error` must be the host's receiver for this call.
unsafe fn medium_error_status(result: Result<(), MediumError>, error: Receiver<ByteStr>) -> i32 {
    let (status, message) = match result {
        Ok(()) => return 0,
        Err(MediumError::BadArguments { reason, .. }) => (abi::MEDIUM_BAD_ARGUMENTS, reason),
        Err(MediumError::Open { source, .. }) => (io_status(&source), source.to_string()),
    };
    // SAFETY: the receiver is the caller's.
    unsafe { give_text(error, &message) };
    status
}

/// The C status of an I/O result, its message to `error`; a panic is an I/O error too.
///
/// # Safety
/// `error` must be the host's receiver for this call.
unsafe fn io_result_status(
    result: Result<io::Result<()>, String>,
    error: Receiver<ByteStr>,
) -> i32 {
    let (status, message) = match result {
        Ok(Ok(())) => return 0,
        Ok(Err(e)) => (io_status(&e), e.to_string()),
        Err(panic) => (abi::MEDIUM_IO_ERROR, panic),
    };
    // SAFETY: the receiver is the caller's.
    unsafe { give_text(error, &message) };
    status
}

/// `MediumVtable::check` with the plugin's `check`.
///
/// # Safety
/// `spec` null or valid for the call; `error` the host's receiver.
pub unsafe fn medium_check(
    check: impl FnOnce(&MediumSpec) -> Result<(), MediumError>,
    spec: *const MediumSpecView,
    error: Receiver<ByteStr>,
) -> i32 {
    // SAFETY: null or valid, as the caller promises.
    let Some(spec) = (unsafe { spec.as_ref() }) else {
        // SAFETY: the receiver is the caller's.
        return unsafe { io_result_status(Err("the host passed no spec".into()), error) };
    };
    // SAFETY: the view is valid for the call.
    let spec = unsafe { spec_from_view(spec) };
    match guarded(|| check(&spec)) {
        // SAFETY: the receiver is the caller's.
        Ok(result) => unsafe { medium_error_status(result, error) },
        // SAFETY: the receiver is the caller's.
        Err(panic) => unsafe { io_result_status(Err(panic), error) },
    }
}

/// `MediumVtable::open` with the plugin's `open`.
///
/// # Safety
/// `spec` null or valid for the call; `medium` writable; `error` the host's receiver.
pub unsafe fn medium_open(
    open: impl FnOnce(&MediumSpec) -> Result<Box<dyn Medium>, MediumError>,
    spec: *const MediumSpecView,
    medium: *mut *mut c_void,
    error: Receiver<ByteStr>,
) -> i32 {
    // SAFETY: null or valid, as the caller promises.
    let Some(spec) = (unsafe { spec.as_ref() }).filter(|_| !medium.is_null()) else {
        // SAFETY: the receiver is the caller's.
        return unsafe { io_result_status(Err("the host passed a null pointer".into()), error) };
    };
    // SAFETY: the view is valid for the call.
    let spec = unsafe { spec_from_view(spec) };
    match guarded(|| open(&spec)) {
        Ok(Ok(opened)) => {
            let handle: *mut MediumHandle = Box::into_raw(Box::new(opened));
            // SAFETY: checked non-null above; the host gave a writable slot.
            unsafe { *medium = handle.cast() };
            0
        }
        // SAFETY: the receiver is the caller's.
        Ok(Err(e)) => unsafe { medium_error_status(Err(e), error) },
        // SAFETY: the receiver is the caller's.
        Err(panic) => unsafe { io_result_status(Err(panic), error) },
    }
}

/// The medium behind a handle.
///
/// # Safety
/// `medium` must be a live handle from [`medium_open`].
unsafe fn medium<'a>(medium: *mut c_void) -> &'a MediumHandle {
    // SAFETY: as the caller promises; media are `Sync`, so shared use from the reader and
    // writer threads is sound.
    unsafe { &*medium.cast::<MediumHandle>() }
}

/// `MediumVtable::link_name`; empty if the medium panics.
///
/// # Safety
/// `medium` must be a live handle.
pub unsafe extern "C" fn medium_link_name(medium_handle: *mut c_void) -> ByteStr {
    // SAFETY: as the caller promises.
    let medium = unsafe { medium(medium_handle) };
    guarded(|| ByteStr::from_text(medium.link_name())).unwrap_or(ByteStr::from_text(""))
}

/// `MediumVtable::send`.
///
/// # Safety
/// `medium` a live handle; `frame` valid for the call; `error` the host's receiver.
pub unsafe extern "C" fn medium_send(
    medium_handle: *mut c_void,
    frame: ByteStr,
    error: Receiver<ByteStr>,
) -> i32 {
    // SAFETY: as the caller promises.
    let (medium, frame) = unsafe { (medium(medium_handle), frame.as_bytes()) };
    // SAFETY: the receiver is the caller's.
    unsafe { io_result_status(guarded(|| medium.send(frame)), error) }
}

/// `MediumVtable::recv`.
///
/// # Safety
/// `medium` a live handle; `buf` `buf_len` writable bytes; `received` and `from` writable;
/// `error` the host's receiver.
pub unsafe extern "C" fn medium_recv(
    medium_handle: *mut c_void,
    buf: *mut u8,
    buf_len: usize,
    received: *mut usize,
    from: *mut PeerAddressView,
    error: Receiver<ByteStr>,
) -> i32 {
    if buf.is_null() || received.is_null() || from.is_null() {
        // SAFETY: the receiver is the caller's.
        return unsafe { io_result_status(Err("the host passed a null pointer".into()), error) };
    }
    // SAFETY: as the caller promises; the buffer is the host's and ours for this call.
    let (medium, buf) = unsafe {
        (
            medium(medium_handle),
            std::slice::from_raw_parts_mut(buf, buf_len),
        )
    };
    let result = guarded(|| {
        let (len, peer) = medium.recv(buf)?;
        let view = PeerAddressView::of(&peer);
        // SAFETY: both checked non-null above and writable, as the caller promises.
        unsafe {
            *received = len.min(buf_len);
            *from = view;
        }
        Ok(())
    });
    // SAFETY: the receiver is the caller's.
    unsafe { io_result_status(result, error) }
}

/// `MediumVtable::shutdown`.
///
/// # Safety
/// `medium` must be a live handle.
pub unsafe extern "C" fn medium_shutdown(medium_handle: *mut c_void) {
    // SAFETY: as the caller promises.
    let medium = unsafe { medium(medium_handle) };
    let _ = guarded(|| medium.shutdown());
}

/// `MediumVtable::destroy`.
///
/// # Safety
/// `medium` must be a live handle from [`medium_open`], not used again.
pub unsafe extern "C" fn medium_destroy(medium_handle: *mut c_void) {
    if medium_handle.is_null() {
        return;
    }
    // SAFETY: the handle came from Box::into_raw in medium_open and is given up now.
    let handle = unsafe { Box::from_raw(medium_handle.cast::<MediumHandle>()) };
    let _ = guarded(move || drop(handle));
}

/// The medium function table, with the plugin's own `check` and `open` shims; what
/// [`export_medium!`](crate::export_medium) puts in a static.
pub const fn medium_vtable(
    check: unsafe extern "C" fn(*const MediumSpecView, Receiver<ByteStr>) -> i32,
    open: unsafe extern "C" fn(*const MediumSpecView, *mut *mut c_void, Receiver<ByteStr>) -> i32,
) -> MediumVtable {
    MediumVtable {
        check,
        open,
        link_name: medium_link_name,
        send: medium_send,
        recv: medium_recv,
        shutdown: medium_shutdown,
        destroy: medium_destroy,
    }
}

// ---------------------------------------------------------------------------------------
// The export macros
// ---------------------------------------------------------------------------------------

/// Emits the ABI version symbol and the entry function returning `$table`. Shared by the
/// three export macros; not for direct use.
#[doc(hidden)]
#[macro_export]
macro_rules! __vigil_export_table {
    ($table:ident) => {
        /// The ABI this library speaks, read by the loader before it calls anything.
        #[unsafe(no_mangle)]
        #[allow(non_upper_case_globals)]
        pub static vigil_plugin_abi_version: u32 = $crate::api::abi::ABI_VERSION;

        /// The entry point: the plugin's static table.
        #[unsafe(no_mangle)]
        pub extern "C" fn vigil_plugin_entry() -> *const $crate::api::abi::PluginTable {
            &$table
        }
    };
}

/// Exports a [`ResourceAgent`] as a native plugin. Invoke once, at the crate root of a
/// `cdylib`:
///
/// ```ignore
/// vigil_sdk::export_resource_agent! {
///     name: "StateDummy",
///     version: env!("CARGO_PKG_VERSION"),
///     description: "a resource whose state is one file",
///     agent: StateDummy = StateDummy::default(),
/// }
/// ```
///
/// The agent is built once, on first use, and shared by every operation (the contract's
/// agents are stateless and `Sync`). A panic in any operation is that operation's
/// `OCF_ERR_GENERIC`, with message `plugin panicked: ...`.
#[macro_export]
macro_rules! export_resource_agent {
    (
        name: $name:expr,
        version: $version:expr,
        description: $description:expr,
        agent: $agent:ty = $make:expr $(,)?
    ) => {
        const _: () = {
            use $crate::api::abi::{ByteStr, HostVtable, KeyValue, Receiver, ResourceInstanceView};

            fn vigil_agent() -> &'static $agent {
                static AGENT: ::std::sync::OnceLock<$agent> = ::std::sync::OnceLock::new();
                AGENT.get_or_init(|| $make)
            }

            unsafe extern "C" fn vigil_metadata(out: Receiver<ByteStr>) -> i32 {
                // SAFETY: the host calls this through the ABI, with its own receiver.
                unsafe { $crate::native::agent_metadata(vigil_agent, out) }
            }

            unsafe extern "C" fn vigil_capabilities() -> u32 {
                $crate::native::agent_capabilities(vigil_agent)
            }

            unsafe extern "C" fn vigil_positional_params(
                args: *const ByteStr,
                args_len: usize,
                out: Receiver<KeyValue>,
                error: Receiver<ByteStr>,
            ) -> i32 {
                // SAFETY: the host calls this through the ABI, with valid views.
                unsafe {
                    $crate::native::agent_positional_params(vigil_agent, args, args_len, out, error)
                }
            }

            unsafe extern "C" fn vigil_run(
                action: u32,
                instance: *const ResourceInstanceView,
                host: *const HostVtable,
                message: Receiver<ByteStr>,
            ) -> u32 {
                // SAFETY: the host calls this through the ABI, with valid views.
                unsafe { $crate::native::agent_run(vigil_agent, action, instance, host, message) }
            }

            static VTABLE: $crate::api::abi::AgentVtable = $crate::api::abi::AgentVtable {
                metadata: vigil_metadata,
                capabilities: vigil_capabilities,
                positional_params: vigil_positional_params,
                run: vigil_run,
            };

            static TABLE: $crate::api::abi::PluginTable = $crate::api::abi::PluginTable::new(
                $crate::api::abi::KIND_AGENT,
                $name,
                $version,
                $description,
                Some(&VTABLE),
                None,
                None,
            );

            $crate::__vigil_export_table!(TABLE);
        };
    };
}

/// Exports a [`StonithDevice`] type as a native plugin providing one device type, `name`.
/// `device` is evaluated for every new (unconfigured) device the daemon creates:
///
/// ```ignore
/// vigil_sdk::export_stonith_device! {
///     name: "statedir",
///     version: env!("CARGO_PKG_VERSION"),
///     description: "a power switch simulated by files in a directory",
///     device: StateDirDevice::default(),
/// }
/// ```
///
/// A panic in any device call is that call's `S_OOPS`, with message `plugin panicked: ...`.
#[macro_export]
macro_rules! export_stonith_device {
    (
        name: $name:expr,
        version: $version:expr,
        description: $description:expr,
        device: $make:expr $(,)?
    ) => {
        const _: () = {
            use $crate::api::abi::{ByteStr, Receiver};

            unsafe extern "C" fn vigil_create(
                device_type: ByteStr,
                device: *mut *mut ::std::ffi::c_void,
                error: Receiver<ByteStr>,
            ) -> i32 {
                // SAFETY: the host calls this through the ABI, with a writable slot and its
                // own receiver.
                unsafe {
                    $crate::native::stonith_create(
                        || ::std::boxed::Box::new($make),
                        device_type,
                        device,
                        error,
                    )
                }
            }

            static VTABLE: $crate::api::abi::StonithVtable =
                $crate::native::stonith_vtable(vigil_create);

            static TABLE: $crate::api::abi::PluginTable = $crate::api::abi::PluginTable::new(
                $crate::api::abi::KIND_STONITH,
                $name,
                $version,
                $description,
                None,
                Some(&VTABLE),
                None,
            );

            $crate::__vigil_export_table!(TABLE);
        };
    };
}

/// Exports a [`Medium`] type as a native plugin whose directive is `name`. `check` is a
/// `fn(&MediumSpec) -> Result<(), MediumError>` that validates a configuration line without
/// touching the system; `open` a `fn(&MediumSpec) -> Result<M, MediumError>` for the medium
/// type `M`:
///
/// ```ignore
/// vigil_sdk::export_medium! {
///     name: "unixdgram",
///     version: env!("CARGO_PKG_VERSION"),
///     description: "Unix datagram sockets in a shared directory",
///     check: UnixDgram::check,
///     open: UnixDgram::open,
/// }
/// ```
///
/// A native medium is read by a thread of the daemon (`recv` may block) and written by
/// another. A panic in any call is that call's I/O error, with message `plugin panicked: ...`.
#[macro_export]
macro_rules! export_medium {
    (
        name: $name:expr,
        version: $version:expr,
        description: $description:expr,
        check: $check:expr,
        open: $open:expr $(,)?
    ) => {
        const _: () = {
            use $crate::api::abi::{ByteStr, MediumSpecView, Receiver};

            unsafe extern "C" fn vigil_check(
                spec: *const MediumSpecView,
                error: Receiver<ByteStr>,
            ) -> i32 {
                // SAFETY: the host calls this through the ABI, with a valid spec view.
                unsafe { $crate::native::medium_check($check, spec, error) }
            }

            unsafe extern "C" fn vigil_open(
                spec: *const MediumSpecView,
                medium: *mut *mut ::std::ffi::c_void,
                error: Receiver<ByteStr>,
            ) -> i32 {
                // SAFETY: the host calls this through the ABI, with a valid spec view and a
                // writable slot.
                unsafe {
                    $crate::native::medium_open(
                        |spec| {
                            ($open)(spec).map(|m| {
                                ::std::boxed::Box::new(m)
                                    as ::std::boxed::Box<dyn $crate::api::Medium>
                            })
                        },
                        spec,
                        medium,
                        error,
                    )
                }
            }

            static VTABLE: $crate::api::abi::MediumVtable =
                $crate::native::medium_vtable(vigil_check, vigil_open);

            static TABLE: $crate::api::abi::PluginTable = $crate::api::abi::PluginTable::new(
                $crate::api::abi::KIND_MEDIUM,
                $name,
                $version,
                $description,
                None,
                None,
                Some(&VTABLE),
            );

            $crate::__vigil_export_table!(TABLE);
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device and a medium whose every call panics.
    struct Exploding;

    impl StonithDevice for Exploding {
        fn config_names(&self) -> Vec<String> {
            panic!("config_names exploded")
        }
        fn configure(&mut self, _: &[(String, String)]) -> Result<(), StonithError> {
            panic!("configure exploded")
        }
        fn status(&mut self) -> Result<(), StonithError> {
            Err(StonithError::new(StonithCode::Access, "no answer"))
        }
        fn hosts(&mut self) -> Result<Vec<String>, StonithError> {
            Ok(vec!["a".into(), "b".into()])
        }
        fn reset(&mut self, request: ResetRequest, host: &str) -> Result<(), StonithError> {
            panic!("{request} {host} exploded")
        }
        fn info(&mut self, _: DeviceInfo) -> Option<String> {
            panic!("info exploded")
        }
    }

    impl Medium for Exploding {
        fn link_name(&self) -> &str {
            "exploding"
        }
        fn send(&self, _: &[u8]) -> io::Result<()> {
            panic!("send exploded")
        }
        fn recv(&self, _: &mut [u8]) -> io::Result<(usize, crate::api::PeerAddress)> {
            Err(io::Error::from_raw_os_error(104))
        }
        fn shutdown(&self) {
            panic!("shutdown exploded")
        }
    }

    /// Calls `call` with a receiver and returns its status and the texts it was given.
    fn texts(call: impl FnOnce(Receiver<ByteStr>) -> i32) -> (i32, Vec<String>) {
        let mut texts = Vec::new();
        let mut sink = |view: &ByteStr| {
            // SAFETY: the callee gives views valid during this call.
            texts.push(unsafe { view.to_string_lossy() })
        };
        let receiver = Receiver::to(&mut sink);
        let status = call(receiver.raw());
        (status, texts)
    }

    #[test]
    fn a_panicking_stonith_device_reports_s_oops_with_the_panic_message() {
        let mut handle: *mut c_void = std::ptr::null_mut();
        let (status, _) = texts(|error| {
            // SAFETY: a writable slot and a live receiver.
            unsafe {
                stonith_create(
                    || Box::new(Exploding),
                    ByteStr::from_text("x"),
                    &mut handle,
                    error,
                )
            }
        });
        assert_eq!(status, 0);
        // SAFETY: `handle` is live until destroyed at the end; the receivers are live.
        unsafe {
            let reset =
                texts(|e| stonith_reset(handle, abi::RESET_POWER_OFF, ByteStr::from_text("n1"), e));
            assert_eq!(
                reset,
                (
                    StonithCode::Oops.number(),
                    vec!["plugin panicked: off n1 exploded".to_string()]
                )
            );
            let (status, names) = texts(|out| {
                stonith_config_names(handle, out, Receiver::to(&mut |_: &ByteStr| {}).raw())
            });
            assert_eq!((status, names), (StonithCode::Oops.number(), vec![]));
            let status = texts(|e| stonith_device_status(handle, e));
            assert_eq!(
                status,
                (StonithCode::Access.number(), vec!["no answer".to_string()])
            );
            let mut ignore = |_: &ByteStr| {};
            let ignore = Receiver::to(&mut ignore);
            let hosts = texts(|out| stonith_hosts(handle, out, ignore.raw()));
            assert_eq!(hosts, (0, vec!["a".to_string(), "b".to_string()]));
            assert_eq!(
                texts(|out| stonith_info(handle, abi::INFO_URL, out)),
                (0, vec![])
            );
            stonith_destroy(handle);
        }
    }

    #[test]
    fn a_panicking_medium_reports_an_io_error_with_the_panic_message() {
        let spec_args = [ByteStr::from_text("a")];
        let spec = MediumSpecView {
            kind: ByteStr::from_text("exploding"),
            args: spec_args.as_ptr(),
            args_len: 1,
            udp_port: 694,
            origin: ByteStr::from_text("test:1"),
        };
        let mut handle: *mut c_void = std::ptr::null_mut();
        let (status, _) = texts(|error| {
            // SAFETY: a valid spec, a writable slot and a live receiver.
            unsafe {
                medium_open(
                    |spec| {
                        assert_eq!(spec.args, ["a"]);
                        Ok(Box::new(Exploding))
                    },
                    &spec,
                    &mut handle,
                    error,
                )
            }
        });
        assert_eq!(status, 0);
        // SAFETY: `handle` is live until destroyed at the end; buffers and receivers live.
        unsafe {
            assert_eq!(medium_link_name(handle).as_bytes(), b"exploding");
            let sent = texts(|e| medium_send(handle, ByteStr::from_text("frame"), e));
            assert_eq!(
                sent,
                (
                    abi::MEDIUM_IO_ERROR,
                    vec!["plugin panicked: send exploded".to_string()]
                )
            );
            let mut buf = [0u8; 8];
            let (mut len, mut from) = (0, PeerAddressView::of(&crate::api::PeerAddress::Link));
            let (status, _) =
                texts(|e| medium_recv(handle, buf.as_mut_ptr(), buf.len(), &mut len, &mut from, e));
            assert_eq!(status, 104);
            medium_shutdown(handle);
            medium_destroy(handle);
        }
        let (status, reason) = texts(|error| {
            // SAFETY: a valid spec and a live receiver.
            unsafe {
                medium_check(
                    |spec| Err(MediumError::bad_arguments(spec, "needs two")),
                    &spec,
                    error,
                )
            }
        });
        assert_eq!(
            (status, reason),
            (abi::MEDIUM_BAD_ARGUMENTS, vec!["needs two".to_string()])
        );
    }
}
