//! Two node cores in virtual time: one as a soft bus client of the other over
//! TCP, node to node over WebRTC, pairing and the decisions that follow it.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod common;
use common::*;
use softbus_node::{Event, Node, Refusal, SessionClosed, SessionId, Transport};
use softbus_rtc::host::HostConfig;
use softbus_testkit::{Net, Step};
use std::time::Duration;

/// The client role runs through the same core: connect (PIN key agreement),
/// open a session in the client's own table, echo through the server's core.
#[test]
fn a_client_node_authenticates_and_opens_a_session_through_its_core() {
    use softbus_bus::node::BusEvent;
    let mut net = Net::perfect();
    let (mut server, mut client) = (node(24), node(1));
    let mut tcp = tcp();
    let auth = client
        .connect(net.now(), "10.0.0.2:40001".parse().unwrap(), b"246810")
        .unwrap();
    let (ce, se) = tcp.pump(&mut client, &mut server, &mut net);
    assert!(
        ce.iter().any(|e| matches!(e, Event::Bus(BusEvent::Authenticated { conn, peer }) if *conn == auth && peer.device_id == "AB".repeat(32))),
        "{ce:?}"
    );
    assert!(se
        .iter()
        .any(|e| matches!(e, Event::Bus(BusEvent::PeerVerified { .. }))));
    let id = client.open_session(net.now(), auth, "echo").unwrap();
    let (ce, se) = tcp.pump(&mut client, &mut server, &mut net);
    assert!(
        ce.iter().any(
            |e| matches!(e, Event::SessionOpened(i) if i.session_id == id && i.session == "echo")
        ),
        "{ce:?}"
    );
    assert!(se.iter().any(|e| matches!(e, Event::SessionOpened(_))));
    // The client's limit (1) counts the sessions it opened.
    assert!(matches!(
        client.open_session(net.now(), auth, "echo"),
        Err(softbus_node::NodeError::Refused(
            softbus_node::Refusal::TooManySessions(1)
        ))
    ));
    client.send_bytes(net.now(), id, b"ping").unwrap();
    let (ce, se) = tcp.pump(&mut client, &mut server, &mut net);
    assert!(ce.contains(&Event::BytesReceived {
        session: id,
        binary: true,
        data: b"ping".to_vec()
    }));
    // The client's own `echo` server does not answer on a session it opened.
    let count = |ev: &[Event]| {
        ev.iter()
            .filter(|e| matches!(e, Event::BytesReceived { .. }))
            .count()
    };
    assert_eq!((count(&ce), count(&se)), (1, 1));
    // A session to a server that does not exist fails on the client with a reason.
    // (Its connection ids are its own: a link table of its own, server ids go on.)
    let mut client2 = node(24);
    let mut tcp2 = Wire { ip: [10, 0, 0, 11] };
    let auth2 = client2
        .connect(net.now(), "10.0.0.2:40001".parse().unwrap(), b"246810")
        .unwrap();
    tcp2.pump(&mut client2, &mut server, &mut net);
    let id2 = client2.open_session(net.now(), auth2, "nope").unwrap();
    let (ce, se) = tcp2.pump(&mut client2, &mut server, &mut net);
    assert!(
        se.iter().any(|e| matches!(
            e,
            Event::SessionRefused {
                reason: Refusal::UnknownServer(_),
                ..
            }
        )),
        "{se:?} {ce:?}"
    );
    assert!(
        ce.iter()
            .any(|e| matches!(e, Event::OpenFailed { session, .. } if *session == id2)),
        "{ce:?}"
    );
}

/// A wrong PIN fails the client's connect with a dropped connection.
#[test]
fn a_client_with_a_wrong_pin_is_dropped() {
    use softbus_bus::node::BusEvent;
    let mut net = Net::perfect();
    let (mut server, mut client) = (node(24), node(24));
    let mut tcp = tcp();
    let auth = client
        .connect(net.now(), "10.0.0.2:40001".parse().unwrap(), b"000000")
        .unwrap();
    let (ce, se) = tcp.pump(&mut client, &mut server, &mut net);
    assert!(
        se.iter()
            .any(|e| matches!(e, Event::Bus(BusEvent::PakeFailed { .. }))),
        "{se:?}"
    );
    assert!(
        ce.iter()
            .any(|e| matches!(e, Event::Bus(BusEvent::ConnDropped { conn, .. }) if *conn == auth)),
        "{ce:?}"
    );
    assert!(client.open_session(net.now(), auth, "echo").is_err());
}

/// Node to node over WebRTC through both cores: A offers from its WebRTC port,
/// B answers, A opens a session to B's echo server (a data channel), in A's one
/// session table; B's echo comes back and A's own echo server stays silent.
#[test]
fn a_node_offers_to_a_node_and_opens_a_session_over_webrtc() {
    let mut net = Net::perfect();
    let mut b = node(24);
    let mut cfg = HostConfig::new("10.0.0.8:50000".parse().unwrap());
    cfg.max_peers = 4;
    let mut a = node_with(24, cfg);
    let (mut sa, mut sb) = (Seen::default(), Seen::default());
    let (pa, offer) = a.rtc_offer(net.now()).unwrap();
    let (_, answer) = b.rtc_answer(net.now(), &offer, web()).unwrap();
    a.rtc_apply_answer(net.now(), pa, &answer).unwrap();
    let id = a.open_rtc_session(net.now(), pa, "echo").unwrap();
    let deadline = net.deadline(Duration::from_secs(30));
    let done = |s: &Seen| opened(s).iter().any(|(i, _)| *i == id);
    while !done(&sa) {
        let step = step2(&mut net, (&mut a, &mut sa), (&mut b, &mut sb), deadline);
        assert_ne!(step, Step::Idle, "{:?} / {:?}", sa.events, sb.events);
    }
    assert_eq!(opened(&sa), vec![(id, Transport::WebRtc)]);
    assert_eq!(
        opened(&sb).len(),
        1,
        "B accepted it through its decision point"
    );
    a.send_bytes(net.now(), id, b"over webrtc").unwrap();
    let got = |s: &Seen| {
        s.events
            .iter()
            .filter(|e| matches!(e, Event::BytesReceived { .. }))
            .count()
    };
    while got(&sa) == 0 {
        let step = step2(&mut net, (&mut a, &mut sa), (&mut b, &mut sb), deadline);
        assert_ne!(step, Step::Idle);
    }
    assert!(sa.events.contains(&Event::BytesReceived {
        session: id,
        binary: true,
        data: b"over webrtc".to_vec()
    }));
    assert_eq!((got(&sa), got(&sb)), (1, 1), "no echo loop");
    // A session to a server B does not have never opens.
    let missing = a.open_rtc_session(net.now(), pa, "nope").unwrap();
    while step2(&mut net, (&mut a, &mut sa), (&mut b, &mut sb), deadline) != Step::Idle {}
    assert!(!opened(&sa).iter().any(|(i, _)| *i == missing));
    assert!(
        sa.events.contains(&Event::OpenFailed {
            session: missing,
            reason: SessionClosed::ChannelClosed
        }),
        "the refusal reaches the opener: {:?}",
        sa.events
    );
    assert!(refusals(&sb).contains(&(Transport::WebRtc, Refusal::UnknownServer("nope".into()))));
}

/// `--paired-only` (issue 7, item 2): a PIN key agreement authenticates but
/// opens no session (`Refusal::NotPaired`); after pairing (BIND) the same
/// client's sessions open, and later ones authenticated with STS (no PIN) too,
/// marked `paired` with the device id.
#[test]
fn paired_only_admits_paired_devices_and_refuses_the_pin_alone() {
    use softbus_bus::node::BusEvent;
    use softbus_node::{AuthMethod, Policy};
    let mut net = Net::perfect();
    let mut server = node(24);
    server.set_policy(Policy { paired_only: true });
    let mut client = node_as("CD", "10.0.0.9:50000");
    let mut tcp = tcp();
    let addr = "10.0.0.2:40001".parse().unwrap();
    let pin_only = client.connect(net.now(), addr, b"246810").unwrap();
    tcp.pump(&mut client, &mut server, &mut net);
    client.open_session(net.now(), pin_only, "echo").unwrap();
    let (_, se) = tcp.pump(&mut client, &mut server, &mut net);
    assert!(
        se.iter().any(|e| matches!(
            e,
            Event::SessionRefused {
                reason: Refusal::NotPaired,
                ..
            }
        )),
        "{se:?}"
    );
    // Pair: both sides learn the other's key.
    let paired = client.connect_pair(net.now(), addr, b"246810").unwrap();
    let (ce, se) = tcp.pump(&mut client, &mut server, &mut net);
    let cd = "CD".repeat(32);
    assert!(
        se.iter().any(
            |e| matches!(e, Event::Bus(BusEvent::Paired { device_id, .. }) if *device_id == cd)
        ),
        "{se:?}"
    );
    assert!(ce.iter().any(|e| matches!(e, Event::Bus(BusEvent::Paired { device_id, .. }) if *device_id == "AB".repeat(32))), "{ce:?}");
    assert_eq!(server.bus().pairings().len(), 1);
    let id = client.open_session(net.now(), paired, "echo").unwrap();
    let (ce, se) = tcp.pump(&mut client, &mut server, &mut net);
    assert!(
        ce.iter()
            .any(|e| matches!(e, Event::SessionOpened(i) if i.session_id == id)),
        "{ce:?}"
    );
    assert!(se.iter().any(|e| matches!(e, Event::SessionOpened(i) if i.auth == AuthMethod::Paired && i.peer_device_id == cd)), "{se:?}");
    // Later: STS, no PIN at all.
    let sts = client.connect_paired(net.now(), addr).unwrap();
    let (ce, _) = tcp.pump(&mut client, &mut server, &mut net);
    assert!(
        ce.iter()
            .any(|e| matches!(e, Event::Bus(BusEvent::Authenticated { conn, .. }) if *conn == sts)),
        "{ce:?}"
    );
    client.close_session(net.now(), id).unwrap();
    tcp.pump(&mut client, &mut server, &mut net);
    let id2 = client.open_session(net.now(), sts, "echo").unwrap();
    let (ce, se) = tcp.pump(&mut client, &mut server, &mut net);
    assert!(ce.iter().any(|e| matches!(e, Event::SessionOpened(i) if i.session_id == id2 && i.auth == AuthMethod::Paired)), "{ce:?}");
    assert!(
        se.iter()
            .any(|e| matches!(e, Event::SessionOpened(i) if i.auth == AuthMethod::Paired)),
        "{se:?}"
    );
    // An unpaired device cannot use STS.
    let mut stranger = node_as("EF", "10.0.0.10:50000");
    let mut tcp3 = Wire { ip: [10, 0, 0, 12] };
    assert!(stranger.connect_paired(net.now(), addr).is_ok());
    let (ce, _) = tcp3.pump(&mut stranger, &mut server, &mut net);
    assert!(
        !ce.iter()
            .any(|e| matches!(e, Event::Bus(BusEvent::Authenticated { .. }))),
        "{ce:?}"
    );
}

/// Node-to-node WebRTC is authenticated by the pairing (issue 7, item 2): the
/// offerer signs its DTLS fingerprint, the answerer signs both; a signature of
/// an unpaired device, over another fingerprint, or a forged answer is
/// refused; the session carries the device id and `paired`.
#[test]
fn node_to_node_webrtc_is_bound_to_the_pairing() {
    use softbus_node::{AuthMethod, NodeError};
    let mut net = Net::perfect();
    let mut a = node_as("CD", "10.0.0.8:50000");
    let mut b = node(24);
    let mut c = node_as("EF", "10.0.0.12:50000");
    pair_cores(&mut a, &mut b);
    let (pa, offer) = a.rtc_offer(net.now()).unwrap();
    let sig = a.rtc_sign_offer(&offer).unwrap();
    let cd = "CD".repeat(32);
    // Unpaired C signs its own offer; C signs A's offer: both refused.
    let (_, c_offer) = c.rtc_offer(net.now()).unwrap();
    let c_sig = c.rtc_sign_offer(&c_offer).unwrap();
    let ef = "EF".repeat(32);
    assert_eq!(
        b.rtc_answer_paired(net.now(), &c_offer, &ef, &c_sig)
            .unwrap_err(),
        NodeError::BadSignature
    );
    assert_eq!(
        b.rtc_answer_paired(net.now(), &offer, &cd, &c_sig)
            .unwrap_err(),
        NodeError::BadSignature
    );
    // A's signature does not cover C's fingerprint.
    assert_eq!(
        b.rtc_answer_paired(net.now(), &c_offer, &cd, &sig)
            .unwrap_err(),
        NodeError::BadSignature
    );
    // An offer with two different fingerprints is refused even with a good one first.
    let two = offer.replacen(
        "a=fingerprint:",
        &format!("{}\r\na=fingerprint:", fingerprint_line(&c_offer)),
        1,
    );
    assert_eq!(
        b.rtc_answer_paired(net.now(), &two, &cd, &sig).unwrap_err(),
        NodeError::BadSignature
    );
    let (_, answer, answer_sig) = b.rtc_answer_paired(net.now(), &offer, &cd, &sig).unwrap();
    // A forged answer signature (by C) is refused by A.
    let mut forged = answer_sig;
    forged[0] ^= 1;
    let ab = "AB".repeat(32);
    assert_eq!(
        a.rtc_apply_answer_paired(net.now(), pa, &offer, &answer, &ab, &forged)
            .unwrap_err(),
        NodeError::BadSignature
    );
    a.rtc_apply_answer_paired(net.now(), pa, &offer, &answer, &ab, &answer_sig)
        .unwrap();
    let id = a.open_rtc_session(net.now(), pa, "echo").unwrap();
    let (mut sa, mut sb) = (Seen::default(), Seen::default());
    let deadline = net.deadline(Duration::from_secs(30));
    while !opened(&sa).iter().any(|(i, _)| *i == id) {
        let step = step2(&mut net, (&mut a, &mut sa), (&mut b, &mut sb), deadline);
        assert_ne!(step, Step::Idle, "{:?} / {:?}", sa.events, sb.events);
    }
    let on_b = b.sessions();
    assert_eq!(on_b.len(), 1);
    assert_eq!(
        (on_b[0].peer_device_id.as_str(), on_b[0].auth),
        (cd.as_str(), AuthMethod::Paired)
    );
    // Offered as a paired device: no web credential to DELETE with, so A ends
    // its peer connection itself; B, which answered, closes the session.
    assert_eq!(a.ending(id), softbus_node::Ending::ClosePeer(pa));
    assert_eq!(b.ending(on_b[0].session_id), softbus_node::Ending::Session);
}

/// How a session ends is the core's decision: one offered with the other
/// node's web token is ended by `DELETE` on its signaling; a TCP session, or
/// an unknown one, is closed.
#[test]
fn the_core_says_how_a_session_ends() {
    use softbus_node::Ending;
    let mut net = Net::perfect();
    let mut a = node_as("CD", "10.0.0.8:50000");
    let mut b = node(24);
    let (pa, offer) = a.rtc_offer(net.now()).unwrap();
    let (_, answer) = b.rtc_answer(net.now(), &offer, web()).unwrap();
    a.rtc_apply_answer(net.now(), pa, &answer).unwrap();
    let id = a.open_rtc_session(net.now(), pa, "echo").unwrap();
    let (mut sa, mut sb) = (Seen::default(), Seen::default());
    let deadline = net.deadline(Duration::from_secs(30));
    while !opened(&sa).iter().any(|(i, _)| *i == id) {
        let step = step2(&mut net, (&mut a, &mut sa), (&mut b, &mut sb), deadline);
        assert_ne!(step, Step::Idle, "{:?} / {:?}", sa.events, sb.events);
    }
    assert_eq!(a.ending(id), Ending::Delete(pa));
    assert_eq!(b.ending(b.sessions()[0].session_id), Ending::Session);
    assert_eq!(a.ending(SessionId(999)), Ending::Session);
    // A TCP session the client opened.
    let (mut server, mut client) = (node(24), node(24));
    let mut tcp = tcp();
    let auth = client
        .connect(net.now(), "10.0.0.2:40001".parse().unwrap(), b"246810")
        .unwrap();
    tcp.pump(&mut client, &mut server, &mut net);
    let tcp_id = client.open_session(net.now(), auth, "echo").unwrap();
    let (ce, _) = tcp.pump(&mut client, &mut server, &mut net);
    assert!(ce
        .iter()
        .any(|e| matches!(e, Event::SessionOpened(i) if i.session_id == tcp_id)));
    assert_eq!(client.ending(tcp_id), Ending::Session);
}

/// Pairing changes are the core's (issue 18): a device gone from the
/// pairings another process left, or unpaired here, is reported `Unpaired`
/// once; unpairing an unknown device reports nothing.
#[test]
fn pairings_that_end_are_reported_by_the_core() {
    let mut a = node_as("CD", "10.0.0.8:50000");
    let mut b = node(24);
    let mut c = node_as("EF", "10.0.0.12:50000");
    pair_cores(&mut a, &mut b);
    pair_cores(&mut c, &mut b);
    let unpaired = |n: &mut Node| -> Vec<String> {
        std::iter::from_fn(|| n.poll_event())
            .filter_map(|e| match e {
                Event::Unpaired { device_id } => Some(device_id),
                _ => None,
            })
            .collect()
    };
    let _ = unpaired(&mut b);
    let mut left = b.bus().pairings().clone();
    left.remove(&"CD".repeat(32));
    b.set_pairings(left);
    assert_eq!(unpaired(&mut b), vec!["CD".repeat(32)]);
    assert!(b.unpair(&"EF".repeat(32)));
    assert!(!b.unpair(&"EF".repeat(32)));
    assert_eq!(unpaired(&mut b), vec!["EF".repeat(32)]);
    assert!(b.bus().pairings().is_empty());
}

/// The WebRTC client's credential and its answer check are the core's
/// (issue 18): a paired offer is signed, and its answer is taken only when
/// the paired node signed it; an unsigned one is `AnswerNotSigned`.
#[test]
fn a_paired_offer_is_signed_and_its_answer_must_be() {
    use softbus_node::{NodeError, OfferAs};
    let net = Net::perfect();
    let mut a = node_as("CD", "10.0.0.8:50000");
    let mut b = node(24);
    pair_cores(&mut a, &mut b);
    let offer = a.rtc_offer_as(net.now(), OfferAs::Paired).unwrap();
    let sig = offer.signature.expect("a paired offer is signed");
    let (_, answer, answer_sig) = b
        .rtc_answer_paired(net.now(), &offer.sdp, &"CD".repeat(32), &sig)
        .unwrap();
    assert_eq!(
        a.rtc_take_answer(net.now(), &offer, OfferAs::Paired, &answer, None),
        Err(NodeError::AnswerNotSigned)
    );
    let ab = "AB".repeat(32);
    assert_eq!(
        a.rtc_take_answer(
            net.now(),
            &offer,
            OfferAs::Paired,
            &answer,
            Some((ab.as_str(), answer_sig.as_slice()))
        ),
        Ok(())
    );
    // With the token nothing is signed.
    assert!(a
        .rtc_offer_as(net.now(), OfferAs::Token)
        .unwrap()
        .signature
        .is_none());
}
