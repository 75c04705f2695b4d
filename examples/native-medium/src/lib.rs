//! `unixdgram`: an example native medium built with vigil-sdk, carrying heartbeats over Unix
//! datagram sockets in a directory shared by the nodes of one machine.
//!
//! Configuration line: `unixdgram DIR NAME` (ha.cf) — each node binds `DIR/NAME.sock` and
//! sends every frame to every other `*.sock` in `DIR`. A peer that is down (its socket file
//! is gone or nobody listens on it) or too busy to take a frame is skipped, as a UDP
//! broadcast would lose the frame; the daemon's retransmission copes.
//!
//! The medium moves opaque frames and nothing else: it never parses or signs them. It owns
//! its socket file and removes it when closed; it never touches another node's file.
//!
//! Build: `cargo build --manifest-path examples/Cargo.toml -p native-medium`, then put
//! `libnative_medium.so` in a vigil plugin directory.

use std::fs;
use std::io;
use std::net::Shutdown;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use vigil_sdk::api::{Medium, MediumError, MediumSpec, PeerAddress};

/// The directive, as ha.cf writes it.
const DIRECTIVE: &str = "unixdgram";

/// The file name suffix of every node's socket.
const SOCKET_SUFFIX: &str = ".sock";

/// One node's end of the shared directory.
pub struct UnixDgram {
    /// Bound to `DIR/NAME.sock`; read by the daemon's reader thread.
    receiver: UnixDatagram,
    /// Unbound and non-blocking, so a full peer never holds up a heartbeat.
    sender: UnixDatagram,
    /// The shared directory.
    directory: PathBuf,
    /// Our own socket file.
    own: PathBuf,
    /// `unixdgram:DIR/NAME.sock`, for status listings.
    link_name: String,
    /// Set by `shutdown`; a `recv` woken after it fails instead of reporting an empty frame.
    closed: AtomicBool,
}

/// The directory and node name of a configuration line.
fn parse(spec: &MediumSpec) -> Result<(PathBuf, &str), MediumError> {
    let [directory, name] = spec.args.as_slice() else {
        return Err(MediumError::bad_arguments(
            spec,
            "expected `unixdgram DIR NAME`: a directory shared by the nodes and this node's name",
        ));
    };
    let directory = PathBuf::from(directory);
    if !directory.is_absolute() {
        return Err(MediumError::bad_arguments(
            spec,
            format!("{} is not an absolute directory", directory.display()),
        ));
    }
    let name_ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !name_ok {
        return Err(MediumError::bad_arguments(
            spec,
            format!("node name {name:?} must be letters, digits, `.`, `_` or `-`"),
        ));
    }
    Ok((directory, name))
}

/// Whether a send error means "this peer is not there or not taking frames now", which a
/// broadcast medium shrugs off.
fn peer_unavailable(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound | io::ErrorKind::WouldBlock
    )
}

impl UnixDgram {
    /// Checks `unixdgram DIR NAME` without touching the system.
    pub fn check(spec: &MediumSpec) -> Result<(), MediumError> {
        parse(spec).map(|_| ())
    }

    /// Binds this node's socket in the shared directory (creating the directory if needed).
    pub fn open(spec: &MediumSpec) -> Result<UnixDgram, MediumError> {
        let (directory, name) = parse(spec)?;
        let open_error = |e| MediumError::open(spec, e);
        fs::create_dir_all(&directory).map_err(open_error)?;
        let own = directory.join(format!("{name}{SOCKET_SUFFIX}"));
        remove_stale_socket(&own).map_err(open_error)?;
        let receiver = UnixDatagram::bind(&own).map_err(open_error)?;
        let sender = UnixDatagram::unbound().map_err(open_error)?;
        sender.set_nonblocking(true).map_err(open_error)?;
        Ok(UnixDgram {
            receiver,
            sender,
            link_name: format!("{DIRECTIVE}:{}", own.display()),
            directory,
            own,
            closed: AtomicBool::new(false),
        })
    }

    /// Every peer's socket file in the directory, now.
    fn peers(&self) -> io::Result<Vec<PathBuf>> {
        let mut peers = Vec::new();
        for entry in fs::read_dir(&self.directory)? {
            let entry = entry?;
            let path = entry.path();
            let is_socket = entry.file_type().is_ok_and(|t| t.is_socket());
            let named = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(SOCKET_SUFFIX));
            if is_socket && named && path != self.own {
                peers.push(path);
            }
        }
        Ok(peers)
    }
}

/// Removes a socket file left by an earlier run of this node; anything else at that path is
/// an error, so the medium never deletes a file it does not own.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl Medium for UnixDgram {
    fn link_name(&self) -> &str {
        &self.link_name
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        for peer in self.peers()? {
            match self.sender.send_to(frame, &peer) {
                Ok(_) => {}
                Err(e) if peer_unavailable(&e) => {}
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("sending to {}: {e}", peer.display()),
                    ));
                }
            }
        }
        Ok(())
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, PeerAddress)> {
        let received = self.receiver.recv(buf);
        if self.closed.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("{} is shut down", self.link_name),
            ));
        }
        Ok((received?, PeerAddress::Link))
    }

    fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        // Wakes a reader blocked in recv; it then sees `closed`.
        let _ = self.receiver.shutdown(Shutdown::Both);
    }
}

impl Drop for UnixDgram {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.own);
    }
}

vigil_sdk::export_medium! {
    name: DIRECTIVE,
    version: env!("CARGO_PKG_VERSION"),
    description: "Unix datagram sockets in a shared directory (example native plugin)",
    check: UnixDgram::check,
    open: UnixDgram::open,
}
