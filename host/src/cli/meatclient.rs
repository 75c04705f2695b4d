//! `meatclient -c NODE [-w]` (and `vigil meatware confirm NODE [-w]`): the operator's side of
//! the meatware device, confirming that a node was power-cycled by hand.
//!
//! It speaks cluster-glue's FIFO protocol (see `vigil_stonith::meatware`), so it confirms a
//! reset that vigil's device or cluster-glue's `stonith -t meatware` waits for, with
//! Debian's prompt, answers and exit codes: a confirmation is 0, any answer not starting
//! with a lower-case `y` cancels (3, as Debian's tool reads it), no waiting device is 4
//! (with `-w` it waits, printing a dot a second), a bad command line is 3. It decides
//! nothing about the node; the waiting device does.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use vigil_plugin_api::StonithCode;
use vigil_stonith::StonithSettings;
use vigil_stonith::meatware::{confirmation_message, fifo_path};

use super::getopt::{self, Item};

/// Runs `meatclient` with its command line; `program` names it in the usage message.
pub fn main(program: &str, args: &[String]) -> ExitCode {
    let parsed = getopt::parse(program, "c:w", args);
    let mut node = None;
    let mut wait = false;
    let mut errors = 0;
    for item in parsed.items {
        match item {
            Item::Option('c', value) => node = value,
            Item::Option('w', _) => wait = true,
            Item::Option(..) => errors += 1,
            Item::Error(message) => {
                eprintln!("{message}");
                errors += 1;
            }
        }
    }
    match node {
        Some(node) if errors == 0 && parsed.operands.is_empty() => confirm(&node, wait),
        _ => {
            eprintln!("usage: {program} -c node [-w]");
            exit_code(StonithCode::Invalid.number())
        }
    }
}

/// Confirms the reset of `node` to the meatware device waiting for it, after asking the
/// operator; with `wait`, waits for a device to ask.
pub fn confirm(node: &str, wait: bool) -> ExitCode {
    let code = match run(node, wait) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("meatclient: cannot talk to the operator: {err}");
            StonithCode::Oops.number()
        }
    };
    let _ = io::stdout().flush();
    exit_code(code)
}

fn run(node: &str, wait: bool) -> io::Result<i32> {
    let node = node.to_lowercase();
    let path = fifo_path(&StonithSettings::default().fifo_dir, &node);
    let mut stdout = io::stdout();
    let mut waited = false;
    let mut fifo = loop {
        match open_for_reply(&path) {
            Ok(fifo) => break fifo,
            Err(err) => {
                let nobody_yet = matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ENXIO));
                if !wait || !nobody_yet {
                    if waited {
                        writeln!(stdout)?;
                    }
                    stdout.flush()?;
                    eprintln!(
                        "Meatware_IPC failed: {}: {}",
                        path.display(),
                        strerror(&err)
                    );
                    return Ok(StonithCode::BadHost.number());
                }
                write!(stdout, ".")?;
                stdout.flush()?;
                waited = true;
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    };
    if waited {
        writeln!(stdout)?;
    }
    write!(
        stdout,
        "\nWARNING!\n\n\
         If node \"{node}\" has not been manually power-cycled or disconnected from all shared \
         resources and networks, data on shared disks may become corrupted and migrated services \
         might not work as expected.\n\
         Please verify that the name or address above corresponds to the node you just rebooted.\n\n\
         PROCEED? [yN] "
    )?;
    stdout.flush()?;
    let answer = read_word(&mut io::stdin().lock())?;
    if !answer.is_some_and(|word| word.starts_with('y')) {
        writeln!(stdout, "Meatware_client: operation canceled.")?;
        return Ok(StonithCode::Invalid.number());
    }
    if let Err(err) = fifo.write_all(&confirmation_message(&node)) {
        stdout.flush()?;
        eprintln!(
            "Meatware_IPC failed: {}: {}",
            path.display(),
            strerror(&err)
        );
        return Ok(StonithCode::Oops.number());
    }
    writeln!(stdout, "Meatware_client: reset confirmed.")?;
    Ok(0)
}

/// Opens the FIFO for writing without waiting: it fails (ENXIO) while no device reads it.
fn open_for_reply(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// The next whitespace-delimited word of `input`, as `scanf("%s")` reads it; `None` at end
/// of input.
fn read_word(input: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut word = Vec::new();
    for byte in input.by_ref().bytes() {
        let byte = byte?;
        if byte.is_ascii_whitespace() {
            if word.is_empty() {
                continue;
            }
            break;
        }
        word.push(byte);
    }
    Ok((!word.is_empty()).then(|| String::from_utf8_lossy(&word).into_owned()))
}

/// The C library's text for an error, as `perror` prints it.
fn strerror(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from((code & 0xff) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_a_word_at_a_time() {
        let mut input: &[u8] = b"\n  yes please\n";
        assert_eq!(read_word(&mut input).unwrap().as_deref(), Some("yes"));
        assert_eq!(read_word(&mut input).unwrap().as_deref(), Some("please"));
        assert_eq!(read_word(&mut input).unwrap(), None);
    }

    #[test]
    fn errors_read_as_perror_prints_them() {
        let err = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(strerror(&err), "No such file or directory");
    }
}
