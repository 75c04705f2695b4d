//! Shared fixtures for this crate's tests: medium specifications as the configuration layer
//! builds them, and cluster ports no other test uses at the same time. Test-only; nothing
//! here touches a file or an interface other than loopback.

use std::net::{Ipv4Addr, SocketAddrV4};

use vigil_plugin_api::MediumSpec;

use crate::udp::ipv4_udp_socket;

/// The specification of the line `kind args…` with cluster port `udp_port`, as the
/// configuration layer builds it (arguments split on whitespace).
pub(crate) fn spec(kind: &str, args: &str, udp_port: u16) -> MediumSpec {
    MediumSpec {
        kind: kind.to_string(),
        args: args.split_whitespace().map(str::to_string).collect(),
        udp_port,
        origin: "ha.cf:7".to_string(),
    }
}

/// A UDP port held for one test, so tests running in parallel (in this process or another)
/// never pick the same cluster port. The holding socket sits on 127.0.0.254 with
/// `SO_REUSEADDR`, where no medium under test binds, so it never receives their frames.
pub(crate) struct ReservedPort {
    /// Keeps the port out of the kernel's ephemeral choices until the test ends.
    holder: socket2::Socket,
}

impl ReservedPort {
    /// Reserves a port the kernel chooses.
    pub(crate) fn new() -> Self {
        let holder = ipv4_udp_socket().expect("test socket");
        holder.set_reuse_address(true).expect("SO_REUSEADDR");
        let address = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 254), 0);
        holder
            .bind(&address.into())
            .expect("bind a reservation port");
        Self { holder }
    }

    /// The reserved port number.
    pub(crate) fn port(&self) -> u16 {
        self.holder
            .local_addr()
            .ok()
            .and_then(|address| address.as_socket())
            .map(|address| address.port())
            .expect("a bound IPv4 socket has a port")
    }
}
