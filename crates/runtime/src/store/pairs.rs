//! The paired devices (`paired.json`): their long-term keys, changed under a lock.

use super::*;

/// A paired device: its long-term Ed25519 key, learnt in a BIND.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairedDevice {
    pub device_id: String,
    /// 64 hex characters.
    pub public_key: String,
    /// Unix seconds.
    pub paired_at: u64,
}

impl PairedDevice {
    /// `key` when the device id is derived from its key (a softbus device),
    /// `claimed` when not (a softbus_lite device's random id: a pairing
    /// filed first under it is kept, but proves nothing about the id).
    pub fn id_proof(&self) -> &'static str {
        let c = softbus_crypto::OpenSslCrypto::new();
        match parse_key(&self.public_key) {
            Some(k) if softbus_bus::auth::hichain::id_is_derived(&c, &self.device_id, &k) => "key",
            _ => "claimed",
        }
    }
}

/// Hex digits a device-id prefix needs at least.
pub const MIN_ID_PREFIX: usize = 8;

/// Why a device given on the command line names no one device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceQueryError {
    #[error("{0:?} is not a device id or a prefix of one ({MIN_ID_PREFIX} to 64 hex digits)")]
    NotAnId(String),
    #[error("no paired device's id starts with {0}")]
    Unknown(String),
    #[error("{prefix} is the start of {} paired devices' ids: {}; give more digits", .ids.len(), .ids.join(", "))]
    Ambiguous { prefix: String, ids: Vec<String> },
}

/// The one id among `ids` that `query` names: the id itself or a unique
/// prefix of at least [`MIN_ID_PREFIX`] hex digits (case ignored).
pub fn resolve_device_id(query: &str, ids: &[String]) -> Result<String, DeviceQueryError> {
    let q = query.trim();
    if q.len() < MIN_ID_PREFIX || q.len() > 64 || !q.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DeviceQueryError::NotAnId(query.to_owned()));
    }
    let q = q.to_ascii_uppercase();
    let mut hits: Vec<String> = ids
        .iter()
        .filter(|id| id.to_ascii_uppercase().starts_with(&q))
        .cloned()
        .collect();
    hits.sort();
    hits.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    match hits.len() {
        0 => Err(DeviceQueryError::Unknown(q)),
        1 => Ok(hits.remove(0)),
        _ => Err(DeviceQueryError::Ambiguous {
            prefix: q,
            ids: hits,
        }),
    }
}

/// Most paired devices kept.
pub const MAX_PAIRED: usize = 256;

#[derive(Serialize, Deserialize)]
struct StoredPairs {
    version: u32,
    devices: Vec<PairedDevice>,
}

/// How long a change of the pairings waits for another process's change.
pub const PAIRS_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// `<dir>/paired.json`: the paired devices. Small and rarely written, so each
/// change rewrites it at once (atomically, under `paired.lock`) and every
/// reader re-reads it: the node picks up a `softbus unpair` made while it runs.
#[derive(Debug)]
pub struct PairStore {
    path: PathBuf,
}

impl PairStore {
    /// The store of `dir` (created on first write).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        private_dir(dir)?;
        let s = Self {
            path: dir.join("paired.json"),
        };
        s.load()?;
        Ok(s)
    }

    /// Where it lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The paired devices on disk. A corrupt or oversized file is an error
    /// that names it.
    pub fn load(&self) -> Result<Vec<PairedDevice>, StoreError> {
        let path = &self.path;
        match std::fs::metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_at(path)(e)),
            Ok(m) if m.len() > MAX_STORE_BYTES => Err(StoreError::TooLarge {
                size: m.len(),
                max: MAX_STORE_BYTES,
                path: path.clone(),
            }),
            Ok(_) => {
                let b = std::fs::read(path).map_err(io_at(path))?;
                let what = |w: String| StoreError::CorruptTrust {
                    path: path.clone(),
                    what: w,
                };
                let s: StoredPairs = serde_json::from_slice(&b).map_err(|e| what(e.to_string()))?;
                if s.version != STORE_VERSION {
                    return Err(what(format!(
                        "version {} (this softbus reads {STORE_VERSION})",
                        s.version
                    )));
                }
                for d in &s.devices {
                    if parse_key(&d.public_key).is_none() {
                        return Err(what(format!("bad key for {}", d.device_id)));
                    }
                }
                Ok(s.devices)
            }
        }
    }

    fn save(&self, devices: Vec<PairedDevice>) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(&StoredPairs {
            version: STORE_VERSION,
            devices,
        })
        .map_err(io::Error::other)?;
        write_atomic(&self.path, &bytes)
    }

    /// An exclusive lock on `paired.lock` beside the file for one
    /// read-modify-write: the node and `softbus pair`/`unpair` (other
    /// processes) change the file, and without it one rewrite could undo
    /// another (an unpair that exits 0 while the device stays paired). Waits
    /// at most [`PAIRS_LOCK_WAIT`]; the holders keep it for one small write.
    fn lock(&self) -> Result<std::fs::File, StoreError> {
        let path = self.path.with_file_name("paired.lock");
        lock_file(&path, PAIRS_LOCK_WAIT)?.map_err(|_| {
            io_at(&path)(io::Error::new(
                io::ErrorKind::TimedOut,
                "another process holds the pairings for too long",
            ))
        })
    }

    /// Records a pairing (replacing an older key of the same device; ids
    /// match without regard to case, as [`PairStore::remove`] matches them).
    pub fn add(&self, device_id: &str, public_key: &[u8; 32], now: u64) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        let mut devices = self.load()?;
        devices.retain(|d| !d.device_id.eq_ignore_ascii_case(device_id));
        if devices.len() >= MAX_PAIRED {
            return Err(StoreError::Io {
                path: self.path.clone(),
                source: io::Error::other(format!(
                    "{MAX_PAIRED} devices are paired already; unpair one first"
                )),
            });
        }
        devices.insert(
            0,
            PairedDevice {
                device_id: device_id.to_owned(),
                public_key: hex::encode(public_key),
                paired_at: now,
            },
        );
        self.save(devices).map_err(io_at(&self.path))
    }

    /// Forgets a device; false if it was not paired.
    pub fn remove(&self, device_id: &str) -> Result<bool, StoreError> {
        let _lock = self.lock()?;
        let mut devices = self.load()?;
        let before = devices.len();
        devices.retain(|d| !d.device_id.eq_ignore_ascii_case(device_id));
        if devices.len() == before {
            return Ok(false);
        }
        self.save(devices).map_err(io_at(&self.path))?;
        Ok(true)
    }

    /// The pairings as the engine takes them.
    pub fn pairings(&self) -> Result<softbus_bus::auth::hichain::Pairings, StoreError> {
        Ok(engine_pairings(&self.load()?))
    }

    /// The file's modification time, to notice changes made by another process.
    pub fn stamp(&self) -> Option<std::time::SystemTime> {
        std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
    }
}

/// Paired devices as the engine takes them: device id → key.
pub fn engine_pairings(devices: &[PairedDevice]) -> softbus_bus::auth::hichain::Pairings {
    devices
        .iter()
        .filter_map(|d| Some((d.device_id.clone(), parse_key(&d.public_key)?)))
        .collect()
}

fn parse_key(h: &str) -> Option<[u8; 32]> {
    let mut k = [0u8; 32];
    hex::decode_to_slice(h, &mut k).ok().map(|()| k)
}
