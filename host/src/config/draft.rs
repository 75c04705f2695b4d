//! Heartbeat's directive rules, applied one directive at a time: the engine both front ends
//! feed, so that `keepalive 200ms` in ha.cf and `keepalive: 200ms` in YAML are one rule.
//!
//! Owns what each directive accepts, which directives are recorded for `getparm`, which are
//! accepted without effect, the order rules (udpport before media, …), the defaults and the
//! cross-checks of spec §3.2. It reads no file and knows no file syntax: callers hand it a
//! directive, its value and where it was written.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use vigil_plugin_api::{MediumSpec, PluginKind, Registry};

use crate::wire::auth::AuthKeys;

use super::error::ConfigError;
use super::model::{
    ApiAuthRule, AutoFailback, ClientProgram, ClusterConfig, ConfigSource, DEFAULT_HOPFUDGE,
    DEFAULT_UDP_PORT, GenerationMethod, MsgFormat, ResourceGroupConfig, StonithConfig,
    StonithParams, Timing,
};
use super::values::{
    BOOL_SYNTAX, TIME_SYNTAX, format_duration, parse_bool, parse_time, parse_uint,
};

/// Option directives (spec §3.1 class 1): the value is split on whitespace and commas and
/// each token is applied on its own.
pub(crate) const OPTION_DIRECTIVES: &[&str] = &[
    "auto_failback",
    "autojoin",
    "baud",
    "cluster",
    "compression",
    "compression_threshold",
    "conn_logd_time",
    "coredumps",
    "coreroot",
    "crm",
    "crm_daemon_dir",
    "crmd_spawns_pengine",
    "deadping",
    "deadtime",
    "debug",
    "debugfile",
    "enable_config_writes",
    "env",
    "hbgenmethod",
    "hopfudge",
    "initdead",
    "keepalive",
    "log_badpack",
    "logfacility",
    "logfile",
    "max_rexmit_delay",
    "memreserve",
    "msgfmt",
    "nice_failback",
    "node",
    "normalpoll",
    "pacemaker",
    "quorum_server",
    "realtime",
    "record_config_changes",
    "record_pengine_inputs",
    "rtprio",
    "syslogmsgfmt",
    "traditional_compression",
    "udpport",
    "use_apphbd",
    "use_logd",
    "uuidfrom",
    "warntime",
    "watchdog",
];

/// Whole-line directives (spec §3.1 class 2): the unsplit rest of the line is one value.
pub(crate) const WHOLE_LINE_DIRECTIVES: &[&str] =
    &["apiauth", "failfast", "respawn", "stonith", "stonith_host"];

/// Media whose arguments are one medium per token, like an option directive; every other
/// medium gets the whole line and parses it itself.
const PER_TOKEN_MEDIA: &[&str] = &["bcast", "serial", "ping", "ping6"];

/// Every medium Heartbeat 3.0.6 ships, so that a missing one is reported as unavailable in
/// this build rather than as a typo.
const HEARTBEAT_MEDIA: &[&str] = &[
    "bcast",
    "hbaping",
    "mcast",
    "mcast6",
    "ping",
    "ping6",
    "ping_group",
    "rds",
    "serial",
    "tipc",
    "ucast",
    "ucast6",
];

/// Option directives Heartbeat does not record for `getparm`.
const NOT_RECORDED: &[&str] = &["env", "nice_failback", "node", "use_apphbd"];

/// Serial speeds Heartbeat accepts for `baud`.
const BAUD_RATES: &[&str] = &[
    "9600", "19200", "38400", "57600", "115200", "230400", "460800",
];

/// The medium that runs at `baud`: it receives the speed as a last argument `baud=<rate>`,
/// added here, because a medium's line alone does not carry it.
const SERIAL_MEDIUM: &str = "serial";

/// The argument the draft adds to every `serial` medium when `baud` is given.
const BAUD_ARGUMENT: &str = "baud=";

/// A medium's arguments as the operator wrote them: without the `baud=<rate>` the draft adds
/// to serial media, for writing the configuration back out.
pub(crate) fn written_medium_args(spec: &MediumSpec) -> Vec<String> {
    let added = |arg: &String| spec.kind == SERIAL_MEDIUM && arg.starts_with(BAUD_ARGUMENT);
    spec.args
        .iter()
        .filter(|arg| !added(arg))
        .cloned()
        .collect()
}

/// Syslog facility names `logfacility` accepts.
const LOG_FACILITIES: &[&str] = &[
    "auth", "authpriv", "cron", "daemon", "ftp", "kern", "local0", "local1", "local2", "local3",
    "local4", "local5", "local6", "local7", "lpr", "mail", "news", "none", "syslog", "user",
    "uucp",
];

/// Whether `c` separates the tokens of an option directive.
pub(crate) fn is_delimiter(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c' | ',')
}

/// A value with where it was written, so that a later cross-check can point at it.
#[derive(Debug, Clone)]
struct Located<T> {
    /// The parsed value.
    value: T,
    /// `file:line` (or `file:line:column`) where it was written.
    origin: String,
}

/// The settings every front end gets back once all directives are in and every rule holds.
/// Each field becomes the [`ClusterConfig`] field of the same name.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The nodes, lower-cased, without duplicates.
    pub nodes: Vec<String>,
    /// The timers with defaults and derivations applied.
    pub timing: Timing,
    /// The port every UDP medium was checked with.
    pub udp_port: u16,
    /// The media, each accepted by its plugin.
    pub media: Vec<MediumSpec>,
    /// Whether the inner `auth` field is sent.
    pub msgfmt: MsgFormat,
    /// Added to the node count for the `ttl` field.
    pub hopfudge: u8,
    /// Where the generation number comes from.
    pub generation_method: GenerationMethod,
    /// Failback behaviour.
    pub auto_failback: AutoFailback,
    /// Recorded directives, sorted by name.
    pub parameters: Vec<(String, String)>,
    /// Directives accepted without effect, in order.
    pub ignored_directives: Vec<(String, String)>,
    /// `apiauth` lines, in order.
    pub api_auth: Vec<ApiAuthRule>,
    /// STONITH device lines, in order.
    pub stonith: Vec<StonithConfig>,
    /// False when `crm`/`pacemaker` is on: Heartbeat then leaves haresources alone.
    pub manages_resources: bool,
    /// `respawn` and `failfast` programs, in order.
    pub clients: Vec<ClientProgram>,
    /// The `watchdog` device.
    pub watchdog: Option<PathBuf>,
}

impl Settings {
    /// The whole model: these settings plus what each file format adds around them.
    pub(crate) fn into_config(
        self,
        source: ConfigSource,
        node_name: Option<String>,
        auth: AuthKeys,
        resource_groups: Vec<ResourceGroupConfig>,
        places: Places,
    ) -> ClusterConfig {
        let Places {
            state_dir,
            api_socket,
            script_dir,
        } = places;
        ClusterConfig {
            source,
            node_name,
            nodes: self.nodes,
            timing: self.timing,
            udp_port: self.udp_port,
            media: self.media,
            auth,
            msgfmt: self.msgfmt,
            hopfudge: self.hopfudge,
            generation_method: self.generation_method,
            auto_failback: self.auto_failback,
            state_dir,
            api_socket,
            script_dir,
            resource_groups,
            parameters: self.parameters,
            ignored_directives: self.ignored_directives,
            api_auth: self.api_auth,
            stonith: self.stonith,
            clients: self.clients,
            watchdog: self.watchdog,
            connectivity_failover: None,
        }
    }
}

/// Where a node keeps its state, its socket and the scripts it runs: defaults that differ
/// between the Heartbeat and the YAML form.
pub(crate) struct Places {
    pub state_dir: PathBuf,
    pub api_socket: PathBuf,
    pub script_dir: PathBuf,
}

/// A cluster being assembled from directives, in the order they were written.
pub(crate) struct ClusterDraft<'r> {
    /// Media plugins: which media exist and whether a medium line is acceptable.
    registry: &'r Registry,
    /// The file being read, for rules broken by what is absent.
    file: String,
    /// Nodes with their lines, so a duplicate can name the first one.
    nodes: Vec<Located<String>>,
    /// The timers as given (`None`: not given), with their lines for the cross-checks.
    keepalive: Option<Located<Duration>>,
    deadtime: Option<Located<Duration>>,
    warntime: Option<Located<Duration>>,
    initdead: Option<Located<Duration>>,
    deadping: Option<Located<Duration>>,
    max_rexmit_delay: Option<Duration>,
    /// The port media are checked with; `None` until `udpport` is given.
    udp_port: Option<u16>,
    /// The serial speed serial media get (`baud`); `None` leaves the medium's default, 19200.
    baud: Option<u32>,
    /// The settings without cross-checks, holding their defaults until given.
    msgfmt: MsgFormat,
    hopfudge: u8,
    generation_method: GenerationMethod,
    auto_failback: AutoFailback,
    /// Media in the order given.
    media: Vec<MediumSpec>,
    /// Where the first medium is: `udpport` and `baud` must come before it.
    first_medium: Option<String>,
    /// Directives Heartbeat allows once, with where they were first given.
    given_once: BTreeMap<&'static str, String>,
    /// False once `crm`/`pacemaker` is on.
    manages_resources: bool,
    /// `autojoin other|any`, which Heartbeat refuses together with haresources.
    autojoin: Option<Located<String>>,
    /// Recorded directives; a later value replaces an earlier one.
    parameters: BTreeMap<String, String>,
    /// Directives accepted without effect, in order.
    ignored: Vec<(String, String)>,
    /// `apiauth` lines, in order.
    api_auth: Vec<ApiAuthRule>,
    /// STONITH device lines, in order.
    stonith: Vec<StonithConfig>,
    /// `respawn` and `failfast` programs, in order.
    clients: Vec<ClientProgram>,
    /// The `watchdog` device, given at most once.
    watchdog: Option<PathBuf>,
}

impl<'r> ClusterDraft<'r> {
    /// An empty draft for `file`, checking media against `registry`.
    pub(crate) fn new(registry: &'r Registry, file: &str) -> Self {
        ClusterDraft {
            registry,
            file: file.to_string(),
            nodes: Vec::new(),
            keepalive: None,
            deadtime: None,
            warntime: None,
            initdead: None,
            deadping: None,
            max_rexmit_delay: None,
            udp_port: None,
            baud: None,
            msgfmt: MsgFormat::default(),
            hopfudge: DEFAULT_HOPFUDGE,
            generation_method: GenerationMethod::default(),
            auto_failback: AutoFailback::default(),
            media: Vec::new(),
            first_medium: None,
            given_once: BTreeMap::new(),
            manages_resources: true,
            autojoin: None,
            parameters: BTreeMap::new(),
            ignored: Vec::new(),
            api_auth: Vec::new(),
            stonith: Vec::new(),
            clients: Vec::new(),
            watchdog: None,
        }
    }

    /// Applies one ha.cf line: `name` is its first word, `rest` the remainder with leading
    /// delimiters removed.
    pub(crate) fn directive(
        &mut self,
        name: &str,
        rest: &str,
        origin: &str,
    ) -> Result<(), ConfigError> {
        // Heartbeat still reads the pre-1.0 name of bcast.
        let name = if name == "udp" { "bcast" } else { name };
        if OPTION_DIRECTIVES.contains(&name) {
            let mut tokens = rest
                .split(is_delimiter)
                .filter(|t| !t.is_empty())
                .peekable();
            if tokens.peek().is_none() {
                return Err(ConfigError::MissingValue {
                    origin: origin.to_string(),
                    directive: name.to_string(),
                    expected: expected_value(name).to_string(),
                });
            }
            for token in tokens {
                self.option(name, token, origin)?;
            }
            Ok(())
        } else if WHOLE_LINE_DIRECTIVES.contains(&name) {
            self.whole_line(name, rest.trim_end(), origin)
        } else if self.registry.has_medium(name) || HEARTBEAT_MEDIA.contains(&name) {
            self.medium(name, rest, origin)
        } else {
            Err(ConfigError::UnknownDirective {
                origin: origin.to_string(),
                directive: name.to_string(),
                media: available_media(self.registry),
            })
        }
    }

    /// Applies one value of an option directive.
    pub(crate) fn option(
        &mut self,
        name: &str,
        value: &str,
        origin: &str,
    ) -> Result<(), ConfigError> {
        let bad = || ConfigError::BadValue {
            origin: origin.to_string(),
            directive: name.to_string(),
            value: value.to_string(),
            expected: expected_value(name).to_string(),
        };
        let located = |duration: Duration| {
            Some(Located {
                value: duration,
                origin: origin.to_string(),
            })
        };
        let mut recorded = (!NOT_RECORDED.contains(&name)).then(|| (name, value.to_string()));
        match name {
            "node" => self.add_node(value, origin)?,
            "keepalive" => {
                let keepalive = parse_time(value).filter(|d| !d.is_zero()).ok_or_else(bad)?;
                self.keepalive = located(keepalive);
            }
            "deadtime" => self.deadtime = located(parse_time(value).ok_or_else(bad)?),
            "warntime" => {
                let warntime = parse_time(value).filter(|d| !d.is_zero()).ok_or_else(bad)?;
                self.warntime = located(warntime);
            }
            "initdead" => self.initdead = located(parse_time(value).ok_or_else(bad)?),
            "deadping" => self.deadping = located(parse_time(value).ok_or_else(bad)?),
            "max_rexmit_delay" => {
                let millis = value.strip_suffix("ms").unwrap_or(value);
                let millis = parse_uint(millis, 1, u64::from(u32::MAX)).ok_or_else(bad)?;
                self.max_rexmit_delay = Some(Duration::from_millis(millis));
            }
            "udpport" => {
                self.require_before_media(name, origin)?;
                let port = parse_uint(value, 1, u64::from(u16::MAX)).ok_or_else(bad)?;
                self.udp_port = u16::try_from(port).ok();
            }
            "watchdog" => {
                self.once("watchdog", name, origin)?;
                self.watchdog = Some(PathBuf::from(value));
            }
            "hopfudge" => {
                let hops = parse_uint(value, 0, u64::from(u8::MAX)).ok_or_else(bad)?;
                self.hopfudge = u8::try_from(hops).map_err(|_| bad())?;
            }
            "msgfmt" => {
                self.msgfmt = match value {
                    "classic" => MsgFormat::Classic,
                    "netstring" => MsgFormat::Netstring,
                    _ => return Err(bad()),
                }
            }
            "hbgenmethod" => {
                self.generation_method = match value {
                    "file" => GenerationMethod::File,
                    "time" => GenerationMethod::Time,
                    _ => return Err(bad()),
                }
            }
            "auto_failback" => {
                self.auto_failback = match parse_bool(value) {
                    Some(true) => AutoFailback::On,
                    Some(false) => AutoFailback::Off,
                    None if value.eq_ignore_ascii_case("legacy") => AutoFailback::Legacy,
                    None => return Err(bad()),
                }
            }
            "nice_failback" => {
                // Deprecated spelling: on means auto_failback off, off means legacy.
                self.auto_failback = match parse_bool(value).ok_or_else(bad)? {
                    true => AutoFailback::Off,
                    false => AutoFailback::Legacy,
                };
                // Recorded under the directive it stands for, so `getparm auto_failback` and a
                // conversion to YAML both see the effective value.
                recorded = Some(("auto_failback", self.auto_failback.as_str().to_string()));
            }
            "baud" => {
                self.require_before_media(name, origin)?;
                self.once("baud", name, origin)?;
                let rate = value.parse().ok().filter(|_| BAUD_RATES.contains(&value));
                self.baud = Some(rate.ok_or_else(bad)?);
            }
            _ => self.untyped_option(name, value, origin)?,
        }
        if let Some((key, value)) = recorded {
            self.parameters.insert(key.to_string(), value);
        }
        Ok(())
    }

    /// Checks an option directive vigil accepts without effect and lists it as ignored.
    fn untyped_option(&mut self, name: &str, value: &str, origin: &str) -> Result<(), ConfigError> {
        let valid = match name {
            "logfacility" => LOG_FACILITIES.contains(&value),
            "use_logd"
            | "realtime"
            | "normalpoll"
            | "log_badpack"
            | "syslogmsgfmt"
            | "coredumps"
            | "use_apphbd"
            | "traditional_compression"
            | "record_config_changes"
            | "record_pengine_inputs"
            | "enable_config_writes" => parse_bool(value).is_some(),
            "crmd_spawns_pengine" => {
                self.require_before_pacemaker(name, origin)?;
                parse_bool(value).is_some()
            }
            "crm_daemon_dir" => {
                self.require_before_pacemaker(name, origin)?;
                true
            }
            "crm" | "pacemaker" => {
                self.once("pacemaker", "crm/pacemaker", origin)?;
                let enabled = match parse_bool(value) {
                    Some(on) => Some(on),
                    None => ["respawn", "minimal", "manual", "valgrind", "ccm-only"]
                        .iter()
                        .any(|mode| value.eq_ignore_ascii_case(mode))
                        .then_some(true),
                };
                if let Some(on) = enabled {
                    self.manages_resources = !on;
                    if name == "crm" {
                        // `crm` is Heartbeat's alias of `pacemaker`, which it records too.
                        self.parameters
                            .insert("pacemaker".to_string(), value.to_string());
                    }
                }
                enabled.is_some()
            }
            "autojoin" => {
                let mode = value.to_ascii_lowercase();
                let valid = ["none", "other", "any"].contains(&mode.as_str());
                self.autojoin = (valid && mode != "none").then(|| Located {
                    value: value.to_string(),
                    origin: origin.to_string(),
                });
                valid
            }
            "uuidfrom" => value == "file" || value == "nodename",
            "rtprio" => parse_uint(value, 1, 99).is_some(),
            "debug" => parse_uint(value, 0, 255).is_some(),
            "memreserve" | "compression_threshold" => {
                parse_uint(value, 1, u64::from(u32::MAX)).is_some()
            }
            "conn_logd_time" => parse_time(value).is_some_and(|d| !d.is_zero()),
            "env" => value
                .split_once('=')
                .is_some_and(|(var, _)| !var.is_empty()),
            "logfile" | "debugfile" | "coreroot" | "cluster" | "quorum_server" | "compression" => {
                true
            }
            _ => {
                return Err(ConfigError::UnknownDirective {
                    origin: origin.to_string(),
                    directive: name.to_string(),
                    media: available_media(self.registry),
                });
            }
        };
        if !valid {
            return Err(ConfigError::BadValue {
                origin: origin.to_string(),
                directive: name.to_string(),
                value: value.to_string(),
                expected: expected_value(name).to_string(),
            });
        }
        self.ignored.push((name.to_string(), value.to_string()));
        Ok(())
    }

    /// Takes a whole-line directive: a STONITH line or a `respawn`/`failfast` program into
    /// the model; an `apiauth` line into the client API's permissions.
    fn whole_line(&mut self, name: &str, line: &str, origin: &str) -> Result<(), ConfigError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(stonith) = stonith_line(name, line, origin) {
            let stonith = stonith.ok_or_else(|| ConfigError::BadValue {
                origin: origin.to_string(),
                directive: name.to_string(),
                value: line.to_string(),
                expected: expected_value(name).to_string(),
            })?;
            self.stonith.push(stonith);
            return Ok(());
        }
        if name == "respawn" || name == "failfast" {
            let (user, command) = split_word(line);
            return self.client(name == "failfast", user, command, origin);
        }
        if name != "apiauth" || !valid_apiauth(&words) {
            return Err(ConfigError::BadValue {
                origin: origin.to_string(),
                directive: name.to_string(),
                value: line.to_string(),
                expected: expected_value(name).to_string(),
            });
        }
        let list = |prefix: &str| -> Vec<String> {
            words[1..]
                .iter()
                .filter_map(|word| word.strip_prefix(prefix))
                .flat_map(|list| list.split(','))
                .filter(|id| !id.is_empty())
                .map(str::to_string)
                .collect()
        };
        self.api_auth(words[0], list("uid="), list("gid="), origin);
        Ok(())
    }

    /// Takes one client API permission (`apiauth`, or YAML's `apiauth` list).
    pub(crate) fn api_auth(
        &mut self,
        client: &str,
        users: Vec<String>,
        groups: Vec<String>,
        origin: &str,
    ) {
        self.api_auth.push(ApiAuthRule {
            client: client.to_string(),
            users,
            groups,
            origin: origin.to_string(),
        });
    }

    /// Adds a program to run beside the daemon (`respawn`, or `failfast` when `failfast`):
    /// Heartbeat's rules, an absolute command path and a user this machine knows. Whether the
    /// program is executable is checked when the daemon starts, on the node that runs it.
    pub(crate) fn client(
        &mut self,
        failfast: bool,
        user: &str,
        command: &str,
        origin: &str,
    ) -> Result<(), ConfigError> {
        let directive = if failfast { "failfast" } else { "respawn" };
        let command = command.trim();
        if user.is_empty() || user.contains(char::is_whitespace) || !command.starts_with('/') {
            return Err(ConfigError::BadValue {
                origin: origin.to_string(),
                directive: directive.to_string(),
                value: format!("{user} {command}").trim().to_string(),
                expected: expected_value(directive).to_string(),
            });
        }
        if !user_exists(user) {
            return Err(ConfigError::UnknownUser {
                origin: origin.to_string(),
                directive: directive.to_string(),
                user: user.to_string(),
            });
        }
        self.clients.push(ClientProgram {
            user: user.to_string(),
            command: command.to_string(),
            failfast,
            origin: origin.to_string(),
        });
        Ok(())
    }

    /// Adds the media of one medium directive, each checked by its plugin. Per-token media
    /// (`bcast eth0 eth1`) give one medium per token; the others give one medium whose
    /// arguments are the line's words.
    pub(crate) fn medium(
        &mut self,
        kind: &str,
        rest: &str,
        origin: &str,
    ) -> Result<(), ConfigError> {
        let factory = match self.registry.medium(kind) {
            Ok(factory) => factory,
            Err(_) if HEARTBEAT_MEDIA.contains(&kind) => {
                return Err(ConfigError::MediumUnavailable {
                    origin: origin.to_string(),
                    kind: kind.to_string(),
                    available: available_media(self.registry),
                });
            }
            Err(_) => {
                return Err(ConfigError::UnknownMedium {
                    origin: origin.to_string(),
                    kind: kind.to_string(),
                    available: available_media(self.registry),
                });
            }
        };
        let arg_lists: Vec<Vec<String>> = if PER_TOKEN_MEDIA.contains(&kind) {
            rest.split(is_delimiter)
                .filter(|t| !t.is_empty())
                .map(|t| vec![t.to_string()])
                .collect()
        } else {
            vec![rest.split_whitespace().map(str::to_string).collect()]
        };
        if arg_lists.is_empty() {
            return Err(ConfigError::MissingValue {
                origin: origin.to_string(),
                directive: kind.to_string(),
                expected: "at least one device".to_string(),
            });
        }
        for mut args in arg_lists {
            if let (SERIAL_MEDIUM, Some(baud)) = (kind, self.baud) {
                args.push(format!("{BAUD_ARGUMENT}{baud}"));
            }
            let spec = MediumSpec {
                kind: kind.to_string(),
                args,
                udp_port: self.udp_port.unwrap_or(DEFAULT_UDP_PORT),
                origin: origin.to_string(),
            };
            factory.check(&spec)?;
            self.media.push(spec);
        }
        self.first_medium.get_or_insert_with(|| origin.to_string());
        Ok(())
    }

    /// Applies every default and cross-check of spec §3.2 and hands back the settings.
    pub(crate) fn finish(self) -> Result<Settings, ConfigError> {
        if self.nodes.is_empty() {
            return Err(ConfigError::Missing {
                file: self.file,
                what: "nodes".to_string(),
                expected: "at least one node".to_string(),
            });
        }
        if self.media.is_empty() {
            return Err(ConfigError::Missing {
                what: "medium".to_string(),
                expected: format!("at least one of: {}", available_media(self.registry)),
                file: self.file,
            });
        }
        let keepalive = self
            .keepalive
            .as_ref()
            .map_or(Timing::DEFAULT_KEEPALIVE, |k| k.value);
        let deadtime = self
            .deadtime
            .as_ref()
            .map_or(Timing::DEFAULT_DEADTIME, |d| d.value);
        let (ka, dt) = (format_duration(keepalive), format_duration(deadtime));
        if deadtime <= keepalive.saturating_mul(2) {
            let (origin, message) = match (&self.deadtime, &self.keepalive) {
                (Some(explicit), _) => (
                    explicit.origin.clone(),
                    format!("deadtime {dt} must be more than twice keepalive ({ka})"),
                ),
                (None, Some(explicit)) => (
                    explicit.origin.clone(),
                    format!(
                        "keepalive {ka} is too long: deadtime ({dt}, the default) must be more \
                         than twice keepalive"
                    ),
                ),
                (None, None) => (
                    self.file.clone(),
                    format!("deadtime {dt} must be more than twice keepalive ({ka})"),
                ),
            };
            return Err(ConfigError::Timing { origin, message });
        }
        let initdead = match &self.initdead {
            Some(explicit) if explicit.value < deadtime => {
                return Err(ConfigError::Timing {
                    origin: explicit.origin.clone(),
                    message: format!(
                        "initdead {} must not be shorter than deadtime ({dt})",
                        format_duration(explicit.value)
                    ),
                });
            }
            Some(explicit) => explicit.value,
            None => Timing::default_initdead(deadtime),
        };
        let deadping = match &self.deadping {
            Some(explicit) if explicit.value <= keepalive.saturating_mul(2) => {
                return Err(ConfigError::Timing {
                    origin: explicit.origin.clone(),
                    message: format!(
                        "deadping {} must be more than twice keepalive ({ka})",
                        format_duration(explicit.value)
                    ),
                });
            }
            Some(explicit) => explicit.value,
            None => deadtime,
        };
        let warntime = match &self.warntime {
            Some(explicit) if explicit.value >= deadtime => {
                return Err(ConfigError::Timing {
                    origin: explicit.origin.clone(),
                    message: format!(
                        "warntime {} must be shorter than deadtime ({dt})",
                        format_duration(explicit.value)
                    ),
                });
            }
            Some(explicit) => explicit.value,
            None => Timing::default_warntime(deadtime),
        };
        let nodes: Vec<&str> = self.nodes.iter().map(|n| n.value.as_str()).collect();
        if let Some(line) = self
            .stonith
            .iter()
            .find(|line| line.node.as_deref().is_some_and(|n| !nodes.contains(&n)))
        {
            return Err(ConfigError::UnknownNode {
                origin: line.origin.clone(),
                node: line.node.clone().unwrap_or_default(),
                nodes: nodes.join(", "),
            });
        }
        if let Some(autojoin) = self.autojoin.as_ref().filter(|_| self.manages_resources) {
            return Err(ConfigError::Conflict {
                origin: autojoin.origin.clone(),
                message: format!(
                    "autojoin {} cannot be used with haresources resource management \
                     (remove autojoin, or turn `crm` on)",
                    autojoin.value
                ),
            });
        }
        Ok(Settings {
            nodes: self.nodes.into_iter().map(|node| node.value).collect(),
            timing: Timing {
                keepalive,
                deadtime,
                warntime,
                initdead,
                deadping,
                max_rexmit_delay: self
                    .max_rexmit_delay
                    .unwrap_or(Timing::DEFAULT_MAX_REXMIT_DELAY),
            },
            udp_port: self.udp_port.unwrap_or(DEFAULT_UDP_PORT),
            media: self.media,
            msgfmt: self.msgfmt,
            hopfudge: self.hopfudge,
            generation_method: self.generation_method,
            auto_failback: self.auto_failback,
            parameters: self.parameters.into_iter().collect(),
            ignored_directives: self.ignored,
            api_auth: self.api_auth,
            stonith: self.stonith,
            manages_resources: self.manages_resources,
            clients: self.clients,
            watchdog: self.watchdog,
        })
    }

    fn add_node(&mut self, name: &str, origin: &str) -> Result<(), ConfigError> {
        if name.is_empty() || name.contains(|c: char| is_delimiter(c) || c.is_control()) {
            return Err(ConfigError::BadValue {
                origin: origin.to_string(),
                directive: "node".to_string(),
                value: name.to_string(),
                expected: expected_value("node").to_string(),
            });
        }
        let name = name.to_ascii_lowercase();
        if let Some(first) = self.nodes.iter().find(|node| node.value == name) {
            return Err(ConfigError::Duplicate {
                origin: origin.to_string(),
                what: format!("node `{name}`"),
                first: first.origin.clone(),
            });
        }
        self.nodes.push(Located {
            value: name,
            origin: origin.to_string(),
        });
        Ok(())
    }

    /// Media read `udpport` and `baud` when their line is parsed, so a later value would
    /// silently not apply to them.
    fn require_before_media(&self, name: &str, origin: &str) -> Result<(), ConfigError> {
        match &self.first_medium {
            Some(medium) => Err(ConfigError::OutOfOrder {
                origin: origin.to_string(),
                directive: name.to_string(),
                before: "the first medium".to_string(),
                before_origin: medium.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Heartbeat reads the Pacemaker daemon settings when `crm` is parsed.
    fn require_before_pacemaker(&self, name: &str, origin: &str) -> Result<(), ConfigError> {
        match self.given_once.get("pacemaker") {
            Some(pacemaker) => Err(ConfigError::OutOfOrder {
                origin: origin.to_string(),
                directive: name.to_string(),
                before: "crm/pacemaker".to_string(),
                before_origin: pacemaker.clone(),
            }),
            None => Ok(()),
        }
    }

    fn once(&mut self, key: &'static str, what: &str, origin: &str) -> Result<(), ConfigError> {
        if let Some(first) = self.given_once.get(key) {
            return Err(ConfigError::Duplicate {
                origin: origin.to_string(),
                what: what.to_string(),
                first: first.clone(),
            });
        }
        self.given_once.insert(key, origin.to_string());
        Ok(())
    }
}

/// The media `registry` offers, comma-separated, for messages.
pub(crate) fn available_media(registry: &Registry) -> String {
    let names: Vec<String> = registry
        .list()
        .into_iter()
        .filter(|plugin| plugin.kind == PluginKind::Medium)
        .map(|plugin| plugin.name)
        .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Whether the password database knows `user`, as Heartbeat's `getpwnam` check at
/// configuration time.
fn user_exists(user: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(user) else {
        return false;
    };
    let mut entry = std::mem::MaybeUninit::<libc::passwd>::uninit();
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call: a NUL-terminated name, an entry and a
    // buffer of the stated length that outlive it, and an out-pointer getpwnam_r sets.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            entry.as_mut_ptr(),
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    rc == 0 && !found.is_null()
}

/// `apiauth <client> [uid=u1,u2] [gid=g1,g2]`: a client and at least one list, each once.
fn valid_apiauth(words: &[&str]) -> bool {
    let Some((_client, lists)) = words.split_first() else {
        return false;
    };
    let uids = lists.iter().filter(|w| w.starts_with("uid=")).count();
    let gids = lists.iter().filter(|w| w.starts_with("gid=")).count();
    uids <= 1 && gids <= 1 && uids + gids == lists.len() && !lists.is_empty()
}

/// What a directive's value must look like, for messages.
fn expected_value(name: &str) -> &'static str {
    match name {
        "node" => "a node name without spaces or commas",
        "keepalive" | "warntime" | "conn_logd_time" => {
            "a time above zero: a number in seconds, or followed by ms or us"
        }
        "deadtime" | "initdead" | "deadping" => TIME_SYNTAX,
        "max_rexmit_delay" => "a whole number of milliseconds above zero",
        "udpport" => "a port number from 1 to 65535",
        "hopfudge" | "debug" => "a whole number from 0 to 255",
        "baud" => "one of 9600, 19200, 38400, 57600, 115200, 230400, 460800",
        "msgfmt" => "classic or netstring",
        "hbgenmethod" => "file or time",
        "auto_failback" => "on, off or legacy",
        "nice_failback" => "on or off (deprecated: use auto_failback)",
        "logfacility" => "a syslog facility such as daemon or local0",
        "rtprio" => "a realtime priority from 1 to 99",
        "memreserve" | "compression_threshold" => "a whole number above zero",
        "crm" | "pacemaker" => "on, off, respawn, minimal, manual, valgrind or ccm-only",
        "autojoin" => "none, other or any",
        "uuidfrom" => "file or nodename",
        "env" => "NAME=value",
        "stonith" => "`stonith <type> <config-file>`",
        "stonith_host" => "`stonith_host <host|*> <type> <parameters…>`",
        "respawn" | "failfast" => "`<user> <absolute path of the command> [arguments…]`",
        "apiauth" => "`apiauth <client> [uid=<users>] [gid=<groups>]` with uid= or gid=",
        "watchdog" => "a watchdog device such as /dev/watchdog",
        _ => BOOL_SYNTAX,
    }
}

/// A `stonith <type> <file>` or `stonith_host <host|*> <type> <parameters…>` line as the
/// model holds it: `None` for another directive, `Some(None)` for a malformed one.
fn stonith_line(name: &str, line: &str, origin: &str) -> Option<Option<StonithConfig>> {
    let (first, rest) = split_word(line);
    let make = |node: Option<String>, device_type: &str, params| StonithConfig {
        node,
        device_type: device_type.to_string(),
        params,
        origin: origin.to_string(),
    };
    match name {
        "stonith" => {
            let (file, extra) = split_word(rest);
            Some(
                (!first.is_empty() && !file.is_empty() && extra.is_empty())
                    .then(|| make(None, first, StonithParams::File(PathBuf::from(file)))),
            )
        }
        "stonith_host" => {
            let (device_type, params) = split_word(rest);
            Some((!first.is_empty() && !device_type.is_empty()).then(|| {
                let node = (first != "*").then(|| first.to_ascii_lowercase());
                make(node, device_type, StonithParams::Line(params.to_string()))
            }))
        }
        _ => None,
    }
}

/// The first whitespace-separated word of `text` and the rest after it, trimmed.
fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (text, ""),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use vigil_plugin_api::{Medium, MediumError, MediumFactory, PluginInfo, PluginOrigin};

    use super::*;

    /// A medium plugin that checks only its argument count, like the real ones do first.
    struct CountingMedium {
        info: PluginInfo,
        args: std::ops::RangeInclusive<usize>,
    }

    impl MediumFactory for CountingMedium {
        fn info(&self) -> &PluginInfo {
            &self.info
        }
        fn check(&self, spec: &MediumSpec) -> Result<(), MediumError> {
            if self.args.contains(&spec.args.len()) {
                Ok(())
            } else {
                Err(MediumError::bad_arguments(
                    spec,
                    format!("expected {:?} arguments", self.args),
                ))
            }
        }
        fn open(&self, spec: &MediumSpec) -> Result<Box<dyn Medium>, MediumError> {
            Err(MediumError::bad_arguments(spec, "not openable in tests"))
        }
    }

    /// A registry with bcast, mcast and ucast that check argument counts only.
    pub(crate) fn test_registry() -> Registry {
        let mut registry = Registry::new();
        for (name, args) in [("bcast", 1..=1), ("mcast", 5..=5), ("ucast", 2..=2)] {
            let factory = CountingMedium {
                info: PluginInfo {
                    kind: PluginKind::Medium,
                    name: name.to_string(),
                    origin: PluginOrigin::BuiltIn,
                    version: "test".to_string(),
                    description: "test medium".to_string(),
                },
                args,
            };
            registry
                .add_medium(Arc::new(factory))
                .expect("names are distinct");
        }
        registry
    }

    #[test]
    fn every_listed_option_directive_is_handled() {
        let registry = test_registry();
        for name in OPTION_DIRECTIVES {
            let mut draft = ClusterDraft::new(&registry, "ha.cf");
            let result = draft.option(name, "\u{1}", "ha.cf:1");
            assert!(
                !matches!(result, Err(ConfigError::UnknownDirective { .. })),
                "{name} is listed but not handled"
            );
        }
    }

    #[test]
    fn valid_apiauth_needs_a_client_and_one_list_of_each_kind_at_most() {
        assert!(valid_apiauth(&["ipfail", "uid=hacluster"]));
        assert!(valid_apiauth(&["anon", "uid=root", "gid=haclient"]));
        assert!(!valid_apiauth(&["ipfail"]));
        assert!(!valid_apiauth(&["ipfail", "uid=a", "uid=b"]));
        assert!(!valid_apiauth(&["ipfail", "users=a"]));
        assert!(!valid_apiauth(&[]));
    }
}
