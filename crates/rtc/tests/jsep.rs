//! JSEP scenarios as libwebrtc runs them: initial offer order, offer/answer between two
//! engines with the signaling states, pending/current descriptions, direction
//! intersection, data section last, m-line recycling with a new mid after a stop,
//! ICE restart and session versions, rollback, invalid transitions, and answering a
//! captured Chromium offer.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
use softbus_rtc::jsep::{
    DtlsSide, Jsep, JsepError, LocalTransport, MediaKind, SdpType, SignalingState,
};
use softbus_rtc::sdp::{Direction, SessionDescription, Setup};

fn engine(seed: u8) -> Jsep {
    let mut n = u32::from(seed);
    Jsep::new(
        LocalTransport::new(format!("sha-256 {}", vec!["AB"; 32].join(":"))),
        Box::new(move |len| {
            n = n.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (0..len)
                .map(|i| char::from(b'a' + ((n as usize + i * 7) % 26) as u8))
                .collect()
        }),
    )
}

fn mids(s: &SessionDescription) -> Vec<(String, String, u16)> {
    s.media
        .iter()
        .map(|m| {
            let l = m.media_line().unwrap();
            (l.kind, m.mid().unwrap().to_owned(), l.port)
        })
        .collect()
}

fn negotiate(a: &mut Jsep, b: &mut Jsep) -> (String, String) {
    let offer = a.create_offer().unwrap();
    a.set_local_description(SdpType::Offer, &offer).unwrap();
    assert_eq!(a.state(), SignalingState::HaveLocalOffer);
    b.set_remote_description(SdpType::Offer, &offer).unwrap();
    assert_eq!(b.state(), SignalingState::HaveRemoteOffer);
    let answer = b.create_answer().unwrap();
    b.set_local_description(SdpType::Answer, &answer).unwrap();
    a.set_remote_description(SdpType::Answer, &answer).unwrap();
    assert_eq!(
        (a.state(), b.state()),
        (SignalingState::Stable, SignalingState::Stable)
    );
    (offer, answer)
}

#[test]
fn initial_offer_order_bundle_and_states() {
    let mut a = engine(1);
    a.create_data_channel();
    a.add_transceiver(MediaKind::Audio, Direction::SendRecv);
    a.add_transceiver(MediaKind::Video, Direction::SendOnly);
    let offer = a.create_offer().unwrap();
    let o = SessionDescription::parse(&offer).unwrap();
    // Transceivers in the order added, the data section last even though it was created first.
    assert_eq!(
        mids(&o),
        vec![
            ("audio".into(), "0".into(), 9),
            ("video".into(), "1".into(), 9),
            ("application".into(), "2".into(), 9)
        ]
    );
    assert_eq!(o.bundle().unwrap(), vec!["0", "1", "2"]);
    assert!(o.media[..2].iter().all(|m| m.rtcp_mux()));
    assert!(o
        .media
        .iter()
        .all(|m| m.setup().unwrap() == Some(Setup::ActPass)));
    assert_eq!(o.media[1].direction(), Direction::SendOnly);
    assert_eq!(o.origin().unwrap().session_version, 2);
    assert!(
        a.transceivers().iter().all(|t| t.mid.is_none()),
        "mids are associated at setLocalDescription"
    );
    // A description that is not the last created is refused.
    assert_eq!(
        a.set_local_description(SdpType::Offer, &offer.replace("sendonly", "recvonly")),
        Err(JsepError::Modified)
    );
    a.set_local_description(SdpType::Offer, &offer).unwrap();
    assert_eq!(a.transceivers()[0].mid.as_deref(), Some("0"));
    assert!(a.pending().0.is_some() && a.current().0.is_none());
}

#[test]
fn offer_answer_between_two_engines() {
    let (mut a, mut b) = (engine(1), engine(2));
    a.add_transceiver(MediaKind::Audio, Direction::SendRecv);
    a.add_transceiver(MediaKind::Video, Direction::SendOnly);
    a.create_data_channel();
    b.add_transceiver(MediaKind::Audio, Direction::RecvOnly);
    let (_, answer) = negotiate(&mut a, &mut b);
    let ans = SessionDescription::parse(&answer).unwrap();
    assert_eq!(
        mids(&ans).iter().map(|m| m.1.clone()).collect::<Vec<_>>(),
        vec!["0", "1", "2"]
    );
    // b wanted recvonly audio; the offer sends and receives: answer recvonly. Video: offer
    // sendonly, b has no video transceiver, so a recvonly one is made.
    assert_eq!(
        (ans.media[0].direction(), ans.media[1].direction()),
        (Direction::RecvOnly, Direction::RecvOnly)
    );
    assert!(ans
        .media
        .iter()
        .all(|m| m.setup().unwrap() == Some(Setup::Active)));
    assert_eq!(b.transceivers().len(), 2);
    assert_eq!(
        a.transceivers()[0].current_direction,
        Some(Direction::SendOnly)
    );
    assert_eq!(
        a.transceivers()[1].current_direction,
        Some(Direction::SendOnly)
    );
    assert!(a.current().0.is_some() && a.current().1.is_some() && a.pending() == (None, None));
}

#[test]
fn stopped_section_is_rejected_then_recycled_with_a_new_mid() {
    let (mut a, mut b) = (engine(3), engine(4));
    let audio = a.add_transceiver(MediaKind::Audio, Direction::SendRecv);
    a.add_transceiver(MediaKind::Video, Direction::SendRecv);
    negotiate(&mut a, &mut b);
    a.stop_transceiver(audio).unwrap();
    let (offer, _) = negotiate(&mut a, &mut b);
    let o = SessionDescription::parse(&offer).unwrap();
    assert_eq!(
        mids(&o),
        vec![
            ("audio".into(), "0".into(), 0),
            ("video".into(), "1".into(), 9)
        ],
        "stopped: port 0, still in place"
    );
    assert_eq!(o.bundle().unwrap(), vec!["1"]);
    // A new transceiver takes the rejected m-line, with a mid never used before.
    a.add_transceiver(MediaKind::Video, Direction::SendRecv);
    a.create_data_channel();
    let (offer, _) = negotiate(&mut a, &mut b);
    let o = SessionDescription::parse(&offer).unwrap();
    assert_eq!(
        mids(&o),
        vec![
            ("video".into(), "2".into(), 9),
            ("video".into(), "1".into(), 9),
            ("application".into(), "3".into(), 9)
        ]
    );
    let v = o.origin().unwrap().session_version;
    assert_eq!(v, 4, "one version per offer created");
}

#[test]
fn ice_restart_changes_credentials() {
    let (mut a, mut b) = (engine(5), engine(6));
    a.create_data_channel();
    let (o1, _) = negotiate(&mut a, &mut b);
    let first = SessionDescription::parse(&o1).unwrap();
    let (o2, _) = negotiate(&mut a, &mut b);
    let same = SessionDescription::parse(&o2).unwrap();
    assert_eq!(
        same.ice_ufrag(&same.media[0]),
        first.ice_ufrag(&first.media[0]),
        "no restart, same credentials"
    );
    a.restart_ice();
    let (o3, _) = negotiate(&mut a, &mut b);
    let restarted = SessionDescription::parse(&o3).unwrap();
    assert_ne!(
        restarted.ice_ufrag(&restarted.media[0]),
        first.ice_ufrag(&first.media[0])
    );
    assert_ne!(
        restarted.ice_pwd(&restarted.media[0]),
        first.ice_pwd(&first.media[0])
    );
    assert_eq!(
        restarted.media[0].mid(),
        Some("0"),
        "the data section keeps its mid"
    );
    assert!(restarted.origin().unwrap().session_version > same.origin().unwrap().session_version);
}

#[test]
fn rollback_and_invalid_transitions() {
    let (mut a, mut b) = (engine(7), engine(8));
    assert_eq!(
        a.create_answer(),
        Err(JsepError::InvalidState(SignalingState::Stable))
    );
    a.add_transceiver(MediaKind::Audio, Direction::SendRecv);
    let offer = a.create_offer().unwrap();
    a.set_local_description(SdpType::Offer, &offer).unwrap();
    assert_eq!(
        a.set_remote_description(SdpType::Offer, &offer),
        Err(JsepError::InvalidState(SignalingState::HaveLocalOffer)),
        "glare"
    );
    a.set_local_description(SdpType::Rollback, "").unwrap();
    assert_eq!(a.state(), SignalingState::Stable);
    assert_eq!(
        a.transceivers()[0].mid,
        None,
        "the offer's mid is unassigned again"
    );
    assert!(a.local_description().is_none());
    assert_eq!(
        a.set_local_description(SdpType::Rollback, ""),
        Err(JsepError::InvalidState(SignalingState::Stable))
    );
    // Remote offer rolled back too, including the mids an answer had taken.
    b.set_remote_description(SdpType::Offer, &offer).unwrap();
    b.create_answer().unwrap();
    assert_eq!(b.transceivers()[0].mid.as_deref(), Some("0"));
    b.set_remote_description(SdpType::Rollback, "").unwrap();
    assert_eq!(
        (b.state(), b.remote_description().is_none()),
        (SignalingState::Stable, true)
    );
    assert!(
        b.transceivers().is_empty(),
        "the transceiver the offer created goes with it"
    );
    assert_eq!(
        b.set_remote_description(SdpType::Answer, &offer),
        Err(JsepError::InvalidState(SignalingState::Stable))
    );
    // Pranswer then answer.
    b.set_remote_description(SdpType::Offer, &offer).unwrap();
    let pr = b.create_answer().unwrap();
    b.set_local_description(SdpType::Pranswer, &pr).unwrap();
    assert_eq!(b.state(), SignalingState::HaveLocalPranswer);
    let fin = b.create_answer().unwrap();
    b.set_local_description(SdpType::Answer, &fin).unwrap();
    assert_eq!(b.state(), SignalingState::Stable);
    assert!(matches!(
        b.set_remote_description(SdpType::Offer, "garbage"),
        Err(JsepError::Sdp(_))
    ));
}

#[test]
fn answers_a_captured_chromium_offer() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/chrome-offer-av.sdp"
    ))
    .unwrap();
    let mut b = engine(9);
    b.set_remote_description(SdpType::Offer, &text).unwrap();
    let answer = b.create_answer().unwrap();
    let ans = SessionDescription::parse(&answer).unwrap();
    let offer = SessionDescription::parse(&text).unwrap();
    assert_eq!(
        ans.media.iter().map(|m| m.mid()).collect::<Vec<_>>(),
        offer.media.iter().map(|m| m.mid()).collect::<Vec<_>>()
    );
    assert_eq!(ans.bundle(), offer.bundle());
    assert_eq!(
        ans.media.last().unwrap().media_line().unwrap().kind,
        "application"
    );
    b.set_local_description(SdpType::Answer, &answer).unwrap();
    assert_eq!(b.state(), SignalingState::Stable);
}

fn creds(sdp: &str) -> (String, String) {
    let d = SessionDescription::parse(sdp).unwrap();
    let m = &d.media[0];
    (
        d.ice_ufrag(m).unwrap().to_owned(),
        d.ice_pwd(m).unwrap().to_owned(),
    )
}

fn setup(sdp: &str) -> Option<Setup> {
    SessionDescription::parse(sdp).unwrap().media[0]
        .setup()
        .unwrap()
}

/// negotiate; A.restart_ice(); negotiate: both sides change their credentials
/// (RFC 8445 §9), not only the offerer.
#[test]
fn the_answerer_follows_a_remote_ice_restart() {
    let (mut a, mut b) = (engine(11), engine(12));
    a.create_data_channel();
    let (o1, a1) = negotiate(&mut a, &mut b);
    a.restart_ice();
    let (o2, a2) = negotiate(&mut a, &mut b);
    assert_ne!(creds(&o1), creds(&o2), "the offerer restarted");
    assert_ne!(creds(&a1), creds(&a2), "the answerer restarted too");
    // No restart asked: the next round keeps both.
    let (o3, a3) = negotiate(&mut a, &mut b);
    assert_eq!((creds(&o3), creds(&a3)), (creds(&o2), creds(&a2)));
}

/// A offered first and B answered active (B client, A server). When B re-offers
/// (actpass), A's answer keeps the role of the existing association: passive
/// (RFC 8842 §5.3), not a hard-coded active that would flip it.
#[test]
fn a_re_offer_keeps_the_dtls_roles() {
    let (mut a, mut b) = (engine(13), engine(14));
    a.create_data_channel();
    let (o1, a1) = negotiate(&mut a, &mut b);
    assert_eq!(
        (setup(&o1), setup(&a1)),
        (Some(Setup::ActPass), Some(Setup::Active))
    );
    assert_eq!(
        (a.dtls_side(), b.dtls_side()),
        (Some(DtlsSide::Server), Some(DtlsSide::Client))
    );
    let (o2, a2) = negotiate(&mut b, &mut a);
    assert_eq!(setup(&o2), Some(Setup::ActPass));
    assert_eq!(setup(&a2), Some(Setup::Passive), "A stays the DTLS server");
    assert_eq!(
        (a.dtls_side(), b.dtls_side()),
        (Some(DtlsSide::Server), Some(DtlsSide::Client))
    );
    // An offer that says active still gets passive, one that says passive active.
    let mut c = engine(15);
    let o = o1.replace("a=setup:actpass", "a=setup:passive");
    c.set_remote_description(SdpType::Offer, &o).unwrap();
    assert_eq!(setup(&c.create_answer().unwrap()), Some(Setup::Active));
}

/// X offers audio+video; Y applies it (the transceivers exist now, RFC 8829
/// §5.10), answers, rolls back (they go, §4.1.10.2), then offers: no m-lines,
/// as Chromium does.
#[test]
fn transceivers_of_a_remote_offer_come_with_it_and_go_with_its_rollback() {
    let (mut x, mut y) = (engine(16), engine(17));
    x.add_transceiver(MediaKind::Audio, Direction::SendRecv);
    x.add_transceiver(MediaKind::Video, Direction::SendRecv);
    let offer = x.create_offer().unwrap();
    x.set_local_description(SdpType::Offer, &offer).unwrap();
    y.set_remote_description(SdpType::Offer, &offer).unwrap();
    assert_eq!(
        y.transceivers().len(),
        2,
        "created when the offer is applied"
    );
    assert_eq!(
        y.transceivers()
            .iter()
            .map(|t| (t.kind, t.direction, t.mid.clone()))
            .collect::<Vec<_>>(),
        vec![
            (MediaKind::Audio, Direction::RecvOnly, Some("0".to_owned())),
            (MediaKind::Video, Direction::RecvOnly, Some("1".to_owned()))
        ]
    );
    y.create_answer().unwrap();
    y.set_remote_description(SdpType::Rollback, "").unwrap();
    assert!(y.transceivers().is_empty());
    let own = y.create_offer().unwrap();
    assert!(
        SessionDescription::parse(&own).unwrap().media.is_empty(),
        "{own}"
    );
}

/// restart_ice() credentials take effect when the offer carrying them is
/// applied: a restart offer created and discarded does not make the next answer
/// restart ICE unasked, and a rolled-back restart offer restores the credentials.
#[test]
fn restart_credentials_take_effect_when_applied() {
    let (mut a, mut b) = (engine(18), engine(19));
    a.create_data_channel();
    let (o1, _) = negotiate(&mut a, &mut b);
    a.restart_ice();
    let discarded = a.create_offer().unwrap();
    assert_ne!(
        creds(&discarded),
        creds(&o1),
        "the restart offer has new credentials"
    );
    // B offers instead; A's answer keeps A's credentials.
    let (_, a_answer) = negotiate(&mut b, &mut a);
    assert_eq!(creds(&a_answer), creds(&o1), "no restart unasked");
    // Applied, then rolled back: the old credentials are back, the restart still pending.
    let restart = a.create_offer().unwrap();
    a.set_local_description(SdpType::Offer, &restart).unwrap();
    assert_eq!(a.ice_credentials().0, creds(&restart).0);
    a.set_local_description(SdpType::Rollback, "").unwrap();
    assert_eq!(a.ice_credentials().0, creds(&o1).0);
    let (o3, _) = negotiate(&mut a, &mut b);
    assert_ne!(
        creds(&o3),
        creds(&o1),
        "restart_ice() still applies to the next offer"
    );
}

/// The answer policy of an answering node: data accepted, media rejected with
/// port 0 and no transceiver; ICE-lite and its one host candidate written by the
/// SDP types.
#[test]
fn a_data_only_ice_lite_answer() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/chrome-offer-av.sdp"
    ))
    .unwrap();
    let mut t = LocalTransport::new(format!("sha-256 {}", vec!["AB"; 32].join(":")));
    let addr: std::net::SocketAddr = "192.0.2.5:50000".parse().unwrap();
    t.candidates = vec![softbus_rtc::sdp::Candidate::host("1", addr, 2_130_706_431)];
    t.end_of_candidates = true;
    t.default_address = Some(addr);
    t.ice_lite = true;
    let mut b = Jsep::new(t, Box::new(|n| "x".repeat(n)));
    b.set_answer_policy(softbus_rtc::jsep::AnswerPolicy::DataOnly);
    b.set_answer_side(DtlsSide::Server);
    b.set_remote_description(SdpType::Offer, &text).unwrap();
    assert!(b.transceivers().is_empty());
    let answer = b.create_answer().unwrap();
    let ans = SessionDescription::parse(&answer).unwrap();
    let ports: Vec<(String, u16)> = ans
        .media
        .iter()
        .map(|m| {
            let l = m.media_line().unwrap();
            (l.kind, l.port)
        })
        .collect();
    assert_eq!(
        ports,
        vec![
            ("audio".into(), 0),
            ("video".into(), 0),
            ("application".into(), 50000)
        ]
    );
    assert_eq!(ans.bundle().unwrap(), vec!["2"]);
    assert!(answer.contains("a=ice-lite\r\n"));
    let data = &ans.media[2];
    assert_eq!(data.setup().unwrap(), Some(Setup::Passive));
    assert!(answer.contains("c=IN IP4 192.0.2.5\r\n"));
    let c = data.candidates();
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0].as_ref().unwrap().to_value(),
        "1 1 udp 2130706431 192.0.2.5 50000 typ host"
    );
    assert!(data.end_of_candidates());
    b.set_local_description(SdpType::Answer, &answer).unwrap();
    assert_eq!(b.dtls_side(), Some(DtlsSide::Server));
}

/// Answering Chromium's audio+video offer negotiates codecs (RFC 8829 §5.3.1):
/// the offer's payload types and order for what we carry (Opus; VP8, VP9,
/// H264 in modes 0 and 1 of every profile, AV1), RTX for each kept codec,
/// the feedback and header extensions both sides know with the offer's ids;
/// RED, G722, PCMU/PCMA, CN and telephone-event are left out.
#[test]
fn answering_chromium_negotiates_codecs_feedback_and_extensions() {
    use softbus_rtc::jsep::codecs::{find_payload_type, negotiate, VIDEO_CODECS};
    let offer = include_str!("fixtures/chrome-offer-av.sdp");
    let mut b = engine(7);
    b.set_remote_description(SdpType::Offer, offer).unwrap();
    let answer = b.create_answer().unwrap();
    let a = SessionDescription::parse(&answer).unwrap();
    let audio = &a.media[0];
    let line = audio.media_line().unwrap();
    assert_eq!(
        (line.kind.as_str(), line.formats.clone()),
        ("audio", vec!["111".to_owned()])
    );
    assert!(answer.contains("a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"), "{answer}");
    let ext: Vec<(u16, String)> = audio
        .extmaps()
        .unwrap()
        .into_iter()
        .map(|e| (e.id, e.uri))
        .collect();
    assert_eq!(
        ext.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let video = &a.media[1];
    let vf = video.media_line().unwrap().formats;
    let offered = SessionDescription::parse(offer).unwrap();
    let of = offered.media[1].media_line().unwrap().formats;
    // Every answered payload type was offered, in the offer's order.
    let positions: Vec<usize> = vf
        .iter()
        .map(|f| of.iter().position(|o| o == f).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{vf:?}");
    for (pt, apt) in [
        ("96", None),
        ("97", Some(96)),
        ("102", None),
        ("103", Some(102)),
        ("45", None),
        ("46", Some(45)),
        ("98", None),
    ] {
        assert!(vf.contains(&pt.to_owned()), "{pt} in {vf:?}");
        if let Some(apt) = apt {
            assert!(
                answer.contains(&format!("a=fmtp:{pt} apt={apt}\r\n")),
                "{pt}"
            );
        }
    }
    assert!(
        answer.contains("a=rtcp-fb:96 nack pli\r\n") && answer.contains("a=rtcp-fb:96 ccm fir\r\n")
    );
    let ids: Vec<u16> = video.extmaps().unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        vec![2, 13, 3, 4, 10, 11],
        "toffset, playout-delay, content type, timing and color space are left out"
    );
    // The remote-created transceivers only receive: no msid in the answer.
    assert_eq!(video.direction(), Direction::RecvOnly);
    assert!(!answer.contains("a=msid:"));
    // A stream's H264 format maps to the viewer's payload type.
    let n = negotiate(&offered.media[1], VIDEO_CODECS).unwrap();
    assert_eq!(
        find_payload_type(
            &n,
            "h264",
            Some("profile-level-id=42e01f;packetization-mode=1")
        ),
        Some(108)
    );
    assert_eq!(
        find_payload_type(
            &n,
            "H264",
            Some("packetization-mode=0;profile-level-id=42001f")
        ),
        Some(104)
    );
    assert_eq!(
        find_payload_type(
            &n,
            "H264",
            Some("packetization-mode=1;profile-level-id=640032")
        ),
        None
    );
    assert_eq!(find_payload_type(&n, "VP8", None), Some(96));
}

/// H264 profiles as libwebrtc tells them apart (RFC 6184 §8.1).
#[test]
fn h264_profiles_and_modes_match_as_libwebrtc_does() {
    use softbus_rtc::jsep::codecs::h264_compatible;
    let f = |s: &str| Some(s.to_owned());
    let cases = [
        (
            "packetization-mode=1;profile-level-id=42e01f",
            "packetization-mode=1;profile-level-id=42c01f",
            true,
        ),
        (
            "packetization-mode=1;profile-level-id=42e01f",
            "packetization-mode=1;profile-level-id=42e034",
            true,
        ),
        (
            "packetization-mode=1;profile-level-id=42e01f",
            "packetization-mode=1;profile-level-id=42001f",
            false,
        ),
        (
            "packetization-mode=1;profile-level-id=42e01f",
            "packetization-mode=0;profile-level-id=42e01f",
            false,
        ),
        (
            "packetization-mode=1;profile-level-id=4d001f",
            "packetization-mode=1;profile-level-id=4d0032",
            true,
        ),
        (
            "packetization-mode=1;profile-level-id=640c1f",
            "packetization-mode=1;profile-level-id=640c34",
            true,
        ),
        (
            "packetization-mode=1;profile-level-id=640c1f",
            "packetization-mode=1;profile-level-id=64001f",
            false,
        ),
        ("profile-level-id=42000a", "", true),
        ("profile-level-id=zz", "profile-level-id=zz", false),
    ];
    for (a, b, same) in cases {
        let b = if b.is_empty() { None } else { f(b) };
        assert_eq!(
            h264_compatible(f(a).as_deref(), b.as_deref()),
            same,
            "{a} / {b:?}"
        );
    }
}

/// A bundled section the offerer sends with port 0 and `a=bundle-only`
/// (RFC 8843 §7.3.3; GStreamer's webrtcbin does) is answered on the bundle's
/// transport, not rejected; a port-0 section outside the group still is.
#[test]
fn bundle_only_sections_are_answered() {
    let offer = "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE video0 audio1\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=setup:actpass\r\na=ice-ufrag:u1\r\na=ice-pwd:p1p1p1p1p1p1p1p1p1p1p1p1\r\n\
a=fingerprint:sha-256 4C:8F:67:26:4B:1A:6F:88:4C:0B:0C:6C:CE:A1:F0:3B:C0:7C:ED:66:22:EE:02:D0:82:06:AD:48:A1:E5:59:C9\r\n\
a=rtcp-mux\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\na=mid:video0\r\n\
m=audio 0 UDP/TLS/RTP/SAVPF 100\r\nc=IN IP4 0.0.0.0\r\na=bundle-only\r\na=rtcp-mux\r\na=sendonly\r\na=rtpmap:100 OPUS/48000/2\r\na=mid:audio1\r\n\
m=audio 0 UDP/TLS/RTP/SAVPF 100\r\nc=IN IP4 0.0.0.0\r\na=bundle-only\r\na=sendonly\r\na=rtpmap:100 OPUS/48000/2\r\na=mid:loose\r\n";
    let mut b = engine(2);
    b.set_remote_description(SdpType::Offer, offer).unwrap();
    let answer = SessionDescription::parse(&b.create_answer().unwrap()).unwrap();
    let ports: Vec<(String, u16)> = answer
        .media
        .iter()
        .map(|m| (m.mid().unwrap().to_owned(), m.media_line().unwrap().port))
        .collect();
    assert_eq!(ports[0].0, "video0");
    assert_ne!(
        ports[1].1, 0,
        "the bundle-only audio is accepted: {ports:?}"
    );
    assert_eq!(ports[2].1, 0, "outside the group it is rejected: {ports:?}");
    assert_eq!(
        answer.bundle().unwrap(),
        vec!["video0".to_owned(), "audio1".to_owned()]
    );
}
