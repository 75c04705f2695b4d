//! A library that claims the next plugin ABI, to prove the loader reads the version symbol
//! and refuses the mismatch before it calls anything.
//!
//! Its entry point, if ever called, says so on stderr and aborts the process: a test that
//! loads this library can only pass if the loader never calls it.

use vigil_plugin_api::abi::{ABI_VERSION, PluginTable};

/// One more than the ABI this vigil speaks.
#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static vigil_plugin_abi_version: u32 = ABI_VERSION + 1;

/// Must never run: the loader has to stop at the version.
#[unsafe(no_mangle)]
pub extern "C" fn vigil_plugin_entry() -> *const PluginTable {
    eprintln!("native-abi-mismatch: the loader called the entry point of a mismatched library");
    std::process::abort()
}
