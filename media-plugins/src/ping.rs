//! The `ping` medium: a router or any host that answers ICMP echo, watched as a pseudo-node,
//! Heartbeat's `ping <host>` (spec §1.13, §2.4); and the ICMP socket that `ping_group`
//! shares.
//!
//! Heartbeat's trick, kept byte for byte: the host hands this medium, instead of the frames
//! it sends to real nodes, a signed message written *as if the ping node had sent it*
//! (`t=NS_st st=ping info=ping src=<host>`); the medium carries that frame as the payload of
//! an ICMP echo request (type 8, id = our pid & 0xffff, incrementing seq) and gives the
//! payload of the echo reply back as a received frame. The host verifies it like any other
//! frame, so only an answer to our own signed probe proves the ping node alive.
//!
//! The socket is a raw ICMP socket (root or CAP_NET_RAW), as in Heartbeat; failing that, the
//! unprivileged ICMP datagram socket, which the kernel allows only to groups inside
//! `net.ipv4.ping_group_range` (`1 0`, nobody, in a fresh network namespace). A raw socket
//! sees every ICMP packet of the namespace, so replies are kept only when they are echo
//! replies with our identifier from one of the addresses this medium pings.
//!
//! This module owns the socket and the ICMP framing only; the frames are the host's business.

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};

use socket2::{Domain, Protocol, Socket, Type};
use vigil_plugin_api::{Medium, MediumError, MediumFactory, MediumSpec, PeerAddress, PluginInfo};

/// ICMP echo request.
const ICMP_ECHO: u8 = 8;
/// ICMP echo reply.
const ICMP_ECHO_REPLY: u8 = 0;
/// Type, code, checksum, identifier, sequence.
const ICMP_HEADER_LEN: usize = 8;
/// How long a waiting `recv` sleeps before looking at the shutdown flag again.
const SHUTDOWN_POLL_MS: libc::c_int = 200;

/// A host to ping, as written on the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingTarget {
    /// A literal IPv4 address.
    Address(Ipv4Addr),
    /// A host name, resolved to its first IPv4 address when the medium opens.
    HostName(String),
}

impl PingTarget {
    /// The longest host name DNS allows.
    const MAX_HOST_NAME_LEN: usize = 253;

    /// Parses one host token; the error says what was expected.
    pub(crate) fn parse(token: &str) -> Result<Self, String> {
        if let Ok(address) = token.parse::<Ipv4Addr>() {
            if address.is_unspecified() || address.is_broadcast() || address.is_multicast() {
                return Err(format!(
                    "`{token}` cannot answer a ping (expected the IPv4 address of one host)"
                ));
            }
            return Ok(PingTarget::Address(address));
        }
        let valid_name = !token.is_empty()
            && token.len() <= Self::MAX_HOST_NAME_LEN
            && token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            && !token.starts_with(['-', '.'])
            && !token.chars().all(|c| c.is_ascii_digit() || c == '.');
        if valid_name {
            Ok(PingTarget::HostName(token.to_string()))
        } else {
            Err(format!(
                "`{token}` is neither an IPv4 address nor a host name (expected e.g. 198.18.0.254)"
            ))
        }
    }

    /// The address to ping.
    pub(crate) fn resolve(&self) -> io::Result<Ipv4Addr> {
        match self {
            PingTarget::Address(address) => Ok(*address),
            PingTarget::HostName(name) => (name.as_str(), 0)
                .to_socket_addrs()?
                .find_map(|address| match address.ip() {
                    IpAddr::V4(v4) => Some(v4),
                    IpAddr::V6(_) => None,
                })
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("host name `{name}` has no IPv4 address"),
                    )
                }),
        }
    }
}

/// A `ping <host>` medium, checked (`ping h1 h2` is one medium per host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingConfig {
    /// The host as written: the ping node's name and the link name.
    pub name: String,
    /// Where echo requests go.
    pub target: PingTarget,
}

impl PingConfig {
    /// Parses the one argument of a `ping` medium.
    pub fn parse(spec: &MediumSpec) -> Result<Self, MediumError> {
        let [host] = spec.args.as_slice() else {
            return Err(MediumError::bad_arguments(
                spec,
                "expected one host (ping <host>)",
            ));
        };
        let target = PingTarget::parse(host).map_err(|e| MediumError::bad_arguments(spec, e))?;
        Ok(Self {
            name: host.clone(),
            target,
        })
    }
}

/// An ICMP echo socket: raw when allowed, else the unprivileged datagram kind. Shared by
/// `ping` and `ping_group`; one per medium, as in Heartbeat.
#[derive(Debug)]
pub(crate) struct IcmpSocket {
    socket: Socket,
    /// Raw sockets deliver the IP header and every ICMP packet; datagram ones only the ICMP
    /// message of our own echo replies.
    raw: bool,
    /// The echo identifier Heartbeat uses (pid & 0xffff); the kernel replaces it with the
    /// socket's port on a datagram socket and filters replies itself.
    ident: u16,
    /// The next echo sequence number.
    sequence: AtomicU16,
    /// Set once by `shutdown`; from then on reads fail.
    shut_down: AtomicBool,
}

impl IcmpSocket {
    /// Opens a raw ICMP socket, or the unprivileged one if raw sockets are refused; the error
    /// says why each failed and what to change.
    pub(crate) fn open() -> io::Result<Self> {
        match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)) {
            Ok(socket) => Self::ready(socket, true),
            Err(raw_error) => Self::open_unprivileged(&raw_error),
        }
    }

    /// The fallback after a raw socket was refused with `raw_error`.
    fn open_unprivileged(raw_error: &io::Error) -> io::Result<Self> {
        match Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::ICMPV4)) {
            Ok(socket) => Self::ready(socket, false),
            Err(dgram_error) => Err(io::Error::new(
                raw_error.kind(),
                format!(
                    "raw ICMP socket refused ({raw_error}; needs root or CAP_NET_RAW), and the \
                     unprivileged ICMP socket too ({dgram_error}; the process's group must be \
                     inside net.ipv4.ping_group_range, which is `1 0`, nobody, in a new \
                     network namespace)"
                ),
            )),
        }
    }

    fn ready(socket: Socket, raw: bool) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(Self {
            socket,
            raw,
            // Truncation intended: Heartbeat's identifier is the low 16 bits of the pid.
            ident: (std::process::id() & 0xffff) as u16,
            sequence: AtomicU16::new(0),
            shut_down: AtomicBool::new(false),
        })
    }

    /// Whether this is a raw socket (for diagnostics and tests).
    pub(crate) fn is_raw(&self) -> bool {
        self.raw
    }

    /// Sends one echo request to `to` carrying `payload`, without blocking.
    pub(crate) fn send_echo(&self, to: Ipv4Addr, payload: &[u8]) -> io::Result<()> {
        self.send_echo_to_all(&[to], payload)
    }

    /// Sends one echo request, with one sequence number, to each of `members`; every member is
    /// tried, and the first failure is reported.
    pub(crate) fn send_echo_to_all(&self, members: &[Ipv4Addr], payload: &[u8]) -> io::Result<()> {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let packet = echo_request(self.ident, sequence, payload);
        let mut first_error = None;
        for member in members {
            if let Err(error) = self.send_packet(*member, &packet) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn send_packet(&self, to: Ipv4Addr, packet: &[u8]) -> io::Result<()> {
        let destination = SocketAddr::V4(SocketAddrV4::new(to, 0));
        let sent = self.socket.send_to(packet, &destination.into())?;
        if sent == packet.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!(
                    "echo request to {to} cut to {sent} of {} bytes",
                    packet.len()
                ),
            ))
        }
    }

    /// Takes one echo reply to us that `accept` approves (given its source address and echo
    /// sequence number), moving its payload to the start of `buf`; `WouldBlock` once nothing
    /// of ours is waiting.
    pub(crate) fn try_recv(
        &self,
        buf: &mut [u8],
        accept: impl Fn(Ipv4Addr, u16) -> bool,
    ) -> io::Result<(usize, PeerAddress)> {
        loop {
            if self.shut_down.load(Ordering::Acquire) {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the medium was shut down",
                ));
            }
            // SAFETY: `u8` and `MaybeUninit<u8>` have the same layout; recv_from only writes
            // initialised bytes into the slice, and `buf` is already initialised.
            let uninit = unsafe {
                std::slice::from_raw_parts_mut(
                    buf.as_mut_ptr().cast::<MaybeUninit<u8>>(),
                    buf.len(),
                )
            };
            let (len, from) = match self.socket.recv_from(uninit) {
                Ok(received) => received,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            let Some(SocketAddr::V4(from)) = from.as_socket() else {
                continue;
            };
            let Some((payload, sequence)) = echo_reply_payload(&buf[..len], self.raw, self.ident)
            else {
                continue;
            };
            if !accept(*from.ip(), sequence) {
                continue;
            }
            let payload_len = payload.len();
            buf.copy_within(payload.start..payload.end, 0);
            return Ok((payload_len, PeerAddress::Udp(SocketAddr::V4(from))));
        }
    }

    /// Like `try_recv`, waiting until a reply of ours arrives or `shutdown` is called.
    pub(crate) fn recv(
        &self,
        buf: &mut [u8],
        accept: impl Fn(Ipv4Addr, u16) -> bool,
    ) -> io::Result<(usize, PeerAddress)> {
        loop {
            match self.try_recv(buf, &accept) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.wait_readable()?,
                received => return received,
            }
        }
    }

    /// Waits in `poll(2)` a short while for the socket to become readable; an ICMP socket
    /// cannot be woken by `shutdown(2)`, so the caller looks at the flag between waits.
    fn wait_readable(&self) -> io::Result<()> {
        let mut poll_fd = libc::pollfd {
            fd: self.socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `poll_fd` is one live pollfd for a descriptor open for the lifetime of
        // `self`; the count passed is 1.
        let rc = unsafe { libc::poll(&mut poll_fd, 1, SHUTDOWN_POLL_MS) };
        if rc >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            Ok(())
        } else {
            Err(err)
        }
    }

    /// Makes every pending (within 200 ms) and later read fail.
    pub(crate) fn shutdown(&self) {
        self.shut_down.store(true, Ordering::Release);
    }

    /// The descriptor that polls readable when a packet waits.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// An ICMP echo request: header with the Internet checksum, then `payload`.
fn echo_request(ident: u16, sequence: u16, payload: &[u8]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(ICMP_HEADER_LEN + payload.len());
    packet.extend_from_slice(&[ICMP_ECHO, 0, 0, 0]);
    // Heartbeat stores the identifier in host order and the sequence in network order.
    packet.extend_from_slice(&ident.to_ne_bytes());
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(payload);
    let checksum = internet_checksum(&packet);
    packet[2..4].copy_from_slice(&checksum.to_be_bytes());
    packet
}

/// Where the payload of an echo reply to `ident` lies in `packet` (with its IP header when
/// `raw`), and the reply's sequence number; `None` for any other packet.
fn echo_reply_payload(
    packet: &[u8],
    raw: bool,
    ident: u16,
) -> Option<(std::ops::Range<usize>, u16)> {
    let icmp_start = if raw {
        let first = *packet.first()?;
        if first >> 4 != 4 {
            return None;
        }
        usize::from(first & 0x0f) * 4
    } else {
        0
    };
    let header = packet.get(icmp_start..icmp_start + ICMP_HEADER_LEN)?;
    if header[0] != ICMP_ECHO_REPLY || header[1] != 0 {
        return None;
    }
    // A datagram socket's replies are ours by construction (the kernel matched them).
    if raw && header[4..6] != ident.to_ne_bytes() {
        return None;
    }
    let sequence = u16::from_be_bytes([header[6], header[7]]);
    Some((icmp_start + ICMP_HEADER_LEN..packet.len(), sequence))
}

/// RFC 1071's one's-complement sum, as Heartbeat's `in_cksum`, returned in network order.
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // Truncation intended: the carries were folded in above.
    !(sum as u16)
}

/// An open `ping` medium.
#[derive(Debug)]
pub struct PingMedium {
    name: String,
    address: Ipv4Addr,
    socket: IcmpSocket,
}

impl PingMedium {
    /// Resolves the host and opens the ICMP socket.
    pub fn open(config: &PingConfig) -> io::Result<Self> {
        Ok(Self {
            name: config.name.clone(),
            address: config.target.resolve()?,
            socket: IcmpSocket::open()?,
        })
    }

    /// The address echo requests go to.
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// Whether the socket is raw (else the unprivileged ICMP socket).
    pub fn uses_raw_socket(&self) -> bool {
        self.socket.is_raw()
    }
}

impl Medium for PingMedium {
    fn link_name(&self) -> &str {
        &self.name
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.socket.send_echo(self.address, frame)
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, PeerAddress)> {
        self.socket.recv(buf, |from, _| from == self.address)
    }

    fn shutdown(&self) {
        self.socket.shutdown();
    }

    fn readiness_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.socket.fd())
    }

    fn try_recv(&self, buf: &mut [u8]) -> io::Result<(usize, PeerAddress)> {
        self.socket.try_recv(buf, |from, _| from == self.address)
    }
}

/// Creates `ping` media.
pub struct PingFactory {
    info: PluginInfo,
}

impl Default for PingFactory {
    fn default() -> Self {
        Self {
            info: crate::built_in_medium("ping", "ping membership"),
        }
    }
}

impl MediumFactory for PingFactory {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn check(&self, spec: &MediumSpec) -> Result<(), MediumError> {
        PingConfig::parse(spec).map(|_| ())
    }

    fn open(&self, spec: &MediumSpec) -> Result<Box<dyn Medium>, MediumError> {
        let config = PingConfig::parse(spec)?;
        let medium = PingMedium::open(&config).map_err(|e| MediumError::open(spec, e))?;
        Ok(Box::new(medium))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::test_support::spec;

    fn check_error(args: &str) -> String {
        PingFactory::default()
            .check(&spec("ping", args, 694))
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn ping_takes_one_host_given_as_an_address_or_a_name() {
        let config = PingConfig::parse(&spec("ping", "198.18.0.254", 694)).expect("valid");
        assert_eq!(config.name, "198.18.0.254");
        assert_eq!(
            config.target,
            PingTarget::Address(Ipv4Addr::new(198, 18, 0, 254))
        );
        let config = PingConfig::parse(&spec("ping", "router.example", 694)).expect("valid");
        assert_eq!(config.target, PingTarget::HostName("router.example".into()));
        assert_eq!(
            check_error(""),
            "ha.cf:7: `ping`: expected one host (ping <host>)"
        );
        assert_eq!(
            check_error("a b"),
            "ha.cf:7: `ping a b`: expected one host (ping <host>)"
        );
    }

    #[test]
    fn ping_refuses_addresses_no_single_host_answers_and_malformed_names() {
        assert!(check_error("0.0.0.0").contains("cannot answer a ping"));
        assert!(check_error("224.0.0.1").contains("cannot answer a ping"));
        assert!(check_error("198.18.0").contains("neither an IPv4 address nor a host name"));
        assert!(check_error("bad_host!").contains("neither an IPv4 address nor a host name"));
    }

    #[test]
    fn echo_request_carries_the_checksum_ident_sequence_and_payload() {
        let packet = echo_request(0x1234, 7, b"abc");
        assert_eq!(packet[0], ICMP_ECHO);
        assert_eq!(packet[1], 0);
        assert_eq!(&packet[4..6], &0x1234u16.to_ne_bytes());
        assert_eq!(&packet[6..8], &[0, 7]);
        assert_eq!(&packet[8..], b"abc");
        // A correct checksum makes the whole packet sum to zero.
        assert_eq!(internet_checksum(&packet), 0);
    }

    #[test]
    fn internet_checksum_matches_rfc_1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2, complement 220d.
        assert_eq!(
            internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }

    #[test]
    fn only_echo_replies_with_our_identifier_are_taken_from_a_raw_socket() {
        let ip_header = [0x45u8; 20];
        let mut reply = ip_header.to_vec();
        reply.extend_from_slice(&echo_request(0x4242, 1, b"frame"));
        assert_eq!(echo_reply_payload(&reply, true, 0x4242), None, "a request");
        reply[20] = ICMP_ECHO_REPLY;
        assert_eq!(echo_reply_payload(&reply, true, 0x4242), Some((28..33, 1)));
        assert_eq!(echo_reply_payload(&reply, true, 0x4243), None, "not ours");
        assert_eq!(echo_reply_payload(&reply[..25], true, 0x4242), None);
        assert_eq!(echo_reply_payload(&reply[20..], false, 1), Some((8..13, 1)));
    }

    /// In a fresh network namespace nobody may open the unprivileged ICMP socket; once the
    /// namespace's `ping_group_range` admits root's group it works like the raw one.
    #[test]
    fn the_unprivileged_socket_names_ping_group_range_and_works_once_allowed() {
        crate::test_support::VethPair::run(|_| {
            let raw_refused = io::Error::from(io::ErrorKind::PermissionDenied);
            let refused = IcmpSocket::open_unprivileged(&raw_refused).expect_err("range `1 0`");
            let message = refused.to_string();
            assert!(
                message.contains("needs root or CAP_NET_RAW")
                    && message.contains("net.ipv4.ping_group_range"),
                "{message}"
            );
            std::fs::write("/proc/sys/net/ipv4/ping_group_range", "0 0")
                .expect("set this namespace's ping_group_range");
            let socket = IcmpSocket::open_unprivileged(&raw_refused).expect("now allowed");
            assert!(!socket.is_raw());
            let loopback = Ipv4Addr::LOCALHOST;
            socket.send_echo(loopback, b"probe").expect("sent");
            let mut buf = vec![0u8; 2048];
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match socket.try_recv(&mut buf, |from, _| from == loopback) {
                    Ok((len, _)) => {
                        assert_eq!(&buf[..len], b"probe");
                        break;
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        assert!(Instant::now() < deadline, "no echo reply within 5 s");
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(err) => panic!("receive failed: {err}"),
                }
            }
        });
    }

    /// Loopback answers echo requests in the kernel, as a router would.
    #[test]
    fn a_probe_sent_to_loopback_comes_back_as_the_received_frame() {
        let medium = match PingMedium::open(
            &PingConfig::parse(&spec("ping", "127.0.0.1", 694)).expect("valid"),
        ) {
            Ok(medium) => medium,
            Err(error) => {
                // SAFETY: geteuid has no preconditions.
                assert_ne!(
                    unsafe { libc::geteuid() },
                    0,
                    "root opens a raw socket: {error}"
                );
                assert!(
                    error.to_string().contains("ping_group_range"),
                    "the error explains both sockets: {error}"
                );
                eprintln!("skipped: no ICMP socket for this user: {error}");
                return;
            }
        };
        assert_eq!(medium.link_name(), "127.0.0.1");
        assert!(medium.readiness_fd().is_some());
        let frame = b"###\n(0)t=NS_st\n%%%\n";
        medium.send(frame).expect("sent");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = vec![0u8; 65536];
        loop {
            match medium.try_recv(&mut buf) {
                Ok((len, from)) => {
                    assert_eq!(&buf[..len], frame);
                    assert_eq!(from.to_string(), "127.0.0.1:0");
                    break;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "no echo reply within 5 s");
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(err) => panic!("receive failed: {err}"),
            }
        }
        medium.shutdown();
        assert!(medium.recv(&mut buf).is_err(), "reads fail after shutdown");
    }
}
