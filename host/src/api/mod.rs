//! The local client API: a Unix stream socket speaking newline-delimited JSON.
//!
//! Owns the request and reply types, the server task that accepts connections, and the
//! blocking client used by `vigil status` and `cl_status`. The server never touches cluster
//! state itself: it forwards each request to the core loop and relays the answer, so a slow
//! or hostile client can never stall the core (a client that does not read its event stream
//! loses events and is told how many).
//!
//! Protocol: the client writes one JSON request per line (`{"request":"status"}`,
//! `{"request":"events"}`); the server writes one JSON reply per line. `events` turns the
//! connection into an ordered stream of [`ApiEvent`] lines until the client hangs up.
//! `{"request":"signon","client":"NAME"}` makes the connection a cluster client's
//! ([`cluster`]): it may then `send` messages, and the server writes, between replies, the
//! messages and events for it in the order the core produced them ([`client::ClusterClient`]
//! is the library side).

pub mod client;
pub mod cluster;

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::failover::FailoverStatus;
use crate::membership::MembershipStatus;
pub use cluster::{ClientRequest, PeerCredentials};

/// The longest request line the server reads; anything longer is refused.
const MAX_REQUEST_BYTES: usize = 4096;

/// What a client may ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case", deny_unknown_fields)]
pub enum ApiRequest {
    /// The whole status report.
    Status,
    /// Subscribe to the ordered event stream from now on.
    Events,
    /// Stand by for a set of groups (`all`, `local`, `foreign`, `failback`; `none` ends
    /// standby), as `hb_standby` asks; answered with the status report.
    Standby { set: String },
    /// Take a set of groups over, as `hb_takeover` asks; answered with the status report.
    Takeover { set: String },
    /// Sign on as a cluster client named `client` (allowed by `apiauth`); answered with
    /// `signed_on`, after which messages and events for it arrive on this connection.
    Signon { client: String },
    /// Send a cluster message of type `type` with `fields` to node `to` (absent: every
    /// node), to the client of the same name there; answered with `sent`.
    Send {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        #[serde(rename = "type")]
        message_type: String,
        #[serde(default)]
        fields: Vec<(String, String)>,
    },
}

/// The daemon's answer to `status`: membership, counters, configuration parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// vigil's version, for `cl_status hbstatus -v`.
    pub version: String,
    /// Membership as the core sees it now.
    pub membership: MembershipStatus,
    /// Resource groups: owners, local states, `rscstatus`.
    pub failover: FailoverStatus,
    /// Datagrams and messages dropped, by reason (`bad_signature`, `replayed_seq`, …).
    pub drops: BTreeMap<String, u64>,
    /// ha.cf parameters as written, for `cl_status hbparameter -p`.
    pub parameters: BTreeMap<String, String>,
}

/// One entry of the event stream. `seq` grows by one per event, so a client sees order and
/// gaps; `lost` on a line says how many events this client missed before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiEvent {
    /// Position in the daemon's event order, from 1.
    pub seq: u64,
    /// Unix time in milliseconds when the core produced it.
    pub unix_ms: u64,
    /// A stable kind for programs (`node_status`, `link_status`, `late_heartbeat`, …).
    pub kind: String,
    /// The node it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub node: Option<String>,
    /// The Heartbeat-style log line for people.
    pub text: String,
    /// Events this client missed just before this one because it read too slowly.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub lost: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A reply line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum ApiReply {
    Status(Box<StatusReport>),
    Event(ApiEvent),
    Error {
        message: String,
    },
    /// The answer to `signon`.
    SignedOn(cluster::SignOnInfo),
    /// The answer to `send`: the message is queued for reliable sending.
    Sent,
    /// A cluster message for a signed-on client.
    Message(cluster::ClusterMessage),
}

/// A request forwarded to the core, with the channel for its answer.
pub struct CoreRequest {
    pub request: ApiRequest,
    pub reply: oneshot::Sender<StatusReport>,
}

/// Errors of the API, on either side.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("cannot listen on {path}: {source}")]
    Listen {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot connect to vigil at {path}: {source} (is `vigil run` running with this socket?)"
    )]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("talking to vigil at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("vigil at {path} answered something unexpected: {detail}")]
    Protocol { path: PathBuf, detail: String },
    #[error("vigil at {path} refused sign-on as `{client}`: {reason}")]
    Refused {
        path: PathBuf,
        client: String,
        reason: String,
    },
}

/// The listening side, owned by the runtime.
pub struct ApiServer {
    listener: UnixListener,
    path: PathBuf,
}

impl ApiServer {
    /// Binds the socket, replacing a stale one left by a crash. Mode 0660: root and the
    /// socket's group may query the cluster; others may not.
    pub fn bind(path: &Path) -> Result<Self, ApiError> {
        let listen_err = |source| ApiError::Listen {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(listen_err)?;
        }
        if StdUnixStream::connect(path).is_ok() {
            return Err(listen_err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another vigil is already serving this socket",
            )));
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(listen_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
            .map_err(listen_err)?;
        Ok(Self {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// Accepts clients until the task is dropped. Each client gets its own task.
    pub async fn serve(
        self,
        to_core: mpsc::Sender<CoreRequest>,
        events: broadcast::Sender<ApiEvent>,
        to_clients: mpsc::Sender<ClientRequest>,
    ) {
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                continue;
            };
            let to_core = to_core.clone();
            let to_clients = to_clients.clone();
            let events = events.subscribe();
            tokio::spawn(async move {
                if let Err(error) = serve_client(stream, to_core, events, to_clients).await {
                    tracing::debug!(%error, "api client ended");
                }
            });
        }
    }

    /// The socket path, removed by the runtime at shutdown.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

async fn serve_client(
    stream: UnixStream,
    to_core: mpsc::Sender<CoreRequest>,
    mut events: broadcast::Receiver<ApiEvent>,
    to_clients: mpsc::Sender<ClientRequest>,
) -> io::Result<()> {
    let credentials = stream.peer_cred().ok().map(|cred| PeerCredentials {
        uid: cred.uid(),
        gid: cred.gid(),
        pid: cred.pid(),
    });
    let (read, mut write) = stream.into_split();
    let mut reader = AsyncBufReader::new(read);
    loop {
        let mut bytes = Vec::new();
        let limit = MAX_REQUEST_BYTES as u64 + 1;
        if (&mut reader)
            .take(limit)
            .read_until(b'\n', &mut bytes)
            .await?
            == 0
        {
            return Ok(());
        }
        if bytes.len() > MAX_REQUEST_BYTES {
            let message = format!("request longer than {MAX_REQUEST_BYTES} bytes");
            return write_line(&mut write, &ApiReply::Error { message }).await;
        }
        let line = String::from_utf8_lossy(&bytes);
        let line = line.trim_end();
        let reply = match serde_json::from_str::<ApiRequest>(line) {
            Err(e) => ApiReply::Error {
                message: format!(
                    "bad request {line:?}: {e} (expected {{\"request\":\"status\"}}, {{\"request\":\"events\"}}, standby/takeover with a \"set\", or signon with a \"client\")"
                ),
            },
            Ok(ApiRequest::Events) => {
                let mut lost = 0;
                loop {
                    match events.recv().await {
                        Ok(mut event) => {
                            event.lost = lost;
                            lost = 0;
                            write_line(&mut write, &ApiReply::Event(event)).await?;
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => lost += n,
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    }
                }
            }
            Ok(ApiRequest::Signon { client }) => {
                let Some(credentials) = credentials else {
                    let message = "cannot read the credentials of this connection".to_string();
                    return write_line(&mut write, &ApiReply::Error { message }).await;
                };
                let (deliveries_tx, deliveries) = mpsc::channel(cluster::CLIENT_QUEUE);
                let (reply, answer) = oneshot::channel();
                let request = ClientRequest::SignOn {
                    client,
                    credentials,
                    deliveries: deliveries_tx,
                    reply,
                };
                if to_clients.send(request).await.is_err() {
                    return Ok(());
                }
                match answer.await {
                    Ok(Ok(info)) => {
                        let session = info.session;
                        write_line(&mut write, &ApiReply::SignedOn(info)).await?;
                        let ended =
                            serve_session(reader, &mut write, session, deliveries, &to_core, &to_clients)
                                .await;
                        let _ = to_clients.send(ClientRequest::SignOff { session }).await;
                        return ended;
                    }
                    Ok(Err(message)) => ApiReply::Error { message },
                    Err(_) => return Ok(()),
                }
            }
            Ok(ApiRequest::Send { .. }) => ApiReply::Error {
                message: "this connection is not signed on (send {\"request\":\"signon\",\"client\":\"NAME\"} first)".to_string(),
            },
            Ok(request) => {
                let (reply, answer) = oneshot::channel();
                if to_core.send(CoreRequest { request, reply }).await.is_err() {
                    return Ok(());
                }
                match answer.await {
                    Ok(report) => ApiReply::Status(Box::new(report)),
                    Err(_) => return Ok(()),
                }
            }
        };
        write_line(&mut write, &reply).await?;
    }
}

/// Reads request lines on their own task, so the session can wait for a request and a
/// delivery at once without losing a half-read line.
fn spawn_request_reader(
    mut reader: AsyncBufReader<tokio::net::unix::OwnedReadHalf>,
) -> mpsc::Receiver<Result<ApiRequest, String>> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let mut bytes = Vec::new();
            let limit = MAX_REQUEST_BYTES as u64 + 1;
            match (&mut reader)
                .take(limit)
                .read_until(b'\n', &mut bytes)
                .await
            {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let request = if bytes.len() > MAX_REQUEST_BYTES {
                Err(format!("request longer than {MAX_REQUEST_BYTES} bytes"))
            } else {
                let line = String::from_utf8_lossy(&bytes);
                serde_json::from_str::<ApiRequest>(line.trim_end())
                    .map_err(|e| format!("bad request {:?}: {e}", line.trim_end()))
            };
            let fatal = request.is_err();
            if tx.send(request).await.is_err() || fatal {
                return;
            }
        }
    });
    rx
}

/// A signed-on client's connection: requests in, replies plus deliveries out, until the
/// client hangs up or the core signs it off (it stopped reading).
async fn serve_session(
    reader: AsyncBufReader<tokio::net::unix::OwnedReadHalf>,
    write: &mut tokio::net::unix::OwnedWriteHalf,
    session: cluster::SessionId,
    mut deliveries: mpsc::Receiver<cluster::Delivery>,
    to_core: &mpsc::Sender<CoreRequest>,
    to_clients: &mpsc::Sender<ClientRequest>,
) -> io::Result<()> {
    let mut requests = spawn_request_reader(reader);
    loop {
        tokio::select! {
            delivery = deliveries.recv() => {
                let reply = match delivery {
                    Some(cluster::Delivery::Message(message)) => ApiReply::Message(message),
                    Some(cluster::Delivery::Event(event)) => ApiReply::Event(event),
                    None => {
                        let message = "signed off by the daemon: this client did not read its messages".to_string();
                        return write_line(write, &ApiReply::Error { message }).await;
                    }
                };
                write_line(write, &reply).await?;
            }
            request = requests.recv() => {
                let reply = match request {
                    None => return Ok(()),
                    Some(Err(message)) => return write_line(write, &ApiReply::Error { message }).await,
                    Some(Ok(ApiRequest::Send { to, message_type, fields })) => {
                        let (reply, answer) = oneshot::channel();
                        let request = ClientRequest::Send { session, to, message_type, fields, reply };
                        if to_clients.send(request).await.is_err() {
                            return Ok(());
                        }
                        match answer.await {
                            Ok(Ok(())) => ApiReply::Sent,
                            Ok(Err(message)) => ApiReply::Error { message },
                            Err(_) => return Ok(()),
                        }
                    }
                    Some(Ok(ApiRequest::Signon { .. } | ApiRequest::Events)) => ApiReply::Error {
                        message: "this connection is already signed on and receives events".to_string(),
                    },
                    Some(Ok(request)) => {
                        let (reply, answer) = oneshot::channel();
                        if to_core.send(CoreRequest { request, reply }).await.is_err() {
                            return Ok(());
                        }
                        match answer.await {
                            Ok(report) => ApiReply::Status(Box::new(report)),
                            Err(_) => return Ok(()),
                        }
                    }
                };
                write_line(write, &reply).await?;
            }
        }
    }
}

async fn write_line(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    reply: &ApiReply,
) -> io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(io::Error::other)?;
    line.push(b'\n');
    write.write_all(&line).await
}

/// A blocking client for the command-line tools.
pub struct ApiClient {
    reader: BufReader<StdUnixStream>,
    path: PathBuf,
}

impl ApiClient {
    /// Connects to the daemon's socket.
    pub fn connect(path: &Path) -> Result<Self, ApiError> {
        let stream = StdUnixStream::connect(path).map_err(|source| ApiError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        let io_err = |source| ApiError::Io {
            path: path.to_path_buf(),
            source,
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(io_err)?;
        Ok(Self {
            reader: BufReader::new(stream),
            path: path.to_path_buf(),
        })
    }

    /// Asks for the status report.
    pub fn status(&mut self) -> Result<StatusReport, ApiError> {
        self.request(&ApiRequest::Status)
    }

    /// Sends a request answered with the status report (status, standby, takeover).
    pub fn request(&mut self, request: &ApiRequest) -> Result<StatusReport, ApiError> {
        self.send(request)?;
        match self.next_reply()? {
            ApiReply::Status(report) => Ok(*report),
            other => Err(self.protocol(format!("expected a status reply, got {other:?}"))),
        }
    }

    /// Subscribes to events; then call [`ApiClient::next_event`] repeatedly.
    pub fn subscribe(&mut self) -> Result<(), ApiError> {
        self.send(&ApiRequest::Events)?;
        self.reader
            .get_ref()
            .set_read_timeout(None)
            .map_err(|source| ApiError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// The next event of a subscription, in order.
    pub fn next_event(&mut self) -> Result<ApiEvent, ApiError> {
        match self.next_reply()? {
            ApiReply::Event(event) => Ok(event),
            other => Err(self.protocol(format!("expected an event, got {other:?}"))),
        }
    }

    fn send(&mut self, request: &ApiRequest) -> Result<(), ApiError> {
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

    fn next_reply(&mut self) -> Result<ApiReply, ApiError> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|source| ApiError::Io {
                path: self.path.clone(),
                source,
            })?;
        if n == 0 {
            return Err(self.protocol("the daemon closed the connection".into()));
        }
        match serde_json::from_str::<ApiReply>(&line) {
            Ok(ApiReply::Error { message }) => Err(self.protocol(message)),
            Ok(reply) => Ok(reply),
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

/// The socket a client tool uses: `--socket`, else `$VIGIL_SOCKET`, else the default.
pub fn client_socket_path(flag: Option<&Path>) -> PathBuf {
    if let Some(path) = flag {
        return path.to_path_buf();
    }
    match std::env::var_os("VIGIL_SOCKET") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(DEFAULT_SOCKET),
    }
}

/// Where the daemon listens unless configured otherwise.
pub const DEFAULT_SOCKET: &str = "/run/vigil/vigil.sock";

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};

    use super::*;

    /// Serves one socket on a private runtime thread and returns its path.
    fn serve_in_background(tag: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("vigil-api-{tag}-{}.sock", std::process::id()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let socket = path.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let server = ApiServer::bind(&socket).unwrap();
                let (to_core, _core) = mpsc::channel(1);
                let (to_clients, _clients) = mpsc::channel(1);
                let (events, _) = broadcast::channel(4);
                ready_tx.send(()).unwrap();
                server.serve(to_core, events, to_clients).await;
            });
        });
        ready_rx.recv().unwrap();
        path
    }

    fn ask(path: &Path, request: &[u8]) -> String {
        let mut stream = StdUnixStream::connect(path).unwrap();
        stream.write_all(request).unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        line
    }

    #[test]
    fn a_bad_request_gets_an_error_naming_what_was_expected() {
        let path = serve_in_background("bad");
        let reply = ask(&path, b"{\"request\":\"reboot\"}\n");
        let reply: ApiReply = serde_json::from_str(&reply).unwrap();
        let ApiReply::Error { message } = reply else {
            panic!("expected an error, got {reply:?}");
        };
        assert!(
            message.contains("reboot") && message.contains("expected"),
            "{message}"
        );
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn an_overlong_request_is_refused_and_the_connection_closed() {
        let path = serve_in_background("long");
        let mut request = vec![b'x'; MAX_REQUEST_BYTES * 2];
        request.push(b'\n');
        let reply: ApiReply = serde_json::from_str(&ask(&path, &request)).unwrap();
        assert!(
            matches!(reply, ApiReply::Error { ref message } if message.contains("longer than"))
        );
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_second_daemon_cannot_take_a_served_socket() {
        let path = serve_in_background("twice");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let second = runtime.block_on(async { ApiServer::bind(&path) });
        assert!(matches!(second, Err(ApiError::Listen { .. })));
        let _ = std::fs::remove_file(path);
    }
}
