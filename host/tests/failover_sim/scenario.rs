//! Scenarios for the failover simulation, drawn from a seed.
//!
//! Times are in milliseconds from the start of the run. A scenario prints itself in full, so
//! a failing seed reads as a bug report.

use std::fmt;

use vigil::config::AutoFailback;
use vigil::failover::HoldSet;

use super::rng::Rng;

/// The family of faults a scenario exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Crashes, restarts, graceful shutdowns, operator commands, agent failures and a lightly
    /// lossy network, but never a partition: no group may ever be active on two nodes.
    Clean,
    /// The same plus partitions longer than the deadtime: duplicates are allowed while split,
    /// but the cluster must converge to one owner per group after healing.
    Partitions,
    /// Two nodes, one of them Heartbeat 3.0.6 (`heartbeat.rs`), `auto_failback` on or off,
    /// agents that never fail, crashes, restarts, shutdowns, standby and takeover on either
    /// side: vigil must interoperate.
    Heartbeat,
}

/// One group of the simulated haresources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    pub preferred: usize,
    /// Empty: the default order.
    pub order: Vec<usize>,
    /// One entry per resource: its monitor (interval ms, restarts), if any.
    pub resources: Vec<Option<(u64, u32)>>,
}

/// Something that happens to a node at a given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Boot(usize),
    Crash(usize),
    Shutdown(usize),
    Standby(usize, HoldSet),
    Takeover(usize, HoldSet),
    /// The resource dies under the agent's feet (its next monitor fails).
    KillResource {
        node: usize,
        group: usize,
        resource: usize,
    },
}

/// A whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub seed: u64,
    pub kind: Kind,
    pub nodes: usize,
    pub groups: Vec<GroupSpec>,
    pub auto_failback: AutoFailback,
    pub keepalive: u64,
    pub deadtime: u64,
    pub initdead: u64,
    /// Probability that one copy of a message is lost (membership retransmits).
    pub loss: f64,
    /// Messages take 0.5 ms up to this long (µs), so messages of different senders overtake
    /// each other.
    pub max_delay_us: u64,
    /// Probability that a start fails.
    pub start_failure: f64,
    /// Probability that a stop fails (never more than twice in a row for a resource).
    pub stop_failure: f64,
    /// Agent operations take this long, uniformly (ms).
    pub operation_ms: (u64, u64),
    pub actions: Vec<(u64, Action)>,
    /// (group of nodes, from, until): no traffic between the group and the rest.
    pub partitions: Vec<(Vec<usize>, u64, u64)>,
    /// Faults and commands happen before this time.
    pub active_until: u64,
    /// The run ends here: the cluster must have converged by then.
    pub duration: u64,
    /// The node that runs Heartbeat 3.0.6 instead of vigil.
    pub heartbeat_node: Option<usize>,
}

/// How long after the last fault or command every group must be running on exactly one
/// eligible node: the initdead of a node booting while another is dead, two deadtimes to
/// notice deaths, and 8 s for stops (with their retries a second apart), starts and claims.
pub fn settle_bound(initdead: u64, deadtime: u64) -> u64 {
    initdead + 2 * deadtime + 8000
}

/// With a Heartbeat peer, up to Heartbeat's own delays more: 10 s in RSCRCVD before it takes
/// its groups unasked, and 10 s before an unanswered standby request is cancelled and tried
/// again.
const HEARTBEAT_DELAYS: u64 = 22_000;

impl Scenario {
    pub fn generate(seed: u64, kind: Kind) -> Scenario {
        let mut rng = Rng::new(seed);
        let heartbeat = kind == Kind::Heartbeat;
        let nodes = if heartbeat {
            2
        } else {
            rng.between(2, 5) as usize
        };
        let keepalive = rng.pick(&[100, 150, 200]);
        let deadtime = keepalive * rng.between(5, 7);
        let initdead = deadtime * 2;
        let group_count = rng.between(1, 4) as usize;
        let groups = (0..group_count)
            .map(|_| {
                let preferred = rng.between(0, nodes as u64 - 1) as usize;
                let order = if !heartbeat && rng.chance(0.25) {
                    let mut all: Vec<usize> = (0..nodes).collect();
                    let mut order = Vec::new();
                    let size = rng.between(1, nodes as u64) as usize;
                    for _ in 0..size {
                        let i = rng.between(0, all.len() as u64 - 1) as usize;
                        order.push(all.remove(i));
                    }
                    order
                } else {
                    Vec::new()
                };
                let resources = (0..rng.between(1, 3))
                    .map(|_| {
                        (!heartbeat && rng.chance(0.4))
                            .then(|| (rng.between(200, 1000), rng.between(0, 2) as u32))
                    })
                    .collect();
                GroupSpec {
                    preferred,
                    order,
                    resources,
                }
            })
            .collect();
        let auto_failback = if heartbeat {
            rng.pick(&[AutoFailback::On, AutoFailback::Off])
        } else {
            rng.pick(&[AutoFailback::On, AutoFailback::Off, AutoFailback::Legacy])
        };
        let active_until = rng.between(4000, 7000);
        let mut duration = active_until + settle_bound(initdead, deadtime);
        if heartbeat {
            duration += HEARTBEAT_DELAYS;
        }
        let mut scenario = Scenario {
            seed,
            kind,
            nodes,
            groups,
            auto_failback,
            keepalive,
            deadtime,
            initdead,
            loss: rng.probability(0.01),
            max_delay_us: rng.pick(&[2_000, 10_000, 40_000]),
            start_failure: if heartbeat {
                0.0
            } else {
                rng.probability(0.05)
            },
            stop_failure: if heartbeat {
                0.0
            } else {
                rng.probability(0.05)
            },
            operation_ms: (1, rng.between(20, 200)),
            actions: Vec::new(),
            partitions: Vec::new(),
            active_until,
            duration,
            heartbeat_node: heartbeat.then(|| rng.between(0, 1) as usize),
        };
        for node in 0..nodes {
            let at = rng.between(0, initdead / 2);
            scenario.actions.push((at, Action::Boot(node)));
        }
        let first = initdead + 200;
        for _ in 0..rng.between(0, 3) {
            let node = rng.between(0, nodes as u64 - 1) as usize;
            let at = rng.between(first, active_until);
            scenario.actions.push((at, Action::Crash(node)));
            if rng.chance(0.7) {
                // Heartbeat does not notice a peer that restarts within its deadtime (which
                // a node announces 2 s longer right after it starts): the groups that peer
                // held for it stay unowned, between two 3.0.6 nodes as with vigil.
                let least = if heartbeat { deadtime + 2500 } else { 0 };
                let up = (at + rng.between(least, least + 3000)).min(active_until + least);
                scenario.actions.push((up, Action::Boot(node)));
            }
        }
        if rng.chance(0.4) {
            let node = rng.between(0, nodes as u64 - 1) as usize;
            let at = rng.between(first, active_until);
            scenario.actions.push((at, Action::Shutdown(node)));
            if rng.chance(0.7) {
                // A lost `shutdone` leaves only the deadtime to notice the leave (see above).
                let least = if heartbeat { deadtime + 2500 } else { 500 };
                let up = (at + rng.between(least, least + 2500)).min(active_until + least);
                scenario.actions.push((up, Action::Boot(node)));
            }
        }
        let sets = [HoldSet::Local, HoldSet::Foreign, HoldSet::All];
        for _ in 0..rng.between(0, 8) {
            let node = rng.between(0, nodes as u64 - 1) as usize;
            let at = rng.between(first, active_until);
            let action = match rng.between(0, 2) {
                0 => Action::Standby(node, rng.pick(&sets)),
                1 => Action::Takeover(node, rng.pick(&sets)),
                _ => Action::Standby(node, HoldSet::None),
            };
            scenario.actions.push((at, action));
        }
        // Only monitored resources die: nothing could notice the others.
        let monitored: Vec<(usize, usize)> = scenario
            .groups
            .iter()
            .enumerate()
            .flat_map(|(g, spec)| {
                spec.resources
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| m.is_some())
                    .map(move |(r, _)| (g, r))
            })
            .collect();
        for _ in 0..rng.between(0, 3) {
            if monitored.is_empty() || heartbeat {
                break;
            }
            let node = rng.between(0, nodes as u64 - 1) as usize;
            let (group, resource) = rng.pick(&monitored);
            let at = rng.between(first, active_until);
            scenario.actions.push((
                at,
                Action::KillResource {
                    node,
                    group,
                    resource,
                },
            ));
        }
        if kind == Kind::Partitions {
            for _ in 0..rng.between(1, 2) {
                let size = rng.between(1, nodes as u64 - 1) as usize;
                let mut all: Vec<usize> = (0..nodes).collect();
                let mut side = Vec::new();
                for _ in 0..size {
                    let i = rng.between(0, all.len() as u64 - 1) as usize;
                    side.push(all.remove(i));
                }
                side.sort();
                let from = rng.between(first, active_until.saturating_sub(deadtime + 100));
                let until = (from + deadtime + rng.between(100, 2500)).min(active_until);
                scenario.partitions.push((side, from, until));
            }
        }
        scenario.actions.sort_by_key(|(at, _)| *at);
        scenario
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} kind {:?}: {} nodes, auto_failback {}{}",
            self.seed,
            self.kind,
            self.nodes,
            self.auto_failback.as_str(),
            self.heartbeat_node
                .map(|n| format!(", n{} runs Heartbeat 3.0.6", n + 1))
                .unwrap_or_default()
        )?;
        writeln!(
            f,
            "  timing: keepalive {} deadtime {} initdead {} (ms); loss {}, delay up to {} µs; \
             operations {:?} ms, start failure {}, stop failure {}",
            self.keepalive,
            self.deadtime,
            self.initdead,
            self.loss,
            self.max_delay_us,
            self.operation_ms,
            self.start_failure,
            self.stop_failure
        )?;
        for (i, group) in self.groups.iter().enumerate() {
            writeln!(
                f,
                "  group g{i}: preferred n{} order {:?} resources {:?}",
                group.preferred + 1,
                group.order.iter().map(|n| n + 1).collect::<Vec<_>>(),
                group.resources
            )?;
        }
        for (at, action) in &self.actions {
            writeln!(f, "  at {at}: {action:?}")?;
        }
        for (side, from, until) in &self.partitions {
            writeln!(f, "  partition {side:?} from {from} until {until}")?;
        }
        write!(
            f,
            "  active until {}, converged by {}",
            self.active_until, self.duration
        )
    }
}
