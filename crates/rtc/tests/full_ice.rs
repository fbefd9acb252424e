//! Full ICE on the answering side, in virtual time: a host behind a home
//! router with a TURN server configured answers a peer behind another router,
//! over a lossy link. Through two symmetric NATs only the relay connects; with
//! no ICE server the answer is today's ICE-lite one, byte for byte.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod common;
use common::{addr, lossy, tids};
use softbus_crypto::OpenSslCrypto;
use softbus_rtc::gather::IceServer;
use softbus_rtc::host::{Host, HostEvent, PeerId};
use softbus_rtc::peer::{Peer, PeerEvent};
use softbus_rtc::turn::server::{IceServerUrl, TurnCredential};
use softbus_testkit::nat::{Nat, NatKind};
use softbus_testkit::turn::TurnServer;
use softbus_testkit::{HostAt, Net, PeerAt, Step};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

const TURN: &str = "198.18.0.1:3478";
const RELAY_IP: [u8; 4] = [198, 18, 0, 2];
const NODE: &str = "10.0.1.2:50000";
const NODE_PUBLIC: [u8; 4] = [198, 18, 1, 1];
const CLIENT: &str = "10.0.2.2:40000";
const CLIENT_PUBLIC: [u8; 4] = [198, 18, 2, 1];

fn host(servers: Vec<IceServer>, seed: u64) -> Host {
    common::host(addr(NODE), servers, seed)
}

fn turn_server(transport: &str) -> IceServer {
    IceServer {
        url: IceServerUrl::parse(&format!("turn:{TURN}?transport={transport}")).unwrap(),
        address: addr(TURN),
        credential: Some(TurnCredential {
            username: "alice".into(),
            password: "s3cret".into(),
        }),
    }
}

/// An offering client at CLIENT whose offer also names its router's public
/// address as a server-reflexive candidate (what its STUN server told it).
fn client(seed: u64) -> (Peer, String) {
    client_at(seed, 40000)
}

/// [`client`] with its reflexive candidate's port.
fn client_at(seed: u64, srflx_port: u16) -> (Peer, String) {
    let (peer, offer) = common::offer(addr(CLIENT), seed);
    let srflx = format!(
        "a=candidate:2 1 udp 1694498815 {} {srflx_port} typ srflx raddr 10.0.2.2 rport 40000\r\n",
        IpAddr::from(CLIENT_PUBLIC)
    );
    let offer = offer.replacen(
        "a=end-of-candidates\r\n",
        &(srflx + "a=end-of-candidates\r\n"),
        1,
    );
    (peer, offer)
}

struct World<'a> {
    net: Net,
    turn: TurnServer,
    node: Nat<HostAt<'a>>,
    client: Nat<PeerAt<'a>>,
}

/// The TURN server on the public side, the node and the client each behind a
/// router of `kind`.
fn world<'a>(
    net: Net,
    node: &'a mut Host,
    client: &'a mut Peer,
    h: &'a OpenSslCrypto,
    kind: NatKind,
) -> World<'a> {
    World {
        net,
        turn: TurnServer::new(
            addr(TURN),
            IpAddr::from(RELAY_IP),
            "alice",
            "s3cret",
            Box::new(OpenSslCrypto::new()),
        ),
        node: Nat::new(HostAt::new(node), IpAddr::from(NODE_PUBLIC), kind, 20_000),
        client: Nat::new(
            PeerAt::new(addr(CLIENT), client, h),
            IpAddr::from(CLIENT_PUBLIC),
            kind,
            30_000,
        ),
    }
}

impl World<'_> {
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let deadline = self.net.deadline(limit);
        loop {
            if done(self) {
                return true;
            }
            let step = self.net.step(
                &mut [&mut self.turn, &mut self.node, &mut self.client],
                deadline,
            );
            if step == Step::Idle {
                return done(self);
            }
        }
    }

    /// Starts the node's gathering and waits (at most `limit`) until every
    /// server has answered or given up.
    fn gather(&mut self, limit: Duration) {
        let now = self.net.now();
        self.node.inner.host.start_gathering(now);
        self.run_until(limit, |w| w.node.inner.host.gathering_done());
    }

    fn client_events(&mut self) -> Vec<PeerEvent> {
        let mut v = Vec::new();
        while let Some(e) = self.client.inner.peer.poll_event() {
            v.push(e);
        }
        v
    }
}

/// Connects a client to the host through the given routers; the peer id and
/// whether both sides came up.
fn connect(w: &mut World<'_>, offer: &str, h: &OpenSslCrypto) -> (PeerId, bool) {
    w.gather(Duration::from_secs(20));
    let servers = w.node.inner.host.ice_servers();
    assert!(servers.iter().all(|s| s.state == "ready"), "{servers:?}");
    let now = w.net.now();
    let (id, answer) = w.node.inner.host.answer(now, offer).unwrap();
    assert!(!answer.contains("a=ice-lite"), "{answer}");
    assert!(answer.contains(" typ relay raddr "), "{answer}");
    assert!(answer.contains("a=ice-options:trickle ice2"), "{answer}");
    w.client
        .inner
        .peer
        .apply_answer(now, &answer, h, tids(9))
        .unwrap();
    let mut client_up = false;
    let up = w.run_until(Duration::from_secs(30), |w| {
        client_up |= w
            .client_events()
            .iter()
            .any(|e| matches!(e, PeerEvent::Connected));
        client_up
            && w.node
                .inner
                .events
                .iter()
                .any(|e| matches!(e, HostEvent::Connected { peer } if *peer == id))
    });
    (id, up)
}

#[test]
fn through_two_symmetric_nats_only_the_relay_connects_and_carries_a_channel() {
    // The node reaches its TURN server over UDP, and over TCP.
    for (seed, transport) in [(0, "udp"), (1, "udp"), (2, "udp"), (3, "tcp"), (4, "tcp")] {
        let h = OpenSslCrypto::new();
        let mut node_host = host(vec![turn_server(transport)], seed);
        let (mut client_peer, offer) = client(seed + 100);
        let mut w = world(
            lossy(seed),
            &mut node_host,
            &mut client_peer,
            &h,
            NatKind::Symmetric,
        );
        let (id, up) = connect(&mut w, &offer, &h);
        assert!(
            up,
            "seed {seed} {transport}: not connected; node events {:?}",
            w.node.inner.events
        );
        // Over TCP the node holds one stream to its TURN server.
        assert_eq!(
            w.net.tcp_streams(),
            usize::from(transport == "tcp"),
            "{transport}"
        );
        // The node's selected pair is the client's router as the relay saw it.
        let remote = w.node.inner.host.remote(id).unwrap();
        assert_eq!(remote.ip(), IpAddr::from(CLIENT_PUBLIC), "seed {seed}");
        assert!(w.turn.stats.relayed_to_clients > 0 && w.turn.stats.relayed_to_peers > 0);

        // A data channel crosses the relay both ways.
        let now = w.net.now();
        let ch = w.client.inner.peer.open_channel(now, "echo").unwrap();
        let opened = w.run_until(Duration::from_secs(10), |w| {
            w.node
                .inner
                .events
                .iter()
                .any(|e| matches!(e, HostEvent::ChannelOpen { label, .. } if label == "echo"))
        });
        assert!(opened, "seed {seed}");
        let channel = common::opened_channel(&w.node.inner.events);
        let now = w.net.now();
        w.node.inner.host.accept_channel(now, id, channel).unwrap();
        let mut open = false;
        w.run_until(Duration::from_secs(10), |w| {
            open |= w
                .client_events()
                .iter()
                .any(|e| matches!(e, PeerEvent::ChannelOpen { .. }));
            open
        });
        let now = w.net.now();
        w.client
            .inner
            .peer
            .send(now, ch, false, b"through the relay")
            .unwrap();
        let got = w.run_until(Duration::from_secs(10), |w| {
            w.node.inner.events.iter().any(
                |e| matches!(e, HostEvent::Message { data, .. } if data == b"through the relay"),
            )
        });
        assert!(got, "seed {seed}: the message did not arrive");
        let now = w.net.now();
        w.node
            .inner
            .host
            .send(now, id, channel, true, &[7; 1000])
            .unwrap();
        let mut back = false;
        w.run_until(Duration::from_secs(10), |w| {
            back |= w.client_events().iter().any(|e| {
                matches!(e, PeerEvent::Message { binary: true, data, .. } if data == &[7u8; 1000])
            });
            back
        });
        assert!(back, "seed {seed}: the answer did not arrive");
    }
}

#[test]
fn without_a_turn_server_two_symmetric_nats_do_not_connect() {
    let h = OpenSslCrypto::new();
    // STUN only: the host learns its reflexive address, which a symmetric NAT
    // maps differently for every destination.
    let stun = IceServer {
        url: IceServerUrl::parse(&format!("stun:{TURN}")).unwrap(),
        address: addr(TURN),
        credential: None,
    };
    let mut node_host = host(vec![stun], 5);
    let (mut client_peer, offer) = client(105);
    let mut w = world(
        Net::perfect(),
        &mut node_host,
        &mut client_peer,
        &h,
        NatKind::Symmetric,
    );
    w.gather(Duration::from_secs(5));
    let now = w.net.now();
    let (_, answer) = w.node.inner.host.answer(now, &offer).unwrap();
    assert!(
        answer.contains(" typ srflx raddr 10.0.1.2 rport 50000"),
        "{answer}"
    );
    w.client
        .inner
        .peer
        .apply_answer(now, &answer, &h, tids(3))
        .unwrap();
    let mut closed = None;
    w.run_until(Duration::from_secs(40), |w| {
        for e in w.client_events() {
            if let PeerEvent::Closed(r) = e {
                closed = Some(r);
            }
        }
        closed.is_some()
    });
    assert_eq!(
        closed.map(|r| r.to_string()),
        Some("ICE failed: no candidate pair connected".to_owned())
    );
    assert!(
        w.node.filtered + w.client.filtered > 0,
        "the routers dropped the checks"
    );
}

#[test]
fn two_cone_nats_connect_by_reflexive_candidates_with_stun_only() {
    let h = OpenSslCrypto::new();
    let stun = IceServer {
        url: IceServerUrl::parse(&format!("stun:{TURN}")).unwrap(),
        address: addr(TURN),
        credential: None,
    };
    let mut node_host = host(vec![stun], 6);
    // A cone router keeps one public port per inside socket: the first it gives, 30000.
    let (mut client_peer, offer) = client_at(106, 30_000);
    let mut w = world(
        lossy(6),
        &mut node_host,
        &mut client_peer,
        &h,
        NatKind::PortRestrictedCone,
    );
    w.gather(Duration::from_secs(10));
    let now = w.net.now();
    let (id, answer) = w.node.inner.host.answer(now, &offer).unwrap();
    assert!(
        answer.contains("198.18.1.1 20000 typ srflx raddr 10.0.1.2 rport 50000"),
        "{answer}"
    );
    w.client
        .inner
        .peer
        .apply_answer(now, &answer, &h, tids(4))
        .unwrap();
    let up = w.run_until(Duration::from_secs(30), |w| {
        w.node
            .inner
            .events
            .iter()
            .any(|e| matches!(e, HostEvent::Connected { peer } if *peer == id))
    });
    assert!(up, "{:?}", w.node.inner.events);
    assert_eq!(
        w.node.inner.host.remote(id),
        Some(SocketAddr::from((CLIENT_PUBLIC, 30_000))),
        "the pair of the two reflexive addresses"
    );
    assert_eq!(w.turn.stats.allocations, 0);
}

#[test]
fn with_no_ice_server_the_answer_is_ice_lite_as_before() {
    let mut lite = host(Vec::new(), 1);
    let (_, offer) = client(101);
    let now = Net::perfect().now();
    let (_, answer) = lite.answer(now, &offer).unwrap();
    assert!(answer.contains("a=ice-lite\r\n"));
    assert!(answer.contains("a=ice-options:ice2\r\n"));
    assert_eq!(answer.matches("a=candidate:").count(), 1, "{answer}");
    assert!(answer.contains("a=candidate:1 1 udp 2130706431 10.0.1.2 50000 typ host\r\n"));
    assert!(
        lite.poll_transmit().is_none(),
        "a lite host sends nothing before a check"
    );
    assert!(!lite.is_full_ice());
}
