//! The wasmtime host for WASM plugins: sandboxed resource agents and STONITH devices.
//!
//! Owns the one [`WasmRuntime`] of the process (an engine with only the features plugins
//! need, epoch interruption on, and the ticker thread that advances the epoch), [`load`]
//! (compile a component, tell which `vigil:plugin` world it implements, build its template
//! and register an adapter), and the adapters themselves: [`WasmAgent`] (a `ResourceAgent`
//! keeping one instance per resource) and [`WasmStonithFactory`] (a `StonithFactory`
//! keeping one instance per device). Every call into a plugin runs under an epoch deadline
//! and a memory limit ([`MEMORY_LIMIT`]); a trap ends the call as a failed operation and
//! discards the instance, so the next call starts a fresh one from the template.
//!
//! It must not run a plugin on the core thread (agent operations run on the agent runner's
//! threads, device calls on the fencer's), grant anything by itself (the operator's grants
//! come with each operation; [`imports`] checks them), or give a plugin WASI: any WASI
//! function a component imports (Rust's standard library imports a few) is linked to a trap.
//!
//! - [`bindings`]: the Rust face of the WIT package, generated.
//! - [`imports`]: the host interface a plugin calls, filtered through its grants.
//! - [`agent`]: the resource-agent adapter.
//! - [`stonith`]: the STONITH device adapter.

pub mod agent;
pub mod bindings;
pub mod imports;
pub mod stonith;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use thiserror::Error;
use vigil_plugin_api::{PluginInfo, Registry, RegistryError};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, Trap};

pub use agent::WasmAgent;
pub use imports::{CallState, MEMORY_LIMIT};
pub use stonith::{STONITH_CALL_DEADLINE, WasmStonithDevice, WasmStonithFactory};

/// How often the ticker advances the engine's epoch: the resolution of every deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The deadline of the calls made while loading (`info`, `metadata`) and of
/// `positional-params`: describing itself takes a plugin no time.
pub const LOAD_DEADLINE: Duration = Duration::from_secs(5);

/// The WIT package version this daemon provides; a component built against another is
/// refused at load, naming both.
pub const WIT_PACKAGE: &str = "vigil:plugin@0.1.0";

/// The interface a resource agent exports.
const AGENT_EXPORT: &str = "vigil:plugin/agent@0.1.0";

/// The interface a STONITH device exports.
const STONITH_EXPORT: &str = "vigil:plugin/stonith@0.1.0";

/// The interfaces of ours a component may import.
const PROVIDED_IMPORTS: [&str; 2] = ["vigil:plugin/host@0.1.0", "vigil:plugin/types@0.1.0"];

/// A WASM plugin could not be loaded. Each variant names the file and says what to do.
#[derive(Debug, Error)]
pub enum WasmLoadError {
    /// The engine could not be created (an unsupported platform).
    #[error("cannot create the WASM engine: {reason}")]
    Engine { reason: String },
    /// The file could not be read.
    #[error("cannot read WASM plugin {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a WebAssembly component.
    #[error("{} is not a WebAssembly component: {reason}", path.display())]
    NotAComponent { path: PathBuf, reason: String },
    /// wasmtime refused to compile it.
    #[error("cannot compile WASM plugin {}: {reason}", path.display())]
    Compile { path: PathBuf, reason: String },
    /// The component implements neither `vigil:plugin` world.
    #[error(
        "{} implements no {WIT_PACKAGE} world: it exports [{exports}], but a resource agent \
         exports `{AGENT_EXPORT}` and a STONITH device `{STONITH_EXPORT}`; build it with \
         vigil-sdk's export_wasm_agent! or export_wasm_stonith!",
        path.display()
    )]
    UnknownWorld { path: PathBuf, exports: String },
    /// The component imports something this daemon does not provide (another version of
    /// the package, or a foreign interface).
    #[error(
        "{} imports `{import}`, which this daemon does not provide (it provides {WIT_PACKAGE} \
         and traps every WASI call); rebuild the plugin against vigil-sdk for {WIT_PACKAGE}",
        path.display()
    )]
    UnsupportedImport { path: PathBuf, import: String },
    /// Linking or type-checking against the world failed.
    #[error("WASM plugin {} does not match the {WIT_PACKAGE} world: {reason}", path.display())]
    Link { path: PathBuf, reason: String },
    /// Instantiating it or asking it who it is failed.
    #[error("WASM plugin {} failed while loading: {reason}", path.display())]
    Describe { path: PathBuf, reason: String },
    /// Its name cannot be used in configuration.
    #[error(
        "WASM plugin {} calls itself {name:?}; a name must be non-empty and made of letters, \
         digits, `-`, `_`, `.` and `/`",
        path.display()
    )]
    BadName { path: PathBuf, name: String },
    /// The registry refused it (a plugin of that name exists).
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// The process's WASM engine and its epoch ticker. Created once, when the first `.wasm`
/// plugin is found; every plugin and instance shares it. Cloning is cheap; the ticker stops
/// when the last clone (held by the runtime's owner and every loaded plugin) is dropped.
#[derive(Clone)]
pub struct WasmRuntime {
    /// Shared by every plugin so that the ticker lives as long as any of them.
    inner: Arc<RuntimeInner>,
}

/// The engine and what keeps its epoch moving.
struct RuntimeInner {
    /// Compiles and runs every plugin; configured once (see [`WasmRuntime::new`]).
    engine: Engine,
    /// Tells the ticker to stop.
    stop: Arc<AtomicBool>,
    /// The ticker thread, joined on drop.
    ticker: Option<JoinHandle<()>>,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

impl WasmRuntime {
    /// The engine with the features plugins need and nothing else: the component model and
    /// epoch interruption for deadlines; no memory64, multi-memory, tail calls, relaxed
    /// SIMD, stack switching or custom page sizes (threads, GC and exceptions are not even
    /// compiled in: the workspace builds wasmtime without those features). Starts
    /// the ticker thread that advances the epoch every [`EPOCH_TICK`].
    pub fn new() -> Result<WasmRuntime, WasmLoadError> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .wasm_memory64(false)
            .wasm_multi_memory(false)
            .wasm_tail_call(false)
            .wasm_relaxed_simd(false)
            .wasm_gc(false)
            .wasm_stack_switching(false)
            .wasm_custom_page_sizes(false)
            .wasm_wide_arithmetic(false);
        let engine = Engine::new(&config).map_err(|e| WasmLoadError::Engine {
            reason: format!("{e:#}"),
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("wasm-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| WasmLoadError::Engine {
                    reason: format!("cannot start the epoch ticker thread: {e}"),
                })?
        };
        Ok(WasmRuntime {
            inner: Arc::new(RuntimeInner {
                engine,
                stop,
                ticker: Some(ticker),
            }),
        })
    }

    /// The engine, for compiling components and creating stores.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// A store for one instance serving `state.owner`, with the memory limit and a
    /// deadline of `deadline` already set (instantiation runs the plugin's constructors).
    pub(crate) fn store(&self, state: CallState, deadline: Duration) -> Store<CallState> {
        let mut store = Store::new(self.engine(), state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(deadline_ticks(deadline));
        store
    }
}

/// The epoch ticks that cover `deadline`, rounded up, plus one for the tick in progress.
pub(crate) fn deadline_ticks(deadline: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos();
    let ticks = deadline.as_nanos().div_ceil(tick);
    u64::try_from(ticks).unwrap_or(u64::MAX - 1) + 1
}

/// What a trapped call is reported as, from the trap and what the store saw during it.
pub(crate) fn trap_cause(error: &wasmtime::Error, state: &CallState, deadline: Duration) -> String {
    if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return format!("ran past its deadline of {deadline:?}");
    }
    if state.limiter.exceeded {
        return format!("exceeded its memory limit of {} MiB", MEMORY_LIMIT >> 20);
    }
    if let Some(message) = &state.panic_message {
        return format!("panicked: {message}");
    }
    let text = format!("{error:#}");
    if text.contains("unknown import") {
        format!("trapped: {text} (WASM plugins get no WASI; use the vigil:plugin/host imports)")
    } else {
        format!("trapped: {text}")
    }
}

/// A compiled, described WASM plugin, before or besides registration (benchmarks and
/// `vigil plugin test` use it directly).
#[derive(Clone)]
pub enum WasmPlugin {
    /// A component of the `resource-agent` world.
    Agent(Arc<WasmAgent>),
    /// A component of the `stonith-device` world.
    Stonith(Arc<WasmStonithFactory>),
}

impl WasmPlugin {
    /// The plugin's identity, as it will be listed.
    pub fn info(&self) -> &PluginInfo {
        match self {
            WasmPlugin::Agent(agent) => agent.info(),
            WasmPlugin::Stonith(factory) => {
                vigil_plugin_api::StonithFactory::info(factory.as_ref())
            }
        }
    }
}

/// Loads the component at `path` and registers it: a resource agent or a STONITH plugin,
/// with origin `PluginOrigin::Wasm`. Returns what was registered.
pub fn load(
    runtime: &WasmRuntime,
    path: &Path,
    registry: &mut Registry,
) -> Result<PluginInfo, WasmLoadError> {
    let plugin = compile(runtime, path)?;
    let info = plugin.info().clone();
    match plugin {
        WasmPlugin::Agent(agent) => registry.add_agent(info.clone(), agent)?,
        WasmPlugin::Stonith(factory) => registry.add_stonith(factory)?,
    }
    tracing::info!(
        kind = %info.kind,
        name = %info.name,
        path = %path.display(),
        "loaded WASM plugin"
    );
    Ok(info)
}

/// Compiles the component at `path`, checks which world it implements and what it
/// imports, builds its template and asks it who it is; registers nothing.
pub fn compile(runtime: &WasmRuntime, path: &Path) -> Result<WasmPlugin, WasmLoadError> {
    let bytes = std::fs::read(path).map_err(|source| WasmLoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    check_component_header(path, &bytes)?;
    let engine = runtime.engine();
    let component = Component::from_binary(engine, &bytes).map_err(|e| WasmLoadError::Compile {
        path: path.to_path_buf(),
        reason: format!("{e:#}"),
    })?;
    let component_type = component.component_type();
    for (import, _) in component_type.imports(engine) {
        if !import.starts_with("wasi:") && !PROVIDED_IMPORTS.contains(&import) {
            return Err(WasmLoadError::UnsupportedImport {
                path: path.to_path_buf(),
                import: import.to_string(),
            });
        }
    }
    let exports: Vec<String> = component_type
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let mut linker = Linker::<CallState>::new(engine);
    let link_error = |e: wasmtime::Error| WasmLoadError::Link {
        path: path.to_path_buf(),
        reason: format!("{e:#}"),
    };
    if exports.iter().any(|e| e == AGENT_EXPORT) {
        bindings::agent::ResourceAgent::add_to_linker::<CallState, HasSelf<CallState>>(
            &mut linker,
            |state| state,
        )
        .map_err(link_error)?;
        linker
            .define_unknown_imports_as_traps(&component)
            .map_err(link_error)?;
        let pre = linker.instantiate_pre(&component).map_err(link_error)?;
        let pre = bindings::agent::ResourceAgentPre::new(pre).map_err(link_error)?;
        let agent = WasmAgent::describe(runtime.clone(), path, pre)?;
        Ok(WasmPlugin::Agent(Arc::new(agent)))
    } else if exports.iter().any(|e| e == STONITH_EXPORT) {
        bindings::stonith::StonithDevice::add_to_linker::<CallState, HasSelf<CallState>>(
            &mut linker,
            |state| state,
        )
        .map_err(link_error)?;
        linker
            .define_unknown_imports_as_traps(&component)
            .map_err(link_error)?;
        let pre = linker.instantiate_pre(&component).map_err(link_error)?;
        let pre = bindings::stonith::StonithDevicePre::new(pre).map_err(link_error)?;
        let factory = WasmStonithFactory::describe(runtime.clone(), path, pre)?;
        Ok(WasmPlugin::Stonith(Arc::new(factory)))
    } else {
        Err(WasmLoadError::UnknownWorld {
            path: path.to_path_buf(),
            exports: exports.join(", "),
        })
    }
}

/// Refuses, with a message that says what the file is, anything but a component: a core
/// module (built for `wasm32-unknown-unknown`, or not turned into a component) or a file
/// that is not WebAssembly at all.
fn check_component_header(path: &Path, bytes: &[u8]) -> Result<(), WasmLoadError> {
    let refuse = |reason: &str| WasmLoadError::NotAComponent {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(refuse(
            "it is not WebAssembly at all (no `\\0asm` header); a WASM plugin is the .wasm \
             file `cargo build --target wasm32-wasip2` makes",
        ));
    }
    match bytes[4..8] {
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => Err(refuse(
            "it is a core WebAssembly module; build the plugin with `cargo build --target \
             wasm32-wasip2` (which makes a component) using vigil-sdk's export macros",
        )),
        _ => Err(refuse(
            "its WebAssembly version/layer is not one wasmtime 48 knows",
        )),
    }
}

/// Whether `name` can be used in `haresources` and YAML: no spaces, no `::`.
pub(crate) fn valid_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_whole_ticks_plus_one() {
        assert_eq!(deadline_ticks(Duration::ZERO), 1);
        assert_eq!(deadline_ticks(Duration::from_millis(10)), 2);
        assert_eq!(deadline_ticks(Duration::from_millis(11)), 3);
        assert_eq!(deadline_ticks(Duration::from_secs(20)), 2001);
    }

    #[test]
    fn files_that_are_not_components_are_told_apart() {
        let path = Path::new("x.wasm");
        let text = check_component_header(path, b"#!/bin/sh\nexit 0\n").unwrap_err();
        assert!(
            text.to_string().contains("not WebAssembly at all"),
            "{text}"
        );
        let core = check_component_header(path, b"\0asm\x01\0\0\0").unwrap_err();
        assert!(
            core.to_string().contains("core WebAssembly module"),
            "{core}"
        );
        check_component_header(path, b"\0asm\x0d\0\x01\0").unwrap();
    }

    #[test]
    fn plugin_names_must_fit_configuration() {
        assert!(valid_plugin_name("wasm-vip"));
        assert!(valid_plugin_name("external/foo"));
        assert!(!valid_plugin_name(""));
        assert!(!valid_plugin_name("a::b"));
        assert!(!valid_plugin_name("a b"));
    }
}
