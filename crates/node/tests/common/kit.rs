//! What the node core's tests of one and two cores share: nodes, soft bus
//! and WebRTC clients driven against a core, two cores joined by TCP.
#![allow(dead_code, unused_imports, clippy::unwrap_used)]
use super::*;
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

pub const TCP_PEER: &str = "10.0.0.3:40000";

pub const RTC_PEER: &str = "10.0.0.4:40000";

pub const RTC_HOST: &str = "10.0.0.2:50000";

pub fn node(max_sessions: usize) -> Node {
    node_with(max_sessions, HostConfig::new(RTC_HOST.parse().unwrap()))
}

pub fn node_with(max_sessions: usize, host_cfg: HostConfig) -> Node {
    node_limits(
        Limits {
            max_sessions,
            ..Default::default()
        },
        host_cfg,
    )
}

pub fn node_limits(limits: Limits, host_cfg: HostConfig) -> Node {
    node_full("AB", limits, host_cfg)
}

pub fn take_tcp(seen: &mut Seen, conn: ConnId) -> Vec<Vec<u8>> {
    let (mine, rest) = std::mem::take(&mut seen.tcp)
        .into_iter()
        .partition(|(c, _)| *c == conn);
    seen.tcp = rest;
    mine.into_iter().map(|(_, b)| b).collect()
}

/// A PIN key agreement on `conn`, as softbus_lite clients run it.
pub fn authenticate(n: &mut Node, seen: &mut Seen, net: &Net, conn: ConnId) -> AuthDone {
    authenticate_as(n, seen, net, conn, &"CD".repeat(32), TCP_PEER)
}

/// The same, as the device `device_id` from `from`.
pub fn authenticate_as(
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
pub fn open_tcp(
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
pub fn open_tcp_from(
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
pub fn offerer() -> (Peer, String) {
    offerer_at(RTC_PEER.parse().unwrap())
}

pub fn offerer_at(addr: SocketAddr) -> (Peer, String) {
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
pub struct RtcClient {
    /// The node's id for this peer (`/rtc/<id>`).
    pub id: softbus_rtc::host::PeerId,
    pub addr: SocketAddr,
    pub peer: Peer,
    pub hmac: OpenSslCrypto,
    pub events: Vec<PeerEvent>,
    pub offer: String,
    pub answer: String,
}

impl RtcClient {
    pub fn connect(n: &mut Node, seen: &mut Seen, net: &mut Net) -> Self {
        Self::connect_from(n, seen, net, RTC_PEER.parse().unwrap())
    }

    pub fn connect_from(n: &mut Node, seen: &mut Seen, net: &mut Net, addr: SocketAddr) -> Self {
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
    pub fn pump_until(
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
    pub fn pump_for(&mut self, n: &mut Node, seen: &mut Seen, net: &mut Net, d: Duration) {
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

pub fn opened(seen: &Seen) -> Vec<(SessionId, Transport)> {
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

pub fn refusals(seen: &Seen) -> Vec<(Transport, Refusal)> {
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

pub fn fingerprint_of(answer: &str) -> Vec<u8> {
    let a = softbus_rtc::sdp::SdpAnswer::parse(answer).unwrap();
    a.fingerprints(&a.media[0]).unwrap()[0].digest.clone()
}

/// Two node cores on the test network with TCP between them: the client (at
/// `ip`) dials, the server (the test nodes' 10.0.0.2) listens.
pub struct Wire {
    pub ip: [u8; 4],
}

pub const CLIENT_IP: [u8; 4] = [10, 0, 0, 9];

pub const SERVER_IP: [u8; 4] = [10, 0, 0, 2];

impl Wire {
    /// Carries what both cores have to say until neither says more (no time
    /// passes); the events each reported.
    pub fn pump(&mut self, c: &mut Node, s: &mut Node, net: &mut Net) -> (Vec<Event>, Vec<Event>) {
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

/// One step of two node cores on the shared network.
pub fn step2(
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
pub fn tcp() -> Wire {
    Wire { ip: CLIENT_IP }
}

pub fn node_as(byte: &str, rtc_host: &str) -> Node {
    node_full(
        byte,
        Limits::default(),
        HostConfig::new(rtc_host.parse().unwrap()),
    )
}

/// Pairs two cores directly (as a BIND would have).
pub fn pair_cores(a: &mut Node, b: &mut Node) {
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

pub fn fingerprint_line(sdp: &str) -> String {
    sdp.lines()
        .find(|l| l.starts_with("a=fingerprint:"))
        .unwrap()
        .to_owned()
}
