//! Replays the SDP, STUN and RTP fuzz corpora (`fuzz/corpus/{sdp,stun,rtp}`) through the
//! entry points the fuzz targets call.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // tests: unwrap is the assertion; Instant::now only picks an origin
use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "corpus {target}");
    v
}

#[test]
fn replay_sdp() {
    let mut seeds = 0;
    for (name, data) in corpus("sdp") {
        softbus_rtc::fuzzing::sdp(&data);
        if name.ends_with(".sdp") {
            softbus_rtc::sdp::SessionDescription::parse(std::str::from_utf8(&data).unwrap())
                .unwrap();
            seeds += 1;
        }
    }
    assert_eq!(seeds, 5);
}

#[test]
fn replay_stun() {
    let mut seeds = 0;
    for (name, data) in corpus("stun") {
        softbus_rtc::fuzzing::stun(&data);
        if name.starts_with("rfc5769") {
            softbus_rtc::stun::Message::parse(&data)
                .unwrap()
                .verify_fingerprint()
                .unwrap();
            seeds += 1;
        }
    }
    assert_eq!(seeds, 3);
}

#[test]
fn replay_ice_lite() {
    let c = softbus_crypto::OpenSslCrypto::new();
    for (_, data) in corpus("ice_lite") {
        softbus_rtc::fuzzing::ice_lite(&c, std::time::Instant::now(), &data);
    }
}

#[test]
fn replay_sctp() {
    for (_, data) in corpus("sctp") {
        softbus_rtc::fuzzing::sctp(std::time::Instant::now(), &data);
    }
}

#[test]
fn replay_rtp() {
    let c = corpus("rtp");
    for (_, data) in &c {
        softbus_rtc::fuzzing::rtp(data);
    }
    // The corpus reaches RTP with extension elements and RTCP feedback.
    let with_ext = |d: &[u8]| {
        softbus_rtc::rtp::RtpPacket::parse(d).is_ok_and(|p| p.extensions().next().is_some())
    };
    let with_pli = |d: &[u8]| {
        softbus_rtc::rtp::parse_rtcp(d).is_ok_and(|v| {
            v.iter()
                .any(|p| matches!(p, softbus_rtc::rtp::Rtcp::Pli { .. }))
        })
    };
    assert!(c.iter().any(|(_, d)| with_ext(d)));
    assert!(c.iter().any(|(_, d)| with_pli(d)));
}

#[test]
fn replay_srtp() {
    for (_, data) in corpus("srtp") {
        softbus_rtc::fuzzing::srtp(&data, || Box::new(softbus_crypto::SrtpBackend::default()));
    }
}

#[test]
fn replay_turn() {
    let c = softbus_crypto::OpenSslCrypto::new();
    let corpus = corpus("turn");
    for (_, data) in &corpus {
        softbus_rtc::fuzzing::turn(&c, std::time::Instant::now(), data);
    }
    let urls = corpus
        .iter()
        .filter(|(n, _)| n.starts_with("url_"))
        .filter(|(_, d)| {
            softbus_rtc::turn::server::IceServerUrl::parse(std::str::from_utf8(d).unwrap()).is_ok()
        })
        .count();
    assert_eq!(urls, 3, "the URL seeds parse");
}
