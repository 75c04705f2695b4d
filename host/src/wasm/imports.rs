//! The host side of the `host` WIT interface: what a WASM plugin's imports do, checked
//! against the resource's grants, plus the per-store state they need.
//!
//! Owns [`CallState`] (the data of every plugin store: whose host to act through, what the
//! operator granted, the deadline of the running call, the memory limiter, a panic message)
//! and the grant checks, each refusal a `not-granted` error naming the capability and its
//! argument (`read /etc/shadow`). The real work is the `Host` the daemon hands the operation
//! (`SystemHost`, or a mock in tests); this file must not carry out a capability itself,
//! and must never let a plugin reach a host outside the call that lent it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_plugin_api::{self as api, Grants, Host, HostError};
use wasmtime::{ResourceLimiter, Store};

use super::bindings::agent::vigil::plugin::{host as wit_host, types as wit};

/// The most memory one plugin instance may use: its linear memories together. An agent that
/// manages an address or reads a file needs far less; a leak or a bomb ends at this limit
/// as a failed operation instead of taking the daemon's memory.
pub const MEMORY_LIMIT: usize = 64 << 20;

/// The most table elements one instance may have (function tables of a large Rust plugin
/// hold a few thousand).
const TABLE_ELEMENT_LIMIT: usize = 1 << 16;

/// The longest panic message kept for the failed operation's message.
const PANIC_MESSAGE_LIMIT: usize = 1024;

/// A `&dyn Host` lent to a store for the duration of one call.
///
/// The store outlives the call but the host does not, so the store keeps a raw pointer,
/// set by [`CallState::lend_host`] and cleared by the guard it returns before the borrow
/// ends (on unwinding too). The plugin cannot keep it: imports only run inside the call.
#[derive(Clone, Copy)]
struct LentHost(*const (dyn Host + 'static));

// SAFETY: `Host` is `Send + Sync`, so the host behind the pointer may be used from whichever
// thread runs the store; the pointer is only dereferenced while the lending call runs (see
// `LentHost`), and the store is used by one thread at a time (it sits behind a mutex).
unsafe impl Send for LentHost {}

/// Where a store's host calls go.
enum CallHost {
    /// Between calls: nothing may be done but logging the plugin's own name.
    None,
    /// An agent operation's host, lent for the call.
    Lent(LentHost),
    /// A host the store owns (a STONITH device's, which only logs).
    Owned(Arc<dyn Host>),
}

/// Tracks memory growth against [`MEMORY_LIMIT`] and remembers a refusal, so a trap that
/// follows (Rust aborts when an allocation fails) is reported as the memory limit.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    /// Whether a growth past the limit was refused during the current call.
    pub(crate) exceeded: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MEMORY_LIMIT {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENT_LIMIT)
    }
}

/// The data of one plugin store: kept with the instance across calls.
pub struct CallState {
    /// The resource or device the instance serves, for logs.
    pub(crate) owner: String,
    /// What the operator granted; replaced when an operation brings different grants.
    pub(crate) grants: Grants,
    /// The host of the running call.
    host: CallHost,
    /// When the running call must end; commands never get longer than what remains.
    pub(crate) deadline: Option<Instant>,
    /// Memory accounting for this store.
    pub(crate) limiter: MemoryLimiter,
    /// The message the plugin's panic hook sent, if it is about to abort.
    pub(crate) panic_message: Option<String>,
}

/// Clears a lent host when the call that lent it ends, unwinding included.
struct HostLoan<'s> {
    store: &'s mut Store<CallState>,
}

impl Drop for HostLoan<'_> {
    fn drop(&mut self) {
        let state = self.store.data_mut();
        state.host = CallHost::None;
        state.deadline = None;
    }
}

/// Runs `call` on `store` with `host` lent to its imports; the loan ends when `call` does.
pub(crate) fn with_host<R>(
    store: &mut Store<CallState>,
    host: &dyn Host,
    call: impl FnOnce(&mut Store<CallState>) -> R,
) -> R {
    let short: *const (dyn Host + '_) = host;
    // SAFETY: only the lifetime bound of the trait object changes (same layout). The pointer
    // is dereferenced only through `CallState::host`, inside plugin calls made by `call`,
    // while `host` is borrowed by this function; `HostLoan::drop` clears it before we return
    // (or unwind), so it never outlives the borrow.
    let erased = unsafe {
        std::mem::transmute::<*const (dyn Host + '_), *const (dyn Host + 'static)>(short)
    };
    store.data_mut().host = CallHost::Lent(LentHost(erased));
    let loan = HostLoan { store };
    call(&mut *loan.store)
}

impl CallState {
    /// State for an instance serving `owner` under `grants`, with no host until a call
    /// lends one.
    pub(crate) fn new(owner: impl Into<String>, grants: Grants) -> Self {
        CallState {
            owner: owner.into(),
            grants,
            host: CallHost::None,
            deadline: None,
            limiter: MemoryLimiter::default(),
            panic_message: None,
        }
    }

    /// State whose host is owned for the store's life (a STONITH device's).
    pub(crate) fn with_owned_host(
        owner: impl Into<String>,
        grants: Grants,
        host: Arc<dyn Host>,
    ) -> Self {
        let mut state = CallState::new(owner, grants);
        state.host = CallHost::Owned(host);
        state
    }

    /// Prepares a call: clears what the last one left (the memory flag, a panic message).
    pub(crate) fn begin_call(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
        self.limiter.exceeded = false;
        self.panic_message = None;
    }

    /// The host of the running call, if any.
    fn host(&self) -> Option<&dyn Host> {
        match &self.host {
            CallHost::None => None,
            // SAFETY: see `LentHost`: set only while the lending call runs, cleared by
            // `HostLoan::drop` before the borrow it came from ends.
            CallHost::Lent(lent) => Some(unsafe { &*lent.0 }),
            CallHost::Owned(host) => Some(host.as_ref()),
        }
    }

    /// The host, or the error for an import called outside an operation (during load).
    fn require_host(&self, capability: &str) -> Result<&dyn Host, HostError> {
        self.host().ok_or_else(|| HostError::Failed {
            capability: capability.to_string(),
            reason: "no operation is running (the plugin called it while loading)".into(),
        })
    }

    /// The refusal of `what` (`read /etc/shadow`), logged for the operator.
    fn refuse(&self, what: String) -> HostError {
        tracing::warn!(
            owner = %self.owner,
            refused = %what,
            "WASM plugin asked for a capability it was not granted"
        );
        HostError::NotGranted { capability: what }
    }

    /// What remains of the running call's time, at most `asked`.
    fn within_deadline(&self, asked: Duration) -> Duration {
        match self.deadline {
            Some(deadline) => asked.min(deadline.saturating_duration_since(Instant::now())),
            None => asked,
        }
    }
}

/// The path to read and check for `requested`: its canonical form when it exists (so a
/// symbolic link cannot lead out of a granted directory), else the path as given (which the
/// grant check holds to absolute and free of `..`).
fn resolved_path(requested: &Path) -> PathBuf {
    std::fs::canonicalize(requested).unwrap_or_else(|_| requested.to_path_buf())
}

impl wit::Host for CallState {}

impl wit_host::Host for CallState {
    fn log(&mut self, level: wit::LogLevel, message: String) {
        if !self.grants.log {
            tracing::debug!(owner = %self.owner, "dropped a log line: `log` is not granted");
            return;
        }
        let level = match level {
            wit::LogLevel::Debug => api::LogLevel::Debug,
            wit::LogLevel::Info => api::LogLevel::Info,
            wit::LogLevel::Warning => api::LogLevel::Warning,
            wit::LogLevel::Error => api::LogLevel::Error,
        };
        match self.host() {
            Some(host) => host.log(level, &message),
            None => tracing::info!(owner = %self.owner, "{message}"),
        }
    }

    fn addresses(&mut self) -> Result<Vec<wit::InterfaceAddress>, wit::HostError> {
        if self.grants.address_interfaces.is_empty() {
            return Err(wit_error(self.refuse("addresses".into())));
        }
        let host = self.require_host("addresses").map_err(wit_error)?;
        let addresses = host.addresses().map_err(wit_error)?;
        Ok(addresses
            .into_iter()
            .filter(|a| self.grants.allows_addresses_on(&a.interface))
            .map(|a| wit::InterfaceAddress {
                interface: a.interface,
                address: wit_prefix(a.address),
                broadcast: a.broadcast.map(wit_address),
                label: a.label,
            })
            .collect())
    }

    fn add_address(
        &mut self,
        request: wit::AddressRequest,
    ) -> Result<wit::AddressChange, wit::HostError> {
        if !self.grants.allows_addresses_on(&request.interface) {
            return Err(wit_error(
                self.refuse(format!("addresses on {}", request.interface)),
            ));
        }
        let host = self.require_host("add_address").map_err(wit_error)?;
        let request = api::AddressRequest {
            interface: request.interface,
            address: api_prefix(request.address),
            broadcast: request.broadcast.map(api_address),
            label: request.label,
        };
        host.add_address(&request)
            .map(wit_change)
            .map_err(wit_error)
    }

    fn remove_address(
        &mut self,
        interface: String,
        address: wit::IpPrefix,
    ) -> Result<wit::AddressChange, wit::HostError> {
        if !self.grants.allows_addresses_on(&interface) {
            return Err(wit_error(self.refuse(format!("addresses on {interface}"))));
        }
        let host = self.require_host("remove_address").map_err(wit_error)?;
        host.remove_address(&interface, api_prefix(address))
            .map(wit_change)
            .map_err(wit_error)
    }

    fn send_gratuitous_arp(
        &mut self,
        interface: String,
        address: wit::IpAddress,
        count: u32,
        interval_ms: u64,
    ) -> Result<(), wit::HostError> {
        if !self.grants.allows_arp_on(&interface) {
            return Err(wit_error(self.refuse(format!("arp on {interface}"))));
        }
        let host = self
            .require_host("send_gratuitous_arp")
            .map_err(wit_error)?;
        host.send_gratuitous_arp(
            &interface,
            api_address(address),
            count,
            Duration::from_millis(interval_ms),
        )
        .map_err(wit_error)
    }

    fn run_command(
        &mut self,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        timeout_ms: u64,
    ) -> Result<wit::CommandOutput, wit::HostError> {
        let Some(program) = argv.first() else {
            return Err(wit_error(HostError::Invalid {
                capability: "run_command".into(),
                reason: "no program given (argv is empty)".into(),
            }));
        };
        if !self.grants.allows_command(program) {
            return Err(wit_error(self.refuse(format!("commands {program}"))));
        }
        let timeout = self.within_deadline(Duration::from_millis(timeout_ms));
        let host = self.require_host("run_command").map_err(wit_error)?;
        let output = host.run_command(&argv, &env, timeout).map_err(wit_error)?;
        Ok(wit::CommandOutput {
            exit_code: output.exit_code,
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }

    fn read_file(&mut self, path: String) -> Result<Vec<u8>, wit::HostError> {
        let requested = Path::new(&path);
        let resolved = resolved_path(requested);
        if !self.grants.allows_read(&resolved) {
            let what = if resolved == requested {
                format!("read {path}")
            } else {
                format!("read {path} (resolves to {})", resolved.display())
            };
            return Err(wit_error(self.refuse(what)));
        }
        let host = self.require_host("read_file").map_err(wit_error)?;
        host.read_file(&resolved).map_err(wit_error)
    }

    fn panicked(&mut self, message: String) {
        let mut message = message;
        if message.len() > PANIC_MESSAGE_LIMIT {
            let mut end = PANIC_MESSAGE_LIMIT;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        self.panic_message = Some(message);
    }
}

/// A `HostError` as the plugin receives it.
pub(crate) fn wit_error(error: HostError) -> wit::HostError {
    match error {
        HostError::NotGranted { capability } => wit::HostError::NotGranted(capability),
        HostError::Invalid { capability, reason } => {
            wit::HostError::Invalid(wit::CapabilityFailure { capability, reason })
        }
        HostError::Failed { capability, reason } => {
            wit::HostError::Failed(wit::CapabilityFailure { capability, reason })
        }
        HostError::TimedOut { capability, after } => {
            wit::HostError::TimedOut(wit::CapabilityTimeout {
                capability,
                after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            })
        }
    }
}

fn wit_change(change: api::AddressChange) -> wit::AddressChange {
    match change {
        api::AddressChange::Changed => wit::AddressChange::Changed,
        api::AddressChange::Unchanged => wit::AddressChange::Unchanged,
    }
}

fn wit_address(address: std::net::IpAddr) -> wit::IpAddress {
    match address {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            wit::IpAddress::Ipv4((a, b, c, d))
        }
        std::net::IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            wit::IpAddress::Ipv6((a, b, c, d, e, f, g, h))
        }
    }
}

fn api_address(address: wit::IpAddress) -> std::net::IpAddr {
    match address {
        wit::IpAddress::Ipv4((a, b, c, d)) => std::net::Ipv4Addr::new(a, b, c, d).into(),
        wit::IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            std::net::Ipv6Addr::new(a, b, c, d, e, f, g, h).into()
        }
    }
}

fn wit_prefix(prefix: api::IpPrefix) -> wit::IpPrefix {
    wit::IpPrefix {
        address: wit_address(prefix.address),
        prefix_len: prefix.prefix_len,
    }
}

fn api_prefix(prefix: wit::IpPrefix) -> api::IpPrefix {
    api::IpPrefix {
        address: api_address(prefix.address),
        prefix_len: prefix.prefix_len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wit_host::Host as _;

    #[test]
    fn reads_are_checked_on_the_resolved_path_and_name_what_was_asked() {
        let granted =
            std::env::temp_dir().join(format!("vigil-wasm-imports-{}", std::process::id()));
        std::fs::create_dir_all(&granted).unwrap();
        let granted = granted.canonicalize().unwrap();
        let link = granted.join("passwd");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        let mut state = CallState::new(
            "test",
            Grants {
                read_paths: [granted.clone()].into(),
                ..Grants::default()
            },
        );
        let refused = |result: Result<Vec<u8>, wit::HostError>| match result {
            Err(wit::HostError::NotGranted(what)) => what,
            other => panic!("not refused: {other:?}"),
        };
        assert_eq!(
            refused(state.read_file("/etc/shadow".into())),
            "read /etc/shadow"
        );
        let through_link = refused(state.read_file(link.display().to_string()));
        assert_eq!(
            through_link,
            format!("read {} (resolves to /etc/passwd)", link.display())
        );
        // Inside the grant it passes the check; with no operation running there is no
        // host to read it for.
        match state.read_file(granted.join("missing").display().to_string()) {
            Err(wit::HostError::Failed(failure)) => assert_eq!(failure.capability, "read_file"),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&granted).unwrap();
    }

    #[test]
    fn nothing_granted_refuses_every_capability_naming_it() {
        let mut state = CallState::new("test", Grants::default());
        let refused = |r: Result<_, wit::HostError>| match r {
            Err(wit::HostError::NotGranted(what)) => what,
            _ => panic!("not refused"),
        };
        assert_eq!(refused(state.addresses().map(|_| ())), "addresses");
        assert_eq!(
            refused(
                state
                    .run_command(vec!["/bin/true".into()], vec![], 1000)
                    .map(|_| ())
            ),
            "commands /bin/true"
        );
        assert_eq!(
            refused(state.send_gratuitous_arp(
                "eth0".into(),
                wit::IpAddress::Ipv4((198, 18, 0, 1)),
                1,
                0
            )),
            "arp on eth0"
        );
    }

    #[test]
    fn the_memory_limiter_refuses_growth_past_the_limit_and_remembers() {
        let mut limiter = MemoryLimiter::default();
        assert!(limiter.memory_growing(0, MEMORY_LIMIT, None).unwrap());
        assert!(!limiter.exceeded);
        assert!(!limiter.memory_growing(0, MEMORY_LIMIT + 1, None).unwrap());
        assert!(limiter.exceeded);
    }
}
