//! `vigil status`: the running daemon's membership, links and drop counters, as tables for
//! people or as one JSON object for programs.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use crate::api::{ApiClient, StatusReport, client_socket_path};
use crate::failover::LocalGroupState;

/// Prints the status of the daemon behind `socket` (or the default socket).
pub fn run(json: bool, socket: Option<&Path>) -> anyhow::Result<ExitCode> {
    let path = client_socket_path(socket);
    let report = ApiClient::connect(&path)?.status()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_table(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// The human-readable form: one line per node with its links, then the counters.
pub fn render_table(report: &StatusReport) -> String {
    let m = &report.membership;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "local node {} is {} (generation {})",
        m.local_node,
        m.local_status.as_str(),
        m.generation
    );
    let width = m
        .nodes
        .iter()
        .map(|n| n.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "{:width$}  {:6}  {:6}  LINKS",
        "NODE", "TYPE", "STATUS"
    );
    for node in &m.nodes {
        let links: Vec<String> = node
            .links
            .iter()
            .map(|l| format!("{} {}", l.name, if l.up { "up" } else { "dead" }))
            .collect();
        let _ = writeln!(
            out,
            "{:width$}  {:6}  {:6}  {}",
            node.name,
            node.node_type,
            node.status.as_str(),
            links.join(", ")
        );
    }
    let groups = &report.failover.groups;
    if !groups.is_empty() {
        let key_width = groups.iter().map(|g| g.key.len()).max().unwrap_or(5).max(5);
        let _ = writeln!(
            out,
            "resources here: {}",
            report.failover.rsc_status.as_str()
        );
        let _ = writeln!(
            out,
            "{:key_width$}  {:9}  {:9}  {:9}",
            "GROUP", "PREFERRED", "OWNER", "HERE"
        );
        for group in groups {
            let _ = writeln!(
                out,
                "{:key_width$}  {:9}  {:9}  {}{}",
                group.key,
                group.preferred,
                group.owner.as_deref().unwrap_or("-"),
                local_state_word(group.local),
                if group.standby { " (standby)" } else { "" }
            );
        }
    }
    for fence in &report.failover.fencing {
        let by = fence.by.as_deref().unwrap_or("-");
        let _ = write!(
            out,
            "STONITH {}: {} by {by} (attempts {}); waiting: {}",
            fence.node,
            fence.state,
            fence.attempts,
            fence.groups.join(" ")
        );
        match &fence.last_error {
            Some(error) => {
                let _ = writeln!(out, "; last error: {error}");
            }
            None => {
                let _ = writeln!(out);
            }
        }
    }
    if report.drops.is_empty() {
        let _ = writeln!(out, "dropped: none");
    } else {
        let drops: Vec<String> = report
            .drops
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(out, "dropped: {}", drops.join(" "));
    }
    out
}

/// The word the table shows for this node's part in a group (the JSON form uses the same).
fn local_state_word(state: LocalGroupState) -> &'static str {
    match state {
        LocalGroupState::Stopped => "stopped",
        LocalGroupState::Starting => "starting",
        LocalGroupState::Running => "running",
        LocalGroupState::Stopping => "stopping",
        LocalGroupState::Failed => "failed",
    }
}
