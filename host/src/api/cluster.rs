//! Cluster clients: programs that sign on to the API under a client name (Heartbeat's named
//! clients, spec §9), send messages to their peers on other nodes and receive them in order.
//!
//! Owns the sign-on rules (`apiauth`, checked against the kernel's credentials of the
//! connecting socket), the table of signed-on clients of this node, the shape of the
//! messages they send (`from_id`/`to_id`/`client_gen`, exactly as Heartbeat 3.0.6 fills them)
//! and the routing of delivered cluster messages to them. It never sends on the wire and never
//! reads a socket: the core calls it and carries the resulting message to membership, and each
//! client's connection task writes what it is handed.

use std::collections::BTreeMap;
use std::ffi::CString;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::ApiEvent;
use crate::config::ApiAuthRule;
use crate::failover::Failover;
use crate::wire::Message;
use crate::wire::message::FieldValue;

/// How many deliveries a client may have unread before it is signed off: a client that stops
/// reading must not make the daemon hold an unbounded queue (Heartbeat drops such clients too).
pub const CLIENT_QUEUE: usize = 4096;

/// The longest client name Heartbeat accepts (its `client_id` buffer).
const MAX_CLIENT_NAME: usize = 63;

/// Types a client may not send: membership's own and the unsequenced `NS_` family.
const RESERVED_TYPES: [&str; 8] = [
    "status",
    "reqnodes",
    "repnodes",
    "hbapi-req",
    "hbapi-resp",
    "hbapi-clstat",
    "ifstat",
    "query-cstatus",
];

/// Fields the daemon sets on every cluster message; a client may neither set them nor
/// receive them among its fields (they are given as `from`, `to`, `client`).
const STANDARD_FIELDS: [&str; 14] = [
    "t",
    "src",
    "srcuuid",
    "seq",
    "hg",
    "ts",
    "ld",
    "ttl",
    "auth",
    "dest",
    "destuuid",
    "from_id",
    "to_id",
    "client_gen",
];

/// Heartbeat 3.0.6's built-in `apiauth` entries (spec §3.2); an operator line for the same
/// client replaces one.
const BUILTIN_RULES: [(&str, &[&str], &[&str]); 5] = [
    ("ipfail", &["hacluster"], &[]),
    ("ccm", &["hacluster"], &[]),
    ("ping", &[], &["haclient"]),
    ("lha-snmpagent", &["root"], &[]),
    ("anon", &["root"], &["haclient"]),
];

/// A cluster message handed to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMessage {
    /// The node that sent it (lower case).
    pub from: String,
    /// The node it was addressed to; `None`: to every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The sending client's name (`from_id`), if a client sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The message type (`t`).
    #[serde(rename = "type")]
    pub message_type: String,
    /// The sender's sequence number, so a client can see the order it is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The other text fields, in wire order (binary and nested fields are left out).
    pub fields: Vec<(String, String)>,
}

/// What the core hands a signed-on client's connection, in the order the core produced it.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// A cluster message for this client.
    Message(ClusterMessage),
    /// A membership or failover event (node and link status changes among them).
    Event(ApiEvent),
}

/// What the kernel says about the process at the other end of a client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCredentials {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

/// Identifies one signed-on connection to the core.
pub type SessionId = u64;

/// What a successful sign-on tells the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignOnInfo {
    /// The session, for later requests on the same connection.
    pub session: SessionId,
    /// This node's name.
    pub node: String,
    /// The client name signed on.
    pub client: String,
    /// The heartbeat interval and deadtime, in milliseconds (Heartbeat's signon reply).
    pub keepalive_ms: u64,
    pub deadtime_ms: u64,
}

/// A client connection's request to the core.
pub enum ClientRequest {
    /// Sign on as `client`; deliveries go to `deliveries` until sign-off.
    SignOn {
        client: String,
        credentials: PeerCredentials,
        deliveries: mpsc::Sender<Delivery>,
        reply: oneshot::Sender<Result<SignOnInfo, String>>,
    },
    /// Send a message to the cluster (`to: None`) or to one node.
    Send {
        session: SessionId,
        to: Option<String>,
        message_type: String,
        fields: Vec<(String, String)>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// The connection ended.
    SignOff { session: SessionId },
}

/// Who may sign on as which client, with names resolved to numeric ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiAuthorization {
    rules: BTreeMap<String, ResolvedRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ResolvedRule {
    uids: Vec<u32>,
    gids: Vec<u32>,
    /// `ha.cf:12`, or `built-in`.
    origin: String,
}

impl ApiAuthorization {
    /// Heartbeat's built-in entries plus the configured ones (later lines win). Names the
    /// machine does not know are left out with a warning, as Heartbeat does.
    pub fn from_rules(rules: &[ApiAuthRule]) -> Self {
        let mut table = BTreeMap::new();
        let builtin = BUILTIN_RULES.iter().map(|(client, users, groups)| {
            (
                client.to_string(),
                users.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
                groups.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
                "built-in".to_string(),
            )
        });
        let configured = rules.iter().map(|rule| {
            (
                rule.client.clone(),
                rule.users.clone(),
                rule.groups.clone(),
                rule.origin.clone(),
            )
        });
        for (client, users, groups, origin) in builtin.chain(configured) {
            let quiet = origin == "built-in";
            let uids = resolve_all(&users, lookup_uid, "user", &client, &origin, quiet);
            let gids = resolve_all(&groups, lookup_gid, "group", &client, &origin, quiet);
            table.insert(client, ResolvedRule { uids, gids, origin });
        }
        Self { rules: table }
    }

    /// Whether a process with `credentials` may sign on as `client`; the error names the
    /// client, the rule and why.
    pub fn check(&self, client: &str, credentials: &PeerCredentials) -> Result<(), String> {
        let (name, rule) = match self.rules.get(client) {
            Some(rule) => (client, rule),
            None => match self.rules.get("default") {
                Some(rule) => ("default", rule),
                None => {
                    return Err(format!(
                        "client `{client}` refused: no `apiauth {client}` and no `apiauth default` entry \
                         (add e.g. `apiauth {client} uid=root` to ha.cf)"
                    ));
                }
            },
        };
        if rule.uids.contains(&credentials.uid) || rule.gids.contains(&credentials.gid) {
            return Ok(());
        }
        Err(format!(
            "client `{client}` refused: uid {} gid {} is not allowed by `apiauth {name}` ({}), which allows uid {} and gid {}",
            credentials.uid,
            credentials.gid,
            rule.origin,
            list_ids(&rule.uids),
            list_ids(&rule.gids),
        ))
    }
}

fn list_ids(ids: &[u32]) -> String {
    if ids.is_empty() {
        return "none".to_string();
    }
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn resolve_all(
    names: &[String],
    lookup: fn(&str) -> Option<u32>,
    what: &str,
    client: &str,
    origin: &str,
    quiet: bool,
) -> Vec<u32> {
    names
        .iter()
        .filter_map(|name| {
            let id = name.parse::<u32>().ok().or_else(|| lookup(name));
            if id.is_none() && !quiet {
                tracing::warn!(%client, %origin, "apiauth: {what} `{name}` does not exist on this machine; ignored");
            }
            id
        })
        .collect()
}

/// The uid of user `name`, from the password database.
fn lookup_uid(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    let mut buffer = vec![0 as libc::c_char; 16384];
    // SAFETY: all-zero is a valid `passwd` (null pointers and zero ids), overwritten on success.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: a NUL-terminated name, an entry, a buffer of the stated length that outlive the
    // call, and an out-pointer getpwnam_r sets.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    (rc == 0 && !found.is_null()).then_some(entry.pw_uid)
}

/// The gid of group `name`, from the group database.
fn lookup_gid(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    let mut buffer = vec![0 as libc::c_char; 65536];
    // SAFETY: all-zero is a valid `group` (null pointers and zero id), overwritten on success.
    let mut entry: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: a NUL-terminated name, an entry, a buffer of the stated length that outlive the
    // call, and an out-pointer getgrnam_r sets.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    (rc == 0 && !found.is_null()).then_some(entry.gr_gid)
}

/// One signed-on client.
struct SignedOn {
    name: String,
    /// Heartbeat's `client_gen`: which sign-on of this daemon it is.
    generation: u64,
    deliveries: mpsc::Sender<Delivery>,
}

/// The signed-on clients of this node and the rules for signing on.
pub struct ClusterClients {
    authorization: ApiAuthorization,
    local_node: String,
    keepalive_ms: u64,
    deadtime_ms: u64,
    sessions: BTreeMap<SessionId, SignedOn>,
    /// Counts sign-ons: session ids and `client_gen` values.
    sign_ons: u64,
}

impl ClusterClients {
    /// No clients yet; `authorization` decides who may sign on.
    pub fn new(
        authorization: ApiAuthorization,
        local_node: &str,
        keepalive_ms: u64,
        deadtime_ms: u64,
    ) -> Self {
        Self {
            authorization,
            local_node: local_node.to_string(),
            keepalive_ms,
            deadtime_ms,
            sessions: BTreeMap::new(),
            sign_ons: 0,
        }
    }

    /// Signs a client on, or says why not. On success also returns the `hbapi-clstat`
    /// join message Heartbeat sends to the cluster, for the core to send.
    pub fn sign_on(
        &mut self,
        client: &str,
        credentials: &PeerCredentials,
        deliveries: mpsc::Sender<Delivery>,
    ) -> Result<(SignOnInfo, Message), String> {
        if client.is_empty()
            || client.len() > MAX_CLIENT_NAME
            || client.contains(|c: char| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "client name {client:?} refused: expected 1 to {MAX_CLIENT_NAME} characters without spaces"
            ));
        }
        self.authorization.check(client, credentials)?;
        if self.sessions.values().any(|s| s.name == client) {
            return Err(format!(
                "client `{client}` refused: a client of that name is already signed on on this node"
            ));
        }
        let session = self.sign_ons;
        self.sign_ons += 1;
        self.sessions.insert(
            session,
            SignedOn {
                name: client.to_string(),
                generation: session,
                deliveries,
            },
        );
        tracing::info!(%client, uid = credentials.uid, gid = credentials.gid, pid = ?credentials.pid, "API client signed on");
        let info = SignOnInfo {
            session,
            node: self.local_node.clone(),
            client: client.to_string(),
            keepalive_ms: self.keepalive_ms,
            deadtime_ms: self.deadtime_ms,
        };
        Ok((info, self.status_message(client, session, "join", "signon")))
    }

    /// Forgets a client; returns the `hbapi-clstat` leave message to send, if it was signed on.
    pub fn sign_off(&mut self, session: SessionId, reason: &str) -> Option<Message> {
        let gone = self.sessions.remove(&session)?;
        tracing::info!(client = %gone.name, reason, "API client signed off");
        Some(self.status_message(&gone.name, gone.generation, "leave", reason))
    }

    /// The cluster message a client asked to send, shaped as Heartbeat shapes it: `from_id`
    /// and `to_id` are the client's own name (so it reaches the client of the same name on
    /// other nodes), plus `client_gen` and `dest` when it is for one node.
    pub fn message_to_send(
        &self,
        session: SessionId,
        to: Option<&str>,
        message_type: &str,
        fields: &[(String, String)],
    ) -> Result<Message, String> {
        let client = self
            .sessions
            .get(&session)
            .ok_or("this connection is not signed on (send `signon` first)")?;
        if message_type.is_empty()
            || message_type.starts_with("NS_")
            || RESERVED_TYPES.contains(&message_type)
        {
            return Err(format!(
                "message type {message_type:?} refused: it is empty, unsequenced (NS_…) or reserved for the daemon"
            ));
        }
        let mut message = Message::with_type(message_type);
        for (name, value) in fields {
            if STANDARD_FIELDS.contains(&name.as_str()) || name.is_empty() {
                return Err(format!(
                    "field {name:?} refused: the daemon sets it (use `to` for the destination node)"
                ));
            }
            if value.is_empty() {
                return Err(format!(
                    "field {name:?} refused: Heartbeat's wire format cannot carry an empty value"
                ));
            }
            message.push_str(name, value);
        }
        if let Some(node) = to {
            message.push_str("dest", &node.to_ascii_lowercase());
        }
        message.set_str("from_id", &client.name);
        message.set_str("to_id", &client.name);
        message.set_str("client_gen", &client.generation.to_string());
        Ok(message)
    }

    /// Hands a delivered cluster message to the clients it is for: the one named by `to_id`,
    /// or every client when it names none. Messages vigil's own machines consume are not
    /// handed out. A client that cannot keep up is signed off; the leave messages for such
    /// clients are returned for the core to send.
    pub fn deliver(&mut self, from: &str, message: &Message) -> Vec<Message> {
        let Some(message_type) = message.message_type() else {
            return Vec::new();
        };
        // What vigil's own failover consumes (resource messages, connectivity counts) is
        // not for clients.
        if Failover::acts_on(message) || self.sessions.is_empty() {
            return Vec::new();
        }
        let to_id = message.get_str("to_id");
        let delivered = ClusterMessage {
            from: from.to_string(),
            to: message.get_str("dest").map(str::to_string),
            client: message.get_str("from_id").map(str::to_string),
            message_type: message_type.to_string(),
            seq: message
                .get_str("seq")
                .and_then(|seq| u64::from_str_radix(seq, 16).ok()),
            fields: message
                .fields()
                .iter()
                .filter(|field| !STANDARD_FIELDS.contains(&field.name.as_str()))
                .filter_map(|field| match &field.value {
                    FieldValue::String(value) => Some((field.name.to_string(), value.to_string())),
                    _ => None,
                })
                .collect(),
        };
        let targets: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, client)| to_id.is_none_or(|id| id == client.name))
            .map(|(session, _)| *session)
            .collect();
        self.hand_out(&targets, Delivery::Message(delivered))
    }

    /// Hands an event to every signed-on client, in the daemon's event order.
    pub fn publish(&mut self, event: &ApiEvent) -> Vec<Message> {
        let targets: Vec<SessionId> = self.sessions.keys().copied().collect();
        self.hand_out(&targets, Delivery::Event(event.clone()))
    }

    fn hand_out(&mut self, targets: &[SessionId], delivery: Delivery) -> Vec<Message> {
        let mut leaving = Vec::new();
        for session in targets {
            let Some(client) = self.sessions.get(session) else {
                continue;
            };
            let reason = match client.deliveries.try_send(delivery.clone()) {
                Ok(()) => continue,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(client = %client.name, "API client does not read its messages; signing it off");
                    "sendfail"
                }
                Err(mpsc::error::TrySendError::Closed(_)) => "EOF",
            };
            leaving.extend(self.sign_off(*session, reason));
        }
        leaving
    }

    /// Heartbeat's `hbapi-clstat` message announcing a client's join or leave.
    fn status_message(&self, client: &str, generation: u64, status: &str, info: &str) -> Message {
        let mut message = Message::with_type("hbapi-clstat");
        message.push_str("st", status);
        message.push_str("from_id", client);
        message.push_str("to_id", client);
        message.push_str("info", info);
        message.push_str("client_gen", &generation.to_string());
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(client: &str, users: &[&str], groups: &[&str]) -> ApiAuthRule {
        ApiAuthRule {
            client: client.to_string(),
            users: users.iter().map(|u| u.to_string()).collect(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            origin: "ha.cf:3".to_string(),
        }
    }

    fn creds(uid: u32, gid: u32) -> PeerCredentials {
        PeerCredentials {
            uid,
            gid,
            pid: None,
        }
    }

    #[test]
    fn a_client_is_allowed_by_its_user_or_its_group_and_refused_otherwise() {
        let auth = ApiAuthorization::from_rules(&[rule("chat", &["root"], &["4242"])]);
        assert!(auth.check("chat", &creds(0, 100)).is_ok());
        assert!(auth.check("chat", &creds(1000, 4242)).is_ok());
        let refused = auth.check("chat", &creds(65534, 65534)).unwrap_err();
        assert!(
            refused.contains("`chat`") && refused.contains("65534") && refused.contains("ha.cf:3"),
            "{refused}"
        );
    }

    #[test]
    fn an_unlisted_client_falls_back_to_default_or_is_refused() {
        let none = ApiAuthorization::from_rules(&[]);
        let refused = none.check("chat", &creds(0, 0)).unwrap_err();
        assert!(refused.contains("apiauth default"), "{refused}");
        let default = ApiAuthorization::from_rules(&[rule("default", &["0"], &[])]);
        assert!(default.check("chat", &creds(0, 0)).is_ok());
        assert!(default.check("chat", &creds(1, 1)).is_err());
        // Built-in: anon is root or haclient; a configured line replaces a built-in one.
        assert!(none.check("anon", &creds(0, 0)).is_ok());
        let replaced = ApiAuthorization::from_rules(&[rule("anon", &["4242"], &[])]);
        assert!(replaced.check("anon", &creds(0, 0)).is_err());
    }

    #[test]
    fn a_sent_message_carries_the_client_name_both_ways_and_its_destination() {
        let auth = ApiAuthorization::from_rules(&[rule("chat", &["0"], &[])]);
        let mut clients = ClusterClients::new(auth, "alpha", 1000, 10000);
        let (tx, _rx) = mpsc::channel(4);
        let (info, join) = clients.sign_on("chat", &creds(0, 0), tx.clone()).unwrap();
        assert_eq!(join.get_str("st"), Some("join"));
        assert!(clients.sign_on("chat", &creds(0, 0), tx).is_err());
        let message = clients
            .message_to_send(
                info.session,
                Some("Bravo"),
                "chat",
                &[("n".into(), "1".into())],
            )
            .unwrap();
        assert_eq!(message.message_type(), Some("chat"));
        assert_eq!(message.get_str("n"), Some("1"));
        assert_eq!(message.get_str("dest"), Some("bravo"));
        assert_eq!(message.get_str("from_id"), Some("chat"));
        assert_eq!(message.get_str("to_id"), Some("chat"));
        assert!(
            clients
                .message_to_send(info.session, None, "status", &[])
                .is_err()
        );
        assert!(
            clients
                .message_to_send(info.session, None, "chat", &[("src".into(), "x".into())])
                .is_err()
        );
    }

    #[test]
    fn delivery_goes_to_the_named_client_only_and_skips_vigils_own_types() {
        let auth = ApiAuthorization::from_rules(&[rule("default", &["0"], &[])]);
        let mut clients = ClusterClients::new(auth, "alpha", 1000, 10000);
        let (chat_tx, mut chat) = mpsc::channel(4);
        let (other_tx, mut other) = mpsc::channel(4);
        clients.sign_on("chat", &creds(0, 0), chat_tx).unwrap();
        clients.sign_on("other", &creds(0, 0), other_tx).unwrap();

        let mut named = Message::with_type("chat");
        named.push_str("to_id", "chat");
        named.push_str("n", "7");
        named.push_str("seq", "1f");
        clients.deliver("bravo", &named);
        let Ok(Delivery::Message(got)) = chat.try_recv() else {
            panic!("chat got nothing");
        };
        assert_eq!(got.from, "bravo");
        assert_eq!(got.seq, Some(0x1f));
        assert_eq!(got.fields, [("n".to_string(), "7".to_string())]);
        assert!(other.try_recv().is_err());

        // A Heartbeat client's type without to_id reaches everyone; vigil's own does not.
        clients.deliver("bravo", &Message::with_type("num_ping_nodes"));
        assert!(matches!(chat.try_recv(), Ok(Delivery::Message(_))));
        assert!(matches!(other.try_recv(), Ok(Delivery::Message(_))));
        for own in ["resource", "vigil-ping-count"] {
            clients.deliver("bravo", &Message::with_type(own));
            assert!(
                chat.try_recv().is_err() && other.try_recv().is_err(),
                "{own} reached a client"
            );
        }
    }
}
