//! When the benchmark's address appears on and leaves each node, from the kernel itself.
//!
//! Owns one thread per node that enters the node's network namespace, subscribes to the
//! kernel's IPv4 address notifications (`RTM_NEWADDR` / `RTM_DELADDR` on the
//! `RTMGRP_IPV4_IFADDR` netlink group) and stamps each one for the watched address on
//! CLOCK_REALTIME as it is received, the clock the death, the commands and the packet
//! captures are stamped on. No polling: a change is seen within microseconds of the kernel
//! making it, whichever program made it (vigil over netlink, `ifconfig`, keepalived). It
//! must not change anything in the namespaces it watches.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};

use crate::support::netns::NodeNet;

/// How long a watcher thread waits for a notification before it looks at the stop flag.
const STOP_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// What happened to the address on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// `RTM_NEWADDR`: the address was added (or changed while present).
    Appeared,
    /// `RTM_DELADDR`: it was removed.
    Left,
}

/// One notification for the watched address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AddressEvent {
    /// When the watcher received it.
    pub(crate) at: SystemTime,
    /// Node index in the lab (1 or 2).
    pub(crate) node: u8,
    /// What it said.
    pub(crate) change: Change,
}

/// The events seen so far, and a signal for those waiting on the next one.
#[derive(Default)]
struct Journal {
    /// Every event, in the order received.
    events: Mutex<Vec<AddressEvent>>,
    /// Notified on every new event.
    added: Condvar,
}

impl Journal {
    fn lock(&self) -> MutexGuard<'_, Vec<AddressEvent>> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Watches one address on both nodes of a cluster until dropped.
pub(crate) struct AddressWatch {
    /// The events, shared with the threads.
    journal: Arc<Journal>,
    /// Set to end the threads.
    stop: Arc<AtomicBool>,
    /// The watcher threads, joined on drop.
    threads: Vec<JoinHandle<()>>,
}

impl AddressWatch {
    /// Subscribes, in each node's namespace, to the notifications for `address`; returns
    /// once both subscriptions are in place, so nothing after that is missed.
    pub(crate) fn start(nets: &[NodeNet; 2], address: Ipv4Addr) -> Result<AddressWatch, String> {
        let journal = Arc::new(Journal::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut watch = AddressWatch {
            journal,
            stop,
            threads: Vec::new(),
        };
        for net in nets {
            let (ready, subscribed) = mpsc::channel();
            let journal = Arc::clone(&watch.journal);
            let stop = Arc::clone(&watch.stop);
            let net = net.clone();
            watch.threads.push(thread::spawn(move || {
                watch_node(&net, address, &journal, &stop, &ready);
            }));
            subscribed
                .recv()
                .map_err(|_| "an address watcher ended before it subscribed".to_string())??;
        }
        Ok(watch)
    }

    /// The first `change` on `node` received at or after `after`, waiting up to `timeout`
    /// for it.
    pub(crate) fn first_after(
        &self,
        node: u8,
        change: Change,
        after: SystemTime,
        timeout: Duration,
    ) -> Option<SystemTime> {
        let deadline = Instant::now() + timeout;
        let mut events = self.journal.lock();
        loop {
            if let Some(event) = events
                .iter()
                .find(|e| e.node == node && e.change == change && e.at >= after)
            {
                return Some(event.at);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            events = self
                .journal
                .added
                .wait_timeout(events, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Every event received at or after `after`, for the record of a failed trial.
    pub(crate) fn events_since(&self, after: SystemTime) -> Vec<AddressEvent> {
        self.journal
            .lock()
            .iter()
            .filter(|e| e.at >= after)
            .copied()
            .collect()
    }
}

impl Drop for AddressWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The body of one watcher thread: enters `net`'s namespace, subscribes, says so on
/// `ready`, then records the notifications for `address` until `stop`.
fn watch_node(
    net: &NodeNet,
    address: Ipv4Addr,
    journal: &Journal,
    stop: &AtomicBool,
    ready: &mpsc::Sender<Result<(), String>>,
) {
    let socket = match subscribe(net) {
        Ok(socket) => socket,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut buffer: Vec<u8> = Vec::with_capacity(64 * 1024);
    while !stop.load(Ordering::SeqCst) {
        if !readable(&socket, STOP_CHECK_INTERVAL) {
            continue;
        }
        buffer.clear();
        let Ok(received) = socket.recv(&mut buffer, 0) else {
            continue;
        };
        let at = SystemTime::now();
        let changes = address_changes(buffer.get(..received).unwrap_or_default(), address);
        if changes.is_empty() {
            continue;
        }
        journal
            .lock()
            .extend(changes.into_iter().map(|change| AddressEvent {
                at,
                node: net.index,
                change,
            }));
        journal.added.notify_all();
    }
}

/// A netlink socket in `net`'s namespace, subscribed to IPv4 address notifications. The
/// calling thread stays in that namespace: it exists for this watch alone.
fn subscribe(net: &NodeNet) -> Result<Socket, String> {
    let path = net.namespace_path();
    let namespace =
        File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: setns switches only the calling thread's network namespace; the descriptor is
    // an open namespace file.
    if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "setns into {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    let mut socket =
        Socket::new(NETLINK_ROUTE).map_err(|e| format!("cannot open a netlink socket: {e}"))?;
    let groups = u32::try_from(libc::RTMGRP_IPV4_IFADDR).unwrap_or_default();
    socket
        .bind(&SocketAddr::new(0, groups))
        .map_err(|e| format!("cannot subscribe to address notifications: {e}"))?;
    Ok(socket)
}

/// Whether `socket` has a datagram to read within `timeout`.
fn readable(socket: &Socket, timeout: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: poll reads and writes the one pollfd we own, for the count we pass.
    let ready = unsafe { libc::poll(&mut poll, 1, millis) };
    ready > 0 && poll.revents & libc::POLLIN != 0
}

/// The changes of `address` the notifications in one datagram report.
fn address_changes(mut datagram: &[u8], address: Ipv4Addr) -> Vec<Change> {
    let mut changes = Vec::new();
    while !datagram.is_empty() {
        let Ok(message) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(datagram) else {
            break;
        };
        let length = message.header.length as usize;
        if length == 0 || length > datagram.len() {
            break;
        }
        // Netlink aligns every message to 4 bytes within a datagram.
        datagram = datagram
            .get(length.next_multiple_of(4)..)
            .unwrap_or_default();
        let change = match message.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(m)) => {
                names(&m, address).then_some(Change::Appeared)
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(m)) => {
                names(&m, address).then_some(Change::Left)
            }
            _ => None,
        };
        changes.extend(change);
    }
    changes
}

/// Whether an address notification is about `address` (its local address, or its address
/// where no local one is given).
fn names(message: &AddressMessage, address: Ipv4Addr) -> bool {
    let wanted = IpAddr::V4(address);
    message.attributes.iter().any(|attribute| match attribute {
        AddressAttribute::Local(ip) | AddressAttribute::Address(ip) => *ip == wanted,
        _ => false,
    })
}
