use super::*;

/// The reply softbus_lite sent to requester 10.77.0.3 (softbus-wire.md §1.4, observed on the wire),
/// with a two-byte payload standing in for the JSON.
fn lite_reply_bytes() -> Vec<u8> {
    let mut v = vec![0x50, 0x02, 0x00, 0x01, 0x39];
    v.extend_from_slice(b"10.77.0.3");
    v.extend_from_slice(&[0x8d, 0x02]);
    v.extend_from_slice(b"device_discover");
    v.push(0xff);
    v.extend_from_slice(b"{}");
    v
}

#[test]
fn bytes_to_fields_lite_reply() {
    let b = lite_reply_bytes();
    let p = Packet::new_checked(&b[..]).unwrap();
    assert_eq!(p.message_type(), MessageType::NON);
    assert_eq!(p.code(), CODE_POST);
    assert_eq!(p.message_id(), 1);
    assert!(p.token().is_empty());
    let opts: Vec<_> = p.options().map(|o| o.unwrap()).collect();
    assert_eq!(
        opts,
        vec![
            (OPT_URI_HOST, &b"10.77.0.3"[..]),
            (OPT_URI_PATH, &b"device_discover"[..])
        ]
    );
    assert_eq!(p.payload(), b"{}");
}

#[test]
fn fields_to_bytes_lite_reply() {
    let m = Message {
        message_type: MessageType::NON,
        code: CODE_POST,
        message_id: 1,
        token: vec![],
        options: vec![
            CoapOption {
                number: OPT_URI_HOST,
                value: b"10.77.0.3".to_vec(),
            },
            CoapOption {
                number: OPT_URI_PATH,
                value: b"device_discover".to_vec(),
            },
        ],
        payload: b"{}".to_vec(),
    };
    let b = m.emit().unwrap();
    assert_eq!(b, lite_reply_bytes());
    assert_eq!(m.buffer_len(), b.len());
    assert_eq!(Message::parse(&b).unwrap(), m);
}

/// RFC 7252 Appendix A, Figure 16-style GET with token and Uri-Path "temperature":
/// CON GET MID 0x7d34, no token, Uri-Path "temperature" (Figure 17 uses this exact header).
#[test]
fn rfc7252_get_temperature() {
    let mut b = vec![0x40, 0x01, 0x7d, 0x34, 0xbb];
    b.extend_from_slice(b"temperature");
    let m = Message::parse(&b).unwrap();
    assert_eq!(m.message_type, MessageType::CON);
    assert_eq!(m.code, CODE_GET);
    assert_eq!(m.message_id, 0x7d34);
    assert_eq!(m.uri_path(), "temperature");
    assert_eq!(m.emit().unwrap(), b);
    // The 2.05 Content piggybacked response: ACK, MID echoed, payload "22.3 C".
    let mut r = vec![0x60, 0x45, 0x7d, 0x34, 0xff];
    r.extend_from_slice(b"22.3 C");
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.message_type, MessageType::ACK);
    assert_eq!(m.code, 0x45);
    assert_eq!(m.payload, b"22.3 C");
}

#[test]
fn extended_delta_and_length() {
    // delta 13+ (1 byte) and 269+ (2 bytes) in both nibbles.
    let m = Message {
        message_type: MessageType::CON,
        code: CODE_POST,
        message_id: 0xbeef,
        token: vec![1, 2, 3, 4, 5, 6, 7, 8],
        options: vec![
            CoapOption {
                number: 20,
                value: vec![7; 20],
            },
            CoapOption {
                number: 20 + 300,
                value: vec![9; 300],
            },
        ],
        payload: vec![],
    };
    let b = m.emit().unwrap();
    assert_eq!(b[12], 0xdd); // delta 20 -> 13+7, length 20 -> 13+7
    assert_eq!(b[13], 7);
    assert_eq!(b[14], 7);
    assert_eq!(Message::parse(&b).unwrap(), m);
}

#[test]
fn rejections() {
    assert_eq!(
        Packet::new_checked(&[0x50, 0x02, 0x00][..]).unwrap_err(),
        CoapError::Truncated
    );
    assert_eq!(
        Packet::new_checked(&[0x90, 0x02, 0, 1][..]).unwrap_err(),
        CoapError::BadVersion(2)
    );
    assert_eq!(
        Packet::new_checked(&[0x59, 0x02, 0, 1][..]).unwrap_err(),
        CoapError::BadTokenLength(9)
    );
    assert_eq!(
        Packet::new_checked(&[0x52, 0x02, 0, 1, 9][..]).unwrap_err(),
        CoapError::Truncated
    );
    assert_eq!(
        Packet::new_checked(&[0x50, 0x02, 0, 1, 0xf1, 0][..]).unwrap_err(),
        CoapError::ReservedNibble
    );
    assert_eq!(
        Packet::new_checked(&[0x50, 0x02, 0, 1, 0x1f][..]).unwrap_err(),
        CoapError::ReservedNibble
    );
    assert_eq!(
        Packet::new_checked(&[0x50, 0x02, 0, 1, 0x35, b'a'][..]).unwrap_err(),
        CoapError::Truncated
    );
    assert_eq!(
        Packet::new_checked(&[0x50, 0x02, 0, 1, 0xff][..]).unwrap_err(),
        CoapError::EmptyPayload
    );
    assert_eq!(
        Packet::new_checked(&[0x40, 0x00, 0, 1, 0xff, 1][..]).unwrap_err(),
        CoapError::EmptyNotEmpty
    );
    let big = vec![0x50u8; MAX_PDU + 1];
    assert_eq!(
        Packet::new_checked(&big[..]).unwrap_err(),
        CoapError::TooLarge(MAX_PDU + 1)
    );
    let mut many = vec![0x50, 0x02, 0, 1];
    many.extend(std::iter::repeat_n(0x00, MAX_OPTIONS + 1));
    assert_eq!(
        Packet::new_checked(&many[..]).unwrap_err(),
        CoapError::TooManyOptions
    );
    // option number overflow: 14-nibble delta 0xffff + 269
    assert_eq!(
        Packet::new_checked(&[0x50, 0x02, 0, 1, 0xe0, 0xff, 0xff][..]).unwrap_err(),
        CoapError::OptionOverflow
    );
}

#[test]
fn unknown_type_and_option_round_trip() {
    let b = [0x70, 0x00, 0x12, 0x34]; // RST, empty
    let m = Message::parse(&b).unwrap();
    assert_eq!(m.message_type, MessageType::RST);
    assert_eq!(m.emit().unwrap(), b);
    let b = [0x50, 0x02, 0, 1, 0xd1, 0xf0, 0x42, 0xff, b'x']; // option 253, unknown
    let m = Message::parse(&b).unwrap();
    assert_eq!(m.options[0].number, 253);
    assert_eq!(m.emit().unwrap(), b);
}

proptest::proptest! {
    #[test]
    fn parse_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        if let Ok(m) = Message::parse(&data) {
            let again = m.emit().unwrap();
            proptest::prop_assert_eq!(Message::parse(&again).unwrap(), m);
        }
    }
}
