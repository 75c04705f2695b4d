//! vigil's native YAML configuration: its schema, the reader and the writer behind
//! `vigil config convert`.
//!
//! The schema is the one place that says what an operator may write (`deny_unknown_fields`
//! everywhere). Scalar settings use their ha.cf names and go through the same directive
//! rules as ha.cf (`draft`), so a value means the same in both files. This module reads no
//! file and checks no permissions; `config::load_yaml` does.
//!
//! serde_yaml_ng reports positions only on errors, so [`YamlText::origin`] finds the
//! position of a value by asking the parser for an error right at that value.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use vigil_plugin_api::{Grants, Registry};

use crate::wire::auth::{AuthKeys, AuthMethod};

use super::authkeys::{parse_method, parse_slot};
use super::draft::{ClusterDraft, Places, written_medium_args};
use super::error::ConfigError;
use super::model::{
    AutoFailback, ClusterConfig, ConfigSource, ConnectivityFailover, DEFAULT_API_SOCKET,
    DEFAULT_HOPFUDGE, DEFAULT_UDP_PORT, GenerationMethod, HEARTBEAT_HA_DIR, MonitorSetting,
    MsgFormat, ResourceEntry, ResourceGroupConfig, StonithConfig, StonithParams, Timing,
    VIGIL_STATE_DIR,
};
use super::values::{format_duration, parse_bool, parse_time, parse_uint};

/// The whole file. Scalar settings carry their ha.cf name and syntax.
#[derive(Debug, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of settings with at least `nodes`, `media` and `auth`"
)]
struct ClusterFile {
    /// The local node's name, when it should not come from `uname -n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node_name: Option<String>,
    /// The cluster's nodes (ha.cf `node`).
    nodes: Vec<String>,
    /// The timers, in ha.cf's time syntax (`200ms`, `1`, `1.5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keepalive: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deadtime: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warntime: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    initdead: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deadping: Option<Scalar>,
    /// The UDP port of every UDP medium.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    udpport: Option<Scalar>,
    /// The speed of every serial medium (default 19200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    baud: Option<Scalar>,
    /// The media, one per entry, as ha.cf lines with a colon after the kind.
    media: Vec<MediumEntry>,
    /// The key slots (authkeys).
    auth: AuthEntry,
    /// The other ha.cf settings with an effect in vigil, in ha.cf's syntax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auto_failback: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    msgfmt: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hopfudge: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hbgenmethod: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_rexmit_delay: Option<Scalar>,
    /// Where `hb_generation` and `hb_uuid` live (default /var/lib/vigil).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state_dir: Option<String>,
    /// The local client socket (default /run/vigil/vigil.sock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_socket: Option<String>,
    /// Where `resource.d` scripts are looked for (default /etc/ha.d).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ha_dir: Option<String>,
    /// The resource groups: haresources' lines, with vigil's failover order and
    /// per-resource settings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    resource_groups: Vec<GroupEntry>,
    /// STONITH devices: `stonith` and `stonith_host` lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    stonith: Vec<StonithEntry>,
    /// The watchdog device fed on each heartbeat (ha.cf `watchdog`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    watchdog: Option<String>,
    /// Programs kept running beside the daemon (ha.cf `respawn` lines), started in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    respawn: Vec<ProgramEntry>,
    /// Programs whose abnormal death reboots the node (ha.cf `failfast` lines), started
    /// after the `respawn` ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    failfast: Vec<ProgramEntry>,
    /// Who may sign on to the client API as which client (ha.cf `apiauth` lines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    apiauth: Vec<ApiAuthEntry>,
    /// Connectivity-driven failover (vigil's built-in ipfail); absent: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connectivity_failover: Option<ConnectivityEntry>,
}

/// The `connectivity_failover` mapping.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as `{ dampening: 5s }` (or `{}` for the default dampening)"
)]
struct ConnectivityEntry {
    /// How long a difference in ping counts must last before a group moves (default:
    /// `deadping`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dampening: Option<Scalar>,
}

/// One client API permission: the client name and the users and groups allowed to use it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a client API permission such as `{ client: ipfail, uid: [hacluster], gid: [haclient] }`"
)]
struct ApiAuthEntry {
    /// The client name (`default` for names without their own entry).
    client: String,
    /// Users (names or numbers) that may sign on as this client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    uid: Vec<String>,
    /// Primary groups (names or numbers) that may sign on as this client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    gid: Vec<String>,
}

/// One `respawn` or `failfast` program: the user it runs as and its command line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a program such as `{ user: hacluster, command: /usr/lib/heartbeat/ipfail }`"
)]
struct ProgramEntry {
    /// The user it runs as.
    user: String,
    /// The command line, starting with an absolute path.
    command: String,
}

/// One STONITH device: its type, optionally the one node that uses it, and its parameters
/// given one of three ways (or none, for a device without parameters).
#[derive(Debug, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a STONITH device such as `{ type: external/ipmi, params: { hostname: node2, ipaddr: 198.18.0.12, userid: admin, passwd: secret, interface: lan } }`"
)]
struct StonithEntry {
    /// The device type as `stonith -t` takes it.
    #[serde(rename = "type")]
    device_type: String,
    /// The node that uses this device (`stonith_host`'s first word); absent: every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node: Option<String>,
    /// Named parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    params: Option<BTreeMap<String, Scalar>>,
    /// A positional parameter string, as on a `stonith_host` line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    params_line: Option<String>,
    /// A file holding the positional string, as on a `stonith` line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    params_file: Option<String>,
}

/// `auth`: either one slot (`method`, `key`, optional `slot`, default 1) or several
/// (`outbound` and `slots`).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthEntry {
    /// The one slot's number, when it is not 1 (peers see it in every signature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    slot: Option<u8>,
    /// The one slot's method: crc, md5 or sha1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    /// The one slot's key, for md5 and sha1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    /// With several slots: the one that signs outgoing messages (authkeys' `auth N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outbound: Option<u8>,
    /// With several slots: every slot by number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    slots: Option<BTreeMap<u8, SlotEntry>>,
}

/// One slot of the several-slots form of `auth`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotEntry {
    /// crc, md5 or sha1.
    method: String,
    /// The key, for md5 and sha1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

/// One resource group: the haresources line `node resource…`, plus the nodes that may run
/// it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a resource group such as `{ node: alpha, resources: [\"Dummy::web\"] }`"
)]
struct GroupEntry {
    /// The preferred node.
    node: String,
    /// The nodes that may run the group, preferred first; absent means the default order.
    /// An `Option` so that an empty list is refused rather than read as "the default".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    order: Option<Vec<String>>,
    /// The resources in start order.
    resources: Vec<ResourceItem>,
}

/// One entry of a group's `resources`: a plain haresources token (every setting at its
/// default), or a mapping with the token and its settings.
#[derive(Debug)]
enum ResourceItem {
    /// `"IPaddr::198.18.0.100/24/eth0"`: the haresources form.
    Token(String),
    /// `{ token: …, timeout: …, monitor: … }`.
    Detailed(ResourceMapping),
}

/// The mapping form of a resource.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceMapping {
    /// The haresources token.
    token: String,
    /// The timeout of every operation, in ha.cf's time syntax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<Scalar>,
    /// Periodic monitoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    monitor: Option<MonitorEntry>,
    /// What a WASM agent may do for this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grant: Option<GrantEntry>,
}

/// A resource's `grant` mapping: the capabilities its WASM agent may use. Every key is
/// optional and absent means denied.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a grant such as `{ log: true, addresses: [eth0], arp: [eth0], commands: \
                 [/usr/bin/systemctl], read: [/proc/net] }`"
)]
struct GrantEntry {
    /// May write to the daemon's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log: Option<bool>,
    /// Interfaces whose addresses it may manage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    addresses: Option<Vec<String>>,
    /// Interfaces it may send gratuitous ARP out of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    arp: Option<Vec<String>>,
    /// Programs it may run, by absolute path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    commands: Option<Vec<String>>,
    /// Files or directories it may read, by absolute path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    read: Option<Vec<String>>,
}

/// A resource's `monitor` mapping.
#[derive(Debug, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a monitor such as `{ interval: 10s, restarts: 2 }`"
)]
struct MonitorEntry {
    /// Time between monitors, in ha.cf's time syntax.
    interval: Scalar,
    /// Restarts in place before the group moves (default 0: the first failure moves it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    restarts: Option<Scalar>,
}

/// What a resource entry must look like, for messages.
const RESOURCE_ITEM_SYNTAX: &str = "a resource token such as \"IPaddr::198.18.0.100/24/eth0\" \
     (in quotes if YAML would read it as a number), or a mapping with `token` and optionally \
     `timeout`, `monitor` and `grant`";

impl<'de> Deserialize<'de> for ResourceItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;
        impl<'de> Visitor<'de> for ItemVisitor {
            type Value = ResourceItem;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(RESOURCE_ITEM_SYNTAX)
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<ResourceItem, E> {
                Ok(ResourceItem::Token(value.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ResourceItem, A::Error> {
                ResourceMapping::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ResourceItem::Detailed)
            }
        }
        deserializer.deserialize_any(ItemVisitor)
    }
}

impl Serialize for ResourceItem {
    /// A resource with default settings is written as the plain token, as haresources has
    /// it.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ResourceItem::Token(token) => serializer.serialize_str(token),
            ResourceItem::Detailed(mapping) => mapping.serialize(serializer),
        }
    }
}

/// One medium: a one-entry mapping `kind: arguments`, the ha.cf line with a colon.
#[derive(Debug)]
struct MediumEntry {
    /// The medium directive (`bcast`, `mcast`, `ucast`).
    kind: String,
    /// The rest of the ha.cf line.
    args: String,
}

/// A scalar setting kept as the text it was written as (`200ms`, `1.50`, `on`), because the
/// ha.cf rules parse it and `getparm` shows it as written. serde_yaml_ng hands the text of
/// any plain scalar to `deserialize_str`, numbers included.
#[derive(Debug, Clone)]
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a single value (text or number)")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Scalar, E> {
                Ok(Scalar(value.to_string()))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Scalar, E> {
                Ok(Scalar(value.to_string()))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Scalar, E> {
                Ok(Scalar(value.to_string()))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Scalar, E> {
                Ok(Scalar(value.to_string()))
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Scalar, E> {
                Ok(Scalar(value.to_string()))
            }
        }
        deserializer.deserialize_str(ScalarVisitor)
    }
}

impl Serialize for Scalar {
    /// Plain numbers are written as YAML numbers so the file reads naturally
    /// (`deadtime: 1`, not `deadtime: '1'`); reading them back gives the same text.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.0.as_str();
        if let Ok(integer) = text.parse::<u64>()
            && integer.to_string() == text
        {
            return serializer.serialize_u64(integer);
        }
        if let Ok(float) = text.parse::<f64>()
            && float.is_finite()
            && float.to_string() == text
        {
            return serializer.serialize_f64(float);
        }
        serializer.serialize_str(text)
    }
}

impl<'de> Deserialize<'de> for MediumEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = MediumEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a medium as `kind: arguments`, e.g. `ucast: eth0 198.18.0.2`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MediumEntry, A::Error> {
                let Some((kind, args)) = map.next_entry::<String, Scalar>()? else {
                    return Err(de::Error::invalid_length(0, &self));
                };
                if map.next_key::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom(
                        "one medium per list entry (expected `- kind: arguments`)",
                    ));
                }
                Ok(MediumEntry { kind, args: args.0 })
            }
        }
        deserializer.deserialize_map(EntryVisitor)
    }
}

impl Serialize for MediumEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(&self.kind, &self.args)?;
        map.end()
    }
}

/// One step of the way to a value in the document.
#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    /// The value of this key in a mapping.
    Key(&'a str),
    /// This entry of a sequence.
    Index(usize),
}

/// The text of a YAML file with its name, for positions in messages.
struct YamlText<'a> {
    /// The whole document.
    text: &'a str,
    /// The file name for messages.
    file: &'a str,
}

/// Marks the error that [`Probe`] raises on purpose.
const PROBE_MARK: &str = "\u{1}vigil: position probe";

impl YamlText<'_> {
    /// `file:line:column` of the value at `path`, or the file alone if it is not there.
    fn origin(&self, path: &[Step<'_>]) -> String {
        let probe = Probe { path };
        match probe.deserialize(serde_yaml_ng::Deserializer::from_str(self.text)) {
            Err(err) if err.to_string().contains(PROBE_MARK) => match err.location() {
                Some(at) => format!("{}:{}:{}", self.file, at.line(), at.column()),
                None => self.file.to_string(),
            },
            _ => self.file.to_string(),
        }
    }

    /// A parser error as `file:line:column: message`.
    fn error(&self, err: &serde_yaml_ng::Error) -> ConfigError {
        let message = err.to_string();
        match err.location() {
            Some(at) => {
                let suffix = format!(" at line {} column {}", at.line(), at.column());
                ConfigError::Yaml {
                    origin: format!("{}:{}:{}", self.file, at.line(), at.column()),
                    message: message.replacen(&suffix, "", 1),
                }
            }
            None => ConfigError::Yaml {
                origin: self.file.to_string(),
                message,
            },
        }
    }
}

/// Walks the document to the value at `path` and fails there, so the parser attaches that
/// value's position to the error.
struct Probe<'p> {
    /// What is left of the way to the value.
    path: &'p [Step<'p>],
}

impl Probe<'_> {
    fn reached<E: de::Error>(&self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(E::custom(PROBE_MARK))
        } else {
            Ok(())
        }
    }
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PROBE_MARK)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.reached()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.reached()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.reached()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.reached()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.reached()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.reached()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        match self.path.split_first() {
            None => Err(de::Error::custom(PROBE_MARK)),
            Some((Step::Index(index), rest)) => {
                for _ in 0..*index {
                    if seq.next_element::<IgnoredAny>()?.is_none() {
                        return Ok(());
                    }
                }
                seq.next_element_seed(Probe { path: rest }).map(|_| ())
            }
            Some((Step::Key(_), _)) => Ok(()),
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        match self.path.split_first() {
            None => Err(de::Error::custom(PROBE_MARK)),
            Some((Step::Key(wanted), rest)) => {
                while let Some(key) = map.next_key::<Option<Scalar>>()? {
                    if key.is_some_and(|key| key.0 == *wanted) {
                        return map.next_value_seed(Probe { path: rest });
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(())
            }
            Some((Step::Index(_), _)) => Ok(()),
        }
    }
}

/// The ha.cf option directives the YAML file carries, in the order they are applied
/// (`udpport` and `baud` before the media read them).
fn option_settings(file: &ClusterFile) -> [(&'static str, &Option<Scalar>); 12] {
    [
        ("udpport", &file.udpport),
        ("baud", &file.baud),
        ("keepalive", &file.keepalive),
        ("deadtime", &file.deadtime),
        ("warntime", &file.warntime),
        ("initdead", &file.initdead),
        ("deadping", &file.deadping),
        ("max_rexmit_delay", &file.max_rexmit_delay),
        ("hopfudge", &file.hopfudge),
        ("msgfmt", &file.msgfmt),
        ("hbgenmethod", &file.hbgenmethod),
        ("auto_failback", &file.auto_failback),
    ]
}

/// Reads the text of a YAML configuration at `path` (named in messages). Media are checked
/// by their plugins in `registry`.
pub(crate) fn parse(
    text: &str,
    path: &Path,
    registry: &Registry,
) -> Result<ClusterConfig, ConfigError> {
    let file_name = path.display().to_string();
    let yaml = YamlText {
        text,
        file: &file_name,
    };
    let file: ClusterFile = serde_yaml_ng::from_str(text).map_err(|err| yaml.error(&err))?;

    let mut draft = ClusterDraft::new(registry, &file_name);
    for (index, node) in file.nodes.iter().enumerate() {
        draft.option(
            "node",
            node,
            &yaml.origin(&[Step::Key("nodes"), Step::Index(index)]),
        )?;
    }
    for (name, value) in option_settings(&file) {
        if let Some(value) = value {
            draft.option(name, &value.0, &yaml.origin(&[Step::Key(name)]))?;
        }
    }
    for (index, medium) in file.media.iter().enumerate() {
        let origin = yaml.origin(&[Step::Key("media"), Step::Index(index)]);
        draft.medium(&medium.kind, &medium.args, &origin)?;
    }
    if let Some(device) = &file.watchdog {
        draft.option("watchdog", device, &yaml.origin(&[Step::Key("watchdog")]))?;
    }
    for (key, entries) in [("respawn", &file.respawn), ("failfast", &file.failfast)] {
        for (index, entry) in entries.iter().enumerate() {
            let origin = yaml.origin(&[Step::Key(key), Step::Index(index)]);
            draft.client(key == "failfast", &entry.user, &entry.command, &origin)?;
        }
    }
    for (index, entry) in file.apiauth.iter().enumerate() {
        let origin = yaml.origin(&[Step::Key("apiauth"), Step::Index(index)]);
        draft.api_auth(&entry.client, entry.uid.clone(), entry.gid.clone(), &origin);
    }
    let settings = draft.finish()?;

    let auth = auth_keys(&file.auth, &yaml)?;
    let node_name = match &file.node_name {
        Some(name) => {
            let name = name.to_ascii_lowercase();
            if !settings.nodes.contains(&name) {
                return Err(ConfigError::UnknownNode {
                    origin: yaml.origin(&[Step::Key("node_name")]),
                    node: name,
                    nodes: settings.nodes.join(", "),
                });
            }
            Some(name)
        }
        None => None,
    };
    let resource_groups = resource_groups(&file.resource_groups, &settings.nodes, &yaml)?;
    let connectivity_failover = match &file.connectivity_failover {
        None => None,
        Some(entry) => Some(ConnectivityFailover {
            dampening: match &entry.dampening {
                None => None,
                Some(value) => Some(bounded_time(
                    value,
                    "dampening",
                    Duration::ZERO..=ConnectivityFailover::MAX_DAMPENING,
                    "at most an hour",
                    || yaml.origin(&[Step::Key("connectivity_failover"), Step::Key("dampening")]),
                )?),
            },
        }),
    };
    let mut settings = settings;
    settings.stonith = stonith_devices(&file.stonith, &settings.nodes, &yaml)?;
    let mut config = settings.into_config(
        ConfigSource::Yaml(path.to_path_buf()),
        node_name,
        auth,
        resource_groups,
        Places {
            state_dir: PathBuf::from(file.state_dir.as_deref().unwrap_or(VIGIL_STATE_DIR)),
            api_socket: PathBuf::from(file.api_socket.as_deref().unwrap_or(DEFAULT_API_SOCKET)),
            script_dir: PathBuf::from(file.ha_dir.as_deref().unwrap_or(HEARTBEAT_HA_DIR)),
        },
    );
    config.connectivity_failover = connectivity_failover;
    Ok(config)
}

/// The `auth` entry as key slots, with the same rules as authkeys.
fn auth_keys(entry: &AuthEntry, yaml: &YamlText<'_>) -> Result<AuthKeys, ConfigError> {
    let origin = yaml.origin(&[Step::Key("auth")]);
    let refuse = |message: &str| {
        Err(ConfigError::Auth {
            origin: origin.clone(),
            message: message.to_string(),
        })
    };
    let key_words = |key: &Option<String>| -> Vec<String> {
        key.as_deref()
            .map(|key| key.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let (outbound, slots) = match entry {
        AuthEntry {
            method: Some(method),
            slot,
            key,
            outbound: None,
            slots: None,
        } => {
            let slot = parse_slot(&slot.unwrap_or(1).to_string(), &origin)?;
            let words = key_words(key);
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            (
                slot,
                vec![(slot, parse_method(method, &words, slot, &origin)?)],
            )
        }
        AuthEntry {
            method: None,
            slot: None,
            key: None,
            outbound: Some(outbound),
            slots: Some(slots),
        } => {
            let mut defined = Vec::new();
            for (slot, slot_entry) in slots {
                let slot_text = slot.to_string();
                let slot_origin =
                    yaml.origin(&[Step::Key("auth"), Step::Key("slots"), Step::Key(&slot_text)]);
                let slot = parse_slot(&slot_text, &slot_origin)?;
                let words = key_words(&slot_entry.key);
                let words: Vec<&str> = words.iter().map(String::as_str).collect();
                defined.push((
                    slot,
                    parse_method(&slot_entry.method, &words, slot, &slot_origin)?,
                ));
            }
            (parse_slot(&outbound.to_string(), &origin)?, defined)
        }
        AuthEntry {
            method: Some(_), ..
        }
        | AuthEntry { slots: Some(_), .. } => {
            return refuse(
                "give either `method` (with `key`, and optionally `slot`) or `outbound` with \
                 `slots`, not both",
            );
        }
        AuthEntry {
            outbound: Some(_), ..
        } => return refuse("`outbound` needs `slots` (expected `slots: {N: {method: …}}`)"),
        _ => {
            return refuse(
                "expected `method` (crc, md5 or sha1, with `key` for md5 and sha1), or \
                 `outbound` with `slots`",
            );
        }
    };
    AuthKeys::new(outbound, slots).map_err(|source| ConfigError::AuthKeys { origin, source })
}

/// The `resource_groups` entries with the same rules as haresources, plus the rules of
/// vigil's own settings (order, timeout, monitor).
/// The `stonith` entries as the model holds them; a node must be one of the cluster's, and
/// the parameters are given at most one way.
fn stonith_devices(
    entries: &[StonithEntry],
    nodes: &[String],
    yaml: &YamlText<'_>,
) -> Result<Vec<StonithConfig>, ConfigError> {
    let mut devices = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let at = |key: Option<&'static str>| {
            let mut path = vec![Step::Key("stonith"), Step::Index(index)];
            path.extend(key.map(Step::Key));
            yaml.origin(&path)
        };
        let node = entry.node.as_ref().map(|n| n.to_ascii_lowercase());
        if let Some(node) = node.as_ref().filter(|n| !nodes.contains(n)) {
            return Err(ConfigError::UnknownNode {
                origin: at(Some("node")),
                node: node.clone(),
                nodes: nodes.join(", "),
            });
        }
        let params = match (&entry.params, &entry.params_line, &entry.params_file) {
            (Some(named), None, None) => StonithParams::Named(
                named
                    .iter()
                    .map(|(name, value)| (name.clone(), value.0.clone()))
                    .collect(),
            ),
            (None, Some(line), None) => StonithParams::Line(line.clone()),
            (None, None, Some(file)) => StonithParams::File(PathBuf::from(file)),
            (None, None, None) => StonithParams::Line(String::new()),
            _ => {
                return Err(ConfigError::Conflict {
                    origin: at(None),
                    message: format!(
                        "STONITH device `{}` gives its parameters more than one way (expected \
                         one of params, params_line, params_file)",
                        entry.device_type
                    ),
                });
            }
        };
        devices.push(StonithConfig {
            node,
            device_type: entry.device_type.clone(),
            params,
            origin: at(None),
        });
    }
    Ok(devices)
}

fn resource_groups(
    entries: &[GroupEntry],
    nodes: &[String],
    yaml: &YamlText<'_>,
) -> Result<Vec<ResourceGroupConfig>, ConfigError> {
    let mut groups: Vec<ResourceGroupConfig> = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let at = |rest: &[Step<'_>]| {
            let mut path = vec![Step::Key("resource_groups"), Step::Index(index)];
            path.extend_from_slice(rest);
            yaml.origin(&path)
        };
        let node = entry.node.to_ascii_lowercase();
        if !nodes.contains(&node) {
            return Err(ConfigError::UnknownNode {
                origin: at(&[Step::Key("node")]),
                node,
                nodes: nodes.join(", "),
            });
        }
        if entry.resources.is_empty() {
            return Err(ConfigError::Resources {
                origin: at(&[Step::Key("resources")]),
                message: format!(
                    "the group of node `{node}` has no resources (expected a list such as \
                     [\"IPaddr::198.18.0.100/24/eth0\", \"httpd\"])"
                ),
            });
        }
        let resources = entry
            .resources
            .iter()
            .enumerate()
            .map(|(position, item)| {
                resource_entry(item, &|rest: &[Step<'_>]| {
                    let mut path = vec![Step::Key("resources"), Step::Index(position)];
                    path.extend_from_slice(rest);
                    at(&path)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let key = resources.first().map_or("", |r| r.token.as_str());
        let order = match &entry.order {
            Some(names) => group_order(names, &node, key, nodes, &|rest: &[Step<'_>]| {
                let mut path = vec![Step::Key("order")];
                path.extend_from_slice(rest);
                at(&path)
            })?,
            None => Vec::new(),
        };
        let origin = at(&[]);
        if let Some(first) = groups.iter().find(|g| g.key() == key) {
            return Err(ConfigError::Duplicate {
                origin,
                what: format!("resource group `{key}`"),
                first: first.origin.clone(),
            });
        }
        groups.push(ResourceGroupConfig {
            node,
            order,
            resources,
            origin,
        });
    }
    Ok(groups)
}

/// One entry of `resources` with its settings checked; `at` gives the position of a value
/// inside the entry (`&[]` for the entry itself).
fn resource_entry(
    item: &ResourceItem,
    at: &dyn Fn(&[Step<'_>]) -> String,
) -> Result<ResourceEntry, ConfigError> {
    let (token, token_at): (&str, &[Step<'_>]) = match item {
        ResourceItem::Token(token) => (token, &[]),
        ResourceItem::Detailed(mapping) => (&mapping.token, &[Step::Key("token")]),
    };
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(ConfigError::Resources {
            origin: at(token_at),
            message: format!(
                "resource `{token}` is not one haresources token (expected no spaces: write \
                 `Script::arg1::arg2`)"
            ),
        });
    }
    let ResourceItem::Detailed(mapping) = item else {
        return Ok(ResourceEntry::plain(token));
    };
    let timeout = match &mapping.timeout {
        Some(value) => Some(bounded_time(
            value,
            "timeout",
            ResourceEntry::MIN_TIMEOUT..=ResourceEntry::MAX_TIMEOUT,
            &format!(
                "a time from {} to {}",
                format_duration(ResourceEntry::MIN_TIMEOUT),
                format_duration(ResourceEntry::MAX_TIMEOUT)
            ),
            || at(&[Step::Key("timeout")]),
        )?),
        None => None,
    };
    let monitor = match &mapping.monitor {
        Some(monitor) => {
            // Times are whole milliseconds, so "above zero" is "at least 1 ms".
            let interval = bounded_time(
                &monitor.interval,
                "monitor interval",
                Duration::from_millis(1)..=MonitorSetting::MAX_INTERVAL,
                &format!(
                    "a time above zero and at most {}",
                    format_duration(MonitorSetting::MAX_INTERVAL)
                ),
                || at(&[Step::Key("monitor"), Step::Key("interval")]),
            )?;
            let restarts = match &monitor.restarts {
                Some(value) => parse_uint(&value.0, 0, u64::from(MonitorSetting::MAX_RESTARTS))
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| ConfigError::BadValue {
                        origin: at(&[Step::Key("monitor"), Step::Key("restarts")]),
                        directive: "monitor restarts".to_string(),
                        value: value.0.clone(),
                        expected: format!(
                            "a whole number from 0 to {}",
                            MonitorSetting::MAX_RESTARTS
                        ),
                    })?,
                None => 0,
            };
            Some(MonitorSetting { interval, restarts })
        }
        None => None,
    };
    let grants = match &mapping.grant {
        Some(grant) => grants(grant, &|key| at(&[Step::Key("grant"), Step::Key(key)]))?,
        None => Grants::default(),
    };
    Ok(ResourceEntry {
        token: token.to_string(),
        timeout,
        monitor,
        grants,
    })
}

/// The longest interface name Linux accepts (IFNAMSIZ - 1).
const MAX_INTERFACE_NAME: usize = 15;

/// A `grant` mapping checked: interfaces must be names Linux could have, programs and paths
/// absolute and without `..`, so that what the operator reads is what is enforced.
fn grants(entry: &GrantEntry, at: &dyn Fn(&str) -> String) -> Result<Grants, ConfigError> {
    let bad = |key: &str, value: &str, expected: &str| ConfigError::BadValue {
        origin: at(key),
        directive: format!("grant {key}"),
        value: value.to_string(),
        expected: expected.to_string(),
    };
    let interfaces = |key: &str, list: &Option<Vec<String>>| {
        let mut names = BTreeSet::new();
        for name in list.iter().flatten() {
            if name.is_empty()
                || name.len() > MAX_INTERFACE_NAME
                || name.contains(['/', ':'])
                || name.contains(char::is_whitespace)
            {
                return Err(bad(
                    key,
                    name,
                    "an interface name of 1 to 15 characters without `/`, `:` or spaces",
                ));
            }
            names.insert(name.clone());
        }
        Ok(names)
    };
    let paths = |key: &str, list: &Option<Vec<String>>| {
        let mut paths = BTreeSet::new();
        for text in list.iter().flatten() {
            let path = PathBuf::from(text);
            let plain = path.is_absolute()
                && path
                    .components()
                    .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
            if !plain {
                return Err(bad(key, text, "an absolute path without `.` or `..`"));
            }
            paths.insert(path);
        }
        Ok(paths)
    };
    Ok(Grants {
        log: entry.log.unwrap_or(false),
        address_interfaces: interfaces("addresses", &entry.addresses)?,
        arp_interfaces: interfaces("arp", &entry.arp)?,
        commands: paths("commands", &entry.commands)?,
        read_paths: paths("read", &entry.read)?,
    })
}

/// The `grant` mapping that gives back `grants`, or `None` for the default (nothing).
fn grant_entry(grants: &Grants) -> Option<GrantEntry> {
    if *grants == Grants::default() {
        return None;
    }
    let names = |set: &BTreeSet<String>| (!set.is_empty()).then(|| set.iter().cloned().collect());
    let paths = |set: &BTreeSet<PathBuf>| {
        (!set.is_empty()).then(|| set.iter().map(|p| p.display().to_string()).collect())
    };
    Some(GrantEntry {
        log: grants.log.then_some(true),
        addresses: names(&grants.address_interfaces),
        arp: names(&grants.arp_interfaces),
        commands: paths(&grants.commands),
        read: paths(&grants.read_paths),
    })
}

/// A time setting in ha.cf's syntax (whole milliseconds) within `range`; `expected` says
/// what the range is, `origin` is only computed for a message.
fn bounded_time(
    value: &Scalar,
    name: &str,
    range: RangeInclusive<Duration>,
    expected: &str,
    origin: impl Fn() -> String,
) -> Result<Duration, ConfigError> {
    parse_time(&value.0)
        .filter(|duration| range.contains(duration))
        .ok_or_else(|| ConfigError::BadValue {
            origin: origin(),
            directive: name.to_string(),
            value: value.0.clone(),
            expected: format!("{expected}: a number in seconds, or followed by ms or us"),
        })
}

/// A group's `order`: configured nodes, each once, the preferred node `node` first. `at`
/// gives the position of an entry (`&[]` for the list).
fn group_order(
    names: &[String],
    node: &str,
    key: &str,
    nodes: &[String],
    at: &dyn Fn(&[Step<'_>]) -> String,
) -> Result<Vec<String>, ConfigError> {
    let mut order: Vec<String> = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let name = name.to_ascii_lowercase();
        if !nodes.contains(&name) {
            return Err(ConfigError::UnknownNode {
                origin: at(&[Step::Index(index)]),
                node: name,
                nodes: nodes.join(", "),
            });
        }
        if let Some(first) = order.iter().position(|n| *n == name) {
            return Err(ConfigError::Duplicate {
                origin: at(&[Step::Index(index)]),
                what: format!("node `{name}` in the order of group `{key}`"),
                first: at(&[Step::Index(first)]),
            });
        }
        order.push(name);
    }
    match order.first() {
        None => Err(ConfigError::Resources {
            origin: at(&[]),
            message: format!(
                "the order of group `{key}` is empty (expected the nodes that may run it, \
                 its preferred node first, such as [{node}, …]; leave `order` out for the \
                 default order)"
            ),
        }),
        Some(first) if first != node => Err(ConfigError::Resources {
            origin: at(&[Step::Index(0)]),
            message: format!(
                "the order of group `{key}` starts with `{first}`, not with its preferred \
                 node `{node}` (expected [{node}, …])"
            ),
        }),
        Some(_) => Ok(order),
    }
}

/// The YAML equivalent of `config`: what `vigil config convert` prints. Settings keep the
/// spelling they were written with (`deadtime: 1` stays `1`), settings left at their default
/// are left out, and directives without effect in vigil are listed as comments. Reading the
/// result back gives the same model, apart from where each value was written.
pub fn to_yaml(config: &ClusterConfig) -> String {
    let file = ClusterFile {
        node_name: config.node_name.clone(),
        nodes: config.nodes.clone(),
        keepalive: time_setting(
            config,
            "keepalive",
            config.timing.keepalive,
            Timing::DEFAULT_KEEPALIVE,
        ),
        deadtime: time_setting(
            config,
            "deadtime",
            config.timing.deadtime,
            Timing::DEFAULT_DEADTIME,
        ),
        warntime: time_setting(
            config,
            "warntime",
            config.timing.warntime,
            Timing::default_warntime(config.timing.deadtime),
        ),
        initdead: time_setting(
            config,
            "initdead",
            config.timing.initdead,
            Timing::default_initdead(config.timing.deadtime),
        ),
        deadping: time_setting(
            config,
            "deadping",
            config.timing.deadping,
            config.timing.deadtime,
        ),
        baud: config
            .parameters
            .iter()
            .find(|(key, _)| key == "baud")
            .map(|(_, written)| Scalar(written.clone())),
        udpport: setting(
            config,
            "udpport",
            &config.udp_port.to_string(),
            &DEFAULT_UDP_PORT.to_string(),
            |written| {
                parse_uint(written, 1, u64::from(u16::MAX)) == Some(u64::from(config.udp_port))
            },
        ),
        media: config
            .media
            .iter()
            .map(|medium| MediumEntry {
                kind: medium.kind.clone(),
                args: written_medium_args(medium).join(" "),
            })
            .collect(),
        auth: auth_entry(&config.auth),
        auto_failback: setting(
            config,
            "auto_failback",
            config.auto_failback.as_str(),
            AutoFailback::default().as_str(),
            |written| {
                let meant = match parse_bool(written) {
                    Some(true) => Some(AutoFailback::On),
                    Some(false) => Some(AutoFailback::Off),
                    None => written
                        .eq_ignore_ascii_case("legacy")
                        .then_some(AutoFailback::Legacy),
                };
                meant == Some(config.auto_failback)
            },
        ),
        msgfmt: setting(
            config,
            "msgfmt",
            config.msgfmt.as_str(),
            MsgFormat::default().as_str(),
            |written| written == config.msgfmt.as_str(),
        ),
        hopfudge: setting(
            config,
            "hopfudge",
            &config.hopfudge.to_string(),
            &DEFAULT_HOPFUDGE.to_string(),
            |written| parse_uint(written, 0, 255) == Some(u64::from(config.hopfudge)),
        ),
        hbgenmethod: setting(
            config,
            "hbgenmethod",
            config.generation_method.as_str(),
            GenerationMethod::default().as_str(),
            |written| written == config.generation_method.as_str(),
        ),
        max_rexmit_delay: setting(
            config,
            "max_rexmit_delay",
            &config.timing.max_rexmit_delay.as_millis().to_string(),
            &Timing::DEFAULT_MAX_REXMIT_DELAY.as_millis().to_string(),
            |written| {
                parse_uint(written.strip_suffix("ms").unwrap_or(written), 1, u64::MAX)
                    .map(u128::from)
                    == Some(config.timing.max_rexmit_delay.as_millis())
            },
        ),
        state_dir: path_setting(&config.state_dir, VIGIL_STATE_DIR),
        api_socket: path_setting(&config.api_socket, DEFAULT_API_SOCKET),
        ha_dir: path_setting(&config.script_dir, HEARTBEAT_HA_DIR),
        resource_groups: config.resource_groups.iter().map(group_entry).collect(),
        stonith: config.stonith.iter().map(stonith_entry).collect(),
        watchdog: config
            .watchdog
            .as_ref()
            .map(|device| device.to_string_lossy().into_owned()),
        respawn: program_entries(config, false),
        failfast: program_entries(config, true),
        apiauth: config
            .api_auth
            .iter()
            .map(|rule| ApiAuthEntry {
                client: rule.client.clone(),
                uid: rule.users.clone(),
                gid: rule.groups.clone(),
            })
            .collect(),
        connectivity_failover: config
            .connectivity_failover
            .map(|connectivity| ConnectivityEntry {
                dampening: connectivity
                    .dampening
                    .map(|dampening| Scalar(format_duration(dampening))),
            }),
    };
    let mut out = String::from("# vigil cluster configuration");
    match &config.source {
        ConfigSource::HaDir(dir) => out.push_str(&format!(", converted from {}", dir.display())),
        ConfigSource::Yaml(path) => out.push_str(&format!(", from {}", path.display())),
    }
    out.push_str(".\n");
    if config
        .auth
        .slots()
        .any(|(_, method)| *method != AuthMethod::Crc)
    {
        out.push_str(
            "# It holds authentication keys: keep it readable by its owner only (chmod 600).\n",
        );
    }
    if !config.ignored_directives.is_empty() {
        out.push_str("# Not carried over (no effect in vigil):\n");
        for (name, value) in &config.ignored_directives {
            out.push_str(&format!("#   {name} {value}\n"));
        }
    }
    match serde_yaml_ng::to_string(&file) {
        Ok(body) => out.push_str(&body),
        Err(err) => out.push_str(&format!(
            "# cannot write the configuration as YAML: {err}\n"
        )),
    }
    out
}

/// The `respawn` (or, with `failfast`, the `failfast`) programs as the YAML file lists them.
fn program_entries(config: &ClusterConfig, failfast: bool) -> Vec<ProgramEntry> {
    config
        .clients
        .iter()
        .filter(|program| program.failfast == failfast)
        .map(|program| ProgramEntry {
            user: program.user.clone(),
            command: program.command.clone(),
        })
        .collect()
}

/// A setting for the YAML file: its written spelling if it still means the current value,
/// else the current value if it differs from the default, else nothing.
fn setting(
    config: &ClusterConfig,
    name: &str,
    current: &str,
    default: &str,
    means_current: impl Fn(&str) -> bool,
) -> Option<Scalar> {
    let written = config
        .parameters
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .filter(|written| means_current(written));
    match written {
        Some(written) => Some(Scalar(written.to_string())),
        None if current != default => Some(Scalar(current.to_string())),
        None => None,
    }
}

fn time_setting(
    config: &ClusterConfig,
    name: &str,
    current: Duration,
    default: Duration,
) -> Option<Scalar> {
    setting(
        config,
        name,
        &format_duration(current),
        &format_duration(default),
        |written| parse_time(written) == Some(current),
    )
}

/// A group as the YAML file writes it: `order` only when one was configured, each resource
/// as its plain token unless it has settings.
fn stonith_entry(device: &StonithConfig) -> StonithEntry {
    let mut entry = StonithEntry {
        device_type: device.device_type.clone(),
        node: device.node.clone(),
        params: None,
        params_line: None,
        params_file: None,
    };
    match &device.params {
        StonithParams::Line(line) if line.is_empty() => {}
        StonithParams::Line(line) => entry.params_line = Some(line.clone()),
        StonithParams::File(file) => entry.params_file = Some(file.display().to_string()),
        StonithParams::Named(named) => {
            entry.params = Some(
                named
                    .iter()
                    .map(|(name, value)| (name.clone(), Scalar(value.clone())))
                    .collect(),
            );
        }
    }
    entry
}

fn group_entry(group: &ResourceGroupConfig) -> GroupEntry {
    GroupEntry {
        node: group.node.clone(),
        order: (!group.order.is_empty()).then(|| group.order.clone()),
        resources: group
            .resources
            .iter()
            .map(|resource| match resource {
                ResourceEntry {
                    token,
                    timeout: None,
                    monitor: None,
                    grants,
                } if *grants == Grants::default() => ResourceItem::Token(token.clone()),
                ResourceEntry {
                    token,
                    timeout,
                    monitor,
                    grants,
                } => ResourceItem::Detailed(ResourceMapping {
                    token: token.clone(),
                    timeout: timeout.map(|t| Scalar(format_duration(t))),
                    monitor: monitor.map(|m| MonitorEntry {
                        interval: Scalar(format_duration(m.interval)),
                        restarts: Some(Scalar(m.restarts.to_string())),
                    }),
                    grant: grant_entry(grants),
                }),
            })
            .collect(),
    }
}

fn path_setting(path: &Path, default: &str) -> Option<String> {
    (path != Path::new(default)).then(|| path.to_string_lossy().into_owned())
}

fn auth_entry(auth: &AuthKeys) -> AuthEntry {
    let key_of = |method: &AuthMethod| match method {
        AuthMethod::Crc => None,
        AuthMethod::Md5 { key } | AuthMethod::Sha1 { key } => Some(key.clone()),
    };
    if auth.slots().count() == 1 {
        let method = auth.outbound();
        AuthEntry {
            slot: (auth.outbound_slot() != 1).then_some(auth.outbound_slot()),
            method: Some(method.name().to_string()),
            key: key_of(method),
            ..AuthEntry::default()
        }
    } else {
        AuthEntry {
            outbound: Some(auth.outbound_slot()),
            slots: Some(
                auth.slots()
                    .map(|(slot, method)| {
                        (
                            slot,
                            SlotEntry {
                                method: method.name().to_string(),
                                key: key_of(method),
                            },
                        )
                    })
                    .collect(),
            ),
            ..AuthEntry::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::draft::tests::test_registry;
    use super::*;

    const BASE: &str = "nodes: [hb1, hb2]\nmedia:\n  - bcast: eth0\nauth: { method: crc }\n";

    fn parse_ok(text: &str) -> ClusterConfig {
        parse(text, Path::new("cluster.yaml"), &test_registry())
            .unwrap_or_else(|err| panic!("{text:?} was refused: {err}"))
    }

    fn parse_err(text: &str) -> String {
        match parse(text, Path::new("cluster.yaml"), &test_registry()) {
            Ok(config) => panic!("{text:?} was accepted: {config:?}"),
            Err(err) => err.to_string(),
        }
    }

    fn origin_of(text: &str, path: &[Step<'_>]) -> String {
        YamlText {
            text,
            file: "f.yaml",
        }
        .origin(path)
    }

    #[test]
    fn ipv6_media_of_the_built_in_registry_are_accepted() {
        let text = "nodes: [hb1, hb2]\nmedia:\n  - mcast6: eth0 ff12::1:2:3:4 694 1 0\n\
                    \x20 - ucast6: eth0 2001:2::2\nauth: { method: crc }\n";
        let config = parse(text, Path::new("cluster.yaml"), &crate::registry::builtin())
            .unwrap_or_else(|err| panic!("{text:?} was refused: {err}"));
        let media: Vec<(&str, usize)> = config
            .media
            .iter()
            .map(|m| (m.kind.as_str(), m.args.len()))
            .collect();
        assert_eq!(media, [("mcast6", 5), ("ucast6", 2)]);
    }

    #[test]
    fn ping_media_of_the_built_in_registry_are_accepted() {
        let text = "nodes: [hb1, hb2]\nmedia:\n  - bcast: eth0\n  - ping: 198.18.0.254\n\
                    \x20 - ping_group: routers 198.18.0.251 198.18.0.252\n\
                    deadping: 3s\nauth: { method: crc }\n";
        let config = parse(text, Path::new("cluster.yaml"), &crate::registry::builtin())
            .unwrap_or_else(|err| panic!("{text:?} was refused: {err}"));
        let media: Vec<(&str, usize)> = config
            .media
            .iter()
            .map(|m| (m.kind.as_str(), m.args.len()))
            .collect();
        assert_eq!(media, [("bcast", 1), ("ping", 1), ("ping_group", 3)]);
        assert_eq!(config.timing.deadping, Duration::from_secs(3));
    }

    #[test]
    fn positions_are_found_in_block_and_flow_style() {
        let text = "nodes: [hb1, hb2]\nmedia:\n  - bcast: eth0\n  - ucast: eth0 1.2.3.4\n\
                    auth:\n  slots:\n    2: { method: md5, key: k }\n";
        assert_eq!(
            origin_of(text, &[Step::Key("nodes"), Step::Index(1)]),
            "f.yaml:1:14"
        );
        assert_eq!(
            origin_of(text, &[Step::Key("media"), Step::Index(1)]),
            "f.yaml:4:5"
        );
        assert_eq!(
            origin_of(
                text,
                &[Step::Key("auth"), Step::Key("slots"), Step::Key("2")]
            ),
            "f.yaml:7:8"
        );
        assert_eq!(origin_of(text, &[Step::Key("keepalive")]), "f.yaml");
        assert_eq!(
            origin_of(text, &[Step::Key("media"), Step::Index(5)]),
            "f.yaml"
        );
    }

    #[test]
    fn scalar_settings_keep_their_spelling() {
        let config = parse_ok(&format!(
            "deadtime: 10.50\nudpport: 0694\nkeepalive: 1\n{BASE}"
        ));
        assert_eq!(config.parameter("deadtime").as_deref(), Some("10.50"));
        assert_eq!(config.parameter("udpport").as_deref(), Some("0694"));
        assert_eq!(config.parameter("keepalive").as_deref(), Some("1"));
        assert_eq!(config.udp_port, 694);
        assert_eq!(config.media[0].udp_port, 694);
        assert_eq!(config.timing.deadtime, Duration::from_millis(10_500));
        let yaml = to_yaml(&config);
        assert!(yaml.contains("deadtime: '10.50'\n"), "{yaml}");
        assert!(yaml.contains("keepalive: 1\n"), "{yaml}");
    }

    #[test]
    fn baud_reaches_serial_media_and_survives_a_round_trip() {
        let registry = crate::registry::builtin();
        let text = "nodes: [hb1, hb2]\nbaud: 38400\nmedia:\n  - serial: /dev/ttyS0 /dev/ttyS1\n  \
                    - bcast: eth0\nauth: { method: crc }\n";
        let config =
            parse(text, Path::new("cluster.yaml"), &registry).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(config.media[0].args, ["/dev/ttyS0", "baud=38400"]);
        assert_eq!(config.media[1].args, ["/dev/ttyS1", "baud=38400"]);
        assert_eq!(config.media[2].args, ["eth0"]);
        assert_eq!(config.parameter("baud").as_deref(), Some("38400"));
        let yaml = to_yaml(&config);
        assert!(yaml.contains("baud: 38400\n"), "{yaml}");
        assert!(yaml.contains("- serial: /dev/ttyS0\n"), "{yaml}");
        let again = parse(&yaml, Path::new("cluster.yaml"), &registry)
            .unwrap_or_else(|err| panic!("{yaml}: {err}"));
        let kinds_and_args = |config: &ClusterConfig| -> Vec<(String, Vec<String>)> {
            config
                .media
                .iter()
                .map(|m| (m.kind.clone(), m.args.clone()))
                .collect()
        };
        assert_eq!(kinds_and_args(&again), kinds_and_args(&config));
    }

    #[test]
    fn defaults_apply_and_are_not_written_back() {
        let config = parse_ok(BASE);
        assert_eq!(config.state_dir, Path::new(VIGIL_STATE_DIR));
        assert_eq!(config.api_socket, Path::new(DEFAULT_API_SOCKET));
        assert_eq!(config.script_dir, Path::new(HEARTBEAT_HA_DIR));
        assert_eq!(config.timing.deadtime, Timing::DEFAULT_DEADTIME);
        assert!(config.parameters.is_empty());
        let yaml = to_yaml(&config);
        for absent in [
            "keepalive",
            "deadtime",
            "warntime",
            "udpport",
            "state_dir",
            "api_socket",
            "ha_dir",
        ] {
            assert!(!yaml.contains(absent), "{absent} in\n{yaml}");
        }
    }

    #[test]
    fn nodes_and_node_name_are_lower_cased() {
        let config = parse_ok(&format!("node_name: HB2\n{}", BASE.replace("hb1", "HB1")));
        assert_eq!(config.nodes, ["hb1", "hb2"]);
        assert_eq!(config.node_name.as_deref(), Some("hb2"));
    }

    #[test]
    fn several_slots_name_their_outbound_one() {
        let config = parse_ok(
            "nodes: [a]\nmedia: [{bcast: eth0}]\nauth:\n  outbound: 2\n  slots:\n    \
             1: {method: crc}\n    2: {method: sha1, key: k}\n",
        );
        assert_eq!(config.auth.outbound_slot(), 2);
        assert_eq!(config.auth.slot(1), Some(&AuthMethod::Crc));
        let single =
            parse_ok("nodes: [a]\nmedia: [{bcast: eth0}]\nauth: {slot: 7, method: md5, key: k}\n");
        assert_eq!(single.auth.outbound_slot(), 7);
    }

    #[test]
    fn auth_mistakes_name_the_auth_entry() {
        let head = "nodes: [a]\nmedia: [{bcast: eth0}]\n";
        for (auth, expected) in [
            (
                "auth: {method: sha1}",
                "cluster.yaml:3:7: key slot 1: sha1 needs a key",
            ),
            (
                "auth: {method: crc, key: k}",
                "cluster.yaml:3:7: key slot 1: crc takes no key",
            ),
            (
                "auth: {method: sha1, key: two words}",
                "cluster.yaml:3:7: key slot 1: the sha1 key must be one word",
            ),
            (
                "auth: {method: rot13, key: k}",
                "cluster.yaml:3:7: key slot 1: unknown method `rot13`",
            ),
            (
                "auth: {outbound: 1}",
                "cluster.yaml:3:7: `outbound` needs `slots`",
            ),
            (
                "auth: {method: crc, outbound: 1}",
                "cluster.yaml:3:7: give either `method`",
            ),
            ("auth: {}", "cluster.yaml:3:7: expected `method`"),
            (
                "auth: {slot: 16, method: crc}",
                "cluster.yaml:3:7: key slot `16` is not valid",
            ),
            (
                "auth: {outbound: 3, slots: {1: {method: crc}}}",
                "cluster.yaml:3:7: outbound key slot 3 is not defined",
            ),
            (
                "auth: {method: crc, salt: x}",
                "cluster.yaml:3:21: auth: unknown field `salt`",
            ),
        ] {
            let err = parse_err(&format!("{head}{auth}\n"));
            assert!(err.starts_with(expected), "{auth}: {err}");
        }
    }

    #[test]
    fn media_entries_are_one_kind_each() {
        assert!(
            parse_err("nodes: [a]\nmedia: [{nosuch: eth0}]\nauth: {method: crc}\n").starts_with(
                "cluster.yaml:2:9: unknown medium `nosuch` (expected one of: bcast, mcast, ucast)"
            )
        );
        assert_eq!(
            parse_err("nodes: [a]\nmedia: [{bcast: }]\nauth: {method: crc}\n"),
            "cluster.yaml:2:9: bcast needs a value (expected at least one device)"
        );
        assert!(
            parse_err("nodes: [a]\nmedia: [bcast]\nauth: {method: crc}\n")
                .starts_with("cluster.yaml:2:9: media[0]: invalid type: string \"bcast\", expected a medium as `kind: arguments`")
        );
    }

    #[test]
    fn a_document_that_is_not_a_mapping_says_what_was_expected() {
        assert_eq!(
            parse_err("- a\n"),
            "cluster.yaml:1:1: invalid type: sequence, expected a mapping of settings with at \
             least `nodes`, `media` and `auth`"
        );
        assert_eq!(parse_err(""), "cluster.yaml:1:1: missing field `nodes`");
        assert!(parse_err("nodes: [a\n").starts_with("cluster.yaml:"));
    }

    /// A file whose one group has the resource entry `resource` (line 8, column 9).
    fn with_resource(resource: &str) -> String {
        format!("{BASE}resource_groups:\n  - node: hb1\n    resources:\n      - {resource}\n")
    }

    /// A file whose one group has the order `order` (line 7, column 12).
    fn with_order(order: &str) -> String {
        format!(
            "{BASE}resource_groups:\n  - node: hb1\n    order: {order}\n    resources: \
             [Dummy::a]\n"
        )
    }

    #[test]
    fn resources_may_carry_a_timeout_and_a_monitor_next_to_plain_tokens() {
        let config = parse_ok(&format!(
            "{BASE}resource_groups:\n  - node: hb1\n    resources:\n      - \
             \"IPaddr::198.18.0.100/24/eth0\"\n      - token: Dummy::web\n        \
             timeout: 20s\n        monitor: {{ interval: 1500ms, restarts: 2 }}\n      \
             - {{ token: Dummy::db, monitor: {{ interval: 3 }} }}\n      \
             - {{ token: Dummy::log, timeout: 3600 }}\n"
        ));
        let group = &config.resource_groups[0];
        assert_eq!(group.key(), "IPaddr::198.18.0.100/24/eth0");
        assert!(group.order.is_empty());
        assert_eq!(
            group.resources,
            [
                ResourceEntry::plain("IPaddr::198.18.0.100/24/eth0"),
                ResourceEntry {
                    token: "Dummy::web".to_string(),
                    timeout: Some(Duration::from_secs(20)),
                    monitor: Some(MonitorSetting {
                        interval: Duration::from_millis(1500),
                        restarts: 2,
                    }),
                    grants: Default::default(),
                },
                ResourceEntry {
                    token: "Dummy::db".to_string(),
                    timeout: None,
                    monitor: Some(MonitorSetting {
                        interval: Duration::from_secs(3),
                        restarts: 0,
                    }),
                    grants: Default::default(),
                },
                ResourceEntry {
                    token: "Dummy::log".to_string(),
                    timeout: Some(Duration::from_secs(3600)),
                    monitor: None,
                    grants: Default::default(),
                },
            ]
        );
    }

    #[test]
    fn a_bad_resource_setting_names_its_position_and_what_was_expected() {
        for (resource, expected) in [
            (
                "{token: Dummy::b, timeout: 0.5}",
                "cluster.yaml:8:36: timeout `0.5` is not valid (expected a time from 1s to \
                 3600s: a number in seconds, or followed by ms or us)",
            ),
            (
                "{token: Dummy::b, timeout: 3601s}",
                "cluster.yaml:8:36: timeout `3601s` is not valid (expected a time from 1s to \
                 3600s",
            ),
            (
                "{token: Dummy::b, timeout: soon}",
                "cluster.yaml:8:36: timeout `soon` is not valid (expected a time from 1s",
            ),
            (
                "{token: Dummy::b, monitor: {interval: 0}}",
                "cluster.yaml:8:47: monitor interval `0` is not valid (expected a time above \
                 zero and at most 86400s: a number in seconds, or followed by ms or us)",
            ),
            (
                "{token: Dummy::b, monitor: {interval: 100us}}",
                "cluster.yaml:8:47: monitor interval `100us` is not valid (expected a time \
                 above zero",
            ),
            (
                "{token: Dummy::b, monitor: {interval: 2s, restarts: 101}}",
                "cluster.yaml:8:61: monitor restarts `101` is not valid (expected a whole \
                 number from 0 to 100)",
            ),
            (
                "{token: Dummy::b, monitor: {interval: 2s, restarts: -1}}",
                "cluster.yaml:8:61: monitor restarts `-1` is not valid (expected a whole \
                 number from 0 to 100)",
            ),
            (
                "{token: Dummy::b, monitor: {restarts: 1}}",
                "cluster.yaml:8:36: resource_groups[0].resources[0].monitor: missing field \
                 `interval`",
            ),
            (
                "{token: Dummy::b, monitor: 2s}",
                "cluster.yaml:8:36: resource_groups[0].resources[0].monitor: invalid type: \
                 string \"2s\", expected a monitor such as `{ interval: 10s, restarts: 2 }`",
            ),
            (
                "{token: Dummy::b, monitor: {interval: 2s, retries: 1}}",
                "cluster.yaml:8:51: resource_groups[0].resources[0].monitor: unknown field \
                 `retries`, expected `interval` or `restarts`",
            ),
            (
                "{token: Dummy::b, timout: 5s}",
                "cluster.yaml:8:27: resource_groups[0].resources[0]: unknown field `timout`, \
                 expected one of `token`, `timeout`, `monitor`",
            ),
            (
                "{timeout: 5s}",
                "cluster.yaml:8:9: resource_groups[0].resources[0]: missing field `token`",
            ),
            (
                "{token: \"Dummy::b x\"}",
                "cluster.yaml:8:17: resource `Dummy::b x` is not one haresources token \
                 (expected no spaces",
            ),
            (
                "\"Dummy::b x\"",
                "cluster.yaml:8:9: resource `Dummy::b x` is not one haresources token",
            ),
            (
                "12",
                "cluster.yaml:8:9: resource_groups[0].resources[0]: invalid type: integer \
                 `12`, expected a resource token such as \"IPaddr::198.18.0.100/24/eth0\" \
                 (in quotes if YAML would read it as a number), or a mapping with `token`",
            ),
        ] {
            let err = parse_err(&with_resource(resource));
            assert!(
                err.starts_with(expected),
                "{resource}:\n got: {err}\nwant: {expected}"
            );
        }
    }

    #[test]
    fn a_group_order_lists_configured_nodes_once_with_the_preferred_first() {
        let config = parse_ok(&with_order("[HB1, hb2]"));
        assert_eq!(config.resource_groups[0].order, ["hb1", "hb2"]);
        let single = parse_ok(&with_order("[hb1]"));
        assert_eq!(single.resource_groups[0].order, ["hb1"]);
        for (order, expected) in [
            (
                "[hb1, hb3]",
                "cluster.yaml:7:18: `hb3` is not a configured node (nodes: hb1, hb2)",
            ),
            (
                "[hb1, hb2, HB1]",
                "cluster.yaml:7:23: node `hb1` in the order of group `Dummy::a` given twice \
                 (first at cluster.yaml:7:13)",
            ),
            (
                "[hb2, hb1]",
                "cluster.yaml:7:13: the order of group `Dummy::a` starts with `hb2`, not with \
                 its preferred node `hb1` (expected [hb1, …])",
            ),
            (
                "[]",
                "cluster.yaml:7:12: the order of group `Dummy::a` is empty (expected the nodes \
                 that may run it, its preferred node first, such as [hb1, …]; leave `order` \
                 out for the default order)",
            ),
            (
                "hb1",
                "cluster.yaml:7:12: resource_groups[0].order: invalid type: string \"hb1\", \
                 expected a sequence",
            ),
        ] {
            let err = parse_err(&with_order(order));
            assert!(
                err.starts_with(expected),
                "{order}:\n got: {err}\nwant: {expected}"
            );
        }
        assert!(
            parse_err(&format!(
                "{BASE}resource_groups:\n  - {{node: hb1, orders: [hb1], resources: [a]}}\n"
            ))
            .starts_with(
                "cluster.yaml:6:17: resource_groups[0]: unknown field `orders`, expected one of \
                 `node`, `order`, `resources`"
            )
        );
    }

    #[test]
    fn orders_and_resource_settings_survive_a_round_trip() {
        let text = format!(
            "{BASE}resource_groups:\n  - node: hb2\n    order: [hb2, hb1]\n    resources:\n      \
             - \"IPaddr::198.18.0.100/24/eth0\"\n      - token: Dummy::web\n        \
             timeout: 2.5\n        monitor: {{ interval: 200ms, restarts: 1 }}\n      \
             - {{ token: Dummy::db, monitor: {{ interval: 1 }} }}\n  \
             - {{ node: hb1, resources: [Dummy::plain] }}\n"
        );
        let first = parse_ok(&text);
        let yaml = to_yaml(&first);
        assert!(
            yaml.contains("  - IPaddr::198.18.0.100/24/eth0\n")
                && yaml.contains("timeout: 2500ms")
                && yaml.contains("- Dummy::plain\n"),
            "{yaml}"
        );
        let mut again = parse_ok(&yaml);
        for (group, original) in again.resource_groups.iter_mut().zip(&first.resource_groups) {
            group.origin.clone_from(&original.origin);
        }
        assert_eq!(again.resource_groups, first.resource_groups, "{yaml}");
    }

    #[test]
    fn stonith_devices_take_one_parameter_form_and_convert_back() {
        let config = parse_ok(&format!(
            "{BASE}stonith:\n  - {{ type: null, params_line: hb1 hb2 }}\n  - type: external/ipmi\n    node: HB2\n    params: {{ hostname: hb1, ipaddr: 198.18.0.11, port: 623 }}\n  - {{ type: meatware, params_file: /etc/ha.d/mw.cfg }}\n"
        ));
        assert_eq!(config.stonith.len(), 3);
        assert_eq!(
            config.stonith[0].params,
            StonithParams::Line("hb1 hb2".into())
        );
        assert_eq!(config.stonith[1].node.as_deref(), Some("hb2"));
        assert_eq!(
            config.stonith[1].params,
            StonithParams::Named(vec![
                ("hostname".into(), "hb1".into()),
                ("ipaddr".into(), "198.18.0.11".into()),
                ("port".into(), "623".into()),
            ])
        );
        assert_eq!(config.stonith_for("hb2").unwrap().device_type, "meatware");
        assert_eq!(config.stonith[1].origin, "cluster.yaml:7:5");
        let without_origin =
            |devices: &[StonithConfig]| -> Vec<(Option<String>, String, StonithParams)> {
                devices
                    .iter()
                    .map(|d| (d.node.clone(), d.device_type.clone(), d.params.clone()))
                    .collect()
            };
        let again = parse_ok(&to_yaml(&config));
        assert_eq!(
            without_origin(&again.stonith),
            without_origin(&config.stonith)
        );
        let err = parse_err(&format!(
            "{BASE}stonith:\n  - {{ type: null, params_line: a, params_file: /x }}\n"
        ));
        assert!(err.contains("more than one way"), "{err}");
        let err = parse_err(&format!(
            "{BASE}stonith:\n  - {{ type: null, node: hb7 }}\n"
        ));
        assert!(err.contains("hb7"), "{err}");
    }

    #[test]
    fn resource_groups_follow_haresources_rules() {
        let config = parse_ok(&format!(
            "{BASE}resource_groups:\n  - node: HB1\n    resources: [\"IPaddr::198.18.0.100/24/eth0\", hbdemo]\n"
        ));
        assert_eq!(config.resource_groups[0].node, "hb1");
        assert_eq!(config.resource_groups[0].origin, "cluster.yaml:6:5");
        assert_eq!(
            parse_err(&format!(
                "{BASE}resource_groups:\n  - {{node: hb1, resources: []}}\n"
            )),
            "cluster.yaml:6:28: the group of node `hb1` has no resources (expected a list such \
             as [\"IPaddr::198.18.0.100/24/eth0\", \"httpd\"])"
        );
    }

    #[test]
    fn a_grant_gives_exactly_what_it_lists_and_round_trips() {
        let config = parse_ok(&format!(
            "{BASE}resource_groups:\n  - node: hb1\n    resources:\n      - token: vip::198.18.0.100/24/eth0\n        grant: {{ log: true, addresses: [eth0], arp: [eth0], commands: [/usr/bin/true], read: [/proc/net] }}\n"
        ));
        let grants = &config.resource_groups[0].resources[0].grants;
        assert!(grants.log);
        assert_eq!(grants.address_interfaces, ["eth0".to_string()].into());
        assert_eq!(grants.arp_interfaces, ["eth0".to_string()].into());
        assert_eq!(grants.commands, [PathBuf::from("/usr/bin/true")].into());
        assert_eq!(grants.read_paths, [PathBuf::from("/proc/net")].into());
        let again = parse_ok(&crate::config::to_yaml(&config));
        assert_eq!(
            again.resource_groups[0].resources,
            config.resource_groups[0].resources
        );
    }

    #[test]
    fn grant_mistakes_name_the_key_and_what_was_expected() {
        let head = format!(
            "{BASE}resource_groups:\n  - node: hb1\n    resources:\n      - token: vip\n        grant: "
        );
        for (grant, expected) in [
            (
                "{ commands: [true] }",
                "cluster.yaml:9:28: grant commands `true` is not valid (expected an absolute path without `.` or `..`)",
            ),
            (
                "{ read: [/etc/../root] }",
                "cluster.yaml:9:24: grant read `/etc/../root` is not valid (expected an absolute path without `.` or `..`)",
            ),
            (
                "{ addresses: [a-very-long-interface-name] }",
                "cluster.yaml:9:29: grant addresses `a-very-long-interface-name` is not valid (expected an interface name of 1 to 15 characters without `/`, `:` or spaces)",
            ),
        ] {
            assert_eq!(parse_err(&format!("{head}{grant}\n")), expected, "{grant}");
        }
        let unknown = parse_err(&format!("{head}{{ network: all }}\n"));
        assert!(unknown.contains("unknown field `network`"), "{unknown}");
    }
    #[test]
    fn programs_and_the_watchdog_are_read_and_convert_back() {
        let text = format!(
            "{BASE}watchdog: /dev/watchdog\nrespawn:\n  - {{ user: root, command: \
             /usr/lib/heartbeat/ipfail }}\n  - user: nobody\n    command: \"/bin/sh -c 'exit 3'\"\n\
             failfast: [{{ user: root, command: /bin/sleep 60 }}]\n"
        );
        let first = parse_ok(&text);
        assert_eq!(first.watchdog.as_deref(), Some(Path::new("/dev/watchdog")));
        let programs: Vec<(&str, &str, bool, &str)> = first
            .clients
            .iter()
            .map(|c| {
                (
                    c.user.as_str(),
                    c.command.as_str(),
                    c.failfast,
                    c.origin.as_str(),
                )
            })
            .collect();
        assert_eq!(
            programs,
            [
                (
                    "root",
                    "/usr/lib/heartbeat/ipfail",
                    false,
                    "cluster.yaml:7:5"
                ),
                ("nobody", "/bin/sh -c 'exit 3'", false, "cluster.yaml:8:5"),
                ("root", "/bin/sleep 60", true, "cluster.yaml:10:12"),
            ]
        );
        let yaml = to_yaml(&first);
        let mut again = parse_ok(&yaml);
        for (program, original) in again.clients.iter_mut().zip(&first.clients) {
            program.origin.clone_from(&original.origin);
        }
        assert_eq!(again.clients, first.clients, "{yaml}");
        assert_eq!(again.watchdog, first.watchdog, "{yaml}");
    }

    #[test]
    fn connectivity_failover_is_off_unless_asked_and_survives_a_round_trip() {
        assert_eq!(parse_ok(BASE).connectivity_failover, None);
        let default = parse_ok(&format!("{BASE}connectivity_failover: {{}}\n"));
        assert_eq!(
            default.connectivity_failover,
            Some(ConnectivityFailover { dampening: None })
        );
        let set = parse_ok(&format!(
            "{BASE}connectivity_failover: {{ dampening: 2500ms }}\n"
        ));
        assert_eq!(
            set.connectivity_failover,
            Some(ConnectivityFailover {
                dampening: Some(Duration::from_millis(2500))
            })
        );
        for config in [default, set] {
            let yaml = to_yaml(&config);
            assert_eq!(
                parse_ok(&yaml).connectivity_failover,
                config.connectivity_failover,
                "{yaml}"
            );
        }
        let refused = parse_err(&format!(
            "{BASE}connectivity_failover: {{ dampening: 7200 }}\n"
        ));
        assert!(refused.contains("dampening"), "{refused}");
        let refused = parse_err(&format!("{BASE}connectivity_failover: {{ delay: 1 }}\n"));
        assert!(refused.contains("unknown field"), "{refused}");
    }

    #[test]
    fn program_mistakes_name_the_entry_and_what_was_expected() {
        let unknown_user = parse_err(&format!(
            "{BASE}respawn:\n  - {{ user: no-such-user-vigil, command: /bin/true }}\n"
        ));
        assert_eq!(
            unknown_user,
            "cluster.yaml:6:5: respawn: user `no-such-user-vigil` does not exist on this \
             machine (expected a user name from the password database, such as hacluster)"
        );
        let relative = parse_err(&format!(
            "{BASE}failfast:\n  - {{ user: root, command: ipfail }}\n"
        ));
        assert!(
            relative.starts_with(
                "cluster.yaml:6:5: failfast `root ipfail` is not valid (expected `<user> <absolute"
            ),
            "{relative}"
        );
        let missing = parse_err(&format!("{BASE}respawn:\n  - {{ user: root }}\n"));
        assert!(missing.contains("missing field `command`"), "{missing}");
    }
}
