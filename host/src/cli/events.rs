//! `vigil events`: follows the daemon's ordered event stream until the daemon stops or the
//! user interrupts, one line per event.

use std::path::Path;
use std::process::ExitCode;

use crate::api::{ApiClient, ApiError, client_socket_path};

/// Prints events as they happen; as JSON lines with `--json`.
pub fn run(json: bool, socket: Option<&Path>) -> anyhow::Result<ExitCode> {
    let path = client_socket_path(socket);
    let mut client = ApiClient::connect(&path)?;
    client.subscribe()?;
    loop {
        let event = match client.next_event() {
            Ok(event) => event,
            Err(ApiError::Protocol { .. }) => return Ok(ExitCode::SUCCESS),
            Err(error) => return Err(error.into()),
        };
        if json {
            println!("{}", serde_json::to_string(&event)?);
            continue;
        }
        if event.lost > 0 {
            println!("({} event(s) lost: this reader was too slow)", event.lost);
        }
        let seconds = event.unix_ms / 1000;
        let millis = event.unix_ms % 1000;
        println!("{seconds}.{millis:03} #{} {}", event.seq, event.text);
    }
}
