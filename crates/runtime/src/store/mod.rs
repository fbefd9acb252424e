//! What a node keeps on disk: its device id and the devices it has verified.

use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

mod pairs;
mod trust;

pub use pairs::*;
pub use trust::*;

/// Most trusted devices remembered; the least recently seen are forgotten first.
pub const MAX_TRUSTED: usize = 1024;

/// Largest trust store loaded (1024 devices take about 300 KB).
pub const MAX_STORE_BYTES: u64 = 1 << 20;
/// The trust store's format version.
pub const STORE_VERSION: u32 = 1;

/// Why the node's files cannot be used: each names the file and what to do.
/// A node never replaces an identity or a store it cannot read without a word.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: not a device id ({what}); to start over with a new identity (paired devices must pair again), run the node with --reset-identity", path.display())]
    CorruptIdentity { path: PathBuf, what: &'static str },
    #[error("{}: not a readable trust store ({what}); move it away, or run the node with --reset-identity to start over", path.display())]
    CorruptTrust { path: PathBuf, what: String },
    #[error("{}: {size} bytes, over the {max}-byte limit of a trust store; move it away, or run the node with --reset-identity to start over", path.display())]
    TooLarge { path: PathBuf, size: u64, max: u64 },
    /// Another node (or C-API process) runs on this data directory.
    #[error("data dir {} is in use by another softbus node ({}); stop it, or give this one another --data-dir", dir.display(), holder.map_or_else(|| "its process id unknown".to_owned(), |p| format!("process {p}")))]
    InUse { dir: PathBuf, holder: Option<u32> },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Creates `dir` if needed and makes it private (0700).
fn private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(io_at(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_at(dir))
}

/// The lock a node holds on its data directory for as long as it runs: two
/// nodes on one directory would share one device id, identity key and web
/// token, and rewrite each other's trust store. An advisory exclusive lock on
/// `<dir>/node.lock` (released by the kernel when the process ends, however it
/// ends), holding the owner's process id for the refusal's words.
#[derive(Debug)]
pub struct DirLock {
    _file: std::fs::File,
}

/// Opens (or makes) the lock file `path` and takes its exclusive advisory
/// lock, trying for at most `wait`: the file locked, or `Err(file)` while
/// another open of it holds the lock.
fn lock_file(
    path: &Path,
    wait: std::time::Duration,
) -> Result<Result<std::fs::File, std::fs::File>, StoreError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_at(path))?;
    let until = std::time::Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Ok(file)),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < until => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Ok(Err(file)),
            Err(std::fs::TryLockError::Error(e)) => return Err(io_at(path)(e)),
        }
    }
}

impl DirLock {
    /// Takes the lock, or says which process holds it.
    pub fn acquire(dir: &Path) -> Result<Self, StoreError> {
        use std::io::{Read, Seek, Write};
        private_dir(dir)?;
        let path = dir.join("node.lock");
        let mut file = match lock_file(&path, std::time::Duration::ZERO)? {
            Ok(file) => file,
            Err(held) => {
                let mut text = String::new();
                let _ = held.take(16).read_to_string(&mut text);
                return Err(StoreError::InUse {
                    dir: dir.to_owned(),
                    holder: text.trim().parse().ok(),
                });
            }
        };
        file.set_len(0).map_err(io_at(&path))?;
        file.rewind().map_err(io_at(&path))?;
        writeln!(file, "{}", std::process::id()).map_err(io_at(&path))?;
        Ok(Self { _file: file })
    }
}

/// Where a node keeps its files unless told otherwise: the user's data
/// directory (`~/.local/share/softbus`), or the temporary one without it.
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("softbus")
}

/// A device's own identity: its id and its long-term Ed25519 key.
pub struct OwnIdentity {
    pub device_id: String,
    pub key: zeroize::Zeroizing<[u8; 32]>,
    /// Whether the id is derived from the key (`hichain::key_id`), as every id
    /// made since issue 17 is; an older one is kept (peers know it) but is
    /// shown to them as claimed.
    pub derived: bool,
}

impl std::fmt::Debug for OwnIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnIdentity")
            .field("device_id", &self.device_id)
            .field("derived", &self.derived)
            .finish_non_exhaustive()
    }
}

/// Loads (or makes) `<dir>/identity.key` and then `<dir>/deviceid`, the id
/// derived from the key's public half when there is none yet.
pub fn load_or_create_identity(
    dir: &Path,
    random: impl FnOnce(&mut [u8]),
) -> Result<OwnIdentity, StoreError> {
    use softbus_bus::crypto::Crypto;
    let key = load_or_create_identity_key(dir, random)?;
    let c = softbus_crypto::OpenSslCrypto::new();
    let corrupt = |what| StoreError::CorruptIdentity {
        path: dir.join("identity.key"),
        what,
    };
    let public = c
        .ed25519_public(&key)
        .map_err(|_| corrupt("not an Ed25519 key"))?;
    let derived_id = softbus_bus::auth::hichain::key_id(&c, &public)
        .map_err(|_| corrupt("no SHA-256 for its id"))?;
    let device_id = load_or_create_device_id(dir, || derived_id.clone())?;
    Ok(OwnIdentity {
        derived: device_id == derived_id,
        device_id,
        key,
    })
}

/// Loads `<dir>/deviceid` (64 hex characters), or writes `new_id()` there when
/// there is none. One that cannot be read is an error, never silently replaced.
pub fn load_or_create_device_id(
    dir: &Path,
    new_id: impl FnOnce() -> String,
) -> Result<String, StoreError> {
    private_dir(dir)?;
    let path = dir.join("deviceid");
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let id = new_id();
            write_atomic(&path, id.as_bytes()).map_err(io_at(&path))?;
            Ok(id)
        }
        Err(e) => Err(io_at(&path)(e)),
        Ok(m) if !m.is_file() => Err(StoreError::CorruptIdentity {
            path,
            what: "not a file",
        }),
        Ok(m) if m.len() > 256 => Err(StoreError::CorruptIdentity {
            path,
            what: "too large",
        }),
        Ok(_) => {
            let s = std::fs::read_to_string(&path).map_err(io_at(&path))?;
            let s = s.trim();
            if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(s.to_ascii_uppercase())
            } else {
                Err(StoreError::CorruptIdentity {
                    path,
                    what: "not 64 hex characters",
                })
            }
        }
    }
}

/// Loads `<dir>/identity.key` (the Ed25519 private key, 64 hex characters,
/// 0600), or makes one from `random` on first start. One that cannot be read
/// is an error that names it, never silently replaced: paired devices know
/// this key.
pub fn load_or_create_identity_key(
    dir: &Path,
    random: impl FnOnce(&mut [u8]),
) -> Result<zeroize::Zeroizing<[u8; 32]>, StoreError> {
    private_dir(dir)?;
    let path = dir.join("identity.key");
    let corrupt = |path: PathBuf, what| StoreError::CorruptIdentity { path, what };
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut k = zeroize::Zeroizing::new([0u8; 32]);
            random(&mut k[..]);
            let text = zeroize::Zeroizing::new(hex::encode(&k[..]));
            write_atomic(&path, text.as_bytes()).map_err(io_at(&path))?;
            Ok(k)
        }
        Err(e) => Err(io_at(&path)(e)),
        Ok(m) if !m.is_file() => Err(corrupt(path, "not a file")),
        Ok(m) if m.len() > 256 => Err(corrupt(path, "too large")),
        Ok(_) => {
            let text =
                zeroize::Zeroizing::new(std::fs::read_to_string(&path).map_err(io_at(&path))?);
            let mut k = zeroize::Zeroizing::new([0u8; 32]);
            match hex::decode_to_slice(text.trim(), &mut k[..]) {
                Ok(()) => Ok(k),
                Err(_) => Err(corrupt(path, "not a 32-byte key in hex")),
            }
        }
    }
}

/// Loads `<dir>/web-token` (0600), or makes one of 32 random bytes (hex, 256
/// bits) on first start. One that cannot be read is an error that names it.
pub fn load_or_create_web_token(
    dir: &Path,
    random: impl FnOnce(&mut [u8]),
) -> Result<zeroize::Zeroizing<String>, StoreError> {
    private_dir(dir)?;
    let path = dir.join("web-token");
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut k = zeroize::Zeroizing::new([0u8; 32]);
            random(&mut k[..]);
            let t = zeroize::Zeroizing::new(hex::encode(&k[..]));
            write_atomic(&path, t.as_bytes()).map_err(io_at(&path))?;
            Ok(t)
        }
        Err(e) => Err(io_at(&path)(e)),
        Ok(m) if !m.is_file() || m.len() > 1024 => Err(StoreError::CorruptTrust {
            path,
            what: "not a web token file".into(),
        }),
        Ok(_) => {
            let t = std::fs::read_to_string(&path).map_err(io_at(&path))?;
            Ok(zeroize::Zeroizing::new(t.trim().to_owned()))
        }
    }
}

/// `--reset-identity`: removes the device id, the long-term key, the pairings
/// and the trust store of `dir`, so the next start makes a new identity. Peers
/// must pair again.
pub fn reset_identity(dir: &Path) -> Result<(), StoreError> {
    // Never under a running node's feet.
    let _lock = DirLock::acquire(dir)?;
    for name in [
        "deviceid",
        "trusted.json",
        "deviceid.tmp",
        "trusted.tmp",
        "identity.key",
        "identity.tmp",
        "paired.json",
        "paired.tmp",
        "web-token",
        "web-token.tmp",
    ] {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_at(&path)(e)),
            _ => {}
        }
    }
    Ok(())
}

/// Writes `path` so that a crash at any point leaves the old or the new
/// contents: a private temporary file, written and synced, renamed over
/// `path`, and the directory synced.
fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
