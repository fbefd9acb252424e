//! JSEP scenarios as libwebrtc runs them: initial offer order, offer/answer between two
//! engines with the signaling states, pending/current descriptions, direction
//! intersection, data section last, m-line recycling with a new mid after a stop,
//! ICE restart and session versions, rollback, invalid transitions, and answering a
//! captured Chromium offer.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
use softbus_rtc::jsep::{Jsep, JsepError, LocalTransport, MediaKind, SdpType, SignalingState};
use softbus_rtc::sdp::{Direction, SessionDescription, Setup};

fn engine(seed: u8) -> Jsep {
    let mut n = u32::from(seed);
    Jsep::new(
        LocalTransport {
            fingerprint: format!("sha-256 {}", vec!["AB"; 32].join(":")),
            candidates: vec![],
        },
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
    assert_eq!(b.transceivers()[0].mid, None);
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
