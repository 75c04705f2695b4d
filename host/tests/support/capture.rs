//! Packet captures on the lab's bridges and bridge ports, and the ARP packets and UDP
//! payloads in them.
//!
//! Owns running `tcpdump` inside the bridge namespace on one node's bridge port (so it sees
//! exactly what that node puts on the wire) or on a bridge (what crosses it), reading the
//! classic pcap file it writes while it still runs, and decoding the ARP packets and UDP
//! payloads of its Ethernet frames. It must not capture anywhere but the lab's bridge
//! namespace, or leave `tcpdump` running: the capture is killed on drop.

use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use super::netns::{Lab, NodeNet};
use super::{SETTLE_TIMEOUT, die_with_test, wait_for};

/// The capture tool; `.ci/install-test-packages` installs it.
pub const TCPDUMP: &str = "/usr/bin/tcpdump";

/// A running capture. Dropping it stops `tcpdump`.
pub struct PortCapture {
    /// The pcap file `tcpdump` writes, packet by packet.
    file: PathBuf,
    /// `tcpdump` itself.
    child: Child,
}

impl PortCapture {
    /// Starts capturing what node `node` sends and receives on `link` (its bridge port),
    /// keeping the packets `filter` (a pcap filter expression) selects, into `file` (whose
    /// name should end in `.pcap`); returns once `tcpdump` listens.
    pub fn start(lab: &Lab, node: &NodeNet, link: &str, filter: &str, file: &Path) -> PortCapture {
        PortCapture::start_on(lab, &Lab::port_name(node.index, link), filter, file)
    }

    /// Starts capturing on the bridge that joins every node's `link`: what crosses it, so
    /// nothing a cut-off node sends. Otherwise as [`PortCapture::start`].
    pub fn start_on_bridge(lab: &Lab, link: &str, filter: &str, file: &Path) -> PortCapture {
        PortCapture::start_on(lab, Lab::bridge_of(link), filter, file)
    }

    /// Starts capturing on `port`, an interface of the bridge namespace.
    fn start_on(lab: &Lab, port: &str, filter: &str, file: &Path) -> PortCapture {
        let log_path = file.with_extension("log");
        let log = File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let mut command = lab.bridge_exec(TCPDUMP);
        // -Z root: Debian's tcpdump would otherwise open the file after dropping to its own
        // user, which cannot write in the root-owned lab directory. -U with immediate mode
        // writes every packet at once, so the file can be read while the capture runs.
        command
            .args(["-n", "-U", "--immediate-mode", "-Z", "root", "-i"])
            .arg(port)
            .arg("-w")
            .arg(file)
            .arg(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        die_with_test(&mut command);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {TCPDUMP}: {e}"));
        let mut capture = PortCapture {
            file: file.to_path_buf(),
            child,
        };
        wait_for(
            &format!("tcpdump to listen on {port}"),
            SETTLE_TIMEOUT,
            || {
                let said = fs::read_to_string(&log_path).unwrap_or_default();
                if let Ok(Some(status)) = capture.child.try_wait() {
                    panic!("tcpdump on {port} exited ({status}): {said}");
                }
                if said.contains("listening on") {
                    Ok(())
                } else {
                    Err(format!("tcpdump said: {said:?}"))
                }
            },
        );
        capture
    }

    /// The Ethernet frames captured so far (a packet still being written is left out).
    pub fn frames(&self) -> Vec<Vec<u8>> {
        self.timed_frames()
            .into_iter()
            .map(|(_, frame)| frame)
            .collect()
    }

    /// The Ethernet frames captured so far, each with the wall-clock time it was captured
    /// at, as time since the Unix epoch.
    pub fn timed_frames(&self) -> Vec<(Duration, Vec<u8>)> {
        let bytes = fs::read(&self.file).unwrap_or_default();
        pcap_frames(&bytes)
    }

    /// The ARP packets among the frames captured so far.
    pub fn arp_packets(&self) -> Vec<ArpPacket> {
        self.frames()
            .iter()
            .filter_map(|frame| ArpPacket::from_frame(frame))
            .collect()
    }
}

impl Drop for PortCapture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The frames of a classic pcap file with any byte order and time resolution, each with
/// its capture time since the Unix epoch; a header that is not pcap, or a truncated last
/// record, ends the list.
fn pcap_frames(bytes: &[u8]) -> Vec<(Duration, Vec<u8>)> {
    let word = |at: usize, little: bool| -> Option<u32> {
        let raw: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(raw)
        } else {
            u32::from_be_bytes(raw)
        })
    };
    let (little, nanosecond_resolution) = match bytes.get(..4) {
        Some([0xd4, 0xc3, 0xb2, 0xa1]) => (true, false),
        Some([0x4d, 0x3c, 0xb2, 0xa1]) => (true, true),
        Some([0xa1, 0xb2, 0xc3, 0xd4]) => (false, false),
        Some([0xa1, 0xb2, 0x3c, 0x4d]) => (false, true),
        _ => return Vec::new(),
    };
    let mut frames = Vec::new();
    let mut at = 24;
    while let Some(length) = word(at + 8, little) {
        let start = at + 16;
        let Some(frame) = usize::try_from(length)
            .ok()
            .and_then(|length| bytes.get(start..start + length))
        else {
            break;
        };
        let seconds = word(at, little).unwrap_or(0);
        let fraction = word(at + 4, little).unwrap_or(0);
        let time = if nanosecond_resolution {
            Duration::new(u64::from(seconds), fraction)
        } else {
            Duration::from_secs(u64::from(seconds)) + Duration::from_micros(u64::from(fraction))
        };
        frames.push((time, frame.to_vec()));
        at = start + frame.len();
    }
    frames
}

/// One ARP packet for IPv4 over Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket {
    /// 1 for a request, 2 for a reply.
    pub operation: u16,
    /// The sender's hardware address.
    pub sender_mac: [u8; 6],
    /// The sender's protocol address.
    pub sender_ip: Ipv4Addr,
    /// The target's protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpPacket {
    /// The ARP packet in an Ethernet frame, if it carries one for IPv4.
    pub fn from_frame(frame: &[u8]) -> Option<ArpPacket> {
        if frame.get(12..14)? != [0x08, 0x06] {
            return None;
        }
        let arp = frame.get(14..42)?;
        // Ethernet hardware, IPv4 protocol, 6-byte and 4-byte addresses.
        if arp.get(..6)? != [0x00, 0x01, 0x08, 0x00, 6, 4] {
            return None;
        }
        let ip = |at: usize| -> Option<Ipv4Addr> {
            let raw: [u8; 4] = arp.get(at..at + 4)?.try_into().ok()?;
            Some(Ipv4Addr::from(raw))
        };
        Some(ArpPacket {
            operation: u16::from_be_bytes(arp.get(6..8)?.try_into().ok()?),
            sender_mac: arp.get(8..14)?.try_into().ok()?,
            sender_ip: ip(14)?,
            target_ip: ip(24)?,
        })
    }

    /// Whether this is a gratuitous ARP announcing `address` at `mac`: sender and target
    /// address both `address`, sender hardware address `mac` (request or reply form).
    pub fn announces(&self, address: Ipv4Addr, mac: [u8; 6]) -> bool {
        self.sender_ip == address && self.target_ip == address && self.sender_mac == mac
    }
}

/// The payload of a UDP datagram over IPv4 in an Ethernet frame, if the frame carries one
/// whole (not a fragment).
pub fn udp_payload(frame: &[u8]) -> Option<&[u8]> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    let version_and_length = *ip.first()?;
    let header_len = usize::from(version_and_length & 0x0f) * 4;
    let fragment = u16::from_be_bytes(ip.get(6..8)?.try_into().ok()?);
    // Protocol 17 is UDP; a set more-fragments flag or a fragment offset means a piece.
    if version_and_length >> 4 != 4 || *ip.get(9)? != 17 || fragment & 0x3fff != 0 {
        return None;
    }
    let udp = ip.get(header_len..)?;
    let udp_len = usize::from(u16::from_be_bytes(udp.get(4..6)?.try_into().ok()?));
    udp.get(8..udp_len)
}
