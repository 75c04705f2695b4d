//! The local execution of one resource group: which agent operation comes next, and what
//! each result means.
//!
//! Owns the sequencing rules of spec §5.2 and the monitoring vigil adds: one operation per
//! group at a time; start left to right, stop right to left; a failed start stops what had
//! started (the failed resource included) so nothing stays half up; a failed stop is retried
//! `STOP_RETRIES` times a second apart (Heartbeat's `HA_STOPRETRYMAX`) and then reported for
//! good; a failed monitor restarts the resource in place (it and the resources after it,
//! which depend on it) up to its `restarts`, then asks for the group to move. It must not
//! decide ownership: the machine sets the goal (running or stopped) and reads the notes.

use std::time::Duration;

use vigil_plugin_api::{AgentAction, OcfStatus};

use super::status::LocalGroupState;
use super::{MonitorConfig, ResourceConfig};

/// Retries of a failed stop before it is given up (Heartbeat's `HA_STOPRETRYMAX`).
pub(super) const STOP_RETRIES: u32 = 10;
/// Delay between stop retries (Heartbeat sleeps 1 s).
const STOP_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest monitor interval, so that a zero in the configuration cannot spin.
const MIN_MONITOR_INTERVAL: Duration = Duration::from_millis(1);

/// What the machine asked of the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    Stopped,
    Running,
}

/// One resource's monitoring.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Monitor {
    config: Option<MonitorConfig>,
    /// When the next monitor is due (only while the resource is up).
    due: Option<Duration>,
    /// Monitor failures since the group was last acquired.
    failures: u32,
}

/// Something the machine must know after an operation result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Note {
    /// Every resource is up.
    Running,
    /// Everything is down and the group was meant to stop.
    Stopped,
    /// A start failed; the group is being stopped.
    StartFailed { resource: usize, status: OcfStatus },
    /// A stop failed; it is retried after a second.
    StopRetry {
        resource: usize,
        status: OcfStatus,
        attempt: u32,
    },
    /// A stop failed for good.
    StopFailed { resource: usize, status: OcfStatus },
    /// A monitor failed; the resource is restarted in place.
    MonitorRestart {
        resource: usize,
        status: OcfStatus,
        restart: u32,
    },
    /// A monitor failed and no restart is left: the group must move away.
    MonitorExhausted { resource: usize, status: OcfStatus },
    /// No such operation was running.
    Unexpected,
}

/// The local state of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GroupRunner {
    /// Number of resources.
    count: usize,
    /// Resources `0..up` are started.
    up: usize,
    goal: Goal,
    /// The operation the runtime is running for this group.
    pending: Option<(usize, AgentAction)>,
    /// Restart in place: bring `up` down to this first, then start back up.
    restart_from: Option<usize>,
    /// Failed attempts of the current stop.
    stop_attempts: u32,
    /// When a failed stop is retried.
    retry_at: Option<Duration>,
    /// A stop failed for good: nothing more is tried until `retry_stop`.
    stop_failed: bool,
    monitors: Vec<Monitor>,
}

impl GroupRunner {
    /// A stopped group of these resources.
    pub(super) fn new(resources: &[ResourceConfig]) -> Self {
        GroupRunner {
            count: resources.len(),
            up: 0,
            goal: Goal::Stopped,
            pending: None,
            restart_from: None,
            stop_attempts: 0,
            retry_at: None,
            stop_failed: false,
            monitors: resources
                .iter()
                .map(|r| Monitor {
                    config: r.monitor,
                    due: None,
                    failures: 0,
                })
                .collect(),
        }
    }

    /// Whether anything of the group may run here: it must be announced as held.
    pub(super) fn is_held(&self) -> bool {
        self.goal == Goal::Running || self.up > 0 || self.pending.is_some()
    }

    /// Whether it is meant to run (acquired and not being released).
    pub(super) fn wants_running(&self) -> bool {
        self.goal == Goal::Running
    }

    /// Whether a stop failed for good.
    pub(super) fn stop_failed(&self) -> bool {
        self.stop_failed
    }

    /// Whether it is fully up with nothing but monitors to do.
    pub(super) fn is_running(&self) -> bool {
        self.goal == Goal::Running && self.up == self.count && self.restart_from.is_none()
    }

    /// Whether a start or stop is under way (monitors and a given-up stop do not count).
    pub(super) fn in_transition(&self) -> bool {
        if self.stop_failed {
            return false;
        }
        match self.goal {
            Goal::Running => {
                !self.is_running()
                    || matches!(
                        self.pending,
                        Some((_, AgentAction::Start | AgentAction::Stop))
                    )
            }
            Goal::Stopped => self.up > 0 || self.pending.is_some(),
        }
    }

    /// The state `vigil status` shows (the machine reports `failed` for ineligible groups).
    pub(super) fn state(&self) -> LocalGroupState {
        if self.stop_failed {
            return LocalGroupState::Failed;
        }
        match self.goal {
            Goal::Running if self.is_running() => LocalGroupState::Running,
            Goal::Running => LocalGroupState::Starting,
            Goal::Stopped if self.is_held() => LocalGroupState::Stopping,
            Goal::Stopped => LocalGroupState::Stopped,
        }
    }

    /// Starts the group from scratch (the machine decided we own it).
    pub(super) fn acquire(&mut self) {
        self.goal = Goal::Running;
        self.stop_attempts = 0;
        self.retry_at = None;
        for monitor in &mut self.monitors {
            monitor.failures = 0;
        }
    }

    /// Stops the group (right to left, once the running operation is done).
    pub(super) fn release(&mut self) {
        self.goal = Goal::Stopped;
        self.restart_from = None;
    }

    /// After a stop failed for good: try stopping again, with fresh retries.
    pub(super) fn retry_stop(&mut self) {
        if self.stop_failed {
            self.stop_failed = false;
            self.stop_attempts = 0;
            self.retry_at = None;
            self.goal = Goal::Stopped;
            self.restart_from = None;
        }
    }

    /// The operation to run now, if any; it becomes the pending one.
    pub(super) fn next_operation(&mut self, now: Duration) -> Option<(usize, AgentAction)> {
        if self.pending.is_some() || self.stop_failed {
            return None;
        }
        if let Some(at) = self.retry_at {
            if now < at {
                return None;
            }
            self.retry_at = None;
        }
        let operation = match (self.goal, self.restart_from) {
            (Goal::Running, Some(floor)) if self.up > floor => {
                Some((self.up - 1, AgentAction::Stop))
            }
            (Goal::Running, _) if self.up < self.count => {
                self.restart_from = None;
                Some((self.up, AgentAction::Start))
            }
            (Goal::Running, _) => {
                self.restart_from = None;
                self.monitors
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| m.due.filter(|due| *due <= now).map(|due| (due, i)))
                    .min()
                    .map(|(_, i)| (i, AgentAction::Monitor))
            }
            (Goal::Stopped, _) if self.up > 0 => Some((self.up - 1, AgentAction::Stop)),
            (Goal::Stopped, _) => None,
        };
        self.pending = operation;
        operation
    }

    /// Records an operation result and says what it means.
    pub(super) fn complete(
        &mut self,
        resource: usize,
        action: AgentAction,
        status: OcfStatus,
        now: Duration,
    ) -> Vec<Note> {
        if self.pending != Some((resource, action)) {
            return vec![Note::Unexpected];
        }
        self.pending = None;
        let success = status == OcfStatus::Success;
        let mut notes = Vec::new();
        match action {
            AgentAction::Start => {
                self.up = resource + 1;
                if success {
                    if let Some(monitor) = self.monitors.get_mut(resource) {
                        monitor.due = monitor
                            .config
                            .map(|c| now + c.interval.max(MIN_MONITOR_INTERVAL));
                    }
                    if self.is_running() {
                        notes.push(Note::Running);
                    }
                } else if self.goal == Goal::Running {
                    self.goal = Goal::Stopped;
                    self.restart_from = None;
                    notes.push(Note::StartFailed { resource, status });
                }
            }
            AgentAction::Stop => {
                if success {
                    self.up = resource;
                    self.stop_attempts = 0;
                    if let Some(monitor) = self.monitors.get_mut(resource) {
                        monitor.due = None;
                    }
                    if self.goal == Goal::Stopped && self.up == 0 {
                        notes.push(Note::Stopped);
                    }
                } else {
                    self.stop_attempts += 1;
                    if self.stop_attempts <= STOP_RETRIES {
                        self.retry_at = Some(now + STOP_RETRY_INTERVAL);
                        notes.push(Note::StopRetry {
                            resource,
                            status,
                            attempt: self.stop_attempts,
                        });
                    } else {
                        self.stop_failed = true;
                        notes.push(Note::StopFailed { resource, status });
                    }
                }
            }
            AgentAction::Monitor => {
                let running = self.is_running();
                let Some(monitor) = self.monitors.get_mut(resource) else {
                    return vec![Note::Unexpected];
                };
                if success {
                    monitor.due = monitor
                        .config
                        .map(|c| now + c.interval.max(MIN_MONITOR_INTERVAL));
                } else if running {
                    monitor.failures += 1;
                    let restarts = monitor.config.map_or(0, |c| c.restarts);
                    let failures = monitor.failures;
                    for later in self.monitors.iter_mut().skip(resource) {
                        later.due = None;
                    }
                    if failures <= restarts {
                        self.restart_from = Some(resource);
                        notes.push(Note::MonitorRestart {
                            resource,
                            status,
                            restart: failures,
                        });
                    } else {
                        notes.push(Note::MonitorExhausted { resource, status });
                    }
                }
            }
            AgentAction::Validate => notes.push(Note::Unexpected),
        }
        notes
    }

    /// When this group next needs the machine's attention without any input.
    pub(super) fn next_deadline(&self) -> Option<Duration> {
        if self.pending.is_some() || self.stop_failed {
            return None;
        }
        if self.retry_at.is_some() {
            return self.retry_at;
        }
        if self.is_running() {
            return self.monitors.iter().filter_map(|m| m.due).min();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    fn resources(monitored: &[Option<(u64, u32)>]) -> Vec<ResourceConfig> {
        monitored
            .iter()
            .enumerate()
            .map(|(i, m)| ResourceConfig {
                name: format!("r{i}"),
                monitor: m.map(|(interval, restarts)| MonitorConfig {
                    interval: ms(interval),
                    restarts,
                }),
            })
            .collect()
    }

    fn run(
        runner: &mut GroupRunner,
        now: u64,
        status: OcfStatus,
    ) -> (usize, AgentAction, Vec<Note>) {
        let (resource, action) = runner.next_operation(ms(now)).expect("an operation is due");
        let notes = runner.complete(resource, action, status, ms(now));
        (resource, action, notes)
    }

    #[test]
    fn start_goes_left_to_right_and_stop_right_to_left() {
        let mut runner = GroupRunner::new(&resources(&[None, None, None]));
        runner.acquire();
        let starts: Vec<usize> = (0..3)
            .map(|_| run(&mut runner, 0, OcfStatus::Success).0)
            .collect();
        assert_eq!(starts, [0, 1, 2]);
        assert!(runner.is_running());
        runner.release();
        let mut stops = Vec::new();
        while let Some((resource, action)) = runner.next_operation(ms(1)) {
            assert_eq!(action, AgentAction::Stop);
            let notes = runner.complete(resource, action, OcfStatus::Success, ms(1));
            stops.push(resource);
            if stops.len() == 3 {
                assert_eq!(notes, [Note::Stopped]);
            }
        }
        assert_eq!(stops, [2, 1, 0]);
        assert!(!runner.is_held());
    }

    #[test]
    fn only_one_operation_runs_at_a_time() {
        let mut runner = GroupRunner::new(&resources(&[None, None]));
        runner.acquire();
        assert!(runner.next_operation(ms(0)).is_some());
        assert_eq!(runner.next_operation(ms(0)), None);
    }

    #[test]
    fn failed_start_stops_what_started_in_reverse_including_the_failed_one() {
        let mut runner = GroupRunner::new(&resources(&[None, None, None]));
        runner.acquire();
        run(&mut runner, 0, OcfStatus::Success);
        let (_, _, notes) = run(&mut runner, 0, OcfStatus::ErrGeneric);
        assert_eq!(
            notes,
            [Note::StartFailed {
                resource: 1,
                status: OcfStatus::ErrGeneric
            }]
        );
        let stops: Vec<usize> = (0..2)
            .map(|_| run(&mut runner, 0, OcfStatus::Success).0)
            .collect();
        assert_eq!(stops, [1, 0]);
        assert!(!runner.is_held(), "nothing is left half up");
    }

    #[test]
    fn failed_stop_is_retried_a_second_apart_then_given_up() {
        let mut runner = GroupRunner::new(&resources(&[None]));
        runner.acquire();
        run(&mut runner, 0, OcfStatus::Success);
        runner.release();
        let mut now = 0;
        for attempt in 1..=STOP_RETRIES {
            let (_, _, notes) = run(&mut runner, now, OcfStatus::ErrGeneric);
            assert!(matches!(notes[..], [Note::StopRetry { attempt: a, .. }] if a == attempt));
            assert_eq!(
                runner.next_operation(ms(now + 999)),
                None,
                "not before a second"
            );
            assert_eq!(runner.next_deadline(), Some(ms(now + 1000)));
            now += 1000;
        }
        let (_, _, notes) = run(&mut runner, now, OcfStatus::ErrGeneric);
        assert!(matches!(notes[..], [Note::StopFailed { .. }]));
        assert!(
            runner.is_held(),
            "a resource that would not stop is still ours"
        );
        assert_eq!(runner.next_operation(ms(now + 5000)), None);
        assert_eq!(runner.state(), LocalGroupState::Failed);
        runner.retry_stop();
        assert_eq!(runner.next_operation(ms(now)), Some((0, AgentAction::Stop)));
    }

    #[test]
    fn monitor_failure_restarts_the_resource_and_its_dependents_in_place() {
        let mut runner = GroupRunner::new(&resources(&[None, Some((100, 1)), None]));
        runner.acquire();
        for _ in 0..3 {
            run(&mut runner, 0, OcfStatus::Success);
        }
        assert_eq!(runner.next_deadline(), Some(ms(100)));
        assert_eq!(runner.next_operation(ms(99)), None);
        let (resource, action, notes) = run(&mut runner, 100, OcfStatus::NotRunning);
        assert_eq!((resource, action), (1, AgentAction::Monitor));
        assert!(matches!(
            notes[..],
            [Note::MonitorRestart { restart: 1, .. }]
        ));
        let steps: Vec<(usize, AgentAction)> = (0..4)
            .map(|_| {
                let (r, a, _) = run(&mut runner, 100, OcfStatus::Success);
                (r, a)
            })
            .collect();
        assert_eq!(
            steps,
            [
                (2, AgentAction::Stop),
                (1, AgentAction::Stop),
                (1, AgentAction::Start),
                (2, AgentAction::Start)
            ]
        );
        assert!(runner.is_running());
        let (_, _, notes) = run(&mut runner, 200, OcfStatus::ErrGeneric);
        assert!(
            matches!(notes[..], [Note::MonitorExhausted { resource: 1, .. }]),
            "the second failure exceeds one restart: {notes:?}"
        );
    }

    #[test]
    fn results_nobody_waits_for_are_unexpected() {
        let mut runner = GroupRunner::new(&resources(&[None]));
        assert_eq!(
            runner.complete(0, AgentAction::Start, OcfStatus::Success, ms(0)),
            [Note::Unexpected]
        );
    }
}
