//! Membership benchmark: vigil against Debian's Heartbeat 3.0.6, side by side in the
//! network-namespace lab of the integration tests.
//!
//! Owns the command line and the order of the parts. Each part measures, on identical
//! two-node clusters (one bridge, `bcast eth0`, sha1 auth, addresses in 198.18.0.0/15), and
//! prints Markdown tables:
//! - `detection`: death of a node → its peer declares it dead, at keepalive 200ms/deadtime 1
//!   and keepalive 1/deadtime 5 for both implementations, and at keepalive 10ms/deadtime 40ms
//!   for vigil, plus one try of that fast setting on Heartbeat, reported as observed;
//! - `footprint`: the idle RSS and CPU of every process of one node over a window;
//! - `soak`: vigil at the fast setting left idle for minutes, counting false deaths;
//!   `soak-heartbeat` (only when asked) does the same with Heartbeat.
//!
//! It is a measurement, not a test: it asserts nothing about time and prints what it saw.
//! It must not change the lab support it borrows from the integration tests; it only swaps
//! the timing lines of the ha.cf that support writes (Heartbeat: before its first start;
//! vigil: then starts it again).
//!
//! Run as root (namespaces, bridges, Heartbeat):
//! `cargo bench -p vigil --bench membership_vs_heartbeat [-- PART… --trials N --soak-minutes N
//! --footprint-seconds N --footprint-runs N]`, with PART among `detection`, `footprint`, `soak` (all three by
//! default) and `soak-heartbeat`. Without root it says why it cannot run and exits
//! successfully.

#[path = "../common/mod.rs"]
mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

mod cluster;
mod detection;
mod footprint;
mod soak;

use std::fmt;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use common::load_average;
use support::heartbeat::{HEARTBEAT_CL_STATUS, HEARTBEAT_DAEMON};
use support::is_root;
use support::netns::Lab;
use support::vigil_node::VIGIL_BIN;

use cluster::Bench;
use detection::detection_part;
use footprint::footprint_part;
use soak::soak_part;

/// One ha.cf timing under measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timing {
    /// `keepalive` as written in ha.cf.
    keepalive: &'static str,
    /// `deadtime` as written.
    deadtime: &'static str,
    /// `warntime` as written.
    warntime: &'static str,
    /// `initdead` as written.
    initdead: &'static str,
    /// The keepalive, for the random phase of a death.
    keepalive_time: Duration,
    /// The deadtime, subtracted to report latency beyond it.
    deadtime_time: Duration,
}

impl Timing {
    /// The lab's own timing and the first operating point of the issue.
    const SUBSECOND: Timing = Timing {
        keepalive: "200ms",
        deadtime: "1",
        warntime: "500ms",
        initdead: "2",
        keepalive_time: Duration::from_millis(200),
        deadtime_time: Duration::from_secs(1),
    };
    /// A conservative, common production timing.
    const SECONDS: Timing = Timing {
        keepalive: "1",
        deadtime: "5",
        warntime: "3",
        initdead: "10",
        keepalive_time: Duration::from_secs(1),
        deadtime_time: Duration::from_secs(5),
    };
    /// The fast setting the issue targets: 25 times the rate of the subsecond one.
    const FAST: Timing = Timing {
        keepalive: "10ms",
        deadtime: "40ms",
        warntime: "20ms",
        initdead: "1",
        keepalive_time: Duration::from_millis(10),
        deadtime_time: Duration::from_millis(40),
    };

    /// The ha.cf lines of this timing, in the order the lab writes its own.
    fn ha_cf_lines(&self) -> String {
        format!(
            "keepalive {}\ndeadtime {}\nwarntime {}\ninitdead {}\n",
            self.keepalive, self.deadtime, self.warntime, self.initdead
        )
    }
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "keepalive {} / deadtime {}",
            self.keepalive, self.deadtime
        )
    }
}

/// The two daemons compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Implementation {
    Vigil,
    Heartbeat,
}

impl fmt::Display for Implementation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Implementation::Vigil => "vigil",
            Implementation::Heartbeat => "Heartbeat 3.0.6",
        })
    }
}

/// What the command line asked for.
#[derive(Debug, Clone)]
struct Options {
    /// Run the detection part.
    detection: bool,
    /// Run the footprint part.
    footprint: bool,
    /// Run the soak part.
    soak: bool,
    /// Run the soak on Heartbeat too (not part of the default run).
    soak_heartbeat: bool,
    /// Detection trials per implementation and timing.
    trials: usize,
    /// Length of the soak.
    soak_minutes: u64,
    /// Length of each footprint window.
    footprint_seconds: u64,
    /// Footprint windows per implementation and timing, each on a freshly started pair.
    footprint_runs: usize,
}

impl Options {
    /// What the harness accepts, printed with an argument error.
    const USAGE: &'static str = "usage: membership_vs_heartbeat [detection] [footprint] [soak] \
                                 [soak-heartbeat] \
                                 [--trials N] [--soak-minutes N] [--footprint-seconds N] \
                                 [--footprint-runs N]";

    /// Parses the arguments after `--`; `--bench`, which cargo adds, is ignored.
    fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            detection: false,
            footprint: false,
            soak: false,
            soak_heartbeat: false,
            trials: 5,
            soak_minutes: 10,
            footprint_seconds: 60,
            footprint_runs: 1,
        };
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            let mut number = |name: &str| -> Result<u64, String> {
                let value = args
                    .next()
                    .ok_or_else(|| format!("{name} needs a number"))?;
                value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{name} {value}: expected a whole number above 0"))
            };
            match arg.as_str() {
                "--bench" => {}
                "detection" => options.detection = true,
                "footprint" => options.footprint = true,
                "soak" => options.soak = true,
                "soak-heartbeat" => options.soak_heartbeat = true,
                "--trials" => options.trials = number("--trials")? as usize,
                "--soak-minutes" => options.soak_minutes = number("--soak-minutes")?,
                "--footprint-seconds" => {
                    options.footprint_seconds = number("--footprint-seconds")?;
                }
                "--footprint-runs" => options.footprint_runs = number("--footprint-runs")? as usize,
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        if !(options.detection || options.footprint || options.soak || options.soak_heartbeat) {
            options.detection = true;
            options.footprint = true;
            options.soak = true;
        }
        Ok(options)
    }
}

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}\n{}", Options::USAGE);
            return ExitCode::from(2);
        }
    };
    if !is_root() {
        println!(
            "membership_vs_heartbeat: not run: it needs root to create network namespaces, \
             a bridge and veth pairs, and to run Heartbeat in its own namespaces. Run it as \
             root: cargo bench -p vigil --bench membership_vs_heartbeat"
        );
        return ExitCode::SUCCESS;
    }
    let heartbeat_installed =
        Path::new(HEARTBEAT_DAEMON).exists() && Path::new(HEARTBEAT_CL_STATUS).exists();
    let implementations: &[Implementation] = if heartbeat_installed {
        &[Implementation::Vigil, Implementation::Heartbeat]
    } else {
        println!(
            "Heartbeat 3.0.6 is not installed ({HEARTBEAT_DAEMON}); only vigil is measured. \
             Install it with .ci/install-test-packages."
        );
        &[Implementation::Vigil]
    };
    print_machine();
    let Some(mut lab) = Lab::new("bench") else {
        return ExitCode::SUCCESS;
    };
    let nets = [lab.add_node(1), lab.add_node(2)];
    let mut bench = Bench::new(&lab, &nets);
    if options.detection {
        detection_part(
            &mut bench,
            implementations,
            options.trials,
            heartbeat_installed,
        );
    }
    if options.footprint {
        footprint_part(
            &mut bench,
            implementations,
            options.footprint_seconds,
            options.footprint_runs,
        );
    }
    if options.soak {
        soak_part(&mut bench, Implementation::Vigil, options.soak_minutes);
    }
    if options.soak_heartbeat {
        if heartbeat_installed {
            soak_part(&mut bench, Implementation::Heartbeat, options.soak_minutes);
        } else {
            println!("soak-heartbeat: not run: Heartbeat is not installed");
        }
    }
    ExitCode::SUCCESS
}

/// Prints what the numbers were measured on.
fn print_machine() {
    println!("# vigil membership vs Heartbeat 3.0.6\n");
    println!(
        "machine: {}; vigil binary {VIGIL_BIN}",
        common::machine_description(),
    );
    println!("load average at start: {}\n", load_average());
}
