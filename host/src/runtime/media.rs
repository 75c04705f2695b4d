//! Driving the open media: from the core's event loop, or on a reader and a writer thread.
//!
//! A medium with a readiness descriptor (every UDP medium) is read by the core task itself
//! through an [`EventLoopReader`], woken by the descriptor, and written by the core directly
//! with non-blocking sends: a heartbeat costs one wake-up of one thread and no hand-over
//! between tasks. Any other medium gets a reader thread
//! blocked in `Medium::recv` and a writer thread fed by a bounded queue. Either way each
//! frame is decoded and verified with `wire::datagram` before the core sees it (in either
//! format, whatever the medium), each medium is written in its [`FrameFormat`], and nothing
//! here ever waits on the core, an agent or another medium: a frame that cannot be sent now
//! is dropped and counted rather than delaying a heartbeat.

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::task::{Context, Poll};
use std::thread::{self, JoinHandle};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc::UnboundedSender;
use vigil_plugin_api::{Medium, PeerAddress};

use crate::membership::MediumId;
use crate::wire::auth::AuthKeys;
use crate::wire::datagram::{self, DropReason};
use crate::wire::{Message, datagram::MAX_MESSAGE_BYTES};

/// Frames waiting for one writer. Small on purpose: a link that cannot keep up loses its
/// backlog, which retransmission repairs, instead of delaying fresh heartbeats.
const WRITE_QUEUE_FRAMES: usize = 256;

/// How frames are written on one medium (spec §1.2): what Heartbeat 3.0.6 puts on that
/// kind of link, whatever `msgfmt` says, so a Heartbeat peer on the other end reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFormat {
    /// Netstring with the authentication trailer (`wire::datagram::encode`): every
    /// datagram medium.
    Netstring,
    /// Classic `>>>`/`<<<` text with the classic `auth` field always set
    /// (`wire::datagram::encode_classic`): a serial line, whose Heartbeat plugin converts
    /// every message so before writing and reads nothing else.
    Classic,
    /// A ping medium (`kind` is `ping` or `ping_group`): nothing it is given reaches a
    /// node, so only our own status is sent, turned into the signed netstring probe of
    /// `membership::ping_probe` for the ping node the medium is named after.
    PingProbe {
        /// The directive, written into the probe's `info` field.
        kind: &'static str,
    },
}

impl FrameFormat {
    /// The format Heartbeat writes on a medium of directive `kind`: classic on `serial`,
    /// probes on `ping` and `ping_group`, netstring on everything else.
    pub fn for_medium(kind: &str) -> Self {
        match kind {
            "serial" => FrameFormat::Classic,
            "ping" => FrameFormat::PingProbe { kind: "ping" },
            "ping_group" => FrameFormat::PingProbe { kind: "ping_group" },
            _ => FrameFormat::Netstring,
        }
    }
}

/// What a reader thread tells the core.
#[derive(Debug)]
pub enum Received {
    /// A frame that decoded and verified.
    Message { medium: MediumId, message: Message },
    /// A frame that was dropped before reaching membership.
    Dropped {
        medium: MediumId,
        from: PeerAddress,
        reason: DropReason,
    },
    /// The medium failed for good (its socket returned an unexpected error).
    Failed { medium: MediumId, error: String },
}

/// At most this many frames are read in a row before the event-loop reader lets every other
/// input of the core (and every other task) be polled, so a flood on the links cannot starve
/// the timers, agent results or operator requests.
const FRAMES_PER_TURN: usize = 64;

/// Why a frame was not handed to the link.
#[derive(Debug)]
pub enum SendFailure {
    /// The writer thread's queue is full (the link is behind).
    QueueFull,
    /// The socket's send buffer is full; a non-blocking send would have waited.
    BufferFull,
    /// The link refused the frame (interface down, no route).
    Link(io::Error),
}

impl SendFailure {
    /// The drop counter this failure adds to.
    pub fn reason(&self) -> &'static str {
        match self {
            SendFailure::QueueFull => "send_queue_full",
            SendFailure::BufferFull => "send_buffer_full",
            SendFailure::Link(_) => "send_failed",
        }
    }
}

/// One running medium and whatever drives it.
pub struct MediumDriver {
    /// The link, shared with its reader; `shutdown` unblocks a reader thread.
    medium: Arc<dyn Medium>,
    /// How frames for this medium are encoded.
    format: FrameFormat,
    mode: DriveMode,
}

/// How one medium is driven (see the module documentation).
enum DriveMode {
    /// Read by the core's [`EventLoopReader`]; sent to directly.
    EventLoop {
        /// The registered descriptor, holding the medium.
        readiness: AsyncFd<Readiness>,
        /// Set once reading failed for good: the medium is not read again.
        failed: bool,
    },
    /// Read and written by threads of its own.
    Threads {
        /// Encoded frames for the writer; dropping it ends the writer.
        outbound: Option<SyncSender<Arc<[u8]>>>,
        reader: Option<JoinHandle<()>>,
        writer: Option<JoinHandle<()>>,
    },
}

impl MediumDriver {
    /// Starts driving `medium`: registered with the current tokio runtime (which must be the
    /// core's own thread, where an [`EventLoopReader`] reads it) when it has a readiness
    /// descriptor, else on a reader thread that gives frames to `to_core` and a writer thread.
    /// Frames given to [`MediumDriver::send`] must be encoded in `format`.
    pub fn start(
        id: MediumId,
        medium: Box<dyn Medium>,
        format: FrameFormat,
        keys: Arc<AuthKeys>,
        to_core: UnboundedSender<Received>,
    ) -> io::Result<Self> {
        let medium: Arc<dyn Medium> = Arc::from(medium);
        let mode = match medium.readiness_fd().map(|fd| fd.as_raw_fd()) {
            Some(fd) => {
                let readiness = Readiness {
                    medium: Arc::clone(&medium),
                    fd,
                };
                // SAFETY: `Readiness` owns a reference to the medium, whose contract keeps this
                // descriptor open and unchanged for as long as the medium lives.
                let readiness =
                    unsafe { AsyncFd::register_with_interest(readiness, Interest::READABLE) }
                        .map_err(io::Error::from)?;
                DriveMode::EventLoop {
                    readiness,
                    failed: false,
                }
            }
            None => Self::start_threads(id, &medium, keys, to_core)?,
        };
        Ok(Self {
            medium,
            format,
            mode,
        })
    }

    fn start_threads(
        id: MediumId,
        medium: &Arc<dyn Medium>,
        keys: Arc<AuthKeys>,
        to_core: UnboundedSender<Received>,
    ) -> io::Result<DriveMode> {
        let link = medium.link_name().to_string();
        let reader_medium = Arc::clone(medium);
        let reader = thread::Builder::new()
            .name(format!("read-{link}-{id}"))
            .spawn(move || read_loop(id, reader_medium.as_ref(), &keys, &to_core))?;

        let (outbound, queue) = mpsc::sync_channel::<Arc<[u8]>>(WRITE_QUEUE_FRAMES);
        let writer_medium = Arc::clone(medium);
        let writer = thread::Builder::new()
            .name(format!("write-{link}-{id}"))
            .spawn(move || {
                for frame in queue {
                    if let Err(error) = writer_medium.send(&frame) {
                        tracing::debug!(link = %writer_medium.link_name(), %error, "send failed");
                    }
                }
            })?;
        Ok(DriveMode::Threads {
            outbound: Some(outbound),
            reader: Some(reader),
            writer: Some(writer),
        })
    }

    /// Sends one frame now (event loop) or queues it for the writer thread.
    pub fn send(&self, frame: &Arc<[u8]>) -> Result<(), SendFailure> {
        match &self.mode {
            DriveMode::EventLoop { .. } => match self.medium.send(frame) {
                Ok(()) => Ok(()),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    Err(SendFailure::BufferFull)
                }
                Err(error) => Err(SendFailure::Link(error)),
            },
            DriveMode::Threads { outbound, .. } => match outbound {
                Some(queue) => match queue.try_send(Arc::clone(frame)) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                        Err(SendFailure::QueueFull)
                    }
                },
                None => Err(SendFailure::QueueFull),
            },
        }
    }

    /// How frames for this medium must be encoded.
    pub fn format(&self) -> FrameFormat {
        self.format
    }

    /// The link name of this medium.
    pub fn link_name(&self) -> &str {
        self.medium.link_name()
    }

    /// What the link itself dropped (see `Medium::link_drops`).
    pub fn link_drops(&self) -> Vec<(&'static str, u64)> {
        self.medium.link_drops()
    }

    /// Sends what is queued, then stops reading and waits for any threads.
    pub fn stop(&mut self) {
        match &mut self.mode {
            DriveMode::EventLoop { .. } => self.medium.shutdown(),
            DriveMode::Threads {
                outbound,
                reader,
                writer,
            } => {
                *outbound = None;
                if let Some(writer) = writer.take() {
                    let _ = writer.join();
                }
                self.medium.shutdown();
                if let Some(reader) = reader.take() {
                    let _ = reader.join();
                }
            }
        }
    }
}

impl Drop for MediumDriver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A medium's readiness descriptor as tokio's reactor wants it, holding the medium so that the
/// descriptor stays open for as long as it is registered.
struct Readiness {
    medium: Arc<dyn Medium>,
    fd: RawFd,
}

impl AsRawFd for Readiness {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

/// Reads every event-loop medium from within the core task: when polled, returns the next
/// waiting frame of any of them, decoded and verified, or registers for their readiness.
///
/// Links take turns (the scan starts after the link that gave the last frame), and after
/// [`FRAMES_PER_TURN`] frames in a row the reader passes once, so the core polls its other
/// inputs before reading on.
pub struct EventLoopReader {
    /// One byte more than the largest legal message, so an oversized frame is seen as such.
    buf: Vec<u8>,
    keys: Arc<AuthKeys>,
    /// The medium the next scan starts with.
    next_medium: MediumId,
    /// Frames returned since the reader last passed.
    frames_this_turn: usize,
}

impl EventLoopReader {
    /// A reader verifying frames with `keys`.
    pub fn new(keys: Arc<AuthKeys>) -> Self {
        Self {
            buf: vec![0u8; MAX_MESSAGE_BYTES + 1],
            keys,
            next_medium: 0,
            frames_this_turn: 0,
        }
    }

    /// The next frame of any event-loop medium in `media` (whose index is its `MediumId`).
    /// Never ready when none of them is read on the event loop.
    pub fn next_frame<'a>(
        &'a mut self,
        media: &'a mut [MediumDriver],
    ) -> impl Future<Output = Received> + 'a {
        std::future::poll_fn(move |cx| self.poll_frame(media, cx))
    }

    fn poll_frame(&mut self, media: &mut [MediumDriver], cx: &mut Context<'_>) -> Poll<Received> {
        if self.frames_this_turn >= FRAMES_PER_TURN {
            self.frames_this_turn = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let count = media.len();
        for step in 0..count {
            let id = (self.next_medium + step) % count;
            let Some(MediumDriver {
                mode: DriveMode::EventLoop { readiness, failed },
                ..
            }) = media.get_mut(id)
            else {
                continue;
            };
            while !*failed {
                let mut guard = match readiness.poll_read_ready(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Ok(guard)) => guard,
                    Poll::Ready(Err(error)) => {
                        *failed = true;
                        return Poll::Ready(Received::Failed {
                            medium: id,
                            error: error.to_string(),
                        });
                    }
                };
                let buf = &mut self.buf;
                match guard.try_io(|inner| inner.get_ref().medium.try_recv(buf)) {
                    Ok(Ok((len, from))) => {
                        self.next_medium = (id + 1) % count;
                        self.frames_this_turn += 1;
                        return Poll::Ready(decoded(id, &self.buf[..len], from, &self.keys));
                    }
                    Ok(Err(error)) => {
                        *failed = true;
                        return Poll::Ready(Received::Failed {
                            medium: id,
                            error: error.to_string(),
                        });
                    }
                    // Drained: readiness is cleared, and polling again registers the waker.
                    Err(_would_block) => {}
                }
            }
        }
        Poll::Pending
    }
}

/// What the core is told about one received frame.
fn decoded(id: MediumId, frame: &[u8], from: PeerAddress, keys: &AuthKeys) -> Received {
    match datagram::decode(frame, keys) {
        Ok(message) => Received::Message {
            medium: id,
            message,
        },
        Err(reason) => Received::Dropped {
            medium: id,
            from,
            reason,
        },
    }
}

/// The reader thread of a medium without a readiness descriptor.
fn read_loop(
    id: MediumId,
    medium: &dyn Medium,
    keys: &AuthKeys,
    to_core: &UnboundedSender<Received>,
) {
    // One byte more than the largest legal message, so an oversized frame is seen as such.
    let mut buf = vec![0u8; MAX_MESSAGE_BYTES + 1];
    loop {
        let event = match medium.recv(&mut buf) {
            Ok((len, from)) => decoded(id, &buf[..len], from, keys),
            Err(error) => {
                if to_core.is_closed() {
                    return;
                }
                let _ = to_core.send(Received::Failed {
                    medium: id,
                    error: error.to_string(),
                });
                return;
            }
        };
        if to_core.send(event).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd, BorrowedFd};
    use std::os::unix::net::UnixDatagram;
    use std::pin::pin;
    use std::task::Waker;

    use super::*;
    use crate::wire::auth::AuthMethod;
    use crate::wire::datagram::InnerAuth;

    /// A medium over one end of a Unix datagram pair, driven on the event loop.
    struct PairMedium {
        socket: UnixDatagram,
        name: String,
    }

    impl Medium for PairMedium {
        fn link_name(&self) -> &str {
            &self.name
        }
        fn send(&self, frame: &[u8]) -> io::Result<()> {
            self.socket.send(frame).map(drop)
        }
        fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, PeerAddress)> {
            Ok((self.socket.recv(buf)?, PeerAddress::Link))
        }
        fn shutdown(&self) {}
        fn readiness_fd(&self) -> Option<BorrowedFd<'_>> {
            Some(self.socket.as_fd())
        }
        fn try_recv(&self, buf: &mut [u8]) -> io::Result<(usize, PeerAddress)> {
            self.recv(buf)
        }
    }

    fn medium_of(received: &Received) -> MediumId {
        match received {
            Received::Message { medium, .. }
            | Received::Dropped { medium, .. }
            | Received::Failed { medium, .. } => *medium,
        }
    }

    #[tokio::test]
    async fn links_take_turns_and_a_full_turn_lets_the_core_poll_its_other_inputs()
    -> Result<(), Box<dyn std::error::Error>> {
        let keys = Arc::new(AuthKeys::new(1, vec![(1, AuthMethod::Crc)])?);
        let (to_core, _from_media) = tokio::sync::mpsc::unbounded_channel();
        let frame = datagram::encode(&Message::with_type("status"), &keys, InnerAuth::Omitted)?;
        let mut media = Vec::new();
        for id in 0..2 {
            let (near, far) = UnixDatagram::pair()?;
            near.set_nonblocking(true)?;
            for _ in 0..FRAMES_PER_TURN {
                far.send(&frame)?;
            }
            let medium = PairMedium {
                socket: near,
                name: format!("pair{id}"),
            };
            let format = FrameFormat::Netstring;
            let keys = Arc::clone(&keys);
            media.push((
                MediumDriver::start(id, Box::new(medium), format, keys, to_core.clone())?,
                far,
            ));
        }
        let (mut drivers, _far_ends): (Vec<_>, Vec<_>) = media.into_iter().unzip();
        let mut reader = EventLoopReader::new(Arc::clone(&keys));

        let mut order = Vec::new();
        for _ in 0..FRAMES_PER_TURN {
            let received = reader.next_frame(&mut drivers).await;
            assert!(matches!(received, Received::Message { .. }), "{received:?}");
            order.push(medium_of(&received));
        }
        let alternating: Vec<MediumId> = (0..FRAMES_PER_TURN).map(|n| n % 2).collect();
        assert_eq!(order, alternating, "each link in turn");

        // A full turn: the next poll passes although frames wait, and asks to be polled again.
        let mut context = Context::from_waker(Waker::noop());
        assert!(
            pin!(reader.next_frame(&mut drivers))
                .poll(&mut context)
                .is_pending()
        );
        let mut rest = [0usize; 2];
        for _ in 0..FRAMES_PER_TURN {
            let received = reader.next_frame(&mut drivers).await;
            if let Some(count) = rest.get_mut(medium_of(&received)) {
                *count += 1;
            }
        }
        assert_eq!(
            rest,
            [FRAMES_PER_TURN / 2; 2],
            "nothing lost, nothing read twice"
        );
        Ok(())
    }
}
