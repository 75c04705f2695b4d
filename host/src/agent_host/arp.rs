//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6), written as whole
//! Ethernet frames on an `AF_PACKET` raw socket, so switches and peers learn that an address
//! moved to this node's interface.
//!
//! Owns building the frames and sending them: for IPv4 an ARP request and an ARP reply per
//! announcement, as `arping -U` and `arping -A` send them (sender and target protocol
//! address both the announced address, sender hardware address the interface's); for IPv6
//! one neighbour advertisement with the override flag to all nodes. The first announcement
//! is sent before returning, the rest on a background thread that owns its socket and stops
//! as soon as the address is no longer on the interface (a node that gave the address away
//! must not keep pulling its traffic). It must not run `arping` or `send_arp`, and never
//! receives: the socket is opened for protocol 0.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::thread;
use std::time::Duration;

use thiserror::Error;

use super::netlink::Link;

/// The Ethernet broadcast address, where ARP announcements go.
const ETHERNET_BROADCAST: [u8; 6] = [0xff; 6];
/// The Ethernet multicast address of ff02::1 (all nodes), where advertisements go.
const ALL_NODES_ETHERNET: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
/// ff02::1.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;
const ICMPV6_NEXT_HEADER: u8 = 58;
const NEIGHBOUR_ADVERTISEMENT: u8 = 136;
/// The override flag: the advertised address now belongs to this link-layer address.
const NA_FLAG_OVERRIDE: u8 = 0x20;
/// The target link-layer address option.
const OPTION_TARGET_LINK_ADDRESS: u8 = 2;

/// An announcement could not be sent.
#[derive(Debug, Error)]
pub enum ArpError {
    /// The interface has no Ethernet address (loopback, a tunnel).
    #[error("{interface} has no Ethernet address to announce {address} from")]
    NoEthernetAddress { interface: String, address: IpAddr },
    /// The packet socket could not be opened (needs CAP_NET_RAW).
    #[error("cannot open a packet socket: {0}")]
    Socket(#[source] io::Error),
    /// Sending the first announcement failed (the interface is down, for instance).
    #[error("cannot send on {interface}: {source}")]
    Send {
        interface: String,
        #[source]
        source: io::Error,
    },
}

/// One frame to send and where to: its EtherType and destination for the socket address.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Frame {
    /// The EtherType, which the socket address must repeat.
    ethertype: u16,
    /// The destination hardware address, which the socket address must repeat.
    destination: [u8; 6],
    /// The whole Ethernet frame.
    bytes: Vec<u8>,
}

/// The frames of one announcement of `address` from `mac`.
fn announcement_frames(mac: [u8; 6], address: IpAddr) -> Vec<Frame> {
    match address {
        IpAddr::V4(ip) => vec![
            Frame {
                ethertype: ETHERTYPE_ARP,
                destination: ETHERNET_BROADCAST,
                bytes: arp_frame(mac, ip, ARP_REQUEST),
            },
            Frame {
                ethertype: ETHERTYPE_ARP,
                destination: ETHERNET_BROADCAST,
                bytes: arp_frame(mac, ip, ARP_REPLY),
            },
        ],
        IpAddr::V6(ip) => vec![Frame {
            ethertype: ETHERTYPE_IPV6,
            destination: ALL_NODES_ETHERNET,
            bytes: neighbour_advertisement_frame(mac, ip),
        }],
    }
}

/// An Ethernet frame with a gratuitous ARP: the request asks for its own address (target
/// hardware address broadcast, as `arping -U`), the reply answers it (target hardware
/// address our own, as `arping -A`).
fn arp_frame(mac: [u8; 6], ip: Ipv4Addr, operation: u16) -> Vec<u8> {
    let target_mac = if operation == ARP_REQUEST {
        ETHERNET_BROADCAST
    } else {
        mac
    };
    let mut frame = Vec::with_capacity(42);
    frame.extend_from_slice(&ETHERNET_BROADCAST);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    frame.extend_from_slice(&1u16.to_be_bytes()); // hardware type: Ethernet
    frame.extend_from_slice(&0x0800u16.to_be_bytes()); // protocol type: IPv4
    frame.push(6); // hardware address length
    frame.push(4); // protocol address length
    frame.extend_from_slice(&operation.to_be_bytes());
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&ip.octets());
    frame.extend_from_slice(&target_mac);
    frame.extend_from_slice(&ip.octets());
    frame
}

/// An Ethernet frame with an unsolicited neighbour advertisement for `ip` to all nodes
/// (RFC 4861 §7.2.6): override set, solicited clear, our address as the target link-layer
/// address option.
fn neighbour_advertisement_frame(mac: [u8; 6], ip: Ipv6Addr) -> Vec<u8> {
    let mut icmp = Vec::with_capacity(32);
    icmp.push(NEIGHBOUR_ADVERTISEMENT);
    icmp.push(0); // code
    icmp.extend_from_slice(&[0, 0]); // checksum, filled in below
    icmp.extend_from_slice(&[NA_FLAG_OVERRIDE, 0, 0, 0]);
    icmp.extend_from_slice(&ip.octets());
    icmp.push(OPTION_TARGET_LINK_ADDRESS);
    icmp.push(1); // option length in units of 8 bytes
    icmp.extend_from_slice(&mac);
    let length = u32::try_from(icmp.len()).unwrap_or(u32::MAX);
    let mut pseudo_header = Vec::with_capacity(40);
    pseudo_header.extend_from_slice(&ip.octets());
    pseudo_header.extend_from_slice(&ALL_NODES.octets());
    pseudo_header.extend_from_slice(&length.to_be_bytes());
    pseudo_header.extend_from_slice(&[0, 0, 0, ICMPV6_NEXT_HEADER]);
    let checksum = internet_checksum(&[&pseudo_header, &icmp]);
    icmp[2..4].copy_from_slice(&checksum.to_be_bytes());

    let mut frame = Vec::with_capacity(14 + 40 + icmp.len());
    frame.extend_from_slice(&ALL_NODES_ETHERNET);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    frame.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, no traffic class or flow label
    frame.extend_from_slice(&(length as u16).to_be_bytes());
    frame.push(ICMPV6_NEXT_HEADER);
    frame.push(255); // hop limit: receivers drop neighbour discovery with any other
    frame.extend_from_slice(&ip.octets());
    frame.extend_from_slice(&ALL_NODES.octets());
    frame.extend_from_slice(&icmp);
    frame
}

/// The Internet checksum (RFC 1071) over the concatenation of `parts`.
fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.concat();
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A packet socket bound to nothing, used only to send on one interface.
#[derive(Debug)]
struct PacketSender {
    /// An `AF_PACKET` raw socket of protocol 0: it sends and never receives.
    socket: OwnedFd,
    /// The interface's name, for logs.
    interface: String,
    /// The interface's index, where frames go.
    index: i32,
}

impl PacketSender {
    fn open(link: &Link) -> Result<Self, ArpError> {
        // SAFETY: socket(2) with constant arguments; the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(ArpError::Socket(io::Error::last_os_error()));
        }
        // SAFETY: fd is a fresh descriptor this function owns and hands to OwnedFd once.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(PacketSender {
            socket,
            interface: link.name.clone(),
            index: i32::try_from(link.index).unwrap_or(i32::MAX),
        })
    }

    fn send(&self, frame: &Frame) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut address: libc::sockaddr_ll = unsafe { mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = frame.ethertype.to_be();
        address.sll_ifindex = self.index;
        address.sll_halen = 6;
        address.sll_addr[..6].copy_from_slice(&frame.destination);
        // SAFETY: the buffer and the address are valid for the lengths given and outlive the
        // call; sendto(2) only reads them.
        let sent = unsafe {
            libc::sendto(
                self.socket.as_raw_fd(),
                frame.bytes.as_ptr().cast(),
                frame.bytes.len(),
                0,
                (&raw const address).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn send_all(&self, frames: &[Frame]) -> io::Result<()> {
        frames.iter().try_for_each(|frame| self.send(frame))
    }
}

/// Announces `address` on `link` `count` times, `interval` apart: the first announcement
/// before returning, the rest from a background thread, each only while the address is
/// still on the link.
pub fn announce(
    link: &Link,
    address: IpAddr,
    count: u32,
    interval: Duration,
) -> Result<(), ArpError> {
    if count == 0 {
        return Ok(());
    }
    let mac = link.mac.ok_or_else(|| ArpError::NoEthernetAddress {
        interface: link.name.clone(),
        address,
    })?;
    let frames = announcement_frames(mac, address);
    let sender = PacketSender::open(link)?;
    sender.send_all(&frames).map_err(|source| ArpError::Send {
        interface: link.name.clone(),
        source,
    })?;
    if count > 1 {
        let spawned = thread::Builder::new()
            .name(format!("garp-{}", link.name))
            .spawn(move || {
                for _ in 1..count {
                    thread::sleep(interval);
                    if !still_assigned(&sender.interface, address) {
                        tracing::debug!(
                            interface = %sender.interface,
                            %address,
                            "gratuitous ARP stopped: the address left the interface"
                        );
                        return;
                    }
                    if let Err(e) = sender.send_all(&frames) {
                        tracing::warn!(
                            interface = %sender.interface,
                            %address,
                            error = %e,
                            "gratuitous ARP stopped early"
                        );
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(%address, error = %e, "cannot start the gratuitous ARP thread; sent one");
        }
    }
    Ok(())
}

/// Whether `address` is still configured on `interface`. A failed lookup counts as yes: an
/// announcement too many is better than none when the address is there.
fn still_assigned(interface: &str, address: IpAddr) -> bool {
    match super::netlink::addresses() {
        Ok(addresses) => addresses
            .iter()
            .any(|a| a.interface == interface && a.address.address == address),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0x5e, 0x10, 0x20, 0x30];

    #[test]
    fn ipv4_announcement_is_a_request_and_a_reply_for_the_address_itself() {
        let frames = announcement_frames(MAC, "198.18.0.100".parse().unwrap());
        assert_eq!(frames.len(), 2);
        let request = &frames[0].bytes;
        assert_eq!(request.len(), 42);
        assert_eq!(&request[0..6], &ETHERNET_BROADCAST);
        assert_eq!(&request[6..12], &MAC);
        assert_eq!(&request[12..14], &[0x08, 0x06]);
        assert_eq!(&request[20..22], &[0, 1]);
        assert_eq!(&request[22..28], &MAC);
        assert_eq!(&request[28..32], &[198, 18, 0, 100]);
        assert_eq!(&request[32..38], &ETHERNET_BROADCAST);
        assert_eq!(&request[38..42], &[198, 18, 0, 100]);
        let reply = &frames[1].bytes;
        assert_eq!(&reply[20..22], &[0, 2]);
        assert_eq!(&reply[32..38], &MAC);
    }

    #[test]
    fn ipv6_announcement_is_a_checksummed_override_advertisement_to_all_nodes() {
        let ip: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let frames = announcement_frames(MAC, IpAddr::V6(ip));
        assert_eq!(frames.len(), 1);
        let frame = &frames[0].bytes;
        assert_eq!(frame.len(), 14 + 40 + 32);
        assert_eq!(&frame[0..6], &ALL_NODES_ETHERNET);
        assert_eq!(frame[20], ICMPV6_NEXT_HEADER);
        assert_eq!(frame[21], 255);
        let icmp = &frame[54..];
        assert_eq!(icmp[0], NEIGHBOUR_ADVERTISEMENT);
        assert_eq!(icmp[4], NA_FLAG_OVERRIDE);
        assert_eq!(&icmp[8..24], &ip.octets());
        assert_eq!(&icmp[26..32], &MAC);
        // A correct checksum makes the sum over pseudo-header and message come out as zero.
        let mut pseudo_header = Vec::new();
        pseudo_header.extend_from_slice(&frame[22..54]);
        pseudo_header.extend_from_slice(&32u32.to_be_bytes());
        pseudo_header.extend_from_slice(&[0, 0, 0, 58]);
        assert_eq!(internet_checksum(&[&pseudo_header, icmp]), 0);
    }

    #[test]
    fn internet_checksum_matches_rfc_1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&[&data]), !0xddf2);
    }

    #[test]
    fn interfaces_without_an_ethernet_address_are_refused() {
        let link = Link {
            index: 1,
            name: "lo".into(),
            mac: None,
        };
        let err = announce(&link, "127.0.0.2".parse().unwrap(), 1, Duration::ZERO).unwrap_err();
        assert_eq!(
            err.to_string(),
            "lo has no Ethernet address to announce 127.0.0.2 from"
        );
    }
}
