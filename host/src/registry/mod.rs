//! Every plugin this process can use, of every origin, registered into one [`Registry`].
//!
//! Owns gathering the built-in plugins and loading the native libraries (`*.so`) and WASM
//! components (`*.wasm`) found in the plugin directories, in file-name order so that a
//! listing and a duplicate name always resolve the same way. A file that cannot be loaded is
//! refused with the reason and the others still load: one bad plugin must not stop a node
//! from joining its cluster, and a resource that names it is refused later with that reason.
//! How a library or a component is loaded belongs to [`native`] and [`crate::wasm`]; this
//! module only finds files and collects outcomes.

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use vigil_agents::AgentSettings;
use vigil_plugin_api::{PluginInfo, Registry};
use vigil_stonith::StonithSettings;

use crate::wasm::WasmRuntime;

pub mod native;

/// The environment variable listing plugin directories, separated by `:`. It is read by
/// every personality of the binary (`vigil run`, `stonith`, `vigil plugins`), including the
/// ones whose command line must stay cluster-glue's.
pub const PLUGIN_PATH_ENV: &str = "VIGIL_PLUGIN_PATH";

/// Where plugins are looked for when [`PLUGIN_PATH_ENV`] is not set.
pub const DEFAULT_PLUGIN_DIR: &str = "/usr/lib/vigil/plugins";

/// A plugin file that was found but not loaded, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedPlugin {
    /// The file (or directory) refused.
    pub path: PathBuf,
    /// What was wrong, for the operator.
    pub reason: String,
}

impl fmt::Display for RefusedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// What loading the plugin directories gave.
#[derive(Clone, Default)]
pub struct LoadedPlugins {
    /// Built-in plugins and every plugin that loaded.
    pub registry: Registry,
    /// Files that were refused, in the order they were met.
    pub refused: Vec<RefusedPlugin>,
}

/// A registry holding every built-in plugin, with agents keeping their runtime files under
/// the default `/run/vigil`. Plugin directories are not read: this is for tests and tools
/// that must not depend on what is installed.
pub fn builtin() -> Registry {
    for_node(&AgentSettings::default().run_directory)
}

/// A registry holding every built-in plugin, with agents keeping their runtime files under
/// `run_directory`, this node's own (the directory of its API socket).
pub fn for_node(run_directory: &Path) -> Registry {
    let mut registry = Registry::new();
    vigil_media::register(&mut registry);
    vigil_agents::register(
        &mut registry,
        &AgentSettings {
            run_directory: run_directory.to_path_buf(),
        },
    );
    vigil_stonith::register(&mut registry, &StonithSettings::default());
    registry
}

/// Every built-in plugin plus those in the plugin directories ([`plugin_path`]), each
/// refused file logged as an error. What the daemon and the command-line tools use.
pub fn load() -> LoadedPlugins {
    let mut registry = builtin();
    let refused = load_directories(&mut registry, &plugin_path());
    for refusal in &refused {
        tracing::error!(path = %refusal.path.display(), "plugin refused: {}", refusal.reason);
    }
    LoadedPlugins { registry, refused }
}

/// The built-ins set up for this node (`run_directory`) with the plugins already loaded into
/// `loaded`, which was read before the node's run directory was known.
pub fn for_node_with(run_directory: &Path, loaded: &Registry) -> Registry {
    let mut registry = for_node(run_directory);
    registry
        .add_loaded_from(loaded)
        .expect("plugins that loaded beside the built-ins once do so again");
    registry
}

/// The plugin directories: [`PLUGIN_PATH_ENV`] if set (empty entries ignored), else
/// [`DEFAULT_PLUGIN_DIR`].
pub fn plugin_path() -> Vec<PathBuf> {
    match std::env::var_os(PLUGIN_PATH_ENV) {
        Some(value) => std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        None => vec![PathBuf::from(DEFAULT_PLUGIN_DIR)],
    }
}

/// Loads every `*.so` and `*.wasm` of `directories` into `registry`, directory by directory
/// and by file name within one; returns what was refused. The default directory may be
/// absent; a directory the operator named and that cannot be read is refused.
pub fn load_directories(registry: &mut Registry, directories: &[PathBuf]) -> Vec<RefusedPlugin> {
    let mut refused = Vec::new();
    for directory in directories {
        let entries = match fs::read_dir(directory) {
            Ok(entries) => entries,
            Err(error)
                if error.kind() == std::io::ErrorKind::NotFound
                    && directory == Path::new(DEFAULT_PLUGIN_DIR) =>
            {
                continue;
            }
            Err(error) => {
                refused.push(RefusedPlugin {
                    path: directory.clone(),
                    reason: format!("cannot read the plugin directory: {error}"),
                });
                continue;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| plugin_file_kind(path).is_some())
            .collect();
        files.sort();
        for path in files {
            if let Err(reason) = load_file(registry, &path) {
                refused.push(RefusedPlugin { path, reason });
            }
        }
    }
    return_compiler_memory();
    refused
}

/// Gives back to the system the heap that compiling WASM components used and freed.
/// Cranelift's working memory is tens of megabytes that glibc's allocator would otherwise
/// keep for the daemon's whole life, counted in its resident size though never used again.
fn return_compiler_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory at the top of glibc's heaps; it has no
    // preconditions and never touches memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The two kinds of plugin file, told apart by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginFileKind {
    /// A native `cdylib` (`.so`).
    Native,
    /// A WASM component (`.wasm`).
    Wasm,
}

/// The kind of plugin `path` names by its extension; other files in a plugin directory
/// (a README, a configuration) are not plugins and are left alone.
pub fn plugin_file_kind(path: &Path) -> Option<PluginFileKind> {
    match path.extension().and_then(OsStr::to_str) {
        Some("so") => Some(PluginFileKind::Native),
        Some("wasm") => Some(PluginFileKind::Wasm),
        _ => None,
    }
}

/// Loads one plugin file into `registry`, whatever its origin.
pub fn load_file(registry: &mut Registry, path: &Path) -> Result<PluginInfo, String> {
    match plugin_file_kind(path) {
        Some(PluginFileKind::Native) => native::load(path, registry).map_err(|e| e.to_string()),
        Some(PluginFileKind::Wasm) => {
            let runtime = wasm_runtime()?;
            crate::wasm::load(runtime, path, registry).map_err(|e| e.to_string())
        }
        None => Err(
            "not a plugin file: expected a native library (.so) or a WASM component \
                     (.wasm)"
                .to_string(),
        ),
    }
}

/// The process's one WASM engine, made the first time a component is loaded so that a node
/// without WASM plugins never pays for it.
fn wasm_runtime() -> Result<&'static WasmRuntime, String> {
    static RUNTIME: OnceLock<Result<WasmRuntime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| WasmRuntime::new().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| format!("the WASM engine could not start: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_so_and_wasm_files_are_plugins() {
        assert_eq!(
            plugin_file_kind(Path::new("/x/libfoo.so")),
            Some(PluginFileKind::Native)
        );
        assert_eq!(
            plugin_file_kind(Path::new("/x/vip.wasm")),
            Some(PluginFileKind::Wasm)
        );
        assert_eq!(plugin_file_kind(Path::new("/x/README")), None);
        assert_eq!(plugin_file_kind(Path::new("/x/libfoo.so.1")), None);
    }

    #[test]
    fn a_named_directory_that_is_missing_is_refused_and_the_default_one_is_not() {
        let mut registry = Registry::new();
        let missing = PathBuf::from("/nonexistent/vigil-plugins");
        let refused = load_directories(&mut registry, std::slice::from_ref(&missing));
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].path, missing);
        assert!(
            refused[0]
                .reason
                .contains("cannot read the plugin directory")
        );
        if !Path::new(DEFAULT_PLUGIN_DIR).exists() {
            let refused = load_directories(&mut registry, &[PathBuf::from(DEFAULT_PLUGIN_DIR)]);
            assert!(refused.is_empty());
        }
    }

    #[test]
    fn a_file_that_is_no_plugin_is_refused_and_the_rest_still_load() {
        let dir = std::env::temp_dir().join(format!("vigil-plugindir-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("broken.so"), b"not an ELF file").unwrap();
        fs::write(dir.join("broken.wasm"), b"not a component").unwrap();
        fs::write(dir.join("README"), b"plugins go here").unwrap();
        let mut registry = for_node(&dir);
        let before = registry.list().len();
        let refused = load_directories(&mut registry, std::slice::from_ref(&dir));
        let paths: Vec<&Path> = refused.iter().map(|r| r.path.as_path()).collect();
        assert_eq!(
            paths,
            [
                dir.join("broken.so").as_path(),
                dir.join("broken.wasm").as_path()
            ]
        );
        assert_eq!(registry.list().len(), before);
        fs::remove_dir_all(&dir).unwrap();
    }
}
