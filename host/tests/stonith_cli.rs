//! vigil's `stonith` and `meatclient` against cluster-glue's `/usr/sbin/stonith` and Debian's
//! `/usr/sbin/meatclient`: the same command lines give the same stdout, stderr and exit code,
//! with stdin from `/dev/null` (log lines go to syslog) and from a terminal (log lines on
//! stderr). Where vigil differs on purpose, the test says so and checks vigil's answer.
//!
//! The meatware tests run a reset on one side and the confirmation on the other, both
//! directions, through the FIFOs in `/run` (so they need root); each uses a host name of its
//! own, since the FIFO path is global. Tests skip with a message when cluster-glue or root
//! is missing, and fail instead when `VIGIL_REQUIRE_ROOT_TESTS=1`.

mod support;

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::{ScratchDir, die_with_test, is_root, run_or_skip, unique_token, wait_for};

const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");
const GLUE_STONITH: &str = "/usr/sbin/stonith";
const DEBIAN_MEATCLIENT: &str = "/usr/sbin/meatclient";

/// The longest a tool may take here; a meatware reset waits far longer if nobody answers.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// What one run printed and returned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    stdout: String,
    stderr: String,
    rc: i32,
}

/// Where a tool's stdin comes from: cluster-glue's `stonith` logs to stderr only when it is
/// a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Null,
    Terminal,
}

/// Which implementation of a tool runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Vigil,
    Glue,
}

impl Side {
    /// The command for tool `name` (`stonith`, `meatclient`), invoked under that name.
    fn command(self, name: &str) -> Command {
        let program = match (self, name) {
            (Side::Vigil, _) => VIGIL,
            (Side::Glue, "stonith") => GLUE_STONITH,
            (Side::Glue, _) => DEBIAN_MEATCLIENT,
        };
        let mut command = Command::new(program);
        command.arg0(name);
        for name in [
            "hostlist",
            "HA_LOGFACILITY",
            "HA_LOGFILE",
            "HA_DEBUGLOG",
            "HA_debug",
        ] {
            command.env_remove(name);
        }
        command
    }
}

/// A pseudo-terminal whose other end is a tool's stdin.
struct Terminal {
    /// Kept open while the tool runs, so its stdin stays a live terminal.
    _controller: OwnedFd,
    /// The tool's side.
    tool_side: OwnedFd,
}

impl Terminal {
    fn open() -> Terminal {
        let (mut controller, mut tool_side) = (-1, -1);
        // SAFETY: openpty writes two descriptors into the given integers; the name, termios
        // and window-size arguments may be null.
        let rc = unsafe {
            libc::openpty(
                &mut controller,
                &mut tool_side,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just created and are owned by nobody else.
        unsafe {
            Terminal {
                _controller: OwnedFd::from_raw_fd(controller),
                tool_side: OwnedFd::from_raw_fd(tool_side),
            }
        }
    }
}

/// Runs `command` to completion (killed after [`TOOL_TIMEOUT`]) with `input` as stdin.
fn run(mut command: Command, input: Input) -> Outcome {
    let terminal = (input == Input::Terminal).then(Terminal::open);
    match &terminal {
        Some(terminal) => command.stdin(Stdio::from(terminal.tool_side.try_clone().unwrap())),
        None => command.stdin(Stdio::null()),
    };
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    die_with_test(&mut command);
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    finish(child, &format!("{command:?}"))
}

/// Waits for `child` (at most [`TOOL_TIMEOUT`]) and collects its output.
fn finish(mut child: Child, what: &str) -> Outcome {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > TOOL_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {TOOL_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    Outcome {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        rc: output.status.code().unwrap_or(-1),
    }
}

/// Runs `stonith ARGS` on one side.
fn stonith(side: Side, args: &[&str], input: Input) -> Outcome {
    let mut command = side.command("stonith");
    command.args(args);
    run(command, input)
}

/// cluster-glue's stderr without the GLib warning its `ipmilan` plugin prints whenever the
/// tool loads every plugin (a blank line, then `** (process:PID): WARNING **: …`).
fn without_glib_warnings(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.split_inclusive('\n').collect();
    let mut kept = String::new();
    for (at, line) in lines.iter().enumerate() {
        let warning = |l: &&str| l.starts_with("** (process:");
        if warning(line) || (*line == "\n" && lines.get(at + 1).is_some_and(warning)) {
            continue;
        }
        kept.push_str(line);
    }
    kept
}

fn glue_available() -> bool {
    Path::new(GLUE_STONITH).exists() && Path::new(DEBIAN_MEATCLIENT).exists()
}

fn need_glue() -> bool {
    run_or_skip(
        glue_available(),
        "cluster-glue's /usr/sbin/stonith and /usr/sbin/meatclient (Debian package cluster-glue)",
    )
}

/// Asserts that both sides give the same outcome for `args`, with stdin from `/dev/null` and
/// from a terminal.
fn assert_same(args: &[&str]) {
    for input in [Input::Null, Input::Terminal] {
        let vigil = stonith(Side::Vigil, args, input);
        let mut glue = stonith(Side::Glue, args, input);
        glue.stderr = without_glib_warnings(&glue.stderr);
        assert_eq!(
            vigil, glue,
            "stonith {args:?} with stdin {input:?}: vigil, then cluster-glue"
        );
    }
}

#[test]
fn config_names_match() {
    if !need_glue() {
        return;
    }
    for device_type in [
        "null",
        "meatware",
        "ssh",
        "suicide",
        "rps10",
        "external/ssh",
        "external/ipmi",
    ] {
        assert_same(&["-t", device_type, "-n"]);
    }
    let names = stonith(Side::Vigil, &["-t", "null", "-n"], Input::Null);
    assert_eq!(names.stdout, "hostlist  \n");
}

#[test]
fn help_for_one_device_type_matches() {
    if !need_glue() {
        return;
    }
    for device_type in [
        "null",
        "meatware",
        "ssh",
        "suicide",
        "rps10",
        "external/ssh",
        "external/ipmi",
    ] {
        assert_same(&["-h", "-t", device_type]);
    }
    assert_same(&["-t", "null", "-h"]);
    assert_same(&["-h", "-t", "nosuchdevice"]);
}

#[test]
fn full_help_has_the_same_usage_and_the_same_section_for_every_shared_type() {
    if !need_glue() {
        return;
    }
    let vigil = stonith(Side::Vigil, &["-h"], Input::Null);
    let glue = stonith(Side::Glue, &["-h"], Input::Null);
    assert_eq!((vigil.rc, glue.rc), (0, 0));
    let sections = |text: &str| -> (String, HashMap<String, String>) {
        let mut parts = text.split("\n\nSTONITH Device: ");
        let head = parts.next().unwrap_or_default().to_string();
        let by_type = parts
            .map(|part| {
                let device_type = part.split(" - ").next().unwrap_or_default().to_string();
                (device_type, part.to_string())
            })
            .collect();
        (head, by_type)
    };
    let (vigil_head, vigil_sections) = sections(&vigil.stdout);
    let (glue_head, glue_sections) = sections(&glue.stdout);
    assert_eq!(vigil_head, glue_head);
    assert!(vigil_sections.len() >= 6, "{:?}", vigil_sections.keys());
    for (device_type, section) in &vigil_sections {
        assert_eq!(
            Some(section),
            glue_sections.get(device_type),
            "the -h section of {device_type}"
        );
    }
}

#[test]
fn the_type_list_is_cluster_glues_restricted_to_the_types_vigil_has() {
    if !need_glue() {
        return;
    }
    let vigil = stonith(Side::Vigil, &["-L"], Input::Null);
    let glue = stonith(Side::Glue, &["-L"], Input::Null);
    assert_eq!((vigil.rc, glue.rc, vigil.stderr.as_str()), (0, 0, ""));
    let vigil_types: Vec<&str> = vigil.stdout.lines().collect();
    let shared: Vec<&str> = glue
        .stdout
        .lines()
        .filter(|t| vigil_types.contains(t))
        .collect();
    assert_eq!(
        vigil_types, shared,
        "vigil lists a type cluster-glue does not"
    );
    for expected in [
        "external/ipmi",
        "external/ssh",
        "meatware",
        "null",
        "rps10",
        "ssh",
        "suicide",
    ] {
        assert!(
            vigil_types.contains(&expected),
            "{expected} missing from -L"
        );
    }
}

#[test]
fn host_lists_status_and_resets_of_listed_hosts_match() {
    if !need_glue() {
        return;
    }
    let scratch = ScratchDir::new(&format!("vigil-stonith-cli-{}", std::process::id()));
    let params_file = scratch.path().join("null.cfg");
    fs::write(&params_file, "# the hosts\n\nhb1 HB2\nhb3\n").unwrap();
    let params_file = params_file.to_string_lossy().into_owned();
    for args in [
        &["-t", "null", "hostlist=hb1 hb2", "-l"][..],
        &["-t", "null", "hostlist=hb1,HB2", "-l"],
        &["-t", "null", "hostlist=hb1 hb2", "-S"],
        &["-t", "null", "hostlist=hb1 hb2", "-S", "-s"],
        &["-t", "null", "hostlist=hb1 hb2", "-S", "-l", "-c", "2"],
        &["-t", "null", "hostlist=hb1 hb2", "-T", "reset", "hb2"],
        &["-t", "null", "hostlist=hb1 hb2", "-T", "off", "HB2"],
        &["-t", "null", "hostlist=hb1 hb2", "-T", "on", "hb2"],
        &["-t", "null", "hostlist=hb1 hb2", "hb2"],
        &["-t", "null", "-p", "hb1 hb2", "-l"],
        &["-t", "null", "-p", "hb1 hb2", "-T", "reset", "hb1"],
        &["-t", "null", "-F", &params_file, "-l"],
        &["-t", "meatware", "hostlist=hb1 hb2", "-l"],
        &["-t", "meatware", "-p", "hb1 hb2", "-S"],
        &["-t", "ssh", "hostlist=hb1 hb2", "-l"],
        &["-t", "ssh", "hostlist=hb1 hb2", "-S"],
        &["-t", "suicide", "-l"],
        &["-t", "suicide", "-S"],
        &["-t", "external/ssh", "hostlist=hb1 hb2", "-l"],
    ] {
        assert_same(args);
    }
    for side in [Side::Vigil, Side::Glue] {
        let mut command = side.command("stonith");
        command
            .args(["-t", "null", "-E", "-l"])
            .env("hostlist", "hb1 hb2");
        let outcome = run(command, Input::Null);
        assert_eq!(
            (outcome.stdout.as_str(), outcome.rc),
            ("hb1\nhb2\n", 0),
            "{side:?}"
        );
    }
}

#[test]
fn refused_requests_match() {
    if !need_glue() {
        return;
    }
    for args in [
        &["-t", "ssh", "hostlist=hb1 hb2", "-T", "on", "hb1"][..],
        &["-t", "ssh", "hostlist=hb1 hb2", "-T", "reset", "hb9"],
        &["-t", "suicide", "-T", "on", "whoever"],
        // ssh cannot log in to a name that never resolves: S_RESETFAIL, same message.
        &[
            "-t",
            "ssh",
            "hostlist=vigil-test.invalid",
            "vigil-test.invalid",
        ],
    ] {
        assert_same(args);
    }
}

#[test]
fn an_unlisted_host_is_bad_host_where_cluster_glue_reports_a_reset() {
    if !need_glue() {
        return;
    }
    let args = ["-t", "null", "hostlist=hb1 hb2", "-T", "reset", "hb9"];
    let vigil = stonith(Side::Vigil, &args, Input::Terminal);
    let glue = stonith(Side::Glue, &args, Input::Terminal);
    assert_eq!(
        glue.rc, 0,
        "cluster-glue's known fault: it 'resets' any host"
    );
    assert_eq!(glue.stderr, "info: Host null-reset: hb9\n");
    assert_eq!(vigil.rc, 4, "S_BADHOST");
    assert_eq!(
        vigil.stderr,
        "CRIT: NULL STONITH device doesn't control host [hb9]\n"
    );
    let suicide = stonith(
        Side::Vigil,
        &["-t", "suicide", "-T", "reset", "not-this-node"],
        Input::Null,
    );
    assert_eq!(
        suicide.rc, 4,
        "cluster-glue's suicide answers S_RESETFAIL (5) here"
    );
}

#[test]
fn missing_and_malformed_parameters_match() {
    if !need_glue() {
        return;
    }
    for args in [
        &["-t", "null", "-l"][..],
        &["-t", "null", "-T", "reset", "hb1"],
        &["-t", "meatware", "-S"],
        &["-t", "ssh", "-l"],
        &["-t", "null", "ipaddr=x", "-l"],
        &["-t", "null", "hostlist=", "-l"],
        &["-t", "ssh", "hostlist=", "-l"],
        &["-t", "ssh", "ipaddr=x", "-l"],
        &["-t", "null", "-p", "", "-l"],
        &["-t", "null", "-E", "-l"],
        &["-t", "null", "-E", "-S"],
        &["-t", "null", "-F", "/nonexistent/vigil-test.cfg", "-l"],
        &["-t", "null", "-p", "hb1", "-E", "-l"],
        &["-t", "null", "-p", "hb1", "-F", "x", "-l"],
        &["-t", "null", "hostlist=hb1", "-p", "hb1", "-l"],
    ] {
        assert_same(args);
    }
}

#[test]
fn unknown_types_and_bad_command_lines_match() {
    if !need_glue() {
        return;
    }
    for args in [
        &["-t", "nosuchdevice", "-l"][..],
        &["-t", "nosuchdevice", "hostlist=a", "a"],
        &[],
        &["-x"],
        &["-l"],
        &["-t", "null", "hostlist=a", "-T", "bogus", "a"],
        &["-t", "null", "hostlist=a", "-c", "0", "-l"],
        &["-t", "null", "hostlist=a", "-c", "x", "-l"],
        &["-t", "null", "hostlist=a"],
        &["-t", "null", "hostlist=a", "a", "b"],
        &["-t", "null", "hostlist=a", "-p"],
        &["-t", "null", "--", "hostlist=a", "-l", "x"],
    ] {
        assert_same(args);
    }
}

#[test]
fn metadata_matches() {
    if !need_glue() {
        return;
    }
    for device_type in [
        "null",
        "meatware",
        "ssh",
        "suicide",
        "rps10",
        "external/ssh",
        "external/ipmi",
    ] {
        assert_same(&["-t", device_type, "-m"]);
    }
}

#[test]
fn vigil_stonith_is_the_same_tool() {
    let direct = stonith(
        Side::Vigil,
        &["-t", "null", "hostlist=hb1 HB2", "-l"],
        Input::Null,
    );
    let mut command = Command::new(VIGIL);
    command.args(["stonith", "-t", "null", "hostlist=hb1 HB2", "-l"]);
    assert_eq!(run(command, Input::Null), direct);
    assert_eq!(direct.stdout, "hb1\nhb2\n");
    let mut command = Command::new(VIGIL);
    command.args(["stonith", "-q"]);
    let usage = run(command, Input::Null);
    assert_eq!(usage.rc, 1);
    assert!(
        usage.stderr.starts_with(
            "vigil stonith: invalid option -- 'q'\nusage:\n\t vigil stonith [-svh] -L\n"
        ),
        "{}",
        usage.stderr
    );
}

// ---- meatware, both directions ----

/// What Debian's `meatclient` prints for `node` up to the answer.
fn meatclient_prompt(node: &str) -> String {
    format!(
        "\nWARNING!\n\nIf node \"{node}\" has not been manually power-cycled or disconnected from all shared resources and networks, data on shared disks may become corrupted and migrated services might not work as expected.\nPlease verify that the name or address above corresponds to the node you just rebooted.\n\nPROCEED? [yN] "
    )
}

/// A host name no other test (or test process) uses, so its FIFO is this test's own.
fn unique_host(label: &str) -> String {
    let (pid, n) = unique_token();
    format!("vigil-{label}-{pid}-{n}")
}

fn fifo_of(host: &str) -> PathBuf {
    PathBuf::from(format!("/run/meatware.{host}"))
}

fn need_meatware() -> bool {
    run_or_skip(
        glue_available() && is_root(),
        "root (the meatware FIFOs are in /run) and cluster-glue's stonith and meatclient",
    )
}

/// A meatware reset running in the background; killed (and its FIFO removed) if the test
/// ends before it does.
struct PendingReset {
    child: Option<Child>,
    host: String,
}

impl PendingReset {
    /// Starts `stonith -t meatware hostlist=HOST -T reset HOST` on `side` and waits for its
    /// FIFO.
    fn start(side: Side, host: &str) -> PendingReset {
        let mut command = side.command("stonith");
        command
            .args([
                "-t",
                "meatware",
                &format!("hostlist={host}"),
                "-T",
                "reset",
                host,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_test(&mut command);
        let child = command.spawn().unwrap();
        let pending = PendingReset {
            child: Some(child),
            host: host.to_string(),
        };
        pending.wait_for_fifo();
        pending
    }

    fn wait_for_fifo(&self) {
        let fifo = fifo_of(&self.host);
        wait_for(
            &format!("the FIFO {}", fifo.display()),
            TOOL_TIMEOUT,
            || match fs::metadata(&fifo) {
                Ok(meta) if meta.file_type().is_fifo() => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
        // The device opens the FIFO for reading right after creating it.
        thread::sleep(Duration::from_millis(200));
    }

    fn finish(mut self) -> Outcome {
        finish(self.child.take().unwrap(), "the meatware reset")
    }
}

impl Drop for PendingReset {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_file(fifo_of(&self.host));
    }
}

/// Runs a meatclient on `side` for `host`, answering `answer`.
fn meatclient(side: Side, args: &[&str], answer: &str) -> Outcome {
    let mut command = side.command("meatclient");
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_test(&mut command);
    let mut child = command.spawn().unwrap();
    // A meatclient that refuses its arguments exits before reading its answer; the pipe is
    // then closed and the write fails with EPIPE, which is not the test's concern.
    let written = child.stdin.take().unwrap().write_all(answer.as_bytes());
    if let Err(error) = written {
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
    }
    finish(child, "meatclient")
}

#[test]
fn a_vigil_meatware_reset_is_confirmed_by_debians_meatclient() {
    if !need_meatware() {
        return;
    }
    let host = unique_host("mw-yes");
    let pending = PendingReset::start(Side::Vigil, &host);
    let meta = fs::metadata(fifo_of(&host)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let client = meatclient(Side::Glue, &["-c", &host], "yes\n");
    assert_eq!(
        client,
        Outcome {
            stdout: format!(
                "{}Meatware_client: reset confirmed.\n",
                meatclient_prompt(&host)
            ),
            stderr: String::new(),
            rc: 0,
        }
    );
    let reset = pending.finish();
    assert_eq!(
        (reset.rc, reset.stdout.as_str(), reset.stderr.as_str()),
        (0, "", "")
    );
    assert!(!fifo_of(&host).exists());
}

#[test]
fn no_from_debians_meatclient_cancels_a_vigil_meatware_reset() {
    if !need_meatware() {
        return;
    }
    let host = unique_host("mw-no");
    let pending = PendingReset::start(Side::Vigil, &host);
    let client = meatclient(Side::Glue, &["-c", &host], "no\n");
    assert_eq!(
        (client.stdout, client.rc),
        (
            format!(
                "{}Meatware_client: operation canceled.\n",
                meatclient_prompt(&host)
            ),
            3
        )
    );
    assert_eq!(pending.finish().rc, 5, "S_RESETFAIL");
    assert!(!fifo_of(&host).exists());
}

#[test]
fn vigils_meatclient_confirms_a_cluster_glue_meatware_reset() {
    if !need_meatware() {
        return;
    }
    let host = unique_host("glue-yes");
    let pending = PendingReset::start(Side::Glue, &host);
    let client = meatclient(Side::Vigil, &["-c", &host.to_uppercase()], "yes\n");
    assert_eq!(
        client,
        Outcome {
            stdout: format!(
                "{}Meatware_client: reset confirmed.\n",
                meatclient_prompt(&host)
            ),
            stderr: String::new(),
            rc: 0,
        }
    );
    assert_eq!(pending.finish().rc, 0);
}

#[test]
fn no_from_vigil_meatware_confirm_cancels_a_cluster_glue_meatware_reset() {
    if !need_meatware() {
        return;
    }
    let host = unique_host("glue-no");
    let pending = PendingReset::start(Side::Glue, &host);
    let mut command = Command::new(VIGIL);
    command
        .args(["meatware", "confirm", &host])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"no\n").unwrap();
    let client = finish(child, "vigil meatware confirm");
    assert_eq!(
        (client.stdout, client.rc),
        (
            format!(
                "{}Meatware_client: operation canceled.\n",
                meatclient_prompt(&host)
            ),
            3
        )
    );
    assert_eq!(pending.finish().rc, 5);
}

#[test]
fn an_answer_not_starting_with_lower_case_y_cancels_as_in_debian() {
    if !need_meatware() {
        return;
    }
    for side in [Side::Glue, Side::Vigil] {
        let host = unique_host("mw-capital");
        let pending = PendingReset::start(Side::Vigil, &host);
        let client = meatclient(side, &["-c", &host], "Yes\n");
        assert_eq!(client.rc, 3, "{side:?}");
        assert_eq!(pending.finish().rc, 5, "{side:?}");
    }
}

#[test]
fn meatclient_errors_match_debians() {
    if !need_meatware() {
        return;
    }
    let host = unique_host("mw-none");
    let cases: Vec<Vec<String>> = vec![
        vec!["-c".into(), host.clone()],
        vec![],
        vec!["-x".into()],
        vec!["-c".into()],
        vec!["-c".into(), host.clone(), "extra".into()],
    ];
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(
            meatclient(Side::Vigil, &args, ""),
            meatclient(Side::Glue, &args, ""),
            "meatclient {args:?}"
        );
    }
    // A FIFO nobody reads: opening it for writing fails with ENXIO.
    let orphan = unique_host("mw-orphan");
    let path = fifo_of(&orphan);
    let status = Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(status.success());
    let vigil = meatclient(Side::Vigil, &["-c", &orphan], "yes\n");
    let debian = meatclient(Side::Glue, &["-c", &orphan], "yes\n");
    fs::remove_file(&path).unwrap();
    assert_eq!(vigil, debian);
    assert_eq!(vigil.rc, 4);
    assert!(
        vigil.stderr.ends_with("No such device or address\n"),
        "{}",
        vigil.stderr
    );
}

#[test]
fn meatclient_w_waits_for_the_reset_to_ask() {
    if !need_meatware() {
        return;
    }
    let host = unique_host("mw-wait");
    let mut command = Side::Vigil.command("meatclient");
    command
        .args(["-c", &host, "-w"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_test(&mut command);
    let mut client = command.spawn().unwrap();
    client.stdin.take().unwrap().write_all(b"yes\n").unwrap();
    thread::sleep(Duration::from_millis(1500));
    let pending = PendingReset::start(Side::Vigil, &host);
    let client = finish(client, "meatclient -w");
    assert_eq!(pending.finish().rc, 0);
    assert_eq!(client.rc, 0);
    let dots = client.stdout.split('\n').next().unwrap();
    assert!(
        !dots.is_empty() && dots.chars().all(|c| c == '.'),
        "{:?}",
        client.stdout
    );
    assert!(client.stdout.ends_with(&format!(
        "\n{}Meatware_client: reset confirmed.\n",
        meatclient_prompt(&host)
    )));
}

// ---- rps10 against a simulated switch ----

/// An RPS-10M on the far end of a pseudo-terminal, as both `stonith` tools see one: it says
/// `RPS-10 Ready` when the line comes back from a hang-up (speed 0; both ends of a pty share
/// it) and answers commands as the switch does, recording them.
struct SimulatedRps10 {
    /// The terminal the tools open.
    tty: String,
    /// Commands received (`5T`: outlet 5, toggle).
    commands: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl SimulatedRps10 {
    fn start() -> SimulatedRps10 {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let (mut switch_end, mut tool_end) = (-1, -1);
        // SAFETY: openpty writes two descriptors into the given integers.
        let rc = unsafe {
            libc::openpty(
                &mut switch_end,
                &mut tool_end,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just created and are owned by nobody else.
        let (switch_end, tool_end) = unsafe {
            (
                OwnedFd::from_raw_fd(switch_end),
                OwnedFd::from_raw_fd(tool_end),
            )
        };
        let tty = fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&tool_end)
        ))
        .unwrap()
        .to_string_lossy()
        .into_owned();
        // The tools open their end by name and may want it to themselves.
        drop(tool_end);
        let commands = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (commands, stop) = (commands.clone(), stop.clone());
            thread::spawn(move || {
                let fd = std::os::fd::AsRawFd::as_raw_fd(&switch_end);
                let write = |bytes: &[u8]| {
                    // SAFETY: writes from a live buffer to our open descriptor.
                    unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
                };
                let (mut hung_up, mut received) = (false, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: termios is plain data; tcgetattr fills it.
                    let speed = unsafe {
                        let mut termios: libc::termios = std::mem::zeroed();
                        libc::tcgetattr(fd, &mut termios);
                        libc::cfgetospeed(&termios)
                    };
                    if speed == libc::B0 {
                        hung_up = true;
                    } else if hung_up {
                        hung_up = false;
                        write(b"RPS-10 Ready\r\n");
                    }
                    let mut entry = libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd for the duration of the call.
                    let ready = unsafe { libc::poll(&mut entry, 1, 20) };
                    let mut byte = 0u8;
                    // SAFETY: reads one byte into a live local.
                    if ready <= 0
                        || unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) } != 1
                    {
                        // No data, or no tool has its end open (EIO): look again shortly.
                        thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    if byte != b'\r' {
                        received.push(byte);
                        continue;
                    }
                    let order = std::mem::take(&mut received);
                    if let Some([outlet, command]) = order.strip_prefix(&[2, 24, 24, 2, 24, 24][..])
                    {
                        let (outlet, command) = (*outlet as char, *command as char);
                        commands.lock().unwrap().push(format!("{outlet}{command}"));
                        let plug = if outlet == '*' { '0' } else { outlet };
                        let reply = match command {
                            'T' => format!("Plug {plug} Off\r\nPlug {plug} On\r\nComplete\r\n"),
                            '1' => format!("Plug {plug} On\r\nComplete\r\n"),
                            '0' => format!("Plug {plug} Off\r\nComplete\r\n"),
                            _ => "Complete\r\n".to_string(),
                        };
                        write(reply.as_bytes());
                    }
                }
            })
        };
        SimulatedRps10 {
            tty,
            commands,
            stop,
            thread: Some(thread),
        }
    }

    fn take_commands(&self) -> Vec<String> {
        std::mem::take(&mut *self.commands.lock().unwrap())
    }
}

impl Drop for SimulatedRps10 {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn rps10_drives_a_simulated_switch_as_cluster_glue_does() {
    if !need_glue() {
        return;
    }
    let switch = SimulatedRps10::start();
    let config = format!("serial_to_targets={} hb1 3 hb2 5", switch.tty);
    for (request, sent) in [
        (&["-T", "reset", "hb2"][..], &["5T"][..]),
        (&["-T", "on", "HB1"], &["31"]),
        (&["-S"], &[]),
        (&["-l"], &[]),
        (&["-T", "reset", "hb9"], &[]),
    ] {
        let mut args = vec!["-t", "rps10", &config];
        args.extend_from_slice(request);
        let vigil = stonith(Side::Vigil, &args, Input::Terminal);
        assert_eq!(switch.take_commands(), sent, "vigil {request:?}");
        let glue = stonith(Side::Glue, &args, Input::Terminal);
        assert_eq!(switch.take_commands(), sent, "cluster-glue {request:?}");
        assert_eq!(vigil, glue, "stonith {request:?}: vigil, then cluster-glue");
    }
    // cluster-glue says "turned on" for an outlet it turns off; vigil says what it does.
    let off = stonith(
        Side::Vigil,
        &["-t", "rps10", &config, "-T", "off", "hb1"],
        Input::Terminal,
    );
    assert_eq!(switch.take_commands(), ["30"]);
    assert_eq!(
        (off.rc, off.stderr.as_str()),
        (0, "info: Host is being turned off: hb1\n")
    );
}

// ---- external/ipmi against OpenIPMI's simulated BMC ----

/// OpenIPMI's `ipmi_sim` serving IPMI on port 623 of a loopback address of its own, its
/// chassis power kept in a file by a chassis-control script, which also journals every power
/// and reset command. Killed on drop.
struct SimulatedBmc {
    /// The BMC's address.
    address: String,
    /// Holds the configuration, the chassis state and the journal.
    dir: ScratchDir,
    sim: Child,
}

impl SimulatedBmc {
    const USER: &'static str = "admin";
    const PASSWORD: &'static str = "vigil-secret";

    fn start() -> SimulatedBmc {
        let (pid, n) = unique_token();
        let address = format!("127.84.{}.{}", (pid >> 8) & 0xff, (pid & 0xff) ^ (n & 0x3f));
        let dir = ScratchDir::new(&format!("vigil-ipmi-sim-{pid}-{n}"));
        let path = |name: &str| dir.path().join(name);
        fs::write(path("power"), "1\n").unwrap();
        support::write_file(
            &path("chassis"),
            "#!/bin/sh\n\
             dir=$(dirname \"$0\"); shift; op=$1; shift\n\
             case $op in\n\
             get) for p in \"$@\"; do [ \"$p\" = power ] && echo \"power:$(cat \"$dir/power\")\"; done ;;\n\
             set) while [ $# -ge 2 ]; do echo \"$1 $2\" >> \"$dir/journal\"; [ \"$1\" = power ] && echo \"$2\" > \"$dir/power\"; shift 2; done ;;\n\
             *) exit 1 ;;\n\
             esac\n",
            0o755,
        );
        fs::write(
            path("lan.conf"),
            format!(
                "name \"vigiltest\"\n\
                 set_working_mc 0x20\n\
                 \x20 startlan 1\n\
                 \x20   addr {address} 623\n\
                 \x20   priv_limit admin\n\
                 \x20   allowed_auths_callback none md2 md5 straight\n\
                 \x20   allowed_auths_user none md2 md5 straight\n\
                 \x20   allowed_auths_operator none md2 md5 straight\n\
                 \x20   allowed_auths_admin none md2 md5 straight\n\
                 \x20   guid a123456789abcdefa123456789abcdef\n\
                 \x20 endlan\n\
                 \x20 chassis_control \"{} bmc\"\n\
                 \x20 user 2 true \"{}\" \"{}\" admin 10 none md2 md5 straight\n",
                path("chassis").display(),
                Self::USER,
                Self::PASSWORD
            ),
        )
        .unwrap();
        fs::write(
            path("bmc.emu"),
            "mc_setbmc 0x20\n\
             mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n\
             sel_enable 0x20 1000 0x0a\n\
             mc_enable 0x20\n",
        )
        .unwrap();
        fs::create_dir(path("state")).unwrap();
        let mut command = Command::new("ipmi_sim");
        command
            .arg("-c")
            .arg(path("lan.conf"))
            .arg("-f")
            .arg(path("bmc.emu"))
            .arg("-s")
            .arg(path("state"))
            .arg("-n")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_test(&mut command);
        let sim = command.spawn().expect("ipmi_sim");
        let bmc = SimulatedBmc { address, dir, sim };
        wait_for("the simulated BMC to answer", TOOL_TIMEOUT, || {
            bmc.power_status()
                .ok_or_else(|| "no answer from ipmitool".to_string())
        });
        bmc
    }

    /// What `ipmitool chassis power status` says (`on`, `off`), asked directly.
    fn power_status(&self) -> Option<String> {
        let output = Command::new("ipmitool")
            .args(["-I", "lan", "-H", &self.address, "-U", Self::USER, "-P"])
            .arg(Self::PASSWORD)
            .args(["chassis", "power", "status"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        text.trim()
            .strip_prefix("Chassis Power is ")
            .map(str::to_string)
    }

    /// The power and reset commands the chassis received since the last call.
    fn take_journal(&self) -> Vec<String> {
        let journal = self.dir.path().join("journal");
        let text = fs::read_to_string(&journal).unwrap_or_default();
        let _ = fs::remove_file(&journal);
        text.lines().map(str::to_string).collect()
    }

    /// The `name=value` parameters of an external/ipmi device for `host` on this BMC.
    fn params(&self, host: &str) -> Vec<String> {
        vec![
            format!("hostname={host}"),
            format!("ipaddr={}", self.address),
            format!("userid={}", Self::USER),
            format!("passwd={}", Self::PASSWORD),
            "interface=lan".to_string(),
        ]
    }
}

impl Drop for SimulatedBmc {
    fn drop(&mut self) {
        let _ = self.sim.kill();
        let _ = self.sim.wait();
    }
}

#[test]
fn external_ipmi_fences_a_simulated_bmc_as_cluster_glue_does() {
    let tools = ["/usr/bin/ipmi_sim", "/usr/bin/ipmitool"];
    if !run_or_skip(
        glue_available() && is_root() && tools.iter().all(|t| Path::new(t).exists()),
        "root (IPMI's port 623), cluster-glue, and OpenIPMI's ipmi_sim with ipmitool (Debian packages openipmi, ipmitool)",
    ) {
        return;
    }
    let bmc = SimulatedBmc::start();
    let params = bmc.params("node9");
    let with = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["-t".to_string(), "external/ipmi".to_string()];
        args.extend(params.iter().cloned());
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    for (request, journal, power) in [
        (&["-T", "off", "node9"][..], &["power 0"][..], "off"),
        (&["-T", "on", "NODE9"], &["power 1"], "on"),
        (&["-T", "reset", "node9"], &["reset 1"], "on"),
        (&["-S"], &[], "on"),
        (&["-l"], &[], "on"),
    ] {
        let args = with(request);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let vigil = stonith(Side::Vigil, &args, Input::Null);
        assert_eq!(bmc.take_journal(), journal, "vigil {request:?}: {vigil:?}");
        assert_eq!(
            bmc.power_status().as_deref(),
            Some(power),
            "after vigil {request:?}"
        );
        let glue = stonith(Side::Glue, &args, Input::Null);
        assert_eq!(bmc.take_journal(), journal, "cluster-glue {request:?}");
        assert_eq!(vigil, glue, "stonith {request:?}: vigil, then cluster-glue");
        assert_eq!(vigil.rc, 0, "{vigil:?}");
    }
    // A host the script does not list is refused before the chassis is touched.
    let args = with(&["-T", "off", "node8"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(stonith(Side::Vigil, &args, Input::Null).rc, 4);
    assert!(bmc.take_journal().is_empty());
    assert_eq!(bmc.power_status().as_deref(), Some("on"));
}
