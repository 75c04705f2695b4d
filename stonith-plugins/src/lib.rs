//! vigil's built-in STONITH devices, each behaving as cluster-glue's device of the same name
//! so that `stonith_host` lines, `stonith -t …` commands and operators' habits carry over.
//!
//! A device resets the hosts it controls when asked; it never decides whom to fence or when,
//! and keeps no retry policy (the daemon's failover machine and fencing runner do). Unlike
//! cluster-glue, every device here refuses a host it does not control (`S_BADHOST`), so a
//! misconfigured device can never report a reset that did not happen.
//!
//! Modules, each in the same order (parameters, the device, its `StonithDevice` impl, its
//! factory, tests):
//! - [`null`]: pretends to reset the listed hosts; for tests.
//! - [`meatware`]: asks a human to power-cycle the host and waits for `meatclient`'s
//!   confirmation on a FIFO, compatible with cluster-glue's `meatclient` both ways.
//! - [`ssh`]: reboots a listed host through `ssh root@host` and checks it stops answering pings.
//! - [`suicide`]: reboots or powers off this node itself.
//! - [`external`]: runs cluster-glue's `external/*` scripts unchanged, one device type each.
//! - [`rps10`]: WTI's RPS-10M power switch on a serial line.
//! - [`hostlist`]: the `hostlist` parameter and host checks the list-based devices share.
//! - [`device_log`]: how devices tell the operator what they do, at cluster-glue's levels.

pub mod device_log;
pub mod external;
pub mod hostlist;
pub mod meatware;
pub mod null;
pub mod rps10;
pub mod ssh;
pub mod suicide;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vigil_plugin_api::{
    PluginInfo, PluginKind, PluginOrigin, Registry, StonithCode, StonithDevice, StonithError,
    StonithFactory,
};

/// Where devices find and put what they share with the rest of the system. The defaults are
/// Debian's cluster-glue paths, so scripts, FIFOs and `meatclient` meet where they expect;
/// tests point them at their own directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StonithSettings {
    /// Where meatware creates its FIFO `meatware.<host>` (cluster-glue's `HA_VARRUNDIR`,
    /// `/run` on Debian, where Debian's `meatclient` looks for it).
    pub fifo_dir: PathBuf,
    /// How long meatware waits for the operator's confirmation (cluster-glue: 600 s).
    pub meatware_timeout: Duration,
    /// Where `external/NAME` scripts live, one device type per eligible script.
    pub external_dir: PathBuf,
    /// cluster-glue's shared directory, put first on the scripts' `PATH` because they source
    /// `ha_log.sh` from it by name.
    pub glue_shared_dir: PathBuf,
    /// The longest one script or command may run before its process group is killed.
    pub command_timeout: Duration,
    /// What `suicide` runs here, and `ssh` on the remote host, to reset or power off a node.
    pub power_commands: PowerCommands,
}

impl Default for StonithSettings {
    fn default() -> Self {
        Self {
            fifo_dir: PathBuf::from("/run"),
            meatware_timeout: Duration::from_secs(600),
            external_dir: PathBuf::from("/usr/lib/stonith/plugins/external"),
            glue_shared_dir: PathBuf::from("/usr/share/cluster-glue"),
            command_timeout: Duration::from_secs(120),
            power_commands: PowerCommands::default(),
        }
    }
}

/// The shell commands that reboot and power off a node at once, without syncing: a reset
/// must look like a power cut. Debian's cluster-glue uses exactly these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerCommands {
    /// Reboots the node (`/sbin/reboot -nf`).
    pub reboot: String,
    /// Powers the node off (`/sbin/poweroff -nf`).
    pub poweroff: String,
}

impl Default for PowerCommands {
    fn default() -> Self {
        Self {
            reboot: "/sbin/reboot -nf".to_string(),
            poweroff: "/sbin/poweroff -nf".to_string(),
        }
    }
}

/// Registers every built-in device, so `stonith -L` lists them and `stonith -t TYPE` and
/// `stonith_host` lines find them.
pub fn register(registry: &mut Registry, settings: &StonithSettings) {
    let plugins: [Arc<dyn StonithFactory>; 6] = [
        null::factory(),
        rps10::factory(),
        meatware::factory(settings),
        ssh::factory(settings),
        suicide::factory(settings),
        Arc::new(external::ExternalFactory::new(settings)),
    ];
    for factory in plugins {
        registry
            .add_stonith(factory)
            .expect("built-in STONITH plugin names are unique");
    }
}

/// The identity of a device built into this crate, so every plugin reports its origin and
/// version the same way.
fn built_in_device(name: &str, description: &str) -> PluginInfo {
    PluginInfo {
        kind: PluginKind::StonithDevice,
        name: name.to_string(),
        origin: PluginOrigin::BuiltIn,
        version: env!("CARGO_PKG_VERSION").to_string(),
        description: description.to_string(),
    }
}

/// The factory of a plugin that provides exactly one device type: every built-in device but
/// `external`.
struct SingleTypeFactory {
    /// The plugin's identity; its name is the device type.
    info: PluginInfo,
    /// Makes a new unconfigured device with the settings captured at registration.
    make: Box<dyn Fn() -> Box<dyn StonithDevice> + Send + Sync>,
}

impl StonithFactory for SingleTypeFactory {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn types(&self) -> Vec<String> {
        vec![self.info.name.clone()]
    }

    fn create(&self, device_type: &str) -> Result<Box<dyn StonithDevice>, StonithError> {
        if device_type != self.info.name {
            return Err(StonithError::new(
                StonithCode::Oops,
                format!(
                    "the {} plugin provides only the device type `{}`, not `{device_type}`",
                    self.info.name, self.info.name
                ),
            ));
        }
        Ok((self.make)())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_lists_the_built_in_types_and_every_eligible_external_script() {
        let scripts =
            std::env::temp_dir().join(format!("vigil-stonith-lib-{}", std::process::id()));
        std::fs::create_dir_all(&scripts).unwrap();
        external::tests::write_script(&scripts.join("fake"), "exit 0\n", 0o755);
        let settings = StonithSettings {
            external_dir: scripts.clone(),
            ..StonithSettings::default()
        };
        let mut registry = Registry::new();
        register(&mut registry, &settings);
        assert_eq!(
            registry.stonith_types(),
            [
                "external/fake",
                "meatware",
                "null",
                "rps10",
                "ssh",
                "suicide"
            ]
        );
        for name in ["null", "meatware", "rps10", "ssh", "suicide", "external"] {
            let info = registry.stonith_plugin(name).expect("registered").info();
            assert_eq!(info.kind, PluginKind::StonithDevice);
            assert_eq!(info.origin, PluginOrigin::BuiltIn);
            assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        }
        let err = registry.stonith_device("nosuchdevice").err().unwrap();
        assert_eq!(err.code, StonithCode::Oops);
        std::fs::remove_dir_all(&scripts).unwrap();
    }

    #[test]
    fn a_single_type_factory_refuses_other_types() {
        let err = null::factory().create("null/x").err().unwrap();
        assert_eq!(err.code, StonithCode::Oops);
        assert!(null::factory().create("null").is_ok());
    }
}
