//! The command line: `vigil <command>` and the Heartbeat tools the binary answers to.
//!
//! Owns argument parsing, dispatch on the program name (argv[0]), and turning errors into
//! messages and exit codes. It holds no cluster logic: commands call `config`, `runtime` and
//! the API client.

mod cl_status;
mod demo;
mod events;
mod getopt;
mod meatclient;
mod plugin;
mod standby;
mod status;
mod stonith;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{self, ClusterConfig};
use crate::runtime::{self, DaemonOptions};
use vigil_plugin_api::Registry;

#[derive(Debug, Parser)]
#[command(
    name = "vigil",
    version,
    about = "High-availability cluster daemon, successor to Heartbeat 3"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the cluster configuration comes from.
#[derive(Debug, clap::Args)]
#[group(required = false, multiple = false)]
struct ConfigArgs {
    /// A Heartbeat configuration directory (ha.cf, authkeys, haresources).
    #[arg(long, value_name = "DIR")]
    ha_dir: Option<PathBuf>,
    /// A vigil YAML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon in the foreground (logs to stderr; SIGTERM stops it cleanly).
    Run {
        #[command(flatten)]
        source: ConfigArgs,
        /// Directory for hb_generation and hb_uuid (default: from the configuration).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// API socket path (default: from the configuration).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Show membership, links and drop counters of the running daemon.
    Status {
        /// Print one JSON object instead of tables.
        #[arg(long)]
        json: bool,
        /// API socket path (default: $VIGIL_SOCKET, else /run/vigil/vigil.sock).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Follow the running daemon's ordered event stream (node and link changes, warnings).
    Events {
        /// Print JSON lines instead of text.
        #[arg(long)]
        json: bool,
        /// API socket path (default: $VIGIL_SOCKET, else /run/vigil/vigil.sock).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Give resource groups to the other node(s): all (default), local, foreign or failback.
    Standby {
        set: Option<String>,
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Take resource groups over from the other node(s): all (default), local, foreign or failback.
    Takeover {
        set: Option<String>,
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Check or convert a configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Run a three-node cluster on loopback and show a node dying (no root needed).
    Demo,
    /// cluster-glue's `stonith` tool: list, describe, query and reset STONITH devices
    /// (`vigil stonith -h` for its options).
    // Listed here for `vigil --help`; `main` hands its arguments over before clap parses them.
    #[command(disable_help_flag = true)]
    Stonith {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// List every plugin (built-in, native, WASM) and any plugin file that was refused.
    /// Plugin directories come from $VIGIL_PLUGIN_PATH (`:`-separated), else
    /// /usr/lib/vigil/plugins.
    Plugins,
    /// Work with one plugin.
    Plugin {
        #[command(subcommand)]
        action: PluginAction,
    },
    /// The operator's side of the meatware STONITH device (as `meatclient`).
    Meatware {
        #[command(subcommand)]
        action: MeatwareAction,
    },
}

#[derive(Debug, Subcommand)]
enum MeatwareAction {
    /// Confirm to the waiting meatware device that NODE was power-cycled by hand.
    Confirm {
        node: String,
        /// Wait for a device to ask, printing a dot a second.
        #[arg(short = 'w', long)]
        wait: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PluginAction {
    /// Run the SDK's conformance checks (in the spirit of ocf-tester) on a resource agent:
    /// a plugin file (.so, .wasm), a built-in agent's name, an OCF agent's script
    /// (<root>/resource.d/<provider>/<type>) or an LSB init script. It really starts and
    /// stops the resource. Exit 0: all passed; 1: a check failed; 2: bad request.
    Test {
        /// The agent to test.
        target: String,
        /// Instance parameters, NAME=VALUE.
        params: Vec<String>,
        /// Grant a WASM agent a capability, as the YAML `grant:` keys: log,
        /// addresses=IFACE, arp=IFACE, commands=/PATH, read=/PATH (repeatable).
        #[arg(long = "grant", value_name = "KIND[=VALUE]")]
        grants: Vec<String>,
        /// A parameter change validate-all must refuse, NAME=VALUE (repeatable; each is
        /// applied alone over the instance parameters).
        #[arg(long, value_name = "NAME=VALUE")]
        bad: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Validate a configuration; prints what was read, or the first error with file:line.
    Check {
        #[command(flatten)]
        source: ConfigArgs,
    },
    /// Print the YAML equivalent of a configuration.
    Convert {
        #[command(flatten)]
        source: ConfigArgs,
    },
}

/// Entry point for the binary: dispatches on the program name, then on the command.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let program = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("vigil")
        .to_string();
    if program == "hb_standby" || program == "hb_takeover" {
        let direction = if program == "hb_standby" {
            standby::Direction::Standby
        } else {
            standby::Direction::Takeover
        };
        let set = args.get(1).map(|a| a.to_string_lossy().into_owned());
        return standby::run(direction, set.as_deref(), None, true);
    }
    let rest_args = || -> Vec<String> {
        args.iter()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    };
    if program == "stonith" {
        return stonith::main(&program, &rest_args());
    }
    if program == "meatclient" {
        return meatclient::main(&program, &rest_args());
    }
    // `vigil stonith` gets its arguments raw (`--` and `-h` included), before clap sees them.
    if args.get(1).is_some_and(|a| a == "stonith") {
        return stonith::main("vigil stonith", &rest_args()[1..]);
    }
    if program == "cl_status" {
        let rest: Vec<String> = args
            .iter()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return cl_status::main(&rest);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run_command(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vigil: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_command(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run {
            source,
            state_dir,
            socket,
        } => {
            init_logging();
            let plugins = crate::registry::load();
            let (config, ha_dir) = load(&source, &plugins.registry)?;
            let node_name = config::local_node_name(&config, ha_dir.as_deref())?;
            for (directive, what) in &config.ignored_directives {
                tracing::info!(%directive, "accepted for compatibility, no effect here: {what}");
            }
            let socket = socket.unwrap_or_else(|| config.api_socket.clone());
            let run_directory = socket.parent().unwrap_or(Path::new("/run/vigil"));
            let registry = crate::registry::for_node_with(run_directory, &plugins.registry);
            let resources = crate::resources::resolve_groups(&config, &node_name, &registry)?;
            let fence_device = crate::fencing::open_for_node(&config, &node_name, &registry)?;
            if let Some(device) = &fence_device {
                let status = device.device.lock().map(|mut d| d.status());
                match status {
                    Ok(Ok(())) => tracing::info!(device = %device.device_type, "STONITH device OK"),
                    Ok(Err(error)) => {
                        tracing::warn!(device = %device.device_type, %error, "STONITH device not accessible")
                    }
                    Err(_) => {}
                }
            }
            let options = DaemonOptions {
                resources,
                fence_device,
                registry,
                state_dir: state_dir.unwrap_or_else(|| config.state_dir.clone()),
                socket,
                node_name,
                config,
            };
            runtime::run(options)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { json, socket } => status::run(json, socket.as_deref()),
        Command::Events { json, socket } => events::run(json, socket.as_deref()),
        Command::Standby { set, socket } => Ok(standby::run(
            standby::Direction::Standby,
            set.as_deref(),
            socket.as_deref(),
            false,
        )),
        Command::Takeover { set, socket } => Ok(standby::run(
            standby::Direction::Takeover,
            set.as_deref(),
            socket.as_deref(),
            false,
        )),
        Command::Config { action } => match action {
            ConfigAction::Check { source } => {
                let plugins = crate::registry::load();
                let registry = &plugins.registry;
                let (config, ha_dir) = load(&source, registry)?;
                // Resources are resolved too, so an unknown agent or a script that cannot
                // run is refused here, naming its haresources line. The node name only
                // fills HA_CURHOST, so any configured node does when this is not one.
                let node = config::local_node_name(&config, ha_dir.as_deref())
                    .ok()
                    .or_else(|| config.nodes.first().cloned())
                    .unwrap_or_default();
                crate::resources::resolve_groups(&config, &node, registry)?;
                for line in &config.stonith {
                    crate::fencing::open(line, registry)?;
                }
                println!(
                    "{}: OK: {} node(s) ({}), {} medium/media, auth {} (slot {}), keepalive {:?}, deadtime {:?}, warntime {:?}, initdead {:?}, {} resource group(s)",
                    config.source,
                    config.nodes.len(),
                    config.nodes.join(" "),
                    config.media.len(),
                    config.auth.outbound().name(),
                    config.auth.outbound_slot(),
                    config.timing.keepalive,
                    config.timing.deadtime,
                    config.timing.warntime,
                    config.timing.initdead,
                    config.resource_groups.len(),
                );
                Ok(ExitCode::SUCCESS)
            }
            ConfigAction::Convert { source } => {
                let (config, _) = load(&source, &crate::registry::load().registry)?;
                print!("{}", config::to_yaml(&config));
                Ok(ExitCode::SUCCESS)
            }
        },
        Command::Demo => demo::run(),
        Command::Plugins => Ok(plugin::list(&crate::registry::load())),
        Command::Plugin {
            action:
                PluginAction::Test {
                    target,
                    params,
                    grants,
                    bad,
                },
        } => Ok(plugin::test(&plugin::TestRequest {
            target,
            params,
            grants,
            bad,
        })),
        Command::Stonith { args } => Ok(stonith::main("vigil stonith", &args)),
        Command::Meatware {
            action: MeatwareAction::Confirm { node, wait },
        } => Ok(meatclient::confirm(&node, wait)),
    }
}

/// Default Heartbeat configuration directory, used when neither flag is given and no
/// `/etc/vigil/cluster.yaml` exists.
const DEFAULT_HA_DIR: &str = "/etc/ha.d";
/// Default native configuration file.
const DEFAULT_YAML: &str = "/etc/vigil/cluster.yaml";

/// Loads the configuration named by the flags (or the defaults); returns the ha-dir too,
/// since the node name may come from its `nodeinfo`.
fn load(
    source: &ConfigArgs,
    registry: &Registry,
) -> anyhow::Result<(ClusterConfig, Option<PathBuf>)> {
    let yaml = match (&source.config, &source.ha_dir) {
        (Some(file), _) => Some(file.clone()),
        (None, Some(_)) => None,
        (None, None) => Some(PathBuf::from(DEFAULT_YAML)).filter(|p| p.exists()),
    };
    if let Some(file) = yaml {
        let config = config::load_yaml(&file, registry)
            .with_context(|| format!("configuration {} refused", file.display()))?;
        return Ok((config, None));
    }
    let dir = source
        .ha_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_HA_DIR));
    let config = config::load_ha_dir(&dir, registry)
        .with_context(|| format!("configuration in {} refused", dir.display()))?;
    Ok((config, Some(dir)))
}

fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("VIGIL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
