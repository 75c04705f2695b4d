//! The `mcast6` medium: an IPv6 multicast group on one interface, Heartbeat's
//! `mcast6 <dev> <group> <port> <hops> <loop>`.
//!
//! All five arguments are required, and the port is the line's own, not `udpport`. The group
//! must be one Heartbeat accepts: a multicast address with no flag but "transient", of link
//! (`ff?2`), admin (`ff?4`), site (`ff?5`) or organization (`ff?8`) scope, and a group ID
//! other than 0, such as `ff12::1:2:3:4`. Frames go to `[group]:port` from an IPv6-only
//! socket whose multicast interface (IPV6_MULTICAST_IF) is the device's index, with the
//! configured hop limit and loopback; the receive socket is bound to `[group%dev]:port` (so
//! it hears only the group, and a link-scope group only on the device), tied to the device
//! when the kernel allows it, shares the port with other sockets of this host, and joins the
//! group on the device's index. The link name is the device. This module owns only its
//! sockets; frames are the host's business.

use std::io;
use std::net::{Ipv6Addr, SocketAddrV6};

use vigil_plugin_api::{Medium, MediumError, MediumFactory, MediumSpec, PluginInfo};

use crate::udp::{self, InterfaceName, OwnSender, ReceiveSocket, UdpLink};

/// A `mcast6` line, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mcast6Config {
    /// The interface that sends and joins the group; also the link name.
    pub device: InterfaceName,
    /// The IPv6 multicast group frames are sent to and received from.
    pub group: Ipv6Addr,
    /// The group's UDP port (the line's own, not `udpport`).
    pub port: u16,
    /// The hop limit of sent frames, 0 to 4 as Heartbeat allows: 1 stays on the link.
    pub hops: u8,
    /// Whether this host's other sockets in the group hear our frames (`loop 1`).
    pub loopback: bool,
}

impl Mcast6Config {
    /// The largest hop limit Heartbeat accepts; a heartbeat has no business beyond a few
    /// routers.
    const MAX_HOPS: u8 = 4;

    /// Parses `mcast6 <dev> <group> <port> <hops> <loop>`; the error names the line, the
    /// offending argument and what was expected.
    pub fn parse(spec: &MediumSpec) -> Result<Self, MediumError> {
        let bad = |reason: String| MediumError::bad_arguments(spec, reason);
        let [device, group, port, hops, loopback] = spec.args.as_slice() else {
            return Err(bad(format!(
                "expected `<dev> <group> <port> <hops> <loop>` (such as \
                 `mcast6 eth0 ff12::1:2:3:4 694 1 0`), got {} arguments",
                spec.args.len()
            )));
        };
        let device = InterfaceName::parse(device).map_err(bad)?;
        let group = parse_group(group).map_err(bad)?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|&port| port != 0)
            .ok_or_else(|| {
                bad(format!(
                    "port `{port}`: expected a UDP port from 1 to 65535"
                ))
            })?;
        let hops = hops
            .parse::<u8>()
            .ok()
            .filter(|&hops| hops <= Self::MAX_HOPS)
            .ok_or_else(|| {
                bad(format!(
                    "hops `{hops}`: expected a multicast hop limit from 0 to {}",
                    Self::MAX_HOPS
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
            hops,
            loopback,
        })
    }
}

/// Checks a group as Heartbeat's `is_valid_mcast6_addr` does (RFC 4291 §2.7), saying which
/// part is wrong.
fn parse_group(token: &str) -> Result<Ipv6Addr, String> {
    let group = token
        .parse::<Ipv6Addr>()
        .ok()
        .filter(Ipv6Addr::is_multicast)
        .ok_or_else(|| {
            format!(
                "group `{token}`: expected an IPv6 multicast address (ff00::/8, such as \
                 ff12::1:2:3:4)"
            )
        })?;
    let [_, flags_and_scope, group_id @ ..] = group.octets();
    if flags_and_scope & 0xe0 != 0 {
        return Err(format!(
            "group `{token}`: expected no flag but transient (`ff0?` or `ff1?`)"
        ));
    }
    let scope = flags_and_scope & 0x0f;
    if !matches!(scope, 0x2 | 0x4 | 0x5 | 0x8) {
        return Err(format!(
            "group `{token}`: scope {scope:x} does not suit heartbeats; expected link (2), \
             admin (4), site (5) or organization (8) scope"
        ));
    }
    if group_id.iter().all(|&byte| byte == 0) {
        return Err(format!("group `{token}`: group ID 0 is reserved"));
    }
    Ok(group)
}

impl Mcast6Config {
    /// Opens the link: looks up the device's index, sets up the sending socket and joins the
    /// group on the receiving one.
    pub fn open(&self) -> io::Result<UdpLink> {
        let index = udp::interface_index(&self.device)?;

        let sender = udp::ipv6_udp_send_socket()?;
        sender.set_multicast_if_v6(index)?;
        sender.set_multicast_hops_v6(u32::from(self.hops))?;
        sender.set_multicast_loop_v6(self.loopback)?;

        // The scope id ties a link-scope group to the device; the kernel ignores it for the
        // wider scopes, where IPV6_MULTICAST_IF and the membership choose the interface.
        let destination = SocketAddrV6::new(self.group, self.port, 0, index);
        let receive_socket = udp::ipv6_udp_socket()?;
        let device_binding = udp::bind_to_device(&receive_socket, &self.device)?;
        let receiver = ReceiveSocket::bind(receive_socket, destination)?
            .skip_frames_of(OwnSender::of(&sender)?);
        receiver.join_multicast_v6(self.group, index)?;

        Ok(UdpLink::new(
            self.device.clone(),
            sender.into(),
            Some(destination.into()),
            receiver,
            Some(device_binding),
        ))
    }
}

/// Creates `mcast6` media; registered under the directive name `mcast6`.
#[derive(Debug)]
pub struct Mcast6Factory {
    /// The plugin's identity as listed by `vigil plugins`.
    info: PluginInfo,
}

impl Default for Mcast6Factory {
    fn default() -> Self {
        Self {
            info: crate::built_in_medium("mcast6", "UDP/IPv6 multicast"),
        }
    }
}

impl MediumFactory for Mcast6Factory {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn check(&self, spec: &MediumSpec) -> Result<(), MediumError> {
        Mcast6Config::parse(spec).map(drop)
    }

    fn open(&self, spec: &MediumSpec) -> Result<Box<dyn Medium>, MediumError> {
        let config = Mcast6Config::parse(spec)?;
        let medium = config.open().map_err(|err| MediumError::open(spec, err))?;
        Ok(Box::new(medium))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ReservedPort, VethPair, spec};
    use std::net::SocketAddr;
    use vigil_plugin_api::PeerAddress;

    fn check_error(args: &str) -> String {
        Mcast6Factory::default()
            .check(&spec("mcast6", args, 694))
            .expect_err(args)
            .to_string()
    }

    #[test]
    fn mcast6_parses_heartbeats_example_line() {
        let config =
            Mcast6Config::parse(&spec("mcast6", "eth0 ff12::1:2:3:4 694 1 0", 1)).expect("valid");
        assert_eq!(
            config,
            Mcast6Config {
                device: InterfaceName::parse("eth0").expect("valid"),
                group: Ipv6Addr::new(0xff12, 0, 0, 0, 1, 2, 3, 4),
                port: 694,
                hops: 1,
                loopback: false,
            }
        );
    }

    #[test]
    fn mcast6_port_comes_from_the_line_and_every_heartbeat_scope_is_accepted() {
        let config =
            Mcast6Config::parse(&spec("mcast6", "eth1 ff05::94 7000 4 1", 694)).expect("valid");
        assert_eq!((config.port, config.hops, config.loopback), (7000, 4, true));
        for group in ["ff02::1:2", "ff04::9", "ff15::7", "ff18::abcd"] {
            let line = format!("eth0 {group} 694 0 0");
            assert!(
                Mcast6Config::parse(&spec("mcast6", &line, 694)).is_ok(),
                "{line}"
            );
        }
    }

    #[test]
    fn mcast6_requires_all_five_arguments() {
        assert_eq!(
            check_error("eth0 ff12::1:2:3:4 694 1"),
            "ha.cf:7: `mcast6 eth0 ff12::1:2:3:4 694 1`: expected `<dev> <group> <port> \
             <hops> <loop>` (such as `mcast6 eth0 ff12::1:2:3:4 694 1 0`), got 4 arguments"
        );
        assert!(check_error("eth0 ff12::1 694 1 0 extra").contains("got 6 arguments"));
    }

    #[test]
    fn mcast6_names_each_malformed_argument_and_what_it_expected() {
        let cases = [
            (
                "eth0:1 ff12::1 694 1 0",
                "interface `eth0:1`: expected a device name",
            ),
            (
                "eth0 225.0.0.1 694 1 0",
                "group `225.0.0.1`: expected an IPv6 multicast address (ff00::/8",
            ),
            (
                "eth0 2001:2::1 694 1 0",
                "group `2001:2::1`: expected an IPv6 multicast address",
            ),
            (
                "eth0 ff32::1 694 1 0",
                "group `ff32::1`: expected no flag but transient",
            ),
            (
                "eth0 ff11::1 694 1 0",
                "group `ff11::1`: scope 1 does not suit heartbeats; expected link (2), admin \
                 (4), site (5) or organization (8) scope",
            ),
            (
                "eth0 ff0e::1 694 1 0",
                "group `ff0e::1`: scope e does not suit heartbeats",
            ),
            (
                "eth0 ff12:: 694 1 0",
                "group `ff12::`: group ID 0 is reserved",
            ),
            (
                "eth0 ff12::1 0 1 0",
                "port `0`: expected a UDP port from 1 to 65535",
            ),
            (
                "eth0 ff12::1 65536 1 0",
                "port `65536`: expected a UDP port from 1 to 65535",
            ),
            (
                "eth0 ff12::1 694 5 0",
                "hops `5`: expected a multicast hop limit from 0 to 4",
            ),
            (
                "eth0 ff12::1 694 -1 0",
                "hops `-1`: expected a multicast hop limit from 0 to 4",
            ),
            ("eth0 ff12::1 694 1 2", "loop `2`: expected 0 or 1"),
        ];
        for (args, expected) in cases {
            let message = check_error(args);
            assert!(message.contains(expected), "{args}: {message}");
        }
    }

    #[test]
    fn mcast6_open_on_a_missing_interface_names_it() {
        let Err(err) =
            Mcast6Factory::default().open(&spec("mcast6", "vigil-absent0 ff12::94 694 1 0", 694))
        else {
            panic!("the interface does not exist");
        };
        assert_eq!(
            err.to_string(),
            "ha.cf:7: `mcast6 vigil-absent0 ff12::94 694 1 0`: cannot open: \
             no network interface named `vigil-absent0`"
        );
    }

    fn from_ip(from: &PeerAddress) -> Option<Ipv6Addr> {
        match from {
            PeerAddress::Udp(SocketAddr::V6(address)) => Some(*address.ip()),
            _ => None,
        }
    }

    /// Needs root: IPv6 multicast does not leave through loopback, so the two media sit on
    /// the ends of a veth pair in a network namespace of their own.
    #[test]
    fn mcast6_media_on_two_links_hear_each_other_and_skip_their_own_frames() {
        VethPair::run(|veth| {
            let port = ReservedPort::new();
            let factory = Mcast6Factory::default();
            let line = |device: &str| format!("{device} ff12::94:1 {} 1 1", port.port());
            let first = factory
                .open(&spec("mcast6", &line(veth.first), 1))
                .expect("open first");
            let second = factory
                .open(&spec("mcast6", &line(veth.second), 1))
                .expect("open second");
            assert_eq!(first.link_name(), veth.first);

            first.send(b"from first").expect("send");
            let mut buf = [0u8; 64];
            let (len, from) = second.recv(&mut buf).expect("second hears first");
            assert_eq!(buf.get(..len), Some(&b"from first"[..]));
            assert_eq!(from_ip(&from), Some(veth.first_link_local), "{from}");

            // With loop 1 the sender's own receive socket gets the frame back too, but a
            // medium skips its own frames (the host loops its messages back itself).
            second.send(b"from second").expect("send");
            let (len, from) = first.recv(&mut buf).expect("first hears second");
            assert_eq!(buf.get(..len), Some(&b"from second"[..]));
            assert_eq!(from_ip(&from), Some(veth.second_link_local), "{from}");
            for medium in [&first, &second] {
                let skipped = medium.try_recv(&mut buf);
                assert!(
                    matches!(&skipped, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
                    "{} got its own frame back: {skipped:?}",
                    medium.link_name()
                );
            }
        });
    }

    #[test]
    fn mcast6_medium_hears_only_its_group_on_its_port() {
        VethPair::run(|veth| {
            let port = ReservedPort::new();
            let open = |device: &str, group: &str| {
                let line = format!("{device} {group} {} 1 0", port.port());
                Mcast6Factory::default()
                    .open(&spec("mcast6", &line, 1))
                    .expect(&line)
            };
            // Both groups are joined on the second link, so frames of either reach it.
            let listener = open(veth.second, "ff12::94:2");
            let other_listener = open(veth.second, "ff12::94:3");
            open(veth.first, "ff12::94:3")
                .send(b"other group")
                .expect("send");
            open(veth.first, "ff12::94:2")
                .send(b"our group")
                .expect("send");

            let mut buf = [0u8; 64];
            let (len, _) = other_listener.recv(&mut buf).expect("the other group");
            assert_eq!(buf.get(..len), Some(&b"other group"[..]));
            let (len, _) = listener.recv(&mut buf).expect("listener hears its group");
            assert_eq!(buf.get(..len), Some(&b"our group"[..]));
            let nothing_else = listener.try_recv(&mut buf);
            assert!(
                matches!(&nothing_else, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
                "{nothing_else:?}"
            );
        });
    }
}
