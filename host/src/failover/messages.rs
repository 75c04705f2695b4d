//! The wire vocabulary of resource management: Heartbeat's R1 messages and vigil's additions.
//!
//! Owns the spelling of every resource-management message and field (spec §5.5–5.9:
//! `starting`, `resource`, `ask_resources`, `ip-request`, `ip-request-resp`, `hb_takeover`,
//! `shutdone`), the `rsc_hold` words, and the vigil fields that Heartbeat ignores (the exact
//! group keys a node holds and claims, its standby and failed sets, its incarnation, its
//! announcement number and what it has seen of everyone else). It builds and parses messages
//! and nothing more: what a message means for ownership is decided in `mod.rs`.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::wire::Message;

/// Message types (spec §1.8).
pub(super) const T_STARTING: &str = "starting";
pub(super) const T_RESOURCE: &str = "resource";
pub(super) const T_ASK_RESOURCES: &str = "ask_resources";
pub(super) const T_IP_REQUEST: &str = "ip-request";
pub(super) const T_IP_REQUEST_RESP: &str = "ip-request-resp";
pub(super) const T_HB_TAKEOVER: &str = "hb_takeover";
pub(super) const T_SHUTDONE: &str = "shutdone";
pub(super) const T_STONITH: &str = "stonith";

/// Heartbeat's fields.
const RSC_HOLD: &str = "rsc_hold";
const RTYPE: &str = "rtype";
const ISSTABLE: &str = "isstable";
const INFO: &str = "info";
const DEST: &str = "dest";
const IPADDR: &str = "ipaddr";
const WEOWN: &str = "weown";
const OK: &str = "ok";
const STATUS: &str = "st";
const NODE: &str = "node";
const RESULT: &str = "result";

/// The `result` of a `stonith` message for a node that was reset.
pub(super) const STONITH_OK: &str = "OK";

/// vigil's fields, ignored by Heartbeat (it reads fields by name).
const HELD: &str = "groups";
const CLAIMS: &str = "claims";
const STANDBY: &str = "standby";
const FAILED: &str = "failed";
const INCARNATION: &str = "inc";
const VERSION: &str = "ver";
const SEEN: &str = "seen";

/// The `info` of a `resource` message sent by a node that is giving up the standby set.
pub(super) const INFO_STANDBY: &str = "standby";
/// The `info` of the `resource` message that opens a graceful shutdown.
pub(super) const INFO_SHUTDOWN: &str = "shutdown";

/// A set of resource groups as Heartbeat names it, always from one node's point of view:
/// `local` are the groups whose preferred node is that node, `foreign` all the others. It is
/// the `rsc_hold` of `resource` and `ask_resources` messages and the argument of
/// `hb_standby` / `hb_takeover` (whose `failback` means `foreign`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldSet {
    /// No group.
    None,
    /// The groups whose preferred node is the node speaking.
    Local,
    /// The groups whose preferred node is another node.
    Foreign,
    /// Every group.
    All,
}

impl HoldSet {
    /// Heartbeat's word (`none`, `local`, `foreign`, `all`).
    pub fn as_str(self) -> &'static str {
        match self {
            HoldSet::None => "none",
            HoldSet::Local => "local",
            HoldSet::Foreign => "foreign",
            HoldSet::All => "all",
        }
    }

    /// The set a word names; `failback` is `foreign`, as `hb_standby` reads it.
    pub fn from_word(word: &str) -> Option<HoldSet> {
        match word {
            "none" => Some(HoldSet::None),
            "local" => Some(HoldSet::Local),
            "foreign" | "failback" => Some(HoldSet::Foreign),
            "all" => Some(HoldSet::All),
            _ => None,
        }
    }

    /// Heartbeat's bit encoding (`HB_LOCAL_RSC` = 1, `HB_FOREIGN_RSC` = 2).
    pub(super) fn bits(self) -> u8 {
        match self {
            HoldSet::None => 0,
            HoldSet::Local => 1,
            HoldSet::Foreign => 2,
            HoldSet::All => 3,
        }
    }

    /// The set of Heartbeat's bits (only the two low bits count).
    pub(super) fn from_bits(bits: u8) -> HoldSet {
        match bits & 3 {
            0 => HoldSet::None,
            1 => HoldSet::Local,
            2 => HoldSet::Foreign,
            _ => HoldSet::All,
        }
    }

    /// Whether a group belongs to the set, from the point of view of a node for which the
    /// group is `local` exactly when `preferred_here`.
    pub(super) fn covers(self, preferred_here: bool) -> bool {
        match self {
            HoldSet::None => false,
            HoldSet::Local => preferred_here,
            HoldSet::Foreign => !preferred_here,
            HoldSet::All => true,
        }
    }
}

impl fmt::Display for HoldSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resource-management message that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    /// A field the message type needs is absent.
    #[error("{message_type} message without its `{field}` field")]
    MissingField {
        /// The message type.
        message_type: String,
        /// The field.
        field: &'static str,
    },
    /// A field holds something else than its type allows.
    #[error("{message_type} message with {field}={value:?}: expected {expected}")]
    BadValue {
        /// The message type.
        message_type: String,
        /// The field.
        field: &'static str,
        /// What it held.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
}

/// One entry of `seen`: the newest announcement received from a node's incarnation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SeenEntry {
    /// The node whose announcement it is.
    pub node: String,
    /// That node's run, so that a number of an earlier run is not taken for this one's.
    pub incarnation: String,
    /// The announcement number.
    pub version: u64,
}

/// What a vigil node says about itself in every `starting` and `resource` message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct NodeState {
    /// Identifies the sender's run, so acknowledgements of an earlier run never count.
    pub incarnation: String,
    /// Numbers the sender's announcements of this run, from 1.
    pub version: u64,
    /// Keys of the groups it holds: starting, running, stopping, or failed to stop.
    pub held: Vec<String>,
    /// Keys of the groups it wants to start once everyone has seen the claim.
    pub claims: Vec<String>,
    /// Keys of the groups it stands by for (takes them only if nobody else can).
    pub standby: Vec<String>,
    /// Keys of the groups it may not run (failed here, until an operator action).
    pub failed: Vec<String>,
    /// The newest announcement it has received from each other node.
    pub seen: Vec<SeenEntry>,
}

/// A `resource` message as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ResourceAnnouncement {
    /// Heartbeat's `rsc_hold`.
    pub hold: HoldSet,
    /// `rtype=full`: replaces what was known; otherwise it is OR-ed in (`none` clears).
    pub full: bool,
    /// `isstable`, when present (scripts omit it).
    pub stable: Option<bool>,
    /// `info` (`standby`, `shutdown`, `mach_down`, `req_our_resources()`).
    pub info: Option<String>,
    /// The vigil fields, present only when the sender is a vigil node.
    pub state: Option<NodeState>,
}

/// Where a Heartbeat standby exchange is (`info` of `ask_resources`, spec §5.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StandbyStep {
    /// The sender wants to give the set away.
    Me,
    /// The receiver of `me` agrees to take it.
    Other,
    /// The sender has finished its part (released, or acquired).
    Done,
}

impl StandbyStep {
    fn as_str(self) -> &'static str {
        match self {
            StandbyStep::Me => "me",
            StandbyStep::Other => "other",
            StandbyStep::Done => "done",
        }
    }
}

/// An `ask_resources` message as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AskResources {
    /// The set, from the sender's point of view.
    pub set: HoldSet,
    /// The phase of the exchange.
    pub step: StandbyStep,
}

/// Builds `starting`: Heartbeat's bare message plus our state, so vigil peers answer with
/// theirs whatever they believed about us.
pub(super) fn starting(state: &NodeState) -> Message {
    let mut message = Message::with_type(T_STARTING);
    push_state(&mut message, state);
    message
}

/// Builds `resource` in Heartbeat's field order (`rsc_hold`, `rtype=full`, `isstable`,
/// `info`), followed by our state.
pub(super) fn resource(
    hold: HoldSet,
    stable: bool,
    info: Option<&str>,
    state: &NodeState,
) -> Message {
    let mut message = Message::with_type(T_RESOURCE);
    message.push_str(RSC_HOLD, hold.as_str());
    message.push_str(RTYPE, "full");
    message.push_str(ISSTABLE, if stable { "1" } else { "0" });
    if let Some(info) = info {
        message.push_str(INFO, info);
    }
    push_state(&mut message, state);
    message
}

/// Builds `ask_resources` (`send_standby_msg`: type, `rsc_hold`, `info`).
pub(super) fn ask_resources(set: HoldSet, step: StandbyStep) -> Message {
    let mut message = Message::with_type(T_ASK_RESOURCES);
    message.push_str(RSC_HOLD, set.as_str());
    message.push_str(INFO, step.as_str());
    message
}

/// Builds `ip-request` for a group key (`req_resource`).
pub(super) fn ip_request(key: &str) -> Message {
    let mut message = Message::with_type(T_IP_REQUEST);
    message.push_str(IPADDR, key);
    message
}

/// Builds the answer to an `ip-request` (`rc.d/ip-request`), sent once the group is down.
pub(super) fn ip_request_resp(dest: &str, key: &str, we_owned: bool) -> Message {
    let mut message = Message::with_type(T_IP_REQUEST_RESP);
    message.push_str(DEST, dest);
    message.push_str(IPADDR, key);
    message.push_str(WEOWN, if we_owned { "yes" } else { "no" });
    message.push_str(OK, "OK");
    message
}

/// Builds `hb_takeover` (`hb_takeover [set]`).
pub(super) fn hb_takeover(set: HoldSet) -> Message {
    let mut message = Message::with_type(T_HB_TAKEOVER);
    message.push_str(RSC_HOLD, set.as_str());
    message
}

/// Builds `shutdone` (`t=shutdone st=dead`), the last word of a graceful shutdown.
pub(super) fn shutdone() -> Message {
    let mut message = Message::with_type(T_SHUTDONE);
    message.push_str(STATUS, "dead");
    message
}

/// Builds `stonith` (`t=stonith node=N result=OK|badhost|bad`), which Heartbeat's STONITH
/// child reports to the cluster: the survivors learn that `node` was (or was not) reset.
pub(super) fn stonith_result(node: &str, result: &str) -> Message {
    let mut message = Message::with_type(T_STONITH);
    message.push_str(NODE, node);
    message.push_str(RESULT, result);
    message
}

/// The node and result of a `stonith` message; `None` when a field is missing.
pub(super) fn parse_stonith_result(message: &Message) -> Option<(String, String)> {
    Some((
        message.get_str(NODE)?.to_ascii_lowercase(),
        message.get_str(RESULT)?.to_string(),
    ))
}

fn push_state(message: &mut Message, state: &NodeState) {
    message.push_str(HELD, &encode_keys(&state.held));
    message.push_str(CLAIMS, &encode_keys(&state.claims));
    message.push_str(STANDBY, &encode_keys(&state.standby));
    message.push_str(FAILED, &encode_keys(&state.failed));
    message.push_str(INCARNATION, &state.incarnation);
    message.push_str(VERSION, &format!("{:x}", state.version));
    let seen: Vec<String> = state
        .seen
        .iter()
        .map(|e| {
            format!(
                "{}:{}:{:x}",
                escape(&e.node),
                escape(&e.incarnation),
                e.version
            )
        })
        .collect();
    message.push_str(SEEN, &join_or_space(&seen));
}

/// Reads a `resource` message.
pub(super) fn parse_resource(message: &Message) -> Result<ResourceAnnouncement, MessageError> {
    let word = required(message, T_RESOURCE, RSC_HOLD)?;
    let hold = HoldSet::from_word(word).ok_or_else(|| MessageError::BadValue {
        message_type: T_RESOURCE.to_string(),
        field: RSC_HOLD,
        value: word.to_string(),
        expected: "none, local, foreign or all",
    })?;
    let stable = match message.get_str(ISSTABLE) {
        None => None,
        Some("1") => Some(true),
        Some("0") => Some(false),
        Some(other) => {
            return Err(MessageError::BadValue {
                message_type: T_RESOURCE.to_string(),
                field: ISSTABLE,
                value: other.to_string(),
                expected: "0 or 1",
            });
        }
    };
    Ok(ResourceAnnouncement {
        hold,
        full: message.get_str(RTYPE) == Some("full"),
        stable,
        info: message.get_str(INFO).map(str::to_string),
        state: parse_state(message, T_RESOURCE)?,
    })
}

/// Reads the vigil state of a `starting` message (`None` from Heartbeat).
pub(super) fn parse_starting(message: &Message) -> Result<Option<NodeState>, MessageError> {
    parse_state(message, T_STARTING)
}

/// Reads an `ask_resources` message. A missing `rsc_hold` means `all`, as in Heartbeat.
pub(super) fn parse_ask_resources(message: &Message) -> Result<AskResources, MessageError> {
    let set = match message.get_str(RSC_HOLD) {
        None => HoldSet::All,
        Some(word) => HoldSet::from_word(word).ok_or_else(|| MessageError::BadValue {
            message_type: T_ASK_RESOURCES.to_string(),
            field: RSC_HOLD,
            value: word.to_string(),
            expected: "none, local, foreign, all or failback",
        })?,
    };
    let info = required(message, T_ASK_RESOURCES, INFO)?;
    let step = match info.to_ascii_lowercase().as_str() {
        "me" => StandbyStep::Me,
        "other" => StandbyStep::Other,
        "done" => StandbyStep::Done,
        _ => {
            return Err(MessageError::BadValue {
                message_type: T_ASK_RESOURCES.to_string(),
                field: INFO,
                value: info.to_string(),
                expected: "me, other or done",
            });
        }
    };
    Ok(AskResources { set, step })
}

/// Reads `hb_takeover`. Heartbeat's `rc.d/hb_takeover` treats an unknown word as `all`.
pub(super) fn parse_hb_takeover(message: &Message) -> HoldSet {
    message
        .get_str(RSC_HOLD)
        .and_then(HoldSet::from_word)
        .unwrap_or(HoldSet::All)
}

/// Reads the group key of an `ip-request`.
pub(super) fn parse_ip_request(message: &Message) -> Result<&str, MessageError> {
    required(message, T_IP_REQUEST, IPADDR)
}

/// An `ip-request-resp` as read: who it is for, which group, and whether it says go ahead.
pub(super) struct IpRequestResp<'a> {
    /// The node that asked.
    pub dest: &'a str,
    /// The group key.
    pub key: &'a str,
    /// `ok=OK`: the requester may take the group.
    pub ok: bool,
}

/// Reads an `ip-request-resp`.
pub(super) fn parse_ip_request_resp(message: &Message) -> Result<IpRequestResp<'_>, MessageError> {
    Ok(IpRequestResp {
        dest: required(message, T_IP_REQUEST_RESP, DEST)?,
        key: required(message, T_IP_REQUEST_RESP, IPADDR)?,
        ok: message.get_str(OK) == Some("OK"),
    })
}

fn required<'a>(
    message: &'a Message,
    message_type: &str,
    field: &'static str,
) -> Result<&'a str, MessageError> {
    message
        .get_str(field)
        .ok_or_else(|| MessageError::MissingField {
            message_type: message_type.to_string(),
            field,
        })
}

fn parse_state(message: &Message, message_type: &str) -> Result<Option<NodeState>, MessageError> {
    let Some(incarnation) = message.get_str(INCARNATION) else {
        return Ok(None);
    };
    let bad = |field: &'static str, value: &str, expected: &'static str| MessageError::BadValue {
        message_type: message_type.to_string(),
        field,
        value: value.to_string(),
        expected,
    };
    let incarnation = unescape(incarnation)
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| bad(INCARNATION, incarnation, "a non-empty token"))?;
    let version_text = required(message, message_type, VERSION)?;
    let version = u64::from_str_radix(version_text, 16)
        .map_err(|_| bad(VERSION, version_text, "a hexadecimal number"))?;
    let keys = |field: &'static str| -> Result<Vec<String>, MessageError> {
        let text = required(message, message_type, field)?;
        decode_keys(text).ok_or_else(|| bad(field, text, "space-separated group keys"))
    };
    let seen_text = required(message, message_type, SEEN)?;
    let mut seen = Vec::new();
    for entry in seen_text.split_whitespace() {
        let mut parts = entry.rsplitn(3, ':');
        let (Some(version), Some(incarnation), Some(node)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(SEEN, seen_text, "node:incarnation:version entries"));
        };
        let (Some(node), Some(incarnation), Ok(version)) = (
            unescape(node),
            unescape(incarnation),
            u64::from_str_radix(version, 16),
        ) else {
            return Err(bad(SEEN, seen_text, "node:incarnation:version entries"));
        };
        seen.push(SeenEntry {
            node,
            incarnation,
            version,
        });
    }
    Ok(Some(NodeState {
        incarnation,
        version,
        held: keys(HELD)?,
        claims: keys(CLAIMS)?,
        standby: keys(STANDBY)?,
        failed: keys(FAILED)?,
        seen,
    }))
}

/// Space-separated escaped keys, or a single space for none (empty values are illegal on
/// the wire).
fn encode_keys(keys: &[String]) -> String {
    let escaped: Vec<String> = keys.iter().map(|k| escape(k)).collect();
    join_or_space(&escaped)
}

fn join_or_space(items: &[String]) -> String {
    if items.is_empty() {
        " ".to_string()
    } else {
        items.join(" ")
    }
}

fn decode_keys(text: &str) -> Option<Vec<String>> {
    let mut keys = Vec::new();
    let mut distinct = BTreeSet::new();
    for token in text.split_whitespace() {
        let key = unescape(token)?;
        if distinct.insert(key.clone()) {
            keys.push(key);
        }
    }
    Some(keys)
}

/// `%XX`-escapes `%`, `:` and whitespace so that any key survives a space-separated list.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '%' || c == ':' || c.is_whitespace() {
            let mut buffer = [0u8; 4];
            for byte in c.encode_utf8(&mut buffer).bytes() {
                escaped.push_str(&format!("%{byte:02X}"));
            }
        } else {
            escaped.push(c);
        }
    }
    escaped
}

fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> NodeState {
        NodeState {
            incarnation: "9f3a".into(),
            version: 0x1c,
            held: vec!["IPaddr::198.18.0.100/24/eth0".into(), "odd key%".into()],
            claims: vec![],
            standby: vec!["httpd".into()],
            failed: vec![],
            seen: vec![SeenEntry {
                node: "hb2".into(),
                incarnation: "77".into(),
                version: 3,
            }],
        }
    }

    #[test]
    fn resource_keeps_heartbeats_field_order_and_round_trips_our_state() {
        let message = resource(HoldSet::Local, true, Some(INFO_STANDBY), &state());
        let names: Vec<&str> = message.fields().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names[..5],
            ["t", "rsc_hold", "rtype", "isstable", "info"],
            "Heartbeat's fields come first, in its order"
        );
        assert_eq!(
            message.get_str("claims"),
            Some(" "),
            "empty list is one space"
        );
        let parsed = parse_resource(&message).unwrap();
        assert_eq!(parsed.hold, HoldSet::Local);
        assert!(parsed.full);
        assert_eq!(parsed.stable, Some(true));
        assert_eq!(parsed.state, Some(state()));
    }

    #[test]
    fn heartbeats_resource_message_has_no_vigil_state() {
        let mut message = Message::with_type("resource");
        message.push_str("rsc_hold", "foreign");
        message.push_str("info", "mach_down");
        let parsed = parse_resource(&message).unwrap();
        assert_eq!(parsed.hold, HoldSet::Foreign);
        assert!(!parsed.full, "mach_down's message is OR-ed in");
        assert_eq!(parsed.stable, None);
        assert_eq!(parsed.state, None);
    }

    #[test]
    fn malformed_resource_messages_are_errors_naming_the_field() {
        let mut message = Message::with_type("resource");
        message.push_str("rsc_hold", "most");
        let error = parse_resource(&message).unwrap_err();
        assert!(error.to_string().contains("rsc_hold=\"most\""), "{error}");

        let mut message = resource(HoldSet::None, false, None, &state());
        message.set_str("ver", "zz");
        let error = parse_resource(&message).unwrap_err();
        assert!(error.to_string().contains("hexadecimal"), "{error}");

        let mut message = resource(HoldSet::None, false, None, &state());
        message.set_str("seen", "hb2");
        assert!(parse_resource(&message).is_err());
    }

    #[test]
    fn failback_is_foreign_and_sets_cover_from_the_speakers_view() {
        assert_eq!(HoldSet::from_word("failback"), Some(HoldSet::Foreign));
        assert_eq!(HoldSet::from_bits(HoldSet::All.bits()), HoldSet::All);
        assert!(HoldSet::Foreign.covers(false));
        assert!(!HoldSet::Foreign.covers(true));
    }

    #[test]
    fn ask_resources_without_rsc_hold_means_all() {
        let mut message = Message::with_type("ask_resources");
        message.push_str("info", "me");
        let ask = parse_ask_resources(&message).unwrap();
        assert_eq!(ask.set, HoldSet::All);
        assert_eq!(ask.step, StandbyStep::Me);
        let built = ask_resources(HoldSet::Foreign, StandbyStep::Done);
        assert_eq!(
            built.to_string(),
            "t=ask_resources rsc_hold=foreign info=done"
        );
    }

    #[test]
    fn ip_request_resp_matches_heartbeats_script() {
        let message = ip_request_resp("hb1", "IPaddr::198.18.0.100/24/eth0", true);
        assert_eq!(
            message.to_string(),
            "t=ip-request-resp dest=hb1 ipaddr=IPaddr::198.18.0.100/24/eth0 weown=yes ok=OK"
        );
        let parsed = parse_ip_request_resp(&message).unwrap();
        assert!(parsed.ok);
        assert_eq!(parsed.dest, "hb1");
    }

    #[test]
    fn escaping_round_trips_spaces_colons_and_percent() {
        for key in ["a b", "x:y", "100%", "tab\there", "plain"] {
            assert_eq!(unescape(&escape(key)).as_deref(), Some(key));
            assert!(!escape(key).contains(' '));
        }
        assert_eq!(unescape("%4"), None);
    }
}
