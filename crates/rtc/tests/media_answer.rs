//! Media answers that real publishers and viewers can use (issue 16, item 2):
//! a publisher is answered with the formats browsers decode first, a viewer
//! that takes none of a stream's formats is refused with the reason, and
//! `a=rtcp-rsize` is answered only when offered.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
use softbus_crypto::dtls::DtlsIdentity;
use softbus_rtc::jsep::MediaKind;
use softbus_rtc::peer::{LocalParams, MediaAnswer, Peer, PeerError, SendPlan, SendTrack};
use softbus_rtc::sdp::{SdpOffer, SessionDescription};

fn local() -> LocalParams {
    let id = DtlsIdentity::generate().unwrap();
    LocalParams {
        candidate: "127.0.0.1:50000".parse().unwrap(),
        ice_ufrag: "answ".into(),
        ice_pwd: "answerer-password-000000".into(),
        fingerprint: id.fingerprint("sha-256").unwrap(),
        session_id: 9,
        full_ice: None,
    }
}

fn answer(offer: &str, media: MediaAnswer) -> Result<(Peer, String), PeerError> {
    let id = DtlsIdentity::generate().unwrap();
    Peer::answer_media(
        &SdpOffer::parse(offer).unwrap(),
        &local(),
        Box::new(id.factory().unwrap()),
        Box::new(|n| "x".repeat(n)),
        media,
    )
}

/// An offer with one video section of `formats` (`(pt, rtpmap, fmtp)`),
/// `direction`, and `a=rtcp-rsize` if `rsize`.
fn video_offer(formats: &[(u8, &str, Option<&str>)], direction: &str, rsize: bool) -> String {
    let pts: Vec<String> = formats.iter().map(|f| f.0.to_string()).collect();
    let mut s = format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE video0\r\n\
         m=video 9 UDP/TLS/RTP/SAVPF {}\r\nc=IN IP4 0.0.0.0\r\n\
         a=ice-ufrag:webr\r\na=ice-pwd:webrtcbin-password-00000\r\n\
         a=fingerprint:sha-256 {}\r\na=setup:actpass\r\na=mid:video0\r\na={direction}\r\n\
         a=rtcp-mux\r\n",
        pts.join(" "),
        vec!["AB"; 32].join(":")
    );
    if rsize {
        s.push_str("a=rtcp-rsize\r\n");
    }
    for (pt, map, fmtp) in formats {
        s.push_str(&format!(
            "a=rtpmap:{pt} {map}\r\na=rtcp-fb:{pt} nack pli\r\n"
        ));
        if let Some(f) = fmtp {
            s.push_str(&format!("a=fmtp:{pt} {f}\r\n"));
        }
    }
    if direction == "sendonly" {
        s.push_str("a=ssrc:1234 cname:gst\r\n");
    }
    s
}

/// What GStreamer's webrtcbin offers with an H264 encoder that can do several
/// profiles: High first, then constrained baseline and main.
const WEBRTCBIN_H264: &[(u8, &str, Option<&str>)] = &[
    (
        96,
        "H264/90000",
        Some("packetization-mode=1;profile-level-id=640032;level-asymmetry-allowed=1"),
    ),
    (
        97,
        "H264/90000",
        Some("packetization-mode=1;profile-level-id=42e01f;level-asymmetry-allowed=1"),
    ),
    (
        98,
        "H264/90000",
        Some("packetization-mode=1;profile-level-id=4d001f;level-asymmetry-allowed=1"),
    ),
    (99, "VP9/90000", None),
];

fn video_formats(answer: &str) -> Vec<String> {
    let a = SessionDescription::parse(answer).unwrap();
    let m = a
        .media
        .iter()
        .find(|m| m.media_line().unwrap().kind == "video")
        .unwrap();
    m.media_line().unwrap().formats
}

/// The publisher's (WHIP) answer lists constrained baseline with
/// packetization-mode 1 first, High after Main, VP9 last: the publisher sends
/// the first, which every browser decodes. Before, the offer's order (High
/// first) made the publisher send High, which Chromium viewers do not take.
#[test]
fn a_publisher_is_answered_with_what_browsers_decode_first() {
    let offer = video_offer(WEBRTCBIN_H264, "sendonly", true);
    let (peer, sdp) = answer(&offer, MediaAnswer::Receive).unwrap();
    assert_eq!(video_formats(&sdp), vec!["97", "98", "96", "99"], "{sdp}");
    let track = &peer.media()[0];
    assert_eq!(track.codecs[0].payload_type, 97);
    assert!(track.codecs[0]
        .fmtp
        .as_deref()
        .unwrap()
        .contains("profile-level-id=42e01f"));
    // VP8 and constrained baseline rank alike: the offer's order decides.
    let vp8_first = video_offer(
        &[
            (100, "VP8/90000", None),
            WEBRTCBIN_H264[0],
            WEBRTCBIN_H264[1],
        ],
        "sendonly",
        true,
    );
    let (_, sdp) = answer(&vp8_first, MediaAnswer::Receive).unwrap();
    assert_eq!(video_formats(&sdp), vec!["100", "97", "96"], "{sdp}");
}

fn h264_high_plan() -> SendPlan {
    SendPlan {
        tracks: vec![SendTrack {
            kind: MediaKind::Video,
            formats: vec![(
                "H264".into(),
                Some("packetization-mode=1;profile-level-id=640032".into()),
            )],
            ssrc: 77,
            rtx_ssrc: None,
        }],
        extensions: Vec::new(),
        stream: "gst".into(),
    }
}

/// A viewer whose offer takes none of the stream's formats is refused with a
/// reason naming both sides' formats, instead of an answer that carries no
/// video; one that takes the format is answered.
#[test]
fn a_viewer_that_takes_none_of_the_streams_formats_is_refused() {
    let viewer = video_offer(
        &[
            (96, "VP8/90000", None),
            (
                102,
                "H264/90000",
                Some("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"),
            ),
        ],
        "recvonly",
        true,
    );
    let e = answer(&viewer, MediaAnswer::Send(h264_high_plan()))
        .err()
        .unwrap();
    assert!(
        matches!(e, PeerError::NoCommonFormat { kind: "video", .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "the stream's video is H264 (packetization-mode=1;profile-level-id=640032); this offer takes none of it (it offers VP8, H264 (42e01f))"
    );
    let takes_high = video_offer(&[WEBRTCBIN_H264[0]], "recvonly", true);
    let (peer, _) = answer(&takes_high, MediaAnswer::Send(h264_high_plan())).unwrap();
    assert_eq!(peer.media()[0].send_ssrc, Some((77, None)));
}

/// `a=rtcp-rsize` is in the answer only when the offer proposed it (RFC 5506
/// §5), and the negotiated track says which RTCP the peer takes.
#[test]
fn rtcp_rsize_is_answered_only_when_offered() {
    for rsize in [true, false] {
        let offer = video_offer(WEBRTCBIN_H264, "sendonly", rsize);
        let (peer, sdp) = answer(&offer, MediaAnswer::Receive).unwrap();
        assert_eq!(sdp.contains("a=rtcp-rsize\r\n"), rsize, "{sdp}");
        assert_eq!(peer.media()[0].rtcp_rsize, rsize);
    }
}
