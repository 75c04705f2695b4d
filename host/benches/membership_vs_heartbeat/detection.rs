//! The detection part: how long after a node dies its peer declares it dead.
//!
//! Owns killing the victim (SIGSTOP of all its processes, then its link cut), timestamping the
//! death on CLOCK_REALTIME, the two ways of seeing the declaration (`cl_status` polled, the
//! `is dead` log line), and the detection tables, including the one try of the fast setting
//! on Heartbeat.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cluster::{ACTIVE_TIMEOUT, Bench, MIN_VICTIM_UPTIME, Pair, scan_log};
use crate::common::{Summary, load_average};
use crate::support::{ClStatus, signal_process};
use crate::{Implementation, Timing};

/// How often the observer's `cl_status nodestatus` is asked during a detection trial.
const STATUS_POLL_INTERVAL: Duration = Duration::from_millis(5);

/// How often the observer's log file is looked at for new lines during a detection trial.
const LOG_POLL_INTERVAL: Duration = Duration::from_millis(1);

/// How long after the deadtime a trial waits for the declaration before giving up.
const DETECTION_GRACE: Duration = Duration::from_secs(15);

/// How long the fast setting is watched on Heartbeat before its one detection trial.
const FAST_HEARTBEAT_WATCH: Duration = Duration::from_secs(20);

/// What one detection trial observed, each latency measured from the death.
#[derive(Debug, Clone, Default)]
struct Trial {
    /// To the end of the first `cl_status nodestatus` poll, started after the death, that
    /// said `dead`.
    polled: Option<Duration>,
    /// To the timestamp the observer wrote on its `is dead` line (vigil only: Heartbeat's
    /// log has whole seconds).
    stamped: Option<Duration>,
    /// To the moment the harness saw the `is dead` line appear in the observer's log.
    seen_in_log: Option<Duration>,
    /// Durations of the `cl_status` polls of the trial.
    poll_round_trips: Vec<Duration>,
    /// Polls that said `dead` before the death (a flapping peer).
    dead_before_death: usize,
    /// `is dead` lines that appeared before the death.
    lines_before_death: usize,
    /// The observer's `is dead` line, for the record.
    line: Option<String>,
}

/// The two ways the harness sees a death declared.
#[derive(Debug, Clone, Copy)]
enum Method {
    /// `cl_status nodestatus` on the observer, polled: the same for both implementations.
    StatusPoll,
    /// The observer's `is dead` log line: vigil's own timestamp on it; for Heartbeat, whose
    /// timestamps have whole seconds, the moment the line appeared in its log.
    LogLine,
}

impl Method {
    /// Both methods, in table order.
    const ALL: [Method; 2] = [Method::StatusPoll, Method::LogLine];

    /// The latency of `trial` this way, if it saw the declaration.
    fn latency(self, trial: &Trial) -> Option<Duration> {
        match self {
            Method::StatusPoll => trial.polled,
            Method::LogLine => trial.stamped.or(trial.seen_in_log),
        }
    }

    /// The name of the method in the tables.
    fn label(self, implementation: Implementation) -> &'static str {
        match (self, implementation) {
            (Method::StatusPoll, _) => "(a) cl_status poll",
            (Method::LogLine, Implementation::Vigil) => "(b) log line, own timestamp",
            (Method::LogLine, Implementation::Heartbeat) => "(b) log line, seen in ha-log",
        }
    }
}

/// What the `cl_status` poller saw.
#[derive(Debug, Default)]
struct PollRecord {
    /// When the first poll started after the death that said `dead` ended.
    first_dead_after_death: Option<SystemTime>,
    /// How long each poll took.
    round_trips: Vec<Duration>,
    /// Polls that said `dead` before the death.
    dead_before_death: usize,
}

/// What the log watcher saw.
#[derive(Debug, Default)]
struct LogRecord {
    /// The first matching line that appeared after the death, and when it was seen.
    first_line_after_death: Option<(SystemTime, String)>,
    /// Matching lines that appeared before the death.
    lines_before_death: usize,
}

/// Asks `view` for `node`'s status every [`STATUS_POLL_INTERVAL`] until a poll started after
/// the death says `dead`, or until `deadline`.
fn poll_until_dead(
    view: &dyn ClStatus,
    node: &str,
    death: &OnceLock<SystemTime>,
    deadline: Instant,
) -> PollRecord {
    let mut record = PollRecord::default();
    loop {
        let started = SystemTime::now();
        let clock = Instant::now();
        let (status, _) = view.node_status(node);
        let ended = SystemTime::now();
        record.round_trips.push(clock.elapsed());
        if status == "dead" {
            match death.get() {
                Some(&died) if started >= died => {
                    record.first_dead_after_death = Some(ended);
                    return record;
                }
                _ => record.dead_before_death += 1,
            }
        }
        if Instant::now() > deadline {
            return record;
        }
        if let Some(rest) = STATUS_POLL_INTERVAL.checked_sub(clock.elapsed()) {
            thread::sleep(rest);
        }
    }
}

/// Watches the log at `path` from `offset` for a line containing `needle`, every
/// [`LOG_POLL_INTERVAL`], until one appears after the death or until `deadline`.
fn watch_log(
    path: &Path,
    mut offset: u64,
    needle: &str,
    death: &OnceLock<SystemTime>,
    deadline: Instant,
) -> LogRecord {
    let mut record = LogRecord::default();
    let mut partial = Vec::new();
    while Instant::now() < deadline {
        let len = fs::metadata(path).map_or(0, |m| m.len());
        if len > offset
            && let Ok(mut file) = File::open(path)
            && file.seek(SeekFrom::Start(offset)).is_ok()
        {
            let mut fresh = Vec::new();
            let _ = file.read_to_end(&mut fresh);
            let seen = SystemTime::now();
            offset += fresh.len() as u64;
            partial.extend_from_slice(&fresh);
            while let Some(end) = partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = partial.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line).trim_end().to_string();
                if !line.contains(needle) {
                    continue;
                }
                match death.get() {
                    Some(&died) if seen > died => {
                        record.first_line_after_death = Some((seen, line));
                        return record;
                    }
                    _ => record.lines_before_death += 1,
                }
            }
        }
        thread::sleep(LOG_POLL_INTERVAL);
    }
    record
}

/// The time in an RFC 3339 UTC timestamp at the start of a vigil log line
/// (`2026-11-23T18:17:40.476866Z`).
fn parse_log_timestamp(line: &str) -> Option<SystemTime> {
    let stamp = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut date_parts = date.splitn(3, '-').map(str::parse::<i64>);
    let (year, month, day) = (
        date_parts.next()?.ok()?,
        date_parts.next()?.ok()?,
        date_parts.next()?.ok()?,
    );
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut clock_parts = clock.splitn(3, ':').map(str::parse::<i64>);
    let (hour, minute, second) = (
        clock_parts.next()?.ok()?,
        clock_parts.next()?.ok()?,
        clock_parts.next()?.ok()?,
    );
    let nanos = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction.chars().take(9).collect();
        digits.parse::<u32>().ok()? * 10u32.pow(9 - u32::try_from(digits.len()).ok()?)
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()?;
    Some(UNIX_EPOCH + Duration::new(seconds, nanos))
}

/// A pseudo-random delay below `bound`, so deaths fall at every phase of the heartbeat cycle.
fn random_phase(bound: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let bound_us = u64::try_from(bound.as_micros()).unwrap_or(u64::MAX).max(1);
    Duration::from_micros(nanos.wrapping_mul(2_654_435_761) % bound_us)
}

/// Kills the pair's victim — SIGSTOP of every process of its daemon, then its link cut —
/// while the observer is polled and its log watched, and measures when it was declared dead.
/// The victim is started again afterwards.
fn detection_trial(bench: &Bench<'_>, pair: &mut Pair, timing: Timing) -> Result<Trial, String> {
    pair.await_active(ACTIVE_TIMEOUT)?;
    pair.await_uptime();
    let observer = &pair.observer;
    let victim_name = pair.victim.name().to_string();
    let needle = format!("node {victim_name}: is dead");
    let death = OnceLock::new();
    let deadline = Instant::now() + timing.deadtime_time + DETECTION_GRACE;
    let log_offset = observer.log_len();
    let (polls, log) = thread::scope(|scope| {
        let poller =
            scope.spawn(|| poll_until_dead(observer.view(), &victim_name, &death, deadline));
        let watcher =
            scope.spawn(|| watch_log(&observer.log, log_offset, &needle, &death, deadline));
        thread::sleep(Duration::from_millis(300) + random_phase(timing.keepalive_time));
        let pids = pair.victim.pids();
        for &pid in &pids {
            signal_process(pid, libc::SIGSTOP);
        }
        let _ = death.set(SystemTime::now());
        bench.lab.cut(pair.victim.net());
        (
            poller.join().unwrap_or_default(),
            watcher.join().unwrap_or_default(),
        )
    });
    let died = death
        .get()
        .copied()
        .ok_or_else(|| "the death was not recorded".to_string())?;
    pair.victim.kill();
    bench.lab.heal(pair.victim.net());
    pair.victim.start_again();

    let since_death = |at: SystemTime| at.duration_since(died).ok();
    let (stamped, seen_in_log, line) = match log.first_line_after_death {
        Some((seen, line)) => (
            parse_log_timestamp(&line).and_then(since_death),
            since_death(seen),
            Some(line),
        ),
        None => (None, None, None),
    };
    Ok(Trial {
        polled: polls.first_dead_after_death.and_then(since_death),
        stamped,
        seen_in_log,
        poll_round_trips: polls.round_trips,
        dead_before_death: polls.dead_before_death,
        lines_before_death: log.lines_before_death,
        line,
    })
}

/// The trials of one implementation at one timing.
struct DetectionSeries {
    /// Which daemon was measured.
    implementation: Implementation,
    /// At which timing.
    timing: Timing,
    /// The trials that completed.
    trials: Vec<Trial>,
    /// Why trials stopped early, if they did.
    failure: Option<String>,
}

impl DetectionSeries {
    /// The latencies seen by `method` over the trials where it saw the declaration.
    fn summary(&self, method: Method) -> Option<Summary> {
        Summary::of(
            self.trials
                .iter()
                .filter_map(|t| method.latency(t))
                .map(as_ms),
        )
    }
}

/// Runs `trials` detection trials of `implementation` at `timing` on a fresh pair.
fn detection_series(
    bench: &mut Bench<'_>,
    implementation: Implementation,
    timing: Timing,
    trials: usize,
) -> DetectionSeries {
    let mut series = DetectionSeries {
        implementation,
        timing,
        trials: Vec::new(),
        failure: None,
    };
    let mut pair = bench.start_pair(implementation, timing);
    for index in 1..=trials {
        match detection_trial(bench, &mut pair, timing) {
            Ok(trial) => {
                eprintln!(
                    "  {implementation} {timing} trial {index}: cl_status {}, log line {}{}",
                    ms_or_dash(Method::StatusPoll.latency(&trial)),
                    ms_or_dash(Method::LogLine.latency(&trial)),
                    if trial.dead_before_death + trial.lines_before_death > 0 {
                        " (peer seen dead before the death)"
                    } else {
                        ""
                    }
                );
                series.trials.push(trial);
            }
            Err(e) => {
                series.failure = Some(e);
                break;
            }
        }
    }
    series
}

/// A latency for the progress lines, `-` when there is none.
fn ms_or_dash(value: Option<Duration>) -> String {
    value.map_or_else(
        || "-".into(),
        |d| format!("{:.1} ms", d.as_secs_f64() * 1e3),
    )
}

/// What Heartbeat did at the fast setting.
struct FastHeartbeat {
    /// How long until both nodes saw both active, if they did.
    active_after: Option<Duration>,
    /// Over the watch: `is dead` lines in both logs.
    dead_lines: usize,
    /// Over the watch: late-heartbeat warnings in both logs.
    late_lines: usize,
    /// The longest interval those warnings reported, in ms.
    longest_interval_ms: Option<u64>,
    /// Over the watch: polls of the peer's status that were not `active`.
    not_active_polls: usize,
    /// Over the watch: all polls of the peer's status.
    polls: usize,
    /// The most frequent warnings and errors, with counts.
    notable: Vec<(String, usize)>,
    /// One detection trial, if the cluster was active at the end of the watch.
    trial: Option<Result<Trial, String>>,
}

/// Starts Heartbeat at the fast setting, watches it idle, and tries one detection trial.
fn fast_heartbeat(bench: &mut Bench<'_>) -> FastHeartbeat {
    let mut report = FastHeartbeat {
        active_after: None,
        dead_lines: 0,
        late_lines: 0,
        longest_interval_ms: None,
        not_active_polls: 0,
        polls: 0,
        notable: Vec::new(),
        trial: None,
    };
    let started = Instant::now();
    let mut pair = bench.start_pair(Implementation::Heartbeat, Timing::FAST);
    if pair.await_active(Duration::from_secs(15)).is_ok() {
        report.active_after = Some(started.elapsed());
    }
    let offsets = [pair.observer.log_len(), pair.victim.log_len()];
    let watch_start = Instant::now();
    while watch_start.elapsed() < FAST_HEARTBEAT_WATCH {
        for (observer, peer) in [
            (&pair.observer, &pair.victim),
            (&pair.victim, &pair.observer),
        ] {
            let (status, _) = observer.view().node_status(peer.name());
            report.polls += 1;
            if status != "active" {
                report.not_active_polls += 1;
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
    let logs = [
        pair.observer.log_since(offsets[0]),
        pair.victim.log_since(offsets[1]),
    ];
    let mut notable: BTreeMap<String, usize> = BTreeMap::new();
    for (log, peer) in [
        (&logs[0], pair.victim.name()),
        (&logs[1], pair.observer.name()),
    ] {
        let scan = scan_log(log, peer);
        report.dead_lines += scan.dead_lines;
        report.late_lines += scan.late_lines;
        report.longest_interval_ms = report.longest_interval_ms.max(scan.longest_interval_ms);
        for (message, count) in scan.warnings {
            *notable.entry(message).or_default() += count;
        }
    }
    let mut notable: Vec<(String, usize)> = notable.into_iter().collect();
    notable.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    notable.truncate(8);
    report.notable = notable;
    report.trial = Some(detection_trial(bench, &mut pair, Timing::FAST));
    report
}

/// The detection part: every implementation at both common timings, vigil at the fast one,
/// and one try of the fast one on Heartbeat.
pub(crate) fn detection_part(
    bench: &mut Bench<'_>,
    implementations: &[Implementation],
    trials: usize,
    heartbeat_installed: bool,
) {
    eprintln!("detection: {trials} trials per implementation and timing");
    let load_before = load_average();
    let mut all = Vec::new();
    for timing in [Timing::SUBSECOND, Timing::SECONDS] {
        for &implementation in implementations {
            all.push(detection_series(bench, implementation, timing, trials));
        }
    }
    all.push(detection_series(
        bench,
        Implementation::Vigil,
        Timing::FAST,
        trials,
    ));
    let fast = heartbeat_installed.then(|| fast_heartbeat(bench));

    let mut out = String::new();
    let _ = writeln!(out, "## Detection: death → declared dead\n");
    let _ = writeln!(
        out,
        "Death: SIGSTOP of every process of node2's daemon, then its bridge port detached; \
         timestamped on the harness's CLOCK_REALTIME right after the signals. Node2 had run \
         more than {} s. Declared dead, two ways: (a) the end of the first `cl_status \
         nodestatus node2` on node1, asked every {} ms, that says `dead` (the same way for \
         both); (b) the `node node2: is dead` line of node1's log — vigil's own RFC 3339 \
         timestamp, and for Heartbeat, whose log has whole seconds, the moment the line \
         appeared in ha-log (looked at every {} ms). Load average {load_before} → {}.\n",
        MIN_VICTIM_UPTIME.as_secs(),
        STATUS_POLL_INTERVAL.as_millis(),
        LOG_POLL_INTERVAL.as_millis(),
        load_average(),
    );
    let _ = writeln!(
        out,
        "| implementation | timing | method | trials | median ms | min ms | max ms | median beyond deadtime ms | max beyond deadtime ms |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for series in &all {
        let deadtime_ms = series.timing.deadtime_time.as_secs_f64() * 1e3;
        for method in Method::ALL {
            let name = method.label(series.implementation);
            match series.summary(method) {
                Some(s) => {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {name} | {} | {:.1} | {:.1} | {:.1} | {:+.1} | {:+.1} |",
                        series.implementation,
                        series.timing,
                        s.count,
                        s.median,
                        s.min,
                        s.max,
                        s.median - deadtime_ms,
                        s.max - deadtime_ms
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {name} | 0 | – | – | – | – | – |",
                        series.implementation, series.timing
                    );
                }
            }
        }
    }

    let _ = writeln!(
        out,
        "\nRatio Heartbeat / vigil of the median (method a, and b):\n"
    );
    let _ = writeln!(out, "| timing | (a) cl_status poll | (b) log line |");
    let _ = writeln!(out, "|---|---|---|");
    for timing in [Timing::SUBSECOND, Timing::SECONDS] {
        let find = |implementation| {
            all.iter()
                .find(|s| s.implementation == implementation && s.timing == timing)
        };
        let (Some(vigil), Some(heartbeat)) =
            (find(Implementation::Vigil), find(Implementation::Heartbeat))
        else {
            continue;
        };
        let ratio = |method| match (heartbeat.summary(method), vigil.summary(method)) {
            (Some(h), Some(v)) if v.median > 0.0 => format!("{:.2}", h.median / v.median),
            _ => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {timing} | {} | {} |",
            ratio(Method::StatusPoll),
            ratio(Method::LogLine)
        );
    }

    let _ = writeln!(
        out,
        "\n`cl_status` round trip during the trials (the resolution of method a):\n"
    );
    let _ = writeln!(
        out,
        "| implementation | timing | polls | median ms | max ms |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for series in &all {
        if let Some(s) = Summary::of(
            series
                .trials
                .iter()
                .flat_map(|t| t.poll_round_trips.iter().map(|&d| as_ms(d))),
        ) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.1} | {:.1} |",
                series.implementation, series.timing, s.count, s.median, s.max
            );
        }
    }
    if let Some(vigil_fast) = all
        .iter()
        .find(|s| s.implementation == Implementation::Vigil && s.timing == Timing::FAST)
        && let Some(s) = Summary::of(
            vigil_fast
                .trials
                .iter()
                .filter_map(|t| t.seen_in_log)
                .map(as_ms),
        )
    {
        let _ = writeln!(
            out,
            "\nvigil at the fast setting, `is dead` line seen in its log by the harness: \
             median {:.1} ms, max {:.1} ms (a check of method b's own timestamps).",
            s.median, s.max
        );
    }
    for series in &all {
        let flaps: usize = series
            .trials
            .iter()
            .map(|t| t.dead_before_death + t.lines_before_death)
            .sum();
        if flaps > 0 {
            let _ = writeln!(
                out,
                "\n{} at {}: the peer was reported dead {flaps} times before it died.",
                series.implementation, series.timing
            );
        }
        if let Some(failure) = &series.failure {
            let _ = writeln!(
                out,
                "\n{} at {}: trials stopped: {failure}",
                series.implementation, series.timing
            );
        }
    }
    for series in &all {
        if let Some(line) = series.trials.iter().find_map(|t| t.line.as_ref()) {
            let _ = writeln!(
                out,
                "\nsample `is dead` line of {} at {}: `{line}`",
                series.implementation, series.timing
            );
        }
    }
    if let Some(fast) = fast {
        write_fast_heartbeat(&mut out, &fast);
    }
    println!("{out}");
}

/// Writes what Heartbeat did at the fast setting.
fn write_fast_heartbeat(out: &mut String, fast: &FastHeartbeat) {
    let _ = writeln!(
        out,
        "\n### Heartbeat 3.0.6 at keepalive 10ms / deadtime 40ms (warntime 20ms, initdead 1), one try\n"
    );
    let _ = writeln!(
        out,
        "- both nodes active: {}",
        fast.active_after.map_or_else(
            || "not within 15 s".into(),
            |d| format!("after {:.1} s", d.as_secs_f64())
        )
    );
    let _ = writeln!(
        out,
        "- over {} s idle, both logs: {} `is dead` lines, {} late-heartbeat warnings (longest \
         interval {}); {} of {} `cl_status nodestatus` polls of the peer (every 100 ms) were \
         not `active`",
        FAST_HEARTBEAT_WATCH.as_secs(),
        fast.dead_lines,
        fast.late_lines,
        fast.longest_interval_ms
            .map_or_else(|| "–".into(), |ms| format!("{ms} ms")),
        fast.not_active_polls,
        fast.polls
    );
    if !fast.notable.is_empty() {
        let _ = writeln!(out, "- most frequent warnings:");
        for (message, count) in &fast.notable {
            let _ = writeln!(out, "  - {count} × `{message}`");
        }
    }
    match &fast.trial {
        Some(Ok(trial)) => {
            let _ = writeln!(
                out,
                "- one detection trial: cl_status {}, log line seen {}; before the death the \
                 peer was reported dead by {} polls and {} log lines",
                ms_or_dash(trial.polled),
                ms_or_dash(trial.seen_in_log),
                trial.dead_before_death,
                trial.lines_before_death
            );
        }
        Some(Err(e)) => {
            let _ = writeln!(out, "- detection trial not possible: {e}");
        }
        None => {}
    }
}

/// A duration in milliseconds, the unit of every table.
fn as_ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
