//! Entry points shared by the fuzz targets and the corpus replay test.

use crate::sdp::SessionDescription;
use crate::stun::Message;

/// SDP parse, every typed view, and the round trip.
pub fn sdp(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = crate::sdp::frag::TrickleFragment::parse(text) {
        let _ = f.addresses();
    }
    if let Ok(s) = SessionDescription::parse(text) {
        let out = s.to_string();
        // What parsed must parse again to the same description.
        assert_eq!(
            SessionDescription::parse(&out).as_ref().ok(),
            Some(&s),
            "round trip"
        );
        let _ = (s.origin(), s.groups(), s.bundle());
        for m in &s.media {
            let _ = (
                m.media_line(),
                m.mid(),
                m.direction(),
                m.candidates(),
                m.setup(),
                m.rtpmaps(),
                m.fmtps(),
                m.rtcp_fbs(),
                m.extmaps(),
                m.ssrcs(),
                m.msids(),
                m.sctp_port(),
                m.max_message_size(),
                s.fingerprints(m),
            );
        }
    }
}

/// STUN parse and every attribute reader.
pub fn stun(data: &[u8]) {
    if let Ok(m) = Message::parse(data) {
        let _ = (
            m.class(),
            m.method(),
            m.username(),
            m.priority(),
            m.xor_mapped_address(),
            m.verify_fingerprint(),
        );
        for _ in m.attributes() {}
    }
}

/// An ICE-lite agent (RFC 5769's credentials, so that corpus is valid) fed one datagram.
pub fn ice_lite(h: &dyn crate::crypto::Hmac, now: std::time::Instant, data: &[u8]) {
    let mut a = crate::ice::IceLite::new(crate::ice::Credentials {
        local_ufrag: "evtj".into(),
        local_pwd: "VOkJxbRl1RmTxUk/WvJxBt".into(),
        remote_ufrag: None,
    });
    let _ = a.handle_stun(
        now,
        std::net::SocketAddr::from(([127, 0, 0, 1], 5000)),
        data,
        h,
    );
    a.handle_timeout(now);
    while a.poll_transmit().is_some() {}
}

/// DCEP parsing, and SCTP packets fed to a fresh data channel endpoint.
pub fn sctp(now: std::time::Instant, data: &[u8]) {
    let _ = crate::sctp::dcep::Open::parse(data);
    let mut d = crate::sctp::DataChannels::new(false, 1 << 16, 1 << 16);
    for packet in data.split(|b| *b == 0xA5).take(8) {
        d.handle_packet(now, packet);
    }
    d.handle_timeout(now);
    while d.poll_packet().is_some() {}
    while d.poll_event().is_some() {}
}

/// RTP (every accessor, the extension elements, a rebuild) and RTCP compound packets.
pub fn rtp(data: &[u8]) {
    if let Ok(p) = crate::rtp::RtpPacket::parse(data) {
        let _ = (
            p.marker(),
            p.payload_type(),
            p.sequence(),
            p.timestamp(),
            p.ssrc(),
            p.payload(),
            p.header_len(),
        );
        let csrcs: Vec<u32> = p.csrcs().collect();
        let ext: Vec<(u8, &[u8])> = p.extensions().collect();
        // What was read, written again, reads the same.
        let built = crate::rtp::RtpBuilder {
            marker: p.marker(),
            payload_type: p.payload_type(),
            sequence: p.sequence(),
            timestamp: p.timestamp(),
            ssrc: p.ssrc(),
            csrcs: &csrcs,
            extensions: &ext,
            payload: p.payload(),
        }
        .build();
        if let Some(b) = built {
            let q = crate::rtp::RtpPacket::parse(&b).expect("a built packet parses");
            assert_eq!(q.payload(), p.payload());
            assert_eq!(q.extensions().collect::<Vec<_>>(), ext);
        }
    }
    // The relay's per-packet steps take publisher packets as they come.
    let mut w = crate::rewrite::Rewriter::new(1, vec![(96, 100), (111, 111)]);
    w.switch_source();
    if let Ok(Some(out)) = w.rewrite(data) {
        crate::rtp::RtpPacket::parse(&out).expect("a rewritten packet parses");
    }
    // With the viewer's header extension ids and mid written in.
    w.extensions = Some(crate::rewrite::ExtensionMap {
        ids: vec![(1, 2), (3, 14), (5, 200)],
        mid: Some((4, b"1".to_vec())),
        source_mid: Some(9),
    });
    if let Ok(Some(out)) = w.rewrite(data) {
        let p = crate::rtp::RtpPacket::parse(&out).expect("a rewritten packet parses");
        assert_eq!(p.extension(4), Some(&b"1"[..]));
        let original = crate::rtp::RtpPacket::parse(data).expect("it was rewritten");
        assert_eq!(p.payload(), original.payload());
    }
    if let Ok(r) = crate::rewrite::rtx_packet(data, 2, 97, 3) {
        let (_, payload) = crate::rewrite::rtx_original(&r).expect("an RTX packet reads back");
        assert_eq!(
            payload,
            crate::rtp::RtpPacket::parse(data)
                .map(|p| p.payload())
                .unwrap_or_default()
        );
    }
    let _ = crate::rewrite::rtx_original(data);
    if let Ok(packets) = crate::rtp::parse_rtcp(data) {
        for p in packets {
            if let crate::rtp::Rtcp::Nack { pairs, .. } = p {
                let _ = crate::rtp::nack_lost(&pairs);
            }
        }
    }
}

/// Arbitrary bytes as SRTP and SRTCP into a context of every profile (the
/// first byte picks the profile), with `crypto` for the ciphers.
pub fn srtp(data: &[u8], crypto: impl Fn() -> Box<dyn crate::srtp::SrtpCrypto>) {
    use crate::srtp::{Context, Profile};
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let p = match pick % 4 {
        0 => Profile::Aes128CmSha1_80,
        1 => Profile::Aes128CmSha1_32,
        2 => Profile::AeadAes128Gcm,
        _ => Profile::AeadAes256Gcm,
    };
    let key = vec![7u8; p.key_len()];
    let salt = vec![9u8; p.salt_len()];
    let Ok(mut c) = Context::new(p, &key, &salt, crypto()) else {
        return;
    };
    let _ = c.unprotect_rtp(rest);
    let _ = c.unprotect_rtcp(rest);
    // What it protects, it takes back.
    if let Ok(s) = c.protect_rtp(rest) {
        let mut rx = Context::new(p, &key, &salt, crypto()).expect("same keys");
        assert_eq!(
            rx.unprotect_rtp(&s).as_deref().ok(),
            Some(rest),
            "round trip"
        );
    }
}

/// A TURN client brought to an allocation with a pending channel, then fed
/// `data` as a datagram and as stream bytes; and `data` as an ICE server URL.
pub fn turn(h: &dyn crate::crypto::Hmac, now: std::time::Instant, data: &[u8]) {
    use crate::stun::{attr, Class, MessageBuilder, ALLOCATE};
    use crate::turn::{TurnClient, TurnConfig, TurnTransport};
    let _ = crate::turn::server::IceServerUrl::parse(&String::from_utf8_lossy(data));
    for transport in [TurnTransport::Udp, TurnTransport::Tcp] {
        let mut n = 0u8;
        let mut c = TurnClient::new(
            TurnConfig {
                server: ([198, 18, 0, 1], 3478).into(),
                transport,
                username: "u".into(),
                password: "p".into(),
            },
            Box::new(move || {
                n = n.wrapping_add(1);
                [n; 12]
            }),
        );
        c.start(now, h);
        let unauthorized = MessageBuilder::new(Class::Error, ALLOCATE, [1; 12])
            .error_code(401, "Unauthorized")
            .attribute(attr::REALM, b"r")
            .attribute(attr::NONCE, b"n")
            .fingerprint();
        let _ = c.handle_datagram(now, &unauthorized, h);
        let key = h.md5(&[b"u:r:p"]);
        let ok = MessageBuilder::new(Class::Success, ALLOCATE, [2; 12])
            .xor_address(attr::XOR_RELAYED_ADDRESS, ([198, 18, 0, 2], 50_000).into())
            .xor_address(attr::XOR_MAPPED_ADDRESS, ([10, 0, 0, 2], 4000).into())
            .attribute(attr::LIFETIME, &600u32.to_be_bytes())
            .message_integrity(h, &key)
            .fingerprint();
        let _ = c.handle_datagram(now, &ok, h);
        let _ = c.send(now, ([203, 0, 113, 7], 5000).into(), b"x", h);
        let _ = c.handle_datagram(now, data, h);
        for chunk in data.chunks(7) {
            if c.handle_stream(now, chunk, h, &mut |_, _| {}).is_err() {
                break;
            }
        }
        c.handle_timeout(now + std::time::Duration::from_secs(600), h);
        while c.poll_transmit().is_some() {}
    }
}
