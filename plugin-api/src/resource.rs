//! The `ResourceAgent` contract and the `Host` capabilities an agent may use.
//!
//! An agent starts, stops and monitors one kind of resource (an address, a filesystem, a
//! service) and answers with OCF status codes, whatever its origin: built in, a native
//! library, a WASM component, or a legacy script behind an adapter. Everything an agent does
//! to the system beyond computing goes through [`Host`], so the daemon can grant, refuse and
//! observe it. This module defines types only; it does no I/O and decides nothing about
//! which node runs what (that is the host's `failover` machine).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use thiserror::Error;

use crate::{Capability, Grants};

/// An OCF exit code (OCF RA API 1.0 §10.3). Monitor's answers decide ownership, so every
/// origin of agent reports in this one vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OcfStatus {
    /// 0: the operation succeeded; for monitor, the resource is running.
    Success,
    /// 1: generic error; for monitor, the resource failed or hangs.
    ErrGeneric,
    /// 2: invalid or excess arguments.
    ErrArgs,
    /// 3: the action is not implemented.
    ErrUnimplemented,
    /// 4: insufficient privilege.
    ErrPerm,
    /// 5: a needed program or file is not installed.
    ErrInstalled,
    /// 6: the configuration is wrong.
    ErrConfigured,
    /// 7: monitor only: the resource is cleanly stopped.
    NotRunning,
    /// Any other code, kept as reported.
    Other(u8),
}

impl OcfStatus {
    /// The status for an exit code.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => OcfStatus::Success,
            1 => OcfStatus::ErrGeneric,
            2 => OcfStatus::ErrArgs,
            3 => OcfStatus::ErrUnimplemented,
            4 => OcfStatus::ErrPerm,
            5 => OcfStatus::ErrInstalled,
            6 => OcfStatus::ErrConfigured,
            7 => OcfStatus::NotRunning,
            other => OcfStatus::Other(other),
        }
    }

    /// The exit code for this status.
    pub fn code(self) -> u8 {
        match self {
            OcfStatus::Success => 0,
            OcfStatus::ErrGeneric => 1,
            OcfStatus::ErrArgs => 2,
            OcfStatus::ErrUnimplemented => 3,
            OcfStatus::ErrPerm => 4,
            OcfStatus::ErrInstalled => 5,
            OcfStatus::ErrConfigured => 6,
            OcfStatus::NotRunning => 7,
            OcfStatus::Other(code) => code,
        }
    }

    /// OCF's name for the code, for logs (`OCF_NOT_RUNNING`).
    pub fn name(self) -> &'static str {
        match self {
            OcfStatus::Success => "OCF_SUCCESS",
            OcfStatus::ErrGeneric => "OCF_ERR_GENERIC",
            OcfStatus::ErrArgs => "OCF_ERR_ARGS",
            OcfStatus::ErrUnimplemented => "OCF_ERR_UNIMPLEMENTED",
            OcfStatus::ErrPerm => "OCF_ERR_PERM",
            OcfStatus::ErrInstalled => "OCF_ERR_INSTALLED",
            OcfStatus::ErrConfigured => "OCF_ERR_CONFIGURED",
            OcfStatus::NotRunning => "OCF_NOT_RUNNING",
            OcfStatus::Other(_) => "OCF_OTHER",
        }
    }
}

impl fmt::Display for OcfStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

/// The operations the daemon asks of an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentAction {
    Start,
    Stop,
    Monitor,
    Validate,
}

impl AgentAction {
    /// The OCF action name (`start`, `stop`, `monitor`, `validate-all`).
    pub fn as_str(self) -> &'static str {
        match self {
            AgentAction::Start => "start",
            AgentAction::Stop => "stop",
            AgentAction::Monitor => "monitor",
            AgentAction::Validate => "validate-all",
        }
    }
}

impl fmt::Display for AgentAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One configured resource: which instance, with which parameters (OCF_RESKEY_*), how long
/// an operation may take, and what a sandboxed agent may do for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInstance {
    /// `OCF_RESOURCE_INSTANCE`: unique in the cluster (`IPaddr_198.18.0.100`).
    pub name: String,
    /// Instance parameters by OCF name (`ip`, `cidr_netmask`, `nic`).
    pub params: BTreeMap<String, String>,
    /// The longest an operation may run before it counts as failed.
    pub timeout: Duration,
    /// What the operator granted this resource; only sandboxed (WASM) agents are held to it.
    pub grants: Grants,
}

impl ResourceInstance {
    /// A parameter's value, if set and not empty.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// What an operation reported: a status and, for people, what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationOutcome {
    /// The OCF status code.
    pub status: OcfStatus,
    /// A short explanation for logs (`198.18.0.100/24 added to eth0`, `bad ip "x"`).
    pub message: String,
}

impl OperationOutcome {
    /// An outcome with a message.
    pub fn new(status: OcfStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// Success with a message.
    pub fn success(message: impl Into<String>) -> Self {
        Self::new(OcfStatus::Success, message)
    }
}

/// A resource agent. Operations are synchronous and may block up to the instance's timeout:
/// the daemon runs them on worker threads, never on the core loop. Implementations keep no
/// per-instance state between calls beyond what they put on the system; everything they need
/// comes in the [`ResourceInstance`].
pub trait ResourceAgent: Send + Sync {
    /// OCF meta-data XML (OCF RA API §10.4): parameters, actions, descriptions.
    fn metadata(&self) -> String;

    /// The kinds of [`Host`] capability this agent uses. A sandboxed agent gets none it does
    /// not declare and none the operator did not grant; for the others it documents intent.
    fn capabilities(&self) -> Vec<Capability> {
        Vec::new()
    }

    /// Turns Heartbeat's positional `haresources` arguments (`IPaddr::ip/bits/nic` gives
    /// `["ip/bits/nic"]`) into named parameters. Agents without a positional form refuse.
    fn positional_params(&self, args: &[String]) -> Result<BTreeMap<String, String>, String> {
        if args.is_empty() {
            Ok(BTreeMap::new())
        } else {
            Err(format!(
                "this agent takes named parameters, not positional arguments ({})",
                args.join("::")
            ))
        }
    }

    /// Checks the parameters without touching the system beyond reading it.
    fn validate(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome;

    /// Starts the resource; success if it already runs. Returns only once it is fully up.
    fn start(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome;

    /// Stops the resource; success if it is already stopped. Must leave nothing behind.
    fn stop(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome;

    /// Success when running, `NotRunning` when cleanly stopped, an error when failed.
    fn monitor(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome;

    /// Runs one action; the daemon's single entry point into an agent.
    fn run(
        &self,
        action: AgentAction,
        instance: &ResourceInstance,
        host: &dyn Host,
    ) -> OperationOutcome {
        match action {
            AgentAction::Start => self.start(instance, host),
            AgentAction::Stop => self.stop(instance, host),
            AgentAction::Monitor => self.monitor(instance, host),
            AgentAction::Validate => self.validate(instance, host),
        }
    }
}

/// Log levels an agent may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

/// An address with its prefix length (`198.18.0.100/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    pub address: IpAddr,
    pub prefix_len: u8,
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// An address as configured on an interface, as [`Host::addresses`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// The interface (`eth0`).
    pub interface: String,
    /// The address and its prefix.
    pub address: IpPrefix,
    /// The IPv4 broadcast address, if set.
    pub broadcast: Option<IpAddr>,
    /// The label (`eth0:1`), if it differs from the interface name.
    pub label: Option<String>,
}

/// How to add an address; what IPaddr and IPaddr2 need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRequest {
    /// The interface to add it on.
    pub interface: String,
    /// The address and prefix.
    pub address: IpPrefix,
    /// The broadcast address; `None` lets the host derive it for IPv4.
    pub broadcast: Option<IpAddr>,
    /// A label (`eth0:vip`), for tools that list aliases.
    pub label: Option<String>,
}

/// Whether an address call changed anything: start and stop are idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressChange {
    /// The address was added or removed.
    Changed,
    /// It was already there (add) or already absent (remove).
    Unchanged,
}

/// A finished command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// The exit code, or `None` when a signal ended it.
    pub exit_code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A host capability failed or was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The operator did not grant this capability to this resource.
    #[error("capability not granted: {capability}")]
    NotGranted { capability: String },
    /// The capability was used with an argument it cannot take.
    #[error("{capability}: {reason}")]
    Invalid { capability: String, reason: String },
    /// The system refused or failed.
    #[error("{capability}: {reason}")]
    Failed { capability: String, reason: String },
    /// The operation ran out of time.
    #[error("{capability}: timed out after {after:?}")]
    TimedOut { capability: String, after: Duration },
}

/// What an agent may do to the system. The daemon implements it once; a WASM agent reaches
/// the same functions as imports, each checked against what the operator granted.
pub trait Host: Send + Sync {
    /// Writes to the daemon's log, tagged with the resource.
    fn log(&self, level: LogLevel, message: &str);

    /// Every address on every interface, to find an interface for an address and to monitor.
    fn addresses(&self) -> Result<Vec<InterfaceAddress>, HostError>;

    /// Adds an address; `Unchanged` if it is already on that interface.
    fn add_address(&self, request: &AddressRequest) -> Result<AddressChange, HostError>;

    /// Removes an address from an interface; `Unchanged` if it was not there.
    fn remove_address(
        &self,
        interface: &str,
        address: IpPrefix,
    ) -> Result<AddressChange, HostError>;

    /// Sends `count` gratuitous ARP announcements for `address` out of `interface`, `interval`
    /// apart, so switches and peers learn the new owner. Returns after the first is sent; the
    /// rest follow in the background.
    fn send_gratuitous_arp(
        &self,
        interface: &str,
        address: IpAddr,
        count: u32,
        interval: Duration,
    ) -> Result<(), HostError>;

    /// Runs a program (no shell) and waits at most `timeout`; the whole process group is
    /// killed at the deadline.
    fn run_command(
        &self,
        argv: &[String],
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<CommandOutput, HostError>;

    /// Reads a whole file.
    fn read_file(&self, path: &Path) -> Result<Vec<u8>, HostError>;
}
