//! Deterministic simulation of the membership machine: 2–5 nodes over a simulated network
//! and clock, many seeds per fault family, invariants checked after every step.
//!
//! Invariants (see `simulation/mod.rs`): (1) no node is declared dead while its new status
//! messages keep arriving within the deadtime; (2) a silent node is declared dead no later
//! than its last status arrival + its deadtime + 1 ms; (3) every connected observer reports a
//! restart; (4) after outages shorter than the deadtime nothing is lost and nobody dies. Also:
//! well-formed traffic is never refused, client messages are delivered once and in order, and
//! after the network settles every pair of running nodes sees each other alive and active.
//!
//! A failure prints the seed and the scenario. Replay one seed, with a trace of every step:
//! `VIGIL_SIM_SEED=<seed> cargo test -p vigil --test membership_simulation <test name>`.
//! `VIGIL_SIM_SCENARIOS=<n>` changes how many seeds each test runs.

mod simulation;

use simulation::scenario::{Kind, Scenario};

/// Seeds per fault family by default: six families, 600 scenarios in all.
const DEFAULT_SCENARIOS: u64 = 100;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs `kind` over many seeds (or the one in `VIGIL_SIM_SEED`) and returns the totals.
fn run_family(kind: Kind, first_seed: u64) -> simulation::Report {
    let seeds: Vec<u64> = match env_u64("VIGIL_SIM_SEED") {
        Some(seed) => vec![seed],
        None => {
            let count = env_u64("VIGIL_SIM_SCENARIOS").unwrap_or(DEFAULT_SCENARIOS);
            (first_seed..first_seed + count).collect()
        }
    };
    let single = seeds.len() == 1;
    let mut total = simulation::Report {
        deaths: 0,
        restarts_seen: 0,
        returns_seen: 0,
        retransmissions: 0,
        steps: 0,
    };
    for seed in seeds {
        let scenario = Scenario::generate(seed, kind);
        let mut trace = Vec::new();
        let result = simulation::run(&scenario, single.then_some(&mut trace));
        if single {
            for line in &trace {
                eprintln!("{line}");
            }
        }
        match result {
            Ok(report) => {
                total.deaths += report.deaths;
                total.restarts_seen += report.restarts_seen;
                total.returns_seen += report.returns_seen;
                total.retransmissions += report.retransmissions;
                total.steps += report.steps;
            }
            Err(violation) => panic!(
                "{violation}\n{scenario}\nreplay with: VIGIL_SIM_SEED={seed} cargo test -p vigil \
                 --test membership_simulation"
            ),
        }
    }
    total
}

#[test]
fn lossy_networks_never_cause_false_deaths_and_deliver_in_order() {
    let report = run_family(Kind::Lossy, 1_000);
    assert!(report.steps > 0);
}

#[test]
fn outages_shorter_than_deadtime_are_recovered_by_retransmission_without_deaths() {
    let report = run_family(Kind::ShortOutages, 2_000);
    assert_eq!(report.deaths, 0);
    if env_u64("VIGIL_SIM_SEED").is_none() {
        assert!(
            report.retransmissions > 0,
            "no scenario needed a retransmission: the outages test nothing"
        );
    }
}

#[test]
fn frozen_nodes_are_declared_dead_in_time_by_every_observer() {
    let report = run_family(Kind::Freezes, 3_000);
    if env_u64("VIGIL_SIM_SEED").is_none() {
        assert!(
            report.deaths > 0,
            "no freeze was long enough to kill: nothing tested"
        );
    }
}

#[test]
fn restarted_nodes_are_seen_restarted_by_every_connected_observer() {
    let report = run_family(Kind::Restarts, 4_000);
    if env_u64("VIGIL_SIM_SEED").is_none() {
        assert!(
            report.restarts_seen > 0,
            "no restart was observed: nothing tested"
        );
    }
}

#[test]
fn healed_partitions_are_reported_and_converge() {
    let report = run_family(Kind::Partitions, 5_000);
    if env_u64("VIGIL_SIM_SEED").is_none() {
        assert!(
            report.returns_seen > 0,
            "no return after partition: nothing tested"
        );
    }
}

#[test]
fn everything_at_once_keeps_every_invariant() {
    let report = run_family(Kind::Mixed, 6_000);
    assert!(report.steps > 0);
}
