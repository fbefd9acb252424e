//! Replays the relay fuzz corpus (`fuzz/corpus/relay`) through the entry point
//! the fuzz target calls.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // tests: unwrap is the assertion; Instant::now only picks an origin
use softbus_crypto::dtls::DtlsIdentity;
use softbus_crypto::OpenSslCrypto;
use softbus_rtc::crypto::Provider;

#[test]
fn replay_relay() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/relay");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() > 10, "corpus relay");
    let id = DtlsIdentity::generate().unwrap();
    let now = std::time::Instant::now();
    let mut taken = 0;
    for f in files {
        let provider = Provider {
            hmac: Box::new(OpenSslCrypto::seeded(1)),
            random: Box::new(OpenSslCrypto::seeded(2)),
            dtls: Box::new(id.factory().unwrap()),
            srtp: softbus_crypto::srtp_backends(),
        };
        let (viewers, packets) =
            softbus_node::fuzzing::relay(now, &std::fs::read(&f).unwrap(), provider);
        assert_eq!(viewers, 2, "both viewers joined");
        taken += packets;
    }
    assert!(
        taken > 50,
        "the corpus reaches the relay's forwarding: {taken}"
    );
}
