//! The trust store (`trusted.json`): the devices that completed key agreement
//! and VerifyIp, and the writer that keeps it off the engine's thread.

use super::*;

/// A device that completed key agreement and VerifyIp with this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedDevice {
    pub device_id: String,
    pub name: String,
    pub device_type: String,
    pub ip: String,
    /// Unix seconds.
    pub first_seen: u64,
    pub last_seen: u64,
}

/// Records a verification in a list, most recent first, at most [`MAX_TRUSTED`].
fn upsert(
    devices: &mut Vec<TrustedDevice>,
    device_id: &str,
    name: &str,
    device_type: &str,
    ip: &str,
    now: u64,
) -> bool {
    let (first_seen, added) = match devices.iter().position(|d| d.device_id == device_id) {
        Some(i) => (devices.remove(i).first_seen, false),
        None => (now, true),
    };
    devices.insert(
        0,
        TrustedDevice {
            device_id: device_id.into(),
            name: name.into(),
            device_type: device_type.into(),
            ip: ip.into(),
            first_seen,
            last_seen: now,
        },
    );
    devices.truncate(MAX_TRUSTED);
    added
}

/// The file's form: a version and the devices.
#[derive(Serialize, Deserialize)]
struct Stored {
    version: u32,
    devices: Vec<TrustedDevice>,
}

/// `<dir>/trusted.json`, rewritten on every change.
#[derive(Debug)]
pub struct TrustStore {
    path: PathBuf,
    devices: Vec<TrustedDevice>,
}

impl TrustStore {
    /// Opens (or starts) the store. One that cannot be read (corrupt, too
    /// large, not a file) is an error that names it; nothing is set aside or
    /// replaced silently. The first format (a bare list) is read too.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        private_dir(dir)?;
        let path = dir.join("trusted.json");
        let devices = match std::fs::metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_at(&path)(e)),
            Ok(m) if m.len() > MAX_STORE_BYTES => {
                return Err(StoreError::TooLarge {
                    size: m.len(),
                    max: MAX_STORE_BYTES,
                    path,
                })
            }
            Ok(_) => {
                let b = std::fs::read(&path).map_err(io_at(&path))?;
                match serde_json::from_slice::<Stored>(&b) {
                    Ok(s) if s.version == STORE_VERSION => s.devices,
                    Ok(s) => {
                        return Err(StoreError::CorruptTrust {
                            path,
                            what: format!(
                                "version {} (this softbus reads {STORE_VERSION})",
                                s.version
                            ),
                        })
                    }
                    Err(e) => match serde_json::from_slice::<Vec<TrustedDevice>>(&b) {
                        Ok(legacy) => legacy,
                        Err(_) => {
                            return Err(StoreError::CorruptTrust {
                                path,
                                what: e.to_string(),
                            })
                        }
                    },
                }
            }
        };
        let mut devices = devices;
        devices.truncate(MAX_TRUSTED);
        Ok(Self { path, devices })
    }

    /// Trusted devices, most recently seen first.
    pub fn devices(&self) -> &[TrustedDevice] {
        &self.devices
    }

    /// Records a verification.
    pub fn record(
        &mut self,
        device_id: &str,
        name: &str,
        device_type: &str,
        ip: &str,
        now: u64,
    ) -> io::Result<()> {
        upsert(&mut self.devices, device_id, name, device_type, ip, now);
        let stored = Stored {
            version: STORE_VERSION,
            devices: std::mem::take(&mut self.devices),
        };
        let bytes = serde_json::to_vec_pretty(&stored).map_err(io::Error::other);
        self.devices = stored.devices;
        write_atomic(&self.path, &bytes?)
    }
}
/// A trust store on a thread of its own, so a slow disk never stalls the node's
/// engine task: records go in through a bounded queue (when it is full the record
/// is dropped with a warning; the device is recorded again at its next
/// verification), and the list is read from a shared copy.
#[derive(Debug)]
pub struct TrustWriter {
    tx: std::sync::mpsc::SyncSender<TrustRecord>,
    list: std::sync::Arc<std::sync::Mutex<Vec<TrustedDevice>>>,
    thread: std::thread::JoinHandle<()>,
}

/// One verification to persist.
#[derive(Debug, Clone)]
pub struct TrustRecord {
    pub device_id: String,
    pub name: String,
    pub device_type: String,
    pub ip: String,
    pub seen: u64,
}

/// Records queued to the trust store's thread at most.
pub const TRUST_QUEUE: usize = 256;

impl TrustWriter {
    /// Starts the writer thread over `store`.
    pub fn start(mut store: TrustStore) -> io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<TrustRecord>(TRUST_QUEUE);
        let list = std::sync::Arc::new(std::sync::Mutex::new(store.devices().to_vec()));
        let thread = std::thread::Builder::new()
            .name("softbus-trust".into())
            .spawn(move || {
                // Ends when every sender is gone (the node stopped).
                for r in rx {
                    if let Err(e) =
                        store.record(&r.device_id, &r.name, &r.device_type, &r.ip, r.seen)
                    {
                        tracing::warn!(error = %e, "could not persist trusted device");
                    }
                }
            })?;
        Ok(Self { tx, list, thread })
    }

    /// Writes what is queued, then stops the thread.
    pub fn finish(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }

    /// Queues a record for the disk (never blocks); the list is updated at
    /// once. Returns whether the device is new to the store.
    pub fn record(&self, r: TrustRecord) -> bool {
        let added = self
            .list
            .lock()
            .map(|mut l| upsert(&mut l, &r.device_id, &r.name, &r.device_type, &r.ip, r.seen))
            .unwrap_or(false);
        if let Err(e) = self.tx.try_send(r) {
            tracing::warn!(error = %e, "trust store queue full; record dropped");
        }
        added
    }

    /// The trusted devices (what is on disk plus what is being written).
    pub fn devices(&self) -> Vec<TrustedDevice> {
        self.list.lock().map(|l| l.clone()).unwrap_or_default()
    }
}
