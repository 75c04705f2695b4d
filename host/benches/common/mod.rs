//! What both benchmark harnesses (`membership_vs_heartbeat`, `failover_vs_anchors`) share:
//! the description of the machine, its load average, the swap of the lab's timing lines in a
//! node's ha.cf, and the summary of a series of measurements.
//!
//! It measures nothing itself and starts no process; each harness owns its trials.

use std::fs;
use std::path::Path;
use std::thread;

/// The timing block the lab's support code writes into every ha.cf.
pub const LAB_TIMING_LINES: &str = "keepalive 200ms\ndeadtime 1\nwarntime 500ms\ninitdead 2\n";

/// `N cores (CPU model), Debian X, kernel Y`: what the numbers were measured on.
pub fn machine_description() -> String {
    let read = |path: &str| {
        fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into())
    };
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "?".into());
    format!(
        "{} cores ({cpu}), Debian {}, kernel {}",
        thread::available_parallelism().map_or(0, |n| n.get()),
        read("/etc/debian_version"),
        read("/proc/sys/kernel/osrelease"),
    )
}

/// The 1, 5 and 15 minute load averages, to judge how busy the shared machine was.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Replaces the lab's timing lines in a node's ha.cf with `timing_lines`.
pub fn retime(ha_cf: &Path, timing_lines: &str) {
    let text = fs::read_to_string(ha_cf)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", ha_cf.display()));
    assert!(
        text.contains(LAB_TIMING_LINES),
        "{} does not hold the lab's timing block {LAB_TIMING_LINES:?}; the lab support changed \
         and the benchmark must follow:\n{text}",
        ha_cf.display()
    );
    let retimed = text.replacen(LAB_TIMING_LINES, timing_lines, 1);
    fs::write(ha_cf, retimed).unwrap_or_else(|e| panic!("cannot write {}: {e}", ha_cf.display()));
}

/// Count, median, min and max of a series, in the series' unit.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// How many values.
    pub count: usize,
    /// Their median (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

impl Summary {
    /// The summary of `values`, `None` when there are none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Summary> {
        let mut sorted: Vec<f64> = values.into_iter().collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Summary {
            count: n,
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }
}
