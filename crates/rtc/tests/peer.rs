//! The two `Peer` roles against each other in memory: the offering side builds its
//! offer through the JSEP engine, the answering side answers as ICE-lite/passive,
//! and a data channel carries bytes both ways. A second answer is refused by the
//! signaling state. When the path goes silent, consent expires and both close.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
use softbus_crypto::dtls::DtlsIdentity;
use softbus_crypto::OpenSslCrypto;
use softbus_rtc::dtls::DtlsRole;
use softbus_rtc::jsep::{JsepError, SignalingState};
use softbus_rtc::peer::{LocalParams, Peer, PeerError, PeerEvent};
use softbus_rtc::sdp::{SdpOffer, Setup};
use softbus_testkit::{LinkConfig, Net, PeerAt, Step};
use std::net::SocketAddr;
use std::time::Duration;

const OFFERER: &str = "127.0.0.1:40000";
const ANSWERER: &str = "127.0.0.1:50000";

fn chars() -> Box<dyn FnMut(usize) -> String + Send> {
    let mut n = 7u64;
    Box::new(move |len| {
        (0..len)
            .map(|_| {
                n = n
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                char::from(b'a' + (n >> 59) as u8 % 26)
            })
            .collect()
    })
}

/// An offering peer, the answering peer and its answer, not yet applied.
fn offer_and_answer() -> (Peer, Peer, String, String) {
    let (o_addr, a_addr): (SocketAddr, SocketAddr) =
        (OFFERER.parse().unwrap(), ANSWERER.parse().unwrap());
    let oid = DtlsIdentity::generate().unwrap();
    let (offerer, offer) = Peer::offer(
        o_addr,
        &oid.fingerprint("sha-256").unwrap(),
        Box::new(oid.factory().unwrap()),
        42,
        chars(),
    )
    .unwrap();
    let aid = DtlsIdentity::generate().unwrap();
    let local = LocalParams {
        candidate: a_addr,
        ice_ufrag: "answ".into(),
        ice_pwd: "answerer-password-000000".into(),
        fingerprint: aid.fingerprint("sha-256").unwrap(),
        session_id: 9,
        full_ice: None,
    };
    let parsed = SdpOffer::parse(&offer).unwrap();
    let (answerer, answer) =
        Peer::answer(&parsed, &local, Box::new(aid.factory().unwrap()), chars()).unwrap();
    (offerer, answerer, offer, answer)
}

fn tids() -> Box<dyn FnMut() -> [u8; 12] + Send> {
    let mut tid = 0u8;
    Box::new(move || {
        tid = tid.wrapping_add(1);
        [tid; 12]
    })
}

fn pair(net: &Net) -> (Peer, Peer, String) {
    let (mut offerer, answerer, offer, answer) = offer_and_answer();
    offerer
        .apply_answer(net.now(), &answer, &OpenSslCrypto::new(), tids())
        .unwrap();
    (offerer, answerer, offer)
}

#[test]
fn a_rejected_answer_leaves_the_offer_pending() {
    let (mut o, _, _, answer) = offer_and_answer();
    let now = Net::perfect().now();
    let h = OpenSslCrypto::new();
    let no_candidates: String = answer
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with("a=candidate"))
        .collect();
    assert_eq!(
        o.apply_answer(now, &no_candidates, &h, tids()),
        Err(PeerError::Missing("a usable a=candidate"))
    );
    o.apply_answer(now, &answer, &h, tids()).unwrap();
}

/// Drives both peers on `net` until `done` holds for an event (`true`: the
/// offerer's) or 20 s of virtual time pass.
fn run(
    net: &mut Net,
    o: &mut Peer,
    a: &mut Peer,
    done: impl FnMut(&PeerEvent, bool) -> bool,
) -> bool {
    run_for(net, o, a, Duration::from_secs(20), done)
}

fn run_for(
    net: &mut Net,
    o: &mut Peer,
    a: &mut Peer,
    limit: Duration,
    mut done: impl FnMut(&PeerEvent, bool) -> bool,
) -> bool {
    let h = OpenSslCrypto::new();
    let (o_addr, a_addr): (SocketAddr, SocketAddr) =
        (OFFERER.parse().unwrap(), ANSWERER.parse().unwrap());
    let deadline = net.deadline(limit);
    loop {
        let step = net.step(
            &mut [
                &mut PeerAt::new(o_addr, o, &h),
                &mut PeerAt::new(a_addr, a, &h),
            ],
            deadline,
        );
        let mut hit = false;
        while let Some(e) = o.poll_event() {
            hit |= done(&e, true);
        }
        while let Some(e) = a.poll_event() {
            hit |= done(&e, false);
        }
        if hit {
            return true;
        }
        if step == Step::Idle {
            return false;
        }
    }
}

/// A pair with ICE, DTLS and SCTP up on both sides.
fn connected(net: &mut Net) -> (Peer, Peer) {
    let (mut o, mut a, _) = pair(net);
    let mut up = (false, false);
    assert!(run(net, &mut o, &mut a, |e, offerer| {
        if *e == PeerEvent::Connected {
            if offerer {
                up.0 = true
            } else {
                up.1 = true
            }
        }
        up == (true, true)
    }));
    (o, a)
}

#[test]
fn offer_is_built_by_jsep_with_the_data_section_and_our_candidate() {
    let (_, _, offer) = pair(&Net::perfect());
    let o = SdpOffer::parse(&offer).unwrap();
    assert_eq!(o.media.len(), 1);
    let m = &o.media[0];
    assert_eq!(m.mid(), Some("0"));
    assert_eq!(m.setup().unwrap(), Some(Setup::ActPass));
    assert!(offer.contains("a=group:BUNDLE 0\r\n"));
    assert!(offer.contains("a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n"));
    assert_eq!(o.ice_ufrag(m).map(str::len), Some(8));
}

#[test]
fn offerer_and_answerer_connect_and_exchange_bytes() {
    let mut net = Net::perfect();
    let (mut o, mut a) = connected(&mut net);
    let id = o.open_channel(net.now(), "echo").unwrap();
    assert!(run(&mut net, &mut o, &mut a, |e, offerer| !offerer
        && *e
            == PeerEvent::ChannelOpen {
                id,
                label: "echo".into()
            }));
    let payload: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
    o.send(net.now(), id, true, &payload).unwrap();
    let mut got = None;
    assert!(run(&mut net, &mut o, &mut a, |e, offerer| {
        if let (false, PeerEvent::Message { data, binary, .. }) = (offerer, e) {
            got = Some((*binary, data.clone()));
        }
        got.is_some()
    }));
    assert_eq!(got, Some((true, payload)));
}

#[test]
fn a_second_answer_is_refused_by_the_signaling_state() {
    let net = Net::perfect();
    let (mut o, _, _) = pair(&net);
    // An answer to another offer: the state is refused before its content is read.
    let (_, _, _, answer) = offer_and_answer();
    let err = o
        .apply_answer(
            net.now(),
            &answer,
            &OpenSslCrypto::new(),
            Box::new(|| [1; 12]),
        )
        .unwrap_err();
    assert_eq!(
        err,
        PeerError::Jsep(JsepError::InvalidState(SignalingState::Stable))
    );
}

/// Once connected, silence both ways (the path is gone): each side's consent
/// expires (RFC 7675: 30 s without a successful check) and the peer closes.
#[test]
fn consent_loss_closes_both_peers() {
    let mut net = Net::perfect();
    let (mut o, mut a) = connected(&mut net);
    net.set_link(LinkConfig {
        loss: 1.0,
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
    });
    let start = net.now();
    let mut closed_at = (None, None);
    assert!(run_for(
        &mut net,
        &mut o,
        &mut a,
        Duration::from_secs(60),
        |e, offerer| {
            if let PeerEvent::Closed(r) = e {
                assert_eq!(*r, softbus_rtc::peer::CloseReason::ConsentExpired);
                if offerer {
                    closed_at.0 = Some(());
                } else {
                    closed_at.1 = Some(());
                }
            }
            closed_at.0.is_some() && closed_at.1.is_some()
        }
    ));
    assert!(o.is_closed() && a.is_closed());
    let t = net.now() - start;
    assert!(
        t >= Duration::from_secs(25) && t <= Duration::from_secs(40),
        "{t:?}"
    );
}

/// Closing one side tells the other: its channels close (SCTP SHUTDOWN) and the
/// peer connection ends as closed by the peer (DTLS close_notify), at once rather
/// than when consent would expire.
#[test]
fn close_tells_the_other_side() {
    for offerer_closes in [true, false] {
        let mut net = Net::perfect();
        let (mut o, mut a) = connected(&mut net);
        let id = o.open_channel(net.now(), "echo").unwrap();
        assert!(run(&mut net, &mut o, &mut a, |e, offerer| !offerer
            && matches!(e, PeerEvent::ChannelOpen { .. })));
        let start = net.now();
        if offerer_closes {
            o.close(net.now());
        } else {
            a.close(net.now());
        }
        let mut closed = None;
        assert!(run(&mut net, &mut o, &mut a, |e, offerer| {
            if let (true, PeerEvent::Closed(r)) = (offerer != offerer_closes, e) {
                closed = Some(r.clone());
            }
            closed.is_some()
        }));
        assert_eq!(closed, Some(softbus_rtc::peer::CloseReason::RemoteClosed));
        assert!(net.now() - start < Duration::from_secs(1), "at once");
        assert!(o.is_closed() && a.is_closed());
        assert!(
            o.send(net.now(), id, false, b"late").is_err(),
            "the offerer's channel is gone"
        );
    }
}

/// The offerer's DTLS role from the answer's a=setup (RFC 8842 §5.3): passive
/// makes it client, active server, and a missing a=setup means active (RFC 4145
/// §4), so the offerer is then the server. actpass is not an answer's value.
#[test]
fn the_answers_setup_decides_the_offerers_role() {
    let net = Net::perfect();
    let h = OpenSslCrypto::new();
    let (_, _, _, answer) = offer_and_answer();
    assert!(answer.contains("a=setup:passive\r\n"));
    let no_setup: String = answer
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with("a=setup"))
        .collect();
    for (sdp, role) in [
        (answer.clone(), DtlsRole::Client),
        (
            answer.replace("a=setup:passive", "a=setup:active"),
            DtlsRole::Server,
        ),
        (no_setup, DtlsRole::Server),
    ] {
        let (mut o, _, _, _) = offer_and_answer();
        o.apply_answer(net.now(), &sdp, &h, tids()).unwrap();
        assert_eq!(o.dtls_role(), role, "{sdp}");
    }
    let (mut o, _, _, _) = offer_and_answer();
    assert_eq!(
        o.apply_answer(
            net.now(),
            &answer.replace("a=setup:passive", "a=setup:actpass"),
            &h,
            tids()
        ),
        Err(PeerError::Invalid(
            "a=setup in an answer: actpass or holdconn"
        ))
    );
}

/// DTLS-SRTP keys each side by its role: what the offerer protects with its
/// outbound context, the answerer unprotects with its inbound one, and back;
/// the datagrams travel the selected pair as media, not as DTLS.
#[test]
fn srtp_is_keyed_from_dtls_by_role_and_media_flows_both_ways() {
    use softbus_rtc::srtp::Context;
    let mut net = Net::perfect();
    let (mut o, mut a, _) = pair(&net);
    let mut keys = (None, None);
    let mut up = (false, false);
    assert!(run(&mut net, &mut o, &mut a, |e, offerer| {
        match e {
            PeerEvent::SrtpKeys(k) if offerer => keys.0 = Some(k.clone()),
            PeerEvent::SrtpKeys(k) => keys.1 = Some(k.clone()),
            PeerEvent::Connected if offerer => up.0 = true,
            PeerEvent::Connected => up.1 = true,
            _ => {}
        }
        up == (true, true) && keys.0.is_some() && keys.1.is_some()
    }));
    let (ko, ka) = (keys.0.unwrap(), keys.1.unwrap());
    assert_eq!(ko.profile, ka.profile, "one negotiated profile");
    assert_eq!(ko.local_key, ka.remote_key);
    let ctx = |k: &softbus_rtc::dtls::SrtpKeys, out: bool| {
        Context::from_dtls(k, out, Box::new(softbus_crypto::SrtpBackend::default())).unwrap()
    };
    let (mut o_out, mut o_in, mut a_out, mut a_in) = (
        ctx(&ko, true),
        ctx(&ko, false),
        ctx(&ka, true),
        ctx(&ka, false),
    );
    let rtp = |seq: u16, ssrc: u32| {
        softbus_rtc::rtp::RtpBuilder {
            payload_type: 111,
            sequence: seq,
            ssrc,
            payload: b"opus frame",
            ..Default::default()
        }
        .build()
        .unwrap()
    };
    assert!(o.send_media(o_out.protect_rtp(&rtp(1, 7)).unwrap()));
    assert!(a.send_media(a_out.protect_rtp(&rtp(9, 8)).unwrap()));
    assert!(
        !o.send_media(b"\x16not media".to_vec()),
        "only RTP/RTCP goes as media"
    );
    let mut got = (None, None);
    assert!(run(&mut net, &mut o, &mut a, |e, offerer| {
        if let PeerEvent::Media(d) = e {
            if offerer {
                got.0 = Some(o_in.unprotect_rtp(d).unwrap());
            } else {
                got.1 = Some(a_in.unprotect_rtp(d).unwrap());
            }
        }
        got.0.is_some() && got.1.is_some()
    }));
    assert_eq!(got, (Some(rtp(9, 8)), Some(rtp(1, 7))));
}
