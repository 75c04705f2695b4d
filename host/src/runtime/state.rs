//! The node's persistent identity: the generation file and the UUID file in the state
//! directory (Heartbeat's `hb_generation` and `hb_uuid`, spec §1.9 and §12).
//!
//! Owns reading and writing those two files at start-up, before anything is sent. It must
//! not be called from the core loop: these writes are synchronous by design.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::config::GenerationMethod;

/// Length of `hb_generation`: the decimal number right-justified in 15 columns, then `\n`.
const GENERATION_FILE_LEN: usize = 16;

/// A state file could not be read or written.
#[derive(Debug, Error)]
pub enum StateError {
    #[error("cannot create state directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot write {path}: {source} (the generation must be saved before any packet is sent)"
    )]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path} holds {len} bytes; a node UUID is exactly 16 (remove the file to make a new one)"
    )]
    BadUuid { path: PathBuf, len: usize },
    #[error("cannot get random bytes for a new node UUID: {0}")]
    Random(#[source] io::Error),
}

/// Computes and persists this run's generation. Peers use it to tell a restart from a replay,
/// so it must grow across runs and be on disk before the first packet leaves.
pub fn next_generation(
    state_dir: &Path,
    method: GenerationMethod,
    unix_now: u64,
) -> Result<u64, StateError> {
    if method == GenerationMethod::Time {
        return Ok(unix_now);
    }
    ensure_dir(state_dir)?;
    let path = state_dir.join("hb_generation");
    let generation = match fs::read(&path) {
        Ok(bytes) => parse_generation(&bytes).map_or(1, |g| g.saturating_add(1)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => unix_now.saturating_add(1),
        Err(source) => return Err(StateError::Read { path, source }),
    };
    let text = format!("{generation:>15}\n");
    debug_assert_eq!(text.len(), GENERATION_FILE_LEN);
    write_synced(&path, text.as_bytes(), 0o644)?;
    Ok(generation)
}

/// The number in a generation file, or `None` when it is not one (Heartbeat then uses 0).
fn parse_generation(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// Reads the node's UUID, creating a random one the first time. Peers map our name to it
/// (`srcuuid`), so it must survive restarts and upgrades from Heartbeat.
pub fn node_uuid(state_dir: &Path) -> Result<[u8; 16], StateError> {
    ensure_dir(state_dir)?;
    let path = state_dir.join("hb_uuid");
    match File::open(&path) {
        Ok(mut file) => {
            let mut bytes = Vec::with_capacity(16);
            file.read_to_end(&mut bytes)
                .map_err(|source| StateError::Read {
                    path: path.clone(),
                    source,
                })?;
            <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| StateError::BadUuid {
                path,
                len: bytes.len(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let uuid = random_uuid()?;
            write_synced(&path, &uuid, 0o644)?;
            Ok(uuid)
        }
        Err(source) => Err(StateError::Read { path, source }),
    }
}

/// Random bytes for seeds and UUIDs, from the kernel.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], StateError> {
    let mut out = [0u8; N];
    let mut filled = 0;
    while filled < N {
        // SAFETY: the pointer and length describe the unfilled tail of `out`.
        let got = unsafe { libc::getrandom(out[filled..].as_mut_ptr().cast(), N - filled, 0) };
        if got < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(StateError::Random(err));
        }
        filled += got as usize;
    }
    Ok(out)
}

/// A random version-4 UUID.
fn random_uuid() -> Result<[u8; 16], StateError> {
    let mut uuid = random_bytes::<16>()?;
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    Ok(uuid)
}

fn ensure_dir(dir: &Path) -> Result<(), StateError> {
    fs::create_dir_all(dir).map_err(|source| StateError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes a file through a temporary name, fsyncs it and renames it into place, so a crash
/// leaves either the old or the new content, never a torn one.
fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    result.map_err(|source| StateError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vigil-state-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn first_generation_is_time_plus_one_then_grows_by_one() {
        let dir = temp_dir("gen");
        assert_eq!(
            next_generation(&dir, GenerationMethod::File, 1000).unwrap(),
            1001
        );
        assert_eq!(
            next_generation(&dir, GenerationMethod::File, 5).unwrap(),
            1002
        );
        let text = fs::read_to_string(dir.join("hb_generation")).unwrap();
        assert_eq!(text, "           1002\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unparsable_generation_file_restarts_at_one() {
        let dir = temp_dir("genbad");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("hb_generation"), b"garbage").unwrap();
        assert_eq!(
            next_generation(&dir, GenerationMethod::File, 1000).unwrap(),
            1
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn heartbeat_generation_file_is_read() {
        let dir = temp_dir("genhb");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("hb_generation"), b"     1795329951\n").unwrap();
        assert_eq!(
            next_generation(&dir, GenerationMethod::File, 7).unwrap(),
            1795329952
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn uuid_is_created_once_and_kept() {
        let dir = temp_dir("uuid");
        let first = node_uuid(&dir).unwrap();
        assert_eq!(node_uuid(&dir).unwrap(), first);
        fs::write(dir.join("hb_uuid"), b"short").unwrap();
        assert!(matches!(
            node_uuid(&dir),
            Err(StateError::BadUuid { len: 5, .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
