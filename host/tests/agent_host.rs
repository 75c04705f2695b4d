//! The real agent host on a real kernel: addresses added and removed over netlink inside a
//! network namespace, gratuitous ARP captured on a peer node, IPaddr and IPaddr2 started,
//! monitored and stopped through `SystemHost`, and Filesystem mounting a tmpfs.
//!
//! Needs root (each test says why it skips without it, or fails when
//! `VIGIL_REQUIRE_ROOT_TESTS=1`). Every address is in the lab's 198.18.0.0/15 networks;
//! every namespace is the lab's own and deleted on drop.

mod support;

use std::fs::{self, File};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use support::netns::{FIRST_LINK, Lab, NodeNet};
use support::{SETTLE_TIMEOUT, is_root, run_or_skip, unique_token, wait_for};
use vigil::agent_host::{SystemHost, netlink};
use vigil_agents::filesystem::Filesystem;
use vigil_agents::ipaddr::Ipaddr;
use vigil_agents::ipaddr2::Ipaddr2;
use vigil_plugin_api::{
    AddressChange, AddressRequest, Host, HostError, IpPrefix, OcfStatus, ResourceAgent,
    ResourceInstance,
};

/// Runs `work` on a thread that has entered `node`'s network namespace, so every netlink
/// and packet socket it opens is the node's.
fn in_namespace<T: Send>(node: &NodeNet, work: impl FnOnce() -> T + Send) -> T {
    let path = node.namespace_path();
    thread::scope(|scope| {
        scope
            .spawn(|| {
                let namespace = File::open(&path)
                    .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
                // SAFETY: setns switches only this thread's network namespace; the thread
                // exists for this work and ends with it. The descriptor is an open
                // namespace file.
                let rc = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(
                    rc,
                    0,
                    "setns into {}: {}",
                    path.display(),
                    io::Error::last_os_error()
                );
                work()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn prefix(address: Ipv4Addr, prefix_len: u8) -> IpPrefix {
    IpPrefix {
        address: IpAddr::V4(address),
        prefix_len,
    }
}

/// An address of the node's lab network other than any node's (`.100`, `.101`, ...).
fn lab_address(node: &NodeNet, host: u8) -> Ipv4Addr {
    let [a, b, c, _] = node.address.octets();
    Ipv4Addr::new(a, b, c, host)
}

fn instance(name: &str, params: &[(&str, &str)]) -> ResourceInstance {
    ResourceInstance {
        name: name.to_string(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        timeout: Duration::from_secs(20),
        grants: Default::default(),
    }
}

/// A packet socket in `node`'s namespace receiving every ARP frame there.
struct ArpCapture {
    /// Bound to no interface: it sees the ARP frames of every interface in the namespace.
    socket: OwnedFd,
}

/// One ARP frame as seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ArpSeen {
    /// 1 for a request, 2 for a reply.
    operation: u16,
    /// The sender hardware address in the ARP payload.
    sender_mac: [u8; 6],
    /// The sender protocol address.
    sender_ip: Ipv4Addr,
    /// The target protocol address (the same as the sender's in a gratuitous ARP).
    target_ip: Ipv4Addr,
    /// The Ethernet destination.
    destination: [u8; 6],
}

impl ArpCapture {
    fn open(node: &NodeNet) -> ArpCapture {
        in_namespace(node, || {
            let protocol = i32::from(0x0806u16.to_be());
            // SAFETY: socket(2) with constant arguments; the result is checked.
            let fd = unsafe {
                libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    protocol,
                )
            };
            assert!(fd >= 0, "packet socket: {}", io::Error::last_os_error());
            // SAFETY: fd is fresh and owned here.
            let socket = unsafe { OwnedFd::from_raw_fd(fd) };
            let timeout = libc::timeval {
                tv_sec: 0,
                tv_usec: 200_000,
            };
            // SAFETY: the option value is a timeval that outlives the call.
            let rc = unsafe {
                libc::setsockopt(
                    socket.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&raw const timeout).cast(),
                    std::mem::size_of::<libc::timeval>() as libc::socklen_t,
                )
            };
            assert_eq!(rc, 0, "SO_RCVTIMEO: {}", io::Error::last_os_error());
            ArpCapture { socket }
        })
    }

    /// The next ARP frame, or `None` after the socket's short receive timeout.
    fn next(&self) -> Option<ArpSeen> {
        let mut frame = [0u8; 1514];
        // SAFETY: the buffer is valid for its length and outlives the call.
        let received = unsafe {
            libc::recv(
                self.socket.as_raw_fd(),
                frame.as_mut_ptr().cast(),
                frame.len(),
                0,
            )
        };
        let received = usize::try_from(received).ok()?;
        let frame = frame.get(..received)?;
        if frame.len() < 42 || frame[12..14] != [0x08, 0x06] {
            return None;
        }
        let ipv4 =
            |at: usize| Ipv4Addr::new(frame[at], frame[at + 1], frame[at + 2], frame[at + 3]);
        let mac = |at: usize| <[u8; 6]>::try_from(&frame[at..at + 6]).ok();
        Some(ArpSeen {
            operation: u16::from_be_bytes([frame[20], frame[21]]),
            sender_mac: mac(22)?,
            sender_ip: ipv4(28),
            target_ip: ipv4(38),
            destination: mac(0)?,
        })
    }

    /// Collects ARP frames announcing `ip` until `enough` holds for them, failing the test
    /// after [`SETTLE_TIMEOUT`].
    fn wait_for_announcements(
        &self,
        ip: Ipv4Addr,
        enough: impl Fn(&[ArpSeen]) -> bool,
    ) -> Vec<ArpSeen> {
        let start = Instant::now();
        let mut seen = Vec::new();
        while !enough(&seen) {
            assert!(
                start.elapsed() < SETTLE_TIMEOUT,
                "timed out waiting for gratuitous ARP for {ip}; saw {seen:?}"
            );
            if let Some(frame) = self.next()
                && frame.sender_ip == ip
                && frame.target_ip == ip
            {
                seen.push(frame);
            }
        }
        seen
    }
}

/// The Ethernet address of the node's first interface.
fn first_link_mac(node: &NodeNet) -> [u8; 6] {
    in_namespace(node, || {
        netlink::link_named(FIRST_LINK)
            .expect("eth0 exists in the node")
            .mac
            .expect("a veth has an Ethernet address")
    })
}

/// Whether `from` gets an answer to one ping of `to`.
fn pings(from: &NodeNet, to: Ipv4Addr) -> bool {
    from.exec("ping")
        .args(["-c", "1", "-W", "2", &to.to_string()])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Waits until `peer` reaches `node`: a new veth pair's carrier comes up asynchronously,
/// and frames sent before it are lost.
fn wait_for_lab_link(peer: &NodeNet, node: &NodeNet) {
    wait_for("the lab link between two nodes", SETTLE_TIMEOUT, || {
        if pings(peer, node.address) {
            Ok(())
        } else {
            Err(format!("{} does not answer ping", node.address))
        }
    });
}

#[test]
fn addresses_are_added_and_removed_idempotently_over_netlink() {
    let Some(mut lab) = Lab::new("addr") else {
        return;
    };
    let node = lab.add_node(1);
    let vip = lab_address(&node, 100);
    in_namespace(&node, || {
        let host = SystemHost::new("test-address");
        let before = host.addresses().unwrap();
        let own = before
            .iter()
            .find(|a| a.interface == FIRST_LINK && a.address.address == IpAddr::V4(node.address))
            .unwrap_or_else(|| panic!("the node's own address is listed: {before:?}"));
        assert_eq!(own.address.prefix_len, 24);
        assert_eq!(own.broadcast, Some(IpAddr::V4(lab_address(&node, 255))));

        let request = AddressRequest {
            interface: FIRST_LINK.to_string(),
            address: prefix(vip, 24),
            broadcast: None,
            label: Some(format!("{FIRST_LINK}:vip")),
        };
        assert_eq!(host.add_address(&request).unwrap(), AddressChange::Changed);
        assert_eq!(
            host.add_address(&request).unwrap(),
            AddressChange::Unchanged
        );
        let added = host
            .addresses()
            .unwrap()
            .into_iter()
            .find(|a| a.address.address == IpAddr::V4(vip))
            .expect("the new address is listed");
        assert_eq!(added.interface, FIRST_LINK);
        assert_eq!(added.address, prefix(vip, 24));
        assert_eq!(added.label.as_deref(), Some("eth0:vip"));
        assert_eq!(added.broadcast, Some(IpAddr::V4(lab_address(&node, 255))));

        assert_eq!(
            host.remove_address(FIRST_LINK, prefix(vip, 24)).unwrap(),
            AddressChange::Changed
        );
        assert_eq!(
            host.remove_address(FIRST_LINK, prefix(vip, 24)).unwrap(),
            AddressChange::Unchanged
        );
        assert_eq!(
            host.remove_address("nosuchif0", prefix(vip, 24)).unwrap(),
            AddressChange::Unchanged
        );
        assert!(
            !host
                .addresses()
                .unwrap()
                .iter()
                .any(|a| a.address.address == IpAddr::V4(vip))
        );
        let missing = AddressRequest {
            interface: "nosuchif0".into(),
            label: None,
            ..request
        };
        let err = host.add_address(&missing).unwrap_err();
        assert!(
            matches!(&err, HostError::Failed { reason, .. } if reason.contains("nosuchif0")),
            "{err}"
        );
    });
}

#[test]
fn gratuitous_arp_reaches_the_peer_as_request_and_reply_from_our_mac() {
    let Some(mut lab) = Lab::new("garp") else {
        return;
    };
    let sender = lab.add_node(1);
    let peer = lab.add_node(2);
    wait_for_lab_link(&peer, &sender);
    let mac = first_link_mac(&sender);
    let announced = lab_address(&sender, 101);
    let capture = ArpCapture::open(&peer);
    in_namespace(&sender, || {
        let host = SystemHost::new("test-garp");
        host.add_address(&vip_request(announced)).unwrap();
        host.send_gratuitous_arp(
            FIRST_LINK,
            IpAddr::V4(announced),
            3,
            Duration::from_millis(50),
        )
        .unwrap();
    });
    let seen = capture.wait_for_announcements(announced, |seen| seen.len() >= 6);
    assert!(seen.iter().all(|f| f.sender_mac == mac), "{seen:?}");
    assert!(seen.iter().all(|f| f.destination == [0xff; 6]), "{seen:?}");
    let requests = seen.iter().filter(|f| f.operation == 1).count();
    let replies = seen.iter().filter(|f| f.operation == 2).count();
    assert_eq!((requests, replies), (3, 3), "{seen:?}");
}

/// The request that puts `address`/24 on the lab link.
fn vip_request(address: Ipv4Addr) -> AddressRequest {
    AddressRequest {
        interface: FIRST_LINK.to_string(),
        address: prefix(address, 24),
        broadcast: None,
        label: None,
    }
}

#[test]
fn gratuitous_arp_stops_once_the_address_leaves_the_interface() {
    let Some(mut lab) = Lab::new("garpstop") else {
        return;
    };
    let sender = lab.add_node(1);
    let peer = lab.add_node(2);
    wait_for_lab_link(&peer, &sender);
    let announced = lab_address(&sender, 102);
    let capture = ArpCapture::open(&peer);
    in_namespace(&sender, || {
        let host = SystemHost::new("test-garp-stop");
        host.add_address(&vip_request(announced)).unwrap();
        host.send_gratuitous_arp(
            FIRST_LINK,
            IpAddr::V4(announced),
            10,
            Duration::from_millis(100),
        )
        .unwrap();
        // The address moves on (a standby, a failback) right after the first announcement.
        host.remove_address(FIRST_LINK, prefix(announced, 24))
            .unwrap();
    });
    let first = capture.wait_for_announcements(announced, |seen| seen.len() >= 2);
    // Nine more announcements were planned over 900 ms; watch for twice that.
    let mut later = Vec::new();
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_millis(1800) {
        if let Some(frame) = capture.next()
            && frame.sender_ip == announced
        {
            later.push(frame);
        }
    }
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(
        later.is_empty(),
        "announced an address this node no longer holds: {later:?}"
    );
}

#[test]
fn gratuitous_arp_on_a_missing_interface_is_invalid() {
    let Some(mut lab) = Lab::new("garpmiss") else {
        return;
    };
    let node = lab.add_node(1);
    let err = in_namespace(&node, || {
        SystemHost::new("test-garp").send_gratuitous_arp(
            "nosuchif0",
            IpAddr::V4(lab_address(&node, 102)),
            1,
            Duration::ZERO,
        )
    })
    .unwrap_err();
    assert!(matches!(err, HostError::Invalid { .. }), "{err}");
}

#[test]
fn ipaddr_serves_a_virtual_address_end_to_end() {
    let Some(mut lab) = Lab::new("ipaddr") else {
        return;
    };
    let owner = lab.add_node(1);
    let peer = lab.add_node(2);
    wait_for_lab_link(&peer, &owner);
    let mac = first_link_mac(&owner);
    let vip = lab_address(&owner, 110);
    let agent = Ipaddr;
    let params = agent.positional_params(&[vip.to_string()]).unwrap();
    let resource = ResourceInstance {
        name: format!("IPaddr_{vip}"),
        params,
        timeout: Duration::from_secs(20),
        grants: Default::default(),
    };
    let host = SystemHost::new(resource.name.clone());
    let capture = ArpCapture::open(&peer);

    in_namespace(&owner, || {
        assert_eq!(
            agent.monitor(&resource, &host).status,
            OcfStatus::NotRunning
        );
        let started = agent.start(&resource, &host);
        assert_eq!(started.status, OcfStatus::Success, "{}", started.message);
        let added = host
            .addresses()
            .unwrap()
            .into_iter()
            .find(|a| a.address.address == IpAddr::V4(vip))
            .expect("the virtual address is configured");
        assert_eq!(added.interface, FIRST_LINK);
        assert_eq!(added.address.prefix_len, 24);
        assert_eq!(added.label.as_deref(), Some("eth0:0"));
        assert_eq!(agent.monitor(&resource, &host).status, OcfStatus::Success);
        assert_eq!(agent.start(&resource, &host).status, OcfStatus::Success);
    });
    let seen = capture.wait_for_announcements(vip, |seen| !seen.is_empty());
    assert_eq!(seen[0].sender_mac, mac);
    assert!(
        pings(&peer, vip),
        "the peer reaches {vip} while IPaddr runs"
    );

    in_namespace(&owner, || {
        let stopped = agent.stop(&resource, &host);
        assert_eq!(stopped.status, OcfStatus::Success, "{}", stopped.message);
        assert_eq!(
            agent.monitor(&resource, &host).status,
            OcfStatus::NotRunning
        );
        assert_eq!(agent.stop(&resource, &host).status, OcfStatus::Success);
    });
    assert!(!pings(&peer, vip), "{vip} is gone after stop");
}

#[test]
fn ipaddr2_serves_a_labelled_address_end_to_end_and_reports_a_misplaced_one() {
    let Some(mut lab) = Lab::new("ipaddr2") else {
        return;
    };
    let owner = lab.add_node(1);
    let peer = lab.add_node(2);
    wait_for_lab_link(&peer, &owner);
    let vip = lab_address(&owner, 120);
    let agent = Ipaddr2;
    let params = agent
        .positional_params(&[format!("{vip}/24/{FIRST_LINK}:web")])
        .unwrap();
    let mut resource = ResourceInstance {
        name: format!("IPaddr2_{vip}"),
        params,
        timeout: Duration::from_secs(20),
        grants: Default::default(),
    };
    resource.params.insert("arp_count".into(), "2".into());
    let host = SystemHost::new(resource.name.clone());
    let capture = ArpCapture::open(&peer);

    in_namespace(&owner, || {
        let started = agent.start(&resource, &host);
        assert_eq!(started.status, OcfStatus::Success, "{}", started.message);
        let added = host
            .addresses()
            .unwrap()
            .into_iter()
            .find(|a| a.address.address == IpAddr::V4(vip))
            .expect("the virtual address is configured");
        assert_eq!(added.label.as_deref(), Some("eth0:web"));
        assert_eq!(agent.monitor(&resource, &host).status, OcfStatus::Success);
    });
    capture.wait_for_announcements(vip, |seen| seen.len() >= 4);
    assert!(
        pings(&peer, vip),
        "the peer reaches {vip} while IPaddr2 runs"
    );

    in_namespace(&owner, || {
        assert_eq!(agent.stop(&resource, &host).status, OcfStatus::Success);
        assert_eq!(
            agent.monitor(&resource, &host).status,
            OcfStatus::NotRunning
        );
        // The address on another interface than the configured one is a failure, not a stop.
        host.add_address(&AddressRequest {
            interface: "lo".into(),
            address: prefix(vip, 32),
            broadcast: None,
            label: None,
        })
        .unwrap();
        let misplaced = agent.monitor(&resource, &host);
        assert_eq!(
            misplaced.status,
            OcfStatus::ErrGeneric,
            "{}",
            misplaced.message
        );
        assert_eq!(agent.stop(&resource, &host).status, OcfStatus::Success);
        assert_eq!(
            agent.monitor(&resource, &host).status,
            OcfStatus::NotRunning
        );
    });
}

/// A directory for a mount point, removed on drop; anything still mounted there is detached
/// first so a failed test leaves no mount behind.
struct MountPoint {
    /// The directory, canonical as the mount table shows it.
    path: PathBuf,
}

impl MountPoint {
    fn new(label: &str) -> MountPoint {
        let (pid, counter) = unique_token();
        let path = std::env::temp_dir().join(format!("vigil-{label}-{pid}-{counter}"));
        fs::create_dir_all(&path).unwrap();
        MountPoint {
            path: fs::canonicalize(&path).unwrap(),
        }
    }
}

impl Drop for MountPoint {
    fn drop(&mut self) {
        if let Ok(c_path) = std::ffi::CString::new(self.path.as_os_str().as_encoded_bytes()) {
            // SAFETY: c_path is a NUL-terminated path that outlives the call.
            unsafe {
                libc::umount2(c_path.as_ptr(), libc::MNT_DETACH);
            }
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn is_mount_point(path: &Path) -> bool {
    let table = fs::read_to_string("/proc/self/mountinfo").unwrap();
    vigil_agents::filesystem::parse_mountinfo(&table)
        .iter()
        .any(|m| m.mount_point == path)
}

#[test]
fn filesystem_mounts_a_tmpfs_and_stop_leaves_no_mount_behind() {
    if !run_or_skip(is_root(), "root (mount and umount)") {
        return;
    }
    let mount_point = MountPoint::new("fs");
    let directory = mount_point.path.join("data");
    let dir_text = format!("{}/", directory.display());
    let agent = Filesystem::default();
    let host = SystemHost::new("Filesystem_test");
    let resource = instance(
        "Filesystem_test",
        &[
            ("device", "vigil-test"),
            ("directory", &dir_text),
            ("fstype", "tmpfs"),
            ("options", "size=1m,mode=0700,nosuid"),
        ],
    );
    assert_eq!(
        agent.monitor(&resource, &host).status,
        OcfStatus::NotRunning
    );
    let started = agent.start(&resource, &host);
    assert_eq!(started.status, OcfStatus::Success, "{}", started.message);
    assert!(is_mount_point(&directory));
    fs::write(directory.join("marker"), "on tmpfs").unwrap();
    assert_eq!(agent.start(&resource, &host).status, OcfStatus::Success);
    assert_eq!(agent.monitor(&resource, &host).status, OcfStatus::Success);

    let stopped = agent.stop(&resource, &host);
    assert_eq!(stopped.status, OcfStatus::Success, "{}", stopped.message);
    assert!(!is_mount_point(&directory));
    assert!(
        !directory.join("marker").exists(),
        "the tmpfs contents went with it"
    );
    assert_eq!(
        agent.monitor(&resource, &host).status,
        OcfStatus::NotRunning
    );
    assert_eq!(agent.stop(&resource, &host).status, OcfStatus::Success);
}

#[test]
fn filesystem_stop_fails_while_busy_and_succeeds_once_released() {
    if !run_or_skip(is_root(), "root (mount and umount)") {
        return;
    }
    let mount_point = MountPoint::new("fsbusy");
    let dir_text = mount_point.path.display().to_string();
    let agent = Filesystem::default();
    let host = SystemHost::new("Filesystem_busy");
    let mut resource = instance(
        "Filesystem_busy",
        &[
            ("device", "vigil-test"),
            ("directory", &dir_text),
            ("fstype", "tmpfs"),
        ],
    );
    resource.timeout = Duration::from_secs(1);
    assert_eq!(agent.start(&resource, &host).status, OcfStatus::Success);
    let holder = File::create(mount_point.path.join("held")).unwrap();
    let stopped = agent.stop(&resource, &host);
    assert_eq!(stopped.status, OcfStatus::ErrGeneric, "{}", stopped.message);
    assert!(
        stopped.message.contains("stays mounted"),
        "{}",
        stopped.message
    );
    assert!(
        is_mount_point(&mount_point.path),
        "a busy filesystem is not detached"
    );
    drop(holder);
    let stopped = agent.stop(&resource, &host);
    assert_eq!(stopped.status, OcfStatus::Success, "{}", stopped.message);
    assert!(!is_mount_point(&mount_point.path));
}
