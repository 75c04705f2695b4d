//! `respawn`, `failfast` and `watchdog` in a real `vigil run` (a one-node cluster on
//! loopback): programs start once communications are up, are restarted, given up, run as
//! their user and stopped with the daemon; the watchdog stand-in is fed on each heartbeat and
//! closed with `V` only on a clean stop.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// A one-node daemon in a world-writable scratch directory, killed and removed on drop.
struct Daemon {
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A scratch directory every user may write to, for programs that run as another user.
fn scratch_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vigil-supervision-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// Writes an executable shell script `name` into `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The user the tests run as, which may always run programs as itself.
fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl Daemon {
    /// Starts `vigil run` in `dir` with `extra` YAML appended to a one-node configuration;
    /// `wrapper` runs before the binary (for example `setpriv …`).
    fn start_in(dir: &Path, extra: &str, wrapper: &[&str]) -> Daemon {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let yaml = format!(
            "node_name: alpha\nnodes: [alpha]\nkeepalive: 200ms\ndeadtime: 1s\nwarntime: 500ms\n\
             initdead: 2s\nudpport: {port}\nmedia:\n  - ucast: lo 127.0.0.2 bind=127.0.0.1\n\
             auth: {{ method: crc }}\nstate_dir: {}\napi_socket: {}\n{extra}",
            dir.join("state").display(),
            dir.join("vigil.sock").display(),
        );
        let config = dir.join("cluster.yaml");
        fs::write(&config, yaml).unwrap();
        fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
        let log = dir.join("stderr.log");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(env!("CARGO_BIN_EXE_vigil"));
                command
            }
            None => Command::new(env!("CARGO_BIN_EXE_vigil")),
        };
        let child = command
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon {
            dir: dir.to_path_buf(),
            log,
            child: Some(child),
        }
    }

    fn start(dir: &Path, extra: &str) -> Daemon {
        Daemon::start_in(dir, extra, &[])
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `text`.
    fn wait_for_log(&self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.log().contains(text) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("no `{text}` in the log within {within:?}:\n{}", self.log());
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Sends `signal` and waits for the daemon to exit.
    fn stop_with(&mut self, signal: libc::c_int) -> ExitStatus {
        // SAFETY: kill takes no pointers.
        unsafe { libc::kill(self.pid(), signal) };
        self.wait_exit(Duration::from_secs(20))
    }

    fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "vigil did not exit within {within:?}:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Lines in `file` (0 if it does not exist yet).
fn lines(file: &Path) -> usize {
    fs::read_to_string(file).map_or(0, |text| text.lines().count())
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `pid` is a live process (a zombie counts as gone).
fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn program_yaml(key: &str, user: &str, command: &Path) -> String {
    format!(
        "{key}:\n  - {{ user: {user}, command: \"{}\" }}\n",
        command.display()
    )
}

#[test]
fn a_program_that_exits_is_started_after_comm_up_and_restarted() {
    let dir = scratch_dir();
    let runs = dir.join("runs");
    let program = script(
        &dir,
        "short-lived",
        &format!("echo $$ >> {}\nsleep 0.2\nexit 1", runs.display()),
    );
    let mut daemon = Daemon::start(&dir, &program_yaml("respawn", &current_user(), &program));
    wait_until("three runs", Duration::from_secs(15), || lines(&runs) >= 3);
    let log = daemon.log();
    let comm_up = log.find("Comm_now_up").expect("communications came up");
    let first_start = log.find("Starting child client").expect("started");
    assert!(comm_up < first_start, "started before comm up:\n{log}");
    assert!(log.contains("Respawning client"), "{log}");
    assert!(
        log.contains("exited with return code 1."),
        "the death is logged:\n{log}"
    );
    assert!(
        daemon.stop_with(libc::SIGTERM).success(),
        "{}",
        daemon.log()
    );
}

#[test]
fn a_program_that_exits_100_is_not_restarted() {
    let dir = scratch_dir();
    let runs = dir.join("runs");
    let program = script(
        &dir,
        "done",
        &format!("echo $$ >> {}\nexit 100", runs.display()),
    );
    let mut daemon = Daemon::start(&dir, &program_yaml("respawn", &current_user(), &program));
    daemon.wait_for_log(
        "exited with code 100: not restarted",
        Duration::from_secs(15),
    );
    thread::sleep(Duration::from_secs(3));
    assert_eq!(lines(&runs), 1, "{}", daemon.log());
    assert!(
        !daemon.log().contains("Respawning client"),
        "{}",
        daemon.log()
    );
    assert!(daemon.stop_with(libc::SIGTERM).success());
}

#[test]
fn a_program_that_dies_at_once_is_given_up_after_ten_restarts() {
    let dir = scratch_dir();
    let runs = dir.join("runs");
    let program = script(
        &dir,
        "crashing",
        &format!("echo $$ >> {}\nexit 2", runs.display()),
    );
    let mut daemon = Daemon::start(&dir, &program_yaml("respawn", &current_user(), &program));
    // Ten restarts, each 1 s after a quick death.
    daemon.wait_for_log("\"respawning too fast\"", Duration::from_secs(30));
    let log = daemon.log();
    assert_eq!(lines(&runs), 11, "{log}");
    assert_eq!(log.matches("Respawning client").count(), 10, "{log}");
    assert!(
        log.contains(&format!(
            "Client {} \"respawning too fast\"",
            program.display()
        )),
        "{log}"
    );
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        lines(&runs),
        11,
        "restarted after giving up:\n{}",
        daemon.log()
    );
    assert!(daemon.stop_with(libc::SIGTERM).success());
}

#[test]
fn programs_and_their_children_are_stopped_with_the_daemon() {
    let dir = scratch_dir();
    let pids = dir.join("pids");
    // A program that ignores nothing but has a child of its own in its process group.
    let program = script(
        &dir,
        "long-lived",
        &format!(
            "sleep 1000 &\necho $! >> {pids}\necho $$ >> {pids}\nwait",
            pids = pids.display()
        ),
    );
    let stubborn = script(
        &dir,
        "stubborn",
        &format!(
            "trap '' TERM\necho $$ >> {}\nwhile :; do sleep 0.1; done",
            pids.display()
        ),
    );
    let user = current_user();
    let extra = format!(
        "respawn:\n  - {{ user: {user}, command: \"{}\" }}\n  - {{ user: {user}, command: \"{}\" }}\n",
        program.display(),
        stubborn.display()
    );
    let mut daemon = Daemon::start(&dir, &extra);
    wait_until("three pids", Duration::from_secs(15), || lines(&pids) >= 3);
    let recorded: Vec<i32> = fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|line| line.trim().parse().unwrap())
        .collect();
    assert!(recorded.iter().all(|&pid| alive(pid)), "{recorded:?}");
    let started = Instant::now();
    assert!(
        daemon.stop_with(libc::SIGTERM).success(),
        "{}",
        daemon.log()
    );
    // The stubborn one ignores SIGTERM and is killed after the grace.
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{}",
        daemon.log()
    );
    wait_until(
        "every recorded process gone",
        Duration::from_secs(5),
        || recorded.iter().all(|&pid| !alive(pid)),
    );
    assert_eq!(lines(&pids), 3, "a program was restarted during shutdown");
}

#[test]
fn a_program_runs_as_its_user_with_that_users_groups() {
    if !is_root() {
        eprintln!("skipped: running a program as another user needs root");
        return;
    }
    let dir = scratch_dir();
    let ids = dir.join("ids");
    let program = script(
        &dir,
        "whoami",
        &format!(
            "echo \"$(id -u) $(id -g) $(id -G)\" > {ids}.tmp && mv {ids}.tmp {ids}\nexec sleep 1000",
            ids = ids.display()
        ),
    );
    let mut daemon = Daemon::start(&dir, &program_yaml("respawn", "nobody", &program));
    wait_until("ids written", Duration::from_secs(15), || ids.exists());
    let expected = Command::new("id").args(["-u", "nobody"]).output().unwrap();
    let uid = String::from_utf8(expected.stdout)
        .unwrap()
        .trim()
        .to_string();
    let gid = String::from_utf8(
        Command::new("id")
            .args(["-g", "nobody"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let groups = String::from_utf8(
        Command::new("id")
            .args(["-G", "nobody"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let written = fs::read_to_string(&ids).unwrap();
    assert_eq!(
        written.trim(),
        format!("{uid} {gid} {groups}"),
        "{}",
        daemon.log()
    );
    assert!(daemon.stop_with(libc::SIGTERM).success());
}

#[test]
fn ipfail_is_recognised_and_not_run() {
    let dir = scratch_dir();
    let mut daemon = Daemon::start(
        &dir,
        &format!(
            "respawn: [{{ user: {}, command: /usr/lib/heartbeat/ipfail }}]\n",
            current_user()
        ),
    );
    daemon.wait_for_log(
        "ipfail needs Heartbeat's client API, which vigil does not provide yet",
        Duration::from_secs(15),
    );
    assert!(
        !daemon.log().contains("Starting child client"),
        "{}",
        daemon.log()
    );
    assert!(daemon.stop_with(libc::SIGTERM).success());
}

#[test]
fn a_program_that_is_not_executable_stops_the_daemon_from_starting() {
    let dir = scratch_dir();
    let missing = dir.join("missing-program");
    let mut daemon = Daemon::start(&dir, &program_yaml("respawn", &current_user(), &missing));
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert!(!status.success());
    assert!(
        daemon.log().contains(&format!(
            "respawn: client child command {} is not executable",
            missing.display()
        )),
        "{}",
        daemon.log()
    );
}

/// Counts feeds (NUL bytes) and magic closes (`V`) written to the stand-in device.
fn watchdog_bytes(device: &Path) -> (usize, usize) {
    let bytes = fs::read(device).unwrap();
    let feeds = bytes.iter().filter(|&&b| b == 0).count();
    let magic = bytes.iter().filter(|&&b| b == b'V').count();
    assert_eq!(feeds + magic, bytes.len(), "unexpected bytes: {bytes:?}");
    (feeds, magic)
}

#[test]
fn the_watchdog_is_fed_at_the_keepalive_rate_and_closed_with_v_on_sigterm() {
    let dir = scratch_dir();
    let device = dir.join("watchdog");
    fs::write(&device, b"").unwrap();
    let mut daemon = Daemon::start(&dir, &format!("watchdog: {}\n", device.display()));
    daemon.wait_for_log("Using watchdog device", Duration::from_secs(10));
    wait_until("first feeds", Duration::from_secs(10), || {
        watchdog_bytes(&device).0 >= 3
    });
    let (before, _) = watchdog_bytes(&device);
    thread::sleep(Duration::from_secs(2));
    let (after, magic) = watchdog_bytes(&device);
    // keepalive 200ms: about ten feeds in two seconds.
    let fed = after - before;
    assert!(
        (6..=16).contains(&fed),
        "{fed} feeds in 2 s:\n{}",
        daemon.log()
    );
    assert_eq!(magic, 0);
    assert!(
        daemon.stop_with(libc::SIGTERM).success(),
        "{}",
        daemon.log()
    );
    let bytes = fs::read(&device).unwrap();
    assert_eq!(bytes.last(), Some(&b'V'), "{bytes:?}");
    assert_eq!(watchdog_bytes(&device).1, 1);
}

#[test]
fn a_killed_daemon_never_writes_the_magic_character() {
    let dir = scratch_dir();
    let device = dir.join("watchdog");
    fs::write(&device, b"").unwrap();
    let mut daemon = Daemon::start(&dir, &format!("watchdog: {}\n", device.display()));
    wait_until("first feeds", Duration::from_secs(10), || {
        watchdog_bytes(&device).0 >= 3
    });
    daemon.stop_with(libc::SIGKILL);
    thread::sleep(Duration::from_millis(300));
    let (feeds, magic) = watchdog_bytes(&device);
    assert!(feeds >= 3);
    assert_eq!(magic, 0);
}

#[test]
fn the_watchdog_feeds_a_fifo_without_blocking_and_a_missing_device_stops_the_start() {
    let dir = scratch_dir();
    let fifo = dir.join("watchdog.fifo");
    let path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: the path is NUL-terminated and outlives the call.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    // The reader end first, non-blocking, as a watchdog driver is always there to be written.
    // SAFETY: as above; the descriptor is closed by the File below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) };
    assert!(fd >= 0);
    // SAFETY: fd is a fresh descriptor owned by nobody else.
    let mut reader = unsafe { <fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut daemon = Daemon::start(&dir, &format!("watchdog: {}\n", fifo.display()));
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.iter().filter(|&&b| b == 0).count() < 5 && Instant::now() < deadline {
        let mut buffer = [0u8; 64];
        if let Ok(n) = std::io::Read::read(&mut reader, &mut buffer) {
            seen.extend_from_slice(&buffer[..n]);
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        seen.iter().filter(|&&b| b == 0).count() >= 5,
        "{}",
        daemon.log()
    );
    assert!(daemon.stop_with(libc::SIGTERM).success());
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut reader, &mut rest);
    assert_eq!(rest.last(), Some(&b'V'), "{rest:?}");

    let missing = dir.join("no-watchdog");
    let other = scratch_dir();
    let mut daemon = Daemon::start(&other, &format!("watchdog: {}\n", missing.display()));
    assert!(!daemon.wait_exit(Duration::from_secs(10)).success());
    assert!(
        daemon.log().contains(&format!(
            "cannot open watchdog device {}",
            missing.display()
        )),
        "{}",
        daemon.log()
    );
}

/// `setpriv` arguments that take CAP_SYS_BOOT away from the daemon, after checking they
/// really do: a failfast test must never be able to reboot the machine it runs on.
fn without_reboot_capability() -> Option<Vec<&'static str>> {
    let wrapper = vec!["setpriv", "--bounding-set=-sys_boot"];
    if !is_root() {
        return Some(Vec::new());
    }
    let out = Command::new(wrapper[0])
        .args(&wrapper[1..])
        .args(["grep", "^CapEff:", "/proc/self/status"])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mask = u64::from_str_radix(text.split_whitespace().nth(1)?, 16).ok()?;
    const CAP_SYS_BOOT: u32 = 22;
    (out.status.success() && mask & (1 << CAP_SYS_BOOT) == 0).then_some(wrapper)
}

#[test]
fn a_failfast_death_reboots_and_without_the_right_to_reboot_stops_the_daemon_armed() {
    let Some(wrapper) = without_reboot_capability() else {
        eprintln!("skipped: cannot run the daemon without CAP_SYS_BOOT (setpriv missing)");
        return;
    };
    let dir = scratch_dir();
    let device = dir.join("watchdog");
    fs::write(&device, b"").unwrap();
    let program = script(&dir, "fragile", "sleep 1\nexit 3");
    let extra = format!(
        "watchdog: {}\n{}",
        device.display(),
        program_yaml("failfast", &current_user(), &program)
    );
    let mut daemon = Daemon::start_in(&dir, &extra, &wrapper);
    let status = daemon.wait_exit(Duration::from_secs(20));
    let log = daemon.log();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "Rebooting system.  Reason: failfast client {} died (exit code 3)",
            program.display()
        )),
        "{log}"
    );
    assert!(log.contains("rebooting failed"), "{log}");
    assert_eq!(watchdog_bytes(&device).1, 0, "the watchdog was disarmed");
}
