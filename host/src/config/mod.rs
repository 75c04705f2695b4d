//! The typed cluster model, read from Heartbeat's files or from vigil's YAML file.
//!
//! Owns configuration only: reading ha.cf, authkeys and haresources (`--ha-dir`) or the
//! YAML file into one validated [`ClusterConfig`], writing the YAML equivalent for
//! `vigil config convert`, and finding the local node's name. It never opens a socket or
//! starts anything; media lines are only *checked* by their plugins.
//!
//! - `model`: the types and their defaults.
//! - `draft`: Heartbeat's directive rules, shared by both file formats.
//! - `hacf`, `authkeys`, `haresources`: the legacy files' line syntax.
//! - `yaml`: the YAML schema, reader and writer.
//! - `nodename`: which node this machine is.
//!
//! Parsing works on text (`parse_ha_files`, `parse_yaml`), so every rule is testable and
//! fuzzable without files; `load_ha_dir` and `load_yaml` add the file reading and the
//! permission check on files holding keys.

mod authkeys;
mod draft;
mod error;
mod hacf;
mod haresources;
mod model;
mod nodename;
mod values;
mod yaml;

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use vigil_plugin_api::Registry;

use self::draft::Places;
use crate::wire::auth::{AuthKeys, AuthMethod};

pub use error::ConfigError;
pub use model::{
    ApiAuthRule, AutoFailback, ClientProgram, ClusterConfig, ConfigSource, ConnectivityFailover,
    DEFAULT_API_SOCKET, DEFAULT_HOPFUDGE, DEFAULT_UDP_PORT, GenerationMethod, HEARTBEAT_HA_DIR,
    HEARTBEAT_STATE_DIR, MonitorSetting, MsgFormat, ResourceEntry, ResourceGroupConfig,
    StonithConfig, StonithParams, Timing, VIGIL_STATE_DIR,
};
pub use nodename::local_node_name;
pub use yaml::to_yaml;

/// Permission bits that let group or others read a file.
const GROUP_OTHER_READ: u32 = 0o044;

/// The texts of a Heartbeat configuration directory, for [`parse_ha_files`].
#[derive(Debug, Clone, Copy)]
pub struct HaFiles<'a> {
    /// The directory the texts come from (`/etc/ha.d`); messages name files inside it.
    pub dir: &'a Path,
    /// The text of `ha.cf`.
    pub ha_cf: &'a str,
    /// The text of `authkeys`.
    pub authkeys: &'a str,
    /// The text of `haresources`, if the file exists.
    pub haresources: Option<&'a str>,
}

/// Reads a Heartbeat directory unchanged: ha.cf, authkeys (refused if group or others can
/// read it) and haresources if present. The node's state stays in Heartbeat's
/// `/var/lib/heartbeat`, so an upgraded node keeps its uuid and generation.
pub fn load_ha_dir(dir: &Path, registry: &Registry) -> Result<ClusterConfig, ConfigError> {
    let (ha_cf, _) = read_text(&dir.join("ha.cf"))?;
    let authkeys_path = dir.join("authkeys");
    let (authkeys, mode) = read_text(&authkeys_path)?;
    refuse_readable_secrets(&authkeys_path, mode)?;
    let haresources = match read_text(&dir.join("haresources")) {
        Ok((text, _)) => Some(text),
        Err(ConfigError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(err),
    };
    parse_ha_files(
        &HaFiles {
            dir,
            ha_cf: &ha_cf,
            authkeys: &authkeys,
            haresources: haresources.as_deref(),
        },
        registry,
    )
}

/// Reads vigil's YAML file. If it holds md5 or sha1 keys it is refused when group or others
/// can read it, as authkeys is.
pub fn load_yaml(path: &Path, registry: &Registry) -> Result<ClusterConfig, ConfigError> {
    let (text, mode) = read_text(path)?;
    let config = parse_yaml(&text, path, registry)?;
    if holds_keys(&config.auth) {
        refuse_readable_secrets(path, mode)?;
    }
    Ok(config)
}

/// The model of a Heartbeat directory from its files' texts, with every rule of spec §3–§5.1
/// checked. haresources is not read when `crm` is on, as in Heartbeat.
pub fn parse_ha_files(
    files: &HaFiles<'_>,
    registry: &Registry,
) -> Result<ClusterConfig, ConfigError> {
    let name = |file: &str| files.dir.join(file).display().to_string();
    let settings = hacf::parse(files.ha_cf, &name("ha.cf"), registry)?;
    let auth = authkeys::parse(files.authkeys, &name("authkeys"))?;
    let resource_groups = match files.haresources {
        Some(text) if settings.manages_resources => {
            haresources::parse(text, &name("haresources"), &settings.nodes)?
        }
        _ => Vec::new(),
    };
    Ok(settings.into_config(
        ConfigSource::HaDir(files.dir.to_path_buf()),
        None,
        auth,
        resource_groups,
        Places {
            state_dir: PathBuf::from(HEARTBEAT_STATE_DIR),
            api_socket: PathBuf::from(DEFAULT_API_SOCKET),
            script_dir: files.dir.to_path_buf(),
        },
    ))
}

/// The model of a YAML file from its text; `path` names it in messages and in the model.
pub fn parse_yaml(
    text: &str,
    path: &Path,
    registry: &Registry,
) -> Result<ClusterConfig, ConfigError> {
    yaml::parse(text, path, registry)
}

/// Whether any slot carries a key that must stay secret.
fn holds_keys(auth: &AuthKeys) -> bool {
    auth.slots().any(|(_, method)| *method != AuthMethod::Crc)
}

/// Refuses a file holding keys that group or others can read, as Heartbeat does.
fn refuse_readable_secrets(path: &Path, mode: u32) -> Result<(), ConfigError> {
    if mode & GROUP_OTHER_READ != 0 {
        return Err(ConfigError::SecretsReadable {
            path: path.display().to_string(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// A file's text and permission bits, read from one open handle so the mode checked is the
/// mode of the file read.
fn read_text(path: &Path) -> Result<(String, u32), ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut file = File::open(path).map_err(read_error)?;
    let mode = file.metadata().map_err(read_error)?.permissions().mode();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(read_error)?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok((text, mode)),
        Err(err) => {
            let valid = err.utf8_error().valid_up_to();
            let line = err
                .as_bytes()
                .iter()
                .take(valid)
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            Err(ConfigError::NotUtf8 {
                origin: format!("{}:{line}", path.display()),
            })
        }
    }
}
