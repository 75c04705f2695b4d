//! The `mcast` medium: an IPv4 multicast group on one interface, Heartbeat's
//! `mcast <dev> <group> <port> <ttl> <loop>`.
//!
//! All five arguments are required, and the port is the line's own, not `udpport`. Frames go
//! to `group:port` from a socket whose multicast interface is the device's IPv4 address, with
//! the configured TTL and loopback; the receive socket is bound to `group:port` (so it hears
//! only the group), shares the port with other sockets of this host, and joins the group on
//! the device's address. The link name is the device. This module owns only its sockets;
//! frames are the host's business.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use vigil_plugin_api::{Medium, MediumError, MediumFactory, MediumSpec, PluginInfo};

use crate::udp::{self, InterfaceName, OwnSender, ReceiveSocket, UdpLink};

/// A `mcast` line, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McastConfig {
    /// The interface whose IPv4 address sends and joins the group; also the link name.
    pub device: InterfaceName,
    /// The IPv4 multicast group frames are sent to and received from.
    pub group: Ipv4Addr,
    /// The group's UDP port (the line's own, not `udpport`).
    pub port: u16,
    /// The IP TTL of sent frames, 0 to 4 as Heartbeat allows: 1 stays on the local network.
    pub ttl: u8,
    /// Whether this host's other sockets in the group hear our frames (`loop 1`).
    pub loopback: bool,
}

impl McastConfig {
    /// The largest TTL Heartbeat accepts; a heartbeat has no business beyond a few routers.
    const MAX_TTL: u8 = 4;

    /// Parses `mcast <dev> <group> <port> <ttl> <loop>`; the error names the line, the
    /// offending argument and what was expected.
    pub fn parse(spec: &MediumSpec) -> Result<Self, MediumError> {
        let bad = |reason: String| MediumError::bad_arguments(spec, reason);
        let [device, group, port, ttl, loopback] = spec.args.as_slice() else {
            return Err(bad(format!(
                "expected `<dev> <group> <port> <ttl> <loop>` (such as \
                 `mcast eth0 225.0.0.1 694 1 0`), got {} arguments",
                spec.args.len()
            )));
        };
        let device = InterfaceName::parse(device).map_err(bad)?;
        let group = group
            .parse::<Ipv4Addr>()
            .ok()
            .filter(Ipv4Addr::is_multicast)
            .ok_or_else(|| {
                bad(format!(
                    "group `{group}`: expected an IPv4 multicast address \
                     (224.0.0.0 to 239.255.255.255)"
                ))
            })?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|&port| port != 0)
            .ok_or_else(|| {
                bad(format!(
                    "port `{port}`: expected a UDP port from 1 to 65535"
                ))
            })?;
        let ttl = ttl
            .parse::<u8>()
            .ok()
            .filter(|&ttl| ttl <= Self::MAX_TTL)
            .ok_or_else(|| {
                bad(format!(
                    "ttl `{ttl}`: expected a multicast TTL from 0 to {}",
                    Self::MAX_TTL
                ))
            })?;
        let loopback = match loopback.as_str() {
            "0" => false,
            "1" => true,
            other => return Err(bad(format!("loop `{other}`: expected 0 or 1"))),
        };
        Ok(Self {
            device,
            group,
            port,
            ttl,
            loopback,
        })
    }

    /// Opens the link: looks up the device's IPv4 address, sets up the sending socket and
    /// joins the group on the receiving one.
    pub fn open(&self) -> io::Result<UdpLink> {
        let interface = udp::interface_ipv4_address(&self.device)?;

        let sender = udp::ipv4_udp_send_socket()?;
        sender.set_multicast_if_v4(&interface)?;
        sender.set_multicast_ttl_v4(u32::from(self.ttl))?;
        sender.set_multicast_loop_v4(self.loopback)?;

        let destination = SocketAddrV4::new(self.group, self.port);
        let receiver = ReceiveSocket::bind(udp::ipv4_udp_socket()?, destination)?
            .skip_frames_of(OwnSender::of(&sender)?);
        receiver.join_multicast(self.group, interface)?;

        Ok(UdpLink::new(
            self.device.clone(),
            sender.into(),
            Some(destination.into()),
            receiver,
            None,
        ))
    }
}

/// Creates `mcast` media; registered under the directive name `mcast`.
#[derive(Debug)]
pub struct McastFactory {
    /// The plugin's identity as listed by `vigil plugins`.
    info: PluginInfo,
}

impl Default for McastFactory {
    fn default() -> Self {
        Self {
            info: crate::built_in_medium("mcast", "UDP/IP multicast"),
        }
    }
}

impl MediumFactory for McastFactory {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn check(&self, spec: &MediumSpec) -> Result<(), MediumError> {
        McastConfig::parse(spec).map(drop)
    }

    fn open(&self, spec: &MediumSpec) -> Result<Box<dyn Medium>, MediumError> {
        let config = McastConfig::parse(spec)?;
        let medium = config.open().map_err(|err| MediumError::open(spec, err))?;
        Ok(Box::new(medium))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ReservedPort, spec};
    use vigil_plugin_api::PeerAddress;

    fn check_error(args: &str) -> String {
        McastFactory::default()
            .check(&spec("mcast", args, 694))
            .expect_err(args)
            .to_string()
    }

    #[test]
    fn mcast_parses_heartbeats_example_line() {
        let config =
            McastConfig::parse(&spec("mcast", "eth0 225.0.0.1 694 1 0", 1)).expect("valid");
        assert_eq!(
            config,
            McastConfig {
                device: InterfaceName::parse("eth0").expect("valid"),
                group: Ipv4Addr::new(225, 0, 0, 1),
                port: 694,
                ttl: 1,
                loopback: false,
            }
        );
    }

    #[test]
    fn mcast_port_comes_from_the_line_not_from_udpport() {
        let config =
            McastConfig::parse(&spec("mcast", "eth0 239.1.2.3 7000 0 1", 694)).expect("valid");
        assert_eq!((config.port, config.ttl, config.loopback), (7000, 0, true));
    }

    #[test]
    fn mcast_requires_all_five_arguments() {
        assert_eq!(
            check_error("eth0 225.0.0.1 694 1"),
            "ha.cf:7: `mcast eth0 225.0.0.1 694 1`: expected `<dev> <group> <port> <ttl> \
             <loop>` (such as `mcast eth0 225.0.0.1 694 1 0`), got 4 arguments"
        );
        assert!(check_error("eth0 225.0.0.1 694 1 0 extra").contains("got 6 arguments"));
    }

    #[test]
    fn mcast_names_each_malformed_argument_and_what_it_expected() {
        let cases = [
            (
                "eth0:1 225.0.0.1 694 1 0",
                "interface `eth0:1`: expected a device name",
            ),
            (
                "eth0 198.18.0.1 694 1 0",
                "group `198.18.0.1`: expected an IPv4 multicast address",
            ),
            (
                "eth0 ff12::1 694 1 0",
                "group `ff12::1`: expected an IPv4 multicast address",
            ),
            (
                "eth0 225.0.0.1 0 1 0",
                "port `0`: expected a UDP port from 1 to 65535",
            ),
            (
                "eth0 225.0.0.1 65536 1 0",
                "port `65536`: expected a UDP port from 1 to 65535",
            ),
            (
                "eth0 225.0.0.1 694 5 0",
                "ttl `5`: expected a multicast TTL from 0 to 4",
            ),
            (
                "eth0 225.0.0.1 694 -1 0",
                "ttl `-1`: expected a multicast TTL from 0 to 4",
            ),
            ("eth0 225.0.0.1 694 1 yes", "loop `yes`: expected 0 or 1"),
        ];
        for (args, expected) in cases {
            let message = check_error(args);
            assert!(message.contains(expected), "{args}: {message}");
        }
    }

    #[test]
    fn mcast_open_on_a_missing_interface_names_it() {
        let Err(err) =
            McastFactory::default().open(&spec("mcast", "vigil-absent0 239.1.2.3 694 1 0", 694))
        else {
            panic!("the interface does not exist");
        };
        assert_eq!(
            err.to_string(),
            "ha.cf:7: `mcast vigil-absent0 239.1.2.3 694 1 0`: cannot open: \
             no network interface named `vigil-absent0`"
        );
    }

    #[test]
    fn mcast_media_on_loopback_hear_each_other_with_loop_enabled() {
        let port = ReservedPort::new();
        let line = format!("lo 239.255.77.1 {} 0 1", port.port());
        let factory = McastFactory::default();
        let first = factory.open(&spec("mcast", &line, 1)).expect("open first");
        let second = factory.open(&spec("mcast", &line, 1)).expect("open second");
        assert_eq!(first.link_name(), "lo");

        first.send(b"from first").expect("send");
        let mut buf = [0u8; 64];
        let (len, from) = second.recv(&mut buf).expect("second hears first");
        assert_eq!(buf.get(..len), Some(&b"from first"[..]));
        assert!(
            matches!(from, PeerAddress::Udp(address) if address.ip() == Ipv4Addr::LOCALHOST),
            "{from}"
        );
        // With loop 1 the group's traffic loops back to the sender's own receive socket
        // too, but a medium skips its own frames (the host loops its messages back itself).
        second.send(b"from second").expect("send");
        let (len, _) = first.recv(&mut buf).expect("first hears second");
        assert_eq!(buf.get(..len), Some(&b"from second"[..]));
        let skipped = first.try_recv(&mut buf);
        assert!(
            matches!(&skipped, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            "first got its own frame back: {skipped:?}"
        );
    }
}
