//! The client library for cluster programs: sign on under a client name, read node and link
//! status, send messages to the same client on one node or on every node, and receive
//! messages and status changes in the order the daemon produced them.
//!
//! Blocking and single-threaded on purpose, like Heartbeat's libhbclient: a program that
//! wants to wait on other things too polls with [`ClusterClient::recv_timeout`]. It owns one
//! connection and the deliveries that arrived while it waited for a reply; it never talks to
//! the cluster except through the daemon.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cluster::{ClusterMessage, SignOnInfo};
use super::{ApiError, ApiEvent, ApiReply, ApiRequest, StatusReport};

/// How long a request may wait for its reply before the daemon is considered hung.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// What a signed-on client receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEvent {
    /// A message from the client of the same name on a node (possibly this one), or a
    /// message of another program's type addressed to no client in particular.
    Message(ClusterMessage),
    /// A status change: `node_status` and `link_status` among others (see [`ApiEvent`]).
    Membership(ApiEvent),
}

/// One node as the daemon sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node name (lower case).
    pub name: String,
    /// `init`, `up`, `active` or `dead`, as `cl_status nodestatus` prints it.
    pub status: String,
    /// Each link by name, and whether it is up.
    pub links: Vec<(String, bool)>,
}

/// A signed-on cluster client.
pub struct ClusterClient {
    reader: BufReader<UnixStream>,
    path: PathBuf,
    info: SignOnInfo,
    /// Deliveries that arrived while a request waited for its reply, oldest first.
    pending: VecDeque<ClusterEvent>,
}

impl ClusterClient {
    /// Connects to the daemon at `socket` and signs on as `client`. A refusal (no `apiauth`
    /// allows this user or group, or the name is taken on this node) is
    /// [`ApiError::Refused`] with the daemon's reason.
    pub fn signon(socket: &Path, client: &str) -> Result<Self, ApiError> {
        let stream = UnixStream::connect(socket).map_err(|source| ApiError::Connect {
            path: socket.to_path_buf(),
            source,
        })?;
        let mut this = Self {
            reader: BufReader::new(stream),
            path: socket.to_path_buf(),
            info: SignOnInfo {
                session: 0,
                node: String::new(),
                client: client.to_string(),
                keepalive_ms: 0,
                deadtime_ms: 0,
            },
            pending: VecDeque::new(),
        };
        this.write(&ApiRequest::Signon {
            client: client.to_string(),
        })?;
        match this.read_reply(Some(REPLY_TIMEOUT)) {
            Ok(Some(ApiReply::SignedOn(info))) => {
                this.info = info;
                Ok(this)
            }
            Err(ApiError::Protocol { detail, .. }) => Err(ApiError::Refused {
                path: socket.to_path_buf(),
                client: client.to_string(),
                reason: detail,
            }),
            Err(other) => Err(other),
            Ok(other) => Err(this.protocol(format!("expected signed_on, got {other:?}"))),
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.info.node
    }

    /// The name this client signed on with.
    pub fn client_name(&self) -> &str {
        &self.info.client
    }

    /// Every configured node with its status and links, now.
    pub fn nodes(&mut self) -> Result<Vec<NodeInfo>, ApiError> {
        let report = self.status()?;
        Ok(report
            .membership
            .nodes
            .iter()
            .map(|node| NodeInfo {
                name: node.name.clone(),
                status: node.status.as_str().to_string(),
                links: node
                    .links
                    .iter()
                    .map(|link| (link.name.clone(), link.up))
                    .collect(),
            })
            .collect())
    }

    /// The daemon's whole status report.
    pub fn status(&mut self) -> Result<StatusReport, ApiError> {
        self.write(&ApiRequest::Status)?;
        match self.wait_for_reply()? {
            ApiReply::Status(report) => Ok(*report),
            other => Err(self.protocol(format!("expected a status reply, got {other:?}"))),
        }
    }

    /// Sends a message of type `message_type` to the client of the same name on node `to`, or
    /// on every node (this one included) when `to` is `None`. It is sequenced and
    /// retransmitted like every cluster message; peers receive a client's messages in the
    /// order it sent them.
    pub fn send(
        &mut self,
        to: Option<&str>,
        message_type: &str,
        fields: &[(&str, &str)],
    ) -> Result<(), ApiError> {
        self.write(&ApiRequest::Send {
            to: to.map(str::to_string),
            message_type: message_type.to_string(),
            fields: fields
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        })?;
        match self.wait_for_reply()? {
            ApiReply::Sent => Ok(()),
            other => Err(self.protocol(format!("expected sent, got {other:?}"))),
        }
    }

    /// The next message or status change, waiting as long as it takes.
    pub fn recv(&mut self) -> Result<ClusterEvent, ApiError> {
        loop {
            if let Some(event) = self.recv_timeout(Duration::from_secs(3600))? {
                return Ok(event);
            }
        }
    }

    /// The next message or status change, or `None` after `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<ClusterEvent>, ApiError> {
        if let Some(event) = self.pending.pop_front() {
            return Ok(Some(event));
        }
        if timeout.is_zero() {
            return Ok(None);
        }
        match self.read_reply(Some(timeout))? {
            None => Ok(None),
            Some(reply) => match into_event(reply) {
                Ok(event) => Ok(Some(event)),
                Err(other) => Err(self.protocol(format!("unexpected reply {other:?}"))),
            },
        }
    }

    /// Reads until the reply to the request just written, keeping deliveries for later.
    fn wait_for_reply(&mut self) -> Result<ApiReply, ApiError> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(reply) = self.read_reply(Some(left.max(Duration::from_millis(1))))? else {
                return Err(self.protocol("no reply within 10 s".to_string()));
            };
            match into_event(reply) {
                Ok(event) => self.pending.push_back(event),
                Err(reply) => return Ok(*reply),
            }
        }
    }

    fn write(&mut self, request: &ApiRequest) -> Result<(), ApiError> {
        let mut line = serde_json::to_vec(request).map_err(|e| self.protocol(e.to_string()))?;
        line.push(b'\n');
        self.reader
            .get_mut()
            .write_all(&line)
            .map_err(|source| ApiError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// One reply line, or `None` when `timeout` passed first. A partly read line stays in
    /// the buffer, so a timeout never loses data.
    fn read_reply(&mut self, timeout: Option<Duration>) -> Result<Option<ApiReply>, ApiError> {
        let io = |path: &Path, source| ApiError::Io {
            path: path.to_path_buf(),
            source,
        };
        self.reader
            .get_ref()
            .set_read_timeout(timeout)
            .map_err(|e| io(&self.path, e))?;
        let mut line = Vec::new();
        loop {
            match self.reader.read_until(b'\n', &mut line) {
                Ok(0) => return Err(self.protocol("the daemon closed the connection".into())),
                Ok(_) if line.ends_with(b"\n") => break,
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if line.is_empty() {
                        return Ok(None);
                    }
                    // Half a line arrived: the rest follows promptly.
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(io(&self.path, e)),
            }
        }
        match serde_json::from_slice::<ApiReply>(&line) {
            Ok(ApiReply::Error { message }) => Err(self.protocol(message)),
            Ok(reply) => Ok(Some(reply)),
            Err(e) => Err(self.protocol(format!("unreadable reply: {e}"))),
        }
    }

    fn protocol(&self, detail: String) -> ApiError {
        ApiError::Protocol {
            path: self.path.clone(),
            detail,
        }
    }
}

/// A delivery as an event, or the reply back when it is the answer to a request.
fn into_event(reply: ApiReply) -> Result<ClusterEvent, Box<ApiReply>> {
    match reply {
        ApiReply::Message(message) => Ok(ClusterEvent::Message(message)),
        ApiReply::Event(event) => Ok(ClusterEvent::Membership(event)),
        other => Err(Box::new(other)),
    }
}
