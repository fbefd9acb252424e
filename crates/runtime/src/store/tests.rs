use super::*;

/// 40 rounds of a pairing racing an unpair, each through its own
/// `PairStore` as two processes have: every pairing that returned Ok is on
/// disk afterwards, and every unpair that returned true really removed the
/// device. Before the lock, one rewrite undid the other.
#[test]
fn a_pairing_racing_an_unpair_loses_nothing() {
    let d = tmp("race");
    let (node, cli) = (PairStore::open(&d).unwrap(), PairStore::open(&d).unwrap());
    let id = |k: &str, i: u32| format!("{k}{i:062}");
    for round in 0..40u32 {
        // Each round: the node adds 8 devices while `unpair` removes 8
        // paired before the round.
        for i in 0..8 {
            cli.add(&id("BB", round * 8 + i), &[2; 32], 1).unwrap();
        }
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..8 {
                    node.add(&id("AA", round * 8 + i), &[1; 32], 1).unwrap();
                }
            });
            s.spawn(|| {
                for i in 0..8 {
                    assert!(cli.remove(&id("BB", round * 8 + i)).unwrap());
                }
            });
        });
        let on_disk: Vec<String> = node
            .load()
            .unwrap()
            .into_iter()
            .map(|p| p.device_id)
            .collect();
        for i in 0..8 {
            assert!(
                on_disk.contains(&id("AA", round * 8 + i)),
                "round {round}: pairing {i} lost"
            );
            assert!(
                !on_disk.contains(&id("BB", round * 8 + i)),
                "round {round}: unpair {i} lost"
            );
        }
        // Keep the file under the store's limit.
        for i in 0..8 {
            assert!(node.remove(&id("AA", round * 8 + i)).unwrap());
        }
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// A change of the pairings waits for another holder of the lock at most
/// [`PAIRS_LOCK_WAIT`], then fails naming the lock file; once the other
/// lets go it goes through.
#[test]
fn a_held_pairings_lock_is_waited_for_a_bounded_time() {
    let d = tmp("held");
    let s = PairStore::open(&d).unwrap();
    let other = lock_file(&d.join("paired.lock"), std::time::Duration::ZERO)
        .unwrap()
        .unwrap();
    let t0 = std::time::Instant::now();
    let e = s.add(&"AB".repeat(32), &[1; 32], 1).unwrap_err();
    assert!(t0.elapsed() >= PAIRS_LOCK_WAIT, "{:?}", t0.elapsed());
    assert!(
        e.to_string().contains("paired.lock") && e.to_string().contains("too long"),
        "{e}"
    );
    drop(other);
    s.add(&"AB".repeat(32), &[1; 32], 1).unwrap();
    let _ = std::fs::remove_dir_all(&d);
}

/// Adding matches ids as removing does, without regard to case: a device
/// paired again under its id in lower case replaces its entry.
#[test]
fn ids_match_without_regard_to_case() {
    let d = tmp("case");
    let s = PairStore::open(&d).unwrap();
    s.add(&"AB".repeat(32), &[1; 32], 1).unwrap();
    s.add(&"ab".repeat(32), &[2; 32], 2).unwrap();
    let all = s.load().unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].public_key, hex::encode([2; 32]));
    assert!(s.remove(&"Ab".repeat(32)).unwrap());
    assert!(s.load().unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&d);
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("softbus-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn device_id_persists_and_a_corrupt_one_is_an_error() {
    use std::os::unix::fs::PermissionsExt;
    let d = tmp("id");
    let a = load_or_create_device_id(&d, || "AB".repeat(32)).unwrap();
    assert_eq!(a, "AB".repeat(32));
    let b = load_or_create_device_id(&d, || "01".repeat(32)).unwrap();
    assert_eq!(a, b);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d.join("deviceid")), 0o600);
    assert_eq!(mode(&d), 0o700);
    // Corrupt: an error that names the file and the way out, never a new id.
    std::fs::write(d.join("deviceid"), "short").unwrap();
    let e = load_or_create_device_id(&d, || "01".repeat(32)).unwrap_err();
    assert!(matches!(e, StoreError::CorruptIdentity { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("deviceid") && text.contains("--reset-identity"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("deviceid")).unwrap(),
        "short"
    );
    reset_identity(&d).unwrap();
    assert_eq!(
        load_or_create_device_id(&d, || "01".repeat(32)).unwrap(),
        "01".repeat(32)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// A new identity's id is derived from its key (issue 17) and read back
/// the same; an id made before (random) is kept, and said not derived.
#[test]
fn a_new_device_id_is_derived_from_the_key() {
    use softbus_bus::crypto::Crypto;
    let d = tmp("derived");
    let own = load_or_create_identity(&d, |b| b.fill(7)).unwrap();
    let c = softbus_crypto::OpenSslCrypto::new();
    let public = c.ed25519_public(&[7; 32]).unwrap();
    assert_eq!(
        own.device_id,
        softbus_bus::auth::hichain::key_id(&c, &public).unwrap()
    );
    assert!(own.derived);
    let again = load_or_create_identity(&d, |b| b.fill(9)).unwrap();
    assert_eq!((again.device_id, again.derived), (own.device_id, true));
    let old = tmp("random-id");
    load_or_create_device_id(&old, || "AB".repeat(32)).unwrap();
    let own = load_or_create_identity(&old, |b| b.fill(7)).unwrap();
    assert_eq!((own.device_id, own.derived), ("AB".repeat(32), false));
    std::fs::remove_dir_all(&d).unwrap();
    std::fs::remove_dir_all(&old).unwrap();
}

/// The long-term key, the pairings and the web token: made once, kept
/// 0600, read back the same; a corrupt one is an error naming the file,
/// never replaced; `reset_identity` removes them all.
#[test]
fn keys_pairings_and_token_persist_and_corruption_is_loud() {
    use std::os::unix::fs::PermissionsExt;
    let d = tmp("keys");
    let k = load_or_create_identity_key(&d, |b| b.fill(7)).unwrap();
    assert_eq!(*k, [7; 32]);
    assert_eq!(
        *load_or_create_identity_key(&d, |b| b.fill(9)).unwrap(),
        [7; 32]
    );
    let t = load_or_create_web_token(&d, |b| b.fill(1)).unwrap();
    assert_eq!(t.as_str(), "01".repeat(32));
    assert_eq!(
        load_or_create_web_token(&d, |b| b.fill(2))
            .unwrap()
            .as_str(),
        t.as_str()
    );
    let p = PairStore::open(&d).unwrap();
    p.add("AA", &[3; 32], 10).unwrap();
    p.add("BB", &[4; 32], 11).unwrap();
    p.add("AA", &[5; 32], 12).unwrap();
    let got = p.pairings().unwrap();
    assert_eq!((got.len(), got["AA"], got["BB"]), (2, [5; 32], [4; 32]));
    assert!(p.remove("bb").unwrap(), "ids compare case-insensitively");
    assert!(!p.remove("BB").unwrap());
    for f in ["identity.key", "web-token", "paired.json"] {
        let mode = std::fs::metadata(d.join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    std::fs::write(d.join("identity.key"), "not hex").unwrap();
    let e = load_or_create_identity_key(&d, |b| b.fill(9)).unwrap_err();
    assert!(
        e.to_string().contains("identity.key") && e.to_string().contains("--reset-identity"),
        "{e}"
    );
    std::fs::write(d.join("paired.json"), "{").unwrap();
    let e = PairStore::open(&d).unwrap_err();
    assert!(e.to_string().contains("paired.json"), "{e}");
    std::fs::write(
        d.join("paired.json"),
        r#"{"version":1,"devices":[{"device_id":"AA","public_key":"zz","paired_at":1}]}"#,
    )
    .unwrap();
    assert!(PairStore::open(&d).is_err(), "a bad key is refused");
    reset_identity(&d).unwrap();
    for f in ["identity.key", "web-token", "paired.json", "deviceid"] {
        assert!(!d.join(f).exists(), "{f}");
    }
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
    use std::os::unix::fs::PermissionsExt;
    let d = tmp("trust");
    let mut s = TrustStore::open(&d).unwrap();
    s.record("A", "a", "DEV_L1", "10.0.0.1", 5).unwrap();
    s.record("B", "b", "DEV_L1", "10.0.0.2", 6).unwrap();
    s.record("A", "a2", "DEV_L1", "10.0.0.1", 9).unwrap();
    let path = d.join("trusted.json");
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(stored["version"], STORE_VERSION);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let s = TrustStore::open(&d).unwrap();
    assert_eq!(
        s.devices()
            .iter()
            .map(|x| (x.device_id.as_str(), x.first_seen, x.last_seen))
            .collect::<Vec<_>>(),
        vec![("A", 5, 9), ("B", 6, 6)]
    );
    // The first format (a bare list) still loads.
    std::fs::write(&path, serde_json::to_vec(&stored["devices"]).unwrap()).unwrap();
    assert_eq!(TrustStore::open(&d).unwrap().devices().len(), 2);
    // Corrupt, too large, or a directory: an error naming the file; nothing moved.
    std::fs::write(&path, "{garbage").unwrap();
    let e = TrustStore::open(&d).unwrap_err();
    assert!(matches!(e, StoreError::CorruptTrust { .. }), "{e}");
    assert!(e.to_string().contains("trusted.json"), "{e}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{garbage");
    std::fs::write(&path, vec![b' '; MAX_STORE_BYTES as usize + 1]).unwrap();
    assert!(matches!(
        TrustStore::open(&d),
        Err(StoreError::TooLarge { .. })
    ));
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let e = TrustStore::open(&d).unwrap_err();
    assert!(e.to_string().contains("trusted.json"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A process writing the store, killed at random points many times: the
/// store always reloads the old or the new contents, never a mix or nothing.
#[test]
fn a_store_killed_mid_write_reloads_old_or_new() {
    let d = tmp("crash");
    // Two stores the writer alternates between, recognisable by the last_seen.
    let mut s = TrustStore::open(&d).unwrap();
    s.record("A", "a", "DEV_L1", "10.0.0.1", 1).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut grown = 0;
    for round in 0..30 {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "store::tests::writer_child",
                "--ignored",
                "--nocapture",
            ])
            .env("SOFTBUS_STORE_WRITER", &d)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_micros(2_000 + seed % 30_000));
        let _ = child.kill();
        let _ = child.wait();
        let s = TrustStore::open(&d)
            .unwrap_or_else(|e| panic!("round {round}: the store did not reload: {e}"));
        let devices = s.devices();
        assert!(
            !devices.is_empty()
                && devices
                    .iter()
                    .all(|x| x.device_id == "A" || x.device_id.starts_with('D')),
            "round {round}: {devices:?}"
        );
        if devices.len() > 1 {
            grown += 1;
        }
    }
    assert!(
        grown >= 10,
        "the writer wrote in only {grown} of 30 rounds: the test proves little"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// The writer the crash test kills: records devices as fast as it can.
#[test]
#[ignore = "run by a_store_killed_mid_write_reloads_old_or_new"]
fn writer_child() {
    let Some(dir) = std::env::var_os("SOFTBUS_STORE_WRITER") else {
        return;
    };
    let mut s = TrustStore::open(Path::new(&dir)).unwrap();
    for i in 0..u64::MAX {
        s.record(&format!("D{}", i % 500), "writer", "DEV_L1", "10.0.0.9", i)
            .unwrap();
    }
}
