//! The process runner against real processes: deadlines, process groups, strays and
//! reaping. The scripts start their background processes from a subshell that exits at
//! once, so those become orphans of this test (see `become_subreaper`) and only the test can
//! reap them and see how they died. Timing bounds here are liveness checks (a run that should take a second must
//! not take the 1000 s its stray would), kept generous for a busy machine.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Ended, already_reaped, become_subreaper, fixtures, is_alive, pids, wait_ended};
use vigil_agents::process::{ProcessError, ProcessExit, ProcessRequest, TERM_GRACE, run};

/// Far below the `sleep 1000` the scripts leave behind.
const PROMPT: Duration = Duration::from_secs(60);

fn sh(script: &str, timeout: Duration) -> ProcessRequest {
    ProcessRequest {
        program: PathBuf::from("/bin/sh"),
        args: vec!["-c".into(), script.into()],
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        clear_env: true,
        timeout,
        max_output: 64 * 1024,
    }
}

#[test]
fn timeout_kills_the_whole_group_including_a_grandchild() {
    become_subreaper();
    let output = run(&sh(
        "echo $$; (sleep 1000 & echo $!); exec sleep 999",
        Duration::from_millis(500),
    ))
    .unwrap();
    assert_eq!(output.exit, ProcessExit::TimedOut);
    let [leader, grandchild] = pids(&output.stdout)[..] else {
        panic!("unexpected output {:?}", output.stdout);
    };
    assert!(already_reaped(leader), "the script was not reaped");
    assert!(!is_alive(leader));
    assert_eq!(wait_ended(grandchild), Ended::Signal(libc::SIGTERM));
    assert!(output.elapsed < PROMPT, "{:?}", output.elapsed);
}

#[test]
fn processes_ignoring_sigterm_are_killed_after_the_grace() {
    become_subreaper();
    let output = run(&sh(
        "echo $$; ( (trap '' TERM; exec sleep 1000) & echo $! ); \
         trap '' TERM; while :; do sleep 1; done",
        Duration::from_millis(300),
    ))
    .unwrap();
    assert_eq!(output.exit, ProcessExit::TimedOut);
    let [leader, grandchild] = pids(&output.stdout)[..] else {
        panic!("unexpected output {:?}", output.stdout);
    };
    assert!(already_reaped(leader), "the script was not reaped");
    assert_eq!(wait_ended(grandchild), Ended::Signal(libc::SIGKILL));
    assert!(
        output.elapsed >= TERM_GRACE,
        "SIGKILL came before the grace ended"
    );
    assert!(output.elapsed < PROMPT, "{:?}", output.elapsed);
}

#[test]
fn a_stray_holding_the_output_does_not_hold_the_caller() {
    become_subreaper();
    let output = run(&sh(
        "sleep 1000 & echo $!; exit 4",
        Duration::from_secs(600),
    ))
    .unwrap();
    assert_eq!(output.exit, ProcessExit::Code(4));
    assert!(output.elapsed < PROMPT, "{:?}", output.elapsed);
    let [stray] = pids(&output.stdout)[..] else {
        panic!("unexpected output {:?}", output.stdout);
    };
    assert_eq!(wait_ended(stray), Ended::Signal(libc::SIGKILL));
}

#[test]
fn a_background_process_that_let_go_of_the_output_keeps_running() {
    become_subreaper();
    let output = run(&sh(
        "sleep 1000 </dev/null >/dev/null 2>&1 & echo $!",
        Duration::from_secs(600),
    ))
    .unwrap();
    assert_eq!(output.exit, ProcessExit::Code(0));
    let [service] = pids(&output.stdout)[..] else {
        panic!("unexpected output {:?}", output.stdout);
    };
    let mut status = 0;
    // SAFETY: waitpid writes the status into a local integer.
    let still_running = unsafe { libc::waitpid(service, &mut status, libc::WNOHANG) } == 0;
    assert!(still_running, "the started service was killed");
    // SAFETY: signals the process this test just proved to be its own running orphan.
    unsafe { libc::kill(service, libc::SIGKILL) };
    assert_eq!(wait_ended(service), Ended::Signal(libc::SIGKILL));
}

#[test]
fn the_runner_is_never_left_with_a_zombie() {
    for script in ["exit 0", "kill -9 $$", "exec sleep 1000"] {
        let output = run(&sh(
            &format!("echo $$; {script}"),
            Duration::from_millis(300),
        ))
        .unwrap();
        let [leader] = pids(&output.stdout)[..] else {
            panic!("unexpected output {:?}", output.stdout);
        };
        assert!(already_reaped(leader), "{script}: not reaped");
    }
}

#[test]
fn a_flood_of_output_is_cut_at_the_limit_without_blocking_the_child() {
    let mut request = sh(
        "head -c 5000000 /dev/zero; head -c 3000000 /dev/zero >&2; exit 0",
        Duration::from_secs(600),
    );
    request.max_output = 1000;
    let output = run(&request).unwrap();
    assert_eq!(output.exit, ProcessExit::Code(0));
    assert_eq!(output.stdout.len(), 1000);
    assert_eq!(output.stderr.len(), 1000);
}

#[test]
fn descriptors_of_the_caller_are_not_inherited() {
    // SAFETY: opens /dev/null without O_CLOEXEC, as a careless library in the daemon could;
    // the descriptor is closed below.
    let leaked = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
    assert!(leaked > 2);
    let output = run(&sh(
        &format!("if [ -e /proc/self/fd/{leaked} ]; then echo inherited; else echo closed; fi"),
        Duration::from_secs(60),
    ));
    // SAFETY: closes the descriptor opened above.
    unsafe { libc::close(leaked) };
    assert_eq!(output.unwrap().stdout, b"closed\n");
}

#[test]
fn signals_the_caller_ignores_are_reset_for_the_child() {
    // An ignored disposition survives exec; the runner must reset it, or a script could
    // not be stopped by a signal the daemon happens to ignore.
    // SAFETY: ignoring SIGUSR2 in this test process affects nothing else it does.
    unsafe { libc::signal(libc::SIGUSR2, libc::SIG_IGN) };
    let output = run(&sh("kill -USR2 $$; echo survived", Duration::from_secs(60))).unwrap();
    assert_eq!(output.exit, ProcessExit::Signal(libc::SIGUSR2));
}

#[test]
fn a_file_without_execute_permission_is_refused_by_name() {
    let program = fixtures().join("ha.d/resource.d/not-executable");
    let err = run(&ProcessRequest {
        program: program.clone(),
        ..sh("", Duration::from_secs(60))
    })
    .unwrap_err();
    assert!(matches!(err, ProcessError::NotExecutable { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&program.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_bare_program_name_is_searched_in_the_requests_path() {
    let output = run(&ProcessRequest {
        program: PathBuf::from("echo"),
        args: vec!["found".into()],
        ..sh("", Duration::from_secs(60))
    })
    .unwrap();
    assert_eq!(output.stdout, b"found\n");
    let err = run(&ProcessRequest {
        program: PathBuf::from("vigil-no-such-program"),
        ..sh("", Duration::from_secs(60))
    })
    .unwrap_err();
    assert!(matches!(err, ProcessError::NotFound { .. }), "{err:?}");
}
