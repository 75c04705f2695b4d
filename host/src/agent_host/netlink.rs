//! Interfaces and addresses over rtnetlink: list links, list addresses, add and remove one.
//!
//! Owns one synchronous request/reply exchange per call on a fresh `NETLINK_ROUTE` socket,
//! so every call sees the network namespace of the thread that makes it, and the mapping of
//! the kernel's answers: `EEXIST` on add and `EADDRNOTAVAIL` on remove mean "already so"
//! (start and stop are idempotent). It must not run `ip` or any other program, keep sockets
//! between calls, or decide anything an agent decides (which interface, which prefix).

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkAttribute, LinkLayerType, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};
use thiserror::Error;
use vigil_agents::address::derived_broadcast;
use vigil_plugin_api::{AddressChange, AddressRequest, InterfaceAddress, IpPrefix};

/// The receive buffer: larger than any single datagram the kernel sends for a dump.
const RECEIVE_BUFFER: usize = 64 * 1024;

/// A netlink exchange failed.
#[derive(Debug, Error)]
pub enum NetlinkError {
    /// The socket could not be opened, bound or used.
    #[error("netlink {request}: {source}")]
    Io {
        request: &'static str,
        #[source]
        source: io::Error,
    },
    /// The kernel answered with an error.
    #[error("netlink {request}: the kernel refused: {source}")]
    Refused {
        request: &'static str,
        #[source]
        source: io::Error,
    },
    /// The kernel's answer could not be decoded.
    #[error("netlink {request}: undecodable reply: {reason}")]
    Malformed {
        request: &'static str,
        reason: String,
    },
    /// No interface has the name an address operation named.
    #[error("no interface named {0:?}")]
    NoSuchInterface(String),
}

impl NetlinkError {
    /// The errno the kernel answered with, if that is what failed.
    pub fn refused_errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Refused { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// One interface, as the link dump reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The kernel's interface index.
    pub index: u32,
    /// The interface name (`eth0`).
    pub name: String,
    /// The Ethernet address, for interfaces that have one.
    pub mac: Option<[u8; 6]>,
}

/// A netlink socket for one exchange with the kernel's routing subsystem.
struct RouteSocket {
    /// Bound and connected to the kernel.
    socket: Socket,
    /// The sequence number of the request in flight; replies carry it back.
    sequence: u32,
}

impl RouteSocket {
    fn open(request: &'static str) -> Result<Self, NetlinkError> {
        let io = |source| NetlinkError::Io { request, source };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(io)?;
        socket.bind_auto().map_err(io)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(io)?;
        Ok(RouteSocket {
            socket,
            sequence: 1,
        })
    }

    /// Sends one request and collects the replies: every message of a dump until its end,
    /// or the acknowledgement of a change.
    fn exchange(
        &mut self,
        request: &'static str,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        let io = |source| NetlinkError::Io { request, source };
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.socket.send(&bytes, 0).map_err(io)?;

        let mut replies = Vec::new();
        let mut buffer: Vec<u8> = Vec::with_capacity(RECEIVE_BUFFER);
        loop {
            buffer.clear();
            let received = self.socket.recv(&mut buffer, 0).map_err(io)?;
            let mut rest = buffer.get(..received).unwrap_or(&buffer[..]);
            while !rest.is_empty() {
                let reply =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest).map_err(|e| {
                        NetlinkError::Malformed {
                            request,
                            reason: e.to_string(),
                        }
                    })?;
                let length = reply.header.length as usize;
                if length == 0 || length > rest.len() {
                    return Err(NetlinkError::Malformed {
                        request,
                        reason: format!("message length {length} in {} bytes", rest.len()),
                    });
                }
                // Netlink aligns every message to 4 bytes within a datagram.
                rest = rest.get(length.next_multiple_of(4)..).unwrap_or_default();
                if reply.header.sequence_number != self.sequence {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::InnerMessage(inner) => replies.push(inner),
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::Error(error) => {
                        return match error.code {
                            None => Ok(replies),
                            Some(_) => Err(NetlinkError::Refused {
                                request,
                                source: error.to_io(),
                            }),
                        };
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Every interface of this thread's network namespace.
pub fn links() -> Result<Vec<Link>, NetlinkError> {
    let request = "link dump";
    let mut socket = RouteSocket::open(request)?;
    let replies = socket.exchange(
        request,
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        NLM_F_DUMP,
    )?;
    Ok(replies
        .into_iter()
        .filter_map(|reply| match reply {
            RouteNetlinkMessage::NewLink(link) => Some(link),
            _ => None,
        })
        .filter_map(|link| {
            let name = link.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(name) => Some(name.clone()),
                _ => None,
            })?;
            let mac = if link.header.link_layer_type == LinkLayerType::Ether {
                link.attributes.iter().find_map(|a| match a {
                    LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice()).ok(),
                    _ => None,
                })
            } else {
                None
            };
            Some(Link {
                index: link.header.index,
                name,
                mac,
            })
        })
        .collect())
}

/// The interface named `name`.
pub fn link_named(name: &str) -> Result<Link, NetlinkError> {
    links()?
        .into_iter()
        .find(|link| link.name == name)
        .ok_or_else(|| NetlinkError::NoSuchInterface(name.to_string()))
}

/// Every IPv4 and IPv6 address on every interface of this thread's network namespace.
pub fn addresses() -> Result<Vec<InterfaceAddress>, NetlinkError> {
    let names: BTreeMap<u32, String> = links()?
        .into_iter()
        .map(|link| (link.index, link.name))
        .collect();
    let request = "address dump";
    let mut socket = RouteSocket::open(request)?;
    let replies = socket.exchange(
        request,
        RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        NLM_F_DUMP,
    )?;
    Ok(replies
        .into_iter()
        .filter_map(|reply| match reply {
            RouteNetlinkMessage::NewAddress(message) => Some(message),
            _ => None,
        })
        .filter_map(|message| {
            // An interface that vanished between the two dumps has no name to report.
            let interface = names.get(&message.header.index)?.clone();
            let mut local = None;
            let mut peer = None;
            let mut broadcast = None;
            let mut label = None;
            for attribute in &message.attributes {
                match attribute {
                    AddressAttribute::Local(ip) => local = Some(*ip),
                    AddressAttribute::Address(ip) => peer = Some(*ip),
                    AddressAttribute::Broadcast(ip) => broadcast = Some(IpAddr::V4(*ip)),
                    AddressAttribute::Label(text) => label = Some(text.clone()),
                    _ => {}
                }
            }
            // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
            // point-to-point links and the same address elsewhere.
            let address = local.or(peer)?;
            Some(InterfaceAddress {
                label: label.filter(|l| *l != interface),
                interface,
                address: IpPrefix {
                    address,
                    prefix_len: message.header.prefix_len,
                },
                broadcast,
            })
        })
        .collect())
}

/// The address message for `address` on interface `index`, without change-specific parts.
fn address_message(index: u32, address: IpPrefix) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.family = match address.address {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    message.header.prefix_len = address.prefix_len;
    message.header.index = index;
    message.header.scope = if address.address.is_loopback() {
        AddressScope::Host
    } else {
        AddressScope::Universe
    };
    message.attributes = vec![
        AddressAttribute::Local(address.address),
        AddressAttribute::Address(address.address),
    ];
    message
}

/// Adds an address; `Unchanged` when the interface already has it.
pub fn add_address(request: &AddressRequest) -> Result<AddressChange, NetlinkError> {
    let link = link_named(&request.interface)?;
    let mut message = address_message(link.index, request.address);
    if request.address.address.is_ipv4() {
        if let Some(IpAddr::V4(broadcast)) = request
            .broadcast
            .or_else(|| derived_broadcast(request.address))
        {
            message
                .attributes
                .push(AddressAttribute::Broadcast(broadcast));
        }
        if let Some(label) = &request.label {
            message
                .attributes
                .push(AddressAttribute::Label(label.clone()));
        }
    }
    let name = "address add";
    let mut socket = RouteSocket::open(name)?;
    match socket.exchange(
        name,
        RouteNetlinkMessage::NewAddress(message),
        NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
    ) {
        Ok(_) => Ok(AddressChange::Changed),
        Err(e) if e.refused_errno() == Some(libc::EEXIST) => Ok(AddressChange::Unchanged),
        Err(e) => Err(e),
    }
}

/// Removes an address; `Unchanged` when the interface does not have it (or does not exist,
/// which leaves nothing to remove either).
pub fn remove_address(interface: &str, address: IpPrefix) -> Result<AddressChange, NetlinkError> {
    let link = match link_named(interface) {
        Ok(link) => link,
        Err(NetlinkError::NoSuchInterface(_)) => return Ok(AddressChange::Unchanged),
        Err(e) => return Err(e),
    };
    let name = "address delete";
    let mut socket = RouteSocket::open(name)?;
    match socket.exchange(
        name,
        RouteNetlinkMessage::DelAddress(address_message(link.index, address)),
        NLM_F_ACK,
    ) {
        Ok(_) => Ok(AddressChange::Changed),
        Err(e)
            if matches!(
                e.refused_errno(),
                Some(libc::EADDRNOTAVAIL | libc::ENOENT | libc::ENODEV | libc::ESRCH)
            ) =>
        {
            Ok(AddressChange::Unchanged)
        }
        Err(e) => Err(e),
    }
}
