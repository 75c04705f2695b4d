//! The core task: the one place that owns membership state and the order of events.
//!
//! It feeds the membership machine (frames, timer, load average, shutdown), carries out its
//! outputs (encode and queue frames, count drops, publish events) and answers API requests
//! from a snapshot. It never blocks: media I/O is on threads, and the only wait is the
//! `select!` on its inputs and the one timer at the machine's next deadline.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use vigil_plugin_api::Medium;

use super::media::{MediumThreads, Received};
use super::{DaemonOptions, RuntimeError, SharedKeys, unix_millis, unix_seconds};
use crate::api::{ApiEvent, ApiServer, CoreRequest, StatusReport};
use crate::config::MsgFormat;
use crate::membership::{Input, Membership, MembershipConfig, MembershipEvent, Now, Output};
use crate::wire::Message;
use crate::wire::datagram::{self, InnerAuth};

/// Events kept for clients that subscribe late or read slowly.
const EVENT_BACKLOG: usize = 1024;
/// How often the load average (`ld` field) is refreshed.
const LOAD_AVERAGE_PERIOD: Duration = Duration::from_secs(2);

/// The running daemon's core.
pub struct Core {
    membership: Membership,
    /// The monotonic origin that `Now::mono` counts from.
    origin: Instant,
    media: Vec<MediumThreads>,
    keys: SharedKeys,
    /// Whether outgoing datagrams carry the inner classic `auth` field (`msgfmt`).
    inner_auth: InnerAuth,
    from_media: mpsc::UnboundedReceiver<Received>,
    load_average: mpsc::UnboundedReceiver<String>,
    requests: mpsc::Receiver<CoreRequest>,
    events: broadcast::Sender<ApiEvent>,
    /// Sequence number of the last published event.
    event_seq: u64,
    /// Drops by reason, from the decoder and from membership.
    drops: BTreeMap<String, u64>,
    /// ha.cf parameters as written, for `hbparameter`.
    parameters: BTreeMap<String, String>,
    api_task: JoinHandle<()>,
    socket: PathBuf,
}

impl Core {
    /// Opens the media threads and the API task; nothing is sent until [`Core::run`].
    pub fn start(
        options: &DaemonOptions,
        generation: u64,
        uuid: [u8; 16],
        media: Vec<Box<dyn Medium>>,
        keys: SharedKeys,
        api: ApiServer,
    ) -> Result<Self, RuntimeError> {
        let config = &options.config;
        let (to_core, from_media) = mpsc::unbounded_channel();
        let links: Vec<String> = media.iter().map(|m| m.link_name().to_string()).collect();
        let mut threads = Vec::with_capacity(media.len());
        for (id, medium) in media.into_iter().enumerate() {
            threads.push(MediumThreads::start(
                id,
                medium,
                Arc::clone(&keys),
                to_core.clone(),
            )?);
        }

        let seed = u64::from_le_bytes(super::state::random_bytes::<8>()?);
        let membership = Membership::new(MembershipConfig {
            local_node: options.node_name.clone(),
            local_uuid: uuid,
            nodes: config.nodes.clone(),
            links,
            keepalive: config.timing.keepalive,
            deadtime: config.timing.deadtime,
            warntime: config.timing.warntime,
            initdead: config.timing.initdead,
            max_rexmit_delay: config.timing.max_rexmit_delay,
            hopfudge: config.hopfudge,
            generation,
            rng_seed: seed,
        });

        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        let (request_tx, requests) = mpsc::channel(16);
        let socket = api.path().to_path_buf();
        let api_task = tokio::spawn(api.serve(request_tx, events.clone()));

        Ok(Self {
            membership,
            origin: Instant::now(),
            media: threads,
            keys,
            inner_auth: match config.msgfmt {
                MsgFormat::Classic => InnerAuth::Classic,
                MsgFormat::Netstring => InnerAuth::Omitted,
            },
            from_media,
            load_average: spawn_load_average_reader(),
            requests,
            events,
            event_seq: 0,
            drops: BTreeMap::new(),
            parameters: config.recorded_parameters(),
            api_task,
            socket,
        })
    }

    /// Runs until SIGTERM or SIGINT, then shuts down cleanly. SIGHUP is logged and ignored
    /// (its default action would kill the daemon).
    pub async fn run(mut self) {
        let (Ok(mut sigterm), Ok(mut sigint), Ok(mut sighup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::error!("cannot install signal handlers; stopping");
            return self.shutdown();
        };
        tracing::info!(
            node = %self.membership.status().local_node,
            media = self.media.len(),
            "vigil starting"
        );
        self.feed(Input::Start);
        loop {
            let deadline = self
                .membership
                .next_deadline()
                .map(|d| tokio::time::Instant::from_std(self.origin + d));
            tokio::select! {
                biased;
                _ = sigterm.recv() => break,
                _ = sigint.recv() => break,
                _ = sighup.recv() => {
                    tracing::warn!("SIGHUP: reloading the configuration is not supported yet; restart vigil to apply changes");
                }
                Some(received) = self.from_media.recv() => self.on_received(received),
                _ = sleep_until(deadline) => self.feed(Input::Timer),
                Some(line) = self.load_average.recv() => self.feed(Input::LoadAverage(line)),
                Some(request) = self.requests.recv() => {
                    let _ = request.reply.send(self.status_report());
                }
            }
        }
        tracing::info!("vigil shutting down");
        self.feed(Input::Shutdown);
        self.shutdown();
    }

    fn now(&self) -> Now {
        Now {
            mono: self.origin.elapsed(),
            wall_secs: unix_seconds(),
        }
    }

    /// Feeds one input, carries out its outputs, then feeds back our own sent messages as
    /// if each medium had delivered them (Heartbeat's internal loopback: it keeps our own
    /// links up even on ucast, which never sends to ourselves). A queue, not recursion, so
    /// a loopback that causes more sends cannot nest.
    fn feed(&mut self, input: Input) {
        let mut pending = std::collections::VecDeque::from([input]);
        while let Some(input) = pending.pop_front() {
            let now = self.now();
            for output in self.membership.handle(input, now) {
                if let Output::Send(message) = &output {
                    for medium in 0..self.media.len() {
                        pending.push_back(Input::Received {
                            medium,
                            message: message.clone(),
                        });
                    }
                }
                self.carry_out(output);
            }
        }
    }

    fn on_received(&mut self, received: Received) {
        match received {
            Received::Message { medium, message } => self.feed(Input::Received { medium, message }),
            Received::Dropped {
                medium,
                from,
                reason,
            } => {
                let link = self.media.get(medium).map_or("?", |m| m.link_name());
                tracing::warn!(%link, %from, reason = reason.counter(), "dropped datagram: {reason}");
                self.count_drop(reason.counter());
            }
            Received::Failed { medium, error } => {
                let link = self.media.get(medium).map_or("?", |m| m.link_name());
                tracing::error!(%link, %error, "medium failed; its link will go dead");
            }
        }
    }

    fn carry_out(&mut self, output: Output) {
        match output {
            Output::Send(message) => self.send(&message),
            Output::Event(event) => self.publish(event),
            Output::Dropped { reason, node } => {
                let node = node.as_deref().unwrap_or("?");
                if reason.is_routine() {
                    tracing::debug!(%node, reason = reason.counter(), "not processed: {reason}");
                } else {
                    tracing::warn!(%node, reason = reason.counter(), "dropped message: {reason}");
                }
                self.count_drop(reason.counter());
            }
            Output::Deliver { from, message } => {
                tracing::debug!(%from, "message for upper layers: {message}");
            }
        }
    }

    fn send(&mut self, message: &Message) {
        let frame: Arc<[u8]> = match datagram::encode(message, &self.keys, self.inner_auth) {
            Ok(frame) => frame.into(),
            Err(error) => {
                tracing::error!(%error, "cannot encode outgoing message {message}");
                return;
            }
        };
        for medium in &self.media {
            if !medium.send(Arc::clone(&frame)) {
                tracing::warn!(link = %medium.link_name(), "send queue full; frame dropped");
                *self.drops.entry("send_queue_full".into()).or_default() += 1;
            }
        }
    }

    fn publish(&mut self, event: MembershipEvent) {
        let text = event.to_string();
        if event.is_warning() {
            tracing::warn!("{text}");
        } else {
            tracing::info!("{text}");
        }
        self.event_seq += 1;
        let _ = self.events.send(ApiEvent {
            seq: self.event_seq,
            unix_ms: unix_millis(),
            kind: event.kind().to_string(),
            node: event.node().map(str::to_string),
            text,
            lost: 0,
        });
    }

    fn count_drop(&mut self, reason: &str) {
        *self.drops.entry(reason.to_string()).or_default() += 1;
    }

    fn status_report(&self) -> StatusReport {
        StatusReport {
            version: env!("CARGO_PKG_VERSION").to_string(),
            membership: self.membership.status(),
            drops: self.drops.clone(),
            parameters: self.parameters.clone(),
        }
    }

    fn shutdown(mut self) {
        for medium in &mut self.media {
            medium.stop();
        }
        self.api_task.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads `/proc/loadavg` off the core task, so the core never waits on a file.
fn spawn_load_average_reader() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let spawned = thread::Builder::new()
        .name("loadavg".into())
        .spawn(move || {
            loop {
                let line = std::fs::read_to_string("/proc/loadavg")
                    .ok()
                    .and_then(|text| text.lines().next().map(str::to_string))
                    .filter(|line| !line.is_empty())
                    .unwrap_or_else(|| "n/a".to_string());
                if tx.send(line).is_err() {
                    return;
                }
                thread::sleep(LOAD_AVERAGE_PERIOD);
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot start the load-average reader; `ld` stays n/a");
    }
    rx
}
