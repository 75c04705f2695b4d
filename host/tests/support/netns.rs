//! The network-namespace lab: nodes in their own network namespaces, joined by veth pairs to
//! a bridge that lives in a namespace of its own, so no test traffic can leave the machine.
//!
//! Owns creating and deleting the namespaces, links and addresses (with `ip`, which is fine
//! in tests; vigil's own code never runs `ip`), cutting and healing a node's links, and
//! running commands or opening sockets inside a node's namespace. It must not touch the
//! root namespace (no interface is ever created there), use a fixed namespace name, or use
//! addresses outside 198.18.0.0/15 (IPv6: 2001:2::/48 and fixed link-local addresses, only in
//! a lab made `with_ipv6`).
//!
//! Layout of a lab `L` with nodes 1 and 2 (and the optional second medium):
//!
//! ```text
//!  netns L-br:   br0 ── n1e0, n2e0        br1 ── n1e1, n2e1
//!                  │     │                  │     │
//!  netns L-n1:         eth0 198.18.X.1/24       eth1 198.19.X.1/24
//!  netns L-n2:         eth0 198.18.X.2/24       eth1 198.19.X.2/24
//! ```
//!
//! A lab made `with_ipv6` also gives each link the IPv6 twin of its IPv4 address
//! (`eth0` 2001:2:0:X::N/64, `eth1` 2001:2:1:X::N/64) and the link-local fe80::N/64, both
//! without duplicate address detection so they are usable at once.

use std::ffi::OsStr;
use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

use super::{
    ScratchDir, ipv6_twin, is_root, link_local_twin, run_checked, run_or_skip, signal_process,
    unique_token,
};

/// The interface name of a node's first medium, as Heartbeat's ha.cf names it.
pub const FIRST_LINK: &str = "eth0";
/// The interface name of a node's second medium.
pub const SECOND_LINK: &str = "eth1";

/// One lab: a bridge namespace and the node namespaces attached to it. Dropping it kills
/// whatever still runs in its namespaces and deletes them.
pub struct Lab {
    /// Prefix of every namespace name of this lab, unique per process and lab.
    id: String,
    /// The namespace holding the bridges.
    bridge_ns: String,
    /// Third octet of this lab's addresses, distinct between the labs of one process.
    lab_octet: u8,
    /// Whether nodes get the second medium (`eth1` on `br1`).
    second_medium: bool,
    /// Whether links also get IPv6 addresses (see the module documentation).
    ipv6: bool,
    /// Namespaces created so far, deleted on drop (nodes first, the bridge last).
    namespaces: Vec<String>,
    /// Files of this lab's nodes.
    scratch: ScratchDir,
}

/// A node's place in the lab: its namespace, addresses and working directory.
#[derive(Debug, Clone)]
pub struct NodeNet {
    /// The node's index in the lab: the last octet of its addresses.
    pub index: u8,
    /// The node's network namespace (a name under /run/netns).
    pub namespace: String,
    /// The address on `eth0`.
    pub address: Ipv4Addr,
    /// The address on `eth1`, when the lab has a second medium.
    pub second_address: Option<Ipv4Addr>,
    /// The IPv6 address on `eth0`, when the lab was made `with_ipv6`.
    pub ipv6_address: Option<Ipv6Addr>,
    /// The link-local address on `eth0`, when the lab was made `with_ipv6`.
    pub link_local: Option<Ipv6Addr>,
    /// A directory for this node's files (configuration, logs, sockets).
    pub dir: PathBuf,
}

impl Lab {
    /// A lab with one medium (`eth0` on every node), or `None` with a message when this
    /// process is not root (a failure instead when root tests are required).
    pub fn new(name_hint: &str) -> Option<Lab> {
        Lab::create(name_hint, false, false)
    }

    /// A lab whose nodes also have `eth1` on a second, separate bridge.
    pub fn with_second_medium(name_hint: &str) -> Option<Lab> {
        Lab::create(name_hint, true, false)
    }

    /// A lab with one medium whose links also have IPv6 addresses, for `mcast6` and
    /// `ucast6`.
    pub fn with_ipv6(name_hint: &str) -> Option<Lab> {
        Lab::create(name_hint, false, true)
    }

    fn create(name_hint: &str, second_medium: bool, ipv6: bool) -> Option<Lab> {
        if !run_or_skip(is_root(), "root (network namespaces, bridges, veth pairs)") {
            return None;
        }
        let (pid, counter) = unique_token();
        let hint: String = name_hint
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect();
        let id = format!("vg{pid}x{counter}{hint}");
        // Labs of one process never share a third octet until 250 labs ran.
        let lab_octet = (pid.wrapping_mul(7).wrapping_add(counter) % 250 + 1) as u8;
        let bridge_ns = format!("{id}-br");
        let mut lab = Lab {
            scratch: ScratchDir::new(&format!("vigil-lab-{pid}-{counter}")),
            id,
            bridge_ns: bridge_ns.clone(),
            lab_octet,
            second_medium,
            ipv6,
            namespaces: Vec::new(),
        };
        lab.add_namespace(&bridge_ns);
        let bridges: &[&str] = if second_medium {
            &["br0", "br1"]
        } else {
            &["br0"]
        };
        for bridge in bridges {
            lab.ip_in(
                &bridge_ns,
                &["link", "add", "name", bridge, "type", "bridge"],
            );
            lab.ip_in(
                &bridge_ns,
                &[
                    "link",
                    "set",
                    "dev",
                    bridge,
                    "type",
                    "bridge",
                    "stp_state",
                    "0",
                    "forward_delay",
                    "0",
                    "mcast_snooping",
                    "0",
                ],
            );
            lab.ip_in(&bridge_ns, &["link", "set", "dev", bridge, "up"]);
        }
        Some(lab)
    }

    /// The lab's directory; node directories are inside it.
    pub fn dir(&self) -> &Path {
        self.scratch.path()
    }

    /// Creates node `index` (1–254): its namespace with `lo` up, `eth0` at
    /// 198.18.X.index/24 joined to `br0`, and with a second medium `eth1` at
    /// 198.19.X.index/24 joined to `br1`.
    pub fn add_node(&mut self, index: u8) -> NodeNet {
        assert!(
            (1..=254).contains(&index),
            "node index {index} is not a host number"
        );
        let namespace = format!("{}-n{index}", self.id);
        self.add_namespace(&namespace);
        self.ip_in(&namespace, &["link", "set", "dev", "lo", "up"]);
        let address = Ipv4Addr::new(198, 18, self.lab_octet, index);
        self.attach(&namespace, index, FIRST_LINK, "br0", address);
        let second_address = self.second_medium.then(|| {
            let address = Ipv4Addr::new(198, 19, self.lab_octet, index);
            self.attach(&namespace, index, SECOND_LINK, "br1", address);
            address
        });
        let dir = self.dir().join(format!("n{index}"));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        NodeNet {
            index,
            namespace,
            address,
            second_address,
            ipv6_address: self.ipv6.then(|| ipv6_twin(address)),
            link_local: self.ipv6.then(|| link_local_twin(address)),
            dir,
        }
    }

    /// Detaches the node's `eth0` from its bridge: the node hears nothing and is heard by
    /// nobody on that medium, while its interface stays up.
    pub fn cut(&self, node: &NodeNet) {
        self.cut_link(node, FIRST_LINK);
    }

    /// Attaches the node's `eth0` to its bridge again.
    pub fn heal(&self, node: &NodeNet) {
        self.heal_link(node, FIRST_LINK);
    }

    /// Detaches one of the node's links (`eth0` or `eth1`) from its bridge.
    pub fn cut_link(&self, node: &NodeNet, link: &str) {
        let port = Self::port_name(node.index, link);
        self.ip_in(&self.bridge_ns, &["link", "set", "dev", &port, "nomaster"]);
    }

    /// Attaches one of the node's links to its bridge again.
    pub fn heal_link(&self, node: &NodeNet, link: &str) {
        let port = Self::port_name(node.index, link);
        let bridge = Self::bridge_of(link);
        self.ip_in(
            &self.bridge_ns,
            &["link", "set", "dev", &port, "master", bridge],
        );
    }

    /// A command that runs `program` inside the bridge namespace (for captures on a port).
    pub fn bridge_exec(&self, program: impl AsRef<OsStr>) -> Command {
        netns_exec(&self.bridge_ns, program)
    }

    /// The bridge port that carries `link` of node `index`.
    pub fn port_name(index: u8, link: &str) -> String {
        let medium = if link == SECOND_LINK { 1 } else { 0 };
        format!("n{index}e{medium}")
    }

    /// The bridge (in the bridge namespace) that joins every node's `link`.
    pub fn bridge_of(link: &str) -> &'static str {
        if link == SECOND_LINK { "br1" } else { "br0" }
    }

    fn attach(&self, namespace: &str, index: u8, link: &str, bridge: &str, address: Ipv4Addr) {
        let port = Self::port_name(index, link);
        // Both ends are created directly in their namespaces: no name ever appears in the
        // root namespace, so parallel labs cannot collide on interface names.
        self.ip_in(
            &self.bridge_ns,
            &[
                "link", "add", "name", &port, "type", "veth", "peer", "name", link, "netns",
                namespace,
            ],
        );
        self.ip_in(
            &self.bridge_ns,
            &["link", "set", "dev", &port, "master", bridge],
        );
        self.ip_in(&self.bridge_ns, &["link", "set", "dev", &port, "up"]);
        let cidr = format!("{address}/24");
        self.ip_in(namespace, &["addr", "add", &cidr, "brd", "+", "dev", link]);
        if self.ipv6 {
            for ipv6 in [ipv6_twin(address), link_local_twin(address)] {
                let cidr = format!("{ipv6}/64");
                self.ip_in(
                    namespace,
                    &["-6", "addr", "add", &cidr, "dev", link, "nodad"],
                );
            }
        }
        self.ip_in(namespace, &["link", "set", "dev", link, "up"]);
    }

    fn add_namespace(&mut self, namespace: &str) {
        if Path::new("/run/netns").join(namespace).exists() {
            // Left by an earlier, killed process that had the same id: nobody else uses it.
            delete_namespace(namespace);
        }
        run_checked(Command::new("ip").args(["netns", "add", namespace]));
        self.namespaces.push(namespace.to_string());
    }

    fn ip_in(&self, namespace: &str, args: &[&str]) {
        run_checked(Command::new("ip").arg("-n").arg(namespace).args(args));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for namespace in self.namespaces.iter().rev() {
            delete_namespace(namespace);
        }
    }
}

/// Kills every process still inside `namespace` (all of them belong to the test that made
/// it) and deletes it. Errors are ignored: this runs from `Drop`, also while unwinding.
fn delete_namespace(namespace: &str) {
    if let Ok(output) = Command::new("ip")
        .args(["netns", "pids", namespace])
        .output()
    {
        for pid in String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            signal_process(pid, libc::SIGKILL);
        }
    }
    let _ = Command::new("ip")
        .args(["netns", "del", namespace])
        .output();
}

/// The nodes among `among` (lab indexes, from 1, into `nets`) whose `eth0` carries `address`
/// now: where a virtual address is, as the kernel of each node says.
pub fn address_holders(nets: &[NodeNet], address: Ipv4Addr, among: &[u8]) -> Vec<u8> {
    among
        .iter()
        .copied()
        .filter(|&i| {
            nets[usize::from(i) - 1]
                .ipv4_addresses(FIRST_LINK)
                .contains(&address)
        })
        .collect()
}

/// Waits until, of the nodes `among`, exactly `expected` carry `address` (see
/// [`address_holders`]).
pub fn wait_address_holders(nets: &[NodeNet], address: Ipv4Addr, among: &[u8], expected: &[u8]) {
    super::wait_for(
        &format!("{address} on node(s) {expected:?} of {among:?}"),
        super::SETTLE_TIMEOUT,
        || match address_holders(nets, address, among) {
            now if now == expected => Ok(()),
            now => Err(format!("on node(s) {now:?}")),
        },
    );
}

/// A command that runs `program` inside the network namespace `namespace`.
pub fn netns_exec(namespace: &str, program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", namespace]).arg(program);
    command
}

impl NodeNet {
    /// A command that runs `program` inside this node's network namespace.
    pub fn exec(&self, program: impl AsRef<OsStr>) -> Command {
        netns_exec(&self.namespace, program)
    }

    /// The IPv4 addresses on this node's interface `link` now, as `ip -o -4 addr` lists
    /// them (the node's own address and any virtual address an agent added).
    pub fn ipv4_addresses(&self, link: &str) -> Vec<Ipv4Addr> {
        let output = run_checked(
            Command::new("ip")
                .arg("-n")
                .arg(&self.namespace)
                .args(["-o", "-4", "addr", "show", "dev", link]),
        );
        let text = String::from_utf8_lossy(&output.stdout);
        let mut words = text.split_whitespace();
        let mut addresses = Vec::new();
        while let Some(word) = words.next() {
            if word == "inet"
                && let Some(address) = words
                    .next()
                    .and_then(|cidr| cidr.split('/').next())
                    .and_then(|a| a.parse().ok())
            {
                addresses.push(address);
            }
        }
        addresses
    }

    /// The MAC address of this node's interface `link`.
    pub fn mac_address(&self, link: &str) -> [u8; 6] {
        let output = run_checked(
            Command::new("ip")
                .arg("-n")
                .arg(&self.namespace)
                .args(["-o", "link", "show", "dev", link]),
        );
        let text = String::from_utf8_lossy(&output.stdout);
        let mut words = text.split_whitespace().skip_while(|w| *w != "link/ether");
        let mac = words.nth(1).unwrap_or_else(|| {
            panic!(
                "no link/ether in the listing of {link} in {}: {text}",
                self.namespace
            )
        });
        let mut bytes = [0u8; 6];
        let parts: Vec<&str> = mac.split(':').collect();
        assert_eq!(parts.len(), 6, "{mac} is no MAC address");
        for (byte, part) in bytes.iter_mut().zip(parts) {
            *byte = u8::from_str_radix(part, 16)
                .unwrap_or_else(|e| panic!("{mac} is no MAC address: {e}"));
        }
        bytes
    }

    /// The namespace file other tools can enter.
    pub fn namespace_path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.namespace)
    }

    /// A UDP socket bound to `0.0.0.0:port` inside this node's namespace, usable from the
    /// test process: a socket keeps the namespace it was created in.
    pub fn udp_socket(&self, port: u16) -> UdpSocket {
        let path = self.namespace_path();
        thread::spawn(move || {
            let namespace =
                File::open(&path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
            // SAFETY: setns only switches the calling thread's network namespace; this thread
            // exists for that purpose and ends after creating the socket. The descriptor is
            // a valid open namespace file.
            let rc = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "setns into {} failed: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
            UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).unwrap_or_else(|e| {
                panic!("cannot bind UDP port {port} in {}: {e}", path.display())
            })
        })
        .join()
        .unwrap_or_else(|_| panic!("creating a socket in {} failed", self.namespace))
    }
}
