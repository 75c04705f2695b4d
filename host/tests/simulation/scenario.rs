//! Scenarios: what the simulated network and nodes do, drawn from a seed.
//!
//! Times are in milliseconds from the start of the run. A scenario prints itself in full,
//! so a failing seed reads as a bug report.

use std::fmt;

use super::rng::Rng;

/// The family of faults a scenario exercises; each family has its own checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Random loss, duplication and reordering, no other fault.
    Lossy,
    /// Link cuts and partitions shorter than the deadtime, otherwise a clean network: nobody
    /// may die, and every lost message must be recovered.
    ShortOutages,
    /// Nodes freeze (stop sending and receiving), some for good, some for a while.
    Freezes,
    /// Nodes crash and come back with the next generation, sometimes faster than deadtime.
    Restarts,
    /// Partitions longer than the deadtime, then healed.
    Partitions,
    /// All of the above at once, with light loss.
    Mixed,
}

/// Timing parameters shared by every node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub keepalive: u64,
    pub deadtime: u64,
    pub warntime: u64,
    pub initdead: u64,
    pub max_rexmit_delay: u64,
}

/// One fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `node`'s medium `medium` carries nothing in either direction during `[from, until)`.
    CutMedium {
        node: usize,
        medium: usize,
        from: u64,
        until: u64,
    },
    /// No traffic between `group` and the other nodes during `[from, until)`.
    Partition {
        group: Vec<usize>,
        from: u64,
        until: u64,
    },
    /// `node` neither runs nor receives during `[from, until)` (`until == None`: for good).
    Freeze {
        node: usize,
        from: u64,
        until: Option<u64>,
    },
    /// `node` crashes at `down` and starts again at `up` with the next generation.
    Restart { node: usize, down: u64, up: u64 },
}

/// A whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub seed: u64,
    pub kind: Kind,
    pub nodes: usize,
    pub media: usize,
    pub timing: Timing,
    /// When each node starts.
    pub starts: Vec<u64>,
    /// The run ends here; faults and loss stop `settle` ms before.
    pub duration: u64,
    pub settle: u64,
    /// Probability that one copy of a message on one medium to one node is lost.
    pub loss: f64,
    /// Probability that a copy is delivered twice.
    pub duplicate: f64,
    /// Probability that a copy is held back by up to `reorder_ms` extra.
    pub reorder: f64,
    pub reorder_ms: u64,
    /// Whether a node receives its own messages back (broadcast-like media).
    pub own_loopback: bool,
    pub faults: Vec<Fault>,
    /// Client messages: (time, sending node).
    pub client_messages: Vec<(u64, usize)>,
}

impl Scenario {
    /// Draws the scenario of `kind` for `seed`.
    pub fn generate(seed: u64, kind: Kind) -> Scenario {
        let mut rng = Rng::new(seed);
        let nodes = rng.between(2, 5) as usize;
        let media = rng.between(1, 2) as usize;
        let keepalive = rng.pick(&[100, 150, 200]);
        let deadtime = keepalive * rng.between(4, 7);
        let timing = Timing {
            keepalive,
            deadtime,
            warntime: deadtime / 2,
            initdead: deadtime * 2,
            max_rexmit_delay: rng.pick(&[60, 120, 250]),
        };
        let settle = timing.initdead + 2 * timing.deadtime + 1000;
        let active = rng.between(3000, 5000);
        let duration = active + settle;
        let start_spread = match kind {
            Kind::ShortOutages => timing.initdead / 2,
            _ => timing.initdead * 3 / 4,
        };
        let starts = (0..nodes).map(|_| rng.between(0, start_spread)).collect();
        let (loss, duplicate, reorder) = match kind {
            Kind::Lossy => (
                rng.probability(0.2),
                rng.probability(0.1),
                rng.probability(0.3),
            ),
            Kind::ShortOutages => (0.0, rng.probability(0.05), rng.probability(0.2)),
            _ => (
                rng.probability(0.02),
                rng.probability(0.05),
                rng.probability(0.1),
            ),
        };
        let reorder_ms = rng.between(1, 20);
        let mut scenario = Scenario {
            seed,
            kind,
            nodes,
            media,
            timing,
            starts,
            duration,
            settle,
            loss,
            duplicate,
            reorder,
            reorder_ms,
            own_loopback: rng.chance(0.5),
            faults: Vec::new(),
            client_messages: Vec::new(),
        };
        let end_of_faults = duration - settle;
        match kind {
            Kind::Lossy => {}
            Kind::ShortOutages => scenario.add_short_outages(&mut rng, end_of_faults),
            Kind::Freezes => scenario.add_freezes(&mut rng, end_of_faults),
            Kind::Restarts => scenario.add_restarts(&mut rng, end_of_faults),
            Kind::Partitions => scenario.add_partitions(&mut rng, end_of_faults),
            Kind::Mixed => {
                scenario.add_freezes(&mut rng, end_of_faults);
                scenario.add_restarts(&mut rng, end_of_faults);
                scenario.add_partitions(&mut rng, end_of_faults);
                for _ in 0..rng.between(0, 2) {
                    let node = rng.between(0, nodes as u64 - 1) as usize;
                    let medium = rng.between(0, media as u64 - 1) as usize;
                    let from = rng.between(500, end_of_faults);
                    let until = (from + rng.between(50, 3 * deadtime)).min(end_of_faults);
                    scenario.faults.push(Fault::CutMedium {
                        node,
                        medium,
                        from,
                        until,
                    });
                }
            }
        }
        // Where every message must arrive, they are sent once every node runs: a node starts
        // tracking a peer at the first message it sees, and cannot ask for older ones.
        let first_message = match kind {
            Kind::ShortOutages => scenario.starts.iter().max().copied().unwrap_or(0) + 500,
            _ => 100,
        };
        let count = rng.between(5, 30);
        let mut messages: Vec<(u64, usize)> = (0..count)
            .map(|_| {
                (
                    rng.between(first_message, end_of_faults),
                    rng.between(0, nodes as u64 - 1) as usize,
                )
            })
            .collect();
        messages.sort();
        scenario.client_messages = messages;
        scenario
    }

    /// Non-overlapping outages, each short enough that at most one keepalive-and-a-bit of
    /// extra silence fits under the deadtime.
    fn add_short_outages(&mut self, rng: &mut Rng, end: u64) {
        let t = self.timing;
        let longest = t
            .deadtime
            .saturating_sub(2 * t.keepalive + self.reorder_ms + 30);
        let mut at = rng.between(300, 1500);
        for _ in 0..rng.between(1, 4) {
            let length = rng.between(30, longest.max(30));
            if at + length >= end {
                break;
            }
            let fault = if rng.chance(0.5) {
                Fault::CutMedium {
                    node: rng.between(0, self.nodes as u64 - 1) as usize,
                    medium: rng.between(0, self.media as u64 - 1) as usize,
                    from: at,
                    until: at + length,
                }
            } else {
                Fault::Partition {
                    group: self.random_group(rng),
                    from: at,
                    until: at + length,
                }
            };
            self.faults.push(fault);
            at += length + t.deadtime + rng.between(0, 1000);
        }
    }

    fn add_freezes(&mut self, rng: &mut Rng, end: u64) {
        let t = self.timing;
        for _ in 0..rng.between(1, (self.nodes as u64 - 1).max(1)) {
            let node = rng.between(0, self.nodes as u64 - 1) as usize;
            let from = rng.between(200, end.saturating_sub(t.deadtime));
            let until = match rng.between(0, 2) {
                0 => None,
                1 => Some(from + t.deadtime + rng.between(100, 2000)),
                _ => Some(from + rng.between(10, t.deadtime / 2)),
            };
            self.faults.push(Fault::Freeze {
                node,
                from,
                until: until.map(|u| u.min(end)),
            });
        }
    }

    fn add_restarts(&mut self, rng: &mut Rng, end: u64) {
        for _ in 0..rng.between(1, 2) {
            let node = rng.between(0, self.nodes as u64 - 1) as usize;
            let down = rng.between(self.starts[node] + 300, end.saturating_sub(500));
            let up = (down + rng.between(0, 3000)).min(end);
            self.faults.push(Fault::Restart { node, down, up });
        }
    }

    fn add_partitions(&mut self, rng: &mut Rng, end: u64) {
        let t = self.timing;
        for _ in 0..rng.between(1, 2) {
            let from = rng.between(500, end.saturating_sub(t.deadtime + 200));
            let until = (from + t.deadtime + rng.between(100, 2500)).min(end);
            self.faults.push(Fault::Partition {
                group: self.random_group(rng),
                from,
                until,
            });
        }
    }

    /// A non-empty proper subset of the nodes.
    fn random_group(&self, rng: &mut Rng) -> Vec<usize> {
        let size = rng.between(1, self.nodes as u64 - 1) as usize;
        let mut all: Vec<usize> = (0..self.nodes).collect();
        let mut group = Vec::with_capacity(size);
        for _ in 0..size {
            let i = rng.between(0, all.len() as u64 - 1) as usize;
            group.push(all.remove(i));
        }
        group.sort();
        group
    }

    /// Whether any node restarts (old generations may then still be in flight).
    pub fn has_restarts(&self) -> bool {
        self.faults
            .iter()
            .any(|f| matches!(f, Fault::Restart { .. }))
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.timing;
        writeln!(
            f,
            "seed {} kind {:?}: {} nodes, {} media, own loopback {}",
            self.seed, self.kind, self.nodes, self.media, self.own_loopback
        )?;
        writeln!(
            f,
            "  timing: keepalive {} deadtime {} warntime {} initdead {} max_rexmit_delay {} (ms)",
            t.keepalive, t.deadtime, t.warntime, t.initdead, t.max_rexmit_delay
        )?;
        writeln!(
            f,
            "  starts {:?}, duration {} ms (settling the last {} ms)",
            self.starts, self.duration, self.settle
        )?;
        writeln!(
            f,
            "  network: loss {} duplicate {} reorder {} (up to {} ms)",
            self.loss, self.duplicate, self.reorder, self.reorder_ms
        )?;
        for fault in &self.faults {
            writeln!(f, "  fault: {fault:?}")?;
        }
        write!(f, "  client messages: {:?}", self.client_messages)
    }
}
