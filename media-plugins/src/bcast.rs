//! The `bcast` medium: UDP broadcast on one interface, Heartbeat's `bcast <if>`.
//!
//! ha.cf's `bcast eth0 eth1` is split by the configuration layer into one medium per
//! interface, so this plugin takes exactly one. Frames go to the interface's IPv4 broadcast
//! address on the cluster port (`udpport`) from a socket with `SO_BROADCAST` and
//! `SO_DONTROUTE`; the receive socket listens on `0.0.0.0:udpport` (a broadcast is not
//! delivered to a socket bound to the unicast address) and shares the port with the node's
//! other media. Both sockets are tied to the interface when the kernel allows it. The link
//! name is the interface. This module owns only its sockets; frames are the host's business.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use vigil_plugin_api::{Medium, MediumError, MediumFactory, MediumSpec, PluginInfo};

use crate::udp::{self, InterfaceName, OwnSender, ReceiveSocket, UdpLink};

/// A `bcast` line, checked: the one interface to broadcast on and the cluster port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BcastConfig {
    /// The interface whose broadcast address frames go to; also the link name.
    pub device: InterfaceName,
    /// The cluster's UDP port, where frames are sent and received.
    pub port: u16,
}

impl BcastConfig {
    /// Parses `bcast <if>`; the error names the line and what was expected.
    pub fn parse(spec: &MediumSpec) -> Result<Self, MediumError> {
        let [device] = spec.args.as_slice() else {
            return Err(MediumError::bad_arguments(
                spec,
                format!(
                    "expected exactly one interface (`bcast eth0`), got {} arguments",
                    spec.args.len()
                ),
            ));
        };
        let device = InterfaceName::parse(device)
            .map_err(|reason| MediumError::bad_arguments(spec, reason))?;
        Ok(Self {
            device,
            port: udp::cluster_port(spec)?,
        })
    }

    /// Opens the link: looks up the interface's broadcast address and sets up both sockets.
    pub fn open(&self) -> io::Result<UdpLink> {
        let broadcast = udp::interface_broadcast_address(&self.device)?;

        let sender = udp::ipv4_udp_send_socket()?;
        sender.set_broadcast(true)?;
        udp::set_dont_route(&sender)?;
        let send_binding = udp::bind_to_device(&sender, &self.device)?;

        let receive_socket = udp::ipv4_udp_socket()?;
        let receive_binding = udp::bind_to_device(&receive_socket, &self.device)?;
        let receiver = ReceiveSocket::bind(
            receive_socket,
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, self.port),
        )?
        .skip_frames_of(OwnSender::of(&sender)?);

        Ok(UdpLink::new(
            self.device.clone(),
            sender.into(),
            Some(SocketAddrV4::new(broadcast, self.port).into()),
            receiver,
            Some(send_binding.and(receive_binding)),
        ))
    }
}

/// Creates `bcast` media; registered under the directive name `bcast`.
#[derive(Debug)]
pub struct BcastFactory {
    /// The plugin's identity as listed by `vigil plugins`.
    info: PluginInfo,
}

impl Default for BcastFactory {
    fn default() -> Self {
        Self {
            info: crate::built_in_medium("bcast", "UDP/IP broadcast"),
        }
    }
}

impl MediumFactory for BcastFactory {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn check(&self, spec: &MediumSpec) -> Result<(), MediumError> {
        BcastConfig::parse(spec).map(drop)
    }

    fn open(&self, spec: &MediumSpec) -> Result<Box<dyn Medium>, MediumError> {
        let config = BcastConfig::parse(spec)?;
        let medium = config.open().map_err(|err| MediumError::open(spec, err))?;
        Ok(Box::new(medium))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::spec;

    fn check_error(args: &str, udp_port: u16) -> String {
        BcastFactory::default()
            .check(&spec("bcast", args, udp_port))
            .expect_err(args)
            .to_string()
    }

    #[test]
    fn bcast_takes_exactly_one_interface() {
        assert_eq!(
            check_error("", 694),
            "ha.cf:7: `bcast`: expected exactly one interface (`bcast eth0`), got 0 arguments"
        );
        assert_eq!(
            check_error("eth0 eth1", 694),
            "ha.cf:7: `bcast eth0 eth1`: expected exactly one interface (`bcast eth0`), \
             got 2 arguments"
        );
    }

    #[test]
    fn bcast_refuses_a_malformed_interface_name() {
        let message = check_error("eth0:1", 694);
        assert!(
            message.contains("interface `eth0:1`: expected a device name"),
            "{message}"
        );
    }

    #[test]
    fn bcast_refuses_udp_port_zero() {
        let message = check_error("eth0", 0);
        assert_eq!(
            message,
            "ha.cf:7: `bcast eth0`: udpport 0: expected a UDP port from 1 to 65535"
        );
    }

    #[test]
    fn bcast_check_accepts_an_interface_without_looking_it_up() {
        let line = spec("bcast", "vigil-absent0", 694);
        BcastFactory::default()
            .check(&line)
            .expect("check never touches the system");
        assert_eq!(
            BcastConfig::parse(&line).expect("valid"),
            BcastConfig {
                device: InterfaceName::parse("vigil-absent0").expect("valid"),
                port: 694,
            }
        );
    }

    #[test]
    fn bcast_open_on_an_interface_without_broadcast_names_it() {
        let Err(err) = BcastFactory::default().open(&spec("bcast", "lo", 694)) else {
            panic!("loopback has no broadcast address");
        };
        assert_eq!(
            err.to_string(),
            "ha.cf:7: `bcast lo`: cannot open: interface `lo` has no IPv4 broadcast address"
        );
    }

    #[test]
    fn bcast_open_on_a_missing_interface_names_it() {
        let Err(err) = BcastFactory::default().open(&spec("bcast", "vigil-absent0", 694)) else {
            panic!("the interface does not exist");
        };
        assert!(
            matches!(err, MediumError::Open { ref source, .. }
                if source.kind() == io::ErrorKind::NotFound),
            "{err}"
        );
    }
}
