//! SDP: every captured offer/answer (Chromium, aiortc) round-trips byte for byte,
//! and the typed views read what negotiation needs.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
use softbus_rtc::sdp::{Direction, SdpAnswer, SdpError, SdpOffer, SessionDescription, Setup};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

const ALL: [&str; 5] = [
    "aiortc-offer.sdp",
    "chrome-answer-to-aiortc-offer.sdp",
    "chrome-offer-av.sdp",
    "chrome-offer-datachannel-loopback.sdp",
    "chrome-offer-datachannel.sdp",
];

#[test]
fn every_fixture_round_trips_byte_for_byte() {
    for f in ALL {
        let text = fixture(f);
        let sdp = SessionDescription::parse(&text).unwrap();
        assert_eq!(sdp.to_string(), text, "{f}");
        for m in &sdp.media {
            m.media_line().unwrap();
            for c in m.candidates() {
                let c = c.unwrap();
                // candidates re-serialize to their original text
                assert!(
                    m.lines
                        .iter()
                        .any(|l| l.value == format!("candidate:{}", c.to_value())),
                    "{f}: {}",
                    c.to_value()
                );
            }
            m.rtpmaps().unwrap();
            m.fmtps().unwrap();
            m.rtcp_fbs().unwrap();
            m.extmaps().unwrap();
            m.ssrcs().unwrap();
            sdp.fingerprints(m).unwrap();
        }
    }
}

#[test]
fn chrome_datachannel_offer_views() {
    let o = SdpOffer::parse(&fixture("chrome-offer-datachannel.sdp")).unwrap();
    let origin = o.origin().unwrap();
    assert_eq!(
        (
            origin.session_id,
            origin.session_version,
            origin.address.as_str()
        ),
        (6110258064176735084, 2, "127.0.0.1")
    );
    assert_eq!(o.bundle(), Some(vec!["0".to_owned()]));
    let m = &o.media[0];
    let ml = m.media_line().unwrap();
    assert_eq!(
        (
            ml.kind.as_str(),
            ml.port,
            ml.proto.as_str(),
            ml.formats.as_slice()
        ),
        (
            "application",
            9,
            "UDP/DTLS/SCTP",
            &["webrtc-datachannel".to_owned()][..]
        )
    );
    assert_eq!(
        (o.ice_ufrag(m), o.ice_pwd(m)),
        (Some("Kci+"), Some("UDNVNQqLe3ssnnKlPzU7ePHx"))
    );
    assert_eq!(m.ice_options(), vec!["trickle"]);
    assert_eq!(m.setup().unwrap(), Some(Setup::ActPass));
    assert_eq!(
        (
            m.mid(),
            m.sctp_port().unwrap(),
            m.max_message_size().unwrap()
        ),
        (Some("0"), Some(5000), Some(262144))
    );
    let fp = &o.fingerprints(m).unwrap()[0];
    assert_eq!(
        (
            fp.algorithm.as_str(),
            fp.digest.len(),
            fp.digest[0],
            fp.digest[31]
        ),
        ("sha-256", 32, 0xE3, 0xD1)
    );
    assert_eq!(
        fp.to_value(),
        m.attribute_values("fingerprint").next().unwrap().unwrap()
    );
    let c: Vec<_> = m.candidates().into_iter().map(Result::unwrap).collect();
    assert_eq!(c.len(), 2);
    assert_eq!(
        (
            c[0].component,
            c[0].transport.as_str(),
            c[0].priority,
            c[0].port,
            c[0].typ.as_str()
        ),
        (1, "udp", 2113937151, 35416, "host")
    );
    assert!(c[0].address.ends_with(".local") && c[0].ip().is_none());
    assert_eq!(
        c[0].extensions,
        vec![
            ("generation".to_owned(), "0".to_owned()),
            ("network-cost".to_owned(), "999".to_owned())
        ]
    );
}

#[test]
fn chrome_av_offer_views() {
    let o = SdpOffer::parse(&fixture("chrome-offer-av.sdp")).unwrap();
    assert_eq!(
        o.bundle(),
        Some(vec!["0".to_owned(), "1".to_owned(), "2".to_owned()])
    );
    let audio = o.media_by_mid("0").unwrap();
    assert_eq!(audio.media_line().unwrap().kind, "audio");
    assert_eq!(audio.direction(), Direction::SendRecv);
    assert!(audio.rtcp_mux());
    let opus = audio
        .rtpmaps()
        .unwrap()
        .into_iter()
        .find(|r| r.payload_type == 111)
        .unwrap();
    assert_eq!(
        (opus.encoding.as_str(), opus.clock_rate, opus.channels),
        ("opus", 48000, Some(2))
    );
    let fmtp = audio
        .fmtps()
        .unwrap()
        .into_iter()
        .find(|f| f.payload_type == 111)
        .unwrap();
    assert_eq!(fmtp.params, "minptime=10;useinbandfec=1");
    let ext = audio.extmaps().unwrap();
    assert_eq!(
        (ext[0].id, ext[0].uri.as_str()),
        (1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level")
    );
    let ssrcs = audio.ssrcs().unwrap();
    assert_eq!(
        (
            ssrcs[0].ssrc,
            ssrcs[0].attribute.as_str(),
            ssrcs[0].value.as_deref()
        ),
        (571909816, "cname", Some("1No8zoQ8Zl031erB"))
    );
    assert_eq!(
        audio.msids()[0].track.as_deref(),
        Some("0a5acac2-1aa7-40af-bb24-9d7bac3f400d")
    );
    let video = o.media_by_mid("1").unwrap();
    let fbs = video.rtcp_fbs().unwrap();
    assert!(fbs
        .iter()
        .any(|f| f.payload_type == Some(96) && f.feedback == "nack pli"));
    assert_eq!(video.setup().unwrap(), Some(Setup::ActPass));
}

#[test]
fn aiortc_offer_and_chrome_answer() {
    let o = SdpOffer::parse(&fixture("aiortc-offer.sdp")).unwrap();
    let m = &o.media[0];
    let fps = o.fingerprints(m).unwrap();
    assert_eq!(
        fps.iter()
            .map(|f| (f.algorithm.as_str(), f.digest.len()))
            .collect::<Vec<_>>(),
        vec![("sha-256", 32), ("sha-384", 48), ("sha-512", 64)]
    );
    assert!(m.end_of_candidates());
    let a = SdpAnswer::parse(&fixture("chrome-answer-to-aiortc-offer.sdp")).unwrap();
    let am = &a.media[0];
    assert_eq!(am.setup().unwrap(), Some(Setup::Active));
    assert_eq!(am.mid(), m.mid());
}

#[test]
fn unknown_lines_survive_and_lf_is_kept() {
    let text = "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\na=x-custom:1 2 3\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\nb=AS:30\na=mid:0\na=zzz\n";
    let s = SessionDescription::parse(text).unwrap();
    assert_eq!(s.to_string(), text);
    assert_eq!(s.session_attribute("x-custom"), Some("1 2 3"));
}

#[test]
fn rejections() {
    assert_eq!(
        SessionDescription::parse("o=- 1 1 IN IP4 0.0.0.0\r\n"),
        Err(SdpError::NotVersion0)
    );
    assert_eq!(
        SessionDescription::parse("v=1\r\n"),
        Err(SdpError::NotVersion0)
    );
    assert_eq!(SessionDescription::parse(""), Err(SdpError::NotVersion0));
    assert_eq!(
        SessionDescription::parse("v=0\r\nnonsense\r\n"),
        Err(SdpError::BadLine { line: 2 })
    );
    assert_eq!(
        SessionDescription::parse("v=0\r\nA=x\r\n"),
        Err(SdpError::BadLine { line: 2 })
    );
    assert!(matches!(
        SessionDescription::parse(&"a".repeat(300_000)),
        Err(SdpError::TooLarge(_))
    ));
    let s = SessionDescription::parse("v=0\r\no=- x 1 IN IP4 0.0.0.0\r\nm=audio\r\na=setup:sideways\r\na=fingerprint:md5 00\r\na=candidate:1 1 udp\r\na=rtpmap:x\r\na=sctp-port:99999\r\n").unwrap();
    assert_eq!(s.origin(), Err(SdpError::Malformed("o= session id")));
    let m = &s.media[0];
    assert_eq!(m.media_line(), Err(SdpError::Malformed("m=")));
    assert_eq!(m.setup(), Err(SdpError::Malformed("a=setup")));
    assert!(m.fingerprints().is_err());
    assert!(m.candidates()[0].is_err());
    assert!(m.rtpmaps().is_err());
    assert!(m.sctp_port().is_err());
}

proptest::proptest! {
    /// Whatever parses serializes back to the same lines.
    #[test]
    fn parse_never_panics_and_round_trips(lines in proptest::collection::vec("[a-z]=[ -~]{0,40}", 0..20)) {
        let text = format!("v=0\r\n{}", lines.iter().map(|l| format!("{l}\r\n")).collect::<String>());
        if let Ok(s) = SessionDescription::parse(&text) {
            proptest::prop_assert_eq!(s.to_string(), text);
            for m in &s.media {
                let _ = (m.media_line(), m.candidates(), m.rtpmaps(), m.extmaps(), m.ssrcs(), m.fingerprints());
            }
        }
    }
}
