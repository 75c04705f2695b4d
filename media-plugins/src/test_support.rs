//! Shared fixtures for this crate's tests: medium specifications as the configuration layer
//! builds them, cluster ports no other test uses at the same time, and (for root) a veth pair
//! in a network namespace of its own. Test-only; nothing here touches a file or an interface
//! of the host's own namespace other than loopback.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::process::Command;
use std::thread;

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

/// Two ends of a veth pair in a fresh, anonymous network namespace, for media that cannot be
/// tested on loopback (IPv6 multicast does not leave through `lo`). Each end has an address
/// of the benchmarking range 2001:2::/48 and a fixed link-local address, both without
/// duplicate address detection, and no generated link-local address, so the source of every
/// frame is known.
pub(crate) struct VethPair {
    /// The first end's interface name.
    pub(crate) first: &'static str,
    /// The second end's interface name.
    pub(crate) second: &'static str,
    /// The first end's address, 2001:2::1.
    pub(crate) first_address: Ipv6Addr,
    /// The second end's address, 2001:2::2.
    pub(crate) second_address: Ipv6Addr,
    /// The first end's link-local address, fe80::1.
    pub(crate) first_link_local: Ipv6Addr,
    /// The second end's link-local address, fe80::2.
    pub(crate) second_link_local: Ipv6Addr,
}

impl VethPair {
    /// Runs `test` on a thread that has moved into a new network namespace holding the pair
    /// (and `lo`, up). The namespace has no name: it vanishes with the thread and its
    /// sockets, so nothing is left behind even when the test fails. Without root the test
    /// is skipped with a message, or fails when `VIGIL_REQUIRE_ROOT_TESTS=1`.
    pub(crate) fn run(test: impl FnOnce(&VethPair) + Send) {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            let required = std::env::var("VIGIL_REQUIRE_ROOT_TESTS").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "this test needs root (a network namespace with a veth pair)"
            );
            eprintln!("skipped: needs root (a network namespace with a veth pair)");
            return;
        }
        thread::scope(|scope| {
            let outcome = scope
                .spawn(move || {
                    // SAFETY: unshare only moves the calling thread, which exists for this
                    // test alone, into a new network namespace; children it spawns start
                    // there too.
                    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
                    assert_eq!(
                        rc,
                        0,
                        "unshare(CLONE_NEWNET) failed: {}",
                        std::io::Error::last_os_error()
                    );
                    let pair = VethPair {
                        first: "vg6a",
                        second: "vg6b",
                        first_address: Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1),
                        second_address: Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2),
                        first_link_local: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
                        second_link_local: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2),
                    };
                    pair.set_up();
                    test(&pair);
                })
                .join();
            if let Err(panic) = outcome {
                std::panic::resume_unwind(panic);
            }
        });
    }

    fn set_up(&self) {
        ip(&["link", "set", "dev", "lo", "up"]);
        ip(&[
            "link",
            "add",
            "name",
            self.first,
            "type",
            "veth",
            "peer",
            "name",
            self.second,
        ]);
        for (device, address, link_local) in [
            (self.first, self.first_address, self.first_link_local),
            (self.second, self.second_address, self.second_link_local),
        ] {
            ip(&["link", "set", "dev", device, "addrgenmode", "none"]);
            for cidr in [format!("{address}/64"), format!("{link_local}/64")] {
                ip(&["addr", "add", &cidr, "dev", device, "nodad"]);
            }
            ip(&["link", "set", "dev", device, "up"]);
        }
    }
}

/// Runs `ip args…` in the calling thread's network namespace, failing the test on error.
fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip {args:?}: {e}"));
    assert!(
        output.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
