//! The node core in virtual time, with no sockets: a soft bus client over TCP
//! and a WebRTC peer reach the same echo server through one session table, one
//! limit and one decision point.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod common;
use common::*;
use softbus_bus::session::ClientEvent;
use softbus_bus::ConnId;
use softbus_crypto::OpenSslCrypto;
use softbus_node::{
    Event, Limits, Refusal, ServerMode, SessionClosed, SessionId, Socket, Transport,
};
use softbus_rtc::host::HostConfig;
use softbus_rtc::peer::{CloseReason, PeerEvent};
use softbus_testkit::Net;
use std::net::SocketAddr;
use std::time::Duration;

#[test]
fn tcp_and_webrtc_reach_the_same_echo_server() {
    let mut net = Net::perfect();
    let (mut n, mut seen) = (node(24), Seen::default());
    let auth = authenticate(&mut n, &mut seen, &net, ConnId(1));
    let mut s = open_tcp(&mut n, &mut seen, &net, &auth, ConnId(2), "echo").unwrap();
    let mut c = OpenSslCrypto::seeded(23);
    s.send(&mut c, b"over tcp").unwrap();
    n.handle_tcp_data(net.now(), ConnId(2), &s.poll_transmit().unwrap());
    drain(&mut n, &mut seen);
    let back = take_tcp(&mut seen, ConnId(2));
    let ev = s.handle_data(&mut c, &back[0]).unwrap();
    assert_eq!(ev, vec![ClientEvent::Bytes(b"over tcp".to_vec())]);

    let mut r = RtcClient::connect(&mut n, &mut seen, &mut net);
    let ch = r.peer.open_channel(net.now(), "echo").unwrap();
    r.pump_until(&mut n, &mut seen, &mut net, |_, s| opened(s).len() == 2);
    r.peer.send(net.now(), ch, false, b"over webrtc").unwrap();
    r.pump_until(&mut n, &mut seen, &mut net, |e, _| {
        e.contains(&PeerEvent::Message {
            id: ch,
            binary: false,
            data: b"over webrtc".to_vec(),
        })
    });
    let o = opened(&seen);
    assert_eq!(o.len(), 2, "{:?}", seen.events);
    assert_eq!(o[0], (SessionId(1), Transport::Tcp));
    assert_eq!(o[1], (SessionId(2), Transport::WebRtc), "one id space");
    assert_eq!(n.sessions().len(), 2);
    assert!(refusals(&seen).is_empty());
}

#[test]
fn max_sessions_holds_across_transports() {
    // N TCP sessions open: the next data channel is refused.
    let mut net = Net::perfect();
    let (mut n, mut seen) = (node(1), Seen::default());
    let auth = authenticate(&mut n, &mut seen, &net, ConnId(1));
    assert!(open_tcp(&mut n, &mut seen, &net, &auth, ConnId(2), "echo").is_some());
    let mut r = RtcClient::connect(&mut n, &mut seen, &mut net);
    r.peer.open_channel(net.now(), "echo").unwrap();
    r.pump_until(&mut n, &mut seen, &mut net, |_, s| !refusals(s).is_empty());
    assert_eq!(
        refusals(&seen),
        vec![(Transport::WebRtc, Refusal::TooManySessions(1))]
    );
    assert_eq!(n.sessions().len(), 1);

    // And the other way round: a data channel open, the next TCP session is refused.
    let mut net = Net::perfect();
    let (mut n, mut seen) = (node(1), Seen::default());
    let mut r = RtcClient::connect(&mut n, &mut seen, &mut net);
    r.peer.open_channel(net.now(), "echo").unwrap();
    r.pump_until(&mut n, &mut seen, &mut net, |_, s| opened(s).len() == 1);
    let auth = authenticate(&mut n, &mut seen, &net, ConnId(1));
    assert!(open_tcp(&mut n, &mut seen, &net, &auth, ConnId(2), "echo").is_none());
    assert_eq!(
        refusals(&seen),
        vec![(Transport::Tcp, Refusal::TooManySessions(1))]
    );
    assert_eq!(
        seen.closed,
        vec![ConnId(2)],
        "the refused connection is closed"
    );

    // Closing the peer frees its session: now the TCP session opens.
    let peer = n.sessions()[0].clone();
    assert_eq!(peer.transport, Transport::WebRtc);
    assert!(n.rtc_close(net.now(), r.id));
    drain(&mut n, &mut seen);
    assert!(seen.events.iter().any(|e| matches!(
        e,
        Event::SessionClosed {
            reason: SessionClosed::PeerConnection(CloseReason::Deleted),
            ..
        }
    )));
    assert!(seen.events.iter().any(|e| matches!(
        e,
        Event::PeerClosed {
            reason: CloseReason::Deleted,
            ..
        }
    )));
    assert!(n.sessions().is_empty());
    assert!(open_tcp(&mut n, &mut seen, &net, &auth, ConnId(3), "echo").is_some());
    assert_eq!(opened(&seen).last(), Some(&(SessionId(2), Transport::Tcp)));
}

#[test]
fn every_refusal_has_a_typed_reason() {
    let net = Net::perfect();
    let (mut n, mut seen) = (node(24), Seen::default());
    let auth = authenticate(&mut n, &mut seen, &net, ConnId(1));
    assert!(open_tcp(&mut n, &mut seen, &net, &auth, ConnId(2), "nope").is_none());
    assert_eq!(
        refusals(&seen),
        vec![(Transport::Tcp, Refusal::UnknownServer("nope".into()))]
    );
    // A removed server closes its sessions and refuses new ones.
    assert!(open_tcp(&mut n, &mut seen, &net, &auth, ConnId(3), "echo").is_some());
    n.remove_session_server(net.now(), "echo").unwrap();
    drain(&mut n, &mut seen);
    assert!(seen.events.iter().any(|e| matches!(
        e,
        Event::SessionClosed {
            reason: SessionClosed::ServerRemoved,
            ..
        }
    )));
    assert!(seen.closed.contains(&ConnId(3)));
    assert!(n.sessions().is_empty());
    assert!(n.create_session_server("echo", ServerMode::Echo).is_ok());
    assert!(n.create_session_server("echo", ServerMode::Echo).is_err());
}

#[test]
fn an_answered_peer_that_never_connects_is_freed() {
    let mut net = Net::perfect();
    let (mut n, mut seen) = (node(24), Seen::default());
    let (_peer, offer) = offerer();
    let (pid, _) = n.rtc_answer(net.now(), &offer, web()).unwrap();
    assert_eq!(n.host().peer_count(), 1);
    let t = n.poll_timeout().unwrap();
    assert_eq!(t, net.now() + Duration::from_secs(30));
    net.advance(&mut [], Duration::from_secs(30));
    n.handle_timeout(net.now());
    drain(&mut n, &mut seen);
    assert_eq!(n.host().peer_count(), 0);
    assert_eq!(
        seen.events,
        vec![Event::PeerClosed {
            peer: pid,
            reason: CloseReason::ConnectTimeout
        }]
    );
}

/// DELETE tells the peer (SCTP SHUTDOWN, DTLS close_notify: it closes at once),
/// and a later ICE check on the closed connection gets an authenticated 403, so an
/// agent that ignores close_notify fails the pair at its next check.
#[test]
fn delete_tells_the_peer_and_answers_its_checks_with_an_error() {
    use softbus_rtc::stun::{attr, Class, Message, MessageBuilder, BINDING};
    let mut net = Net::perfect();
    let (mut n, mut seen) = (node(24), Seen::default());
    let mut r = RtcClient::connect(&mut n, &mut seen, &mut net);
    let pid = r.id;
    // Peer ids (the `/rtc/<id>` a DELETE names) are random, not a counter.
    let (other, _) = n
        .rtc_answer(
            net.now(),
            &offerer_at("10.0.0.9:9".parse().unwrap()).1,
            web(),
        )
        .unwrap();
    assert!(
        pid.0 > 1 << 32 && other.0 > 1 << 32 && other.0.abs_diff(pid.0) > 1,
        "{pid} {other}"
    );
    let start = net.now();
    assert!(n.rtc_close(net.now(), pid));
    r.pump_until(&mut n, &mut seen, &mut net, |e, _| {
        e.iter().any(|e| matches!(e, PeerEvent::Closed(_)))
    });
    assert!(r
        .events
        .contains(&PeerEvent::Closed(CloseReason::RemoteClosed)));
    assert_eq!(
        net.now(),
        start,
        "no timer needed: the close is sent at once"
    );

    let answer = softbus_rtc::sdp::SdpAnswer::parse(&r.answer).unwrap();
    let m = &answer.media[0];
    let (ufrag, pwd) = (answer.ice_ufrag(m).unwrap(), answer.ice_pwd(m).unwrap());
    let h = OpenSslCrypto::new();
    let check = MessageBuilder::new(Class::Request, BINDING, [7; 12])
        .attribute(attr::USERNAME, format!("{ufrag}:peer").as_bytes())
        .message_integrity(&h, pwd.as_bytes())
        .fingerprint();
    let me: SocketAddr = RTC_PEER.parse().unwrap();
    n.handle_datagram(net.now(), Socket::Rtc, me, None, &check)
        .unwrap();
    drain(&mut n, &mut seen);
    let (to, reply) = seen.rtc.pop().expect("an answer to the check");
    assert_eq!(to, me);
    let msg = Message::parse(&reply).unwrap();
    assert_eq!(msg.class(), Class::Error);
    assert_eq!(msg.transaction_id(), [7; 12]);
    assert_eq!(&msg.get(attr::ERROR_CODE).unwrap()[2..4], &[4, 3]);
    msg.verify_integrity(&h, pwd.as_bytes()).unwrap();
    // A check with the wrong password gets nothing.
    let forged = MessageBuilder::new(Class::Request, BINDING, [8; 12])
        .attribute(attr::USERNAME, format!("{ufrag}:peer").as_bytes())
        .message_integrity(&h, b"not the password")
        .fingerprint();
    n.handle_datagram(net.now(), Socket::Rtc, me, None, &forged)
        .unwrap();
    drain(&mut n, &mut seen);
    assert!(seen.rtc.is_empty());
    // After the tombstone time, checks are ignored.
    net.advance(&mut [], softbus_rtc::host::TOMBSTONE);
    n.handle_datagram(net.now(), Socket::Rtc, me, None, &check)
        .unwrap();
    drain(&mut n, &mut seen);
    assert!(seen.rtc.is_empty());
}

/// The DTLS certificate is renewed for new peers before it expires, and a peer
/// connected with the old one keeps working.
#[test]
fn the_certificate_is_renewed_without_dropping_live_connections() {
    let mut net = Net::perfect();
    let mut cfg = HostConfig::new(RTC_HOST.parse().unwrap());
    cfg.renew_certificate_after = Some(Duration::from_secs(60));
    let (mut n, mut seen) = (node_with(24, cfg), Seen::default());
    let mut old = RtcClient::connect(&mut n, &mut seen, &mut net);
    // A minute passes with the connection alive (consent checks keep flowing).
    old.pump_for(&mut n, &mut seen, &mut net, Duration::from_secs(61));
    let new = RtcClient::connect_from(
        &mut n,
        &mut seen,
        &mut net,
        "10.0.0.5:40000".parse().unwrap(),
    );
    assert_ne!(
        fingerprint_of(&old.answer),
        fingerprint_of(&new.answer),
        "a new certificate for the new peer"
    );
    // The old peer still opens a channel and gets its echo.
    let ch = old.peer.open_channel(net.now(), "echo").unwrap();
    old.pump_until(&mut n, &mut seen, &mut net, |_, s| opened(s).len() == 1);
    old.peer.send(net.now(), ch, true, b"still here").unwrap();
    old.pump_until(&mut n, &mut seen, &mut net, |e, _| {
        e.contains(&PeerEvent::Message {
            id: ch,
            binary: true,
            data: b"still here".to_vec(),
        })
    });
    assert!(!old.events.iter().any(|e| matches!(e, PeerEvent::Closed(_))));
    // Before the renewal time, answers keep the certificate.
    let mut net = Net::perfect();
    let mut n = node(24);
    let (_, o1) = offerer_at("10.0.0.6:1".parse().unwrap());
    let (_, o2) = offerer_at("10.0.0.7:1".parse().unwrap());
    let (_, a1) = n.rtc_answer(net.now(), &o1, web()).unwrap();
    net.advance(&mut [], Duration::from_secs(26 * 86_400));
    let (_, a2) = n.rtc_answer(net.now(), &o2, web()).unwrap();
    assert_eq!(fingerprint_of(&a1), fingerprint_of(&a2));
}

/// The remote agent nominates a pair from a new address (it moved networks):
/// the host follows it, so the node's messages go to the new address and the
/// session stays up.
#[test]
fn the_host_follows_a_renominated_pair() {
    use softbus_rtc::stun::{attr, Class, Message, MessageBuilder, BINDING};
    let mut net = Net::perfect();
    let (mut n, mut seen) = (node(24), Seen::default());
    let mut r = RtcClient::connect(&mut n, &mut seen, &mut net);
    let ch = r.peer.open_channel(net.now(), "echo").unwrap();
    r.pump_until(&mut n, &mut seen, &mut net, |_, s| opened(s).len() == 1);
    let session = opened(&seen)[0].0;
    let old: SocketAddr = RTC_PEER.parse().unwrap();
    assert_eq!(n.sessions()[0].peer, old);
    // A nominating check from the new address, with the session's credentials.
    let answer = softbus_rtc::sdp::SdpAnswer::parse(&r.answer).unwrap();
    let m = &answer.media[0];
    let (ufrag, pwd) = (answer.ice_ufrag(m).unwrap(), answer.ice_pwd(m).unwrap());
    let offer = softbus_rtc::sdp::SdpOffer::parse(&r.offer).unwrap();
    let theirs = offer.ice_ufrag(&offer.media[0]).unwrap();
    let h = OpenSslCrypto::new();
    let check = MessageBuilder::new(Class::Request, BINDING, [9; 12])
        .attribute(attr::USERNAME, format!("{ufrag}:{theirs}").as_bytes())
        .attribute(attr::PRIORITY, &2_130_706_431u32.to_be_bytes())
        .attribute(attr::ICE_CONTROLLING, &7u64.to_be_bytes())
        .attribute(attr::USE_CANDIDATE, &[])
        .message_integrity(&h, pwd.as_bytes())
        .fingerprint();
    let moved: SocketAddr = "10.0.0.44:40444".parse().unwrap();
    drain(&mut n, &mut seen);
    seen.rtc.clear();
    n.handle_datagram(net.now(), Socket::Rtc, moved, None, &check)
        .unwrap();
    drain(&mut n, &mut seen);
    let (to, reply) = seen.rtc.pop().expect("the check is answered");
    assert_eq!(to, moved);
    assert_eq!(Message::parse(&reply).unwrap().class(), Class::Success);
    assert!(seen.rtc.is_empty(), "only the answer");
    // The node's next message on the session goes to the nominated address.
    n.send_bytes(net.now(), session, b"to the new pair")
        .unwrap();
    drain(&mut n, &mut seen);
    assert!(!seen.rtc.is_empty());
    assert!(
        seen.rtc.iter().all(|(to, _)| *to == moved),
        "{:?}",
        seen.rtc.iter().map(|(t, _)| t).collect::<Vec<_>>()
    );
    assert!(n.host().remote(r.id) == Some(moved));
    assert_eq!(
        n.sessions()[0].peer,
        moved,
        "the session shows where the peer is now"
    );
    let _ = ch;
}

/// No single peer takes every session slot (issue 7, item 5): a device that
/// opened its share is refused with a typed reason while another peer is served.
#[test]
fn one_peer_holds_at_most_its_share_of_sessions() {
    let mut net = Net::perfect();
    let mut n = node_limits(
        Limits {
            max_sessions: 24,
            max_sessions_per_peer: 2,
            ..Default::default()
        },
        HostConfig::new(RTC_HOST.parse().unwrap()),
    );
    n.create_session_server("echo", ServerMode::Echo).ok();
    let mut seen = Seen::default();
    let auth = authenticate(&mut n, &mut seen, &net, ConnId(1));
    assert!(open_tcp(&mut n, &mut seen, &net, &auth, ConnId(2), "echo").is_some());
    assert!(open_tcp(&mut n, &mut seen, &net, &auth, ConnId(3), "echo").is_some());
    assert!(open_tcp(&mut n, &mut seen, &net, &auth, ConnId(4), "echo").is_none());
    assert_eq!(
        refusals(&seen),
        vec![(Transport::Tcp, Refusal::TooManyForPeer(2))]
    );
    // Another peer (over WebRTC) is still served.
    let mut r = RtcClient::connect(&mut n, &mut seen, &mut net);
    r.peer.open_channel(net.now(), "echo").unwrap();
    r.pump_until(&mut n, &mut seen, &mut net, |_, s| opened(s).len() == 3);
    // A closed session gives the peer its slot back.
    n.close_session(net.now(), SessionId(1)).unwrap();
    drain(&mut n, &mut seen);
    assert!(open_tcp(&mut n, &mut seen, &net, &auth, ConnId(5), "echo").is_some());
}

/// One address cannot hold every session (issue 17, item 3): eight device ids
/// authenticated from 10.0.0.3 open 16 sessions between them, the 17th is
/// refused with a typed reason whose text, read by the client from the
/// node's answer, says the node is full; another address and a paired device
/// still open theirs.
#[test]
fn one_address_holds_at_most_its_share_of_sessions() {
    use softbus_bus::session::SessionError;
    let mut net = Net::perfect();
    let mut n = node(24);
    n.create_session_server("echo", ServerMode::Echo).ok();
    let mut seen = Seen::default();
    let mut conn = 0u64;
    let mut next = || {
        conn += 1;
        ConnId(conn)
    };
    let (mut opened, mut refused, mut auths) = (0, Vec::new(), Vec::new());
    for d in 0..8u8 {
        let id = format!("{:02X}", 0xA0 + d).repeat(32);
        let auth = authenticate_as(&mut n, &mut seen, &net, next(), &id, TCP_PEER);
        for _ in 0..3 {
            match open_tcp_from(&mut n, &mut seen, &net, &auth, next(), "echo", TCP_PEER) {
                Ok(_) => opened += 1,
                Err(e) => refused.push(e),
            }
        }
        auths.push(auth);
    }
    assert_eq!(opened, 16, "{refused:?}");
    assert_eq!(refused.len(), 8);
    let SessionError::Refused(why) = &refused[0] else {
        panic!("{refused:?}")
    };
    assert_eq!(
        why,
        "node full for 10.0.0.3: its session limit of 16 per address reached"
    );
    let address = "10.0.0.3".parse().unwrap();
    assert!(refusals(&seen).iter().all(|r| *r
        == (
            Transport::Tcp,
            Refusal::TooManyFromAddress { address, limit: 16 }
        )));
    // A device at another address opens one.
    let other = authenticate_as(
        &mut n,
        &mut seen,
        &net,
        next(),
        &"EE".repeat(32),
        "10.0.0.5:40000",
    );
    assert!(open_tcp_from(
        &mut n,
        &mut seen,
        &net,
        &other,
        next(),
        "echo",
        "10.0.0.5:40000"
    )
    .is_ok());
    // So does a paired device (STS, no PIN).
    let mut paired = node_as("CD", "10.0.0.9:50000");
    pair_cores(&mut paired, &mut n);
    let mut tcp = tcp();
    let addr = "10.0.0.2:40001".parse().unwrap();
    let sts = paired.connect_paired(net.now(), addr).unwrap();
    tcp.pump(&mut paired, &mut n, &mut net);
    let id = paired.open_session(net.now(), sts, "echo").unwrap();
    let (ce, _) = tcp.pump(&mut paired, &mut n, &mut net);
    assert!(
        ce.iter()
            .any(|e| matches!(e, Event::SessionOpened(i) if i.session_id == id)),
        "{ce:?}"
    );
    assert_eq!(n.sessions().len(), 18);
    // A closed session gives the address its slot back.
    n.close_session(net.now(), SessionId(1)).unwrap();
    drain(&mut n, &mut seen);
    assert!(open_tcp_from(&mut n, &mut seen, &net, &auths[7], next(), "echo", TCP_PEER).is_ok());
}

/// Only the credential that created a peer connection may delete it (issue 7,
/// item 4); sessions over it carry the token's name and `web_token`.
#[test]
fn only_the_creator_deletes_a_peer() {
    use softbus_node::{NodeError, Principal};
    let net = Net::perfect();
    let mut n = node(24);
    let (_, offer) = offerer();
    let (pid, _) = n.rtc_answer(net.now(), &offer, web()).unwrap();
    let other = Principal::WebToken {
        name: "web".into(),
        credential: "session:12345678".into(),
    };
    assert_eq!(
        n.rtc_close_as(net.now(), pid, &other),
        Err(NodeError::NotOwner)
    );
    assert_eq!(n.rtc_principal(pid), Some(&web()));
    assert_eq!(n.rtc_close_as(net.now(), pid, &web()), Ok(true));
    assert_eq!(n.rtc_close_as(net.now(), pid, &web()), Ok(false));
}

/// An application's SendBytes over a data channel answers in the kind of the
/// last message received (a page that sends text gets text), before any as
/// binary: C programs written for the soft bus know only bytes.
#[test]
fn an_application_answers_a_data_channel_in_the_kind_it_was_spoken_to() {
    let mut net = Net::perfect();
    let (mut n, mut seen) = (node(24), Seen::default());
    n.create_session_server("app", ServerMode::App).unwrap();
    let mut r = RtcClient::connect(&mut n, &mut seen, &mut net);
    let ch = r.peer.open_channel(net.now(), "app").unwrap();
    r.pump_until(&mut n, &mut seen, &mut net, |_, s| opened(s).len() == 1);
    let session = opened(&seen)[0].0;
    for (binary, text) in [(false, b"as text".to_vec()), (true, b"as binary".to_vec())] {
        r.peer.send(net.now(), ch, binary, &text).unwrap();
        r.pump_until(&mut n, &mut seen, &mut net, |_, s| {
            s.events
                .iter()
                .any(|e| matches!(e, Event::BytesReceived { data, .. } if *data == text))
        });
        n.send_bytes(net.now(), session, b"reply").unwrap();
        r.pump_until(&mut n, &mut seen, &mut net, |e, _| {
            e.iter().any(|e| matches!(e, PeerEvent::Message { binary: b, data, .. } if *b == binary && data == b"reply"))
        });
        r.events.clear();
    }
}

/// Which sessions go to the application is the core's decision (issue 18):
/// one opened to an `App` server is, one to a built-in echo server is not.
#[test]
fn the_core_says_which_sessions_are_the_application_s() {
    let net = Net::perfect();
    let mut n = node(24);
    n.create_session_server("app", ServerMode::App).unwrap();
    let mut seen = Seen::default();
    let auth = authenticate(&mut n, &mut seen, &net, ConnId(1));
    assert!(open_tcp(&mut n, &mut seen, &net, &auth, ConnId(2), "app").is_some());
    assert!(open_tcp(&mut n, &mut seen, &net, &auth, ConnId(3), "echo").is_some());
    let ids: Vec<(String, bool)> = n
        .sessions()
        .iter()
        .map(|i| (i.session.clone(), n.is_app_session(i.session_id)))
        .collect();
    assert_eq!(ids, vec![("app".into(), true), ("echo".into(), false)]);
    assert!(!n.is_app_session(SessionId(99)));
}

/// Media asks go through the same `admit` as sessions, and it reads its
/// transport: a stream is published or played over WebRTC only.
#[test]
fn media_asks_pass_the_one_decision_and_its_transport() {
    use softbus_node::{Ask, Authenticated};
    let n = node(24);
    let who = Authenticated::Posting(web());
    assert_eq!(
        n.admit(Transport::Tcp, &who, None, Ask::Publish("cam")),
        Err(Refusal::WrongTransport(Transport::Tcp))
    );
    assert_eq!(
        n.admit(Transport::WebRtc, &who, None, Ask::Play("cam")),
        Ok(())
    );
    assert_eq!(
        n.admit(Transport::WebRtc, &who, None, Ask::Session("nope")),
        Err(Refusal::UnknownServer("nope".into()))
    );
}
