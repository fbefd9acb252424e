//! The whole soft bus between engines in memory: discover → auth → open → echo,
//! and the negative battery (each bad input rejected, the node still serving).
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // tests: unwrap is the assertion; Instant::now only picks an origin
mod common;
use softbus_bus::auth::{AuthClient, AuthError, Authenticated, LocalAuthInfo, PinPolicy};
use softbus_bus::discovery::{
    Discovery, DiscoveryConfig, DiscoveryError, DiscoveryEvent, LocalDevice,
};
use softbus_bus::frame::{self, Module};
use softbus_bus::node::{Bus, BusConfig, BusEvent, Listener, LocalConfig, Refusal};
use softbus_bus::session::{ClientEvent, SessionClient};
use softbus_bus::{ConnId, SessionId, Transmit};
use softbus_crypto::OpenSslCrypto;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const PEER: &str = "10.0.0.3:40000";

/// A node at 10.0.0.2 with `cfg`, its randomness seeded with `seed`.
fn bus_with(cfg: BusConfig, seed: u64) -> Bus {
    Bus::new(
        cfg,
        LocalConfig {
            device_id: "AB".repeat(32),
            name: "node".into(),
            device_type: 0xF2,
            ip: [10, 0, 0, 2].into(),
        },
        Box::new(OpenSslCrypto::seeded(seed)),
    )
}

fn node() -> Bus {
    let mut bus = bus_with(
        BusConfig {
            pin: PinPolicy::pin("246810"),
            ..Default::default()
        },
        11,
    );
    bus.set_ports(40001, 40002);
    bus
}

/// The application's side of a session open: `echo` is accepted (ids from 1),
/// anything else refused.
fn decide(bus: &mut Bus) {
    while let Some(r) = bus.poll_session_request() {
        if r.server == "echo" {
            let id = bus
                .sessions()
                .iter()
                .map(|s| s.session_id.0)
                .max()
                .unwrap_or(0)
                + 1;
            bus.accept_session(Instant::now(), r.conn, SessionId(id))
                .unwrap();
        } else {
            bus.refuse_session(r.conn, Refusal::UnknownServer(r.server));
        }
    }
}

fn client_info() -> LocalAuthInfo {
    LocalAuthInfo {
        device_id: "CD".repeat(32),
        device_name: "phone".into(),
        device_type: "DEV_L1".into(),
        auth_port: 0,
        session_port: 0,
    }
}

/// Bytes the node wrote to `conn`; panics on a close.
fn out_for(bus: &mut Bus, conn: ConnId) -> (Vec<Vec<u8>>, bool) {
    let mut v = Vec::new();
    let mut closed = false;
    let mut keep = Vec::new();
    while let Some(t) = bus.poll_transmit() {
        match t {
            Transmit::Tcp { conn: c, bytes } if c == conn => v.push(bytes),
            Transmit::Close { conn: c } if c == conn => closed = true,
            other => keep.push(other),
        }
    }
    assert!(
        keep.iter().all(|t| matches!(t, Transmit::Datagram(_))),
        "{keep:?}"
    );
    (v, closed)
}

fn authenticate(
    bus: &mut Bus,
    c: &mut OpenSslCrypto,
    conn: ConnId,
    pin: &str,
    seq: i64,
) -> Result<Authenticated, AuthError> {
    let now = Instant::now();
    bus.handle_accept(now, conn, Listener::Auth, PEER.parse().unwrap())
        .unwrap();
    let mut client = AuthClient::new(client_info(), pin.as_bytes(), seq);
    let x = common::exchange(bus, now, conn, &mut client, c);
    assert!(
        x.other.iter().all(|t| matches!(t, Transmit::Datagram(_))),
        "{:?}",
        x.other
    );
    match x.result {
        Some(r) => r,
        None if x.closed => panic!("node closed the auth connection"),
        None => panic!("auth did not finish"),
    }
}

fn open(
    bus: &mut Bus,
    c: &mut OpenSslCrypto,
    conn: ConnId,
    auth: &Authenticated,
    name: &str,
) -> (SessionClient, Vec<Vec<u8>>, bool) {
    let now = Instant::now();
    bus.handle_accept(now, conn, Listener::Session, PEER.parse().unwrap())
        .unwrap();
    let mut s = SessionClient::new(c, name, auth.key_index, &auth.key).unwrap();
    let pkt = s.poll_transmit().unwrap();
    bus.handle_tcp_data(now, conn, &pkt).unwrap();
    decide(bus);
    let (out, closed) = out_for(bus, conn);
    (s, out, closed)
}

fn events(bus: &mut Bus) -> Vec<BusEvent> {
    std::iter::from_fn(|| bus.poll_event()).collect()
}

fn opened_echo(
    bus: &mut Bus,
    c: &mut OpenSslCrypto,
    auth_conn: u64,
    sess_conn: u64,
) -> (SessionClient, SessionId, Authenticated) {
    let auth = authenticate(bus, c, ConnId(auth_conn), "246810", 900).unwrap();
    let (mut s, out, closed) = open(bus, c, ConnId(sess_conn), &auth, "echo");
    assert!(!closed);
    let ev = s.handle_data(c, &out[0]).unwrap();
    let ClientEvent::Opened(reply) = &ev[0] else {
        panic!()
    };
    assert_eq!(reply["CODE"], 1);
    assert_eq!(reply["PKG_NAME"], "echo");
    assert_eq!(reply["DEVICE_ID"], "AB".repeat(32));
    let id = events(bus).iter().find_map(|e| match e {
        BusEvent::SessionOpened(i) => Some(i.session_id),
        _ => None,
    });
    (s, id.unwrap(), auth)
}

fn echo_round(
    bus: &mut Bus,
    c: &mut OpenSslCrypto,
    s: &mut SessionClient,
    conn: ConnId,
    id: SessionId,
    msg: &[u8],
) {
    s.send(c, msg).unwrap();
    let pkt = s.poll_transmit().unwrap();
    bus.handle_tcp_data(Instant::now(), conn, &pkt).unwrap();
    let got = events(bus).into_iter().find_map(|e| match e {
        BusEvent::BytesReceived { session_id, data } if session_id == id => Some(data),
        _ => None,
    });
    assert_eq!(got.as_deref(), Some(msg));
    bus.send_bytes(id, msg).unwrap();
    let (out, _) = out_for(bus, conn);
    assert_eq!(
        s.handle_data(c, &out[0]).unwrap(),
        vec![ClientEvent::Bytes(msg.to_vec())]
    );
}

#[test]
fn discover_then_authenticate_then_echo() {
    let mut bus = node();
    bus.discovery_mut()
        .publish(
            Some("softbus-server"),
            &softbus_bus::discovery::publish::PublishInfo::coap(1, "ddmpCapability"),
        )
        .unwrap();
    let mut disc = Discovery::new(
        DiscoveryConfig::default(),
        LocalDevice {
            device_id: "CD".repeat(32),
            name: "phone".into(),
            device_type: 0x0E,
            ip: [10, 0, 0, 3].into(),
            auth_port: None,
        },
    );
    let now = Instant::now();
    disc.start_discovery(now, vec!["10.0.0.2:5684".parse().unwrap()]);
    let req = disc.poll_transmit().unwrap();
    // A node bound to 0.0.0.0 hears every address of its host: a request sent to
    // another one is not for it.
    let from = "10.0.0.3:5684".parse().unwrap();
    let elsewhere = Some("127.0.0.15".parse().unwrap());
    assert_eq!(
        bus.handle_datagram(now, from, elsewhere, &req.payload),
        Err(DiscoveryError::NotForUs("127.0.0.15".parse().unwrap()))
    );
    assert_eq!(bus.poll_transmit(), None);
    assert_eq!(bus.discovery().dropped(), 1);
    for to in ["255.255.255.255", "10.0.0.2"] {
        bus.handle_datagram(now, from, Some(to.parse().unwrap()), &req.payload)
            .unwrap();
        assert!(
            matches!(bus.poll_transmit(), Some(Transmit::Datagram(_))),
            "{to}"
        );
    }
    bus.handle_datagram(now, from, None, &req.payload).unwrap();
    let Some(Transmit::Datagram(reply)) = bus.poll_transmit() else {
        panic!()
    };
    disc.handle_datagram(now, "10.0.0.2:5684".parse().unwrap(), &reply.payload)
        .unwrap();
    let Some(DiscoveryEvent::DeviceFound(found)) = disc.poll_event() else {
        panic!()
    };
    assert_eq!(
        (
            found.device_id.as_str(),
            found.auth_port,
            found.name.as_str()
        ),
        ("AB".repeat(32).as_str(), Some(40001), "node")
    );

    let mut c = OpenSslCrypto::seeded(5);
    let auth = authenticate(&mut bus, &mut c, ConnId(1), "246810", 900).unwrap();
    assert_eq!(
        (auth.peer.session_port, auth.peer.auth_port, auth.key_index),
        (40002, 40001, 900)
    );
    assert_eq!(auth.peer.device_id, "AB".repeat(32));
    let verified = events(&mut bus).into_iter().find_map(|e| match e {
        BusEvent::PeerVerified { peer, .. } => Some(peer),
        _ => None,
    });
    assert_eq!(verified.unwrap().device_id, "CD".repeat(32));

    let (mut s, out, closed) = open(&mut bus, &mut c, ConnId(2), &auth, "echo");
    assert!(!closed);
    let h = frame::AuthHeader::parse(&out[0], 4096).unwrap();
    assert_eq!((h.module, h.seq, h.flags), (Module::SESSION, 100, 1));
    s.handle_data(&mut c, &out[0]).unwrap();
    let info = events(&mut bus).into_iter().find_map(|e| match e {
        BusEvent::SessionOpened(i) => Some(i),
        _ => None,
    });
    let info = info.unwrap();
    assert_eq!(
        (info.session.as_str(), info.peer_device_id.as_str()),
        ("echo", "CD".repeat(32).as_str())
    );
    for msg in [&b"x"[..], b"hello softbus", &[0xa5; 4048]] {
        echo_round(&mut bus, &mut c, &mut s, ConnId(2), info.session_id, msg);
    }
    assert!(bus.send_bytes(info.session_id, &[0; 4049]).is_err());
    assert!(bus.send_bytes(info.session_id, &[]).is_err());
    bus.close_session(info.session_id).unwrap();
    assert!(matches!(
        bus.poll_transmit(),
        Some(Transmit::Close { conn: ConnId(2) })
    ));
    assert!(matches!(
        bus.poll_event(),
        Some(BusEvent::SessionClosed { .. })
    ));
}

#[test]
fn wrong_pin_is_refused() {
    let mut bus = node();
    let mut c = OpenSslCrypto::seeded(6);
    assert_eq!(
        authenticate(&mut bus, &mut c, ConnId(1), "000000", 7).unwrap_err(),
        AuthError::WrongPin
    );
    assert!(events(&mut bus)
        .iter()
        .any(|e| matches!(e, BusEvent::PakeFailed { code: 17, .. })));
}

#[test]
fn empty_pin_needs_explicit_permission() {
    let mut bus = bus_with(
        BusConfig {
            pin: PinPolicy::pin(""),
            ..Default::default()
        },
        1,
    );
    let mut c = OpenSslCrypto::seeded(2);
    assert!(authenticate(&mut bus, &mut c, ConnId(1), "", 7).is_err());
    let mut bus = bus_with(
        BusConfig {
            pin: PinPolicy {
                pin: Some(String::new().into()),
                allow_empty: true,
            },
            ..Default::default()
        },
        1,
    );
    assert!(authenticate(&mut bus, &mut c, ConnId(1), "", 7).is_ok());
}

/// Each bad input is rejected cleanly; afterwards a good client is still served.
#[test]
fn negative_battery() {
    let mut bus = node();
    let mut c = OpenSslCrypto::seeded(9);
    let now = Instant::now();
    let peer: SocketAddr = PEER.parse().unwrap();
    let (mut good, good_id, auth) = opened_echo(&mut bus, &mut c, 1, 2);
    let mut next = 100u64;
    let mut fresh = |bus: &mut Bus, l: Listener| {
        next += 1;
        bus.handle_accept(now, ConnId(next), l, peer).unwrap();
        ConnId(next)
    };
    let closed_after = |bus: &mut Bus, conn: ConnId, bytes: &[u8]| -> bool {
        bus.handle_tcp_data(now, conn, bytes).unwrap();
        decide(bus);
        out_for(bus, conn).1
    };
    let mut hdr = Vec::new();
    frame::AuthHeader {
        module: Module::TRUST_ENGINE,
        seq: 1,
        flags: 0,
        data_len: 10,
    }
    .emit(&mut hdr);

    // truncated frame: nothing happens until the deadline, then the connection is dropped
    let t = fresh(&mut bus, Listener::Auth);
    assert!(!closed_after(&mut bus, t, &hdr[..20]));
    bus.handle_timeout(now + Duration::from_secs(11));
    assert!(out_for(&mut bus, t).1, "truncated frame times out");
    // bad magic
    let t = fresh(&mut bus, Listener::Auth);
    assert!(closed_after(
        &mut bus,
        t,
        &[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0]
    ));
    // huge dataLen
    let t = fresh(&mut bus, Listener::Auth);
    let mut huge = Vec::new();
    frame::AuthHeader {
        module: Module::TRUST_ENGINE,
        seq: 1,
        flags: 0,
        data_len: 0x7fff_fff0,
    }
    .emit(&mut huge);
    assert!(closed_after(&mut bus, t, &huge));
    // bad JSON
    let t = fresh(&mut bus, Listener::Auth);
    assert!(closed_after(
        &mut bus,
        t,
        &frame::auth_plain(Module::TRUST_ENGINE, 1, 0, b"{not json")
    ));
    // unknown module: ignored a few times, then the connection is dropped
    let t = fresh(&mut bus, Listener::Auth);
    let unknown = frame::auth_plain(Module(77), 1, 0, b"x");
    assert!(!closed_after(&mut bus, t, &unknown));
    assert!(closed_after(&mut bus, t, &unknown.repeat(20)));
    // wrong key index on session open
    let t = fresh(&mut bus, Listener::Session);
    let mut bad_idx = SessionClient::new(&mut c, "echo", 901, &auth.key).unwrap();
    assert!(closed_after(&mut bus, t, &bad_idx.poll_transmit().unwrap()));
    // tampered tag on session open
    let t = fresh(&mut bus, Listener::Session);
    let mut s = SessionClient::new(&mut c, "echo", auth.key_index, &auth.key).unwrap();
    let mut pkt = s.poll_transmit().unwrap();
    let n = pkt.len();
    pkt[n - 1] ^= 1;
    assert!(closed_after(&mut bus, t, &pkt));
    // unknown BUS_NAME
    let t = fresh(&mut bus, Listener::Session);
    let mut s = SessionClient::new(&mut c, "no-such-server", auth.key_index, &auth.key).unwrap();
    assert!(closed_after(&mut bus, t, &s.poll_transmit().unwrap()));
    // tampered tag and replayed packet on an open session: dropped, session stays up
    good.send(&mut c, b"once").unwrap();
    let pkt = good.poll_transmit().unwrap();
    bus.handle_tcp_data(now, ConnId(2), &pkt).unwrap();
    bus.handle_tcp_data(now, ConnId(2), &pkt).unwrap(); // replay
    good.send(&mut c, b"tampered").unwrap();
    let mut bad = good.poll_transmit().unwrap();
    bad[20] ^= 1;
    bus.handle_tcp_data(now, ConnId(2), &bad).unwrap();
    let got: Vec<_> = events(&mut bus)
        .into_iter()
        .filter_map(|e| match e {
            BusEvent::BytesReceived { data, .. } => Some(data),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![b"once".to_vec()]);
    assert!(!out_for(&mut bus, ConnId(2)).1);
    // oversize CoAP
    assert!(bus
        .handle_datagram(
            now,
            "10.0.0.3:5684".parse().unwrap(),
            None,
            &vec![0x50; 1500]
        )
        .is_err());

    // The good session and a brand-new client still work.
    echo_round(
        &mut bus,
        &mut c,
        &mut good,
        ConnId(2),
        good_id,
        b"still here",
    );
    let (mut s2, id2, _) = opened_echo(&mut bus, &mut c, 50, 51);
    echo_round(&mut bus, &mut c, &mut s2, ConnId(51), id2, b"new client");
}

#[test]
fn limits_are_enforced() {
    let mut bus = bus_with(
        BusConfig {
            pin: PinPolicy::pin("1"),
            max_auth_conns: 1,
            ..Default::default()
        },
        1,
    );
    let now = Instant::now();
    bus.handle_accept(now, ConnId(1), Listener::Auth, PEER.parse().unwrap())
        .unwrap();
    assert!(bus
        .handle_accept(now, ConnId(2), Listener::Auth, PEER.parse().unwrap())
        .is_err());
    assert!(matches!(
        bus.poll_transmit(),
        Some(Transmit::Close { conn: ConnId(2) })
    ));
}

#[test]
fn one_address_cannot_take_every_pending_slot() {
    let mut bus = node();
    let now = Instant::now();
    for i in 0..4 {
        bus.handle_accept(now, ConnId(i), Listener::Session, PEER.parse().unwrap())
            .unwrap();
    }
    assert!(bus
        .handle_accept(now, ConnId(9), Listener::Session, PEER.parse().unwrap())
        .is_err());
    // another address and the other listener are unaffected
    bus.handle_accept(
        now,
        ConnId(10),
        Listener::Session,
        "10.0.0.4:1".parse().unwrap(),
    )
    .unwrap();
    bus.handle_accept(now, ConnId(11), Listener::Auth, PEER.parse().unwrap())
        .unwrap();
    // once the handshakes time out, the address may connect again
    bus.handle_timeout(now + Duration::from_secs(11));
    bus.handle_accept(
        now + Duration::from_secs(11),
        ConnId(12),
        Listener::Session,
        PEER.parse().unwrap(),
    )
    .unwrap();
}

/// A recorded session open and its data, played again on a new connection from
/// the same address while the auth connection lives, is refused and counted
/// (issue 7, item 6); nothing is delivered twice.
#[test]
fn a_replayed_session_open_is_refused() {
    let mut bus = node();
    let mut c = OpenSslCrypto::seeded(8);
    let auth = authenticate(&mut bus, &mut c, ConnId(1), "246810", 900).unwrap();
    let now = Instant::now();
    bus.handle_accept(now, ConnId(2), Listener::Session, PEER.parse().unwrap())
        .unwrap();
    let mut s = SessionClient::new(&mut c, "echo", auth.key_index, &auth.key).unwrap();
    let open = s.poll_transmit().unwrap();
    bus.handle_tcp_data(now, ConnId(2), &open).unwrap();
    decide(&mut bus);
    let (out, closed) = out_for(&mut bus, ConnId(2));
    assert!(!closed);
    s.handle_data(&mut c, &out[0]).unwrap();
    s.send(&mut c, b"pay once").unwrap();
    let data = s.poll_transmit().unwrap();
    bus.handle_tcp_data(now, ConnId(2), &data).unwrap();
    let delivered = |ev: &[BusEvent]| {
        ev.iter()
            .filter(|e| matches!(e, BusEvent::BytesReceived { .. }))
            .count()
    };
    assert_eq!(delivered(&events(&mut bus)), 1);
    // The attacker replays both on a new connection.
    bus.handle_accept(now, ConnId(3), Listener::Session, PEER.parse().unwrap())
        .unwrap();
    bus.handle_tcp_data(now, ConnId(3), &[open, data].concat())
        .unwrap();
    decide(&mut bus);
    assert!(
        out_for(&mut bus, ConnId(3)).1,
        "the replay's connection is closed"
    );
    let ev = events(&mut bus);
    assert_eq!(delivered(&ev), 0, "{ev:?}");
    assert!(ev.iter().any(|e| matches!(
        e,
        BusEvent::ConnDropped {
            conn: ConnId(3),
            reason: softbus_bus::node::ConnClosed::Session(
                softbus_bus::session::SessionError::Replay
            ),
            ..
        }
    )));
    assert_eq!(bus.replayed_opens(), 1);
    assert_eq!(bus.sessions().len(), 1, "the first session is untouched");
}

/// A verified connection cannot re-announce another device id (issue 7, item 7):
/// the connection is dropped.
#[test]
fn a_verified_peer_keeps_its_device_id() {
    let mut bus = node();
    let mut c = OpenSslCrypto::seeded(9);
    authenticate(&mut bus, &mut c, ConnId(1), "246810", 900).unwrap();
    let again = |id: &str| {
        frame::auth_plain(
            Module::TRUST_ENGINE,
            901,
            0,
            format!(r#"{{"TECmd":"getAuthInfo","TEData":"{id}","TEDeviceId":"{id}"}}"#).as_bytes(),
        )
    };
    // The same id again is answered as before.
    bus.handle_tcp_data(Instant::now(), ConnId(1), &again(&"CD".repeat(32)))
        .unwrap();
    let (out, closed) = out_for(&mut bus, ConnId(1));
    assert!(!closed && out.len() == 1);
    // Another id: dropped.
    bus.handle_tcp_data(Instant::now(), ConnId(1), &again(&"EE".repeat(32)))
        .unwrap();
    assert!(out_for(&mut bus, ConnId(1)).1, "the connection is closed");
    assert!(events(&mut bus).iter().any(|e| matches!(
        e,
        BusEvent::ConnDropped {
            conn: ConnId(1),
            reason: softbus_bus::node::ConnClosed::Auth(AuthError::Misbehaved(_)),
            ..
        }
    )));
}
