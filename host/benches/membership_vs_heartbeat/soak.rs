//! The soak part: a pair at the fast setting left idle for minutes, counting false deaths.
//!
//! Owns the soak's polling, what it reads back from the logs and from `vigil status --json`,
//! and its table.

use std::fmt::Write as _;
use std::thread;
use std::time::{Duration, Instant};

use crate::cluster::{ACTIVE_TIMEOUT, Bench, Member, scan_log};
use crate::common::load_average;
use crate::footprint::{CpuSample, mib, total_rss_kb};
use crate::{Implementation, Timing};

/// The soak part: a pair of `implementation` at the fast setting, idle for `minutes`,
/// counting false deaths.
pub(crate) fn soak_part(bench: &mut Bench<'_>, implementation: Implementation, minutes: u64) {
    eprintln!(
        "soak: {implementation} at {} for {minutes} min",
        Timing::FAST
    );
    let duration = Duration::from_secs(minutes * 60);
    let pair = bench.start_pair(implementation, Timing::FAST);
    if let Err(e) = pair.await_active(ACTIVE_TIMEOUT) {
        println!("## Soak: {implementation}\n\nnot run: {e}\n");
        return;
    }
    pair.await_uptime();
    let members = [&pair.observer, &pair.victim];
    let offsets = members.map(Member::log_len);
    let before = members.map(Member::vigil_status);
    let load_before = load_average();
    let pids: Vec<i32> = members.iter().flat_map(|m| m.pids()).collect();
    let cpu_start = CpuSample::take(&pids);
    let began = Instant::now();
    let mut polls = 0usize;
    let mut not_active = 0usize;
    let mut next_report = Duration::from_secs(60);
    while began.elapsed() < duration {
        for (observer, peer) in [(members[0], members[1]), (members[1], members[0])] {
            let (status, _) = observer.view().node_status(peer.name());
            polls += 1;
            if status != "active" {
                not_active += 1;
                eprintln!(
                    "  soak {:.0} s: {} sees {} {status:?}",
                    began.elapsed().as_secs_f64(),
                    observer.name(),
                    peer.name()
                );
            }
        }
        if began.elapsed() >= next_report {
            eprintln!(
                "  soak: {} of {minutes} min, {not_active} non-active polls so far",
                next_report.as_secs() / 60
            );
            next_report += Duration::from_secs(60);
        }
        thread::sleep(Duration::from_secs(1));
    }
    let cpu_end = CpuSample::take(&pids);
    let (cpu_ticks_percent, cpu_ns_percent) = cpu_start.percent_until(&cpu_end);
    let after = members.map(Member::vigil_status);
    let elapsed = began.elapsed();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Soak: {implementation} at {} (warntime 20ms, initdead 1)\n",
        Timing::FAST
    );
    let _ = writeln!(
        out,
        "Two idle {implementation} nodes for {:.1} min (load average {load_before} → {}). False deaths: \
         `is dead` lines in either log and `cl_status nodestatus` of the peer, asked on both \
         nodes every second, that was not `active`. Largest gap: the longest interval a \
         late-heartbeat warning reported (a warning is logged for every interval above \
         warntime, 20 ms).\n",
        elapsed.as_secs_f64() / 60.0,
        load_average()
    );
    let _ = writeln!(
        out,
        "| node | `is dead` lines | nodestatus not active | late heartbeats (> 20 ms) | largest gap | messages sent | received | duplicates | acks sent | rexmit requested | rexmit sent | dropped |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut total_dead = 0;
    let mut warnings = Vec::new();
    for (index, member) in members.iter().enumerate() {
        let peer = members[1 - index];
        let scan = scan_log(&member.log_since(offsets[index]), peer.name());
        total_dead += scan.dead_lines;
        // Heartbeat has no counters to ask for: its columns say so.
        let counter = |name: &str| {
            let get = |status: &Option<serde_json::Value>| {
                status.as_ref()?["membership"]["counters"][name].as_u64()
            };
            match (get(&before[index]), get(&after[index])) {
                (Some(b), Some(a)) => a.saturating_sub(b).to_string(),
                _ => "–".to_string(),
            }
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            member.name(),
            scan.dead_lines,
            if index == 0 {
                format!("{not_active} of {polls} (both nodes)")
            } else {
                "".into()
            },
            scan.late_lines,
            scan.longest_interval_ms
                .map_or_else(|| "< 20 ms (no warning)".into(), |ms| format!("{ms} ms")),
            counter("sent"),
            counter("received"),
            counter("duplicates"),
            counter("acks_sent"),
            counter("retransmissions_requested"),
            counter("retransmissions_sent"),
            counter("dropped"),
        );
        let mut node_warnings: Vec<_> = scan.warnings.into_iter().collect();
        node_warnings.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        node_warnings.truncate(6);
        warnings.push((member.name().to_string(), node_warnings));
    }
    for (node, node_warnings) in &warnings {
        if !node_warnings.is_empty() {
            let _ = writeln!(out, "\nMost frequent warnings of {node}:");
            for (message, count) in node_warnings {
                let _ = writeln!(out, "- {count} × `{message}`");
            }
        }
    }
    let rss: u64 = total_rss_kb(&pair.observer.pids());
    let _ = writeln!(
        out,
        "\nFalse deaths: {total_dead} `is dead` lines, {not_active} non-active polls. Both \
         nodes together: CPU {cpu_ticks_percent:.3} % of a core from ticks, \
         {cpu_ns_percent:.3} % from schedstat; node1 RSS {:.2} MiB at the end.",
        mib(rss as f64)
    );
    println!("{out}");
}
