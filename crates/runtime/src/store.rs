//! What a node keeps on disk: its device id and the devices it has verified.

use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// Most trusted devices remembered; the least recently seen are forgotten first.
pub const MAX_TRUSTED: usize = 1024;

/// Loads `<dir>/deviceid` if it holds exactly 64 hex characters, else creates it
/// from 32 random bytes (upper-case hex), as softbus_lite does.
pub fn load_or_create_device_id(dir: &Path, random: impl FnOnce(&mut [u8])) -> io::Result<String> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("deviceid");
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim();
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(s.to_ascii_uppercase());
        }
    }
    let mut b = [0u8; 32];
    random(&mut b);
    let id = hex::encode_upper(b);
    write_atomic(&path, id.as_bytes())?;
    Ok(id)
}

fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(tmp, path)
}

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
) {
    let first_seen = match devices.iter().position(|d| d.device_id == device_id) {
        Some(i) => devices.remove(i).first_seen,
        None => now,
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
}

/// `<dir>/trusted.json`, rewritten on every change.
#[derive(Debug)]
pub struct TrustStore {
    path: PathBuf,
    devices: Vec<TrustedDevice>,
}

impl TrustStore {
    /// Opens (or starts) the store; a corrupt file is set aside, not trusted.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("trusted.json");
        let devices = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "trust store unreadable; starting empty");
                let _ = std::fs::rename(&path, path.with_extension("corrupt"));
                Vec::new()
            }),
            Err(_) => Vec::new(),
        };
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
        write_atomic(
            &self.path,
            &serde_json::to_vec_pretty(&self.devices).map_err(io::Error::other)?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("softbus-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn device_id_persists() {
        let d = tmp("id");
        let a = load_or_create_device_id(&d, |b| b.fill(0xab)).unwrap();
        assert_eq!(a, "AB".repeat(32));
        let b = load_or_create_device_id(&d, |b| b.fill(0x01)).unwrap();
        assert_eq!(a, b);
        std::fs::write(d.join("deviceid"), "short").unwrap();
        assert_eq!(
            load_or_create_device_id(&d, |b| b.fill(0x01)).unwrap(),
            "01".repeat(32)
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// Records written on the trust thread are on disk once it has finished,
    /// and the shared list follows them.
    #[test]
    fn trust_writer_persists_off_the_caller_thread() {
        let d = tmp("writer");
        let w = TrustWriter::start(TrustStore::open(&d).unwrap()).unwrap();
        for (i, id) in ["A", "B", "A"].iter().enumerate() {
            w.record(TrustRecord {
                device_id: (*id).into(),
                name: format!("n{i}"),
                device_type: "DEV_L1".into(),
                ip: "10.0.0.1".into(),
                seen: i as u64,
            });
        }
        w.finish();
        let s = TrustStore::open(&d).unwrap();
        let got: Vec<(&str, &str)> = s
            .devices()
            .iter()
            .map(|t| (t.device_id.as_str(), t.name.as_str()))
            .collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got.contains(&("A", "n2")) && got.contains(&("B", "n1")),
            "{got:?}"
        );
        let w = TrustWriter::start(s).unwrap();
        assert_eq!(
            w.devices().len(),
            2,
            "the shared list starts from the store"
        );
        w.finish();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn trust_store_round_trip_and_corruption() {
        let d = tmp("trust");
        let mut s = TrustStore::open(&d).unwrap();
        s.record("A", "a", "DEV_L1", "10.0.0.1", 5).unwrap();
        s.record("B", "b", "DEV_L1", "10.0.0.2", 6).unwrap();
        s.record("A", "a2", "DEV_L1", "10.0.0.1", 9).unwrap();
        let s = TrustStore::open(&d).unwrap();
        assert_eq!(
            s.devices()
                .iter()
                .map(|x| (x.device_id.as_str(), x.first_seen, x.last_seen))
                .collect::<Vec<_>>(),
            vec![("A", 5, 9), ("B", 6, 6)]
        );
        std::fs::write(d.join("trusted.json"), "{garbage").unwrap();
        assert!(TrustStore::open(&d).unwrap().devices().is_empty());
        assert!(d.join("trusted.corrupt").exists());
        std::fs::remove_dir_all(&d).unwrap();
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

    /// Queues a record for the disk (never blocks); the list is updated at once.
    pub fn record(&self, r: TrustRecord) {
        if let Ok(mut l) = self.list.lock() {
            upsert(&mut l, &r.device_id, &r.name, &r.device_type, &r.ip, r.seen);
        }
        if let Err(e) = self.tx.try_send(r) {
            tracing::warn!(error = %e, "trust store queue full; record dropped");
        }
    }

    /// The trusted devices (what is on disk plus what is being written).
    pub fn devices(&self) -> Vec<TrustedDevice> {
        self.list.lock().map(|l| l.clone()).unwrap_or_default()
    }
}
