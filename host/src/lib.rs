//! vigil: a high-availability cluster daemon, the drop-in successor to Linux-HA Heartbeat 3.
//!
//! The architecture, one module a job:
//! - [`wire`]: the message model, Heartbeat's netstring and classic codecs, and authentication.
//! - [`config`]: the typed cluster model, read from ha.cf/authkeys/haresources or YAML.
//! - [`membership`]: the sans-IO membership state machine (who is alive, over which links).
//! - [`failover`]: the sans-IO resource-group machine (who runs which group, and running ours).
//! - [`runtime`]: the tokio glue that owns sockets, threads, timers and files.
//! - [`api`]: the local client socket (status, counters, the ordered event stream).
//! - [`cli`]: the multi-call command line (`vigil …`, and `cl_status` under that name).
//! - [`registry`]: the built-in plugins, registered into one `Registry`.
//! - [`resources`]: each configured resource resolved to the agent and instance that run it.
//! - [`agent_host`]: the real `Host` agents act through (netlink addresses, gratuitous ARP,
//!   commands, files).
//!
//! The protocol modules (`wire`, `membership`) never touch a clock, socket or file; the
//! runtime feeds them and carries out what they ask.

pub mod agent_host;
pub mod api;
pub mod cli;
pub mod config;
pub mod failover;
pub mod fencing;
pub mod membership;
pub mod registry;
pub mod resources;
pub mod runtime;
pub mod wasm;
pub mod wire;
