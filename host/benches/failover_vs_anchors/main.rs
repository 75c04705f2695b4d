//! Failover benchmark: vigil against two anchors, Debian's Heartbeat 3.0.6 and keepalived
//! 2.2.7, moving one address between two nodes in the network-namespace lab of the
//! integration tests.
//!
//! Owns the command line, the timings compared, the order of the parts and the machine line.
//! Every cluster is two nodes on one bridge with one address-only group in the lab's subnet
//! (vigil: its built-in IPaddr agent on `node1 IPaddr::198.18.X.100/24/eth0`; Heartbeat: the
//! same haresources line through its resource.d IPaddr wrapper; keepalived: one VRRPv3
//! instance with that address, node1 priority 150 with preemption, node2 100). Clusters run
//! one at a time. Each prints Markdown tables of
//! - death of the owner → the address on the survivor, and → its first gratuitous ARP;
//! - cold start of both nodes → the address on node1;
//! - standby on node1 → the address on node2 (keepalived has no such command);
//! - failback when node1 returns: the window between the address leaving node2 and
//!   appearing on node1 (negative: both held it);
//!
//! and a verdict against the project's targets. Parts: `vs-heartbeat` (vigil and Heartbeat
//! at keepalive 200ms/deadtime 1 and keepalive 1/deadtime 5), `vs-keepalived` (vigil at
//! keepalive 200ms/deadtime 700ms and 10ms/40ms against keepalived at advert_int 0.2 and
//! 0.01, equal detection windows), and `meatware` (vigil and Heartbeat at keepalive
//! 200ms/deadtime 1, both fenced with `stonith_host * meatware node1 node2`: the
//! operator's `meatclient -c node1` on the survivor → the address there), and
//! `connectivity` (vigil and Heartbeat at keepalive 200ms/deadtime 1 with `respawn hacluster
//! …/ipfail`, pinging one router with `ping`, then two with `ping_group`: node1's pings to
//! its ping node dropped → the address on node2, and back once they pass again).
//!
//! It is a measurement, not a test: it asserts nothing about time and prints what it saw.
//! It must not change the lab support it borrows from the integration tests; it only swaps
//! the timing lines of the ha.cf that support writes, before a daemon's first start.
//!
//! Run as root (namespaces, bridges, the anchors):
//! `cargo bench -p vigil --bench failover_vs_anchors [-- PART… --trials N]`. Without root it
//! says why it cannot run and exits successfully; without an anchor it measures vigil alone
//! against that anchor's timings and says so.

#[path = "../common/mod.rs"]
mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

mod address_watch;
mod cluster;
mod keepalived;
mod report;
mod trials;

use std::fmt;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use common::load_average;
use support::capture::TCPDUMP;
use support::heartbeat::{HEARTBEAT_CL_STATUS, HEARTBEAT_DAEMON};
use support::is_root;
use support::netns::Lab;
use support::vigil_node::VIGIL_BIN;

use cluster::{
    Bench, DEBIAN_MEATCLIENT, HEARTBEAT_IPADDR_WRAPPER, HEARTBEAT_IPFAIL, HEARTBEAT_STANDBY,
    IFCONFIG, NFT, PingKind,
};
use keepalived::KEEPALIVED;
use report::{print_ipfail_part, print_meatware_part, print_part};
use trials::{run_ipfail_series, run_meatware_series, run_series};

/// One ha.cf timing, for vigil and Heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HaCfTiming {
    /// `keepalive` as written in ha.cf.
    keepalive: &'static str,
    /// `deadtime` as written.
    deadtime: &'static str,
    /// `warntime` as written.
    warntime: &'static str,
    /// `initdead` as written.
    initdead: &'static str,
    /// The keepalive: the random phase of a death, and the cold-start target.
    keepalive_time: Duration,
    /// The deadtime: the detection window.
    deadtime_time: Duration,
}

impl HaCfTiming {
    /// The lab's own timing, the first operating point against Heartbeat.
    const SUBSECOND: HaCfTiming = HaCfTiming {
        keepalive: "200ms",
        deadtime: "1",
        warntime: "500ms",
        initdead: "2",
        keepalive_time: Duration::from_millis(200),
        deadtime_time: Duration::from_secs(1),
    };
    /// A conservative, common production timing.
    const SECONDS: HaCfTiming = HaCfTiming {
        keepalive: "1",
        deadtime: "5",
        warntime: "3",
        initdead: "10",
        keepalive_time: Duration::from_secs(1),
        deadtime_time: Duration::from_secs(5),
    };
    /// The detection window of keepalived at `advert_int 0.2` (722 ms for the backup of
    /// priority 100), rounded to what ha.cf can say.
    const VRRP_SUBSECOND: HaCfTiming = HaCfTiming {
        keepalive: "200ms",
        deadtime: "700ms",
        warntime: "500ms",
        initdead: "2",
        keepalive_time: Duration::from_millis(200),
        deadtime_time: Duration::from_millis(700),
    };
    /// The fast setting of the membership benchmark, and keepalived's window at
    /// `advert_int 0.01` (36 ms).
    const FAST: HaCfTiming = HaCfTiming {
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

/// One VRRP timing, for keepalived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct VrrpTiming {
    /// `advert_int` as written in keepalived.conf (seconds; VRRPv3 carries centiseconds).
    advert_int: &'static str,
    /// The same as a duration.
    advert_time: Duration,
}

impl VrrpTiming {
    /// Against vigil at keepalive 200ms / deadtime 700ms.
    const SUBSECOND: VrrpTiming = VrrpTiming {
        advert_int: "0.2",
        advert_time: Duration::from_millis(200),
    };
    /// Against vigil at keepalive 10ms / deadtime 40ms.
    const FAST: VrrpTiming = VrrpTiming {
        advert_int: "0.01",
        advert_time: Duration::from_millis(10),
    };

    /// RFC 5798's Master_Down_Interval of a backup of `priority`: three adverts plus the
    /// skew `(256 - priority) / 256` of one. It is the backup's detection window.
    fn master_down_interval(&self, priority: u8) -> Duration {
        self.advert_time * 3 + self.advert_time * (256 - u32::from(priority)) / 256
    }
}

/// The timing of one cluster: ha.cf for vigil and Heartbeat, VRRP for keepalived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timing {
    HaCf(HaCfTiming),
    Vrrp(VrrpTiming),
}

impl Timing {
    /// How long after a death the survivor may declare it: the deadtime, or the
    /// Master_Down_Interval of node2 (priority 100).
    fn detection_window(&self) -> Duration {
        match self {
            Timing::HaCf(timing) => timing.deadtime_time,
            Timing::Vrrp(timing) => timing.master_down_interval(keepalived::BACKUP_PRIORITY),
        }
    }

    /// The interval of the messages that keep the owner alive: keepalive or advert_int.
    fn message_interval(&self) -> Duration {
        match self {
            Timing::HaCf(timing) => timing.keepalive_time,
            Timing::Vrrp(timing) => timing.advert_time,
        }
    }

    /// What the detection window is called in the tables.
    fn window_name(&self) -> &'static str {
        match self {
            Timing::HaCf(_) => "deadtime",
            Timing::Vrrp(_) => "master-down interval",
        }
    }
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timing::HaCf(timing) => write!(
                f,
                "keepalive {} / deadtime {}",
                timing.keepalive, timing.deadtime
            ),
            Timing::Vrrp(timing) => write!(
                f,
                "advert_int {} (master down {} ms)",
                timing.advert_int,
                self.detection_window().as_millis()
            ),
        }
    }
}

/// The three implementations compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Implementation {
    Vigil,
    Heartbeat,
    Keepalived,
}

impl fmt::Display for Implementation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Implementation::Vigil => "vigil",
            Implementation::Heartbeat => "Heartbeat 3.0.6",
            Implementation::Keepalived => "keepalived 2.2.7",
        })
    }
}

/// vigil at one timing against an anchor at its equal.
#[derive(Debug, Clone, Copy)]
struct Comparison {
    /// vigil's ha.cf timing.
    vigil: HaCfTiming,
    /// The anchor.
    anchor: Implementation,
    /// The anchor's timing.
    anchor_timing: Timing,
}

/// One part of the benchmark: a title and the comparisons it runs.
struct Part {
    /// The heading of its tables.
    title: &'static str,
    /// The anchor it compares with.
    anchor: Implementation,
    /// Its comparisons, in order.
    comparisons: [Comparison; 2],
}

impl Part {
    /// vigil and Heartbeat at the same two ha.cf timings.
    const VS_HEARTBEAT: Part = Part {
        title: "vigil vs Heartbeat 3.0.6",
        anchor: Implementation::Heartbeat,
        comparisons: [
            Comparison {
                vigil: HaCfTiming::SUBSECOND,
                anchor: Implementation::Heartbeat,
                anchor_timing: Timing::HaCf(HaCfTiming::SUBSECOND),
            },
            Comparison {
                vigil: HaCfTiming::SECONDS,
                anchor: Implementation::Heartbeat,
                anchor_timing: Timing::HaCf(HaCfTiming::SECONDS),
            },
        ],
    };
    /// vigil and keepalived at equal detection windows.
    const VS_KEEPALIVED: Part = Part {
        title: "vigil vs keepalived 2.2.7",
        anchor: Implementation::Keepalived,
        comparisons: [
            Comparison {
                vigil: HaCfTiming::VRRP_SUBSECOND,
                anchor: Implementation::Keepalived,
                anchor_timing: Timing::Vrrp(VrrpTiming::SUBSECOND),
            },
            Comparison {
                vigil: HaCfTiming::FAST,
                anchor: Implementation::Keepalived,
                anchor_timing: Timing::Vrrp(VrrpTiming::FAST),
            },
        ],
    };
}

/// What the command line asked for.
#[derive(Debug, Clone)]
struct Options {
    /// Run the part against Heartbeat.
    vs_heartbeat: bool,
    /// Run the part against keepalived.
    vs_keepalived: bool,
    /// Run the meatware part (vigil and Heartbeat fenced with meatware).
    meatware: bool,
    /// Run the connectivity part (vigil's built-in ipfail and Heartbeat's ipfail).
    connectivity: bool,
    /// Trials of each measurement per implementation and timing.
    trials: usize,
}

impl Options {
    /// What the harness accepts, printed with an argument error.
    const USAGE: &'static str = "usage: failover_vs_anchors [vs-heartbeat] [vs-keepalived] [meatware] [connectivity] \
         [--trials N]";

    /// Parses the arguments after `--`; `--bench`, which cargo adds, is ignored.
    fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            vs_heartbeat: false,
            vs_keepalived: false,
            meatware: false,
            connectivity: false,
            trials: 5,
        };
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--bench" => {}
                "vs-heartbeat" => options.vs_heartbeat = true,
                "vs-keepalived" => options.vs_keepalived = true,
                "meatware" => options.meatware = true,
                "connectivity" => options.connectivity = true,
                "--trials" => {
                    let value = args.next().ok_or("--trials needs a number")?;
                    options.trials =
                        value
                            .parse::<usize>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| {
                                format!("--trials {value}: expected a whole number above 0")
                            })?;
                }
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        if !(options.vs_heartbeat
            || options.vs_keepalived
            || options.meatware
            || options.connectivity)
        {
            options.vs_heartbeat = true;
            options.vs_keepalived = true;
            options.meatware = true;
            options.connectivity = true;
        }
        Ok(options)
    }
}

/// Which anchors and tools this machine has.
struct Installed {
    /// Heartbeat with its IPaddr wrapper, `ifconfig` (which resource-agents' IPaddr runs)
    /// and `hb_standby`.
    heartbeat: bool,
    /// keepalived.
    keepalived: bool,
    /// tcpdump, for the gratuitous ARP.
    tcpdump: bool,
    /// Debian's meatclient, with which the operator confirms a meatware reset.
    meatclient: bool,
}

impl Installed {
    fn probe() -> Installed {
        let all = |paths: &[&str]| paths.iter().all(|p| Path::new(p).exists());
        Installed {
            heartbeat: all(&[
                HEARTBEAT_DAEMON,
                HEARTBEAT_CL_STATUS,
                HEARTBEAT_IPADDR_WRAPPER,
                HEARTBEAT_STANDBY,
                IFCONFIG,
            ]),
            keepalived: all(&[KEEPALIVED]),
            tcpdump: all(&[TCPDUMP]),
            meatclient: all(&[DEBIAN_MEATCLIENT]),
        }
    }

    fn has(&self, implementation: Implementation) -> bool {
        match implementation {
            Implementation::Vigil => true,
            Implementation::Heartbeat => self.heartbeat,
            Implementation::Keepalived => self.keepalived,
        }
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
            "failover_vs_anchors: not run: it needs root to create network namespaces, a \
             bridge and veth pairs, to add addresses, and to run Heartbeat and keepalived in \
             their own namespaces. Run it as root: cargo bench -p vigil --bench \
             failover_vs_anchors"
        );
        return ExitCode::SUCCESS;
    }
    let installed = Installed::probe();
    if !installed.heartbeat && options.vs_heartbeat {
        println!(
            "Heartbeat 3.0.6 is not installed with its IPaddr wrapper and ifconfig \
             ({HEARTBEAT_DAEMON}, {HEARTBEAT_IPADDR_WRAPPER}, {IFCONFIG}); vigil is measured \
             alone at its timings. Install it with .ci/install-test-packages.\n"
        );
    }
    if !installed.keepalived && options.vs_keepalived {
        println!(
            "keepalived is not installed ({KEEPALIVED}); vigil is measured alone at its \
             timings. Install the Debian package keepalived (with a policy-rc.d that exits \
             101, so that it does not start).\n"
        );
    }
    if !installed.tcpdump {
        println!(
            "tcpdump is not installed ({TCPDUMP}): the gratuitous ARP is not measured. \
             Install it with .ci/install-test-packages.\n"
        );
    }
    print_machine(&installed);
    let Some(mut lab) = Lab::new("anchors") else {
        return ExitCode::SUCCESS;
    };
    let nets = [lab.add_node(1), lab.add_node(2)];
    let routers = ROUTER_INDICES.map(|index| lab.add_node(index));
    let mut bench = Bench::new(&lab, &nets, &routers, installed.tcpdump);
    let parts = [
        (options.vs_heartbeat, Part::VS_HEARTBEAT),
        (options.vs_keepalived, Part::VS_KEEPALIVED),
    ];
    for (_, part) in parts.iter().filter(|(wanted, _)| *wanted) {
        let anchor_installed = installed.has(part.anchor);
        eprintln!("{}: {} trials per measurement", part.title, options.trials);
        let load_before = load_average();
        let mut series = Vec::new();
        for comparison in &part.comparisons {
            series.push(run_series(
                &mut bench,
                Implementation::Vigil,
                Timing::HaCf(comparison.vigil),
                options.trials,
            ));
            if anchor_installed {
                series.push(run_series(
                    &mut bench,
                    comparison.anchor,
                    comparison.anchor_timing,
                    options.trials,
                ));
            }
        }
        print_part(part, &series, &load_before, installed.tcpdump);
    }
    if options.meatware {
        run_meatware_part(&mut bench, &installed, options.trials);
    }
    if options.connectivity {
        run_connectivity_part(&mut bench, &installed, options.trials);
    }
    ExitCode::SUCCESS
}

/// The lab indices of the routers the connectivity part pings (198.18.X.50 and .51):
/// `ping` names the first, `ping_group` both.
const ROUTER_INDICES: [u8; 2] = [50, 51];

/// The connectivity part: for `ping`, then `ping_group`, vigil's built-in connectivity
/// failover and then Heartbeat's ipfail, at the lab's timing.
fn run_connectivity_part(bench: &mut Bench<'_>, installed: &Installed, trials: usize) {
    if !Path::new(NFT).exists() {
        println!(
            "connectivity: not run: nftables ({NFT}) drops the owner's pings to the routers. \
             Install the Debian package nftables.\n"
        );
        return;
    }
    eprintln!("connectivity: {trials} trials per implementation and ping line");
    let load_before = load_average();
    let timing = Timing::HaCf(HaCfTiming::SUBSECOND);
    let with_ipfail = installed.heartbeat && Path::new(HEARTBEAT_IPFAIL).exists();
    if !with_ipfail {
        println!("Heartbeat's ipfail ({HEARTBEAT_IPFAIL}) is not installed: vigil alone.\n");
    }
    let mut series = Vec::new();
    for ping in PingKind::ALL {
        series.push(run_ipfail_series(
            bench,
            Implementation::Vigil,
            timing,
            ping,
            trials,
        ));
        if with_ipfail {
            series.push(run_ipfail_series(
                bench,
                Implementation::Heartbeat,
                timing,
                ping,
                trials,
            ));
        }
    }
    print_ipfail_part(&series, &load_before);
}

/// The meatware part: vigil, then Heartbeat, at the lab's timing, fenced with meatware.
fn run_meatware_part(bench: &mut Bench<'_>, installed: &Installed, trials: usize) {
    if !installed.meatclient {
        println!(
            "meatware: not run: Debian's meatclient ({DEBIAN_MEATCLIENT}, package \
             cluster-glue) confirms the resets. Install it with .ci/install-test-packages.\n"
        );
        return;
    }
    eprintln!("meatware: {trials} trials per implementation");
    let load_before = load_average();
    let timing = Timing::HaCf(HaCfTiming::SUBSECOND);
    let mut series = vec![run_meatware_series(
        bench,
        Implementation::Vigil,
        timing,
        trials,
    )];
    if installed.heartbeat {
        series.push(run_meatware_series(
            bench,
            Implementation::Heartbeat,
            timing,
            trials,
        ));
    }
    print_meatware_part(&series, &load_before);
}

/// Prints what the numbers were measured on.
fn print_machine(installed: &Installed) {
    println!("# vigil failover vs Heartbeat 3.0.6 and keepalived 2.2.7\n");
    println!(
        "machine: {}; vigil binary {VIGIL_BIN}; Heartbeat {}; keepalived {}",
        common::machine_description(),
        package_version("heartbeat", installed.heartbeat),
        package_version("keepalived", installed.keepalived),
    );
    println!("load average at start: {}\n", load_average());
}

/// The installed version of a Debian package, as dpkg knows it.
fn package_version(package: &str, installed: bool) -> String {
    if !installed {
        return "not installed".into();
    }
    Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", package])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}
