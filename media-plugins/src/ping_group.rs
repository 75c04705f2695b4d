//! The `ping_group` medium: several hosts watched as one pseudo-node, alive while any of them
//! answers, Heartbeat's `ping_group <name> <host> …` (spec §1.13, §2.4).
//!
//! Each probe frame from the host (a signed `t=NS_st st=ping info=ping_group src=<name>`) goes
//! as one echo request, with one sequence number, to every member; a reply counts only when
//! it comes from a member, and only the first reply to each sequence number is given back, as
//! Heartbeat's slot window does, so two routers answering do not count twice.
//!
//! This module owns the group's addresses and that window; the ICMP socket is `ping`'s.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;
use std::sync::Mutex;

use vigil_plugin_api::{Medium, MediumError, MediumFactory, MediumSpec, PeerAddress, PluginInfo};

use crate::ping::{IcmpSocket, PingTarget};

/// How many recent sequence numbers are remembered to drop a second member's answer
/// (Heartbeat's `NSLOT`).
const SEQUENCE_WINDOW: usize = 128;

/// A `ping_group` line, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingGroupConfig {
    /// The group's name: the ping node's name and the link name.
    pub name: String,
    /// The members, in the order written.
    pub members: Vec<PingTarget>,
}

impl PingGroupConfig {
    /// Parses `ping_group <name> <host> [<host> …]`.
    pub fn parse(spec: &MediumSpec) -> Result<Self, MediumError> {
        let Some((name, hosts)) = spec.args.split_first() else {
            return Err(MediumError::bad_arguments(
                spec,
                "expected a group name and at least one host (ping_group <name> <host> …)",
            ));
        };
        if hosts.is_empty() {
            return Err(MediumError::bad_arguments(
                spec,
                format!("group `{name}` has no host (ping_group <name> <host> …)"),
            ));
        }
        let members = hosts
            .iter()
            .map(|host| PingTarget::parse(host).map_err(|e| MediumError::bad_arguments(spec, e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            name: name.clone(),
            members,
        })
    }
}

/// An open `ping_group` medium.
#[derive(Debug)]
pub struct PingGroupMedium {
    name: String,
    addresses: Vec<Ipv4Addr>,
    socket: IcmpSocket,
    /// The sequence numbers already answered, by `sequence % SEQUENCE_WINDOW`.
    answered: Mutex<[Option<u16>; SEQUENCE_WINDOW]>,
}

impl PingGroupMedium {
    /// Resolves every member and opens the ICMP socket.
    pub fn open(config: &PingGroupConfig) -> io::Result<Self> {
        let addresses = config
            .members
            .iter()
            .map(PingTarget::resolve)
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self {
            name: config.name.clone(),
            addresses,
            socket: IcmpSocket::open()?,
            answered: Mutex::new([None; SEQUENCE_WINDOW]),
        })
    }

    /// The members' addresses.
    pub fn addresses(&self) -> &[Ipv4Addr] {
        &self.addresses
    }

    /// Whether the reply numbered `sequence` from `from` is the first from a member.
    fn first_answer(&self, from: Ipv4Addr, sequence: u16) -> bool {
        if !self.addresses.contains(&from) {
            return false;
        }
        let mut answered = self
            .answered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = &mut answered[usize::from(sequence) % SEQUENCE_WINDOW];
        if *slot == Some(sequence) {
            return false;
        }
        *slot = Some(sequence);
        true
    }
}

impl Medium for PingGroupMedium {
    fn link_name(&self) -> &str {
        &self.name
    }

    /// One echo to every member with the same sequence number; the first failure is
    /// reported after all were tried, so one unreachable member does not silence the rest.
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.socket.send_echo_to_all(&self.addresses, frame)
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, PeerAddress)> {
        self.socket
            .recv(buf, |from, sequence| self.first_answer(from, sequence))
    }

    fn shutdown(&self) {
        self.socket.shutdown();
    }

    fn readiness_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.socket.fd())
    }

    fn try_recv(&self, buf: &mut [u8]) -> io::Result<(usize, PeerAddress)> {
        self.socket
            .try_recv(buf, |from, sequence| self.first_answer(from, sequence))
    }
}

/// Creates `ping_group` media.
pub struct PingGroupFactory {
    info: PluginInfo,
}

impl Default for PingGroupFactory {
    fn default() -> Self {
        Self {
            info: crate::built_in_medium("ping_group", "ping group membership"),
        }
    }
}

impl MediumFactory for PingGroupFactory {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn check(&self, spec: &MediumSpec) -> Result<(), MediumError> {
        PingGroupConfig::parse(spec).map(|_| ())
    }

    fn open(&self, spec: &MediumSpec) -> Result<Box<dyn Medium>, MediumError> {
        let config = PingGroupConfig::parse(spec)?;
        let medium = PingGroupMedium::open(&config).map_err(|e| MediumError::open(spec, e))?;
        Ok(Box::new(medium))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::test_support::spec;

    fn check_error(args: &str) -> String {
        PingGroupFactory::default()
            .check(&spec("ping_group", args, 694))
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn ping_group_takes_a_name_and_at_least_one_host() {
        let config = PingGroupConfig::parse(&spec("ping_group", "routers 198.18.0.254 gw", 694))
            .expect("valid");
        assert_eq!(config.name, "routers");
        assert_eq!(
            config.members,
            [
                PingTarget::Address(Ipv4Addr::new(198, 18, 0, 254)),
                PingTarget::HostName("gw".into())
            ]
        );
        assert_eq!(
            check_error(""),
            "ha.cf:7: `ping_group`: expected a group name and at least one host \
             (ping_group <name> <host> …)"
        );
        assert_eq!(
            check_error("routers"),
            "ha.cf:7: `ping_group routers`: group `routers` has no host \
             (ping_group <name> <host> …)"
        );
        assert!(check_error("routers 198.18.0.1 255.255.255.255").contains("cannot answer"));
    }

    /// Two loopback addresses answer the same probe: the group gives it back once.
    #[test]
    fn the_first_member_to_answer_counts_and_a_second_answer_is_dropped() {
        let config = PingGroupConfig::parse(&spec("ping_group", "lo 127.0.0.1 127.0.0.2", 694))
            .expect("valid");
        let medium = PingGroupMedium::open(&config).expect("root opens an ICMP socket");
        assert_eq!(medium.link_name(), "lo");
        let frame = b"###\n(0)t=NS_st\n%%%\n";
        medium.send(frame).expect("sent");
        let mut buf = vec![0u8; 65536];
        let mut deadline = Instant::now() + Duration::from_secs(5);
        let mut frames = 0;
        // After the first reply, half a second more for the second member's, which must not
        // come through.
        while Instant::now() < deadline {
            match medium.try_recv(&mut buf) {
                Ok((len, _)) => {
                    assert_eq!(&buf[..len], frame);
                    frames += 1;
                    deadline = Instant::now() + Duration::from_millis(500);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(err) => panic!("receive failed: {err}"),
            }
        }
        assert_eq!(frames, 1);
        assert!(
            !medium.first_answer(Ipv4Addr::new(127, 0, 0, 3), 99),
            "not a member"
        );
        assert!(medium.first_answer(Ipv4Addr::new(127, 0, 0, 1), 99));
        assert!(
            !medium.first_answer(Ipv4Addr::new(127, 0, 0, 2), 99),
            "same sequence"
        );
    }
}
