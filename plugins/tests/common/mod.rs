//! What the adapter tests share: fixture and scratch paths, a host that records logs, the
//! skip rule for tests that need Debian's packages, and a way to prove that processes a
//! script left behind are gone.
#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use vigil_plugin_api::{
    AddressChange, AddressRequest, CommandOutput, Host, HostError, InterfaceAddress, IpPrefix,
    LogLevel, ResourceInstance,
};

/// Set to `1` in CI: a test that needs Debian's heartbeat packages fails instead of skipping
/// when they are absent.
pub const REQUIRE_ROOT_TESTS_ENV: &str = "VIGIL_REQUIRE_ROOT_TESTS";

/// The longest a killed process may take to be reaped before a test calls it a survivor;
/// generous because the machine is small and shared.
pub const REAP_LIMIT: Duration = Duration::from_secs(20);

/// The fixture directory of this package.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

/// A fresh, empty scratch directory for one test, under cargo's per-target temp directory.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("vigil-agents-tests")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether a test that needs `what` runs: true when `available`; otherwise it prints why it
/// skips and returns false, or fails when [`REQUIRE_ROOT_TESTS_ENV`] is `1`.
pub fn run_or_skip(available: bool, what: &str) -> bool {
    if available {
        return true;
    }
    let required = std::env::var(REQUIRE_ROOT_TESTS_ENV).is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{REQUIRE_ROOT_TESTS_ENV}=1 but this test cannot run: it needs {what} \
         (install it with .ci/install-test-packages)"
    );
    println!("skipped: needs {what} (install it with .ci/install-test-packages)");
    false
}

/// A resource instance with these parameters and timeout.
pub fn instance(name: &str, params: &[(&str, &str)], timeout: Duration) -> ResourceInstance {
    ResourceInstance {
        name: name.to_owned(),
        params: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        timeout,
        grants: Default::default(),
    }
}

/// A host that grants nothing but logging, and remembers what was logged.
#[derive(Default)]
pub struct RecordingHost {
    pub logs: Mutex<Vec<(LogLevel, String)>>,
}

impl RecordingHost {
    /// The messages logged at `level`.
    pub fn logged(&self, level: LogLevel) -> Vec<String> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

fn refused(capability: &str) -> HostError {
    HostError::NotGranted {
        capability: capability.to_owned(),
    }
}

impl Host for RecordingHost {
    fn log(&self, level: LogLevel, message: &str) {
        self.logs.lock().unwrap().push((level, message.to_owned()));
    }
    fn addresses(&self) -> Result<Vec<InterfaceAddress>, HostError> {
        Err(refused("addresses"))
    }
    fn add_address(&self, _: &AddressRequest) -> Result<AddressChange, HostError> {
        Err(refused("add_address"))
    }
    fn remove_address(&self, _: &str, _: IpPrefix) -> Result<AddressChange, HostError> {
        Err(refused("remove_address"))
    }
    fn send_gratuitous_arp(
        &self,
        _: &str,
        _: std::net::IpAddr,
        _: u32,
        _: Duration,
    ) -> Result<(), HostError> {
        Err(refused("send_gratuitous_arp"))
    }
    fn run_command(
        &self,
        _: &[String],
        _: &[(String, String)],
        _: Duration,
    ) -> Result<CommandOutput, HostError> {
        Err(refused("run_command"))
    }
    fn read_file(&self, _: &Path) -> Result<Vec<u8>, HostError> {
        Err(refused("read_file"))
    }
}

/// Makes this test process the reaper of orphans its children leave, so that a test can
/// wait for a script's grandchildren and see how they died (otherwise they would go to
/// PID 1, out of reach).
pub fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes integers only.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(
            rc,
            0,
            "prctl(PR_SET_CHILD_SUBREAPER): {}",
            std::io::Error::last_os_error()
        );
    });
}

/// How a process left behind by a script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Killed by this signal.
    Signal(i32),
    /// Exited with this code.
    Code(i32),
    /// Already reaped by someone else (it is gone, how is unknown).
    Gone,
}

/// Waits until `pid` (an orphan reparented to this process, see [`become_subreaper`]) has
/// ended and reaps it; panics if it is still alive after [`REAP_LIMIT`].
pub fn wait_ended(pid: i32) -> Ended {
    let started = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into a local integer.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid {
            return if libc::WIFSIGNALED(status) {
                Ended::Signal(libc::WTERMSIG(status))
            } else {
                Ended::Code(libc::WEXITSTATUS(status))
            };
        }
        if rc < 0 {
            // Not our child: it must not exist at all any more.
            assert!(
                !is_alive(pid),
                "process {pid} is alive and not a child of the test"
            );
            return Ended::Gone;
        }
        assert!(
            started.elapsed() < REAP_LIMIT,
            "process {pid} is still alive {REAP_LIMIT:?} after it should have been killed"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process with this pid exists (a zombie counts).
pub fn is_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Whether `pid` is unknown to waitpid: it was a child of this process and has been reaped.
pub fn already_reaped(pid: i32) -> bool {
    let mut status = 0;
    // SAFETY: waitpid writes the status into a local integer.
    let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD)
}

/// The whitespace-separated pids a script printed or wrote.
pub fn pids(text: &[u8]) -> Vec<i32> {
    String::from_utf8_lossy(text)
        .split_whitespace()
        .map(|word| word.parse().unwrap())
        .collect()
}
