//! The `Medium` contract: one communication link that carries opaque frames.
//!
//! A medium moves bytes; it never parses, signs or verifies them (that is the host's `wire`
//! module) and never decides anything about membership. A medium that offers a readiness
//! descriptor is driven from the host's event loop (no thread of its own, so a heartbeat costs
//! one wake-up); any other runs on its own reader and writer threads, where `recv` may block.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;

use thiserror::Error;

/// One medium as configured: the directive and its arguments, exactly as the operator wrote
/// them (`ucast eth0 198.18.0.2` gives kind `ucast`, args `["eth0", "198.18.0.2"]`).
///
/// The plugin parses its own arguments, as Heartbeat's plugins do, so a dynamic plugin can
/// define any syntax it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediumSpec {
    /// The directive that names the plugin (`bcast`, `mcast`, `ucast`).
    pub kind: String,
    /// The arguments after the directive, split on whitespace.
    pub args: Vec<String>,
    /// The cluster's UDP port (`udpport`), shared by every UDP medium.
    pub udp_port: u16,
    /// Where the line came from (`/etc/ha.d/ha.cf:12`), so errors can point at it.
    pub origin: String,
}

impl fmt::Display for MediumSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        for arg in &self.args {
            write!(f, " {arg}")?;
        }
        Ok(())
    }
}

/// Where a frame came from, for logs and link diagnostics. Never trusted for identity: the
/// signed `src` field inside the frame says who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAddress {
    /// A UDP sender.
    Udp(SocketAddr),
    /// A link with no addresses (a serial line).
    Link,
}

impl fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddress::Udp(addr) => write!(f, "{addr}"),
            PeerAddress::Link => f.write_str("link"),
        }
    }
}

/// A medium could not be configured or opened.
#[derive(Debug, Error)]
pub enum MediumError {
    /// The arguments do not fit the plugin's syntax.
    #[error("{origin}: `{spec}`: {reason}")]
    BadArguments {
        origin: String,
        spec: String,
        reason: String,
    },
    /// The link could not be opened (no such interface, address in use, permission).
    #[error("{origin}: `{spec}`: cannot open: {source}")]
    Open {
        origin: String,
        spec: String,
        #[source]
        source: io::Error,
    },
}

impl MediumError {
    /// A `BadArguments` error for `spec`, naming its origin.
    pub fn bad_arguments(spec: &MediumSpec, reason: impl Into<String>) -> Self {
        MediumError::BadArguments {
            origin: spec.origin.clone(),
            spec: spec.to_string(),
            reason: reason.into(),
        }
    }

    /// An `Open` error for `spec`, naming its origin.
    pub fn open(spec: &MediumSpec, source: io::Error) -> Self {
        MediumError::Open {
            origin: spec.origin.clone(),
            spec: spec.to_string(),
            source,
        }
    }
}

/// An open link, driven by the host in one of two ways, chosen by [`Medium::readiness_fd`]:
///
/// - **event loop** (`readiness_fd` is `Some`): the host waits for the descriptor to become
///   readable and then calls `try_recv` until it reports `WouldBlock`; it calls `send` from
///   the same loop, so `send` must never block (a full socket buffer is `WouldBlock`, and the
///   frame is dropped and counted). `recv` is not called.
/// - **threads** (`None`, the default): the host calls `recv` from a reader thread of its own
///   and `send` from a writer thread, never both from one thread, so a blocked reader never
///   holds up a heartbeat; `send` must still not wait on anything but its own link.
pub trait Medium: Send + Sync {
    /// The link name shown in status and `cl_status listhblinks` (the interface, or the tty).
    fn link_name(&self) -> &str;

    /// Sends one frame to every peer this medium reaches.
    fn send(&self, frame: &[u8]) -> io::Result<()>;

    /// Blocks until one frame arrives; returns its length in `buf` and where it came from.
    /// A frame longer than `buf` is truncated by the link; the host's decoder rejects it.
    fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, PeerAddress)>;

    /// Unblocks a pending `recv` so the reader thread can end at shutdown. After this call
    /// `recv` and `try_recv` return an error.
    fn shutdown(&self);

    /// A descriptor that polls readable whenever `try_recv` has a frame to give, for a medium
    /// the host can drive from its event loop; `None` asks for reader and writer threads. It
    /// must stay open, and be the same descriptor, for as long as the medium lives (`shutdown`
    /// does not close it).
    fn readiness_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// What the link itself threw away since it opened, before any frame existed for the
    /// host to count (line noise, a broken or oversized frame on a serial line): counter
    /// names with their totals, shown among the drop counters of `vigil status`. Names are
    /// lower-case words joined by `_` and start with the medium's kind. Default: none.
    fn link_drops(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// Takes one frame if one is waiting, like `recv` without blocking: an error of kind
    /// `WouldBlock` when none is. Called only when `readiness_fd` is `Some`.
    fn try_recv(&self, buf: &mut [u8]) -> io::Result<(usize, PeerAddress)> {
        let _ = buf;
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "this medium is read by a thread",
        ))
    }
}

/// Creates media of one kind. One factory is registered per plugin.
pub trait MediumFactory: Send + Sync {
    /// The plugin's identity.
    fn info(&self) -> &PluginInfo;

    /// Checks a configuration line without touching the system, for `vigil config check`.
    fn check(&self, spec: &MediumSpec) -> Result<(), MediumError>;

    /// Opens the link described by `spec`.
    fn open(&self, spec: &MediumSpec) -> Result<Box<dyn Medium>, MediumError>;
}

use crate::PluginInfo;
