//! The `watchdog` device (spec §3.2): opened at start, fed on each of this node's own
//! heartbeats, closed with the magic `V` on a clean stop only.
//!
//! Owns the device's file descriptor and nothing else. Feeding must never stall the core
//! task, so the device is opened non-blocking and a write that would block is skipped (the
//! next heartbeat feeds it again). A crash, a `failfast` death or a kill never writes the
//! magic character: the kernel then reboots the node, which is the point of a watchdog.
//! Dropping a [`Watchdog`] closes it without the magic character for the same reason.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

/// `WDIOC_SETTIMEOUT` from `<linux/watchdog.h>`: `_IOWR('W', 6, int)`.
const WDIOC_SETTIMEOUT: libc::c_ulong = 0xC004_5706;
/// What a write feeds the device with: one NUL byte, as Heartbeat writes.
const FEED: &[u8] = b"\0";
/// The magic character that disarms a Linux watchdog on close.
const MAGIC_CLOSE: &[u8] = b"V";

/// The configured device could not be used at start.
#[derive(Debug, Error)]
pub enum WatchdogError {
    /// Opening failed: a missing device, no permission, or a FIFO nobody reads.
    #[error(
        "cannot open watchdog device {device}: {source} (check the `watchdog` setting and that \
         the device exists and is writable)"
    )]
    Open {
        /// The configured path.
        device: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// An open watchdog device.
#[derive(Debug)]
pub struct Watchdog {
    /// The device, open for writing and non-blocking; `None` after a write failure closed it.
    file: Option<File>,
    /// The configured path, for messages.
    device: PathBuf,
}

/// The timeout Heartbeat programs into the device for `deadtime`: whole seconds, rounded up,
/// of the deadtime plus 10 ms, so the device never fires before peers would declare us dead.
pub fn timeout_for(deadtime: Duration) -> u32 {
    let millis = deadtime.as_millis().saturating_add(10);
    u32::try_from(millis.div_ceil(1000)).unwrap_or(u32::MAX)
}

impl Watchdog {
    /// Opens `device`, sets its timeout from `deadtime` and feeds it once. A device that
    /// refuses the timeout (a stand-in file, a driver with fixed timeouts) is still used.
    pub fn open(device: &Path, deadtime: Duration) -> Result<Self, WatchdogError> {
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(device)
            .map_err(|source| WatchdogError::Open {
                device: device.to_path_buf(),
                source,
            })?;
        tracing::info!(device = %device.display(), "Using watchdog device: {}", device.display());
        let mut timeout = libc::c_int::try_from(timeout_for(deadtime)).unwrap_or(libc::c_int::MAX);
        // SAFETY: the descriptor is open for the call, and WDIOC_SETTIMEOUT reads and writes
        // one int through the pointer, which points at a live c_int.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), WDIOC_SETTIMEOUT, &mut timeout) };
        if rc < 0 {
            let error = std::io::Error::last_os_error();
            tracing::debug!(device = %device.display(), %error, "cannot set the watchdog timeout; the device keeps its own");
        } else {
            tracing::info!(device = %device.display(), "Set watchdog timeout to {timeout} seconds.");
        }
        let mut watchdog = Watchdog {
            file: Some(file),
            device: device.to_path_buf(),
        };
        watchdog.feed();
        Ok(watchdog)
    }

    /// Feeds the device: called on each of this node's own heartbeats. Never blocks: a
    /// device that is not ready is fed on the next heartbeat instead. Any other failure
    /// closes the device, as Heartbeat does, and the kernel will reboot the node.
    pub fn feed(&mut self) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        match file.write(FEED) {
            Ok(_) => {}
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                tracing::debug!(device = %self.device.display(), "watchdog not ready; fed on the next heartbeat");
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => {
                tracing::error!(device = %self.device.display(), %error, "Watchdog write failure: closing {}!", self.device.display());
                self.file = None;
            }
        }
    }

    /// Disarms and closes the device on a clean stop: the magic `V` tells the kernel the
    /// silence that follows is intended.
    pub fn close_cleanly(mut self) {
        let Some(mut file) = self.file.take() else {
            return;
        };
        for _ in 0..3 {
            match file.write(MAGIC_CLOSE) {
                Ok(1) => {
                    tracing::info!(device = %self.device.display(), "watchdog closed cleanly");
                    return;
                }
                Ok(_) => {}
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(error) => {
                    tracing::error!(device = %self.device.display(), %error, "Watchdog write magic character failure: closing {}!", self.device.display());
                    return;
                }
            }
        }
        tracing::error!(device = %self.device.display(), "Watchdog write magic character failure: the device stayed busy");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("vigil-watchdog-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn the_timeout_is_the_deadtime_rounded_up_to_seconds_with_ten_milliseconds_to_spare() {
        assert_eq!(timeout_for(Duration::from_secs(1)), 2);
        assert_eq!(timeout_for(Duration::from_millis(990)), 1);
        assert_eq!(timeout_for(Duration::from_millis(991)), 2);
        assert_eq!(timeout_for(Duration::from_secs(30)), 31);
        assert_eq!(timeout_for(Duration::from_millis(1500)), 2);
    }

    #[test]
    fn a_stand_in_file_is_fed_one_byte_per_heartbeat_and_closed_with_v() {
        let path = scratch("file");
        std::fs::write(&path, b"").unwrap();
        let mut watchdog = Watchdog::open(&path, Duration::from_secs(1)).unwrap();
        watchdog.feed();
        watchdog.feed();
        watchdog.close_cleanly();
        assert_eq!(std::fs::read(&path).unwrap(), b"\0\0\0V");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn dropping_never_writes_the_magic_character() {
        let path = scratch("drop");
        std::fs::write(&path, b"").unwrap();
        drop(Watchdog::open(&path, Duration::from_secs(1)).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"\0");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_missing_device_is_an_error_naming_it() {
        let path = scratch("missing");
        let error = Watchdog::open(&path, Duration::from_secs(1)).unwrap_err();
        assert!(
            error.to_string().starts_with(&format!(
                "cannot open watchdog device {}: No such file or directory",
                path.display()
            )),
            "{error}"
        );
    }
}
