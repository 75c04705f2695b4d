//! Feeds arbitrary text to the configuration parsers an operator's files go through: ha.cf,
//! authkeys and haresources (the input split in three at NUL bytes) and the YAML form. Any
//! outcome but a panic is fine: bad files must come back as errors.

#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use vigil::config::{self, HaFiles};
use vigil_plugin_api::Registry;

static REGISTRY: LazyLock<Registry> = LazyLock::new(vigil::registry::builtin);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\0');
    let ha_cf = parts.next().unwrap_or("");
    let authkeys = parts.next().unwrap_or("auth 1\n1 crc\n");
    let haresources = parts.next();
    let files = HaFiles {
        dir: Path::new("/etc/ha.d"),
        ha_cf,
        authkeys,
        haresources,
    };
    if let Ok(parsed) = config::parse_ha_files(&files, &REGISTRY) {
        let _ = config::to_yaml(&parsed);
    }
    let _ = config::parse_yaml(text, Path::new("cluster.yaml"), &REGISTRY);
});
