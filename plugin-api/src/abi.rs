//! The C ABI of native dynamic plugins: what a `cdylib` exports and the `#[repr(C)]` types
//! that cross the boundary.
//!
//! Owns the layout of the boundary and nothing else: the SDK's export macros (`vigil-sdk`,
//! module `native`) build the plugin side, the host's native loader builds the daemon side.
//! This module must stay plain data: no I/O, no allocation handed across, no Rust-only types
//! in a `#[repr(C)]` struct. A change to any type or function signature here is a new
//! [`ABI_VERSION`].
//!
//! # What a plugin exports
//!
//! Two unmangled symbols:
//! - [`ABI_VERSION_SYMBOL`] (`vigil_plugin_abi_version`), a `u32` *data* symbol holding the
//!   ABI the library was built for. The loader reads it before it calls anything, so a
//!   library built for another ABI is refused without running a line of its code.
//! - [`ENTRY_SYMBOL`] (`vigil_plugin_entry`), an [`EntryFn`] returning a pointer to one
//!   static [`PluginTable`]: its own size, the ABI version again, the kind, name, version,
//!   description, and a pointer to the function table of its kind ([`AgentVtable`],
//!   [`StonithVtable`] or [`MediumVtable`]).
//!
//! # How values cross
//!
//! One scheme throughout, so that nothing one side allocates is ever freed by the other:
//! - **Into a call**, values are borrowed views: [`ByteStr`] (pointer and length; UTF-8 for
//!   text, raw bytes for file contents and frames), arrays as pointer and length, and small
//!   `#[repr(C)]` structs ([`ResourceInstanceView`], [`AddressView`], [`MediumSpecView`]). They
//!   are valid only until the call returns; the callee copies what it keeps.
//! - **Out of a call**, every variable-sized result (a string, a list, an error message) is
//!   handed to a [`Receiver`] the caller passes in: the callee calls `receive` once per item
//!   with a view that is valid only during that call, and the caller copies it. A list is
//!   several `receive` calls, in order.
//! - **Status** is the function's `i32` (or `u32`) return: 0 is success; the meaning of any
//!   other value is documented per table (an `S_*` code for STONITH, an errno or one of the
//!   `MEDIUM_*` codes for media, an OCF exit code for agent operations).
//! - **Optional** strings are a [`ByteStr`] with a null pointer for "none"
//!   ([`ByteStr::NONE`]); optional addresses have family 0 ([`IpAddressView::NONE`]).
//! - **Handles** (a STONITH device, an open medium) are opaque `*mut c_void` the plugin
//!   creates and destroys; the host only passes them back.
//!
//! Every function a plugin exports must catch panics (a panic unwinding across `extern "C"`
//! aborts the process): a panic becomes the kind's error status and message. The host's
//! callbacks ([`HostVtable`], [`Receiver`]) never unwind either.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::medium::PeerAddress;
use crate::resource::{AddressRequest, CommandOutput, HostError, InterfaceAddress, IpPrefix};

/// The ABI this crate describes. The loader refuses a library that exports another one,
/// naming both.
pub const ABI_VERSION: u32 = 1;

/// The name of the `u32` data symbol holding a library's ABI version; read before anything
/// is called.
pub const ABI_VERSION_SYMBOL: &str = "vigil_plugin_abi_version";

/// The name of the entry function, an [`EntryFn`].
pub const ENTRY_SYMBOL: &str = "vigil_plugin_entry";

/// The entry function's type: returns the library's one static table (never null for a
/// working plugin). It must not allocate, block or fail: the loader calls it once, after
/// the version check.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginTable;

/// [`PluginTable::kind`] of a medium plugin.
pub const KIND_MEDIUM: u32 = 1;
/// [`PluginTable::kind`] of a STONITH device plugin.
pub const KIND_STONITH: u32 = 2;
/// [`PluginTable::kind`] of a resource agent plugin.
pub const KIND_AGENT: u32 = 3;

/// A borrowed run of bytes (UTF-8 where it is text). A null `ptr` means "none" where a
/// value is optional, and the empty string everywhere else.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ByteStr {
    /// The first byte; may be null when `len` is 0.
    pub ptr: *const u8,
    /// The number of bytes.
    pub len: usize,
}

impl ByteStr {
    /// The "none" value of an optional string.
    pub const NONE: ByteStr = ByteStr {
        ptr: std::ptr::null(),
        len: 0,
    };

    /// A view of `bytes`; usable in statics, which is how a plugin's name reaches its table.
    pub const fn new(bytes: &[u8]) -> ByteStr {
        ByteStr {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    /// A view of `text`.
    pub const fn from_text(text: &str) -> ByteStr {
        ByteStr::new(text.as_bytes())
    }

    /// A view of an optional string: `None` becomes [`ByteStr::NONE`].
    pub fn from_option(text: Option<&str>) -> ByteStr {
        text.map_or(ByteStr::NONE, ByteStr::from_text)
    }

    /// Whether this is the "none" value.
    pub fn is_none(&self) -> bool {
        self.ptr.is_null()
    }

    /// The bytes viewed.
    ///
    /// # Safety
    /// `ptr` must be null or point to `len` readable bytes that stay valid and unchanged for
    /// `'a`; across the boundary that is "until the call that passed it returns".
    pub unsafe fn as_bytes<'a>(&self) -> &'a [u8] {
        if self.ptr.is_null() || self.len == 0 {
            &[]
        } else {
            // SAFETY: non-null and `len` readable bytes, as the caller promises.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }

    /// The text viewed, with invalid UTF-8 replaced: a message from the other side is shown
    /// rather than lost.
    ///
    /// # Safety
    /// As [`ByteStr::as_bytes`].
    pub unsafe fn to_string_lossy(&self) -> String {
        // SAFETY: forwarded to the caller.
        String::from_utf8_lossy(unsafe { self.as_bytes() }).into_owned()
    }

    /// The optional text viewed: `None` for [`ByteStr::NONE`].
    ///
    /// # Safety
    /// As [`ByteStr::as_bytes`].
    pub unsafe fn to_option(&self) -> Option<String> {
        // SAFETY: forwarded to the caller.
        (!self.is_none()).then(|| unsafe { self.to_string_lossy() })
    }
}

/// A `name=value` pair: an instance parameter, a STONITH parameter, an environment variable.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct KeyValue {
    pub key: ByteStr,
    pub value: ByteStr,
}

/// Where a callee hands a variable-sized result: `receive(ctx, item)` once per item, the
/// item valid only during that call. The caller owns `ctx` and whatever it copies into.
#[repr(C)]
pub struct Receiver<T> {
    /// The caller's state, passed back untouched.
    pub ctx: *mut c_void,
    /// Takes one item; never unwinds.
    pub receive: unsafe extern "C" fn(ctx: *mut c_void, item: *const T),
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Receiver<T> {}

impl<T> Receiver<T> {
    /// A receiver that calls `sink` for each item, for the side that asks. The receiver
    /// borrows `sink`: it must not be used after `sink` is gone, which the lifetime of
    /// [`ReceiverFor`] enforces on this side of the boundary.
    pub fn to<'a, F: FnMut(&T) + 'a>(sink: &'a mut F) -> ReceiverFor<'a, T> {
        ReceiverFor {
            receiver: Receiver {
                ctx: (sink as *mut F).cast(),
                receive: receive_with::<T, F>,
            },
            _sink: PhantomData,
        }
    }

    /// Hands one item to the receiver.
    ///
    /// # Safety
    /// The receiver must come from the caller of the current call (its `ctx` still valid).
    pub unsafe fn give(&self, item: &T) {
        // SAFETY: the caller vouches for ctx; `item` is a valid reference for the call.
        unsafe { (self.receive)(self.ctx, item) }
    }
}

/// A [`Receiver`] tied to the lifetime of the closure it feeds.
pub struct ReceiverFor<'a, T> {
    receiver: Receiver<T>,
    _sink: PhantomData<&'a mut ()>,
}

impl<T> ReceiverFor<'_, T> {
    /// The C value to pass across; valid while `self` is.
    pub fn raw(&self) -> Receiver<T> {
        self.receiver
    }
}

/// The trampoline behind [`Receiver::to`]. A closure that panics loses its item instead of
/// unwinding into foreign code.
unsafe extern "C" fn receive_with<T, F: FnMut(&T)>(ctx: *mut c_void, item: *const T) {
    if ctx.is_null() || item.is_null() {
        return;
    }
    // SAFETY: ctx is the `&mut F` of `Receiver::to`, alive while the receiver is; item is
    // valid for this call, as the scheme requires of the giver.
    let (sink, item) = unsafe { (&mut *ctx.cast::<F>(), &*item) };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(item)));
}

/// An IPv4 or IPv6 address, or none.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpAddressView {
    /// 4, 6, or 0 for "none".
    pub family: u8,
    /// The address in network order; IPv4 uses the first four bytes.
    pub octets: [u8; 16],
}

impl IpAddressView {
    /// No address (an unset broadcast).
    pub const NONE: IpAddressView = IpAddressView {
        family: 0,
        octets: [0; 16],
    };

    /// The C form of `address`.
    pub fn from_ip(address: IpAddr) -> IpAddressView {
        let mut octets = [0; 16];
        match address {
            IpAddr::V4(v4) => {
                octets[..4].copy_from_slice(&v4.octets());
                IpAddressView { family: 4, octets }
            }
            IpAddr::V6(v6) => IpAddressView {
                family: 6,
                octets: v6.octets(),
            },
        }
    }

    /// The C form of an optional address.
    pub fn from_option(address: Option<IpAddr>) -> IpAddressView {
        address.map_or(IpAddressView::NONE, IpAddressView::from_ip)
    }

    /// The address, or `None` for family 0 or an unknown family.
    pub fn to_ip(&self) -> Option<IpAddr> {
        match self.family {
            4 => {
                let [a, b, c, d, ..] = self.octets;
                Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
            }
            6 => Some(IpAddr::V6(Ipv6Addr::from(self.octets))),
            _ => None,
        }
    }
}

/// An address with its prefix length (`198.18.0.100/24`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPrefixView {
    pub address: IpAddressView,
    pub prefix_len: u8,
}

/// An address on an interface: what `Host::addresses` lists and `Host::add_address` asks
/// for, one shape for both.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AddressView {
    /// The interface (`eth0`).
    pub interface: ByteStr,
    /// The address and prefix.
    pub address: IpPrefixView,
    /// The IPv4 broadcast, or [`IpAddressView::NONE`].
    pub broadcast: IpAddressView,
    /// The label, or [`ByteStr::NONE`].
    pub label: ByteStr,
}

/// A finished command, as `Host::run_command` reports it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CommandOutputView {
    /// 1 when the command exited (then `exit_code` holds its code), 0 when a signal ended it.
    pub exited: u8,
    pub exit_code: i32,
    pub stdout: ByteStr,
    pub stderr: ByteStr,
}

impl IpPrefixView {
    /// The C form of `prefix`.
    pub fn from_prefix(prefix: IpPrefix) -> IpPrefixView {
        IpPrefixView {
            address: IpAddressView::from_ip(prefix.address),
            prefix_len: prefix.prefix_len,
        }
    }

    /// The prefix, or `None` when the address has no known family.
    pub fn to_prefix(&self) -> Option<IpPrefix> {
        Some(IpPrefix {
            address: self.address.to_ip()?,
            prefix_len: self.prefix_len,
        })
    }
}

impl AddressView {
    /// A view of a configured address, borrowing its strings.
    pub fn of_interface_address(address: &InterfaceAddress) -> AddressView {
        AddressView {
            interface: ByteStr::from_text(&address.interface),
            address: IpPrefixView::from_prefix(address.address),
            broadcast: IpAddressView::from_option(address.broadcast),
            label: ByteStr::from_option(address.label.as_deref()),
        }
    }

    /// A view of an address request, borrowing its strings.
    pub fn of_request(request: &AddressRequest) -> AddressView {
        AddressView {
            interface: ByteStr::from_text(&request.interface),
            address: IpPrefixView::from_prefix(request.address),
            broadcast: IpAddressView::from_option(request.broadcast),
            label: ByteStr::from_option(request.label.as_deref()),
        }
    }

    /// The configured address viewed; `None` when its address has no known family.
    ///
    /// # Safety
    /// The strings must be valid for the call, as [`ByteStr::as_bytes`] requires.
    pub unsafe fn to_interface_address(&self) -> Option<InterfaceAddress> {
        Some(InterfaceAddress {
            // SAFETY: forwarded to the caller.
            interface: unsafe { self.interface.to_string_lossy() },
            address: self.address.to_prefix()?,
            broadcast: self.broadcast.to_ip(),
            // SAFETY: forwarded to the caller.
            label: unsafe { self.label.to_option() },
        })
    }

    /// The address request viewed; `None` when its address has no known family.
    ///
    /// # Safety
    /// As [`AddressView::to_interface_address`].
    pub unsafe fn to_request(&self) -> Option<AddressRequest> {
        Some(AddressRequest {
            // SAFETY: forwarded to the caller.
            interface: unsafe { self.interface.to_string_lossy() },
            address: self.address.to_prefix()?,
            broadcast: self.broadcast.to_ip(),
            // SAFETY: forwarded to the caller.
            label: unsafe { self.label.to_option() },
        })
    }
}

impl CommandOutputView {
    /// A view of `output`, borrowing its bytes.
    pub fn of(output: &CommandOutput) -> CommandOutputView {
        CommandOutputView {
            exited: u8::from(output.exit_code.is_some()),
            exit_code: output.exit_code.unwrap_or(0),
            stdout: ByteStr::new(&output.stdout),
            stderr: ByteStr::new(&output.stderr),
        }
    }

    /// The output viewed.
    ///
    /// # Safety
    /// The byte views must be valid for the call.
    pub unsafe fn to_command_output(&self) -> CommandOutput {
        CommandOutput {
            exit_code: (self.exited != 0).then_some(self.exit_code),
            // SAFETY: forwarded to the caller.
            stdout: unsafe { self.stdout.as_bytes() }.to_vec(),
            // SAFETY: forwarded to the caller.
            stderr: unsafe { self.stderr.as_bytes() }.to_vec(),
        }
    }
}

/// [`HostErrorView::kind`]: the operator did not grant the capability.
pub const HOST_ERROR_NOT_GRANTED: u32 = 1;
/// [`HostErrorView::kind`]: the capability was used with an argument it cannot take.
pub const HOST_ERROR_INVALID: u32 = 2;
/// [`HostErrorView::kind`]: the system refused or failed.
pub const HOST_ERROR_FAILED: u32 = 3;
/// [`HostErrorView::kind`]: the operation ran out of time (`after_ms`).
pub const HOST_ERROR_TIMED_OUT: u32 = 4;

/// A `HostError`, as a host call reports it to its error receiver.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HostErrorView {
    /// One of the `HOST_ERROR_*` constants.
    pub kind: u32,
    /// The capability concerned (`addresses`, `run-command`).
    pub capability: ByteStr,
    /// Why; empty for `NOT_GRANTED` and `TIMED_OUT`.
    pub reason: ByteStr,
    /// For `TIMED_OUT`: after how long, in milliseconds.
    pub after_ms: u64,
}

impl HostErrorView {
    /// A view of `error`, borrowing its strings.
    pub fn of(error: &HostError) -> HostErrorView {
        let (kind, capability, reason, after_ms) = match error {
            HostError::NotGranted { capability } => (HOST_ERROR_NOT_GRANTED, capability, "", 0),
            HostError::Invalid { capability, reason } => {
                (HOST_ERROR_INVALID, capability, reason.as_str(), 0)
            }
            HostError::Failed { capability, reason } => {
                (HOST_ERROR_FAILED, capability, reason.as_str(), 0)
            }
            HostError::TimedOut { capability, after } => (
                HOST_ERROR_TIMED_OUT,
                capability,
                "",
                u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            ),
        };
        HostErrorView {
            kind,
            capability: ByteStr::from_text(capability),
            reason: ByteStr::from_text(reason),
            after_ms,
        }
    }

    /// The error viewed; an unknown kind reads as `Failed`.
    ///
    /// # Safety
    /// The strings must be valid for the call.
    pub unsafe fn to_host_error(&self) -> HostError {
        // SAFETY: forwarded to the caller.
        let (capability, reason) = unsafe {
            (
                self.capability.to_string_lossy(),
                self.reason.to_string_lossy(),
            )
        };
        match self.kind {
            HOST_ERROR_NOT_GRANTED => HostError::NotGranted { capability },
            HOST_ERROR_INVALID => HostError::Invalid { capability, reason },
            HOST_ERROR_TIMED_OUT => HostError::TimedOut {
                capability,
                after: Duration::from_millis(self.after_ms),
            },
            _ => HostError::Failed { capability, reason },
        }
    }
}

/// A host call succeeded.
pub const HOST_OK: i32 = 0;
/// `add_address` / `remove_address`: the address was already there / already absent.
pub const HOST_UNCHANGED: i32 = 1;
/// A host call failed; the error went to its error receiver.
pub const HOST_ERR: i32 = -1;

/// `Host::log` levels.
pub const LOG_DEBUG: u32 = 0;
pub const LOG_INFO: u32 = 1;
pub const LOG_WARNING: u32 = 2;
pub const LOG_ERROR: u32 = 3;

/// The daemon's `Host`, as an agent reaches it: `ctx` and one function per capability,
/// built by the host for the duration of one operation. Every function takes `ctx` first;
/// results go to receivers, failures to an error receiver with [`HOST_ERR`] returned.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HostVtable {
    /// The host's state for this operation, valid until the operation returns.
    pub ctx: *const c_void,
    /// `Host::log`: `level` is a `LOG_*` constant.
    pub log: unsafe extern "C" fn(ctx: *const c_void, level: u32, message: ByteStr),
    /// `Host::addresses`: one [`AddressView`] per configured address.
    pub addresses: unsafe extern "C" fn(
        ctx: *const c_void,
        out: Receiver<AddressView>,
        error: Receiver<HostErrorView>,
    ) -> i32,
    /// `Host::add_address`: [`HOST_OK`] (changed), [`HOST_UNCHANGED`] or [`HOST_ERR`].
    pub add_address: unsafe extern "C" fn(
        ctx: *const c_void,
        request: *const AddressView,
        error: Receiver<HostErrorView>,
    ) -> i32,
    /// `Host::remove_address`: [`HOST_OK`] (changed), [`HOST_UNCHANGED`] or [`HOST_ERR`].
    pub remove_address: unsafe extern "C" fn(
        ctx: *const c_void,
        interface: ByteStr,
        address: IpPrefixView,
        error: Receiver<HostErrorView>,
    ) -> i32,
    /// `Host::send_gratuitous_arp`.
    pub send_gratuitous_arp: unsafe extern "C" fn(
        ctx: *const c_void,
        interface: ByteStr,
        address: IpAddressView,
        count: u32,
        interval_ms: u64,
        error: Receiver<HostErrorView>,
    ) -> i32,
    /// `Host::run_command`: one [`CommandOutputView`] on success.
    pub run_command: unsafe extern "C" fn(
        ctx: *const c_void,
        argv: *const ByteStr,
        argc: usize,
        env: *const KeyValue,
        env_len: usize,
        timeout_ms: u64,
        out: Receiver<CommandOutputView>,
        error: Receiver<HostErrorView>,
    ) -> i32,
    /// `Host::read_file`: the whole contents as one [`ByteStr`]; `path` is raw bytes.
    pub read_file: unsafe extern "C" fn(
        ctx: *const c_void,
        path: ByteStr,
        out: Receiver<ByteStr>,
        error: Receiver<HostErrorView>,
    ) -> i32,
}

/// [`AgentVtable::run`]'s `action`: start.
pub const ACTION_START: u32 = 0;
/// Stop.
pub const ACTION_STOP: u32 = 1;
/// Monitor.
pub const ACTION_MONITOR: u32 = 2;
/// Validate-all.
pub const ACTION_VALIDATE: u32 = 3;

/// One resource as an agent operation sees it; direct C data, no serialization, because a
/// monitor call should cost about what a plain call costs. Grants are not passed: a native
/// agent runs with the daemon's rights.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ResourceInstanceView {
    /// `OCF_RESOURCE_INSTANCE`.
    pub name: ByteStr,
    /// The parameters, `params_len` of them.
    pub params: *const KeyValue,
    pub params_len: usize,
    /// The operation's timeout in milliseconds.
    pub timeout_ms: u64,
}

/// A resource agent's functions. The agent is one shared, stateless object inside the
/// library; operations may run concurrently on several threads.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AgentVtable {
    /// Gives the OCF meta-data XML to `out` and returns 0; non-zero when the agent failed
    /// (panicked) and gave nothing.
    pub metadata: unsafe extern "C" fn(out: Receiver<ByteStr>) -> i32,
    /// The capability kinds it uses, bit `i` for `Capability::ALL[i]`.
    pub capabilities: unsafe extern "C" fn() -> u32,
    /// `positional_params`: 0 with one [`KeyValue`] per parameter to `out`, or non-zero with
    /// the refusal to `error`.
    pub positional_params: unsafe extern "C" fn(
        args: *const ByteStr,
        args_len: usize,
        out: Receiver<KeyValue>,
        error: Receiver<ByteStr>,
    ) -> i32,
    /// Runs one `ACTION_*` on `instance`; returns the OCF exit code and gives the outcome's
    /// message to `message` (at most once).
    pub run: unsafe extern "C" fn(
        action: u32,
        instance: *const ResourceInstanceView,
        host: *const HostVtable,
        message: Receiver<ByteStr>,
    ) -> u32,
}

/// `StonithVtable::info`'s `what`: `ST_CONF_XML`.
pub const INFO_CONFIG_XML: u32 = 0;
/// `ST_DEVICEID`.
pub const INFO_DEVICE_ID: u32 = 1;
/// `ST_DEVICENAME`.
pub const INFO_DEVICE_NAME: u32 = 2;
/// `ST_DEVICEDESCR`.
pub const INFO_DESCRIPTION: u32 = 3;
/// `ST_DEVICEURL`.
pub const INFO_URL: u32 = 4;

/// `StonithVtable::reset`'s `request`, cluster-glue's op numbers: reset.
pub const RESET_REBOOT: u32 = 1;
/// Power on.
pub const RESET_POWER_ON: u32 = 2;
/// Power off.
pub const RESET_POWER_OFF: u32 = 3;

/// A STONITH device plugin's functions. Every fallible one returns 0 (`S_OK`) or an `S_*`
/// code (`StonithCode::number`) with the message given to `error`. A device handle is used
/// by one thread at a time but may move between threads.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StonithVtable {
    /// A new unconfigured device of `device_type` (the plugin's name), stored in `*device`.
    pub create: unsafe extern "C" fn(
        device_type: ByteStr,
        device: *mut *mut c_void,
        error: Receiver<ByteStr>,
    ) -> i32,
    /// Frees a device; it is not used again.
    pub destroy: unsafe extern "C" fn(device: *mut c_void),
    /// The parameter names, in positional order, one per `receive`.
    pub config_names: unsafe extern "C" fn(
        device: *mut c_void,
        out: Receiver<ByteStr>,
        error: Receiver<ByteStr>,
    ) -> i32,
    /// `configure(params)`.
    pub configure: unsafe extern "C" fn(
        device: *mut c_void,
        params: *const KeyValue,
        params_len: usize,
        error: Receiver<ByteStr>,
    ) -> i32,
    /// `status()`.
    pub status: unsafe extern "C" fn(device: *mut c_void, error: Receiver<ByteStr>) -> i32,
    /// `hosts()`, one host per `receive`.
    pub hosts: unsafe extern "C" fn(
        device: *mut c_void,
        out: Receiver<ByteStr>,
        error: Receiver<ByteStr>,
    ) -> i32,
    /// `reset(request, host)`; `request` is a `RESET_*` constant.
    pub reset: unsafe extern "C" fn(
        device: *mut c_void,
        request: u32,
        host: ByteStr,
        error: Receiver<ByteStr>,
    ) -> i32,
    /// `info(what)`: 1 with the text given to `out`, 0 when the device has none.
    pub info: unsafe extern "C" fn(device: *mut c_void, what: u32, out: Receiver<ByteStr>) -> i32,
}

/// A medium call's status: the arguments do not fit the plugin's syntax (check/open).
pub const MEDIUM_BAD_ARGUMENTS: i32 = -1;
/// A medium call's status: an I/O error with no errno; the message says what. Any positive
/// status is an errno, with the message in the error receiver.
pub const MEDIUM_IO_ERROR: i32 = -2;

/// A medium configuration line (`MediumSpec`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MediumSpecView {
    /// The directive (the plugin's name).
    pub kind: ByteStr,
    /// The arguments after it, `args_len` of them.
    pub args: *const ByteStr,
    pub args_len: usize,
    /// The cluster's UDP port.
    pub udp_port: u16,
    /// Where the line came from, for messages.
    pub origin: ByteStr,
}

/// [`PeerAddressView::kind`]: a link without addresses (`PeerAddress::Link`).
pub const PEER_LINK: u32 = 0;
/// [`PeerAddressView::kind`]: a UDP sender at `address`:`port`.
pub const PEER_UDP: u32 = 1;

/// Where a received frame came from.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PeerAddressView {
    /// `PEER_LINK` or `PEER_UDP`.
    pub kind: u32,
    pub address: IpAddressView,
    pub port: u16,
}

impl PeerAddressView {
    /// The C form of `peer`.
    pub fn of(peer: &PeerAddress) -> PeerAddressView {
        match peer {
            PeerAddress::Udp(address) => PeerAddressView {
                kind: PEER_UDP,
                address: IpAddressView::from_ip(address.ip()),
                port: address.port(),
            },
            PeerAddress::Link => PeerAddressView {
                kind: PEER_LINK,
                address: IpAddressView::NONE,
                port: 0,
            },
        }
    }

    /// The peer viewed; anything but a UDP sender with an address is `Link`.
    pub fn to_peer(&self) -> PeerAddress {
        match (self.kind, self.address.to_ip()) {
            (PEER_UDP, Some(ip)) => PeerAddress::Udp(SocketAddr::new(ip, self.port)),
            _ => PeerAddress::Link,
        }
    }
}

/// A medium plugin's functions. An open medium is driven by a reader thread (`recv`) and a
/// writer thread (`send`) at the same time, so its handle must allow both concurrently.
/// Every fallible call returns 0, [`MEDIUM_BAD_ARGUMENTS`], [`MEDIUM_IO_ERROR`] or a positive
/// errno, with the message given to `error`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MediumVtable {
    /// Checks a configuration line without touching the system.
    pub check: unsafe extern "C" fn(spec: *const MediumSpecView, error: Receiver<ByteStr>) -> i32,
    /// Opens the link; the handle goes to `*medium`.
    pub open: unsafe extern "C" fn(
        spec: *const MediumSpecView,
        medium: *mut *mut c_void,
        error: Receiver<ByteStr>,
    ) -> i32,
    /// The link name, borrowed from the medium for as long as it lives.
    pub link_name: unsafe extern "C" fn(medium: *mut c_void) -> ByteStr,
    /// Sends one frame to every peer.
    pub send:
        unsafe extern "C" fn(medium: *mut c_void, frame: ByteStr, error: Receiver<ByteStr>) -> i32,
    /// Blocks until a frame arrives, copies at most `buf_len` bytes of it into `buf`, and
    /// stores its length in `*received` and its sender in `*from`.
    pub recv: unsafe extern "C" fn(
        medium: *mut c_void,
        buf: *mut u8,
        buf_len: usize,
        received: *mut usize,
        from: *mut PeerAddressView,
        error: Receiver<ByteStr>,
    ) -> i32,
    /// Unblocks a pending `recv`; later ones fail.
    pub shutdown: unsafe extern "C" fn(medium: *mut c_void),
    /// Frees the medium; it is not used again.
    pub destroy: unsafe extern "C" fn(medium: *mut c_void),
}

/// What [`ENTRY_SYMBOL`] returns: who the plugin is and where its functions are.
#[repr(C)]
#[derive(Debug)]
pub struct PluginTable {
    /// `size_of::<PluginTable>()` as the plugin was compiled; the loader refuses a table
    /// smaller than its own.
    pub size: usize,
    /// [`ABI_VERSION`] as the plugin was compiled; must equal the data symbol's.
    pub abi_version: u32,
    /// One of the `KIND_*` constants.
    pub kind: u32,
    /// The name configuration refers to it by (UTF-8).
    pub name: ByteStr,
    /// The plugin's own version.
    pub version: ByteStr,
    /// One line for listings.
    pub description: ByteStr,
    /// The agent's functions when `kind` is [`KIND_AGENT`], else null.
    pub agent: *const AgentVtable,
    /// The device's functions when `kind` is [`KIND_STONITH`], else null.
    pub stonith: *const StonithVtable,
    /// The medium's functions when `kind` is [`KIND_MEDIUM`], else null.
    pub medium: *const MediumVtable,
}

// SAFETY: a table is immutable static data: its pointers lead to other immutable statics
// (strings and function tables) of the same library, so sharing it between threads is sound.
unsafe impl Sync for PluginTable {}

impl PluginTable {
    /// A table for a plugin of `kind` with exactly one of the three function tables set;
    /// a `const fn` so that the export macros can put it in a static.
    pub const fn new(
        kind: u32,
        name: &'static str,
        version: &'static str,
        description: &'static str,
        agent: Option<&'static AgentVtable>,
        stonith: Option<&'static StonithVtable>,
        medium: Option<&'static MediumVtable>,
    ) -> PluginTable {
        PluginTable {
            size: std::mem::size_of::<PluginTable>(),
            abi_version: ABI_VERSION,
            kind,
            name: ByteStr::from_text(name),
            version: ByteStr::from_text(version),
            description: ByteStr::from_text(description),
            agent: match agent {
                Some(vtable) => vtable,
                None => std::ptr::null(),
            },
            stonith: match stonith {
                Some(vtable) => vtable,
                None => std::ptr::null(),
            },
            medium: match medium {
                Some(vtable) => vtable,
                None => std::ptr::null(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_their_c_form() {
        for ip in ["198.18.0.100", "2001:db8::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(IpAddressView::from_ip(ip).to_ip(), Some(ip));
        }
        assert_eq!(IpAddressView::from_option(None).to_ip(), None);
    }

    #[test]
    fn a_receiver_hands_each_item_to_its_closure() {
        let mut seen = Vec::new();
        let mut sink = |item: &ByteStr| {
            // SAFETY: the giver below passes views of live strings.
            seen.push(unsafe { item.to_string_lossy() })
        };
        let receiver = Receiver::to(&mut sink);
        for word in ["a", "bc"] {
            // SAFETY: the receiver's closure is alive.
            unsafe { receiver.raw().give(&ByteStr::from_text(word)) };
        }
        assert_eq!(seen, ["a", "bc"]);
    }

    #[test]
    fn optional_strings_keep_none_apart_from_empty() {
        // SAFETY: both views are of static data.
        unsafe {
            assert_eq!(ByteStr::from_option(None).to_option(), None);
            assert_eq!(
                ByteStr::from_option(Some("")).to_option(),
                Some(String::new())
            );
        }
    }
}
