//! The media threads: one reader and one writer per open medium.
//!
//! A reader blocks in `Medium::recv`, decodes and verifies each frame with `wire::datagram`
//! and hands the result to the core loop; a writer takes encoded frames from a bounded queue
//! and sends them. Neither ever waits on the core, an agent or another medium: a full queue
//! drops the frame and counts it rather than blocking a heartbeat.

use std::sync::Arc;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::{self, JoinHandle};

use tokio::sync::mpsc::UnboundedSender;
use vigil_plugin_api::{Medium, PeerAddress};

use crate::membership::MediumId;
use crate::wire::auth::AuthKeys;
use crate::wire::datagram::{self, DropReason};
use crate::wire::{Message, datagram::MAX_MESSAGE_BYTES};

/// Frames waiting for one writer. Small on purpose: a link that cannot keep up loses its
/// backlog, which retransmission repairs, instead of delaying fresh heartbeats.
const WRITE_QUEUE_FRAMES: usize = 256;

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

/// One running medium: its threads and the queue into its writer.
pub struct MediumThreads {
    /// The link, shared by both threads; `shutdown` unblocks the reader.
    medium: Arc<dyn Medium>,
    /// Encoded frames for the writer; dropping it ends the writer.
    outbound: Option<SyncSender<Arc<[u8]>>>,
    reader: Option<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
}

impl MediumThreads {
    /// Starts the reader and writer threads of `medium`.
    pub fn start(
        id: MediumId,
        medium: Box<dyn Medium>,
        keys: Arc<AuthKeys>,
        to_core: UnboundedSender<Received>,
    ) -> std::io::Result<Self> {
        let medium: Arc<dyn Medium> = Arc::from(medium);
        let link = medium.link_name().to_string();

        let reader_medium = Arc::clone(&medium);
        let reader = thread::Builder::new()
            .name(format!("read-{link}-{id}"))
            .spawn(move || read_loop(id, reader_medium.as_ref(), &keys, &to_core))?;

        let (outbound, queue) = mpsc::sync_channel::<Arc<[u8]>>(WRITE_QUEUE_FRAMES);
        let writer_medium = Arc::clone(&medium);
        let writer = thread::Builder::new()
            .name(format!("write-{link}-{id}"))
            .spawn(move || {
                for frame in queue {
                    if let Err(error) = writer_medium.send(&frame) {
                        tracing::debug!(link = %writer_medium.link_name(), %error, "send failed");
                    }
                }
            })?;

        Ok(Self {
            medium,
            outbound: Some(outbound),
            reader: Some(reader),
            writer: Some(writer),
        })
    }

    /// Queues one frame; returns false when the writer is behind and the frame was dropped.
    pub fn send(&self, frame: Arc<[u8]>) -> bool {
        match &self.outbound {
            Some(queue) => match queue.try_send(frame) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
            },
            None => false,
        }
    }

    /// The link name of this medium.
    pub fn link_name(&self) -> &str {
        self.medium.link_name()
    }

    /// Sends what is queued, then stops both threads and waits for them.
    pub fn stop(&mut self) {
        self.outbound = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        self.medium.shutdown();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for MediumThreads {
    fn drop(&mut self) {
        self.stop();
    }
}

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
            Ok((len, from)) => match datagram::decode(&buf[..len], keys) {
                Ok(message) => Received::Message {
                    medium: id,
                    message,
                },
                Err(reason) => Received::Dropped {
                    medium: id,
                    from,
                    reason,
                },
            },
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
