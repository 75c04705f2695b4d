//! The `ucast6` medium: UDP unicast over IPv6 to one peer, Heartbeat's `ucast6 <dev> <peer>`,
//! plus vigil's optional `bind=<local-ipv6>` as `ucast` has it.
//!
//! The peer is a numeric IPv6 address, as Heartbeat requires (it never resolves a name for
//! `ucast6`): not the unspecified address, loopback or a multicast group. A link-local peer
//! (`fe80::/10`) is reached through the line's device, whose index becomes its scope id; it
//! may carry the zone explicitly (`fe80::2%eth0` or `fe80::2%2`), which must then name that
//! device. Frames go to `[peer]:udpport` from an IPv6-only socket tied to the device when
//! the kernel allows it. The same lines serve on every node, so one of them names the node
//! itself: such a medium is valid and silent, as `ucast` is. The receive socket listens on
//! `[::]:udpport`, IPv6 only (so a `ucast` medium of the same node binds the same port for
//! IPv4), tied to the device, and shares the port with the node's other lines.
//!
//! `bind=<local-ipv6>` (vigil only) binds the receive socket to `[<bind>]:udpport` and the
//! send socket to `[<bind>]:0`, and then "our own address" means exactly the bind address.
//! Without it, our own addresses are the host's IPv6 addresses, a link-local one only on the
//! line's device. This module owns only its sockets; frames are the host's business.

use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

use vigil_plugin_api::{Medium, MediumError, MediumFactory, MediumSpec, PluginInfo};

use crate::udp::{self, InterfaceName, ReceiveSocket, UdpLink};

/// The zone written after a link-local peer's `%`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Zone {
    /// An interface index, checked against the device's index when the medium opens.
    Index(u32),
    /// An interface name, which must be the line's device.
    Device(InterfaceName),
}

/// A `ucast6` line, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ucast6Config {
    /// The interface the sockets are tied to and a link-local peer is reached through; also
    /// the link name.
    pub device: InterfaceName,
    /// The peer frames are sent to.
    pub peer: Ipv6Addr,
    /// The zone written after the peer, if any (only a link-local peer may have one).
    pub zone: Option<Zone>,
    /// The node's own address when several nodes share a host (`bind=`); `None` for
    /// Heartbeat's behaviour.
    pub bind: Option<Ipv6Addr>,
    /// The cluster's UDP port, where frames are sent and received.
    pub port: u16,
}

impl Ucast6Config {
    /// Parses `ucast6 <dev> <peer>[%<zone>] [bind=<local-ipv6>]`; the error names the line,
    /// the offending argument and what was expected.
    pub fn parse(spec: &MediumSpec) -> Result<Self, MediumError> {
        let bad = |reason: String| MediumError::bad_arguments(spec, reason);
        let (device, peer, bind) = match spec.args.as_slice() {
            [device, peer] => (device, peer, None),
            [device, peer, bind] => (device, peer, Some(bind)),
            _ => {
                return Err(bad(format!(
                    "expected `<dev> <peer> [bind=<local-ipv6>]` (such as \
                     `ucast6 eth0 fe80::2` or `ucast6 eth0 2001:2::2`), got {} arguments",
                    spec.args.len()
                )));
            }
        };
        let device = InterfaceName::parse(device).map_err(bad)?;
        let (peer, zone) = Self::parse_peer(peer, &device).map_err(bad)?;
        let bind = bind
            .map(|token| Self::parse_bind(token))
            .transpose()
            .map_err(bad)?;
        Ok(Self {
            device,
            peer,
            zone,
            bind,
            port: udp::cluster_port(spec)?,
        })
    }

    fn parse_peer(token: &str, device: &InterfaceName) -> Result<(Ipv6Addr, Option<Zone>), String> {
        let (address, zone) = match token.split_once('%') {
            Some((address, zone)) => (address, Some(zone)),
            None => (token, None),
        };
        let Ok(peer) = address.parse::<Ipv6Addr>() else {
            return Err(format!(
                "peer `{token}`: expected a numeric IPv6 address (such as 2001:2::2 or \
                 fe80::2); ucast6 does not resolve host names"
            ));
        };
        if peer.is_unspecified() || peer.is_loopback() || peer.is_multicast() {
            return Err(format!(
                "peer `{token}`: expected a unicast IPv6 address of another node (not ::, ::1 \
                 or a multicast group)"
            ));
        }
        if peer.to_ipv4_mapped().is_some() {
            return Err(format!(
                "peer `{token}`: an IPv4-mapped address; use `ucast {device} {}` for an IPv4 \
                 peer",
                peer.to_canonical()
            ));
        }
        let Some(zone) = zone else {
            return Ok((peer, None));
        };
        if !peer.is_unicast_link_local() {
            return Err(format!(
                "peer `{token}`: only a link-local address (fe80::/10) takes a zone"
            ));
        }
        let zone = if let Ok(index) = zone.parse::<u32>() {
            Zone::Index(index)
        } else if zone == device.as_str() {
            Zone::Device(device.clone())
        } else {
            return Err(format!(
                "peer `{token}`: the zone `{zone}` is not the line's interface `{device}`"
            ));
        };
        Ok((peer, Some(zone)))
    }

    fn parse_bind(token: &str) -> Result<Ipv6Addr, String> {
        let Some(value) = token.strip_prefix("bind=") else {
            return Err(format!(
                "`{token}`: expected `bind=<local-ipv6>` as the optional third argument"
            ));
        };
        value
            .parse::<Ipv6Addr>()
            .ok()
            .filter(|address| !(address.is_unspecified() || address.is_multicast()))
            .ok_or_else(|| format!("bind `{value}`: expected a unicast IPv6 address of this host"))
    }
}

/// The addresses that are this node, so a ucast6 line naming the node itself stays silent.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OwnAddresses {
    /// `bind=` was given: the node is exactly this address.
    Bound(Ipv6Addr),
    /// No `bind=`: the host's addresses with their interfaces, and the medium's device,
    /// since a link-local address is ours only on the interface that carries it.
    Host {
        addresses: Vec<(String, Ipv6Addr)>,
        device: String,
    },
}

impl OwnAddresses {
    /// Whether sending to `address` through the medium's device would reach this node.
    fn contains(&self, address: Ipv6Addr) -> bool {
        match self {
            OwnAddresses::Bound(bound) => *bound == address,
            OwnAddresses::Host { addresses, device } => {
                addresses.iter().any(|(interface, local)| {
                    *local == address && (!address.is_unicast_link_local() || interface == device)
                })
            }
        }
    }
}

impl Ucast6Config {
    /// Opens the link: looks up the device's index, checks the peer's zone against it,
    /// decides whether the peer is this node, and sets up both sockets.
    pub fn open(&self) -> io::Result<UdpLink> {
        let index = udp::interface_index(&self.device)?;
        if let Some(Zone::Index(zone)) = self.zone
            && zone != index
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the peer's zone {zone} is not the index of interface `{}` ({index})",
                    self.device
                ),
            ));
        }
        let scope_of = |address: Ipv6Addr| {
            if address.is_unicast_link_local() {
                index
            } else {
                0
            }
        };
        let own = match self.bind {
            Some(bound) => OwnAddresses::Bound(bound),
            None => OwnAddresses::Host {
                addresses: udp::local_ipv6_addresses()?,
                device: self.device.as_str().to_string(),
            },
        };
        let destination = (!own.contains(self.peer))
            .then(|| SocketAddrV6::new(self.peer, self.port, 0, scope_of(self.peer)));

        let sender = udp::ipv6_udp_send_socket()?;
        let send_binding = udp::bind_to_device(&sender, &self.device)?;
        if let Some(bound) = self.bind {
            let source = SocketAddrV6::new(bound, 0, 0, scope_of(bound));
            sender.bind(&source.into()).map_err(|err| {
                io::Error::new(err.kind(), format!("cannot bind UDP {source}: {err}"))
            })?;
        }

        let receive_socket = udp::ipv6_udp_socket()?;
        let receive_binding = udp::bind_to_device(&receive_socket, &self.device)?;
        let listen_address = self.bind.unwrap_or(Ipv6Addr::UNSPECIFIED);
        let listen = SocketAddrV6::new(listen_address, self.port, 0, scope_of(listen_address));
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

/// Creates `ucast6` media; registered under the directive name `ucast6`.
#[derive(Debug)]
pub struct Ucast6Factory {
    /// The plugin's identity as listed by `vigil plugins`.
    info: PluginInfo,
}

impl Default for Ucast6Factory {
    fn default() -> Self {
        Self {
            info: crate::built_in_medium("ucast6", "UDP/IPv6 unicast"),
        }
    }
}

impl MediumFactory for Ucast6Factory {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn check(&self, spec: &MediumSpec) -> Result<(), MediumError> {
        Ucast6Config::parse(spec).map(drop)
    }

    fn open(&self, spec: &MediumSpec) -> Result<Box<dyn Medium>, MediumError> {
        let config = Ucast6Config::parse(spec)?;
        let medium = config.open().map_err(|err| MediumError::open(spec, err))?;
        Ok(Box::new(medium))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ReservedPort, VethPair, spec};
    use std::net::{SocketAddr, UdpSocket};
    use std::sync::Arc;
    use std::thread;
    use vigil_plugin_api::PeerAddress;

    fn check_error(args: &str) -> String {
        Ucast6Factory::default()
            .check(&spec("ucast6", args, 694))
            .expect_err(args)
            .to_string()
    }

    fn open(args: &str, port: &ReservedPort) -> UdpLink {
        let config = Ucast6Config::parse(&spec("ucast6", args, port.port())).expect(args);
        config.open().expect(args)
    }

    fn recv_frame(medium: &dyn Medium) -> (Vec<u8>, PeerAddress) {
        let mut buf = [0u8; 256];
        let (len, from) = medium.recv(&mut buf).expect("recv");
        (buf.get(..len).expect("len fits buf").to_vec(), from)
    }

    fn from_ip(from: &PeerAddress) -> Option<Ipv6Addr> {
        match from {
            PeerAddress::Udp(SocketAddr::V6(address)) => Some(*address.ip()),
            _ => None,
        }
    }

    fn ip(text: &str) -> Ipv6Addr {
        text.parse().expect("valid IPv6 address in test")
    }

    #[test]
    fn ucast6_parses_heartbeats_line_zones_and_the_bind_extension() {
        let config = Ucast6Config::parse(&spec("ucast6", "eth0 fe80::2", 694)).expect("valid");
        assert_eq!(
            config,
            Ucast6Config {
                device: InterfaceName::parse("eth0").expect("valid"),
                peer: ip("fe80::2"),
                zone: None,
                bind: None,
                port: 694,
            }
        );
        let config = Ucast6Config::parse(&spec("ucast6", "eth1 fe80::2%eth1", 7)).expect("valid");
        assert_eq!(
            config.zone,
            Some(Zone::Device(InterfaceName::parse("eth1").expect("valid")))
        );
        let config = Ucast6Config::parse(&spec("ucast6", "eth1 fe80::2%3", 7)).expect("valid");
        assert_eq!(config.zone, Some(Zone::Index(3)));
        let config =
            Ucast6Config::parse(&spec("ucast6", "lo 2001:2::2 bind=::1", 7)).expect("valid");
        assert_eq!(
            (config.peer, config.bind),
            (ip("2001:2::2"), Some(Ipv6Addr::LOCALHOST))
        );
    }

    #[test]
    fn ucast6_takes_a_device_a_peer_and_an_optional_bind() {
        let expected = "expected `<dev> <peer> [bind=<local-ipv6>]` (such as \
                        `ucast6 eth0 fe80::2` or `ucast6 eth0 2001:2::2`), got";
        assert_eq!(
            check_error("eth0"),
            format!("ha.cf:7: `ucast6 eth0`: {expected} 1 arguments")
        );
        assert!(check_error("eth0 a b c").contains(&format!("{expected} 4 arguments")));
    }

    #[test]
    fn ucast6_names_each_malformed_argument_and_what_it_expected() {
        let cases = [
            (
                "eth0:1 fe80::2",
                "interface `eth0:1`: expected a device name",
            ),
            (
                "eth0 node2",
                "peer `node2`: expected a numeric IPv6 address (such as 2001:2::2 or \
                 fe80::2); ucast6 does not resolve host names",
            ),
            (
                "eth0 198.18.0.2",
                "peer `198.18.0.2`: expected a numeric IPv6",
            ),
            (
                "eth0 2001:2::g",
                "peer `2001:2::g`: expected a numeric IPv6",
            ),
            (
                "eth0 ::",
                "peer `::`: expected a unicast IPv6 address of another node",
            ),
            ("eth0 ::1", "peer `::1`: expected a unicast IPv6 address"),
            (
                "eth0 ff12::1",
                "peer `ff12::1`: expected a unicast IPv6 address",
            ),
            (
                "eth0 ::ffff:198.18.0.2",
                "peer `::ffff:198.18.0.2`: an IPv4-mapped address; use `ucast eth0 \
                 198.18.0.2` for an IPv4 peer",
            ),
            (
                "eth0 2001:2::2%eth0",
                "peer `2001:2::2%eth0`: only a link-local address (fe80::/10) takes a zone",
            ),
            (
                "eth0 fe80::2%eth1",
                "peer `fe80::2%eth1`: the zone `eth1` is not the line's interface `eth0`",
            ),
            (
                "eth0 fe80::2 ::1",
                "`::1`: expected `bind=<local-ipv6>` as the optional third argument",
            ),
            (
                "eth0 fe80::2 bind=198.18.0.1",
                "bind `198.18.0.1`: expected a unicast IPv6 address of this host",
            ),
            (
                "eth0 fe80::2 bind=::",
                "bind `::`: expected a unicast IPv6 address of this host",
            ),
        ];
        for (args, expected) in cases {
            let message = check_error(args);
            assert!(message.contains(expected), "{args}: {message}");
        }
    }

    #[test]
    fn ucast6_refuses_udp_port_zero() {
        let err = Ucast6Factory::default()
            .check(&spec("ucast6", "eth0 fe80::2", 0))
            .expect_err("port 0");
        assert!(
            err.to_string()
                .contains("udpport 0: expected a UDP port from 1 to 65535")
        );
    }

    #[test]
    fn own_addresses_are_the_bind_address_or_the_hosts_with_link_local_on_the_device() {
        let bound = OwnAddresses::Bound(ip("2001:2::1"));
        assert!(bound.contains(ip("2001:2::1")));
        assert!(
            !bound.contains(ip("2001:2::2")),
            "another node may share the host"
        );

        let host = OwnAddresses::Host {
            addresses: vec![
                ("eth0".into(), ip("fe80::1")),
                ("eth1".into(), ip("2001:2::1")),
                ("eth1".into(), ip("fe80::9")),
            ],
            device: "eth0".into(),
        };
        assert!(host.contains(ip("fe80::1")));
        assert!(
            host.contains(ip("2001:2::1")),
            "a global address is ours on any link"
        );
        assert!(
            !host.contains(ip("fe80::9")),
            "fe80::9 on eth0's link is another node"
        );
        assert!(!host.contains(ip("2001:2::2")));
    }

    #[test]
    fn ucast6_open_on_a_missing_interface_names_it() {
        let Err(err) = Ucast6Factory::default().open(&spec("ucast6", "vigil-absent0 fe80::2", 694))
        else {
            panic!("the interface does not exist");
        };
        assert_eq!(
            err.to_string(),
            "ha.cf:7: `ucast6 vigil-absent0 fe80::2`: cannot open: \
             no network interface named `vigil-absent0`"
        );
    }

    #[test]
    fn ucast6_open_refuses_a_zone_index_of_another_interface() {
        let port = ReservedPort::new();
        let lo = udp::interface_index(&InterfaceName::parse("lo").expect("valid")).expect("lo");
        let line = spec("ucast6", &format!("lo fe80::2%{}", lo + 1000), port.port());
        let Err(err) = Ucast6Factory::default().open(&line) else {
            panic!("the zone is not lo's index");
        };
        assert!(
            err.to_string().contains(&format!(
                "cannot open: the peer's zone {} is not the index of interface `lo` ({lo})",
                lo + 1000
            )),
            "{err}"
        );
    }

    #[test]
    fn ucast6_medium_bound_to_loopback_receives_on_its_address_and_port() {
        let port = ReservedPort::new();
        let medium = open("lo 2001:2::2 bind=::1", &port);
        assert_eq!(medium.link_name(), "lo");
        assert_eq!(
            medium.destination(),
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip("2001:2::2"),
                port.port(),
                0,
                0
            )))
        );
        let peer = UdpSocket::bind("[::1]:0").expect("IPv6 loopback socket");
        peer.send_to(b"from a peer", ("::1", port.port()))
            .expect("send to the medium");
        let (frame, from) = recv_frame(&medium);
        assert_eq!(frame, b"from a peer");
        assert_eq!(from, PeerAddress::Udp(peer.local_addr().expect("bound")));
    }

    #[test]
    fn ucast6_shutdown_unblocks_a_reader_blocked_in_recv() {
        let port = ReservedPort::new();
        let line = spec("ucast6", "lo 2001:2::2 bind=::1", port.port());
        let medium: Arc<dyn Medium> = Ucast6Factory::default().open(&line).expect("open").into();
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

    /// Needs root: the two links are the ends of a veth pair in a network namespace of
    /// their own, one address of 2001:2::/64 and one link-local address on each end. Both
    /// ends are one host, so global addresses need `bind=` to tell the "nodes" apart; the
    /// link-local round shows a link-local address is ours only on its own interface.
    #[test]
    fn ucast6_media_on_two_links_exchange_frames_over_global_and_link_local_addresses() {
        VethPair::run(|veth| {
            for (first_address, second_address, with_bind) in [
                (veth.first_address, veth.second_address, true),
                (veth.first_link_local, veth.second_link_local, false),
            ] {
                let port = ReservedPort::new();
                // The same two peer lines on both links, as every node of a cluster has them.
                let media: Vec<Vec<UdpLink>> =
                    [(veth.first, first_address), (veth.second, second_address)]
                        .into_iter()
                        .map(|(device, own)| {
                            [first_address, second_address]
                                .into_iter()
                                .map(|peer| {
                                    let bind = if with_bind {
                                        format!(" bind={own}")
                                    } else {
                                        String::new()
                                    };
                                    open(&format!("{device} {peer}{bind}"), &port)
                                })
                                .collect()
                        })
                        .collect();
                let [first, second] = media.as_slice() else {
                    panic!("two links");
                };
                // Each link is silent towards its own address and sends to the other.
                assert_eq!(first[0].destination(), None, "{first_address}");
                assert_eq!(second[1].destination(), None, "{second_address}");
                let to_second = &first[1];
                let to_first = &second[0];
                let scope = if second_address.is_unicast_link_local() {
                    udp::interface_index(&InterfaceName::parse(veth.first).expect("valid"))
                        .expect("veth index")
                } else {
                    0
                };
                assert_eq!(
                    to_second.destination(),
                    Some(SocketAddr::V6(SocketAddrV6::new(
                        second_address,
                        port.port(),
                        0,
                        scope
                    )))
                );

                to_second.send(b"first to second").expect("send");
                // Either of the second link's two sockets on the port may get the frame.
                let (frame, from) = recv_either(&second[0], &second[1]);
                assert_eq!(frame, b"first to second");
                assert_eq!(from_ip(&from), Some(first_address));

                to_first.send(b"second to first").expect("send");
                let (frame, from) = recv_either(&first[0], &first[1]);
                assert_eq!(frame, b"second to first");
                assert_eq!(from_ip(&from), Some(second_address));
            }
        });
    }

    /// The first frame either medium receives within 5 s.
    fn recv_either(one: &UdpLink, other: &UdpLink) -> (Vec<u8>, PeerAddress) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut buf = [0u8; 256];
        while std::time::Instant::now() < deadline {
            for medium in [one, other] {
                match medium.try_recv(&mut buf) {
                    Ok((len, from)) => {
                        return (buf.get(..len).expect("len fits buf").to_vec(), from);
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Err(err) => panic!("recv on {}: {err}", medium.link_name()),
                }
            }
            thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("no frame within 5 s");
    }
}
