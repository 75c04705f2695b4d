//! Filesystem: mounts a filesystem on a directory and unmounts it, like resource-agents'
//! Filesystem, with mount(2) and umount2(2) instead of mount(8).
//!
//! Owns Filesystem's parameters (`device`, `directory`, `fstype`, `options`, and the
//! haresources form `Filesystem::device::directory[::fstype[::options]]`), turning an
//! options string into mount flags and data, and reading the mount table. The mount table
//! is read through [`Host::read_file`]; mounting and unmounting go through a
//! [`MountSystem`], because `Host` has no such capability and tests need a fake one.
//!
//! Stop never detaches a busy filesystem (`MNT_DETACH` would leave it mounted out of sight):
//! it retries for half the operation's timeout and then fails, naming the mount that stayed.
//! Unlike resource-agents it does not kill the processes that keep a filesystem busy
//! (`force_unmount` is accepted and not supported) and runs no fsck.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use thiserror::Error;
use vigil_plugin_api::{
    Host, OcfStatus, OperationOutcome, PluginInfo, PluginKind, PluginOrigin, Registry,
    ResourceAgent, ResourceInstance,
};

/// The mount table of the daemon's mount namespace.
pub const MOUNTINFO_PATH: &str = "/proc/self/mountinfo";
/// The filesystem types the kernel knows, tried in order when `fstype` is not given.
pub const PROC_FILESYSTEMS_PATH: &str = "/proc/filesystems";
/// How long stop waits between two attempts to unmount a busy filesystem.
pub const UNMOUNT_RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// Filesystem types where stop forces the unmount (`umount -f`, not a lazy detach), as
/// resource-agents does: a dead server must not hang the stop.
const NETWORK_FILESYSTEMS: &[&str] = &["nfs", "nfs4", "cifs", "smbfs", "smb3", "efs"];

/// resource-agents' parameters that are accepted and not acted on: name, short description,
/// content type and default.
const ACCEPTED_UNSUPPORTED: &[(&str, &str, &str, &str)] = &[
    (
        "statusfile_prefix",
        "The prefix to be used for a status file for monitoring",
        "string",
        ".Filesystem_status/",
    ),
    (
        "run_fsck",
        "Whether to run fsck before mounting",
        "string",
        "auto",
    ),
    (
        "fast_stop",
        "Whether to stop quickly (no processes are killed here either way)",
        "boolean",
        "no",
    ),
    (
        "force_clones",
        "Allow running as a clone, regardless of filesystem type",
        "boolean",
        "false",
    ),
    (
        "force_unmount",
        "Kill processes before unmount",
        "string",
        "true",
    ),
];

/// A Filesystem parameter holds something it cannot.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FilesystemParamError {
    /// A required parameter is not set.
    #[error("required parameter {param} is missing")]
    Missing { param: &'static str },
    /// The directory is not an absolute path, or is `/`.
    #[error("parameter directory: {value:?} is not {expected}")]
    BadDirectory {
        value: String,
        expected: &'static str,
    },
    /// A mount option mount(2) cannot honour here.
    #[error("parameter options: {option:?} is not supported: {reason}")]
    UnsupportedOption {
        option: String,
        reason: &'static str,
    },
    /// Heartbeat's positional arguments could not be read.
    #[error("arguments {arguments:?}: {reason}")]
    Positional { arguments: String, reason: String },
}

/// How `options` translate for mount(2): the flags, and what the filesystem itself reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// `MS_*` flags.
    pub flags: libc::c_ulong,
    /// The options passed to the filesystem as data (`size=64m,mode=0755`).
    pub data: Vec<String>,
}

/// The flag options mount(8) turns into `MS_*` bits: name, bit, whether the option sets it.
const FLAG_OPTIONS: &[(&str, libc::c_ulong, bool)] = &[
    ("ro", libc::MS_RDONLY, true),
    ("rw", libc::MS_RDONLY, false),
    ("nosuid", libc::MS_NOSUID, true),
    ("suid", libc::MS_NOSUID, false),
    ("nodev", libc::MS_NODEV, true),
    ("dev", libc::MS_NODEV, false),
    ("noexec", libc::MS_NOEXEC, true),
    ("exec", libc::MS_NOEXEC, false),
    ("sync", libc::MS_SYNCHRONOUS, true),
    ("async", libc::MS_SYNCHRONOUS, false),
    ("dirsync", libc::MS_DIRSYNC, true),
    ("noatime", libc::MS_NOATIME, true),
    ("atime", libc::MS_NOATIME, false),
    ("nodiratime", libc::MS_NODIRATIME, true),
    ("diratime", libc::MS_NODIRATIME, false),
    ("relatime", libc::MS_RELATIME, true),
    ("norelatime", libc::MS_RELATIME, false),
    ("strictatime", libc::MS_STRICTATIME, true),
    ("nostrictatime", libc::MS_STRICTATIME, false),
    ("lazytime", libc::MS_LAZYTIME, true),
    ("nolazytime", libc::MS_LAZYTIME, false),
    ("mand", libc::MS_MANDLOCK, true),
    ("nomand", libc::MS_MANDLOCK, false),
    ("silent", libc::MS_SILENT, true),
    ("loud", libc::MS_SILENT, false),
    ("bind", libc::MS_BIND, true),
    ("rbind", libc::MS_BIND | libc::MS_REC, true),
];

/// Options only mount(8) and fstab read; the kernel never sees them.
const USERSPACE_OPTIONS: &[&str] = &[
    "defaults", "auto", "noauto", "user", "nouser", "users", "owner", "group", "_netdev", "nofail",
];

/// Options that need more than one mount(2) call or a loop device: name and why not.
const REFUSED_OPTIONS: &[(&str, &str)] = &[
    ("remount", "start mounts, it never remounts"),
    ("move", "start mounts, it never moves a mount"),
    ("loop", "set up the loop device first and give it as device"),
    ("shared", "propagation flags need a second mount call"),
    ("rshared", "propagation flags need a second mount call"),
    ("private", "propagation flags need a second mount call"),
    ("rprivate", "propagation flags need a second mount call"),
    ("slave", "propagation flags need a second mount call"),
    ("rslave", "propagation flags need a second mount call"),
    ("unbindable", "propagation flags need a second mount call"),
    ("runbindable", "propagation flags need a second mount call"),
];

/// Turns an fstab-style options string into mount(2) flags and data, as mount(8) does.
pub fn parse_mount_options(options: &str) -> Result<MountOptions, FilesystemParamError> {
    let mut parsed = MountOptions::default();
    for option in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let name = option.split('=').next().unwrap_or(option);
        if let Some((_, reason)) = REFUSED_OPTIONS.iter().find(|(n, _)| *n == name) {
            return Err(FilesystemParamError::UnsupportedOption {
                option: option.to_string(),
                reason,
            });
        }
        if let Some((_, bit, set)) = FLAG_OPTIONS.iter().find(|(n, ..)| *n == option) {
            if *set {
                parsed.flags |= bit;
            } else {
                parsed.flags &= !bit;
            }
        } else if USERSPACE_OPTIONS.contains(&option)
            || option.starts_with("x-")
            || option.starts_with("X-")
            || option.starts_with("comment=")
        {
            continue;
        } else {
            parsed.data.push(option.to_string());
        }
    }
    Ok(parsed)
}

/// The device as mount(2) wants it: `UUID=`, `LABEL=`, `PARTUUID=` and `PARTLABEL=` become
/// the udev links mount(8) would resolve them to.
pub fn resolve_device(device: &str) -> PathBuf {
    const TAGS: &[(&str, &str)] = &[
        ("UUID=", "/dev/disk/by-uuid"),
        ("LABEL=", "/dev/disk/by-label"),
        ("PARTUUID=", "/dev/disk/by-partuuid"),
        ("PARTLABEL=", "/dev/disk/by-partlabel"),
    ];
    TAGS.iter()
        .find_map(|(tag, dir)| device.strip_prefix(tag).map(|v| Path::new(dir).join(v)))
        .unwrap_or_else(|| PathBuf::from(device))
}

/// One line of /proc/self/mountinfo, the parts Filesystem reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted (escapes such as `\040` decoded).
    pub mount_point: PathBuf,
    /// The filesystem type (`ext4`, `tmpfs`).
    pub fstype: String,
    /// The mount source (`/dev/sdb1`, `tmpfs`).
    pub source: String,
}

/// Reads /proc/self/mountinfo. Lines that do not have its shape are skipped: the kernel
/// writes it, and one odd line must not hide the others.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let mount_point = before.split(' ').nth(4)?;
            let mut after = after.split(' ');
            let fstype = after.next()?;
            let source = after.next()?;
            Some(MountEntry {
                mount_point: PathBuf::from(unescape_mount_field(mount_point)),
                fstype: fstype.to_string(),
                source: unescape_mount_field(source),
            })
        })
        .collect()
}

/// Decodes the kernel's octal escapes (`\040` for a space, `\134` for a backslash).
fn unescape_mount_field(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .map(|d| d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0')));
        match octal.and_then(|v| u8::try_from(v).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What one mount(2) call is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRequest {
    /// The device or source (`/dev/sdb1`, `tmpfs`, the directory to bind).
    pub source: PathBuf,
    /// The mount point.
    pub target: PathBuf,
    /// The filesystem type.
    pub fstype: String,
    /// `MS_*` flags.
    pub flags: libc::c_ulong,
    /// Filesystem-specific options, comma-separated.
    pub data: String,
}

/// The system calls Filesystem needs that [`Host`] does not offer: the real one is
/// [`KernelMounts`]; tests give a fake that edits a mock host's mount table.
pub trait MountSystem: Send + Sync + fmt::Debug {
    /// The directory with symbolic links resolved when it exists (`readlink -f`), as the
    /// mount table shows it; as given otherwise.
    fn canonical_directory(&self, directory: &Path) -> PathBuf;
    /// Creates the mount point and its parents (`mkdir -p`).
    fn create_directory(&self, directory: &Path) -> io::Result<()>;
    /// mount(2).
    fn mount(&self, request: &MountRequest) -> io::Result<()>;
    /// umount2(2) without `MNT_DETACH`; `force` adds `MNT_FORCE` for network filesystems.
    fn unmount(&self, target: &Path, force: bool) -> io::Result<()>;
}

/// The kernel's mount(2) and umount2(2).
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelMounts;

/// A path as a C string; a path with a NUL byte cannot be mounted.
fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

impl MountSystem for KernelMounts {
    fn canonical_directory(&self, directory: &Path) -> PathBuf {
        fs::canonicalize(directory).unwrap_or_else(|_| directory.to_path_buf())
    }

    fn create_directory(&self, directory: &Path) -> io::Result<()> {
        fs::create_dir_all(directory)
    }

    fn mount(&self, request: &MountRequest) -> io::Result<()> {
        let source = c_path(&request.source)?;
        let target = c_path(&request.target)?;
        let fstype = CString::new(request.fstype.as_str())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "fstype contains NUL"))?;
        let data = CString::new(request.data.as_str())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "options contain NUL"))?;
        let data_ptr = if request.data.is_empty() {
            std::ptr::null()
        } else {
            data.as_ptr().cast::<libc::c_void>()
        };
        // SAFETY: every pointer is a NUL-terminated string (or null for no data) that lives
        // until the call returns; mount(2) only reads them.
        let rc = unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                request.flags,
                data_ptr,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn unmount(&self, target: &Path, force: bool) -> io::Result<()> {
        let target = c_path(target)?;
        let flags = libc::UMOUNT_NOFOLLOW | if force { libc::MNT_FORCE } else { 0 };
        // SAFETY: target is a NUL-terminated string that lives until the call returns.
        let rc = unsafe { libc::umount2(target.as_ptr(), flags) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// Filesystem's parameters, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FilesystemParams {
    /// The device as configured, for messages.
    device: String,
    /// The mount point as configured, trailing slashes removed.
    directory: PathBuf,
    /// The type, when given; otherwise the kernel's types are tried.
    fstype: Option<String>,
    /// The options, translated.
    options: MountOptions,
}

impl FilesystemParams {
    fn from_instance(instance: &ResourceInstance) -> Result<Self, FilesystemParamError> {
        let device = instance
            .param("device")
            .ok_or(FilesystemParamError::Missing { param: "device" })?
            .trim()
            .to_string();
        let raw_directory = instance
            .param("directory")
            .ok_or(FilesystemParamError::Missing { param: "directory" })?;
        let trimmed = raw_directory.trim().trim_end_matches('/');
        if !raw_directory.trim().starts_with('/') {
            return Err(FilesystemParamError::BadDirectory {
                value: raw_directory.to_string(),
                expected: "an absolute path",
            });
        }
        if trimmed.is_empty() {
            return Err(FilesystemParamError::BadDirectory {
                value: raw_directory.to_string(),
                expected: "a directory other than / (stopping it would unmount the root)",
            });
        }
        let fstype = instance
            .param("fstype")
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let options = parse_mount_options(instance.param("options").unwrap_or(""))?;
        Ok(FilesystemParams {
            device,
            directory: PathBuf::from(trimmed),
            fstype,
            options,
        })
    }
}

/// The Filesystem agent.
#[derive(Debug, Clone)]
pub struct Filesystem<M: MountSystem = KernelMounts> {
    /// How mounting and unmounting reach the system.
    mounts: M,
    /// The pause between two unmount attempts of a busy filesystem.
    retry_interval: Duration,
}

impl Default for Filesystem<KernelMounts> {
    fn default() -> Self {
        Self::with_mount_system(KernelMounts, UNMOUNT_RETRY_INTERVAL)
    }
}

impl<M: MountSystem> Filesystem<M> {
    /// A Filesystem agent over `mounts`, pausing `retry_interval` between unmount attempts.
    pub fn with_mount_system(mounts: M, retry_interval: Duration) -> Self {
        Filesystem {
            mounts,
            retry_interval,
        }
    }

    /// The parameters, or the outcome that reports why they are wrong.
    fn params(instance: &ResourceInstance) -> Result<FilesystemParams, OperationOutcome> {
        FilesystemParams::from_instance(instance)
            .map_err(|e| OperationOutcome::new(OcfStatus::ErrConfigured, e.to_string()))
    }

    /// The mount table, or the outcome that reports why it cannot be read.
    fn mount_table(host: &dyn Host) -> Result<Vec<MountEntry>, OperationOutcome> {
        host.read_file(Path::new(MOUNTINFO_PATH))
            .map(|bytes| parse_mountinfo(&String::from_utf8_lossy(&bytes)))
            .map_err(|e| {
                OperationOutcome::new(
                    OcfStatus::ErrGeneric,
                    format!("cannot read the mount table: {e}"),
                )
            })
    }

    /// The types to try: the one given, or every type the kernel can mount from a device.
    fn candidate_types(
        params: &FilesystemParams,
        host: &dyn Host,
    ) -> Result<Vec<String>, OperationOutcome> {
        if params.options.flags & libc::MS_BIND != 0 {
            return Ok(vec!["none".to_string()]);
        }
        if let Some(fstype) = &params.fstype {
            return Ok(vec![fstype.clone()]);
        }
        let listed = host
            .read_file(Path::new(PROC_FILESYSTEMS_PATH))
            .map_err(|e| {
                OperationOutcome::new(
                    OcfStatus::ErrConfigured,
                    format!("fstype is not set and the kernel's types cannot be read: {e}"),
                )
            })?;
        let types: Vec<String> = String::from_utf8_lossy(&listed)
            .lines()
            .filter(|line| !line.starts_with("nodev"))
            .map(|line| line.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        if types.is_empty() {
            return Err(OperationOutcome::new(
                OcfStatus::ErrConfigured,
                "fstype is not set and the kernel lists no device filesystem types",
            ));
        }
        Ok(types)
    }

    /// Mounts with the first type the kernel accepts; the last error when none does.
    fn mount_any(
        &self,
        params: &FilesystemParams,
        directory: &Path,
        types: &[String],
    ) -> Result<String, (String, io::Error)> {
        let mut last = None;
        for fstype in types {
            let request = MountRequest {
                source: resolve_device(&params.device),
                target: directory.to_path_buf(),
                fstype: fstype.clone(),
                flags: params.options.flags,
                data: params.options.data.join(","),
            };
            match self.mounts.mount(&request) {
                Ok(()) => return Ok(fstype.clone()),
                // Wrong type for this device: the next one may fit, as mount(8) tries them.
                Err(e)
                    if types.len() > 1
                        && matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENODEV)) =>
                {
                    last = Some((fstype.clone(), e));
                }
                Err(e) => return Err((fstype.clone(), e)),
            }
        }
        Err(last.unwrap_or_else(|| {
            (
                String::new(),
                io::Error::new(io::ErrorKind::InvalidInput, "no filesystem type to try"),
            )
        }))
    }

    /// The mounts at `directory` or below it, deepest and latest first: the order to
    /// unmount them in.
    fn mounts_at_or_below(table: &[MountEntry], directory: &Path) -> Vec<MountEntry> {
        let mut found: Vec<MountEntry> = table
            .iter()
            .filter(|m| m.mount_point.starts_with(directory))
            .cloned()
            .collect();
        found.reverse();
        found.sort_by_key(|m| std::cmp::Reverse(m.mount_point.components().count()));
        found
    }

    /// Unmounts one mount point, retrying while it is busy until `deadline`.
    fn unmount_with_retries(
        &self,
        entry: &MountEntry,
        deadline: Instant,
    ) -> Result<u32, (io::Error, u32)> {
        let force = NETWORK_FILESYSTEMS.contains(&entry.fstype.as_str());
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.mounts.unmount(&entry.mount_point, force) {
                Ok(()) => return Ok(attempts),
                // Already gone (unmounted by someone else in the meantime).
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT)) => {
                    return Ok(attempts);
                }
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                    thread::sleep(self.retry_interval);
                }
                Err(e) => return Err((e, attempts)),
            }
        }
    }
}

/// The status for a failed mount(2) call.
fn mount_failure_status(error: &io::Error) -> OcfStatus {
    match error.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => OcfStatus::ErrPerm,
        Some(libc::ENOENT | libc::ENODEV) => OcfStatus::ErrInstalled,
        Some(libc::ENOTBLK) => OcfStatus::ErrConfigured,
        _ => OcfStatus::ErrGeneric,
    }
}

impl<M: MountSystem> ResourceAgent for Filesystem<M> {
    fn metadata(&self) -> String {
        let mut unsupported = String::new();
        for (name, shortdesc, kind, default) in ACCEPTED_UNSUPPORTED {
            unsupported.push_str(&format!(
                r#"<parameter name="{name}">
<longdesc lang="en">resource-agents' {name}: accepted so that existing configurations load, not supported here.</longdesc>
<shortdesc lang="en">{shortdesc} (not supported)</shortdesc>
<content type="{kind}" default="{default}"/>
</parameter>
"#
            ));
        }
        format!(
            r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="Filesystem" version="1.0">
<version>1.0</version>
<longdesc lang="en">
Mounts a filesystem on a directory and unmounts it. Start succeeds at once when something is
already mounted on the directory; stop unmounts the directory and everything mounted below
it, retrying a busy filesystem for half the stop timeout, and fails rather than leave a
mount behind (it never detaches lazily, and it does not kill the processes that keep a
filesystem busy). In haresources: Filesystem::device::directory[::fstype[::options]].
</longdesc>
<shortdesc lang="en">Manages filesystem mounts</shortdesc>
<parameters>
<parameter name="device" required="1">
<longdesc lang="en">The device (/dev/sdb1, UUID=..., LABEL=...), the source of a network filesystem (server:/export), the directory to bind, or a name for a virtual filesystem (tmpfs).</longdesc>
<shortdesc lang="en">block device</shortdesc>
<content type="string" default=""/>
</parameter>
<parameter name="directory" required="1">
<longdesc lang="en">The mount point, an absolute path other than /; created when missing.</longdesc>
<shortdesc lang="en">mount point</shortdesc>
<content type="string" default=""/>
</parameter>
<parameter name="fstype" required="1">
<longdesc lang="en">The filesystem type (ext4, xfs, nfs, tmpfs). When empty, every device filesystem type the kernel lists is tried, as mount(8) does.</longdesc>
<shortdesc lang="en">filesystem type</shortdesc>
<content type="string" default=""/>
</parameter>
<parameter name="options">
<longdesc lang="en">
Mount options as in fstab (ro,noatime,size=64m). Flag options become mount flags, options
of mount(8) alone (noauto, _netdev, x-*) are ignored, the rest goes to the filesystem.
remount, move, loop and propagation options are refused.
</longdesc>
<shortdesc lang="en">mount options</shortdesc>
<content type="string" default=""/>
</parameter>
{unsupported}</parameters>
<actions>
<action name="start" timeout="60s"/>
<action name="stop" timeout="60s"/>
<action name="monitor" depth="0" timeout="40s" interval="20s"/>
<action name="validate-all" timeout="5s"/>
<action name="meta-data" timeout="5s"/>
</actions>
</resource-agent>
"#
        )
    }

    /// `Filesystem::device::directory[::fstype[::options]]`, as the resource.d wrapper reads it.
    fn positional_params(&self, args: &[String]) -> Result<BTreeMap<String, String>, String> {
        if !(2..=4).contains(&args.len()) {
            return Err(FilesystemParamError::Positional {
                arguments: args.join("::"),
                reason: "expected device::directory[::fstype[::options]]".into(),
            }
            .to_string());
        }
        Ok(["device", "directory", "fstype", "options"]
            .iter()
            .zip(args)
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect())
    }

    fn validate(&self, instance: &ResourceInstance, _host: &dyn Host) -> OperationOutcome {
        match Self::params(instance) {
            Ok(params) => OperationOutcome::success(format!(
                "{} on {}",
                params.device,
                params.directory.display()
            )),
            Err(outcome) => outcome,
        }
    }

    fn start(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        let params = match Self::params(instance) {
            Ok(params) => params,
            Err(outcome) => return outcome,
        };
        let directory = self.mounts.canonical_directory(&params.directory);
        let table = match Self::mount_table(host) {
            Ok(table) => table,
            Err(outcome) => return outcome,
        };
        if let Some(mounted) = table.iter().rev().find(|m| m.mount_point == directory) {
            return OperationOutcome::success(format!(
                "{} is already mounted ({} {})",
                directory.display(),
                mounted.fstype,
                mounted.source
            ));
        }
        if let Some(below) = table
            .iter()
            .find(|m| m.mount_point != directory && m.mount_point.starts_with(&directory))
        {
            return OperationOutcome::new(
                OcfStatus::ErrConfigured,
                format!(
                    "{} is mounted below {}: mounting over it would hide it",
                    below.mount_point.display(),
                    directory.display()
                ),
            );
        }
        let types = match Self::candidate_types(&params, host) {
            Ok(types) => types,
            Err(outcome) => return outcome,
        };
        if let Err(e) = self.mounts.create_directory(&directory) {
            return OperationOutcome::new(
                OcfStatus::ErrInstalled,
                format!("cannot create mount point {}: {e}", directory.display()),
            );
        }
        let fstype = match self.mount_any(&params, &directory, &types) {
            Ok(fstype) => fstype,
            Err((fstype, e)) => {
                return OperationOutcome::new(
                    mount_failure_status(&e),
                    format!(
                        "cannot mount {} ({fstype}) on {}: {e}",
                        params.device,
                        directory.display()
                    ),
                );
            }
        };
        match Self::mount_table(host) {
            Ok(table) if table.iter().any(|m| m.mount_point == directory) => {
                OperationOutcome::success(format!(
                    "{} ({fstype}) mounted on {}",
                    params.device,
                    directory.display()
                ))
            }
            Ok(_) => OperationOutcome::new(
                OcfStatus::ErrGeneric,
                format!(
                    "mount of {} on {} succeeded but the mount table does not show it",
                    params.device,
                    directory.display()
                ),
            ),
            Err(outcome) => outcome,
        }
    }

    fn stop(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        let params = match Self::params(instance) {
            Ok(params) => params,
            Err(outcome) => return outcome,
        };
        let directory = self.mounts.canonical_directory(&params.directory);
        let table = match Self::mount_table(host) {
            Ok(table) => table,
            Err(outcome) => return outcome,
        };
        let targets = Self::mounts_at_or_below(&table, &directory);
        if !targets.iter().any(|m| m.mount_point == directory) {
            return OperationOutcome::success(format!("{} is not mounted", directory.display()));
        }
        let deadline = Instant::now() + instance.timeout / 2;
        for target in &targets {
            if let Err((e, attempts)) = self.unmount_with_retries(target, deadline) {
                let status = if e.raw_os_error() == Some(libc::EPERM) {
                    OcfStatus::ErrPerm
                } else {
                    OcfStatus::ErrGeneric
                };
                return OperationOutcome::new(
                    status,
                    format!(
                        "cannot unmount {} after {attempts} attempt(s): {e}; it stays mounted \
                         (processes using it: fuser -vm {})",
                        target.mount_point.display(),
                        target.mount_point.display()
                    ),
                );
            }
        }
        match Self::mount_table(host) {
            Ok(table) => match table.iter().find(|m| m.mount_point.starts_with(&directory)) {
                Some(left) => OperationOutcome::new(
                    OcfStatus::ErrGeneric,
                    format!(
                        "{} is still mounted after unmounting",
                        left.mount_point.display()
                    ),
                ),
                None => OperationOutcome::success(format!(
                    "{} unmounted from {}",
                    params.device,
                    directory.display()
                )),
            },
            Err(outcome) => outcome,
        }
    }

    fn monitor(&self, instance: &ResourceInstance, host: &dyn Host) -> OperationOutcome {
        let params = match Self::params(instance) {
            Ok(params) => params,
            Err(outcome) => return outcome,
        };
        let directory = self.mounts.canonical_directory(&params.directory);
        match Self::mount_table(host) {
            Ok(table) => match table.iter().rev().find(|m| m.mount_point == directory) {
                Some(mounted) => OperationOutcome::success(format!(
                    "{} is mounted ({} {})",
                    directory.display(),
                    mounted.fstype,
                    mounted.source
                )),
                None => OperationOutcome::new(
                    OcfStatus::NotRunning,
                    format!("{} is not mounted", directory.display()),
                ),
            },
            Err(outcome) => outcome,
        }
    }
}

/// Registers Filesystem as a built-in agent over the kernel's mount calls.
pub fn register(registry: &mut Registry) {
    registry
        .add_agent(
            PluginInfo {
                kind: PluginKind::ResourceAgent,
                name: "Filesystem".to_string(),
                origin: PluginOrigin::BuiltIn,
                version: env!("CARGO_PKG_VERSION").to_string(),
                description: "mounts and unmounts a filesystem".to_string(),
            },
            Arc::new(Filesystem::default()),
        )
        .expect("built-in agent names are unique");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock_host::{MockCapability, MockHost, check_metadata};
    use std::sync::Mutex;
    use vigil_plugin_api::HostError;

    const ROOT_ONLY: &str = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n";

    /// A mount system that keeps a mock host's mount table, and can be told to stay busy.
    #[derive(Debug)]
    struct FakeMounts {
        /// The host whose /proc/self/mountinfo this fake keeps.
        host: Arc<MockHost>,
        /// The mountinfo lines, in mount order.
        table: Mutex<Vec<String>>,
        /// How many unmount attempts still fail with EBUSY.
        busy_for: Mutex<u32>,
        /// The errno a mount of each listed type fails with.
        refused_types: Vec<(String, i32)>,
        /// Every successful mount request.
        mounted: Mutex<Vec<MountRequest>>,
    }

    impl FakeMounts {
        fn new(host: Arc<MockHost>) -> Self {
            let fake = FakeMounts {
                host,
                table: Mutex::new(vec![ROOT_ONLY.trim_end().to_string()]),
                busy_for: Mutex::new(0),
                refused_types: Vec::new(),
                mounted: Mutex::new(Vec::new()),
            };
            fake.publish();
            fake
        }

        fn publish(&self) {
            let text = self.table.lock().unwrap().join("\n") + "\n";
            self.host.set_file(MOUNTINFO_PATH, text);
        }

        fn add_line(&self, mount_point: &str, fstype: &str, source: &str) {
            let id = self.table.lock().unwrap().len() + 22;
            self.table.lock().unwrap().push(format!(
                "{id} 22 0:{id} / {mount_point} rw,relatime - {fstype} {source} rw"
            ));
            self.publish();
        }
    }

    impl MountSystem for FakeMounts {
        fn canonical_directory(&self, directory: &Path) -> PathBuf {
            directory.to_path_buf()
        }

        fn create_directory(&self, _directory: &Path) -> io::Result<()> {
            Ok(())
        }

        fn mount(&self, request: &MountRequest) -> io::Result<()> {
            if let Some((_, errno)) = self
                .refused_types
                .iter()
                .find(|(t, _)| *t == request.fstype)
            {
                return Err(io::Error::from_raw_os_error(*errno));
            }
            self.mounted.lock().unwrap().push(request.clone());
            self.add_line(
                request.target.to_str().unwrap(),
                &request.fstype,
                request.source.to_str().unwrap(),
            );
            Ok(())
        }

        fn unmount(&self, target: &Path, _force: bool) -> io::Result<()> {
            let mut busy = self.busy_for.lock().unwrap();
            if *busy > 0 {
                *busy -= 1;
                return Err(io::Error::from_raw_os_error(libc::EBUSY));
            }
            let needle = format!(" {} ", target.display());
            let mut table = self.table.lock().unwrap();
            match table.iter().rposition(|line| {
                line.split(" - ")
                    .next()
                    .is_some_and(|head| head.contains(&needle))
            }) {
                Some(index) => {
                    table.remove(index);
                    drop(table);
                    self.publish();
                    Ok(())
                }
                None => Err(io::Error::from_raw_os_error(libc::EINVAL)),
            }
        }
    }

    fn instance(params: &[(&str, &str)]) -> ResourceInstance {
        ResourceInstance {
            name: "Filesystem_data".into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            timeout: Duration::from_secs(20),
            grants: Default::default(),
        }
    }

    fn agent() -> (Arc<MockHost>, Filesystem<Arc<FakeMounts>>, Arc<FakeMounts>) {
        let host = Arc::new(MockHost::new().with_file(
            PROC_FILESYSTEMS_PATH,
            "nodev\tsysfs\nnodev\ttmpfs\n\text3\n\text4\n\txfs\n",
        ));
        let mounts = Arc::new(FakeMounts::new(host.clone()));
        let agent = Filesystem::with_mount_system(mounts.clone(), Duration::ZERO);
        (host, agent, mounts)
    }

    impl MountSystem for Arc<FakeMounts> {
        fn canonical_directory(&self, directory: &Path) -> PathBuf {
            (**self).canonical_directory(directory)
        }
        fn create_directory(&self, directory: &Path) -> io::Result<()> {
            (**self).create_directory(directory)
        }
        fn mount(&self, request: &MountRequest) -> io::Result<()> {
            (**self).mount(request)
        }
        fn unmount(&self, target: &Path, force: bool) -> io::Result<()> {
            (**self).unmount(target, force)
        }
    }

    #[test]
    fn metadata_is_well_formed_and_lists_every_parameter() {
        let summary = check_metadata(&Filesystem::default().metadata()).unwrap();
        assert_eq!(summary.agent_name, "Filesystem");
        let expected: Vec<&str> = ["device", "directory", "fstype", "options"]
            .into_iter()
            .chain(ACCEPTED_UNSUPPORTED.iter().map(|(name, ..)| *name))
            .collect();
        assert_eq!(summary.parameters, expected);
    }

    #[test]
    fn options_become_flags_and_filesystem_data() {
        let parsed = parse_mount_options(
            "defaults,ro,noatime,nosuid,_netdev,x-systemd.automount,size=64m,mode=0755",
        )
        .unwrap();
        assert_eq!(
            parsed.flags,
            libc::MS_RDONLY | libc::MS_NOATIME | libc::MS_NOSUID
        );
        assert_eq!(parsed.data, ["size=64m", "mode=0755"]);
        assert_eq!(parse_mount_options("ro,rw").unwrap().flags, 0);
        assert_eq!(
            parse_mount_options("rbind").unwrap().flags,
            libc::MS_BIND | libc::MS_REC
        );
        let refused = parse_mount_options("loop,ro").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "parameter options: \"loop\" is not supported: set up the loop device first and \
             give it as device"
        );
    }

    #[test]
    fn mountinfo_is_read_with_escapes_and_odd_lines_skipped() {
        let table = parse_mountinfo(
            "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
             garbage\n\
             40 22 0:40 / /srv/my\\040data rw,nosuid - tmpfs tmpfs rw,size=1024k\n",
        );
        assert_eq!(table.len(), 2);
        assert_eq!(table[1].mount_point, PathBuf::from("/srv/my data"));
        assert_eq!(table[1].fstype, "tmpfs");
        assert_eq!(table[1].source, "tmpfs");
    }

    #[test]
    fn tagged_devices_resolve_to_udev_links() {
        assert_eq!(
            resolve_device("UUID=1234-abcd"),
            PathBuf::from("/dev/disk/by-uuid/1234-abcd")
        );
        assert_eq!(
            resolve_device("LABEL=data"),
            PathBuf::from("/dev/disk/by-label/data")
        );
        assert_eq!(resolve_device("/dev/sdb1"), PathBuf::from("/dev/sdb1"));
    }

    #[test]
    fn positional_arguments_fill_device_directory_fstype_and_options() {
        let fs = Filesystem::default();
        let args: Vec<String> = ["/dev/sdb1", "/data", "ext4", "noatime"]
            .map(String::from)
            .to_vec();
        let params = fs.positional_params(&args).unwrap();
        assert_eq!(params["device"], "/dev/sdb1");
        assert_eq!(params["directory"], "/data");
        assert_eq!(params["fstype"], "ext4");
        assert_eq!(params["options"], "noatime");
        let two = fs
            .positional_params(&["/dev/sdb1".into(), "/data".into()])
            .unwrap();
        assert!(!two.contains_key("fstype"));
        let err = fs.positional_params(&["/dev/sdb1".into()]).unwrap_err();
        assert!(
            err.contains("device::directory[::fstype[::options]]"),
            "{err}"
        );
    }

    #[test]
    fn bad_parameters_are_configuration_errors() {
        let (host, fs, _) = agent();
        let cases: [(&[(&str, &str)], &str); 4] = [
            (
                &[("directory", "/data")],
                "required parameter device is missing",
            ),
            (
                &[("device", "/dev/sdb1")],
                "required parameter directory is missing",
            ),
            (
                &[("device", "/dev/sdb1"), ("directory", "data")],
                "not an absolute path",
            ),
            (
                &[("device", "/dev/sdb1"), ("directory", "//")],
                "other than /",
            ),
        ];
        for (params, expected) in cases {
            let outcome = fs.validate(&instance(params), host.as_ref());
            assert_eq!(outcome.status, OcfStatus::ErrConfigured);
            assert!(outcome.message.contains(expected), "{}", outcome.message);
        }
    }

    #[test]
    fn start_mounts_once_and_stop_unmounts_once() {
        let (host, fs, mounts) = agent();
        let data = instance(&[
            ("device", "tmpfs"),
            ("directory", "/srv/data/"),
            ("fstype", "tmpfs"),
            ("options", "size=1m,noexec"),
        ]);
        let host = host.as_ref();
        assert_eq!(fs.monitor(&data, host).status, OcfStatus::NotRunning);
        assert_eq!(fs.stop(&data, host).status, OcfStatus::Success);
        let started = fs.start(&data, host);
        assert_eq!(started.status, OcfStatus::Success, "{}", started.message);
        let requests = mounts.mounted.lock().unwrap().clone();
        assert_eq!(
            requests,
            [MountRequest {
                source: "tmpfs".into(),
                target: "/srv/data".into(),
                fstype: "tmpfs".into(),
                flags: libc::MS_NOEXEC,
                data: "size=1m".into(),
            }]
        );
        assert_eq!(fs.start(&data, host).status, OcfStatus::Success);
        assert_eq!(mounts.mounted.lock().unwrap().len(), 1);
        assert_eq!(fs.monitor(&data, host).status, OcfStatus::Success);
        assert_eq!(fs.stop(&data, host).status, OcfStatus::Success);
        assert_eq!(fs.monitor(&data, host).status, OcfStatus::NotRunning);
        assert_eq!(fs.stop(&data, host).status, OcfStatus::Success);
    }

    #[test]
    fn without_fstype_the_kernels_device_types_are_tried_in_order() {
        let host = Arc::new(MockHost::new().with_file(
            PROC_FILESYSTEMS_PATH,
            "nodev\ttmpfs\n\text3\n\text4\n\txfs\n",
        ));
        let mut fake = FakeMounts::new(host.clone());
        fake.refused_types = vec![("ext3".into(), libc::EINVAL)];
        let mounts = Arc::new(fake);
        let fs = Filesystem::with_mount_system(mounts.clone(), Duration::ZERO);
        let data = instance(&[("device", "/dev/sdb1"), ("directory", "/data")]);
        let started = fs.start(&data, host.as_ref());
        assert_eq!(started.status, OcfStatus::Success, "{}", started.message);
        assert_eq!(mounts.mounted.lock().unwrap()[0].fstype, "ext4");
    }

    #[test]
    fn a_missing_device_is_not_installed() {
        let host = Arc::new(MockHost::new());
        let mut fake = FakeMounts::new(host.clone());
        fake.refused_types = vec![("ext4".into(), libc::ENOENT)];
        let fs = Filesystem::with_mount_system(Arc::new(fake), Duration::ZERO);
        let outcome = fs.start(
            &instance(&[
                ("device", "/dev/nothing"),
                ("directory", "/data"),
                ("fstype", "ext4"),
            ]),
            host.as_ref(),
        );
        assert_eq!(outcome.status, OcfStatus::ErrInstalled);
        assert!(
            outcome
                .message
                .starts_with("cannot mount /dev/nothing (ext4) on /data"),
            "{}",
            outcome.message
        );
    }

    #[test]
    fn a_busy_filesystem_is_retried_then_unmounted() {
        let (host, fs, mounts) = agent();
        let data = instance(&[
            ("device", "tmpfs"),
            ("directory", "/data"),
            ("fstype", "tmpfs"),
        ]);
        assert_eq!(fs.start(&data, host.as_ref()).status, OcfStatus::Success);
        *mounts.busy_for.lock().unwrap() = 3;
        let stopped = fs.stop(&data, host.as_ref());
        assert_eq!(stopped.status, OcfStatus::Success, "{}", stopped.message);
        assert_eq!(
            fs.monitor(&data, host.as_ref()).status,
            OcfStatus::NotRunning
        );
    }

    #[test]
    fn a_filesystem_that_stays_busy_fails_stop_and_stays_mounted() {
        let (host, fs, mounts) = agent();
        let mut data = instance(&[
            ("device", "tmpfs"),
            ("directory", "/data"),
            ("fstype", "tmpfs"),
        ]);
        data.timeout = Duration::ZERO;
        assert_eq!(fs.start(&data, host.as_ref()).status, OcfStatus::Success);
        *mounts.busy_for.lock().unwrap() = u32::MAX;
        let stopped = fs.stop(&data, host.as_ref());
        assert_eq!(stopped.status, OcfStatus::ErrGeneric);
        assert!(
            stopped.message.contains("stays mounted"),
            "{}",
            stopped.message
        );
        assert_eq!(fs.monitor(&data, host.as_ref()).status, OcfStatus::Success);
    }

    #[test]
    fn stop_unmounts_what_is_mounted_below_first() {
        let (host, fs, mounts) = agent();
        let data = instance(&[
            ("device", "tmpfs"),
            ("directory", "/data"),
            ("fstype", "tmpfs"),
        ]);
        assert_eq!(fs.start(&data, host.as_ref()).status, OcfStatus::Success);
        mounts.add_line("/data/inner", "tmpfs", "tmpfs");
        assert_eq!(fs.stop(&data, host.as_ref()).status, OcfStatus::Success);
        let left = parse_mountinfo(
            &String::from_utf8(host.read_file(Path::new(MOUNTINFO_PATH)).unwrap()).unwrap(),
        );
        assert_eq!(left.len(), 1, "{left:?}");
    }

    #[test]
    fn start_refuses_to_hide_a_mount_below_the_directory() {
        let (host, fs, mounts) = agent();
        mounts.add_line("/data/inner", "tmpfs", "tmpfs");
        let data = instance(&[
            ("device", "tmpfs"),
            ("directory", "/data"),
            ("fstype", "tmpfs"),
        ]);
        let outcome = fs.start(&data, host.as_ref());
        assert_eq!(outcome.status, OcfStatus::ErrConfigured);
        assert!(
            outcome
                .message
                .contains("/data/inner is mounted below /data")
        );
    }

    #[test]
    fn an_unreadable_mount_table_is_a_monitor_failure() {
        let (host, fs, _) = agent();
        host.refuse(
            MockCapability::ReadFile,
            HostError::NotGranted {
                capability: "read_file".into(),
            },
        );
        let data = instance(&[
            ("device", "tmpfs"),
            ("directory", "/data"),
            ("fstype", "tmpfs"),
        ]);
        let outcome = fs.monitor(&data, host.as_ref());
        assert_eq!(outcome.status, OcfStatus::ErrGeneric);
        assert!(outcome.message.contains("cannot read the mount table"));
    }

    #[test]
    fn register_adds_filesystem_as_a_built_in_agent() {
        let mut registry = Registry::new();
        register(&mut registry);
        assert_eq!(
            registry.agent("Filesystem").unwrap().info.origin,
            PluginOrigin::BuiltIn
        );
    }
}
