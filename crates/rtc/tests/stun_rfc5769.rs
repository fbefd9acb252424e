//! STUN against the RFC 5769 test vectors (§2.1-2.3): parse, verify MESSAGE-INTEGRITY
//! and FINGERPRINT, decode the attributes, and rebuild the responses byte for byte.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
use softbus_crypto::OpenSslCrypto;
use softbus_rtc::stun::{attr, Class, Message, MessageBuilder, StunError, BINDING};
use std::net::SocketAddr;

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";
const TID: [u8; 12] = [
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
];

fn request() -> Vec<u8> {
    hex("00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
         00 24 00 04 6e 00 01 ff
         80 29 00 08 93 2f f9 b1 51 26 3b 36
         00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
         00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
         80 28 00 04 e5 7a 3b cf")
}

fn response_v4() -> Vec<u8> {
    hex("01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
         00 20 00 08 00 01 a1 47 e1 12 a6 43
         00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
         80 28 00 04 c0 7d 4c 96")
}

fn response_v6() -> Vec<u8> {
    hex("01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
         00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
         00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
         80 28 00 04 c8 fb 0b 4c")
}

#[test]
fn sample_request() {
    let c = OpenSslCrypto::new();
    let b = request();
    let m = Message::parse(&b).unwrap();
    assert_eq!(
        (m.class(), m.method(), m.transaction_id()),
        (Class::Request, BINDING, TID)
    );
    assert_eq!(m.get(attr::SOFTWARE), Some(&b"STUN test client"[..]));
    assert_eq!(m.username(), Some("evtj:h6vY"));
    assert_eq!(m.priority().unwrap(), 0x6e00_01ff);
    assert_eq!(
        m.tie_breaker(attr::ICE_CONTROLLED).unwrap(),
        0x932f_f9b1_5126_3b36
    );
    m.verify_integrity(&c, PASSWORD).unwrap();
    m.verify_fingerprint().unwrap();
    assert_eq!(
        m.verify_integrity(&c, b"wrong"),
        Err(StunError::IntegrityFailed)
    );
}

#[test]
fn sample_responses_and_rebuild() {
    let c = OpenSslCrypto::new();
    for (bytes, addr) in [
        (response_v4(), "192.0.2.1:32853"),
        (
            response_v6(),
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
        ),
    ] {
        let m = Message::parse(&bytes).unwrap();
        let addr: SocketAddr = addr.parse().unwrap();
        assert_eq!((m.class(), m.method()), (Class::Success, BINDING));
        assert_eq!(m.xor_mapped_address().unwrap(), addr);
        m.verify_integrity(&c, PASSWORD).unwrap();
        m.verify_fingerprint().unwrap();
        // The builder reproduces the vector exactly (RFC 5769 pads with spaces).
        let built = MessageBuilder::new(Class::Success, BINDING, TID)
            .padding(b' ')
            .attribute(attr::SOFTWARE, b"test vector")
            .xor_mapped_address(addr)
            .message_integrity(&c, PASSWORD)
            .fingerprint();
        assert_eq!(hex::encode(&built), hex::encode(&bytes));
    }
}

#[test]
fn tampering_and_malformed_input_are_rejected() {
    let c = OpenSslCrypto::new();
    let mut b = request();
    b[30] ^= 1; // inside SOFTWARE
    let m = Message::parse(&b).unwrap();
    assert_eq!(
        m.verify_integrity(&c, PASSWORD),
        Err(StunError::IntegrityFailed)
    );
    assert_eq!(m.verify_fingerprint(), Err(StunError::FingerprintFailed));
    let b = request();
    assert_eq!(Message::parse(&b[..19]).unwrap_err(), StunError::NotStun);
    assert_eq!(Message::parse(&b[..100]).unwrap_err(), StunError::BadLength);
    let mut bad_cookie = b.clone();
    bad_cookie[4] = 0;
    assert_eq!(Message::parse(&bad_cookie).unwrap_err(), StunError::NotStun);
    let mut long_attr = b.clone();
    long_attr[22..24].copy_from_slice(&0x00ffu16.to_be_bytes()); // SOFTWARE length past the end
    assert_eq!(
        Message::parse(&long_attr).unwrap_err(),
        StunError::Truncated
    );
    assert_eq!(
        Message::parse(&vec![0u8; 2000]).unwrap_err(),
        StunError::TooLarge
    );
    // An unknown comprehension-optional attribute (GOOG-NETWORK-INFO) is skipped by readers.
    let m = MessageBuilder::new(Class::Request, BINDING, TID)
        .attribute(0xC057, &[0, 1, 0, 0])
        .attribute(attr::USERNAME, b"a:b")
        .message_integrity(&c, b"k")
        .fingerprint();
    let p = Message::parse(&m).unwrap();
    assert_eq!(p.username(), Some("a:b"));
    p.verify_integrity(&c, b"k").unwrap();
    p.verify_fingerprint().unwrap();
}

proptest::proptest! {
    #[test]
    fn parse_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        if let Ok(m) = Message::parse(&data) {
            let _ = (m.username(), m.priority(), m.xor_mapped_address(), m.verify_fingerprint());
            for _ in m.attributes() {}
        }
    }
}
