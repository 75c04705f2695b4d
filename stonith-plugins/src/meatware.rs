//! `meatware`: a human is the fencing device. The device asks the operator to power-cycle a
//! host and waits until `meatclient -c HOST` confirms it was done.
//!
//! The protocol is cluster-glue's, so Debian's `meatclient` confirms a reset vigil waits for
//! and vigil's `meatclient` confirms one cluster-glue's `stonith` waits for:
//!
//! 1. The device creates the FIFO `<fifo_dir>/meatware.<host>` (mode 0600, host lower case),
//!    logs `CRIT: OPERATOR INTERVENTION REQUIRED to reset HOST.` and
//!    `CRIT: Run "meatclient -c HOST" AFTER power-cycling the machine.`, and opens it for
//!    reading.
//! 2. `meatclient` opens it for writing (which fails while nobody waits), asks the operator,
//!    and on `y…` writes one [`REPLY_SIZE`]-byte message starting `meatware reply HOST`; on
//!    anything else it closes the FIFO without writing.
//! 3. The device reads one message: three words `meatware`, `reply` and a prefix of the host
//!    (case-insensitive, as cluster-glue accepts) mean the host was reset (`S_OK`); anything
//!    else, an empty read included, is `S_RESETFAIL`.
//!
//! cluster-glue waits up to 600 s (then its alarm kills the process); vigil waits
//! [`StonithSettings::meatware_timeout`](crate::StonithSettings) and answers `S_TIMEOUT`.
//! Unlike cluster-glue it removes the FIFO whatever the outcome, and it refuses a host not in
//! its `hostlist` (`S_BADHOST`) before asking anyone. Request kinds are not told apart: the
//! operator is asked to power-cycle in every case, as cluster-glue does.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_plugin_api::{
    DeviceInfo, ResetRequest, StonithCode, StonithDevice, StonithError, StonithFactory,
};

use crate::device_log::{self, Severity};
use crate::hostlist::{self, HOSTLIST, HOSTLIST_PARAMETERS_XML};
use crate::{SingleTypeFactory, StonithSettings, built_in_device};

/// The device type.
pub const TYPE: &str = "meatware";

/// cluster-glue's device id.
const DEVICE_ID: &str = "Meatware STONITH device";

/// What `stonith -h` says about it.
const DESCRIPTION: &str = "Human (meatware) intervention STONITH device.\nThis STONITH agent prompts a human to reset a machine.\nThe human tells it when the reset was completed.";

/// The size of the one message `meatclient` writes and the device reads.
pub const REPLY_SIZE: usize = 256;

/// Where the device waits for the confirmation of `host`'s reset: `<dir>/meatware.<host>`.
pub fn fifo_path(dir: &Path, host: &str) -> PathBuf {
    dir.join(format!("meatware.{}", host.to_lowercase()))
}

/// The message confirming `host`'s reset, as `meatclient` writes it: `meatware reply HOST`,
/// padded with NUL bytes to [`REPLY_SIZE`] (a longer host name is cut, as cluster-glue's
/// fixed buffer cuts it).
pub fn confirmation_message(host: &str) -> [u8; REPLY_SIZE] {
    let mut message = [0u8; REPLY_SIZE];
    let text = format!("meatware reply {}", host.to_lowercase());
    let len = text.len().min(REPLY_SIZE - 1);
    message[..len].copy_from_slice(&text.as_bytes()[..len]);
    message
}

/// Whether `reply` confirms the reset of `host` (lower case): its first three words are
/// `meatware`, `reply` and a case-insensitive prefix of the host. `None` when the reply does
/// not have three words (cluster-glue's "Format error").
pub fn reply_confirms(reply: &[u8], host: &str) -> Option<bool> {
    let text_end = reply.iter().position(|&b| b == 0).unwrap_or(reply.len());
    let text = String::from_utf8_lossy(&reply[..text_end]);
    let mut words = text.split_whitespace();
    let (Some(tag), Some(verb), Some(named)) = (words.next(), words.next(), words.next()) else {
        return None;
    };
    Some(
        tag.starts_with("meatware")
            && verb.starts_with("reply")
            && host.to_lowercase().starts_with(&named.to_lowercase()),
    )
}

/// A `meatware` device.
#[derive(Debug)]
pub struct MeatwareDevice {
    /// Where the FIFOs are created.
    fifo_dir: PathBuf,
    /// How long a reset waits for the operator.
    timeout: Duration,
    /// The hosts an operator may be asked to reset; `None` until configured.
    hosts: Option<Vec<String>>,
}

impl MeatwareDevice {
    /// An unconfigured device using `settings`' FIFO directory and timeout.
    pub fn new(settings: &StonithSettings) -> Self {
        Self {
            fifo_dir: settings.fifo_dir.clone(),
            timeout: settings.meatware_timeout,
            hosts: None,
        }
    }

    fn hosts_or_invalid(&self) -> Result<&[String], StonithError> {
        self.hosts
            .as_deref()
            .ok_or_else(|| hostlist::not_configured(DEVICE_ID))
    }
}

impl StonithDevice for MeatwareDevice {
    fn config_names(&self) -> Vec<String> {
        vec![HOSTLIST.to_string()]
    }

    fn configure(&mut self, params: &[(String, String)]) -> Result<(), StonithError> {
        if let Some(value) = hostlist::param(params, HOSTLIST) {
            device_log::log(Severity::Info, &format!("parse config info info={value}"));
        }
        let hosts = hostlist::configured_hosts(
            DEVICE_ID,
            params,
            StonithCode::Invalid,
            StonithCode::BadConfig,
        )?;
        self.hosts = Some(hosts);
        Ok(())
    }

    fn status(&mut self) -> Result<(), StonithError> {
        self.hosts_or_invalid().map(|_| ())
    }

    fn hosts(&mut self) -> Result<Vec<String>, StonithError> {
        self.hosts_or_invalid().map(<[String]>::to_vec)
    }

    fn reset(&mut self, _request: ResetRequest, host: &str) -> Result<(), StonithError> {
        let host = host.to_lowercase();
        hostlist::check_controls(DEVICE_ID, self.hosts_or_invalid()?, &host)?;
        let fifo = ReplyFifo::create(&fifo_path(&self.fifo_dir, &host))?;
        device_log::log(
            Severity::Critical,
            &format!("OPERATOR INTERVENTION REQUIRED to reset {host}."),
        );
        device_log::log(
            Severity::Critical,
            &format!("Run \"meatclient -c {host}\" AFTER power-cycling the machine."),
        );
        let reply = fifo.wait_for_reply(Instant::now() + self.timeout)?;
        let Some(reply) = reply else {
            let message = format!(
                "no confirmation on {} within {} s - failed to Meatware-reset node {host}",
                fifo.path.display(),
                self.timeout.as_secs()
            );
            device_log::log(Severity::Critical, &message);
            return Err(StonithError::new(StonithCode::Timeout, message));
        };
        match reply_confirms(&reply, &host) {
            Some(true) => {
                device_log::log(Severity::Info, &format!("node Meatware-reset: {host}"));
                Ok(())
            }
            Some(false) => {
                let message = format!("failed to Meatware-reset node {host}");
                device_log::log(Severity::Critical, &message);
                Err(StonithError::new(StonithCode::ResetFailed, message))
            }
            None => {
                let message = format!("Format error - failed to Meatware-reset node {host}");
                device_log::log(Severity::Critical, &message);
                Err(StonithError::new(
                    StonithCode::ResetFailed,
                    format!("{message} (the operator did not confirm the reset)"),
                ))
            }
        }
    }

    fn info(&mut self, what: DeviceInfo) -> Option<String> {
        match what {
            DeviceInfo::DeviceId => Some(DEVICE_ID.to_string()),
            DeviceInfo::DeviceName => Some("Your Name Here".to_string()),
            DeviceInfo::Description => Some(DESCRIPTION.to_string()),
            DeviceInfo::ConfigXml => Some(HOSTLIST_PARAMETERS_XML.to_string()),
            DeviceInfo::Url => None,
        }
    }
}

/// The FIFO one reset waits on, open for reading; removed when dropped.
struct ReplyFifo {
    /// Its path, removed on drop.
    path: PathBuf,
    /// The read end, non-blocking so the wait can end at a deadline.
    reader: File,
}

impl ReplyFifo {
    /// Replaces whatever is at `path` by a new FIFO of mode 0600 and opens it for reading.
    fn create(path: &Path) -> Result<ReplyFifo, StonithError> {
        let failed = |what: &str, err: io::Error| {
            device_log::log(
                Severity::Critical,
                &format!("cannot {what} FIFO for Meatware_reset_host"),
            );
            StonithError::new(
                StonithCode::Oops,
                format!(
                    "cannot {what} the meatware FIFO {}: {err} (the directory must exist and be writable)",
                    path.display()
                ),
            )
        };
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(failed("create", err)),
        }
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| failed("create", io::Error::from(io::ErrorKind::InvalidInput)))?;
        // SAFETY: mkfifo reads the NUL-terminated path, which lives across the call.
        if unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) } < 0 {
            return Err(failed("create", io::Error::last_os_error()));
        }
        // The umask may have taken bits away; 0600 is the protocol.
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(|err| failed("create", err))?;
        // SAFETY: open reads the NUL-terminated path and returns a new descriptor or -1.
        let fd = unsafe {
            libc::open(
                c_path.as_ptr(),
                libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let err = io::Error::last_os_error();
            let _ = fs::remove_file(path);
            return Err(failed("open", err));
        }
        // SAFETY: the descriptor was just opened and is owned by nobody else.
        let reader = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(ReplyFifo {
            path: path.to_path_buf(),
            reader,
        })
    }

    /// Waits for one message until `deadline`: `None` when nobody wrote or closed by then; an
    /// empty message when a writer closed without writing.
    fn wait_for_reply(&self, deadline: Instant) -> Result<Option<Vec<u8>>, StonithError> {
        let failed = |err: io::Error| {
            device_log::log(
                Severity::Critical,
                "read error on FIFO for Meatware_reset_host",
            );
            StonithError::new(
                StonithCode::Oops,
                format!(
                    "cannot read the meatware FIFO {}: {err}",
                    self.path.display()
                ),
            )
        };
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            // Until a writer has come, a FIFO's read end reports neither data nor hang-up, so
            // the poll sleeps; once one came and went, POLLHUP ends it with an empty read.
            let mut entry = libc::pollfd {
                fd: self.reader.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let wait_ms = (deadline - now).as_millis().clamp(1, 60_000) as libc::c_int;
            // SAFETY: `entry` is one valid pollfd for the duration of the call.
            let ready = unsafe { libc::poll(&mut entry, 1, wait_ms) };
            if ready < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(failed(err));
            }
            if ready == 0 {
                continue;
            }
            let mut message = vec![0u8; REPLY_SIZE];
            match (&self.reader).read(&mut message) {
                Ok(len) => {
                    message.truncate(len);
                    return Ok(Some(message));
                }
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(err) => return Err(failed(err)),
            }
        }
    }
}

impl Drop for ReplyFifo {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The `meatware` plugin, its FIFOs in `settings.fifo_dir`.
pub fn factory(settings: &StonithSettings) -> Arc<dyn StonithFactory> {
    let settings = settings.clone();
    Arc::new(SingleTypeFactory {
        info: built_in_device(
            TYPE,
            "Human (meatware) intervention: an operator resets the node and confirms with meatclient",
        ),
        make: Box::new(move || Box::new(MeatwareDevice::new(&settings))),
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    use std::thread;

    use super::*;

    /// A FIFO directory of this test's own.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new(label: &str) -> TestDir {
            let path =
                std::env::temp_dir().join(format!("vigil-meatware-{label}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            TestDir(path)
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn device(dir: &Path, timeout: Duration) -> MeatwareDevice {
        let mut device = MeatwareDevice::new(&StonithSettings {
            fifo_dir: dir.to_path_buf(),
            meatware_timeout: timeout,
            ..StonithSettings::default()
        });
        device
            .configure(&[(HOSTLIST.to_string(), "hb1 HB2".to_string())])
            .unwrap();
        device
    }

    /// Starts a reset of `host` on another thread and waits until its FIFO exists.
    fn start_reset(
        dir: &Path,
        host: &str,
        timeout: Duration,
    ) -> thread::JoinHandle<Result<(), StonithError>> {
        let mut device = device(dir, timeout);
        let host_arg = host.to_string();
        let handle = thread::spawn(move || device.reset(ResetRequest::Reset, &host_arg));
        let path = fifo_path(dir, host);
        let start = Instant::now();
        while !path.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no FIFO at {}",
                path.display()
            );
            thread::sleep(Duration::from_millis(10));
        }
        // The device opens the FIFO right after creating it; give it that moment.
        thread::sleep(Duration::from_millis(50));
        handle
    }

    /// Opens the FIFO as `meatclient` does (non-blocking; fails while nobody waits).
    fn open_as_client(path: &Path) -> File {
        fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .unwrap()
    }

    #[test]
    fn a_confirmation_resets_and_removes_the_fifo() {
        let dir = TestDir::new("confirm");
        let handle = start_reset(&dir.0, "hb2", Duration::from_secs(30));
        let path = fifo_path(&dir.0, "hb2");
        let meta = fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_fifo());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        open_as_client(&path)
            .write_all(&confirmation_message("HB2"))
            .unwrap();
        assert_eq!(handle.join().unwrap(), Ok(()));
        assert!(!path.exists());
    }

    #[test]
    fn a_prefix_of_the_host_confirms_as_in_cluster_glue() {
        let dir = TestDir::new("prefix");
        let handle = start_reset(&dir.0, "hb2", Duration::from_secs(30));
        open_as_client(&fifo_path(&dir.0, "hb2"))
            .write_all(b"meatware reply HB\0")
            .unwrap();
        assert_eq!(handle.join().unwrap(), Ok(()));
    }

    #[test]
    fn a_client_closing_without_a_reply_fails_the_reset() {
        let dir = TestDir::new("cancel");
        let handle = start_reset(&dir.0, "hb1", Duration::from_secs(30));
        drop(open_as_client(&fifo_path(&dir.0, "hb1")));
        let err = handle.join().unwrap().unwrap_err();
        assert_eq!(err.code, StonithCode::ResetFailed);
        assert!(err.message.contains("Format error"), "{}", err.message);
        assert!(!fifo_path(&dir.0, "hb1").exists());
    }

    #[test]
    fn a_reply_naming_another_host_fails_the_reset() {
        let dir = TestDir::new("other");
        let handle = start_reset(&dir.0, "hb1", Duration::from_secs(30));
        open_as_client(&fifo_path(&dir.0, "hb1"))
            .write_all(&confirmation_message("hb2"))
            .unwrap();
        let err = handle.join().unwrap().unwrap_err();
        assert_eq!(err.code, StonithCode::ResetFailed);
    }

    #[test]
    fn no_reply_before_the_timeout_is_a_timeout_and_leaves_no_fifo() {
        let dir = TestDir::new("timeout");
        let started = Instant::now();
        let err = device(&dir.0, Duration::from_millis(300))
            .reset(ResetRequest::PowerOff, "hb1")
            .unwrap_err();
        assert_eq!(err.code, StonithCode::Timeout);
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(!fifo_path(&dir.0, "hb1").exists());
    }

    #[test]
    fn an_unlisted_host_is_refused_before_anyone_is_asked() {
        let dir = TestDir::new("badhost");
        let err = device(&dir.0, Duration::from_secs(1))
            .reset(ResetRequest::Reset, "hb9")
            .unwrap_err();
        assert_eq!(err.code, StonithCode::BadHost);
        assert!(!fifo_path(&dir.0, "hb9").exists());
    }

    #[test]
    fn replies_are_read_as_cluster_glue_reads_them() {
        assert_eq!(
            reply_confirms(&confirmation_message("hb2"), "hb2"),
            Some(true)
        );
        assert_eq!(
            reply_confirms(b"meatware reply hb2 extra", "hb2"),
            Some(true)
        );
        assert_eq!(reply_confirms(b"meatware reply hb20", "hb2"), Some(false));
        assert_eq!(reply_confirms(b"meatware nope hb2", "hb2"), Some(false));
        assert_eq!(reply_confirms(b"meatware reply", "hb2"), None);
        assert_eq!(reply_confirms(b"", "hb2"), None);
        let long = "h".repeat(400);
        assert_eq!(confirmation_message(&long)[REPLY_SIZE - 1], 0);
    }
}
