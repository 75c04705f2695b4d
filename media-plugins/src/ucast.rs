//! The `ucast` medium: UDP unicast to one peer, Heartbeat's `ucast <dev> <peer>`, plus
//! vigil's optional `bind=<local-ipv4>`.
//!
//! Frames go to `peer:udpport` with IP_TOS low-delay, from a socket tied to the device when
//! the kernel allows it. The same ucast lines serve on every node, so one of them names the
//! node itself: a medium whose peer is one of our own addresses is valid and silent (it
//! sends nothing, as Heartbeat 3.0.6 was observed to do). The receive socket listens on
//! `0.0.0.0:udpport`, tied to the device, and shares the port, so that two lines of one node
//! (`ucast eth0 A`, `ucast eth0 B`, two media with the same link name) and a `bcast` medium
//! can all bind it. A frame is then delivered to one of the sockets sharing the port; the
//! link name is the device either way.
//!
//! `bind=<local-ipv4>` (vigil only; Heartbeat refuses a third argument) lets several nodes
//! share one host, as the demo does with three nodes on 127.0.0.1, .2 and .3 and one port,
//! which wildcard binds cannot tell apart. With it the receive socket is bound to
//! `<bind>:udpport`, the send socket to `<bind>:0` so that frames leave from the node's own
//! address, and "our own address" means exactly the bind address. Without it, our own
//! addresses are every IPv4 address of the host and all of 127.0.0.0/8, which the kernel
//! delivers locally.
//!
//! A peer given by host name is resolved once, at open. This module owns only its sockets;
//! frames are the host's business.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};

use vigil_plugin_api::{Medium, MediumError, MediumFactory, MediumSpec, PluginInfo};

use crate::udp::{self, InterfaceName, ReceiveSocket, UdpLink};

/// Who a `ucast` line sends to, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UcastPeer {
    /// A literal IPv4 address.
    Address(Ipv4Addr),
    /// A host name, resolved to its first IPv4 address when the medium opens.
    HostName(String),
}

/// A `ucast` line, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UcastConfig {
    /// The interface the sockets are tied to; also the link name.
    pub device: InterfaceName,
    /// The peer frames are sent to.
    pub peer: UcastPeer,
    /// The node's own address when several nodes share a host (`bind=`); `None` for
    /// Heartbeat's behaviour.
    pub bind: Option<Ipv4Addr>,
    /// The cluster's UDP port, where frames are sent and received.
    pub port: u16,
}

impl UcastConfig {
    /// The longest host name DNS allows.
    const MAX_HOST_NAME_LEN: usize = 253;

    /// Parses `ucast <dev> <peer> [bind=<local-ipv4>]`; the error names the line, the
    /// offending argument and what was expected.
    pub fn parse(spec: &MediumSpec) -> Result<Self, MediumError> {
        let bad = |reason: String| MediumError::bad_arguments(spec, reason);
        let (device, peer, bind) = match spec.args.as_slice() {
            [device, peer] => (device, peer, None),
            [device, peer, bind] => (device, peer, Some(bind)),
            _ => {
                return Err(bad(format!(
                    "expected `<dev> <peer> [bind=<local-ipv4>]` (such as \
                     `ucast eth0 198.18.0.2`), got {} arguments",
                    spec.args.len()
                )));
            }
        };
        let device = InterfaceName::parse(device).map_err(bad)?;
        let peer = Self::parse_peer(peer).map_err(bad)?;
        let bind = bind
            .map(|token| Self::parse_bind(token))
            .transpose()
            .map_err(bad)?;
        Ok(Self {
            device,
            peer,
            bind,
            port: udp::cluster_port(spec)?,
        })
    }

    fn parse_peer(token: &str) -> Result<UcastPeer, String> {
        if let Ok(address) = token.parse::<Ipv4Addr>() {
            return if is_unicast(address) {
                Ok(UcastPeer::Address(address))
            } else {
                Err(format!(
                    "peer `{token}`: expected a unicast IPv4 address or a host name"
                ))
            };
        }
        let looks_numeric = token.chars().all(|c| c.is_ascii_digit() || c == '.');
        let host_name_chars = token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if token.is_empty()
            || looks_numeric
            || !host_name_chars
            || token.starts_with(['-', '.'])
            || token.len() > Self::MAX_HOST_NAME_LEN
        {
            return Err(format!(
                "peer `{token}`: expected an IPv4 address (such as 198.18.0.2) or a host name"
            ));
        }
        Ok(UcastPeer::HostName(token.to_string()))
    }

    fn parse_bind(token: &str) -> Result<Ipv4Addr, String> {
        let Some(value) = token.strip_prefix("bind=") else {
            return Err(format!(
                "`{token}`: expected `bind=<local-ipv4>` as the optional third argument"
            ));
        };
        value
            .parse::<Ipv4Addr>()
            .ok()
            .filter(|&address| is_unicast(address))
            .ok_or_else(|| format!("bind `{value}`: expected a unicast IPv4 address of this host"))
    }
}

/// Whether `address` names one host: not the wildcard, the limited broadcast or a group.
fn is_unicast(address: Ipv4Addr) -> bool {
    !(address.is_unspecified() || address.is_broadcast() || address.is_multicast())
}

/// The addresses that are this node, so a ucast line naming the node itself stays silent.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OwnAddresses {
    /// `bind=` was given: the node is exactly this address, and other addresses of the host
    /// may be other nodes.
    Bound(Ipv4Addr),
    /// No `bind=`: every address of the host, plus all of loopback.
    Host(Vec<Ipv4Addr>),
}

impl OwnAddresses {
    /// Whether sending to `address` would reach this node.
    fn contains(&self, address: Ipv4Addr) -> bool {
        match self {
            OwnAddresses::Bound(bound) => *bound == address,
            OwnAddresses::Host(local) => address.is_loopback() || local.contains(&address),
        }
    }
}

/// The first IPv4 address of `peer`; a host name is resolved through the system resolver.
fn resolve_peer(peer: &UcastPeer, port: u16) -> io::Result<Ipv4Addr> {
    let name = match peer {
        UcastPeer::Address(address) => return Ok(*address),
        UcastPeer::HostName(name) => name,
    };
    let candidates = (name.as_str(), port).to_socket_addrs().map_err(|err| {
        io::Error::new(err.kind(), format!("cannot resolve peer `{name}`: {err}"))
    })?;
    candidates
        .into_iter()
        .find_map(|candidate| match candidate {
            SocketAddr::V4(v4) => Some(*v4.ip()),
            SocketAddr::V6(_) => None,
        })
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("peer `{name}` has no IPv4 address"),
            )
        })
}

impl UcastConfig {
    /// Opens the link: resolves the peer, decides whether it is this node, and sets up both
    /// sockets.
    pub fn open(&self) -> io::Result<UdpLink> {
        let peer = resolve_peer(&self.peer, self.port)?;
        let own = match self.bind {
            Some(bound) => OwnAddresses::Bound(bound),
            None => OwnAddresses::Host(udp::local_ipv4_addresses()?),
        };
        let destination = (!own.contains(peer)).then(|| SocketAddrV4::new(peer, self.port));

        let sender = udp::ipv4_udp_send_socket()?;
        sender.set_tos_v4(u32::from(libc::IPTOS_LOWDELAY))?;
        let send_binding = udp::bind_to_device(&sender, &self.device)?;
        if let Some(bound) = self.bind {
            let source = SocketAddrV4::new(bound, 0);
            sender.bind(&source.into()).map_err(|err| {
                io::Error::new(err.kind(), format!("cannot bind UDP {source}: {err}"))
            })?;
        }

        let receive_socket = udp::ipv4_udp_socket()?;
        let receive_binding = udp::bind_to_device(&receive_socket, &self.device)?;
        let listen = SocketAddrV4::new(self.bind.unwrap_or(Ipv4Addr::UNSPECIFIED), self.port);
        let receiver = ReceiveSocket::bind(receive_socket, listen)?;

        Ok(UdpLink::new(
            self.device.clone(),
            sender.into(),
            destination.map(SocketAddr::from),
            receiver,
            Some(send_binding.and(receive_binding)),
        ))
    }
}

/// Creates `ucast` media; registered under the directive name `ucast`.
#[derive(Debug)]
pub struct UcastFactory {
    /// The plugin's identity as listed by `vigil plugins`.
    info: PluginInfo,
}

impl Default for UcastFactory {
    fn default() -> Self {
        Self {
            info: crate::built_in_medium("ucast", "UDP/IP unicast"),
        }
    }
}

impl MediumFactory for UcastFactory {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn check(&self, spec: &MediumSpec) -> Result<(), MediumError> {
        UcastConfig::parse(spec).map(drop)
    }

    fn open(&self, spec: &MediumSpec) -> Result<Box<dyn Medium>, MediumError> {
        let config = UcastConfig::parse(spec)?;
        let medium = config.open().map_err(|err| MediumError::open(spec, err))?;
        Ok(Box::new(medium))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ReservedPort, spec};
    use std::sync::Arc;
    use std::thread;
    use vigil_plugin_api::PeerAddress;

    const NODE1: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
    const NODE2: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

    fn check_error(args: &str) -> String {
        UcastFactory::default()
            .check(&spec("ucast", args, 694))
            .expect_err(args)
            .to_string()
    }

    fn open(args: &str, port: &ReservedPort) -> UdpLink {
        let config = UcastConfig::parse(&spec("ucast", args, port.port())).expect(args);
        config.open().expect(args)
    }

    fn recv_frame(medium: &dyn Medium) -> (Vec<u8>, PeerAddress) {
        let mut buf = [0u8; 256];
        let (len, from) = medium.recv(&mut buf).expect("recv");
        (buf.get(..len).expect("len fits buf").to_vec(), from)
    }

    fn from_ip(from: &PeerAddress) -> Option<Ipv4Addr> {
        match from {
            PeerAddress::Udp(SocketAddr::V4(address)) => Some(*address.ip()),
            _ => None,
        }
    }

    #[test]
    fn ucast_parses_heartbeats_line_and_the_bind_extension() {
        let config = UcastConfig::parse(&spec("ucast", "eth0 198.18.0.2", 694)).expect("valid");
        assert_eq!(
            config,
            UcastConfig {
                device: InterfaceName::parse("eth0").expect("valid"),
                peer: UcastPeer::Address(Ipv4Addr::new(198, 18, 0, 2)),
                bind: None,
                port: 694,
            }
        );
        let config = UcastConfig::parse(&spec("ucast", "lo node-2.example bind=127.0.0.3", 7))
            .expect("valid");
        assert_eq!(config.peer, UcastPeer::HostName("node-2.example".into()));
        assert_eq!(config.bind, Some(Ipv4Addr::new(127, 0, 0, 3)));
    }

    #[test]
    fn ucast_takes_a_device_a_peer_and_an_optional_bind() {
        let expected = "expected `<dev> <peer> [bind=<local-ipv4>]` (such as \
                        `ucast eth0 198.18.0.2`), got";
        assert_eq!(
            check_error("eth0"),
            format!("ha.cf:7: `ucast eth0`: {expected} 1 arguments")
        );
        assert!(check_error("eth0 a b c").contains(&format!("{expected} 4 arguments")));
    }

    #[test]
    fn ucast_names_each_malformed_argument_and_what_it_expected() {
        let cases = [
            (
                "eth0:1 198.18.0.2",
                "interface `eth0:1`: expected a device name",
            ),
            (
                "eth0 198.18.0.256",
                "peer `198.18.0.256`: expected an IPv4 address (such as 198.18.0.2) or a host name",
            ),
            ("eth0 fd00::2", "peer `fd00::2`: expected an IPv4 address"),
            ("eth0 -node2", "peer `-node2`: expected an IPv4 address"),
            (
                "eth0 225.0.0.1",
                "peer `225.0.0.1`: expected a unicast IPv4 address or a host name",
            ),
            (
                "eth0 0.0.0.0",
                "peer `0.0.0.0`: expected a unicast IPv4 address or a host name",
            ),
            (
                "eth0 198.18.0.2 127.0.0.1",
                "`127.0.0.1`: expected `bind=<local-ipv4>` as the optional third argument",
            ),
            (
                "eth0 198.18.0.2 bind=node1",
                "bind `node1`: expected a unicast IPv4 address of this host",
            ),
            (
                "eth0 198.18.0.2 bind=0.0.0.0",
                "bind `0.0.0.0`: expected a unicast IPv4 address of this host",
            ),
        ];
        for (args, expected) in cases {
            let message = check_error(args);
            assert!(message.contains(expected), "{args}: {message}");
        }
    }

    #[test]
    fn ucast_refuses_udp_port_zero() {
        let err = UcastFactory::default()
            .check(&spec("ucast", "eth0 198.18.0.2", 0))
            .expect_err("port 0");
        assert!(
            err.to_string()
                .contains("udpport 0: expected a UDP port from 1 to 65535")
        );
    }

    #[test]
    fn own_addresses_are_the_bind_address_or_every_host_address() {
        let bound = OwnAddresses::Bound(NODE2);
        assert!(bound.contains(NODE2));
        assert!(!bound.contains(NODE1), "another node may share the host");

        let host = OwnAddresses::Host(vec![Ipv4Addr::new(198, 18, 0, 1), NODE1]);
        assert!(host.contains(Ipv4Addr::new(198, 18, 0, 1)));
        assert!(
            host.contains(Ipv4Addr::new(127, 0, 1, 1)),
            "loopback is always local"
        );
        assert!(!host.contains(Ipv4Addr::new(198, 18, 0, 2)));
    }

    #[test]
    fn ucast_media_bound_to_two_loopback_addresses_exchange_frames_both_ways() {
        let port = ReservedPort::new();
        let node1 = open("lo 127.0.0.2 bind=127.0.0.1", &port);
        let node2 = open("lo 127.0.0.1 bind=127.0.0.2", &port);
        assert_eq!(node1.link_name(), "lo");

        node1.send(b"node1 to node2").expect("send");
        let (frame, from) = recv_frame(&node2);
        assert_eq!(frame, b"node1 to node2");
        assert_eq!(from_ip(&from), Some(NODE1), "sent from the bind address");

        node2.send(b"node2 to node1").expect("send");
        let (frame, from) = recv_frame(&node1);
        assert_eq!(frame, b"node2 to node1");
        assert_eq!(from_ip(&from), Some(NODE2));
    }

    #[test]
    fn ucast_medium_whose_peer_is_its_bind_address_sends_nothing() {
        let port = ReservedPort::new();
        let own_line = open("lo 127.0.0.1 bind=127.0.0.1", &port);
        let other_node = open("lo 127.0.0.1 bind=127.0.0.2", &port);
        assert_eq!(own_line.destination(), None);

        own_line
            .send(b"must not be sent")
            .expect("a silent send succeeds");
        other_node.send(b"marker").expect("send");
        // Had the silent medium sent, its frame would have reached its own socket first.
        let (frame, from) = recv_frame(&own_line);
        assert_eq!(frame, b"marker");
        assert_eq!(from_ip(&from), Some(NODE2));
    }

    #[test]
    fn ucast_medium_without_bind_is_silent_towards_any_host_address() {
        let port = ReservedPort::new();
        let own_line = open("lo 127.0.0.1", &port);
        assert_eq!(own_line.destination(), None);
        assert_eq!(open("lo 127.0.1.1", &port).destination(), None);

        let other_node = open("lo 127.0.0.1 bind=127.0.0.2", &port);
        own_line
            .send(b"must not be sent")
            .expect("a silent send succeeds");
        other_node.send(b"marker").expect("send");
        let (frame, from) = recv_frame(&own_line);
        assert_eq!(frame, b"marker", "the wildcard socket hears other nodes");
        assert_eq!(from_ip(&from), Some(NODE2));
    }

    #[test]
    fn ucast_media_sharing_an_address_and_port_both_open() {
        let port = ReservedPort::new();
        // Two lines of one node, bound and wildcard, as `ucast eth0 A` + `ucast eth0 B`.
        let _first_bound = open("lo 127.0.0.5 bind=127.0.0.1", &port);
        let _second_bound = open("lo 127.0.0.6 bind=127.0.0.1", &port);
        let _first_wildcard = open("lo 198.18.0.2", &port);
        let _second_wildcard = open("lo 198.18.0.3", &port);
    }

    #[test]
    fn ucast_resolves_a_peer_host_name_at_open() {
        let port = ReservedPort::new();
        let node2 = open("lo localhost bind=127.0.0.2", &port);
        assert_eq!(
            node2.destination(),
            Some(SocketAddr::V4(SocketAddrV4::new(NODE1, port.port())))
        );
    }

    #[test]
    fn ucast_open_with_a_bind_address_of_another_host_fails_naming_it() {
        let port = ReservedPort::new();
        let line = spec("ucast", "lo 127.0.0.1 bind=203.0.113.254", port.port());
        let Err(err) = UcastFactory::default().open(&line) else {
            panic!("203.0.113.254 is not an address of this host");
        };
        let message = err.to_string();
        assert!(
            message.contains("cannot open: cannot bind UDP 203.0.113.254:0"),
            "{message}"
        );
    }

    #[test]
    fn ucast_shutdown_unblocks_a_reader_blocked_in_recv() {
        let port = ReservedPort::new();
        let line = spec("ucast", "lo 127.0.0.2 bind=127.0.0.1", port.port());
        let medium: Arc<dyn Medium> = UcastFactory::default().open(&line).expect("open").into();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let reader = {
            let medium = Arc::clone(&medium);
            thread::spawn(move || {
                let mut buf = [0u8; 64];
                ready_tx.send(()).expect("main thread waits");
                medium.recv(&mut buf).map(|(len, _)| len)
            })
        };
        ready_rx.recv().expect("reader started");
        // Give the reader time to block in recv; the outcome is the same if it has not yet.
        thread::sleep(std::time::Duration::from_millis(100));
        medium.shutdown();
        let outcome = reader.join().expect("reader did not panic");
        assert!(
            outcome.is_err(),
            "recv after shutdown must fail: {outcome:?}"
        );
    }
}
