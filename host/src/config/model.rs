//! The typed cluster model every other module reads, whichever file it came from.
//!
//! Owns the types and their defaults only. It never reads files and never validates: the
//! front ends (`hacf`, `yaml`) build a model only after every rule has been checked, so a
//! `ClusterConfig` in hand is a usable one.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use vigil_plugin_api::{Grants, MediumSpec};

use crate::wire::auth::AuthKeys;

/// The UDP port of every UDP medium when `udpport` is not given (IANA's `ha-cluster`).
pub const DEFAULT_UDP_PORT: u16 = 694;

/// Heartbeat's `hopfudge` default.
pub const DEFAULT_HOPFUDGE: u8 = 1;

/// Where a drop-in replacement keeps `hb_generation` and `hb_uuid`: Heartbeat's own
/// directory, so the node keeps its identity and generation across the upgrade.
pub const HEARTBEAT_STATE_DIR: &str = "/var/lib/heartbeat";

/// Where a cluster configured in YAML keeps its state unless it says otherwise.
pub const VIGIL_STATE_DIR: &str = "/var/lib/vigil";
/// Heartbeat's configuration directory, where `resource.d` scripts are looked for.
pub const HEARTBEAT_HA_DIR: &str = "/etc/ha.d";

/// The local client socket unless the YAML file says otherwise.
pub const DEFAULT_API_SOCKET: &str = "/run/vigil/vigil.sock";

/// Which file a configuration was read from, so that messages, `config convert` and a
/// reload can find it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A Heartbeat directory holding ha.cf, authkeys and optionally haresources.
    HaDir(PathBuf),
    /// vigil's own YAML file.
    Yaml(PathBuf),
}

impl fmt::Display for ConfigSource {
    /// The directory or file, as an operator would name it in a command.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::HaDir(path) | ConfigSource::Yaml(path) => {
                write!(f, "{}", path.display())
            }
        }
    }
}

/// The liveness timers of spec §1.12, already defaulted and derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How often this node sends its status (`keepalive`).
    pub keepalive: Duration,
    /// Silence after which a node is declared dead (`deadtime`).
    pub deadtime: Duration,
    /// Silence after which a late heartbeat is logged (`warntime`).
    pub warntime: Duration,
    /// The deadtime used until communications are up, to allow slow network start
    /// (`initdead`).
    pub initdead: Duration,
    /// The deadtime of ping nodes (`deadping`).
    pub deadping: Duration,
    /// The longest random delay before answering a retransmission request
    /// (`max_rexmit_delay`).
    pub max_rexmit_delay: Duration,
}

impl Timing {
    /// Heartbeat's `keepalive` default.
    pub const DEFAULT_KEEPALIVE: Duration = Duration::from_millis(1000);
    /// Heartbeat's `deadtime` default.
    pub const DEFAULT_DEADTIME: Duration = Duration::from_millis(30_000);
    /// Heartbeat's `max_rexmit_delay` default.
    pub const DEFAULT_MAX_REXMIT_DELAY: Duration = Duration::from_millis(250);

    /// `warntime` when not given: half the deadtime, in whole milliseconds as Heartbeat
    /// computes it.
    pub fn default_warntime(deadtime: Duration) -> Duration {
        Duration::from_millis(u64::try_from(deadtime.as_millis() / 2).unwrap_or(u64::MAX))
    }

    /// `initdead` when not given, exactly as Heartbeat derives it: the deadtime if above
    /// 10 s, else 12 s if the deadtime is below 6 s, else twice the deadtime.
    pub fn default_initdead(deadtime: Duration) -> Duration {
        if deadtime > Duration::from_secs(10) {
            deadtime
        } else if deadtime < Duration::from_secs(6) {
            Duration::from_secs(12)
        } else {
            deadtime * 2
        }
    }
}

/// Whether outgoing messages carry the inner `auth` field (`msgfmt`, spec §1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MsgFormat {
    /// `classic`: the inner `auth` field is added (Heartbeat's default).
    #[default]
    Classic,
    /// `netstring`: no inner `auth` field.
    Netstring,
}

/// Where the generation number comes from at start (`hbgenmethod`, spec §1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GenerationMethod {
    /// `file`: the number in `hb_generation`, plus one.
    #[default]
    File,
    /// `time`: the current Unix time.
    Time,
}

/// What happens when a group's preferred node comes back (`auto_failback`, spec §5.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoFailback {
    /// Give groups back to their preferred node once both sides are stable.
    On,
    /// Leave groups where they are.
    Off,
    /// Each node requests its own groups at start, without the stability handshake
    /// (Heartbeat's default).
    #[default]
    Legacy,
}

impl AutoFailback {
    /// The word ha.cf and the YAML file use.
    pub fn as_str(self) -> &'static str {
        match self {
            AutoFailback::On => "on",
            AutoFailback::Off => "off",
            AutoFailback::Legacy => "legacy",
        }
    }
}

impl MsgFormat {
    /// The word ha.cf and the YAML file use.
    pub fn as_str(self) -> &'static str {
        match self {
            MsgFormat::Classic => "classic",
            MsgFormat::Netstring => "netstring",
        }
    }
}

impl GenerationMethod {
    /// The word ha.cf and the YAML file use.
    pub fn as_str(self) -> &'static str {
        match self {
            GenerationMethod::File => "file",
            GenerationMethod::Time => "time",
        }
    }
}

/// One resource group (spec §5.1): its preferred node, the nodes that may run it and its
/// resources. haresources gives only the node and the tokens; the rest is vigil's YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceGroupConfig {
    /// The node that owns the group when it is up (lower-cased; one of the nodes).
    pub node: String,
    /// The nodes that may run the group, in order of preference, the preferred node first
    /// (lower-cased, each a configured node, no repeats). Empty means the default order:
    /// the preferred node, then the other nodes in configuration order after it, wrapping
    /// around.
    pub order: Vec<String>,
    /// The resources in start order. The first one's token is the group's key.
    pub resources: Vec<ResourceEntry>,
    /// Where the group is defined (`/etc/ha.d/haresources:3`), for messages.
    pub origin: String,
}

impl ResourceGroupConfig {
    /// The group's key: its first resource token, which Heartbeat uses to name the group on
    /// the wire (`ip-request`, `rsc_hold`) and which must be unique. Every front end refuses
    /// a group without resources, so the empty key of an empty group never reaches a peer.
    pub fn key(&self) -> &str {
        self.resources.first().map_or("", |r| r.token.as_str())
    }
}

/// One resource of a group with the settings that say how it is run and watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceEntry {
    /// The resource token exactly as written (`IPaddr::198.18.0.100/24/eth0`, `httpd`); the
    /// resource layer decides which agent it names.
    pub token: String,
    /// How long each agent operation (start, stop, monitor) may run; `None` means the
    /// runtime's default. Between 1 s and 1 h when set.
    pub timeout: Option<Duration>,
    /// Periodic monitoring while the group runs here; `None` means none, as in Heartbeat.
    pub monitor: Option<MonitorSetting>,
    /// What a sandboxed (WASM) agent may do for this resource; nothing unless granted.
    pub grants: Grants,
}

impl ResourceEntry {
    /// The shortest operation timeout that may be configured: less would fail a healthy
    /// agent whose process merely took a moment to be scheduled.
    pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);
    /// The longest operation timeout that may be configured: a group must not wait longer
    /// than this for a hung agent before it can move.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

    /// A resource with every setting at its default: what a haresources token means.
    pub fn plain(token: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            timeout: None,
            monitor: None,
            grants: Grants::default(),
        }
    }
}

/// How a running resource is watched and what a failed monitor does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorSetting {
    /// Time from the end of one monitor to the start of the next; above zero.
    pub interval: Duration,
    /// How many failed monitors are answered by restarting the resource in place (it and
    /// the resources after it), counted since the group was acquired; the next failure
    /// moves the group to the next node of its order. At most [`MonitorSetting::MAX_RESTARTS`].
    pub restarts: u32,
}

impl MonitorSetting {
    /// The most restarts in place that may be configured: beyond that a resource that keeps
    /// failing should move, not flap on one node.
    pub const MAX_RESTARTS: u32 = 100;
    /// The longest monitor interval that may be configured: a resource checked less often
    /// than daily is not watched in any useful sense, and a typo such as `36000000` (ten
    /// thousand hours, in seconds) should be refused, not obeyed.
    pub const MAX_INTERVAL: Duration = Duration::from_secs(86_400);
}

/// A whole cluster configuration: what the daemon, `vigil config` and `cl_status` need,
/// already defaulted and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The file it was read from.
    pub source: ConfigSource,
    /// The local node's name when the YAML file sets it; `None` means "ask nodeinfo or
    /// `uname -n`" (see `local_node_name`).
    pub node_name: Option<String>,
    /// The cluster's nodes, lower-cased, in the order given, without duplicates.
    pub nodes: Vec<String>,
    /// The liveness timers.
    pub timing: Timing,
    /// The UDP port of every UDP medium.
    pub udp_port: u16,
    /// One entry per medium, in the order given, each already accepted by its plugin.
    pub media: Vec<MediumSpec>,
    /// The key slots and the outbound one.
    pub auth: AuthKeys,
    /// Whether the inner `auth` field is sent.
    pub msgfmt: MsgFormat,
    /// Added to the node count to form the `ttl` field.
    pub hopfudge: u8,
    /// Where the generation number comes from.
    pub generation_method: GenerationMethod,
    /// Failback behaviour of resource groups.
    pub auto_failback: AutoFailback,
    /// Where `hb_generation` and `hb_uuid` live.
    pub state_dir: PathBuf,
    /// The local client socket.
    pub api_socket: PathBuf,
    /// The Heartbeat directory whose `resource.d` holds the scripts resource tokens may name:
    /// the directory the configuration came from, or YAML's `ha_dir` (default `/etc/ha.d`).
    pub script_dir: PathBuf,
    /// The resource groups, in file order. Empty when resource management is off
    /// (`crm on`) or nothing is configured.
    pub resource_groups: Vec<ResourceGroupConfig>,
    /// The STONITH device lines, in file order; a node uses the last one that applies to it
    /// ([`ClusterConfig::stonith_for`]), as Heartbeat does.
    pub stonith: Vec<StonithConfig>,
    /// Every recorded option directive with its value as written, sorted by name, last one
    /// winning: what `cl_status hbparameter -p` answers (see [`ClusterConfig::parameter`]).
    /// For a YAML file, the ha.cf spelling of each setting it gives.
    pub parameters: Vec<(String, String)>,
    /// Directives accepted for compatibility that have no effect in vigil (logging,
    /// realtime, Pacemaker, …), with their values, in file
    /// order, so the daemon can say once that it ignores them.
    pub ignored_directives: Vec<(String, String)>,
    /// Who may sign on to the client API under which client name (`apiauth` lines), in
    /// file order; they add to and replace Heartbeat's built-in entries.
    pub api_auth: Vec<ApiAuthRule>,
    /// The programs run beside the daemon once communications are up (`respawn` and
    /// `failfast` lines), in start order; stopped in reverse order at shutdown.
    pub clients: Vec<ClientProgram>,
    /// The watchdog device fed on each of this node's heartbeats (`watchdog`); `None`: none.
    pub watchdog: Option<PathBuf>,
    /// Connectivity-driven failover (YAML `connectivity_failover`); `None`: off, unless a
    /// `respawn … ipfail` line asks for it (the daemon maps that line onto it).
    pub connectivity_failover: Option<ConnectivityFailover>,
}

/// Connectivity-driven failover, vigil's built-in ipfail: a node that sees fewer ping nodes
/// than a peer that could run a group gives the group to that peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectivityFailover {
    /// How long a difference in ping counts (or its end) must last before a group moves, so
    /// a flapping ping node does not bounce it; `None`: `deadping`, so that a move needs
    /// about two ping deadtimes of lost connectivity.
    pub dampening: Option<Duration>,
}

impl ConnectivityFailover {
    /// The longest dampening accepted: an hour of lost connectivity is not "flapping".
    pub const MAX_DAMPENING: Duration = Duration::from_secs(3600);
}

/// One `apiauth CLIENT [uid=…] [gid=…]` line (spec §3.2, §9.1): the processes (by the
/// user or primary group the kernel reports for the connecting socket) that may sign on to
/// the client API as `client`. Names are resolved when the daemon starts, so a user created
/// later needs a restart, as with Heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAuthRule {
    /// The client name (`ipfail`, `default` for names without their own line, `anon`).
    pub client: String,
    /// User names or numeric uids, as written.
    pub users: Vec<String>,
    /// Group names or numeric gids, as written.
    pub groups: Vec<String>,
    /// Where it was configured (`/etc/ha.d/ha.cf:12`), for messages.
    pub origin: String,
}

/// A program the daemon keeps running beside itself (`respawn USER COMMAND`, or `failfast`,
/// spec §3.2): started as `user` after communications are up, restarted when it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientProgram {
    /// The user it runs as (with that user's primary and supplementary groups); it exists
    /// on this machine, checked when the configuration was read.
    pub user: String,
    /// The command line as written, starting with an absolute path; run by `/bin/sh -c`
    /// as Heartbeat does, so arguments and quoting mean the same.
    pub command: String,
    /// `failfast`: an abnormal death of the program reboots the node instead of only being
    /// restarted, because the node can no longer be trusted to do its job.
    pub failfast: bool,
    /// Where it was configured (`/etc/ha.d/ha.cf:12`), for messages.
    pub origin: String,
}

impl ClientProgram {
    /// The program's path: the command's first word.
    pub fn path(&self) -> &str {
        self.command.split_whitespace().next().unwrap_or_default()
    }

    /// The directive that configures it, for messages and conversion.
    pub fn directive(&self) -> &'static str {
        if self.failfast { "failfast" } else { "respawn" }
    }
}

/// Heartbeat's recorded defaults of directives that have no typed field here, as
/// `cl_status hbparameter -p` shows them when ha.cf does not set them.
const UNTYPED_DEFAULTS: &[(&str, &str)] = &[
    ("autojoin", "none"),
    ("baud", "19200"),
    ("cluster", "linux-ha"),
    ("compression", "zlib"),
    ("compression_threshold", "2"),
    ("conn_logd_time", "60"),
    ("coredumps", "true"),
    ("debug", "0"),
    ("enable_config_writes", "on"),
    ("log_badpack", "true"),
    ("memreserve", "6500"),
    ("pacemaker", "false"),
    ("realtime", "true"),
    ("record_config_changes", "on"),
    ("record_pengine_inputs", "on"),
    ("syslogmsgfmt", "true"),
    ("traditional_compression", "no"),
    ("uuidfrom", "file"),
];

impl ClusterConfig {
    /// The value Heartbeat's `getparm` would answer for `name`: the value as written if the
    /// configuration sets it, else Heartbeat's default or derived value (`keepalive` →
    /// `1000ms`, a derived `initdead` → `12000ms`), else `None`.
    pub fn parameter(&self, name: &str) -> Option<String> {
        if let Some((_, value)) = self.parameters.iter().find(|(key, _)| key == name) {
            return Some(value.clone());
        }
        let millis = |duration: Duration| format!("{}ms", duration.as_millis());
        let typed = match name {
            "keepalive" => Some(millis(self.timing.keepalive)),
            "deadtime" => Some(millis(self.timing.deadtime)),
            "warntime" => Some(millis(self.timing.warntime)),
            "initdead" => Some(millis(self.timing.initdead)),
            "deadping" => Some(millis(self.timing.deadping)),
            "max_rexmit_delay" => Some(self.timing.max_rexmit_delay.as_millis().to_string()),
            "udpport" => Some(self.udp_port.to_string()),
            "hopfudge" => Some(self.hopfudge.to_string()),
            "msgfmt" => Some(self.msgfmt.as_str().to_string()),
            "hbgenmethod" => Some(self.generation_method.as_str().to_string()),
            "auto_failback" => Some(self.auto_failback.as_str().to_string()),
            _ => None,
        };
        typed.or_else(|| {
            UNTYPED_DEFAULTS
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_string())
        })
    }
}

impl ClusterConfig {
    /// Every parameter Heartbeat would answer `getparm` for, with its value: what is written,
    /// then the defaults and derived values. The daemon hands this table to `cl_status`.
    pub fn recorded_parameters(&self) -> std::collections::BTreeMap<String, String> {
        const TYPED: &[&str] = &[
            "keepalive",
            "deadtime",
            "warntime",
            "initdead",
            "deadping",
            "max_rexmit_delay",
            "udpport",
            "hopfudge",
            "msgfmt",
            "hbgenmethod",
            "auto_failback",
        ];
        let names = self
            .parameters
            .iter()
            .map(|(name, _)| name.as_str())
            .chain(TYPED.iter().copied())
            .chain(UNTYPED_DEFAULTS.iter().map(|(name, _)| *name));
        names
            .filter_map(|name| Some((name.to_string(), self.parameter(name)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initdead_is_derived_exactly_as_heartbeat_does() {
        let s = Duration::from_secs;
        assert_eq!(Timing::default_initdead(s(30)), s(30));
        assert_eq!(
            Timing::default_initdead(Duration::from_millis(10_001)),
            Duration::from_millis(10_001)
        );
        assert_eq!(Timing::default_initdead(s(10)), s(20));
        assert_eq!(Timing::default_initdead(s(7)), s(14));
        assert_eq!(Timing::default_initdead(s(6)), s(12));
        assert_eq!(
            Timing::default_initdead(Duration::from_millis(5_999)),
            s(12)
        );
        assert_eq!(Timing::default_initdead(s(1)), s(12));
    }

    #[test]
    fn warntime_defaults_to_half_the_deadtime() {
        assert_eq!(
            Timing::default_warntime(Duration::from_millis(1001)),
            Duration::from_millis(500)
        );
    }
}

/// One STONITH device line (`stonith`, `stonith_host`, or a YAML `stonith` entry): the device
/// a node fences its peers with. The type and parameters are checked against the device
/// plugin when the daemon starts and by `vigil config check`, not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StonithConfig {
    /// The node that uses this device; `None` for every node (`stonith`, `stonith_host *`).
    pub node: Option<String>,
    /// The device type as `stonith -t` takes it (`null`, `external/ipmi`).
    pub device_type: String,
    /// The device's parameters.
    pub params: StonithParams,
    /// Where the line is (`/etc/ha.d/ha.cf:12`).
    pub origin: String,
}

/// How a STONITH device's parameters are given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StonithParams {
    /// A positional string, split over the device's parameter names (`stonith_host` lines,
    /// YAML `params_line`).
    Line(String),
    /// A file whose first line that is neither empty nor a `#` comment is the positional
    /// string (`stonith` lines, YAML `params_file`).
    File(PathBuf),
    /// `name: value` pairs (YAML `params`).
    Named(Vec<(String, String)>),
}

impl ClusterConfig {
    /// The device `node` fences with: the last line for it or for every node.
    pub fn stonith_for(&self, node: &str) -> Option<&StonithConfig> {
        self.stonith
            .iter()
            .rev()
            .find(|line| line.node.as_deref().is_none_or(|n| n == node))
    }
}
