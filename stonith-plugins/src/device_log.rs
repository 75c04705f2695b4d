//! How a device tells the operator what it does: cluster-glue's plugin log levels (`CRIT`,
//! `ERROR`, `WARN`, `info`, `debug`) carried on `tracing` events.
//!
//! cluster-glue's devices log through their host; its `stonith` tool prints each message as
//! `LEVEL: text` on a terminal and sends it to syslog otherwise, and meatware's `CRIT` lines
//! are what tells an operator to act. Every event here carries its level's name in the
//! [`SEVERITY_FIELD`] field (tracing has no critical level), so the daemon's log shows it and
//! the `stonith` tool can print the same lines cluster-glue prints. What an `external/*`
//! script writes on stderr is an event of its own target, [`SCRIPT_STDERR_TARGET`], so the
//! tool can pass it through unchanged as cluster-glue does. This module only emits events;
//! where they go is the subscriber's business.

/// The event field that names cluster-glue's level (`CRIT`, `ERROR`, `WARN`, `info`, `debug`).
pub const SEVERITY_FIELD: &str = "severity";

/// The target of events carrying an `external/*` script's own stderr, verbatim.
pub const SCRIPT_STDERR_TARGET: &str = "vigil_stonith::script_stderr";

/// cluster-glue's plugin log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// `CRIT`: the operator must act (meatware) or a reset failed.
    Critical,
    /// `ERROR`: an operation failed.
    Error,
    /// `WARN`: something is off but the operation went on.
    Warning,
    /// `info`: what was done (`Host null-reset: hb2`).
    Info,
    /// `debug`: details for `stonith -d`.
    Debug,
}

impl Severity {
    /// The word cluster-glue's `stonith` tool prints before the message.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Critical => "CRIT",
            Severity::Error => "ERROR",
            Severity::Warning => "WARN",
            Severity::Info => "info",
            Severity::Debug => "debug",
        }
    }

    /// The severity named `label`, as found in an event's [`SEVERITY_FIELD`].
    pub fn from_label(label: &str) -> Option<Severity> {
        [
            Severity::Critical,
            Severity::Error,
            Severity::Warning,
            Severity::Info,
            Severity::Debug,
        ]
        .into_iter()
        .find(|severity| severity.label() == label)
    }
}

/// Logs `message` at `severity`: `Critical` and `Error` as tracing errors, the others at
/// their own level, each with the cluster-glue label in [`SEVERITY_FIELD`].
pub fn log(severity: Severity, message: &str) {
    match severity {
        Severity::Critical => tracing::error!(severity = "CRIT", "{message}"),
        Severity::Error => tracing::error!(severity = "ERROR", "{message}"),
        Severity::Warning => tracing::warn!(severity = "WARN", "{message}"),
        Severity::Info => tracing::info!(severity = "info", "{message}"),
        Severity::Debug => tracing::debug!(severity = "debug", "{message}"),
    }
}

/// Passes on what a script wrote on stderr, unchanged (`text` as read, newlines included).
pub fn script_stderr(script: &str, text: &str) {
    tracing::info!(target: SCRIPT_STDERR_TARGET, script, "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_match_cluster_glue() {
        let labels: Vec<&str> = [
            Severity::Critical,
            Severity::Error,
            Severity::Warning,
            Severity::Info,
            Severity::Debug,
        ]
        .into_iter()
        .map(|severity| {
            assert_eq!(Severity::from_label(severity.label()), Some(severity));
            severity.label()
        })
        .collect();
        assert_eq!(labels, ["CRIT", "ERROR", "WARN", "info", "debug"]);
        assert_eq!(Severity::from_label("crit"), None);
    }
}
