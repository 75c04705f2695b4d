//! The tables: per part, every measurement of every series with median, minimum and
//! maximum, the failback overlaps, why series stopped, and the verdict against the
//! project's targets.
//!
//! Owns the wording and layout of the output and the targets' thresholds; it measures
//! nothing.

use std::fmt::Write as _;
use std::time::Duration;

use crate::cluster::PingKind;
use crate::common::{Summary, load_average};
use crate::trials::{Measurement, Series};
use crate::{Implementation, Part, Timing};

/// The death → address target: within the detection window plus this.
const DEATH_TARGET_SLACK: Duration = Duration::from_millis(20);
/// The cold start target: within twice the keepalive plus this.
const COLD_START_TARGET_SLACK: Duration = Duration::from_millis(100);
/// The standby target: below this.
const STANDBY_TARGET: Duration = Duration::from_millis(50);
/// The failback no-owner window target: below this.
const FAILBACK_TARGET: Duration = Duration::from_millis(20);
/// The meatware target: from the operator's confirmation to the address, below this.
const MEATWARE_TARGET: Duration = Duration::from_millis(50);
/// The connectivity target: ping node lost → the address on the peer within `deadping`
/// (the deadtime, as neither ha.cf sets it) plus this.
const CONNECTIVITY_TARGET_SLACK: Duration = Duration::from_millis(100);

/// `summary` with `offset` ms taken off every value.
fn shifted(summary: Summary, offset: f64) -> Summary {
    Summary {
        median: summary.median - offset,
        min: summary.min - offset,
        max: summary.max - offset,
        ..summary
    }
}

/// One row of the main table: a label, and the values (already shifted) or why there are
/// none.
enum Row {
    /// Measured values.
    Values(Summary),
    /// Not measured, with the word to print (`n/a`, `–`).
    Missing(&'static str),
}

/// Prints one part: the table of every series, the notes, and the verdict.
pub(crate) fn print_part(part: &Part, all: &[Series], load_before: &str, arp_measured: bool) {
    let mut out = String::new();
    let _ = writeln!(out, "## {}: failover of one address\n", part.title);
    let _ = writeln!(
        out,
        "Every time is on CLOCK_REALTIME. The address's arrival and departure on a node are \
         the kernel's RTM_NEWADDR / RTM_DELADDR notifications, received by a netlink \
         subscription in that node's namespace and stamped on receipt (no polling). Death: \
         SIGSTOP of every process of node1's daemon, stamped right after the signals, then \
         node1's bridge port detached; node1 had run more than 7 s (vigil, Heartbeat), the \
         death falls at a random phase of the message interval. Gratuitous ARP: the first \
         ARP announcing the address from node2's MAC captured by tcpdump on the bridge at \
         or after node2's RTM_NEWADDR less 5 ms, stamped by the capture. Cold start: both \
         daemons launched at the same moment, neither node holding the address. Standby: \
         `hb_standby` on node1 (vigil's binary under that name, over its API; Heartbeat's \
         script), from the moment the command is launched. Failback: node1 rebooted after \
         a failover (daemon killed, address removed, port back) and its daemon launched; \
         window = address on node1 − address off node2, negative when both held it. Load \
         average {load_before} → {}.\n",
        load_average()
    );
    let _ = writeln!(
        out,
        "| implementation | timing | measurement | trials | median ms | min ms | max ms |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for series in all {
        for (label, row) in rows(series, arp_measured) {
            match row {
                Row::Values(s) => {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {label} | {} | {:.1} | {:.1} | {:.1} |",
                        series.implementation, series.timing, s.count, s.median, s.min, s.max
                    );
                }
                Row::Missing(word) => {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {label} | 0 | {word} | {word} | {word} |",
                        series.implementation, series.timing
                    );
                }
            }
        }
    }
    for series in all {
        write_notes(&mut out, series);
    }
    write_verdict(&mut out, part, all);
    println!("{out}");
}

/// Prints the connectivity part: ping node lost by the owner → the address on the peer, and
/// back, for every series with its ping line (`ping` or `ping_group`), why series stopped,
/// and the verdict.
pub(crate) fn print_ipfail_part(all: &[Series], load_before: &str) {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## connectivity: the owner loses its ping node → the address on the peer\n"
    );
    let _ = writeln!(
        out,
        "Both nodes have `respawn hacluster /usr/libexec/heartbeat/ipfail`: Heartbeat runs \
         ipfail, vigil maps the line onto its built-in connectivity failover (dampening \
         `deadping`, the deadtime). They ping either one router (`{}`) or two routers as one \
         ping node (`{}`, alive while either answers); each router is a namespace where only \
         the kernel answers. Per trial node1's echo requests to every router of its line are \
         dropped by one nftables rule in its namespace, with `ping_group` both members at \
         once (t0: just before `nft` runs; t1: node2's RTM_NEWADDR for the address), then \
         let through again (t0) until the address is back on node1 (t1, `auto_failback on`). \
         Each t0 falls at a random phase of the keepalive, with which the echo requests go. \
         Load average {load_before} → {}.\n",
        PingKind::Ping.ha_cf_form(),
        PingKind::PingGroup.ha_cf_form(),
        load_average()
    );
    let _ = writeln!(
        out,
        "| implementation | ping line | timing | measurement | trials | median ms | min ms | \
         max ms |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for series in all {
        let Some(ping) = series.ping else {
            continue;
        };
        let implementation = implementation_label(series);
        for (measurement, label) in connectivity_rows(ping) {
            match Summary::of(series.values(measurement).iter().copied()) {
                Some(s) => {
                    let _ = writeln!(
                        out,
                        "| {implementation} | `{ping}` | {} | {label} | {} | {:.1} | {:.1} | \
                         {:.1} |",
                        series.timing, s.count, s.median, s.min, s.max
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "| {implementation} | `{ping}` | {} | {label} | 0 | – | – | – |",
                        series.timing
                    );
                }
            }
        }
    }
    for series in all {
        write_notes(&mut out, series);
    }
    let _ = writeln!(out, "\n### Targets (connectivity)\n");
    let _ = writeln!(
        out,
        "Judged on vigil's maximum over the trials; `deadping` is the deadtime.\n\n| target | \
         ping line | vigil timing | limit ms | vigil median / max ms | anchor at the equal \
         timing, median ms | verdict |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    let values = |series: &Series| {
        Summary::of(
            series
                .values(Measurement::PingLostToAddress)
                .iter()
                .copied(),
        )
    };
    for vigil in all
        .iter()
        .filter(|s| s.implementation == Implementation::Vigil)
    {
        let Some(ping) = vigil.ping else {
            continue;
        };
        let limit = vigil.timing.detection_window() + CONNECTIVITY_TARGET_SLACK;
        let limit_ms = limit.as_secs_f64() * 1e3;
        let (measured, verdict) = judged(values(vigil), limit_ms);
        let anchor = all
            .iter()
            .find(|s| {
                s.implementation == Implementation::Heartbeat
                    && s.timing == vigil.timing
                    && s.ping == vigil.ping
            })
            .map_or_else(
                || format!("{} + ipfail: not measured", Implementation::Heartbeat),
                |series| {
                    let name = implementation_label(series);
                    values(series).map_or_else(
                        || format!("{name}: –"),
                        |s| format!("{name}: {:.1}", s.median),
                    )
                },
            );
        let _ = writeln!(
            out,
            "| ping node lost → address on node2 within `deadping` + 100 ms | `{ping}` | {} | \
             {limit_ms:.0} | {measured} | {anchor} | {verdict} |",
            vigil.timing
        );
    }
    println!("{out}");
}

/// The connectivity rows of a series with ping line `ping`, in table order.
fn connectivity_rows(ping: PingKind) -> [(Measurement, &'static str); 2] {
    match ping {
        PingKind::Ping => [
            (
                Measurement::PingLostToAddress,
                "ping node lost on node1 → address on node2",
            ),
            (
                Measurement::PingBackToAddress,
                "ping node back on node1 → address on node1",
            ),
        ],
        PingKind::PingGroup => [
            (
                Measurement::PingLostToAddress,
                "ping group lost on node1 (both members) → address on node2",
            ),
            (
                Measurement::PingBackToAddress,
                "ping group back on node1 (both members) → address on node1",
            ),
        ],
    }
}

/// The implementation as the tables name it: in a connectivity series Heartbeat runs
/// ipfail, and says so.
fn implementation_label(series: &Series) -> String {
    match (series.implementation, series.ping) {
        (Implementation::Heartbeat, Some(_)) => format!("{} + ipfail", series.implementation),
        (implementation, _) => implementation.to_string(),
    }
}

/// Who a note is about: the implementation at its timing, with its ping line in a
/// connectivity series.
fn subject(series: &Series) -> String {
    let implementation = implementation_label(series);
    match series.ping {
        Some(ping) => format!("{implementation} at {} with `{ping}`", series.timing),
        None => format!("{implementation} at {}", series.timing),
    }
}

/// Prints the meatware part: the confirmation → address table of every series, why series
/// stopped, and the verdict.
pub(crate) fn print_meatware_part(all: &[Series], load_before: &str) {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## meatware: the operator's confirmation → the address on the survivor\n"
    );
    let _ = writeln!(
        out,
        "Both nodes have `stonith_host * meatware node1 node2` in ha.cf and a `/run` of their \
         own. Per trial node1 dies (SIGSTOP of every process of its daemon, then its bridge \
         port detached); once node2's device waits (its FIFO `/run/meatware.node1` exists as \
         node2's daemon sees `/run`), Debian's `meatclient -c node1` runs in node2's network \
         and mount namespaces with `y` already on its stdin. t0: just before meatclient is \
         started (so its own start, about a millisecond, is counted; it is retried while the \
         device does not listen yet, and t0 is that of the run that confirmed). t1: node2's \
         RTM_NEWADDR for the address, from the netlink watch. A takeover before t0 fails the \
         trial. Then node1 reboots and takes the group back. Load average {load_before} → \
         {}.\n",
        load_average()
    );
    let _ = writeln!(
        out,
        "| implementation | timing | measurement | trials | median ms | min ms | max ms |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for series in all {
        let label = "meatware confirmation → address on node2";
        match Summary::of(
            series
                .values(Measurement::MeatwareConfirmToAddress)
                .iter()
                .copied(),
        ) {
            Some(s) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {label} | {} | {:.1} | {:.1} | {:.1} |",
                    series.implementation, series.timing, s.count, s.median, s.min, s.max
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {label} | 0 | – | – | – |",
                    series.implementation, series.timing
                );
            }
        }
    }
    for series in all {
        write_notes(&mut out, series);
    }
    let _ = writeln!(out, "\n### Targets (meatware)\n");
    let _ = writeln!(
        out,
        "Judged on vigil's maximum over the trials.\n\n| target | vigil timing | limit ms | \
         vigil median / max ms | anchor at the equal timing, median ms | verdict |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    let limit_ms = MEATWARE_TARGET.as_secs_f64() * 1e3;
    for vigil in all
        .iter()
        .filter(|s| s.implementation == Implementation::Vigil)
    {
        let values = |series: &Series| {
            Summary::of(
                series
                    .values(Measurement::MeatwareConfirmToAddress)
                    .iter()
                    .copied(),
            )
        };
        let (measured, verdict) = match values(vigil) {
            Some(s) => (
                format!("{:.1} / {:.1}", s.median, s.max),
                if s.max < limit_ms {
                    "**met**"
                } else {
                    "**not met**"
                },
            ),
            None => ("–".into(), "not measured"),
        };
        let anchor = all
            .iter()
            .find(|s| s.implementation == Implementation::Heartbeat && s.timing == vigil.timing)
            .map_or_else(
                || format!("{}: not measured", Implementation::Heartbeat),
                |series| {
                    values(series).map_or_else(
                        || format!("{}: –", series.implementation),
                        |s| format!("{}: {:.1}", series.implementation, s.median),
                    )
                },
            );
        let _ = writeln!(
            out,
            "| meatware confirmation → address under 50 ms | {} | {limit_ms:.0} | {measured} | \
             {anchor} | {verdict} |",
            vigil.timing
        );
    }
    println!("{out}");
}

/// The rows of one series, in table order.
fn rows(series: &Series, arp_measured: bool) -> Vec<(String, Row)> {
    let of = |measurement| {
        Summary::of(series.values(measurement).iter().copied())
            .map_or(Row::Missing("–"), Row::Values)
    };
    let window = series.timing.detection_window();
    let window_ms = window.as_secs_f64() * 1e3;
    let beyond = Summary::of(series.values(Measurement::DeathToAddress).iter().copied())
        .map_or(Row::Missing("–"), |s| Row::Values(shifted(s, window_ms)));
    let standby = if series.implementation == Implementation::Keepalived {
        Row::Missing("n/a")
    } else {
        of(Measurement::Standby)
    };
    let arp = if arp_measured {
        of(Measurement::DeathToArp)
    } else {
        Row::Missing("not captured")
    };
    vec![
        (
            "death → address on node2".into(),
            of(Measurement::DeathToAddress),
        ),
        (
            format!(
                "death → address, beyond {} ({} ms)",
                series.timing.window_name(),
                window.as_millis()
            ),
            beyond,
        ),
        ("death → first gratuitous ARP".into(), arp),
        (
            "cold start → address on node1".into(),
            of(Measurement::ColdStart),
        ),
        ("standby → address on node2".into(), standby),
        (
            "failback: no-owner window (on node1 − off node2)".into(),
            of(Measurement::FailbackWindow),
        ),
        (
            "failback: node1 launched → address on node1".into(),
            of(Measurement::ReturnToAddress),
        ),
    ]
}

/// Overlaps, missed ARP and failures of one series.
fn write_notes(out: &mut String, series: &Series) {
    let windows = series.values(Measurement::FailbackWindow);
    let overlaps: Vec<f64> = windows.iter().filter(|w| **w < 0.0).map(|w| -w).collect();
    if !overlaps.is_empty() {
        let longest = overlaps.iter().copied().fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "\n{}: at failback the address was on both nodes in {} of {} trials, for up to \
             {longest:.2} ms.",
            subject(series),
            overlaps.len(),
            windows.len()
        );
    }
    if series.arp_missed > 0 {
        let _ = writeln!(
            out,
            "\n{}: no gratuitous ARP from node2 seen in {} failover(s).",
            subject(series),
            series.arp_missed
        );
    }
    if series.stale_announcements > 0 {
        let _ = writeln!(
            out,
            "\n{}: node2 sent {} gratuitous ARP(s) for the address after node1's death \
             but before it held the address again (repeats of the announcement of an earlier \
             move, for an address it had given up); they are not counted as the takeover's.",
            subject(series),
            series.stale_announcements
        );
    }
    for failure in &series.failures {
        let _ = writeln!(out, "\n{}: trials stopped: {failure}", subject(series));
    }
}

/// The targets, judged on vigil's maximum over the trials at each of its timings, with the
/// anchor at the equal timing beside it.
fn write_verdict(out: &mut String, part: &Part, all: &[Series]) {
    let _ = writeln!(out, "\n### Targets ({})\n", part.title);
    let _ = writeln!(
        out,
        "Judged on vigil's maximum over the trials.\n\n| target | vigil timing | limit ms | \
         vigil median / max ms | anchor at the equal timing, median ms | verdict |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for comparison in &part.comparisons {
        let vigil_timing = Timing::HaCf(comparison.vigil);
        let find = |implementation, timing| {
            all.iter()
                .find(|s| s.implementation == implementation && s.timing == timing)
        };
        let Some(vigil) = find(Implementation::Vigil, vigil_timing) else {
            continue;
        };
        let anchor = find(comparison.anchor, comparison.anchor_timing);
        let targets = [
            (
                "death → address within deadtime + 20 ms",
                Measurement::DeathToAddress,
                comparison.vigil.deadtime_time + DEATH_TARGET_SLACK,
            ),
            (
                "cold start → address within 2 × keepalive + 100 ms",
                Measurement::ColdStart,
                comparison.vigil.keepalive_time * 2 + COLD_START_TARGET_SLACK,
            ),
            (
                "standby move below 50 ms",
                Measurement::Standby,
                STANDBY_TARGET,
            ),
            (
                "failback no-owner window below 20 ms",
                Measurement::FailbackWindow,
                FAILBACK_TARGET,
            ),
        ];
        for (target, measurement, limit) in targets {
            let limit_ms = limit.as_secs_f64() * 1e3;
            let (measured, verdict) = judged(
                Summary::of(vigil.values(measurement).iter().copied()),
                limit_ms,
            );
            let anchor_median = match anchor {
                Some(series)
                    if measurement == Measurement::Standby
                        && series.implementation == Implementation::Keepalived =>
                {
                    format!("{}: n/a", series.implementation)
                }
                Some(series) => Summary::of(series.values(measurement).iter().copied())
                    .map_or_else(
                        || format!("{}: –", series.implementation),
                        |s| format!("{}: {:.1}", series.implementation, s.median),
                    ),
                None => format!("{}: not measured", comparison.anchor),
            };
            let _ = writeln!(
                out,
                "| {target} | {vigil_timing} | {limit_ms:.0} | {measured} | {anchor_median} | {verdict} |"
            );
        }
    }
}

/// vigil's `median / max` cell and the verdict of a target judged on the maximum: met when
/// no trial took longer than `limit_ms`.
fn judged(summary: Option<Summary>, limit_ms: f64) -> (String, &'static str) {
    match summary {
        Some(s) => (
            format!("{:.1} / {:.1}", s.median, s.max),
            if s.max <= limit_ms {
                "**met**"
            } else {
                "**not met**"
            },
        ),
        None => ("–".into(), "not measured"),
    }
}
