//! `respawn` and `failfast` programs (spec §3.2): started as their user once
//! communications are up, restarted when they exit, stopped at shutdown.
//!
//! ```text
//!   core ──start_all (comm up) / restart_due (timer)──> fork+exec: /bin/sh -c "exec CMD"
//!                                                       (own process group, as USER)
//!   reaper thread per child ── wait() ──ChildDeath──> core ──> RestartPolicy::on_death
//!                                                              restart · give up · reboot
//! ```
//!
//! Owns the programs' processes and their restart bookkeeping. The restart rule itself is
//! [`RestartPolicy`], a pure function of deaths and times so it can be tested without a
//! process. The core is never made to wait on a child: a child is waited for by a reaper
//! thread of its own, which reports its death as a message; only the final stop at shutdown
//! waits, with a bounded grace, after the event loop is done. It holds no protocol logic and
//! must not decide anything about membership or resources: a `failfast` death is reported
//! back to the core, which reboots the node.
//!
//! Heartbeat's rules, kept: a program that exits 100 is not restarted; a death within 30 s
//! of its start is "quick", and after more than 10 quick deaths in a row the program is
//! given up (`Client CMD "respawning too fast"`); a restart after a quick death waits 1 s.
//! A `failfast` program that is killed by a signal or exits non-zero reboots the node.
//! Differences: `ipfail` is not run (its line enables vigil's built-in connectivity
//! failover instead, which does what ipfail did), and a
//! `failfast` program that dies during vigil's own shutdown does not reboot the node.

use std::ffi::CString;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::config::ClientProgram;

/// A death sooner than this after the start is a quick death (Heartbeat's 30 s).
pub const QUICK_DEATH: Duration = Duration::from_secs(30);
/// More quick deaths in a row than this and the program is given up (Heartbeat's 10).
pub const MAX_QUICK_DEATHS: u32 = 10;
/// How long a restart after a quick death waits, so a failing program cannot spin.
pub const QUICK_RESTART_DELAY: Duration = Duration::from_secs(1);
/// The exit code with which a program asks not to be restarted.
pub const EXIT_NO_RESTART: i32 = 100;
/// How long programs get to stop after SIGTERM at shutdown before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The program Heartbeat's `respawn` lines usually name; it needs Heartbeat's client API.
const IPFAIL: &str = "ipfail";

/// A configured program cannot be run on this node; the daemon refuses to start.
#[derive(Debug, Error)]
pub enum SupervisorError {
    /// The user vanished since the configuration was read, or the lookup failed.
    #[error("{origin}: {directive}: cannot look up user `{user}`: {reason}")]
    User {
        /// Where the program is configured.
        origin: String,
        /// `respawn` or `failfast`.
        directive: &'static str,
        /// The user name.
        user: String,
        /// What went wrong.
        reason: String,
    },
    /// Heartbeat refuses to start when a client command cannot be executed; so does vigil.
    #[error(
        "{origin}: {directive}: client child command {path} is not executable (expected an \
         executable program at that path)"
    )]
    NotExecutable {
        /// Where the program is configured.
        origin: String,
        /// `respawn` or `failfast`.
        directive: &'static str,
        /// The command's path.
        path: String,
    },
}

/// How a program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit code {code}"),
            Exit::Signal(signal) => write!(f, "signal {signal}"),
        }
    }
}

/// What follows a program's death.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Start it again after this delay.
    Restart {
        /// Zero after a death that was not quick.
        after: Duration,
    },
    /// It exited 100: leave it stopped.
    Finished,
    /// Too many quick deaths in a row: leave it stopped.
    GiveUp,
    /// A `failfast` program died abnormally: the node must reboot.
    Reboot,
    /// The daemon is stopping: leave it stopped.
    Stopped,
}

/// Heartbeat's restart rule for one program: counts quick deaths in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Whether an abnormal death reboots the node.
    failfast: bool,
    /// Quick deaths since the last death that was not quick.
    quick_deaths: u32,
}

impl RestartPolicy {
    /// The rule for a `respawn` program, or a `failfast` one when `failfast`.
    pub fn new(failfast: bool) -> Self {
        Self {
            failfast,
            quick_deaths: 0,
        }
    }

    /// Decides what follows a death by `exit` after the program ran for `lived`;
    /// `shutting_down` when the daemon itself is stopping.
    pub fn on_death(&mut self, exit: Exit, lived: Duration, shutting_down: bool) -> Verdict {
        if shutting_down {
            return Verdict::Stopped;
        }
        if self.failfast && exit != Exit::Code(0) {
            return Verdict::Reboot;
        }
        if exit == Exit::Code(EXIT_NO_RESTART) {
            return Verdict::Finished;
        }
        if lived < QUICK_DEATH {
            self.quick_deaths += 1;
        } else {
            self.quick_deaths = 0;
        }
        if self.quick_deaths > MAX_QUICK_DEATHS {
            self.quick_deaths = 0;
            return Verdict::GiveUp;
        }
        let after = if self.quick_deaths > 0 {
            QUICK_RESTART_DELAY
        } else {
            Duration::ZERO
        };
        Verdict::Restart { after }
    }
}

/// A child's death, reported by its reaper thread.
#[derive(Debug, Clone, Copy)]
pub struct ChildDeath {
    /// Which program (its index in the configuration).
    pub index: usize,
    /// The process that died.
    pub pid: u32,
    /// How.
    pub exit: Exit,
}

/// The identity a program runs with: its user's uid, primary gid and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: Vec<libc::gid_t>,
}

impl RunAs {
    /// Looks `user` up in the password and group databases; `Ok(None)` if unknown.
    pub fn lookup(user: &str) -> std::io::Result<Option<RunAs>> {
        let name = CString::new(user).map_err(std::io::Error::other)?;
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
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        if found.is_null() {
            return Ok(None);
        }
        // SAFETY: getpwnam_r succeeded and `found` points at `entry`, now initialised.
        let (uid, gid) = unsafe { ((*found).pw_uid, (*found).pw_gid) };
        let mut groups: Vec<libc::gid_t> = vec![0; 64];
        loop {
            let mut count = libc::c_int::try_from(groups.len()).unwrap_or(libc::c_int::MAX);
            // SAFETY: the name is NUL-terminated, `groups` has room for `count` entries and
            // getgrouplist writes at most that many, updating `count`.
            let rc =
                unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
            let count = usize::try_from(count).unwrap_or(0);
            if rc >= 0 {
                groups.truncate(count);
                break;
            }
            if groups.len() >= 65_536 {
                return Err(std::io::Error::other("too many supplementary groups"));
            }
            groups.resize(count.max(groups.len() * 2), 0);
        }
        Ok(Some(RunAs { uid, gid, groups }))
    }
}

/// One configured program and where it is in its life.
#[derive(Debug)]
struct Supervised {
    program: ClientProgram,
    /// Its identity; `None` for a program vigil does not run (ipfail).
    run_as: Option<RunAs>,
    policy: RestartPolicy,
    state: ProgramState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProgramState {
    /// Not started yet (communications are not up).
    Idle,
    /// Running as this process, started then.
    Running { pid: u32, started: Instant },
    /// Waiting to be started again.
    Waiting { until: Instant },
    /// Not running and not to be started again.
    Stopped,
}

/// Runs the configured `respawn` and `failfast` programs.
pub struct Supervisor {
    programs: Vec<Supervised>,
    /// Where reaper threads report deaths; the core holds the receiving end.
    deaths: UnboundedSender<ChildDeath>,
    /// Set when communications came up and the programs were started.
    started: bool,
    /// Set when the daemon is stopping: nothing is restarted any more.
    shutting_down: bool,
}

/// A `failfast` program died abnormally: the node must reboot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailfastDeath {
    /// The program's command line.
    pub command: String,
    /// How it died.
    pub exit: Exit,
}

impl Supervisor {
    /// Checks every program can be run here (its user exists, its path is executable) and
    /// prepares them; nothing starts before [`Supervisor::start_all`]. Deaths are reported
    /// to `deaths`.
    pub fn new(
        programs: &[ClientProgram],
        deaths: UnboundedSender<ChildDeath>,
    ) -> Result<Self, SupervisorError> {
        let mut supervised = Vec::with_capacity(programs.len());
        for program in programs {
            let run_as = if is_ipfail(program) {
                None
            } else {
                let user_error = |reason: String| SupervisorError::User {
                    origin: program.origin.clone(),
                    directive: program.directive(),
                    user: program.user.clone(),
                    reason,
                };
                let run_as = RunAs::lookup(&program.user)
                    .map_err(|error| user_error(error.to_string()))?
                    .ok_or_else(|| user_error("no such user".to_string()))?;
                if !is_executable(Path::new(program.path())) {
                    return Err(SupervisorError::NotExecutable {
                        origin: program.origin.clone(),
                        directive: program.directive(),
                        path: program.path().to_string(),
                    });
                }
                Some(run_as)
            };
            supervised.push(Supervised {
                program: program.clone(),
                run_as,
                policy: RestartPolicy::new(program.failfast),
                state: ProgramState::Idle,
            });
        }
        Ok(Self {
            programs: supervised,
            deaths,
            started: false,
            shutting_down: false,
        })
    }

    /// Starts every program in configuration order: called when communications come up,
    /// as Heartbeat does. Later calls do nothing.
    pub fn start_all(&mut self) {
        if self.started || self.shutting_down {
            return;
        }
        self.started = true;
        for index in 0..self.programs.len() {
            let entry = &mut self.programs[index];
            if entry.run_as.is_none() {
                tracing::warn!(
                    origin = %entry.program.origin,
                    "not starting {} `{}`: ipfail needs Heartbeat's client API, which vigil \
                     does not provide yet; vigil's built-in connectivity failover replaces \
                     ipfail and is enabled by this line (YAML: `connectivity_failover`)",
                    entry.program.directive(),
                    entry.program.command
                );
                entry.state = ProgramState::Stopped;
                continue;
            }
            self.spawn(index);
        }
    }

    /// When the next delayed restart is due, if any.
    pub fn next_restart(&self) -> Option<Instant> {
        self.programs
            .iter()
            .filter_map(|entry| match entry.state {
                ProgramState::Waiting { until } => Some(until),
                _ => None,
            })
            .min()
    }

    /// Starts every program whose restart is due at `now`.
    pub fn restart_due(&mut self, now: Instant) {
        for index in 0..self.programs.len() {
            if matches!(self.programs[index].state, ProgramState::Waiting { until } if until <= now)
            {
                self.spawn(index);
            }
        }
    }

    /// Handles a death reported by a reaper thread: restarts the program, leaves it
    /// stopped, or asks for a reboot (the returned value) when a `failfast` program died.
    pub fn on_death(&mut self, death: ChildDeath, now: Instant) -> Option<FailfastDeath> {
        let shutting_down = self.shutting_down;
        let entry = self.programs.get_mut(death.index)?;
        let started = match entry.state {
            ProgramState::Running { pid, started } if pid == death.pid => started,
            _ => return None,
        };
        let command = entry.program.command.clone();
        match death.exit {
            Exit::Code(0) => {
                tracing::info!(
                    pid = death.pid,
                    "Client {command} exited with return code 0."
                )
            }
            Exit::Code(code) if shutting_down => {
                tracing::debug!(
                    pid = death.pid,
                    "Client {command} exited with return code {code}."
                )
            }
            Exit::Code(code) => {
                tracing::error!(
                    pid = death.pid,
                    "Client {command} exited with return code {code}."
                )
            }
            Exit::Signal(signal) if shutting_down => tracing::debug!(
                "Client {command} (pid={}) killed by signal {signal}.",
                death.pid
            ),
            Exit::Signal(signal) => tracing::error!(
                "Client {command} (pid={}) killed by signal {signal}.",
                death.pid
            ),
        }
        let lived = now.saturating_duration_since(started);
        match entry.policy.on_death(death.exit, lived, shutting_down) {
            Verdict::Restart { after } => {
                tracing::warn!("Respawning client \"{command}\":");
                entry.state = ProgramState::Waiting { until: now + after };
                if after.is_zero() {
                    self.spawn(death.index);
                }
                None
            }
            Verdict::Finished => {
                tracing::info!(
                    "client \"{command}\" exited with code {EXIT_NO_RESTART}: not restarted"
                );
                entry.state = ProgramState::Stopped;
                None
            }
            Verdict::GiveUp => {
                tracing::error!(
                    quick_deaths = MAX_QUICK_DEATHS + 1,
                    "Client {command} \"respawning too fast\": it died {} times in a row within \
                     {}s of starting; not restarting it again",
                    MAX_QUICK_DEATHS + 1,
                    QUICK_DEATH.as_secs()
                );
                entry.state = ProgramState::Stopped;
                None
            }
            Verdict::Stopped => {
                entry.state = ProgramState::Stopped;
                None
            }
            Verdict::Reboot => {
                entry.state = ProgramState::Stopped;
                Some(FailfastDeath {
                    command,
                    exit: death.exit,
                })
            }
        }
    }

    /// The daemon is stopping: nothing is started or restarted from now on.
    pub fn begin_shutdown(&mut self) {
        self.shutting_down = true;
        for entry in &mut self.programs {
            if matches!(
                entry.state,
                ProgramState::Waiting { .. } | ProgramState::Idle
            ) {
                entry.state = ProgramState::Stopped;
            }
        }
    }

    /// Stops every running program, last started first: SIGTERM to its process group, and
    /// SIGKILL to what is left after [`STOP_GRACE`]. Returns when every child is reaped (or,
    /// should a reaper never report, shortly after the SIGKILL).
    pub async fn stop_all(&mut self, deaths: &mut UnboundedReceiver<ChildDeath>) {
        self.begin_shutdown();
        for entry in self.programs.iter().rev() {
            if let ProgramState::Running { pid, .. } = entry.state {
                tracing::info!("stopping client \"{}\" (pid {pid})", entry.program.command);
                signal_group(pid, libc::SIGTERM);
            }
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        if !self.reap_until(deaths, deadline).await {
            for entry in self.programs.iter().rev() {
                if let ProgramState::Running { pid, .. } = entry.state {
                    tracing::warn!(
                        "client \"{}\" (pid {pid}) did not stop within {}s of SIGTERM; killing it",
                        entry.program.command,
                        STOP_GRACE.as_secs()
                    );
                    signal_group(pid, libc::SIGKILL);
                }
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            self.reap_until(deaths, deadline).await;
        }
    }

    /// Takes deaths until no program runs (true) or `deadline` passes (false).
    async fn reap_until(
        &mut self,
        deaths: &mut UnboundedReceiver<ChildDeath>,
        deadline: tokio::time::Instant,
    ) -> bool {
        while self.any_running() {
            match tokio::time::timeout_at(deadline, deaths.recv()).await {
                Ok(Some(death)) => {
                    self.on_death(death, Instant::now());
                }
                Ok(None) | Err(_) => return false,
            }
        }
        true
    }

    fn any_running(&self) -> bool {
        self.programs
            .iter()
            .any(|entry| matches!(entry.state, ProgramState::Running { .. }))
    }

    /// Starts program `index` and a reaper thread for it. A program that cannot be started
    /// is left stopped, as Heartbeat leaves a client it cannot exec.
    fn spawn(&mut self, index: usize) {
        let entry = &mut self.programs[index];
        let Some(run_as) = entry.run_as.clone() else {
            entry.state = ProgramState::Stopped;
            return;
        };
        let command_line = entry.program.command.clone();
        if !is_executable(Path::new(entry.program.path())) {
            tracing::error!(origin = %entry.program.origin, "Cannot exec {command_line}: not executable; not restarting it");
            entry.state = ProgramState::Stopped;
            return;
        }
        tracing::info!(
            "Starting child client \"{command_line}\" ({},{})",
            run_as.uid,
            run_as.gid
        );
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(format!("exec {command_line}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        // Unprivileged, vigil can only run programs as itself; it then keeps its identity
        // (changing groups would need privileges it does not have).
        if euid == 0 || euid != run_as.uid {
            let RunAs { uid, gid, groups } = run_as.clone();
            // SAFETY: the closure runs in the forked child before exec and only makes
            // async-signal-safe system calls on memory prepared before the fork.
            unsafe {
                command.pre_exec(move || {
                    if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                tracing::error!(origin = %entry.program.origin, %error, "Cannot setup child process {command_line} as user {}; not restarting it", entry.program.user);
                entry.state = ProgramState::Stopped;
                return;
            }
        };
        let pid = child.id();
        tracing::info!(
            "Starting \"{command_line}\" as uid {}  gid {} (pid {pid})",
            run_as.uid,
            run_as.gid
        );
        entry.state = ProgramState::Running {
            pid,
            started: Instant::now(),
        };
        let deaths = self.deaths.clone();
        let reaper = thread::Builder::new()
            .name("client-reaper".into())
            .spawn(move || {
                let exit = match child.wait() {
                    Ok(status) => match (status.code(), status.signal()) {
                        (Some(code), _) => Exit::Code(code),
                        (None, Some(signal)) => Exit::Signal(signal),
                        (None, None) => Exit::Code(-1),
                    },
                    Err(_) => Exit::Code(-1),
                };
                let _ = deaths.send(ChildDeath { index, pid, exit });
            });
        if let Err(error) = reaper {
            // Without a reaper the death is never seen; stop the child rather than lose it.
            tracing::error!(%error, "cannot start a reaper thread for \"{command_line}\"; stopping it");
            signal_group(pid, libc::SIGKILL);
            self.programs[index].state = ProgramState::Stopped;
        }
    }
}

/// Reboots the node at once because a `failfast` program died, as Heartbeat's `cl_reboot`.
/// Returns only if the reboot was refused (no CAP_SYS_BOOT), with the reason.
pub fn reboot_node(death: &FailfastDeath) -> std::io::Error {
    tracing::error!(
        "Rebooting system.  Reason: failfast client {} died ({})",
        death.command,
        death.exit
    );
    // SAFETY: sync and reboot take no pointers; reboot returns only on failure.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_AUTOBOOT);
    }
    std::io::Error::last_os_error()
}

/// Whether `program` is Heartbeat's ipfail, which vigil does not run: its line enables the
/// built-in connectivity failover instead (see the runtime core).
pub(crate) fn is_ipfail(program: &ClientProgram) -> bool {
    Path::new(program.path())
        .file_name()
        .is_some_and(|name| name == IPFAIL)
}

/// Whether `path` names an executable file, as Heartbeat's `access(X_OK)` check.
fn is_executable(path: &Path) -> bool {
    let Ok(path) = CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: the path is NUL-terminated and outlives the call.
    unsafe { libc::access(path.as_ptr(), libc::X_OK) == 0 }
}

/// Sends `signal` to the process group of `pid` (each program leads its own group).
fn signal_group(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: killpg takes no pointers; a stale group only yields ESRCH.
        unsafe {
            libc::killpg(pid, signal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Duration = Duration::from_secs(1);
    const SLOW: Duration = Duration::from_secs(31);

    #[test]
    fn a_program_that_exits_is_restarted_at_once_after_a_long_life() {
        let mut policy = RestartPolicy::new(false);
        assert_eq!(
            policy.on_death(Exit::Code(1), SLOW, false),
            Verdict::Restart {
                after: Duration::ZERO
            }
        );
        assert_eq!(
            policy.on_death(Exit::Signal(libc::SIGKILL), SLOW, false),
            Verdict::Restart {
                after: Duration::ZERO
            }
        );
    }

    #[test]
    fn exit_100_is_never_restarted_even_when_quick() {
        let mut policy = RestartPolicy::new(false);
        assert_eq!(
            policy.on_death(Exit::Code(100), QUICK, false),
            Verdict::Finished
        );
        assert_eq!(
            policy.on_death(Exit::Code(100), SLOW, false),
            Verdict::Finished
        );
    }

    #[test]
    fn the_eleventh_quick_death_in_a_row_gives_up() {
        let mut policy = RestartPolicy::new(false);
        for death in 1..=MAX_QUICK_DEATHS {
            assert_eq!(
                policy.on_death(Exit::Code(1), QUICK, false),
                Verdict::Restart {
                    after: QUICK_RESTART_DELAY
                },
                "death {death}"
            );
        }
        assert_eq!(
            policy.on_death(Exit::Code(1), QUICK, false),
            Verdict::GiveUp
        );
    }

    #[test]
    fn a_long_life_resets_the_count_of_quick_deaths() {
        let mut policy = RestartPolicy::new(false);
        for _ in 0..MAX_QUICK_DEATHS {
            policy.on_death(Exit::Code(1), QUICK, false);
        }
        assert_eq!(
            policy.on_death(Exit::Code(1), SLOW, false),
            Verdict::Restart {
                after: Duration::ZERO
            }
        );
        for _ in 0..MAX_QUICK_DEATHS {
            assert_ne!(
                policy.on_death(Exit::Code(1), QUICK, false),
                Verdict::GiveUp
            );
        }
        assert_eq!(
            policy.on_death(Exit::Code(1), QUICK, false),
            Verdict::GiveUp
        );
    }

    #[test]
    fn a_death_just_under_thirty_seconds_is_quick_and_at_thirty_is_not() {
        let mut policy = RestartPolicy::new(false);
        assert_eq!(
            policy.on_death(Exit::Code(0), QUICK_DEATH - Duration::from_millis(1), false),
            Verdict::Restart {
                after: QUICK_RESTART_DELAY
            }
        );
        assert_eq!(
            policy.on_death(Exit::Code(0), QUICK_DEATH, false),
            Verdict::Restart {
                after: Duration::ZERO
            }
        );
    }

    #[test]
    fn a_failfast_program_reboots_on_an_abnormal_death_only() {
        let mut policy = RestartPolicy::new(true);
        assert_eq!(
            policy.on_death(Exit::Code(0), SLOW, false),
            Verdict::Restart {
                after: Duration::ZERO
            }
        );
        assert_eq!(policy.on_death(Exit::Code(3), SLOW, false), Verdict::Reboot);
        assert_eq!(
            policy.on_death(Exit::Code(100), SLOW, false),
            Verdict::Reboot
        );
        assert_eq!(
            policy.on_death(Exit::Signal(libc::SIGSEGV), SLOW, false),
            Verdict::Reboot
        );
    }

    #[test]
    fn nothing_is_restarted_or_rebooted_while_the_daemon_stops() {
        for failfast in [false, true] {
            let mut policy = RestartPolicy::new(failfast);
            assert_eq!(
                policy.on_death(Exit::Signal(libc::SIGTERM), QUICK, true),
                Verdict::Stopped
            );
            assert_eq!(policy.on_death(Exit::Code(1), SLOW, true), Verdict::Stopped);
        }
    }

    #[test]
    fn users_resolve_to_their_ids_and_groups() {
        let root = RunAs::lookup("root").unwrap().expect("root exists");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.groups.contains(&0), "{root:?}");
        assert_eq!(RunAs::lookup("no-such-user-vigil").unwrap(), None);
    }

    #[test]
    fn ipfail_is_recognised_by_its_file_name() {
        let program = |command: &str| ClientProgram {
            user: "root".into(),
            command: command.into(),
            failfast: false,
            origin: "ha.cf:1".into(),
        };
        assert!(is_ipfail(&program("/usr/lib/heartbeat/ipfail")));
        assert!(is_ipfail(&program("/usr/libexec/heartbeat/ipfail -d")));
        assert!(!is_ipfail(&program("/usr/local/bin/ipfailover")));
    }

    #[test]
    fn a_program_that_is_not_executable_is_refused_at_start_naming_its_line() {
        let (deaths, _) = tokio::sync::mpsc::unbounded_channel();
        let programs = [ClientProgram {
            user: "root".into(),
            command: "/nonexistent/vigil-client --flag".into(),
            failfast: true,
            origin: "ha.cf:7".into(),
        }];
        let error = Supervisor::new(&programs, deaths).err().expect("refused");
        assert_eq!(
            error.to_string(),
            "ha.cf:7: failfast: client child command /nonexistent/vigil-client is not \
             executable (expected an executable program at that path)"
        );
    }
}
