//! Native dynamic plugins: loads a `cdylib` through vigil's C ABI
//! ([`vigil_plugin_api::abi`]) and registers what it exports.
//!
//! Owns the daemon side of the boundary: opening the library, reading its ABI version before
//! anything in it runs, checking its table, and the adapters that make a loaded agent, STONITH
//! device or medium look like any other implementation of its contract. It also builds the
//! C vtable through which a native agent reaches the daemon's [`Host`]. It must not decide
//! which plugin directories are searched (the registry does) nor run plugin calls on threads
//! of its own (the agent runner, fencing runner and media threads already call off the core).
//!
//! Libraries are never unloaded: `dlclose` would unmap code that a medium's reader thread
//! may still be blocked in, and a Rust `cdylib` registers thread-local destructors that
//! would jump into unmapped memory. Every opened library is leaked on purpose, including a
//! refused one (it costs a mapping; unloading it would run its destructors for nothing).

use std::collections::BTreeMap;
use std::ffi::{OsStr, c_void};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use thiserror::Error;
use vigil_plugin_api::abi::{
    self, ABI_VERSION, ABI_VERSION_SYMBOL, AddressView, AgentVtable, ByteStr, CommandOutputView,
    ENTRY_SYMBOL, EntryFn, HostErrorView, HostVtable, IpAddressView, IpPrefixView, KeyValue,
    MediumSpecView, MediumVtable, PeerAddressView, PluginTable, Receiver, ResourceInstanceView,
    StonithVtable,
};
use vigil_plugin_api::{
    AgentAction, Capability, DeviceInfo, Host, HostError, LogLevel, Medium, MediumError,
    MediumFactory, MediumSpec, OcfStatus, OperationOutcome, PeerAddress, PluginInfo, PluginKind,
    PluginOrigin, Registry, RegistryError, ResetRequest, ResourceAgent, ResourceInstance,
    StonithCode, StonithDevice, StonithError, StonithFactory,
};

/// The SDK release that speaks this daemon's ABI, for the message that asks for a rebuild.
const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A native plugin could not be loaded. Every message names the library's path and what the
/// operator can do about it.
#[derive(Debug, Error)]
pub enum NativeLoadError {
    /// The dynamic loader refused the file (not an ELF object, wrong architecture, missing
    /// dependencies).
    #[error("{} cannot be loaded as a native plugin: {reason}", .path.display())]
    Open { path: PathBuf, reason: String },
    /// The library lacks one of the two symbols every vigil plugin exports.
    #[error(
        "{} is not a vigil plugin: it has no `{symbol}` symbol (build it with vigil-sdk's \
         export macros)",
        .path.display()
    )]
    NotAPlugin { path: PathBuf, symbol: &'static str },
    /// The library was built for another plugin ABI; nothing in it was called.
    #[error(
        "{} was built for plugin ABI {found}, this vigil speaks ABI {expected}; rebuild it \
         against vigil-sdk {sdk}",
        .path.display()
    )]
    AbiMismatch {
        path: PathBuf,
        found: u32,
        expected: u32,
        sdk: &'static str,
    },
    /// The library's table is inconsistent (a hand-written or corrupted plugin).
    #[error("{} is a broken vigil plugin: {reason}", .path.display())]
    BadTable { path: PathBuf, reason: String },
    /// The registry refused the plugin (another plugin of its kind has its name).
    #[error("{}: {error}", .path.display())]
    Register { path: PathBuf, error: RegistryError },
}

/// Loads the native plugin at `path` and registers it; returns what was registered.
///
/// The ABI version symbol is read before any function of the library is called; a
/// mismatch is refused naming both versions. The library stays loaded for the life of the
/// process, whatever the outcome.
pub fn load(path: &Path, registry: &mut Registry) -> Result<PluginInfo, NativeLoadError> {
    let library = open(path)?;
    let table = plugin_table(path, library)?;
    let bad = |reason: String| NativeLoadError::BadTable {
        path: path.to_path_buf(),
        reason,
    };
    let text = |what: &str, view: ByteStr| {
        // SAFETY: the table's strings are static data of the library, which is never unloaded.
        let bytes = unsafe { view.as_bytes() };
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| bad(format!("its {what} is not UTF-8")))
    };
    let name = text("name", table.name)?;
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(bad(format!(
            "its name {name:?} is empty or has white space or a `/`"
        )));
    }
    let kind = match table.kind {
        abi::KIND_AGENT => PluginKind::ResourceAgent,
        abi::KIND_STONITH => PluginKind::StonithDevice,
        abi::KIND_MEDIUM => PluginKind::Medium,
        other => return Err(bad(format!("unknown plugin kind {other}"))),
    };
    let info = PluginInfo {
        kind,
        name,
        origin: PluginOrigin::NativeDynamic {
            path: path.to_path_buf(),
        },
        version: text("version", table.version)?,
        description: text("description", table.description)?,
    };
    let missing = || {
        bad(format!(
            "it says it is a {kind} plugin but has no {kind} functions"
        ))
    };
    let registered = match kind {
        PluginKind::ResourceAgent => {
            // SAFETY: a non-null vtable pointer of a checked table points to the library's
            // static, which lives as long as the (never unloaded) library.
            let vtable = unsafe { table.agent.as_ref() }.ok_or_else(missing)?;
            registry.add_agent(info.clone(), Arc::new(NativeAgent { vtable }))
        }
        PluginKind::StonithDevice => {
            // SAFETY: as above.
            let vtable = unsafe { table.stonith.as_ref() }.ok_or_else(missing)?;
            registry.add_stonith(Arc::new(NativeStonithFactory {
                info: info.clone(),
                vtable,
            }))
        }
        PluginKind::Medium => {
            // SAFETY: as above.
            let vtable = unsafe { table.medium.as_ref() }.ok_or_else(missing)?;
            registry.add_medium(Arc::new(NativeMediumFactory {
                info: info.clone(),
                vtable,
            }))
        }
    };
    registered.map_err(|error| NativeLoadError::Register {
        path: path.to_path_buf(),
        error,
    })?;
    tracing::info!(path = %path.display(), kind = %info.kind, name = %info.name,
        version = %info.version, "loaded native plugin");
    Ok(info)
}

/// Opens the library for good (see the module's note on unloading).
fn open(path: &Path) -> Result<&'static Library, NativeLoadError> {
    // SAFETY: loading runs the library's initialisers; that is what loading a plugin the
    // operator put in a plugin directory means. RTLD_NOW makes a library with unresolved
    // symbols fail here rather than at its first call.
    let library = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map_err(|e| {
        NativeLoadError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    })?;
    Ok(Box::leak(Box::new(library)))
}

/// Reads the version symbol, then (only if it matches) calls the entry point and checks the
/// table it returns.
fn plugin_table(
    path: &Path,
    library: &'static Library,
) -> Result<&'static PluginTable, NativeLoadError> {
    let not_a_plugin = |symbol| NativeLoadError::NotAPlugin {
        path: path.to_path_buf(),
        symbol,
    };
    // SAFETY: the symbol is looked up, not called; its address is what we ask for.
    let version = unsafe { library.get::<*const u32>(ABI_VERSION_SYMBOL.as_bytes()) }
        .map_err(|_| not_a_plugin(ABI_VERSION_SYMBOL))?;
    // SAFETY: a vigil plugin exports this symbol as a `u32` static (the SDK's macros emit
    // it so); reading it runs none of the library's code.
    let found = unsafe { (*version).read() };
    if found != ABI_VERSION {
        return Err(NativeLoadError::AbiMismatch {
            path: path.to_path_buf(),
            found,
            expected: ABI_VERSION,
            sdk: SDK_VERSION,
        });
    }
    // SAFETY: the symbol is looked up, not called.
    let entry = unsafe { library.get::<EntryFn>(ENTRY_SYMBOL.as_bytes()) }
        .map_err(|_| not_a_plugin(ENTRY_SYMBOL))?;
    let bad = |reason: String| NativeLoadError::BadTable {
        path: path.to_path_buf(),
        reason,
    };
    // SAFETY: the library declared our ABI version, under which this symbol is an `EntryFn`
    // that only returns the address of its static table.
    let table = unsafe { entry() };
    if table.is_null() {
        return Err(bad(format!("`{ENTRY_SYMBOL}` returned no table")));
    }
    // SAFETY: non-null; every table of every ABI starts with its size, so the first word may
    // be read before we know how large the rest is.
    let size = unsafe { table.cast::<usize>().read() };
    if size < size_of::<PluginTable>() {
        return Err(bad(format!(
            "its table is {size} bytes, ABI {ABI_VERSION} needs at least {}",
            size_of::<PluginTable>()
        )));
    }
    // SAFETY: the table is at least as large as ours and is static data of a library that
    // is never unloaded.
    let table = unsafe { &*table };
    if table.abi_version != ABI_VERSION {
        return Err(bad(format!(
            "its table says ABI {} but its `{ABI_VERSION_SYMBOL}` says {ABI_VERSION}",
            table.abi_version
        )));
    }
    Ok(table)
}

/// Collects the one text a call gives to a receiver, or several as a list.
fn text_receiver(texts: &mut Vec<String>) -> impl FnMut(&ByteStr) + '_ {
    // SAFETY: the plugin gives views valid during the receive call, as the ABI requires.
    |view: &ByteStr| texts.push(unsafe { view.to_string_lossy() })
}

/// Calls `call` with a receiver for texts and returns its status and the texts given.
fn with_texts(call: impl FnOnce(Receiver<ByteStr>) -> i32) -> (i32, Vec<String>) {
    let mut texts = Vec::new();
    let mut sink = text_receiver(&mut texts);
    let receiver = Receiver::to(&mut sink);
    let status = call(receiver.raw());
    drop(sink);
    (status, texts)
}

/// Calls `call` with a receiver for an error message and returns its status and the message.
fn with_message(call: impl FnOnce(Receiver<ByteStr>) -> i32) -> (i32, String) {
    let (status, texts) = with_texts(call);
    (status, texts.concat())
}

// ---------------------------------------------------------------------------------------
// Resource agents
// ---------------------------------------------------------------------------------------

/// A resource agent in a native library. Stateless: the library's agent is one shared
/// object, and the daemon's worker threads call it concurrently.
struct NativeAgent {
    /// The library's functions.
    vtable: &'static AgentVtable,
}

impl ResourceAgent for NativeAgent {
    fn metadata(&self) -> String {
        // SAFETY: the receiver is alive for the call.
        let (status, texts) = with_texts(|out| unsafe { (self.vtable.metadata)(out) });
        if status != 0 {
            tracing::warn!("native agent failed to give its meta-data");
        }
        texts.concat()
    }

    fn capabilities(&self) -> Vec<Capability> {
        // SAFETY: a plain call without arguments.
        let bits = unsafe { (self.vtable.capabilities)() };
        Capability::ALL
            .iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(_, c)| *c)
            .collect()
    }

    fn positional_params(&self, args: &[String]) -> Result<BTreeMap<String, String>, String> {
        let views: Vec<ByteStr> = args.iter().map(|a| ByteStr::from_text(a)).collect();
        let mut params = BTreeMap::new();
        let mut sink = |pair: &KeyValue| {
            // SAFETY: the plugin gives views valid during the receive call.
            let (key, value) =
                unsafe { (pair.key.to_string_lossy(), pair.value.to_string_lossy()) };
            params.insert(key, value);
        };
        let out = Receiver::to(&mut sink);
        let (status, reason) = with_message(|error| {
            // SAFETY: the views and receivers are alive for the call.
            unsafe {
                (self.vtable.positional_params)(views.as_ptr(), views.len(), out.raw(), error)
            }
        });
        if status == 0 { Ok(params) } else { Err(reason) }
    }

    fn validate(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        self.run(AgentAction::Validate, instance, host)
    }

    fn start(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        self.run(AgentAction::Start, instance, host)
    }

    fn stop(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        self.run(AgentAction::Stop, instance, host)
    }

    fn monitor(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        self.run(AgentAction::Monitor, instance, host)
    }

    fn run(
        &self,
        action: AgentAction,
        instance: &ResourceInstance,
        host: &dyn Host,
    ) -> OperationOutcome {
        let action = match action {
            AgentAction::Start => abi::ACTION_START,
            AgentAction::Stop => abi::ACTION_STOP,
            AgentAction::Monitor => abi::ACTION_MONITOR,
            AgentAction::Validate => abi::ACTION_VALIDATE,
        };
        let params: Vec<KeyValue> = instance
            .params
            .iter()
            .map(|(key, value)| KeyValue {
                key: ByteStr::from_text(key),
                value: ByteStr::from_text(value),
            })
            .collect();
        let view = ResourceInstanceView {
            name: ByteStr::from_text(&instance.name),
            params: params.as_ptr(),
            params_len: params.len(),
            timeout_ms: u64::try_from(instance.timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let host_vtable = host_vtable(&host);
        let mut code = 0;
        let (_, message) = with_message(|message| {
            // SAFETY: the instance view, the host vtable (and the `&dyn Host` it points to)
            // and the receiver all outlive the call.
            code = unsafe { (self.vtable.run)(action, &view, &host_vtable, message) };
            0
        });
        let status = u8::try_from(code).map_or(OcfStatus::ErrGeneric, OcfStatus::from_code);
        OperationOutcome::new(status, message)
    }
}

// ---------------------------------------------------------------------------------------
// The Host vtable
// ---------------------------------------------------------------------------------------

/// The C vtable through which a native agent reaches `host` during one operation. `ctx`
/// points at the `&dyn Host` the caller holds, so the vtable must not outlive that borrow.
pub fn host_vtable(host: &&dyn Host) -> HostVtable {
    HostVtable {
        ctx: std::ptr::from_ref(host).cast(),
        log: host_log,
        addresses: host_addresses,
        add_address: host_add_address,
        remove_address: host_remove_address,
        send_gratuitous_arp: host_send_gratuitous_arp,
        run_command: host_run_command,
        read_file: host_read_file,
    }
}

/// The host behind a vtable's `ctx`.
///
/// # Safety
/// `ctx` must come from [`host_vtable`] and its borrow still be alive.
unsafe fn host_of<'a>(ctx: *const c_void) -> &'a dyn Host {
    // SAFETY: as the caller promises, ctx points at a live `&dyn Host`.
    unsafe { *ctx.cast::<&dyn Host>() }
}

/// Runs one host capability for a plugin: a result becomes a status, an error goes to the
/// plugin's error receiver, and a panic in the daemon's own code never unwinds into the
/// plugin.
///
/// # Safety
/// `error` must be the plugin's receiver for this call.
unsafe fn host_call(
    capability: &str,
    error: Receiver<HostErrorView>,
    body: impl FnOnce() -> Result<i32, HostError>,
) -> i32 {
    let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| {
        Err(HostError::Failed {
            capability: capability.to_string(),
            reason: "the daemon failed internally (see its log)".to_string(),
        })
    });
    match result {
        Ok(status) => status,
        Err(e) => {
            // SAFETY: the receiver is the plugin's, the view alive for the call.
            unsafe { error.give(&HostErrorView::of(&e)) };
            abi::HOST_ERR
        }
    }
}

/// The status of an address change.
fn change_status(change: vigil_plugin_api::AddressChange) -> i32 {
    match change {
        vigil_plugin_api::AddressChange::Changed => abi::HOST_OK,
        vigil_plugin_api::AddressChange::Unchanged => abi::HOST_UNCHANGED,
    }
}

/// An `Invalid` error for a capability.
fn invalid(capability: &str, reason: &str) -> HostError {
    HostError::Invalid {
        capability: capability.to_string(),
        reason: reason.to_string(),
    }
}

unsafe extern "C" fn host_log(ctx: *const c_void, level: u32, message: ByteStr) {
    // SAFETY: called by the plugin during the operation that built the vtable.
    let (host, message) = unsafe { (host_of(ctx), message.to_string_lossy()) };
    let level = match level {
        abi::LOG_DEBUG => LogLevel::Debug,
        abi::LOG_INFO => LogLevel::Info,
        abi::LOG_WARNING => LogLevel::Warning,
        _ => LogLevel::Error,
    };
    let _ = catch_unwind(AssertUnwindSafe(|| host.log(level, &message)));
}

unsafe extern "C" fn host_addresses(
    ctx: *const c_void,
    out: Receiver<AddressView>,
    error: Receiver<HostErrorView>,
) -> i32 {
    // SAFETY: called by the plugin during the operation that built the vtable.
    let host = unsafe { host_of(ctx) };
    // SAFETY: the receivers are the plugin's for this call.
    unsafe {
        host_call("addresses", error, || {
            for address in host.addresses()? {
                out.give(&AddressView::of_interface_address(&address));
            }
            Ok(abi::HOST_OK)
        })
    }
}

unsafe extern "C" fn host_add_address(
    ctx: *const c_void,
    request: *const AddressView,
    error: Receiver<HostErrorView>,
) -> i32 {
    // SAFETY: called by the plugin during the operation that built the vtable; the request
    // is null or valid for the call.
    let (host, request) = unsafe { (host_of(ctx), request.as_ref().and_then(|r| r.to_request())) };
    // SAFETY: the receiver is the plugin's for this call.
    unsafe {
        host_call("addresses", error, || {
            let request =
                request.ok_or_else(|| invalid("addresses", "no address, or an unknown family"))?;
            host.add_address(&request).map(change_status)
        })
    }
}

unsafe extern "C" fn host_remove_address(
    ctx: *const c_void,
    interface: ByteStr,
    address: IpPrefixView,
    error: Receiver<HostErrorView>,
) -> i32 {
    // SAFETY: called by the plugin during the operation that built the vtable.
    let (host, interface) = unsafe { (host_of(ctx), interface.to_string_lossy()) };
    // SAFETY: the receiver is the plugin's for this call.
    unsafe {
        host_call("addresses", error, || {
            let address = address
                .to_prefix()
                .ok_or_else(|| invalid("addresses", "an address of unknown family"))?;
            host.remove_address(&interface, address).map(change_status)
        })
    }
}

unsafe extern "C" fn host_send_gratuitous_arp(
    ctx: *const c_void,
    interface: ByteStr,
    address: IpAddressView,
    count: u32,
    interval_ms: u64,
    error: Receiver<HostErrorView>,
) -> i32 {
    // SAFETY: called by the plugin during the operation that built the vtable.
    let (host, interface) = unsafe { (host_of(ctx), interface.to_string_lossy()) };
    // SAFETY: the receiver is the plugin's for this call.
    unsafe {
        host_call("arp", error, || {
            let address = address
                .to_ip()
                .ok_or_else(|| invalid("arp", "an address of unknown family"))?;
            host.send_gratuitous_arp(
                &interface,
                address,
                count,
                Duration::from_millis(interval_ms),
            )?;
            Ok(abi::HOST_OK)
        })
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn host_run_command(
    ctx: *const c_void,
    argv: *const ByteStr,
    argc: usize,
    env: *const KeyValue,
    env_len: usize,
    timeout_ms: u64,
    out: Receiver<CommandOutputView>,
    error: Receiver<HostErrorView>,
) -> i32 {
    // SAFETY: called by the plugin during the operation that built the vtable, with arrays
    // of the given lengths (or null) valid for the call.
    let (host, argv, env) = unsafe {
        let argv: Vec<String> = slice(argv, argc)
            .iter()
            .map(|a| a.to_string_lossy())
            .collect();
        let env: Vec<(String, String)> = slice(env, env_len)
            .iter()
            .map(|kv| (kv.key.to_string_lossy(), kv.value.to_string_lossy()))
            .collect();
        (host_of(ctx), argv, env)
    };
    // SAFETY: the receivers are the plugin's for this call.
    unsafe {
        host_call("commands", error, || {
            let output = host.run_command(&argv, &env, Duration::from_millis(timeout_ms))?;
            out.give(&CommandOutputView::of(&output));
            Ok(abi::HOST_OK)
        })
    }
}

unsafe extern "C" fn host_read_file(
    ctx: *const c_void,
    path: ByteStr,
    out: Receiver<ByteStr>,
    error: Receiver<HostErrorView>,
) -> i32 {
    // SAFETY: called by the plugin during the operation that built the vtable.
    let (host, path) = unsafe { (host_of(ctx), path.as_bytes().to_vec()) };
    // SAFETY: the receivers are the plugin's for this call.
    unsafe {
        host_call("read", error, || {
            let contents = host.read_file(Path::new(OsStr::from_bytes(&path)))?;
            out.give(&ByteStr::new(&contents));
            Ok(abi::HOST_OK)
        })
    }
}

/// The slice behind a pointer and length from a plugin; empty for a null pointer.
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

// ---------------------------------------------------------------------------------------
// STONITH devices
// ---------------------------------------------------------------------------------------

/// A STONITH plugin in a native library; it provides one device type, its name.
struct NativeStonithFactory {
    /// Kind, name, origin (the library), version, description.
    info: PluginInfo,
    /// The library's functions.
    vtable: &'static StonithVtable,
}

/// The result of a device call: `S_OK`, or the code and message the device gave.
fn stonith_result(status: i32, message: String) -> Result<(), StonithError> {
    match StonithCode::from_number(status) {
        None => Ok(()),
        Some(code) => Err(StonithError::new(
            code,
            if message.is_empty() {
                format!("the device failed with {code} without saying why")
            } else {
                message
            },
        )),
    }
}

impl StonithFactory for NativeStonithFactory {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn types(&self) -> Vec<String> {
        vec![self.info.name.clone()]
    }

    fn create(&self, device_type: &str) -> Result<Box<dyn StonithDevice>, StonithError> {
        let mut handle: *mut c_void = std::ptr::null_mut();
        let (status, message) = with_message(|error| {
            // SAFETY: the type view, the slot and the receiver outlive the call.
            unsafe { (self.vtable.create)(ByteStr::from_text(device_type), &mut handle, error) }
        });
        stonith_result(status, message)?;
        if handle.is_null() {
            return Err(StonithError::new(
                StonithCode::Oops,
                format!("native plugin {} created no device", self.info.name),
            ));
        }
        Ok(Box::new(NativeStonithDevice {
            handle,
            vtable: self.vtable,
        }))
    }
}

/// One device of a native STONITH plugin, destroyed (by the plugin) when dropped.
struct NativeStonithDevice {
    /// The plugin's device; used by one thread at a time (this type is not `Sync`).
    handle: *mut c_void,
    /// The library's functions.
    vtable: &'static StonithVtable,
}

// SAFETY: the ABI lets a device handle move between threads (devices are `Send`, as the
// contract requires); it is never shared, since this type is not `Sync`.
unsafe impl Send for NativeStonithDevice {}

impl NativeStonithDevice {
    /// A device call that reports only success or failure.
    fn call(
        &self,
        call: impl FnOnce(*mut c_void, Receiver<ByteStr>) -> i32,
    ) -> Result<(), StonithError> {
        let (status, message) = with_message(|error| call(self.handle, error));
        stonith_result(status, message)
    }

    /// A device call that gives a list.
    fn list(
        &self,
        call: unsafe extern "C" fn(*mut c_void, Receiver<ByteStr>, Receiver<ByteStr>) -> i32,
    ) -> Result<Vec<String>, StonithError> {
        let mut items = Vec::new();
        let mut sink = text_receiver(&mut items);
        let out = Receiver::to(&mut sink);
        // SAFETY: the handle is live; the receivers outlive the call.
        let result = self.call(|handle, error| unsafe { call(handle, out.raw(), error) });
        drop(sink);
        result.map(|()| items)
    }
}

impl StonithDevice for NativeStonithDevice {
    fn config_names(&self) -> Vec<String> {
        self.list(self.vtable.config_names).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "native STONITH device gave no parameter names");
            Vec::new()
        })
    }

    fn configure(&mut self, params: &[(String, String)]) -> Result<(), StonithError> {
        let pairs: Vec<KeyValue> = params
            .iter()
            .map(|(key, value)| KeyValue {
                key: ByteStr::from_text(key),
                value: ByteStr::from_text(value),
            })
            .collect();
        self.call(|handle, error| {
            // SAFETY: the handle is live; the pairs and receiver outlive the call.
            unsafe { (self.vtable.configure)(handle, pairs.as_ptr(), pairs.len(), error) }
        })
    }

    fn status(&mut self) -> Result<(), StonithError> {
        // SAFETY: the handle is live; the receiver outlives the call.
        self.call(|handle, error| unsafe { (self.vtable.status)(handle, error) })
    }

    fn hosts(&mut self) -> Result<Vec<String>, StonithError> {
        self.list(self.vtable.hosts)
    }

    fn reset(&mut self, request: ResetRequest, host: &str) -> Result<(), StonithError> {
        let request = match request {
            ResetRequest::Reset => abi::RESET_REBOOT,
            ResetRequest::PowerOn => abi::RESET_POWER_ON,
            ResetRequest::PowerOff => abi::RESET_POWER_OFF,
        };
        self.call(|handle, error| {
            // SAFETY: the handle is live; the host view and receiver outlive the call.
            unsafe { (self.vtable.reset)(handle, request, ByteStr::from_text(host), error) }
        })
    }

    fn info(&mut self, what: DeviceInfo) -> Option<String> {
        let what = match what {
            DeviceInfo::ConfigXml => abi::INFO_CONFIG_XML,
            DeviceInfo::DeviceId => abi::INFO_DEVICE_ID,
            DeviceInfo::DeviceName => abi::INFO_DEVICE_NAME,
            DeviceInfo::Description => abi::INFO_DESCRIPTION,
            DeviceInfo::Url => abi::INFO_URL,
        };
        // SAFETY: the handle is live; the receiver outlives the call.
        let (given, texts) =
            with_texts(|out| unsafe { (self.vtable.info)(self.handle, what, out) });
        (given == 1).then(|| texts.concat())
    }
}

impl Drop for NativeStonithDevice {
    fn drop(&mut self) {
        // SAFETY: the handle came from `create` and is not used after this.
        unsafe { (self.vtable.destroy)(self.handle) }
    }
}

// ---------------------------------------------------------------------------------------
// Media
// ---------------------------------------------------------------------------------------

/// A medium plugin in a native library.
struct NativeMediumFactory {
    /// Kind, name, origin (the library), version, description.
    info: PluginInfo,
    /// The library's functions.
    vtable: &'static MediumVtable,
}

/// The I/O error a medium call reported: its errno (keeping the plugin's message when it
/// says more), or an error of kind `Other`.
fn medium_io_error(status: i32, message: String) -> io::Error {
    if status > 0 {
        let os = io::Error::from_raw_os_error(status);
        if message.is_empty() || message == os.to_string() {
            os
        } else {
            io::Error::new(os.kind(), message)
        }
    } else if message.is_empty() {
        io::Error::other(format!(
            "the medium failed with status {status} without saying why"
        ))
    } else {
        io::Error::other(message)
    }
}

/// Calls a factory function with a C view of `spec`; a failure becomes the `MediumError`
/// of the same kind.
fn with_spec(
    spec: &MediumSpec,
    call: impl FnOnce(&MediumSpecView, Receiver<ByteStr>) -> i32,
) -> Result<(), MediumError> {
    let args: Vec<ByteStr> = spec.args.iter().map(|a| ByteStr::from_text(a)).collect();
    let view = MediumSpecView {
        kind: ByteStr::from_text(&spec.kind),
        args: args.as_ptr(),
        args_len: args.len(),
        udp_port: spec.udp_port,
        origin: ByteStr::from_text(&spec.origin),
    };
    match with_message(|error| call(&view, error)) {
        (0, _) => Ok(()),
        (abi::MEDIUM_BAD_ARGUMENTS, reason) => Err(MediumError::bad_arguments(spec, reason)),
        (status, message) => Err(MediumError::open(spec, medium_io_error(status, message))),
    }
}

impl MediumFactory for NativeMediumFactory {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn check(&self, spec: &MediumSpec) -> Result<(), MediumError> {
        // SAFETY: the spec view and receiver outlive the call.
        with_spec(spec, |view, error| unsafe {
            (self.vtable.check)(view, error)
        })
    }

    fn open(&self, spec: &MediumSpec) -> Result<Box<dyn Medium>, MediumError> {
        let mut handle: *mut c_void = std::ptr::null_mut();
        // SAFETY: the spec view, slot and receiver outlive the call.
        with_spec(spec, |view, error| unsafe {
            (self.vtable.open)(view, &mut handle, error)
        })?;
        if handle.is_null() {
            return Err(MediumError::open(
                spec,
                io::Error::other("the plugin reported success but opened nothing"),
            ));
        }
        // SAFETY: the handle is live; the name view is valid while it is, and copied now.
        let link_name = unsafe { (self.vtable.link_name)(handle).to_string_lossy() };
        Ok(Box::new(NativeMedium {
            handle,
            vtable: self.vtable,
            link_name,
        }))
    }
}

/// An open medium of a native plugin, destroyed (by the plugin) when dropped.
struct NativeMedium {
    /// The plugin's medium; the ABI requires it to allow `send` and `recv` concurrently.
    handle: *mut c_void,
    /// The library's functions.
    vtable: &'static MediumVtable,
    /// The link name, copied at open so `link_name` can lend it.
    link_name: String,
}

// SAFETY: the ABI requires an open medium to be usable from a reader and a writer thread at
// once (as the `Medium` contract's `Send + Sync` does); the SDK only exports `Medium`s.
unsafe impl Send for NativeMedium {}
// SAFETY: as for `Send`.
unsafe impl Sync for NativeMedium {}

impl Medium for NativeMedium {
    fn link_name(&self) -> &str {
        &self.link_name
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        let (status, message) = with_message(|error| {
            // SAFETY: the handle is live; the frame view and receiver outlive the call.
            unsafe { (self.vtable.send)(self.handle, ByteStr::new(frame), error) }
        });
        if status == 0 {
            Ok(())
        } else {
            Err(medium_io_error(status, message))
        }
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, PeerAddress)> {
        let mut received = 0;
        let mut from = PeerAddressView::of(&PeerAddress::Link);
        let (status, message) = with_message(|error| {
            // SAFETY: the handle is live; the buffer, out slots and receiver outlive the call.
            unsafe {
                (self.vtable.recv)(
                    self.handle,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut received,
                    &mut from,
                    error,
                )
            }
        });
        if status == 0 {
            Ok((received.min(buf.len()), from.to_peer()))
        } else {
            Err(medium_io_error(status, message))
        }
    }

    fn shutdown(&self) {
        // SAFETY: the handle is live.
        unsafe { (self.vtable.shutdown)(self.handle) }
    }
}

impl Drop for NativeMedium {
    fn drop(&mut self) {
        // SAFETY: the handle came from `open` and is not used after this.
        unsafe { (self.vtable.destroy)(self.handle) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use vigil_agents::mock_host::{MockCapability, MockHost};
    use vigil_plugin_api::{AddressChange, AddressRequest, CommandOutput, IpPrefix};
    use vigil_sdk::native::ForeignHost;

    fn prefix(cidr: &str) -> IpPrefix {
        let (ip, len) = cidr.split_once('/').unwrap();
        IpPrefix {
            address: ip.parse().unwrap(),
            prefix_len: len.parse().unwrap(),
        }
    }

    #[test]
    fn every_host_capability_round_trips_through_the_c_vtable() {
        let mock = MockHost::new()
            .with_interface("eth0")
            .with_file("/etc/vigil/x", b"contents\0bytes".to_vec());
        let host: &dyn Host = &mock;
        let vtable = host_vtable(&host);
        // SAFETY: the vtable and the host it points to outlive `foreign`.
        let foreign = unsafe { ForeignHost::new(&vtable) };

        foreign.log(LogLevel::Warning, "through the boundary");
        assert!(
            mock.logs()
                .contains(&(LogLevel::Warning, "through the boundary".to_string()))
        );

        let request = AddressRequest {
            interface: "eth0".into(),
            address: prefix("198.18.0.100/24"),
            broadcast: None,
            label: Some("eth0:vip".into()),
        };
        assert_eq!(foreign.add_address(&request), Ok(AddressChange::Changed));
        assert_eq!(foreign.add_address(&request), Ok(AddressChange::Unchanged));
        let listed = foreign.addresses().unwrap();
        assert_eq!(listed, mock.configured());
        assert_eq!(listed[0].label.as_deref(), Some("eth0:vip"));
        assert_eq!(
            listed[0].broadcast,
            Some("198.18.0.255".parse::<IpAddr>().unwrap())
        );
        assert_eq!(
            foreign.remove_address("eth0", prefix("198.18.0.100/24")),
            Ok(AddressChange::Changed)
        );
        assert_eq!(
            foreign.remove_address("eth0", prefix("198.18.0.100/24")),
            Ok(AddressChange::Unchanged)
        );

        foreign
            .send_gratuitous_arp(
                "eth0",
                "2001:db8::1".parse().unwrap(),
                3,
                Duration::from_millis(250),
            )
            .unwrap();
        let arp = &mock.arps()[0];
        assert_eq!(arp.address, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!((arp.count, arp.interval), (3, Duration::from_millis(250)));

        let reply = CommandOutput {
            exit_code: None,
            stdout: b"out".to_vec(),
            stderr: b"err".to_vec(),
        };
        mock.push_command_reply(Ok(reply.clone()));
        let argv = ["/bin/echo".to_string(), "hi".to_string()];
        let env = [("K".to_string(), "V".to_string())];
        assert_eq!(
            foreign.run_command(&argv, &env, Duration::from_secs(2)),
            Ok(reply)
        );
        let command = &mock.commands()[0];
        assert_eq!(command.argv, argv);
        assert_eq!(command.env, env);

        assert_eq!(
            foreign.read_file(Path::new("/etc/vigil/x")).unwrap(),
            b"contents\0bytes"
        );
    }

    #[test]
    fn host_errors_cross_with_their_kind_and_words() {
        let mock = MockHost::new();
        let refusal = HostError::NotGranted {
            capability: "read".into(),
        };
        mock.refuse(MockCapability::ReadFile, refusal.clone());
        let timeout = HostError::TimedOut {
            capability: "commands".into(),
            after: Duration::from_millis(1500),
        };
        mock.push_command_reply(Err(timeout.clone()));
        let host: &dyn Host = &mock;
        let vtable = host_vtable(&host);
        // SAFETY: the vtable and the host it points to outlive `foreign`.
        let foreign = unsafe { ForeignHost::new(&vtable) };
        assert_eq!(foreign.read_file(Path::new("/etc/shadow")), Err(refusal));
        assert_eq!(
            foreign.run_command(&["/bin/true".into()], &[], Duration::from_secs(1)),
            Err(timeout)
        );
        let bad_interface = HostError::Invalid {
            capability: "addresses".into(),
            reason: "no interface nosuch0".into(),
        };
        mock.refuse(MockCapability::RemoveAddress, bad_interface.clone());
        assert_eq!(
            foreign.remove_address("nosuch0", prefix("198.18.0.1/24")),
            Err(bad_interface)
        );
    }

    #[test]
    fn medium_errors_keep_the_errno_and_the_plugins_words() {
        let plain = medium_io_error(libc::ECONNREFUSED, String::new());
        assert_eq!(plain.raw_os_error(), Some(libc::ECONNREFUSED));
        let worded = medium_io_error(libc::ENOENT, "no socket at /x".into());
        assert_eq!(worded.kind(), io::ErrorKind::NotFound);
        assert_eq!(worded.to_string(), "no socket at /x");
        assert_eq!(
            medium_io_error(abi::MEDIUM_IO_ERROR, "plugin panicked: boom".into()).to_string(),
            "plugin panicked: boom"
        );
    }
}
