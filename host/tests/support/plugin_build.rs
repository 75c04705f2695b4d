//! Builds the plugin crates the tests load: the SDK's examples (`examples/`) and the faulty
//! plugins that exist only to be refused or to misbehave (`host/tests/plugins/`).
//!
//! Owns running `cargo build` on those two workspaces, each into a target directory of its
//! own under the main target directory (so a build never waits on the lock of the `cargo
//! test` that runs us), adding the `wasm32-wasip2` target with rustup first when a WASM
//! plugin is asked for, and finding the built artifact. It must not build anything else or
//! write outside the target directory. Builds are serialised within a test binary; cargo's
//! own lock serialises them across binaries.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The target WASM plugins are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// One build at a time per test binary: parallel tests asking for the same plugin would
/// otherwise queue on cargo's lock anyway, and a failed `rustup target add` is clearer once.
static BUILD: Mutex<()> = Mutex::new(());

/// Which of the two plugin workspaces a crate lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginWorkspace {
    /// `examples/`: the plugins a third party would copy.
    Examples,
    /// `host/tests/plugins/`: plugins made to be refused or to misbehave.
    TestPlugins,
}

impl PluginWorkspace {
    fn manifest(self) -> PathBuf {
        let host = Path::new(env!("CARGO_MANIFEST_DIR"));
        match self {
            PluginWorkspace::Examples => host.join("../examples/Cargo.toml"),
            PluginWorkspace::TestPlugins => host.join("tests/plugins/Cargo.toml"),
        }
    }

    fn target_dir(self) -> PathBuf {
        let name = match self {
            PluginWorkspace::Examples => "plugin-examples",
            PluginWorkspace::TestPlugins => "test-plugins",
        };
        main_target_dir().join(name)
    }
}

/// The main workspace's target directory: the test binary runs from `<target>/debug/deps`.
fn main_target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    exe.ancestors()
        .nth(3)
        .expect("the test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// What a plugin is built as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginTarget {
    /// A native library (`lib<name>.so`) for this machine.
    Native,
    /// A WASM component (`<name>.wasm`) for [`WASM_TARGET`].
    Wasm,
}

/// Builds `package` of `workspace` in debug as a native library; returns the `.so`'s path.
pub fn native_plugin(workspace: PluginWorkspace, package: &str) -> PathBuf {
    build_plugin(workspace, package, PluginTarget::Native, false)
}

/// Builds `package` of `workspace` in debug as a WASM component; returns the `.wasm`'s path.
pub fn wasm_plugin(workspace: PluginWorkspace, package: &str) -> PathBuf {
    build_plugin(workspace, package, PluginTarget::Wasm, false)
}

/// Builds `package` of `workspace` for `target`, optimised when `release` (what benchmarks
/// measure), and returns the artifact's path.
pub fn build_plugin(
    workspace: PluginWorkspace,
    package: &str,
    target: PluginTarget,
    release: bool,
) -> PathBuf {
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--quiet", "-p", package, "--manifest-path"])
        .arg(workspace.manifest())
        .arg("--target-dir")
        .arg(workspace.target_dir());
    if release {
        command.arg("--release");
    }
    let mut out_dir = workspace.target_dir();
    let file = match target {
        PluginTarget::Native => format!("lib{}.so", package.replace('-', "_")),
        PluginTarget::Wasm => {
            add_rustup_target(WASM_TARGET);
            command.args(["--target", WASM_TARGET]);
            out_dir.push(WASM_TARGET);
            format!("{}.wasm", package.replace('-', "_"))
        }
    };
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {package}: {e}"));
    assert!(
        output.status.success(),
        "building plugin {package} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = out_dir
        .join(if release { "release" } else { "debug" })
        .join(file);
    assert!(
        path.is_file(),
        "cargo built {package} but {path:?} is missing"
    );
    path
}

/// `rustup target add` is quick when the target is there already, and is what makes a fresh
/// machine with only the Rust toolchain able to build WASM plugins.
fn add_rustup_target(target: &str) {
    let output = Command::new("rustup")
        .args(["target", "add", target])
        .output()
        .unwrap_or_else(|e| panic!("cannot run rustup to add the {target} target: {e}"));
    assert!(
        output.status.success(),
        "rustup target add {target} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
