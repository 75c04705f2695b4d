//! The one process runner: every script-based agent (resource.d, init.d, OCF) and the
//! host's `Host::run_command` start programs through [`run`] and nothing else.
//!
//! A program runs in a session and process group of its own, with stdin on `/dev/null`,
//! stdout and stderr captured up to a bound, every other descriptor closed at exec, the
//! default signal dispositions and an empty signal mask. [`run`] never returns before the
//! program is reaped, and never later than its deadline plus the bounded clean-up below:
//!
//! - At the deadline the whole group gets SIGTERM (and SIGCONT, so that stopped members can
//!   act on it); after [`TERM_GRACE`] it gets SIGKILL, whether or not the main process went
//!   already, so nothing of the group is left behind. The outcome is [`ProcessExit::TimedOut`].
//! - When the main process exits on its own but something it left in the background still
//!   holds the output pipes (`sleep 1000 &`), [`run`] waits [`STRAY_LINGER`] for the pipes to
//!   close and then SIGKILLs the rest of the group: such strays are part of the operation.
//!   A background process that let go of the pipes (a daemon an init script started with its
//!   output redirected, as init scripts do) is left running: it is the service being started.
//!
//! The group is signalled only while its leader is unreaped: a zombie leader keeps its
//! process-group id allocated, so the signal cannot reach an unrelated group that reused it.
//!
//! This module knows nothing of agents beyond [`operation_exit_code`], the one place where a
//! process that could not start, timed out or died of a signal becomes a failed operation.
//! It must not interpret exit codes or output: the adapters do.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;
use vigil_plugin_api::{OcfStatus, OperationOutcome};

/// How long the group has between SIGTERM and SIGKILL once an operation timed out: long
/// enough for a well-behaved script to clean up, short against any operation timeout worth
/// configuring (Heartbeat's and Pacemaker's defaults are 20 s and more).
pub const TERM_GRACE: Duration = Duration::from_secs(2);

/// How long the output pipes may stay open after the main process exited before the rest
/// of its group is killed: enough for a last write from a child that is just finishing.
pub const STRAY_LINGER: Duration = Duration::from_secs(1);

/// How long to wait after SIGKILL before giving up on the pipes and on reaping inline. Only
/// a process stuck in the kernel (uninterruptible sleep) takes longer; it is then reaped by a
/// background thread when it finally dies, so it never stays a zombie.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// How often the exit of the main process is checked where the kernel cannot report it on a
/// descriptor (no `pidfd_open`, before Linux 5.3).
const EXIT_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// The search path agents' scripts get: Heartbeat's scripts and OCF agents call `ip`,
/// `ifconfig`, `logger` and friends by name and must find them whatever the daemon's own
/// environment was.
pub const SCRIPT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The most output kept per stream for an agent operation: meta-data of the larger OCF
/// agents is tens of kilobytes; more than this is a runaway script.
pub const AGENT_OUTPUT_LIMIT: usize = 1 << 20;

/// What to run and under which limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRequest {
    /// The program; a name without `/` is searched in `PATH` (the request's own, when it
    /// sets one).
    pub program: PathBuf,
    /// The arguments after the program name.
    pub args: Vec<String>,
    /// Variables set for the child, later entries winning over earlier ones.
    pub env: Vec<(String, String)>,
    /// Start from an empty environment instead of the daemon's, so a script sees exactly
    /// what its convention defines and nothing the daemon happened to inherit.
    pub clear_env: bool,
    /// The longest the program may run before its group is terminated.
    pub timeout: Duration,
    /// The most bytes kept of stdout and of stderr each; the rest is read and discarded, so
    /// a chatty child never blocks on a full pipe.
    pub max_output: usize,
}

/// How the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessExit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it (not one sent because of the timeout).
    Signal(i32),
    /// It was still running at the deadline; its group was terminated.
    TimedOut,
}

/// A finished program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessOutput {
    /// How it ended.
    pub exit: ProcessExit,
    /// Its standard output, at most `max_output` bytes.
    pub stdout: Vec<u8>,
    /// Its standard error, at most `max_output` bytes.
    pub stderr: Vec<u8>,
    /// From just before the start until it was reaped, for logs and latency figures.
    pub elapsed: Duration,
}

impl ProcessOutput {
    /// The last non-empty line of stderr, else of stdout, for an operation's message: where
    /// scripts put the reason they failed.
    pub fn last_line(&self) -> Option<String> {
        [&self.stderr, &self.stdout].into_iter().find_map(|stream| {
            String::from_utf8_lossy(stream)
                .lines()
                .map(str::trim)
                .rfind(|line| !line.is_empty())
                .map(str::to_owned)
        })
    }
}

/// Why a program could not be run or supervised.
#[derive(Debug, Error)]
pub enum ProcessError {
    /// The program does not exist (or, for a bare name, is not in `PATH`).
    #[error(
        "cannot run {program}: no such file (check the path and that the package providing it is installed)"
    )]
    NotFound { program: PathBuf },
    /// The program exists but may not be executed.
    #[error(
        "cannot run {program}: not executable (it must be a regular file with execute permission)"
    )]
    NotExecutable { program: PathBuf },
    /// The system refused to start it (a missing `#!` interpreter, a bad format, no memory,
    /// a NUL byte in an argument).
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Watching the running program failed; its group was killed and it was reaped.
    #[error("lost track of {program} while it ran (its process group was killed): {source}")]
    Supervise {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Runs a program to completion or to its deadline, as the module documentation describes.
/// Blocks the calling thread; the daemon calls it from worker threads only.
pub fn run(request: &ProcessRequest) -> Result<ProcessOutput, ProcessError> {
    let started = Instant::now();
    let mut child = spawn(request)?;
    let mut supervisor = Supervisor::new(&mut child, request.max_output);
    let supervised = supervisor.supervise(started + request.timeout);
    let Supervisor {
        stdout,
        stderr,
        leader_exited,
        ..
    } = supervisor;
    let timed_out = match supervised {
        Ok(timed_out) => timed_out,
        Err(source) => {
            kill_group(supervised_pid(&child), libc::SIGKILL);
            // The group was just killed; the wait returns as soon as the kernel lets it go.
            let _ = child.wait();
            return Err(ProcessError::Supervise {
                program: request.program.clone(),
                source,
            });
        }
    };
    let exit = if leader_exited {
        let status = child.wait().map_err(|source| ProcessError::Supervise {
            program: request.program.clone(),
            source,
        })?;
        match exit_of(status) {
            _ if timed_out => ProcessExit::TimedOut,
            Some(exit) => exit,
            None => {
                return Err(ProcessError::Supervise {
                    program: request.program.clone(),
                    source: io::Error::other(format!("unexpected wait status {status}")),
                });
            }
        }
    } else {
        // Only after a timeout: the leader outlived SIGKILL by KILL_WAIT.
        reap_in_background(child, &request.program);
        ProcessExit::TimedOut
    };
    Ok(ProcessOutput {
        exit,
        stdout: stdout.captured,
        stderr: stderr.captured,
        elapsed: started.elapsed(),
    })
}

/// Runs an agent's script for one operation and returns its exit code with the output, or
/// the finished failed operation when there is no exit code to interpret: the script could
/// not be started (`ErrInstalled`), timed out and was killed, or died of a signal
/// (`ErrGeneric`). `what` names the operation in messages (`Dummy start`).
pub fn operation_exit_code(
    request: &ProcessRequest,
    what: &str,
) -> Result<(i32, ProcessOutput), OperationOutcome> {
    let output = run(request).map_err(|err| {
        let status = match &err {
            ProcessError::NotFound { .. } | ProcessError::NotExecutable { .. } => {
                OcfStatus::ErrInstalled
            }
            // A script whose `#!` interpreter is missing.
            ProcessError::Spawn { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                OcfStatus::ErrInstalled
            }
            ProcessError::Spawn { .. } | ProcessError::Supervise { .. } => OcfStatus::ErrGeneric,
        };
        OperationOutcome::new(status, format!("{what}: {err}"))
    })?;
    match output.exit {
        ProcessExit::Code(code) => Ok((code, output)),
        ProcessExit::TimedOut => Err(OperationOutcome::new(
            OcfStatus::ErrGeneric,
            format!(
                "{what}: timed out after {:?} and was killed with its process group",
                request.timeout
            ),
        )),
        ProcessExit::Signal(signal) => Err(OperationOutcome::new(
            OcfStatus::ErrGeneric,
            format!("{what}: killed by signal {signal}"),
        )),
    }
}

fn spawn(request: &ProcessRequest) -> Result<Child, ProcessError> {
    let mut command = Command::new(&request.program);
    command
        .args(&request.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if request.clear_env {
        command.env_clear();
    }
    command.envs(request.env.iter().map(|(k, v)| (k, v)));
    // SAFETY: the closure runs in the child between fork and exec and calls only
    // async-signal-safe functions (setsid, sigprocmask, sigaction, syscall, fcntl); it allocates nothing.
    unsafe {
        command.pre_exec(prepare_child);
    }
    command.spawn().map_err(|source| {
        let program = request.program.clone();
        let program_exists = request.program.components().count() > 1 && program.exists();
        match source.kind() {
            io::ErrorKind::NotFound if !program_exists => ProcessError::NotFound { program },
            io::ErrorKind::PermissionDenied => ProcessError::NotExecutable { program },
            _ => ProcessError::Spawn { program, source },
        }
    })
}

/// Runs in the forked child before exec: a session (and so a process group) of its own,
/// default signal dispositions, and close-on-exec for every inherited descriptor above
/// stderr (std's own descriptors are close-on-exec already, but a library in the daemon may
/// have opened one without the flag).
fn prepare_child() -> io::Result<()> {
    // SAFETY: setsid has no arguments and only changes this (child) process.
    if unsafe { libc::setsid() } < 0 {
        return Err(io::Error::last_os_error());
    }
    // A mask and ignored signals survive exec; std clears the mask too, but the contract
    // is this module's.
    // SAFETY: sigemptyset initialises the local set; pthread_sigmask only reads it.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
    // A signal the daemon ignores stays ignored across exec; scripts expect the defaults
    // (a `trap` in the script still works, being set after exec).
    for signal in 1..32 {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            // SAFETY: setting SIG_DFL for a valid signal number touches no memory of ours.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
    }
    // SAFETY: close_range takes plain integers; with CLOSE_RANGE_CLOEXEC it only sets flags.
    let marked = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if marked != 0 {
        // Before Linux 5.11: mark each possible descriptor; failures are closed slots.
        // SAFETY: sysconf takes an integer constant.
        let limit = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(3, 65_536);
        for fd in 3..limit as RawFd {
            // SAFETY: fcntl on a descriptor that may not exist fails with EBADF and has no
            // other effect.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
    Ok(())
}

/// One captured output stream.
struct OutputPipe {
    /// The read end, until the child side is closed (EOF) or we give up on it.
    file: Option<File>,
    /// What was kept.
    captured: Vec<u8>,
    /// The most bytes to keep.
    limit: usize,
}

impl OutputPipe {
    fn new(fd: Option<OwnedFd>, limit: usize) -> Self {
        Self {
            file: fd.map(File::from),
            captured: Vec::new(),
            limit,
        }
    }

    /// One read after poll reported the pipe ready; EOF or an error closes it.
    fn read_ready(&mut self) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let mut chunk = [0u8; 16 * 1024];
        match file.read(&mut chunk) {
            Ok(0) => self.file = None,
            Ok(n) => {
                let room = self.limit.saturating_sub(self.captured.len());
                self.captured.extend(chunk.iter().take(n.min(room)));
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.file = None,
        }
    }
}

/// What a phase of supervision waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Goal {
    LeaderExit,
    PipesClosed,
    LeaderExitAndPipesClosed,
}

/// Watches one running child: its pipes and its exit, until a goal or a time.
struct Supervisor {
    pid: libc::pid_t,
    /// Readable when the child exits (Linux 5.3+); `None` means check every
    /// [`EXIT_CHECK_INTERVAL`].
    pidfd: Option<OwnedFd>,
    stdout: OutputPipe,
    stderr: OutputPipe,
    /// The child has exited but is deliberately not reaped yet (see the module docs).
    leader_exited: bool,
}

impl Supervisor {
    fn new(child: &mut Child, max_output: usize) -> Self {
        let pid = supervised_pid(child);
        // SAFETY: pidfd_open takes a pid and flags; it returns a new descriptor or -1.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let pidfd = RawFd::try_from(raw)
            .ok()
            .filter(|fd| *fd >= 0)
            // SAFETY: the descriptor was just returned to us and is owned by nobody else.
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
        Self {
            pid,
            pidfd,
            stdout: OutputPipe::new(child.stdout.take().map(OwnedFd::from), max_output),
            stderr: OutputPipe::new(child.stderr.take().map(OwnedFd::from), max_output),
            leader_exited: false,
        }
    }

    /// Runs the phases described in the module docs; true when the deadline was reached.
    fn supervise(&mut self, deadline: Instant) -> io::Result<bool> {
        if self.pump(deadline, Goal::LeaderExit)? {
            let linger = Instant::now() + STRAY_LINGER;
            if !self.pump(linger, Goal::PipesClosed)? {
                kill_group(self.pid, libc::SIGKILL);
                self.pump(Instant::now() + KILL_WAIT, Goal::PipesClosed)?;
            }
            return Ok(false);
        }
        kill_group(self.pid, libc::SIGTERM);
        kill_group(self.pid, libc::SIGCONT);
        self.pump(Instant::now() + TERM_GRACE, Goal::LeaderExitAndPipesClosed)?;
        kill_group(self.pid, libc::SIGKILL);
        self.pump(Instant::now() + KILL_WAIT, Goal::LeaderExitAndPipesClosed)?;
        Ok(true)
    }

    fn pipes_closed(&self) -> bool {
        self.stdout.file.is_none() && self.stderr.file.is_none()
    }

    fn reached(&self, goal: Goal) -> bool {
        match goal {
            Goal::LeaderExit => self.leader_exited,
            Goal::PipesClosed => self.pipes_closed(),
            Goal::LeaderExitAndPipesClosed => self.leader_exited && self.pipes_closed(),
        }
    }

    /// Reads output and watches for the exit until `goal` holds (true) or `until` passes
    /// (false).
    fn pump(&mut self, until: Instant, goal: Goal) -> io::Result<bool> {
        loop {
            if !self.leader_exited {
                self.leader_exited = has_exited(self.pid)?;
            }
            if self.reached(goal) {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= until {
                return Ok(false);
            }
            let mut wait = until - now;
            let mut fds = Vec::with_capacity(3);
            for pipe in [&self.stdout, &self.stderr] {
                if let Some(file) = &pipe.file {
                    fds.push(poll_entry(file.as_raw_fd()));
                }
            }
            if !self.leader_exited {
                match &self.pidfd {
                    Some(pidfd) => fds.push(poll_entry(pidfd.as_raw_fd())),
                    None => wait = wait.min(EXIT_CHECK_INTERVAL),
                }
            }
            // Rounded up so that a wait never ends just short of `until` and spins.
            let timeout_ms =
                libc::c_int::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX);
            // SAFETY: `fds` is a live, correctly sized array of pollfd for the whole call.
            let ready =
                unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
            if ready < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            let readable = |fd: RawFd| fds.iter().any(|entry| entry.fd == fd && entry.revents != 0);
            let stdout_ready = self
                .stdout
                .file
                .as_ref()
                .is_some_and(|f| readable(f.as_raw_fd()));
            let stderr_ready = self
                .stderr
                .file
                .as_ref()
                .is_some_and(|f| readable(f.as_raw_fd()));
            if stdout_ready {
                self.stdout.read_ready();
            }
            if stderr_ready {
                self.stderr.read_ready();
            }
        }
    }
}

fn poll_entry(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// The child's pid, which is also its process-group id (it called setsid).
fn supervised_pid(child: &Child) -> libc::pid_t {
    // Linux pids are at most 2^22 (PID_MAX_LIMIT), so the conversion cannot fail.
    libc::pid_t::try_from(child.id()).unwrap_or(libc::pid_t::MAX)
}

/// Whether the child has exited, without reaping it.
fn has_exited(pid: libc::pid_t) -> io::Result<bool> {
    // SAFETY: siginfo_t is plain data for which all zeroes is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid siginfo_t for waitid to fill; WNOWAIT leaves the child
    // waitable, so std's later wait still reaps it.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(err)
        };
    }
    // SAFETY: waitid succeeded, so si_pid is initialised (0 when nothing has exited).
    Ok(unsafe { info.si_pid() } != 0)
}

/// Signals the whole process group led by `pid`. Failure means the group is already empty.
fn kill_group(pgid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill with a negative pid signals that process group; it touches no memory.
    unsafe { libc::kill(-pgid, signal) };
}

/// Reaps a child that did not die within [`KILL_WAIT`] of SIGKILL (stuck in the kernel), so
/// it does not stay a zombie once it finally goes.
fn reap_in_background(mut child: Child, program: &std::path::Path) {
    tracing::warn!(
        program = %program.display(),
        pid = child.id(),
        "process survived SIGKILL (stuck in the kernel?); it will be reaped when it dies"
    );
    let spawned = std::thread::Builder::new()
        .name("vigil-reaper".into())
        .spawn(move || {
            let _ = child.wait();
        });
    if let Err(err) = spawned {
        tracing::error!(program = %program.display(), error = %err, "cannot start a reaper thread");
    }
}

fn exit_of(status: ExitStatus) -> Option<ProcessExit> {
    status
        .code()
        .map(ProcessExit::Code)
        .or_else(|| status.signal().map(ProcessExit::Signal))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> ProcessRequest {
        ProcessRequest {
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            env: Vec::new(),
            clear_env: true,
            timeout: Duration::from_secs(60),
            max_output: 4096,
        }
    }

    #[test]
    fn exit_code_is_reported() {
        let output = run(&sh("exit 3")).unwrap();
        assert_eq!(output.exit, ProcessExit::Code(3));
    }

    #[test]
    fn death_by_signal_is_reported() {
        let output = run(&sh("kill -USR1 $$")).unwrap();
        assert_eq!(output.exit, ProcessExit::Signal(libc::SIGUSR1));
    }

    #[test]
    fn stdout_and_stderr_are_captured_apart() {
        let output = run(&sh("echo out; echo err >&2")).unwrap();
        assert_eq!(output.stdout, b"out\n");
        assert_eq!(output.stderr, b"err\n");
    }

    #[test]
    fn output_beyond_the_limit_is_discarded_and_the_child_still_finishes() {
        let mut request = sh(
            "i=0; while [ $i -lt 2000 ]; do echo 0123456789012345678901234567890123456789; i=$((i+1)); done; echo done >&2",
        );
        request.max_output = 100;
        let output = run(&request).unwrap();
        assert_eq!(output.exit, ProcessExit::Code(0));
        assert_eq!(output.stdout.len(), 100);
        assert_eq!(output.stderr, b"done\n");
    }

    #[test]
    fn environment_is_exactly_the_given_one_when_cleared() {
        let mut request = ProcessRequest {
            program: PathBuf::from("/usr/bin/env"),
            args: Vec::new(),
            env: vec![("A".into(), "1".into()), ("B".into(), "two words".into())],
            ..sh("")
        };
        request.clear_env = true;
        let output = run(&request).unwrap();
        assert_eq!(output.stdout, b"A=1\nB=two words\n");
    }

    #[test]
    fn stdin_is_empty() {
        let output = run(&sh("cat; echo end")).unwrap();
        assert_eq!(output.stdout, b"end\n");
    }

    #[test]
    fn missing_program_is_not_found_and_named() {
        let err = run(&ProcessRequest {
            program: PathBuf::from("/nonexistent/vigil-test-program"),
            ..sh("")
        })
        .unwrap_err();
        assert!(matches!(err, ProcessError::NotFound { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/vigil-test-program"));
    }

    #[test]
    fn last_line_prefers_stderr_and_skips_blank_lines() {
        let output = ProcessOutput {
            exit: ProcessExit::Code(1),
            stdout: b"out\n".to_vec(),
            stderr: b"first\nthe reason\n\n".to_vec(),
            elapsed: Duration::ZERO,
        };
        assert_eq!(output.last_line().as_deref(), Some("the reason"));
        let quiet = ProcessOutput {
            stderr: Vec::new(),
            ..output
        };
        assert_eq!(quiet.last_line().as_deref(), Some("out"));
    }

    #[test]
    fn timed_out_operation_fails_with_a_message_saying_so() {
        let mut request = sh("exec sleep 60");
        request.timeout = Duration::from_millis(100);
        let outcome = operation_exit_code(&request, "Hang start").unwrap_err();
        assert_eq!(outcome.status, OcfStatus::ErrGeneric);
        assert!(outcome.message.contains("timed out"), "{}", outcome.message);
        assert!(outcome.message.contains("killed"), "{}", outcome.message);
    }

    #[test]
    fn operation_that_cannot_start_is_not_installed() {
        let request = ProcessRequest {
            program: PathBuf::from("/nonexistent/agent"),
            ..sh("")
        };
        let outcome = operation_exit_code(&request, "agent start").unwrap_err();
        assert_eq!(outcome.status, OcfStatus::ErrInstalled);
    }
}
