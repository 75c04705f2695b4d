//! The trials: what happens, in what order, on one cluster, and what each trial times.
//!
//! Owns the five kinds of trial — cold start, standby move, the failover cycle (death of
//! the owner, takeover by the survivor, the owner's return and failback), the meatware
//! confirmation (the survivor waits for the operator's `meatclient` before it takes over),
//! and the connectivity cycle (the owner loses its ping node — one router, or every member
//! of a ping group — the peer takes over, the ping node comes back and the group fails
//! back) —
//! and the series that run them on one cluster: cold starts first (the last leaves the
//! cluster running), then standby moves, then failover cycles; or, on a cluster fenced with
//! meatware, one cold start and then meatware confirmations. A trial that fails ends its
//! series with the reason and the cluster's state; the other series go on. Times come from
//! the address watch and the capture, never from polling `ip`.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::address_watch::Change;
use crate::cluster::{Bench, Cluster, PingKind};
use crate::{Implementation, Timing};

/// How long a cold start may take before the trial fails: Heartbeat 3.0.6 alone pauses
/// about 10 s, and its initdead can be 10 s.
const COLD_START_TIMEOUT: Duration = Duration::from_secs(40);

/// How long a group may take to move beyond the detection window: Heartbeat's standby
/// exchange and failback retry once a second until both sides are stable.
const MOVE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the group may take to settle on node1 before a trial.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long after the address a gratuitous ARP is awaited: announcers run in the
/// background and may repeat.
const ARP_GRACE: Duration = Duration::from_secs(5);

/// How much earlier than the address's notification was received a gratuitous ARP may be
/// captured and still count as the takeover's: the watcher thread may be woken after the
/// daemon, which adds the address first, has already sent it.
const ARP_LEAD: Duration = Duration::from_millis(5);

/// How long after a death the survivor may take to ask the operator for the reset: the
/// detection window, then the device's start.
const MEATWARE_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the survivor's FIFO is looked for, and `meatclient` tried again while the
/// device does not listen on it yet.
const MEATWARE_POLL: Duration = Duration::from_millis(20);

/// The pause after the cluster settled before a standby request: Heartbeat refuses one
/// while it still counts itself as starting.
const STANDBY_PAUSE: Duration = Duration::from_secs(1);

/// What the tables report, per trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Measurement {
    /// Death of the owner → the address on the survivor.
    DeathToAddress,
    /// Death of the owner → the survivor's first gratuitous ARP for it.
    DeathToArp,
    /// Both daemons launched → the address on node1.
    ColdStart,
    /// `hb_standby` on node1 → the address on node2.
    Standby,
    /// Failback: the address appears on node1 − it leaves node2 (negative: on both).
    FailbackWindow,
    /// Failback: node1's daemon launched again → the address on node1.
    ReturnToAddress,
    /// With meatware fencing: `meatclient -c node1` answered `y` on node2 → the address on
    /// node2.
    MeatwareConfirmToAddress,
    /// Connectivity failover: node1's pings to its ping node (every router it names)
    /// dropped → the address on node2.
    PingLostToAddress,
    /// Connectivity failover: node1 reaches the routers again → the address back on node1.
    PingBackToAddress,
}

/// The trials of one implementation at one timing.
pub(crate) struct Series {
    /// Which daemon was measured.
    pub(crate) implementation: Implementation,
    /// At which timing.
    pub(crate) timing: Timing,
    /// In a connectivity series, how the nodes name the routers they ping.
    pub(crate) ping: Option<PingKind>,
    /// Milliseconds per trial, by measurement (signed for the failback window).
    pub(crate) samples: BTreeMap<Measurement, Vec<f64>>,
    /// Failover cycles in which no gratuitous ARP was seen.
    pub(crate) arp_missed: usize,
    /// Gratuitous ARPs from node2 for the address, after a death and before node2 held
    /// the address, over all cycles.
    pub(crate) stale_announcements: usize,
    /// Why trials stopped early, if they did.
    pub(crate) failures: Vec<String>,
}

impl Series {
    /// A series with no trial yet.
    fn new(implementation: Implementation, timing: Timing, ping: Option<PingKind>) -> Series {
        Series {
            implementation,
            timing,
            ping,
            samples: BTreeMap::new(),
            arp_missed: 0,
            stale_announcements: 0,
            failures: Vec::new(),
        }
    }

    /// The samples of one measurement.
    pub(crate) fn values(&self, measurement: Measurement) -> &[f64] {
        self.samples.get(&measurement).map_or(&[], Vec::as_slice)
    }

    fn record(&mut self, measurement: Measurement, ms: f64) {
        self.samples.entry(measurement).or_default().push(ms);
    }

    /// The cluster if it started; otherwise records why not.
    fn started<'a>(&mut self, cluster: Result<Cluster<'a>, String>) -> Option<Cluster<'a>> {
        match cluster {
            Ok(cluster) => Some(cluster),
            Err(e) => {
                self.failures
                    .push(format!("the cluster did not start: {e}"));
                None
            }
        }
    }

    /// Like [`Series::started`], then one cold start, which the trials that follow rely on.
    fn warmed_up<'a>(&mut self, cluster: Result<Cluster<'a>, String>) -> Option<Cluster<'a>> {
        let mut cluster = self.started(cluster)?;
        let began = SystemTime::now();
        if let Err(e) = cold_start_trial(&mut cluster) {
            self.failures
                .push(failure(&cluster, "cold start", began, e));
            return None;
        }
        Some(cluster)
    }
}

/// What a failed trial reports: its error and the cluster's state since the trial began.
fn failure(cluster: &Cluster<'_>, what: &str, began: SystemTime, e: String) -> String {
    format!("{what}: {e}; {}", cluster.diagnostics(began))
}

/// Runs `trials` trials of every measurement on one fresh cluster of `implementation` at
/// `timing`.
pub(crate) fn run_series(
    bench: &mut Bench<'_>,
    implementation: Implementation,
    timing: Timing,
    trials: usize,
) -> Series {
    eprintln!("  {implementation} at {timing}");
    let mut series = Series::new(implementation, timing, None);
    let Some(mut cluster) = series.started(bench.cluster(implementation, timing)) else {
        return series;
    };
    if let Err(e) = run_trials(&mut cluster, &mut series, trials) {
        series.failures.push(e);
    }
    series
}

/// Runs `trials` meatware confirmations on one fresh cluster of `implementation` at
/// `timing`, fenced with `stonith_host * meatware node1 node2`: one cold start, then per
/// trial node1 dies, node2 asks the operator, the operator confirms, node2 takes over, and
/// node1 reboots and takes the group back.
pub(crate) fn run_meatware_series(
    bench: &mut Bench<'_>,
    implementation: Implementation,
    timing: Timing,
    trials: usize,
) -> Series {
    eprintln!("  {implementation} at {timing}, fenced with meatware");
    let mut series = Series::new(implementation, timing, None);
    let Some(mut cluster) =
        series.warmed_up(bench.fenced_cluster(implementation, timing, "meatware node1 node2"))
    else {
        return series;
    };
    for index in 1..=trials {
        let began = SystemTime::now();
        match meatware_trial(&mut cluster) {
            Ok(ms) => {
                eprintln!("    meatware {index}: confirmation → address {ms:.1} ms");
                series.record(Measurement::MeatwareConfirmToAddress, ms);
            }
            Err(e) => {
                series
                    .failures
                    .push(failure(&cluster, &format!("meatware {index}"), began, e));
                break;
            }
        }
    }
    series
}

/// Runs `trials` connectivity trials on one fresh cluster of `implementation` at `timing`
/// whose nodes ping as `ping` says (a `ping` line for the first router, or a `ping_group`
/// of both), and have `respawn hacluster …/ipfail` (Heartbeat runs ipfail, vigil its
/// built-in logic): one cold start, then per trial node1 loses its ping node (with
/// `ping_group`, every member at once) and gets it back.
pub(crate) fn run_ipfail_series(
    bench: &mut Bench<'_>,
    implementation: Implementation,
    timing: Timing,
    ping: PingKind,
    trials: usize,
) -> Series {
    eprintln!(
        "  {implementation} at {timing}, pinging with `{}`, with ipfail's line",
        ping.ha_cf_form()
    );
    let mut series = Series::new(implementation, timing, Some(ping));
    let Some(mut cluster) = series.warmed_up(bench.ping_cluster(implementation, timing, ping))
    else {
        return series;
    };
    for index in 1..=trials {
        let began = SystemTime::now();
        match ipfail_trial(&mut cluster) {
            Ok((lost, back)) => {
                eprintln!(
                    "    connectivity {index} ({ping}): lost → address on node2 {lost:.1} ms, \
                     back → address on node1 {back:.1} ms"
                );
                series.record(Measurement::PingLostToAddress, lost);
                series.record(Measurement::PingBackToAddress, back);
            }
            Err(e) => {
                series.failures.push(failure(
                    &cluster,
                    &format!("connectivity {index}"),
                    began,
                    e,
                ));
                let _ = cluster.unblock_pings(1);
                break;
            }
        }
    }
    series
}

/// With the group settled on node1 (and running long enough for both nodes to see the
/// routers): node1's echo requests to every router of its ping line are dropped, and the
/// time to the address on node2 is taken; then they pass again, and the time to the address
/// back on node1 (with `auto_failback on`). Both cuts fall at a random phase of the
/// keepalive, with which the echo requests go: otherwise each would follow the previous
/// move, itself timed by a probe, at nearly the same phase in every trial.
fn ipfail_trial(cluster: &mut Cluster<'_>) -> Result<(f64, f64), String> {
    cluster.settle_on(1, SETTLE_TIMEOUT)?;
    cluster.await_uptime();
    let interval = cluster.timing.message_interval();
    thread::sleep(random_phase(interval));
    let lost = cluster.block_pings(1)?;
    let taken = cluster
        .watch
        .first_after(2, Change::Appeared, lost, MOVE_TIMEOUT)
        .ok_or_else(|| {
            format!(
                "the address did not appear on node2 within {MOVE_TIMEOUT:?} of node1 losing \
                 its ping node"
            )
        })?;
    thread::sleep(random_phase(interval));
    let back = cluster.unblock_pings(1);
    let returned = cluster
        .watch
        .first_after(1, Change::Appeared, back, MOVE_TIMEOUT)
        .ok_or_else(|| {
            format!(
                "the address did not come back to node1 within {MOVE_TIMEOUT:?} of its ping \
                 node answering it again"
            )
        })?;
    Ok((ms_between(lost, taken), ms_between(back, returned)))
}

/// With the group settled on node1: node1 dies (frozen and cut off); once node2's meatware
/// device waits for the operator, `meatclient -c node1` confirms the reset there, and the
/// time to the address on node2 is taken. The address must not come up on node2 before the
/// confirmation. Then node1 reboots and the group fails back.
fn meatware_trial(cluster: &mut Cluster<'_>) -> Result<f64, String> {
    cluster.settle_on(1, SETTLE_TIMEOUT)?;
    cluster.await_uptime();
    let died = cluster.freeze_and_cut(1);
    let asked_by = Instant::now() + MEATWARE_REQUEST_TIMEOUT;
    while !cluster.meatware_waits(2, "node1") {
        if Instant::now() > asked_by {
            return Err(format!(
                "node2 did not ask for node1's reset (no /run/meatware.node1) within \
                 {MEATWARE_REQUEST_TIMEOUT:?} of node1's death"
            ));
        }
        thread::sleep(MEATWARE_POLL);
    }
    let confirmed = loop {
        match cluster.confirm_meatware(2, "node1") {
            Ok(at) => break at,
            Err(e) if Instant::now() > asked_by => return Err(e),
            Err(_) => thread::sleep(MEATWARE_POLL),
        }
    };
    if let Some(early) = cluster
        .watch
        .events_since(died)
        .iter()
        .find(|e| e.node == 2 && e.change == Change::Appeared && e.at < confirmed)
    {
        return Err(format!(
            "node2 took the address over {:.1} ms after node1's death, before the operator \
             confirmed the reset",
            ms_between(died, early.at)
        ));
    }
    let taken = cluster
        .watch
        .first_after(2, Change::Appeared, confirmed, MOVE_TIMEOUT)
        .ok_or_else(|| {
            format!(
                "the address did not appear on node2 within {MOVE_TIMEOUT:?} of the confirmation"
            )
        })?;
    cluster.power_cycle(1);
    let returned = cluster.launch(1);
    cluster
        .watch
        .first_after(1, Change::Appeared, returned, MOVE_TIMEOUT)
        .ok_or_else(|| format!("the address did not come back to node1 within {MOVE_TIMEOUT:?}"))?;
    Ok(ms_between(confirmed, taken))
}

/// The trials of a series, in order; the first failure ends them, with the cluster's
/// state since that trial began.
fn run_trials(cluster: &mut Cluster<'_>, series: &mut Series, trials: usize) -> Result<(), String> {
    for index in 1..=trials {
        if index > 1 {
            cluster.stop_both();
        }
        let began = SystemTime::now();
        let ms = cold_start_trial(cluster)
            .map_err(|e| failure(cluster, &format!("cold start {index}"), began, e))?;
        eprintln!("    cold start {index}: {ms:.1} ms");
        series.record(Measurement::ColdStart, ms);
    }
    if cluster.has_standby() {
        for index in 1..=trials {
            let began = SystemTime::now();
            let ms = standby_trial(cluster)
                .map_err(|e| failure(cluster, &format!("standby {index}"), began, e))?;
            eprintln!("    standby {index}: {ms:.1} ms");
            series.record(Measurement::Standby, ms);
        }
    }
    for index in 1..=trials {
        let began = SystemTime::now();
        let cycle = failover_cycle(cluster)
            .map_err(|e| failure(cluster, &format!("failover {index}"), began, e))?;
        eprintln!(
            "    failover {index}: death → address {:.1} ms, → ARP {}, failback window {:+.1} ms",
            cycle.death_to_address,
            cycle
                .death_to_arp
                .map_or_else(|| "–".into(), |ms| format!("{ms:.1} ms")),
            cycle.failback_window
        );
        series.record(Measurement::DeathToAddress, cycle.death_to_address);
        match cycle.death_to_arp {
            Some(ms) => series.record(Measurement::DeathToArp, ms),
            None if cluster.captures_arp() => series.arp_missed += 1,
            None => {}
        }
        series.stale_announcements += cycle.stale_announcements;
        series.record(Measurement::FailbackWindow, cycle.failback_window);
        series.record(Measurement::ReturnToAddress, cycle.return_to_address);
    }
    Ok(())
}

/// Launches both daemons at once, neither holding the address, and times the address's
/// arrival on node1.
fn cold_start_trial(cluster: &mut Cluster<'_>) -> Result<f64, String> {
    let launched = cluster.launch_both();
    let up = cluster
        .watch
        .first_after(1, Change::Appeared, launched, COLD_START_TIMEOUT)
        .ok_or_else(|| {
            format!("the address did not appear on node1 within {COLD_START_TIMEOUT:?}")
        })?;
    Ok(ms_between(launched, up))
}

/// With the group settled on node1, runs `hb_standby` there and times the address's
/// arrival on node2; then gives it back with `hb_takeover` on node1.
fn standby_trial(cluster: &mut Cluster<'_>) -> Result<f64, String> {
    cluster.settle_on(1, SETTLE_TIMEOUT)?;
    cluster.await_uptime();
    thread::sleep(STANDBY_PAUSE);
    let asked = SystemTime::now();
    cluster.standby(1)?;
    let moved = cluster
        .watch
        .first_after(2, Change::Appeared, asked, MOVE_TIMEOUT)
        .ok_or_else(|| format!("the address did not appear on node2 within {MOVE_TIMEOUT:?}"))?;
    cluster.settle_on(2, SETTLE_TIMEOUT)?;
    thread::sleep(STANDBY_PAUSE);
    cluster.takeover(1)?;
    Ok(ms_between(asked, moved))
}

/// What one failover cycle measured, in ms.
struct Cycle {
    /// Death of node1 → the address on node2.
    death_to_address: f64,
    /// Death of node1 → node2's first gratuitous ARP once it holds the address, when one
    /// was seen.
    death_to_arp: Option<f64>,
    /// Gratuitous ARPs node2 sent for the address after the death but before it held it:
    /// repeats of an announcement from an earlier move, for an address it had given up.
    stale_announcements: usize,
    /// The address on node1 again − the address off node2.
    failback_window: f64,
    /// node1's daemon launched again → the address on node1.
    return_to_address: f64,
}

/// With the group settled on node1: node1 dies (frozen and cut off) at a random phase of
/// the message cycle; node2 takes the address over. Then node1 reboots (killed, its stale
/// address removed, back on the bridge, its daemon started) and the group fails back.
fn failover_cycle(cluster: &mut Cluster<'_>) -> Result<Cycle, String> {
    cluster.settle_on(1, SETTLE_TIMEOUT)?;
    cluster.await_uptime();
    thread::sleep(Duration::from_millis(300) + random_phase(cluster.timing.message_interval()));
    let died = cluster.freeze_and_cut(1);
    let window = cluster.timing.detection_window();
    let taken = cluster
        .watch
        .first_after(2, Change::Appeared, died, window + MOVE_TIMEOUT)
        .ok_or_else(|| {
            format!(
                "the address did not appear on node2 within {:?} of node1's death",
                window + MOVE_TIMEOUT
            )
        })?;
    let takeover_began = (taken - ARP_LEAD).max(died);
    let announced = cluster.first_arp(2, takeover_began, Instant::now() + ARP_GRACE);
    let stale_announcements = cluster
        .arp_announcements(2, died, Some(takeover_began))
        .len();

    cluster.power_cycle(1);
    let returned = cluster.launch(1);
    let appeared = cluster
        .watch
        .first_after(1, Change::Appeared, returned, MOVE_TIMEOUT)
        .ok_or_else(|| format!("the address did not come back to node1 within {MOVE_TIMEOUT:?}"))?;
    let left = cluster
        .watch
        .first_after(2, Change::Left, returned, MOVE_TIMEOUT)
        .ok_or_else(|| {
            format!("the address did not leave node2 within {MOVE_TIMEOUT:?} of node1's return")
        })?;
    Ok(Cycle {
        death_to_address: ms_between(died, taken),
        death_to_arp: announced.map(|at| ms_between(died, at)),
        stale_announcements,
        failback_window: ms_between(left, appeared),
        return_to_address: ms_between(returned, appeared),
    })
}

/// `to − from` in milliseconds, negative when `to` is earlier.
fn ms_between(from: SystemTime, to: SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(later) => later.as_secs_f64() * 1e3,
        Err(earlier) => -earlier.duration().as_secs_f64() * 1e3,
    }
}

/// A pseudo-random delay below `bound`, so deaths fall at every phase of the message cycle.
fn random_phase(bound: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let bound_us = u64::try_from(bound.as_micros()).unwrap_or(u64::MAX).max(1);
    Duration::from_micros(nanos.wrapping_mul(2_654_435_761) % bound_us)
}
