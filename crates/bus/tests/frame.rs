//! Frame codecs: header bytes, the fixture's known answers, rejections, reassembly.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // tests: unwrap is the assertion; Instant::now only picks an origin
mod common;
use common::{hexv, vectors};
use softbus_bus::crypto::CryptoError;
use softbus_bus::frame::*;
use softbus_crypto::OpenSslCrypto;

#[test]
fn auth_header_bytes_and_fields() {
    let h = AuthHeader {
        module: Module::CONNECTION,
        seq: 900,
        flags: FLAG_REPLY,
        data_len: 0x11b,
    };
    let mut b = Vec::new();
    h.emit(&mut b);
    assert_eq!(
        hex::encode_upper(&b),
        "CEFABEBA05000000840300000000000001000000".to_owned() + "1B010000"
    );
    assert_eq!(AuthHeader::parse(&b, 1512).unwrap(), h);
}

#[test]
fn session_header_bytes_and_fields() {
    let h = SessionHeader {
        seq: 7,
        flags: 0,
        data_len: 41,
    };
    let mut b = Vec::new();
    h.emit(&mut b);
    assert_eq!(hex::encode_upper(&b), "CEFABEBA070000000000000029000000");
    assert_eq!(SessionHeader::parse(&b, 4108).unwrap(), h);
}

/// `auth_packet_module5` from shared/fixtures/softbus-vectors.json (independent implementation).
#[test]
fn auth_packet_known_answer() {
    let v = &vectors()["auth_packet_module5"];
    let crypto = OpenSslCrypto::new();
    let key = hexv(&v["key"]);
    let iv: [u8; 12] = hexv(&v["iv"]).try_into().unwrap();
    let pt = v["plaintext_utf8"].as_str().unwrap().as_bytes();
    let pkt = auth_sealed_with_iv(&crypto, &key, 900, Module(5), 900, 0, &iv, pt).unwrap();
    assert_eq!(pkt, hexv(&v["packet"]));
    let h = AuthHeader::parse(&pkt, LITE_MAX_AUTH_DATA).unwrap();
    assert_eq!(
        (h.module, h.seq, h.flags, h.data_len as usize),
        (Module::CONNECTION, 900, 0, pkt.len() - 24)
    );
    let body = &pkt[24..];
    assert_eq!(auth_key_index(body).unwrap(), 900);
    assert_eq!(auth_open(&crypto, body, &key).unwrap(), pt);
}

/// `session_data_packet` from the same fixture.
#[test]
fn session_packet_known_answer() {
    let v = &vectors()["session_data_packet"];
    let crypto = OpenSslCrypto::new();
    let key: [u8; 32] = hexv(&v["key"]).try_into().unwrap();
    let iv: [u8; 12] = hexv(&v["iv"]).try_into().unwrap();
    let pt = v["plaintext_utf8"].as_str().unwrap().as_bytes();
    let pkt = session_sealed_with_iv(&crypto, &key, 7, &iv, pt).unwrap();
    assert_eq!(pkt, hexv(&v["packet"]));
    let (seq, back) = session_open(&crypto, &key, &pkt[16..]).unwrap();
    assert_eq!((seq, back.as_slice()), (7, pt));
}

#[test]
fn tampered_wrong_key_and_short_bodies_rejected() {
    let mut crypto = OpenSslCrypto::seeded(1);
    let key = [9u8; 32];
    let mut pkt = session_sealed(&mut crypto, &key, 1, b"hello").unwrap();
    let n = pkt.len();
    pkt[n - 1] ^= 0x80;
    assert_eq!(
        session_open(&crypto, &key, &pkt[16..]),
        Err(FrameError::Crypto(CryptoError::AuthFailed))
    );
    pkt[n - 1] ^= 0x80;
    assert_eq!(
        session_open(&crypto, &[8u8; 32], &pkt[16..]),
        Err(FrameError::Crypto(CryptoError::AuthFailed))
    );
    assert_eq!(
        session_open(&crypto, &key, &pkt[16..45]),
        Err(FrameError::Crypto(CryptoError::AuthFailed))
    );
    assert_eq!(
        session_open(&crypto, &key, &pkt[16..30]),
        Err(FrameError::ShortBody)
    );
    assert_eq!(auth_key_index(&[0; 31]), Err(FrameError::ShortBody));
}

#[test]
fn header_rejections() {
    let mut b = Vec::new();
    AuthHeader {
        module: Module::SESSION,
        seq: 1,
        flags: 0,
        data_len: 2000,
    }
    .emit(&mut b);
    assert_eq!(
        AuthHeader::parse(&b, 1512),
        Err(FrameError::BadLength {
            len: 2000,
            max: 1512
        })
    );
    assert_eq!(
        AuthHeader::parse(&b[..23], 1512),
        Err(FrameError::Truncated)
    );
    b[20..24].copy_from_slice(&(-5i32).to_le_bytes());
    assert_eq!(
        AuthHeader::parse(&b, 1512),
        Err(FrameError::BadLength { len: -5, max: 1512 })
    );
    b[0] = 0;
    assert_eq!(
        AuthHeader::parse(&b, 1512),
        Err(FrameError::BadMagic(0xBABE_FA00))
    );
}

#[test]
fn deframer_limits_before_buffering() {
    let mut d = Deframer::new(HeaderKind::Auth, 1512);
    let mut b = Vec::new();
    AuthHeader {
        module: Module::SESSION,
        seq: 1,
        flags: 0,
        data_len: 0x7fff_ffff,
    }
    .emit(&mut b);
    d.push(&b);
    assert!(matches!(d.next_frame(), Err(FrameError::BadLength { .. })));
    let mut d = Deframer::new(HeaderKind::Session, 100);
    d.push(&[0xde, 0xad, 0xbe]);
    assert_eq!(d.next_frame(), Ok(None));
    d.push(&[0xef]);
    assert_eq!(d.next_frame(), Err(FrameError::BadMagic(0xefbe_adde)));
}

fn two_frames() -> Vec<u8> {
    let mut s = auth_plain(Module::TRUST_ENGINE, 5, 0, b"{\"a\":1}");
    s.extend(auth_plain(Module::AUTH_SDK, 6, 0, b""));
    s
}

#[test]
fn deframer_pipelined() {
    let mut d = Deframer::new(HeaderKind::Auth, 1512);
    d.push(&two_frames());
    let Some(Frame::Auth(h, body)) = d.next_frame().unwrap() else {
        panic!()
    };
    assert_eq!(
        (h.module, h.seq, body.as_slice()),
        (Module::TRUST_ENGINE, 5, &b"{\"a\":1}"[..])
    );
    let Some(Frame::Auth(h, body)) = d.next_frame().unwrap() else {
        panic!()
    };
    assert_eq!((h.seq, body.len()), (6, 0));
    assert_eq!(d.next_frame(), Ok(None));
    assert_eq!(d.buffered(), 0);
}

proptest::proptest! {
    /// Reassembly gives the same frames at every split point.
    #[test]
    fn deframer_any_split(split in 0usize..80) {
        let s = two_frames();
        let split = split.min(s.len());
        let mut d = Deframer::new(HeaderKind::Auth, 1512);
        let mut got = Vec::new();
        for part in [&s[..split], &s[split..]] {
            d.push(part);
            while let Some(f) = d.next_frame().unwrap() { got.push(f); }
        }
        proptest::prop_assert_eq!(got.len(), 2);
    }
}

proptest::proptest! {
    /// Many session frames of random sizes through random chunking come out whole and in order.
    #[test]
    fn deframer_many_frames_any_chunking(sizes in proptest::collection::vec(0usize..300, 1..40), cuts in proptest::collection::vec(1usize..200, 1..100)) {
        let mut stream = Vec::new();
        for (i, n) in sizes.iter().enumerate() {
            SessionHeader { seq: i as i32, flags: 0, data_len: *n as u32 }.emit(&mut stream);
            stream.extend(std::iter::repeat_n(i as u8, *n));
        }
        let mut d = Deframer::new(HeaderKind::Session, 300);
        let mut got = Vec::new();
        let (mut pos, mut k) = (0, 0);
        while pos < stream.len() {
            let end = (pos + cuts[k % cuts.len()]).min(stream.len());
            d.push(&stream[pos..end]);
            pos = end;
            k += 1;
            while let Some(Frame::Session(h, body)) = d.next_frame().unwrap() {
                proptest::prop_assert!(body.iter().all(|&b| b == h.seq as u8));
                got.push((h.seq, body.len()));
            }
            proptest::prop_assert!(d.buffered() < 300 + 16 + 200);
        }
        let want: Vec<_> = sizes.iter().enumerate().map(|(i, n)| (i as i32, *n)).collect();
        proptest::prop_assert_eq!(got, want);
        proptest::prop_assert_eq!(d.buffered(), 0);
    }
}

/// The production path (`DataChannel`, per-session prepared key) opens the fixture's
/// session packet with either AEAD backend, and refuses it a second time (replay).
#[test]
fn data_channel_opens_fixture_packet_with_both_backends() {
    use softbus_bus::session::{DataChannel, SessionError};
    use softbus_crypto::AeadBackend;
    let v = &vectors()["session_data_packet"];
    let key: [u8; 32] = hexv(&v["key"]).try_into().unwrap();
    let pkt = hexv(&v["packet"]);
    for backend in [AeadBackend::Ring, AeadBackend::OpenSsl] {
        let crypto = OpenSslCrypto::new().with_aead(backend);
        let mut ch = DataChannel::new(&crypto, &key).unwrap();
        let h = SessionHeader::parse(&pkt, 4108).unwrap();
        let plain = ch.open(h.seq, pkt[16..].to_vec()).unwrap();
        assert_eq!(
            plain,
            v["plaintext_utf8"].as_str().unwrap().as_bytes(),
            "{backend:?}"
        );
        assert_eq!(
            ch.open(h.seq, pkt[16..].to_vec()),
            Err(SessionError::Replay),
            "{backend:?}"
        );
    }
}
