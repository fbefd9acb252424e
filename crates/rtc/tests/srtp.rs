//! SRTP and SRTCP against published vectors (RFC 3711 Appendix B.2 and B.3,
//! libsrtp's reference packets for AES-CM and AES-GCM, the RFC 7714 layout for
//! AES-256-GCM), the rollover counter, the replay window and tampering.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
use softbus_crypto::SrtpBackend;
use softbus_rtc::dtls::split_srtp_keys;
use softbus_rtc::srtp::{derive, kdf, Context, Profile, SrtpCrypto, SrtpError};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).unwrap()
}

fn ctx(p: Profile, key: &str, salt: &str) -> Context {
    Context::new(p, &h(key), &h(salt), Box::new(SrtpBackend::default())).unwrap()
}

const CM_KEY: &str = "e1f97a0d3e018be0d64fa32c06de4139";
const CM_SALT: &str = "0ec675ad498afeebb6960b3aabe6";
const GCM_SALT: &str = "a0a1a2a3a4a5a6a7a8a9aaab";

fn rtp_plain() -> Vec<u8> {
    h(&format!("800f1234decafbadcafebabe{}", "ab".repeat(16)))
}

fn rtcp_plain() -> Vec<u8> {
    h(&format!("81c8000bcafebabe{}", "ab".repeat(16)))
}

/// RFC 3711 Appendix B.2: the AES-CM keystream.
#[test]
fn rfc3711_b2_keystream() {
    let c = SrtpBackend::default();
    let mut ks = [0u8; 48];
    let iv: [u8; 16] = h("f0f1f2f3f4f5f6f7f8f9fafbfcfd0000").try_into().unwrap();
    c.aes_ctr(&h("2b7e151628aed2a6abf7158809cf4f3c"), &iv, &mut ks)
        .unwrap();
    assert_eq!(
        ks.to_vec(),
        h("e03ead0935c95e80e166b16dd92b4eb4 d23513162b02d0f72a43a2fe4a5f97ab 41e95b3bb0a2e8dd477901e4fca894c0")
    );
}

/// RFC 3711 Appendix B.3: the key derivation, and the SRTCP labels.
#[test]
fn rfc3711_b3_key_derivation() {
    let c = SrtpBackend::default();
    let k = derive(&c, Profile::Aes128CmSha1_80, &h(CM_KEY), &h(CM_SALT)).unwrap();
    assert_eq!(k.rtp_key, h("c61e7a93744f39ee10734afe3ff7a087"));
    assert_eq!(k.rtp_salt, h("30cbbc08863d8c85d49db34a9ae1"));
    assert_eq!(k.rtp_auth, h("cebe321f6ff7716b6fd4ab49af256a156d38baa4"));
    assert_eq!(k.rtcp_key, h("4c1aa45a81f73d61c800bbb00fbb1eaa"));
    assert_eq!(k.rtcp_auth, h("8d54534feb49ae8e7993a6bd0b844fc323a93dfd"));
    assert_eq!(k.rtcp_salt, h("9581c7ad87b3e530bf3e4454a8b3"));
    assert_eq!(kdf(&c, &h(CM_KEY), &h(CM_SALT), 0, 16).unwrap(), k.rtp_key);
    assert_eq!(
        derive(&c, Profile::Aes128CmSha1_80, &h(CM_KEY), &h(GCM_SALT)).unwrap_err(),
        SrtpError::KeyLength
    );
}

/// libsrtp's reference packets (srtp_driver.c) for AES_CM_128_HMAC_SHA1_80.
#[test]
fn aes_cm_reference_packets() {
    let mut tx = ctx(Profile::Aes128CmSha1_80, CM_KEY, CM_SALT);
    let srtp = tx.protect_rtp(&rtp_plain()).unwrap();
    assert_eq!(
        srtp,
        h("800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb")
    );
    let srtcp = tx.protect_rtcp(&rtcp_plain()).unwrap();
    assert_eq!(
        srtcp,
        h("81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798")
    );
    let mut rx = ctx(Profile::Aes128CmSha1_80, CM_KEY, CM_SALT);
    assert_eq!(rx.unprotect_rtp(&srtp).unwrap(), rtp_plain());
    assert_eq!(rx.unprotect_rtcp(&srtcp).unwrap(), rtcp_plain());
    // The _32 profile: the same keystream, a 4-byte RTP tag, 10 on RTCP.
    let mut t32 = ctx(Profile::Aes128CmSha1_32, CM_KEY, CM_SALT);
    let p = t32.protect_rtp(&rtp_plain()).unwrap();
    assert_eq!(p.len(), rtp_plain().len() + 4);
    assert_eq!(p[..p.len() - 4], srtp[..srtp.len() - 10]);
    assert_eq!(p[p.len() - 4..], srtp[srtp.len() - 10..srtp.len() - 6]);
    assert_eq!(t32.protect_rtcp(&rtcp_plain()).unwrap().len(), srtcp.len());
}

/// libsrtp's reference packets for AEAD_AES_128_GCM, and the RFC 7714 layout
/// for AEAD_AES_256_GCM.
#[test]
fn aes_gcm_reference_packets() {
    let mut tx = ctx(
        Profile::AeadAes128Gcm,
        "000102030405060708090a0b0c0d0e0f",
        GCM_SALT,
    );
    let srtp = tx.protect_rtp(&rtp_plain()).unwrap();
    assert_eq!(srtp, h("800f1234decafbadcafebabe c5002ede04cfdd2eb91159e0880aa06e d2976826f796b201df3131a127e8a392"));
    let srtcp = tx.protect_rtcp(&rtcp_plain()).unwrap();
    assert_eq!(srtcp, h("81c8000bcafebabe c98b8b5df0392a55852b6c21ac8e7025 c52c6fbea2b3b446ea31123ba88ce61e 80000001"));
    let mut rx = ctx(
        Profile::AeadAes128Gcm,
        "000102030405060708090a0b0c0d0e0f",
        GCM_SALT,
    );
    assert_eq!(rx.unprotect_rtp(&srtp).unwrap(), rtp_plain());
    assert_eq!(rx.unprotect_rtcp(&srtcp).unwrap(), rtcp_plain());
    let key256 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    let mut t256 = ctx(Profile::AeadAes256Gcm, key256, GCM_SALT);
    let srtp = t256.protect_rtp(&rtp_plain()).unwrap();
    assert_eq!(srtp, h("800f1234decafbadcafebabe 0af7f21e8a90bdad7a425c9c31ed4bb1 d90238917e7390a2793500e1681acaea"));
    let mut r256 = ctx(Profile::AeadAes256Gcm, key256, GCM_SALT);
    assert_eq!(r256.unprotect_rtp(&srtp).unwrap(), rtp_plain());
}

fn packet(seq: u16, payload: &[u8]) -> Vec<u8> {
    softbus_rtc::rtp::RtpBuilder {
        payload_type: 111,
        sequence: seq,
        timestamp: u32::from(seq) * 960,
        ssrc: 0x1111_2222,
        payload,
        ..Default::default()
    }
    .build()
    .unwrap()
}

/// Every profile: tampering anywhere is refused; a replay is refused; packets
/// across a sequence-number wrap (the rollover counter) and reordered within
/// the window are accepted; older than the window, refused.
#[test]
fn rollover_replay_and_tampering_in_every_profile() {
    for (p, key, salt) in [
        (Profile::Aes128CmSha1_80, CM_KEY.to_owned(), CM_SALT),
        (Profile::Aes128CmSha1_32, CM_KEY.to_owned(), CM_SALT),
        (Profile::AeadAes128Gcm, "0f".repeat(16), GCM_SALT),
        (Profile::AeadAes256Gcm, "1e".repeat(32), GCM_SALT),
    ] {
        let (mut tx, mut rx) = (ctx(p, &key, salt), ctx(p, &key, salt));
        let seqs: Vec<u16> = (65_530..=65_535).chain(0..6).collect();
        let sent: Vec<Vec<u8>> = seqs
            .iter()
            .map(|&s| tx.protect_rtp(&packet(s, b"audio frame")).unwrap())
            .collect();
        // The ROC moved at the wrap: the same seq before and after differs.
        let again = ctx(p, &key, salt)
            .protect_rtp(&packet(0, b"audio frame"))
            .unwrap();
        assert_ne!(again, sent[6], "{p:?}: index 65536 is not index 0");
        // Delivered out of order across the wrap.
        let mut order: Vec<usize> = (0..sent.len()).collect();
        order.swap(3, 8);
        order.swap(0, 5);
        for &i in &order {
            let got = rx
                .unprotect_rtp(&sent[i])
                .unwrap_or_else(|e| panic!("{p:?} {i}: {e}"));
            assert_eq!(got, packet(seqs[i], b"audio frame"), "{p:?}");
        }
        assert_eq!(rx.unprotect_rtp(&sent[4]), Err(SrtpError::Replay), "{p:?}");
        // Far ahead, then something older than the window.
        let ahead = tx.protect_rtp(&packet(200, b"x")).unwrap();
        rx.unprotect_rtp(&ahead).unwrap();
        assert_eq!(rx.unprotect_rtp(&sent[7]), Err(SrtpError::TooOld), "{p:?}");
        // One flipped bit anywhere: refused, and it changes nothing.
        let fresh = tx.protect_rtp(&packet(201, b"payload")).unwrap();
        for at in [1, 5, 13, fresh.len() - 1] {
            let mut bad = fresh.clone();
            bad[at] ^= 0x01;
            assert!(rx.unprotect_rtp(&bad).is_err(), "{p:?} byte {at}");
        }
        assert!(
            rx.unprotect_rtp(&fresh).is_ok(),
            "{p:?}: the good one still goes through"
        );
        assert_eq!(rx.unprotect_rtp(&fresh[..5]), Err(SrtpError::Truncated));
        // SRTCP: replay and tampering.
        let c = tx.protect_rtcp(&rtcp_plain()).unwrap();
        assert_eq!(rx.unprotect_rtcp(&c).unwrap(), rtcp_plain());
        assert_eq!(rx.unprotect_rtcp(&c), Err(SrtpError::Replay));
        let mut bad = tx.protect_rtcp(&rtcp_plain()).unwrap();
        bad[10] ^= 0x80;
        assert_eq!(rx.unprotect_rtcp(&bad), Err(SrtpError::AuthFailed), "{p:?}");
    }
}

/// DTLS-SRTP's exported material splits by role: what one side sends with,
/// the other receives with.
#[test]
fn exported_keys_split_by_role() {
    let p = Profile::Aes128CmSha1_80;
    let material: Vec<u8> = (0..60u8).collect();
    let client = split_srtp_keys(p, &material, true).unwrap();
    let server = split_srtp_keys(p, &material, false).unwrap();
    let mut tx = Context::from_dtls(&client, true, Box::new(SrtpBackend::default())).unwrap();
    let mut rx = Context::from_dtls(&server, false, Box::new(SrtpBackend::default())).unwrap();
    let s = tx.protect_rtp(&packet(1, b"x")).unwrap();
    assert_eq!(rx.unprotect_rtp(&s).unwrap(), packet(1, b"x"));
    // The server's own direction is not the client's.
    let mut wrong = Context::from_dtls(&server, true, Box::new(SrtpBackend::default())).unwrap();
    assert_eq!(wrong.unprotect_rtp(&s), Err(SrtpError::AuthFailed));
    assert_eq!(Profile::from_id(7), Some(Profile::AeadAes128Gcm));
}

/// Forged packets from made-up SSRCs take no stream slot: after more of them
/// than a context follows streams, a real new stream is still accepted.
#[test]
fn forged_packets_do_not_fill_the_stream_table() {
    let (mut tx, mut rx) = (
        ctx(Profile::Aes128CmSha1_80, CM_KEY, CM_SALT),
        ctx(Profile::Aes128CmSha1_80, CM_KEY, CM_SALT),
    );
    for ssrc in 0..(softbus_rtc::srtp::MAX_STREAMS as u32 + 10) {
        let mut forged = packet(1, b"garbage");
        forged[8..12].copy_from_slice(&ssrc.to_be_bytes());
        forged.extend_from_slice(&[0; 10]);
        assert_eq!(rx.unprotect_rtp(&forged), Err(SrtpError::AuthFailed));
    }
    let real = tx.protect_rtp(&packet(5, b"real")).unwrap();
    assert_eq!(rx.unprotect_rtp(&real).unwrap(), packet(5, b"real"));
}
