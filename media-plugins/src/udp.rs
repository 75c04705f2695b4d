//! UDP socket setup and interface lookups shared by the `bcast`, `mcast`, `mcast6`, `ucast`
//! and `ucast6` media.
//!
//! This module owns every system call those media make before a frame moves: validated
//! interface names, interface indexes, `getifaddrs` lookups (an interface's IPv4 address and
//! broadcast address, the host's own IPv4 and IPv6 addresses), IPv4 and IPv6-only sockets,
//! `SO_BINDTODEVICE` with its unprivileged fallback, `SO_DONTROUTE`, and the receive socket
//! whose blocking `recv` ends for good at shutdown; and [`UdpLink`], the open medium all
//! five are once their sockets are set up.
//! Of a configuration line it reads only the shared `udpport`; it knows nothing about frames
//! or which medium uses it, and it never logs: what a caller should report (a skipped device
//! binding) is returned as a value.

use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use vigil_plugin_api::{Medium, MediumError, MediumSpec, PeerAddress};

/// A network interface name as Linux accepts it (`eth0`, `bond0.12`), checked when the
/// configuration is read so that a typo is reported before any socket exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceName(String);

impl InterfaceName {
    /// The longest name the kernel accepts: `IFNAMSIZ` less the terminating NUL.
    const MAX_LEN: usize = libc::IFNAMSIZ - 1;

    /// Checks `token` against the kernel's rules for device names (1 to 15 bytes, not `.` or
    /// `..`, no `/`, `:` or whitespace). The error is a reason for
    /// `MediumError::bad_arguments`. An alias label such as `eth0:1` is refused because it
    /// names an address, not a device a socket can be tied to.
    pub fn parse(token: &str) -> Result<Self, String> {
        let well_formed = !token.is_empty()
            && token.len() <= Self::MAX_LEN
            && token != "."
            && token != ".."
            && !token
                .chars()
                .any(|c| c == '/' || c == ':' || c.is_whitespace());
        if well_formed {
            Ok(Self(token.to_string()))
        } else {
            Err(format!(
                "interface `{token}`: expected a device name of 1 to {} characters without \
                 `/`, `:` or whitespace (such as `eth0`)",
                Self::MAX_LEN
            ))
        }
    }

    /// The name as the kernel knows it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a medium's sockets are tied to their interface with `SO_BINDTODEVICE`.
///
/// Kept so the operator can be told: an unbound socket sends and receives on every
/// interface, so with two interfaces on one port a frame may be counted on the wrong link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceBinding {
    /// Every socket of the medium that should be tied to its interface is.
    Bound,
    /// The kernel refused `SO_BINDTODEVICE` for lack of privilege (EPERM) and the sockets
    /// were left unbound, which is what Debian's Heartbeat 3.0.6 build always does.
    NotPermitted,
}

impl DeviceBinding {
    /// The binding of a medium made of sockets with bindings `self` and `other`: one skipped
    /// binding makes the whole medium unbound.
    pub(crate) fn and(self, other: DeviceBinding) -> DeviceBinding {
        match (self, other) {
            (DeviceBinding::Bound, DeviceBinding::Bound) => DeviceBinding::Bound,
            _ => DeviceBinding::NotPermitted,
        }
    }
}

/// The cluster's UDP port (`udpport`) from `spec`, which `bcast` and `ucast` use; port 0
/// cannot be sent to, so it is refused with the line that carries it.
pub(crate) fn cluster_port(spec: &MediumSpec) -> Result<u16, MediumError> {
    if spec.udp_port == 0 {
        return Err(MediumError::bad_arguments(
            spec,
            "udpport 0: expected a UDP port from 1 to 65535",
        ));
    }
    Ok(spec.udp_port)
}

/// A new IPv4 UDP socket. socket2 opens it close-on-exec, so agent scripts never inherit a
/// cluster socket.
pub(crate) fn ipv4_udp_socket() -> io::Result<Socket> {
    Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
}

/// A new IPv4 UDP socket for sending only, non-blocking so that `send` can be called from the
/// host's event loop: a full send buffer drops the frame (`WouldBlock`) instead of waiting.
pub(crate) fn ipv4_udp_send_socket() -> io::Result<Socket> {
    let socket = ipv4_udp_socket()?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A new IPv6 UDP socket, IPv6 only (`IPV6_V6ONLY`): it neither hears IPv4 datagrams nor
/// keeps an IPv4 medium of the same node from binding the same port.
pub(crate) fn ipv6_udp_socket() -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_only_v6(true)?;
    Ok(socket)
}

/// A new IPv6-only UDP socket for sending only, non-blocking for the same reason as
/// [`ipv4_udp_send_socket`].
pub(crate) fn ipv6_udp_send_socket() -> io::Result<Socket> {
    let socket = ipv6_udp_socket()?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// The kernel's index of `device` (`if_nametoindex`), which IPv6 uses to name an interface:
/// the multicast interface, the interface a group is joined on, a link-local scope.
pub(crate) fn interface_index(device: &InterfaceName) -> io::Result<u32> {
    let name = CString::new(device.as_str()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface `{device}` contains a NUL byte"),
        )
    })?;
    // SAFETY: `name` is a NUL-terminated string that lives across the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no network interface named `{device}`"),
        ))
    } else {
        Ok(index)
    }
}

/// Ties `socket` to `device` with `SO_BINDTODEVICE`. Lack of privilege is not an error (the
/// medium still works, as Debian's build does); any other failure, such as a device that does
/// not exist, is.
pub(crate) fn bind_to_device(socket: &Socket, device: &InterfaceName) -> io::Result<DeviceBinding> {
    match socket.bind_device(Some(device.as_str().as_bytes())) {
        Ok(()) => Ok(DeviceBinding::Bound),
        Err(err) if err.raw_os_error() == Some(libc::EPERM) => {
            tracing::warn!(
                interface = %device,
                "SO_BINDTODEVICE not permitted; the medium hears the port on every interface"
            );
            Ok(DeviceBinding::NotPermitted)
        }
        Err(err) => Err(io::Error::new(
            err.kind(),
            format!("cannot tie the socket to interface `{device}` (SO_BINDTODEVICE): {err}"),
        )),
    }
}

/// Sets `SO_DONTROUTE`, so a broadcast only ever leaves through the interface it names.
/// socket2 offers this only as a per-call flag, hence the direct call.
pub(crate) fn set_dont_route(socket: &Socket) -> io::Result<()> {
    let enable: libc::c_int = 1;
    set_socket_option(socket.as_fd(), libc::SO_DONTROUTE, &enable)
}

/// Sets the `SOL_SOCKET` option `option` of socket `fd` to `value`, for the options socket2
/// does not offer.
fn set_socket_option<T>(fd: BorrowedFd<'_>, option: libc::c_int, value: &T) -> io::Result<()> {
    let len = libc::socklen_t::try_from(size_of::<T>())
        .map_err(|_| io::Error::other("a socket option value does not fit socklen_t"))?;
    // SAFETY: a borrowed descriptor is open for the call; `value` points to a live `T` and
    // `len` is its size, which is what the kernel reads (it copies the value).
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            ptr::from_ref(value).cast::<libc::c_void>(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The receiving half of a UDP medium: a bound, non-blocking socket, read either from the
/// host's event loop (`try_recv`, with `fd` as the readiness descriptor) or by a thread whose
/// blocking `recv` ends for good once `shutdown` is called.
///
/// Shutdown works by `shutdown(2)` on the socket: on Linux it wakes a reader waiting on an
/// unconnected UDP socket (the call itself reports ENOTCONN, which is ignored) and makes
/// every later read return at once. The flag tells that wake-up apart from an empty
/// datagram, which UDP allows.
#[derive(Debug)]
pub(crate) struct ReceiveSocket {
    /// The bound socket; reads only. Non-blocking: `recv` waits in `poll(2)` instead.
    socket: UdpSocket,
    /// Set once by `shutdown`; from then on `recv` fails.
    shut_down: AtomicBool,
    /// This medium's own sending socket, whose frames the network hands back (broadcast,
    /// looped-back multicast): skipped here, before anyone decodes them.
    own_sender: Option<OwnSender>,
}

/// Where this node's frames on one medium come from: the sending socket's port on any of
/// the host's addresses. The host loops its own messages back internally, so the copy the
/// network returns is only work (a decode, a wake-up, a duplicate to count).
/// An IPv6 sender is recognised by address alone, whatever its scope id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnSender {
    port: u16,
    addresses: Vec<IpAddr>,
}

impl OwnSender {
    /// Binds `sender` to an ephemeral port of its address family if it is not bound yet (so
    /// its port is known before the first send) and returns its identity.
    pub(crate) fn of(sender: &Socket) -> io::Result<Self> {
        let local = sender
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("the sending socket is not an IP socket"))?;
        let port = if local.port() != 0 {
            local.port()
        } else {
            let unspecified = match local {
                SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            sender.bind(&SocketAddr::new(unspecified, 0).into())?;
            sender
                .local_addr()?
                .as_socket()
                .map_or(0, |bound| bound.port())
        };
        let addresses = match local {
            SocketAddr::V4(_) => local_ipv4_addresses()?
                .into_iter()
                .map(IpAddr::V4)
                .collect(),
            SocketAddr::V6(_) => local_ipv6_addresses()?
                .into_iter()
                .map(|(_, address)| IpAddr::V6(address))
                .collect(),
        };
        Ok(Self { port, addresses })
    }

    fn sent(&self, from: &SocketAddr) -> bool {
        from.port() == self.port && self.addresses.contains(&from.ip())
    }
}

/// The most local addresses [`own_frames_filter`] compares: each takes one instruction, and
/// a classic BPF jump reaches at most 255 instructions ahead.
const FILTER_MAX_ADDRESSES: usize = 200;

/// A classic BPF socket filter that drops the UDP datagrams `own` sent (its port on one of
/// its IPv4 addresses) and accepts every other; `None` for an IPv6 sender or more than
/// [`FILTER_MAX_ADDRESSES`] addresses. A UDP socket filter sees the datagram from its UDP
/// header on (offset 0 is the source port); the IP header is reached through
/// `SKF_NET_OFF` (the source address at 12).
fn own_frames_filter(own: &OwnSender) -> Option<Vec<libc::sock_filter>> {
    let addresses: Vec<u32> = own
        .addresses
        .iter()
        .map(|address| match address {
            IpAddr::V4(v4) => Some(u32::from(*v4)),
            IpAddr::V6(_) => None,
        })
        .collect::<Option<_>>()?;
    if addresses.is_empty() || addresses.len() > FILTER_MAX_ADDRESSES {
        return None;
    }
    let count = u8::try_from(addresses.len()).ok()?;
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: u16::try_from(code).unwrap_or(u16::MAX),
        jt,
        jf,
        k,
    };
    let source_address_offset = (libc::SKF_NET_OFF + 12) as u32;
    // 0: the source port; 1: not ours → accept; 2: the source address; then one compare per
    // address (equal → drop); accept; drop.
    let mut program = vec![
        op(libc::BPF_LD | libc::BPF_H | libc::BPF_ABS, 0, 0, 0),
        op(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            0,
            count + 1,
            u32::from(own.port),
        ),
        op(
            libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
            0,
            0,
            source_address_offset,
        ),
    ];
    for (index, address) in (0..count).zip(addresses) {
        program.push(op(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            count - index,
            0,
            address,
        ));
    }
    program.push(op(libc::BPF_RET | libc::BPF_K, 0, 0, u32::MAX));
    program.push(op(libc::BPF_RET | libc::BPF_K, 0, 0, 0));
    Some(program)
}

/// Attaches a classic BPF `program` to `socket` (`SO_ATTACH_FILTER`). The kernel copies the
/// program, which need only outlive the call.
fn attach_socket_filter(socket: &UdpSocket, program: &[libc::sock_filter]) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: u16::try_from(program.len())
            .map_err(|_| io::Error::other("the socket filter is too long"))?,
        filter: program.as_ptr().cast_mut(),
    };
    set_socket_option(socket.as_fd(), libc::SO_ATTACH_FILTER, &fprog)
}

impl ReceiveSocket {
    /// Binds `socket` to `address` after setting `SO_REUSEADDR` and `SO_REUSEPORT`, so that
    /// several media of one node (two `ucast` lines, or `bcast` next to `ucast`) can share the
    /// cluster port. The caller applies any device binding or membership first or after;
    /// an IPv6 `address` needs a socket of [`ipv6_udp_socket`].
    pub(crate) fn bind(socket: Socket, address: impl Into<SocketAddr>) -> io::Result<Self> {
        let address = address.into();
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.bind(&address.into()).map_err(|err| {
            io::Error::new(err.kind(), format!("cannot bind UDP {address}: {err}"))
        })?;
        socket.set_nonblocking(true)?;
        Ok(Self {
            socket: socket.into(),
            shut_down: AtomicBool::new(false),
            own_sender: None,
        })
    }

    /// Skips, from now on, the frames `own` sent: the kernel drops them before they are
    /// queued when it accepts the filter of [`own_frames_filter`] (IPv4), so they cost no
    /// wake-up and no read; `try_recv` skips any that still arrive (IPv6 senders, a host
    /// with more addresses than the filter holds, a filter refused).
    pub(crate) fn skip_frames_of(mut self, own: OwnSender) -> Self {
        if let Some(program) = own_frames_filter(&own) {
            // An optimisation only: on failure every own frame is still skipped in `try_recv`.
            let _ = attach_socket_filter(&self.socket, &program);
        }
        self.own_sender = Some(own);
        self
    }

    /// Joins `group` on the interface whose address is `interface` (IP_ADD_MEMBERSHIP).
    pub(crate) fn join_multicast(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.socket
            .join_multicast_v4(&group, &interface)
            .map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!("cannot join multicast group {group} on {interface}: {err}"),
                )
            })
    }

    /// Joins the IPv6 `group` on the interface with index `interface` (IPV6_JOIN_GROUP).
    pub(crate) fn join_multicast_v6(&self, group: Ipv6Addr, interface: u32) -> io::Result<()> {
        SockRef::from(&self.socket)
            .join_multicast_v6(&group, interface)
            .map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!(
                        "cannot join multicast group {group} on interface index {interface}: {err}"
                    ),
                )
            })
    }

    /// The descriptor that polls readable when `try_recv` has a datagram.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Takes one waiting datagram, skipping this medium's own: its length and sender,
    /// `WouldBlock` when none is waiting; fails once `shutdown` has been called.
    pub(crate) fn try_recv(&self, buf: &mut [u8]) -> io::Result<(usize, PeerAddress)> {
        loop {
            if self.shut_down.load(Ordering::Acquire) {
                return Err(Self::shut_down_error());
            }
            match self.socket.recv_from(buf) {
                Ok((_, from)) if self.own_sender.as_ref().is_some_and(|own| own.sent(&from)) => {
                    continue;
                }
                Ok((len, from)) => return Ok((len, PeerAddress::Udp(from))),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
    }

    /// Waits until one datagram arrives and returns its length and sender; fails once
    /// `shutdown` has been called, however the wait was woken.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, PeerAddress)> {
        loop {
            match self.try_recv(buf) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.wait_readable()?,
                received => return received,
            }
        }
    }

    /// Blocks in `poll(2)` until the socket is readable or shut down.
    fn wait_readable(&self) -> io::Result<()> {
        let mut poll_fd = libc::pollfd {
            fd: self.socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `poll_fd` is one live pollfd for a descriptor open for the lifetime of
        // `self`; the count passed is 1.
        let rc = unsafe { libc::poll(&mut poll_fd, 1, -1) };
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

    /// Makes every pending and later `recv` fail, so a reader thread can end.
    pub(crate) fn shutdown(&self) {
        self.shut_down.store(true, Ordering::Release);
        // On an unconnected UDP socket Linux reports ENOTCONN yet still marks the socket shut
        // and wakes its readers, which is all that is needed here.
        let _ = SockRef::from(&self.socket).shutdown(Shutdown::Both);
    }

    /// The address the socket is bound to (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.socket.local_addr()
    }

    fn shut_down_error() -> io::Error {
        io::Error::new(io::ErrorKind::ConnectionAborted, "the medium was shut down")
    }
}

/// The IPv4 address of `device` (its first, as SIOCGIFADDR would report), used as the
/// multicast interface.
pub(crate) fn interface_ipv4_address(device: &InterfaceName) -> io::Result<Ipv4Addr> {
    find_interface_address(&interface_addresses()?, device, AddressKind::Unicast)
}

/// The IPv4 broadcast address of `device`, where `bcast` sends.
pub(crate) fn interface_broadcast_address(device: &InterfaceName) -> io::Result<Ipv4Addr> {
    find_interface_address(&interface_addresses()?, device, AddressKind::Broadcast)
}

/// Every IPv4 address assigned to this host, so `ucast` can recognise its own address among
/// the peers of a configuration shared by every node.
pub(crate) fn local_ipv4_addresses() -> io::Result<Vec<Ipv4Addr>> {
    Ok(interface_addresses()?
        .into_iter()
        .filter_map(|entry| entry.address)
        .collect())
}

/// Every IPv6 address assigned to this host with the interface that carries it, so `ucast6`
/// can recognise its own address among the peers (a link-local address is this node only
/// on the medium's own interface) and `mcast6` can skip its own frames.
pub(crate) fn local_ipv6_addresses() -> io::Result<Vec<(String, Ipv6Addr)>> {
    Ok(interface_addresses()?
        .into_iter()
        .filter_map(|entry| entry.ipv6.map(|address| (entry.name, address)))
        .collect())
}

/// One entry of `getifaddrs`, reduced to what the media need.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InterfaceAddress {
    /// The interface (or alias label) the entry belongs to.
    name: String,
    /// The IPv4 address, when the entry is an IPv4 one.
    address: Option<Ipv4Addr>,
    /// The IPv6 address, when the entry is an IPv6 one.
    ipv6: Option<Ipv6Addr>,
    /// The IPv4 broadcast address, when the interface has one.
    broadcast: Option<Ipv4Addr>,
}

/// Which address of an interface a lookup wants.
#[derive(Debug, Clone, Copy)]
enum AddressKind {
    Unicast,
    Broadcast,
}

/// Picks the first address of `kind` on `device`; the error says whether the interface is
/// missing or merely lacks such an address, since the operator's fix differs.
fn find_interface_address(
    entries: &[InterfaceAddress],
    device: &InterfaceName,
    kind: AddressKind,
) -> io::Result<Ipv4Addr> {
    let mut known = false;
    for entry in entries.iter().filter(|entry| entry.name == device.as_str()) {
        known = true;
        let found = match kind {
            AddressKind::Unicast => entry.address,
            AddressKind::Broadcast => entry.broadcast,
        };
        if let Some(address) = found {
            return Ok(address);
        }
    }
    if !known {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no network interface named `{device}`"),
        ));
    }
    let what = match kind {
        AddressKind::Unicast => "IPv4 address",
        AddressKind::Broadcast => "IPv4 broadcast address",
    };
    Err(io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        format!("interface `{device}` has no {what}"),
    ))
}

/// Lists the host's interface addresses through `getifaddrs(3)`, which also lists interfaces
/// without an IPv4 address (as AF_PACKET entries), so a lookup can tell "no such interface"
/// from "no address".
fn interface_addresses() -> io::Result<Vec<InterfaceAddress>> {
    let mut head: *mut libc::ifaddrs = ptr::null_mut();
    // SAFETY: `head` is a valid place for getifaddrs to store the list it allocates; on
    // success the list is freed below, exactly once.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut entries = Vec::new();
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned, which stays allocated
        // until freeifaddrs below.
        let node = unsafe { &*cursor };
        if !node.ifa_name.is_null() {
            // SAFETY: a non-null `ifa_name` is a NUL-terminated string owned by the list.
            let name = unsafe { CStr::from_ptr(node.ifa_name) }
                .to_string_lossy()
                .into_owned();
            let has_broadcast = node.ifa_flags & (libc::IFF_BROADCAST as libc::c_uint) != 0;
            entries.push(InterfaceAddress {
                name,
                address: ipv4_of(node.ifa_addr),
                ipv6: ipv6_of(node.ifa_addr),
                broadcast: if has_broadcast {
                    ipv4_of(node.ifa_ifu).filter(|addr| !addr.is_unspecified())
                } else {
                    None
                },
            });
        }
        cursor = node.ifa_next;
    }
    // SAFETY: `head` came from a successful getifaddrs and nothing refers to it any more.
    unsafe { libc::freeifaddrs(head) };
    Ok(entries)
}

/// The IPv4 address in a `getifaddrs` socket address, if it is one.
fn ipv4_of(address: *const libc::sockaddr) -> Option<Ipv4Addr> {
    if address.is_null() {
        return None;
    }
    // SAFETY: a non-null address from getifaddrs points to a sockaddr whose family field is
    // always valid to read.
    let family = unsafe { ptr::read_unaligned(ptr::addr_of!((*address).sa_family)) };
    if libc::c_int::from(family) != libc::AF_INET {
        return None;
    }
    // SAFETY: an AF_INET address from getifaddrs is a full sockaddr_in; read unaligned
    // because the list does not promise sockaddr_in alignment.
    let inet = unsafe { ptr::read_unaligned(address.cast::<libc::sockaddr_in>()) };
    Some(Ipv4Addr::from(u32::from_be(inet.sin_addr.s_addr)))
}

/// The IPv6 address in a `getifaddrs` socket address, if it is one.
fn ipv6_of(address: *const libc::sockaddr) -> Option<Ipv6Addr> {
    if address.is_null() {
        return None;
    }
    // SAFETY: a non-null address from getifaddrs points to a sockaddr whose family field is
    // always valid to read.
    let family = unsafe { ptr::read_unaligned(ptr::addr_of!((*address).sa_family)) };
    if libc::c_int::from(family) != libc::AF_INET6 {
        return None;
    }
    // SAFETY: an AF_INET6 address from getifaddrs is a full sockaddr_in6; read unaligned
    // because the list does not promise sockaddr_in6 alignment.
    let inet6 = unsafe { ptr::read_unaligned(address.cast::<libc::sockaddr_in6>()) };
    Some(Ipv6Addr::from(inet6.sin6_addr.s6_addr))
}

/// An open UDP medium: a sender aimed at one destination and a receive socket, both set up
/// by the medium that opened it (`bcast`, `mcast`, `ucast`, `mcast6`, `ucast6`), which
/// differ only in that setup. It is driven from the host's event loop (readiness fd and
/// non-blocking receive).
#[derive(Debug)]
pub struct UdpLink {
    /// The interface, reported as the link name.
    device: InterfaceName,
    /// Sends every frame to `destination`; never read from.
    sender: UdpSocket,
    /// Where frames go; `None` for a `ucast` line naming this node, a silent sender.
    destination: Option<SocketAddr>,
    /// Receives the cluster's frames.
    receiver: ReceiveSocket,
    /// Whether the sockets are tied to the interface; `None` for a medium that does not tie
    /// them (`mcast`, as 3.0.6).
    device_binding: Option<DeviceBinding>,
}

impl UdpLink {
    /// The link a medium set up: its interface, both sockets, where it sends (if anywhere)
    /// and whether the sockets are tied to the interface.
    pub(crate) fn new(
        device: InterfaceName,
        sender: UdpSocket,
        destination: Option<SocketAddr>,
        receiver: ReceiveSocket,
        device_binding: Option<DeviceBinding>,
    ) -> Self {
        Self {
            device,
            sender,
            destination,
            receiver,
            device_binding,
        }
    }

    /// Where frames are sent, or `None` when the medium is a silent sender.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.destination
    }

    /// Whether the sockets are tied to the interface (`None`: the medium does not tie them).
    /// `NotPermitted` deserves a log line: the medium then also hears the cluster port on
    /// other interfaces.
    pub fn device_binding(&self) -> Option<DeviceBinding> {
        self.device_binding
    }
}

impl Medium for UdpLink {
    fn link_name(&self) -> &str {
        self.device.as_str()
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        match self.destination {
            Some(destination) => self.sender.send_to(frame, destination).map(drop),
            None => Ok(()),
        }
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, PeerAddress)> {
        self.receiver.recv(buf)
    }

    fn shutdown(&self) {
        self.receiver.shutdown();
    }

    fn readiness_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.receiver.fd())
    }

    fn try_recv(&self, buf: &mut [u8]) -> io::Result<(usize, PeerAddress)> {
        self.receiver.try_recv(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddrV4;
    use std::sync::Arc;
    use std::thread;

    fn name(token: &str) -> InterfaceName {
        InterfaceName::parse(token).expect("valid interface name in test")
    }

    #[test]
    fn interface_names_follow_the_kernel_rules() {
        for good in ["eth0", "bond0.12", "br-lan", "lo", "a23456789012345"] {
            assert_eq!(
                InterfaceName::parse(good).map(|n| n.0),
                Ok(good.to_string())
            );
        }
        for bad in ["", ".", "..", "eth0:1", "a/b", "e th", "a234567890123456"] {
            let reason = InterfaceName::parse(bad).expect_err(bad);
            assert!(reason.contains("expected a device name"), "{reason}");
        }
    }

    #[test]
    fn device_binding_is_bound_only_when_every_socket_is() {
        use DeviceBinding::{Bound, NotPermitted};
        assert_eq!(Bound.and(Bound), Bound);
        assert_eq!(Bound.and(NotPermitted), NotPermitted);
        assert_eq!(NotPermitted.and(Bound), NotPermitted);
    }

    fn sample_interfaces() -> Vec<InterfaceAddress> {
        vec![
            InterfaceAddress {
                name: "eth1".into(),
                address: None,
                ipv6: None,
                broadcast: None,
            },
            InterfaceAddress {
                name: "eth0".into(),
                address: Some(Ipv4Addr::new(198, 18, 0, 1)),
                ipv6: None,
                broadcast: Some(Ipv4Addr::new(198, 18, 0, 255)),
            },
            InterfaceAddress {
                name: "eth0".into(),
                address: Some(Ipv4Addr::new(198, 18, 1, 1)),
                ipv6: None,
                broadcast: Some(Ipv4Addr::new(198, 18, 1, 255)),
            },
            InterfaceAddress {
                name: "lo".into(),
                address: Some(Ipv4Addr::LOCALHOST),
                ipv6: None,
                broadcast: None,
            },
        ]
    }

    #[test]
    fn interface_lookup_takes_the_first_address_of_the_named_interface() {
        let entries = sample_interfaces();
        let found = find_interface_address(&entries, &name("eth0"), AddressKind::Unicast);
        assert_eq!(found.ok(), Some(Ipv4Addr::new(198, 18, 0, 1)));
        let found = find_interface_address(&entries, &name("eth0"), AddressKind::Broadcast);
        assert_eq!(found.ok(), Some(Ipv4Addr::new(198, 18, 0, 255)));
    }

    #[test]
    fn interface_lookup_tells_a_missing_interface_from_a_missing_address() {
        let entries = sample_interfaces();
        let missing = find_interface_address(&entries, &name("eth9"), AddressKind::Unicast)
            .expect_err("eth9 is not in the list");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        assert_eq!(missing.to_string(), "no network interface named `eth9`");

        let no_address = find_interface_address(&entries, &name("eth1"), AddressKind::Unicast)
            .expect_err("eth1 has no IPv4 address");
        assert_eq!(no_address.kind(), io::ErrorKind::AddrNotAvailable);
        assert_eq!(
            no_address.to_string(),
            "interface `eth1` has no IPv4 address"
        );

        let no_broadcast = find_interface_address(&entries, &name("lo"), AddressKind::Broadcast)
            .expect_err("lo has no broadcast address");
        assert_eq!(
            no_broadcast.to_string(),
            "interface `lo` has no IPv4 broadcast address"
        );
    }

    #[test]
    fn getifaddrs_reports_the_loopback_address() {
        assert_eq!(
            interface_ipv4_address(&name("lo")).expect("lo has an address"),
            Ipv4Addr::LOCALHOST
        );
        let local = local_ipv4_addresses().expect("getifaddrs works");
        assert!(local.contains(&Ipv4Addr::LOCALHOST), "{local:?}");
        let loopback_broadcast = interface_broadcast_address(&name("lo"))
            .expect_err("loopback is not a broadcast interface");
        assert_eq!(loopback_broadcast.kind(), io::ErrorKind::AddrNotAvailable);
    }

    #[test]
    fn interface_index_names_a_missing_interface() {
        assert!(interface_index(&name("lo")).expect("lo exists") > 0);
        let missing = interface_index(&name("vigil-nodev0")).expect_err("no such device");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            missing.to_string(),
            "no network interface named `vigil-nodev0`"
        );
    }

    /// The IPv6 addresses the kernel lists in /proc/net/if_inet6 for `device` (empty when
    /// IPv6 is disabled).
    fn kernel_ipv6_addresses(device: &str) -> Vec<Ipv6Addr> {
        let listing = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
        listing
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (hex, interface) = (fields.first()?, fields.last()?);
                (*interface == device)
                    .then(|| u128::from_str_radix(hex, 16).ok().map(Ipv6Addr::from))
                    .flatten()
            })
            .collect()
    }

    #[test]
    fn getifaddrs_reports_the_ipv6_addresses_the_kernel_lists() {
        let local = local_ipv6_addresses().expect("getifaddrs works");
        let mut on_lo: Vec<Ipv6Addr> = local
            .iter()
            .filter(|(interface, _)| interface == "lo")
            .map(|(_, address)| *address)
            .collect();
        let mut expected = kernel_ipv6_addresses("lo");
        on_lo.sort();
        expected.sort();
        assert_eq!(on_lo, expected);
    }

    #[test]
    fn ipv6_sockets_are_ipv6_only() {
        let socket = ipv6_udp_socket().expect("IPv6 socket");
        assert!(socket.only_v6().expect("IPV6_V6ONLY"));
        assert!(!socket.nonblocking().expect("flags"));
        assert!(
            ipv6_udp_send_socket()
                .expect("socket")
                .nonblocking()
                .expect("flags")
        );
    }

    #[test]
    fn binding_to_a_missing_device_fails_with_its_name() {
        let socket = ipv4_udp_socket().expect("socket");
        match bind_to_device(&socket, &name("vigil-nodev0")) {
            Err(err) => assert!(err.to_string().contains("`vigil-nodev0`"), "{err}"),
            // Kernels that demand privilege for every binding refuse before looking the
            // device up; that refusal is the documented fallback, not an error.
            Ok(binding) => assert_eq!(binding, DeviceBinding::NotPermitted),
        }
    }

    fn loopback_receiver() -> ReceiveSocket {
        let socket = ipv4_udp_socket().expect("socket");
        ReceiveSocket::bind(socket, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).expect("bind")
    }

    #[test]
    fn receive_socket_returns_the_datagram_and_its_sender() {
        let receiver = loopback_receiver();
        let to = receiver.local_addr().expect("bound");
        let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("sender");
        sender.send_to(b"", to).expect("send empty");
        sender.send_to(b"frame", to).expect("send");

        let mut buf = [0u8; 64];
        let (len, from) = receiver.recv(&mut buf).expect("empty datagram");
        assert_eq!(len, 0, "an empty datagram is a datagram, not a shutdown");
        assert_eq!(from, PeerAddress::Udp(sender.local_addr().expect("sender")));
        let (len, _) = receiver.recv(&mut buf).expect("frame");
        assert_eq!(buf.get(..len), Some(&b"frame"[..]));
    }

    #[test]
    fn the_kernel_filter_drops_only_the_frames_of_the_own_sender() {
        let receiver = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("receiver");
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let to = receiver.local_addr().expect("bound");
        let own_socket = ipv4_udp_send_socket().expect("own sender");
        let own = OwnSender::of(&own_socket).expect("own sender identity");
        let program = own_frames_filter(&own).expect("an IPv4 sender gets a filter");
        attach_socket_filter(&receiver, &program).expect("the kernel accepts the filter");
        // A stranger on the same address with another port, and one on another address
        // (127.0.0.2 is loopback too) with any port, are both let through.
        let stranger = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("stranger");
        let elsewhere = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2), 0)).expect("elsewhere");

        own_socket.send_to(b"own-1", &to.into()).expect("send own");
        stranger.send_to(b"stranger", to).expect("send stranger");
        own_socket.send_to(b"own-2", &to.into()).expect("send own");
        elsewhere.send_to(b"elsewhere", to).expect("send elsewhere");

        // Read with the plain socket: nothing in user space skips anything here.
        let mut buf = [0u8; 64];
        let mut received = Vec::new();
        for _ in 0..2 {
            let (len, _) = receiver.recv_from(&mut buf).expect("a stranger's datagram");
            received.push(String::from_utf8_lossy(&buf[..len]).into_owned());
        }
        assert_eq!(received, ["stranger", "elsewhere"]);
        receiver.set_nonblocking(true).expect("nonblocking");
        let rest = receiver.recv_from(&mut buf);
        assert!(
            rest.as_ref()
                .is_err_and(|e| e.kind() == io::ErrorKind::WouldBlock),
            "the own sender's datagrams must not be queued, got {rest:?}"
        );
    }

    #[test]
    fn an_ipv6_sender_gets_no_kernel_filter() {
        let own = OwnSender {
            port: 694,
            addresses: vec![IpAddr::V6(Ipv6Addr::LOCALHOST)],
        };
        assert!(own_frames_filter(&own).is_none());
        let crowded = OwnSender {
            port: 694,
            addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST); FILTER_MAX_ADDRESSES + 1],
        };
        assert!(own_frames_filter(&crowded).is_none());
    }

    #[test]
    fn shutdown_unblocks_a_blocked_recv() {
        let receiver = Arc::new(loopback_receiver());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let reader = {
            let receiver = Arc::clone(&receiver);
            thread::spawn(move || {
                let mut buf = [0u8; 64];
                ready_tx.send(()).expect("main thread waits");
                receiver.recv(&mut buf)
            })
        };
        ready_rx.recv().expect("reader started");
        // Give the reader time to enter recvfrom; the result is the same if it has not yet.
        thread::sleep(std::time::Duration::from_millis(100));
        receiver.shutdown();
        let result = reader.join().expect("reader thread did not panic");
        let err = result.expect_err("recv after shutdown must fail");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
    }

    #[test]
    fn recv_after_shutdown_fails_at_once() {
        let receiver = loopback_receiver();
        receiver.shutdown();
        let mut buf = [0u8; 16];
        let err = receiver.recv(&mut buf).expect_err("shut down");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
    }
}
