//! Replays every file of the fuzz corpus (`fuzz/corpus/<target>/`, seeds from
//! tools/make_corpus.py plus anything the fuzzers found) through the same entry
//! points the fuzz targets call. A panic here is a bug found by fuzzing.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // tests: unwrap is the assertion; Instant::now only picks an origin
use softbus_bus::fuzzing;
use softbus_crypto::OpenSslCrypto;
use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus for {target} at {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus for {target} is empty");
    files
}

#[test]
fn every_target_has_a_corpus_and_a_fuzz_target() {
    let targets = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
    for t in [
        "coap",
        "discovery_payload",
        "discovery_engine",
        "deframer",
        "auth_conn",
        "hichain",
        "bus_tcp",
    ] {
        assert!(targets.join(format!("{t}.rs")).exists(), "fuzz target {t}");
        corpus(t);
    }
}

#[test]
fn replay_coap() {
    let mut seeds = 0;
    for (name, data) in corpus("coap") {
        fuzzing::coap(&data);
        // Named seeds (tools/make_corpus.py) are valid messages; fuzzer finds are 40-hex names.
        let is_seed = !(name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit()));
        if is_seed {
            softbus_bus::coap::Message::parse(&data)
                .unwrap_or_else(|e| panic!("seed {name} should parse: {e}"));
            seeds += 1;
        }
    }
    assert!(seeds >= 5, "the named seeds are present");
}

#[test]
fn replay_discovery() {
    for (_, data) in corpus("discovery_payload") {
        fuzzing::discovery_payload(&data);
    }
    for (_, data) in corpus("discovery_engine") {
        fuzzing::discovery_engine(std::time::Instant::now(), &data);
    }
}

#[test]
fn replay_streams() {
    for (_, data) in corpus("deframer") {
        fuzzing::deframer(&data);
    }
    let mut c = OpenSslCrypto::seeded(1);
    for (_, data) in corpus("auth_conn") {
        fuzzing::auth_conn(&mut c, &data);
    }
    for (_, data) in corpus("hichain") {
        fuzzing::hichain(&mut c, &data);
    }
    let mut seen = 0;
    for (_, data) in corpus("auth_client") {
        fuzzing::auth_client(&mut c, &data);
        seen += 1;
    }
    assert!(seen >= 2, "the auth_client corpus has its seeds");
    for (_, data) in corpus("bus_tcp") {
        fuzzing::bus_tcp(
            std::time::Instant::now(),
            Box::new(OpenSslCrypto::seeded(1)),
            &data,
        );
    }
}
