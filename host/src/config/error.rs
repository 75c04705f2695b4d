//! The one error type of the configuration layer.
//!
//! Every variant names where the problem is (`file:line`, or `file:line:column` for YAML)
//! and what was expected, so an operator can fix the file without reading code. Nothing here
//! ever carries key material: authentication errors name the slot, never the key.

use std::io;

use thiserror::Error;
use vigil_plugin_api::MediumError;

use crate::wire::auth::AuthKeysError;

/// Why a cluster configuration could not be read or is not valid.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A configuration file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file as given.
        path: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A configuration file is not UTF-8 text.
    #[error("{origin}: not UTF-8 text (expected a text file)")]
    NotUtf8 {
        /// The file and line where the first invalid byte is.
        origin: String,
    },
    /// A file holding keys can be read by group or others (Heartbeat refuses to start too).
    #[error(
        "{path}: mode {mode:04o} lets group or others read the authentication keys \
         (expected no group or other read permission: run `chmod 600 {path}`)"
    )]
    SecretsReadable {
        /// The file holding keys.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// A ha.cf line starts with a word that is neither a directive nor a medium.
    #[error(
        "{origin}: unknown directive `{directive}` (expected a ha.cf directive or a medium: {media})"
    )]
    UnknownDirective {
        /// Where the line is.
        origin: String,
        /// The word found.
        directive: String,
        /// The media this build offers.
        media: String,
    },
    /// A medium name no plugin provides (in the YAML `media` list).
    #[error("{origin}: unknown medium `{kind}` (expected one of: {available})")]
    UnknownMedium {
        /// Where the medium is configured.
        origin: String,
        /// The name found.
        kind: String,
        /// The media this build offers.
        available: String,
    },
    /// A Heartbeat medium that this build does not provide.
    #[error("{origin}: medium `{kind}` is not available in this build (available: {available})")]
    MediumUnavailable {
        /// Where the medium is configured.
        origin: String,
        /// The medium named.
        kind: String,
        /// The media this build offers.
        available: String,
    },
    /// A directive's value does not have the expected syntax or range.
    #[error("{origin}: {directive} `{value}` is not valid (expected {expected})")]
    BadValue {
        /// Where the value is.
        origin: String,
        /// The directive or field it belongs to.
        directive: String,
        /// The value as written.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A directive was given without the value it needs.
    #[error("{origin}: {directive} needs a value (expected {expected})")]
    MissingValue {
        /// Where the directive is.
        origin: String,
        /// The directive.
        directive: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A directive that must precede another came after it.
    #[error("{origin}: {directive} must come before {before} ({before_origin})")]
    OutOfOrder {
        /// Where the late directive is.
        origin: String,
        /// The late directive.
        directive: String,
        /// What it must precede.
        before: String,
        /// Where that is.
        before_origin: String,
    },
    /// Something that may be given once was given twice.
    #[error("{origin}: {what} given twice (first at {first})")]
    Duplicate {
        /// Where the second one is.
        origin: String,
        /// What was repeated.
        what: String,
        /// Where the first one is.
        first: String,
    },
    /// The timing values break one of Heartbeat's rules (deadtime against keepalive, …).
    #[error("{origin}: {message}")]
    Timing {
        /// The directive at fault.
        origin: String,
        /// The rule and the values involved.
        message: String,
    },
    /// Something every cluster needs is absent (nodes, media, the outbound key slot).
    #[error("{file}: no {what} configured (expected {expected})")]
    Missing {
        /// The file that should have held it.
        file: String,
        /// What is missing.
        what: String,
        /// What would satisfy the rule.
        expected: String,
    },
    /// A node name that is not among the configured nodes.
    #[error("{origin}: `{node}` is not a configured node (nodes: {nodes})")]
    UnknownNode {
        /// Where the name is.
        origin: String,
        /// The name found, lower-cased.
        node: String,
        /// The configured nodes.
        nodes: String,
    },
    /// Two settings that cannot be used together.
    #[error("{origin}: {message}")]
    Conflict {
        /// The directive at fault.
        origin: String,
        /// What conflicts and how to resolve it.
        message: String,
    },
    /// A `respawn`/`failfast` line names a user this machine does not know: the program
    /// could not be started as that user, so the daemon must not start at all.
    #[error(
        "{origin}: {directive}: user `{user}` does not exist on this machine (expected a user \
         name from the password database, such as hacluster)"
    )]
    UnknownUser {
        /// The line or YAML entry.
        origin: String,
        /// `respawn` or `failfast`.
        directive: String,
        /// The user name as written.
        user: String,
    },
    /// A medium plugin refused its configuration line; its message names the line.
    #[error(transparent)]
    Medium(#[from] MediumError),
    /// An `authkeys` line (or the YAML `auth` entry) is malformed. The message never quotes
    /// the line, which may hold a key.
    #[error("{origin}: {message}")]
    Auth {
        /// Where the line is.
        origin: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The key slots do not form a usable set.
    #[error("{origin}: {source}")]
    AuthKeys {
        /// Where the slots are defined.
        origin: String,
        /// The rule broken.
        #[source]
        source: AuthKeysError,
    },
    /// A resource group is malformed: a haresources line, or a YAML group's resources or
    /// order.
    #[error("{origin}: {message}")]
    Resources {
        /// Where the line or value is.
        origin: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The YAML file does not match vigil's schema.
    #[error("{origin}: {message}")]
    Yaml {
        /// `file:line:column` of the offending value, when the parser knows it.
        origin: String,
        /// What the parser expected.
        message: String,
    },
    /// The local node's name is not one of the cluster's nodes.
    #[error(
        "local node name `{name}` (from {from}) is not one of the configured nodes ({nodes}); \
         add it to the nodes or set the name in {hint}"
    )]
    LocalNodeNotListed {
        /// The name found, lower-cased.
        name: String,
        /// Where it came from (`node_name in …`, `…/nodeinfo:1`, `uname -n`).
        from: String,
        /// The configured nodes.
        nodes: String,
        /// Where the operator can set the name instead.
        hint: String,
    },
    /// The local node's name could not be determined at all.
    #[error("cannot determine the local node name: {reason}")]
    LocalNodeUnknown {
        /// What failed.
        reason: String,
    },
}
