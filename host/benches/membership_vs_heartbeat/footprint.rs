//! The footprint part: what one idle node costs, in memory and CPU, from `/proc`.
//!
//! Owns reading a process's memory and CPU time from `/proc`, and the footprint tables. Every
//! process of a node counts (Heartbeat runs several), every thread of each (vigil runs one
//! process with several threads).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use crate::cluster::{ACTIVE_TIMEOUT, Bench, MIN_VICTIM_UPTIME};
use crate::common::{Summary, load_average};
use crate::{Implementation, Timing};

/// Reads a `Key:   value kB` field of a `/proc` file, in kB.
fn proc_kb(path: &str, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// utime + stime of a process (all its threads, the dead ones included), in clock ticks.
fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // After the command: state is field 3 of stat(5), utime 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Time on a CPU of the live threads of a process, in ns (schedstat: finer than ticks).
fn cpu_ns(pid: i32) -> u64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|task| {
            let path = task.ok()?.path().join("schedstat");
            fs::read_to_string(path)
                .ok()?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// The kernel's clock ticks per second.
fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).unwrap_or(100).max(1)
}

/// The memory of one process at the end of a window.
#[derive(Debug, Clone)]
struct ProcessMemory {
    /// The process.
    pid: i32,
    /// Its command name (`/proc/PID/comm`).
    command: String,
    /// Its threads.
    threads: u64,
    /// `VmRSS`: resident memory, shared pages counted in full.
    rss_kb: u64,
    /// `RssAnon`: resident anonymous memory (heap, stacks).
    anon_kb: u64,
    /// `RssFile`: resident file pages (the program and its libraries).
    file_kb: u64,
    /// `RssShmem`: resident shared memory.
    shmem_kb: u64,
    /// `Pss` of `smaps_rollup`: shared pages divided between the processes that map them.
    pss_kb: u64,
    /// `VmLck`: locked memory (Heartbeat locks its pages).
    locked_kb: u64,
}

impl ProcessMemory {
    /// Reads the process's memory from `/proc`, `None` when it is gone.
    fn of(pid: i32) -> Option<ProcessMemory> {
        let status = format!("/proc/{pid}/status");
        Some(ProcessMemory {
            pid,
            command: fs::read_to_string(format!("/proc/{pid}/comm"))
                .ok()?
                .trim()
                .to_string(),
            threads: proc_kb(&status, "Threads").unwrap_or(0),
            rss_kb: proc_kb(&status, "VmRSS")?,
            anon_kb: proc_kb(&status, "RssAnon").unwrap_or(0),
            file_kb: proc_kb(&status, "RssFile").unwrap_or(0),
            shmem_kb: proc_kb(&status, "RssShmem").unwrap_or(0),
            pss_kb: proc_kb(&format!("/proc/{pid}/smaps_rollup"), "Pss").unwrap_or(0),
            locked_kb: proc_kb(&status, "VmLck").unwrap_or(0),
        })
    }
}

/// One node's idle footprint over a window.
struct Footprint {
    /// Which daemon was measured.
    implementation: Implementation,
    /// At which timing.
    timing: Timing,
    /// How long.
    window: Duration,
    /// Processes at the start and at the end of the window.
    processes: (usize, usize),
    /// The mean of the total VmRSS sampled through the window, and its maximum.
    rss_mean_kb: f64,
    /// The largest total VmRSS sampled.
    rss_max_kb: u64,
    /// Per process at the end.
    memory: Vec<ProcessMemory>,
    /// CPU % of one core from utime+stime, and from schedstat.
    cpu_percent_ticks: f64,
    /// CPU % of one core from schedstat.
    cpu_percent_schedstat: f64,
    /// The same for the other node: which of the two wakes less depends on whose heartbeat
    /// goes first, so both are reported.
    peer_cpu_percent_ticks: f64,
    /// The other node's CPU % from schedstat.
    peer_cpu_percent_schedstat: f64,
    /// The other node's total VmRSS at the end.
    peer_rss_kb: u64,
    /// The load average before and after the window.
    load: (String, String),
}

/// Sum of VmRSS over processes, in kB.
pub(crate) fn total_rss_kb(pids: &[i32]) -> u64 {
    pids.iter()
        .filter_map(|pid| proc_kb(&format!("/proc/{pid}/status"), "VmRSS"))
        .sum()
}

/// CPU use of a set of processes from one moment to another.
pub(crate) struct CpuSample {
    /// When it was taken.
    at: Instant,
    /// utime + stime per process, in ticks.
    ticks: BTreeMap<i32, u64>,
    /// schedstat run time per process (its live threads), in ns.
    ns: BTreeMap<i32, u64>,
}

impl CpuSample {
    /// Reads the CPU time of `pids` now.
    pub(crate) fn take(pids: &[i32]) -> CpuSample {
        CpuSample {
            at: Instant::now(),
            ticks: pids
                .iter()
                .filter_map(|&pid| Some((pid, cpu_ticks(pid)?)))
                .collect(),
            ns: pids.iter().map(|&pid| (pid, cpu_ns(pid))).collect(),
        }
    }

    /// CPU % of one core between `self` and `later`, from ticks and from schedstat, over the
    /// processes present in both.
    pub(crate) fn percent_until(&self, later: &CpuSample) -> (f64, f64) {
        let wall = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let ticks: u64 = later
            .ticks
            .iter()
            .filter_map(|(pid, &t)| Some(t.saturating_sub(*self.ticks.get(pid)?)))
            .sum();
        let ns: u64 = later
            .ns
            .iter()
            .filter_map(|(pid, &n)| Some(n.saturating_sub(*self.ns.get(pid)?)))
            .sum();
        (
            ticks as f64 / clock_ticks_per_second() as f64 / wall * 100.0,
            ns as f64 / 1e9 / wall * 100.0,
        )
    }
}

/// Measures node 1 of an idle pair of `implementation` at `timing` over `window`.
fn footprint(
    bench: &mut Bench<'_>,
    implementation: Implementation,
    timing: Timing,
    window: Duration,
) -> Result<Footprint, String> {
    let pair = bench.start_pair(implementation, timing);
    pair.await_active(ACTIVE_TIMEOUT)?;
    pair.await_uptime();
    thread::sleep(Duration::from_secs(3));
    let load_before = load_average();
    let pids = pair.observer.pids();
    let peer_pids = pair.victim.pids();
    let start = CpuSample::take(&pids);
    let peer_start = CpuSample::take(&peer_pids);
    let began = Instant::now();
    let mut rss_samples = Vec::new();
    while began.elapsed() < window {
        rss_samples.push(total_rss_kb(&pids));
        thread::sleep(Duration::from_secs(1).min(window.saturating_sub(began.elapsed())));
    }
    let end_pids = pair.observer.pids();
    let end = CpuSample::take(&end_pids);
    let peer_end = CpuSample::take(&peer_pids);
    rss_samples.push(total_rss_kb(&end_pids));
    let (cpu_percent_ticks, cpu_percent_schedstat) = start.percent_until(&end);
    let (peer_cpu_percent_ticks, peer_cpu_percent_schedstat) = peer_start.percent_until(&peer_end);
    Ok(Footprint {
        implementation,
        timing,
        window,
        processes: (pids.len(), end_pids.len()),
        rss_mean_kb: rss_samples.iter().sum::<u64>() as f64 / rss_samples.len() as f64,
        rss_max_kb: rss_samples.iter().copied().max().unwrap_or(0),
        memory: end_pids
            .iter()
            .filter_map(|&pid| ProcessMemory::of(pid))
            .collect(),
        cpu_percent_ticks,
        cpu_percent_schedstat,
        peer_cpu_percent_ticks,
        peer_cpu_percent_schedstat,
        peer_rss_kb: total_rss_kb(&peer_pids),
        load: (load_before, load_average()),
    })
}

/// kB to MiB, for the tables.
pub(crate) fn mib(kb: f64) -> f64 {
    kb / 1024.0
}

/// The windows of one implementation at one timing, summed up.
struct WindowsSummary {
    implementation: Implementation,
    timing: Timing,
    /// The windows' mean RSS, in kB.
    rss_kb: Summary,
    /// Node1's CPU (schedstat) per window, in % of a core.
    cpu_percent: Summary,
    /// Node2's CPU (schedstat) per window.
    peer_cpu_percent: Summary,
    /// The mean of the two nodes' CPU per window: what a node of the pair costs.
    pair_cpu_percent: Summary,
}

impl WindowsSummary {
    fn of(results: &[Footprint], implementation: Implementation, timing: Timing) -> Option<Self> {
        let windows = || {
            results
                .iter()
                .filter(move |f| f.implementation == implementation && f.timing == timing)
        };
        Some(WindowsSummary {
            implementation,
            timing,
            rss_kb: Summary::of(windows().map(|f| f.rss_mean_kb))?,
            cpu_percent: Summary::of(windows().map(|f| f.cpu_percent_schedstat))?,
            peer_cpu_percent: Summary::of(windows().map(|f| f.peer_cpu_percent_schedstat))?,
            pair_cpu_percent: Summary::of(
                windows().map(|f| (f.cpu_percent_schedstat + f.peer_cpu_percent_schedstat) / 2.0),
            )?,
        })
    }
}

/// The footprint part: both implementations at both common timings, `runs` windows of
/// `seconds` each, every window on a freshly started pair. One window says little about
/// CPU: the two nodes' keepalive timers keep the phase they started with, and that phase
/// decides how often a node's sending, its peer's frame and its own timer fall into one
/// wake-up, so windows of one binary differ by up to half (the same holds for a bare C
/// loop doing only the unavoidable system calls). The summary gives medians over windows.
pub(crate) fn footprint_part(
    bench: &mut Bench<'_>,
    implementations: &[Implementation],
    seconds: u64,
    runs: usize,
) {
    let window = Duration::from_secs(seconds);
    eprintln!("footprint: {runs} window(s) of {seconds} s per implementation and timing");
    let mut results = Vec::new();
    for run in 1..=runs {
        for timing in [Timing::SUBSECOND, Timing::SECONDS] {
            for &implementation in implementations {
                match footprint(bench, implementation, timing, window) {
                    Ok(f) => {
                        eprintln!(
                            "  window {run}: {implementation} at {timing}: CPU {:.3} % node1, {:.3} % node2 (schedstat)",
                            f.cpu_percent_schedstat, f.peer_cpu_percent_schedstat
                        );
                        results.push(f);
                    }
                    Err(e) => {
                        println!("{implementation} at {timing}: footprint not measured: {e}");
                    }
                }
            }
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "## Idle footprint of one node\n");
    let _ = writeln!(
        out,
        "Node1 of an idle 2-node cluster, after both nodes ran more than {} s. RSS: sum of \
         VmRSS of every process of the node (PSS, which shares library pages, beside it), mean \
         of 1 s samples. CPU: utime+stime of every process over the window / wall time, as % of \
         one core ({} ticks/s; schedstat, in ns, beside it).\n",
        MIN_VICTIM_UPTIME.as_secs(),
        clock_ticks_per_second()
    );
    let _ = writeln!(
        out,
        "| implementation | timing | window s | processes | threads | RSS MiB (mean / max) | PSS MiB | CPU % of a core (ticks) | CPU % (schedstat) | node2: RSS MiB, CPU % (ticks), CPU % (schedstat) | load avg before → after |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
    for f in &results {
        let threads: u64 = f.memory.iter().map(|m| m.threads).sum();
        let pss: u64 = f.memory.iter().map(|m| m.pss_kb).sum();
        let processes = if f.processes.0 == f.processes.1 {
            f.processes.0.to_string()
        } else {
            format!("{} → {}", f.processes.0, f.processes.1)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {processes} | {threads} | {:.2} / {:.2} | {:.2} | {:.3} | {:.3} | {:.2}, {:.3}, {:.3} | {} → {} |",
            f.implementation,
            f.timing,
            f.window.as_secs(),
            mib(f.rss_mean_kb),
            mib(f.rss_max_kb as f64),
            mib(pss as f64),
            f.cpu_percent_ticks,
            f.cpu_percent_schedstat,
            mib(f.peer_rss_kb as f64),
            f.peer_cpu_percent_ticks,
            f.peer_cpu_percent_schedstat,
            f.load.0,
            f.load.1
        );
    }
    let _ = writeln!(
        out,
        "\nMedian over windows (CPU: schedstat, % of a core; min–max beside it). Node1 and node2 \
         differ by role: the node whose heartbeat follows its peer's wakes once per period, \
         the other twice. The pair's mean is what a node costs.\n\n\
         | implementation | timing | windows | RSS MiB (median of means) | node1 CPU % (median) | node1 min–max | node2 CPU % (median) | node2 min–max | CPU % per node, pair mean (median) | pair mean min–max |\n\
         |---|---|---|---|---|---|---|---|---|---|"
    );
    let summaries: Vec<WindowsSummary> = [Timing::SUBSECOND, Timing::SECONDS]
        .into_iter()
        .flat_map(|timing| {
            implementations
                .iter()
                .filter_map(|&implementation| WindowsSummary::of(&results, implementation, timing))
                .collect::<Vec<_>>()
        })
        .collect();
    for summary in &summaries {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} | {:.3} | {:.3}–{:.3} | {:.3} | {:.3}–{:.3} | {:.3} | {:.3}–{:.3} |",
            summary.implementation,
            summary.timing,
            summary.cpu_percent.count,
            mib(summary.rss_kb.median),
            summary.cpu_percent.median,
            summary.cpu_percent.min,
            summary.cpu_percent.max,
            summary.peer_cpu_percent.median,
            summary.peer_cpu_percent.min,
            summary.peer_cpu_percent.max,
            summary.pair_cpu_percent.median,
            summary.pair_cpu_percent.min,
            summary.pair_cpu_percent.max
        );
    }
    let _ = writeln!(
        out,
        "\nRatio Heartbeat / vigil (medians; PSS and ticks: first window):\n"
    );
    let _ = writeln!(
        out,
        "| timing | RSS | PSS | CPU (ticks, node1) | CPU (schedstat, pair mean) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for timing in [Timing::SUBSECOND, Timing::SECONDS] {
        let find = |implementation| {
            results
                .iter()
                .find(|f| f.implementation == implementation && f.timing == timing)
        };
        let summary = |implementation| {
            summaries
                .iter()
                .find(|s| s.implementation == implementation && s.timing == timing)
        };
        if let (Some(v), Some(h), Some(vs), Some(hs)) = (
            find(Implementation::Vigil),
            find(Implementation::Heartbeat),
            summary(Implementation::Vigil),
            summary(Implementation::Heartbeat),
        ) {
            let ratio = |a: f64, b: f64| {
                if b > 0.0 {
                    format!("{:.1}", a / b)
                } else {
                    "∞".into()
                }
            };
            let pss = |f: &Footprint| f.memory.iter().map(|m| m.pss_kb).sum::<u64>() as f64;
            let _ = writeln!(
                out,
                "| {timing} | {} | {} | {} | {} |",
                ratio(hs.rss_kb.median, vs.rss_kb.median),
                ratio(pss(h), pss(v)),
                ratio(h.cpu_percent_ticks, v.cpu_percent_ticks),
                ratio(hs.pair_cpu_percent.median, vs.pair_cpu_percent.median)
            );
        }
    }
    let _ = writeln!(out, "\nProcesses of node1 at the end of the window (kB):\n");
    let _ = writeln!(
        out,
        "| implementation | timing | pid | command | threads | VmRSS | RssAnon | RssFile | RssShmem | Pss | VmLck |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
    for f in &results {
        for m in &f.memory {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                f.implementation,
                f.timing,
                m.pid,
                m.command,
                m.threads,
                m.rss_kb,
                m.anon_kb,
                m.file_kb,
                m.shmem_kb,
                m.pss_kb,
                m.locked_kb
            );
        }
    }
    println!("{out}");
}
