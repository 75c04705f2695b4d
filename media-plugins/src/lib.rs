//! vigil's built-in communication media over UDP/IPv4 (`bcast`, `mcast` and `ucast`),
//! UDP/IPv6 (`mcast6` and `ucast6`), serial lines (`serial`) and ICMP echo (`ping` and
//! `ping_group`), the links of Heartbeat 3.0.6 clusters, with the same configuration lines
//! and the same bytes on the wire.
//!
//! A medium moves opaque frames. It never parses, signs or verifies them (the host's `wire`
//! module does), never decides anything about membership and never logs; what an operator
//! should hear about is returned to the host.
//!
//! Modules, each in the same order (typed configuration parsed from the directive's
//! arguments, the medium, its `Medium` impl, its `MediumFactory`, tests):
//! - [`bcast`]: broadcast on one interface to the cluster's UDP port.
//! - [`mcast`]: an IPv4 multicast group on one interface, with its own port.
//! - [`mcast6`]: an IPv6 multicast group on one interface, with its own port.
//! - [`ucast`]: unicast to one peer; silent when the peer is this node.
//! - [`ucast6`]: IPv6 unicast to one peer; silent when the peer is this node.
//! - [`serial`]: a serial line (`serial <tty>`), framed and paced as Heartbeat does.
//! - [`ping`]: a host that answers ICMP echo, watched as a ping pseudo-node; also the ICMP
//!   socket shared with `ping_group`.
//! - [`ping_group`]: several such hosts as one pseudo-node, alive while any answers.
//! - `udp`: the one place for socket setup and interface lookups the UDP media share.

use std::sync::Arc;

use vigil_plugin_api::{MediumFactory, PluginInfo, PluginKind, PluginOrigin, Registry};

pub mod bcast;
pub mod mcast;
pub mod mcast6;
pub mod ping;
pub mod ping_group;
pub mod serial;
pub mod ucast;
pub mod ucast6;
mod udp;

#[cfg(test)]
mod test_support;

pub use udp::{DeviceBinding, InterfaceName};

/// Registers every built-in medium, so that `bcast`, `mcast`, `mcast6`, `ucast`, `ucast6`,
/// `serial`, `ping` and `ping_group` lines resolve.
pub fn register(registry: &mut Registry) {
    let media: [Arc<dyn MediumFactory>; 8] = [
        Arc::new(bcast::BcastFactory::default()),
        Arc::new(mcast::McastFactory::default()),
        Arc::new(mcast6::Mcast6Factory::default()),
        Arc::new(ucast::UcastFactory::default()),
        Arc::new(ucast6::Ucast6Factory::default()),
        Arc::new(serial::SerialFactory::default()),
        Arc::new(ping::PingFactory::default()),
        Arc::new(ping_group::PingGroupFactory::default()),
    ];
    for factory in media {
        registry
            .add_medium(factory)
            .expect("built-in media names are unique");
    }
}

/// The identity of a medium built into this crate, so every factory reports its origin and
/// version the same way.
fn built_in_medium(name: &str, description: &str) -> PluginInfo {
    PluginInfo {
        kind: PluginKind::Medium,
        name: name.to_string(),
        origin: PluginOrigin::BuiltIn,
        version: env!("CARGO_PKG_VERSION").to_string(),
        description: description.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_adds_the_udp_media_of_both_ip_versions_as_built_in_media() {
        let mut registry = Registry::new();
        register(&mut registry);
        let listed: Vec<(String, PluginKind, PluginOrigin, String)> = registry
            .list()
            .into_iter()
            .map(|info| (info.name, info.kind, info.origin, info.description))
            .collect();
        assert_eq!(
            listed,
            [
                ("bcast", "UDP/IP broadcast"),
                ("mcast", "UDP/IP multicast"),
                ("mcast6", "UDP/IPv6 multicast"),
                ("ping", "ping membership"),
                ("ping_group", "ping group membership"),
                ("serial", "serial ring"),
                ("ucast", "UDP/IP unicast"),
                ("ucast6", "UDP/IPv6 unicast"),
            ]
            .map(|(name, description)| (
                name.to_string(),
                PluginKind::Medium,
                PluginOrigin::BuiltIn,
                description.to_string()
            ))
        );
        for name in [
            "bcast",
            "mcast",
            "mcast6",
            "ucast",
            "ucast6",
            "serial",
            "ping",
            "ping_group",
        ] {
            let factory = registry.medium(name).expect("registered");
            assert_eq!(factory.info().version, env!("CARGO_PKG_VERSION"));
        }
    }
}
