//! The node's STONITH device, opened from its configuration line: the device plugin found
//! in the registry, its parameters assigned (named, positional, or from a parameter file)
//! and `configure`d.
//!
//! Used by `vigil run` (which hands the device to the runtime's fencer) and by `vigil config
//! check`. It never resets anything: that is the runtime's fencer, when failover asks.

use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use thiserror::Error;
use vigil_plugin_api::{Registry, StonithCode, StonithDevice, StonithError, positional_params};

use crate::config::{ClusterConfig, StonithConfig, StonithParams};

/// A configured device, shared with the fencer's threads.
#[derive(Clone)]
pub struct FenceDevice {
    /// The device type as configured (`null`, `external/ipmi`), for logs.
    pub device_type: String,
    /// The device; one call at a time.
    pub device: Arc<Mutex<Box<dyn StonithDevice>>>,
}

impl std::fmt::Debug for FenceDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FenceDevice")
            .field("device_type", &self.device_type)
            .finish_non_exhaustive()
    }
}

/// The device line could not become a working device.
#[derive(Debug, Error)]
pub enum FencingError {
    /// The plugin refused the type or the parameters.
    #[error("{origin}: STONITH device `{device_type}`: {source}")]
    Device {
        origin: String,
        device_type: String,
        #[source]
        source: StonithError,
    },
    /// The parameter file of a `stonith` line could not be read.
    #[error("{origin}: STONITH device `{device_type}`: cannot read its parameters from {}: {reason}", path.display())]
    ParamsFile {
        origin: String,
        device_type: String,
        path: PathBuf,
        reason: String,
    },
}

/// The device `node` fences with, configured; `None` when no line applies to it.
pub fn open_for_node(
    config: &ClusterConfig,
    node: &str,
    registry: &Registry,
) -> Result<Option<FenceDevice>, FencingError> {
    let Some(line) = config.stonith_for(node) else {
        return Ok(None);
    };
    let device = open(line, registry)?;
    Ok(Some(FenceDevice {
        device_type: line.device_type.clone(),
        device: Arc::new(Mutex::new(device)),
    }))
}

/// Creates and configures the device of one line.
pub fn open(
    line: &StonithConfig,
    registry: &Registry,
) -> Result<Box<dyn StonithDevice>, FencingError> {
    let refused = |source: StonithError| FencingError::Device {
        origin: line.origin.clone(),
        device_type: line.device_type.clone(),
        source,
    };
    let mut device = registry
        .stonith_device(&line.device_type)
        .map_err(refused)?;
    let names = device.config_names();
    let params = match &line.params {
        StonithParams::Named(named) => named.clone(),
        StonithParams::Line(text) => positional_params(&names, text).map_err(refused)?,
        StonithParams::File(path) => {
            let text = fs::read_to_string(path).map_err(|err| FencingError::ParamsFile {
                origin: line.origin.clone(),
                device_type: line.device_type.clone(),
                path: path.clone(),
                reason: err.to_string(),
            })?;
            let first = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .unwrap_or("");
            positional_params(&names, first).map_err(|source| FencingError::Device {
                origin: format!("{} ({})", line.origin, path.display()),
                device_type: line.device_type.clone(),
                source,
            })?
        }
    };
    if let Some((name, _)) = params.iter().find(|(name, _)| !names.contains(name)) {
        return Err(refused(StonithError::new(
            StonithCode::BadConfig,
            format!(
                "unknown parameter `{name}` (expected {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        )));
    }
    device.configure(&params).map_err(refused)?;
    Ok(device)
}
