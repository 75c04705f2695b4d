//! The core task: the one place that owns membership state and the order of events.
//!
//! It feeds the membership and failover machines (frames, timer, load average, agent and
//! fencing results, operator requests, shutdown), carries out their outputs (encode and send
//! frames, run agents, reset nodes, count drops, publish events) and answers API requests
//! from a snapshot. It never blocks: sends are non-blocking or queued to a writer thread,
//! agents and resets run on threads, and the only wait is the `select!` on its inputs and
//! the one timer at the machines' next deadline.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use vigil_plugin_api::Medium;

use super::agents::{AgentRunner, OperationResult};
use super::fencer::{FenceResult, Fencer};
use super::media::{EventLoopReader, FrameFormat, MediumDriver, Received, SendFailure};
use super::supervisor::{self, ChildDeath, FailfastDeath, Supervisor};
use super::timer::DeadlineTimer;
use super::watchdog::Watchdog;
use super::{DaemonOptions, RuntimeError, SharedKeys, unix_millis, unix_seconds};
use crate::api::cluster::{ApiAuthorization, ClientRequest, ClusterClients};
use crate::api::{ApiEvent, ApiRequest, ApiServer, CoreRequest, StatusReport};
use crate::config::{ClusterConfig, ConnectivityFailover, MsgFormat};
use crate::failover::{
    self, ConnectivityConfig, Failover, FailoverConfig, GroupConfig, HoldSet, MonitorConfig,
    ResourceConfig,
};
use crate::membership::{
    Input, Membership, MembershipConfig, MembershipEvent, Now, Output, PingConfig, PingNodeConfig,
    ping_probe,
};
use crate::wire::Message;
use crate::wire::datagram::{self, InnerAuth};

/// Events kept for clients that subscribe late or read slowly.
const EVENT_BACKLOG: usize = 1024;
/// How often the load average (`ld` field) is refreshed.
const LOAD_AVERAGE_PERIOD: Duration = Duration::from_secs(2);
/// The longest a clean shutdown waits for local groups to stop, beyond their own timeouts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long a stopping node keeps serving after its groups are released, so a peer that
/// lost the `shutdone` can have it retransmitted (two default retransmission delays).
const SHUTDOWN_LINGER: Duration = Duration::from_millis(500);

/// One step of work for the two machines; outputs of one become inputs of the other.
enum Step {
    Membership(Input),
    Failover(failover::Input),
}

/// The running daemon's core.
pub struct Core {
    membership: Membership,
    /// Resource groups: who runs what, and our part of it.
    failover: Failover,
    /// Runs agent operations off the core.
    agents: AgentRunner,
    operations: mpsc::UnboundedReceiver<OperationResult>,
    /// Resets lost peers off the core, when a device is configured.
    fencer: Option<Fencer>,
    fence_results: mpsc::UnboundedReceiver<FenceResult>,
    /// Set when failover has released every local group after a shutdown request.
    released: bool,
    /// The longest any agent operation may take, for the shutdown deadline.
    longest_operation: Duration,
    /// The machines' timer; `Now::mono` counts from its origin.
    timer: DeadlineTimer,
    media: Vec<MediumDriver>,
    keys: SharedKeys,
    /// Whether outgoing datagrams carry the inner classic `auth` field (`msgfmt`).
    inner_auth: InnerAuth,
    /// Reads the media driven on this thread (every UDP medium).
    reader: EventLoopReader,
    /// Frames of the media read on threads of their own (serial, plugin media).
    from_media: mpsc::UnboundedReceiver<Received>,
    /// `/proc/loadavg`, read on the core's timer wake-ups at most every
    /// [`LOAD_AVERAGE_PERIOD`].
    load_average: LoadAverageReader,
    requests: mpsc::Receiver<CoreRequest>,
    events: broadcast::Sender<ApiEvent>,
    /// Signed-on cluster clients: what they send goes to membership, what is delivered for
    /// them and every event goes to them, in order.
    clients: ClusterClients,
    client_requests: mpsc::Receiver<ClientRequest>,
    /// Sequence number of the last published event.
    event_seq: u64,
    /// Drops by reason, from the decoder and from membership.
    drops: BTreeMap<String, u64>,
    /// ha.cf parameters as written, for `hbparameter`.
    parameters: BTreeMap<String, String>,
    api_task: JoinHandle<()>,
    socket: PathBuf,
    /// The `respawn` and `failfast` programs, started when communications come up.
    supervisor: Supervisor,
    /// Deaths of those programs, from their reaper threads.
    child_deaths: mpsc::UnboundedReceiver<ChildDeath>,
    /// The `watchdog` device, fed on each of our own heartbeats.
    watchdog: Option<Watchdog>,
    /// Set when a `failfast` program died and the reboot failed: the daemon stops, reports
    /// it, and leaves the watchdog armed.
    failfast: Option<(FailfastDeath, std::io::Error)>,
}

impl Core {
    /// Opens the media threads and the API task; nothing is sent until [`Core::run`].
    pub fn start(
        options: &DaemonOptions,
        generation: u64,
        uuid: [u8; 16],
        media: Vec<(Box<dyn Medium>, FrameFormat)>,
        keys: SharedKeys,
        api: ApiServer,
    ) -> Result<Self, RuntimeError> {
        let resources = options.resources.clone();
        let config = &options.config;
        let (to_core, from_media) = mpsc::unbounded_channel();
        let links: Vec<String> = media
            .iter()
            .map(|(m, _)| m.link_name().to_string())
            .collect();
        let ping = PingConfig {
            nodes: media
                .iter()
                .enumerate()
                .filter(|(_, (_, format))| matches!(format, FrameFormat::PingProbe { .. }))
                .map(|(medium, (m, _))| PingNodeConfig {
                    name: m.link_name().to_string(),
                    medium,
                })
                .collect(),
            deadping: config.timing.deadping,
        };
        let mut threads = Vec::with_capacity(media.len());
        for (id, (medium, format)) in media.into_iter().enumerate() {
            threads.push(MediumDriver::start(
                id,
                medium,
                format,
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
        })
        .with_ping_nodes(ping.clone());
        let ping_names: Vec<String> = ping.nodes.iter().map(|n| n.name.clone()).collect();

        let mut failover = Failover::new(failover_config(
            config,
            &options.node_name,
            u64::from_le_bytes(super::state::random_bytes::<8>()?),
            options.fence_device.as_ref().map(|d| d.device_type.clone()),
        ));
        if let Some(connectivity) = connectivity_config(config, &ping_names) {
            failover = failover.with_connectivity(connectivity);
        }
        let (fence_tx, fence_results) = mpsc::unbounded_channel();
        let fencer = options
            .fence_device
            .clone()
            .map(|device| Fencer::new(device, fence_tx));
        let longest_operation = resources
            .iter()
            .flatten()
            .map(|r| r.instance.timeout)
            .max()
            .unwrap_or_default();
        let (operation_tx, operations) = mpsc::unbounded_channel();
        let agents = AgentRunner::new(resources, operation_tx);

        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        let (request_tx, requests) = mpsc::channel(16);
        let (death_tx, child_deaths) = mpsc::unbounded_channel();
        let supervisor = Supervisor::new(&config.clients, death_tx)?;
        let watchdog = match &config.watchdog {
            Some(device) => Some(Watchdog::open(device, config.timing.deadtime)?),
            None => None,
        };
        let socket = api.path().to_path_buf();
        let (client_tx, client_requests) = mpsc::channel(64);
        let clients = ClusterClients::new(
            ApiAuthorization::from_rules(&config.api_auth),
            &options.node_name,
            u64::try_from(config.timing.keepalive.as_millis()).unwrap_or(u64::MAX),
            u64::try_from(config.timing.deadtime.as_millis()).unwrap_or(u64::MAX),
        );
        let api_task = tokio::spawn(api.serve(request_tx, events.clone(), client_tx));

        Ok(Self {
            membership,
            failover,
            agents,
            operations,
            fencer,
            fence_results,
            released: false,
            longest_operation,
            timer: DeadlineTimer::new()?,
            media: threads,
            reader: EventLoopReader::new(Arc::clone(&keys)),
            keys,
            inner_auth: match config.msgfmt {
                MsgFormat::Classic => InnerAuth::Classic,
                MsgFormat::Netstring => InnerAuth::Omitted,
            },
            from_media,
            load_average: LoadAverageReader::open(),
            requests,
            events,
            clients,
            client_requests,
            event_seq: 0,
            drops: BTreeMap::new(),
            parameters: config.recorded_parameters(),
            api_task,
            socket,
            supervisor,
            child_deaths,
            watchdog,
            failfast: None,
        })
    }

    /// Runs until SIGTERM or SIGINT, then shuts down cleanly. SIGHUP is logged and ignored
    /// (its default action would kill the daemon). Fails only when a `failfast` program
    /// died and the node could not be rebooted.
    pub async fn run(mut self) -> Result<(), RuntimeError> {
        let (Ok(sigterm), Ok(sigint), Ok(sighup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::error!("cannot install signal handlers; stopping");
            self.supervisor.stop_all(&mut self.child_deaths).await;
            return self.shutdown();
        };
        tracing::info!(
            node = %self.membership.status().local_node,
            media = self.media.len(),
            "vigil starting"
        );
        if let Some(line) = self.load_average.read_if_due(std::time::Instant::now()) {
            self.process(Step::Membership(Input::LoadAverage(line)));
        }
        self.process(Step::Membership(Input::Start));
        let mut signals = Signals {
            sigterm,
            sigint,
            sighup,
        };
        let stop = self.serve(&mut signals, Until::Signal).await;
        self.supervisor.begin_shutdown();
        if matches!(stop, Stop::Signal | Stop::Failfast) && !self.released {
            tracing::info!("releasing local resource groups before stopping");
            self.process(Step::Failover(failover::Input::Shutdown));
            let limit = tokio::time::Instant::now() + self.longest_operation * 2 + SHUTDOWN_GRACE;
            match self.serve(&mut signals, Until::Released(limit)).await {
                Stop::Released => {
                    // Stay a moment so a peer that missed our goodbye can ask for it again.
                    let linger = tokio::time::Instant::now() + SHUTDOWN_LINGER;
                    self.serve(&mut signals, Until::Time(linger)).await;
                }
                Stop::Signal | Stop::Limit | Stop::Failfast => {
                    tracing::error!("stopping before every local group was released");
                }
            }
        }
        tracing::info!("vigil shutting down");
        self.process(Step::Membership(Input::Shutdown));
        self.supervisor.stop_all(&mut self.child_deaths).await;
        self.shutdown()
    }

    /// Serves inputs until a signal, or until what `until` says.
    async fn serve(&mut self, signals: &mut Signals, until: Until) -> Stop {
        let limit = match until {
            Until::Signal => None,
            Until::Released(limit) | Until::Time(limit) => Some(limit),
        };
        loop {
            if matches!(until, Until::Released(_)) && self.released {
                return Stop::Released;
            }
            let deadline = [
                self.membership.next_deadline(),
                self.failover.next_deadline(),
            ]
            .into_iter()
            .flatten()
            .min();
            if let Err(error) = self.timer.set(deadline) {
                tracing::error!(%error, "cannot arm the protocol timer; stopping");
                return Stop::Signal;
            }
            tokio::select! {
                biased;
                _ = signals.sigterm.recv() => return Stop::Signal,
                _ = signals.sigint.recv() => return Stop::Signal,
                _ = sleep_until(limit) => return Stop::Limit,
                _ = signals.sighup.recv() => {
                    tracing::warn!("SIGHUP: reloading the configuration is not supported yet; restart vigil to apply changes");
                }
                received = self.reader.next_frame(&mut self.media) => self.on_received(received),
                Some(received) = self.from_media.recv() => self.on_received(received),
                Some(result) = self.operations.recv() => self.on_operation(result),
                Some(result) = self.fence_results.recv() => self.on_fence_result(result),
                fired = self.timer.fired() => {
                    if let Err(error) = fired {
                        tracing::error!(%error, "the protocol timer failed; stopping");
                        return Stop::Signal;
                    }
                    if let Some(line) = self.load_average.read_if_due(std::time::Instant::now()) {
                        self.process(Step::Membership(Input::LoadAverage(line)));
                    }
                    self.process(Step::Membership(Input::Timer));
                    // Failover's timers run on every input it gets; on a heartbeat tick it
                    // needs a turn only when one of them is due.
                    if self.failover.next_deadline().is_some_and(|due| due <= self.now().mono) {
                        self.process(Step::Failover(failover::Input::Timer));
                    }
                }
                Some(request) = self.requests.recv() => self.on_request(request),
                Some(request) = self.client_requests.recv() => self.on_client_request(request),
                Some(death) = self.child_deaths.recv() => {
                    if self.on_child_death(death) {
                        return Stop::Failfast;
                    }
                }
                _ = sleep_until(self.supervisor.next_restart().map(tokio::time::Instant::from_std)) => {
                    self.supervisor.restart_due(std::time::Instant::now());
                }
            }
        }
    }

    /// A `respawn`/`failfast` program died: restart it, or reboot for a `failfast` one.
    /// True when the reboot failed and the daemon must stop instead.
    fn on_child_death(&mut self, death: ChildDeath) -> bool {
        let Some(failfast) = self.supervisor.on_death(death, std::time::Instant::now()) else {
            return false;
        };
        let error = supervisor::reboot_node(&failfast);
        tracing::error!(%error, "Reboot failed; stopping vigil instead (the watchdog, if any, stays armed)");
        self.failfast = Some((failfast, error));
        true
    }

    fn now(&self) -> Now {
        Now {
            mono: self.timer.elapsed(),
            wall_secs: unix_seconds(),
        }
    }

    /// Feeds one input to its machine and carries out the outputs, which may be inputs of
    /// the other machine (a delivered message, a message to send). Our own sent messages are
    /// fed back as if each medium had delivered them (Heartbeat's internal loopback: it keeps
    /// our own links up even on ucast, which never sends to ourselves). A queue, not
    /// recursion, so a chain of reactions cannot nest.
    fn process(&mut self, first: Step) {
        let mut pending = std::collections::VecDeque::from([first]);
        while let Some(step) = pending.pop_front() {
            let now = self.now();
            match step {
                Step::Membership(input) => {
                    for output in self.membership.handle(input, now) {
                        self.carry_out_membership(output, &mut pending);
                    }
                }
                Step::Failover(input) => {
                    for output in self.failover.handle(input, now) {
                        self.carry_out_failover(output, &mut pending);
                    }
                }
            }
        }
    }

    fn on_received(&mut self, received: Received) {
        match received {
            Received::Message { medium, message } => {
                self.process(Step::Membership(Input::Received { medium, message }))
            }
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

    fn carry_out_membership(
        &mut self,
        output: Output,
        pending: &mut std::collections::VecDeque<Step>,
    ) {
        match output {
            Output::Send(message) => {
                if message.get_str("t") == Some("status")
                    && let Some(watchdog) = self.watchdog.as_mut()
                {
                    watchdog.feed();
                }
                self.send(&message);
                if let Some(last) = self.media.len().checked_sub(1) {
                    for medium in 0..last {
                        pending.push_back(Step::Membership(Input::Received {
                            medium,
                            message: message.clone(),
                        }));
                    }
                    pending.push_back(Step::Membership(Input::Received {
                        medium: last,
                        message,
                    }));
                }
            }
            Output::Event(event) => {
                let comm_up = event == MembershipEvent::CommunicationsUp;
                self.publish(
                    event.kind(),
                    event.node(),
                    event.to_string(),
                    event.is_warning(),
                );
                if comm_up {
                    // After the event is logged, so the log reads in Heartbeat's order.
                    self.supervisor.start_all();
                }
                pending.push_back(Step::Failover(failover::Input::Membership(event)));
            }
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
                for leave in self.clients.deliver(&from, &message) {
                    pending.push_back(Step::Membership(Input::SendCluster(leave)));
                }
                if Failover::acts_on(&message) {
                    pending.push_back(Step::Failover(failover::Input::Delivered { from, message }));
                }
            }
        }
    }

    fn carry_out_failover(
        &mut self,
        output: failover::Output,
        pending: &mut std::collections::VecDeque<Step>,
    ) {
        match output {
            failover::Output::Send(message) => {
                pending.push_back(Step::Membership(Input::SendCluster(message)));
            }
            failover::Output::Run {
                group,
                resource,
                action,
            } => {
                if let Some(target) = self.agents.resource(group, resource) {
                    tracing::info!(resource = %target.token, "running {action} ({})", target.runner);
                }
                self.agents.run(group, resource, action);
            }
            failover::Output::Event(event) => {
                let subject = event.group().or(event.node()).map(str::to_string);
                self.publish(
                    event.kind(),
                    subject.as_deref(),
                    event.to_string(),
                    event.is_warning(),
                );
            }
            failover::Output::Fence { node, attempt } => match &self.fencer {
                Some(fencer) => {
                    tracing::info!(%node, attempt, device = fencer.device_type(), "STONITH: resetting");
                    fencer.fence(node, attempt);
                }
                None => pending.push_back(Step::Failover(failover::Input::FenceDone {
                    node,
                    attempt,
                    result: Err("no STONITH device is configured".to_string()),
                })),
            },
            failover::Output::ShutdownComplete => self.released = true,
        }
    }

    fn on_operation(&mut self, result: OperationResult) {
        let token = self
            .agents
            .resource(result.group, result.resource)
            .map_or("?", |r| r.token.as_str())
            .to_string();
        let ok = matches!(result.outcome.status, vigil_plugin_api::OcfStatus::Success)
            || (result.action == vigil_plugin_api::AgentAction::Monitor
                && result.outcome.status == vigil_plugin_api::OcfStatus::NotRunning);
        if ok {
            tracing::info!(resource = %token, "{} finished in {:?}: {} {}", result.action, result.elapsed, result.outcome.status, result.outcome.message);
        } else {
            tracing::warn!(resource = %token, "{} failed after {:?}: {} {}", result.action, result.elapsed, result.outcome.status, result.outcome.message);
        }
        self.process(Step::Failover(failover::Input::OperationDone {
            group: result.group,
            resource: result.resource,
            action: result.action,
            status: result.outcome.status,
        }));
    }

    fn on_fence_result(&mut self, outcome: FenceResult) {
        match &outcome.result {
            Ok(()) => {
                tracing::info!(node = %outcome.node, "STONITH: reset done in {:?}", outcome.elapsed)
            }
            Err(error) => {
                tracing::error!(node = %outcome.node, "STONITH: reset failed after {:?}: {error}", outcome.elapsed)
            }
        }
        self.process(Step::Failover(failover::Input::FenceDone {
            node: outcome.node,
            attempt: outcome.attempt,
            result: outcome.result,
        }));
    }

    fn on_request(&mut self, request: CoreRequest) {
        let command = match &request.request {
            ApiRequest::Standby { set } => HoldSet::from_word(set).map(failover::Input::Standby),
            ApiRequest::Takeover { set } => HoldSet::from_word(set).map(failover::Input::Takeover),
            ApiRequest::Status
            | ApiRequest::Events
            | ApiRequest::Signon { .. }
            | ApiRequest::Send { .. } => None,
        };
        if let Some(input) = command {
            self.process(Step::Failover(input));
        }
        let _ = request.reply.send(self.status_report());
    }

    /// Sends `message` on every medium, encoded once per format in use (netstring on UDP,
    /// classic on serial); a ping medium gets only our status, as its ping probe.
    fn send(&mut self, message: &Message) {
        let mut netstring: Option<Option<Arc<[u8]>>> = None;
        let mut classic: Option<Option<Arc<[u8]>>> = None;
        for medium in &self.media {
            let (encoded, format) = match medium.format() {
                FrameFormat::Netstring => (&mut netstring, "netstring"),
                FrameFormat::Classic => (&mut classic, "classic"),
                FrameFormat::PingProbe { kind } => {
                    let probe: Option<Arc<[u8]>> = ping_probe(kind, medium.link_name(), message)
                        .and_then(|probe| {
                            datagram::encode(&probe, &self.keys, self.inner_auth)
                                .map_err(|error| tracing::error!(%error, "cannot encode {probe}"))
                                .ok()
                                .map(Arc::from)
                        });
                    let Some(frame) = probe.as_ref() else {
                        continue;
                    };
                    if let Err(failure) = medium.send(frame) {
                        tracing::debug!(link = %medium.link_name(), ?failure, "ping not sent");
                        *self.drops.entry(failure.reason().into()).or_default() += 1;
                    }
                    continue;
                }
            };
            let frame = encoded.get_or_insert_with(|| {
                let result = match medium.format() {
                    FrameFormat::Netstring | FrameFormat::PingProbe { .. } => {
                        datagram::encode(message, &self.keys, self.inner_auth)
                    }
                    FrameFormat::Classic => datagram::encode_classic(message, &self.keys),
                };
                result
                    .map_err(|error| {
                        tracing::error!(%error, format, "cannot encode outgoing message {message}");
                    })
                    .ok()
                    .map(Arc::from)
            });
            let Some(frame) = frame else {
                continue;
            };
            let Err(failure) = medium.send(frame) else {
                continue;
            };
            match &failure {
                SendFailure::Link(error) => {
                    tracing::debug!(link = %medium.link_name(), %error, "send failed");
                }
                SendFailure::QueueFull | SendFailure::BufferFull => {
                    tracing::warn!(link = %medium.link_name(), "link behind; frame dropped");
                }
            }
            *self.drops.entry(failure.reason().into()).or_default() += 1;
        }
    }

    fn publish(&mut self, kind: &str, subject: Option<&str>, text: String, warning: bool) {
        if warning {
            tracing::warn!("{text}");
        } else {
            tracing::info!("{text}");
        }
        self.event_seq += 1;
        let event = ApiEvent {
            seq: self.event_seq,
            unix_ms: unix_millis(),
            kind: kind.to_string(),
            node: subject.map(str::to_string),
            text,
            lost: 0,
        };
        // A client that stopped reading is signed off; its leave notice waits for the next
        // client request or delivery rather than re-entering the machines from here.
        let _ = self.clients.publish(&event);
        let _ = self.events.send(event);
    }

    /// A cluster client's sign-on, message or sign-off; its join/leave notice and its
    /// messages go out through membership, sequenced and retransmitted like every other.
    fn on_client_request(&mut self, request: ClientRequest) {
        let send = match request {
            ClientRequest::SignOn {
                client,
                credentials,
                deliveries,
                reply,
            } => match self.clients.sign_on(&client, &credentials, deliveries) {
                Ok((info, join)) => {
                    let _ = reply.send(Ok(info));
                    Some(join)
                }
                Err(refusal) => {
                    tracing::warn!(%client, uid = credentials.uid, gid = credentials.gid, "{refusal}");
                    let _ = reply.send(Err(refusal));
                    None
                }
            },
            ClientRequest::Send {
                session,
                to,
                message_type,
                fields,
                reply,
            } => {
                let message =
                    self.clients
                        .message_to_send(session, to.as_deref(), &message_type, &fields);
                let _ = reply.send(message.as_ref().map(|_| ()).map_err(Clone::clone));
                message.ok()
            }
            ClientRequest::SignOff { session } => self.clients.sign_off(session, "EOF"),
        };
        if let Some(message) = send {
            self.process(Step::Membership(Input::SendCluster(message)));
        }
    }

    fn count_drop(&mut self, reason: &str) {
        *self.drops.entry(reason.to_string()).or_default() += 1;
    }

    /// The drop counters with what each link dropped itself added in (summed over media
    /// of one kind; a counter still at zero is left out, as the core's own are).
    fn drops_with_links(&self) -> BTreeMap<String, u64> {
        let mut drops = self.drops.clone();
        for medium in &self.media {
            for (name, count) in medium.link_drops() {
                if count > 0 {
                    *drops.entry(name.to_string()).or_default() += count;
                }
            }
        }
        drops
    }

    fn status_report(&self) -> StatusReport {
        StatusReport {
            version: env!("CARGO_PKG_VERSION").to_string(),
            membership: self.membership.status(),
            failover: self.failover.status(),
            drops: self.drops_with_links(),
            parameters: self.parameters.clone(),
        }
    }

    /// Stops the media and the API. Disarms the watchdog unless a `failfast` death is the
    /// reason for stopping, which it reports.
    fn shutdown(mut self) -> Result<(), RuntimeError> {
        for medium in &mut self.media {
            medium.stop();
        }
        self.api_task.abort();
        let _ = std::fs::remove_file(&self.socket);
        match self.failfast.take() {
            None => {
                if let Some(watchdog) = self.watchdog.take() {
                    watchdog.close_cleanly();
                }
                Ok(())
            }
            Some((death, reboot)) => Err(RuntimeError::Failfast {
                command: death.command,
                exit: death.exit,
                reboot,
            }),
        }
    }
}

/// What the failover machine of node `node` needs from the configuration: every group with
/// its key, preferred node, configured order (empty for the default) and each resource's
/// monitoring, in configuration order, which is also the order of the resolved resources the
/// agent runner indexes. `rng_seed` must differ between runs (see
/// [`FailoverConfig::rng_seed`]).
fn failover_config(
    config: &ClusterConfig,
    node: &str,
    rng_seed: u64,
    fence_device: Option<String>,
) -> FailoverConfig {
    FailoverConfig {
        local_node: node.to_string(),
        nodes: config.nodes.clone(),
        groups: config
            .resource_groups
            .iter()
            .map(|group| GroupConfig {
                key: group.key().to_string(),
                preferred: group.node.clone(),
                order: group.order.clone(),
                resources: group
                    .resources
                    .iter()
                    .map(|resource| ResourceConfig {
                        name: resource.token.clone(),
                        monitor: resource.monitor.map(|monitor| MonitorConfig {
                            interval: monitor.interval,
                            restarts: monitor.restarts,
                        }),
                    })
                    .collect(),
            })
            .collect(),
        auto_failback: config.auto_failback,
        keepalive: config.timing.keepalive,
        deadtime: config.timing.deadtime,
        rng_seed,
        fence_device,
    }
}

/// Connectivity failover as configured: YAML's `connectivity_failover`, or a `respawn …
/// ipfail` line mapped onto it (ipfail itself is never run), with the dampening defaulting
/// to `deadping` and the count repeated every deadtime. `None` when neither asks for it.
fn connectivity_config(
    config: &ClusterConfig,
    ping_nodes: &[String],
) -> Option<ConnectivityConfig> {
    let setting = config.connectivity_failover.or_else(|| {
        config
            .clients
            .iter()
            .any(supervisor::is_ipfail)
            .then(ConnectivityFailover::default)
    })?;
    if ping_nodes.is_empty() {
        tracing::warn!(
            "connectivity failover is enabled but no ping or ping_group node is configured: \
             it has nothing to count"
        );
    }
    let dampening = setting.dampening.unwrap_or(config.timing.deadping);
    tracing::info!(
        ?dampening,
        "connectivity failover enabled (built-in, replaces Heartbeat's ipfail)"
    );
    Some(ConnectivityConfig {
        ping_nodes: ping_nodes.to_vec(),
        dampening,
        refresh: config.timing.deadtime,
    })
}

/// The signals the daemon reacts to.
struct Signals {
    sigterm: tokio::signal::unix::Signal,
    sigint: tokio::signal::unix::Signal,
    sighup: tokio::signal::unix::Signal,
}

/// When [`Core::serve`] returns besides on a signal.
#[derive(Debug, Clone, Copy)]
enum Until {
    /// Only on a signal.
    Signal,
    /// When failover has released every local group, or at the deadline.
    Released(tokio::time::Instant),
    /// At the deadline.
    Time(tokio::time::Instant),
}

/// Why [`Core::serve`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Signal,
    Released,
    Limit,
    /// A `failfast` program died and the node could not be rebooted.
    Failfast,
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The first line of `/proc/loadavg` for the `ld` field, read through a descriptor kept
/// open. procfs answers from memory and never waits on a disk, so the core reads it itself,
/// on a wake-up it has anyway (its timer), instead of keeping a thread for it.
struct LoadAverageReader {
    /// `None` when `/proc/loadavg` cannot be opened: `ld` then stays `n/a`.
    file: Option<std::fs::File>,
    /// When it was last read.
    last_read: Option<std::time::Instant>,
}

impl LoadAverageReader {
    fn open() -> Self {
        let file = match std::fs::File::open("/proc/loadavg") {
            Ok(file) => Some(file),
            Err(error) => {
                tracing::warn!(%error, "cannot open /proc/loadavg; `ld` stays n/a");
                None
            }
        };
        Self {
            file,
            last_read: None,
        }
    }

    /// The current line when [`LOAD_AVERAGE_PERIOD`] has passed since the last read (or on the
    /// first call), else `None`.
    fn read_if_due(&mut self, now: std::time::Instant) -> Option<String> {
        if self
            .last_read
            .is_some_and(|last| now.duration_since(last) < LOAD_AVERAGE_PERIOD)
        {
            return None;
        }
        self.last_read = Some(now);
        let file = self.file.as_ref()?;
        let mut buf = [0u8; 128];
        let len = std::os::unix::fs::FileExt::read_at(file, &mut buf, 0).ok()?;
        let text = std::str::from_utf8(buf.get(..len)?).ok()?;
        text.lines()
            .next()
            .filter(|line| !line.is_empty())
            .map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::AutoFailback;

    #[test]
    fn the_load_average_is_read_at_most_once_per_period() {
        let mut reader = LoadAverageReader::open();
        let start = std::time::Instant::now();
        let line = reader
            .read_if_due(start)
            .expect("the first read returns /proc/loadavg");
        assert_eq!(line.split_whitespace().count(), 5, "{line:?}");
        assert_eq!(reader.read_if_due(start + LOAD_AVERAGE_PERIOD / 2), None);
        assert!(reader.read_if_due(start + LOAD_AVERAGE_PERIOD).is_some());
    }

    #[test]
    fn the_failover_machine_gets_the_configured_order_and_monitors() {
        let config = crate::config::parse_yaml(
            "nodes: [alpha, bravo, charlie]\nmedia: [{bcast: eth0}]\nauth: {method: crc}\n\
             keepalive: 200ms\ndeadtime: 1s\nauto_failback: off\nresource_groups:\n  \
             - node: alpha\n    order: [alpha, charlie, bravo]\n    resources:\n      \
             - \"IPaddr::198.18.0.100/24/eth0\"\n      \
             - {token: \"Dummy::web\", timeout: 20s, monitor: {interval: 2s, restarts: 2}}\n  \
             - {node: bravo, resources: [\"Dummy::db\"]}\n",
            Path::new("cluster.yaml"),
            &crate::registry::builtin(),
        )
        .unwrap();
        let failover = failover_config(&config, "bravo", 7, None);
        assert_eq!(failover.local_node, "bravo");
        assert_eq!(failover.nodes, ["alpha", "bravo", "charlie"]);
        assert_eq!(failover.auto_failback, AutoFailback::Off);
        assert_eq!(failover.keepalive, Duration::from_millis(200));
        assert_eq!(failover.deadtime, Duration::from_secs(1));
        assert_eq!(failover.rng_seed, 7);
        assert_eq!(
            failover.groups,
            [
                GroupConfig {
                    key: "IPaddr::198.18.0.100/24/eth0".to_string(),
                    preferred: "alpha".to_string(),
                    order: vec!["alpha".into(), "charlie".into(), "bravo".into()],
                    resources: vec![
                        ResourceConfig {
                            name: "IPaddr::198.18.0.100/24/eth0".to_string(),
                            monitor: None,
                        },
                        ResourceConfig {
                            name: "Dummy::web".to_string(),
                            monitor: Some(MonitorConfig {
                                interval: Duration::from_secs(2),
                                restarts: 2,
                            }),
                        },
                    ],
                },
                GroupConfig {
                    key: "Dummy::db".to_string(),
                    preferred: "bravo".to_string(),
                    order: Vec::new(),
                    resources: vec![ResourceConfig {
                        name: "Dummy::db".to_string(),
                        monitor: None,
                    }],
                },
            ]
        );
    }
}
