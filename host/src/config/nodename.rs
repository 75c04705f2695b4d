//! Which of the configured nodes this machine is.
//!
//! Owns the lookup order Heartbeat uses (a name set in the configuration, else the first
//! line of `nodeinfo`, else `uname -n`), the lower-casing, and the check that the name is
//! a configured node. Reads at most `nodeinfo` and the kernel's host name; writes nothing.

use std::ffi::c_char;
use std::fs;
use std::io;
use std::path::Path;

use super::error::ConfigError;
use super::model::{ClusterConfig, ConfigSource};

/// The local node's name, lower-cased: the YAML `node_name` if set; else, for a
/// Heartbeat directory (`ha_dir`, or the one the configuration came from), the first line of
/// its `nodeinfo` if that file exists; else `uname -n`. It must be one of `config.nodes`.
pub fn local_node_name(
    config: &ClusterConfig,
    ha_dir: Option<&Path>,
) -> Result<String, ConfigError> {
    let (name, from) = match &config.node_name {
        Some(name) => (name.clone(), configured_name_origin(config)),
        None => {
            let dir = ha_dir.or(match &config.source {
                ConfigSource::HaDir(dir) => Some(dir.as_path()),
                ConfigSource::Yaml(_) => None,
            });
            match dir.map(|dir| dir.join("nodeinfo")) {
                Some(path) => match fs::read(&path) {
                    Ok(bytes) => {
                        let origin = format!("{}:1", path.display());
                        (nodeinfo_name(&bytes, &origin)?, origin)
                    }
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {
                        (kernel_host_name()?, "uname -n".to_string())
                    }
                    Err(source) => {
                        return Err(ConfigError::Read {
                            path: path.display().to_string(),
                            source,
                        });
                    }
                },
                None => (kernel_host_name()?, "uname -n".to_string()),
            }
        }
    };
    require_listed(name, from, config)
}

/// Where a name set in the configuration came from, for messages.
fn configured_name_origin(config: &ClusterConfig) -> String {
    match &config.source {
        ConfigSource::Yaml(path) | ConfigSource::HaDir(path) => {
            format!("node_name in {}", path.display())
        }
    }
}

/// The name on the first line of a `nodeinfo` file.
fn nodeinfo_name(bytes: &[u8], origin: &str) -> Result<String, ConfigError> {
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let name = std::str::from_utf8(first_line)
        .map_err(|_| ConfigError::NotUtf8 {
            origin: origin.to_string(),
        })?
        .trim();
    if name.is_empty() {
        return Err(ConfigError::LocalNodeUnknown {
            reason: format!("{origin}: empty line (expected this node's name)"),
        });
    }
    Ok(name.to_string())
}

/// Lower-cases `name` and checks it is one of the configured nodes.
fn require_listed(
    name: String,
    from: String,
    config: &ClusterConfig,
) -> Result<String, ConfigError> {
    let name = name.to_ascii_lowercase();
    if config.nodes.contains(&name) {
        return Ok(name);
    }
    let hint = match &config.source {
        ConfigSource::HaDir(dir) => format!("{}", dir.join("nodeinfo").display()),
        ConfigSource::Yaml(path) => format!("node_name of {}", path.display()),
    };
    Err(ConfigError::LocalNodeNotListed {
        name,
        from,
        nodes: config.nodes.join(", "),
        hint,
    })
}

/// The kernel's host name, as `uname -n` prints it.
fn kernel_host_name() -> Result<String, ConfigError> {
    // SAFETY: `utsname` is a plain C struct of byte arrays, for which all zeros is a valid
    // value.
    let mut names: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `names` is a valid, writable `utsname` for the whole call.
    if unsafe { libc::uname(&mut names) } != 0 {
        return Err(ConfigError::LocalNodeUnknown {
            reason: format!("uname failed: {}", io::Error::last_os_error()),
        });
    }
    let bytes: Vec<u8> = names
        .nodename
        .iter()
        .take_while(|c| **c != 0)
        .map(|c: &c_char| u8::from_ne_bytes(c.to_ne_bytes()))
        .collect();
    String::from_utf8(bytes).map_err(|_| ConfigError::LocalNodeUnknown {
        reason: "the host name from uname is not UTF-8".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::model::{
        AutoFailback, DEFAULT_API_SOCKET, GenerationMethod, HEARTBEAT_HA_DIR, HEARTBEAT_STATE_DIR,
        MsgFormat, Timing,
    };
    use crate::wire::auth::{AuthKeys, AuthMethod};

    fn config(source: ConfigSource, node_name: Option<&str>, nodes: &[&str]) -> ClusterConfig {
        let second = std::time::Duration::from_secs(1);
        ClusterConfig {
            source,
            node_name: node_name.map(str::to_string),
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            timing: Timing {
                keepalive: second,
                deadtime: second * 30,
                warntime: second * 15,
                initdead: second * 30,
                deadping: second * 30,
                max_rexmit_delay: second / 4,
            },
            udp_port: 694,
            media: Vec::new(),
            auth: AuthKeys::new(1, vec![(1, AuthMethod::Crc)]).expect("valid slots"),
            msgfmt: MsgFormat::Classic,
            hopfudge: 1,
            generation_method: GenerationMethod::File,
            auto_failback: AutoFailback::Legacy,
            state_dir: PathBuf::from(HEARTBEAT_STATE_DIR),
            api_socket: PathBuf::from(DEFAULT_API_SOCKET),
            script_dir: PathBuf::from(HEARTBEAT_HA_DIR),
            resource_groups: Vec::new(),
            stonith: Vec::new(),
            parameters: Vec::new(),
            ignored_directives: Vec::new(),
            api_auth: Vec::new(),
            clients: Vec::new(),
            watchdog: None,
            connectivity_failover: None,
        }
    }

    #[test]
    fn a_configured_name_wins_and_must_be_listed() {
        let yaml = ConfigSource::Yaml(PathBuf::from("/etc/vigil/cluster.yaml"));
        let listed = config(yaml.clone(), Some("hb2"), &["hb1", "hb2"]);
        assert_eq!(local_node_name(&listed, None).ok().as_deref(), Some("hb2"));
        let unlisted = config(yaml, Some("hb3"), &["hb1", "hb2"]);
        let err = local_node_name(&unlisted, None).expect_err("hb3 is not a node");
        assert_eq!(
            err.to_string(),
            "local node name `hb3` (from node_name in /etc/vigil/cluster.yaml) is not one of \
             the configured nodes (hb1, hb2); add it to the nodes or set the name in node_name \
             of /etc/vigil/cluster.yaml"
        );
    }

    #[test]
    fn nodeinfo_takes_its_first_line_trimmed() {
        assert_eq!(
            nodeinfo_name(b"  HB1 \r\nignored\n", "nodeinfo:1")
                .ok()
                .as_deref(),
            Some("HB1")
        );
        let err = nodeinfo_name(b"\nhb1\n", "nodeinfo:1").expect_err("empty first line");
        assert_eq!(
            err.to_string(),
            "cannot determine the local node name: nodeinfo:1: empty line (expected this \
             node's name)"
        );
    }

    #[test]
    fn names_are_lower_cased_before_the_check() {
        let cfg = config(
            ConfigSource::HaDir(PathBuf::from("/etc/ha.d")),
            None,
            &["hb1"],
        );
        assert_eq!(
            require_listed("HB1".to_string(), "uname -n".to_string(), &cfg)
                .ok()
                .as_deref(),
            Some("hb1")
        );
        let err = require_listed("Other".to_string(), "uname -n".to_string(), &cfg)
            .expect_err("not listed");
        assert_eq!(
            err.to_string(),
            "local node name `other` (from uname -n) is not one of the configured nodes (hb1); \
             add it to the nodes or set the name in /etc/ha.d/nodeinfo"
        );
    }

    #[test]
    fn the_kernel_host_name_is_readable() {
        let name = kernel_host_name().expect("uname works");
        assert!(!name.is_empty());
        assert!(!name.contains('\0'));
    }
}
