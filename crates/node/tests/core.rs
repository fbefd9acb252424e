//! The node core in virtual time, with no sockets: a soft bus client over TCP
//! and a WebRTC peer reach the same echo server through one session table, one
//! limit and one decision point.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod common;
use common::*;
use softbus_bus::auth::{AuthClient, Authenticated as AuthDone, LocalAuthInfo};
use softbus_bus::node::Listener;
use softbus_bus::session::{ClientEvent, SessionClient};
use softbus_bus::ConnId;
use softbus_crypto::dtls::DtlsIdentity;
use softbus_crypto::OpenSslCrypto;
use softbus_node::{
    Event, Limits, Node, Refusal, ServerMode, SessionClosed, SessionId, Socket, Transport,
};
use softbus_rtc::host::HostConfig;
use softbus_rtc::peer::{CloseReason, Peer, PeerEvent};
use softbus_testkit::{Net, PeerAt, Step};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const TCP_PEER: &str = "10.0.0.3:40000";
const RTC_PEER: &str = "10.0.0.4:40000";
const RTC_HOST: &str = "10.0.0.2:50000";

fn node(max_sessions: usize) -> Node {
    node_with(max_sessions, HostConfig::new(RTC_HOST.parse().unwrap()))
}

fn node_with(max_sessions: usize, host_cfg: HostConfig) -> Node {
    node_limits(
        Limits {
            max_sessions,
            ..Default::default()
        },
        host_cfg,
    )
}

fn node_limits(limits: Limits, host_cfg: HostConfig) -> Node {
    node_full("AB", limits, host_cfg)
}

fn take_tcp(seen: &mut Seen, conn: ConnId) -> Vec<Vec<u8>> {
    let (mine, rest) = std::mem::take(&mut seen.tcp)
        .into_iter()
        .partition(|(c, _)| *c == conn);
    seen.tcp = rest;
    mine.into_iter().map(|(_, b)| b).collect()
}

/// A PIN key agreement on `conn`, as softbus_lite clients run it.
fn authenticate(n: &mut Node, seen: &mut Seen, net: &Net, conn: ConnId) -> AuthDone {
    authenticate_as(n, seen, net, conn, &"CD".repeat(32), TCP_PEER)
}

/// The same, as the device `device_id` from `from`.
fn authenticate_as(
    n: &mut Node,
    seen: &mut Seen,
    net: &Net,
    conn: ConnId,
    device_id: &str,
    from: &str,
) -> AuthDone {
    let mut c = OpenSslCrypto::seeded(21);
    n.handle_accept(net.now(), conn, Listener::Auth, from.parse().unwrap())
        .unwrap();
    let info = LocalAuthInfo {
        device_id: device_id.to_owned(),
        device_name: "phone".into(),
        device_type: "DEV_L1".into(),
        auth_port: 0,
        session_port: 0,
    };
    let mut client = AuthClient::new(info, b"246810", 900);
    // Each round the client speaks and the node answers, until the client is
    // done; a round with no answer ends the exchange.
    loop {
        while let Some(b) = client.poll_transmit() {
            n.handle_tcp_data(net.now(), conn, &b);
        }
        drain(n, seen);
        let replies = take_tcp(seen, conn);
        assert!(
            !replies.is_empty(),
            "auth did not finish: the node went quiet"
        );
        for r in replies {
            if let Some(done) = client.handle_data(&mut c, &r).unwrap() {
                return done;
            }
        }
    }
}

/// Asks for a session on `conn`; the client once the open reply came, or None.
fn open_tcp(
    n: &mut Node,
    seen: &mut Seen,
    net: &Net,
    auth: &AuthDone,
    conn: ConnId,
    server: &str,
) -> Option<SessionClient> {
    open_tcp_from(n, seen, net, auth, conn, server, TCP_PEER).ok()
}

/// Asks for a session on `conn` from `from`: the client once the open reply
/// came, or the error the client read from the node's answer.
fn open_tcp_from(
    n: &mut Node,
    seen: &mut Seen,
    net: &Net,
    auth: &AuthDone,
    conn: ConnId,
    server: &str,
    from: &str,
) -> Result<SessionClient, softbus_bus::session::SessionError> {
    // A fresh session key for every open, as a real client draws (a repeated
    // one is a replay).
    let mut c = OpenSslCrypto::seeded(22 + conn.0);
    n.handle_accept(net.now(), conn, Listener::Session, from.parse().unwrap())
        .unwrap();
    let mut s = SessionClient::new(&mut c, server, auth.key_index, &auth.key).unwrap();
    n.handle_tcp_data(net.now(), conn, &s.poll_transmit().unwrap());
    drain(n, seen);
    let reply = take_tcp(seen, conn);
    let Some(first) = reply.first() else {
        assert!(seen.closed.contains(&conn), "no answer and not closed");
        return Err(softbus_bus::session::SessionError::NotOpen);
    };
    let ev = s.handle_data(&mut c, first)?;
    assert!(matches!(ev[0], ClientEvent::Opened(_)));
    assert!(!seen.closed.contains(&conn));
    Ok(s)
}

/// An offering peer (full ICE, DTLS client or server as the answer says) and its offer.
fn offerer() -> (Peer, String) {
    offerer_at(RTC_PEER.parse().unwrap())
}

fn offerer_at(addr: SocketAddr) -> (Peer, String) {
    let id = DtlsIdentity::generate().unwrap();
    let mut rng = OpenSslCrypto::seeded(5);
    Peer::offer(
        addr,
        &id.fingerprint("sha-256").unwrap(),
        Box::new(id.factory().unwrap()),
        42,
        Box::new(move |len| softbus_rtc::crypto::ice_chars(&mut rng, len)),
    )
    .unwrap()
}

/// An offering WebRTC peer, connected to the node's host.
struct RtcClient {
    /// The node's id for this peer (`/rtc/<id>`).
    id: softbus_rtc::host::PeerId,
    addr: SocketAddr,
    peer: Peer,
    hmac: OpenSslCrypto,
    events: Vec<PeerEvent>,
    offer: String,
    answer: String,
}

impl RtcClient {
    fn connect(n: &mut Node, seen: &mut Seen, net: &mut Net) -> Self {
        Self::connect_from(n, seen, net, RTC_PEER.parse().unwrap())
    }

    fn connect_from(n: &mut Node, seen: &mut Seen, net: &mut Net, addr: SocketAddr) -> Self {
        let (mut peer, offer) = offerer_at(addr);
        let (id, answer) = n.rtc_answer(net.now(), &offer, web()).unwrap();
        let answer_sdp = answer.clone();
        let hmac = OpenSslCrypto::new();
        let mut tid = 0u8;
        peer.apply_answer(
            net.now(),
            &answer,
            &hmac,
            Box::new(move || {
                tid = tid.wrapping_add(1);
                [tid; 12]
            }),
        )
        .unwrap();
        let mut c = Self {
            id,
            addr,
            peer,
            hmac,
            events: Vec::new(),
            offer: offer.clone(),
            answer: answer_sdp,
        };
        c.pump_until(n, seen, net, |e, _| e.contains(&PeerEvent::Connected));
        c
    }

    /// Drives the client and the node on the shared test network until `done`
    /// (at most a minute of virtual time).
    fn pump_until(
        &mut self,
        n: &mut Node,
        seen: &mut Seen,
        net: &mut Net,
        done: impl Fn(&[PeerEvent], &Seen) -> bool,
    ) {
        let deadline = net.deadline(Duration::from_secs(60));
        loop {
            let mut peer = PeerAt::new(self.addr, &mut self.peer, &self.hmac);
            let step = net.step(&mut [&mut NodeSide { n, seen }, &mut peer], deadline);
            while let Some(e) = self.peer.poll_event() {
                self.events.push(e);
            }
            drain(n, seen);
            if done(&self.events, seen) {
                return;
            }
            assert_ne!(step, Step::Idle, "not done: {:?}", self.events);
        }
    }

    /// Drives the client and the node for `d` of virtual time.
    fn pump_for(&mut self, n: &mut Node, seen: &mut Seen, net: &mut Net, d: Duration) {
        let deadline = net.deadline(d);
        loop {
            let mut peer = PeerAt::new(self.addr, &mut self.peer, &self.hmac);
            if net.step(&mut [&mut NodeSide { n, seen }, &mut peer], deadline) == Step::Idle {
                break;
            }
            while let Some(e) = self.peer.poll_event() {
                self.events.push(e);
            }
        }
        drain(n, seen);
    }
}

fn opened(seen: &Seen) -> Vec<(SessionId, Transport)> {
    seen.events
        .iter()
        .filter_map(|e| match e {
            Event::SessionOpened(i) => Some((
                i.session_id,
                if i.transport == Transport::Tcp {
                    Transport::Tcp
                } else {
                    Transport::WebRtc
                },
            )),
            _ => None,
        })
        .collect()
}

fn refusals(seen: &Seen) -> Vec<(Transport, Refusal)> {
    seen.events
        .iter()
        .filter_map(|e| match e {
            Event::SessionRefused {
                transport, reason, ..
            } => Some((*transport, reason.clone())),
            _ => None,
        })
        .collect()
}

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

fn fingerprint_of(answer: &str) -> Vec<u8> {
    let a = softbus_rtc::sdp::SdpAnswer::parse(answer).unwrap();
    a.fingerprints(&a.media[0]).unwrap()[0].digest.clone()
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

/// Two node cores on the test network with TCP between them: the client (at
/// `ip`) dials, the server (the test nodes' 10.0.0.2) listens.
struct Tcp {
    ip: [u8; 4],
}

const CLIENT_IP: [u8; 4] = [10, 0, 0, 9];
const SERVER_IP: [u8; 4] = [10, 0, 0, 2];

impl Tcp {
    /// Carries what both cores have to say until neither says more (no time
    /// passes); the events each reported.
    fn pump(&mut self, c: &mut Node, s: &mut Node, net: &mut Net) -> (Vec<Event>, Vec<Event>) {
        let (mut ce, mut se) = (Vec::new(), Vec::new());
        let now = net.now();
        net.run_until_idle(
            &mut [
                &mut CoreAt::new(c, self.ip, &mut ce),
                &mut CoreAt::new(s, SERVER_IP, &mut se),
            ],
            now,
        );
        (ce, se)
    }
}

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
    let mut tcp2 = Tcp { ip: [10, 0, 0, 11] };
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

/// One step of two node cores on the shared network.
fn step2(
    net: &mut Net,
    (a, sa): (&mut Node, &mut Seen),
    (b, sb): (&mut Node, &mut Seen),
    deadline: Instant,
) -> Step {
    net.step(
        &mut [
            &mut NodeSide { n: a, seen: sa },
            &mut NodeSide { n: b, seen: sb },
        ],
        deadline,
    )
}

/// A client core at [`CLIENT_IP`] and the server core.
fn tcp() -> Tcp {
    Tcp { ip: CLIENT_IP }
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

fn node_as(byte: &str, rtc_host: &str) -> Node {
    node_full(
        byte,
        Limits::default(),
        HostConfig::new(rtc_host.parse().unwrap()),
    )
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
    let mut tcp3 = Tcp { ip: [10, 0, 0, 12] };
    assert!(stranger.connect_paired(net.now(), addr).is_ok());
    let (ce, _) = tcp3.pump(&mut stranger, &mut server, &mut net);
    assert!(
        !ce.iter()
            .any(|e| matches!(e, Event::Bus(BusEvent::Authenticated { .. }))),
        "{ce:?}"
    );
}

/// Pairs two cores directly (as a BIND would have).
fn pair_cores(a: &mut Node, b: &mut Node) {
    let (ida, pka) = (
        a.bus().identity().unwrap().auth_id().to_owned(),
        *a.bus().identity().unwrap().public(),
    );
    let (idb, pkb) = (
        b.bus().identity().unwrap().auth_id().to_owned(),
        *b.bus().identity().unwrap().public(),
    );
    let mut pa = a.bus().pairings().clone();
    pa.insert(idb, pkb);
    a.bus_mut().set_pairings(pa);
    let mut pb = b.bus().pairings().clone();
    pb.insert(ida, pka);
    b.bus_mut().set_pairings(pb);
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

fn fingerprint_line(sdp: &str) -> String {
    sdp.lines()
        .find(|l| l.starts_with("a=fingerprint:"))
        .unwrap()
        .to_owned()
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
