//! The one `vigil` binary. Invoked as `cl_status` (through a symlink) it behaves as
//! Heartbeat's tool of that name; otherwise it is the `vigil` command line.

use std::process::ExitCode;

fn main() -> ExitCode {
    vigil::cli::main(std::env::args_os().collect())
}
