//! `vigil standby` / `vigil takeover`, and Heartbeat's `hb_standby` / `hb_takeover` when the
//! binary runs under those names: ask the daemon to give up or take over a set of groups.
//!
//! Owns only the argument words and Heartbeat's output; the exchange with the peer is the
//! failover machine's.

use std::path::Path;
use std::process::ExitCode;

use crate::api::{ApiClient, ApiRequest, client_socket_path};

/// Which way the groups move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Give the set to the other node(s).
    Standby,
    /// Take the set from the other node(s).
    Takeover,
}

/// The words Heartbeat's tools accept; `failback` means `foreign`.
const SETS: [&str; 4] = ["all", "local", "foreign", "failback"];

/// Runs the request; `heartbeat_style` prints Heartbeat's `Going standby [set].` line.
pub fn run(
    direction: Direction,
    set: Option<&str>,
    socket: Option<&Path>,
    heartbeat_style: bool,
) -> ExitCode {
    let set = set.unwrap_or("all");
    if !SETS.contains(&set) {
        eprintln!(
            "usage: {} [all|local|foreign|failback]",
            tool_name(direction, heartbeat_style)
        );
        return ExitCode::from(1);
    }
    let request = match direction {
        Direction::Standby => ApiRequest::Standby {
            set: set.to_string(),
        },
        Direction::Takeover => ApiRequest::Takeover {
            set: set.to_string(),
        },
    };
    let path = client_socket_path(socket);
    match ApiClient::connect(&path).and_then(|mut client| client.request(&request)) {
        Ok(_) => {
            if direction == Direction::Standby {
                if heartbeat_style {
                    println!("{} Going standby [{set}].", local_time_stamp());
                } else {
                    println!("standing by for {set} resource groups");
                }
            } else if !heartbeat_style {
                println!("taking over {set} resource groups");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{}: {error}", tool_name(direction, heartbeat_style));
            ExitCode::from(1)
        }
    }
}

fn tool_name(direction: Direction, heartbeat_style: bool) -> &'static str {
    match (direction, heartbeat_style) {
        (Direction::Standby, true) => "hb_standby",
        (Direction::Takeover, true) => "hb_takeover",
        (Direction::Standby, false) => "vigil standby",
        (Direction::Takeover, false) => "vigil takeover",
    }
}

/// `Nov 22 06:26:27`, local time, as Heartbeat's `date` call prints it.
fn local_time_stamp() -> String {
    // SAFETY: time(NULL) reads the clock; localtime_r fills the zeroed struct we own;
    // strftime writes at most buf.len() bytes into our buffer and returns the length.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut parts: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut parts).is_null() {
            return String::new();
        }
        let mut buf = [0u8; 64];
        let len = libc::strftime(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%b %d %H:%M:%S".as_ptr(),
            &parts,
        );
        String::from_utf8_lossy(&buf[..len]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_stamp_has_heartbeats_shape() {
        let stamp = local_time_stamp();
        let parts: Vec<&str> = stamp.split(' ').collect();
        assert_eq!(parts.len(), 3, "{stamp}");
        assert_eq!(parts[0].len(), 3);
        assert_eq!(parts[2].len(), 8);
    }
}
